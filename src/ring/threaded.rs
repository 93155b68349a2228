//! Runs a ring's consumers on named threads (`std` only).
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//! use latchfree::ring::{threaded::Disruptor, Heap, Ring, Single, Parking};
//!
//! let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::new(
//!     Heap::with_default(64, 4).unwrap(),
//!     Parking::new(),
//! ));
//! let total = Arc::new(AtomicU64::new(0));
//! let t = total.clone();
//! let (mut producer, disruptor) = Disruptor::builder(ring)
//!     .unwrap()
//!     .handle_events_with(|e: &u64, _seq: u64, _eob: bool| assert!(*e < 100))
//!     .then(move |e: &u64, _seq: u64, _eob: bool| { t.fetch_add(*e, Ordering::Relaxed); })
//!     .build_single()
//!     .unwrap();
//! for i in 0..100 {
//!     producer.publish(|slot| *slot = i).unwrap();
//! }
//! drop(producer); // closes the ring
//! disruptor.shutdown(); // delivers everything, then joins
//! assert_eq!(total.load(Ordering::Relaxed), 4950);
//! ```
//!
//! # Panics in handlers
//!
//! A panic in `on_event` is caught on the consumer's thread and reported to
//! the builder's panic handler with the consumer's thread name and the
//! event's sequence. With [`PanicPolicy::Skip`] (the default) that event
//! counts as handled and the consumer goes on with the next one, so one bad
//! event never stalls the ring; the handler's own state is whatever the
//! panic left it in. With [`PanicPolicy::Halt`] the ring is halted instead:
//! no consumer thread starts another event after the one that panicked
//! (one running on another thread finishes), and the rest are abandoned.
//!
//! # Shutdown
//!
//! [`Disruptor::shutdown`] closes the ring and waits until every consumer has
//! handled every published event, then calls `on_shutdown` and joins. A
//! single-producer ring is closed by its producer (dropping it, or its next
//! publish after the close request), so drop the producer first: with the
//! producer still alive `shutdown` does not wait (that could hang), it
//! leaves the threads to finish once the producer honours the close and
//! returns `false`; [`Disruptor::shutdown_timeout`] waits a bounded time,
//! then halts. [`Disruptor::halt`] stops now: each
//! consumer thread finishes the event it is handling, starts no other (the
//! rest of its batch and everything queued are abandoned), runs
//! `on_shutdown` and is joined.
//! Dropping a `Disruptor` without either halts it: it never hangs in `drop`.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;
use std::thread::JoinHandle;
use std::time::Instant;

use super::consumer::{Consumer, Worker};
use super::error::{BuildError, ConsumeError};
use super::producer::{MultiProducer, Producer};
use super::shared::{Graph, Mode, Multi, Node, Ring, Single};
use super::storage::Storage;
use super::wait::WaitStrategy;

/// A consumer's code, run on its own thread.
///
/// ```
/// use std::sync::{mpsc, Arc};
/// use latchfree::ring::threaded::{Disruptor, EventHandler};
/// use latchfree::ring::{Heap, Parking, Ring, Single};
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
/// let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::new(
///     Heap::with_default(16, 1).unwrap(),
///     Parking::new(),
/// ));
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
pub trait EventHandler<T>: Send + 'static {
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
    F: FnMut(&T, u64, bool) + Send + 'static,
{
    fn on_event(&mut self, event: &T, sequence: u64, end_of_batch: bool) {
        self(event, sequence, end_of_batch)
    }
}

/// What happens after a handler panics.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::ring::threaded::{Disruptor, PanicPolicy};
/// use latchfree::ring::{Heap, Parking, Ring, Single};
///
/// let ring = Arc::new(Ring::<Heap<u32>, Single, Parking>::new(
///     Heap::with_default(8, 1).unwrap(),
///     Parking::new(),
/// ));
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
/// use latchfree::ring::threaded::{Disruptor, PanicReport};
/// use latchfree::ring::{Heap, Parking, Ring, Single};
///
/// let (tx, rx) = mpsc::channel::<PanicReport>();
/// let tx = Mutex::new(tx);
/// let ring = Arc::new(Ring::<Heap<u32>, Single, Parking>::new(
///     Heap::with_default(8, 1).unwrap(),
///     Parking::new(),
/// ));
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
    /// The sequence of the event being handled, or `None` for a panic in
    /// `on_start` / `on_shutdown`.
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

