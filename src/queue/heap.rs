//! An addressable priority queue: an indexed 4-ary min-heap over the slot
//! arena.
//!
//! The heap array holds `(priority, sequence, slot index)` entries, so
//! sifting compares entries in place without chasing into the arena; the
//! arena's hot table holds each slot's `u32` position in the heap (apart
//! from the slots, so the writes every sift step makes touch 4 bytes per
//! entry, not a whole slot), so a key finds its entry in O(1) and
//! change-priority and remove are O(log n). A 4-ary heap
//! is half as deep as a binary one and its four children share a cache line
//! or two, which is why it is the usual choice for decrease-key heaps.
//! Equal priorities leave in FIFO order: every push (and every priority
//! change) takes the next value of a 64-bit sequence counter that breaks
//! ties.
//!
//! Ground rules: heap positions `0..len` are initialised and no others
//! (`len <= heap.len()`); for every live slot `s`, `heap[pos[s]].index ==
//! s`.
//!
//! No panics on the hot paths: the sift loops carry `at < heap.len()` in
//! their conditions so the compiler sees every index in range, and the
//! position table is reached through the arena's total accessors; a
//! position or index out of range (which the ground rules exclude) ends a
//! loop or refuses, it never panics or reads out of bounds.
//!
//! A user `Ord` may panic in the middle of a sift. Every sift therefore
//! moves its entry inside a [`Hole`] guard, which writes the entry into
//! the hole when dropped, on unwind too, so the ground rules hold whatever
//! `Ord` does (only the heap order is then unspecified, as with
//! `std::collections::BinaryHeap`), and a pop or remove whose `Ord`
//! panicked leaves its entry in the queue.

use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr;

use crate::arena::{Arena, Fixed, RawKey, Storage, StorageKind};

const ARITY: usize = 4;

/// Names one entry of a [`PriorityQueue`]. Generation-checked: once the
/// entry has been popped or removed, every operation with it answers `None`
/// or `false`.
///
/// ```
/// use latchfree::queue::{Growable, PriorityQueue};
///
/// let mut jobs: PriorityQueue<&str, u32, Growable> = PriorityQueue::new();
/// let backup = jobs.push("backup", 50);
/// jobs.push("page oncall", 10);
/// assert!(jobs.change_priority(backup, 5)); // now urgent
/// assert_eq!(jobs.priority(backup), Some(&5));
/// assert_eq!(jobs.pop(), Some(("backup", 5)));
/// assert!(!jobs.contains(backup));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PriorityKey(pub(crate) RawKey);

