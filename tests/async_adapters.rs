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
    assert!(s.as_mut().poll(&mut cx).is_ready_and(|r| r.is_err()));
    // After the shutdown a new sleep resolves at once, with the error.
    assert!(pollster::block_on(timers.sleep(Duration::ZERO)).is_err());
}

trait ReadyAnd<T> {
    fn is_ready_and(self, f: impl FnOnce(T) -> bool) -> bool;
}
impl<T> ReadyAnd<T> for Poll<T> {
    fn is_ready_and(self, f: impl FnOnce(T) -> bool) -> bool {
        match self {
            Poll::Ready(v) => f(v),
            Poll::Pending => false,
        }
    }
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
        let mut pop = pin!(q.pop_async(|t| timers.sleep_at(t)));
        assert!(pop.as_mut().poll(&mut cx).is_pending());
        assert_eq!(q.close(), ["late"]);
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "close woke it");
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
