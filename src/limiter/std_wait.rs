//! `std` conveniences: the limiters on [`Instant`], and waits that sleep.
//!
//! The clock is nanoseconds since one process-wide origin (the first call
//! of [`now_nanos`]); every limiter's `try_acquire(n)` is its
//! `try_acquire_at(n, now_nanos())`. `acquire` sleeps until the refusal's
//! retry time and tries again (another caller may have taken the capacity
//! meanwhile); `acquire_timeout` gives up at once if the retry time is
//! beyond its deadline, rather than sleeping for nothing.

use core::fmt;
use core::hash::Hash;
use core::time::Duration;

use super::{FixedWindow, Gcra, Keyed, LeakyBucket, SlidingWindow, TokenBucket, TryAcquireError};
use crate::sync::blocking::OnceLock;
use crate::sync::thread;
use crate::sync::time::{self, Instant};

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide origin the `std` limiter and breaker
/// methods use (fixed by the first call). Pass it to the `_at` methods to
/// mix the two forms.
///
/// ```
/// let a = latchfree::limiter::now_nanos();
/// let b = latchfree::limiter::now_nanos();
/// assert!(b >= a);
/// ```
pub fn now_nanos() -> u64 {
    let now = time::now();
    now.duration_since(*ORIGIN.get_or_init(|| now)).as_nanos() as u64
}

/// Why [`acquire`](Gcra::acquire) or [`acquire_timeout`](Gcra::acquire_timeout)
/// did not admit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireError {
    /// `n` is more than the limiter ever admits at once.
    TooLarge {
        /// What was asked for.
        requested: u32,
        /// The most the limiter admits at once.
        capacity: u32,
    },
    /// `n` would not be available before the deadline.
    Timeout,
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::TooLarge {
                requested,
                capacity,
            } => write!(
                f,
                "requested {requested} cells but the limiter admits at most {capacity} at once"
            ),
            AcquireError::Timeout => f.write_str("rate limiter wait timed out"),
        }
    }
}

impl core::error::Error for AcquireError {}

/// The shared wait loop: sleep until each refusal's retry time, give up
/// if that is past `deadline`.
fn wait_for(
    deadline: Option<u64>,
    mut attempt: impl FnMut(u64) -> Result<(), TryAcquireError>,
) -> Result<(), AcquireError> {
    loop {
        let now = now_nanos();
        match attempt(now) {
            Ok(()) => return Ok(()),
            Err(TryAcquireError::TooLarge {
                requested,
                capacity,
            }) => {
                return Err(AcquireError::TooLarge {
                    requested,
                    capacity,
                })
            }
            Err(TryAcquireError::NotReady { ready_at }) => {
                if deadline.is_some_and(|d| ready_at > d) {
                    return Err(AcquireError::Timeout);
                }
                thread::sleep(Duration::from_nanos(ready_at.saturating_sub(now).max(1)));
            }
        }
    }
}

fn deadline_after(d: Duration) -> u64 {
    now_nanos().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

macro_rules! std_methods {
    ($($ty:ty),*) => {$(
        impl $ty {
            /// Admits `n` now, or says when (on [`now_nanos`]'s clock);
            /// never waits.
            #[inline]
            pub fn try_acquire(&self, n: u32) -> Result<(), TryAcquireError> {
                self.try_acquire_at(n, now_nanos())
            }

            /// Waits (sleeping) until `n` is admitted. Errors only for
            /// `n` above the limiter's capacity.
            pub fn acquire(&self, n: u32) -> Result<(), AcquireError> {
                wait_for(None, |now| self.try_acquire_at(n, now))
            }

            /// Waits at most `timeout` for `n` to be admitted.
            pub fn acquire_timeout(&self, n: u32, timeout: Duration) -> Result<(), AcquireError> {
                let deadline = deadline_after(timeout);
                wait_for(Some(deadline), |now| self.try_acquire_at(n, now))
            }
        }
    )*};
}

std_methods!(Gcra, TokenBucket, LeakyBucket, FixedWindow, SlidingWindow);

impl LeakyBucket {
    /// Reserves the next permit and sleeps until it is due; returns the
    /// time slept (uber-go/ratelimit's `Take`).
    pub fn take(&self) -> Duration {
        let wait = Duration::from_nanos(self.take_at(now_nanos()));
        if !wait.is_zero() {
            thread::sleep(wait);
        }
        wait
    }
}

impl<K, S> Keyed<K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: core::hash::BuildHasher,
{
    /// Admits `n` for `key` now, or says when; never waits.
    pub fn try_acquire(&self, key: &K, n: u32) -> Result<(), TryAcquireError> {
        self.try_acquire_at(key, n, now_nanos())
    }

    /// Waits (sleeping) until `n` is admitted for `key`.
    pub fn acquire(&self, key: &K, n: u32) -> Result<(), AcquireError> {
        wait_for(None, |now| self.try_acquire_at(key, n, now))
    }

    /// Waits at most `timeout` for `n` to be admitted for `key`.
    pub fn acquire_timeout(&self, key: &K, n: u32, timeout: Duration) -> Result<(), AcquireError> {
        let deadline = deadline_after(timeout);
        wait_for(Some(deadline), |now| self.try_acquire_at(key, n, now))
    }

    /// Removes the keys idle now; see [`sweep_at`](Self::sweep_at).
    pub fn sweep(&self) -> usize {
        self.sweep_at(now_nanos())
    }
}
