//! [`ObjectPool`]: reusable `T`s with `init` and `reset` hooks, an
//! optional bound on objects in use, and the guards that lend them.
//!
//! The bound is a count of units, `0..=bound`, each taken by one CAS before
//! an object leaves the idle set (or `init` starts) and given back only
//! once that object is idle again or dropped, also on unwind; so objects
//! outside the idle set never exceed the bound. A waiting [`get`] backs off
//! with the crate's one [`Backoff`](crate::sync::Backoff) (spins, then
//! yields under `std`).
//!
//! [`get`]: ObjectPool::get

use alloc::boxed::Box;
use core::fmt;
use core::ops::{Deref, DerefMut};

use super::idle::IdleSet;
use super::{Metrics, Stats};
use crate::sync::{AtomicUsize, Backoff, HandleArc as Arc, Ordering};

type Init<T> = Box<dyn Fn() -> T + Send + Sync>;
type Reset<T> = Box<dyn Fn(&mut T) + Send + Sync>;

/// A pool of reusable `T`s. See the [module docs](super).
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
        self.try_get().unwrap_or_else(|| retry(|| self.try_get()))
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
        self.try_get_owned()
            .unwrap_or_else(|| retry(|| self.try_get_owned()))
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

/// Waits at the bound: retries `attempt`, backing off between tries, until
/// it gives a value. Out of line, so a get that finds room pays nothing
/// for the wait.
#[cold]
fn retry<R>(mut attempt: impl FnMut() -> Option<R>) -> R {
    let backoff = Backoff::new();
    loop {
        backoff.snooze();
        if let Some(r) = attempt() {
            return r;
        }
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
