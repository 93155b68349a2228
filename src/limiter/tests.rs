//! Unit tests of the limiters (also run under Miri).

use super::*;

const SEC: u64 = 1_000_000_000;

/// Every limiter admits at most its capacity at one instant, refuses
/// `n` above it with `TooLarge`, and never panics on a clock that jumps
/// around.
fn check_basic(l: &dyn Limiter, at: u64) {
    let cap = l.capacity();
    assert_eq!(
        l.try_acquire_at(cap + 1, at),
        Err(TryAcquireError::TooLarge {
            requested: cap + 1,
            capacity: cap
        })
    );
    let mut admitted = 0;
    while l.try_acquire_at(1, at).is_ok() {
        admitted += 1;
        assert!(admitted <= cap, "over-admitted at one instant");
    }
    assert!(admitted >= 1);
    assert!(l.try_acquire_at(0, at).is_ok());
    // Backwards and wildly jumping clocks: no panic, nothing extra now.
    for t in [0, 1, at / 2, u64::MAX / 2, u64::MAX - 1, u64::MAX, at] {
        let _ = l.try_acquire_at(1, t);
    }
}

#[test]
fn all_limiters_basic() {
    let q = Quota::per_second(10).allow_burst(4);
    check_basic(&Gcra::new(q), 5 * SEC);
    check_basic(&Gcra32::try_new(100, 4).unwrap(), 5_000);
    check_basic(&TokenBucket::new(q), 5 * SEC);
    check_basic(&LeakyBucket::new(q), 5 * SEC);
    check_basic(&FixedWindow::new(4, SEC), 5 * SEC);
    check_basic(&SlidingWindow::new(4, SEC), 5 * SEC);
}

#[test]
fn refusal_says_when() {
    let q = Quota::with_period(100).allow_burst(3);
    let limiters: [&dyn Limiter; 4] = [
        &Gcra::new(q),
        &TokenBucket::new(q),
        &LeakyBucket::new(q),
        &Gcra32::try_new(100, 3).unwrap(),
    ];
    for l in limiters {
        let t = 10_000;
        assert!(l.try_acquire_at(3, t).is_ok());
        let Err(TryAcquireError::NotReady { ready_at }) = l.try_acquire_at(2, t) else {
            panic!("expected NotReady");
        };
        assert!(ready_at > t);
        assert!(l.try_acquire_at(2, ready_at - 1).is_err());
        assert!(
            l.try_acquire_at(2, ready_at).is_ok(),
            "not ready at ready_at"
        );
    }
}

#[test]
fn windows_say_when() {
    let f = FixedWindow::new(2, 1000);
    assert!(f.try_acquire_at(2, 2500).is_ok());
    assert_eq!(
        f.try_acquire_at(1, 2600),
        Err(TryAcquireError::NotReady { ready_at: 3000 })
    );
    let s = SlidingWindow::new(10, 1000);
    assert!(s.try_acquire_at(10, 1999).is_ok());
    let Err(TryAcquireError::NotReady { ready_at }) = s.try_acquire_at(4, 2000) else {
        panic!()
    };
    assert!(s.try_acquire_at(4, ready_at - 1).is_err());
    assert!(s.try_acquire_at(4, ready_at).is_ok());
}

#[test]
fn backwards_clock_grants_nothing_extra() {
    let q = Quota::with_period(100).allow_burst(5);
    let limiters: [&dyn Limiter; 5] = [
        &Gcra::new(q),
        &TokenBucket::new(q),
        &LeakyBucket::new(q),
        &FixedWindow::new(5, 500),
        &SlidingWindow::new(5, 500),
    ];
    for l in limiters {
        let t = 1_000_000;
        while l.try_acquire_at(1, t).is_ok() {}
        // Back by a lot, then forward again in small steps: over the
        // next 500 ticks of readings at most one window's worth is new.
        let mut admitted = 0;
        for step in 0..50u64 {
            if l.try_acquire_at(1, t - 400_000 + step * 10).is_ok() {
                admitted += 1;
            }
        }
        assert!(
            admitted <= 5,
            "{admitted} admitted after the clock went back"
        );
    }
}

#[test]
fn gcra32_across_the_wrap() {
    let l = Gcra32::try_new(10, 2).unwrap();
    let mut t = u32::MAX as u64 - 100;
    let mut admitted = 0;
    for _ in 0..1000 {
        if l.try_acquire_at(1, t).is_ok() {
            admitted += 1;
        }
        t += 1;
    }
    // 1000 ticks at one per 10 plus a burst of 2.
    assert!((100..=102).contains(&admitted), "{admitted}");
    // A long idle spell that wraps: conservative, then normal again.
    let far = t + (1u64 << 31) + 3;
    let _ = l.try_acquire_at(1, far);
    assert!(l.try_acquire_at(1, far + 40).is_ok());
}

