//! [`EventSink`]: a ring producer as the `futures` ecosystem's `Sink`
//! (feature `futures-sink`), so `SinkExt` combinators work on a ring with
//! the [`AsyncWait`](super::AsyncWait) strategy. Like `EventStream`, it
//! waits as the handle's `_async` futures do and adds no atomic protocol.
//!
//! # Sink: a one-item buffer, pushed in `poll_ready`
//!
//! `Sink::start_send` cannot wait, and on a multi-producer ring a slot
//! seen free in `poll_ready` can be taken by another producer before
//! `start_send`. So [`EventSink`] does not reserve a slot: `start_send`
//! keeps the item, and the next `poll_ready`, `poll_flush` or `poll_close`
//! pushes it, waiting while the ring is full. This is the contract every
//! `Sink` has (an item is sent once a later `poll_ready` or `poll_flush`
//! returns `Ready(Ok)`), and it claims no slot before the item is written,
//! so a dropped sink never leaves a claimed, unpublished slot behind.
//! `poll_close` pushes the kept item and then drops the producer handle:
//! the ring closes once its last producer is gone.

use core::fmt;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll as TaskPoll};

use super::async_wait::{AsyncWait, Awaitable};
use super::error::PublishError;
use super::producer::{MultiProducer, Producer};
use super::shared::{Multi, Ring, Single};
use super::storage::Storage;
use super::wait::WaitStrategy;

/// A producer handle an [`EventSink`] can wrap: a [`Producer`] or a
/// [`MultiProducer`] on an [`AsyncWait`] ring. Sealed.
pub trait SinkTarget: Awaitable {
    /// The event type sent.
    type Item;
    /// `try_push`.
    #[doc(hidden)]
    fn try_send(&mut self, value: Self::Item) -> Result<u64, PublishError<Self::Item>>;
}

impl<R, S, W, const N: usize> SinkTarget for Producer<R>
where
    R: Deref<Target = Ring<S, Single, AsyncWait<W, N>>>,
    S: Storage,
    W: WaitStrategy,
{
    type Item = S::Item;

    fn try_send(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        self.try_push(value)
    }
}

impl<R, S, W, const N: usize> SinkTarget for MultiProducer<R>
where
    R: Deref<Target = Ring<S, Multi, AsyncWait<W, N>>>,
    S: Storage,
    W: WaitStrategy,
{
    type Item = S::Item;

    fn try_send(&mut self, value: S::Item) -> Result<u64, PublishError<S::Item>> {
        self.try_push(value)
    }
}

/// A [`Producer`] or [`MultiProducer`] on an [`AsyncWait`] ring as a
/// `Sink` (feature `futures-sink`). It keeps one item from `start_send`
/// and pushes it in the next `poll_ready`/`poll_flush`/`poll_close`,
/// waiting while the ring is full; `poll_close` then drops the producer,
/// so the ring closes once its last producer is gone. Errors hand the
/// unsent item back. Module docs: `stream`.
///
/// ```
/// use futures_util::{stream, SinkExt, StreamExt};
/// use latchfree::ring::{AsyncWait, EventSink, EventStream, Heap, Ring, BusySpin};
///
/// let ring: Ring<Heap<u32>, _, AsyncWait<BusySpin>> =
///     Ring::with_wait(Heap::with_capacity(2).unwrap(), AsyncWait::with(BusySpin));
/// let mut graph = Ring::graph(&ring).unwrap();
/// let consumer = graph.consumer(&[]).unwrap();
/// let producer = graph.single_producer().unwrap();
/// let got: Vec<u32> = pollster::block_on(async {
///     let send = async {
///         let mut sink = EventSink::new(producer);
///         sink.send_all(&mut stream::iter((0..10).map(Ok))).await.unwrap();
///         sink.close().await.unwrap(); // the last producer: the ring closes
///     };
///     let recv = EventStream::new(consumer).collect::<Vec<_>>();
///     let ((), got) = futures_util::future::join(send, recv).await;
///     got
/// });
/// assert_eq!(got, (0..10).collect::<Vec<_>>());
/// ```
#[must_use = "sinks do nothing unless polled"]
pub struct EventSink<P: SinkTarget> {
    /// `None` once closed.
    handle: Option<P>,
    /// The item from `start_send` not yet pushed.
    pending: Option<P::Item>,
    /// The waker cell this sink holds while it waits.
    slot: Option<usize>,
}

impl<P: SinkTarget> EventSink<P> {
    /// Wraps `producer`.
    pub fn new(mut producer: P) -> Self {
        // The cell the producer kept from its own awaits, if any: the sink
        // holds it now (one cell per handle, wrapped or not).
        let slot = producer.spin_budget().take_home();
        Self {
            handle: Some(producer),
            pending: None,
            slot,
        }
    }

    /// Whether an item given to `start_send` is still waiting for space.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The producer and the item not yet pushed, if any; `None` for the
    /// producer once the sink was closed.
    pub fn into_inner(mut self) -> (Option<P>, Option<P::Item>) {
        if let Some(h) = &self.handle {
            h.disarm(&mut self.slot);
        }
        (self.handle.take(), self.pending.take())
    }

