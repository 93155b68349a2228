//! Rate limiters: `try_acquire` against governor (direct and keyed),
//! ratelimit (iopsystems) and a `Mutex`-guarded GCRA, on one thread and
//! two contending. Every limiter reads the same TSC clock (quanta, which
//! governor uses internally) except where a row says otherwise.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::guard_support::{add_rows, loadavg, nanos, per_op, per_op_on, target};
use crate::report::{Better, Report};
use latchfree::limiter::{Gcra, Keyed, Quota};

const OPS: usize = 1_000_000;
const KEYS: usize = 1_000;

/// The same GCRA as latchfree's, one lock around the word.
struct MutexGcra {
    tat: Mutex<u64>,
    period: u64,
    tau: u64,
}

impl MutexGcra {
    fn new(period: u64, burst: u64) -> Self {
        MutexGcra {
            tat: Mutex::new(0),
            period,
            tau: period * burst,
        }
    }

    fn try_acquire(&self, now: u64) -> bool {
        let mut tat = self.tat.lock().unwrap();
        let new = (*tat).max(now) + self.period;
        if new - now > self.tau {
            return false;
        }
        *tat = new;
        true
    }
}

fn governor_quota(per_second: u32, burst: u32) -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(per_second).unwrap())
        .allow_burst(NonZeroU32::new(burst).unwrap())
}

