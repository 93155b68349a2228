//! Cross-thread hand-off: any thread schedules, cancels or resets timers;
//! one owner thread drives the timer structure. Needs `alloc`.
//!
//! Design: a Treiber-style intrusive stack of boxed commands (`Insert`,
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

use alloc::boxed::Box;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use crate::queue::arena::{RawKey, StorageKind};
use crate::queue::DelayQueue;
use crate::sync::{Arc, AtomicPtr, AtomicU32, Ordering};

use super::{TimerKey, Wheel};

/// A single-owner timer structure the [`Driver`] can drive: implemented by
/// [`Wheel`] and [`DelayQueue`].
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::queue::DelayQueue;
/// use latchfree::wheel::shared::{Driver, Entry, TimerCore};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// // The same hand-off drives a wheel (ticks) or a delay queue (exact order).
/// fn drive<C: TimerCore<Value = Entry<u32>>>(core: C) -> Vec<u32> {
///     let (mut driver, submitter) = Driver::new(core);
///     submitter.schedule(20, 2).unwrap();
///     submitter.schedule(10, 1).unwrap();
///     std::iter::from_fn(|| driver.poll(100)).map(|f| f.value).collect()
/// }
/// assert_eq!(drive(Wheel::<Entry<u32>, Growable>::new(WheelConfig::new())), [1, 2]);
/// assert_eq!(drive(DelayQueue::<Entry<u32>, Growable>::new()), [1, 2]);
/// ```
pub trait TimerCore {
    /// The payload type.
    type Value;
    /// Adds a timer; gives the value back when full.
    fn insert(&mut self, deadline: u64, value: Self::Value) -> Result<RawKey, Self::Value>;
    /// Removes a live timer.
    fn cancel(&mut self, key: RawKey) -> Option<Self::Value>;
    /// Moves a live timer.
    fn reset(&mut self, key: RawKey, deadline: u64) -> bool;
    /// Takes one timer due at or before `now`.
    fn poll(&mut self, now: u64) -> Option<(u64, Self::Value)>;
    /// When the next poll may have work (a lower bound for a wheel).
    fn next_deadline(&self) -> Option<u64>;
    /// Timers held.
    fn len(&self) -> usize;
    /// Whether no timer is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V, K: StorageKind> TimerCore for Wheel<V, K> {
    type Value = V;
    fn insert(&mut self, deadline: u64, value: V) -> Result<RawKey, V> {
        Wheel::insert(self, deadline, value).map(|k| k.0)
    }
    fn cancel(&mut self, key: RawKey) -> Option<V> {
        Wheel::cancel(self, TimerKey(key))
    }
    fn reset(&mut self, key: RawKey, deadline: u64) -> bool {
        Wheel::reset(self, TimerKey(key), deadline)
    }
    fn poll(&mut self, now: u64) -> Option<(u64, V)> {
        Wheel::poll(self, now).map(|e| (e.deadline, e.value))
    }
    fn next_deadline(&self) -> Option<u64> {
        self.next_expiration()
    }
    fn len(&self) -> usize {
        Wheel::len(self)
    }
}

impl<V, K: StorageKind> TimerCore for DelayQueue<V, K> {
    type Value = V;
    fn insert(&mut self, deadline: u64, value: V) -> Result<RawKey, V> {
        self.insert_at(value, deadline).map(|k| k.raw())
    }
    fn cancel(&mut self, key: RawKey) -> Option<V> {
        self.remove(crate::queue::DelayKey(crate::queue::Handle(key)))
    }
    fn reset(&mut self, key: RawKey, deadline: u64) -> bool {
        DelayQueue::reset(
            self,
            crate::queue::DelayKey(crate::queue::Handle(key)),
            deadline,
        )
    }
    fn poll(&mut self, now: u64) -> Option<(u64, V)> {
        self.poll_expired(now).map(|e| (e.deadline, e.value))
    }
    fn next_deadline(&self) -> Option<u64> {
        DelayQueue::next_deadline(self)
    }
    fn len(&self) -> usize {
        DelayQueue::len(self)
    }
}

