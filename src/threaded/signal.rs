//! A one-shot signal an async task awaits: the timer service's `Sleep`
//! future waits on one, which its callback sets. Set once, by whoever
//! comes first, to `FIRED` or `DROPPED`; read by one future.
//!
//! Protocol (register, then re-check, as in `crate::waker`): the setter
//! stores the state, then wakes the cell; the waiter loads the state,
//! registers its waker, then loads the state again. The setter's store is
//! Release and its wake a read-modify-write on the cell's lock word; the
//! waiter's registration is a read-modify-write on the same word, so one
//! of the two is ordered first: if the wake is, the registration's Acquire
//! sees the stored state in the re-check; if the registration is, the wake
//! finds the waker. `loom-tests/tests/async_adapters.rs` (`signal_*`) explores
//! it.

use core::task::{Context, Poll};

use crate::sync::{AtomicU8, Ordering};
use crate::waker::AtomicWaker;

/// Nothing happened yet.
const PENDING: u8 = 0;

/// See the module docs (`threaded::signal`).
pub struct Signal {
    /// `PENDING` until set, then the value set (never `PENDING` again).
    state: AtomicU8,
    waker: AtomicWaker,
}

impl Default for Signal {
    fn default() -> Self {
        Self::new()
    }
}

impl Signal {
    /// An unset signal.
    pub fn new() -> Self {
        Self {
            state: AtomicU8::new(PENDING),
            waker: AtomicWaker::new(),
        }
    }

    /// Sets the signal to `value` (non-zero) unless it was set already,
    /// and wakes the waiter. Returns whether this call set it.
    pub fn set(&self, value: u8) -> bool {
        debug_assert_ne!(value, PENDING);
        // Release: the waiter's Acquire load sees what came before the set.
        let won = self
            .state
            .compare_exchange(PENDING, value, Ordering::Release, Ordering::Relaxed)
            .is_ok();
        if won {
            self.waker.wake();
        }
        won
    }

    /// The value set, or `PENDING` after registering `cx`'s waker.
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<u8> {
        // Acquire: pairs with the Release in `set`.
        match self.state.load(Ordering::Acquire) {
            PENDING => {}
            v => return Poll::Ready(v),
        }
        self.waker.register(cx.waker());
        // The re-check (module docs).
        match self.state.load(Ordering::Acquire) {
            PENDING => Poll::Pending,
            v => Poll::Ready(v),
        }
    }
}

impl core::fmt::Debug for Signal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Signal")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
