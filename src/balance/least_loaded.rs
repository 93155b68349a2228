//! Power of two choices on calls in flight.
//!
//! Where a contended pick's time went: with one in-flight count per member,
//! every pick and its release wrote a count the other pickers write too,
//! so two threads picking among the same members moved one or two cache
//! lines between cores per pick, about what a `Mutex` costs. The counts
//! are now *sharded*: each member keeps [`P2C_SHARDS`] counts on their own
//! cache lines, a [`LeastLoadedPicker`] owns one shard (shard 0 is the
//! shared [`LeastLoaded::pick_with`]'s), and a lease increments and
//! releases decrement the count of the shard it was taken on. A member's
//! load is the sum over its shards. The balancer's own `pick_with` sums
//! the shards afresh; a picker reads its own shard afresh and the other
//! shards' sum through a small per-member cache refreshed when it is
//! [`P2C_STALE_AFTER`] of the picker's own picks old, so a pick writes only
//! the picker's own lines and reads other cores' lines once per member per
//! `P2C_STALE_AFTER` picks. The cost is staleness: a picker sees its own calls
//! at once and the other pickers' as of at most `P2C_STALE_AFTER` of its own
//! picks ago (or the last membership change, which empties the cache).
//! Counting is exact: every release decrements the very count its pick
//! incremented, so a quiescent balancer's loads are its leases alive.

use alloc::vec::Vec;

use super::snapshot::{Pinned, Snapshot};
use super::BalanceError;
use crate::sync::{Arc, AtomicUsize, CachePadded, Ordering::Relaxed};
use crossbeam_epoch::Collector;

/// In-flight counts per member: shard 0 for [`LeastLoaded::pick_with`],
/// the rest for pickers (the `k`-th picker made takes shard
/// `1 + k % (P2C_SHARDS - 1)`; pickers sharing a shard stay exact, they only
/// contend).
pub const P2C_SHARDS: usize = 8;

/// A picker's cached sum of the other shards' counts of a member is reused
/// for this many of the picker's own picks. Each re-read of a member the
/// other pickers use costs a cache-line transfer (and their next write
/// another): at 64, with 16 members, that was about half a transfer per
/// pick and doubled the two-thread pick + release (35 ns against 17 ns at
/// 256, shootout, pinned, same host).
pub const P2C_STALE_AFTER: u32 = 256;

/// A member and its calls in flight, one count per shard. Shared (by
/// `Arc`) between successive snapshots, so a membership change keeps every
/// surviving member's counts.
struct Slot<B> {
    member: B,
    /// Leases alive for this member, by the shard they were taken on.
    in_flight: [CachePadded<AtomicUsize>; P2C_SHARDS],
}

impl<B> Slot<B> {
    /// Sum of the counts of shards `0..used` other than `except`. Each
    /// count is itself never below zero (a release decrements the count
    /// its pick incremented, after it), so the sum never wraps.
    #[inline]
    fn load(&self, used: usize, except: usize) -> usize {
        let mut sum = 0usize;
        for (k, c) in self.in_flight[..used].iter().enumerate() {
            if k != except {
                // Relaxed: a load estimate; a stale read only makes the
                // choice slightly worse, never wrong.
                sum = sum.wrapping_add(c.load(Relaxed));
            }
        }
        sum
    }
}

/// The members of one snapshot, with the snapshot's generation (strictly
/// increasing along installed snapshots), by which a picker knows its
/// cache belongs to another snapshot.
struct Members<B> {
    slots: Vec<Arc<Slot<B>>>,
    generation: u64,
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
    slots: Snapshot<Members<B>>,
    /// Pickers made so far (assigns their shards).
    pickers: AtomicUsize,
    /// Shards ever used, `1..=P2C_SHARDS`: sums read only these.
    used: CachePadded<AtomicUsize>,
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
        // Shard 0: where `LeastLoaded::pick_with` counted it.
        self.slot.in_flight[0].fetch_sub(1, Relaxed);
    }
}

impl<B: core::fmt::Debug> core::fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Lease").field(&self.slot.member).finish()
    }
}

/// The two members `random` names, `(i, j)` with `i != j` (see
/// [`LeastLoaded::pick_with`]); `n >= 2`.
#[inline]
fn two(n: usize, random: u64) -> (usize, usize) {
    let i = ((random as u32 as u64 * n as u64) >> 32) as usize;
    let mut j = (((random >> 32) * (n as u64 - 1)) >> 32) as usize;
    if j >= i {
        j += 1;
    }
    (i, j)
}

