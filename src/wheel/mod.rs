//! Hierarchical timing wheel: O(1) timers driven by the caller's clock.
//!
//! [`Wheel`] is a hierarchical wheel of levels of 64 slots with one `u64`
//! occupancy bitmap per level (the tokio runtime's layout, Varghese &
//! Lauck's scheme). Time is whatever the caller says it is: the wheel only
//! moves when [`Wheel::advance_to`] is called with a `u64` time, so tests are
//! deterministic and the core never reads a clock. Timers are intrusive:
//! their links live in the timer's own arena slot, so no timer allocates,
//! and keys are generation-checked, so a stale key is refused instead of
//! touching a reused slot.
//!
//! ```
//! use latchfree::queue::arena::Fixed;
//! use latchfree::wheel::{Wheel, WheelConfig};
//!
//! // 16 timers inline, no allocator.
//! let mut wheel: Wheel<&str, Fixed<16>> = Wheel::new_fixed(WheelConfig::new());
//! let a = wheel.insert(10, "a").unwrap();
//! let b = wheel.insert(5_000, "b").unwrap();
//! assert_eq!(wheel.cancel(b), Some("b"));
//! assert_eq!(wheel.cancel(b), None); // stale key: refused, never a panic
//!
//! wheel.advance_to(9);
//! assert!(wheel.pop_expired().is_none()); // never early
//! wheel.advance_to(10);
//! let fired = wheel.pop_expired().unwrap();
//! assert_eq!((fired.key, fired.value), (a, "a"));
//! ```
//!
//! With the `alloc` feature, [`shared`] adds a lock-free multi-producer
//! hand-off so any thread can schedule, cancel and reset timers while one
//! owner thread drives the wheel; with `std`, `std_service` runs a timer
//! thread on the monotonic clock.

mod levels;
// Public through `crate::__loom`, for the models.
#[cfg(any(feature = "std", latchfree_loom))]
pub(crate) mod periodic;
#[cfg(feature = "alloc")]
pub mod shared;
#[cfg(all(feature = "std", not(latchfree_loom)))]
pub mod std_service;

pub use levels::{DrainExpired, Expired, Wheel, WheelConfig, MAX_LEVELS};

use crate::queue::arena::RawKey;

/// Bytes one timer with payload `T` occupies in a wheel's arena (links,
/// deadline, generation and free-list link included); the per-level slot
/// tables (264 bytes per level) are fixed and not counted.
pub const fn bytes_per_timer<T>() -> usize {
    core::mem::size_of::<crate::queue::arena::Slot<levels::Link, T>>()
}

/// Names one timer in a [`Wheel`]. Generation-checked: once the timer has
/// fired or been cancelled the key is stale and every operation with it
/// answers `None` / `false`.
///
/// ```
/// use latchfree::queue::arena::Fixed;
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let mut wheel: Wheel<&str, Fixed<1>> = Wheel::new_fixed(WheelConfig::new());
/// let old = wheel.insert(10, "first").unwrap();
/// assert_eq!(wheel.cancel(old), Some("first"));
/// let new = wheel.insert(10, "second").unwrap(); // reuses the only slot
/// assert_eq!(old.raw().index, new.raw().index);
/// assert_ne!(old, new); // but the generation differs:
/// assert_eq!(wheel.get(old), None); // the stale key cannot reach it
/// assert_eq!(wheel.get(new), Some(&"second"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerKey(pub(crate) RawKey);

impl TimerKey {
    /// The raw slot index and generation.
    pub fn raw(self) -> RawKey {
        self.0
    }
}

#[cfg(test)]
mod tests;
