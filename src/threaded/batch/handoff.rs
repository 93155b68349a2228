//! The batcher's hand-off protocol: how producers, `flush` and `close`
//! callers and flusher threads meet.
//!
//! It is kept apart from the batcher (which owns the queue, the batch and
//! the handler) so that the loom models in `loom-tests/tests/batch.rs` run
//! exactly this code, flusher loop included, with loom's threads, mutex,
//! condition variable and clock. The batcher supplies the queue side
//! through [`Flush`].
//!
//! # Ground rules
//!
//! - The flush *target* (under the `flushes` mutex) is the highest claim
//!   position any [`Handoff::flush`] caller read from the queue: every item
//!   accepted before that call has a sequence below it. Every sequence below
//!   it is claimed, and a claimed slot is written and published without
//!   waiting (a producer waits for room *before* it claims), so a target is
//!   always reached without help from a producer still waiting for room.
//! - `epoch` counts flushes (it only grows, wrapping). A flush raises the
//!   target and bumps the epoch inside one critical section of the mutex,
//!   so a flusher that reads both under the mutex gets a target that covers
//!   every flush up to that epoch.
//! - `acks[i]` is the last epoch flusher `i` answered (`None` once it
//!   exited); `covered` the last epoch some flusher found *reached*: every
//!   sequence below its target taken by some flusher. Both live under the
//!   mutex, with the `acked` condition variable.
//! - A flusher's [`Flush::position`] is one past the highest sequence it
//!   took (its consumer's position with one flusher). Only its owner reads
//!   it; flushers share progress only through `covered`.
//!
//! # Sleeping and waking
//!
//! Flushers sleep on the adapters' one [`Doorbell`]: an idle flusher's
//! check (under the doorbell's lock, after its fence) takes what the queue
//! holds and reads the epoch; only if both show nothing new does it wait.
//! A producer publishes and rings ([`Handoff::pushed`]): by the doorbell's
//! two fences either it sees the sleeper or the sleeper's check sees the
//! item. `flush` bumps the epoch and `close` closes the queue, then both
//! ring every waiter ([`Handoff::wake_all`]); a check under the lock sees
//! the change or its thread is waiting when the wake-up comes. The check
//! only moves items out of the queue ([`Flush::take`]); no user code runs
//! under the doorbell's lock.
//!
//! A flusher whose batch lingers (a delay not yet over) *naps* instead:
//! short timed waits that producers do not pay to cut short, so a filling
//! batch costs them nothing; `flush` and `close` do cut them short.
//!
//! # Flush
//!
//! [`Handoff::flush`] raises the target to the caller's claim position,
//! bumps the epoch and wakes every flusher. A flusher that sees a new epoch
//! reads `(epoch, target)` under the mutex and keeps polling until the
//! target is reached: its own position is at or past it (it took the item
//! just below it, so everything below was claimed before), its poll says
//! `Closed` (everything claimed is taken), or `covered` says another flusher
//! found it so. Then it ships its batch and acknowledges; `flush` returns
//! when every flusher has. Nothing here waits for a push in flight: a
//! producer blocked on a full queue has claimed nothing, and the flushers
//! keep draining, so it gets its room.
//!
//! Why a flusher's batch holds everything of the flush below the target
//! that it took: a worker takes a sequence by its claim CAS and moves the
//! item into its batch within that same poll. A flusher acknowledges only
//! after it learnt (by its own poll, or through the mutex from the flusher
//! that did) that the claim position had passed the target. Had it claimed
//! an item below the target after that, its claim CAS would come after the
//! one that passed the target in the claim word's modification order, so
//! the item would lie above the target.
//!
//! # Close
//!
//! The owner closes its queue, then calls [`Handoff::wake_all`]. A flusher
//! leaves [`Handoff::run`] only when its poll reports `Closed` (closed and
//! drained), after answering every flush it saw, shipping its batch and
//! marking itself gone, so a later `flush` returns at once. A push that
//! claimed a slot just before the close still publishes and wakes a sleeper
//! the usual way, but only one: with several flushers, another may have
//! gone to sleep on a check that saw that slot claimed and unpublished
//! (`Poll::Unfinished`), and no later push will ring for it. So a flusher
//! that exits rings every waiter ([`Handoff::wake_all`]) after its last
//! poll; a sleeper's check then sees the queue drained (`Closed`) or the
//! next claimed slot, whose publish rings in turn.
//!
//! # Time and loom
//!
//! Time comes from `crate::sync::time::now`. Under loom it stands still (one
//! fixed instant), so a model's choices never depend on the wall clock: a
//! zero delay is always over and a lingering batch ships only at its item
//! limit, a flush or the close. A nap is a yield under loom, and the
//! backoff before sleeping is skipped (it changes no outcome, only the
//! cost).

use alloc::vec::Vec;
use core::task::Waker;
use core::time::Duration;

use crate::ring::Poll;
use crate::sync::blocking::{Condvar, Mutex, MutexGuard};
use crate::sync::time::{now, Instant};
use crate::sync::{AtomicUsize, Backoff, Ordering};
use crate::threaded::doorbell::{Check, Doorbell};

