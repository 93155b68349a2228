//! A doorbell: how idle threads sleep until someone makes work for them,
//! with no lost wake-ups and no cost to the ringer while nobody sleeps.
//!
//! The one sleep/wake protocol of the adapters: the thread pool's workers
//! and the batcher's flushers sleep on it, and whoever publishes into their
//! queue rings it. It knows nothing about the work itself.
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
//! simply waits again.
//!
//! # Wakes in flight
//!
//! A signal costs the ringer a system call, and a signalled sleeper takes
//! microseconds to run again (far longer on a loaded machine), while a
//! steady submitter rings every publish. So the doorbell counts the
//! signals sent and not yet taken up, `pending`, beside `sleepers`:
//!
//! - A ringer that has seen `sleepers` non-zero also reads `pending`; if
//!   every sleeper already has a signal on its way (`pending >= sleepers`)
//!   it sends none, since a signal now would wake nobody new. Otherwise it
//!   takes the lock, counts its signal in `pending` (only while a sleeper
//!   is still counted) and signals.
//! - A sleeper back from a wait (signalled, timed out or spurious) takes
//!   one off `pending` if it is non-zero, under the lock, *before* its
//!   fence and check. A sleeper that leaves keeps `pending <= sleepers`.
//!
//! Why skipping is safe: a ringer that reads `pending > 0` has not seen the
//! take-up of at least one signal; that take-up is sequenced before its
//! thread's fence, so by the fences that thread's next check comes after
//! the ringer's fence and sees the ringer's work. That is what a signal
//! would have bought: one more check after the work was made (a sleeper
//! already signalled would not be woken twice). Every signal counted is
//! taken up: it was sent while its sleepers were all waiting (the ringer
//! held the lock), so some sleeper returns from its wait after the count
//! and takes it. `loom-tests/tests/doorbell.rs` models rings racing a
//! signalled sleeper.
//!
//! # Announced work
//!
//! A ringer may fence as soon as its work is *announced* rather than
//! complete: [`listen`](Doorbell::listen) (the fence and the `sleepers`
//! load) right after, say, claiming a queue slot, and
//! [`signal`](Doorbell::signal) after publishing it, only if `listen` saw
//! a sleeper. The fences pair as before, so a sleeper the ringer missed
//! sees at least the announcement; its check must therefore treat
//! announced, unfinished work as work and return without waiting (and look
//! again soon), never wait for a signal that may not come. `ring` is
//! `listen` and `signal` back to back.
//!
//! When the announcement is itself a `SeqCst` read-modify-write (the
//! pool's claim on its ring), the fence is not needed:
//! [`listen_after_rmw`](Doorbell::listen_after_rmw) only loads `sleepers`
//! (`SeqCst`). In the C++ model the RMW precedes that load in the single
//! order S of `SeqCst` operations; a load that misses the sleeper's count
//! precedes the sleeper's `SeqCst` increment in S, which precedes its fence;
//! so the RMW precedes the fence, and the sleeper's check after the fence
//! sees the announcement (C++20 [atomics.order]: a read after a `SeqCst`
//! fence cannot see a value older than a `SeqCst` write that precedes the
//! fence in S). On x86 that drops the submitter's `mfence` (about 4 ns a
//! job, measured in a tight loop); the claim's `lock cmpxchg` already
//! orders it.
//!
//! A sleep may be timed ([`Check::Wait`] with a limit); the check then
//! learns whether the wait timed out.
//!
//! # Naps and state changes
//!
//! [`Doorbell::ring_all`] is for state changes every waiter must see (a
//! close, a flush): the changer makes the change, then takes the lock and
//! wakes everyone. A check made under the lock either sees the change or
//! runs before the change's `ring_all` takes the lock, and then its thread
//! is waiting when the wake-up comes. No fence is needed for that: the lock
//! orders it.
//!
//! A *nap* ([`Doorbell::nap`]) is a short timed wait that is not counted
//! in `sleepers`, so [`ring`](Doorbell::ring) never pays to wake it; only
//! [`ring_all`](Doorbell::ring_all) cuts it short. Nappers wait on a
//! condition variable of their own, so `ring`'s single signal always goes
//! to a counted sleeper. (The batcher's flusher naps while a batch lingers
//! for more items: producers filling it pay nothing for the flusher.)
//!
//! `loom-tests/tests/doorbell.rs` models the protocol alone (a ring racing
//! a sleeper's registration, a timed sleep, a close with `ring_all`, a
//! nap); `loom-tests/tests/pool.rs` and `batch.rs` run it with the real
//! ring and callers.

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
    /// What a ringer reads, on one line.
    counts: CachePadded<Counts>,
    lock: Mutex<()>,
    /// Where counted sleepers wait.
    cond: Condvar,
    /// Where nappers wait (never signalled by `ring`).
    naps: Condvar,
}

