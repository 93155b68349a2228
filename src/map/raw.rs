//! One shard: an epoch-managed open-addressing table of pointers to
//! boxed entries, its writer lock and counters; and the lock-free lookup
//! shared by readers and writers.
//!
//! # Layout
//!
//! A [`Table`] has, per slot, a control byte (state and a 5-bit hash tag,
//! SwissTable style) and a pointer to a [`Node`]: a heap cell holding one
//! key and one value. Slots come in groups of `GROUP - 1` (7 on 64-bit
//! targets): one control word (a byte per slot, the last byte a permanent
//! sentinel) and the group's pointers, one cache line in all. So a lookup
//! reads one line for the control bytes *and* the pointer of the slot whose
//! tag matches, then the node: two dependent reads, not three.
//!
//! A node never moves and is never written after it is published: a new
//! value for a present key is a new node (with the caller's key), swapped
//! into the slot by one pointer store. So growth moves *pointers*, never
//! keys or values (no `Clone`, no bitwise copy that a reader holding `&V`,
//! or a value with interior mutability, could observe), and a reader
//! always sees a whole node, old or new.
//!
//! # Ground rules
//!
//! - **Slot states.** `EMPTY` ends a probe. `FULL` is live: the slot owns
//!   the node its pointer names. `DELETED` is removed (probes continue
//!   past it; a later insert may reuse it). `MOVED`: the key's node now
//!   lives in the table's `next` table (the pointer left behind still
//!   names it, owned by `next`). States go `EMPTY -> FULL`, from `FULL` to
//!   `DELETED` or `MOVED`, and `DELETED -> FULL` (reuse, never in a table
//!   that is migrating: new keys go to its `next`); `MOVED` is final. A
//!   reused slot's pointer is stored with Release *before* its control
//!   byte: a reader that saw the byte `FULL` for the removed entry and
//!   loads the pointer late gets the new node, whole (it then compares the
//!   key, as for any tag match).
//! - **`FULL -> EMPTY`** on removal, when the slot after it on a probe is
//!   `EMPTY`. No lookup of a present key is cut short by it: every slot
//!   from a key's home to its slot was taken when the key was placed, and
//!   none of them can become `EMPTY` while the key stays (by induction
//!   from the key's end of the run: the slot just before the key has the
//!   key after it, the one before that a taken slot, and so on). A lookup
//!   of a key absent or inserted meanwhile may stop there: it returns
//!   `None`, which is a linearizable answer for it.
//! - **A key is live in at most one slot** over all tables of a shard; that
//!   slot is its authoritative location. A key's slot index never changes
//!   within a table (a replacement swaps the pointer in place), which is
//!   what makes iteration exactly-once for keys present throughout.
//! - **Writers hold the shard lock** for every control byte, pointer,
//!   `next` and `table` store, and run no user code under it (no `Hash`,
//!   `Eq`, closure or `Drop`). User code runs before the lock (finding the
//!   key, hashing entries to migrate) or after it (dropping graves).
//! - **Only `FULL` slots' nodes are read by lookups.** A `MOVED` slot's
//!   node is read only by iteration (`iter.rs`, `in_table`), which is safe
//!   because graves are not sealed while their shard grows (see
//!   "Reclamation").
//!
//! # Growth
//!
//! A table grows (or is rebuilt at the same size, when it is full of removed
//! slots) into a `next` table sized for twice the live entries. While it
//! migrates, new keys and replaced values go to `next`; every committed
//! write then moves up to [`MIGRATE_CHUNK`] old slots, so no single write
//! pays for a whole table; so does a lookup that had to look in both
//! tables, for one key in 1,024 ([`ASSIST_KEYS`]) and if the shard's lock
//! is free (it only *tries* the lock: a reader never waits), so a
//! read-mostly shard does not stay in two tables for good, while a
//! reader's latency seldom pays for a chunk. Moving a slot hashes its key
//! outside the lock, then, under it, if
//! the slot still holds the same node, publishes the node's pointer in
//! `next` and marks the old slot `MOVED`. Readers look in the old table,
//! then in `next`.
//!
//! # Reclamation
//!
//! A removed or replaced node, and an unlinked table, go to the shard's
//! graveyard (`grave.rs`), which drops them once the epoch shows no reader
//! can hold them. Graves buried while the shard grows are sealed only once
//! the old table is unlinked: a reader (an iterator) that reads a node
//! through an old table's `MOVED` slot pinned while that table was
//! reachable, so it pinned before the seal and the ticket waits for it.
//! A table drops the nodes of its `FULL` slots when it is dropped; a
//! migrated table has none left.

use alloc::boxed::Box;
use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem::needs_drop;
use core::ptr;

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use super::grave::{Dead, Graveyard, Retired};
use super::lock::ShardLock;
use super::slab::Slab;
use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering, UnsafeCell};

/// Smallest table (slots).
pub(super) const MIN_TABLE: usize = if GROUP > 4 { GROUP } else { 4 };

/// Slots (a power of two, sentinels included) of the smallest table that
/// holds `entries` below its growth threshold; `None` on overflow.
pub(super) fn slots_for(entries: usize) -> Option<usize> {
    // Usable slots for 3/4 of them to hold `entries`, then whole groups.
    let usable = entries.checked_mul(4)? / 3 + 1;
    usable
        .div_ceil(SLOTS)
        .checked_mul(GROUP)?
        .max(MIN_TABLE)
        .checked_next_power_of_two()
}

/// Old-table slots a write migrates during growth: the migration work one
/// write may be charged (its rehashes), and so the tail of insert latency.
#[cfg(not(latchfree_loom))]
pub(super) const MIGRATE_CHUNK: usize = 16;
#[cfg(latchfree_loom)]
pub(super) const MIGRATE_CHUNK: usize = 1;

