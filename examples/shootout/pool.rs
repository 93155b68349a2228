//! Thread pool against `threadpool`, `rayon::spawn` and crossbeam-channel
//! workers: 1M no-op jobs submitted then joined (`noop_1M`: a job that
//! captures nothing and counts itself on its thread's own cache line, so
//! the row measures the pools' hand-off), the same with a job that clones
//! an `Arc` and adds to one shared counter (`shared_count_1M`: two cache
//! line transfers per job that every pool pays, the `noop_1M` of earlier
//! runs), 100k jobs of ~1 µs work, and the CPU an idle pool burns serving
//! one job per millisecond for 2 s.
//! Every pool has 2 workers (the machine's cores) and one thread submits.
//! The throughput scenarios interleave the pools over `--rounds` rounds
//! (default 5; a fresh pool each round, warmed with 1000 jobs) and report
//! the median with min–max; each pass checks that every job ran before its
//! time counts. The load average is noted before and after.
//!
//! Each pool is handed the job's closure itself, as a user's call would
//! hand it (`pool.execute(move || ...)`), and stores it its own way:
//! `threadpool`, `rayon` and the crossbeam-channel workers box it, the
//! latchfree pool keeps a small closure in its queue slot.
//!
//! Floors, measured in the same run: for the no-op jobs, the same jobs
//! handed through a wait-free SPSC ring (`rtrb`) to one busy-spinning
//! consumer, boxed (`floor_boxed`: the cheapest hand-off of a boxed job to
//! another thread, so no pool that boxes can beat it by much) and unboxed
//! (`floor_unboxed`: the closure itself in the ring's slot); for idle CPU, the submitting loop with no
//! pool (it runs each job itself), whose cost is then subtracted to give
//! each pool's own share (`pool_cpu_percent`), and `wake_floor`: one
//! worker thread unparked by each submit (one wake-up per job is the least
//! any pool that runs jobs on another thread must pay).

// Host-only code: std paths are fine here.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use crate::report::{Better, Report};
use crossbeam_utils::CachePadded;
use latchfree::pool::ThreadPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const WORKERS: usize = 2;

static ROUNDS: AtomicUsize = AtomicUsize::new(5);

/// Sets the section's interleaved rounds (`--rounds`, shared with the
/// ring section).
pub fn configure(rounds: usize) {
    ROUNDS.store(rounds.max(1), Ordering::Relaxed);
}

fn rounds() -> usize {
    ROUNDS.load(Ordering::Relaxed)
}

/// `/proc/loadavg`'s first three fields, or "unknown".
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// A pool under test: submit a job (the closure itself; the pool stores
/// it as it would a user's), wait for all submitted jobs.
trait Pool {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F);
    fn join(&self, done: &dyn Fn() -> usize, n: usize);
}

/// Every pool under test, so the generic `submit` can be called on any
/// of them (a `dyn Pool` could only take a boxed closure).
enum AnyPool {
    Inline(Inline),
    WakeFloor(WakeFloor),
    Latchfree(Latchfree),
    Tp(Tp),
    Rayon(Rayon),
    Channel(Channel),
}

macro_rules! each_pool {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyPool::Inline($p) => $e,
            AnyPool::WakeFloor($p) => $e,
            AnyPool::Latchfree($p) => $e,
            AnyPool::Tp($p) => $e,
            AnyPool::Rayon($p) => $e,
            AnyPool::Channel($p) => $e,
        }
    };
}

impl Pool for AnyPool {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        each_pool!(self, p => p.submit(f))
    }
    fn join(&self, done: &dyn Fn() -> usize, n: usize) {
        each_pool!(self, p => p.join(done, n))
    }
}

struct Latchfree(ThreadPool);
impl Pool for Latchfree {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.execute(f).unwrap();
    }
    fn join(&self, _: &dyn Fn() -> usize, _: usize) {
        self.0.wait_idle().unwrap();
    }
}

struct Tp(threadpool::ThreadPool);
impl Pool for Tp {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.execute(f);
    }
    fn join(&self, _: &dyn Fn() -> usize, _: usize) {
        self.0.join();
    }
}

