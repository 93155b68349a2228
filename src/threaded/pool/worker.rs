//! A worker thread's loop: claim jobs (in batches while the queue is
//! deep), run them, back off, sleep on the doorbell, retire.

use alloc::vec::Vec;
use alloc::string::String;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;

use super::job::Job;
use super::metrics::WorkerStats;
use super::state::{lock, Handle, Inner, Woke, CURRENT_POOL};
use crate::ring::Poll;
use crate::sync::time;
use crate::sync::{thread, Arc, Backoff, Ordering};

/// A worker that slept longer than this before a job came treats jobs as
/// sparse: it sleeps again right after its job, without spinning.
const SPARSE_SLEEP: Duration = Duration::from_micros(200);
/// The most jobs a worker claims at once (module docs on batching).
const MAX_CLAIM: usize = 16;
/// A claimed batch that ran slower than this drops the next claim back to
/// a single job; a full claim that ran faster doubles it.
const CLAIM_BUDGET: Duration = Duration::from_micros(20);

/// Polls once, taking the job out of the claimed slot.
pub(super) fn take(h: &mut Handle) -> (Poll, Option<Job>) {
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
fn take_into(h: &mut Handle, max: usize, buf: &mut Vec<Job>) -> Poll {
    h.poll_limit(max, |slot, seq, _| {
        // SAFETY: as in `take`.
        if let Some(mut job) = unsafe { slot.take() } {
            job.id = seq as usize;
            buf.push(job);
        }
    })
}

pub(super) fn worker_main(inner: Arc<Inner>, mut h: Handle, slot: usize, index: usize) {
    CURRENT_POOL.with(|c| c.set(Arc::as_ptr(&inner) as usize));
    if let Some(f) = &inner.on_start {
        let _ = catch_unwind(AssertUnwindSafe(|| f(index)));
    }
    let name = thread::current().name().map(String::from);
    let stats: &WorkerStats = &inner.stats[slot];
    let mut keep_alive_over = false;
    // Jobs claimed and not yet run, and how many to claim at once (module
    // docs on batching).
    let mut buf: Vec<Job> = Vec::with_capacity(MAX_CLAIM);
    let mut claim = 1;
    // Jobs are sparse: the worker's last sleep was long (over
    // `SPARSE_SLEEP`) and it has not found jobs back to back since. A
    // sparse worker goes back to sleep right after its job, with no
    // spinning (an idle pool then costs one wake-up per job and nothing
    // more); a short sleep, or a job found right after another, makes it
    // spin again before sleeping.
    let mut sparse = false;
    // When the last batch was timed, the clock at its end: a batch claimed
    // right after it (nothing but the claim in between) is timed from
    // there, so back-to-back batches read the clock once each.
    let mut timed_end = None;
    'work: loop {
        let p = take_into(&mut h, claim, &mut buf);
        let k = buf.len();
        if k > 0 {
            keep_alive_over = false;
            sparse = false;
            // Only a batch of several is timed (a clock read costs about as
            // much as a no-op job).
            let t = if k > 1 {
                Some(timed_end.take().unwrap_or_else(time::now))
            } else {
                timed_end = None;
                None
            };
            // In queue order. `handle` catches every panic, so no job is
            // left in the drained buffer to be dropped unrun.
            for job in buf.drain(..) {
                inner.handle(job, stats, name.as_deref());
            }
            let slow = t.is_some_and(|t| {
                let end = time::now();
                timed_end = Some(end);
                end.saturating_duration_since(t) >= CLAIM_BUDGET
            });
            if slow {
                claim = 1;
            } else if k == claim {
                // A full claim: the queue is at least this deep.
                claim = (claim * 2).min(MAX_CLAIM);
            }
            continue;
        }
        timed_end = None;
        match p {
            Poll::Closed | Poll::Halted => break,
            Poll::Processed(_) => continue,
            Poll::Idle | Poll::Unfinished | Poll::Gated => {}
        }
        // Back off briefly (spins, then yields) before sleeping: a
        // submitter that keeps up then never pays for a wake-up. On a
        // machine with fewer cores than threads the yields matter most:
        // they hand the core to the submitter about to publish the next
        // job.
        if !sparse {
            let backoff = Backoff::new();
            while !backoff.is_completed() {
                backoff.snooze();
                let (p, job) = take(&mut h);
                if let Some(job) = job {
                    inner.handle(job, stats, name.as_deref());
                    continue 'work;
                }
                if matches!(p, Poll::Closed | Poll::Halted) {
                    break 'work;
                }
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
            Woke::Soon => thread::yield_now(),
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
