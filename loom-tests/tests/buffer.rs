#![cfg(latchfree_loom)]
//! Loom models of the buffer module: the lock-free idle set (ownership of
//! each boxed object moves with one RMW, so concurrent puts and takes never
//! lose an object nor hand one to two owners), `ObjectPool`'s bound (never
//! exceeded, counting objects being created or returned, and never leaked,
//! also when `init` panics) and `BufferPool`'s per-thread cache (a buffer
//! is never lent twice, every get is counted once, and a pool dropped on
//! another thread leaves its cache entry to be evicted).

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use latchfree::__loom::IdleSet;
use latchfree::buffer::{BufferPool, ObjectPool};
use loom::sync::mpsc::channel;
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

/// Two classes (64 and 128 bytes) of one idle buffer each: a model's every
/// atomic access is a branch point, and the defaults have 960 cells.
fn small_pool() -> BufferPool {
    BufferPool::builder()
        .max_retained(128)
        .max_idle_per_class(1)
        .build()
}

/// Two threads get, fill and return buffers of one pool, each through its
/// own cache and the shared class behind it: every buffer lent is empty
/// (never one another thread still fills), and every get is counted once,
/// as a hit (cache or class) or a miss.
#[test]
fn buffer_pool_caches_lend_each_buffer_once() {
    model(|| {
        let pool = Arc::new(small_pool());
        let threads: Vec<_> = (0..2u8)
            .map(|id| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        let mut b = pool.get(64);
                        assert!(b.is_empty(), "a lent buffer held another's bytes");
                        b.push(id);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let m = pool.metrics();
        assert_eq!(m.hits + m.misses, 4, "{m:?}");
        assert_eq!(m.created, m.misses);
    });
}

/// A pool dropped on another thread cannot reach this thread's cache; its
/// drop marks its entries dead, and this thread's next put to another pool
/// evicts the dead entry (freeing its buffer) and caches its own buffer.
#[test]
fn buffer_pool_dropped_elsewhere_gives_the_cache_up() {
    model(|| {
        let first = Arc::new(small_pool());
        let (cached_tx, cached_rx) = channel();
        let (dropped_tx, dropped_rx) = channel();
        let t = {
            let first = first.clone();
            thread::spawn(move || {
                drop(first.get(64)); // now in this thread's cache
                drop(first);
                cached_tx.send(()).unwrap();
                dropped_rx.recv().unwrap();
                let second = small_pool();
                drop(second.get(64));
                // Cached here, not idle in the shared class: the dead
                // entry gave the cache up.
                assert_eq!(second.metrics().idle_bytes, 0);
                drop(second.get(64));
                assert_eq!(second.metrics().hits, 1);
            })
        };
        cached_rx.recv().unwrap();
        drop(first); // the last handle: the pool drops here
        dropped_tx.send(()).unwrap();
        t.join().unwrap();
    });
}
