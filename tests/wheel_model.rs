//! The timing wheel against a `BTreeMap` model: every timer fires exactly
//! once, never early, at the first advance that reaches its (tick-rounded)
//! deadline; cancel and reset answer exactly as the model says.

// Host-only code: std paths are fine here.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::wheel::{Fixed, Growable, StorageKind, TimerKey, Wheel, WheelConfig, MAX_LEVELS};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Cancel(usize),
    Reset(usize, u64),
    Advance(u64),
    AdvanceBack(u64),
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..130,
        3 => 0u64..300_000,
        1 => 0u64..(1 << 40),
        1 => Just(u64::MAX),
        1 => (0u64..64).prop_map(|s| u64::MAX >> s),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => offset().prop_map(Op::Insert),
        2 => any::<usize>().prop_map(Op::Cancel),
        2 => (any::<usize>(), offset()).prop_map(|(i, d)| Op::Reset(i, d)),
        4 => offset().prop_map(Op::Advance),
        1 => (0u64..100).prop_map(Op::AdvanceBack),
    ]
}

fn tick(d: u64, s: u32) -> u64 {
    (d >> s) + u64::from(d & ((1u64 << s) - 1) != 0)
}

fn run<K: StorageKind>(
    mut w: Wheel<u64, K, MAX_LEVELS>,
    cap: usize,
    shift: u32,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    // key -> (deadline, value)
    let mut model: BTreeMap<(u32, u32), (TimerKey, u64, u64)> = BTreeMap::new();
    let mut keys: Vec<TimerKey> = Vec::new();
    let mut now = 0u64; // last `now` given, in caller units
    let mut elapsed = 0u64; // model's tick
    let mut next_value = 0u64;
    for op in ops {
        match op {
            Op::Insert(off) => {
                let d = now.saturating_add(off);
                next_value += 1;
                match w.try_insert_at(next_value, d) {
                    Ok(k) => {
                        prop_assert!(model.len() < cap);
                        model.insert((k.raw().index, k.raw().gen), (k, d, next_value));
                        keys.push(k);
                    }
                    Err(v) => {
                        prop_assert_eq!(v, next_value);
                        prop_assert_eq!(model.len(), cap);
                    }
                }
            }
            Op::Cancel(i) if !keys.is_empty() => {
                let k = keys[i % keys.len()];
                let expect = model.remove(&(k.raw().index, k.raw().gen)).map(|e| e.2);
                prop_assert_eq!(w.remove(k), expect);
            }
            Op::Reset(i, off) if !keys.is_empty() => {
                let k = keys[i % keys.len()];
                let d = now.saturating_add(off);
                let live = model.get_mut(&(k.raw().index, k.raw().gen));
                let ok = live.is_some();
                if let Some(e) = live {
                    e.1 = d;
                }
                prop_assert_eq!(w.reset_at(k, d), ok);
            }
            Op::Advance(off) | Op::AdvanceBack(off) => {
                if matches!(op, Op::Advance(_)) {
                    now = now.saturating_add(off);
                } else {
                    now = now.saturating_sub(off);
                }
                elapsed = elapsed.max(now >> shift);
                w.advance_to(now);
                let mut last = 0;
                let mut fired = Vec::new();
                // Every drain in deadline order, overdue-at-insert timers
                // included; `peek` shows what comes next.
                while let Some((k, &v, d)) = w.peek() {
                    let e = w.pop_expired().unwrap();
                    prop_assert_eq!((e.key, e.value, e.deadline), (k, v, d));
                    prop_assert!(
                        e.deadline >= last,
                        "out of order: {} after {}",
                        e.deadline,
                        last
                    );
                    last = e.deadline;
                    fired.push(e);
                }
                let due: Vec<(u32, u32)> = model
                    .iter()
                    .filter(|(_, e)| tick(e.1, shift) <= elapsed)
                    .map(|(k, _)| *k)
                    .collect();
                prop_assert_eq!(fired.len(), due.len(), "fired vs due at now {}", now);
                for e in fired {
                    let m = model.remove(&(e.key.raw().index, e.key.raw().gen));
                    prop_assert!(m.is_some(), "fired a timer twice or one not due");
                    let m = m.unwrap();
                    prop_assert_eq!((m.1, m.2), (e.deadline, e.value));
                    prop_assert!(tick(e.deadline, shift) <= elapsed, "early");
                }
            }
            _ => {}
        }
        prop_assert_eq!(w.len(), model.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 512 }, ..ProptestConfig::default() })]

    #[test]
    fn growable_matches_model(levels in 1u8..=10, shift in 0u32..5, ops in prop::collection::vec(op(), 0..200)) {
        let config = WheelConfig::new().levels(levels).tick_shift(shift as u8);
        run(Wheel::<u64, Growable, MAX_LEVELS>::new(config), usize::MAX, shift, ops)?;
    }

    #[test]
    fn fixed_matches_model(levels in 1u8..=10, ops in prop::collection::vec(op(), 0..200)) {
        let config = WheelConfig::new().levels(levels);
        run(Wheel::<u64, Fixed<8>, MAX_LEVELS>::new_fixed(config), 8, 0, ops)?;
    }
}

