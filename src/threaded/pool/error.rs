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