/// A lookup that had to look in two tables moves a migration chunk only
/// if these hash bits (37..47: above the tag's 32..37 and below the
/// shard index, which takes at most bits 48..64 with `MAX_SHARDS` = 2^16;
/// the table index uses low bits) are all zero: one key in 1,024. A chunk costs a reader a
/// few microseconds (each of its keys hashed, each moved into the new
/// table: two likely misses per slot); paid on every such lookup, it set
/// the readers' p99 while a writer grows the map (about twice the p99 of
/// a map nobody writes, in the shootout's growth row). One key in 1,024
/// still finishes a read-only shard's migration, and no longer shows at
/// p99.9. Loom: every such lookup, so its models race the reader's chunk
/// with the writer's.
#[cfg(not(latchfree_loom))]
pub(super) const ASSIST_KEYS: u64 = 0x3FF << 37;
#[cfg(latchfree_loom)]
pub(super) const ASSIST_KEYS: u64 = 0;

/// Control byte: state in the top three bits, hash tag in the low five.
const TAG_BITS: u32 = 5;
const TAG_MASK: u8 = (1 << TAG_BITS) - 1;
const EMPTY: u8 = 0;
const DELETED: u8 = 1;
const MOVED: u8 = 2;
const FULL: u8 = 4;

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

/// Control bytes per control word (slot indices per group).
const GROUP: usize = core::mem::size_of::<usize>();
/// Usable slots per group: the last byte of each control word is a
/// sentinel, so that a group (its word and its pointers) is one cache line
/// on 64-bit targets (8 + 7 * 8 = 64 bytes; 4 + 3 * 4 = 16 on 32-bit).
const SLOTS: usize = GROUP - 1;
/// A fresh control word: every slot `EMPTY`, the sentinel byte `DELETED`
/// for good (never empty, never live: probes pass it, nothing is placed
/// there, no lookup reads a pointer for it).
const FRESH: usize = (DELETED as usize) << (TAG_BITS + 8 * SLOTS as u32);
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

/// High bit set in each byte of `v` that is `EMPTY` or `DELETED` (state
/// bits `000` or `001`), the sentinel excluded: the slots an insert may
/// take. Exact for every byte (no borrows).
#[inline]
fn free_bytes(v: usize) -> usize {
    // Bits 7 and 6 of each byte both clear (`v << 1` brings bit 6 up to
    // bit 7 of the same byte).
    !v & !(v << 1) & MSB & !(MSB << (8 * SLOTS))
}

#[inline]
fn is_live(c: u8) -> bool {
    state(c) == FULL
}

