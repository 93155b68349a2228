//! Unit tests; Miri-clean (sizes shrink under Miri).

use alloc::sync::Arc as StdArc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize as Counter, Ordering::SeqCst};

use super::*;

const N: usize = if cfg!(miri) { 64 } else { 20_000 };

fn small<K, V>() -> HashMap<K, V> {
    // One shard and the smallest table: every few inserts start a growth.
    HashMap::builder()
        .shards(1)
        .collector(Collector::new())
        .build()
}

#[test]
fn insert_get_remove() {
    let map = small::<u64, u64>();
    let m = map.pin();
    assert!(m.is_empty());
    assert_eq!(m.insert(1, 10), None);
    assert_eq!(m.insert(1, 11), Some(&10));
    assert_eq!(m.get(&1), Some(&11));
    assert_eq!(m.get_key_value(&1), Some((&1, &11)));
    assert!(m.contains_key(&1));
    assert!(!m.contains_key(&2));
    assert_eq!(m.len(), 1);
    assert_eq!(m.remove(&2), None);
    assert_eq!(m.remove(&1), Some(&11));
    assert_eq!(m.remove(&1), None);
    assert_eq!(m.len(), 0);
}

#[test]
fn grows_and_shrinks() {
    let map = small::<usize, usize>();
    let m = map.pin();
    for i in 0..N {
        assert_eq!(m.insert(i, i * 2), None);
        // The key just inserted and an early one stay visible mid-growth.
        assert_eq!(m.get(&i), Some(&(i * 2)));
        assert_eq!(m.get(&0), Some(&0));
    }
    assert_eq!(m.len(), N);
    for i in 0..N {
        assert_eq!(m.get(&i), Some(&(i * 2)), "key {i}");
    }
    let mut seen: Vec<usize> = m.keys().copied().collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    for i in (0..N).step_by(2) {
        assert_eq!(m.remove(&i), Some(&(i * 2)));
    }
    assert_eq!(m.len(), N / 2);
    for i in 0..N {
        assert_eq!(m.get(&i).copied(), (i % 2 == 1).then_some(i * 2));
    }
    // Churn through tombstones: the table must stay usable.
    for round in 0..4 {
        for i in 0..N / 2 {
            let k = N + round * N + i;
            m.insert(k, k);
            assert_eq!(m.remove(&k), Some(&k));
        }
    }
    assert_eq!(m.len(), N / 2);
    assert_eq!(m.iter().count(), N / 2);
}

#[test]
fn iteration_mid_migration_yields_each_once() {
    let map = small::<usize, usize>();
    let m = map.pin();
    for i in 0..N {
        m.insert(i, i);
        if i % 7 == 0 {
            let mut keys: Vec<usize> = m.keys().copied().collect();
            keys.sort_unstable();
            assert_eq!(keys, (0..=i).collect::<Vec<_>>());
        }
    }
}

#[test]
fn closure_ops() {
    let map = small::<&'static str, u32>();
    let m = map.pin();
    assert_eq!(m.update("a", |v| v + 1), None);
    assert_eq!(*m.upsert("a", || 1, |v| v + 1), 1);
    assert_eq!(*m.upsert("a", || 1, |v| v + 1), 2);
    assert_eq!(m.update("a", |v| v * 10), Some(&20));
    assert_eq!(m.try_insert("b", 5), Ok(&5));
    let err = m.try_insert("b", 6).unwrap_err();
    assert_eq!((err.current, err.not_inserted), (&5, 6));
    let mut made = 0;
    assert_eq!(
        *m.get_or_insert_with("c", || {
            made += 1;
            7
        }),
        7
    );
    assert_eq!(*m.get_or_insert_with("c", || unreachable!()), 7);
    assert_eq!(made, 1);
    assert_eq!(m.compute("d", |_| Op::Keep), Computed::Unchanged(None));
    assert_eq!(m.compute("d", |_| Op::Remove), Computed::Unchanged(None));
    assert_eq!(m.compute("d", |_| Op::Put(1)), Computed::Inserted(&1));
    assert_eq!(
        m.compute("d", |v| Op::Put(v.unwrap() + 1)),
        Computed::Updated { old: &1, new: &2 }
    );
    assert_eq!(m.compute("d", |_| Op::Keep), Computed::Unchanged(Some(&2)));
    assert_eq!(m.compute("d", |_| Op::Remove), Computed::Removed(&2));
    assert_eq!(m.remove_if("a", |_, v| *v == 0), None);
    assert_eq!(m.remove_if("a", |_, v| *v == 20), Some(&20));
    assert_eq!(m.len(), 2);
}

