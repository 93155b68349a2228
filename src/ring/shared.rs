//! The shared part of a ring: slots, the producer cursor, state flags, the
//! wait strategy, and the two scans every handle is built on (how far the
//! producer has published, how far a set of gates has got).
//!
//! # Ground rules
//!
//! - `cursor` is written only by producers. With a single producer it is the
//!   number of events published (a plain `Release` store per publish, no
//!   read-modify-write). With several producers it is the packed
//!   `(claimed, closed)` word: producers claim slots with a CAS, publish each
//!   slot by storing its stamp, and closing sets the low bit so that no claim
//!   can succeed afterwards.
//! - Each gate is written by exactly one handle (its consumer, its worker) or,
//!   for a work group's claim, only by CAS among that group's workers.
//! - A slot is written only by the producer that claimed it, and only once
//!   every terminal gate has passed its previous occupant; it is read only by
//!   handles whose barrier has passed it and not yet released it. That is the
//!   whole of the aliasing argument for the `unsafe` slot accesses elsewhere.

use core::marker::PhantomData;
use core::ops::Deref;

use super::error::BuildError;
use super::sequence::{
    bits, distance, epoch_of, epoch_start, pack, packed_distance, unpacked_flag, unpacked_pos,
    word, Sequence, MAX_CAPACITY, WORDS_WRAP,
};
use super::storage::{empty_stamps, StampTable, Storage};
use super::wait::{DefaultWait, WaitStrategy};
use crate::sync::{fence, AtomicUsize, CachePadded, Ordering};

/// How many producers a ring has. Sealed: [`Single`] or [`Multi`].
///
/// ```
/// use latchfree::ring::{Mode, Multi, Single};
///
/// fn describe<M: Mode>() -> &'static str {
///     if M::MULTI { "claims with a CAS" } else { "publishes with a store" }
/// }
/// assert_eq!(describe::<Single>(), "publishes with a store");
/// assert_eq!(describe::<Multi>(), "claims with a CAS");
/// ```
pub trait Mode: sealed::Sealed + Send + Sync + 'static {
    /// `true` for [`Multi`].
    const MULTI: bool;

    /// What the ring keeps beside a storage `S` for per-slot stamps:
    /// nothing for [`Single`], `S::Stamps` for [`Multi`].
    #[doc(hidden)]
    type Stamps<S: Storage>: StampTable;

    /// The stamp table of a ring in this mode (empty for [`Single`], whose
    /// code never reads it).
    #[doc(hidden)]
    fn stamps<'a, S: Storage>(storage: &'a S, beside: &'a Self::Stamps<S>) -> &'a [AtomicUsize];
}

/// One producer: publishing is a plain store, no read-modify-write.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u8>, Single, BusySpin>::with_wait(Heap::builder(8).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let _consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap(); // exactly one, not `Clone`
/// producer.push(1).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

/// Any number of producers: slots are claimed with a CAS and published
/// individually, so producers never wait for each other's writes.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Multi, Ring};
///
/// let ring = Ring::<Heap<u8>, Multi, BusySpin>::with_wait(Heap::builder(8).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut a = graph.multi_producer().unwrap();
/// let mut b = a.clone(); // as many handles as you like, on any threads
/// a.push(1).unwrap();
/// b.push(2).unwrap();
/// let mut sum = 0;
/// consumer.poll(|e, _, _| sum += e);
/// assert_eq!(sum, 3);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Multi;

impl Mode for Single {
    const MULTI: bool = false;
    type Stamps<S: Storage> = ();
    #[inline(always)]
    fn stamps<'a, S: Storage>(_: &'a S, _: &'a ()) -> &'a [AtomicUsize] {
        &[]
    }
}
impl Mode for Multi {
    const MULTI: bool = true;
    type Stamps<S: Storage> = S::Stamps;
    #[inline(always)]
    fn stamps<'a, S: Storage>(storage: &'a S, beside: &'a S::Stamps) -> &'a [AtomicUsize] {
        storage.stamps(beside)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Single {}
    impl Sealed for super::Multi {}
    impl<S: super::Storage, M: super::Mode, W: super::WaitStrategy> Sealed for super::Ring<S, M, W> {}
}

/// Implemented by every [`Ring`], so that handle types can name "a reference
/// to some ring" (`R: Deref<Target: AnyRing>`) in their definitions. Sealed;
/// it has no methods for users.
///
/// ```
/// use std::ops::Deref;
/// use latchfree::ring::{AnyRing, BusySpin, Consumer, Heap, Ring, Single};
///
/// // Name "a consumer of any ring" in your own types.
/// struct Stage<R: Deref<Target: AnyRing>> {
///     input: Consumer<R>,
/// }
/// let ring = Ring::<Heap<u8>, Single, BusySpin>::with_wait(Heap::builder(8).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let stage = Stage { input: graph.consumer(&[]).unwrap() };
/// assert_eq!(stage.input.sequence(), 0);
/// ```
pub trait AnyRing: sealed::Sealed {
    #[doc(hidden)]
    fn producer_gone(&self);
    #[doc(hidden)]
    fn store_gate(&self, gate: usize, value: usize);
    /// Gives back the waker cell a dropped handle kept, if any
    /// (`AsyncWait`).
    #[doc(hidden)]
    fn release_wait_cell(&self, cell: Option<usize>);
}

impl<S: Storage, M: Mode, W: WaitStrategy> AnyRing for Ring<S, M, W> {
    fn release_wait_cell(&self, cell: Option<usize>) {
        if let Some(cell) = cell {
            self.wait.release_cell(cell);
        }
    }

