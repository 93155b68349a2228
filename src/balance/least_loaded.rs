//! Power of two choices on calls in flight.
//!
//! Where a contended pick's time goes: a picker's pick-and-release reads
//! two members' in-flight counts and writes the chosen one twice (the
//! lease's `fetch_add`, its drop's `fetch_sub`). Each count has its own
//! cache line, but with two threads picking among the same members a line
//! was last written by the other core about half the time, so a pick
//! usually moves one or two lines between cores. No pin, no shared counter
//! and no allocation remain on the path; what is left is the algorithm's
//! own shared state (the loads it compares are the other pickers'
//! writes). Sharding the counts per picker would keep the writes local but
//! make every comparison read the other shards' lines instead.

use alloc::vec::Vec;

use super::snapshot::{Pinned, Snapshot};
use super::BalanceError;
use crate::sync::{Arc, AtomicUsize, CachePadded, Ordering::Relaxed};
use crossbeam_epoch::Collector;

/// A member and its calls in flight. Shared (by `Arc`) between successive
/// snapshots, so a membership change keeps every surviving member's
/// count.
struct Slot<B> {
    member: B,
    /// Leases alive for this member.
    in_flight: CachePadded<AtomicUsize>,
}

/// Power of two choices: pick two members at random, lease the one with
/// fewer calls in flight. The [`Lease`] counts the call until dropped.
///
/// ```
/// use latchfree::balance::LeastLoaded;
///
/// let lb = LeastLoaded::new(["a", "b"]);
/// let first = lb.pick_with(7).unwrap(); // caller-supplied randomness
/// let second = lb.pick_with(7).unwrap();
/// assert_ne!(first.member(), second.member()); // the idle one
/// drop(first);
/// let loads: usize = lb.in_flight().iter().map(|m| m.1).sum();
/// assert_eq!(loads, 1);
/// ```
pub struct LeastLoaded<B> {
    slots: Snapshot<Vec<Arc<Slot<B>>>>,
}

impl<B> core::fmt::Debug for LeastLoaded<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeastLoaded").finish_non_exhaustive()
    }
}

/// One call in flight on a member; dropping it ends the call.
pub struct Lease<B> {
    slot: Arc<Slot<B>>,
}

impl<B> Lease<B> {
    /// The member leased.
    pub fn member(&self) -> &B {
        &self.slot.member
    }
}

impl<B> Drop for Lease<B> {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Relaxed);
    }
}

impl<B: core::fmt::Debug> core::fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Lease").field(&self.slot.member).finish()
    }
}

/// The less loaded of the two members `random` names (see
/// [`LeastLoaded::pick_with`]).
#[inline]
fn choose<B>(slots: &[Arc<Slot<B>>], random: u64) -> Option<&Arc<Slot<B>>> {
    let n = slots.len();
    Some(match n {
        0 => return None,
        1 => &slots[0],
        _ => {
            let i = ((random as u32 as u64 * n as u64) >> 32) as usize;
            let mut j = (((random >> 32) * (n as u64 - 1)) >> 32) as usize;
            if j >= i {
                j += 1;
            }
            let (a, b) = (&slots[i], &slots[j]);
            // Relaxed: a load estimate; a stale read only makes the
            // choice slightly worse, never wrong.
            if b.in_flight.load(Relaxed) < a.in_flight.load(Relaxed) {
                b
            } else {
                a
            }
        }
    })
}

fn new_slot<B>(member: B) -> Arc<Slot<B>> {
    Arc::new(Slot {
        member,
        in_flight: CachePadded::new(AtomicUsize::new(0)),
    })
}

impl<B: Clone + PartialEq + Send + Sync> LeastLoaded<B> {
    /// A balancer over `members`.
    pub fn new(members: impl IntoIterator<Item = B>) -> LeastLoaded<B> {
        LeastLoaded {
            slots: Snapshot::new(members.into_iter().map(new_slot).collect()),
        }
    }

    /// Leases the less loaded of two members chosen by `random` (any
    /// uniformly random 64 bits; the low half picks one, the high half
    /// the other). `None` if there are no members.
    #[inline]
    pub fn pick_with(&self, random: u64) -> Option<Lease<B>> {
        let guard = self.slots.pin();
        let chosen = choose(self.slots.load(&guard), random)?;
        chosen.in_flight.fetch_add(1, Relaxed);
        Some(Lease {
            slot: chosen.clone(),
        })
    }

