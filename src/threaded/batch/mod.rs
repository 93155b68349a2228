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
mod stream;
// The streamed batcher's wake protocol; public through `crate::__loom`,
// for the models, in every build.
#[allow(rustdoc::private_intra_doc_links)]
pub(crate) mod tap;
mod task;

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

pub use self::builder::{Builder, MAX_FLUSHERS};
pub use self::error::{BatchError, BuildError, Closed, TryPushError};
pub use self::handoff::FlushCause;
pub use self::metrics::Metrics;
pub use self::stream::BatchStream;
pub use self::task::{TaskError, TaskMetrics, TaskQueue, TaskQueueBuilder};
pub use crate::threaded::unwind::Payload;

use self::handoff::Handoff;
use self::metrics::Counters;
use self::tap::Tap;
use crate::sync::blocking::Mutex;
use crate::sync::{thread, Arc, Ordering};
use crate::threaded::lane::{Lanes, Producer, Queue};
use crate::threaded::room::Room;

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
    /// The flushers' hand-off (no flusher with a stream: every flush is
    /// answered there at once).
    handoff: Handoff,
    /// With [`Builder::build_stream`]: the stream's wake protocol.
    tap: Option<Tap>,
    counters: Counters,
    /// Async pushers waiting for room (`push_async`).
    room: Room,
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
                s.pushed();
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
        let s = &self.shared;
        let target = s.producers.with(|l| l.producer.sequence());
        match &s.tap {
            Some(tap) => tap.flush(target),
            None => s.handoff.flush(target),
        }
    }

    /// Stops accepting (waiting pushers get `Closed`), hands everything
    /// accepted to the handler, and joins the flushers. Idempotent.
    ///
    /// With a [`BatchStream`] ([`Builder::build_stream`]) it only stops
    /// accepting: the stream yields what was accepted, then ends; it may
    /// run on this very thread, so `close` does not wait for it
    /// ([`close_async`](Self::close_async) does).
    pub fn close(&self) {
        self.shared.close();
        let joins = core::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()));
        for j in joins {
            let _ = j.join();
        }
    }

    /// [`push`](Self::push) as a future: adds `item`, or, while the queue
    /// is full, registers the task's waker and completes once a flusher
    /// has made room (backpressure without holding a thread). Runtime-
    /// agnostic: the flusher that frees slots wakes the task.
    ///
    /// Dropping the future before it completes adds nothing and drops
    /// `item`: the item is in the queue only once a poll returned `Ready(Ok)`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use latchfree::batch::Batcher;
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let s = seen.clone();
    /// let b = Batcher::builder::<()>().queue_capacity(4).max_items(16).build(move |batch: &mut Vec<u32>| {
    ///     s.fetch_add(batch.len(), Ordering::Relaxed);
    ///     Ok(())
    /// }).unwrap();
    /// pollster::block_on(async {
    ///     for i in 0..100 {
    ///         b.push_async(i).await.unwrap(); // waits for room at 4 queued
    ///     }
    ///     b.flush_async().await;
    /// });
    /// assert_eq!(seen.load(Ordering::Relaxed), 100);
    /// pollster::block_on(b.close_async());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Closed`] with the item once the batcher is closed (including
    /// while waiting).
    pub fn push_async(&self, item: T) -> impl Future<Output = Result<(), Closed<T>>> + '_ {
        PushAsync {
            batcher: self,
            item: Some(item),
            counted: false,
            id: None,
        }
    }

    /// [`flush`](Self::flush) as a future: completes once every item
    /// accepted before its first poll has been handed to the handler. The
    /// flushers acknowledge to the awaiting task's waker; no thread waits.
    /// Dropping it early abandons only the wait (the flush still happens).
    /// With a [`BatchStream`], "handed to the handler" is "yielded by the
    /// stream" (or reported, the stream dropped).
    pub fn flush_async(&self) -> impl Future<Output = ()> + '_ {
        let (mut epoch, mut asked, mut id) = (None, None, None);
        core::future::poll_fn(move |cx: &mut Context<'_>| {
            let s = &self.shared;
            if let Some(tap) = &s.tap {
                let target = *asked.get_or_insert_with(|| {
                    let target = s.producers.with(|l| l.producer.sequence());
                    tap.start_flush(target);
                    target
                });
                return if tap.poll_answered(target, &mut id, cx.waker()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            }
            let e = *epoch.get_or_insert_with(|| {
                let target = s.producers.with(|l| l.producer.sequence());
                s.handoff.start_flush(target)
            });
            if s.handoff.poll_answered(Some(e), cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// [`close`](Self::close) as a future: stops accepting at its first
    /// poll (waiting pushers get `Closed`) and completes once every
    /// accepted item has been handed to the handler and every flusher has
    /// finished. The flusher threads are joined by a later `close` or the
    /// drop (by then they are exiting). With a [`BatchStream`] it completes
    /// once the stream ended (yielded everything) or was dropped.
    pub fn close_async(&self) -> impl Future<Output = ()> + '_ {
        let mut closed = false;
        let mut id = None;
        core::future::poll_fn(move |cx: &mut Context<'_>| {
            let s = &self.shared;
            if !core::mem::replace(&mut closed, true) {
                s.close();
            }
            if let Some(tap) = &s.tap {
                return if tap.poll_answered(u64::MAX, &mut id, cx.waker()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            }
            if s.handoff.poll_answered(None, cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
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
    /// An item was published: wakes whoever drains the queue.
    #[inline]
    fn pushed(&self) {
        match &self.tap {
            Some(tap) => tap.pushed(),
            None => self.handoff.pushed(),
        }
    }

    /// Closes the queue and wakes every flusher (or the stream) to drain it.
    fn close(&self) {
        self.ring.close();
        self.handoff.wake_all();
        if let Some(tap) = &self.tap {
            tap.pushed();
        }
        // A close is "room" too: waiting async pushers see it and give up.
        self.room.notify();
    }
}

/// The future of [`Batcher::push_async`].
struct PushAsync<'a, T> {
    batcher: &'a Batcher<T>,
    /// `None` once pushed or refused.
    item: Option<T>,
    /// The first try counted the submission (in the lane) already.
    counted: bool,
    /// The waiter id in the batcher's [`Room`], once registered.
    id: Option<u64>,
}

// Nothing is pinned: the item is only moved, never borrowed across polls.
impl<T> Unpin for PushAsync<'_, T> {}

impl<T: Send + 'static> Future for PushAsync<'_, T> {
    type Output = Result<(), Closed<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let s = &this.batcher.shared;
        let mut armed = false;
        loop {
            let item = this.item.take().expect("`push_async` polled after completion");
            let r = if core::mem::replace(&mut this.counted, true) {
                s.producers.try_again(item)
            } else {
                s.producers.push(item, Some(Duration::ZERO)).map(|_| 0)
            };
            match r {
                Ok(_) => {
                    s.room.forget(&mut this.id);
                    s.pushed();
                    return Poll::Ready(Ok(()));
                }
                Err(TryPushError::Closed(v)) => {
                    s.room.forget(&mut this.id);
                    // Relaxed: metrics only.
                    s.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Err(Closed(v)));
                }
                Err(TryPushError::Full(v)) => {
                    this.item = Some(v);
                    if armed {
                        return Poll::Pending;
                    }
                    // Register, then try once more (`threaded::room`).
                    s.room.register(&mut this.id, cx.waker());
                    armed = true;
                }
            }
        }
    }
}

impl<T> Drop for PushAsync<'_, T> {
    fn drop(&mut self) {
        self.batcher.shared.room.forget(&mut self.id);
        if self.counted && self.item.is_some() {
            // Counted as a submission but never accepted: a refusal.
            // Relaxed: metrics only.
            self.batcher
                .shared
                .counters
                .rejected
                .fetch_add(1, Ordering::Relaxed);
        }
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
