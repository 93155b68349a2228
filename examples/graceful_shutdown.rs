//! Graceful shutdown of a service built on latchfree's thread pool and
//! batcher.
//!
//! Producer threads submit requests to a pool; each request's handler
//! pushes a record into a batcher whose handler "writes" batches, and pushes
//! an audit event to a task queue (one handler, in order). After a
//! while a shutdown signal arrives (here a timer standing in for SIGTERM
//! from an orchestrator): the service stops accepting, drains the pool and
//! then the batcher, and checks that nothing accepted was lost:
//! accepted = delivered.
//!
//! ```text
//! cargo run --release --example graceful_shutdown
//! ```
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use latchfree::batch::Batcher;
use latchfree::batch::{TaskError, TaskQueue};
use latchfree::pool::ThreadPool;

fn main() {
    let written = Arc::new(AtomicUsize::new(0));
    let w2 = written.clone();
    let batcher = Arc::new(
        Batcher::builder::<std::io::Error>()
            .max_items(256)
            .max_delay(Duration::from_millis(5))
            .queue_capacity(4096)
            .build(move |batch: &mut Vec<u64>| {
                // Stand-in for a write to a log or a database.
                w2.fetch_add(batch.len(), Ordering::Relaxed);
                Ok(())
            })
            .unwrap(),
    );
    let audited = Arc::new(AtomicUsize::new(0));
    let a2 = audited.clone();
    let audit = Arc::new(
        TaskQueue::builder()
            .queue_capacity(4096)
            .on_error(|e: TaskError<String>| eprintln!("audit: {e}"))
            .build(move |_request: u64| {
                // Stand-in for an audit-log append.
                a2.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap(),
    );
    let pool = Arc::new(
        ThreadPool::builder()
            .min_workers(1)
            .max_workers(4)
            .queue_capacity(1024)
            .thread_name("service")
            .build()
            .unwrap(),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let (pool, batcher, audit) = (pool.clone(), batcher.clone(), audit.clone());
            let (stop, accepted, refused) = (stop.clone(), accepted.clone(), refused.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (b, a) = (batcher.clone(), audit.clone());
                    let request = (p as u64) << 32 | n;
                    n += 1;
                    let job = move || {
                        // The request's work, then its record.
                        if b.push(request).is_err() || a.push(request).is_err() {
                            unreachable!("both close only after the pool drained");
                        }
                    };
                    match pool.execute(job) {
                        Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                        // Closed: the service stopped accepting; the caller
                        // would answer 503 here.
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    // The shutdown signal.
    thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    println!("shutdown signal: stop accepting, drain");
    pool.shutdown(); // stop accepting, run everything queued, join
    batcher.close(); // hand every record to the writer, join
    audit.close(); // handle every audit event, join
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    let (accepted, delivered) = (
        accepted.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed),
    );
    let m = batcher.metrics();
    println!(
        "drained in {:?}: accepted = {accepted}, delivered = {delivered}, refused after close = {}, batches = {} (items {}, time {}, close {})",
        t.elapsed(),
        refused.load(Ordering::Relaxed),
        m.batches,
        m.by_items,
        m.by_time,
        m.by_close,
    );
    assert_eq!(accepted, delivered, "a request was lost");
    let m = audit.metrics();
    println!(
        "audited = {} (failed {})",
        audited.load(Ordering::Relaxed),
        m.failed
    );
    assert_eq!(m.pushed, accepted, "an audit event was refused");
    assert_eq!(
        audited.load(Ordering::Relaxed),
        accepted,
        "an audit event was lost"
    );
    // Draining what is in memory takes milliseconds; seconds would mean a
    // worker slept through the shutdown.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "shutdown drain stalled"
    );
    println!("accepted = delivered = audited: nothing lost");
}
