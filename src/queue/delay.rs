//! A delay queue: items that become available at a deadline, in exact
//! deadline order, on the addressable [`PriorityQueue`].
//!
//! Unlike a timing wheel, which rounds to ticks and defers the work of
//! ordering to cascades, the delay queue keeps an exact order (ties in
//! insertion order) at O(log n) per operation. Time is the caller's `u64`,
//! as for the wheel.

use super::arena::{Fixed, RawKey, StorageKind};
use super::heap::{Handle, PriorityQueue};

/// Names one item of a [`DelayQueue`]; generation-checked.
///
/// ```
/// use latchfree::queue::arena::Fixed;
/// use latchfree::queue::DelayQueue;
///
/// let mut q: DelayQueue<&str, Fixed<4>> = DelayQueue::new_fixed();
/// let key = q.insert_at("retry", 100).unwrap();
/// assert_eq!((q.deadline(key), q.get(key)), (Some(100), Some(&"retry")));
/// q.poll_expired(100).unwrap();
/// assert!(!q.contains(key)); // stale once handed out
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DelayKey(pub(crate) Handle);

impl DelayKey {
    /// The raw slot index and generation.
    pub fn raw(self) -> RawKey {
        self.0 .0
    }
}

/// An item whose deadline passed, as [`DelayQueue::poll_expired`] hands it out.
///
/// ```
/// use latchfree::queue::arena::Fixed;
/// use latchfree::queue::{DelayQueue, Expired};
///
/// let mut q: DelayQueue<u32, Fixed<4>> = DelayQueue::new_fixed();
/// let key = q.insert_at(7, 5).unwrap();
/// let Expired { key: k, deadline, value } = q.poll_expired(9).unwrap();
/// assert_eq!((k, deadline, value), (key, 5, 7));
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<T> {
    /// The key it was inserted with (stale from now on).
    pub key: DelayKey,
    /// Its deadline.
    pub deadline: u64,
    /// The item.
    pub value: T,
}

/// Items released at their deadlines, earliest first.
///
/// ```
/// use latchfree::queue::{arena::Fixed, DelayQueue};
/// let mut q: DelayQueue<&str, Fixed<8>> = DelayQueue::new_fixed();
/// let late = q.insert_at("late", 20).unwrap();
/// q.insert_at("soon", 10).unwrap();
/// assert!(q.poll_expired(9).is_none());
/// assert_eq!(q.poll_expired(10).unwrap().value, "soon");
/// assert!(q.reset(late, 30));
/// assert_eq!(q.next_deadline(), Some(30));
/// assert_eq!(q.remove(late), Some("late"));
/// assert_eq!(q.remove(late), None); // stale key: no panic
/// ```
pub struct DelayQueue<T, K: StorageKind> {
    q: PriorityQueue<u64, T, K>,
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
impl<T> DelayQueue<T, super::arena::Growable> {
    /// An empty unbounded queue on the heap.
    pub fn new() -> Self {
        DelayQueue {
            q: PriorityQueue::new(),
        }
    }

    /// An empty heap queue: room for `reserve` before reallocating, at most
    /// `limit` items.
    pub fn with_capacity(reserve: usize, limit: usize) -> Self {
        DelayQueue {
            q: PriorityQueue::with_capacity(reserve, limit),
        }
    }
}

#[cfg(feature = "alloc")]
impl<T> Default for DelayQueue<T, super::arena::Growable> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, K: StorageKind> DelayQueue<T, K> {
    /// Adds `value`, due at `deadline`; gives it back when the queue is
    /// full. Any deadline is accepted (a past one is due at once).
    #[inline]
    pub fn insert_at(&mut self, value: T, deadline: u64) -> Result<DelayKey, T> {
        self.q
            .push(deadline, value)
            .map(DelayKey)
            .map_err(|(_, v)| v)
    }

    /// Removes an item before it is handed out; `None` for a stale key.
    #[inline]
    pub fn remove(&mut self, key: DelayKey) -> Option<T> {
        self.q.remove(key.0).map(|(_, v)| v)
    }

    /// Moves an item to a new deadline (it then ranks after items already
    /// due at that deadline); `false` for a stale key.
    #[inline]
    pub fn reset(&mut self, key: DelayKey, deadline: u64) -> bool {
        self.q.change_priority(key.0, deadline)
    }

    /// Takes the earliest item if its deadline is at or before `now`.
    #[inline]
    pub fn poll_expired(&mut self, now: u64) -> Option<Expired<T>> {
        let (&deadline, _) = self.q.peek()?;
        if deadline > now {
            return None;
        }
        let key = DelayKey(self.q.peek_handle()?);
        let (deadline, value) = self.q.pop()?;
        Some(Expired {
            key,
            deadline,
            value,
        })
    }

    /// The earliest item and its deadline, due or not.
    pub fn peek(&self) -> Option<(u64, &T)> {
        self.q.peek().map(|(d, v)| (*d, v))
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.q.peek().map(|(d, _)| *d)
    }

    /// The deadline of a live item.
    pub fn deadline(&self, key: DelayKey) -> Option<u64> {
        self.q.priority(key.0).copied()
    }

    /// The value of a live item.
    pub fn get(&self, key: DelayKey) -> Option<&T> {
        self.q.get(key.0)
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
