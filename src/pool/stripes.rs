//! Striped producer handles for structures shared by `&self`.
//!
//! Ring producers take `&mut self`. A pool or batcher used from many
//! threads keeps a few clones, each behind its own cache-padded mutex; a
//! submitter locks the first free one starting from its thread's stripe, so
//! uncontended submitters never share a lock (and the mutex is never held
//! across anything but one publish).

use alloc::boxed::Box;
use core::cell::Cell;

use crate::sync::blocking::Mutex;
use crate::sync::{AtomicUsize, CachePadded, Ordering};

pub(crate) struct Stripes<P>(Box<[CachePadded<Mutex<P>>]>);

std::thread_local! {
    /// This thread's preferred stripe.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

impl<P: Clone> Stripes<P> {
    /// Two stripes per core (at least four), all clones of `p`.
    pub(crate) fn new(p: P) -> Self {
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(2)
            * 2;
        Self(
            (0..n)
                .map(|_| CachePadded::new(Mutex::new(p.clone())))
                .collect(),
        )
    }

    /// Runs `f` with exclusive use of one handle.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
        let n = self.0.len();
        let start = STRIPE.with(|s| {
            if s.get() == usize::MAX {
                // Relaxed: spreads threads over stripes, nothing more.
                s.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed));
            }
            s.get()
        }) % n;
        for i in 0..n {
            match self.0[(start + i) % n].try_lock() {
                Ok(mut p) => return f(&mut p),
                // Poisoning: a publish panicked in the caller's closure; the
                // handle itself stays consistent (the ring skips the slot).
                Err(std::sync::TryLockError::Poisoned(e)) => return f(&mut e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        f(&mut self.0[start].lock().unwrap_or_else(|e| e.into_inner()))
    }
}
