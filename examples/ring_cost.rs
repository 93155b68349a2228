//! Single-thread cost of publish + consume, for counting instructions and
//! cache misses per event under cachegrind (deterministic on a loaded
//! machine, unlike wall-clock time).
//!
//! ```text
//! cargo build --release --example ring_cost
//! valgrind --tool=cachegrind --cache-sim=yes \
//!     target/release/examples/ring_cost <impl> <events> [burst]
//! ```
//!
//! `<impl>` is `latchfree` (producer `publish`, consumer `poll`),
//! `latchfree_wait` (consumer `wait`), `latchfree_multi` (a `Multi` ring),
//! `latchfree_async` (as `latchfree` on a ring with the `AsyncWait` strategy
//! that nobody awaits),
//! `latchfree_spsc` (`ring::Spsc`, `try_push`/`try_pop`),
//! `disruptor` (single producer, `EventPoller::poll`), `disruptor_multi`
//! (its multi-producer sequencer), `arrayqueue` (crossbeam's MPMC queue) or
//! `rtrb` (`push`/`pop`). Each round publishes `burst` u64 events one at a time
//! (default 1), then consumes them; ring capacity 4096, no other thread.
//! Run it twice with different event counts and divide the difference of
//! the totals by the difference of the counts: set-up cost cancels out and
//! what is left is the cost per event.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;

use disruptor::{Polling, Producer as _};
use latchfree::ring::{AsyncWait, BusySpin, Heap, Multi, Poll, Ring, Single, Spsc};

const CAP: usize = 4096;

/// A single-producer ring with one consumer; `$drain` consumes one round.
macro_rules! latchfree_single {
    ($events:expr, $burst:expr, $wait:expr, |$c:ident, $sum:ident| $drain:expr) => {{
        let ring = Ring::<Heap<u64>, Single, _>::with_wait(
            Heap::builder(CAP).gates(1).build().expect("capacity"),
            $wait,
        );
        let mut g = Ring::graph(&ring).expect("graph");
        let mut $c = g.consumer(&[]).expect("gate");
        let mut p = g.single_producer().unwrap();
        let mut $sum = 0u64;
        let mut v = 0u64;
        while v < $events {
            for _ in 0..$burst {
                v += 1;
                p.publish(|slot| *slot = v).expect("open");
            }
            let got: usize = $drain;
            assert_eq!(got as u64, $burst);
        }
        $sum
    }};
}

#[inline(never)]
fn latchfree_poll(events: u64, burst: u64) -> u64 {
    latchfree_single!(
        events,
        burst,
        BusySpin,
        |c, sum| match c.poll(|e, _, _| sum += *e) {
            Poll::Processed(k) => k,
            other => panic!("latchfree: {other:?}"),
        }
    )
}

#[inline(never)]
fn latchfree_wait(events: u64, burst: u64) -> u64 {
    latchfree_single!(events, burst, BusySpin, |c, sum| c
        .wait(|e, _, _| sum += *e)
        .expect("events"))
}

#[inline(never)]
fn latchfree_async(events: u64, burst: u64) -> u64 {
    latchfree_single!(
        events,
        burst,
        AsyncWait::<BusySpin>::with(BusySpin),
        |c, sum| match c.poll(|e, _, _| sum += *e) {
            Poll::Processed(k) => k,
            other => panic!("latchfree async: {other:?}"),
        }
    )
}

#[inline(never)]
fn latchfree_multi(events: u64, burst: u64) -> u64 {
    let ring = Ring::<Heap<u64>, Multi, BusySpin>::with_wait(
        Heap::builder(CAP).gates(1).build().expect("capacity"),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).expect("graph");
    let mut c = g.consumer(&[]).expect("gate");
    let mut p = g.multi_producer().unwrap();
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < events {
        for _ in 0..burst {
            v += 1;
            p.publish(|slot| *slot = v).expect("open");
        }
        match c.poll(|e, _, _| sum += *e) {
            Poll::Processed(k) => assert_eq!(k as u64, burst),
            other => panic!("latchfree multi: {other:?}"),
        }
    }
    sum
}

