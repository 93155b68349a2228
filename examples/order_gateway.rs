//! An order gateway in miniature: every latchfree structure in one service.
//!
//! ```text
//!                              ┌─ journaller ─┐   buffers (BufferPool) → Batcher → file
//! producers ─→ multi-producer ─┤              ├─→ matcher ─→ fills → ThreadPool (positions)
//!  (N threads)      ring       └─ risk check ─┘      │
//!                                 (sharded map)      └─ resting orders expire on a Wheel
//! ```
//!
//! - Producers publish orders (id, account, side, price, qty, publish time)
//!   into a multi-producer `ring` at a target rate.
//! - The journaller serialises orders into buffers from a `buffer::BufferPool`
//!   (one buffer per ring batch) and hands them to a `batch::Batcher`, whose
//!   flusher appends them to a journal file in the temp dir.
//! - In parallel, the risk checker reserves each order's notional against its
//!   account's limit in a `map::HashMap` shared with the matcher, and marks the
//!   order accepted or rejected (a field of the event, read downstream).
//! - The matcher runs after both (a diamond: nothing is matched before it has
//!   been handed to the journal). It keeps a price-level book; it fills crossing orders, rests
//!   the rest with an expiry timer on a `wheel::Wheel`, and releases account
//!   exposure as orders leave the book. Fill notifications go to a
//!   `pool::ThreadPool`, which books positions in a second map.
//! - In front of risk, a per-account `limiter::Keyed` (GCRA per account,
//!   idle accounts swept every second) rejects orders above an account's
//!   rate before they reserve any exposure.
//! - The journal sink sits behind a `breaker::Breaker`. A fault is injected
//!   for one second (every write fails): the breaker opens after three
//!   failed writes, probes once per cool-down, and closes when the sink is
//!   back. Batches that could not be written wait in the sink and are
//!   written, in order, once it closes, so the journal still holds every
//!   order exactly once.
//! - The ring's consumers wait with `Blocking` (asleep until a publish wakes
//!   them): there are more threads here than a small machine has cores.
//!
//! At the end it prints throughput and publish → decision latency, re-reads the
//! journal and checks that every order was journalled once and reached exactly
//! one outcome (filled, rejected, expired, or cancelled at shutdown), that all
//! exposure was released and that positions net to zero. It exits 1 if not.
//! Ctrl-C stops the producers early; the gateway still drains and checks.
//!
//! ```text
//! cargo run --release --example order_gateway -- [--duration SECS] [--producers N] [--rate ORDERS_PER_SEC]
//! ```
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::{BTreeMap, HashMap as StdHashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{mpsc, Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use latchfree::batch::Batcher;
use latchfree::breaker::{Breaker, Config as BreakerConfig, Rejected, State};
use latchfree::buffer::{Buffer, BufferPool};
use latchfree::limiter::{Keyed, Quota};
use latchfree::map::{Computed, HashMap, Op};
use latchfree::pool::ThreadPool;
use latchfree::ring::{Blocking, Heap, Multi, MultiProducer, Ring};
use latchfree::ring::{Disruptor, EventHandler};
use latchfree::wheel::{Growable, TimerKey, Wheel, WheelConfig};

const ACCOUNTS: u32 = 512;
const MID: u32 = 10_000; // price in ticks
const RESTING_TTL_NS: u64 = 20_000_000; // resting orders expire after 20 ms
/// Orders per second per account, and the burst an idle account may send.
const ACCOUNT_RATE: u32 = 1_000;
const ACCOUNT_BURST: u32 = 50;
/// One account in eight orders is from this busy one (an algo), which the
/// per-account limiter holds to `ACCOUNT_RATE`.
const HOT_ACCOUNT: u32 = 7;
const PENDING: u8 = 0; // verdicts
const ACCEPTED: u8 = 1;
const REJECTED: u8 = 2;

/// One ring slot. `verdict` is the risk checker's answer, read by the matcher.
#[derive(Default)]
struct Order {
    id: u64,
    account: u32,
    buy: bool,
    price: u32,
    qty: u32,
    published_ns: u64,
    verdict: AtomicU8,
}

type OrderRing = Ring<Heap<Order>, Multi, Blocking>;

#[derive(Clone)]
struct Account {
    limit: u64,
    exposure: u64,
}

/// Buffers live as long as the program, so they can travel through the batcher.
static BUFFERS: LazyLock<BufferPool> = LazyLock::new(BufferPool::new);

/// A tag that makes (count, sum of tags) a good fingerprint of a set of ids.
fn tag(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A set of ids, by count and fingerprint.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Tally {
    count: u64,
    sum: u64,
}

impl Tally {
    fn add(&mut self, id: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(tag(id));
    }
    fn merge(&mut self, o: Tally) {
        self.count += o.count;
        self.sum = self.sum.wrapping_add(o.sum);
    }
}

struct Config {
    duration: Duration,
    producers: usize,
    rate: u64,
}

fn parse_args() -> Config {
    let mut cfg = Config {
        duration: Duration::from_secs(10),
        producers: 3,
        rate: 200_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> f64 {
            let v = args.next().and_then(|v| v.parse::<f64>().ok());
            v.filter(|v| *v >= 0.0).unwrap_or_else(|| {
                eprintln!("order_gateway: {name} needs a non-negative number");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--duration" => cfg.duration = Duration::from_secs_f64(value("--duration")),
            "--producers" => cfg.producers = (value("--producers") as usize).clamp(1, 64),
            "--rate" => cfg.rate = value("--rate") as u64,
            _ => {
                eprintln!("usage: order_gateway [--duration SECS] [--producers N] [--rate ORDERS_PER_SEC (0 = flat out)]");
                std::process::exit(2)
            }
        }
    }
    cfg
}

/// Publishes orders until `stop`, paced to `rate` (0: as fast as the ring
/// takes them). Returns the ids it published.
fn produce(
    p: u64,
    mut ring: MultiProducer<Arc<OrderRing>>,
    rate: f64,
    epoch: Instant,
    stop: &AtomicBool,
    published: &AtomicU64,
) -> Tally {
    let mut rng = tag(p + 1);
    let mut next = || {
        rng = tag(rng);
        rng
    };
    let (start, mut sent, mut tally) = (Instant::now(), 0u64, Tally::default());
    while !stop.load(Relaxed) {
        let due = if rate == 0.0 {
            sent + 64
        } else {
            (start.elapsed().as_secs_f64() * rate) as u64
        };
        if due <= sent {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let burst = (due - sent).min(256);
        for _ in 0..burst {
            let (id, r) = (p << 48 | sent, next());
            ring.publish(|o| {
                o.id = id;
                o.account = if (r >> 56) & 7 == 0 {
                    HOT_ACCOUNT
                } else {
                    (r % ACCOUNTS as u64) as u32
                };
                o.buy = (r >> 20) & 1 == 1;
                o.price = MID + (r >> 24) as u32 % 17 - 8;
                o.qty = 1 + (r >> 40) as u32 % 100;
                *o.verdict.get_mut() = PENDING;
                o.published_ns = epoch.elapsed().as_nanos() as u64;
            })
            .expect("the ring closes only after every producer is done");
            tally.add(id);
            sent += 1;
        }
        published.fetch_add(burst, Relaxed);
    }
    tally
}

/// Serialises orders into pooled buffers, one per ring batch (or 8 KiB).
struct Journaller {
    out: Arc<Batcher<Buffer<'static>>>,
    buf: Option<Buffer<'static>>,
}

impl EventHandler<Order> for Journaller {
    fn on_event(&mut self, o: &Order, _seq: u64, end_of_batch: bool) {
        let buf = self.buf.get_or_insert_with(|| BUFFERS.get(8192));
        let side = if o.buy { 'B' } else { 'S' };
        writeln!(buf, "{},{},{side},{},{}", o.id, o.account, o.price, o.qty).expect("in memory");
        if end_of_batch || buf.len() >= 8000 {
            self.ship();
        }
    }
    fn on_shutdown(&mut self) {
        self.ship();
    }
}

impl Journaller {
    fn ship(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.out
                .push(buf)
                .expect("the batcher closes after the ring drained");
        }
    }
}

/// An order in the book: what is left of it and its expiry timer.
struct Resting {
    account: u32,
    buy: bool,
    price: u32,
    left: u32,
    timer: TimerKey,
}

/// A fill: buyer's account, seller's account, quantity.
type Fill = (u32, u32, u32);

#[derive(Default)]
struct Outcomes {
    filled: Tally,
    rejected: Tally,
    expired: Tally,
    cancelled: Tally,
    fills: u64,
}

/// Owns the book; runs on one thread, downstream of journal and risk.
struct Matcher {
    /// Price levels of resting order ids, asks (`[0]`) and bids (`[1]`).
    books: [BTreeMap<u32, VecDeque<u64>>; 2],
    resting: StdHashMap<u64, Resting>,
    expiry: Wheel<u64, Growable>,
    accounts: Arc<HashMap<u32, Account>>,
    positions: Arc<HashMap<u32, i64>>,
    pool: Arc<ThreadPool>,
    fills: Vec<Fill>,
    last_notify: Instant,
    epoch: Instant,
    latency: Histogram<u64>,
    out: Outcomes,
    decided: Arc<AtomicU64>,
    report: mpsc::Sender<(Outcomes, Histogram<u64>)>,
}

impl Matcher {
    fn release(&self, account: u32, notional: u64) {
        self.accounts.update(account, |a| Account {
            exposure: a.exposure - notional,
            ..*a
        });
    }

    /// Takes `id` out of the book (it has fully filled, expired or been
    /// cancelled) and releases what it still reserved.
    fn remove(&mut self, id: u64) -> Resting {
        let r = self.resting.remove(&id).expect("resting order");
        let book = &mut self.books[usize::from(r.buy)];
        let level = book.get_mut(&r.price).expect("price level");
        level.retain(|&x| x != id);
        if level.is_empty() {
            book.remove(&r.price);
        }
        self.release(r.account, u64::from(r.left) * u64::from(r.price));
        r
    }

    /// Matches `o` against the other side; returns the quantity left.
    fn cross(&mut self, o: &Order) -> u32 {
        let mut left = o.qty;
        while left > 0 {
            let book = &self.books[usize::from(!o.buy)];
            let best = if o.buy {
                book.first_key_value()
            } else {
                book.last_key_value()
            };
            let Some((&price, level)) = best else { break };
            if (o.buy && price > o.price) || (!o.buy && price < o.price) {
                break;
            }
            let id = level[0];
            let r = self.resting.get_mut(&id).expect("resting order");
            let q = left.min(r.left);
            (left, r.left) = (left - q, r.left - q);
            let (account, done) = (r.account, r.left == 0);
            let (buyer, seller) = if o.buy {
                (o.account, account)
            } else {
                (account, o.account)
            };
            self.fills.push((buyer, seller, q));
            self.out.fills += 1;
            self.release(account, u64::from(q) * u64::from(price));
            if done {
                let timer = self.remove(id).timer;
                self.expiry.remove(timer);
                self.out.filled.add(id);
            }
        }
        self.release(o.account, u64::from(o.qty - left) * u64::from(o.price));
        left
    }

    /// Hands the fills gathered so far to the pool, which books positions.
    fn notify(&mut self) {
        let fills = std::mem::take(&mut self.fills);
        let positions = self.positions.clone();
        let job = move || {
            for (buyer, seller, qty) in fills {
                let q = i64::from(qty);
                positions.upsert(buyer, || q, |p| p + q);
                positions.upsert(seller, || -q, |p| p - q);
            }
        };
        self.pool
            .execute(job)
            .expect("the pool shuts down after the matcher");
        self.last_notify = Instant::now();
    }
}

impl EventHandler<Order> for Matcher {
    fn on_event(&mut self, o: &Order, _seq: u64, end_of_batch: bool) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        // Relaxed: the risk checker's store happened before it released this
        // sequence, and the ring's barrier acquired that release.
        if o.verdict.load(Relaxed) == REJECTED {
            self.out.rejected.add(o.id);
        } else {
            let left = self.cross(o);
            if left == 0 {
                self.out.filled.add(o.id);
            } else {
                let timer = self.expiry.insert_at(o.id, now + RESTING_TTL_NS);
                let book = &mut self.books[usize::from(o.buy)];
                book.entry(o.price).or_default().push_back(o.id);
                let (account, buy, price) = (o.account, o.buy, o.price);
                let r = Resting {
                    account,
                    buy,
                    price,
                    left,
                    timer,
                };
                self.resting.insert(o.id, r);
            }
        }
        self.latency
            .saturating_record(now.saturating_sub(o.published_ns).max(1));
        self.decided.fetch_add(1, Relaxed);
        if end_of_batch {
            self.expiry.advance_to(now);
            while let Some(e) = self.expiry.pop_expired() {
                self.remove(e.value);
                self.out.expired.add(e.value);
            }
            let due = self.last_notify.elapsed() > Duration::from_millis(5);
            if self.fills.len() >= 1024 || (due && !self.fills.is_empty()) {
                self.notify();
            }
        }
    }

    fn on_shutdown(&mut self) {
        let ids: Vec<u64> = self.resting.keys().copied().collect();
        for id in ids {
            let timer = self.remove(id).timer;
            self.expiry.remove(timer);
            self.out.cancelled.add(id);
        }
        self.notify();
        let latency = std::mem::replace(&mut self.latency, Histogram::new(1).expect("hist"));
        let _ = self.report.send((std::mem::take(&mut self.out), latency));
    }
}

/// The journal file behind a circuit breaker. Batches the breaker rejects,
/// or whose write fails, wait in `pending` (in order) and go out with the
/// next write that the breaker admits, so nothing is lost or reordered.
struct JournalSink {
    inner: Mutex<(BufWriter<File>, VecDeque<Buffer<'static>>)>,
    breaker: Breaker,
    /// While set, every write fails (the injected fault).
    fault: AtomicBool,
}

impl JournalSink {
    fn new(path: &std::path::Path) -> Self {
        JournalSink {
            inner: Mutex::new((
                BufWriter::new(File::create(path).expect("journal")),
                VecDeque::new(),
            )),
            breaker: Breaker::new(
                BreakerConfig::new()
                    .consecutive_failures(3)
                    .failure_rate(0)
                    .cool_down(100_000_000) // 100 ms between probes
                    .probes(1),
            ),
            fault: AtomicBool::new(false),
        }
    }

    /// Queues `batch` and writes everything pending if the breaker admits.
    fn write(&self, batch: &mut Vec<Buffer<'static>>) -> Result<(), Rejected> {
        let mut inner = self.inner.lock().unwrap();
        inner.1.extend(batch.drain(..));
        let guard = self.breaker.guard()?;
        let (file, pending) = &mut *inner;
        let written = if self.fault.load(Relaxed) {
            Err(std::io::Error::other("injected journal fault"))
        } else {
            pending
                .iter()
                .try_for_each(|buf| file.write_all(buf))
                .and_then(|()| file.flush())
        };
        match written {
            Ok(()) => {
                pending.clear(); // the buffers go back to the pool here
                guard.success();
            }
            // Nothing was written (the fault fails before any byte).
            Err(_) => guard.failure(),
        }
        Ok(())
    }

    /// Buffers waiting for the breaker.
    fn pending(&self) -> usize {
        self.inner.lock().unwrap().1.len()
    }

    /// At shutdown: waits out the breaker until everything pending is written.
    fn drain(&self) {
        while self.pending() > 0 {
            if let Err(Rejected::Open { .. } | Rejected::ProbesBusy) = self.write(&mut Vec::new()) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The batcher whose flusher hands each batch of buffers to the journal sink.
fn journal_writer(sink: Arc<JournalSink>) -> Batcher<Buffer<'static>> {
    Batcher::builder::<std::io::Error>()
        .max_bytes(256 << 10, |b: &Buffer<'static>| b.len())
        .max_delay(Duration::from_millis(2))
        .queue_capacity(1024)
        .thread_name("journal-writer")
        .on_error(|e, lost| eprintln!("journal write failed ({e:?}): {} buffers", lost.len()))
        .build(move |batch: &mut Vec<Buffer<'static>>| {
            // A rejected write keeps the batch pending in the sink.
            let _ = sink.write(batch);
            Ok(())
        })
        .unwrap()
}

/// Rate-limits each account, then reserves each order's notional against
/// its account's limit; rejects the order if either says no.
fn risk_checker(
    accounts: Arc<HashMap<u32, Account>>,
    limiter: Arc<Keyed<u32>>,
    limited: Arc<AtomicU64>,
) -> impl EventHandler<Order> {
    move |o: &Order, _seq: u64, _eob: bool| {
        if limiter.try_acquire(&o.account, 1).is_err() {
            limited.fetch_add(1, Relaxed);
            o.verdict.store(REJECTED, Relaxed);
            return;
        }
        let notional = u64::from(o.price) * u64::from(o.qty);
        let m = accounts.pin();
        let decision = m.compute(o.account, |a| match a {
            Some(a) if a.exposure + notional <= a.limit => Op::Put(Account {
                exposure: a.exposure + notional,
                ..*a
            }),
            _ => Op::Keep,
        });
        let verdict = match decision {
            Computed::Updated { .. } => ACCEPTED,
            _ => REJECTED,
        };
        o.verdict.store(verdict, Relaxed);
    }
}

/// Re-reads the journal: the ids it holds, by count and fingerprint.
fn read_journal(path: &std::path::Path) -> std::io::Result<Tally> {
    let mut tally = Tally::default();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        let id = line.split(',').next().and_then(|s| s.parse().ok());
        tally.add(id.expect("journal line starts with an id"));
    }
    Ok(tally)
}

fn main() {
    let cfg = parse_args();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Relaxed)).expect("Ctrl-C handler");

    // Account state: most accounts can hold a few resting orders, some many.
    let accounts: Arc<HashMap<u32, Account>> = Arc::new(HashMap::new());
    for a in 0..ACCOUNTS {
        let limit = 2_000_000 * u64::from(1 + a % 8);
        accounts.insert(a, Account { limit, exposure: 0 });
    }
    let positions: Arc<HashMap<u32, i64>> = Arc::new(HashMap::new());

    // The journal: the batcher's flusher appends batches of buffers to a file.
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| d.as_nanos());
    let name = format!("latchfree-gateway-{}-{nanos}.journal", std::process::id());
    let path = std::env::temp_dir().join(name);
    let sink = Arc::new(JournalSink::new(&path));
    let batcher = Arc::new(journal_writer(sink.clone()));
    let limiter = Arc::new(Keyed::<u32>::new(
        Quota::per_second(ACCOUNT_RATE).allow_burst(ACCOUNT_BURST),
    ));
    let limited = Arc::new(AtomicU64::new(0));
    let pool = Arc::new(
        ThreadPool::builder()
            .max_workers(2)
            .thread_name("notify")
            .build()
            .unwrap(),
    );

    let epoch = Instant::now();
    let decided = Arc::new(AtomicU64::new(0));
    let (report, outcome) = mpsc::channel();
    let matcher = Matcher {
        books: Default::default(),
        resting: StdHashMap::new(),
        expiry: Wheel::new(WheelConfig::new().tick_shift(20)), // ~1 ms ticks
        accounts: accounts.clone(),
        positions: positions.clone(),
        pool: pool.clone(),
        fills: Vec::new(),
        last_notify: Instant::now(),
        epoch,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds"),
        out: Outcomes::default(),
        decided: decided.clone(),
        report,
    };
    let ring = Arc::new(OrderRing::with_wait(
        Heap::builder(8192).gates(3).build().expect("capacity"),
        Blocking::new(),
    ));
    let journaller = Journaller {
        out: batcher.clone(),
        buf: None,
    };
    let (producer, disruptor) = Disruptor::builder(ring)
        .expect("fresh ring")
        .thread_name_prefix("gateway")
        .handle_events_with(journaller)
        .handle_events_with(risk_checker(
            accounts.clone(),
            limiter.clone(),
            limited.clone(),
        ))
        .then(matcher)
        .build_multi()
        .expect("graph");

    eprintln!(
        "order gateway: {} producers, {}, for {:?}; journal {}",
        cfg.producers,
        match cfg.rate {
            0 => "as fast as possible".to_owned(),
            r => format!("{r} orders/s"),
        },
        cfg.duration,
        path.display()
    );
    let published = AtomicU64::new(0);
    let (mut sent, mut run_time) = (Tally::default(), Duration::ZERO);
    let mut fault_injected = false;
    std::thread::scope(|scope| {
        let producers: Vec<_> = (0..cfg.producers as u64)
            .map(|p| {
                let (ring, stop, published) = (producer.clone(), &*stop, &published);
                let rate = cfg.rate as f64 / cfg.producers as f64;
                scope.spawn(move || produce(p, ring, rate, epoch, stop, published))
            })
            .collect();
        let start = Instant::now();
        let mut last = (start, 0u64);
        // The journal fault: one second, starting a quarter of the way in.
        let fault_at = cfg.duration / 4;
        let mut fault = None;
        while start.elapsed() < cfg.duration && !stop.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            match fault {
                None if start.elapsed() >= fault_at => {
                    sink.fault.store(true, Relaxed);
                    fault = Some(Instant::now());
                    fault_injected = true;
                }
                Some(t)
                    if t.elapsed() >= Duration::from_secs(1) && sink.fault.swap(false, Relaxed) => {
                }
                _ => {}
            }
            if last.0.elapsed() >= Duration::from_millis(500) {
                let n = published.load(Relaxed);
                let rate = (n - last.1) as f64 / last.0.elapsed().as_secs_f64();
                limiter.sweep();
                eprintln!(
                    "{:>5.1} s  {n:>10} orders  {:>8.0} k/s  {:>10} decided  {:>8} rate-limited  journal {:?}{}, {} pending",
                    start.elapsed().as_secs_f64(),
                    rate / 1e3,
                    decided.load(Relaxed),
                    limited.load(Relaxed),
                    sink.breaker.state(),
                    if sink.fault.load(Relaxed) { " (fault injected)" } else { "" },
                    sink.pending(),
                );
                last = (Instant::now(), n);
            }
        }
        sink.fault.store(false, Relaxed);
        if stop.swap(true, Relaxed) {
            eprint!("\ninterrupted: stopping producers, draining");
        }
        for p in producers {
            sent.merge(p.join().expect("producer"));
        }
        run_time = start.elapsed();
    });
    eprintln!();

    // Drain in dependency order: ring stages, then the journal, then the pool.
    let drain = Instant::now();
    drop(producer); // the last producer handle closes the ring
    disruptor.shutdown();
    batcher.close();
    sink.drain(); // whatever waited for the breaker
    pool.shutdown();
    let drain = drain.elapsed();

    let journal = read_journal(&path);
    let _ = std::fs::remove_file(&path);
    let (out, latency) = outcome.recv().expect("the matcher reported");

    println!(
        "{} orders in {:.2} s: {:.0} orders/s ({} producers); drained in {:.1?}",
        sent.count,
        run_time.as_secs_f64(),
        sent.count as f64 / run_time.as_secs_f64(),
        cfg.producers,
        drain
    );
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
    println!(
        "publish -> decision latency: p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
        us(0.5),
        us(0.99),
        us(0.999),
        latency.max() as f64 / 1e3
    );
    println!(
        "outcomes: {} filled, {} rejected, {} expired, {} cancelled at shutdown; {} fills; batches written {}",
        out.filled.count,
        out.rejected.count,
        out.expired.count,
        out.cancelled.count,
        out.fills,
        batcher.metrics().batches
    );

    let mut decided = out.filled;
    for t in [out.rejected, out.expired, out.cancelled] {
        decided.merge(t);
    }
    let breaker = sink.breaker.metrics();
    println!(
        "per-account limiter: {} orders rate-limited ({}/s, burst {} per account), {} accounts tracked after the last sweep",
        limited.load(Relaxed),
        ACCOUNT_RATE,
        ACCOUNT_BURST,
        limiter.len()
    );
    println!(
        "journal breaker: opened {} times, {} writes rejected, {} failed, now {:?}",
        breaker.opened,
        breaker.rejected,
        breaker.failures,
        sink.breaker.state()
    );
    let exposure: u64 = accounts.values().iter().map(|a| a.exposure).sum();
    let net: i64 = positions.values().iter().sum();
    let checks = [
        (
            "every order journalled exactly once",
            journal.as_ref().ok() == Some(&sent),
        ),
        ("every order has exactly one outcome", decided == sent),
        ("all account exposure released", exposure == 0),
        ("positions net to zero", net == 0),
        (
            "rate-limited orders were rejected, not lost",
            limited.load(Relaxed) <= out.rejected.count,
        ),
        (
            "journal breaker opened during the fault and closed after",
            (breaker.opened >= 1 || !fault_injected) && sink.breaker.state() == State::Closed,
        ),
    ];
    let mut ok = true;
    for (what, good) in checks {
        println!("  {:<4} {what}", if good { "ok" } else { "FAIL" });
        ok &= good;
    }
    if !ok {
        eprintln!("consistency check FAILED: sent {sent:?}, journal {journal:?}, decided {decided:?}, exposure {exposure}, net {net}");
        std::process::exit(1);
    }
    println!("consistency check passed");
}
