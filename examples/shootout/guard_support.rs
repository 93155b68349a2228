//! Shared by the limiter, breaker and balance sections: a fast clock (the
//! same TSC-based one governor uses, so every limiter reads the same
//! clock), timing over interleaved rounds, medians and ranges.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::OnceLock;
use std::time::Instant;

use crate::placement;
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
/// `ops` times, unpinned (the scheduler places them).
pub fn per_op(threads: usize, ops: usize, op: &(dyn Fn(usize) + Sync)) -> f64 {
    per_op_on(false, threads, ops, op)
}

/// As [`per_op`], with thread `k` pinned to core `k` (modulo the cores)
/// when `pin` is set and the machine reports its cores.
pub fn per_op_on(pin: bool, threads: usize, ops: usize, op: &(dyn Fn(usize) + Sync)) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                placement::pin(pin, th);
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

/// The median recorded for `imp` in `structure`'s `scenario`.
fn value(r: &Report, structure: &str, scenario: &str, imp: &str) -> Option<f64> {
    r.rows()
        .iter()
        .find(|row| row.structure == structure && row.scenario == scenario && row.imp == imp)
        .map(|row| row.value)
}

/// Notes `target WHAT: RATIOx (medians), met|MISSED`, where the ratio is
/// `num`'s median over `den`'s (both lower-is-better times, so `num` is
/// the peer) and the target is met at `want` or more.
pub fn target(
    r: &Report,
    what: &str,
    structure: &str,
    scenario: &str,
    num: &str,
    den: &str,
    want: f64,
) {
    if let (Some(a), Some(b)) = (
        value(r, structure, scenario, num),
        value(r, structure, scenario, den),
    ) {
        let ratio = a / b;
        let verdict = if ratio >= want { "met" } else { "MISSED" };
        r.note(&format!(
            "target {what}: {ratio:.2}x (medians {a:.1} / {b:.1}), {verdict}"
        ));
    }
}

/// The 1-, 5- and 15-minute load averages (`?` where unreadable).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
