//! Cost of async waits on one thread, for counting instructions per round
//! trip (or per event) under cachegrind, deterministic on a loaded machine.
//!
//! ```text
//! cargo build --release --example async_cost
//! valgrind --tool=cachegrind --cache-sim=no \
//!     target/release/examples/async_cost <impl> <scenario> <n>
//! ```
//!
//! `<impl>` is `latchfree` (a `Single` ring with the `AsyncWait` strategy,
//! `push_async` / `wait_async`) or `kanal` (`bounded_async`); `<scenario>`
//! is `pingpong` (`n` round trips between two tasks over two queues of
//! capacity 1, as the shootout's `pingpong_ct`) or `spsc` (`n` events from
//! a producer task to a consumer task through a queue of 1024, as
//! `spsc_ct`), both on a current-thread tokio runtime. Run it twice with
//! different `n` and divide the difference of the totals by the difference
//! of the `n`s: set-up cost cancels out. `PING_CAP=k` sets the ping-pong
//! rings' capacity (1 by default, as the shootout's, whose peers get 1
//! too); `MT2=1` runs on a
//! 2-worker runtime instead (for timing; the elapsed time is printed).

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::Arc;

use latchfree::ring::{AsyncWait, BusySpin, Heap, Ring, Single};

type R = Ring<Heap<u64>, Single, AsyncWait<BusySpin, 2>>;

fn ring(cap: usize) -> Arc<R> {
    Arc::new(Ring::with_wait(
        Heap::with_capacity(cap).expect("capacity"),
        AsyncWait::with(BusySpin),
    ))
}

async fn latchfree_pingpong(n: u64) -> u64 {
    let cap = std::env::var("PING_CAP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (there, back) = (ring(cap), ring(cap));
    let mut g1 = Ring::graph(there.clone()).expect("graph");
    let mut c1 = g1.consumer(&[]).expect("gate");
    let mut p1 = g1.single_producer().expect("producer");
    let mut g2 = Ring::graph(back.clone()).expect("graph");
    let mut c2 = g2.consumer(&[]).expect("gate");
    let mut p2 = g2.single_producer().expect("producer");
    let echo = tokio::spawn(async move {
        loop {
            let mut got = None;
            match c1.wait_async(|e, _, _| got = Some(*e)).await {
                Ok(_) => p2.push_async(got.expect("an event")).await.expect("open"),
                Err(_) => break,
            };
        }
    });
    let mut sum = 0;
    for i in 0..n {
        p1.push_async(i).await.expect("open");
        let mut got = None;
        c2.wait_async(|e, _, _| got = Some(*e)).await.expect("open");
        assert_eq!(got, Some(i), "latchfree: echoed value");
        sum += i;
    }
    drop(p1);
    echo.await.expect("echo task");
    sum
}

async fn kanal_pingpong(n: u64) -> u64 {
    let (tx1, rx1) = kanal::bounded_async::<u64>(1);
    let (tx2, rx2) = kanal::bounded_async::<u64>(1);
    let echo = tokio::spawn(async move {
        while let Ok(v) = rx1.recv().await {
            tx2.send(v).await.expect("open");
        }
    });
    let mut sum = 0;
    for i in 0..n {
        tx1.send(i).await.expect("open");
        assert_eq!(rx2.recv().await.ok(), Some(i), "kanal: echoed value");
        sum += i;
    }
    drop(tx1);
    echo.await.expect("echo task");
    sum
}

async fn latchfree_spsc(n: u64) -> u64 {
    let r = ring(1024);
    let mut g = Ring::graph(r.clone()).expect("graph");
    let mut c = g.consumer(&[]).expect("gate");
    let mut p = g.single_producer().expect("producer");
    let prod = tokio::spawn(async move {
        for i in 1..=n {
            p.push_async(i).await.expect("open");
        }
    });
    let mut sum = 0;
    while c.wait_async(|e, _, _| sum += e).await.is_ok() {}
    prod.await.expect("producer task");
    sum
}

async fn kanal_spsc(n: u64) -> u64 {
    let (tx, rx) = kanal::bounded_async::<u64>(1024);
    let prod = tokio::spawn(async move {
        for i in 1..=n {
            tx.send(i).await.expect("open");
        }
    });
    let mut sum = 0;
    while let Ok(v) = rx.recv().await {
        sum += v;
    }
    prod.await.expect("producer task");
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: async_cost <latchfree|kanal> <pingpong|spsc> <n>";
    let (imp, scenario) = (
        args.get(1).expect(usage).as_str(),
        args.get(2).expect(usage).as_str(),
    );
    let n: u64 = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let rt = if std::env::var("MT2").is_ok() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime")
    } else {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    };
    let t0 = std::time::Instant::now();
    let sum = rt.block_on(async move {
        match (imp, scenario) {
            ("latchfree", "pingpong") => latchfree_pingpong(n).await,
            ("kanal", "pingpong") => kanal_pingpong(n).await,
            ("latchfree", "spsc") => latchfree_spsc(n).await,
            ("kanal", "spsc") => kanal_spsc(n).await,
            _ => panic!("{usage}"),
        }
    });
    let want = match scenario {
        "pingpong" => n * n.saturating_sub(1) / 2,
        _ => n * (n + 1) / 2,
    };
    assert_eq!(sum, want, "{imp} {scenario}: delivered sum");
    println!("{imp} {scenario} {n}: ok in {:?}", t0.elapsed());
}
