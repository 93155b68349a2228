//! The soak: every structure at once, for minutes, with user callbacks
//! panicking at a low seeded rate and random flush / close / halt, checking
//! at the end that every accepted item was accounted for exactly once and
//! that memory stayed flat.
//!
//! ```text
//! cargo run --release --example soak -- --minutes 10
//! cargo run --release --example soak -- --seconds 20 --seed 42
//! ```
//!
//! Eight driver threads (`--threads`) pick a *station* at random and run a
//! short burst on it. A station owns one structure (recreated after every
//! close or halt, each instance a *generation*) and its books:
//!
//! | station | what runs | accounted as |
//! |---|---|---|
//! | `ring-sp` | single-producer ring, `Disruptor` with two multicast handlers and a work group of two | accepted = handled by A = by B = by the group (close); ≤ (halt) |
//! | `ring-mp` | the same with a multi-producer ring, producers on every thread | as `ring-sp` |
//! | `map` | the sharded map, keys whose `Hash`/`Eq`/`Clone` panic | contents = the drivers' models |
//! | `wheel` | a timing wheel in a mutex, `advance_with` sinks panicking | inserted = fired + cancelled |
//! | `timers` | the timer service: one-shots and periodic timers, callbacks panicking | scheduled = ran + cancelled + pending at shutdown; periodic timers keep running after a panic |
//! | `pqueue` | priority queue, priorities whose `Ord` panics | pushed = popped + removed |
//! | `delayq` | delay queue and blocking delay queue | inserted = expired + removed; offered = taken + returned by close |
//! | `buffers` | object pool (`init`/`reset` panicking, bounded) and byte-buffer pool | objects created = dropped; in use ≤ bound; hits + misses = gets |
//! | `pool` | thread pool: `execute`, `spawn`, jobs panicking, `shutdown`/`shutdown_now` | submitted = ran + dropped unrun; panics reported = injected |
//! | `batch` | batcher: handler `Err`/panic, weigher panicking, `flush` | accepted = delivered + failed |
//! | `tasks` | `TaskQueue`: handler `Err`/panic, `flush` | pushed = handled + failed + panicked |
//!
//! Exactly-once is checked with a fingerprint per side of each equation:
//! the count of items and the wrapping sum of a 64-bit mix of their ids
//! (a lost item and a duplicated one would have to collide in 64 bits to
//! hide). Every item is a `Tracked` value (`tests/support/fault.rs`) whose
//! ledger must be balanced once its generation is dropped.
//!
//! Memory: RSS (`/proc/self/statm`) and the live heap (a counting global
//! allocator) are sampled every 100 ms; the medians over a window after the
//! first minute (the first 20% of a short run) and over the last window
//! must agree within 10% (the heap: plus 256 KiB for items in flight; RSS
//! of a run shorter than five minutes: plus 1 MiB for the allocator's
//! warm-up). On glibc the soak limits malloc
//! to two arenas, turns off its cache of exited threads' stacks and trims
//! its free lists before each RSS sample, so
//! thousands of short-lived threads do not pass for growth.
//!
//! A watchdog prints what every thread is doing and exits with status 3
//! when one operation takes longer than `--watchdog` seconds: a soak never
//! hangs silently. Any mismatch exits with status 1.
//!
//! `--avoid a,b` (or `--only-safe`, all of them) turns off behaviours one
//! by one, to isolate a failure (see `--help`).
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "../tests/support/fault.rs"]
mod fault;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use fault::{is_injected, mix, quiet_injected_panics, Fault, Ledger, Plan, Rng, Tracked};
use latchfree::batch::{BatchError, Batcher, TaskError, TaskQueue};
use latchfree::buffer::{BufferPool, ObjectPool};
use latchfree::map::{HashMap, Op};
use latchfree::pool::{Builder as PoolBuilder, JoinError, ThreadPool};
use latchfree::queue::{BlockingDelayQueue, DelayQueue, Growable, PriorityQueue};
use latchfree::ring::{Disruptor, EventHandler, PanicPolicy};
use latchfree::ring::{Heap, Multi, MultiProducer, Parking, Producer, Ring, Single};
use latchfree::wheel::{MissedTick, Timer, TimerService, Wheel, WheelConfig};

// ------------------------------------------------------------ options

/// Behaviours that can be turned off one by one (`--avoid`) to isolate a
/// failure; each hung or lost items before the fixes of issue 11.
const KNOWN: &[(&str, &str)] = &[
    (
        "batch-flush-blocking",
        "Batcher/TaskQueue flush against a push blocked on a full queue",
    ),
    (
        "batch-weigher-panic",
        "a panicking weigher (the flusher must survive)",
    ),
    (
        "object-pool-init-panic",
        "a panicking init in a bounded ObjectPool (the bound must not leak)",
    ),
    (
        "wheel-sink-panic",
        "a panicking advance_with sink (no timer orphaned)",
    ),
    (
        "timer-periodic-panic",
        "a periodic timer whose run panics (it keeps its schedule)",
    ),
];

struct Options {
    run: Duration,
    seed: u64,
    threads: usize,
    /// Injected panics per million callback calls.
    rate: u32,
    watchdog: Duration,
    avoid: Vec<String>,
    /// Run only these stations (all when empty).
    only: Vec<String>,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            run: Duration::from_secs(60),
            seed: mix(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)),
            threads: 8,
            rate: 2_000,
            watchdog: Duration::from_secs(30),
            avoid: Vec::new(),
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        let num = |a: Option<String>, what: &str| -> u64 {
            a.and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage(&format!("{what} needs a number")))
        };
        while let Some(a) = args.next() {
            match a.as_str() {
                "--minutes" => o.run = Duration::from_secs(60 * num(args.next(), "--minutes")),
                "--seconds" => o.run = Duration::from_secs(num(args.next(), "--seconds")),
                "--seed" => o.seed = num(args.next(), "--seed"),
                "--threads" => o.threads = num(args.next(), "--threads").max(1) as usize,
                "--rate" => o.rate = num(args.next(), "--rate") as u32,
                "--watchdog" => o.watchdog = Duration::from_secs(num(args.next(), "--watchdog")),
                "--only-safe" => o.avoid = KNOWN.iter().map(|(k, _)| k.to_string()).collect(),
                "--avoid" => {
                    let list = args.next().unwrap_or_else(|| usage("--avoid needs a list"));
                    for k in list.split(',').filter(|k| !k.is_empty()) {
                        if !KNOWN.iter().any(|(n, _)| *n == k) {
                            usage(&format!("unknown behaviour {k}"));
                        }
                        o.avoid.push(k.to_string());
                    }
                }
                "--stations" => {
                    let list = args
                        .next()
                        .unwrap_or_else(|| usage("--stations needs a list"));
                    o.only = list.split(',').map(str::to_string).collect();
                }
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument {other}")),
            }
        }
        o
    }

    fn allows(&self, behaviour: &str) -> bool {
        !self.avoid.iter().any(|a| a == behaviour)
    }
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("soak: {err}");
    }
    eprintln!(
        "usage: soak [--minutes N | --seconds N] [--seed S] [--threads N] [--rate PER_MILLION]\n\
         \x20           [--watchdog SECONDS] [--only-safe | --avoid a,b,...] [--stations a,b,...]\n\
         behaviours that --avoid takes (--only-safe avoids them all):"
    );
    for (k, why) in KNOWN {
        eprintln!("  {k:24} {why}");
    }
    std::process::exit(if err.is_empty() { 0 } else { 2 });
}

// ------------------------------------------------------------ books

/// A multiset fingerprint: item count and wrapping sum of mixed ids.
#[derive(Default)]
struct Print {
    count: AtomicU64,
    sum: AtomicU64,
}

impl Print {
    fn add(&self, id: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(mix(id), Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.sum.load(Ordering::Relaxed),
        )
    }
}

/// The sum of fingerprints.
fn plus(prints: &[&Print]) -> (u64, u64) {
    prints.iter().fold((0, 0), |(c, s), p| {
        let (pc, ps) = p.get();
        (c + pc, s.wrapping_add(ps))
    })
}

/// A station's totals over all its generations, and its mismatches.
#[derive(Default)]
struct Books {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    abandoned: AtomicU64,
    refused: AtomicU64,
    injected: AtomicU64,
    generations: AtomicU64,
    checks: AtomicU64,
    mismatches: AtomicU64,
}

static MISMATCH_LINES: AtomicUsize = AtomicUsize::new(0);

