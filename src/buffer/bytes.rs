//! [`BufferPool`]: `Vec<u8>` buffers in power-of-two size classes, one
//! idle set per class, and the [`Buffer`] guard that lends them.
//!
//! Class `i` holds buffers whose capacity is at least `min << i`; a request
//! is served from the class of its size rounded up to a power of two, and a
//! returned buffer goes to the class of its capacity rounded down, so a
//! buffer always has at least its class's size. With `std`, a per-thread
//! cache of one buffer sits in front of the classes (`std_cache.rs`).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, DerefMut};

use super::idle::IdleSet;
#[cfg(feature = "std")]
use super::std_cache;
use super::{Metrics, Stats};

/// Configures a [`BufferPool`].
///
/// ```
/// use latchfree::buffer::BufferPool;
///
/// let pool = BufferPool::builder()
///     .min_size(256)
///     .max_retained(64 * 1024)
///     .max_idle_per_class(8)
///     .class_limit(16 * 1024, 32)
///     .build();
/// assert_eq!(pool.class_size(1000), 1024);
/// assert!(pool.get(100).capacity() >= 256);
/// ```
#[derive(Debug, Clone)]
pub struct BufferPoolBuilder {
    min_size: usize,
    max_retained: usize,
    max_idle: usize,
    limits: Vec<(usize, usize)>,
}

impl Default for BufferPoolBuilder {
    fn default() -> Self {
        Self {
            min_size: 64,
            max_retained: 1 << 20,
            max_idle: 64,
            limits: Vec::new(),
        }
    }
}

impl BufferPoolBuilder {
    /// The smallest class (rounded up to a power of two; default 64 B).
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// Buffers with more capacity than this (rounded up to a power of two;
    /// default 1 MiB) are freed on return, never kept idle.
    pub fn max_retained(mut self, bytes: usize) -> Self {
        self.max_retained = bytes;
        self
    }

