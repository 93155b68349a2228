//! nginx's smooth weighted round robin, one period precomputed per
//! snapshot.

use alloc::vec::Vec;

use super::snapshot::{Pinned, Snapshot};
use super::BalanceError;
use crate::sync::{AtomicUsize, CachePadded, Ordering::Relaxed};
use crossbeam_epoch::{Collector, Guard};

const MAX_PERIOD: usize = 1 << 20;

struct Table<B> {
    members: Vec<(B, u32)>,
    /// One period of nginx's pick sequence, as member indices.
    sequence: Vec<u32>,
}

/// Smooth weighted round robin (nginx): over any `Σ weights` consecutive
/// picks each member is picked exactly `weight` times, spread out rather
/// than in runs.
///
/// ```
/// use latchfree::balance::Weighted;
///
/// // nginx's own example: weights 5, 1, 1.
/// let w = Weighted::new([("a", 5), ("b", 1), ("c", 1)]).unwrap();
/// let seq: String = (0..7).map(|_| w.pick_cloned().unwrap()).collect();
/// assert_eq!(seq, "aabacaa");
/// ```
pub struct Weighted<B> {
    table: Snapshot<Table<B>>,
    next: CachePadded<AtomicUsize>,
}

impl<B> core::fmt::Debug for Weighted<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Weighted").finish_non_exhaustive()
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl<B: Clone> Table<B> {
    fn build(members: Vec<(B, u32)>) -> Result<Table<B>, BalanceError> {
        if members.iter().any(|m| m.1 == 0) {
            return Err(BalanceError::ZeroWeight);
        }
        let g = members.iter().fold(0, |g, m| gcd(g, m.1 as u64)).max(1);
        let weights: Vec<i64> = members.iter().map(|m| (m.1 as u64 / g) as i64).collect();
        let total: i64 = weights.iter().sum();
        if total as u64 > MAX_PERIOD as u64 {
            return Err(BalanceError::PeriodTooLong);
        }
        // nginx's loop, run for one period: raise every score by its
        // weight, take the highest (the first on ties), lower it by the
        // total. After a full period every score is back to zero.
        let mut current = alloc::vec![0i64; weights.len()];
        let mut sequence = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += w;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            sequence.push(best as u32);
        }
        debug_assert!(current.iter().all(|&c| c == 0));
        Ok(Table { members, sequence })
    }
}

impl<B: Clone + PartialEq + Send + Sync> Weighted<B> {
    /// Longest period (sum of weights over their gcd) a snapshot holds:
    /// 2²⁰ picks, 4 MiB of indices.
    pub const MAX_PERIOD: usize = MAX_PERIOD;

    /// A balancer over `(member, weight)` pairs.
    pub fn new(members: impl IntoIterator<Item = (B, u32)>) -> Result<Weighted<B>, BalanceError> {
        Ok(Weighted {
            table: Snapshot::new(Table::build(members.into_iter().collect())?),
            next: CachePadded::new(AtomicUsize::new(0)),
        })
    }

