//! The one place that names atomics, `UnsafeCell`, spin hints and thread
//! yield/park.
//!
//! Everything else in the crate imports these from here. Under
//! `--cfg latchfree_loom` they become loom's model-checked versions, so every
//! atomic protocol in the crate can be explored by the models in
//! `loom-tests/` without a line of the protocol changing.
//!
//! Loom's `UnsafeCell` hands out access through closures (`with`, `with_mut`)
//! so it can track every access; the std-backed [`UnsafeCell`] below offers
//! the same two methods, which compile to a plain pointer.

// Not every structure uses every item, under every feature set.
#![allow(unused_imports)]

// Where the atomics come from: core's, or with the `portable-atomic`
// feature portable-atomic's, which are the same types on a target with
// compare-and-swap and emulate the read-modify-writes on one without
// (Cortex-M0/M0+, riscv32imc), through the backend the firmware picks
// (`unsafe-assume-single-core`, or `critical-section`, which takes a
// critical section for loads and stores too).
#[cfg(not(any(feature = "portable-atomic", latchfree_loom)))]
use core::sync::atomic;
#[cfg(all(feature = "portable-atomic", not(latchfree_loom)))]
use portable_atomic as atomic;

#[cfg(not(latchfree_loom))]
pub(crate) use atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
#[cfg(latchfree_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

#[cfg(all(feature = "alloc", not(latchfree_loom)))]
pub(crate) use alloc::sync::{Arc, Weak};
#[cfg(latchfree_loom)]
pub(crate) use loom::sync::Arc;

/// A cache-line padded value, so two hot atomics never share a line.
pub(crate) use crossbeam_utils::CachePadded;

#[cfg(latchfree_loom)]
pub(crate) use self::loom_backoff::Backoff;
/// The one backoff for every spin-then-yield loop in the crate:
/// crossbeam-utils' own (exponential spins, then, under `std`, yields; a
/// caller parks once [`Backoff::is_completed`]). Under loom, a twin with the
/// same methods whose every step yields to the model and which completes
/// after two steps, so a spin loop stays explorable and small.
#[cfg(not(latchfree_loom))]
pub(crate) use crossbeam_utils::Backoff;

#[cfg(latchfree_loom)]
mod loom_backoff {
    /// See the non-loom re-export.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff {
        step: core::cell::Cell<u32>,
    }

    #[allow(dead_code)] // the crossbeam API, whole, whoever uses which part
    impl Backoff {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn reset(&self) {
            self.step.set(0);
        }

        pub(crate) fn spin(&self) {
            loom::thread::yield_now();
            self.step.set(self.step.get().saturating_add(1));
        }

        pub(crate) fn snooze(&self) {
            self.spin();
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.step.get() >= 2
        }
    }
}

/// A hint that we are in a spin loop. Under loom this yields to the scheduler,
/// which is what lets loom explore a spin loop at all.
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(not(latchfree_loom))]
    core::hint::spin_loop();
    #[cfg(latchfree_loom)]
    loom::thread::yield_now();
}

/// One turn of a pure busy-wait loop: nothing at all, except under loom,
/// where a spinning thread must yield for the model to make progress.
#[inline(always)]
pub(crate) fn busy_loop() {
    #[cfg(latchfree_loom)]
    loom::thread::yield_now();
}

/// Threads: spawning, thread-locals, yield, park and the rest. Only under
/// `std` (or loom).
#[cfg(any(feature = "std", latchfree_loom))]
pub(crate) mod thread {
    #[cfg(latchfree_loom)]
    pub(crate) use loom::thread::{current, park, yield_now, Builder, JoinHandle, Thread};
    #[cfg(latchfree_loom)]
    pub(crate) use loom::thread_local;
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    pub(crate) use std::thread::{
        current, park, park_timeout, yield_now, Builder, JoinHandle, Thread,
    };
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    pub(crate) use std::thread_local;

