//! GCRA on one word: [`Gcra`] (64-bit nanoseconds) and [`Gcra32`]
//! (wrapping 32-bit ticks).
//!
//! The word is the *theoretical arrival time* `tat`: the time at which the
//! schedule would be empty again. Admitting `n` cells at `now` moves it to
//! `new = max(tat, now) + n·T` and is allowed while `new − now ≤ τ`, with
//! `T` the period and `τ = burst·T`. A refusal's retry time is the `t` with
//! `new − t = τ`, i.e. `new − τ`.
//!
//! The word only ever moves forward (`new > tat`), whatever `now` a caller
//! brings. That matters more than it looks: a caller preempted between
//! reading its clock and calling us brings a *stale* `now`, which looks
//! exactly like a clock that went backwards. Treating either as a reason
//! to move `tat` back would hand out capacity twice, so neither does: a
//! `now` behind the schedule is simply refused until the schedule allows
//! (a backwards jump of `d` costs at most `d` of refusals, never a cell).
//!
//! Why a compare-and-swap and not a `fetch_add`: when the schedule is
//! ahead of `now` the step is `tat + n·T`, which a `fetch_add` could do
//! (refunding on refusal), but an unsaturated limiter (the common case,
//! and the shootout's contended benchmark) has `tat` *behind* `now`, where
//! the step is `now + n·T`: a conditional store, i.e. a CAS or an atomic
//! max (itself a CAS loop on x86). Measured with two pinned threads
//! admitting every call, this loop's CAS fails on 1–3 % of calls, so
//! retries are not where contended time goes: the cost is the one word's
//! cache line moving between cores on every call, which governor (also one
//! CAS word) pays the same.
//!
//! [`Gcra32`]'s word wraps, so a word far "ahead" of `now` may also be an
//! old word seen across the wrap after an idle spell of about 2³¹ ticks.
//! It treats a word more than `τ + 2²⁴` ticks ahead (far beyond any stale
//! read) as that case and repairs it to `now + τ`: an empty schedule,
//! never a full one.

use super::{check_size, Limiter, QuotaError, TryAcquireError};
use crate::sync::{AtomicU32, Ordering::Relaxed};