    fn producer_gone(&self) {
        if M::MULTI {
            // AcqRel: the last handle's departure must see every other
            // handle's, so the close is ordered after their claims.
            if self.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.close();
            }
        } else {
            self.mark_closed_by_producer();
        }
    }

    #[inline(always)]
    fn store_gate(&self, gate: usize, value: usize) {
        // Release: pairs with the Acquire gate loads in `gate_lead` of
        // producers and downstream consumers: the owner's reads of the
        // events below `value` happen before anyone reuses or follows them.
        let gates = self.storage.gates();
        debug_assert!(gate < gates.len());
        // SAFETY: gate indices are handed out by `Graph::take_gates`, which
        // checks them against `gates().len()`, and that length never changes
        // (the `Storage` contract); skipping the bounds check keeps it off
        // every release.
        unsafe { gates.get_unchecked(gate) }.store(value, Ordering::Release);
        self.notify();
    }
}

/// How a ring is named when its graph is built, and what its handles then
/// hold: `&ring` (a `&Ring`, `static` or scoped), an `Arc<Ring>` moved in, or
/// a reference to any `Clone` pointer to the ring (`&Arc<Ring>`, your own
/// pointer type), which is cloned. So `Ring::graph(&arc)` works as well as
/// `Ring::graph(arc.clone())`.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::ring::{Heap, Ring};
///
/// let local: Ring<Heap<u8>> = Ring::new(Heap::with_capacity(8).unwrap());
/// let shared: Arc<Ring<Heap<u8>>> = Arc::new(Ring::new(Heap::with_capacity(8).unwrap()));
/// let _borrowing = Ring::graph(&local).unwrap(); // handles hold `&Ring`
/// let _owning = Ring::graph(&shared).unwrap(); // handles hold `Arc<Ring>`
/// ```
pub trait RingRef<Rg> {
    /// What the handles hold.
    type Handle: Deref<Target = Rg> + Clone;
    /// Turns `self` into the handles' pointer.
    fn into_handle(self) -> Self::Handle;
}

impl<'a, S: Storage, M: Mode, W: WaitStrategy> RingRef<Ring<S, M, W>> for &'a Ring<S, M, W> {
    type Handle = &'a Ring<S, M, W>;
    #[inline]
    fn into_handle(self) -> Self::Handle {
        self
    }
}

impl<S: Storage, M: Mode, W: WaitStrategy, P> RingRef<Ring<S, M, W>> for &P
where
    P: Deref<Target = Ring<S, M, W>> + Clone,
{
    type Handle = P;
    #[inline]
    fn into_handle(self) -> P {
        self.clone()
    }
}

#[cfg(feature = "alloc")]
impl<S: Storage, M: Mode, W: WaitStrategy> RingRef<Ring<S, M, W>>
    for alloc::sync::Arc<Ring<S, M, W>>
{
    type Handle = Self;
    #[inline]
    fn into_handle(self) -> Self {
        self
    }
}

#[cfg(latchfree_loom)]
impl<S: Storage, M: Mode, W: WaitStrategy> RingRef<Ring<S, M, W>>
    for loom::sync::Arc<Ring<S, M, W>>
{
    type Handle = Self;
    #[inline]
    fn into_handle(self) -> Self {
        self
    }
}

/// State bits (in `Ring::state`).
const GRAPH_BUILT: usize = 1;
/// Someone asked a single-producer ring to close; its producer honours it.
const CLOSE_REQUESTED: usize = 2;
/// The single producer has closed: `cursor` is final.
const CLOSED: usize = 4;
/// Halted: every wait returns at once, unconsumed events are abandoned.
const HALTED: usize = 8;

