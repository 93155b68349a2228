//! An asynchronous batcher (`std` only): producers push items, flusher
//! threads hand them to a handler in batches.
//!
//! # Design
//!
//! Items go into a multi-producer [`Ring`] of take-once slots. With one
//! flusher the ring's only consumer is a plain [`Consumer`] (batches keep
//! push order); with `N` flushers it is a work group (each item in exactly
//! one batch, order across batches not kept). A flusher moves items out of
//! their slots into its batch `Vec` (reused from batch to batch), and ships
//! the batch to the handler when it holds `max_items`, when the next item
//! would take it past `max_bytes`, when `max_delay` has passed since its
//! first item (zero: as soon as nothing more is waiting: natural batching),
//! on [`Batcher::flush`] and on close. The handler never sees an empty
//! batch.
//!
//! A batch the handler rejects (`Err`) or panics on goes to the error
//! callback with its items. No item is dropped silently: every accepted item
//! reaches the handler (and, if it failed, the error callback), except one
//! the weigher panicked on, which goes to the error callback alone.
//!
//! # Panics in user code
//!
//! Any user code the flushers run may panic: the handler, the error
//! callback, the weigher, an item's `Drop` (when a shipped batch is
//! cleared), a panic payload's `Drop`, and the handler's own `Drop` when
//! the flusher exits. Every such call is made where its panic is caught: the
//! flusher carries on, every accepted item is handed to the handler or
//! reported to the error callback exactly once, `flush` and `close` return,
//! and later pushes are delivered. A panic in the handler or the weigher
//! reaches the error callback ([`BatchError::Panicked`],
//! [`BatchError::Unweighed`]); one in the error callback or in a `Drop` has
//! nowhere to go and is discarded.
//!
//! # Waking, flush and close
//!
//! The hand-off between producers, [`Batcher::flush`], [`Batcher::close`]
//! and the flushers (a flush target and epoch with acknowledgements, a
//! per-flusher sleeping flag with fences) lives in the
//! private `handoff` module, together with the flusher loop, so the loom
//! models in `loom-tests/tests/batch.rs` check that very code. In short: an
//! idle flusher announces that it sleeps, fences and polls once more before
//! it parks, and a producer fences after publishing and wakes a sleeper it
//! sees; `flush` reads the queue's claim position as its target and bumps
//! an epoch, and each flusher drains until the target is reached, ships
//! and acknowledges. A flush never waits for a push: producers blocked on
//! a full queue have claimed nothing, and the flushers keep draining.

// Public through `crate::__loom`, for the models; its docs point here.
#[allow(rustdoc::private_intra_doc_links)]
pub(crate) mod handoff;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;
use std::thread;

pub use self::handoff::FlushCause;
use self::handoff::{Flush, Handoff};

use crate::pool::stripes::Lanes;
use crate::pool::Payload;
use crate::ring::{
    Consumer, Heap, Multi, MultiProducer, Parking, Poll, PublishError, Ring, Worker,
};
use crate::sync::blocking::Mutex;
use crate::sync::time::{now, Instant};
use crate::sync::{Arc, AtomicUsize, HandleArc, Ordering, UnsafeCell};

/// A take-once slot (see `pool::Slot`): written by the producer that
/// claimed it, taken by the one flusher that consumes its sequence.
struct Slot<T>(UnsafeCell<Option<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(UnsafeCell::new(None))
    }
}

// SAFETY: the ring's only consumer node is one consumer or one work group,
// so a published slot is accessed by exactly one flusher after the producer
// that wrote it (ordered by the ring's stamp Release/Acquire), and not
// rewritten until that flusher released it. Items are `Send`.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// # Safety
    ///
    /// Only the flusher consuming this slot's sequence, inside its poll.
    unsafe fn take(&self) -> Option<T> {
        // SAFETY: by the caller's contract nobody else touches the slot.
        self.0.with_mut(|p| unsafe { (*p).take() })
    }

    fn into_item(self) -> T {
        self.0
            .into_inner()
            .expect("a slot handed back unpublished holds its item")
    }
}

type Queue<T> = Ring<Heap<Slot<T>>, Multi, Parking>;
type Producer<T> = MultiProducer<Arc<Queue<T>>>;

