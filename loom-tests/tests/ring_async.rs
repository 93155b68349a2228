//! Loom models of the async wait protocol: `AsyncWait` (the ring's waker
//! cells, register-fence-re-check against notify's fence-load) and the
//! `AtomicWaker` cell under it. Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test ring_async`.
//!
//! The waiting side runs under `loom::future::block_on`, which parks the
//! model thread until its waker is called: a lost wake-up is a deadlock,
//! which loom reports as a failure. With the re-check in the ring's
//! futures removed (`Retry::poll` returning `Pending` right after
//! registering), `register_races_publish` and `register_races_close` fail.
#![cfg(latchfree_loom)]

use std::task::{Wake, Waker};

use latchfree::__loom::AtomicWaker;
use latchfree::ring::{
    AsyncWait, BusySpin, ConsumeError, Consumer, Heap, Multi, Poll, Producer, Ring, Single,
};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

mod support;
use support::model;

type Sp = Ring<Heap<usize>, Single, AsyncWait<BusySpin, 2>>;
type Mp = Ring<Heap<usize>, Multi, AsyncWait<BusySpin, 2>>;

fn sp(cap: usize, gates: usize) -> Arc<Sp> {
    Arc::new(Ring::with_wait(
        Heap::builder(cap).gates(gates).build().unwrap(),
        AsyncWait::with(BusySpin),
    ))
}

/// A two-slot single-producer ring with one consumer: the ring, its
/// consumer and its producer.
fn sp_pair() -> (Arc<Sp>, Consumer<Arc<Sp>>, Producer<Arc<Sp>>) {
    let ring = sp(2, 1);
    let mut g = Ring::graph(ring.clone()).unwrap();
    let c = g.consumer(&[]).unwrap();
    (ring, c, g.single_producer().unwrap())
}

/// A consumer awaits while the producer publishes: whichever runs first,
/// the consumer gets the event (a lost wake is a deadlock).
#[test]
fn register_races_publish() {
    model(|| {
        let (_, mut c, mut p) = sp_pair();
        let consumer = thread::spawn(move || {
            let mut got = 0;
            let r = block_on(c.wait_async(|e, _, _| got = *e));
            (r, got)
        });
        p.push(7).unwrap();
        assert_eq!(consumer.join().unwrap(), (Ok(1), 7));
        drop(p);
    });
}

/// A consumer awaits while the ring is closed (the producer dropped): it
/// completes with `Closed`.
#[test]
fn register_races_close() {
    model(|| {
        let (_, mut c, p) = sp_pair();
        let consumer = thread::spawn(move || block_on(c.wait_async(|_, _, _| ())));
        drop(p);
        assert_eq!(consumer.join().unwrap(), Err(ConsumeError::Closed));
    });
}

/// A consumer awaits while the ring is halted: it completes with `Halted`.
/// The re-check after registering is the cheap one (cursor and state
/// bits), so the halt bit must be in it.
#[test]
fn register_races_halt() {
    model(|| {
        let (ring, mut c, _p) = sp_pair();
        let consumer = thread::spawn(move || block_on(c.wait_async(|_, _, _| ())));
        ring.halt();
        assert_eq!(consumer.join().unwrap(), Err(ConsumeError::Halted));
    });
}

