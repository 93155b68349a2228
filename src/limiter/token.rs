//! A token bucket in juju/ratelimit's shape, on one word.
//!
//! `quantum` tokens land every `interval`, up to `capacity`. Measure the
//! refills on one axis, the *level* `quantum × ⌊now / interval⌋` (every
//! token ever refilled, counted from the clock's origin). The word is
//! `full_at`: the level at which the bucket is full again. At level `L`
//! the bucket holds `capacity − (full_at − L)` tokens if `full_at > L`,
//! else `capacity`. Taking `n` moves the word to `max(full_at, L) + n`,
//! allowed while that is at most `L + capacity`; one compare-and-swap.
//!
//! This is GCRA ([`Gcra`](super::Gcra)) on the refill clock, with `n`
//! tokens for `n·T` and `capacity` for `τ`, and it inherits GCRA's clock
//! rule: the word only ever moves forward. A `now` behind the word's level
//! (a stale reading from a preempted caller, or a clock that went back)
//! sees fewer tokens, never more, so a jump back of any size creates no
//! token: it costs at most its own length in refusals, as time catches up.
//! A fresh word (0) reads as a full bucket at every `now`, whenever the
//! first call comes.
//!
//! Range: the level must fit a `u64` with room for `capacity` to spare,
//! i.e. `quantum × now / interval < 2⁶⁴ − capacity` (584 years of
//! nanoseconds at a token per nanosecond). A `now` past that is refused
//! with `ready_at == u64::MAX`, never admitted.

use super::{check_size, Limiter, Quota, TryAcquireError};
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// A token bucket: up to `capacity` tokens, `quantum` more every
/// `interval`; `try_acquire` takes `n` if they are there.
///
/// ```
/// use latchfree::limiter::{Limiter, TokenBucket};
///
/// // 100 tokens at most, 10 more every millisecond.
/// static B: TokenBucket = TokenBucket::with_refill(100, 10, 1_000_000);
/// assert!(B.try_acquire_at(100, 0).is_ok());
/// let err = B.try_acquire_at(15, 0).unwrap_err();
/// assert_eq!(err.wait(0), Some(2_000_000)); // two refills
/// assert!(B.try_acquire_at(10, 1_000_000).is_ok());
/// ```
#[derive(Debug)]
pub struct TokenBucket {
    /// The refill level (`quantum × ⌊now / interval⌋`) at which the bucket
    /// is full again; only grows, and at most `capacity` past the latest
    /// level that took tokens. 0 (fresh) reads as full at any level.
    full_at: AtomicU64,
    capacity: u32,
    quantum: u32,
    interval: u64,
}

impl TokenBucket {
    const_fn_unless_loom! {
        /// A full bucket of `quota.burst()` tokens, one more per
        /// `quota.period()`.
        pub fn new(quota: Quota) -> TokenBucket {
            TokenBucket::with_refill(quota.burst(), 1, quota.period())
        }
    }

    const_fn_unless_loom! {
        /// A full bucket of `capacity` tokens, `quantum` more every
        /// `interval`. A larger quantum on a longer interval costs less
        /// clock arithmetic per token but releases tokens in lumps.
        ///
        /// # Panics
        ///
        /// If any argument is zero or `quantum > capacity`.
        pub fn with_refill(capacity: u32, quantum: u32, interval: u64) -> TokenBucket {
            assert!(capacity > 0, "TokenBucket: capacity must be at least 1");
            assert!(quantum > 0 && quantum <= capacity, "TokenBucket: quantum must be in 1..=capacity");
            assert!(interval > 0, "TokenBucket: interval must be positive");
            TokenBucket {
                full_at: AtomicU64::new(0),
                capacity,
                quantum,
                interval,
            }
        }
    }

    /// Takes `n` tokens at `now`, or says when they will be there.
    #[inline]
    pub fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        check_size(n, self.capacity)?;
        if n == 0 {
            return Ok(());
        }
        let Some(level) = self.level(now) else {
            return Err(TryAcquireError::NotReady { ready_at: u64::MAX });
        };
        let capacity = self.capacity as u64;
        // Relaxed: the word guards no other memory; the CAS alone orders
        // takers (its modification order is the order tokens were taken).
        let mut full_at = self.full_at.load(Relaxed);
        loop {
            // `level ≤ 2⁶⁴ − 1 − capacity` and, once stored, `full_at` is
            // at most `capacity` past some level, so only a `full_at` from
            // a later `now` at the very end of the range can overflow.
            let Some(new) = full_at.max(level).checked_add(n as u64) else {
                return Err(TryAcquireError::NotReady { ready_at: u64::MAX });
            };
            if new - level > capacity {
                // Includes a `now` behind the word (stale or backwards):
                // fewer tokens, never a reason to move the word back.
                // Ready at the first tick whose level reaches
                // `new − capacity` (after `now`'s, as `new − capacity >
                // level`).
                let ready_tick = (new - capacity).div_ceil(self.quantum as u64);
                return Err(TryAcquireError::NotReady {
                    ready_at: ready_tick.saturating_mul(self.interval),
                });
            }
            match self.full_at.compare_exchange_weak(full_at, new, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    full_at = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }

    /// The refill level at `now`, if within range (see the module docs).
    #[inline]
    fn level(&self, now: u64) -> Option<u64> {
        (now / self.interval)
            .checked_mul(self.quantum as u64)
            .filter(|&level| level <= u64::MAX - self.capacity as u64)
    }

    /// Tokens available at `now` (stale as soon as it returns).
    pub fn available_at(&self, now: u64) -> u32 {
        let Some(level) = self.level(now) else {
            return 0;
        };
        let owed = self.full_at.load(Relaxed).saturating_sub(level);
        self.capacity - owed.min(self.capacity as u64) as u32
    }
}

impl Limiter for TokenBucket {
    #[inline]
    fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        TokenBucket::try_acquire_at(self, n, now)
    }

    fn capacity(&self) -> u32 {
        self.capacity
    }
}
