//! Ring section of the shootout: `latchfree::ring` against the `disruptor`
//! crate, crossbeam's `ArrayQueue`, `rtrb`, `std::sync::mpsc::sync_channel`
//! and a physical floor, all measured in the same run. `1p1c` and
//! `pingpong` also have a `latchfree_spsc` row: `ring::Spsc`, the ring's
//! front for one producer and one consumer without a graph, measured as
//! `rtrb` is (`try_push`/`try_pop` in the same spin loop).
//!
//! The event is a plain `u64` for every implementation. Producers publish the
//! values `1..=n`; every consumer sums what it receives and the scenario
//! asserts that the sum (or, for ping-pong, each echoed value) is exactly
//! what was sent before its time is returned, so an implementation that loses
//! or duplicates an event fails loudly instead of looking fast.
//!
//! Waiting, on this 2-core machine:
//! - `1p1c*` and `pingpong` run two threads: everyone busy-spins with the
//!   CPU's spin-loop hint (latchfree `BusySpin`, disruptor
//!   `BusySpinWithSpinLoopHint`, peers on `core::hint::spin_loop`; a spin
//!   without the hint collapses when the two cores are far apart, see
//!   `BusySpin`); `sync_channel` always blocks.
//! - `3p1c`, `pipeline3` and `diamond` run four threads on two cores: every
//!   implementation yields at each failed check (`sched_yield`). latchfree
//!   uses `Yielding` (in `3p1c` the same loop with its yields counted); the
//!   queue peers yield at each failed push or pop; disruptor consumers use
//!   a `WaitStrategy` defined here that yields on every empty check (the
//!   crate ships only spin and sleep strategies), and since disruptor
//!   producers have no wait strategy at all (`publish` busy-loops on a full
//!   ring) the harness gives them `try_publish` plus the same yield loop.
//!   `3p1c` also reports, from its timed runs, the yields per 1000 events
//!   of the producers and of the consumer, and the events per batch of
//!   latchfree's consumer: with more threads than cores a yield that
//!   switches threads costs microseconds, so these counts explain its
//!   throughput.
//! - Queues have no multicast: `pipeline3` and `diamond` use one queue per
//!   edge with forwarding threads (the diamond's C joins its two inputs).
//!
//! Rounds: every implementation of a scenario runs once per round, in the
//! same order, for `--rounds` rounds (default 5); each row is the median
//! over the rounds with its min–max, so load from other processes hits all
//! implementations alike and shows up as a wide range, not as a winner.
//!
//! Pinning (`--pin`): each thread of a scenario has a role (0 = the thread
//! driving the scenario, usually the producer; 1 = the first consumer or
//! the echo thread; then the other threads in a fixed order) and role `k`
//! runs on core `k mod cores`, the same for every implementation
//! (disruptor's own consumer threads through its `pin_at_core`). Without
//! `--pin` the scheduler places threads.
//!
//! Latency rows: ping-pong round trips (`rtt_ns_*`) and one-way latency
//! (`oneway_ns_*`: the producer stamps each event with the monotonic clock,
//! the consumer subtracts it on receipt; one event every 2 µs so the ring
//! is empty each time; the clock reads, about 20 ns here, are in every
//! row alike, and in the bare-atomic floor). The burst rows follow
//! disruptor's own benchmark: a burst of 1, 10 or 100 events published
//! at once (batch publish where the peer has one), the producer waits until
//! the consumer has stored the last value to a shared sink, then pauses
//! 10 µs; the mean ns per event excludes the pauses.

// A std program: the crate's no_std lints (std_instead_of_core/alloc) guard
// the library, not its benchmarks.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::cell::Cell;
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use disruptor::{Polling, Producer as _};
use hdrhistogram::Histogram;
use latchfree::ring::{
    BusySpin, ConsumeError, Heap, Multi, Poll, Ring, Single, TimedOut, WaitStrategy, Yielding,
};

use crate::placement;
use crate::report::{Better, Report};

/// Slots in every throughput ring and queue.
pub const CAP: usize = 4096;
/// Slots in the ping-pong rings (only one event is ever in flight).
pub const PP_CAP: usize = 64;
/// Producers in `3p1c`.
pub const PRODUCERS: u64 = 3;

/// The sum of `1..=n`: what every consumer must have seen.
pub fn expected(n: u64) -> u64 {
    n * (n + 1) / 2
}

// ---------------------------------------------------------------------------
// Options: pinning and rounds.

/// The ring section's options (`--pin`, `--rounds N`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Pin every thread to a core by its role.
    pub pin: bool,
    /// Interleaved rounds per scenario.
    pub rounds: usize,
    /// Run only the scenarios whose name starts with one of these.
    pub only: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pin: false,
            rounds: 5,
            only: Vec::new(),
        }
    }
}

static PIN: AtomicBool = AtomicBool::new(false);
static ROUNDS: AtomicUsize = AtomicUsize::new(5);
static ONLY: OnceLock<Vec<String>> = OnceLock::new();

/// Whether scenario `name` was selected (`--only`; all by default).
fn selected(name: &str) -> bool {
    ONLY.get().map_or(true, |o| {
        o.is_empty() || o.iter().any(|p| name.starts_with(p.as_str()))
    })
}

/// Sets the ring section's options (before `run`).
pub fn configure(o: Options) {
    PIN.store(o.pin, Ordering::Relaxed);
    ROUNDS.store(o.rounds.max(1), Ordering::Relaxed);
    let _ = ONLY.set(o.only);
}

fn pinned() -> bool {
    PIN.load(Ordering::Relaxed)
}

fn rounds() -> usize {
    ROUNDS.load(Ordering::Relaxed)
}

/// Pins the calling thread by its role (under `--pin`; else does nothing).
/// disruptor's consumer threads, which the crate spawns itself, call it
/// from their state initialiser (it runs on that thread before any event).
fn pin(role: usize) {
    placement::pin(pinned(), role);
}

fn check(imp: &str, what: &str, got: u64, n: u64) {
    assert_eq!(
        got,
        expected(n),
        "{imp}: {what} summed {got}, expected {} for {n} events",
        expected(n)
    );
}

// ---------------------------------------------------------------------------
// Waiting helpers for the peers.

/// How a queue peer waits when its queue is full or empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `spin_loop` forever (two threads on two cores).
    Spin,
    /// `yield_now` from the first failed check (more threads than cores):
    /// the same policy as latchfree's `Yielding`, so neither side gains
    /// from a different wait.
    Yield,
}

// ---------------------------------------------------------------------------
// Yield counts (the 3p1c diagnosis): every `sched_yield` a waiter makes is
// counted in its thread, and each thread adds its count to its role's total
// when it ends, so the count adds no shared write to the waits it measures.

thread_local! {
    static YIELDS: Cell<u64> = const { Cell::new(0) };
}

/// Yields made by producer threads and by consumer threads, since the last
/// `take_yields`.
static YIELDS_BY_ROLE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Which total a thread's yields go to.
#[derive(Clone, Copy)]
enum Role {
    Producer = 0,
    Consumer = 1,
}

/// `yield_now`, counted for the calling thread.
#[inline]
fn counted_yield() {
    YIELDS.with(|c| c.set(c.get() + 1));
    thread::yield_now();
}

/// Adds the calling thread's yields to `role`'s total (call as it ends).
fn flush_yields(role: Role) {
    let n = YIELDS.with(|c| c.replace(0));
    YIELDS_BY_ROLE[role as usize].fetch_add(n, Ordering::Relaxed);
}

/// The totals `(producers, consumers)` since the last call, reset.
fn take_yields() -> (u64, u64) {
    (
        YIELDS_BY_ROLE[0].swap(0, Ordering::Relaxed),
        YIELDS_BY_ROLE[1].swap(0, Ordering::Relaxed),
    )
}

/// latchfree's `Yielding` (a yield at each failed check), its yields
/// counted: the one strategy of the rows that report yields.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountedYielding;

impl WaitStrategy for CountedYielding {
    fn wait_until<F: FnMut() -> bool>(&self, mut ready: F) -> Result<(), TimedOut> {
        while !ready() {
            counted_yield();
        }
        Ok(())
    }
}

struct Backoff {
    wait: Wait,
}

