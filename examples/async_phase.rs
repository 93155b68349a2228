//! Where an async ping-pong round trip spends its time: split in two at
//! the echo task, for latchfree's ring, `kanal` and the bare hand-off
//! (`shootout/async_bare.rs`: one slot, one `AtomicWaker`), interleaved over rounds on a 2-worker tokio runtime (or a
//! current-thread one).
//!
//! ```text
//! cargo run --release --example async_phase -- [trips] [rounds] [ct] [pin]
//! ```
//!
//! The main task stamps the time and sends; the echo task, on receiving,
//! sends back its own stamp, so a round trip splits into `there` (send to
//! the echo's receive: the wake of the echo's task) and `back` (the echo's
//! send to the main task's receive). All stamps come from one `Instant`
//! base. `pin` puts the main thread on the first core and the runtime's
//! workers on the next ones in turn, as the shootout's `--pin` does. Each
//! line gives, per implementation, the median [min–max] over rounds of
//! each round's p50 (ns).

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "shootout/async_bare.rs"]
mod async_bare;
#[path = "shootout/placement.rs"]
mod placement;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_bare::Slot;
use latchfree::ring::{AsyncWait, BusySpin, Consumer, Heap, Producer, Ring, Single};

type R = Ring<Heap<u64>, Single, AsyncWait<BusySpin, 2>>;

/// Nanoseconds since `base`.
fn stamp(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Each trip's (there, back) in ns, from the main task's send stamp `t0`,
/// the echo's stamp `echoed` and the main task's receive stamp `t2`.
fn split(t0: u64, echoed: u64, t2: u64) -> (u64, u64) {
    (echoed.saturating_sub(t0), t2.saturating_sub(echoed))
}

/// A ring of capacity 1 (as the peers' channels) and its two handles.
fn handles() -> (Consumer<Arc<R>>, Producer<Arc<R>>) {
    let ring = Ring::with_wait(
        Heap::with_capacity(1).expect("capacity"),
        AsyncWait::with(BusySpin),
    );
    let mut graph = Ring::graph(Arc::new(ring)).expect("graph");
    let consumer = graph.consumer(&[]).expect("gate");
    (consumer, graph.single_producer().expect("producer"))
}

async fn latchfree(n: usize, base: Instant) -> Vec<(u64, u64)> {
    let ((mut c1, mut p1), (mut c2, mut p2)) = (handles(), handles());
    let echo = tokio::spawn(async move {
        for _ in 0..n {
            c1.wait_async(|_, _, _| {}).await.expect("open");
            p2.push_async(stamp(base)).await.expect("open");
        }
    });
    let mut trips = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t0 = stamp(base);
        p1.push_async(i).await.expect("open");
        let mut echoed = None;
        c2.wait_async(|e, _, _| echoed = Some(*e))
            .await
            .expect("open");
        trips.push(split(t0, echoed.expect("one event"), stamp(base)));
    }
    echo.await.expect("echo task");
    trips
}

async fn kanal(n: usize, base: Instant) -> Vec<(u64, u64)> {
    let (tx1, rx1) = kanal::bounded_async::<u64>(1);
    let (tx2, rx2) = kanal::bounded_async::<u64>(1);
    let echo = tokio::spawn(async move {
        for _ in 0..n {
            rx1.recv().await.expect("open");
            tx2.send(stamp(base)).await.expect("open");
        }
    });
    let mut trips = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t0 = stamp(base);
        tx1.send(i).await.expect("open");
        let echoed = rx2.recv().await.expect("open");
        trips.push(split(t0, echoed, stamp(base)));
    }
    echo.await.expect("echo task");
    trips
}

async fn bare(n: usize, base: Instant) -> Vec<(u64, u64)> {
    let (there, back) = (Arc::new(Slot::new()), Arc::new(Slot::new()));
    let (there2, back2) = (there.clone(), back.clone());
    let echo = tokio::spawn(async move {
        for _ in 0..n {
            there2.recv().await;
            back2.send(stamp(base));
        }
    });
    let mut trips = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t0 = stamp(base);
        there.send(i);
        let echoed = back.recv().await;
        trips.push(split(t0, echoed, stamp(base)));
    }
    echo.await.expect("echo task");
    trips
}

fn p50(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// "median [min–max]" of `v`.
fn spread(mut v: Vec<u64>) -> String {
    v.sort_unstable();
    format!("{} [{}–{}]", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn runtime(multi: bool, pin: bool) -> tokio::runtime::Runtime {
    placement::pin(pin, 0);
    if !multi {
        return tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
    }
    let next = AtomicUsize::new(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || placement::pin(pin, next.fetch_add(1, Ordering::Relaxed)))
        .build()
        .expect("runtime")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (n, rounds) = (num(0, 50_000), num(1, 5));
    let multi = !args.iter().any(|a| a == "ct");
    let pin = args.iter().any(|a| a == "pin");
    let imps = ["latchfree", "kanal", "bare-waker"];
    // Per implementation: each round's p50 of (round trip, there, back).
    let mut p50s = vec![(Vec::new(), Vec::new(), Vec::new()); imps.len()];
    for _ in 0..rounds {
        for (k, imp) in imps.iter().enumerate() {
            let rt = runtime(multi, pin);
            let base = Instant::now();
            let trips = rt.block_on(async move {
                match *imp {
                    "latchfree" => latchfree(n, base).await,
                    "kanal" => kanal(n, base).await,
                    _ => bare(n, base).await,
                }
            });
            assert_eq!(trips.len(), n, "{imp}: every round trip done");
            p50s[k]
                .0
                .push(p50(trips.iter().map(|t| t.0 + t.1).collect()));
            p50s[k].1.push(p50(trips.iter().map(|t| t.0).collect()));
            p50s[k].2.push(p50(trips.iter().map(|t| t.1).collect()));
        }
    }
    println!(
        "{} runtime{}, {n} round trips x {rounds} rounds; p50 ns, median [min–max] over rounds",
        if multi { "2-worker" } else { "current-thread" },
        if pin { ", pinned" } else { "" }
    );
    for (imp, (rt, there, back)) in imps.iter().zip(p50s) {
        println!(
            "{imp:10}  round trip {:22} there {:22} back {}",
            spread(rt),
            spread(there),
            spread(back)
        );
    }
}
