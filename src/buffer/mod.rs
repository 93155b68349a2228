//! Object and byte-buffer pools (`alloc`; `std` adds a per-thread cache
//! and `io::Write`).
//!
//! Both pools keep idle objects in a bounded, lock-free idle set
//! (an array of atomic pointer cells that own boxed objects; ownership moves
//! with one successful RMW, so there is no ABA). Getting and returning an
//! object is lock-free; creating one calls the allocator (or your `init`).
//!
//! - [`ObjectPool<T>`]: `init` and `reset` hooks, a borrowed guard
//!   ([`Pooled`]) and an owned one ([`OwnedPooled`], holding an `Arc` of the
//!   pool), an optional bound on objects in use with [`ObjectPool::try_get`].
//! - [`BufferPool`]: `Vec<u8>` buffers in power-of-two size classes.
//!   [`BufferPool::get`] returns a [`Buffer`] of at least the asked capacity
//!   that goes back, cleared, when dropped. A buffer that grew past the
//!   maximum retained capacity is freed instead of pinned (Go's
//!   `sync.Pool` pins them); each class keeps at most its idle limit;
//!   [`BufferPool::trim`] frees every idle buffer.
//!
//! Nothing here is thread-bound: an object taken on one thread may be
//! returned on another.
//!
//! With `std`, each thread keeps one returned buffer in a thread-local
//! cache in front of the shared set, so a get/put loop on one thread does
//! not touch shared memory at all. That buffer is out of reach of other
//! threads and of [`BufferPool::trim`] called elsewhere (at most one buffer
//! per thread, freed when the thread exits, when the pool is dropped on
//! it, or, for a pool dropped elsewhere, when the thread next returns a
//! buffer to another pool, which then takes the cache over).

mod bytes;
pub(crate) mod idle;
mod object;
#[cfg(feature = "std")]
mod std_cache;
#[cfg(feature = "std")]
mod std_io;
#[cfg(test)]
mod tests;

pub use self::bytes::{Buffer, BufferPool, BufferPoolBuilder};
pub use self::object::{ObjectPool, OwnedPooled, Pooled};

use crate::sync::{AtomicUsize, Ordering};

/// Counters shared by both pools; each read is a point-in-time value.
///
/// ```
/// use latchfree::buffer::BufferPool;
///
/// let pool = BufferPool::new();
/// drop(pool.get(1000)); // a miss: created, then kept
/// drop(pool.get(1000)); // a hit
/// let m = pool.metrics();
/// assert_eq!((m.hits, m.misses, m.created), (1, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Gets served from an idle object.
    pub hits: usize,
    /// Gets that found nothing idle.
    pub misses: usize,
    /// Objects created (misses that did not give up).
    pub created: usize,
    /// Returned objects dropped instead of kept (idle limit, too large).
    pub dropped: usize,
    /// Bytes held by idle buffers, counted at their class sizes (a buffer
    /// may hold up to twice its class); computed by a scan when asked, so
    /// the get/put path pays nothing for it (`BufferPool` only).
    pub idle_bytes: usize,
}

#[derive(Default)]
struct Stats {
    hits: AtomicUsize,
    misses: AtomicUsize,
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl Stats {
    // Relaxed throughout: independent counters, read only as metrics.
    fn bump(c: &AtomicUsize) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Metrics {
        let r = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        Metrics {
            hits: r(&self.hits),
            misses: r(&self.misses),
            created: r(&self.created),
            dropped: r(&self.dropped),
            idle_bytes: 0,
        }
    }
}
