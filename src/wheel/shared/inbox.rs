//! The hand-off's inbox: a Treiber-style intrusive stack of boxed
//! commands that producers push with one compare-and-swap and the owner
//! takes whole with one `swap` (then reverses to submission order), and
//! the owner's backlog of taken commands not yet applied.
//!
//! Ground rules (the module's first two, see `shared`): `head` is null
//! (empty), a node pointer (the newest command, linked to older ones
//! through `next`), or `CLOSED` once the driver is gone, after which
//! nothing is ever pushed again; a node belongs to its producer until its
//! CAS succeeds and to the owner after the `swap` that took it. No ABA: the
//! owner never pops single nodes.

use alloc::boxed::Box;
use core::ptr::{self, NonNull};

use super::handle::Shared;
use crate::sync::{Arc, AtomicPtr, Ordering};

/// What a submitter asks of the owner.
pub(super) enum Command<T> {
    Insert(Arc<Shared>, u64, T),
    Cancel(Arc<Shared>),
    Reset(Arc<Shared>, u64),
}

struct Node<T> {
    cmd: Command<T>,
    next: *mut Node<T>,
}

pub(super) struct Inbox<T> {
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
    /// An empty, open inbox.
    pub(super) fn new() -> Self {
        Inbox {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn closed() -> *mut Node<T> {
        NonNull::dangling().as_ptr()
    }

    /// Pushes `cmd`; gives it back if the owner is gone.
    pub(super) fn push(&self, cmd: Command<T>) -> Result<(), Command<T>> {
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
    pub(super) fn take(&self) -> Backlog<T> {
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
    pub(super) fn close(&self) -> Backlog<T> {
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
pub(super) struct Backlog<T> {
    /// Null, or the oldest node (leaked `Box`), linked to newer ones.
    oldest: *mut Node<T>,
}

// SAFETY: the backlog owns its nodes, which carry `T`s; moving it between
// threads moves them (`T: Send`).
unsafe impl<T: Send> Send for Backlog<T> {}

impl<T> Backlog<T> {
    pub(super) const EMPTY: Self = Backlog {
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

    pub(super) fn is_empty(&self) -> bool {
        self.oldest.is_null()
    }

    /// Takes the oldest command off the backlog.
    pub(super) fn pop(&mut self) -> Option<Command<T>> {
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
