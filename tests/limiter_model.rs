//! The limiters against sequential models and rate bounds, over random
//! clocks (steps forward, occasional jumps back): every decision matches
//! the model, every refusal's `ready_at` is honest, and no stretch of
//! time admits more than `rate × time + burst`.

// Host-only code: std paths are fine here.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::limiter::{
    FixedWindow, Gcra, Gcra32, LeakyBucket, Limiter, Quota, SlidingWindow, TokenBucket,
    TryAcquireError,
};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Step {
    Forward(u64),
    Back(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u64..300).prop_map(Step::Forward),
        1 => (0u64..5_000).prop_map(Step::Forward),
        1 => (0u64..2_000).prop_map(Step::Back),
    ]
}

fn ops() -> impl Strategy<Value = Vec<(Step, u32)>> {
    proptest::collection::vec((step(), 0u32..5), 1..120)
}

/// GCRA as a plain sequential model, written from the algorithm's
/// definition.
struct GcraModel {
    tat: u64,
    period: u64,
    burst: u64,
}

impl GcraModel {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if n as u64 > self.burst {
            return Err(TryAcquireError::TooLarge {
                requested: n,
                capacity: self.burst as u32,
            });
        }
        if n == 0 {
            return Ok(());
        }
        let tau = self.period * self.burst;
        let new = self.tat.max(now) + n as u64 * self.period;
        if new - now > tau {
            return Err(TryAcquireError::NotReady {
                ready_at: new - tau,
            });
        }
        self.tat = new;
        Ok(())
    }
}

/// juju/ratelimit's token bucket as a plain sequential model on unwrapped
/// ticks: `tokens` as of tick `anchor`, refilled by `quantum` per tick up
/// to `capacity`. A tick behind the anchor sees the tokens it would have
/// had then: `quantum` fewer per tick (capacity not yet refilled),
/// never more. The anchor and count move only on an admission.
struct BucketModel {
    anchor: u128,
    tokens: u128,
    capacity: u128,
    quantum: u128,
    interval: u64,
}

impl BucketModel {
    fn new(capacity: u32, quantum: u32, interval: u64) -> BucketModel {
        BucketModel {
            anchor: 0,
            tokens: capacity as u128,
            capacity: capacity as u128,
            quantum: quantum as u128,
            interval,
        }
    }

    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if n as u128 > self.capacity {
            return Err(TryAcquireError::TooLarge {
                requested: n,
                capacity: self.capacity as u32,
            });
        }
        if n == 0 {
            return Ok(());
        }
        let tick = (now / self.interval) as u128;
        let n = n as u128;
        // Tokens at `tick` (negative: owed), written as `have − owe`.
        let (have, owe) = if tick >= self.anchor {
            let refilled = self.tokens + (tick - self.anchor) * self.quantum;
            (refilled.min(self.capacity), 0)
        } else {
            (self.tokens, (self.anchor - tick) * self.quantum)
        };
        if have < n + owe {
            // The first tick after which `n` are there: `n + owe − have`
            // more tokens, `quantum` a tick.
            let missing = n + owe - have;
            let ready = tick + missing.div_ceil(self.quantum);
            let ready_at = (ready * self.interval as u128).min(u64::MAX as u128) as u64;
            return Err(TryAcquireError::NotReady { ready_at });
        }
        if tick >= self.anchor {
            (self.anchor, self.tokens) = (tick, have - n);
        } else {
            self.tokens -= n; // as of the anchor, which stays
        }
        Ok(())
    }
}

/// A fixed window counter as a plain sequential model: admissions count
/// in the latest window read so far (a `now` behind it, stale or after a
/// jump back, counts there too), at most `limit` per window; a window
/// index past the end of the range (`limit × window > 2⁶⁴ − 1 − limit`)
/// is refused for good.
struct FixedModel {
    window: Option<u64>,
    count: u64,
    limit: u64,
    len: u64,
}

impl FixedModel {
    fn new(limit: u32, len: u64) -> FixedModel {
        FixedModel {
            window: None,
            count: 0,
            limit: limit as u64,
            len,
        }
    }

    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if n as u64 > self.limit {
            return Err(TryAcquireError::TooLarge {
                requested: n,
                capacity: self.limit as u32,
            });
        }
        if n == 0 {
            return Ok(());
        }
        let index = now / self.len;
        if index as u128 * self.limit as u128 > (u64::MAX - self.limit) as u128 {
            return Err(TryAcquireError::NotReady { ready_at: u64::MAX });
        }
        if self.window.map_or(true, |w| index > w) {
            // A full window reads as an empty next one, so whether a later
            // reading counts here or there makes no difference.
            self.window = Some(index);
            self.count = 0;
        }
        let w = self.window.unwrap();
        if self.count + n as u64 > self.limit {
            return Err(TryAcquireError::NotReady {
                ready_at: (w + 1).saturating_mul(self.len),
            });
        }
        self.count += n as u64;
        Ok(())
    }
}