/// The timer is waiting; its payload may still be delivered or cancelled.
const PENDING: u32 = 0;
/// The owner won: the payload was (or is being) handed out.
const FIRED: u32 = 1;
/// A canceller won: the payload will never be handed out.
const CANCELLED: u32 = 2;
/// The owner could not store the timer (the structure was full); the
/// payload was dropped on the owner thread and never handed out.
const REJECTED: u32 = 3;

/// Where a timer stands, as seen by [`TimerHandle::state`].
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry, TimerState};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
/// let fires = submitter.schedule(5, 1).unwrap();
/// let cancelled = submitter.schedule(5, 2).unwrap();
/// assert_eq!(fires.state(), TimerState::Pending);
/// assert!(cancelled.cancel());
/// assert_eq!(driver.poll(10).unwrap().value, 1);
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
    /// The owner's structure was full when the timer arrived; dropped.
    Rejected,
}

struct Shared {
    /// One of `PENDING`, `FIRED`, `CANCELLED`, `REJECTED`; leaves `PENDING`
    /// exactly once.
    state: AtomicU32,
    /// The core key, owner-only (ground rule 2); `key_gen == 0` = not yet
    /// inserted (real generations are odd).
    key_index: AtomicU32,
    key_gen: AtomicU32,
}

enum Command<T> {
    Insert(Arc<Shared>, u64, T),
    Cancel(Arc<Shared>),
    Reset(Arc<Shared>, u64),
}

struct Node<T> {
    cmd: Command<T>,
    next: *mut Node<T>,
}

struct Inbox<T> {
    head: AtomicPtr<Node<T>>,
}

// SAFETY: the inbox owns boxed commands that carry `T`s from producer
// threads to the owner thread: sending them needs `T: Send`, nothing more
// (no `&T` is ever shared).
unsafe impl<T: Send> Send for Inbox<T> {}
// SAFETY: all shared access goes through the atomic `head`; nodes are
// exclusively owned by one thread at a time (the producer before its CAS,
// the owner after its swap).
unsafe impl<T: Send> Sync for Inbox<T> {}

impl<T> Inbox<T> {
    fn closed() -> *mut Node<T> {
        NonNull::dangling().as_ptr()
    }

    /// Pushes `cmd`; gives it back if the owner is gone.
    fn push(&self, cmd: Command<T>) -> Result<(), Command<T>> {
        let node = Box::into_raw(Box::new(Node {
            cmd,
            next: ptr::null_mut(),
        }));
        // Relaxed: the value is only used as the CAS's expected value.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head == Self::closed() {
                // SAFETY: `node` came from `Box::into_raw` above and was never
                // published.
                let node = unsafe { Box::from_raw(node) };
                return Err(node.cmd);
            }
            // SAFETY: `node` is still exclusively ours until the CAS succeeds.
            unsafe { (*node).next = head };
            // Release: publishes the node's contents to the owner's Acquire
            // `swap` in `take`/`close`.
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => {
                    head = actual;
                    crate::sync::spin_loop();
                }
            }
        }
    }

    /// Takes every command, oldest first. Owner only.
    fn take(&self) -> Backlog<T> {
        // Acquire: pairs with the producers' Release CAS, so their nodes'
        // contents are visible.
        let p = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        if p == Self::closed() {
            self.head.store(p, Ordering::Relaxed);
            return Backlog::EMPTY;
        }
        // SAFETY: the swap took the whole list (or null) off the inbox.
        unsafe { Backlog::from_newest(p) }
    }

    /// Refuses every later push and returns what was queued, oldest first.
    /// Owner only.
    fn close(&self) -> Backlog<T> {
        // Acquire: as in `take`.
        let p = self.head.swap(Self::closed(), Ordering::Acquire);
        if p == Self::closed() {
            return Backlog::EMPTY;
        }
        // SAFETY: as in `take`.
        unsafe { Backlog::from_newest(p) }
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        drop(self.close());
    }
}