#[test]
fn retain_clear_snapshots() {
    let map = small::<u32, i64>();
    let m = map.pin();
    for i in 0..100u32 {
        m.insert(i, -(i64::from(i) % 10));
    }
    m.retain(|k, _| k % 3 == 0);
    assert_eq!(m.len(), 34);
    assert!(m.iter().all(|(k, _)| k % 3 == 0));
    let by_key = m.sorted_by_key(Order::Ascending);
    assert!(by_key.windows(2).all(|w| w[0].0 < w[1].0));
    let by_key_desc = m.sorted_by_key(Order::Descending);
    assert!(by_key_desc.windows(2).all(|w| w[0].0 > w[1].0));
    let by_val = m.sorted_by_value(Order::Descending);
    assert!(by_val.windows(2).all(|w| w[0].1 >= w[1].1));
    let stable = m.sorted_by_value_stable(Order::Ascending);
    assert!(stable
        .windows(2)
        .all(|w| w[0].1 < w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0)));
    let stable_desc = m.sorted_by_value_stable(Order::Descending);
    assert!(stable_desc
        .windows(2)
        .all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0)));
    assert_eq!(stable.len(), 34);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.iter().count(), 0);
    m.insert(1, 1);
    assert_eq!(m.get(&1), Some(&1));
}

#[test]
fn shard_counts() {
    let a: HashMap<u8, u8> = HashMap::with_shards(0);
    assert!(a.shards().is_power_of_two() && a.shards() >= 16);
    let b: HashMap<u8, u8> = HashMap::with_shards(3);
    assert_eq!(b.shards(), 4);
    let c: HashMap<u8, u8> = HashMap::with_shards(1);
    assert_eq!(c.shards(), 1);
    if !cfg!(miri) {
        let d: HashMap<u8, u8> = HashMap::with_shards(usize::MAX);
        assert_eq!(d.shards(), 1 << 16);
    }
}

#[test]
#[should_panic(expected = "another collector")]
fn foreign_guard_is_rejected() {
    let map = small::<u8, u8>();
    let other = Collector::new();
    let h = other.register();
    let g = h.pin();
    let _ = map.with_guard(&g);
}

#[test]
fn explicit_guard_and_traits() {
    let map: HashMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    let handle = map.collector().register();
    let guard = handle.pin();
    let m = map.with_guard(&guard);
    assert_eq!(m.get(&3), Some(&3));
    let mut map2: HashMap<u32, u32> = HashMap::default();
    map2.extend([(1, 2)]);
    assert_eq!(alloc::format!("{map2:?}"), "{1: 2}");
    let seeded: HashMap<u32, u32> = HashMap::with_seeds([1, 2, 3, 4]);
    seeded.pin().insert(1, 1);
    assert_eq!(seeded.len(), 1);
}

/// Counts live instances; the map must drop each exactly once.
struct Tracked {
    live: StdArc<Counter>,
    id: usize,
}

