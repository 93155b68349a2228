//! Batches for async code: [`Builder::build_stream`] makes a batcher whose
//! handler hands each batch to a [`BatchStream`], which async code awaits
//! ([`BatchStream::next_batch`], or `Stream` with the `futures-core`
//! feature) on whatever runtime it runs.
//!
//! The hand-off is a small multi-producer ring with the
//! [`AsyncWait`] strategy: each flusher's handler moves its batch (the
//! `Vec`, not a copy) into a take-once slot and publishes it, waiting
//! while the ring is full, so a slow consumer slows the flushers and,
//! through the batcher's queue, the producers (backpressure end to end);
//! the stream registers its task's waker when the ring is empty. The ring
//! closes when the last flusher exits (its handler dropped), so the stream
//! ends after the batcher's close, once it yielded every batch.
//!
//! Dropping the stream halts the ring: the batches it held are dropped
//! with it, and later batches fail (`BatchError::Failed(Closed(()))`) to
//! the error callback with their items, so nothing is lost silently and
//! no flusher waits forever.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
#[cfg(feature = "futures-core")]
use core::pin::Pin;
use core::task::{Context, Poll as TaskPoll};
use core::time::Duration;

use super::{Batcher, BuildError, Builder};
use super::Closed;
use crate::ring::{AsyncWait, Awaitable, Consumer, Heap, Multi, Parking, Poll, Ring};
use crate::sync::Arc;
use crate::threaded::slot::Slot;

/// The ring batches travel through, flushers to stream.
type Out<T> = Ring<Heap<Slot<Vec<T>>>, Multi, AsyncWait<Parking, 1>>;

impl<T: Send + 'static> Builder<T, Closed<()>> {
    /// Starts the flushers with a handler that hands every batch to the
    /// returned [`BatchStream`] (module docs of `batch::stream`): batches
    /// are consumed by async code instead of a callback. At most
    /// `2 × flushers` batches (rounded up to a power of two) wait for the
    /// stream; beyond that the flushers wait.
    ///
    /// ```
    /// use latchfree::batch::{Batcher, Closed};
    ///
    /// let (batcher, mut batches) = Batcher::builder::<Closed<()>>().max_items(4).build_stream().unwrap();
    /// let consumer = std::thread::spawn(move || {
    ///     pollster::block_on(async {
    ///         let mut total = 0;
    ///         while let Some(batch) = batches.next_batch().await {
    ///             assert!(!batch.is_empty() && batch.len() <= 4);
    ///             total += batch.iter().sum::<u32>();
    ///         }
    ///         total // the stream ends after the close
    ///     })
    /// });
    /// for i in 1..=10 {
    ///     batcher.push(i).unwrap();
    /// }
    /// batcher.close();
    /// assert_eq!(consumer.join().unwrap(), 55);
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`build`](Self::build).
    pub fn build_stream(self) -> Result<(Batcher<T>, BatchStream<T>), BuildError> {
        let slots = (self.flushers * 2).next_power_of_two();
        let out: Arc<Out<T>> = Arc::new(Ring::with_wait(
            Heap::builder(slots)
                .gates(1)
                .build()
                .map_err(|_| BuildError::Capacity(slots))?,
            // Flushers park while the stream lags (woken by its releases,
            // and at most 200 µs apart so a halt is seen promptly).
            AsyncWait::with(Parking::with_max_park(Duration::from_micros(200))),
        ));
        let mut graph = Ring::graph(out.clone()).expect("fresh ring");
        let consumer = graph.consumer(&[]).expect("one gate");
        let mut producer = graph.multi_producer().expect("the graph has its consumer");
        let batcher = self.build(move |batch: &mut Vec<T>| {
            let items = core::mem::take(batch);
            producer
                .push(Slot::new(items))
                .map(|_| ())
                .map_err(|e| {
                    // Halted: the stream is gone. The items go back for
                    // the error callback.
                    *batch = e.into_inner().into_item();
                    Closed(())
                })
        })?;
        Ok((
            batcher,
            BatchStream {
                out,
                consumer,
                ready: VecDeque::new(),
                slot: None,
            },
        ))
    }
}

/// The batches of a batcher made by [`Builder::build_stream`], for async
/// code: [`next_batch`](Self::next_batch), or `Stream` with the
/// `futures-core` feature. Ends (`None`) once the batcher is closed and
/// every batch was yielded. Dropping it: module docs of `batch::stream`.
pub struct BatchStream<T> {
    out: Arc<Out<T>>,
    consumer: Consumer<Arc<Out<T>>>,
    /// Batches taken from the ring, not yet yielded.
    ready: VecDeque<Vec<T>>,
    /// The waker cell this stream holds while it waits.
    slot: Option<usize>,
}

impl<T> BatchStream<T> {
    /// The next batch, once a flusher ships one; `None` once the batcher
    /// is closed and drained. Dropping the future loses nothing: a batch
    /// is taken only by the poll that returns it (or kept in the stream).
    pub fn next_batch(&mut self) -> impl Future<Output = Option<Vec<T>>> + '_ {
        core::future::poll_fn(move |cx| self.poll_batch(cx))
    }

    /// Moves every published batch into `ready`; the ring's state if none.
    fn take(&mut self) -> Poll {
        let ready = &mut self.ready;
        self.consumer.poll(|slot, _, _| {
            // SAFETY: this stream's consumer is the ring's only one, and
            // we are inside the poll that handed it this sequence (the
            // take-once slot's contract).
            if let Some(batch) = unsafe { slot.take() } {
                ready.push_back(batch);
            }
        })
    }

    /// One step: a ready batch, the end, or `Pending` with the waker
    /// registered (register, then re-check: `ring::AsyncWait`).
    fn poll_batch(&mut self, cx: &mut Context<'_>) -> TaskPoll<Option<Vec<T>>> {
        let mut armed = false;
        loop {
            if let Some(b) = self.ready.pop_front() {
                self.consumer.disarm(&mut self.slot);
                return TaskPoll::Ready(Some(b));
            }
            match self.take() {
                // Skipped slots only (a flusher's publish cut short): look
                // again.
                Poll::Processed(_) => continue,
                Poll::Closed | Poll::Halted => {
                    self.consumer.disarm(&mut self.slot);
                    return TaskPoll::Ready(None);
                }
                Poll::Idle | Poll::Unfinished | Poll::Gated => {}
            }
            if armed {
                return TaskPoll::Pending;
            }
            self.consumer.arm(&mut self.slot, cx.waker());
            armed = true;
        }
    }
}

impl<T> Drop for BatchStream<T> {
    fn drop(&mut self) {
        self.consumer.disarm(&mut self.slot);
        // Nobody will take batches any more: flushers waiting to hand one
        // over get `Halted` and report it (module docs).
        self.out.halt();
    }
}

// Nothing is pinned: the consumer and the queue of batches are only used
// through `&mut`.
impl<T> Unpin for BatchStream<T> {}

#[cfg(feature = "futures-core")]
impl<T> futures_core::Stream for BatchStream<T> {
    type Item = Vec<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Option<Vec<T>>> {
        self.get_mut().poll_batch(cx)
    }
}

impl<T> fmt::Debug for BatchStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchStream")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}
