//! The `map` section: conc-map-bench's workloads (ReadHeavy, Exchange,
//! RapidGrow) plus an upsert-heavy and a Zipf hot-key mix at 1, 2 and 4
//! threads; an insert tail-latency test; bytes per entry after prefill.
//!
//! Peers, all with the same `ahash` hasher: dashmap, papaya,
//! `RwLock<std HashMap>`; the floor is a single-threaded std `HashMap`
//! (1-thread rows only). To keep the section under a minute on 2 cores it
//! runs far fewer operations than conc-map-bench (see `OPS`; `MAPOPS`
//! overrides it), on a
//! 2^18-key universe (the criterion bench uses 2^20), so the maps stay
//! cache-resident.
//!
//! Measured as bustle (conc-map-bench's harness) measures: every map is
//! built with room for the key universe, prefilled to 3/4 of it (not
//! RapidGrow, which starts empty) and warmed with a tenth of the run's
//! operations before the timed window, so that window measures the
//! steady-state mix rather than whether a table's last growth happened to
//! land in it. The contenders run interleaved over `--rounds` rounds
//! (default 5; every round runs every row once, each on a fresh map) and
//! each row is the median with its min–max; `--pin` pins the threads
//! round-robin to the cores. The load average is noted before and after.
//!
//! Every run checks that the map's final size matches the inserts and
//! removes its threads reported (warm-up included), so an implementation
//! that drops work is caught before its time is recorded.
//!
//! `MAPL=1` runs only the latency rows: insert tail latency from 4
//! threads, read latency while another thread grows the map from empty to
//! 2^22 keys (`MAPG_LOG2` sizes it), and per-operation latency of a
//! get/insert/remove mix from 2 threads. `MAPM=1` runs only bytes per
//! entry.
//!
//! `MAPF=<text>` runs only the workload rows whose "scenario impl" contains
//! `<text>` (e.g. `MAPF="ReadHeavy 98/1/1/0 1t"`) and skips the latency and
//! memory rows and the DRAM-resident half: for profiling one contender.
//!
//! Then the DRAM-resident half: conc-map-bench's exact workloads through
//! `bustle` (`map_bustle.rs`; `MAPB_LOG2=0` skips it, other `MAPB_*`
//! variables size it).

#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::undocumented_unsafe_blocks
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap as StdMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use crate::placement;
use crate::report::{Better, Report};

type Hasher = ahash::RandomState;

const KEY_BITS: u32 = 18;
const KEYS: u64 = 1 << KEY_BITS;
/// Operations per run, split over the threads.
/// Timed operations per run, all threads together (`MAPOPS=<n>` overrides).
/// At 20 M ops/s this is a 150 ms window: 600 k (30 ms) left single-thread
/// rows varying 2x between rounds, the floor's included.
const OPS: u64 = 3_000_000;

fn ops() -> u64 {
    std::env::var("MAPOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OPS)
}
const THREADS: [usize; 3] = [1, 2, 4];

/// Counts this thread's live heap bytes as glibc would charge them
/// (chunk = max(32, size + 8 rounded up to 16)); a thread-local counter, so
/// it adds no contention. Installed in `main.rs`.
pub struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn charge(size: usize) -> isize {
    (((size + 8 + 15) & !15).max(32)) as isize
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + charge(l.size())));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - charge(l.size())));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() - charge(l.size()) + charge(new)));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

fn live_bytes() -> isize {
    LIVE.with(|c| c.get())
}

/// The operations every contender supports.
trait Map: Sync {
    fn get(&self, k: u64) -> bool;
    /// Returns whether the key was new.
    fn insert(&self, k: u64, v: u64) -> bool;
    /// Returns whether the key was present.
    fn remove(&self, k: u64) -> bool;
    /// Increments a present value.
    fn update(&self, k: u64);
    /// Increments, inserting 1 if absent; returns whether it inserted.
    fn upsert(&self, k: u64) -> bool;
    fn len(&self) -> usize;
}

