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
//! # What it does not do
//!
//! Rust cannot kill a thread: a running task is asked to stop through its
//! [`CancelToken`], and shutdowns wait for running tasks to return.

mod job;
pub(crate) mod stripes;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;
use std::thread;
use std::time::Instant;

pub use self::job::{CancelToken, Job, JoinError, JoinHandle, Payload};
use self::job::{Ran, Start};
use crate::ring::{Heap, Multi, MultiProducer, Parking, Poll, PublishError, Ring, Worker};
use crate::sync::blocking::{Condvar, Mutex, MutexGuard};
use crate::sync::{fence, Arc, AtomicBool, AtomicUsize, CachePadded, Ordering, UnsafeCell};

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

type Hook = Arc<dyn Fn(usize) + Send + Sync>;
type PanicHook = Arc<dyn Fn(&TaskInfo, &Payload) + Send + Sync>;

/// What the panic handler learns about the task that panicked.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// The task's identity (see [`Job::id`]).
    pub id: usize,
    /// The name of the worker thread it ran on.
    pub thread: Option<String>,
}

/// Why a job was not accepted; the job comes back unrun.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitIdleError;

impl fmt::Display for WaitIdleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wait_idle called from a worker of the same pool")
    }
}

impl core::error::Error for WaitIdleError {}

