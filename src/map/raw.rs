//! One shard: an epoch-managed open-addressing table of entry pointers, its
//! writer lock and its counters; and the lock-free lookup shared by readers
//! and writers.
//!
//! # Ground rules
//!
//! - An [`Entry`] (`hash`, `key`, `value`) is immutable once published. An
//!   update publishes a new entry in the same slot (copy-on-write) and
//!   retires the old one through the epoch, so a reader holding a pointer
//!   always reads a complete, never-torn entry.
//! - A slot is a [`Slot`]: an epoch pointer to an entry whose low-bit tag
//!   says what it holds:
//!   null with tag 0 = *empty* (ends a probe), null with [`TOMBSTONE`] =
//!   *deleted* (probes continue), an entry with tag 0 = *live*, an entry with
//!   [`MOVED`] = *migrated*: the entry now lives in the table's `next` table.
//!   On x86_64 the slot word also carries 16 bits of the entry's hash in its
//!   top bits (user-space addresses fit in 48 bits), written in the same
//!   store as the pointer, so a probe skips other keys' entries without
//!   loading them: one cache miss (the slot) per foreign key instead of two.
//! - Every slot store, every `next` store, the shard's `table` store and the
//!   counters are written only while the shard's lock is held. Readers take
//!   no lock: they load with `Acquire`, which pairs with the writers'
//!   `Release` stores, and so see the entry's fields fully initialised.
//! - A key is live in at most one slot over all tables of a shard: in the
//!   old table (not yet migrated) or in the new one. That slot is the key's
//!   authoritative location; writers update it in place.
//! - During growth, old slots only go live -> live (update), live ->
//!   tombstone (remove) or live -> moved (migration); empties and
//!   tombstones are never reused in a table that has a `next`, so a probe of
//!   the old table that reaches an empty slot has seen every key the old
//!   table still holds. New keys go to the `next` table.
//! - Growth is incremental: every committed write migrates at most
//!   [`MIGRATE_CHUNK`] slots of the old table, so no single write rehashes a
//!   whole table. When the last slot is done, the shard's `table` becomes the
//!   new table and the old table (its slot array only; the entries moved)
//!   is retired through the epoch.
//!
//! # Writers never run user code under the lock
//!
//! A writer locates its key with the lock-free lookup (running `Eq`
//! outside the lock), runs any user closure, allocates the new entry, and
//! only then locks and *validates* with pointer comparisons alone:
//! - if the key was found at slot `i` of table `t` with entry `p`, the
//!   commit is valid iff `t` is still reachable from the shard and slot `i`
//!   still holds `p` untagged (epoch pinning rules out ABA: `p` cannot be
//!   freed and reused while the writer is pinned);
//! - if the key was absent, the commit is valid iff the shard's `inserts`
//!   counter is unchanged: only the insertion of a new key can make an
//!   absent key present.
//!
//! A failed validation releases the lock and retries from the lookup.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::marker::PhantomData;

use crossbeam_epoch::{Atomic, Guard, Owned, Pointer, Shared};

use super::lock::ShardLock;
use crate::sync::{AtomicUsize, CachePadded, Ordering};

/// Slot tag on a null pointer: a deleted entry; probes continue past it.
pub(super) const TOMBSTONE: usize = 1;
/// Slot tag on an entry pointer: the entry was migrated to the `next` table.
pub(super) const MOVED: usize = 2;

/// Smallest table (slots). Growth starts at 3/4 occupancy.
pub(super) const MIN_TABLE: usize = 4;

/// Old-table slots migrated per committed write during growth: the
/// migration work a write may be charged, and so the tail of insert
/// latency (64 gave about 1.8x the p99 of the shootout's insert-latency
/// test). At least 16, so a migration ends before its new table fills: at
/// most `len / 16` keys arrive during it, and the new table's 3/4
/// threshold is at least `1.5 * live` and at least `3/16 * len` (see
/// `start_growth`).
#[cfg(not(latchfree_loom))]
pub(super) const MIGRATE_CHUNK: usize = 16;
#[cfg(latchfree_loom)]
pub(super) const MIGRATE_CHUNK: usize = 1;