impl PriorityKey {
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
/// priorities: items `T` ranked by priorities `P` (lowest first).
///
/// `push` returns a [`PriorityKey`]; [`pop`](Self::pop),
/// [`peek`](Self::peek), [`change_priority`](Self::change_priority) and
/// [`remove`](Self::remove) are O(log n) (peek O(1)). `K` picks the
/// storage: [`Fixed<N>`] (inline, no allocator, `const fn`
/// [`new_fixed`](Self::new_fixed), bounded: [`try_push`](Self::try_push);
/// `N = 0` is a valid queue that is always full) or
/// [`Growable`](crate::queue::Growable) (with `alloc`, unbounded:
/// [`push`](Self::push) returns the key).
///
/// ```
/// use latchfree::queue::{Fixed, PriorityQueue};
/// let mut q: PriorityQueue<&str, u32, Fixed<4>> = PriorityQueue::new_fixed();
/// let a = q.try_push("a", 5).unwrap();
/// q.try_push("b", 3).unwrap();
/// q.try_push("c", 3).unwrap();
/// assert!(q.change_priority(a, 1));
/// assert_eq!(q.pop(), Some(("a", 1)));
/// assert_eq!(q.pop(), Some(("b", 3))); // FIFO among equals
/// assert_eq!(q.remove(a), None); // stale key
/// ```
pub struct PriorityQueue<T, P, K: StorageKind> {
    /// Hot data: the heap position of each slot (meaningful for live
    /// slots); no cold link data.
    arena: Arena<u32, (), T, K>,
    heap: K::Buf<MaybeUninit<Entry<P>>>,
    len: usize,
    seq: u64,
}

impl<T, P, const N: usize> PriorityQueue<T, P, Fixed<N>> {
    /// An empty queue of at most `N` entries stored inline.
    pub const fn new_fixed() -> Self {
        PriorityQueue {
            arena: Arena::new_fixed(),
            heap: [const { MaybeUninit::uninit() }; N],
            len: 0,
            seq: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl<T, P> PriorityQueue<T, P, crate::arena::Growable> {
    /// An empty unbounded queue on the heap.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty unbounded queue with room for `capacity` entries before it
    /// reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        PriorityQueue {
            arena: Arena::new_growable(capacity),
            heap: crate::arena::GrowVec::new(capacity),
            len: 0,
            seq: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl<T, P: Ord> PriorityQueue<T, P, crate::arena::Growable> {
    /// Adds `value` with `priority` and returns its key. Never fails.
    ///
    /// # Panics
    ///
    /// If the queue already holds `u32::MAX - 1` entries (its index space),
    /// as `Vec::push` panics past `isize::MAX` bytes.
    #[inline]
    pub fn push(&mut self, value: T, priority: P) -> PriorityKey {
        match self.try_push(value, priority) {
            Ok(key) => key,
            Err(_) => panic!("PriorityQueue: more than u32::MAX - 1 entries"),
        }
    }

    /// Every entry, in no particular order (the heap's), emptying the queue.
    pub fn into_vec(mut self) -> alloc::vec::Vec<(T, P)> {
        let mut out = alloc::vec::Vec::with_capacity(self.len);
        while self.len > 0 {
            self.len -= 1;
            let Some(cell) = self.heap.as_mut_slice().get_mut(self.len) else {
                break;
            };
            // SAFETY: position `len` was below the old `len`, so it is
            // initialised; with `len` lowered first it is read exactly once.
            let e = unsafe { cell.assume_init_read() };
            if let Some((_, (), value)) = self.arena.remove(e.index) {
                out.push((value, e.prio));
            }
        }
        out
    }
}

#[cfg(feature = "alloc")]
impl<T, P> Default for PriorityQueue<T, P, crate::arena::Growable> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "alloc")]
impl<T, P: Ord> Extend<(T, P)> for PriorityQueue<T, P, crate::arena::Growable> {
    /// Pushes every `(value, priority)`, in order (so equal priorities keep
    /// the iterator's order).
    fn extend<I: IntoIterator<Item = (T, P)>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for (value, priority) in iter {
            self.push(value, priority);
        }
    }
}

impl<T, P: Ord, K: StorageKind> PriorityQueue<T, P, K> {
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

    /// The entry at heap position `pos`; `None` past the end.
    #[inline(always)]
    fn at(&self, pos: usize) -> Option<&Entry<P>> {
        if pos >= self.len {
            return None;
        }
        let cell = self.heap.as_slice().get(pos)?;
        // SAFETY: positions below `len` are initialised (ground rule).
        Some(unsafe { cell.assume_init_ref() })
    }

    /// Adds `value` with `priority`; gives both back when the queue is
    /// full.
    #[inline]
    pub fn try_push(&mut self, value: T, priority: P) -> Result<PriorityKey, (T, P)> {
        if self.len == self.heap.as_slice().len() && !self.heap.try_grow() {
            return Err((value, priority));
        }
        let key = match self.arena.insert((), value) {
            Ok(k) => k,
            Err(v) => return Err((v, priority)),
        };
        let seq = self.next_seq();
        let pos = self.len;
        self.len += 1;
        let entry = Entry {
            prio: priority,
            seq,
            index: key.index,
        };
        sift_up(&mut Hole::new(self, pos, entry));
        Ok(PriorityKey(key))
    }

    #[inline(always)]
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The entry with the lowest priority (the oldest among equals).
    #[inline]
    pub fn peek(&self) -> Option<(&T, &P)> {
        let e = self.at(0)?;
        Some((self.arena.value(e.index)?, &e.prio))
    }

    /// The key of the entry [`peek`](Self::peek) shows.
    pub fn peek_key(&self) -> Option<PriorityKey> {
        self.arena.key_of(self.at(0)?.index).map(PriorityKey)
    }

    /// Removes and returns the entry with the lowest priority.
    #[inline]
    pub fn pop(&mut self) -> Option<(T, P)> {
        if self.len == 0 {
            return None;
        }
        self.remove_at(0)
    }

