//! The batcher's hand-off protocol: how producers, `flush` and `close`
//! callers and flusher threads meet.
//!
//! It is kept apart from the batcher (which owns the queue, the batch and
//! the handler) so that the loom models in `loom-tests/tests/batch.rs` run
//! exactly this code, flusher loop included, with loom's threads, park,
//! mutex and clock. The batcher supplies the queue side through [`Flush`].
//!
//! # Ground rules
//!
//! - `in_flight` counts pushes between [`Handoff::begin_push`] and
//!   [`Handoff::end_push`], `0..=pushing threads`. Every push that returned
//!   `Ok` has published its item before it left the count.
//! - `epoch` counts [`Handoff::flush`] calls (it only grows). `acks[i]` is
//!   the last epoch flusher `i` has finished (`usize::MAX` once it exited);
//!   both `acks` and the `acked` condition variable live under one mutex.
//! - `sleepers[i].sleeping` is written only by flusher `i`: `true` from just
//!   before its last poll until it is back from `park`.
//!
//! # Sleeping and waking
//!
//! An idle flusher sets its `sleeping` flag, issues a `SeqCst` fence, polls
//! once more and checks the epoch; only if both show nothing new does it
//! park. A producer publishes, issues a `SeqCst` fence and unparks a flusher
//! whose flag it sees. By the two fences, either the producer sees the flag
//! or the flusher's last poll sees the item; an `unpark` that comes before
//! the `park` makes the park return at once. `flush` and `close` unpark
//! every flusher unconditionally.
//!
//! # Flush
//!
//! [`Handoff::flush`] bumps the epoch and wakes every flusher. A flusher
//! that sees a new epoch waits until no push is in flight (so every item
//! accepted before the flush is in the queue with no gap in front of it),
//! drains the queue until idle, ships its batch and acknowledges the epoch;
//! `flush` returns when every flusher has. The item reaches the flusher by
//! a chain of `SeqCst` accesses: publish, the push's return (seen by the
//! flush caller), the epoch bump, the flusher's epoch load, its poll.
//!
//! # Close
//!
//! The owner closes its queue, then calls [`Handoff::wake_all`]. A flusher
//! leaves [`Handoff::run`] only when its poll reports `Closed` (closed and
//! drained), after shipping its batch and acknowledging every epoch, so a
//! later `flush` returns at once. A push that claimed a slot just before
//! the close still publishes and wakes a sleeper the usual way.
//!
//! # Time and loom
//!
//! Time comes from `crate::sync::time::now`. Under loom it stands still (one
//! fixed instant), so a model's choices never depend on the wall clock: a
//! zero delay is always over and a lingering batch ships only at its item
//! limit, a flush or the close. A timed nap is a yield under loom, and the
//! spin before sleeping is skipped (it changes no outcome, only the cost).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;

use crate::ring::Poll;
use crate::sync::blocking::{Condvar, Mutex, MutexGuard};
use crate::sync::thread::{self, Thread};
use crate::sync::time::{now, Instant};
use crate::sync::{fence, AtomicBool, AtomicUsize, Ordering};

/// Why a batch was shipped.
///
/// ```
/// use latchfree::batch::Batcher;
///
/// let b = Batcher::builder::<()>().max_items(3).build(|_: &mut Vec<u8>| Ok(()));
/// for i in 0..4 {
///     b.push(i).unwrap();
/// }
/// b.close();
/// let m = b.metrics();
/// // One batch shipped full (`FlushCause::Items`), the rest at the close.
/// assert_eq!((m.by_items, m.by_close), (1, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushCause {
    /// It reached `max_items`.
    Items,
    /// The next item would have taken it past `max_bytes`.
    Bytes,
    /// `max_delay` passed since its first item (or, with no delay, nothing
    /// more was waiting).
    Time,
    /// A manual flush (`Batcher::flush`).
    Manual,
    /// The batcher closed.
    Close,
}

/// The clock the flusher loop reads (frozen under loom, module docs);
/// [`Flush::first_at`] must come from it.
#[inline]
pub fn clock() -> Instant {
    now()
}

/// The queue side of a flusher, as [`Handoff::run`] drives it.
pub trait Flush {
    /// Polls the queue once without waiting, moving what is there into the
    /// batch (and shipping on the way at the item and byte limits).
    fn fill(&mut self) -> Poll;
    /// Hands the batch to the handler, unless it is empty.
    fn ship(&mut self, cause: FlushCause);
    /// When the current batch got its first item (by [`clock`]); `None`
    /// while it is empty.
    fn first_at(&self) -> Option<Instant>;
}

/// An idle flusher polls this many times with exponentially growing spins
/// between (127 spin hints in all), then
const SPIN_ROUNDS: u32 = 7;
/// this many times with a yield between, before it naps or sleeps.
const YIELD_ROUNDS: u32 = 8;
/// Longest nap of a lingering flusher between polls.
const LINGER_NAP: Duration = Duration::from_micros(50);

struct Sleeper {
    /// See the module's ground rules.
    sleeping: AtomicBool,
    /// The flusher's thread, once it has started.
    thread: Mutex<Option<Thread>>,
}

