//! Rate limiters on one atomic word each (the sliding window: two): GCRA,
//! a token bucket, a leaky bucket that paces, and fixed- and
//! sliding-window counters; a keyed limiter (`alloc`) on the crate's own
//! map.
//!
//! # The clock is the caller's
//!
//! The core takes time as an argument: `now` is a monotonic count of
//! nanoseconds (or of any tick you like, as long as the quota is stated in
//! the same unit) from an origin of your choosing. Under `std` every
//! limiter also has [`Instant`](std::time::Instant)-based methods
//! (`try_acquire(n)`, `acquire(n)`, `acquire_timeout(n, d)`) measured from
//! one process-wide origin.
//!
//! # The algorithms and where they come from
//!
//! - [`Gcra`]: the Generic Cell Rate Algorithm of ATM networks (ITU-T
//!   I.371), the form `governor` and redis-cell use. One word, the
//!   *theoretical arrival time* `tat`; `n` cells are admitted at `now` if
//!   `max(tat, now) + n·T − now ≤ burst·T`, and then `tat` moves there.
//!   One compare-and-swap per admission. [`Gcra32`] is the same algorithm
//!   on a wrapping 32-bit tick, for targets without 64-bit atomics.
//! - [`TokenBucket`]: juju/ratelimit's shape: `quantum` tokens land every
//!   `interval`, up to `capacity`. Word: the refill level (`quantum ×
//!   ⌊now / interval⌋`) at which the bucket is full again, a full `u64`
//!   that never wraps: GCRA on the refill clock.
//! - [`LeakyBucket`]: uber-go/ratelimit's pacing leaky bucket:
//!   [`take_at`](LeakyBucket::take_at) always reserves the next slot and
//!   says how long to wait for it, so callers leave evenly spaced; `slack`
//!   lets an idle limiter catch up by a few slots.
//! - [`FixedWindow`]: at most `limit` per aligned window. Word: the
//!   position `limit × window + count`, a full `u64` that never wraps.
//! - [`SlidingWindow`]: Cloudflare's sliding-window counter: the previous
//!   window's count, weighted by how much of it still overlaps the last
//!   `window` of time, plus the current one. Word: `(window: u24,
//!   current: u20, previous: u20)`, beside a second word, the full index
//!   of the latest window counted in, which tells the 24 bits' direction.
//! - [`Keyed`] (`alloc`): one GCRA word per key in a [`map::HashMap`](crate::map::HashMap);
//!   a key whose `tat` is in the past is indistinguishable from a fresh
//!   one, so [`Keyed::sweep_at`] removes it without changing any future
//!   decision, and memory stays bounded by the keys active within one
//!   burst period.
//!
//! # Ground rules
//!
//! - **Never over-admit.** Each limiter's counting state is one atomic
//!   word (the sliding window's second word only says how far back its
//!   window is), changed only by a compare-and-swap from the value the
//!   decision was computed on, so concurrent admissions are serialised by
//!   that word's modification order and count exactly as if they ran one
//!   after another.
//!   The word guards no other memory, so `Relaxed` is enough, except in
//!   [`SlidingWindow`], whose word publishes its high-water window index
//!   (Release/Acquire).
//! - **`try_acquire` never waits.** On refusal it says when `n` will be
//!   available ([`TryAcquireError::NotReady`]), on the caller's clock, if
//!   nobody else takes capacity first.
//! - **`n` above the burst is an error**, [`TryAcquireError::TooLarge`], not
//!   a wait that never ends. `n == 0` is always admitted.
//! - **The clock may go backwards.** Nothing panics and no capacity is
//!   created. [`Gcra`], [`TokenBucket`], [`LeakyBucket`], [`FixedWindow`]
//!   and [`SlidingWindow`] never move their word back, whatever the jump:
//!   a `now` behind it (a stale reading, or a clock that went back by `d`)
//!   sees less capacity (the window counters count it in the latest window
//!   read), so the worst case is `d` of refusals (plus a window for the
//!   window counters). [`Gcra32`]'s wrapping 32-bit word re-anchors to the
//!   new reading *without* refilling after a very long idle spell.
//! - **A new limiter starts full** whatever its first `now`.
//!
//! Progress: every `try_acquire` is lock-free (a failed CAS means another
//! caller's succeeded). Nothing here blocks except the `std` `acquire`
//! methods, which sleep.
//!
//! ```
//! use latchfree::limiter::{Gcra, Quota, TryAcquireError};
//!
//! // 10 per second, bursts of up to 5; a static needs no allocation.
//! static LIMIT: Gcra = Gcra::new(Quota::per_second(10).allow_burst(5));
//! let t0 = 1_000_000_000; // the caller's clock, in nanoseconds
//! assert!(LIMIT.try_acquire_at(5, t0).is_ok());
//! match LIMIT.try_acquire_at(1, t0) {
//!     Err(TryAcquireError::NotReady { ready_at }) => assert_eq!(ready_at, t0 + 100_000_000),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod gcra;
#[cfg(feature = "std")]
mod std_wait;
#[cfg(test)]
mod tests;
cfg_atomic64! {
    #[cfg(feature = "alloc")]
    mod keyed;
    mod leaky;
    mod token;
    mod window;
}

use core::fmt;

pub use self::gcra::Gcra32;
#[cfg(feature = "std")]
pub use self::std_wait::{now_nanos, AcquireError};
cfg_atomic64! {
    pub use self::gcra::Gcra;
    #[cfg(feature = "alloc")]
    pub use self::keyed::Keyed;
    pub use self::leaky::LeakyBucket;
    pub use self::token::TokenBucket;
    pub use self::window::{FixedWindow, SlidingWindow};
}

