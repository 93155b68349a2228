#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use super::*;
use crate::sync::time::Instant;
use crate::sync::AtomicBool;
use std::sync::atomic::AtomicUsize as StdAtomic;
use std::sync::{Arc as StdArc, Mutex as StdMutex};
use std::thread;
use std::vec::Vec;

type Log = StdArc<StdMutex<Vec<Vec<u32>>>>;

fn recorder(log: &Log) -> impl FnMut(&mut Vec<u32>) -> Result<(), ()> + Send + Clone + 'static {
    let log = log.clone();
    move |b: &mut Vec<u32>| {
        assert!(!b.is_empty(), "empty batch");
        log.lock().unwrap().push(b.clone());
        Ok(())
    }
}

#[test]
fn batches_by_items_keep_order_and_drain_on_close() {
    let log: Log = Default::default();
    let b = Batcher::builder::<()>()
        .max_items(4)
        .max_delay(Duration::from_secs(10))
        .build(recorder(&log))
        .unwrap();
    for i in 0..10 {
        b.push(i).unwrap();
    }
    b.close();
    assert!(b.push(99).is_err());
    let all: Vec<u32> = log.lock().unwrap().iter().flatten().copied().collect();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    let m = b.metrics();
    assert_eq!(
        (m.by_items, m.by_close, m.delivered, m.accepted),
        (2, 1, 10, 10)
    );
    assert!(log.lock().unwrap().iter().all(|b| b.len() <= 4));
}

#[test]
fn time_and_manual_flush() {
    let log: Log = Default::default();
    let b = Batcher::builder::<()>()
        .max_items(1000)
        .max_delay(Duration::from_millis(20))
        .build(recorder(&log))
        .unwrap();
    b.push(1).unwrap();
    b.push(2).unwrap();
    let t = Instant::now();
    while log.lock().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(1));
    }
    assert!(t.elapsed() >= Duration::from_millis(10));
    assert_eq!(b.metrics().by_time, 1);
    b.push(3).unwrap();
    b.flush();
    assert_eq!(log.lock().unwrap().last().unwrap(), &[3]);
    assert_eq!(b.metrics().by_manual, 1);
    b.flush();
    assert_eq!(b.metrics().batches, 2, "no empty batch on an empty flush");
}

#[test]
fn bytes_limit_and_natural_batching() {
    let log: Log = Default::default();
    let b = Batcher::builder::<()>()
        .max_items(100)
        .max_bytes(10, |x: &u32| *x as usize)
        .max_delay(Duration::ZERO)
        .build(recorder(&log))
        .unwrap();
    for x in [4, 4, 4, 20, 1] {
        b.push(x).unwrap();
    }
    b.flush();
    drop(b);
    for batch in log.lock().unwrap().iter() {
        let sum: u32 = batch.iter().sum();
        assert!(sum <= 10 || batch.len() == 1, "{batch:?}");
    }
}

#[test]
fn errors_and_panics_reach_the_callback() {
    let failed = StdArc::new(StdAtomic::new(0));
    let f2 = failed.clone();
    // Batches form by items only (a delay could split them on a slow run,
    // as under Miri).
    let b = Batcher::builder::<&'static str>()
        .max_items(2)
        .max_delay(Duration::from_secs(60))
        .on_error(move |e, items: &mut Vec<u32>| {
            assert!(!items.is_empty());
            if let BatchError::Failed(msg) = e {
                assert_eq!(msg, "odd");
            }
            f2.fetch_add(items.len(), Ordering::Relaxed);
        })
        .build(|b: &mut Vec<u32>| {
            if b[0] == 0 {
                panic!("zero");
            }
            if b[0] % 2 == 1 {
                return Err("odd");
            }
            Ok(())
        })
        .unwrap();
    for x in [0, 0, 1, 1, 2, 2] {
        b.push(x).unwrap();
    }
    b.close();
    let m = b.metrics();
    assert_eq!((m.failed, m.panicked, m.delivered), (2, 1, 6));
    assert_eq!(failed.load(Ordering::Relaxed), 4);
}

