//! The std adapters' async forms on real executors (tokio multi-thread
//! and current-thread, `pollster`): the thread pool's `JoinHandle` as a
//! future, the timer service's `Sleep`, and the blocking delay queue's
//! `pop_async`. Each result arrives exactly once, wakes are not lost,
//! panicking user code and cancelled futures leave the structure usable.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use latchfree::pool::{JoinError, ThreadPool};
use latchfree::wheel::TimerService;

struct Count(AtomicUsize);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
fn counter() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}
fn wait_for(c: &Count, n: usize) {
    let start = Instant::now();
    while c.0.load(Ordering::SeqCst) < n {
        assert!(start.elapsed() < Duration::from_secs(10), "no wake-up came");
        std::thread::yield_now();
    }
}

fn runtimes() -> [tokio::runtime::Runtime; 2] {
    [
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap(),
    ]
}

#[test]
fn join_handle_pending_until_the_worker_finishes_then_woken_once() {
    let pool = ThreadPool::new(1);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = pool
        .spawn(move || {
            go_rx.recv().unwrap();
            5
        })
        .unwrap();
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let mut h = pin!(h);
    assert!(h.as_mut().poll(&mut cx).is_pending());
    assert!(!h.is_finished());
    go_tx.send(()).unwrap();
    wait_for(&count, 1);
    assert!(matches!(h.as_mut().poll(&mut cx), Poll::Ready(Ok(5))));
    assert!(h.is_finished());
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
}

#[test]
fn join_handles_awaited_on_tokio_each_result_once_panics_reported() {
    const N: u64 = if cfg!(debug_assertions) { 500 } else { 5_000 };
    let pool = Arc::new(ThreadPool::new(2));
    for rt in runtimes() {
        let pool = pool.clone();
        rt.block_on(async move {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    pool.spawn(move || {
                        // Every 97th task panics: its handle reports it.
                        assert_ne!(i % 97, 5, "task {i} panics");
                        i
                    })
                    .unwrap()
                })
                .collect();
            let tasks: Vec<_> = handles.into_iter().map(tokio::spawn).collect();
            let (mut sum, mut panics) = (0, 0);
            for t in tasks {
                match t.await.unwrap() {
                    Ok(v) => sum += v,
                    Err(JoinError::Panicked(_)) => panics += 1,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            let want_panics = (0..N).filter(|i| i % 97 == 5).count() as u64;
            let want_sum: u64 = (0..N).filter(|i| i % 97 != 5).sum();
            assert_eq!((sum, panics), (want_sum, want_panics));
        });
    }
    // The pool survived every panic and still runs tasks.
    assert_eq!(pollster::block_on(pool.spawn(|| 1).unwrap()).unwrap(), 1);
}

#[test]
fn join_handle_of_a_task_never_run_completes_with_its_reason() {
    let pool = ThreadPool::new(1);
    let h = pool.spawn_with(Some(Instant::now()), |_| 1).unwrap();
    assert!(matches!(pollster::block_on(h), Err(JoinError::TimedOut)));
}

#[test]
fn sleep_never_completes_early_and_wakes_its_task() {
    let timers = TimerService::new();
    for rt in runtimes() {
        rt.block_on(async {
            let start = Instant::now();
            let mut sleeps = Vec::new();
            for ms in [12u64, 3, 7] {
                sleeps.push(tokio::spawn(timers.sleep(Duration::from_millis(ms))));
            }
            for (s, ms) in sleeps.into_iter().zip([12u64, 3, 7]) {
                s.await.unwrap().unwrap();
                assert!(start.elapsed() >= Duration::from_millis(ms));
            }
        });
    }
    // Manually polled: pending, then woken exactly once by the service.
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let start = Instant::now();
    let mut s = pin!(timers.sleep(Duration::from_millis(3)));
    assert!(s.as_mut().poll(&mut cx).is_pending());
    wait_for(&count, 1);
    assert!(start.elapsed() >= Duration::from_millis(3));
    assert!(matches!(s.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
}

#[test]
fn sleep_ends_with_shut_down_when_the_service_stops_and_a_dropped_sleep_cancels() {
    let timers = TimerService::new();
    // Dropped before its deadline: its timer is cancelled, nothing pending.
    drop(timers.sleep(Duration::from_secs(60)));
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let mut s = pin!(timers.sleep(Duration::from_secs(60)));
    assert!(s.as_mut().poll(&mut cx).is_pending());
    assert_eq!(timers.shutdown(), 1, "only the live sleep was pending");
    wait_for(&count, 1);
    assert!(matches!(s.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
    // After the shutdown a new sleep resolves at once, with the error.
    assert!(pollster::block_on(timers.sleep(Duration::ZERO)).is_err());
}

use latchfree::queue::{BlockingDelayQueue, Closed};

#[test]
fn pop_async_each_item_once_never_early_on_tokio() {
    const N: u64 = if cfg!(debug_assertions) { 300 } else { 3_000 };
    for rt in runtimes() {
        rt.block_on(async {
            let q = Arc::new(BlockingDelayQueue::<(u64, Instant)>::new());
            let mut consumers = Vec::new();
            for _ in 0..3 {
                let q = q.clone();
                consumers.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Ok((i, due)) =
                        q.pop_async(|t| tokio::time::sleep_until(t.into())).await
                    {
                        assert!(Instant::now() >= due, "popped before its deadline");
                        got.push(i);
                    }
                    got
                }));
            }
            let producer = {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..N {
                        let d = Duration::from_micros((i * 7919) % 3000);
                        q.insert((i, Instant::now() + d), d).unwrap();
                    }
                })
            };
            producer.join().unwrap();
            while !q.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(q.close().is_empty());
            let mut all: Vec<u64> = Vec::new();
            for c in consumers {
                all.extend(c.await.unwrap());
            }
            all.sort_unstable();
            assert_eq!(all, (0..N).collect::<Vec<_>>(), "each item exactly once");
        });
    }
}

