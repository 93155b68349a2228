//! An asynchronous batcher (`std` only): producers push items, flusher
//! threads hand them to a handler in batches.
//!
//! # Design
//!
//! Items go into a multi-producer [`Ring`](crate::ring::Ring) of take-once
//! slots. With one
//! flusher the ring's only consumer is a plain [`Consumer`](crate::ring::Consumer) (batches keep
//! push order); with `N` flushers it is a work group (each item in exactly
//! one batch, order across batches not kept). A flusher moves items out of
//! their slots into its batch `Vec` (reused from batch to batch), and ships
//! the batch to the handler when it holds `max_items`, when the next item
//! would take it past `max_bytes`, when `max_delay` has passed since its
//! first item (zero: as soon as nothing more is waiting: natural batching),
//! on [`Batcher::flush`] and on close. The handler never sees an empty
//! batch.
//!
//! A batch the handler rejects (`Err`) or panics on goes to the error
//! callback with its items. No item is dropped silently: every accepted item
//! reaches the handler (and, if it failed, the error callback), except one
//! the weigher panicked on, which goes to the error callback alone.
//!
//! # Panics in user code
//!
//! Any user code the flushers run may panic: the handler, the error
//! callback, the weigher, an item's `Drop` (when a shipped batch is
//! cleared), a panic payload's `Drop`, and the handler's own `Drop` when
//! the flusher exits. Every such call is made where its panic is caught: the
//! flusher carries on, every accepted item is handed to the handler or
//! reported to the error callback exactly once, `flush` and `close` return,
//! and later pushes are delivered. A panic in the handler or the weigher
//! reaches the error callback ([`BatchError::Panicked`],
//! [`BatchError::Unweighed`]); one in the error callback or in a `Drop` has
//! nowhere to go and is discarded.
//!
//! # Waking, flush and close
//!
//! The hand-off between producers, [`Batcher::flush`], [`Batcher::close`]
//! and the flushers (a flush target and epoch with acknowledgements) lives
//! in the private `handoff` module, together with the flusher loop, so the
//! loom models in `loom-tests/tests/batch.rs` check that very code. Idle
//! flushers sleep on the adapters' one doorbell (`threaded::doorbell`, the
//! pool's too), which producers ring after publishing; `flush` reads the
//! queue's claim position as its target and bumps an epoch, and each
//! flusher drains until the target is reached, ships and acknowledges. A
//! flush never waits for a push: producers blocked on a full queue have
//! claimed nothing, and the flushers keep draining.
//!
//! # Layout
//!
//! `builder` (configuration, starting the flushers), `flusher` (one
//! flusher's batch and user calls), `handoff` (the flusher loop, flush and
//! sleep), `error`, `metrics`, and [`TaskQueue`] (`task`): values to a
//! per-value handler, a batcher configured for it. The queue, its lanes and
//! the take-once slot are the adapters' shared ones (`threaded::lane`,
//! `threaded::slot`).

mod builder;
mod error;
mod flusher;
// The flush/close/sleep hand-off; public through `crate::__loom`, for the
// models (`loom-tests/tests/batch.rs`), in every build.
#[allow(rustdoc::private_intra_doc_links)]
pub(crate) mod handoff;
mod metrics;
mod task;

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

pub use self::builder::{Builder, MAX_FLUSHERS};
pub use self::error::{BatchError, BuildError, Closed, TryPushError};
pub use self::handoff::FlushCause;
pub use self::metrics::Metrics;
pub use self::task::{TaskError, TaskMetrics, TaskQueue, TaskQueueBuilder};
pub use crate::threaded::unwind::Payload;

use self::handoff::Handoff;
use self::metrics::Counters;
use crate::sync::blocking::Mutex;
use crate::sync::{thread, Arc, Ordering};
use crate::threaded::lane::{Lanes, Producer, Queue};

/// The asynchronous batcher. See the [module docs](self).
///
/// Dropping it is [`close`](Self::close): everything accepted is handed to
/// the handler first.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use latchfree::batch::Batcher;
///
/// let written = Arc::new(AtomicUsize::new(0));
/// let w = written.clone();
/// let b = Batcher::builder::<()>().max_items(64).build(move |batch: &mut Vec<u64>| {
///     w.fetch_add(batch.len(), Ordering::Relaxed);
///     Ok(())
/// }).unwrap();
/// for i in 0..1000 {
///     b.push(i).unwrap();
/// }
/// b.close(); // everything accepted reaches the handler first
/// assert_eq!(written.load(Ordering::Relaxed), 1000);
/// ```
pub struct Batcher<T> {
    shared: Arc<Shared<T>>,
    joins: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// What the batcher's handle and its flushers share.
struct Shared<T> {
    ring: Arc<Queue<T>>,
    /// Producer lanes; their counters count every push (refused ones too,
    /// which `counters.rejected` counts apart).
    producers: Lanes<Producer<T>>,
    handoff: Handoff,
    counters: Counters,
}

impl<T> fmt::Debug for Batcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("handoff", &self.shared.handoff)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts configuring a batcher.
    pub fn builder<E: 'static>() -> Builder<T, E> {
        Builder::new()
    }

    /// Counts and publishes `item` (see [`Lanes::push`]); wakes a flusher.
    #[inline]
    fn publish(&self, item: T, wait: Option<Duration>) -> Result<(), TryPushError<T>> {
        let s = &self.shared;
        match s.producers.push(item, wait) {
            Ok(_) => {
                s.handoff.pushed();
                Ok(())
            }
            Err(e) => {
                // Relaxed: metrics only.
                s.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Adds `item`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`Closed`] with the item once the batcher is closed (including while
    /// waiting).
    pub fn push(&self, item: T) -> Result<(), Closed<T>> {
        // Only a close refuses a push that may wait.
        self.publish(item, None).map_err(|e| Closed(e.into_inner()))
    }

    /// Adds `item` if there is room now.
    ///
    /// # Errors
    ///
    /// `Full(item)` or `Closed(item)`.
    pub fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        self.publish(item, Some(Duration::ZERO))
    }

    /// Adds `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// `Full(item)` after the wait, or `Closed(item)`.
    pub fn push_timeout(&self, item: T, timeout: Duration) -> Result<(), TryPushError<T>> {
        self.publish(item, Some(timeout))
    }

    /// Returns once every item accepted before this call has been handed to
    /// the handler (its batch returned). See the module docs.
    pub fn flush(&self) {
        // Every push that returned before this call claimed a sequence
        // below the queue's claim position now.
        let target = self.shared.producers.with(|l| l.producer.sequence());
        self.shared.handoff.flush(target);
    }

    /// Stops accepting (waiting pushers get `Closed`), hands everything
    /// accepted to the handler, and joins the flushers. Idempotent.
    pub fn close(&self) {
        self.shared.close();
        let joins = core::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()));
        for j in joins {
            let _ = j.join();
        }
    }

    /// Whether the batcher stopped accepting.
    pub fn is_closed(&self) -> bool {
        self.shared.ring.is_closed()
    }

    /// The batcher's counters now.
    pub fn metrics(&self) -> Metrics {
        let s = &self.shared;
        s.counters.snapshot(s.producers.counted())
    }
}

impl<T> Shared<T> {
    /// Closes the queue and wakes every flusher to drain it.
    fn close(&self) {
        self.ring.close();
        self.handoff.wake_all();
    }
}

impl<T> Drop for Batcher<T> {
    fn drop(&mut self) {
        self.shared.close();
        let joins = core::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()));
        for j in joins {
            let _ = j.join();
        }
    }
}

#[cfg(test)]
mod tests;
