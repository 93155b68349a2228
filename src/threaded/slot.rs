//! The take-once slot: what the pool's and the batcher's queues hold.
//!
//! Both queues are a multi-producer [`Ring`](crate::ring::Ring) whose only
//! consumer node is one consumer or one work group, so every published
//! sequence is handed to exactly one poller. The producer that claimed a
//! slot writes `Some(item)` into it; the one poller handed its sequence
//! moves the item out inside that poll, leaving `None`. The slot is then
//! free for the ring to reuse, whatever the item does next (a job may run
//! for a long time; the queue capacity stays the ring's).
//!
//! Ground rules:
//!
//! - Before its publish a slot is touched only by the producer that claimed
//!   it; after, only by the one poller handed its sequence, and only inside
//!   that poll. The ring orders the two (the publish stamp's Release, the
//!   poller's Acquire) and keeps the next producer out until the poller has
//!   passed the slot (its gate).
//! - A slot the ring refused (`Full`, `Closed`, ...) was never published
//!   and comes back to its producer whole: [`Slot::into_item`].

use crate::sync::UnsafeCell;

/// See the [module docs](self).
pub(crate) struct Slot<T>(UnsafeCell<Option<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(UnsafeCell::new(None))
    }
}

// SAFETY: by the ground rules a slot is accessed by one thread at a time
// (its producer, then its one poller, ordered by the ring's publish), so
// sharing the ring between threads only ever moves the item from one thread
// to another: `T: Send` is all that needs.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// A full slot, for a producer to publish.
    pub(crate) fn new(item: T) -> Self {
        Slot(UnsafeCell::new(Some(item)))
    }

    /// Puts `item` into a slot this producer claimed (dropping what a
    /// slot might still hold; a taken one holds nothing).
    pub(crate) fn put(&mut self, item: T) {
        self.0.with_mut(|p| {
            // SAFETY: `&mut self`: the claiming producer's exclusive use.
            unsafe { *p = Some(item) }
        });
    }

    /// Moves the item out (`None` if the ring skipped the slot: its
    /// producer panicked before writing it).
    ///
    /// # Safety
    ///
    /// The caller is the poller the ring handed this slot's sequence to,
    /// inside that poll.
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: by the caller's contract nobody else touches the slot
        // during this call (ground rules).
        self.0.with_mut(|p| unsafe { (*p).take() })
    }

    /// The item of a slot the ring refused (never published).
    pub(crate) fn into_item(self) -> T {
        self.0
            .into_inner()
            .expect("a slot handed back unpublished holds its item")
    }
}
