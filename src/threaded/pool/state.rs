//! The pool's shared state and its state machine: submitting, growing,
//! sleeping, retiring, running a job, and telling when the pool is idle.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;

use super::builder::{Hook, PanicHook};
use super::job::{self, CancelToken, Job, Ran, Start, TaskInfo};
use super::metrics::{bump, WorkerStats};
use super::worker::{take, worker_main};
use super::TryPushError;
use crate::ring::{Poll, Worker};
use crate::sync::blocking::{Condvar, Mutex, MutexGuard};
use crate::sync::time::{self, Instant};
use crate::sync::{fence, thread, Arc, AtomicBool, AtomicUsize, Backoff, CachePadded, Ordering};
use crate::threaded::doorbell::{Check, Doorbell};
use crate::threaded::lane::{self, Lanes};

/// The job queue (see `threaded::lane`).
pub(super) type Queue = lane::Queue<Job>;
/// A worker's handle on the queue's work group.
pub(super) type Handle = Worker<Arc<Queue>>;
type Producer = lane::Producer<Job>;

pub(super) struct Threads {
    /// Set by shutdown: no thread starts afterwards.
    pub(super) closed: bool,
    pub(super) joins: Vec<thread::JoinHandle<()>>,
    pub(super) next_index: usize,
}

pub(super) struct Inner {
    pub(super) ring: Arc<Queue>,
    /// Producer handles, one lane per submitting thread; their counters
    /// count submissions started (before the publish, so no worker can
    /// finish a job before it is counted).
    pub(super) producers: Lanes<Producer>,
    /// Worker handles not owned by a thread, with their index (which also
    /// picks their `stats` block).
    pub(super) free: Mutex<Vec<(usize, Handle)>>,
    pub(super) threads: Mutex<Threads>,
    /// Where idle workers sleep.
    pub(super) bell: Doorbell,
    pub(super) idle_lock: Mutex<()>,
    pub(super) idle_cond: Condvar,
    /// Threads in `wait_idle` or `shutdown_timeout`.
    pub(super) idle_waiters: CachePadded<AtomicUsize>,
    /// One block per worker handle, written only by the thread holding the
    /// handle: no shared counter on the job path.
    pub(super) stats: Box<[CachePadded<WorkerStats>]>,
    /// Submissions refused; with the workers' counts these are the
    /// submissions finished with.
    pub(super) rejected: AtomicUsize,
    pub(super) min: AtomicUsize,
    pub(super) max: AtomicUsize,
    /// `max` at build time: the number of worker handles.
    pub(super) cap: usize,
    /// Live worker threads, `0..=cap`: incremented before a thread starts,
    /// decremented by a thread that has decided to exit.
    pub(super) workers: AtomicUsize,
    /// Set by `shutdown_now` (and an expired `shutdown_timeout`): workers
    /// return the jobs they take instead of running them. Shared with every
    /// cancel token, so running tasks see it too.
    pub(super) discard: Arc<AtomicBool>,
    pub(super) returned: Mutex<Vec<Job>>,
    pub(super) keep_alive: Duration,
    pub(super) name: String,
    pub(super) stack_size: Option<usize>,
    pub(super) on_start: Option<Hook>,
    pub(super) on_exit: Option<Hook>,
    pub(super) on_panic: Option<PanicHook>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only means a panic elsewhere while holding the lock; every
    // critical section here leaves the data consistent at each step.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

cfg_not_loom! {
    thread::thread_local! {
        /// The `Inner` address of the pool this thread works for, or 0.
        pub(super) static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
    }
}

// Loom's `thread_local!` takes no `const` initialisers.
cfg_loom! {
    thread::thread_local! {
        pub(super) static CURRENT_POOL: Cell<usize> = Cell::new(0);
    }
}

/// Why a worker stopped waiting.
pub(super) enum Woke {
    Job(Job),
    /// A job is being published: look again (after a yield) rather than
    /// sleep.
    Soon,
    Retire,
    Closed,
}

impl Inner {
    pub(super) fn new_job(
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
    pub(super) fn finished(&self) -> usize {
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
    pub(super) fn is_idle(&self) -> bool {
        let s1 = self.producers.counted();
        let f = self.finished();
        let s2 = self.producers.counted();
        s1 == s2 && f >= s1
    }

    /// Waits until idle or `deadline`; returns whether idle.
    pub(super) fn wait_idle_until(&self, deadline: Option<Instant>) -> bool {
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

    pub(super) fn signal_idle_waiters(&self) {
        if self.idle_waiters.load(Ordering::SeqCst) > 0 {
            let g = lock(&self.idle_lock);
            self.idle_cond.notify_all();
            drop(g);
        }
    }

    /// Publishes the job `job` builds (in its queue slot), waiting up to
    /// `wait` (None: forever, Some(0): not at all). Returns the job's sequence in the queue (its id). The lane
    /// counts the submission before its publish, so a worker can never
    /// finish the job before it is counted (`is_idle`).
    pub(super) fn submit(
        this: &Arc<Self>,
        job: impl FnOnce() -> Job,
        wait: Option<Duration>,
    ) -> Result<u64, TryPushError<Job>> {
        // The doorbell is read right after the claim, not after the publish
        // (doorbell docs, "Announced work"): a sleeper that misses this
        // submit sees the claimed slot (`Poll::Unfinished`) and looks again
        // instead of sleeping (`sleep`). The claim is a `SeqCst` RMW, so no
        // fence is needed; after the publish the fence had to wait for the
        // job's stores to drain (an `mfence` and often a cache miss on
        // every submit).
        match this.producers.push_with(job, wait, || this.bell.listen_after_rmw()) {
            Ok((seq, Some(true))) => {
                this.bell.signal();
                Ok(seq)
            }
            Ok((seq, Some(false))) => {
                Inner::grow_for_job(this);
                Ok(seq)
            }
            Ok((seq, None)) => {
                Inner::wake_one(this);
                Ok(seq)
            }
            Err(e) => {
                // SeqCst: part of the `is_idle` sum.
                this.rejected.fetch_add(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// After a publish: wake a sleeper, or start a worker if none sleeps.
    pub(super) fn wake_one(this: &Arc<Self>) {
        // The doorbell's fences (module docs): it sees a sleeper, or the
        // sleeper sees our job.
        // Then the worker count (`grow_for_job`): a stale answer only starts
        // a worker late (the busy workers will reach the job) or refuses at
        // `try_grow`'s CAS. Checked inline so a full pool (the steady state)
        // pays two loads per submit, not a call.
        if !this.bell.ring() {
            Inner::grow_for_job(this);
        }
    }

    /// Nobody sleeps: start a worker for the job just published if fewer
    /// than `max` live.
    #[inline]
    fn grow_for_job(this: &Arc<Self>) {
        let max = this.max.load(Ordering::Relaxed);
        // SeqCst: pairs with `retire`'s count CAS and fence: a count read
        // before a retirement (so no worker is started) comes after our
        // claim (a `SeqCst` RMW, or `ring`'s fence) in the SeqCst order,
        // so the retiring worker's last poll sees the job.
        if this.workers.load(Ordering::SeqCst) < max {
            Inner::try_grow(this, max);
        }
    }

    pub(super) fn wake_all(&self) {
        self.bell.ring_all();
    }

    /// Starts a worker if fewer than `limit` (and `cap`) live.
    #[cold]
    pub(super) fn try_grow(this: &Arc<Self>, limit: usize) -> bool {
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
        let backoff = Backoff::new();
        let handle = loop {
            if threads.closed {
                break None;
            }
            if let Some(h) = lock(&this.free).pop() {
                break Some(h);
            }
            backoff.snooze();
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
    /// A plain job that completes takes the inlined path; a discard, a
    /// deadline or token, and a panic go through the cold functions.
    #[inline]
    pub(super) fn handle(&self, job: Job, stats: &WorkerStats, thread_name: Option<&str>) {
        bump(&stats.taken);
        if job.extra.is_some() || self.discard.load(Ordering::SeqCst) {
            self.handle_rare(job, stats, thread_name);
            return;
        }
        let Job { id, body, .. } = job;
        self.run(id, body, stats, thread_name);
    }

    /// [`handle`](Self::handle) for a job with a deadline or token, or
    /// while discarding.
    #[cold]
    #[inline(never)]
    fn handle_rare(&self, job: Job, stats: &WorkerStats, thread_name: Option<&str>) {
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
        self.run(id, body, stats, thread_name);
    }

    #[inline(always)]
    fn run(&self, id: usize, body: job::Body, stats: &WorkerStats, thread_name: Option<&str>) {
        stats.running.store(1, Ordering::Relaxed);
        let ran = catch_unwind(AssertUnwindSafe(|| body.start(Start::Run)))
            .unwrap_or_else(|p| Ran::Panicked(Some(p)));
        stats.running.store(0, Ordering::Relaxed);
        match ran {
            Ran::Done => bump(&stats.completed),
            ran => self.not_done(id, ran, stats, thread_name),
        }
    }

    /// Counts a job that ran and did not complete; hands a panic to the
    /// panic handler.
    #[cold]
    #[inline(never)]
    fn not_done(&self, id: usize, ran: Ran, stats: &WorkerStats, thread_name: Option<&str>) {
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
    pub(super) fn sleep(&self, h: &mut Handle, keep_alive_over: &mut bool) -> Woke {
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
                // A submitter claimed the next slot and is writing it; it
                // may have fenced before we counted ourselves, and then it
                // will not ring (doorbell docs, "Announced work"): do not
                // wait for it, look again.
                (Poll::Unfinished, None) => Check::Done(Woke::Soon),
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
    pub(super) fn retire(&self, h: &mut Handle) -> Result<(), Option<Job>> {
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
        let (p, job) = take(h);
        match (p, job) {
            (_, Some(job)) => {
                self.workers.fetch_add(1, Ordering::SeqCst);
                Err(Some(job))
            }
            // A submitter's claim that fenced before ours (`submit`): its
            // job is coming and it may have counted on us; stay.
            (Poll::Unfinished, None) => {
                self.workers.fetch_add(1, Ordering::SeqCst);
                Err(None)
            }
            (_, None) => Ok(()),
        }
    }
}
