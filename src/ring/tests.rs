//! Unit tests of the ring's protocols, sized to run under Miri.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
#![allow(clippy::redundant_pattern_matching)]

extern crate std;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::vec::Vec;

use core::ops::Deref;

use super::*;

type SpRing<T> = Ring<Heap<T>, Single, BusySpin>;
type MpRing<T> = Ring<Heap<T>, Multi, BusySpin>;

fn sp<T: Default>(cap: usize) -> SpRing<T> {
    Ring::with_wait(Heap::builder(cap).gates(8).build().unwrap(), BusySpin)
}

fn mp<T: Default>(cap: usize) -> MpRing<T> {
    Ring::with_wait(Heap::builder(cap).gates(8).build().unwrap(), BusySpin)
}

/// Rings for tests with threads: on a 2-core machine a spinning waiter can
/// starve the thread it waits for, so these park.
fn sp_threads<T: Default>(cap: usize) -> Ring<Heap<T>, Single, Parking> {
    Ring::with_wait(Heap::builder(cap).gates(8).build().unwrap(), Parking::new())
}

fn mp_threads<T: Default>(cap: usize) -> Ring<Heap<T>, Multi, Parking> {
    Ring::with_wait(Heap::builder(cap).gates(8).build().unwrap(), Parking::new())
}

fn drain<R, S, M, W>(c: &mut Consumer<R>) -> Vec<(u64, S::Item)>
where
    R: core::ops::Deref<Target = Ring<S, M, W>>,
    S: Storage,
    S::Item: Clone,
    M: Mode,
    W: WaitStrategy,
{
    let mut out = Vec::new();
    while let Poll::Processed(_) = c.poll(|e, s, _| out.push((s, e.clone()))) {}
    out
}

#[test]
fn capacity_must_be_a_power_of_two() {
    assert_eq!(
        Heap::<u8>::builder(0).gates(1).build().err(),
        Some(CapacityError::NotPowerOfTwo(0))
    );
    assert_eq!(
        Heap::<u8>::builder(12).gates(1).build().err(),
        Some(CapacityError::NotPowerOfTwo(12))
    );
    assert_eq!(
        Heap::<u8>::builder(8).gates(65).build().err(),
        Some(CapacityError::TooManyGates(65))
    );
    assert!(Heap::<u8>::builder(1).gates(0).build().is_ok());
}

#[test]
fn the_whole_capacity_is_usable() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..4 {
        assert_eq!(p.try_push(i).unwrap(), u64::from(i));
    }
    assert_eq!(p.remaining_capacity(), 0);
    let e = p.try_push(99).unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.into_inner(), 99);
    assert_eq!(drain(&mut c), [(0, 0), (1, 1), (2, 2), (3, 3)]);
    assert_eq!(p.remaining_capacity(), 4);
    assert_eq!(p.try_push(4).unwrap(), 4);
}

#[test]
fn graph_is_built_once_and_gates_are_bounded() {
    let ring: SpRing<u8> = Ring::with_wait(Heap::builder(4).gates(2).build().unwrap(), BusySpin);
    let mut g = Ring::graph(&ring).unwrap();
    assert_eq!(Ring::graph(&ring).err(), Some(BuildError::AlreadyBuilt));
    let _a = g.consumer(&[]).unwrap();
    let _b = g.consumer(&[]).unwrap();
    assert_eq!(
        g.consumer(&[]).err(),
        Some(BuildError::OutOfGates {
            available: 2,
            needed: 3
        })
    );
    assert_eq!(g.work_group::<0>(&[]).err(), Some(BuildError::InvalidNode));
    let other = sp::<u8>(4);
    let mut og = Ring::graph(&other).unwrap();
    let foreign = og.consumer(&[]).unwrap().node();
    let ring2 = sp::<u8>(4);
    let mut g2 = Ring::graph(&ring2).unwrap();
    assert_eq!(g2.consumer(&[foreign]).err(), Some(BuildError::InvalidNode));
}

#[test]
fn batches_wrap_around_the_end() {
    let ring = sp::<u64>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let mut next = 0u64;
    for round in 0..10 {
        let n = 1 + round % 8;
        let first = p
            .try_publish_batch(n, |slots| {
                assert_eq!(slots.len(), n);
                for s in slots {
                    *s = next;
                    next += 1;
                }
            })
            .unwrap();
        let got = drain(&mut c);
        assert_eq!(got.len(), n);
        for (i, (seq, v)) in got.into_iter().enumerate() {
            assert_eq!(seq, first + i as u64);
            assert_eq!(v, seq);
        }
    }
    assert!(matches!(
        p.try_publish_batch(9, |_| ()),
        Err(PublishError::TooLarge(_))
    ));
    assert_eq!(
        p.try_publish_batch(0, |s| assert!(s.is_empty())).unwrap(),
        next
    );
}