struct Rayon(rayon::ThreadPool);
impl Pool for Rayon {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.spawn(f);
    }
    fn join(&self, done: &dyn Fn() -> usize, n: usize) {
        wait_count(done, n);
    }
}

struct Channel {
    tx: Option<crossbeam_channel::Sender<Box<dyn FnOnce() + Send + 'static>>>,
    threads: Vec<thread::JoinHandle<()>>,
}
impl Channel {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Box<dyn FnOnce() + Send>>(65_536);
        let threads = (0..WORKERS)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    for f in rx {
                        f();
                    }
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            threads,
        }
    }
}
impl Pool for Channel {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        // A channel of jobs carries one type: boxed, as its users do.
        self.tx.as_ref().unwrap().send(Box::new(f)).unwrap();
    }
    fn join(&self, done: &dyn Fn() -> usize, n: usize) {
        wait_count(done, n);
    }
}
impl Drop for Channel {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

fn wait_count(done: &dyn Fn() -> usize, n: usize) {
    while done() < n {
        thread::sleep(Duration::from_micros(50));
    }
}

/// No pool at all: the submitter runs each job itself. The floor for the
/// idle-CPU scenario (what the submitting loop costs by itself).
struct Inline;
impl Pool for Inline {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        f();
    }
    fn join(&self, done: &dyn Fn() -> usize, n: usize) {
        wait_count(done, n);
    }
}

/// The least any pool can do per sparse job: one worker thread that parks
/// when its queue is empty and is unparked by each submit (a mutex-guarded
/// queue; one wake-up per job, no spinning). The floor for the pool's own
/// share of idle CPU.
type JobQueue = std::sync::Mutex<std::collections::VecDeque<Box<dyn FnOnce() + Send>>>;

struct WakeFloor {
    q: Arc<JobQueue>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    worker: Option<thread::JoinHandle<()>>,
}
impl WakeFloor {
    fn new() -> Self {
        let q: Arc<JobQueue> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (q2, stop2) = (q.clone(), stop.clone());
        let worker = thread::spawn(move || loop {
            let job = q2.lock().unwrap().pop_front();
            match job {
                Some(f) => f(),
                None if stop2.load(Ordering::Acquire) => return,
                None => thread::park(),
            }
        });
        Self {
            q,
            stop,
            worker: Some(worker),
        }
    }
}
impl Pool for WakeFloor {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.q.lock().unwrap().push_back(Box::new(f));
        if let Some(w) = &self.worker {
            w.thread().unpark();
        }
    }
    fn join(&self, done: &dyn Fn() -> usize, n: usize) {
        wait_count(done, n);
    }
}
impl Drop for WakeFloor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(w) = self.worker.take() {
            w.thread().unpark();
            w.join().unwrap();
        }
    }
}

fn pools() -> Vec<(&'static str, AnyPool)> {
    vec![
        ("floor", AnyPool::Inline(Inline)),
        ("wake_floor", AnyPool::WakeFloor(WakeFloor::new())),
        (
            "latchfree",
            AnyPool::Latchfree(Latchfree(
                ThreadPool::builder()
                    .min_workers(WORKERS)
                    .max_workers(WORKERS)
                    .queue_capacity(65_536)
                    .build()
                    .unwrap(),
            )),
        ),
        (
            "threadpool",
            AnyPool::Tp(Tp(threadpool::ThreadPool::new(WORKERS))),
        ),
        (
            "rayon::spawn",
            AnyPool::Rayon(Rayon(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(WORKERS)
                    .build()
                    .unwrap(),
            )),
        ),
        ("crossbeam-channel", AnyPool::Channel(Channel::new())),
    ]
}

fn spin_work(iters: u32) -> u64 {
    let mut x = 1u64;
    for i in 0..iters {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(i as u64);
        std::hint::black_box(x);
    }
    x
}

/// Iterations of `spin_work` that take about 1 µs here.
fn calibrate() -> u32 {
    let n = 1_000_000u32;
    let t = Instant::now();
    std::hint::black_box(spin_work(n));
    let per_iter = t.elapsed().as_nanos() as f64 / n as f64;
    (1000.0 / per_iter.max(0.01)) as u32
}

