//! Where a ring's slots live: inline in the ring (a const-generic array, usable
//! in a `static` with no allocator) or on the heap (a capacity chosen at run
//! time, under `alloc`).
//!
//! Besides the event slots, the protocols need two tables:
//!
//! - the *gates*, one padded sequence per consumer, worker or work-group claim
//!   (at most 64, so a set of them fits a `u64` mask), held by the storage;
//! - one *stamp* per slot, multi-producer rings only: the packed
//!   `(sequence + 1, skipped)` of the last event published into the slot,
//!   which is how a consumer learns that a slot claimed out of order is
//!   ready. A storage names where its stamps live ([`Storage::Stamps`]):
//!   `Inline` lets a multi-producer ring keep a `[AtomicUsize; N]` beside
//!   it, so a single-producer ring, which keeps none, costs no stamp
//!   memory at all; `Heap` allocates them with its slots.
//!
//! Every slot holds an initialised `T` from construction to drop: events are
//! pre-allocated and written in place, never moved in and out.

#[cfg(feature = "alloc")]
use alloc::{boxed::Box, vec::Vec};

#[cfg(feature = "alloc")]
use super::error::CapacityError;
use super::sequence::{Sequence, MAX_CAPACITY};
use crate::sync::AtomicUsize;

/// The most gates (consumers + workers + work groups) one ring can have.
pub const MAX_GATES: usize = 64;

/// What a multi-producer ring keeps beside its storage for the per-slot
/// stamps (a storage names it as [`Storage::Stamps`]): the table itself,
/// `[AtomicUsize; N]`, or [`InStorage`] when the storage holds them.
/// Sealed; a single-producer ring keeps `()`.
pub trait StampTable: sealed::Sealed + Send + Sync {
    /// A table of zero stamps.
    #[doc(hidden)]
    #[cfg(not(latchfree_loom))]
    // A fresh table per use is the point: each ring gets its own.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Self;

    /// A table of zero stamps (loom's atomics have no `const` constructor).
    #[doc(hidden)]
    #[cfg(latchfree_loom)]
    fn empty() -> Self;
}

/// [`Storage::Stamps`] of a storage that holds its stamps itself (as
/// [`Heap`] does): the ring keeps nothing beside it.
#[derive(Debug, Clone, Copy, Default)]
pub struct InStorage;

mod sealed {
    pub trait Sealed {}
    impl<const N: usize> Sealed for [crate::sync::AtomicUsize; N] {}
    impl Sealed for super::InStorage {}
    impl Sealed for () {}
}

impl<const N: usize> StampTable for [AtomicUsize; N] {
    #[cfg(not(latchfree_loom))]
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Self = [const { AtomicUsize::new(0) }; N];
    #[cfg(latchfree_loom)]
    fn empty() -> Self {
        core::array::from_fn(|_| AtomicUsize::new(0))
    }
}

impl StampTable for InStorage {
    #[cfg(not(latchfree_loom))]
    const EMPTY: Self = InStorage;
    #[cfg(latchfree_loom)]
    fn empty() -> Self {
        InStorage
    }
}

impl StampTable for () {
    #[cfg(not(latchfree_loom))]
    const EMPTY: Self = ();
    #[cfg(latchfree_loom)]
    fn empty() -> Self {}
}

/// A table of zero stamps, in a `const` context where there is one.
#[cfg(not(latchfree_loom))]
pub(super) const fn empty_stamps<T: StampTable>() -> T {
    T::EMPTY
}

/// A table of zero stamps.
#[cfg(latchfree_loom)]
pub(super) fn empty_stamps<T: StampTable>() -> T {
    T::empty()
}

/// One slot's publication stamp, as [`Storage::stamps`] hands them out:
/// `core`'s `AtomicUsize`, or `portable-atomic`'s under that feature.
/// Implementations outside the crate name it so they build either way.
pub type Stamp = AtomicUsize;

/// One consumer's gate, as [`Storage::gates`] hands them out: a
/// [`Stamp`]-sized word, padded to a cache line where the target has a data
/// cache and word-aligned on Cortex-M.
pub type Gate = Sequence;

