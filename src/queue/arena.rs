//! An index-linked slot arena with generation-checked keys, shared by the
//! timing wheel and the priority queue.
//!
//! Every entry lives in a [`Slot`]: a generation counter, a free-list link,
//! the structure's own intrusive link data `L` (list neighbours, heap
//! position, ...) and the payload. Structures link entries to each other by
//! `u32` slot index, never by pointer, so the storage may move (a `Vec`
//! growing) without breaking a link, and one timer costs no allocation.
//!
//! Ground rules:
//! - A slot's generation is odd exactly while it holds a value (its
//!   `MaybeUninit` payload is initialised) and even while it is free. Each
//!   insert and each removal adds one, so a [`RawKey`] taken at insert time
//!   matches its slot only until that value leaves: a stale key can never
//!   reach a reused slot. Generations wrap after 2^31 reuses of one slot.
//! - Slots `init..` have never been handed out; free slots below `init` form
//!   a singly linked list through `next_free`. Neither needs the storage to
//!   be initialised up front, so a fixed arena is `const`-constructible.
//!
//! Storage is chosen by a [`StorageKind`]: [`Fixed<N>`] is an inline array
//! (no allocator, `const fn` constructors), `Growable` a `Vec` (with the
//! `alloc` feature) that grows up to an optional limit.

use core::mem::MaybeUninit;

/// The "no slot" index.
pub(crate) const NIL: u32 = u32::MAX;

/// Types with a constant placeholder value that fills storage before use.
///
/// ```
/// use latchfree::queue::arena::Blank;
///
/// // What fills a fixed structure's unused index slots before first use.
/// assert_eq!(<u32 as Blank>::BLANK, 0);
/// ```
pub trait Blank {
    /// The placeholder.
    const BLANK: Self;
}

impl<T> Blank for MaybeUninit<T> {
    const BLANK: Self = MaybeUninit::uninit();
}

impl Blank for u32 {
    const BLANK: Self = 0;
}

impl Blank for () {
    const BLANK: Self = ();
}

/// A contiguous buffer an arena or heap lives in.
///
/// ```
/// use latchfree::queue::arena::Storage;
///
/// let mut inline = [0u32; 4]; // a `Fixed<4>` buffer
/// assert_eq!(Storage::<u32>::limit(&inline), 4);
/// assert!(!inline.try_grow()); // fixed storage never grows
/// assert_eq!(inline.as_slice().len(), 4);
/// ```
pub trait Storage<E> {
    /// The elements available so far.
    fn as_slice(&self) -> &[E];
    /// The elements available so far, mutably.
    fn as_mut_slice(&mut self) -> &mut [E];
    /// Appends one blank element; `false` once the storage cannot grow.
    fn try_grow(&mut self) -> bool;
    /// The most elements this storage will ever hold.
    fn limit(&self) -> usize;
}

/// A family of storages: chooses fixed or growable buffers for every
/// buffer a structure needs.
///
/// ```
/// use latchfree::queue::arena::{Fixed, Growable, StorageKind};
/// use latchfree::queue::PriorityQueue;
///
/// // Code written once for both storages.
/// fn drain_sorted<K: StorageKind>(q: &mut PriorityQueue<u32, (), K>) -> Vec<u32> {
///     std::iter::from_fn(|| q.pop().map(|(p, ())| p)).collect()
/// }
/// let mut fixed: PriorityQueue<u32, (), Fixed<8>> = PriorityQueue::new_fixed();
/// let mut heap: PriorityQueue<u32, (), Growable> = PriorityQueue::new();
/// for p in [3, 1, 2] {
///     fixed.push(p, ()).unwrap();
///     heap.push(p, ()).unwrap();
/// }
/// assert_eq!(drain_sorted(&mut fixed), drain_sorted(&mut heap));
/// ```
pub trait StorageKind {
    /// The buffer of `E`s.
    type Buf<E: Blank>: Storage<E>;
}