impl Backoff {
    #[inline]
    fn new(wait: Wait) -> Self {
        Self { wait }
    }

    #[inline]
    fn snooze(&mut self) {
        match self.wait {
            Wait::Spin => spin_loop(),
            Wait::Yield => counted_yield(),
        }
    }
}

/// A disruptor consumer wait that yields the core on every empty check.
#[derive(Clone, Copy)]
pub struct DisruptorYield;

impl disruptor::wait_strategies::WaitStrategy for DisruptorYield {
    fn wait_for(&self, _sequence: disruptor::Sequence) {
        counted_yield();
    }
}

/// A disruptor handler's state: sums events and hands the sum out when the
/// consumer thread ends (so the hot path carries no extra store).
struct Sink {
    sum: u64,
    out: Arc<AtomicU64>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        // The consumer thread ends here (its yields count for 3p1c).
        flush_yields(Role::Consumer);
        self.out.store(self.sum, Ordering::Release);
    }
}

/// The state initialiser of a disruptor consumer thread of role `role`.
fn sink(out: &Arc<AtomicU64>, role: usize) -> impl FnOnce() -> Sink + Send + 'static {
    let out = Arc::clone(out);
    move || {
        pin(role);
        Sink { sum: 0, out }
    }
}

fn sink_add(s: &mut Sink, e: &u64, _seq: disruptor::Sequence, _eob: bool) {
    s.sum += *e;
}

/// Publishes `v`, spinning (`Wait::Spin`: the crate's own `publish`) or
/// spinning then yielding while the ring is full.
#[inline]
fn d_publish<P: disruptor::Producer<u64>>(p: &mut P, v: u64, wait: Wait) {
    match wait {
        Wait::Spin => p.publish(|e| *e = v),
        Wait::Yield => {
            let mut b = Backoff::new(wait);
            while p.try_publish(|e| *e = v).is_err() {
                b.snooze();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Queue peers behind one small interface.

/// A bounded FIFO channel between two threads.
pub trait Chan {
    /// The `impl` column of its rows.
    const NAME: &'static str;
    /// Sending half.
    type Tx: Send;
    /// Receiving half.
    type Rx: Send;
    /// A channel of `cap` slots.
    fn pair(cap: usize) -> (Self::Tx, Self::Rx);
    /// Another sending half, if the channel takes several producers.
    fn clone_tx(tx: &Self::Tx) -> Option<Self::Tx>;
    /// Sends `v`, waiting with `wait` while full.
    fn send(tx: &mut Self::Tx, v: u64, wait: Wait);
    /// Receives one value, waiting with `wait` while empty.
    fn recv(rx: &mut Self::Rx, wait: Wait) -> u64;
}

/// latchfree's `ring::Spsc` (the ring's front without a graph), `N` slots:
/// `try_push`/`try_pop` waited on as every queue peer is. The queue is
/// leaked (its handles borrow it for `'static`): a few pages per run.
pub struct LatchfreeSpsc<const N: usize>;

impl<const N: usize> Chan for LatchfreeSpsc<N> {
    const NAME: &'static str = "latchfree_spsc";
    type Tx = latchfree::ring::SpscProducer<'static, u64, N>;
    type Rx = latchfree::ring::SpscConsumer<'static, u64, N>;

    fn pair(cap: usize) -> (Self::Tx, Self::Rx) {
        assert_eq!(cap, N, "latchfree_spsc: capacity is the type's");
        let queue: &'static latchfree::ring::Spsc<u64, N> =
            Box::leak(Box::new(latchfree::ring::Spsc::new()));
        queue.split().expect("a fresh queue splits")
    }

    fn clone_tx(_tx: &Self::Tx) -> Option<Self::Tx> {
        None
    }

    #[inline]
    fn send(tx: &mut Self::Tx, v: u64, wait: Wait) {
        let mut b = Backoff::new(wait);
        while tx.try_push(v).is_err() {
            b.snooze();
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, wait: Wait) -> u64 {
        let mut b = Backoff::new(wait);
        loop {
            if let Ok(v) = rx.try_pop() {
                return v;
            }
            b.snooze();
        }
    }
}

/// `rtrb::RingBuffer` (wait-free SPSC).
pub struct Rtrb;

impl Chan for Rtrb {
    const NAME: &'static str = "rtrb";
    type Tx = rtrb::Producer<u64>;
    type Rx = rtrb::Consumer<u64>;

    fn pair(cap: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(cap)
    }

    fn clone_tx(_tx: &Self::Tx) -> Option<Self::Tx> {
        None
    }

    #[inline]
    fn send(tx: &mut Self::Tx, v: u64, wait: Wait) {
        let mut b = Backoff::new(wait);
        while tx.push(v).is_err() {
            b.snooze();
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, wait: Wait) -> u64 {
        let mut b = Backoff::new(wait);
        loop {
            if let Ok(v) = rx.pop() {
                return v;
            }
            b.snooze();
        }
    }
}

/// `crossbeam_queue::ArrayQueue` (Vyukov bounded MPMC).
pub struct CrossbeamArrayQueue;

impl Chan for CrossbeamArrayQueue {
    const NAME: &'static str = "crossbeam_arrayqueue";
    type Tx = Arc<ArrayQueue<u64>>;
    type Rx = Arc<ArrayQueue<u64>>;

    fn pair(cap: usize) -> (Self::Tx, Self::Rx) {
        let q = Arc::new(ArrayQueue::new(cap));
        (Arc::clone(&q), q)
    }

    fn clone_tx(tx: &Self::Tx) -> Option<Self::Tx> {
        Some(Arc::clone(tx))
    }

    #[inline]
    fn send(tx: &mut Self::Tx, v: u64, wait: Wait) {
        let mut b = Backoff::new(wait);
        while tx.push(v).is_err() {
            b.snooze();
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, wait: Wait) -> u64 {
        let mut b = Backoff::new(wait);
        loop {
            if let Some(v) = rx.pop() {
                return v;
            }
            b.snooze();
        }
    }
}

/// `std::sync::mpsc::sync_channel` (bounded, blocking; ignores `Wait`).
pub struct StdSyncChannel;

impl Chan for StdSyncChannel {
    const NAME: &'static str = "std_sync_channel";
    type Tx = mpsc::SyncSender<u64>;
    type Rx = mpsc::Receiver<u64>;

    fn pair(cap: usize) -> (Self::Tx, Self::Rx) {
        mpsc::sync_channel(cap)
    }

    fn clone_tx(tx: &Self::Tx) -> Option<Self::Tx> {
        Some(tx.clone())
    }

    #[inline]
    fn send(tx: &mut Self::Tx, v: u64, _wait: Wait) {
        tx.send(v).expect("receiver alive");
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, _wait: Wait) -> u64 {
        rx.recv().expect("sender alive")
    }
}

// ---------------------------------------------------------------------------
// latchfree.

/// Drains a latchfree consumer until the ring closes; returns the sum.
macro_rules! lf_drain {
    ($consumer:expr) => {{
        let mut c = $consumer;
        let mut sum = 0u64;
        loop {
            match c.wait(|e: &u64, _, _| sum += *e) {
                Ok(_) => {}
                Err(ConsumeError::Closed) => break,
                Err(e) => panic!("latchfree consumer: {e}"),
            }
        }
        sum
    }};
}

/// Drains a latchfree consumer with a hand-rolled `poll` spin loop (what
/// `wait` with `BusySpin` must not be slower than); returns the sum.
macro_rules! lf_drain_poll {
    ($consumer:expr) => {{
        let mut c = $consumer;
        let mut sum = 0u64;
        loop {
            match c.poll(|e: &u64, _, _| sum += *e) {
                Poll::Processed(_) => {}
                // As a user would write it (and as every peer's loop here
                // spins): with the CPU's spin-loop hint.
                Poll::Idle | Poll::Unfinished | Poll::Gated => spin_loop(),
                Poll::Closed => break,
                Poll::Halted => panic!("latchfree consumer: halted"),
            }
        }
        sum
    }};
}

/// 1P1C, busy-spin; `batch == 1` uses `publish`, else `publish_batch`.
/// The consumer drains with `wait`, or with a `poll` spin loop if `poll`.
pub fn lf_1p1c(n: u64, batch: usize, poll: bool) -> Duration {
    assert_eq!(n % batch as u64, 0);
    let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let c = g.consumer(&[]).expect("gate");
    let mut p = g.single_producer().unwrap();
    thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            if poll {
                lf_drain_poll!(c)
            } else {
                lf_drain!(c)
            }
        });
        let t = Instant::now();
        if batch == 1 {
            for v in 1..=n {
                p.publish(|slot| *slot = v).expect("open");
            }
        } else {
            let mut v = 1;
            while v <= n {
                p.publish_batch(batch, |claimed| {
                    for (i, slot) in claimed.into_iter().enumerate() {
                        *slot = v + i as u64;
                    }
                })
                .expect("open");
                v += batch as u64;
            }
        }
        drop(p);
        let sum = h.join().expect("consumer");
        let el = t.elapsed();
        check("latchfree", "consumer", sum, n);
        el
    })
}

/// 3P1C on a `Multi` ring with `Yielding` (counted: `CountedYielding`).
/// Returns the time and how many batches the consumer's `wait` handed out.
pub fn lf_3p1c(n: u64) -> (Duration, u64) {
    assert_eq!(n % PRODUCERS, 0);
    let per = n / PRODUCERS;
    let ring = Ring::<Heap<u64>, Multi, CountedYielding>::with_wait(
        Heap::builder(CAP).gates(1).build().expect("capacity"),
        CountedYielding,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let mut c = g.consumer(&[]).expect("gate");
    let p = g.multi_producer().unwrap();
    let go = Barrier::new(PRODUCERS as usize + 1);
    let go = &go;
    thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let (mut sum, mut batches) = (0u64, 0u64);
            loop {
                match c.wait(|e: &u64, _, _| sum += *e) {
                    Ok(_) => batches += 1,
                    Err(ConsumeError::Closed) => break,
                    Err(e) => panic!("latchfree consumer: {e}"),
                }
            }
            flush_yields(Role::Consumer);
            (sum, batches)
        });
        for j in 0..PRODUCERS {
            let mut p = p.clone();
            s.spawn(move || {
                pin(2 + j as usize);
                go.wait();
                for v in j * per + 1..=(j + 1) * per {
                    p.publish(|slot| *slot = v).expect("open");
                }
                flush_yields(Role::Producer);
            });
        }
        drop(p);
        go.wait();
        let t = Instant::now();
        let (sum, batches) = h.join().expect("consumer");
        let el = t.elapsed();
        check("latchfree", "consumer", sum, n);
        (el, batches)
    })
}

