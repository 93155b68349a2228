//! GCRA (64- and 32-bit), the token bucket and the fixed and sliding
//! window counters against sequential models over arbitrary `(n, clock
//! step)` sequences, backwards jumps included (for the token bucket and
//! the windows: any first tick or window and jumps either way of up to
//! 2⁵⁰ of them): every decision and every `ready_at` matches the model,
//! quota construction refuses exactly the bad inputs, no jump back admits
//! anything extra, and no monotone stretch of time admits more than the
//! burst plus the refills it holds.
#![no_main]
use arbitrary::Arbitrary;
use latchfree::limiter::{
    FixedWindow, Gcra, Gcra32, Quota, QuotaError, SlidingWindow, TokenBucket, TryAcquireError,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    period: u64,
    burst: u32,
    period32: u32,
    burst32: u32,
    capacity: u32,
    quantum: u32,
    interval: u32,
    first_tick: u64,
    window_limit: u32,
    window_len: u32,
    first_window: u64,
    ops: Vec<(u32, i32)>,
}

/// GCRA from its definition, on an unwrapped clock.
struct GcraModel {
    tat: u64,
    period: u64,
    burst: u64,
}

impl GcraModel {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if u64::from(n) > self.burst {
            return Err(too_large(n, self.burst as u32));
        }
        if n == 0 {
            return Ok(());
        }
        let tau = self.period * self.burst;
        let new = self.tat.max(now).saturating_add(u64::from(n) * self.period);
        if new - now > tau {
            return Err(TryAcquireError::NotReady {
                ready_at: new - tau,
            });
        }
        self.tat = new;
        Ok(())
    }
}

/// GCRA on ticks with `Gcra32`'s documented rules (a schedule more than
/// `τ + 2²⁴` ahead is repaired to an empty one; a schedule never ends on a
/// tick ≡ 0 mod 2³², stored one later), on an unwrapped clock kept within
/// 2³¹ of the schedule so the 32-bit word cannot be ambiguous.
struct Gcra32Model {
    tat: Option<u64>,
    period: u64,
    burst: u64,
}

impl Gcra32Model {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if u64::from(n) > self.burst {
            return Err(too_large(n, self.burst as u32));
        }
        if n == 0 {
            return Ok(());
        }
        let tau = self.period * self.burst;
        let not_fresh = |t: u64| if t as u32 == 0 { t + 1 } else { t };
        let base = match self.tat {
            Some(tat) if tat > now && tat - now > tau + (1 << 24) => now + tau,
            Some(tat) if tat > now => tat,
            _ => now,
        };
        let new = not_fresh(base + u64::from(n) * self.period);
        let lead = new - now;
        if lead > tau {
            if let Some(tat) = self.tat {
                if base != tat {
                    self.tat = Some(not_fresh(base));
                }
            }
            return Err(TryAcquireError::NotReady {
                ready_at: now + (lead - tau),
            });
        }
        self.tat = Some(new);
        Ok(())
    }
}

/// juju/ratelimit's token bucket on unwrapped ticks (`u128`, so the model
/// itself never wraps): `tokens` as of tick `anchor`, `quantum` more per
/// tick up to `capacity`. A tick behind the anchor sees the tokens it
/// would have had then (`quantum` fewer per tick), never more; the anchor
/// and count move only on an admission. The documented range: a refill
/// level `quantum × tick` past `2⁶⁴ − 1 − capacity`, or a take that would
/// carry the full-again level past `2⁶⁴ − 1`, is refused with `u64::MAX`.
struct BucketModel {
    anchor: u128,
    tokens: u128,
    capacity: u128,
    quantum: u128,
    interval: u64,
}

impl BucketModel {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if u128::from(n) > self.capacity {
            return Err(too_large(n, self.capacity as u32));
        }
        if n == 0 {
            return Ok(());
        }
        let never = Err(TryAcquireError::NotReady { ready_at: u64::MAX });
        let n = u128::from(n);
        let tick = u128::from(now / self.interval);
        let max = u128::from(u64::MAX);
        if tick * self.quantum > max - self.capacity {
            return never;
        }
        let full_at =
            (self.anchor * self.quantum + self.capacity - self.tokens).max(tick * self.quantum);
        if full_at + n > max {
            return never;
        }
        let (have, owe) = if tick >= self.anchor {
            let refilled = self.tokens + (tick - self.anchor) * self.quantum;
            (refilled.min(self.capacity), 0)
        } else {
            (self.tokens, (self.anchor - tick) * self.quantum)
        };
        if have < n + owe {
            let ready = tick + (n + owe - have).div_ceil(self.quantum);
            let ready_at = (ready * u128::from(self.interval)).min(max) as u64;
            return Err(TryAcquireError::NotReady { ready_at });
        }
        if tick >= self.anchor {
            (self.anchor, self.tokens) = (tick, have - n);
        } else {
            self.tokens -= n;
        }
        Ok(())
    }
}

