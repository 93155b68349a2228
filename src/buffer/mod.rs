//! Object and byte-buffer pools (`alloc`; `std` adds `io::Write`).
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

#[cfg_attr(not(latchfree_loom), allow(unreachable_pub))]
mod idle;
/// The lock-free idle set, exposed for the loom models only.
#[cfg(latchfree_loom)]
#[doc(hidden)]
pub use idle::IdleSet;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, DerefMut};

#[cfg(not(latchfree_loom))]
use self::idle::IdleSet;
use crate::sync::{AtomicUsize, HandleArc as Arc, Ordering, UntrackedAtomicUsize};

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

type Init<T> = Box<dyn Fn() -> T + Send + Sync>;
type Reset<T> = Box<dyn Fn(&mut T) + Send + Sync>;

/// A pool of reusable `T`s. See the [module docs](self).
///
/// ```
/// use latchfree::buffer::ObjectPool;
///
/// let pool = ObjectPool::new(16, || String::with_capacity(256)).with_reset(|s| s.clear());
/// {
///     let mut s = pool.get();
///     s.push_str("scratch");
/// } // back in the pool, cleared
/// assert!(pool.get().is_empty());
/// ```
pub struct ObjectPool<T> {
    idle: IdleSet<T>,
    init: Init<T>,
    reset: Option<Reset<T>>,
    /// Units of the bound taken, `0..=bound`: objects lent out, being
    /// created or being returned (not yet idle or dropped). Untouched when
    /// `bound == usize::MAX`.
    in_use: AtomicUsize,
    bound: usize,
    stats: Stats,
}

impl<T: Send> fmt::Debug for ObjectPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectPool")
            .field("max_idle", &self.idle.capacity())
            .field("bound", &self.bound)
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl<T: Send> ObjectPool<T> {
    /// A pool keeping up to `max_idle` idle objects, creating new ones with
    /// `init`. No reset hook, no bound.
    pub fn new(max_idle: usize, init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self {
            idle: IdleSet::new(max_idle),
            init: Box::new(init),
            reset: None,
            in_use: AtomicUsize::new(0),
            bound: usize::MAX,
            stats: Stats::default(),
        }
    }

    /// Runs `reset` on every object as it comes back (before it is idle).
    pub fn with_reset(mut self, reset: impl Fn(&mut T) + Send + Sync + 'static) -> Self {
        self.reset = Some(Box::new(reset));
        self
    }

    /// At most `bound` objects in use at once: [`try_get`](Self::try_get)
    /// then returns `None`, and [`get`](Self::get) waits. An object counts
    /// from the moment `init` starts (or it leaves the idle set) until it is
    /// idle again or dropped, so objects outside the idle set never exceed
    /// `bound`; a panicking `init`, `reset` or `T::drop` gives its unit
    /// back.
    pub fn with_bound(mut self, bound: usize) -> Self {
        self.bound = bound;
        self
    }

    /// A unit of the bound for one object outside the idle set, or
    /// `None` at the bound. Unbounded pools count nothing.
    fn permit(&self) -> Option<Permit<'_>> {
        if self.bound == usize::MAX {
            return Some(Permit(None));
        }
        let mut n = self.in_use.load(Ordering::Relaxed);
        loop {
            if n >= self.bound {
                return None;
            }
            // Relaxed: the count guards no data; objects move through the
            // idle set's own Release/Acquire pairs. The bound holds because
            // every unit is taken by this one CAS and given back only after
            // its object is idle again or gone (see `recycle`).
            match self
                .in_use
                .compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(Permit(Some(&self.in_use))),
                Err(now) => n = now,
            }
        }
    }

    fn acquire(&self) -> Option<Box<T>> {
        // Held across `init`: if it panics, the unit goes back on unwind.
        let permit = self.permit()?;
        let obj = match self.idle.take() {
            Some(b) => {
                Stats::bump(&self.stats.hits);
                b
            }
            None => {
                Stats::bump(&self.stats.misses);
                let obj = Box::new((self.init)());
                Stats::bump(&self.stats.created);
                obj
            }
        };
        // The unit now belongs to the guard that lends `obj`.
        permit.keep();
        Some(obj)
    }

    fn recycle(&self, mut obj: Box<T>) {
        // Given back last (or on unwind, if `reset` or `T::drop` panics):
        // only once the object is idle again or dropped, so objects outside
        // the idle set never exceed the bound, even while one is reset.
        let _unit = Permit((self.bound != usize::MAX).then_some(&self.in_use));
        if let Some(r) = &self.reset {
            r(&mut obj);
        }
        if let Err(obj) = self.idle.put(obj) {
            Stats::bump(&self.stats.dropped);
            drop(obj);
        }
    }

    /// An object, idle or new, lent until the guard drops.
    pub fn get(&self) -> Pooled<'_, T> {
        loop {
            if let Some(p) = self.try_get() {
                return p;
            }
            wait_a_little();
        }
    }

    /// Like [`get`](Self::get), but `None` when the bound is reached.
    pub fn try_get(&self) -> Option<Pooled<'_, T>> {
        self.acquire().map(|obj| Pooled {
            pool: self,
            obj: Some(obj),
        })
    }

    /// An object whose guard holds the pool by `Arc`, so it can outlive the
    /// caller's borrow (move it to another thread, store it).
    pub fn get_owned(self: &Arc<Self>) -> OwnedPooled<T> {
        loop {
            if let Some(p) = self.try_get_owned() {
                return p;
            }
            wait_a_little();
        }
    }

    /// Like [`get_owned`](Self::get_owned), but `None` at the bound.
    pub fn try_get_owned(self: &Arc<Self>) -> Option<OwnedPooled<T>> {
        self.acquire().map(|obj| OwnedPooled {
            pool: self.clone(),
            obj: Some(obj),
        })
    }

    /// Drops every idle object.
    pub fn trim(&self) {
        self.idle.drain(drop);
    }

    /// The pool's counters now.
    pub fn metrics(&self) -> Metrics {
        self.stats.snapshot()
    }
}