/// A consumer of a multi-producer ring awaits while the ring is closed:
/// the closed flag lives in the claim word there, not in the state bits,
/// and the cheap re-check must read it.
#[test]
fn register_races_close_multi() {
    model(|| {
        let ring: Arc<Mp> = Arc::new(Ring::with_wait(
            Heap::builder(2).gates(1).build().unwrap(),
            AsyncWait::with(BusySpin),
        ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let _p = g.multi_producer().unwrap();
        let consumer = thread::spawn(move || block_on(c.wait_async(|_, _, _| ())));
        ring.close();
        assert_eq!(consumer.join().unwrap(), Err(ConsumeError::Closed));
    });
}

/// Mixed use: a gated consumer awaits an upstream consumer that polls
/// without waiting; the upstream release wakes it (its cheap re-check
/// scans the upstream gate).
#[test]
fn gated_consumer_awaits_a_polling_upstream() {
    model(|| {
        let ring = sp(2, 2);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut a = g.consumer(&[]).unwrap();
        let mut b = g.consumer(&[a.node()]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(3).unwrap();
        let downstream = thread::spawn(move || {
            let mut got = 0;
            let r = block_on(b.wait_async(|e, _, _| got = *e));
            (r, got)
        });
        assert_eq!(a.poll(|e, _, _| assert_eq!(*e, 3)), Poll::Processed(1));
        assert_eq!(downstream.join().unwrap(), (Ok(1), 3));
        drop(p);
    });
}

/// One future polled more than once keeps its cell: a consumer awaits two
/// events in turn while the producer publishes them; neither wake is lost.
/// Without the spin hint in `AtomicWaker::register`'s busy path, loom
/// reports a livelock here (the registrant re-polled itself while the
/// notifier, holding the cell, was never scheduled).
#[test]
fn consumer_awaits_two_publishes_in_turn() {
    model(|| {
        let (_, mut c, mut p) = sp_pair();
        let consumer = thread::spawn(move || {
            let mut sum = 0;
            let mut n = 0;
            while n < 2 {
                n += block_on(c.wait_async(|e, _, _| sum += *e)).unwrap();
            }
            sum
        });
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(consumer.join().unwrap(), 3);
        drop(p);
    });
}

/// Two consumers await the same publish, each in its own cell: both wake.
#[test]
fn two_waiters() {
    model(|| {
        let ring = sp(2, 2);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut a = g.consumer(&[]).unwrap();
        let mut b = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let ta = thread::spawn(move || block_on(a.wait_async(|_, _, _| ())));
        let tb = thread::spawn(move || block_on(b.wait_async(|_, _, _| ())));
        p.push(1).unwrap();
        assert_eq!(ta.join().unwrap(), Ok(1));
        assert_eq!(tb.join().unwrap(), Ok(1));
        drop(p);
    });
}

/// A producer awaits space on a full multi-producer ring while the
/// consumer releases the slot: the producer gets it, the event arrives.
#[test]
fn producer_awaits_a_release() {
    model(|| {
        let ring: Arc<Mp> = Arc::new(Ring::with_wait(
            Heap::builder(1).gates(1).build().unwrap(),
            AsyncWait::with(BusySpin),
        ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        p.push(1).unwrap();
        let producer = thread::spawn(move || block_on(p.push_async(2)).is_ok());
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 1)), Poll::Processed(1));
        assert!(producer.join().unwrap());
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 2)), Poll::Processed(1));
    });
}

/// A single producer awaits space on a full ring while the consumer
/// releases the slot. Its first wait probes (a short spin on a rescan of
/// the gates, `Spin`) before it registers: whether the probe sees the
/// release or not, the producer gets the slot and the event arrives.
#[test]
fn single_producer_probes_then_awaits_a_release() {
    model(|| {
        let ring = sp(1, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(1).unwrap();
        let producer = thread::spawn(move || {
            let r = block_on(p.push_async(2)).is_ok();
            drop(p); // closes the ring once the consumer has drained it
            r
        });
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 1)), Poll::Processed(1));
        assert!(producer.join().unwrap());
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 2)), Poll::Processed(1));
    });
}