/// A point-in-time view of the pool's counters; stale under concurrency.
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
        let n = thread::available_parallelism().map_or(1, |n| n.get());
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
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Called on each worker thread just before it exits, with its index.
    pub fn on_thread_exit(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_exit = Some(Arc::new(f));
        self
    }

    /// Called on the worker when an `execute`d job panics, with the task's
    /// identity and payload. (A `spawn`ed job's panic goes to its
    /// [`JoinHandle`].) The worker survives either way.
    pub fn panic_handler(
        mut self,
        f: impl Fn(&TaskInfo, &Payload) + Send + Sync + 'static,
    ) -> Self {
        self.on_panic = Some(Arc::new(f));
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
        let ring = Arc::new(Queue::new(
            Heap::with_default(cap, self.max + 1).expect("queue capacity too large"),
            Parking::with_max_park(Duration::from_micros(200)),
        ));
        let mut graph = Ring::graph(ring.clone()).expect("fresh ring");
        let mut handles = graph
            .work_group_vec(self.max, &[])
            .expect("gates were sized for the group");
        for h in &mut handles {
            h.set_max_batch(1);
        }
        let producer = graph.multi_producer();
        let producers = stripes::Stripes::new(producer);
        let inner = Arc::new(Inner {
            ring,
            producers,
            free: Mutex::new(handles),
            threads: Mutex::new(Threads {
                closed: false,
                joins: Vec::new(),
                next_index: 0,
            }),
            sleep_lock: Mutex::new(()),
            sleep_cond: Condvar::new(),
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            idle_lock: Mutex::new(()),
            idle_cond: Condvar::new(),
            pending: CachePadded::new(AtomicUsize::new(0)),
            min: AtomicUsize::new(self.min),
            max: AtomicUsize::new(self.max),
            cap: self.max,
            workers: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            submitted: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            panicked: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            timed_out: AtomicUsize::new(0),
            next_id: AtomicUsize::new(0),
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
            if inner.try_grow(usize::MAX) {
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
    /// Producer handles, striped: a submitter takes the first it can lock.
    producers: stripes::Stripes<Producer>,
    /// Worker handles not owned by a thread.
    free: Mutex<Vec<Handle>>,
    threads: Mutex<Threads>,
    sleep_lock: Mutex<()>,
    sleep_cond: Condvar,
    /// Workers counted in as sleeping (see the module docs), `0..=cap`.
    sleepers: CachePadded<AtomicUsize>,
    idle_lock: Mutex<()>,
    idle_cond: Condvar,
    /// Jobs accepted or being submitted and not yet finished with.
    pending: CachePadded<AtomicUsize>,
    min: AtomicUsize,
    max: AtomicUsize,
    /// `max` at build time: the number of worker handles.
    cap: usize,
    /// Live worker threads, `0..=cap`: incremented before a thread starts,
    /// decremented by a thread that has decided to exit.
    workers: AtomicUsize,
    running: AtomicUsize,
    submitted: AtomicUsize,
    taken: AtomicUsize,
    completed: AtomicUsize,
    panicked: AtomicUsize,
    rejected: AtomicUsize,
    timed_out: AtomicUsize,
    next_id: AtomicUsize,
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

std::thread_local! {
    /// The `Inner` address of the pool this thread works for, or 0.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}

/// Why a worker stopped waiting.
enum Woke {
    Job(Job),
    Retire,
    Closed,
}

impl Inner {
    fn new_job(&self, deadline: Option<Instant>, body: job::Body) -> Job {
        Job {
            // Relaxed: a unique counter, nothing ordered by it.
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            deadline,
            cancel: CancelToken::new(self.discard.clone()),
            body,
        }
    }

    /// Publishes `job`, waiting up to `wait` (None: forever, Some(0): not at all).
    fn submit(self: &Arc<Self>, job: Job, wait: Option<Duration>) -> Result<(), SubmitError<Job>> {
        // Counted before publishing so a worker can never finish it first.
        self.pending.fetch_add(1, Ordering::SeqCst);
        let r = match wait {
            None => self.with_producer(|p| p.push(Slot::from(job))),
            Some(d) => {
                let deadline = Instant::now() + d;
                let mut nap = Duration::from_micros(10);
                let mut slot = Slot::from(job);
                loop {
                    match self.with_producer(|p| p.try_push(slot)) {
                        Err(PublishError::Full(s)) if Instant::now() < deadline => {
                            slot = s;
                            thread::park_timeout(nap.min(deadline - Instant::now()));
                            nap = (nap * 2).min(Duration::from_millis(1));
                        }
                        other => break other,
                    }
                }
            }
        };
        match r {
            Ok(_) => {
                // Relaxed: metrics only.
                self.submitted.fetch_add(1, Ordering::Relaxed);
                self.wake_one();
                Ok(())
            }
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                self.finish_one();
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

    fn with_producer<R>(&self, f: impl FnOnce(&mut Producer) -> R) -> R {
        self.producers.with(f)
    }

    /// After a publish: wake a sleeper, or start a worker if none sleeps.
    fn wake_one(self: &Arc<Self>) {
        // SeqCst: pairs with the fence a worker issues after counting itself
        // in `sleepers` (module docs): we see it, or it sees our job.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let g = lock(&self.sleep_lock);
            self.sleep_cond.notify_one();
            drop(g);
        } else {
            // Relaxed loads: a stale answer only starts a worker late (the
            // busy workers will reach the job) or refuses at the CAS.
            self.try_grow(self.max.load(Ordering::Relaxed));
        }
    }

    fn wake_all(&self) {
        let g = lock(&self.sleep_lock);
        self.sleep_cond.notify_all();
        drop(g);
    }

    /// Starts a worker if fewer than `limit` (and `cap`) live.
    fn try_grow(self: &Arc<Self>, limit: usize) -> bool {
        let limit = limit.min(self.cap);
        let mut w = self.workers.load(Ordering::Relaxed);
        loop {
            if w >= limit {
                return false;
            }
            // Relaxed: the count is its own datum; the free-list mutex
            // orders the handle hand-over.
            match self
                .workers
                .compare_exchange_weak(w, w + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        let mut threads = lock(&self.threads);
        let handle = if threads.closed {
            None
        } else {
            lock(&self.free).pop()
        };
        let Some(handle) = handle else {
            drop(threads);
            self.workers.fetch_sub(1, Ordering::SeqCst);
            return false;
        };
        let index = threads.next_index;
        threads.next_index += 1;
        let mut b = thread::Builder::new().name(alloc::format!("{}-{index}", self.name));
        if let Some(s) = self.stack_size {
            b = b.stack_size(s);
        }
        let me = self.clone();
        // The handle travels through a shared cell so a failed spawn can put
        // it back on the free list instead of dropping it with the closure.
        let tx = Arc::new(Mutex::new(Some(handle)));
        let tx2 = tx.clone();
        match b.spawn(move || {
            let h = lock(&tx2).take();
            if let Some(h) = h {
                worker_main(me, h, index);
            }
        }) {
            Ok(j) => {
                threads.joins.retain(|j| !j.is_finished());
                threads.joins.push(j);
                true
            }
            Err(_) => {
                if let Some(h) = lock(&tx).take() {
                    lock(&self.free).push(h);
                }
                drop(threads);
                self.workers.fetch_sub(1, Ordering::SeqCst);
                false
            }
        }
    }

    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            let g = lock(&self.idle_lock);
            self.idle_cond.notify_all();
            drop(g);
        }
    }

    /// Runs (or, when discarding, returns) one job taken from the queue.
    fn handle(&self, job: Job, thread_name: Option<&str>) {
        // Relaxed: metrics.
        self.taken.fetch_add(1, Ordering::Relaxed);
        if self.discard.load(Ordering::SeqCst) {
            lock(&self.returned).push(job);
            self.finish_one();
            return;
        }
        let expired =
            job.cancel.own_cancelled() || job.deadline.is_some_and(|d| Instant::now() > d);
        let Job {
            id, cancel, body, ..
        } = job;
        if expired {
            let _ = catch_unwind(AssertUnwindSafe(|| body(Start::Expired)));
            self.timed_out.fetch_add(1, Ordering::Relaxed);
            self.finish_one();
            return;
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let ran = catch_unwind(AssertUnwindSafe(|| body(Start::Run(&cancel))))
            .unwrap_or_else(|p| Ran::Panicked(Some(p)));
        self.running.fetch_sub(1, Ordering::Relaxed);
        match ran {
            Ran::Done => {
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            Ran::Expired => {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            Ran::Panicked(p) => {
                self.panicked.fetch_add(1, Ordering::Relaxed);
                if let (Some(p), Some(h)) = (p, &self.on_panic) {
                    let info = TaskInfo {
                        id,
                        thread: thread_name.map(String::from),
                    };
                    let _ = catch_unwind(AssertUnwindSafe(|| h(&info, &p)));
                }
            }
        }
        self.finish_one();
    }

    /// The worker has nothing to do: sleep until work, retirement or close.
    fn sleep(&self, h: &mut Handle, keep_alive_over: &mut bool) -> Woke {
        let mut g = lock(&self.sleep_lock);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        loop {
            // SeqCst: pairs with the fence in `wake_one` (module docs).
            fence(Ordering::SeqCst);
            let (p, job) = take(h);
            let leave = match (p, job) {
                (_, Some(job)) => Some(Woke::Job(job)),
                (Poll::Closed | Poll::Halted, None) => Some(Woke::Closed),
                (Poll::Processed(_), None) => continue,
                _ => {
                    let w = self.workers.load(Ordering::SeqCst);
                    let max = self.max.load(Ordering::Relaxed);
                    let min = self.min.load(Ordering::Relaxed);
                    if w > max || (*keep_alive_over && w > min) {
                        Some(Woke::Retire)
                    } else {
                        None
                    }
                }
            };
            if let Some(leave) = leave {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(g);
                return leave;
            }
            let w = self.workers.load(Ordering::Relaxed);
            if w > self.min.load(Ordering::Relaxed) {
                let (g2, t) = self
                    .sleep_cond
                    .wait_timeout(g, self.keep_alive)
                    .unwrap_or_else(|e| e.into_inner());
                g = g2;
                *keep_alive_over = t.timed_out();
            } else {
                g = self.sleep_cond.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        }
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
    let p = h.poll(|slot, _, _| {
        // SAFETY: we are inside the poll that claimed this sequence; the
        // group is the ring's only consumer (see `Slot`).
        job = unsafe { slot.take() };
    });
    (p, job)
}

fn worker_main(inner: Arc<Inner>, mut h: Handle, index: usize) {
    CURRENT_POOL.with(|c| c.set(Arc::as_ptr(&inner) as usize));
    if let Some(f) = &inner.on_start {
        let _ = catch_unwind(AssertUnwindSafe(|| f(index)));
    }
    let name = thread::current().name().map(String::from);
    let mut keep_alive_over = false;
    loop {
        let (p, job) = take(&mut h);
        if let Some(job) = job {
            keep_alive_over = false;
            inner.handle(job, name.as_deref());
            continue;
        }
        match p {
            Poll::Closed | Poll::Halted => break,
            Poll::Processed(_) => continue,
            Poll::Idle | Poll::Gated => {}
        }
        match inner.sleep(&mut h, &mut keep_alive_over) {
            Woke::Job(job) => {
                keep_alive_over = false;
                inner.handle(job, name.as_deref());
            }
            Woke::Closed => break,
            Woke::Retire => match inner.retire(&mut h) {
                Ok(()) => {
                    exit(&inner, h, index);
                    return;
                }
                Err(Some(job)) => {
                    keep_alive_over = false;
                    inner.handle(job, name.as_deref());
                }
                Err(None) => keep_alive_over = false,
            },
        }
    }
    inner.workers.fetch_sub(1, Ordering::SeqCst);
    exit(&inner, h, index);
}

fn exit(inner: &Arc<Inner>, h: Handle, index: usize) {
    lock(&inner.free).push(h);
    if let Some(f) = &inner.on_exit {
        let _ = catch_unwind(AssertUnwindSafe(|| f(index)));
    }
    CURRENT_POOL.with(|c| c.set(0));
}

/// An elastic, bounded thread pool. See the [module docs](self).
///
/// Dropping the pool is [`shutdown`](Self::shutdown): everything accepted
/// runs first.
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

    fn wrap<F: FnOnce() + Send + 'static>(&self, f: F, deadline: Option<Instant>) -> Job {
        self.inner.new_job(
            deadline,
            Box::new(move |start| match start {
                Start::Run(_) => match catch_unwind(AssertUnwindSafe(f)) {
                    Ok(()) => Ran::Done,
                    Err(p) => Ran::Panicked(Some(p)),
                },
                Start::Expired => Ran::Expired,
            }),
        )
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
        let job = self.wrap(f, None);
        self.inner.submit(job, None)
    }

    /// Like [`execute`](Self::execute) but never waits.
    ///
    /// # Errors
    ///
    /// `Full(f)` or `Closed(f)`, handing `f` back unrun.
    pub fn try_execute<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), SubmitError<F>> {
        // Boxed once here; unboxed on refusal so the caller gets `F` back.
        let cell: Arc<Mutex<Option<F>>> = Arc::new(Mutex::new(Some(f)));
        let c2 = cell.clone();
        let job = self.wrap(
            move || {
                if let Some(f) = lock(&c2).take() {
                    f();
                }
            },
            None,
        );
        self.inner.submit(job, Some(Duration::ZERO)).map_err(|e| {
            Self::unwrap_err(e, |j| {
                drop(j);
                lock(&cell).take().expect("refused job was never run")
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
        let job = self.wrap(f, None);
        self.inner.submit(job, Some(timeout))
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
            Box::new(move |start| match start {
                Start::Run(_) => match catch_unwind(AssertUnwindSafe(f)) {
                    Ok(()) => Ran::Done,
                    Err(p) => Ran::Panicked(Some(p)),
                },
                Start::Expired => {
                    on_timeout();
                    Ran::Expired
                }
            }),
        );
        self.inner.submit(job, None)
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
        let mut job = self.inner.new_job(deadline, Box::new(|_| Ran::Done));
        let (tx, handle) = job::channel::<T>(job.cancel.clone(), job.id);
        job.body = Box::new(move |start| match start {
            Start::Run(token) => match catch_unwind(AssertUnwindSafe(|| f(token))) {
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
        });
        self.inner.submit(job, None).map(|()| handle)
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
        let mut g = lock(&self.inner.idle_lock);
        while self.inner.pending.load(Ordering::SeqCst) != 0 {
            g = self
                .inner
                .idle_cond
                .wait(g)
                .unwrap_or_else(|e| e.into_inner());
        }
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
            if !self.inner.try_grow(min) {
                break;
            }
        }
        self.inner.wake_all();
    }

    /// The pool's counters now.
    pub fn metrics(&self) -> Metrics {
        let i = &self.inner;
        let r = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        Metrics {
            workers: r(&i.workers),
            idle: i.sleepers.load(Ordering::Relaxed),
            queued: r(&i.submitted).saturating_sub(r(&i.taken)),
            running: r(&i.running),
            completed: r(&i.completed),
            panicked: r(&i.panicked),
            rejected: r(&i.rejected),
            timed_out: r(&i.timed_out),
        }
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
        self.close_and_join(Some(Instant::now() + timeout))
    }

    /// Stops accepting and returns every job not yet started; running jobs
    /// see their [`CancelToken`] set and are waited for.
    pub fn shutdown_now(&self) -> Vec<Job> {
        self.inner.discard.store(true, Ordering::SeqCst);
        self.close_and_join(Some(Instant::now()))
    }

    fn close_and_join(&self, deadline: Option<Instant>) -> Vec<Job> {
        let i = &self.inner;
        i.ring.close();
        i.wake_all();
        if CURRENT_POOL.with(|c| c.get()) == Arc::as_ptr(i) as usize {
            return Vec::new();
        }
        if let Some(d) = deadline {
            let mut g = lock(&i.idle_lock);
            while i.pending.load(Ordering::SeqCst) != 0 {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                g = i
                    .idle_cond
                    .wait_timeout(g, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            drop(g);
            if i.pending.load(Ordering::SeqCst) != 0 {
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
        if let Some(mut h) = h {
            loop {
                let (p, job) = take(&mut h);
                if let Some(job) = job {
                    i.handle(job, None);
                } else if matches!(p, Poll::Closed | Poll::Halted) {
                    break;
                } else {
                    // A submitter claimed a slot before the close and is
                    // still writing it.
                    thread::yield_now();
                }
            }
            lock(&i.free).push(h);
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
