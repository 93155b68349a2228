//! The per-shard writer lock: a test-and-test-and-set spin lock on the
//! crate's own atomics.
//!
//! Ground rules: the lock is held only by the map's own code, for a bounded
//! number of steps (a pointer check, a few slot stores, at most one
//! migration chunk). No user code (no `Hash`, `Eq`, closure or `Drop` of a
//! user type) ever runs while it is held, so a user cannot deadlock on it by
//! calling back into the map. Readers only ever *try* it (to help a
//! migration along), never wait for it.
//!
//! Waiting: the crate's one [`Backoff`]: exponential spins for a few rounds,
//! then, under `std`, a yield between attempts so a preempted holder can
//! run; in `no_std` it keeps spinning (a holder there is only ever a few
//! instructions from releasing, unless an interrupt preempted it).

use crate::sync::{AtomicBool, Backoff, Ordering};

/// A small spin-then-yield lock guarding a shard's write path.
pub(super) struct ShardLock {
    /// `true` while some writer holds the lock.
    locked: AtomicBool,
}

/// Releases the lock on drop.
pub(super) struct ShardLockGuard<'a> {
    lock: &'a ShardLock,
}

impl ShardLock {
    const_fn_unless_loom! {
        pub(super) fn new() -> Self {
            Self {
                locked: AtomicBool::new(false),
            }
        }
    }

    /// Acquires the lock.
    #[inline]
    pub(super) fn lock(&self) -> ShardLockGuard<'_> {
        // Acquire pairs with the Release in `drop(ShardLockGuard)`: the new
        // holder sees every slot store the previous holder made.
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        ShardLockGuard { lock: self }
    }

    /// Acquires the lock if it is free; never waits.
    #[inline]
    pub(super) fn try_lock(&self) -> Option<ShardLockGuard<'_>> {
        // Acquire: as in `lock`.
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| ShardLockGuard { lock: self })
    }

    /// Whether some thread holds the lock (a hint: it may change at once).
    #[inline]
    pub(super) fn is_locked(&self) -> bool {
        // Relaxed: a hint; `try_lock` decides.
        self.locked.load(Ordering::Relaxed)
    }

    #[cold]
    fn lock_slow(&self) {
        let backoff = Backoff::new();
        loop {
            // Test before test-and-set: wait on a shared cache line.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            // Acquire: as in `lock`.
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl Drop for ShardLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release pairs with the Acquire of the next `lock`.
        self.lock.locked.store(false, Ordering::Release);
    }
}
