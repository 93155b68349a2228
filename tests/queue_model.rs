//! The priority queue and delay queue against sorted models: every return
//! value and `len` compared after each step.

// Host-only code: std paths are fine here.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::queue::{DelayQueue, Fixed, Growable, PriorityKey, PriorityQueue, StorageKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    Pop,
    Peek,
    Change(usize, u8),
    Remove(usize),
    Clear,
    /// Keep values whose remainder mod 3 differs from this.
    Retain(u8),
    /// Pop the head if its priority is at most this.
    PopIf(u8),
    /// Compare `iter` with the model.
    Iter,
    Compact,
    Reserve(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(|p| Op::Push(p % 16)),
        3 => Just(Op::Pop),
        1 => Just(Op::Peek),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, p)| Op::Change(i, p % 16)),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => Just(Op::Clear),
        1 => any::<u8>().prop_map(|m| Op::Retain(m % 3)),
        2 => any::<u8>().prop_map(|p| Op::PopIf(p % 16)),
        1 => Just(Op::Iter),
        1 => Just(Op::Compact),
        1 => any::<u8>().prop_map(Op::Reserve),
    ]
}

fn run_pq<K: StorageKind>(
    mut q: PriorityQueue<u32, u8, K>,
    cap: usize,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    // (prio, seq) -> (handle, value); seq mirrors FIFO among equals.
    let mut model: BTreeMap<(u8, u64), (PriorityKey, u32)> = BTreeMap::new();
    let mut by_handle: BTreeMap<(u32, u32), (u8, u64)> = BTreeMap::new();
    let mut handles = Vec::new();
    let mut seq = 0u64;
    let mut v = 0u32;
    for op in ops {
        match op {
            Op::Push(p) => {
                v += 1;
                match q.try_push(v, p) {
                    Ok(h) => {
                        prop_assert!(model.len() < cap);
                        seq += 1;
                        model.insert((p, seq), (h, v));
                        by_handle.insert((h.raw().index, h.raw().gen), (p, seq));
                        handles.push(h);
                    }
                    Err(back) => {
                        prop_assert_eq!(back, (v, p));
                        prop_assert_eq!(model.len(), cap);
                    }
                }
            }
            Op::Pop => {
                let expect = model.pop_first().map(|((p, _), (h, v))| {
                    by_handle.remove(&(h.raw().index, h.raw().gen));
                    (v, p)
                });
                prop_assert_eq!(q.pop(), expect);
            }
            Op::Peek => {
                let expect = model.first_key_value().map(|((p, _), (_, v))| (*v, *p));
                prop_assert_eq!(q.peek().map(|(v, p)| (*v, *p)), expect);
                let key = model.first_key_value().map(|(_, (h, _))| *h);
                prop_assert_eq!(q.peek_key(), key);
            }
            Op::Change(i, p) if !handles.is_empty() => {
                let h = handles[i % handles.len()];
                let ok = if let Some(k) = by_handle.get_mut(&(h.raw().index, h.raw().gen)) {
                    let e = model.remove(k).unwrap();
                    seq += 1;
                    *k = (p, seq);
                    model.insert(*k, e);
                    true
                } else {
                    false
                };
                prop_assert_eq!(q.change_priority(h, p), ok);
                if ok {
                    prop_assert_eq!(q.priority(h), Some(&p));
                }
            }
            Op::Remove(i) if !handles.is_empty() => {
                let h = handles[i % handles.len()];
                let expect = by_handle
                    .remove(&(h.raw().index, h.raw().gen))
                    .map(|k| (model.remove(&k).unwrap().1, k.0));
                prop_assert_eq!(q.remove(h), expect);
            }
            Op::Clear => {
                q.clear();
                model.clear();
                by_handle.clear();
            }
            Op::Retain(m) => {
                q.retain(|&v, _| v % 3 != u32::from(m));
                model.retain(|_, (h, v)| {
                    let keep = *v % 3 != u32::from(m);
                    if !keep {
                        by_handle.remove(&(h.raw().index, h.raw().gen));
                    }
                    keep
                });
            }
            Op::PopIf(limit) => {
                let expect = match model.first_key_value() {
                    Some((&(p, _), _)) if p <= limit => {
                        model.pop_first().map(|((p, _), (h, v))| {
                            by_handle.remove(&(h.raw().index, h.raw().gen));
                            (v, p)
                        })
                    }
                    _ => None,
                };
                prop_assert_eq!(q.pop_if(|_, &p| p <= limit), expect);
            }
            Op::Iter => {
                let mut got: Vec<(PriorityKey, u32, u8)> =
                    q.iter().map(|(k, &v, &p)| (k, v, p)).collect();
                prop_assert_eq!(q.iter().len(), model.len());
                got.sort_by_key(|e| (e.0.raw().index, e.0.raw().gen));
                let mut want: Vec<(PriorityKey, u32, u8)> =
                    model.iter().map(|(&(p, _), &(h, v))| (h, v, p)).collect();
                want.sort_by_key(|e| (e.0.raw().index, e.0.raw().gen));
                prop_assert_eq!(got, want);
            }
            Op::Compact => {
                q.compact();
                for (&(p, _), &(h, v)) in &model {
                    prop_assert_eq!(q.get(h), Some(&v));
                    prop_assert_eq!(q.priority(h), Some(&p));
                }
            }
            Op::Reserve(n) => q.reserve(usize::from(n)),
            _ => {}
        }
        prop_assert_eq!(q.len(), model.len());
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum DOp {
    Insert(u16),
    Remove(usize),
    Reset(usize, u16),
    Poll(u16),
}

fn dop() -> impl Strategy<Value = DOp> {
    prop_oneof![
        4 => any::<u16>().prop_map(|d| DOp::Insert(d % 512)),
        1 => any::<usize>().prop_map(DOp::Remove),
        2 => (any::<usize>(), any::<u16>()).prop_map(|(i, d)| DOp::Reset(i, d % 512)),
        3 => any::<u16>().prop_map(|d| DOp::Poll(d % 64)),
    ]
}

fn run_delay<K: StorageKind>(
    mut q: DelayQueue<u32, K>,
    ops: Vec<DOp>,
) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<(u64, u64), (latchfree::queue::DelayKey, u32)> = BTreeMap::new();
    let mut keys = Vec::new();
    let (mut now, mut seq, mut v) = (0u64, 0u64, 0u32);
    for op in ops {
        match op {
            DOp::Insert(d) => {
                v += 1;
                if let Ok(k) = q.try_insert_at(v, now + d as u64) {
                    seq += 1;
                    model.insert((now + d as u64, seq), (k, v));
                    keys.push(k);
                }
            }
            DOp::Remove(i) if !keys.is_empty() => {
                let k = keys[i % keys.len()];
                let mk = model.iter().find(|(_, e)| e.0 == k).map(|(mk, _)| *mk);
                let expect = mk.map(|mk| model.remove(&mk).unwrap().1);
                prop_assert_eq!(q.remove(k), expect);
            }
            DOp::Reset(i, d) if !keys.is_empty() => {
                let k = keys[i % keys.len()];
                let mk = model.iter().find(|(_, e)| e.0 == k).map(|(mk, _)| *mk);
                if let Some(mk) = mk {
                    let e = model.remove(&mk).unwrap();
                    seq += 1;
                    model.insert((now + d as u64, seq), e);
                }
                prop_assert_eq!(q.reset_at(k, now + d as u64), mk.is_some());
            }
            DOp::Poll(adv) => {
                now += adv as u64;
                loop {
                    let peeked = q.peek().map(|(k, &v, d)| (k, d, v));
                    let head = model.first_key_value().map(|(&(d, _), &(k, v))| (k, d, v));
                    prop_assert_eq!(peeked, head);
                    let expect = match model.first_key_value() {
                        Some((&(d, _), _)) if d <= now => {
                            model.pop_first().map(|((d, _), (k, v))| (k, d, v))
                        }
                        _ => None,
                    };
                    let got = q.poll_expired(now).map(|e| (e.key, e.deadline, e.value));
                    prop_assert_eq!(got, expect);
                    if got.is_none() {
                        break;
                    }
                }
                prop_assert_eq!(q.next_deadline(), model.first_key_value().map(|(k, _)| k.0));
                if adv % 7 == 0 {
                    q.compact();
                    for &(k, v) in model.values() {
                        prop_assert_eq!(q.get(k), Some(&v));
                    }
                }
            }
            _ => {}
        }
        prop_assert_eq!(q.len(), model.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 512 }, ..ProptestConfig::default() })]

    #[test]
    fn pq_growable_matches_model(ops in prop::collection::vec(op(), 0..300)) {
        run_pq(PriorityQueue::<u32, u8, Growable>::new(), usize::MAX, ops)?;
    }

    #[test]
    fn pq_small_fixed_matches_model(ops in prop::collection::vec(op(), 0..100)) {
        run_pq(PriorityQueue::<u32, u8, Fixed<2>>::new_fixed(), 2, ops)?;
    }

    #[test]
    fn pq_fixed_matches_model(ops in prop::collection::vec(op(), 0..100)) {
        run_pq(PriorityQueue::<u32, u8, Fixed<7>>::new_fixed(), 7, ops)?;
    }

    #[test]
    fn delay_matches_model(ops in prop::collection::vec(dop(), 0..300)) {
        run_delay(DelayQueue::<u32, Growable>::new(), ops)?;
    }

    #[test]
    fn delay_fixed_matches_model(ops in prop::collection::vec(dop(), 0..100)) {
        run_delay(DelayQueue::<u32, Fixed<5>>::new_fixed(), ops)?;
    }
}

