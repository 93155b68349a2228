//! Loom models of the ring's protocols. Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test ring`.
//!
//! Loom explores every interleaving and every weak-memory outcome it models,
//! and checks each slot access against the others for a happens-before
//! edge, so a producer reusing a slot a consumer still reads is a failure
//! even when the values happen to look right. Threads here make a bounded
//! number of non-blocking polls and the main thread drains afterwards: spin
//! loops would multiply the states without adding new ones. The blocking
//! models use the `Blocking` strategy, whose sleeps loom understands.
#![cfg(latchfree_loom)]

use latchfree::ring::{
    Blocking, BusySpin, ConsumeError, Heap, Multi, Poll, PublishError, Ring, Single,
};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

mod support;
use support::model;

type Sp<T> = Ring<Heap<T>, Single, BusySpin>;
type Mp<T> = Ring<Heap<T>, Multi, BusySpin>;

fn sp<T: Default>(cap: usize, gates: usize) -> Arc<Sp<T>> {
    Arc::new(Ring::with_wait(
        Heap::builder(cap).gates(gates).build().unwrap(),
        BusySpin,
    ))
}

fn mp<T: Default>(cap: usize, gates: usize) -> Arc<Mp<T>> {
    Arc::new(Ring::with_wait(
        Heap::builder(cap).gates(gates).build().unwrap(),
        BusySpin,
    ))
}