impl Map for latchfree::map::HashMap<u64, u64, Hasher> {
    fn get(&self, k: u64) -> bool {
        self.pin().get(&k).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.pin().insert(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.pin().remove(&k).is_some()
    }
    fn update(&self, k: u64) {
        self.pin().update(k, |v| v + 1);
    }
    fn upsert(&self, k: u64) -> bool {
        matches!(
            self.pin()
                .compute(k, |v| latchfree::map::Op::Put(v.map_or(1, |x| x + 1))),
            latchfree::map::Computed::Inserted(_)
        )
    }
    fn len(&self) -> usize {
        latchfree::map::HashMap::len(self)
    }
}

impl Map for dashmap::DashMap<u64, u64, Hasher> {
    fn get(&self, k: u64) -> bool {
        dashmap::DashMap::get(self, &k).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        dashmap::DashMap::insert(self, k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        dashmap::DashMap::remove(self, &k).is_some()
    }
    fn update(&self, k: u64) {
        if let Some(mut v) = self.get_mut(&k) {
            *v += 1;
        }
    }
    fn upsert(&self, k: u64) -> bool {
        let mut inserted = false;
        self.entry(k).and_modify(|v| *v += 1).or_insert_with(|| {
            inserted = true;
            1
        });
        inserted
    }
    fn len(&self) -> usize {
        dashmap::DashMap::len(self)
    }
}

impl Map for papaya::HashMap<u64, u64, Hasher> {
    fn get(&self, k: u64) -> bool {
        self.pin().get(&k).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.pin().insert(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.pin().remove(&k).is_some()
    }
    fn update(&self, k: u64) {
        self.pin().update(k, |v| v + 1);
    }
    fn upsert(&self, k: u64) -> bool {
        let inserted = std::cell::Cell::new(true);
        self.pin().update_or_insert(
            k,
            |v| {
                inserted.set(false);
                v + 1
            },
            1,
        );
        inserted.get()
    }
    fn len(&self) -> usize {
        papaya::HashMap::len(self)
    }
}

impl Map for RwLock<StdMap<u64, u64, Hasher>> {
    fn get(&self, k: u64) -> bool {
        self.read().unwrap().contains_key(&k)
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.write().unwrap().insert(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.write().unwrap().remove(&k).is_some()
    }
    fn update(&self, k: u64) {
        if let Some(v) = self.write().unwrap().get_mut(&k) {
            *v += 1;
        }
    }
    fn upsert(&self, k: u64) -> bool {
        let mut m = self.write().unwrap();
        let mut inserted = false;
        m.entry(k).and_modify(|v| *v += 1).or_insert_with(|| {
            inserted = true;
            1
        });
        inserted
    }
    fn len(&self) -> usize {
        self.read().unwrap().len()
    }
}

/// The floor: no synchronisation at all (1 thread only).
struct Floor(std::cell::UnsafeCell<StdMap<u64, u64, Hasher>>);
// SAFETY: only ever used from one thread (the 1-thread rows).
unsafe impl Sync for Floor {}
impl Floor {
    #[allow(clippy::mut_from_ref)]
    fn m(&self) -> &mut StdMap<u64, u64, Hasher> {
        // SAFETY: single-threaded use only, no reference outlives a call.
        unsafe { &mut *self.0.get() }
    }
}
impl Map for Floor {
    fn get(&self, k: u64) -> bool {
        self.m().contains_key(&k)
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.m().insert(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.m().remove(&k).is_some()
    }
    fn update(&self, k: u64) {
        if let Some(v) = self.m().get_mut(&k) {
            *v += 1;
        }
    }
    fn upsert(&self, k: u64) -> bool {
        let mut inserted = false;
        self.m()
            .entry(k)
            .and_modify(|v| *v += 1)
            .or_insert_with(|| {
                inserted = true;
                1
            });
        inserted
    }
    fn len(&self) -> usize {
        self.m().len()
    }
}

#[derive(Clone, Copy)]
struct Mix {
    name: &'static str,
    /// Cumulative percent thresholds: read, insert, remove, update, upsert.
    read: u64,
    insert: u64,
    remove: u64,
    update: u64,
    prefill: bool,
    zipf: bool,
}

const MIXES: [Mix; 5] = [
    Mix {
        name: "ReadHeavy 98/1/1/0",
        read: 98,
        insert: 99,
        remove: 100,
        update: 100,
        prefill: true,
        zipf: false,
    },
    Mix {
        name: "Exchange 10/40/40/10",
        read: 10,
        insert: 50,
        remove: 90,
        update: 100,
        prefill: true,
        zipf: false,
    },
    Mix {
        name: "RapidGrow 5/80/5/10",
        read: 5,
        insert: 85,
        remove: 90,
        update: 100,
        prefill: false,
        zipf: false,
    },
    Mix {
        name: "UpsertHeavy 50r/50ups",
        read: 50,
        insert: 50,
        remove: 50,
        update: 50,
        prefill: true,
        zipf: false,
    },
    Mix {
        name: "Zipf reads 95r/5ups",
        read: 95,
        insert: 95,
        remove: 95,
        update: 95,
        prefill: true,
        zipf: true,
    },
];

struct Rng(u64);
impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Zipf(s = 1) samples over the prefilled keys, hottest first.
fn zipf_table() -> Vec<u64> {
    let n = (KEYS * 3 / 4) as usize;
    let h: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..1 << 16)
        .map(|_| {
            // Inverse CDF by the harmonic approximation: rank ~ e^(u*H).
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let rank = ((u * h).exp() as usize).clamp(1, n);
            scramble(rank as u64 - 1)
        })
        .collect()
}

/// Spreads key indices so neighbouring indices do not share a bucket run.
#[inline]
fn scramble(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555
}

fn prefill(m: &dyn Map) -> i64 {
    for i in 0..KEYS * 3 / 4 {
        m.insert(scramble(i), i);
    }
    (KEYS * 3 / 4) as i64
}

/// Untimed operations each thread runs (same mix, its own random stream)
/// before the timed window of a prefilled mix: a tenth of its share.
const WARM_DIVISOR: u64 = 10;

/// Runs `mix` on `m` with `threads` threads; returns ops/s, after checking
/// the map's size against the net inserts the threads counted.
///
/// As bustle (conc-map-bench's harness) does: the map was built with room
/// for the key universe (`KEYS`), the prefill (3/4 of it, mixes with
/// `prefill`) runs before the timing starts, and so does a warm-up pass of
/// the same mix (the prefill's last inserts may leave a table mid-growth
/// or cold; the timed window should measure the steady-state mix, not
/// one-off work). RapidGrow starts empty and its timed window includes the
/// growth: that is its workload. Threads are pinned round-robin to the
/// cores with `--pin`.
fn run_mix(m: &dyn Map, mix: Mix, threads: usize, zipf: &[u64]) -> f64 {
    let mut net = if mix.prefill { prefill(m) } else { 0 };
    let per = ops() / threads as u64;
    let warm = if mix.prefill { per / WARM_DIVISOR } else { 0 };
    let pin = PIN.load(Ordering::Relaxed);
    let barrier = Barrier::new(threads + 1);
    let (elapsed, deltas) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    placement::pin(pin, t);
                    let mut rng = Rng(0x1234_5678 + t as u64 * 0x9E37_79B9);
                    let mut delta = 0i64;
                    let universe = if mix.prefill { KEYS } else { KEYS * 16 };
                    let mut op = |rng: &mut Rng| {
                        let r = rng.next();
                        let pct = (r >> 32) % 100;
                        let k = if mix.zipf {
                            zipf[(r & 0xFFFF) as usize]
                        } else {
                            scramble((r & 0xFFFF_FFFF) % universe)
                        };
                        if pct < mix.read {
                            std::hint::black_box(m.get(k));
                        } else if pct < mix.insert {
                            delta += i64::from(m.insert(k, pct));
                        } else if pct < mix.remove {
                            delta -= i64::from(m.remove(k));
                        } else if pct < mix.update {
                            m.update(k);
                        } else {
                            delta += i64::from(m.upsert(k));
                        }
                    };
                    for _ in 0..warm {
                        op(&mut rng);
                    }
                    barrier.wait();
                    for _ in 0..per {
                        op(&mut rng);
                    }
                    delta
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let deltas: i64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        (start.elapsed(), deltas)
    });
    net += deltas;
    assert_eq!(
        m.len() as i64,
        net,
        "{}: size does not match the operations",
        mix.name
    );
    (per * threads as u64) as f64 / elapsed.as_secs_f64()
}

fn latchfree_map() -> latchfree::map::HashMap<u64, u64, Hasher> {
    latchfree::map::HashMap::with_hasher(Hasher::new())
}

/// Interleaved rounds of the workload rows (`--rounds`, default 5).
static ROUNDS: AtomicUsize = AtomicUsize::new(5);
/// Pin workload threads to cores (`--pin`).
static PIN: AtomicBool = AtomicBool::new(false);

/// Sets the section's rounds and pinning (`--rounds`, `--pin`, shared with
/// the ring section).
pub fn configure(rounds: usize, pin: bool) {
    ROUNDS.store(rounds.max(1), Ordering::Relaxed);
    PIN.store(pin, Ordering::Relaxed);
}

/// A contender: its name and how to build it, empty, with room for the
/// key universe (as bustle builds every map: `with_capacity`).
type Make = fn() -> Box<dyn Map>;

fn contenders(threads: usize) -> Vec<(&'static str, Make)> {
    let mut v: Vec<(&'static str, Make)> = vec![
        ("latchfree", || {
            Box::new(latchfree::map::HashMap::with_capacity_and_hasher(
                KEYS as usize,
                Hasher::new(),
            ))
        }),
        ("dashmap", || {
            Box::new(dashmap::DashMap::with_capacity_and_hasher(
                KEYS as usize,
                Hasher::new(),
            ))
        }),
        ("papaya", || {
            Box::new(
                papaya::HashMap::builder()
                    .capacity(KEYS as usize)
                    .hasher(Hasher::new())
                    .build(),
            )
        }),
        ("RwLock<HashMap>", || {
            Box::new(RwLock::new(StdMap::with_capacity_and_hasher(
                KEYS as usize,
                Hasher::new(),
            )))
        }),
    ];
    if threads == 1 {
        v.push(("floor", || {
            Box::new(Floor(std::cell::UnsafeCell::new(
                StdMap::with_capacity_and_hasher(KEYS as usize, Hasher::new()),
            )))
        }));
    }
    v
}

pub fn run(r: &mut Report) {
    // `MAPM=1`: only the bytes-per-entry rows (a quick memory check).
    if std::env::var("MAPM").is_ok() {
        memory(r);
        return;
    }
    // `MAPL=1`: only the latency rows (insert tail, read during growth,
    // mixed operations).
    if std::env::var("MAPL").is_ok() {
        latency(r);
        growth_latency(r);
        mixed_latency(r);
        return;
    }
    let rounds = ROUNDS.load(Ordering::Relaxed);
    r.note(&format!(
        "map: workloads (2^{KEY_BITS} keys, maps built with room for them, {} timed ops \
         per run after the prefill and a warm-up); each row the median (min–max) of \
         {rounds} rounds, every contender run once per round, interleaved; threads {}; \
         load average {}",
        ops(),
        if PIN.load(Ordering::Relaxed) {
            "pinned round-robin to the cores"
        } else {
            "placed by the scheduler"
        },
        crate::guard_support::loadavg()
    ));
    let zipf = zipf_table();
    let filter = std::env::var("MAPF").ok();
    // Per row (scenario, contender): one sample per round.
    let mut samples: Vec<(String, &'static str, Vec<f64>)> = Vec::new();
    for _ in 0..rounds {
        for mix in MIXES {
            for threads in THREADS {
                let scenario = format!("{} {}t", mix.name, threads);
                for (imp, make) in contenders(threads) {
                    if filter
                        .as_ref()
                        .is_some_and(|f| !format!("{scenario} {imp}").contains(f.as_str()))
                    {
                        continue;
                    }
                    let m = make();
                    let v = run_mix(m.as_ref(), mix, threads, &zipf);
                    drop(m);
                    match samples.iter_mut().find(|s| s.0 == scenario && s.1 == imp) {
                        Some(s) => s.2.push(v),
                        None => samples.push((scenario.clone(), imp, vec![v])),
                    }
                }
            }
        }
    }
    for (scenario, imp, s) in &samples {
        r.add_rounds("map", scenario, imp, "ops_per_sec", s, Better::Higher);
    }
    r.note(&format!(
        "map: load average after the workloads {}",
        crate::guard_support::loadavg()
    ));
    if filter.is_none() {
        latency(r);
        growth_latency(r);
        mixed_latency(r);
        memory(r);
        #[cfg(target_pointer_width = "64")]
        if std::env::var("MAPB_LOG2").as_deref() != Ok("0") {
            crate::map_bustle::run(r);
        }
    }
}

/// Per-insert latency into an empty map from 4 threads.
fn latency(r: &mut Report) {
    const PER_THREAD: u64 = 250_000;
    let mut one = |imp: &str, m: &dyn Map| {
        let barrier = Barrier::new(4);
        let mut all: Vec<u32> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4u64)
                .map(|t| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let mut lat = Vec::with_capacity(PER_THREAD as usize);
                        barrier.wait();
                        for i in 0..PER_THREAD {
                            let k = scramble(t * PER_THREAD + i);
                            let t0 = Instant::now();
                            m.insert(k, i);
                            lat.push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                        }
                        lat
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(m.len() as u64, 4 * PER_THREAD);
        all.sort_unstable();
        let q = |p: f64| all[((all.len() - 1) as f64 * p) as usize] as f64;
        let sc = "insert latency 4t, 1M into empty";
        r.add("map", sc, imp, "ns_p50", q(0.5), Better::Lower);
        r.add("map", sc, imp, "ns_p99", q(0.99), Better::Lower);
        r.add("map", sc, imp, "ns_p99.9", q(0.999), Better::Lower);
        r.add(
            "map",
            sc,
            imp,
            "ns_max",
            *all.last().unwrap() as f64,
            Better::Lower,
        );
    };
    one("latchfree", &latchfree_map());
    one("dashmap", &dashmap::DashMap::with_hasher(Hasher::new()));
    one(
        "papaya",
        &papaya::HashMap::builder().hasher(Hasher::new()).build(),
    );
    one(
        "RwLock<HashMap>",
        &RwLock::new(StdMap::with_hasher(Hasher::new())),
    );
}

/// Keys the growth-latency writer inserts: 2^22 (issue 13), or
/// 2^`MAPG_LOG2`; 2^14 in a debug build.
fn growth_keys() -> u64 {
    let log2: u32 = std::env::var("MAPG_LOG2")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 14 } else { 22 });
    1 << log2.min(30)
}

/// Every contender, empty and built with no room (it grows from nothing).
fn empty_contenders() -> Vec<(&'static str, Make)> {
    vec![
        ("latchfree", || Box::new(latchfree_map())),
        ("dashmap", || {
            Box::new(dashmap::DashMap::with_hasher(Hasher::new()))
        }),
        ("papaya", || {
            Box::new(papaya::HashMap::builder().hasher(Hasher::new()).build())
        }),
        ("RwLock<HashMap>", || {
            Box::new(RwLock::new(StdMap::with_hasher(Hasher::new())))
        }),
    ]
}

/// A latency histogram in nanoseconds (1 ns to 60 s, 3 digits).
fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds")
}

