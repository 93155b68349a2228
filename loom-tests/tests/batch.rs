//! Loom models of the batcher's flush/close/sleep hand-off. Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test batch`.
//!
//! The batcher's flusher loop, flush target and epoch live in its
//! `Handoff`, and its flushers sleep on the adapters' doorbell (both
//! reached through `latchfree::__loom`); these models run that very loop
//! on a loom thread against the same kind of queue the batcher uses (a
//! multi-producer ring with one consumer), with a batch that records what
//! was shipped. Time stands still under loom (see the module docs), so a
//! batch with a delay lingers until a flush or the close ships it, and a
//! zero delay ships at once. A lost wake-up shows up as a deadlock or a
//! waiter that never finishes; a lost or doubled item as a failed count.
#![cfg(latchfree_loom)]

use std::time::{Duration, Instant};

use latchfree::__loom::{clock, Flush, FlushCause, Handoff};
use latchfree::ring::{BusySpin, Consumer, Heap, Multi, MultiProducer, Poll, Ring, Worker};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

mod support;
use support::model;

type Q = Ring<Heap<usize>, Multi, BusySpin>;

/// What the batcher shares: the queue, the hand-off, and (for the checks)
/// every shipped item with the cause of its batch.
struct Shared {
    ring: Arc<Q>,
    handoff: Handoff,
    shipped: Mutex<Vec<(usize, FlushCause)>>,
    /// Items shipped, for waiters.
    count: AtomicUsize,
}

/// Where a flusher takes items from, as in the batcher: the one consumer,
/// or a work-group worker with one past the highest sequence it took.
enum Src {
    One(Consumer<Arc<Q>>),
    Many(Worker<Arc<Q>>, u64),
}

/// The flusher's queue side: its source and a batch.
struct TestFlusher {
    shared: Arc<Shared>,
    src: Src,
    batch: Vec<usize>,
    first_at: Option<Instant>,
}

impl Flush for TestFlusher {
    /// The batch has no item limit here: everything waiting is taken.
    fn take(&mut self) -> Poll {
        let batch = &mut self.batch;
        let was_empty = batch.is_empty();
        let p = match &mut self.src {
            Src::One(c) => c.poll(|x, _, _| batch.push(*x)),
            Src::Many(w, taken) => w.poll(|x, seq, _| {
                batch.push(*x);
                *taken = (*taken).max(seq + 1);
            }),
        };
        if was_empty && !self.batch.is_empty() {
            self.first_at = Some(clock());
        }
        p
    }

    /// Nothing to weigh, no limit to ship at.
    fn absorb(&mut self) {}

    fn position(&self) -> u64 {
        match &self.src {
            Src::One(c) => c.sequence(),
            Src::Many(_, taken) => *taken,
        }
    }

    fn ship(&mut self, cause: FlushCause) {
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.len();
        let mut log = self.shared.shipped.lock().unwrap();
        log.extend(self.batch.drain(..).map(|x| (x, cause)));
        drop(log);
        self.shared.count.fetch_add(n, Ordering::SeqCst);
        self.first_at = None;
    }

    fn first_at(&self) -> Option<Instant> {
        self.first_at
    }
}

/// A batcher with one flusher thread (`max_delay` as given) and a queue of
/// `cap` slots; returns the shared state, the flusher's join handle and a
/// producer.
fn batcher(
    cap: usize,
    max_delay: Duration,
) -> (Arc<Shared>, thread::JoinHandle<()>, MultiProducer<Arc<Q>>) {
    let (s, mut flushers, p) = batcher_n(1, cap, max_delay);
    (s, flushers.pop().unwrap(), p)
}