/// 1P -> A -> B -> C, `Yielding`.
pub fn lf_pipeline3(n: u64) -> Duration {
    let ring = Ring::<Heap<u64>, Single, Yielding>::with_wait(
        Heap::builder(CAP).gates(3).build().expect("capacity"),
        Yielding,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let a = g.consumer(&[]).expect("gate");
    let b = g.consumer(&[a.node()]).expect("gate");
    let c = g.consumer(&[b.node()]).expect("gate");
    let mut p = g.single_producer().unwrap();
    thread::scope(|s| {
        let hs = [
            s.spawn(move || {
                pin(1);
                lf_drain!(a)
            }),
            s.spawn(move || {
                pin(2);
                lf_drain!(b)
            }),
            s.spawn(move || {
                pin(3);
                lf_drain!(c)
            }),
        ];
        let t = Instant::now();
        for v in 1..=n {
            p.publish(|slot| *slot = v).expect("open");
        }
        drop(p);
        let sums = hs.map(|h| h.join().expect("consumer"));
        let el = t.elapsed();
        for (sum, name) in sums.into_iter().zip(["A", "B", "C"]) {
            check("latchfree", name, sum, n);
        }
        el
    })
}

/// 1P -> (A, B) -> C, `Yielding`.
pub fn lf_diamond(n: u64) -> Duration {
    let ring = Ring::<Heap<u64>, Single, Yielding>::with_wait(
        Heap::builder(CAP).gates(3).build().expect("capacity"),
        Yielding,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let a = g.consumer(&[]).expect("gate");
    let b = g.consumer(&[]).expect("gate");
    let c = g.consumer(&[a.node(), b.node()]).expect("gate");
    let mut p = g.single_producer().unwrap();
    thread::scope(|s| {
        let hs = [
            s.spawn(move || {
                pin(1);
                lf_drain!(a)
            }),
            s.spawn(move || {
                pin(2);
                lf_drain!(b)
            }),
            s.spawn(move || {
                pin(3);
                lf_drain!(c)
            }),
        ];
        let t = Instant::now();
        for v in 1..=n {
            p.publish(|slot| *slot = v).expect("open");
        }
        drop(p);
        let sums = hs.map(|h| h.join().expect("consumer"));
        let el = t.elapsed();
        for (sum, name) in sums.into_iter().zip(["A", "B", "C"]) {
            check("latchfree", name, sum, n);
        }
        el
    })
}

/// Ping-pong over two single-producer `BusySpin` rings; records each round
/// trip after `warmup` into `hist` (nanoseconds).
pub fn lf_pingpong(rounds: u64, warmup: u64, hist: &mut Histogram<u64>) {
    let ping = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(PP_CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let pong = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(PP_CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let mut g1 = Ring::graph(&ping).expect("graph");
    let mut ping_rx = g1.consumer(&[]).expect("gate");
    let mut ping_tx = g1.single_producer().unwrap();
    let mut g2 = Ring::graph(&pong).expect("graph");
    let mut pong_rx = g2.consumer(&[]).expect("gate");
    let mut pong_tx = g2.single_producer().unwrap();
    thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            loop {
                let mut v = 0;
                match ping_rx.wait(|e, _, _| v = *e) {
                    Ok(1) => {
                        pong_tx.publish(|slot| *slot = v).expect("open");
                    }
                    Ok(k) => panic!("latchfree ping-pong: {k} events in flight"),
                    Err(ConsumeError::Closed) => break,
                    Err(e) => panic!("latchfree ping-pong: {e}"),
                }
            }
        });
        for i in 1..=warmup + rounds {
            let t = Instant::now();
            ping_tx.publish(|slot| *slot = i).expect("open");
            let mut got = 0;
            let k = pong_rx.wait(|e, _, _| got = *e).expect("echo");
            let rtt = t.elapsed();
            assert!(
                k == 1 && got == i,
                "latchfree ping-pong: sent {i}, got {got}"
            );
            if i > warmup {
                hist.saturating_record(rtt.as_nanos() as u64);
            }
        }
        drop(ping_tx);
    });
}

// ---------------------------------------------------------------------------
// disruptor.

/// 1P1C, `BusySpin`; `batch == 1` uses `publish`, else `batch_publish`.
pub fn d_1p1c(n: u64, batch: usize) -> Duration {
    assert_eq!(n % batch as u64, 0);
    let out = Arc::new(AtomicU64::new(0));
    let mut p = disruptor::build_single_producer(CAP, || 0u64, disruptor::BusySpinWithSpinLoopHint)
        .handle_events_and_state_with(sink_add, sink(&out, 1))
        .build();
    let t = Instant::now();
    if batch == 1 {
        for v in 1..=n {
            p.publish(|e| *e = v);
        }
    } else {
        let mut v = 1;
        while v <= n {
            p.batch_publish(batch, |iter| {
                for (i, e) in iter.enumerate() {
                    *e = v + i as u64;
                }
            });
            v += batch as u64;
        }
    }
    drop(p); // joins the consumer thread after it has seen every event
    let el = t.elapsed();
    check("disruptor", "consumer", out.load(Ordering::Acquire), n);
    el
}

/// 3P1C on a multi-producer disruptor; yielding consumer, yielding producers.
pub fn d_3p1c(n: u64) -> Duration {
    assert_eq!(n % PRODUCERS, 0);
    let per = n / PRODUCERS;
    let out = Arc::new(AtomicU64::new(0));
    let p = disruptor::build_multi_producer(CAP, || 0u64, DisruptorYield)
        .handle_events_and_state_with(sink_add, sink(&out, 1))
        .build();
    let go = Barrier::new(PRODUCERS as usize + 1);
    let go = &go;
    let el = thread::scope(|s| {
        for j in 0..PRODUCERS {
            let mut p = p.clone();
            s.spawn(move || {
                pin(2 + j as usize);
                go.wait();
                for v in j * per + 1..=(j + 1) * per {
                    d_publish(&mut p, v, Wait::Yield);
                }
                flush_yields(Role::Producer);
                // The last handle dropped joins the consumer.
            });
        }
        drop(p);
        go.wait();
        Instant::now()
    })
    .elapsed();
    check("disruptor", "consumer", out.load(Ordering::Acquire), n);
    el
}

