//! The wake protocol of a streamed batcher ([`Builder::build_stream`]):
//! how producers, `flush`/`close` callers and the one consuming task (the
//! [`BatchStream`], which fills its batches straight from the queue) wake
//! each other. No thread sits between them.
//!
//! # Ground rules
//!
//! - `target` is the highest flush target asked for: a claim position of
//!   the queue, read by the flush caller after every push it must cover
//!   returned (as in `handoff`). It only grows.
//! - `done` is one past the last sequence whose item the stream has handed
//!   out in a yielded batch (or reported to the error callback); `u64::MAX`
//!   once the stream ended or was dropped (nothing more will be handed out,
//!   and nothing accepted is left). Only the stream writes it; it only
//!   grows.
//! - A flush is answered once `done >= target`.
//!
//! # Waking (two `Room`s, each a Dekker handshake)
//!
//! The stream task waits in `stream`: it registers its waker (`Room`'s
//! register fences), then looks again at the queue and at `target`, and
//! returns `Pending` only if neither has news. Every change it waits for is
//! a store followed by `stream.notify()` (which fences, then loads the
//! waiter count): a producer's publish ([`Tap::pushed`]), a flush raising
//! `target` ([`Tap::start_flush`]), the close (the queue's close flag). By
//! the two fences either the notifier sees the registration or the
//! stream's second look sees the store. A producer with no stream waiting
//! pays a fence and one load per push, as it would for the flushers'
//! doorbell.
//!
//! Flush and close callers wait in `callers` the same way: register, then
//! re-read `done`; the stream stores `done`, then notifies
//! ([`Tap::answer`]). A blocking [`Tap::flush`] is the same wait with a
//! waker that unparks its thread.
//!
//! `loom-tests/tests/batch.rs` (`tap_*`) runs this very code.
//!
//! [`Builder::build_stream`]: super::Builder::build_stream
//! [`BatchStream`]: super::BatchStream

use alloc::sync::Arc as WakeArc;
use alloc::task::Wake;
use core::fmt;
use core::task::Waker;

use crate::sync::{thread, AtomicU64, Ordering};
use crate::threaded::room::Room;

/// See the module docs (`batch::tap`).
pub struct Tap {
    /// The stream task, waiting for items, a flush or the close.
    stream: Room,
    /// `flush` and `close` callers waiting for the stream.
    callers: Room,
    /// The highest flush target asked for (ground rules).
    target: AtomicU64,
    /// One past the last sequence handed out; `u64::MAX` once the stream
    /// is gone (ground rules).
    done: AtomicU64,
}

impl Default for Tap {
    fn default() -> Self {
        Self::new()
    }
}

impl Tap {
    /// Nothing asked, nothing handed out.
    pub fn new() -> Self {
        Self {
            stream: Room::new(),
            callers: Room::new(),
            target: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// A producer published (or the queue closed): wakes the stream if it
    /// waits. The caller's store comes first.
    #[inline]
    pub fn pushed(&self) {
        self.stream.notify();
    }

    /// Registers the stream task's `waker` as waiter `id`. The stream must
    /// look at the queue and at [`wanted`](Self::wanted) again afterwards.
    pub fn register_stream(&self, id: &mut Option<u64>, waker: &Waker) {
        self.stream.register(id, waker);
    }

    /// Drops the stream task's registration, if any.
    #[inline]
    pub fn forget_stream(&self, id: &mut Option<u64>) {
        if id.is_some() {
            self.stream.forget(id);
        }
    }

    /// The highest flush target asked for (for the stream).
    #[inline]
    pub fn wanted(&self) -> u64 {
        // Relaxed: the value alone matters (no data rides on it); the
        // stream's register fence orders this load after its registration.
        self.target.load(Ordering::Relaxed)
    }

    /// Asks the stream to hand out everything below `target`, and wakes
    /// it. Returns at once; see [`poll_answered`](Self::poll_answered).
    pub fn start_flush(&self, target: u64) {
        // Relaxed: `notify`'s fence orders it before the load of the
        // stream's registration (the Dekker pair of the module docs).
        self.target.fetch_max(target, Ordering::Relaxed);
        self.stream.notify();
    }

    /// The stream handed out everything below `done` (`u64::MAX`: it is
    /// gone): wakes the callers whose target that covers.
    pub fn answer(&self, done: u64) {
        // Release: a caller that reads it (Acquire) sees the metrics and
        // the effects of the batches handed out before it.
        self.done.fetch_max(done, Ordering::Release);
        self.callers.notify();
    }

    /// Whether everything below `target` was handed out; if not, registers
    /// `waker` as waiter `id` to be woken by the next answer (register,
    /// then re-check: module docs). Forgets the registration once true.
    pub fn poll_answered(&self, target: u64, id: &mut Option<u64>, waker: &Waker) -> bool {
        // Acquire: pairs with `answer`'s Release.
        if self.done.load(Ordering::Acquire) >= target {
            self.callers.forget(id);
            return true;
        }
        self.callers.register(id, waker);
        if self.done.load(Ordering::Acquire) >= target {
            self.callers.forget(id);
            return true;
        }
        false
    }

    /// Whether the stream is gone (ended or dropped).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire) == u64::MAX
    }

    /// [`start_flush`](Self::start_flush), then waits on this thread until
    /// it is answered.
    pub fn flush(&self, target: u64) {
        self.start_flush(target);
        self.wait_answered(target);
    }

    /// Waits on this thread until everything below `target` was handed
    /// out (`u64::MAX`: until the stream is gone).
    pub fn wait_answered(&self, target: u64) {
        let waker = Waker::from(WakeArc::new(Unpark(thread::current())));
        let mut id = None;
        while !self.poll_answered(target, &mut id, &waker) {
            // A stray unpark only costs a look.
            thread::park();
        }
    }
}

/// A waker that unparks a thread (the blocking `flush`).
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: WakeArc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &WakeArc<Self>) {
        self.0.unpark();
    }
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap")
            .field("target", &self.target.load(Ordering::Relaxed))
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
