//! Configuring and starting a [`ThreadPool`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::job::TaskInfo;
use super::metrics::WorkerStats;
use super::state::{Handle, Inner, Queue, Threads};
#[cfg(doc)]
use super::JoinHandle;
use super::{BuildError, Payload, ThreadPool};
use crate::ring::Ring;
use crate::sync::blocking::{Condvar, Mutex};
use crate::sync::{Arc, AtomicBool, AtomicUsize, CachePadded, HandleArc};
use crate::threaded::doorbell::Doorbell;
use crate::threaded::lane;

/// A thread start or exit hook. User callbacks are owned, not synchronised
/// on: the plain `Arc` (loom's cannot hold a `dyn`).
pub(super) type Hook = HandleArc<dyn Fn(usize) + Send + Sync>;
/// The panic handler (see [`Hook`] for the `Arc`).
pub(super) type PanicHook = HandleArc<dyn Fn(&TaskInfo, &Payload) + Send + Sync>;

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
///     .build().unwrap();
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
        self.on_start = Some(HandleArc::new(f));
        self
    }

    /// Called on each worker thread just before it exits, with its index.
    pub fn on_thread_exit(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_exit = Some(HandleArc::new(f));
        self
    }

    /// Called on the worker when an `execute`d job panics, with the task's
    /// identity and payload. (A `spawn`ed job's panic goes to its
    /// [`JoinHandle`].) The worker survives either way.
    pub fn panic_handler(
        mut self,
        f: impl Fn(&TaskInfo, &Payload) + Send + Sync + 'static,
    ) -> Self {
        self.on_panic = Some(HandleArc::new(f));
        self
    }

    /// Starts the pool with its `min` workers.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if `max` is 0 or above [`MAX_WORKERS`], `min > max`,
    /// the capacity is 0 or too large for a ring, or a thread cannot be
    /// started (then none is left running).
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        if !(1..=MAX_WORKERS).contains(&self.max) {
            return Err(BuildError::MaxWorkers(self.max));
        }
        if self.min > self.max {
            return Err(BuildError::MinWorkers {
                min: self.min,
                max: self.max,
            });
        }
        let ring: Arc<Queue> = lane::queue(self.capacity, self.max + 1)
            .map_err(|_| BuildError::Capacity(self.capacity))?;
        let mut graph = Ring::graph(ring.clone()).expect("fresh ring");
        let handles: Vec<(usize, Handle)> = graph
            .work_group_vec(self.max, &[])
            .expect("gates were sized for the group")
            .into_iter()
            .enumerate()
            .collect();
        let producer = graph
            .multi_producer()
            .expect("the graph has its consumers");
        let producers = lane::Lanes::new(producer);
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
        let pool = ThreadPool { inner };
        for _ in 0..self.min {
            if !Inner::try_grow(&pool.inner, usize::MAX) {
                // Dropping the pool shuts down the workers already started.
                return Err(BuildError::Spawn);
            }
        }
        Ok(pool)
    }
}