/// Bits of a slot word that hold the epoch pointer (address and low tag);
/// the rest hold the hash tag.
#[cfg(target_arch = "x86_64")]
const ADDR_MASK: usize = (1 << 48) - 1;
#[cfg(not(target_arch = "x86_64"))]
const ADDR_MASK: usize = !0;

/// The hash tag of `hash`, placed where a slot word keeps it: hash bits
/// 32..48 (the shard index uses the top bits, the table index the low
/// ones). Zero where pointers have no spare bits.
#[inline]
fn hash_tag(hash: u64) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        ((hash >> 32) as usize & 0xFFFF) << 48
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = hash;
        0
    }
}

/// A slot word loaded from a [`Slot`]: pointer word plus hash tag.
#[derive(Clone, Copy)]
struct Word(usize);

impl Word {
    /// Whether the slot holds no entry (empty or tombstone).
    #[inline]
    fn is_null(self) -> bool {
        // Entries are at least word-aligned (crossbeam's low tag bits).
        self.0 & ADDR_MASK & !(core::mem::align_of::<usize>() - 1) == 0
    }

    /// Whether the slot may hold the entry of a key with `hash`: false only
    /// if its hash tag differs.
    #[inline]
    fn may_match(self, hash: u64) -> bool {
        self.0 & !ADDR_MASK == hash_tag(hash)
    }

    /// The epoch pointer (with its low tag) this word holds.
    #[inline]
    fn shared<'g, K, V>(self, _guard: &'g Guard) -> Shared<'g, Entry<K, V>> {
        // SAFETY: the low bits of every slot word are a word made by
        // `Pointer::into_usize` on a `Shared<Entry<K, V>>` (see
        // `Slot::store`); a `Shared` owns nothing, so rebuilding it any
        // number of times is fine. `'g`: the caller loaded it under `_guard`.
        unsafe { Shared::from_usize(self.0 & ADDR_MASK) }
    }
}

/// One table slot: an epoch pointer to an entry (low-bit tag as in the
/// module docs) and, where pointers have spare top bits, the entry's hash
/// tag in them. Pointer and hash tag change together, in one store.
pub(super) struct Slot<K, V> {
    word: AtomicUsize,
    /// Same auto traits as the `Atomic` this stands for.
    _marker: PhantomData<Atomic<Entry<K, V>>>,
}

impl<K, V> Slot<K, V> {
    fn null() -> Self {
        Self {
            word: AtomicUsize::new(0),
            _marker: PhantomData,
        }
    }

    /// The slot's word.
    #[inline]
    fn load_word(&self, ord: Ordering) -> Word {
        Word(self.word.load(ord))
    }

    /// The slot's epoch pointer, tagged as in the module docs.
    #[inline]
    pub(super) fn load<'g>(&self, ord: Ordering, guard: &'g Guard) -> Shared<'g, Entry<K, V>> {
        self.load_word(ord).shared(guard)
    }

    /// Stores `p` (an entry of `hash`, or a null with its tag).
    #[inline]
    fn store(&self, p: Shared<'_, Entry<K, V>>, hash: u64, ord: Ordering) {
        let null = p.is_null();
        let w = p.into_usize();
        if null {
            self.word.store(w, ord);
            return;
        }
        assert!(
            w & !ADDR_MASK == 0,
            "latchfree::map: entry address beyond 48 bits"
        );
        self.word.store(w | hash_tag(hash), ord);
    }
}

/// A published key-value pair; immutable while reachable.
pub(super) struct Entry<K, V> {
    pub(super) hash: u64,
    pub(super) key: K,
    pub(super) value: V,
}

