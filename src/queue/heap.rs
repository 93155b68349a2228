//! An addressable priority queue: an indexed 4-ary min-heap over the slot
//! arena.
//!
//! The heap array holds `(priority, sequence, slot index)` entries, so
//! sifting compares entries in place without chasing into the arena; a
//! compact `u32` table beside the arena holds each slot's position in the
//! heap (kept out of the arena slots so the writes every sift step makes
//! touch 4 bytes per entry, not a whole slot), so a handle finds its entry
//! in O(1) and change-priority and remove are O(log n). A 4-ary heap
//! is half as deep as a binary one and its four children share a cache line
//! or two, which is why it is the usual choice for decrease-key heaps.
//! Equal priorities leave in FIFO order: every push (and every priority
//! change) takes the next value of a 64-bit sequence counter that breaks
//! ties.
//!
//! Ground rules: heap positions `0..len` are initialised and no others; for
//! every live slot `s`, `heap[pos[s]].index == s`.
//!
//! A user `Ord` may panic in the middle of a sift. Every sift therefore
//! moves its entry inside a [`Hole`] guard, which writes the entry into
//! the hole when dropped, on unwind too, so the ground rules hold whatever
//! `Ord` does (only the heap order is then unspecified, as with
//! `std::collections::BinaryHeap`), and a pop or remove whose `Ord`
//! panicked leaves its entry in the queue.

use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr;

use super::arena::{Arena, Fixed, RawKey, Storage, StorageKind};

const ARITY: usize = 4;

/// Names one entry of a [`PriorityQueue`]. Generation-checked: once the
/// entry has been popped or removed, every operation with it answers `None`
/// or `false`.
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::queue::PriorityQueue;
///
/// let mut jobs: PriorityQueue<u32, &str, Growable> = PriorityQueue::new();
/// let backup = jobs.push(50, "backup").unwrap();
/// jobs.push(10, "page oncall").unwrap();
/// assert!(jobs.change_priority(backup, 5)); // now urgent
/// assert_eq!(jobs.priority(backup), Some(&5));
/// assert_eq!(jobs.pop(), Some((5, "backup")));
/// assert!(!jobs.contains(backup));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handle(pub(crate) RawKey);

impl Handle {
    /// The raw slot index and generation.
    pub fn raw(self) -> RawKey {
        self.0
    }
}

struct Entry<P> {
    prio: P,
    seq: u64,
    index: u32,
}

impl<P: Ord> Entry<P> {
    #[inline(always)]
    fn before(&self, other: &Self) -> bool {
        match self.prio.cmp(&other.prio) {
            core::cmp::Ordering::Less => true,
            core::cmp::Ordering::Greater => false,
            core::cmp::Ordering::Equal => self.seq < other.seq,
        }
    }
}

/// An addressable min-priority queue with stable FIFO order among equal
/// priorities.
///
/// `push` returns a [`Handle`]; [`pop`](Self::pop), [`peek`](Self::peek),
/// [`change_priority`](Self::change_priority) and [`remove`](Self::remove)
/// are O(log n) (peek O(1)). `K` picks the storage: [`Fixed<N>`] (inline, no
/// allocator, `const fn` [`new_fixed`](Self::new_fixed); `N = 0` is a valid
/// queue that is always full) or `Growable` (with `alloc`).
///
/// ```
/// use latchfree::queue::{arena::Fixed, PriorityQueue};
/// let mut q: PriorityQueue<u32, &str, Fixed<4>> = PriorityQueue::new_fixed();
/// let a = q.push(5, "a").unwrap();
/// q.push(3, "b").unwrap();
/// q.push(3, "c").unwrap();
/// assert!(q.change_priority(a, 1));
/// assert_eq!(q.pop(), Some((1, "a")));
/// assert_eq!(q.pop(), Some((3, "b"))); // FIFO among equals
/// assert_eq!(q.remove(a), None); // stale handle
/// ```
pub struct PriorityQueue<P, T, K: StorageKind> {
    arena: Arena<(), T, K>,
    /// Heap position of each arena slot (meaningful for live slots).
    pos: K::Buf<u32>,
    heap: K::Buf<MaybeUninit<Entry<P>>>,
    len: usize,
    seq: u64,
}

