//! An index-linked slot arena with generation-checked keys, shared by the
//! timing wheel ([`crate::wheel`]) and the priority and delay queues
//! ([`crate::queue`]).
//!
//! Layout: two parallel tables indexed by slot, split by how often a walk
//! touches them.
//! - `slots`: one [`Slot`] per entry: a generation counter, a word that is
//!   the free-list link while the slot is free and the structure's *tag*
//!   while it is occupied (a wheel's bucket), the structure's *cold* link
//!   data `C` (what only this entry's own operations read: a deadline) and
//!   the payload.
//! - `hot`: the structure's *hot* link data `H`, one small record per slot
//!   (list neighbours, a heap position): what a walk over many entries
//!   reads. Kept apart so a walk through thousands of entries reads a dense
//!   table (a wheel's chain is 8 bytes a timer) and can look ahead of the
//!   entry it is working on, prefetching the slots it will need
//!   ([`Arena::prefetch`]) instead of waiting for each in turn.
//!
//! Structures link entries to each other by `u32` slot index, never by
//! pointer, so the storage may move (a `Vec` growing) without breaking a
//! link, and one timer costs no allocation.
//!
//! Ground rules:
//! - A slot's generation is odd exactly while it holds a value (its
//!   `MaybeUninit` payload is initialised) and even while it is free. Each
//!   insert and each removal adds one, so a [`RawKey`] taken at insert time
//!   matches its slot only until that value leaves: a stale key can never
//!   reach a reused slot. Generations wrap after 2^31 reuses of one slot.
//! - Slots `init..` have never been handed out (or were handed back by
//!   [`Arena::compact`]); free slots below `init` form a singly linked list
//!   through `aux`. Neither needs the storage to be initialised up
//!   front, so a fixed arena is `const`-constructible.
//! - The free-list links (`free`, `aux` of a free slot) are stored inverted
//!   (`!index`, so `!NIL == 0` means "none"): an empty arena, and a blank
//!   slot, is all zero bits, so a `static` one goes to `.bss`.
//! - `gen_floor` is even and at least the generation of every slot
//!   `compact` truncated away; a slot grown anew starts from it, so a key
//!   into a truncated slot stays stale when the slot comes back.
//! - `hot` and `slots` always have the same length, and every index the
//!   arena hands out is below it.
//!
//! No panics: every lookup by index is a checked `get`. An index the
//! structures link is in range by the rules above, so the "out of range"
//! branch is dead; it still exists (a refusal, `None`, or a write that
//! lands nowhere, each with a `debug_assert!`) rather than a panic or an
//! unchecked access, so a user's key is always just refused and the
//! `panic-never` firmwares link. The one branch costs a compare per access
//! the predictor never gets wrong.
//!
//! Storage is chosen by a [`StorageKind`]: [`Fixed<N>`] is an inline array
//! (no allocator, `const fn` constructors), [`Growable`] a `Vec` (with the
//! `alloc` feature). The public types are re-exported from
//! [`crate::queue`] and [`crate::wheel`]; `Storage`, `Blank` and `GrowVec`
//! are nameable by no user, so `StorageKind` is sealed.

use core::mem::MaybeUninit;

/// The "no slot" index.
pub(crate) const NIL: u32 = u32::MAX;

/// Types with a constant placeholder value that fills storage before use
/// (all zero bits where possible, so a `static` goes to `.bss`).
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

impl Blank for u64 {
    const BLANK: Self = 0;
}

impl Blank for () {
    const BLANK: Self = ();
}

/// A contiguous buffer an arena or heap lives in.
pub trait Storage<E> {
    /// The elements available so far.
    fn as_slice(&self) -> &[E];
    /// The elements available so far, mutably.
    fn as_mut_slice(&mut self) -> &mut [E];
    /// Appends one blank element; `false` once the storage cannot grow.
    fn try_grow(&mut self) -> bool;
    /// The most elements this storage will ever hold.
    fn limit(&self) -> usize;
    /// Makes room for `additional` more elements without reallocating
    /// (fixed storage: nothing to do).
    fn reserve(&mut self, additional: usize);
    /// Drops the elements from `len` on and returns spare memory (fixed
    /// storage: nothing to do; its length never changes).
    fn truncate_and_shrink(&mut self, len: usize);
}