/// The sliding window counter as a plain sequential model, on unwrapped
/// window indexes: admissions count in the latest window admitted in so
/// far, or `now`'s if later; a `now` behind it counts at that window's
/// start (the previous window weighs fully).
struct SlidingModel {
    latest: Option<u64>,
    cur: u64,
    prev: u64,
    limit: u64,
    len: u64,
}

impl SlidingModel {
    fn new(limit: u32, len: u64) -> SlidingModel {
        SlidingModel {
            latest: None,
            cur: 0,
            prev: 0,
            limit: limit as u64,
            len,
        }
    }

    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if n as u64 > self.limit {
            return Err(TryAcquireError::TooLarge {
                requested: n,
                capacity: self.limit as u32,
            });
        }
        if n == 0 {
            return Ok(());
        }
        let (n, len, index) = (n as u64, self.len, now / self.len);
        let (target, offset) = match self.latest {
            Some(l) if l > index => (l, 0),
            _ => (index, now % len),
        };
        let (cur, prev) = match self.latest.map(|l| target - l) {
            Some(0) => (self.cur, self.prev),
            Some(1) => (0, self.cur),
            _ => (0, 0),
        };
        let weighted = (prev as u128 * (len - offset) as u128).div_ceil(len as u128) as u64;
        if weighted + cur + n > self.limit {
            // The first instant the estimate leaves room, searched from
            // the definition: this window's later offsets, then the next
            // window's (where `cur` is the previous one).
            let fits = |p: u64, c: u64, o: u64| {
                (p as u128 * (len - o) as u128).div_ceil(len as u128) as u64 + c + n <= self.limit
            };
            let start = target as u128 * len as u128;
            let at = (offset..len)
                .find(|&o| fits(prev, cur, o))
                .map(|o| start + o as u128)
                .or_else(|| {
                    (0..len)
                        .find(|&o| fits(cur, 0, o))
                        .map(|o| start + (len + o) as u128)
                })
                .unwrap_or(start + 2 * len as u128);
            return Err(TryAcquireError::NotReady {
                ready_at: at.min(u64::MAX as u128) as u64,
            });
        }
        (self.latest, self.cur, self.prev) = (Some(target), cur + n, prev);
        Ok(())
    }
}

fn clock(ops: &[(Step, u32)]) -> Vec<(u64, u32)> {
    let mut now = 1_000_000u64;
    ops.iter()
        .map(|&(s, n)| {
            now = match s {
                Step::Forward(d) => now + d,
                Step::Back(d) => now - d,
            };
            (now, n)
        })
        .collect()
}

/// Over every monotone stretch `[t_i, t_j]` of the run, admissions are at
/// most `(t_j − t_i) / period + burst + 1`.
fn check_rate_bound(trace: &[(u64, u32, bool)], period: u64, burst: u64) {
    for i in 0..trace.len() {
        let mut admitted = 0u64;
        for j in i..trace.len() {
            if j > i && trace[j].0 < trace[j - 1].0 {
                break; // the clock went back: a new stretch
            }
            if trace[j].2 {
                admitted += trace[j].1 as u64;
            }
            let bound = (trace[j].0 - trace[i].0) / period + burst + 1;
            assert!(
                admitted <= bound,
                "{admitted} admitted over a stretch allowing {bound}"
            );
        }
    }
}

