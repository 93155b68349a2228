//! Timing wheel against a `BTreeMap` model: fires exactly the timers due,
//! never early; cancel/reset answer as the model does.
#![no_main]
use arbitrary::Arbitrary;
use latchfree::wheel::{Fixed, TimerKey, Wheel, WheelConfig, MAX_LEVELS};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Op {
    Insert(u64),
    Cancel(u16),
    Reset(u16, u64),
    Advance(u64),
    AdvanceWith(u32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    levels: u8,
    shift: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let shift = (input.shift % 8) as u32;
    let config = WheelConfig::new()
        .levels(input.levels % 11)
        .tick_shift(shift as u8);
    let mut w: Wheel<u64, Fixed<64>, MAX_LEVELS> = Wheel::new_fixed(config);
    let tick = |d: u64| (d >> shift) + u64::from(d & ((1u64 << shift) - 1) != 0);
    let mut model: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    let mut keys: Vec<TimerKey> = Vec::new();
    let (mut now, mut elapsed) = (0u64, 0u64);
    for op in input.ops {
        match op {
            Op::Insert(off) => {
                let d = now.saturating_add(off);
                match w.try_insert_at(d, d) {
                    Ok(k) => {
                        model.insert((k.raw().index, k.raw().gen), d);
                        keys.push(k);
                    }
                    Err(v) => {
                        assert_eq!(v, d);
                        assert_eq!(model.len(), 64);
                    }
                }
            }
            Op::Cancel(i) if !keys.is_empty() => {
                let k = keys[i as usize % keys.len()];
                let m = model.remove(&(k.raw().index, k.raw().gen));
                // The payload is the first deadline; the model tracks resets.
                assert_eq!(w.remove(k).is_some(), m.is_some());
            }
            Op::Reset(i, off) if !keys.is_empty() => {
                let k = keys[i as usize % keys.len()];
                let d = now.saturating_add(off);
                let live = model.get_mut(&(k.raw().index, k.raw().gen));
                let ok = live.is_some();
                if let Some(m) = live {
                    *m = d;
                }
                assert_eq!(w.reset_at(k, d), ok);
            }
            Op::Advance(off) => {
                now = now.saturating_add(off);
                elapsed = elapsed.max(now >> shift);
                w.advance_to(now);
                let mut last = 0;
                while let Some((key, _, deadline)) = w.peek() {
                    let e = w.pop_expired().expect("peek saw it");
                    assert_eq!((e.key, e.deadline), (key, deadline));
                    assert!(e.deadline >= last, "drained out of deadline order");
                    last = e.deadline;
                    let m = model
                        .remove(&(e.key.raw().index, e.key.raw().gen))
                        .expect("fired twice or unknown");
                    assert_eq!(m, e.deadline);
                    assert!(tick(e.deadline) <= elapsed, "fired early");
                }
                assert!(
                    model.values().all(|&d| tick(d) > elapsed),
                    "due timer not fired"
                );
            }
            Op::AdvanceWith(off) => {
                now = now.saturating_add(u64::from(off));
                elapsed = elapsed.max(now >> shift);
                w.advance_with(now, |e| {
                    let m = model
                        .remove(&(e.key.raw().index, e.key.raw().gen))
                        .expect("fired twice or unknown");
                    assert_eq!(m, e.deadline);
                    assert!(tick(e.deadline) <= elapsed, "fired early");
                });
                assert!(
                    model.values().all(|&d| tick(d) > elapsed),
                    "due timer not fired"
                );
            }
            _ => {}
        }
        assert_eq!(w.len(), model.len());
    }
});