/// `try_push` and `push_timeout` on a full queue say `Full`. The flusher
/// is held inside the handler by a hand-shake, not by timing: the test
/// used to sleep 20 ms and assume the flusher had taken item 0 by then.
/// Under Miri's virtual clock (a few microseconds per basic block) 20 ms
/// is a few thousand blocks, less than starting the flusher thread takes
/// on some schedules (seed 19): item 0 was still queued, `try_push(2)`
/// found the queue full (rightly), its `unwrap` panicked, and the
/// unwinding drop of the batcher joined the flusher, which had gone on to
/// wait at a barrier for the test: a deadlock instead of a failure.
#[test]
fn try_push_and_push_timeout_on_a_full_queue() {
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    // The handler must be `Clone`; one flusher uses it.
    let release_rx = StdArc::new(StdMutex::new(release_rx));
    let first = StdArc::new(AtomicBool::new(true));
    let b = Batcher::builder::<()>()
        .max_items(1)
        .queue_capacity(2)
        .build(move |_b: &mut Vec<u32>| {
            if first.swap(false, Ordering::SeqCst) {
                let _ = entered_tx.send(());
                // Until released, or until the test drops `release` (a
                // failed assertion unwinding): it fails, never hangs.
                let _ = release_rx.lock().unwrap().recv();
            }
            Ok(())
        })
        .unwrap();
    // Declared after `b`, so an unwinding test drops it first and lets
    // the held flusher go before `b`'s drop joins it.
    let release = release_tx;
    b.push(0).unwrap();
    // The flusher is in the handler with item 0: it moved it out of its
    // slot and released the slot before shipping (the channel orders that
    // before what follows), so the queue is empty and holds two.
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the flusher took item 0 within 10 s");
    b.try_push(1).unwrap();
    b.try_push(2).unwrap();
    assert!(b.try_push(3).unwrap_err().is_full());
    assert!(b
        .push_timeout(3, Duration::from_millis(5))
        .unwrap_err()
        .is_full());
    release.send(()).unwrap();
    b.close();
    let m = b.metrics();
    assert_eq!((m.accepted, m.rejected, m.delivered), (3, 2, 3));
}