impl Books {
    fn bump(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// Records one check; prints and counts it when it failed.
    fn check(&self, station: &str, ok: bool, what: impl FnOnce() -> String) {
        Books::bump(&self.checks, 1);
        if !ok {
            Books::bump(&self.mismatches, 1);
            if MISMATCH_LINES.fetch_add(1, Ordering::Relaxed) < 40 {
                eprintln!("MISMATCH [{station}] {}", what());
            }
        }
    }

    /// Checks `a == b` for two fingerprints.
    fn same(&self, station: &str, what: &str, a: (u64, u64), b: (u64, u64)) {
        self.check(station, a == b, || {
            format!(
                "{what}: {} vs {} items (fingerprints {:x} vs {:x})",
                a.0, b.0, a.1, b.1
            )
        });
    }

    /// Checks that a dropped generation's ledger is balanced.
    fn balanced(&self, station: &str, ledger: &Ledger) {
        self.check(station, ledger.live() == 0, || {
            format!("drop counters: {}", ledger.summary())
        });
    }
}

// ------------------------------------------------------------ threads

/// What one thread is doing, for the watchdog.
struct Beat {
    what: Mutex<(String, Instant)>,
}

impl Beat {
    fn new() -> Self {
        Beat {
            what: Mutex::new((String::from("starting"), Instant::now())),
        }
    }
}

/// A driver thread's context.
struct Ctx {
    me: usize,
    rng: Rng,
    beat: Arc<Beat>,
}

impl Ctx {
    fn doing(&self, what: &str) {
        let mut b = lock(&self.beat.what);
        b.0.clear();
        b.0.push_str(what);
        b.1 = Instant::now();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unique item ids across the run.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The current generation of a station's structure, swapped on recreate.
struct Current<G>(RwLock<Arc<G>>);

impl<G> Current<G> {
    fn new(g: G) -> Self {
        Current(RwLock::new(Arc::new(g)))
    }
    fn get(&self) -> Arc<G> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Installs `g`; returns the old generation once no thread uses it.
    fn replace(&self, g: G, ctx: &Ctx, closing: impl FnOnce(&G)) -> G {
        let old = std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|e| e.into_inner()),
            Arc::new(g),
        );
        closing(&old);
        ctx.doing("waiting for the last users of a retired generation");
        let mut old = old;
        loop {
            match Arc::try_unwrap(old) {
                Ok(g) => return g,
                Err(back) => {
                    old = back;
                    thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

/// One structure under test.
trait Station: Send + Sync {
    fn name(&self) -> &'static str;
    fn books(&self) -> &Books;
    /// One short burst of operations.
    fn step(&self, ctx: &mut Ctx);
    /// Retires the current generation and checks its books.
    fn finish(&self, ctx: &mut Ctx);
}

/// A fault at `rate` per million, its calls chosen by `seed`.
fn rate_fault(rate: u32, seed: u64) -> Arc<Fault> {
    Arc::new(Fault::with(Plan::Rate {
        per_million: rate,
        seed,
    }))
}

/// Runs `f`, swallowing an injected panic (the callback's panic reaching
/// the caller, as the API documents for caller-thread callbacks) and
/// recording any other panic as a mismatch. `Some` if it returned.
fn guarded<T>(books: &Books, station: &str, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(p) => {
            let injected = is_injected(&*p);
            books.check(station, injected, || {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("a panic that was not injected: {msg}")
            });
            None
        }
    }
}

// ------------------------------------------------------------ rings

type Ev = Option<Tracked>;

/// One generation's fingerprints for a ring.
#[derive(Default)]
struct RingPrints {
    accepted: Print,
    a: Print,
    b: Print,
    group: Print,
    /// Multicast handlers saw a sequence out of order (a duplicate).
    disorder: AtomicU64,
    reports: AtomicU64,
}

struct RingHandler {
    prints: Arc<RingPrints>,
    which: usize,
    fault: Arc<Fault>,
    last: Option<u64>,
}

impl EventHandler<Ev> for RingHandler {
    fn on_event(&mut self, e: &Ev, seq: u64, _eob: bool) {
        let id = e.as_ref().map_or(u64::MAX, Tracked::id);
        let p = &self.prints;
        match self.which {
            0 => p.a.add(id),
            1 => p.b.add(id),
            _ => p.group.add(id),
        }
        if self.which < 2 {
            if self.last.is_some_and(|l| seq <= l) {
                p.disorder.fetch_add(1, Ordering::Relaxed);
            }
            self.last = Some(seq);
        }
        self.fault.hit("ring handler");
    }
}

type SpRing = Arc<Ring<Heap<Ev>, Single, Parking>>;
type MpRing = Arc<Ring<Heap<Ev>, Multi, Parking>>;

/// The producer templates; `None` once the generation is retired.
enum Producers {
    Single(Mutex<Option<Producer<SpRing>>>),
    Multi(Mutex<Option<MultiProducer<MpRing>>>),
}

enum Runner {
    Single(Disruptor<Heap<Ev>, Single, Parking>),
    Multi(Disruptor<Heap<Ev>, Multi, Parking>),
}

struct RingGen {
    producers: Producers,
    runner: Mutex<Option<Runner>>,
    halt: Box<dyn Fn() + Send + Sync>,
    close: Box<dyn Fn() + Send + Sync>,
    prints: Arc<RingPrints>,
    ledger: Arc<Ledger>,
    writer: Arc<Fault>,
    handler: Arc<Fault>,
}

struct RingStation {
    name: &'static str,
    multi: bool,
    books: Books,
    rate: u32,
    seed: u64,
    gens: AtomicU64,
    cur: Current<RingGen>,
}

impl RingStation {
    fn new(name: &'static str, multi: bool, rate: u32, seed: u64) -> Self {
        let g = Self::build(multi, rate, seed);
        RingStation {
            name,
            multi,
            books: Books::default(),
            rate,
            seed,
            gens: AtomicU64::new(1),
            cur: Current::new(g),
        }
    }

    fn build(multi: bool, rate: u32, seed: u64) -> RingGen {
        let prints = Arc::new(RingPrints::default());
        let ledger = Ledger::new();
        // Displaced events' Drop panics too (in the producer's thread).
        ledger.drop.arm(Plan::Rate {
            per_million: rate / 4,
            seed: mix(seed ^ 1),
        });
        let handler = rate_fault(rate, mix(seed ^ 2));
        let writer = rate_fault(rate, mix(seed ^ 3));
        let h = |which| RingHandler {
            prints: prints.clone(),
            which,
            fault: handler.clone(),
            last: None,
        };
        let (p2, cb) = (prints.clone(), rate_fault(rate * 50, mix(seed ^ 4)));
        let on_panic = move |r: latchfree::ring::PanicReport| {
            assert!(r.message.starts_with(fault::INJECTED), "{}", r.message);
            p2.reports.fetch_add(1, Ordering::Relaxed);
            // The panic callback panics now and then too.
            cb.hit("ring on_panic");
        };
        macro_rules! build {
            ($mode:ty, $build:ident) => {{
                let ring = Arc::new(Ring::<Heap<Ev>, $mode, Parking>::with_wait(
                    Heap::builder(64).gates(5).build().unwrap(),
                    Parking::new(),
                ));
                let (r1, r2) = (ring.clone(), ring.clone());
                let (producer, runner) = Disruptor::builder(ring)
                    .unwrap()
                    .thread_name_prefix("soak-ring")
                    .panic_policy(PanicPolicy::Skip)
                    .on_panic(on_panic)
                    .handle_events_with(h(0))
                    .handle_events_with(h(1))
                    .then_workers(vec![h(2), h(2)])
                    .$build()
                    .unwrap();
                (
                    producer,
                    runner,
                    Box::new(move || r1.halt()) as Box<dyn Fn() + Send + Sync>,
                    Box::new(move || r2.close()) as Box<dyn Fn() + Send + Sync>,
                )
            }};
        }
        let (producers, runner, halt, close) = if multi {
            let (p, r, h, c) = build!(Multi, build_multi);
            (
                Producers::Multi(Mutex::new(Some(p))),
                Runner::Multi(r),
                h,
                c,
            )
        } else {
            let (p, r, h, c) = build!(Single, build_single);
            (
                Producers::Single(Mutex::new(Some(p))),
                Runner::Single(r),
                h,
                c,
            )
        };
        RingGen {
            producers,
            runner: Mutex::new(Some(runner)),
            halt,
            close,
            prints,
            ledger,
            writer,
            handler,
        }
    }

    fn retire(&self, ctx: &mut Ctx, halt: bool) {
        let next = Self::build(
            self.multi,
            self.rate,
            mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
        );
        let g = self.cur.replace(next, ctx, |g| {
            if halt {
                (g.halt)();
            } else {
                (g.close)();
            }
        });
        ctx.doing(if halt {
            "ring: halting the runner"
        } else {
            "ring: shutting down the runner"
        });
        // The producer templates go first: the last single producer closes.
        match &g.producers {
            Producers::Single(p) => drop(lock(p).take()),
            Producers::Multi(p) => drop(lock(p).take()),
        }
        match lock(&g.runner).take() {
            Some(Runner::Single(d)) if halt => d.halt(),
            Some(Runner::Single(d)) => {
                // `false`: a producer handle still lives; its threads drain
                // and exit once it goes.
                let _ = d.shutdown();
            }
            Some(Runner::Multi(d)) if halt => d.halt(),
            Some(Runner::Multi(d)) => {
                let _ = d.shutdown();
            }
            None => {}
        }
        self.verify(g, halt);
    }

    fn verify(&self, g: RingGen, halt: bool) {
        let b = &self.books;
        let n = self.name;
        let p = &g.prints;
        let acc = p.accepted.get();
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, acc.0);
        Books::bump(
            &b.delivered,
            p.a.get().0.min(p.b.get().0).min(p.group.get().0),
        );
        Books::bump(
            &b.injected,
            g.writer.fired() + g.handler.fired() + g.ledger.drop.fired(),
        );
        if halt {
            // Halted: what was not handled is abandoned, nothing twice.
            for (what, x) in [("A", &p.a), ("B", &p.b), ("work group", &p.group)] {
                let got = x.get().0;
                b.check(n, got <= acc.0, || {
                    format!("halt: {what} handled {got} of {} accepted", acc.0)
                });
            }
            Books::bump(&b.abandoned, acc.0 - acc.0.min(p.group.get().0));
        } else {
            b.same(n, "accepted vs handled by A", acc, p.a.get());
            b.same(n, "accepted vs handled by B", acc, p.b.get());
            b.same(
                n,
                "accepted vs handled by the work group",
                acc,
                p.group.get(),
            );
        }
        let disorder = p.disorder.load(Ordering::Relaxed);
        b.check(n, disorder == 0, || {
            format!("{disorder} events out of order at a multicast handler")
        });
        let reports = p.reports.load(Ordering::Relaxed);
        let fired = g.handler.fired();
        b.check(n, reports == fired, || {
            format!("{fired} handler panics injected, {reports} reported")
        });
        g.ledger.disarm_all();
        let ledger = g.ledger.clone();
        drop(g);
        b.balanced(n, &ledger);
    }
}

impl Station for RingStation {
    fn name(&self) -> &'static str {
        self.name
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        let r = ctx.rng.below(1000);
        if r < 3 {
            ctx.doing(if self.multi {
                "ring-mp: close and recreate"
            } else {
                "ring-sp: close and recreate"
            });
            return self.retire(ctx, false);
        }
        if r < 5 {
            ctx.doing(if self.multi {
                "ring-mp: halt and recreate"
            } else {
                "ring-sp: halt and recreate"
            });
            return self.retire(ctx, true);
        }
        let g = self.cur.get();
        let burst = 1 + ctx.rng.below(32);
        ctx.doing(if self.multi {
            "ring-mp: publishing"
        } else {
            "ring-sp: publishing"
        });
        let b = &self.books;
        macro_rules! publish {
            ($p:expr) => {{
                for _ in 0..burst {
                    let id = next_id();
                    let t = g.ledger.track(id);
                    let w = &g.writer;
                    let out = guarded(b, self.name, || {
                        $p.publish(|slot| {
                            w.hit("ring writer");
                            *slot = Some(t);
                        })
                        .is_ok()
                    });
                    match out {
                        Some(true) => g.prints.accepted.add(id),
                        Some(false) => {
                            Books::bump(&b.refused, 1);
                            break;
                        }
                        None => {}
                    }
                }
            }};
        }
        match &g.producers {
            Producers::Single(p) => {
                let mut p = lock(p);
                if let Some(p) = p.as_mut() {
                    publish!(p);
                }
            }
            Producers::Multi(p) => {
                let p = lock(p).as_ref().map(MultiProducer::clone);
                if let Some(mut p) = p {
                    publish!(p);
                }
            }
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        self.retire(ctx, false);
    }
}

// ------------------------------------------------------------ map

struct MapGen {
    map: HashMap<Tracked, Tracked>,
    ledger: Arc<Ledger>,
    /// Each driver's model of its own keys: key id -> value id.
    models: Vec<Mutex<BTreeMap<u64, u64>>>,
    closure: Arc<Fault>,
}

struct MapStation {
    books: Books,
    rate: u32,
    seed: u64,
    threads: usize,
    gens: AtomicU64,
    cur: Current<MapGen>,
}

const MAP_KEYS: u64 = 256;

impl MapStation {
    fn build(threads: usize, rate: u32, seed: u64) -> MapGen {
        let ledger = Ledger::new();
        for (i, f) in [&ledger.hash, &ledger.eq, &ledger.clone]
            .into_iter()
            .enumerate()
        {
            f.arm(Plan::Rate {
                per_million: rate,
                seed: mix(seed ^ i as u64),
            });
        }
        MapGen {
            // The default (global) collector: the self-pinning methods are
            // cheap with it. (A private collector makes every self-pinning
            // call register a participant: in this soak that took the RSS
            // to hundreds of MiB.)
            map: HashMap::with_shards(4),
            ledger,
            models: (0..threads).map(|_| Mutex::new(BTreeMap::new())).collect(),
            closure: rate_fault(rate, mix(seed ^ 9)),
        }
    }

    /// Reads `key` until no injected panic gets in the way.
    fn read(g: &MapGen, key: u64) -> Option<u64> {
        loop {
            let k = g.ledger.track(key);
            if let Ok(v) = catch_unwind(AssertUnwindSafe(|| g.map.get_with(&k, |v| v.id()))) {
                return v;
            }
        }
    }

    fn verify(&self, g: MapGen) {
        let b = &self.books;
        g.ledger.disarm_all();
        g.closure.disarm();
        let mut want: BTreeMap<u64, u64> = BTreeMap::new();
        for m in &g.models {
            want.extend(lock(m).iter());
        }
        let mut got: BTreeMap<u64, u64> = BTreeMap::new();
        g.map.for_each(|k, v| {
            if got.insert(k.id(), v.id()).is_some() {
                b.check("map", false, || format!("key {} iterated twice", k.id()));
            }
        });
        b.check("map", got == want, || {
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(k) != Some(v))
                .take(5)
                .collect();
            format!(
                "contents differ from the models: {} vs {} entries; e.g. {diff:?}",
                got.len(),
                want.len()
            )
        });
        Books::bump(&b.generations, 1);
        Books::bump(&b.delivered, got.len() as u64);
        Books::bump(
            &b.injected,
            g.ledger.hash.fired()
                + g.ledger.eq.fired()
                + g.ledger.clone.fired()
                + g.closure.fired(),
        );
        let ledger = g.ledger.clone();
        drop(g);
        // Removed and replaced values are dropped through the epoch: push
        // this thread's garbage out and let the epoch move on (the drivers
        // flush theirs after every burst).
        let deadline = Instant::now() + Duration::from_secs(5);
        while ledger.live() != 0 && Instant::now() < deadline {
            crossbeam_epoch::pin().flush();
            thread::sleep(Duration::from_micros(100));
        }
        b.balanced("map", &ledger);
    }

    fn retire(&self, ctx: &mut Ctx) {
        let next = Self::build(
            self.threads,
            self.rate,
            mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
        );
        let g = self.cur.replace(next, ctx, |_| {});
        ctx.doing("map: checking a retired generation");
        self.verify(g);
    }
}

impl Station for MapStation {
    fn name(&self) -> &'static str {
        "map"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 3 {
            ctx.doing("map: recreate");
            return self.retire(ctx);
        }
        ctx.doing("map: operations");
        let g = self.cur.get();
        let b = &self.books;
        let mut model = lock(&g.models[ctx.me]);
        for _ in 0..16 {
            let key = ctx.me as u64 * MAP_KEYS + ctx.rng.below(MAP_KEYS);
            let val = next_id();
            let before = model.get(&key).copied();
            let k = g.ledger.track(key);
            let v = g.ledger.track(val);
            let op = ctx.rng.below(5);
            let done = guarded(b, "map", || match op {
                0 => {
                    g.map.insert(k, v);
                    Some(val)
                }
                1 => {
                    g.map.remove(&k);
                    None
                }
                2 => match g.map.try_insert(k, v) {
                    Ok(()) => Some(val),
                    Err(_) => before,
                },
                3 => {
                    let f = &g.closure;
                    let r = g.map.compute(k, |old| {
                        f.hit("map compute closure");
                        match old {
                            Some(_) if val % 2 == 0 => Op::Remove,
                            _ => Op::Put(v.clone()),
                        }
                    });
                    r.map(|t| t.id())
                }
                _ => {
                    let f = &g.closure;
                    g.map
                        .upsert(
                            k,
                            || {
                                f.hit("map upsert insert");
                                v.clone()
                            },
                            |old| {
                                f.hit("map upsert update");
                                old.clone()
                            },
                        )
                        .id()
                        .into()
                }
            });
            let now = Self::read(&g, key);
            match done {
                Some(expected) => {
                    b.check("map", now == expected, || {
                        format!("key {key}: op {op} left {now:?}, expected {expected:?}")
                    });
                }
                None => {
                    // A panic: the op happened entirely or not at all.
                    let whole = match op {
                        0 => Some(val),
                        1 => None,
                        2 => before.or(Some(val)),
                        3 => now,
                        _ => before.or(Some(val)),
                    };
                    b.check("map", now == before || now == whole, || {
                        format!("key {key}: panicking op {op} left {now:?} (before {before:?})")
                    });
                }
            }
            match now {
                Some(v) => model.insert(key, v),
                None => model.remove(&key),
            };
            Books::bump(&b.accepted, 1);
        }
        drop(model);
        // Hand this thread's retired values to the global epoch queue.
        crossbeam_epoch::pin().flush();
    }

    fn finish(&self, ctx: &mut Ctx) {
        self.retire(ctx);
    }
}

// ------------------------------------------------------------ wheel

struct WheelGen {
    wheel: Mutex<Wheel<Tracked, Growable>>,
    ledger: Arc<Ledger>,
    sink: Arc<Fault>,
    inserted: Print,
    fired: Print,
    cancelled: Print,
    keys: Mutex<Vec<latchfree::wheel::TimerKey>>,
}

struct WheelStation {
    books: Books,
    rate: u32,
    seed: u64,
    gens: AtomicU64,
    cur: Current<WheelGen>,
}

impl WheelStation {
    fn build(rate: u32, seed: u64) -> WheelGen {
        WheelGen {
            wheel: Mutex::new(Wheel::new(WheelConfig::new().tick_shift(2))),
            ledger: Ledger::new(),
            sink: rate_fault(rate, seed),
            inserted: Print::default(),
            fired: Print::default(),
            cancelled: Print::default(),
            keys: Mutex::new(Vec::new()),
        }
    }