/// Inline storage for exactly `N` entries: no allocator, `const`
/// constructors, so a structure can sit in a `static`.
///
/// ```
/// use latchfree::queue::arena::Fixed;
/// use latchfree::queue::PriorityQueue;
///
/// let mut q: PriorityQueue<u8, &str, Fixed<2>> = PriorityQueue::new_fixed();
/// q.push(1, "a").unwrap();
/// q.push(2, "b").unwrap();
/// assert!(q.is_full());
/// assert_eq!(q.push(3, "c"), Err((3, "c"))); // full: handed back, no panic
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fixed<const N: usize>;

impl<const N: usize> StorageKind for Fixed<N> {
    type Buf<E: Blank> = [E; N];
}

impl<E, const N: usize> Storage<E> for [E; N] {
    #[inline(always)]
    fn as_slice(&self) -> &[E] {
        self
    }
    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [E] {
        self
    }
    #[inline(always)]
    fn try_grow(&mut self) -> bool {
        false
    }
    #[inline(always)]
    fn limit(&self) -> usize {
        N
    }
}

/// Heap storage that grows on demand (amortised O(1)), up to a limit.
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::queue::PriorityQueue;
///
/// // Reserve room for 16, never hold more than 1000.
/// let mut q: PriorityQueue<u32, u32, Growable> = PriorityQueue::with_capacity(16, 1000);
/// for i in 0..1000 {
///     q.push(i, i).unwrap();
/// }
/// assert!(q.push(0, 0).is_err());
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy)]
pub struct Growable;

#[cfg(feature = "alloc")]
impl StorageKind for Growable {
    type Buf<E: Blank> = GrowVec<E>;
}

/// A `Vec` that grows one blank element at a time up to `limit`.
///
/// ```
/// use latchfree::queue::arena::{GrowVec, Growable, StorageKind};
///
/// // `Growable` structures keep each of their buffers in a `GrowVec`.
/// fn is_growvec<E>(_: std::marker::PhantomData<GrowVec<E>>) {}
/// is_growvec::<u32>(std::marker::PhantomData::<<Growable as StorageKind>::Buf<u32>>);
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct GrowVec<E> {
    vec: alloc::vec::Vec<E>,
    limit: usize,
}

#[cfg(feature = "alloc")]
impl<E> GrowVec<E> {
    pub(crate) fn new(reserve: usize, limit: usize) -> Self {
        Self {
            vec: alloc::vec::Vec::with_capacity(reserve.min(limit)),
            limit,
        }
    }
}

#[cfg(feature = "alloc")]
impl<E: Blank> Storage<E> for GrowVec<E> {
    #[inline(always)]
    fn as_slice(&self) -> &[E] {
        &self.vec
    }
    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [E] {
        &mut self.vec
    }
    #[inline]
    fn try_grow(&mut self) -> bool {
        if self.vec.len() >= self.limit {
            return false;
        }
        self.vec.push(E::BLANK);
        true
    }
    #[inline(always)]
    fn limit(&self) -> usize {
        self.limit
    }
}

/// A slot index plus the generation it was handed out with.
///
/// ```
/// use latchfree::queue::arena::Fixed;
/// use latchfree::queue::PriorityQueue;
///
/// let mut q: PriorityQueue<u8, (), Fixed<4>> = PriorityQueue::new_fixed();
/// let raw = q.push(1, ()).unwrap().raw();
/// assert_eq!((raw.index, raw.gen % 2), (0, 1)); // live slots have odd generations
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RawKey {
    /// Slot index.
    pub index: u32,
    /// Generation at insert time (always odd).
    pub gen: u32,
}

/// One arena entry. Its fields are private to the crate.
///
/// ```
/// use latchfree::wheel::bytes_per_timer;
///
/// // What one timer with a `u64` payload costs in a wheel's arena.
/// let bytes = bytes_per_timer::<u64>();
/// assert!(bytes >= 8 && bytes <= 64);
/// ```
pub struct Slot<L, T> {
    gen: u32,
    next_free: u32,
    pub(crate) link: L,
    value: MaybeUninit<T>,
}