#[test]
fn end_of_batch_and_max_batch() {
    let ring = sp::<u8>(16);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..10 {
        p.push(i).unwrap();
    }
    let mut ends = Vec::new();
    let mut sizes = Vec::new();
    loop {
        match c.poll_limit(4, |_, s, eob| {
            if eob {
                ends.push(s)
            }
        }) {
            Poll::Processed(n) => sizes.push(n),
            other => {
                assert_eq!(other, Poll::Idle);
                break;
            }
        }
    }
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(ends, [3, 7, 9]);
}

#[test]
fn pipeline_is_gated_in_order() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[a.node()]).unwrap();
    let mut c = g.consumer(&[b.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    assert_eq!(b.poll(|_, _, _| ()), Poll::Idle);
    for i in 0..4 {
        p.push(i).unwrap();
    }
    // Only C gates the producer, but C waits for B which waits for A.
    assert!(p.try_push(4).is_err());
    assert_eq!(c.poll(|_, _, _| ()), Poll::Gated);
    assert_eq!(b.poll(|_, _, _| ()), Poll::Gated);
    assert_eq!(drain(&mut a).len(), 4);
    assert!(p.try_push(4).is_err(), "A is not terminal");
    assert_eq!(drain(&mut b).len(), 4);
    assert_eq!(drain(&mut c).len(), 4);
    assert!(p.try_push(4).is_ok());
}

#[test]
fn diamond_waits_for_both_sides() {
    let ring = sp::<u32>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[]).unwrap();
    let mut c = g.consumer(&[a.node(), b.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..5 {
        p.push(i).unwrap();
    }
    assert_eq!(a.poll_limit(3, |_, _, _| ()), Poll::Processed(3));
    assert_eq!(b.poll(|_, _, _| ()), Poll::Processed(5));
    assert_eq!(drain(&mut c).len(), 3, "C may not pass A");
    drain(&mut a);
    assert_eq!(drain(&mut c).len(), 2);
}

#[test]
fn work_group_handles_each_event_once() {
    let ring = sp::<u64>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w1, mut w2, mut w3] = g.work_group::<3>(&[]).unwrap();
    let mut after = g.consumer(&[w1.group()]).unwrap();
    let mut p = g.single_producer().unwrap();
    let mut seen = Vec::new();
    let mut next = 0;
    for round in 0..20u64 {
        while p.try_push(next).is_ok() {
            next += 1;
        }
        let max = 1 + (round as usize % 3);
        let _ = w1.poll_limit(max, |e, s, _| seen.push((s, *e)));
        let _ = w3.poll_limit(max, |e, s, _| seen.push((s, *e)));
        let _ = w2.poll_limit(max, |e, s, _| seen.push((s, *e)));
        drain(&mut after);
    }
    seen.sort_unstable();
    for (i, (s, e)) in seen.iter().enumerate() {
        assert_eq!((*s, *e), (i as u64, i as u64));
    }
    assert!(seen.len() > 20);
}

#[test]
fn idle_workers_do_not_hold_the_producer() {
    let ring = sp::<u64>(2);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w1, _w2] = g.work_group::<2>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..100 {
        p.try_push(i).unwrap();
        assert_eq!(w1.poll(|e, _, _| assert_eq!(*e, i)), Poll::Processed(1));
    }
}

#[test]
fn consumer_panic_counts_the_event_as_handled() {
    let ring = sp::<u32>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..5 {
        p.push(i).unwrap();
    }
    let mut seen = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        c.poll(|e, _, _| {
            if *e == 2 {
                panic!("bad event");
            }
            seen.push(*e);
        })
    }));
    assert!(r.is_err());
    assert_eq!(c.sequence(), 3);
    drain(&mut c).iter().for_each(|(_, e)| seen.push(*e));
    assert_eq!(seen, [0, 1, 3, 4]);
}

#[test]
fn worker_panic_keeps_the_rest_of_its_batch() {
    let ring = sp::<u32>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..6 {
        p.push(i).unwrap();
    }
    let mut seen = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        w.poll(|e, _, _| {
            if *e == 1 {
                panic!("bad event");
            }
            seen.push(*e);
        })
    }));
    assert!(r.is_err());
    // The producer is still held at the first unhandled event.
    assert_eq!(p.remaining_capacity(), 8 - 4);
    while let Poll::Processed(_) = w.poll(|e, _, _| seen.push(*e)) {}
    assert_eq!(seen, [0, 2, 3, 4, 5]);
    assert_eq!(p.remaining_capacity(), 8);
}

#[test]
fn a_worker_dropped_after_a_panic_does_not_stall_the_group() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let [w1, mut w2] = g.work_group::<2>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..4 {
        p.push(i).unwrap();
    }
    let mut w1 = w1;
    let r = catch_unwind(AssertUnwindSafe(|| {
        w1.poll(|e, _, _| assert!(*e != 1, "bad event"))
    }));
    assert!(r.is_err());
    // Its thread dies with it: the worker goes before polling again.
    drop(w1);
    // The rest of the group goes on, and producers get every slot back.
    for i in 4..12 {
        p.try_push(i).unwrap();
        assert_eq!(w2.poll(|e, _, _| assert_eq!(*e, i)), Poll::Processed(1));
    }
    assert_eq!(p.remaining_capacity(), 4);
}

