//! Key-to-member hashing: a virtual-node ring and rendezvous hashing.

use alloc::vec::Vec;
use core::hash::Hash;

use super::snapshot::{Pinned, Snapshot};
use super::{stable_hash, BalanceError, StableHasher};
use crossbeam_epoch::{Collector, Guard};

struct Ring<B> {
    members: Vec<B>,
    /// Every virtual node's point, sorted.
    points: Vec<u64>,
    /// `owners[i]`: the member index of `points[i]`.
    owners: Vec<u32>,
    /// A bucket index over the points' top `bits` bits: the points of
    /// bucket `b` are `points[starts[b] .. starts[b + 1]]`. `2^bits` is at
    /// least the point count, so a bucket holds about one point and a
    /// lookup is two loads and a search of a few entries, not a binary
    /// search of the whole ring.
    starts: Vec<u32>,
    /// `64 − bits`: a hash's bucket is `hash >> shift` (`bits ≥ 1`).
    shift: u32,
}

/// Most bucket-index bits (2²⁰ buckets, 4 MiB of index).
const MAX_INDEX_BITS: u32 = 20;

impl<B: Hash> Ring<B> {
    fn build(members: Vec<B>, vnodes: u32) -> Ring<B> {
        let mut pairs = Vec::with_capacity(members.len() * vnodes as usize);
        for (i, m) in members.iter().enumerate() {
            for v in 0..vnodes {
                pairs.push((point(m, v), i as u32));
            }
        }
        // Ties (astronomically rare) break by member index, so every
        // process builds the same ring.
        pairs.sort_unstable();
        let (points, owners): (Vec<u64>, Vec<u32>) = pairs.into_iter().unzip();
        let bits = (usize::BITS - points.len().leading_zeros()).clamp(1, MAX_INDEX_BITS);
        let shift = 64 - bits;
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for bucket in 0..=(1u64 << bits) {
            while at < points.len() && points[at] >> shift < bucket {
                at += 1;
            }
            starts.push(at as u32);
        }
        Ring {
            members,
            points,
            owners,
            starts,
            shift,
        }
    }
}

impl<B> Ring<B> {
    /// The member owning `hash`: the first point at or after it, wrapping.
    #[inline]
    fn owner(&self, hash: u64) -> Option<&B> {
        if self.points.is_empty() {
            return None;
        }
        let bucket = (hash >> self.shift) as usize;
        // Points of lower buckets are all below `hash`, of higher ones all
        // above it: the answer is in this bucket or is the next bucket's
        // first point.
        let (lo, hi) = (
            self.starts[bucket] as usize,
            self.starts[bucket + 1] as usize,
        );
        let at = lo + self.points[lo..hi].partition_point(|&p| p < hash);
        let at = if at == self.points.len() { 0 } else { at };
        Some(&self.members[self.owners[at] as usize])
    }
}

/// Where virtual node `v` of `member` sits on the ring.
fn point<B: Hash>(member: &B, v: u32) -> u64 {
    let mut h = StableHasher::new();
    member.hash(&mut h);
    core::hash::Hasher::write_u32(&mut h, v);
    core::hash::Hasher::finish(&h)
}

/// Consistent hashing on a ring of virtual nodes: each member sits at
/// `vnodes` points; a key belongs to the first point at or after its hash.
///
/// More virtual nodes spread keys more evenly (the spread of a member's
/// share shrinks like `1/√vnodes`) at the cost of a bigger ring to build
/// and search (`members × vnodes` entries, binary search per pick).
///
/// ```
/// use latchfree::balance::HashRing;
///
/// let ring = HashRing::new([1u32, 2, 3], 100);
/// let before: Vec<u32> = (0..1000u32).map(|k| ring.pick_cloned(&k).unwrap()).collect();
/// ring.add(4);
/// let moved = (0..1000u32).filter(|k| ring.pick_cloned(k).unwrap() != before[*k as usize]).count();
/// assert!(moved < 400); // about a quarter, all of them to member 4
/// ```
pub struct HashRing<B> {
    ring: Snapshot<Ring<B>>,
    vnodes: u32,
}

impl<B> core::fmt::Debug for HashRing<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashRing")
            .field("vnodes", &self.vnodes)
            .finish_non_exhaustive()
    }
}

impl<B: Hash + Clone + PartialEq + Send + Sync> HashRing<B> {
    /// A ring over `members` with `vnodes` points each (at least 1).
    pub fn new(members: impl IntoIterator<Item = B>, vnodes: u32) -> HashRing<B> {
        let vnodes = vnodes.max(1);
        HashRing {
            ring: Snapshot::new(Ring::build(members.into_iter().collect(), vnodes)),
            vnodes,
        }
    }

