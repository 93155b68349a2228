//! Sequence numbers and the wrap-safe arithmetic every ring protocol uses.
//!
//! Handles count positions as `u64` (a consumer's next sequence, a producer's
//! next claim), so the sequence a handler sees is a true 64-bit number on every
//! target. The shared atomics store those positions truncated to `usize`:
//! on 64-bit targets that is the whole number; on 32-bit targets (Cortex-M has
//! no 64-bit atomics) it wraps every 2^32 events, and every comparison made on
//! the atomics is a wrapping *distance* (`a.wrapping_sub(b)`), which stays
//! correct across the wrap because no two live positions are ever more than
//! `capacity` apart and capacity is at most [`MAX_CAPACITY`].

use crate::sync::{AtomicUsize, CachePadded};

/// The largest ring capacity: a quarter of the `usize` range, so that wrapping
/// distances between live positions (at most one capacity apart) can never be
/// mistaken for negative ones, even in the 63-bit (31-bit) packed words of the
/// multi-producer claim and the work-queue workers.
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);

/// A position shared between threads: a consumer's progress, a work group's
/// claim. Padded to a cache line so two hot sequences never share one.
pub(crate) type Sequence = CachePadded<AtomicUsize>;

const_fn_unless_loom! {
    /// A new sequence at position 0.
    pub(crate) fn new_sequence() -> Sequence {
        CachePadded::new(AtomicUsize::new(0))
    }
}

/// Truncates a 64-bit position to the word the atomics hold.
#[inline(always)]
pub(crate) const fn word(pos: u64) -> usize {
    pos as usize
}

/// The number of positions from `from` up to `to`, for `to` not behind `from`.
#[inline(always)]
pub(crate) const fn distance(from: usize, to: usize) -> usize {
    to.wrapping_sub(from)
}

/// Packs a position and a flag into one word: `pos << 1 | flag`. Used where a
/// position and a bit must change together in one atomic operation (the
/// multi-producer claim with its closed bit, a worker's position with its
/// busy bit, a slot stamp with its skipped bit). The top bit of the position
/// is lost, which [`MAX_CAPACITY`] makes harmless.
#[inline(always)]
pub(crate) const fn pack(pos: usize, flag: bool) -> usize {
    (pos << 1) | flag as usize
}

/// The position half of a packed word (top bit lost, see [`pack`]).
#[inline(always)]
pub(crate) const fn unpacked_pos(packed: usize) -> usize {
    packed >> 1
}

/// The flag half of a packed word.
#[inline(always)]
pub(crate) const fn unpacked_flag(packed: usize) -> bool {
    packed & 1 == 1
}

/// Distance between two positions in the 63-bit (31-bit) space of packed
/// words: `to - from` modulo `2^(BITS-1)`.
#[inline(always)]
pub(crate) const fn packed_distance(from: usize, to: usize) -> usize {
    (to << 1).wrapping_sub(from << 1) >> 1
}

/// Iterates the set bits of a mask, lowest first.
#[inline(always)]
pub(crate) fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        if mask == 0 {
            None
        } else {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            Some(i)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_survive_the_wrap() {
        assert_eq!(distance(usize::MAX - 1, 2), 4);
        assert_eq!(distance(5, 5), 0);
        let a = usize::MAX >> 1; // the largest 63-bit position
        assert_eq!(packed_distance(a, 1), 2);
        assert_eq!(unpacked_pos(pack(a, true)), a);
        assert!(unpacked_flag(pack(a, true)));
        assert!(!unpacked_flag(pack(7, false)));
    }

    #[test]
    fn bits_lists_each_set_bit() {
        let v: [usize; 3] = [0, 5, 63];
        let mask = v.iter().fold(0u64, |m, &b| m | 1 << b);
        let mut got = [0usize; 3];
        for (slot, b) in got.iter_mut().zip(bits(mask)) {
            *slot = b;
        }
        assert_eq!(got, v);
        assert_eq!(bits(0).count(), 0);
    }
}
