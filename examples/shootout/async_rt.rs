//! The `async` section: latchfree's awaitable ring (`AsyncWait`) and async
//! batcher against async channels, on a 2-worker tokio runtime and on a
//! current-thread runtime.
//!
//! - `spsc`, `3p1c`: events per second, one consumer task draining what
//!   one or three producer tasks push (`push_async` / `send().await`);
//! - `pingpong`: round trips between two tasks over two queues, p50 of
//!   each round trip's time, beside the bare hand-off (`async_bare`: one
//!   slot, one `AtomicWaker`);
//! - `batch64`: ns per item from async pushers through batches of 64 to an
//!   async consumer (`Batcher::push_async` + `BatchStream`).
//!
//! The shootout's `--only pingpong_ct,batch64` runs only the scenarios
//! with those name prefixes, and `--rounds N` sets the rounds, as for the
//! ring section; the section ends with issue 15's targets, met or MISSED.
//!
//! Every run checks its count and sum before its time counts. Rounds are
//! interleaved (each round runs every implementation once, in turn), the
//! median and min–max over them are reported, with the load average at
//! the start and end of the section.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchfree::batch::Batcher;
use latchfree::ring::{AsyncWait, BusySpin, ConsumeError, Heap, Multi, Ring, Single};

use crate::async_bare::Slot;
use crate::placement;
use crate::report::{Better, Report};

const CAP: usize = 1024;
/// Every queue's capacity in `pingpong` (latchfree's ring and each peer's
/// channel alike): a round trip has one event in flight per queue.
const PING_CAP: usize = 1;
const ROUNDS: usize = 5;

fn events() -> u64 {
    if cfg!(debug_assertions) {
        20_000
    } else {
        1_000_000
    }
}

fn trips() -> usize {
    if cfg!(debug_assertions) {
        2_000
    } else {
        50_000
    }
}

