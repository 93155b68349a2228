//! Error values of the ring. Each implements `Display` and
//! `core::error::Error`, and hands back whatever the caller passed in.

use core::fmt;

/// A storage could not be built with the requested sizes.
///
/// ```
/// use latchfree::ring::{CapacityError, Heap};
///
/// assert_eq!(Heap::<u8>::builder(1000).gates(1).build().err(), Some(CapacityError::NotPowerOfTwo(1000)));
/// assert_eq!(Heap::<u8>::builder(1024).gates(65).build().err(), Some(CapacityError::TooManyGates(65)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityError {
    /// The capacity is zero, not a power of two, or above
    /// [`MAX_CAPACITY`](super::MAX_CAPACITY).
    NotPowerOfTwo(usize),
    /// More gates were asked for than [`MAX_GATES`](super::MAX_GATES).
    TooManyGates(usize),
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPowerOfTwo(n) => write!(
                f,
                "ring capacity {n} is not a power of two between 1 and 2^(usize::BITS-2)"
            ),
            Self::TooManyGates(n) => write!(f, "{n} gates requested; a ring has at most 64"),
        }
    }
}

impl core::error::Error for CapacityError {}

/// Building a ring's consumer graph failed.
///
/// ```
/// use latchfree::ring::{BuildError, BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u8>, Single, BusySpin>::with_wait(Heap::builder(8).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let _only = graph.consumer(&[]).unwrap();
/// assert!(matches!(graph.consumer(&[]), Err(BuildError::OutOfGates { available: 1, .. })));
/// assert!(matches!(Ring::graph(&ring), Err(BuildError::AlreadyBuilt)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The ring's graph was already built (each ring has exactly one).
    AlreadyBuilt,
    /// The storage has no gate left for another consumer, worker or group.
    OutOfGates {
        /// Gates the storage has.
        available: usize,
        /// Gates the graph needed.
        needed: usize,
    },
    /// A dependency names a node of another ring, or a work group asked for
    /// zero workers.
    InvalidNode,
    /// The graph has no consumer (or the runner no handler): its ring would
    /// accept events and deliver none.
    NoConsumers,
    /// The operating system refused to start a consumer thread.
    ThreadSpawn,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyBuilt => f.write_str("this ring's consumer graph was already built"),
            Self::OutOfGates { available, needed } => write!(
                f,
                "the ring's storage has {available} gates but the graph needs {needed}"
            ),
            Self::InvalidNode => {
                f.write_str("dependency from another ring, or a work group of zero workers")
            }
            Self::NoConsumers => {
                f.write_str("the ring's graph has no consumer: add one before taking the producer")
            }
            Self::ThreadSpawn => f.write_str("could not start a consumer thread"),
        }
    }
}

impl core::error::Error for BuildError {}

/// Why a publish did not happen. Carries back the closure (or value) that
/// would have written the event, so nothing is lost.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, PublishError, Ring, Single};
///
/// let ring = Ring::<Heap<u8>, Single, BusySpin>::with_wait(Heap::builder(1).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let _consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer.push(1).unwrap();
/// // Full: the value comes back.
/// let err = producer.try_push(2).unwrap_err();
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), 2);
/// ring.close();
/// assert!(matches!(producer.push(3), Err(PublishError::Closed(3))));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PublishError<F> {
    /// The ring had no free slot (only from `try_` methods).
    Full(F),
    /// The ring is closed to new events.
    Closed(F),
    /// The ring was halted.
    Halted(F),
    /// The wait strategy gave up before a slot freed.
    Timeout(F),
    /// More slots were asked for than the ring has.
    TooLarge(F),
}

impl<F> PublishError<F> {
    /// The closure or value handed back.
    pub fn into_inner(self) -> F {
        match self {
            Self::Full(f)
            | Self::Closed(f)
            | Self::Halted(f)
            | Self::Timeout(f)
            | Self::TooLarge(f) => f,
        }
    }

    /// `true` for [`PublishError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Full(_) => "Full",
            Self::Closed(_) => "Closed",
            Self::Halted(_) => "Halted",
            Self::Timeout(_) => "Timeout",
            Self::TooLarge(_) => "TooLarge",
        }
    }
}