    fn verify(&self, g: WheelGen) {
        let b = &self.books;
        g.sink.disarm();
        {
            let mut w = lock(&g.wheel);
            w.advance_with(u64::MAX, |e| g.fired.add(e.value.id()));
            let left = w.len();
            b.check("wheel", left == 0, || {
                format!("{left} timers left after advancing to the end")
            });
        }
        b.same(
            "wheel",
            "inserted vs fired + cancelled",
            g.inserted.get(),
            plus(&[&g.fired, &g.cancelled]),
        );
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, g.inserted.get().0);
        Books::bump(&b.delivered, g.fired.get().0);
        Books::bump(&b.failed, g.cancelled.get().0);
        Books::bump(&b.injected, g.sink.fired());
        let ledger = g.ledger.clone();
        drop(g);
        b.balanced("wheel", &ledger);
    }
}

impl Station for WheelStation {
    fn name(&self) -> &'static str {
        "wheel"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 3 {
            ctx.doing("wheel: recreate");
            let next = Self::build(
                self.rate,
                mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
            );
            let g = self.cur.replace(next, ctx, |_| {});
            return self.verify(g);
        }
        ctx.doing("wheel: operations");
        let g = self.cur.get();
        let mut w = lock(&g.wheel);
        let now = w.now();
        for _ in 0..8 {
            let id = next_id();
            let deadline = now + ctx.rng.below(4096);
            let k = w.insert_at(g.ledger.track(id), deadline);
            g.inserted.add(id);
            lock(&g.keys).push(k);
        }
        {
            let mut keys = lock(&g.keys);
            for _ in 0..3 {
                if keys.is_empty() {
                    break;
                }
                let i = ctx.rng.below(keys.len() as u64) as usize;
                let k = keys.swap_remove(i);
                match ctx.rng.below(2) {
                    0 => {
                        if let Some(t) = w.remove(k) {
                            g.cancelled.add(t.id());
                        }
                    }
                    _ => {
                        w.reset_at(k, now + ctx.rng.below(4096));
                        keys.push(k);
                    }
                }
            }
            if keys.len() > 4096 {
                keys.drain(..2048);
            }
        }
        let to = now + ctx.rng.below(2048);
        let (fired, sink) = (&g.fired, &g.sink);
        guarded(&self.books, "wheel", || {
            w.advance_with(to, |e| {
                fired.add(e.value.id());
                sink.hit("wheel sink");
            })
        });
    }