    /// Idle buffers kept per class (default 64). More absorbs bigger
    /// bursts; fewer bounds idle memory.
    pub fn max_idle_per_class(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// Overrides the idle limit of the class holding `size`-byte buffers.
    pub fn class_limit(mut self, size: usize, n: usize) -> Self {
        self.limits.push((size.next_power_of_two(), n));
        self
    }

    /// Builds the pool.
    pub fn build(self) -> BufferPool {
        let min = self.min_size.max(1).next_power_of_two();
        let max = self.max_retained.max(min).next_power_of_two();
        let min_shift = min.trailing_zeros();
        let n = (max.trailing_zeros() - min_shift + 1) as usize;
        let classes = (0..n)
            .map(|i| {
                let size = min << i;
                let limit = self
                    .limits
                    .iter()
                    .rev()
                    .find(|l| l.0 == size)
                    .map_or(self.max_idle, |l| l.1);
                IdleSet::new(limit)
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        BufferPool {
            #[cfg(feature = "std")]
            id: std_cache::next_pool_id(),
            classes,
            min_shift,
            max_retained: max,
            stats: Stats::default(),
            #[cfg(feature = "std")]
            local_hits: std_cache::Counters::new(),
        }
    }
}

/// A pool of byte buffers in power-of-two size classes. See the
/// [module docs](super).
///
/// ```
/// use std::io::Write;
/// use latchfree::buffer::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get(16 * 1024);
/// write!(buf, "hello {}", 42).unwrap();
/// assert_eq!(&buf[..], b"hello 42");
/// drop(buf); // back to the pool, cleared
/// assert!(pool.get(16 * 1024).is_empty());
/// pool.trim(); // frees the idle buffers
/// ```
pub struct BufferPool {
    /// Unique per pool (never reused), names this pool's entry in the
    /// thread-local caches.
    #[cfg(feature = "std")]
    id: usize,
    /// Class `i` holds buffers whose capacity is at least `min << i` (and
    /// below `min << (i + 1)`, except for growth beyond the top class,
    /// which is never kept).
    classes: Box<[IdleSet<Vec<u8>>]>,
    min_shift: u32,
    max_retained: usize,
    stats: Stats,
    /// Hits served by thread caches, one counter per caching thread.
    #[cfg(feature = "std")]
    local_hits: std_cache::Counters,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("classes", &self.classes.len())
            .field("max_retained", &self.max_retained)
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl Default for BufferPool {
    fn default() -> Self {
        Self::new()
    }
}

impl BufferPool {
    /// A pool with the [`BufferPoolBuilder`] defaults.
    pub fn new() -> Self {
        BufferPoolBuilder::default().build()
    }

    /// Starts configuring a pool.
    pub fn builder() -> BufferPoolBuilder {
        BufferPoolBuilder::default()
    }

    /// The class size a request for `min_capacity` bytes is served from.
    pub fn class_size(&self, min_capacity: usize) -> usize {
        min_capacity
            .max(1 << self.min_shift)
            .checked_next_power_of_two()
            .unwrap_or(min_capacity)
    }

    fn class_of(&self, size: usize) -> Option<usize> {
        if size > self.max_retained || size < (1 << self.min_shift) {
            return None;
        }
        // The class whose size is the largest power of two <= size.
        let log = usize::BITS - 1 - size.leading_zeros();
        Some((log - self.min_shift) as usize)
    }

    /// An empty buffer with at least `min_capacity` bytes of capacity
    /// (rounded up to its class), returned to the pool when dropped.
    #[inline]
    pub fn get(&self, min_capacity: usize) -> Buffer<'_> {
        let size = self.class_size(min_capacity);
        if let Some(c) = self.class_of(size) {
            // The thread's own buffer: counted in the thread's own counter
            // (no shared write at all on this path).
            #[cfg(feature = "std")]
            if let Some(b) = std_cache::take(self.id, c) {
                return Buffer {
                    pool: self,
                    buf: Some(b),
                };
            }
            if let Some(b) = self.classes[c].take() {
                Stats::bump(&self.stats.hits);
                return Buffer {
                    pool: self,
                    buf: Some(b),
                };
            }
        }
        Stats::bump(&self.stats.misses);
        Stats::bump(&self.stats.created);
        Buffer {
            pool: self,
            buf: Some(Box::new(Vec::with_capacity(size))),
        }
    }

    // The box is the idle cell's allocation, kept with the buffer so that a
    // get or put moves one thin pointer and never allocates.
    #[allow(clippy::box_collection)]
    #[inline]
    fn recycle(&self, mut b: Box<Vec<u8>>) {
        b.clear();
        let cap = b.capacity();
        match self.class_of(cap) {
            Some(c) => {
                #[cfg(feature = "std")]
                let Some(b) = std_cache::put(self.id, &self.local_hits, c, b) else {
                    return;
                };
                self.recycle_shared(c, b);
            }
            None => Stats::bump(&self.stats.dropped),
        }
    }

    /// Back to the shared idle set (under `std`: the thread cache was
    /// taken).
    #[allow(clippy::box_collection)]
    #[cold]
    fn recycle_shared(&self, c: usize, b: Box<Vec<u8>>) {
        if self.classes[c].put(b).is_err() {
            Stats::bump(&self.stats.dropped);
        }
    }

    /// Frees every idle buffer (and this thread's cached one).
    pub fn trim(&self) {
        #[cfg(feature = "std")]
        std_cache::forget(self.id);
        for c in self.classes.iter() {
            c.drain(drop);
        }
    }

    /// The pool's counters now.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.stats.snapshot();
        #[cfg(feature = "std")]
        {
            m.hits += self.local_hits.sum();
        }
        m.idle_bytes = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| c.len() << (self.min_shift as usize + i))
            .sum();
        m
    }
}

#[cfg(feature = "std")]
impl Drop for BufferPool {
    fn drop(&mut self) {
        std_cache::forget(self.id);
    }
}

/// A byte buffer lent by a [`BufferPool`]: derefs to its `Vec<u8>`, and
/// goes back to the pool, cleared, when dropped.
///
/// ```
/// use latchfree::buffer::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get(64);
/// buf.extend_from_slice(b"keep me");
/// let bytes: Vec<u8> = buf.detach(); // leaves the pool for good
/// assert_eq!(bytes, b"keep me");
/// ```
pub struct Buffer<'a> {
    pool: &'a BufferPool,
    // Boxed: see `BufferPool::recycle`.
    #[allow(clippy::box_collection)]
    buf: Option<Box<Vec<u8>>>,
}

impl Buffer<'_> {
    /// Keeps the bytes: the buffer will not return to the pool.
    pub fn detach(mut self) -> Vec<u8> {
        *self.buf.take().expect("present until drop")
    }
}

impl Deref for Buffer<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.buf.as_deref().expect("present until drop")
    }
}

impl DerefMut for Buffer<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.buf.as_deref_mut().expect("present until drop")
    }
}

impl AsRef<[u8]> for Buffer<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Buffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Drop for Buffer<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool.recycle(b);
        }
    }
}
