#![cfg(latchfree_loom)]
//! Loom models of the buffer module: the lock-free idle set (ownership of
//! each boxed object moves with one RMW, so concurrent puts and takes never
//! lose an object nor hand one to two owners) and `ObjectPool`'s bound
//! (never exceeded, counting objects being created or returned, and never
//! leaked, also when `init` panics).

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use latchfree::buffer::{IdleSet, ObjectPool};
use loom::sync::Arc;
use loom::thread;
use support::model;

/// Two threads each put their object and take one back while the set has
/// room for one: every object ends up with exactly one owner (a taker, the
/// putter it was refused to, or the set).
#[test]
fn idle_set_put_take_never_loses_or_duplicates() {
    model(|| {
        let set = Arc::new(IdleSet::new(1));
        let threads: Vec<_> = (0..2usize)
            .map(|id| {
                let set = set.clone();
                thread::spawn(move || {
                    let mut owned = Vec::new();
                    if let Err(refused) = set.put(Box::new(id)) {
                        owned.push(*refused);
                    }
                    if let Some(b) = set.take() {
                        owned.push(*b);
                    }
                    owned
                })
            })
            .collect();
        let mut all: Vec<usize> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        set.drain(|b| all.push(*b));
        all.sort_unstable();
        assert_eq!(all, [0, 1], "an object was lost or owned twice");
    });
}

/// Objects alive (made by `init`, not yet dropped), checked every time one
/// is made. The pool keeps nothing idle, so a returned object is dropped:
/// if the bound's unit came back before that drop, another thread's `init`
/// could run while the old object is alive.
struct Counted(&'static StdAtomicUsize);

impl Counted {
    fn new(live: &'static StdAtomicUsize, bound: usize) -> Self {
        let n = live.fetch_add(1, StdOrdering::SeqCst) + 1;
        assert!(n <= bound, "{n} objects alive with a bound of {bound}");
        Counted(live)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, StdOrdering::SeqCst);
    }
}

#[test]
fn object_pool_bound_is_never_exceeded() {
    model(|| {
        // Loom runs one thread at a time, so a plain counter is exact.
        let live: &'static StdAtomicUsize = Box::leak(Box::new(StdAtomicUsize::new(0)));
        let pool = Arc::new(ObjectPool::new(0, move || Counted::new(live, 1)).with_bound(1));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || {
                    if let Some(o) = pool.try_get() {
                        drop(o);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // Neither held a unit at the end: the whole bound is free again.
        assert!(pool.try_get().is_some(), "a unit of the bound leaked");
        assert_eq!(live.load(StdOrdering::SeqCst), 0);
    });
}

#[test]
fn object_pool_panicking_init_gives_its_unit_back() {
    model(|| {
        let calls = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let pool = Arc::new(
            ObjectPool::new(1, move || {
                // The first `init` panics, whichever thread runs it.
                if c.fetch_add(1, loom::sync::atomic::Ordering::Relaxed) == 0 {
                    std::panic::panic_any("init failed");
                }
                0u8
            })
            .with_bound(1),
        );
        let p2 = pool.clone();
        let t = thread::spawn(move || {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(p2.try_get())));
        });
        let _ = catch_unwind(AssertUnwindSafe(|| drop(pool.try_get())));
        t.join().unwrap();
        assert!(
            pool.try_get().is_some(),
            "the panicking init leaked its unit"
        );
    });
}