/// Commands taken off the inbox and not yet applied, oldest first: owned
/// by the owner thread alone. Applying one may run user code (`T::drop` of
/// a cancelled or refused payload) that panics; the rest stay here, to be
/// applied first by the next call, so a panic loses no command.
struct Backlog<T> {
    /// Null, or the oldest node (leaked `Box`), linked to newer ones.
    oldest: *mut Node<T>,
}

// SAFETY: the backlog owns its nodes, which carry `T`s; moving it between
// threads moves them (`T: Send`).
unsafe impl<T: Send> Send for Backlog<T> {}

impl<T> Backlog<T> {
    const EMPTY: Self = Backlog {
        oldest: ptr::null_mut(),
    };

    /// Reverses a taken list (newest first) to submission order.
    ///
    /// # Safety
    ///
    /// `p` is null or the newest node of a list this thread alone owns.
    unsafe fn from_newest(mut p: *mut Node<T>) -> Self {
        let mut rev: *mut Node<T> = ptr::null_mut();
        while !p.is_null() {
            // SAFETY: every node in the taken list is a leaked Box now owned
            // by this thread alone (the caller's contract).
            unsafe {
                let next = (*p).next;
                (*p).next = rev;
                rev = p;
                p = next;
            }
        }
        Backlog { oldest: rev }
    }

    fn is_empty(&self) -> bool {
        self.oldest.is_null()
    }

    /// Takes the oldest command off the backlog.
    fn pop(&mut self) -> Option<Command<T>> {
        if self.oldest.is_null() {
            return None;
        }
        // SAFETY: a non-null `oldest` is a leaked Box the backlog owns; it
        // is unlinked here, so each node is reclaimed exactly once.
        let node = unsafe { Box::from_raw(self.oldest) };
        self.oldest = node.next;
        Some(node.cmd)
    }
}

impl<T> Drop for Backlog<T> {
    fn drop(&mut self) {
        /// If a command's drop panics, drops the rest while unwinding.
        struct Rest<'a, T>(&'a mut Backlog<T>);
        impl<T> Drop for Rest<'_, T> {
            fn drop(&mut self) {
                while let Some(cmd) = self.0.pop() {
                    drop(cmd);
                }
            }
        }
        while let Some(cmd) = self.pop() {
            let rest = Rest(self);
            drop(cmd);
            core::mem::forget(rest);
        }
    }
}

/// A timer delivered by [`Driver::poll`].
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<&str>, Growable>::new(WheelConfig::new()));
/// submitter.schedule(42, "tick").unwrap();
/// let fired = driver.poll(50).unwrap();
/// assert_eq!((fired.deadline, fired.value), (42, "tick"));
/// ```
#[derive(Debug)]
pub struct Fired<T> {
    /// Its deadline, as last set.
    pub deadline: u64,
    /// The payload.
    pub value: T,
}

/// The owner side: drives a [`TimerCore`] and applies commands from every
/// [`Submitter`]. `Send` but not `Sync`: one thread at a time drives it.
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<String>, Growable>::new(WheelConfig::new()));
/// let workers: Vec<_> = (0..2u64)
///     .map(|t| {
///         let s = submitter.clone();
///         std::thread::spawn(move || s.schedule(10 + t, format!("from {t}")).unwrap())
///     })
///     .collect();
/// let handles: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
/// // The owner thread applies the commands and fires what is due.
/// assert!(driver.poll(5).is_none());
/// let mut fired: Vec<String> = std::iter::from_fn(|| driver.poll(20)).map(|f| f.value).collect();
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
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Closed, Driver, Entry};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
/// submitter.schedule(1, 1).unwrap();
/// let core = driver.shutdown(); // the accepted timer is in the core
/// assert_eq!(core.len(), 1);
/// assert!(matches!(submitter.schedule(2, 2), Err(Closed(2)))); // value handed back
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