/// Backing memory for a ring.
///
/// # Safety
///
/// Implementations must guarantee that:
/// - `capacity()` is a power of two, at least 1 and at most
///   [`MAX_CAPACITY`], and never changes;
/// - `slot(i)` for `i < capacity()` returns a pointer to an initialised `Item`
///   that stays valid, at the same address, for the life of the storage, and
///   distinct indices give distinct, non-overlapping items;
/// - `stamps(beside)` returns exactly `capacity()` entries, all starting at
///   zero, and the same entries on every call for the same `beside`;
/// - `gates()` has at most [`MAX_GATES`] entries, all starting at zero.
///
/// The ring, not the storage, is responsible for never creating aliasing
/// `&mut` access through `slot`.
///
/// Every handle of a ring calls these methods through `&self`, from its own
/// thread and concurrently with the others, so a ring is `Sync` only over a
/// storage that is `Sync`. A storage wrapping another and counting calls
/// with an atomic can be shared:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use latchfree::ring::{BusySpin, Gate, Heap, Ring, Single, Stamp, Storage};
///
/// struct Counted {
///     inner: Heap<u64>,
///     calls: AtomicUsize,
/// }
/// // SAFETY: every method forwards to `Heap`, which keeps the contract.
/// unsafe impl Storage for Counted {
///     type Item = u64;
///     type Stamps = <Heap<u64> as Storage>::Stamps;
///     fn capacity(&self) -> usize {
///         self.calls.fetch_add(1, Ordering::Relaxed);
///         self.inner.capacity()
///     }
///     fn slot(&self, i: usize) -> *const u64 { self.inner.slot(i) }
///     fn slot_mut(&self, i: usize) -> *mut u64 { self.inner.slot_mut(i) }
///     fn stamps<'a>(&'a self, beside: &'a Self::Stamps) -> &'a [Stamp] {
///         self.inner.stamps(beside)
///     }
///     fn gates(&self) -> &[Gate] { self.inner.gates() }
/// }
/// fn shared<T: Sync>(_: &T) {}
/// let storage = Counted { inner: Heap::builder(8).gates(1).build().unwrap(), calls: AtomicUsize::new(0) };
/// let ring = Ring::<Counted, Single, BusySpin>::with_wait(storage, BusySpin);
/// shared(&ring);
/// ```
///
/// The same storage counting with a `Cell` is not `Sync`, and the ring over
/// it is refused wherever it would be shared:
///
/// ```compile_fail
/// use std::cell::Cell;
/// use latchfree::ring::{BusySpin, Gate, Heap, Ring, Single, Stamp, Storage};
///
/// struct Counted {
///     inner: Heap<u64>,
///     calls: Cell<usize>, // races if two threads call `capacity`
/// }
/// unsafe impl Storage for Counted {
///     type Item = u64;
///     type Stamps = <Heap<u64> as Storage>::Stamps;
///     fn capacity(&self) -> usize {
///         self.calls.set(self.calls.get() + 1);
///         self.inner.capacity()
///     }
///     fn slot(&self, i: usize) -> *const u64 { self.inner.slot(i) }
///     fn slot_mut(&self, i: usize) -> *mut u64 { self.inner.slot_mut(i) }
///     fn stamps<'a>(&'a self, beside: &'a Self::Stamps) -> &'a [Stamp] {
///         self.inner.stamps(beside)
///     }
///     fn gates(&self) -> &[Gate] { self.inner.gates() }
/// }
/// fn shared<T: Sync>(_: &T) {}
/// let storage = Counted { inner: Heap::builder(8).gates(1).build().unwrap(), calls: Cell::new(0) };
/// let ring = Ring::<Counted, Single, BusySpin>::with_wait(storage, BusySpin);
/// shared(&ring); // error: `Cell<usize>` cannot be shared between threads
/// ```
///
/// ```
/// use latchfree::ring::{Heap, Inline, Storage};
///
/// // Code generic over storage: both kinds report their capacity.
/// fn slots<S: Storage>(s: &S) -> usize {
///     s.capacity()
/// }
/// let heap: Heap<u32> = Heap::builder(256).gates(1).build().unwrap();
/// let inline: Inline<u32, 16, 1> = Inline::new([0; 16]);
/// assert_eq!((slots(&heap), slots(&inline)), (256, 16));
/// ```
pub unsafe trait Storage {
    /// The event type held in each slot.
    type Item;

