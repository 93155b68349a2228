//! The error types every structure shares: [`Closed`] (the one "it stopped
//! accepting" error, carrying the refused item back) and [`TryPushError`]
//! (a non-waiting or time-limited add that found the structure full or
//! closed).
//!
//! Both follow the crate's error rule: the caller's item comes back
//! (`into_inner`), `Debug` does not require `T: Debug`, and `Display` says
//! what happened without naming the structure (the caller knows which one
//! it called).

use core::fmt;

/// The structure no longer accepts items (it was closed, shut down, or the
/// thread serving it is gone); the item comes back.
///
/// ```
/// use latchfree::error::Closed;
///
/// let e = Closed("late");
/// assert_eq!(e.to_string(), "closed");
/// assert_eq!(e.into_inner(), "late");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Closed<T>(pub T);

impl<T> Closed<T> {
    /// The item that was not accepted.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closed")
    }
}

impl<T> core::error::Error for Closed<T> {}

/// Why a `try_push` (never waits) or a `push_timeout` (waits at most its
/// timeout) did not add the item; the item comes back.
///
/// ```
/// use latchfree::error::{Closed, TryPushError};
///
/// let e: TryPushError<u32> = Closed(7).into();
/// assert!(!e.is_full());
/// assert_eq!(e.to_string(), "closed");
/// assert_eq!(e.into_inner(), 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPushError<T> {
    /// No room (now, or within the timeout).
    Full(T),
    /// The structure no longer accepts items.
    Closed(T),
}

impl<T> TryPushError<T> {
    /// The item that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Closed(t) => t,
        }
    }

    /// Whether there was no room (as opposed to closed).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the structure no longer accepts items.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }

    /// The same error around another item (e.g. the closure a job wrapped).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> TryPushError<U> {
        match self {
            Self::Full(t) => TryPushError::Full(f(t)),
            Self::Closed(t) => TryPushError::Closed(f(t)),
        }
    }
}

impl<T> From<Closed<T>> for TryPushError<T> {
    fn from(c: Closed<T>) -> Self {
        Self::Closed(c.0)
    }
}

impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("full"),
            Self::Closed(_) => f.write_str("closed"),
        }
    }
}

impl<T> core::error::Error for TryPushError<T> {}