impl<L: Blank, T> Blank for Slot<L, T> {
    const BLANK: Self = Slot {
        gen: 0,
        next_free: NIL,
        link: L::BLANK,
        value: MaybeUninit::uninit(),
    };
}

/// The arena: slots, the free list and the count of live entries.
pub(crate) struct Arena<L: Blank, T, K: StorageKind> {
    slots: K::Buf<Slot<L, T>>,
    free: u32,
    init: u32,
    len: u32,
}

impl<L: Blank, T, const N: usize> Arena<L, T, Fixed<N>> {
    /// An empty arena of exactly `N` slots.
    pub(crate) const fn new_fixed() -> Self {
        assert!(N < NIL as usize, "arena capacity must be below u32::MAX");
        Self {
            slots: [const { Slot::BLANK }; N],
            free: NIL,
            init: 0,
            len: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl<L: Blank, T> Arena<L, T, Growable> {
    /// An empty growable arena with room for `reserve` entries before it
    /// reallocates, holding at most `limit` entries.
    pub(crate) fn new_growable(reserve: usize, limit: usize) -> Self {
        Self {
            slots: GrowVec::new(reserve, limit.min(NIL as usize - 1)),
            free: NIL,
            init: 0,
            len: 0,
        }
    }
}

impl<L: Blank, T, K: StorageKind> Arena<L, T, K> {
    /// Live entries.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The most entries this arena will hold.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.limit()
    }

    /// Stores `value` with link data `link`; gives the value back when the
    /// storage is full.
    #[inline]
    pub(crate) fn insert(&mut self, link: L, value: T) -> Result<RawKey, T> {
        let index = if self.free != NIL {
            let i = self.free;
            self.free = self.slots.as_slice()[i as usize].next_free;
            i
        } else if (self.init as usize) < self.slots.as_slice().len() || self.slots.try_grow() {
            self.init += 1;
            self.init - 1
        } else {
            return Err(value);
        };
        let slot = &mut self.slots.as_mut_slice()[index as usize];
        debug_assert!(slot.gen & 1 == 0, "allocated an occupied slot");
        slot.gen = slot.gen.wrapping_add(1);
        slot.link = link;
        slot.value.write(value);
        self.len += 1;
        Ok(RawKey {
            index,
            gen: slot.gen,
        })
    }

    /// Whether `key` names a live entry.
    #[inline(always)]
    pub(crate) fn contains(&self, key: RawKey) -> bool {
        // The generation is odd only while occupied and keys carry odd
        // generations, so equality implies occupancy.
        self.slots
            .as_slice()
            .get(key.index as usize)
            .is_some_and(|s| s.gen == key.gen)
    }

    /// The key of the occupied slot `index`.
    #[inline(always)]
    pub(crate) fn key_of(&self, index: u32) -> RawKey {
        let gen = self.slots.as_slice()[index as usize].gen;
        debug_assert!(gen & 1 == 1);
        RawKey { index, gen }
    }

    /// Link data of slot `index` (occupied or not).
    #[inline(always)]
    pub(crate) fn link(&self, index: u32) -> &L {
        &self.slots.as_slice()[index as usize].link
    }

    /// Link data of slot `index`, mutably.
    #[inline(always)]
    pub(crate) fn link_mut(&mut self, index: u32) -> &mut L {
        &mut self.slots.as_mut_slice()[index as usize].link
    }

    /// The value of a live entry.
    #[inline]
    pub(crate) fn get(&self, key: RawKey) -> Option<&T> {
        let slot = self.slots.as_slice().get(key.index as usize)?;
        if slot.gen != key.gen {
            return None;
        }
        // SAFETY: the generation matched an odd key generation, so the slot
        // is occupied and its value initialised (ground rule 1).
        Some(unsafe { slot.value.assume_init_ref() })
    }

    /// The value of a live entry, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: RawKey) -> Option<&mut T> {
        let slot = self.slots.as_mut_slice().get_mut(key.index as usize)?;
        if slot.gen != key.gen {
            return None;
        }
        // SAFETY: as in `get`.
        Some(unsafe { slot.value.assume_init_mut() })
    }

    /// The value in occupied slot `index`.
    #[inline]
    pub(crate) fn value(&self, index: u32) -> &T {
        let slot = &self.slots.as_slice()[index as usize];
        assert!(slot.gen & 1 == 1, "value of a free slot");
        // SAFETY: the generation is odd, so the value is initialised.
        unsafe { slot.value.assume_init_ref() }
    }

    /// Takes the value out of occupied slot `index` and frees the slot.
    /// The caller must already have unlinked it from its structure.
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) -> T {
        let free = self.free;
        let slot = &mut self.slots.as_mut_slice()[index as usize];
        assert!(slot.gen & 1 == 1, "removed a free slot");
        slot.gen = slot.gen.wrapping_add(1);
        slot.next_free = free;
        self.free = index;
        self.len -= 1;
        // SAFETY: the generation was odd, so the value was initialised; the
        // now-even generation marks it moved out, so nothing reads it again.
        unsafe { slot.value.assume_init_read() }
    }