/// 1P -> A -> B -> C with yielding waits.
pub fn d_pipeline3(n: u64) -> Duration {
    let outs: [Arc<AtomicU64>; 3] = Default::default();
    let mut p = disruptor::build_single_producer(CAP, || 0u64, DisruptorYield)
        .handle_events_and_state_with(sink_add, sink(&outs[0], 1))
        .and_then()
        .handle_events_and_state_with(sink_add, sink(&outs[1], 2))
        .and_then()
        .handle_events_and_state_with(sink_add, sink(&outs[2], 3))
        .build();
    let t = Instant::now();
    for v in 1..=n {
        d_publish(&mut p, v, Wait::Yield);
    }
    drop(p);
    let el = t.elapsed();
    for (o, name) in outs.iter().zip(["A", "B", "C"]) {
        check("disruptor", name, o.load(Ordering::Acquire), n);
    }
    el
}

/// 1P -> (A, B) -> C with yielding waits.
pub fn d_diamond(n: u64) -> Duration {
    let outs: [Arc<AtomicU64>; 3] = Default::default();
    let mut p = disruptor::build_single_producer(CAP, || 0u64, DisruptorYield)
        .handle_events_and_state_with(sink_add, sink(&outs[0], 1))
        .handle_events_and_state_with(sink_add, sink(&outs[1], 2))
        .and_then()
        .handle_events_and_state_with(sink_add, sink(&outs[2], 3))
        .build();
    let t = Instant::now();
    for v in 1..=n {
        d_publish(&mut p, v, Wait::Yield);
    }
    drop(p);
    let el = t.elapsed();
    for (o, name) in outs.iter().zip(["A", "B", "C"]) {
        check("disruptor", name, o.load(Ordering::Acquire), n);
    }
    el
}

/// Ping-pong over two single-producer `BusySpin` disruptors read with event
/// pollers on threads of our own (as latchfree's consumers are).
pub fn d_pingpong(rounds: u64, warmup: u64, hist: &mut Histogram<u64>) {
    let (mut ping_rx, b) =
        disruptor::build_single_producer(PP_CAP, || 0u64, disruptor::BusySpinWithSpinLoopHint)
            .new_event_poller();
    let mut ping_tx = b.build();
    let (mut pong_rx, b) =
        disruptor::build_single_producer(PP_CAP, || 0u64, disruptor::BusySpinWithSpinLoopHint)
            .new_event_poller();
    let mut pong_tx = b.build();
    thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            loop {
                match ping_rx.poll() {
                    Ok(mut events) => {
                        let mut v = 0;
                        let mut k = 0;
                        for e in &mut events {
                            v = *e;
                            k += 1;
                        }
                        drop(events);
                        assert_eq!(k, 1, "disruptor ping-pong: {k} events in flight");
                        pong_tx.publish(|e| *e = v);
                    }
                    Err(Polling::NoEvents) => spin_loop(),
                    Err(Polling::Shutdown) => break,
                }
            }
        });
        for i in 1..=warmup + rounds {
            let t = Instant::now();
            ping_tx.publish(|e| *e = i);
            let got = loop {
                match pong_rx.poll() {
                    Ok(mut events) => {
                        let mut v = 0;
                        for e in &mut events {
                            v = *e;
                        }
                        break v;
                    }
                    Err(Polling::NoEvents) => spin_loop(),
                    Err(Polling::Shutdown) => panic!("disruptor ping-pong: pong closed"),
                }
            };
            let rtt = t.elapsed();
            assert_eq!(got, i, "disruptor ping-pong: sent {i}, got {got}");
            if i > warmup {
                hist.saturating_record(rtt.as_nanos() as u64);
            }
        }
        drop(ping_tx);
    });
}

// ---------------------------------------------------------------------------
// Queue peers.

/// 1P1C over one queue.
pub fn q_1p1c<C: Chan>(n: u64, wait: Wait) -> Duration {
    let (mut tx, mut rx) = C::pair(CAP);
    thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            for _ in 0..n {
                sum += C::recv(&mut rx, wait);
            }
            sum
        });
        let t = Instant::now();
        for v in 1..=n {
            C::send(&mut tx, v, wait);
        }
        let sum = h.join().expect("consumer");
        let el = t.elapsed();
        check(C::NAME, "consumer", sum, n);
        el
    })
}

/// 3P1C over one multi-producer queue; `None` if `C` is single-producer.
pub fn q_3p1c<C: Chan>(n: u64, wait: Wait) -> Option<Duration> {
    assert_eq!(n % PRODUCERS, 0);
    let per = n / PRODUCERS;
    let (tx, mut rx) = C::pair(CAP);
    let mut txs = Vec::new();
    for _ in 0..PRODUCERS {
        txs.push(C::clone_tx(&tx)?);
    }
    drop(tx);
    let go = Barrier::new(PRODUCERS as usize + 1);
    let go = &go;
    Some(thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            for _ in 0..n {
                sum += C::recv(&mut rx, wait);
            }
            flush_yields(Role::Consumer);
            sum
        });
        for (j, mut tx) in (0..PRODUCERS).zip(txs) {
            s.spawn(move || {
                pin(2 + j as usize);
                go.wait();
                for v in j * per + 1..=(j + 1) * per {
                    C::send(&mut tx, v, wait);
                }
                flush_yields(Role::Producer);
            });
        }
        go.wait();
        let t = Instant::now();
        let sum = h.join().expect("consumer");
        let el = t.elapsed();
        check(C::NAME, "consumer", sum, n);
        el
    }))
}

/// 1P -> A -> B -> C over three queues; A and B forward what they sum.
pub fn q_pipeline3<C: Chan>(n: u64, wait: Wait) -> Duration {
    let (mut tx1, mut rx1) = C::pair(CAP);
    let (mut tx2, mut rx2) = C::pair(CAP);
    let (mut tx3, mut rx3) = C::pair(CAP);
    thread::scope(|s| {
        let a = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            for _ in 0..n {
                let v = C::recv(&mut rx1, wait);
                sum += v;
                C::send(&mut tx2, v, wait);
            }
            sum
        });
        let b = s.spawn(move || {
            pin(2);
            let mut sum = 0u64;
            for _ in 0..n {
                let v = C::recv(&mut rx2, wait);
                sum += v;
                C::send(&mut tx3, v, wait);
            }
            sum
        });
        let c = s.spawn(move || {
            pin(3);
            let mut sum = 0u64;
            for _ in 0..n {
                sum += C::recv(&mut rx3, wait);
            }
            sum
        });
        let t = Instant::now();
        for v in 1..=n {
            C::send(&mut tx1, v, wait);
        }
        let sums = [a, b, c].map(|h| h.join().expect("stage"));
        let el = t.elapsed();
        for (sum, name) in sums.into_iter().zip(["A", "B", "C"]) {
            check(C::NAME, name, sum, n);
        }
        el
    })
}

