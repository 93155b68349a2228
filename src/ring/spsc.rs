//! The ring's single-producer/single-consumer front: one producer, one
//! consumer, no dependency graph, an item moved in and out at a time.
//!
//! A [`Ring`](super::Ring) pays for what a graph may need: gates for many
//! consumers, a state word (close and halt, honoured at the next publish
//! and poll whoever calls them), batches handed out in place. When an
//! interrupt feeds one task, or one thread another, none of that is used.
//! [`Spsc`] is the same ring reduced to that case, in the layout of
//! Lamport's single-producer/single-consumer queue as rtrb and heapless
//! keep it, with each side caching the other's position:
//!
//! - `slots`, `N` cells of `MaybeUninit<T>` at offset 0 (`repr(C)`), so a
//!   slot's address is the queue's address plus its index, one instruction;
//! - `tail`, the producer's position: the count of items ever pushed,
//!   wrapping (written only by the producer, with Release, after the slot);
//! - `head`, the consumer's position: the count of items ever popped,
//!   wrapping (written only by the consumer, with Release, after it moved
//!   the item out of the slot);
//! - `producer_gone`, `consumer_gone`: set once, by a handle's `Drop`;
//! - `split`: set once, by [`Spsc::split`], the only read-modify-write.
//!
//! **Ranges.** `N` is a power of two no larger than `2^(usize::BITS - 1)`
//! (checked when the type is used). Positions are free-running `usize`
//! counters compared only by equality and by wrapping difference: between
//! any two reads `0 <= tail - head <= N` (wrapping), so the wrap of the
//! words every `2^usize::BITS` items is invisible; position `p` lives in
//! slot `p % N`, and `N` divides `2^usize::BITS`, so that holds across the
//! wrap too. CI runs the wrap tests on a 32-bit target.
//!
//! **Who touches what.** Slot `p % N` is written only by the producer while
//! `p - head < N` (the consumer has moved its previous occupant out) and
//! read only by the consumer while `p < tail` (the producer has written
//! it). Each handle keeps its own position in a register-friendly field
//! and a cached copy of the other's: the producer a *limit*
//! (`head + N` as it last read it), the consumer the tail it last read. A
//! cached copy only ever lags the real position, so a stale one refuses a
//! push or a pop that might have succeeded, never lets one through that
//! should not. The producer reloads `head` only when its limit is reached
//! (once per `N` pushes when the consumer keeps up); the consumer reloads
//! `tail` only when it has taken everything it last saw.
//!
//! **Closing.** Unlike [`Ring::close`](super::Ring::close), which any holder
//! of the ring may call and every publish and poll honours at once, a
//! `Spsc` is closed by its handles going away: dropping the producer (or
//! calling [`SpscProducer::close`]) tells the consumer that no item will
//! come after those already pushed; dropping the consumer tells the
//! producer that nothing will be taken any more. Each side looks at the
//! other's mark only when it cannot go on (the consumer when empty, the
//! producer when full), so neither fast path carries the test: a consumer
//! gets every item pushed before the producer left and then `Closed`; a
//! producer keeps filling the free slots of a queue whose consumer left and
//! gets `Closed` (its item back) once they run out.
//!
//! **Progress.** Both sides are wait-free: a `try_` call is a bounded
//! sequence of loads and stores. `push` and `pop` wait (spin, then yield under `std`) until they can go on
//! (see their docs for where that must never be called).
//!
//! **No read-modify-write on the way.** Pushing and popping are plain loads
//! and stores, so they need no compare-and-swap: this runs on Cortex-M0 and
//! riscv32imc natively. Only [`Spsc::split`] swaps a flag, once (with the
//! `portable-atomic` feature on those targets).

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::error::{Closed, TryPushError};
use crate::sync::{AtomicBool, AtomicUsize, Backoff, CachePadded, Ordering, UnsafeCell};

