//! Priority queue against a sorted model (`BTreeMap` keyed by priority and
//! FIFO sequence).
#![no_main]
use arbitrary::Arbitrary;
use latchfree::queue::arena::Growable;
use latchfree::queue::{Handle, PriorityQueue};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Op {
    Push(u8),
    Pop,
    Change(u16, u8),
    Remove(u16),
    Clear,
}

fuzz_target!(|input: (u8, Vec<Op>)| {
    let limit = input.0 as usize % 40;
    let mut q: PriorityQueue<u8, u32, Growable> = PriorityQueue::with_capacity(0, limit);
    let mut model: BTreeMap<(u8, u64), u32> = BTreeMap::new();
    let mut pos: BTreeMap<(u32, u32), (u8, u64)> = BTreeMap::new();
    let mut hs: Vec<Handle> = Vec::new();
    let (mut seq, mut v) = (0u64, 0u32);
    for op in input.1 {
        match op {
            Op::Push(p) => {
                v += 1;
                match q.push(p, v) {
                    Ok(h) => {
                        seq += 1;
                        model.insert((p, seq), v);
                        pos.insert((h.raw().index, h.raw().gen), (p, seq));
                        hs.push(h);
                    }
                    Err(back) => {
                        assert_eq!(back, (p, v));
                        assert_eq!(model.len(), limit);
                    }
                }
            }
            Op::Pop => {
                let expect = model.pop_first().map(|((p, _), v)| (p, v));
                if let Some((p, _)) = expect {
                    pos.retain(|_, k| k.0 != p || model.contains_key(k));
                }
                assert_eq!(q.pop(), expect);
            }
            Op::Change(i, p) if !hs.is_empty() => {
                let h = hs[i as usize % hs.len()];
                let ok = match pos.get_mut(&(h.raw().index, h.raw().gen)) {
                    Some(k) => {
                        let val = model.remove(k).unwrap();
                        seq += 1;
                        *k = (p, seq);
                        model.insert(*k, val);
                        true
                    }
                    None => false,
                };
                assert_eq!(q.change_priority(h, p), ok);
            }
            Op::Remove(i) if !hs.is_empty() => {
                let h = hs[i as usize % hs.len()];
                let expect = pos
                    .remove(&(h.raw().index, h.raw().gen))
                    .map(|k| (k.0, model.remove(&k).unwrap()));
                assert_eq!(q.remove(h), expect);
            }
            Op::Clear => {
                q.clear();
                model.clear();
                pos.clear();
            }
            _ => {}
        }
        assert_eq!(q.len(), model.len());
    }
});
