//! Shared by the loom test files.

/// Runs `f` under loom with at most two preemptions unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(f);
}