#[inline(never)]
fn disruptor(events: u64, burst: u64) -> u64 {
    let (mut poller, b) =
        disruptor::build_single_producer(CAP, || 0u64, disruptor::BusySpin).new_event_poller();
    let mut p = b.build();
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < events {
        for _ in 0..burst {
            v += 1;
            p.publish(|slot| *slot = v);
        }
        match poller.poll() {
            Ok(mut batch) => {
                let mut k = 0;
                for e in &mut batch {
                    sum += *e;
                    k += 1;
                }
                assert_eq!(k, burst);
            }
            Err(Polling::NoEvents | Polling::Shutdown) => panic!("disruptor: no events"),
        }
    }
    sum
}

#[inline(never)]
fn disruptor_multi(events: u64, burst: u64) -> u64 {
    let (mut poller, b) =
        disruptor::build_multi_producer(CAP, || 0u64, disruptor::BusySpin).new_event_poller();
    let mut p = b.build();
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < events {
        for _ in 0..burst {
            v += 1;
            p.publish(|slot| *slot = v);
        }
        match poller.poll() {
            Ok(mut batch) => {
                let mut k = 0;
                for e in &mut batch {
                    sum += *e;
                    k += 1;
                }
                assert_eq!(k, burst);
            }
            Err(Polling::NoEvents | Polling::Shutdown) => panic!("disruptor: no events"),
        }
    }
    sum
}

/// latchfree's `Spsc` (the ring's front without a graph): `try_push` /
/// `try_pop`, as `rtrb` is measured.
#[inline(never)]
fn latchfree_spsc(events: u64, burst: u64) -> u64 {
    let queue = Box::new(Spsc::<u64, CAP>::new());
    let (mut tx, mut rx) = queue.split().expect("first split");
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < events {
        for _ in 0..burst {
            v += 1;
            tx.try_push(v).expect("room");
        }
        for _ in 0..burst {
            sum += rx.try_pop().expect("event");
        }
    }
    sum
}

/// crossbeam's `ArrayQueue` (the MPMC peer of the multi-producer rows).
#[inline(never)]
fn arrayqueue(events: u64, burst: u64) -> u64 {
    let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < events {
        for _ in 0..burst {
            v += 1;
            q.push(v).expect("room");
        }
        for _ in 0..burst {
            sum += q.pop().expect("event");
        }
    }
    sum
}

#[inline(never)]
fn rtrb(events: u64, burst: u64) -> u64 {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < events {
        for _ in 0..burst {
            v += 1;
            tx.push(v).expect("room");
        }
        for _ in 0..burst {
            sum += rx.pop().expect("event");
        }
    }
    sum
}

fn main() {
    let mut args = std::env::args().skip(1);
    let imp = args.next().unwrap_or_else(|| "latchfree".to_owned());
    let events: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("events"));
    let burst: u64 = args.next().map_or(1, |a| a.parse().expect("burst"));
    assert!(burst >= 1 && burst as usize <= CAP && events % burst == 0);
    let events = black_box(events);
    let sum = match imp.as_str() {
        "latchfree" => latchfree_poll(events, burst),
        "latchfree_wait" => latchfree_wait(events, burst),
        "latchfree_multi" => latchfree_multi(events, burst),
        "latchfree_async" => latchfree_async(events, burst),
        "latchfree_spsc" => latchfree_spsc(events, burst),
        "disruptor" => disruptor(events, burst),
        "disruptor_multi" => disruptor_multi(events, burst),
        "arrayqueue" => arrayqueue(events, burst),
        "rtrb" => rtrb(events, burst),
        other => {
            eprintln!("ring_cost: unknown impl '{other}'");
            std::process::exit(2);
        }
    };
    assert_eq!(
        sum,
        events * (events + 1) / 2,
        "{imp}: lost or duplicated events"
    );
    println!("{imp} events={events} burst={burst} sum={sum}");
}
