//! The batcher's counters and their snapshot.

use super::handoff::FlushCause;
use crate::sync::{AtomicUsize, Ordering};

/// A point-in-time view of the batcher's counters; stale under concurrency.
///
/// ```
/// use std::time::Duration;
/// use latchfree::batch::Batcher;
///
/// let b = Batcher::builder::<()>()
///     .max_items(10)
///     .max_delay(Duration::from_secs(60))
///     .build(|_: &mut Vec<u32>| Ok(())).unwrap();
/// for i in 0..25 {
///     b.push(i).unwrap();
/// }
/// b.flush(); // ships the 5 left over
/// let m = b.metrics();
/// assert_eq!((m.accepted, m.delivered, m.by_items, m.by_manual), (25, 25, 2, 1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Items accepted.
    pub accepted: usize,
    /// Pushes refused (full or closed).
    pub rejected: usize,
    /// Items handed to the handler. Once the batcher is closed,
    /// `accepted == delivered + unweighed`.
    pub delivered: usize,
    /// Batches handed to the handler.
    pub batches: usize,
    /// Batches that failed (error or panic) and went to the error callback.
    pub failed: usize,
    /// Of which panicked (the handler, or the weigher on an item).
    pub panicked: usize,
    /// Items the weigher panicked on: each went to the error callback alone
    /// ([`BatchError::Unweighed`](super::BatchError::Unweighed)) instead of to the handler.
    pub unweighed: usize,
    /// Batches shipped full of items.
    pub by_items: usize,
    /// Batches shipped at the byte limit.
    pub by_bytes: usize,
    /// Batches shipped by time (or natural batching).
    pub by_time: usize,
    /// Batches shipped by `flush`.
    pub by_manual: usize,
    /// Batches shipped by close.
    pub by_close: usize,
}

/// The counters behind [`Metrics`] (accepted items are counted in the
/// producers' lanes). Relaxed throughout: metrics order nothing.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) rejected: AtomicUsize,
    pub(super) delivered: AtomicUsize,
    pub(super) batches: AtomicUsize,
    pub(super) failed: AtomicUsize,
    pub(super) panicked: AtomicUsize,
    pub(super) unweighed: AtomicUsize,
    pub(super) causes: [AtomicUsize; 5],
}

impl Counters {
    /// The snapshot, given the pushes counted in the producers' lanes (every
    /// push is counted there before its publish, refused ones too).
    pub(super) fn snapshot(&self, counted: usize) -> Metrics {
        // Relaxed: metrics only.
        let r = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let rejected = r(&self.rejected);
        Metrics {
            accepted: counted.saturating_sub(rejected),
            rejected,
            delivered: r(&self.delivered),
            batches: r(&self.batches),
            failed: r(&self.failed),
            panicked: r(&self.panicked),
            unweighed: r(&self.unweighed),
            by_items: r(&self.causes[FlushCause::Items as usize]),
            by_bytes: r(&self.causes[FlushCause::Bytes as usize]),
            by_time: r(&self.causes[FlushCause::Time as usize]),
            by_manual: r(&self.causes[FlushCause::Manual as usize]),
            by_close: r(&self.causes[FlushCause::Close as usize]),
        }
    }
}
