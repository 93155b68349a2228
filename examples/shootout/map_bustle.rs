//! The map section's DRAM-resident half: conc-map-bench's own workloads,
//! run through its harness (`bustle`) with its settings: ReadHeavy
//! (98/1/1/0/0), Exchange (10/40/40/10/0) and RapidGrow (5/80/5/10/0),
//! initial capacity 2^25, prefill 75% (RapidGrow 0%), one pass of
//! operations (2^25), u64 keys, u32 values, `ahash`. papaya runs with its
//! default collector (conc-map-bench's adapter tunes papaya 0.1's
//! `epoch_frequency`, which papaya 0.2's collector no longer has).
//!
//! Contenders run interleaved (one round visits every contender once, per
//! workload and thread count); each row is the median over the rounds with
//! its min–max. `latchfree` pins per operation (as every other
//! contender's adapter does); `latchfree pin/64` keeps one guard and
//! repins it every 64 operations, which is what `MapRef` offers a caller
//! with a run of operations.
//!
//! 2^25 keys take minutes per run on 2 cores: `MAPB_LOG2=<n>` sets the
//! capacity exponent (default 25), `MAPB_ROUNDS=<n>` the rounds (default
//! 3), `MAPB_THREADS=1,2` the thread counts, `MAPB_ONLY=ReadHeavy` the
//! workloads. The figures are only comparable at one setting: the note at
//! the top of the section says which one ran.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::HashMap as StdMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bustle::{Collection, CollectionHandle, Mix, Workload};
use crossbeam_epoch::Guard;

use crate::report::{Better, Report};

type Hasher = ahash::RandomState;
/// conc-map-bench's value type.
type Value = u32;

/// How often the `pin/64` handle repins.
const REPIN: u32 = 64;

#[derive(Clone)]
struct Latchfree(Arc<latchfree::map::HashMap<u64, Value, Hasher>>);

impl Collection for Latchfree {
    type Handle = Self;
    fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(latchfree::map::HashMap::with_capacity_and_hasher(
            capacity,
            Hasher::new(),
        )))
    }
    fn pin(&self) -> Self {
        self.clone()
    }
}

impl CollectionHandle for Latchfree {
    type Key = u64;
    fn get(&mut self, k: &u64) -> bool {
        self.0.pin().get(k).is_some()
    }
    fn insert(&mut self, k: &u64) -> bool {
        self.0.pin().insert(*k, 0).is_none()
    }
    fn remove(&mut self, k: &u64) -> bool {
        self.0.pin().remove(k).is_some()
    }
    fn update(&mut self, k: &u64) -> bool {
        self.0.pin().update(*k, |v| v + 1).is_some()
    }
}

/// latchfree with one guard per thread, repinned every [`REPIN`] ops.
struct LatchfreePinned(Arc<latchfree::map::HashMap<u64, Value, Hasher>>);

struct PinnedHandle {
    map: Arc<latchfree::map::HashMap<u64, Value, Hasher>>,
    guard: Guard,
    ops: u32,
}

impl PinnedHandle {
    #[inline]
    fn tick(&mut self) {
        self.ops += 1;
        if self.ops == REPIN {
            self.ops = 0;
            self.guard.repin();
        }
    }
}

impl Collection for LatchfreePinned {
    type Handle = PinnedHandle;
    fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(latchfree::map::HashMap::with_capacity_and_hasher(
            capacity,
            Hasher::new(),
        )))
    }
    fn pin(&self) -> PinnedHandle {
        PinnedHandle {
            map: self.0.clone(),
            // The map uses the default collector: its thread-local pin.
            guard: crossbeam_epoch::pin(),
            ops: 0,
        }
    }
}

impl CollectionHandle for PinnedHandle {
    type Key = u64;
    fn get(&mut self, k: &u64) -> bool {
        let hit = self.map.with_guard(&self.guard).get(k).is_some();
        self.tick();
        hit
    }
    fn insert(&mut self, k: &u64) -> bool {
        let new = self.map.with_guard(&self.guard).insert(*k, 0).is_none();
        self.tick();
        new
    }
    fn remove(&mut self, k: &u64) -> bool {
        let hit = self.map.with_guard(&self.guard).remove(k).is_some();
        self.tick();
        hit
    }
    fn update(&mut self, k: &u64) -> bool {
        let hit = self
            .map
            .with_guard(&self.guard)
            .update(*k, |v| v + 1)
            .is_some();
        self.tick();
        hit
    }
}

#[derive(Clone)]
struct Dash(Arc<dashmap::DashMap<u64, Value, Hasher>>);

impl Collection for Dash {
    type Handle = Self;
    fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(dashmap::DashMap::with_capacity_and_hasher(
            capacity,
            Hasher::new(),
        )))
    }
    fn pin(&self) -> Self {
        self.clone()
    }
}

impl CollectionHandle for Dash {
    type Key = u64;
    fn get(&mut self, k: &u64) -> bool {
        self.0.get(k).is_some()
    }
    fn insert(&mut self, k: &u64) -> bool {
        self.0.insert(*k, 0).is_none()
    }
    fn remove(&mut self, k: &u64) -> bool {
        self.0.remove(k).is_some()
    }
    fn update(&mut self, k: &u64) -> bool {
        self.0.get_mut(k).map(|mut v| *v += 1).is_some()
    }
}

