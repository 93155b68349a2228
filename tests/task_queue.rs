//! The task queue (`pool::TaskQueue`): exactly-once delivery with many
//! posting threads and a racing close, order with one worker, panics that
//! cost no worker, the error callback, and the bounded queue.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use latchfree::batch::{Closed, TaskError, TaskQueue, TryPushError};

const PER_POSTER: usize = if cfg!(miri) { 64 } else { 20_000 };

/// Four posters (push, try_push, push_timeout in turn) race a close: every
/// value is handled exactly once or came back to its poster, and
/// handled + returned == attempted.
fn race(workers: usize) {
    let seen: Arc<Vec<AtomicUsize>> =
        Arc::new((0..4 * PER_POSTER).map(|_| AtomicUsize::new(0)).collect());
    let s = seen.clone();
    let q = Arc::new(
        TaskQueue::builder::<()>()
            .workers(workers)
            .queue_capacity(64)
            .build(move |v: usize| {
                s[v].fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap(),
    );
    let returned = Arc::new(AtomicUsize::new(0));
    let posters: Vec<_> = (0..4)
        .map(|p| {
            let (q, seen, returned) = (q.clone(), seen.clone(), returned.clone());
            thread::spawn(move || {
                for i in 0..PER_POSTER {
                    let v = p * PER_POSTER + i;
                    let r = match i % 3 {
                        0 => q.push(v).map_err(Into::into),
                        1 => q.try_push(v),
                        _ => q.push_timeout(v, Duration::from_micros(50)),
                    };
                    if let Err(e) = r {
                        assert_eq!(e.into_inner(), v, "the refused value comes back");
                        // Refused values were never handed to the handler.
                        seen[v].fetch_add(1_000, Ordering::Relaxed);
                        returned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(5));
    q.close();
    for p in posters {
        p.join().unwrap();
    }
    for (v, n) in seen.iter().enumerate() {
        let n = n.load(Ordering::Relaxed);
        assert!(
            n == 1 || n == 1_000,
            "value {v} seen {n} (1: handled, 1000: returned)"
        );
    }
    let m = q.metrics();
    assert_eq!(m.pushed, m.handled);
    assert_eq!(m.pushed + returned.load(Ordering::Relaxed), 4 * PER_POSTER);
    assert_eq!(m.rejected, returned.load(Ordering::Relaxed));
}

#[test]
fn exactly_once_with_close_racing_one_worker() {
    race(1);
}

#[test]
fn exactly_once_with_close_racing_three_workers() {
    race(3);
}

#[test]
fn one_worker_keeps_push_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let q = TaskQueue::with_handler(move |v: u32| {
        l.lock().unwrap().push(v);
        Ok::<(), ()>(())
    });
    for v in 0..1000 {
        q.push(v).unwrap();
    }
    drop(q); // Drop closes and drains.
    assert_eq!(*log.lock().unwrap(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn panics_do_not_kill_workers_and_errors_reach_the_callback() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    let q = TaskQueue::builder()
        .workers(2)
        .on_error(move |e: TaskError<String>| {
            let what = match e {
                TaskError::Failed(s) => s,
                TaskError::Panicked(p) => format!("panic: {}", p.downcast_ref::<&str>().unwrap()),
            };
            e2.lock().unwrap().push(what);
        })
        .build(|v: u32| match v % 10 {
            3 => Err(format!("bad {v}")),
            7 => panic!("boom"),
            _ => Ok(()),
        })
        .unwrap();
    for v in 0..100 {
        q.push(v).unwrap();
    }
    q.close();
    let m = q.metrics();
    assert_eq!(
        (m.pushed, m.handled, m.failed, m.panicked),
        (100, 80, 10, 10)
    );
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 20);
    assert_eq!(errors.iter().filter(|e| *e == "panic: boom").count(), 10);
    assert!(errors.contains(&"bad 13".to_string()));
}

#[test]
fn full_queue_refuses_and_times_out() {
    let gate = Arc::new(Mutex::new(()));
    let g = gate.lock().unwrap();
    let g2 = gate.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let s2 = started.clone();
    let q = TaskQueue::builder::<()>()
        .queue_capacity(2)
        .build(move |_: u32| {
            s2.fetch_add(1, Ordering::SeqCst);
            drop(g2.lock().unwrap());
            Ok(())
        })
        .unwrap();
    // The worker takes the first value and blocks in the handler; then the
    // queue fills up.
    q.push(0).unwrap();
    while started.load(Ordering::SeqCst) == 0 {
        thread::yield_now();
    }
    let mut accepted = 1;
    let t = Instant::now();
    while q.try_push(accepted).is_ok() {
        accepted += 1;
        assert!(t.elapsed() < Duration::from_secs(5), "never full");
    }
    assert!(matches!(q.try_push(99), Err(TryPushError::Full(99))));
    let t = Instant::now();
    assert!(matches!(
        q.push_timeout(98, Duration::from_millis(20)),
        Err(TryPushError::Full(98))
    ));
    assert!(t.elapsed() >= Duration::from_millis(15));
    drop(g);
    q.close();
    let m = q.metrics();
    assert_eq!(m.handled, accepted as usize);
    assert_eq!(
        m.rejected, 3,
        "the refusal that ended the loop, then 99 and 98"
    );
}

#[test]
fn blocked_poster_gets_closed() {
    let gate = Arc::new(Mutex::new(()));
    let g = gate.lock().unwrap();
    let g2 = gate.clone();
    let q = Arc::new(
        TaskQueue::builder::<()>()
            .queue_capacity(1)
            .build(move |_: u32| {
                drop(g2.lock().unwrap());
                Ok(())
            })
            .unwrap(),
    );
    while q.try_push(0).is_ok() {}
    let q2 = q.clone();
    let poster = thread::spawn(move || q2.push(7));
    thread::sleep(Duration::from_millis(20));
    let closer = {
        let q = q.clone();
        thread::spawn(move || q.close())
    };
    thread::sleep(Duration::from_millis(20));
    drop(g);
    closer.join().unwrap();
    match poster.join().unwrap() {
        Err(Closed(7)) => {}
        // It may have got in before the close reached the queue.
        Ok(()) => {}
        other => panic!("{other:?}"),
    }
    let m = q.metrics();
    assert_eq!(m.pushed, m.handled);
}

/// Issue 11, failure 1, through the task queue: posters blocked on a full
/// queue (capacity 16) must not stall `flush`, nor `flush` the posters.
#[test]
fn flush_against_blocked_posters() {
    const ITEMS: usize = if cfg!(miri) { 200 } else { 20_000 };
    let handled = Arc::new(AtomicUsize::new(0));
    let h2 = handled.clone();
    let q = Arc::new(
        TaskQueue::builder::<()>()
            .queue_capacity(16)
            .build(move |_: usize| {
                h2.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap(),
    );
    let posted = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let (q2, p2, h3) = (q.clone(), posted.clone(), handled.clone());
    // The scenario runs on its own thread, so a deadlock fails the test
    // instead of hanging it.
    let runner = thread::spawn(move || {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (q, posted) = (q2.clone(), p2.clone());
                thread::spawn(move || {
                    for i in 0..ITEMS {
                        q.push(i).unwrap();
                        posted.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        while hs.iter().any(|h| !h.is_finished()) {
            let before = p2.load(Ordering::SeqCst);
            q2.flush();
            assert!(h3.load(Ordering::SeqCst) >= before, "flush returned early");
        }
        for h in hs {
            h.join().unwrap();
        }
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => runner.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("flush against blocked posters: deadlock")
        }
    }
    q.close();
    assert_eq!(handled.load(Ordering::SeqCst), 2 * ITEMS);
    assert_eq!(q.metrics().pushed, 2 * ITEMS);
}