/// Why a push was refused; the item comes back.
///
/// ```
/// use latchfree::batch::{Batcher, PushError};
///
/// let b = Batcher::builder::<()>().build(|_: &mut Vec<u32>| Ok(()));
/// b.close();
/// assert!(matches!(b.try_push(1), Err(PushError::Closed(1))));
/// ```
pub enum PushError<T> {
    /// The queue is full (`try_push`, or `push_timeout` after its wait).
    Full(T),
    /// The batcher is closed.
    Closed(T),
}

impl<T> PushError<T> {
    /// The refused item.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Closed(t) => t,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the batcher's queue is full"),
            Self::Closed(_) => f.write_str("the batcher is closed"),
        }
    }
}

impl<T> core::error::Error for PushError<T> {}

/// Why a batch reached the error callback.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use latchfree::batch::{BatchError, Batcher};
///
/// let failed = Arc::new(Mutex::new(Vec::new()));
/// let f = failed.clone();
/// let b = Batcher::builder()
///     .max_items(2)
///     .on_error(move |e: BatchError<&str>, items: &mut Vec<u32>| {
///         if let BatchError::Failed(why) = e {
///             f.lock().unwrap().push((why, items.clone()));
///         }
///     })
///     .build(|_: &mut Vec<u32>| Err("disk full"));
/// b.push(1).unwrap();
/// b.push(2).unwrap();
/// b.close();
/// assert_eq!(*failed.lock().unwrap(), [("disk full", vec![1, 2])]);
/// ```
pub enum BatchError<E> {
    /// The handler returned this error.
    Failed(E),
    /// The handler panicked with this payload.
    Panicked(Payload),
    /// The weigher panicked with this payload on the one item in the
    /// batch; the handler never saw that item.
    Unweighed(Payload),
}

impl<E: fmt::Debug> fmt::Debug for BatchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            Self::Panicked(_) => f.write_str("Panicked(..)"),
            Self::Unweighed(_) => f.write_str("Unweighed(..)"),
        }
    }
}

/// A point-in-time view of the batcher's counters; stale under concurrency.
///
/// ```
/// use std::time::Duration;
/// use latchfree::batch::Batcher;
///
/// let b = Batcher::builder::<()>()
///     .max_items(10)
///     .max_delay(Duration::from_secs(60))
///     .build(|_: &mut Vec<u32>| Ok(()));
/// for i in 0..25 {
///     b.push(i).unwrap();
/// }
/// b.flush(); // ships the 5 left over
/// let m = b.metrics();
/// assert_eq!((m.accepted, m.delivered, m.by_items, m.by_manual), (25, 25, 2, 1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Items accepted.
    pub accepted: usize,
    /// Pushes refused (full or closed).
    pub rejected: usize,
    /// Items handed to the handler. Once the batcher is closed,
    /// `accepted == delivered + unweighed`.
    pub delivered: usize,
    /// Batches handed to the handler.
    pub batches: usize,
    /// Batches that failed (error or panic) and went to the error callback.
    pub failed: usize,
    /// Of which panicked (the handler, or the weigher on an item).
    pub panicked: usize,
    /// Items the weigher panicked on: each went to the error callback alone
    /// ([`BatchError::Unweighed`]) instead of to the handler.
    pub unweighed: usize,
    /// Batches shipped full of items.
    pub by_items: usize,
    /// Batches shipped at the byte limit.
    pub by_bytes: usize,
    /// Batches shipped by time (or natural batching).
    pub by_time: usize,
    /// Batches shipped by `flush`.
    pub by_manual: usize,
    /// Batches shipped by close.
    pub by_close: usize,
}

#[derive(Default)]
struct Counters {
    rejected: AtomicUsize,
    delivered: AtomicUsize,
    batches: AtomicUsize,
    failed: AtomicUsize,
    panicked: AtomicUsize,
    unweighed: AtomicUsize,
    causes: [AtomicUsize; 5],
}

type Weigher<T> = HandleArc<dyn Fn(&T) -> usize + Send + Sync>;
type OnError<T, E> = HandleArc<dyn Fn(BatchError<E>, &mut Vec<T>) + Send + Sync>;

/// Configures and starts a [`Batcher`].
///
/// ```
/// use std::time::Duration;
/// use latchfree::batch::Batcher;
///
/// let b = Batcher::builder::<std::io::Error>()
///     .max_items(512)
///     .max_bytes(64 * 1024, |line: &String| line.len())
///     .max_delay(Duration::from_millis(5))
///     .queue_capacity(4096)
///     .thread_name("log-writer")
///     .build(|lines: &mut Vec<String>| {
///         // Write `lines` somewhere; an `Err` goes to the error callback.
///         assert!(!lines.is_empty());
///         Ok(())
///     });
/// b.push("hello".to_string()).unwrap();
/// b.close();
/// ```
pub struct Builder<T, E> {
    max_items: usize,
    max_bytes: usize,
    weigher: Option<Weigher<T>>,
    max_delay: Duration,
    capacity: usize,
    flushers: usize,
    name: String,
    on_error: Option<OnError<T, E>>,
}

