//! One shard: an epoch-managed open-addressing table with inline,
//! write-once buckets, its writer lock and counters; and the lock-free
//! lookup shared by readers and writers.
//!
//! # Layout
//!
//! A [`Table`] has, per slot, a control byte (state and a 5-bit hash tag,
//! SwissTable style), a bucket holding the key and its first value inline,
//! and a `u32` naming the slot's current value in the table's *arena* once
//! the value has been replaced. A lookup reads control bytes (one byte per
//! slot, so a probe run shares a cache line) and then the one bucket whose
//! tag matches: one cache miss per hit instead of two for an entry behind a
//! pointer.
//!
//! # Ground rules
//!
//! - **Write-once memory.** A bucket is written once, while its slot is
//!   `EMPTY` (invisible to readers), then published by a `Release` store of
//!   its control byte. An arena cell is written once, while unused, then
//!   published by a `Release` store of the slot's arena index. Nothing a
//!   reader can reach is ever written again while the table is alive, so a
//!   reader holding `&K`/`&V` into a table reads immutable memory, for as
//!   long as its epoch guard keeps the table alive.
//! - **Slot states.** `EMPTY` ends a probe. `FULL` (value inline) and
//!   `FULL_OVF` (value in the arena) are live. `DELETED` is removed (probes
//!   continue; the slot is never reused in this table).
//!   `MOVED`: the key now lives in the table's `next` table. States only go
//!   `EMPTY -> FULL -> FULL_OVF`, and from a live state to a removed one or
//!   `MOVED`: never back.
//! - **A key is live in at most one slot** over all tables of a shard; that
//!   slot is its authoritative location. A key's slot index never changes
//!   within a table (a replaced value goes to the arena), which is what
//!   makes iteration exactly-once for keys present throughout.
//! - **Writers hold the shard lock** for every control byte, arena index,
//!   `next` and `table` store, and run no user code under it (no `Hash`,
//!   `Eq`, `Clone`, closure or `Drop`). User code runs before the lock
//!   (finding the key, cloning entries to migrate) or after it (dropping a
//!   key that was not stored, or a migration clone that went stale).
//!
//! # Growth
//!
//! A table grows (or is rebuilt at the same size, when it is full of removed
//! slots or its arena is used up) into a `next` table sized for twice the
//! live entries. While it migrates, new keys and replaced values go to
//! `next`; every committed write then moves up to [`MIGRATE_CHUNK`] old
//! slots, so no single write pays for a whole table. Moving means *cloning*
//! the entry (outside the lock, then installing the clone under it if the
//! slot did not change): the old copy stays readable, untouched, by readers
//! still in the old table, and is dropped with it. Readers look in the old
//! table, then in `next`.
//!
//! # Reclamation
//!
//! A table is freed when its last reference goes: one for being reachable
//! from the shard (released by a grave when it is unlinked) and one per
//! removed slot or replaced value whose grave still waits (see
//! `grave.rs`: the shard's writers drop graves once the epoch has passed
//! them, and the shard's drop drops the rest). So a removed key and value,
//! and a replaced value, are dropped soon after no reader can hold them,
//! not when the table is next rebuilt, and never after the map.
//! What the table itself drops is what is left: live and moved slots' keys
//! and current values (the old copies of migrated entries).

use alloc::boxed::Box;
use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem::{needs_drop, MaybeUninit};
use core::ptr;

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use super::grave::{Dead, Graveyard, Retired};
use super::lock::ShardLock;
use crate::sync::{AtomicU32, AtomicUsize, CachePadded, Ordering, UnsafeCell, UntrackedUnsafeCell};

/// A write-once cell of a table (see the module docs).
type Cell<T> = UntrackedUnsafeCell<MaybeUninit<T>>;

/// Smallest table (slots).
pub(super) const MIN_TABLE: usize = if GROUP > 4 { GROUP } else { 4 };

/// Old-table slots a write migrates during growth: the migration work one
/// write may be charged (its clones), and so the tail of insert latency.
#[cfg(not(latchfree_loom))]
pub(super) const MIGRATE_CHUNK: usize = 16;
#[cfg(latchfree_loom)]
pub(super) const MIGRATE_CHUNK: usize = 1;

/// Control byte: state in the top three bits, hash tag in the low five.
const TAG_BITS: u32 = 5;
const TAG_MASK: u8 = (1 << TAG_BITS) - 1;
const EMPTY: u8 = 0;
const DELETED: u8 = 1;
const FULL: u8 = 4;
const FULL_OVF: u8 = 5;
const MOVED: u8 = 6;
/// `MOVED` from `FULL_OVF`: the bucket's own value was already dropped.
const MOVED_OVF: u8 = 7;

/// With [`TAG_MASK`]: the state bits a probe compares (the top one, set in
/// every live and moved state) and the tag; bits 5-6, which tell live from
/// moved, are left out.
const PROBE_MASK: u8 = 0x80 | TAG_MASK;

/// What a live or moved slot of `tag` reads as under [`PROBE_MASK`].
#[inline]
fn probe_pattern(tag: u8) -> u8 {
    0x80 | tag
}

/// The version of a live slot's value: the arena cell, or [`INLINE`].
pub(super) type Version = u32;
/// The value is the bucket's own.
const INLINE: Version = u32::MAX;

#[inline]
fn state(c: u8) -> u8 {
    c >> TAG_BITS
}

#[inline]
fn ctrl(state: u8, tag: u8) -> u8 {
    (state << TAG_BITS) | tag
}

/// Hash bits 32.. (the table index uses the low bits, the shard the top).
#[inline]
fn tag(hash: u64) -> u8 {
    (hash >> 32) as u8 & TAG_MASK
}

/// Control bytes per control word.
const GROUP: usize = core::mem::size_of::<usize>();
/// The low bit of every byte of a word.
const LSB: usize = usize::MAX / 0xFF;
/// The high bit of every byte of a word.
const MSB: usize = LSB << 7;

/// High bit set in each zero byte of `v`; exact for the lowest one, which
/// is all that callers trust (a borrow can flag bytes above it).
#[inline]
fn zero_bytes(v: usize) -> usize {
    v.wrapping_sub(LSB) & !v & MSB
}

/// The `MOVED` control byte for live control byte `c`.
#[inline]
fn moved(c: u8) -> u8 {
    let s = if state(c) == FULL { MOVED } else { MOVED_OVF };
    ctrl(s, c & TAG_MASK)
}