    /// Pops the entry [`peek`](Self::peek) shows if `pred` accepts it.
    ///
    /// ```
    /// use latchfree::queue::{Growable, PriorityQueue};
    ///
    /// let mut q: PriorityQueue<&str, u32, Growable> = PriorityQueue::new();
    /// q.extend([("later", 20), ("soon", 10)]);
    /// assert_eq!(q.pop_if(|_, &p| p <= 15), Some(("soon", 10)));
    /// assert_eq!(q.pop_if(|_, &p| p <= 15), None); // "later" stays
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn pop_if(&mut self, pred: impl FnOnce(&T, &P) -> bool) -> Option<(T, P)> {
        let (value, priority) = self.peek()?;
        if pred(value, priority) {
            self.pop()
        } else {
            None
        }
    }

    /// Removes the entry `key` names; `None` if the key is stale.
    #[inline]
    pub fn remove(&mut self, key: PriorityKey) -> Option<(T, P)> {
        if !self.arena.contains(key.0) {
            return None;
        }
        let pos = self.arena.hot(key.0.index) as usize;
        self.remove_at(pos)
    }

    /// The priority of a live entry.
    pub fn priority(&self, key: PriorityKey) -> Option<&P> {
        if !self.arena.contains(key.0) {
            return None;
        }
        Some(&self.at(self.arena.hot(key.0.index) as usize)?.prio)
    }

    /// The value of a live entry.
    pub fn get(&self, key: PriorityKey) -> Option<&T> {
        self.arena.get(key.0)
    }

    /// The value of a live entry, mutably.
    pub fn get_mut(&mut self, key: PriorityKey) -> Option<&mut T> {
        self.arena.get_mut(key.0)
    }

    /// Whether `key` names a live entry.
    pub fn contains(&self, key: PriorityKey) -> bool {
        self.arena.contains(key.0)
    }

    /// Every entry with its key, in no particular order (the heap's).
    ///
    /// ```
    /// use latchfree::queue::{Growable, PriorityQueue};
    ///
    /// let mut q: PriorityQueue<char, u8, Growable> = PriorityQueue::new();
    /// let b = q.push('b', 2);
    /// q.push('a', 1);
    /// let mut all: Vec<(char, u8)> = q.iter().map(|(_, &v, &p)| (v, p)).collect();
    /// all.sort();
    /// assert_eq!(all, [('a', 1), ('b', 2)]);
    /// assert!(q.iter().any(|(k, _, _)| k == b));
    /// ```
    pub fn iter(&self) -> Iter<'_, T, P, K> {
        Iter {
            queue: self,
            pos: 0,
        }
    }

