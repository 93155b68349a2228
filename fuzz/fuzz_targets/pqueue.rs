//! Priority queue against a sorted model (`BTreeMap` keyed by priority and
//! FIFO sequence).
#![no_main]
use arbitrary::Arbitrary;
use latchfree::queue::{Fixed, Growable, PriorityKey, PriorityQueue, StorageKind};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Op {
    Push(u8),
    Pop,
    Change(u16, u8),
    Remove(u16),
    Clear,
    Retain(u8),
    PopIf(u8),
}

fuzz_target!(|input: (bool, Vec<Op>)| {
    if input.0 {
        run(
            PriorityQueue::<u32, u8, Growable>::new(),
            usize::MAX,
            input.1,
        );
    } else {
        run(
            PriorityQueue::<u32, u8, Fixed<16>>::new_fixed(),
            16,
            input.1,
        );
    }
});

fn run<K: StorageKind>(mut q: PriorityQueue<u32, u8, K>, limit: usize, ops: Vec<Op>) {
    let mut model: BTreeMap<(u8, u64), u32> = BTreeMap::new();
    let mut pos: BTreeMap<(u32, u32), (u8, u64)> = BTreeMap::new();
    let mut hs: Vec<PriorityKey> = Vec::new();
    let (mut seq, mut v) = (0u64, 0u32);
    for op in ops {
        match op {
            Op::Push(p) => {
                v += 1;
                match q.try_push(v, p) {
                    Ok(h) => {
                        seq += 1;
                        model.insert((p, seq), v);
                        pos.insert((h.raw().index, h.raw().gen), (p, seq));
                        hs.push(h);
                    }
                    Err(back) => {
                        assert_eq!(back, (v, p));
                        assert_eq!(model.len(), limit);
                    }
                }
            }
            Op::Pop => {
                let expect = model.pop_first().map(|((p, _), v)| (v, p));
                if let Some((_, p)) = expect {
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
                    .map(|k| (model.remove(&k).unwrap(), k.0));
                assert_eq!(q.remove(h), expect);
            }
            Op::Clear => {
                q.clear();
                model.clear();
                pos.clear();
            }
            Op::Retain(m) => {
                let m = u32::from(m % 3);
                q.retain(|&v, _| v % 3 != m);
                model.retain(|_, v| *v % 3 != m);
                pos.retain(|_, k| model.contains_key(k));
            }
            Op::PopIf(limit) => {
                let expect = match model.first_key_value() {
                    Some((&(p, _), _)) if p <= limit => model.pop_first().map(|((p, _), v)| (v, p)),
                    _ => None,
                };
                pos.retain(|_, k| model.contains_key(k));
                assert_eq!(q.pop_if(|_, &p| p <= limit), expect);
            }
            _ => {}
        }
        assert_eq!(q.len(), model.len());
    }
}