/// A single-producer/single-consumer queue of `N` slots (a power of two),
/// with no allocator and a `const` constructor: the ring without a
/// consumer graph, for one interrupt or thread feeding one other.
///
/// [`split`](Spsc::split) hands out its two handles, once. Every slot is
/// usable (a full queue holds `N` items). Pushing and popping are wait-free
/// loads and stores (no compare-and-swap: Cortex-M0 and riscv32imc run
/// them natively), with each side caching the other's position.
///
/// **Closing differs from [`Ring::close`](super::Ring::close)**, which any
/// holder of a ring may call and every publish and poll honours at once.
/// An `Spsc` is closed by its handles going away, and a side looks at the
/// other's departure only when it cannot go on, so neither fast path tests
/// it: after the producer is dropped (or [`SpscProducer::close`]d) the
/// consumer takes every item pushed before, then gets
/// [`TryPopError::Closed`]; after the consumer is dropped the producer
/// keeps filling the free slots, then gets [`TryPushError::Closed`] with
/// its item back. Items still queued drop with the queue.
///
/// An interrupt producer on a microcontroller: the queue is a `static`
/// (all zero bits, so it costs RAM in `.bss` and no flash), the producer is
/// moved into the interrupt's state once, and the interrupt only ever calls
/// `try_push`, which never waits.
///
/// ```
/// use latchfree::error::TryPushError;
/// use latchfree::ring::{Spsc, SpscProducer, TryPopError};
///
/// static SAMPLES: Spsc<u16, 8> = Spsc::new();
///
/// // What the interrupt owns. On a Cortex-M part this is the handler's
/// // state (`cortex_m::interrupt::Mutex<RefCell<Option<_>>>`, or a
/// // cortex-m-rt `static mut` handed over once); here, a plain local.
/// struct Adc {
///     samples: SpscProducer<'static, u16, 8>,
///     dropped: u32,
/// }
///
/// impl Adc {
///     // The interrupt handler: never waits, never panics. A full queue
///     // (the main loop fell behind) loses this sample and counts it.
///     fn on_interrupt(&mut self, sample: u16) {
///         if let Err(TryPushError::Full(_)) = self.samples.try_push(sample) {
///             self.dropped += 1;
///         }
///     }
/// }
///
/// let (producer, mut consumer) = SAMPLES.split().expect("split once");
/// let mut adc = Adc { samples: producer, dropped: 0 };
/// for sample in 0..10 {
///     adc.on_interrupt(sample);
/// }
/// assert_eq!(adc.dropped, 2); // 8 slots
///
/// // The main loop drains.
/// let mut got = Vec::new();
/// while let Ok(sample) = consumer.try_pop() {
///     got.push(sample);
/// }
/// assert_eq!(got, [0, 1, 2, 3, 4, 5, 6, 7]);
/// assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
///
/// // The producer leaves: the consumer sees `Closed` once it is empty.
/// drop(adc);
/// assert_eq!(consumer.try_pop(), Err(TryPopError::Closed));
/// assert!(SAMPLES.split().is_none());
/// ```
///
/// The blocking forms, [`SpscProducer::push`] and [`SpscConsumer::pop`],
/// wait (spin, then yield under `std`) until they can go on. Never call them where the other side cannot
/// run until they return: in an interrupt handler whose other side is the
/// code it interrupted (a full queue never drains, an empty one never
/// fills), or on one core without preemption.
#[repr(C)]
pub struct Spsc<T, const N: usize> {
    /// At offset 0: a slot's address is the queue's plus its index.
    slots: [UnsafeCell<MaybeUninit<T>>; N],
    /// Items ever pushed, wrapping; written by the producer only. On a
    /// line of its own where cores share caches (a word elsewhere: see
    /// `sync::CachePadded`), so the producer's store per push does not
    /// take the line the consumer's store per pop writes.
    tail: CachePadded<AtomicUsize>,
    /// Items ever popped, wrapping; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// The producer handle was dropped; set once.
    producer_gone: AtomicBool,
    /// The consumer handle was dropped; set once.
    consumer_gone: AtomicBool,
    /// The handles were handed out; set once.
    split: AtomicBool,
}

// SAFETY: the queue hands its items from one thread (the producer's) to
// another (the consumer's), so `T: Send` is what it needs; a slot is
// accessed by one handle at a time (module docs, "Who touches what"), and
// everything else is atomics.
unsafe impl<T: Send, const N: usize> Sync for Spsc<T, N> {}

