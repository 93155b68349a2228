//! A bounded, lock-free set of idle boxed objects.
//!
//! An array of `AtomicPtr` cells, each null (empty) or owning one `Box<T>`.
//! `put` CASes a null cell to the box's pointer; `take` swaps a non-null
//! cell to null. Ownership moves with the single successful RMW on a cell,
//! so there is no ABA problem (no pointer is ever compared against a value
//! read earlier and then dereferenced): a pointer is dereferenced only after
//! the swap that removed it from the array. Both operations are lock-free:
//! a scan fails only when another thread's RMW on the same cell succeeded.
//!
//! Scans start at a hint (the last cell touched) so that in the common
//! get/put pattern a thread finds a cell at once.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr;

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// The idle set: see the module docs.
pub struct IdleSet<T> {
    /// Each cell is null or a pointer from `Box::into_raw` owned by the set.
    cells: Box<[AtomicPtr<T>]>,
    /// Where the next scan starts, `0..cells.len()` (taken modulo).
    hint: AtomicUsize,
}

// Public through `__loom` (for the models), where clippy would ask for an
// `is_empty` nobody uses.
#[allow(clippy::len_without_is_empty)]
impl<T> IdleSet<T> {
    /// An empty set of `capacity` cells.
    pub fn new(capacity: usize) -> Self {
        let cells: Vec<AtomicPtr<T>> = (0..capacity)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        Self {
            cells: cells.into_boxed_slice(),
            hint: AtomicUsize::new(0),
        }
    }

    /// Its number of cells.
    pub fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Stores `item`, or hands it back if every cell is taken.
    pub fn put(&self, item: Box<T>) -> Result<(), Box<T>> {
        let n = self.cells.len();
        if n == 0 {
            return Err(item);
        }
        let raw = Box::into_raw(item);
        // Relaxed: the hint is a heuristic; correctness rests on the CAS.
        let start = self.hint.load(Ordering::Relaxed);
        for i in 0..n {
            let idx = (start + i) % n;
            // Release: pairs with the Acquire swap in `take`, so the taker
            // sees every write to the object made before it was put back.
            if self.cells[idx]
                .compare_exchange(ptr::null_mut(), raw, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                if idx != start {
                    self.hint.store(idx, Ordering::Relaxed);
                }
                return Ok(());
            }
        }
        // SAFETY: `raw` came from `Box::into_raw` above and no cell took it.
        Err(unsafe { Box::from_raw(raw) })
    }

    /// Takes any idle item.
    pub fn take(&self) -> Option<Box<T>> {
        let n = self.cells.len();
        let start = self.hint.load(Ordering::Relaxed);
        for i in 0..n {
            let idx = (start + n - i) % n;
            // Cheap check first so an empty set costs loads, not RMWs.
            if self.cells[idx].load(Ordering::Relaxed).is_null() {
                continue;
            }
            // Acquire: pairs with the Release CAS in `put`.
            let p = self.cells[idx].swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                if idx != start {
                    self.hint.store(idx, Ordering::Relaxed);
                }
                // SAFETY: a non-null cell owns a pointer from
                // `Box::into_raw`; our swap removed it, so we own it now.
                return Some(unsafe { Box::from_raw(p) });
            }
        }
        None
    }

    /// Idle items now; stale under concurrency.
    pub fn len(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| !c.load(Ordering::Relaxed).is_null())
            .count()
    }

    /// Takes every idle item (concurrent puts may land after the scan).
    pub fn drain(&self, mut f: impl FnMut(Box<T>)) {
        for c in self.cells.iter() {
            // Acquire: as in `take`.
            let p = c.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: as in `take`.
                f(unsafe { Box::from_raw(p) });
            }
        }
    }
}

impl<T> Drop for IdleSet<T> {
    fn drop(&mut self) {
        self.drain(drop);
    }
}

// SAFETY: the set owns `Box<T>`s and moves them between threads (T: Send);
// it never hands out shared references to them.
unsafe impl<T: Send> Send for IdleSet<T> {}
// SAFETY: all shared access is through atomic RMWs that transfer ownership
// of whole boxes; no `&T` is ever shared, so `T: Sync` is not needed.
unsafe impl<T: Send> Sync for IdleSet<T> {}
