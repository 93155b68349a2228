//! Loom models of `ring::Spsc`: the slot hand-over (a producer reusing a
//! slot the consumer still reads is a failure loom reports even when the
//! values look right) and close by a handle (no item pushed before the
//! producer left may be reported `Closed`). Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test spsc`.
//! Threads make a bounded number of non-blocking calls; the queue is leaked
//! per run so the handles can borrow it from spawned threads.
#![cfg(latchfree_loom)]

use latchfree::ring::{Spsc, TryPopError};
use loom::thread;

mod support;
use support::model;

fn leaked<const N: usize>() -> &'static Spsc<usize, N> {
    Box::leak(Box::new(Spsc::new()))
}

/// One slot: the producer pushes, then tries a second item into the same
/// slot while the consumer pops concurrently. Every item accepted comes
/// out once, in order, and the second write never overlaps the read of
/// the first.
#[test]
fn one_slot_hand_over() {
    model(|| {
        let queue = leaked::<1>();
        let (mut p, mut c) = queue.split().unwrap();
        let producer = thread::spawn(move || {
            p.try_push(1).unwrap();
            let second = p.try_push(2).is_ok();
            let third = !second && p.try_push(2).is_ok();
            second || third
        });
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Ok(v) = c.try_pop() {
                got.push(v);
            }
        }
        let pushed_two = producer.join().unwrap();
        while let Ok(v) = c.try_pop() {
            got.push(v);
        }
        let want: &[usize] = if pushed_two { &[1, 2] } else { &[1] };
        assert_eq!(got, want);
    });
}

/// Two slots across the wrap of the positions' slot index: the producer
/// pushes three items (the third reuses slot 0 only after the consumer's
/// pop of the first), the consumer pops what it sees.
#[test]
fn slot_reuse_waits_for_the_pop() {
    model(|| {
        let queue = leaked::<2>();
        let (mut p, mut c) = queue.split().unwrap();
        let producer = thread::spawn(move || {
            let mut pushed = 0;
            for i in 0..3 {
                if p.try_push(i).is_ok() {
                    pushed += 1;
                } else {
                    break;
                }
            }
            pushed
        });
        let mut got = Vec::new();
        if let Ok(v) = c.try_pop() {
            got.push(v);
        }
        let pushed = producer.join().unwrap();
        while let Ok(v) = c.try_pop() {
            got.push(v);
        }
        assert_eq!(got, (0..pushed).collect::<Vec<_>>());
    });
}

/// The producer pushes one item and leaves; the consumer polls. Once it
/// sees `Closed` it must already have the item (the mark is read before
/// the last `tail`).
#[test]
fn closed_only_after_every_item() {
    model(|| {
        let queue = leaked::<2>();
        let (mut p, mut c) = queue.split().unwrap();
        let producer = thread::spawn(move || {
            p.try_push(7).unwrap();
            drop(p);
        });
        let mut got = Vec::new();
        let mut closed = false;
        for _ in 0..3 {
            match c.try_pop() {
                Ok(v) => got.push(v),
                Err(TryPopError::Closed) => {
                    closed = true;
                    break;
                }
                Err(TryPopError::Empty) => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        if closed {
            assert_eq!(got, [7]);
        }
        while let Ok(v) = c.try_pop() {
            got.push(v);
        }
        assert_eq!(got, [7]);
        assert_eq!(c.try_pop(), Err(TryPopError::Closed));
    });
}