impl Tracked {
    fn new(live: &StdArc<Counter>, id: usize) -> Self {
        live.fetch_add(1, SeqCst);
        Self {
            live: live.clone(),
            id,
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(&self.live, self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let before = self.live.fetch_sub(1, SeqCst);
        assert!(before > 0, "double drop of {}", self.id);
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key(usize);

#[test]
fn drops_each_key_and_value_once() {
    let live = StdArc::new(Counter::new(0));
    let keys = StdArc::new(Counter::new(0));
    {
        let collector = Collector::new();
        let map: HashMap<(Key, KeyTracker), Tracked> =
            HashMap::builder().shards(2).collector(collector).build();
        let m = map.pin();
        let k = |i| (Key(i), KeyTracker::new(&keys));
        for i in 0..N {
            m.insert(k(i), Tracked::new(&live, i));
        }
        for i in 0..N / 2 {
            m.insert(k(i), Tracked::new(&live, i)); // replace
        }
        for i in 0..N / 4 {
            m.remove(&(Key(i), KeyTracker::probe()));
        }
        let _ = m.try_insert(k(N - 1), Tracked::new(&live, N - 1));
        m.compute(k(N - 2), |_| Op::Remove);
        m.update(k(N - 3), |v| Tracked::new(&v.live, v.id));
        m.retain(|k, _| k.0 .0 % 5 != 0);
        drop(m);
        map.clear();
        let m = map.pin();
        for i in 0..N / 8 {
            m.insert(k(i), Tracked::new(&live, i));
        }
        drop(m);
    }
    // The map and its private collector are gone: everything retired has
    // been dropped.
    assert_eq!(live.load(SeqCst), 0, "values leaked");
    assert_eq!(keys.load(SeqCst), 0, "keys leaked");
}

/// A key component that counts live instances; equal to every other.
struct KeyTracker(Option<StdArc<Counter>>);

impl KeyTracker {
    fn new(c: &StdArc<Counter>) -> Self {
        c.fetch_add(1, SeqCst);
        Self(Some(c.clone()))
    }
    fn probe() -> Self {
        Self(None)
    }
}

impl Clone for KeyTracker {
    fn clone(&self) -> Self {
        match &self.0 {
            Some(c) => Self::new(c),
            None => Self::probe(),
        }
    }
}

impl Drop for KeyTracker {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            assert!(c.fetch_sub(1, SeqCst) > 0, "double drop of a key");
        }
    }
}

impl PartialEq for KeyTracker {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for KeyTracker {}
impl core::hash::Hash for KeyTracker {
    fn hash<H: core::hash::Hasher>(&self, _: &mut H) {}
}

#[cfg(feature = "std")]
#[test]
fn concurrent_compute_loses_no_increment() {
    const T: usize = 4;
    const PER: usize = if cfg!(miri) { 20 } else { 5_000 };
    let map: HashMap<usize, usize> = HashMap::builder().shards(2).build();
    std::thread::scope(|s| {
        for t in 0..T {
            let map = &map;
            s.spawn(move || {
                for i in 0..PER {
                    map.upsert(i % 8, || 1, |v| v + 1);
                    map.insert(1000 + t * PER + i, i);
                }
            });
        }
    });
    let total: usize = (0..8).map(|k| map.get(&k).unwrap()).sum();
    assert_eq!(total, T * PER);
    assert_eq!(map.len(), 8 + T * PER);
}

/// Hashes a `u64` key to itself, so a test chooses home slots.
#[derive(Clone, Default)]
struct Identity;

struct IdentityHasher(u64);

impl core::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0 << 8 | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// A removal empties its slot (and the tombstones before it) when the next
/// slot is empty; every key further along a probe run must stay reachable,
/// and removed keys must stay absent. Long runs of colliding keys (same
/// home slot, same hash tag) removed in a scrambled order, then refilled.
#[test]
fn removal_keeps_probe_runs_reachable() {
    let map: HashMap<u64, u64, Identity> = HashMap::builder()
        .shards(1)
        .capacity(64)
        .hasher(Identity)
        .collector(Collector::new())
        .build();
    let m = map.pin();
    // The table has 128 slots: homes 5 and 9, twelve keys each, overlap
    // into one run; 126 and 127 wrap around to the start.
    let mut keys: Vec<u64> = (0..12)
        .flat_map(|j| [5 + 128 * j, 9 + 128 * j, 126 + 128 * j])
        .collect();
    let mut live = alloc::collections::BTreeSet::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..4u64 {
        for &k in &keys {
            assert_eq!(m.insert(k, k + round).is_none(), live.insert(k));
        }
        // Scramble the removal order.
        for i in (1..keys.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            keys.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let half = if round % 2 == 0 {
            keys.len()
        } else {
            keys.len() / 2
        };
        for &k in &keys[..half] {
            assert_eq!(m.remove(&k), Some(&(k + round)));
            live.remove(&k);
            for &q in &keys {
                assert_eq!(m.get(&q).is_some(), live.contains(&q), "key {q}");
            }
        }
        assert_eq!(m.len(), live.len());
    }
}

#[test]
fn replaced_and_removed_values_drop_before_the_map() {
    let live = StdArc::new(Counter::new(0));
    let collector = Collector::new();
    let handle = collector.register();
    // Room for every key up front: no growth, so nothing waits for one.
    let map: HashMap<usize, Tracked> = HashMap::builder()
        .shards(1)
        .capacity(64)
        .collector(collector.clone())
        .build();
    {
        let guard = handle.pin();
        let m = map.with_guard(&guard);
        for i in 0..16 {
            m.insert(i, Tracked::new(&live, i));
        }
        for i in 0..16 {
            m.insert(i, Tracked::new(&live, i)); // replace
        }
        m.insert(0, Tracked::new(&live, 0)); // replace an arena value
        for i in 0..8 {
            m.remove(&i);
        }
    }
    // Later writes to the shard (new keys: they retire nothing) drop what
    // the epoch has passed: each seals and sweeps a few graves.
    let mut writes = 0;
    while live.load(SeqCst) > 8 + writes && writes < 32 {
        for _ in 0..4 {
            handle.pin().flush();
        }
        let guard = handle.pin();
        map.with_guard(&guard)
            .insert(100 + writes, Tracked::new(&live, 100 + writes));
        writes += 1;
    }
    assert_eq!(
        live.load(SeqCst),
        8 + writes,
        "replaced or removed values outlived every reader ({writes} writes)"
    );
    // The map drops whatever is left: the epoch is not needed.
    drop(map);
    assert_eq!(live.load(SeqCst), 0);
}

/// The current table of shard 0, as an address (to tell whether it grew).
fn table_of<K, V, S>(map: &HashMap<K, V, S>) -> usize {
    let guard = map.pin_guard();
    map.shards[0].table(&guard).as_raw() as usize
}

#[test]
fn try_reserve_makes_room_up_front() {
    let map = small::<usize, usize>();
    let m = map.pin();
    for i in 0..10 {
        m.insert(i, i);
    }
    let n = N.min(5_000);
    map.try_reserve(n).unwrap();
    assert!(map.capacity() >= 10 + n, "capacity {}", map.capacity());
    // The room is real: inserting `n` more keys never grows the table.
    let t = table_of(&map);
    for i in 10..10 + n {
        m.insert(i, i);
    }
    assert_eq!(table_of(&map), t, "grew after try_reserve");
    for i in 0..10 + n {
        assert_eq!(m.get(&i), Some(&i));
    }
    // Asking for too much is an error, and changes nothing.
    assert!(map.try_reserve(usize::MAX).is_err());
    assert!(map.try_reserve(usize::MAX / 2).is_err());
    assert_eq!(m.len(), 10 + n);
    assert_eq!(table_of(&map), t);
    // Enough room already: nothing happens.
    map.try_reserve(0).unwrap();
    assert_eq!(table_of(&map), t);
}

#[test]
fn shrink_to_fit_keeps_entries_and_readers() {
    let map = small::<usize, alloc::string::String>();
    let m = map.pin();
    for i in 0..N {
        m.insert(i, alloc::format!("v{i}"));
    }
    let big = map.capacity();
    let held = m.get(&1).unwrap();
    for i in 10..N {
        m.remove(&i);
    }
    map.shrink_to_fit();
    assert!(map.capacity() < big, "{} !< {big}", map.capacity());
    assert!(map.capacity() >= 10);
    assert_eq!(m.len(), 10);
    for i in 0..10 {
        assert_eq!(
            m.get(&i).map(|s| s.as_str()),
            Some(alloc::format!("v{i}").as_str())
        );
    }
    // A reference taken before the shrink is still valid under its guard.
    assert_eq!(held, "v1");
    // Already small: a second shrink leaves the table alone.
    let t = table_of(&map);
    map.shrink_to_fit();
    assert_eq!(table_of(&map), t);
    // And it grows again as needed.
    for i in 10..100 {
        m.insert(i, alloc::format!("v{i}"));
    }
    assert_eq!(m.len(), 100);
}

#[test]
fn get_mut_changes_the_current_value_in_place() {
    let live = StdArc::new(Counter::new(0));
    {
        let mut map = small::<usize, Tracked>();
        for i in 0..64 {
            map.pin().insert(i, Tracked::new(&live, i));
        }
        // Replaced values live in the arena; the rest inline.
        for i in 0..8 {
            map.pin().insert(i, Tracked::new(&live, i));
        }
        for i in 0..64 {
            map.get_mut(&i).unwrap().id += 1000;
        }
        assert!(map.get_mut(&64).is_none());
        let m = map.pin();
        for i in 0..64 {
            assert_eq!(m.get(&i).unwrap().id, i + 1000);
        }
        // Mid-growth (some keys still in the old table): a fresh small map
        // grows every few inserts.
        drop(m);
        let mut grow = small::<usize, usize>();
        for i in 0..N {
            grow.pin().insert(i, i);
            *grow.get_mut(&(i / 2)).unwrap() += 1;
        }
        let g = grow.pin();
        for i in 0..N {
            let bumps = if i < N / 2 {
                2
            } else {
                usize::from(i <= (N - 1) / 2)
            };
            assert_eq!(g.get(&i), Some(&(i + bumps)), "key {i}");
        }
    }
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn iter_on_the_map_pins_once_and_clones() {
    let map = small::<usize, usize>();
    // Stop mid-growth: a small map is migrating after most inserts.
    for i in 0..N {
        map.pin().insert(i, i * 3);
    }
    let mut all: Vec<(usize, usize)> = map.iter().collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).map(|i| (i, i * 3)).collect::<Vec<_>>());
    // The same walk as through a pinned view.
    let mut via_pin: Vec<(usize, usize)> = map.pin().iter().map(|(k, v)| (*k, *v)).collect();
    via_pin.sort_unstable();
    assert_eq!(all, via_pin);
    // Writes during the walk neither block it nor make it yield a key
    // twice.
    let mut it = map.iter();
    let first = it.next().unwrap();
    map.pin().insert(first.0, 0);
    let mut rest: Vec<usize> = it.map(|(k, _)| k).collect();
    rest.push(first.0);
    rest.sort_unstable();
    rest.dedup();
    assert_eq!(rest.len(), N);
}

#[test]
fn equality_and_clone() {
    let a = small::<usize, usize>();
    let b: HashMap<usize, usize> = HashMap::builder().shards(8).build();
    for i in 0..100 {
        a.pin().insert(i, i);
        b.pin().insert(99 - i, 99 - i);
    }
    assert!(a == b);
    assert!(a == a);
    b.pin().insert(5, 6);
    assert!(a != b);
    b.pin().insert(5, 5);
    assert!(a == b);
    b.pin().insert(100, 100);
    assert!(a != b);
    b.pin().remove(&100);
    b.pin().remove(&0);
    b.pin().insert(1000, 0);
    assert!(a != b, "same len, different keys");

    let live = StdArc::new(Counter::new(0));
    {
        let orig = small::<usize, Tracked>();
        for i in 0..N {
            orig.pin().insert(i, Tracked::new(&live, i));
        }
        let copy = orig.clone();
        assert_eq!(copy.shards(), orig.shards());
        assert_eq!(live.load(SeqCst), 2 * N);
        // Independent: a write to one is not seen in the other.
        copy.pin().remove(&0);
        assert!(orig.pin().contains_key(&0));
        assert_eq!(copy.len(), N - 1);
        let ids: usize = copy.pin().values().map(|t| t.id).sum();
        assert_eq!(ids, (1..N).sum());
    }
    assert_eq!(live.load(SeqCst), 0, "a clone leaked or dropped twice");
}

#[test]
fn entry_modifies_or_inserts_atomically() {
    let map = small::<&str, usize>();
    let m = map.pin();
    for w in ["a", "b", "a", "c", "a"] {
        m.entry(w).and_modify(|n| n + 1).or_insert(1);
    }
    assert_eq!(m.get("a"), Some(&3));
    assert_eq!(m.get("b"), Some(&1));
    // Without and_modify a present value is kept, and `make` does not run.
    let mut made = 0;
    assert_eq!(
        *m.entry("a").or_insert_with(|| {
            made += 1;
            9
        }),
        3
    );
    assert_eq!(made, 0);
    assert_eq!(*m.entry("d").or_insert_with_key(|k| k.len() * 7), 7);
    assert_eq!(*m.entry("e").or_default(), 0);
    assert_eq!(m.entry("f").key(), &"f");
    // and_modify runs only on a present key.
    assert_eq!(*m.entry("g").and_modify(|_| unreachable!()).or_insert(4), 4);
    assert_eq!(m.len(), 6);
}

#[test]
fn hash_set() {
    let set: HashSet<alloc::string::String> = HashSet::from_map(
        HashMap::builder()
            .shards(2)
            .collector(Collector::new())
            .build(),
    );
    let s = set.pin();
    assert!(s.insert("a".into()));
    assert!(!s.insert("a".into()));
    assert!(s.insert("b".into()));
    assert!(s.contains("a"));
    assert!(!s.contains("z"));
    assert_eq!(s.get("b").map(|b| b.as_str()), Some("b"));
    assert_eq!(s.len(), 2);
    assert!(s.remove("a"));
    assert!(!s.remove("a"));
    assert_eq!(s.take("b").map(|b| b.as_str()), Some("b"));
    assert!(s.is_empty());
    for i in 0..N {
        s.insert(alloc::format!("{i}"));
    }
    s.retain(|e| e.len() == 1);
    let mut left: Vec<_> = set.iter().collect();
    left.sort_unstable();
    assert_eq!(left.len(), 10.min(N));
    let copy = set.clone();
    assert!(copy == set);
    copy.pin().insert("x".into());
    assert!(copy != set);
    assert_eq!(alloc::format!("{:?}", HashSet::<u8>::from_iter([1])), "{1}");
    let from: HashSet<u32> = (0..10).collect();
    assert_eq!(from.len(), 10);
    assert!(from.capacity() >= 10);
    set.clear();
    assert!(set.is_empty());
}

/// Counts live instances in a counter it borrows: not `'static`.
struct Borrowing<'a>(&'a Counter);

impl<'a> Borrowing<'a> {
    fn new(live: &'a Counter) -> Self {
        live.fetch_add(1, SeqCst);
        Self(live)
    }
}

impl Clone for Borrowing<'_> {
    fn clone(&self) -> Self {
        Self::new(self.0)
    }
}

impl Drop for Borrowing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[test]
fn keys_and_values_may_borrow() {
    let live = Counter::new(0);
    let keys: Vec<usize> = (0..N).collect();
    {
        // The default collector (under `std`, the process-wide one): the
        // map must not leave drops of its borrowed values to the epoch.
        let map: HashMap<&usize, Borrowing<'_>> = HashMap::with_shards(2);
        let m = map.pin();
        for k in &keys {
            m.insert(k, Borrowing::new(&live));
        }
        for k in &keys[..N / 2] {
            m.insert(k, Borrowing::new(&live)); // replaces
        }
        for k in &keys[..N / 4] {
            m.remove(&k);
        }
        assert_eq!(m.len(), N - N / 4);
        drop(m);
    }
    // Every value ever made was dropped by the time the map was: none is
    // left waiting for the epoch past `live` and `keys`.
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn retired_entries_do_not_pile_up_under_steady_writes() {
    // One shard, a pin per operation: the graves of
    // replaced values are dropped by later writers, so their number stays
    // bounded however long the writes go on.
    // A private collector: other tests' long pins would stall the shared
    // one's epoch.
    // (`collector` outlives `handle`: a handle that drops the last
    // reference to its collector frees itself from under its own `&self`,
    // which Miri flags inside crossbeam-epoch.)
    let collector = Collector::new();
    let handle = collector.register();
    let map: HashMap<usize, alloc::string::String> = HashMap::builder()
        .shards(1)
        .collector(collector.clone())
        .build();
    let rounds = if cfg!(miri) { 200 } else { 100_000 };
    let mut most = 0;
    for i in 0..rounds {
        let guard = handle.pin();
        map.with_guard(&guard).insert(i % 8, alloc::format!("{i}"));
        drop(guard);
        most = most.max(map.shards[0].graves_waiting());
    }
    let bound = 8 * grave::BATCH;
    assert!(most <= bound, "{most} graves waiting (bound {bound})");
}

/// Removes and replaces entries for many rounds in one shard and returns
/// the most slab cells the shard ever held.
fn cells_under_churn<V: Send>(value: impl Fn(usize) -> V) -> usize {
    // A private collector, as in the test above.
    let collector = Collector::new();
    let handle = collector.register();
    let map: HashMap<usize, V> = HashMap::builder()
        .shards(1)
        .collector(collector.clone())
        .build();
    let rounds = if cfg!(miri) { 300 } else { 100_000 };
    let mut most = 0;
    for i in 0..rounds {
        let guard = handle.pin();
        let m = map.with_guard(&guard);
        m.insert(i % 8, value(i));
        if i % 3 == 0 {
            m.remove(&((i + 4) % 8));
        }
        drop(guard);
        most = most.max(map.shards[0].cells());
    }
    most
}

#[test]
fn removed_and_replaced_entries_cells_are_reused() {
    // Eight keys at most live, the graves bounded (see above): the cells
    // must be bounded too, for drop-free entries (their cells go back
    // under the lock at the sweep) and for entries with drop glue (their
    // drops run after the lock, then the cells go back).
    let bound = 8 + 8 * grave::BATCH + 2 * grave::SWEEP;
    let plain = cells_under_churn(|i| i as u64);
    assert!(plain <= 2 * bound, "{plain} cells (bound {})", 2 * bound);
    let owning = cells_under_churn(|i| alloc::format!("{i}"));
    assert!(owning <= 2 * bound, "{owning} cells (bound {})", 2 * bound);
}

#[cfg(feature = "std")]
#[test]
fn entry_closures_that_panic_leave_the_map_as_it_was() {
    use core::panic::AssertUnwindSafe;
    use std::panic::catch_unwind;
    let map = small::<&str, usize>();
    let m = map.pin();
    m.entry("a").or_insert(1);
    // `and_modify` panics on a present key: the old value stays.
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.entry("a").and_modify(|_| panic!("modify")).or_insert(0);
    }));
    assert!(r.is_err());
    assert_eq!(m.get("a"), Some(&1));
    // `or_insert_with` panics on an absent key: nothing is inserted.
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.entry("b").or_insert_with(|| panic!("make"));
    }));
    assert!(r.is_err());
    assert_eq!(m.get("b"), None);
    // No lock was left held: both keys still take writes.
    m.entry("a").and_modify(|n| n + 1).or_insert(0);
    m.entry("b").or_insert(5);
    assert_eq!((m.get("a"), m.get("b"), m.len()), (Some(&2), Some(&5), 2));
}

