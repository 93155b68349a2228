//! A task queue: values pushed to one handler on a few worker threads (the
//! "async task" of Go worker-pool libraries), with a bounded queue, an
//! error callback, a flush and a draining close.
//!
//! It is a [`Batcher`] configured for it (which is why it lives here, not
//! in `pool`: flush, ordered delivery and the draining close are the
//! batcher's): the queue is the batcher's multi-producer ring, the workers
//! are its flusher threads, and each worker takes what is waiting (natural
//! batching, no linger) and calls the handler once per value, catching
//! panics value by value. So a handler's panic never costs a worker, order is kept with one
//! worker, and `close` (or `Drop`) hands every accepted value to the handler
//! before it returns.
//!
//! Every piece of user code may panic without costing a worker or a value:
//! the handler (the value counts as panicked and the error callback hears
//! of it), a value's or an error's `Drop` (inside the handler or the error
//! callback), the error callback itself and a panic payload's `Drop` (both
//! caught and discarded). Each accepted value is handed to the handler
//! exactly once.

use alloc::string::String;
use core::convert::Infallible;
use core::fmt;
use core::marker::PhantomData;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;

use super::{Batcher, BuildError, Closed, TryPushError, MAX_FLUSHERS};
use crate::sync::{AtomicUsize, CachePadded, HandleArc, Ordering};
use crate::threaded::unwind::{drop_quietly, panic_message, Payload};

/// What the error callback learns about a value the handler did not
/// handle. The value itself was moved into the handler and is gone; a
/// handler that wants it back returns it inside its error (`E`).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use latchfree::batch::{TaskError, TaskQueue};
///
/// let errors = Arc::new(Mutex::new(Vec::new()));
/// let e = errors.clone();
/// let q = TaskQueue::builder()
///     .on_error(move |err: TaskError<(u32, &'static str)>| {
///         if let TaskError::Failed((value, why)) = err {
///             // The handler gave the value back inside its error.
///             e.lock().unwrap().push((value, why));
///         }
///     })
///     .build(|v: u32| if v == 3 { Err((v, "three")) } else { Ok(()) })
///     .unwrap();
/// for v in 0..5 {
///     q.push(v).unwrap();
/// }
/// q.close();
/// assert_eq!(*errors.lock().unwrap(), [(3, "three")]);
/// ```
pub enum TaskError<E> {
    /// The handler returned this error.
    Failed(E),
    /// The handler panicked with this payload (the worker survives).
    Panicked(Payload),
}

impl<E: fmt::Debug> fmt::Debug for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            Self::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => write!(f, "the handler failed: {e}"),
            Self::Panicked(p) => match panic_message(p) {
                Some(m) => write!(f, "the handler panicked: {m}"),
                None => f.write_str("the handler panicked"),
            },
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for TaskError<E> {}

/// A point-in-time view of a [`TaskQueue`]'s counters; stale under
/// concurrency. Once the queue is closed,
/// `pushed == handled + failed + panicked`.
///
/// ```
/// use latchfree::batch::TaskQueue;
///
/// let q = TaskQueue::with_handler(|v: u32| if v < 8 { Ok(()) } else { Err(v) });
/// for v in 0..10 {
///     q.push(v).unwrap();
/// }
/// q.close();
/// let m = q.metrics();
/// assert_eq!((m.pushed, m.handled, m.failed), (10, 8, 2));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    /// Values accepted.
    pub pushed: usize,
    /// Values the handler returned `Ok` for.
    pub handled: usize,
    /// Values the handler returned `Err` for.
    pub failed: usize,
    /// Values the handler panicked on.
    pub panicked: usize,
    /// Pushes refused (full or closed).
    pub rejected: usize,
}

#[derive(Default)]
struct Counters {
    handled: CachePadded<AtomicUsize>,
    failed: AtomicUsize,
    panicked: AtomicUsize,
}

/// User callbacks are owned, not synchronised on: the plain `Arc`.
type OnError<E> = HandleArc<dyn Fn(TaskError<E>) + Send + Sync>;

