//! Deferred drops that the map, not the epoch, runs: what lets keys and
//! values borrow (no `'static` bound).
//!
//! # Why
//!
//! A removed key, a replaced value and an outgrown table must outlive every
//! reader that may still hold them, so their drop waits for the epoch. Had
//! the epoch run those drops itself (crossbeam-epoch's `defer`), they could
//! run at any later pin, on any thread, long after the map is gone: sound
//! only for `'static` types. Here the epoch runs only a generic-free,
//! `'static` closure that raises a flag (a [`Ticket`]); the drops
//! themselves stay in the shard, in a queue of [`Grave`]s, and run either
//! when a later writer of the shard finds their ticket raised, or when the
//! map is dropped. A dropped map has no reader (every view borrows it), so
//! its drop runs whatever is left at once, flag or not: nothing of `K` or
//! `V` is touched after the map.
//!
//! # Ground rules
//!
//! - The queue belongs to the shard and is touched only under the shard
//!   lock (or with `&mut` to the shard). Order: sealed graves first, in
//!   sealing order, then the unsealed ones (`unsealed` of them at the back).
//! - A ticket covers the graves that were unsealed when it was made: it is
//!   deferred to the epoch after they were all unlinked, so once the epoch
//!   runs it no reader can reach them.
//! - A ticket's count is one for the epoch closure plus one per grave it
//!   covers; the last holder frees it.
//! - A grave's drop runs outside the lock (the caller collects the dead
//!   ones under it and drops them after). It drops keys and values only;
//!   the memory (a node's slab cell, a table's live cells and the table
//!   itself) is given back after, under the lock again (`raw::recycle`).
//!   Where keys and values need no drop, the sweep gives it back at once.
//!
//! # Overtaking
//!
//! A ticket is deferred into the sealing thread's own bag, which reaches
//! the epoch only when it fills, when a full batch is flushed, or when the
//! thread exits. A thread that wrote a little and then stopped calling the
//! map (alive, idle: a pool worker) leaves its last ticket there for good,
//! and a queue swept front to back would then stop at it forever while
//! other writers keep burying: unbounded garbage. So a grave goes once its
//! own ticket *or any later one* is raised. That is sound: a ticket's
//! closure runs only after every thread pinned when it was deferred has
//! unpinned; a reader that may hold an earlier grave pinned before that
//! grave was unlinked, which was before the earlier ticket was deferred,
//! so before the later one; and tickets are sealed in queue order, under
//! the lock. The sweep checks the newest ticket, so one raised ticket
//! releases every grave sealed before it; a stranded ticket then holds
//! back only its own small allocation, freed when its thread's bag is
//! finally collected.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::mem::MaybeUninit;
use core::ptr;

use crossbeam_epoch::Guard;

use super::raw::{recycle, Node, Table};
use super::slab::Slab;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// Graves sealed under one ticket before a new one is made even while the
/// previous ticket is still waiting in the epoch.
pub(super) const BATCH: usize = 32;

/// Graves one writer drops after its commit: at least what one commit
/// retires, so a stream of writes drains the queue as fast as it fills.
pub(super) const SWEEP: usize = 4;

/// What the epoch raises once no reader can reach the graves it covers.
/// `'static` and generic-free: it is all the epoch's closure touches.
struct Ticket {
    /// Holders: the epoch closure, plus one per grave it covers.
    refs: AtomicUsize,
    /// Set (Release) by the epoch closure; a sweeper that reads `true`
    /// (Acquire) may drop the covered graves.
    ready: AtomicBool,
}

impl Ticket {
    /// Drops one reference; frees the ticket on the last.
    ///
    /// # Safety
    ///
    /// `this` came from `Box::into_raw` and the caller owns one reference.
    unsafe fn release(this: *const Ticket) {
        // SAFETY: the caller's reference keeps it alive until here.
        // AcqRel: the last holder sees the others' uses before freeing.
        if unsafe { &*this }.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: no holder remains.
            drop(unsafe { Box::from_raw(this.cast_mut()) });
        }
    }
}

/// What a grave drops.
pub(super) enum Retired<K, V> {
    /// A removed or replaced entry (a cell of the shard's slab).
    Node(*mut Node<K, V>),
    /// An unlinked table (from `Owned::into_shared`), with the nodes it
    /// still owns.
    Table(*mut Table<K, V>),
}

impl<K, V> Clone for Retired<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Retired<K, V> {}

/// A retired item waiting for its ticket.
pub(super) struct Grave<K, V> {
    /// Null while unsealed.
    ticket: *const Ticket,
    what: Retired<K, V>,
}

// SAFETY: a grave owns what it drops (a node or a table: keys and values,
// `Send`); the ticket is shared through atomics only.
unsafe impl<K: Send, V: Send> Send for Grave<K, V> {}