/// A Disruptor-style ring buffer: pre-allocated slots that producers fill in
/// place and any number of consumers read in place, each at its own pace,
/// arranged in a dependency graph.
///
/// - `S`: where the slots live, [`Inline`](super::Inline) (const-generic, no
///   allocator) or [`Heap`](super::Heap).
/// - `M`: [`Single`] or [`Multi`] producer.
/// - `W`: the [`WaitStrategy`] used by every handle of this ring.
///
/// A ring is used through handles made by its [`Graph`]: one
/// [`Producer`](super::Producer) (or any number of
/// [`MultiProducer`](super::MultiProducer)s), [`Consumer`](super::Consumer)s
/// that each see every event, and [`Worker`](super::Worker)s that share
/// events so each is handled once. Handles hold the ring through any
/// `Deref<Target = Ring>` that is `Clone`: `&'static Ring` on a
/// microcontroller, `&Ring` with scoped threads, `Arc<Ring>` elsewhere.
///
/// Sequences are 64-bit (`u64`) in every handle and every handler call; the
/// shared atomics hold them as `usize` with wrap-safe arithmetic, so on 32-bit
/// targets nothing breaks when the words wrap every 2^32 events.
///
/// ```
/// use latchfree::ring::{Heap, Poll, Ring, Single, BusySpin};
///
/// // Capacity 1024, room for two consumers, spin-hint waits.
/// let ring: Ring<Heap<u64>, Single, BusySpin> =
///     Ring::with_wait(Heap::builder(1024).gates(2).build().unwrap(), BusySpin);
/// assert_eq!(ring.capacity(), 1024);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer.push(5).unwrap();
/// ring.close(); // later publishes fail; consumers drain first
/// assert!(producer.push(6).is_err());
/// assert_eq!(consumer.poll(|e, _, _| assert_eq!(*e, 5)), Poll::Processed(1));
/// assert_eq!(consumer.poll(|_, _, _| ()), Poll::Closed);
/// assert!(ring.is_closed() && !ring.is_halted());
/// ```
pub struct Ring<S: Storage, M: Mode = Single, W: WaitStrategy = DefaultWait> {
    /// Single producer: events published. Multi: packed (claimed, closed).
    pub(super) cursor: Sequence,
    /// `GRAPH_BUILT | CLOSE_REQUESTED | CLOSED | HALTED`. Read-mostly.
    state: CachePadded<AtomicUsize>,
    /// Live multi-producer handles; the last one to go closes the ring.
    pub(super) producers: AtomicUsize,
    /// The epoch of a recent claim position, the anchor for rebuilding the
    /// claim words' positions (see `sequence`). Only used if `WORDS_WRAP`;
    /// written once per `2^EPOCH_SHIFT` events.
    epoch: AtomicUsize,
    /// The sequence of the ring's first event (0 unless seeded by
    /// [`with_first_sequence`](Self::with_first_sequence)). Never changes.
    pub(super) first: u64,
    pub(super) storage: S,
    /// The per-slot stamps kept beside the storage (multi-producer rings
    /// over storages that do not hold them; nothing otherwise).
    beside: M::Stamps<S>,
    pub(super) wait: W,
    _mode: PhantomData<M>,
}

// SAFETY: a ring is shared by its handles across threads. Producers write
// events (so `T: Send` is needed to hand them to consumer threads) and
// several consumers read the same event at once through `&T` (so `T: Sync`).
// Every handle calls the storage's methods through `&S` from its own thread,
// concurrently, hence `S: Sync` (the crate's storages are `Sync` because
// they hand out only raw slot pointers and atomics). The rest of the shared
// state is atomics; the slot-access discipline is in the module's ground
// rules.
unsafe impl<S: Storage + Send + Sync, M: Mode, W: WaitStrategy> Sync for Ring<S, M, W> where
    S::Item: Send + Sync
{
}

// SAFETY: moving a ring moves its events; nothing in it is tied to a thread.
unsafe impl<S: Storage + Send, M: Mode, W: WaitStrategy> Send for Ring<S, M, W> where S::Item: Send {}

impl<S: Storage, M: Mode> Ring<S, M, DefaultWait> {
    const_fn_unless_loom! {
        /// A ring over `storage` with the [`DefaultWait`] strategy
        /// ([`Parking`](super::Parking) under `std`, [`BusySpin`](super::BusySpin)
        /// without it); [`with_wait`](Self::with_wait) names another.
        ///
        /// `const`, so with [`Inline`](super::Inline) storage it can be a
        /// `static`.
        ///
        /// ```
        /// use latchfree::ring::{Heap, Ring};
        ///
        /// // `Ring<Heap<u64>>`: single producer, default wait.
        /// let ring = Ring::new(Heap::<u64>::with_capacity(64).unwrap());
        /// let mut graph = Ring::graph(&ring).unwrap();
        /// let mut consumer = graph.consumer(&[]).unwrap();
        /// let mut producer = graph.single_producer().unwrap();
        /// producer.push(7).unwrap();
        /// consumer.poll(|e, _, _| assert_eq!(*e, 7));
        /// ```
        pub fn new(storage: S) -> Self {
            Self::with_wait(storage, DefaultWait::new())
        }
    }
}

impl<S: Storage, M: Mode, W: WaitStrategy> Ring<S, M, W> {
    const_fn_unless_loom! {
        /// A ring over `storage`, waiting with `wait`.
        ///
        /// `const`, so with [`Inline`](super::Inline) storage it can be a
        /// `static`.
        pub fn with_wait(storage: S, wait: W) -> Self {
            Self {
                cursor: super::sequence::new_sequence(),
                state: CachePadded::new(AtomicUsize::new(0)),
                producers: AtomicUsize::new(0),
                epoch: AtomicUsize::new(0),
                first: 0,
                storage,
                beside: empty_stamps(),
                wait,
                _mode: PhantomData,
            }
        }
    }

