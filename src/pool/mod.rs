//! An elastic thread pool on a multi-producer ring (`std` only).
//!
//! # Design
//!
//! The job queue is a [`Ring`] of take-once slots in multi-producer mode
//! whose only consumer node is a work group with one gate per *possible*
//! worker (`max_workers`, fixed at build time, at most 63). Each job is
//! claimed by exactly one worker; the worker moves the job out of its slot
//! inside the claim (so the slot is released before the job runs, and the
//! queue capacity is the ring's whatever the jobs do), then runs it outside.
//! Worker handles of threads that are not running sit in a free list; an
//! idle handle holds no claim (see [`Worker`]), so parked handles never stall
//! submitters.
//!
//! Closing the ring is graceful shutdown: every later (and every waiting)
//! publish fails with `Closed`, and workers drain what was published, then
//! see `Closed`. `shutdown_now` first sets a *discard* flag so workers hand
//! the jobs they take back instead of running them.
//!
//! # Submitting
//!
//! Each submitting thread publishes through its own *lane* (a private
//! clone of the producer handle in a small thread-local cache, see
//! `stripes`), so a submit takes no lock; it counts itself in the lane with
//! a plain store before publishing (for [`ThreadPool::wait_idle`]). A job
//! is one allocation: the closure, boxed once (a closure that arrives as a
//! `Box<dyn FnOnce() + Send>` is kept as it is), in a 40-byte [`Job`]
//! whose id is its sequence in the queue.
//!
//! # Batching
//!
//! A worker claims jobs from the work group in batches when the queue is
//! deep: a claim that came back full doubles the next one (up to 16), and
//! a claimed batch that took longer than 20 µs to run drops it back to a
//! single job. So short jobs cost one claim per batch, and a slow job
//! holds up at most the few claimed with it, once.
//!
//! # Sleeping and waking
//!
//! The ring's own wait strategy ([`Parking`]) is used only by submitters
//! blocked on a full queue. Idle workers sleep on the pool's condition
//! variable, so an idle pool costs no CPU. The protocol has no lost
//! wake-ups:
//!
//! - a worker about to sleep takes the sleep lock, counts itself in
//!   `sleepers`, issues a `SeqCst` fence, and polls the ring once more; only
//!   if that finds nothing does it wait on the condition variable (which
//!   releases the lock atomically);
//! - a submitter publishes, issues a `SeqCst` fence, and reads `sleepers`; if
//!   non-zero it takes the sleep lock and signals one sleeper.
//!
//! By the two fences, either the submitter sees the sleeper (and, through
//! the lock, signals it after it is waiting) or the sleeper's poll sees the
//! job. A worker that stops sleeping (woken, timed out, retiring) uncounts
//! itself, fences and polls again before leaving, so a signal aimed at it is
//! never lost either. When nobody sleeps and fewer than `max` workers live,
//! the submitter starts a worker.
//!
//! A worker that has just found jobs back to back, or slept only briefly,
//! spins and yields a little before it sleeps, so a steady stream never
//! pays for a wake-up; one whose last sleep was long (over 200 µs: jobs
//! are sparse) goes back to sleep right after its job, so an idle pool
//! costs one wake-up per job and nothing more.
//!
//! # What it does not do
//!
//! Rust cannot kill a thread: a running task is asked to stop through its
//! [`CancelToken`], and shutdowns wait for running tasks to return.

mod job;
pub(crate) mod stripes;
// The task queue sits on the batcher, which loom models in parts only.
#[cfg(not(latchfree_loom))]
mod task;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;

pub use self::job::{CancelToken, Job, JoinError, JoinHandle, Payload};
use self::job::{Ran, Start};
#[cfg(not(latchfree_loom))]
pub use self::task::{PostError, TaskError, TaskMetrics, TaskQueue, TaskQueueBuilder};
use crate::doorbell::{Check, Doorbell};
use crate::ring::{Heap, Multi, MultiProducer, Parking, Poll, PublishError, Ring, Worker};
use crate::sync::blocking::{Condvar, Mutex, MutexGuard};
use crate::sync::time::{self, Instant};
use crate::sync::{fence, thread, Arc, AtomicBool, AtomicUsize, CachePadded, Ordering, UnsafeCell};

/// An idle worker polls this many times with exponentially growing spins
/// between (31 spin hints in all), then
/// (Under loom, none: each spin is a yield there, and the spins only time
/// the sleep, they decide nothing.)
const SPIN_ROUNDS: u32 = if cfg!(latchfree_loom) { 0 } else { 5 };
/// this many times with a yield between, before it goes to sleep. On a
/// machine with fewer cores than threads the yields matter most: they hand
/// the core to the submitter that is about to publish the next job.
const YIELD_ROUNDS: u32 = if cfg!(latchfree_loom) { 1 } else { 8 };
/// A worker that slept longer than this before a job came treats jobs as
/// sparse: it sleeps again right after its job, without spinning.
const SPARSE_SLEEP: Duration = Duration::from_micros(200);
/// The most jobs a worker claims at once (module docs on batching).
const MAX_CLAIM: usize = 16;
/// A claimed batch that ran slower than this drops the next claim back to
/// a single job; a full claim that ran faster doubles it.
const CLAIM_BUDGET: Duration = Duration::from_micros(20);

/// A take-once slot: the producer that claimed it writes `Some(job)`, the
/// one worker that claimed its sequence takes it out.
struct Slot(UnsafeCell<Option<Job>>);

impl Default for Slot {
    fn default() -> Self {
        Slot(UnsafeCell::new(None))
    }
}

