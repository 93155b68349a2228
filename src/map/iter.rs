//! Lock-free, weakly consistent iteration.

use crossbeam_epoch::{Guard, Shared};

use super::raw::{find, in_table, Entry, Shard, Table, MOVED};
use crate::sync::{CachePadded, Ordering};

/// Walks the live entries of every shard. See [`Iter`] for the guarantees.
pub(super) struct RawIter<'g, K, V> {
    shards: &'g [CachePadded<Shard<K, V>>],
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
    pub(super) fn new(shards: &'g [CachePadded<Shard<K, V>>], guard: &'g Guard) -> Self {
        Self {
            shards,
            guard,
            shard: 0,
            table: Shared::null(),
            first: Shared::null(),
            slot: 0,
        }
    }
}

impl<'g, K: Eq, V> Iterator for RawIter<'g, K, V> {
    type Item = &'g Entry<K, V>;

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
            // `guard` are retired through the epoch only.
            let t = unsafe { self.table.deref() };
            while self.slot < t.len() {
                // Acquire: pairs with the writers' Release slot stores.
                let p = t.slot(self.slot).load(Ordering::Acquire, guard);
                self.slot += 1;
                if p.is_null() {
                    continue;
                }
                // SAFETY: a non-null slot holds an entry alive under `guard`.
                let e = unsafe { p.deref() };
                let candidate = if p.tag() == MOVED {
                    // The key lives on in the next table (possibly updated).
                    match find(t.next(guard), e.hash, &e.key, guard) {
                        Some(f) => f.entry(),
                        None => continue,
                    }
                } else {
                    e
                };
                if !self.first.is_null() {
                    // SAFETY: as for `t`.
                    let first = unsafe { self.first.deref() };
                    if in_table(first, candidate.hash, &candidate.key, guard) {
                        // Visited (or skipped) in the first pass.
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
pub struct Iter<'g, K, V>(RawIter<'g, K, V>);

impl<'g, K, V> Iter<'g, K, V> {
    pub(super) fn new(shards: &'g [CachePadded<Shard<K, V>>], guard: &'g Guard) -> Self {
        Self(RawIter::new(shards, guard))
    }
}

impl<'g, K: Eq, V> Iterator for Iter<'g, K, V> {
    type Item = (&'g K, &'g V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|e| (&e.key, &e.value))
    }
}

/// The keys of a map; see [`Iter`].
pub struct Keys<'g, K, V>(pub(super) Iter<'g, K, V>);

impl<'g, K: Eq, V> Iterator for Keys<'g, K, V> {
    type Item = &'g K;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, _)| k)
    }
}

/// The values of a map; see [`Iter`].
pub struct Values<'g, K, V>(pub(super) Iter<'g, K, V>);

impl<'g, K: Eq, V> Iterator for Values<'g, K, V> {
    type Item = &'g V;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(_, v)| v)
    }
}
