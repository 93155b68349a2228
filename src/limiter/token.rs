//! A token bucket in juju/ratelimit's shape, on one word.
//!
//! Word layout: `tick: u32` (high half, `now / interval`, wrapping) and
//! `tokens: u32` (low half, `0 ..= capacity`). A reader refills by
//! `quantum` per tick elapsed since `tick`, capped at `capacity`, takes
//! what it needs and stores the new pair with one compare-and-swap.
//!
//! Ticks are compared with a signed wrapping distance. A tick *behind* the
//! stored one (a stale `now` from a preempted caller, or a clock that went
//! back) refills nothing until the clock passes the stored tick again;
//! far behind (more than a full refill plus 2²⁴ ticks: a wrap after 2³¹
//! idle ticks) repairs the word to an empty bucket at the new tick. No
//! token is created by a clock that goes back by less than about 2³¹
//! ticks; a jump back by more than that cannot be told from time going
//! forward across the wrap and refills the bucket (2.1 s at a 1 ns
//! interval, 36 min at 1 µs; found by the `limiter` fuzz target). Choose
//! an `interval` of a microsecond or more, so the 32-bit tick wraps rarely.

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
    /// `tick << 32 | tokens`.
    word: AtomicU64,
    capacity: u32,
    quantum: u32,
    interval: u64,
}

/// How far behind the stored tick a `now` may be and still count as stale
/// (time stands still) rather than wrapped (repaired).
const STALE_TICKS: u64 = 1 << 24;

const fn pack(tick: u32, tokens: u32) -> u64 {
    (tick as u64) << 32 | tokens as u64
}

const fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
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
                word: AtomicU64::new(pack(0, capacity)),
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
        let ticks = now / self.interval;
        let tick = ticks as u32;
        // Relaxed: the word guards nothing else; the CAS orders takers.
        let mut word = self.word.load(Relaxed);
        loop {
            let (anchor, available, repaired) = self.refill(word, tick);
            // The anchor tick as a full count on the caller's clock.
            let anchor_ticks = ticks.wrapping_add(anchor.wrapping_sub(tick) as i32 as i64 as u64);
            if available < n {
                if repaired {
                    // Store the repair so the refusal stays bounded.
                    let _ =
                        self.word
                            .compare_exchange(word, pack(anchor, available), Relaxed, Relaxed);
                }
                let missing = (n - available) as u64;
                let wait_ticks = missing.div_ceil(self.quantum as u64);
                return Err(TryAcquireError::NotReady {
                    ready_at: anchor_ticks
                        .saturating_add(wait_ticks)
                        .saturating_mul(self.interval),
                });
            }
            let new = pack(anchor, available - n);
            if new == word {
                return Ok(()); // n == 0 and nothing to refill
            }
            match self.word.compare_exchange_weak(word, new, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    word = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }

    /// The word's state at `tick`: `(anchor tick, tokens, repaired)`.
    ///
    /// - `tick` at or after the stored one: refill and move the anchor
    ///   there.
    /// - `tick` behind it by at most a full refill plus 2²⁴ ticks (a stale
    ///   `now` from a preempted caller, or a clock that went back a
    ///   little): time stands still at the stored tick, no refill until
    ///   the clock passes it again. The anchor never moves back here, or
    ///   the ticks between would be refilled twice.
    /// - further behind (a wrap of the 32-bit tick after 2³¹ idle ticks, or
    ///   a big jump back): repair to an *empty* bucket at `tick`, so the
    ///   refusal lasts at most one full refill.
    #[inline]
    fn refill(&self, word: u64, tick: u32) -> (u32, u32, bool) {
        let (then, tokens) = unpack(word);
        let elapsed = tick.wrapping_sub(then) as i32;
        if elapsed >= 0 {
            let refill = (elapsed as u64).saturating_mul(self.quantum as u64);
            let tokens = (tokens as u64 + refill).min(self.capacity as u64) as u32;
            return (tick, tokens, false);
        }
        let full_refill = (self.capacity as u64).div_ceil(self.quantum as u64);
        if elapsed.unsigned_abs() as u64 <= full_refill + STALE_TICKS {
            (then, tokens, false)
        } else {
            (tick, 0, true)
        }
    }

    /// Tokens available at `now` (stale as soon as it returns).
    pub fn available_at(&self, now: u64) -> u32 {
        self.refill(self.word.load(Relaxed), (now / self.interval) as u32)
            .1
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
