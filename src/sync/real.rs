//! The real primitives that need no `std`: atomics, the cell, spin hints
//! and the backoff (selected by `sync` outside loom).

// Where the atomics come from: core's, or with the `portable-atomic`
// feature portable-atomic's, which are the same types on a target with
// compare-and-swap and emulate the read-modify-writes on one without
// (Cortex-M0/M0+, riscv32imc), through the backend the firmware picks
// (`unsafe-assume-single-core`, or `critical-section`, which takes a
// critical section for loads and stores too).
#[cfg(not(feature = "portable-atomic"))]
use core::sync::atomic;
#[cfg(feature = "portable-atomic")]
use portable_atomic as atomic;

pub(crate) use atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering,
};
/// 64-bit atomics, where the target has them (the limiters' one-word GCRA
/// and token bucket, the breaker's state word).
#[cfg(target_has_atomic = "64")]
pub(crate) use atomic::AtomicU64;

#[cfg(feature = "alloc")]
pub(crate) use alloc::sync::{Arc, Weak};

/// The one backoff for every spin-then-yield loop in the crate:
/// crossbeam-utils' own (exponential spins, then, under `std`, yields; a
/// caller parks once [`Backoff::is_completed`]).
pub(crate) use crossbeam_utils::Backoff;

/// A hint that we are in a spin loop.
#[inline(always)]
pub(crate) fn spin_loop() {
    core::hint::spin_loop();
}

/// One turn of a pure busy-wait loop: nothing at all (under loom, a yield
/// to the model).
#[inline(always)]
pub(crate) fn busy_loop() {}

/// A cell with interior mutability, accessed as loom's is: through
/// closures (`with`, `with_mut`), which here compile to a plain pointer.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Unwraps the value.
    #[inline(always)]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<T: ?Sized> UnsafeCell<T> {
    /// Runs `f` with a shared raw pointer to the value.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the value.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
