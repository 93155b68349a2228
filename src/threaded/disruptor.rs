//! The threaded runner of a ring: a consumer graph with one named thread per
//! handler, lifecycle callbacks, panic handling and graceful shutdown.
//! Public as [`latchfree::ring::Disruptor`](crate::ring::Disruptor); the
//! user-facing documentation lives on the types.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;
use crate::sync::thread::JoinHandle;
use crate::sync::time::now;

use crate::ring::{
    BuildError, ConsumeError, Consumer, Graph, Mode, Multi, MultiProducer, Node, Producer, Ring,
    Single, Storage, WaitStrategy, Worker,
};

/// A consumer's code, run on its own thread by a [`Disruptor`].
///
/// A handler given to [`DisruptorBuilder::handle_events_with`] moves to its
/// thread, so it must be `Send`; one made by a factory given to
/// [`DisruptorBuilder::handle_events_from`] is built on its thread and need
/// not be (thread-local buffers, `Rc`, a pinned allocator).
///
/// ```
/// use std::sync::mpsc;
/// use latchfree::ring::{Disruptor, EventHandler, Heap, Ring};
///
/// /// Sums events and reports the total when the ring shuts down.
/// struct Summer {
///     sum: u64,
///     done: mpsc::Sender<u64>,
/// }
/// impl EventHandler<u64> for Summer {
///     fn on_event(&mut self, e: &u64, _seq: u64, _end_of_batch: bool) {
///         self.sum += e;
///     }
///     fn on_shutdown(&mut self) {
///         self.done.send(self.sum).unwrap();
///     }
/// }
///
/// let (tx, rx) = mpsc::channel();
/// let ring = Ring::new(Heap::with_capacity(16).unwrap());
/// let (mut producer, disruptor) = Disruptor::builder(ring)
///     .unwrap()
///     .handle_events_with(Summer { sum: 0, done: tx })
///     .build_single()
///     .unwrap();
/// for i in 1..=10 {
///     producer.push(i).unwrap();
/// }
/// drop(producer);
/// disruptor.shutdown();
/// assert_eq!(rx.recv().unwrap(), 55);
/// ```
pub trait EventHandler<T> {
    /// Handles one event. `end_of_batch` is true for the last event of the
    /// batch the consumer took, a good moment to flush.
    fn on_event(&mut self, event: &T, sequence: u64, end_of_batch: bool);

    /// Runs on the consumer's thread before the first event.
    fn on_start(&mut self) {}

    /// Runs on the consumer's thread after the last event.
    fn on_shutdown(&mut self) {}
}

impl<T, F> EventHandler<T> for F
where
    F: FnMut(&T, u64, bool),
{
    fn on_event(&mut self, event: &T, sequence: u64, end_of_batch: bool) {
        self(event, sequence, end_of_batch)
    }
}

/// What happens after a handler panics.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::ring::{Disruptor, PanicPolicy, Heap, Parking, Ring, Single};
///
/// let ring = Arc::new(Ring::<Heap<u32>, Single, Parking>::new(Heap::with_capacity(8).unwrap()));
/// let (mut producer, disruptor) = Disruptor::builder(ring.clone())
///     .unwrap()
///     .panic_policy(PanicPolicy::Halt) // a bad event stops everything
///     .on_panic(|_report| {})
///     .handle_events_with(|e: &u32, _seq: u64, _eob: bool| assert!(*e != 13, "unlucky"))
///     .build_single()
///     .unwrap();
/// producer.push(13).unwrap();
/// while !ring.is_halted() {
///     std::thread::yield_now();
/// }
/// disruptor.shutdown();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PanicPolicy {
    /// Report it, count the event as handled, carry on.
    #[default]
    Skip,
    /// Report it and halt the ring ([`Ring::halt`]): no consumer thread
    /// starts another event, unconsumed events are abandoned, producers get
    /// `Halted`.
    Halt,
}

