//! An elastic thread pool on a multi-producer ring (`std` only).
//!
//! # Design
//!
//! The job queue is a [`Ring`](crate::ring::Ring) of take-once slots in multi-producer mode
//! whose only consumer node is a work group with one gate per *possible*
//! worker (`max_workers`, fixed at build time, at most 63). Each job is
//! claimed by exactly one worker; the worker moves the job out of its slot
//! inside the claim (so the slot is released before the job runs, and the
//! queue capacity is the ring's whatever the jobs do), then runs it outside.
//! Worker handles of threads that are not running sit in a free list; an
//! idle handle holds no claim (see [`Worker`](crate::ring::Worker)), so parked handles never stall
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
//! `threaded::lane`), so a submit takes no lock; it counts itself in the lane with
//! a plain store before publishing (for [`ThreadPool::wait_idle`]). A
//! [`Job`] is one cache line, the queue slot's size: its id (its sequence
//! in the queue), a pointer for the rare deadline or cancel token, and the
//! closure, stored in the job itself when it takes at most 40 bytes with
//! an alignment of at most 8 (a call/drop table beside it), boxed
//! otherwise. So `execute` of a small closure allocates nothing, on either
//! side (a closure that arrives as a `Box<dyn FnOnce() + Send>` is two
//! words, stored as it is).
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
//! The ring's own wait strategy ([`Parking`](crate::ring::Parking)) is used
//! only by submitters blocked on a full queue. Idle workers sleep on the
//! adapters' one doorbell (`threaded::doorbell`, the batcher's flushers
//! too), so an idle pool costs no CPU: a worker's check polls the ring
//! under the doorbell's lock. A submitter reads the doorbell's sleeper
//! count right after claiming its slot, before writing the job (the
//! doorbell's "announced work": the claim is a `SeqCst` read-modify-write,
//! so no fence is needed), and signals after publishing only if it saw a
//! sleeper: either it sees the sleeper, or the sleeper's poll sees the
//! claim, and a worker that finds a claimed slot still being written looks
//! again instead of sleeping. When nobody sleeps and fewer than `max`
//! workers live, the submitter starts a worker. A worker that retires
//! uncounts itself, fences and polls once more (staying if it finds a job
//! or a claimed slot), so a submitter that counted on it never strands its
//! job.
//!
//! A worker that has just found jobs back to back, or slept only briefly,
//! backs off (spins, then yields) a little before it sleeps, so a steady
//! stream never pays for a wake-up; one whose last sleep was long (over
//! 200 µs: jobs are sparse) goes back to sleep right after its job, so an
//! idle pool costs one wake-up per job and nothing more.
//!
//! # Layout
//!
//! `builder` (configuration), `state` (the shared state and its state
//! machine: submit, grow, sleep, retire, idle), `worker` (the worker loop),
//! `job` (jobs, join handles, cancel tokens), `error`, `metrics`; this file
//! is the [`ThreadPool`] API.
//!
//! # What it does not do
//!
//! Rust cannot kill a thread: a running task is asked to stop through its
//! [`CancelToken`], and shutdowns wait for running tasks to return.

mod builder;
mod error;
mod job;
mod metrics;
mod state;
mod worker;

use alloc::vec::Vec;
use core::fmt;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;

pub use self::builder::{Builder, MAX_WORKERS};
pub use self::error::{BuildError, Closed, TryPushError, WaitIdleError};
pub use self::job::{CancelToken, Job, JoinError, JoinHandle, Payload, TaskInfo};
pub use self::metrics::Metrics;

#[doc(hidden)]
pub use self::job::join_pair;
use self::job::{Ran, Start};
use self::state::{lock, Inner, CURRENT_POOL};
use self::worker::take;
use crate::ring::Poll;
use crate::sync::time::{self, Instant};
use crate::sync::{Arc, AtomicUsize, Backoff, Ordering};

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
    ///
    /// # Panics
    ///
    /// If `n` is 0 or above [`MAX_WORKERS`], or a thread cannot be started
    /// ([`Builder::build`] returns these as a [`BuildError`]).
    pub fn new(n: usize) -> Self {
        match Builder::new().min_workers(n).max_workers(n).build() {
            Ok(pool) => pool,
            Err(e) => panic!("ThreadPool::new({n}): {e}"),
        }
    }

    /// Starts configuring a pool.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A job of `f` alone, for `make` closures: built in its queue slot.
    fn wrap<F: FnOnce() + Send + 'static>(f: F) -> impl FnOnce() -> Job {
        move || Inner::new_job(None, None, job::Body::plain(f))
    }

    /// Submits the job `job` builds, waiting for room: only a close
    /// refuses it.
    fn submit_waiting(&self, job: impl FnOnce() -> Job) -> Result<u64, Closed<Job>> {
        Inner::submit(&self.inner, job, None).map_err(|e| Closed(e.into_inner()))
    }

    /// Runs `f` on a worker, waiting while the queue is full. Its panic (if
    /// any) goes to the panic handler.
    ///
    /// # Errors
    ///
    /// [`Closed`] with the job once the pool is shutting down (including
    /// while this call waited). The [`Job`] can be run or dropped.
    pub fn execute<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Closed<Job>> {
        self.submit_waiting(Self::wrap(f)).map(drop)
    }

    /// Like [`execute`](Self::execute) but never waits.
    ///
    /// # Errors
    ///
    /// `Full(f)` or `Closed(f)`, handing `f` back unrun.
    pub fn try_execute<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), TryPushError<F>> {
        // Boxed once; on refusal the box is taken apart again (a type
        // check, no copy of the closure's state beyond the move out).
        Inner::submit(&self.inner, Self::wrap(f), Some(Duration::ZERO))
            .map(drop)
            .map_err(|e| {
                e.map(|j| {
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
    ) -> Result<(), TryPushError<Job>> {
        Inner::submit(&self.inner, Self::wrap(f), Some(timeout)).map(drop)
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
    ) -> Result<(), Closed<Job>>
    where
        F: FnOnce() + Send + 'static,
        T: FnOnce() + Send + 'static,
    {
        let job = Inner::new_job(
            Some(deadline),
            None,
            job::Body::full(move |start| match start {
                Start::Run => match catch_unwind(AssertUnwindSafe(f)) {
                    Ok(()) => Ran::Done,
                    Err(p) => Ran::Panicked(Some(p)),
                },
                Start::Expired => {
                    on_timeout();
                    Ran::Expired
                }
            }),
        );
        self.submit_waiting(move || job).map(drop)
    }

    /// Runs `f` on a worker and returns a handle to join for its value (or
    /// its panic). Waits while the queue is full.
    ///
    /// # Errors
    ///
    /// [`Closed`] with the job once the pool is shutting down.
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, Closed<Job>>
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
    ) -> Result<JoinHandle<T>, Closed<Job>>
    where
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let token = CancelToken::new(self.inner.discard.clone());
        let (tx, mut handle) = job::channel::<T>(token.clone());
        let cancel = Some(token.clone());
        let body = job::Body::full(move |start| match start {
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
        });
        let job = Inner::new_job(deadline, cancel, body);
        let seq = self.submit_waiting(move || job)?;
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
            let backoff = Backoff::new();
            loop {
                let (p, job) = take(&mut h);
                if let Some(job) = job {
                    i.handle(job, &i.stats[slot], None);
                    backoff.reset();
                } else if matches!(p, Poll::Closed | Poll::Halted) {
                    break;
                } else {
                    // A submitter claimed a slot before the close and is
                    // still writing it (it publishes without waiting).
                    backoff.snooze();
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
