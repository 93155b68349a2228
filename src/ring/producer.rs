//! Producer handles: the single producer and the multi-producer handle, and
//! the claimed-slots view a batch publish writes through.
//!
//! Both claim slots, let a closure write the events in place, then publish.
//! A slot is claimable once every terminal gate (the last consumers of the
//! graph) has passed its previous occupant; each handle caches how far that
//! is (the single producer as a count of free slots, a multi-producer
//! handle as a position, `free_until`) and rescans the gates only when the
//! cache runs out.

use core::cell::Cell;
use core::future::Future;
use core::marker::PhantomData;
use core::ops::Deref;
use core::task::Poll as TaskPoll;

use super::async_wait::{AsyncWait, Awaitable, Retry, Spin};
use super::error::{ForcePushError, PublishError};
use super::sequence::{epoch_of, pack, unpacked_flag, word, Position, EPOCH_SHIFT, WORDS_WRAP};
use super::shared::{plain_gate_lead, AnyRing, Multi, Ring, Single};
use super::storage::Storage;
use super::wait::WaitStrategy;
use crate::sync::{AtomicUsize, Ordering};

/// Why a claim failed, before the caller's closure is attached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Refusal {
    Full,
    Closed,
    Halted,
    Timeout,
    TooLarge,
}

impl Refusal {
    fn with<F>(self, f: F) -> PublishError<F> {
        match self {
            Self::Full => PublishError::Full(f),
            Self::Closed => PublishError::Closed(f),
            Self::Halted => PublishError::Halted(f),
            Self::Timeout => PublishError::Timeout(f),
            Self::TooLarge => PublishError::TooLarge(f),
        }
    }
}

/// How far a producer at `next` may fill: `next + lead`, where `lead` is the
/// least progress of the terminal gates past `next - capacity`.
#[inline]
fn free_until<S: Storage, M: super::Mode, W: WaitStrategy>(
    ring: &Ring<S, M, W>,
    next: u64,
    plain: u64,
    workers: u64,
) -> u64 {
    let cap = ring.capacity();
    let anchor = word(next).wrapping_sub(cap);
    next + ring.gate_lead(anchor, plain, workers, cap) as u64
}

/// `lead` free slots from `next` on, stopping at the end of `next`'s epoch
/// where words wrap (once per 2^29 events the claim then takes the slow
/// path, which stores the next epoch before claiming in it). In words: the
/// room left in the epoch is `2^EPOCH_SHIFT` less `next`'s offset in it,
/// which the word holds whole (`EPOCH_SHIFT < usize::BITS`).
#[inline(always)]
fn free_count(next: usize, lead: usize) -> usize {
    if WORDS_WRAP {
        let span = 1usize << EPOCH_SHIFT;
        lead.min(span - (next & (span - 1)))
    } else {
        lead
    }
}

/// What the single producer's slow path is asked: claim `n` slots from
/// `next`, with `free` cached. Passed by reference to a copy, so the call
/// ties up no register that the loop around a publish keeps its own values
/// in (measured: two register copies per publish fewer in `ring_cost`).
#[derive(Clone, Copy)]
struct SlowArgs {
    n: usize,
    free: usize,
    next: u64,
}

/// The single producer's slow path: a batch larger than the ring, a full
/// ring (rescan the gates, then wait), a new epoch, close or halt. Takes the
/// handle's fields as values and returns its new free count with the
/// refusal if there is one (two words: returned in registers, so the
/// handle's fields stay in registers on the fast path, and this, cold and
/// out of line, is the only copy of the slow path in the image). Without a
/// refusal the `n` slots from `next` are claimed: the count excludes them.
/// Counts are words (leads past `next`, at most a capacity), so a 32-bit
/// core does no 64-bit arithmetic here but the epoch's.
#[cold]
#[inline(never)]
fn claim_slow<S: Storage, W: WaitStrategy, const BLOCK: bool>(
    ring: &Ring<S, Single, W>,
    (plain, workers): (u64, u64),
    at: &SlowArgs,
) -> (usize, Option<Refusal>) {
    let SlowArgs { n, free, next } = *at;
    let cap = ring.capacity();
    if n > cap {
        return (free, Some(Refusal::TooLarge));
    }
    let state = ring.state();
    if !Ring::<S, Single, W>::open_bit_only(state) {
        // Anything but GRAPH_BUILT alone: halted or asked to close.
        if Ring::<S, Single, W>::halted_bit(state) {
            return (free, Some(Refusal::Halted));
        }
        if Ring::<S, Single, W>::close_requested_bit(state) {
            // Honour the request: the cursor is final from here on.
            ring.mark_closed_by_producer();
            return (free, Some(Refusal::Closed));
        }
    }
    let at = word(next);
    let anchor = at.wrapping_sub(cap);
    let mut lead = free;
    if n > lead {
        lead = ring.gate_lead(anchor, plain, workers, cap);
    }
    if n > lead {
        if !BLOCK {
            return (free_count(at, lead), Some(Refusal::Full));
        }
        let mut stop = 0;
        let waited = ring.wait.wait_until(|| {
            lead = ring.gate_lead(anchor, plain, workers, cap);
            stop = ring.state() & !1;
            lead >= n || stop != 0
        });
        if lead < n {
            let refusal = if Ring::<S, Single, W>::halted_bit(stop) {
                Refusal::Halted
            } else if stop != 0 {
                ring.mark_closed_by_producer();
                Refusal::Closed
            } else {
                debug_assert!(waited.is_err());
                Refusal::Timeout
            };
            return (free_count(at, lead), Some(refusal));
        }
    }
    if WORDS_WRAP && epoch_of(next) != ring.epoch_relaxed() {
        // Once per 2^29 events on 32-bit targets; compiled out on 64-bit.
        // Before the claim is published (`commit`).
        ring.store_epoch(next);
    }
    // `lead >= n`; the claim itself may run past the epoch's end (the
    // count stops there).
    (free_count(at, lead).saturating_sub(n), None)
}

/// Slots claimed by a batch publish, written in place before they are
/// published together. Iterate it, or index it with
/// [`get_mut`](Self::get_mut).
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(Heap::builder(8).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// // Claim three slots, write them in place, publish them together.
/// producer
///     .publish_batch(3, |mut claimed| {
///         assert_eq!((claimed.len(), claimed.first_sequence()), (3, 0));
///         *claimed.get_mut(0).unwrap() = 100;
///         for (i, slot) in claimed.iter_mut().enumerate().skip(1) {
///             *slot = i as u64;
///         }
///     })
///     .unwrap();
/// let mut got = Vec::new();
/// consumer.poll(|e, _, _| got.push(*e));
/// assert_eq!(got, [100, 1, 2]);
/// ```
pub struct Claimed<'a, S: Storage> {
    storage: &'a S,
    start: u64,
    len: usize,
}