impl<T, const N: usize> Spsc<T, N> {
    /// Refuses, at compile time, a capacity that is not a power of two or
    /// that positions could not tell apart from empty.
    const CAPACITY_OK: () = assert!(
        N.is_power_of_two() && N <= 1 << (usize::BITS - 1),
        "Spsc capacity must be a power of two (and at most 2^(usize::BITS-1))"
    );

    const_fn_unless_loom! {
        /// An empty queue (all zero bits: a `static` one lives in `.bss`).
        /// `N` must be a power of two; any other is a compile error.
        ///
        /// ```
        /// use latchfree::ring::Spsc;
        ///
        /// static QUEUE: Spsc<u32, 16> = Spsc::new();
        /// assert_eq!(QUEUE.capacity(), 16);
        /// ```
        ///
        /// ```compile_fail
        /// use latchfree::ring::Spsc;
        ///
        /// static QUEUE: Spsc<u32, 10> = Spsc::new(); // not a power of two
        /// ```
        pub fn new() -> Self {
            Self::starting_at(0)
        }
    }

    const_fn_unless_loom! {
        /// An empty queue whose positions start at `position` instead of 0,
        /// so tests reach the wrap of the position words without pushing
        /// `2^usize::BITS` items.
        #[doc(hidden)]
        pub fn starting_at(position: usize) -> Self {
            #[allow(clippy::let_unit_value)]
            let () = Self::CAPACITY_OK;
            Self {
                slots: Self::empty_slots(),
                tail: CachePadded::new(AtomicUsize::new(position)),
                head: CachePadded::new(AtomicUsize::new(position)),
                producer_gone: AtomicBool::new(false),
                consumer_gone: AtomicBool::new(false),
                split: AtomicBool::new(false),
            }
        }
    }

    #[cfg(not(latchfree_loom))]
    const fn empty_slots() -> [UnsafeCell<MaybeUninit<T>>; N] {
        [const { UnsafeCell::new(MaybeUninit::uninit()) }; N]
    }

    #[cfg(latchfree_loom)]
    fn empty_slots() -> [UnsafeCell<MaybeUninit<T>>; N] {
        core::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// The number of slots, `N`: a full queue holds `N` items.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The producer and consumer handles, or `None` if they were handed out
    /// before (a queue is split once; its handles cannot be put back).
    ///
    /// This is the queue's one read-modify-write (a swap of a flag): on a
    /// target without compare-and-swap it needs the `portable-atomic`
    /// feature, as the rest of the crate's core does.
    ///
    /// ```
    /// use latchfree::ring::Spsc;
    ///
    /// let queue: Spsc<u8, 4> = Spsc::new();
    /// let (mut producer, mut consumer) = queue.split().unwrap();
    /// assert!(queue.split().is_none());
    /// producer.try_push(7).unwrap();
    /// assert_eq!(consumer.try_pop(), Ok(7));
    /// ```
    pub fn split(&self) -> Option<(SpscProducer<'_, T, N>, SpscConsumer<'_, T, N>)> {
        // Relaxed: only the flag's own value matters (one caller wins);
        // the handles reach other threads by being moved there, which
        // orders everything they carry.
        if self.split.swap(true, Ordering::Relaxed) {
            return None;
        }
        // The positions are equal and nobody else moves them yet.
        let start = self.tail.load(Ordering::Relaxed);
        Some((
            SpscProducer {
                queue: self,
                tail: start,
                limit: start.wrapping_add(N),
                _not_sync: PhantomData,
            },
            SpscConsumer {
                queue: self,
                head: start,
                seen: start,
                _not_sync: PhantomData,
            },
        ))
    }

    /// Items in the queue now (stale as soon as it returns when the handles
    /// are in use).
    pub fn len(&self) -> usize {
        // Head first: the tail read after it is at least as new, so the
        // difference never underflows even as both move.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(N)
    }

    /// Whether the queue holds no item now (stale under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot position `position` lives in.
    #[inline(always)]
    fn slot(&self, position: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // `N - 1` is the mask of a power of two: in bounds, and the
        // compiler sees it (no panicking branch on the hot paths).
        &self.slots[position & (N - 1)]
    }
}

impl<T, const N: usize> Default for Spsc<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for Spsc<T, N> {
    fn drop(&mut self) {
        // `&mut self`: the handles are gone and every store they made
        // happened before this (whoever sent the queue here synchronised).
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        drop_items(self, head, tail);
    }
}

/// Drops the items at positions `position..tail` in order. An item whose
/// `Drop` panics does not leak the ones after it: a guard made before each
/// drop goes on with the rest while the panic unwinds (a second panic
/// aborts, as in `Vec`).
fn drop_items<T, const N: usize>(queue: &Spsc<T, N>, mut position: usize, tail: usize) {
    /// The items still to drop if the current one's `Drop` panics.
    struct Rest<'q, T, const N: usize> {
        queue: &'q Spsc<T, N>,
        position: usize,
        tail: usize,
    }
    impl<T, const N: usize> Drop for Rest<'_, T, N> {
        fn drop(&mut self) {
            drop_items(self.queue, self.position, self.tail);
        }
    }
    while position != tail {
        let current = position;
        position = position.wrapping_add(1);
        let rest = Rest {
            queue,
            position,
            tail,
        };
        // SAFETY: positions `head..tail` hold items pushed and not popped:
        // initialised, and nobody else can reach them (`Spsc::drop` has the
        // queue by `&mut`); each is dropped once, `current` before the
        // guard that covers only the positions after it.
        queue
            .slot(current)
            .with_mut(|slot| unsafe { (*slot).assume_init_drop() });
        core::mem::forget(rest);
    }
}