/// An iterator reads the node a `MOVED` slot of a migrating table still
/// points to (to follow the key into the next table). A key removed from
/// the next table during the migration must therefore not be dropped
/// before the old table is unlinked, even if the epoch has long passed its
/// removal: the iterator below pins after that. (Run under Miri, a freed
/// node read here is reported; natively the graves are counted.)
#[test]
fn entries_removed_mid_migration_outlive_the_old_table() {
    let collector = Collector::new();
    let handle = collector.register();
    let map: HashMap<usize, alloc::string::String> = HashMap::builder()
        .shards(1)
        .capacity(1024)
        .collector(collector.clone())
        .build();
    let slots = map.shards[0].table(&handle.pin()).as_raw();
    // SAFETY: the map is ours and not growing yet; the table is alive.
    let (len, fill) = unsafe { ((*slots).len(), (*slots).capacity()) };
    for i in 0..fill {
        map.with_guard(&handle.pin())
            .insert(i, alloc::format!("{i}"));
    }
    // Starts the growth; every later write migrates one chunk.
    map.with_guard(&handle.pin())
        .insert(fill, alloc::format!("{fill}"));
    // The keys the first chunk moved: their old slots are `MOVED`.
    let moved: Vec<usize> = {
        let guard = handle.pin();
        // SAFETY: the old table is still current (growing), alive under
        // `guard`.
        let t = unsafe { map.shards[0].table(&guard).deref() };
        (0..raw::MIGRATE_CHUNK)
            .filter(|&i| raw::Table::<usize, alloc::string::String>::is_moved_ctrl(t.ctrl(i)))
            // SAFETY: MOVED, and `guard` was pinned while `t` is current.
            .map(|i| unsafe { *t.key(i) })
            .collect()
    };
    assert!(!moved.is_empty());
    let writes = moved.len();
    for k in &moved {
        // Removed from the next table, while their old slots stay `MOVED`.
        assert!(map.with_guard(&handle.pin()).remove(k).is_some());
    }
    // Let the epoch pass every removal, then write so that writers sweep.
    for _ in 0..8 {
        handle.pin().flush();
    }
    for i in 0..4 {
        map.with_guard(&handle.pin())
            .insert(fill + 1 + i, alloc::format!("{}", fill + 1 + i));
    }
    assert!(
        map.shards[0].growing(&handle.pin()),
        "the test needs the migration unfinished"
    );
    assert!(
        map.shards[0].graves_waiting() >= writes,
        "removed entries dropped while their old table is still current"
    );
    let guard = handle.pin();
    let mut keys: Vec<usize> = map.with_guard(&guard).keys().copied().collect();
    keys.sort_unstable();
    let want: Vec<usize> = (0..fill + 5).filter(|k| !moved.contains(k)).collect();
    assert_eq!(keys, want);
    drop(guard);
    // Once the migration is done, the graves are sealed and go.
    map.try_reserve(0).unwrap();
    assert!(!map.shards[0].growing(&handle.pin()));
    for _ in 0..8 {
        handle.pin().flush();
    }
    for i in 0..10 {
        map.with_guard(&handle.pin())
            .insert(10 * len + i, alloc::string::String::new());
    }
    assert_eq!(map.shards[0].graves_waiting(), 0);
}

