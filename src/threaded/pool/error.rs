//! The pool's errors. A refused job comes back through the crate's shared
//! [`Closed`] and [`TryPushError`].

use core::fmt;

pub use crate::error::{Closed, TryPushError};

/// [`ThreadPool::wait_idle`](super::ThreadPool::wait_idle) was called from one of the pool's own threads,
/// where it could never return.
///
/// ```
/// use std::sync::Arc;
/// use latchfree::pool::{ThreadPool, WaitIdleError};
///
/// let pool = Arc::new(ThreadPool::new(1));
/// let p = pool.clone();
/// let h = pool.spawn(move || p.wait_idle()).unwrap();
/// assert_eq!(h.join().unwrap(), Err(WaitIdleError));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitIdleError;

impl fmt::Display for WaitIdleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wait_idle called from a worker of the same pool")
    }
}

impl core::error::Error for WaitIdleError {}

/// Why [`Builder::build`](super::Builder::build) refused a configuration.
/// Nothing is left running.
///
/// ```
/// use latchfree::pool::{BuildError, ThreadPool};
///
/// let e = ThreadPool::builder().min_workers(4).max_workers(2).build().unwrap_err();
/// assert_eq!(e, BuildError::MinWorkers { min: 4, max: 2 });
/// assert!(ThreadPool::builder().max_workers(0).build().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_workers` is 0 or above [`MAX_WORKERS`](super::MAX_WORKERS).
    MaxWorkers(usize),
    /// `min_workers` is above `max_workers`.
    MinWorkers {
        /// The `min_workers` asked for.
        min: usize,
        /// The `max_workers` asked for.
        max: usize,
    },
    /// The queue capacity is 0 or too large for a ring.
    Capacity(usize),
    /// A worker thread could not be started.
    Spawn,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxWorkers(n) => write!(
                f,
                "max_workers is {n}, must be in 1..={}",
                super::MAX_WORKERS
            ),
            Self::MinWorkers { min, max } => {
                write!(f, "min_workers ({min}) is above max_workers ({max})")
            }
            Self::Capacity(n) => write!(f, "queue capacity {n} is zero or too large"),
            Self::Spawn => f.write_str("a worker thread could not be started"),
        }
    }
}

impl core::error::Error for BuildError {}
