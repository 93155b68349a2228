//! The immutable snapshot every `alloc` balancer reads: one epoch-managed
//! pointer, replaced whole.
//!
//! Ground rules: the pointer is never null; a snapshot is never written
//! after it is published (the `Release` of the installing CAS publishes its
//! contents to the `Acquire` load of any picker that sees it); a replaced
//! snapshot is handed to the epoch collector, which drops it only once no
//! guard pinned before the swap is alive, so a picker's `&T` stays valid
//! for its guard's lifetime.

use crossbeam_epoch::{Atomic, Collector, Guard, Owned};

use crate::sync::Ordering::{AcqRel, Acquire};

pub(crate) struct Snapshot<T> {
    current: Atomic<T>,
    /// crossbeam's global collector under `std`, else one per snapshot
    /// (see `new_collector`).
    collector: Collector,
}

impl<T> Snapshot<T> {
    pub(crate) fn new(value: T) -> Snapshot<T> {
        Snapshot {
            current: Atomic::new(value),
            collector: new_collector(),
        }
    }

    /// The collector guards passed to [`load`](Self::load) must come from.
    pub(crate) fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Pins the epoch: under `std` a cheap thread-local pin, otherwise a
    /// registration per call (keep a `LocalHandle` in hot `no_std` code).
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        pin(&self.collector)
    }

    /// The current snapshot, valid while `guard` lives.
    ///
    /// # Panics
    ///
    /// If `guard` was not pinned from this snapshot's collector.
    #[inline]
    pub(crate) fn load<'g>(&self, guard: &'g Guard) -> &'g T {
        assert!(
            guard.collector() == Some(&self.collector),
            "latchfree::balance: guard pinned from another collector"
        );
        // Acquire: pairs with the installing CAS's Release, so the
        // snapshot's contents are visible.
        let shared = self.current.load(Acquire, guard);
        // SAFETY: the pointer is never null (set in `new`, only ever
        // replaced by another live pointer), and a replaced snapshot is
        // destroyed only through `defer_destroy`, after every guard pinned
        // before the swap (including `guard`) is dropped.
        unsafe { shared.deref() }
    }

    /// Replaces the snapshot with `f(current)`, retrying `f` on the new
    /// current if another change wins the race; `f` returning `Err` leaves
    /// it unchanged. `f` runs outside any lock and may run more than once.
    pub(crate) fn update<E>(&self, mut f: impl FnMut(&T) -> Result<T, E>) -> Result<(), E> {
        let guard = self.pin();
        let mut current = self.current.load(Acquire, &guard);
        loop {
            // SAFETY: as in `load`: never null, and `guard` keeps it alive.
            let next = f(unsafe { current.deref() })?;
            // AcqRel: Release publishes `next`'s contents; Acquire on
            // failure reads the winner's snapshot before rebuilding.
            match self
                .current
                .compare_exchange(current, Owned::new(next), AcqRel, Acquire, &guard)
            {
                Ok(_) => {
                    // SAFETY: `current` is unlinked by the CAS above; no new
                    // reader can reach it, and the collector drops it only
                    // after every guard that might hold it is gone.
                    unsafe { guard.defer_destroy(current) };
                    return Ok(());
                }
                Err(e) => {
                    current = e.current;
                    drop(e.new);
                }
            }
        }
    }
}

impl<T> Drop for Snapshot<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no picker can hold a guard-bound reference
        // into a snapshot of a balancer being dropped (every `load` borrows
        // the balancer), so the current snapshot is ours alone.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let current = self.current.load(Acquire, guard);
            drop(current.into_owned());
        }
    }
}

cfg_std! {
    /// crossbeam's global collector, whose thread-local pin is cheap.
    fn new_collector() -> Collector {
        crossbeam_epoch::default_collector().clone()
    }

    #[inline]
    fn pin(_global: &Collector) -> Guard {
        crossbeam_epoch::pin()
    }
}

// Without `std` there is no global collector; under loom none may outlive
// a model run.
cfg_not_std! {
    fn new_collector() -> Collector {
        Collector::new()
    }

    #[inline]
    fn pin(collector: &Collector) -> Guard {
        collector.register().pin()
    }
}

/// A picker's standing pin: one guard held across many picks, so a pick
/// reads the snapshot pointer with one `Acquire` load (a plain load on
/// x86) instead of pinning (a `SeqCst` fence) each time.
///
/// Holding the guard keeps the epoch from advancing past it, so retired
/// snapshots (under `std`, anything retired to crossbeam's global
/// collector) wait for it. It therefore re-pins every [`REPIN_EVERY`]
/// picks, and is `!Send` (a guard belongs to its thread).
pub(crate) struct Pinned {
    guard: Guard,
    until_repin: u32,
}

/// Picks between re-pins of a [`Pinned`].
pub(crate) const REPIN_EVERY: u32 = 64;

impl Pinned {
    pub(crate) fn new<T>(snapshot: &Snapshot<T>) -> Pinned {
        Pinned {
            guard: snapshot.pin(),
            until_repin: REPIN_EVERY,
        }
    }

    /// Counts one pick and re-pins when due. Call before taking a new
    /// reference with [`load`](Self::load): a re-pin ends the lifetimes of
    /// references taken through the old pin, which `&mut self` enforces.
    #[inline]
    pub(crate) fn tick(&mut self) {
        self.until_repin -= 1;
        if self.until_repin == 0 {
            self.until_repin = REPIN_EVERY;
            // Unpins and pins again: the epoch may advance in between, so
            // snapshots retired before now can be freed.
            self.guard.repin();
        }
    }

    /// Ends the pin now and pins afresh (for a picker about to sit idle).
    pub(crate) fn refresh(&mut self) {
        self.until_repin = REPIN_EVERY;
        self.guard.repin();
    }

    /// The current snapshot of `snapshot`, which must be the one this pin
    /// was made for (the caller's type pairs them).
    #[inline]
    pub(crate) fn load<'p, T>(&'p self, snapshot: &Snapshot<T>) -> &'p T {
        debug_assert!(self.guard.collector() == Some(&snapshot.collector));
        // Acquire: pairs with the installing CAS's Release.
        let shared = snapshot.current.load(Acquire, &self.guard);
        // SAFETY: never null (see `Snapshot::load`); `self.guard` has been
        // pinned on `snapshot`'s collector since before this load (checked
        // at construction: `Pinned::new` pins from it), and the reference
        // borrows `self`, so it dies before any `repin` (`&mut self`).
        unsafe { shared.deref() }
    }
}