/// One scheduled timer, held by whoever scheduled it (clonable).
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (mut driver, submitter) = Driver::new(Wheel::<Entry<&str>, Growable>::new(WheelConfig::new()));
/// let session = submitter.schedule(100, "session expired").unwrap();
/// assert!(session.reset(300)); // any thread may move it
/// assert!(driver.poll(200).is_none());
/// assert_eq!(driver.poll(300).unwrap().value, "session expired");
/// assert!(!session.reset(400)); // already fired
/// ```
pub struct TimerHandle<T> {
    shared: Arc<Shared>,
    inbox: Arc<Inbox<T>>,
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
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// // A driver's core stores `Entry<T>`, not `T`.
/// let core: Wheel<Entry<u64>, Growable> = Wheel::new(WheelConfig::new());
/// let (_driver, _submitter) = Driver::new(core);
/// ```
pub type Entry<T> = (HandleState, T);

/// The shared state of one timer as the core stores it (opaque).
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry, HandleState};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (driver, submitter) = Driver::new(Wheel::<Entry<u8>, Growable>::new(WheelConfig::new()));
/// submitter.schedule(1, 7).unwrap();
/// let mut core = driver.shutdown();
/// core.advance_to(1);
/// let (_state, value): (HandleState, u8) = core.pop_expired().unwrap().value;
/// assert_eq!(value, 7);
/// ```
pub struct HandleState(Arc<Shared>);

impl<T, C: TimerCore<Value = Entry<T>>> Driver<T, C> {
    /// Wraps an (empty) core and returns the driver and the first submitter.
    pub fn new(core: C) -> (Self, Submitter<T>) {
        let inbox = Arc::new(Inbox {
            head: AtomicPtr::new(ptr::null_mut()),
        });
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
    /// [`poll`](Self::poll) does this first; call it alone to keep
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
    pub fn poll(&mut self, now: u64) -> Option<Fired<T>> {
        self.apply_commands();
        while let Some((deadline, (st, value))) = self.core.poll(now) {
            // AcqRel: exactly one of this CAS and the canceller's CAS leaves
            // PENDING; Acquire/Release make the winner's view consistent.
            if st
                .0
                .state
                .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(Fired { deadline, value });
            }
        }
        None
    }

