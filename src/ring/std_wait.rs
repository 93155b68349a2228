//! The ring's `std` wait strategies: [`Yielding`], [`Parking`], [`Blocking`]
//! and the [`Timeout`] wrapper, plus [`TimedWait`] for the `no_std` spinners.
//!
//! Every spin-then-yield phase is the crate's one [`Backoff`]
//! (crossbeam-utils' own): exponential spins, then yields, until it reports
//! completed; what a strategy does after that is its own (park for a
//! doubling interval, sleep on a condition variable). [`Yielding`] has no
//! spin phase: it yields from the first failed check.

use core::time::Duration;
use std::time::Instant;

use super::error::TimedOut;
use super::wait::WaitStrategy;
use crate::sync::blocking::{Condvar, Mutex};
use crate::sync::{fence, spin_loop, thread, AtomicUsize, Backoff, Ordering};

/// A strategy that can wait with a deadline; what [`Timeout`] wraps.
///
/// ```
/// use std::time::{Duration, Instant};
/// use latchfree::ring::{Blocking, TimedWait};
///
/// let wait = Blocking::new();
/// let deadline = Instant::now() + Duration::from_millis(5);
/// assert!(wait.wait_until_deadline(|| false, deadline).is_err());
/// assert!(Instant::now() >= deadline);
/// assert!(wait.wait_until_deadline(|| true, deadline).is_ok());
/// ```
pub trait TimedWait: WaitStrategy {
    /// Waits until `ready()` or until `deadline`, whichever is first.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if the deadline passed with `ready()` still false.
    fn wait_until_deadline<F: FnMut() -> bool>(
        &self,
        ready: F,
        deadline: Instant,
    ) -> Result<(), TimedOut>;
}

/// Spins on `ready` with `hint` between checks, reading the clock every
/// 64 turns.
fn spin_until_deadline<F: FnMut() -> bool>(
    mut ready: F,
    deadline: Instant,
    hint: fn(),
) -> Result<(), TimedOut> {
    let mut n = 0u32;
    while !ready() {
        n = n.wrapping_add(1);
        if n % 64 == 0 && Instant::now() >= deadline {
            return if ready() { Ok(()) } else { Err(TimedOut) };
        }
        hint();
    }
    Ok(())
}

impl TimedWait for super::wait::BusySpin {
    fn wait_until_deadline<F: FnMut() -> bool>(
        &self,
        ready: F,
        deadline: Instant,
    ) -> Result<(), TimedOut> {
        spin_until_deadline(ready, deadline, spin_loop)
    }
}

/// Yields the core to the scheduler between checks, with no spin phase.
///
/// Made for threads that outnumber cores (a few producers and consumers on
/// a small machine): there the thread being waited for is often runnable on
/// this very core, and spinning first only delays it; a waiter that spins
/// also catches up with every event as it is published, so events travel
/// one at a time, each a cache-line transfer, where a waiter that yields
/// finds a batch when it runs again. On an otherwise idle core
/// `sched_yield` returns at once and acts as a short spin. Idle cost is a
/// core's worth of `sched_yield` calls; [`Parking`] idles for free.
///
/// ```
/// use latchfree::ring::{Heap, Multi, Ring, Yielding};
///
/// // A few producer threads, a consumer, about as many threads as cores.
/// let ring = Ring::<Heap<u64>, Multi, Yielding>::with_wait(Heap::builder(4096).gates(1).build().unwrap(), Yielding);
/// assert_eq!(ring.capacity(), 4096);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Yielding;

impl WaitStrategy for Yielding {
    fn wait_until<F: FnMut() -> bool>(&self, mut ready: F) -> Result<(), TimedOut> {
        while !ready() {
            thread::yield_now();
        }
        Ok(())
    }
}

impl TimedWait for Yielding {
    fn wait_until_deadline<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        deadline: Instant,
    ) -> Result<(), TimedOut> {
        while !ready() {
            if Instant::now() >= deadline {
                return if ready() { Ok(()) } else { Err(TimedOut) };
            }
            thread::yield_now();
        }
        Ok(())
    }
}

