//! What a [`Driver`](super::Driver) drives: any single-owner timer
//! structure with keyed insert, remove, reset and expiry. Implemented by
//! the wheel (rounded to ticks, O(1)) and the delay queue (exact order,
//! O(log n)).

use crate::arena::{RawKey, StorageKind};
use crate::queue::{DelayKey, DelayQueue, PriorityKey};
use crate::wheel::{TimerKey, Wheel};

/// A single-owner timer structure the [`Driver`](super::Driver) can drive:
/// implemented by [`Wheel`] and [`DelayQueue`]. Its methods are the
/// containers' own, under the same names.
///
/// ```
/// use latchfree::queue::DelayQueue;
/// use latchfree::wheel::shared::{Driver, Entry, TimerCore};
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// // The same hand-off drives a wheel (ticks) or a delay queue (exact order).
/// fn drive<C: TimerCore<Value = Entry<u32>>>(core: C) -> Vec<u32> {
///     let (mut driver, submitter) = Driver::new(core);
///     submitter.insert_at(2, 20).unwrap();
///     submitter.insert_at(1, 10).unwrap();
///     std::iter::from_fn(|| driver.poll_expired(100)).map(|f| f.value).collect()
/// }
/// assert_eq!(drive(Wheel::<Entry<u32>, Growable>::new(WheelConfig::new())), [1, 2]);
/// assert_eq!(drive(DelayQueue::<Entry<u32>, Growable>::new()), [1, 2]);
/// ```
pub trait TimerCore {
    /// The payload type.
    type Value;
    /// Adds a timer due at `deadline`; gives the value back when full.
    fn try_insert_at(&mut self, value: Self::Value, deadline: u64) -> Result<RawKey, Self::Value>;
    /// Removes a live timer.
    fn remove(&mut self, key: RawKey) -> Option<Self::Value>;
    /// Moves a live timer to `deadline`.
    fn reset_at(&mut self, key: RawKey, deadline: u64) -> bool;
    /// Takes one timer due at or before `now`: its value and deadline.
    fn poll_expired(&mut self, now: u64) -> Option<(Self::Value, u64)>;
    /// When the next poll may have work (a lower bound for a wheel).
    fn next_deadline(&self) -> Option<u64>;
    /// Timers held.
    fn len(&self) -> usize;
    /// Whether no timer is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V, K: StorageKind, const LEVELS: usize> TimerCore for Wheel<V, K, LEVELS> {
    type Value = V;
    fn try_insert_at(&mut self, value: V, deadline: u64) -> Result<RawKey, V> {
        Wheel::try_insert_at(self, value, deadline).map(|k| k.0)
    }
    fn remove(&mut self, key: RawKey) -> Option<V> {
        Wheel::remove(self, TimerKey(key))
    }
    fn reset_at(&mut self, key: RawKey, deadline: u64) -> bool {
        Wheel::reset_at(self, TimerKey(key), deadline)
    }
    fn poll_expired(&mut self, now: u64) -> Option<(V, u64)> {
        Wheel::poll_expired(self, now).map(|e| (e.value, e.deadline))
    }
    fn next_deadline(&self) -> Option<u64> {
        Wheel::next_deadline(self)
    }
    fn len(&self) -> usize {
        Wheel::len(self)
    }
}

impl<V, K: StorageKind> TimerCore for DelayQueue<V, K> {
    type Value = V;
    fn try_insert_at(&mut self, value: V, deadline: u64) -> Result<RawKey, V> {
        DelayQueue::try_insert_at(self, value, deadline).map(|k| k.raw())
    }
    fn remove(&mut self, key: RawKey) -> Option<V> {
        DelayQueue::remove(self, DelayKey(PriorityKey(key)))
    }
    fn reset_at(&mut self, key: RawKey, deadline: u64) -> bool {
        DelayQueue::reset_at(self, DelayKey(PriorityKey(key)), deadline)
    }
    fn poll_expired(&mut self, now: u64) -> Option<(V, u64)> {
        DelayQueue::poll_expired(self, now).map(|e| (e.value, e.deadline))
    }
    fn next_deadline(&self) -> Option<u64> {
        DelayQueue::next_deadline(self)
    }
    fn len(&self) -> usize {
        DelayQueue::len(self)
    }
}