#[derive(Clone)]
struct Papaya(Arc<papaya::HashMap<u64, Value, Hasher>>);

impl Collection for Papaya {
    type Handle = Self;
    fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(
            papaya::HashMap::builder()
                .capacity(capacity)
                .hasher(Hasher::new())
                .build(),
        ))
    }
    fn pin(&self) -> Self {
        self.clone()
    }
}

impl CollectionHandle for Papaya {
    type Key = u64;
    fn get(&mut self, k: &u64) -> bool {
        self.0.pin().get(k).is_some()
    }
    fn insert(&mut self, k: &u64) -> bool {
        self.0.pin().insert(*k, 0).is_none()
    }
    fn remove(&mut self, k: &u64) -> bool {
        self.0.pin().remove(k).is_some()
    }
    fn update(&mut self, k: &u64) -> bool {
        self.0.pin().update(*k, |v| v + 1).is_some()
    }
}

#[derive(Clone)]
struct Locked(Arc<RwLock<StdMap<u64, Value, Hasher>>>);

impl Collection for Locked {
    type Handle = Self;
    fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(RwLock::new(StdMap::with_capacity_and_hasher(
            capacity,
            Hasher::new(),
        ))))
    }
    fn pin(&self) -> Self {
        self.clone()
    }
}

impl CollectionHandle for Locked {
    type Key = u64;
    fn get(&mut self, k: &u64) -> bool {
        self.0.read().unwrap().contains_key(k)
    }
    fn insert(&mut self, k: &u64) -> bool {
        self.0.write().unwrap().insert(*k, 0).is_none()
    }
    fn remove(&mut self, k: &u64) -> bool {
        self.0.write().unwrap().remove(k).is_some()
    }
    fn update(&mut self, k: &u64) -> bool {
        self.0
            .write()
            .unwrap()
            .get_mut(k)
            .map(|v| *v += 1)
            .is_some()
    }
}

/// conc-map-bench's three workloads: name, mix, prefill fraction.
fn workloads() -> [(&'static str, Mix, f64); 3] {
    let mix = |read, insert, remove, update| Mix {
        read,
        insert,
        remove,
        update,
        upsert: 0,
    };
    [
        ("ReadHeavy", mix(98, 1, 1, 0), 0.75),
        ("Exchange", mix(10, 40, 40, 10), 0.75),
        ("RapidGrow", mix(5, 80, 5, 10), 0.0),
    ]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one workload on `C`; M ops/s. Bustle itself checks every
/// operation's result against the keys it handed out.
fn one<C: Collection>(log2: u8, threads: usize, mix: Mix, prefill: f64, seed: [u8; 32]) -> f64
where
    <C::Handle as CollectionHandle>::Key: Send + std::fmt::Debug,
{
    let m = Workload::new(threads, mix)
        .initial_capacity_log2(log2)
        .prefill_fraction(prefill)
        .operations(1.0)
        .seed(seed)
        .run_silently::<C>();
    // As conc-map-bench's `gc_cycle`: let retired memory go before the next
    // contender.
    std::thread::sleep(Duration::from_millis(200));
    let mut g = crossbeam_epoch::pin();
    g.flush();
    for _ in 0..32 {
        g.repin();
    }
    m.throughput / 1e6
}

pub fn run(r: &mut Report) {
    let log2: u8 = env_or("MAPB_LOG2", 25);
    let rounds: usize = env_or("MAPB_ROUNDS", 3).max(1);
    let threads: Vec<usize> = std::env::var("MAPB_THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let only = std::env::var("MAPB_ONLY").ok();
    r.note(&format!(
        "map (bustle, conc-map-bench workloads): capacity 2^{log2}, prefill 75% \
         (RapidGrow 0%), u64 -> u32, ahash, {rounds} interleaved rounds, M ops/s"
    ));
    type Runner = fn(u8, usize, Mix, f64, [u8; 32]) -> f64;
    let contenders: [(&str, Runner); 5] = [
        ("latchfree", one::<Latchfree>),
        ("latchfree pin/64", one::<LatchfreePinned>),
        ("dashmap", one::<Dash>),
        ("papaya", one::<Papaya>),
        ("RwLock<HashMap>", one::<Locked>),
    ];
    for (name, mix, prefill) in workloads() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        for &t in &threads {
            let scenario = format!("bustle {name} {t}t");
            let mut samples = vec![Vec::new(); contenders.len()];
            for round in 0..rounds {
                // The same keys and operations for every contender of a
                // round; a new draw per round.
                let seed = [round as u8 + 1; 32];
                for (i, (_, run)) in contenders.iter().enumerate() {
                    samples[i].push(run(log2, t, mix, prefill, seed));
                }
            }
            for ((imp, _), s) in contenders.iter().zip(&samples) {
                r.add_rounds("map", &scenario, imp, "Mops_per_sec", s, Better::Higher);
            }
        }
    }
}
