//! Small crate-internal macros.

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