/// One unit of an [`ObjectPool`]'s bound (`None` for an unbounded pool);
/// gives it back when dropped, also on unwind, unless [`keep`](Self::keep)
/// hands it over to a lent object.
struct Permit<'a>(Option<&'a AtomicUsize>);

impl Permit<'_> {
    fn keep(self) {
        core::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(in_use) = self.0 {
            // Relaxed: as in `permit`.
            in_use.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn wait_a_little() {
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    std::thread::yield_now();
    #[cfg(not(all(feature = "std", not(latchfree_loom))))]
    crate::sync::spin_loop();
}

/// An object lent by an [`ObjectPool`]; returns to it on drop.
///
/// ```
/// use latchfree::buffer::ObjectPool;
///
/// let pool = ObjectPool::new(4, Vec::<u32>::new).with_bound(1);
/// let mut v = pool.get();
/// v.push(1);
/// assert!(pool.try_get().is_none()); // the bound is reached
/// drop(v);
/// assert!(pool.try_get().is_some());
/// ```
pub struct Pooled<'a, T: Send> {
    pool: &'a ObjectPool<T>,
    obj: Option<Box<T>>,
}

/// An object lent by an `Arc<ObjectPool>`; returns to it on drop.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::buffer::ObjectPool;
///
/// let pool = Arc::new(ObjectPool::new(4, || vec![0u8; 64]));
/// let mut obj = pool.get_owned();
/// std::thread::spawn(move || obj[0] = 1).join().unwrap();
/// assert_eq!(pool.metrics().created, 1);
/// ```
pub struct OwnedPooled<T: Send> {
    pool: Arc<ObjectPool<T>>,
    obj: Option<Box<T>>,
}

macro_rules! guard_impls {
    ($ty:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T: Send> Deref for $ty<$($lt,)? T> {
            type Target = T;
            fn deref(&self) -> &T {
                self.obj.as_deref().expect("present until drop")
            }
        }

        impl<$($lt,)? T: Send> DerefMut for $ty<$($lt,)? T> {
            fn deref_mut(&mut self) -> &mut T {
                self.obj.as_deref_mut().expect("present until drop")
            }
        }

        impl<$($lt,)? T: Send> Drop for $ty<$($lt,)? T> {
            fn drop(&mut self) {
                if let Some(obj) = self.obj.take() {
                    self.pool.recycle(obj);
                }
            }
        }

        impl<$($lt,)? T: Send + fmt::Debug> fmt::Debug for $ty<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<$($lt,)? T: Send> $ty<$($lt,)? T> {
            /// Keeps the object: it will not return to the pool.
            pub fn detach(mut self) -> T {
                let obj = self.obj.take().expect("present until drop");
                // The object leaves the pool's count with its unit.
                drop(Permit((self.pool.bound != usize::MAX).then_some(&self.pool.in_use)));
                *obj
            }
        }
    };
}

guard_impls!(Pooled<'a>);
guard_impls!(OwnedPooled);

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
        // Relaxed: a unique number, nothing ordered by it.
        static NEXT_ID: UntrackedAtomicUsize = UntrackedAtomicUsize::new(1);
        BufferPool {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            classes,
            min_shift,
            max_retained: max,
            stats: Stats::default(),
            local_hits: local::Counters::new(),
        }
    }
}

