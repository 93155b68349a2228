//! The breaker against a sequential model of its state machine over
//! random clocks and random interleavings of admissions and outcomes:
//! every admission decision, every state and every total matches.

// Host-only code: std paths are fine here.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::breaker::{Breaker, Config, Permit, Rejected, State};
use proptest::prelude::*;

const UNIT: u64 = 1 << 20;
const COOL: u64 = 5 * UNIT;
const CONSECUTIVE: u32 = 3;
const PROBES: u32 = 2;
const SUCCESSES: u32 = 2;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Admit a call and keep its permit.
    Acquire,
    /// Record the outcome of the held permit at this index (mod count).
    Record(usize, bool),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ModelState {
    Closed,
    Open { until: u64 },
    HalfOpen { admitted: u32, succeeded: u32 },
}

struct Model {
    state: ModelState,
    generation: u64,
    streak: u32,
    successes: usize,
    failures: usize,
    rejected: usize,
    opened: usize,
}

impl Model {
    fn acquire(&mut self, now: u64) -> Result<(bool, u64), Rejected> {
        match self.state {
            ModelState::Closed => Ok((false, self.generation)),
            ModelState::Open { until } => {
                if now / UNIT >= until {
                    self.generation += 1;
                    self.state = ModelState::HalfOpen {
                        admitted: 1,
                        succeeded: 0,
                    };
                    Ok((true, self.generation))
                } else {
                    self.rejected += 1;
                    Err(Rejected::Open {
                        retry_at: until * UNIT,
                    })
                }
            }
            ModelState::HalfOpen {
                admitted,
                succeeded,
            } => {
                if admitted >= PROBES {
                    self.rejected += 1;
                    Err(Rejected::ProbesBusy)
                } else {
                    self.state = ModelState::HalfOpen {
                        admitted: admitted + 1,
                        succeeded,
                    };
                    Ok((true, self.generation))
                }
            }
        }
    }

    fn open(&mut self, now: u64) {
        self.generation += 1;
        self.opened += 1;
        self.state = ModelState::Open {
            until: (now + COOL).div_ceil(UNIT),
        };
    }

    fn record(&mut self, (probe, generation): (bool, u64), ok: bool, now: u64) {
        if ok {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        if !probe {
            if ok {
                self.streak = 0;
            } else {
                self.streak += 1;
                if self.streak >= CONSECUTIVE && self.state == ModelState::Closed {
                    self.open(now);
                }
            }
            return;
        }
        let ModelState::HalfOpen {
            admitted,
            succeeded,
        } = self.state
        else {
            return;
        };
        if generation != self.generation {
            return; // a probe of a finished round
        }
        if !ok {
            self.open(now);
        } else if succeeded + 1 >= SUCCESSES {
            self.generation += 1;
            self.streak = 0;
            self.state = ModelState::Closed;
        } else {
            self.state = ModelState::HalfOpen {
                admitted,
                succeeded: succeeded + 1,
            };
        }
    }

    fn public_state(&self) -> State {
        match self.state {
            ModelState::Closed => State::Closed,
            ModelState::Open { .. } => State::Open,
            ModelState::HalfOpen { .. } => State::HalfOpen,
        }
    }
}

fn op() -> impl Strategy<Value = (u64, Op)> {
    let dt = prop_oneof![4 => Just(0u64), 4 => 0u64..UNIT, 2 => 0u64..4 * COOL];
    let op = prop_oneof![
        3 => Just(Op::Acquire),
        4 => (0usize..8, any::<bool>()).prop_map(|(i, ok)| Op::Record(i, ok)),
    ];
    (dt, op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn breaker_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let b = Breaker::new(
            Config::new()
                .failure_rate(0)
                .consecutive_failures(CONSECUTIVE)
                .cool_down(COOL)
                .probes(PROBES)
                .successes(SUCCESSES),
        );
        let mut m = Model {
            state: ModelState::Closed,
            generation: 0,
            streak: 0,
            successes: 0,
            failures: 0,
            rejected: 0,
            opened: 0,
        };
        let mut held: Vec<(Permit, (bool, u64))> = Vec::new();
        let mut now = 1_000 * UNIT;
        for (dt, op) in ops {
            now += dt;
            match op {
                Op::Acquire => {
                    let real = b.try_acquire_at(now);
                    let model = m.acquire(now);
                    match (real, model) {
                        (Ok(p), Ok(mp)) => {
                            prop_assert_eq!(p.is_probe(), mp.0);
                            held.push((p, mp));
                        }
                        (Err(e), Err(me)) => prop_assert_eq!(e, me),
                        (r, mo) => prop_assert!(false, "real {:?} model {:?}", r.map(|p| p.is_probe()), mo),
                    }
                }
                Op::Record(i, ok) => {
                    if held.is_empty() {
                        continue;
                    }
                    let (p, mp) = held.remove(i % held.len());
                    b.record_at(p, ok, now);
                    m.record(mp, ok, now);
                }
            }
            prop_assert_eq!(b.state(), m.public_state());
            let metrics = b.metrics();
            prop_assert_eq!(
                (metrics.successes, metrics.failures, metrics.rejected, metrics.opened),
                (m.successes, m.failures, m.rejected, m.opened)
            );
        }
    }
}
