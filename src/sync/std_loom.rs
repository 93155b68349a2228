//! Loom's model-checked primitives, under the names the real ones have
//! (selected by `sync` under `--cfg latchfree_loom`). Loom runs on `std`,
//! so this one file stands for both `real.rs` and `std_real.rs`.
//!
//! Where loom has no equivalent, the stand-in is stated here once:
//! - there is no timed park and no sleep; both yield to the model (a timed
//!   park may wake spuriously anyway, which every caller handles); a timed
//!   condition-variable wait is an untimed one, except that a zero wait
//!   times out at once;
//! - time stands still: [`time::now`] is one fixed instant for the whole
//!   run, because loom replays each execution and needs every choice in it
//!   to be reproducible (a zero delay is always over, any other never is);
//! - a thread handle cannot tell whether its thread has finished;
//! - `OnceLock` and `TryLockError` are std's (a `static` outlives a model
//!   run; a lock error is a plain value).

pub(crate) use loom::cell::UnsafeCell;
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
pub(crate) use loom::sync::Arc;

/// Crossbeam's `Backoff` methods, each step a yield to the model; it
/// completes after two steps, so a spin loop stays explorable and small.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: core::cell::Cell<u32>,
}

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

/// A spin-loop hint: a yield, which is what lets loom explore a spin loop
/// at all.
#[inline(always)]
pub(crate) fn spin_loop() {
    loom::thread::yield_now();
}

/// One turn of a pure busy-wait loop: a yield, as [`spin_loop`].
#[inline(always)]
pub(crate) fn busy_loop() {
    loom::thread::yield_now();
}

/// Loom's threads.
pub(crate) mod thread {
    use core::num::NonZeroUsize;
    use std::time::Duration;

    pub(crate) use loom::thread::{
        current, panicking, park, yield_now, Builder, JoinHandle, Thread,
    };

    /// `std::thread_local!` as loom takes it: loom's macro matches its
    /// initialiser as a 2018 `expr`, which a `const { .. }` block is not, so
    /// such a block is unwrapped here (callers write std's forms).
    macro_rules! loom_thread_local {
        () => {};
        ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr } $(; $($rest:tt)*)?) => {
            loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
            $($crate::sync::thread::thread_local!($($rest)*);)?
        };
        ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr $(; $($rest:tt)*)?) => {
            loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
            $($crate::sync::thread::thread_local!($($rest)*);)?
        };
    }
    pub(crate) use loom_thread_local as thread_local;

    /// Always "not yet" (module docs).
    pub(crate) fn is_finished<T>(_j: &JoinHandle<T>) -> bool {
        false
    }

    /// A yield (module docs).
    pub(crate) fn park_timeout(_d: Duration) {
        loom::thread::yield_now();
    }

    /// A yield (module docs).
    pub(crate) fn sleep(_d: Duration) {
        loom::thread::yield_now();
    }

    /// Two: a model has two or three threads.
    pub(crate) fn available_parallelism() -> std::io::Result<NonZeroUsize> {
        Ok(NonZeroUsize::new(2).expect("two is not zero"))
    }
}

/// Loom's mutex and condition variable.
pub(crate) mod blocking {
    use core::time::Duration;

    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::{OnceLock, TryLockError};

    /// A timed wait as loom can model it (module docs): a zero wait times
    /// out at once; any other is an untimed wait that ends only by being
    /// woken, which every caller handles.
    pub(crate) fn wait_timeout<'a, T>(
        cond: &Condvar,
        guard: MutexGuard<'a, T>,
        d: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        if d.is_zero() {
            return (guard, true);
        }
        (cond.wait(guard).unwrap_or_else(|e| e.into_inner()), false)
    }
}

/// The frozen clock (module docs).
pub(crate) mod time {
    pub(crate) use std::time::Instant;

    /// The one instant of a loom run.
    pub(crate) fn now() -> Instant {
        static FROZEN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *FROZEN.get_or_init(Instant::now)
    }
}