/// Configures and starts a [`TaskQueue`].
///
/// ```
/// use latchfree::batch::TaskQueue;
///
/// let q = TaskQueue::builder()
///     .workers(2)
///     .queue_capacity(256)
///     .thread_name("audit")
///     .on_error(|e| eprintln!("audit: {e}"))
///     .build(|v: u32| if v % 2 == 0 { Ok(()) } else { Err("odd") }).unwrap();
/// for v in 0..10 {
///     q.push(v).unwrap();
/// }
/// q.close();
/// let m = q.metrics();
/// assert_eq!((m.handled, m.failed), (5, 5));
/// ```
pub struct TaskQueueBuilder<T, E> {
    workers: usize,
    capacity: usize,
    name: String,
    on_error: Option<OnError<E>>,
    _values: PhantomData<fn(T)>,
}

impl<T, E> fmt::Debug for TaskQueueBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskQueueBuilder")
            .field("workers", &self.workers)
            .field("capacity", &self.capacity)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, E: 'static> Default for TaskQueueBuilder<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static, E: 'static> TaskQueueBuilder<T, E> {
    /// Defaults: one worker (values handled in push order), 1024 queued
    /// values, threads named `latchfree-task-N`, failures and panics
    /// printed to stderr.
    pub fn new() -> Self {
        Self {
            workers: 1,
            capacity: 1024,
            name: String::from("latchfree-task"),
            on_error: None,
            _values: PhantomData,
        }
    }

    /// Worker threads (1..=[`MAX_FLUSHERS`]). With one, values are handled in the order
    /// they were accepted; with more, in parallel and in no set order, each
    /// worker taking one value at a time so a slow value holds up no other.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.clamp(1, MAX_FLUSHERS);
        self
    }

    /// Values that may wait (rounded up to a power of two). When full,
    /// `push` waits, `try_push` refuses and `push_timeout` waits a while.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Worker threads are named `<prefix>-<n>`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Receives the error of every value the handler returned `Err` for or
    /// panicked on (see [`TaskError`]). Runs on the worker; a panic in it
    /// is caught and ignored.
    pub fn on_error(mut self, f: impl Fn(TaskError<E>) + Send + Sync + 'static) -> Self {
        self.on_error = Some(HandleArc::new(f));
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if the capacity is too large for a ring or a thread
    /// cannot start (then none is left running).
    pub fn build<H>(self, handler: H) -> Result<TaskQueue<T>, BuildError>
    where
        H: Fn(T) -> Result<(), E> + Send + Sync + 'static,
    {
        let counters = HandleArc::new(Counters::default());
        let on_error: OnError<E> = self.on_error.unwrap_or_else(|| {
            HandleArc::new(|e: TaskError<E>| {
                let why = match &e {
                    TaskError::Failed(_) => "failed",
                    TaskError::Panicked(p) => panic_message(p).unwrap_or("panicked"),
                };
                std::eprintln!("latchfree task: a value was not handled: {why}");
            })
        });
        let handler = HandleArc::new(handler);
        let c = counters.clone();
        let run = move |batch: &mut alloc::vec::Vec<T>| -> Result<(), Infallible> {
            let (mut ok, mut failed, mut panicked) = (0, 0, 0);
            for v in batch.drain(..) {
                let err = match catch_unwind(AssertUnwindSafe(|| handler(v))) {
                    Ok(Ok(())) => {
                        ok += 1;
                        continue;
                    }
                    Ok(Err(e)) => {
                        failed += 1;
                        TaskError::Failed(e)
                    }
                    Err(p) => {
                        panicked += 1;
                        TaskError::Panicked(p)
                    }
                };
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| on_error(err))) {
                    // Nowhere left to report it; its payload's `Drop` may
                    // panic too.
                    drop_quietly(p);
                }
            }
            // Relaxed: metrics; one update per batch, not per value.
            c.handled.fetch_add(ok, Ordering::Relaxed);
            if failed > 0 {
                c.failed.fetch_add(failed, Ordering::Relaxed);
            }
            if panicked > 0 {
                c.panicked.fetch_add(panicked, Ordering::Relaxed);
            }
            Ok(())
        };
        let batcher = Batcher::builder::<Infallible>()
            .max_items(if self.workers == 1 { 64 } else { 1 })
            .max_delay(Duration::ZERO)
            .queue_capacity(self.capacity)
            .flushers(self.workers)
            .thread_name(self.name)
            .build(run)?;
        Ok(TaskQueue { batcher, counters })
    }
}