#[test]
fn multi_producer_skips_a_slot_whose_writer_panicked() {
    let ring = mp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    p.push(1).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = p.publish(|_| panic!("writer died"));
    }));
    assert!(r.is_err());
    p.push(3).unwrap();
    let mut ends = Vec::new();
    let got: Vec<_> = {
        let mut v = Vec::new();
        while let Poll::Processed(_) = c.poll(|e, s, eob| {
            v.push((s, *e));
            if eob {
                ends.push(s)
            }
        }) {}
        v
    };
    assert_eq!(got, [(0, 1), (2, 3)]);
    assert_eq!(ends, [2]);
}

#[test]
fn single_producer_close_drains_then_reports_closed() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[a.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    p.push(7).unwrap();
    ring.close();
    assert!(ring.is_closed());
    assert!(matches!(p.push(8), Err(PublishError::Closed(8))));
    assert_eq!(b.poll(|_, _, _| ()), Poll::Gated);
    assert_eq!(drain(&mut a), [(0, 7)]);
    assert_eq!(a.poll(|_, _, _| ()), Poll::Closed);
    assert_eq!(b.wait(|_, _, _| ()), Ok(1));
    assert_eq!(b.wait(|_, _, _| ()), Err(ConsumeError::Closed));
}

#[test]
fn dropping_the_producer_closes() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    p.push(1).unwrap();
    drop(p);
    assert_eq!(a.wait(|_, _, _| ()), Ok(1));
    assert_eq!(a.wait(|_, _, _| ()), Err(ConsumeError::Closed));
}

#[test]
fn multi_producer_closes_with_the_last_handle() {
    let ring = mp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p1 = g.multi_producer().unwrap();
    let mut p2 = p1.clone();
    p1.push(1).unwrap();
    drop(p1);
    assert!(!ring.is_closed());
    p2.push(2).unwrap();
    drop(p2);
    assert!(ring.is_closed());
    assert_eq!(drain(&mut a), [(0, 1), (1, 2)]);
    assert_eq!(a.poll(|_, _, _| ()), Poll::Closed);
    assert_eq!(w.wait(|_, _, _| ()), Ok(2));
    assert_eq!(w.wait(|_, _, _| ()), Err(ConsumeError::Closed));
}

#[test]
fn halt_stops_everyone() {
    let ring = mp::<u32>(2);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    p.push(1).unwrap();
    p.push(2).unwrap();
    ring.halt();
    assert!(ring.is_halted());
    assert!(matches!(p.push(3), Err(PublishError::Halted(3))));
    // The backlog is abandoned: nothing more is handed out after a halt.
    assert_eq!(
        a.wait(|_, _, _| panic!("handed out after halt")),
        Err(ConsumeError::Halted)
    );
    assert_eq!(
        a.poll(|_, _, _| panic!("handed out after halt")),
        Poll::Halted
    );
}

#[test]
fn halt_stops_every_poller_at_its_next_call() {
    let ring = sp::<u32>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[]).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..8 {
        p.push(i).unwrap();
    }
    assert_eq!(a.poll_limit(2, |_, _, _| ()), Poll::Processed(2));
    ring.halt();
    let no = |_: &u32, _: u64, _: bool| panic!("handed out after halt");
    assert_eq!(a.poll(no), Poll::Halted);
    assert_eq!(a.wait(no), Err(ConsumeError::Halted));
    assert_eq!(b.read().err(), Some(Poll::Halted));
    assert_eq!(w.poll(no), Poll::Halted);
    assert_eq!(w.wait(no), Err(ConsumeError::Halted));
}

#[test]
fn halt_drops_a_workers_backlog() {
    let ring = sp::<u32>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..6 {
        p.push(i).unwrap();
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        w.poll(|e, _, _| assert!(*e != 1, "bad event"))
    }));
    assert!(r.is_err());
    ring.halt();
    assert_eq!(
        w.poll(|_, _, _| panic!("backlog handed out after halt")),
        Poll::Halted
    );
}

#[test]
fn read_batch_releases_early() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..4 {
        p.push(i * 10).unwrap();
    }
    {
        let mut batch = c.read().unwrap();
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.get(1), Some(&10));
        let all: Vec<_> = batch.iter().map(|(s, e)| (s, *e)).collect();
        assert_eq!(all, [(0, 0), (1, 10), (2, 20), (3, 30)]);
        batch.release(2);
        assert_eq!(batch.get(1), None);
        assert_eq!(batch.first_sequence(), 2);
        assert_eq!(p.remaining_capacity(), 2);
        p.push(40).unwrap();
    }
    assert_eq!(p.remaining_capacity(), 3);
    assert_eq!(drain(&mut c), [(4, 40)]);
    assert_eq!(c.read().err(), Some(Poll::Idle));
}

