//! A flusher: moves items from the queue into its batch and ships batches
//! to the handler, every user call under `catch_unwind`. The loop that
//! drives it (when to poll, ship, sleep, answer a flush) is the hand-off's
//! ([`Handoff::run`]).

use alloc::vec::Vec;
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::panic::catch_unwind;

use super::error::BatchError;
#[cfg(doc)]
use super::handoff::Handoff;
use super::metrics::Counters;
use super::handoff::{self, Flush, FlushCause};
use super::{Queue, Shared};
use crate::ring::{Consumer, Poll, Worker};
use crate::sync::time::Instant;
use crate::sync::{Arc, HandleArc, Ordering};
use crate::threaded::slot::Slot;
use crate::threaded::unwind::{drop_quietly, Payload};

/// Weighs an item for `max_bytes`. User callbacks are owned, not
/// synchronised on: the plain `Arc` (loom's cannot hold a `dyn`).
pub(super) type Weigher<T> = HandleArc<dyn Fn(&T) -> usize + Send + Sync>;
/// The error callback (see `Weigher` for the `Arc`).
pub(super) type OnError<T, E> = HandleArc<dyn Fn(BatchError<E>, &mut Vec<T>) + Send + Sync>;

/// Where a flusher takes items from.
pub(super) enum Source<T> {
    One(Consumer<Arc<Queue<T>>>),
    /// A work-group worker and one past the highest sequence it took.
    Many(Worker<Arc<Queue<T>>>, u64),
}

impl<T: Send> Source<T> {
    fn poll(&mut self, max: usize, mut f: impl FnMut(T)) -> Poll {
        let mut last = None;
        let mut h = |slot: &Slot<T>, seq: u64, _: bool| {
            last = Some(seq);
            // SAFETY: we are the one consumer of this sequence, inside the
            // poll that handed it to us (see `Slot`).
            if let Some(item) = unsafe { slot.take() } {
                f(item);
            }
        };
        match self {
            Self::One(c) => c.poll_limit(max, &mut h),
            Self::Many(w, taken) => {
                let p = w.poll_limit(max, &mut h);
                if let Some(seq) = last {
                    *taken = (*taken).max(seq + 1);
                }
                if w.released() && !matches!(p, Poll::Processed(_)) {
                    // Lost a claim race: our announcement, which a pusher
                    // may have counted as holding the slots another worker
                    // just freed, is withdrawn. That is room too, and only
                    // we know it (`Worker::released`): report it as a
                    // poll that did something, so the caller tells waiting
                    // async pushers (`absorb`) before it decides to sleep.
                    return Poll::Processed(0);
                }
                p
            }
        }
    }

    /// See [`Flush::position`].
    fn position(&self) -> u64 {
        match self {
            Self::One(c) => c.sequence(),
            Self::Many(_, taken) => *taken,
        }
    }
}

/// Hands a failed batch to the error callback; a panic in it is caught and
/// discarded (there is nowhere further to report it).
pub(super) fn report<T, E>(on_error: &OnError<T, E>, e: BatchError<E>, items: &mut Vec<T>) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| on_error(e, items))) {
        drop_quietly(p);
    }
}

/// The weigher panicked on `item`: counts it and hands it to the error
/// callback alone (a flusher's and a batch stream's common slow path).
#[cold]
pub(super) fn report_unweighed<T, E>(c: &Counters, on_error: &OnError<T, E>, item: T, p: Payload) {
    // Relaxed: metrics only.
    c.failed.fetch_add(1, Ordering::Relaxed);
    c.panicked.fetch_add(1, Ordering::Relaxed);
    c.unweighed.fetch_add(1, Ordering::Relaxed);
    let mut one = alloc::vec![item];
    report(on_error, BatchError::Unweighed(p), &mut one);
    clear_quietly(&mut one);
}

/// Empties `items`, dropping each on its own with [`drop_quietly`]: a
/// panicking `Drop` neither stops the others from being dropped nor
/// escapes (a second panic in one `Vec::clear` would abort).
pub(super) fn clear_quietly<T>(items: &mut Vec<T>) {
    if core::mem::needs_drop::<T>() {
        for item in items.drain(..) {
            drop_quietly(item);
        }
    } else {
        items.clear();
    }
}

/// One flusher thread's state: its source, its batch and the user's
/// callbacks. Driven by [`Handoff::run`].
pub(super) struct Flusher<T, E, H> {
    pub(super) shared: Arc<Shared<T>>,
    pub(super) index: usize,
    pub(super) src: Source<T>,
    pub(super) handler: H,
    pub(super) on_error: OnError<T, E>,
    pub(super) weigher: Option<Weigher<T>>,
    pub(super) max_items: usize,
    pub(super) max_bytes: usize,
    pub(super) max_delay: Duration,
    pub(super) batch: Vec<T>,
    /// Reused landing area for weighed items.
    pub(super) incoming: Vec<T>,
    pub(super) bytes: usize,
    pub(super) first_at: Option<Instant>,
    /// The last `take` freed queue slots: `absorb` tells waiting async
    /// pushers (not `take`, which may run under the doorbell's lock).
    pub(super) freed: bool,
}