    fn finish(&self, ctx: &mut Ctx) {
        let next = Self::build(self.rate, self.seed);
        let g = self.cur.replace(next, ctx, |_| {});
        self.verify(g);
    }
}

// ------------------------------------------------------------ timers

struct Periodic {
    timer: Timer,
    runs: Arc<AtomicU64>,
    /// Runs counted when the last injected panic happened.
    runs_at_panic: Arc<AtomicU64>,
    panicked_at: Arc<Mutex<Option<Instant>>>,
}

struct TimerGen {
    service: TimerService,
    ledger: Arc<Ledger>,
    fault: Arc<Fault>,
    periodic_fault: Arc<Fault>,
    scheduled: Print,
    ran: Arc<Print>,
    cancelled: Print,
    once: Mutex<Vec<(u64, Timer)>>,
    periodic: Mutex<Vec<Periodic>>,
}

struct TimerStation {
    books: Books,
    rate: u32,
    seed: u64,
    periodic_panics: bool,
    gens: AtomicU64,
    cur: Current<TimerGen>,
}

const PERIOD: Duration = Duration::from_millis(3);

impl TimerStation {
    fn build(rate: u32, seed: u64, periodic_panics: bool) -> TimerGen {
        TimerGen {
            service: TimerService::new(),
            ledger: Ledger::new(),
            fault: rate_fault(rate, seed),
            // Periodic runs are few: a higher rate so panics happen at all.
            periodic_fault: rate_fault(if periodic_panics { 20_000 } else { 0 }, mix(seed)),
            scheduled: Print::default(),
            ran: Arc::new(Print::default()),
            cancelled: Print::default(),
            once: Mutex::new(Vec::new()),
            periodic: Mutex::new(Vec::new()),
        }
    }

    fn verify(&self, g: TimerGen, ctx: &Ctx) {
        let b = &self.books;
        // Periodic timers: each that panicked long enough ago ran again.
        for p in lock(&g.periodic).iter() {
            let at = *lock(&p.panicked_at);
            if let Some(at) = at {
                if at.elapsed() > PERIOD * 30 {
                    let (runs, then) = (
                        p.runs.load(Ordering::SeqCst),
                        p.runs_at_panic.load(Ordering::SeqCst),
                    );
                    b.check("timers", runs > then, || {
                        format!("a periodic timer stopped after a panicking run ({runs} runs, last panic {:?} ago)", at.elapsed())
                    });
                }
            }
            p.timer.cancel();
        }
        ctx.doing("timers: shutting down a service");
        let pending = g.service.shutdown() as u64;
        // Callbacks already handed to the executor still run: wait a bit.
        let want = g.scheduled.get().0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while g.ran.get().0 + g.cancelled.get().0 + pending < want && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        let (ran, cancelled) = (g.ran.get().0, g.cancelled.get().0);
        // The pending count may include the next runs of the periodic
        // timers just cancelled (their cancel reaches the driver later).
        let periodic = lock(&g.periodic).len() as u64;
        let extra = (ran + cancelled + pending) as i64 - want as i64;
        b.check("timers", (0..=periodic as i64).contains(&extra), || {
            format!("scheduled {want}, ran {ran} + cancelled {cancelled} + pending at shutdown {pending} ({periodic} periodic)")
        });
        let pending = pending - extra.max(0) as u64;
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, want);
        Books::bump(&b.delivered, ran);
        Books::bump(&b.failed, cancelled);
        Books::bump(&b.abandoned, pending);
        Books::bump(&b.injected, g.fault.fired() + g.periodic_fault.fired());
        let ledger = g.ledger.clone();
        drop(g);
        // The executor thread drops what it ran a moment later.
        let deadline = Instant::now() + Duration::from_secs(10);
        while ledger.live() != 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        b.balanced("timers", &ledger);
    }

    fn retire(&self, ctx: &mut Ctx) {
        let next = Self::build(
            self.rate,
            mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
            self.periodic_panics,
        );
        let g = self.cur.replace(next, ctx, |_| {});
        self.verify(g, ctx);
    }
}

impl Station for TimerStation {
    fn name(&self) -> &'static str {
        "timers"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 2 {
            ctx.doing("timers: recreate");
            return self.retire(ctx);
        }
        ctx.doing("timers: scheduling");
        let g = self.cur.get();
        for _ in 0..4 {
            let id = next_id();
            let t = g.ledger.track(id);
            let (ran, fault) = (g.ran.clone(), g.fault.clone());
            let delay = Duration::from_micros(ctx.rng.below(20_000));
            match g.service.schedule(
                move || {
                    ran.add(t.id());
                    fault.hit("timer callback");
                },
                delay,
            ) {
                Ok(timer) => {
                    g.scheduled.add(id);
                    lock(&g.once).push((id, timer));
                }
                Err(_) => Books::bump(&self.books.refused, 1),
            }
        }
        {
            let mut once = lock(&g.once);
            for _ in 0..2 {
                if once.is_empty() {
                    break;
                }
                let i = ctx.rng.below(once.len() as u64) as usize;
                let (id, timer) = once.swap_remove(i);
                if timer.cancel() {
                    g.cancelled.add(id);
                }
            }
            if once.len() > 2048 {
                once.drain(..1024);
            }
        }
        let mut periodic = lock(&g.periodic);
        if periodic.len() < 4 && ctx.rng.below(10) == 0 {
            let runs = Arc::new(AtomicU64::new(0));
            let runs_at_panic = Arc::new(AtomicU64::new(0));
            let panicked_at = Arc::new(Mutex::new(None));
            let (r, rp, pa, f) = (
                runs.clone(),
                runs_at_panic.clone(),
                panicked_at.clone(),
                g.periodic_fault.clone(),
            );
            let timer = g.service.schedule_every(
                move || {
                    let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                    if f.fails() {
                        rp.store(n, Ordering::SeqCst);
                        *lock(&pa) = Some(Instant::now());
                        panic!("{}: periodic timer callback", fault::INJECTED);
                    }
                },
                PERIOD,
                MissedTick::Skip,
            );
            if let Ok(timer) = timer {
                periodic.push(Periodic {
                    timer,
                    runs,
                    runs_at_panic,
                    panicked_at,
                });
            }
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        self.retire(ctx);
    }
}

// ------------------------------------------------------------ queues

/// A priority whose `Ord` may panic (a user callback).
struct Prio(u64, Arc<Fault>);