/// 1P -> (A, B) -> C over four queues: the producer sends each event to A
/// and to B, each forwards it to C, which joins the two streams.
pub fn q_diamond<C: Chan>(n: u64, wait: Wait) -> Duration {
    let (mut tx_a, mut rx_a) = C::pair(CAP);
    let (mut tx_b, mut rx_b) = C::pair(CAP);
    let (mut tx_ac, mut rx_ac) = C::pair(CAP);
    let (mut tx_bc, mut rx_bc) = C::pair(CAP);
    thread::scope(|s| {
        let a = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            for _ in 0..n {
                let v = C::recv(&mut rx_a, wait);
                sum += v;
                C::send(&mut tx_ac, v, wait);
            }
            sum
        });
        let b = s.spawn(move || {
            pin(2);
            let mut sum = 0u64;
            for _ in 0..n {
                let v = C::recv(&mut rx_b, wait);
                sum += v;
                C::send(&mut tx_bc, v, wait);
            }
            sum
        });
        let c = s.spawn(move || {
            pin(3);
            let mut sum = 0u64;
            for _ in 0..n {
                let x = C::recv(&mut rx_ac, wait);
                let y = C::recv(&mut rx_bc, wait);
                assert_eq!(x, y, "{}: diamond join out of step", C::NAME);
                sum += x;
            }
            sum
        });
        let t = Instant::now();
        for v in 1..=n {
            C::send(&mut tx_a, v, wait);
            C::send(&mut tx_b, v, wait);
        }
        let sums = [a, b, c].map(|h| h.join().expect("stage"));
        let el = t.elapsed();
        for (sum, name) in sums.into_iter().zip(["A", "B", "C"]) {
            check(C::NAME, name, sum, n);
        }
        el
    })
}

/// Ping-pong over two queues.
pub fn q_pingpong<C: Chan>(rounds: u64, warmup: u64, hist: &mut Histogram<u64>) {
    let (mut ping_tx, mut ping_rx) = C::pair(PP_CAP);
    let (mut pong_tx, mut pong_rx) = C::pair(PP_CAP);
    thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            for _ in 0..warmup + rounds {
                let v = C::recv(&mut ping_rx, Wait::Spin);
                C::send(&mut pong_tx, v, Wait::Spin);
            }
        });
        for i in 1..=warmup + rounds {
            let t = Instant::now();
            C::send(&mut ping_tx, i, Wait::Spin);
            let got = C::recv(&mut pong_rx, Wait::Spin);
            let rtt = t.elapsed();
            assert_eq!(got, i, "{} ping-pong: sent {i}, got {got}", C::NAME);
            if i > warmup {
                hist.saturating_record(rtt.as_nanos() as u64);
            }
        }
    });
}

/// 1P1C with rtrb's chunk API (its batch publish and batch read).
pub fn rtrb_1p1c_batch(n: u64, batch: usize) -> Duration {
    assert_eq!(n % batch as u64, 0);
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            let mut left = n as usize;
            while left > 0 {
                let k = rx.slots();
                if k == 0 {
                    spin_loop();
                    continue;
                }
                let chunk = rx.read_chunk(k).expect("slots() were available");
                let (a, b) = chunk.as_slices();
                sum += a.iter().sum::<u64>() + b.iter().sum::<u64>();
                chunk.commit_all();
                left -= k;
            }
            sum
        });
        let t = Instant::now();
        let mut v = 1;
        while v <= n {
            let chunk = loop {
                match tx.write_chunk_uninit(batch) {
                    Ok(c) => break c,
                    Err(_) => spin_loop(),
                }
            };
            let written = chunk.fill_from_iter(v..v + batch as u64);
            debug_assert_eq!(written, batch);
            v += batch as u64;
        }
        let sum = h.join().expect("consumer");
        let el = t.elapsed();
        check("rtrb", "consumer", sum, n);
        el
    })
}

// ---------------------------------------------------------------------------
// Floors.

/// Throughput floor: one thread writes the events into a ring-sized slot
/// array, then reads them back and sums them; no synchronisation at all.
pub fn floor_tput(n: u64) -> Duration {
    let mut slots = vec![0u64; CAP];
    let t = Instant::now();
    let mut sum = 0u64;
    let mut v = 1;
    while v <= n {
        let k = CAP.min((n - v + 1) as usize);
        for (i, s) in slots[..k].iter_mut().enumerate() {
            *s = v + i as u64;
        }
        // Keep the writes and the reads as real memory traffic.
        let slots = black_box(&mut slots);
        sum += slots[..k].iter().sum::<u64>();
        v += k as u64;
    }
    let el = t.elapsed();
    check("floor", "reader", black_box(sum), n);
    el
}

/// Latency floor: two atomics on separate cache lines; each thread spins
/// until it sees the other's latest value.
pub fn floor_pingpong(rounds: u64, warmup: u64, hist: &mut Histogram<u64>) {
    let ping = CachePadded::new(AtomicU64::new(0));
    let pong = CachePadded::new(AtomicU64::new(0));
    let (ping, pong) = (&ping, &pong);
    let total = warmup + rounds;
    thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            let mut last = 0;
            while last < total {
                let v = ping.load(Ordering::Acquire);
                if v == last {
                    spin_loop();
                    continue;
                }
                pong.store(v, Ordering::Release);
                last = v;
            }
        });
        for i in 1..=total {
            let t = Instant::now();
            ping.store(i, Ordering::Release);
            while pong.load(Ordering::Acquire) != i {
                spin_loop();
            }
            let rtt = t.elapsed();
            if i > warmup {
                hist.saturating_record(rtt.as_nanos() as u64);
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Bursts (disruptor's own benchmark shape).

/// Bursts per round of the burst benchmark.
pub const BURSTS: u64 = 2_000;
/// Pause between bursts (the consumer goes back to waiting).
pub const BURST_PAUSE: Duration = Duration::from_micros(10);
/// Pause between one-way latency samples (the ring is empty each time).
pub const ONEWAY_PAUSE: Duration = Duration::from_micros(2);
/// One-way latency samples per round (after `ONEWAY_WARMUP`).
pub const ONEWAY_SAMPLES: u64 = 20_000;
/// Samples before recording starts.
pub const ONEWAY_WARMUP: u64 = 2_000;

/// Spins for `d` (a busy pause keeps the core, as a latency-sensitive
/// service would).
fn spin_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        spin_loop();
    }
}

/// Drives `BURSTS` bursts of `burst` events: `publish(first_value)` sends
/// one burst, the consumer stores each value it sees to `sink`; the
/// producer waits for the burst's last value there, then pauses. Returns the
/// mean ns per event over the bursts (pauses excluded).
fn drive_bursts(burst: u64, sink: &AtomicU64, mut publish: impl FnMut(u64)) -> f64 {
    let mut busy = Duration::ZERO;
    for k in 0..BURSTS {
        let first = k * burst + 1;
        let last = first + burst - 1;
        let t = Instant::now();
        publish(first);
        while sink.load(Ordering::Acquire) != last {
            spin_loop();
        }
        busy += t.elapsed();
        spin_for(BURST_PAUSE);
    }
    busy.as_nanos() as f64 / (BURSTS * burst) as f64
}

/// latchfree: `publish` (burst 1) or `publish_batch`; consumer in `wait`.
pub fn lf_burst(burst: u64) -> f64 {
    let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let mut c = g.consumer(&[]).expect("gate");
    let mut p = g.single_producer().unwrap();
    let sink = CachePadded::new(AtomicU64::new(0));
    let sink = &sink;
    thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            loop {
                match c.wait(|e: &u64, _, _| {
                    sum += *e;
                    sink.store(*e, Ordering::Release);
                }) {
                    Ok(_) => {}
                    Err(ConsumeError::Closed) => break sum,
                    Err(e) => panic!("latchfree burst: {e}"),
                }
            }
        });
        let ns = drive_bursts(burst, sink, |first| {
            if burst == 1 {
                p.publish(|slot| *slot = first).expect("open");
            } else {
                p.publish_batch(burst as usize, |claimed| {
                    for (i, slot) in claimed.into_iter().enumerate() {
                        *slot = first + i as u64;
                    }
                })
                .expect("open");
            }
        });
        drop(p);
        check(
            "latchfree",
            "burst",
            h.join().expect("consumer"),
            BURSTS * burst,
        );
        ns
    })
}

/// disruptor: `publish` (burst 1) or `batch_publish`; `BusySpin` consumer.
pub fn d_burst(burst: u64) -> f64 {
    let last = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let out = Arc::new(AtomicU64::new(0));
    let to_sink = Arc::clone(&last);
    let mut p = disruptor::build_single_producer(CAP, || 0u64, disruptor::BusySpinWithSpinLoopHint)
        .handle_events_and_state_with(
            move |s: &mut Sink, e: &u64, _seq, _eob| {
                s.sum += *e;
                to_sink.store(*e, Ordering::Release);
            },
            sink(&out, 1),
        )
        .build();
    let ns = drive_bursts(burst, &last, |first| {
        if burst == 1 {
            p.publish(|e| *e = first);
        } else {
            p.batch_publish(burst as usize, |iter| {
                for (i, e) in iter.enumerate() {
                    *e = first + i as u64;
                }
            });
        }
    });
    drop(p);
    check(
        "disruptor",
        "burst",
        out.load(Ordering::Acquire),
        BURSTS * burst,
    );
    ns
}