impl<T, E, H> Flusher<T, E, H>
where
    T: Send,
    H: FnMut(&mut Vec<T>) -> Result<(), E>,
{
    /// Polls once, moving what is waiting into the batch (no weigher) or
    /// the landing area (weigher): at most what fits in the batch. Runs no
    /// user code (see [`Flush::take`]).
    fn take(&mut self) -> Poll {
        let room = self.max_items - self.batch.len();
        debug_assert!(room > 0, "a full batch is shipped before the next take");
        let p = if self.weigher.is_some() {
            let incoming = &mut self.incoming;
            self.src.poll(room, |item| incoming.push(item))
        } else {
            // Fast path: straight into the batch.
            let was_empty = self.batch.is_empty();
            let batch = &mut self.batch;
            let p = self.src.poll(room, |item| batch.push(item));
            if was_empty && !self.batch.is_empty() {
                self.first_at = Some(handoff::clock());
            }
            p
        };
        if let Poll::Processed(_) = p {
            self.freed = true;
        }
        p
    }

    /// Batches what `take` moved in: weighs the landing area's items into
    /// the batch (shipping at the byte limit), and ships a full batch.
    fn absorb(&mut self) {
        if core::mem::take(&mut self.freed) {
            // Slots were released by the take: wake async pushers waiting
            // for room (a fence and a load when none is).
            self.shared.room.notify();
        }
        if !self.incoming.is_empty() {
            let mut got = core::mem::take(&mut self.incoming);
            for item in got.drain(..) {
                self.add(item);
            }
            self.incoming = got;
        }
        if self.batch.len() >= self.max_items {
            self.ship(FlushCause::Items);
        }
    }

    fn add(&mut self, item: T) {
        if let Some(w) = &self.weigher {
            let w = match catch_unwind(AssertUnwindSafe(|| w(&item))) {
                Ok(w) => w,
                Err(p) => return self.unweighed(item, p),
            };
            if !self.batch.is_empty() && self.bytes.saturating_add(w) > self.max_bytes {
                self.ship(FlushCause::Bytes);
            }
            self.bytes = self.bytes.saturating_add(w);
        }
        if self.batch.is_empty() {
            self.first_at = Some(handoff::clock());
        }
        self.batch.push(item);
        if self.batch.len() >= self.max_items {
            self.ship(FlushCause::Items);
        }
    }

    /// The weigher panicked on `item`: it goes to the error callback alone.
    #[cold]
    fn unweighed(&mut self, item: T, p: Payload) {
        report_unweighed(&self.shared.counters, &self.on_error, item, p);
    }

    fn ship(&mut self, cause: FlushCause) {
        if self.batch.is_empty() {
            return;
        }
        let c = &self.shared.counters;
        let n = self.batch.len();
        // Relaxed: metrics only.
        c.causes[cause as usize].fetch_add(1, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        let handler = &mut self.handler;
        let batch = &mut self.batch;
        let r = catch_unwind(AssertUnwindSafe(|| handler(batch)));
        let err = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(BatchError::Failed(e)),
            Err(p) => {
                c.panicked.fetch_add(1, Ordering::Relaxed);
                Some(BatchError::Panicked(p))
            }
        };
        if let Some(e) = err {
            c.failed.fetch_add(1, Ordering::Relaxed);
            report(&self.on_error, e, &mut self.batch);
        }
        c.delivered.fetch_add(n, Ordering::Relaxed);
        // The items were the handler's (and the error callback's); what
        // they left is dropped here, one by one, each drop's panic caught.
        clear_quietly(&mut self.batch);
        self.bytes = 0;
        self.first_at = None;
    }

    /// The flusher thread's body.
    pub(super) fn run(mut self) {
        let shared = self.shared.clone();
        shared.handoff.run(self.index, self.max_delay, &mut self);
        // The handler, callbacks and weigher are user values too.
        drop_quietly(self);
    }
}

impl<T, E, H> Flush for Flusher<T, E, H>
where
    T: Send,
    H: FnMut(&mut Vec<T>) -> Result<(), E>,
{
    fn take(&mut self) -> Poll {
        Flusher::take(self)
    }

    fn absorb(&mut self) {
        Flusher::absorb(self);
    }

    fn ship(&mut self, cause: FlushCause) {
        Flusher::ship(self, cause);
    }

    fn first_at(&self) -> Option<Instant> {
        self.first_at
    }

    fn position(&self) -> u64 {
        self.src.position()
    }
}