impl Sleeper {
    fn unpark(&self) {
        if let Some(t) = &*lock(&self.thread) {
            t.unpark();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a single assignment or read: a
    // poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The protocol's shared state. See the [module docs](self).
pub struct Handoff {
    sleepers: Box<[Sleeper]>,
    /// Pushes started and not finished.
    in_flight: AtomicUsize,
    /// Flushes asked for.
    epoch: AtomicUsize,
    /// The last epoch each flusher acknowledged.
    acks: Mutex<Vec<usize>>,
    acked: Condvar,
}

impl core::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handoff")
            .field("flushers", &self.sleepers.len())
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// The state for `flushers` flusher threads, indexed `0..flushers`.
    pub fn new(flushers: usize) -> Self {
        Self {
            sleepers: (0..flushers)
                .map(|_| Sleeper {
                    sleeping: AtomicBool::new(false),
                    thread: Mutex::new(None),
                })
                .collect(),
            in_flight: AtomicUsize::new(0),
            epoch: AtomicUsize::new(0),
            acks: Mutex::new(alloc::vec![0; flushers]),
            acked: Condvar::new(),
        }
    }

    /// A producer is about to publish.
    #[inline]
    pub fn begin_push(&self) {
        // SeqCst: a flusher settling a flush must see this count before it
        // can miss the publish (module docs on flush).
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// The producer's publish is over (`accepted`: it published). Wakes a
    /// sleeping flusher if the item was accepted.
    #[inline]
    pub fn end_push(&self, accepted: bool) {
        // SeqCst: a flusher that reads zero here sees our publish.
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if accepted {
            self.wake_one();
        }
    }

    fn wake_one(&self) {
        // SeqCst: pairs with the fence in `sleep` (module docs).
        fence(Ordering::SeqCst);
        for s in self.sleepers.iter() {
            // Relaxed would do after the fence; SeqCst keeps the argument
            // simple and costs nothing extra on the load.
            if s.sleeping.load(Ordering::SeqCst) {
                s.unpark();
                return;
            }
        }
    }

    /// Wakes every flusher (after a close, or for a flush).
    pub fn wake_all(&self) {
        for s in self.sleepers.iter() {
            s.unpark();
        }
    }

    /// Returns once every item whose push returned before this call has
    /// been shipped (or every flusher has exited).
    pub fn flush(&self) {
        // SeqCst: the release half orders the caller's view of earlier
        // pushes before the flushers' epoch load (module docs on flush).
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake_all();
        let mut acks = lock(&self.acks);
        while acks.iter().any(|&a| a < epoch) {
            acks = self.acked.wait(acks).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn ack(&self, index: usize, epoch: usize) {
        let mut acks = lock(&self.acks);
        acks[index] = epoch;
        drop(acks);
        self.acked.notify_all();
    }

    /// Waits until no push is in flight.
    fn settle(&self) {
        // SeqCst: pairs with `end_push`'s decrement.
        while self.in_flight.load(Ordering::SeqCst) != 0 {
            thread::yield_now();
        }
    }

    /// The flusher loop of flusher `index`, on its own thread: fills and
    /// ships batches (`max_delay` from a batch's first item, zero for
    /// natural batching), answers flushes, sleeps when idle, and returns
    /// after the close once everything was shipped.
    pub fn run<F: Flush>(&self, index: usize, max_delay: Duration, f: &mut F) {
        *lock(&self.sleepers[index].thread) = Some(thread::current());
        let mut seen = 0;
        loop {
            let p = f.fill();
            // SeqCst: the acquire half completes the flush chain (module
            // docs): the drain below sees every item pushed before it.
            let epoch = self.epoch.load(Ordering::SeqCst);
            if epoch != seen {
                seen = epoch;
                self.settle();
                while let Poll::Processed(_) = f.fill() {}
                f.ship(FlushCause::Manual);
                self.ack(index, epoch);
                continue;
            }
            match p {
                Poll::Processed(_) => {
                    if max_delay.is_zero() {
                        f.ship(FlushCause::Time);
                    }
                    continue;
                }
                Poll::Closed | Poll::Halted => {
                    f.ship(FlushCause::Close);
                    self.ack(index, usize::MAX);
                    return;
                }
                Poll::Idle | Poll::Gated => {}
            }
            let deadline = f.first_at().map(|t| t + max_delay);
            if let Some(d) = deadline {
                if now() >= d {
                    f.ship(FlushCause::Time);
                    continue;
                }
            }
            // Nothing waiting: poll a little longer before sleeping, so a
            // steady stream never pays for a wake-up.
            if self.spin(f, seen) {
                continue;
            }
            if let Some(d) = deadline {
                // Lingering: nap in short steps without asking producers
                // to wake us, so a filling batch costs them nothing.
                let left = d.saturating_duration_since(now());
                thread::park_timeout(left.min(LINGER_NAP));
                continue;
            }
            self.sleep(index, seen, f);
        }
    }

    /// Polls with growing spins, then yields, between; true as soon as
    /// there is something to do (items, a flush, the close).
    fn spin<F: Flush>(&self, f: &mut F, seen: usize) -> bool {
        if cfg!(latchfree_loom) {
            // Only multiplies the states; decides nothing (module docs).
            return false;
        }
        for round in 0..SPIN_ROUNDS + YIELD_ROUNDS {
            if round < SPIN_ROUNDS {
                for _ in 0..(1u32 << round) {
                    crate::sync::spin_loop();
                }
            } else {
                thread::yield_now();
            }
            // Relaxed epoch load: only a hint to stop spinning; the loop's
            // SeqCst load decides.
            if !matches!(f.fill(), Poll::Idle | Poll::Gated)
                || self.epoch.load(Ordering::Relaxed) != seen
            {
                return true;
            }
        }
        false
    }

    /// Sleeps (module docs): announce, fence, poll and check once more,
    /// park.
    fn sleep<F: Flush>(&self, index: usize, seen: usize, f: &mut F) {
        let me = &self.sleepers[index];
        me.sleeping.store(true, Ordering::SeqCst);
        // SeqCst: pairs with the fence in `wake_one` (module docs).
        fence(Ordering::SeqCst);
        let p = f.fill();
        if matches!(p, Poll::Idle | Poll::Gated) && self.epoch.load(Ordering::SeqCst) == seen {
            thread::park();
        }
        me.sleeping.store(false, Ordering::SeqCst);
    }
}