    /// What a multi-producer ring keeps beside this storage for its stamps:
    /// the table itself (`[AtomicUsize; N]`, as [`Inline`] does), or a
    /// marker when the storage holds them ([`InStorage`], as [`Heap`]
    /// does). A single-producer ring keeps nothing.
    type Stamps: StampTable;

    /// The number of slots, a power of two.
    fn capacity(&self) -> usize;

    /// A raw pointer to slot `index` (`index < capacity()`), for reading.
    fn slot(&self, index: usize) -> *const Self::Item;

    /// A raw pointer to slot `index` (`index < capacity()`), for writing.
    fn slot_mut(&self, index: usize) -> *mut Self::Item;

    /// The per-slot publication stamps of a multi-producer ring, given
    /// what the ring keeps `beside` the storage.
    fn stamps<'a>(&'a self, beside: &'a Self::Stamps) -> &'a [Stamp];

    /// The gate sequences.
    fn gates(&self) -> &[Gate];
}

/// Inline storage for `N` events and up to `G` gates, constructible in a
/// `const` context so a ring can be a `static` with no allocator.
///
/// `N` must be a power of two and `G` at most 64; both are checked at compile
/// time. A multi-producer ring keeps one stamp word per slot beside the
/// storage; a single-producer ring keeps none, so its whole overhead beyond
/// the slots is a few words (the cursor, state and gates).
///
/// ```
/// use latchfree::ring::{Inline, Ring, Single, BusySpin};
///
/// // No allocator: the ring and its 32 slots live in a `static`.
/// static RING: Ring<Inline<u32, 32, 1>, Single, BusySpin> =
///     Ring::with_wait(Inline::new([0; 32]), BusySpin);
///
/// let mut graph = Ring::graph(&RING).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer.push(9).unwrap();
/// consumer.poll(|e, _, _| assert_eq!(*e, 9));
/// ```
pub struct Inline<T, const N: usize, const G: usize = 4> {
    slots: crate::sync::UnsafeCell<[T; N]>,
    gates: [Sequence; G],
}

#[cfg(not(latchfree_loom))]
impl<T, const N: usize, const G: usize> Inline<T, N, G> {
    /// Wraps pre-built events, one per slot.
    ///
    /// A `const` item repeats into an array of any type, so a `static` ring
    /// needs no `Copy` or `Default`:
    ///
    /// ```
    /// use latchfree::ring::{BusySpin, Inline, Ring, Single};
    /// struct Order { id: u32, qty: u32 }
    /// const EMPTY: Order = Order { id: 0, qty: 0 };
    /// static RING: Ring<Inline<Order, 8, 2>, Single, BusySpin> =
    ///     Ring::with_wait(Inline::new([EMPTY; 8]), BusySpin);
    ///
    /// let mut graph = Ring::graph(&RING).unwrap();
    /// let mut orders = graph.consumer(&[]).unwrap();
    /// let mut producer = graph.single_producer().unwrap();
    /// producer.publish(|o| { o.id = 1; o.qty = 5 }).unwrap();
    /// orders.poll(|o, _, _| assert_eq!((o.id, o.qty), (1, 5)));
    /// ```
    pub const fn new(events: [T; N]) -> Self {
        const {
            assert!(N.is_power_of_two(), "ring capacity must be a power of two");
            assert!(N <= MAX_CAPACITY, "ring capacity too large");
            assert!(G <= MAX_GATES, "a ring has at most 64 gates");
        }
        Self {
            slots: crate::sync::UnsafeCell::new(events),
            gates: [const { super::sequence::new_sequence() }; G],
        }
    }
}

// Under loom the same storage, built at run time (loom's atomics have no
// `const` constructor), so the models see the module tree a user does.
#[cfg(latchfree_loom)]
impl<T, const N: usize, const G: usize> Inline<T, N, G> {
    /// Wraps pre-built events, one per slot (see the `const` version).
    pub fn new(events: [T; N]) -> Self {
        assert!(N.is_power_of_two(), "ring capacity must be a power of two");
        assert!(N <= MAX_CAPACITY, "ring capacity too large");
        assert!(G <= MAX_GATES, "a ring has at most 64 gates");
        Self {
            slots: crate::sync::UnsafeCell::new(events),
            gates: core::array::from_fn(|_| super::sequence::new_sequence()),
        }
    }
}