#[test]
fn reads_alone_finish_a_migration() {
    // A migration is driven by writes, and lookups that must look in two
    // tables do a share (those of one key in 1,024, `raw::ASSIST_KEYS`): a
    // read-mostly shard does not stay in two tables (every lookup of a
    // moved or absent key probing both).
    let map: HashMap<u64, u64> = HashMap::builder()
        .shards(1)
        .capacity(if cfg!(miri) { 40 } else { 3000 })
        .collector(Collector::new())
        .build();
    let m = map.pin();
    let growing = || map.shards[0].growing(m.guard());
    let mut keys = 0;
    while !growing() {
        m.insert(keys, keys);
        keys += 1;
    }
    // Only reads from here, of absent keys (which always probe both
    // tables); one in 1,024 moves a chunk. Eight times the expected count
    // of lookups is a generous bound.
    let slots = map.shards[0].table(m.guard());
    // SAFETY: the shard's table, loaded under `m`'s guard.
    let chunks = unsafe { slots.deref() }.len() / raw::MIGRATE_CHUNK;
    let every = (raw::ASSIST_KEYS >> raw::ASSIST_KEYS.trailing_zeros()) + 1;
    let bound = (chunks as u64 + 1) * every * 8;
    let mut lookups = 0;
    while growing() && lookups < bound {
        assert_eq!(m.get(&(u64::MAX - lookups)), None);
        lookups += 1;
    }
    assert!(
        !growing(),
        "{lookups} reads left the shard in two tables ({chunks} chunks)"
    );
    for k in 0..keys {
        assert_eq!(m.get(&k), Some(&k));
    }
    assert_eq!(m.len(), keys as usize);
    assert_eq!(m.iter().count(), keys as usize);
    // Writes still work on the table the reads finished, and the graves
    // they left are sealed and dropped by later writes as before.
    for k in 0..keys {
        assert_eq!(m.remove(&k), Some(&k));
    }
    assert!(m.is_empty());
}