#[test]
fn a_static_inline_ring_needs_no_allocator() {
    #[derive(Debug)]
    struct Ev(u32);
    const EMPTY: Ev = Ev(0);
    static RING: Ring<Inline<Ev, 4, 2>, Single, BusySpin> =
        Ring::with_wait(Inline::new([EMPTY; 4]), BusySpin);
    let mut g = Ring::graph(&RING).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let mut total = 0;
    for i in 0..10 {
        p.publish(|e| e.0 = i).unwrap();
        c.poll(|e, _, _| total += e.0);
    }
    assert_eq!(total, 45);
}

#[test]
fn events_are_dropped_exactly_once() {
    static DROPS: StdAtomicUsize = StdAtomicUsize::new(0);
    #[derive(Default)]
    struct Counted(#[allow(dead_code)] u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, StdOrdering::Relaxed);
        }
    }
    {
        let ring = sp::<Counted>(4);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        for i in 0..6 {
            p.push(Counted(i)).map_err(|_| ()).unwrap();
            c.poll(|_, _, _| ());
        }
        // Six pushes replaced six slot values.
        assert_eq!(DROPS.load(StdOrdering::Relaxed), 6);
    }
    assert_eq!(DROPS.load(StdOrdering::Relaxed), 6 + 4);
}

#[test]
fn threads_see_every_event_in_order() {
    const N: u64 = if cfg!(miri) { 200 } else { 20_000 };
    let ring = sp_threads::<u64>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[a.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..N {
                p.publish(|e| *e = i * 3).unwrap();
            }
        });
        s.spawn(move || {
            let mut want = 0;
            while let Ok(_) = a.wait(|e, seq, _| {
                assert_eq!((seq, *e), (want, want * 3));
                want += 1;
            }) {}
            assert_eq!(want, N);
        });
        let mut want = 0;
        while let Ok(_) = b.wait(|e, seq, _| {
            assert_eq!((seq, *e), (want, want * 3));
            want += 1;
        }) {}
        assert_eq!(want, N);
    });
}

#[test]
fn multi_producer_threads_keep_per_producer_order() {
    const N: u64 = if cfg!(miri) { 100 } else { 10_000 };
    let ring = mp_threads::<(u64, u64)>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let p = g.multi_producer().unwrap();
    std::thread::scope(|s| {
        for id in 0..2u64 {
            let mut p = p.clone();
            s.spawn(move || {
                for i in 0..N {
                    p.publish(|e| *e = (id, i)).unwrap();
                }
            });
        }
        drop(p);
        let mut next = [0u64; 2];
        while let Ok(_) = c.wait(|&(id, i), _, _| {
            assert_eq!(next[id as usize], i);
            next[id as usize] += 1;
        }) {}
        assert_eq!(next, [N, N]);
    });
}

#[test]
fn workers_on_threads_share_exactly_once() {
    const N: u64 = if cfg!(miri) { 100 } else { 20_000 };
    let ring = mp_threads::<u64>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let workers = g.work_group::<2>(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    let counts: Vec<StdAtomicUsize> = (0..N).map(|_| StdAtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        for mut w in workers {
            let counts = &counts;
            s.spawn(move || {
                while let Ok(_) = w.wait(|e, seq, _| {
                    assert_eq!(*e, seq);
                    counts[*e as usize].fetch_add(1, StdOrdering::Relaxed);
                }) {}
            });
        }
        for i in 0..N {
            p.publish(|e| *e = i).unwrap();
        }
        drop(p);
    });
    assert!(counts.iter().all(|c| c.load(StdOrdering::Relaxed) == 1));
}

// ----- issue 12: traps, friction and missing pieces of the core -----

#[test]
fn a_graph_without_consumers_is_refused() {
    let ring = sp::<u8>(4);
    let g = Ring::graph(&ring).unwrap();
    assert_eq!(g.single_producer().err(), Some(BuildError::NoConsumers));
    let ring = mp::<u8>(4);
    let g = Ring::graph(&ring).unwrap();
    assert!(matches!(g.multi_producer(), Err(BuildError::NoConsumers)));
}

#[test]
fn poll_tells_an_unfinished_slot_from_an_idle_ring() {
    let ring = mp::<u32>(8);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut w = {
        let [w] = g.work_group::<1>(&[]).unwrap();
        w
    };
    let mut slow = g.multi_producer().unwrap();
    let mut fast = slow.clone();
    assert_eq!(c.poll(|_, _, _| ()), Poll::Idle);
    slow.publish(|e| {
        // Slot 0 is claimed and being written; slot 1 gets published.
        fast.push(2).unwrap();
        *e = 1;
        assert_eq!(
            c.poll(|_, _, _| panic!("nothing is ready")),
            Poll::Unfinished
        );
        assert_eq!(
            w.poll(|_, _, _| panic!("nothing is ready")),
            Poll::Unfinished
        );
        assert_eq!(c.read().err(), Some(Poll::Unfinished));
    })
    .unwrap();
    assert_eq!(drain(&mut c), [(0, 1), (1, 2)]);
    assert_eq!(c.poll(|_, _, _| ()), Poll::Idle);
}