// SAFETY: as for `Heap`: shared, it gives out raw slot pointers and atomics.
unsafe impl<T: Send + Sync, const N: usize, const G: usize> Sync for Inline<T, N, G> {}

// SAFETY: `N` is a power of two in 1..=MAX_CAPACITY and G <= 64 (checked at
// compile time in `new`, the only constructor); every slot is initialised by
// `new` and lives inside `self`, which the ring never moves while shared
// (it is borrowed through `&Ring`); the gate array and the stamp table kept
// beside (`[AtomicUsize; N]`, made by `StampTable::EMPTY`) have the promised
// lengths and start at zero.
unsafe impl<T, const N: usize, const G: usize> Storage for Inline<T, N, G> {
    type Item = T;
    type Stamps = [AtomicUsize; N];

    #[inline(always)]
    fn capacity(&self) -> usize {
        N
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> *const T {
        debug_assert!(index < N);
        // SAFETY: `index < N` (debug-asserted; callers mask with N - 1), so
        // the offset stays inside the array.
        self.slots.with(|p| unsafe { p.cast::<T>().add(index) })
    }

    #[inline(always)]
    fn slot_mut(&self, index: usize) -> *mut T {
        debug_assert!(index < N);
        // SAFETY: as in `slot`.
        self.slots.with_mut(|p| unsafe { p.cast::<T>().add(index) })
    }

    #[inline(always)]
    fn stamps<'a>(&'a self, beside: &'a [AtomicUsize; N]) -> &'a [AtomicUsize] {
        beside
    }

    #[inline(always)]
    fn gates(&self) -> &[Sequence] {
        &self.gates
    }
}

/// Heap storage with a capacity chosen at run time.
///
/// [`Heap::with_capacity`] fills the slots with `T::default()` and leaves
/// room for [`MAX_GATES`] consumers, workers and work groups, so the graph
/// counts them as it is built; [`Heap::builder`] sets a smaller gate table
/// (each gate is a cache line) or fills the slots with a factory. It holds a
/// multi-producer ring's stamps itself ([`InStorage`]), one word per slot,
/// allocated whichever mode it serves (a single-producer ring never touches
/// them; [`Inline`] storage has none unless the ring is multi-producer).
///
/// ```
/// use latchfree::ring::{Heap, Ring};
///
/// // 4096 pre-allocated 64-byte buffers, room for 3 consumers.
/// let storage = Heap::builder(4096).gates(3).build_with(|| [0u8; 64]).unwrap();
/// let ring: Ring<Heap<[u8; 64]>> = Ring::new(storage);
/// assert_eq!(ring.capacity(), 4096);
/// assert!(Heap::<u8>::with_capacity(3000).is_err()); // not a power of two
/// ```
#[cfg(feature = "alloc")]
pub struct Heap<T> {
    slots: Box<[crate::sync::UnsafeCell<T>]>,
    stamps: Box<[AtomicUsize]>,
    gates: Box<[Sequence]>,
}

/// Sizes a [`Heap`]: its capacity (the one argument of [`Heap::builder`]),
/// then optionally its gate count.
///
/// ```
/// use latchfree::ring::{CapacityError, Heap};
///
/// let heap: Heap<u64> = Heap::builder(1024).gates(2).build().unwrap();
/// assert_eq!(Heap::<u64>::builder(1024).gates(65).build().err(), Some(CapacityError::TooManyGates(65)));
/// # drop(heap);
/// ```
#[cfg(feature = "alloc")]
#[must_use = "a HeapBuilder does nothing until `build` is called"]
pub struct HeapBuilder<T> {
    capacity: usize,
    gates: usize,
    _item: core::marker::PhantomData<fn() -> T>,
}

#[cfg(feature = "alloc")]
impl<T> core::fmt::Debug for HeapBuilder<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeapBuilder")
            .field("capacity", &self.capacity)
            .field("gates", &self.gates)
            .finish()
    }
}

#[cfg(feature = "alloc")]
impl<T> HeapBuilder<T> {
    /// Room for `gates` consumers, workers and work-group claims (a work
    /// group of `k` takes `k + 1`). Default [`MAX_GATES`]; fewer saves a
    /// cache line each.
    pub fn gates(mut self, gates: usize) -> Self {
        self.gates = gates;
        self
    }

