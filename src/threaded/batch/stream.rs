//! Batches for async code: [`Builder::build_stream`] makes a batcher whose
//! batches are made by the task that consumes them: a [`BatchStream`]
//! ([`BatchStream::next_batch`], or `Stream` with the `futures-core`
//! feature), on whatever runtime it runs.
//!
//! # Design
//!
//! The stream is the queue's one consumer: each poll moves what is waiting
//! straight from the queue's slots into the batch it is filling (at most
//! what fits), and yields the batch when it holds `max_items`, when the
//! next item would take it past `max_bytes`, when `max_delay` has passed
//! since its first item (zero: as soon as nothing more is waiting), when a
//! flush asks for it, or on close. No thread hands items or batches over,
//! so a batch costs no thread hop and no wake-up beyond the one that
//! brought its first item; the order of pushes is kept.
//!
//! Waking follows the protocol of the private `tap` module: the stream
//! registers its waker when it finds nothing to do; producers (after each
//! publish), `flush` and `close` wake it. A waiting batch's deadline is the
//! one thing no producer reports: a small timer thread (started only with
//! a non-zero `max_delay`) wakes the task at the deadline it last asked
//! for; it never touches items.
//!
//! Slots the stream empties make room: it wakes async pushers waiting for
//! room, and blocking pushers wait as with any batcher. A stream that is
//! not polled therefore holds the producers back (backpressure end to end).
//!
//! # Guarantees
//!
//! Every accepted item is yielded exactly once, in push order, or, if the
//! stream is dropped first, goes to the error callback
//! ([`BatchError::Failed`]`(`[`Closed`]`(()))`) with the items it had not
//! yielded yet; a dropped stream closes the batcher, so later pushes fail
//! with their item. The weigher (`max_bytes`) runs in the stream's poll; a
//! panic in it is caught and sends that item alone to the error callback
//! ([`BatchError::Unweighed`]), as with a handler thread. A panic in the
//! error callback or in an item's `Drop` is caught and discarded. A
//! `next_batch` future dropped before it completes loses nothing: the
//! items it moved stay in the stream's batch.
//!
//! [`Batcher::close`] stops accepting and returns without waiting for the
//! stream (the stream may run on the very thread that closes);
//! [`Batcher::close_async`] and [`Batcher::flush`] wait until the stream
//! yielded what they cover (or was dropped).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::mem;
use core::panic::AssertUnwindSafe;
#[cfg(feature = "futures-core")]
use core::pin::Pin;
use core::task::{Context, Poll as TaskPoll, Waker};
use core::time::Duration;
use std::panic::catch_unwind;

use super::error::BatchError;
use super::flusher::{clear_quietly, report, report_unweighed, OnError, Weigher};
use super::handoff::{clock, FlushCause, Handoff};
use super::metrics::Counters;
use super::tap::Tap;
use super::{Batcher, BuildError, Builder, Closed, Queue, Shared};
use crate::ring::{Consumer, Poll, Ring};
use crate::sync::blocking::{wait_timeout, Condvar, Mutex, MutexGuard};
use crate::sync::time::Instant;
use crate::sync::{thread, Arc, HandleArc, Ordering};
use crate::threaded::lane;
use crate::threaded::room::Room;
use crate::threaded::unwind::Payload;

impl<T: Send + 'static> Builder<T, Closed<()>> {
    /// Makes a batcher whose batches are consumed by async code: the
    /// returned [`BatchStream`] fills each batch from the queue inside the
    /// task that awaits it (module docs of `batch::stream`). The error
    /// callback hears only of items the weigher panicked on and of items
    /// left when the stream is dropped. The stream is the queue's one
    /// consumer: [`flushers`](Self::flushers) does not apply.
    ///
    /// ```
    /// use latchfree::batch::Batcher;
    ///
    /// let (batcher, mut batches) = Batcher::builder().max_items(4).build_stream().unwrap();
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
    /// [`BuildError`] if the capacity is too large for a ring or the timer
    /// thread cannot start.
    pub fn build_stream(self) -> Result<(Batcher<T>, BatchStream<T>), BuildError> {
        let capacity = self.capacity;
        let ring: Arc<Queue<T>> =
            lane::queue(capacity, 1).map_err(|_| BuildError::Capacity(capacity))?;
        let mut graph = Ring::graph(ring.clone()).expect("fresh ring");
        let consumer = graph.consumer(&[]).expect("one gate");
        let producers = lane::Lanes::new(
            graph
                .multi_producer()
                .expect("the graph has its consumer"),
        );
        let alarm = if self.max_delay.is_zero() {
            None
        } else {
            Some(Alarm::start(&self.name)?)
        };
        let shared = Arc::new(Shared {
            ring,
            producers,
            // No flusher thread: the hand-off answers every flush at once.
            handoff: Handoff::new(0),
            tap: Some(Tap::new()),
            counters: Counters::default(),
            room: Room::new(),
        });
        let on_error = self.on_error.unwrap_or_else(default_report::<T>);
        let batcher = Batcher {
            shared: shared.clone(),
            joins: Mutex::new(Vec::new()),
        };
        let stream = BatchStream {
            shared,
            consumer,
            batch: Vec::with_capacity(self.max_items.min(4096)),
            bytes: 0,
            first_at: None,
            pending: VecDeque::new(),
            carry: None,
            weigher: self.weigher,
            on_error,
            max_items: self.max_items,
            max_bytes: self.max_bytes,
            max_delay: self.max_delay,
            id: None,
            answered: 0,
            alarm,
            ended: false,
        };
        Ok((batcher, stream))
    }
}

