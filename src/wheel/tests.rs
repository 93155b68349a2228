use super::*;
use crate::arena::Fixed;

type W<const N: usize> = Wheel<u64, Fixed<N>>;

#[test]
fn overhead_per_timer_is_at_most_24_bytes() {
    // Slot (deadline, generation, bucket/free link) plus the chain entry.
    assert!(bytes_per_timer::<u64>() - core::mem::size_of::<u64>() <= 24);
    assert!(bytes_per_timer::<[u64; 4]>() - 32 <= 24);
    assert!(bytes_per_timer::<()>() <= 24);
    assert!(bytes_per_timer::<u8>() <= 32);
}

#[test]
fn fires_exactly_at_deadline_never_early() {
    let mut w: W<64> = Wheel::new_fixed(WheelConfig::new());
    let deadlines = [
        0u64,
        1,
        63,
        64,
        65,
        4095,
        4096,
        4097,
        262_143,
        262_144,
        1 << 30,
    ];
    for (n, &d) in deadlines.iter().enumerate() {
        w.try_insert_at(n as u64, d).unwrap();
    }
    let mut t = 0u64;
    let mut seen = 0;
    // Walk through every deadline and one tick before it.
    let mut stops: [u64; 22] = [0; 22];
    for (n, &d) in deadlines.iter().enumerate() {
        stops[2 * n] = d.saturating_sub(1);
        stops[2 * n + 1] = d;
    }
    stops.sort_unstable();
    for &s in &stops {
        t = t.max(s);
        w.advance_to(t);
        while let Some(e) = w.pop_expired() {
            assert!(e.deadline <= t, "early: {} at {}", e.deadline, t);
            assert_eq!(e.deadline, t, "late: {} at {}", e.deadline, t);
            seen += 1;
        }
    }
    assert_eq!(seen, deadlines.len());
    assert!(w.is_empty());
}

#[test]
fn past_deadline_fires_on_next_advance() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    w.advance_to(1000);
    let k = w.try_insert_at(7, 10).unwrap();
    assert_eq!(w.next_deadline(), Some(1000));
    assert!(w.pop_expired().is_none());
    w.advance_to(1000);
    let e = w.pop_expired().unwrap();
    assert_eq!((e.key, e.value, e.deadline), (k, 7, 10));
}

#[test]
fn far_deadlines_saturate_and_still_fire_on_time() {
    for levels in 1..=MAX_LEVELS as u8 {
        let mut w: Wheel<u64, Fixed<8>, MAX_LEVELS> =
            Wheel::new_fixed(WheelConfig::new().levels(levels));
        let far = [u64::MAX, u64::MAX - 1, 1 << 62, (1 << 40) + 3];
        for &d in &far {
            w.try_insert_at(d, d).unwrap();
        }
        let mut t = 0u64;
        let mut fired = 0;
        let mut sorted = far;
        sorted.sort_unstable();
        for &d in &sorted {
            w.advance_to(d - 1);
            assert!(w.pop_expired().is_none(), "early at levels {levels}");
            t = t.max(d);
            w.advance_to(t);
            let e = w.pop_expired();
            assert!(
                e.is_some(),
                "levels {levels} deadline {d:#x} missing, wheel {w:?}"
            );
            assert_eq!(e.unwrap().deadline, d);
            fired += 1;
        }
        assert_eq!(fired, far.len());
    }
}

#[test]
fn remove_and_reset_are_generation_checked() {
    let mut w: W<2> = Wheel::new_fixed(WheelConfig::new());
    let a = w.try_insert_at(1, 100).unwrap();
    let b = w.try_insert_at(2, 200).unwrap();
    assert_eq!(w.try_insert_at(3, 300), Err(3));
    assert_eq!(w.capacity(), 2);
    assert!(w.reset_at(a, 150));
    assert!(w.reset_at(a, 151)); // same slot: fast path
    assert_eq!(w.deadline(a), Some(151));
    assert_eq!(w.remove(a), Some(1));
    assert_eq!(w.remove(a), None);
    assert!(!w.reset_at(a, 10));
    let c = w.try_insert_at(4, 50).unwrap(); // reuses a's slot
    assert_eq!(c.raw().index, a.raw().index);
    assert_eq!(w.remove(a), None);
    w.advance_to(500);
    let got: [u64; 2] = [
        w.pop_expired().unwrap().value,
        w.pop_expired().unwrap().value,
    ];
    assert_eq!(got, [4, 2]);
    assert_eq!(w.remove(b), None);
    assert_eq!(w.remove(c), None);
}

#[test]
fn expired_but_untaken_can_be_removed_or_rearmed() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    let a = w.try_insert_at(1, 5).unwrap();
    let b = w.try_insert_at(2, 5).unwrap();
    w.advance_to(10);
    assert_eq!(w.remove(a), Some(1));
    assert!(w.reset_at(b, 20));
    assert!(w.pop_expired().is_none());
    w.advance_to(19);
    assert!(w.pop_expired().is_none());
    w.advance_to(20);
    assert_eq!(w.pop_expired().unwrap().value, 2);
}