/// rtrb: `push` (burst 1) or a write chunk; consumer spins on `pop`.
pub fn rtrb_burst(burst: u64) -> f64 {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    let sink = CachePadded::new(AtomicU64::new(0));
    let sink = &sink;
    let total = BURSTS * burst;
    thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            for _ in 0..total {
                let v = loop {
                    match rx.pop() {
                        Ok(v) => break v,
                        Err(_) => spin_loop(),
                    }
                };
                sum += v;
                sink.store(v, Ordering::Release);
            }
            sum
        });
        let ns = drive_bursts(burst, sink, |first| {
            if burst == 1 {
                while tx.push(first).is_err() {
                    spin_loop();
                }
            } else {
                let chunk = loop {
                    match tx.write_chunk_uninit(burst as usize) {
                        Ok(c) => break c,
                        Err(_) => spin_loop(),
                    }
                };
                chunk.fill_from_iter(first..first + burst);
            }
        });
        check("rtrb", "burst", h.join().expect("consumer"), total);
        ns
    })
}

/// Floor: the producer stores each value to one atomic, the consumer
/// copies what it sees to the sink.
pub fn floor_burst(burst: u64) -> f64 {
    let line = CachePadded::new(AtomicU64::new(0));
    let sink = CachePadded::new(AtomicU64::new(0));
    let (line, sink) = (&line, &sink);
    let total = BURSTS * burst;
    thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            let mut seen = 0;
            while seen < total {
                let v = line.load(Ordering::Acquire);
                if v == seen {
                    spin_loop();
                    continue;
                }
                sink.store(v, Ordering::Release);
                seen = v;
            }
        });
        drive_bursts(burst, sink, |first| {
            for v in first..first + burst {
                line.store(v, Ordering::Release);
            }
        })
    })
}

// ---------------------------------------------------------------------------
// One-way latency.

/// Nanoseconds since `base`: the stamp an event carries.
#[inline]
fn stamp(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram")
}

/// Sends `ONEWAY_WARMUP + ONEWAY_SAMPLES` stamped events, one per
/// `ONEWAY_PAUSE`.
fn drive_oneway(base: Instant, mut send: impl FnMut(u64)) {
    for _ in 0..ONEWAY_WARMUP + ONEWAY_SAMPLES {
        send(stamp(base).max(1));
        spin_for(ONEWAY_PAUSE);
    }
}

/// Records one received stamp (after the warm-up).
#[inline]
fn record(hist: &mut Histogram<u64>, seen: &mut u64, base: Instant, sent: u64) {
    let now = stamp(base);
    *seen += 1;
    if *seen > ONEWAY_WARMUP {
        hist.saturating_record(now.saturating_sub(sent));
    }
}

/// latchfree: `publish`, consumer in `wait` (`BusySpin`).
pub fn lf_oneway(hist: &mut Histogram<u64>) {
    let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let mut c = g.consumer(&[]).expect("gate");
    let mut p = g.single_producer().unwrap();
    let base = Instant::now();
    let (h, seen) = thread::scope(|s| {
        let rx = s.spawn(move || {
            pin(1);
            let (mut h, mut seen) = (new_hist(), 0u64);
            loop {
                match c.wait(|e: &u64, _, _| record(&mut h, &mut seen, base, *e)) {
                    Ok(_) => {}
                    Err(ConsumeError::Closed) => break (h, seen),
                    Err(e) => panic!("latchfree one-way: {e}"),
                }
            }
        });
        drive_oneway(base, |v| {
            p.publish(|slot| *slot = v).expect("open");
        });
        drop(p);
        rx.join().expect("consumer")
    });
    assert_eq!(seen, ONEWAY_WARMUP + ONEWAY_SAMPLES, "latchfree one-way");
    hist.add(h).expect("histogram");
}

/// Where disruptor's one-way consumer leaves its histogram and count.
type OnewayOut = Arc<Mutex<Option<(Histogram<u64>, u64)>>>;

/// The state of disruptor's one-way consumer, handed out when it ends.
struct OnewaySink {
    hist: Histogram<u64>,
    seen: u64,
    base: Instant,
    out: OnewayOut,
}

impl Drop for OnewaySink {
    fn drop(&mut self) {
        let h = std::mem::replace(&mut self.hist, new_hist());
        *self.out.lock().expect("sink") = Some((h, self.seen));
    }
}

/// disruptor: `publish`, `BusySpin` consumer thread.
pub fn d_oneway(hist: &mut Histogram<u64>) {
    let base = Instant::now();
    let out: OnewayOut = Arc::new(Mutex::new(None));
    let state = {
        let out = Arc::clone(&out);
        move || {
            pin(1);
            OnewaySink {
                hist: new_hist(),
                seen: 0,
                base,
                out,
            }
        }
    };
    let mut p = disruptor::build_single_producer(CAP, || 0u64, disruptor::BusySpinWithSpinLoopHint)
        .handle_events_and_state_with(
            |s: &mut OnewaySink, e: &u64, _seq, _eob| {
                record(&mut s.hist, &mut s.seen, s.base, *e);
            },
            state,
        )
        .build();
    drive_oneway(base, |v| p.publish(|e| *e = v));
    drop(p); // joins the consumer
    let (h, seen) = out.lock().expect("sink").take().expect("consumer ended");
    assert_eq!(seen, ONEWAY_WARMUP + ONEWAY_SAMPLES, "disruptor one-way");
    hist.add(h).expect("histogram");
}

/// rtrb: `push`, consumer spins on `pop`.
pub fn rtrb_oneway(hist: &mut Histogram<u64>) {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    let base = Instant::now();
    let total = ONEWAY_WARMUP + ONEWAY_SAMPLES;
    let h = thread::scope(|s| {
        let c = s.spawn(move || {
            pin(1);
            let (mut h, mut seen) = (new_hist(), 0u64);
            while seen < total {
                match rx.pop() {
                    Ok(v) => record(&mut h, &mut seen, base, v),
                    Err(_) => spin_loop(),
                }
            }
            h
        });
        drive_oneway(base, |v| {
            while tx.push(v).is_err() {
                spin_loop();
            }
        });
        c.join().expect("consumer")
    });
    hist.add(h).expect("histogram");
}

/// Floor: one atomic; the consumer spins until it changes. The line holds
/// one stamp, so a consumer descheduled for longer than a pause misses
/// one: it stops at the end marker, not at a count (counting would hang).
pub fn floor_oneway(hist: &mut Histogram<u64>) {
    const END: u64 = u64::MAX;
    let line = CachePadded::new(AtomicU64::new(0));
    let line = &line;
    let base = Instant::now();
    let h = thread::scope(|s| {
        let c = s.spawn(move || {
            pin(1);
            let (mut h, mut seen, mut last) = (new_hist(), 0u64, 0u64);
            loop {
                let v = line.load(Ordering::Acquire);
                if v == END {
                    break;
                }
                if v == last {
                    spin_loop();
                    continue;
                }
                last = v;
                record(&mut h, &mut seen, base, v);
            }
            h
        });
        drive_oneway(base, |v| line.store(v, Ordering::Release));
        line.store(END, Ordering::Release);
        c.join().expect("consumer")
    });
    hist.add(h).expect("histogram");
}

// ---------------------------------------------------------------------------
// The section.

/// Events per throughput run: 40 ms at 120 M events/s. A quarter of that
/// (a 10 ms window at the fast rates) let one interrupt or one change of
/// the VM's core-to-core latency decide a round.
pub const N: u64 = 4_800_000;
/// Events per run for `std_sync_channel` (blocking, far slower).
pub const N_STD: u64 = 150_000;
/// Round trips recorded per ping-pong round (after `PP_WARMUP`).
pub const PP_ROUNDS: u64 = 50_000;
/// Round trips before recording starts.
pub const PP_WARMUP: u64 = 5_000;
/// Round trips per round for `std_sync_channel` (a futex wake each way).
pub const PP_ROUNDS_STD: u64 = 10_000;