impl PartialEq for Prio {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Prio {}
impl PartialOrd for Prio {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Prio {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.1.hit("priority Ord");
        self.0.cmp(&o.0)
    }
}

struct QueueGen {
    pq: Mutex<PriorityQueue<Tracked, Prio, Growable>>,
    dq: Mutex<DelayQueue<Tracked, Growable>>,
    bq: BlockingDelayQueue<Tracked>,
    ord: Arc<Fault>,
    ledger: Arc<Ledger>,
    pushed: Print,
    popped: Print,
    inserted: Print,
    expired: Print,
    offered: Print,
    taken: Print,
    clock: AtomicU64,
}

struct QueueStation {
    books: Books,
    rate: u32,
    seed: u64,
    gens: AtomicU64,
    cur: Current<QueueGen>,
}

impl QueueStation {
    fn build(rate: u32, seed: u64) -> QueueGen {
        QueueGen {
            pq: Mutex::new(PriorityQueue::new()),
            dq: Mutex::new(DelayQueue::new()),
            bq: BlockingDelayQueue::new(),
            ord: rate_fault(rate / 8, seed),
            ledger: Ledger::new(),
            pushed: Print::default(),
            popped: Print::default(),
            inserted: Print::default(),
            expired: Print::default(),
            offered: Print::default(),
            taken: Print::default(),
            clock: AtomicU64::new(0),
        }
    }

    fn verify(&self, g: QueueGen) {
        let b = &self.books;
        g.ord.disarm();
        {
            let mut pq = lock(&g.pq);
            while let Some((t, _)) = pq.pop() {
                g.popped.add(t.id());
            }
            let mut dq = lock(&g.dq);
            while let Some(e) = dq.poll_expired(u64::MAX) {
                g.expired.add(e.value.id());
            }
        }
        for t in g.bq.close() {
            g.taken.add(t.id());
        }
        b.same(
            "pqueue",
            "pushed vs popped + removed",
            g.pushed.get(),
            g.popped.get(),
        );
        b.same(
            "delayq",
            "inserted vs expired + removed",
            g.inserted.get(),
            g.expired.get(),
        );
        b.same(
            "delayq",
            "offered vs taken + returned by close",
            g.offered.get(),
            g.taken.get(),
        );
        Books::bump(&b.generations, 1);
        Books::bump(
            &b.accepted,
            g.pushed.get().0 + g.inserted.get().0 + g.offered.get().0,
        );
        Books::bump(
            &b.delivered,
            g.popped.get().0 + g.expired.get().0 + g.taken.get().0,
        );
        Books::bump(&b.injected, g.ord.fired());
        let ledger = g.ledger.clone();
        drop(g);
        b.balanced("queues", &ledger);
    }
}

impl Station for QueueStation {
    fn name(&self) -> &'static str {
        "queues"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 3 {
            ctx.doing("queues: recreate");
            let next = Self::build(
                self.rate,
                mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
            );
            let g = self.cur.replace(next, ctx, |_| {});
            return self.verify(g);
        }
        let g = self.cur.get();
        let b = &self.books;
        ctx.doing("queues: priority queue");
        {
            let mut pq = lock(&g.pq);
            for _ in 0..8 {
                let id = next_id();
                let p = Prio(ctx.rng.below(1000), g.ord.clone());
                let t = g.ledger.track(id);
                let before = pq.len();
                match guarded(b, "pqueue", || {
                    pq.push(t, p);
                }) {
                    Some(()) => g.pushed.add(id),
                    // A panicking Ord: the push happened whole (the item
                    // is in) or not at all (the item was dropped).
                    None => {
                        let after = pq.len();
                        b.check("pqueue", after == before || after == before + 1, || {
                            format!("a panicking push took the length from {before} to {after}")
                        });
                        if after == before + 1 {
                            g.pushed.add(id);
                        }
                    }
                }
            }
            // A pop whose Ord panics must not lose the item it took.
            let pops = 4 + ctx.rng.below(8);
            for _ in 0..pops {
                let before = pq.len();
                match guarded(b, "pqueue", || pq.pop()) {
                    Some(Some((t, _))) => g.popped.add(t.id()),
                    Some(None) => break,
                    None => {
                        let after = pq.len();
                        b.check("pqueue", after == before, || {
                            format!("a panicking pop took the length from {before} to {after}: an item was lost")
                        });
                    }
                }
            }
        }
        ctx.doing("queues: delay queue");
        {
            let mut dq = lock(&g.dq);
            let now = g.clock.fetch_add(10, Ordering::Relaxed);
            for _ in 0..6 {
                let id = next_id();
                dq.insert_at(g.ledger.track(id), now + ctx.rng.below(100));
                g.inserted.add(id);
            }
            while let Some(e) = dq.poll_expired(now) {
                g.expired.add(e.value.id());
            }
        }
        ctx.doing("queues: blocking delay queue");
        for _ in 0..4 {
            let id = next_id();
            match g.bq.insert(
                g.ledger.track(id),
                Duration::from_micros(ctx.rng.below(500)),
            ) {
                Ok(()) => g.offered.add(id),
                Err(_) => Books::bump(&b.refused, 1),
            }
        }
        while let Ok(t) = g.bq.try_pop() {
            g.taken.add(t.id());
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        let next = Self::build(self.rate, self.seed);
        let g = self.cur.replace(next, ctx, |_| {});
        self.verify(g);
    }
}

// ------------------------------------------------------------ buffers

struct BufferGen {
    objects: Arc<ObjectPool<Tracked>>,
    bounded: ObjectPool<Tracked>,
    bytes: BufferPool,
    ledger: Arc<Ledger>,
    init: Arc<Fault>,
    reset: Arc<Fault>,
    in_use: AtomicUsize,
    gets: AtomicUsize,
}

struct BufferStation {
    books: Books,
    rate: u32,
    seed: u64,
    init_panics: bool,
    gens: AtomicU64,
    cur: Current<BufferGen>,
}

const BOUND: usize = 3;

impl BufferStation {
    fn build(rate: u32, seed: u64, init_panics: bool) -> BufferGen {
        let ledger = Ledger::new();
        let init = rate_fault(rate * 4, seed);
        let reset = rate_fault(rate * 4, mix(seed));
        let pool = |bound: Option<usize>, panics: bool| {
            let (l, i, r) = (ledger.clone(), init.clone(), reset.clone());
            // The bounded pool keeps one idle object, so `init` runs often.
            let idle = if bound.is_some() { 1 } else { 4 };
            let p = ObjectPool::new(idle, move || {
                if panics {
                    i.hit("object pool init");
                }
                l.track(next_id())
            })
            .with_reset(move |_| {
                r.hit("object pool reset");
            });
            match bound {
                Some(b) => p.with_bound(b),
                None => p,
            }
        };
        BufferGen {
            objects: Arc::new(pool(None, true)),
            bounded: pool(Some(BOUND), init_panics),
            bytes: BufferPool::builder().max_idle_per_class(8).build(),
            ledger,
            init,
            reset,
            in_use: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
        }
    }

    fn verify(&self, g: BufferGen) {
        let b = &self.books;
        let m = g.bytes.metrics();
        let gets = g.gets.load(Ordering::Relaxed);
        b.check("buffers", m.hits + m.misses == gets, || {
            format!(
                "buffer pool: hits {} + misses {} != gets {gets}",
                m.hits, m.misses
            )
        });
        let om = g.objects.metrics();
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, (om.hits + om.misses) as u64);
        Books::bump(&b.delivered, om.created as u64);
        Books::bump(&b.injected, g.init.fired() + g.reset.fired());
        let ledger = g.ledger.clone();
        drop(g);
        b.balanced("buffers", &ledger);
    }
}

impl Station for BufferStation {
    fn name(&self) -> &'static str {
        "buffers"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 3 {
            ctx.doing("buffers: recreate");
            let next = Self::build(
                self.rate,
                mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
                self.init_panics,
            );
            let g = self.cur.replace(next, ctx, |_| {});
            return self.verify(g);
        }
        let g = self.cur.get();
        let b = &self.books;
        ctx.doing("buffers: object pool");
        let mut held = Vec::new();
        for _ in 0..4 {
            if let Some(o) = guarded(b, "buffers", || g.objects.get_owned()) {
                held.push(o);
            }
        }
        // Reset panics as the objects come back (in this thread).
        for o in held {
            guarded(b, "buffers", || drop(o));
        }
        ctx.doing("buffers: bounded object pool (get may wait)");
        // Dropping the idle object makes the next get run `init`.
        g.bounded.trim();
        for _ in 0..2 {
            let got = guarded(b, "buffers", || {
                let o = g.bounded.get();
                let n = g.in_use.fetch_add(1, Ordering::SeqCst) + 1;
                b.check("buffers", n <= BOUND, || {
                    format!("{n} objects in use, bound {BOUND}")
                });
                thread::yield_now();
                g.in_use.fetch_sub(1, Ordering::SeqCst);
                o
            });
            if let Some(o) = got {
                guarded(b, "buffers", || drop(o));
            }
        }
        ctx.doing("buffers: byte buffers");
        for _ in 0..4 {
            let size = 1 << ctx.rng.below(16);
            let mut buf = g.bytes.get(size);
            g.gets.fetch_add(1, Ordering::Relaxed);
            buf.extend_from_slice(&[7u8; 64]);
            b.check("buffers", buf.capacity() >= size, || {
                format!("a buffer of {} for {size}", buf.capacity())
            });
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        let next = Self::build(self.rate, self.seed, self.init_panics);
        let g = self.cur.replace(next, ctx, |_| {});
        self.verify(g);
    }
}