/// The runtimes measured: a 2-worker one (`multi`) or a current-thread
/// one. Under `--pin` the section runs on a thread pinned to the first
/// core (`run`), and the workers go to the next cores in turn (the first
/// to the second core, the second back to the first on 2 cores), the same
/// placement for every implementation.
fn runtime(multi: bool) -> tokio::runtime::Runtime {
    if multi {
        let next = std::sync::atomic::AtomicUsize::new(1);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .on_thread_start(move || {
                pin(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            })
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }
}

/// Pins the calling thread by its role under `--pin`; else does nothing.
fn pin(role: usize) {
    placement::pin(OPTIONS.get().is_some_and(|o| o.pin), role);
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// `n` producers each sending `per` values `1..=per`; returns the time
/// and checks the consumer's count and sum.
fn check(got: (u64, u64), producers: u64, per: u64, who: &str) {
    let want = (producers * per, producers * per * (per + 1) / 2);
    assert_eq!(got, want, "{who}: delivered (count, sum)");
}

type Imp = (
    &'static str,
    fn(&tokio::runtime::Runtime, u64, u64) -> Duration,
);

/// Throughput: `producers` tasks, one consumer task.
fn throughput_imps() -> Vec<Imp> {
    vec![
        ("latchfree", latchfree_tp),
        ("tokio::mpsc", tokio_tp),
        ("thingbuf", thingbuf_tp),
        ("kanal", kanal_tp),
        ("async-channel", async_channel_tp),
        ("flume", flume_tp),
    ]
}

/// One peer's throughput run: `$chan` makes `(tx, rx)`, `$send` and
/// `$recv` are its async send and receive.
macro_rules! peer_tp {
    ($name:ident, $label:literal, $chan:expr, |$tx:ident, $v:ident| $send:expr, |$rx:ident| $recv:expr) => {
        fn $name(rt: &tokio::runtime::Runtime, producers: u64, per: u64) -> Duration {
            spawn_timed(rt, async move {
                #[allow(unused_mut)]
                let (tx, mut $rx) = $chan;
                let prods: Vec<_> = (0..producers)
                    .map(|_| {
                        let $tx = tx.clone();
                        tokio::spawn(async move {
                            for $v in 1..=per {
                                $send;
                            }
                        })
                    })
                    .collect();
                drop(tx);
                let (mut n, mut sum) = (0, 0);
                while let Some(v) = $recv {
                    n += 1;
                    sum += v;
                }
                for t in prods {
                    t.await.unwrap();
                }
                check((n, sum), producers, per, $label);
            })
        }
    };
}

peer_tp!(
    thingbuf_tp,
    "thingbuf",
    thingbuf::mpsc::channel::<u64>(CAP),
    |tx, i| tx.send(i).await.unwrap(),
    |rx| rx.recv().await
);
peer_tp!(
    kanal_tp,
    "kanal",
    kanal::bounded_async::<u64>(CAP),
    |tx, i| tx.send(i).await.unwrap(),
    |rx| rx.recv().await.ok()
);
peer_tp!(
    async_channel_tp,
    "async-channel",
    async_channel::bounded::<u64>(CAP),
    |tx, i| tx.send(i).await.unwrap(),
    |rx| rx.recv().await.ok()
);
peer_tp!(
    flume_tp,
    "flume",
    flume::bounded::<u64>(CAP),
    |tx, i| tx.send_async(i).await.unwrap(),
    |rx| rx.recv_async().await.ok()
);

fn spawn_timed<F>(rt: &tokio::runtime::Runtime, f: F) -> Duration
where
    F: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    rt.block_on(async move { tokio::spawn(f).await.unwrap() });
    start.elapsed()
}

fn latchfree_tp(rt: &tokio::runtime::Runtime, producers: u64, per: u64) -> Duration {
    spawn_timed(rt, async move {
        if producers == 1 {
            let ring: Arc<Ring<Heap<u64>, Single, AsyncWait<BusySpin, 2>>> = Arc::new(
                Ring::with_wait(Heap::with_capacity(CAP).unwrap(), AsyncWait::with(BusySpin)),
            );
            let mut g = Ring::graph(ring.clone()).unwrap();
            let mut c = g.consumer(&[]).unwrap();
            let mut p = g.single_producer().unwrap();
            let prod = tokio::spawn(async move {
                for i in 1..=per {
                    p.push_async(i).await.unwrap();
                }
            });
            let (mut n, mut sum) = (0, 0);
            loop {
                match c
                    .wait_async(|e, _, _| {
                        n += 1;
                        sum += e;
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(ConsumeError::Closed) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            prod.await.unwrap();
            check((n, sum), 1, per, "latchfree");
        } else {
            let ring: Arc<Ring<Heap<u64>, Multi, AsyncWait<BusySpin, 8>>> = Arc::new(
                Ring::with_wait(Heap::with_capacity(CAP).unwrap(), AsyncWait::with(BusySpin)),
            );
            let mut g = Ring::graph(ring.clone()).unwrap();
            let mut c = g.consumer(&[]).unwrap();
            let p = g.multi_producer().unwrap();
            let prods: Vec<_> = (0..producers)
                .map(|_| {
                    let mut p = p.clone();
                    tokio::spawn(async move {
                        for i in 1..=per {
                            p.push_async(i).await.unwrap();
                        }
                    })
                })
                .collect();
            drop(p);
            let (mut n, mut sum) = (0, 0);
            while c
                .wait_async(|e, _, _| {
                    n += 1;
                    sum += e;
                })
                .await
                .is_ok()
            {}
            for t in prods {
                t.await.unwrap();
            }
            check((n, sum), producers, per, "latchfree");
        }
    })
}

fn tokio_tp(rt: &tokio::runtime::Runtime, producers: u64, per: u64) -> Duration {
    spawn_timed(rt, async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAP);
        let prods: Vec<_> = (0..producers)
            .map(|_| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 1..=per {
                        tx.send(i).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let (mut n, mut sum) = (0, 0);
        while let Some(v) = rx.recv().await {
            n += 1;
            sum += v;
        }
        for t in prods {
            t.await.unwrap();
        }
        check((n, sum), producers, per, "tokio::mpsc");
    })
}

type PingImp = (
    &'static str,
    fn(&tokio::runtime::Runtime, usize) -> Vec<u64>,
);

fn pingpong_imps() -> Vec<PingImp> {
    vec![
        ("latchfree", latchfree_ping),
        ("tokio::mpsc", tokio_ping),
        ("thingbuf", thingbuf_ping),
        ("kanal", kanal_ping),
        ("async-channel", async_channel_ping),
        ("flume", flume_ping),
        (BARE, bare_ping),
    ]
}

/// Not a peer: the bare hand-off (`async_bare`), so the targets skip it
/// and the notes give each channel's distance to it.
const BARE: &str = "bare-waker";

/// One peer's ping-pong: two channels of capacity `PING_CAP` (`$chan`), an echo
/// task.
macro_rules! peer_ping {
    ($name:ident, $label:literal, $chan:expr, |$tx:ident, $v:ident| $send:expr, |$rx:ident| $recv:expr) => {
        fn $name(rt: &tokio::runtime::Runtime, n: usize) -> Vec<u64> {
            rt.block_on(async move {
                let (tx1, rx1) = $chan;
                let (tx2, rx2) = $chan;
                let echo = tokio::spawn(async move {
                    #[allow(unused_mut)]
                    let mut $rx = rx1;
                    let $tx = tx2;
                    while let Some($v) = $recv {
                        $send;
                    }
                });
                #[allow(unused_mut)]
                let mut $rx = rx2;
                let $tx = tx1;
                let mut rtts = Vec::with_capacity(n);
                for $v in 0..n as u64 {
                    let t = Instant::now();
                    $send;
                    assert_eq!($recv, Some($v), concat!($label, ": echoed value"));
                    rtts.push(t.elapsed().as_nanos() as u64);
                }
                drop($tx);
                echo.await.unwrap();
                rtts
            })
        }
    };
}

peer_ping!(
    thingbuf_ping,
    "thingbuf",
    thingbuf::mpsc::channel::<u64>(PING_CAP),
    |tx, v| tx.send(v).await.unwrap(),
    |rx| rx.recv().await
);
peer_ping!(
    kanal_ping,
    "kanal",
    kanal::bounded_async::<u64>(PING_CAP),
    |tx, v| tx.send(v).await.unwrap(),
    |rx| rx.recv().await.ok()
);
peer_ping!(
    async_channel_ping,
    "async-channel",
    async_channel::bounded::<u64>(PING_CAP),
    |tx, v| tx.send(v).await.unwrap(),
    |rx| rx.recv().await.ok()
);
peer_ping!(
    flume_ping,
    "flume",
    flume::bounded::<u64>(PING_CAP),
    |tx, v| tx.send_async(v).await.unwrap(),
    |rx| rx.recv_async().await.ok()
);

/// Round-trip times (ns) of `n` pings between two tasks.
fn latchfree_ping(rt: &tokio::runtime::Runtime, n: usize) -> Vec<u64> {
    type R = Ring<Heap<u64>, Single, AsyncWait<BusySpin, 2>>;
    let mk = || -> Arc<R> {
        Arc::new(Ring::with_wait(
            Heap::with_capacity(PING_CAP).unwrap(),
            AsyncWait::with(BusySpin),
        ))
    };
    let (there, back) = (mk(), mk());
    rt.block_on(async move {
        let mut g1 = Ring::graph(there.clone()).unwrap();
        let mut c1 = g1.consumer(&[]).unwrap();
        let mut p1 = g1.single_producer().unwrap();
        let mut g2 = Ring::graph(back.clone()).unwrap();
        let mut c2 = g2.consumer(&[]).unwrap();
        let mut p2 = g2.single_producer().unwrap();
        let echo = tokio::spawn(async move {
            loop {
                let mut got = None;
                match c1.wait_async(|e, _, _| got = Some(*e)).await {
                    Ok(_) => p2.push_async(got.unwrap()).await.unwrap(),
                    Err(_) => break,
                };
            }
        });
        let mut rtts = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let t = Instant::now();
            p1.push_async(i).await.unwrap();
            let mut got = None;
            c2.wait_async(|e, _, _| got = Some(*e)).await.unwrap();
            assert_eq!(got, Some(i), "latchfree: echoed value");
            rtts.push(t.elapsed().as_nanos() as u64);
        }
        drop(p1);
        echo.await.unwrap();
        rtts
    })
}

/// The bare hand-off: the same round trips over two [`Slot`]s.
fn bare_ping(rt: &tokio::runtime::Runtime, n: usize) -> Vec<u64> {
    rt.block_on(async move {
        let (there, back) = (Arc::new(Slot::new()), Arc::new(Slot::new()));
        let (there2, back2) = (there.clone(), back.clone());
        let echo = tokio::spawn(async move {
            for _ in 0..n {
                back2.send(there2.recv().await);
            }
        });
        let mut rtts = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let t = Instant::now();
            there.send(i);
            assert_eq!(back.recv().await, i, "bare-waker: echoed value");
            rtts.push(t.elapsed().as_nanos() as u64);
        }
        echo.await.unwrap();
        rtts
    })
}

fn tokio_ping(rt: &tokio::runtime::Runtime, n: usize) -> Vec<u64> {
    rt.block_on(async move {
        let (tx1, mut rx1) = tokio::sync::mpsc::channel::<u64>(PING_CAP);
        let (tx2, mut rx2) = tokio::sync::mpsc::channel::<u64>(PING_CAP);
        let echo = tokio::spawn(async move {
            while let Some(v) = rx1.recv().await {
                tx2.send(v).await.unwrap();
            }
        });
        let mut rtts = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let t = Instant::now();
            tx1.send(i).await.unwrap();
            assert_eq!(rx2.recv().await, Some(i), "tokio::mpsc: echoed value");
            rtts.push(t.elapsed().as_nanos() as u64);
        }
        drop(tx1);
        echo.await.unwrap();
        rtts
    })
}

fn p50(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

/// Async batcher, batches of 64: ns per item from 1 pusher task to an
/// async consumer of whole batches.
fn latchfree_batch(rt: &tokio::runtime::Runtime, per: u64) -> f64 {
    let (b, mut batches) = Batcher::builder()
        .max_items(64)
        .max_delay(Duration::from_millis(1))
        .queue_capacity(CAP)
        .build_stream()
        .unwrap();
    let start = Instant::now();
    let (n, sum) = rt.block_on(async move {
        let consumer = tokio::spawn(async move {
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(batch) = batches.next_batch().await {
                n += batch.len() as u64;
                sum += batch.iter().sum::<u64>();
            }
            (n, sum)
        });
        for i in 1..=per {
            b.push_async(i).await.unwrap();
        }
        b.close_async().await;
        consumer.await.unwrap()
    });
    let t = start.elapsed();
    check((n, sum), 1, per, "latchfree batcher");
    t.as_nanos() as f64 / per as f64
}

/// `futures-batch`'s `chunks_timeout(64, 1 ms)` over a tokio channel:
/// ns per item, 1 pusher task, the consumer of chunks in the block.
fn futures_batch(rt: &tokio::runtime::Runtime, per: u64) -> f64 {
    use futures_batch::ChunksTimeoutStreamExt;
    use futures_util::StreamExt;
    let start = Instant::now();
    let (n, sum) = rt.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<u64>(CAP);
        let consumer = tokio::spawn(async move {
            let items = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|v| (v, rx))
            });
            let mut chunks = std::pin::pin!(items.chunks_timeout(64, Duration::from_millis(1)));
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(batch) = chunks.next().await {
                n += batch.len() as u64;
                sum += batch.iter().sum::<u64>();
            }
            (n, sum)
        });
        for i in 1..=per {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        consumer.await.unwrap()
    });
    let t = start.elapsed();
    check((n, sum), 1, per, "futures-batch");
    t.as_nanos() as f64 / per as f64
}

