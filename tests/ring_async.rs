//! Async waits on the ring, on real executors: a 2-worker tokio runtime, a
//! current-thread tokio runtime, and `pollster` (a minimal executor). Every
//! event is seen exactly once per multicast consumer and once overall in a
//! work group, per-producer order holds, and futures dropped mid-await
//! (timeouts) lose nothing and publish nothing twice.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll as TaskPoll;
use std::time::Duration;

use latchfree::ring::{
    AsyncWait, Blocking, BusySpin, ConsumeError, Heap, Multi, Poll, PublishError, Ring, Single,
    Yielding,
};

const PER_PRODUCER: u64 = if cfg!(debug_assertions) {
    5_000
} else {
    50_000
};

/// Event: (producer id, per-producer counter).
type Ev = (u64, u64);

type MpRing<const N: usize = 8> = Ring<Heap<Ev>, Multi, AsyncWait<Yielding, N>>;

/// 3 async producers (each dropping every 7th push after one poll), 2
/// async multicast consumers (dropping every 5th wait after one poll), a work group of 2 async
/// workers and one consumer spinning on a thread of its own.
async fn mixed<const N: usize>(ring: Arc<MpRing<N>>) {
    const PRODUCERS: u64 = 3;
    let mut g = Ring::graph(ring.clone()).unwrap();
    let consumers: Vec<_> = (0..2).map(|_| g.consumer(&[]).unwrap()).collect();
    let mut spinner = g.consumer(&[]).unwrap();
    let workers = g.work_group::<2>(&[]).unwrap();
    let producer = g.multi_producer().unwrap();

    let mut tasks = Vec::new();
    for id in 0..PRODUCERS {
        let mut p = producer.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            let mut cancelled = 0u64;
            while i < PER_PRODUCER {
                // Every 7th push gets a deadline it often misses on a full
                // ring: the dropped future must have published nothing.
                if i % 7 == 0 {
                    match tokio::time::timeout(Duration::from_micros(1), p.push_async((id, i)))
                        .await
                    {
                        Ok(r) => {
                            r.unwrap();
                            i += 1;
                        }
                        Err(_) => cancelled += 1, // retry the same `i`
                    }
                } else {
                    p.push_async((id, i)).await.unwrap();
                    i += 1;
                }
            }
            cancelled
        }));
    }
    drop(producer); // the ring closes when the tasks' clones go

    let mut readers = Vec::new();
    for (k, mut c) in consumers.into_iter().enumerate() {
        readers.push(tokio::spawn(async move {
            let mut next = [0u64; PRODUCERS as usize];
            let mut round = 0u64;
            loop {
                round += 1;
                let handler = |e: &Ev, _: u64, _: bool| {
                    assert_eq!(e.1, next[e.0 as usize], "consumer {k}: order or duplicate");
                    next[e.0 as usize] += 1;
                };
                let r = if round % 5 == 0 {
                    match poll_once(c.wait_async(handler)).await {
                        TaskPoll::Ready(r) => r,
                        TaskPoll::Pending => {
                            tokio::task::yield_now().await;
                            continue;
                        }
                    }
                } else {
                    c.wait_async(handler).await
                };
                match r {
                    Ok(n) => assert!(n > 0),
                    Err(e) => {
                        assert_eq!(e, ConsumeError::Closed);
                        break;
                    }
                }
            }
            next
        }));
    }
    let seen = Arc::new(
        (0..PRODUCERS * PER_PRODUCER)
            .map(|_| AtomicU64::new(0))
            .collect::<Vec<_>>(),
    );
    for mut w in workers {
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            let mut handled = 0;
            loop {
                let r = w
                    .wait_async(|e: &Ev, _, _| {
                        seen[(e.0 * PER_PRODUCER + e.1) as usize].fetch_add(1, Ordering::Relaxed);
                        handled += 1;
                    })
                    .await;
                if r.is_err() {
                    break;
                }
            }
            [handled, 0, 0]
        }));
    }
    let spin = std::thread::spawn(move || {
        let mut n = 0u64;
        while spinner.wait(|_, _, _| n += 1).is_ok() {}
        n
    });

    let mut cancelled = 0;
    for t in tasks {
        cancelled += t.await.unwrap();
    }
    eprintln!("pushes dropped mid-await: {cancelled}");
    let mut worked = 0;
    for (i, r) in readers.into_iter().enumerate() {
        let got = r.await.unwrap();
        if i < 2 {
            assert_eq!(
                got, [PER_PRODUCER; PRODUCERS as usize],
                "consumer {i} lost events"
            );
        } else {
            worked += got[0];
        }
    }
    assert_eq!(worked, PRODUCERS * PER_PRODUCER);
    assert!(
        seen.iter().all(|s| s.load(Ordering::Relaxed) == 1),
        "work group: not exactly once"
    );
    assert_eq!(spin.join().unwrap(), PRODUCERS * PER_PRODUCER);
}