/// One histogram's p50/p99/p99.9/max, in that order.
fn quantiles(h: &hdrhistogram::Histogram<u64>) -> [f64; 4] {
    [
        h.value_at_quantile(0.5) as f64,
        h.value_at_quantile(0.99) as f64,
        h.value_at_quantile(0.999) as f64,
        h.max() as f64,
    ]
}

/// Names of the four latency metrics, as `quantiles` orders them.
const QUANTILE_METRICS: [&str; 4] = ["ns_p50", "ns_p99", "ns_p99.9", "ns_max"];

/// Records each contender's rounds of `quantiles` as median rows.
fn add_quantile_rows(r: &mut Report, scenario: &str, samples: &[(&'static str, Vec<[f64; 4]>)]) {
    for (imp, rounds) in samples {
        for (i, metric) in QUANTILE_METRICS.iter().enumerate() {
            let s: Vec<f64> = rounds.iter().map(|q| q[i]).collect();
            r.add_rounds("map", scenario, imp, metric, &s, Better::Lower);
        }
    }
}

/// The `_co` rows' intended interval between a reader's lookups (ns).
const CO_INTERVAL_NS: u64 = 250;

/// The growth-latency floor's name: latchfree's reader on a map nobody
/// writes, prefilled to the size the growth ends at, the writer's thread
/// spinning.
const GROWTH_FLOOR: &str = "floor: latchfree, writer spinning";

/// Read latency while another thread grows the map from empty to
/// `growth_keys()` entries (issue 13: what never-blocking readers buy).
/// The reader looks up keys the writer has already inserted (a uniformly
/// random one of them each time), so every lookup must hit: a miss fails
/// the run. Each lookup is timed alone; the contenders run interleaved,
/// `min(--rounds, 3)` rounds, each on a fresh map. With `--pin` the writer
/// runs on the first core and the reader on the second.
///
/// A reader blocked by a resize makes one slow sample however long it
/// waits, so a single reader's raw p99.9 hides the resizes (they land in
/// `ns_max`). The `_co` rows correct for that coordinated omission
/// (HdrHistogram's `record_correct`): a reader that meant to look up once
/// every `CO_INTERVAL_NS` counts the lookups a stall kept it from making,
/// as a service's callers would have waited.
///
/// The floor row is the same reader on a full map that nobody writes,
/// making as many lookups as latchfree's reader made during the growth,
/// while the writer's thread spins (both cores busy, as in a growth):
/// what this machine gives a reader with no resize at all (cache and TLB
/// misses of a 2^22-entry table, timer interrupts, the hypervisor, which
/// may steal more from a VM whose cores are all busy). A ratio against
/// dashmap below the floor's is not the map's to win.
fn growth_latency(r: &mut Report) {
    let keys = growth_keys();
    let rounds = ROUNDS.load(Ordering::Relaxed).clamp(1, 3);
    let pin = PIN.load(Ordering::Relaxed);
    let (writer_core, reader_core) = (placement::core_for(pin, 0), placement::core_for(pin, 1));
    // Per contender: its rounds' raw quantiles and corrected p99/p99.9.
    #[allow(clippy::type_complexity)]
    let mut samples: Vec<(&'static str, Vec<[f64; 4]>, Vec<[f64; 2]>)> = Vec::new();
    let mut contenders = empty_contenders();
    contenders.push((GROWTH_FLOOR, || Box::new(latchfree_map())));
    for _ in 0..rounds {
        // The floor makes as many lookups as latchfree's reader did.
        let mut latchfree_lookups = 0;
        for (imp, make) in &contenders {
            let imp = *imp;
            let floor = imp == GROWTH_FLOOR;
            let m = make();
            let m = m.as_ref();
            if floor {
                for i in 0..keys {
                    m.insert(scramble(i), i);
                }
            }
            // How many keys the writer has inserted; Release after each
            // insert returns, so a reader that sees `n` finds keys `0..n`.
            let inserted = std::sync::atomic::AtomicU64::new(if floor { keys } else { 0 });
            let budget = if floor {
                latchfree_lookups.max(1)
            } else {
                u64::MAX
            };
            let reader_done = std::sync::atomic::AtomicBool::new(false);
            let (hist, co, lookups) = std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    // Ends the floor's spinning writer however the reader
                    // ends (a failed check included: no hang).
                    struct Done<'a>(&'a std::sync::atomic::AtomicBool);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            self.0.store(true, Ordering::Release);
                        }
                    }
                    let _done = Done(&reader_done);
                    placement::pin_to(reader_core);
                    let mut h = histogram();
                    let mut co = histogram();
                    // Touch every counter page now: a first write to a
                    // zeroed page faults, and a fault may wait behind
                    // the writer's `munmap` of an old table.
                    h.reset();
                    co.reset();
                    let mut rng = Rng(0x2545_F491);
                    let mut lookups = 0u64;
                    while lookups < budget {
                        let n = inserted.load(Ordering::Acquire);
                        if n == keys && !floor {
                            break;
                        }
                        if n == 0 {
                            std::hint::spin_loop();
                            continue;
                        }
                        let k = scramble(rng.next() % n);
                        let t0 = Instant::now();
                        let hit = m.get(k);
                        let ns = t0.elapsed().as_nanos() as u64;
                        assert!(hit, "{imp}: a key inserted before the lookup is missing");
                        h.saturating_record(ns.max(1));
                        co.record_correct(ns.max(1), CO_INTERVAL_NS)
                            .expect("in bounds");
                        lookups += 1;
                    }
                    (h, co, lookups)
                });
                // A thread of its own, so the pin does not outlive the row.
                let writer = s.spawn(|| {
                    placement::pin_to(writer_core);
                    if floor {
                        // Busy, touching nothing the reader reads: both
                        // cores run, as during a growth.
                        while !reader_done.load(Ordering::Acquire) {
                            std::hint::spin_loop();
                        }
                    } else {
                        for i in 0..keys {
                            m.insert(scramble(i), i);
                            inserted.store(i + 1, Ordering::Release);
                        }
                    }
                });
                writer.join().expect("writer");
                reader.join().expect("reader")
            });
            assert_eq!(m.len() as u64, keys, "{imp}: size after the growth");
            assert!(lookups > 0, "{imp}: the reader ran no lookup");
            if imp == "latchfree" {
                latchfree_lookups = lookups;
            }
            let q = quantiles(&hist);
            let c = [
                co.value_at_quantile(0.99) as f64,
                co.value_at_quantile(0.999) as f64,
            ];
            match samples.iter_mut().find(|s| s.0 == imp) {
                Some(s) => {
                    s.1.push(q);
                    s.2.push(c);
                }
                None => samples.push((imp, vec![q], vec![c])),
            }
        }
    }
    let sc = format!("read latency during growth to 2^{}", keys.trailing_zeros());
    let raw: Vec<_> = samples.iter().map(|s| (s.0, s.1.clone())).collect();
    add_quantile_rows(r, &sc, &raw);
    for (imp, _, c) in &samples {
        for (i, metric) in ["ns_p99_co", "ns_p99.9_co"].iter().enumerate() {
            let v: Vec<f64> = c.iter().map(|q| q[i]).collect();
            r.add_rounds("map", &sc, imp, metric, &v, Better::Lower);
        }
    }
}