/// The section's options, as the shootout's `main` passes them.
struct Options {
    rounds: usize,
    only: Vec<String>,
    pin: bool,
}

static OPTIONS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();

/// Takes the shootout's `--rounds`, `--only` (scenario name prefixes, such
/// as `pingpong_ct`; none: every scenario) and `--pin`.
pub fn configure(rounds: usize, only: &[String], pin: bool) {
    let _ = OPTIONS.set(Options {
        rounds: rounds.max(1),
        only: only.to_vec(),
        pin,
    });
}

/// Whether to run `scenario`: every one, unless `--only` names prefixes.
fn wanted(scenario: &str) -> bool {
    match OPTIONS.get() {
        Some(o) if !o.only.is_empty() => o.only.iter().any(|p| scenario.starts_with(p.as_str())),
        _ => true,
    }
}

/// Rounds per scenario: `--rounds`, else [`ROUNDS`].
fn rounds() -> usize {
    OPTIONS.get().map_or(ROUNDS, |o| o.rounds)
}

pub fn run(r: &mut Report) {
    let pinned = OPTIONS.get().is_some_and(|o| o.pin);
    r.note(&format!(
        "async: AsyncWait ring vs tokio::sync::mpsc, thingbuf, kanal, async-channel, flume; \
         async batcher vs futures-batch; {} (load average {})",
        if pinned {
            "main thread on the first core, workers on the next in turn"
        } else {
            "threads unpinned"
        },
        loadavg()
    ));
    if pinned {
        // On a thread of its own, so the shootout's main thread (and the
        // sections after this one) stay unpinned.
        std::thread::scope(|s| {
            s.spawn(|| {
                pin(0);
                measure(r);
            })
            .join()
            .expect("async section");
        });
    } else {
        measure(r);
    }
    targets(r);
    r.note(&format!("async: done (load average {})", loadavg()));
}

