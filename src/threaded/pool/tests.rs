#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use super::*;
use alloc::boxed::Box;
use alloc::sync::Arc as StdArc;
use core::sync::atomic::AtomicUsize as StdAtomic;
use std::string::String;
use std::thread;
use std::vec::Vec;

const N: usize = if cfg!(miri) { 64 } else { 10_000 };

/// A one-worker pool (sized further by `builder`) whose worker is held in
/// a job until `gate.wait()`: whatever is submitted next stays queued.
/// Returns once the job runs, synchronized with it (the flag's Release and
/// Acquire), so the caller also sees the worker release the job's slot:
/// waiting on `metrics().running` (Relaxed) let a submit under Miri's weak
/// memory still see the slot taken, find the queue full and panic, and the
/// unwinding drop then waited forever for the held worker. Dropping the
/// gate lets the worker go too, and `let (pool, gate)` drops the gate
/// first: a failed assertion before `gate.wait()` fails the test instead
/// of hanging it in the pool's drop.
fn held_pool(builder: Builder) -> (ThreadPool, Gate) {
    let pool = builder.min_workers(1).max_workers(1).build().unwrap();
    let (open, opened) = std::sync::mpsc::channel::<()>();
    let held = StdArc::new(core::sync::atomic::AtomicBool::new(false));
    let h2 = held.clone();
    pool.execute(move || {
        h2.store(true, Ordering::Release);
        // Until `Gate::wait` sends, or the gate is dropped.
        let _ = opened.recv();
    })
    .unwrap();
    while !held.load(Ordering::Acquire) {
        thread::yield_now();
    }
    (pool, Gate(open))
}

/// Lets `held_pool`'s worker go: by `wait`, or by being dropped.
struct Gate(std::sync::mpsc::Sender<()>);

impl Gate {
    fn wait(&self) {
        let _ = self.0.send(());
    }
}

#[test]
fn runs_every_job_and_joins() {
    let pool = ThreadPool::new(2);
    let count = StdArc::new(StdAtomic::new(0));
    for _ in 0..N {
        let c = count.clone();
        pool.execute(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    pool.wait_idle().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), N);
    let h = pool.spawn(|| 6 * 7).unwrap();
    assert_eq!(h.join().unwrap(), 42);
    pool.shutdown();
    assert_eq!(pool.metrics().completed, N + 1);
    assert_eq!(pool.metrics().workers, 0);
}

