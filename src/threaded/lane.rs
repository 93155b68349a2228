//! Producer lanes: how the pool and the batcher (shared by `&self`) let
//! any thread publish into their queue without a lock, and the one
//! publish-with-retry both use.
//!
//! The queue is a multi-producer [`Ring`] of take-once [`Slot`]s
//! ([`Queue`]). Ring producers take `&mut self`, so each submitting thread
//! gets a *lane*: a private clone of the producer handle, kept in a small
//! thread-local cache, plus a counter only that thread writes. A submit
//! then takes no lock and does no atomic read-modify-write of its own: the
//! counter is bumped with a plain load and store, and the handle's cached
//! view of the ring's free space stays on the submitting core.
//!
//! Ground rules:
//!
//! - A lane belongs to one thread at a time: the thread whose cache holds
//!   it, or whoever holds the lock of the fallback stripe it sits in. Its
//!   counter is written only by that owner; lanes change owner only through
//!   the registry's mutex (which orders the last write before the next).
//! - Every counter ever created stays in the registry (`all`), so
//!   [`Lanes::counted`] sums every submission ever made. A lane dropped
//!   from a thread cache (eviction, thread exit) goes to the free list and
//!   is reused by the next thread that needs one: the registry grows with
//!   the number of threads submitting *at once*, not over time.
//! - The thread cache holds at most [`CACHE_LANES`] lanes (of any pools);
//!   lanes of structures that were dropped are purged at the next miss, so
//!   a dead ring stays allocated only until then (or until the thread
//!   exits).
//! - Where the thread-local cache is unavailable (during thread teardown,
//!   or a nested use on the same thread) a submit falls back to the striped
//!   lanes, each behind a mutex, starting from its thread's stripe.
//! - [`Lanes::push`] counts a submission *before* its first publish attempt
//!   (refused ones too; the owner counts those apart), so no consumer can
//!   finish an item before it is counted (see `pool::state` on `is_idle`).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::{Cell, RefCell};
use core::time::Duration;

use super::slot::Slot;
use crate::error::TryPushError;
use crate::ring::{CapacityError, Heap, Multi, MultiProducer, Parking, PublishError, Ring};
use crate::sync::blocking::Mutex;
use crate::sync::time;
use crate::sync::{
    thread, Arc, AtomicBool, AtomicUsize, CachePadded, Ordering, UntrackedAtomicUsize,
};

/// The queue of the pool and the batcher: a multi-producer ring of
/// take-once slots whose producers, when it is full, park (200 µs at most
/// at a time, so a close is seen promptly).
pub(crate) type Queue<T> = Ring<Heap<Slot<T>>, Multi, Parking>;
/// A producer handle of a [`Queue`]: what a lane holds.
pub(crate) type Producer<T> = MultiProducer<Arc<Queue<T>>>;

/// A [`Queue`] of `capacity` slots (rounded up to a power of two) with
/// room for `gates` consumer gates.
///
/// # Errors
///
/// If `capacity` is zero or too large for a ring (or `gates` too many).
pub(crate) fn queue<T>(capacity: usize, gates: usize) -> Result<Arc<Queue<T>>, CapacityError> {
    if capacity == 0 {
        return Err(CapacityError::NotPowerOfTwo(0));
    }
    let slots = capacity
        .checked_next_power_of_two()
        .ok_or(CapacityError::NotPowerOfTwo(capacity))?;
    Ok(Arc::new(Ring::with_wait(
        Heap::builder(slots).gates(gates).build()?,
        Parking::with_max_park(Duration::from_micros(200)),
    )))
}

/// Lanes one thread keeps cached, across all pools and batchers.
pub(crate) const CACHE_LANES: usize = 4;

/// A producer handle and its owner's submission count.
pub(crate) struct Lane<P> {
    pub(crate) producer: P,
    count: Arc<CachePadded<AtomicUsize>>,
    registry: Arc<Registry>,
}

