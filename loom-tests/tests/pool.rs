//! Loom models of the thread pool's queue and park/wake protocol. Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test pool`.
//!
//! The pool's job queue is a multi-producer ring whose only consumer node
//! is a work group; idle workers sleep on a `Doorbell` and submitters ring
//! it after publishing. These models run exactly that pairing (the same
//! ring and doorbell code the pool uses) with loom's threads, mutex and
//! condition variable: a lost wake-up shows up as a deadlock, a job taken
//! twice or never as a failed count.
#![cfg(latchfree_loom)]

use latchfree::__loom::{Check, Doorbell};
use latchfree::ring::{BusySpin, Heap, Multi, Poll, Ring, Worker};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

mod support;
use support::model;

type Q = Ring<Heap<usize>, Multi, BusySpin>;

struct Pool {
    ring: Arc<Q>,
    bell: Doorbell,
    ran: AtomicUsize,
}

/// One worker: poll; when idle, sleep on the doorbell with the poll as its
/// check; stop at `Closed`. Returns the jobs it took.
fn worker(pool: &Pool, mut w: Worker<Arc<Q>>) -> usize {
    let mut took = 0;
    loop {
        let mut got = 0;
        let p = w.poll_limit(1, |job, _, _| got += *job);
        if got > 0 {
            pool.ran.fetch_add(got, Ordering::Relaxed);
            took += 1;
            continue;
        }
        if p == Poll::Closed {
            return took;
        }
        let closed = pool.bell.sleep(|_| {
            let mut got = 0;
            let p = w.poll_limit(1, |job, _, _| got += *job);
            if got > 0 {
                pool.ran.fetch_add(got, Ordering::Relaxed);
                took += 1;
                Check::Done(Some(false))
            } else if p == Poll::Closed {
                Check::Done(Some(true))
            } else if p == Poll::Unfinished {
                // A submitter that fenced at its claim (`submit_announced`)
                // may not ring: look again, as the pool's worker does.
                Check::Done(None)
            } else {
                Check::Wait(None)
            }
        });
        match closed {
            Some(true) => return took,
            Some(false) => {}
            None => thread::yield_now(),
        }
    }
}

/// Publishes `job` as the pool's submit does: the doorbell read right
/// after the claim (`listen_after_rmw`, inside the write; under loom it
/// fences, standing in for the claim's `SeqCst` order, which loom models
/// as `AcqRel`), the signal after the publish only if a sleeper was heard
/// (doorbell docs, "Announced work").
fn submit_announced(
    pool: &Pool,
    producer: &mut latchfree::ring::MultiProducer<Arc<Q>>,
    job: usize,
) {
    let mut heard = false;
    producer
        .try_publish(|slot| {
            heard = pool.bell.listen_after_rmw();
            *slot = job;
        })
        .unwrap();
    if heard {
        pool.bell.signal();
    }
}

