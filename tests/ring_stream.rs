//! `EventStream` and `EventSink` (features `futures-core`, `futures-sink`)
//! driven by `StreamExt`/`SinkExt` combinators on real executors (tokio
//! multi-thread and current-thread, `pollster`): exactly-once delivery,
//! backpressure that wakes, close that ends the stream, errors that hand
//! the item back, cancellation and panicking user code that lose nothing.
#![cfg(all(feature = "std", feature = "futures-core", feature = "futures-sink"))]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll as TaskPoll, Wake, Waker};
use std::time::Duration;

use futures_util::{stream, Sink, SinkExt, Stream, StreamExt};
use latchfree::ring::{
    AsyncWait, BusySpin, EventSink, EventStream, Heap, Multi, PublishError, Ring, Single, Yielding,
};

const N: u64 = if cfg!(miri) {
    50
} else if cfg!(debug_assertions) {
    5_000
} else {
    50_000
};

type SpRing<T> = Ring<Heap<T>, Single, AsyncWait<BusySpin>>;
type MpRing<T> = Ring<Heap<T>, Multi, AsyncWait<Yielding>>;

fn ring<T: Default, M: latchfree::ring::Mode, W: latchfree::ring::WaitStrategy>(
    cap: usize,
    gates: usize,
    w: W,
) -> Ring<Heap<T>, M, W> {
    Ring::with_wait(Heap::builder(cap).gates(gates).build().unwrap(), w)
}

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

#[test]
fn stream_combinators_see_every_event_once_per_consumer_then_end() {
    let r: SpRing<u64> = ring(8, 2, AsyncWait::with(BusySpin));
    let mut g = Ring::graph(&r).unwrap();
    let a = g.consumer(&[]).unwrap();
    let b = g.consumer(&[]).unwrap();
    let p = g.single_producer().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut sink = EventSink::new(p);
            pollster::block_on(async {
                sink.send_all(&mut stream::iter((0..N).map(Ok)))
                    .await
                    .unwrap();
                sink.close().await.unwrap();
            });
        });
        let ha = s.spawn(move || pollster::block_on(EventStream::new(a).collect::<Vec<u64>>()));
        let sum = pollster::block_on(EventStream::new(b).fold(0, |acc, e| async move { acc + e }));
        assert_eq!(ha.join().unwrap(), (0..N).collect::<Vec<_>>());
        assert_eq!(sum, N * (N - 1) / 2);
    });
}