    /// Keeps only the entries `keep` accepts, in O(n) (the heap is rebuilt
    /// once). If `keep` (or a `Drop`, or `Ord`) panics, the queue keeps
    /// every entry not yet looked at and all that were kept.
    ///
    /// ```
    /// use latchfree::queue::{Growable, PriorityQueue};
    ///
    /// let mut q: PriorityQueue<u32, u32, Growable> = PriorityQueue::new();
    /// q.extend((0..10).map(|i| (i, 9 - i)));
    /// q.retain(|&v, _| v % 3 == 0);
    /// assert_eq!(q.into_vec().len(), 4); // 0, 3, 6, 9
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&T, &P) -> bool) {
        let len = self.len;
        let mut run = Retain {
            queue: self,
            read: 0,
            write: 0,
            len,
            removed: false,
        };
        while run.read < run.len {
            let r = run.read;
            let Some(cell) = run.queue.heap.as_slice().get(r) else {
                break;
            };
            // SAFETY: `r` is below the old `len` and not yet moved or read
            // out (ground rule, `Retain` invariant).
            let e = unsafe { cell.assume_init_ref() };
            let kept = match run.queue.arena.value(e.index) {
                Some(value) => keep(value, &e.prio),
                None => true,
            };
            if kept {
                if r != run.write {
                    // SAFETY: `r` is initialised and read once; `write < r`
                    // was moved out or dropped before, so writing it leaks
                    // nothing.
                    unsafe { run.queue.shift(r, run.write) };
                }
                run.write += 1;
                run.read += 1;
            } else {
                let Some(cell) = run.queue.heap.as_mut_slice().get_mut(r) else {
                    break;
                };
                // SAFETY: as above; `read` moves past it before any user
                // code runs, so it is never read again.
                let e = unsafe { cell.assume_init_read() };
                run.read += 1;
                run.removed = true;
                let value = run.queue.arena.remove(e.index);
                drop(e);
                drop(value);
            }
        }
    }

    /// Makes room for `additional` more entries without reallocating
    /// (growable storage; fixed storage has all its room already).
    pub fn reserve(&mut self, additional: usize) {
        let want = self.len.saturating_add(additional);
        let heap_room = self.heap.as_slice().len();
        self.heap.reserve(want.saturating_sub(heap_room));
        let slots = self.arena.high_water();
        self.arena.reserve(want.saturating_sub(slots));
    }

    /// Hands back memory no entry needs (growable storage: the heap to
    /// `len`, the slots above the highest live one). Keys stay valid, and
    /// stale keys stay stale.
    pub fn compact(&mut self) {
        self.arena.compact();
        self.heap.truncate_and_shrink(self.len);
    }

    /// Gives a live entry a new priority (up or down), O(log n); `false`
    /// for a stale key. The entry then ranks after entries already
    /// holding an equal priority, as if pushed anew.
    #[inline]
    pub fn change_priority(&mut self, key: PriorityKey, priority: P) -> bool {
        if !self.arena.contains(key.0) {
            return false;
        }
        let pos = self.arena.hot(key.0.index) as usize;
        let len = self.len;
        // `pos < len` for a live key (ground rule).
        if pos >= len {
            return false;
        }
        let Some(cell) = self.heap.as_mut_slice().get_mut(pos) else {
            return false;
        };
        // SAFETY: `pos < len`, so the entry is initialised; it is read out
        // here and the hole refilled by the `Hole` below.
        let old = unsafe { cell.assume_init_read() };
        let seq = self.next_seq();
        let new = Entry {
            prio: priority,
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

    /// Removes every entry. Keys handed out before stay stale.
    pub fn clear(&mut self) {
        /// Clears the arena on every path, also if a `P::drop` panicked.
        struct ClearArena<'a, T, K: StorageKind>(&'a mut Arena<u32, (), T, K>);
        impl<T, K: StorageKind> Drop for ClearArena<'_, T, K> {
            fn drop(&mut self) {
                self.0.clear();
            }
        }
        let len = core::mem::replace(&mut self.len, 0);
        let _arena = ClearArena(&mut self.arena);
        // SAFETY: as in `Drop`: positions below the old `len` were
        // initialised and `len` is already 0, so none is read again.
        unsafe { drop_entries(self.heap.as_mut_slice(), len) };
    }

    /// Moves the entry at `from` to the vacant position `to` and records
    /// its new position (`retain` closing its gap). Nothing happens if
    /// either is out of range.
    ///
    /// # Safety
    ///
    /// `from` is initialised and is not read again before it is written;
    /// `to` holds no entry (moved out or dropped).
    #[inline]
    unsafe fn shift(&mut self, from: usize, to: usize) {
        let heap = self.heap.as_mut_slice();
        if from >= heap.len() || to >= heap.len() {
            return;
        }
        // SAFETY: the caller's contract: initialised, read once.
        let e = unsafe { heap[from].assume_init_read() };
        if let Some(p) = self.arena.hot_mut(e.index) {
            *p = to as u32;
        }
        heap[to].write(e);
    }

    /// Restores the heap order over positions `0..len` (Floyd's
    /// bottom-up build, O(n)).
    fn heapify(&mut self) {
        let len = self.len;
        if len < 2 {
            return;
        }
        for at in (0..=(len - 2) / ARITY).rev() {
            let Some(cell) = self.heap.as_mut_slice().get_mut(at) else {
                continue;
            };
            // SAFETY: `at < len`: initialised; read out here and refilled by
            // the `Hole` (on unwind too).
            let e = unsafe { cell.assume_init_read() };
            sift_down(&mut Hole::new(self, at, e), len);
        }
    }

    /// Takes the entry at heap position `pos` out, restoring the heap. If
    /// `Ord` panics while the last entry is sifted into the gap, the entry
    /// goes back in (at the end) and the queue keeps every item.
    /// `None` only for a position past the end, which no caller passes.
    fn remove_at(&mut self, pos: usize) -> Option<(T, P)> {
        let last_pos = self.len.checked_sub(1)?;
        let heap = self.heap.as_mut_slice();
        if pos > last_pos || last_pos >= heap.len() {
            debug_assert!(false, "heap position {pos} out of range");
            return None;
        }
        self.len = last_pos;
        // SAFETY: `pos` was below the old `len`, so it is initialised; it is
        // read exactly once, and the gap is refilled (by the `Hole` below,
        // or by `PutBack` when that is `last_pos` itself).
        let removed = unsafe { heap[pos].assume_init_read() };
        // SAFETY: `last_pos` was below the old `len` and is now past `len`:
        // read once, and its entry moves into the `Hole` (no user code runs
        // before the guards below hold both entries).
        let last = (pos != last_pos).then(|| unsafe { heap[last_pos].assume_init_read() });
        let mut undo = PutBack {
            queue: self,
            entry: ManuallyDrop::new(removed),
            armed: true,
        };
        if let Some(last) = last {
            let len = undo.queue.len;
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
        let (_, (), value) = self.arena.remove(removed.index)?;
        Some((value, removed.prio))
    }
}