impl<T, E> fmt::Debug for Builder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_items", &self.max_items)
            .field("max_bytes", &self.max_bytes)
            .field("max_delay", &self.max_delay)
            .field("capacity", &self.capacity)
            .field("flushers", &self.flushers)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, E: 'static> Default for Builder<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static, E: 'static> Builder<T, E> {
    /// Defaults: 64 items, no byte limit, 1 ms delay, 1024 queued items,
    /// one flusher, errors and panics of batches printed to stderr.
    pub fn new() -> Self {
        Self {
            max_items: 64,
            max_bytes: usize::MAX,
            weigher: None,
            max_delay: Duration::from_millis(1),
            capacity: 1024,
            flushers: 1,
            name: String::from("latchfree-batch"),
            on_error: None,
        }
    }

    /// Most items per batch (at least 1). Bigger batches amortise the
    /// handler's fixed cost; smaller ones cut latency.
    pub fn max_items(mut self, n: usize) -> Self {
        self.max_items = n.max(1);
        self
    }

    /// Most bytes per batch, as weighed by `weigher`. A single item heavier
    /// than this still ships (alone).
    pub fn max_bytes(
        mut self,
        bytes: usize,
        weigher: impl Fn(&T) -> usize + Send + Sync + 'static,
    ) -> Self {
        self.max_bytes = bytes;
        self.weigher = Some(HandleArc::new(weigher));
        self
    }

    /// How long a batch may wait for more items, counted from its first.
    /// Zero is natural batching: ship what is there at once.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Items that may wait (rounded up to a power of two). When full,
    /// `push` waits, `try_push` refuses and `push_timeout` waits a while.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Flusher threads (1..=63). With more than one, batches run in
    /// parallel and order across batches is not kept.
    pub fn flushers(mut self, n: usize) -> Self {
        self.flushers = n.clamp(1, crate::ring::MAX_GATES - 1);
        self
    }

    /// Flusher threads are named `<prefix>-<n>`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Receives every batch the handler rejected or panicked on, with its
    /// items (whatever the handler left in the `Vec`).
    pub fn on_error(
        mut self,
        f: impl Fn(BatchError<E>, &mut Vec<T>) + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(HandleArc::new(f));
        self
    }

    /// Starts the flushers, each with a clone of `handler`.
    ///
    /// # Panics
    ///
    /// If the capacity is too large for a ring or a thread cannot start.
    pub fn build<H>(self, handler: H) -> Batcher<T>
    where
        H: FnMut(&mut Vec<T>) -> Result<(), E> + Send + Clone + 'static,
    {
        let cap = self.capacity.next_power_of_two();
        let ring: Arc<Queue<T>> = Arc::new(Ring::with_wait(
            Heap::builder(cap)
                .gates(self.flushers + 1)
                .build()
                .expect("queue capacity too large"),
            Parking::with_max_park(Duration::from_micros(200)),
        ));
        let mut graph = Ring::graph(ring.clone()).expect("fresh ring");
        let sources: Vec<Source<T>> = if self.flushers == 1 {
            alloc::vec![Source::One(graph.consumer(&[]).expect("gates sized"))]
        } else {
            graph
                .work_group_vec(self.flushers, &[])
                .expect("gates sized")
                .into_iter()
                .map(|w| Source::Many(w, 0))
                .collect()
        };
        let producers = Lanes::new(graph.multi_producer().expect("the graph has its consumers"));
        let shared = Arc::new(Shared {
            ring,
            producers,
            handoff: Handoff::new(self.flushers),
            counters: Counters::default(),
        });
        let on_error: OnError<T, E> = self.on_error.unwrap_or_else(|| {
            HandleArc::new(|e: BatchError<E>, items: &mut Vec<T>| {
                let why = match e {
                    BatchError::Failed(_) => "failed",
                    BatchError::Panicked(_) => "panicked",
                    BatchError::Unweighed(_) => {
                        std::eprintln!("latchfree batch: the weigher panicked on an item");
                        return;
                    }
                };
                std::eprintln!("latchfree batch: a batch of {} items {why}", items.len());
            })
        });
        // Clone every handler before starting a thread: a panicking `Clone`
        // then leaves nothing running.
        let mut handlers: Vec<H> = (1..sources.len()).map(|_| handler.clone()).collect();
        handlers.push(handler);
        let mut joins = Vec::new();
        for (i, (src, handler)) in sources.into_iter().zip(handlers).enumerate() {
            let f = Flusher {
                shared: shared.clone(),
                index: i,
                src,
                handler,
                on_error: on_error.clone(),
                weigher: self.weigher.clone(),
                max_items: self.max_items,
                max_bytes: self.max_bytes,
                max_delay: self.max_delay,
                batch: Vec::with_capacity(self.max_items.min(4096)),
                incoming: Vec::new(),
                bytes: 0,
                first_at: None,
            };
            let started = thread::Builder::new()
                .name(alloc::format!("{}-{i}", self.name))
                .spawn(move || f.run());
            match started {
                Ok(j) => joins.push(j),
                Err(e) => {
                    // Stop the flushers already running before reporting.
                    shared.ring.close();
                    shared.handoff.wake_all();
                    for j in joins {
                        let _ = j.join();
                    }
                    panic!("could not start a flusher thread: {e}");
                }
            }
        }
        Batcher {
            shared,
            joins: Mutex::new(joins),
        }
    }
}