// ------------------------------------------------------------ thread pool

/// Rides in a pool job: records whether the job ran or was dropped unrun.
struct JobToken {
    id: u64,
    ran: bool,
    prints: Arc<PoolPrints>,
}

impl Drop for JobToken {
    fn drop(&mut self) {
        if !self.ran {
            self.prints.unrun.add(self.id);
        }
    }
}

#[derive(Default)]
struct PoolPrints {
    submitted: Print,
    ran: Print,
    unrun: Print,
    reported: AtomicU64,
    injected_plain: AtomicU64,
}

struct PoolGen {
    pool: ThreadPool,
    prints: Arc<PoolPrints>,
    fault: Arc<Fault>,
    spawn_fault: Arc<Fault>,
    spawned: AtomicU64,
    joined: AtomicU64,
}

struct PoolStation {
    books: Books,
    rate: u32,
    seed: u64,
    gens: AtomicU64,
    cur: Current<PoolGen>,
}

impl PoolStation {
    fn build(rate: u32, seed: u64) -> PoolGen {
        let prints = Arc::new(PoolPrints::default());
        let p = prints.clone();
        let handler_fault = rate_fault(rate * 50, mix(seed ^ 5));
        PoolGen {
            pool: PoolBuilder::new()
                .min_workers(1)
                .max_workers(3)
                .keep_alive(Duration::from_millis(20))
                .queue_capacity(64)
                .thread_name("soak-pool")
                .panic_handler(move |_, payload| {
                    assert!(is_injected(&**payload));
                    p.reported.fetch_add(1, Ordering::Relaxed);
                    // The panic handler panics now and then too.
                    handler_fault.hit("pool panic handler");
                })
                .build()
                .unwrap(),
            prints,
            fault: rate_fault(rate, seed),
            spawn_fault: rate_fault(rate, mix(seed)),
            spawned: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }

    fn retire(&self, ctx: &mut Ctx, now: bool) {
        let next = Self::build(
            self.rate,
            mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
        );
        let g = self.cur.replace(next, ctx, |g| {
            // Closing first releases submitters blocked on a full queue.
            if now {
                // Run half of what came back, drop the rest, before waiting
                // for the other users: they may be joining these very jobs.
                for (i, job) in g.pool.shutdown_now().into_iter().enumerate() {
                    if i % 2 == 0 {
                        let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
                    }
                }
            } else {
                g.pool.shutdown();
            }
        });
        ctx.doing("pool: shutting down");
        g.pool.shutdown();
        let b = &self.books;
        let p = &g.prints;
        b.same(
            "pool",
            "submitted vs ran + dropped unrun",
            p.submitted.get(),
            plus(&[&p.ran, &p.unrun]),
        );
        let (reported, injected) = (
            p.reported.load(Ordering::Relaxed),
            p.injected_plain.load(Ordering::Relaxed),
        );
        // Jobs handed back by shutdown_now and run here panic here.
        let ok = if now {
            reported <= injected
        } else {
            reported == injected
        };
        b.check("pool", ok, || {
            format!("{reported} panics reported, {injected} injected")
        });
        let m = g.pool.metrics();
        b.check("pool", m.panicked as u64 >= reported, || {
            format!("metrics say {} panicked, {reported} reported", m.panicked)
        });
        let (spawned, joined) = (
            g.spawned.load(Ordering::Relaxed),
            g.joined.load(Ordering::Relaxed),
        );
        b.check("pool", spawned == joined, || {
            format!("{spawned} spawned, {joined} joined")
        });
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, p.submitted.get().0);
        Books::bump(&b.delivered, p.ran.get().0);
        Books::bump(&b.abandoned, p.unrun.get().0);
        Books::bump(&b.injected, g.fault.fired() + g.spawn_fault.fired());
    }
}

impl Station for PoolStation {
    fn name(&self) -> &'static str {
        "pool"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        let r = ctx.rng.below(1000);
        if r < 3 {
            ctx.doing("pool: shutdown and recreate");
            return self.retire(ctx, false);
        }
        if r < 5 {
            ctx.doing("pool: shutdown_now and recreate");
            return self.retire(ctx, true);
        }
        ctx.doing("pool: execute");
        let g = self.cur.get();
        let b = &self.books;
        for _ in 0..16 {
            let id = next_id();
            let mut token = JobToken {
                id,
                ran: false,
                prints: g.prints.clone(),
            };
            let fault = g.fault.clone();
            g.prints.submitted.add(id);
            let job = move || {
                token.ran = true;
                token.prints.ran.add(token.id);
                if fault.fails() {
                    token.prints.injected_plain.fetch_add(1, Ordering::Relaxed);
                    panic!("{}: pool job", fault::INJECTED);
                }
            };
            let r = if ctx.rng.below(2) == 0 {
                g.pool.execute(job).is_ok()
            } else {
                g.pool.try_execute(job).is_ok()
            };
            if !r {
                Books::bump(&b.refused, 1);
            }
        }
        ctx.doing("pool: spawn and join");
        let handles: Vec<_> = (0..4u64)
            .filter_map(|i| {
                let f = g.spawn_fault.clone();
                g.pool
                    .spawn(move || {
                        f.hit("spawned job");
                        i
                    })
                    .ok()
            })
            .collect();
        g.spawned.fetch_add(handles.len() as u64, Ordering::Relaxed);
        for (i, h) in handles.into_iter().enumerate() {
            let r = h.join();
            g.joined.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok(v) => b.check("pool", v == i as u64, || format!("spawn {i} returned {v}")),
                Err(JoinError::Panicked(p)) => b.check("pool", is_injected(&*p), || {
                    "a spawned job's real panic".into()
                }),
                Err(JoinError::Cancelled | JoinError::TimedOut) => {}
            }
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        self.retire(ctx, false);
    }
}

// ------------------------------------------------------------ batcher

#[derive(Default)]
struct BatchPrints {
    accepted: Print,
    delivered: Print,
    failed: Print,
}

struct BatchGen {
    batcher: Batcher<Tracked>,
    prints: Arc<BatchPrints>,
    ledger: Arc<Ledger>,
    handler: Arc<Fault>,
    weigher: Arc<Fault>,
}

struct BatchStation {
    books: Books,
    rate: u32,
    seed: u64,
    blocking_flush: bool,
    weigher_panics: bool,
    gens: AtomicU64,
    cur: Current<BatchGen>,
}

impl BatchStation {
    fn build(rate: u32, seed: u64, weigher_panics: bool) -> BatchGen {
        let prints = Arc::new(BatchPrints::default());
        let handler = rate_fault(rate * 10, seed);
        let weigher = rate_fault(if weigher_panics { rate } else { 0 }, mix(seed));
        let (p1, p2, h, w) = (
            prints.clone(),
            prints.clone(),
            handler.clone(),
            weigher.clone(),
        );
        let batcher = Batcher::builder::<&'static str>()
            .max_items(16)
            .max_bytes(4096, move |t: &Tracked| {
                w.hit("batch weigher");
                (t.id() % 512) as usize
            })
            .max_delay(Duration::from_micros(500))
            .queue_capacity(64)
            .flushers(2)
            .thread_name("soak-batch")
            .on_error(
                move |_e: BatchError<&'static str>, items: &mut Vec<Tracked>| {
                    for t in items.iter() {
                        p2.failed.add(t.id());
                    }
                },
            )
            .build(move |batch: &mut Vec<Tracked>| {
                if h.fails() {
                    return Err("injected failure");
                }
                h.hit("batch handler");
                for t in batch.iter() {
                    p1.delivered.add(t.id());
                }
                Ok(())
            })
            .unwrap();
        BatchGen {
            batcher,
            prints,
            ledger: Ledger::new(),
            handler,
            weigher,
        }
    }

    fn retire(&self, ctx: &mut Ctx) {
        let next = Self::build(
            self.rate,
            mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
            self.weigher_panics,
        );
        let g = self.cur.replace(next, ctx, |g| {
            ctx.doing("batch: close");
            g.batcher.close();
        });
        let b = &self.books;
        let p = &g.prints;
        b.same(
            "batch",
            "accepted vs delivered + failed",
            p.accepted.get(),
            plus(&[&p.delivered, &p.failed]),
        );
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, p.accepted.get().0);
        Books::bump(&b.delivered, p.delivered.get().0);
        Books::bump(&b.failed, p.failed.get().0);
        Books::bump(&b.injected, g.handler.fired() + g.weigher.fired());
        let ledger = g.ledger.clone();
        drop(g);
        b.balanced("batch", &ledger);
    }
}

