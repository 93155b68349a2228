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
//! Names follow the crate's keyed timed containers (as the delay queue):
//! value first, then when; `insert_at`/`reset_at` take an absolute
//! deadline, `insert`/`reset` a delay from [`Wheel::now`]; `remove`,
//! `peek`, `next_deadline`, `poll_expired`, `pop_expired`,
//! `drain_expired`; bounded (fixed) storage answers through `try_` forms.
//!
//! ```
//! use latchfree::wheel::{Fixed, Wheel, WheelConfig};
//!
//! // 16 timers inline, no allocator.
//! let mut wheel: Wheel<&str, Fixed<16>> = Wheel::new_fixed(WheelConfig::new());
//! let a = wheel.try_insert_at("a", 10).unwrap();
//! let b = wheel.try_insert_at("b", 5_000).unwrap();
//! assert_eq!(wheel.remove(b), Some("b"));
//! assert_eq!(wheel.remove(b), None); // stale key: refused, never a panic
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
//! owner thread drives the wheel; with `std`, [`TimerService`] runs a timer
//! thread on the monotonic clock.

mod levels;
// Public through `crate::__loom`, for the models.
cfg_threads! {
    #[cfg_attr(not(latchfree_loom), allow(unreachable_pub))]
    pub(crate) mod std_periodic;
}
#[cfg(feature = "alloc")]
pub mod shared;
cfg_threads! {
    pub use crate::threaded::timer_service::{
        Executor, Job, MissedTick, ShutDown, Sleep, Timer, TimerService, WorkerThread,
    };
}

#[cfg(feature = "alloc")]
pub use crate::arena::Growable;
pub use crate::arena::{Fixed, RawKey, StorageKind};
pub use levels::{DrainExpired, Wheel, WheelConfig, MAX_LEVELS};

/// The wheel for a small part: `N` timers stored inline and one level of
/// 64 slots, the least RAM a wheel can take (16 timers with `u32`
/// payloads: 832 bytes on Cortex-M, all `.bss` in a `static`, against
/// 2152 for the default six levels).
///
/// One level spans 64 ticks: a timer due within 64 ticks sits in its
/// slot (O(1) in and out, as on any wheel); one due later waits on the
/// level as on a ring and is looked at again once per 64 ticks until it is
/// due (never early), and when nothing nearer is left the wheel jumps
/// straight to the earliest. With a few dozen timers that is a handful of
/// compares per rotation, which is why this is the default worth reaching
/// for on a 4–8 KiB part. Pick the tick with
/// [`WheelConfig::tick_shift`]: with `now` in microseconds and a shift of
/// 10, one tick is ~1 ms and the level spans ~65 ms.
///
/// ```
/// use latchfree::wheel::{SmallWheel, WheelConfig};
///
/// static mut TIMERS: SmallWheel<u32, 16> = SmallWheel::new_fixed(WheelConfig::new());
/// assert!(core::mem::size_of::<SmallWheel<u32, 16>>() <= 1024);
///
/// let mut wheel: SmallWheel<&str, 16> = SmallWheel::new_fixed(WheelConfig::new());
/// wheel.try_insert_at("blink", 10).unwrap();
/// wheel.try_insert_at("watchdog", 5_000).unwrap(); // beyond the 64-tick level
/// wheel.advance_to(4_999);
/// assert_eq!(wheel.pop_expired().map(|e| e.value), Some("blink"));
/// assert!(wheel.pop_expired().is_none()); // never early
/// wheel.advance_to(5_000);
/// assert_eq!(wheel.pop_expired().map(|e| e.value), Some("watchdog"));
/// ```
pub type SmallWheel<T, const N: usize> = Wheel<T, Fixed<N>, 1>;

/// A timer a [`Wheel`] handed back: its key (stale from now on), value and
/// deadline. The same type as [`crate::queue::Expired`], keyed by
/// [`TimerKey`] here.
///
/// ```
/// use latchfree::wheel::{Expired, Fixed, Wheel, WheelConfig};
///
/// let mut wheel: Wheel<u32, Fixed<4>> = Wheel::new_fixed(WheelConfig::new());
/// let key = wheel.try_insert_at(70, 7).unwrap();
/// wheel.advance_to(100);
/// let Expired { key: k, value, deadline } = wheel.pop_expired().unwrap();
/// assert_eq!((k, value, deadline), (key, 70, 7));
/// assert!(!wheel.contains(key)); // the key is stale now
/// ```
pub type Expired<T> = crate::arena::Expired<TimerKey, T>;

/// Bytes one timer with payload `T` occupies in a wheel's arena: its slot
/// (deadline, generation, list bucket or free-list link, payload) and its
/// 8-byte entry in the arena's chain table (list neighbours); the
/// per-level slot tables (264 bytes per level with fixed storage, 2056
/// with growable storage's eight lists per slot) are fixed and not
/// counted.
///
/// ```
/// use latchfree::wheel::bytes_per_timer;
///
/// // What one timer with a `u64` payload costs in a wheel's arena.
/// assert_eq!(bytes_per_timer::<u64>(), 32);
/// ```
pub const fn bytes_per_timer<T>() -> usize {
    core::mem::size_of::<crate::arena::Slot<levels::Link, T>>()
        + core::mem::size_of::<levels::Chain>()
}

/// Names one timer in a [`Wheel`]. Generation-checked: once the timer has
/// fired or been removed the key is stale and every operation with it
/// answers `None` / `false`.
///
/// ```
/// use latchfree::wheel::{Fixed, Wheel, WheelConfig};
///
/// let mut wheel: Wheel<&str, Fixed<1>> = Wheel::new_fixed(WheelConfig::new());
/// let old = wheel.try_insert_at("first", 10).unwrap();
/// assert_eq!(wheel.remove(old), Some("first"));
/// let new = wheel.try_insert_at("second", 10).unwrap(); // reuses the only slot
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
