//! Sequence numbers and the wrap-safe arithmetic every ring protocol uses.
//!
//! Handles count positions as `u64` (a consumer's next sequence, a producer's
//! next claim), so the sequence a handler sees is a true 64-bit number on every
//! target. The shared atomics store those positions truncated to `usize`
//! (the multi-producer claim word and the worker words keep one bit less, see
//! [`pack`]): on 64-bit targets that is the whole number for 2^63 events; on
//! 32-bit targets (Cortex-M has no 64-bit atomics) the words wrap every 2^32
//! (2^31) events.
//!
//! # Across the wrap
//!
//! Every comparison of atomic words is a wrapping *distance*
//! (`a.wrapping_sub(b)`) from an anchor that no live position is behind.
//! A handle that compares gates with its own exact position (a consumer's
//! next event, a producer's next claim less a capacity) is such an anchor:
//! no two live positions are ever more than a capacity apart, and capacity
//! is at most [`MAX_CAPACITY`].
//!
//! Two words are shared by several handles and read by handles that may
//! have sat idle for any number of events: the multi-producer claim word and
//! a work group's claim. A handle's last view of them is no anchor (after
//! 2^31 claims by others it would be a lap behind), so on targets where the
//! words wrap the ring keeps a fresh one, its *epoch*: `pos >> EPOCH_SHIFT`
//! (units of 2^29 events on 32-bit targets) of a recent claim position.
//!
//! - Writers: a producer, before claiming from position `p`, makes sure the
//!   epoch is `epoch_of(p)` (the single producer stores it; multi-producers
//!   CAS it forward, never back). So every claim ends less than
//!   `2^EPOCH_SHIFT + capacity` past the epoch's start that its producer
//!   read before claiming.
//! - Readers load the epoch (Acquire), the word, and the epoch again; if it
//!   did not move, the word's position lies in
//!   `[start - capacity, start + 2^EPOCH_SHIFT + capacity]` for
//!   `start = epoch_start(epoch)`: not below, because whoever advanced the
//!   epoch had seen the claim at `start` (and every gate within a capacity
//!   of it) before its Release store; not above, because every claim past
//!   that was made by a producer that had read the same or a later epoch,
//!   and the read of the word is ordered after it (the Release/Acquire
//!   chain from the claim to the word we read), so the second epoch load
//!   sees it. That interval is shorter than 2^31, so the word's position is
//!   rebuilt exactly from `start - capacity`.
//!
//! On 64-bit targets the words are the positions and the epoch is never
//! touched ([`WORDS_WRAP`] is false; loom models turn it on). Positions are
//! exact up to 2^61 events on 32-bit targets (73 years at a billion a
//! second) and 2^63 on 64-bit ones.

use crate::sync::{AtomicUsize, CachePadded};

/// The largest ring capacity: a quarter of the `usize` range, so that wrapping
/// distances between live positions (at most one capacity apart) can never be
/// mistaken for negative ones, even in the 63-bit (31-bit) packed words of the
/// multi-producer claim and the work-queue workers.
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);

/// Whether positions are rebuilt from the words with the ring's epoch: on
/// targets whose words wrap in practice, and in loom models (so the models
/// check the protocol on 64-bit hosts).
pub(crate) const WORDS_WRAP: bool = usize::BITS < 64 || cfg!(latchfree_loom);

/// One epoch is `2^EPOCH_SHIFT` positions: an eighth of the word, so that
/// an epoch plus two capacities (at most a quarter each) is less than the
/// 31-bit (63-bit) range of a packed word.
pub(crate) const EPOCH_SHIFT: u32 = usize::BITS - 3;

/// The epoch of a position.
#[inline(always)]
pub(crate) const fn epoch_of(pos: u64) -> usize {
    (pos >> EPOCH_SHIFT) as usize
}

/// The first position of an epoch.
#[inline(always)]
pub(crate) const fn epoch_start(epoch: usize) -> u64 {
    (epoch as u64) << EPOCH_SHIFT
}

/// A position shared between threads: a consumer's progress, a work group's
/// claim. Padded to a cache line so two hot sequences never share one.
pub(crate) type Sequence = CachePadded<AtomicUsize>;

const_fn_unless_loom! {
    /// A new sequence at position 0.
    pub(crate) fn new_sequence() -> Sequence {
        CachePadded::new(AtomicUsize::new(0))
    }
}

/// A handle's own 64-bit position (a producer's next claim, a consumer's
/// next event), kept as the word the atomics hold plus the high part the
/// word leaves out. Advancing it is one word add; the carry into the high
/// part (once per 2^32 events on a 32-bit target, never on a 64-bit one)
/// is a branch not taken. So a 32-bit target keeps the word in one
/// register and reads the high part only when a caller asks for the whole
/// sequence, where a `u64` would cost an add-with-carry and a second
/// register on every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// The low `usize::BITS` bits: what gates and cursors store.
    word: usize,
    /// The sequence less `word`: a multiple of 2^32. Only where the word
    /// is narrower than a sequence; on 64-bit targets the word is the whole
    /// position (no second field to keep in a register).
    #[cfg(not(target_pointer_width = "64"))]
    high: u64,
}

impl Position {
    /// The position of sequence `seq`.
    #[inline(always)]
    pub(crate) const fn new(seq: u64) -> Self {
        Self {
            word: word(seq),
            #[cfg(not(target_pointer_width = "64"))]
            high: seq - word(seq) as u64,
        }
    }

    /// The whole 64-bit sequence.
    #[inline(always)]
    pub(crate) const fn get(self) -> u64 {
        #[cfg(not(target_pointer_width = "64"))]
        return self.high | self.word as u64;
        #[cfg(target_pointer_width = "64")]
        return self.word as u64;
    }

    /// The word the atomics hold ([`word`] of [`get`](Self::get)).
    #[inline(always)]
    pub(crate) const fn word(self) -> usize {
        self.word
    }

    /// Moves the position `n` on.
    #[inline(always)]
    pub(crate) fn advance(&mut self, n: usize) {
        let (w, _carried) = self.word.overflowing_add(n);
        self.word = w;
        #[cfg(not(target_pointer_width = "64"))]
        if _carried {
            self.high = carry(self.high);
        }
    }
}

/// The high part after a carry out of the word: out of line and cold, so
/// the branch to it stays a branch not taken (not a conditional update of
/// the high part's register on every advance).
#[cfg(not(target_pointer_width = "64"))]
#[cold]
#[inline(never)]
const fn carry(high: u64) -> u64 {
    high + (1 << usize::BITS)
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
    fn positions_carry_into_the_high_part() {
        // On 32-bit targets (CI runs these on i686) the word wraps here;
        // on 64-bit ones it is the whole sequence.
        for start in [0u64, (1 << 32) - 3, (1 << 33) - 1, u64::MAX >> 2] {
            let mut p = Position::new(start);
            assert_eq!((p.get(), p.word()), (start, word(start)));
            for step in [1usize, 2, 5] {
                let before = p.get();
                p.advance(step);
                assert_eq!(p.get(), before + step as u64);
                assert_eq!(p.word(), word(p.get()));
            }
        }
        let mut p = Position::new(u64::from(u32::MAX));
        p.advance(1);
        assert_eq!(p.get(), 1 << 32);
        assert_eq!(p.word(), word(1 << 32));
    }

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