impl Station for BatchStation {
    fn name(&self) -> &'static str {
        "batch"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 4 {
            ctx.doing("batch: close and recreate");
            return self.retire(ctx);
        }
        let g = self.cur.get();
        let b = &self.books;
        ctx.doing("batch: push");
        for _ in 0..16 {
            let id = next_id();
            let t = g.ledger.track(id);
            let r = match ctx.rng.below(3) {
                0 if self.blocking_flush => g.batcher.push(t).map_err(Into::into),
                0 | 1 => g.batcher.push_timeout(t, Duration::from_millis(1)),
                _ => g.batcher.try_push(t),
            };
            match r {
                Ok(()) => g.prints.accepted.add(id),
                Err(_) => Books::bump(&b.refused, 1),
            }
        }
        if ctx.rng.below(8) == 0 {
            ctx.doing("batch: flush");
            let before = g.prints.accepted.get().0;
            g.batcher.flush();
            let done = plus(&[&g.prints.delivered, &g.prints.failed]).0;
            if !g.batcher.is_closed() {
                b.check("batch", done >= before, || {
                    format!("flush returned with {done} of {before} items handled")
                });
            }
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        self.retire(ctx);
    }
}

// ------------------------------------------------------------ task queue

#[derive(Default)]
struct TaskPrints {
    posted: Print,
    handled: Print,
    failed: AtomicU64,
    panicked: AtomicU64,
    handler_failed: AtomicU64,
    handler_panicked: AtomicU64,
}

struct TaskGen {
    queue: TaskQueue<Tracked>,
    prints: Arc<TaskPrints>,
    ledger: Arc<Ledger>,
    fault: Arc<Fault>,
}

struct TaskStation {
    books: Books,
    rate: u32,
    seed: u64,
    blocking_flush: bool,
    gens: AtomicU64,
    cur: Current<TaskGen>,
}