// SAFETY: the ring's only consumer node is one work group, so a published
// slot is accessed by exactly one worker (the one whose claim CAS took its
// sequence) and, before that, only by the producer that claimed it; the ring
// orders the two (stamp Release/Acquire) and keeps the next producer out
// until the worker has released the slot. `Job` is `Send`.
unsafe impl Sync for Slot {}

impl Slot {
    /// Takes the job out.
    ///
    /// # Safety
    ///
    /// The caller must be the worker that claimed this slot's sequence,
    /// inside the poll that claimed it.
    unsafe fn take(&self) -> Option<Job> {
        // SAFETY: by the caller's contract nobody else touches the slot now.
        self.0.with_mut(|p| unsafe { (*p).take() })
    }
}

type Queue = Ring<Heap<Slot>, Multi, Parking>;
type Handle = Worker<Arc<Queue>>;
type Producer = MultiProducer<Arc<Queue>>;

// User callbacks are owned, not synchronised on: the plain `Arc` (loom's
// cannot hold a `dyn`).
type Hook = alloc::sync::Arc<dyn Fn(usize) + Send + Sync>;
type PanicHook = alloc::sync::Arc<dyn Fn(&TaskInfo, &Payload) + Send + Sync>;

/// What the panic handler learns about the task that panicked.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use latchfree::pool::ThreadPool;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let pool = ThreadPool::builder()
///     .min_workers(1)
///     .max_workers(1)
///     .panic_handler(move |info, _payload| s.lock().unwrap().push(info.id))
///     .build();
/// pool.execute(|| panic!("boom")).unwrap();
/// pool.shutdown();
/// assert_eq!(seen.lock().unwrap().len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// The task's identity (see [`Job::id`]).
    pub id: usize,
    /// The name of the worker thread it ran on.
    pub thread: Option<String>,
}

/// Why a job was not accepted; the job comes back unrun.
///
/// ```
/// use latchfree::pool::{SubmitError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// pool.shutdown();
/// let mut ran = false;
/// match pool.try_execute(|| println!("hello")) {
///     // The closure comes back unrun: run it here instead.
///     Err(SubmitError::Closed(f)) => {
///         f();
///         ran = true;
///     }
///     _ => unreachable!(),
/// }
/// assert!(ran);
/// ```
pub enum SubmitError<F> {
    /// The queue is full (from `try_execute`, or `execute_timeout` after its
    /// wait).
    Full(F),
    /// The pool is shutting down or shut down.
    Closed(F),
}

impl<F> SubmitError<F> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> F {
        match self {
            Self::Full(f) | Self::Closed(f) => f,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the pool's queue is full"),
            Self::Closed(_) => f.write_str("the pool is shut down"),
        }
    }
}

impl<F> core::error::Error for SubmitError<F> {}

/// [`ThreadPool::wait_idle`] was called from one of the pool's own threads,
/// where it could never return.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::pool::{ThreadPool, WaitIdleError};
///
/// let pool = Arc::new(ThreadPool::new(1));
/// let p = pool.clone();
/// let h = pool.spawn(move || p.wait_idle()).unwrap();
/// assert_eq!(h.join().unwrap(), Err(WaitIdleError));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitIdleError;

impl fmt::Display for WaitIdleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wait_idle called from a worker of the same pool")
    }
}

impl core::error::Error for WaitIdleError {}

/// A point-in-time view of the pool's counters; stale under concurrency.
///
/// ```
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// for _ in 0..100 {
///     pool.execute(|| {}).unwrap();
/// }
/// pool.wait_idle().unwrap();
/// let m = pool.metrics();
/// assert_eq!((m.completed, m.queued, m.running), (100, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Live worker threads.
    pub workers: usize,
    /// Workers sleeping for lack of work.
    pub idle: usize,
    /// Jobs accepted and not yet taken by a worker.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Jobs that ran to completion (panicked ones not included).
    pub completed: usize,
    /// Jobs that panicked.
    pub panicked: usize,
    /// Submissions refused (full or closed).
    pub rejected: usize,
    /// Jobs not run because their deadline passed (or they were cancelled)
    /// before a worker reached them.
    pub timed_out: usize,
}

