//! The blocking delay queue: deadlines honoured, early wake-up, several
//! consumers, close.

// Host-only code: std paths are fine here.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::queue::{BlockingDelayQueue, PopError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn pop_waits_for_deadline_and_wakes_early_for_earlier_item() {
    let q = Arc::new(BlockingDelayQueue::new());
    q.insert("late", Duration::from_secs(30)).unwrap();
    let q2 = Arc::clone(&q);
    let start = Instant::now();
    let t = thread::spawn(move || q2.pop().unwrap());
    thread::sleep(Duration::from_millis(50));
    q.insert("early", Duration::from_millis(20)).unwrap();
    assert_eq!(t.join().unwrap(), "early");
    let el = start.elapsed();
    assert!(
        el >= Duration::from_millis(70) && el < Duration::from_secs(10),
        "{el:?}"
    );
    assert_eq!(q.try_pop(), Err(PopError::Timeout));
    assert_eq!(
        q.pop_timeout(Duration::from_millis(10)),
        Err(PopError::Timeout)
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
                while let Ok(v) = q.pop() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for i in 0..N {
        q.insert(i, Duration::from_micros((i % 7) as u64)).unwrap();
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
    assert_eq!(q.insert(7, Duration::ZERO).unwrap_err().into_inner(), 7);
    assert_eq!(
        q.pop_timeout(Duration::from_millis(1)),
        Err(PopError::Closed)
    );
}

#[test]
fn insert_at_takes_an_instant() {
    let q = BlockingDelayQueue::new();
    let start = Instant::now();
    q.insert_at(2, start + Duration::from_millis(15)).unwrap();
    q.insert_at(1, start + Duration::from_millis(5)).unwrap();
    assert_eq!(q.pop(), Ok(1));
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert_eq!(q.pop_timeout(Duration::from_secs(10)), Ok(2));
    assert!(start.elapsed() >= Duration::from_millis(15));
    q.close();
    assert_eq!(q.insert_at(3, start).unwrap_err().into_inner(), 3);
}