#[test]
fn quota_errors() {
    assert_eq!(Quota::try_new(0, 1), Err(QuotaError::ZeroPeriod));
    assert_eq!(Quota::try_new(1, 0), Err(QuotaError::ZeroBurst));
    assert_eq!(Quota::try_new(u64::MAX, 2), Err(QuotaError::TooLong));
    assert!(Gcra32::try_new(1 << 20, 1 << 11).is_err());
    assert!(SlidingWindow::try_new(1 << 20, 1).is_err());
    let e = TryAcquireError::TooLarge {
        requested: 5,
        capacity: 4,
    };
    assert_eq!(e.wait(0), None);
    #[cfg(feature = "alloc")]
    assert!(alloc::string::ToString::to_string(&e).contains("at most 4"));
}

#[test]
fn leaky_paces() {
    let l = LeakyBucket::new(Quota::with_period(10).allow_burst(1));
    let waits: [u64; 4] = core::array::from_fn(|_| l.take_at(100));
    assert_eq!(waits, [0, 10, 20, 30]);
    // Slack 2: an idle limiter issues three without waiting.
    let l = LeakyBucket::new(Quota::with_period(10).allow_burst(3));
    assert_eq!(l.take_at(1000), 0);
    assert_eq!(l.take_at(1000), 0);
    assert_eq!(l.take_at(1000), 0);
    assert_eq!(l.take_at(1000), 10);
}

#[cfg(feature = "alloc")]
#[test]
fn keyed_is_per_key_and_sweeps_idle_keys() {
    let k = Keyed::new(Quota::with_period(100).allow_burst(2));
    for id in 0..20u32 {
        assert!(k.try_acquire_at(&id, 2, 0).is_ok());
        assert!(k.try_acquire_at(&id, 1, 0).is_err());
    }
    assert_eq!(k.len(), 20);
    assert_eq!(k.sweep_at(100), 0); // schedules run to 200
    assert_eq!(k.sweep_at(200), 20);
    assert!(k.is_empty());
    // A swept key starts fresh, exactly as it would have anyway.
    assert!(k.try_acquire_at(&3, 2, 200).is_ok());
    assert!(k.try_acquire_at(&3, 1, 200).is_err());
}

/// A clock that jumps back, by any amount, creates no token. (The old
/// word kept a wrapping 32-bit tick: a jump back by more than 2³¹ ticks
/// read as time gone forward and refilled the bucket.)
#[test]
fn token_bucket_far_jump_back_creates_nothing() {
    for interval in [1, 1_000] {
        let b = TokenBucket::with_refill(10, 1, interval);
        let t = (1u64 << 33) * interval;
        assert!(b.try_acquire_at(10, t).is_ok());
        for back in [
            1,
            1 << 24,
            (1 << 31) + 5,
            (1 << 31) + (1 << 24) + 5,
            (1 << 32) - 3,
            1 << 32,
            (1 << 32) + 7,
            1 << 33,
        ] {
            let at = t - back * interval;
            assert!(
                b.try_acquire_at(1, at).is_err(),
                "admitted after a jump back by {back} ticks"
            );
        }
        assert!(b.try_acquire_at(1, t).is_err());
        // Time resumes where it was: one token per tick after `t`.
        assert!(b.try_acquire_at(1, t + interval).is_ok());
        assert!(b.try_acquire_at(1, t + interval).is_err());
    }
}

/// A new bucket is full whenever its first call comes. (The old word's
/// fresh tick 0 read as a wrapped word from about 2³¹ + 2²⁴ ticks on, and
/// the bucket started empty.)
#[test]
fn token_bucket_starts_full_at_any_first_tick() {
    for interval in [1, 7, 1_000] {
        for tick in [
            0u64,
            1,
            1 << 31,
            (1 << 31) + (1 << 24) + 11,
            u32::MAX as u64,
            1 << 32,
            (1 << 32) + (1 << 31) + (1 << 24) + 11,
            u32::MAX as u64 * 7,
            1 << 40,
        ] {
            let b = TokenBucket::with_refill(5, 2, interval);
            let now = tick * interval;
            assert_eq!(b.available_at(now), 5, "first tick {tick}");
            assert!(b.try_acquire_at(5, now).is_ok(), "first tick {tick}");
            assert!(b.try_acquire_at(1, now).is_err());
        }
    }
}