/// Every scenario of the section, on the calling thread.
fn measure(r: &mut Report) {
    let per = events();
    for (rt_name, multi) in [("mt2", true), ("ct", false)] {
        let rt = runtime(multi);
        for producers in [1u64, 3] {
            let scenario = format!("{}_{rt_name}", if producers == 1 { "spsc" } else { "3p1c" });
            if !wanted(&scenario) {
                continue;
            }
            let imps = throughput_imps();
            let mut samples = vec![Vec::new(); imps.len()];
            for _ in 0..rounds() {
                for (k, (_, f)) in imps.iter().enumerate() {
                    let t = f(&rt, producers, per / producers);
                    samples[k].push((per / producers * producers) as f64 / t.as_secs_f64());
                }
            }
            for ((name, _), s) in imps.iter().zip(&samples) {
                r.add_rounds(
                    "async",
                    &scenario,
                    name,
                    "events_per_sec",
                    s,
                    Better::Higher,
                );
            }
        }
        let scenario = format!("pingpong_{rt_name}");
        if wanted(&scenario) {
            let imps = pingpong_imps();
            let mut samples = vec![Vec::new(); imps.len()];
            for _ in 0..rounds() {
                for (k, (_, f)) in imps.iter().enumerate() {
                    samples[k].push(p50(f(&rt, trips())));
                }
            }
            for ((name, _), s) in imps.iter().zip(&samples) {
                r.add_rounds("async", &scenario, name, "rtt_ns_p50", s, Better::Lower);
            }
        }
        let scenario = format!("batch64_{rt_name}");
        if !wanted(&scenario) {
            continue;
        }
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds() {
            ours.push(latchfree_batch(&rt, per / 4));
            theirs.push(futures_batch(&rt, per / 4));
        }
        r.add_rounds(
            "async",
            &scenario,
            "latchfree",
            "ns_per_item",
            &ours,
            Better::Lower,
        );
        r.add_rounds(
            "async",
            &scenario,
            "futures-batch",
            "ns_per_item",
            &theirs,
            Better::Lower,
        );
    }
}

