//! Replays arbitrary operation sequences on `latchfree::map::HashMap`
//! against `std::collections::HashMap`, comparing every result and `len`.
#![no_main]

use std::collections::HashMap as Model;

use arbitrary::Arbitrary;
use latchfree::map::{HashMap, Op};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Action {
    Insert(u8, u16),
    Remove(u8),
    TryInsert(u8, u16),
    Upsert(u8, u16),
    ComputeRemove(u8),
    Get(u8),
    Retain(u16),
    Clear,
    Iterate,
}

#[derive(Arbitrary, Debug)]
struct Input {
    shards: u8,
    actions: Vec<Action>,
}

fuzz_target!(|input: Input| {
    let map: HashMap<u8, u16> = HashMap::with_shards(usize::from(input.shards % 9));
    let mut model: Model<u8, u16> = Model::new();
    let m = map.pin();
    for a in input.actions {
        match a {
            Action::Insert(k, v) => assert_eq!(m.insert(k, v).copied(), model.insert(k, v)),
            Action::Remove(k) => assert_eq!(m.remove(&k).copied(), model.remove(&k)),
            Action::TryInsert(k, v) => {
                let ok = m.try_insert(k, v).is_ok();
                assert_eq!(ok, !model.contains_key(&k));
                model.entry(k).or_insert(v);
            }
            Action::Upsert(k, v) => {
                let want = *model
                    .entry(k)
                    .and_modify(|x| *x = x.wrapping_add(v))
                    .or_insert(v);
                assert_eq!(*m.upsert(k, || v, |x| x.wrapping_add(v)), want);
            }
            Action::ComputeRemove(k) => {
                m.compute(k, |_| Op::Remove);
                model.remove(&k);
            }
            Action::Get(k) => assert_eq!(m.get(&k), model.get(&k)),
            Action::Retain(limit) => {
                m.retain(|_, v| *v < limit);
                model.retain(|_, v| *v < limit);
            }
            Action::Clear => {
                m.clear();
                model.clear();
            }
            Action::Iterate => {
                let mut got: Vec<(u8, u16)> = m.iter().map(|(k, v)| (*k, *v)).collect();
                got.sort_unstable();
                let mut want: Vec<(u8, u16)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                want.sort_unstable();
                assert_eq!(got, want);
            }
        }
        assert_eq!(m.len(), model.len());
    }
});
