//! Window counters: [`FixedWindow`] (one word) and [`SlidingWindow`] (a
//! counting word and a high-water window index).
//!
//! Windows are aligned on the caller's clock: window `w` covers
//! `[w·len, (w+1)·len)`. A reader in a later window than the one counted
//! in resets (fixed) or shifts (sliding) the counts, in the same
//! compare-and-swap that admits.
//!
//! Like every limiter here, a window counter never moves back. A reader
//! in an *earlier* window than the latest one counted in (a stale reading
//! from a preempted caller, or a clock that went back by any amount)
//! counts in that latest window, and the sliding window as if at its start
//! (the previous window weighing fully). So no clock creates capacity: a
//! run of admissions never holds more than `limit` in any window from the
//! first admitting one to the latest one read, and a jump back of `d`
//! costs at most `d` (plus the window it lands in) of refusals, as the
//! clock catches up. A new counter is empty at whatever window its first
//! call reads.
//!
//! - [`FixedWindow`]'s word is its *position* `limit × window + count`, a
//!   full `u64` that never wraps (GCRA's shape: the first position of
//!   `now`'s window is the floor, its last the ceiling). Range: `limit ×
//!   ⌊now / len⌋ ≤ 2⁶⁴ − 1 − limit`, i.e. `now` below `2⁶⁴ / rate` (584
//!   years of nanoseconds at one admission a nanosecond); a `now` past it
//!   is refused with `ready_at == u64::MAX`, never admitted.
//! - [`SlidingWindow`]'s counts (20 bits each) leave 24 bits of the word
//!   for the window, too few to tell a jump back from time gone forward.
//!   The full index of the latest window counted in lives in a second
//!   word, `latest`, which only grows and is raised before the counting
//!   word moves to a later window (the word's Release/Acquire makes a
//!   reader that sees the word see `latest` too), so the stored window is
//!   never ahead of `latest` as a reader sees it, and its 24 bits only say
//!   by how much it is behind. Without a race the two agree exactly. In a
//!   race (`latest` raised by a caller whose word update has not landed)
//!   a reader may keep old counts it could have dropped (if the word
//!   trails by a multiple of 2²⁴ windows): a refusal, never an extra
//!   admission.

use super::{check_size, Limiter, QuotaError, TryAcquireError};
use crate::sync::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// At most `limit` admissions per aligned window of `len`.
///
/// Simple and cheap, but a client can get `2 × limit` across a window
/// boundary; [`SlidingWindow`] smooths that.
///
/// ```
/// use latchfree::limiter::FixedWindow;
///
/// static W: FixedWindow = FixedWindow::new(3, 1_000); // 3 per 1000 ticks
/// assert!(W.try_acquire_at(3, 10).is_ok());
/// assert_eq!(W.try_acquire_at(1, 999).unwrap_err().wait(999), Some(1));
/// assert!(W.try_acquire_at(3, 1_000).is_ok());
/// ```
#[derive(Debug)]
pub struct FixedWindow {
    /// The *position*: `limit × window + count` of the latest window
    /// counted in; only grows. A window's first position is also the one
    /// after its predecessor's last, so a full window reads as an empty
    /// next one, and a fresh word (0) as an empty window anywhere.
    word: AtomicU64,
    limit: u32,
    len: u64,
}

impl FixedWindow {
    const_fn_unless_loom! {
        /// `limit` per window of `len` ticks.
        ///
        /// # Panics
        ///
        /// If `limit` or `len` is zero; see [`try_new`](Self::try_new).
        pub fn new(limit: u32, len: u64) -> FixedWindow {
            match FixedWindow::try_new(limit, len) {
                Ok(w) => w,
                Err(_) => panic!("FixedWindow: limit and len must be positive"),
            }
        }
    }

    const_fn_unless_loom! {
        /// `limit` per window of `len` ticks, checked.
        pub fn try_new(limit: u32, len: u64) -> Result<FixedWindow, QuotaError> {
            if len == 0 {
                return Err(QuotaError::ZeroPeriod);
            }
            if limit == 0 {
                return Err(QuotaError::ZeroBurst);
            }
            Ok(FixedWindow { word: AtomicU64::new(0), limit, len })
        }
    }