#[test]
fn pop_async_wakes_early_for_an_earlier_item_and_at_close() {
    let timers = TimerService::new();
    let q = BlockingDelayQueue::new();
    q.insert("late", Duration::from_secs(60)).unwrap();
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    {
        let mut pop = pin!(q.pop_async(|t| timers.sleep_at(t)));
        assert!(pop.as_mut().poll(&mut cx).is_pending());
        q.insert("now", Duration::ZERO).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the new head woke it");
        assert_eq!(pop.as_mut().poll(&mut cx), Poll::Ready(Ok("now")));
    }
    {
        // A fresh waker: the first pop's dropped sleep may still wake the
        // first one (its timer is cancelled on the service's thread, and a
        // sleep whose timer is discarded ends, waking whoever polled it).
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut pop = pin!(q.pop_async(|t| timers.sleep_at(t)));
        assert!(pop.as_mut().poll(&mut cx).is_pending());
        assert_eq!(q.close(), ["late"]);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "close woke it");
        assert_eq!(pop.as_mut().poll(&mut cx), Poll::Ready(Err(Closed(()))));
    }
}

#[test]
fn pop_async_cancelled_or_panicking_takes_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let q = BlockingDelayQueue::new();
    q.insert(1, Duration::from_millis(30)).unwrap();
    rt.block_on(async {
        let r = tokio::time::timeout(
            Duration::from_millis(1),
            q.pop_async(|t| tokio::time::sleep_until(t.into())),
        )
        .await;
        assert!(r.is_err(), "timed out before the deadline");
    });
    assert_eq!(q.len(), 1, "the cancelled pop took nothing");
    // A panicking sleep function: the panic leaves the queue as it was.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pollster::block_on(
            q.pop_async(|_| -> std::future::Ready<()> { panic!("user sleep panics") }),
        )
    }));
    assert!(r.is_err());
    assert_eq!(q.len(), 1);
    // And the queue still serves async pops.
    let got = rt.block_on(q.pop_async(|t| tokio::time::sleep_until(t.into())));
    assert_eq!(got, Ok(1));
}

use latchfree::batch::Batcher;
use std::sync::Mutex;