    /// Whether a thread has finished (so its handle can be dropped without
    /// joining). Loom's handles cannot tell: there the answer is "not
    /// yet", and the handle is joined later.
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    pub(crate) fn is_finished<T>(j: &JoinHandle<T>) -> bool {
        j.is_finished()
    }

    /// See the std version.
    #[cfg(latchfree_loom)]
    pub(crate) fn is_finished<T>(_j: &JoinHandle<T>) -> bool {
        false
    }

    /// Loom has no timed park; a timed park in a model is an untimed one
    /// that may also wake spuriously, which every caller already handles.
    #[cfg(latchfree_loom)]
    pub(crate) fn park_timeout(_d: std::time::Duration) {
        loom::thread::yield_now();
    }
}

/// Mutex and condition variable for the blocking wait strategies.
#[cfg(any(feature = "std", latchfree_loom))]
pub(crate) mod blocking {
    #[cfg(latchfree_loom)]
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
}

/// A cell with interior mutability whose accesses loom can track.
#[cfg(not(latchfree_loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(latchfree_loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Unwraps the value.
    #[inline(always)]
    #[allow(dead_code)]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(latchfree_loom))]
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

#[cfg(latchfree_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// A counter in a `static` that only hands out identities and orders
/// nothing (loom's atomics cannot live in a `static`, and no protocol reads
/// these): the plain one, also under loom.
#[cfg(feature = "std")]
pub(crate) use core::sync::atomic::AtomicUsize as IdCounter;

// --- added for wheel ---
#[cfg(all(feature = "alloc", not(latchfree_loom)))]
pub(crate) use atomic::AtomicPtr;
#[cfg(all(feature = "alloc", not(latchfree_loom)))]
pub(crate) use atomic::AtomicU8;
#[cfg(latchfree_loom)]
pub(crate) use loom::sync::atomic::AtomicPtr;

// --- added for map2 ---
#[cfg(latchfree_loom)]
pub(crate) use loom::sync::atomic::AtomicU8;

/// `Arc` as it appears in public signatures (`self: &Arc<Self>`):
/// always the real one, also under loom (whose `Arc` cannot be a method
/// receiver). Only for handles whose reference count orders nothing a
/// model checks.
#[cfg(feature = "alloc")]
pub(crate) use alloc::sync::Arc as HandleArc;

/// A plain atomic, also under loom: for a process-wide counter that orders
/// nothing (unique ids), which must be a `static` (loom's atomics have no
/// `const` constructor and live in one model run only).
pub(crate) use core::sync::atomic::AtomicUsize as UntrackedAtomicUsize;

/// A plain `UnsafeCell`, also under loom: for memory whose every access is
/// ordered by atomics that loom does track (the map's write-once buckets,
/// which readers borrow for as long as their epoch guard lives, something
/// loom's closure-scoped cell cannot express).
pub(crate) use core::cell::UnsafeCell as UntrackedUnsafeCell;

// --- added for adapters2 ---
/// The adapters' clock (batch delays). Under loom time stands still:
/// [`time::now`] is one fixed instant for the whole run, because loom
/// replays each execution and needs every choice in it to be reproducible.
/// A zero delay is then always over and any other never is (see
/// `batch::handoff`).
#[cfg(any(feature = "std", latchfree_loom))]
pub(crate) mod time {
    pub(crate) use std::time::Instant;

    /// Now.
    #[cfg(not(latchfree_loom))]
    #[inline(always)]
    pub(crate) fn now() -> Instant {
        Instant::now()
    }

    /// The one instant of a loom run.
    #[cfg(latchfree_loom)]
    pub(crate) fn now() -> Instant {
        static FROZEN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *FROZEN.get_or_init(Instant::now)
    }
}

// --- added for guard (limiter, breaker, balance) ---
/// 64-bit atomics, where the target has them (the limiters' one-word GCRA
/// and token bucket, the breaker's state word).
#[cfg(all(target_has_atomic = "64", not(latchfree_loom)))]
pub(crate) use atomic::AtomicU64;
#[cfg(latchfree_loom)]
pub(crate) use loom::sync::atomic::AtomicU64;