/// A rate: one cell every `period` (nanoseconds, or the caller's tick),
/// with up to `burst` cells at once after an idle spell.
///
/// ```
/// use latchfree::limiter::Quota;
///
/// let q = Quota::per_second(100).allow_burst(10);
/// assert_eq!(q.period(), 10_000_000);
/// assert_eq!(q.burst(), 10);
/// assert!(Quota::try_new(0, 1).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    period: u64,
    burst: u32,
}

/// Why a [`Quota`] (or a window limiter's parameters) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// The period (or window) was zero.
    ZeroPeriod,
    /// The burst (or limit) was zero.
    ZeroBurst,
    /// `period × burst` does not fit the limiter's clock range.
    TooLong,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaError::ZeroPeriod => "rate limiter period is zero",
            QuotaError::ZeroBurst => "rate limiter burst is zero",
            QuotaError::TooLong => "rate limiter period × burst overflows its clock range",
        })
    }
}

impl core::error::Error for QuotaError {}

impl Quota {
    /// `period` per cell and `burst` cells at once, checked.
    pub const fn try_new(period: u64, burst: u32) -> Result<Quota, QuotaError> {
        if period == 0 {
            return Err(QuotaError::ZeroPeriod);
        }
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        // Keep `tat` arithmetic (now + burst·period + n·period) far from
        // overflow: half the range is plenty (292 years in nanoseconds).
        match period.checked_mul(burst as u64) {
            Some(tau) if tau <= u64::MAX / 4 => Ok(Quota { period, burst }),
            _ => Err(QuotaError::TooLong),
        }
    }

    /// `n` cells per second of nanoseconds (`period = 10⁹ / n`, rounded
    /// down), burst `n`.
    ///
    /// # Panics
    ///
    /// If `n` is zero or above 10⁹ (a compile error in a `const`/`static`).
    pub const fn per_second(n: u32) -> Quota {
        assert!(n > 0, "Quota::per_second: n must be at least 1");
        assert!(
            n <= 1_000_000_000,
            "Quota::per_second: at most 10^9 per second"
        );
        Quota {
            period: 1_000_000_000 / n as u64,
            burst: n,
        }
    }

    /// One cell every `period`, burst 1.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub const fn with_period(period: u64) -> Quota {
        assert!(period > 0, "Quota::with_period: period must be positive");
        Quota { period, burst: 1 }
    }

    /// The same rate with bursts of up to `burst` cells. A larger burst
    /// lets an idle client catch up faster; a smaller one smooths traffic.
    ///
    /// # Panics
    ///
    /// If `burst` is zero or `period × burst` is out of range (see
    /// [`try_new`](Self::try_new)).
    pub const fn allow_burst(self, burst: u32) -> Quota {
        match Quota::try_new(self.period, burst) {
            Ok(q) => q,
            Err(QuotaError::ZeroBurst) => panic!("Quota::allow_burst: burst must be at least 1"),
            Err(_) => panic!("Quota::allow_burst: period × burst out of range"),
        }
    }

    /// Time per cell.
    pub const fn period(&self) -> u64 {
        self.period
    }

    /// Cells admitted at once after an idle spell.
    pub const fn burst(&self) -> u32 {
        self.burst
    }
}

/// Why [`try_acquire_at`](Limiter::try_acquire_at) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryAcquireError {
    /// Not now; `n` will be available at `ready_at` (the caller's clock)
    /// if nobody else takes capacity first.
    NotReady {
        /// The earliest time to retry.
        ready_at: u64,
    },
    /// `n` is more than the limiter ever admits at once; retrying will
    /// never help.
    TooLarge {
        /// What was asked for.
        requested: u32,
        /// The most the limiter admits at once.
        capacity: u32,
    },
}

impl TryAcquireError {
    /// How long from `now` until the retry time (`None` for `TooLarge`).
    pub fn wait(&self, now: u64) -> Option<u64> {
        match *self {
            TryAcquireError::NotReady { ready_at } => Some(ready_at.saturating_sub(now)),
            TryAcquireError::TooLarge { .. } => None,
        }
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::NotReady { ready_at } => {
                write!(f, "rate limited until {ready_at}")
            }
            TryAcquireError::TooLarge {
                requested,
                capacity,
            } => write!(
                f,
                "requested {requested} cells but the limiter admits at most {capacity} at once"
            ),
        }
    }
}

impl core::error::Error for TryAcquireError {}

/// What every limiter here does: admit `n` cells at `now`, or say why not.
///
/// ```
/// use latchfree::limiter::{FixedWindow, Limiter};
///
/// fn admit(l: &impl Limiter, now: u64) -> bool {
///     l.try_acquire_at(1, now).is_ok()
/// }
/// let w = FixedWindow::new(2, 1_000);
/// assert!(admit(&w, 0) && admit(&w, 1) && !admit(&w, 2));
/// assert!(admit(&w, 1_000));
/// ```
pub trait Limiter {
    /// Admits `n` cells at `now` or refuses without waiting.
    fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError>;

    /// The most cells admitted at once (a larger `n` is
    /// [`TooLarge`](TryAcquireError::TooLarge)).
    fn capacity(&self) -> u32;
}

/// `TooLarge` if `n` exceeds `capacity`.
#[inline]
const fn check_size(n: u32, capacity: u32) -> Result<(), TryAcquireError> {
    if n > capacity {
        Err(TryAcquireError::TooLarge {
            requested: n,
            capacity,
        })
    } else {
        Ok(())
    }
}