/// 3 async pushers per runtime into a small queue (backpressure), then
/// `flush_async` and `close_async`: every item reaches the handler once.
#[test]
fn batcher_push_async_backpressure_flush_and_close_on_tokio() {
    const PER: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    for rt in runtimes() {
        for flushers in [1, 2] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let b = Arc::new(
                Batcher::builder::<()>()
                    .queue_capacity(8)
                    .max_items(64)
                    .flushers(flushers)
                    .build(move |batch: &mut Vec<u64>| {
                        s.lock().unwrap().extend(batch.drain(..));
                        Ok(())
                    })
                    .unwrap(),
            );
            rt.block_on(async {
                let tasks: Vec<_> = (0..3u64)
                    .map(|p| {
                        let b = b.clone();
                        tokio::spawn(async move {
                            for i in 0..PER {
                                b.push_async(p * PER + i).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                b.flush_async().await;
                assert_eq!(seen.lock().unwrap().len() as u64, 3 * PER, "flushed");
                b.close_async().await;
            });
            let mut all = std::mem::take(&mut *seen.lock().unwrap());
            all.sort_unstable();
            assert_eq!(
                all,
                (0..3 * PER).collect::<Vec<_>>(),
                "each item exactly once"
            );
            let m = b.metrics();
            assert_eq!((m.accepted, m.rejected), (3 * PER as usize, 0));
        }
    }
}

#[test]
fn batcher_push_async_waits_for_room_and_close_refuses_it() {
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate_rx = Arc::new(Mutex::new(gate_rx));
    let b = Batcher::builder::<()>()
        .queue_capacity(1)
        .max_items(1)
        .build(move |_: &mut Vec<u32>| {
            gate_rx.lock().unwrap().recv().ok();
            Ok(())
        })
        .unwrap();
    b.push(0).unwrap(); // taken by the flusher, which blocks in the handler
    let start = Instant::now();
    while b.metrics().batches == 0 && b.push_timeout(1, Duration::ZERO).is_ok() {
        // Fill the one slot; the flusher holds item 0 in its handler.
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    {
        let mut push = pin!(b.push_async(2));
        assert!(push.as_mut().poll(&mut cx).is_pending(), "queue full");
        gate_tx.send(()).unwrap(); // the handler returns, the flusher takes 1
        wait_for(&count, 1);
        assert!(matches!(push.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    }
    // Fill again, then close while a push waits: it gets its item back.
    let mut push = pin!(b.push_async(3));
    let mut pending = false;
    for _ in 0..1000 {
        if push.as_mut().poll(&mut cx).is_pending() {
            pending = true;
            break;
        }
        push.set(b.push_async(3));
    }
    assert!(pending, "the queue filled up while the handler is blocked");
    let before = count.0.load(Ordering::SeqCst);
    std::thread::scope(|s| {
        let closer = s.spawn(|| pollster::block_on(b.close_async()));
        // The handler is still blocked, so no room can free up: the wake
        // the waiting push gets is close's, and it must refuse.
        let start = Instant::now();
        while !b.is_closed() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "close never began"
            );
            std::thread::yield_now();
        }
        wait_for(&count, before + 1);
        assert!(matches!(push.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
        s.spawn(|| {
            // Unblocks the handler for everything close drains.
            for _ in 0..2000 {
                if gate_tx.send(()).is_err() {
                    break;
                }
            }
        });
        closer.join().unwrap();
    });
    assert!(b.is_closed());
}

#[test]
fn batcher_async_paths_survive_a_panicking_handler() {
    let delivered = Arc::new(AtomicUsize::new(0));
    let reported = Arc::new(AtomicUsize::new(0));
    let (d, r) = (delivered.clone(), reported.clone());
    let b = Batcher::builder::<()>()
        .queue_capacity(16)
        .max_items(8)
        .on_error(move |_, items: &mut Vec<u64>| {
            r.fetch_add(items.len(), Ordering::SeqCst);
        })
        .build(move |batch: &mut Vec<u64>| {
            assert!(!batch.contains(&13), "handler panics on a batch with 13");
            d.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    pollster::block_on(async {
        for i in 0..500 {
            b.push_async(i).await.unwrap();
        }
        b.flush_async().await;
        for i in 500..600 {
            b.push_async(i).await.unwrap();
        }
        b.close_async().await;
    });
    let (d, r) = (
        delivered.load(Ordering::SeqCst),
        reported.load(Ordering::SeqCst),
    );
    assert!(r >= 1, "the panicking batch went to the error callback");
    assert_eq!(d + r, 600, "no item lost or duplicated");
}

use latchfree::batch::{BatchError, Closed as BatchClosed};

#[test]
fn batch_stream_yields_every_item_once_then_ends_on_tokio() {
    const PER: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    for rt in runtimes() {
        let (b, mut batches) = Batcher::builder()
            .queue_capacity(16)
            .max_items(64)
            .build_stream()
            .unwrap();
        let b = Arc::new(b);
        rt.block_on(async {
            // Nothing is pushed yet: this wait must be cancelled, mid-await.
            let first = tokio::time::timeout(Duration::from_millis(1), batches.next_batch()).await;
            assert!(first.is_err(), "a batch from an empty batcher: {first:?}");
            let consumer = tokio::spawn(async move {
                let (mut items, mut n) = (Vec::new(), 0);
                while let Some(batch) = batches.next_batch().await {
                    assert!(!batch.is_empty() && batch.len() <= 64);
                    n += 1;
                    items.extend(batch);
                }
                (items, n)
            });
            let pushers: Vec<_> = (0..3u64)
                .map(|p| {
                    let b = b.clone();
                    tokio::spawn(async move {
                        for i in 0..PER {
                            b.push_async(p * PER + i).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in pushers {
                t.await.unwrap();
            }
            b.close_async().await;
            let (mut items, n) = consumer.await.unwrap();
            items.sort_unstable();
            assert_eq!(
                items,
                (0..3 * PER).collect::<Vec<_>>(),
                "each item exactly once"
            );
            assert_eq!(
                b.metrics().batches,
                n,
                "every shipped batch reached the stream"
            );
        });
    }
}

#[test]
fn dropped_batch_stream_reports_what_it_held_and_refuses_later_pushes() {
    let reported = Arc::new(AtomicUsize::new(0));
    let r = reported.clone();
    let (b, mut batches) = Batcher::builder()
        .max_items(4)
        .max_delay(Duration::from_secs(60))
        .on_error(move |e, items: &mut Vec<u32>| {
            assert!(matches!(e, BatchError::Failed(BatchClosed(()))));
            r.fetch_add(items.len(), Ordering::SeqCst);
        })
        .build_stream()
        .unwrap();
    for i in 0..10 {
        b.push(i).unwrap();
    }
    // Two full batches yielded; two items in the filling batch, none left
    // in the queue... then six more pushed: all reported on the drop.
    let got = pollster::block_on(async {
        let a = batches.next_batch().await.unwrap();
        let c = batches.next_batch().await.unwrap();
        (a, c)
    });
    assert_eq!(got, (vec![0, 1, 2, 3], vec![4, 5, 6, 7]));
    for i in 10..16 {
        b.push(i).unwrap();
    }
    drop(batches);
    assert_eq!(reported.load(Ordering::SeqCst), 8, "items 8..16 reported");
    assert!(b.is_closed());
    assert!(
        matches!(b.push(99), Err(BatchClosed(99))),
        "later pushes get their item back"
    );
    b.flush(); // answered: the stream is gone
    pollster::block_on(b.close_async());
    b.close();
}

/// Exactly once with cancellation: the consumer awaits each batch under a
/// short timeout, so `next_batch` futures are dropped mid-await over and
/// over; async pushers push under backpressure (a small queue). Every item
/// is yielded once, in each pusher's order. The first wait, on an empty
/// batcher, is always cancelled; how many of the others are depends on
/// the timer (tokio rounds a 50 µs timeout up to its 1 ms tick), so the
/// test does not count on them.
#[test]
fn batch_stream_with_cancelled_waits_loses_and_doubles_nothing() {
    const PER: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    for rt in runtimes() {
        let (b, mut batches) = Batcher::builder()
            .queue_capacity(8)
            .max_items(16)
            .max_delay(Duration::from_micros(200))
            .build_stream()
            .unwrap();
        let b = Arc::new(b);
        rt.block_on(async {
            let consumer = tokio::spawn(async move {
                let (mut items, mut cancelled) = (Vec::new(), 0u64);
                loop {
                    match tokio::time::timeout(Duration::from_micros(50), batches.next_batch())
                        .await
                    {
                        Ok(Some(batch)) => {
                            assert!(!batch.is_empty() && batch.len() <= 16);
                            items.extend(batch);
                        }
                        Ok(None) => break,
                        Err(_) => cancelled += 1,
                    }
                }
                (items, cancelled)
            });
            let pushers: Vec<_> = (0..2u64)
                .map(|p| {
                    let b = b.clone();
                    tokio::spawn(async move {
                        for i in 0..PER {
                            b.push_async(p * PER + i).await.unwrap();
                            if i % 512 == 0 {
                                tokio::time::sleep(Duration::from_micros(300)).await;
                            }
                        }
                    })
                })
                .collect();
            for t in pushers {
                t.await.unwrap();
            }
            b.close_async().await;
            let (items, _cancelled) = consumer.await.unwrap();
            for p in 0..2u64 {
                let mine: Vec<u64> = items.iter().copied().filter(|v| v / PER == p).collect();
                assert_eq!(
                    mine,
                    (p * PER..(p + 1) * PER).collect::<Vec<_>>(),
                    "pusher {p}: each item once, in order"
                );
            }
            assert_eq!(items.len() as u64, 2 * PER);
        });
    }
}

/// A dropped stream hands its items to an error callback that panics, and
/// the items' own `Drop` panics: both are caught, every item is dropped
/// once, and the batcher stays usable (pushes refused, flush and close
/// return).
#[test]
fn dropped_batch_stream_survives_panicking_callback_and_drops() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Bomb(u32);
    impl Drop for Bomb {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
            if self.0 % 2 == 0 {
                panic!("bomb {}", self.0);
            }
        }
    }
    let (b, batches) = Batcher::builder()
        .max_items(64)
        .on_error(|_, items: &mut Vec<Bomb>| {
            assert_eq!(items.len(), 6);
            panic!("the error callback panics too");
        })
        .build_stream()
        .unwrap();
    for i in 0..6 {
        b.push(Bomb(i)).unwrap();
    }
    drop(batches);
    assert_eq!(DROPS.load(Ordering::SeqCst), 6, "every item dropped once");
    assert!(b.push(Bomb(7)).is_err());
    b.flush();
    b.close();
    assert_eq!(DROPS.load(Ordering::SeqCst), 7);
}
