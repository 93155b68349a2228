//! `std` conveniences: a per-thread random source for [`LeastLoaded`].

use core::cell::Cell;

use super::{Lease, LeastLoaded};
use crate::sync::thread;

thread::thread_local! {
    /// xorshift64* state, seeded per thread from its address and the
    /// process-wide clock.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// 64 random bits from this thread's xorshift64* generator (not
/// cryptographic; for sampling members).
fn random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = (state as *const Cell<u64> as u64) ^ crate::limiter::now_nanos() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

impl<B: Clone + PartialEq + Send + Sync> LeastLoaded<B> {
    /// Leases the less loaded of two members chosen at random (a
    /// per-thread generator); see [`pick_with`](Self::pick_with).
    ///
    /// ```
    /// use latchfree::balance::LeastLoaded;
    ///
    /// let lb = LeastLoaded::new(["a", "b", "c"]);
    /// let lease = lb.pick().unwrap();
    /// assert!(["a", "b", "c"].contains(lease.member()));
    /// ```
    #[inline]
    pub fn pick(&self) -> Option<Lease<B>> {
        self.pick_with(random())
    }
}
