//! The ring across the wrap of its shared words.
//!
//! Handles count in `u64`; the atomics hold `usize` words, and the
//! multi-producer claim word and the worker words keep one bit less
//! (`pack`). On 32-bit targets those words wrap every 2^32 (2^31) events;
//! these tests must pass there (CI runs them on `i686-unknown-linux-musl`,
//! in release).
//!
//! Most start a ring a few events before a wrap point with the hidden
//! `Ring::with_first_sequence` seed, then push traffic across it. The last
//! one, on 32-bit targets only, really publishes 2^32 events, because what
//! it checks — a handle that sat idle meanwhile — cannot be seeded.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::ring::{BusySpin, Heap, Multi, Poll, PublishError, Ring, Single};

/// Positions a few events before each wrap point of the words (31-bit
/// packed, 32-bit plain) and past them, plus the ring's first epoch
/// boundaries on 32-bit (multiples of 2^29).
const SEEDS: [u64; 6] = [
    (1 << 29) - 5,
    (1 << 31) - 5,
    (1 << 32) - 5,
    (1 << 33) - 3,
    (5 << 32) + (1 << 31) - 7,
    (1 << 45) - 2,
];

#[test]
fn a_pipeline_and_a_work_group_cross_the_wrap() {
    for first in SEEDS {
        let ring = Ring::<Heap<u64>, Single, BusySpin>::with_first_sequence(
            Heap::builder(8).gates(4).build().unwrap(),
            BusySpin,
            first,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut a = g.consumer(&[]).unwrap();
        let [mut w1, mut w2] = g.work_group::<2>(&[a.node()]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (mut seen_a, mut seen_w) = (Vec::new(), Vec::new());
        for i in 0..40u64 {
            assert_eq!(p.try_push(first + i), Ok(first + i), "seed {first}");
            if i % 3 == 2 {
                while let Poll::Processed(_) = a.poll(|e, s, _| seen_a.push((s, *e))) {}
                while let Poll::Processed(_) = w1.poll_limit(3, |e, s, _| seen_w.push((s, *e))) {}
            }
        }
        // The full capacity is free once everyone caught up.
        while let Poll::Processed(_) = a.poll(|e, s, _| seen_a.push((s, *e))) {}
        while let Poll::Processed(_) = w2.poll(|e, s, _| seen_w.push((s, *e))) {}
        assert_eq!(p.remaining_capacity(), 8, "seed {first}");
        let want: Vec<(u64, u64)> = (first..first + 40).map(|s| (s, s)).collect();
        seen_w.sort_unstable();
        assert_eq!(seen_a, want, "seed {first}");
        assert_eq!(seen_w, want, "seed {first}");
        drop(p);
        assert_eq!(a.poll(|_, _, _| ()), Poll::Closed);
        assert_eq!(w1.poll(|_, _, _| ()), Poll::Closed);
    }
}

#[test]
fn multi_producers_cross_the_wrap() {
    for first in SEEDS {
        let ring = Ring::<Heap<u64>, Multi, BusySpin>::with_first_sequence(
            Heap::builder(8).gates(4).build().unwrap(),
            BusySpin,
            first,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let [mut w] = g.work_group::<1>(&[c.node()]).unwrap();
        let mut p1 = g.multi_producer().unwrap();
        let mut p2 = p1.clone();
        let idle = p1.clone();
        let (mut seen_c, mut seen_w) = (Vec::new(), Vec::new());
        let mut next = first;
        for round in 0..10u64 {
            assert_eq!(p1.try_push(next), Ok(next), "seed {first}");
            let start = p2
                .try_publish_batch(3, |claimed| {
                    for (i, slot) in claimed.into_iter().enumerate() {
                        *slot = next + 1 + i as u64;
                    }
                })
                .map_err(|e| e.to_string());
            assert_eq!(start, Ok(next + 1), "seed {first} round {round}");
            next += 4;
            while let Poll::Processed(_) = c.poll(|e, s, _| seen_c.push((s, *e))) {}
            while let Poll::Processed(_) = w.poll(|e, s, _| seen_w.push((s, *e))) {}
        }
        // A handle cloned from one that never published starts right.
        let mut late = idle.clone();
        assert_eq!(late.remaining_capacity(), 8, "seed {first}");
        assert_eq!(late.try_push(next), Ok(next), "seed {first}");
        while let Poll::Processed(_) = c.poll(|e, s, _| seen_c.push((s, *e))) {}
        while let Poll::Processed(_) = w.poll(|e, s, _| seen_w.push((s, *e))) {}
        let want: Vec<(u64, u64)> = (first..=next).map(|s| (s, s)).collect();
        assert_eq!(seen_c, want, "seed {first}");
        assert_eq!(seen_w, want, "seed {first}");
        drop((p1, p2, idle, late));
        assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
        assert_eq!(w.poll(|_, _, _| ()), Poll::Closed);
    }
}

#[test]
fn a_full_ring_across_the_wrap_is_full_not_free() {
    for first in SEEDS {
        let ring = Ring::<Heap<u64>, Multi, BusySpin>::with_first_sequence(
            Heap::builder(4).gates(1).build().unwrap(),
            BusySpin,
            first,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        for i in 0..4 {
            p.try_push(i).unwrap();
        }
        assert!(matches!(p.try_push(9), Err(PublishError::Full(9))));
        assert_eq!(c.poll(|_, _, _| ()), Poll::Processed(4));
        assert_eq!(p.try_push(4), Ok(first + 4), "seed {first}");
    }
}

/// The pool, the batcher and `TaskQueue` clone per-thread producer handles
/// from a template that never publishes. After 2^31 claims by others (a lap
/// of the 31-bit claim word on 32-bit targets) a handle cloned from it must
/// still publish, with the true sequence, not see a full ring forever.
///
/// Publishes the events for real (a few seconds in release), so it runs on
/// 32-bit targets only, where it matters: on 64-bit ones the words need
/// 2^63 events to wrap.
#[cfg(target_pointer_width = "32")]
#[test]
fn a_late_producer_handle_after_2_pow_31_claims() {
    const CAP: usize = 1 << 12;
    const EVENTS: u64 = (1 << 31) + (1 << 20);
    let ring = Ring::<Heap<u8>, Multi, BusySpin>::with_wait(
        Heap::builder(CAP).gates(1).build().unwrap(),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let template = g.multi_producer().unwrap();
    let mut active = template.clone();
    let mut published = 0u64;
    while published < EVENTS {
        active.try_publish_batch(CAP, |_| ()).unwrap();
        published += CAP as u64;
        // Taking the batch as a `ReadBatch` and dropping it releases it.
        assert_eq!(c.read().map(|b| b.len()).ok(), Some(CAP));
    }
    let mut late = template.clone();
    let r = late.try_push(7).map_err(|e| e.to_string());
    assert_eq!(r, Ok(EVENTS), "a late handle sees a full ring");
    let mut got = None;
    assert_eq!(c.poll(|e, s, _| got = Some((s, *e))), Poll::Processed(1));
    assert_eq!(got, Some((EVENTS, 7)));
}

/// A work group's worker that sat idle while the other took 2^32 events (a
/// lap of the 32-bit claim word) must report true 64-bit sequences, not
/// sequences modulo 2^32. Runs on 32-bit targets only, as above.
#[cfg(target_pointer_width = "32")]
#[test]
fn an_idle_worker_after_2_pow_32_events() {
    const CAP: usize = 1 << 12;
    const EVENTS: u64 = (1 << 32) + (1 << 20);
    let ring = Ring::<Heap<u8>, Single, BusySpin>::with_wait(
        Heap::builder(CAP).gates(3).build().unwrap(),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).unwrap();
    let [mut busy, mut idle] = g.work_group::<2>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let mut published = 0u64;
    while published < EVENTS {
        p.try_publish_batch(CAP, |_| ()).unwrap();
        published += CAP as u64;
        assert_eq!(busy.poll_limit(CAP, |_, _, _| ()), Poll::Processed(CAP));
    }
    assert_eq!(p.try_push(7), Ok(EVENTS));
    let mut got = None;
    assert_eq!(idle.poll(|e, s, _| got = Some((s, *e))), Poll::Processed(1));
    assert_eq!(got, Some((EVENTS, 7)), "an idle worker lost the high bits");
}

#[test]
fn force_push_takes_the_oldest_across_the_wrap() {
    for first in SEEDS {
        let ring = Ring::<Heap<u64>, Single, BusySpin>::with_first_sequence(
            Heap::builder(4).gates(2).build().unwrap(),
            BusySpin,
            first,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let [mut w] = g.work_group::<1>(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (mut seen, mut taken) = (Vec::new(), Vec::new());
        for i in 0..40u64 {
            if let Some(old) = p.force_push(first + i).unwrap() {
                taken.push(old);
            }
            if i % 7 == 6 {
                let _ = w.poll_limit(2, |e, s, _| seen.push((s, *e)));
            }
        }
        while let Poll::Processed(_) = w.poll(|e, s, _| seen.push((s, *e))) {}
        assert!(seen.iter().all(|(s, e)| s == e), "seed {first}");
        let mut all: Vec<u64> = seen.iter().map(|&(_, e)| e).chain(taken).collect();
        all.sort_unstable();
        let want: Vec<u64> = (first..first + 40).collect();
        assert_eq!(all, want, "seed {first}");
        assert_eq!(p.remaining_capacity(), 4, "seed {first}");
    }
}

/// One producer, one consumer (the no-graph shape a microcontroller uses):
/// the handles advance their own positions as words, carrying into the
/// high part when the word wraps (every 2^32 on 32-bit targets). Every
/// sequence the handles report, hand out and take back must be the true
/// 64-bit one across that carry, through every way in and out: single and
/// batch publishes, `poll`, `poll_limit`, `read` (released in part) and
/// `drain`.
#[test]
fn one_producer_one_consumer_count_true_sequences_across_the_wrap() {
    for first in SEEDS {
        let ring = Ring::<Heap<u64>, Single, BusySpin>::with_first_sequence(
            Heap::builder(8).gates(1).build().unwrap(),
            BusySpin,
            first,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let mut seen = Vec::new();
        let mut sent = 0u64;
        for round in 0..12u64 {
            assert_eq!(p.sequence(), first + sent, "seed {first}");
            if round % 2 == 0 {
                let start = p
                    .try_publish_batch(3, |claimed| {
                        for (i, slot) in claimed.into_iter().enumerate() {
                            *slot = first + sent + i as u64;
                        }
                    })
                    .unwrap_or_else(|_| panic!("seed {first}: batch refused"));
                assert_eq!(start, first + sent, "seed {first}");
                sent += 3;
            } else {
                assert_eq!(p.try_push(first + sent), Ok(first + sent), "seed {first}");
                sent += 1;
            }
            match round % 4 {
                0 => {
                    assert_eq!(
                        c.poll_limit(2, |e, s, _| seen.push((s, *e))),
                        Poll::Processed(2)
                    );
                }
                1 => {
                    let mut batch = c.read().unwrap();
                    let at = batch.first_sequence();
                    let held: Vec<(u64, u64)> = batch.iter().map(|(s, e)| (s, *e)).collect();
                    assert_eq!(held.first().map(|h| h.0), Some(at), "seed {first}");
                    // Release one, then the rest as the batch drops.
                    batch.release(1);
                    assert_eq!(batch.first_sequence(), at + 1, "seed {first}");
                    drop(batch);
                    seen.extend(held);
                }
                2 => seen.extend(c.drain()),
                _ => while let Poll::Processed(_) = c.poll(|e, s, _| seen.push((s, *e))) {},
            }
            assert_eq!(c.sequence(), first + seen.len() as u64, "seed {first}");
        }
        while let Poll::Processed(_) = c.poll(|e, s, _| seen.push((s, *e))) {}
        let want: Vec<(u64, u64)> = (first..first + sent).map(|s| (s, s)).collect();
        assert_eq!(seen, want, "seed {first}");
        assert_eq!(p.remaining_capacity(), 8, "seed {first}");
        drop(p);
        assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
    }
}
