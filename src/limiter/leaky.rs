//! A pacing leaky bucket in the style of uber-go/ratelimit.
//!
//! The word is `next`: the earliest time the next permit may be issued.
//! [`LeakyBucket::take_at`] always reserves a slot: it issues at
//! `max(next, now − slack)`, moves `next` one period past that, and returns
//! how long the caller must wait for its slot. Callers that sleep for the
//! returned time leave evenly spaced, one per period; `slack` lets a
//! limiter that sat idle issue a few permits back to back to catch up.
//!
//! [`try_acquire_at`](LeakyBucket::try_acquire_at) is the meter form of
//! the same word (a GCRA with `burst = slack / period + 1`): it admits `n`
//! only if all `n` slots are due by `now`, and never reserves a future one.
//!
//! A clock that goes backwards only makes the returned waits longer; no
//! slot is issued twice.

use super::{check_size, Limiter, Quota, TryAcquireError};
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// A pacing limiter: one permit per `period`, evenly spaced; `take_at`
/// returns how long to wait for yours.
///
/// ```
/// use latchfree::limiter::{LeakyBucket, Quota};
///
/// // 100 per second, no slack: permits 10 ms apart.
/// let l = LeakyBucket::new(Quota::per_second(100).allow_burst(1));
/// assert_eq!(l.take_at(0), 0);
/// assert_eq!(l.take_at(0), 10_000_000); // wait 10 ms for the second
/// assert_eq!(l.take_at(0), 20_000_000);
/// assert_eq!(l.take_at(1_000_000_000), 0); // idle: the next is immediate
/// ```
#[derive(Debug)]
pub struct LeakyBucket {
    /// Earliest issue time of the next permit (the caller's clock).
    next: AtomicU64,
    period: u64,
    /// How far behind `now` an idle limiter may issue: `(burst − 1)·period`.
    slack: u64,
}

impl LeakyBucket {
    const_fn_unless_loom! {
        /// One permit per `quota.period()`; after an idle spell up to
        /// `quota.burst()` permits issue without waiting (uber's slack is
        /// `burst − 1`).
        pub fn new(quota: Quota) -> LeakyBucket {
            LeakyBucket {
                next: AtomicU64::new(0),
                period: quota.period(),
                slack: quota.period() * (quota.burst() as u64 - 1),
            }
        }
    }

    /// Reserves the next permit and returns how long to wait for it (0: go
    /// now). Never refuses: callers queue up in time, each told its turn.
    #[inline]
    pub fn take_at(&self, now: u64) -> u64 {
        // Relaxed: the word guards nothing else; the swap orders callers.
        let mut next = self.next.load(Relaxed);
        loop {
            let issue = next.max(now.saturating_sub(self.slack));
            match self.next.compare_exchange_weak(
                next,
                issue.saturating_add(self.period),
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => return issue.saturating_sub(now),
                Err(seen) => {
                    next = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }

    /// Admits `n` permits only if all are due by `now`; never reserves
    /// future slots.
    #[inline]
    pub fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        check_size(n, self.capacity())?;
        if n == 0 {
            return Ok(());
        }
        let mut next = self.next.load(Relaxed);
        loop {
            let issue = next.max(now.saturating_sub(self.slack));
            let last = issue.saturating_add(self.period * (n as u64 - 1));
            if last > now {
                return Err(TryAcquireError::NotReady { ready_at: last });
            }
            match self.next.compare_exchange_weak(
                next,
                last.saturating_add(self.period),
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    next = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }

    /// Most permits admitted at once by `try_acquire_at`: `slack / period + 1`.
    pub fn capacity(&self) -> u32 {
        (self.slack / self.period + 1) as u32
    }
}

impl Limiter for LeakyBucket {
    #[inline]
    fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        LeakyBucket::try_acquire_at(self, n, now)
    }

    fn capacity(&self) -> u32 {
        LeakyBucket::capacity(self)
    }
}
