//! The one place that names atomics, cells, spin hints, threads, locks and
//! the clock.
//!
//! Everything else in the crate imports these from here, by the same names
//! in every build. This module only selects, one whole block per world, as
//! tokio's `loom` module and crossbeam-utils' `primitive` do:
//!
//! - `real.rs`: the real primitives that need no `std` (atomics, the cell,
//!   spin hints, the backoff), always outside loom;
//! - `std_real.rs`: the real threads, locks and clock (`thread`,
//!   `blocking`, `time`), outside loom with `std`;
//! - `std_loom.rs`: under `--cfg latchfree_loom`, loom's model-checked
//!   versions of all of the above (loom runs on `std`), so every atomic
//!   protocol can be explored by the models in `loom-tests/` without a line
//!   of the protocol changing.
//!
//! Both worlds offer: `fence`, `Ordering`, `AtomicBool`, `AtomicU8`,
//! `AtomicU32`, `AtomicUsize`, `AtomicPtr`, `AtomicU64` (where the target
//! has it), `Arc` (`alloc`), `UnsafeCell` (with loom's closure-scoped
//! `with`/`with_mut` access), `Backoff`, `spin_loop`, `busy_loop`, and with
//! threads the `thread`, `blocking` and `time` modules. Only the real world
//! has `Weak` (loom has none).
//!
//! Below the selection: the untracked primitives (the real ones in both
//! worlds, for the few places loom's cannot go) and cache padding (by
//! target, not by world: `cache_padded.rs`).

// The facade offers the whole set; not every feature combination uses
// every item.
#![allow(unused_imports, dead_code)]

cfg_not_loom! {
    mod real;
    pub(crate) use self::real::*;
}

cfg_std! {
    mod std_real;
    pub(crate) use self::std_real::*;
}

cfg_loom! {
    mod std_loom;
    pub(crate) use self::std_loom::*;
}

// Untracked: the real primitive also under loom, for exactly two reasons,
// and only for memory whose every access is ordered by atomics loom does
// track, or which orders nothing:
// - a `static` (loom's atomics have no `const` constructor and live for one
//   model run): process-wide counters that hand out identities;
// - a borrow that outlives a closure (loom's cell scopes every access to a
//   `with` call): the map's write-once buckets, which readers borrow for as
//   long as their epoch guard lives;
// and `HandleArc`, `Arc` as it appears in public signatures
// (`self: &Arc<Self>`), which loom's `Arc` cannot be, for handles whose
// reference count orders nothing a model checks.

/// A plain atomic counter, also under loom (see above).
pub(crate) use core::sync::atomic::AtomicUsize as UntrackedAtomicUsize;

/// A plain `UnsafeCell`, also under loom (see above).
pub(crate) use core::cell::UnsafeCell as UntrackedUnsafeCell;

/// The real `Arc`, also under loom (see above).
#[cfg(feature = "alloc")]
pub(crate) use alloc::sync::Arc as HandleArc;

mod cache_padded;
pub use self::cache_padded::CachePadded;