/// The same with `n` flushers: one consumer, or a work group of `n`.
fn batcher_n(
    n: usize,
    cap: usize,
    max_delay: Duration,
) -> (
    Arc<Shared>,
    Vec<thread::JoinHandle<()>>,
    MultiProducer<Arc<Q>>,
) {
    let ring: Arc<Q> = Arc::new(Ring::with_wait(
        Heap::builder(cap).gates(n + 1).build().unwrap(),
        BusySpin,
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let srcs: Vec<Src> = if n == 1 {
        vec![Src::One(g.consumer(&[]).unwrap())]
    } else {
        g.work_group_vec(n, &[])
            .unwrap()
            .into_iter()
            .map(|w| Src::Many(w, 0))
            .collect()
    };
    let producer = g.multi_producer().unwrap();
    let shared = Arc::new(Shared {
        ring,
        handoff: Handoff::new(n),
        shipped: Mutex::new(Vec::new()),
        count: AtomicUsize::new(0),
    });
    let flushers = srcs
        .into_iter()
        .enumerate()
        .map(|(i, src)| {
            let mut f = TestFlusher {
                shared: shared.clone(),
                src,
                batch: Vec::new(),
                first_at: None,
            };
            let s2 = shared.clone();
            thread::spawn(move || s2.handoff.run(i, max_delay, &mut f))
        })
        .collect();
    (shared, flushers, producer)
}

/// The batcher's `try_push`: a wake after an accepted publish.
fn push(s: &Shared, p: &mut MultiProducer<Arc<Q>>, x: usize) -> Result<(), usize> {
    let r = p.try_push(x).map(|_| ()).map_err(|e| e.into_inner());
    if r.is_ok() {
        s.handoff.pushed();
    }
    r
}

/// The batcher's blocking `push`: waits for room (refused only by the
/// close), then the same wake.
fn push_blocking(s: &Shared, p: &mut MultiProducer<Arc<Q>>, x: usize) -> Result<(), usize> {
    let r = p.push(x).map(|_| ()).map_err(|e| e.into_inner());
    if r.is_ok() {
        s.handoff.pushed();
    }
    r
}

/// The batcher's flush: the caller's view of the claim position is the
/// target.
fn flush(s: &Shared, p: &mut MultiProducer<Arc<Q>>) {
    let target = p.sequence();
    s.handoff.flush(target);
}

fn close(s: &Shared, flusher: thread::JoinHandle<()>) {
    s.ring.close();
    s.handoff.wake_all();
    flusher.join().unwrap();
}

/// (a) A producer pushes while the main thread flushes, with a batch that
/// would otherwise linger: if the push returned before `flush` was called,
/// the item was shipped when `flush` returns. Everything is shipped
/// exactly once in the end.
#[test]
fn flush_ships_everything_pushed_before() {
    model(|| {
        let (s, flusher, mut p) = batcher(2, Duration::from_secs(1));
        let mut mine = p.clone();
        let pushed = Arc::new(AtomicBool::new(false));
        let (s2, pushed2) = (s.clone(), pushed.clone());
        // The producer handle comes back: dropping the last one would
        // close the ring (the batcher keeps its handles until it closes).
        let producer = thread::spawn(move || {
            push(&s2, &mut p, 7).unwrap();
            pushed2.store(true, Ordering::SeqCst);
            p
        });
        let before = pushed.load(Ordering::SeqCst);
        flush(&s, &mut mine);
        if before {
            let log = s.shipped.lock().unwrap();
            assert_eq!(&*log, &[(7, FlushCause::Manual)], "flush missed an item");
        }
        let p = producer.join().unwrap();
        close(&s, flusher);
        drop((p, mine));
        let log = s.shipped.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].0, 7);
    });
}

/// (b) `close` races a push: an accepted item is shipped exactly once
/// (before the flusher exits), a refused one comes back to the caller.
#[test]
fn close_races_push_exactly_once() {
    model(|| {
        let (s, flusher, mut p) = batcher(2, Duration::from_secs(1));
        let s2 = s.clone();
        let producer = thread::spawn(move || (push(&s2, &mut p, 5), p));
        close(&s, flusher);
        let (r, p) = producer.join().unwrap();
        drop(p);
        let log = s.shipped.lock().unwrap();
        match r {
            Ok(()) => assert_eq!(&*log, &[(5, FlushCause::Close)]),
            Err(x) => {
                assert_eq!(x, 5);
                assert!(log.is_empty(), "a refused item was shipped: {log:?}");
            }
        }
    });
}