impl<'a, S: Storage> Claimed<'a, S> {
    /// The number of claimed slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slots were claimed (a batch of zero).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sequence of the first claimed slot.
    pub fn first_sequence(&self) -> u64 {
        self.start
    }

    /// The `i`-th claimed slot, if `i < len()`.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut S::Item> {
        (i < self.len).then(|| {
            // SAFETY: slot `start + i` is claimed by this producer and not
            // yet published (ground rules in `core`), and `&mut self` makes
            // this the only live reference handed out by this view.
            unsafe { &mut *self.ptr(i) }
        })
    }

    fn ptr(&self, i: usize) -> *mut S::Item {
        let mask = self.storage.capacity() - 1;
        self.storage.slot_mut(word(self.start + i as u64) & mask)
    }

    /// Iterates the claimed slots in sequence order.
    pub fn iter_mut(&mut self) -> ClaimedIter<'_, S> {
        ClaimedIter {
            storage: self.storage,
            mask: self.storage.capacity() - 1,
            next: self.start,
            end: self.start + self.len as u64,
            _borrow: PhantomData,
        }
    }
}

impl<'a, S: Storage> IntoIterator for Claimed<'a, S> {
    type Item = &'a mut S::Item;
    type IntoIter = ClaimedIter<'a, S>;

    fn into_iter(self) -> ClaimedIter<'a, S> {
        ClaimedIter {
            storage: self.storage,
            mask: self.storage.capacity() - 1,
            next: self.start,
            end: self.start + self.len as u64,
            _borrow: PhantomData,
        }
    }
}

/// Iterator over claimed slots, in sequence order.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(Heap::builder(4).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer
///     .publish_batch(4, |claimed| {
///         for (i, slot) in claimed.into_iter().enumerate() {
///             *slot = 1 << i;
///         }
///     })
///     .unwrap();
/// let mut sum = 0;
/// consumer.poll(|e, _, _| sum += e);
/// assert_eq!(sum, 0b1111);
/// ```
pub struct ClaimedIter<'a, S: Storage> {
    storage: &'a S,
    mask: usize,
    next: u64,
    end: u64,
    _borrow: PhantomData<&'a mut S::Item>,
}

impl<'a, S: Storage> Iterator for ClaimedIter<'a, S> {
    type Item = &'a mut S::Item;

    #[inline]
    fn next(&mut self) -> Option<&'a mut S::Item> {
        if self.next == self.end {
            return None;
        }
        let p = self.storage.slot_mut(word(self.next) & self.mask);
        self.next += 1;
        // SAFETY: each claimed slot is yielded once (distinct sequences in a
        // range no longer than the capacity map to distinct slots), it is
        // claimed and unpublished, so no one else touches it for 'a.
        Some(unsafe { &mut *p })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next) as usize;
        (n, Some(n))
    }
}

impl<S: Storage> ExactSizeIterator for ClaimedIter<'_, S> {}

/// The one producer of a [`Single`]-producer ring.
///
/// Publishing is a plain store: no read-modify-write on the hot path. `Send`
/// but not `Sync` (it is the single writer). Dropping it, or
/// [`close`](Self::close), closes the ring: consumers deliver everything
/// published and then report closed.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Poll, Ring, Single};
///
/// let ring = Ring::<Heap<[u8; 16]>, Single, BusySpin>::with_wait(Heap::builder(2).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// // Write in place: no event is moved or allocated.
/// let seq = producer.publish(|slot| slot[0] = 42).unwrap();
/// assert_eq!((seq, producer.remaining_capacity()), (0, 1));
/// assert_eq!(consumer.poll(|e, _, _| assert_eq!(e[0], 42)), Poll::Processed(1));
/// producer.close(); // same as dropping it
/// assert_eq!(consumer.poll(|_, _, _| ()), Poll::Closed);
/// ```
pub struct Producer<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    ring: R,
    next: Position,
    /// Slots from `next` on known to be free (every terminal gate has
    /// passed their previous occupants): `0..=capacity`, never more than
    /// the truth. Where words wrap it also stops at the end of the epoch
    /// `next` was in when it was counted, so a claim the count allows
    /// starts in the epoch this producer last stored, and the fast path
    /// needs no epoch check (see `free_count`). The producer keeps no copy
    /// of that epoch: it is the ring's epoch word's only writer, so its
    /// slow path reads the word back (Relaxed) to see whether a claim
    /// enters a new epoch.
    free: usize,
    /// `capacity - 1`, kept here so the hot path needs no load for it.
    mask: usize,
    plain: u64,
    workers: u64,
    /// The graph's one terminal gate when it is a plain one (one consumer,
    /// or one last node, and no work group at the end), which the tasks'
    /// claim rescans inline (`claim_for_task`); `NO_GATE` otherwise.
    one_gate: usize,
    done: bool,
    /// The claim gate of the graph's one node when that node is a work
    /// group straight after the producer (the ring is a queue, and
    /// `force_push` may take its oldest event); `NO_QUEUE` otherwise.
    queue_claim: usize,
    /// How long an awaiting publish spins before it registers (plain
    /// state, touched only by the `_async` publishes of an `AsyncWait`
    /// ring).
    spin: Spin,
    _not_sync: PhantomData<Cell<()>>,
}

/// `Producer::queue_claim` when the graph is not a single work group.
pub(super) const NO_QUEUE: usize = usize::MAX;

/// `Producer::one_gate` when the terminal gates are not one plain gate.
const NO_GATE: usize = usize::MAX;