impl TaskStation {
    fn build(rate: u32, seed: u64) -> TaskGen {
        let prints = Arc::new(TaskPrints::default());
        let fault = rate_fault(rate * 4, seed);
        let (p1, p2, f) = (prints.clone(), prints.clone(), fault.clone());
        let queue = TaskQueue::builder()
            .workers(2)
            .queue_capacity(64)
            .thread_name("soak-tasks")
            .on_error(move |e: TaskError<u64>| match e {
                TaskError::Failed(_) => {
                    p2.failed.fetch_add(1, Ordering::Relaxed);
                }
                TaskError::Panicked(p) => {
                    assert!(is_injected(&*p));
                    p2.panicked.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build(move |t: Tracked| {
                let id = t.id();
                p1.handled.add(id);
                if f.fails() {
                    p1.handler_failed.fetch_add(1, Ordering::Relaxed);
                    return Err(id);
                }
                if f.fails() {
                    p1.handler_panicked.fetch_add(1, Ordering::Relaxed);
                    panic!("{}: task handler", fault::INJECTED);
                }
                Ok(())
            })
            .unwrap();
        TaskGen {
            queue,
            prints,
            ledger: Ledger::new(),
            fault,
        }
    }

    fn retire(&self, ctx: &mut Ctx) {
        let next = Self::build(
            self.rate,
            mix(self.seed ^ self.gens.fetch_add(1, Ordering::Relaxed)),
        );
        let g = self.cur.replace(next, ctx, |g| {
            ctx.doing("tasks: close");
            g.queue.close();
        });
        let b = &self.books;
        let p = &g.prints;
        // Every posted value reached the handler exactly once...
        b.same(
            "tasks",
            "posted vs handed to the handler",
            p.posted.get(),
            p.handled.get(),
        );
        // ...and every failure and panic reached on_error.
        let (f, hf) = (
            p.failed.load(Ordering::Relaxed),
            p.handler_failed.load(Ordering::Relaxed),
        );
        let (pa, hp) = (
            p.panicked.load(Ordering::Relaxed),
            p.handler_panicked.load(Ordering::Relaxed),
        );
        b.check("tasks", f == hf && pa == hp, || {
            format!("on_error heard {f} failed / {pa} panicked, handler made {hf} / {hp}")
        });
        let m = g.queue.metrics();
        b.check(
            "tasks",
            m.pushed == m.handled + m.failed + m.panicked,
            || format!("metrics: {m:?}"),
        );
        Books::bump(&b.generations, 1);
        Books::bump(&b.accepted, p.posted.get().0);
        Books::bump(&b.delivered, p.handled.get().0 - f - pa);
        Books::bump(&b.failed, f + pa);
        Books::bump(&b.injected, g.fault.fired());
        let ledger = g.ledger.clone();
        drop(g);
        b.balanced("tasks", &ledger);
    }
}

impl Station for TaskStation {
    fn name(&self) -> &'static str {
        "tasks"
    }
    fn books(&self) -> &Books {
        &self.books
    }

    fn step(&self, ctx: &mut Ctx) {
        if ctx.rng.below(1000) < 4 {
            ctx.doing("tasks: close and recreate");
            return self.retire(ctx);
        }
        let g = self.cur.get();
        ctx.doing("tasks: push");
        for _ in 0..16 {
            let id = next_id();
            let t = g.ledger.track(id);
            let r = match ctx.rng.below(3) {
                0 if self.blocking_flush => g.queue.push(t).map_err(Into::into),
                0 | 1 => g.queue.push_timeout(t, Duration::from_millis(1)),
                _ => g.queue.try_push(t),
            };
            match r {
                Ok(()) => g.prints.posted.add(id),
                Err(_) => Books::bump(&self.books.refused, 1),
            }
        }
        if ctx.rng.below(8) == 0 {
            ctx.doing("tasks: flush");
            let before = g.prints.posted.get().0;
            g.queue.flush();
            let done = g.prints.handled.get().0;
            if !g.queue.is_closed() {
                self.books.check("tasks", done >= before, || {
                    format!("flush returned with {done} of {before} values handled")
                });
            }
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        self.retire(ctx);
    }
}

// ------------------------------------------------------------ heap

/// The system allocator, counting the bytes it has live: a leak shows here
/// exactly, where RSS also moves with the allocator's own caching.
struct Counting;

static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping; the returned pointers are `System`'s.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            HEAP_LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc`/`realloc` above with `layout`.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            HEAP_LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// glibc keeps up to eight malloc arenas per core and hands each new thread
/// one; the soak starts and ends thousands of threads (each ring, pool,
/// batcher and timer generation has its own), and what the arenas cache
/// then drifts upwards with no live data behind it (the `heap` column
/// stays flat). Two arenas keep RSS a measure of what latchfree holds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_ARENA_MAX: i32 = -8;
    // SAFETY: `mallopt` is glibc's, called before any other thread exists,
    // with a parameter glibc defines; it only tunes the allocator.
    unsafe {
        mallopt(M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// glibc also keeps the stacks of exited threads for reuse (up to 40 MiB),
/// and their touched pages stay resident: with thousands of short-lived
/// threads RSS then follows the peak number of threads alive at once, not
/// what latchfree holds (measured: +19.7% RSS over 10 minutes with the
/// cache, +3.5% without, the counted live heap flat in both). The cache is
/// a start-up tunable only, so the soak runs itself again with it off;
/// if that fails it runs as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn without_thread_stack_cache() {
    const NAME: &str = "glibc.pthread.stack_cache_size";
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains(NAME) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let value = if tunables.is_empty() {
        format!("{NAME}=0")
    } else {
        format!("{tunables}:{NAME}=0")
    };
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", value)
        .status();
    if let Ok(status) = status {
        std::process::exit(status.code().unwrap_or(1));
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn without_thread_stack_cache() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_malloc() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's `malloc_trim` only returns free memory to the system;
    // it is thread-safe and takes no pointers.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_malloc() {}

fn heap_live() -> u64 {
    HEAP_LIVE.load(Ordering::Relaxed) as u64
}

// ------------------------------------------------------------ main

/// Resident set size in bytes, from `/proc/self/statm`, after glibc has
/// handed its free lists back to the system (`malloc_trim`): what stays is
/// what the process holds, not what the allocator keeps for later.
fn rss() -> u64 {
    trim_malloc();
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn table(stations: &[Arc<dyn Station>]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:8} {:>5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>7} {:>6}",
        "station",
        "gens",
        "accepted",
        "delivered",
        "failed",
        "abandoned",
        "refused",
        "injected",
        "checks",
        "bad"
    );
    for st in stations {
        let b = st.books();
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "{:8} {:>5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>7} {:>6}",
            st.name(),
            r(&b.generations),
            r(&b.accepted),
            r(&b.delivered),
            r(&b.failed),
            r(&b.abandoned),
            r(&b.refused),
            r(&b.injected),
            r(&b.checks),
            r(&b.mismatches)
        );
    }
    s
}

fn main() {
    without_thread_stack_cache();
    limit_malloc_arenas();
    let o = Options::parse();
    quiet_injected_panics();
    println!(
        "soak: {:?} on {} threads, seed {} (replay with --seed {}), {} injected panics per million callback calls",
        o.run, o.threads, o.seed, o.seed, o.rate
    );
    if !o.avoid.is_empty() {
        println!("soak: avoiding {}", o.avoid.join(", "));
    }
    let seed = o.seed;
    let stations: Vec<Arc<dyn Station>> = vec![
        Arc::new(RingStation::new("ring-sp", false, o.rate, mix(seed ^ 11))),
        Arc::new(RingStation::new("ring-mp", true, o.rate, mix(seed ^ 12))),
        Arc::new(MapStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 13),
            threads: o.threads + 1,
            gens: AtomicU64::new(1),
            cur: Current::new(MapStation::build(o.threads + 1, o.rate, mix(seed ^ 13))),
        }),
        Arc::new(WheelStation {
            books: Books::default(),
            rate: if o.allows("wheel-sink-panic") {
                o.rate
            } else {
                0
            },
            seed: mix(seed ^ 14),
            gens: AtomicU64::new(1),
            cur: Current::new(WheelStation::build(
                if o.allows("wheel-sink-panic") {
                    o.rate
                } else {
                    0
                },
                mix(seed ^ 14),
            )),
        }),
        Arc::new(TimerStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 15),
            periodic_panics: o.allows("timer-periodic-panic"),
            gens: AtomicU64::new(1),
            cur: Current::new(TimerStation::build(
                o.rate,
                mix(seed ^ 15),
                o.allows("timer-periodic-panic"),
            )),
        }),
        Arc::new(QueueStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 16),
            gens: AtomicU64::new(1),
            cur: Current::new(QueueStation::build(o.rate, mix(seed ^ 16))),
        }),
        Arc::new(BufferStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 17),
            init_panics: o.allows("object-pool-init-panic"),
            gens: AtomicU64::new(1),
            cur: Current::new(BufferStation::build(
                o.rate,
                mix(seed ^ 17),
                o.allows("object-pool-init-panic"),
            )),
        }),
        Arc::new(PoolStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 18),
            gens: AtomicU64::new(1),
            cur: Current::new(PoolStation::build(o.rate, mix(seed ^ 18))),
        }),
        Arc::new(BatchStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 19),
            blocking_flush: o.allows("batch-flush-blocking"),
            weigher_panics: o.allows("batch-weigher-panic"),
            gens: AtomicU64::new(1),
            cur: Current::new(BatchStation::build(
                o.rate,
                mix(seed ^ 19),
                o.allows("batch-weigher-panic"),
            )),
        }),
        Arc::new(TaskStation {
            books: Books::default(),
            rate: o.rate,
            seed: mix(seed ^ 20),
            blocking_flush: o.allows("batch-flush-blocking"),
            gens: AtomicU64::new(1),
            cur: Current::new(TaskStation::build(o.rate, mix(seed ^ 20))),
        }),
    ];

    let stations: Vec<Arc<dyn Station>> = stations
        .into_iter()
        .filter(|s| o.only.is_empty() || o.only.iter().any(|n| n == s.name()))
        .collect();
    if stations.is_empty() {
        usage("--stations selected none of: ring-sp ring-mp map wheel timers queues buffers pool batch tasks");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let beats: Vec<Arc<Beat>> = (0..=o.threads).map(|_| Arc::new(Beat::new())).collect();

    // The watchdog: one operation stuck for too long ends the run.
    {
        let (beats, stations, limit) = (beats.clone(), stations.clone(), o.watchdog);
        thread::Builder::new()
            .name("soak-watchdog".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_millis(500));
                let stuck = beats.iter().any(|b| lock(&b.what).1.elapsed() > limit);
                if stuck {
                    eprintln!("\nWATCHDOG: an operation has run for more than {limit:?}; threads:");
                    for (i, b) in beats.iter().enumerate() {
                        let w = lock(&b.what);
                        let who = if i < beats.len() - 1 {
                            format!("driver {i}")
                        } else {
                            "main".into()
                        };
                        eprintln!("  {who:9} {:>8.1} s  {}", w.1.elapsed().as_secs_f64(), w.0);
                    }
                    eprintln!("{}", table(&stations));
                    std::process::exit(3);
                }
            })
            .expect("start the watchdog");
    }

    let start = Instant::now();
    let drivers: Vec<_> = (0..o.threads)
        .map(|me| {
            let (stations, stop, ops, beat) = (
                stations.clone(),
                stop.clone(),
                ops.clone(),
                beats[me].clone(),
            );
            thread::Builder::new()
                .name(format!("soak-driver-{me}"))
                .spawn(move || {
                    let mut ctx = Ctx {
                        me,
                        rng: Rng::new(mix(seed ^ (100 + me as u64))),
                        beat,
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let st = &stations[ctx.rng.below(stations.len() as u64) as usize];
                        let books = st.books();
                        guarded(books, st.name(), || st.step(&mut ctx));
                        ctx.doing("between operations");
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                    ctx.doing("done");
                })
                .expect("start a driver")
        })
        .collect();

    let main_beat = beats[o.threads].clone();
    let set_main = |what: &str| {
        let mut b = lock(&main_beat.what);
        b.0 = what.to_string();
        b.1 = Instant::now();
    };
    // RSS is sampled every 100 ms; the mark is the median of the samples
    // in a window starting after the first minute (or the first 20% of a
    // short run), the end the median of the last window, so one sample
    // caught in the middle of an epoch collection or a pool's thread
    // start decides nothing.
    let mark_at = if o.run >= Duration::from_secs(300) {
        Duration::from_secs(60)
    } else {
        o.run / 5
    };
    let window = (o.run / 10).min(Duration::from_secs(20));
    let report_every = if o.run >= Duration::from_secs(300) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(5)
    };
    let (mut mark_samples, mut end_samples) = (Vec::new(), Vec::new());
    let (mut mark_heap, mut end_heap) = (Vec::new(), Vec::new());
    let mut next_report = report_every;
    let mut next_sample = Duration::ZERO;
    loop {
        set_main("sleeping");
        let el = start.elapsed();
        if el >= o.run {
            break;
        }
        if el >= next_sample {
            next_sample += Duration::from_millis(100);
            if el >= mark_at && el < mark_at + window {
                mark_samples.push(rss());
                mark_heap.push(heap_live());
            }
            if el >= o.run.saturating_sub(window) {
                end_samples.push(rss());
                end_heap.push(heap_live());
            }
        }
        if el >= next_report {
            next_report += report_every;
            println!(
                "soak: {:>5.0} s  {} ops  RSS {:.1} MiB  heap {:.1} MiB  mismatches {}",
                el.as_secs_f64(),
                ops.load(Ordering::Relaxed),
                mib(rss()),
                mib(heap_live()),
                stations
                    .iter()
                    .map(|s| s.books().mismatches.load(Ordering::Relaxed))
                    .sum::<u64>()
            );
        }
        thread::sleep(Duration::from_millis(20).min(o.run.saturating_sub(el)));
    }
    stop.store(true, Ordering::Relaxed);
    set_main("joining the drivers");
    for d in drivers {
        d.join().expect("a driver thread died");
    }
    let median = |v: &mut Vec<u64>, now: u64| {
        if v.is_empty() {
            v.push(now);
        }
        v.sort_unstable();
        v[v.len() / 2]
    };
    let end_rss = median(&mut end_samples, rss());
    let mark = median(&mut mark_samples, rss());
    let (heap_mark, heap_end) = (
        median(&mut mark_heap, heap_live()),
        median(&mut end_heap, heap_live()),
    );

    // Retire every structure and check its last generation.
    let mut ctx = Ctx {
        me: o.threads,
        rng: Rng::new(seed),
        beat: main_beat.clone(),
    };
    for st in &stations {
        set_main(&format!("finishing {}", st.name()));
        let books = st.books();
        guarded(books, st.name(), || st.finish(&mut ctx));
    }
    set_main("report");

    println!("\n{}", table(&stations));
    let bad: u64 = stations
        .iter()
        .map(|s| s.books().mismatches.load(Ordering::Relaxed))
        .sum();
    let growth = end_rss as f64 / mark.max(1) as f64 - 1.0;
    println!(
        "ops {}  RSS (medians over {:.0} s) after {:.0} s {:.1} MiB, at the end {:.1} MiB ({:+.1}%)  seed {}",
        ops.load(Ordering::Relaxed),
        window.as_secs_f64(),
        mark_at.as_secs_f64(),
        mib(mark),
        mib(end_rss),
        growth * 100.0,
        seed
    );
    println!(
        "live heap (medians, the counting allocator): after {:.0} s {:.2} MiB, at the end {:.2} MiB",
        mark_at.as_secs_f64(),
        mib(heap_mark),
        mib(heap_end)
    );
    let mut failed = false;
    if bad > 0 {
        println!("FAILED: {bad} mismatches (seed {seed})");
        failed = true;
    }
    // Flat means no growth (a drop is memory returned, no leak). The live
    // heap is exact. RSS also carries the allocator's warm-up: a short run
    // takes its mark after a few seconds, before the allocator has settled,
    // so it gets an absolute slack; a run of five minutes or more (its mark
    // after the first minute) is held to 10%, as the issue asks.
    let rss_slack: u64 = if o.run >= Duration::from_secs(300) {
        0
    } else {
        1 << 20
    };
    const HEAP_SLACK: u64 = 256 << 10;
    if end_rss > mark + mark / 10 + rss_slack {
        println!(
            "FAILED: RSS grew {:+.1}% since the mark (limit 10% + {} KiB)",
            growth * 100.0,
            rss_slack >> 10
        );
        failed = true;
    }
    if heap_end > heap_mark + heap_mark / 10 + HEAP_SLACK {
        println!(
            "FAILED: the live heap grew from {:.2} to {:.2} MiB (limit 10% + 256 KiB)",
            mib(heap_mark),
            mib(heap_end)
        );
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
    println!("soak passed");
}