impl<F> fmt::Debug for PublishError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.describe())
    }
}

impl<F> fmt::Display for PublishError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "the ring is full",
            Self::Closed(_) => "the ring is closed",
            Self::Halted(_) => "the ring was halted",
            Self::Timeout(_) => "timed out waiting for a free slot",
            Self::TooLarge(_) => "more slots requested than the ring holds",
        })
    }
}

impl<F> core::error::Error for PublishError<F> {}

/// Why [`Producer::force_push`](super::Producer::force_push) did not push.
/// Carries the value back.
///
/// ```
/// use latchfree::ring::{ForcePushError, Heap, Ring};
///
/// let ring = Ring::new(Heap::with_capacity(2).unwrap());
/// let mut graph = Ring::graph(&ring).unwrap();
/// let _multicast = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// // A multicast consumer would miss a taken event: refused.
/// assert_eq!(producer.force_push(1u8), Err(ForcePushError::NotAQueue(1)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ForcePushError<T> {
    /// The ring's graph is not one work group straight after the producer.
    NotAQueue(T),
    /// The ring is closed to new events.
    Closed(T),
    /// The ring was halted.
    Halted(T),
    /// The wait strategy gave up while a worker held the oldest event.
    Timeout(T),
}

impl<T> ForcePushError<T> {
    /// The value handed back.
    pub fn into_inner(self) -> T {
        match self {
            Self::NotAQueue(t) | Self::Closed(t) | Self::Halted(t) | Self::Timeout(t) => t,
        }
    }

    /// Maps a refused push (never `Full` or `TooLarge` for one blocking
    /// push of one event; both count as closed if they ever came).
    pub(super) fn from_publish(e: PublishError<T>) -> Self {
        match e {
            PublishError::Halted(t) => Self::Halted(t),
            PublishError::Timeout(t) => Self::Timeout(t),
            PublishError::Closed(t) | PublishError::Full(t) | PublishError::TooLarge(t) => {
                Self::Closed(t)
            }
        }
    }
}

impl<T> fmt::Debug for ForcePushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAQueue(_) => "NotAQueue(..)",
            Self::Closed(_) => "Closed(..)",
            Self::Halted(_) => "Halted(..)",
            Self::Timeout(_) => "Timeout(..)",
        })
    }
}

impl<T> fmt::Display for ForcePushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAQueue(_) => {
                "force_push needs a ring whose only consumer is one work group after the producer"
            }
            Self::Closed(_) => "the ring is closed",
            Self::Halted(_) => "the ring was halted",
            Self::Timeout(_) => "timed out waiting for a worker to release the oldest event",
        })
    }
}

impl<T> core::error::Error for ForcePushError<T> {}

/// Why a blocking consume returned without events.
///
/// ```
/// use latchfree::ring::{ConsumeError, Heap, Ring, Single, Parking};
///
/// let ring = Ring::<Heap<u8>, Single, Parking>::with_wait(Heap::builder(4).gates(1).build().unwrap(), Parking::new());
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// producer.push(7).unwrap();
/// producer.close();
/// assert_eq!(consumer.wait(|e, _, _| assert_eq!(*e, 7)), Ok(1));
/// assert_eq!(consumer.wait(|_, _, _| ()), Err(ConsumeError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeError {
    /// The ring is closed and this consumer has handled every event.
    Closed,
    /// The ring was halted.
    Halted,
    /// The wait strategy gave up first.
    Timeout,
}

impl fmt::Display for ConsumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "the ring is closed and drained",
            Self::Halted => "the ring was halted",
            Self::Timeout => "timed out waiting for an event",
        })
    }
}

impl core::error::Error for ConsumeError {}

/// A wait strategy gave up before its condition came true.
///
/// ```
/// use std::time::{Duration, Instant};
/// use latchfree::ring::{Parking, TimedOut, TimedWait};
///
/// let deadline = Instant::now() + Duration::from_millis(1);
/// assert_eq!(Parking::new().wait_until_deadline(|| false, deadline), Err(TimedOut));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wait timed out")
    }
}

impl core::error::Error for TimedOut {}
