//! A `static` ring with inline storage runs with no allocator at all: this
//! test counts every allocation made on the producer's and the consumer's
//! threads while they move events through a `static` ring, and requires
//! zero. Only those two threads count: the test harness's own threads may
//! allocate at any time (a slow-test warning on a loaded machine, say).
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use latchfree::ring::{BusySpin, Inline, Poll, Ring, Single};

struct Counting;

static START: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const`, no destructor: reading it never allocates, so the allocator
    // may look at it.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count_this_thread(on: bool) {
    COUNTED.with(|c| c.set(on));
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Reading {
    sensor: u16,
    value: u32,
}

const EMPTY: Reading = Reading {
    sensor: 0,
    value: 0,
};

static RING: Ring<Inline<Reading, 16, 2>, Single, BusySpin> =
    Ring::with_wait(Inline::new([EMPTY; 16]), BusySpin);

#[test]
fn a_static_ring_moves_events_without_allocating() {
    const N: u32 = 100_000;
    let mut graph = Ring::graph(&RING).unwrap();
    let mut consumer = graph.consumer(&[]).unwrap();
    let mut producer = graph.single_producer().unwrap();
    // Spawning a thread allocates; start counting once both sides exist.
    let (sum, allocs) = std::thread::scope(|s| {
        let c = s.spawn(move || {
            while !START.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            count_this_thread(true);
            let mut sum = 0u64;
            let mut done = false;
            while !done {
                match consumer.poll(|r, _, _| sum += u64::from(r.value) + u64::from(r.sensor)) {
                    Poll::Closed => done = true,
                    _ => std::hint::spin_loop(),
                }
            }
            count_this_thread(false);
            sum
        });
        count_this_thread(true);
        START.store(true, Ordering::Release);
        for i in 0..N {
            producer
                .publish(|r| {
                    *r = Reading {
                        sensor: 1,
                        value: i,
                    }
                })
                .unwrap();
        }
        drop(producer);
        count_this_thread(false);
        let sum = c.join().unwrap();
        (sum, ALLOCS.load(Ordering::Relaxed))
    });
    assert_eq!(sum, u64::from(N) * u64::from(N - 1) / 2 + u64::from(N));
    assert_eq!(allocs, 0, "the ring allocated");
}