/// One entry: a key and its value, boxed so that growth moves a pointer.
pub(super) struct Node<K, V> {
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

/// `SLOTS` slots: their control word and their node pointers, one cache
/// line (see the module docs).
#[repr(C)]
#[cfg_attr(target_pointer_width = "64", repr(align(64)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(align(16)))]
struct Group<K, V> {
    /// Control bytes, so a probe reads a whole run of slots in one load;
    /// slot `i` of the table is byte `i % GROUP` (counting from the low
    /// end) of group `i / GROUP`'s word; byte `SLOTS` is the sentinel.
    /// Written only under the lock, whole.
    ctrl: AtomicUsize,
    /// Per slot: its node (null while `EMPTY`). Stored under the lock:
    /// before the control byte is published, or (replacement) with Release.
    nodes: [AtomicPtr<Node<K, V>>; SLOTS],
}

impl<K, V> Group<K, V> {
    fn new() -> Self {
        Self {
            ctrl: AtomicUsize::new(FRESH),
            nodes: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }
}

/// An open-addressing (linear probing) table; see the module docs.
pub(super) struct Table<K, V> {
    /// `len - 1`; `len` (slot indices, sentinels included) is a power of
    /// two >= [`MIN_TABLE`].
    mask: usize,
    /// `len / GROUP` groups.
    groups: Box<[Group<K, V>]>,
    /// The table this one migrates into; null when not growing. Set once
    /// (under the lock), never cleared while this table is reachable.
    next: Atomic<Table<K, V>>,
    /// Writer-only counters, on their own cache line (readers load the
    /// fields above on every probe).
    w: CachePadded<TableCounters>,
}

/// A table's writer-side counters.
struct TableCounters {
    /// Non-`EMPTY` slots. Under the lock.
    occupied: AtomicUsize,
    /// Migration cursor: slots below it are migrated. Written under the
    /// lock; read outside it as a hint (checked again under the lock).
    migrated: AtomicUsize,
}

// SAFETY: a table owns the nodes of its `FULL` slots (dropped on whatever
// thread frees it: `Send`), and shares `&K`/`&V` with every reader
// (`Sync`). Nodes are written only before publication (module docs).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Table<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send, V: Send> Send for Table<K, V> {}

impl<K, V> Table<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        let len = capacity.max(MIN_TABLE).next_power_of_two();
        Self {
            mask: len - 1,
            groups: (0..len / GROUP).map(|_| Group::new()).collect(),
            next: Atomic::null(),
            w: CachePadded::new(TableCounters {
                occupied: AtomicUsize::new(0),
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
        Ok(Self {
            mask: len - 1,
            groups: try_boxed(len / GROUP, Group::new)?,
            next: Atomic::null(),
            w: CachePadded::new(TableCounters {
                occupied: AtomicUsize::new(0),
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

    /// Entries the table takes before it must grow: 3/4 of its usable
    /// slots.
    #[inline]
    pub(super) fn capacity(&self) -> usize {
        self.usable() / 4 * 3 + self.usable() % 4 * 3 / 4
    }

    /// Slots that can hold an entry (sentinels excluded).
    #[inline]
    fn usable(&self) -> usize {
        self.groups.len() * SLOTS
    }

    /// The first slot of `hash`'s probe sequence: its group from the low
    /// bits, then a byte of that group other than the sentinel (`i % GROUP
    /// < SLOTS` for the slot `i` returned; `find` relies on it).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        let h = hash as usize & self.mask;
        let home = (h & !(GROUP - 1)) | ((h & (GROUP - 1)) * SLOTS / GROUP);
        debug_assert!(home % GROUP < SLOTS);
        home
    }

    /// The pointer cell of slot `i` (not a sentinel).
    #[inline]
    fn slot(&self, i: usize) -> &AtomicPtr<Node<K, V>> {
        &self.groups[i / GROUP].nodes[i % GROUP]
    }

    /// Whether a control byte is live (`FULL`).
    #[inline]
    pub(super) fn is_live_ctrl(c: u8) -> bool {
        is_live(c)
    }

    /// Whether a control byte is `MOVED`.
    #[inline]
    pub(super) fn is_moved_ctrl(c: u8) -> bool {
        state(c) == MOVED
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
    /// writers' Release stores, so a published slot's node is visible.
    #[inline]
    pub(super) fn ctrl(&self, i: usize) -> u8 {
        (self.groups[i / GROUP].ctrl.load(Ordering::Acquire) >> (8 * (i % GROUP))) as u8
    }

    /// The control byte of slot `i`, lock held (or `&mut`).
    #[inline]
    fn ctrl_locked(&self, i: usize) -> u8 {
        // Relaxed: control words are written only under the lock.
        (self.groups[i / GROUP].ctrl.load(Ordering::Relaxed) >> (8 * (i % GROUP))) as u8
    }

    /// Sets the control byte of slot `i` to `c` with a `Release` store of
    /// its word (readers' Acquire loads pair with it). Lock held.
    #[inline]
    fn set_ctrl(&self, i: usize, c: u8) {
        let word = &self.groups[i / GROUP].ctrl;
        let shift = 8 * (i % GROUP);
        // Relaxed: only lock holders write the word.
        let w = word.load(Ordering::Relaxed);
        word.store(
            (w & !(0xFF << shift)) | (usize::from(c) << shift),
            Ordering::Release,
        );
    }

    /// The node of slot `i`, loaded with Acquire: pairs with the Release
    /// store of a replacement, so the new node's contents are visible.
    #[inline]
    fn node(&self, i: usize) -> *mut Node<K, V> {
        self.slot(i).load(Ordering::Acquire)
    }

    /// The node of slot `i`, lock held (or `&mut`).
    #[inline]
    fn node_locked(&self, i: usize) -> *mut Node<K, V> {
        // Relaxed: slot pointers are written only under the lock.
        self.slot(i).load(Ordering::Relaxed)
    }

    /// The key of a `FULL` or `MOVED` slot.
    ///
    /// # Safety
    ///
    /// The slot's control byte was seen `FULL` (with Acquire, or under the
    /// lock), or `MOVED` by a reader that has been pinned since the table
    /// was reachable from its shard (see "Reclamation"); the reference
    /// must not outlive the caller's guard.
    #[inline]
    pub(super) unsafe fn key(&self, i: usize) -> &K {
        // SAFETY: the node was published before the control byte that the
        // caller saw, and its grave (if any) waits for the caller's guard.
        unsafe { &(*self.node(i)).key }
    }

    /// Publishes `node` at the first free (`EMPTY` or `DELETED`) slot on
    /// `hash`'s probe sequence, which then owns it, and returns the slot;
    /// lock held, the table not migrating. The caller made sure an empty
    /// slot exists (occupancy below the threshold).
    fn place(&self, hash: u64, node: *mut Node<K, V>) -> usize {
        let home = self.home(hash);
        let words = self.groups.len();
        let mut wi = home / GROUP;
        // Bytes before `home` in its word read as taken.
        let mut skip = (1usize << (8 * (home % GROUP))) - 1;
        loop {
            // SAFETY: `home <= mask`, so `home / GROUP < words`; later
            // indices are masked by `words - 1` (a power of two).
            let g = unsafe { self.groups.get_unchecked(wi) };
            // Relaxed: control words are written only under the lock, so
            // this is the word's current value.
            let word = g.ctrl.load(Ordering::Relaxed);
            let free = free_bytes(word) & !(skip & MSB);
            if free != 0 {
                let b = free.trailing_zeros() as usize / 8;
                let was = (word >> (8 * b)) as u8;
                debug_assert!(b < SLOTS && matches!(state(was), EMPTY | DELETED));
                // SAFETY: `b < SLOTS`: `free_bytes` never flags the
                // sentinel.
                let slot = unsafe { g.nodes.get_unchecked(b) };
                // Release: a reader that saw this slot `FULL` before its
                // entry was removed may still load the pointer (a reused
                // `DELETED` slot): it must see the new node whole. (An
                // `EMPTY` slot's pointer no reader loads.)
                slot.store(node, Ordering::Release);
                // Release: publishes the pointer and the node to readers'
                // Acquire loads of the control word.
                g.ctrl.store(
                    (word & !(0xFF << (8 * b))) | (usize::from(ctrl(FULL, tag(hash))) << (8 * b)),
                    Ordering::Release,
                );
                if state(was) == EMPTY {
                    self.w.occupied.store(
                        self.w.occupied.load(Ordering::Relaxed) + 1,
                        Ordering::Relaxed,
                    );
                }
                return wi * GROUP + b;
            }
            skip = 0;
            wi = (wi + 1) & (words - 1);
        }
    }

    /// Empties the live slot `i` of a removed entry: `EMPTY` again if the
    /// slot after it on a probe is `EMPTY` (then no probe passes through
    /// `i` to a key: see "Ground rules"), so churn does not use the table
    /// up; `DELETED` otherwise. Lock held.
    fn vacate(&self, i: usize, tag: u8) {
        let b = i % GROUP;
        // The slot after `i` on a probe: the next byte, or (after a
        // group's last usable slot) the first of the next group.
        let after = if b + 1 < SLOTS {
            self.ctrl_locked(i + 1)
        } else {
            self.ctrl_locked(((i / GROUP + 1) & (self.groups.len() - 1)) * GROUP)
        };
        if state(after) == EMPTY {
            // Release: orders the removal before later stores (readers
            // need nothing from a removed slot).
            self.set_ctrl(i, EMPTY);
            self.w.occupied.store(
                self.w.occupied.load(Ordering::Relaxed) - 1,
                Ordering::Relaxed,
            );
        } else {
            // Release: as above.
            self.set_ctrl(i, ctrl(DELETED, tag));
        }
    }

    /// Over 3/4 of the usable slots occupied, counting `extra` more.
    fn over_threshold(&self, extra: usize) -> bool {
        (self.w.occupied.load(Ordering::Relaxed) + extra) * 4 > self.usable() * 3
    }
}

impl<K, V> Table<K, V> {
    /// Drops the keys and values of the nodes its `FULL` slots own
    /// (removed and replaced nodes went to graves; moved ones belong to
    /// `next`), leaving their cells to the slab. Dropping a table frees
    /// only its own memory.
    ///
    /// # Safety
    ///
    /// `this` is exclusively ours; called once.
    pub(super) unsafe fn drop_nodes(this: *mut Self) {
        if needs_drop::<Node<K, V>>() {
            // SAFETY: the caller's contract.
            unsafe { Self::drop_slots(this, 0) };
        }
    }

    /// Gives the cells of its `FULL` slots' nodes (their keys and values
    /// dropped already) back to `slab`.
    ///
    /// # Safety
    ///
    /// As for [`Slab::free`], for each such node.
    pub(super) unsafe fn free_cells(&self, slab: &mut Slab<K, V>) {
        for i in 0..self.len() {
            if is_live(self.ctrl_locked(i)) {
                // SAFETY: the caller's contract.
                unsafe { slab.free(self.node_locked(i)) };
            }
        }
    }

    /// Drops the nodes slots `from..` still own (see `drop_nodes`). If a `Drop`
    /// of a key or value panics, the rest are still dropped while unwinding
    /// (a second panic aborts, as for a `Vec`).
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
        // node dropped here is owned by its FULL slot and dropped nowhere
        // else.
        unsafe {
            let len = (*this).len();
            let mut i = from;
            while i < len {
                let t = &*this;
                // A word at a time: one atomic load per `GROUP` slots
                // (this runs for every table freed).
                let word = t.groups[i / GROUP].ctrl.load(Ordering::Relaxed) >> (8 * (i % GROUP));
                let end = (i / GROUP + 1) * GROUP;
                let mut w = word;
                while i < end {
                    if is_live(w as u8) {
                        let rest = Rest(this, i + 1);
                        ptr::drop_in_place(t.node_locked(i));
                        core::mem::forget(rest);
                    }
                    w >>= 8;
                    i += 1;
                }
            }
        }
    }
}

/// Frees the unlinked table `t`, which owns no node (every one moved or
/// removed), once no reader can be in it. Dropping a table frees its own
/// memory only, which is fine at any later time, so the epoch frees it
/// directly, promptly and even after the map. Promptly is the point: a
/// map that stops being written right after it grew gives its old tables
/// back at the next pins, a reader's included (a large table's `munmap`
/// can then cost that reader a millisecond or more). Freed through the
/// graveyard instead (by writers only), a bulk-loaded map kept every
/// outgrown table until its next writes: 48.2 bytes per entry after 2^20
/// inserts instead of 32.2 (shootout, `MAPM=1`).
fn retire_table<K, V>(t: *mut Table<K, V>, guard: &Guard) {
    // SAFETY: the table is unlinked, and the epoch runs the closure after
    // every reader pinned before now is gone. Dropping it frees memory only
    // (it drops no `K` or `V` and touches no node), which stays sound after
    // the map and after any lifetime in `K` or `V` has ended. (The closure
    // keeps the pointer itself, not an integer: its provenance survives.)
    unsafe {
        guard.defer_unchecked(move || drop(Owned::from_raw(t)));
    }
}

/// Gives a raised grave's memory back: a node's cell to the slab; a
/// table's live nodes' cells to the slab, then the table's memory.
///
/// # Safety
///
/// The grave was raised (no reader can reach what it holds) and its keys
/// and values were dropped (see `Grave`), or need no drop; `slab` is the
/// shard's (lock held).
pub(super) unsafe fn recycle<K, V>(what: Retired<K, V>, slab: &mut Slab<K, V>) {
    match what {
        // SAFETY: the caller's contract.
        Retired::Node(n) => unsafe { slab.free(n) },
        // SAFETY: the caller's contract: the grave owned the table (from
        // `Owned`), and its live nodes' keys and values are dropped.
        Retired::Table(t) => unsafe {
            (*t).free_cells(slab);
            drop(Owned::from_raw(t));
        },
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

/// Where a lookup found a key: its live slot and its node.
pub(super) struct Found<'g, K, V> {
    pub(super) table: Shared<'g, Table<K, V>>,
    pub(super) index: usize,
    /// The node the slot held; a writer's commit checks it still does.
    node: *mut Node<K, V>,
    pub(super) key: &'g K,
    pub(super) value: &'g V,
}

impl<'g, K, V> Found<'g, K, V> {
    /// The entry `node` at slot `i` of `table`.
    ///
    /// # Safety
    ///
    /// `table` is alive for `'g`; `node` was loaded (Acquire) from slot
    /// `i` after its control byte was seen `FULL` (Acquire), and its grave,
    /// if any, waits for the guard of `'g`.
    #[inline(always)]
    unsafe fn new(table: Shared<'g, Table<K, V>>, i: usize, node: *mut Node<K, V>) -> Self {
        // SAFETY: the caller's contract: the node is published and alive
        // for `'g`, and never written again.
        let n: &'g Node<K, V> = unsafe { &*node };
        Self {
            table,
            index: i,
            node,
            key: &n.key,
            value: &n.value,
        }
    }

    /// The entry at slot `i` of `table`, whose control byte was loaded
    /// (Acquire) as the live `c`.
    ///
    /// # Safety
    ///
    /// `table` is alive for `'g` and `c` is live and was loaded from slot
    /// `i` with Acquire under the guard of `'g`.
    #[inline]
    pub(super) unsafe fn at(table: Shared<'g, Table<K, V>>, i: usize, c: u8) -> Self {
        debug_assert!(is_live(c));
        // SAFETY: the caller's contract.
        let t: &'g Table<K, V> = unsafe { table.deref() };
        // SAFETY: as above.
        unsafe { Self::new(table, i, t.node(i)) }
    }

    /// A pointer to the value. Dereferencing it mutably needs the map
    /// borrowed mutably (`get_mut`), so no reader or writer can reach it.
    #[inline]
    pub(super) fn value_ptr(&self) -> *mut V {
        // SAFETY: in bounds of a live node; no reference is made.
        unsafe { ptr::addr_of_mut!((*self.node).value) }
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
    table: Shared<'g, Table<K, V>>,
    hash: u64,
    key: &Q,
    guard: &'g Guard,
) -> Option<Found<'g, K, V>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    find_noting_growth(table, hash, key, guard, || ())
}

/// [`find`], calling `growing` each time the lookup goes on from a table
/// to the one it migrates into (so it paid for two tables).
#[inline(always)]
pub(super) fn find_noting_growth<'g, K, V, Q>(
    mut table: Shared<'g, Table<K, V>>,
    hash: u64,
    key: &Q,
    guard: &'g Guard,
    mut growing: impl FnMut(),
) -> Option<Found<'g, K, V>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    let pattern = ctrl(FULL, tag(hash));
    loop {
        // SAFETY: tables are loaded under `guard` and released through the
        // epoch only, so a table reached from the shard or from another
        // table's `next` outlives `guard`.
        let t: &'g Table<K, V> = unsafe { table.deref() };
        let home = t.home(hash);
        let (mut wi, off) = (home / GROUP, home % GROUP);
        // Acquire pairs with the writers' Release word stores: every node
        // a byte of this word publishes is visible.
        // SAFETY: `home <= mask` (see `Table::home`), so `wi` is below
        // `len / GROUP`, the number of groups.
        let mut g = unsafe { t.groups.get_unchecked(wi) };
        let mut raw = g.ctrl.load(Ordering::Acquire);
        // Fast path: most keys sit in their home slot, and most absent
        // keys find it empty.
        let c = (raw >> (8 * off)) as u8;
        if c == pattern {
            // SAFETY: `off < SLOTS`: `Table::home` never picks a group's
            // sentinel byte. Acquire: pairs with the Release store of a
            // replacement.
            let node = unsafe { g.nodes.get_unchecked(off) }.load(Ordering::Acquire);
            // SAFETY: FULL (Acquire); the node lives while `guard` does
            // (its grave waits for it).
            if unsafe { &(*node).key }.borrow() == key {
                // SAFETY: as above; `table` lives for `'g`.
                return Some(unsafe { Found::new(table, home, node) });
            }
        } else if c == EMPTY {
            let next = t.next(guard);
            if next.is_null() {
                return None;
            }
            growing();
            table = next;
            continue;
        }
        // The rest of the run, from the slot after `home`, in the word
        // already loaded: bytes up to `home` read as 0x7F (neither empty
        // nor a match). `home` itself was just looked at.
        let mut skip = usize::MAX >> (8 * (GROUP - 1 - off));
        let want = LSB * usize::from(pattern);
        let words = t.groups.len();
        // `words + 1` words cover every slot even from mid-word.
        for _ in 0..=words {
            let w = (raw & !skip) | (skip & (LSB * 0x7F));
            skip = 0;
            let empty = zero_bytes(w);
            // Matches before the first empty byte (all, if none).
            let mut hits = zero_bytes(w ^ want) & empty.wrapping_sub(1) & !empty;
            while hits != 0 {
                let b = hits.trailing_zeros() as usize / 8;
                hits &= hits - 1;
                // The first hit is exact; later ones may be borrow
                // artefacts of `zero_bytes`.
                if (w >> (8 * b)) as u8 != pattern {
                    continue;
                }
                let slot = wi * GROUP + b;
                // SAFETY: `b < SLOTS`: byte `b` is `FULL`, and a group's
                // sentinel byte is `DELETED` for good. Acquire: as for the
                // home slot.
                let node = unsafe { g.nodes.get_unchecked(b) }.load(Ordering::Acquire);
                // SAFETY: FULL (Acquire); as for the home slot.
                if unsafe { &(*node).key }.borrow() == key {
                    // SAFETY: as above; `table` lives for `'g`.
                    return Some(unsafe { Found::new(table, slot, node) });
                }
            }
            if empty != 0 {
                break;
            }
            wi = (wi + 1) & (words - 1);
            // SAFETY: masked by `words - 1` (`words` is a power of two).
            // Acquire: as above.
            g = unsafe { t.groups.get_unchecked(wi) };
            raw = g.ctrl.load(Ordering::Acquire);
        }
        let next = t.next(guard);
        if next.is_null() {
            return None;
        }
        growing();
        table = next;
    }
}

/// Whether `key` has a live or moved slot in `table` itself (its `next`
/// not consulted). Lock-free; runs `Eq`.
///
/// # Safety
///
/// The caller has been pinned since `table` was reachable from its shard
/// (it reads `MOVED` slots' nodes: see "Reclamation").
pub(super) unsafe fn in_table<K: Eq, V>(table: &Table<K, V>, hash: u64, key: &K) -> bool {
    let tag = tag(hash);
    let mut i = table.home(hash);
    for _ in 0..table.len() {
        let c = table.ctrl(i);
        if c == EMPTY {
            return false;
        }
        if c & TAG_MASK == tag
            && matches!(state(c), FULL | MOVED)
            // SAFETY: FULL or MOVED (Acquire), and the caller's contract.
            && unsafe { table.key(i) } == key
        {
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
    /// Retired nodes and tables waiting for readers to leave. Under the
    /// lock.
    graves: UnsafeCell<Graveyard<K, V>>,
    /// The cells of this shard's nodes. Under the lock.
    slab: UnsafeCell<Slab<K, V>>,
}

// SAFETY: the graveyard is touched only under the shard lock (or with
// `&mut`), which serialises its users; what it holds is `Send` (see
// `Grave`). The rest is atomics and epoch pointers to `Send + Sync` tables.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Shard<K, V> {}

/// What a writer decided to do, computed before it locks.
pub(super) enum Plan<K, V> {
    /// Store this value for this key (replacing the found entry, or as a
    /// new key).
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

/// Why a commit did not happen, under the lock.
enum Retry {
    Changed,
    Migrate,
}

/// A committed write: the entry it published, if any.
pub(super) struct Committed<'g, K, V> {
    pub(super) new: Option<(&'g K, &'g V)>,
}

/// A migration chunk read outside the lock: the tables, the slot range
/// and its live slots.
struct Chunk<'g, K, V> {
    cur: Shared<'g, Table<K, V>>,
    next: Shared<'g, Table<K, V>>,
    start: usize,
    end: usize,
    batch: [Moving<K, V>; MIGRATE_CHUNK],
    len: usize,
}

/// An old-table slot to migrate, read (and its key hashed) outside the
/// lock.
struct Moving<K, V> {
    index: usize,
    node: *mut Node<K, V>,
    hash: u64,
}

impl<K, V> Clone for Moving<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Moving<K, V> {}

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
                slab: UnsafeCell::new(Slab::new()),
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

    /// Whether the current table is migrating; lock held.
    fn growing_locked(&self, guard: &Guard) -> bool {
        // Relaxed: under the lock, which orders every store of these.
        let t = self.table.load(Ordering::Relaxed, guard);
        // SAFETY: the current table is alive under `guard`.
        !unsafe { t.deref() }
            .next
            .load(Ordering::Relaxed, guard)
            .is_null()
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
        // SAFETY: the lock is held.
        graves.seal_and_sweep(guard, self.growing_locked(guard), &mut dead, unsafe {
            self.slab()
        });
        drop(lock);
        self.bury(&mut dead, guard);
        r.map_err(|(why, p)| match why {
            Retry::Changed => Stale::Changed(p),
            Retry::Migrate => Stale::Migrate(p),
        })
    }

    /// Retired items waiting for readers to leave (a point-in-time count,
    /// taken under the lock).
    #[cfg(test)]
    pub(super) fn graves_waiting(&self) -> usize {
        let _lock = self.w.lock.lock();
        // SAFETY: the lock is held while the reference lives.
        unsafe { self.graves() }.len()
    }

    /// Cells the shard's slab holds, free or not (taken under the lock).
    #[cfg(test)]
    pub(super) fn cells(&self) -> usize {
        let _lock = self.w.lock.lock();
        // SAFETY: the lock is held while the reference lives.
        unsafe { self.slab() }.cells()
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

    /// The node cells.
    ///
    /// # Safety
    ///
    /// As for [`graves`](Self::graves).
    #[allow(clippy::mut_from_ref)]
    unsafe fn slab(&self) -> &mut Slab<K, V> {
        // SAFETY: the caller's contract: the lock serialises every access.
        self.w.slab.with_mut(|s| unsafe { &mut *s })
    }

    /// Finishes what a sweep left to do outside the lock: drops the
    /// raised graves' keys and values (user code: never under the lock),
    /// then takes the lock again to give their cells back to the slab.
    #[inline]
    fn bury(&self, dead: &mut Dead<K, V>, guard: &Guard) {
        if dead.idle() {
            return;
        }
        self.bury_dead(dead, guard);
    }

    /// [`bury`](Self::bury) when there is something to do.
    #[inline(never)]
    fn bury_dead(&self, dead: &mut Dead<K, V>, guard: &Guard) {
        let spent = dead.bury(guard);
        if spent.is_empty() {
            return;
        }
        let _lock = self.w.lock.lock();
        for what in spent {
            // SAFETY: the lock is held; the graves were raised (no reader
            // holds their nodes) and their keys and values dropped.
            unsafe { recycle(what, self.slab()) };
        }
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
    ) -> Result<Committed<'g, K, V>, (Retry, Plan<K, V>)> {
        // Relaxed: under the lock we see every write of previous holders.
        let cur = self.table.load(Ordering::Relaxed, guard);
        // SAFETY: the current table is alive under `guard`.
        let c = unsafe { cur.deref() };
        let next = c.next.load(Ordering::Relaxed, guard);
        let Some(f) = found else {
            // Only the insertion of a new key can make an absent key
            // present.
            if self.w.inserts.load(Ordering::Relaxed) != inserts {
                return Err((Retry::Changed, plan));
            }
            let Plan::Put(key, value) = plan else {
                return Ok(Committed { new: None });
            };
            let t = if !next.is_null() {
                // SAFETY: the current table's next is alive.
                let n = unsafe { next.deref() };
                if n.over_threshold(self.w.pending.load(Ordering::Relaxed) + 1) {
                    return Err((Retry::Migrate, Plan::Put(key, value)));
                }
                n
            } else if c.over_threshold(1) {
                let n = self.start_growth(c, guard);
                // SAFETY: just allocated and linked; alive under `guard`.
                unsafe { n.deref() }
            } else {
                c
            };
            // SAFETY: the lock is held.
            let node = unsafe { self.slab() }.alloc(Node { key, value });
            t.place(hash, node);
            self.add_len(1);
            // Release: pairs with `inserts()`; after the entry's control
            // byte store, so a writer that reads the new count finds it.
            self.w
                .inserts
                .store(inserts.wrapping_add(1), Ordering::Release);
            // SAFETY: just published in a table alive under `guard`; a
            // grave for it would wait for `guard`.
            let n = unsafe { &*node };
            return Ok(Committed {
                new: Some((&n.key, &n.value)),
            });
        };
        // The key was found: valid iff its table is still reachable and its
        // slot still holds the node the writer saw (a node is published
        // once, and cannot be freed and reused while `guard` is pinned, so
        // an equal pointer means the same entry).
        if f.table != cur && f.table != next {
            return Err((Retry::Changed, plan));
        }
        // SAFETY: reachable from the shard, so alive under `guard`.
        let t = unsafe { f.table.deref() };
        let cb = t.ctrl_locked(f.index);
        if !is_live(cb) || t.node_locked(f.index) != f.node {
            return Err((Retry::Changed, plan));
        }
        let in_old = !next.is_null() && f.table == cur;
        let (key, value) = match plan {
            Plan::Remove => {
                t.vacate(f.index, cb & TAG_MASK);
                self.add_len(-1);
                if in_old {
                    self.moved_out();
                }
                // Unreachable for readers that load the slot from now on;
                // the grave waits for the earlier ones.
                graves.bury(Retired::Node(f.node));
                return Ok(Committed { new: None });
            }
            Plan::Put(key, value) => (key, value),
        };
        let node = if in_old {
            // The old table is being migrated: the key moves on to the
            // next table with its new node.
            // SAFETY: the current table's next is alive.
            let n = unsafe { next.deref() };
            // Our key leaves the old table: it no longer needs reserved
            // room.
            if n.over_threshold(self.w.pending.load(Ordering::Relaxed)) {
                return Err((Retry::Migrate, Plan::Put(key, value)));
            }
            // SAFETY: the lock is held.
            let node = unsafe { self.slab() }.alloc(Node { key, value });
            n.place(hash, node);
            // Release: after the entry is published in `next`, so a reader
            // that finds the old slot no longer FULL and goes on to `next`
            // (Acquire) finds it.
            t.set_ctrl(f.index, ctrl(MOVED, cb & TAG_MASK));
            self.moved_out();
            node
        } else {
            // SAFETY: the lock is held.
            let node = unsafe { self.slab() }.alloc(Node { key, value });
            // Release: publishes the new node to readers' Acquire pointer
            // loads; a reader sees the old node or the new one, whole.
            t.slot(f.index).store(node, Ordering::Release);
            node
        };
        // The replaced node: as for a removal.
        graves.bury(Retired::Node(f.node));
        // SAFETY: just published in a table alive under `guard`.
        let n = unsafe { &*node };
        Ok(Committed {
            new: Some((&n.key, &n.value)),
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
    /// Runs `Hash` (migration).
    pub(super) fn rebuild<H, F>(
        &self,
        hasher: &H,
        guard: &Guard,
        mut target: F,
    ) -> Result<(), TryReserveError>
    where
        H: HashKey<K> + ?Sized,
        F: FnMut(&Table<K, V>, usize) -> Result<Option<usize>, TryReserveError>,
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
    fn finish_migration<H: HashKey<K> + ?Sized>(&self, hasher: &H, guard: &Guard) {
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

    /// During growth, migrates one chunk of the current table: hashes its
    /// live keys outside the lock, then moves the pointers of the slots
    /// that did not change meanwhile. Runs `Hash`.
    pub(super) fn help_migrate<H: HashKey<K> + ?Sized>(&self, hasher: &H, guard: &Guard) {
        let Some(chunk) = self.read_chunk(hasher, guard) else {
            return;
        };
        let lock = self.w.lock.lock();
        if !self.move_chunk(&chunk, guard) {
            // Still growing: nothing may be sealed yet, and the commit that
            // brought us here has swept.
            return;
        }
        // The migration is done: seal what was buried during it.
        // SAFETY: the lock is held until after the last use.
        let graves = unsafe { self.graves() };
        let mut dead = Dead::none();
        // SAFETY: the lock is held.
        graves.seal_and_sweep(guard, false, &mut dead, unsafe { self.slab() });
        drop(lock);
        self.bury(&mut dead, guard);
    }

    /// A lookup's share of a migration, for a lookup that had to look in
    /// two tables: if the shard is still growing and its lock is free,
    /// migrates one chunk, as [`help_migrate`](Self::help_migrate) does;
    /// if a writer holds the lock it gives up at once, so a reader never
    /// waits. It neither seals nor drops graves (that stays with
    /// writers: a reader runs no `Drop` of an entry), so a writer that
    /// comes later seals the ones buried during the growth it finished.
    /// Runs `Hash`.
    ///
    /// Without it a read-mostly shard that has started growing stays in
    /// two tables until enough writes have migrated the old one (every
    /// lookup of a moved key probes both), which in a 98%-read workload is
    /// most of the run.
    #[cold]
    #[inline(never)]
    pub(super) fn assist_migration<H: HashKey<K> + ?Sized>(&self, hasher: &H, guard: &Guard) {
        // Relaxed: a hint; a reader only tries a free lock.
        if self.w.lock.is_locked() {
            return;
        }
        let Some(chunk) = self.read_chunk(hasher, guard) else {
            return;
        };
        if let Some(_lock) = self.w.lock.try_lock() {
            self.move_chunk(&chunk, guard);
        }
    }

    /// The next chunk of a migration, read and hashed outside the lock;
    /// `None` when the shard is not growing. (Inlined: the chunk is built
    /// in its caller's frame, not copied there.)
    #[inline(always)]
    fn read_chunk<'g, H: HashKey<K> + ?Sized>(
        &self,
        hasher: &H,
        guard: &'g Guard,
    ) -> Option<Chunk<'g, K, V>> {
        let cur = self.table(guard);
        // SAFETY: the current table is alive under `guard`.
        let c = unsafe { cur.deref() };
        let next = c.next(guard);
        if next.is_null() {
            return None;
        }
        // Relaxed: a hint; checked again under the lock.
        let start = c.w.migrated.load(Ordering::Relaxed);
        let end = (start + MIGRATE_CHUNK).min(c.len());
        let mut chunk = Chunk {
            cur,
            next,
            start,
            end,
            batch: [Moving {
                index: usize::MAX,
                node: ptr::null_mut(),
                hash: 0,
            }; MIGRATE_CHUNK],
            len: 0,
        };
        // A control word at a time, visiting its live slots only.
        let mut i = start;
        while i < end {
            let wi = i / GROUP;
            let g = &c.groups[wi];
            // Acquire, as in `Table::ctrl`: pairs with the writers' Release
            // word stores, so a live slot's node is visible.
            let word = g.ctrl.load(Ordering::Acquire);
            // This word's bytes `lo..hi` are in the chunk.
            let (lo, hi) = (i % GROUP, (end - wi * GROUP).min(GROUP));
            let range = (usize::MAX >> (8 * (GROUP - hi))) & (usize::MAX << (8 * lo));
            // The low bit of each live byte: state bits `100` (`FULL`).
            let mut live = (word >> 7) & !(word >> 6) & !(word >> 5) & LSB & range;
            while live != 0 {
                let b = live.trailing_zeros() as usize / 8;
                live &= live - 1;
                debug_assert!(is_live((word >> (8 * b)) as u8) && b < SLOTS);
                // Acquire: as in `Table::node`.
                let node = g.nodes[b].load(Ordering::Acquire);
                // SAFETY: FULL (Acquire); `c` is alive under `guard`, and
                // the node's grave (if it is replaced meanwhile) waits for
                // `guard`.
                let hash = hasher.hash_key(unsafe { &(*node).key });
                chunk.batch[chunk.len] = Moving {
                    index: wi * GROUP + b,
                    node,
                    hash,
                };
                chunk.len += 1;
            }
            i = wi * GROUP + hi;
        }
        Some(chunk)
    }

    /// Moves `chunk` into the next table if it is still the migration's
    /// next chunk, and unlinks the old table after its last chunk; returns
    /// whether it did that (the migration is done). Lock held.
    fn move_chunk(&self, chunk: &Chunk<'_, K, V>, guard: &Guard) -> bool {
        let (cur, next) = (chunk.cur, chunk.next);
        // SAFETY: `cur` was the current table under `guard`: alive.
        let c = unsafe { cur.deref() };
        // Relaxed: under the lock.
        if self.table.load(Ordering::Relaxed, guard) != cur
            || c.w.migrated.load(Ordering::Relaxed) != chunk.start
        {
            return false;
        }
        // SAFETY: the current table's next is alive.
        let n = unsafe { next.deref() };
        let batch = &chunk.batch[..chunk.len];
        let mut moved = 0;
        let mut i = 0;
        // A control word at a time (the batch is in slot order): its slots
        // are placed in `next`, then one store marks them all `MOVED`.
        while i < batch.len() {
            let wi = batch[i].index / GROUP;
            let g = &c.groups[wi];
            // Relaxed: control words are written only under the lock.
            let before = g.ctrl.load(Ordering::Relaxed);
            let mut word = before;
            while i < batch.len() && batch[i].index / GROUP == wi {
                let m = batch[i];
                i += 1;
                let b = m.index % GROUP;
                let cb = (word >> (8 * b)) as u8;
                // While growing an old slot's node never changes (a
                // replacement moves the key on), but it may have been
                // removed or replaced-and-moved since we read it.
                // Relaxed: slot pointers are written only under the lock.
                if !is_live(cb) || g.nodes[b].load(Ordering::Relaxed) != m.node {
                    continue;
                }
                n.place(m.hash, m.node);
                word = (word & !(0xFF << (8 * b)))
                    | (usize::from(ctrl(MOVED, cb & TAG_MASK)) << (8 * b));
                moved += 1;
            }
            if word != before {
                // Release: after the entries are published in `next`, so a
                // reader that finds an old slot no longer FULL and goes on
                // to `next` (Acquire) finds it.
                g.ctrl.store(word, Ordering::Release);
            }
        }
        let p = self.w.pending.load(Ordering::Relaxed);
        debug_assert!(p >= moved);
        self.w.pending.store(p - moved, Ordering::Relaxed);
        c.w.migrated.store(chunk.end, Ordering::Relaxed);
        if chunk.end == c.len() {
            debug_assert_eq!(self.w.pending.load(Ordering::Relaxed), 0);
            // Release pairs with `Shard::table`'s Acquire.
            self.table.store(next, Ordering::Release);
            // The old table is unlinked; readers still in it are
            // pinned. It owns no node any more (all moved or removed).
            retire_table(cur.as_raw().cast_mut(), guard);
            return true;
        }
        false
    }

    /// Removes every entry: installs a fresh table and retires the old
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
        // the graves wait for them. Each node is FULL in exactly one table
        // of the chain, which drops it.
        // SAFETY: the old table is alive under `guard`. Relaxed: under the
        // lock.
        let next = unsafe { old.deref() }.next.load(Ordering::Relaxed, guard);
        for t in [old, next] {
            if !t.is_null() {
                // Its live nodes go with it: a grave (their cells return
                // to the slab).
                graves.bury(Retired::Table(t.as_raw().cast_mut()));
            }
        }
        let mut dead = Dead::none();
        // SAFETY: the lock is held.
        graves.seal_and_sweep(guard, false, &mut dead, unsafe { self.slab() });
        drop(lock);
        self.bury(&mut dead, guard);
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
        // current table and its next are the shard's, each dropping the
        // nodes it owns. The cells go with the slab, after this.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let t = self.table.load(Ordering::Relaxed, guard);
            let next = t.deref().next.load(Ordering::Relaxed, guard);
            let t = t.into_owned().into_box();
            let t = alloc::boxed::Box::into_raw(t);
            Table::drop_nodes(t);
            drop(Box::from_raw(t));
            if !next.is_null() {
                let n = Box::into_raw(next.into_owned().into_box());
                Table::drop_nodes(n);
                drop(Box::from_raw(n));
            }
        }
    }
}

#[cfg(all(test, not(latchfree_loom)))]
mod layout_tests {
    use super::{Group, SLOTS};

    #[test]
    fn a_group_is_one_cache_line() {
        // The point of the layout: the control word and the pointer of the
        // matching slot share one line (64 bytes on 64-bit targets).
        let size = core::mem::size_of::<Group<u64, u64>>();
        assert_eq!(size, core::mem::align_of::<Group<u64, u64>>());
        assert_eq!(size, (SLOTS + 1) * core::mem::size_of::<usize>());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size, 64);
    }
}