impl<P, T, const N: usize> PriorityQueue<P, T, Fixed<N>> {
    /// An empty queue of at most `N` entries stored inline.
    pub const fn new_fixed() -> Self {
        PriorityQueue {
            arena: Arena::new_fixed(),
            pos: [0; N],
            heap: [const { MaybeUninit::uninit() }; N],
            len: 0,
            seq: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl<P, T> PriorityQueue<P, T, super::arena::Growable> {
    /// An empty unbounded queue on the heap.
    pub fn new() -> Self {
        Self::with_capacity(0, usize::MAX)
    }

    /// An empty heap queue with room for `reserve` entries before it
    /// reallocates, holding at most `limit` (0 gives an always-full queue).
    pub fn with_capacity(reserve: usize, limit: usize) -> Self {
        let limit = limit.min(u32::MAX as usize - 1);
        PriorityQueue {
            arena: Arena::new_growable(reserve, limit),
            pos: super::arena::GrowVec::new(reserve, limit),
            heap: super::arena::GrowVec::new(reserve, limit),
            len: 0,
            seq: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl<P, T> Default for PriorityQueue<P, T, super::arena::Growable> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Ord, T, K: StorageKind> PriorityQueue<P, T, K> {
    /// Entries in the queue.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the queue is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a push would be refused.
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity()
    }

    /// Most entries the queue can hold.
    pub fn capacity(&self) -> usize {
        self.arena.capacity()
    }

    #[inline(always)]
    fn at(&self, pos: usize) -> &Entry<P> {
        debug_assert!(pos < self.len);
        // SAFETY: positions below `len` are initialised (ground rule).
        unsafe { self.heap.as_slice()[pos].assume_init_ref() }
    }

    /// Adds `value` with `prio`; gives both back when the queue is full.
    #[inline]
    pub fn push(&mut self, prio: P, value: T) -> Result<Handle, (P, T)> {
        if self.len == self.heap.as_slice().len() && !self.heap.try_grow() {
            return Err((prio, value));
        }
        let key = match self.arena.insert((), value) {
            Ok(k) => k,
            Err(v) => return Err((prio, v)),
        };
        if key.index as usize >= self.pos.as_slice().len() {
            // The arena grew by one slot; the table follows (same limit).
            let grew = self.pos.try_grow();
            debug_assert!(grew && key.index as usize == self.pos.as_slice().len() - 1);
        }
        let seq = self.next_seq();
        let pos = self.len;
        self.len += 1;
        let entry = Entry {
            prio,
            seq,
            index: key.index,
        };
        sift_up(&mut Hole::new(self, pos, entry));
        Ok(Handle(key))
    }

    #[inline(always)]
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The entry with the lowest priority (the oldest among equals).
    #[inline]
    pub fn peek(&self) -> Option<(&P, &T)> {
        if self.len == 0 {
            return None;
        }
        let e = self.at(0);
        Some((&e.prio, self.arena.value(e.index)))
    }

    /// The handle of the entry [`peek`](Self::peek) shows.
    pub fn peek_handle(&self) -> Option<Handle> {
        if self.len == 0 {
            return None;
        }
        Some(Handle(self.arena.key_of(self.at(0).index)))
    }

    /// Removes and returns the entry with the lowest priority.
    #[inline]
    pub fn pop(&mut self) -> Option<(P, T)> {
        if self.len == 0 {
            return None;
        }
        Some(self.remove_at(0))
    }

    /// Removes the entry `h` names; `None` if the handle is stale.
    #[inline]
    pub fn remove(&mut self, h: Handle) -> Option<(P, T)> {
        if !self.arena.contains(h.0) {
            return None;
        }
        let pos = self.pos.as_slice()[h.0.index as usize] as usize;
        Some(self.remove_at(pos))
    }

    /// The priority of a live entry.
    pub fn priority(&self, h: Handle) -> Option<&P> {
        if !self.arena.contains(h.0) {
            return None;
        }
        Some(
            &self
                .at(self.pos.as_slice()[h.0.index as usize] as usize)
                .prio,
        )
    }

    /// The value of a live entry.
    pub fn get(&self, h: Handle) -> Option<&T> {
        self.arena.get(h.0)
    }

    /// The value of a live entry, mutably.
    pub fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        self.arena.get_mut(h.0)
    }

    /// Whether `h` names a live entry.
    pub fn contains(&self, h: Handle) -> bool {
        self.arena.contains(h.0)
    }

    /// Gives a live entry a new priority (up or down), O(log n); `false`
    /// for a stale handle. The entry then ranks after entries already
    /// holding an equal priority, as if pushed anew.
    #[inline]
    pub fn change_priority(&mut self, h: Handle, prio: P) -> bool {
        if !self.arena.contains(h.0) {
            return false;
        }
        let pos = self.pos.as_slice()[h.0.index as usize] as usize;
        let seq = self.next_seq();
        let len = self.len;
        // SAFETY: `pos < len` (ground rule), so the entry is initialised; it
        // is read out here and the hole refilled by the `Hole` below.
        let old = unsafe { self.heap.as_mut_slice()[pos].assume_init_read() };
        let new = Entry {
            prio,
            seq,
            index: old.index,
        };
        // From here a panicking `Ord` (or `P::drop`) leaves `new` in place.
        let mut hole = Hole::new(self, pos, new);
        let up = hole.elt.before(&old);
        drop(old);
        if up {
            sift_up(&mut hole);
        } else {
            sift_down(&mut hole, len);
        }
        true
    }

    /// Removes every entry. Handles handed out before stay stale.
    pub fn clear(&mut self) {
        /// Clears the arena on every path, also if a `P::drop` panicked.
        struct ClearArena<'a, T, K: StorageKind>(&'a mut Arena<(), T, K>);
        impl<T, K: StorageKind> Drop for ClearArena<'_, T, K> {
            fn drop(&mut self) {
                self.0.clear();
            }
        }
        let len = core::mem::replace(&mut self.len, 0);
        let _arena = ClearArena(&mut self.arena);
        // SAFETY: as in `Drop`: positions below the old `len` were
        // initialised and `len` is already 0, so none is read again.
        unsafe { drop_entries(&mut self.heap.as_mut_slice()[..len]) };
    }

    /// Takes the entry at heap position `pos` out, restoring the heap. If
    /// `Ord` panics while the last entry is sifted into the gap, the entry
    /// goes back in (at the end) and the queue keeps every item.
    fn remove_at(&mut self, pos: usize) -> (P, T) {
        debug_assert!(pos < self.len);
        self.len -= 1;
        let last_pos = self.len;
        // SAFETY: `pos` was below the old `len`, so it is initialised; it is
        // read exactly once, and the gap is refilled (by the `Hole` below,
        // or by `PutBack` when that is `last_pos` itself).
        let removed = unsafe { self.heap.as_mut_slice()[pos].assume_init_read() };
        let mut undo = PutBack {
            queue: self,
            entry: ManuallyDrop::new(removed),
            armed: true,
        };
        if pos != last_pos {
            let len = undo.queue.len;
            // SAFETY: `last_pos` was below the old `len` and is now past
            // `len`: read once, and its entry moves into the `Hole`.
            let last = unsafe { undo.queue.heap.as_mut_slice()[last_pos].assume_init_read() };
            let mut hole = Hole::new(undo.queue, pos, last);
            if hole.elt.before(&undo.entry) {
                sift_up(&mut hole);
            } else {
                sift_down(&mut hole, len);
            }
        }
        undo.armed = false;
        // SAFETY: `entry` is taken once; `PutBack::drop` does nothing when
        // disarmed.
        let removed = unsafe { ManuallyDrop::take(&mut undo.entry) };
        drop(undo);
        let value = self.arena.remove(removed.index);
        (removed.prio, value)
    }
}

/// A heap position whose entry was moved out, and the entry that will fill
/// it. Dropping it (also on unwind, when a user `Ord` panicked mid-sift)
/// writes the entry into the hole and records its position, so positions
/// `0..len` stay initialised and the position table right.
struct Hole<'a, P> {
    heap: &'a mut [MaybeUninit<Entry<P>>],
    pos: &'a mut [u32],
    at: usize,
    elt: ManuallyDrop<Entry<P>>,
}

impl<'a, P> Hole<'a, P> {
    fn new<T, K: StorageKind>(q: &'a mut PriorityQueue<P, T, K>, at: usize, elt: Entry<P>) -> Self {
        Hole {
            heap: q.heap.as_mut_slice(),
            pos: q.pos.as_mut_slice(),
            at,
            elt: ManuallyDrop::new(elt),
        }
    }