/// Builds a [`Disruptor`]: a consumer graph with a handler per node.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::ring::threaded::Disruptor;
/// use latchfree::ring::{Heap, Multi, Parking, Ring};
///
/// // Two journal threads in parallel, then a work group of two settlement
/// // workers (each event to one of them): 1 + 1 + (2 + 1) = 5 gates.
/// let ring = Arc::new(Ring::<Heap<u64>, Multi, Parking>::new(
///     Heap::with_default(256, 5).unwrap(),
///     Parking::new(),
/// ));
/// let settle = |_e: &u64, _seq: u64, _eob: bool| {};
/// let (producer, disruptor) = Disruptor::builder(ring)
///     .unwrap()
///     .thread_name_prefix("orders")
///     .handle_events_with(|_e: &u64, _seq: u64, _eob: bool| {})
///     .and(|_e: &u64, _seq: u64, _eob: bool| {})
///     .then_workers(vec![settle, settle])
///     .build_multi()
///     .unwrap();
/// let mut p = producer.clone();
/// p.push(1).unwrap();
/// drop((p, producer));
/// disruptor.shutdown();
/// ```
pub struct Builder<S: Storage, M: Mode, W: WaitStrategy> {
    graph: Graph<Arc<Ring<S, M, W>>>,
    /// Dependencies of nodes added with `and`.
    deps: Vec<Node>,
    /// The nodes of the current stage (what `then` follows).
    stage: Vec<Node>,
    jobs: Vec<(String, Job)>,
    prefix: String,
    policy: PanicPolicy,
    on_panic: PanicHandler,
    error: Option<BuildError>,
}

/// Consumer threads running over a ring. See the [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use latchfree::ring::threaded::Disruptor;
/// use latchfree::ring::{Heap, Parking, Ring, Single};
///
/// let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::new(
///     Heap::with_default(64, 1).unwrap(),
///     Parking::new(),
/// ));
/// let (mut producer, disruptor) = Disruptor::builder(ring)
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
#[must_use = "dropping a Disruptor halts it; call shutdown() to drain"]
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
    /// Starts a builder for `ring`'s graph.
    ///
    /// # Errors
    ///
    /// [`BuildError::AlreadyBuilt`] if the ring's graph was already built.
    pub fn builder(ring: Arc<Ring<S, M, W>>) -> Result<Builder<S, M, W>, BuildError> {
        Ok(Builder {
            graph: Ring::graph(ring)?,
            deps: Vec::new(),
            stage: Vec::new(),
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
        self.ring.close();
        if !M::MULTI && !self.ring.closed_by_producer() {
            // Detach: dropping the join handles lets the threads finish on
            // their own; `Drop` then has nothing to halt.
            self.threads.clear();
            return false;
        }
        self.join();
        true
    }

    /// [`shutdown`](Self::shutdown), but if the consumers have not drained
    /// within `timeout` (a single producer still alive and idle, a handler
    /// stuck) the ring is halted instead. Returns `true` when it drained.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> bool {
        self.ring.close();
        let deadline = Instant::now() + timeout;
        while self.threads.iter().any(|t| !t.is_finished()) {
            if Instant::now() >= deadline {
                self.ring.halt();
                self.join();
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
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
        if !self.threads.is_empty() {
            self.ring.halt();
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// The loop of one consumer or worker thread.
fn run_loop<T, H: EventHandler<T>>(
    name: &str,
    mut handler: H,
    policy: PanicPolicy,
    on_panic: &PanicHandler,
    halt: &dyn Fn(),
    halted: &dyn Fn() -> bool,
    mut wait: impl FnMut(&mut dyn FnMut(&T, u64, bool)) -> Result<usize, ConsumeError>,
) {
    let report = |sequence, payload: Box<dyn Any + Send>| {
        let report = PanicReport {
            consumer: name.to_string(),
            sequence,
            message: message(&*payload),
        };
        // The callback is user code too: a panic in it must not end this
        // thread, whose gate would then stall the producers for good.
        let _ = catch_unwind(AssertUnwindSafe(|| on_panic(report)));
        if policy == PanicPolicy::Halt {
            halt();
        }
    };
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| handler.on_start())) {
        report(None, p);
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
            Err(p) => report(current, p),
        }
    }
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| handler.on_shutdown())) {
        report(None, p);
    }
}

