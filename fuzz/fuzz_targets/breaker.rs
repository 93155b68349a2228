//! The circuit breaker's state machine against a sequential model over
//! arbitrary configurations and interleavings of admissions, outcomes and
//! clock steps (backwards included): every admission, every rejection's
//! `retry_at`, every state and every total matches.
#![no_main]
use arbitrary::Arbitrary;
use latchfree::breaker::{Breaker, Config, Permit, Rejected, State};
use libfuzzer_sys::fuzz_target;

/// The Open payload unit, 2²⁰ ns (the cool-down's end is rounded up to it).
const UNIT: u64 = 1 << 20;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Admit a call and keep its permit.
    Acquire,
    /// Record the outcome of the held permit at this index (mod count).
    Record(u8, bool),
    /// Move the clock by this many 2¹⁰ ns (negative: back).
    Step(i16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    consecutive: u8,
    cool_down: u16,
    probes: u8,
    successes: u8,
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ModelState {
    Closed,
    Open { until: u64 },
    HalfOpen { admitted: u32, succeeded: u32 },
}

struct Model {
    consecutive: u32,
    cool_down: u64,
    probes: u32,
    successes_needed: u32,
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
            ModelState::Open { until } if now / UNIT >= until => {
                self.generation += 1;
                self.state = ModelState::HalfOpen {
                    admitted: 1,
                    succeeded: 0,
                };
                Ok((true, self.generation))
            }
            ModelState::Open { until } => {
                self.rejected += 1;
                Err(Rejected::Open {
                    retry_at: until * UNIT,
                })
            }
            ModelState::HalfOpen { admitted, .. } if admitted >= self.probes => {
                self.rejected += 1;
                Err(Rejected::ProbesBusy)
            }
            ModelState::HalfOpen {
                admitted,
                succeeded,
            } => {
                self.state = ModelState::HalfOpen {
                    admitted: admitted + 1,
                    succeeded,
                };
                Ok((true, self.generation))
            }
        }
    }

    fn open(&mut self, now: u64) {
        self.generation += 1;
        self.opened += 1;
        self.state = ModelState::Open {
            until: (now + self.cool_down).div_ceil(UNIT),
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
                if self.consecutive != 0
                    && self.streak >= self.consecutive
                    && self.state == ModelState::Closed
                {
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
        } else if succeeded + 1 >= self.successes_needed {
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

fuzz_target!(|input: Input| {
    let consecutive = u32::from(input.consecutive % 8);
    let cool_down = u64::from(input.cool_down) << 10;
    // The config clamps probes to at least 1 and successes to 1..=probes.
    let probes = u32::from(input.probes % 6);
    let successes = u32::from(input.successes % 6);
    let b = Breaker::new(
        Config::new()
            .failure_rate(0)
            .consecutive_failures(consecutive)
            .cool_down(cool_down)
            .probes(probes)
            .successes(successes),
    );
    let probes = probes.max(1);
    let mut m = Model {
        consecutive,
        cool_down,
        probes,
        successes_needed: successes.clamp(1, probes),
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
    for op in input.ops {
        match op {
            Op::Acquire => match (b.try_acquire_at(now), m.acquire(now)) {
                (Ok(p), Ok(mp)) => {
                    assert_eq!(p.is_probe(), mp.0);
                    held.push((p, mp));
                }
                (Err(e), Err(me)) => {
                    assert_eq!(e, me);
                    if let Rejected::Open { retry_at } = e {
                        assert!(retry_at > now, "retry_at {retry_at} not after {now}");
                    }
                }
                (r, mo) => panic!("real {:?} model {:?}", r.map(|p| p.is_probe()), mo),
            },
            Op::Record(i, ok) if !held.is_empty() => {
                let (p, mp) = held.remove(usize::from(i) % held.len());
                b.record_at(p, ok, now);
                m.record(mp, ok, now);
            }
            Op::Record(..) => {}
            Op::Step(d) => now = now.saturating_add_signed(i64::from(d) << 10),
        }
        assert_eq!(b.state(), m.public_state());
        let metrics = b.metrics();
        assert_eq!(
            (
                metrics.successes,
                metrics.failures,
                metrics.rejected,
                metrics.opened
            ),
            (m.successes, m.failures, m.rejected, m.opened)
        );
    }
});