fn pool(
    workers: usize,
) -> (
    Arc<Pool>,
    Vec<Worker<Arc<Q>>>,
    latchfree::ring::MultiProducer<Arc<Q>>,
) {
    let ring: Arc<Q> = Arc::new(Ring::with_wait(
        Heap::builder(2).gates(workers + 1).build().unwrap(),
        BusySpin,
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let ws = g.work_group_vec(workers, &[]).unwrap();
    let producer = g.multi_producer().unwrap();
    (
        Arc::new(Pool {
            ring,
            bell: Doorbell::new(),
            ran: AtomicUsize::new(0),
        }),
        ws,
        producer,
    )
}

/// A submitter publishes a job and rings while the worker goes to sleep:
/// the worker must wake and run it (no lost wake-up); then the close wakes
/// it for good.
#[test]
fn submit_wakes_sleeping_worker() {
    model(|| {
        let (p, mut ws, mut producer) = pool(1);
        let w = ws.pop().unwrap();
        let p2 = p.clone();
        let t = thread::spawn(move || worker(&p2, w));
        producer.try_push(1).unwrap();
        p.bell.ring();
        // Wait (through the model) until it ran, then close.
        while p.ran.load(Ordering::Relaxed) == 0 {
            thread::yield_now();
        }
        p.ring.close();
        p.bell.ring_all();
        assert_eq!(t.join().unwrap(), 1);
        drop(producer);
    });
}

/// Two submitters (one thread, and the main thread which then closes)
/// against one worker: each job runs exactly once, and the close wakes the
/// sleeper for good.
#[test]
fn two_submitters_exactly_once_then_close() {
    model(|| {
        let (p, mut ws, producer) = pool(1);
        let w = ws.pop().unwrap();
        let mut producer2 = producer.clone();
        let mut producer = producer;
        let p2 = p.clone();
        let t = thread::spawn(move || worker(&p2, w));
        let p3 = p.clone();
        let sub = thread::spawn(move || {
            producer2.try_push(10).unwrap();
            p3.bell.ring();
        });
        producer.try_push(1).unwrap();
        p.bell.ring();
        sub.join().unwrap();
        p.ring.close();
        p.bell.ring_all();
        assert_eq!(t.join().unwrap(), 2);
        assert_eq!(p.ran.load(Ordering::Relaxed), 11);
        drop(producer);
    });
}

/// The pool's submit with the fence at the claim: two submitters (one
/// thread, and the main thread which then closes) race a worker going to
/// sleep. A worker that sees a claimed slot not yet written looks again
/// instead of waiting for a signal its submitter may not send; a lost
/// wake-up shows up as a deadlock, a job run twice or never as a count.
#[test]
fn announced_submits_wake_or_are_seen() {
    model(|| {
        let (p, mut ws, producer) = pool(1);
        let w = ws.pop().unwrap();
        let mut producer2 = producer.clone();
        let mut producer = producer;
        let p2 = p.clone();
        let t = thread::spawn(move || worker(&p2, w));
        let p3 = p.clone();
        let sub = thread::spawn(move || submit_announced(&p3, &mut producer2, 10));
        submit_announced(&p, &mut producer, 1);
        sub.join().unwrap();
        while p.ran.load(Ordering::Relaxed) < 11 {
            thread::yield_now();
        }
        p.ring.close();
        p.bell.ring_all();
        assert_eq!(t.join().unwrap(), 2);
        drop(producer);
    });
}

// ---------------------------------------------------------------------
// The real pool: `ThreadPool` compiled against loom (its workers are loom
// threads running the pool's own `worker_main`, its clock stands still),
// so these models check the worker loop, retire/grow, `wait_idle` and
// `shutdown_now` themselves, not a copy.

use latchfree::pool::ThreadPool;
use std::time::Duration;

/// A counter the jobs bump.
fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn bump(n: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let n = n.clone();
    move || {
        n.fetch_add(1, Ordering::SeqCst);
    }
}

/// `wait_idle` races the worker finishing a job: it returns only once the
/// job ran (a lost idle signal leaves it waiting, which loom reports as a
/// deadlock; it found one, which only a timed wait used to cover), and
/// shutdown joins.
#[test]
fn pool_wait_idle_sees_every_job_run() {
    model(|| {
        let pool = ThreadPool::builder()
            .min_workers(1)
            .max_workers(1)
            .queue_capacity(2)
            .build()
            .unwrap();
        let ran = counter();
        pool.execute(bump(&ran)).unwrap();
        pool.wait_idle().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        pool.shutdown();
    });
}

/// `shutdown_now` races a worker and a submitter: every accepted job is
/// either run or handed back, exactly once; a refused one is neither.
#[test]
fn pool_shutdown_now_runs_or_returns_each_job_once() {
    model(|| {
        let pool = Arc::new(
            ThreadPool::builder()
                .min_workers(1)
                .max_workers(1)
                .queue_capacity(2)
                .build()
                .unwrap(),
        );
        let ran = counter();
        pool.execute(bump(&ran)).unwrap();
        let p2 = pool.clone();
        let job = bump(&ran);
        let sub = thread::spawn(move || p2.execute(job).is_ok());
        let returned = pool.shutdown_now();
        let accepted = 1 + usize::from(sub.join().unwrap());
        let back = returned.len();
        drop(returned);
        assert_eq!(ran.load(Ordering::SeqCst) + back, accepted);
    });
}

/// A worker retires (zero keep-alive) while a second job is submitted:
/// the job still runs, by the retiring worker's last look or by a worker
/// the submitter starts, exactly once.
#[test]
fn pool_retire_races_a_submit() {
    model(|| {
        let pool = Arc::new(
            ThreadPool::builder()
                .min_workers(0)
                .max_workers(1)
                .keep_alive(Duration::ZERO)
                .queue_capacity(2)
                .build()
                .unwrap(),
        );
        let ran = counter();
        pool.execute(bump(&ran)).unwrap();
        let p2 = pool.clone();
        let job = bump(&ran);
        let sub = thread::spawn(move || p2.execute(job).is_ok());
        assert!(sub.join().unwrap());
        pool.wait_idle().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        pool.shutdown();
    });
}