struct Count(AtomicUsize);
impl Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
fn counter() -> (std::sync::Arc<Count>, Waker) {
    let c = std::sync::Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

/// The registrant replaces its waker while a wake is in flight: if its
/// re-check (after the new registration) finds nothing, the new waker is
/// woken; the old one is woken at most once; the cell keeps no clone of
/// the old one once the wake is over.
#[test]
fn waker_replaced_while_a_wake_is_in_flight() {
    model(|| {
        let cell = Arc::new(AtomicWaker::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (old, w_old) = counter();
        let (new, w_new) = counter();
        cell.register(&w_old);
        let waker = {
            let (cell, flag) = (cell.clone(), flag.clone());
            thread::spawn(move || {
                flag.store(true, Ordering::Relaxed);
                cell.wake();
            })
        };
        cell.register(&w_new);
        let seen = flag.load(Ordering::Relaxed);
        waker.join().unwrap();
        let (o, n) = (old.0.load(Ordering::Relaxed), new.0.load(Ordering::Relaxed));
        assert!(
            seen || n == 1,
            "lost wake: re-check saw nothing and the new waker slept"
        );
        assert!(o <= 1 && n <= 1 && o + n >= 1);
        drop(w_old);
        // Only our handle is left on the old waker: the cell dropped its
        // clone on replacement, or the wake consumed it.
        assert_eq!(std::sync::Arc::strong_count(&old), 1);
    });
}

/// A waiting future is polled again, with another waker, while the
/// producer's publish wakes its cell (the notify may be taking the first
/// waker out as the re-poll arms the cell again: the owner must then not
/// write the cell but ask to be polled again). No lost wake: the re-poll
/// completes, or the waker it left registered is woken. Once the ring is
/// dropped no waker is left: each count is referenced by its handle only.
#[test]
fn repoll_races_a_wake_in_flight() {
    use std::future::Future;
    use std::task::{Context, Poll as TaskPoll};
    model(|| {
        let (_, mut c, mut p) = sp_pair();
        let (old, w_old) = counter();
        let (new, w_new) = counter();
        let producer = thread::spawn(move || {
            p.push(7).unwrap();
            p
        });
        let mut fut = Box::pin(c.wait_async(|_, _, _| ()));
        let mut last = fut.as_mut().poll(&mut Context::from_waker(&w_old));
        if last.is_pending() {
            last = fut.as_mut().poll(&mut Context::from_waker(&w_new));
        }
        let p = producer.join().unwrap();
        if last.is_pending() {
            assert!(
                new.0.load(Ordering::Relaxed) >= 1,
                "lost wake: the re-poll's registration slept"
            );
            assert_eq!(
                fut.as_mut().poll(&mut Context::from_waker(&w_new)),
                TaskPoll::Ready(Ok(1))
            );
        }
        drop(fut);
        drop((c, p));
        drop((w_old, w_new));
        // The cell may keep a waker until the ring drops (with `c`).
        assert_eq!(std::sync::Arc::strong_count(&old), 1, "old waker kept");
        assert_eq!(std::sync::Arc::strong_count(&new), 1, "new waker kept");
    });
}

/// One task awaits twice in a row with one waker, in the one cell its
/// handle keeps between the waits, while the producer publishes twice: no
/// wake is lost.
#[test]
fn kept_waker_serves_two_waits() {
    model(|| {
        let (_, mut c, mut p) = sp_pair();
        let consumer = thread::spawn(move || {
            block_on(async {
                let (mut sum, mut n) = (0, 0);
                while n < 2 {
                    n += c.wait_async(|e, _, _| sum += *e).await.unwrap();
                }
                sum
            })
        });
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(consumer.join().unwrap(), 3);
        drop(p);
    });
}

/// A waiting future is dropped while a publish notifies: its waker is
/// woken at most once (by a notify that claimed the cell before the drop
/// unarmed it), never again by later publishes although the cell keeps
/// it, and the ring drops it.
#[test]
fn dropped_future_races_a_publish() {
    use std::future::Future;
    use std::task::Context;
    model(|| {
        let (ring, mut c, mut p) = sp_pair();
        let (count, w) = counter();
        let producer = thread::spawn(move || {
            p.push(1).unwrap();
            p
        });
        {
            let mut fut = Box::pin(c.wait_async(|_, _, _| ()));
            let _ = fut.as_mut().poll(&mut Context::from_waker(&w));
        }
        let mut p = producer.join().unwrap();
        let woken = count.0.load(Ordering::Relaxed);
        assert!(woken <= 1);
        p.push(2).unwrap();
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            woken,
            "a kept waker was woken"
        );
        drop((c, p, ring, w));
        assert_eq!(
            std::sync::Arc::strong_count(&count),
            1,
            "the ring kept a waker"
        );
    });
}

/// A handle that was woken gives its one cell back (it is dropped) while
/// the notify that woke it may still be using the waker, and another
/// handle takes the cell and awaits: its own wait is not lost.
#[test]
fn new_owner_meets_a_cell_still_being_woken() {
    use std::future::Future;
    use std::task::Context;
    model(|| {
        let ring: Arc<Ring<Heap<usize>, Single, AsyncWait<BusySpin, 1>>> =
            Arc::new(Ring::with_wait(
                Heap::builder(2).gates(2).build().unwrap(),
                AsyncWait::with(BusySpin),
            ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut a = g.consumer(&[]).unwrap();
        let mut b = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, w) = counter();
        let mut fut = Box::pin(a.wait_async(|_, _, _| ()));
        assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        let producer = thread::spawn(move || {
            p.push(1).unwrap();
            p
        });
        drop(fut); // unarms, perhaps while the push claims the cell
        drop(a); // gives the cell back
        assert_eq!(block_on(b.wait_async(|e, _, _| assert_eq!(*e, 1))), Ok(1));
        let p = producer.join().unwrap();
        assert!(count.0.load(Ordering::Relaxed) <= 1);
        drop((b, p, ring, w));
        assert_eq!(std::sync::Arc::strong_count(&count), 1, "a waker kept");
    });
}

/// Polls `fut` with `waker` until it completes, yielding in between (a
/// busy executor: it does not wait for the wake, so the next wait can
/// start while the notify that woke this one is still waking).
fn busy_poll<F: std::future::Future>(fut: F, waker: &Waker) -> F::Output {
    let mut fut = Box::pin(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            return v;
        }
        thread::yield_now();
    }
}

/// A handle's second wait re-arms its kept cell, with another waker,
/// while the notify that woke its first wait may still be using the old
/// one: the owner must not write the cell before that notify is done with
/// it (it asks to be polled again instead). Loom reports the overlapping
/// accesses to the cell if it does not wait (checked by removing the
/// `done` check in `AsyncWait::arm`).
#[test]
fn rearm_while_a_wake_is_in_flight() {
    use std::future::Future;
    model(|| {
        let (_, mut c, mut p) = sp_pair();
        let (_c1, w1) = counter();
        let (_c2, w2) = counter();
        // A wait that finds nothing spends the handle's spin budget (its
        // first wait probes): the waits below register at once.
        assert!(Box::pin(c.wait_async(|_, _, _| ()))
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&w1))
            .is_pending());
        let producer = thread::spawn(move || {
            p.push(1).unwrap();
            p.push(2).unwrap();
            p
        });
        let mut n = busy_poll(c.wait_async(|_, _, _| ()), &w1).unwrap();
        while n < 2 {
            n += busy_poll(c.wait_async(|_, _, _| ()), &w2).unwrap();
        }
        drop(producer.join().unwrap());
    });
}