impl<P> Lane<P> {
    /// Counts one submission. Only the lane's owner calls this.
    #[inline]
    pub(crate) fn count(&self) {
        // Plain load and store, no RMW: the owner is the only writer.
        // Release: pairs with `counted`'s Acquire (see `pool::state::Inner::is_idle`).
        let c = &self.count;
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
}

impl<P> Drop for Lane<P> {
    fn drop(&mut self) {
        // The counter keeps its count; the next lane made reuses it.
        lock(&self.registry.free).push(self.count.clone());
    }
}

struct Registry {
    /// Every counter made; summed by `counted`.
    all: Mutex<Vec<Arc<CachePadded<AtomicUsize>>>>,
    /// Counters of dropped lanes, for reuse.
    free: Mutex<Vec<Arc<CachePadded<AtomicUsize>>>>,
    /// Cleared when the owning structure is dropped: cached lanes of it
    /// are purged.
    alive: AtomicBool,
}

impl Registry {
    fn counter(&self) -> Arc<CachePadded<AtomicUsize>> {
        if let Some(c) = lock(&self.free).pop() {
            return c;
        }
        let c = Arc::new(CachePadded::new(AtomicUsize::new(0)));
        lock(&self.all).push(c.clone());
        c
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::blocking::MutexGuard<'_, T> {
    // Each critical section is one push, pop or read: poisoning leaves
    // the data consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One thread-cache entry: a lane of the structure with this id.
struct Entry {
    id: usize,
    registry: Arc<Registry>,
    lane: Box<dyn Any>,
}

cfg_not_loom! {
    thread::thread_local! {
        /// This thread's cached lanes, most recently added last.
        static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
        /// This thread's preferred fallback stripe.
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
}

// Loom's `thread_local!` takes no `const` initialisers.
cfg_loom! {
    thread::thread_local! {
        static CACHE: RefCell<Vec<Entry>> = RefCell::new(Vec::new());
        static STRIPE: Cell<usize> = Cell::new(usize::MAX);
    }
}

static NEXT_STRIPE: UntrackedAtomicUsize = UntrackedAtomicUsize::new(0);
static NEXT_ID: UntrackedAtomicUsize = UntrackedAtomicUsize::new(0);

/// A structure's lanes. See the [module docs](self).
pub(crate) struct Lanes<P> {
    /// Unique per structure (never reused), so a cache entry can never be
    /// mistaken for another structure's.
    id: usize,
    /// Cloned for each new lane (behind a lock: handles are not `Sync`).
    template: Mutex<P>,
    registry: Arc<Registry>,
    stripes: Box<[CachePadded<Mutex<Lane<P>>>]>,
}

impl<P> Drop for Lanes<P> {
    fn drop(&mut self) {
        // Relaxed: a hint for purging caches; no data hangs off it.
        self.registry.alive.store(false, Ordering::Relaxed);
    }
}

impl<P: Clone + Send + 'static> Lanes<P> {
    /// Lanes cloned from `p`, with two fallback stripes per core (at
    /// least four).
    pub(crate) fn new(p: P) -> Self {
        let registry = Arc::new(Registry {
            all: Mutex::new(Vec::new()),
            free: Mutex::new(Vec::new()),
            alive: AtomicBool::new(true),
        });
        // (Under loom one core: four stripes keep the models small.)
        let cores = if cfg!(latchfree_loom) {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let n = cores.max(2) * 2;
        let stripes = (0..n)
            .map(|_| {
                CachePadded::new(Mutex::new(Lane {
                    producer: p.clone(),
                    count: registry.counter(),
                    registry: registry.clone(),
                }))
            })
            .collect();
        Self {
            // Relaxed: a unique number, nothing ordered by it.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            template: Mutex::new(p),
            registry,
            stripes,
        }
    }

    fn new_lane(&self) -> Lane<P> {
        Lane {
            producer: lock(&self.template).clone(),
            count: self.registry.counter(),
            registry: self.registry.clone(),
        }
    }

    /// Runs `f` with exclusive use of a lane: this thread's own if it can,
    /// a fallback stripe otherwise.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Lane<P>) -> R) -> R {
        let mut f = Some(f);
        let cached = CACHE.try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let i = match c.iter().position(|e| e.id == self.id) {
                Some(i) => i,
                None => self.insert(&mut c),
            };
            let lane: *mut dyn Any = &mut *c[i].lane;
            // SAFETY: an entry with our id was made by `insert` on this
            // `Lanes<P>` (ids are never reused), so it holds a `Lane<P>`;
            // the cast skips `downcast_mut`'s type-id call on every submit.
            let lane = unsafe { &mut *lane.cast::<Lane<P>>() };
            f.take().map(|f| f(lane))
        });
        match cached {
            Ok(Some(r)) => r,
            _ => self.with_stripe(f.take().expect("not run from the cache")),
        }
    }