impl<R, S, W> Producer<R>
where
    R: Deref<Target = Ring<S, Single, W>>,
    S: Storage,
    W: WaitStrategy,
{
    pub(super) fn new(ring: R, plain: u64, workers: u64, queue_claim: usize) -> Self {
        Self {
            queue_claim,
            next: Position::new(ring.first),
            free: 0,
            mask: ring.capacity() - 1,
            ring,
            plain,
            workers,
            one_gate: if workers == 0 && plain.count_ones() == 1 {
                plain.trailing_zeros() as usize
            } else {
                NO_GATE
            },
            done: false,
            spin: Spin::new(),
            _not_sync: PhantomData,
        }
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The sequence the next published event will get.
    pub fn sequence(&self) -> u64 {
        self.next.get()
    }

    /// Free slots right now (rescans the gates). Stale as soon as consumers
    /// move on, but never more than the truth.
    pub fn remaining_capacity(&mut self) -> usize {
        let next = self.next.get();
        let until = free_until(&self.ring, next, self.plain, self.workers);
        self.cache_free(until);
        (until - next) as usize
    }

    /// Caches `until - next` free slots, stopping at the end of `next`'s
    /// epoch where words wrap (once per 2^29 events the claim then takes
    /// the slow path, which stores the next epoch before claiming in it).
    #[inline(always)]
    fn cache_free(&mut self, until: u64) {
        self.free = free_count(self.next.word(), (until - self.next.get()) as usize);
    }

    /// Events in the ring: published (or, with several producers, claimed)
    /// and not yet handled by every consumer at the end of the graph. A
    /// point-in-time view, stale as soon as anyone moves; never less than
    /// the truth.
    pub fn len(&mut self) -> usize {
        self.capacity() - self.remaining_capacity()
    }

    /// Whether every consumer has handled everything published. May be
    /// stale under concurrency.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Whether a publish would have to wait for a consumer now. May be
    /// stale under concurrency.
    pub fn is_full(&mut self) -> bool {
        self.remaining_capacity() == 0
    }

    /// Claims `n` slots from `next`. The fast path compares `n` with the
    /// cached free count and loads the read-mostly state word (close, halt);
    /// everything else (a batch larger than the ring, a full ring, a new
    /// epoch, close, halt) is on the slow path. `n <= free` implies
    /// `n <= capacity` and, where words wrap, that `next` is in the epoch
    /// last stored (see `free_count`). The count is taken before the
    /// caller's closure runs: if it panics, the slots are counted as used
    /// though `next` did not move, an under-count the next rescan repairs.
    #[inline(always)]
    fn claim<const BLOCK: bool>(&mut self, n: usize) -> Result<(), Refusal> {
        let ring: &Ring<S, Single, W> = &self.ring;
        // Relaxed: only the value matters (no data is read on its word); a
        // close or halt that happened before this call is seen by
        // coherence, and the slow path reads it again with Acquire.
        if n <= self.free && Ring::<S, Single, W>::open_bit_only(ring.state_relaxed()) {
            debug_assert!(
                !WORDS_WRAP || n == 0 || epoch_of(self.next.get()) == ring.epoch_relaxed()
            );
            self.free -= n;
            return Ok(());
        }
        let args = SlowArgs {
            n,
            free: self.free,
            next: self.next.get(),
        };
        let gates = (self.plain, self.workers);
        let (free, refusal) = claim_slow::<S, W, BLOCK>(ring, gates, &args);
        self.free = free;
        match refusal {
            None => Ok(()),
            // A `Closed` refusal has marked the ring closed already (a
            // second mark when the handle is dropped changes nothing).
            Some(r) => Err(r),
        }
    }

    /// [`claim_for_task`](Self::claim_for_task)'s rescan when the terminal
    /// gates are one plain gate (the usual graph): reads it and, if it
    /// shows room for `n` in an open
    /// ring and the epoch already stored, returns the free count less `n`.
    /// Anything else (no room, close, halt, a new epoch, another graph) is
    /// left to the slow path, which rescans again. A ring that fills at
    /// every publish (capacity 1, as in a ping-pong) rescans on every
    /// publish: here it costs a load and a few instructions, where the
    /// general slow path costs a call and about 40 (`examples/async_cost`
    /// under cachegrind).
    #[inline(always)]
    fn rescan_one_gate(&self, n: usize) -> Option<usize> {
        let ring: &Ring<S, Single, W> = &self.ring;
        // Relaxed: as on the fast path.
        if self.one_gate == NO_GATE || !Ring::<S, Single, W>::open_bit_only(ring.state_relaxed()) {
            return None;
        }
        if WORDS_WRAP && epoch_of(self.next.get()) != ring.epoch_relaxed() {
            return None;
        }
        let at = self.next.word();
        let cap = self.mask + 1;
        let gate = &ring.storage.gates()[self.one_gate];
        let lead = plain_gate_lead(at.wrapping_sub(cap), gate, cap);
        free_count(at, lead).checked_sub(n)
    }

    /// The tasks' claim of one slot: [`claim`](Self::claim), but with the
    /// cached count spent, the one-gate rescan inline first. Only the
    /// tasks' tries use it: inline in every claim it costs the fast path
    /// registers (`examples/ring_cost`, a blocking `publish`: 58 -> 67
    /// instructions per event), while an awaiting task that finds a small
    /// ring full at every push saves the slow path's call.
    #[inline(always)]
    fn claim_for_task(&mut self) -> Result<(), Refusal> {
        if self.free == 0 {
            if let Some(free) = self.rescan_one_gate(1) {
                self.free = free;
                return Ok(());
            }
        }
        self.claim::<false>(1)
    }

    /// Publishes the `n` claimed slots from `next` on.
    #[inline(always)]
    fn commit(&mut self, n: usize) {
        self.next.advance(n);
        // Release: pairs with consumers' Acquire cursor load; the event
        // writes above become visible with the new cursor.
        self.ring.cursor.store(self.next.word(), Ordering::Release);
        self.ring.notify();
    }

    /// Writes the claimed slot `next` with `f` and publishes it; returns
    /// its sequence.
    #[inline(always)]
    fn write_one<F: FnOnce(&mut S::Item)>(&mut self, f: F) -> u64 {
        let start = self.next;
        let p = self.ring.storage.slot_mut(start.word() & self.mask);
        // SAFETY: slot `start` is claimed (every terminal gate is past its
        // previous occupant) and not yet published, and this is the ring's
        // only producer: no other reference to it exists. If `f` panics the
        // cursor does not move, so the slot is simply claimed again later.
        f(unsafe { &mut *p });
        self.commit(1);
        start.get()
    }

    /// Writes one event in place with `f` and publishes it, waiting (with the
    /// ring's wait strategy) while the ring is full. Returns its sequence.
    ///
    /// # Errors
    ///
    /// `Closed`, `Halted` or `Timeout`, each handing `f` back unrun.
    #[inline]
    pub fn publish<F: FnOnce(&mut S::Item)>(&mut self, f: F) -> Result<u64, PublishError<F>> {
        match self.claim::<true>(1) {
            Ok(()) => Ok(self.write_one(f)),
            Err(r) => Err(r.with(f)),
        }
    }

    /// Like [`publish`](Self::publish) but never waits.
    ///
    /// # Errors
    ///
    /// `Full` when no slot is free, or `Closed`/`Halted`.
    #[inline]
    pub fn try_publish<F: FnOnce(&mut S::Item)>(&mut self, f: F) -> Result<u64, PublishError<F>> {
        match self.claim::<false>(1) {
            Ok(()) => Ok(self.write_one(f)),
            Err(r) => Err(r.with(f)),
        }
    }

    /// Moves `value` into the next slot (dropping the slot's old event) and
    /// publishes it, waiting while the ring is full.
    ///
    /// # Errors
    ///
    /// As for [`publish`](Self::publish), handing `value` back.
    #[inline]
    pub fn push(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        match self.claim::<true>(1) {
            Ok(()) => Ok(self.write_one(|slot| *slot = value)),
            Err(r) => Err(r.with(value)),
        }
    }

    /// Like [`push`](Self::push) but never waits.
    ///
    /// # Errors
    ///
    /// As for [`try_publish`](Self::try_publish), handing `value` back.
    #[inline]
    pub fn try_push(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        match self.claim::<false>(1) {
            Ok(()) => Ok(self.write_one(|slot| *slot = value)),
            Err(r) => Err(r.with(value)),
        }
    }

    /// `push_async`'s try: [`try_push`](Self::try_push) with the one-gate
    /// rescan inline (`claim_for_task`).
    #[inline(always)]
    fn try_push_for_task(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        match self.claim_for_task() {
            Ok(()) => Ok(self.write_one(|slot| *slot = value)),
            Err(r) => Err(r.with(value)),
        }
    }

    /// `publish_async`'s try: [`try_publish`](Self::try_publish) with the
    /// one-gate rescan inline.
    #[inline(always)]
    fn try_publish_for_task<F: FnOnce(&mut S::Item)>(
        &mut self,
        f: F,
    ) -> Result<u64, PublishError<F>> {
        match self.claim_for_task() {
            Ok(()) => Ok(self.write_one(f)),
            Err(r) => Err(r.with(f)),
        }
    }

    /// Pushes `value`, and if the ring is full takes its oldest event out
    /// to make room, returning it: an overwrite-oldest ring, as crossbeam's
    /// `ArrayQueue::force_push`. Only for a ring used as a queue, whose
    /// graph is one work group straight after the producer: the oldest
    /// event is taken only if no worker has claimed it, with the same CAS
    /// a worker claims with, so consumers never see it and never see a torn
    /// event. If a worker has just claimed the oldest event, its slot frees
    /// when that worker is done with its batch: this waits for that (with
    /// the ring's wait strategy) and returns `Ok(None)`.
    ///
    /// What workers observe: every event exactly once, in claim order,
    /// except the ones taken back here, which they never see; sequences
    /// keep counting, so a worker sees a gap where an event was taken.
    ///
    /// ```
    /// use latchfree::ring::{Heap, Ring};
    ///
    /// let ring = Ring::new(Heap::with_capacity(2).unwrap());
    /// let mut graph = Ring::graph(&ring).unwrap();
    /// let [mut worker] = graph.work_group::<1>(&[]).unwrap();
    /// let mut producer = graph.single_producer().unwrap();
    /// assert_eq!(producer.force_push(1), Ok(None));
    /// assert_eq!(producer.force_push(2), Ok(None));
    /// assert_eq!(producer.force_push(3), Ok(Some(1))); // full: 1 makes room
    /// let mut seen = Vec::new();
    /// worker.poll(|e, seq, _| seen.push((seq, *e)));
    /// assert_eq!(seen, [(1, 2), (2, 3)]);
    /// ```
    ///
    /// # Errors
    ///
    /// `NotAQueue` when the graph is not a single work group after the
    /// producer (other consumers would miss the taken event), `Closed`,
    /// `Halted`, or `Timeout` from a time-limited strategy; each hands
    /// `value` back.
    pub fn force_push(
        &mut self,
        value: S::Item,
    ) -> Result<Option<S::Item>, ForcePushError<S::Item>> {
        if self.queue_claim == NO_QUEUE {
            return Err(ForcePushError::NotAQueue(value));
        }
        let value = match self.try_push(value) {
            Ok(_) => return Ok(None),
            Err(PublishError::Full(v)) => v,
            Err(e) => return Err(ForcePushError::from_publish(e)),
        };
        let ring: &Ring<S, Single, W> = &self.ring;
        let cap = ring.capacity() as u64;
        // Full: every terminal gate is at `next - cap`, the oldest event.
        let oldest = self.next.get() - cap;
        let claim = &ring.storage.gates()[self.queue_claim];
        // AcqRel, as a worker's claim CAS (see `Worker`): taking the
        // position from the group's claim word is what keeps every worker
        // off it. A worker that announced itself at `oldest` loses its CAS
        // and retries past it.
        let taken = claim.compare_exchange(
            word(oldest),
            word(oldest + 1),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        if taken.is_err() {
            // A worker holds the oldest event: its slot comes back when it
            // is done. Wait for that like any full-ring push.
            return match self.push(value) {
                Ok(_) => Ok(None),
                Err(e) => Err(ForcePushError::from_publish(e)),
            };
        }
        let next = self.next.get();
        if WORDS_WRAP && epoch_of(next) != ring.epoch_relaxed() {
            ring.store_epoch(next);
        }
        let p = ring.storage.slot_mut(self.next.word() & self.mask);
        // SAFETY: slot `next` is slot `oldest` (a capacity apart). Its event
        // was published and no worker claimed it (our CAS moved the group's
        // claim past it), no worker ever will, and every other terminal gate
        // is a worker word not busy on it; this is the ring's only producer.
        // So no other reference to the slot exists.
        let old = core::mem::replace(unsafe { &mut *p }, value);
        self.commit(1);
        Ok(Some(old))
    }

    fn write_batch<F: FnOnce(Claimed<'_, S>)>(&mut self, n: usize, f: F) -> u64 {
        let start = self.next.get();
        f(Claimed {
            storage: &self.ring.storage,
            start,
            len: n,
        });
        self.commit(n);
        start
    }

    /// Claims `n` slots, lets `f` write them in place, and publishes them
    /// together; waits while fewer than `n` are free. Returns the first
    /// sequence. `n == 0` calls `f` with an empty batch.
    ///
    /// # Errors
    ///
    /// `TooLarge` if `n` exceeds the capacity, else as for
    /// [`publish`](Self::publish).
    pub fn publish_batch<F: FnOnce(Claimed<'_, S>)>(
        &mut self,
        n: usize,
        f: F,
    ) -> Result<u64, PublishError<F>> {
        match self.claim::<true>(n) {
            Ok(()) => Ok(self.write_batch(n, f)),
            Err(r) => Err(r.with(f)),
        }
    }

    /// Like [`publish_batch`](Self::publish_batch) but never waits.
    ///
    /// # Errors
    ///
    /// `Full` when fewer than `n` slots are free, else as for
    /// [`publish_batch`](Self::publish_batch).
    pub fn try_publish_batch<F: FnOnce(Claimed<'_, S>)>(
        &mut self,
        n: usize,
        f: F,
    ) -> Result<u64, PublishError<F>> {
        match self.claim::<false>(n) {
            Ok(()) => Ok(self.write_batch(n, f)),
            Err(r) => Err(r.with(f)),
        }
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.ring.mark_closed_by_producer();
        }
    }

    /// Closes the ring: consumers deliver every event published so far, then
    /// report closed. Same as dropping the producer.
    pub fn close(mut self) {
        self.finish();
    }
}

impl<R> Drop for Producer<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    fn drop(&mut self) {
        self.ring.release_wait_cell(self.spin.take_home());
        if !self.done {
            self.done = true;
            self.ring.producer_gone();
        }
    }
}