/// A pool of byte buffers in power-of-two size classes. See the
/// [module docs](self).
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
    #[cfg_attr(not(all(feature = "std", not(latchfree_loom))), allow(dead_code))]
    id: usize,
    /// Class `i` holds buffers whose capacity is at least `min << i` (and
    /// below `min << (i + 1)`, except for growth beyond the top class,
    /// which is never kept).
    classes: Box<[IdleSet<Vec<u8>>]>,
    min_shift: u32,
    max_retained: usize,
    stats: Stats,
    /// Hits served by thread caches, one counter per caching thread.
    local_hits: local::Counters,
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
            if let Some(b) = local::take(self.id, c) {
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
                if let Some(b) = local::put(self.id, &self.local_hits, c, b) {
                    self.recycle_shared(c, b);
                }
            }
            None => Stats::bump(&self.stats.dropped),
        }
    }

    /// The thread cache was taken: back to the shared idle set.
    #[allow(clippy::box_collection)]
    #[cold]
    fn recycle_shared(&self, c: usize, b: Box<Vec<u8>>) {
        if self.classes[c].put(b).is_err() {
            Stats::bump(&self.stats.dropped);
        }
    }

    /// Frees every idle buffer (and this thread's cached one).
    pub fn trim(&self) {
        local::forget(self.id);
        for c in self.classes.iter() {
            c.drain(drop);
        }
    }

    /// The pool's counters now.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.stats.snapshot();
        m.hits += self.local_hits.sum();
        m.idle_bytes = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| c.len() << (self.min_shift as usize + i))
            .sum();
        m
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        local::forget(self.id);
    }
}

/// The per-thread cache: one buffer, tagged with its pool and class, and
/// the thread's own hit counter for that pool.
///
/// Ground rules: a counter is written only by the thread whose cache entry
/// holds it (a plain load and store, no read-modify-write); it passes to
/// another thread only through the pool's `free` list (a mutex), and every
/// counter ever made stays in the pool's `all` list, so `sum` counts every
/// hit. The entry stays while the thread uses the same pool (a get takes
/// the buffer out, a put puts it back), so the hit path allocates nothing
/// and touches no shared memory.
#[cfg(all(feature = "std", not(latchfree_loom)))]
mod local {
    // Boxed buffers, as everywhere in this module: see `BufferPool::recycle`.
    #![allow(clippy::box_collection)]

    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    use crate::sync::blocking::Mutex;
    use crate::sync::{Arc, AtomicUsize, CachePadded, Ordering, Weak};

    type Counter = Arc<CachePadded<AtomicUsize>>;

    #[derive(Default)]
    struct Lists {
        all: Vec<Counter>,
        free: Vec<Counter>,
    }

    /// A pool's per-thread hit counters.
    #[derive(Default)]
    pub(super) struct Counters(Arc<Mutex<Lists>>);

    impl Counters {
        pub(super) fn new() -> Self {
            Self::default()
        }

        /// Hits counted by every thread so far.
        pub(super) fn sum(&self) -> usize {
            let l = self.0.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed: metrics; each counter only grows.
            l.all.iter().map(|c| c.load(Ordering::Relaxed)).sum()
        }

        fn counter(&self) -> Counter {
            let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = l.free.pop() {
                return c;
            }
            let c = Counter::default();
            l.all.push(c.clone());
            c
        }
    }

    struct Entry {
        id: usize,
        class: usize,
        buf: Option<Box<Vec<u8>>>,
        hits: Counter,
        /// Where `hits` goes back when the entry is dropped. Weak: the pool
        /// holds the only strong reference, so a dead count says the pool
        /// is gone (dropped on another thread, whose `forget` could not
        /// reach this cache) and the entry may be evicted.
        lists: Weak<Mutex<Lists>>,
    }

    impl Entry {
        fn pool_alive(&self) -> bool {
            self.lists.strong_count() > 0
        }
    }

    impl Drop for Entry {
        fn drop(&mut self) {
            if let Some(lists) = self.lists.upgrade() {
                let mut l = lists.lock().unwrap_or_else(|e| e.into_inner());
                l.free.push(self.hits.clone());
            }
        }
    }

    std::thread_local! {
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
                // pool's (its buffer is freed now): this pool takes the
                // cache over.
                _ => *c = Some(Entry::new(id, counters, class, b.take())),
            }
        });
        b
    }

    impl Entry {
        #[cold]
        fn new(id: usize, counters: &Counters, class: usize, buf: Option<Box<Vec<u8>>>) -> Self {
            Entry {
                id,
                class,
                buf,
                hits: counters.counter(),
                lists: Arc::downgrade(&counters.0),
            }
        }
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
}

/// Without `std` there is no thread-local cache.
#[cfg(not(all(feature = "std", not(latchfree_loom))))]
mod local {
    // Boxed buffers, as everywhere in this module: see `BufferPool::recycle`.
    #![allow(clippy::box_collection)]

    use alloc::boxed::Box;
    use alloc::vec::Vec;

    pub(super) fn take(_: usize, _: usize) -> Option<Box<Vec<u8>>> {
        None
    }

    pub(super) fn put(_: usize, _: &Counters, _: usize, b: Box<Vec<u8>>) -> Option<Box<Vec<u8>>> {
        Some(b)
    }

    pub(super) fn forget(_: usize) {}

    /// No thread caches, no per-thread counters.
    pub(super) struct Counters;

    impl Counters {
        pub(super) fn new() -> Self {
            Counters
        }

        pub(super) fn sum(&self) -> usize {
            0
        }
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

#[cfg(all(feature = "std", not(latchfree_loom)))]
impl std::io::Write for Buffer<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
