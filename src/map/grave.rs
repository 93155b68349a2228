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
//!   lock (or with `&mut` to the shard). Order, front to back: the `free`
//!   graves (their ticket, or a later one, was seen raised), the sealed
//!   ones in sealing order (one [`Batch`] per ticket, in `batches`), then
//!   the `unsealed` ones.
//! - A ticket covers the graves that were unsealed when it was made (its
//!   batch): it is deferred to the epoch after they were all unlinked, so
//!   once the epoch runs it no reader can reach them.
//! - A ticket has two holders, the epoch closure and its batch; the last
//!   to let go frees it. A batch lets go when its graves become `free` (or
//!   the map is dropped): graves themselves hold no ticket, so sweeping a
//!   grave touches neither a ticket nor an atomic.
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
//! finally collected. A sweep looks at tickets only when no grave is
//! known `free`: one raised ticket frees a whole batch (or all of them),
//! which the following sweeps take without looking again.

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

/// While no grave is known free, sweeps look at tickets once every `LOOK`
/// (a ticket load is a likely cache miss, and a ticket rises at the
/// epoch's pace, not the writers'): at most `LOOK - 1` commits' worth of
/// graves wait longer than they must. Loom looks every time, so its
/// models stay small.
#[cfg(not(latchfree_loom))]
const LOOK: u8 = 4;
#[cfg(latchfree_loom)]
const LOOK: u8 = 1;

/// What the epoch raises once no reader can reach the graves it covers.
/// `'static` and generic-free: it is all the epoch's closure touches.
struct Ticket {
    /// Holders: the epoch closure and the batch (at most 2).
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

/// A retired item waiting for its ticket (which its batch holds).
pub(super) struct Grave<K, V> {
    what: Retired<K, V>,
}

// SAFETY: a grave owns what it drops (a node or a table: keys and values,
// `Send`).
unsafe impl<K: Send, V: Send> Send for Grave<K, V> {}

impl<K, V> Grave<K, V> {
    /// Gives up the grave without dropping what it holds (the caller
    /// frees it: nothing in it needs a drop).
    fn into_what(self) -> Retired<K, V> {
        core::mem::ManuallyDrop::new(self).what
    }
}

impl<K, V> Drop for Grave<K, V> {
    fn drop(&mut self) {
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

/// The graves one ticket covers: the next `graves` sealed graves in the
/// queue. Holds one of the ticket's references.
struct Batch {
    ticket: *const Ticket,
    graves: usize,
}

// SAFETY: a ticket is touched only through its atomics, from any thread
// (its memory is freed by whichever holder lets go last).
unsafe impl Send for Batch {}

impl Batch {
    /// Whether the batch's ticket is raised: no reader can reach its
    /// graves (nor, see "Overtaking", any sealed before them).
    fn raised(&self) -> bool {
        // SAFETY: the batch holds one of the ticket's references.
        // Acquire pairs with the epoch closure's Release: every reader that
        // could reach the covered graves has unpinned.
        unsafe { &*self.ticket }.ready.load(Ordering::Acquire)
    }
}

/// A shard's queue of graves; see the module docs.
pub(super) struct Graveyard<K, V> {
    /// `free` graves, then the batches' graves, then `unsealed` ones.
    queue: VecDeque<Grave<K, V>>,
    /// Sealed batches, oldest first; their graves follow the `free` ones.
    batches: VecDeque<Batch>,
    /// Graves at the front that may go now (their batches let go of their
    /// tickets when they joined).
    free: usize,
    /// Graves at the back not yet covered by a ticket.
    unsealed: usize,
    /// Sweeps left before the tickets are looked at (`0..LOOK`).
    look: u8,
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
    /// Whether there is nothing to flush or drop.
    #[inline]
    pub(super) fn idle(&self) -> bool {
        self.len == 0 && !self.flush
    }

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
            batches: VecDeque::new(),
            free: 0,
            unsealed: 0,
            look: 0,
        }
    }

    /// Queues `what`, unlinked from readers by the caller. Lock held.
    pub(super) fn bury(&mut self, what: Retired<K, V>) {
        self.queue.push_back(Grave { what });
        self.unsealed += 1;
    }

    /// Seals the unsealed graves under a new ticket deferred to the epoch,
    /// unless `growing` (the shard is migrating: see "Reclamation" in
    /// `raw.rs`), or an earlier batch still waits for its ticket and fewer than
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
        // Nothing to do, decided inline (most commits): nothing free, not
        // the sweep that looks at tickets, and nothing to seal.
        let idle = self.free == 0
            && self.look != 0
            && (growing
                || self.unsealed == 0
                || (self.unsealed < BATCH && !self.batches.is_empty()));
        if idle {
            self.look -= 1;
        } else if !self.queue.is_empty() {
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
        if self.free == 0 {
            if self.look == 0 {
                self.look = LOOK - 1;
                self.raise();
            } else {
                self.look -= 1;
            }
        }
        // Nothing to drop: the memory goes back now, under the lock.
        let memory_only = !core::mem::needs_drop::<Node<K, V>>();
        let n = self.free.min(SWEEP);
        for _ in 0..n {
            if let Some(g) = self.queue.pop_front() {
                if memory_only {
                    // SAFETY: free: no reader can reach it; its contents
                    // need no drop; the caller holds the lock and passes
                    // the shard's slab.
                    unsafe { recycle(g.into_what(), slab) };
                } else {
                    dead.graves[dead.len].write(g);
                    dead.len += 1;
                }
            }
        }
        self.free -= n;
        if growing || self.unsealed == 0 {
            // Sealing waits for the old table to be unlinked.
        } else if self.unsealed >= BATCH {
            self.seal(guard);
            dead.flush = true;
        } else if self.batches.is_empty() {
            // No ticket waiting in the epoch (the last one rose and freed
            // its batch): start the next one at once.
            self.seal(guard);
        }
    }

    /// Frees the graves whose ticket is raised: every sealed one if the
    /// newest ticket is (see "Overtaking"), else the oldest batch if its
    /// own is. Each batch freed lets go of its ticket.
    #[inline]
    fn raise(&mut self) {
        let all = match self.batches.back() {
            Some(newest) => newest.raised(),
            None => return,
        };
        while let Some(b) = self.batches.front() {
            if !all && !b.raised() {
                break;
            }
            self.free += b.graves;
            // SAFETY: the batch holds one of the ticket's references, given
            // up here with the batch.
            unsafe { Ticket::release(b.ticket) };
            self.batches.pop_front();
            if !all {
                break;
            }
        }
    }

    fn seal(&mut self, guard: &Guard) {
        let ticket = Box::into_raw(Box::new(Ticket {
            refs: AtomicUsize::new(2),
            ready: AtomicBool::new(false),
        }));
        self.batches.push_back(Batch {
            ticket,
            graves: self.unsealed,
        });
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

    /// Lets go of every batch's ticket (the graves stay queued).
    fn release_batches(&mut self) {
        while let Some(b) = self.batches.pop_front() {
            // SAFETY: the batch holds one of the ticket's references.
            unsafe { Ticket::release(b.ticket) };
        }
    }

    /// Drops every grave, raised or not: the map is being dropped, so no
    /// reader can reach anything (`&mut`).
    pub(super) fn drain(&mut self) {
        self.release_batches();
        self.free = 0;
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

impl<K, V> Drop for Graveyard<K, V> {
    fn drop(&mut self) {
        // The shard drains it first; this only gives the tickets back if
        // that drain unwound (the queue's graves drop with it).
        self.release_batches();
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