#[test]
fn tick_shift_rounds_up() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new().tick_shift(4));
    w.try_insert_at(1, 17).unwrap(); // tick 2 = time 32
    w.advance_to(31);
    assert!(w.pop_expired().is_none());
    w.advance_to(32);
    assert_eq!(w.pop_expired().unwrap().value, 1);
}

#[test]
fn const_static_wheel() {
    static W0: Wheel<u32, Fixed<4>> = Wheel::new_fixed(WheelConfig::new());
    assert!(W0.is_empty());
    let mut w: Wheel<u32, Fixed<0>> = Wheel::new_fixed(WheelConfig::new());
    assert_eq!(w.try_insert_at(1, 1), Err(1));
    assert_eq!(w.capacity(), 0);
}

#[test]
fn next_deadline_is_a_lower_bound() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    assert_eq!(w.next_deadline(), None);
    w.try_insert_at(1, 10_000).unwrap();
    let mut n = 0;
    while let Some(t) = w.next_deadline() {
        assert!(t <= 10_000);
        w.advance_to(t);
        n += 1;
        if w.pop_expired().is_some() {
            break;
        }
    }
    assert!(n <= 3);
    assert_eq!(w.now(), 10_000);
}

#[cfg(feature = "alloc")]
#[test]
fn growable_drops_payloads_once() {
    use alloc::rc::Rc;
    let probe = Rc::new(());
    let mut w: Wheel<Rc<()>, crate::arena::Growable> = Wheel::new(WheelConfig::new());
    const N: u64 = if cfg!(miri) { 64 } else { 10_000 };
    let mut keys = alloc::vec::Vec::new();
    for i in 0..N {
        keys.push(w.insert_at(probe.clone(), i * 7));
    }
    for k in keys.iter().step_by(3) {
        assert!(w.remove(*k).is_some());
    }
    w.advance_to(N * 3);
    let drained = w.drain_expired().count();
    assert!(drained > 0);
    assert_eq!(
        Rc::strong_count(&probe) as u64,
        1 + N - drained as u64 - N.div_ceil(3)
    );
    drop(w);
    assert_eq!(Rc::strong_count(&probe), 1);
}

/// A small xorshift, so the order tests cover many shapes reproducibly.
fn next_rand(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn drain_expired_is_in_deadline_order() {
    // Overdue-at-insert timers inserted out of order, several deadlines in
    // one tick (`tick_shift > 0`), far timers rebased on a one-level wheel:
    // every drain comes out sorted by deadline, and every pop matches the
    // peek before it.
    let mut seed = 0x2545_f491_4f6c_dd1d;
    for levels in 1..=3u8 {
        for shift in 0..=3u8 {
            let mut w: W<64> =
                Wheel::new_fixed(WheelConfig::new().levels(levels).tick_shift(shift));
            let mut now = 0u64;
            let mut fired = 0usize;
            let mut inserted = 0usize;
            for _round in 0..40 {
                for _ in 0..(next_rand(&mut seed) % 6) {
                    let r = next_rand(&mut seed);
                    // A third in the past, the rest ahead, some far ahead.
                    let d = match r % 3 {
                        0 => now.saturating_sub(r % 500),
                        1 => now + r % 300,
                        _ => now + (r % 5) * 5_000 + r % 7,
                    };
                    if w.try_insert_at(d, d).is_ok() {
                        inserted += 1;
                    }
                }
                now += next_rand(&mut seed) % 700;
                w.advance_to(now);
                let mut last = 0u64;
                while let Some((k, &v, d)) = w.peek() {
                    let e = w.pop_expired().unwrap();
                    assert_eq!((e.key, e.value, e.deadline), (k, v, d));
                    assert!(
                        e.deadline >= last,
                        "levels {levels} shift {shift}: {} after {last}",
                        e.deadline
                    );
                    assert!(e.deadline <= now);
                    last = e.deadline;
                    fired += 1;
                }
            }
            w.advance_to(u64::MAX);
            let mut last = 0;
            for e in w.drain_expired() {
                assert!(e.deadline >= last, "{} after {last}", e.deadline);
                last = e.deadline;
                fired += 1;
            }
            assert_eq!(fired, inserted);
        }
    }
}

#[test]
fn overdue_timers_drain_before_later_ones_in_deadline_order() {
    // The trap issue 12 names: timers already due when inserted used to
    // come first, in insertion order.
    let mut w: Wheel<char, Fixed<8>> = Wheel::new_fixed(WheelConfig::new());
    w.advance_to(100);
    w.try_insert_at('c', 101).unwrap();
    w.try_insert_at('b', 90).unwrap(); // overdue
    w.try_insert_at('a', 80).unwrap(); // overdue, earlier
    w.advance_to(101);
    let mut order = ['-'; 3];
    for (slot, e) in order.iter_mut().zip(w.drain_expired()) {
        *slot = e.value;
    }
    assert_eq!(order, ['a', 'b', 'c']);
}

#[test]
fn relative_insert_and_reset_count_from_now() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    w.advance_to(1_000);
    let k = w.try_insert(1, 50).unwrap();
    assert_eq!(w.deadline(k), Some(1_050));
    assert!(w.reset(k, 70));
    assert_eq!(w.deadline(k), Some(1_070));
    assert!(w.reset_at(k, 1_060));
    w.advance_to(1_059);
    assert!(w.pop_expired().is_none());
    w.advance_to(1_060);
    assert_eq!(w.peek().map(|(key, _, d)| (key, d)), Some((k, 1_060)));
    // Saturates instead of overflowing.
    let far = w.try_insert(2, u64::MAX).unwrap();
    assert_eq!(w.deadline(far), Some(u64::MAX));
}

