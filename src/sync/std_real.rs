//! The real threads, locks and clock (selected by `sync` outside loom,
//! with `std`).

/// Threads: spawning, thread-locals, yield, park, sleep.
pub(crate) mod thread {
    pub(crate) use std::thread::{
        available_parallelism, current, panicking, park, park_timeout, sleep, yield_now, Builder,
        JoinHandle, Thread,
    };
    pub(crate) use std::thread_local;

    /// Whether a thread has finished (so its handle can be dropped without
    /// joining). Loom's handles cannot tell: there the answer is "not
    /// yet", and the handle is joined later.
    pub(crate) fn is_finished<T>(j: &JoinHandle<T>) -> bool {
        j.is_finished()
    }
}

/// Locks: mutex, condition variable, one-time initialisation.
pub(crate) mod blocking {
    use core::time::Duration;

    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, TryLockError};

    /// Waits on `cond` for at most `d`; `true` if the wait timed out. A
    /// poisoned lock is taken over (nothing the crate guards with these
    /// locks can be left half-updated by a panic).
    pub(crate) fn wait_timeout<'a, T>(
        cond: &Condvar,
        guard: MutexGuard<'a, T>,
        d: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let (g, t) = cond
            .wait_timeout(guard, d)
            .unwrap_or_else(|e| e.into_inner());
        (g, t.timed_out())
    }
}

/// The clock.
pub(crate) mod time {
    pub(crate) use std::time::Instant;

    /// Now.
    #[inline(always)]
    pub(crate) fn now() -> Instant {
        Instant::now()
    }
}