/// Counts admissions by two threads hammering `admit` for `run`.
fn admitted(run: Duration, admit: &(dyn Fn() -> bool + Sync)) -> u64 {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while t0.elapsed() < run {
                        n += admit() as u64;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Before timing: at 10 000/s with a burst of 1000, every implementation
/// admits at most 1000 + 10 000 × t (+2 for rounding) over t; the counts
/// go to the report (how close each gets is telling, but on a shared
/// machine a thread may be descheduled for longer than the burst lasts).
fn verify() -> String {
    let run = Duration::from_millis(200);
    let ceiling = 1000 + 2000 + 2;
    let lf = Gcra::new(Quota::per_second(10_000).allow_burst(1000));
    let gov = governor::RateLimiter::direct(governor_quota(10_000, 1000));
    let rl = ratelimit::Ratelimiter::builder(1, Duration::from_micros(100))
        .max_tokens(1000)
        .initial_available(1000)
        .build()
        .unwrap();
    let mx = MutexGcra::new(100_000, 1000);
    let checks: [(&str, &(dyn Fn() -> bool + Sync)); 4] = [
        ("latchfree", &|| lf.try_acquire_at(1, nanos()).is_ok()),
        ("governor", &|| gov.check().is_ok()),
        ("ratelimit", &|| rl.try_wait().is_ok()),
        ("mutex_gcra", &|| mx.try_acquire(nanos())),
    ];
    let mut counts = Vec::new();
    for (name, admit) in checks {
        let n = admitted(run, admit);
        assert!(n <= ceiling, "{name} admitted {n} > {ceiling}");
        assert!(n > 0, "{name} admitted nothing");
        counts.push(format!("{name} {n}"));
    }
    counts.join(", ")
}

pub fn run(r: &mut Report) {
    r.note("limiter: try_acquire(1) at 10^9/s (always admitted) vs governor, ratelimit, Mutex GCRA; same TSC clock");
    let counts = verify();
    r.note(&format!(
        "  verified: admitted <= burst + rate x time (3002) at 10k/s over 200 ms: {counts}"
    ));
    // Every call admitted: the CAS path, not the cheaper refusal.
    let lf = Gcra::new(Quota::with_period(1).allow_burst(1_000_000_000));
    let lf_std = Gcra::new(Quota::with_period(1).allow_burst(1_000_000_000));
    let gov = governor::RateLimiter::direct(governor_quota(1_000_000_000, 1_000_000_000));
    let rl = ratelimit::Ratelimiter::builder(1_000, Duration::from_micros(1))
        .max_tokens(u64::MAX / 2)
        .initial_available(u64::MAX / 4)
        .build()
        .unwrap();
    let mx = MutexGcra::new(1, 1_000_000_000);
    // The physical floor of any limiter that keeps its state in one shared
    // word: one RMW on that word per call (plus the same clock read). A
    // `fetch_add` is the cheapest such RMW; a load + CAS is GCRA's shape.
    let floor_word = AtomicU64::new(0);
    let floor_cas = AtomicU64::new(0);
    let cas_once = || {
        let now = nanos();
        let mut cur = floor_cas.load(Ordering::Relaxed);
        loop {
            let next = cur.max(now) + 1;
            match floor_cas.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
    };
    for (threads, pin) in [(1, false), (2, false), (2, true)] {
        let scenario = format!(
            "try_acquire_{threads}_thread{}{}",
            if threads > 1 { "s" } else { "" },
            if pin { "_pinned" } else { "" }
        );
        r.note(&format!("  {scenario}: loadavg {}", loadavg()));
        add_rows(
            r,
            "limiter",
            &scenario,
            "ns_per_op",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_op_on(pin, threads, OPS, &|_| {
                        assert!(lf.try_acquire_at(1, nanos()).is_ok())
                    })
                }),
                ("latchfree_std_instant", &|| {
                    per_op_on(pin, threads, OPS, &|_| {
                        assert!(lf_std.try_acquire(1).is_ok())
                    })
                }),
                ("governor", &|| {
                    per_op_on(pin, threads, OPS, &|_| assert!(gov.check().is_ok()))
                }),
                ("ratelimit", &|| {
                    per_op_on(pin, threads, OPS, &|_| assert!(rl.try_wait().is_ok()))
                }),
                ("mutex_gcra", &|| {
                    per_op_on(pin, threads, OPS, &|_| assert!(mx.try_acquire(nanos())))
                }),
                ("floor_fetch_add", &|| {
                    per_op_on(pin, threads, OPS, &|_| {
                        black_box(
                            floor_word.fetch_add(black_box(nanos()) & 1 | 1, Ordering::AcqRel),
                        );
                    })
                }),
                ("floor_cas", &|| {
                    per_op_on(pin, threads, OPS, &|_| cas_once())
                }),
            ],
        );
        let want = if threads == 1 { 1.0 } else { 1.5 };
        target(
            r,
            &format!("{scenario} >= {want}x governor"),
            "limiter",
            &scenario,
            "governor",
            "latchfree",
            want,
        );
        // Whether any one-word limiter could meet it here: the floor must
        // be at most governor / want.
        target(
            r,
            &format!("{scenario} one-shared-word floor (fetch_add) >= {want}x governor (reachable at all)"),
            "limiter",
            &scenario,
            "governor",
            "floor_fetch_add",
            want,
        );
        target(
            r,
            &format!("{scenario} latchfree within 1.1x of the CAS floor"),
            "limiter",
            &scenario,
            "floor_cas",
            "latchfree",
            1.0 / 1.1,
        );
        if pin {
            continue;
        }
        // Refusals: a saturated limiter answers "not yet" (a load, no CAS).
        // One cell per ~11 days: nothing is admitted during the run.
        let lf_full = Gcra::new(Quota::with_period(1 << 50));
        let gov_full = governor::RateLimiter::direct(
            governor::Quota::with_period(Duration::from_nanos(1 << 50)).unwrap(),
        );
        let _ = lf_full.try_acquire_at(1, nanos());
        let _ = gov_full.check();
        add_rows(
            r,
            "limiter",
            &format!(
                "refuse_{threads}_thread{}",
                if threads > 1 { "s" } else { "" }
            ),
            "ns_per_op",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_op(threads, OPS, &|_| {
                        assert!(black_box(lf_full.try_acquire_at(1, nanos())).is_err())
                    })
                }),
                ("governor", &|| {
                    per_op(threads, OPS, &|_| {
                        assert!(black_box(gov_full.check()).is_err())
                    })
                }),
            ],
        );
        // Keyed: 1000 accounts, spread over the threads.
        let lf_keyed: Keyed<u64> = Keyed::new(Quota::with_period(1).allow_burst(1_000_000_000));
        let gov_keyed = governor::RateLimiter::keyed(governor_quota(1_000_000_000, 1_000_000_000));
        add_rows(
            r,
            "limiter",
            &format!(
                "keyed_{threads}_thread{}",
                if threads > 1 { "s" } else { "" }
            ),
            "ns_per_op",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_op(threads, OPS, &|i| {
                        assert!(lf_keyed
                            .try_acquire_at(&((i % KEYS) as u64), 1, nanos())
                            .is_ok())
                    })
                }),
                ("governor", &|| {
                    per_op(threads, OPS, &|i| {
                        assert!(gov_keyed.check_key(&((i % KEYS) as u64)).is_ok())
                    })
                }),
            ],
        );
    }
}