/// The error callback a streamed batcher uses when none was set.
fn default_report<T>() -> OnError<T, Closed<()>> {
    HandleArc::new(|e: BatchError<Closed<()>>, items: &mut Vec<T>| match e {
        BatchError::Unweighed(_) => {
            std::eprintln!("latchfree batch: the weigher panicked on an item");
        }
        _ => std::eprintln!(
            "latchfree batch: the batch stream was dropped with {} items",
            items.len()
        ),
    })
}

/// The batches of a batcher made by [`Builder::build_stream`], for async
/// code: [`next_batch`](Self::next_batch), or `Stream` with the
/// `futures-core` feature. Ends (`None`) once the batcher is closed and
/// every item was yielded. Dropping it: module docs of `batch::stream`.
pub struct BatchStream<T> {
    shared: Arc<Shared<T>>,
    consumer: Consumer<Arc<Queue<T>>>,
    /// The batch being filled.
    batch: Vec<T>,
    /// Its weight (with a weigher).
    bytes: usize,
    /// When its first item came (with a non-zero `max_delay`).
    first_at: Option<Instant>,
    /// Items taken from the queue, not yet weighed (with a weigher only):
    /// the weigher is user code and runs outside the queue's poll.
    pending: VecDeque<T>,
    /// An item weighed but left for the next batch (it would have taken
    /// this one past `max_bytes`), with its weight.
    carry: Option<(T, usize)>,
    weigher: Option<Weigher<T>>,
    on_error: OnError<T, Closed<()>>,
    max_items: usize,
    max_bytes: usize,
    max_delay: Duration,
    /// The stream task's registration in the tap, while it waits.
    id: Option<u64>,
    /// The last position told to the tap (`Tap::answer`).
    answered: u64,
    /// Wakes the task at a waiting batch's deadline (non-zero delay only).
    alarm: Option<Alarm>,
    /// Yielded `None`: the batcher is closed and everything was yielded.
    ended: bool,
}

