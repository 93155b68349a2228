//! Criterion benchmarks of `latchfree::map` against dashmap, papaya and
//! `RwLock<HashMap>` (all with ahash) on conc-map-bench's ReadHeavy and
//! Exchange mixes over 2^20 keys (75% prefilled), at 1 and 2 threads.
//! Each iteration batch checks the map's size is what the operations imply.

#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    missing_docs
)]

use std::collections::HashMap as StdMap;
use std::sync::RwLock;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

type H = ahash::RandomState;
const KEYS: u64 = 1 << 20;
const OPS_PER_THREAD: u64 = 50_000;

fn scramble(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555
}

trait M: Sync {
    fn get(&self, k: u64) -> bool;
    fn insert(&self, k: u64) -> bool;
    fn remove(&self, k: u64) -> bool;
    fn len(&self) -> usize;
}

impl M for latchfree::map::HashMap<u64, u64, H> {
    fn get(&self, k: u64) -> bool {
        self.pin().get(&k).is_some()
    }
    fn insert(&self, k: u64) -> bool {
        self.pin().insert(k, k).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.pin().remove(&k).is_some()
    }
    fn len(&self) -> usize {
        latchfree::map::HashMap::len(self)
    }
}

impl M for dashmap::DashMap<u64, u64, H> {
    fn get(&self, k: u64) -> bool {
        dashmap::DashMap::get(self, &k).is_some()
    }
    fn insert(&self, k: u64) -> bool {
        dashmap::DashMap::insert(self, k, k).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        dashmap::DashMap::remove(self, &k).is_some()
    }
    fn len(&self) -> usize {
        dashmap::DashMap::len(self)
    }
}

impl M for papaya::HashMap<u64, u64, H> {
    fn get(&self, k: u64) -> bool {
        self.pin().get(&k).is_some()
    }
    fn insert(&self, k: u64) -> bool {
        self.pin().insert(k, k).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.pin().remove(&k).is_some()
    }
    fn len(&self) -> usize {
        papaya::HashMap::len(self)
    }
}

impl M for RwLock<StdMap<u64, u64, H>> {
    fn get(&self, k: u64) -> bool {
        self.read().unwrap().contains_key(&k)
    }
    fn insert(&self, k: u64) -> bool {
        self.write().unwrap().insert(k, k).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.write().unwrap().remove(&k).is_some()
    }
    fn len(&self) -> usize {
        self.read().unwrap().len()
    }
}

/// Runs `threads x OPS_PER_THREAD` operations: `read`% reads, the rest
/// split evenly between inserts and removes; checks the size afterwards.
fn mix(m: &dyn M, threads: u64, read: u64, seed: u64) {
    let before = m.len() as i64;
    let net: i64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut x = seed ^ (t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
                    let mut net = 0i64;
                    for _ in 0..OPS_PER_THREAD {
                        x ^= x >> 12;
                        x ^= x << 25;
                        x ^= x >> 27;
                        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
                        let k = scramble((r & 0xFFFF_FFFF) % KEYS);
                        let pct = (r >> 32) % 100;
                        if pct < read {
                            criterion::black_box(m.get(k));
                        } else if pct % 2 == 0 {
                            net += i64::from(m.insert(k));
                        } else {
                            net -= i64::from(m.remove(k));
                        }
                    }
                    net
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(m.len() as i64, before + net, "operations lost");
}

fn bench(c: &mut Criterion) {
    for (name, read) in [("ReadHeavy", 98), ("Exchange", 20)] {
        let mut g = c.benchmark_group(format!("map/{name}"));
        g.sample_size(10);
        for threads in [1u64, 2] {
            g.throughput(Throughput::Elements(threads * OPS_PER_THREAD));
            let contenders: Vec<(&str, Box<dyn M>)> = vec![
                (
                    "latchfree",
                    Box::new(latchfree::map::HashMap::with_hasher(H::new())),
                ),
                ("dashmap", Box::new(dashmap::DashMap::with_hasher(H::new()))),
                (
                    "papaya",
                    Box::new(papaya::HashMap::builder().hasher(H::new()).build()),
                ),
                (
                    "RwLock<HashMap>",
                    Box::new(RwLock::new(StdMap::with_hasher(H::new()))),
                ),
            ];
            for (imp, m) in contenders {
                for i in 0..KEYS * 3 / 4 {
                    m.insert(scramble(i));
                }
                let mut seed = 1u64;
                g.bench_with_input(BenchmarkId::new(imp, threads), &threads, |b, &t| {
                    b.iter(|| {
                        seed += 1;
                        mix(&*m, t, read, seed)
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