    /// Admits `n` in `now`'s window, or says when the next window opens.
    #[inline]
    pub fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        check_size(n, self.limit)?;
        if n == 0 {
            return Ok(());
        }
        let limit = self.limit as u64;
        // The first position of `now`'s window; in range, `level + limit`
        // fits a `u64`.
        let Some(level) = (now / self.len)
            .checked_mul(limit)
            .filter(|&level| level <= u64::MAX - limit)
        else {
            return Err(TryAcquireError::NotReady { ready_at: u64::MAX });
        };
        // Relaxed: the word guards no other memory; the CAS alone orders
        // admissions (its modification order is the order they counted).
        let mut position = self.word.load(Relaxed);
        loop {
            // The end of the window the admission counts in: `now`'s, or
            // for a word past it (a stale or backwards `now`) the word's
            // own, `⌈position / limit⌉`: the word never moves back.
            let end = if position <= level + limit {
                level + limit
            } else {
                position.div_ceil(limit) * limit
            };
            // `end` may be `u64::MAX` at the end of the range: checked.
            let Some(new) = position
                .max(level)
                .checked_add(n as u64)
                .filter(|&new| new <= end)
            else {
                return Err(TryAcquireError::NotReady {
                    ready_at: (end / limit).saturating_mul(self.len),
                });
            };
            match self.word.compare_exchange_weak(position, new, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    position = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }
}

impl Limiter for FixedWindow {
    #[inline]
    fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        FixedWindow::try_acquire_at(self, n, now)
    }

    fn capacity(&self) -> u32 {
        self.limit
    }
}

const WINDOW_BITS: u32 = 24;
const COUNT_BITS: u32 = 20;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const WINDOW_MASK: u32 = (1 << WINDOW_BITS) - 1;

/// Cloudflare's sliding-window counter: admits `n` at `now` if
/// `previous × (overlap of the previous window with the last len) +
/// current + n ≤ limit`.
///
/// An approximation of a true sliding log that assumes the previous
/// window's admissions were evenly spread; rounding is towards refusal.
/// `limit` is at most 2²⁰ − 1.
///
/// ```
/// use latchfree::limiter::SlidingWindow;
///
/// let w = SlidingWindow::new(10, 1_000);
/// assert!(w.try_acquire_at(10, 999).is_ok());
/// // Halfway into the next window half of the previous one still counts.
/// assert!(w.try_acquire_at(5, 1_500).is_ok());
/// assert!(w.try_acquire_at(1, 1_500).is_err());
/// ```
#[derive(Debug)]
pub struct SlidingWindow {
    /// `window (low 24 bits) << 40 | current << 20 | previous`, or
    /// [`FRESH`].
    word: AtomicU64,
    /// The latest window (full index) any admission counted in; only
    /// grows, and is raised before the word is moved to a later window,
    /// so it is never behind the word's window as a reader sees it.
    latest: AtomicU64,
    limit: u32,
    len: u64,
}

/// A new word, empty whatever window its first call reads. Never stored
/// otherwise: `current == 2²⁰ − 1` needs `limit == 2²⁰ − 1` with nothing
/// left of the previous window (`previous` weighs at least 1 while it is
/// not 0), so `previous == 2²⁰ − 1` beside it is unreachable.
const FRESH: u64 = pack(0, COUNT_MASK as u32, COUNT_MASK as u32);

const fn pack(window: u32, current: u32, previous: u32) -> u64 {
    ((window & WINDOW_MASK) as u64) << (2 * COUNT_BITS)
        | (current as u64) << COUNT_BITS
        | previous as u64
}

impl SlidingWindow {
    const_fn_unless_loom! {
        /// `limit` per sliding window of `len` ticks.
        ///
        /// # Panics
        ///
        /// On the errors of [`try_new`](Self::try_new).
        pub fn new(limit: u32, len: u64) -> SlidingWindow {
            match SlidingWindow::try_new(limit, len) {
                Ok(w) => w,
                Err(_) => panic!("SlidingWindow: limit must be in 1..2^20 and len positive"),
            }
        }
    }

    const_fn_unless_loom! {
        /// `limit` (below 2²⁰) per sliding window of `len` ticks, checked.
        pub fn try_new(limit: u32, len: u64) -> Result<SlidingWindow, QuotaError> {
            if len == 0 {
                return Err(QuotaError::ZeroPeriod);
            }
            if limit == 0 {
                return Err(QuotaError::ZeroBurst);
            }
            if limit as u64 > COUNT_MASK {
                return Err(QuotaError::TooLong);
            }
            Ok(SlidingWindow {
                word: AtomicU64::new(FRESH),
                latest: AtomicU64::new(0),
                limit,
                len,
            })
        }
    }

