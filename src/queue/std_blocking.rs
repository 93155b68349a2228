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
//! [`close`](BlockingDelayQueue::close) wakes every waiter; later inserts
//! return their item in the error and pops fail, and `close` hands back
//! what was still queued, so nothing is dropped silently.

use alloc::vec::Vec;
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
///         }
///         got
///     })
/// };
/// let start = Instant::now();
/// q.insert("second", Duration::from_millis(20)).unwrap();
/// q.insert("first", Duration::from_millis(5)).unwrap(); // wakes the consumer early
/// std::thread::sleep(Duration::from_millis(30));
/// assert!(q.close().is_empty());
/// assert_eq!(consumer.join().unwrap(), ["first", "second"]);
/// assert!(start.elapsed() >= Duration::from_millis(20));
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

impl<T> core::fmt::Debug for BlockingDelayQueue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockingDelayQueue")
            .field("len", &self.len())
            .finish()
    }
}
