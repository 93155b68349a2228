//! Delay queue against a sorted model: exact deadline order, ties FIFO.
#![no_main]
use arbitrary::Arbitrary;
use latchfree::queue::{DelayKey, DelayQueue, Growable};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Op {
    Insert(u16),
    Remove(u16),
    Reset(u16, u16),
    Poll(u8),
    Clear,
    Compact,
}

fuzz_target!(|ops: Vec<Op>| {
    let mut q: DelayQueue<u32, Growable> = DelayQueue::new();
    let mut model: BTreeMap<(u64, u64), (DelayKey, u32)> = BTreeMap::new();
    let mut keys: Vec<DelayKey> = Vec::new();
    let (mut now, mut seq, mut v) = (0u64, 0u64, 0u32);
    for op in ops {
        match op {
            Op::Insert(d) => {
                v += 1;
                let k = q.insert_at(v, now + u64::from(d));
                seq += 1;
                model.insert((now + u64::from(d), seq), (k, v));
                keys.push(k);
            }
            Op::Remove(i) if !keys.is_empty() => {
                let k = keys[i as usize % keys.len()];
                let mk = model.iter().find(|(_, e)| e.0 == k).map(|(m, _)| *m);
                assert_eq!(q.remove(k), mk.map(|m| model.remove(&m).unwrap().1));
            }
            Op::Reset(i, d) if !keys.is_empty() => {
                let k = keys[i as usize % keys.len()];
                let mk = model.iter().find(|(_, e)| e.0 == k).map(|(m, _)| *m);
                if let Some(m) = mk {
                    let e = model.remove(&m).unwrap();
                    seq += 1;
                    model.insert((now + u64::from(d), seq), e);
                }
                assert_eq!(q.reset_at(k, now + u64::from(d)), mk.is_some());
            }
            Op::Poll(adv) => {
                now += u64::from(adv);
                loop {
                    let head = model.first_key_value().map(|(&(d, _), &(k, v))| (k, d, v));
                    assert_eq!(q.peek().map(|(k, &v, d)| (k, d, v)), head);
                    let expect = match model.first_key_value() {
                        Some((&(d, _), _)) if d <= now => {
                            model.pop_first().map(|((d, _), (k, v))| (k, d, v))
                        }
                        _ => None,
                    };
                    let got = q.poll_expired(now).map(|e| (e.key, e.deadline, e.value));
                    assert_eq!(got, expect);
                    if got.is_none() {
                        break;
                    }
                }
            }
            Op::Clear => {
                q.clear();
                model.clear();
            }
            Op::Compact => {
                q.compact();
                assert!(model.values().all(|&(k, v)| q.get(k) == Some(&v)));
            }
            _ => {}
        }
        assert_eq!(q.len(), model.len());
        assert_eq!(q.next_deadline(), model.first_key_value().map(|(k, _)| k.0));
    }
});