enum Source<T> {
    One(Consumer<Arc<Queue<T>>>),
    /// A work-group worker and one past the highest sequence it took.
    Many(Worker<Arc<Queue<T>>>, u64),
}

impl<T: Send> Source<T> {
    fn poll(&mut self, max: usize, mut f: impl FnMut(T)) -> Poll {
        let mut last = None;
        let mut h = |slot: &Slot<T>, seq: u64, _: bool| {
            last = Some(seq);
            // SAFETY: we are the one consumer of this sequence, inside the
            // poll that handed it to us (see `Slot`).
            if let Some(item) = unsafe { slot.take() } {
                f(item);
            }
        };
        match self {
            Self::One(c) => c.poll_limit(max, &mut h),
            Self::Many(w, taken) => {
                let p = w.poll_limit(max, &mut h);
                if let Some(seq) = last {
                    *taken = (*taken).max(seq + 1);
                }
                p
            }
        }
    }

    /// See [`Flush::position`].
    fn position(&self) -> u64 {
        match self {
            Self::One(c) => c.sequence(),
            Self::Many(_, taken) => *taken,
        }
    }
}

/// Hands a failed batch to the error callback; a panic in it is caught and
/// discarded (there is nowhere further to report it).
fn report<T, E>(on_error: &OnError<T, E>, e: BatchError<E>, items: &mut Vec<T>) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| on_error(e, items))) {
        drop_quietly(p);
    }
}

/// Drops `x` where a panic in its `Drop` is caught and discarded. That
/// panic's own payload is dropped the same way once, and leaked if even
/// its `Drop` panics: unwinding must stop somewhere.
pub(crate) fn drop_quietly<X>(x: X) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(x))) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(p))) {
            core::mem::forget(p);
        }
    }
}

/// Empties `items`, dropping each on its own with [`drop_quietly`]: a
/// panicking `Drop` neither stops the others from being dropped nor
/// escapes (a second panic in one `Vec::clear` would abort).
fn clear_quietly<T>(items: &mut Vec<T>) {
    if core::mem::needs_drop::<T>() {
        for item in items.drain(..) {
            drop_quietly(item);
        }
    } else {
        items.clear();
    }
}

struct Shared<T> {
    ring: Arc<Queue<T>>,
    producers: Lanes<Producer<T>>,
    handoff: Handoff,
    counters: Counters,
}

struct Flusher<T, E, H> {
    shared: Arc<Shared<T>>,
    index: usize,
    src: Source<T>,
    handler: H,
    on_error: OnError<T, E>,
    weigher: Option<Weigher<T>>,
    max_items: usize,
    max_bytes: usize,
    max_delay: Duration,
    batch: Vec<T>,
    /// Reused landing area for weighed items.
    incoming: Vec<T>,
    bytes: usize,
    first_at: Option<Instant>,
}