    /// A ring whose first event gets sequence `first`, as if `first` events
    /// had already gone through it and every consumer had handled them.
    ///
    /// A testing aid, hidden from the docs: wrap-around tests start the
    /// shared words a few events before they wrap (2^31, 2^32 on 32-bit
    /// targets) instead of publishing billions of events. Handles made by
    /// this ring's graph start at `first`.
    #[doc(hidden)]
    pub fn with_first_sequence(storage: S, wait: W, first: u64) -> Self {
        let mut ring = Self::with_wait(storage, wait);
        ring.first = first;
        let cap = ring.capacity() as u64;
        let at = word(first);
        let cursor = if M::MULTI { pack(at, false) } else { at };
        ring.cursor.store(cursor, Ordering::Relaxed);
        ring.epoch.store(epoch_of(first), Ordering::Relaxed);
        for g in ring.storage.gates() {
            g.store(at, Ordering::Relaxed);
        }
        // Each slot's stamp says its previous occupant (a lap back) was
        // published, so no slot reads as published ahead of the cursor.
        let mask = ring.capacity() - 1;
        if M::MULTI {
            for seq in first..first + cap {
                let prev = word(seq.wrapping_sub(cap));
                ring.stamps()[word(seq) & mask]
                    .store(pack(prev.wrapping_add(1), false), Ordering::Relaxed);
            }
        }
        ring
    }

