//! Values (and keys) that are not `Clone` are stored, survive growth and are
//! dropped exactly once; a value's address is stable across growth, so
//! interior mutability inside a value loses nothing while its shard grows.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::HashMap as StdMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};

use latchfree::map::{Collector, HashMap, HashSet, Op};

const N: usize = if cfg!(miri) { 48 } else { 20_000 };

/// Not `Clone`: a channel sender and a one-shot closure. Reports its
/// instance id on the channel when dropped.
struct Job {
    id: usize,
    done: Sender<usize>,
    run: Option<Box<dyn FnOnce() -> usize + Send + Sync>>,
}

// `Sender` is `Sync` since Rust 1.72; the map's values must be `Send` (and
// `Sync` to be shared with readers).
impl Job {
    fn new(ids: &AtomicUsize, done: &Sender<usize>) -> Self {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        Self {
            id,
            done: done.clone(),
            run: Some(Box::new(move || id * 2)),
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.done.send(self.id);
    }
}

/// Not `Clone` either.
#[derive(PartialEq, Eq, Hash, Debug)]
struct Key(usize);

fn one_shard<K, V>() -> HashMap<K, V> {
    // One shard starting at the smallest table: many growths.
    HashMap::builder()
        .shards(1)
        .collector(Collector::new())
        .build()
}

#[test]
fn non_clone_values_survive_growth_and_drop_exactly_once() {
    let ids = AtomicUsize::new(0);
    let (done, dropped) = channel();
    {
        let map: HashMap<Key, Job> = one_shard();
        let m = map.pin();
        for i in 0..N {
            assert!(m.insert(Key(i), Job::new(&ids, &done)).is_none());
        }
        // Replace half (the old jobs are retired), remove a quarter.
        for i in 0..N / 2 {
            assert!(m.insert(Key(i), Job::new(&ids, &done)).is_some());
        }
        for i in 0..N / 4 {
            assert!(m.remove(&Key(i)).is_some());
        }
        // The other storing methods take non-`Clone` types too.
        assert!(m.try_insert(Key(N - 1), Job::new(&ids, &done)).is_err());
        m.get_or_insert_with(Key(N), || Job::new(&ids, &done));
        m.compute(Key(N + 1), |_| Op::Put(Job::new(&ids, &done)));
        m.entry(Key(N + 2)).or_insert_with(|| Job::new(&ids, &done));
        m.update(Key(N - 2), |_| Job::new(&ids, &done));
        // Every surviving job is whole after all that growth.
        for i in N / 4..N {
            let job = m.get(&Key(i)).expect("present");
            assert!(job.run.is_some());
        }
        assert_eq!(m.len(), N - N / 4 + 3);
        drop(m);
        // `get_mut` takes the closure out and runs it (the `FnOnce` was
        // never copied).
        let mut map = map;
        let job = map.get_mut(&Key(N - 1)).expect("present");
        let run = job.run.take().expect("not run yet");
        assert_eq!(run(), job.id * 2);
    }
    drop(done);
    let made = ids.load(Ordering::Relaxed);
    let mut seen = vec![0u8; made];
    // The rejected `try_insert` job was dropped too (given back, then
    // dropped by the caller): every job made is reported exactly once.
    for id in dropped.iter() {
        seen[id] += 1;
    }
    let wrong: Vec<_> = seen.iter().enumerate().filter(|(_, &n)| n != 1).collect();
    assert!(wrong.is_empty(), "jobs not dropped exactly once: {wrong:?}");
}

#[test]
fn non_clone_set_members_survive_growth() {
    let set: HashSet<Key> = HashSet::new();
    for i in 0..N {
        assert!(set.insert(Key(i)));
    }
    assert!(!set.insert(Key(7)));
    assert_eq!(set.len(), N);
    assert!((0..N).all(|i| set.contains(&Key(i))));
}

/// A value's address never changes while it is the key's current one: a
/// counter incremented through `&V` by one thread while another grows the
/// shard again and again keeps every increment. (A map that moved or
/// cloned values during growth would lose the increments made to an old
/// copy.)
#[test]
fn interior_mutability_survives_concurrent_growth() {
    const KEYS: u64 = 16;
    let rounds: u64 = if cfg!(miri) { 20 } else { 20_000 };
    let map: HashMap<u64, AtomicU64> = one_shard();
    for k in 0..KEYS {
        map.pin().insert(k, AtomicU64::new(0));
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Grows the one shard from 16 entries up, many times.
            let mut k = KEYS;
            while !stop.load(Ordering::Relaxed) && k < KEYS + 50 * N as u64 {
                map.pin().insert(k, AtomicU64::new(0));
                k += 1;
            }
        });
        for _ in 0..rounds {
            let m = map.pin();
            for k in 0..KEYS {
                m.get(&k).expect("present").fetch_add(1, Ordering::Relaxed);
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let m = map.pin();
    let counts: StdMap<u64, u64> = (0..KEYS)
        .map(|k| (k, m.get(&k).unwrap().load(Ordering::Relaxed)))
        .collect();
    assert!(counts.values().all(|&c| c == rounds), "{counts:?}");
}