impl<T, const N: usize> fmt::Debug for Spsc<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spsc")
            .field("capacity", &N)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Why [`SpscConsumer::try_pop`] returned no item.
///
/// ```
/// use latchfree::ring::{Spsc, TryPopError};
///
/// let queue: Spsc<u8, 2> = Spsc::new();
/// let (producer, mut consumer) = queue.split().unwrap();
/// assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
/// drop(producer);
/// assert_eq!(consumer.try_pop(), Err(TryPopError::Closed));
/// assert_eq!(TryPopError::Closed.to_string(), "closed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryPopError {
    /// No item now; the producer may push more.
    Empty,
    /// No item, and none will come: the producer is gone.
    Closed,
}

impl fmt::Display for TryPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty",
            Self::Closed => "closed",
        })
    }
}

impl core::error::Error for TryPopError {}

/// The pushing side of an [`Spsc`]. `Send` (it may move into an interrupt
/// or another thread), not `Sync`: one owner pushes. Dropping it closes the
/// queue for the consumer (after the items already pushed).
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<latchfree::ring::SpscProducer<'static, u32, 4>>();
/// ```
pub struct SpscProducer<'a, T, const N: usize> {
    queue: &'a Spsc<T, N>,
    /// This handle's position: the next item goes to slot `tail % N`.
    tail: usize,
    /// `head + N` as last read: pushes may go on while `tail != limit`.
    limit: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T, const N: usize> SpscProducer<'_, T, N> {
    /// Adds `item`, or hands it back: `Full` if all `N` slots hold items,
    /// `Closed` if they do and the consumer is gone. Never waits: loads and
    /// stores only, so it may run in an interrupt.
    ///
    /// A queue whose consumer left still accepts items into its free slots
    /// (the consumer's departure is looked at only when the queue is full).
    ///
    /// ```
    /// use latchfree::error::TryPushError;
    /// use latchfree::ring::Spsc;
    ///
    /// let queue: Spsc<&str, 1> = Spsc::new();
    /// let (mut producer, consumer) = queue.split().unwrap();
    /// producer.try_push("a").unwrap();
    /// assert_eq!(producer.try_push("b"), Err(TryPushError::Full("b")));
    /// drop(consumer);
    /// assert_eq!(producer.try_push("c"), Err(TryPushError::Closed("c")));
    /// ```
    #[inline]
    pub fn try_push(&mut self, item: T) -> Result<(), TryPushError<T>> {
        if self.tail == self.limit {
            match room(self.queue, self.tail) {
                Room::Until(limit) => self.limit = limit,
                Room::Full => return Err(TryPushError::Full(item)),
                Room::Closed => return Err(TryPushError::Closed(item)),
            }
        }
        let tail = self.tail;
        // SAFETY: `tail - head < N` (the limit says so): the consumer moved
        // the slot's previous occupant out (its Release store of `head`,
        // read with Acquire in `room`, ordered that before this write), and
        // it reads the slot only once the store of `tail + 1` below
        // publishes it. Writing over a moved-out (logically uninitialised)
        // slot drops nothing.
        self.queue
            .slot(tail)
            .with_mut(|slot| unsafe { (*slot).write(item) });
        self.tail = tail.wrapping_add(1);
        // Release: the consumer's Acquire load of `tail` sees the slot
        // written.
        self.queue.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Adds `item`, waiting while the queue is full; hands it back if the
    /// consumer is gone and the queue is full. It waits with the crate's
    /// backoff: spins that grow, then (with the `std` feature) yields of
    /// the thread, so a consumer on the same core gets to run.
    ///
    /// Never call it where the consumer cannot run until it returns (an
    /// interrupt handler whose consumer is the code it interrupted, one
    /// core without preemption): a full queue would spin forever. Use
    /// [`try_push`](Self::try_push) there.
    pub fn push(&mut self, mut item: T) -> Result<(), Closed<T>> {
        let backoff = Backoff::new();
        loop {
            match self.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Full(back)) => {
                    item = back;
                    backoff.snooze();
                }
                Err(TryPushError::Closed(back)) => return Err(Closed(back)),
            }
        }
    }

    /// Closes the queue from this side: the same as dropping the handle.
    /// The consumer takes the items already pushed, then gets `Closed`.
    pub fn close(self) {}

    /// Whether the consumer is gone (it takes nothing more).
    pub fn is_closed(&self) -> bool {
        self.queue.consumer_gone.load(Ordering::Relaxed)
    }

    /// Items in the queue now (stale as soon as it returns).
    pub fn len(&self) -> usize {
        let head = self.queue.head.load(Ordering::Acquire);
        self.tail.wrapping_sub(head)
    }

    /// Whether the queue holds no item now (stale as soon as it returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether all `N` slots hold items now (stale as soon as it returns).
    pub fn is_full(&self) -> bool {
        self.len() == N
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

/// What the producer's slow path found.
enum Room {
    /// Room up to this limit (`head + N`, past `tail`).
    Until(usize),
    /// All `N` slots hold items; the consumer is there.
    Full,
    /// All `N` slots hold items and the consumer is gone.
    Closed,
}

/// The producer's slow path, on plain values: reloads `head`. Inlined: a
/// call would cost more flash (the caller re-materialising what the call
/// clobbered) than the few instructions it holds, and the branch to it is
/// taken once per `N` pushes when the consumer keeps up.
#[inline(always)]
fn room<T, const N: usize>(queue: &Spsc<T, N>, tail: usize) -> Room {
    // Acquire: pairs with the consumer's Release store of `head`, so its
    // moves out of the slots below `head` happen before the writes this
    // makes room for.
    let limit = queue.head.load(Ordering::Acquire).wrapping_add(N);
    if limit != tail {
        return Room::Until(limit);
    }
    // Relaxed: only the answer depends on it, no data.
    if queue.consumer_gone.load(Ordering::Relaxed) {
        Room::Closed
    } else {
        Room::Full
    }
}

impl<T, const N: usize> Drop for SpscProducer<'_, T, N> {
    fn drop(&mut self) {
        // Release: after every store of `tail`, so a consumer that reads
        // the mark with Acquire, then `tail`, sees the last item.
        self.queue.producer_gone.store(true, Ordering::Release);
    }
}