#[test]
fn poll_limit_is_per_call_and_available_is_unaffected() {
    let ring = sp::<u32>(32);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..10 {
        p.push(i).unwrap();
    }
    assert_eq!(c.poll_limit(3, |_, _, _| ()), Poll::Processed(3));
    for i in 10..15 {
        p.push(i).unwrap();
    }
    // Counts everything published, not a cached batch of at least 3.
    assert_eq!(c.available(), 12);
    // The limit was for that call only.
    assert_eq!(c.poll(|_, _, _| ()), Poll::Processed(12));
    assert_eq!(c.poll_limit(0, |_, _, _| ()), Poll::Idle);
    p.push(15).unwrap();
    assert_eq!(c.poll_limit(0, |_, _, _| ()), Poll::Processed(1)); // at least one
}

#[test]
fn graph_takes_a_reference_to_an_arc() {
    let ring = std::sync::Arc::new(Ring::new(Heap::<u32>::with_capacity(8).unwrap()));
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    // The handles hold their own `Arc`s.
    assert_eq!(std::sync::Arc::strong_count(&ring), 3);
    p.push(4).unwrap();
    assert_eq!(drain(&mut c), [(0, 4)]);
}

#[test]
fn heap_sizes_cannot_be_swapped() {
    // One positional number: the capacity; gates by name or counted by the
    // graph (up to `MAX_GATES`).
    let heap: Heap<u8> = Heap::with_capacity(4).unwrap();
    assert_eq!((heap.capacity(), heap.gates().len()), (4, MAX_GATES));
    let heap: Heap<u8> = Heap::builder(4).gates(2).build().unwrap();
    assert_eq!((heap.capacity(), heap.gates().len()), (4, 2));
    assert_eq!(
        Heap::<u8>::builder(4).gates(MAX_GATES + 1).build().err(),
        Some(CapacityError::TooManyGates(MAX_GATES + 1))
    );
    assert_eq!(
        Heap::<u8>::with_capacity(6).err(),
        Some(CapacityError::NotPowerOfTwo(6))
    );
    let ring = Ring::<Heap<u8>, Single>::new(Heap::with_capacity(8).unwrap());
    let mut g = Ring::graph(&ring).unwrap();
    for _ in 0..MAX_GATES {
        let _ = g.consumer(&[]).unwrap();
    }
    assert!(matches!(
        g.consumer(&[]),
        Err(BuildError::OutOfGates { available: 64, .. })
    ));
}

#[test]
fn producer_len_is_empty_is_full() {
    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    assert!(p.is_empty() && !p.is_full());
    assert_eq!(p.len(), 0);
    for i in 0..4 {
        p.push(i).unwrap();
        assert_eq!(p.len(), i as usize + 1);
    }
    assert!(p.is_full() && !p.is_empty());
    assert_eq!((c.len(), c.is_empty()), (4, false));
    assert_eq!(c.poll_limit(3, |_, _, _| ()), Poll::Processed(3));
    assert_eq!((p.len(), c.len()), (1, 1));
    drain(&mut c);
    assert!(p.is_empty() && c.is_empty());

    let ring = mp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut a = g.multi_producer().unwrap();
    let mut b = a.clone();
    a.push(1).unwrap();
    b.push(2).unwrap();
    // Shared among producers.
    assert_eq!((a.len(), b.len()), (2, 2));
    b.push(3).unwrap();
    b.push(4).unwrap();
    assert!(a.is_full());
    drain(&mut c);
    assert!(a.is_empty() && b.is_empty());
}

#[test]
fn drain_yields_owned_events_and_releases_each_as_it_goes() {
    let ring = mp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    for i in 0..3 {
        p.push(i).unwrap();
    }
    // A slot whose writer panicked is skipped, as `poll` skips it.
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = p.publish(|_| panic!("writer died"));
    }));
    assert!(r.is_err());
    assert!(p.is_full());
    let mut it = c.drain();
    assert_eq!(it.next(), Some((0, 0)));
    // One slot is back already, while the iterator is alive.
    assert_eq!(p.try_push(9), Ok(4));
    assert_eq!(it.next(), Some((1, 1)));
    assert_eq!(it.next(), Some((2, 2)));
    // Published after the drain began: left for the next one.
    assert_eq!(it.next(), None);
    assert_eq!(c.drain().collect::<Vec<_>>(), [(4, 9)]);
    ring.halt();
    p.try_push(1).unwrap_err();
    assert_eq!(c.drain().next(), None);
}

#[test]
fn a_ring_needs_no_storage_or_wait_types_spelled_out() {
    let ring = Ring::new(Heap::with_capacity(8).unwrap());
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    p.push(7u16).unwrap();
    let _: &Ring<Heap<u16>> = &ring; // `Single`, `DefaultWait`
    assert_eq!(c.wait(|e, _, _| assert_eq!(*e, 7)), Ok(1));
}