/// A caught handler panic.
///
/// ```
/// use std::sync::{mpsc, Arc, Mutex};
/// use latchfree::ring::{Disruptor, PanicReport, Heap, Parking, Ring, Single};
///
/// let (tx, rx) = mpsc::channel::<PanicReport>();
/// let tx = Mutex::new(tx);
/// let ring = Arc::new(Ring::<Heap<u32>, Single, Parking>::new(Heap::with_capacity(8).unwrap()));
/// let (mut producer, disruptor) = Disruptor::builder(ring)
///     .unwrap()
///     .thread_name_prefix("pricer")
///     .on_panic(move |report| tx.lock().unwrap().send(report).unwrap())
///     .handle_events_with(|e: &u32, _seq: u64, _eob: bool| assert!(*e != 2, "bad price"))
///     .build_single()
///     .unwrap();
/// for i in 0..4 {
///     producer.push(i).unwrap(); // event 2 panics; the others are handled
/// }
/// drop(producer);
/// disruptor.shutdown();
/// let report = rx.recv().unwrap();
/// assert_eq!(report.sequence, Some(2));
/// assert!(report.consumer.starts_with("pricer") && report.message.contains("bad price"));
/// ```
#[derive(Debug)]
pub struct PanicReport {
    /// The consumer's thread name.
    pub consumer: String,
    /// The sequence of the event being handled, or `None` for a panic
    /// outside one (the thread-start hook, the handler factory, `on_start`,
    /// `on_shutdown`).
    pub sequence: Option<u64>,
    /// The panic payload's message, when it was a string.
    pub message: String,
}

type PanicHandler = Arc<dyn Fn(PanicReport) + Send + Sync>;

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

type Job = Box<dyn FnOnce() + Send>;
type ThreadStart = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Builds a [`Disruptor`]: a consumer graph with a handler per node, laid
/// out in stages as the `disruptor` crate does.
///
/// - [`handle_events_with`](Self::handle_events_with) (and `_workers`,
///   `handle_events_from`) adds a handler to the current stage: handlers of
///   one stage run in parallel, each seeing every event (a work group
///   shares them).
/// - [`and_then`](Self::and_then) closes the stage: handlers added after it
///   see an event only once every handler of the stage before has handled
///   it (and so, stage by stage, every earlier handler).
/// - [`then`](Self::then) is `and_then().handle_events_with(..)`.
///
/// ```
/// use latchfree::ring::{Disruptor, Heap, Multi, Ring};
///
/// // Journal and replicate in parallel, then a work group of two
/// // settlement workers (each event to one of them) after both.
/// let ring = Ring::<Heap<u64>, Multi>::new(Heap::with_capacity(256).unwrap());
/// let settle = |_e: &u64, _seq: u64, _eob: bool| {};
/// let (producer, disruptor) = Disruptor::builder(ring)
///     .unwrap()
///     .thread_name_prefix("orders")
///     .handle_events_with(|_e: &u64, _seq: u64, _eob: bool| {}) // journal
///     .handle_events_with(|_e: &u64, _seq: u64, _eob: bool| {}) // replicate
///     .and_then()
///     .handle_events_with_workers(vec![settle, settle])
///     .build_multi()
///     .unwrap();
/// let mut p = producer.clone();
/// p.push(1).unwrap();
/// drop((p, producer));
/// disruptor.shutdown();
/// ```
#[must_use = "a DisruptorBuilder starts nothing until `build_single` or `build_multi`"]
pub struct DisruptorBuilder<S: Storage, M: Mode, W: WaitStrategy> {
    graph: Graph<Arc<Ring<S, M, W>>>,
    /// What the current stage runs after: the previous stage's nodes.
    deps: Vec<Node>,
    /// The nodes of the current stage.
    stage: Vec<Node>,
    /// The current stage's number (0 for the first).
    stage_index: usize,
    jobs: Vec<(String, Job)>,
    prefix: String,
    policy: PanicPolicy,
    on_panic: PanicHandler,
    on_thread_start: Option<ThreadStart>,
    error: Option<BuildError>,
}

