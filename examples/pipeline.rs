//! A ring pipeline in miniature: three producers publish orders into a
//! multi-producer ring; a journaller and a risk checker handle every order
//! in parallel; a matcher runs after both (a diamond); a work group of two
//! settlement workers shares the matched orders. At the end it checks that
//! every order was seen exactly once by each stage, and exits non-zero if
//! not.
//!
//! ```text
//! cargo run --release --example pipeline -- [orders_per_producer]
//! ```
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use latchfree::ring::Disruptor;
use latchfree::ring::{Heap, Multi, Parking, Ring};

#[derive(Default, Clone, Copy)]
struct Order {
    id: u64,
    qty: u64,
    price: u64,
}

#[derive(Default)]
struct Tally {
    count: AtomicU64,
    qty: AtomicU64,
    ids: AtomicU64,
}

impl Tally {
    fn add(&self, o: &Order) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.qty.fetch_add(o.qty, Ordering::Relaxed);
        self.ids.fetch_add(o.id, Ordering::Relaxed);
    }
}

fn main() {
    let per_producer: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    const PRODUCERS: u64 = 3;

    let ring = Arc::new(Ring::<Heap<Order>, Multi, Parking>::with_wait(
        Heap::builder(4096).gates(8).build().expect("capacity"),
        Parking::new(),
    ));
    let stages: Arc<[Tally; 4]> = Arc::new(Default::default());
    let (j, r, m) = (stages.clone(), stages.clone(), stages.clone());
    let settle: Vec<_> = (0..2)
        .map(|_| {
            let s = stages.clone();
            move |o: &Order, _seq: u64, _eob: bool| s[3].add(o)
        })
        .collect();

    let (producer, disruptor) = Disruptor::builder(ring)
        .expect("fresh ring")
        .thread_name_prefix("orders")
        .handle_events_with(move |o: &Order, _seq, _eob| j[0].add(o)) // journal
        .handle_events_with(move |o: &Order, _seq, _eob| {
            assert!(o.price > 0, "risk check");
            r[1].add(o)
        })
        .then(move |o: &Order, _seq, _eob| m[2].add(o)) // matcher, after both
        .then_workers(settle) // each matched order settled once
        .build_multi()
        .expect("graph");

    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let mut producer = producer.clone();
            s.spawn(move || {
                for i in 0..per_producer {
                    producer
                        .publish(|o| {
                            *o = Order {
                                id: p * per_producer + i,
                                qty: 1 + i % 7,
                                price: 100 + i % 13,
                            }
                        })
                        .expect("ring open");
                }
            });
        }
    });
    drop(producer); // the last producer handle closes the ring
    disruptor.shutdown(); // every stage drains, then the threads join
    let elapsed = start.elapsed();

    let total = PRODUCERS * per_producer;
    let want_qty: u64 = PRODUCERS * (0..per_producer).map(|i| 1 + i % 7).sum::<u64>();
    println!(
        "{total} orders through a 4-stage diamond in {:.2?}: {:.1} M orders/s",
        elapsed,
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
    let mut ok = true;
    for (name, t) in ["journal", "risk", "matcher", "settlement"]
        .iter()
        .zip(stages.iter())
    {
        let (c, q) = (
            t.count.load(Ordering::Relaxed),
            t.qty.load(Ordering::Relaxed),
        );
        let good = c == total && q == want_qty;
        ok &= good;
        println!(
            "  {name:<10} saw {c:>9} orders, qty {q:>10}  {}",
            if good { "ok" } else { "MISMATCH" }
        );
    }
    if !ok {
        eprintln!("consistency check FAILED");
        std::process::exit(1);
    }
    println!("consistency check passed: every order handled exactly once per stage");
}
