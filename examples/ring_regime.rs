//! Why a one-event-per-publish 1P1C run lands in one of two regimes, and
//! what decides which: a model of the two single-producer protocols,
//! stripped to their shared words, next to latchfree's ring and `rtrb`.
//!
//! ```text
//! cargo run --release --example ring_regime [events]
//! ```
//!
//! Every case moves `events` u64s (default 4.8 M, the shootout's count)
//! through a ring of 4096 from a producer pinned to core 0 to a consumer
//! pinned to core 1, busy-spinning with the CPU's spin-loop hint, and
//! checks the sum before its time counts. Cases run interleaved, 7 rounds;
//! each row is the median (min–max) and the events the consumer takes per
//! look at the producer's position (its batch).
//!
//! - `queue`: an SPSC queue's protocol (`rtrb`, `ring::Spsc`): the
//!   consumer stores its position after every event.
//! - `ring`: the Disruptor protocol (latchfree's ring, `disruptor`): the
//!   consumer takes everything published and stores its gate once per
//!   batch.
//! - `ring, gate every 64`: the same, with the gate also stored every 64
//!   events within a batch.
//! - `... +N consumer` / `+N producer`: `N` units of extra work per event
//!   on that side (an opaque loop step each, about a nanosecond).
//! - `latchfree` / `latchfree, back off N`: the real ring (`publish`,
//!   `wait`), the consumer optionally spinning `N` hints after a batch of
//!   fewer than 8 events; `rtrb`: the real `rtrb` (`push`/`pop`).
//!
//! What it showed on a 2-core Intel Xeon VM (see the ring section of
//! ARCHITECTURE.md): the regime is decided by which side is faster. A
//! consumer that keeps up with the producer stays at the front, takes a
//! few events per look, and its every look pulls the producer's position
//! line away from the producer's next store; a consumer slightly slower
//! than the producer falls behind and takes long batches, a line transfer
//! per hundreds of events. Extra work on the consumer's side raises the
//! rate, extra work on the producer's side lowers it.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::CachePadded;
use latchfree::ring::{BusySpin, ConsumeError, Heap, Ring, Single};

const CAP: usize = 4096;
const ROUNDS: usize = 7;

/// The model's ring: the producer's position, the consumer's, the slots.
struct Model {
    tail: CachePadded<AtomicUsize>,
    head: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<u64>]>,
}

// SAFETY: a slot is written by the producer only while the consumer's
// position says it is free, and read by the consumer only while the
// producer's says it is published; the Release/Acquire pairs on the two
// positions order those accesses.
unsafe impl Sync for Model {}

/// How the model's consumer releases slots, and the extra work per event.
#[derive(Clone, Copy)]
struct Shape {
    /// Store the consumer's position every this many events (1: after
    /// each, as a queue does; `usize::MAX`: once per batch).
    release_every: usize,
    consumer_work: usize,
    producer_work: usize,
}

/// Rate in M events/s and events per consumer look.
type Sample = (f64, f64);

/// `n` units of busy work of about a nanosecond each (an opaque value the
/// compiler cannot fold away).
fn work(n: usize) {
    for i in 0..n {
        std::hint::black_box(i);
    }
}

/// The machine's cores, read once before any thread is pinned (a pinned
/// thread's own list holds only its core, and spawned threads inherit it).
static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();

fn pin(core: usize) {
    let cores = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if let Some(&c) = cores.get(core) {
        core_affinity::set_for_current(c);
    }
}

fn model(n: usize, shape: Shape) -> Sample {
    let q = Model {
        tail: CachePadded::new(AtomicUsize::new(0)),
        head: CachePadded::new(AtomicUsize::new(0)),
        slots: (0..CAP).map(|_| UnsafeCell::new(0)).collect(),
    };
    let q = &q;
    std::thread::scope(|s| {
        let consumer = s.spawn(move || {
            pin(1);
            let (mut head, mut seen, mut sum, mut looks) = (0, 0, 0u64, 0u64);
            while head < n {
                if head == seen {
                    // Acquire: the slots below `tail` are written.
                    let t = q.tail.load(Ordering::Acquire);
                    if t == seen {
                        spin_loop();
                        continue;
                    }
                    seen = t;
                    looks += 1;
                }
                while head < seen {
                    work(shape.consumer_work);
                    // SAFETY: `head < seen <= tail`: published (see `Model`).
                    sum += unsafe { *q.slots[head % CAP].get() };
                    head += 1;
                    if head % shape.release_every.max(1) == 0 {
                        // Release: the read above before the slot's reuse.
                        q.head.store(head, Ordering::Release);
                    }
                }
                q.head.store(head, Ordering::Release);
            }
            (sum, looks)
        });
        pin(0);
        let start = Instant::now();
        let mut limit = CAP;
        for v in 0..n {
            while v == limit {
                // Acquire: the consumer's reads of the slot came first.
                let h = q.head.load(Ordering::Acquire);
                if h + CAP == limit {
                    spin_loop();
                    continue;
                }
                limit = h + CAP;
            }
            work(shape.producer_work);
            // SAFETY: `v < head + CAP`: the slot is free (see `Model`).
            unsafe { *q.slots[v % CAP].get() = v as u64 };
            // Release: the slot's write before its publication.
            q.tail.store(v + 1, Ordering::Release);
        }
        let (sum, looks) = consumer.join().expect("consumer");
        let rate = n as f64 / start.elapsed().as_secs_f64() / 1e6;
        check(sum, n);
        (rate, n as f64 / looks as f64)
    })
}

