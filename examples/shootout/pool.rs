//! Thread pool against `threadpool`, `rayon::spawn` and crossbeam-channel
//! workers: 1M no-op jobs submitted then joined, 100k jobs of ~1 µs work,
//! and the CPU an idle pool burns serving one job per millisecond for 2 s.
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
    fn join(&self, done: &AtomicUsize, n: usize);
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
    fn join(&self, done: &AtomicUsize, n: usize) {
        each_pool!(self, p => p.join(done, n))
    }
}

struct Latchfree(ThreadPool);
impl Pool for Latchfree {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.execute(f).unwrap();
    }
    fn join(&self, _: &AtomicUsize, _: usize) {
        self.0.wait_idle().unwrap();
    }
}

struct Tp(threadpool::ThreadPool);
impl Pool for Tp {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.execute(f);
    }
    fn join(&self, _: &AtomicUsize, _: usize) {
        self.0.join();
    }
}

struct Rayon(rayon::ThreadPool);
impl Pool for Rayon {
    fn submit<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.spawn(f);
    }
    fn join(&self, done: &AtomicUsize, n: usize) {
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
    fn join(&self, done: &AtomicUsize, n: usize) {
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

fn wait_count(done: &AtomicUsize, n: usize) {
    while done.load(Ordering::Acquire) < n {
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
    fn join(&self, done: &AtomicUsize, n: usize) {
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
    fn join(&self, done: &AtomicUsize, n: usize) {
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
    M: Fn(&Arc<AtomicUsize>) -> F,
{
    let (mut tx, mut rx) = rtrb::RingBuffer::<F>::new(65_536);
    let done = Arc::new(AtomicUsize::new(0));
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
        let mut f = make(&done);
        while let Err(rtrb::PushError::Full(back)) = tx.push(f) {
            f = back;
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap();
    let e = t.elapsed();
    assert_eq!(done.load(Ordering::Acquire), n, "floor lost jobs");
    n as f64 / e.as_secs_f64()
}

/// The job every throughput scenario submits: `iters` of `spin_work`,
/// then one count in `done` (through a clone of its `Arc`). The closure
/// itself (16 bytes: the `Arc` and the count), as a user would write it.
fn job(done: &Arc<AtomicUsize>, iters: u32) -> impl FnOnce() + Send + 'static {
    let d = done.clone();
    move || {
        if iters > 0 {
            std::hint::black_box(spin_work(iters));
        }
        d.fetch_add(1, Ordering::Release);
    }
}

/// One timed pass of `n` jobs through a fresh pool `name` (warmed up with
/// 1000 jobs first), in jobs per second; every job is checked to have run
/// before the time counts.
fn one_pass(name: &str, p: &AnyPool, n: usize, iters: u32) -> f64 {
    let warm = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        p.submit(job(&warm, 0));
    }
    p.join(&warm, 1000);
    assert_eq!(
        warm.load(Ordering::Acquire),
        1000,
        "{name} lost warm-up jobs"
    );
    let done = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    for _ in 0..n {
        p.submit(job(&done, iters));
    }
    p.join(&done, n);
    let e = t.elapsed();
    assert_eq!(done.load(Ordering::Acquire), n, "{name} lost jobs");
    n as f64 / e.as_secs_f64()
}

/// `n` jobs from one submitting thread into each pool (2 workers each),
/// the pools interleaved over the rounds (each round builds every pool
/// afresh, in the same order, and drops it before the next), plus the SPSC
/// floor for no-op jobs. Rows are the median with min–max.
fn throughput(r: &mut Report, scenario: &str, n: usize, iters: u32) {
    let mut samples: Vec<(&'static str, Vec<f64>)> = Vec::new();
    for _ in 0..rounds() {
        // The inline "floor" is not a pool: it would only show the cost of
        // a boxed call, so it is left out of the throughput rows.
        for (name, p) in pools()
            .into_iter()
            .filter(|p| p.0 != "floor" && p.0 != "wake_floor")
        {
            let v = one_pass(name, &p, n, iters);
            drop(p);
            push_sample(&mut samples, name, v);
        }
        if iters == 0 {
            type Boxed = Box<dyn FnOnce() + Send + 'static>;
            let boxed = spsc_floor(n, |d| Box::new(job(d, iters)) as Boxed);
            push_sample(&mut samples, "floor_boxed", boxed);
            push_sample(
                &mut samples,
                "floor_unboxed",
                spsc_floor(n, |d| job(d, iters)),
            );
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
        p.join(&done, n);
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
    throughput(r, "noop_1M", 1_000_000, 0);
    throughput(r, "work_1us_100k", 100_000, calibrate());
    idle_cpu(r);
    r.note(&format!(
        "pool: load average after the section {}",
        loadavg()
    ));
}
