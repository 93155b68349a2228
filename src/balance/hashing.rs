//! Key-to-member hashing: a virtual-node ring and rendezvous hashing.

use alloc::vec::Vec;
use core::hash::Hash;

use super::snapshot::Snapshot;
use super::{stable_hash, BalanceError, StableHasher};
use crossbeam_epoch::{Collector, Guard};

struct Ring<B> {
    members: Vec<B>,
    /// `(point, member index)`, sorted by point.
    points: Vec<(u64, u32)>,
}

impl<B: Hash> Ring<B> {
    fn build(members: Vec<B>, vnodes: u32) -> Ring<B> {
        let mut points = Vec::with_capacity(members.len() * vnodes as usize);
        for (i, m) in members.iter().enumerate() {
            for v in 0..vnodes {
                points.push((point(m, v), i as u32));
            }
        }
        // Ties (astronomically rare) break by member index, so every
        // process builds the same ring.
        points.sort_unstable();
        Ring { members, points }
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
        let ring = self.ring.load(guard);
        if ring.points.is_empty() {
            return None;
        }
        let at = ring.points.partition_point(|p| p.0 < hash);
        let (_, member) = ring.points[if at == ring.points.len() { 0 } else { at }];
        Some(&ring.members[member as usize])
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