/// 3 sinks over one multi-producer ring, 2 worker streams: every event
/// reaches exactly one worker, each worker sees each producer's events in
/// order, and closing the last sink ends both streams.
async fn work_group(r: Arc<MpRing<(u64, u64)>>) {
    let mut g = Ring::graph(r.clone()).unwrap();
    let workers = g.work_group::<2>(&[]).unwrap();
    let producer = g.multi_producer().unwrap();
    let mut tasks = Vec::new();
    for id in 0..3u64 {
        let mut sink = EventSink::new(producer.clone());
        tasks.push(tokio::spawn(async move {
            sink.send_all(&mut stream::iter((0..N).map(move |i| Ok((id, i)))))
                .await
                .unwrap();
            sink.close().await.unwrap();
        }));
    }
    drop(producer);
    let mut got = Vec::new();
    for w in workers {
        got.push(tokio::spawn(async move {
            let mut last = [None::<u64>; 3];
            let mut seen = Vec::new();
            let mut s = pin!(EventStream::new(w));
            while let Some((id, i)) = s.next().await {
                let l = &mut last[id as usize];
                assert!(l.map_or(true, |l| l < i), "order within a producer");
                *l = Some(i);
                seen.push((id, i));
            }
            seen
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut all = Vec::new();
    for t in got {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let want: Vec<_> = (0..3).flat_map(|id| (0..N).map(move |i| (id, i))).collect();
    assert_eq!(all, want, "each event exactly once over the group");
}

#[test]
fn sinks_and_worker_streams_on_a_two_worker_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(work_group(Arc::new(ring(16, 3, AsyncWait::with(Yielding)))));
}

#[test]
fn sinks_and_worker_streams_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(work_group(Arc::new(ring(4, 3, AsyncWait::with(Yielding)))));
}

#[test]
fn sink_waits_on_a_full_ring_and_a_release_wakes_it() {
    let r: SpRing<u32> = ring(2, 1, AsyncWait::with(BusySpin));
    let mut g = Ring::graph(&r).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let p = g.single_producer().unwrap();
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let mut sink = pin!(EventSink::new(p));
    for v in 0..3 {
        assert!(matches!(
            sink.as_mut().poll_ready(&mut cx),
            TaskPoll::Ready(Ok(()))
        ));
        sink.as_mut().start_send(v).unwrap();
    }
    // 0 and 1 fill the ring; 2 is kept and cannot go out yet.
    assert!(sink.as_mut().poll_flush(&mut cx).is_pending());
    assert!(sink.has_pending());
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    let mut seen = Vec::new();
    c.poll(|e, _, _| seen.push(*e));
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the release woke the sink"
    );
    assert!(matches!(
        sink.as_mut().poll_flush(&mut cx),
        TaskPoll::Ready(Ok(()))
    ));
    c.poll(|e, _, _| seen.push(*e));
    assert_eq!(seen, [0, 1, 2]);
}

#[test]
fn sink_errors_hand_the_item_back_and_close_ends_the_stream() {
    // Halted: the kept item comes back in the error.
    let r: MpRing<u32> = ring(1, 1, AsyncWait::with(Yielding));
    let mut g = Ring::graph(&r).unwrap();
    let _c = g.consumer(&[]).unwrap();
    let p = g.multi_producer().unwrap();
    let mut sink = EventSink::new(p);
    pollster::block_on(sink.feed(1)).unwrap(); // pushed: the ring is full now
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    {
        let mut send = pin!(sink.send(2));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        r.halt();
        assert!(
            count.0.load(Ordering::SeqCst) >= 1,
            "the halt woke the sink"
        );
        assert!(matches!(
            send.as_mut().poll(&mut cx),
            TaskPoll::Ready(Err(PublishError::Halted(2)))
        ));
    }

    // A closed sink refuses new items, handing them back.
    let r: SpRing<u32> = ring(4, 1, AsyncWait::with(BusySpin));
    let mut g = Ring::graph(&r).unwrap();
    let c = g.consumer(&[]).unwrap();
    let mut sink = EventSink::new(g.single_producer().unwrap());
    pollster::block_on(async {
        sink.send(7).await.unwrap();
        sink.close().await.unwrap();
        assert!(matches!(sink.send(8).await, Err(PublishError::Closed(8))));
        assert_eq!(EventStream::new(c).collect::<Vec<_>>().await, [7]);
    });
    let (handle, pending) = sink.into_inner();
    assert!(handle.is_none() && pending.is_none());
}

#[test]
fn stream_next_cancelled_by_a_timeout_loses_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = Arc::new(ring::<u64, Single, _>(
            8,
            1,
            AsyncWait::<BusySpin>::with(BusySpin),
        ));
        let mut g = Ring::graph(r.clone()).unwrap();
        let c = g.consumer(&[]).unwrap();
        let p = g.single_producer().unwrap();
        let send = tokio::spawn(async move {
            let mut sink = EventSink::new(p);
            for i in 0..N {
                sink.send(i).await.unwrap();
                if i % 64 == 0 {
                    tokio::time::sleep(Duration::from_micros(50)).await;
                }
            }
        });
        let mut s = EventStream::new(c);
        let (mut next, mut timeouts) = (0, 0u64);
        loop {
            match tokio::time::timeout(Duration::from_micros(20), s.next()).await {
                Ok(Some(v)) => {
                    assert_eq!(v, next, "no loss, no duplicate");
                    next += 1;
                }
                Ok(None) => break,
                Err(_) => timeouts += 1,
            }
        }
        send.await.unwrap();
        assert_eq!(next, N);
        let _ = timeouts; // usually > 0; the check above is what matters
    });
}

