//! A timer's shared state and the handle its scheduler holds: one
//! `AtomicU32` (`PENDING` -> `FIRED` | `CANCELLED` | `REJECTED`) settles a
//! cancel against the expiry, both sides compare-and-swapping from
//! `PENDING`, so exactly one wins and the canceller learns which.

use super::inbox::{Command, Inbox};
use crate::sync::{Arc, AtomicU32, Ordering};

/// The timer is waiting; its payload may still be delivered or cancelled.
pub(super) const PENDING: u32 = 0;
/// The owner won: the payload was (or is being) handed out.
pub(super) const FIRED: u32 = 1;
/// A canceller won: the payload will never be handed out.
pub(super) const CANCELLED: u32 = 2;
/// The owner could not store the timer (the structure was full); the
/// payload was dropped on the owner thread and never handed out.
pub(super) const REJECTED: u32 = 3;

/// Where a timer stands, as seen by [`TimerHandle::state`].
///
/// ```
/// use latchfree::wheel::shared::{Driver, Entry, TimerState};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
/// let fires = submitter.insert_at(1, 5).unwrap();
/// let cancelled = submitter.insert_at(2, 5).unwrap();
/// assert_eq!(fires.state(), TimerState::Pending);
/// assert!(cancelled.cancel());
/// assert_eq!(driver.poll_expired(10).unwrap().value, 1);
/// assert_eq!(fires.state(), TimerState::Fired);
/// assert_eq!(cancelled.state(), TimerState::Cancelled);
/// assert!(!fires.cancel()); // too late: it fired
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerState {
    /// Not fired, not cancelled.
    Pending,
    /// Fired: its payload was or will be handed to the owner's caller.
    Fired,
    /// Cancelled before it fired: its payload is never handed out.
    Cancelled,
    /// Never handed out and never will be: the owner's structure was full
    /// when the timer arrived, or the owner gave it up (see
    /// [`HandleState::abandon`]).
    Rejected,
}

/// One timer's state, shared by its handles and the entry in the core.
pub(super) struct Shared {
    /// One of `PENDING`, `FIRED`, `CANCELLED`, `REJECTED`; leaves `PENDING`
    /// exactly once.
    pub(super) state: AtomicU32,
    /// The core key, owner-only (ground rule 2); `key_gen == 0` = not yet
    /// inserted (real generations are odd).
    pub(super) key_index: AtomicU32,
    pub(super) key_gen: AtomicU32,
}

impl Shared {
    /// A pending timer not yet in the core.
    pub(super) fn new() -> Self {
        Shared {
            state: AtomicU32::new(PENDING),
            key_index: AtomicU32::new(0),
            key_gen: AtomicU32::new(0),
        }
    }
}

/// One scheduled timer, held by whoever scheduled it (clonable).
///
/// ```
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<&str>, Growable>::new(WheelConfig::new()));
/// let session = submitter.insert_at("session expired", 100).unwrap();
/// assert!(session.reset_at(300)); // any thread may move it
/// assert!(driver.poll_expired(200).is_none());
/// assert_eq!(driver.poll_expired(300).unwrap().value, "session expired");
/// assert!(!session.reset_at(400)); // already fired
/// ```
pub struct TimerHandle<T> {
    pub(super) shared: Arc<Shared>,
    pub(super) inbox: Arc<Inbox<T>>,
}

impl<T> Clone for TimerHandle<T> {
    fn clone(&self) -> Self {
        TimerHandle {
            shared: Arc::clone(&self.shared),
            inbox: Arc::clone(&self.inbox),
        }
    }
}

/// The payload type a driver over `C` stores: the shared state plus the
/// caller's value.
///
/// ```
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// // A driver's core stores `Entry<T>`, not `T`.
/// let core: Wheel<Entry<u64>, Growable> = Wheel::new(WheelConfig::new());
/// let (_driver, _submitter) = Driver::new(core);
/// ```
pub type Entry<T> = (HandleState, T);

/// The shared state of one timer as the core stores it (opaque).
///
/// ```
/// use latchfree::wheel::shared::{Driver, Entry, HandleState};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// let (driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
/// submitter.insert_at(7, 1).unwrap();
/// let mut core = driver.shutdown();
/// core.advance_to(1);
/// let (_state, value): (HandleState, u8) = core.pop_expired().unwrap().value;
/// assert_eq!(value, 7);
/// ```
pub struct HandleState(pub(super) Arc<Shared>);

impl HandleState {
    /// Settles a timer that will never be handed out, for an owner that
    /// shut its driver down and drops the timers left in the core (as the
    /// timer service does): `Pending -> Rejected`, so a later
    /// [`TimerHandle::cancel`] says it stopped nothing. `true` if the timer
    /// was pending (not cancelled in the meantime).
    ///
    /// ```
    /// use latchfree::wheel::shared::{Driver, Entry, TimerState};
    /// use latchfree::wheel::{Growable, Wheel, WheelConfig};
    ///
    /// let (driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
    /// let handle = submitter.insert_at(7, 100).unwrap();
    /// let mut core = driver.shutdown();
    /// let (state, _value) = core.poll_expired(u64::MAX).unwrap().value;
    /// assert!(state.abandon());
    /// assert_eq!(handle.state(), TimerState::Rejected);
    /// assert!(!handle.cancel()); // nothing left to stop
    /// ```
    pub fn abandon(&self) -> bool {
        // AcqRel: pairs with a canceller's CAS; exactly one leaves PENDING.
        self.0
            .state
            .compare_exchange(PENDING, REJECTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl<T> TimerHandle<T> {
    /// Cancels the timer. `true`: this call prevented it, the payload will
    /// never be handed out. `false`: it had already fired (its payload was
    /// or will be handed out), or was already cancelled or rejected.
    /// Exactly one of a cancel and the expiry wins.
    pub fn cancel(&self) -> bool {
        // AcqRel: pairs with the owner's AcqRel CAS in `poll_expired`; the two are
        // the only ways out of PENDING, so exactly one succeeds.
        let won = self
            .shared
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            // Let the owner free the slot now rather than at expiry. If the
            // driver is gone the payload went with it.
            let _ = self.inbox.push(Command::Cancel(Arc::clone(&self.shared)));
        }
        won
    }

    /// Moves a pending timer to `deadline` (the driver's time units). `true`
    /// if the request was queued; it is applied at the driver's next poll
    /// unless the timer fires or is cancelled first (then the reset is
    /// ignored; check [`state`](Self::state)).
    pub fn reset_at(&self, deadline: u64) -> bool {
        if self.state() != TimerState::Pending {
            return false;
        }
        self.inbox
            .push(Command::Reset(Arc::clone(&self.shared), deadline))
            .is_ok()
    }

    /// Where the timer stands now (may be stale at once under concurrency,
    /// except that `Fired`, `Cancelled` and `Rejected` are final).
    pub fn state(&self) -> TimerState {
        // Acquire: pairs with the CAS that left PENDING.
        match self.shared.state.load(Ordering::Acquire) {
            PENDING => TimerState::Pending,
            FIRED => TimerState::Fired,
            CANCELLED => TimerState::Cancelled,
            _ => TimerState::Rejected,
        }
    }
}

impl<T> core::fmt::Debug for TimerHandle<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TimerHandle")
            .field("state", &self.state())
            .finish()
    }
}