/// Why a batch was shipped.
///
/// ```
/// use latchfree::batch::Batcher;
///
/// let b = Batcher::builder::<()>().max_items(3).build(|_: &mut Vec<u8>| Ok(())).unwrap();
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
    /// Polls the queue once without waiting and moves what is there into
    /// the flusher (at most what fits in the batch). Runs no user code: it
    /// is also the sleep check, under the doorbell's lock. Called only
    /// while the batch has room ([`absorb`](Self::absorb) ships a full one;
    /// a flusher sleeps only with an empty batch). Returns `Processed`
    /// (of 0 if it moved nothing) whenever it may have freed queue slots,
    /// so that [`absorb`](Self::absorb), which tells pushers waiting for
    /// room, runs before any sleep: a work-group worker that lost a claim
    /// race withdraws an announcement that held slots (`Worker::released`).
    fn take(&mut self) -> Poll;
    /// Batches what [`take`](Self::take) moved in, shipping at the item and
    /// byte limits (this runs the weigher and the handler).
    fn absorb(&mut self);
    /// Hands the batch to the handler, unless it is empty.
    fn ship(&mut self, cause: FlushCause);
    /// When the current batch got its first item (by [`clock`]); `None`
    /// while it is empty.
    fn first_at(&self) -> Option<Instant>;
    /// One past the highest sequence this flusher has taken from the queue
    /// (0 before the first): a lone consumer's position, or in a work
    /// group the end of this worker's latest claim.
    fn position(&self) -> u64;
}

/// Longest nap of a lingering flusher between polls (also of a flusher
/// waiting for another to reach a flush target).
const LINGER_NAP: Duration = Duration::from_micros(50);

/// [`Flush::take`] then [`Flush::absorb`]: one poll, batched.
fn fill<F: Flush>(f: &mut F) -> Poll {
    let p = f.take();
    f.absorb();
    p
}

