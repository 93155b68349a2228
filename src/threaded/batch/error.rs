//! The batcher's errors. A refused push gives its item back through the
//! crate's shared [`Closed`] and [`TryPushError`].

use core::fmt;

pub use crate::error::{Closed, TryPushError};
use crate::threaded::unwind::Payload;

/// Why a batch reached the error callback.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use latchfree::batch::{BatchError, Batcher};
///
/// let failed = Arc::new(Mutex::new(Vec::new()));
/// let f = failed.clone();
/// let b = Batcher::builder()
///     .max_items(2)
///     .on_error(move |e: BatchError<&str>, items: &mut Vec<u32>| {
///         if let BatchError::Failed(why) = e {
///             f.lock().unwrap().push((why, items.clone()));
///         }
///     })
///     .build(|_: &mut Vec<u32>| Err("disk full"))
///     .unwrap();
/// b.push(1).unwrap();
/// b.push(2).unwrap();
/// b.close();
/// assert_eq!(*failed.lock().unwrap(), [("disk full", vec![1, 2])]);
/// ```
pub enum BatchError<E> {
    /// The handler returned this error.
    Failed(E),
    /// The handler panicked with this payload.
    Panicked(Payload),
    /// The weigher panicked with this payload on the one item in the
    /// batch; the handler never saw that item.
    Unweighed(Payload),
}

impl<E: fmt::Debug> fmt::Debug for BatchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            Self::Panicked(_) => f.write_str("Panicked(..)"),
            Self::Unweighed(_) => f.write_str("Unweighed(..)"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for BatchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => write!(f, "the handler failed: {e}"),
            Self::Panicked(_) => f.write_str("the handler panicked"),
            Self::Unweighed(_) => f.write_str("the weigher panicked on an item"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for BatchError<E> {}

/// Why [`Builder::build`](super::Builder::build) (or
/// [`TaskQueueBuilder::build`](super::TaskQueueBuilder::build)) failed.
/// Nothing is left running.
///
/// ```
/// use latchfree::batch::{Batcher, BuildError};
///
/// let r = Batcher::builder::<()>()
///     .queue_capacity(usize::MAX)
///     .build(|_: &mut Vec<u8>| Ok(()));
/// assert_eq!(r.unwrap_err(), BuildError::Capacity(usize::MAX));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The queue capacity is too large for a ring.
    Capacity(usize),
    /// A flusher thread could not be started.
    Spawn,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capacity(n) => write!(f, "queue capacity {n} is too large"),
            Self::Spawn => f.write_str("a flusher thread could not be started"),
        }
    }
}

impl core::error::Error for BuildError {}