impl<T> BatchStream<T> {
    /// The next batch; `None` once the batcher is closed and every item
    /// was yielded. Dropping the future loses nothing (module docs).
    pub fn next_batch(&mut self) -> impl Future<Output = Option<Vec<T>>> + '_ {
        core::future::poll_fn(move |cx| self.poll_batch(cx))
    }

    fn tap(&self) -> &Tap {
        self.shared.tap.as_ref().expect("a streamed batcher has a tap")
    }

    /// Drops the task's registration in the tap, if any.
    #[inline]
    fn forget(&mut self) {
        let Self { shared, id, .. } = self;
        if let Some(tap) = &shared.tap {
            tap.forget_stream(id);
        }
    }

    /// Moves what is waiting into the batch (weighing it, with a weigher).
    /// `Err` when the batch must ship now (full, or at its byte limit),
    /// else the queue's state after the poll.
    fn fill(&mut self) -> Result<Poll, FlushCause> {
        let p = if self.weigher.is_none() {
            let room = self.max_items - self.batch.len();
            debug_assert!(room > 0, "a full batch ships before the next fill");
            let batch = &mut self.batch;
            self.consumer.poll_limit(room, |slot, _, _| {
                // SAFETY: the stream's consumer is the queue's only one, and
                // we are inside the poll that handed it this sequence (the
                // take-once slot's contract).
                if let Some(item) = unsafe { slot.take() } {
                    batch.push(item);
                }
            })
        } else {
            if let Some((item, w)) = self.carry.take() {
                self.bytes = w;
                self.batch.push(item);
                if self.batch.len() >= self.max_items {
                    return Err(FlushCause::Items);
                }
            }
            let pending = &mut self.pending;
            let room = self.max_items - self.batch.len();
            let p = if pending.is_empty() {
                self.consumer.poll_limit(room, |slot, _, _| {
                    // SAFETY: as above.
                    if let Some(item) = unsafe { slot.take() } {
                        pending.push_back(item);
                    }
                })
            } else {
                Poll::Processed(0)
            };
            if let Some(cause) = self.weigh_pending() {
                self.note_freed(p);
                return Err(cause);
            }
            p
        };
        self.note_freed(p);
        if self.first_at.is_none() && !self.batch.is_empty() && !self.max_delay.is_zero() {
            self.first_at = Some(clock());
        }
        if self.batch.len() >= self.max_items {
            return Err(FlushCause::Items);
        }
        Ok(p)
    }

    /// The poll emptied slots: wakes async pushers waiting for room (a
    /// fence and a load when none is).
    #[inline]
    fn note_freed(&self, p: Poll) {
        if let Poll::Processed(_) = p {
            self.shared.room.notify();
        }
    }

    /// Weighs `pending` into the batch, each weigher call under
    /// `catch_unwind`; the cause if the batch must ship now.
    fn weigh_pending(&mut self) -> Option<FlushCause> {
        let w = self.weigher.clone().expect("called with a weigher");
        while let Some(item) = self.pending.pop_front() {
            let weight = match catch_unwind(AssertUnwindSafe(|| w(&item))) {
                Ok(weight) => weight,
                Err(p) => {
                    self.unweighed(item, p);
                    continue;
                }
            };
            if !self.batch.is_empty() && self.bytes.saturating_add(weight) > self.max_bytes {
                self.carry = Some((item, weight));
                return Some(FlushCause::Bytes);
            }
            self.bytes = self.bytes.saturating_add(weight);
            self.batch.push(item);
            if self.batch.len() >= self.max_items {
                return Some(FlushCause::Items);
            }
        }
        None
    }

    /// The weigher panicked on `item`: it goes to the error callback alone.
    #[cold]
    fn unweighed(&mut self, item: T, p: Payload) {
        report_unweighed(&self.shared.counters, &self.on_error, item, p);
    }

    /// One past the last sequence whose item left the stream (yielded or
    /// reported): the consumer's position less what it still holds.
    fn handed_out(&self) -> u64 {
        let held = self.batch.len() + self.pending.len() + usize::from(self.carry.is_some());
        self.consumer.sequence() - held as u64
    }

    /// Tells flush callers what was handed out, if one waits for it.
    #[inline]
    fn answer_flushes(&mut self) {
        if self.tap().wanted() > self.answered {
            let done = self.handed_out();
            if done > self.answered {
                self.answered = done;
                self.tap().answer(done);
            }
        }
    }

    /// Yields the batch.
    fn ship(&mut self, cause: FlushCause) -> TaskPoll<Option<Vec<T>>> {
        let capacity = self.max_items.min(4096);
        let batch = mem::replace(&mut self.batch, Vec::with_capacity(capacity));
        self.bytes = 0;
        self.first_at = None;
        let c = &self.shared.counters;
        // Relaxed: metrics only.
        c.causes[cause as usize].fetch_add(1, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.delivered.fetch_add(batch.len(), Ordering::Relaxed);
        self.forget();
        self.answer_flushes();
        TaskPoll::Ready(Some(batch))
    }

    /// The batcher is closed and everything was yielded.
    fn end(&mut self) -> TaskPoll<Option<Vec<T>>> {
        self.ended = true;
        self.forget();
        self.answered = u64::MAX;
        self.tap().answer(u64::MAX);
        if let Some(a) = self.alarm.take() {
            a.stop();
        }
        TaskPoll::Ready(None)
    }

    /// One step: a batch, the end, or `Pending` with the waker registered
    /// (register, then look again: `batch::tap`).
    fn poll_batch(&mut self, cx: &mut Context<'_>) -> TaskPoll<Option<Vec<T>>> {
        if self.ended {
            return TaskPoll::Ready(None);
        }
        let mut armed = false;
        loop {
            let p = match self.fill() {
                Ok(p) => p,
                Err(cause) => return self.ship(cause),
            };
            match p {
                // More may be waiting: look again.
                Poll::Processed(_) => continue,
                Poll::Closed | Poll::Halted => {
                    if self.batch.is_empty() {
                        return self.end();
                    }
                    return self.ship(FlushCause::Close);
                }
                Poll::Idle | Poll::Unfinished | Poll::Gated => {}
            }
            // Nothing waiting now. A flush whose items are all taken gets
            // them at once (items below its target not yet published will
            // be: their publish wakes us).
            let wanted = self.tap().wanted();
            if wanted > self.answered && self.consumer.sequence() >= wanted {
                if !self.batch.is_empty() {
                    return self.ship(FlushCause::Manual);
                }
                self.answer_flushes();
            }
            let mut deadline = None;
            if !self.batch.is_empty() {
                let Some(first) = self.first_at else {
                    // Natural batching: ship what there is.
                    return self.ship(FlushCause::Time);
                };
                let at = first + self.max_delay;
                if clock() >= at {
                    return self.ship(FlushCause::Time);
                }
                deadline = Some(at);
            }
            if armed {
                if let (Some(at), Some(alarm)) = (deadline, &mut self.alarm) {
                    alarm.set(at, cx.waker());
                }
                return TaskPoll::Pending;
            }
            let Self { shared, id, .. } = self;
            shared
                .tap
                .as_ref()
                .expect("a streamed batcher has a tap")
                .register_stream(id, cx.waker());
            armed = true;
        }
    }
}