#[test]
fn panics_keep_capacity_and_reach_handles() {
    let seen = StdArc::new(StdAtomic::new(0));
    let s2 = seen.clone();
    let pool = Builder::new()
        .min_workers(1)
        .max_workers(1)
        .panic_handler(move |info, _| {
            assert!(info.thread.is_some());
            s2.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    for _ in 0..10 {
        pool.execute(|| panic!("boom")).unwrap();
    }
    let h = pool.spawn(|| -> u32 { panic!("joined") }).unwrap();
    assert!(matches!(h.join(), Err(JoinError::Panicked(_))));
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    pool.wait_idle().unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 10);
    let m = pool.metrics();
    assert_eq!((m.panicked, m.workers), (11, 1));
}

#[test]
fn try_execute_full_and_closed_give_the_job_back() {
    // The worker holds the blocking job; fill the queue.
    let (pool, gate) = held_pool(Builder::new().queue_capacity(2));
    pool.try_execute(|| ()).unwrap();
    pool.try_execute(|| ()).unwrap();
    let hit = StdArc::new(StdAtomic::new(0));
    let h2 = hit.clone();
    let back = pool
        .try_execute(move || {
            h2.store(7, Ordering::Relaxed);
        })
        .unwrap_err();
    assert!(back.is_full());
    (back.into_inner())();
    assert_eq!(hit.load(Ordering::Relaxed), 7);
    assert!(pool
        .execute_timeout(|| (), Duration::from_millis(5))
        .unwrap_err()
        .is_full());
    gate.wait();
    pool.shutdown();
    let h3 = hit.clone();
    match pool.try_execute(move || {
        h3.store(8, Ordering::Relaxed);
    }) {
        Err(TryPushError::Closed(f)) => f(),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(hit.load(Ordering::Relaxed), 8);
    assert!(pool.metrics().rejected >= 3);
}

#[test]
fn shutdown_now_returns_unstarted_jobs() {
    let (pool, gate) = held_pool(Builder::new());
    let ran = StdArc::new(StdAtomic::new(0));
    let mut handles = Vec::new();
    for _ in 0..5 {
        let r = ran.clone();
        handles.push(
            pool.spawn(move || {
                r.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap(),
        );
    }
    let opener = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        gate.wait();
    });
    let back = pool.shutdown_now();
    opener.join().unwrap();
    assert_eq!(back.len(), 5);
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    drop(back);
    for h in handles {
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
    }
}

#[test]
fn shutdown_timeout_returns_what_it_did_not_start() {
    let pool = Builder::new()
        .min_workers(1)
        .max_workers(1)
        .build()
        .unwrap();
    for _ in 0..20 {
        pool.execute(|| thread::sleep(Duration::from_millis(10)))
            .unwrap();
    }
    let back = pool.shutdown_timeout(Duration::from_millis(35));
    let m = pool.metrics();
    assert!(!back.is_empty() && back.len() < 20, "{}", back.len());
    assert_eq!(m.completed + back.len(), 20);
}

#[test]
fn deadlines_and_cancel() {
    let (pool, gate) = held_pool(Builder::new());
    let late = pool
        .spawn_with(Some(Instant::now() + Duration::from_millis(1)), |_| 1)
        .unwrap();
    let fired = StdArc::new(StdAtomic::new(0));
    let f2 = fired.clone();
    pool.execute_before(
        Instant::now() + Duration::from_millis(1),
        || panic!("must not run"),
        move || {
            f2.fetch_add(1, Ordering::Relaxed);
        },
    )
    .unwrap();
    let cancelled = pool.spawn(|| 2).unwrap();
    cancelled.cancel();
    let token_seen = pool
        .spawn_with(None, |t| {
            while !t.is_cancelled() {
                thread::yield_now();
            }
            3
        })
        .unwrap();
    thread::sleep(Duration::from_millis(5));
    gate.wait();
    assert!(matches!(late.join(), Err(JoinError::TimedOut)));
    assert!(matches!(cancelled.join(), Err(JoinError::TimedOut)));
    while pool.metrics().running == 0 {
        thread::yield_now();
    }
    let back = pool.shutdown_now();
    assert!(back.is_empty());
    assert_eq!(token_seen.join().unwrap(), 3);
    assert_eq!(fired.load(Ordering::Relaxed), 1);
    assert_eq!(pool.metrics().timed_out, 3);
}

#[test]
fn wait_idle_from_worker_is_an_error() {
    let pool = StdArc::new(ThreadPool::new(1));
    let p2 = pool.clone();
    let r = pool.spawn(move || p2.wait_idle()).unwrap().join().unwrap();
    assert_eq!(r, Err(WaitIdleError));
}

#[test]
fn elastic_grows_and_shrinks() {
    let pool = Builder::new()
        .min_workers(0)
        .max_workers(4)
        .keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(pool.metrics().workers, 0);
    let gate = StdArc::new(std::sync::Barrier::new(5));
    for _ in 0..4 {
        let g = gate.clone();
        pool.execute(move || {
            g.wait();
        })
        .unwrap();
    }
    // All four must be running at once for the barrier to open.
    gate.wait();
    pool.wait_idle().unwrap();
    assert!(pool.metrics().workers <= 4);
    let t = Instant::now();
    while pool.metrics().workers > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "workers never retired"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // A job after everything retired still runs.
    assert_eq!(pool.spawn(|| 5).unwrap().join().unwrap(), 5);
    pool.resize(2, 2);
    assert_eq!(pool.metrics().workers, 2);
    pool.resize(1, 1);
    let t = Instant::now();
    while pool.metrics().workers > 1 {
        assert!(t.elapsed() < Duration::from_secs(5), "resize never shrank");
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(pool.spawn(|| 6).unwrap().join().unwrap(), 6);
}

#[test]
fn hooks_run() {
    let starts = StdArc::new(StdAtomic::new(0));
    let exits = StdArc::new(StdAtomic::new(0));
    let (s, e) = (starts.clone(), exits.clone());
    let pool = Builder::new()
        .min_workers(2)
        .max_workers(2)
        .thread_name("hooked")
        .stack_size(256 * 1024)
        .on_thread_start(move |_| {
            s.fetch_add(1, Ordering::Relaxed);
        })
        .on_thread_exit(move |_| {
            e.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let name = pool
        .spawn(|| thread::current().name().map(String::from))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert!(name.starts_with("hooked-"));
    pool.shutdown();
    assert_eq!(starts.load(Ordering::Relaxed), 2);
    assert_eq!(exits.load(Ordering::Relaxed), 2);
}

/// More pools than a thread caches lanes for: lanes are evicted and their
/// counters reused, and every pool still counts every submission (or
/// `wait_idle` would return early or never).
#[test]
fn many_pools_share_a_thread_cache() {
    let pools: Vec<ThreadPool> = (0..crate::threaded::lane::CACHE_LANES + 2)
        .map(|_| ThreadPool::new(1))
        .collect();
    let count = StdArc::new(StdAtomic::new(0));
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for _ in 0..rounds {
        for p in &pools {
            let c = count.clone();
            p.execute(move || {
                c.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        }
    }
    for p in &pools {
        p.wait_idle().unwrap();
        assert_eq!(p.metrics().completed, rounds);
        assert_eq!(p.metrics().queued, 0);
    }
    assert_eq!(count.load(Ordering::Relaxed), rounds * pools.len());
}

#[test]
fn a_refused_boxed_closure_comes_back_as_is() {
    let pool = ThreadPool::new(1);
    pool.shutdown();
    let v = [7u64; 4];
    let f: Box<dyn FnOnce() + Send> = Box::new(move || assert_eq!(v[0], 7));
    let raw = &*f as *const (dyn FnOnce() + Send) as *const u8;
    match pool.try_execute(f) {
        Err(TryPushError::Closed(back)) => {
            let back_raw = &*back as *const (dyn FnOnce() + Send) as *const u8;
            assert_eq!(raw, back_raw, "the same box came back");
            back();
        }
        _ => panic!("a shut-down pool must refuse"),
    }
}

#[test]
fn a_queued_job_is_small() {
    // A queue slot (Option<Job>) fits a cache line.
    assert!(core::mem::size_of::<Option<Job>>() <= 64);
}

#[test]
fn bad_configurations_are_errors_not_panics() {
    let b = || Builder::new().min_workers(0).max_workers(1);
    assert_eq!(
        b().queue_capacity(0).build().unwrap_err(),
        BuildError::Capacity(0)
    );
    assert_eq!(
        b().queue_capacity(usize::MAX).build().unwrap_err(),
        BuildError::Capacity(usize::MAX)
    );
    assert_eq!(
        Builder::new()
            .max_workers(MAX_WORKERS + 1)
            .build()
            .unwrap_err(),
        BuildError::MaxWorkers(MAX_WORKERS + 1)
    );
    assert!(b().build().is_ok());
}

/// Counts its drops: a closure that captures one is dropped (run or not)
/// exactly when the counter moves.
struct Counted(StdArc<StdAtomic>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn small_closures_are_stored_inline_and_big_ones_boxed() {
    use super::job::Body;
    let a = StdArc::new(StdAtomic::new(0));
    let small = Body::plain(move || drop(a));
    assert!(small.is_inline());
    let words = [1u64; 5];
    assert!(Body::plain(move || assert_eq!(words[4], 1)).is_inline());
    let big = [1u64; 6];
    assert!(!Body::plain(move || assert_eq!(big[5], 1)).is_inline());
    #[repr(align(16))]
    struct Wide(u8);
    let wide = Wide(3);
    assert!(!Body::plain(move || {
        let w = wide; // the whole value, not just its field
        assert_eq!(w.0, 3);
    })
    .is_inline());
    // A boxed closure is two words: kept as it is, inline.
    let f: Box<dyn FnOnce() + Send> = Box::new(|| ());
    assert!(Body::plain(f).is_inline());
    #[cfg(target_pointer_width = "64")]
    assert_eq!(core::mem::size_of::<Option<Job>>(), 64);
}

#[test]
fn a_body_drops_its_closure_once_however_it_ends() {
    use super::job::{Body, Ran, Start};
    let drops = StdArc::new(StdAtomic::new(0));
    let runs = StdArc::new(StdAtomic::new(0));
    let make = |pad: [u64; 8], boom: bool| {
        let c = Counted(drops.clone());
        let r = runs.clone();
        (
            Body::plain(move || {
                let _c = c;
                r.fetch_add(1, Ordering::Relaxed);
                assert!(!boom, "boom");
            }),
            Body::plain({
                let c = Counted(drops.clone());
                let r = runs.clone();
                move || {
                    let _c = c;
                    r.fetch_add(pad.len() - 7, Ordering::Relaxed);
                    assert!(!boom, "boom");
                }
            }),
        )
    };
    // Run, dropped unrun, expired, panicked: each closure dropped once,
    // inline (the first) and boxed (the second) alike.
    let (a, b) = make([0; 8], false);
    assert!(a.is_inline() && !b.is_inline());
    assert!(matches!(a.start(Start::Run), Ran::Done));
    assert!(matches!(b.start(Start::Run), Ran::Done));
    assert_eq!((runs.load(Ordering::Relaxed), drops.load(Ordering::Relaxed)), (2, 2));
    let (a, b) = make([0; 8], false);
    drop((a, b));
    assert_eq!((runs.load(Ordering::Relaxed), drops.load(Ordering::Relaxed)), (2, 4));
    let (a, b) = make([0; 8], false);
    assert!(matches!(a.start(Start::Expired), Ran::Expired));
    assert!(matches!(b.start(Start::Expired), Ran::Expired));
    assert_eq!((runs.load(Ordering::Relaxed), drops.load(Ordering::Relaxed)), (2, 6));
    let (a, b) = make([0; 8], true);
    assert!(std::panic::catch_unwind(AssertUnwindSafe(|| a.start(Start::Run))).is_err());
    assert!(std::panic::catch_unwind(AssertUnwindSafe(|| b.start(Start::Run))).is_err());
    assert_eq!((runs.load(Ordering::Relaxed), drops.load(Ordering::Relaxed)), (4, 8));
    // Taken back as what it was (the refusal path), then dropped.
    let (a, b) = make([0; 8], false);
    assert!(a.into_plain::<fn()>().is_none(), "not a `fn()`");
    assert_eq!(drops.load(Ordering::Relaxed), 9);
    drop(b);
    assert_eq!(drops.load(Ordering::Relaxed), 10);
}

#[test]
fn unrun_jobs_drop_their_closures_once() {
    for boxed in [false, true] {
        let drops = StdArc::new(StdAtomic::new(0));
        let runs = StdArc::new(StdAtomic::new(0));
        // A closure stored in its job (24 bytes) or, with 48 bytes more,
        // boxed.
        let submit = |pool: &ThreadPool| {
            let c = Counted(drops.clone());
            let r = runs.clone();
            if boxed {
                let pad = [7u64; 6];
                pool.execute(move || {
                    let _c = c;
                    r.fetch_add(1, Ordering::Relaxed);
                    std::hint::black_box(pad);
                })
            } else {
                pool.execute(move || {
                    let _c = c;
                    r.fetch_add(1, Ordering::Relaxed);
                })
            }
            .unwrap();
        };
        let (pool, gate) = held_pool(Builder::new());
        for _ in 0..10 {
            submit(&pool);
        }
        let opener = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gate.wait();
        });
        let mut back = pool.shutdown_now();
        opener.join().unwrap();
        assert_eq!(back.len(), 10);
        assert!(back.iter().all(|j| j.body.is_inline() != boxed));
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        // One run here, the rest dropped unrun.
        back.pop().unwrap().run();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        drop(back);
        assert_eq!(drops.load(Ordering::Relaxed), 10);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        // Queued jobs of a dropped pool run once, then drop once.
        let pool = ThreadPool::new(1);
        for _ in 0..N.min(1000) {
            submit(&pool);
        }
        drop(pool);
        assert_eq!(drops.load(Ordering::Relaxed), 10 + N.min(1000));
        assert_eq!(runs.load(Ordering::Relaxed), 1 + N.min(1000));
    }
}

#[test]
fn a_refused_closure_comes_back_whole() {
    let pool = ThreadPool::new(1);
    pool.shutdown();
    let drops = StdArc::new(StdAtomic::new(0));
    let c = Counted(drops.clone());
    let small = move || assert_eq!(c.0.load(Ordering::Relaxed), 0);
    let c = Counted(drops.clone());
    let big = [9usize; 16];
    let large = move || assert_eq!(c.0.load(Ordering::Relaxed) + big[15], 10);
    match pool.try_execute(small) {
        Err(TryPushError::Closed(back)) => back(),
        _ => panic!("a shut-down pool must refuse"),
    }
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    match pool.try_execute(large) {
        Err(TryPushError::Closed(back)) => back(),
        _ => panic!("a shut-down pool must refuse"),
    }
    assert_eq!(drops.load(Ordering::Relaxed), 2);
}

/// A submitter that fenced at its claim before the worker counted itself
/// asleep sends no signal (doorbell docs, "Announced work"); the worker
/// must see the claimed, unfinished slot and look again rather than sleep
/// (with no keep-alive to end its sleep, it used to sleep for good).
#[test]
fn a_job_claimed_before_the_worker_sleeps_still_runs() {
    let (pool, gate) = held_pool(Builder::new());
    let ran = StdArc::new(StdAtomic::new(0));
    let writing = StdArc::new(std::sync::Barrier::new(2));
    let finish = StdArc::new(std::sync::Barrier::new(2));
    let inner = pool.inner.clone();
    let submitter = {
        let (ran, writing, finish) = (ran.clone(), writing.clone(), finish.clone());
        thread::spawn(move || {
            // Claimed and fenced (the worker is busy, so no sleeper is
            // heard); the job is built only after the test lets it.
            Inner::submit(
                &inner,
                move || {
                    writing.wait();
                    finish.wait();
                    ThreadPool::wrap(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })()
                },
                None,
            )
            .unwrap();
        })
    };
    writing.wait();
    // The worker finishes its job, finds the slot claimed and unfinished,
    // backs off and tries to sleep.
    gate.wait();
    thread::sleep(std::time::Duration::from_millis(50));
    finish.wait();
    submitter.join().unwrap();
    let t = std::time::Instant::now();
    while ran.load(Ordering::SeqCst) == 0 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "the worker slept through a job whose submitter did not ring"
        );
        thread::sleep(std::time::Duration::from_millis(1));
    }
    pool.shutdown();
}
