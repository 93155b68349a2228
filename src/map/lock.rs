//! The per-shard writer lock: a test-and-test-and-set spin lock on the
//! crate's own atomics.
//!
//! Ground rules: the lock is held only by the map's own code, for a bounded
//! number of steps (a pointer check, a few slot stores, at most one
//! migration chunk). No user code (no `Hash`, `Eq`, closure or `Drop` of a
//! user type) ever runs while it is held, so a user cannot deadlock on it by
//! calling back into the map. Readers never touch it.
//!
//! Waiting: spin with exponential backoff for a few rounds; then, under
//! `std`, yield the thread between attempts so a preempted holder can run;
//! in `no_std` keep spinning (a holder there is only ever a few instructions
//! from releasing, unless it was preempted by an interrupt).

use crate::sync::{spin_loop, AtomicBool, Ordering};

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

    #[cold]
    fn lock_slow(&self) {
        let mut round: u32 = 0;
        loop {
            // Test before test-and-set: wait on a shared cache line.
            while self.locked.load(Ordering::Relaxed) {
                Self::backoff(round);
                round = round.saturating_add(1);
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

    #[inline]
    fn backoff(round: u32) {
        const SPIN_ROUNDS: u32 = 6;
        if round < SPIN_ROUNDS {
            for _ in 0..(1u32 << round) {
                spin_loop();
            }
        } else {
            #[cfg(any(feature = "std", latchfree_loom))]
            crate::sync::thread::yield_now();
            #[cfg(not(any(feature = "std", latchfree_loom)))]
            for _ in 0..(1u32 << SPIN_ROUNDS) {
                spin_loop();
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