fn latchfree(n: usize, back_off: usize) -> Sample {
    let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let mut graph = Ring::graph(&ring).expect("graph");
    let mut consumer = graph.consumer(&[]).expect("gate");
    let mut producer = graph.single_producer().expect("producer");
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let (mut sum, mut looks) = (0u64, 0u64);
            loop {
                match consumer.wait(|e: &u64, _, _| sum += *e) {
                    Ok(k) => {
                        looks += 1;
                        if k < 8 {
                            for _ in 0..back_off {
                                spin_loop();
                            }
                        }
                    }
                    Err(ConsumeError::Closed) => break,
                    Err(e) => panic!("latchfree consumer: {e}"),
                }
            }
            (sum, looks)
        });
        pin(0);
        let start = Instant::now();
        for v in 0..n as u64 {
            producer.publish(|slot| *slot = v).expect("open");
        }
        drop(producer);
        let (sum, looks) = h.join().expect("consumer");
        let rate = n as f64 / start.elapsed().as_secs_f64() / 1e6;
        check(sum, n);
        (rate, n as f64 / looks as f64)
    })
}

fn rtrb(n: usize) -> Sample {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            pin(1);
            let (mut sum, mut got) = (0u64, 0);
            while got < n {
                match rx.pop() {
                    Ok(v) => {
                        sum += v;
                        got += 1;
                    }
                    Err(_) => spin_loop(),
                }
            }
            sum
        });
        pin(0);
        let start = Instant::now();
        for v in 0..n as u64 {
            let mut v = v;
            while let Err(rtrb::PushError::Full(back)) = tx.push(v) {
                v = back;
                spin_loop();
            }
        }
        let sum = h.join().expect("consumer");
        let rate = n as f64 / start.elapsed().as_secs_f64() / 1e6;
        check(sum, n);
        (rate, f64::NAN)
    })
}

fn check(sum: u64, n: usize) {
    let n = n as u64;
    assert_eq!(sum, n * (n - 1) / 2, "an event was lost or duplicated");
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4_800_000);
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    let shape = |release_every, consumer_work, producer_work| Shape {
        release_every,
        consumer_work,
        producer_work,
    };
    type Case = (String, Box<dyn Fn(usize) -> Sample>);
    let mut cases: Vec<Case> = vec![
        ("queue".into(), Box::new(move |n| model(n, shape(1, 0, 0)))),
        (
            "ring".into(),
            Box::new(move |n| model(n, shape(usize::MAX, 0, 0))),
        ),
        (
            "ring, gate every 64".into(),
            Box::new(move |n| model(n, shape(64, 0, 0))),
        ),
    ];
    for extra in [2, 5] {
        cases.push((
            format!("ring +{extra} consumer"),
            Box::new(move |n| model(n, shape(usize::MAX, extra, 0))),
        ));
        cases.push((
            format!("queue +{extra} producer"),
            Box::new(move |n| model(n, shape(1, 0, extra))),
        ));
    }
    cases.push(("latchfree".into(), Box::new(|n| latchfree(n, 0))));
    for back_off in [16, 64] {
        cases.push((
            format!("latchfree, back off {back_off}"),
            Box::new(move |n| latchfree(n, back_off)),
        ));
    }
    cases.push(("rtrb".into(), Box::new(rtrb)));
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (case, out) in cases.iter().zip(&mut samples) {
            out.push((case.1)(n));
        }
    }
    println!("{n} events, ring of {CAP}, producer on core 0, consumer on core 1, {ROUNDS} rounds");
    println!(
        "{:<28} {:>10} {:>22} {:>16}",
        "case", "M ev/s", "min .. max", "events per look"
    );
    for ((name, _), mut s) in cases.iter().zip(samples) {
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        let median = s[s.len() / 2];
        println!(
            "{:<28} {:>10.1} {:>10.1} .. {:>9.1} {:>16.1}",
            name,
            median.0,
            s[0].0,
            s[s.len() - 1].0,
            median.1
        );
    }
}