    /// The number of slots. Always a power of two, and all of them usable.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.storage.capacity()
    }

    /// The wait strategy.
    pub fn wait_strategy(&self) -> &W {
        &self.wait
    }

    /// Starts building this ring's consumer graph. A ring has exactly one
    /// graph, so this succeeds once.
    ///
    /// `ring` is how the handles will hold the ring: `&ring` (scoped
    /// threads, a `static`), an `Arc<Ring>`, or a `&Arc<Ring>` (cloned); see
    /// [`RingRef`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use latchfree::ring::{Heap, Ring};
    ///
    /// let ring: Arc<Ring<Heap<u8>>> = Arc::new(Ring::new(Heap::with_capacity(8).unwrap()));
    /// let graph = Ring::graph(&ring).unwrap(); // handles hold `Arc` clones
    /// # drop(graph);
    /// ```
    ///
    /// # Errors
    ///
    /// [`BuildError::AlreadyBuilt`] on every call after the first.
    pub fn graph<H>(ring: H) -> Result<Graph<H::Handle>, BuildError>
    where
        H: RingRef<Self>,
    {
        let ring = ring.into_handle();
        let prev = ring.state.fetch_or(GRAPH_BUILT, Ordering::AcqRel);
        if prev & GRAPH_BUILT != 0 {
            return Err(BuildError::AlreadyBuilt);
        }
        Ok(Graph {
            ring,
            used: 0,
            plain: 0,
            workers: 0,
            depended: 0,
            nodes: 0,
            root_group: super::producer::NO_QUEUE,
        })
    }

    /// Closes the ring to new events: consumers deliver everything already
    /// published, then report [`Poll::Closed`](super::Poll::Closed).
    ///
    /// With several producers this takes effect at once: every later or
    /// waiting publish fails with `Closed`. A single-producer ring is closed
    /// by its producer, so here the request is recorded and the producer
    /// honours it at its next publish (which fails with `Closed`), or when
    /// it is dropped; either way every event it published before is
    /// delivered.
    pub fn close(&self) {
        if M::MULTI {
            // AcqRel: the closed bit must be ordered with the claims it
            // stops; it is an RMW on the claim word itself, so it is.
            self.cursor.fetch_or(1, Ordering::AcqRel);
        } else {
            self.state.fetch_or(CLOSE_REQUESTED, Ordering::AcqRel);
        }
        self.notify_always();
    }

    /// Halts the ring: every waiting or later publish returns `Halted`, and
    /// every consumer and worker hands out nothing more: its next `poll`,
    /// `read` or `wait` returns `Halted` even with events left (a poll
    /// already running finishes the batch it took; the
    /// [`Disruptor`](super::Disruptor) runner stops before its next event).
    /// Events not yet consumed are abandoned: they stay in their slots and
    /// are dropped with the ring. Halting cannot be undone.
    pub fn halt(&self) {
        self.state.fetch_or(HALTED, Ordering::AcqRel);
        self.notify_always();
    }

    /// Whether the ring is closed to new events (a pending close request on a
    /// single-producer ring counts). May be stale under concurrency.
    pub fn is_closed(&self) -> bool {
        if M::MULTI {
            unpacked_flag(self.cursor.load(Ordering::Acquire))
        } else {
            self.state.load(Ordering::Acquire) & (CLOSED | CLOSE_REQUESTED) != 0
        }
    }

    /// Whether the ring was halted.
    pub fn is_halted(&self) -> bool {
        self.state.load(Ordering::Acquire) & HALTED != 0
    }

    // ----- crate-internal protocol pieces -----

    /// The per-slot stamps (multi-producer rings; empty otherwise).
    #[inline(always)]
    pub(super) fn stamps(&self) -> &[AtomicUsize] {
        let stamps = M::stamps(&self.storage, &self.beside);
        debug_assert!(!M::MULTI || stamps.len() == self.capacity());
        stamps
    }

    #[inline(always)]
    pub(super) fn index(&self, seq: u64) -> usize {
        word(seq) & (self.capacity() - 1)
    }

    #[inline(always)]
    pub(super) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// The state word for a fast-path check of its bits alone: Relaxed,
    /// since nothing is read on the strength of it (a close or halt that
    /// happened before the check is still seen, by coherence); paths that
    /// act on a bit (the closed cursor) read it with Acquire.
    #[inline(always)]
    pub(super) fn state_relaxed(&self) -> usize {
        self.state.load(Ordering::Relaxed)
    }

    /// Whether `state` is `GRAPH_BUILT` alone: not halted, no close asked
    /// for. The producer's fast path tests only this.
    #[inline(always)]
    pub(super) fn open_bit_only(state: usize) -> bool {
        state == GRAPH_BUILT
    }

    #[inline(always)]
    pub(super) fn halted_bit(state: usize) -> bool {
        state & HALTED != 0
    }

    #[inline(always)]
    pub(super) fn close_requested_bit(state: usize) -> bool {
        state & (CLOSE_REQUESTED | CLOSED) != 0
    }

    /// Reads a shared claim word (`read`: the multi-producer claim, a work
    /// group's claim) with the epoch its position is rebuilt against.
    /// Returns `(word, epoch)`; the epoch is 0 where words do not wrap.
    #[inline(always)]
    pub(super) fn read_anchored(&self, read: impl Fn() -> usize) -> (usize, usize) {
        if !WORDS_WRAP {
            return (read(), 0);
        }
        loop {
            // Acquire: pairs with the Release epoch store or CAS; whoever
            // advanced the epoch had seen the claim at its start, so the
            // word read next is not behind it.
            let epoch = self.epoch.load(Ordering::Acquire);
            let w = read();
            // Relaxed is enough: a claim past this epoch's window was made
            // after its producer read a later epoch, and our read of the
            // word is ordered after that claim, so coherence shows us the
            // later epoch here (see `sequence`).
            if self.epoch.load(Ordering::Relaxed) == epoch {
                return (w, epoch);
            }
        }
    }

    /// The 64-bit position of a multi-producer claim word read with
    /// [`read_anchored`](Self::read_anchored).
    #[inline(always)]
    pub(super) fn claim_position(w: usize, epoch: usize) -> u64 {
        let start = epoch_start(epoch);
        start + packed_distance(word(start), unpacked_pos(w)) as u64
    }

    /// The 64-bit position of a work group's claim gate read with
    /// [`read_anchored`](Self::read_anchored): at most a capacity behind
    /// the epoch's start.
    #[inline(always)]
    pub(super) fn group_position(&self, c: usize, epoch: usize) -> u64 {
        let base = epoch_start(epoch).saturating_sub(self.capacity() as u64);
        base + distance(word(base), c) as u64
    }

    /// Multi-producer: moves the epoch from `seen` to the epoch of `pos`, a
    /// claim position just read. Losing the race is fine (someone moved it
    /// on); the caller reads the claim word again either way.
    #[cold]
    pub(super) fn advance_epoch(&self, seen: usize, pos: u64) {
        // Release: pairs with `read_anchored`'s Acquire; our read of the
        // claim at `pos` (and, through it, of the gates that allowed it)
        // comes before.
        let _ =
            self.epoch
                .compare_exchange(seen, epoch_of(pos), Ordering::Release, Ordering::Relaxed);
    }

    /// The epoch word, for tests.
    #[cfg(all(test, feature = "std"))]
    pub(super) fn epoch_now(&self) -> usize {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Single producer: the epoch it last stored. Relaxed: it is the
    /// epoch's only writer on a single-producer ring, so it reads its own
    /// last store (coherence).
    #[inline(always)]
    pub(super) fn epoch_relaxed(&self) -> usize {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Single producer: publishes the epoch of `pos`, its next claim.
    #[cold]
    pub(super) fn store_epoch(&self, pos: u64) {
        // Release: pairs with `read_anchored`'s Acquire; the gate scan that
        // let us reach `pos` and the cursor store for it came before.
        self.epoch.store(epoch_of(pos), Ordering::Release);
    }

    cfg_threads! {
        /// Single producer: whether the producer has closed the ring
        /// (dropped, closed, or refused a publish after a close request).
        pub(crate) fn closed_by_producer(&self) -> bool {
            self.state.load(Ordering::Acquire) & CLOSED != 0
        }
    }

    /// The single producer marks the ring closed after its last publish.
    pub(super) fn mark_closed_by_producer(&self) {
        // Release: a consumer that sees CLOSED (Acquire) also sees the final
        // cursor store, which came before in the producer's program order.
        self.state.fetch_or(CLOSED, Ordering::Release);
        self.notify_always();
    }

    /// Wakes sleepers for a state change, whatever the strategy.
    fn notify_always(&self) {
        self.wait.notify();
    }

    /// Wakes sleepers after progress, if the strategy sleeps.
    #[inline(always)]
    pub(super) fn notify(&self) {
        if W::NOTIFIES {
            self.wait.notify();
        }
    }

    /// The final cursor position if the ring is closed, as a count of events
    /// ahead of `from` (which must not be past it).
    #[inline]
    pub(super) fn closed_remaining(&self, from: u64) -> Option<usize> {
        if M::MULTI {
            let w = self.cursor.load(Ordering::Acquire);
            unpacked_flag(w).then(|| packed_distance(word(from), unpacked_pos(w)))
        } else if self.state.load(Ordering::Acquire) & CLOSED != 0 {
            // Acquire on `state` above pairs with `mark_closed_by_producer`,
            // so this load sees the final cursor.
            Some(distance(word(from), self.cursor.load(Ordering::Acquire)))
        } else {
            None
        }
    }

    /// Whether a producer has claimed the slot at `from` (multi-producer
    /// rings only; a single producer claims and publishes in one store).
    /// Called on the empty path, after `from` was found unpublished, to tell
    /// "nothing published" from "the next slot is being written".
    #[inline]
    pub(super) fn claimed_past(&self, from: u64) -> bool {
        M::MULTI
            && packed_distance(
                word(from),
                unpacked_pos(self.cursor.load(Ordering::Acquire)),
            ) > 0
    }

    /// How many events from position `from` on are published and contiguous,
    /// looking at most `limit` (at most the capacity) ahead.
    #[inline]
    pub(super) fn published_from(&self, from: u64, limit: usize) -> usize {
        self.published_scan(from, limit).0
    }

    /// [`published_from`](Self::published_from), and whether any of those
    /// events is a skipped slot (always `false` for a single producer). The
    /// multi-producer scan loads each stamp anyway; reporting its skipped
    /// bit lets a handle that scanned a batch hand it out without loading
    /// every stamp a second time.
    #[inline]
    pub(super) fn published_scan(&self, from: u64, limit: usize) -> (usize, bool) {
        if M::MULTI {
            // The stamps alone say what is published; the claim word is not
            // read. A stamp equal to `pack(seq + 1)` is proof that `seq` was
            // published (the top bit `pack` loses would take 2^63 events,
            // 2^31 on 32-bit targets, while the slot's stamp lags at most a
            // lap). Within a capacity of a consumer's position a slot holds
            // `seq` or the occupant a lap before, which the consumer's own
            // gate keeps from reuse; a worker's view of its group's claim
            // may be stale, but then its claim CAS fails before it reads a
            // slot. So no slot reads as published early, and the consumer
            // stays off the line every producer's claim RMW writes.
            let stamps = self.stamps();
            let mask = stamps.len() - 1;
            debug_assert!(limit <= stamps.len());
            let upto = limit;
            let mut expect = pack(word(from).wrapping_add(1), false);
            let mut i = word(from) & mask;
            let mut n = 0;
            let mut skipped = 0;
            while n < upto {
                // SAFETY: `stamps` has `capacity` entries, a power of two
                // (the `Storage` contract), and `i` is masked with
                // `capacity - 1`.
                let stamp = unsafe { stamps.get_unchecked(i) };
                // Acquire: pairs with the producer's Release stamp store, so
                // the event written before it is visible here.
                // `stamp ^ expect` is 0 (published), 1 (published as
                // skipped) or more (not published yet).
                let diff = stamp.load(Ordering::Acquire) ^ expect;
                if diff > 1 {
                    break;
                }
                skipped |= diff;
                n += 1;
                expect = expect.wrapping_add(2);
                i = (i + 1) & mask;
            }
            (n, skipped != 0)
        } else {
            // Acquire: pairs with the producer's Release cursor store, so
            // every event below the cursor is visible here.
            let n = distance(word(from), self.cursor.load(Ordering::Acquire)).min(limit);
            (n, false)
        }
    }

    /// Whether the event at `seq` was claimed but abandoned by a producer
    /// whose closure panicked (multi-producer rings only; always `false` for
    /// a single producer, which simply does not publish such a slot).
    #[inline(always)]
    pub(super) fn skipped(&self, seq: u64) -> bool {
        if !M::MULTI {
            return false;
        }
        let stamps = self.stamps();
        // SAFETY: a multi-producer ring's stamp table has `capacity`
        // entries (the `Storage` contract), and `index` masks with
        // `capacity - 1`.
        let stamp = unsafe { stamps.get_unchecked(self.index(seq)) };
        unpacked_flag(stamp.load(Ordering::Relaxed))
    }

    /// The smallest lead of the gates in `plain` (positions) and `workers`
    /// (packed worker words) over `anchor`, capped at `limit`.
    ///
    /// Every gate must be at or ahead of `anchor`: consumers pass their own
    /// position (their upstream gates are ahead of them), producers pass
    /// `next - capacity` (no gate is ever more than a capacity behind).
    /// An empty set, or only idle workers, gives `limit`.
    ///
    /// A gate read as *behind* the anchor (a stale value; the protocols are
    /// built so this cannot happen, but a wrapped distance would read as a
    /// huge lead) counts as no lead at all: the scan may under-report, never
    /// over-report.
    #[inline]
    pub(super) fn gate_lead(&self, anchor: usize, plain: u64, workers: u64, limit: usize) -> usize {
        let gates = self.storage.gates();
        let mut lead = limit;
        for i in bits(plain) {
            lead = plain_gate_lead(anchor, &gates[i], lead);
        }
        if workers != 0 {
            // SeqCst: the work-group claim (a plain gate) was read above; a
            // worker announces its claim (busy word) before its SeqCst fence
            // and CAS on that claim. Either we see the busy word, or the
            // worker's CAS comes after our read of the claim, so its batch
            // starts at or above the claim we already counted. See `Worker`.
            fence(Ordering::SeqCst);
            for i in bits(workers) {
                let w = gates[i].load(Ordering::Acquire);
                if unpacked_flag(w) {
                    let d = packed_distance(anchor, unpacked_pos(w));
                    lead = lead.min(if d > MAX_CAPACITY { 0 } else { d });
                }
            }
        }
        lead
    }
}

/// [`Ring::gate_lead`] for one plain gate: its lead over `anchor`, capped
/// at `limit` (a gate read behind the anchor counts as no lead).
#[inline(always)]
pub(super) fn plain_gate_lead(anchor: usize, gate: &Sequence, limit: usize) -> usize {
    // Acquire: pairs with the Release store of the gate's owner, so its
    // reads of the events below the gate happen before we reuse (producer)
    // or read after (downstream consumer) them.
    let d = distance(anchor, gate.load(Ordering::Acquire));
    limit.min(if d > MAX_CAPACITY { 0 } else { d })
}

impl<S: Storage, M: Mode, W: WaitStrategy> core::fmt::Debug for Ring<S, M, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .field("multi_producer", &M::MULTI)
            .field("closed", &self.is_closed())
            .field("halted", &self.is_halted())
            .finish_non_exhaustive()
    }
}