/// An open-addressing (linear probing) table of entry pointers.
pub(super) struct Table<K, V> {
    /// `slots.len() - 1`; `slots.len()` is a power of two >= [`MIN_TABLE`].
    mask: usize,
    slots: Box<[Slot<K, V>]>,
    /// The table this one is migrating into; null when not growing. Set
    /// once (under the lock), never cleared while this table is reachable.
    next: Atomic<Table<K, V>>,
    /// Writer-only counters, on their own cache line: readers load
    /// `mask`, `slots` and `next` on every probe, and a counter bump on the
    /// same line would evict them from every other core's cache.
    w: CachePadded<TableCounters>,
}

/// A table's writer-only counters.
struct TableCounters {
    /// Slots that are live or tombstones, in `0 ..= slots.len()`. Written
    /// and read only under the shard lock.
    occupied: AtomicUsize,
    /// Old-table migration cursor: slots below it are migrated, in
    /// `0 ..= slots.len()`. Written and read only under the shard lock.
    migrated: AtomicUsize,
}

impl<K, V> Table<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        let len = capacity.max(MIN_TABLE).next_power_of_two();
        let slots: Vec<Slot<K, V>> = (0..len).map(|_| Slot::null()).collect();
        Self {
            mask: len - 1,
            slots: slots.into_boxed_slice(),
            next: Atomic::null(),
            w: CachePadded::new(TableCounters {
                occupied: AtomicUsize::new(0),
                migrated: AtomicUsize::new(0),
            }),
        }
    }

    /// Number of slots.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    pub(super) fn slot(&self, i: usize) -> &Slot<K, V> {
        &self.slots[i]
    }

    /// The `next` table, if this one is migrating.
    #[inline]
    pub(super) fn next<'g>(&self, guard: &'g Guard) -> Shared<'g, Table<K, V>> {
        // Acquire pairs with the Release store in `start_growth`.
        self.next.load(Ordering::Acquire, guard)
    }

    /// Unlinks the live entry at slot `i`. Lock held.
    ///
    /// The slot becomes a tombstone, unless the slot after it is empty: then
    /// no key lies beyond it on a probe sequence through it (every slot
    /// between a key's home and the key is non-empty, and stays so while
    /// the key is there), so it becomes empty, and so do the tombstones
    /// right before it, for the same reason. Fewer tombstones mean shorter
    /// probes for absent keys and fewer rehashes under insert/remove churn.
    fn vacate(&self, i: usize) {
        // Relaxed: slots are only written under the lock we hold.
        if self.slots[(i + 1) & self.mask]
            .load_word(Ordering::Relaxed)
            .0
            != 0
        {
            // Release: orders before later inserts' stores (readers need
            // nothing from a tombstone).
            self.slots[i].store(Shared::null().with_tag(TOMBSTONE), 0, Ordering::Release);
            return;
        }
        let mut j = i;
        let mut freed = 0;
        loop {
            // Release: as for a tombstone.
            self.slots[j].store(Shared::null(), 0, Ordering::Release);
            freed += 1;
            j = (j + self.mask) & self.mask;
            if j == i || self.slots[j].load_word(Ordering::Relaxed).0 != TOMBSTONE {
                break;
            }
        }
        let occupied = self.w.occupied.load(Ordering::Relaxed);
        debug_assert!(occupied >= freed);
        self.w.occupied.store(occupied - freed, Ordering::Relaxed);
    }

    /// First empty or tombstone slot on `hash`'s probe sequence, with
    /// whether it was empty. Pointer logic only; lock held.
    fn free_slot(&self, hash: u64, guard: &Guard) -> (usize, bool) {
        let mut i = hash as usize & self.mask;
        loop {
            // Relaxed: slots are only written under the lock we hold.
            let p = self.slots[i].load(Ordering::Relaxed, guard);
            if p.is_null() {
                return (i, p.tag() == 0);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Where the lookup found a key: the slot holding its live entry.
pub(super) struct Found<'g, K, V> {
    pub(super) table: Shared<'g, Table<K, V>>,
    pub(super) index: usize,
    pub(super) entry: Shared<'g, Entry<K, V>>,
}

impl<K, V> Clone for Found<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Found<'_, K, V> {}

impl<'g, K, V> Found<'g, K, V> {
    /// The found entry.
    #[inline]
    pub(super) fn entry(&self) -> &'g Entry<K, V> {
        // SAFETY: `entry` was loaded non-null under the guard `'g`; entries
        // are retired through the epoch only, so it outlives `'g`.
        unsafe { self.entry.deref() }
    }
}

/// Looks `key` up in `table` and, during growth, in the tables it migrates
/// into. Lock-free; runs `Eq`.
#[inline]
pub(super) fn find<'g, K, V, Q>(
    mut table: Shared<'g, Table<K, V>>,
    hash: u64,
    key: &Q,
    guard: &'g Guard,
) -> Option<Found<'g, K, V>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    loop {
        // SAFETY: tables are loaded under `guard` and retired through the
        // epoch only, so a table reached from the shard or from another
        // table's `next` outlives `guard`.
        let t = unsafe { table.deref() };
        let mut i = hash as usize & t.mask;
        let mut moved = false;
        for _ in 0..t.len() {
            // Acquire pairs with the writer's Release slot store: the
            // entry's fields are initialised before we read them.
            let w = t.slots[i].load_word(Ordering::Acquire);
            if w.is_null() {
                if w.0 == 0 {
                    break;
                }
            } else if w.may_match(hash) {
                let p: Shared<'g, Entry<K, V>> = w.shared(guard);
                // SAFETY: non-null slot pointers are entries retired only
                // through the epoch; we are pinned.
                let e = unsafe { p.deref() };
                if e.hash == hash && e.key.borrow() == key {
                    if p.tag() == MOVED {
                        moved = true;
                        break;
                    }
                    return Some(Found {
                        table,
                        index: i,
                        entry: p,
                    });
                }
            }
            i = (i + 1) & t.mask;
        }
        let next = t.next(guard);
        debug_assert!(
            !moved || !next.is_null(),
            "moved entry without a next table"
        );
        if next.is_null() {
            return None;
        }
        table = next;
    }
}