    /// Moves the entry at `from` into the hole; `from` becomes the hole.
    ///
    /// # Safety
    ///
    /// `from` is initialised, is not the hole, and is below `len`.
    #[inline(always)]
    unsafe fn move_from(&mut self, from: usize) {
        // SAFETY: `from` is initialised (caller); its bits are not read again
        // until the hole, now at `from`, is refilled.
        let e = unsafe { self.heap[from].assume_init_read() };
        self.pos[e.index as usize] = self.at as u32;
        self.heap[self.at].write(e);
        self.at = from;
    }
}

impl<P> Drop for Hole<'_, P> {
    fn drop(&mut self) {
        // SAFETY: `elt` is taken exactly once, here.
        let e = unsafe { ManuallyDrop::take(&mut self.elt) };
        self.pos[e.index as usize] = self.at as u32;
        self.heap[self.at].write(e);
    }
}

/// Puts a removed entry back at the end of the heap unless disarmed: the
/// unwind path of `remove_at` when `Ord` panicked (no comparison, so it
/// cannot panic itself).
struct PutBack<'a, P, T, K: StorageKind> {
    queue: &'a mut PriorityQueue<P, T, K>,
    entry: ManuallyDrop<Entry<P>>,
    armed: bool,
}

impl<P, T, K: StorageKind> Drop for PutBack<'_, P, T, K> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: `entry` is taken exactly once, here (disarmed, the
            // caller took it).
            let e = unsafe { ManuallyDrop::take(&mut self.entry) };
            let q = &mut *self.queue;
            // Position `len` is past every initialised one (the `Hole` has
            // refilled the gap), and there is room: the entry came out.
            let at = q.len;
            q.pos.as_mut_slice()[e.index as usize] = at as u32;
            q.heap.as_mut_slice()[at].write(e);
            q.len += 1;
        }
    }
}

