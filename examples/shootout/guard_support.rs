//! Shared by the limiter, breaker and balance sections: a fast clock (the
//! same TSC-based one governor uses, so every limiter reads the same
//! clock), timing over interleaved rounds, medians and ranges.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::OnceLock;
use std::time::Instant;

use crate::report::{Better, Report};

/// Rounds per measurement; implementations are interleaved round by round.
pub const ROUNDS: usize = 5;

static CLOCK: OnceLock<(quanta::Clock, u64)> = OnceLock::new();

/// Nanoseconds since the first call, from quanta's TSC clock.
#[inline]
pub fn nanos() -> u64 {
    let (clock, base) = CLOCK.get_or_init(|| {
        let c = quanta::Clock::new();
        let base = c.raw();
        (c, base)
    });
    clock.delta_as_nanos(*base, clock.raw())
}

/// Nanoseconds per operation with `threads` threads each running `op`
/// `ops` times.
pub fn per_op(threads: usize, ops: usize, op: &(dyn Fn(usize) + Sync)) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                for i in 0..ops {
                    op(th * ops + i);
                }
            });
        }
    });
    t.elapsed().as_nanos() as f64 / ops as f64
}

/// Runs every implementation once per round, interleaved, and returns
/// each one's per-round values.
pub fn rounds(imps: &[(&str, &dyn Fn() -> f64)]) -> Vec<Vec<f64>> {
    let mut values = vec![Vec::new(); imps.len()];
    for _ in 0..ROUNDS {
        for (k, (_, f)) in imps.iter().enumerate() {
            values[k].push(f());
        }
    }
    values
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Adds one row per implementation (the median) and notes the ranges.
pub fn add_rows(
    r: &mut Report,
    structure: &'static str,
    scenario: &str,
    metric: &'static str,
    better: Better,
    imps: &[(&str, &dyn Fn() -> f64)],
) {
    let mut values = rounds(imps);
    let mut ranges = Vec::new();
    for (k, (name, _)) in imps.iter().enumerate() {
        let m = median(&mut values[k]);
        ranges.push(format!(
            "{name} {:.1}..{:.1}",
            values[k][0],
            values[k][values[k].len() - 1]
        ));
        r.add(structure, scenario, name, metric, m, better);
    }
    r.note(&format!(
        "  {scenario} {metric} ranges over {ROUNDS} rounds: {}",
        ranges.join(", ")
    ));
}