/// (c) Natural batching (zero delay): the flusher goes to sleep while two
/// pushes arrive from two threads. Neither may be stranded: the main thread
/// waits (through the model) until both were shipped, without any flush
/// or close to rescue them; then closes.
#[test]
fn push_after_sleep_decision_is_never_stranded() {
    model(|| {
        let (s, flusher, p) = batcher(2, Duration::ZERO);
        let mut p2 = p.clone();
        let mut p = p;
        let s2 = s.clone();
        let producer = thread::spawn(move || {
            push(&s2, &mut p2, 1).unwrap();
            p2
        });
        push(&s, &mut p, 2).unwrap();
        while s.count.load(Ordering::SeqCst) < 2 {
            thread::yield_now();
        }
        let p2 = producer.join().unwrap();
        close(&s, flusher);
        drop(p2);
        let mut items: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
        items.sort_unstable();
        assert_eq!(items, [1, 2]);
        drop(p);
    });
}

/// (d) Issue 11, failure 1: a producer blocked in `push` on a full queue
/// (one slot) races a flush. The flush must not wait for the blocked push
/// (which has claimed nothing), and the flusher must keep draining so the
/// push gets its room: no deadlock, everything the producer had pushed
/// when the flush began is shipped when it returns, and both items are
/// shipped exactly once in the end. (Against the old hand-off, which
/// counted the blocked push in flight and stopped draining until nothing
/// was, this model never finishes.)
#[test]
fn blocking_push_races_flush() {
    model(|| {
        let (s, flusher, mut p) = batcher(1, Duration::from_secs(1));
        let mut mine = p.clone();
        let pushed = Arc::new(AtomicUsize::new(0));
        let (s2, pushed2) = (s.clone(), pushed.clone());
        let producer = thread::spawn(move || {
            for x in [1, 2] {
                push_blocking(&s2, &mut p, x).unwrap();
                pushed2.store(x, Ordering::SeqCst);
            }
            p
        });
        let before = pushed.load(Ordering::SeqCst);
        flush(&s, &mut mine);
        let log: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
        assert!(
            (1..=before).all(|x| log.contains(&x)),
            "flush missed an item: {before} pushed before, {log:?} shipped"
        );
        let p = producer.join().unwrap();
        close(&s, flusher);
        drop((p, mine));
        let log: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
        assert_eq!(log, [1, 2]);
    });
}

/// (e) A producer blocked in `push` on a full queue races the close: it is
/// refused with its item back or accepted and shipped exactly once; the
/// item before it is shipped; the flusher exits.
#[test]
fn blocking_push_races_close() {
    model(|| {
        let (s, flusher, mut p) = batcher(1, Duration::from_secs(1));
        push(&s, &mut p, 1).unwrap();
        let s2 = s.clone();
        let producer = thread::spawn(move || (push_blocking(&s2, &mut p, 2), p));
        close(&s, flusher);
        let (r, p) = producer.join().unwrap();
        drop(p);
        let log: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
        match r {
            Ok(()) => assert_eq!(log, [1, 2]),
            Err(x) => {
                assert_eq!(x, 2);
                assert_eq!(log, [1], "a refused item was shipped");
            }
        }
    });
}