/// A fixed window's word never moves back: after a jump back of any size
/// the admissions count in the latest window read (already full here),
/// and `ready_at` is that window's end. (The old word kept a wrapping
/// 32-bit window index: a jump back by more than 2³¹ windows read as time
/// gone forward and admitted a fresh window.)
#[test]
fn fixed_window_far_jump_back_admits_nothing() {
    for len in [1, 1_000] {
        let w = FixedWindow::new(10, len);
        let index = 1u64 << 33;
        let t = index * len;
        assert!(w.try_acquire_at(10, t).is_ok());
        for back in [
            1,
            1 << 16,
            (1 << 16) + 1,
            (1 << 31) + 5,
            (1 << 32) - 3,
            1 << 32,
            (1 << 32) + 7,
            1 << 33,
        ] {
            assert_eq!(
                w.try_acquire_at(1, (index - back) * len),
                Err(TryAcquireError::NotReady {
                    ready_at: (index + 1) * len
                }),
                "jump back by {back} windows"
            );
        }
        // Time resumes where it was: a fresh window after `t`'s.
        assert!(w.try_acquire_at(10, (index + 1) * len).is_ok());
        assert!(w.try_acquire_at(1, (index + 1) * len).is_err());
    }
}

/// A stale `now` (a window behind the latest read) counts in the latest
/// window: never more than `limit` in it, whatever order readings come in.
#[test]
fn fixed_window_stale_reading_counts_in_the_latest_window() {
    let w = FixedWindow::new(4, 100);
    assert!(w.try_acquire_at(1, 1_050).is_ok());
    assert!(w.try_acquire_at(2, 950).is_ok()); // stale: counts in [1000, 1100)
    assert!(w.try_acquire_at(1, 1_099).is_ok());
    assert_eq!(
        w.try_acquire_at(1, 990),
        Err(TryAcquireError::NotReady { ready_at: 1_100 })
    );
    assert!(w.try_acquire_at(4, 1_100).is_ok());
}

/// New window counters admit their full limit whenever the first call
/// comes. (The old words' fresh index 0 read as a wrapped word from a
/// window index of about 2³¹ (fixed) or 2²³ (sliding) on, modulo the index
/// width, and refused for a window.)
#[test]
fn windows_start_full_at_any_first_window() {
    for len in [1, 7, 1_000] {
        for index in [
            0u64,
            1,
            (1 << 23) - 1,
            1 << 23,
            (1 << 23) + (1 << 16) + 11,
            (1 << 24) - 1,
            (1 << 31) + (1 << 16) + 11,
            u32::MAX as u64,
            (1 << 32) + (1 << 31) + (1 << 16) + 11,
            1 << 40,
        ] {
            let now = index * len + len / 2;
            let f = FixedWindow::new(5, len);
            assert!(
                f.try_acquire_at(5, now).is_ok(),
                "fixed, first window {index}"
            );
            assert!(f.try_acquire_at(1, now).is_err());
            let s = SlidingWindow::new(5, len);
            assert!(
                s.try_acquire_at(5, now).is_ok(),
                "sliding, first window {index}"
            );
            assert!(s.try_acquire_at(1, now).is_err());
        }
    }
}

/// A fixed window past the end of its range (`limit × window` beyond
/// `2⁶⁴ − 1 − limit`) refuses with `ready_at == u64::MAX`, never admits.
#[test]
fn fixed_window_range_end() {
    let w = FixedWindow::new(u32::MAX, 1);
    let last = (u64::MAX - u32::MAX as u64) / u32::MAX as u64;
    assert!(w.try_acquire_at(u32::MAX, last).is_ok());
    // The last window's end is `u64::MAX` itself: a take past it is
    // refused, not an overflow (found by the `limiter` fuzz target).
    assert_eq!(
        w.try_acquire_at(1, last),
        Err(TryAcquireError::NotReady { ready_at: last + 1 })
    );
    assert_eq!(
        w.try_acquire_at(1, last + 1),
        Err(TryAcquireError::NotReady { ready_at: u64::MAX })
    );
    assert!(w.try_acquire_at(0, u64::MAX).is_ok());
}

/// A sliding window never moves back either: after a jump back of any
/// size (past the 24-bit index's wrap, or an exact multiple of it) the
/// admissions count in the latest window, at its start. (The old word
/// read a jump back by more than 2²³ windows as time gone forward and
/// admitted afresh, and one by more than 2¹⁶ re-anchored the word there.)
#[test]
fn sliding_window_far_jump_back_admits_nothing() {
    for len in [1, 1_000] {
        let w = SlidingWindow::new(10, len);
        let index = 1u64 << 33;
        assert!(w.try_acquire_at(10, index * len).is_ok());
        for back in [
            1,
            (1 << 16) + 1,
            (1 << 23) + 5,
            (1 << 24) - 1,
            1 << 24,
            (1 << 24) + 1,
            (1 << 31) + 5,
            1 << 33,
        ] {
            assert!(
                w.try_acquire_at(1, (index - back) * len).is_err(),
                "jump back by {back} windows"
            );
        }
        // Two windows later (the full one no longer overlaps) all is free.
        assert!(w.try_acquire_at(1, (index + 1) * len).is_err());
        assert!(w.try_acquire_at(10, (index + 2) * len).is_ok());
    }
}