    #[cold]
    fn insert(&self, c: &mut Vec<Entry>) -> usize {
        // Relaxed: see `Registry::alive`.
        c.retain(|e| e.registry.alive.load(Ordering::Relaxed));
        if c.len() >= CACHE_LANES {
            c.remove(0);
        }
        c.push(Entry {
            id: self.id,
            registry: self.registry.clone(),
            lane: Box::new(self.new_lane()),
        });
        c.len() - 1
    }

    fn with_stripe<R>(&self, f: impl FnOnce(&mut Lane<P>) -> R) -> R {
        let n = self.stripes.len();
        let start = STRIPE
            .try_with(|s| {
                if s.get() == usize::MAX {
                    // Relaxed: spreads threads over stripes, nothing more.
                    s.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed));
                }
                s.get()
            })
            .unwrap_or(0)
            % n;
        for i in 0..n {
            match self.stripes[(start + i) % n].try_lock() {
                Ok(mut p) => return f(&mut p),
                // Poisoning: a publish panicked in the caller's closure; the
                // handle itself stays consistent (the ring skips the slot).
                Err(std::sync::TryLockError::Poisoned(e)) => return f(&mut e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        f(&mut lock(&self.stripes[start]))
    }

    /// Submissions counted in every lane so far. Each counter only grows;
    /// the sum is not a snapshot (see `pool::state::Inner::is_idle` for how it is
    /// used).
    pub(crate) fn counted(&self) -> usize {
        let all = lock(&self.registry.all);
        // Acquire: pairs with `Lane::count`'s Release.
        all.iter().map(|c| c.load(Ordering::Acquire)).sum()
    }
}

impl<T: Send + 'static> Lanes<Producer<T>> {
    /// Counts a submission in this thread's lane, then publishes `item`,
    /// waiting for room as long as it takes (`wait` is `None`), not at all
    /// (`Some(ZERO)`) or at most the given time. Returns the item's
    /// sequence in the queue.
    ///
    /// # Errors
    ///
    /// `Full(item)` if no room came in time; `Closed(item)` once the queue
    /// is closed (including while this call waited).
    #[inline]
    pub(crate) fn push(&self, item: T, wait: Option<Duration>) -> Result<u64, TryPushError<T>> {
        self.push_with(move || item, wait, || ()).map(|(seq, _)| seq)
    }

    /// [`push`](Self::push) of the item `make` builds, built in its slot
    /// once the slot is claimed (only on refusal is it built here, to hand
    /// back), and calling `claimed` between the claim and the write (so a
    /// consumer that sees the claim knows the item is coming: the pool's
    /// doorbell fences there). Returns the sequence and what `claimed`
    /// returned; `None` if the item went in by a retry after the queue was
    /// full (`claimed` was not called). Neither `make` nor `claimed` may
    /// panic: the submission is counted by then (the slot would be
    /// skipped, but the count would never be matched).
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push).
    #[inline]
    pub(crate) fn push_with<B>(
        &self,
        make: impl FnOnce() -> T,
        wait: Option<Duration>,
        claimed: impl FnOnce() -> B,
    ) -> Result<(u64, Option<B>), TryPushError<T>> {
        // The item is built straight into its slot inside the publish's
        // write; refused, `make` stays here, unrun (only the error's kind
        // comes back through the calls). A pool job is a cache line, and
        // each move of it through a layer cost a submit about 10
        // instructions.
        let mut make = Some(make);
        let mut seen = None;
        let r = self.with(|lane| {
            lane.count();
            let write = |s: &mut Slot<T>| {
                seen = Some(claimed());
                s.put(make.take().expect("the item is published once")());
            };
            let r = match wait {
                None => lane.producer.publish(write),
                Some(_) => lane.producer.try_publish(write),
            };
            r.map_err(|e| split(e).0)
        });
        let kind = match r {
            Ok(seq) => return Ok((seq, seen)),
            Err(kind) => kind,
        };
        let item = make.expect("a refused item was not built")();
        match (kind, wait) {
            (PublishError::Full(()), Some(d)) if !d.is_zero() => self
                .retry(Slot::new(item), d)
                .map(|seq| (seq, None))
                .map_err(refused),
            (kind, _) => Err(refused(rejoin(kind, Slot::new(item)))),
        }
    }

