//! Single-thread cost of one map operation, for counting instructions and
//! cache misses per operation under cachegrind (deterministic on a loaded
//! machine, unlike wall-clock time).
//!
//! ```text
//! cargo build --release --example map_cost
//! valgrind --tool=cachegrind --cache-sim=yes \
//!     target/release/examples/map_cost <impl> <op> <count> [keys]
//! ```
//!
//! `<impl>`: `latchfree` (a pin per operation, the thread not pinned
//! otherwise: the full pin and unpin), `latchfree_pinned` (one guard for
//! the whole run: the operation without the pin), `dashmap`,
//! `papaya` (a pin per operation). `<op>`: `get` (hits over a map prefilled
//! with `keys` keys, default 2^20) or `miss` (lookups of keys never
//! inserted, same map) or `insert` (`count` new keys into a map
//! prefilled with `keys` keys; growth included, as in a filling map) or
//! `lookup` (the shootout's read shape: `keys` prefilled, probes drawn
//! from a universe of `keys * 4 / 3`, so a quarter of them miss) or
//! `readheavy` (the shootout's ReadHeavy 98/1/1 mix over those probes:
//! with `keys` = 196608 its tables sit at the growth threshold, as the
//! shootout's do, and the 2% writes drive their migrations) or
//! `update` (`count` replacements of prefilled keys' values) or `remove`
//! (`count` removals of prefilled keys; `count` <= `keys`) or `exchange`
//! / `rapidgrow` (the shootout's Exchange 10/40/40/10 and RapidGrow
//! 5/80/5/10 mixes on one thread, the map built as the shootout builds
//! it: with room for `keys` entries, Exchange prefilled to 3/4 of `keys`
//! over a universe of `keys`, RapidGrow from empty over a universe of
//! `keys * 16`; run them with `keys` = 262144 and `count` 0 and 600000,
//! the shootout's sizes, to get one shootout run's cost per operation).
//! Run it twice with different counts and divide the difference of the
//! totals by the difference of the counts: set-up cost cancels out, and
//! what is left is the cost per operation. Keys are u64, values u64,
//! hasher `ahash` with fixed seeds.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;

type H = ahash::RandomState;

fn hasher() -> H {
    H::with_seeds(1, 2, 3, 4)
}

/// Spreads key indices over the hash space (the shootout's `scramble`).
fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555
}

/// The i-th lookup: a pseudo-random prefilled key.
fn probe(i: u64, keys: u64) -> u64 {
    key(i.wrapping_mul(0x2545_F491_4F6C_DD1D) % keys)
}

/// The i-th `miss` probe: a pseudo-random key that was never inserted.
fn probe_absent(i: u64, keys: u64) -> u64 {
    key(keys + i.wrapping_mul(0x2545_F491_4F6C_DD1D) % keys)
}

/// The i-th `lookup` probe: from a universe a third larger than the
/// prefilled keys (the shootout's 3/4 prefill), so about a quarter miss.
fn probe_mixed(i: u64, keys: u64) -> u64 {
    probe(i, keys * 4 / 3)
}

/// A shootout write mix: cumulative percent thresholds for read, insert,
/// remove (the rest update), whether the map is prefilled, and its key
/// universe as a multiple of `keys`.
struct Mix {
    read: u64,
    insert: u64,
    remove: u64,
    prefill: bool,
    universe: u64,
}

const EXCHANGE: Mix = Mix {
    read: 10,
    insert: 50,
    remove: 90,
    prefill: true,
    universe: 1,
};

const RAPID_GROW: Mix = Mix {
    read: 5,
    insert: 85,
    remove: 90,
    prefill: false,
    universe: 16,
};

/// The mix named `op`, if it is one.
fn mix_of(op: &str) -> Option<Mix> {
    match op {
        "exchange" => Some(EXCHANGE),
        "rapidgrow" => Some(RAPID_GROW),
        _ => None,
    }
}

/// The keys a mix's map is prefilled with: 3/4 of `keys`, as the
/// shootout's prefill.
fn mix_prefill(mix: &Mix, keys: u64) -> u64 {
    if mix.prefill {
        keys * 3 / 4
    } else {
        0
    }
}

/// Runs `count` operations of `mix` on one thread (the shootout's
/// generator); returns `count` after checking the map's size against the
/// net inserts the operations reported.
#[allow(clippy::too_many_arguments)]
fn run_mix(
    mix: &Mix,
    count: u64,
    keys: u64,
    get: impl Fn(u64) -> bool,
    insert: impl Fn(u64, u64) -> bool,
    remove: impl Fn(u64) -> bool,
    update: impl Fn(u64),
    len: impl Fn() -> usize,
) -> u64 {
    let universe = keys * mix.universe;
    let mut rng = 0x1234_5678u64;
    let mut net = mix_prefill(mix, keys) as i64;
    for _ in 0..count {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        let r = rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let pct = (r >> 32) % 100;
        let k = key((r & 0xFFFF_FFFF) % universe);
        if pct < mix.read {
            black_box(get(k));
        } else if pct < mix.insert {
            net += i64::from(insert(k, pct));
        } else if pct < mix.remove {
            net -= i64::from(remove(k));
        } else {
            update(k);
        }
    }
    assert_eq!(len() as i64, net, "size does not match the operations");
    count
}

