//! Small crate-internal macros, among them the one spelling of each cfg
//! combination the crate uses (`cfg_std!`, `cfg_not_std!`, `cfg_threads!`,
//! `cfg_alloc!`, `cfg_atomic64!`, `cfg_loom!`, `cfg_not_loom!`).
//!
//! Module lines use plain features (`#[cfg(feature = "std")]`) or these
//! macros that do not depend on loom (`cfg_threads!`, `cfg_atomic64!`), so
//! the module tree is the same under `--cfg latchfree_loom`; `cfg_std!`,
//! `cfg_not_std!` and `cfg_alloc!` are for code that really differs
//! between the real primitives and loom's (the `sync` selection,
//! crossbeam-epoch's global collector).

/// Declares a function `const` except under loom, whose atomics and cells
/// have no `const` constructors.
macro_rules! const_fn_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
        #[cfg(not(latchfree_loom))]
        $(#[$meta])* $vis const fn $name $($rest)*
        #[cfg(latchfree_loom)]
        $(#[$meta])* $vis fn $name $($rest)*
    };
}

/// Items for the real `std` build: `feature = "std"` and not under loom.
/// The one spelling of that condition (loom models build their own world
/// of threads and time, see `sync`).
macro_rules! cfg_std {
    ($($item:item)*) => {
        $(
            #[cfg(all(feature = "std", not(latchfree_loom)))]
            #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
            $item
        )*
    };
}

/// Items for every build but the real `std` one: `no_std`, or a loom
/// model (the complement of `cfg_std!`).
#[allow(unused_macros)] // its users need `alloc`
macro_rules! cfg_not_std {
    ($($item:item)*) => {
        $( #[cfg(not(all(feature = "std", not(latchfree_loom))))] $item )*
    };
}

/// Items that need threads: the real `std` build or a loom model (which
/// always has `std`; lib.rs refuses loom without it).
macro_rules! cfg_threads {
    ($($item:item)*) => {
        $(
            #[cfg(any(feature = "std", latchfree_loom))]
            #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
            $item
        )*
    };
}

/// Items for the real `alloc` build, not under loom.
#[allow(unused_macros)] // no user yet; the spelling is kept for the others
macro_rules! cfg_alloc {
    ($($item:item)*) => {
        $(
            #[cfg(all(feature = "alloc", not(latchfree_loom)))]
            #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
            $item
        )*
    };
}

/// Items that need 64-bit atomics: where the target has them, and under
/// loom (whose `AtomicU64` exists on every host).
macro_rules! cfg_atomic64 {
    ($($item:item)*) => {
        $(
            #[cfg(any(target_has_atomic = "64", latchfree_loom))]
            #[cfg_attr(docsrs, doc(cfg(target_has_atomic = "64")))]
            $item
        )*
    };
}

/// Items that exist only under loom.
macro_rules! cfg_loom {
    ($($item:item)*) => {
        $( #[cfg(latchfree_loom)] $item )*
    };
}

/// Items that exist everywhere except under loom.
macro_rules! cfg_not_loom {
    ($($item:item)*) => {
        $( #[cfg(not(latchfree_loom))] $item )*
    };
}