/// `rearm_while_a_wake_is_in_flight` with one cell, which no handle keeps
/// (a ring's cells above its lower half are lent per wait): each wait
/// takes the cell and gives it back when it ends, and the next wait takes
/// it again while the notify that woke the last one may still be using
/// it. That wait must neither write the cell before the notify is done
/// nor lose its own wake.
#[test]
fn lent_cell_taken_again_while_a_wake_is_in_flight() {
    use std::future::Future;
    model(|| {
        let ring: Arc<Ring<Heap<usize>, Single, AsyncWait<BusySpin, 1>>> =
            Arc::new(Ring::with_wait(
                Heap::builder(2).gates(1).build().unwrap(),
                AsyncWait::with(BusySpin),
            ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, w) = counter();
        // Spend the first wait's probe: the waits below register at once.
        assert!(Box::pin(c.wait_async(|_, _, _| ()))
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&w))
            .is_pending());
        let producer = thread::spawn(move || {
            p.push(1).unwrap();
            p.push(2).unwrap();
            p
        });
        let mut n = 0;
        while n < 2 {
            n += busy_poll(c.wait_async(|_, _, _| ()), &w).unwrap();
        }
        drop(producer.join().unwrap());
        drop((c, ring, w));
        assert_eq!(std::sync::Arc::strong_count(&count), 1, "a waker kept");
    });
}