    /// The member owning `key`; lives as long as `guard`.
    #[inline]
    pub fn pick_in<'g, K: Hash + ?Sized>(&self, key: &K, guard: &'g Guard) -> Option<&'g B> {
        self.pick_hash_in(stable_hash(key), guard)
    }

    /// The member owning a key whose [`stable_hash`](super::stable_hash)
    /// (or any well-mixed 64-bit hash) is `hash`.
    #[inline]
    pub fn pick_hash_in<'g>(&self, hash: u64, guard: &'g Guard) -> Option<&'g B> {
        self.ring.load(guard).owner(hash)
    }

    /// The member owning `key`, cloned.
    #[inline]
    pub fn pick_cloned<K: Hash + ?Sized>(&self, key: &K) -> Option<B> {
        let guard = self.ring.pin();
        self.pick_in(key, &guard).cloned()
    }

    /// Adds a member.
    pub fn add(&self, member: B) {
        let _ = self.ring.update(|r| {
            let mut members = r.members.clone();
            members.push(member.clone());
            Ok::<_, ()>(Ring::build(members, self.vnodes))
        });
    }

    /// Removes a member; its keys move to their next points.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.ring.update(|r| {
            let at = r
                .members
                .iter()
                .position(|m| m == member)
                .ok_or(BalanceError::NotFound)?;
            let mut members = r.members.clone();
            members.remove(at);
            Ok(Ring::build(members, self.vnodes))
        })
    }

    /// Replaces every member.
    pub fn set(&self, members: impl IntoIterator<Item = B>) {
        let members: Vec<B> = members.into_iter().collect();
        let _ = self
            .ring
            .update(|_| Ok::<_, ()>(Ring::build(members.clone(), self.vnodes)));
    }

    /// Members now (may be stale).
    pub fn members(&self) -> Vec<B> {
        let guard = self.ring.pin();
        self.ring.load(&guard).members.clone()
    }

    /// The collector to pin guards for [`pick_in`](Self::pick_in) from.
    pub fn collector(&self) -> &Collector {
        self.ring.collector()
    }

    /// A per-thread picker with a standing epoch pin: a pick is one
    /// `Acquire` load of the ring pointer and a lookup, with no pin and no
    /// shared write.
    ///
    /// ```
    /// use latchfree::balance::HashRing;
    ///
    /// let ring = HashRing::new(["a", "b", "c"], 64);
    /// let mut p = ring.picker();
    /// assert_eq!(p.pick(&"user:42").copied(), ring.pick_cloned(&"user:42"));
    /// ```
    pub fn picker(&self) -> HashRingPicker<'_, B> {
        HashRingPicker {
            pin: Pinned::new(&self.ring),
            ring: self,
        }
    }
}

/// A [`HashRing`]'s per-thread picker (from [`HashRing::picker`]).
///
/// It stays pinned between picks, re-pinning every 64 picks, so a retired
/// ring (under `std`, anything retired to crossbeam-epoch's global
/// collector) can wait on it: [`refresh`](Self::refresh) or drop a picker
/// that is about to sit idle. It is not `Send`.
pub struct HashRingPicker<'a, B> {
    ring: &'a HashRing<B>,
    pin: Pinned,
}

impl<B> core::fmt::Debug for HashRingPicker<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashRingPicker").finish_non_exhaustive()
    }
}

impl<B> HashRingPicker<'_, B> {
    /// The member owning `key`, as [`HashRing::pick_in`].
    #[inline]
    pub fn pick<K: Hash + ?Sized>(&mut self, key: &K) -> Option<&B> {
        self.pick_hash(stable_hash(key))
    }

    /// The member owning a key whose hash is `hash`, as
    /// [`HashRing::pick_hash_in`].
    #[inline]
    pub fn pick_hash(&mut self, hash: u64) -> Option<&B> {
        self.pin.tick();
        self.pin.load(&self.ring.ring).owner(hash)
    }

    /// Drops the standing pin and pins afresh, so rings retired so far can
    /// be freed while this picker sits idle.
    pub fn refresh(&mut self) {
        self.pin.refresh();
    }
}

/// Rendezvous (highest random weight) hashing: a key goes to the member
/// with the largest `hash(member, key)`. `O(members)` per pick; any change
/// moves only the keys of the members added or removed.
///
/// ```
/// use latchfree::balance::Rendezvous;
///
/// let r = Rendezvous::new(["a", "b", "c"]);
/// let owner = r.pick_cloned(&"key").unwrap();
/// r.remove(&if owner == "a" { "b" } else { "a" }).unwrap();
/// assert_eq!(r.pick_cloned(&"key"), Some(owner)); // unaffected
/// ```
pub struct Rendezvous<B> {
    members: Snapshot<Vec<(B, u64)>>,
}

impl<B> core::fmt::Debug for Rendezvous<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rendezvous").finish_non_exhaustive()
    }
}

impl<B: Hash + Clone + PartialEq + Send + Sync> Rendezvous<B> {
    /// Rendezvous hashing over `members`.
    pub fn new(members: impl IntoIterator<Item = B>) -> Rendezvous<B> {
        Rendezvous {
            members: Snapshot::new(
                members
                    .into_iter()
                    .map(|m| {
                        let h = stable_hash(&m);
                        (m, h)
                    })
                    .collect(),
            ),
        }
    }

    /// The member owning `key`; lives as long as `guard`.
    #[inline]
    pub fn pick_in<'g, K: Hash + ?Sized>(&self, key: &K, guard: &'g Guard) -> Option<&'g B> {
        let key = stable_hash(key);
        self.members
            .load(guard)
            .iter()
            .max_by_key(|(_, h)| super::fmix64(h ^ key.rotate_left(17)))
            .map(|(m, _)| m)
    }

    /// The member owning `key`, cloned.
    pub fn pick_cloned<K: Hash + ?Sized>(&self, key: &K) -> Option<B> {
        let guard = self.members.pin();
        self.pick_in(key, &guard).cloned()
    }

    /// Adds a member.
    pub fn add(&self, member: B) {
        let h = stable_hash(&member);
        let _ = self.members.update(|m| {
            let mut next = m.clone();
            next.push((member.clone(), h));
            Ok::<_, ()>(next)
        });
    }

    /// Removes a member.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.members.update(|m| {
            let at = m
                .iter()
                .position(|x| &x.0 == member)
                .ok_or(BalanceError::NotFound)?;
            let mut next = m.clone();
            next.remove(at);
            Ok(next)
        })
    }

    /// The collector to pin guards for [`pick_in`](Self::pick_in) from.
    pub fn collector(&self) -> &Collector {
        self.members.collector()
    }
}