    /// The next member in nginx's sequence; lives as long as `guard`.
    #[inline]
    pub fn pick_in<'g>(&self, guard: &'g Guard) -> Option<&'g B> {
        let t = self.table.load(guard);
        if t.sequence.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Relaxed) % t.sequence.len();
        Some(&t.members[t.sequence[i] as usize].0)
    }

    /// The next member, cloned.
    #[inline]
    pub fn pick_cloned(&self) -> Option<B> {
        let guard = self.table.pin();
        self.pick_in(&guard).cloned()
    }

    fn change(
        &self,
        mut f: impl FnMut(&mut Vec<(B, u32)>) -> Result<(), BalanceError>,
    ) -> Result<(), BalanceError> {
        self.table.update(|t| {
            let mut members = t.members.clone();
            f(&mut members)?;
            Table::build(members)
        })?;
        // A new period starts at its beginning, as nginx resets scores.
        self.next.store(0, Relaxed);
        Ok(())
    }

    /// Adds a member.
    pub fn add(&self, member: B, weight: u32) -> Result<(), BalanceError> {
        self.change(|m| {
            m.push((member.clone(), weight));
            Ok(())
        })
    }

    /// Removes a member.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.change(|m| {
            let at = m
                .iter()
                .position(|x| &x.0 == member)
                .ok_or(BalanceError::NotFound)?;
            m.remove(at);
            Ok(())
        })
    }

    /// Changes a member's weight.
    pub fn reweight(&self, member: &B, weight: u32) -> Result<(), BalanceError> {
        self.change(|m| {
            let at = m
                .iter()
                .position(|x| &x.0 == member)
                .ok_or(BalanceError::NotFound)?;
            m[at].1 = weight;
            Ok(())
        })
    }

    /// Members and weights now (may be stale).
    pub fn members(&self) -> Vec<(B, u32)> {
        let guard = self.table.pin();
        self.table.load(&guard).members.clone()
    }

    /// The collector to pin guards for [`pick_in`](Self::pick_in) from.
    pub fn collector(&self) -> &Collector {
        self.table.collector()
    }

    /// A per-thread picker walking nginx's sequence with its own cursor
    /// and a standing epoch pin; no pick writes shared memory.
    ///
    /// SWRR's scores are state every pick mutates, so a shared form must
    /// serialise picks. The precomputed period removes the scores; the
    /// per-picker cursor removes the shared counter. What each picker
    /// yields is exactly nginx's sequence (a rotation of it: the picker
    /// starts at the next shared ticket, so successive pickers start at
    /// successive positions), so any `Σ weights` consecutive picks of one
    /// picker hold each member exactly `weight` times (weights reduced by
    /// their gcd). Over all pickers, each member's count differs from its
    /// exact share `total × weight / Σ weights` by less than
    /// `pickers × weight`: each picker's picks are whole periods plus one
    /// partial period holding at most `weight` of that member.
    ///
    /// After a membership change a picker restarts the new period at its
    /// starting offset (or, if the new snapshot happens to reuse the old
    /// one's address, carries on its cursor modulo the new period).
    ///
    /// ```
    /// use latchfree::balance::Weighted;
    ///
    /// let w = Weighted::new([("a", 5), ("b", 1), ("c", 1)]).unwrap();
    /// let mut p = w.picker();
    /// let seq: String = (0..7).map(|_| *p.pick().unwrap()).collect();
    /// assert_eq!(seq, "aabacaa");
    /// ```
    pub fn picker(&self) -> WeightedPicker<'_, B> {
        // Relaxed: a ticket, not a publication.
        let start = self.next.fetch_add(1, Relaxed);
        WeightedPicker {
            w: self,
            pin: Pinned::new(&self.table),
            start,
            cursor: start,
            seen: core::ptr::null(),
        }
    }
}

/// A [`Weighted`]'s per-thread picker (from [`Weighted::picker`]): a pick
/// is one `Acquire` load of the snapshot pointer and a private cursor
/// step through the precomputed nginx period.
///
/// It stays pinned between picks, re-pinning every 64 picks, so a retired
/// snapshot (under `std`, anything retired to crossbeam-epoch's global
/// collector) can wait on it: [`refresh`](Self::refresh) or drop a picker
/// that is about to sit idle. It is not `Send`.
pub struct WeightedPicker<'a, B> {
    w: &'a Weighted<B>,
    pin: Pinned,
    start: usize,
    cursor: usize,
    /// The snapshot the cursor walks (compared by address only).
    seen: *const Table<B>,
}

impl<B> core::fmt::Debug for WeightedPicker<'_, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WeightedPicker")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<B> WeightedPicker<'_, B> {
    /// The next member in this picker's walk of nginx's sequence, or
    /// `None` if there are none.
    #[inline]
    pub fn pick(&mut self) -> Option<&B> {
        self.pin.tick();
        let t = self.pin.load(&self.w.table);
        let len = t.sequence.len();
        if len == 0 {
            return None;
        }
        if !core::ptr::eq(t, self.seen) {
            // A new snapshot (or the first pick): start its period at this
            // picker's offset. Should a new snapshot reuse a freed one's
            // address, the picker just carries on its cursor (reduced
            // modulo the new period below): still a valid index.
            self.seen = t;
            self.cursor = self.start % len;
        }
        let i = if self.cursor < len {
            self.cursor
        } else {
            self.cursor % len
        };
        self.cursor = i + 1;
        Some(&t.members[t.sequence[i] as usize].0)
    }

    /// Drops the standing pin and pins afresh, so snapshots retired so far
    /// can be freed while this picker sits idle.
    pub fn refresh(&mut self) {
        self.pin.refresh();
    }
}