/// A hand-off floor for no-op jobs (module docs): one timed pass of `n`
/// jobs made by `make` (the job boxed or as it is), in jobs per second.
fn spsc_floor<F, M>(n: usize, make: M) -> f64
where
    F: FnOnce() + Send + 'static,
    M: Fn() -> F,
{
    let (mut tx, mut rx) = rtrb::RingBuffer::<F>::new(65_536);
    let consumer = thread::spawn(move || {
        let mut got = 0;
        while got < n {
            match rx.pop() {
                Ok(f) => {
                    f();
                    got += 1;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    let t = Instant::now();
    for _ in 0..n {
        let mut f = make();
        while let Err(rtrb::PushError::Full(back)) = tx.push(f) {
            f = back;
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap();
    n as f64 / t.elapsed().as_secs_f64()
}

/// The job the `shared_count` and `work` scenarios submit: `iters` of
/// `spin_work`, then one count in `done` (through a clone of its `Arc`).
/// The closure itself (16 bytes: the `Arc` and the count), as a user would
/// write it. Cloning the `Arc` on the submitting thread and counting and
/// dropping it on a worker move one cache line between the cores twice
/// per job, whatever the pool does.
fn job(done: &Arc<AtomicUsize>, iters: u32) -> impl FnOnce() + Send + 'static {
    let d = done.clone();
    move || {
        if iters > 0 {
            std::hint::black_box(spin_work(iters));
        }
        d.fetch_add(1, Ordering::Release);
    }
}

/// Threads that can count no-op jobs; more than the section ever starts.
const COUNTERS: usize = 256;

/// Where each thread counts the no-op jobs it ran: a counter of its own on
/// a cache line of its own, so a job touches no line another core uses.
static RAN: [CachePadded<AtomicUsize>; COUNTERS] =
    [const { CachePadded::new(AtomicUsize::new(0)) }; COUNTERS];
static NEXT_COUNTER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_COUNTER: usize = NEXT_COUNTER.fetch_add(1, Ordering::Relaxed) % COUNTERS;
}

/// No-op jobs run so far, by every thread.
fn ran_total() -> usize {
    RAN.iter().map(|c| c.load(Ordering::Acquire)).sum()
}

/// The `noop` scenario's job: it captures nothing and counts itself in
/// its thread's own counter, so what it costs is the pool's hand-off.
fn noop_job() -> impl FnOnce() + Send + 'static {
    || {
        MY_COUNTER.with(|&i| RAN[i].fetch_add(1, Ordering::Release));
    }
}

/// Which job a throughput scenario submits.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `noop_job`: no line shared per job.
    Noop,
    /// `job`: one shared counter and `Arc`, `iters` of work.
    Shared(u32),
}

/// One timed pass of `n` jobs of `kind` through a fresh pool `name`
/// (warmed up with 1000 jobs first), in jobs per second; every job is
/// checked to have run before the time counts.
fn one_pass(name: &str, p: &AnyPool, n: usize, kind: Kind) -> f64 {
    let warm = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        p.submit(job(&warm, 0));
    }
    p.join(&|| warm.load(Ordering::Acquire), 1000);
    assert_eq!(
        warm.load(Ordering::Acquire),
        1000,
        "{name} lost warm-up jobs"
    );
    let done = Arc::new(AtomicUsize::new(0));
    let base = ran_total();
    let count = || match kind {
        Kind::Noop => ran_total() - base,
        Kind::Shared(_) => done.load(Ordering::Acquire),
    };
    let t = Instant::now();
    match kind {
        Kind::Noop => {
            for _ in 0..n {
                p.submit(noop_job());
            }
        }
        Kind::Shared(iters) => {
            for _ in 0..n {
                p.submit(job(&done, iters));
            }
        }
    }
    p.join(&count, n);
    let e = t.elapsed();
    assert_eq!(count(), n, "{name} lost jobs");
    n as f64 / e.as_secs_f64()
}

/// `n` jobs from one submitting thread into each pool (2 workers each),
/// the pools interleaved over the rounds (each round builds every pool
/// afresh, in the same order, and drops it before the next), plus the SPSC
/// floor for no-op jobs. Rows are the median with min–max.
fn throughput(r: &mut Report, scenario: &str, n: usize, kind: Kind) {
    let mut samples: Vec<(&'static str, Vec<f64>)> = Vec::new();
    for _ in 0..rounds() {
        // The inline "floor" is not a pool: it would only show the cost of
        // a boxed call, so it is left out of the throughput rows.
        for (name, p) in pools()
            .into_iter()
            .filter(|p| p.0 != "floor" && p.0 != "wake_floor")
        {
            let v = one_pass(name, &p, n, kind);
            drop(p);
            push_sample(&mut samples, name, v);
        }
        match kind {
            Kind::Noop => {
                type Boxed = Box<dyn FnOnce() + Send + 'static>;
                let base = ran_total();
                let boxed = spsc_floor(n, || Box::new(noop_job()) as Boxed);
                push_sample(&mut samples, "floor_boxed", boxed);
                push_sample(&mut samples, "floor_unboxed", spsc_floor(n, noop_job));
                assert_eq!(ran_total() - base, 2 * n, "a floor lost jobs");
            }
            Kind::Shared(0) => {
                type Boxed = Box<dyn FnOnce() + Send + 'static>;
                let done = Arc::new(AtomicUsize::new(0));
                let boxed = spsc_floor(n, || Box::new(job(&done, 0)) as Boxed);
                push_sample(&mut samples, "floor_boxed", boxed);
                push_sample(
                    &mut samples,
                    "floor_unboxed",
                    spsc_floor(n, || job(&done, 0)),
                );
                assert_eq!(done.load(Ordering::Acquire), 2 * n, "a floor lost jobs");
            }
            Kind::Shared(_) => {}
        }
    }
    for (name, s) in &samples {
        r.add_rounds("pool", scenario, name, "jobs_per_sec", s, Better::Higher);
    }
}

fn push_sample(samples: &mut Vec<(&'static str, Vec<f64>)>, name: &'static str, v: f64) {
    match samples.iter_mut().find(|s| s.0 == name) {
        Some(s) => s.1.push(v),
        None => samples.push((name, vec![v])),
    }
}

/// CPU time of every thread of this process, in ns (Linux schedstat).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let path = t.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(path).unwrap_or_default();
        total += s
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

fn idle_cpu(r: &mut Report) {
    let secs = 2.0;
    let mut floor = None;
    for (name, p) in pools() {
        let done = Arc::new(AtomicUsize::new(0));
        thread::sleep(Duration::from_millis(50));
        let Some(c0) = process_cpu_ns() else {
            r.note("pool: no /proc schedstat; idle CPU not measured");
            return;
        };
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed().as_secs_f64() < secs {
            let d = done.clone();
            p.submit(move || {
                d.fetch_add(1, Ordering::Release);
            });
            n += 1;
            thread::sleep(Duration::from_millis(1));
        }
        p.join(&|| done.load(Ordering::Acquire), n);
        let wall = t.elapsed();
        let c1 = process_cpu_ns().unwrap_or(c0);
        let pct = (c1 - c0) as f64 / wall.as_nanos() as f64 * 100.0;
        r.add(
            "pool",
            "idle_1_job_per_ms_2s",
            name,
            "cpu_percent",
            pct,
            Better::Lower,
        );
        // The pool's own share: what the same loop costs without a pool
        // ("floor", measured first) taken off.
        match floor {
            None => floor = Some(pct),
            Some(f) => r.add(
                "pool",
                "idle_1_job_per_ms_2s",
                name,
                "pool_cpu_percent",
                (pct - f).max(0.0),
                Better::Lower,
            ),
        }
        drop(p);
    }
}

pub fn run(r: &mut Report) {
    r.note(&format!(
        "pool: thread pool vs threadpool, rayon::spawn, crossbeam-channel workers: \
         1 submitting thread, {WORKERS} workers per pool, {} cores; throughput rows are \
         the median (min–max) of {} interleaved rounds; load average {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        rounds(),
        loadavg()
    ));
    throughput(r, "noop_1M", 1_000_000, Kind::Noop);
    throughput(r, "shared_count_1M", 1_000_000, Kind::Shared(0));
    throughput(r, "work_1us_100k", 100_000, Kind::Shared(calibrate()));
    idle_cpu(r);
    r.note(&format!(
        "pool: load average after the section {}",
        loadavg()
    ));
}