#[inline]
fn is_live(c: u8) -> bool {
    matches!(state(c), FULL | FULL_OVF)
}

/// A key and its first value.
struct Bucket<K, V> {
    key: K,
    value: V,
}

/// Hashes keys for the iterator and the migration (which do not know the
/// map's hasher type).
pub(super) trait HashKey<K> {
    fn hash_key(&self, key: &K) -> u64;
}

impl<K: core::hash::Hash, S: core::hash::BuildHasher> HashKey<K> for S {
    #[inline]
    fn hash_key(&self, key: &K) -> u64 {
        self.hash_one(key)
    }
}

/// An open-addressing (linear probing) table; see the module docs.
pub(super) struct Table<K, V> {
    /// `len - 1`; `len` is a power of two >= [`MIN_TABLE`].
    mask: usize,
    /// Control bytes, packed `GROUP` to a word so a probe reads a whole
    /// run of slots in one load; slot `i` is byte `i % GROUP` (counting
    /// from the low end) of word `i / GROUP`. Words are written only under
    /// the lock, whole.
    ctrl: Box<[AtomicUsize]>,
    /// Per slot: the arena cell holding the current value (`FULL_OVF`).
    ovf: Box<[AtomicU32]>,
    buckets: Box<[Cell<Bucket<K, V>>]>,
    arena: Box<[Cell<V>]>,
    /// The table this one migrates into; null when not growing. Set once
    /// (under the lock), never cleared while this table is reachable.
    next: Atomic<Table<K, V>>,
    /// See "Reclamation" in the module docs.
    refs: AtomicUsize,
    /// Writer-only counters, on their own cache line (readers load the
    /// fields above on every probe).
    w: CachePadded<TableCounters>,
}

/// A table's writer-side counters.
struct TableCounters {
    /// Non-`EMPTY` slots. Under the lock.
    occupied: AtomicUsize,
    /// Arena cells used. Under the lock.
    arena_used: AtomicUsize,
    /// Migration cursor: slots below it are migrated. Written under the
    /// lock; read outside it as a hint (checked again under the lock).
    migrated: AtomicUsize,
}

// SAFETY: a table owns its keys and values (dropped on whatever thread
// frees it: `Send`), and shares `&K`/`&V` with every reader (`Sync`). The
// cells are written only under the shard lock before publication (see the
// module docs).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Table<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send, V: Send> Send for Table<K, V> {}