    /// A per-thread picker with a standing epoch pin, for a thread that
    /// makes one call at a time: its leases borrow the picker, so a pick
    /// writes only the chosen member's in-flight count (no epoch pin, no
    /// reference count), and the release only that count again.
    ///
    /// ```
    /// use latchfree::balance::LeastLoaded;
    ///
    /// let lb = LeastLoaded::new(["a", "b"]);
    /// let mut p = lb.picker();
    /// let lease = p.pick_with(7).unwrap();
    /// assert_eq!(lb.in_flight().iter().map(|m| m.1).sum::<usize>(), 1);
    /// drop(lease);
    /// assert_eq!(lb.in_flight().iter().map(|m| m.1).sum::<usize>(), 0);
    /// ```
    pub fn picker(&self) -> LeastLoadedPicker<'_, B> {
        LeastLoadedPicker {
            lb: self,
            pin: Pinned::new(&self.slots),
        }
    }
    /// Adds a member.
    pub fn add(&self, member: B) {
        let slot = new_slot(member);
        let _ = self.slots.update(|s| {
            let mut next = s.clone();
            next.push(slot.clone());
            Ok::<_, ()>(next)
        });
    }

    /// Removes a member; its leases stay valid until dropped.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.slots.update(|s| {
            let at = s
                .iter()
                .position(|x| &x.member == member)
                .ok_or(BalanceError::NotFound)?;
            let mut next = s.clone();
            next.remove(at);
            Ok(next)
        })
    }

    /// Each member and its calls in flight (may be stale).
    pub fn in_flight(&self) -> Vec<(B, usize)> {
        let guard = self.slots.pin();
        self.slots
            .load(&guard)
            .iter()
            .map(|s| (s.member.clone(), s.in_flight.load(Relaxed)))
            .collect()
    }

    /// The collector the balancer's snapshots are retired to.
    pub fn collector(&self) -> &Collector {
        self.slots.collector()
    }
}

/// A [`LeastLoaded`]'s per-thread picker (from [`LeastLoaded::picker`]).
///
/// It stays pinned between picks, re-pinning every 64 picks, so a retired
/// snapshot (under `std`, anything retired to crossbeam-epoch's global
/// collector) can wait on it: [`refresh`](Self::refresh) or drop a picker
/// that is about to sit idle. It is not `Send`.
pub struct LeastLoadedPicker<'a, B> {
    lb: &'a LeastLoaded<B>,
    pin: Pinned,
}

impl<B> core::fmt::Debug for LeastLoadedPicker<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeastLoadedPicker").finish_non_exhaustive()
    }
}

impl<B> LeastLoadedPicker<'_, B> {
    /// Leases the less loaded of two members chosen by `random`, as
    /// [`LeastLoaded::pick_with`]; the lease borrows this picker, so the
    /// member stays alive (the pin holds its snapshot) until it is dropped.
    #[inline]
    pub fn pick_with(&mut self, random: u64) -> Option<PickerLease<'_, B>> {
        self.pin.tick();
        let slots: &Vec<Arc<Slot<B>>> = self.pin.load(&self.lb.slots);
        let chosen = choose(slots, random)?;
        chosen.in_flight.fetch_add(1, Relaxed);
        Some(PickerLease { slot: chosen })
    }

    /// Drops the standing pin and pins afresh, so snapshots retired so far
    /// can be freed while this picker sits idle.
    pub fn refresh(&mut self) {
        self.pin.refresh();
    }
}

/// One call in flight, leased through a [`LeastLoadedPicker`]; dropping
/// it ends the call.
pub struct PickerLease<'p, B> {
    slot: &'p Slot<B>,
}

impl<B> PickerLease<'_, B> {
    /// The member leased.
    pub fn member(&self) -> &B {
        &self.slot.member
    }
}

impl<B> Drop for PickerLease<'_, B> {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Relaxed);
    }
}

impl<B: core::fmt::Debug> core::fmt::Debug for PickerLease<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("PickerLease")
            .field(&self.slot.member)
            .finish()
    }
}