/// A family of storages: chooses fixed or growable buffers for every
/// buffer a structure needs. Sealed: [`Fixed`] and [`Growable`] are the
/// two kinds.
///
/// ```
/// use latchfree::queue::{Fixed, Growable, PriorityQueue, StorageKind};
///
/// // Code written once for both storages.
/// fn drain_sorted<K: StorageKind>(q: &mut PriorityQueue<(), u32, K>) -> Vec<u32> {
///     std::iter::from_fn(|| q.pop().map(|((), p)| p)).collect()
/// }
/// let mut fixed: PriorityQueue<(), u32, Fixed<8>> = PriorityQueue::new_fixed();
/// let mut heap: PriorityQueue<(), u32, Growable> = PriorityQueue::new();
/// for p in [3, 1, 2] {
///     fixed.try_push((), p).unwrap();
///     heap.push((), p);
/// }
/// assert_eq!(drain_sorted(&mut fixed), drain_sorted(&mut heap));
/// ```
pub trait StorageKind {
    /// The buffer of `E`s.
    type Buf<E: Blank>: Storage<E>;
    /// The heads of one wheel slot's lists ([`crate::wheel`] splits a
    /// slot's timers over this many lists, by slot index, so a drain
    /// follows that many chains at once instead of waiting for each link
    /// in turn): one for fixed storage, whose wheels are small and where
    /// every byte of the slot tables counts; eight for growable storage,
    /// whose wheels hold millions of timers.
    type Ways: Ways;
    /// A small table of `L` `E`s (a wheel's levels): inline for fixed
    /// storage (`const`, `static`-ready), boxed for growable storage, so a
    /// growable wheel, whose eight lists per slot make its levels 2 KiB
    /// each, stays a small value to move and to keep on a small stack.
    type Table<E: Blank, const L: usize>: Table<E>;
}

/// `L` elements, inline or boxed (see [`StorageKind::Table`]).
pub trait Table<E> {
    /// The elements.
    fn items(&self) -> &[E];
    /// The elements, mutably.
    fn items_mut(&mut self) -> &mut [E];
}

impl<E, const L: usize> Table<E> for [E; L] {
    #[inline(always)]
    fn items(&self) -> &[E] {
        self
    }
    #[inline(always)]
    fn items_mut(&mut self) -> &mut [E] {
        self
    }
}

#[cfg(feature = "alloc")]
impl<E, const L: usize> Table<E> for alloc::boxed::Box<[E; L]> {
    #[inline(always)]
    fn items(&self) -> &[E] {
        &self[..]
    }
    #[inline(always)]
    fn items_mut(&mut self) -> &mut [E] {
        &mut self[..]
    }
}

/// One wheel slot's list heads, one per way, each stored inverted (so a
/// blank one, all zero bits, is empty): a `[u32; N]`.
pub trait Ways: Blank + Copy + AsRef<[u32]> + AsMut<[u32]> {
    /// Lists per slot.
    const LEN: usize;
}

impl<const N: usize> Ways for [u32; N] {
    const LEN: usize = N;
}

impl<const N: usize> Blank for [u32; N] {
    const BLANK: Self = [0; N];
}

/// Inline storage for exactly `N` entries: no allocator, `const`
/// constructors, so a structure can sit in a `static`.
///
/// ```
/// use latchfree::queue::{Fixed, PriorityQueue};
///
/// let mut q: PriorityQueue<&str, u8, Fixed<2>> = PriorityQueue::new_fixed();
/// q.try_push("a", 1).unwrap();
/// q.try_push("b", 2).unwrap();
/// assert!(q.is_full());
/// assert_eq!(q.try_push("c", 3), Err(("c", 3))); // full: handed back, no panic
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fixed<const N: usize>;

impl<const N: usize> StorageKind for Fixed<N> {
    type Buf<E: Blank> = [E; N];
    type Ways = [u32; 1];
    type Table<E: Blank, const L: usize> = [E; L];
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
    fn reserve(&mut self, _additional: usize) {}
    fn truncate_and_shrink(&mut self, _len: usize) {}
}

/// Heap storage that grows on demand (amortised O(1)) and is unbounded
/// but for the index space: at most `u32::MAX - 1` entries.
///
/// ```
/// use latchfree::queue::{Growable, PriorityQueue};
///
/// // Room for 16 before the first reallocation; `push` never fails.
/// let mut q: PriorityQueue<u32, u32, Growable> = PriorityQueue::with_capacity(16);
/// for i in 0..1000 {
///     q.push(i, i);
/// }
/// assert_eq!(q.len(), 1000);
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy)]
pub struct Growable;

