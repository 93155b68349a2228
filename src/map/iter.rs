//! Lock-free, weakly consistent iteration.

use crossbeam_epoch::{Guard, Shared};

use super::raw::{find, in_table, Found, HashKey, Shard, Table};
use crate::sync::CachePadded;

/// Where a walk over the live entries of every shard stands. It holds
/// plain pointers, so an iterator can own both the cursor and the guard
/// that keeps the tables alive.
pub(super) struct Cursor<K, V> {
    /// Next shard to start.
    shard: usize,
    /// Table being scanned; null between shards.
    table: *const Table<K, V>,
    /// In the second pass (over the table the first one migrates into), the
    /// first pass's table; null in the first pass.
    first: *const Table<K, V>,
    /// Next slot of `table` to look at.
    slot: usize,
}

impl<K, V> Cursor<K, V> {
    pub(super) fn new() -> Self {
        Self {
            shard: 0,
            table: core::ptr::null(),
            first: core::ptr::null(),
            slot: 0,
        }
    }
}

impl<K: Eq, V> Cursor<K, V> {
    /// The next entry. See [`Iter`] for the guarantees.
    ///
    /// # Safety
    ///
    /// Every call on one cursor passes the same `shards` and one guard,
    /// pinned for the cursor's whole life (the tables it points into are
    /// kept alive by that pin).
    pub(super) unsafe fn advance<'g>(
        &mut self,
        shards: &'g [CachePadded<Shard<K, V>>],
        hasher: &dyn HashKey<K>,
        guard: &'g Guard,
    ) -> Option<Found<'g, K, V>> {
        loop {
            if self.table.is_null() {
                let shard = shards.get(self.shard)?;
                self.shard += 1;
                self.table = shard.table(guard).as_raw();
                self.first = core::ptr::null();
                self.slot = 0;
            }
            let table: Shared<'g, Table<K, V>> = Shared::from(self.table);
            // SAFETY: tables reached from a shard or a `next` link under
            // `guard` are released through the epoch only, and `guard` has
            // been pinned since (the caller's contract).
            let t: &'g Table<K, V> = unsafe { table.deref() };
            while self.slot < t.len() {
                let i = self.slot;
                self.slot += 1;
                let c = t.ctrl(i);
                let candidate = if Table::<K, V>::is_live_ctrl(c) {
                    // SAFETY: live (Acquire); the table lives for `'g`.
                    unsafe { Found::at(table, i, c) }
                } else if Table::<K, V>::is_moved_ctrl(c) {
                    // The key lives on in the next table (possibly updated).
                    // SAFETY: MOVED (Acquire), and `guard` has been pinned
                    // since `t` was reachable from its shard (the caller's
                    // contract), so the node's grave waits for it.
                    let key = unsafe { t.key(i) };
                    match find(t.next(guard), hasher.hash_key(key), key, guard) {
                        Some(f) => f,
                        None => continue,
                    }
                } else {
                    continue;
                };
                if !self.first.is_null() {
                    // SAFETY: as for `t`.
                    let first = unsafe { &*self.first };
                    let hash = hasher.hash_key(candidate.key);
                    // SAFETY: `guard` has been pinned since `first` was
                    // the shard's current table.
                    if unsafe { in_table(first, hash, candidate.key) } {
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
                    self.table = next.as_raw();
                    self.slot = 0;
                    continue;
                }
            }
            self.table = core::ptr::null();
        }
    }
}

/// Walks the live entries of every shard. See [`Iter`] for the guarantees.
pub(super) struct RawIter<'g, K, V> {
    shards: &'g [CachePadded<Shard<K, V>>],
    hasher: &'g dyn HashKey<K>,
    guard: &'g Guard,
    cursor: Cursor<K, V>,
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
            cursor: Cursor::new(),
        }
    }
}

impl<'g, K: Eq, V> Iterator for RawIter<'g, K, V> {
    type Item = Found<'g, K, V>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: the same shards and the same guard, borrowed for `'g`,
        // on every call.
        unsafe { self.cursor.advance(self.shards, self.hasher, self.guard) }
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

/// An iterator over clones of a map's entries that holds its own epoch
/// pin, from [`HashMap::iter`](super::HashMap::iter). Weakly consistent,
/// like [`Iter`]. Nothing retired while it lives is freed before it is
/// dropped, so do not keep it around.
///
/// ```
/// use latchfree::map::HashMap;
///
/// let map: HashMap<u32, String> = (0..3).map(|i| (i, i.to_string())).collect();
/// let mut all: Vec<(u32, String)> = map.iter().collect();
/// all.sort();
/// assert_eq!(all[2], (2, "2".to_string()));
/// ```
pub struct PinnedIter<'m, K, V> {
    shards: &'m [CachePadded<Shard<K, V>>],
    hasher: &'m dyn HashKey<K>,
    cursor: Cursor<K, V>,
    /// Pinned for the iterator's life: keeps the cursor's tables alive.
    guard: Guard,
}

impl<'m, K, V> PinnedIter<'m, K, V> {
    pub(super) fn new(
        shards: &'m [CachePadded<Shard<K, V>>],
        hasher: &'m dyn HashKey<K>,
        guard: Guard,
    ) -> Self {
        Self {
            shards,
            hasher,
            cursor: Cursor::new(),
            guard,
        }
    }
}

impl<K: Eq + Clone, V: Clone> Iterator for PinnedIter<'_, K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        // SAFETY: the same shards and the guard this iterator owns, pinned
        // since it was made, on every call; the references do not outlive
        // this call.
        let f = unsafe { self.cursor.advance(self.shards, self.hasher, &self.guard) }?;
        Some((f.key.clone(), f.value.clone()))
    }
}

impl<K, V> core::fmt::Debug for PinnedIter<'_, K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PinnedIter").finish_non_exhaustive()
    }
}
