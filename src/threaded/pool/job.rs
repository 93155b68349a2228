//! Jobs, join handles and cancellation tokens.
//!
//! A [`Job`] is a closure (stored in the job itself when it is small, boxed
//! otherwise: see [`Body`]) plus its identity and optional deadline. The
//! pool starts it in one of two ways: *run* it, or tell it that its deadline
//! passed. A job that is never started (returned by a shutdown and dropped)
//! tells its [`JoinHandle`] so through the drop of its result [`Sender`]: a
//! handle can always tell "ran", "panicked", "timed out" and "never ran".

use crate::sync::time::{self, Instant};
use alloc::boxed::Box;
use alloc::string::String;
use core::any::TypeId;
use core::cell::Cell;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use core::ptr::{addr_of, addr_of_mut};
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::sync::blocking::{Condvar, Mutex};
use crate::sync::{Arc, AtomicBool, Ordering};
use crate::waker::AtomicWaker;

pub use crate::threaded::unwind::Payload;

/// What the panic handler learns about the task that panicked.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use latchfree::pool::ThreadPool;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let pool = ThreadPool::builder()
///     .min_workers(1)
///     .max_workers(1)
///     .panic_handler(move |info, _payload| s.lock().unwrap().push(info.id))
///     .build().unwrap();
/// pool.execute(|| panic!("boom")).unwrap();
/// pool.shutdown();
/// assert_eq!(seen.lock().unwrap().len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// The task's identity (see [`Job::id`]).
    pub id: usize,
    /// The name of the worker thread it ran on.
    pub thread: Option<String>,
}

/// How the pool starts a job.
pub(crate) enum Start {
    /// Run it.
    Run,
    /// Its deadline passed before a worker reached it: report, do not run.
    Expired,
}

/// What happened when a job was started.
pub(crate) enum Ran {
    /// It ran to completion.
    Done,
    /// It panicked. The payload is here unless the job handed it to its
    /// join handle.
    Panicked(Option<Payload>),
    /// It was not run because its deadline (or a cancel) came first.
    Expired,
}

/// A closure the pool can start: run it, or tell it that it expired.
/// Implemented by [`Plain`] and [`Full`] and by a box of either.
pub(crate) trait Startable: Send + 'static {
    /// Whether this is the box of a closure too big to store inline.
    #[cfg(test)]
    const BOXED: bool = false;
    fn start(self, how: Start) -> Ran;
}

/// A plain closure (`execute`): run on `Run`, dropped unrun on `Expired`.
pub(crate) struct Plain<F>(pub(crate) F);

impl<F: FnOnce() + Send + 'static> Startable for Plain<F> {
    #[inline]
    fn start(self, how: Start) -> Ran {
        match how {
            Start::Run => {
                (self.0)();
                Ran::Done
            }
            Start::Expired => Ran::Expired,
        }
    }
}

/// A closure that handles both kinds of start itself (`spawn`,
/// `execute_before`).
pub(crate) struct Full<F>(pub(crate) F);

impl<F: FnOnce(Start) -> Ran + Send + 'static> Startable for Full<F> {
    #[inline]
    fn start(self, how: Start) -> Ran {
        (self.0)(how)
    }
}

/// A closure too big for a job's inline buffer, stored boxed.
impl<S: Startable> Startable for Box<S> {
    #[cfg(test)]
    const BOXED: bool = true;
    #[inline]
    fn start(self, how: Start) -> Ran {
        (*self).start(how)
    }
}

/// Bytes of closure a job holds without allocating: with the job's other
/// three words a queue slot is one cache line (64 bytes on 64-bit
/// targets). Five words: an `Arc` or two, a few integers, a boxed closure.
const INLINE_BYTES: usize = 40;

/// The inline buffer: uninitialised bytes aligned like a `u64`, so any
/// closure of at most [`INLINE_BYTES`] bytes and alignment at most 8 fits.
#[repr(C, align(8))]
struct Inline(MaybeUninit<[u8; INLINE_BYTES]>);