/// A refusal's `ready_at` is honest: replaying the same history (the
/// refusal included: it may store a repair) on a fresh limiter, `n` is
/// admitted at `ready_at` and not just before.
fn check_ready_at<L: Limiter>(make: impl Fn() -> L, run: &[(u64, u32)]) {
    let l = make();
    for (k, &(now, n)) in run.iter().enumerate() {
        if let Err(TryAcquireError::NotReady { ready_at }) = l.try_acquire_at(n, now) {
            assert!(ready_at > now);
            let replay = |at: u64| {
                let r = make();
                for &(t, m) in &run[..=k] {
                    let _ = r.try_acquire_at(m, t);
                }
                r.try_acquire_at(n, at).is_ok()
            };
            assert!(
                replay(ready_at),
                "not ready at ready_at {ready_at} (now {now})"
            );
            assert!(!replay(ready_at - 1), "ready before ready_at {ready_at}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn gcra_matches_model(ops in ops()) {
        let q = Quota::with_period(100).allow_burst(4);
        let l = Gcra::new(q);
        let mut m = GcraModel { tat: 0, period: 100, burst: 4 };
        for (now, n) in clock(&ops) {
            prop_assert_eq!(l.try_acquire_at(n, now), m.acquire(n, now));
        }
    }

    #[test]
    fn token_bucket_matches_model(
        ops in proptest::collection::vec((step(), 0u32..9), 1..120),
        quantum in 1u32..4,
        interval in 1u64..300,
    ) {
        let l = TokenBucket::with_refill(6, quantum, interval);
        let mut m = BucketModel::new(6, quantum, interval);
        for (now, n) in clock(&ops) {
            prop_assert_eq!(l.try_acquire_at(n, now), m.acquire(n, now), "n {} now {}", n, now);
        }
    }

    /// Far clocks: first calls and jumps (either way) of up to 2⁴⁰ ticks,
    /// across and far beyond any 32-bit wrap; the whole run admits at most
    /// `capacity + quantum × (latest tick − earliest tick)`.
    #[test]
    fn token_bucket_far_jumps(
        first in 0u64..1 << 40,
        jumps in proptest::collection::vec((-(1i64 << 40)..1 << 40, 0u32..9), 1..60),
    ) {
        let (capacity, quantum, interval) = (6u32, 2u32, 3u64);
        let l = TokenBucket::with_refill(capacity, quantum, interval);
        let mut m = BucketModel::new(capacity, quantum, interval);
        let (mut tick, mut lo, mut hi, mut admitted) = (first, first, first, 0u64);
        for (i, &(jump, n)) in jumps.iter().enumerate() {
            if i > 0 {
                tick = tick.saturating_add_signed(jump);
            }
            (lo, hi) = (lo.min(tick), hi.max(tick));
            let now = tick * interval;
            let r = l.try_acquire_at(n, now);
            prop_assert_eq!(r, m.acquire(n, now), "n {} tick {}", n, tick);
            if r.is_ok() {
                admitted += n as u64;
            }
            let bound = capacity as u64 + quantum as u64 * (hi - lo);
            prop_assert!(admitted <= bound, "{} admitted, bound {}", admitted, bound);
        }
    }

    #[test]
    fn fixed_window_matches_model(
        ops in proptest::collection::vec((step(), 0u32..9), 1..120),
        limit in 1u32..8,
        len in 1u64..700,
    ) {
        let l = FixedWindow::new(limit, len);
        let mut m = FixedModel::new(limit, len);
        for (now, n) in clock(&ops) {
            prop_assert_eq!(l.try_acquire_at(n, now), m.acquire(n, now), "n {} now {}", n, now);
        }
    }

    /// Far clocks: a first call and jumps (either way) of up to 2⁴⁰
    /// windows, across and far beyond the old 32-bit index's wrap; the
    /// whole run admits at most `limit × (latest window − first admitting
    /// window + 1)`, however far back later readings go.
    #[test]
    fn fixed_window_far_jumps(
        first in 0u64..1 << 40,
        jumps in proptest::collection::vec((-(1i64 << 40)..1 << 40, 0u32..9), 1..60),
        len in 1u64..1_000,
    ) {
        let limit = 6u32;
        let l = FixedWindow::new(limit, len);
        let mut m = FixedModel::new(limit, len);
        let (mut index, mut hi, mut first_taken, mut admitted) = (first, first, None, 0u64);
        for (i, &(jump, n)) in jumps.iter().enumerate() {
            if i > 0 {
                index = index.saturating_add_signed(jump);
            }
            hi = hi.max(index);
            let now = index * len + (jump as u64 % len);
            let r = l.try_acquire_at(n, now);
            prop_assert_eq!(r, m.acquire(n, now), "n {} index {}", n, index);
            if r.is_ok() && n > 0 {
                admitted += n as u64;
                first_taken.get_or_insert(index);
            }
            let windows = hi - first_taken.unwrap_or(hi) + 1;
            let bound = limit as u64 * windows;
            prop_assert!(admitted <= bound, "{} admitted, bound {}", admitted, bound);
        }
    }

    #[test]
    fn sliding_window_matches_model(
        ops in proptest::collection::vec((step(), 0u32..9), 1..120),
        limit in 1u32..8,
        len in 1u64..700,
    ) {
        let l = SlidingWindow::new(limit, len);
        let mut m = SlidingModel::new(limit, len);
        for (now, n) in clock(&ops) {
            prop_assert_eq!(l.try_acquire_at(n, now), m.acquire(n, now), "n {} now {}", n, now);
        }
    }

    /// Far clocks for the sliding window: a first call and jumps (either
    /// way) of up to 2⁴⁰ windows, across and far beyond the 24-bit
    /// index's wrap; every decision matches the model and the whole run
    /// admits at most `limit × (latest window − first admitting window +
    /// 1)`, however far back later readings go.
    #[test]
    fn sliding_window_far_jumps(
        first in 0u64..1 << 40,
        jumps in proptest::collection::vec((-(1i64 << 40)..1 << 40, 0u32..9), 1..60),
        len in 1u64..100,
    ) {
        let limit = 6u32;
        let l = SlidingWindow::new(limit, len);
        let mut m = SlidingModel::new(limit, len);
        let (mut index, mut hi, mut first_taken, mut admitted) = (first, first, None, 0u64);
        for (i, &(jump, n)) in jumps.iter().enumerate() {
            if i > 0 {
                // Some jumps exactly a multiple of the 24-bit index's range.
                let jump = if jump % 5 == 0 { (jump >> 24) << 24 } else { jump };
                index = index.saturating_add_signed(jump).min(u64::MAX / len - 1);
            }
            hi = hi.max(index);
            let now = index * len + (jump as u64 % len);
            let r = l.try_acquire_at(n, now);
            prop_assert_eq!(r, m.acquire(n, now), "n {} index {}", n, index);
            if r.is_ok() && n > 0 {
                admitted += n as u64;
                first_taken.get_or_insert(index);
            }
            let windows = hi - first_taken.unwrap_or(hi) + 1;
            let bound = limit as u64 * windows;
            prop_assert!(admitted <= bound, "{} admitted, bound {}", admitted, bound);
        }
    }

    /// A new sliding window admits its full limit at any first window.
    #[test]
    fn sliding_window_starts_full(first in 0u64..1 << 40, len in 1u64..1_000, limit in 1u32..1 << 20) {
        let l = SlidingWindow::new(limit, len);
        let now = first * len + first % len;
        prop_assert!(l.try_acquire_at(limit, now).is_ok(), "first window {}", first);
        prop_assert!(l.try_acquire_at(1, now).is_err());
    }

    #[test]
    fn limiters_respect_the_rate(ops in ops()) {
        let run = clock(&ops);
        let q = Quota::with_period(100).allow_burst(4);
        let limiters: Vec<(Box<dyn Limiter>, u64, u64)> = vec![
            (Box::new(Gcra::new(q)), 100, 4),
            (Box::new(Gcra32::try_new(100, 4).unwrap()), 100, 4),
            (Box::new(TokenBucket::new(q)), 100, 4),
            (Box::new(LeakyBucket::new(q)), 100, 4),
            // A fixed window admits up to 2 × limit across a boundary.
            (Box::new(FixedWindow::new(4, 400)), 100, 8),
            (Box::new(SlidingWindow::new(4, 400)), 100, 8),
        ];
        for (l, period, burst) in limiters {
            let trace: Vec<(u64, u32, bool)> =
                run.iter().map(|&(t, n)| (t, n, l.try_acquire_at(n, t).is_ok())).collect();
            check_rate_bound(&trace, period, burst);
        }
    }

    #[test]
    fn ready_at_is_honest(ops in proptest::collection::vec((step(), 1u32..5), 1..40)) {
        let run = clock(&ops);
        let q = Quota::with_period(100).allow_burst(4);
        check_ready_at(|| Gcra::new(q), &run);
        check_ready_at(|| Gcra32::try_new(100, 4).unwrap(), &run);
        check_ready_at(|| TokenBucket::new(q), &run);
        check_ready_at(|| LeakyBucket::new(q), &run);
        check_ready_at(|| FixedWindow::new(4, 400), &run);
        check_ready_at(|| SlidingWindow::new(4, 400), &run);
    }
}

/// Long run on the real clock: two threads saturate a limiter for half a
/// second; admitted ≤ rate × time + burst, and within 5 % of it.
#[test]
fn long_run_admission_rate() {
    use std::time::{Duration, Instant};
    // 10 k/s with a burst of 200 ms, so scheduling gaps on a loaded
    // machine (other processes share the cores) do not waste capacity.
    let period = 100_000u64;
    let burst = 2_000u64;
    let q = Quota::with_period(period).allow_burst(burst as u32);
    let limiters: Vec<(&str, Box<dyn Limiter + Sync>)> = vec![
        ("gcra", Box::new(Gcra::new(q))),
        ("token", Box::new(TokenBucket::new(q))),
        ("leaky", Box::new(LeakyBucket::new(q))),
    ];
    for (name, l) in limiters {
        let start = latchfree::limiter::now_nanos();
        let t0 = Instant::now();
        let run = Duration::from_millis(500);
        let admitted: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0u64;
                        while t0.elapsed() < run {
                            if l.try_acquire_at(1, latchfree::limiter::now_nanos()).is_ok() {
                                n += 1;
                            }
                        }
                        n
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let elapsed = latchfree::limiter::now_nanos() - start;
        let bound = elapsed / period + burst;
        assert!(admitted <= bound, "{name}: {admitted} > {bound}");
        // The callers ran for `run` (less their start-up): close to
        // rate × run + burst.
        let expected = run.as_nanos() as u64 / period + burst;
        assert!(
            admitted as f64 >= 0.9 * expected as f64,
            "{name}: {admitted} well below {expected} under saturation"
        );
    }
}