impl<T, const N: usize> fmt::Debug for SpscProducer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscProducer")
            .field("capacity", &N)
            .field("position", &self.tail)
            .finish_non_exhaustive()
    }
}

/// The popping side of an [`Spsc`]. `Send`, not `Sync`: one owner pops.
/// Dropping it tells the producer that nothing will be taken any more (the
/// producer sees it once the queue is full); items left in the queue drop
/// with the queue.
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<latchfree::ring::SpscConsumer<'static, u32, 4>>();
/// ```
pub struct SpscConsumer<'a, T, const N: usize> {
    queue: &'a Spsc<T, N>,
    /// This handle's position: the next item is in slot `head % N`.
    head: usize,
    /// `tail` as last read: pops may go on while `head != seen` (see
    /// [`CACHE_TAIL`] for where the consumer trusts it).
    seen: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T, const N: usize> SpscConsumer<'_, T, N> {
    /// Takes the oldest item: `Empty` if there is none, `Closed` if there
    /// is none and the producer is gone (every item it pushed was taken).
    /// Never waits: loads and stores only, so it may run in an interrupt.
    ///
    /// ```
    /// use latchfree::ring::{Spsc, TryPopError};
    ///
    /// let queue: Spsc<u32, 4> = Spsc::new();
    /// let (mut producer, mut consumer) = queue.split().unwrap();
    /// producer.try_push(1).unwrap();
    /// producer.try_push(2).unwrap();
    /// producer.close();
    /// assert_eq!(consumer.try_pop(), Ok(1));
    /// assert_eq!(consumer.try_pop(), Ok(2));
    /// assert_eq!(consumer.try_pop(), Err(TryPopError::Closed));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        if !(CACHE_TAIL && self.head != self.seen) {
            // Inline: a consumer that keeps up takes this on every pop.
            // Acquire: pairs with the producer's Release store of `tail`,
            // so the slots below it are written before they are read.
            self.seen = self.queue.tail.load(Ordering::Acquire);
            if self.head == self.seen {
                match refill(self.queue, self.head) {
                    Ok(seen) => self.seen = seen,
                    Err(e) => return Err(e),
                }
            }
        }
        let head = self.head;
        // SAFETY: `head < seen <= tail`: the producer wrote the slot before
        // its Release store of a `tail` past `head`, read above with
        // Acquire, and writes it again only after the store of `head + 1`
        // below says it was moved out. Reading moves the item out; the slot
        // is logically uninitialised from here on.
        let item = self
            .queue
            .slot(head)
            .with(|slot| unsafe { (*slot).assume_init_read() });
        self.head = head.wrapping_add(1);
        // Release: the producer's Acquire load of `head` orders this read
        // before its next write of the slot.
        self.queue.head.store(self.head, Ordering::Release);
        Ok(item)
    }

    /// Takes the oldest item, waiting while the queue is empty (with the
    /// crate's backoff, as [`SpscProducer::push`] does); `None` once it is
    /// empty and the producer is gone.
    ///
    /// Never call it where the producer cannot run until it returns (an
    /// interrupt handler whose producer is the code it interrupted, one
    /// core without preemption): an empty queue would spin forever. Use
    /// [`try_pop`](Self::try_pop) there.
    pub fn pop(&mut self) -> Option<T> {
        let backoff = Backoff::new();
        loop {
            match self.try_pop() {
                Ok(item) => return Some(item),
                Err(TryPopError::Empty) => backoff.snooze(),
                Err(TryPopError::Closed) => return None,
            }
        }
    }

    /// Whether the producer is gone (items it pushed may still be queued).
    pub fn is_closed(&self) -> bool {
        self.queue.producer_gone.load(Ordering::Relaxed)
    }

    /// Items in the queue now (stale as soon as it returns).
    pub fn len(&self) -> usize {
        let tail = self.queue.tail.load(Ordering::Acquire);
        tail.wrapping_sub(self.head)
    }

    /// Whether the queue holds no item now (stale as soon as it returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

