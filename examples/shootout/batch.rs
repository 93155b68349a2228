//! Batcher against `batch-channel` and a crossbeam-channel + `recv_timeout`
//! batching loop: ns per item from push to handler, at batch sizes 1, 16,
//! 64 and 256 with 1 and 2 producers. Each consumer counts items and the
//! count is checked before the time is recorded.

// Host-only code: std paths are fine here.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use crate::report::{Better, Report};
use latchfree::batch::Batcher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const ITEMS: usize = 1_000_000;
const CAP: usize = 4096;
const LINGER: Duration = Duration::from_millis(1);

fn producers(n: usize, push: impl Fn(u64) + Sync) {
    thread::scope(|s| {
        for p in 0..n {
            let push = &push;
            s.spawn(move || {
                for i in 0..ITEMS / n {
                    push((p * ITEMS + i) as u64);
                }
            });
        }
    });
}

fn latchfree(batch: usize, np: usize) -> f64 {
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let b = Batcher::builder::<()>()
        .max_items(batch)
        .max_delay(LINGER)
        .queue_capacity(CAP)
        .build(move |v: &mut Vec<u64>| {
            c2.fetch_add(v.len(), Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let t = Instant::now();
    producers(np, |x| b.push(x).unwrap());
    b.close();
    let e = t.elapsed();
    assert_eq!(count.load(Ordering::Relaxed), ITEMS / np * np);
    e.as_nanos() as f64 / ITEMS as f64
}

fn batch_channel(batch: usize, np: usize) -> f64 {
    let (tx, rx) = batch_channel::bounded_sync::<u64>(CAP);
    let consumer = thread::spawn(move || {
        let mut v = Vec::with_capacity(batch);
        let mut n = 0;
        loop {
            rx.recv_vec(batch, &mut v);
            if v.is_empty() {
                return n;
            }
            n += v.len();
        }
    });
    let t = Instant::now();
    producers(np, |x| tx.send(x).unwrap());
    drop(tx);
    let n = consumer.join().unwrap();
    let e = t.elapsed();
    assert_eq!(n, ITEMS / np * np);
    e.as_nanos() as f64 / ITEMS as f64
}

fn crossbeam(batch: usize, np: usize) -> f64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
    let consumer = thread::spawn(move || {
        let mut v = Vec::with_capacity(batch);
        let mut n = 0;
        'outer: while let Ok(x) = rx.recv() {
            v.push(x);
            let deadline = Instant::now() + LINGER;
            while v.len() < batch {
                match rx.recv_deadline(deadline) {
                    Ok(x) => v.push(x),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        n += v.len();
                        break 'outer;
                    }
                }
            }
            n += v.len();
            v.clear();
        }
        n
    });
    let t = Instant::now();
    producers(np, |x| tx.send(x).unwrap());
    drop(tx);
    let n = consumer.join().unwrap();
    let e = t.elapsed();
    assert_eq!(n, ITEMS / np * np);
    e.as_nanos() as f64 / ITEMS as f64
}

pub fn run(r: &mut Report) {
    r.note("batch: batcher vs batch-channel, crossbeam-channel + recv_timeout loop");
    for np in [1, 2] {
        for batch in [1, 16, 64, 256] {
            let scenario = format!(
                "batch_{batch}_{np}_producer{}",
                if np > 1 { "s" } else { "" }
            );
            r.add(
                "batch",
                &scenario,
                "latchfree",
                "ns_per_item",
                latchfree(batch, np),
                Better::Lower,
            );
            r.add(
                "batch",
                &scenario,
                "batch-channel",
                "ns_per_item",
                batch_channel(batch, np),
                Better::Lower,
            );
            r.add(
                "batch",
                &scenario,
                "crossbeam-channel",
                "ns_per_item",
                crossbeam(batch, np),
                Better::Lower,
            );
        }
    }
}