impl<K, V> Table<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        let len = capacity.max(MIN_TABLE).next_power_of_two();
        let arena = (len / 4).max(1);
        Self {
            mask: len - 1,
            ctrl: (0..len / GROUP).map(|_| AtomicUsize::new(0)).collect(),
            ovf: (0..len).map(|_| AtomicU32::new(0)).collect(),
            buckets: (0..len)
                .map(|_| UntrackedUnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            arena: (0..arena)
                .map(|_| UntrackedUnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            next: Atomic::null(),
            refs: AtomicUsize::new(1),
            w: CachePadded::new(TableCounters {
                occupied: AtomicUsize::new(0),
                arena_used: AtomicUsize::new(0),
                migrated: AtomicUsize::new(0),
            }),
        }
    }

    /// [`new`](Self::new), reporting an allocation failure (or a size
    /// overflowing `isize`) instead of aborting.
    pub(super) fn try_new(capacity: usize) -> Result<Self, TryReserveError> {
        let len = capacity
            .max(MIN_TABLE)
            .checked_next_power_of_two()
            .ok_or_else(overflow)?;
        let arena = (len / 4).max(1);
        Ok(Self {
            mask: len - 1,
            ctrl: try_boxed(len / GROUP, || AtomicUsize::new(0))?,
            ovf: try_boxed(len, || AtomicU32::new(0))?,
            buckets: try_boxed(len, || UntrackedUnsafeCell::new(MaybeUninit::uninit()))?,
            arena: try_boxed(arena, || UntrackedUnsafeCell::new(MaybeUninit::uninit()))?,
            next: Atomic::null(),
            refs: AtomicUsize::new(1),
            w: CachePadded::new(TableCounters {
                occupied: AtomicUsize::new(0),
                arena_used: AtomicUsize::new(0),
                migrated: AtomicUsize::new(0),
            }),
        })
    }

    /// Slots in use (live, removed or moved); may be stale outside the
    /// lock.
    #[inline]
    pub(super) fn occupied(&self) -> usize {
        // Relaxed: a hint for sizing; checked again under the lock.
        self.w.occupied.load(Ordering::Relaxed)
    }

    /// Entries the table takes before it must grow: 3/4 of its slots.
    #[inline]
    pub(super) fn capacity(&self) -> usize {
        self.len() / 4 * 3
    }

    /// Whether a control byte is live (`FULL` or `FULL_OVF`).
    #[inline]
    pub(super) fn is_live_ctrl(c: u8) -> bool {
        is_live(c)
    }

    /// Whether a control byte is `MOVED`.
    #[inline]
    pub(super) fn is_moved_ctrl(c: u8) -> bool {
        matches!(state(c), MOVED | MOVED_OVF)
    }

    /// Number of slots.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.mask + 1
    }

    /// The `next` table, if this one is migrating.
    #[inline]
    pub(super) fn next<'g>(&self, guard: &'g Guard) -> Shared<'g, Table<K, V>> {
        // Acquire pairs with the Release store in `start_growth`.
        self.next.load(Ordering::Acquire, guard)
    }

    /// The control byte of slot `i`, loaded with Acquire: it pairs with the
    /// writers' Release stores, so a published bucket is initialised.
    #[inline]
    pub(super) fn ctrl(&self, i: usize) -> u8 {
        (self.ctrl[i / GROUP].load(Ordering::Acquire) >> (8 * (i % GROUP))) as u8
    }

    /// The control byte of slot `i`, lock held (or `&mut`).
    #[inline]
    fn ctrl_locked(&self, i: usize) -> u8 {
        // Relaxed: control words are written only under the lock.
        (self.ctrl[i / GROUP].load(Ordering::Relaxed) >> (8 * (i % GROUP))) as u8
    }

    /// Sets the control byte of slot `i` to `c` with a `Release` store of
    /// its word (readers' Acquire loads pair with it). Lock held.
    #[inline]
    fn set_ctrl(&self, i: usize, c: u8) {
        let word = &self.ctrl[i / GROUP];
        let shift = 8 * (i % GROUP);
        // Relaxed: only lock holders write the word.
        let w = word.load(Ordering::Relaxed);
        word.store(
            (w & !(0xFF << shift)) | (usize::from(c) << shift),
            Ordering::Release,
        );
    }

    /// A raw pointer to the bucket of slot `i`. Buckets are only ever
    /// reached through it, by field: no reference to a whole bucket is
    /// made while the table is shared, because a reader's `&K` and the
    /// epoch's drop of the inline value beside it (`drop_replaced`) must
    /// not overlap (a `&Bucket` would cover the value being dropped, a
    /// `&mut Bucket` would invalidate the `&K` under Stacked Borrows).
    #[inline(always)]
    fn bucket(&self, i: usize) -> *mut Bucket<K, V> {
        // `MaybeUninit<B>` has `B`'s layout.
        self.buckets[i].get().cast()
    }

    /// The key of a non-`EMPTY` slot.
    ///
    /// # Safety
    ///
    /// The slot's control byte was seen non-`EMPTY` (with Acquire, or under
    /// the lock), and the reference must not outlive the table.
    #[inline]
    pub(super) unsafe fn key(&self, i: usize) -> &K {
        // SAFETY: a non-empty slot's key was written before its control
        // byte was published and is never written again (module docs).
        unsafe { &*ptr::addr_of!((*self.bucket(i)).key) }
    }

    /// The inline (first) value of a non-`EMPTY` slot.
    ///
    /// # Safety
    ///
    /// As for [`key`](Self::key), and the value has not been replaced yet
    /// (or the reader's epoch guard predates its replacement).
    #[inline]
    unsafe fn inline_value(&self, i: usize) -> &V {
        // SAFETY: as for `key`; a replaced inline value is dropped only
        // once no reader can hold it (the caller's contract).
        unsafe { &*ptr::addr_of!((*self.bucket(i)).value) }
    }

    /// The current value and its version of live slot `i` whose control
    /// byte was loaded as `c`.
    ///
    /// # Safety
    ///
    /// `c` was loaded (Acquire, or under the lock) from slot `i` and is
    /// live; the reference must not outlive the table.
    #[inline]
    pub(super) unsafe fn value(&self, i: usize, c: u8) -> (&V, Version) {
        if state(c) == FULL {
            // SAFETY: the caller's contract; see `bucket`.
            return (unsafe { self.inline_value(i) }, INLINE);
        }
        // Acquire pairs with the Release store in `replace`: the cell it
        // names is initialised. (`FULL_OVF` was stored after the first
        // index, so the index we load is at least that one.)
        let cell = self.ovf[i].load(Ordering::Acquire);
        // SAFETY: a published arena cell is initialised and never written
        // again while the table lives.
        (
            unsafe { (*self.arena[cell as usize].get()).assume_init_ref() },
            cell,
        )
    }

    /// A pointer to the value that version `version` of slot `i` names.
    /// Dereferencing it needs the contract of the caller's use (`get_mut`:
    /// the map borrowed mutably, so no reader or writer can reach it).
    #[inline]
    pub(super) fn value_ptr(&self, i: usize, version: Version) -> *mut V {
        if version == INLINE {
            // SAFETY: in bounds; no reference is made (see `bucket`).
            unsafe { ptr::addr_of_mut!((*self.bucket(i)).value) }
        } else {
            self.arena[version as usize].get().cast::<V>()
        }
    }

    /// The version of live slot `i`; lock held.
    fn version(&self, i: usize, c: u8) -> Version {
        if state(c) == FULL {
            INLINE
        } else {
            // Relaxed: written under the lock we hold.
            self.ovf[i].load(Ordering::Relaxed)
        }
    }

    /// First `EMPTY` slot on `hash`'s probe sequence. Lock held; the
    /// caller made sure one exists (occupancy below the threshold).
    fn free_slot(&self, hash: u64) -> usize {
        let home = hash as usize & self.mask;
        let mut wi = home / GROUP;
        // Bytes before `home` in its word read as non-empty.
        let mut skip = (1usize << (8 * (home % GROUP))) - 1;
        loop {
            // Relaxed: control words are written only under the lock.
            let empty = zero_bytes(self.ctrl[wi].load(Ordering::Relaxed) | skip);
            if empty != 0 {
                return wi * GROUP + empty.trailing_zeros() as usize / 8;
            }
            skip = 0;
            wi = (wi + 1) & (self.ctrl.len() - 1);
        }
    }

    /// Writes and publishes a new entry at an empty slot; lock held.
    fn place(&self, hash: u64, key: K, value: V) -> usize {
        let i = self.free_slot(hash);
        // SAFETY: the slot is EMPTY, so no reader reads its bucket, and we
        // hold the lock, so no writer writes it.
        unsafe { self.bucket(i).write(Bucket { key, value }) };
        // Release: publishes the bucket to readers' Acquire loads.
        self.set_ctrl(i, ctrl(FULL, tag(hash)));
        self.w.occupied.store(
            self.w.occupied.load(Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        i
    }

    /// Whether the arena has a free cell. Lock held.
    fn arena_full(&self) -> bool {
        self.w.arena_used.load(Ordering::Relaxed) == self.arena.len()
    }

    /// Replaces the value of live slot `i` (control byte `c`) by a new
    /// arena cell holding `value`, and buries the value it replaced in
    /// `graves` (it needs a drop). Lock held; the arena has room; `this` is
    /// `self`.
    fn replace<'g>(
        &'g self,
        this: Shared<'g, Self>,
        i: usize,
        c: u8,
        value: V,
        graves: &mut Graveyard<K, V>,
    ) -> &'g V {
        let old = self.version(i, c);
        let cell = self.w.arena_used.load(Ordering::Relaxed);
        self.w.arena_used.store(cell + 1, Ordering::Relaxed);
        // SAFETY: cells at and above `arena_used` were never published; we
        // hold the lock.
        let v = unsafe { (*self.arena[cell].get()).write(value) };
        // Release: publishes the cell to readers' Acquire index loads.
        self.ovf[i].store(cell as u32, Ordering::Release);
        if state(c) == FULL {
            // Release: a reader that sees FULL_OVF sees the index above.
            self.set_ctrl(i, ctrl(FULL_OVF, c & TAG_MASK));
        }
        if needs_drop::<V>() {
            // The grave holds a table reference. Relaxed: the table is
            // alive (the shard's reference, under the lock); `release`
            // orders the drops.
            self.refs.fetch_add(1, Ordering::Relaxed);
            // The replaced value is unreachable for readers that load the
            // slot from now on; its grave waits for the earlier ones. Each
            // value is replaced (so buried) once.
            graves.bury(Retired::Replaced(this.as_raw(), i, old));
        }
        v
    }

    /// Drops the value of slot `i` that version `old` names (the bucket's
    /// own, or an arena cell), then releases the reference the
    /// replacement took.
    ///
    /// # Safety
    ///
    /// As for [`drop_removed`](Self::drop_removed), for a replaced value.
    pub(super) unsafe fn drop_replaced(this: *const Self, i: usize, old: Version) {
        // SAFETY: the caller's contract; the table's own drop skips
        // replaced values (see `Drop`).
        unsafe {
            let _release = Release(this);
            let t = &*this;
            if old == INLINE {
                // By field: readers may hold `&K` into this bucket.
                ptr::drop_in_place(ptr::addr_of_mut!((*t.bucket(i)).value));
            } else {
                ptr::drop_in_place(t.arena[old as usize].get().cast::<V>());
            }
        }
    }

    /// Over 3/4 occupied, counting `extra` more slots.
    fn over_threshold(&self, extra: usize) -> bool {
        (self.w.occupied.load(Ordering::Relaxed) + extra) * 4 > self.len() * 3
    }

    /// Drops the key and current value of slot `i`, removed while its
    /// control byte was `c` (live), then releases the table reference the
    /// removal took.
    ///
    /// # Safety
    ///
    /// `this` is a live table holding a reference for this call; no reader
    /// can reach the slot's key or current value any more (the epoch has
    /// passed the removal); called once per removal.
    pub(super) unsafe fn drop_removed(this: *const Self, i: usize, version: Version) {
        // SAFETY: the caller's contract: the table is alive, the contents
        // are unreachable, and nobody else drops them (the table's own drop
        // skips what a removal drops: see `Drop`).
        unsafe {
            let t = &*this;
            let _release = Release(this);
            let b = t.bucket(i);
            let _value = DropOnExit(if version == INLINE {
                ptr::addr_of_mut!((*b).value)
            } else {
                t.arena[version as usize].get().cast::<V>()
            });
            ptr::drop_in_place(ptr::addr_of_mut!((*b).key));
        }
    }

    /// Drops one reference; frees the table on the last.
    ///
    /// # Safety
    ///
    /// `this` came from `Owned::into_shared` and the caller owns one of its
    /// references.
    pub(super) unsafe fn release(this: *const Self) {
        // SAFETY: the caller's reference keeps `this` alive until here.
        // AcqRel: the last releaser sees every other releaser's drops
        // before it frees the memory.
        if unsafe { &*this }.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: no references remain: nobody can reach the table.
            drop(unsafe { Owned::from_raw(this.cast_mut()) });
        }
    }
}