/// Whether the consumer trusts its cached `tail` (`seen`) while it is ahead
/// of `head`. Where cores share a data cache it spares the consumer the
/// line the producer writes on every push until it has taken all it saw
/// (rtrb's and rigtorp's cached index). On bare-metal ARM there is no such
/// line (Cortex-M0 to M4 have no data cache, an M7's is its core's own):
/// loading `tail` costs one load, and the test of the cache would cost
/// two instructions on every pop of a consumer that keeps up, so there the
/// consumer reads `tail` whenever it pops. Either way `seen` only ever lags
/// `tail`, so both are the same protocol.
const CACHE_TAIL: bool = !cfg!(all(target_arch = "arm", target_os = "none"));

/// The consumer's slow path: the queue looked empty at `head`. Tells empty
/// from closed, or finds the items pushed meanwhile. Inlined, as [`room`].
#[inline(always)]
fn refill<T, const N: usize>(queue: &Spsc<T, N>, head: usize) -> Result<usize, TryPopError> {
    // The mark first, then `tail`: the producer stores the mark after its
    // last `tail` (Release), so with the mark seen (Acquire) the `tail`
    // read after it is the final one; with the order reversed an item
    // pushed between the two reads would be reported closed and lost.
    let gone = queue.producer_gone.load(Ordering::Acquire);
    let tail = queue.tail.load(Ordering::Acquire);
    if tail != head {
        Ok(tail)
    } else if gone {
        Err(TryPopError::Closed)
    } else {
        Err(TryPopError::Empty)
    }
}

