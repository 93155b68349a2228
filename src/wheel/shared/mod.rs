//! Cross-thread hand-off: any thread schedules, cancels or resets timers;
//! one owner thread drives the timer structure. Needs `alloc`.
//!
//! Design (split by concern: `inbox` the command stack and backlog,
//! `handle` the per-timer state word, `timer_core` what a driver drives,
//! this file the driver and submitter): a Treiber-style intrusive stack of boxed commands (`Insert`,
//! `Cancel`, `Reset`) that producers push with one compare-and-swap and the
//! owner takes whole with one `swap`, then reverses to submission order.
//! Producers are lock-free (a failed CAS means another producer succeeded);
//! the owner's take is wait-free; there is no ABA because the owner never
//! pops single nodes. Each timer has a shared [`TimerHandle`] whose one
//! `AtomicU32` state (`PENDING` -> `FIRED` | `CANCELLED`) settles cancel
//! against expiry: both sides compare-and-swap from `PENDING`, so exactly
//! one wins, and the canceller learns which.
//!
//! Ground rules:
//! - `head` is null (empty), a node pointer (the newest command, linked to
//!   older ones through `next`), or `CLOSED` once the [`Driver`] is gone;
//!   after `CLOSED` nothing is ever pushed again.
//! - A timer's `key` words are written and read only by the owner thread
//!   (the `Driver` is `Send` but not `Sync`), so `Relaxed` suffices.
//! - Payloads are handed to the owner's caller only after the owner won the
//!   `PENDING -> FIRED` swap; a payload whose timer was cancelled is dropped
//!   on the owner thread.
//!
//! Allocation: one `Arc` per timer and one `Box` per command (the core
//! structures themselves stay allocation-free per timer).

use core::marker::PhantomData;
use core::ptr;

use crate::sync::{Arc, Ordering};

mod handle;
mod inbox;
mod timer_core;

use crate::arena::RawKey;
use handle::{Shared, FIRED, PENDING, REJECTED};
use inbox::{Backlog, Command, Inbox};

pub use handle::{Entry, HandleState, TimerHandle, TimerState};
pub use timer_core::TimerCore;

/// A timer delivered by [`Driver::poll_expired`].
///
/// ```
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<&str>, Growable>::new(WheelConfig::new()));
/// submitter.insert_at("tick", 42).unwrap();
/// let fired = driver.poll_expired(50).unwrap();
/// assert_eq!((fired.deadline, fired.value), (42, "tick"));
/// ```
#[derive(Debug)]
pub struct Fired<T> {
    /// The payload.
    pub value: T,
    /// Its deadline, as last set.
    pub deadline: u64,
}

/// The owner side: drives a [`TimerCore`] and applies commands from every
/// [`Submitter`]. `Send` but not `Sync`: one thread at a time drives it.
///
/// ```
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<String>, Growable>::new(WheelConfig::new()));
/// let workers: Vec<_> = (0..2u64)
///     .map(|t| {
///         let s = submitter.clone();
///         std::thread::spawn(move || s.insert_at(format!("from {t}"), 10 + t).unwrap())
///     })
///     .collect();
/// let handles: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
/// // The owner thread applies the commands and fires what is due.
/// assert!(driver.poll_expired(5).is_none());
/// let mut fired: Vec<String> = std::iter::from_fn(|| driver.poll_expired(20)).map(|f| f.value).collect();
/// fired.sort();
/// assert_eq!(fired, ["from 0", "from 1"]);
/// assert!(handles.iter().all(|h| !h.cancel()));
/// ```
pub struct Driver<T, C: TimerCore<Value = Entry<T>>> {
    core: C,
    inbox: Arc<Inbox<T>>,
    /// Taken commands not yet applied (non-empty only after a panic).
    backlog: Backlog<T>,
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

/// The producer side: any number of threads, cloned freely.
///
/// ```
/// use latchfree::wheel::shared::{Closed, Driver, Entry};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
/// submitter.insert_at(1, 1).unwrap();
/// let core = driver.shutdown(); // the accepted timer is in the core
/// assert_eq!(core.len(), 1);
/// assert!(matches!(submitter.insert_at(2, 2), Err(Closed(2)))); // value handed back
/// ```
pub struct Submitter<T> {
    inbox: Arc<Inbox<T>>,
}

impl<T> Clone for Submitter<T> {
    fn clone(&self) -> Self {
        Submitter {
            inbox: Arc::clone(&self.inbox),
        }
    }
}

impl<T, C: TimerCore<Value = Entry<T>>> Driver<T, C> {
    /// Wraps an (empty) core and returns the driver and the first submitter.
    pub fn new(core: C) -> (Self, Submitter<T>) {
        let inbox = Arc::new(Inbox::new());
        (
            Driver {
                core,
                inbox: Arc::clone(&inbox),
                backlog: Backlog::EMPTY,
                _not_sync: PhantomData,
            },
            Submitter { inbox },
        )
    }

    /// A new submitter for this driver.
    pub fn submitter(&self) -> Submitter<T> {
        Submitter {
            inbox: Arc::clone(&self.inbox),
        }
    }

    /// Applies every submitted command (in submission order per thread).
    /// [`poll_expired`](Self::poll_expired) does this first; call it alone to keep
    /// [`next_deadline`](Self::next_deadline) current.
    ///
    /// Applying a command may drop a payload (a timer cancelled before it
    /// was inserted, or refused by a full core); if that `Drop` panics, the
    /// panic propagates and the commands after it wait, in order, for the
    /// next call: none is lost.
    pub fn apply_commands(&mut self) {
        self.apply_backlog();
        self.backlog = self.inbox.take();
        self.apply_backlog();
    }

