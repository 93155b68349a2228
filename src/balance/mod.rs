//! Load balancers whose pickers never block: round robin, nginx's smooth
//! weighted round robin, consistent hashing (a virtual-node ring, or
//! rendezvous hashing) and power-of-two-choices on least in-flight.
//!
//! # Snapshots
//!
//! Each balancer keeps its members in an immutable *snapshot* that pickers
//! read and membership changes replace whole:
//!
//! - With `alloc`, the snapshot is a heap object behind a
//!   [crossbeam-epoch](crossbeam_epoch) pointer. A picker pins, loads the
//!   pointer and reads: no lock, no write to shared memory for the read
//!   itself. A change (`add`, `remove`, `set`, `reweight`) builds the next
//!   snapshot *outside* any lock, installs it with one compare-and-swap
//!   (rebuilding if another change won the race) and retires the old one
//!   to the epoch collector, which frees it once no pinned picker can hold
//!   it. Pickers are wait-free apart from the epoch pin; changes are
//!   lock-free.
//! - Hot loops take a per-thread *picker* ([`RoundRobin::picker`],
//!   [`Weighted::picker`], [`HashRing::picker`], [`LeastLoaded::picker`]):
//!   it holds one epoch pin across picks (re-pinned every 64 picks, so
//!   reclamation still progresses) and keeps its own cursor, so a pick is
//!   one `Acquire` load of the snapshot pointer and private arithmetic (a
//!   ring lookup), writing no cache line another picker writes (P2C: only
//!   the picker's own shard of the chosen member's in-flight count). Each picker's own picks follow the algorithm exactly (a
//!   rotation of round robin's order or of nginx's sequence); the totals
//!   over all pickers stay within one pick per picker (round robin) or
//!   `weight` per picker (SWRR) of the exact shares.
//! - Without an allocator, [`fixed::RoundRobin`] keeps two fixed-capacity
//!   copies and a reader count per copy (the left-right scheme): pickers
//!   enter the live copy and never wait; a change writes the idle copy
//!   once its readers have left, then flips.
//!
//! # Algorithms and provenance
//!
//! - [`RoundRobin`]: a shared counter modulo the member count.
//! - [`Weighted`]: nginx's *smooth weighted round robin* (ngx_http_upstream
//!   `ngx_http_upstream_get_peer`, 2012): every pick adds each member's
//!   weight to its running score, picks the highest (first on ties) and
//!   subtracts the total weight from the winner. The sequence is
//!   periodic with period `Σ weights`, so the snapshot precomputes one
//!   period (weights reduced by their gcd first) and a pick is a counter
//!   increment and an index: the exact nginx sequence, lock-free.
//! - [`HashRing`]: Karger et al.'s consistent hashing with virtual nodes
//!   (each member at `vnodes` points of a 64-bit ring; a key goes to the
//!   first point at or after its hash). Adding one of `n + 1` members
//!   moves about `1/(n + 1)` of the keys, all of them to the new member.
//!   A bucket index over the points' top bits (at least one bucket per
//!   point) makes a lookup two loads and a search of about one entry
//!   instead of a binary search of the whole ring.
//! - [`Rendezvous`]: Thaler and Ravishankar's highest-random-weight
//!   hashing: a key goes to the member with the largest `hash(member,
//!   key)`. `O(n)` per pick, no ring to keep, minimal movement on any
//!   change.
//! - [`LeastLoaded`]: Mitzenmacher's power of two choices: sample two
//!   members at random and take the one with fewer calls in flight
//!   (counted by the [`Lease`] a pick returns, on the picker's own shard
//!   of the member's counts, see [`LeastLoaded::picker`]). Keeps the maximum load
//!   within `O(log log n)` of the mean where a single random choice gives
//!   `O(log n / log log n)`.
//!
//! Hashes use [`StableHasher`] (FNV-1a with a 64-bit finaliser), the same
//! in every process and build, so processes that share a member list agree
//! on where each key goes (as long as the `Hash` impls they feed agree:
//! `usize` hashes differently on 32- and 64-bit targets).
//!
//! ```
//! use latchfree::balance::HashRing;
//!
//! let ring = HashRing::new(["db-a", "db-b", "db-c"], 64);
//! let owner = ring.pick_cloned(&"user:42").unwrap();
//! assert_eq!(ring.pick_cloned(&"user:42"), Some(owner)); // stable
//! ```

pub mod fixed;
#[cfg(feature = "alloc")]
mod hashing;
#[cfg(feature = "alloc")]
mod least_loaded;
#[cfg(feature = "alloc")]
mod round_robin;
#[cfg(feature = "alloc")]
mod snapshot;
#[cfg(feature = "std")]
mod std_pick;
#[cfg(all(test, feature = "alloc"))]
mod tests;
#[cfg(feature = "alloc")]
mod weighted;

use core::fmt;
use core::hash::Hasher;

#[cfg(feature = "alloc")]
pub use self::hashing::{HashRing, HashRingPicker, Rendezvous};
#[cfg(feature = "alloc")]
pub use self::least_loaded::{
    Lease, LeastLoaded, LeastLoadedPicker, PickerLease, P2C_SHARDS, P2C_STALE_AFTER,
};
#[cfg(feature = "alloc")]
pub use self::round_robin::{RoundRobin, RoundRobinPicker};
#[cfg(feature = "alloc")]
pub use self::weighted::{Weighted, WeightedPicker};

/// Why a membership change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceError {
    /// A weight of zero.
    ZeroWeight,
    /// The weights' period (their sum divided by their gcd) exceeds
    /// [`Weighted::MAX_PERIOD`].
    PeriodTooLong,
    /// More members than the balancer holds.
    Full,
    /// No such member.
    NotFound,
}

impl fmt::Display for BalanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BalanceError::ZeroWeight => "balancer member weight is zero",
            BalanceError::PeriodTooLong => "balancer weights' period is too long",
            BalanceError::Full => "balancer is full",
            BalanceError::NotFound => "no such balancer member",
        })
    }
}

impl core::error::Error for BalanceError {}

/// A deterministic 64-bit hasher: FNV-1a over the bytes, then the
/// murmur3 `fmix64` finaliser so nearby inputs land far apart on the ring.
///
/// ```
/// use core::hash::{Hash, Hasher};
/// use latchfree::balance::StableHasher;
///
/// let mut h = StableHasher::new();
/// "key".hash(&mut h);
/// let a = h.finish();
/// let mut h = StableHasher::new();
/// "key".hash(&mut h);
/// assert_eq!(a, h.finish());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64);

impl StableHasher {
    /// A hasher in its initial state.
    pub const fn new() -> StableHasher {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Default for StableHasher {
    fn default() -> StableHasher {
        StableHasher::new()
    }
}

impl Hasher for StableHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        // One multiply-xor round per word instead of eight byte rounds.
        self.0 ^= v;
        self.0 = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.0)
    }
}

/// murmur3's 64-bit finaliser.
#[inline]
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// `hash(value)` with [`StableHasher`].
#[inline]
pub fn stable_hash<T: core::hash::Hash + ?Sized>(value: &T) -> u64 {
    let mut h = StableHasher::new();
    value.hash(&mut h);
    h.finish()
}