/// (f) Two flushers sharing the queue as a work group (the batcher's
/// unordered mode): an item pushed before a flush is shipped when it
/// returns, whichever flusher took it; the flusher that did not take it
/// learns from the other that the target was reached.
#[test]
fn two_flushers_answer_a_flush() {
    model(|| {
        let (s, flushers, mut p) = batcher_n(2, 1, Duration::from_secs(1));
        push(&s, &mut p, 1).unwrap();
        flush(&s, &mut p);
        {
            let log: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
            assert_eq!(log, [1], "flush returned before the item was shipped");
        }
        s.ring.close();
        s.handoff.wake_all();
        for f in flushers {
            f.join().unwrap();
        }
        assert_eq!(s.count.load(Ordering::SeqCst), 1);
        drop(p);
    });
}

/// (f2) `close` races a push with two flushers and natural batching: the
/// producer's slot may be claimed before the close and published after it,
/// while both flushers check the queue. Its wake-up goes to one sleeper;
/// the other must not sleep on: both exit, and the item, if accepted, is
/// shipped exactly once. (Found in CI: a flusher asleep after the close,
/// `close` joining it for ever.)
#[test]
fn close_races_push_with_two_flushers() {
    model(|| {
        let (s, flushers, mut p) = batcher_n(2, 2, Duration::ZERO);
        let s2 = s.clone();
        let producer = thread::spawn(move || (push(&s2, &mut p, 5), p));
        s.ring.close();
        s.handoff.wake_all();
        for f in flushers {
            f.join().unwrap();
        }
        let (r, p) = producer.join().unwrap();
        drop(p);
        let log: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
        match r {
            Ok(()) => assert_eq!(log, [5]),
            Err(x) => {
                assert_eq!(x, 5);
                assert!(log.is_empty(), "a refused item was shipped: {log:?}");
            }
        }
    });
}

/// (g) A flush behind a gap: the main thread pushes while another thread
/// pushes and then flushes. If the main thread claimed first and has not
/// published yet, the other thread's item sits behind that gap; its flush
/// must still ship it before returning (the flusher waits for the gap to
/// fill: a claimed slot is published without waiting).
#[test]
fn flush_waits_for_a_gap_below_its_target() {
    model(|| {
        let (s, flusher, mut p) = batcher(2, Duration::from_secs(1));
        let mut other = p.clone();
        let s2 = s.clone();
        let flushing = thread::spawn(move || {
            push(&s2, &mut other, 2).unwrap();
            flush(&s2, &mut other);
            let log: Vec<usize> = s2.shipped.lock().unwrap().iter().map(|x| x.0).collect();
            assert!(log.contains(&2), "flush missed its own item: {log:?}");
            other
        });
        push(&s, &mut p, 1).unwrap();
        let other = flushing.join().unwrap();
        close(&s, flusher);
        drop((p, other));
        let mut log: Vec<usize> = s.shipped.lock().unwrap().iter().map(|x| x.0).collect();
        log.sort_unstable();
        assert_eq!(log, [1, 2]);
    });
}

/// The batcher's `flush_async`: start the flush, then await the flushers'
/// acknowledgements through `poll_answered` (the waker registered under
/// the same lock `ack` takes). An item pushed before it is shipped when it
/// completes; a lost acknowledgement wake-up is a deadlock of `block_on`.
#[test]
fn flush_async_is_woken_by_the_acknowledgement() {
    use loom::future::block_on;
    use std::future::poll_fn;
    use std::task::Poll as TaskPoll;

    model(|| {
        let (s, flusher, mut p) = batcher(2, Duration::from_secs(1));
        push(&s, &mut p, 1).unwrap();
        let epoch = s.handoff.start_flush(p.sequence());
        block_on(poll_fn(|cx| {
            if s.handoff.poll_answered(Some(epoch), cx.waker()) {
                TaskPoll::Ready(())
            } else {
                TaskPoll::Pending
            }
        }));
        assert_eq!(s.count.load(Ordering::SeqCst), 1, "shipped by the flush");
        drop(p);
        close(&s, flusher);
    });
}