/// The control row: latchfree's own case run again, last in each round,
/// so latchfree's ratio to it shows the run's resolution (1.00x would be
/// perfect; any other ratio is noise, drift or an order effect).
const CONTROL: &str = "control_latchfree";

type Case<'a> = (&'static str, u64, Box<dyn FnMut() -> Duration + 'a>);

fn case<'a>(imp: &'static str, n: u64, f: impl FnMut() -> Duration + 'a) -> Case<'a> {
    (imp, n, Box::new(f))
}

/// Runs every case once per round, round-robin, and reports each one's
/// median rate with its range.
fn throughput(r: &mut Report, scenario: &str, mut cases: Vec<Case<'_>>) {
    if !selected(scenario) {
        return;
    }
    let mut rates: Vec<Vec<f64>> = cases.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds() {
        for (v, (_, n, f)) in rates.iter_mut().zip(cases.iter_mut()) {
            v.push(*n as f64 / f().as_secs_f64());
        }
    }
    for (v, (imp, _, _)) in rates.into_iter().zip(cases) {
        r.add_rounds("ring", scenario, imp, "events_per_sec", &v, Better::Higher);
    }
}

/// The `3p1c` rows: throughput, implementations round-robin as in
/// `throughput`, plus what explains it where threads outnumber cores: the
/// yields per 1000 events of the producers and of the consumer (every
/// implementation yields at its first failed check), and the events per
/// batch latchfree's consumer takes. The counts come from the timed runs
/// (a thread-local increment per yield, added up as each thread ends).
fn three_p1c(r: &mut Report) {
    const SCENARIO: &str = "3p1c";
    if !selected(SCENARIO) {
        return;
    }
    let batches = Cell::new(0u64);
    let mut cases: Vec<Case<'_>> = vec![
        case("latchfree", N, || {
            let (el, b) = lf_3p1c(N);
            batches.set(b);
            el
        }),
        case("disruptor", N, || d_3p1c(N)),
        case(CrossbeamArrayQueue::NAME, N, || {
            q_3p1c::<CrossbeamArrayQueue>(N, Wait::Yield).expect("MPMC")
        }),
        case(StdSyncChannel::NAME, N_STD, || {
            q_3p1c::<StdSyncChannel>(N_STD, Wait::Yield).expect("MPSC")
        }),
        case("floor", N, || floor_tput(N)),
    ];
    let mut rates: Vec<Vec<f64>> = cases.iter().map(|_| Vec::new()).collect();
    let mut yields: Vec<[Vec<f64>; 2]> = cases.iter().map(|_| Default::default()).collect();
    let mut per_batch = Vec::new();
    for _ in 0..rounds() {
        for ((v, y), (imp, n, f)) in rates.iter_mut().zip(&mut yields).zip(cases.iter_mut()) {
            // Counts left by other scenarios' threads are not this run's.
            take_yields();
            v.push(*n as f64 / f().as_secs_f64());
            let (p, c) = take_yields();
            let per_k = |k: u64| k as f64 * 1000.0 / *n as f64;
            y[0].push(per_k(p));
            y[1].push(per_k(c));
            if *imp == "latchfree" {
                per_batch.push(N as f64 / batches.get().max(1) as f64);
            }
        }
    }
    for ((v, y), (imp, _, _)) in rates.into_iter().zip(yields).zip(cases) {
        r.add_rounds("ring", SCENARIO, imp, "events_per_sec", &v, Better::Higher);
        // The floor does not wait; `sync_channel` blocks instead of yielding.
        if imp != "floor" && imp != StdSyncChannel::NAME {
            r.add_rounds(
                "ring",
                SCENARIO,
                imp,
                "prod_yields_per_1k",
                &y[0],
                Better::Lower,
            );
            r.add_rounds(
                "ring",
                SCENARIO,
                imp,
                "cons_yields_per_1k",
                &y[1],
                Better::Lower,
            );
        }
    }
    r.add_rounds(
        "ring",
        SCENARIO,
        "latchfree",
        "events_per_batch",
        &per_batch,
        Better::Higher,
    );
}

type Burst<'a> = (&'static str, Box<dyn FnMut(u64) -> f64 + 'a>);

/// Burst sizes of the burst benchmark.
pub const BURST_SIZES: [u64; 3] = [1, 10, 100];

/// Runs the burst benchmark per burst size, implementations round-robin.
fn bursts(r: &mut Report, mut cases: Vec<Burst<'_>>) {
    for burst in BURST_SIZES {
        if !selected(&format!("burst{burst}")) {
            continue;
        }
        let mut ns: Vec<Vec<f64>> = cases.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds() {
            for (v, (_, f)) in ns.iter_mut().zip(cases.iter_mut()) {
                v.push(f(burst));
            }
        }
        let scenario = format!("burst{burst}");
        for (v, (imp, _)) in ns.into_iter().zip(cases.iter()) {
            r.add_rounds("ring", &scenario, imp, "ns_per_event", &v, Better::Lower);
        }
    }
}

type Latency<'a> = (&'static str, Box<dyn FnMut(&mut Histogram<u64>) + 'a>);

fn lat<'a>(imp: &'static str, f: impl FnMut(&mut Histogram<u64>) + 'a) -> Latency<'a> {
    (imp, Box::new(f))
}

/// Runs every latency case once per round, round-robin; reports the median
/// over rounds of each percentile, with its range.
fn latency(r: &mut Report, scenario: &str, prefix: &str, mut cases: Vec<Latency<'_>>) {
    if !selected(scenario) {
        return;
    }
    const QS: [(&str, f64); 3] = [("p50", 0.50), ("p99", 0.99), ("p999", 0.999)];
    let mut per: Vec<[Vec<f64>; 3]> = cases.iter().map(|_| Default::default()).collect();
    for _ in 0..rounds() {
        for (v, (_, f)) in per.iter_mut().zip(cases.iter_mut()) {
            let mut h = new_hist();
            f(&mut h);
            for (slot, (_, q)) in v.iter_mut().zip(QS) {
                slot.push(h.value_at_quantile(q) as f64);
            }
        }
    }
    for (v, (imp, _)) in per.into_iter().zip(cases) {
        for (samples, (name, _)) in v.iter().zip(QS) {
            let metric: &'static str = match (prefix, name) {
                ("rtt", "p50") => "rtt_ns_p50",
                ("rtt", "p99") => "rtt_ns_p99",
                ("rtt", _) => "rtt_ns_p999",
                (_, "p50") => "oneway_ns_p50",
                (_, "p99") => "oneway_ns_p99",
                _ => "oneway_ns_p999",
            };
            r.add_rounds("ring", scenario, imp, metric, samples, Better::Lower);
        }
    }
}

fn value(r: &Report, scenario: &str, imp: &str, metric: &str) -> Option<f64> {
    r.rows()
        .iter()
        .find(|row| row.scenario == scenario && row.imp == imp && row.metric == metric)
        .map(|row| row.value)
}

