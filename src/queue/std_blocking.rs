//! A blocking delay queue for threads (std only): a [`DelayQueue`] behind a
//! mutex, with a condition variable for consumers.
//!
//! This is a **blocking** structure, not a lock-free one: every operation
//! takes a short critical section (O(log n) inside). `insert` never waits
//! for space or for consumers; `pop` waits until the head's deadline and is
//! woken early when an earlier item arrives (the inserting thread notifies
//! whenever its item became the new head, under the lock, so a consumer
//! between reading the old head and waiting cannot miss it). Time is the
//! monotonic clock, measured from the queue's creation.
//!
//! [`pop_async`](BlockingDelayQueue::pop_async) is `pop` for async code:
//! its future registers its task's waker in the queue's waiter list under
//! the same lock as its check (so an insert or close that follows the
//! check finds it; no wake is lost, with no atomic protocol of its own),
//! and sleeps until the head's deadline on a sleep future the caller
//! supplies, so it works with any runtime's timer, or the crate's timer
//! service.
//!
//! [`close`](BlockingDelayQueue::close) wakes every waiter; later inserts
//! return their item in the error and pops fail, and `close` hands back
//! what was still queued, so nothing is dropped silently.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::time::Instant;

use super::DelayQueue;
use crate::arena::Growable;
use crate::sync::blocking::{Condvar, Mutex, MutexGuard};

/// The queue was closed: the one crate-wide [`Closed`], carrying back the
/// item an insert could not queue.
///
/// ```
/// use std::time::Duration;
/// use latchfree::queue::{BlockingDelayQueue, Closed};
///
/// let q = BlockingDelayQueue::new();
/// q.close();
/// assert_eq!(q.insert("late", Duration::ZERO), Err(Closed("late")));
/// ```
pub use crate::error::Closed;

/// Why a `pop_timeout` or `try_pop` returned nothing.
///
/// ```
/// use std::time::Duration;
/// use latchfree::queue::{BlockingDelayQueue, PopError};
///
/// let q = BlockingDelayQueue::new();
/// q.insert(1, Duration::from_secs(60)).unwrap();
/// assert_eq!(q.try_pop(), Err(PopError::Timeout)); // not due yet
/// assert_eq!(q.pop_timeout(Duration::from_millis(1)), Err(PopError::Timeout));
/// assert_eq!(q.close(), [1]); // handed back, not dropped
/// assert_eq!(q.try_pop(), Err(PopError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// No item was due in time (or, for `try_pop`, right now).
    Timeout,
    /// The queue is closed.
    Closed,
}

impl core::fmt::Display for PopError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PopError::Timeout => f.write_str("no item became due in time"),
            PopError::Closed => f.write_str("the delay queue is closed"),
        }
    }
}

impl core::error::Error for PopError {}

struct State<T> {
    q: DelayQueue<T, Growable>,
    closed: bool,
    /// The tasks of waiting `pop_async` futures, by future id: each is
    /// woken (and removed) by the next insert of a new head, `close`, or a
    /// pop that leaves another item due.
    waiters: Vec<(u64, Waker)>,
    /// The next `pop_async` future's id.
    next_waiter: u64,
}

impl<T> State<T> {
    /// Takes every registered waker, to be woken after the lock is let go
    /// (a waker is user code: it must not run under our lock).
    fn take_waiters(&mut self) -> Vec<(u64, Waker)> {
        core::mem::take(&mut self.waiters)
    }

    fn forget(&mut self, id: Option<u64>) {
        if let Some(id) = id {
            self.waiters.retain(|(w, _)| *w != id);
        }
    }
}

fn wake_all(waiters: Vec<(u64, Waker)>) {
    for (_, w) in waiters {
        w.wake();
    }
}

/// A delay queue several threads can insert into and pop from.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use latchfree::queue::BlockingDelayQueue;
///
/// let q = Arc::new(BlockingDelayQueue::new());
/// let consumer = {
///     let q = q.clone();
///     std::thread::spawn(move || {
///         let mut got = Vec::new();
///         while let Ok(item) = q.pop() {
///             got.push(item); // waits for each deadline
///             if got.len() == 2 {
///                 break;
///             }
///         }
///         got
///     })
/// };
/// let start = Instant::now();
/// q.insert("second", Duration::from_millis(20)).unwrap();
/// q.insert("first", Duration::from_millis(5)).unwrap(); // wakes the consumer early
/// assert_eq!(consumer.join().unwrap(), ["first", "second"]);
/// assert!(start.elapsed() >= Duration::from_millis(20));
/// assert!(q.close().is_empty()); // nothing left behind
/// ```
pub struct BlockingDelayQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    epoch: Instant,
}