/// Consumer threads running over a ring: the `std` runner of a
/// [`Ring`]'s consumer graph, built by [`Disruptor::builder`].
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// use latchfree::ring::{Disruptor, Heap, Ring};
///
/// let total = Arc::new(AtomicU64::new(0));
/// let t = total.clone();
/// let (mut producer, disruptor) = Disruptor::builder(Ring::new(Heap::with_capacity(64).unwrap()))
///     .unwrap()
///     .handle_events_with(|e: &u64, _seq: u64, _eob: bool| assert!(*e < 100))
///     .then(move |e: &u64, _seq: u64, _eob: bool| { t.fetch_add(*e, Ordering::Relaxed); })
///     .build_single()
///     .unwrap();
/// for i in 0..100 {
///     producer.publish(|slot| *slot = i).unwrap();
/// }
/// drop(producer); // closes the ring
/// disruptor.shutdown(); // delivers everything, then joins
/// assert_eq!(total.load(Ordering::Relaxed), 4950);
/// ```
///
/// # Panics in handlers
///
/// A panic in `on_event` is caught on the consumer's thread and reported to
/// the builder's panic handler with the consumer's thread name and the
/// event's sequence. With [`PanicPolicy::Skip`] (the default) that event
/// counts as handled and the consumer goes on with the next one, so one bad
/// event never stalls the ring; the handler's own state is whatever the
/// panic left it in. With [`PanicPolicy::Halt`] the ring is halted instead:
/// no consumer thread starts another event after the one that panicked
/// (one running on another thread finishes), and the rest are abandoned.
/// A handler factory that panics (see
/// [`handle_events_from`](DisruptorBuilder::handle_events_from)) leaves its
/// node with no handler: the ring is halted whatever the policy, since
/// nothing could deliver that node's events.
///
/// # Shutdown
///
/// [`shutdown`](Self::shutdown) closes the ring and waits until every
/// consumer has handled every published event, then calls `on_shutdown` and
/// joins. A single-producer ring is closed by its producer (dropping it, or
/// its next publish after the close request), so drop the producer first:
/// with the producer still alive `shutdown` does not wait (that could
/// hang), it leaves the threads to finish once the producer honours the
/// close and returns `false`; [`shutdown_timeout`](Self::shutdown_timeout)
/// waits a bounded time, then halts. [`halt`](Self::halt) stops now: each
/// consumer thread finishes the event it is handling, starts no other (the
/// rest of its batch and everything queued are abandoned), runs
/// `on_shutdown` and is joined.
///
/// Dropping a `Disruptor` is [`shutdown`](Self::shutdown): no published
/// event is lost. It waits for the consumers to drain (unless a live single
/// producer lets them finish later by themselves); call
/// [`halt`](Self::halt) to abandon queued events instead.
///
/// ```
/// use std::time::Duration;
/// use latchfree::ring::{Disruptor, Heap, Ring};
///
/// let (mut producer, disruptor) = Disruptor::builder(Ring::new(Heap::with_capacity(64).unwrap()))
///     .unwrap()
///     .handle_events_with(|_e: &u64, _seq: u64, _eob: bool| {})
///     .build_single()
///     .unwrap();
/// producer.push(1).unwrap();
/// // The producer is still alive, so the ring cannot close by itself: the
/// // timeout halts it instead of waiting forever.
/// assert!(!disruptor.shutdown_timeout(Duration::from_millis(50)));
/// assert!(producer.push(2).is_err());
/// ```
#[must_use = "dropping a Disruptor shuts it down at once (drains, then joins)"]
pub struct Disruptor<S: Storage, M: Mode, W: WaitStrategy> {
    ring: Arc<Ring<S, M, W>>,
    threads: Vec<JoinHandle<()>>,
}