#[test]
fn each_consumer_may_wait_its_own_way() {
    // The ring sleeps on a condition variable; one consumer spins instead,
    // a worker yields: each still sees every event it should.
    let ring = Ring::<Heap<u64>, Single, Blocking>::with_wait(
        Heap::builder(8).gates(3).build().unwrap(),
        Blocking::new(),
    );
    let mut g = Ring::graph(&ring).unwrap();
    let mut hot = g.consumer(&[]).unwrap();
    let [mut w] = g.work_group::<1>(&[hot.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    std::thread::scope(|s| {
        let spin = s.spawn(move || {
            let mut sum = 0;
            while hot.wait_with(&BusySpin, |e, _, _| sum += e).is_ok() {}
            sum
        });
        let yielding = s.spawn(move || {
            let mut sum = 0;
            while w.wait_with(&Yielding, |e, _, _| sum += e).is_ok() {}
            sum
        });
        for i in 0..1000 {
            p.push(i).unwrap();
        }
        drop(p);
        assert_eq!(spin.join().unwrap(), 499_500);
        assert_eq!(yielding.join().unwrap(), 499_500);
    });
}

#[test]
fn force_push_overwrites_the_oldest_in_a_queue_only() {
    // Not a queue: a multicast consumer would miss the taken event.
    let ring = sp::<u32>(2);
    let mut g = Ring::graph(&ring).unwrap();
    let a = g.consumer(&[]).unwrap();
    let [_w] = g.work_group::<1>(&[a.node()]).unwrap();
    let mut p = g.single_producer().unwrap();
    assert_eq!(p.force_push(1), Err(ForcePushError::NotAQueue(1)));

    let ring = sp::<u32>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w1, mut w2] = g.work_group::<2>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..4 {
        assert_eq!(p.force_push(i), Ok(None));
    }
    assert_eq!(p.force_push(4), Ok(Some(0)));
    assert_eq!(p.force_push(5), Ok(Some(1)));
    assert!(p.is_full());
    let mut seen = Vec::new();
    let _ = w1.poll_limit(1, |e, s, _| seen.push((s, *e)));
    assert_eq!(p.force_push(6), Ok(None)); // a slot was free
    assert_eq!(p.force_push(7), Ok(Some(3)));
    while let Poll::Processed(_) = w2.poll(|e, s, _| seen.push((s, *e))) {}
    assert_eq!(seen, [(2, 2), (4, 4), (5, 5), (6, 6), (7, 7)]);
    // A closed ring refuses it with the value back.
    ring.close();
    assert_eq!(p.force_push(9), Err(ForcePushError::Closed(9)));
}

#[test]
fn force_push_waits_for_a_worker_holding_the_oldest() {
    let wait = Timeout::new(BusySpin, std::time::Duration::from_millis(20));
    let ring =
        Ring::<Heap<u32>, Single, _>::with_wait(Heap::builder(2).gates(2).build().unwrap(), wait);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    p.push(1).unwrap();
    p.push(2).unwrap();
    let mut results = Vec::new();
    let _ = w.poll(|e, _, _| {
        if *e == 1 {
            // The worker holds 1 and 2: nothing can be taken back, and the
            // slot frees only when this batch ends.
            results.push(p.force_push(3));
        }
    });
    assert_eq!(results, [Err(ForcePushError::Timeout(3))]);
    assert_eq!(p.force_push(3), Ok(None));
}

// ----- skipped slots in a consumer's cached scan (moved from consumer.rs) -----

fn skip_ring(gates: usize) -> MpRing<u32> {
    Ring::with_wait(Heap::builder(16).gates(gates).build().unwrap(), BusySpin)
}

/// Polls until idle; returns `(sequence, event, end_of_batch)` seen.
fn poll_all<R: Deref<Target = MpRing<u32>>>(c: &mut Consumer<R>) -> Vec<(u64, u32, bool)> {
    let mut seen = Vec::new();
    while let Poll::Processed(_) = c.poll(|e, s, eob| seen.push((s, *e, eob))) {}
    seen
}

/// Claims a slot whose writer panics: published as skipped.
fn skip_one<R: Deref<Target = MpRing<u32>>>(p: &mut MultiProducer<R>) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = p.publish(|_| panic!("writer died"));
    }));
    assert!(r.is_err());
}

#[test]
fn a_skip_found_past_a_clean_cached_batch_is_still_skipped() {
    let ring = skip_ring(1);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    for v in [10, 11, 12] {
        p.push(v).unwrap();
    }
    // Scans three clean events, hands out two: one stays cached.
    let mut seen = Vec::new();
    c.poll_limit(2, |e, s, eob| seen.push((s, *e, eob)));
    assert_eq!(seen, [(0, 10, false), (1, 11, true)]);
    skip_one(&mut p); // sequence 3
    p.push(14).unwrap();
    // The rescan from the cache's end meets the skipped slot: the batch
    // (12, skipped 3) hands out 12 alone and ends its batch there.
    let mut seen = Vec::new();
    while let Poll::Processed(_) = c.poll_limit(2, |e, s, eob| seen.push((s, *e, eob))) {}
    assert_eq!(seen, [(2, 12, true), (4, 14, true)]);
}