impl<K, V> Drop for Table<K, V> {
    fn drop(&mut self) {
        if !needs_drop::<K>() && !needs_drop::<V>() {
            return;
        }
        // What is still ours: every replaced value and every removed slot's
        // key and value were dropped by their graves (`drop_replaced`,
        // `drop_removed`), and those hold references, so they have all
        // been dropped by now. Left: the keys of live and moved slots, and
        // their current values (in the bucket, or in the arena cell the
        // slot names).
        // SAFETY: `&mut self`: nobody else can reach the table.
        unsafe { Self::drop_slots(self, 0) };
    }
}

impl<K, V> Table<K, V> {
    /// Drops what slots `from..` still own (see `Drop`). If a `Drop` of a
    /// key or value panics, the rest are still dropped while unwinding (a
    /// second panic aborts, as for a `Vec`).
    ///
    /// # Safety
    ///
    /// `this` is exclusively ours, being dropped; called once per slot.
    unsafe fn drop_slots(this: *mut Self, from: usize) {
        /// Drops the slots after a panicking one.
        struct Rest<K, V>(*mut Table<K, V>, usize);
        impl<K, V> Drop for Rest<K, V> {
            fn drop(&mut self) {
                // SAFETY: the caller's contract, for the slots not yet
                // dropped.
                unsafe { Table::drop_slots(self.0, self.1) };
            }
        }
        // SAFETY: the caller's contract: the table is ours alone; each
        // thing dropped here was initialised and not dropped before.
        unsafe {
            for i in from..(*this).len() {
                let rest = Rest(this, i + 1);
                let t = &*this;
                let c = t.ctrl_locked(i);
                let b = t.bucket(i);
                match state(c) {
                    FULL | MOVED => ptr::drop_in_place(b),
                    FULL_OVF | MOVED_OVF => {
                        // Relaxed: the table is ours alone.
                        let cell = t.ovf[i].load(Ordering::Relaxed) as usize;
                        let _value = DropOnExit(t.arena[cell].get().cast::<V>());
                        ptr::drop_in_place(ptr::addr_of_mut!((*b).key));
                    }
                    _ => {}
                }
                core::mem::forget(rest);
            }
        }
    }
}

/// Releases a table reference when dropped, also on unwind.
struct Release<K, V>(*const Table<K, V>);

impl<K, V> Drop for Release<K, V> {
    fn drop(&mut self) {
        // SAFETY: made only by the owner of one of the table's references,
        // which it hands over to this guard.
        unsafe { Table::release(self.0) };
    }
}

/// Drops the value it points to when dropped, also on unwind (so a key
/// whose `Drop` panics does not leak its value).
struct DropOnExit<T>(*mut T);

impl<T> Drop for DropOnExit<T> {
    fn drop(&mut self) {
        // SAFETY: made only over an initialised value its maker owns and
        // drops nowhere else.
        unsafe { ptr::drop_in_place(self.0) };
    }
}

/// Releases the shard's reference to the unlinked table `t` once no reader
/// can be in it. A table whose keys and values need no drop frees nothing
/// but its own memory, which is fine at any later time, so the epoch frees
/// it directly, promptly and even after the map; otherwise the release
/// waits in a grave (it may drop keys and values: see `grave.rs`).
fn retire_table<K, V>(t: *const Table<K, V>, graves: &mut Graveyard<K, V>, guard: &Guard) {
    if needs_drop::<K>() || needs_drop::<V>() {
        graves.bury(Retired::Table(t));
        return;
    }
    let t = t as usize;
    // SAFETY: the table is unlinked, and the epoch runs the closure after
    // every reader pinned before now is gone. The closure holds the shard's
    // reference; the last release frees memory only (no `K` or `V` has
    // drop glue, so `Table::drop` touches neither), which stays sound after
    // the map and after any lifetime in `K` or `V` has ended.
    unsafe {
        guard.defer_unchecked(move || Table::release(t as *const Table<K, V>));
    }
}

