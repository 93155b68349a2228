//! Many producers against the thread pool, with shutdown racing submit:
//! every accepted job runs exactly once or comes back unrun, and
//! ran + returned == accepted; every closure (stored inline in its job or,
//! too big for that, boxed; run, returned or refused) is dropped exactly
//! once.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use latchfree::pool::{Builder, ThreadPool, TryPushError};

const PER_PRODUCER: usize = if cfg!(miri) { 64 } else { 20_000 };

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Submits `job` the `i`-th way: `Ok`, or `Err(full)`.
fn submit<F: FnOnce() + Send + 'static>(pool: &ThreadPool, i: usize, job: F) -> Result<(), bool> {
    if i % 2 == 0 {
        pool.execute(job).map_err(|_closed| false)
    } else {
        pool.try_execute(job).map_err(|e| e.is_full())
    }
}

fn race(shutdown_now: bool) {
    let pool = Arc::new(
        Builder::new()
            .min_workers(1)
            .max_workers(3)
            .keep_alive(Duration::from_millis(1))
            .queue_capacity(64)
            .build()
            .unwrap(),
    );
    let ran: Arc<Vec<AtomicUsize>> =
        Arc::new((0..4 * PER_PRODUCER).map(|_| AtomicUsize::new(0)).collect());
    let accepted = Arc::new(AtomicUsize::new(0));
    let (made, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let (pool, ran, accepted) = (pool.clone(), ran.clone(), accepted.clone());
            let (made, drops) = (made.clone(), drops.clone());
            thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let id = p * PER_PRODUCER + i;
                    let r = ran.clone();
                    let guard = Counted(drops.clone());
                    made.fetch_add(1, Ordering::Relaxed);
                    // Half the closures are too big to be stored in their
                    // job (boxed), in runs of four.
                    let res = if i % 8 < 4 {
                        submit(&pool, i, move || {
                            let _g = guard;
                            r[id].fetch_add(1, Ordering::Relaxed);
                        })
                    } else {
                        let pad = [id; 8];
                        submit(&pool, i, move || {
                            let _g = guard;
                            r[pad[7]].fetch_add(1, Ordering::Relaxed);
                        })
                    };
                    match res {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(true) => thread::yield_now(),
                        Err(false) => return,
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    let back = if shutdown_now {
        pool.shutdown_now()
    } else {
        pool.shutdown();
        Vec::new()
    };
    for p in producers {
        p.join().unwrap();
    }
    // Nothing is accepted after the shutdown returned.
    assert!(matches!(
        pool.try_execute(|| ()),
        Err(TryPushError::Closed(_))
    ));
    let returned = back.len();
    for job in back {
        job.run();
    }
    let total: usize = ran.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    assert!(
        ran.iter().all(|c| c.load(Ordering::Relaxed) <= 1),
        "a job ran twice"
    );
    let accepted = accepted.load(Ordering::Relaxed);
    assert_eq!(total, accepted, "ran + returned != accepted");
    let m = pool.metrics();
    assert_eq!(m.completed + returned, accepted);
    assert_eq!(m.workers, 0);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        made.load(Ordering::Relaxed),
        "a closure leaked or dropped twice"
    );
}

#[test]
fn graceful_shutdown_races_submit() {
    for _ in 0..5 {
        race(false);
    }
}

#[test]
fn shutdown_now_races_submit() {
    for _ in 0..5 {
        race(true);
    }
}

#[test]
fn blocked_submitters_are_woken_with_closed() {
    let pool = Arc::new(
        Builder::new()
            .min_workers(1)
            .max_workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let gate = Arc::new(std::sync::Barrier::new(2));
    let g = gate.clone();
    pool.execute(move || {
        g.wait();
    })
    .unwrap();
    while pool.metrics().running == 0 {
        thread::yield_now();
    }
    pool.execute(|| ()).unwrap();
    let p2 = pool.clone();
    let blocked = thread::spawn(move || p2.execute(|| ()).is_err());
    thread::sleep(Duration::from_millis(20));
    let p3 = pool.clone();
    let closer = thread::spawn(move || p3.shutdown_now().len());
    thread::sleep(Duration::from_millis(20));
    assert!(
        blocked.join().unwrap(),
        "blocked submitter got in after close"
    );
    gate.wait();
    assert_eq!(closer.join().unwrap(), 1);
}

#[test]
fn idle_pool_sleeps() {
    // Not a CPU measurement (that is in the shootout); checks that a job
    // every millisecond is served promptly by sleeping workers.
    let pool = Builder::new()
        .min_workers(2)
        .max_workers(2)
        .build()
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let c = count.clone();
        pool.execute(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    pool.wait_idle().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 50);
    let t = std::time::Instant::now();
    while pool.metrics().idle != 2 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "workers never went idle"
        );
        thread::sleep(Duration::from_millis(1));
    }
}
