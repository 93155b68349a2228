//! GCRA (64- and 32-bit) and the token bucket against sequential models
//! over arbitrary `(n, clock step)` sequences, backwards jumps included:
//! every decision and every `ready_at` matches the model, quota
//! construction refuses exactly the bad inputs, and no monotone stretch of
//! time admits more than the burst plus the refills it holds.
#![no_main]
use arbitrary::Arbitrary;
use latchfree::limiter::{Gcra, Gcra32, Quota, QuotaError, TokenBucket, TryAcquireError};
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

/// The token bucket's documented rules on unwrapped ticks.
struct BucketModel {
    anchor: u64,
    tokens: u64,
    capacity: u64,
    quantum: u64,
    interval: u64,
}

impl BucketModel {
    fn acquire(&mut self, n: u32, now: u64) -> Result<(), TryAcquireError> {
        if u64::from(n) > self.capacity {
            return Err(too_large(n, self.capacity as u32));
        }
        let tick = now / self.interval;
        let full_refill = self.capacity.div_ceil(self.quantum);
        let (anchor, available) = if tick >= self.anchor {
            let refill = (tick - self.anchor).saturating_mul(self.quantum);
            (tick, (self.tokens + refill).min(self.capacity))
        } else if self.anchor - tick <= full_refill + (1 << 24) {
            (self.anchor, self.tokens)
        } else {
            (tick, 0)
        };
        // A refusal stores only a repair; a refusal after a refill or a
        // stale read stores nothing (a later call recomputes the same).
        if available < u64::from(n) {
            if anchor == tick && available == 0 && tick < self.anchor {
                (self.anchor, self.tokens) = (anchor, 0);
            }
            let wait = (u64::from(n) - available).div_ceil(self.quantum);
            return Err(TryAcquireError::NotReady {
                ready_at: anchor.saturating_add(wait).saturating_mul(self.interval),
            });
        }
        (self.anchor, self.tokens) = (anchor, available - u64::from(n));
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
    // ones are documented panics).
    let capacity = input.capacity % (1 << 20) + 1;
    let quantum = input.quantum % capacity + 1;
    let interval = u64::from(input.interval % (1 << 16)) + 1;
    let tb = TokenBucket::with_refill(capacity, quantum, interval);
    // The fresh word's tick is 0, i.e. 2³² here.
    let mut m = BucketModel {
        anchor: 1 << 32,
        tokens: u64::from(capacity),
        capacity: u64::from(capacity),
        quantum: u64::from(quantum),
        interval,
    };
    // A window of 2³⁰ ticks across the 32-bit tick's wrap: any two ticks
    // are less than 2³¹ apart, so the wrapping tick is never ambiguous (a
    // refusal or a `TooLarge` stores nothing, so the anchor may lag the
    // clock by the whole window).
    let lo = ((1u64 << 32) - (1 << 29)) * interval;
    let hi = ((1u64 << 32) + (1 << 29)) * interval;
    let mut now = (1u64 << 32) * interval;
    let mut trace = Vec::new();
    for &(n, d) in ops {
        now = step(now, d >> 2, lo, hi);
        let n = n % (capacity + 2);
        let r = tb.try_acquire_at(n, now);
        assert_eq!(r, m.acquire(n, now), "n {n} now {now}");
        trace.push((now, n, r.is_ok()));
    }
    let (c, qn) = (u64::from(capacity), u64::from(quantum));
    check_stretches(&trace, |a, z| c + qn * (z / interval - a / interval));
});
