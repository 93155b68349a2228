//! Addressable priority queue and delay queue over an index-linked arena.
//!
//! - [`PriorityQueue`]: an indexed 4-ary min-heap; push returns a
//!   [`Handle`], and pop, peek, change-priority and remove-by-handle are
//!   O(log n) or better, FIFO among equal priorities.
//! - [`DelayQueue`]: items released in exact deadline order, keyed by
//!   generation-checked [`DelayKey`]s.
//! - [`arena`]: the slot arena these and [`crate::wheel`] build on: index
//!   links, generation-checked keys, fixed (no allocator, `const`) or
//!   growable storage.
//! - `std_blocking` (with `std`): a blocking delay queue for threads:
//!   `offer` never waits, `take` waits for the head's deadline and wakes
//!   early for an earlier item, `close` wakes everyone.
//!
//! Both are single-owner structures; see `crate::wheel::shared` for handing
//! work in from other threads.

pub mod arena;
mod delay;
mod heap;
#[cfg(any(feature = "std", latchfree_loom))]
pub mod std_blocking;

pub use delay::{DelayKey, DelayQueue, Expired};
pub use heap::{Handle, PriorityQueue};