#[test]
fn a_skip_left_in_the_cache_is_remembered_when_a_clean_scan_extends_it() {
    let ring = skip_ring(1);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    p.push(10).unwrap();
    p.push(11).unwrap();
    skip_one(&mut p); // sequence 2
    let mut seen = Vec::new();
    c.poll_limit(2, |e, s, eob| seen.push((s, *e, eob)));
    assert_eq!(seen, [(0, 10, false), (1, 11, true)]);
    // The skipped slot stays cached; the next scan sees only clean ones.
    p.push(13).unwrap();
    assert_eq!(poll_all(&mut c), [(3, 13, true)]);
}

#[test]
fn a_cached_batch_with_a_skip_keeps_checking_across_polls() {
    let ring = skip_ring(3);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let [mut w] = g.work_group::<1>(&[c.node()]).unwrap();
    let mut p = g.multi_producer().unwrap();
    p.push(10).unwrap();
    skip_one(&mut p); // sequence 1
    p.push(12).unwrap();
    skip_one(&mut p); // sequence 3
                      // One event per poll: the later polls use the cached scan.
    let mut seen = Vec::new();
    while let Poll::Processed(_) = c.poll_limit(1, |e, s, eob| seen.push((s, *e, eob))) {}
    assert_eq!(seen, [(0, 10, true), (2, 12, true)]);
    assert_eq!(c.sequence(), 4);
    // A worker behind the consumer scans no stamps: it checks each.
    let mut seen = Vec::new();
    while let Poll::Processed(_) = w.poll(|e, s, eob| seen.push((s, *e, eob))) {}
    assert_eq!(seen, [(0, 10, false), (2, 12, true)]);
}

#[test]
fn a_worker_that_scanned_its_batch_skips_what_the_scan_saw() {
    let ring = skip_ring(2);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    p.push(10).unwrap();
    p.push(11).unwrap();
    let mut seen = Vec::new();
    w.poll(|e, s, eob| seen.push((s, *e, eob)));
    skip_one(&mut p); // sequence 2
    p.push(13).unwrap();
    skip_one(&mut p); // sequence 4
    while let Poll::Processed(_) = w.poll(|e, s, eob| seen.push((s, *e, eob))) {}
    assert_eq!(seen, [(0, 10, false), (1, 11, true), (3, 13, true)]);
}

#[test]
fn single_producer_rings_keep_no_stamps() {
    use core::mem::size_of;
    // One stamp word per slot, and only in multi-producer mode: a `static`
    // single-producer ring costs its slots and a few words.
    type Sp = Ring<Inline<u64, 1024, 1>, Single, BusySpin>;
    type Mp = Ring<Inline<u64, 1024, 1>, Multi, BusySpin>;
    assert_eq!(
        size_of::<Mp>() - size_of::<Sp>(),
        1024 * size_of::<crate::sync::AtomicUsize>()
    );
    assert!(size_of::<Sp>() - 1024 * size_of::<u64>() <= 8 * 128);
    // The multi-producer table beside inline storage works as the heap's
    // (in-storage) one does: out-of-order claims publish in order.
    let ring = Mp::with_wait(Inline::new([0; 1024]), BusySpin);
    let mut graph = Ring::graph(&ring).unwrap();
    let mut consumer = graph.consumer(&[]).unwrap();
    let mut a = graph.multi_producer().unwrap();
    let mut b = a.clone();
    a.push(1).unwrap();
    b.push(2).unwrap();
    let mut seen = Vec::new();
    assert_eq!(consumer.poll(|e, _, _| seen.push(*e)), Poll::Processed(2));
    assert_eq!(seen, [1, 2]);
}

#[test]
fn a_cached_batch_never_outlives_its_release() {
    // The consumer counts the events it knows are available; every way of
    // releasing them (a batch dropped, a partial release, a drain) must
    // take them off that count, or a limited poll would hand them out again.
    let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(
        Heap::builder(8).gates(1).build().unwrap(),
        BusySpin,
    );
    let mut graph = Ring::graph(&ring).unwrap();
    let mut consumer = graph.consumer(&[]).unwrap();
    let mut producer = graph.single_producer().unwrap();
    for i in 0..6 {
        producer.push(i).unwrap();
    }
    let mut batch = consumer.read_limit(3).unwrap();
    batch.release(1);
    drop(batch);
    let mut seen = Vec::new();
    for _ in 0..3 {
        assert_eq!(
            consumer.poll_limit(1, |e, _, _| seen.push(*e)),
            Poll::Processed(1)
        );
    }
    assert_eq!(seen, [3, 4, 5]);
    assert_eq!(consumer.poll_limit(1, |_, _, _| ()), Poll::Idle);
    producer.push(6).unwrap();
    producer.push(7).unwrap();
    let drained: Vec<_> = consumer.drain().take(1).map(|(_, e)| e).collect();
    assert_eq!(drained, [6]);
    assert_eq!(
        consumer.poll_limit(1, |e, _, _| seen.push(*e)),
        Poll::Processed(1)
    );
    assert_eq!(consumer.poll_limit(1, |_, _, _| ()), Poll::Idle);
    assert_eq!(seen, [3, 4, 5, 7]);
}

