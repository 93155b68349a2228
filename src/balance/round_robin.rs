//! Round robin over an immutable member list.

use alloc::vec::Vec;

use super::snapshot::{Pinned, Snapshot};
use super::BalanceError;
use crate::sync::{AtomicUsize, CachePadded, Ordering::Relaxed};
use crossbeam_epoch::{Collector, Guard};

/// Round robin: each pick takes the next member of the current list.
///
/// [`pick_cloned`](Self::pick_cloned) and [`pick_in`](Self::pick_in) take
/// tickets from one shared counter (a `fetch_add` per pick, on a cache
/// line every picker writes); it carries on across membership changes, so
/// after a change the rotation resumes at an arbitrary member. For hot
/// loops, a [`picker`](Self::picker) per thread keeps its own cursor and
/// touches no line another picker writes.
///
/// ```
/// use latchfree::balance::RoundRobin;
///
/// let rr = RoundRobin::new(vec!["a", "b", "c"]);
/// let picks: Vec<_> = (0..4).map(|_| rr.pick_cloned().unwrap()).collect();
/// assert_eq!(picks, ["a", "b", "c", "a"]);
/// rr.remove(&"b").unwrap();
/// assert_eq!(rr.len(), 2);
/// ```
pub struct RoundRobin<B> {
    members: Snapshot<Vec<B>>,
    next: CachePadded<AtomicUsize>,
}

impl<B> core::fmt::Debug for RoundRobin<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RoundRobin").finish_non_exhaustive()
    }
}

impl<B: Clone + PartialEq + Send + Sync> RoundRobin<B> {
    /// A balancer over `members`, in order.
    pub fn new(members: impl IntoIterator<Item = B>) -> RoundRobin<B> {
        RoundRobin {
            members: Snapshot::new(members.into_iter().collect()),
            next: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// The next member, or `None` if there are none; the reference lives
    /// as long as `guard` (from [`collector`](Self::collector)).
    #[inline]
    pub fn pick_in<'g>(&self, guard: &'g Guard) -> Option<&'g B> {
        let members = self.members.load(guard);
        if members.is_empty() {
            return None;
        }
        // Relaxed: a ticket, not a publication.
        let i = self.next.fetch_add(1, Relaxed);
        Some(&members[i % members.len()])
    }

    /// The next member, cloned.
    #[inline]
    pub fn pick_cloned(&self) -> Option<B> {
        let guard = self.members.pin();
        self.pick_in(&guard).cloned()
    }

    /// Appends a member.
    pub fn add(&self, member: B) {
        let _ = self.members.update(|m| {
            let mut next = m.clone();
            next.push(member.clone());
            Ok::<_, ()>(next)
        });
    }

    /// Removes the first member equal to `member`.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.members.update(|m| {
            let at = m
                .iter()
                .position(|x| x == member)
                .ok_or(BalanceError::NotFound)?;
            let mut next = m.clone();
            next.remove(at);
            Ok(next)
        })
    }

    /// Replaces the whole member list.
    pub fn set(&self, members: impl IntoIterator<Item = B>) {
        let list: Vec<B> = members.into_iter().collect();
        let _ = self.members.update(|_| Ok::<_, ()>(list.clone()));
    }

    /// Members now (may be stale as soon as it returns).
    pub fn len(&self) -> usize {
        let guard = self.members.pin();
        self.members.load(&guard).len()
    }

    /// Whether there are no members (may be stale).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the current member list.
    pub fn members(&self) -> Vec<B> {
        let guard = self.members.pin();
        self.members.load(&guard).clone()
    }

    /// The collector to pin guards for [`pick_in`](Self::pick_in) from.
    pub fn collector(&self) -> &Collector {
        self.members.collector()
    }

    /// A per-thread picker with its own cursor and a standing epoch pin.
    ///
    /// Its cursor starts at the next shared ticket, so pickers made one
    /// after another start at successive members. Fairness: each picker
    /// is an exact round robin over its own picks (any `len` consecutive
    /// picks of one picker hit every member once, while the members do not
    /// change); so over all pickers, each member's count differs from
    /// `total / len` by less than the number of pickers.
    ///
    /// ```
    /// use latchfree::balance::RoundRobin;
    ///
    /// let rr = RoundRobin::new(["a", "b", "c"]);
    /// let mut p = rr.picker();
    /// let picks: Vec<_> = (0..4).map(|_| *p.pick().unwrap()).collect();
    /// assert_eq!(picks, ["a", "b", "c", "a"]);
    /// ```
    pub fn picker(&self) -> RoundRobinPicker<'_, B> {
        RoundRobinPicker {
            // Relaxed: a ticket, not a publication.
            cursor: self.next.fetch_add(1, Relaxed),
            pin: Pinned::new(&self.members),
            rr: self,
        }
    }
}

/// A [`RoundRobin`]'s per-thread picker (from
/// [`RoundRobin::picker`]): a pick is one `Acquire` load of the snapshot
/// pointer and a private cursor step, with no shared write.
///
/// It stays pinned between picks, re-pinning every 64 picks, so a retired
/// snapshot (under `std`, anything retired to crossbeam-epoch's global
/// collector) can wait on it: [`refresh`](Self::refresh) or drop a picker
/// that is about to sit idle. It is not `Send`.
pub struct RoundRobinPicker<'a, B> {
    rr: &'a RoundRobin<B>,
    pin: Pinned,
    cursor: usize,
}

impl<B> core::fmt::Debug for RoundRobinPicker<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RoundRobinPicker")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<B> RoundRobinPicker<'_, B> {
    /// The next member for this picker, or `None` if there are none.
    #[inline]
    pub fn pick(&mut self) -> Option<&B> {
        self.pin.tick();
        let members = self.pin.load(&self.rr.members);
        let len = members.len();
        if len == 0 {
            return None;
        }
        // A division only on wrap-around (or after the members shrank).
        let i = if self.cursor < len {
            self.cursor
        } else {
            self.cursor % len
        };
        self.cursor = i + 1;
        Some(&members[i])
    }

    /// Drops the standing pin and pins afresh, so snapshots retired so far
    /// can be freed while this picker sits idle.
    pub fn refresh(&mut self) {
        self.pin.refresh();
    }
}
