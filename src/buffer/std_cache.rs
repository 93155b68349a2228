//! The per-thread cache in front of a [`BufferPool`](super::BufferPool)'s
//! classes (`std`): one buffer, tagged with its pool and class, and the
//! thread's own hit counter for that pool.
//!
//! Ground rules: a counter is written only by the thread whose cache entry
//! holds it (a plain load and store, no read-modify-write); it passes to
//! another thread only through the pool's `free` list (a mutex), and every
//! counter ever made stays in the pool's `all` list, so `sum` counts every
//! hit. The entry stays while the thread uses the same pool (a get takes
//! the buffer out, a put puts it back), so the hit path allocates nothing
//! and touches no shared memory.
//!
//! An entry outlives its pool when the pool is dropped on another thread
//! (whose `forget` cannot reach this thread's cache): the pool's drop
//! marks the shared lists, and this thread's next put to any pool evicts
//! the dead entry and frees its buffer (or the thread's exit does).
//!
//! Everything here comes from `sync`, so under loom the cache is the
//! model-checked one (`loom-tests/tests/buffer.rs`).

// Boxed buffers, as everywhere in the buffer pool: see `BufferPool::recycle`.
#![allow(clippy::box_collection)]

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::sync::blocking::Mutex;
use crate::sync::{thread, Arc, AtomicBool, AtomicUsize, CachePadded, Ordering};
use crate::sync::{Ordering::Relaxed, UntrackedAtomicUsize};

type Counter = Arc<CachePadded<AtomicUsize>>;

/// A new pool's identity, never reused, naming its entries in the caches.
pub(super) fn next_pool_id() -> usize {
    static NEXT_ID: UntrackedAtomicUsize = UntrackedAtomicUsize::new(1);
    // Relaxed: a unique number, nothing ordered by it.
    NEXT_ID.fetch_add(1, Relaxed)
}

#[derive(Default)]
struct Lists {
    all: Vec<Counter>,
    free: Vec<Counter>,
}

/// What a pool shares with the thread caches holding its entries.
#[derive(Default)]
struct Shared {
    lists: Mutex<Lists>,
    /// Set once, when the pool drops.
    dropped: AtomicBool,
}

impl Shared {
    fn lists(&self) -> crate::sync::blocking::MutexGuard<'_, Lists> {
        // Nothing user-defined runs under the lock: it cannot be poisoned
        // half-way through an update.
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pool's per-thread hit counters.
#[derive(Default)]
pub(super) struct Counters(Arc<Shared>);

impl Counters {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Hits counted by every thread so far.
    pub(super) fn sum(&self) -> usize {
        // Relaxed: metrics; each counter only grows.
        self.0.lists().all.iter().map(|c| c.load(Relaxed)).sum()
    }

    fn counter(&self) -> Counter {
        let mut l = self.0.lists();
        if let Some(c) = l.free.pop() {
            return c;
        }
        let c = Counter::default();
        l.all.push(c.clone());
        c
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        // Relaxed: a thread that reads it stale keeps the dead pool's
        // buffer until a later put or its exit; nothing else depends on it.
        self.0.dropped.store(true, Relaxed);
    }
}

struct Entry {
    id: usize,
    class: usize,
    buf: Option<Box<Vec<u8>>>,
    hits: Counter,
    /// Where `hits` goes back when the entry is dropped.
    shared: Arc<Shared>,
}

impl Entry {
    #[cold]
    fn new(id: usize, counters: &Counters, class: usize, buf: Option<Box<Vec<u8>>>) -> Self {
        Entry {
            id,
            class,
            buf,
            hits: counters.counter(),
            shared: counters.0.clone(),
        }
    }

    fn pool_alive(&self) -> bool {
        !self.shared.dropped.load(Relaxed)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.shared.lists().free.push(self.hits.clone());
    }
}

thread::thread_local! {
    static CACHE: RefCell<Option<Entry>> = const { RefCell::new(None) };
}

/// This thread's buffer of pool `id`, class `class`, if it has one
/// (counted as a hit).
#[inline]
pub(super) fn take(id: usize, class: usize) -> Option<Box<Vec<u8>>> {
    CACHE
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let e = c.as_mut()?;
            if e.id != id || e.class != class {
                return None;
            }
            let b = e.buf.take()?;
            // Only this thread writes the counter (module docs).
            let h = &e.hits;
            h.store(h.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            Some(b)
        })
        .ok()
        .flatten()
}

/// Keeps `b` here if the cache holds no buffer; else hands it back.
#[inline]
pub(super) fn put(
    id: usize,
    counters: &Counters,
    class: usize,
    b: Box<Vec<u8>>,
) -> Option<Box<Vec<u8>>> {
    let mut b = Some(b);
    let _ = CACHE.try_with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return;
        };
        match &mut *c {
            Some(e) if e.id == id => {
                if e.buf.is_none() {
                    e.class = class;
                    e.buf = b.take();
                }
            }
            Some(e) if e.buf.is_some() && e.pool_alive() => {}
            // Empty, another pool's entry with no buffer, or a dropped
            // pool's (its buffer is freed now): this pool takes the cache
            // over.
            _ => *c = Some(Entry::new(id, counters, class, b.take())),
        }
    });
    b
}

/// Drops this thread's entry of pool `id` (its buffer is freed).
pub(super) fn forget(id: usize) {
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if matches!(&*c, Some(e) if e.id == id) {
                *c = None;
            }
        }
    });
}
