//! A delay queue: items that become available at a deadline, in exact
//! deadline order, on the addressable [`PriorityQueue`].
//!
//! Unlike a timing wheel, which rounds to ticks and defers the work of
//! ordering to cascades, the delay queue keeps an exact order (ties in
//! insertion order) at O(log n) per operation. Time is the caller's `u64`,
//! as for the wheel; the queue keeps no clock of its own, so every
//! deadline it takes is absolute (`insert_at`, `reset_at`).

use super::heap::{PriorityKey, PriorityQueue};
use crate::arena::{Expired, Fixed, RawKey, StorageKind};

/// Names one item of a [`DelayQueue`]; generation-checked.
///
/// ```
/// use latchfree::queue::{DelayQueue, Fixed};
///
/// let mut q: DelayQueue<&str, Fixed<4>> = DelayQueue::new_fixed();
/// let key = q.try_insert_at("retry", 100).unwrap();
/// assert_eq!((q.deadline(key), q.get(key)), (Some(100), Some(&"retry")));
/// q.poll_expired(100).unwrap();
/// assert!(!q.contains(key)); // stale once handed out
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DelayKey(pub(crate) PriorityKey);

impl DelayKey {
    /// The raw slot index and generation.
    pub fn raw(self) -> RawKey {
        self.0 .0
    }
}

/// Items released at their deadlines, earliest first.
///
/// `K` picks the storage: [`Fixed<N>`] (inline, `const fn`
/// [`new_fixed`](Self::new_fixed), bounded: [`try_insert_at`](Self::try_insert_at))
/// or [`Growable`](crate::queue::Growable) (with `alloc`, unbounded:
/// [`insert_at`](Self::insert_at) returns the key).
///
/// ```
/// use latchfree::queue::{DelayQueue, Fixed};
/// let mut q: DelayQueue<&str, Fixed<8>> = DelayQueue::new_fixed();
/// let late = q.try_insert_at("late", 20).unwrap();
/// q.try_insert_at("soon", 10).unwrap();
/// assert!(q.poll_expired(9).is_none());
/// assert_eq!(q.poll_expired(10).unwrap().value, "soon");
/// assert!(q.reset_at(late, 30));
/// assert_eq!(q.next_deadline(), Some(30));
/// assert_eq!(q.remove(late), Some("late"));
/// assert_eq!(q.remove(late), None); // stale key: no panic
/// ```
pub struct DelayQueue<T, K: StorageKind> {
    q: PriorityQueue<T, u64, K>,
}

impl<T, const N: usize> DelayQueue<T, Fixed<N>> {
    /// An empty queue of at most `N` items stored inline (no allocator).
    pub const fn new_fixed() -> Self {
        DelayQueue {
            q: PriorityQueue::new_fixed(),
        }
    }
}

#[cfg(feature = "alloc")]
impl<T> DelayQueue<T, crate::arena::Growable> {
    /// An empty unbounded queue on the heap.
    pub fn new() -> Self {
        DelayQueue {
            q: PriorityQueue::new(),
        }
    }

    /// An empty unbounded queue with room for `capacity` items before it
    /// reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        DelayQueue {
            q: PriorityQueue::with_capacity(capacity),
        }
    }

    /// Adds `value`, due at `deadline`, and returns its key. Any deadline
    /// is accepted (a past one is due at once).
    ///
    /// # Panics
    ///
    /// If the queue already holds `u32::MAX - 1` items (its index space).
    #[inline]
    pub fn insert_at(&mut self, value: T, deadline: u64) -> DelayKey {
        DelayKey(self.q.push(value, deadline))
    }
}

#[cfg(feature = "alloc")]
impl<T> Default for DelayQueue<T, crate::arena::Growable> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, K: StorageKind> DelayQueue<T, K> {
    /// Adds `value`, due at `deadline`; gives it back when the queue is
    /// full. Any deadline is accepted (a past one is due at once).
    #[inline]
    pub fn try_insert_at(&mut self, value: T, deadline: u64) -> Result<DelayKey, T> {
        self.q
            .try_push(value, deadline)
            .map(DelayKey)
            .map_err(|(v, _)| v)
    }