struct Counts {
    /// Threads inside `sleep`, `0..=threads`.
    sleepers: AtomicUsize,
    /// Signals sent and not yet taken up by a sleeper, `0..=sleepers`
    /// (module docs, "Wakes in flight"). Written under the lock.
    pending: AtomicUsize,
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
            .field("pending", &self.counts.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl Doorbell {
    /// A doorbell nobody sleeps on.
    pub fn new() -> Self {
        Self {
            counts: CachePadded::new(Counts {
                sleepers: AtomicUsize::new(0),
                pending: AtomicUsize::new(0),
            }),
            lock: Mutex::new(()),
            cond: Condvar::new(),
            naps: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data; poisoning means nothing here.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Threads sleeping (or about to) now. Stale under concurrency.
    pub fn sleepers(&self) -> usize {
        self.counts.sleepers.load(Ordering::Relaxed)
    }

    /// Signals sent and not yet taken up by a sleeper (module docs, "Wakes
    /// in flight"). Stale under concurrency.
    pub fn pending(&self) -> usize {
        self.counts.pending.load(Ordering::Relaxed)
    }

    /// Call after making work available: wakes one sleeper if there is one
    /// and none is already on its way up (module docs). Returns whether
    /// there was a sleeper.
    pub fn ring(&self) -> bool {
        if !self.listen() {
            return false;
        }
        self.signal();
        true
    }

    /// The first half of [`ring`](Self::ring), for a ringer whose work is
    /// *announced* before it is complete (module docs, "Announced work"):
    /// the fence, then whether anyone sleeps. Call it once the work is
    /// announced; if it returns `true`, call [`signal`](Self::signal)
    /// once the work is complete.
    #[inline]
    pub fn listen(&self) -> bool {
        // SeqCst: pairs with the sleeper's fence (module docs).
        fence(Ordering::SeqCst);
        self.counts.sleepers.load(Ordering::SeqCst) != 0
    }

    /// [`listen`](Self::listen) for a ringer whose announcement was itself
    /// a `SeqCst` read-modify-write (the pool's claim on its ring): in the
    /// C++ model that RMW is ordered before this `SeqCst` load as the fence
    /// would order it (module docs, "Announced work"), so no fence is
    /// issued. Under loom, which models `SeqCst` accesses as `AcqRel`, the
    /// fence stands in for that order, so the models check the fenced
    /// protocol.
    #[inline]
    pub fn listen_after_rmw(&self) -> bool {
        if cfg!(latchfree_loom) {
            fence(Ordering::SeqCst);
        }
        self.counts.sleepers.load(Ordering::SeqCst) != 0
    }

    /// The second half of [`ring`](Self::ring), after a
    /// [`listen`](Self::listen) (or
    /// [`listen_after_rmw`](Self::listen_after_rmw)) that returned `true`:
    /// wakes one sleeper unless every sleeper already has a signal on its
    /// way.
    pub fn signal(&self) {
        let c = &self.counts;
        let sleepers = c.sleepers.load(Ordering::SeqCst);
        // SeqCst, after `listen`'s fence (or the `SeqCst` RMW that
        // `listen_after_rmw` follows): a signal not yet taken up means a
        // check still to come after our work (module docs).
        if sleepers == 0 || c.pending.load(Ordering::SeqCst) >= sleepers {
            return;
        }
        // Taking the lock waits out a sleeper between its check and its
        // wait; once we hold it, every counted sleeper that has not left is
        // waiting. The signal goes after the unlock, so the woken thread
        // does not block again on the lock we hold.
        let g = self.lock();
        // Under the lock (where sleepers count and uncount themselves): a
        // signal is counted only while a sleeper waits to take it up.
        let (s, p) = (c.sleepers.load(Ordering::SeqCst), c.pending.load(Ordering::SeqCst));
        if p < s {
            c.pending.store(p + 1, Ordering::SeqCst);
        }
        drop(g);
        self.cond.notify_one();
    }

    /// Wakes every sleeper and napper. Call after a state change every
    /// waiter must see (a close, a flush): see the module docs.
    pub fn ring_all(&self) {
        let g = self.lock();
        self.cond.notify_all();
        self.naps.notify_all();
        drop(g);
    }

    /// Naps at most `d` unless `ready` (called once, under the lock, so it
    /// must not ring this doorbell) says there is no need, or a
    /// [`ring_all`](Self::ring_all) comes. Not counted as a sleeper:
    /// [`ring`](Self::ring) does not wake it (module docs). May return
    /// early.
    pub fn nap(&self, d: Duration, ready: impl FnOnce() -> bool) {
        self.nap_inner(d, ready);
    }

    /// Sleeps until `check` says done. `check` runs under the doorbell's
    /// lock (so it must not ring this doorbell), first at once and then
    /// after every wake-up; its argument says whether the last wait timed
    /// out.
    pub fn sleep<R>(&self, mut check: impl FnMut(bool) -> Check<R>) -> R {
        let c = &self.counts;
        let mut g = self.lock();
        c.sleepers.fetch_add(1, Ordering::SeqCst);
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
            // Back from a wait, under the lock: take up a signal in flight
            // before the fence and check above (module docs: a ringer that
            // saw it counted skipped its own signal on our next check).
            let p = c.pending.load(Ordering::SeqCst);
            if p > 0 {
                c.pending.store(p - 1, Ordering::SeqCst);
            }
        };
        // Still under the lock. Keeps `pending <= sleepers`: a count no
        // sleeper is left to take up would make later rings skip their
        // signal (by the module docs' argument it cannot arise; this keeps
        // it so).
        let s = c.sleepers.fetch_sub(1, Ordering::SeqCst) - 1;
        if c.pending.load(Ordering::SeqCst) > s {
            c.pending.store(s, Ordering::SeqCst);
        }
        drop(g);
        r
    }
}

cfg_not_loom! {
    fn wait_timeout<'a>(
        cond: &Condvar,
        g: MutexGuard<'a, ()>,
        d: Duration,
    ) -> (MutexGuard<'a, ()>, bool) {
        let (g, t) = cond.wait_timeout(g, d).unwrap_or_else(|e| e.into_inner());
        (g, t.timed_out())
    }
}

// Loom models no time: a timed wait is an untimed one that ends only by
// being woken, which every caller handles; except a zero wait, which times
// out at once (so a pool with a zero keep-alive retires its workers in the
// models too).
cfg_loom! {
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
}

impl Doorbell {
    cfg_not_loom! {
        fn nap_inner(&self, d: Duration, ready: impl FnOnce() -> bool) {
            let g = self.lock();
            if !ready() {
                drop(self.naps.wait_timeout(g, d));
            }
        }
    }

    // Loom models no time: a nap is a yield (it may end at any moment,
    // which every caller handles), so it never waits for `ring_all` and
    // needs no lock (which would only multiply a model's states).
    cfg_loom! {
        fn nap_inner(&self, _d: Duration, ready: impl FnOnce() -> bool) {
            if !ready() {
                crate::sync::thread::yield_now();
            }
        }
    }
}

#[cfg(all(test, not(latchfree_loom)))]
mod tests {
    use super::*;
    use crate::sync::{Arc, AtomicBool};
    use std::thread;
    use std::time::Instant;

    /// A `ring` must reach the counted sleeper even while a napper waits:
    /// with one condition variable for both, its single signal could go
    /// to the napper (which waits 10 s) and the sleeper would sleep on.
    #[test]
    fn ring_reaches_the_sleeper_not_a_napper() {
        let bell = Arc::new(Doorbell::new());
        let go = Arc::new(AtomicBool::new(false));
        let b = bell.clone();
        // The napper waits first, so it would be first in line for a
        // signal.
        let napper = thread::spawn(move || b.nap(Duration::from_secs(10), || false));
        thread::sleep(Duration::from_millis(50));
        let (b, g) = (bell.clone(), go.clone());
        let sleeper = thread::spawn(move || {
            b.sleep(|_| {
                if g.load(Ordering::SeqCst) {
                    Check::Done(())
                } else {
                    // Timed, so a lost ring fails the test, not hangs it.
                    Check::Wait(Some(Duration::from_secs(5)))
                }
            });
            Instant::now()
        });
        while bell.sleepers() == 0 {
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(20));
        go.store(true, Ordering::SeqCst);
        let rung = Instant::now();
        assert!(bell.ring(), "the sleeper is counted");
        let woke = sleeper.join().unwrap();
        assert!(
            woke.duration_since(rung) < Duration::from_secs(4),
            "the ring was spent on the napper"
        );
        bell.ring_all();
        napper.join().unwrap();
    }

    /// While the one sleeper's signal is in flight (it cannot run yet: we
    /// hold the lock it must take back), another ring sends nothing and so
    /// never waits for the lock; before signals in flight were counted it
    /// took the lock and signalled again every time.
    #[test]
    fn a_ring_with_a_signal_in_flight_skips_the_lock() {
        let bell = Arc::new(Doorbell::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (b, st) = (bell.clone(), stop.clone());
        let sleeper = thread::spawn(move || {
            b.sleep(|_| {
                if st.load(Ordering::SeqCst) {
                    Check::Done(())
                } else {
                    Check::Wait(Some(Duration::from_secs(5)))
                }
            })
        });
        // Until we catch the signal in flight: ring, then take the lock
        // before the sleeper takes it back (it may win; then try again).
        let g = loop {
            while bell.sleepers() == 0 {
                thread::yield_now();
            }
            assert!(bell.ring(), "the sleeper is counted");
            let g = bell.lock();
            if bell.pending() == 1 {
                break g;
            }
            drop(g);
            thread::sleep(Duration::from_millis(1));
        };
        let b = bell.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let ringer = thread::spawn(move || tx.send(b.ring()).unwrap());
        let rang = rx.recv_timeout(Duration::from_secs(2));
        drop(g);
        assert_eq!(rang, Ok(true), "the second ring waited for the lock");
        ringer.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        bell.ring_all();
        sleeper.join().unwrap();
        assert_eq!((bell.sleepers(), bell.pending()), (0, 0));
    }
}