fn new_slot<B>(member: B) -> Arc<Slot<B>> {
    Arc::new(Slot {
        member,
        in_flight: core::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
    })
}

impl<B: Clone + PartialEq + Send + Sync> LeastLoaded<B> {
    /// A balancer over `members`.
    pub fn new(members: impl IntoIterator<Item = B>) -> LeastLoaded<B> {
        LeastLoaded {
            slots: Snapshot::new(Members {
                slots: members.into_iter().map(new_slot).collect(),
                generation: 0,
            }),
            pickers: AtomicUsize::new(0),
            used: CachePadded::new(AtomicUsize::new(1)),
        }
    }

    /// Leases the less loaded of two members chosen by `random` (any
    /// uniformly random 64 bits; the low half picks one, the high half
    /// the other), comparing loads summed afresh over the shards. `None`
    /// if there are no members.
    #[inline]
    pub fn pick_with(&self, random: u64) -> Option<Lease<B>> {
        let guard = self.slots.pin();
        let slots = &self.slots.load(&guard).slots;
        let chosen = match slots.len() {
            0 => return None,
            1 => &slots[0],
            n => {
                let (i, j) = two(n, random);
                // Relaxed: which shards exist is only an estimate's input;
                // a picker's first lease is counted before it can matter
                // (see `picker`).
                let used = self.used.load(Relaxed);
                let (a, b) = (&slots[i], &slots[j]);
                if b.load(used, P2C_SHARDS) < a.load(used, P2C_SHARDS) {
                    b
                } else {
                    a
                }
            }
        };
        chosen.in_flight[0].fetch_add(1, Relaxed);
        Some(Lease {
            slot: chosen.clone(),
        })
    }

    /// A per-thread picker with a standing epoch pin and its own shard of
    /// the in-flight counts, for a thread that makes one call at a time:
    /// its leases borrow the picker, so a pick writes only the picker's
    /// own count of the chosen member (no epoch pin, no reference count),
    /// and the release only that count again. It compares its own calls
    /// exactly and the other pickers' as of at most [`P2C_STALE_AFTER`] of its
    /// own picks ago.
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
        let k = self.pickers.fetch_add(1, Relaxed);
        let shard = 1 + k % (P2C_SHARDS - 1);
        // Relaxed: `used` only bounds which shards sums read; it is raised
        // before this picker's first increment, and a reader that misses
        // the raise only misses calls it could equally have missed by
        // reading a moment earlier.
        self.used.fetch_max(shard + 1, Relaxed);
        LeastLoadedPicker {
            lb: self,
            pin: Pinned::new(&self.slots),
            shard,
            generation: u64::MAX,
            tick: 0,
            others: Vec::new(),
        }
    }

    /// Adds a member.
    pub fn add(&self, member: B) {
        let slot = new_slot(member);
        let _ = self.slots.update(|s| {
            let mut next = s.slots.clone();
            next.push(slot.clone());
            Ok::<_, ()>(Members {
                slots: next,
                generation: s.generation + 1,
            })
        });
    }

    /// Removes a member; its leases stay valid until dropped.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.slots.update(|s| {
            let at = s
                .slots
                .iter()
                .position(|x| &x.member == member)
                .ok_or(BalanceError::NotFound)?;
            let mut next = s.slots.clone();
            next.remove(at);
            Ok(Members {
                slots: next,
                generation: s.generation + 1,
            })
        })
    }

    /// Each member and its calls in flight, summed over the shards (may
    /// be stale while calls start and end; exact once they have stopped).
    pub fn in_flight(&self) -> Vec<(B, usize)> {
        let guard = self.slots.pin();
        let used = self.used.load(Relaxed);
        self.slots
            .load(&guard)
            .slots
            .iter()
            .map(|s| (s.member.clone(), s.load(used, P2C_SHARDS)))
            .collect()
    }

    /// The collector the balancer's snapshots are retired to.
    pub fn collector(&self) -> &Collector {
        self.slots.collector()
    }

    /// Each member and its count on every shard (for tests: a release
    /// must decrement the very count its pick incremented).
    #[cfg(all(test, feature = "std"))]
    pub(super) fn shard_counts(&self) -> Vec<(B, [usize; P2C_SHARDS])> {
        let guard = self.slots.pin();
        self.slots
            .load(&guard)
            .slots
            .iter()
            .map(|s| {
                (
                    s.member.clone(),
                    core::array::from_fn(|k| s.in_flight[k].load(Relaxed)),
                )
            })
            .collect()
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
    /// The shard this picker's leases count on.
    shard: usize,
    /// The snapshot generation `others` belongs to.
    generation: u64,
    /// Picks made, wrapping: the cache's clock.
    tick: u32,
    /// Per member of the snapshot: the other shards' summed count and the
    /// `tick` it was read at.
    others: Vec<(usize, u32)>,
}

