//! `std` conveniences: the breaker on the process-wide clock of
//! [`limiter::now_nanos`](crate::limiter::now_nanos), and observers that
//! cannot abort an unwind.

use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

use super::{Breaker, CallError, Guard, Observer, Permit, Rejected, State};
use crate::limiter::now_nanos;
use crate::sync::thread;

/// Runs the observer. Its transition is already complete, so a panic from
/// it leaves the breaker consistent; it is re-raised to the caller, except
/// while this thread is already unwinding (a guard dropped by a panic),
/// where a second panic would abort the process: then it is dropped.
pub(super) fn notify<O: Observer>(observer: &O, from: State, to: State) {
    if !thread::panicking() {
        observer.on_transition(from, to);
        return;
    }
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| observer.on_transition(from, to))) {
        // Already unwinding: re-raising would abort, so drop the payload,
        // itself under catch_unwind (a payload's Drop may panic too); only
        // such a pathological second payload is leaked.
        if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            core::mem::forget(second);
        }
    }
}

impl<O: Observer> Breaker<O> {
    /// Runs `f` if admitted now and records its outcome; a panic in `f`
    /// counts as a failure and keeps unwinding.
    ///
    /// ```
    /// use latchfree::breaker::{Breaker, Config};
    ///
    /// let b = Breaker::new(Config::new());
    /// assert_eq!(b.call(|| Ok::<_, ()>(7)).ok(), Some(7));
    /// ```
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_at(now_nanos(), f)
    }

    /// Admits a call now and returns its guard; see [`guard_at`](Self::guard_at).
    #[inline]
    pub fn guard(&self) -> Result<Guard<'_, O>, Rejected> {
        self.guard_at(now_nanos())
    }

    /// Admits a call now; see [`try_acquire_at`](Self::try_acquire_at).
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, Rejected> {
        self.try_acquire_at(now_nanos())
    }

    /// Records an outcome now; see [`record_at`](Self::record_at).
    #[inline]
    pub fn record(&self, permit: Permit, success: bool) {
        self.record_at(permit, success, now_nanos())
    }
}