/// Whether an `S` is stored in the inline buffer (else it is boxed, and
/// the box, one pointer, is stored there).
const fn fits<S>() -> bool {
    size_of::<S>() <= size_of::<Inline>() && align_of::<S>() <= align_of::<Inline>()
}

/// How to start, drop and recognise the closure type `S` stored in a
/// [`Body`]'s buffer: one `'static` table per type.
struct VTable {
    /// Moves the `S` out of the buffer and starts it.
    start: unsafe fn(*mut Inline, Start) -> Ran,
    /// Drops the `S` in place.
    drop: unsafe fn(*mut Inline),
    /// `TypeId::of::<S>`, to give a refused closure back as what it was.
    type_id: fn() -> TypeId,
    /// `S` is the box of a closure too big to store inline.
    #[cfg(test)]
    boxed: bool,
}

struct VTableOf<S>(PhantomData<S>);

impl<S: Startable> VTableOf<S> {
    /// A constant, so `&Self::TABLE` is promoted to a `'static`.
    const TABLE: VTable = VTable {
        start: Self::start,
        drop: Self::drop,
        type_id: TypeId::of::<S>,
        #[cfg(test)]
        boxed: S::BOXED,
    };

    /// # Safety
    ///
    /// `buf` holds an initialised `S` (written by [`Body::new`]) that is
    /// not used again: it is moved out here.
    unsafe fn start(buf: *mut Inline, how: Start) -> Ran {
        // SAFETY: by the contract `buf` holds a valid `S`, aligned (`fits`
        // was checked when it was written), which the caller gives up.
        let s = unsafe { buf.cast::<S>().read() };
        s.start(how)
    }

    /// # Safety
    ///
    /// `buf` holds an initialised `S` that is not used again.
    unsafe fn drop(buf: *mut Inline) {
        // SAFETY: as in `start`: a valid, aligned `S`, dropped once.
        unsafe { buf.cast::<S>().drop_in_place() }
    }
}

/// What a job runs: a type-erased [`Startable`], stored in the job itself
/// when it fits ([`INLINE_BYTES`], alignment at most 8) and boxed
/// otherwise, so the common `execute` of a small closure allocates
/// nothing. A closure that arrives as a `Box<dyn FnOnce() + Send>` is a
/// two-word closure like any other: stored as it is, not boxed twice.
///
/// Ground rules: `buf` always holds exactly one live value of the type
/// `vtable` was made for (`S`, or `Box<S>` when `S` does not fit); it
/// leaves the buffer exactly once, through `vtable.start` (consuming the
/// body), `vtable.drop` (dropping it) or [`into_plain`](Self::into_plain)
/// (which checks the type first).
pub(crate) struct Body {
    vtable: &'static VTable,
    buf: Inline,
    /// `Send` (asserted below) but not `Sync`, like the boxed
    /// `dyn FnOnce() + Send` it replaces: the closure may not be `Sync`.
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: a body only ever holds a `Startable`, which is `Send`; moving
// the body moves that closure to another thread and nothing else (the
// vtable is a `'static` table of functions).
unsafe impl Send for Body {}

impl Body {
    /// Stores `s` inline if it fits, boxed otherwise.
    #[inline]
    fn new<S: Startable>(s: S) -> Self {
        if fits::<S>() {
            Self::store(s)
        } else {
            Self::store(Box::new(s))
        }
    }

    /// Writes `s` into a fresh buffer.
    #[inline]
    fn store<S: Startable>(s: S) -> Self {
        // `new` only calls this for types that fit (a box always does);
        // the check folds to a constant.
        assert!(fits::<S>(), "a stored closure fits the inline buffer");
        let mut buf = Inline(MaybeUninit::uninit());
        // SAFETY: the buffer is large and aligned enough for an `S`
        // (asserted above) and holds nothing yet.
        unsafe { (addr_of_mut!(buf)).cast::<S>().write(s) };
        Self {
            vtable: &VTableOf::<S>::TABLE,
            buf,
            _not_sync: PhantomData,
        }
    }

    /// A plain closure.
    #[inline]
    pub(crate) fn plain<F: FnOnce() + Send + 'static>(f: F) -> Self {
        Self::new(Plain(f))
    }

