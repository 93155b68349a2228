#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use super::*;
use crate::sync::time::Instant;
use crate::sync::AtomicBool;
use std::sync::atomic::AtomicUsize as StdAtomic;
use std::sync::{Arc as StdArc, Mutex as StdMutex};
use std::thread;
use std::vec::Vec;

type Log = StdArc<StdMutex<Vec<Vec<u32>>>>;

fn recorder(log: &Log) -> impl FnMut(&mut Vec<u32>) -> Result<(), ()> + Send + Clone + 'static {
    let log = log.clone();
    move |b: &mut Vec<u32>| {
        assert!(!b.is_empty(), "empty batch");
        log.lock().unwrap().push(b.clone());
        Ok(())
    }
}

#[test]
fn batches_by_items_keep_order_and_drain_on_close() {
    let log: Log = Default::default();
    let b = Batcher::builder::<()>()
        .max_items(4)
        .max_delay(Duration::from_secs(10))
        .build(recorder(&log))
        .unwrap();
    for i in 0..10 {
        b.push(i).unwrap();
    }
    b.close();
    assert!(b.push(99).is_err());
    let all: Vec<u32> = log.lock().unwrap().iter().flatten().copied().collect();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    let m = b.metrics();
    assert_eq!(
        (m.by_items, m.by_close, m.delivered, m.accepted),
        (2, 1, 10, 10)
    );
    assert!(log.lock().unwrap().iter().all(|b| b.len() <= 4));
}

#[test]
fn time_and_manual_flush() {
    let log: Log = Default::default();
    let b = Batcher::builder::<()>()
        .max_items(1000)
        .max_delay(Duration::from_millis(20))
        .build(recorder(&log))
        .unwrap();
    b.push(1).unwrap();
    b.push(2).unwrap();
    let t = Instant::now();
    while log.lock().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(1));
    }
    assert!(t.elapsed() >= Duration::from_millis(10));
    assert_eq!(b.metrics().by_time, 1);
    b.push(3).unwrap();
    b.flush();
    assert_eq!(log.lock().unwrap().last().unwrap(), &[3]);
    assert_eq!(b.metrics().by_manual, 1);
    b.flush();
    assert_eq!(b.metrics().batches, 2, "no empty batch on an empty flush");
}

#[test]
fn bytes_limit_and_natural_batching() {
    let log: Log = Default::default();
    let b = Batcher::builder::<()>()
        .max_items(100)
        .max_bytes(10, |x: &u32| *x as usize)
        .max_delay(Duration::ZERO)
        .build(recorder(&log))
        .unwrap();
    for x in [4, 4, 4, 20, 1] {
        b.push(x).unwrap();
    }
    b.flush();
    drop(b);
    for batch in log.lock().unwrap().iter() {
        let sum: u32 = batch.iter().sum();
        assert!(sum <= 10 || batch.len() == 1, "{batch:?}");
    }
}

#[test]
fn errors_and_panics_reach_the_callback() {
    let failed = StdArc::new(StdAtomic::new(0));
    let f2 = failed.clone();
    // Batches form by items only (a delay could split them on a slow run,
    // as under Miri).
    let b = Batcher::builder::<&'static str>()
        .max_items(2)
        .max_delay(Duration::from_secs(60))
        .on_error(move |e, items: &mut Vec<u32>| {
            assert!(!items.is_empty());
            if let BatchError::Failed(msg) = e {
                assert_eq!(msg, "odd");
            }
            f2.fetch_add(items.len(), Ordering::Relaxed);
        })
        .build(|b: &mut Vec<u32>| {
            if b[0] == 0 {
                panic!("zero");
            }
            if b[0] % 2 == 1 {
                return Err("odd");
            }
            Ok(())
        })
        .unwrap();
    for x in [0, 0, 1, 1, 2, 2] {
        b.push(x).unwrap();
    }
    b.close();
    let m = b.metrics();
    assert_eq!((m.failed, m.panicked, m.delivered), (2, 1, 6));
    assert_eq!(failed.load(Ordering::Relaxed), 4);
}

#[test]
fn try_push_full_and_many_flushers() {
    let gate = StdArc::new(std::sync::Barrier::new(2));
    let g2 = gate.clone();
    let first = StdArc::new(AtomicBool::new(true));
    let b = Batcher::builder::<()>()
        .max_items(1)
        .queue_capacity(2)
        .build(move |_b: &mut Vec<u32>| {
            if first.swap(false, Ordering::SeqCst) {
                g2.wait();
            }
            Ok(())
        })
        .unwrap();
    b.push(0).unwrap();
    thread::sleep(Duration::from_millis(20));
    b.try_push(1).unwrap();
    b.try_push(2).unwrap();
    assert!(b.try_push(3).unwrap_err().is_full());
    assert!(b
        .push_timeout(3, Duration::from_millis(5))
        .unwrap_err()
        .is_full());
    gate.wait();
    b.close();
    assert_eq!(b.metrics().delivered, 3);

    let seen = StdArc::new(StdAtomic::new(0));
    let s2 = seen.clone();
    let b = Batcher::builder::<()>()
        .flushers(2)
        .max_items(8)
        .build(move |b: &mut Vec<u32>| {
            s2.fetch_add(b.len(), Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let n = if cfg!(miri) { 40 } else { 1000 };
    for i in 0..n {
        b.push(i).unwrap();
    }
    b.flush();
    assert_eq!(seen.load(Ordering::Relaxed), n as usize);
}