#[test]
fn many_flushers_flush_everything() {
    let seen = StdArc::new(StdAtomic::new(0));
    let s2 = seen.clone();
    let b = Batcher::builder::<()>()
        .flushers(2)
        .max_items(8)
        .build(move |b: &mut Vec<u32>| {
            s2.fetch_add(b.len(), Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let n = if cfg!(miri) { 40 } else { 1000 };
    for i in 0..n {
        b.push(i).unwrap();
    }
    b.flush();
    assert_eq!(seen.load(Ordering::Relaxed), n as usize);
    b.close();
    assert_eq!(b.metrics().delivered, n as usize);
}

// ---- The streamed batcher (`build_stream`): batches made in the task. ----

mod streamed {
    use super::*;
    use core::pin::pin;
    use core::task::{Context, Poll as TaskPoll, Waker};
    use std::task::Wake;
    use std::boxed::Box;
    use std::vec;

    struct Count(StdAtomic);
    impl Wake for Count {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn counter() -> (StdArc<Count>, Waker) {
        let c = StdArc::new(Count(StdAtomic::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// Runs `f` on a thread; fails the test if it has not finished within
    /// ten seconds (a lost wake-up hangs instead of failing).
    fn within_10s<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("no wake-up came within 10 s")
    }

    #[test]
    fn one_wake_of_the_stream_task_per_run_of_pushes() {
        let (b, mut s) = Batcher::builder().max_items(64).build_stream().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut next = pin!(s.next_batch());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        for i in 0..64u32 {
            b.push(i).unwrap();
        }
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the first publish wakes the task; the other 63 find nobody waiting"
        );
        match next.as_mut().poll(&mut cx) {
            TaskPoll::Ready(Some(v)) => assert_eq!(v, (0..64).collect::<Vec<_>>()),
            other => panic!("expected a full batch, got {other:?}"),
        }
        let m = b.metrics();
        assert_eq!((m.batches, m.by_items, m.delivered), (1, 1, 64));
    }

    #[test]
    fn a_waiting_batch_ships_at_its_deadline_without_more_pushes() {
        let (b, mut s) = Batcher::builder()
            .max_items(64)
            .max_delay(Duration::from_millis(30))
            .build_stream()
            .unwrap();
        let t = Instant::now();
        b.push(7u32).unwrap();
        let (got, waited) = within_10s(move || {
            let got = pollster::block_on(s.next_batch());
            (got, t.elapsed())
        });
        assert_eq!(got, Some(vec![7]));
        assert!(waited >= Duration::from_millis(30), "shipped early: {waited:?}");
        assert_eq!(b.metrics().by_time, 1);
    }

    #[test]
    fn natural_batching_ships_what_is_there_at_once() {
        let (b, mut s) = Batcher::builder()
            .max_items(64)
            .max_delay(Duration::ZERO)
            .build_stream()
            .unwrap();
        for i in 0..5u32 {
            b.push(i).unwrap();
        }
        let got = pollster::block_on(s.next_batch());
        assert_eq!(got, Some(vec![0, 1, 2, 3, 4]));
    }

    #[test]
    fn flush_waits_until_the_stream_yielded_the_lingering_batch() {
        let (b, mut s) = Batcher::builder()
            .max_items(64)
            .max_delay(Duration::from_secs(60))
            .build_stream()
            .unwrap();
        let b = StdArc::new(b);
        let consumer = thread::spawn(move || {
            pollster::block_on(async {
                let mut all = Vec::new();
                while let Some(batch) = s.next_batch().await {
                    all.push(batch);
                }
                all
            })
        });
        for i in 0..3u32 {
            b.push(i).unwrap();
        }
        let b2 = b.clone();
        within_10s(move || b2.flush());
        assert_eq!(b.metrics().delivered, 3, "flush returned after the yield");
        assert_eq!(b.metrics().by_manual, 1);
        b.push(3).unwrap();
        pollster::block_on(b.flush_async());
        assert_eq!(b.metrics().delivered, 4);
        b.close();
        let all = consumer.join().unwrap();
        assert_eq!(all, [vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn byte_limit_and_a_panicking_weigher_lose_nothing() {
        let reported: StdArc<StdMutex<Vec<u32>>> = Default::default();
        let r = reported.clone();
        let (b, mut s) = Batcher::builder()
            .max_items(64)
            .max_delay(Duration::ZERO)
            .max_bytes(10, |v: &u32| {
                assert!(*v != 13, "unlucky");
                *v as usize
            })
            .on_error(move |e, items: &mut Vec<u32>| {
                assert!(matches!(e, BatchError::Unweighed(_)));
                r.lock().unwrap().extend(items.iter().copied());
            })
            .build_stream()
            .unwrap();
        for v in [4u32, 5, 13, 3, 9, 1] {
            b.push(v).unwrap();
        }
        b.close();
        let batches = pollster::block_on(async {
            let mut all = Vec::new();
            while let Some(batch) = s.next_batch().await {
                all.push(batch);
            }
            all
        });
        // 4 + 5 = 9; 13 goes to the error callback alone; 9 + 3 > 10 ships
        // [4, 5] and carries 3; 3 + 9 > 10 ships [3]; the close ships [9, 1].
        assert_eq!(batches, [vec![4, 5], vec![3], vec![9, 1]]);
        assert_eq!(*reported.lock().unwrap(), [13]);
        let m = b.metrics();
        assert_eq!((m.unweighed, m.by_bytes, m.delivered), (1, 2, 5));
    }

    #[test]
    fn dropped_next_batch_future_loses_nothing_and_close_async_waits_for_the_end() {
        let (b, mut s) = Batcher::builder()
            .max_items(4)
            .max_delay(Duration::from_secs(60))
            .build_stream()
            .unwrap();
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        for i in 0..3u32 {
            b.push(i).unwrap();
        }
        {
            // Takes 0..3 into the filling batch, then waits (the deadline
            // is far off); dropped mid-wait.
            let mut next = pin!(s.next_batch());
            assert!(next.as_mut().poll(&mut cx).is_pending());
        }
        let mut close = pin!(b.close_async());
        assert!(close.as_mut().poll(&mut cx).is_pending(), "the stream has not ended");
        let rest = pollster::block_on(async {
            let mut all = Vec::new();
            while let Some(batch) = s.next_batch().await {
                all.push(batch);
            }
            all
        });
        assert_eq!(rest, [vec![0, 1, 2]]);
        assert!(close.as_mut().poll(&mut cx).is_ready());
        assert_eq!(b.metrics().by_close, 1);
        let _ = Box::new(s); // ended: dropping it reports nothing
    }
}