    fn apply_backlog(&mut self) {
        while let Some(cmd) = self.backlog.pop() {
            apply(&mut self.core, cmd);
        }
    }

    /// Applies submitted commands, then hands out one timer due at or
    /// before `now` whose cancel it beat. Timers cancelled in the race are
    /// dropped here, on the owner thread.
    pub fn poll_expired(&mut self, now: u64) -> Option<Fired<T>> {
        self.apply_commands();
        while let Some(((st, value), deadline)) = self.core.poll_expired(now) {
            // AcqRel: exactly one of this CAS and the canceller's CAS leaves
            // PENDING; Acquire/Release make the winner's view consistent.
            if st
                .0
                .state
                .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(Fired { value, deadline });
            }
        }
        None
    }

    /// When the next [`poll_expired`](Self::poll_expired) may have work, as of the last
    /// applied commands.
    pub fn next_deadline(&self) -> Option<u64> {
        self.core.next_deadline()
    }

    /// Timers held by the core (cancelled ones until their cancel command
    /// is applied).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether the core holds no timer.
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// The core, for inspection.
    pub fn core(&self) -> &C {
        &self.core
    }

    /// Stops accepting submissions (later ones get their value back as
    /// [`Closed`]) and applies everything submitted before, so the returned
    /// core holds every timer that was accepted and has not fired or been
    /// cancelled: nothing accepted is lost.
    pub fn shutdown(mut self) -> C {
        self.apply_backlog();
        self.backlog = self.inbox.close();
        self.apply_backlog();
        debug_assert!(self.backlog.is_empty());
        // Drop closes again: a no-op once closed.
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; each field is read
        // out exactly once (the `inbox` Arc and the empty backlog are
        // released here, the core returned).
        unsafe {
            drop(ptr::read(&me.inbox));
            drop(ptr::read(&me.backlog));
            ptr::read(&me.core)
        }
    }
}

fn apply<T, C: TimerCore<Value = Entry<T>>>(core: &mut C, cmd: Command<T>) {
    match cmd {
        Command::Insert(shared, deadline, value) => {
            // Acquire: pairs with the canceller's AcqRel CAS, so a timer
            // cancelled before it reached us is dropped here.
            if shared.state.load(Ordering::Acquire) != PENDING {
                return;
            }
            let st = HandleState(Arc::clone(&shared));
            match core.try_insert_at((st, value), deadline) {
                Ok(key) => {
                    // Relaxed: owner-only words (ground rule 2).
                    shared.key_index.store(key.index, Ordering::Relaxed);
                    shared.key_gen.store(key.gen, Ordering::Relaxed);
                }
                Err(_dropped) => {
                    let _ = shared.state.compare_exchange(
                        PENDING,
                        REJECTED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
            }
        }
        Command::Cancel(shared) => {
            if let Some(key) = key_of(&shared) {
                drop(core.remove(key));
            }
        }
        Command::Reset(shared, deadline) => {
            if let Some(key) = key_of(&shared) {
                core.reset_at(key, deadline);
            }
        }
    }
}

impl<T, C: TimerCore<Value = Entry<T>>> Drop for Driver<T, C> {
    fn drop(&mut self) {
        // Later submissions get their value back instead of leaking.
        drop(self.inbox.close());
    }
}

fn key_of(shared: &Shared) -> Option<RawKey> {
    // Relaxed: owner-only words (ground rule 2).
    let gen = shared.key_gen.load(Ordering::Relaxed);
    if gen == 0 {
        return None;
    }
    Some(RawKey {
        index: shared.key_index.load(Ordering::Relaxed),
        gen,
    })
}

/// The driver is gone: the one crate-wide [`Closed`], carrying the value
/// back.
///
/// ```
/// use latchfree::wheel::shared::{Closed, Driver, Entry};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (driver, submitter) = Driver::new(Wheel::<Entry<Vec<u8>>, Growable>::new(WheelConfig::new()));
/// drop(driver);
/// let err = submitter.insert_at(vec![1, 2, 3], 5).unwrap_err();
/// assert_eq!(err.to_string(), "closed");
/// assert_eq!(err.into_inner(), [1, 2, 3]);
/// ```
pub use crate::error::Closed;

impl<T> Submitter<T> {
    /// Schedules `value` for `deadline` (the driver's time units: the
    /// driver keeps no clock, so the deadline is absolute). Lock-free;
    /// takes effect at the driver's next poll. Gives the value back if the
    /// driver has been dropped.
    pub fn insert_at(&self, value: T, deadline: u64) -> Result<TimerHandle<T>, Closed<T>> {
        let shared = Arc::new(Shared::new());
        match self
            .inbox
            .push(Command::Insert(Arc::clone(&shared), deadline, value))
        {
            Ok(()) => Ok(TimerHandle {
                shared,
                inbox: Arc::clone(&self.inbox),
            }),
            Err(Command::Insert(_, _, value)) => Err(Closed(value)),
            Err(_) => unreachable!("push gives back the command it was given"),
        }
    }
}

impl<T> core::fmt::Debug for Submitter<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Submitter")
    }
}

impl<T, C: TimerCore<Value = Entry<T>>> core::fmt::Debug for Driver<T, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("len", &self.core.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