/// Polls `fut` once and drops it: a future cancelled right after it
/// registered its waker, if it could not complete.
async fn poll_once<F: Future>(fut: F) -> TaskPoll<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| TaskPoll::Ready(fut.as_mut().poll(cx))).await
}

fn mp_ring<const N: usize>() -> Arc<MpRing<N>> {
    Arc::new(Ring::with_wait(
        Heap::builder(16).gates(8).build().unwrap(),
        AsyncWait::with(Yielding),
    ))
}

#[test]
fn async_mixed_on_a_two_worker_runtime() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
        .block_on(mixed(mp_ring::<8>()));
}

/// Seven awaiting handles share four cells: two kept (the first two
/// handles to finish a wait in the lower half), two lent per wait to the
/// other five, which busy-poll while both are out. Nothing is lost, and
/// nothing hangs on a kept-but-idle cell.
#[test]
fn async_mixed_with_fewer_cells_than_handles() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
        .block_on(mixed(mp_ring::<4>()));
}

#[test]
fn async_mixed_on_a_current_thread_runtime() {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(mixed(mp_ring::<8>()));
}

/// SPSC between two tasks on one thread: each side must yield to the
/// other through the wakers alone (a lost wake hangs the runtime).
#[test]
fn async_spsc_on_a_current_thread_runtime() {
    let ring = Arc::new(Ring::<Heap<u64>, Single, AsyncWait<BusySpin>>::with_wait(
        Heap::builder(4).gates(1).build().unwrap(),
        AsyncWait::with(BusySpin),
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sum = rt.block_on(async move {
        let producer = tokio::spawn(async move {
            for i in 0..PER_PRODUCER {
                p.push_async(i).await.unwrap();
            }
        });
        let mut expect = 0;
        while c
            .wait_async(|e, _, _| {
                assert_eq!(*e, expect);
                expect += 1;
            })
            .await
            .is_ok()
        {}
        producer.await.unwrap();
        expect
    });
    assert_eq!(sum, PER_PRODUCER);
}

/// A producer blocking on a thread (the `Blocking` strategy) while the
/// consumer awaits on `pollster`, and the reverse: a producer awaiting
/// space while a thread consumes with blocking waits.
#[test]
fn async_and_blocking_sides_on_pollster() {
    let ring = Arc::new(Ring::<Heap<u64>, Single, AsyncWait<Blocking>>::with_wait(
        Heap::builder(8).gates(1).build().unwrap(),
        AsyncWait::with(Blocking::new()),
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..PER_PRODUCER {
            p.push(i).unwrap();
        }
    });
    let mut n = 0;
    pollster::block_on(async {
        while c
            .wait_async(|e, _, _| {
                assert_eq!(*e, n);
                n += 1;
            })
            .await
            .is_ok()
        {}
    });
    t.join().unwrap();
    assert_eq!(n, PER_PRODUCER);

    let ring = Arc::new(Ring::<Heap<u64>, Single, AsyncWait<Blocking>>::with_wait(
        Heap::builder(8).gates(1).build().unwrap(),
        AsyncWait::with(Blocking::new()),
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let t = std::thread::spawn(move || {
        let mut n = 0;
        while c
            .wait(|e, _, _| {
                assert_eq!(*e, n);
                n += 1;
            })
            .is_ok()
        {}
        n
    });
    pollster::block_on(async {
        for i in 0..PER_PRODUCER {
            p.push_async(i).await.unwrap();
        }
    });
    drop(p);
    assert_eq!(t.join().unwrap(), PER_PRODUCER);
}

/// Halt wakes an awaiting producer on a full ring and an awaiting consumer,
/// each on its own runtime thread.
#[test]
fn async_halt_wakes_waiters_on_a_runtime() {
    let ring = Arc::new(Ring::<Heap<u64>, Single, AsyncWait<Yielding>>::with_wait(
        Heap::builder(2).gates(2).build().unwrap(),
        AsyncWait::with(Yielding),
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let mut slow = g.consumer(&[]).unwrap();
    let mut idle = g.consumer(&[slow.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async move {
        let producer = tokio::spawn(async move {
            let mut last = Ok(0);
            for i in 0..3 {
                last = p.push_async(i).await;
            }
            last
        });
        // `idle` runs after `slow`, which never polls: it waits forever.
        let consumer = tokio::spawn(async move { idle.wait_async(|_, _, _| ()).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        ring.halt();
        assert!(matches!(
            producer.await.unwrap(),
            Err(PublishError::Halted(2))
        ));
        assert_eq!(consumer.await.unwrap(), Err(ConsumeError::Halted));
        assert_eq!(slow.poll(|_, _, _| ()), Poll::Halted);
    });
}

/// The waker cell on real threads: a wake racing a registration is never
/// lost (the registrant's re-check sees the flag, or its waker is woken).
#[test]
fn waker_cell_threads_never_lose_a_wake() {
    use latchfree::__loom::AtomicWaker;
    use std::sync::atomic::AtomicBool;
    use std::task::{Wake, Waker};

    struct Count(AtomicU64);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    for _ in 0..2_000 {
        let cell = Arc::new(AtomicWaker::new());
        let flag = Arc::new(AtomicBool::new(false));
        let count = Arc::new(Count(AtomicU64::new(0)));
        let w = Waker::from(count.clone());
        let t = {
            let (cell, flag) = (cell.clone(), flag.clone());
            std::thread::spawn(move || {
                flag.store(true, Ordering::SeqCst);
                cell.wake();
            })
        };
        cell.register(&w);
        let seen = flag.load(Ordering::SeqCst);
        t.join().unwrap();
        assert!(seen || count.0.load(Ordering::SeqCst) == 1);
    }
}

/// Two `EventSink`s into one `EventStream` whose `next()` is cancelled
/// (dropped after one poll) every third item: the stream keeps its waker
/// cell across items and cancellations, and every event still arrives
/// exactly once, in per-producer order.
#[cfg(all(feature = "futures-core", feature = "futures-sink"))]
async fn streams_with_cancelled_nexts() {
    use futures_util::{stream, SinkExt, StreamExt};
    use latchfree::ring::{EventSink, EventStream};

    const PRODUCERS: u64 = 2;
    let ring: Arc<Ring<Heap<Ev>, Multi, AsyncWait<BusySpin, 4>>> = Arc::new(Ring::with_wait(
        Heap::builder(8).gates(1).build().unwrap(),
        AsyncWait::with(BusySpin),
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let consumer = g.consumer(&[]).unwrap();
    let producer = g.multi_producer().unwrap();
    let sends: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let mut sink = EventSink::new(producer.clone());
            tokio::spawn(async move {
                let mut items = stream::iter((0..PER_PRODUCER).map(move |i| Ok((id, i))));
                sink.send_all(&mut items).await.unwrap();
                sink.close().await.unwrap();
            })
        })
        .collect();
    drop(producer);
    let mut s = EventStream::new(consumer);
    let mut next = [0u64; PRODUCERS as usize];
    let mut k = 0u64;
    loop {
        k += 1;
        let item = if k % 3 == 0 {
            match poll_once(s.next()).await {
                TaskPoll::Ready(item) => item,
                TaskPoll::Pending => continue,
            }
        } else {
            s.next().await
        };
        let Some((id, i)) = item else { break };
        assert_eq!(i, next[id as usize], "producer {id}: order, exactly once");
        next[id as usize] += 1;
    }
    assert_eq!(next, [PER_PRODUCER; PRODUCERS as usize]);
    for t in sends {
        t.await.unwrap();
    }
    drop(s);
}

#[cfg(all(feature = "futures-core", feature = "futures-sink"))]
#[test]
fn async_streams_with_cancellation_on_both_runtimes() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
        .block_on(streams_with_cancelled_nexts());
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(streams_with_cancelled_nexts());
}

/// A waker that counts its wakes.
struct Wakes(std::sync::atomic::AtomicUsize);
impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
fn wakes() -> (Arc<Wakes>, std::task::Waker) {
    let w = Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
    (w.clone(), w.into())
}
fn count(w: &Wakes) -> usize {
    w.0.load(Ordering::SeqCst)
}

/// Runs `f`, which must panic (a user callback inside a future's poll).
fn must_panic(f: impl FnOnce()) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(r.is_err(), "the closure was meant to panic");
}

/// A `wait_async` whose handler panics, polled after it registered: the
/// future is dropped by the unwind and must give its waker cell back. The
/// ring has one cell, so a leaked cell would leave every later wait
/// without one (asked to be polled again at once, never registered); the
/// panicking events count as handled (the consumer's panic rule), and the
/// next event arrives.
#[test]
fn async_a_panicking_handler_gives_the_waker_cell_back() {
    let ring = Ring::<Heap<u64>, Single, AsyncWait<BusySpin, 1>>::with_wait(
        Heap::with_capacity(2).unwrap(),
        AsyncWait::with(BusySpin),
    );
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let (w, waker) = wakes();
    let mut cx = std::task::Context::from_waker(&waker);
    for i in 0..3 {
        must_panic(|| {
            let mut fut = pin!(c.wait_async(|_, _, _| panic!("handler")));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(count(&w), i, "registered in the one cell");
            p.push(i as u64).unwrap();
            assert_eq!(count(&w), i + 1, "the publish woke it");
            let _ = fut.as_mut().poll(&mut cx); // the handler panics
        });
    }
    assert_eq!(c.sequence(), 3, "the panicking events count as handled");
    let mut got = Vec::new();
    {
        let mut fut = pin!(c.wait_async(|e, _, _| got.push(*e)));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count(&w), 3, "registered: the cell was given back");
        p.push(7).unwrap();
        assert_eq!(count(&w), 4);
        assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(1)));
    }
    assert_eq!(got, [7]);
}

/// `publish_async` whose closure panics, polled after it registered on a
/// full ring: the unwind drops the future, which gives its cell back; no
/// event is published for the panicked closure (a single producer's
/// cursor does not move; a multi-producer's slot is published as skipped),
/// none is lost, and a later `push_async` on the full ring registers in
/// the one cell and is woken by a release.
macro_rules! panicking_publish {
    ($name:ident, $mode:ty, $producer:ident) => {
        #[test]
        fn $name() {
            let ring = Ring::<Heap<u64>, $mode, AsyncWait<BusySpin, 1>>::with_wait(
                Heap::with_capacity(1).unwrap(),
                AsyncWait::with(BusySpin),
            );
            let mut g = Ring::graph(&ring).unwrap();
            let mut c = g.consumer(&[]).unwrap();
            let mut p = g.$producer().unwrap();
            let (w, waker) = wakes();
            let mut cx = std::task::Context::from_waker(&waker);
            let mut got = Vec::new();
            for i in 0..3 {
                p.push(i).unwrap(); // the ring is full
                must_panic(|| {
                    let mut fut = pin!(p.publish_async(|_| panic!("publish closure")));
                    assert!(fut.as_mut().poll(&mut cx).is_pending());
                    assert_eq!(count(&w), i as usize, "registered in the one cell");
                    assert_eq!(c.poll(|e, _, _| got.push(*e)), Poll::Processed(1));
                    assert_eq!(count(&w), i as usize + 1, "the release woke it");
                    let _ = fut.as_mut().poll(&mut cx); // the closure panics
                });
                // A multi-producer's skipped slot is counted by the poll
                // but never handed out (and frees the slot).
                while let Poll::Processed(_) = c.poll(|e, _, _| got.push(*e)) {}
            }
            assert_eq!(got, [0, 1, 2], "no event lost, none made up");
            p.push(3).unwrap(); // full again
            {
                let mut fut = pin!(p.push_async(4));
                assert!(fut.as_mut().poll(&mut cx).is_pending());
                assert_eq!(count(&w), 3, "registered: the cell was given back");
                assert_eq!(c.poll(|e, _, _| got.push(*e)), Poll::Processed(1));
                assert_eq!(count(&w), 4, "the release woke it");
                assert!(matches!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(_))));
            }
            while let Poll::Processed(_) = c.poll(|e, _, _| got.push(*e)) {}
            assert_eq!(got, [0, 1, 2, 3, 4]);
        }
    };
}

panicking_publish!(
    async_a_panicking_publish_gives_the_waker_cell_back,
    Single,
    single_producer
);
panicking_publish!(
    async_a_panicking_multi_publish_gives_the_waker_cell_back,
    Multi,
    multi_producer
);