#[test]
fn with_capacity_holds_that_many_without_growing() {
    // Sizing counts usable slots only (each group's sentinel byte holds
    // nothing): a map built for `n` entries takes `n` without a growth,
    // right at every group and power-of-two boundary.
    let sizes = if cfg!(miri) { 1..=24 } else { 1..=400 };
    for n in sizes {
        let map: HashMap<usize, usize> = HashMap::builder()
            .shards(1)
            .capacity(n)
            .collector(Collector::new())
            .build();
        let t = table_of(&map);
        let m = map.pin();
        for i in 0..n {
            m.insert(i, i);
        }
        assert_eq!(table_of(&map), t, "{n} entries grew the table");
        assert!(
            !map.shards[0].growing(m.guard()),
            "{n} entries started a growth"
        );
        assert!(map.capacity() >= n);
    }
}

#[test]
fn churn_at_a_steady_size_reuses_removed_slots() {
    // Insert/remove churn at 32 live keys in a table of 128 slots: a
    // removed slot whose successor on a probe is empty becomes empty
    // again, and a new key takes the first free slot on its probe, removed
    // or empty, so the table is rebuilt (cleared of removed slots) rarely:
    // about every 190 inserts. Were removed slots never freed, every insert
    // would use up an empty one: a rebuild every 52 inserts or so (84 slots
    // may be taken, 32 are live); reusing them alone gives about 90.
    const N: u64 = if cfg!(miri) { 300 } else { 20_000 };
    let map: HashMap<u64, u64> = HashMap::builder().shards(1).capacity(64).build();
    let m = map.pin();
    let mut table = map.shards[0].table(m.guard()).as_raw();
    let mut rebuilds = 0;
    for i in 0..N {
        assert_eq!(m.insert(i, i), None);
        if i >= 32 {
            assert_eq!(m.remove(&(i - 32)), Some(&(i - 32)));
        }
        let now = map.shards[0].table(m.guard()).as_raw();
        if now != table {
            rebuilds += 1;
            table = now;
        }
    }
    assert_eq!(m.len(), 32);
    for i in N - 32..N {
        assert_eq!(m.get(&i), Some(&i));
    }
    assert!(rebuilds * 100 < N, "{rebuilds} rebuilds in {N} inserts");
}