/// A boxed slice of `n` elements made by `f`, or the allocation error.
fn try_boxed<T>(n: usize, f: impl FnMut() -> T) -> Result<Box<[T]>, TryReserveError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)?;
    v.extend(core::iter::repeat_with(f).take(n));
    Ok(v.into_boxed_slice())
}

/// The error of a request for more than `isize::MAX` bytes. (The standard
/// library gives no constructor; an impossible reservation makes one.)
pub(super) fn overflow() -> TryReserveError {
    match Vec::<u8>::new().try_reserve(usize::MAX) {
        Err(e) => e,
        Ok(()) => unreachable!("no allocation of usize::MAX bytes succeeds"),
    }
}

/// Where a lookup found a key: its live slot and current value.
pub(super) struct Found<'g, K, V> {
    pub(super) table: Shared<'g, Table<K, V>>,
    pub(super) index: usize,
    pub(super) version: Version,
    pub(super) key: &'g K,
    pub(super) value: &'g V,
}

impl<'g, K, V> Found<'g, K, V> {
    /// The entry at slot `i` of `table`, whose control byte was loaded
    /// (Acquire) as the live `c`.
    ///
    /// # Safety
    ///
    /// `table` is alive for `'g` and `c` is live and was loaded from slot
    /// `i` with Acquire.
    #[inline]
    pub(super) unsafe fn at(table: Shared<'g, Table<K, V>>, i: usize, c: u8) -> Self {
        // SAFETY: the caller's contract.
        let t: &'g Table<K, V> = unsafe { table.deref() };
        // SAFETY: as above: `c` is live, so the bucket and the value it
        // names are published.
        let (key, (value, version)) = unsafe { (t.key(i), t.value(i, c)) };
        Self {
            table,
            index: i,
            version,
            key,
            value,
        }
    }
}

impl<K, V> Clone for Found<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Found<'_, K, V> {}

/// Looks `key` up in `table` and, during growth, in the tables it migrates
/// into. Lock-free; runs `Eq`.
#[inline(always)]
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
    let pattern = probe_pattern(tag(hash));
    let want = LSB * usize::from(pattern);
    loop {
        // SAFETY: tables are loaded under `guard` and released through the
        // epoch only, so a table reached from the shard or from another
        // table's `next` outlives `guard`.
        let t: &'g Table<K, V> = unsafe { table.deref() };
        let home = hash as usize & t.mask;
        let (mut wi, off) = (home / GROUP, home % GROUP);
        // Acquire pairs with the writers' Release word stores: every bucket
        // a byte of this word publishes is initialised.
        let mut raw = t.ctrl[wi].load(Ordering::Acquire);
        // Fast path: most keys sit in their home slot, and most absent
        // keys find it empty.
        let c = (raw >> (8 * off)) as u8;
        if c == EMPTY {
            let next = t.next(guard);
            if next.is_null() {
                return None;
            }
            table = next;
            continue;
        }
        if c & PROBE_MASK == pattern && state(c) < MOVED {
            // SAFETY: `c` is non-empty (Acquire); `t` lives for `'g`.
            if unsafe { t.key(home) }.borrow() == key {
                // SAFETY: `c` is live (Acquire); `table` lives for `'g`.
                return Some(unsafe { Found::at(table, home, c) });
            }
        }
        // The rest of the run, from the slot after `home`, in the word
        // already loaded: bytes up to `home` read as 0x7F (neither empty
        // nor a match). `home` itself was just looked at.
        let mut skip = usize::MAX >> (8 * (GROUP - 1 - off));
        let words = t.ctrl.len();
        let mut moved = false;
        // `words + 1` words cover every slot even from mid-word.
        'probe: for _ in 0..=words {
            let w = (raw & !skip) | (skip & (LSB * 0x7F));
            skip = 0;
            let empty = zero_bytes(w);
            // Matches before the first empty byte (all, if none).
            let mut hits = zero_bytes((w & (LSB * usize::from(PROBE_MASK))) ^ want)
                & empty.wrapping_sub(1)
                & !empty;
            while hits != 0 {
                let b = hits.trailing_zeros() as usize / 8;
                hits &= hits - 1;
                let c = (raw >> (8 * b)) as u8;
                // The first hit is exact; later ones may be borrow
                // artefacts of `zero_bytes`.
                if c & PROBE_MASK != pattern {
                    continue;
                }
                let slot = wi * GROUP + b;
                // SAFETY: `c` is non-empty (Acquire); `t` lives for `'g`.
                if unsafe { t.key(slot) }.borrow() == key {
                    if state(c) >= MOVED {
                        moved = true;
                        break 'probe;
                    }
                    // SAFETY: `c` is live (Acquire); `table` lives for `'g`.
                    return Some(unsafe { Found::at(table, slot, c) });
                }
            }
            if empty != 0 {
                break;
            }
            wi = (wi + 1) & (words - 1);
            // Acquire: as above.
            raw = t.ctrl[wi].load(Ordering::Acquire);
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

/// Whether `key` has a live or moved slot in `table` itself (its `next`
/// not consulted). Lock-free; runs `Eq`.
pub(super) fn in_table<K: Eq, V>(table: &Table<K, V>, hash: u64, key: &K) -> bool {
    let tag = tag(hash);
    let mut i = hash as usize & table.mask;
    for _ in 0..table.len() {
        let c = table.ctrl(i);
        if c == EMPTY {
            return false;
        }
        // SAFETY: non-empty (Acquire); the caller keeps `table` alive.
        if c & TAG_MASK == tag && state(c) >= FULL && unsafe { table.key(i) } == key {
            return true;
        }
        i = (i + 1) & table.mask;
    }
    false
}

/// One shard of the map.
pub(super) struct Shard<K, V> {
    /// The current table; never null while the shard is reachable.
    table: Atomic<Table<K, V>>,
    /// Slot count of the table `clear` installs.
    initial: usize,
    /// The writer-side state, on its own cache line.
    w: CachePadded<ShardWriters<K, V>>,
}

/// A shard's writer-side state.
struct ShardWriters<K, V> {
    lock: ShardLock,
    /// Insertions of new keys committed in this shard (wrapping). Bumped
    /// with Release after the new entry is published; see `commit`.
    inserts: AtomicUsize,
    /// Live entries. Written under the lock, read anywhere (Relaxed).
    len: AtomicUsize,
    /// While growing: live slots of the old table not yet moved out (room
    /// the new table keeps for them). Under the lock.
    pending: AtomicUsize,
    /// Retired keys, values and tables waiting for readers to leave. Under
    /// the lock.
    graves: UnsafeCell<Graveyard<K, V>>,
}

// SAFETY: the graveyard is touched only under the shard lock (or with
// `&mut`), which serialises its users; what it holds is `Send` (see
// `Grave`). The rest is atomics and epoch pointers to `Send + Sync` tables.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Shard<K, V> {}

/// What a writer decided to do, computed before it locks.
pub(super) enum Plan<K, V> {
    /// Store this value for this key (replacing the found one, or as a new
    /// key).
    Put(K, V),
    /// Remove the found entry.
    Remove,
}

/// Why a commit did not happen; the plan comes back.
pub(super) enum Stale<K, V> {
    /// Something the writer read changed: look again.
    Changed(Plan<K, V>),
    /// The shard must finish migrating first: help, then look again.
    Migrate(Plan<K, V>),
}

/// A committed write: the entry it published, and the caller's key if the
/// shard kept its own copy (to be dropped outside the lock).
pub(super) struct Committed<'g, K, V> {
    pub(super) new: Option<(&'g K, &'g V)>,
    pub(super) spare_key: Option<K>,
}

