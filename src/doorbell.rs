//! A doorbell: how idle threads sleep until someone makes work for them,
//! with no lost wake-ups and no cost to the ringer while nobody sleeps.
//!
//! Used by the thread pool's workers (`pool`), whose work is a ring they
//! poll; the doorbell knows nothing about the work itself.
//!
//! # Protocol
//!
//! - A sleeper takes the lock, counts itself in `sleepers`, then in a loop
//!   issues a `SeqCst` fence and checks for work; only if there is none
//!   does it wait on the condition variable (releasing the lock
//!   atomically). It uncounts itself before leaving, still under the lock.
//! - A ringer makes work available, issues a `SeqCst` fence and reads
//!   `sleepers`; if non-zero it takes and releases the lock, then signals
//!   one sleeper.
//!
//! By the two fences, either the ringer sees the sleeper's count, or the
//! sleeper's check sees the work. In the first case the lock makes the
//! signal land after the sleeper is waiting (or after it checked again). A
//! signalled sleeper that finds nothing (another thread took the work)
//! simply waits again. `loom-tests/tests/pool.rs` checks this with the
//! ring as the work.

use core::time::Duration;

use crate::sync::blocking::{Condvar, Mutex, MutexGuard};
use crate::sync::{fence, AtomicUsize, CachePadded, Ordering};

/// What a sleeper's check found.
pub enum Check<R> {
    /// Stop sleeping with this.
    Done(R),
    /// Nothing yet: wait for a ring, at most this long (`None`: no limit).
    Wait(Option<Duration>),
}

/// See the [module docs](self).
pub struct Doorbell {
    /// Threads inside `sleep`, `0..=threads`.
    sleepers: CachePadded<AtomicUsize>,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Doorbell")
            .field("sleepers", &self.sleepers())
            .finish()
    }
}

impl Doorbell {
    /// A doorbell nobody sleeps on.
    pub fn new() -> Self {
        Self {
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data; poisoning means nothing here.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Threads sleeping (or about to) now. Stale under concurrency.
    pub fn sleepers(&self) -> usize {
        self.sleepers.load(Ordering::Relaxed)
    }

    /// Call after making work available: wakes one sleeper if there is one.
    /// Returns whether there was.
    pub fn ring(&self) -> bool {
        // SeqCst: pairs with the sleeper's fence (module docs).
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) == 0 {
            return false;
        }
        // Taking the lock waits out a sleeper between its check and its
        // wait; once we hold it, every counted sleeper that has not left is
        // waiting. The signal goes after the unlock, so the woken thread
        // does not block again on the lock we hold.
        drop(self.lock());
        self.cond.notify_one();
        true
    }

    /// Wakes every sleeper (for state changes such as a close).
    pub fn ring_all(&self) {
        let g = self.lock();
        self.cond.notify_all();
        drop(g);
    }

    /// Sleeps until `check` says done. `check` runs under the doorbell's
    /// lock (so it must not ring this doorbell), first at once and then
    /// after every wake-up; its argument says whether the last wait timed
    /// out.
    pub fn sleep<R>(&self, mut check: impl FnMut(bool) -> Check<R>) -> R {
        let mut g = self.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut timed_out = false;
        let r = loop {
            // SeqCst: pairs with the fence in `ring` (module docs).
            fence(Ordering::SeqCst);
            match check(timed_out) {
                Check::Done(r) => break r,
                Check::Wait(None) => {
                    g = self.cond.wait(g).unwrap_or_else(|e| e.into_inner());
                    timed_out = false;
                }
                Check::Wait(Some(d)) => {
                    let (g2, t) = wait_timeout(&self.cond, g, d);
                    g = g2;
                    timed_out = t;
                }
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        drop(g);
        r
    }
}

#[cfg(not(latchfree_loom))]
fn wait_timeout<'a>(
    cond: &Condvar,
    g: MutexGuard<'a, ()>,
    d: Duration,
) -> (MutexGuard<'a, ()>, bool) {
    let (g, t) = cond.wait_timeout(g, d).unwrap_or_else(|e| e.into_inner());
    (g, t.timed_out())
}

// Loom models no time: a timed wait is an untimed one that ends only by
// being woken, which every caller handles; except a zero wait, which times
// out at once (so a pool with a zero keep-alive retires its workers in the
// models too).
#[cfg(latchfree_loom)]
fn wait_timeout<'a>(
    cond: &Condvar,
    g: MutexGuard<'a, ()>,
    d: Duration,
) -> (MutexGuard<'a, ()>, bool) {
    if d.is_zero() {
        return (g, true);
    }
    (cond.wait(g).unwrap_or_else(|e| e.into_inner()), false)
}
