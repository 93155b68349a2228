//! Fault injection for the map: the key's `Hash`, `Eq`, `Clone` and `Drop`
//! and the value's `Clone` and `Drop` panic on their k-th call, across k,
//! over a mix of inserts, replacements, removals, closures and growth
//! (which clones entries to migrate them). After each panic the map must
//! agree with a sequential model (an op that panicked either happened or
//! not, and the map says which), and once dropped nothing may be leaked
//! or dropped twice (live counters).
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/fault.rs"]
mod fault;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicIsize, Ordering};

use fault::{arm, disarm, paused, point};
use latchfree::map::{Collector, HashMap, Op};

/// Live keys and values; a double drop drives it below zero.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// A key or a value (`u64` payload) whose user code is all fault points.
#[derive(Debug)]
struct F(u64);

impl F {
    fn new(x: u64) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        F(x)
    }
}

impl Clone for F {
    fn clone(&self) -> Self {
        point();
        F::new(self.0)
    }
}

impl Drop for F {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        point();
    }
}

impl Hash for F {
    fn hash<H: Hasher>(&self, h: &mut H) {
        point();
        self.0.hash(h);
    }
}

impl PartialEq for F {
    fn eq(&self, o: &Self) -> bool {
        point();
        self.0 == o.0
    }
}

impl Eq for F {}

/// Runs one operation, the model's view of it applied only if it returned;
/// after a panic the model learns from the map whether it happened.
fn step(map: &HashMap<F, F>, model: &mut BTreeMap<u64, u64>, i: u64) {
    let key = i % 23;
    let op = i % 5;
    let done = catch_unwind(AssertUnwindSafe(|| {
        let m = map.pin();
        match op {
            0 | 1 => {
                m.insert(F::new(key), F::new(i));
            }
            2 => {
                m.remove(&F::new(key));
            }
            3 => {
                m.upsert(F::new(key), || F::new(i), |v| F::new(v.0 + 1000));
            }
            _ => {
                m.compute(F::new(key), |cur| match cur {
                    Some(v) if v.0 % 2 == 0 => Op::Remove,
                    Some(v) => Op::Put(F::new(v.0 + 1)),
                    None => Op::Put(F::new(i)),
                });
            }
        }
    }))
    .is_ok();
    let now = paused(|| map.pin().get(&F::new(key)).map(|v| v.0));
    if done {
        // Applied exactly as the model says.
        let want = match op {
            0 | 1 => Some(i),
            2 => None,
            3 => Some(model.get(&key).map_or(i, |v| v + 1000)),
            _ => match model.get(&key) {
                Some(v) if v % 2 == 0 => None,
                Some(v) => Some(v + 1),
                None => Some(i),
            },
        };
        assert_eq!(now, want, "op {op} on key {key} (i={i})");
    }
    match now {
        Some(v) => model.insert(key, v),
        None => model.remove(&key),
    };
}

#[test]
fn map_faults_across_k() {
    for k in 1..300 {
        let collector = Collector::new();
        let map: HashMap<F, F> = HashMap::builder()
            .shards(2)
            .capacity(4)
            .collector(collector.clone())
            .build();
        let mut model = BTreeMap::new();
        arm(k);
        for i in 0..120 {
            step(&map, &mut model, i);
        }
        disarm();
        let m = map.pin();
        assert_eq!(m.len(), model.len(), "k={k}: len");
        for (key, v) in &model {
            assert_eq!(
                m.get(&F::new(*key)).map(|x| x.0),
                Some(*v),
                "k={k}: key {key}"
            );
        }
        let mut seen: Vec<u64> = m.iter().map(|(key, _)| key.0).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            model.keys().copied().collect::<Vec<_>>(),
            "k={k}: iteration"
        );
        // Every later call works.
        m.insert(F::new(1000), F::new(1));
        assert_eq!(m.remove(&F::new(1000)).map(|v| v.0), Some(1));
        drop(m);
        drop(map);
        // The last handle of the collector runs every deferred drop.
        drop(collector);
        assert_eq!(
            LIVE.load(Ordering::Relaxed),
            0,
            "k={k}: leaked or dropped twice"
        );
    }
}