    /// Allocates the storage with `T::default()` in every slot.
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if the capacity is zero, not a power of two or
    /// above [`MAX_CAPACITY`], or the gate count is above [`MAX_GATES`].
    pub fn build(self) -> Result<Heap<T>, CapacityError>
    where
        T: Default,
    {
        self.build_with(T::default)
    }

    /// Allocates the storage, each slot filled by `factory`.
    ///
    /// # Errors
    ///
    /// As for [`build`](Self::build).
    pub fn build_with(self, mut factory: impl FnMut() -> T) -> Result<Heap<T>, CapacityError> {
        let Self {
            capacity, gates, ..
        } = self;
        if !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(CapacityError::NotPowerOfTwo(capacity));
        }
        if gates > MAX_GATES {
            return Err(CapacityError::TooManyGates(gates));
        }
        let slots: Vec<_> = (0..capacity)
            .map(|_| crate::sync::UnsafeCell::new(factory()))
            .collect();
        let stamps: Vec<_> = (0..capacity).map(|_| AtomicUsize::new(0)).collect();
        let gate_seqs: Vec<_> = (0..gates)
            .map(|_| super::sequence::new_sequence())
            .collect();
        Ok(Heap {
            slots: slots.into_boxed_slice(),
            stamps: stamps.into_boxed_slice(),
            gates: gate_seqs.into_boxed_slice(),
        })
    }
}

#[cfg(feature = "alloc")]
impl<T> Heap<T> {
    /// Starts sizing a heap storage of `capacity` slots.
    pub fn builder(capacity: usize) -> HeapBuilder<T> {
        HeapBuilder {
            capacity,
            gates: MAX_GATES,
            _item: core::marker::PhantomData,
        }
    }

    /// `capacity` slots holding `T::default()`, room for [`MAX_GATES`]
    /// gates.
    ///
    /// # Errors
    ///
    /// [`CapacityError::NotPowerOfTwo`] if `capacity` is zero, not a power
    /// of two or above [`MAX_CAPACITY`].
    pub fn with_capacity(capacity: usize) -> Result<Self, CapacityError>
    where
        T: Default,
    {
        Self::builder(capacity).build()
    }

    /// `capacity` slots, each filled by `factory`, room for [`MAX_GATES`]
    /// gates.
    ///
    /// # Errors
    ///
    /// As for [`with_capacity`](Self::with_capacity).
    pub fn from_fn(capacity: usize, factory: impl FnMut() -> T) -> Result<Self, CapacityError> {
        Self::builder(capacity).build_with(factory)
    }
}

// SAFETY: shared, a `Heap` gives out raw slot pointers (dereferencing them
// is the ring's `unsafe` business, under its ground rules) and atomics;
// the ring hands events to several threads, hence `T: Send + Sync`.
#[cfg(feature = "alloc")]
unsafe impl<T: Send + Sync> Sync for Heap<T> {}

// SAFETY: `new`, the only constructor, checks the capacity and gate bounds;
// every slot is initialised by `factory` and lives in a boxed slice that never
// reallocates; the stamp and gate slices have the promised lengths and start
// at zero.
#[cfg(feature = "alloc")]
unsafe impl<T> Storage for Heap<T> {
    type Item = T;
    type Stamps = InStorage;

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> *const T {
        debug_assert!(index < self.slots.len());
        // SAFETY: callers pass `sequence & (capacity - 1)`, always in bounds
        // (debug-asserted); the hot path skips the bounds check.
        unsafe { self.slots.get_unchecked(index) }.with(|p| p)
    }

    #[inline(always)]
    fn slot_mut(&self, index: usize) -> *mut T {
        debug_assert!(index < self.slots.len());
        // SAFETY: as in `slot`.
        unsafe { self.slots.get_unchecked(index) }.with_mut(|p| p)
    }

    #[inline(always)]
    fn stamps<'a>(&'a self, _: &'a InStorage) -> &'a [AtomicUsize] {
        &self.stamps
    }

    #[inline(always)]
    fn gates(&self) -> &[Sequence] {
        &self.gates
    }
}