/// Configures and starts a [`ThreadPool`].
///
/// ```
/// use std::time::Duration;
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::builder()
///     .min_workers(1)
///     .max_workers(4)
///     .keep_alive(Duration::from_secs(10))
///     .queue_capacity(256)
///     .thread_name("io")
///     .build();
/// let h = pool.spawn(|| std::thread::current().name().map(String::from)).unwrap();
/// assert!(h.join().unwrap().unwrap().starts_with("io-"));
/// ```
pub struct Builder {
    min: usize,
    max: usize,
    keep_alive: Duration,
    capacity: usize,
    name: String,
    stack_size: Option<usize>,
    on_start: Option<Hook>,
    on_exit: Option<Hook>,
    on_panic: Option<PanicHook>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("min", &self.min)
            .field("max", &self.max)
            .field("keep_alive", &self.keep_alive)
            .field("capacity", &self.capacity)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The most workers a pool can have: a ring has 64 gates, one of which is
/// the work group's claim.
pub const MAX_WORKERS: usize = crate::ring::MAX_GATES - 1;

impl Builder {
    /// Defaults: as many workers as cores (min = max), 60 s keep-alive,
    /// 1024 queued jobs, threads named `latchfree-pool-N`.
    pub fn new() -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            min: n,
            max: n,
            keep_alive: Duration::from_secs(60),
            capacity: 1024,
            name: String::from("latchfree-pool"),
            stack_size: None,
            on_start: None,
            on_exit: None,
            on_panic: None,
        }
    }

    /// Workers kept alive while idle (default: the core count). Started
    /// eagerly.
    pub fn min_workers(mut self, n: usize) -> Self {
        self.min = n;
        self
    }

    /// The most workers (at least 1, at most [`MAX_WORKERS`]); workers above
    /// `min` are started when jobs queue up and nobody is idle. This is also
    /// the ceiling for [`ThreadPool::resize`].
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max = n;
        self
    }

    /// How long a worker above `min` waits for work before it retires.
    /// Shorter frees threads sooner; longer avoids restarting them.
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = d;
        self
    }

    /// Jobs that may wait in the queue, rounded up to a power of two. A
    /// bigger queue absorbs bursts; a smaller one pushes back sooner.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Worker threads are named `<prefix>-<n>`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Stack size of worker threads (the platform default otherwise).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Called on each worker thread when it starts, with its index.
    pub fn on_thread_start(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_start = Some(alloc::sync::Arc::new(f));
        self
    }

    /// Called on each worker thread just before it exits, with its index.
    pub fn on_thread_exit(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_exit = Some(alloc::sync::Arc::new(f));
        self
    }

    /// Called on the worker when an `execute`d job panics, with the task's
    /// identity and payload. (A `spawn`ed job's panic goes to its
    /// [`JoinHandle`].) The worker survives either way.
    pub fn panic_handler(
        mut self,
        f: impl Fn(&TaskInfo, &Payload) + Send + Sync + 'static,
    ) -> Self {
        self.on_panic = Some(alloc::sync::Arc::new(f));
        self
    }

    /// Starts the pool with its `min` workers.
    ///
    /// # Panics
    ///
    /// If `max` is 0 or above [`MAX_WORKERS`], `min > max`, the capacity is
    /// 0 or too large for a ring, or a thread cannot be started.
    pub fn build(self) -> ThreadPool {
        assert!(
            (1..=MAX_WORKERS).contains(&self.max),
            "max_workers must be in 1..={MAX_WORKERS}"
        );
        assert!(
            self.min <= self.max,
            "min_workers must not exceed max_workers"
        );
        assert!(self.capacity > 0, "queue capacity must be positive");
        let cap = self.capacity.next_power_of_two();
        let ring = Arc::new(Queue::with_wait(
            Heap::builder(cap)
                .gates(self.max + 1)
                .build()
                .expect("queue capacity too large"),
            Parking::with_max_park(Duration::from_micros(200)),
        ));
        let mut graph = Ring::graph(ring.clone()).expect("fresh ring");
        let handles: Vec<(usize, Handle)> = graph
            .work_group_vec(self.max, &[])
            .expect("gates were sized for the group")
            .into_iter()
            .enumerate()
            .collect();
        let producer = graph.multi_producer().expect("the graph has its consumers");
        let producers = stripes::Lanes::new(producer);
        let inner = Arc::new(Inner {
            ring,
            producers,
            free: Mutex::new(handles),
            threads: Mutex::new(Threads {
                closed: false,
                joins: Vec::new(),
                next_index: 0,
            }),
            bell: Doorbell::new(),
            idle_lock: Mutex::new(()),
            idle_cond: Condvar::new(),
            idle_waiters: CachePadded::new(AtomicUsize::new(0)),
            stats: (0..self.max)
                .map(|_| CachePadded::new(WorkerStats::default()))
                .collect(),
            rejected: AtomicUsize::new(0),
            min: AtomicUsize::new(self.min),
            max: AtomicUsize::new(self.max),
            cap: self.max,
            workers: AtomicUsize::new(0),
            discard: Arc::new(AtomicBool::new(false)),
            returned: Mutex::new(Vec::new()),
            keep_alive: self.keep_alive,
            name: self.name,
            stack_size: self.stack_size,
            on_start: self.on_start,
            on_exit: self.on_exit,
            on_panic: self.on_panic,
        });
        for _ in 0..self.min {
            if Inner::try_grow(&inner, usize::MAX) {
                continue;
            }
            panic!("could not start a pool worker");
        }
        ThreadPool { inner }
    }
}

struct Threads {
    /// Set by shutdown: no thread starts afterwards.
    closed: bool,
    joins: Vec<thread::JoinHandle<()>>,
    next_index: usize,
}