impl<T, E, H> Flusher<T, E, H>
where
    T: Send,
    H: FnMut(&mut Vec<T>) -> Result<(), E>,
{
    /// Polls once, moving what is available into the batch (shipping on the
    /// way at the item and byte limits).
    fn fill(&mut self) -> Poll {
        let room = self.max_items - self.batch.len();
        if self.weigher.is_none() {
            // Fast path: at most `room` items, straight into the batch.
            let was_empty = self.batch.is_empty();
            let batch = &mut self.batch;
            let p = self.src.poll(room, |item| batch.push(item));
            if was_empty && !self.batch.is_empty() {
                self.first_at = Some(handoff::clock());
            }
            if self.batch.len() >= self.max_items {
                self.ship(FlushCause::Items);
            }
            return p;
        }
        let mut got = core::mem::take(&mut self.incoming);
        let p = self.src.poll(room, |item| got.push(item));
        for item in got.drain(..) {
            self.add(item);
        }
        self.incoming = got;
        p
    }

    fn add(&mut self, item: T) {
        if let Some(w) = &self.weigher {
            let w = match catch_unwind(AssertUnwindSafe(|| w(&item))) {
                Ok(w) => w,
                Err(p) => return self.unweighed(item, p),
            };
            if !self.batch.is_empty() && self.bytes.saturating_add(w) > self.max_bytes {
                self.ship(FlushCause::Bytes);
            }
            self.bytes = self.bytes.saturating_add(w);
        }
        if self.batch.is_empty() {
            self.first_at = Some(handoff::clock());
        }
        self.batch.push(item);
        if self.batch.len() >= self.max_items {
            self.ship(FlushCause::Items);
        }
    }

    /// The weigher panicked on `item`: it goes to the error callback alone.
    #[cold]
    fn unweighed(&mut self, item: T, p: Payload) {
        let c = &self.shared.counters;
        // Relaxed: metrics only.
        c.failed.fetch_add(1, Ordering::Relaxed);
        c.panicked.fetch_add(1, Ordering::Relaxed);
        c.unweighed.fetch_add(1, Ordering::Relaxed);
        let mut one = alloc::vec![item];
        report(&self.on_error, BatchError::Unweighed(p), &mut one);
        clear_quietly(&mut one);
    }

    fn ship(&mut self, cause: FlushCause) {
        if self.batch.is_empty() {
            return;
        }
        let c = &self.shared.counters;
        let n = self.batch.len();
        // Relaxed: metrics only.
        c.causes[cause as usize].fetch_add(1, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        let handler = &mut self.handler;
        let batch = &mut self.batch;
        let r = catch_unwind(AssertUnwindSafe(|| handler(batch)));
        let err = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(BatchError::Failed(e)),
            Err(p) => {
                c.panicked.fetch_add(1, Ordering::Relaxed);
                Some(BatchError::Panicked(p))
            }
        };
        if let Some(e) = err {
            c.failed.fetch_add(1, Ordering::Relaxed);
            report(&self.on_error, e, &mut self.batch);
        }
        c.delivered.fetch_add(n, Ordering::Relaxed);
        // The items were the handler's (and the error callback's); what
        // they left is dropped here, one by one, each drop's panic caught.
        clear_quietly(&mut self.batch);
        self.bytes = 0;
        self.first_at = None;
    }

    fn run(mut self) {
        let shared = self.shared.clone();
        shared.handoff.run(self.index, self.max_delay, &mut self);
        // The handler, callbacks and weigher are user values too.
        drop_quietly(self);
    }
}

impl<T, E, H> Flush for Flusher<T, E, H>
where
    T: Send,
    H: FnMut(&mut Vec<T>) -> Result<(), E>,
{
    fn fill(&mut self) -> Poll {
        Flusher::fill(self)
    }

    fn ship(&mut self, cause: FlushCause) {
        Flusher::ship(self, cause);
    }

    fn first_at(&self) -> Option<Instant> {
        self.first_at
    }

    fn position(&self) -> u64 {
        self.src.position()
    }
}