impl<K, V> Grave<K, V> {
    /// Whether the grave's ticket is raised: no reader can reach it.
    fn raised(&self) -> bool {
        // SAFETY: a sealed grave holds one of its ticket's references.
        !self.ticket.is_null()
            && unsafe { &*self.ticket }
                // Acquire pairs with the epoch closure's Release: every reader
                // that could reach the grave has unpinned.
                .ready
                .load(Ordering::Acquire)
    }

    /// Gives up the grave without dropping what it holds (the caller
    /// frees it: nothing in it needs a drop).
    fn into_what(self) -> Retired<K, V> {
        let this = core::mem::ManuallyDrop::new(self);
        if !this.ticket.is_null() {
            // SAFETY: the grave holds one of the ticket's references.
            unsafe { Ticket::release(this.ticket) };
        }
        this.what
    }
}

impl<K, V> Drop for Grave<K, V> {
    fn drop(&mut self) {
        if !self.ticket.is_null() {
            // SAFETY: the grave holds one of the ticket's references.
            unsafe { Ticket::release(self.ticket) };
        }
        // SAFETY: graves are dropped once, only when no reader can reach
        // what they hold (ticket raised, or the map is being dropped), and
        // each owns what it drops (nothing else drops it: see `raw.rs`).
        // Keys and values only: the memory goes back to the slab after.
        contained(|| unsafe {
            match self.what {
                Retired::Node(n) => ptr::drop_in_place(n),
                Retired::Table(t) => Table::drop_nodes(t),
            }
        });
    }
}

/// A shard's queue of graves; see the module docs.
pub(super) struct Graveyard<K, V> {
    queue: VecDeque<Grave<K, V>>,
    /// Graves at the back not yet covered by a ticket.
    unsealed: usize,
}

/// Graves a writer drops after unlocking, with [`Dead::bury`]. Built on
/// every commit, so it costs two stores when there is nothing to drop.
pub(super) struct Dead<K, V> {
    /// `graves[..len]` are initialised and ours.
    len: usize,
    graves: [MaybeUninit<Grave<K, V>>; SWEEP],
    /// A ticket was sealed for a full batch: hand it to the epoch now.
    flush: bool,
}

impl<K, V> Dead<K, V> {
    #[inline]
    pub(super) fn none() -> Self {
        Self {
            len: 0,
            // SAFETY: an array of `MaybeUninit` needs no initialisation.
            graves: unsafe { MaybeUninit::uninit().assume_init() },
            flush: false,
        }
    }
}

impl<K, V> Drop for Dead<K, V> {
    fn drop(&mut self) {
        // Not buried (a panic on the way): the cells stay with the slab
        // until the map is dropped; tables' own memory is freed here.
        if self.len > 0 {
            for what in self.drop_graves() {
                free_table(what);
            }
        }
    }
}

/// Frees the memory of a table whose grave was dropped; nothing for a
/// node (its cell belongs to the slab).
fn free_table<K, V>(what: Retired<K, V>) {
    if let Retired::Table(t) = what {
        // SAFETY: the grave owned the table, and its drop dropped the
        // nodes' keys and values; the table's own memory is left.
        drop(unsafe { crossbeam_epoch::Owned::from_raw(t) });
    }
}

/// What a [`Dead::bury`] dropped, whose memory is yet to be given back.
pub(super) struct Spent<K, V>([Option<Retired<K, V>>; SWEEP]);

impl<K, V> Spent<K, V> {
    pub(super) fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }
}

impl<K, V> IntoIterator for Spent<K, V> {
    type Item = Retired<K, V>;
    type IntoIter = core::iter::Flatten<core::array::IntoIter<Option<Retired<K, V>>, SWEEP>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

impl<K, V> Dead<K, V> {
    /// Flushes a full batch's ticket to the epoch (left in this thread's
    /// bag it would wait for 63 more deferred items, and a steady writer
    /// would pile up that many batches), then drops the graves. Lock not
    /// held: flushing runs deferred closures, and dropping runs user code.
    /// Returns what they held, for its memory to be given back.
    #[inline]
    pub(super) fn bury(&mut self, guard: &Guard) -> Spent<K, V> {
        if self.flush {
            self.flush = false;
            guard.flush();
        }
        if self.len > 0 {
            self.drop_graves()
        } else {
            Spent([None; SWEEP])
        }
    }

    #[cold]
    fn drop_graves(&mut self) -> Spent<K, V> {
        let len = core::mem::replace(&mut self.len, 0);
        let mut spent = Spent([None; SWEEP]);
        for (i, s) in spent.0.iter_mut().take(len).enumerate() {
            // SAFETY: the first `len` graves are initialised.
            *s = Some(unsafe { self.graves[i].assume_init_ref() }.what);
        }
        // SAFETY: the first `len` graves are initialised and ours; `len`
        // is zeroed first, so a panicking drop cannot drop them twice (the
        // rest then leak).
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                self.graves.as_mut_ptr().cast::<Grave<K, V>>(),
                len,
            ));
        }
        spent
    }
}

