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
            }),
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
                        b.push((p, i))
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
            }),
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
