//! Wait strategies: what a thread does while it cannot make progress.
//!
//! The same strategy serves consumers waiting on an empty ring (or on an
//! upstream consumer) and producers waiting on a full ring, so a ring never
//! has one well-behaved side and one side that spins forever.
//!
//! | strategy | needs | idle CPU | wake-up latency | publish cost |
//! |---|---|---|---|---|
//! | [`BusySpin`] (spins with the CPU's spin-loop hint) | nothing (`no_std`) | a whole core | lowest | none |
//! | [`Yielding`] | `std` | a core, shared | low | none |
//! | [`Parking`] (default under `std`) | `std` | near zero | up to its `max_park` after long idle | none |
//! | [`Blocking`] | `std` | zero | a futex wake | a fence + a load per publish/release |
//! | [`Timeout`] | `std` | as the wrapped one | as the wrapped one | as the wrapped one |
//!
//! On a machine with more runnable threads than cores, `BusySpin` starves the
//! very thread it waits for; prefer the default there.
//!
//! Implementing [`WaitStrategy`] yourself is the way to plug in a platform
//! wait (a `WFE` on Cortex-M, an RTOS event flag).

use super::error::TimedOut;
#[cfg(feature = "std")]
use super::std_wait::Parking;

/// What a thread does while it waits for a ring condition.
///
/// The ring calls [`wait_until`](Self::wait_until) with a condition that turns
/// true when progress is possible (or the ring is closed or halted). A
/// strategy that sleeps must be woken by [`notify`](Self::notify), which the
/// ring calls after every publish and every consumer release when
/// [`NOTIFIES`](Self::NOTIFIES) is true.
///
/// ```
/// use latchfree::ring::{Heap, Ring, Single, TimedOut, WaitStrategy};
///
/// /// Spins at most a million times, then gives up (a `no_std`-friendly
/// /// bounded wait; a microcontroller might execute `WFE` instead).
/// struct Bounded;
/// impl WaitStrategy for Bounded {
///     fn wait_until<F: FnMut() -> bool>(&self, mut ready: F) -> Result<(), TimedOut> {
///         for _ in 0..1_000_000 {
///             if ready() {
///                 return Ok(());
///             }
///             core::hint::spin_loop();
///         }
///         Err(TimedOut)
///     }
/// }
///
/// let ring = Ring::<Heap<u8>, Single, Bounded>::with_wait(Heap::builder(4).gates(1).build().unwrap(), Bounded);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let _producer = graph.single_producer().unwrap();
/// // Nothing is published: the consumer's wait gives up.
/// assert!(consumer.wait(|_, _, _| ()).is_err());
/// ```
pub trait WaitStrategy: Send + Sync {
    /// Whether the ring must call [`notify`](Self::notify) after progress.
    /// Leave it `false` unless the strategy sleeps until notified: each
    /// notification costs the publisher a full fence.
    const NOTIFIES: bool = false;

    /// Waits until `ready()` returns true. Implementations must call
    /// `ready` again after every sleep or spin, since wake-ups can be
    /// spurious.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if the strategy gives up first (only time-limited ones do).
    fn wait_until<F: FnMut() -> bool>(&self, ready: F) -> Result<(), TimedOut>;

    /// Wakes waiters after progress. Only called when `NOTIFIES` is true.
    #[inline]
    fn notify(&self) {}

    /// Gives back waker cell `cell`, which a handle kept between its
    /// awaits (`AsyncWait` only), when the handle is dropped.
    #[doc(hidden)]
    #[inline]
    fn release_cell(&self, cell: usize) {
        let _ = cell;
    }
}

/// Re-checks the condition in a tight loop, with the CPU's spin-loop hint
/// (`pause` on x86, `yield` on ARM) between checks: the lowest wake-up
/// latency there is. Burns a core and collapses when waiting threads
/// outnumber cores. Works in `no_std`.
///
/// The hint is not optional: a loop that loads the watched line back to
/// back without it keeps that line away from the core that must write it
/// and pays a pipeline flush when the write lands. Measured in the
/// shootout on a 2-core EPYC VM (`1p1c`, both threads spinning; the
/// `rtrb` and `disruptor` rows spin with the hint too): when the two
/// cores were far apart (a bare-atomic round trip of 450 ns) the same
/// ring reached 14 to 17 M events/s spinning without the hint and 34 to
/// 36 M with it; when they were close (a 110 ns round trip) the ring's
/// ping-pong p50 was the same both ways (130 ns, at the histogram's 10 ns
/// resolution). The Java Disruptor's busy spin makes the same call.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// // For a consumer pinned to its own core and nothing else.
/// let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(Heap::builder(1024).gates(1).build().unwrap(), BusySpin);
/// assert_eq!(ring.capacity(), 1024);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct BusySpin;

impl BusySpin {
    /// The strategy (a unit value; `const` for `static` rings).
    pub const fn new() -> Self {
        Self
    }
}

impl WaitStrategy for BusySpin {
    #[inline]
    fn wait_until<F: FnMut() -> bool>(&self, mut ready: F) -> Result<(), TimedOut> {
        while !ready() {
            crate::sync::spin_loop();
        }
        Ok(())
    }
}

/// The strategy a ring uses when none is named: [`Parking`] under `std`,
/// [`BusySpin`] without it.
///
/// ```
/// use latchfree::ring::{DefaultWait, Heap, Ring};
///
/// // `Ring<S>` is `Ring<S, Single, DefaultWait>`.
/// let ring: Ring<Heap<u64>> = Ring::with_wait(Heap::builder(64).gates(1).build().unwrap(), DefaultWait::default());
/// assert_eq!(ring.capacity(), 64);
/// ```
#[cfg(feature = "std")]
pub type DefaultWait = Parking;
/// The strategy a ring uses when none is named: [`Parking`] under `std`,
/// [`BusySpin`] without it.
#[cfg(not(feature = "std"))]
pub type DefaultWait = BusySpin;