    /// A closure that handles both kinds of start itself.
    pub(crate) fn full<F: FnOnce(Start) -> Ran + Send + 'static>(f: F) -> Self {
        Self::new(Full(f))
    }

    /// Whether the closure is stored in the job itself (not boxed).
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        !self.vtable.boxed
    }

    /// The closure given to [`plain`](Self::plain), back unrun.
    pub(crate) fn into_plain<F: 'static>(self) -> Option<F> {
        let inline = fits::<Plain<F>>();
        let want = if inline {
            TypeId::of::<Plain<F>>()
        } else {
            TypeId::of::<Box<Plain<F>>>()
        };
        if (self.vtable.type_id)() != want {
            // Not a plain `F`: dropped as usual.
            return None;
        }
        let this = ManuallyDrop::new(self);
        let buf = addr_of!(this.buf);
        if inline {
            // SAFETY: the buffer holds a `Plain<F>` (its type id says so),
            // which leaves it here, once: `this` is not dropped.
            Some(unsafe { buf.cast::<Plain<F>>().read() }.0)
        } else {
            // SAFETY: as above, for the box of a `Plain<F>` too big to
            // store inline.
            Some(unsafe { buf.cast::<Box<Plain<F>>>().read() }.0)
        }
    }

    /// Starts the job. A plain job's panic propagates.
    #[inline]
    pub(crate) fn start(self, how: Start) -> Ran {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the buffer holds the value `vtable` was made for (ground
        // rules); `this` is not dropped, so it leaves the buffer once, here
        // (also if it panics: `start` moved it out first).
        unsafe { (this.vtable.start)(addr_of_mut!(this.buf), how) }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // SAFETY: the buffer holds the value `vtable` was made for, and a
        // body that is dropped was not started or taken apart (those
        // consume it without dropping it).
        unsafe { (self.vtable.drop)(addr_of_mut!(self.buf)) }
    }
}

/// A task the pool accepted but has not started, as handed back by
/// [`ThreadPool::shutdown_timeout`](super::ThreadPool::shutdown_timeout) and
/// [`ThreadPool::shutdown_now`](super::ThreadPool::shutdown_now).
///
/// Run it on the current thread with [`run`](Self::run), or drop it: a
/// dropped job's [`JoinHandle`] reports [`JoinError::Cancelled`].
///
/// ```
/// use std::sync::mpsc;
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::new(1);
/// let (tx, rx) = mpsc::channel::<()>();
/// // Keep the only worker busy, then queue a job behind it.
/// pool.execute(move || drop(rx.recv())).unwrap();
/// pool.execute(|| println!("queued")).unwrap();
/// let closer = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(20));
///     tx.send(()).unwrap();
/// });
/// let unstarted = pool.shutdown_now();
/// closer.join().unwrap();
/// for job in unstarted {
///     assert!(job.id().is_some());
///     job.run(); // or drop it
/// }
/// ```
// Aligned to a cache line: a queue slot (an `Option<Job>`, 64 bytes) is
// then exactly one line, so the submitter writing one slot and a worker
// taking the one before never write the same line.
#[repr(align(64))]
pub struct Job {
    /// Set when the pool accepts the job: its sequence in the queue;
    /// `usize::MAX` until then.
    pub(crate) id: usize,
    /// Only for jobs with a deadline or a token (`spawn`,
    /// `execute_before`): plain `execute` jobs skip the allocation.
    pub(crate) extra: Option<Box<Extra>>,
    pub(crate) body: Body,
}

/// The rarely used parts of a [`Job`].
pub(crate) struct Extra {
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<CancelToken>,
}

impl Job {
    /// Whether its deadline passed or its handle cancelled it.
    pub(crate) fn expired(&self) -> bool {
        self.extra.as_ref().is_some_and(|x| {
            x.cancel.as_ref().is_some_and(CancelToken::own_cancelled)
                || x.deadline.is_some_and(|d| time::now() > d)
        })
    }
}

