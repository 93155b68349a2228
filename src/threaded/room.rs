//! Waiting for room without a thread: the tasks of async pushers parked
//! on a full queue (the batcher's `push_async`), and the consumer side's
//! cheap "anyone waiting?" check after it frees slots.
//!
//! # Protocol (a Dekker handshake, as in `ring::AsyncWait`)
//!
//! A pusher that found the queue full registers its waker (under the
//! mutex, which also stores the number of registered wakers in `count`),
//! issues a `SeqCst` fence and tries again; only if that try also finds
//! the queue full does it return `Pending`. A consumer that freed slots
//! (its gate store) issues a `SeqCst` fence and loads `count`; only if it
//! is non-zero does it take the mutex and wake every registered waker.
//! By the two fences, either the consumer's load sees the pusher's count
//! (and wakes it), or the pusher's second try sees the freed slots. So a
//! consumer with nobody waiting pays a fence and one load of a word that
//! stays in its cache, per poll that freed something (not per item).
//! `loom-tests/tests/async_adapters.rs` (`room_*`) explores it.
//!
//! Ground rules: `list` and `count` change only under the mutex, and
//! `count` is `list.len()` whenever the mutex is free. Wakers are woken
//! after the mutex is let go (a waker is user code).

use alloc::vec::Vec;
use core::task::Waker;

use crate::sync::blocking::Mutex;
use crate::sync::{fence, AtomicUsize, Ordering};

struct List {
    /// The next waiter id.
    next: u64,
    /// Registered waiters, by id.
    wakers: Vec<(u64, Waker)>,
}

/// See the module docs (`threaded::room`).
pub struct Room {
    /// How many waiters are registered: `list.wakers.len()` (ground rules).
    count: AtomicUsize,
    list: Mutex<List>,
}

impl Default for Room {
    fn default() -> Self {
        Self::new()
    }
}

impl Room {
    /// Nobody waiting.
    pub fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            list: Mutex::new(List {
                next: 0,
                wakers: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> crate::sync::blocking::MutexGuard<'_, List> {
        // Every critical section leaves the list consistent.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `waker` as waiter `id` (given one on first use) and
    /// fences. The caller must try its push again afterwards.
    pub fn register(&self, id: &mut Option<u64>, waker: &Waker) {
        let mut l = self.lock();
        let me = *id.get_or_insert_with(|| {
            l.next += 1;
            l.next
        });
        match l.wakers.iter_mut().find(|(w, _)| *w == me) {
            Some((_, w)) => w.clone_from(waker),
            None => l.wakers.push((me, waker.clone())),
        }
        self.count.store(l.wakers.len(), Ordering::Relaxed);
        drop(l);
        // SeqCst: pairs with the fence in `notify`: either its load sees
        // our count, or our re-try sees the room it made.
        fence(Ordering::SeqCst);
    }

    /// Drops waiter `id`'s registration, if it has one.
    pub fn forget(&self, id: &mut Option<u64>) {
        if let Some(me) = id.take() {
            let mut l = self.lock();
            l.wakers.retain(|(w, _)| *w != me);
            self.count.store(l.wakers.len(), Ordering::Relaxed);
        }
    }

    /// Room was made (the caller's slot release came first): wakes every
    /// registered waiter.
    #[inline]
    pub fn notify(&self) {
        // SeqCst: orders the caller's release before the load of `count`;
        // pairs with the fence in `register`.
        fence(Ordering::SeqCst);
        if self.count.load(Ordering::Relaxed) != 0 {
            self.wake_all();
        }
    }

    #[cold]
    fn wake_all(&self) {
        let mut l = self.lock();
        let wakers = core::mem::take(&mut l.wakers);
        self.count.store(0, Ordering::Relaxed);
        drop(l);
        for (_, w) in wakers {
            w.wake();
        }
    }
}

impl core::fmt::Debug for Room {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Room")
            .field("waiting", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}