impl<S, M, W> Builder<S, M, W>
where
    S: Storage + Send + Sync + 'static,
    S::Item: Send + Sync + 'static,
    M: Mode,
    W: WaitStrategy + 'static,
{
    /// Names consumer threads `{prefix}-{n}` (default `latchfree-ring`).
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

    /// Queues a consumer thread: `handler` driven by `wait`, named in order.
    fn push_job<H: EventHandler<S::Item>>(
        &mut self,
        handler: H,
        mut wait: impl FnMut(&mut dyn FnMut(&S::Item, u64, bool)) -> Result<usize, ConsumeError>
            + Send
            + 'static,
    ) {
        let name = std::format!("{}-{}", self.prefix, self.jobs.len());
        let (policy, on_panic) = (self.policy, self.on_panic.clone());
        let thread_name = name.clone();
        let ring = self.graph.ring.clone();
        self.jobs.push((
            name,
            Box::new(move || {
                let halt = || ring.halt();
                let halted = || ring.is_halted();
                run_loop(
                    &thread_name,
                    handler,
                    policy,
                    &on_panic,
                    &halt,
                    &halted,
                    &mut wait,
                );
            }),
        ));
    }

    fn add_consumer<H: EventHandler<S::Item>>(
        &mut self,
        deps: &[Node],
        handler: H,
    ) -> Option<Node> {
        if self.error.is_some() {
            return None;
        }
        let mut consumer: Consumer<Arc<Ring<S, M, W>>> = match self.graph.consumer(deps) {
            Ok(c) => c,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        };
        let node = consumer.node();
        self.push_job(handler, move |f| consumer.wait(f));
        Some(node)
    }

    fn add_workers<H: EventHandler<S::Item>>(
        &mut self,
        deps: &[Node],
        handlers: Vec<H>,
    ) -> Option<Node> {
        if self.error.is_some() {
            return None;
        }
        let workers: Vec<Worker<Arc<Ring<S, M, W>>>> =
            match self.graph.work_group_vec(handlers.len(), deps) {
                Ok(w) => w,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
        let node = workers[0].group();
        for (mut worker, handler) in workers.into_iter().zip(handlers) {
            self.push_job(handler, move |f| worker.wait(f));
        }
        Some(node)
    }

    /// Adds a consumer straight after the producer, starting a new stage.
    pub fn handle_events_with<H: EventHandler<S::Item>>(mut self, handler: H) -> Self {
        self.deps.clear();
        self.stage.clear();
        if let Some(n) = self.add_consumer(&[], handler) {
            self.stage.push(n);
        }
        self
    }

    /// Adds a consumer in parallel with the last one added: same
    /// dependencies, same stage.
    pub fn and<H: EventHandler<S::Item>>(mut self, handler: H) -> Self {
        let deps = self.deps.clone();
        if let Some(n) = self.add_consumer(&deps, handler) {
            self.stage.push(n);
        }
        self
    }

    /// Adds a consumer after every node of the current stage, and makes it
    /// the new stage: `a.then(b)` is a pipeline, `a.and(b).then(c)` a
    /// diamond.
    pub fn then<H: EventHandler<S::Item>>(mut self, handler: H) -> Self {
        self.deps = core::mem::take(&mut self.stage);
        let deps = self.deps.clone();
        if let Some(n) = self.add_consumer(&deps, handler) {
            self.stage.push(n);
        }
        self
    }

    /// Adds a work group straight after the producer, one thread per
    /// handler; each event goes to exactly one of them. Starts a new stage.
    pub fn handle_events_with_workers<H: EventHandler<S::Item>>(
        mut self,
        handlers: Vec<H>,
    ) -> Self {
        self.deps.clear();
        self.stage.clear();
        if let Some(n) = self.add_workers(&[], handlers) {
            self.stage.push(n);
        }
        self
    }

    /// Adds a work group after every node of the current stage, and makes it
    /// the new stage.
    pub fn then_workers<H: EventHandler<S::Item>>(mut self, handlers: Vec<H>) -> Self {
        self.deps = core::mem::take(&mut self.stage);
        let deps = self.deps.clone();
        if let Some(n) = self.add_workers(&deps, handlers) {
            self.stage.push(n);
        }
        self
    }

    #[allow(clippy::type_complexity)]
    fn start(mut self) -> Result<(Graph<Arc<Ring<S, M, W>>>, Disruptor<S, M, W>), BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let ring = self.graph.ring.clone();
        let mut threads = Vec::with_capacity(self.jobs.len());
        for (name, job) in self.jobs.drain(..) {
            match std::thread::Builder::new().name(name).spawn(job) {
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

impl<S, W> Builder<S, Single, W>
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
    /// work group of zero handlers).
    #[allow(clippy::type_complexity)]
    pub fn build_single(
        self,
    ) -> Result<(Producer<Arc<Ring<S, Single, W>>>, Disruptor<S, Single, W>), BuildError> {
        let (graph, d) = self.start()?;
        Ok((graph.single_producer(), d))
    }
}

impl<S, W> Builder<S, Multi, W>
where
    S: Storage + Send + Sync + 'static,
    S::Item: Send + Sync + 'static,
    W: WaitStrategy + 'static,
{
    /// Starts the consumer threads and returns a producer handle to clone.
    ///
    /// # Errors
    ///
    /// As for [`build_single`](Builder::build_single).
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
        Ok((graph.multi_producer(), d))
    }
}