impl Job {
    /// The task's identity, as given to the panic handler: its position
    /// in the pool's queue (unique per pool, in the order jobs were
    /// accepted). `None` for a job the pool refused (it was never queued).
    pub fn id(&self) -> Option<usize> {
        (self.id != usize::MAX).then_some(self.id)
    }

    /// The deadline it was submitted with, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.extra.as_ref().and_then(|x| x.deadline)
    }

    /// Runs the job on the calling thread. A panic in it propagates (unless
    /// it was spawned with a handle, which receives the panic instead).
    pub fn run(self) {
        if let Ran::Panicked(Some(p)) = self.body.start(Start::Run) {
            std::panic::resume_unwind(p);
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id())
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}

/// A cooperative cancellation flag handed to a running task.
///
/// Rust cannot stop a thread from outside, so a task that should stop early
/// (its handle was cancelled, or the pool is shutting down with
/// `shutdown_now`/an expired `shutdown_timeout`) must poll
/// [`is_cancelled`](Self::is_cancelled) and return by itself.
///
/// ```
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::new(1);
/// let (started, running) = std::sync::mpsc::channel();
/// let h = pool
///     .spawn_with(None, move |token| {
///         started.send(()).unwrap();
///         let mut rounds = 0u64;
///         while !token.is_cancelled() {
///             rounds += 1;
///             std::thread::yield_now();
///         }
///         rounds
///     })
///     .unwrap();
/// running.recv().unwrap(); // cancelled before it starts, it would not run
/// h.cancel();
/// assert!(h.join().is_ok()); // it saw the token and returned
/// ```
#[derive(Clone, Debug)]
pub struct CancelToken {
    own: Arc<AtomicBool>,
    pool: Arc<AtomicBool>,
}

impl CancelToken {
    pub(crate) fn new(pool: Arc<AtomicBool>) -> Self {
        Self {
            own: Arc::new(AtomicBool::new(false)),
            pool,
        }
    }

    /// Whether the task was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        // Relaxed: a hint polled in a loop; no data hangs off the flag.
        self.own.load(Ordering::Relaxed) || self.pool.load(Ordering::Relaxed)
    }

    /// Whether this task itself (not the whole pool) was cancelled.
    pub(crate) fn own_cancelled(&self) -> bool {
        self.own.load(Ordering::Relaxed)
    }

    /// Asks the task to stop (or, if it has not started, not to start).
    pub fn cancel(&self) {
        self.own.store(true, Ordering::Relaxed);
    }
}

/// Why [`JoinHandle::join`] has no value.
///
/// ```
/// use std::time::Instant;
/// use latchfree::pool::{JoinError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// // A deadline already past: the task is not run.
/// let h = pool.spawn_with(Some(Instant::now()), |_| 1).unwrap();
/// assert!(matches!(h.join(), Err(JoinError::TimedOut)));
/// ```
pub enum JoinError {
    /// The task panicked; here is the payload.
    Panicked(Payload),
    /// The task's deadline passed before a worker started it, or it was
    /// cancelled before it started. It did not run.
    TimedOut,
    /// The task was never run: the pool shut down and handed it back (and
    /// the caller dropped it).
    Cancelled,
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(_) => f.write_str("Panicked(..)"),
            Self::TimedOut => f.write_str("TimedOut"),
            Self::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(_) => f.write_str("the task panicked"),
            Self::TimedOut => f.write_str("the task was not started before its deadline"),
            Self::Cancelled => f.write_str("the task was dropped without running"),
        }
    }
}

impl core::error::Error for JoinError {}

/// The one-shot slot a spawned task's result goes through: a thread that
/// joins sleeps on `ready`, a task that awaits registers in `waker`.
///
/// No wake is lost: `put` stores under the lock, then wakes; the future
/// registers, then looks under the lock again. If its look takes the lock
/// before `put` does, its registration (made before that look) is ordered
/// before `put`'s wake by the lock, so the wake finds it; otherwise the
/// look sees the result. `loom-tests/tests/async_adapters.rs` explores it.
struct Packet<T> {
    result: Mutex<Option<Result<T, JoinError>>>,
    ready: Condvar,
    waker: AtomicWaker,
}

