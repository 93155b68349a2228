//! Loom models of the batcher's flush/close/sleep hand-off. Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test batch`.
//!
//! The batcher's flusher loop, in-flight count, flush epoch and sleep flag
//! live in `batch_handoff::Handoff`; these models run that very loop on a
//! loom thread against the same kind of queue the batcher uses (a
//! multi-producer ring with one consumer), with a batch that records what
//! was shipped. Time stands still under loom (see the module docs), so a
//! batch with a delay lingers until a flush or the close ships it, and a
//! zero delay ships at once. A lost wake-up shows up as a deadlock or a
//! waiter that never finishes; a lost or doubled item as a failed count.
#![cfg(latchfree_loom)]

use std::time::{Duration, Instant};

use latchfree::batch_handoff::{clock, Flush, FlushCause, Handoff};
use latchfree::ring::{BusySpin, Consumer, Heap, Multi, MultiProducer, Poll, Ring};
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

/// The flusher's queue side: a plain consumer and a batch, as in the
/// batcher's single-flusher mode.
struct TestFlusher {
    shared: Arc<Shared>,
    src: Consumer<Arc<Q>>,
    batch: Vec<usize>,
    first_at: Option<Instant>,
}

impl Flush for TestFlusher {
    fn fill(&mut self) -> Poll {
        let batch = &mut self.batch;
        let was_empty = batch.is_empty();
        let p = self.src.poll(|x, _, _| batch.push(*x));
        if was_empty && !self.batch.is_empty() {
            self.first_at = Some(clock());
        }
        p
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
    let ring: Arc<Q> = Arc::new(Ring::new(Heap::with_default(cap, 2).unwrap(), BusySpin));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let src = g.consumer(&[]).unwrap();
    let producer = g.multi_producer();
    let shared = Arc::new(Shared {
        ring,
        handoff: Handoff::new(1),
        shipped: Mutex::new(Vec::new()),
        count: AtomicUsize::new(0),
    });
    let mut f = TestFlusher {
        shared: shared.clone(),
        src,
        batch: Vec::new(),
        first_at: None,
    };
    let s2 = shared.clone();
    let t = thread::spawn(move || s2.handoff.run(0, max_delay, &mut f));
    (shared, t, producer)
}

/// The batcher's push: counted in flight around the publish, a wake after.
fn push(s: &Shared, p: &mut MultiProducer<Arc<Q>>, x: usize) -> Result<(), usize> {
    s.handoff.begin_push();
    let r = p.try_push(x).map(|_| ()).map_err(|e| e.into_inner());
    s.handoff.end_push(r.is_ok());
    r
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
        s.handoff.flush();
        if before {
            let log = s.shipped.lock().unwrap();
            assert_eq!(&*log, &[(7, FlushCause::Manual)], "flush missed an item");
        }
        let p = producer.join().unwrap();
        close(&s, flusher);
        drop(p);
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
