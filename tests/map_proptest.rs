//! Random operation sequences against `std::collections::HashMap`,
//! comparing every return value and `len` after each step.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::HashMap as Model;

use latchfree::map::{HashMap, Op, Order};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Insert(u8, u16),
    Remove(u8),
    RemoveIfEven(u8),
    TryInsert(u8, u16),
    GetOrInsert(u8, u16),
    Update(u8),
    Upsert(u8, u16),
    ComputeRemoveOdd(u8),
    Get(u8),
    RetainBelow(u16),
    Entry(u8, u16),
    EntryOrInsert(u8, u16),
    Reserve(u16),
    Shrink,
    Clear,
    Check,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Action::Insert(k, v)),
        4 => any::<u8>().prop_map(Action::Remove),
        2 => any::<u8>().prop_map(Action::RemoveIfEven),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Action::TryInsert(k, v)),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Action::GetOrInsert(k, v)),
        2 => any::<u8>().prop_map(Action::Update),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Action::Upsert(k, v)),
        2 => any::<u8>().prop_map(Action::ComputeRemoveOdd),
        4 => any::<u8>().prop_map(Action::Get),
        1 => any::<u16>().prop_map(Action::RetainBelow),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Action::Entry(k, v)),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Action::EntryOrInsert(k, v)),
        1 => any::<u16>().prop_map(Action::Reserve),
        1 => Just(Action::Shrink),
        1 => Just(Action::Clear),
        1 => Just(Action::Check),
    ]
}

fn run(actions: &[Action], shards: usize) {
    let map: HashMap<u8, u16> = HashMap::with_shards(shards);
    let mut model: Model<u8, u16> = Model::new();
    let m = map.pin();
    for a in actions {
        match *a {
            Action::Insert(k, v) => assert_eq!(m.insert(k, v).copied(), model.insert(k, v)),
            Action::Remove(k) => assert_eq!(m.remove(&k).copied(), model.remove(&k)),
            Action::RemoveIfEven(k) => {
                let want = model.get(&k).copied().filter(|v| v % 2 == 0);
                if want.is_some() {
                    model.remove(&k);
                }
                assert_eq!(m.remove_if(&k, |_, v| v % 2 == 0).copied(), want);
            }
            Action::TryInsert(k, v) => {
                let got = m
                    .try_insert(k, v)
                    .copied()
                    .map_err(|e| (*e.current, e.not_inserted));
                let want = match model.get(&k) {
                    Some(&cur) => Err((cur, v)),
                    None => {
                        model.insert(k, v);
                        Ok(v)
                    }
                };
                assert_eq!(got, want);
            }
            Action::GetOrInsert(k, v) => {
                assert_eq!(*m.get_or_insert_with(k, || v), *model.entry(k).or_insert(v));
            }
            Action::Update(k) => {
                let want = model.get_mut(&k).map(|x| {
                    *x = x.wrapping_mul(3);
                    *x
                });
                assert_eq!(m.update(k, |x| x.wrapping_mul(3)).copied(), want);
            }
            Action::Upsert(k, v) => {
                let e = model
                    .entry(k)
                    .and_modify(|x| *x = x.wrapping_add(1))
                    .or_insert(v);
                assert_eq!(*m.upsert(k, || v, |x| x.wrapping_add(1)), *e);
            }
            Action::ComputeRemoveOdd(k) => {
                let want = model.get(&k).copied().filter(|v| v % 2 == 1);
                if want.is_some() {
                    model.remove(&k);
                }
                let got = m.compute(k, |cur| match cur {
                    Some(v) if v % 2 == 1 => Op::Remove,
                    _ => Op::Keep,
                });
                assert_eq!(got.value().copied(), model.get(&k).copied());
            }
            Action::Get(k) => {
                assert_eq!(m.get(&k), model.get(&k));
                assert_eq!(m.contains_key(&k), model.contains_key(&k));
            }
            Action::RetainBelow(limit) => {
                m.retain(|_, v| *v < limit);
                model.retain(|_, v| *v < limit);
            }
            Action::Entry(k, v) => {
                let e = model
                    .entry(k)
                    .and_modify(|x| *x = x.wrapping_add(2))
                    .or_insert(v);
                let got = m.entry(k).and_modify(|x| x.wrapping_add(2)).or_insert(v);
                assert_eq!(*got, *e);
            }
            Action::EntryOrInsert(k, v) => {
                assert_eq!(
                    *m.entry(k).or_insert_with(|| v),
                    *model.entry(k).or_insert(v)
                );
            }
            Action::Reserve(n) => {
                let n = usize::from(n % 512);
                map.try_reserve(n).unwrap();
                assert!(map.capacity() >= model.len() + n);
            }
            Action::Shrink => {
                map.shrink_to_fit();
                assert!(map.capacity() >= model.len());
            }
            Action::Clear => {
                m.clear();
                model.clear();
            }
            Action::Check => {
                let mut want: Vec<(u8, u16)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                want.sort_unstable();
                assert_eq!(m.sorted_by_key(Order::Ascending), want);
                want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                assert_eq!(m.sorted_by_value_stable(Order::Descending), want);
                let copy = map.clone();
                assert!(copy == map);
                let mut cloned: Vec<(u8, u16)> = map.iter().collect();
                cloned.sort_unstable();
                want.sort_unstable();
                assert_eq!(cloned, want);
            }
        }
        assert_eq!(m.len(), model.len());
    }
    let mut all: Vec<(u8, u16)> = m.iter().map(|(k, v)| (*k, *v)).collect();
    all.sort_unstable();
    let mut want: Vec<(u8, u16)> = model.into_iter().collect();
    want.sort_unstable();
    assert_eq!(all, want);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_std_hashmap_one_shard(actions in prop::collection::vec(action(), 0..400)) {
        run(&actions, 1);
    }

    #[test]
    fn matches_std_hashmap_many_shards(actions in prop::collection::vec(action(), 0..400)) {
        run(&actions, 8);
    }
}
