//! Small crate-internal macros, among them the one spelling of each cfg
//! combination the crate uses (`cfg_std!`, `cfg_threads!`, `cfg_alloc!`,
//! `cfg_loom!`, `cfg_not_loom!`).

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
#[allow(unused_macros)] // until every module uses it
macro_rules! cfg_std {
    ($($item:item)*) => {
        $(
            #[cfg(all(feature = "std", not(latchfree_loom)))]
            #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
            $item
        )*
    };
}

/// Items that need threads: the real `std` build or a loom model.
#[allow(unused_macros)] // until every module uses it
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
#[allow(unused_macros)] // until every module uses it
macro_rules! cfg_alloc {
    ($($item:item)*) => {
        $(
            #[cfg(all(feature = "alloc", not(latchfree_loom)))]
            #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
            $item
        )*
    };
}

/// Items that exist only under loom.
#[allow(unused_macros)] // until every module uses it
macro_rules! cfg_loom {
    ($($item:item)*) => {
        $( #[cfg(latchfree_loom)] $item )*
    };
}

/// Items that exist everywhere except under loom.
#[allow(unused_macros)] // until every module uses it
macro_rules! cfg_not_loom {
    ($($item:item)*) => {
        $( #[cfg(not(latchfree_loom))] $item )*
    };
}