#[test]
fn many_timers_fire_once_in_order() {
    const N: u64 = if cfg!(miri) { 64 } else { 100_000 };
    let mut w: Wheel<u64, Growable> = Wheel::new(WheelConfig::new());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..N {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.try_insert_at(i, x % (N * 100)).unwrap();
    }
    let mut seen = vec![false; N as usize];
    let mut t = 0;
    let mut count = 0;
    while !w.is_empty() {
        t = w.next_deadline().unwrap();
        w.advance_to(t);
        for e in w.drain_expired() {
            assert_eq!(e.deadline, t);
            assert!(!seen[e.value as usize]);
            seen[e.value as usize] = true;
            count += 1;
        }
    }
    assert_eq!(count, N);
    assert!(t < N * 100);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]

    /// `advance_with` hands out exactly what `advance_to` + `drain_expired`
    /// would (`drain_expired` in deadline order; the sink tick by tick, so
    /// only a rebase of far timers may order it differently).
    #[test]
    fn advance_with_matches_advance_to(levels in 1u8..=10, ops in prop::collection::vec(op(), 0..200)) {
        let config = WheelConfig::new().levels(levels);
        let mut a: Wheel<u64, Growable, MAX_LEVELS> = Wheel::new(config);
        let mut b: Wheel<u64, Growable, MAX_LEVELS> = Wheel::new(config);
        let mut keys = Vec::new();
        let mut now = 0u64;
        let mut v = 0;
        for op in ops {
            match op {
                Op::Insert(off) => {
                    v += 1;
                    let d = now.saturating_add(off);
                    let ka = a.insert_at(v, d);
                    prop_assert_eq!(ka, b.insert_at(v, d));
                    keys.push(ka);
                }
                Op::Cancel(i) if !keys.is_empty() => {
                    let k = keys[i % keys.len()];
                    prop_assert_eq!(a.remove(k), b.remove(k));
                }
                Op::Reset(i, off) if !keys.is_empty() => {
                    let k = keys[i % keys.len()];
                    let d = now.saturating_add(off);
                    prop_assert_eq!(a.reset_at(k, d), b.reset_at(k, d));
                }
                Op::Advance(off) | Op::AdvanceBack(off) => {
                    now = if matches!(op, Op::Advance(_)) { now.saturating_add(off) } else { now.saturating_sub(off) };
                    a.advance_to(now);
                    let ea: Vec<_> = a.drain_expired().collect();
                    prop_assert!(ea.windows(2).all(|p| p[0].deadline <= p[1].deadline));
                    let mut eb = Vec::new();
                    b.advance_with(now, |e| eb.push(e));
                    eb.sort_by_key(|e| e.deadline); // stable: ties keep their order
                    prop_assert_eq!(ea, eb);
                }
                _ => {}
            }
            prop_assert_eq!(a.len(), b.len());
        }
    }
}