impl<T> Default for BlockingDelayQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> BlockingDelayQueue<T> {
    /// An empty, open queue.
    pub fn new() -> Self {
        BlockingDelayQueue {
            state: Mutex::new(State {
                q: DelayQueue::new(),
                closed: false,
                waiters: Vec::new(),
                next_waiter: 0,
            }),
            ready: Condvar::new(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock cannot leave the queue torn (every
        // critical section is a single DelayQueue call), so poisoning is
        // ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Queues `value` to become available after `delay`. Never waits for
    /// space or consumers. Gives the value back if the queue is closed.
    pub fn insert(&self, value: T, delay: Duration) -> Result<(), Closed<T>> {
        let delay = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.insert_nanos(value, self.now().saturating_add(delay))
    }

    /// Queues `value` to become available at `deadline` (at once if it
    /// has passed). Never waits. Gives the value back if the queue is
    /// closed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use latchfree::queue::BlockingDelayQueue;
    ///
    /// let q = BlockingDelayQueue::new();
    /// let start = Instant::now();
    /// q.insert_at("b", start + Duration::from_millis(4)).unwrap();
    /// q.insert_at("a", start).unwrap(); // already due
    /// assert_eq!(q.try_pop(), Ok("a"));
    /// assert_eq!(q.pop(), Ok("b"));
    /// assert!(start.elapsed() >= Duration::from_millis(4));
    /// ```
    pub fn insert_at(&self, value: T, deadline: Instant) -> Result<(), Closed<T>> {
        self.insert_nanos(value, self.nanos(deadline))
    }

    fn insert_nanos(&self, value: T, deadline: u64) -> Result<(), Closed<T>> {
        let mut st = self.lock();
        if st.closed {
            return Err(Closed(value));
        }
        let old_head = st.q.next_deadline();
        if let Err(v) = st.q.try_insert_at(value, deadline) {
            // Only at 2^32 - 1 items; report it as refusal, not a drop.
            return Err(Closed(v));
        }
        if old_head.map_or(true, |h| deadline < h) {
            // A new head: a sleeping consumer waits for a later deadline (or
            // for anything at all). Notified under the lock, so a consumer
            // that read the old head is already waiting on the condvar.
            self.ready.notify_all();
            let waiters = st.take_waiters();
            drop(st);
            wake_all(waiters);
        }
        Ok(())
    }

    /// Takes the earliest item, waiting until its deadline; wakes early for
    /// an earlier item. `Err` once the queue is closed.
    pub fn pop(&self) -> Result<T, Closed<()>> {
        match self.pop_until(None) {
            Ok(v) => Ok(v),
            Err(_) => Err(Closed(())),
        }
    }

    /// As [`pop`](Self::pop), but waits at most `timeout`.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        let limit = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.pop_until(Some(self.now().saturating_add(limit)))
    }

    /// Takes the earliest item if it is due now; never waits.
    pub fn try_pop(&self) -> Result<T, PopError> {
        let mut st = self.lock();
        if st.closed {
            return Err(PopError::Closed);
        }
        let now = self.now();
        st.q.poll_expired(now)
            .map(|e| e.value)
            .ok_or(PopError::Timeout)
    }

    /// [`pop`](Self::pop) as a future: takes the earliest item once it is
    /// due, or `Err` once the queue is closed, without holding a thread.
    ///
    /// `sleep_until` makes a future that completes at a given instant: the
    /// caller's runtime's timer (`|t| tokio::time::sleep_until(t.into())`)
    /// or the crate's own, runtime-agnostic
    /// [`TimerService::sleep_at`](crate::wheel::TimerService::sleep_at).
    /// It is called outside the queue's lock, once per new head deadline;
    /// whatever it completes with is ignored (the future re-checks the
    /// clock). An insert of an earlier item or `close` wakes the future
    /// early.
    ///
    /// Dropping the future before it completes takes nothing from the
    /// queue. If `sleep_until` or its future panics, the panic propagates
    /// out of `poll` and the queue is untouched.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use latchfree::queue::BlockingDelayQueue;
    /// use latchfree::wheel::TimerService;
    ///
    /// let timers = TimerService::new();
    /// let q = BlockingDelayQueue::new();
    /// let start = Instant::now();
    /// q.insert("later", Duration::from_millis(5)).unwrap();
    /// let got = pollster::block_on(q.pop_async(|t| timers.sleep_at(t)));
    /// assert_eq!(got, Ok("later"));
    /// assert!(start.elapsed() >= Duration::from_millis(5));
    /// ```
    ///
    /// # Errors
    ///
    /// `Closed` once the queue is closed.
    pub fn pop_async<'a, F, S>(
        &'a self,
        sleep_until: F,
    ) -> impl Future<Output = Result<T, Closed<()>>> + 'a
    where
        F: FnMut(Instant) -> S + 'a,
        S: Future + 'a,
    {
        PopAsync {
            queue: self,
            sleep_until,
            sleep: None,
            id: None,
        }
    }

    fn pop_until(&self, limit: Option<u64>) -> Result<T, PopError> {
        let mut st = self.lock();
        loop {
            if st.closed {
                return Err(PopError::Closed);
            }
            let now = self.now();
            if let Some(e) = st.q.poll_expired(now) {
                if st.q.next_deadline().is_some_and(|d| d <= now) {
                    // More is due: make sure another consumer looks.
                    self.ready.notify_one();
                    let waiters = st.take_waiters();
                    drop(st);
                    wake_all(waiters);
                }
                return Ok(e.value);
            }
            if limit.is_some_and(|l| now >= l) {
                return Err(PopError::Timeout);
            }
            let wake = match (st.q.next_deadline(), limit) {
                (Some(d), Some(l)) => Some(d.min(l)),
                (Some(d), None) => Some(d),
                (None, l) => l,
            };
            st = match wake {
                None => self.ready.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(w) => {
                    let d = Duration::from_nanos(w.saturating_sub(now));
                    self.ready
                        .wait_timeout(st, d)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
            };
        }
    }

    /// Closes the queue: wakes every waiter, refuses later inserts, and
    /// returns the items still queued (earliest first).
    pub fn close(&self) -> Vec<T> {
        let mut st = self.lock();
        st.closed = true;
        let mut rest = Vec::with_capacity(st.q.len());
        while let Some(e) = st.q.poll_expired(u64::MAX) {
            rest.push(e.value);
        }
        self.ready.notify_all();
        let waiters = st.take_waiters();
        drop(st);
        wake_all(waiters);
        rest
    }

    /// Items queued (stale as soon as it returns under concurrency).
    pub fn len(&self) -> usize {
        self.lock().q.len()
    }

    /// Whether nothing is queued (stale as soon as it returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// The future of [`BlockingDelayQueue::pop_async`].
struct PopAsync<'a, T, F, S> {
    queue: &'a BlockingDelayQueue<T>,
    sleep_until: F,
    /// The sleep for the head deadline (in the queue's nanoseconds) it
    /// was made for.
    sleep: Option<(u64, Pin<Box<S>>)>,
    /// This future's id in the waiter list, once it registered.
    id: Option<u64>,
}

// `sleep` is boxed (pinned on the heap); nothing else is pinned.
impl<T, F, S> Unpin for PopAsync<'_, T, F, S> {}

impl<T, F, S> Future for PopAsync<'_, T, F, S>
where
    F: FnMut(Instant) -> S,
    S: Future,
{
    type Output = Result<T, Closed<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let q = this.queue;
        let mut slept = false;
        loop {
            let mut st = q.lock();
            if st.closed {
                st.forget(this.id.take());
                return Poll::Ready(Err(Closed(())));
            }
            let now = q.now();
            if let Some(e) = st.q.poll_expired(now) {
                st.forget(this.id.take());
                let more = st.q.next_deadline().is_some_and(|d| d <= now);
                if more {
                    // As in `pop_until`: another consumer should look.
                    q.ready.notify_one();
                    let waiters = st.take_waiters();
                    drop(st);
                    wake_all(waiters);
                }
                return Poll::Ready(Ok(e.value));
            }
            // Registered under the lock that saw nothing due: an insert
            // or close after this finds the waker.
            let id = *this.id.get_or_insert_with(|| {
                st.next_waiter += 1;
                st.next_waiter
            });
            match st.waiters.iter_mut().find(|(w, _)| *w == id) {
                Some((_, w)) => w.clone_from(cx.waker()),
                None => st.waiters.push((id, cx.waker().clone())),
            }
            let head = st.q.next_deadline();
            drop(st);
            let Some(d) = head else {
                this.sleep = None;
                return Poll::Pending;
            };
            if this.sleep.as_ref().map(|(at, _)| *at) != Some(d) {
                // Outside the lock: `sleep_until` is user code. A deadline
                // past what `Instant` holds is never: no sleep.
                this.sleep = q
                    .epoch
                    .checked_add(Duration::from_nanos(d))
                    .map(|t| (d, Box::pin((this.sleep_until)(t))));
            }
            let Some((_, sleep)) = this.sleep.as_mut() else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
            if slept {
                // A sleep that keeps completing before the deadline: yield
                // to the executor rather than spin inside one poll.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            slept = true;
        }
    }
}

impl<T, F, S> Drop for PopAsync<'_, T, F, S> {
    fn drop(&mut self) {
        if self.id.is_some() {
            self.queue.lock().forget(self.id.take());
        }
    }
}

impl<T> core::fmt::Debug for BlockingDelayQueue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockingDelayQueue")
            .field("len", &self.len())
            .finish()
    }
}
