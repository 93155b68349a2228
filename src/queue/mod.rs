//! Addressable priority queue and delay queue over an index-linked arena.
//!
//! - [`PriorityQueue`]: an indexed 4-ary min-heap of items and their
//!   priorities; `push(value, priority)` returns a [`PriorityKey`], and
//!   pop, peek, change-priority and remove-by-key are O(log n) or better,
//!   FIFO among equal priorities.
//! - [`DelayQueue`]: items released in exact deadline order, keyed by
//!   generation-checked [`DelayKey`]s.
//! - Storage: [`Fixed<N>`] (inline, no allocator, `const`, bounded: the
//!   `try_` forms give the item back when full) or [`Growable`] (with
//!   `alloc`, unbounded: `push`/`insert_at` return the key). The same
//!   arena and storages back [`crate::wheel`].
//! - [`BlockingDelayQueue`] (with `std`): a blocking delay queue for
//!   threads: `insert` never waits, `pop` waits for the head's deadline and
//!   wakes early for an earlier item, `close` wakes everyone.
//!
//! The priority and delay queues are single-owner structures; see
//! `crate::wheel::shared` for handing work in from other threads.

mod delay;
mod heap;

#[cfg(feature = "alloc")]
pub use crate::arena::Growable;
pub use crate::arena::{Fixed, RawKey, StorageKind};
pub use delay::{DelayKey, DelayQueue};
pub use heap::{Iter, PriorityKey, PriorityQueue};
cfg_threads! {
    mod std_blocking;
    pub use std_blocking::{BlockingDelayQueue, Closed, PopError};
}

/// An item a [`DelayQueue`] handed out: its key (stale from now on), value
/// and deadline. The same type as [`crate::wheel::Expired`], keyed by
/// [`DelayKey`] here.
pub type Expired<T> = crate::arena::Expired<DelayKey, T>;