/// Prints issue 10's targets as met / missed (progress notes), on medians.
fn targets(r: &Report) {
    let eps = "events_per_sec";
    // (target, scenario, latchfree's row, peer's row, metric, wanted ratio)
    let checks = [
        (
            "1p1c >= 1.1x disruptor",
            "1p1c",
            "latchfree",
            "disruptor",
            eps,
            1.1,
        ),
        ("1p1c >= 1.0x rtrb", "1p1c", "latchfree", "rtrb", eps, 1.0),
        (
            "1p1c wait >= 0.9x poll spin",
            "1p1c",
            "latchfree",
            "latchfree_poll",
            eps,
            0.9,
        ),
        (
            "1p1c_batch10 >= 1.0x disruptor",
            "1p1c_batch10",
            "latchfree",
            "disruptor",
            eps,
            1.0,
        ),
        (
            "1p1c_batch100 >= 1.0x disruptor",
            "1p1c_batch100",
            "latchfree",
            "disruptor",
            eps,
            1.0,
        ),
        (
            "pipeline3 >= 1.0x disruptor",
            "pipeline3",
            "latchfree",
            "disruptor",
            eps,
            1.0,
        ),
        (
            "diamond >= 1.0x disruptor",
            "diamond",
            "latchfree",
            "disruptor",
            eps,
            1.0,
        ),
        (
            "3p1c >= 1.0x crossbeam ArrayQueue",
            "3p1c",
            "latchfree",
            "crossbeam_arrayqueue",
            eps,
            1.0,
        ),
        // Latency: ratio peer / latchfree, so >= 1.0 means no higher.
        (
            "pingpong p50 <= disruptor",
            "pingpong",
            "disruptor",
            "latchfree",
            "rtt_ns_p50",
            1.0,
        ),
        (
            "pingpong p50 <= rtrb",
            "pingpong",
            "rtrb",
            "latchfree",
            "rtt_ns_p50",
            1.0,
        ),
        (
            "pingpong p99 <= disruptor",
            "pingpong",
            "disruptor",
            "latchfree",
            "rtt_ns_p99",
            1.0,
        ),
        (
            "pingpong p99 <= rtrb",
            "pingpong",
            "rtrb",
            "latchfree",
            "rtt_ns_p99",
            1.0,
        ),
    ];
    for (what, scenario, num, den, metric, want) in checks {
        if let (Some(a), Some(b)) = (
            value(r, scenario, num, metric),
            value(r, scenario, den, metric),
        ) {
            let ratio = a / b;
            let verdict = if ratio >= want { "met" } else { "MISSED" };
            r.note(&format!("target {what}: {ratio:.2}x (medians), {verdict}"));
        }
    }
}

/// The ring section. Under `--pin` it runs on a thread of its own pinned
/// as role 0, so the main thread (and later sections) stay unpinned.
pub fn run(r: &mut Report) {
    if pinned() {
        thread::scope(|s| {
            s.spawn(|| {
                pin(0);
                run_pinned_or_not(r);
            })
            .join()
            .expect("ring section");
        });
    } else {
        run_pinned_or_not(r);
    }
}

fn run_pinned_or_not(r: &mut Report) {
    let cores = placement::cores().len();
    let rounds = rounds();
    let placement = if pinned() {
        "threads pinned by role (role k on core k mod cores)"
    } else {
        "threads unpinned"
    };
    r.note(&format!(
        "ring: u64 events, capacity {CAP}, {cores} cores, {placement}; median and min-max of \
         {rounds} round-robin rounds. 1p1c*/burst/oneway/pingpong: busy-spin (2 threads). \
         3p1c/pipeline3/diamond: yielding (4 threads), disruptor producers use try_publish + \
         spin-then-yield."
    ));

    r.note(&format!(
        "ring: 1p1c (busy-spin; sync_channel blocks; latchfree_poll: consumer spins on poll). \
         {CONTROL} (here, in the batch rows and in pingpong) is the latchfree row run again, \
         last in each round: its ratio is what this run can resolve, two measurements of one \
         implementation"
    ));
    throughput(
        r,
        "1p1c",
        vec![
            case("latchfree", N, || lf_1p1c(N, 1, false)),
            case("latchfree_poll", N, || lf_1p1c(N, 1, true)),
            case(LatchfreeSpsc::<CAP>::NAME, N, || {
                q_1p1c::<LatchfreeSpsc<CAP>>(N, Wait::Spin)
            }),
            case("disruptor", N, || d_1p1c(N, 1)),
            case(CrossbeamArrayQueue::NAME, N, || {
                q_1p1c::<CrossbeamArrayQueue>(N, Wait::Spin)
            }),
            case(Rtrb::NAME, N, || q_1p1c::<Rtrb>(N, Wait::Spin)),
            case(StdSyncChannel::NAME, N_STD, || {
                q_1p1c::<StdSyncChannel>(N_STD, Wait::Spin)
            }),
            case("floor", N, || floor_tput(N)),
            case(CONTROL, N, || lf_1p1c(N, 1, false)),
        ],
    );

    for batch in [10, 100] {
        let scenario = format!("1p1c_batch{batch}");
        r.note(&format!(
            "ring: {scenario} (busy-spin; ArrayQueue and sync_channel have no batch API)"
        ));
        throughput(
            r,
            &scenario,
            vec![
                case("latchfree", N, move || lf_1p1c(N, batch, false)),
                case("disruptor", N, move || d_1p1c(N, batch)),
                case(Rtrb::NAME, N, move || rtrb_1p1c_batch(N, batch)),
                case("floor", N, || floor_tput(N)),
                case(CONTROL, N, move || lf_1p1c(N, batch, false)),
            ],
        );
    }

    r.note("ring: burst1/10/100 (disruptor's burst benchmark: mean ns per event, 10 µs pauses)");
    bursts(
        r,
        vec![
            ("latchfree", Box::new(lf_burst)),
            ("disruptor", Box::new(d_burst)),
            (Rtrb::NAME, Box::new(rtrb_burst)),
            ("floor", Box::new(floor_burst)),
        ],
    );

    r.note("ring: oneway (busy-spin; one stamped event every 2 µs)");
    latency(
        r,
        "oneway",
        "oneway",
        vec![
            lat("latchfree", lf_oneway),
            lat("disruptor", d_oneway),
            lat(Rtrb::NAME, rtrb_oneway),
            lat("floor", floor_oneway),
        ],
    );

    r.note("ring: pingpong (busy-spin; sync_channel blocks)");
    latency(
        r,
        "pingpong",
        "rtt",
        vec![
            lat("latchfree", |h| lf_pingpong(PP_ROUNDS, PP_WARMUP, h)),
            lat(LatchfreeSpsc::<PP_CAP>::NAME, |h| {
                q_pingpong::<LatchfreeSpsc<PP_CAP>>(PP_ROUNDS, PP_WARMUP, h)
            }),
            lat("disruptor", |h| d_pingpong(PP_ROUNDS, PP_WARMUP, h)),
            lat(CrossbeamArrayQueue::NAME, |h| {
                q_pingpong::<CrossbeamArrayQueue>(PP_ROUNDS, PP_WARMUP, h)
            }),
            lat(Rtrb::NAME, |h| q_pingpong::<Rtrb>(PP_ROUNDS, PP_WARMUP, h)),
            lat(StdSyncChannel::NAME, |h| {
                q_pingpong::<StdSyncChannel>(PP_ROUNDS_STD, PP_WARMUP / 10, h)
            }),
            lat("floor", |h| floor_pingpong(PP_ROUNDS, PP_WARMUP, h)),
            lat(CONTROL, |h| lf_pingpong(PP_ROUNDS, PP_WARMUP, h)),
        ],
    );

    r.note(
        "ring: 3p1c (yielding; rtrb is SPSC only; yields per 1000 events by producers and by \
         the consumer, and latchfree's events per consumer batch, counted in the timed runs)",
    );
    three_p1c(r);

    r.note("ring: pipeline3 (yielding; queues chained with forwarding threads)");
    throughput(
        r,
        "pipeline3",
        vec![
            case("latchfree", N, || lf_pipeline3(N)),
            case("disruptor", N, || d_pipeline3(N)),
            case(CrossbeamArrayQueue::NAME, N, || {
                q_pipeline3::<CrossbeamArrayQueue>(N, Wait::Yield)
            }),
            case(Rtrb::NAME, N, || q_pipeline3::<Rtrb>(N, Wait::Yield)),
            case(StdSyncChannel::NAME, N_STD, || {
                q_pipeline3::<StdSyncChannel>(N_STD, Wait::Yield)
            }),
            case("floor", N, || floor_tput(N)),
        ],
    );

    r.note("ring: diamond (yielding; queues: one per edge, C joins A's and B's streams)");
    throughput(
        r,
        "diamond",
        vec![
            case("latchfree", N, || lf_diamond(N)),
            case("disruptor", N, || d_diamond(N)),
            case(CrossbeamArrayQueue::NAME, N, || {
                q_diamond::<CrossbeamArrayQueue>(N, Wait::Yield)
            }),
            case(Rtrb::NAME, N, || q_diamond::<Rtrb>(N, Wait::Yield)),
            case(StdSyncChannel::NAME, N_STD, || {
                q_diamond::<StdSyncChannel>(N_STD, Wait::Yield)
            }),
            case("floor", N, || floor_tput(N)),
        ],
    );

    targets(r);
}