/// Whether a poll found nothing to do.
fn idle(p: Poll) -> bool {
    matches!(p, Poll::Idle | Poll::Unfinished | Poll::Gated)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few assignments that leave the data
    // consistent at every step, and none runs user code: a poisoned lock
    // still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether epoch `a` is `b` or later. Epochs wrap; the ones compared are
/// never more than a few flushes apart.
fn at_or_after(a: usize, b: usize) -> bool {
    a.wrapping_sub(b) <= usize::MAX / 2
}

/// What flush callers and flushers share under the mutex (ground rules).
struct Flushes {
    target: u64,
    acks: Vec<Option<usize>>,
    covered: usize,
    /// Tasks of `flush_async`/`close_async` futures waiting for
    /// acknowledgements; every `ack` wakes (and empties) them.
    wakers: Vec<Waker>,
}

impl Flushes {
    /// Whether every flusher answered `epoch` or exited (`None`: whether
    /// every flusher exited).
    fn answered(&self, epoch: Option<usize>) -> bool {
        self.acks.iter().all(|a| match (*a, epoch) {
            (None, _) => true,
            (Some(e), Some(want)) => at_or_after(e, want),
            (Some(_), None) => false,
        })
    }
}

/// The protocol's shared state. See the [module docs](self).
pub struct Handoff {
    /// Where idle flushers sleep and lingering ones nap.
    bell: Doorbell,
    flushers: usize,
    /// Flushes asked for (wrapping).
    epoch: AtomicUsize,
    flushes: Mutex<Flushes>,
    acked: Condvar,
}

impl core::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handoff")
            .field("flushers", &self.flushers)
            .field("sleeping", &self.bell.sleepers())
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// The state for `flushers` flusher threads, indexed `0..flushers`.
    pub fn new(flushers: usize) -> Self {
        Self {
            bell: Doorbell::new(),
            flushers,
            epoch: AtomicUsize::new(0),
            flushes: Mutex::new(Flushes {
                target: 0,
                acks: alloc::vec![Some(0); flushers],
                covered: 0,
                wakers: Vec::new(),
            }),
            acked: Condvar::new(),
        }
    }

    /// A producer published an item: wakes a sleeping flusher, if any.
    #[inline]
    pub fn pushed(&self) {
        self.bell.ring();
    }

    /// Wakes every flusher, sleeping or napping. Call after the queue's
    /// close (a flush calls it itself).
    pub fn wake_all(&self) {
        self.bell.ring_all();
    }

    /// Returns once every item below `target` has been shipped (or every
    /// flusher has exited). `target` is the queue's claim position read by
    /// the caller, so it covers every push that returned before this call.
    /// Waits for no push: see the module docs.
    pub fn flush(&self, target: u64) {
        let epoch = self.start_flush(target);
        let mut fl = lock(&self.flushes);
        while !fl.answered(Some(epoch)) {
            fl = self.acked.wait(fl).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The first half of [`flush`](Self::flush): raises the target, bumps
    /// the epoch and wakes the flushers, without waiting. Returns the
    /// epoch to wait for ([`poll_answered`](Self::poll_answered)).
    pub fn start_flush(&self, target: u64) -> usize {
        let epoch = {
            let mut fl = lock(&self.flushes);
            fl.target = fl.target.max(target);
            // SeqCst: a flusher that sees the bump locks the mutex after
            // this section and reads the raised target (module docs).
            self.epoch.fetch_add(1, Ordering::SeqCst).wrapping_add(1)
        };
        self.wake_all();
        epoch
    }

    /// Whether every flusher answered `epoch` (or, for `None`, exited); if
    /// not, registers `waker` to be woken by the next acknowledgement. The
    /// check and the registration share one critical section with `ack`'s
    /// update, so no acknowledgement is missed.
    pub fn poll_answered(&self, epoch: Option<usize>, waker: &Waker) -> bool {
        let mut fl = lock(&self.flushes);
        if fl.answered(epoch) {
            return true;
        }
        if !fl.wakers.iter().any(|w| w.will_wake(waker)) {
            fl.wakers.push(waker.clone());
        }
        false
    }

    /// Flusher `index` answered `epoch` (`None`: it exited).
    fn ack(&self, index: usize, epoch: Option<usize>) {
        let mut fl = lock(&self.flushes);
        fl.acks[index] = epoch;
        let wakers = core::mem::take(&mut fl.wakers);
        drop(fl);
        self.acked.notify_all();
        // After the lock: a waker is user code.
        for w in wakers {
            w.wake();
        }
    }

    /// Answers the flushes up to the current epoch (module docs): polls
    /// until their target is reached, ships, acknowledges. Returns the
    /// epoch answered.
    fn answer<F: Flush>(&self, index: usize, f: &mut F) -> usize {
        let (epoch, target) = {
            let fl = lock(&self.flushes);
            (self.epoch.load(Ordering::SeqCst), fl.target)
        };
        let backoff = Backoff::new();
        loop {
            let p = fill(f);
            if f.position() >= target || matches!(p, Poll::Closed | Poll::Halted) {
                let mut fl = lock(&self.flushes);
                if at_or_after(epoch, fl.covered) {
                    fl.covered = epoch;
                }
                break;
            }
            if let Poll::Processed(_) = p {
                backoff.reset();
                continue;
            }
            // Nothing for us below the target: another flusher took it (and
            // will say so) or a producer is between its claim and its
            // publish (and will publish without waiting).
            if at_or_after(lock(&self.flushes).covered, epoch) {
                break;
            }
            if backoff.is_completed() {
                // Neither of them rings for us: nap and look again.
                self.bell.nap(LINGER_NAP, || false);
            } else {
                backoff.snooze();
            }
        }
        f.ship(FlushCause::Manual);
        self.ack(index, Some(epoch));
        epoch
    }

    /// The flusher loop of flusher `index`, on its own thread: fills and
    /// ships batches (`max_delay` from a batch's first item, zero for
    /// natural batching), answers flushes, sleeps when idle, and returns
    /// after the close once everything was shipped.
    pub fn run<F: Flush>(&self, index: usize, max_delay: Duration, f: &mut F) {
        let mut seen = 0;
        loop {
            let p = fill(f);
            // SeqCst: pairs with the bump in `flush` (module docs).
            if self.epoch.load(Ordering::SeqCst) != seen {
                seen = self.answer(index, f);
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
                    self.ack(index, None);
                    // A fellow flusher may sleep on a check that saw a slot
                    // claimed before the close and not yet published; that
                    // publish rang one sleeper, maybe us (module docs,
                    // "Close"). Our poll drained what it waited for.
                    self.wake_all();
                    return;
                }
                Poll::Idle | Poll::Unfinished | Poll::Gated => {}
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
                // to wake us, so a filling batch costs them nothing; a
                // flush or the close cuts the nap short.
                let left = d.saturating_duration_since(now());
                self.bell.nap(left.min(LINGER_NAP), || {
                    self.epoch.load(Ordering::SeqCst) != seen
                });
                continue;
            }
            self.sleep(seen, f);
            // The sleep's check may have taken items (up to a full batch).
            f.absorb();
        }
    }

    /// Polls with a backoff (spins, then yields) between; true as soon as
    /// there is something to do (items, a flush, the close).
    fn spin<F: Flush>(&self, f: &mut F, seen: usize) -> bool {
        if cfg!(latchfree_loom) {
            // Only multiplies the states; decides nothing (module docs).
            return false;
        }
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            // Relaxed epoch load: only a hint to stop spinning; the loop's
            // SeqCst load decides.
            if !idle(fill(f)) || self.epoch.load(Ordering::Relaxed) != seen {
                return true;
            }
        }
        false
    }

    /// Sleeps on the doorbell until the queue holds something, a flush
    /// comes or the queue closes (module docs). The check only takes.
    fn sleep<F: Flush>(&self, seen: usize, f: &mut F) {
        self.bell.sleep(|_| {
            // SeqCst: pairs with the bump in `flush`, as in `run`.
            if !idle(f.take()) || self.epoch.load(Ordering::SeqCst) != seen {
                Check::Done(())
            } else {
                Check::Wait(None)
            }
        });
    }
}