    /// When the next [`poll`](Self::poll) may have work, as of the last
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
            match core.insert(deadline, (st, value)) {
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
                drop(core.cancel(key));
            }
        }
        Command::Reset(shared, deadline) => {
            if let Some(key) = key_of(&shared) {
                core.reset(key, deadline);
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

/// Why a submission failed: the driver is gone. Carries the value back.
///
/// ```
/// use latchfree::queue::arena::Growable;
/// use latchfree::wheel::shared::{Driver, Entry};
/// use latchfree::wheel::{Wheel, WheelConfig};
///
/// let (driver, submitter) = Driver::new(Wheel::<Entry<Vec<u8>>, Growable>::new(WheelConfig::new()));
/// drop(driver);
/// let err = submitter.schedule(5, vec![1, 2, 3]).unwrap_err();
/// assert_eq!(err.to_string(), "the timer driver is gone");
/// assert_eq!(err.into_inner(), [1, 2, 3]);
/// ```
#[derive(PartialEq, Eq)]
pub struct Closed<T>(pub T);

impl<T> Closed<T> {
    /// The value that was not scheduled.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> core::fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> core::fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the timer driver is gone")
    }
}

impl<T> core::error::Error for Closed<T> {}

impl<T> Submitter<T> {
    /// Schedules `value` for `deadline` (the driver's time units). Lock-free;
    /// takes effect at the driver's next poll. Gives the value back if the
    /// driver has been dropped.
    pub fn schedule(&self, deadline: u64, value: T) -> Result<TimerHandle<T>, Closed<T>> {
        let shared = Arc::new(Shared {
            state: AtomicU32::new(PENDING),
            key_index: AtomicU32::new(0),
            key_gen: AtomicU32::new(0),
        });
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

impl<T> TimerHandle<T> {
    /// Cancels the timer. `true`: this call prevented it, the payload will
    /// never be handed out. `false`: it had already fired (its payload was
    /// or will be handed out), or was already cancelled or rejected.
    /// Exactly one of a cancel and the expiry wins.
    pub fn cancel(&self) -> bool {
        // AcqRel: pairs with the owner's AcqRel CAS in `poll`; the two are
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

    /// Moves a pending timer to `deadline`. `true` if the request was
    /// queued; it is applied at the driver's next poll unless the timer
    /// fires or is cancelled first (then the reset is ignored; check
    /// [`state`](Self::state)).
    pub fn reset(&self, deadline: u64) -> bool {
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
mod tests {
    use super::*;
    use crate::queue::arena::Growable;
    use crate::wheel::WheelConfig;

    #[test]
    fn cancel_vs_fire_has_one_winner() {
        let wheel: Wheel<Entry<u32>, Growable> = Wheel::new(WheelConfig::new());
        let (mut d, s) = Driver::new(wheel);
        let a = s.schedule(10, 1).unwrap();
        let b = s.schedule(10, 2).unwrap();
        let c = s.schedule(20, 3).unwrap();
        assert!(c.cancel());
        assert!(!c.cancel());
        assert!(d.poll(5).is_none());
        assert_eq!(d.len(), 2);
        assert!(b.cancel());
        assert_eq!(d.poll(10).map(|f| f.value), Some(1));
        assert!(!a.cancel());
        assert_eq!(a.state(), TimerState::Fired);
        assert!(d.poll(100).is_none());
        assert!(d.is_empty());
        assert!(!a.reset(50));
        drop(d);
        assert_eq!(s.schedule(1, 9).unwrap_err().into_inner(), 9);
    }

    #[test]
    fn reset_from_handle_and_delay_queue_core() {
        let q: DelayQueue<Entry<u32>, Growable> = DelayQueue::new();
        let (mut d, s) = Driver::new(q);
        let a = s.schedule(10, 1).unwrap();
        d.apply_commands();
        assert!(a.reset(30));
        assert!(d.poll(29).is_none());
        assert_eq!(d.poll(30).map(|f| (f.deadline, f.value)), Some((30, 1)));
    }

    #[cfg(feature = "std")]
    #[test]
    fn threads_submit_and_cancel_while_owner_polls() {
        use alloc::vec::Vec;
        const N: u32 = if cfg!(miri) { 50 } else { 20_000 };
        let wheel: Wheel<Entry<u32>, Growable> = Wheel::new(WheelConfig::new());
        let (mut d, s) = Driver::new(wheel);
        let producers: Vec<_> = (0..2)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut cancelled = Vec::new();
                    for i in 0..N {
                        let h = s.schedule(u64::from(i % 64), t * N + i).unwrap();
                        if i % 3 == 0 && h.cancel() {
                            cancelled.push(t * N + i);
                        }
                    }
                    cancelled
                })
            })
            .collect();
        let mut fired = Vec::new();
        let mut now = 0;
        while fired.len() < 2 * N as usize {
            while let Some(f) = d.poll(now) {
                fired.push(f.value);
            }
            now += 1;
            let done = producers.iter().all(|p| p.is_finished());
            if done && d.is_empty() {
                d.apply_commands();
                if d.is_empty() {
                    break;
                }
            }
        }
        let mut cancelled: Vec<u32> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        cancelled.extend(&fired);
        cancelled.sort_unstable();
        let n = cancelled.len();
        cancelled.dedup();
        assert_eq!(n, cancelled.len(), "fired and cancelled overlap");
        assert_eq!(n, 2 * N as usize, "a timer was lost");
    }
}