/// An event whose `clone` panics for one value.
#[derive(Default, Debug, PartialEq)]
struct Touchy(u32);
impl Clone for Touchy {
    fn clone(&self) -> Self {
        assert_ne!(self.0, 3, "clone of 3 panics");
        Touchy(self.0)
    }
}

#[test]
fn panicking_user_code_in_a_stream_leaves_the_ring_consistent() {
    let r: SpRing<Touchy> = ring(2, 1, AsyncWait::with(BusySpin));
    let mut g = Ring::graph(&r).unwrap();
    let c = g.consumer(&[]).unwrap();
    let p = g.single_producer().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut sink = EventSink::new(p);
            pollster::block_on(async {
                for i in 0..8 {
                    sink.send(Touchy(i)).await.unwrap();
                }
                sink.close().await.unwrap();
            });
        });
        let mut stream = EventStream::new(c);
        let mut seen = Vec::new();
        // A panicking combinator closure (on 5), and a panicking `clone`
        // inside `poll_next` (on 3): each panics once; the stream goes on.
        for _ in 0..3 {
            let r = catch_unwind(AssertUnwindSafe(|| {
                pollster::block_on((&mut stream).for_each(|e| {
                    assert_ne!(e.0, 5, "handler panics on 5");
                    seen.push(e.0);
                    std::future::ready(())
                }))
            }));
            if r.is_ok() {
                break;
            }
        }
        // 3 was consumed by the panicking clone (it counts as handled, as
        // for any panicking handler); 5 reached the user, who panicked.
        assert_eq!(seen, [0, 1, 2, 4, 6, 7]);
    });
}

#[test]
fn dropped_stream_and_sink_give_their_waker_cells_back() {
    // One cell: if a dropped wrapper kept it, the next waiter could not
    // register and would be woken at once (busy-poll) instead of sleeping
    // until a publish. (A handle keeps its cell between its own awaits and
    // a wrapper takes it over, so the consumer's cell is the one all the
    // consumer's waits below use.)
    let r: Ring<Heap<u32>, Multi, AsyncWait<BusySpin, 1>> = ring(1, 1, AsyncWait::with(BusySpin));
    let mut g = Ring::graph(&r).unwrap();
    let c = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    let (count, waker) = counter();
    let wakes = || count.0.load(Ordering::SeqCst);
    let mut cx = Context::from_waker(&waker);

    // A stream waits, then is unwrapped: its cell must be free again.
    let mut s = EventStream::new(c);
    assert!(Pin::new(&mut s).poll_next(&mut cx).is_pending());
    let mut c = s.into_inner();
    {
        let mut fut = pin!(c.wait_async(|_, _, _| ()));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes(), 0, "the stream's cell was given back");
        p.push(1).unwrap();
        assert_eq!(wakes(), 1);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }

    // A sink waits on the full ring, then is dropped with its item.
    p.push(2).unwrap();
    let mut sink = EventSink::new(p.clone());
    assert!(Pin::new(&mut sink).poll_ready(&mut cx).is_ready());
    Pin::new(&mut sink).start_send(3).unwrap();
    assert!(Pin::new(&mut sink).poll_flush(&mut cx).is_pending());
    drop(sink); // gives the cell back and drops the unsent 3
    let mut s = EventStream::new(c);
    assert_eq!(
        futures_util::FutureExt::now_or_never(s.next()),
        Some(Some(2))
    );
    let before = wakes();
    assert!(Pin::new(&mut s).poll_next(&mut cx).is_pending());
    assert_eq!(wakes(), before, "the sink's cell was given back");
    p.push(4).unwrap();
    assert_eq!(wakes(), before + 1);
    assert_eq!(
        Pin::new(&mut s).poll_next(&mut cx),
        TaskPoll::Ready(Some(4))
    );
}

use std::future::Future;
use std::pin::Pin;