/// Backs off (spins, then yields: the crate's one backoff), then parks for a doubling interval
/// from 16 µs up to `max_park` between checks. Needs no notification, so
/// publishing costs nothing extra, and an idle consumer costs almost no
/// CPU; the price is up to `max_park` of extra latency for the first
/// event after a long idle spell. The default strategy under `std`.
///
/// ```
/// use std::time::Duration;
/// use latchfree::ring::{Heap, Parking, Ring, Single};
///
/// // Idle consumers check at least every 100 µs instead of every 1 ms.
/// let wait = Parking::with_max_park(Duration::from_micros(100));
/// let ring = Ring::<Heap<u64>, Single, Parking>::with_wait(Heap::builder(256).gates(1).build().unwrap(), wait);
/// assert_eq!(ring.capacity(), 256);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Parking {
    max_park: Duration,
}

impl Parking {
    /// Parks for at most 1 ms at a time.
    pub const fn new() -> Self {
        Self {
            max_park: Duration::from_millis(1),
        }
    }

    /// Parks for at most `max_park` at a time: shorter means quicker
    /// wake-up after idle and more idle CPU.
    pub const fn with_max_park(max_park: Duration) -> Self {
        Self { max_park }
    }

    fn run<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        deadline: Option<Instant>,
    ) -> Result<(), TimedOut> {
        let backoff = Backoff::new();
        let mut park = Duration::from_micros(16);
        while !ready() {
            if !backoff.is_completed() {
                backoff.snooze();
            } else {
                let mut nap = park.min(self.max_park);
                if let Some(d) = deadline {
                    let now = Instant::now();
                    if now >= d {
                        return if ready() { Ok(()) } else { Err(TimedOut) };
                    }
                    nap = nap.min(d - now);
                }
                thread::park_timeout(nap);
                park = park.saturating_mul(2);
            }
        }
        Ok(())
    }
}

impl Default for Parking {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitStrategy for Parking {
    fn wait_until<F: FnMut() -> bool>(&self, ready: F) -> Result<(), TimedOut> {
        self.run(ready, None)
    }
}

impl TimedWait for Parking {
    fn wait_until_deadline<F: FnMut() -> bool>(
        &self,
        ready: F,
        deadline: Instant,
    ) -> Result<(), TimedOut> {
        self.run(ready, Some(deadline))
    }
}

/// Backs off (spins, then yields), then sleeps on a condition variable until the ring
/// notifies it. Zero idle CPU and prompt wake-ups; every publish and
/// every consumer release pays a full fence and one load (plus a futex
/// wake when someone sleeps).
///
/// No lost wake-ups: a waiter announces itself (`sleepers += 1`), then
/// fences, then re-checks its condition under the lock; a notifier
/// publishes, then fences, then reads `sleepers`. By the two `SeqCst`
/// fences at least one of them sees the other's write, and the lock makes
/// the notify land after the waiter is on the condition variable.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::ring::{Blocking, Heap, Ring, Single};
///
/// let ring = Arc::new(Ring::<Heap<u64>, Single, Blocking>::with_wait(
///     Heap::builder(8).gates(1).build().unwrap(),
///     Blocking::new(),
/// ));
/// let mut graph = Ring::graph(ring.clone()).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// let t = std::thread::spawn(move || {
///     let mut sum = 0;
///     // Sleeps on a condition variable until a publish wakes it.
///     while consumer.wait(|e, _, _| sum += e).is_ok() {}
///     sum
/// });
/// for i in 0..100 {
///     producer.push(i).unwrap(); // also waits (asleep) while the ring is full
/// }
/// drop(producer);
/// assert_eq!(t.join().unwrap(), 4950);
/// ```
#[derive(Debug)]
pub struct Blocking {
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Blocking {
    const_fn_unless_loom! {
        /// A new blocking strategy.
        pub fn new() -> Self {
            Self {
                sleepers: AtomicUsize::new(0),
                lock: Mutex::new(()),
                cond: Condvar::new(),
            }
        }
    }

    fn run<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        deadline: Option<Instant>,
    ) -> Result<(), TimedOut> {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if ready() {
                return Ok(());
            }
            backoff.snooze();
        }
        // A poisoned lock only means another waiter panicked while
        // holding `()`: there is no data to be inconsistent.
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        let result = loop {
            // SeqCst: pairs with the fence in `notify`; see the type docs.
            fence(Ordering::SeqCst);
            if ready() {
                break Ok(());
            }
            match deadline {
                None => {
                    guard = self.cond.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break Err(TimedOut);
                    }
                    guard = wait_timeout(&self.cond, guard, d - now);
                }
            }
        };
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        result
    }
}