/// Iterator returned by [`PriorityQueue::iter`]: `(key, value, priority)`
/// in heap order.
pub struct Iter<'a, T, P, K: StorageKind> {
    queue: &'a PriorityQueue<T, P, K>,
    pos: usize,
}

impl<'a, T, P: Ord, K: StorageKind> Iterator for Iter<'a, T, P, K> {
    type Item = (PriorityKey, &'a T, &'a P);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.queue.len {
            return None;
        }
        let e = self.queue.at(self.pos)?;
        self.pos += 1;
        Some((
            PriorityKey(self.queue.arena.key_of(e.index)?),
            self.queue.arena.value(e.index)?,
            &e.prio,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.queue.len - self.pos.min(self.queue.len);
        (n, Some(n))
    }
}

impl<T, P: Ord, K: StorageKind> ExactSizeIterator for Iter<'_, T, P, K> {}

impl<T, P: Ord, K: StorageKind> core::fmt::Debug for Iter<'_, T, P, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Iter").field("left", &self.len()).finish()
    }
}

/// A `retain` in progress: positions `0..write` hold kept entries,
/// `write..read` are moved out or dropped, `read..len` not yet looked at.
/// Dropping it (also on unwind, when the predicate, a `Drop` or `Ord`
/// panicked) closes the gap and, if anything was removed, rebuilds the heap
/// order, so the ground rules hold on every path.
struct Retain<'a, T, P: Ord, K: StorageKind> {
    queue: &'a mut PriorityQueue<T, P, K>,
    read: usize,
    write: usize,
    len: usize,
    removed: bool,
}

impl<T, P: Ord, K: StorageKind> Drop for Retain<'_, T, P, K> {
    fn drop(&mut self) {
        let q = &mut *self.queue;
        for r in self.read..self.len {
            if r != self.write {
                // SAFETY: `r` is in the untouched range, initialised; it is
                // read once and written to the gap at `write < r`.
                unsafe { q.shift(r, self.write) };
            }
            self.write += 1;
        }
        q.len = self.write;
        if self.removed {
            q.heapify();
        }
    }
}

/// A heap position whose entry was moved out, and the entry that will fill
/// it. Dropping it (also on unwind, when a user `Ord` panicked mid-sift)
/// writes the entry into the hole and records its position, so positions
/// `0..len` stay initialised and the position table right.
struct Hole<'a, P> {
    heap: &'a mut [MaybeUninit<Entry<P>>],
    /// The arena's hot table: each slot's heap position.
    pos: &'a mut [u32],
    at: usize,
    elt: ManuallyDrop<Entry<P>>,
}

impl<'a, P> Hole<'a, P> {
    fn new<T, K: StorageKind>(q: &'a mut PriorityQueue<T, P, K>, at: usize, elt: Entry<P>) -> Self {
        Hole {
            heap: q.heap.as_mut_slice(),
            pos: q.arena.hot_table_mut(),
            at,
            elt: ManuallyDrop::new(elt),
        }
    }