impl<B> core::fmt::Debug for LeastLoadedPicker<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeastLoadedPicker")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl<B> LeastLoadedPicker<'_, B> {
    /// Leases the less loaded of two members chosen by `random`, as
    /// [`LeastLoaded::pick_with`] but with the other pickers' counts up to
    /// [`P2C_STALE_AFTER`] picks old; the lease borrows this picker, so the
    /// member stays alive (the pin holds its snapshot) until it is dropped.
    #[inline]
    pub fn pick_with(&mut self, random: u64) -> Option<PickerLease<'_, B>> {
        self.pin.tick();
        self.tick = self.tick.wrapping_add(1);
        let members: &Members<B> = self.pin.load(&self.lb.slots);
        let slots = &members.slots;
        let shard = self.shard;
        let chosen = match slots.len() {
            0 => return None,
            1 => &slots[0],
            n => {
                if self.generation != members.generation {
                    // Another snapshot: every entry is due for a read.
                    self.generation = members.generation;
                    self.others.clear();
                    self.others
                        .resize(n, (0, self.tick.wrapping_sub(P2C_STALE_AFTER)));
                }
                let (i, j) = two(n, random);
                let (a, b) = (&slots[i], &slots[j]);
                let la = estimate(&mut self.others[i], a, shard, self.tick, self.lb);
                let lb = estimate(&mut self.others[j], b, shard, self.tick, self.lb);
                if lb < la {
                    b
                } else {
                    a
                }
            }
        };
        chosen.in_flight[shard].fetch_add(1, Relaxed);
        Some(PickerLease {
            slot: chosen,
            shard,
        })
    }

    /// The shard this picker's leases count on (for tests).
    #[cfg(all(test, feature = "std"))]
    pub(super) fn shard(&self) -> usize {
        self.shard
    }

    /// Drops the standing pin and pins afresh, so snapshots retired so far
    /// can be freed while this picker sits idle, and forgets the cached
    /// loads of the other shards, so the next picks read them afresh.
    pub fn refresh(&mut self) {
        self.pin.refresh();
        self.generation = u64::MAX;
    }
}

/// A member's load as a picker on `shard` sees it: its own count afresh,
/// the other shards' from `cached` unless that is `P2C_STALE_AFTER` picks old.
#[inline]
fn estimate<B>(
    cached: &mut (usize, u32),
    slot: &Slot<B>,
    shard: usize,
    tick: u32,
    lb: &LeastLoaded<B>,
) -> usize {
    if tick.wrapping_sub(cached.1) >= P2C_STALE_AFTER {
        // Relaxed: see `LeastLoaded::picker`.
        *cached = (slot.load(lb.used.load(Relaxed), shard), tick);
    }
    // Relaxed: the picker's own line; only its own leases change it.
    cached.0.wrapping_add(slot.in_flight[shard].load(Relaxed))
}

/// One call in flight, leased through a [`LeastLoadedPicker`]; dropping
/// it ends the call.
pub struct PickerLease<'p, B> {
    slot: &'p Slot<B>,
    shard: usize,
}

impl<B> PickerLease<'_, B> {
    /// The member leased.
    pub fn member(&self) -> &B {
        &self.slot.member
    }
}

impl<B> Drop for PickerLease<'_, B> {
    fn drop(&mut self) {
        // The count its pick incremented.
        self.slot.in_flight[self.shard].fetch_sub(1, Relaxed);
    }
}

impl<B: core::fmt::Debug> core::fmt::Debug for PickerLease<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("PickerLease")
            .field(&self.slot.member)
            .finish()
    }
}