#[cfg(feature = "alloc")]
#[test]
fn compact_returns_memory_and_keeps_keys() {
    let mut w: Wheel<u32, crate::arena::Growable> = Wheel::new(WheelConfig::new());
    let keep = w.insert_at(0, 10);
    let burst: alloc::vec::Vec<_> = (1..1000).map(|i| w.insert_at(i, 20)).collect();
    for k in &burst {
        w.remove(*k);
    }
    w.compact();
    assert_eq!(w.len(), 1);
    for k in &burst {
        assert!(!w.contains(*k));
    }
    // Regrown slots never answer to the burst's keys.
    let again: alloc::vec::Vec<_> = (0..1000).map(|i| w.insert_at(i, 30)).collect();
    assert!(burst.iter().all(|k| !w.contains(*k)));
    assert!(again.iter().all(|k| w.contains(*k)));
    assert_eq!(w.poll_expired(10).map(|e| e.key), Some(keep));
}

#[test]
fn storage_is_sized_by_the_level_count() {
    use core::mem::size_of;
    // A small wheel costs what it holds: one level of slot heads plus 16
    // timers fits in 1 KiB (issue 14's target for a 16-timer static wheel).
    assert!(size_of::<Wheel<u8, Fixed<16>, 1>>() <= 1024);
    assert!(size_of::<Wheel<u32, Fixed<16>, 1>>() <= 1024);
    assert!(size_of::<SmallWheel<u64, 16>>() <= 1024);
    // Each level adds its 64 slot heads and occupancy word, nothing more.
    let per_level = size_of::<Wheel<u8, Fixed<16>, 2>>() - size_of::<Wheel<u8, Fixed<16>, 1>>();
    assert_eq!(per_level, 64 * 4 + 8);
    assert_eq!(
        size_of::<Wheel<u8, Fixed<16>, 10>>() - size_of::<Wheel<u8, Fixed<16>, 6>>(),
        4 * per_level
    );
}

#[test]
fn fewer_levels_in_use_than_reserved_still_fire_on_time() {
    // `WheelConfig::levels` below the type's `LEVELS`: the top level in
    // use acts as the ring; above it: clamped to `LEVELS`.
    for levels in [1u8, 2, 3, 9] {
        let mut w: Wheel<u64, Fixed<8>, 3> = Wheel::new_fixed(WheelConfig::new().levels(levels));
        for d in [5u64, 300, 70_000, 1 << 33] {
            w.try_insert_at(d, d).unwrap();
        }
        for d in [5u64, 300, 70_000, 1 << 33] {
            w.advance_to(d - 1);
            assert!(w.pop_expired().is_none(), "early at levels {levels}");
            w.advance_to(d);
            assert_eq!(
                w.pop_expired().map(|e| e.deadline),
                Some(d),
                "levels {levels}"
            );
        }
    }
}

#[test]
fn small_wheel_fires_near_and_far_timers_on_time() {
    // One level of 64 ticks: far timers wait on the ring and re-cascade,
    // never early; a far jump takes them straight to their deadline.
    let mut w: SmallWheel<u64, 16> = Wheel::new_fixed(WheelConfig::new());
    let deadlines = [
        1u64,
        63,
        64,
        65,
        127,
        128,
        1000,
        4095,
        4096,
        70_000,
        1 << 20,
        1 << 40,
        u64::MAX - 1,
        5,
        5,
        0,
    ];
    for &d in &deadlines {
        w.try_insert_at(d, d).unwrap();
    }
    assert!(w.try_insert_at(7, 7).is_err());
    let mut stops = [0u64; 32];
    for (n, &d) in deadlines.iter().enumerate() {
        stops[2 * n] = d.saturating_sub(1);
        stops[2 * n + 1] = d;
    }
    stops.sort_unstable();
    let mut fired = 0;
    for &t in &stops {
        w.advance_to(t);
        while let Some(e) = w.pop_expired() {
            assert_eq!(e.deadline, t, "fired at {t}, due {}", e.deadline);
            fired += 1;
        }
    }
    assert_eq!(fired, deadlines.len());
    assert!(w.is_empty());
}

#[cfg(feature = "alloc")]
#[test]
fn growable_wheel_is_a_small_value() {
    // Its levels (eight lists per slot: 2 KiB each) are boxed, so moving a
    // growable wheel, or keeping one on a small stack (loom's coroutines,
    // an RTOS task), costs a few words, not 12 KiB.
    assert!(core::mem::size_of::<Wheel<u64, crate::arena::Growable>>() <= 256);
    assert!(core::mem::size_of::<Wheel<u64, crate::arena::Growable, MAX_LEVELS>>() <= 256);
}
