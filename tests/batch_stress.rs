//! Many producers into the batcher with close racing push: every accepted
//! item is handed to the handler exactly once, per-producer order holds
//! with one flusher, and delivered + refused == pushed.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use latchfree::batch::Batcher;

const PER_PRODUCER: usize = if cfg!(miri) { 64 } else { 50_000 };
const PRODUCERS: usize = 4;

fn race(flushers: usize, try_push: bool) {
    let seen: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..PRODUCERS * PER_PRODUCER)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    let last: Arc<Mutex<Vec<Option<usize>>>> = Arc::new(Mutex::new(vec![None; PRODUCERS]));
    let (s2, l2) = (seen.clone(), last.clone());
    let b = Arc::new(
        Batcher::builder::<()>()
            .max_items(64)
            .max_delay(Duration::from_micros(200))
            .queue_capacity(256)
            .flushers(flushers)
            .build(move |batch: &mut Vec<(usize, usize)>| {
                assert!(!batch.is_empty());
                let mut last = l2.lock().unwrap();
                for &(p, i) in batch.iter() {
                    s2[p * PER_PRODUCER + i].fetch_add(1, Ordering::Relaxed);
                    if flushers == 1 {
                        assert!(last[p].map_or(true, |l| l < i), "order broken");
                        last[p] = Some(i);
                    }
                }
                Ok::<(), ()>(())
            })
            .unwrap(),
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (b, accepted) = (b.clone(), accepted.clone());
            thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let r = if try_push {
                        b.try_push((p, i))
                    } else {
                        b.push((p, i)).map_err(Into::into)
                    };
                    match r {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.is_full() => thread::yield_now(),
                        Err(_) => return,
                    }
                    if i % 1000 == 0 {
                        b.flush();
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(30));
    b.close();
    for p in producers {
        p.join().unwrap();
    }
    let accepted = accepted.load(Ordering::Relaxed);
    let delivered: usize = seen.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    assert!(
        seen.iter().all(|c| c.load(Ordering::Relaxed) <= 1),
        "delivered twice"
    );
    assert_eq!(delivered, accepted);
    let m = b.metrics();
    assert_eq!((m.accepted, m.delivered), (accepted, accepted));
}

#[test]
fn close_races_push_one_flusher() {
    for _ in 0..3 {
        race(1, false);
    }
}

#[test]
fn close_races_try_push_two_flushers() {
    for _ in 0..3 {
        race(2, true);
    }
}

#[test]
fn flush_sees_everything_accepted_before_it() {
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let b = Arc::new(
        Batcher::builder::<()>()
            .max_items(1000)
            .max_delay(Duration::from_secs(60))
            .flushers(2)
            .build(move |batch: &mut Vec<usize>| {
                c2.fetch_add(batch.len(), Ordering::SeqCst);
                Ok::<(), ()>(())
            })
            .unwrap(),
    );
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            let count = count.clone();
            thread::spawn(move || {
                for round in 0..200 {
                    for i in 0..10 {
                        b.push(i).unwrap();
                    }
                    b.flush();
                    // This thread's 10 * (round + 1) items are all handed.
                    assert!(count.load(Ordering::SeqCst) >= 10 * (round + 1));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    b.flush();
    assert_eq!(count.load(Ordering::SeqCst), 4000);
}

/// Runs `f` on its own thread and fails if it has not finished within
/// `secs` (a deadlock would otherwise hang the test binary; the stuck
/// threads are left behind, the process exits with the failure).
fn within(secs: u64, what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        // The thread panicked: re-raise its panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(h.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after {secs} s (deadlock)")
        }
    }
}

/// Issue 11, failure 1: producers blocked in `push` on a full queue must not
/// stall a `flush` (nor the flush the producers). Capacity 16, `pushers`
/// threads looping on the blocking `push`, a third thread flushing over and
/// over; every flush returns and covers what was accepted before it.
fn flush_against_blocked_pushers(pushers: usize, flushers: usize) {
    const ITEMS: usize = if cfg!(miri) { 200 } else { 20_000 };
    let delivered = Arc::new(AtomicUsize::new(0));
    let d2 = delivered.clone();
    let b = Arc::new(
        Batcher::builder::<()>()
            .max_items(4)
            .max_delay(Duration::from_millis(1))
            .queue_capacity(16)
            .flushers(flushers)
            .build(move |batch: &mut Vec<usize>| {
                d2.fetch_add(batch.len(), Ordering::SeqCst);
                Ok::<(), ()>(())
            })
            .unwrap(),
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let (b2, a2, del) = (b.clone(), accepted.clone(), delivered.clone());
    within(20, "flush against blocked pushers", move || {
        let hs: Vec<_> = (0..pushers)
            .map(|_| {
                let (b, accepted) = (b2.clone(), a2.clone());
                thread::spawn(move || {
                    for i in 0..ITEMS {
                        b.push(i).unwrap();
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let mut flushes = 0;
        while hs.iter().any(|h| !h.is_finished()) {
            let before = a2.load(Ordering::SeqCst);
            b2.flush();
            flushes += 1;
            let after = del.load(Ordering::SeqCst);
            assert!(
                after >= before,
                "flush returned with {after} < {before} delivered"
            );
        }
        for h in hs {
            h.join().unwrap();
        }
        b2.flush();
        assert_eq!(del.load(Ordering::SeqCst), pushers * ITEMS);
        assert!(flushes > 0);
    });
    b.close();
    assert_eq!(b.metrics().delivered, pushers * ITEMS);
    assert_eq!(accepted.load(Ordering::SeqCst), pushers * ITEMS);
}

#[test]
fn flush_against_one_blocked_pusher() {
    flush_against_blocked_pushers(1, 1);
}

#[test]
fn flush_against_two_blocked_pushers() {
    flush_against_blocked_pushers(2, 1);
}

#[test]
fn flush_against_blocked_pushers_two_flushers() {
    flush_against_blocked_pushers(2, 2);
}