    /// Removes an item before it is handed out; `None` for a stale key.
    #[inline]
    pub fn remove(&mut self, key: DelayKey) -> Option<T> {
        self.q.remove(key.0).map(|(v, _)| v)
    }

    /// Moves an item to a new deadline (it then ranks after items already
    /// due at that deadline); `false` for a stale key.
    #[inline]
    pub fn reset_at(&mut self, key: DelayKey, deadline: u64) -> bool {
        self.q.change_priority(key.0, deadline)
    }

    /// Takes the earliest item if its deadline is at or before `now`: a
    /// loop of `while let Some(e) = q.poll_expired(now)` takes everything
    /// due, in deadline order (ties in insertion order).
    #[inline]
    pub fn poll_expired(&mut self, now: u64) -> Option<Expired<DelayKey, T>> {
        let key = DelayKey(self.q.peek_key()?);
        let (value, deadline) = self.q.pop_if(|_, &deadline| deadline <= now)?;
        Some(Expired {
            key,
            value,
            deadline,
        })
    }

    /// The earliest item, due or not: its key, value and deadline (the one
    /// [`poll_expired`](Self::poll_expired) hands out next).
    ///
    /// ```
    /// use latchfree::queue::{DelayQueue, Growable};
    ///
    /// let mut q: DelayQueue<&str, Growable> = DelayQueue::new();
    /// q.insert_at("b", 20);
    /// let a = q.insert_at("a", 10);
    /// assert_eq!(q.peek(), Some((a, &"a", 10)));
    /// assert!(q.reset_at(a, 30)); // the key is what lets you act on it
    /// assert_eq!(q.peek().map(|(_, v, d)| (*v, d)), Some(("b", 20)));
    /// ```
    pub fn peek(&self) -> Option<(DelayKey, &T, u64)> {
        let key = DelayKey(self.q.peek_key()?);
        let (value, &deadline) = self.q.peek()?;
        Some((key, value, deadline))
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.q.peek().map(|(_, d)| *d)
    }

    /// The deadline of a live item.
    pub fn deadline(&self, key: DelayKey) -> Option<u64> {
        self.q.priority(key.0).copied()
    }

    /// The value of a live item.
    pub fn get(&self, key: DelayKey) -> Option<&T> {
        self.q.get(key.0)
    }

    /// The value of a live item, mutably.
    pub fn get_mut(&mut self, key: DelayKey) -> Option<&mut T> {
        self.q.get_mut(key.0)
    }

    /// Whether `key` names a live item.
    pub fn contains(&self, key: DelayKey) -> bool {
        self.q.contains(key.0)
    }

    /// Items in the queue.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Most items the queue can hold.
    pub fn capacity(&self) -> usize {
        self.q.capacity()
    }

    /// Hands back memory no item needs (growable storage; after a burst
    /// the queue keeps its high-water mark until compacted). Keys stay
    /// valid and stale keys stay stale. O(slots).
    ///
    /// ```
    /// use latchfree::queue::{DelayQueue, Growable};
    ///
    /// let mut q: DelayQueue<u32, Growable> = DelayQueue::new();
    /// let keep = q.insert_at(0, 5);
    /// let burst: Vec<_> = (1..1000).map(|i| q.insert_at(i, 10)).collect();
    /// for k in burst {
    ///     q.remove(k);
    /// }
    /// q.compact();
    /// assert_eq!(q.get(keep), Some(&0));
    /// assert_eq!(q.poll_expired(5).map(|e| e.key), Some(keep));
    /// ```
    pub fn compact(&mut self) {
        self.q.compact();
    }

    /// Drops every item; keys handed out before stay stale.
    pub fn clear(&mut self) {
        self.q.clear();
    }
}

impl<T, K: StorageKind> core::fmt::Debug for DelayQueue<T, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DelayQueue")
            .field("len", &self.len())
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}