/// The asynchronous batcher. See the [module docs](self).
///
/// Dropping it is [`close`](Self::close): everything accepted is handed to
/// the handler first.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use latchfree::batch::Batcher;
///
/// let written = Arc::new(AtomicUsize::new(0));
/// let w = written.clone();
/// let b = Batcher::builder::<()>().max_items(64).build(move |batch: &mut Vec<u64>| {
///     w.fetch_add(batch.len(), Ordering::Relaxed);
///     Ok(())
/// });
/// for i in 0..1000 {
///     b.push(i).unwrap();
/// }
/// b.close(); // everything accepted reaches the handler first
/// assert_eq!(written.load(Ordering::Relaxed), 1000);
/// ```
pub struct Batcher<T> {
    shared: Arc<Shared<T>>,
    joins: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl<T> fmt::Debug for Batcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("handoff", &self.shared.handoff)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts configuring a batcher.
    pub fn builder<E: 'static>() -> Builder<T, E> {
        Builder::new()
    }

    fn publish(&self, item: T, wait: Option<Duration>) -> Result<(), PushError<T>> {
        let s = &self.shared;
        let slot = Slot(UnsafeCell::new(Some(item)));
        // Accepted items are counted in the pushing thread's lane (a plain
        // store, no shared counter).
        let r = s.producers.with(|l| {
            let r = match wait {
                None => l.producer.push(slot),
                Some(_) => l.producer.try_push(slot),
            };
            if r.is_ok() {
                l.count();
            }
            r
        });
        let r = match (r, wait) {
            (Err(PublishError::Full(slot)), Some(d)) if !d.is_zero() => self.retry(slot, d),
            (r, _) => r,
        };
        let out = match r {
            Ok(_) => Ok(()),
            Err(e) => {
                s.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(match e {
                    PublishError::Full(x) | PublishError::Timeout(x) => {
                        PushError::Full(x.into_item())
                    }
                    PublishError::Closed(x)
                    | PublishError::Halted(x)
                    | PublishError::TooLarge(x) => PushError::Closed(x.into_item()),
                })
            }
        };
        if out.is_ok() {
            s.handoff.pushed();
        }
        out
    }

    /// Tries again until `d` has passed.
    #[cold]
    fn retry(&self, mut slot: Slot<T>, d: Duration) -> Result<u64, PublishError<Slot<T>>> {
        let deadline = now() + d;
        let mut nap = Duration::from_micros(10);
        loop {
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return Err(PublishError::Full(slot));
            }
            thread::park_timeout(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(1));
            let r = self.shared.producers.with(|l| {
                let r = l.producer.try_push(slot);
                if r.is_ok() {
                    l.count();
                }
                r
            });
            match r {
                Err(PublishError::Full(s)) => slot = s,
                other => return other,
            }
        }
    }

    /// Adds `item`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// `Closed(item)` once the batcher is closed (including while waiting).
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.publish(item, None)
    }

    /// Adds `item` if there is room now.
    ///
    /// # Errors
    ///
    /// `Full(item)` or `Closed(item)`.
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        self.publish(item, Some(Duration::ZERO))
    }

    /// Adds `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// `Full(item)` after the wait, or `Closed(item)`.
    pub fn push_timeout(&self, item: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.publish(item, Some(timeout))
    }

    /// Returns once every item accepted before this call has been handed to
    /// the handler (its batch returned). See the module docs.
    pub fn flush(&self) {
        // Every push that returned before this call claimed a sequence
        // below the queue's claim position now.
        let target = self.shared.producers.with(|l| l.producer.sequence());
        self.shared.handoff.flush(target);
    }

    /// Stops accepting (waiting pushers get `Closed`), hands everything
    /// accepted to the handler, and joins the flushers. Idempotent.
    pub fn close(&self) {
        self.shared.ring.close();
        self.shared.handoff.wake_all();
        let joins = core::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()));
        for j in joins {
            let _ = j.join();
        }
    }

    /// Whether the batcher stopped accepting.
    pub fn is_closed(&self) -> bool {
        self.shared.ring.is_closed()
    }

    /// The batcher's counters now.
    pub fn metrics(&self) -> Metrics {
        let c = &self.shared.counters;
        let r = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        Metrics {
            accepted: self.shared.producers.counted(),
            rejected: r(&c.rejected),
            delivered: r(&c.delivered),
            batches: r(&c.batches),
            failed: r(&c.failed),
            panicked: r(&c.panicked),
            unweighed: r(&c.unweighed),
            by_items: r(&c.causes[0]),
            by_bytes: r(&c.causes[1]),
            by_time: r(&c.causes[2]),
            by_manual: r(&c.causes[3]),
            by_close: r(&c.causes[4]),
        }
    }
}

impl<T> Drop for Batcher<T> {
    fn drop(&mut self) {
        self.shared.ring.close();
        self.shared.handoff.wake_all();
        let joins = core::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()));
        for j in joins {
            let _ = j.join();
        }
    }
}

#[cfg(test)]
mod tests;
