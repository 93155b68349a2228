//! [`EventStream`]: a ring consumer as the `futures` ecosystem's `Stream`
//! (feature `futures-core`), so `StreamExt` combinators work on a ring with
//! the [`AsyncWait`](super::AsyncWait) strategy. `sink.rs` is its producer
//! side.
//!
//! It wraps one handle and waits exactly as the handle's `_async` futures
//! do (register, then re-check: `async_wait`'s module docs); they add no
//! atomic protocol of their own, only where the waker cell is kept: in the
//! stream, across polls, until it is dropped or unwrapped.
//!
//! # Stream: one owned copy per item
//!
//! A ring's events stay in their slots; a `Stream` must yield owned items.
//! [`EventStream`] hands out a clone of each event and releases its slot
//! in the same step (a [`Consumer`](super::Consumer) polled one event at a
//! time, or a [`Worker`](super::Worker) claiming one at a time), so an
//! item is either yielded or still in the ring, never both and never
//! neither. The stream ends (`None`) once the ring is closed and drained
//! for this handle, or halted; [`into_inner`](EventStream::into_inner) and
//! a `poll` on the handle tell which.
//!

use core::fmt;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll as TaskPoll};

use super::async_wait::{AsyncWait, Awaitable};
use super::consumer::{Consumer, Poll, Worker};
use super::shared::{Mode, Ring};
use super::storage::Storage;
use super::wait::WaitStrategy;

/// A consumer-side ring handle an [`EventStream`] can wrap: a
/// [`Consumer`] or a [`Worker`] on an [`AsyncWait`] ring. Sealed.
pub trait StreamSource: Awaitable {
    /// The owned item yielded (a clone of the event).
    type Item;
    /// Takes one event: `Ready(Some)`, `Ready(None)` when closed and
    /// drained or halted, `Pending` when none is available.
    #[doc(hidden)]
    fn take_one(&mut self) -> TaskPoll<Option<Self::Item>>;
}

/// What a non-waiting poll for one event means to a stream.
fn one_step<T>(p: Poll, out: &mut Option<T>) -> TaskPoll<Option<T>> {
    match p {
        // A skipped slot (a multi-producer's abandoned claim) counts as
        // processed but yields nothing: the caller polls again.
        Poll::Processed(_) => match out.take() {
            Some(v) => TaskPoll::Ready(Some(v)),
            None => TaskPoll::Pending,
        },
        Poll::Closed | Poll::Halted => TaskPoll::Ready(None),
        Poll::Gated | Poll::Idle | Poll::Unfinished => TaskPoll::Pending,
    }
}

/// One body for both consumer-side handles: poll one event, clone it out.
macro_rules! stream_source {
    ($($handle:ident),+) => {$(
        impl<R, S, M, W, const N: usize> StreamSource for $handle<R>
        where
            R: Deref<Target = Ring<S, M, AsyncWait<W, N>>>,
            S: Storage,
            S::Item: Clone,
            M: Mode,
            W: WaitStrategy,
        {
            type Item = S::Item;

            fn take_one(&mut self) -> TaskPoll<Option<S::Item>> {
                loop {
                    let mut out = None;
                    let p = self.poll_limit(1, |e, _, _| out = Some(e.clone()));
                    match (one_step(p, &mut out), p) {
                        (TaskPoll::Pending, Poll::Processed(_)) => continue,
                        (step, _) => return step,
                    }
                }
            }
        }
    )+};
}

stream_source!(Consumer, Worker);

/// A [`Consumer`] or [`Worker`] on an [`AsyncWait`] ring as a `Stream` of
/// owned events (feature `futures-core`): each item is a clone of one
/// event, whose slot is released as it is yielded. Ends once the ring is
/// closed and drained for this handle, or halted. Module docs: `stream`.
///
/// ```
/// use futures_util::StreamExt;
/// use latchfree::ring::{AsyncWait, EventStream, Heap, Ring, BusySpin};
///
/// let ring: Ring<Heap<u32>, _, AsyncWait<BusySpin>> =
///     Ring::with_wait(Heap::with_capacity(8).unwrap(), AsyncWait::with(BusySpin));
/// let mut graph = Ring::graph(&ring).unwrap();
/// let consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// (1..=4).for_each(|i| { producer.push(i).unwrap(); });
/// drop(producer); // closes the ring: the stream ends after the 4 events
/// let evens: Vec<u32> = pollster::block_on(
///     EventStream::new(consumer).filter(|e| core::future::ready(e % 2 == 0)).collect(),
/// );
/// assert_eq!(evens, [2, 4]);
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct EventStream<H: StreamSource> {
    handle: H,
    /// The waker cell this stream holds while it waits.
    slot: Option<usize>,
}