impl<S, M, W> Disruptor<S, M, W>
where
    S: Storage + Send + Sync + 'static,
    S::Item: Send + Sync + 'static,
    M: Mode,
    W: WaitStrategy + 'static,
{
    /// Starts a builder for `ring`'s graph; `ring` is a [`Ring`] (moved into
    /// an `Arc`) or an `Arc<Ring>` you keep a clone of.
    ///
    /// # Errors
    ///
    /// [`BuildError::AlreadyBuilt`] if the ring's graph was already built.
    pub fn builder(
        ring: impl Into<Arc<Ring<S, M, W>>>,
    ) -> Result<DisruptorBuilder<S, M, W>, BuildError> {
        Ok(DisruptorBuilder {
            graph: Ring::graph(ring.into())?,
            deps: Vec::new(),
            stage: Vec::new(),
            stage_index: 0,
            jobs: Vec::new(),
            prefix: "latchfree-ring".to_string(),
            policy: PanicPolicy::Skip,
            on_panic: Arc::new(|r: PanicReport| {
                std::eprintln!(
                    "latchfree: handler on {} panicked at sequence {:?}: {}",
                    r.consumer,
                    r.sequence,
                    r.message
                );
            }),
            on_thread_start: None,
            error: None,
        })
    }

    /// The ring.
    pub fn ring(&self) -> &Arc<Ring<S, M, W>> {
        &self.ring
    }

    fn join(&mut self) {
        for t in self.threads.drain(..) {
            // Consumer threads catch handler panics, so a join error means a
            // panic in our own loop: surface it.
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
    }

    /// Closes the ring, waits until every consumer has handled every
    /// published event, runs `on_shutdown` and joins the threads; returns
    /// `true`.
    ///
    /// A single-producer ring is closed by its producer (its next publish
    /// is refused, or it is dropped). If that producer is still alive,
    /// waiting for it could last forever (it may belong to the calling
    /// thread), so instead this records the close request and returns
    /// `false` at once: the consumer threads go on to deliver everything the
    /// producer publishes until it honours the request, then run
    /// `on_shutdown` and exit by themselves. Drop or close the producer
    /// first to drain and join here, or use
    /// [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown(mut self) -> bool {
        let drained = self.close_and_settle();
        if drained {
            self.join();
        }
        drained
    }

    /// Closes the ring; if it cannot drain by itself (a live single
    /// producer), lets the threads go (they exit once it does) and returns
    /// `false`. Leaves the threads to join otherwise.
    fn close_and_settle(&mut self) -> bool {
        self.ring.close();
        if !M::MULTI && !self.ring.closed_by_producer() {
            // Detach: dropping the join handles lets the threads finish on
            // their own; `Drop` then has nothing to join.
            self.threads.clear();
            return false;
        }
        true
    }

    /// [`shutdown`](Self::shutdown), but if the consumers have not drained
    /// within `timeout` (a single producer still alive and idle, a handler
    /// stuck) the ring is halted instead. Returns `true` when it drained.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> bool {
        self.ring.close();
        let deadline = now() + timeout;
        while self.threads.iter().any(|t| !crate::sync::thread::is_finished(t)) {
            if now() >= deadline {
                self.ring.halt();
                self.join();
                return false;
            }
            crate::sync::thread::sleep(Duration::from_millis(1));
        }
        self.join();
        true
    }

    /// Halts the ring ([`Ring::halt`]) and joins: each thread finishes the
    /// event it is handling and starts no other; unconsumed events are
    /// abandoned.
    pub fn halt(mut self) {
        self.ring.halt();
        self.join();
    }
}

impl<S: Storage, M: Mode, W: WaitStrategy> Drop for Disruptor<S, M, W> {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        // As `shutdown`: close, and drain then join unless a live single
        // producer keeps the ring open (the threads then finish by
        // themselves once it closes). Nothing published is abandoned.
        self.ring.close();
        if !M::MULTI && !self.ring.closed_by_producer() {
            self.threads.clear();
            return;
        }
        for t in self.threads.drain(..) {
            // Never panic in `drop`; a consumer loop's own panic was
            // already printed by the thread.
            let _ = t.join();
        }
    }
}

/// What a consumer thread needs besides its handler and its wait.
struct ThreadCtx {
    name: String,
    stage: usize,
    index: usize,
    policy: PanicPolicy,
    on_panic: PanicHandler,
    on_thread_start: Option<ThreadStart>,
}