struct Inner {
    ring: Arc<Queue>,
    /// Producer handles, one lane per submitting thread; their counters
    /// count submissions started (before the publish, so no worker can
    /// finish a job before it is counted).
    producers: stripes::Lanes<Producer>,
    /// Worker handles not owned by a thread, with their index (which also
    /// picks their `stats` block).
    free: Mutex<Vec<(usize, Handle)>>,
    threads: Mutex<Threads>,
    /// Where idle workers sleep.
    bell: Doorbell,
    idle_lock: Mutex<()>,
    idle_cond: Condvar,
    /// Threads in `wait_idle` or `shutdown_timeout`.
    idle_waiters: CachePadded<AtomicUsize>,
    /// One block per worker handle, written only by the thread holding the
    /// handle: no shared counter on the job path.
    stats: Box<[CachePadded<WorkerStats>]>,
    /// Submissions refused; with the workers' counts these are the
    /// submissions finished with.
    rejected: AtomicUsize,
    min: AtomicUsize,
    max: AtomicUsize,
    /// `max` at build time: the number of worker handles.
    cap: usize,
    /// Live worker threads, `0..=cap`: incremented before a thread starts,
    /// decremented by a thread that has decided to exit.
    workers: AtomicUsize,
    /// Set by `shutdown_now` (and an expired `shutdown_timeout`): workers
    /// return the jobs they take instead of running them. Shared with every
    /// cancel token, so running tasks see it too.
    discard: Arc<AtomicBool>,
    returned: Mutex<Vec<Job>>,
    keep_alive: Duration,
    name: String,
    stack_size: Option<usize>,
    on_start: Option<Hook>,
    on_exit: Option<Hook>,
    on_panic: Option<PanicHook>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only means a panic elsewhere while holding the lock; every
    // critical section here leaves the data consistent at each step.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(not(latchfree_loom))]
thread::thread_local! {
    /// The `Inner` address of the pool this thread works for, or 0.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}

// Loom's `thread_local!` takes no `const` initialisers.
#[cfg(latchfree_loom)]
thread::thread_local! {
    static CURRENT_POOL: Cell<usize> = Cell::new(0);
}

/// Why a worker stopped waiting.
enum Woke {
    Job(Job),
    Retire,
    Closed,
}

impl Inner {
    fn new_job(
        &self,
        deadline: Option<Instant>,
        cancel: Option<CancelToken>,
        body: job::Body,
    ) -> Job {
        let extra = (deadline.is_some() || cancel.is_some())
            .then(|| Box::new(job::Extra { deadline, cancel }));
        Job {
            // Set from the queue sequence when a worker takes the job.
            id: usize::MAX,
            extra,
            body,
        }
    }

    /// Submissions finished with: run, panicked, expired, handed back by a
    /// shutdown, or refused.
    fn finished(&self) -> usize {
        let mut f = self.rejected.load(Ordering::SeqCst);
        for s in self.stats.iter() {
            f += s.finished();
        }
        f
    }

    /// Nothing queued, running or being submitted. The submission count
    /// is summed on both sides of the finished sum: if it did not move,
    /// no lane counter moved in between (each only grows), so every
    /// submission counted in it was finished with. No job finishes before
    /// it is counted: a lane counts (Release) before it publishes, and a
    /// worker that took the job counts it finished (Release) after, which
    /// `finished` reads with Acquire before the second sum.
    fn is_idle(&self) -> bool {
        let s1 = self.producers.counted();
        let f = self.finished();
        let s2 = self.producers.counted();
        s1 == s2 && f >= s1
    }

    /// Waits until idle or `deadline`; returns whether idle.
    fn wait_idle_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_idle() {
                return true;
            }
            let mut nap = Duration::from_millis(1);
            if let Some(d) = deadline {
                let now = time::now();
                if now >= d {
                    return false;
                }
                nap = nap.min(d - now);
            }
            self.idle_waiters.fetch_add(1, Ordering::SeqCst);
            // SeqCst fence: pairs with the doorbell's fence before a
            // worker's check reads `idle_waiters` (`signal_idle_waiters`):
            // either it sees us and signals, or our `is_idle` below sees
            // the jobs it finished before. The RMW alone does not order our
            // later loads of the counters (loom found the lost signal,
            // which only the timed wait used to cover).
            fence(Ordering::SeqCst);
            let g = lock(&self.idle_lock);
            // Workers signal when they run out of work (under this lock);
            // the timed wait covers the rest.
            if !self.is_idle() {
                drop(self.idle_cond.wait_timeout(g, nap));
            } else {
                drop(g);
            }
            self.idle_waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn signal_idle_waiters(&self) {
        if self.idle_waiters.load(Ordering::SeqCst) > 0 {
            let g = lock(&self.idle_lock);
            self.idle_cond.notify_all();
            drop(g);
        }
    }

    /// Publishes `job`, waiting up to `wait` (None: forever, Some(0): not
    /// at all). Returns the job's sequence in the queue (its id).
    fn submit(this: &Arc<Self>, job: Job, wait: Option<Duration>) -> Result<u64, SubmitError<Job>> {
        let slot = Slot::from(job);
        // Counted once, before the first publish attempt, so a worker can
        // never finish the job before it is counted.
        let r = this.producers.with(|lane| {
            lane.count();
            match wait {
                None => lane.producer.push(slot),
                Some(_) => lane.producer.try_push(slot),
            }
        });
        let r = match (r, wait) {
            (Err(PublishError::Full(slot)), Some(d)) if !d.is_zero() => this.retry(slot, d),
            (r, _) => r,
        };
        match r {
            Ok(seq) => {
                Inner::wake_one(this);
                Ok(seq)
            }
            Err(e) => {
                // SeqCst: part of the `is_idle` sum.
                this.rejected.fetch_add(1, Ordering::SeqCst);
                Err(match e {
                    PublishError::Full(s) => SubmitError::Full(s.into_job()),
                    PublishError::Timeout(s) => SubmitError::Full(s.into_job()),
                    PublishError::Closed(s)
                    | PublishError::Halted(s)
                    | PublishError::TooLarge(s) => SubmitError::Closed(s.into_job()),
                })
            }
        }
    }

    /// Tries again (not counting again) until `d` has passed.
    #[cold]
    fn retry(&self, mut slot: Slot, d: Duration) -> Result<u64, PublishError<Slot>> {
        let deadline = time::now() + d;
        let mut nap = Duration::from_micros(10);
        loop {
            let now = time::now();
            if now >= deadline {
                return Err(PublishError::Full(slot));
            }
            thread::park_timeout(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(1));
            match self.producers.with(|lane| lane.producer.try_push(slot)) {
                Err(PublishError::Full(s)) => slot = s,
                other => return other,
            }
        }
    }

    /// After a publish: wake a sleeper, or start a worker if none sleeps.
    fn wake_one(this: &Arc<Self>) {
        // The doorbell's fences (module docs): it sees a sleeper, or the
        // sleeper sees our job.
        if !this.bell.ring() {
            // Relaxed loads: a stale answer only starts a worker late (the
            // busy workers will reach the job) or refuses at the CAS.
            Inner::try_grow(this, this.max.load(Ordering::Relaxed));
        }
    }

    fn wake_all(&self) {
        self.bell.ring_all();
    }

    /// Starts a worker if fewer than `limit` (and `cap`) live.
    fn try_grow(this: &Arc<Self>, limit: usize) -> bool {
        let limit = limit.min(this.cap);
        let mut w = this.workers.load(Ordering::Relaxed);
        loop {
            if w >= limit {
                return false;
            }
            // Relaxed: the count is its own datum; the free-list mutex
            // orders the handle hand-over.
            match this
                .workers
                .compare_exchange_weak(w, w + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        let mut threads = lock(&this.threads);
        // Our count is in, so a handle is free or on its way back: the
        // count stays at or below the handles, and a thread gives its
        // handle back (`exit`) only after uncounting itself. Wait for one
        // rather than give up: a retiring worker may have uncounted itself
        // after missing our job in its last look, and a submitter giving up
        // here would strand the job (loom found it). The wait is a few
        // steps of that worker, which holds no lock we hold.
        let handle = loop {
            if threads.closed {
                break None;
            }
            if let Some(h) = lock(&this.free).pop() {
                break Some(h);
            }
            thread::yield_now();
        };
        let Some((slot, handle)) = handle else {
            drop(threads);
            this.workers.fetch_sub(1, Ordering::SeqCst);
            return false;
        };
        let index = threads.next_index;
        threads.next_index += 1;
        let mut b = thread::Builder::new().name(alloc::format!("{}-{index}", this.name));
        if let Some(s) = this.stack_size {
            b = b.stack_size(s);
        }
        let me = this.clone();
        // The handle travels through a shared cell so a failed spawn can put
        // it back on the free list instead of dropping it with the closure.
        let tx = Arc::new(Mutex::new(Some(handle)));
        let tx2 = tx.clone();
        match b.spawn(move || {
            let h = lock(&tx2).take();
            if let Some(h) = h {
                worker_main(me, h, slot, index);
            }
        }) {
            Ok(j) => {
                threads.joins.retain(|j| !thread::is_finished(j));
                threads.joins.push(j);
                true
            }
            Err(_) => {
                if let Some(h) = lock(&tx).take() {
                    lock(&this.free).push((slot, h));
                }
                drop(threads);
                this.workers.fetch_sub(1, Ordering::SeqCst);
                false
            }
        }
    }

    /// Runs (or, when discarding, returns) one job taken from the queue,
    /// counting it in `stats`, the block of the handle the caller holds.
    fn handle(&self, job: Job, stats: &WorkerStats, thread_name: Option<&str>) {
        bump(&stats.taken);
        if self.discard.load(Ordering::SeqCst) {
            lock(&self.returned).push(job);
            bump(&stats.returned);
            return;
        }
        let expired = job.expired();
        let Job { id, body, .. } = job;
        if expired {
            let _ = catch_unwind(AssertUnwindSafe(|| body.start(Start::Expired)));
            bump(&stats.timed_out);
            return;
        }
        stats.running.store(1, Ordering::Relaxed);
        let ran = catch_unwind(AssertUnwindSafe(|| body.start(Start::Run)))
            .unwrap_or_else(|p| Ran::Panicked(Some(p)));
        stats.running.store(0, Ordering::Relaxed);
        match ran {
            Ran::Done => bump(&stats.completed),
            Ran::Expired => bump(&stats.timed_out),
            Ran::Panicked(p) => {
                if let (Some(p), Some(h)) = (p, &self.on_panic) {
                    let info = TaskInfo {
                        id,
                        thread: thread_name.map(String::from),
                    };
                    let _ = catch_unwind(AssertUnwindSafe(|| h(&info, &p)));
                }
                bump(&stats.panicked);
            }
        }
    }

    /// The worker has nothing to do: sleep until work, retirement or close.
    fn sleep(&self, h: &mut Handle, keep_alive_over: &mut bool) -> Woke {
        self.bell.sleep(|timed_out| {
            if timed_out {
                *keep_alive_over = true;
            }
            let (p, job) = take(h);
            if job.is_none() {
                // Out of work: whoever waits for the pool to be idle
                // should look again.
                self.signal_idle_waiters();
            }
            match (p, job) {
                (_, Some(job)) => Check::Done(Woke::Job(job)),
                (Poll::Closed | Poll::Halted, None) => Check::Done(Woke::Closed),
                // A skipped slot: look again at once.
                (Poll::Processed(_), None) => Check::Wait(Some(Duration::ZERO)),
                // Closed, but a submitter that claimed a slot before the
                // close is still writing it: its wake-up goes to one
                // sleeper only, so every sleeper looks again shortly
                // rather than after its keep-alive (a shutdown once waited
                // the whole 60 s keep-alive here).
                _ if self.ring.is_closed() => Check::Wait(Some(Duration::from_micros(200))),
                _ => {
                    let w = self.workers.load(Ordering::SeqCst);
                    let max = self.max.load(Ordering::Relaxed);
                    let min = self.min.load(Ordering::Relaxed);
                    if w > max || (*keep_alive_over && w > min) {
                        Check::Done(Woke::Retire)
                    } else if w > min {
                        Check::Wait(Some(self.keep_alive))
                    } else {
                        Check::Wait(None)
                    }
                }
            }
        })
    }

    /// Tries to retire this worker: leaves the count unless that would take
    /// it below `min` (or the pool is not over `max`). Then polls once more,
    /// in case a submitter counted on it.
    fn retire(&self, h: &mut Handle) -> Result<(), Option<Job>> {
        let mut w = self.workers.load(Ordering::SeqCst);
        loop {
            let over_max = w > self.max.load(Ordering::Relaxed);
            if !over_max && w <= self.min.load(Ordering::Relaxed) {
                return Err(None);
            }
            match self
                .workers
                .compare_exchange(w, w - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        // SeqCst: pairs with `wake_one`: a submitter that read the old count
        // (and so did not start a worker) published before this poll sees.
        fence(Ordering::SeqCst);
        let (_, job) = take(h);
        match job {
            Some(job) => {
                self.workers.fetch_add(1, Ordering::SeqCst);
                Err(Some(job))
            }
            None => Ok(()),
        }
    }
}

trait IntoJob {
    fn into_job(self) -> Job;
}

impl IntoJob for Slot {
    fn into_job(self) -> Job {
        self.0
            .into_inner()
            .expect("a slot handed back unpublished holds its job")
    }
}

impl From<Job> for Slot {
    fn from(job: Job) -> Self {
        Slot(UnsafeCell::new(Some(job)))
    }
}

/// Polls once, taking the job out of the claimed slot.
fn take(h: &mut Handle) -> (Poll, Option<Job>) {
    let mut job = None;
    // One job at a time here (a batch claim goes through `take_into`).
    let p = h.poll_limit(1, |slot, seq, _| {
        debug_assert!(job.is_none(), "one job per poll here");
        // SAFETY: we are inside the poll that claimed this sequence; the
        // group is the ring's only consumer (see `Slot`).
        job = unsafe { slot.take() };
        if let Some(j) = &mut job {
            j.id = seq as usize;
        }
    });
    (p, job)
}

/// Polls once, moving up to `max` claimed jobs into `buf` (in queue
/// order).
fn take_into(h: &mut Handle, max: usize, buf: &mut VecDeque<Job>) -> Poll {
    h.poll_limit(max, |slot, seq, _| {
        // SAFETY: as in `take`.
        if let Some(mut job) = unsafe { slot.take() } {
            job.id = seq as usize;
            buf.push_back(job);
        }
    })
}

fn worker_main(inner: Arc<Inner>, mut h: Handle, slot: usize, index: usize) {
    CURRENT_POOL.with(|c| c.set(Arc::as_ptr(&inner) as usize));
    if let Some(f) = &inner.on_start {
        let _ = catch_unwind(AssertUnwindSafe(|| f(index)));
    }
    let name = thread::current().name().map(String::from);
    let stats: &WorkerStats = &inner.stats[slot];
    let mut keep_alive_over = false;
    // Jobs claimed and not yet run, and how many to claim at once (module
    // docs on batching).
    let mut buf: VecDeque<Job> = VecDeque::with_capacity(MAX_CLAIM);
    let mut claim = 1;
    // Jobs are sparse: the worker's last sleep was long (over
    // `SPARSE_SLEEP`) and it has not found jobs back to back since. A
    // sparse worker goes back to sleep right after its job, with no
    // spinning (an idle pool then costs one wake-up per job and nothing
    // more); a short sleep, or a job found right after another, makes it
    // spin again before sleeping.
    let mut sparse = false;
    'work: loop {
        let p = take_into(&mut h, claim, &mut buf);
        let k = buf.len();
        if k > 0 {
            keep_alive_over = false;
            sparse = false;
            // Only a batch of several is timed (a clock read costs about as
            // much as a no-op job).
            let t = (k > 1).then(time::now);
            while let Some(job) = buf.pop_front() {
                inner.handle(job, stats, name.as_deref());
            }
            if t.is_some_and(|t| time::now().saturating_duration_since(t) >= CLAIM_BUDGET) {
                claim = 1;
            } else if k == claim {
                // A full claim: the queue is at least this deep.
                claim = (claim * 2).min(MAX_CLAIM);
            }
            continue;
        }
        match p {
            Poll::Closed | Poll::Halted => break,
            Poll::Processed(_) => continue,
            Poll::Idle | Poll::Unfinished | Poll::Gated => {}
        }
        // Spin and yield briefly before sleeping: a submitter that keeps up
        // then never pays for a wake-up.
        let rounds = if sparse {
            0
        } else {
            SPIN_ROUNDS + YIELD_ROUNDS
        };
        for round in 0..rounds {
            if round < SPIN_ROUNDS {
                for _ in 0..(1u32 << round) {
                    crate::sync::spin_loop();
                }
            } else {
                thread::yield_now();
            }
            let (p, job) = take(&mut h);
            if let Some(job) = job {
                inner.handle(job, stats, name.as_deref());
                continue 'work;
            }
            if matches!(p, Poll::Closed | Poll::Halted) {
                break 'work;
            }
        }
        claim = 1;
        let slept = time::now();
        let woke = inner.sleep(&mut h, &mut keep_alive_over);
        sparse = time::now().saturating_duration_since(slept) > SPARSE_SLEEP;
        match woke {
            Woke::Job(job) => {
                keep_alive_over = false;
                inner.handle(job, stats, name.as_deref());
            }
            Woke::Closed => break,
            Woke::Retire => match inner.retire(&mut h) {
                Ok(()) => {
                    exit(&inner, h, slot, index);
                    return;
                }
                Err(Some(job)) => {
                    keep_alive_over = false;
                    inner.handle(job, stats, name.as_deref());
                }
                Err(None) => keep_alive_over = false,
            },
        }
    }
    inner.workers.fetch_sub(1, Ordering::SeqCst);
    exit(&inner, h, slot, index);
}

fn exit(inner: &Arc<Inner>, h: Handle, slot: usize, index: usize) {
    lock(&inner.free).push((slot, h));
    inner.signal_idle_waiters();
    if let Some(f) = &inner.on_exit {
        let _ = catch_unwind(AssertUnwindSafe(|| f(index)));
    }
    CURRENT_POOL.with(|c| c.set(0));
}

/// Counters of one worker handle, written only by the thread holding it
/// (hence plain load + store, no read-modify-write), read by `metrics` and
/// `is_idle`.
#[derive(Default)]
struct WorkerStats {
    taken: AtomicUsize,
    /// 1 while a job runs, else 0.
    running: AtomicUsize,
    completed: AtomicUsize,
    panicked: AtomicUsize,
    timed_out: AtomicUsize,
    returned: AtomicUsize,
}

impl WorkerStats {
    fn finished(&self) -> usize {
        // Acquire: pairs with `bump`'s Release, so a caller that sees a job
        // counted also sees what the job did.
        let r = |a: &AtomicUsize| a.load(Ordering::Acquire);
        r(&self.completed) + r(&self.panicked) + r(&self.timed_out) + r(&self.returned)
    }
}

/// Adds one to a counter only this thread writes.
fn bump(a: &AtomicUsize) {
    a.store(a.load(Ordering::Relaxed) + 1, Ordering::Release);
}

/// An elastic, bounded thread pool. See the [module docs](self).
///
/// Dropping the pool is [`shutdown`](Self::shutdown): everything accepted
/// runs first.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let n = Arc::new(AtomicUsize::new(0));
/// for _ in 0..1000 {
///     let n = n.clone();
///     pool.execute(move || {
///         n.fetch_add(1, Ordering::Relaxed);
///     })
///     .unwrap();
/// }
/// pool.shutdown(); // runs everything accepted, then joins
/// assert_eq!(n.load(Ordering::Relaxed), 1000);
/// ```
pub struct ThreadPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl ThreadPool {
    /// A pool with `n` workers and the other [`Builder`] defaults.
    pub fn new(n: usize) -> Self {
        Builder::new().min_workers(n).max_workers(n).build()
    }

    /// Starts configuring a pool.
    pub fn builder() -> Builder {
        Builder::new()
    }

    #[cfg(not(latchfree_loom))]
    /// A [`TaskQueue`]: values posted to `handler` on one worker thread, in
    /// order, with a bounded queue and a draining close (the "async task"
    /// of Go worker pools). [`TaskQueue::builder`] sets workers, capacity
    /// and the error callback.
    pub fn with_handler<T, E, H>(handler: H) -> TaskQueue<T>
    where
        T: Send + 'static,
        E: 'static,
        H: Fn(T) -> Result<(), E> + Send + Sync + 'static,
    {
        TaskQueue::with_handler(handler)
    }

    fn wrap<F: FnOnce() + Send + 'static>(&self, f: F) -> Job {
        self.inner.new_job(None, None, job::Body::plain(f))
    }

    fn unwrap_err<F>(e: SubmitError<Job>, f: impl FnOnce(Job) -> F) -> SubmitError<F> {
        match e {
            SubmitError::Full(j) => SubmitError::Full(f(j)),
            SubmitError::Closed(j) => SubmitError::Closed(f(j)),
        }
    }

    /// Runs `f` on a worker, waiting while the queue is full. Its panic (if
    /// any) goes to the panic handler.
    ///
    /// # Errors
    ///
    /// `Closed(job)` once the pool is shutting down (including while this
    /// call waited). The [`Job`] can be run or dropped.
    pub fn execute<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), SubmitError<Job>> {
        let job = self.wrap(f);
        Inner::submit(&self.inner, job, None).map(drop)
    }

    /// Like [`execute`](Self::execute) but never waits.
    ///
    /// # Errors
    ///
    /// `Full(f)` or `Closed(f)`, handing `f` back unrun.
    pub fn try_execute<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), SubmitError<F>> {
        // Boxed once; on refusal the box is taken apart again (a type
        // check, no copy of the closure's state beyond the move out).
        let job = self.wrap(f);
        Inner::submit(&self.inner, job, Some(Duration::ZERO))
            .map(drop)
            .map_err(|e| {
                Self::unwrap_err(e, |j| {
                    j.body
                        .into_plain::<F>()
                        .expect("a refused plain job is its closure")
                })
            })
    }

    /// Like [`execute`](Self::execute) but waits at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// `Full(job)` if no room came in time, `Closed(job)` if shutting down.
    pub fn execute_timeout<F: FnOnce() + Send + 'static>(
        &self,
        f: F,
        timeout: Duration,
    ) -> Result<(), SubmitError<Job>> {
        let job = self.wrap(f);
        Inner::submit(&self.inner, job, Some(timeout)).map(drop)
    }

    /// Runs `f` unless no worker reaches it by `deadline`; then
    /// `on_timeout` runs instead (on the worker).
    ///
    /// # Errors
    ///
    /// As for [`execute`](Self::execute).
    pub fn execute_before<F, T>(
        &self,
        deadline: Instant,
        f: F,
        on_timeout: T,
    ) -> Result<(), SubmitError<Job>>
    where
        F: FnOnce() + Send + 'static,
        T: FnOnce() + Send + 'static,
    {
        let job = self.inner.new_job(
            Some(deadline),
            None,
            job::Body::Full(Box::new(move |start| match start {
                Start::Run => match catch_unwind(AssertUnwindSafe(f)) {
                    Ok(()) => Ran::Done,
                    Err(p) => Ran::Panicked(Some(p)),
                },
                Start::Expired => {
                    on_timeout();
                    Ran::Expired
                }
            })),
        );
        Inner::submit(&self.inner, job, None).map(drop)
    }

    /// Runs `f` on a worker and returns a handle to join for its value (or
    /// its panic). Waits while the queue is full.
    ///
    /// # Errors
    ///
    /// `Closed(job)` once the pool is shutting down.
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SubmitError<Job>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_with(None, move |_| f())
    }

