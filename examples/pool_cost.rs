//! Instructions per no-op job of the thread pool against `threadpool`, for
//! callgrind (deterministic on a loaded machine, unlike wall-clock time),
//! plus a quick interleaved timing of the two.
//!
//! ```text
//! cargo build --release --example pool_cost
//! valgrind --tool=callgrind --separate-threads=yes \
//!     target/release/examples/pool_cost <latchfree|threadpool> <jobs>
//! target/release/examples/pool_cost time <rounds>
//! ```
//!
//! One thread submits `<jobs>` jobs (after 1000 to warm up) to a pool of 2
//! workers (latchfree: queue capacity 65536), then waits for them. Each job
//! is the shootout's `noop_1M` closure: a clone of one shared
//! `Arc<AtomicUsize>` bumped by the job (16 bytes). Run it with two job
//! counts and divide the differences by the difference of the counts: the
//! submitting thread's cost is `submit_lf`'s (or `submit_tp`'s) inclusive
//! count, the workers' the totals of the other threads. Under valgrind the
//! threads run one at a time, so no spinning is counted and the workers
//! take jobs in full batches.
//!
//! `time <rounds>` times 1M jobs through each pool, interleaved over the
//! rounds, and prints the latchfree / `threadpool` ratio of each round and
//! their median (`LFW` sets latchfree's worker count, default 2).

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The shootout's no-op job.
fn job(done: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let d = done.clone();
    move || {
        d.fetch_add(1, Ordering::Release);
    }
}

#[inline(never)]
fn submit_lf(p: &latchfree::pool::ThreadPool, done: &Arc<AtomicUsize>, n: usize) {
    for _ in 0..n {
        p.execute(job(done)).unwrap();
    }
}

#[inline(never)]
fn submit_tp(p: &threadpool::ThreadPool, done: &Arc<AtomicUsize>, n: usize) {
    for _ in 0..n {
        p.execute(job(done));
    }
}

fn lf_pool() -> latchfree::pool::ThreadPool {
    let w: usize = std::env::var("LFW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    latchfree::pool::ThreadPool::builder()
        .min_workers(w)
        .max_workers(w)
        .queue_capacity(65_536)
        .build()
        .unwrap()
}

/// One timed pass of `n` jobs (after a warm-up), in jobs per second.
fn pass(submit: impl Fn(&Arc<AtomicUsize>, usize), join: impl Fn(), n: usize) -> f64 {
    let warm = Arc::new(AtomicUsize::new(0));
    submit(&warm, 1000);
    join();
    let done = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    submit(&done, n);
    join();
    let rate = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(done.load(Ordering::Acquire), n, "lost jobs");
    rate
}

fn time_rounds(rounds: usize) {
    let n = 1_000_000;
    let mut ratios = Vec::new();
    for _ in 0..rounds.max(1) {
        let p = lf_pool();
        let lf = pass(|d, n| submit_lf(&p, d, n), || p.wait_idle().unwrap(), n);
        drop(p);
        let p = threadpool::ThreadPool::new(2);
        let tp = pass(|d, n| submit_tp(&p, d, n), || p.join(), n);
        drop(p);
        println!(
            "latchfree {:.2}M threadpool {:.2}M ratio {:.2}",
            lf / 1e6,
            tp / 1e6,
            lf / tp
        );
        ratios.push(lf / tp);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio {:.2} (range {:.2}-{:.2})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    if which == "time" {
        return time_rounds(n);
    }
    let done = Arc::new(AtomicUsize::new(0));
    match which.as_str() {
        "latchfree" => {
            let p = lf_pool();
            submit_lf(&p, &done, 1000);
            p.wait_idle().unwrap();
            submit_lf(&p, &done, n);
            p.wait_idle().unwrap();
        }
        "threadpool" => {
            let p = threadpool::ThreadPool::new(2);
            submit_tp(&p, &done, 1000);
            p.join();
            submit_tp(&p, &done, n);
            p.join();
        }
        _ => {
            eprintln!("usage: pool_cost <latchfree|threadpool> <jobs> | pool_cost time <rounds>");
            std::process::exit(2);
        }
    }
    assert_eq!(done.load(Ordering::Acquire), n + 1000);
}