/// One shard of the map.
///
/// Readers touch only `table`; the fields writers change on every commit
/// live on a cache line of their own (`w`), so a write does not evict the
/// readers' copy of `table`.
pub(super) struct Shard<K, V> {
    /// The current table; never null while the shard is reachable.
    table: Atomic<Table<K, V>>,
    /// Slot count of the table `clear` installs.
    initial: usize,
    /// The writer-side state.
    w: CachePadded<ShardWriters>,
}

/// A shard's writer-side state.
struct ShardWriters {
    lock: ShardLock,
    /// Insertions of new keys committed in this shard (wrapping). Bumped
    /// with Release after the new entry's slot store; see the module docs.
    inserts: AtomicUsize,
    /// Live entries. Written under the lock, read anywhere (Relaxed).
    len: AtomicUsize,
}

/// The entry a commit published, if it stored one.
pub(super) type Published<'g, K, V> = Option<Shared<'g, Entry<K, V>>>;

/// What a writer decided to do, computed before it locks.
pub(super) enum Plan<K, V> {
    /// Publish this entry (in place of the found one, or as a new key).
    Put(Owned<Entry<K, V>>),
    /// Tombstone the found entry.
    Remove,
}

impl<K, V> Shard<K, V> {
    pub(super) fn new(capacity: usize) -> CachePadded<Self> {
        let initial = capacity.max(MIN_TABLE).next_power_of_two();
        CachePadded::new(Self {
            table: Atomic::new(Table::new(initial)),
            initial,
            w: CachePadded::new(ShardWriters {
                lock: ShardLock::new(),
                inserts: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
            }),
        })
    }

