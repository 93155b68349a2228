//! The blocking delay queue: deadlines honoured, early wake-up, several
//! consumers, close.

// Host-only code: std paths are fine here.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::queue::std_blocking::{BlockingDelayQueue, TakeError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn take_waits_for_deadline_and_wakes_early_for_earlier_item() {
    let q = Arc::new(BlockingDelayQueue::new());
    q.offer("late", Duration::from_secs(30)).unwrap();
    let q2 = Arc::clone(&q);
    let start = Instant::now();
    let t = thread::spawn(move || q2.take().unwrap());
    thread::sleep(Duration::from_millis(50));
    q.offer("early", Duration::from_millis(20)).unwrap();
    assert_eq!(t.join().unwrap(), "early");
    let el = start.elapsed();
    assert!(
        el >= Duration::from_millis(70) && el < Duration::from_secs(10),
        "{el:?}"
    );
    assert_eq!(q.try_take(), Err(TakeError::Timeout));
    assert_eq!(
        q.take_timeout(Duration::from_millis(10)),
        Err(TakeError::Timeout)
    );
    assert_eq!(q.close(), vec!["late"]);
}

#[test]
fn several_consumers_each_item_once_and_close_wakes_all() {
    const N: usize = if cfg!(miri) { 20 } else { 2_000 };
    let q = Arc::new(BlockingDelayQueue::new());
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = q.take() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for i in 0..N {
        q.offer(i, Duration::from_micros((i % 7) as u64)).unwrap();
    }
    while !q.is_empty() {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(q.close().is_empty());
    let mut all: Vec<usize> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
    assert_eq!(q.offer(7, Duration::ZERO).unwrap_err().into_inner(), 7);
    assert_eq!(
        q.take_timeout(Duration::from_millis(1)),
        Err(TakeError::Closed)
    );
}