/// The fixed window on unwrapped windows: admissions count in the latest
/// window read so far (a `now` behind it counts there too), at most
/// `limit` per window; a window with `limit × window > 2⁶⁴ − 1 − limit`
/// (the end of the documented range) is refused with `u64::MAX`.
struct FixedModel {
    window: Option<u64>,
    count: u64,
    limit: u64,
    len: u64,
}

impl FixedModel {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if u64::from(n) > self.limit {
            return Err(too_large(n, self.limit as u32));
        }
        if n == 0 {
            return Ok(());
        }
        let index = now / self.len;
        if u128::from(index) * u128::from(self.limit) > u128::from(u64::MAX - self.limit) {
            return Err(TryAcquireError::NotReady { ready_at: u64::MAX });
        }
        let w = match self.window {
            Some(w) if w >= index => w,
            _ => {
                self.count = 0;
                index
            }
        };
        self.window = Some(w);
        if self.count + u64::from(n) > self.limit {
            return Err(TryAcquireError::NotReady {
                ready_at: (w + 1).saturating_mul(self.len),
            });
        }
        self.count += u64::from(n);
        Ok(())
    }
}

/// The sliding window counter on unwrapped windows: admissions count in
/// the latest window admitted in, or `now`'s if later; a `now` behind it
/// counts at that window's start. `ready_at` is searched (bisection on
/// the offset, the estimate only falls as the offset grows), not computed
/// from the implementation's formula.
struct SlidingModel {
    latest: Option<u64>,
    cur: u64,
    prev: u64,
    limit: u64,
    len: u64,
}

impl SlidingModel {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if u64::from(n) > self.limit {
            return Err(too_large(n, self.limit as u32));
        }
        if n == 0 {
            return Ok(());
        }
        let (n, len, index) = (u64::from(n), self.len, now / self.len);
        let (target, offset) = match self.latest {
            Some(l) if l > index => (l, 0),
            _ => (index, now % len),
        };
        let (cur, prev) = match self.latest.map(|l| target - l) {
            Some(0) => (self.cur, self.prev),
            Some(1) => (0, self.cur),
            _ => (0, 0),
        };
        let limit = self.limit;
        let fits = |p: u64, c: u64, o: u64| {
            (u128::from(p) * u128::from(len - o)).div_ceil(u128::from(len)) as u64 + c + n <= limit
        };
        if !fits(prev, cur, offset) {
            // The first offset in `[lo, len)` where `fits`, if any.
            let first = |p: u64, c: u64, lo: u64| {
                if !fits(p, c, len - 1) {
                    return None;
                }
                let (mut lo, mut hi) = (lo, len - 1);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if fits(p, c, mid) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                Some(lo)
            };
            let start = u128::from(target) * u128::from(len);
            let at = match first(prev, cur, offset) {
                Some(o) => start + u128::from(o),
                None => match first(cur, 0, 0) {
                    Some(o) => start + u128::from(len + o),
                    None => start + 2 * u128::from(len),
                },
            };
            return Err(TryAcquireError::NotReady {
                ready_at: at.min(u128::from(u64::MAX)) as u64,
            });
        }
        (self.latest, self.cur, self.prev) = (Some(target), cur + n, prev);
        Ok(())
    }
}

fn too_large(requested: u32, capacity: u32) -> TryAcquireError {
    TryAcquireError::TooLarge {
        requested,
        capacity,
    }
}

/// Over every monotone stretch `[t_i, t_j]`, admissions are at most
/// `bound(t_i, t_j)`.
fn check_stretches(trace: &[(u64, u32, bool)], bound: impl Fn(u64, u64) -> u64) {
    for i in 0..trace.len() {
        let mut admitted = 0u64;
        for j in i..trace.len() {
            if j > i && trace[j].0 < trace[j - 1].0 {
                break;
            }
            if trace[j].2 {
                admitted += u64::from(trace[j].1);
            }
            let b = bound(trace[i].0, trace[j].0);
            assert!(admitted <= b, "{admitted} admitted where {b} allowed");
        }
    }
}

/// Applies a signed step to a clock kept inside `[lo, hi]`.
fn step(now: u64, d: i32, lo: u64, hi: u64) -> u64 {
    now.saturating_add_signed(i64::from(d)).clamp(lo, hi)
}