/// A node of the consumer graph, named when another node runs after it.
///
/// Obtained from [`Consumer::node`](super::Consumer::node) or
/// [`Worker::group`](super::Worker::group). Cheap to copy.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Poll, Ring, Single};
///
/// // A diamond: journal and replicate in parallel, then apply after both.
/// let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(Heap::builder(8).gates(3).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut journal = graph.consumer(&[]).unwrap();
/// let mut replicate = graph.consumer(&[]).unwrap();
/// let mut apply = graph.consumer(&[journal.node(), replicate.node()]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer.push(1).unwrap();
/// journal.poll(|_, _, _| ());
/// assert_eq!(apply.poll(|_, _, _| ()), Poll::Gated); // waits for `replicate` too
/// replicate.poll(|_, _, _| ());
/// assert_eq!(apply.poll(|_, _, _| ()), Poll::Processed(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub(super) plain: u64,
    pub(super) workers: u64,
    pub(super) ring: usize,
}

/// Builds the consumer graph of a ring, then hands out its producer.
///
/// Nodes are added in dependency order: a node can only run after nodes that
/// already exist, so the graph is acyclic by construction. Taking the
/// producer seals the graph: the producer gates on every node that no other
/// node runs after.
///
/// ```
/// use latchfree::ring::{Heap, Ring, Single, BusySpin};
/// let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(Heap::builder(8).gates(4).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut a = graph.consumer(&[]).unwrap();          // A
/// let mut b = graph.consumer(&[a.node()]).unwrap();  // B after A
/// let mut producer = graph.single_producer().unwrap();
///
/// producer.push(7).unwrap();
/// assert_eq!(b.poll(|_, _, _| panic!("B must wait for A")), latchfree::ring::Poll::Gated);
/// a.poll(|e, seq, _| assert_eq!((*e, seq), (7, 0)));
/// b.poll(|e, _, _| assert_eq!(*e, 7));
/// ```
pub struct Graph<R> {
    pub(crate) ring: R,
    /// Gates handed out so far.
    used: usize,
    /// Gates holding positions (consumers, work-group claims).
    plain: u64,
    /// Gates holding packed worker words.
    workers: u64,
    /// Gates some later node runs after.
    depended: u64,
    /// Nodes added (consumers and work groups).
    nodes: usize,
    /// The claim gate of the first work group added straight after the
    /// producer, if any (`NO_QUEUE` otherwise).
    root_group: usize,
}