    /// The current table.
    #[inline]
    pub(super) fn table<'g>(&self, guard: &'g Guard) -> Shared<'g, Table<K, V>> {
        // Acquire pairs with the Release stores in `finish_table` and
        // `clear`: the table's slots are visible.
        self.table.load(Ordering::Acquire, guard)
    }

    /// The insert counter, read before a lookup whose result a writer will
    /// validate.
    #[inline]
    pub(super) fn inserts(&self) -> usize {
        // Acquire pairs with the Release bump in `commit`: if we read the
        // count after an insertion, the lookup that follows sees its entry.
        self.w.inserts.load(Ordering::Acquire)
    }

    /// Live entries; may be stale under concurrent writes.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.w.len.load(Ordering::Relaxed)
    }

    /// Commits `plan` for the key with `hash`, found at `found` (or absent,
    /// with the insert counter read as `inserts` before the lookup). Retires
    /// the replaced or removed entry and returns the published one; hands
    /// the plan back if the shard changed since the lookup.
    pub(super) fn commit<'g>(
        &self,
        hash: u64,
        found: Option<Found<'g, K, V>>,
        inserts: usize,
        plan: Plan<K, V>,
        guard: &'g Guard,
    ) -> Result<Published<'g, K, V>, Plan<K, V>> {
        let lock = self.w.lock.lock();
        // Relaxed: under the lock we see every write of previous holders.
        let cur = self.table.load(Ordering::Relaxed, guard);
        let published = match found {
            Some(f) => {
                if !self.reachable(f.table, cur, guard)
                    // SAFETY: `f.table` was loaded under `guard`.
                    || unsafe { f.table.deref() }.slots[f.index].load(Ordering::Relaxed, guard)
                        != f.entry
                {
                    drop(lock);
                    return Err(plan);
                }
                // SAFETY: reachable tables are alive under `guard`.
                let t = unsafe { f.table.deref() };
                let published = match plan {
                    Plan::Put(o) => {
                        let s = o.into_shared(guard);
                        // Release: publishes the new entry's fields to
                        // readers' Acquire slot loads.
                        t.slots[f.index].store(s, hash, Ordering::Release);
                        Some(s)
                    }
                    Plan::Remove => {
                        t.vacate(f.index);
                        self.w
                            .len
                            .store(self.w.len.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
                        None
                    }
                };
                // SAFETY: the old entry is unlinked from the only slot that
                // held it (live); readers that still hold it are pinned.
                unsafe { guard.defer_destroy(f.entry) };
                published
            }
            None => {
                if self.w.inserts.load(Ordering::Relaxed) != inserts {
                    drop(lock);
                    return Err(plan);
                }
                match plan {
                    Plan::Remove => None,
                    Plan::Put(o) => {
                        let target = self.insert_target(guard);
                        // SAFETY: `insert_target` returns a reachable table.
                        let t = unsafe { target.deref() };
                        let (i, was_empty) = t.free_slot(hash, guard);
                        let s = o.into_shared(guard);
                        // Release: publishes the entry (see above).
                        t.slots[i].store(s, hash, Ordering::Release);
                        if was_empty {
                            t.w.occupied
                                .store(t.w.occupied.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                        }
                        self.w
                            .len
                            .store(self.w.len.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                        // Release: pairs with `inserts()`; after the slot
                        // store, so a writer that reads the new count finds
                        // the key.
                        self.w
                            .inserts
                            .store(inserts.wrapping_add(1), Ordering::Release);
                        Some(s)
                    }
                }
            }
        };
        self.help_migrate(guard);
        drop(lock);
        Ok(published)
    }

    /// Is `t` the current table or the one it migrates into? Lock held.
    fn reachable(
        &self,
        t: Shared<'_, Table<K, V>>,
        cur: Shared<'_, Table<K, V>>,
        guard: &Guard,
    ) -> bool {
        if t == cur {
            return true;
        }
        // SAFETY: `cur` is the current table, alive under `guard`.
        let next = unsafe { cur.deref() }.next.load(Ordering::Relaxed, guard);
        t == next
    }

    /// The table new keys go to, with room for one more key: the current
    /// table, or the table it migrates into. Starts growth or finishes a
    /// migration when needed. Lock held.
    fn insert_target<'g>(&self, guard: &'g Guard) -> Shared<'g, Table<K, V>> {
        loop {
            let cur = self.table.load(Ordering::Relaxed, guard);
            // SAFETY: the current table is alive under `guard`.
            let c = unsafe { cur.deref() };
            let next = c.next.load(Ordering::Relaxed, guard);
            if next.is_null() {
                if over_threshold(c) {
                    self.start_growth(c, guard);
                    continue;
                }
                return cur;
            }
            // SAFETY: `next` hangs off the current table; alive.
            let n = unsafe { next.deref() };
            if over_threshold(n) {
                // Rare: the new table filled before the migration ended
                // (only when the old table was mostly tombstones). Finish
                // it now so the new table can grow in turn.
                while !self.migrate_chunk(cur, guard) {}
                continue;
            }
            return next;
        }
    }

    /// Allocates the table `c` migrates into. Lock held, `c` current.
    fn start_growth(&self, c: &Table<K, V>, guard: &Guard) {
        let live = self.w.len.load(Ordering::Relaxed);
        // Room for twice the live keys; at least a quarter of the old size,
        // so the inserts that arrive during migration (one per chunk of old
        // slots) cannot fill it first.
        let cap = ((live + 1) * 2).next_power_of_two().max(c.len() / 4);
        debug_assert!(c.next.load(Ordering::Relaxed, guard).is_null());
        // Release pairs with `Table::next`'s Acquire: the new table's empty
        // slots are initialised before anyone probes it.
        c.next.store(Owned::new(Table::new(cap)), Ordering::Release);
    }

    /// During growth, migrates one chunk. Lock held.
    fn help_migrate(&self, guard: &Guard) {
        let cur = self.table.load(Ordering::Relaxed, guard);
        // SAFETY: the current table is alive under `guard`.
        if !unsafe { cur.deref() }
            .next
            .load(Ordering::Relaxed, guard)
            .is_null()
        {
            self.migrate_chunk(cur, guard);
        }
    }

    /// Migrates up to [`MIGRATE_CHUNK`] slots of `cur` (current, growing)
    /// into its next table; returns whether the migration is complete (the
    /// next table is then current). Lock held.
    fn migrate_chunk(&self, cur: Shared<'_, Table<K, V>>, guard: &Guard) -> bool {
        // SAFETY: `cur` is the current table, alive under `guard`.
        let c = unsafe { cur.deref() };
        let next = c.next.load(Ordering::Relaxed, guard);
        // SAFETY: non-null `next` of the current table; alive.
        let n = unsafe { next.deref() };
        let start = c.w.migrated.load(Ordering::Relaxed);
        let end = (start + MIGRATE_CHUNK).min(c.len());
        // First pass: the live entries' hashes. These loads do not depend
        // on each other, so the CPU overlaps their cache misses instead of
        // taking them one at a time between the stores of the second pass.
        let mut hashes = [0u64; MIGRATE_CHUNK];
        for i in start..end {
            let p = c.slots[i].load(Ordering::Relaxed, guard);
            if !p.is_null() && p.tag() == 0 {
                // SAFETY: a live slot holds an entry alive under `guard`.
                hashes[i - start] = unsafe { p.deref() }.hash;
            }
        }
        for i in start..end {
            // Relaxed: slots are only written under the lock we hold, so
            // this is the word the first pass read.
            let p = c.slots[i].load(Ordering::Relaxed, guard);
            if p.is_null() || p.tag() != 0 {
                continue;
            }
            let hash = hashes[i - start];
            let (j, was_empty) = n.free_slot(hash, guard);
            // Release: a reader that follows MOVED (Acquire) to the new
            // table finds the entry; it is stored before the MOVED mark.
            n.slots[j].store(p, hash, Ordering::Release);
            if was_empty {
                n.w.occupied
                    .store(n.w.occupied.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            // Release: pairs with the reader's Acquire load of this slot,
            // which then sees the store into the new table above.
            c.slots[i].store(p.with_tag(MOVED), hash, Ordering::Release);
        }
        c.w.migrated.store(end, Ordering::Relaxed);
        if end < c.len() {
            return false;
        }
        // Release pairs with `Shard::table`'s Acquire.
        self.table.store(next, Ordering::Release);
        // SAFETY: the old table is unreachable from the shard now; readers
        // that still probe it are pinned. Dropping a table frees its slot
        // array only, never the entries (they live on in `next`).
        unsafe { guard.defer_destroy(cur) };
        true
    }

    /// Removes every entry: installs a fresh table and retires the old
    /// table(s) and their live entries. Returns how many entries it removed.
    pub(super) fn clear(&self, guard: &Guard) -> usize {
        let lock = self.w.lock.lock();
        let old = self.table.load(Ordering::Relaxed, guard);
        // Release pairs with `Shard::table`'s Acquire.
        self.table
            .store(Owned::new(Table::new(self.initial)), Ordering::Release);
        let removed = self.w.len.load(Ordering::Relaxed);
        self.w.len.store(0, Ordering::Relaxed);
        drop(lock);
        // SAFETY: `old` and its `next` are unreachable from the shard now
        // (writers validate reachability before touching a slot); every
        // live entry is retired exactly once (moved ones are live in `next`
        // only); pinned readers keep them alive.
        unsafe {
            retire_tables(
                old,
                guard,
                |p| guard.defer_destroy(p),
                |t| guard.defer_destroy(t),
            )
        };
        removed
    }
}

impl<K, V> Drop for Shard<K, V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader or writer can reach this shard;
        // everything retired earlier is no longer reachable from it, so each
        // live entry and table is freed exactly once.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let t = self.table.load(Ordering::Relaxed, guard);
            retire_tables(t, guard, |p| drop(p.into_owned()), |t| drop(t.into_owned()));
        }
    }
}