impl<H: StreamSource> EventStream<H> {
    /// Wraps `handle`.
    pub fn new(mut handle: H) -> Self {
        // The cell the handle kept from its own awaits, if any: the stream
        // holds it now (one cell per handle, wrapped or not).
        let slot = handle.spin_budget().take_home();
        Self { handle, slot }
    }

    /// The handle, for its non-waiting methods (`sequence`, `available`).
    pub fn get_mut(&mut self) -> &mut H {
        &mut self.handle
    }

    /// Gives the handle back (and the waker cell to the ring). Nothing is
    /// lost: every event not yet yielded is still the handle's.
    pub fn into_inner(mut self) -> H {
        self.handle.disarm(&mut self.slot);
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; `handle` is moved
        // out exactly once, and `slot` (a `Copy` option) needs no drop.
        unsafe { core::ptr::read(&me.handle) }
    }

    /// One `poll_next` step; `Stream` wraps it. The stream keeps its
    /// waker cell from its first wait until it is dropped or unwrapped, so
    /// a stream that waits once per item claims and frees no cell per item.
    fn next_step(&mut self, cx: &mut Context<'_>) -> TaskPoll<Option<H::Item>> {
        let try_first = match self.slot {
            // Out of reach of our own take's notify (`Retry::poll`).
            Some(_) => {
                self.handle.unarm(self.slot);
                true
            }
            // The cheap check, or the spin on it (`Retry::poll`).
            None => self.handle.may_proceed() || self.handle.spun_ready(),
        };
        if try_first {
            if let TaskPoll::Ready(v) = self.handle.take_one() {
                return TaskPoll::Ready(v);
            }
            // No cheap check (a worker): spin now, as `Retry::poll` does.
            if !H::CHEAP_CHECK && self.handle.spun_ready() {
                if let TaskPoll::Ready(v) = self.handle.take_one() {
                    return TaskPoll::Ready(v);
                }
            }
        }
        self.handle.arm(&mut self.slot, cx.waker());
        // The re-check (`async_wait`'s module docs), cheap check first.
        if !self.handle.may_proceed() {
            return TaskPoll::Pending;
        }
        match self.handle.take_one() {
            TaskPoll::Ready(v) => {
                self.handle.unarm(self.slot);
                TaskPoll::Ready(v)
            }
            TaskPoll::Pending => TaskPoll::Pending,
        }
    }
}

// No field is structurally pinned: the handle is only used through `&mut`.
impl<H: StreamSource> Unpin for EventStream<H> {}

impl<H: StreamSource> Drop for EventStream<H> {
    fn drop(&mut self) {
        self.handle.disarm(&mut self.slot);
    }
}

impl<H: StreamSource + fmt::Debug> fmt::Debug for EventStream<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("handle", &self.handle)
            .field("slot", &self.slot)
            .finish()
    }
}

impl<H: StreamSource> futures_core::Stream for EventStream<H> {
    type Item = H::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Option<H::Item>> {
        self.get_mut().next_step(cx)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use alloc::sync::Arc;

    use core::pin::Pin;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use core::task::{Context, Poll as TaskPoll, Waker};

    use futures_core::Stream;

    use super::EventStream;
    use crate::ring::{AsyncWait, BusySpin, Heap, Ring, Single};

    use crate::waker::counting::Count;

    #[test]
    fn stream_waits_is_woken_yields_then_ends_and_unwraps() {
        let ring: Ring<Heap<u32>, Single, AsyncWait<BusySpin, 1>> =
            Ring::with_wait(Heap::with_capacity(4).unwrap(), AsyncWait::with(BusySpin));
        let mut g = Ring::graph(&ring).unwrap();
        let c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut s = EventStream::new(c);
        assert!(Pin::new(&mut s).poll_next(&mut cx).is_pending());
        p.push(9).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            Pin::new(&mut s).poll_next(&mut cx),
            TaskPoll::Ready(Some(9))
        );
        assert_eq!(ring.wait.inner_taken(), 1, "the stream keeps its cell");
        assert!(Pin::new(&mut s).poll_next(&mut cx).is_pending());
        p.push(10).unwrap();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "re-armed in the kept cell"
        );
        assert_eq!(
            Pin::new(&mut s).poll_next(&mut cx),
            TaskPoll::Ready(Some(10))
        );
        assert!(Pin::new(&mut s).poll_next(&mut cx).is_pending());
        let c = s.into_inner(); // gives the cell back, keeps the handle
        assert_eq!(ring.wait.inner_taken(), 0);
        drop(p); // closes the ring
        let mut s = EventStream::new(c);
        assert_eq!(Pin::new(&mut s).poll_next(&mut cx), TaskPoll::Ready(None));
    }
}