    /// Moves the entry at `from` into the hole; `from` becomes the hole.
    /// The sift loops only call it with both positions below
    /// `heap.len()`, which they have checked, so once inlined the checks
    /// here fold away; were either out of range, nothing would move.
    ///
    /// # Safety
    ///
    /// `from` is initialised and is not the hole.
    #[inline(always)]
    unsafe fn move_from(&mut self, from: usize) {
        let at = self.at;
        if from >= self.heap.len() || at >= self.heap.len() {
            debug_assert!(false, "sift out of range");
            return;
        }
        // SAFETY: `from` is initialised (caller); its bits are not read again
        // until the hole, now at `from`, is refilled.
        let e = unsafe { self.heap[from].assume_init_read() };
        if let Some(p) = self.pos.get_mut(e.index as usize) {
            *p = at as u32;
        }
        self.heap[at].write(e);
        self.at = from;
    }
}

impl<P> Drop for Hole<'_, P> {
    fn drop(&mut self) {
        // SAFETY: `elt` is taken exactly once, here.
        let e = unsafe { ManuallyDrop::take(&mut self.elt) };
        if let Some(p) = self.pos.get_mut(e.index as usize) {
            *p = self.at as u32;
        }
        // The hole is a position below `len`, so in range.
        if let Some(cell) = self.heap.get_mut(self.at) {
            cell.write(e);
        }
    }
}

/// Puts a removed entry back at the end of the heap unless disarmed: the
/// unwind path of `remove_at` when `Ord` panicked (no comparison, so it
/// cannot panic itself).
struct PutBack<'a, T, P, K: StorageKind> {
    queue: &'a mut PriorityQueue<T, P, K>,
    entry: ManuallyDrop<Entry<P>>,
    armed: bool,
}

impl<T, P, K: StorageKind> Drop for PutBack<'_, T, P, K> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: `entry` is taken exactly once, here (disarmed, the
            // caller took it).
            let e = unsafe { ManuallyDrop::take(&mut self.entry) };
            let q = &mut *self.queue;
            // Position `len` is past every initialised one (the `Hole` has
            // refilled the gap), and there is room: the entry came out.
            let at = q.len;
            if let Some(p) = q.arena.hot_mut(e.index) {
                *p = at as u32;
            }
            if let Some(cell) = q.heap.as_mut_slice().get_mut(at) {
                cell.write(e);
                q.len += 1;
            }
        }
    }
}

/// Moves the hole's entry towards the root.
#[inline]
fn sift_up<P: Ord>(hole: &mut Hole<'_, P>) {
    // `at < heap.len()` always (a hole is a position below `len`); saying
    // so in the condition lets the optimiser see `parent < at` in range.
    while hole.at > 0 && hole.at < hole.heap.len() {
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
    // `len <= heap.len()` and `at < len` always; the `min` and the first
    // check let the optimiser see every index below in bounds.
    let len = len.min(hole.heap.len());
    while hole.at < len {
        let first = hole.at.saturating_mul(ARITY).saturating_add(1);
        if first >= len {
            break;
        }
        let end = first.saturating_add(ARITY).min(len);
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

impl<T, P, K: StorageKind> Drop for PriorityQueue<T, P, K> {
    fn drop(&mut self) {
        let len = core::mem::replace(&mut self.len, 0);
        // SAFETY: positions below `len` are initialised; dropped once.
        unsafe { drop_entries(self.heap.as_mut_slice(), len) };
        // The arena drops the values (also if a `P::drop` panicked).
    }
}

/// Drops the first `len` entries; if one `P::drop` panics the others are
/// still dropped (as for a slice).
///
/// # Safety
///
/// The first `len` entries are initialised and are never read again.
unsafe fn drop_entries<P>(entries: &mut [MaybeUninit<Entry<P>>], len: usize) {
    if core::mem::needs_drop::<P>() {
        let len = len.min(entries.len());
        let all = ptr::slice_from_raw_parts_mut(entries.as_mut_ptr().cast::<Entry<P>>(), len);
        // SAFETY: the caller's contract; `MaybeUninit<E>` has `E`'s layout.
        unsafe { ptr::drop_in_place(all) };
    }
}

impl<T, P, K: StorageKind> core::fmt::Debug for PriorityQueue<T, P, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