impl ThreadCtx {
    /// Reports a caught panic; halts the ring under `PanicPolicy::Halt`, or
    /// always when `fatal`.
    fn report(&self, sequence: Option<u64>, payload: Box<dyn Any + Send>, fatal: bool, halt: &dyn Fn()) {
        let report = PanicReport {
            consumer: self.name.clone(),
            sequence,
            message: message(&*payload),
        };
        // The callback is user code too: a panic in it must not end this
        // thread, whose gate would then stall the producers for good.
        let _ = catch_unwind(AssertUnwindSafe(|| (self.on_panic)(report)));
        if fatal || self.policy == PanicPolicy::Halt {
            halt();
        }
    }
}

/// The life of one consumer or worker thread: the start hook, the handler
/// built, `on_start`, the event loop, `on_shutdown`.
fn run_thread<T, H: EventHandler<T>>(
    ctx: &ThreadCtx,
    make: impl FnOnce() -> H,
    halt: &dyn Fn(),
    halted: &dyn Fn() -> bool,
    mut wait: impl FnMut(&mut dyn FnMut(&T, u64, bool)) -> Result<usize, ConsumeError>,
) {
    if let Some(hook) = &ctx.on_thread_start {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook(ctx.stage, ctx.index))) {
            ctx.report(None, p, false, halt);
        }
    }
    let mut handler = match catch_unwind(AssertUnwindSafe(make)) {
        Ok(h) => h,
        Err(p) => {
            // No handler, so nobody can deliver this node's events: waiting
            // would stall the producers for good.
            ctx.report(None, p, true, halt);
            return;
        }
    };
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| handler.on_start())) {
        ctx.report(None, p, false, halt);
    }
    loop {
        let mut current = None;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            wait(&mut |e, seq, eob| {
                // One load of a line nobody writes until the halt: after
                // it, the rest of the batch is abandoned, not handled.
                if halted() {
                    return;
                }
                current = Some(seq);
                handler.on_event(e, seq, eob);
            })
        }));
        match outcome {
            Ok(Ok(_)) | Ok(Err(ConsumeError::Timeout)) => {}
            Ok(Err(ConsumeError::Closed | ConsumeError::Halted)) => break,
            Err(p) => ctx.report(current, p, false, halt),
        }
    }
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| handler.on_shutdown())) {
        ctx.report(None, p, false, halt);
    }
}