/// The batcher's `close_async`: close, then await every flusher's exit
/// (its last acknowledgement) without joining; everything pushed was
/// shipped by then.
#[test]
fn close_async_is_woken_by_the_last_flusher() {
    use loom::future::block_on;
    use std::future::poll_fn;
    use std::task::Poll as TaskPoll;

    model(|| {
        let (s, flusher, mut p) = batcher(2, Duration::from_secs(1));
        push(&s, &mut p, 1).unwrap();
        s.ring.close();
        s.handoff.wake_all();
        block_on(poll_fn(|cx| {
            if s.handoff.poll_answered(None, cx.waker()) {
                TaskPoll::Ready(())
            } else {
                TaskPoll::Pending
            }
        }));
        assert_eq!(s.count.load(Ordering::SeqCst), 1, "shipped before the exit");
        flusher.join().unwrap();
        drop(p);
    });
}

/// The streamed batcher's stream task (`batch::tap`): takes what the
/// queue holds, answers a flush whose items it has all taken, ends (and
/// says so) once the queue is closed and drained; otherwise registers,
/// looks again, and waits. Returns once it answered `until`.
fn stream_task(tap: &latchfree::__loom::Tap, c: &mut Consumer<Arc<Q>>, until: u64) -> usize {
    use std::future::poll_fn;
    use std::task::Poll as TaskPoll;
    let (mut taken, mut answered, mut id) = (0usize, 0u64, None);
    loom::future::block_on(poll_fn(|cx| {
        let mut armed = false;
        loop {
            let p = c.poll(|_, _, _| taken += 1);
            if let Poll::Closed = p {
                tap.forget_stream(&mut id);
                tap.answer(u64::MAX);
                return TaskPoll::Ready(taken);
            }
            let wanted = tap.wanted();
            if wanted > answered && c.sequence() >= wanted {
                answered = c.sequence();
                tap.answer(answered);
            }
            if answered >= until {
                tap.forget_stream(&mut id);
                return TaskPoll::Ready(taken);
            }
            if let Poll::Processed(_) = p {
                continue;
            }
            if armed {
                return TaskPoll::Pending;
            }
            tap.register_stream(&mut id, cx.waker());
            armed = true;
        }
    }))
}

/// A producer pushes and then flushes (blocking, parked on its thread)
/// while the stream task takes the item and waits: the push wakes the
/// stream, the flush request wakes it again, its answer unparks the
/// flusher. With the fence gone from either side of a `Room`, or the
/// re-check gone from the stream or from `poll_answered`, this deadlocks.
#[test]
fn tap_flush_races_the_stream_task() {
    use latchfree::__loom::Tap;
    model(|| {
        let ring: Arc<Q> = Arc::new(Ring::with_wait(
            Heap::builder(2).gates(1).build().unwrap(),
            BusySpin,
        ));
        let tap = Arc::new(Tap::new());
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        let producer = {
            let tap = tap.clone();
            thread::spawn(move || {
                p.push(7).unwrap();
                tap.pushed();
                tap.flush(p.sequence());
            })
        };
        assert_eq!(stream_task(&tap, &mut c, 1), 1);
        producer.join().unwrap();
    });
}

/// The close (queue closed, then the stream woken) races the stream task;
/// a `close_async`-style waiter for the end always finishes, and the item
/// pushed before the close is taken exactly once.
#[test]
fn tap_close_races_the_stream_task() {
    use latchfree::__loom::Tap;
    model(|| {
        let ring: Arc<Q> = Arc::new(Ring::with_wait(
            Heap::builder(2).gates(1).build().unwrap(),
            BusySpin,
        ));
        let tap = Arc::new(Tap::new());
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        let closer = {
            let tap = tap.clone();
            let ring = ring.clone();
            thread::spawn(move || {
                p.push(7).unwrap();
                tap.pushed();
                ring.close();
                tap.pushed();
                tap.wait_answered(u64::MAX);
                assert!(tap.finished());
            })
        };
        assert_eq!(stream_task(&tap, &mut c, u64::MAX), 1);
        closer.join().unwrap();
    });
}