    /// One more non-waiting try for an item whose first push (counted)
    /// found the queue full; not counted again.
    ///
    /// # Errors
    ///
    /// `Full(item)` or `Closed(item)`.
    pub(crate) fn try_again(&self, item: T) -> Result<u64, TryPushError<T>> {
        self.with(|lane| lane.producer.try_push(Slot::new(item)))
            .map_err(refused)
    }

    /// Tries again (not counting again) until `d` has passed, napping
    /// between tries from 10 µs up to 1 ms: a timed wait for room has no
    /// one to wake it (the ring wakes only blocked `push`es).
    #[cold]
    fn retry(&self, mut slot: Slot<T>, d: Duration) -> Result<u64, PublishError<Slot<T>>> {
        let deadline = time::now() + d;
        let mut nap = Duration::from_micros(10);
        loop {
            let left = deadline.saturating_duration_since(time::now());
            if left.is_zero() {
                return Err(PublishError::Full(slot));
            }
            thread::park_timeout(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(1));
            match self.with(|lane| lane.producer.try_push(slot)) {
                Err(PublishError::Full(s)) => slot = s,
                other => return other,
            }
        }
    }
}

/// A refused publish taken apart: its kind and the item.
fn split<F>(e: PublishError<F>) -> (PublishError<()>, F) {
    match e {
        PublishError::Full(f) => (PublishError::Full(()), f),
        PublishError::Closed(f) => (PublishError::Closed(()), f),
        PublishError::Halted(f) => (PublishError::Halted(()), f),
        PublishError::Timeout(f) => (PublishError::Timeout(()), f),
        PublishError::TooLarge(f) => (PublishError::TooLarge(()), f),
    }
}

/// [`split`] undone.
fn rejoin<F>(kind: PublishError<()>, f: F) -> PublishError<F> {
    match kind {
        PublishError::Full(()) => PublishError::Full(f),
        PublishError::Closed(()) => PublishError::Closed(f),
        PublishError::Halted(()) => PublishError::Halted(f),
        PublishError::Timeout(()) => PublishError::Timeout(f),
        PublishError::TooLarge(()) => PublishError::TooLarge(f),
    }
}

/// A refused publish as the adapters report it, the item handed back.
fn refused<T>(e: PublishError<Slot<T>>) -> TryPushError<T> {
    match e {
        PublishError::Full(s) | PublishError::Timeout(s) => TryPushError::Full(s.into_item()),
        // `Halted` and `TooLarge` cannot happen to these queues (nobody
        // halts them; one slot at a time); either way nothing more will
        // be accepted.
        PublishError::Closed(s) | PublishError::Halted(s) | PublishError::TooLarge(s) => {
            TryPushError::Closed(s.into_item())
        }
    }
}