impl<S, M, W> DisruptorBuilder<S, M, W>
where
    S: Storage + Send + Sync + 'static,
    S::Item: Send + Sync + 'static,
    M: Mode,
    W: WaitStrategy + 'static,
{
    /// Names consumer threads `{prefix}-{n}` (default `latchfree-ring`), `n`
    /// counting handlers in the order they were added.
    pub fn thread_name_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    /// What to do after a handler panics (default [`PanicPolicy::Skip`]).
    pub fn panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Receives every caught handler panic (default: a line on stderr). A
    /// panic in `f` itself is caught and ignored.
    pub fn on_panic(mut self, f: impl Fn(PanicReport) + Send + Sync + 'static) -> Self {
        self.on_panic = Arc::new(f);
        self
    }

    /// Runs `f(stage, index)` first thing on every consumer thread, before
    /// its handler is built: `stage` counts [`and_then`](Self::and_then)
    /// calls before the handler was added (0 for the first stage), `index`
    /// is the `n` of its thread name. The place to pin threads to cores
    /// (with `core_affinity` or the platform's call) or set priorities; a
    /// factory's handler is then built on the pinned thread. A panic in `f`
    /// is reported and the thread goes on.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use latchfree::ring::{Disruptor, Heap, Ring};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let (producer, disruptor) = Disruptor::builder(Ring::new(Heap::<u8>::with_capacity(8).unwrap()))
    ///     .unwrap()
    ///     .on_thread_start(move |stage, index| {
    ///         // e.g. core_affinity::set_for_current(cores[index]);
    ///         log.lock().unwrap().push((stage, index));
    ///     })
    ///     .handle_events_with(|_: &u8, _: u64, _: bool| {})
    ///     .then(|_: &u8, _: u64, _: bool| {})
    ///     .build_single()
    ///     .unwrap();
    /// drop(producer);
    /// disruptor.shutdown();
    /// let mut seen = seen.lock().unwrap().clone();
    /// seen.sort();
    /// assert_eq!(seen, [(0, 0), (1, 1)]);
    /// ```
    pub fn on_thread_start(mut self, f: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Queues a consumer thread: the handler `make` builds, driven by `wait`.
    fn push_job<H, F>(
        &mut self,
        make: F,
        mut wait: impl FnMut(&mut dyn FnMut(&S::Item, u64, bool)) -> Result<usize, ConsumeError>
            + Send
            + 'static,
    ) where
        H: EventHandler<S::Item>,
        F: FnOnce() -> H + Send + 'static,
    {
        let index = self.jobs.len();
        let name = std::format!("{}-{}", self.prefix, index);
        let ctx = ThreadCtx {
            name: name.clone(),
            stage: self.stage_index,
            index,
            policy: self.policy,
            on_panic: self.on_panic.clone(),
            on_thread_start: self.on_thread_start.clone(),
        };
        let ring = self.graph.ring.clone();
        self.jobs.push((
            name,
            Box::new(move || {
                let halt = || ring.halt();
                let halted = || ring.is_halted();
                run_thread(&ctx, make, &halt, &halted, &mut wait);
            }),
        ));
    }

    fn add_consumer<H, F>(&mut self, make: F)
    where
        H: EventHandler<S::Item>,
        F: FnOnce() -> H + Send + 'static,
    {
        if self.error.is_some() {
            return;
        }
        let mut consumer: Consumer<Arc<Ring<S, M, W>>> = match self.graph.consumer(&self.deps) {
            Ok(c) => c,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        self.stage.push(consumer.node());
        self.push_job(make, move |f| consumer.wait(f));
    }

    fn add_workers<H: EventHandler<S::Item> + Send + 'static>(&mut self, handlers: Vec<H>) {
        if self.error.is_some() {
            return;
        }
        let workers: Vec<Worker<Arc<Ring<S, M, W>>>> =
            match self.graph.work_group_vec(handlers.len(), &self.deps) {
                Ok(w) => w,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            };
        self.stage.push(workers[0].group());
        for (mut worker, handler) in workers.into_iter().zip(handlers) {
            self.push_job(move || handler, move |f| worker.wait(f));
        }
    }

    /// Adds a consumer to the current stage: it sees every event, in
    /// parallel with the stage's other handlers, after every handler of the
    /// previous stage (straight after the producer in the first stage).
    pub fn handle_events_with<H>(mut self, handler: H) -> Self
    where
        H: EventHandler<S::Item> + Send + 'static,
    {
        self.add_consumer(move || handler);
        self
    }

    /// [`handle_events_with`](Self::handle_events_with) for a handler built
    /// by `factory` on the consumer's own thread (after the
    /// [`on_thread_start`](Self::on_thread_start) hook), so the handler
    /// need not be `Send`. A panic in `factory` halts the ring (see
    /// [`Disruptor`]'s panic notes).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::sync::mpsc;
    /// use latchfree::ring::{Disruptor, Heap, Ring};
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let (mut producer, disruptor) = Disruptor::builder(Ring::new(Heap::with_capacity(8).unwrap()))
    ///     .unwrap()
    ///     .handle_events_from(move || {
    ///         // `Rc<RefCell<..>>` is not `Send`: built here, on the thread.
    ///         let log = Rc::new(RefCell::new(Vec::new()));
    ///         let tx = tx.clone();
    ///         move |e: &u32, _seq: u64, end_of_batch: bool| {
    ///             log.borrow_mut().push(*e);
    ///             if end_of_batch {
    ///                 tx.send(log.borrow_mut().split_off(0)).unwrap();
    ///             }
    ///         }
    ///     })
    ///     .build_single()
    ///     .unwrap();
    /// producer.push(1).unwrap();
    /// drop(producer);
    /// disruptor.shutdown();
    /// assert_eq!(rx.iter().flatten().collect::<Vec<_>>(), [1]);
    /// ```
    pub fn handle_events_from<H, F>(mut self, factory: F) -> Self
    where
        H: EventHandler<S::Item> + 'static,
        F: FnOnce() -> H + Send + 'static,
    {
        self.add_consumer(factory);
        self
    }

    /// Adds a work group to the current stage, one thread per handler: each
    /// event goes to exactly one of them.
    pub fn handle_events_with_workers<H>(mut self, handlers: Vec<H>) -> Self
    where
        H: EventHandler<S::Item> + Send + 'static,
    {
        self.add_workers(handlers);
        self
    }

    /// Ends the current stage: handlers added after this run after every
    /// handler of that stage. A no-op on an empty stage.
    pub fn and_then(mut self) -> Self {
        if !self.stage.is_empty() {
            self.deps = core::mem::take(&mut self.stage);
            self.stage_index += 1;
        }
        self
    }

    /// `and_then().handle_events_with(handler)`: a consumer after every
    /// handler of the current stage, in a stage of its own so far.
    pub fn then<H>(self, handler: H) -> Self
    where
        H: EventHandler<S::Item> + Send + 'static,
    {
        self.and_then().handle_events_with(handler)
    }

    /// `and_then().handle_events_with_workers(handlers)`.
    pub fn then_workers<H>(self, handlers: Vec<H>) -> Self
    where
        H: EventHandler<S::Item> + Send + 'static,
    {
        self.and_then().handle_events_with_workers(handlers)
    }

    #[allow(clippy::type_complexity)]
    fn start(mut self) -> Result<(Graph<Arc<Ring<S, M, W>>>, Disruptor<S, M, W>), BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.jobs.is_empty() {
            return Err(BuildError::NoConsumers);
        }
        let ring = self.graph.ring.clone();
        let mut threads = Vec::with_capacity(self.jobs.len());
        for (name, job) in self.jobs.drain(..) {
            match crate::sync::thread::Builder::new().name(name).spawn(job) {
                Ok(t) => threads.push(t),
                Err(_) => {
                    let mut d = Disruptor { ring, threads };
                    d.ring.halt();
                    d.join();
                    return Err(BuildError::ThreadSpawn);
                }
            }
        }
        Ok((self.graph, Disruptor { ring, threads }))
    }
}

