//! Single-thread cost of draining expired timers, for counting
//! instructions and cache misses per timer under cachegrind (deterministic
//! on a loaded machine, unlike wall-clock time).
//!
//! ```text
//! cargo build --release --example wheel_cost
//! valgrind --tool=cachegrind --cache-sim=yes \
//!     target/release/examples/wheel_cost <impl> <timers> <fill|drain>
//! ```
//!
//! The shootout's drain scenario: `<timers>` timers with deadlines spread
//! uniformly over 1..=64 ms (the same seed), inserted in that order, then
//! drained millisecond by millisecond. `<impl>` is `latchfree` (the wheel's
//! `advance_with` sink), `latchfree_pop` (`advance_to`, then
//! `pop_expired`), `latchfree_poll` (`poll_expired(now)` loops) or
//! `delayqueue` (tokio-util's `DelayQueue`, `poll_expired` on a
//! current-thread runtime after real time has passed); `startstop` is the
//! shootout's other wheel scenario instead: `<timers>` far timers pending,
//! then a million inserts each removed at once (`fill`: without them). `fill` stops before
//! the drain and leaks the structure (no drop walk), so `drain` minus
//! `fill` is the drain alone; divide by `<timers>`.
//!
//! It also prints the drain's wall-clock and on-CPU nanoseconds per timer
//! (the thread's run time from `/proc/thread-self/schedstat`, which a
//! loaded machine's time slicing does not inflate), for quick comparisons
//! outside cachegrind; the shootout is the side-by-side figure.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use latchfree::wheel::{Growable, Wheel, WheelConfig};
use tokio_util::time::DelayQueue;

/// Deadlines spread over this many ms (the shootout's `SPREAD`).
const SPREAD: u64 = 64;

fn deadlines(n: usize) -> Vec<u64> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            1 + s % SPREAD
        })
        .collect()
}

/// This thread's time on a CPU so far, in ns (0 where unavailable).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `drain`, printing its wall and CPU time per timer.
fn timed(n: usize, drain: impl FnOnce() -> u64) -> u64 {
    let (c, t) = (cpu_ns(), Instant::now());
    let sum = drain();
    let wall = t.elapsed().as_nanos() as f64 / n as f64;
    let cpu = (cpu_ns() - c) as f64 / n as f64;
    eprintln!("drain: {wall:.1} ns/timer wall, {cpu:.1} ns/timer on CPU");
    sum
}

fn filled(ds: &[u64]) -> Wheel<u64, Growable> {
    let mut w = Wheel::with_capacity(WheelConfig::new(), ds.len());
    for &d in ds {
        w.insert_at(d, d);
    }
    w
}

#[inline(never)]
fn latchfree_sink(mut w: Wheel<u64, Growable>) -> u64 {
    let mut sum = 0;
    for now in 1..=SPREAD {
        w.advance_with(now, |e| sum += e.value);
    }
    sum
}

#[inline(never)]
fn latchfree_pop(mut w: Wheel<u64, Growable>) -> u64 {
    let mut sum = 0;
    for now in 1..=SPREAD {
        w.advance_to(now);
        while let Some(e) = w.pop_expired() {
            sum += e.value;
        }
    }
    sum
}

#[inline(never)]
fn latchfree_poll(mut w: Wheel<u64, Growable>) -> u64 {
    let mut sum = 0;
    for now in 1..=SPREAD {
        while let Some(e) = w.poll_expired(now) {
            sum += e.value;
        }
    }
    sum
}

fn delayqueue(ds: &[u64], drain: bool) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut q = DelayQueue::with_capacity(ds.len());
        for &d in ds {
            q.insert(d, Duration::from_millis(d));
        }
        tokio::time::sleep(Duration::from_millis(SPREAD + 20)).await;
        if !drain {
            std::mem::forget(q);
            return ds.iter().sum();
        }
        let (c, t) = (cpu_ns(), Instant::now());
        let mut sum = 0;
        while let Some(e) = std::future::poll_fn(|cx| q.poll_expired(cx)).await {
            sum += e.into_inner();
        }
        let n = ds.len() as f64;
        let wall = t.elapsed().as_nanos() as f64 / n;
        let cpu = (cpu_ns() - c) as f64 / n;
        eprintln!("drain: {wall:.1} ns/timer wall, {cpu:.1} ns/timer on CPU");
        sum
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let imp = args.next().unwrap_or_else(|| "latchfree".to_owned());
    let n: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("timers"));
    let drain = match args.next().as_deref() {
        None | Some("drain") => true,
        Some("fill") => false,
        Some(other) => {
            eprintln!("wheel_cost: third argument is fill or drain, not '{other}'");
            std::process::exit(2);
        }
    };
    let ds = deadlines(black_box(n));
    let sum = match imp.as_str() {
        "delayqueue" => delayqueue(&ds, drain),
        "startstop" => {
            let mut w: Wheel<u64, Growable> = Wheel::with_capacity(WheelConfig::new(), n + 1);
            let mut s = 0x2545_f491_4f6c_dd1du64;
            for _ in 0..n {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                w.insert_at(0, 1 + s % (1 << 30));
            }
            if drain {
                timed(1_000_000, || {
                    for i in 0..1_000_000u64 {
                        let k = w.insert_at(i, 1000 + (i & 0xffff));
                        assert_eq!(w.remove(k), Some(i));
                    }
                    0
                });
            }
            std::mem::forget(w);
            ds.iter().sum()
        }
        "latchfree" | "latchfree_pop" | "latchfree_poll" => {
            let w = filled(&ds);
            if !drain {
                std::mem::forget(w);
                ds.iter().sum()
            } else if imp == "latchfree" {
                timed(n, || latchfree_sink(w))
            } else if imp == "latchfree_pop" {
                timed(n, || latchfree_pop(w))
            } else {
                timed(n, || latchfree_poll(w))
            }
        }
        other => {
            eprintln!("wheel_cost: unknown impl '{other}'");
            std::process::exit(2);
        }
    };
    assert_eq!(
        sum,
        ds.iter().sum::<u64>(),
        "{imp}: lost or duplicated timers"
    );
    println!("{imp} timers={n} drain={drain} sum={sum}");
}