#[test]
fn single_producer_stores_each_epoch_before_claiming_in_it() {
    use super::sequence::{epoch_of, EPOCH_SHIFT, WORDS_WRAP};
    // The producer's cached free count stops at its epoch's end, so the
    // claim that starts a new epoch takes the slow path and stores the
    // epoch first (workers rebuild the group's claim from it). Across the
    // boundary one event at a time, then in batches that straddle the next
    // one; a work group downstream sees every sequence once.
    let boundary = 1u64 << EPOCH_SHIFT;
    let ring = Ring::<Heap<u64>, Single, BusySpin>::with_first_sequence(
        Heap::builder(8).gates(3).build().unwrap(),
        BusySpin,
        boundary - 5,
    );
    let mut graph = Ring::graph(&ring).unwrap();
    let [mut a, mut b] = graph.work_group::<2>(&[]).unwrap();
    let mut producer = graph.single_producer().unwrap();
    let mut seen = Vec::new();
    let mut expect = Vec::new();
    for round in 0..6u64 {
        let n = if round < 3 { 1 } else { 5 };
        let first = producer
            .publish_batch(n, |claimed| {
                for (i, slot) in claimed.into_iter().enumerate() {
                    *slot = i as u64;
                }
            })
            .unwrap();
        expect.extend(first..first + n as u64);
        if WORDS_WRAP {
            assert_eq!(ring.epoch_now(), epoch_of(first), "round {round}");
        }
        while let Poll::Processed(_) = a.poll_limit(2, |_, seq, _| seen.push(seq)) {
            let _ = b.poll_limit(1, |_, seq, _| seen.push(seq));
        }
    }
    // Past the boundary's epoch, a lone event after a straddling batch.
    let last = producer.push(7).unwrap();
    expect.push(last);
    assert!(last > boundary + 8);
    while let Poll::Processed(_) = b.poll(|_, seq, _| seen.push(seq)) {}
    seen.sort_unstable();
    assert_eq!(seen, expect);
}

// ----- the stamp-only scan (no claim word read) -----

#[test]
fn a_full_wrapped_multi_ring_hands_out_one_capacity_and_no_more() {
    // Every slot holds a published event of the second lap: the scan must
    // stop a capacity on (the next slot's stamp is this lap's first event,
    // which looks published to a scan that does not count).
    let ring = mp::<u64>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    for v in 0..4 {
        p.push(v).unwrap();
    }
    assert_eq!(drain(&mut c).len(), 4);
    for v in 4..8 {
        p.push(v).unwrap();
    }
    assert!(p.try_push(8).unwrap_err().is_full());
    assert_eq!(c.available(), 4);
    assert_eq!(drain(&mut c), [(4, 4), (5, 5), (6, 6), (7, 7)]);
    assert_eq!(c.poll(|_, _, _| ()), Poll::Idle);
}

#[test]
fn a_worker_with_no_claim_limit_takes_at_most_a_capacity() {
    let ring = mp::<u64>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w] = g.work_group::<1>(&[]).unwrap();
    let mut p = g.multi_producer().unwrap();
    for v in 0..4 {
        p.push(v).unwrap();
    }
    let mut seen = Vec::new();
    assert_eq!(
        w.poll_limit(usize::MAX, |e, s, _| seen.push((s, *e))),
        Poll::Processed(4)
    );
    assert_eq!(seen, [(0, 0), (1, 1), (2, 2), (3, 3)]);
    for v in 4..8 {
        p.push(v).unwrap();
    }
    let mut seen = Vec::new();
    assert_eq!(
        w.poll_limit(usize::MAX, |e, s, _| seen.push((s, *e))),
        Poll::Processed(4)
    );
    assert_eq!(seen, [(4, 4), (5, 5), (6, 6), (7, 7)]);
    assert_eq!(w.poll(|_, _, _| ()), Poll::Idle);
}

#[test]
fn a_claimed_unpublished_slot_reads_unfinished_not_published() {
    // Producer A claims sequence 0 and is still writing when B publishes
    // sequence 1: the stamp scan stops at 0 and the empty path (which
    // alone reads the claim word) says a publish is under way.
    let ring = mp::<u64>(4);
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut a = g.multi_producer().unwrap();
    let mut b = a.clone();
    a.publish(|slot| {
        *slot = 10;
        b.push(11).unwrap();
        assert_eq!(
            c.poll(|_, _, _| panic!("nothing is published in order")),
            Poll::Unfinished
        );
    })
    .unwrap();
    assert_eq!(drain(&mut c), [(0, 10), (1, 11)]);
}