/// A producer handle of a [`Multi`]-producer ring. Clone it for each
/// producing thread; producers claim slots with a CAS and publish each slot
/// independently, so none waits for another's writes. The ring closes when
/// the last handle is dropped (or on [`Ring::close`]).
///
/// ```
/// use std::sync::Arc;
/// use latchfree::ring::{Heap, Multi, Parking, Ring};
///
/// let ring = Arc::new(Ring::<Heap<u64>, Multi, Parking>::with_wait(
///     Heap::builder(64).gates(1).build().unwrap(),
///     Parking::new(),
/// ));
/// let mut graph = Ring::graph(ring.clone()).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let producer = graph.multi_producer().unwrap();
/// let threads: Vec<_> = (0..2u64)
///     .map(|t| {
///         let mut p = producer.clone();
///         std::thread::spawn(move || {
///             for i in 0..100 {
///                 p.publish(|slot| *slot = t * 1000 + i).unwrap();
///             }
///         })
///     })
///     .collect();
/// drop(producer); // the last handle to go closes the ring
/// let mut count = 0;
/// while consumer.wait(|_, _, _| count += 1).is_ok() {}
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// assert_eq!(count, 200);
/// ```
pub struct MultiProducer<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    ring: R,
    free_until: u64,
    /// `capacity - 1`, kept here so a publish needs no load for it (the
    /// claim RMW makes the compiler reload what it reads from the ring).
    mask: usize,
    plain: u64,
    workers: u64,
    /// As `Producer::spin`; a clone starts afresh.
    spin: Spin,
    _not_sync: PhantomData<Cell<()>>,
}