/// Values pushed to one handler on worker threads, with a bounded queue,
/// an error callback, a flush and a draining close.
///
/// A [`Batcher`] configured for it: its ring is the queue and its flushers
/// are the workers, each taking what is waiting
/// and calling the handler once per value, catching panics value by value.
/// A panic never costs a worker; with one worker values are handled in
/// the order they were accepted.
///
/// Dropping it is [`close`](Self::close): every accepted value is handled
/// first.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use latchfree::batch::{TaskQueue, TryPushError};
///
/// let sum = Arc::new(AtomicUsize::new(0));
/// let s = sum.clone();
/// let q = TaskQueue::with_handler(move |v: usize| {
///     s.fetch_add(v, Ordering::Relaxed);
///     Ok::<(), ()>(())
/// });
/// for v in 1..=100 {
///     q.push(v).unwrap();
/// }
/// q.flush(); // everything pushed so far was handled
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// q.close();
/// assert!(matches!(q.try_push(1), Err(TryPushError::Closed(1))));
/// ```
pub struct TaskQueue<T> {
    batcher: Batcher<T>,
    counters: HandleArc<Counters>,
}

impl<T> fmt::Debug for TaskQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskQueue").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> TaskQueue<T> {
    /// Starts configuring a task queue.
    pub fn builder<E: 'static>() -> TaskQueueBuilder<T, E> {
        TaskQueueBuilder::new()
    }

    /// A task queue with the [`TaskQueueBuilder`] defaults (one worker,
    /// order kept, 1024 queued values, errors printed to stderr).
    ///
    /// # Panics
    ///
    /// If the worker thread cannot be started.
    pub fn with_handler<E, H>(handler: H) -> Self
    where
        E: 'static,
        H: Fn(T) -> Result<(), E> + Send + Sync + 'static,
    {
        match TaskQueueBuilder::new().build(handler) {
            Ok(q) => q,
            Err(e) => panic!("TaskQueue::with_handler: {e}"),
        }
    }

    /// Adds `value`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`Closed`] with the value once the queue is closed (including while
    /// waiting).
    pub fn push(&self, value: T) -> Result<(), Closed<T>> {
        self.batcher.push(value)
    }

    /// Adds `value` if there is room now.
    ///
    /// # Errors
    ///
    /// `Full(value)` or `Closed(value)`.
    pub fn try_push(&self, value: T) -> Result<(), TryPushError<T>> {
        self.batcher.try_push(value)
    }

    /// Adds `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// `Full(value)` after the wait, or `Closed(value)`.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), TryPushError<T>> {
        self.batcher.push_timeout(value, timeout)
    }

    /// Returns once every value accepted before this call has been handed
    /// to the handler (and the handler returned).
    pub fn flush(&self) {
        self.batcher.flush();
    }

    /// Stops accepting (waiting pushers get `Closed`), hands every accepted
    /// value to the handler, and joins the workers. Idempotent.
    pub fn close(&self) {
        self.batcher.close();
    }

    /// Whether the queue stopped accepting.
    pub fn is_closed(&self) -> bool {
        self.batcher.is_closed()
    }

    /// The counters now.
    pub fn metrics(&self) -> TaskMetrics {
        let b = self.batcher.metrics();
        let c = &self.counters;
        TaskMetrics {
            pushed: b.accepted,
            handled: c.handled.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
            rejected: b.rejected,
        }
    }
}