impl<T, const N: usize> Drop for SpscConsumer<'_, T, N> {
    fn drop(&mut self) {
        // Relaxed: the producer only reports it, and the items left stay
        // in the queue (dropped with it), so nothing is ordered by it.
        self.queue.consumer_gone.store(true, Ordering::Relaxed);
    }
}

impl<T, const N: usize> fmt::Debug for SpscConsumer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscConsumer")
            .field("capacity", &N)
            .field("position", &self.head)
            .finish_non_exhaustive()
    }
}

#[cfg(not(latchfree_loom))]
const _: () = {
    const fn send<T: Send>() {}
    send::<SpscProducer<'static, u32, 4>>();
    send::<SpscConsumer<'static, u32, 4>>();
    // Not `Sync`: the `compile_fail` examples on the handle types.
};

#[cfg(all(test, feature = "std"))]
#[allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
mod tests {
    extern crate std;

    use super::*;
    use std::sync::atomic::{AtomicUsize as Count, Ordering::Relaxed};
    use std::vec::Vec;

    #[test]
    fn fifo_holds_n_items_and_gives_them_back_in_order() {
        let queue: Spsc<u32, 4> = Spsc::new();
        let (mut p, mut c) = queue.split().unwrap();
        assert!(queue.split().is_none());
        for round in 0..3u32 {
            for i in 0..4 {
                p.try_push(round * 10 + i).unwrap();
            }
            assert!(p.is_full());
            assert_eq!(p.try_push(99), Err(TryPushError::Full(99)));
            assert_eq!(c.len(), 4);
            for i in 0..4 {
                assert_eq!(c.try_pop(), Ok(round * 10 + i));
            }
            assert_eq!(c.try_pop(), Err(TryPopError::Empty));
            assert!(c.is_empty() && p.is_empty() && queue.is_empty());
        }
    }

    #[test]
    fn ring_spsc_positions_wrap() {
        // Positions start 3 short of the wrap of `usize` (2^32 on i686,
        // where CI runs this too): every fill level crosses it.
        for skew in 0..8 {
            let queue: Spsc<usize, 4> = Spsc::starting_at((usize::MAX - 3).wrapping_add(skew));
            let (mut p, mut c) = queue.split().unwrap();
            let mut next_in = 0;
            let mut next_out = 0;
            for step in 0..64 {
                let burst = step % 5;
                for _ in 0..burst {
                    match p.try_push(next_in) {
                        Ok(()) => next_in += 1,
                        Err(e) => {
                            assert!(e.is_full());
                            assert_eq!(next_in - next_out, 4);
                        }
                    }
                }
                assert_eq!(c.len(), next_in - next_out);
                for _ in 0..(step % 3) {
                    match c.try_pop() {
                        Ok(v) => {
                            assert_eq!(v, next_out);
                            next_out += 1;
                        }
                        Err(e) => {
                            assert_eq!(e, TryPopError::Empty);
                            assert_eq!(next_in, next_out);
                        }
                    }
                }
            }
            assert!(next_out > 16);
        }
    }