/// A clone of an old-table entry, made outside the lock for migration.
struct Moving<K, V> {
    index: usize,
    ctrl: u8,
    hash: u64,
    key: K,
    value: V,
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
                pending: AtomicUsize::new(0),
                graves: UnsafeCell::new(Graveyard::new()),
            }),
        })
    }

    /// The current table.
    #[inline]
    pub(super) fn table<'g>(&self, guard: &'g Guard) -> Shared<'g, Table<K, V>> {
        // Acquire pairs with the Release stores in `help_migrate` and
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

    /// Whether the current table is migrating.
    #[inline]
    pub(super) fn growing(&self, guard: &Guard) -> bool {
        // SAFETY: the current table is alive under `guard`.
        !unsafe { self.table(guard).deref() }.next(guard).is_null()
    }

    fn add_len(&self, delta: isize) {
        let len = self.w.len.load(Ordering::Relaxed);
        self.w
            .len
            .store(len.wrapping_add_signed(delta), Ordering::Relaxed);
    }

    /// While growing, one fewer old live slot is waiting to move.
    fn moved_out(&self) {
        let p = self.w.pending.load(Ordering::Relaxed);
        debug_assert!(p > 0);
        self.w.pending.store(p - 1, Ordering::Relaxed);
    }

    /// Commits `plan` for the key with `hash`, found at `found` (or absent,
    /// with the insert counter read as `inserts` before the lookup).
    pub(super) fn commit<'g>(
        &self,
        hash: u64,
        found: Option<Found<'g, K, V>>,
        inserts: usize,
        plan: Plan<K, V>,
        guard: &'g Guard,
    ) -> Result<Committed<'g, K, V>, Stale<K, V>> {
        let lock = self.w.lock.lock();
        // SAFETY: the lock is held until after the last use.
        let graves = unsafe { self.graves() };
        let r = self.commit_locked(hash, found, inserts, plan, graves, guard);
        let mut dead = Dead::none();
        graves.seal_and_sweep(guard, &mut dead);
        drop(lock);
        dead.bury(guard);
        r
    }

    /// Retired items waiting for readers to leave (a point-in-time count,
    /// taken under the lock).
    #[cfg(test)]
    pub(super) fn graves_waiting(&self) -> usize {
        let _lock = self.w.lock.lock();
        // SAFETY: the lock is held while the reference lives.
        unsafe { self.graves() }.len()
    }

    /// The graveyard.
    ///
    /// # Safety
    ///
    /// The shard lock is held (or the shard is `&mut`) for as long as the
    /// reference lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn graves(&self) -> &mut Graveyard<K, V> {
        // SAFETY: the caller's contract: the lock serialises every access.
        self.w.graves.with_mut(|g| unsafe { &mut *g })
    }

    /// [`commit`](Self::commit), lock held.
    #[inline(always)]
    fn commit_locked<'g>(
        &self,
        hash: u64,
        found: Option<Found<'g, K, V>>,
        inserts: usize,
        plan: Plan<K, V>,
        graves: &mut Graveyard<K, V>,
        guard: &'g Guard,
    ) -> Result<Committed<'g, K, V>, Stale<K, V>> {
        // Relaxed: under the lock we see every write of previous holders.
        let cur = self.table.load(Ordering::Relaxed, guard);
        // SAFETY: the current table is alive under `guard`.
        let c = unsafe { cur.deref() };
        let mut next = c.next.load(Ordering::Relaxed, guard);
        let Some(f) = found else {
            // Only the insertion of a new key can make an absent key
            // present.
            if self.w.inserts.load(Ordering::Relaxed) != inserts {
                return Err(Stale::Changed(plan));
            }
            let Plan::Put(key, value) = plan else {
                return Ok(Committed {
                    new: None,
                    spare_key: None,
                });
            };
            if next.is_null() && c.over_threshold(1) {
                next = self.start_growth(c, guard);
            }
            let t = if next.is_null() {
                c
            } else {
                // SAFETY: the current table's next is alive.
                let n = unsafe { next.deref() };
                if n.over_threshold(self.w.pending.load(Ordering::Relaxed) + 1) {
                    return Err(Stale::Migrate(Plan::Put(key, value)));
                }
                n
            };
            let i = t.place(hash, key, value);
            self.add_len(1);
            // Release: pairs with `inserts()`; after the entry's control
            // byte store, so a writer that reads the new count finds it.
            self.w
                .inserts
                .store(inserts.wrapping_add(1), Ordering::Release);
            // SAFETY: just published in a table alive under `guard`.
            let kv = unsafe { (t.key(i), t.inline_value(i)) };
            return Ok(Committed {
                new: Some(kv),
                spare_key: None,
            });
        };
        // The key was found: valid iff its table is still reachable and its
        // slot still holds the value the writer saw (slots and arena cells
        // are write-once, so equal versions mean the same value).
        if f.table != cur && f.table != next {
            return Err(Stale::Changed(plan));
        }
        // SAFETY: reachable from the shard, so alive under `guard`.
        let t = unsafe { f.table.deref() };
        // Relaxed: written under the lock we hold.
        let cb = t.ctrl_locked(f.index);
        if !is_live(cb) || t.version(f.index, cb) != f.version {
            return Err(Stale::Changed(plan));
        }
        let in_old = !next.is_null() && f.table == cur;
        let (key, value) = match plan {
            Plan::Remove => {
                // Release: orders the removal before later stores (readers
                // need nothing from a removed slot).
                t.set_ctrl(f.index, ctrl(DELETED, cb & TAG_MASK));
                self.add_len(-1);
                if in_old {
                    self.moved_out();
                }
                if needs_drop::<K>() || needs_drop::<V>() {
                    // The grave holds a table reference. Relaxed: the table
                    // is alive (we hold the shard's reference under the
                    // lock), and `release` orders the drops.
                    t.refs.fetch_add(1, Ordering::Relaxed);
                    // The slot's key and current value are unreachable for
                    // readers that load it from now on; the grave waits for
                    // the earlier ones.
                    graves.bury(Retired::Removed(f.table.as_raw(), f.index, f.version));
                }
                return Ok(Committed {
                    new: None,
                    spare_key: None,
                });
            }
            Plan::Put(key, value) => (key, value),
        };
        // A replaced value goes to the arena of the key's table when it is
        // not an old table being migrated; otherwise (or with the arena
        // used up) the key moves on to the next table.
        if !in_old && !t.arena_full() {
            let v = t.replace(f.table, f.index, cb, value, graves);
            return Ok(Committed {
                new: Some((f.key, v)),
                spare_key: Some(key),
            });
        }
        if next.is_null() {
            // Not growing and the arena is used up: rebuild.
            next = self.start_growth(c, guard);
        } else if !in_old {
            // The next table's arena is used up: it must become current
            // (and so able to grow) first.
            return Err(Stale::Migrate(Plan::Put(key, value)));
        }
        // SAFETY: the current table's next is alive.
        let n = unsafe { next.deref() };
        // Our key leaves the old table: it no longer needs reserved room.
        if n.over_threshold(self.w.pending.load(Ordering::Relaxed)) {
            return Err(Stale::Migrate(Plan::Put(key, value)));
        }
        let j = n.place(hash, key, value);
        // Release: after the new entry is published, so a reader that
        // follows MOVED (Acquire) finds it.
        t.set_ctrl(f.index, moved(cb));
        self.moved_out();
        // SAFETY: just published in a table alive under `guard`.
        let kv = unsafe { (n.key(j), n.inline_value(j)) };
        Ok(Committed {
            new: Some(kv),
            spare_key: None,
        })
    }

    /// Entries the shard holds before it must grow (or, while growing,
    /// before its next table must): its live entries plus the new keys its
    /// newest table still has room for. May be stale under concurrency.
    pub(super) fn capacity(&self, guard: &Guard) -> usize {
        // SAFETY: the current table and its next are alive under `guard`.
        let c = unsafe { self.table(guard).deref() };
        let next = c.next(guard);
        // Relaxed: a point-in-time observer of writer-side counters.
        let (newest, reserved) = if next.is_null() {
            (c, 0)
        } else {
            // SAFETY: as above.
            (
                unsafe { next.deref() },
                self.w.pending.load(Ordering::Relaxed),
            )
        };
        let used = newest.w.occupied.load(Ordering::Relaxed) + reserved;
        self.len() + newest.capacity().saturating_sub(used)
    }

    /// Rebuilds the shard into a table of `target(slots, live)` slots when
    /// that returns one (`slots`: the current table's, `live`: the live
    /// entries), and migrates it completely before returning: the sizing
    /// half of `try_reserve` and `shrink_to_fit`. The new table is
    /// allocated outside the lock; a failed allocation changes nothing.
    /// Runs `Hash` and `Clone` (migration).
    pub(super) fn rebuild<H, F>(
        &self,
        hasher: &H,
        guard: &Guard,
        mut target: F,
    ) -> Result<(), TryReserveError>
    where
        H: HashKey<K> + ?Sized,
        F: FnMut(&Table<K, V>, usize) -> Result<Option<usize>, TryReserveError>,
        K: Clone,
        V: Clone,
    {
        loop {
            self.finish_migration(hasher, guard);
            let cur = self.table(guard);
            // SAFETY: the current table is alive under `guard`.
            let c = unsafe { cur.deref() };
            let Some(slots) = target(c, self.len())? else {
                return Ok(());
            };
            let new = Table::try_new(slots)?;
            let lock = self.w.lock.lock();
            // Relaxed: under the lock.
            let still = self.table.load(Ordering::Relaxed, guard) == cur
                && c.next.load(Ordering::Relaxed, guard).is_null();
            let live = self.w.len.load(Ordering::Relaxed);
            if !still || new.capacity() < live {
                // A concurrent writer got in first: size again.
                drop(lock);
                drop(new);
                continue;
            }
            self.w.pending.store(live, Ordering::Relaxed);
            let n = Owned::new(new).into_shared(guard);
            // Release pairs with `Table::next`'s Acquire (see `start_growth`).
            c.next.store(n, Ordering::Release);
            drop(lock);
            self.finish_migration(hasher, guard);
            return Ok(());
        }
    }

    /// Helps the current migration, if any, until it is done.
    fn finish_migration<H: HashKey<K> + ?Sized>(&self, hasher: &H, guard: &Guard)
    where
        K: Clone,
        V: Clone,
    {
        while self.growing(guard) {
            self.help_migrate(hasher, guard);
        }
    }

    /// Allocates the table `c` (current, not growing) migrates into and
    /// returns it. Lock held.
    fn start_growth<'g>(&self, c: &Table<K, V>, guard: &'g Guard) -> Shared<'g, Table<K, V>> {
        let live = self.w.len.load(Ordering::Relaxed);
        // Room for twice the live keys: the live keys move in (reserved
        // through `pending`) and at least as many new ones fit.
        let cap = ((live + 1) * 2).next_power_of_two();
        self.w.pending.store(live, Ordering::Relaxed);
        let n = Owned::new(Table::new(cap)).into_shared(guard);
        // Release pairs with `Table::next`'s Acquire: the new table's
        // empty slots are initialised before anyone probes it.
        c.next.store(n, Ordering::Release);
        n
    }

    /// During growth, migrates one chunk of the current table: clones its
    /// live entries outside the lock, then installs the clones of the slots
    /// that did not change meanwhile. Runs `Hash` and `Clone`.
    pub(super) fn help_migrate<H: HashKey<K> + ?Sized>(&self, hasher: &H, guard: &Guard)
    where
        K: Clone,
        V: Clone,
    {
        let cur = self.table(guard);
        // SAFETY: the current table is alive under `guard`.
        let c = unsafe { cur.deref() };
        let next = c.next(guard);
        if next.is_null() {
            return;
        }
        // Relaxed: a hint; checked again under the lock.
        let start = c.w.migrated.load(Ordering::Relaxed);
        let end = (start + MIGRATE_CHUNK).min(c.len());
        let mut batch: [Option<Moving<K, V>>; MIGRATE_CHUNK] = [const { None }; MIGRATE_CHUNK];
        for (i, b) in (start..end).zip(batch.iter_mut()) {
            let cb = c.ctrl(i);
            if is_live(cb) {
                // SAFETY: live (Acquire); `c` is alive under `guard`. While
                // growing, an old slot's value never changes (replacements
                // go to the next table), so this is its current value.
                let (k, v) = unsafe { (c.key(i), c.value(i, cb).0) };
                *b = Some(Moving {
                    index: i,
                    ctrl: cb,
                    hash: hasher.hash_key(k),
                    key: k.clone(),
                    value: v.clone(),
                });
            }
        }
        let lock = self.w.lock.lock();
        // SAFETY: the lock is held until after the last use.
        let graves = unsafe { self.graves() };
        // Relaxed: under the lock.
        if self.table.load(Ordering::Relaxed, guard) == cur
            && c.w.migrated.load(Ordering::Relaxed) == start
        {
            // SAFETY: the current table's next is alive.
            let n = unsafe { next.deref() };
            for b in batch.iter_mut() {
                let Some(m) = b.take_if(|m| {
                    // Relaxed: under the lock.
                    c.ctrl_locked(m.index) == m.ctrl
                }) else {
                    continue;
                };
                n.place(m.hash, m.key, m.value);
                // Release: after the entry is published in `next`, so a
                // reader that follows MOVED (Acquire) finds it.
                c.set_ctrl(m.index, moved(m.ctrl));
                self.moved_out();
            }
            c.w.migrated.store(end, Ordering::Relaxed);
            if end == c.len() {
                debug_assert_eq!(self.w.pending.load(Ordering::Relaxed), 0);
                // Release pairs with `Shard::table`'s Acquire.
                self.table.store(next, Ordering::Release);
                // The old table is unlinked; readers still in it are
                // pinned. Releasing the shard's reference waits for them.
                retire_table(cur.as_raw(), graves, guard);
            }
        }
        let mut dead = Dead::none();
        graves.seal_and_sweep(guard, &mut dead);
        drop(lock);
        // Clones that went stale (the slot changed meanwhile) and raised
        // graves drop here, outside the lock.
        drop(batch);
        dead.bury(guard);
    }

    /// Removes every entry: installs a fresh table and releases the old
    /// table(s). Returns how many entries it removed.
    pub(super) fn clear(&self, guard: &Guard) -> usize {
        let lock = self.w.lock.lock();
        let old = self.table.load(Ordering::Relaxed, guard);
        // Release pairs with `Shard::table`'s Acquire.
        self.table
            .store(Owned::new(Table::new(self.initial)), Ordering::Release);
        let removed = self.w.len.load(Ordering::Relaxed);
        self.w.len.store(0, Ordering::Relaxed);
        self.w.pending.store(0, Ordering::Relaxed);
        // SAFETY: the lock is held until after the last use.
        let graves = unsafe { self.graves() };
        // `old` is unlinked (writers validate reachability from the shard
        // before they touch a slot); readers still in it are pinned, and
        // the graves wait for them. Each table of the chain gets its shard
        // reference released once.
        // SAFETY: the old table is alive under `guard`. Relaxed: under the
        // lock.
        let next = unsafe { old.deref() }.next.load(Ordering::Relaxed, guard);
        for t in [old, next] {
            if !t.is_null() {
                retire_table(t.as_raw(), graves, guard);
            }
        }
        let mut dead = Dead::none();
        graves.seal_and_sweep(guard, &mut dead);
        drop(lock);
        dead.bury(guard);
        removed
    }
}