impl<T> Packet<T> {
    fn put(&self, r: Result<T, JoinError>) {
        let mut g = self.result.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(r);
        }
        drop(g);
        self.ready.notify_all();
        self.waker.wake();
    }

    fn try_take(&self) -> Option<Result<T, JoinError>> {
        self.result.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The sending side of a [`JoinHandle`]: if dropped unsent, the handle
/// learns the task never ran.
pub(crate) struct Sender<T>(Arc<Packet<T>>);

impl<T> Sender<T> {
    pub(crate) fn send(self, r: Result<T, JoinError>) {
        self.0.put(r);
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // A no-op when a result was already sent.
        self.0.put(Err(JoinError::Cancelled));
    }
}

/// The handle of a task started with
/// [`ThreadPool::spawn`](super::ThreadPool::spawn): join it for the task's
/// value, or the panic, timeout or cancellation that took its place.
///
/// It is also a [`Future`] of the same result, so async code awaits a
/// pool task without blocking its executor (runtime-agnostic: the worker
/// that finishes the task wakes the awaiting task's [`Waker`](core::task::Waker)).
/// Dropping the handle, awaited or not, does not cancel the task; polling
/// it again after it completed panics, as for any future.
///
/// ```
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let h = pool.spawn(|| 6 * 7).unwrap();
/// assert_eq!(pollster::block_on(h).unwrap(), 42);
/// ```
///
/// ```
/// use latchfree::pool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let handles: Vec<_> = (0..4u64).map(|i| pool.spawn(move || i * i).unwrap()).collect();
/// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 14);
/// ```
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
    cancel: CancelToken,
    /// Set once the pool accepted the task (see [`Job::id`]).
    pub(crate) id: usize,
    /// The future completed: its result was taken.
    done: bool,
}

pub(crate) fn channel<T>(cancel: CancelToken) -> (Sender<T>, JoinHandle<T>) {
    let packet = Arc::new(Packet {
        result: Mutex::new(None),
        ready: Condvar::new(),
        waker: AtomicWaker::new(),
    });
    (
        Sender(packet.clone()),
        JoinHandle {
            packet,
            cancel,
            id: 0,
            done: false,
        },
    )
}

impl<T> JoinHandle<T> {
    /// The task's identity (see [`Job::id`]).
    pub fn id(&self) -> usize {
        self.id
    }

    /// Waits for the task and returns its value.
    ///
    /// # Errors
    ///
    /// [`JoinError`]: the task panicked, timed out before starting, or was
    /// never run.
    ///
    /// # Panics
    ///
    /// If the handle was already polled to completion as a future.
    pub fn join(self) -> Result<T, JoinError> {
        assert!(!self.done, "`JoinHandle` joined after it completed as a future");
        let mut g = self.packet.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.packet.ready.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether the task has finished (or will never run). May be stale.
    pub fn is_finished(&self) -> bool {
        self.done
            || self
                .packet
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Cancels the task: if it has not started, it will not run and
    /// [`join`](Self::join) reports [`JoinError::TimedOut`]; if it is
    /// running, its [`CancelToken`] says so.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// A join handle and the closure that completes it (`Some(v)`: the task
/// returned `v`; `None`: it was dropped unrun), with no pool around them:
/// for the loom model of `Packet`'s wake-up (`latchfree::__loom`).
pub fn join_pair<T>() -> (impl FnOnce(Option<T>) + Send, JoinHandle<T>)
where
    T: Send,
{
    let (tx, rx) = channel(CancelToken::new(Arc::new(AtomicBool::new(false))));
    let complete = move |v: Option<T>| match v {
        Some(v) => tx.send(Ok(v)),
        None => drop(tx),
    };
    (complete, rx)
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "`JoinHandle` polled after completion");
        if let Some(r) = this.packet.try_take() {
            this.done = true;
            return Poll::Ready(r);
        }
        this.packet.waker.register(cx.waker());
        // The re-check (see `Packet`): a result put before our
        // registration was visible to `put` is seen here.
        match this.packet.try_take() {
            Some(r) => {
                this.done = true;
                Poll::Ready(r)
            }
            None => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}