#[cfg(feature = "alloc")]
impl StorageKind for Growable {
    type Buf<E: Blank> = GrowVec<E>;
    type Ways = [u32; 8];
    type Table<E: Blank, const L: usize> = alloc::boxed::Box<[E; L]>;
}

/// A `Vec` that grows one blank element at a time up to `limit`.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct GrowVec<E> {
    vec: alloc::vec::Vec<E>,
    limit: usize,
}

#[cfg(feature = "alloc")]
impl<E> GrowVec<E> {
    /// An empty buffer with room for `reserve` elements, never longer than
    /// the index space allows (`NIL - 1`).
    pub(crate) fn new(reserve: usize) -> Self {
        let limit = NIL as usize - 1;
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
    fn reserve(&mut self, additional: usize) {
        let room = self.limit - self.vec.len();
        self.vec.reserve(additional.min(room));
    }
    fn truncate_and_shrink(&mut self, len: usize) {
        self.vec.truncate(len);
        self.vec.shrink_to_fit();
    }
}

/// A slot index plus the generation it was handed out with.
///
/// ```
/// use latchfree::queue::{Fixed, PriorityQueue};
///
/// let mut q: PriorityQueue<(), u8, Fixed<4>> = PriorityQueue::new_fixed();
/// let raw = q.try_push((), 1).unwrap().raw();
/// assert_eq!((raw.index, raw.gen % 2), (0, 1)); // live slots have odd generations
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RawKey {
    /// Slot index.
    pub index: u32,
    /// Generation at insert time (always odd).
    pub gen: u32,
}

/// A timed entry a keyed timed container handed back (it expired, or was
/// taken out): its key (stale from now on), its value and its deadline as
/// last set. One shape for the wheel ([`crate::wheel::Expired`], keyed by
/// [`TimerKey`](crate::wheel::TimerKey)) and the delay queue
/// ([`crate::queue::Expired`], keyed by [`DelayKey`](crate::queue::DelayKey)).
///
/// ```
/// use latchfree::queue::{DelayQueue, Expired, Fixed};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let mut q: DelayQueue<u32, Fixed<4>> = DelayQueue::new_fixed();
/// let key = q.try_insert_at(7, 5).unwrap();
/// let Expired { key: k, value, deadline } = q.poll_expired(9).unwrap();
/// assert_eq!((k, value, deadline), (key, 7, 5));
///
/// // The wheel's is the same struct, keyed by `TimerKey`.
/// let mut w: Wheel<u32, Fixed<4>> = Wheel::new_fixed(WheelConfig::new());
/// let key = w.try_insert_at(7, 5).unwrap();
/// let e: latchfree::wheel::Expired<u32> = w.poll_expired(9).unwrap();
/// assert_eq!((e.key, e.value, e.deadline), (key, 7, 5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expired<K, T> {
    /// The key it was inserted with (stale from now on).
    pub key: K,
    /// The payload.
    pub value: T,
    /// Its deadline, in caller time units, as last set.
    pub deadline: u64,
}

/// One arena entry: its generation, free-list link or tag, the
/// structure's cold link data `C` and the payload. Its fields are private
/// to the crate.
pub struct Slot<C, T> {
    gen: u32,
    /// Free slot: the next free slot, inverted (ground rule 3). Occupied
    /// slot: the structure's tag ([`Arena::tag`]), 0 from `insert` on.
    aux: u32,
    link: C,
    value: MaybeUninit<T>,
}

impl<C: Blank, T> Blank for Slot<C, T> {
    const BLANK: Self = Slot {
        gen: 0,
        aux: !NIL,
        link: C::BLANK,
        value: MaybeUninit::uninit(),
    };
}

