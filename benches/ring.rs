//! Criterion benchmarks for `latchfree::ring` against its peers, one group
//! per scenario, all peers in the same group.
//!
//! The scenario code is the shootout's (`examples/shootout/ring.rs`), so both
//! measure exactly the same thing: every run asserts that each consumer saw
//! every event exactly once (the sum of `1..=n`) before its time counts.
//! Sizes are smaller here. Waits: `1p1c*` and `pingpong` busy-spin (two
//! threads); `3p1c`, `pipeline3` and `diamond` yield (four threads on two
//! cores); see the shootout module docs for each peer's waiting.
//!
//! ```text
//! cargo bench --bench ring [-- <group filter>]
//! ```
#![allow(missing_docs)]
// A std program: the crate's no_std lints guard the library, not benches.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

#[allow(dead_code)]
#[path = "../examples/shootout/placement.rs"]
mod placement;
#[allow(dead_code)]
#[path = "../examples/shootout/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../examples/shootout/ring.rs"]
mod ring;

use ring::{Chan, CrossbeamArrayQueue, Rtrb, StdSyncChannel, Wait};

/// Events per measured run.
const N: u64 = 60_000;
/// Round trips per measured ping-pong run.
const ROUNDS: u64 = 2_000;

fn group<'a>(c: &'a mut Criterion, name: &str, elements: u64) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(format!("ring/{name}"));
    g.throughput(Throughput::Elements(elements));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g
}

/// Benches one whole run (threads, publish, drain, check) per iteration.
fn run(g: &mut BenchmarkGroup<'_, WallTime>, imp: &str, mut f: impl FnMut() -> Duration) {
    g.bench_function(imp, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f()).sum())
    });
}

fn spsc(c: &mut Criterion) {
    let mut g = group(c, "1p1c", N);
    run(&mut g, "latchfree", || ring::lf_1p1c(N, 1, false));
    run(&mut g, "disruptor", || ring::d_1p1c(N, 1));
    run(&mut g, CrossbeamArrayQueue::NAME, || {
        ring::q_1p1c::<CrossbeamArrayQueue>(N, Wait::Spin)
    });
    run(&mut g, Rtrb::NAME, || ring::q_1p1c::<Rtrb>(N, Wait::Spin));
    run(&mut g, StdSyncChannel::NAME, || {
        ring::q_1p1c::<StdSyncChannel>(N, Wait::Spin)
    });
    run(&mut g, "floor", || ring::floor_tput(N));
    g.finish();

    for batch in [10, 100] {
        let mut g = group(c, &format!("1p1c_batch{batch}"), N);
        run(&mut g, "latchfree", || ring::lf_1p1c(N, batch, false));
        run(&mut g, "disruptor", || ring::d_1p1c(N, batch));
        run(&mut g, Rtrb::NAME, || ring::rtrb_1p1c_batch(N, batch));
        run(&mut g, "floor", || ring::floor_tput(N));
        g.finish();
    }
}

fn mpsc(c: &mut Criterion) {
    let mut g = group(c, "3p1c", N);
    run(&mut g, "latchfree", || ring::lf_3p1c(N).0); // (time, consumer batches)
    run(&mut g, "disruptor", || ring::d_3p1c(N));
    run(&mut g, CrossbeamArrayQueue::NAME, || {
        ring::q_3p1c::<CrossbeamArrayQueue>(N, Wait::Yield).expect("MPMC")
    });
    run(&mut g, StdSyncChannel::NAME, || {
        ring::q_3p1c::<StdSyncChannel>(N, Wait::Yield).expect("MPSC")
    });
    run(&mut g, "floor", || ring::floor_tput(N));
    g.finish();
}

fn graphs(c: &mut Criterion) {
    let mut g = group(c, "pipeline3", N);
    run(&mut g, "latchfree", || ring::lf_pipeline3(N));
    run(&mut g, "disruptor", || ring::d_pipeline3(N));
    run(&mut g, CrossbeamArrayQueue::NAME, || {
        ring::q_pipeline3::<CrossbeamArrayQueue>(N, Wait::Yield)
    });
    run(&mut g, Rtrb::NAME, || {
        ring::q_pipeline3::<Rtrb>(N, Wait::Yield)
    });
    run(&mut g, StdSyncChannel::NAME, || {
        ring::q_pipeline3::<StdSyncChannel>(N, Wait::Yield)
    });
    run(&mut g, "floor", || ring::floor_tput(N));
    g.finish();

    let mut g = group(c, "diamond", N);
    run(&mut g, "latchfree", || ring::lf_diamond(N));
    run(&mut g, "disruptor", || ring::d_diamond(N));
    run(&mut g, CrossbeamArrayQueue::NAME, || {
        ring::q_diamond::<CrossbeamArrayQueue>(N, Wait::Yield)
    });
    run(&mut g, Rtrb::NAME, || {
        ring::q_diamond::<Rtrb>(N, Wait::Yield)
    });
    run(&mut g, StdSyncChannel::NAME, || {
        ring::q_diamond::<StdSyncChannel>(N, Wait::Yield)
    });
    run(&mut g, "floor", || ring::floor_tput(N));
    g.finish();
}

/// Mean round-trip time (criterion reports time per element = per round
/// trip); the shootout reports the percentiles.
fn pingpong(c: &mut Criterion) {
    let new = || {
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram")
    };
    let mut g = group(c, "pingpong", ROUNDS);
    let mut pp = |imp: &str, f: fn(u64, u64, &mut hdrhistogram::Histogram<u64>)| {
        run(&mut g, imp, || {
            let mut h = new();
            let t = std::time::Instant::now();
            f(ROUNDS, 0, &mut h);
            t.elapsed()
        });
    };
    pp("latchfree", ring::lf_pingpong);
    pp("disruptor", ring::d_pingpong);
    pp(
        CrossbeamArrayQueue::NAME,
        ring::q_pingpong::<CrossbeamArrayQueue>,
    );
    pp(Rtrb::NAME, ring::q_pingpong::<Rtrb>);
    pp(StdSyncChannel::NAME, ring::q_pingpong::<StdSyncChannel>);
    pp("floor", ring::floor_pingpong);
    g.finish();
}

criterion_group!(benches, spsc, mpsc, graphs, pingpong);
criterion_main!(benches);