/// The shootout's ReadHeavy 98/1/1 mix on one thread (probes as for
/// `lookup`); returns `count` after checking the operations' results
/// against the map's own count of hits.
fn read_heavy(
    count: u64,
    keys: u64,
    get: impl Fn(u64) -> bool,
    insert: impl Fn(u64, u64) -> bool,
    remove: impl Fn(u64) -> bool,
) -> u64 {
    let universe = keys * 4 / 3;
    let mut rng = 0x1234_5678u64;
    let mut net = 0i64;
    for _ in 0..count {
        // xorshift64*, as the shootout's
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        let r = rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let k = key((r & 0xFFFF_FFFF) % universe);
        match (r >> 32) % 100 {
            0..98 => {
                black_box(get(k));
            }
            98 => net += i64::from(insert(k, r)),
            _ => net -= i64::from(remove(k)),
        }
    }
    black_box(net);
    count
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: map_cost <latchfree|latchfree_pinned|dashmap|papaya> <get|miss|lookup|readheavy|insert|update|remove|exchange|rapidgrow> <count> [keys]";
    let (imp, op) = match (args.get(1), args.get(2)) {
        (Some(i), Some(o)) => (i.as_str(), o.as_str()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let count: u64 = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(100_000);
    let keys: u64 = args.get(4).and_then(|c| c.parse().ok()).unwrap_or(1 << 20);
    let mut hits = 0u64;
    let mix = mix_of(op);
    // The mixes' maps are built as the shootout builds them: with room for
    // the universe, prefilled to 3/4 of it (or empty).
    let (capacity, prefill) = match &mix {
        Some(m) => (keys as usize, mix_prefill(m, keys)),
        None => (0, keys),
    };
    match imp {
        "latchfree" | "latchfree_pinned" => {
            let map = latchfree::map::HashMap::<u64, u64, H>::with_capacity_and_hasher(
                capacity,
                hasher(),
            );
            let pinned = imp == "latchfree_pinned";
            {
                let m = map.pin();
                for i in 0..prefill {
                    m.insert(key(i), i);
                }
            }
            // Only the `_pinned` runs hold a guard: held across the loop, it
            // would turn every per-operation `map.pin()` into a nested pin
            // (a counter bump, no fence) and hide the pin's real cost.
            let held = pinned.then(|| map.pin());
            let guard = || held.as_ref().expect("held by the pinned runs");
            match op {
                "get" if pinned => {
                    for i in 0..count {
                        hits += u64::from(guard().get(&probe(i, keys)).is_some());
                    }
                }
                "get" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().get(&probe(i, keys)).is_some());
                    }
                }
                "miss" if pinned => {
                    for i in 0..count {
                        hits += u64::from(guard().get(&probe_absent(i, keys)).is_none());
                    }
                }
                "miss" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().get(&probe_absent(i, keys)).is_none());
                    }
                }
                "lookup" if pinned => {
                    for i in 0..count {
                        hits += u64::from(guard().get(&probe_mixed(i, keys)).is_some());
                    }
                }
                "lookup" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().get(&probe_mixed(i, keys)).is_some());
                    }
                }
                "readheavy" => {
                    hits = read_heavy(
                        count,
                        keys,
                        |k| map.pin().get(&k).is_some(),
                        |k, v| map.pin().insert(k, v).is_none(),
                        |k| map.pin().remove(&k).is_some(),
                    );
                }
                "insert" if pinned => {
                    for i in keys..keys + count {
                        hits += u64::from(guard().insert(key(i), i).is_none());
                    }
                }
                "insert" => {
                    for i in keys..keys + count {
                        hits += u64::from(map.pin().insert(key(i), i).is_none());
                    }
                }
                "update" if pinned => {
                    for i in 0..count {
                        hits += u64::from(guard().insert(probe(i, keys), i).is_some());
                    }
                }
                "update" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().insert(probe(i, keys), i).is_some());
                    }
                }
                "remove" if pinned => {
                    for i in 0..count {
                        hits += u64::from(guard().remove(&key(i)).is_some());
                    }
                }
                "remove" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().remove(&key(i)).is_some());
                    }
                }
                _ if mix.is_some() && pinned => {
                    let m = guard();
                    hits = run_mix(
                        mix.as_ref().expect("a mix"),
                        count,
                        keys,
                        |k| m.get(&k).is_some(),
                        |k, v| m.insert(k, v).is_none(),
                        |k| m.remove(&k).is_some(),
                        |k| {
                            m.update(k, |v| v + 1);
                        },
                        || map.len(),
                    );
                }
                _ if mix.is_some() => {
                    hits = run_mix(
                        mix.as_ref().expect("a mix"),
                        count,
                        keys,
                        |k| map.pin().get(&k).is_some(),
                        |k, v| map.pin().insert(k, v).is_none(),
                        |k| map.pin().remove(&k).is_some(),
                        |k| {
                            map.pin().update(k, |v| v + 1);
                        },
                        || map.len(),
                    );
                }
                _ => {
                    eprintln!("{usage}");
                    std::process::exit(2);
                }
            }
        }
        "dashmap" => {
            let map = dashmap::DashMap::<u64, u64, H>::with_capacity_and_hasher(capacity, hasher());
            for i in 0..prefill {
                map.insert(key(i), i);
            }
            match op {
                "get" => {
                    for i in 0..count {
                        hits += u64::from(map.get(&probe(i, keys)).is_some());
                    }
                }
                "miss" => {
                    for i in 0..count {
                        hits += u64::from(map.get(&probe_absent(i, keys)).is_none());
                    }
                }
                "lookup" => {
                    for i in 0..count {
                        hits += u64::from(map.get(&probe_mixed(i, keys)).is_some());
                    }
                }
                "readheavy" => {
                    hits = read_heavy(
                        count,
                        keys,
                        |k| map.get(&k).is_some(),
                        |k, v| map.insert(k, v).is_none(),
                        |k| map.remove(&k).is_some(),
                    );
                }
                "insert" => {
                    for i in keys..keys + count {
                        hits += u64::from(map.insert(key(i), i).is_none());
                    }
                }
                "update" => {
                    for i in 0..count {
                        hits += u64::from(map.insert(probe(i, keys), i).is_some());
                    }
                }
                "remove" => {
                    for i in 0..count {
                        hits += u64::from(map.remove(&key(i)).is_some());
                    }
                }
                _ if mix.is_some() => {
                    hits = run_mix(
                        mix.as_ref().expect("a mix"),
                        count,
                        keys,
                        |k| map.get(&k).is_some(),
                        |k, v| map.insert(k, v).is_none(),
                        |k| map.remove(&k).is_some(),
                        |k| {
                            if let Some(mut v) = map.get_mut(&k) {
                                *v += 1;
                            }
                        },
                        || map.len(),
                    );
                }
                _ => std::process::exit(2),
            }
        }
        "papaya" => {
            let map: papaya::HashMap<u64, u64, H> = papaya::HashMap::builder()
                .capacity(capacity)
                .hasher(hasher())
                .build();
            {
                let m = map.pin();
                for i in 0..prefill {
                    m.insert(key(i), i);
                }
            }
            match op {
                "get" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().get(&probe(i, keys)).is_some());
                    }
                }
                "miss" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().get(&probe_absent(i, keys)).is_none());
                    }
                }
                "lookup" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().get(&probe_mixed(i, keys)).is_some());
                    }
                }
                "readheavy" => {
                    hits = read_heavy(
                        count,
                        keys,
                        |k| map.pin().get(&k).is_some(),
                        |k, v| map.pin().insert(k, v).is_none(),
                        |k| map.pin().remove(&k).is_some(),
                    );
                }
                "insert" => {
                    for i in keys..keys + count {
                        hits += u64::from(map.pin().insert(key(i), i).is_none());
                    }
                }
                "update" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().insert(probe(i, keys), i).is_some());
                    }
                }
                "remove" => {
                    for i in 0..count {
                        hits += u64::from(map.pin().remove(&key(i)).is_some());
                    }
                }
                _ if mix.is_some() => {
                    hits = run_mix(
                        mix.as_ref().expect("a mix"),
                        count,
                        keys,
                        |k| map.pin().get(&k).is_some(),
                        |k, v| map.pin().insert(k, v).is_none(),
                        |k| map.pin().remove(&k).is_some(),
                        |k| {
                            map.pin().update(k, |v| v + 1);
                        },
                        || map.len(),
                    );
                }
                _ => std::process::exit(2),
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
    // Every get hits; every miss misses; every insert is of a new key; every
    // update and remove finds its key; the mixes check themselves; `lookup`
    // hits exactly the probes below `keys`.
    let want = if op == "lookup" {
        (0..count)
            .filter(|&i| i.wrapping_mul(0x2545_F491_4F6C_DD1D) % (keys * 4 / 3) < keys)
            .count() as u64
    } else {
        count
    };
    assert_eq!(black_box(hits), want, "{imp} {op}: wrong results");
}