    #[test]
    fn ring_spsc_close_by_either_handle() {
        let queue: Spsc<u8, 2> = Spsc::new();
        let (mut p, mut c) = queue.split().unwrap();
        p.try_push(1).unwrap();
        p.close();
        assert!(c.is_closed());
        assert_eq!(c.try_pop(), Ok(1));
        assert_eq!(c.try_pop(), Err(TryPopError::Closed));
        assert_eq!(c.pop(), None);

        let queue: Spsc<u8, 2> = Spsc::new();
        let (mut p, c) = queue.split().unwrap();
        drop(c);
        assert!(p.is_closed());
        // Free slots still take items; a full queue says closed.
        p.try_push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(p.try_push(3), Err(TryPushError::Closed(3)));
        assert_eq!(p.push(4), Err(Closed(4)));
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn ring_spsc_drops_each_item_once() {
        static DROPS: Count = Count::new(0);
        struct D;
        impl Drop for D {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Relaxed);
            }
        }
        {
            let queue: Spsc<D, 4> = Spsc::starting_at(usize::MAX - 1);
            let (mut p, mut c) = queue.split().unwrap();
            for _ in 0..4 {
                assert!(p.try_push(D).is_ok());
            }
            // Refused: handed back, dropped here by the caller.
            drop(p.try_push(D));
            assert_eq!(DROPS.load(Relaxed), 1);
            drop(c.try_pop());
            assert_eq!(DROPS.load(Relaxed), 2);
            drop((p, c));
            // Three still queued.
            assert_eq!(DROPS.load(Relaxed), 2);
        }
        assert_eq!(DROPS.load(Relaxed), 5);
    }

    #[test]
    fn ring_spsc_positions_sit_on_lines_of_their_own() {
        // Hosted targets share caches between cores: the producer's and the
        // consumer's position must not share a line (or its prefetch pair).
        let tail = core::mem::offset_of!(Spsc<u64, 8>, tail);
        let head = core::mem::offset_of!(Spsc<u64, 8>, head);
        let line = core::mem::align_of::<CachePadded<AtomicUsize>>();
        assert!(line >= 32, "hosted targets pad to a line, not a word");
        assert!(
            head.abs_diff(tail) >= line,
            "tail at {tail}, head at {head}"
        );
        assert!(tail >= 8 * 8, "the slots come first");
    }

    #[test]
    fn ring_spsc_drop_goes_on_after_a_panicking_item() {
        static DROPS: Count = Count::new(0);
        struct D(usize);
        impl Drop for D {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Relaxed);
                if self.0 == 1 {
                    panic!("item 1 refuses to drop");
                }
            }
        }
        // Across the wrap of the positions, the panicking item in the middle.
        let queue: Spsc<D, 4> = Spsc::starting_at(usize::MAX - 1);
        {
            let (mut p, _c) = queue.split().unwrap();
            for i in 0..4 {
                assert!(p.try_push(D(i)).is_ok());
            }
        }
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(queue)));
        assert!(dropped.is_err(), "the item's panic reaches the caller");
        // Items 0..4 each dropped once: the two after the panicking one too.
        assert_eq!(DROPS.load(Relaxed), 4);
    }

    #[test]
    fn ring_spsc_threads_hand_over_every_item_in_order() {
        const ITEMS: usize = if cfg!(miri) { 200 } else { 200_000 };
        let queue: Spsc<usize, 8> = Spsc::starting_at(usize::MAX - 100);
        let (mut p, mut c) = queue.split().unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..ITEMS {
                    if i % 3 == 0 {
                        p.push(i).unwrap();
                    } else {
                        let mut item = i;
                        while let Err(e) = p.try_push(item) {
                            item = e.into_inner();
                            std::thread::yield_now();
                        }
                    }
                }
            });
            let mut got = Vec::with_capacity(ITEMS);
            while let Some(v) = c.pop() {
                got.push(v);
                if got.len() % 1000 == 0 {
                    std::thread::yield_now();
                }
            }
            assert_eq!(got.len(), ITEMS);
            assert!(got.iter().enumerate().all(|(i, &v)| i == v));
        });
    }

    #[test]
    fn ring_spsc_debug_needs_no_debug_items() {
        struct Opaque;
        let queue: Spsc<Opaque, 2> = Spsc::default();
        let (p, c) = queue.split().unwrap();
        assert!(std::format!("{queue:?} {p:?} {c:?}").contains("capacity: 2"));
    }
}