impl<S, W> DisruptorBuilder<S, Single, W>
where
    S: Storage + Send + Sync + 'static,
    S::Item: Send + Sync + 'static,
    W: WaitStrategy + 'static,
{
    /// Starts the consumer threads and returns the ring's one producer.
    ///
    /// # Errors
    ///
    /// The first [`BuildError`] met while adding nodes (out of gates, a
    /// work group of zero handlers), or [`BuildError::NoConsumers`] if no
    /// handler was added.
    #[allow(clippy::type_complexity)]
    pub fn build_single(
        self,
    ) -> Result<(Producer<Arc<Ring<S, Single, W>>>, Disruptor<S, Single, W>), BuildError> {
        let (graph, d) = self.start()?;
        Ok((graph.single_producer()?, d))
    }
}

impl<S, W> DisruptorBuilder<S, Multi, W>
where
    S: Storage + Send + Sync + 'static,
    S::Item: Send + Sync + 'static,
    W: WaitStrategy + 'static,
{
    /// Starts the consumer threads and returns a producer handle to clone.
    ///
    /// # Errors
    ///
    /// As for [`build_single`](DisruptorBuilder::build_single).
    #[allow(clippy::type_complexity)]
    pub fn build_multi(
        self,
    ) -> Result<
        (
            MultiProducer<Arc<Ring<S, Multi, W>>>,
            Disruptor<S, Multi, W>,
        ),
        BuildError,
    > {
        let (graph, d) = self.start()?;
        Ok((graph.multi_producer()?, d))
    }
}