#[test]
fn capacity_zero_is_always_full_not_a_panic() {
    let mut q: PriorityQueue<u32, u32, Fixed<0>> = PriorityQueue::new_fixed();
    assert!(q.is_full());
    assert_eq!(q.try_push(1, 2), Err((1, 2)));
    assert_eq!(q.pop(), None);
    let mut d: DelayQueue<u32, Fixed<0>> = DelayQueue::new_fixed();
    assert_eq!(d.try_insert_at(1, 1), Err(1));
}

#[test]
fn drops_everything_once() {
    use std::rc::Rc;
    const N: usize = if cfg!(miri) { 64 } else { 10_000 };
    let probe = Rc::new(());
    let mut q: PriorityQueue<Rc<()>, Rc<()>, Growable> = PriorityQueue::new();
    let mut hs = Vec::new();
    for i in 0..N {
        hs.push(q.push(Rc::clone(&probe), Rc::clone(&probe)));
        if i % 3 == 0 {
            q.pop();
        }
    }
    for h in hs.iter().step_by(5) {
        q.remove(*h);
    }
    drop(q);
    assert_eq!(Rc::strong_count(&probe), 1);
}

#[test]
fn unbounded_push_returns_the_key_and_extend_keeps_order() {
    let mut q: PriorityQueue<&str, u32, Growable> = PriorityQueue::with_capacity(2);
    let k = q.push("a", 2); // a key, not a `Result`
    q.extend([("b", 1), ("c", 1), ("d", 3)]);
    assert_eq!(q.len(), 4);
    assert_eq!(q.get(k), Some(&"a"));
    let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(v, _)| v)).collect();
    assert_eq!(order, ["b", "c", "a", "d"]); // FIFO among equals, extend's order
}