fuzz_target!(|input: Input| {
    let ops = &input.ops[..input.ops.len().min(256)];

    // 64-bit GCRA: construction errors exactly as documented.
    let q = Quota::try_new(input.period, input.burst);
    let expected = if input.period == 0 {
        Err(QuotaError::ZeroPeriod)
    } else if input.burst == 0 {
        Err(QuotaError::ZeroBurst)
    } else {
        match input.period.checked_mul(u64::from(input.burst)) {
            Some(tau) if tau <= u64::MAX / 4 => Ok(()),
            _ => Err(QuotaError::TooLong),
        }
    };
    assert_eq!(q.map(|_| ()), expected);
    if let Ok(q) = q {
        let l = Gcra::new(q);
        let mut m = GcraModel {
            tat: 0,
            period: q.period(),
            burst: u64::from(q.burst()),
        };
        let (mut now, mut min_now, mut max_now) = (1u64 << 40, u64::MAX, 0u64);
        let (mut admitted, mut trace) = (0u64, Vec::new());
        for &(n, d) in ops {
            now = step(now, d, 0, u64::MAX >> 2);
            (min_now, max_now) = (min_now.min(now), max_now.max(now));
            let n = n % (q.burst().saturating_add(2));
            let r = l.try_acquire_at(n, now);
            assert_eq!(r, m.acquire(n, now), "n {n} now {now}");
            if let Err(TryAcquireError::NotReady { ready_at }) = r {
                assert!(ready_at > now);
            }
            if r.is_ok() {
                admitted += u64::from(n);
            }
            // The schedule never runs back, so the whole run is bounded by
            // the span of clock readings, jumps back or not.
            let bound = (max_now - min_now) / q.period() + u64::from(q.burst());
            assert!(admitted <= bound, "{admitted} admitted, bound {bound}");
            trace.push((now, n, r.is_ok()));
        }
        let (p, b) = (q.period(), u64::from(q.burst()));
        check_stretches(&trace, |a, z| (z - a) / p + b + 1);
    }

    // 32-bit GCRA.
    let l32 = Gcra32::try_new(input.period32, input.burst32);
    let expected = if input.period32 == 0 {
        Err(QuotaError::ZeroPeriod)
    } else if input.burst32 == 0 {
        Err(QuotaError::ZeroBurst)
    } else if u64::from(input.period32) * u64::from(input.burst32) > 1 << 30 {
        Err(QuotaError::TooLong)
    } else {
        Ok(())
    };
    assert_eq!(l32.as_ref().map(|_| ()).map_err(|e| *e), expected);
    if let Ok(l) = l32 {
        let (p, b) = (u64::from(input.period32), u64::from(input.burst32));
        let mut m = Gcra32Model {
            tat: None,
            period: p,
            burst: b,
        };
        // A window across the 32-bit wrap, 2²⁹ wide: the schedule (at most
        // τ ≤ 2³⁰ past the window) stays within 2³¹ of every reading, so
        // the word is never ambiguous.
        let lo = u64::from(u32::MAX) - (1 << 28);
        let hi = lo + (1 << 29);
        let mut now = lo + (1 << 27);
        let mut trace = Vec::new();
        for &(n, d) in ops {
            now = step(now, d >> 3, lo, hi);
            let n = n % (input.burst32.saturating_add(2));
            let r = l.try_acquire_at(n, now);
            assert_eq!(r, m.acquire(n, now), "n {n} now {now}");
            trace.push((now, n, r.is_ok()));
        }
        check_stretches(&trace, |a, z| (z - a) / p + b + 1);
    }

    // Token bucket (constructed only from valid arguments: the invalid
    // ones are documented panics), on the whole clock: a first call at any
    // tick, then steps and jumps either way of up to 2⁵⁰ ticks (across the
    // 32-bit wraps and up to the end of the level's range).
    let capacity = input.capacity % (1 << 20) + 1;
    let quantum = input.quantum % capacity + 1;
    let interval = u64::from(input.interval % (1 << 16)) + 1;
    let tb = TokenBucket::with_refill(capacity, quantum, interval);
    let mut m = BucketModel {
        anchor: 0,
        tokens: u128::from(capacity),
        capacity: u128::from(capacity),
        quantum: u128::from(quantum),
        interval,
    };
    let (c, qn) = (u64::from(capacity), u64::from(quantum));
    let max_tick = u64::MAX / interval;
    let mut tick = input.first_tick % max_tick.saturating_add(1);
    let (mut hi, mut admitted, mut first_taken) = (tick, 0u64, None);
    let mut trace = Vec::new();
    for (i, &(n, d)) in ops.iter().enumerate() {
        if i > 0 {
            // The low 5 bits scale the step: mostly small, sometimes huge.
            let jump = i64::from(d >> 5) << (d & 31).min(24);
            tick = tick.saturating_add_signed(jump).min(max_tick);
        }
        hi = hi.max(tick);
        let now = tick * interval;
        let n = n % (capacity + 2);
        let r = tb.try_acquire_at(n, now);
        assert_eq!(r, m.acquire(n, now), "n {n} tick {tick}");
        if let Err(TryAcquireError::NotReady { ready_at }) = r {
            // `u64::MAX`: never (the end of the range).
            assert!(ready_at > now || ready_at == u64::MAX);
        }
        if r.is_ok() && n > 0 {
            admitted += u64::from(n);
            first_taken.get_or_insert(tick);
        }
        // No jump back creates a token: from the first admission on, the
        // run takes at most a bucket plus the refills up to the latest
        // tick read, however far back later readings go.
        let refilled = hi - first_taken.unwrap_or(hi);
        let bound = u128::from(c) + u128::from(qn) * u128::from(refilled);
        assert!(
            u128::from(admitted) <= bound,
            "{admitted} admitted, bound {bound}"
        );
        trace.push((now, n, r.is_ok()));
    }
    check_stretches(&trace, |a, z| {
        c.saturating_add(qn.saturating_mul(z / interval - a / interval))
    });

    // The window counters, the same way: a first call in any window, then
    // steps and jumps either way of up to 2⁵⁰ windows (across the old
    // 32- and 24-bit indexes' wraps, and for the fixed window up to the
    // end of its position's range), at any offset in the window.
    let len = u64::from(input.window_len % (1 << 16)) + 1;
    let fixed_limit = input.window_limit.max(1);
    let sliding_limit = input.window_limit % ((1 << 20) - 1) + 1;
    let fixed = FixedWindow::new(fixed_limit, len);
    let sliding = SlidingWindow::new(sliding_limit, len);
    let mut fm = FixedModel {
        window: None,
        count: 0,
        limit: u64::from(fixed_limit),
        len,
    };
    let mut sm = SlidingModel {
        latest: None,
        cur: 0,
        prev: 0,
        limit: u64::from(sliding_limit),
        len,
    };
    let max_window = u64::MAX / len - 1;
    let mut window = input.first_window % (max_window + 1);
    let mut hi = window;
    let (mut fixed_first, mut sliding_first) = (None, None);
    let (mut fixed_admitted, mut sliding_admitted) = (0u128, 0u128);
    let (mut fixed_trace, mut sliding_trace) = (Vec::new(), Vec::new());
    for (i, &(n, d)) in ops.iter().enumerate() {
        if i > 0 {
            let jump = i64::from(d >> 5) << (d & 31).min(24);
            window = window.saturating_add_signed(jump).min(max_window);
        }
        hi = hi.max(window);
        let now = window * len + u64::from(d as u32) % len;
        for (r, model, limit, first, admitted, trace) in [
            (
                fixed.try_acquire_at(n % (fixed_limit.saturating_add(2)), now),
                fm.acquire(n % (fixed_limit.saturating_add(2)), now),
                fixed_limit,
                &mut fixed_first,
                &mut fixed_admitted,
                &mut fixed_trace,
            ),
            (
                sliding.try_acquire_at(n % (sliding_limit + 2), now),
                sm.acquire(n % (sliding_limit + 2), now),
                sliding_limit,
                &mut sliding_first,
                &mut sliding_admitted,
                &mut sliding_trace,
            ),
        ] {
            let n = n % (limit.saturating_add(2));
            assert_eq!(r, model, "limit {limit} n {n} now {now}");
            if let Err(TryAcquireError::NotReady { ready_at }) = r {
                assert!(ready_at > now || ready_at == u64::MAX);
            }
            if r.is_ok() && n > 0 {
                *admitted += u128::from(n);
                first.get_or_insert(window);
            }
            // No jump back admits anything extra: at most `limit` in each
            // window from the first admitting one to the latest read.
            let windows = hi - first.unwrap_or(hi) + 1;
            let bound = u128::from(limit) * u128::from(windows);
            assert!(*admitted <= bound, "{admitted} admitted, bound {bound}");
            trace.push((now, n, r.is_ok()));
        }
    }
    for (trace, limit) in [(&fixed_trace, fixed_limit), (&sliding_trace, sliding_limit)] {
        check_stretches(trace, |a, z| {
            u64::from(limit).saturating_mul(z / len - a / len + 1)
        });
    }
});
