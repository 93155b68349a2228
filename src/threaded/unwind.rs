//! What the adapters do with a caught panic: its payload type, and a drop
//! that cannot unwind.
//!
//! The pool and the batcher run user code (jobs, handlers, callbacks, the
//! `Drop` of items and payloads) on their own threads, always under
//! `catch_unwind`, so a panic never costs a thread.

use alloc::boxed::Box;
use core::any::Any;
use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

/// A panic payload, as `std::panic::catch_unwind` returns it.
///
/// ```
/// use latchfree::pool::{JoinError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// let h = pool.spawn(|| -> u32 { panic!("no luck") }).unwrap();
/// match h.join() {
///     Err(JoinError::Panicked(payload)) => {
///         assert_eq!(payload.downcast_ref::<&str>(), Some(&"no luck"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
pub type Payload = Box<dyn Any + Send + 'static>;

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(p: &Payload) -> Option<&str> {
    p.downcast_ref::<&str>().copied().or_else(|| {
        p.downcast_ref::<alloc::string::String>()
            .map(|s| s.as_str())
    })
}

/// Drops `x` where a panic in its `Drop` is caught and discarded. That
/// panic's own payload is dropped the same way once, and leaked if even
/// its `Drop` panics: unwinding must stop somewhere.
pub(crate) fn drop_quietly<X>(x: X) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(x))) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(p))) {
            core::mem::forget(p);
        }
    }
}
