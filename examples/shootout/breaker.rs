//! Circuit breaker: the cost `call` adds around a call in the closed state,
//! against failsafe (a state machine behind a lock) and a
//! `Mutex`-guarded breaker; on one thread and two at once.
//!
//! Overhead = ns per guarded call − ns per bare call, both measured in
//! the same round. latchfree's core takes the caller's clock: the
//! `latchfree` row reads the TSC clock once per call (as a server that has
//! no timestamp at hand would), `latchfree_std` uses the `std` `call`
//! (Instant), `latchfree_given_clock` passes a timestamp the caller
//! already had (refreshed every 64 calls).

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;
use std::sync::Mutex;

use crate::guard_support::{add_rows, nanos, per_op};
use crate::report::{Better, Report};
use failsafe::CircuitBreaker as _;
use latchfree::breaker::{Breaker, Config, State};

const OPS: usize = 2_000_000;

/// A gobreaker-shaped breaker behind one lock: state, consecutive
/// failures, counts.
struct MutexBreaker {
    inner: Mutex<(State, u32, u64, u64)>,
}

impl MutexBreaker {
    fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Option<Result<T, E>> {
        if self.inner.lock().unwrap().0 != State::Closed {
            return None;
        }
        let r = f();
        let mut g = self.inner.lock().unwrap();
        match &r {
            Ok(_) => {
                g.1 = 0;
                g.2 += 1;
            }
            Err(_) => {
                g.1 += 1;
                g.3 += 1;
                if g.1 >= 5 {
                    g.0 = State::Open;
                }
            }
        }
        Some(r)
    }
}

#[inline(never)]
fn work(i: usize) -> Result<usize, ()> {
    Ok(black_box(i))
}

pub fn run(r: &mut Report) {
    r.note("breaker: call() overhead in the closed state vs failsafe and a Mutex breaker");
    for threads in [1, 2] {
        let lf = Breaker::new(Config::new());
        let fs = failsafe::Config::new().build();
        let mx = MutexBreaker {
            inner: Mutex::new((State::Closed, 0, 0, 0)),
        };
        // Verify: every call ran and was counted as a success.
        for i in 0..1000 {
            assert_eq!(lf.call_at(nanos(), || work(i)).ok(), Some(i));
            assert_eq!(fs.call(|| work(i)).ok(), Some(i));
            assert_eq!(mx.call(|| work(i)), Some(Ok(i)));
        }
        assert_eq!(lf.metrics().successes, 1000);
        let scenario = format!(
            "closed_call_{threads}_thread{}",
            if threads > 1 { "s" } else { "" }
        );
        let bare = || {
            per_op(threads, OPS, &|i| {
                let _ = black_box(work(i));
            })
        };
        add_rows(
            r,
            "breaker",
            &scenario,
            "overhead_ns",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_op(threads, OPS, &|i| {
                        let _ = black_box(lf.call_at(nanos(), || work(i)));
                    }) - bare()
                }),
                ("latchfree_given_clock", &|| {
                    let t = per_op(threads, OPS / 64, &|i| {
                        let now = nanos();
                        for k in 0..64 {
                            {
                                let _ = black_box(lf.call_at(now, || work(i + k)));
                            };
                        }
                    }) / 64.0;
                    t - bare()
                }),
                ("latchfree_std", &|| {
                    per_op(threads, OPS, &|i| {
                        let _ = black_box(lf.call(|| work(i)));
                    }) - bare()
                }),
                ("failsafe", &|| {
                    per_op(threads, OPS, &|i| {
                        let _ = black_box(fs.call(|| work(i)));
                    }) - bare()
                }),
                ("mutex_breaker", &|| {
                    per_op(threads, OPS, &|i| {
                        let _ = black_box(mx.call(|| work(i)));
                    }) - bare()
                }),
            ],
        );
        assert_eq!(lf.state(), State::Closed);
        assert!(lf.metrics().successes > 1000);
    }
}