/// Moves the hole's entry towards the root.
#[inline]
fn sift_up<P: Ord>(hole: &mut Hole<'_, P>) {
    while hole.at > 0 {
        let parent = (hole.at - 1) / ARITY;
        // SAFETY: `parent < at < len`: initialised, and not the hole.
        let p = unsafe { hole.heap[parent].assume_init_ref() };
        if !hole.elt.before(p) {
            break;
        }
        // SAFETY: as above.
        unsafe { hole.move_from(parent) };
    }
}

/// Moves the hole's entry towards the leaves of a heap of `len` entries.
#[inline]
fn sift_down<P: Ord>(hole: &mut Hole<'_, P>, len: usize) {
    loop {
        let first = hole.at * ARITY + 1;
        if first >= len {
            break;
        }
        let end = (first + ARITY).min(len);
        let mut best = first;
        // SAFETY: children are `< len` and none of them is the hole (the
        // hole is their parent), so they are initialised.
        let mut best_e = unsafe { hole.heap[first].assume_init_ref() };
        #[allow(clippy::needless_range_loop)] // `best` must be an index
        for c in first + 1..end {
            // SAFETY: see above.
            let ce = unsafe { hole.heap[c].assume_init_ref() };
            if ce.before(best_e) {
                best = c;
                best_e = ce;
            }
        }
        if !best_e.before(&hole.elt) {
            break;
        }
        // SAFETY: `best` is a child below `len`, initialised, not the hole.
        unsafe { hole.move_from(best) };
    }
}

impl<P, T, K: StorageKind> Drop for PriorityQueue<P, T, K> {
    fn drop(&mut self) {
        let len = core::mem::replace(&mut self.len, 0);
        // SAFETY: positions below `len` are initialised; dropped once.
        unsafe { drop_entries(&mut self.heap.as_mut_slice()[..len]) };
        // The arena drops the values (also if a `P::drop` panicked).
    }
}

/// Drops initialised entries; if one `P::drop` panics the others are still
/// dropped (as for a slice).
///
/// # Safety
///
/// Every entry of `entries` is initialised and is never read again.
unsafe fn drop_entries<P>(entries: &mut [MaybeUninit<Entry<P>>]) {
    if core::mem::needs_drop::<P>() {
        let all =
            ptr::slice_from_raw_parts_mut(entries.as_mut_ptr().cast::<Entry<P>>(), entries.len());
        // SAFETY: the caller's contract; `MaybeUninit<E>` has `E`'s layout.
        unsafe { ptr::drop_in_place(all) };
    }
}

impl<P, T, K: StorageKind> core::fmt::Debug for PriorityQueue<P, T, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