/// A one-slot ring: the producer publishes, the consumer polls concurrently,
/// the producer tries a second event into the same slot. The second write
/// must never overlap the consumer's read of the first.
#[test]
fn single_producer_publish_consume() {
    model(|| {
        let ring = sp::<usize>(1, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let producer = thread::spawn(move || {
            p.publish(|e| *e = 10).unwrap();
            let second = p.try_publish(|e| *e = 20).is_ok();
            (p, second)
        });
        let mut seen = Vec::new();
        let _ = c.poll(|e, seq, _| seen.push((seq, *e)));
        let (p, second) = producer.join().unwrap();
        drop(p);
        while let Poll::Processed(_) = c.poll(|e, seq, _| seen.push((seq, *e))) {}
        let want: &[(u64, usize)] = if second {
            &[(0, 10), (1, 20)]
        } else {
            &[(0, 10)]
        };
        assert_eq!(seen, want);
        assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
    });
}

/// Two producers claim concurrently with a consumer that frees the only
/// slot: each event is delivered once, none overwrites an unread one.
#[test]
fn two_producers_claim_and_publish() {
    model(|| {
        let ring = mp::<usize>(1, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p1 = g.multi_producer().unwrap();
        let mut p2 = p1.clone();
        let t1 = thread::spawn(move || p1.try_publish(|e| *e = 1).is_ok());
        let t2 = thread::spawn(move || p2.try_publish(|e| *e = 2).is_ok());
        let mut sum = 0;
        let _ = c.poll(|e, _, _| sum += *e);
        let ok1 = t1.join().unwrap();
        let ok2 = t2.join().unwrap();
        while let Poll::Processed(_) = c.poll(|e, _, _| sum += *e) {}
        assert!(ok1 || ok2, "an empty ring accepts the first claim");
        assert_eq!(sum, usize::from(ok1) + 2 * usize::from(ok2));
        assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
    });
}

/// Two producers share a two-slot ring that has already wrapped once.
#[test]
fn two_producers_after_a_wrap() {
    model(|| {
        let ring = mp::<(usize, usize)>(2, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p1 = g.multi_producer().unwrap();
        p1.push((9, 0)).unwrap();
        p1.push((9, 1)).unwrap();
        let mut p2 = p1.clone();
        let t1 = thread::spawn(move || p1.try_push((1, 0)).is_ok());
        let t2 = thread::spawn(move || p2.try_push((2, 0)).is_ok());
        let mut got = Vec::new();
        let _ = c.poll(|e, _, _| got.push(*e));
        let ok = [t1.join().unwrap(), t2.join().unwrap()];
        while let Poll::Processed(_) = c.poll(|e, _, _| got.push(*e)) {}
        assert_eq!(&got[..2], &[(9, 0), (9, 1)]);
        let mut rest: Vec<_> = got[2..].iter().map(|e| e.0).collect();
        rest.sort_unstable();
        let want: Vec<usize> = (1..=2).filter(|i| ok[i - 1]).collect();
        assert_eq!(rest, want);
    });
}

/// The multi-producer scan reads stamps only, never the claim word, and
/// scans up to a capacity ahead: on a two-slot ring that has wrapped, a
/// consumer and a work-group worker poll while two producers publish into
/// the slots of the lap before. A stamp of the previous lap must never read
/// as published, and no event may be read before its writer's store
/// (loom checks the slot accesses).
#[test]
fn stamp_scan_never_reads_a_previous_lap_as_published() {
    model(|| {
        let ring = mp::<usize>(2, 3);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let [mut w] = g.work_group::<1>(&[]).unwrap();
        let mut p1 = g.multi_producer().unwrap();
        p1.push(10).unwrap();
        p1.push(11).unwrap();
        let _ = c.poll_limit(1, |e, _, _| assert_eq!(*e, 10));
        let _ = w.poll_limit(1, |e, _, _| assert_eq!(*e, 10));
        // Slot 0 is free again; slot 1 still holds 11 for both readers.
        let mut p2 = p1.clone();
        let t1 = thread::spawn(move || p1.try_push(12).ok().map(|seq| (seq, 12)));
        let t2 = thread::spawn(move || p2.try_push(13).ok().map(|seq| (seq, 13)));
        let tw = thread::spawn(move || {
            let mut got = Vec::new();
            let _ = w.poll_limit(usize::MAX, |e, seq, _| got.push((seq, *e)));
            (w, got)
        });
        let mut got = Vec::new();
        let _ = c.poll(|e, seq, _| got.push((seq, *e)));
        let mut sent = vec![(1, 11)];
        sent.extend(t1.join().unwrap());
        sent.extend(t2.join().unwrap());
        sent.sort_unstable();
        let (mut w, mut took) = tw.join().unwrap();
        while let Poll::Processed(_) = c.poll(|e, seq, _| got.push((seq, *e))) {}
        while let Poll::Processed(_) = w.poll(|e, seq, _| took.push((seq, *e))) {}
        // At least one claim fits (slot 0 is free); every event published
        // is seen once, in sequence order, with the value its writer stored.
        assert!(sent.len() >= 2);
        assert_eq!(got, sent);
        assert_eq!(took, sent);
    });
}

/// A -> B, both polling concurrently with the producer: B only sees an
/// event after A has handled it, and no slot is reused under either.
#[test]
fn gated_pipeline() {
    model(|| {
        let ring = sp::<usize>(1, 2);
        let handled_by_a = Arc::new(AtomicUsize::new(0));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut a = g.consumer(&[]).unwrap();
        let mut b = g.consumer(&[a.node()]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.publish(|e| *e = 0).unwrap();
        let producer = thread::spawn(move || {
            let _ = p.try_publish(|e| *e = 1);
        });
        let ha = handled_by_a.clone();
        let a_thread = thread::spawn(move || {
            let _ = a.poll(|_, _, _| {
                ha.fetch_add(1, Ordering::Relaxed);
            });
            a
        });
        let check = |e: &usize, seq: u64| {
            assert_eq!(*e, seq as usize);
            assert!(handled_by_a.load(Ordering::Relaxed) > seq as usize);
        };
        let _ = b.poll(|e, seq, _| check(e, seq));
        producer.join().unwrap();
        let mut a = a_thread.join().unwrap();
        while let Poll::Processed(_) = a.poll(|_, _, _| {
            handled_by_a.fetch_add(1, Ordering::Relaxed);
        }) {}
        while let Poll::Processed(_) = b.poll(|e, seq, _| check(e, seq)) {}
        assert_eq!(b.poll(|_, _, _| ()), Poll::Closed);
    });
}

/// Two workers race for two events while the producer tries to reuse a
/// slot: each event is handled exactly once.
#[test]
fn work_queue_exactly_once() {
    model(|| {
        let ring = sp::<usize>(2, 3);
        let counts = Arc::new([
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        ]);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let [mut w1, mut w2] = g.work_group::<2>(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.publish(|e| *e = 0).unwrap();
        p.publish(|e| *e = 1).unwrap();
        let c1 = counts.clone();
        let t1 = thread::spawn(move || {
            let _ = w1.poll_limit(1, |e, _, _| {
                c1[*e].fetch_add(1, Ordering::Relaxed);
            });
            w1
        });
        let c2 = counts.clone();
        let t2 = thread::spawn(move || {
            let _ = w2.poll_limit(1, |e, _, _| {
                c2[*e].fetch_add(1, Ordering::Relaxed);
            });
        });
        let third = p.try_publish(|e| *e = 2).is_ok();
        t2.join().unwrap();
        let mut w1 = t1.join().unwrap();
        drop(p);
        while let Poll::Processed(_) = w1.poll_limit(1, |e, _, _| {
            counts[*e].fetch_add(1, Ordering::Relaxed);
        }) {}
        let want = [1, 1, usize::from(third)];
        for (c, w) in counts.iter().zip(want) {
            assert_eq!(c.load(Ordering::Relaxed), w);
        }
    });
}

/// A work group gates a downstream consumer: the consumer never reads an
/// event a worker has not finished (the claim / busy-word handshake).
#[test]
fn downstream_of_a_work_group() {
    model(|| {
        let ring = sp::<usize>(2, 3);
        let done = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let [mut w] = g.work_group::<1>(&[]).unwrap();
        let mut after = g.consumer(&[w.group()]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.publish(|e| *e = 0).unwrap();
        p.publish(|e| *e = 1).unwrap();
        drop(p);
        let d = done.clone();
        let t = thread::spawn(move || {
            for _ in 0..2 {
                let _ = w.poll_limit(1, |e, _, _| d[*e].store(1, Ordering::Relaxed));
            }
        });
        let check = |e: &usize| assert_eq!(done[*e].load(Ordering::Relaxed), 1);
        let mut seen = 0;
        for _ in 0..2 {
            if let Poll::Processed(n) = after.poll(|e, _, _| check(e)) {
                seen += n;
            }
        }
        t.join().unwrap();
        while let Poll::Processed(n) = after.poll(|e, _, _| check(e)) {
            seen += n;
        }
        assert_eq!(seen, 2);
    });
}

/// The blocking strategy never loses a wake-up: a consumer asleep on an
/// empty ring wakes for the event and for the close.
#[test]
fn blocking_consumer_has_no_lost_wakeup() {
    model(|| {
        let ring = Arc::new(Ring::<Heap<usize>, Single, Blocking>::with_wait(
            Heap::builder(1).gates(1).build().unwrap(),
            Blocking::new(),
        ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let t = thread::spawn(move || {
            p.publish(|e| *e = 7).unwrap();
        });
        let mut sum = 0;
        while let Ok(_) = c.wait(|e, _, _| sum += *e) {}
        assert_eq!(sum, 7);
        t.join().unwrap();
    });
}

/// A producer asleep on a full ring wakes when the consumer frees the slot.
#[test]
fn blocking_producer_has_no_lost_wakeup() {
    model(|| {
        let ring = Arc::new(Ring::<Heap<usize>, Single, Blocking>::with_wait(
            Heap::builder(1).gates(1).build().unwrap(),
            Blocking::new(),
        ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.publish(|e| *e = 1).unwrap();
        let t = thread::spawn(move || {
            let mut sum = 0;
            let _ = c.poll(|e, _, _| sum += *e);
            (c, sum)
        });
        p.publish(|e| *e = 2).unwrap();
        let (mut c, mut sum) = t.join().unwrap();
        drop(p);
        while let Ok(_) = c.wait(|e, _, _| sum += *e) {}
        assert_eq!(sum, 3);
    });
}

/// Close races with publishing: every publish that returned `Ok` is
/// delivered, every one refused with `Closed` is not, and the consumer ends
/// with `Closed`.
#[test]
fn shutdown_drains_what_was_accepted() {
    model(|| {
        let ring = mp::<usize>(2, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        let producer = thread::spawn(move || {
            let mut accepted = 0;
            for i in 1..=2 {
                match p.try_publish(|e| *e = i) {
                    Ok(_) => accepted += i,
                    Err(PublishError::Closed(_)) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (p, accepted)
        });
        let r2 = ring.clone();
        let closer = thread::spawn(move || r2.close());
        let mut delivered = 0;
        let _ = c.poll(|e, _, _| delivered += *e);
        closer.join().unwrap();
        let (p, accepted) = producer.join().unwrap();
        drop(p);
        loop {
            match c.wait(|e, _, _| delivered += *e) {
                Ok(_) => {}
                Err(ConsumeError::Closed) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(accepted, delivered);
    });
}

/// Two producers claim across an epoch boundary (under loom the ring
/// rebuilds claim positions from its epoch, as on 32-bit targets; the ring
/// starts one event before the boundary) while the consumer frees the only
/// slot. A producer that paired the advanced epoch with an older claim word
/// would rebuild a position a lap ahead and push the epoch past the claim,
/// so the ring would look full for good: every accepted event must be
/// delivered once, under the sequence its publish returned, and a handle
/// that sat idle must then claim the next slot.
#[test]
fn producers_claim_across_an_epoch_boundary() {
    model(|| {
        let first = (1u64 << (usize::BITS - 3)) - 1;
        let ring: Arc<Mp<u64>> = Arc::new(Ring::with_first_sequence(
            Heap::builder(1).gates(1).build().unwrap(),
            BusySpin,
            first,
        ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p1 = g.multi_producer().unwrap();
        let mut p2 = p1.clone();
        let mut idle = p1.clone();
        let t1 = thread::spawn(move || {
            let mut ok = Vec::new();
            for v in [1, 2] {
                if let Ok(seq) = p1.try_push(v) {
                    ok.push((seq, v));
                }
            }
            ok
        });
        let t2 = thread::spawn(move || p2.try_push(3).ok().map(|seq| (seq, 3)));
        let mut got = Vec::new();
        let _ = c.poll(|e, seq, _| got.push((seq, *e)));
        let mut sent = t1.join().unwrap();
        sent.extend(t2.join().unwrap());
        while let Poll::Processed(_) = c.poll(|e, seq, _| got.push((seq, *e))) {}
        sent.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, sent);
        let seqs: Vec<u64> = got.iter().map(|&(s, _)| s).collect();
        let next = first + got.len() as u64;
        assert_eq!(seqs, (first..next).collect::<Vec<u64>>());
        // A handle that sat idle through it all still claims the right slot
        // (a corrupted epoch would make the ring look full for good).
        assert_eq!(idle.try_push(4).ok(), Some(next));
    });
}

/// The single producer across an epoch boundary with a consumer polling
/// concurrently: the producer keeps no epoch of its own and reads back the
/// one it last stored in the ring (it is that word's only writer), so its
/// first claim past the boundary must store the new epoch before the
/// cursor shows the event. The consumer and a work group (whose claim word
/// is rebuilt against that epoch) each see every event once, with its true
/// sequence, and the producer's own count (`sequence`) carries over too.
#[test]
fn single_producer_crosses_an_epoch_boundary() {
    model(|| {
        let first = (1u64 << (usize::BITS - 3)) - 1;
        let ring: Arc<Sp<u64>> = Arc::new(Ring::with_first_sequence(
            Heap::builder(2).gates(3).build().unwrap(),
            BusySpin,
            first,
        ));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let [mut w] = g.work_group::<1>(&[c.node()]).unwrap();
        let mut p = g.single_producer().unwrap();
        let producer = thread::spawn(move || {
            let mut sent = Vec::new();
            for v in [1, 2, 3] {
                if let Ok(seq) = p.try_push(v) {
                    sent.push((seq, v));
                }
            }
            (p, sent)
        });
        let mut got = Vec::new();
        let _ = c.poll(|e, seq, _| got.push((seq, *e)));
        let (p, sent) = producer.join().unwrap();
        assert_eq!(p.sequence(), first + sent.len() as u64);
        while let Poll::Processed(_) = c.poll(|e, seq, _| got.push((seq, *e))) {}
        assert_eq!(got, sent);
        assert_eq!(c.sequence(), p.sequence());
        let mut worked = Vec::new();
        while let Poll::Processed(_) = w.poll(|e, seq, _| worked.push((seq, *e))) {}
        assert_eq!(worked, sent);
        let seqs: Vec<u64> = sent.iter().map(|&(s, _)| s).collect();
        assert_eq!(
            seqs,
            (first..first + sent.len() as u64).collect::<Vec<u64>>()
        );
    });
}

/// `force_push` on a full one-slot queue while a worker polls: the producer
/// either takes the oldest event back (the worker never sees it) or finds
/// the worker holding it and waits for its slot. Every event ends up seen
/// by the worker or handed back, exactly once, and the overwrite never
/// races the worker's read (loom checks the slot accesses).
#[test]
fn force_push_takes_the_oldest_or_waits_for_its_worker() {
    model(|| {
        let ring = sp::<usize>(1, 2);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let [mut w] = g.work_group::<1>(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(1).unwrap();
        let worker = thread::spawn(move || {
            let mut seen = Vec::new();
            let _ = w.poll_limit(1, |e, _, _| seen.push(*e));
            (w, seen)
        });
        let back = p.force_push(2).unwrap();
        let (mut w, mut seen) = worker.join().unwrap();
        drop(p);
        while let Poll::Processed(_) = w.poll_limit(1, |e, _, _| seen.push(*e)) {}
        let mut all = seen.clone();
        all.extend(back);
        all.sort_unstable();
        assert_eq!(all, [1, 2], "seen {seen:?}, handed back {back:?}");
        assert!(seen.contains(&2));
    });
}

/// The single producer tests close and halt with a Relaxed load of the
/// state word on its fast path (a bit test; nothing is read on the strength
/// of it). A close request racing two publishes that take the fast path:
/// every publish that returned `Ok` is delivered, a refused one is not, a
/// request that happened before a publish is always honoured, and the
/// consumer ends with `Closed`.
#[test]
fn single_producer_close_races_fast_publishes() {
    model(|| {
        let ring = sp::<usize>(4, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(1).unwrap(); // caches the free count: the rest are fast
        let producer = thread::spawn(move || {
            let mut accepted = 1;
            for i in 2..=3 {
                match p.try_publish(|e| *e = i) {
                    Ok(_) => accepted += i,
                    Err(PublishError::Closed(_)) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (p, accepted)
        });
        let r2 = ring.clone();
        let closer = thread::spawn(move || r2.close());
        let mut delivered = 0;
        let _ = c.poll(|e, _, _| delivered += *e);
        closer.join().unwrap();
        let (mut p, accepted) = producer.join().unwrap();
        assert!(matches!(
            p.try_publish(|e| *e = 9),
            Err(PublishError::Closed(_))
        ));
        drop(p);
        while let Poll::Processed(_) = c.poll(|e, _, _| delivered += *e) {}
        assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
        assert_eq!(accepted, delivered);
    });
}

/// Consumers and the single producer test halt with a Relaxed load too: a
/// halt that happened before a poll or a publish (joined) is always seen,
/// with events left and free slots cached; a poll racing the halt either
/// hands out its event or reports `Halted`.
#[test]
fn a_halt_before_a_poll_or_publish_is_seen() {
    model(|| {
        let ring = sp::<usize>(4, 1);
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(1).unwrap();
        p.push(2).unwrap();
        let r2 = ring.clone();
        let halter = thread::spawn(move || r2.halt());
        let consumer = thread::spawn(move || {
            let mut seen = Vec::new();
            let first = c.poll_limit(1, |e, _, _| seen.push(*e));
            (c, first, seen)
        });
        halter.join().unwrap();
        let (mut c, first, seen) = consumer.join().unwrap();
        match first {
            Poll::Processed(1) => assert_eq!(seen, [1]),
            Poll::Halted => assert!(seen.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(c.poll(|_, _, _| panic!("halted")), Poll::Halted);
        assert!(matches!(
            p.try_publish(|e| *e = 3),
            Err(PublishError::Halted(_))
        ));
    });
}