cfg_atomic64! {
    use super::Quota;
    use crate::sync::AtomicU64;

    /// GCRA: `burst` cells at once, then one per `period`; one atomic word and
    /// one compare-and-swap per admission.
    ///
    /// `const`-constructible, so it can be a `static`. Only on targets with
    /// 64-bit atomics; see [`Gcra32`] for the others.
    ///
    /// ```
    /// use latchfree::limiter::{Gcra, Limiter, Quota};
    ///
    /// let l = Gcra::new(Quota::with_period(1_000).allow_burst(2));
    /// assert!(l.try_acquire_at(2, 0).is_ok());
    /// let err = l.try_acquire_at(1, 0).unwrap_err();
    /// assert_eq!(err.wait(0), Some(1_000));
    /// assert!(l.try_acquire_at(1, 1_000).is_ok());
    /// assert!(l.try_acquire_at(3, 5_000).is_err()); // more than the burst: TooLarge
    /// ```
    #[derive(Debug)]
    pub struct Gcra {
        /// Theoretical arrival time, in the caller's clock; only grows. At
        /// most `now + τ` for the latest `now` that was admitted.
        tat: AtomicU64,
        quota: Quota,
    }

    impl Gcra {
        const_fn_unless_loom! {
            /// A limiter with the whole burst available.
            pub fn new(quota: Quota) -> Gcra {
                Gcra { tat: AtomicU64::new(0), quota }
            }
        }

        /// The quota.
        pub fn quota(&self) -> Quota {
            self.quota
        }

        /// Admits `n` cells at `now`, or says when they will be available.
        #[inline]
        pub fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
            acquire_on(&self.tat, &self.quota, n, now)
        }
    }

    impl Limiter for Gcra {
        #[inline]
        fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
            Gcra::try_acquire_at(self, n, now)
        }

        fn capacity(&self) -> u32 {
            self.quota.burst
        }
    }

    /// The GCRA step on any `tat` word (the keyed limiter shares it).
    #[inline]
    pub(super) fn acquire_on(
        word: &AtomicU64,
        quota: &Quota,
        n: u32,
        now: u64,
    ) -> Result<(), TryAcquireError> {
        check_size(n, quota.burst)?;
        if n == 0 {
            return Ok(());
        }
        let tau = tolerance(quota);
        let inc = quota.period * n as u64;
        // Relaxed throughout: the word guards no other memory; the CAS alone
        // orders admissions (its modification order is the admission order).
        let mut tat = word.load(Relaxed);
        loop {
            if tat == u64::MAX {
                // The keyed limiter's retired marker (unreachable otherwise):
                // never repair it back into service.
                return Err(TryAcquireError::NotReady { ready_at: now });
            }
            let new = tat.max(now).saturating_add(inc);
            if new - now > tau {
                // Includes a `now` behind the schedule (stale or backwards):
                // refused, never a reason to move `tat` back.
                return Err(TryAcquireError::NotReady {
                    ready_at: new - tau,
                });
            }
            match word.compare_exchange_weak(tat, new, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    tat = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }

    /// `burst × period`: how far ahead of `now` the schedule may run.
    const fn tolerance(quota: &Quota) -> u64 {
        quota.period * quota.burst as u64
    }
}

/// GCRA on a wrapping 32-bit tick, for targets without 64-bit atomics
/// (thumbv6m/v7m, riscv32imac, ...).
///
/// `now` is the caller's tick, of which only the low 32 bits are used;
/// `period × burst` must be at most 2³⁰ ticks. Correct across the tick
/// counter's wrap. After an idle spell of about 2³¹ ticks the word may
/// read as if in the future: more than `τ + 2²⁴` ticks ahead it is
/// repaired to an empty schedule (a refusal of at most one burst period);
/// less far ahead it is refused like a stale `now`, until the tick gets
/// there (at most `τ + 2²⁴` ticks). Never extra cells.
///
/// ```
/// use latchfree::limiter::{Gcra32, Limiter};
///
/// // 1 ms ticks: one cell per 10 ticks, burst 3.
/// static L: Gcra32 = match Gcra32::try_new(10, 3) { Ok(l) => l, Err(_) => panic!() };
/// let near_wrap = u32::MAX as u64 - 5;
/// assert!(L.try_acquire_at(3, near_wrap).is_ok());
/// assert!(L.try_acquire_at(1, near_wrap).is_err());
/// assert!(L.try_acquire_at(1, near_wrap + 10).is_ok()); // across the wrap
/// ```
#[derive(Debug)]
pub struct Gcra32 {
    /// Theoretical arrival time, wrapping; within `τ` ahead of the last
    /// `now` seen (repaired otherwise). `FRESH` (0) until the first
    /// admission, which reads as a full bucket at any tick; it is never
    /// stored afterwards (a schedule ending at tick 0 is stored as 1).
    tat: AtomicU32,
    period: u32,
    burst: u32,
}

/// The never-used word of [`Gcra32`].
const FRESH: u32 = 0;

/// How far behind the schedule a `now` may be and still be taken for a
/// stale read (refused) rather than a wrapped word (repaired).
const STALE_TICKS: u32 = 1 << 24;

impl Gcra32 {
    const_fn_unless_loom! {
        /// One cell per `period` ticks, `burst` at once, checked
        /// (`period × burst ≤ 2³⁰`).
        pub fn try_new(period: u32, burst: u32) -> Result<Gcra32, QuotaError> {
            if period == 0 {
                return Err(QuotaError::ZeroPeriod);
            }
            if burst == 0 {
                return Err(QuotaError::ZeroBurst);
            }
            if (period as u64) * (burst as u64) > 1 << 30 {
                return Err(QuotaError::TooLong);
            }
            Ok(Gcra32 { tat: AtomicU32::new(0), period, burst })
        }
    }

    /// Admits `n` cells at tick `now` (low 32 bits used), or says when
    /// they will be available (a tick after `now`, unwrapped).
    pub fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        check_size(n, self.burst)?;
        if n == 0 {
            return Ok(());
        }
        let now32 = now as u32;
        let tau = self.period * self.burst; // ≤ 2³⁰
        let inc = self.period * n; // ≤ τ
        let mut tat = self.tat.load(Relaxed);
        loop {
            // Signed distance of the word ahead of now; |·| < 2³¹ makes
            // the wrapping subtraction exact.
            let ahead = tat.wrapping_sub(now32) as i32;
            let base = if ahead <= 0 || tat == FRESH {
                now32
            } else if ahead as u32 > tau + STALE_TICKS {
                now32.wrapping_add(tau) // across a wrap: repaired, empty
            } else {
                tat // includes a stale `now`: refused below
            };
            // Never store FRESH: one tick later is the conservative stand-in.
            let new = match base.wrapping_add(inc) {
                FRESH => 1,
                new => new,
            };
            let lead = new.wrapping_sub(now32); // ≤ 2τ + 2²⁴ < 2³¹
            if lead > tau {
                if base != tat && tat != FRESH {
                    let _ = self
                        .tat
                        .compare_exchange(tat, base.max(1), Relaxed, Relaxed);
                }
                return Err(TryAcquireError::NotReady {
                    ready_at: now.saturating_add((lead - tau) as u64),
                });
            }
            match self.tat.compare_exchange_weak(tat, new, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    tat = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }
}

impl Limiter for Gcra32 {
    fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        Gcra32::try_acquire_at(self, n, now)
    }

    fn capacity(&self) -> u32 {
        self.burst
    }
}