/// Hands every live entry of `table` and of its `next` chain to
/// `entry_fn`, then the tables to `table_fn`.
///
/// # Safety
///
/// The tables must be unreachable for writers, and each call must receive
/// a pointer that the callbacks may free exactly once.
unsafe fn retire_tables<'g, K, V>(
    table: Shared<'g, Table<K, V>>,
    guard: &'g Guard,
    mut entry_fn: impl FnMut(Shared<'g, Entry<K, V>>),
    mut table_fn: impl FnMut(Shared<'g, Table<K, V>>),
) {
    let mut t = table;
    while !t.is_null() {
        // SAFETY: caller guarantees the chain is alive.
        let tr = unsafe { t.deref() };
        for s in tr.slots.iter() {
            let p = s.load(Ordering::Relaxed, guard);
            if !p.is_null() && p.tag() == 0 {
                entry_fn(p);
            }
        }
        let next = tr.next.load(Ordering::Relaxed, guard);
        table_fn(t);
        t = next;
    }
}

/// Live plus tombstones at or above 3/4 of the slots, counting one more.
#[inline]
fn over_threshold<K, V>(t: &Table<K, V>) -> bool {
    (t.w.occupied.load(Ordering::Relaxed) + 1) * 4 > t.len() * 3
}

/// Whether `key` has a live or moved slot in `table` itself (its `next`
/// not consulted). Lock-free; runs `Eq`.
pub(super) fn in_table<K: Eq, V>(table: &Table<K, V>, hash: u64, key: &K, guard: &Guard) -> bool {
    let mut i = hash as usize & table.mask;
    for _ in 0..table.len() {
        // Acquire: as in `find`.
        let w = table.slots[i].load_word(Ordering::Acquire);
        if w.is_null() {
            if w.0 == 0 {
                return false;
            }
        } else if w.may_match(hash) {
            // SAFETY: as in `find`.
            let e = unsafe { w.shared::<K, V>(guard).deref() };
            if e.hash == hash && e.key == *key {
                return true;
            }
        }
        i = (i + 1) & table.mask;
    }
    false
}
