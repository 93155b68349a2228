//! The pool's counters: per-worker blocks written by one thread each, and
//! the snapshot [`Metrics`].

use crate::sync::{AtomicUsize, Ordering};

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

/// Counters of one worker handle, written only by the thread holding it
/// (hence plain load + store, no read-modify-write), read by `metrics` and
/// `is_idle`.
#[derive(Default)]
pub(super) struct WorkerStats {
    pub(super) taken: AtomicUsize,
    /// 1 while a job runs, else 0.
    pub(super) running: AtomicUsize,
    pub(super) completed: AtomicUsize,
    pub(super) panicked: AtomicUsize,
    pub(super) timed_out: AtomicUsize,
    pub(super) returned: AtomicUsize,
}

impl WorkerStats {
    pub(super) fn finished(&self) -> usize {
        // Acquire: pairs with `bump`'s Release, so a caller that sees a job
        // counted also sees what the job did.
        let r = |a: &AtomicUsize| a.load(Ordering::Acquire);
        r(&self.completed) + r(&self.panicked) + r(&self.timed_out) + r(&self.returned)
    }
}

/// Adds one to a counter only this thread writes.
pub(super) fn bump(a: &AtomicUsize) {
    a.store(a.load(Ordering::Relaxed) + 1, Ordering::Release);
}