/// Per-operation latency of a 90/5/5 get/insert/remove mix from 2 threads
/// on a map prefilled as the workloads are (built with room for the
/// universe, 3/4 full); each operation timed alone. Checks the final size
/// against the net inserts, as the workloads do.
fn mixed_latency(r: &mut Report) {
    const PER_THREAD: u64 = 500_000;
    let rounds = ROUNDS.load(Ordering::Relaxed).clamp(1, 3);
    let mut samples: Vec<(&'static str, Vec<[f64; 4]>)> = Vec::new();
    for _ in 0..rounds {
        for (imp, make) in contenders(2) {
            let m = make();
            let m = m.as_ref();
            let mut net = prefill(m);
            let barrier = Barrier::new(2);
            let (hist, delta) = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2u64)
                    .map(|t| {
                        let barrier = &barrier;
                        s.spawn(move || {
                            let mut h = histogram();
                            let mut rng = Rng(0x9E37_79B9 + t * 0x1234_5678);
                            let mut delta = 0i64;
                            barrier.wait();
                            for _ in 0..PER_THREAD {
                                let x = rng.next();
                                let k = scramble((x & 0xFFFF_FFFF) % KEYS);
                                let pct = (x >> 32) % 100;
                                let t0 = Instant::now();
                                if pct < 90 {
                                    std::hint::black_box(m.get(k));
                                } else if pct < 95 {
                                    delta += i64::from(m.insert(k, pct));
                                } else {
                                    delta -= i64::from(m.remove(k));
                                }
                                h.saturating_record((t0.elapsed().as_nanos() as u64).max(1));
                            }
                            (h, delta)
                        })
                    })
                    .collect();
                let mut all = histogram();
                let mut delta = 0;
                for h in hs {
                    let (hist, d) = h.join().expect("mixed latency thread");
                    all.add(hist).expect("same bounds");
                    delta += d;
                }
                (all, delta)
            });
            net += delta;
            assert_eq!(
                m.len() as i64,
                net,
                "{imp}: size does not match the operations"
            );
            let q = quantiles(&hist);
            match samples.iter_mut().find(|s| s.0 == imp) {
                Some(s) => s.1.push(q),
                None => samples.push((imp, vec![q])),
            }
        }
    }
    add_quantile_rows(r, "op latency 2t, 90/5/5 get/insert/remove", &samples);
}