#[test]
fn into_vec_hands_back_everything() {
    let mut q: PriorityQueue<u32, u32, Growable> = PriorityQueue::new();
    q.extend((0..50).map(|i| (i, (i * 7) % 11)));
    q.retain(|&v, _| v % 2 == 0);
    let mut all = q.into_vec();
    all.sort_unstable();
    let want: Vec<(u32, u32)> = (0..50)
        .filter(|i| i % 2 == 0)
        .map(|i| (i, (i * 7) % 11))
        .collect();
    assert_eq!(all, want);
}

#[test]
fn delay_queue_peek_names_the_head_and_compact_keeps_keys() {
    let mut q: DelayQueue<u32, Growable> = DelayQueue::new();
    let keys: Vec<_> = (0..100u32)
        .map(|i| q.insert_at(i, 1_000 - u64::from(i)))
        .collect();
    let (head, &v, d) = q.peek().unwrap();
    assert_eq!((head, v, d), (keys[99], 99, 901));
    for k in &keys[10..] {
        q.remove(*k);
    }
    q.compact();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(q.get(*k).copied(), (i < 10).then_some(i as u32));
    }
    // Slots handed back and regrown never answer to their old keys.
    let again: Vec<_> = (0..100u32).map(|i| q.insert_at(i, 5)).collect();
    assert!(keys[10..].iter().all(|k| !q.contains(*k)));
    assert_eq!(q.len(), 110);
    assert_eq!(q.peek().map(|(k, _, _)| k), Some(again[0]));
}