    /// Drops every value and frees every slot, keeping generations so that
    /// keys handed out before stay stale. If a value's `Drop` panics, the
    /// rest are still dropped (a second panic aborts, as for a `Vec`) and
    /// the arena still ends empty.
    pub(crate) fn clear(&mut self) {
        /// Finishes the clear on every path, unwinding included.
        struct Finish<'a, L: Blank, T, K: StorageKind>(&'a mut Arena<L, T, K>);
        impl<L: Blank, T, K: StorageKind> Drop for Finish<'_, L, T, K> {
            fn drop(&mut self) {
                // Empty after a clean pass; after a panic, drops the rest.
                self.0.drop_values();
                // Slots below `init` are reused through the `init` path
                // again; their generations carry on from where they were.
                self.0.free = NIL;
                self.0.init = 0;
                self.0.len = 0;
            }
        }
        let finish = Finish(self);
        finish.0.drop_values();
    }

    /// Drops the value of every occupied slot, marking each free first.
    fn drop_values(&mut self) {
        let init = self.init as usize;
        for slot in &mut self.slots.as_mut_slice()[..init] {
            if slot.gen & 1 == 1 {
                slot.gen = slot.gen.wrapping_add(1);
                // SAFETY: odd generation: initialised; the generation is now
                // even, so it is never read or dropped again.
                unsafe { slot.value.assume_init_drop() };
            }
        }
    }
}

impl<L: Blank, T, K: StorageKind> Drop for Arena<L, T, K> {
    fn drop(&mut self) {
        if core::mem::needs_drop::<T>() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_never_reach_reused_slots() {
        let mut a: Arena<u32, u64, Fixed<2>> = Arena::new_fixed();
        let k1 = a.insert(0, 1).unwrap();
        let k2 = a.insert(0, 2).unwrap();
        assert_eq!(a.insert(0, 3), Err(3));
        assert_eq!(a.remove(k1.index), 1);
        assert!(!a.contains(k1));
        let k3 = a.insert(0, 4).unwrap();
        assert_eq!(k3.index, k1.index);
        assert_eq!(a.get(k1), None);
        assert_eq!(a.get(k3), Some(&4));
        a.clear();
        assert_eq!(a.len(), 0);
        assert!(!a.contains(k2) && !a.contains(k3));
        let k4 = a.insert(0, 5).unwrap();
        assert_ne!(k4, k1);
        assert_ne!(k4, k3);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn growable_respects_limit_and_drops() {
        use alloc::rc::Rc;
        let probe = Rc::new(());
        let mut a: Arena<u32, Rc<()>, Growable> = Arena::new_growable(0, 3);
        for _ in 0..3 {
            a.insert(0, probe.clone()).unwrap();
        }
        assert!(a.insert(0, probe.clone()).is_err());
        assert_eq!(Rc::strong_count(&probe), 4);
        drop(a);
        assert_eq!(Rc::strong_count(&probe), 1);
    }
}