/// Heap bytes per entry after inserting 2^20 `u64 -> u64` entries from one
/// thread (glibc chunk sizes; retired memory flushed first).
fn memory(r: &mut Report) {
    const N: u64 = 1 << 20;
    // Lets the epoch free what is waiting (earlier rows' maps included:
    // freed during a measurement, they would make it read low).
    let settle = || {
        for _ in 0..4 {
            crossbeam_epoch::pin().flush();
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let mut one = |imp: &str, make: &dyn Fn() -> Box<dyn Map>| {
        settle();
        let before = live_bytes();
        let m = make();
        for i in 0..N {
            m.insert(scramble(i), i);
        }
        settle();
        let bytes = (live_bytes() - before) as f64 / N as f64;
        assert_eq!(m.len() as u64, N);
        r.add(
            "map",
            "bytes per entry, 2^20 u64->u64",
            imp,
            "bytes",
            bytes,
            Better::Lower,
        );
    };
    one("latchfree", &|| Box::new(latchfree_map()));
    one("dashmap", &|| {
        Box::new(dashmap::DashMap::with_hasher(Hasher::new()))
    });
    one("papaya", &|| {
        Box::new(papaya::HashMap::builder().hasher(Hasher::new()).build())
    });
    one("RwLock<HashMap>", &|| {
        Box::new(RwLock::new(StdMap::with_hasher(Hasher::new())))
    });
}