impl<R, S, M, W> Graph<R>
where
    R: Deref<Target = Ring<S, M, W>> + Clone,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    fn ring_id(&self) -> usize {
        let r: &Ring<S, M, W> = &self.ring;
        r as *const Ring<S, M, W> as usize
    }

    fn take_gates(&mut self, n: usize) -> Result<usize, BuildError> {
        let available = self.ring.storage.gates().len();
        let needed = self.used + n;
        if needed > available {
            return Err(BuildError::OutOfGates { available, needed });
        }
        let first = self.used;
        self.used = needed;
        Ok(first)
    }

    /// The union of the nodes in `after`, checked to belong to this ring.
    fn deps(&self, after: &[Node]) -> Result<(u64, u64), BuildError> {
        let id = self.ring_id();
        let (mut plain, mut workers) = (0, 0);
        for n in after {
            if n.ring != id {
                return Err(BuildError::InvalidNode);
            }
            plain |= n.plain;
            workers |= n.workers;
        }
        Ok((plain, workers))
    }

    /// Adds a consumer that sees every event, after the nodes in `after`
    /// (or straight after the producer when `after` is empty).
    ///
    /// # Errors
    ///
    /// [`BuildError::OutOfGates`] when the storage has no gate left,
    /// [`BuildError::InvalidNode`] for a node of another ring.
    pub fn consumer(&mut self, after: &[Node]) -> Result<super::Consumer<R>, BuildError> {
        let (deps_plain, deps_workers) = self.deps(after)?;
        let gate = self.take_gates(1)?;
        self.depended |= deps_plain | deps_workers;
        self.plain |= 1 << gate;
        self.nodes += 1;
        let node = Node {
            plain: 1 << gate,
            workers: 0,
            ring: self.ring_id(),
        };
        Ok(super::Consumer::new(
            self.ring.clone(),
            gate,
            deps_plain,
            deps_workers,
            node,
        ))
    }

    /// Adds a work group of `K` workers after the nodes in `after`: each
    /// event is handled by exactly one of them. Uses `K + 1` gates.
    ///
    /// # Errors
    ///
    /// As for [`consumer`](Self::consumer); [`BuildError::InvalidNode`] for
    /// `K == 0`.
    pub fn work_group<const K: usize>(
        &mut self,
        after: &[Node],
    ) -> Result<[super::Worker<R>; K], BuildError> {
        let (claim, node, deps) = self.group_gates(K, after)?;
        Ok(core::array::from_fn(|i| {
            super::Worker::new(
                self.ring.clone(),
                claim,
                claim + 1 + i,
                deps.0,
                deps.1,
                node,
            )
        }))
    }

    /// [`work_group`](Self::work_group) with a run-time worker count.
    ///
    /// # Errors
    ///
    /// As for [`work_group`](Self::work_group).
    #[cfg(feature = "alloc")]
    pub fn work_group_vec(
        &mut self,
        workers: usize,
        after: &[Node],
    ) -> Result<alloc::vec::Vec<super::Worker<R>>, BuildError> {
        let (claim, node, deps) = self.group_gates(workers, after)?;
        Ok((0..workers)
            .map(|i| {
                super::Worker::new(
                    self.ring.clone(),
                    claim,
                    claim + 1 + i,
                    deps.0,
                    deps.1,
                    node,
                )
            })
            .collect())
    }

    fn group_gates(
        &mut self,
        k: usize,
        after: &[Node],
    ) -> Result<(usize, Node, (u64, u64)), BuildError> {
        if k == 0 {
            return Err(BuildError::InvalidNode);
        }
        let deps = self.deps(after)?;
        let claim = self.take_gates(k + 1)?;
        self.depended |= deps.0 | deps.1;
        self.nodes += 1;
        if after.is_empty() && self.root_group == super::producer::NO_QUEUE {
            self.root_group = claim;
        }
        let worker_bits = ((1u64 << k) - 1) << (claim + 1);
        // Worker words start idle (they hold `pack(position, busy)`).
        let idle = pack(word(self.ring.first), false);
        for g in &self.ring.storage.gates()[claim + 1..claim + 1 + k] {
            g.store(idle, Ordering::Relaxed);
        }
        self.plain |= 1 << claim;
        self.workers |= worker_bits;
        let node = Node {
            plain: 1 << claim,
            workers: worker_bits,
            ring: self.ring_id(),
        };
        Ok((claim, node, deps))
    }

    /// The gates the producer must wait for: every node no other node runs
    /// after. Returns (plain, workers), or `NoConsumers` for an empty graph.
    fn terminal(&self) -> Result<(u64, u64), BuildError> {
        if self.used == 0 {
            return Err(BuildError::NoConsumers);
        }
        Ok((self.plain & !self.depended, self.workers & !self.depended))
    }
}

impl<R, S, W> Graph<R>
where
    R: Deref<Target = Ring<S, Single, W>> + Clone,
    S: Storage,
    W: WaitStrategy,
{
    /// Seals the graph and returns the ring's one producer.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoConsumers`] if no consumer or work group was added:
    /// such a ring would accept events and deliver none.
    pub fn single_producer(self) -> Result<super::Producer<R>, BuildError> {
        let (plain, workers) = self.terminal()?;
        // A queue: the one node is a work group after the producer.
        let queue = if self.nodes == 1 {
            self.root_group
        } else {
            super::producer::NO_QUEUE
        };
        Ok(super::Producer::new(self.ring, plain, workers, queue))
    }
}

impl<R, S, W> Graph<R>
where
    R: Deref<Target = Ring<S, Multi, W>> + Clone,
    S: Storage,
    W: WaitStrategy,
{
    /// Seals the graph and returns a producer handle; clone it for more
    /// producers. The ring closes when the last handle is dropped.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoConsumers`] if no consumer or work group was added.
    pub fn multi_producer(self) -> Result<super::MultiProducer<R>, BuildError> {
        let (plain, workers) = self.terminal()?;
        Ok(super::MultiProducer::new(self.ring, plain, workers))
    }
}