/// Publishes (or, if the writer panicked, marks skipped) the claimed range
/// when dropped, so a claimed slot is never left as a hole that would stall
/// every consumer.
struct StampGuard<'a> {
    stamps: &'a [AtomicUsize],
    /// `stamps.len() - 1`.
    mask: usize,
    start: u64,
    end: u64,
    written: bool,
}

impl Drop for StampGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let (stamps, mask) = (self.stamps, self.mask);
        debug_assert_eq!(mask, stamps.len() - 1);
        for seq in self.start..self.end {
            let w = word(seq);
            // SAFETY: `stamps` has `capacity` entries, a power of two (the
            // `Storage` contract), so `w & mask` is in bounds.
            let stamp = unsafe { stamps.get_unchecked(w & mask) };
            // Release: pairs with the consumers' Acquire stamp load in
            // `published_scan`: the event written above becomes visible.
            stamp.store(pack(w.wrapping_add(1), !self.written), Ordering::Release);
        }
    }
}

impl<R, S, W> MultiProducer<R>
where
    R: Deref<Target = Ring<S, Multi, W>>,
    S: Storage,
    W: WaitStrategy,
{
    pub(super) fn new(ring: R, plain: u64, workers: u64) -> Self {
        ring.producers.fetch_add(1, Ordering::Relaxed);
        Self {
            free_until: ring.first,
            mask: ring.capacity() - 1,
            ring,
            plain,
            workers,
            spin: Spin::new(),
            _not_sync: PhantomData,
        }
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The sequence the next claim by any producer will get: every sequence
    /// below it is claimed, and published or about to be (a claimed slot is
    /// written and published without waiting). Stale as soon as anyone
    /// claims.
    pub fn sequence(&mut self) -> u64 {
        let ring: &Ring<S, Multi, W> = &self.ring;
        // Acquire: a claim that happened before this call is seen. The
        // position is rebuilt from the ring's epoch, as every claim does.
        let (w, epoch) = ring.read_anchored(|| ring.cursor.load(Ordering::Acquire));
        Ring::<S, Multi, W>::claim_position(w, epoch)
    }

    /// Free slots right now, shared among all producers. Stale as soon as
    /// anyone moves.
    pub fn remaining_capacity(&mut self) -> usize {
        let ring: &Ring<S, Multi, W> = &self.ring;
        let (w, epoch) = ring.read_anchored(|| ring.cursor.load(Ordering::Acquire));
        let claimed = Ring::<S, Multi, W>::claim_position(w, epoch);
        self.free_until = free_until(&self.ring, claimed, self.plain, self.workers);
        (self.free_until - claimed) as usize
    }

    /// Events in the ring: published (or, with several producers, claimed)
    /// and not yet handled by every consumer at the end of the graph. A
    /// point-in-time view, stale as soon as anyone moves; never less than
    /// the truth.
    pub fn len(&mut self) -> usize {
        self.capacity() - self.remaining_capacity()
    }

    /// Whether every consumer has handled everything published. May be
    /// stale under concurrency.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Whether a publish would have to wait for a consumer now. May be
    /// stale under concurrency.
    pub fn is_full(&mut self) -> bool {
        self.remaining_capacity() == 0
    }

    fn claim(&mut self, n: usize, block: bool) -> Result<u64, Refusal> {
        let ring: &Ring<S, Multi, W> = &self.ring;
        // A capacity is at least 1: a single-slot claim (every `publish`)
        // skips the test at compile time.
        if n > 1 && n > ring.capacity() {
            return Err(Refusal::TooLarge);
        }
        let (plain, workers) = (self.plain, self.workers);
        // Acquire, paired with the claim CAS below (SeqCst, so AcqRel too):
        // a producer that sees another's claim also sees every gate value
        // that producer read before claiming, so its own gate reads can
        // never be older than `claim - capacity` (which `free_until` relies
        // on; loom found the overrun that a Relaxed claim allowed). The
        // position is rebuilt from the word and the ring's epoch, never from
        // this handle's last view, which may be any number of laps old.
        let read = || ring.cursor.load(Ordering::Acquire);
        let (mut w, mut epoch) = ring.read_anchored(read);
        loop {
            // Relaxed: a bit test only (see `Ring::state_relaxed`).
            if Ring::<S, Multi, W>::halted_bit(ring.state_relaxed()) {
                return Err(Refusal::Halted);
            }
            if unpacked_flag(w) {
                return Err(Refusal::Closed);
            }
            let start = Ring::<S, Multi, W>::claim_position(w, epoch);
            if WORDS_WRAP && epoch_of(start) != epoch {
                // Once per 2^29 events on 32-bit targets.
                ring.advance_epoch(epoch, start);
                (w, epoch) = ring.read_anchored(read);
                continue;
            }
            let end = start + n as u64;
            if end > self.free_until {
                self.free_until = free_until(ring, start, plain, workers);
                if end > self.free_until {
                    if !block {
                        return Err(Refusal::Full);
                    }
                    let mut until = self.free_until;
                    let waited = ring.wait.wait_until(|| {
                        until = free_until(ring, start, plain, workers);
                        // A moved claim word (closed, or claimed by others)
                        // also ends the wait: `start` is stale then.
                        until >= end
                            || ring.cursor.load(Ordering::Relaxed) != w
                            || Ring::<S, Multi, W>::halted_bit(ring.state())
                    });
                    self.free_until = until;
                    if waited.is_err() {
                        return Err(Refusal::Timeout);
                    }
                    (w, epoch) = ring.read_anchored(read);
                    continue;
                }
            }
            // SeqCst (no dearer than AcqRel for an RMW on x86 or AArch64):
            // the claim is also an announcement that a sleeper's SeqCst
            // fence pairs with, so the pool needs no fence of its own after
            // it (`threaded::doorbell`, "Announced work").
            match ring.cursor.compare_exchange_weak(
                w,
                pack(word(end), false),
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(start),
                Err(now) => {
                    if WORDS_WRAP {
                        (w, epoch) = ring.read_anchored(read);
                    } else {
                        w = now;
                    }
                    crate::sync::spin_loop();
                }
            }
        }
    }

    fn write<T>(&self, start: u64, n: usize, f: impl FnOnce(Claimed<'_, S>) -> T) -> T {
        let mut guard = StampGuard {
            stamps: self.ring.stamps(),
            mask: self.mask,
            start,
            end: start + n as u64,
            written: false,
        };
        let out = f(Claimed {
            storage: &self.ring.storage,
            start,
            len: n,
        });
        guard.written = true;
        drop(guard);
        self.ring.notify();
        out
    }

    /// Claims one slot (waiting if `block`), hands it to `write` with `v`,
    /// publishes it; on refusal hands `v` back.
    #[inline]
    fn publish_one<V>(
        &mut self,
        block: bool,
        v: V,
        write: impl FnOnce(V, &mut S::Item),
    ) -> Result<u64, PublishError<V>> {
        match self.claim(1, block) {
            Ok(start) => {
                let ring: &Ring<S, Multi, W> = &self.ring;
                let stamps = ring.stamps();
                let mut guard = StampGuard {
                    stamps,
                    mask: self.mask,
                    start,
                    end: start + 1,
                    written: false,
                };
                let p = ring.storage.slot_mut(word(start) & self.mask);
                // SAFETY: slot `start` is claimed by this handle's CAS and
                // not yet stamped, so no other handle touches it; the guard
                // stamps it (published, or skipped if `write` panics).
                write(v, unsafe { &mut *p });
                guard.written = true;
                drop(guard);
                self.ring.notify();
                Ok(start)
            }
            Err(r) => Err(r.with(v)),
        }
    }

    /// Writes one event in place with `f` and publishes it, waiting while the
    /// ring is full. Returns its sequence. If `f` panics the slot is
    /// published as skipped: consumers never see it, and never stall on it.
    ///
    /// # Errors
    ///
    /// `Closed`, `Halted` or `Timeout`, each handing `f` back unrun.
    pub fn publish<F: FnOnce(&mut S::Item)>(&mut self, f: F) -> Result<u64, PublishError<F>> {
        self.publish_one(true, f, |f, slot| f(slot))
    }

    /// Like [`publish`](Self::publish) but never waits.
    ///
    /// # Errors
    ///
    /// `Full` when no slot is free, or `Closed`/`Halted`.
    pub fn try_publish<F: FnOnce(&mut S::Item)>(&mut self, f: F) -> Result<u64, PublishError<F>> {
        self.publish_one(false, f, |f, slot| f(slot))
    }

    /// Moves `value` into the next slot and publishes it, waiting while full.
    ///
    /// # Errors
    ///
    /// As for [`publish`](Self::publish), handing `value` back.
    pub fn push(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        self.publish_one(true, value, |value, slot| *slot = value)
    }

    /// Like [`push`](Self::push) but never waits.
    ///
    /// # Errors
    ///
    /// As for [`try_publish`](Self::try_publish), handing `value` back.
    pub fn try_push(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        self.publish_one(false, value, |value, slot| *slot = value)
    }

    /// `push_async`'s try (one body for both handles): [`try_push`](Self::try_push).
    #[inline(always)]
    fn try_push_for_task(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        self.try_push(value)
    }

    /// `publish_async`'s try: [`try_publish`](Self::try_publish).
    #[inline(always)]
    fn try_publish_for_task<F: FnOnce(&mut S::Item)>(
        &mut self,
        f: F,
    ) -> Result<u64, PublishError<F>> {
        self.try_publish(f)
    }

    /// Claims `n` contiguous slots, lets `f` write them, and publishes them.
    /// Waits while fewer than `n` are free. Returns the first sequence.
    ///
    /// # Errors
    ///
    /// `TooLarge` if `n` exceeds the capacity, else as for
    /// [`publish`](Self::publish).
    pub fn publish_batch<F: FnOnce(Claimed<'_, S>)>(
        &mut self,
        n: usize,
        f: F,
    ) -> Result<u64, PublishError<F>> {
        match self.claim(n, true) {
            Ok(start) => {
                self.write(start, n, f);
                Ok(start)
            }
            Err(r) => Err(r.with(f)),
        }
    }

    /// Like [`publish_batch`](Self::publish_batch) but never waits.
    ///
    /// # Errors
    ///
    /// `Full` when fewer than `n` slots are free, else as for
    /// [`publish_batch`](Self::publish_batch).
    pub fn try_publish_batch<F: FnOnce(Claimed<'_, S>)>(
        &mut self,
        n: usize,
        f: F,
    ) -> Result<u64, PublishError<F>> {
        match self.claim(n, false) {
            Ok(start) => {
                self.write(start, n, f);
                Ok(start)
            }
            Err(r) => Err(r.with(f)),
        }
    }
}

impl<R, S, W> Clone for MultiProducer<R>
where
    R: Deref<Target = Ring<S, Multi, W>> + Clone,
    S: Storage,
    W: WaitStrategy,
{
    fn clone(&self) -> Self {
        self.ring.producers.fetch_add(1, Ordering::Relaxed);
        Self {
            ring: self.ring.clone(),
            free_until: self.free_until,
            mask: self.mask,
            plain: self.plain,
            workers: self.workers,
            spin: Spin::new(),
            _not_sync: PhantomData,
        }
    }
}

impl<R> Drop for MultiProducer<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    fn drop(&mut self) {
        self.ring.release_wait_cell(self.spin.take_home());
        self.ring.producer_gone();
    }
}

/// A non-waiting push's result as a future step: `Full` is "not yet", and
/// hands the value back for the next try.
fn push_step<T>(
    r: Result<u64, PublishError<T>>,
    keep: &mut Option<T>,
) -> TaskPoll<Result<u64, PublishError<T>>> {
    match r {
        Err(PublishError::Full(v)) => {
            *keep = Some(v);
            TaskPoll::Pending
        }
        done => TaskPoll::Ready(done),
    }
}

/// The futures of both producer handles (one body: `$handle` over a ring
/// in mode `$mode`).
macro_rules! async_producer {
    ($handle:ident, $mode:ty) => {
        impl<R, S, W, const N: usize> Awaitable for $handle<R>
        where
            R: Deref<Target = Ring<S, $mode, AsyncWait<W, N>>>,
            S: Storage,
            W: WaitStrategy,
        {
            #[inline(always)]
            fn arm(&self, slot: &mut Option<usize>, waker: &core::task::Waker) {
                self.ring.wait.arm(slot, waker);
            }
            fn unarm(&self, slot: Option<usize>) {
                self.ring.wait.unarm(slot);
            }
            fn disarm(&self, slot: &mut Option<usize>) {
                self.ring.wait.disarm(slot);
            }
            fn park(&self, cell: usize) -> Option<usize> {
                self.ring.wait.park(cell)
            }
            fn spin_budget(&mut self) -> &mut Spin {
                &mut self.spin
            }
            /// Room for one event, or a ring closing or halting: a rescan
            /// of the gates (and the claim word) when the cached count is
            /// spent.
            #[inline]
            fn spin_hint(&mut self) -> bool {
                self.remaining_capacity() != 0
                    || !Ring::<S, $mode, AsyncWait<W, N>>::open_bit_only(self.ring.state_relaxed())
                    || (<$mode as super::Mode>::MULTI && self.ring.is_closed())
            }
        }

        impl<R, S, W, const N: usize> $handle<R>
        where
            R: Deref<Target = Ring<S, $mode, AsyncWait<W, N>>>,
            S: Storage,
            W: WaitStrategy,
        {
            /// [`push`](Self::push) as a future: publishes `value`, or,
            /// while the ring is full, registers the task's waker and
            /// completes once a slot frees (or the ring closes or halts).
            /// Only on rings with the [`AsyncWait`] strategy.
            ///
            /// Dropping the future before it completes publishes nothing
            /// and drops `value`; no slot is claimed until the poll that
            /// publishes.
            ///
            /// # Errors
            ///
            /// `Closed` or `Halted`, handing `value` back.
            pub fn push_async<'a>(
                &'a mut self,
                value: S::Item,
            ) -> impl Future<Output = Result<u64, PublishError<S::Item>>> + 'a
            where
                S::Item: 'a,
            {
                let mut value = Some(value);
                // Always inlined, the try with it: with the claim's
                // one-gate rescan, LLVM would otherwise keep the try out of
                // line, a call per push (`examples/async_cost` under
                // cachegrind, ping-pong: 1331 instructions per round trip
                // inlined, 1372-1400 not; SPSC 67 per event, 89-93 not).
                Retry::new(
                    self,
                    #[inline(always)]
                    move |p: &mut Self| {
                        let v = value.take().expect("`push_async` polled after completion");
                        push_step(p.try_push_for_task(v), &mut value)
                    },
                )
            }

            /// [`publish`](Self::publish) as a future: writes one event in
            /// place with `f` once a slot is free (see
            /// [`push_async`](Self::push_async)).
            ///
            /// # Errors
            ///
            /// `Closed` or `Halted`, handing `f` back unrun.
            pub fn publish_async<'a, F>(
                &'a mut self,
                f: F,
            ) -> impl Future<Output = Result<u64, PublishError<F>>> + 'a
            where
                F: FnOnce(&mut S::Item) + 'a,
            {
                let mut f = Some(f);
                // Always inlined, as in `push_async`.
                Retry::new(
                    self,
                    #[inline(always)]
                    move |p: &mut Self| {
                        let g = f.take().expect("`publish_async` polled after completion");
                        push_step(p.try_publish_for_task(g), &mut f)
                    },
                )
            }
        }
    };
}