impl<K, V> Drop for Shard<K, V> {
    fn drop(&mut self) {
        // No reader can hold anything of the map any more (every view
        // borrows it): every grave drops now, raised or not, so nothing of
        // `K` or `V` is dropped after the map.
        // SAFETY: `&mut self`.
        unsafe { self.graves() }.drain();
        // SAFETY: `&mut self`: no reader or writer can reach this shard; the
        // current table and its next each hold the shard's reference, which
        // we release once (the graves released their own above).
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let t = self.table.load(Ordering::Relaxed, guard);
            let next = t.deref().next.load(Ordering::Relaxed, guard);
            Table::release(t.as_raw());
            if !next.is_null() {
                Table::release(next.as_raw());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::{String, ToString};

    use super::*;

    /// A reader holds `&K` into a bucket (it looked the key up after the
    /// value was replaced, so its grave does not wait for it) while the
    /// replaced inline value beside the key is dropped. The drop must touch
    /// the value's bytes only: under Stacked Borrows a `&mut` to the whole
    /// bucket would invalidate the reader's `&K` (run this under Miri
    /// without Tree Borrows).
    #[test]
    fn dropping_a_replaced_value_leaves_readers_key_valid() {
        // SAFETY: the table is reachable from this thread only.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let table = Owned::new(Table::<String, String>::new(4)).into_shared(guard);
        // SAFETY: just allocated, alive until `release` below.
        let t = unsafe { table.deref() };
        let i = t.place(7, "key".to_string(), "old".to_string());
        let c = t.ctrl_locked(i);
        // SAFETY: slot `i` was just published as FULL; `t` outlives `key`.
        let key = unsafe { t.key(i) };
        let mut graves = Graveyard::new();
        t.replace(table, i, c, "new".to_string(), &mut graves);
        // Drops the replaced value now, as a raised grave would.
        graves.drain();
        assert_eq!(key, "key");
        // SAFETY: the slot is live (FULL_OVF now, loaded under "the lock").
        let (value, _) = unsafe { t.value(i, t.ctrl_locked(i)) };
        assert_eq!(value, "new");
        // SAFETY: our one reference, taken by `new`; nothing uses `t` after.
        unsafe { Table::release(table.as_raw()) };
    }
}