impl<T> Drop for BatchStream<T> {
    fn drop(&mut self) {
        if let Some(a) = self.alarm.take() {
            a.stop();
        }
        if self.ended {
            return;
        }
        self.forget();
        // Nobody will take items any more: refuse later pushes (they get
        // their item back), wake async pushers to hear it, and hand what
        // was accepted to the error callback (module docs).
        self.shared.close();
        let mut items = mem::take(&mut self.batch);
        if let Some((item, _)) = self.carry.take() {
            items.push(item);
        }
        items.extend(self.pending.drain(..));
        loop {
            match self.consumer.poll(|slot, _, _| {
                // SAFETY: as in `fill`.
                if let Some(item) = unsafe { slot.take() } {
                    items.push(item);
                }
            }) {
                Poll::Closed | Poll::Halted => break,
                Poll::Processed(_) => {}
                // A producer between its claim and its publish: it
                // publishes without waiting.
                Poll::Idle | Poll::Unfinished | Poll::Gated => thread::yield_now(),
            }
        }
        if !items.is_empty() {
            // Relaxed: metrics only.
            self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            report(&self.on_error, BatchError::Failed(Closed(())), &mut items);
            clear_quietly(&mut items);
        }
        self.tap().answer(u64::MAX);
    }
}

// Nothing is pinned: every field is only used through `&mut`.
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
            .field("filling", &self.batch.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The timer of a streamed batcher: a thread that wakes the stream's task
/// at the deadline of its waiting batch. The stream asks for a deadline
/// only when it goes to sleep with a batch waiting, and again only if that
/// deadline or its waker changed; a wake-up for a batch that shipped since
/// is a spurious poll, nothing more.
struct Alarm {
    inner: Arc<AlarmInner>,
    join: Option<thread::JoinHandle<()>>,
    /// The deadline and waker last handed to the thread.
    asked: Option<(Instant, Waker)>,
}

struct AlarmInner {
    state: Mutex<AlarmState>,
    cond: Condvar,
}

struct AlarmState {
    /// When to wake `waker`.
    at: Option<Instant>,
    waker: Option<Waker>,
    /// The thread waits for no deadline (only for a new one).
    idle: bool,
    stop: bool,
}

impl Alarm {
    fn start(name: &str) -> Result<Self, BuildError> {
        let inner = Arc::new(AlarmInner {
            state: Mutex::new(AlarmState {
                at: None,
                waker: None,
                idle: true,
                stop: false,
            }),
            cond: Condvar::new(),
        });
        let i = inner.clone();
        let join = thread::Builder::new()
            .name(alloc::format!("{name}-timer"))
            .spawn(move || i.run())
            .map_err(|_| BuildError::Spawn)?;
        Ok(Self {
            inner,
            join: Some(join),
            asked: None,
        })
    }

    /// Wake `waker` at `at` (replacing the last request).
    fn set(&mut self, at: Instant, waker: &Waker) {
        if let Some((a, w)) = &self.asked {
            if *a == at && w.will_wake(waker) {
                return;
            }
        }
        self.asked = Some((at, waker.clone()));
        let mut s = self.inner.lock();
        let earlier = s.idle || s.at.map_or(true, |cur| at < cur);
        s.at = Some(at);
        match &mut s.waker {
            Some(w) => w.clone_from(waker),
            w => *w = Some(waker.clone()),
        }
        drop(s);
        if earlier {
            self.inner.cond.notify_one();
        }
    }

    fn stop(mut self) {
        self.inner.lock().stop = true;
        self.inner.cond.notify_one();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        if self.join.is_some() {
            self.inner.lock().stop = true;
            self.inner.cond.notify_one();
        }
    }
}

impl AlarmInner {
    fn lock(&self) -> MutexGuard<'_, AlarmState> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The timer thread's body.
    fn run(&self) {
        let mut s = self.lock();
        loop {
            if s.stop {
                return;
            }
            match s.at {
                None => {
                    s.idle = true;
                    s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                Some(at) => {
                    s.idle = false;
                    let now = clock();
                    if now >= at {
                        s.at = None;
                        let w = s.waker.take();
                        drop(s);
                        // After the lock: a waker is user code. A panic in
                        // it has nowhere to go; the thread carries on.
                        if let Some(w) = w {
                            let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
                        }
                        s = self.lock();
                    } else {
                        s = wait_timeout(&self.cond, s, at - now).0;
                    }
                }
            }
        }
    }
}