fn value(r: &Report, scenario: &str, imp: &str, metric: &str) -> Option<f64> {
    r.rows()
        .iter()
        .find(|row| {
            row.structure == "async"
                && row.scenario == scenario
                && row.imp == imp
                && row.metric == metric
        })
        .map(|row| row.value)
}

/// Prints issue 15's targets as met / MISSED (progress notes), on medians.
fn targets(r: &Report) {
    let eps = "events_per_sec";
    let rtt = "rtt_ns_p50";
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for rt in ["mt2", "ct"] {
        let spsc = format!("spsc_{rt}");
        if let (Some(ours), Some(tokio)) = (
            value(r, &spsc, "latchfree", eps),
            value(r, &spsc, "tokio::mpsc", eps),
        ) {
            let x = ours / tokio;
            r.note(&format!(
                "target {spsc} >= 1.5x tokio::mpsc: {x:.2}x (medians), {}",
                verdict(x >= 1.5)
            ));
        }
        let best = ["thingbuf", "kanal"]
            .iter()
            .filter_map(|p| value(r, &spsc, p, eps).map(|v| (*p, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(ours), Some((peer, v))) = (value(r, &spsc, "latchfree", eps), best) {
            let x = ours / v;
            r.note(&format!(
                "target {spsc} >= 1.0x best of thingbuf/kanal ({peer}): {x:.2}x (medians), {}",
                verdict(x >= 1.0)
            ));
        }
        let ping = format!("pingpong_{rt}");
        let best = pingpong_imps()
            .iter()
            .filter(|(n, _)| *n != "latchfree" && *n != BARE)
            .filter_map(|(n, _)| value(r, &ping, n, rtt).map(|v| (*n, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(ours), Some((peer, v))) = (value(r, &ping, "latchfree", rtt), best) {
            r.note(&format!(
                "target {ping} p50 <= best peer ({peer} {v:.0} ns): {ours:.0} ns (medians), {}",
                verdict(ours <= v)
            ));
            if let Some(bare) = value(r, &ping, BARE, rtt) {
                r.note(&format!(
                    "{ping} over the bare hand-off ({bare:.0} ns): latchfree {:.2}x, {peer} {:.2}x (medians)",
                    ours / bare,
                    v / bare
                ));
            }
        }
        let batch = format!("batch64_{rt}");
        if let (Some(ours), Some(theirs)) = (
            value(r, &batch, "latchfree", "ns_per_item"),
            value(r, &batch, "futures-batch", "ns_per_item"),
        ) {
            r.note(&format!(
                "target {batch} <= futures-batch ({theirs:.1} ns/item): {ours:.1} ns/item (medians), {}",
                verdict(ours <= theirs)
            ));
        }
    }
}