impl<K, V> Graveyard<K, V> {
    pub(super) const fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            unsealed: 0,
        }
    }

    /// Queues `what`, unlinked from readers by the caller. Lock held.
    pub(super) fn bury(&mut self, what: Retired<K, V>) {
        self.queue.push_back(Grave {
            ticket: ptr::null(),
            what,
        });
        self.unsealed += 1;
    }

    /// Seals the unsealed graves under a new ticket deferred to the epoch,
    /// unless `growing` (the shard is migrating: see "Reclamation" in
    /// `raw.rs`), or the last ticket is still waiting and fewer than
    /// [`BATCH`] are unsealed (then a later writer seals them); and takes
    /// up to [`SWEEP`] graves whose ticket is raised from the front, for
    /// the caller to [`bury`](Dead::bury) after unlocking. Lock held.
    #[inline]
    pub(super) fn seal_and_sweep(
        &mut self,
        guard: &Guard,
        growing: bool,
        dead: &mut Dead<K, V>,
        slab: &mut Slab<K, V>,
    ) {
        if !self.queue.is_empty() {
            self.sweep_and_seal(guard, growing, dead, slab);
        }
    }

    fn sweep_and_seal(
        &mut self,
        guard: &Guard,
        growing: bool,
        dead: &mut Dead<K, V>,
        slab: &mut Slab<K, V>,
    ) {
        // Nothing to drop: the memory goes back now, under the lock.
        let memory_only = !core::mem::needs_drop::<Node<K, V>>();
        // Every sealed grave may go once the newest ticket is raised: see
        // "Overtaking" in the module docs.
        let all_sealed = self.newest_sealed().is_some_and(Grave::raised);
        let mut swept = 0;
        while swept < SWEEP {
            match self.queue.front() {
                Some(g) if g.raised() || (all_sealed && !g.ticket.is_null()) => {
                    if let Some(g) = self.queue.pop_front() {
                        swept += 1;
                        if memory_only {
                            // SAFETY: raised: no reader can reach it; its
                            // contents need no drop; the caller holds the
                            // lock and passes the shard's slab.
                            unsafe { recycle(g.into_what(), slab) };
                        } else {
                            dead.graves[dead.len].write(g);
                            dead.len += 1;
                        }
                    }
                }
                _ => break,
            }
        }
        if growing || self.unsealed == 0 {
            // Sealing waits for the old table to be unlinked.
        } else if self.unsealed >= BATCH {
            self.seal(guard);
            dead.flush = true;
        } else if !self.waiting() {
            self.seal(guard);
        }
    }

    /// The newest sealed grave (its ticket is the newest ticket).
    fn newest_sealed(&self) -> Option<&Grave<K, V>> {
        let sealed = self.queue.len() - self.unsealed;
        sealed.checked_sub(1).and_then(|i| self.queue.get(i))
    }

    /// Whether the newest ticket is still waiting in the epoch.
    fn waiting(&self) -> bool {
        match self.newest_sealed() {
            // Relaxed: a hint (sealing early or late is correct either way).
            // SAFETY: a sealed grave holds its ticket.
            Some(g) => !unsafe { &*g.ticket }.ready.load(Ordering::Relaxed),
            None => false,
        }
    }

    fn seal(&mut self, guard: &Guard) {
        let ticket = Box::into_raw(Box::new(Ticket {
            refs: AtomicUsize::new(self.unsealed + 1),
            ready: AtomicBool::new(false),
        }));
        let from = self.queue.len() - self.unsealed;
        for g in self.queue.range_mut(from..) {
            g.ticket = ticket;
        }
        self.unsealed = 0;
        let t = ticket as usize;
        // The closure is `'static` and generic-free: it never touches the
        // map. Deferred after every covered grave was unlinked (they were
        // buried before, under the lock we hold).
        guard.defer(move || {
            let t = t as *const Ticket;
            // SAFETY: the closure holds one of the ticket's references.
            unsafe {
                // Release: pairs with the sweeper's Acquire.
                (*t).ready.store(true, Ordering::Release);
                Ticket::release(t);
            }
        });
    }

    /// Drops every grave, raised or not: the map is being dropped, so no
    /// reader can reach anything (`&mut`).
    pub(super) fn drain(&mut self) {
        self.unsealed = 0;
        // Front to back; a panicking drop still drops the rest (the
        // `VecDeque`'s own drop continues while unwinding).
        while let Some(g) = self.queue.pop_front() {
            let what = g.what;
            drop(g);
            free_table(what);
        }
    }

    /// Graves waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Runs a grave's drop. It runs after some other writer's operation (or in
/// the map's drop): a panic from a key's or value's `Drop` there has
/// nothing to do with that caller, so under `std` it is caught and
/// discarded (see `std_contained.rs`); without `std` nothing can catch it
/// and it unwinds from that writer's call, the other graves of its sweep
/// still dropped while unwinding.
#[cfg(not(feature = "std"))]
#[inline]
fn contained(f: impl FnOnce()) {
    f();
}

#[cfg(feature = "std")]
use super::std_contained::contained;
