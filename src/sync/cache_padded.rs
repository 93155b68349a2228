//! Padding by target: a value alone on its cache line where two cores could
//! fight over the line, plain word alignment where they cannot.
//!
//! On every target with a data cache shared by several cores this is
//! crossbeam-utils' `CachePadded` (128 bytes on x86-64 and aarch64, 32 on
//! 32-bit ARM, ...), so two hot atomics written by different threads never
//! share a line.
//!
//! On bare-metal ARM (`target_arch = "arm"`, `target_os = "none"`: the
//! Cortex-M parts thumbv6m, thumbv7m, thumbv7em, thumbv8m) padding buys
//! nothing and costs RAM that small parts do not have: Cortex-M0/M0+/M3/M4
//! have no data cache at all, and where there is one (M7) it belongs to one
//! core and is not kept coherent with any other, so there is no line to
//! share falsely. There the type is a transparent wrapper aligned to a word
//! (a single-producer `Ring<Inline<u8, 1, 1>>` takes 32 bytes instead
//! of 160). Bare-metal
//! Cortex-A/R builds (`armv7a-none-eabi`) match the same cfg; an SMP
//! firmware on one of those pays false sharing, not unsoundness.

#[cfg(not(all(target_arch = "arm", target_os = "none")))]
pub use crossbeam_utils::CachePadded;

#[cfg(all(target_arch = "arm", target_os = "none"))]
pub use self::word::CachePadded;

#[cfg(all(target_arch = "arm", target_os = "none"))]
const _: () = assert!(core::mem::size_of::<CachePadded<crate::sync::AtomicUsize>>() == 4);

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod word {
    use core::fmt;
    use core::ops::{Deref, DerefMut};

    /// A value aligned to (at least) a word and nothing more: see the
    /// module docs. The same API as crossbeam-utils' `CachePadded`.
    #[derive(Clone, Copy, Default, Hash, PartialEq, Eq)]
    #[repr(C, align(4))]
    pub struct CachePadded<T> {
        value: T,
    }

    impl<T> CachePadded<T> {
        /// Wraps `value`.
        pub const fn new(value: T) -> CachePadded<T> {
            CachePadded { value }
        }

        /// Unwraps the value.
        pub fn into_inner(self) -> T {
            self.value
        }
    }

    impl<T> Deref for CachePadded<T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.value
        }
    }

    impl<T> DerefMut for CachePadded<T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.value
        }
    }

    impl<T: fmt::Debug> fmt::Debug for CachePadded<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CachePadded")
                .field("value", &self.value)
                .finish()
        }
    }

    impl<T> From<T> for CachePadded<T> {
        fn from(t: T) -> Self {
            CachePadded::new(t)
        }
    }
}