#[cfg(not(latchfree_loom))]
fn wait_timeout<'a>(
    cond: &Condvar,
    guard: crate::sync::blocking::MutexGuard<'a, ()>,
    d: Duration,
) -> crate::sync::blocking::MutexGuard<'a, ()> {
    cond.wait_timeout(guard, d)
        .map(|(g, _)| g)
        .unwrap_or_else(|e| e.into_inner().0)
}

// Loom models no time: a timed wait is an untimed one there.
#[cfg(latchfree_loom)]
fn wait_timeout<'a>(
    cond: &Condvar,
    guard: crate::sync::blocking::MutexGuard<'a, ()>,
    _d: Duration,
) -> crate::sync::blocking::MutexGuard<'a, ()> {
    cond.wait(guard).unwrap_or_else(|e| e.into_inner())
}

impl Default for Blocking {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitStrategy for Blocking {
    const NOTIFIES: bool = true;

    fn wait_until<F: FnMut() -> bool>(&self, ready: F) -> Result<(), TimedOut> {
        self.run(ready, None)
    }

    #[inline]
    fn notify(&self) {
        // SeqCst: orders the caller's publish (or release) before the
        // read of `sleepers`; pairs with the fence in `run`.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cond.notify_all();
        }
    }
}

impl TimedWait for Blocking {
    fn wait_until_deadline<F: FnMut() -> bool>(
        &self,
        ready: F,
        deadline: Instant,
    ) -> Result<(), TimedOut> {
        self.run(ready, Some(deadline))
    }
}

/// Wraps a strategy so each wait gives up after `limit`; the ring then
/// reports [`PublishError::Timeout`](super::PublishError::Timeout)
/// or [`ConsumeError::Timeout`](super::ConsumeError::Timeout).
///
/// ```
/// use std::time::Duration;
/// use latchfree::ring::{Heap, Parking, PublishError, Ring, Single, Timeout};
///
/// let wait = Timeout::new(Parking::new(), Duration::from_millis(10));
/// let ring = Ring::<Heap<u8>, Single, _>::with_wait(Heap::builder(1).gates(1).build().unwrap(), wait);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let _stalled = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer.push(1).unwrap();
/// // The ring is full and its consumer never polls: the publish gives up.
/// assert!(matches!(producer.push(2), Err(PublishError::Timeout(2))));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Timeout<W> {
    inner: W,
    limit: Duration,
}

impl<W> Timeout<W> {
    /// Waits at most `limit` each time, with `inner` doing the waiting.
    pub const fn new(inner: W, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

impl<W: TimedWait> WaitStrategy for Timeout<W> {
    const NOTIFIES: bool = W::NOTIFIES;

    fn wait_until<F: FnMut() -> bool>(&self, ready: F) -> Result<(), TimedOut> {
        // A limit too far out for an `Instant` (`Duration::MAX`) is no
        // limit: wait as the inner strategy does, never panic.
        match Instant::now().checked_add(self.limit) {
            Some(deadline) => self.inner.wait_until_deadline(ready, deadline),
            None => self.inner.wait_until(ready),
        }
    }

    #[inline]
    fn notify(&self) {
        self.inner.notify();
    }
}