    /// The general form of [`spawn`](Self::spawn): an optional start
    /// deadline (a task not started by then does not run, and its handle
    /// says [`JoinError::TimedOut`]) and a [`CancelToken`] for the running
    /// task to poll.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Self::spawn).
    pub fn spawn_with<F, T>(
        &self,
        deadline: Option<Instant>,
        f: F,
    ) -> Result<JoinHandle<T>, SubmitError<Job>>
    where
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let token = CancelToken::new(self.inner.discard.clone());
        let (tx, mut handle) = job::channel::<T>(token.clone());
        let cancel = Some(token.clone());
        let body = job::Body::Full(Box::new(move |start| match start {
            Start::Run => match catch_unwind(AssertUnwindSafe(|| f(&token))) {
                Ok(v) => {
                    tx.send(Ok(v));
                    Ran::Done
                }
                Err(p) => {
                    tx.send(Err(JoinError::Panicked(p)));
                    Ran::Panicked(None)
                }
            },
            Start::Expired => {
                tx.send(Err(JoinError::TimedOut));
                Ran::Expired
            }
        }));
        let job = self.inner.new_job(deadline, cancel, body);
        let seq = Inner::submit(&self.inner, job, None)?;
        handle.id = seq as usize;
        Ok(handle)
    }

    /// Waits until nothing is queued or running.
    ///
    /// # Errors
    ///
    /// [`WaitIdleError`] when called from a worker of this pool (it would
    /// wait for itself).
    pub fn wait_idle(&self) -> Result<(), WaitIdleError> {
        if CURRENT_POOL.with(|c| c.get()) == Arc::as_ptr(&self.inner) as usize {
            return Err(WaitIdleError);
        }
        self.inner.wait_idle_until(None);
        Ok(())
    }

    /// Changes the worker bounds at run time. `max` is capped at the
    /// builder's `max_workers`; `min` at `max`. Extra workers retire when
    /// they next go idle; missing ones up to `min` start now.
    pub fn resize(&self, min: usize, max: usize) {
        let max = max.clamp(1, self.inner.cap);
        let min = min.min(max);
        self.inner.max.store(max, Ordering::SeqCst);
        self.inner.min.store(min, Ordering::SeqCst);
        while self.inner.workers.load(Ordering::SeqCst) < min {
            if !Inner::try_grow(&self.inner, min) {
                break;
            }
        }
        self.inner.wake_all();
    }

    /// The pool's counters now.
    pub fn metrics(&self) -> Metrics {
        let i = &self.inner;
        let r = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let mut m = Metrics {
            workers: r(&i.workers),
            idle: i.bell.sleepers(),
            rejected: r(&i.rejected),
            ..Metrics::default()
        };
        let mut taken = 0;
        for s in i.stats.iter() {
            taken += r(&s.taken);
            m.running += r(&s.running);
            m.completed += r(&s.completed);
            m.panicked += r(&s.panicked);
            m.timed_out += r(&s.timed_out);
        }
        m.queued = i.producers.counted().saturating_sub(m.rejected + taken);
        m
    }

    /// Whether the pool stopped accepting jobs.
    pub fn is_closed(&self) -> bool {
        self.inner.ring.is_closed()
    }

    /// Stops accepting (submitters blocked on a full queue get `Closed`),
    /// runs everything already accepted, then joins the workers.
    /// Idempotent; called from a worker it only closes the pool.
    pub fn shutdown(&self) {
        self.close_and_join(None);
    }

    /// Like [`shutdown`](Self::shutdown), but stops starting jobs once
    /// `timeout` has passed and returns the ones it did not start. Running
    /// jobs see their [`CancelToken`] set and are waited for: a thread
    /// cannot be stopped from outside.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Vec<Job> {
        self.close_and_join(Some(time::now() + timeout))
    }

    /// Stops accepting and returns every job not yet started; running jobs
    /// see their [`CancelToken`] set and are waited for.
    pub fn shutdown_now(&self) -> Vec<Job> {
        self.inner.discard.store(true, Ordering::SeqCst);
        self.close_and_join(Some(time::now()))
    }

    fn close_and_join(&self, deadline: Option<Instant>) -> Vec<Job> {
        let i = &self.inner;
        i.ring.close();
        i.wake_all();
        if CURRENT_POOL.with(|c| c.get()) == Arc::as_ptr(i) as usize {
            return Vec::new();
        }
        if let Some(d) = deadline {
            if !i.wait_idle_until(Some(d)) {
                i.discard.store(true, Ordering::SeqCst);
            }
        }
        let joins = {
            let mut t = lock(&i.threads);
            t.closed = true;
            core::mem::take(&mut t.joins)
        };
        for j in joins {
            let _ = j.join();
        }
        // Whatever no worker took (all had retired): drain it here.
        let h = lock(&i.free).pop();
        if let Some((slot, mut h)) = h {
            loop {
                let (p, job) = take(&mut h);
                if let Some(job) = job {
                    i.handle(job, &i.stats[slot], None);
                } else if matches!(p, Poll::Closed | Poll::Halted) {
                    break;
                } else {
                    // A submitter claimed a slot before the close and is
                    // still writing it.
                    thread::yield_now();
                }
            }
            lock(&i.free).push((slot, h));
        }
        core::mem::take(&mut *lock(&i.returned))
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
