//! Lock-free, weakly consistent iteration.

use crossbeam_epoch::{Guard, Shared};

use super::raw::{find, in_table, Found, HashKey, Shard, Table};
use crate::sync::CachePadded;

/// Walks the live entries of every shard. See [`Iter`] for the guarantees.
pub(super) struct RawIter<'g, K, V> {
    shards: &'g [CachePadded<Shard<K, V>>],
    hasher: &'g dyn HashKey<K>,
    guard: &'g Guard,
    /// Next shard to start.
    shard: usize,
    /// Table being scanned; null between shards.
    table: Shared<'g, Table<K, V>>,
    /// In the second pass (over the table the first one migrates into), the
    /// first pass's table; null in the first pass.
    first: Shared<'g, Table<K, V>>,
    /// Next slot of `table` to look at.
    slot: usize,
}

impl<'g, K, V> RawIter<'g, K, V> {
    pub(super) fn new(
        shards: &'g [CachePadded<Shard<K, V>>],
        hasher: &'g dyn HashKey<K>,
        guard: &'g Guard,
    ) -> Self {
        Self {
            shards,
            hasher,
            guard,
            shard: 0,
            table: Shared::null(),
            first: Shared::null(),
            slot: 0,
        }
    }
}

impl<'g, K: Eq, V> Iterator for RawIter<'g, K, V> {
    type Item = Found<'g, K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        let guard = self.guard;
        loop {
            if self.table.is_null() {
                let shard = self.shards.get(self.shard)?;
                self.shard += 1;
                self.table = shard.table(guard);
                self.first = Shared::null();
                self.slot = 0;
            }
            // SAFETY: tables reached from a shard or a `next` link under
            // `guard` are released through the epoch only.
            let t: &'g Table<K, V> = unsafe { self.table.deref() };
            while self.slot < t.len() {
                let i = self.slot;
                self.slot += 1;
                let c = t.ctrl(i);
                let candidate = if Table::<K, V>::is_live_ctrl(c) {
                    // SAFETY: live (Acquire); the table lives for `'g`.
                    unsafe { Found::at(self.table, i, c) }
                } else if Table::<K, V>::is_moved_ctrl(c) {
                    // The key lives on in the next table (possibly updated).
                    // SAFETY: non-empty (Acquire); `t` lives for `'g`.
                    let key = unsafe { t.key(i) };
                    match find(t.next(guard), self.hasher.hash_key(key), key, guard) {
                        Some(f) => f,
                        None => continue,
                    }
                } else {
                    continue;
                };
                if !self.first.is_null() {
                    // SAFETY: as for `t`.
                    let first = unsafe { self.first.deref() };
                    let hash = self.hasher.hash_key(candidate.key);
                    if in_table(first, hash, candidate.key) {
                        // Visited (or followed) in the first pass.
                        continue;
                    }
                }
                return Some(candidate);
            }
            if self.first.is_null() {
                let next = t.next(guard);
                if !next.is_null() {
                    self.first = self.table;
                    self.table = next;
                    self.slot = 0;
                    continue;
                }
            }
            self.table = Shared::null();
        }
    }
}

/// An iterator over a map's entries, from [`MapRef::iter`](super::MapRef::iter).
///
/// It takes no lock and never blocks writers (or is blocked by them). It is
/// *weakly consistent*, shard by shard:
/// - every entry present for the whole iteration is yielded exactly once,
///   with a value it had at some moment during the iteration;
/// - an entry inserted or removed during the iteration may or may not be
///   yielded;
/// - a key removed and inserted again during the iteration may be yielded
///   twice (once per incarnation);
/// - it never yields a value that was never stored, and never a torn one.
///
/// The yielded references live as long as the guard of the `MapRef`.
///
/// ```
/// use latchfree::map::HashMap;
///
/// let map: HashMap<u32, u32> = (0..100).map(|i| (i, i * i)).collect();
/// let m = map.pin();
/// let sum: u32 = m.iter().map(|(_, v)| v).sum();
/// assert_eq!(sum, (0..100).map(|i| i * i).sum());
/// ```
pub struct Iter<'g, K, V>(RawIter<'g, K, V>);

impl<'g, K, V> Iter<'g, K, V> {
    pub(super) fn new(
        shards: &'g [CachePadded<Shard<K, V>>],
        hasher: &'g dyn HashKey<K>,
        guard: &'g Guard,
    ) -> Self {
        Self(RawIter::new(shards, hasher, guard))
    }
}

impl<'g, K: Eq, V> Iterator for Iter<'g, K, V> {
    type Item = (&'g K, &'g V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|f| (f.key, f.value))
    }
}

/// The keys of a map; see [`Iter`].
///
/// ```
/// use latchfree::map::HashMap;
///
/// let map: HashMap<u32, ()> = (0..3).map(|i| (i, ())).collect();
/// let mut keys: Vec<u32> = map.pin().keys().copied().collect();
/// keys.sort_unstable();
/// assert_eq!(keys, [0, 1, 2]);
/// ```
pub struct Keys<'g, K, V>(pub(super) Iter<'g, K, V>);

impl<'g, K: Eq, V> Iterator for Keys<'g, K, V> {
    type Item = &'g K;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, _)| k)
    }
}

/// The values of a map; see [`Iter`].
///
/// ```
/// use latchfree::map::HashMap;
///
/// let map: HashMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
/// assert_eq!(map.pin().values().sum::<u32>(), 3);
/// ```
pub struct Values<'g, K, V>(pub(super) Iter<'g, K, V>);

impl<'g, K: Eq, V> Iterator for Values<'g, K, V> {
    type Item = &'g V;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(_, v)| v)
    }
}
