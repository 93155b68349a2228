//! Under `std`, a grave's drop runs under `catch_unwind`: see `grave.rs`.

/// Runs `f`, discarding a panic (a key's or value's `Drop` run for a grave,
/// on some other caller's time).
#[inline]
pub(super) fn contained(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f));
}