    /// Keeps `item` for the next push (`Sink::start_send`).
    fn keep(&mut self, item: P::Item) -> Result<(), PublishError<P::Item>> {
        if self.handle.is_none() {
            return Err(PublishError::Closed(item));
        }
        if let Some(old) = self.pending.replace(item) {
            // Misuse (no `poll_ready` between two sends): refuse the new
            // item rather than drop the old one.
            let new = self.pending.replace(old).expect("just stored");
            return Err(PublishError::Full(new));
        }
        Ok(())
    }

    /// Pushes the kept item, if any: `Ready(Ok)` once there is none left.
    fn push_pending(
        &mut self,
        cx: &mut Context<'_>,
    ) -> TaskPoll<Result<(), PublishError<P::Item>>> {
        let Some(handle) = self.handle.as_mut() else {
            return TaskPoll::Ready(Ok(()));
        };
        // Polled again: out of reach of our own push's notify (as in
        // `Retry::poll`); the cell stays ours until the sink is dropped,
        // unwrapped or closed.
        handle.unarm(self.slot);
        let (mut armed, mut spun) = (false, false);
        loop {
            let Some(v) = self.pending.take() else {
                if armed {
                    handle.unarm(self.slot);
                }
                return TaskPoll::Ready(Ok(()));
            };
            match handle.try_send(v) {
                Ok(_) => {}
                Err(PublishError::Full(v)) => {
                    self.pending = Some(v);
                    if armed {
                        return TaskPoll::Pending;
                    }
                    // The spin within the handle's budget (`Retry::poll`),
                    // once per poll.
                    if !spun {
                        spun = true;
                        if handle.spun_ready() {
                            continue;
                        }
                    }
                    // Register, then try once more (the re-check).
                    handle.arm(&mut self.slot, cx.waker());
                    armed = true;
                }
                Err(e) => {
                    handle.disarm(&mut self.slot);
                    return TaskPoll::Ready(Err(e));
                }
            }
        }
    }

    /// Pushes the kept item, then drops the producer.
    fn close_step(&mut self, cx: &mut Context<'_>) -> TaskPoll<Result<(), PublishError<P::Item>>> {
        match self.push_pending(cx) {
            TaskPoll::Ready(Ok(())) => {
                if let Some(h) = &self.handle {
                    h.disarm(&mut self.slot);
                }
                drop(self.handle.take());
                TaskPoll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

// No field is structurally pinned: the handle and the item are only used
// through `&mut`.
impl<P: SinkTarget> Unpin for EventSink<P> {}

impl<P: SinkTarget> Drop for EventSink<P> {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.disarm(&mut self.slot);
        }
    }
}

impl<P: SinkTarget + fmt::Debug> fmt::Debug for EventSink<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("handle", &self.handle)
            .field("pending", &self.pending.is_some())
            .field("slot", &self.slot)
            .finish()
    }
}

impl<P: SinkTarget> futures_sink::Sink<P::Item> for EventSink<P> {
    type Error = PublishError<P::Item>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Result<(), Self::Error>> {
        self.get_mut().push_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: P::Item) -> Result<(), Self::Error> {
        self.get_mut().keep(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Result<(), Self::Error>> {
        self.get_mut().push_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Result<(), Self::Error>> {
        self.get_mut().close_step(cx)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use alloc::sync::Arc;

    use core::pin::Pin;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use core::task::{Context, Poll as TaskPoll, Waker};

    use futures_sink::Sink;

    use super::EventSink;
    use crate::ring::{AsyncWait, BusySpin, Heap, Multi, Poll, PublishError, Ring};

    use crate::waker::counting::Count;

    #[test]
    fn sink_keeps_one_item_waits_for_room_and_closes_the_ring() {
        let ring: Ring<Heap<u32>, Multi, AsyncWait<BusySpin, 1>> =
            Ring::with_wait(Heap::with_capacity(1).unwrap(), AsyncWait::with(BusySpin));
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let p = g.multi_producer().unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut sink = EventSink::new(p);
        let mut s = Pin::new(&mut sink);
        assert!(matches!(
            s.as_mut().poll_ready(&mut cx),
            TaskPoll::Ready(Ok(()))
        ));
        s.as_mut().start_send(1).unwrap();
        // A second send without `poll_ready` is refused, item handed back.
        assert!(matches!(
            s.as_mut().start_send(7),
            Err(PublishError::Full(7))
        ));
        assert!(matches!(
            s.as_mut().poll_ready(&mut cx),
            TaskPoll::Ready(Ok(()))
        ));
        s.as_mut().start_send(2).unwrap();
        assert!(s.as_mut().poll_flush(&mut cx).is_pending(), "ring full");
        assert_eq!(ring.wait.inner_taken(), 1);
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 1)), Poll::Processed(1));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the release woke the sink"
        );
        assert!(matches!(
            s.as_mut().poll_close(&mut cx),
            TaskPoll::Ready(Ok(()))
        ));
        assert_eq!(ring.wait.inner_taken(), 0);
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 2)), Poll::Processed(1));
        assert_eq!(
            c.poll(|_, _, _| ()),
            Poll::Closed,
            "close dropped the producer"
        );
    }
}
