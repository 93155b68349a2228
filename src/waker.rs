//! A cell holding one task's [`Waker`], registered by that task and taken
//! by anyone who wants to wake it: the building block of every async wait
//! in the crate. `no_std`, no allocator.
//!
//! This is the `AtomicWaker` protocol of `futures-util` and tokio (and of
//! the `atomic-waker` crate): a three-state lock word (`WAITING`,
//! `REGISTERING`, `WAKING`) in which the registrant and a waker each own the
//! stored waker while their bit is set, and a waker that finds the
//! registrant busy leaves `WAKING` behind for it to act on. We keep our own
//! copy rather than depend on `atomic-waker` because that crate names
//! `core::sync::atomic` directly, so its protocol could not be model-checked
//! under `--cfg latchfree_loom` together with the ring's; this one is
//! written against `crate::sync`, and `loom-tests/tests/waker.rs` explores
//! it.
//!
//! # How a waiter uses it: register, then re-check
//!
//! A waiter that found nothing to do calls [`register`](AtomicWaker::register)
//! and then checks its condition *again* before returning
//! `Poll::Pending`; a notifier makes its condition true and then calls
//! [`wake`](AtomicWaker::wake). Either the notifier's `wake` finds the new
//! waker (and wakes it), or the registration is ordered after the wake's
//! release, so the re-check sees the condition: no wake-up is lost. Without
//! the re-check, a condition made true between the waiter's first check and
//! its registration would never wake it.
//!
//! # Ground rules
//!
//! - `state` is `WAITING` (0), or has `REGISTERING` set while the registrant
//!   writes the cell, and/or `WAKING` set while a waker takes from it.
//! - The cell is written only by the thread that moved `state` out of
//!   `WAITING` (to `REGISTERING` or to `WAKING`), until it moves it back.
//! - At most one task registers at a time (each cell belongs to one waiting
//!   future); wakers may be any number, on any threads.

use core::fmt;
use core::task::Waker;

use crate::sync::{spin_loop, AtomicUsize, Ordering, UnsafeCell};

/// Nobody holds the cell.
const WAITING: usize = 0;
/// The registrant is writing the cell.
const REGISTERING: usize = 0b01;
/// A waker is taking from the cell (or, with `REGISTERING`, asked the
/// registrant to wake on its behalf).
const WAKING: usize = 0b10;

/// One task's [`Waker`], registered by the task and taken by whoever wakes
/// it. See the module docs for the protocol.
pub struct AtomicWaker {
    /// `WAITING`, `REGISTERING`, `WAKING` or `REGISTERING | WAKING`.
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the cell is only touched by the thread that owns it through
// `state` (see the ground rules), and `Waker` is `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as for `Send`: every access to the cell is exclusive by `state`.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    const_fn_unless_loom! {
        /// An empty cell.
        pub fn new() -> Self {
            Self {
                state: AtomicUsize::new(WAITING),
                waker: UnsafeCell::new(None),
            }
        }
    }

    /// Stores `waker` (a clone, unless the stored one already wakes the same
    /// task), replacing the previous one. If a wake arrives while this
    /// runs, `waker` is woken before it returns, so the caller's task is
    /// polled again either way. The caller must re-check its condition
    /// afterwards (module docs).
    pub fn register(&self, waker: &Waker) {
        // Acquire: a completed wake's release (`fetch_and` in `take`) is
        // seen, with whatever the waker published before waking.
        match self.state.compare_exchange(
            WAITING,
            REGISTERING,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: `REGISTERING` is ours: no waker touches the cell
                // until we clear it (ground rules).
                let old = self.waker.with_mut(|cell| unsafe {
                    match &mut *cell {
                        Some(w) if w.will_wake(waker) => None,
                        slot => slot.replace(waker.clone()),
                    }
                });
                // AcqRel: release the stored waker to the next `take`;
                // acquire a `WAKING` set meanwhile.
                match self.state.compare_exchange(
                    REGISTERING,
                    WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => drop(old),
                    Err(actual) => {
                        // A waker came while we held the cell and left the
                        // wake to us: take the waker back out and wake it.
                        debug_assert_eq!(actual, REGISTERING | WAKING);
                        // SAFETY: `REGISTERING` is still ours.
                        let now = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                        self.state.swap(WAITING, Ordering::AcqRel);
                        drop(old);
                        if let Some(w) = now {
                            w.wake();
                        }
                    }
                }
            }
            // A waker holds the cell: the wake is for us; honour it on the
            // new waker (the old one may be stale), so we are polled again
            // and register then. The spin hint: an executor that re-polls
            // at once would otherwise spin on this path until the waker
            // clears its bit (and loom needs it to run the waker then).
            Err(_) => {
                waker.wake_by_ref();
                spin_loop();
            }
        }
    }

    /// Wakes the registered waker, if any, and empties the cell.
    pub fn wake(&self) {
        if let Some(w) = self.take() {
            w.wake();
        }
    }

    /// Empties the cell, returning its waker. `None` if it was empty, or if
    /// the registrant or another waker holds it (they wake it then).
    pub fn take(&self) -> Option<Waker> {
        // AcqRel: acquire the registrant's waker (its release in
        // `register`); release what the caller published before waking to
        // the registrant's next `register`.
        match self.state.fetch_or(WAKING, Ordering::AcqRel) {
            WAITING => {
                // SAFETY: we moved `state` from `WAITING` to `WAKING`: the
                // cell is ours until we clear the bit.
                let w = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                // Release: pairs with `register`'s Acquire.
                self.state.fetch_and(!WAKING, Ordering::Release);
                w
            }
            // The registrant sees our `WAKING` and wakes itself; or another
            // waker is taking the waker and will wake it.
            _ => None,
        }
    }
}

impl Default for AtomicWaker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AtomicWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicWaker").finish_non_exhaustive()
    }
}

/// A waker that counts its wakes, for the crate's unit tests.
#[cfg(all(test, feature = "std"))]
pub(crate) mod counting {
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use core::task::Waker;

    /// Wakes so far.
    pub(crate) struct Count(pub(crate) AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A fresh count and a waker that adds to it.
    pub(crate) fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::AtomicWaker;
    use alloc::sync::Arc;
    use core::sync::atomic::Ordering;

    use crate::waker::counting::counter;

    #[test]
    fn waker_wakes_the_latest_registration_once() {
        let cell = AtomicWaker::new();
        let (a, wa) = counter();
        let (b, wb) = counter();
        cell.wake(); // empty: nothing to do
        cell.register(&wa);
        cell.register(&wb); // replaces `wa`, drops its clone
        assert_eq!(Arc::strong_count(&a), 2);
        cell.wake();
        cell.wake(); // taken: the second wake finds nothing
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&b), 2, "the cell's clone was consumed");
    }

    #[test]
    fn waker_same_task_is_not_cloned_again() {
        let cell = AtomicWaker::new();
        let (a, wa) = counter();
        cell.register(&wa);
        cell.register(&wa.clone());
        assert_eq!(Arc::strong_count(&a), 3); // ours, the clone above, the cell's
        assert!(cell.take().is_some());
        assert!(cell.take().is_none());
    }
}