/// Asks the processor to start loading the cache line at `p` (no effect
/// on targets without a prefetch instruction, or under Miri). A hint: it
/// reads nothing, cannot fault, and `p` may point anywhere.
#[inline(always)]
fn prefetch_read(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch is a hint that never faults and reads no memory
    // the program can observe; any address is allowed.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// The arena: slots, their hot link table, the free list and the count of
/// live entries. `H` is the structure's hot link data, `C` its cold link
/// data (see the module docs).
pub(crate) struct Arena<H: Blank, C: Blank, T, K: StorageKind> {
    slots: K::Buf<Slot<C, T>>,
    /// One `H` per slot (ground rule 5: as long as `slots`).
    hot: K::Buf<H>,
    /// The first free slot below `init`, inverted (ground rule 3).
    free: u32,
    init: u32,
    len: u32,
    /// Even; see ground rule 4.
    gen_floor: u32,
}

impl<H: Blank, C: Blank, T, const N: usize> Arena<H, C, T, Fixed<N>> {
    /// An empty arena of exactly `N` slots.
    pub(crate) const fn new_fixed() -> Self {
        assert!(N < NIL as usize, "arena capacity must be below u32::MAX");
        Self {
            slots: [const { Slot::BLANK }; N],
            hot: [const { H::BLANK }; N],
            free: !NIL,
            init: 0,
            len: 0,
            gen_floor: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl<H: Blank, C: Blank, T> Arena<H, C, T, Growable> {
    /// An empty growable arena with room for `reserve` entries before it
    /// reallocates.
    pub(crate) fn new_growable(reserve: usize) -> Self {
        Self {
            slots: GrowVec::new(reserve),
            hot: GrowVec::new(reserve),
            free: !NIL,
            init: 0,
            len: 0,
            gen_floor: 0,
        }
    }
}

impl<H: Blank, C: Blank, T, K: StorageKind> Arena<H, C, T, K> {
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

    /// Appends one blank slot to both tables; `false` once they cannot
    /// grow.
    #[inline]
    fn grow(&mut self) -> bool {
        if !self.slots.try_grow() {
            return false;
        }
        // Same length and limit as `slots` (ground rule 5), so this grows
        // too.
        let grew = self.hot.try_grow();
        debug_assert!(grew, "the hot table stopped growing before the slots");
        grew
    }

    /// Stores `value` with cold link data `link`; gives the value back when
    /// the storage is full. The slot's hot data is left as it was: the
    /// structure writes it next.
    #[inline]
    pub(crate) fn insert(&mut self, link: C, value: T) -> Result<RawKey, T> {
        let first_free = !self.free;
        let (index, from_free, grown) = if first_free != NIL {
            (first_free, true, false)
        } else if (self.init as usize) < self.slots.as_slice().len() {
            (self.init, false, false)
        } else if self.grow() {
            (self.init, false, true)
        } else {
            return Err(value);
        };
        let floor = self.gen_floor;
        let Some(slot) = self.slots.as_mut_slice().get_mut(index as usize) else {
            // Dead: free-list links and `init` are below the length
            // (ground rules 2 and 5).
            debug_assert!(false, "arena free list out of range");
            return Err(value);
        };
        if from_free {
            // Both inverted: the link moves as it is.
            self.free = slot.aux;
        } else {
            self.init += 1;
        }
        if grown {
            // A slot grown anew (maybe one `compact` took away): start
            // above every generation a stale key into it may carry.
            slot.gen = floor;
        }
        debug_assert!(slot.gen & 1 == 0, "allocated an occupied slot");
        slot.gen = slot.gen.wrapping_add(1);
        slot.aux = 0;
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

    /// The key of the occupied slot `index`; `None` if it is free.
    #[inline(always)]
    pub(crate) fn key_of(&self, index: u32) -> Option<RawKey> {
        let gen = self.slots.as_slice().get(index as usize)?.gen;
        (gen & 1 == 1).then_some(RawKey { index, gen })
    }

    /// Cold link data of slot `index` (occupied or not; blank for an index
    /// out of range, which no structure links).
    #[inline(always)]
    pub(crate) fn link(&self, index: u32) -> C
    where
        C: Copy,
    {
        match self.slots.as_slice().get(index as usize) {
            Some(slot) => slot.link,
            None => {
                debug_assert!(false, "arena link {index} out of range");
                C::BLANK
            }
        }
    }

    /// Cold link data of slot `index`, mutably (`None` only for an index
    /// out of range, which no structure links).
    #[inline(always)]
    pub(crate) fn link_mut(&mut self, index: u32) -> Option<&mut C> {
        let slot = self.slots.as_mut_slice().get_mut(index as usize);
        debug_assert!(slot.is_some(), "arena link {index} out of range");
        Some(&mut slot?.link)
    }

    /// The tag of occupied slot `index`: a `u32` the structure keeps with
    /// the entry (the wheel: which list it is on) in the word that links
    /// the slot into the free list while it is free. 0 from `insert` until
    /// set; 0 for an index out of range, which no structure links.
    #[inline(always)]
    pub(crate) fn tag(&self, index: u32) -> u32 {
        let slot = self.slots.as_slice().get(index as usize);
        debug_assert!(
            slot.is_some_and(|s| s.gen & 1 == 1),
            "tag of free slot {index}"
        );
        slot.map_or(0, |s| s.aux)
    }

    /// Sets the tag of occupied slot `index` (nothing for an index out of
    /// range, which no structure links).
    #[inline(always)]
    pub(crate) fn set_tag(&mut self, index: u32, tag: u32) {
        let slot = self.slots.as_mut_slice().get_mut(index as usize);
        debug_assert!(
            slot.as_ref().is_some_and(|s| s.gen & 1 == 1),
            "tag of free slot {index}"
        );
        if let Some(slot) = slot {
            slot.aux = tag;
        }
    }

    /// Hot link data of slot `index` (blank for an index out of range,
    /// which no structure links).
    #[inline(always)]
    pub(crate) fn hot(&self, index: u32) -> H
    where
        H: Copy,
    {
        match self.hot.as_slice().get(index as usize) {
            Some(h) => *h,
            None => {
                debug_assert!(false, "arena hot link {index} out of range");
                H::BLANK
            }
        }
    }

    /// Hot link data of slot `index`, mutably (`None` only for an index out
    /// of range, which no structure links).
    #[inline(always)]
    pub(crate) fn hot_mut(&mut self, index: u32) -> Option<&mut H> {
        let h = self.hot.as_mut_slice().get_mut(index as usize);
        debug_assert!(h.is_some(), "arena hot link {index} out of range");
        h
    }

    /// The whole hot table (one entry per slot, live or not).
    #[inline(always)]
    pub(crate) fn hot_table_mut(&mut self) -> &mut [H] {
        self.hot.as_mut_slice()
    }

    /// Starts loading slot `index` into the cache, so a walk can ask for
    /// the slots it will reach a few steps from now while it works on this
    /// one. A hint: any index is fine.
    #[inline(always)]
    pub(crate) fn prefetch(&self, index: u32) {
        let first = self
            .slots
            .as_slice()
            .as_ptr()
            .wrapping_add(index as usize)
            .cast::<u8>();
        prefetch_read(first);
        // A slot may straddle two cache lines.
        prefetch_read(first.wrapping_add(core::mem::size_of::<Slot<C, T>>() - 1));
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

    /// The value in slot `index`; `None` if the slot is free.
    #[inline]
    pub(crate) fn value(&self, index: u32) -> Option<&T> {
        let slot = self.slots.as_slice().get(index as usize)?;
        if slot.gen & 1 == 0 {
            debug_assert!(false, "value of free slot {index}");
            return None;
        }
        // SAFETY: the generation is odd, so the value is initialised.
        Some(unsafe { slot.value.assume_init_ref() })
    }

    /// Takes the value out of slot `index`, frees the slot and returns
    /// the key and cold link data the entry had (one slot access). `None`
    /// if the slot is free (no structure removes a slot it has not
    /// linked). The caller must already have unlinked it from its
    /// structure.
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) -> Option<(RawKey, C, T)>
    where
        C: Copy,
    {
        let free = self.free;
        let slot = self.slots.as_mut_slice().get_mut(index as usize)?;
        if slot.gen & 1 == 0 {
            debug_assert!(false, "removed free slot {index}");
            return None;
        }
        let key = RawKey {
            index,
            gen: slot.gen,
        };
        slot.gen = slot.gen.wrapping_add(1);
        slot.aux = free;
        self.free = !index;
        self.len -= 1;
        // SAFETY: the generation was odd, so the value was initialised; the
        // now-even generation marks it moved out, so nothing reads it again.
        Some((key, slot.link, unsafe { slot.value.assume_init_read() }))
    }

    /// Drops every value and frees every slot, keeping generations so that
    /// keys handed out before stay stale. If a value's `Drop` panics, the
    /// rest are still dropped (a second panic aborts, as for a `Vec`) and
    /// the arena still ends empty.
    pub(crate) fn clear(&mut self) {
        /// Finishes the clear on every path, unwinding included.
        struct Finish<'a, H: Blank, C: Blank, T, K: StorageKind>(&'a mut Arena<H, C, T, K>);
        impl<H: Blank, C: Blank, T, K: StorageKind> Drop for Finish<'_, H, C, T, K> {
            fn drop(&mut self) {
                // Empty after a clean pass; after a panic, drops the rest.
                self.0.drop_values();
                // Slots below `init` are reused through the `init` path
                // again; their generations carry on from where they were.
                self.0.free = !NIL;
                self.0.init = 0;
                self.0.len = 0;
            }
        }
        let finish = Finish(self);
        finish.0.drop_values();
    }

    /// Makes room for `additional` more entries without reallocating
    /// (nothing for fixed storage).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
        self.hot.reserve(additional);
    }

    /// Hands back the memory of the free slots above the highest live one
    /// (growable storage; fixed storage keeps its array). Keys stay valid;
    /// keys into handed-back slots stay stale (ground rule 4). Returns the
    /// new number of slots in use, `init`. O(slots).
    pub(crate) fn compact(&mut self) -> usize {
        let slots = self.slots.as_slice();
        let mut init = (self.init as usize).min(slots.len());
        let mut floor = self.gen_floor;
        while let Some(slot) = init.checked_sub(1).and_then(|i| slots.get(i)) {
            if slot.gen & 1 == 1 {
                break;
            }
            init -= 1;
            floor = floor.max(slot.gen);
        }
        // Every slot from `init` up is free or never used; keep the free
        // list to the slots below it, in its order.
        let slots = self.slots.as_mut_slice();
        let mut kept = NIL;
        let mut tail = NIL;
        let mut i = !self.free;
        while let Some(slot) = slots.get(i as usize) {
            let next = !slot.aux;
            if (i as usize) < init {
                if let Some(t) = slots.get_mut(tail as usize) {
                    t.aux = !i;
                } else {
                    kept = i;
                }
                tail = i;
            }
            i = next;
        }
        if let Some(t) = slots.get_mut(tail as usize) {
            t.aux = !NIL;
        }
        self.free = !kept;
        self.init = init as u32;
        self.gen_floor = floor;
        self.slots.truncate_and_shrink(init);
        self.hot.truncate_and_shrink(init);
        init
    }

    /// The slot indices handed out so far (`0..init`): every live entry is
    /// below it.
    #[inline(always)]
    pub(crate) fn high_water(&self) -> usize {
        self.init as usize
    }

    /// Drops the value of every occupied slot, marking each free first.
    fn drop_values(&mut self) {
        let slots = self.slots.as_mut_slice();
        let init = (self.init as usize).min(slots.len());
        for slot in &mut slots[..init] {
            if slot.gen & 1 == 1 {
                slot.gen = slot.gen.wrapping_add(1);
                // SAFETY: odd generation: initialised; the generation is now
                // even, so it is never read or dropped again.
                unsafe { slot.value.assume_init_drop() };
            }
        }
    }
}

impl<H: Blank, C: Blank, T, K: StorageKind> Drop for Arena<H, C, T, K> {
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
        let mut a: Arena<u32, u32, u64, Fixed<2>> = Arena::new_fixed();
        let k1 = a.insert(0, 1).unwrap();
        let k2 = a.insert(0, 2).unwrap();
        assert_eq!(a.insert(0, 3), Err(3));
        assert_eq!(a.remove(k1.index), Some((k1, 0, 1)));
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
        let mut a: Arena<u32, u32, Rc<()>, Growable> = Arena::new_growable(0);
        for _ in 0..3 {
            a.insert(0, probe.clone()).unwrap();
        }
        assert_eq!(Rc::strong_count(&probe), 4);
        drop(a);
        assert_eq!(Rc::strong_count(&probe), 1);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn compact_keeps_live_keys_and_stale_keys_stale() {
        let mut a: Arena<u32, u32, u32, Growable> = Arena::new_growable(0);
        let keys: alloc::vec::Vec<_> = (0..8).map(|v| a.insert(0, v).unwrap()).collect();
        for k in &keys[2..] {
            assert!(a.remove(k.index).is_some());
        }
        assert!(a.remove(keys[0].index).is_some());
        assert_eq!(a.compact(), 2); // slot 1 is the highest live one
        assert_eq!(a.get(keys[1]), Some(&1));
        for k in keys.iter().filter(|k| k.index != 1) {
            assert!(!a.contains(*k));
        }
        // Regrown and reused slots never answer to the old keys.
        let fresh: alloc::vec::Vec<_> = (0..8).map(|v| a.insert(0, 10 + v).unwrap()).collect();
        for k in keys.iter().filter(|k| k.index != 1) {
            assert!(!a.contains(*k), "stale key {k:?} reached a regrown slot");
        }
        assert_eq!(a.len(), 9);
        assert!(fresh.iter().all(|k| a.contains(*k)));
    }
}
