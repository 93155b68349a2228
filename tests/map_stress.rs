//! Multi-threaded stress: no lost increments through `compute`, readers
//! never see a value that was never written, growth under concurrency.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::atomic::{AtomicBool, Ordering};

use latchfree::map::{HashMap, HashSet, Op};

const N: usize = if cfg!(miri) { 64 } else { 100_000 };
const THREADS: usize = 4;

#[test]
fn compute_counters_lose_no_increment() {
    let map: HashMap<usize, u64> = HashMap::with_shards(4);
    let keys = 16;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..N {
                    map.pin()
                        .compute(i % keys, |v| Op::Put(v.map_or(1, |x| x + 1)));
                }
            });
        }
    });
    let total: u64 = (0..keys).map(|k| map.get(&k).unwrap()).sum();
    assert_eq!(total, (THREADS * N) as u64);
}

#[test]
fn entry_loses_no_increment() {
    // One shard: every entry call of both threads contends on it, and the
    // map grows while they count.
    let map: HashMap<usize, u64> = HashMap::with_shards(1);
    let keys = 64;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..N {
                    map.pin().entry(i % keys).and_modify(|n| n + 1).or_insert(1);
                }
            });
        }
    });
    let total: u64 = (0..keys).map(|k| map.get(&k).unwrap()).sum();
    assert_eq!(total, (THREADS * N) as u64);
}

#[test]
fn set_inserts_each_element_once() {
    // Every thread offers every element; exactly one insert of each wins.
    let set: HashSet<usize> = HashSet::with_capacity(0);
    let won = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let n = (0..N).filter(|&i| set.insert(i)).count();
                won.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(won.load(Ordering::Relaxed), N);
    assert_eq!(set.len(), N);
}

#[test]
fn readers_see_only_written_values_during_growth() {
    // Values are always `key * 1000 + version` (version < 3); a reader that
    // sees anything else saw a torn or never-written value.
    let map: HashMap<u64, u64> = HashMap::with_shards(2);
    let writers_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let map = &map;
                s.spawn(move || {
                    for i in 0..N as u64 {
                        let k = i * 2 + t;
                        map.insert(k, k * 1000);
                        map.update(k / 2, |v| v + 1);
                        if i % 3 == 0 {
                            map.remove(&(k / 3));
                        }
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            s.spawn(|| loop {
                let stop = writers_done.load(Ordering::Acquire);
                for k in (0..N as u64 * 2).step_by(97) {
                    if let Some(v) = map.get(&k) {
                        assert!(v / 1000 == k && v % 1000 < 3, "bogus value {v} for {k}");
                    }
                }
                let m = map.pin();
                for (k, v) in m.iter().take(1000) {
                    assert!(v / 1000 == *k && v % 1000 < 3, "bogus value {v} for {k}");
                }
                if stop {
                    break;
                }
            });
        }
        for w in writers {
            w.join().unwrap();
        }
        writers_done.store(true, Ordering::Release);
    });
    let m = map.pin();
    assert_eq!(m.iter().count(), m.len());
}

#[test]
fn concurrent_inserts_all_land() {
    let map: HashMap<usize, usize> = HashMap::with_shards(4);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let map = &map;
            s.spawn(move || {
                for i in 0..N {
                    map.insert(t * N + i, i);
                }
            });
        }
    });
    assert_eq!(map.len(), THREADS * N);
    assert_eq!(map.pin().iter().count(), THREADS * N);
    for t in 0..THREADS {
        for i in (0..N).step_by(7) {
            assert_eq!(map.get(&(t * N + i)), Some(i));
        }
    }
}