    /// Admits `n` at `now`, or says when the estimate will leave room.
    #[inline]
    pub fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        check_size(n, self.limit)?;
        let index = now / self.len;
        let offset = now % self.len;
        let len = self.len as u128;
        if n == 0 {
            return Ok(());
        }
        // Acquire (here and on a failed CAS) pairs with the Release of the
        // CAS that stored the word: that writer raised `latest` to the
        // word's window first, so the `latest` read below is not behind it.
        // With Relaxed a reader could see the moved word beside an older
        // `latest`, read its 24 bits as a window far ahead of a backwards
        // `now`, and clear the latest window's counts (the loom model
        // `sliding_window_backwards_caller_never_moves_the_word_back`
        // catches it).
        let mut word = self.word.load(Acquire);
        loop {
            let latest = self.latest.load(Relaxed);
            // The window this admission counts in: `now`'s, or the latest
            // one for a `now` behind it (stale, or the clock went back),
            // as if at that window's start (the previous window weighs
            // fully). The word never moves back.
            let (target, offset) = if index >= latest {
                (index, offset)
            } else {
                (latest, 0)
            };
            let stored = (word >> (2 * COUNT_BITS)) as u32;
            let cur = ((word >> COUNT_BITS) & COUNT_MASK) as u32;
            let prev = (word & COUNT_MASK) as u32;
            // The stored window is at most `latest ≤ target` and congruent
            // to `ahead` modulo 2²⁴, so `ahead ≥ 2` means at least 2 ahead.
            // Without a race the stored window *is* `latest`; in a race
            // (`latest` raised, the word not yet moved) `ahead` may be
            // short by a multiple of 2²⁴, which only keeps old counts:
            // towards refusal, never extra admissions.
            let ahead = (target as u32).wrapping_sub(stored) & WINDOW_MASK;
            let (cur, prev) = if word == FRESH || target - latest >= 2 || ahead >= 2 {
                (0, 0)
            } else if ahead == 1 {
                (0, cur)
            } else {
                (cur, prev)
            };
            // ceil(prev × (len − offset) / len): the previous window's
            // share still inside the last `len`, rounded towards refusal.
            let weighted = (prev as u128 * (len - offset as u128)).div_ceil(len) as u32;
            if weighted + cur + n > self.limit {
                return Err(TryAcquireError::NotReady {
                    ready_at: self.ready_at(target, cur, prev, n),
                });
            }
            if target > latest {
                // Before the word moves to `target`; see `latest`.
                self.latest.fetch_max(target, Relaxed);
            }
            debug_assert!(cur + n <= self.limit && prev <= self.limit);
            let new = pack(target as u32, cur + n, prev);
            // Release: see the Acquire above.
            match self.word.compare_exchange_weak(word, new, Release, Acquire) {
                Ok(_) => return Ok(()),
                Err(seen) => {
                    word = seen;
                    crate::sync::busy_loop();
                }
            }
        }
    }

    /// When `n` fits, if nothing else is admitted: the first offset `o`
    /// with `ceil(p × (len − o) / len) ≤ room`, i.e.
    /// `o ≥ len − ⌊room × len / p⌋`, in this window or the next.
    fn ready_at(&self, index: u64, cur: u32, prev: u32, n: u32) -> u64 {
        let len = self.len as u128;
        let start = index as u128 * len;
        let at = if cur + n <= self.limit {
            // Fits later in this window, as the previous one fades out.
            let room = (self.limit - cur - n) as u128;
            start + len - (room * len / prev as u128)
        } else {
            // Next window: `cur` becomes the previous one.
            let room = (self.limit - n) as u128;
            start + len + len - (room * len / cur as u128).min(len)
        };
        at.min(u64::MAX as u128) as u64
    }
}

impl Limiter for SlidingWindow {
    #[inline]
    fn try_acquire_at(&self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        SlidingWindow::try_acquire_at(self, n, now)
    }

    fn capacity(&self) -> u32 {
        self.limit
    }
}