async_producer!(Producer, Single);
async_producer!(MultiProducer, Multi);

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use alloc::vec::Vec;

    use crate::ring::{BusySpin, Heap, Poll, PublishError, Ring, Single};
    #[cfg(feature = "std")]
    use {crate::ring::AsyncWait, core::future::Future};

    type R = Ring<Heap<u32>, Single, BusySpin>;

    fn ring(cap: usize, gates: usize) -> R {
        Ring::with_wait(Heap::builder(cap).gates(gates).build().unwrap(), BusySpin)
    }

    /// The events a test round `round` pushes into a ring of `cap`.
    fn round_of(cap: usize, round: u32) -> Vec<u32> {
        (0..cap as u32).map(|i| round * 10 + i).collect()
    }

    /// At capacity 1 and 2 the cached free count runs out on every push
    /// or every other one, the case the async ping-pong makes hot: a
    /// refill must take the slowest gate, and refuse on a halted or
    /// closing ring even with slots free.
    #[test]
    fn small_ring_refills_from_the_slowest_gate_and_still_refuses() {
        for cap in [1usize, 2] {
            let ring = ring(cap, 2);
            let mut g = Ring::graph(&ring).unwrap();
            let mut a = g.consumer(&[]).unwrap();
            let mut b = g.consumer(&[]).unwrap();
            let mut p = g.single_producer().unwrap();
            for round in 0..5u32 {
                for i in 0..cap as u32 {
                    assert_eq!(p.try_push(round * 10 + i).map(|_| ()), Ok(()));
                }
                assert!(matches!(p.try_push(99), Err(PublishError::Full(99))));
                assert_eq!(a.poll(|_, _, _| ()), Poll::Processed(cap));
                // `b` still holds every slot: the refill must not count `a`'s.
                assert!(
                    matches!(p.try_push(99), Err(PublishError::Full(99))),
                    "capacity {cap}: a slot the second gate still holds was claimed"
                );
                let mut got = Vec::new();
                assert_eq!(b.poll(|e, _, _| got.push(*e)), Poll::Processed(cap));
                assert_eq!(got, round_of(cap, round));
            }
            // Slots are free (both gates moved on), but the ring is halted.
            ring.halt();
            assert!(matches!(p.try_push(7), Err(PublishError::Halted(7))));
            assert!(matches!(p.publish(|_| ()), Err(PublishError::Halted(_))));
        }
    }

    /// A close asked for while slots are free is honoured by the next
    /// claim: the producer reports `Closed`, consumers drain and then see
    /// the ring closed.
    #[test]
    fn small_ring_refill_honours_a_requested_close() {
        let ring = ring(2, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(c.poll(|_, _, _| ()), Poll::Processed(2));
        ring.close();
        assert!(matches!(p.try_push(3), Err(PublishError::Closed(3))));
        assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
    }

    /// Polls `f` once (with a waker that only counts): `Some` if ready.
    #[cfg(feature = "std")]
    fn poll_once<F: Future>(f: F) -> Option<F::Output> {
        let (_, waker) = crate::waker::counting::counter();
        let mut f = core::pin::pin!(f);
        match f
            .as_mut()
            .poll(&mut core::task::Context::from_waker(&waker))
        {
            core::task::Poll::Ready(v) => Some(v),
            core::task::Poll::Pending => None,
        }
    }

    #[cfg(feature = "std")]
    type A = Ring<Heap<u32>, Single, AsyncWait<BusySpin, 2>>;

    #[cfg(feature = "std")]
    fn async_ring(cap: usize, gates: usize) -> A {
        Ring::with_wait(
            Heap::builder(cap).gates(gates).build().unwrap(),
            AsyncWait::with(BusySpin),
        )
    }

    /// One terminal gate (the tasks' inline rescan, `claim_for_task`): a
    /// pipeline `a -> b` frees slots only as `b` moves, however far `a` is
    /// ahead; a halt refuses with slots free.
    #[test]
    #[cfg(feature = "std")]
    fn one_terminal_gate_refills_from_the_last_node_only() {
        for cap in [1usize, 2] {
            let ring = async_ring(cap, 2);
            let mut g = Ring::graph(&ring).unwrap();
            let mut a = g.consumer(&[]).unwrap();
            let mut b = g.consumer(&[a.node()]).unwrap();
            let mut p = g.single_producer().unwrap();
            for round in 0..5u32 {
                for v in round_of(cap, round) {
                    let r = poll_once(p.push_async(v));
                    assert!(matches!(r, Some(Ok(_))), "capacity {cap}: no room");
                }
                assert!(
                    poll_once(p.push_async(99)).is_none(),
                    "a full ring took a push"
                );
                assert_eq!(a.poll(|_, _, _| ()), Poll::Processed(cap));
                assert!(
                    poll_once(p.push_async(99)).is_none(),
                    "capacity {cap}: a slot the last node still holds was claimed"
                );
                let mut got = Vec::new();
                assert_eq!(b.poll(|e, _, _| got.push(*e)), Poll::Processed(cap));
                assert_eq!(got, round_of(cap, round));
            }
            ring.halt();
            assert!(matches!(
                poll_once(p.publish_async(|e| *e = 7)),
                Some(Err(PublishError::Halted(_)))
            ));
            assert!(matches!(
                poll_once(p.push_async(7)),
                Some(Err(PublishError::Halted(7)))
            ));
        }
    }

    /// A task's writer that panics after the inline rescan claimed its
    /// slot publishes nothing and loses nothing: the consumer sees no
    /// event, the next task push gets the same sequence, and the ring goes
    /// on in order.
    #[test]
    #[cfg(feature = "std")]
    fn a_panicking_task_writer_after_the_rescan_publishes_nothing() {
        extern crate std;
        let ring = async_ring(1, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let mut seen = Vec::new();
        assert!(matches!(poll_once(p.push_async(1)), Some(Ok(0))));
        assert_eq!(c.poll(|e, s, _| seen.push((*e, s))), Poll::Processed(1));
        // The cached room is spent: this claim is the rescan's.
        let panicked = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            poll_once(p.publish_async(|_| panic!("writer died")))
        }));
        assert!(panicked.is_err());
        assert_eq!(c.poll(|_, _, _| ()), Poll::Idle, "a dead writer published");
        for v in 2..5u32 {
            assert!(
                matches!(poll_once(p.push_async(v)), Some(Ok(_))),
                "push {v}"
            );
            assert_eq!(c.poll(|e, s, _| seen.push((*e, s))), Poll::Processed(1));
        }
        assert_eq!(seen, [(1, 0), (2, 1), (3, 2), (4, 3)]);
    }

    /// A capacity-1 ring rescans its one gate at every push from a task;
    /// across the end of an epoch (where words wrap) the push that starts
    /// the next epoch must still store it before claiming (the slow path),
    /// and the consumer sees every sequence once, in order. A close asked
    /// for is honoured with slots free.
    #[test]
    #[cfg(feature = "std")]
    fn one_gate_rescans_store_each_epoch_before_claiming_in_it() {
        use crate::ring::sequence::{epoch_of, EPOCH_SHIFT, WORDS_WRAP};
        let boundary = 1u64 << EPOCH_SHIFT;
        let ring = A::with_first_sequence(
            Heap::builder(1).gates(1).build().unwrap(),
            AsyncWait::with(BusySpin),
            boundary - 3,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let mut seen = Vec::new();
        for i in 0..7u32 {
            let seq = if i % 2 == 0 {
                poll_once(p.push_async(i)).expect("room").unwrap()
            } else {
                let r = poll_once(p.publish_async(|e| *e = i)).expect("room");
                r.unwrap_or_else(|_| panic!("publish {i} refused"))
            };
            assert_eq!(seq, boundary - 3 + u64::from(i));
            if WORDS_WRAP {
                assert_eq!(ring.epoch_now(), epoch_of(seq), "push {i}");
            }
            assert_eq!(c.poll(|e, s, _| seen.push((*e, s))), Poll::Processed(1));
        }
        let want: Vec<(u32, u64)> = (0..7u32)
            .map(|i| (i, boundary - 3 + u64::from(i)))
            .collect();
        assert_eq!(seen, want);
        ring.close();
        assert!(matches!(
            poll_once(p.push_async(9)),
            Some(Err(PublishError::Closed(9)))
        ));
    }
}
