//! No unbounded garbage: a thread that used the map and then stopped
//! calling it (alive, idle) does not hold back the reclamation of what
//! other threads retire; a view held across calls does (the control that
//! shows the test can fail), until it is dropped or repinned.
//!
//! The idle-thread test caught a real leak: the idle thread's last grave
//! ticket stayed in its unflushed epoch bag, and the shard's queue, swept
//! front to back, stopped at it for good (see "Overtaking" in
//! `src/map/grave.rs`).
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use latchfree::map::{Collector, HashMap};

/// Replacements per phase: each retires one value.
const N: usize = if cfg!(miri) { 600 } else { 50_000 };

/// Values retired but not yet dropped that a thread may leave behind
/// without holding reclamation back (graves batch by 32, tickets wait two
/// epochs, a writer drops 4 a commit): far below `N`.
const BOUND: usize = if cfg!(miri) { 300 } else { 2_000 };

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the test watches: values made and values dropped.
#[derive(Clone, Default)]
struct Counts {
    made: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Counts {
    fn value(&self) -> Counted {
        self.made.fetch_add(1, Ordering::Relaxed);
        Counted(self.dropped.clone())
    }

    /// Made, not dropped, and not in the map.
    fn waiting(&self, in_map: usize) -> usize {
        self.made.load(Ordering::Relaxed) - self.dropped.load(Ordering::Relaxed) - in_map
    }
}

/// Replaces key 0's value `N` times through the self-pinning (per-call)
/// methods: each call retires the previous value.
fn churn(map: &HashMap<u64, Counted>, c: &Counts) {
    for _ in 0..N {
        map.pin().insert(0, c.value());
    }
}

fn step(tx: &Sender<()>, rx: &Receiver<()>) {
    tx.send(()).unwrap();
    rx.recv().unwrap();
}

/// The scenario, for a map on `collector` (the default one: the
/// thread-local pin; a private one: a participant registered per pin, as
/// without `std`).
fn idle_thread_holds_nothing(map: HashMap<u64, Counted>) {
    let map = Arc::new(map);
    let c = Counts::default();
    map.pin().insert(0, c.value());
    let (to_main, from_reader) = channel();
    let (to_reader, from_main) = channel();
    let reader = {
        let (map, c) = (map.clone(), c.clone());
        std::thread::spawn(move || {
            // Every per-call method, reading and writing.
            assert!(map.pin().get(&0).is_some());
            assert!(map.pin().contains_key(&0));
            map.pin().insert(1, c.value());
            assert!(map.pin().remove(&1).is_some());
            map.pin().update(0, |_| c.value());
            // A held view: reclamation waits for it.
            {
                let m = map.pin();
                assert!(m.get(&0).is_some());
                step(&to_main, &from_main);
            }
            // The per-call methods again, then the thread stops calling
            // the map and idles (alive) until the test ends.
            assert!(map.pin().get(&0).is_some());
            map.pin().insert(2, c.value());
            step(&to_main, &from_main);
        })
    };
    // Phase 1, the control: the reader holds a view, so (nearly) nothing
    // retired meanwhile may be dropped.
    from_reader.recv().unwrap();
    let before = c.dropped.load(Ordering::Relaxed);
    churn(&map, &c);
    let freed = c.dropped.load(Ordering::Relaxed) - before;
    assert!(
        freed < N / 10,
        "{freed} of {N} values dropped while a reader held a view of them"
    );
    // Phase 2: the reader dropped its view, made a few per-call calls and
    // went idle. What it left pinned must not hold back anything.
    to_reader.send(()).unwrap();
    from_reader.recv().unwrap();
    churn(&map, &c);
    let waiting = c.waiting(map.len());
    assert!(
        waiting <= BOUND,
        "{waiting} retired values still waiting while the only other thread idles \
         (bound {BOUND}): it holds reclamation back"
    );
    to_reader.send(()).unwrap();
    reader.join().unwrap();
    drop(map);
    assert_eq!(c.waiting(0), 0, "the map's drop drops everything");
}

#[test]
fn an_idle_thread_holds_back_no_garbage() {
    // The default collector's thread-local pin, then a private collector's.
    idle_thread_holds_nothing(HashMap::builder().shards(1).build());
    idle_thread_holds_nothing(
        HashMap::builder()
            .shards(1)
            .collector(Collector::new())
            .build(),
    );
}

#[test]
fn a_repinned_view_bounds_garbage() {
    // A view kept for a whole run of operations: without `repin` it holds
    // back everything the run retires; repinned every 64 operations, it
    // holds back at most what about that many retire.
    for repin in [false, true] {
        let c = Counts::default();
        let map: HashMap<u64, Counted> = HashMap::builder()
            .shards(1)
            .collector(Collector::new())
            .build();
        let mut m = map.pin();
        for i in 0..N {
            m.insert(0, c.value());
            if repin && i % 64 == 63 {
                m.repin();
            }
        }
        let waiting = c.waiting(m.len());
        if repin {
            assert!(
                waiting <= BOUND,
                "{waiting} waiting with repin (bound {BOUND})"
            );
        } else {
            assert!(waiting > N / 2, "only {waiting} waiting behind a held view");
        }
        drop(m);
        drop(map);
        assert_eq!(c.waiting(0), 0);
    }
}
