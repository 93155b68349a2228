//! The hierarchical timing wheel itself.
//!
//! Algorithm: a hashed, hierarchical timing wheel after Varghese & Lauck,
//! laid out as the tokio runtime's: `levels` levels of 64 slots, level `k`
//! slot width `64^k` ticks, and one `u64` occupancy bitmap per level so the
//! next due slot is found with a rotate and a `trailing_zeros`, never a scan.
//! A timer due at tick `t` sits on the level of the highest 6-bit digit in
//! which `t` differs from the wheel's current tick `elapsed`, in the slot
//! named by `t`'s digit there. When a slot above level 0 comes due its
//! timers are cascaded into lower levels; a level-0 slot holds timers of one
//! tick only, which fire. Timers too far away for the top level are placed
//! in the top level anyway (the top level acts as a ring); their true
//! deadline is kept in the entry and re-checked whenever their slot comes
//! due, so they cascade again instead of firing early.
//!
//! Ground rules:
//! - Entries live in an [`Arena`](crate::arena) slot: the deadline and
//!   payload in the slot, the bucket naming the list an entry is on in the
//!   slot's tag, its list links (`u32` indices) in the arena's hot table.
//!   Inserting a timer never allocates.
//! - A wheel slot holds `StorageKind::Ways` lists (one for `Fixed`, eight
//!   for `Growable`); entry `i` is on list `i % ways`. A slot is occupied
//!   iff one of its lists is not empty. A due slot's lists are walked
//!   together with a [`Lookahead`], which prefetches the slots a few links
//!   ahead: draining millions of timers then waits for memory once per
//!   few timers rather than once per timer (the lists live in a table far
//!   larger than the caches, and each link is only known once the one
//!   before it has arrived).
//! - `elapsed` only moves forward, and only to a slot deadline that has been
//!   processed or to an `advance_to` time before every remaining slot's
//!   deadline, so no occupied slot is ever skipped.
//! - The wheel never calls user code: expired timers move to the `ready`
//!   list, from which the caller takes them.
//! - The `ready` list is in deadline order (by `when`, ties in the order
//!   they came due) whenever a public method returns: `push_back` notes
//!   when an entry lands behind a later one (`List::unsorted`, a compare
//!   with the tail it writes anyway), and `advance_to` sorts the list only
//!   then (overdue timers inserted out of order, a slot of one tick holding
//!   different deadlines when `tick_shift > 0`, a rebase). The `overdue`
//!   list is sorted the same way before it fires.

use super::{Expired, TimerKey};
use crate::arena::{Arena, Blank, Fixed, StorageKind, Table, Ways, NIL};

/// Slots per level.
const SLOTS: usize = 64;
/// Bits of a tick consumed by one level.
const SLOT_BITS: u32 = 6;
/// The most levels a wheel may have: 10 levels cover 2^60 ticks, and a
/// level's range must fit in a `u64`.
pub const MAX_LEVELS: usize = 10;

/// `bucket` of an entry waiting in the overdue list (its deadline had passed
/// when it was inserted or reset; it fires at the next advance).
const OVERDUE: u16 = 0xFFFD;
/// `bucket` of an expired entry not yet taken by the caller.
const READY: u16 = 0xFFFE;

/// What a wheel keeps of an entry, and where: the deadline (caller time
/// units, as given) is the slot's cold link data; the bucket (`level * 64 +
/// slot`, or `OVERDUE` / `READY`) is the slot's tag; the list neighbours
/// are its [`Chain`] in the hot table. With the arena's generation that is
/// 16 bytes in the slot before the payload, plus 8 in the chain table.
pub(crate) type Link = u64;

/// An entry's list neighbours, in the arena's hot table: 8 bytes a timer,
/// so walking a slot's list reads a dense table and can run ahead of the
/// entries it fires (see `Lookahead`). Both stored inverted (`!index`), as
/// a level's heads are: a blank chain is all zero bits and reads as "no
/// neighbour", so a walk that ever met one would end, not loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    next: u32,
    prev: u32,
}

impl Blank for Chain {
    const BLANK: Self = Chain {
        next: !NIL,
        prev: !NIL,
    };
}

/// How many links ahead of the entries it works on a walk along a slot's
/// lists prefetches, all ways together: enough misses in flight to cover
/// a memory access while a few entries are handled.
const LOOKAHEAD: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Level<W> {
    /// Bit `s` set iff slot `s` is not empty.
    occupied: u64,
    /// Each slot's lists' first entries (`W::LEN` lists; an entry is on
    /// list `index % W::LEN`), stored inverted (`!index`, so an empty list,
    /// `!NIL`, is 0): an empty level is all zero bits, its reset a
    /// `memset`, and a `static` wheel goes to `.bss`.
    head: [W; SLOTS],
}

impl<W: Ways> Level<W> {
    const EMPTY: Self = Level {
        occupied: 0,
        head: [W::BLANK; SLOTS],
    };
}

impl<W: Ways> Blank for Level<W> {
    const BLANK: Self = Self::EMPTY;
}

/// The list of slot `slot`'s lists that entry `i` is on.
#[inline(always)]
fn way_of<W: Ways>(i: u32) -> usize {
    i as usize % W::LEN
}

/// A FIFO intrusive list with head and tail, both stored inverted as a
/// level's heads are (an empty list is all zero bits).
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
    /// Some entry sits behind one with a later deadline (ground rule 4);
    /// `false` whenever the list is empty.
    unsorted: bool,
}

impl List {
    const EMPTY: List = List {
        head: !NIL,
        tail: !NIL,
        unsorted: false,
    };
}

/// Shape of a [`Wheel`]: number of levels and tick length.
///
/// ```
/// use latchfree::wheel::WheelConfig;
/// // 6 levels (2^36 ticks before far timers start re-cascading), one tick =
/// // 2^10 caller time units (about a microsecond if the caller uses ns).
/// let config = WheelConfig::new().levels(6).tick_shift(10);
/// assert_eq!(config.horizon_ticks(), 1 << 36);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WheelConfig {
    levels: u8,
    tick_shift: u8,
}

impl Default for WheelConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl WheelConfig {
    /// Six levels (64^6 = 2^36 ticks of range; a wheel's default `LEVELS`)
    /// and a tick of one caller time unit.
    pub const fn new() -> Self {
        WheelConfig {
            levels: 6,
            tick_shift: 0,
        }
    }

    /// Number of levels in use, `1..=10` (clamped, and clamped again to the
    /// levels the wheel's type reserves: its `LEVELS` parameter, 6 unless
    /// spelled out). Storage is sized by the type, 264 bytes per level
    /// (2056 for a growable wheel), so
    /// a small wheel picks a small `LEVELS`; fewer levels in use make timers
    /// beyond `64^levels` ticks re-cascade through the top level once per
    /// top-level rotation (still never early), more cost an extra cascade
    /// for the farthest timers.
    pub const fn levels(mut self, levels: u8) -> Self {
        self.levels = if levels == 0 {
            1
        } else if levels as usize > MAX_LEVELS {
            MAX_LEVELS as u8
        } else {
            levels
        };
        self
    }

    /// A tick is `2^shift` caller time units (`0..=63`, clamped). Deadlines
    /// are rounded up to a whole tick, so a timer may fire up to one tick
    /// after its deadline but never before; a longer tick means fewer slots
    /// visited per unit of time.
    pub const fn tick_shift(mut self, shift: u8) -> Self {
        self.tick_shift = if shift > 63 { 63 } else { shift };
        self
    }

    /// Ticks a timer can be ahead of the wheel before it is placed in the
    /// top level's ring and cascades more than once.
    pub const fn horizon_ticks(&self) -> u64 {
        1u64 << (SLOT_BITS * self.levels as u32)
    }
}

/// A hierarchical timing wheel driven by the caller's clock.
///
/// `K` chooses the storage: [`Fixed<N>`] (no allocator, `const fn`
/// [`Wheel::new_fixed`], bounded: [`try_insert_at`](Self::try_insert_at)
/// gives the value back when full) or [`Growable`](super::Growable) (with
/// `alloc`, [`Wheel::new`], unbounded: [`insert_at`](Self::insert_at)
/// returns the key).
///
/// Names follow the crate's keyed timed containers: value first, then
/// when; `_at` takes an absolute deadline, no suffix a delay from
/// [`now`](Self::now).
///
/// # Timing bound
///
/// With a tick of `2^s` units, a timer with deadline `d` is handed out by the
/// first `advance_to(now)` whose `now >= ceil(d / 2^s) * 2^s`, and by no
/// earlier call. So it never fires early, and fires at the first advance
/// within one tick after its deadline (exactly at the first `now >= d` when
/// `s = 0`), however many cascades it went through. A deadline at or before
/// the wheel's current time fires at the next `advance_to`.
///
/// # Footprint
///
/// `LEVELS` (6 unless spelled out, at most [`MAX_LEVELS`]) sizes the slot
/// tables: 264 bytes per level with `Fixed` storage (one list per slot),
/// 2056 with `Growable` (eight lists per slot, so a drain of millions of
/// timers follows eight chains at once), plus
/// [`bytes_per_timer`](super::bytes_per_timer) per timer of a `Fixed<N>`
/// arena. [`SmallWheel`](super::SmallWheel) is the one-level wheel for
/// small parts. A fresh wheel is all zero bits when
/// its config uses all `LEVELS` levels (the default config and the default
/// `LEVELS` agree), so a `static` one costs RAM in `.bss` and no flash:
///
/// ```
/// use latchfree::wheel::{Fixed, Wheel, WheelConfig};
///
/// // 16 timers, one level (64 ticks before far timers re-cascade): 832 bytes.
/// static mut TIMERS: Wheel<u8, Fixed<16>, 1> = Wheel::new_fixed(WheelConfig::new());
/// assert!(core::mem::size_of::<Wheel<u8, Fixed<16>, 1>>() <= 1024);
/// ```
///
/// # Costs
///
/// insert, remove, reset: O(1). `advance_to`: O(levels) per due slot plus
/// O(1) per timer fired or cascaded (each timer cascades at most once per
/// level), plus a sort of the expired list in the rare cases ground rule 4
/// names. No operation allocates except a `Growable` arena growing.
///
/// ```
/// use latchfree::wheel::{Growable, Wheel, WheelConfig};
///
/// // Time in nanoseconds, ~1 ms ticks (2^20 ns), heap storage with room
/// // for 1024 timers before it reallocates.
/// let config = WheelConfig::new().tick_shift(20);
/// let mut timeouts: Wheel<u64, Growable> = Wheel::with_capacity(config, 1024);
/// let ms = 1_000_000;
/// let req = timeouts.insert_at(17, 30 * ms); // request 17 times out at 30 ms
/// assert!(timeouts.reset_at(req, 50 * ms)); // activity: push it back
/// timeouts.insert(18, 40 * ms); // relative to `now()`, which is 0 here
/// let next = timeouts.next_deadline().unwrap();
/// assert!(next >= 40 * ms && next < 41 * ms); // rounded up to a whole tick
///
/// let mut fired = Vec::new();
/// timeouts.advance_with(45 * ms, |e| fired.push(e.value)); // handle in place
/// assert_eq!(fired, [18]);
/// assert_eq!(timeouts.remove(req), Some(17)); // answered in time
/// assert!(timeouts.is_empty());
/// ```
pub struct Wheel<T, K: StorageKind, const LEVELS: usize = 6> {
    arena: Arena<Chain, Link, T, K>,
    /// `LEVELS` levels: inline for `Fixed` storage, boxed for `Growable`.
    levels: K::Table<Level<K::Ways>, LEVELS>,
    /// `LEVELS` minus the levels in use (0 when the config asks for all of
    /// them, as the default does: the whole wheel then starts as zero
    /// bits, so a `static` one goes to `.bss`).
    spare_levels: u8,
    tick_shift: u8,
    /// Current time in ticks; only moves forward.
    elapsed: u64,
    overdue: List,
    ready: List,
}

/// `LEVELS` minus the levels `config` asks for, clamped to `1..=LEVELS`;
/// refuses (at compile time) a `LEVELS` outside `1..=MAX_LEVELS`.
const fn spare_levels<const LEVELS: usize>(config: WheelConfig) -> u8 {
    const {
        assert!(
            LEVELS >= 1 && LEVELS <= MAX_LEVELS,
            "a wheel has 1..=10 levels"
        )
    };
    let used = if config.levels as usize > LEVELS {
        LEVELS
    } else {
        config.levels as usize
    };
    (LEVELS - used) as u8
}

impl<T, const N: usize, const LEVELS: usize> Wheel<T, Fixed<N>, LEVELS> {
    /// A wheel for at most `N` timers stored inline; no allocator needed.
    /// Can initialise a `static`.
    pub const fn new_fixed(config: WheelConfig) -> Self {
        Wheel {
            arena: Arena::new_fixed(),
            levels: [Level::EMPTY; LEVELS],
            spare_levels: spare_levels::<LEVELS>(config),
            tick_shift: config.tick_shift,
            elapsed: 0,
            overdue: List::EMPTY,
            ready: List::EMPTY,
        }
    }
}

#[cfg(feature = "alloc")]
impl<T, const LEVELS: usize> Wheel<T, crate::arena::Growable, LEVELS> {
    /// An unbounded wheel on the heap.
    pub fn new(config: WheelConfig) -> Self {
        Self::with_capacity(config, 0)
    }

    /// An unbounded heap wheel with room for `capacity` timers before it
    /// reallocates.
    pub fn with_capacity(config: WheelConfig, capacity: usize) -> Self {
        Wheel {
            arena: Arena::new_growable(capacity),
            levels: alloc::boxed::Box::new([Level::EMPTY; LEVELS]),
            spare_levels: spare_levels::<LEVELS>(config),
            tick_shift: config.tick_shift,
            elapsed: 0,
            overdue: List::EMPTY,
            ready: List::EMPTY,
        }
    }
}

#[cfg(feature = "alloc")]
impl<T, const LEVELS: usize> Wheel<T, crate::arena::Growable, LEVELS> {
    /// Adds a timer due at `deadline` (caller time units) and returns its
    /// key. A deadline at or before [`now`](Self::now) fires at the next
    /// advance; any deadline up to `u64::MAX` is accepted.
    ///
    /// # Panics
    ///
    /// If the wheel already holds `u32::MAX - 1` timers (its index space),
    /// as `Vec::push` panics past `isize::MAX` bytes.
    #[inline]
    pub fn insert_at(&mut self, value: T, deadline: u64) -> TimerKey {
        match self.try_insert_at(value, deadline) {
            Ok(key) => key,
            Err(_) => panic!("Wheel: more than u32::MAX - 1 timers"),
        }
    }

    /// Adds a timer due `delay` after [`now`](Self::now) (saturating) and
    /// returns its key.
    ///
    /// # Panics
    ///
    /// As [`insert_at`](Self::insert_at).
    #[inline]
    pub fn insert(&mut self, value: T, delay: u64) -> TimerKey {
        self.insert_at(value, self.now().saturating_add(delay))
    }
}

/// The wheel's view of its arena: list steps in the hot table, deadline
/// and bucket in the slot. Every accessor is total: an index no list
/// holds reads as "no neighbour" and writes nowhere (see the arena's
/// no-panic rule).
impl<T, K: StorageKind> Arena<Chain, Link, T, K> {
    /// The entry after `i` on its list, or `NIL`.
    #[inline(always)]
    fn next_of(&self, i: u32) -> u32 {
        !self.hot(i).next
    }

    #[inline(always)]
    fn set_next(&mut self, i: u32, next: u32) {
        if let Some(c) = self.hot_mut(i) {
            c.next = !next;
        }
    }

    #[inline(always)]
    fn set_prev(&mut self, i: u32, prev: u32) {
        if let Some(c) = self.hot_mut(i) {
            c.prev = !prev;
        }
    }

    #[inline(always)]
    fn when_of(&self, i: u32) -> u64 {
        self.link(i)
    }

    #[inline(always)]
    fn bucket_of(&self, i: u32) -> u16 {
        self.tag(i) as u16
    }

    #[inline(always)]
    fn set_bucket(&mut self, i: u32, bucket: u16) {
        self.set_tag(i, u32::from(bucket));
    }
}

/// A walk along `W::LEN` chains of entries linked by `next` (a slot's
/// lists), taking one entry from each in turn, that keeps a second cursor
/// on each chain `LOOKAHEAD / W::LEN` links ahead and prefetches the slot
/// under it. So the slots (deadline, generation, payload: what firing an
/// entry reads and writes) are already on their way when the walk reaches
/// them, and the chain links themselves are fetched `W::LEN` at a time:
/// a drain waits for memory once per few entries, not once per entry.
/// Only the entry just handed out may be relinked by the caller; the ones
/// ahead of it are read, never written.
#[derive(Clone, Copy)]
struct Lookahead<W> {
    /// Per chain, the next entry to hand out (`NIL`: that chain is done).
    /// Plain indices, not inverted.
    rest: W,
    /// Per chain, a cursor ahead of `rest`, or `NIL`.
    ahead: W,
    /// The chain to take from next.
    turn: usize,
}

impl<W: Ways> Lookahead<W> {
    /// Starts on the chains whose first entries are `heads` (stored
    /// inverted, as in a level).
    #[inline(always)]
    fn start<T, K: StorageKind>(arena: &Arena<Chain, Link, T, K>, heads: W) -> Self {
        let mut rest = heads;
        let mut ahead = heads;
        let depth = (LOOKAHEAD / W::LEN).max(2);
        for (r, a) in rest.as_mut().iter_mut().zip(ahead.as_mut()) {
            *r = !*r;
            *a = *r;
            for _ in 0..depth {
                if *a == NIL {
                    break;
                }
                arena.prefetch(*a);
                *a = arena.next_of(*a);
            }
        }
        Lookahead {
            rest,
            ahead,
            turn: 0,
        }
    }

    /// Starts on one chain.
    #[inline(always)]
    fn start_one<T, K: StorageKind>(arena: &Arena<Chain, Link, T, K>, head: u32) -> Self {
        let mut heads = W::BLANK;
        if let Some(h) = heads.as_mut().first_mut() {
            *h = !head;
        }
        Self::start(arena, heads)
    }

    /// Hands out the next entry (its `next` link already read, so the
    /// caller may relink it).
    #[inline(always)]
    fn next<T, K: StorageKind>(&mut self, arena: &Arena<Chain, Link, T, K>) -> Option<u32> {
        for _ in 0..W::LEN {
            let w = self.turn % W::LEN;
            self.turn = w + 1;
            let (Some(rest), Some(ahead)) = (
                self.rest.as_mut().get_mut(w),
                self.ahead.as_mut().get_mut(w),
            ) else {
                return None;
            };
            let i = *rest;
            if i == NIL {
                continue;
            }
            *rest = arena.next_of(i);
            if *ahead != NIL {
                arena.prefetch(*ahead);
                *ahead = arena.next_of(*ahead);
            }
            return Some(i);
        }
        None
    }

    /// Whether every chain is done.
    fn is_done(&self) -> bool {
        self.rest.as_ref().iter().all(|&i| i == NIL)
    }
}

/// Where an entry belongs, given the wheel's current tick.
#[inline(always)]
fn level_for(elapsed: u64, when: u64, num_levels: u8) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    let level = (significant / SLOT_BITS) as usize;
    level.min(num_levels as usize - 1)
}

impl<T, K: StorageKind, const LEVELS: usize> Wheel<T, K, LEVELS> {
    /// Levels in use.
    #[inline(always)]
    fn num_levels(&self) -> u8 {
        // `spare_levels < LEVELS` (set only by `spare_levels`), so the `min`
        // changes nothing; it lets the optimiser see `1..=LEVELS` and drop
        // the bounds checks of `levels[level]`.
        (LEVELS - (self.spare_levels as usize).min(LEVELS - 1)) as u8
    }

    /// Timers in the wheel, including expired ones not yet taken.
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    /// Whether the wheel holds no timer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most timers this wheel can hold (the limit of a growable wheel).
    pub fn capacity(&self) -> usize {
        self.arena.capacity()
    }

    /// The wheel's current time in caller units (the last `advance_to`
    /// rounded down to a tick).
    pub fn now(&self) -> u64 {
        self.elapsed << self.tick_shift
    }

    #[inline(always)]
    fn tick_of(&self, when: u64) -> u64 {
        // Round up, so a timer never fires before its deadline.
        let mask = (1u64 << self.tick_shift) - 1;
        (when >> self.tick_shift) + u64::from(when & mask != 0)
    }

    #[inline(always)]
    fn units_of(&self, tick: u64) -> u64 {
        if tick > u64::MAX >> self.tick_shift {
            u64::MAX
        } else {
            tick << self.tick_shift
        }
    }

    /// Adds a timer due at `deadline` (caller time units). Gives the value
    /// back when the wheel is full. A deadline at or before [`now`](Self::now)
    /// fires at the next advance; any deadline up to `u64::MAX` is accepted.
    #[inline]
    pub fn try_insert_at(&mut self, value: T, deadline: u64) -> Result<TimerKey, T> {
        let key = self.arena.insert(deadline, value)?;
        self.place(key.index);
        Ok(TimerKey(key))
    }

    /// Adds a timer due `delay` after [`now`](Self::now) (saturating).
    /// Gives the value back when the wheel is full.
    #[inline]
    pub fn try_insert(&mut self, value: T, delay: u64) -> Result<TimerKey, T> {
        self.try_insert_at(value, self.now().saturating_add(delay))
    }

    /// Removes a pending (or expired but not yet taken) timer and returns
    /// its payload; `None` if the key is stale: the timer was already taken,
    /// removed, or the slot reused. Never panics.
    #[inline]
    pub fn remove(&mut self, key: TimerKey) -> Option<T> {
        if !self.arena.contains(key.0) {
            return None;
        }
        self.unlink(key.0.index);
        self.arena.remove(key.0.index).map(|(_, _, value)| value)
    }

    /// Moves a live timer to `delay` after [`now`](Self::now) (saturating);
    /// `false` for a stale key. As [`reset_at`](Self::reset_at).
    #[inline]
    pub fn reset(&mut self, key: TimerKey, delay: u64) -> bool {
        self.reset_at(key, self.now().saturating_add(delay))
    }

    /// Moves a live timer to a new deadline; `false` for a stale key. If the
    /// timer had expired but was not yet taken, it is re-armed. O(1); when
    /// the new deadline falls in the same slot only the deadline is written.
    #[inline]
    pub fn reset_at(&mut self, key: TimerKey, deadline: u64) -> bool {
        if !self.arena.contains(key.0) {
            return false;
        }
        let i = key.0.index;
        let old_bucket = self.arena.bucket_of(i);
        if old_bucket != READY && old_bucket != OVERDUE {
            let when = self.tick_of(deadline);
            if when > self.elapsed {
                let level = level_for(self.elapsed, when, self.num_levels());
                let slot = ((when >> (SLOT_BITS * level as u32)) & 63) as usize;
                if (level * SLOTS + slot) as u16 == old_bucket {
                    self.set_when(i, deadline);
                    return true;
                }
            }
        }
        self.unlink(i);
        self.set_when(i, deadline);
        self.place(i);
        true
    }

    /// Whether `key` names a timer still in the wheel.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.arena.contains(key.0)
    }

    /// The deadline of a live timer.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        if self.arena.contains(key.0) {
            Some(self.arena.when_of(key.0.index))
        } else {
            None
        }
    }

    /// The payload of a live timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.arena.get(key.0)
    }

    /// The payload of a live timer, mutably.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        self.arena.get_mut(key.0)
    }

    #[inline(always)]
    fn set_when(&mut self, i: u32, deadline: u64) {
        if let Some(when) = self.arena.link_mut(i) {
            *when = deadline;
        }
    }

    /// Puts unlinked entry `i` on the list its deadline calls for and
    /// returns that list's bucket.
    #[inline]
    fn place(&mut self, i: u32) -> u16 {
        let when = self.tick_of(self.arena.when_of(i));
        if when <= self.elapsed {
            self.push_back(i, OVERDUE);
            return OVERDUE;
        }
        let level = level_for(self.elapsed, when, self.num_levels());
        let slot = ((when >> (SLOT_BITS * level as u32)) & 63) as usize;
        // `level < LEVELS` and `way < W::LEN`: both lookups always find
        // their entry; were one not to, the timer would still be on a
        // list (the overdue one), never lost.
        let Some(lvl) = self.levels.items_mut().get_mut(level) else {
            self.push_back(i, OVERDUE);
            return OVERDUE;
        };
        let Some(way) = lvl.head[slot].as_mut().get_mut(way_of::<K::Ways>(i)) else {
            self.push_back(i, OVERDUE);
            return OVERDUE;
        };
        let head = !*way;
        *way = !i;
        lvl.occupied |= 1 << slot;
        if head != NIL {
            self.arena.set_prev(head, i);
        }
        if let Some(c) = self.arena.hot_mut(i) {
            *c = Chain {
                next: !head,
                prev: !NIL,
            };
        }
        let bucket = (level * SLOTS + slot) as u16;
        self.arena.set_bucket(i, bucket);
        bucket
    }

    /// Appends `i` to the overdue or ready list.
    #[inline]
    fn push_back(&mut self, i: u32, bucket: u16) {
        let when = self.arena.when_of(i);
        let list = if bucket == OVERDUE {
            &mut self.overdue
        } else {
            &mut self.ready
        };
        let tail = !list.tail;
        list.tail = !i;
        if tail == NIL {
            list.head = !i;
        } else {
            self.arena.set_next(tail, i);
            if self.arena.when_of(tail) > when {
                // Ground rule 4: the list needs a sort before it is used.
                let list = if bucket == OVERDUE {
                    &mut self.overdue
                } else {
                    &mut self.ready
                };
                list.unsorted = true;
            }
        }
        if let Some(c) = self.arena.hot_mut(i) {
            *c = Chain {
                next: !NIL,
                prev: !tail,
            };
        }
        self.arena.set_bucket(i, bucket);
    }

    /// Takes `i` off whatever list it is on.
    #[inline]
    fn unlink(&mut self, i: u32) {
        let chain = self.arena.hot(i);
        let (next, prev) = (!chain.next, !chain.prev);
        let bucket = self.arena.bucket_of(i);
        if prev != NIL {
            self.arena.set_next(prev, next);
        }
        if next != NIL {
            self.arena.set_prev(next, prev);
        }
        match bucket {
            OVERDUE | READY => {
                let list = if bucket == OVERDUE {
                    &mut self.overdue
                } else {
                    &mut self.ready
                };
                if prev == NIL {
                    list.head = !next;
                }
                if next == NIL {
                    list.tail = !prev;
                }
                if !list.head == NIL {
                    list.unsorted = false;
                }
            }
            b => {
                let (level, slot) = (b as usize / SLOTS, b as usize % SLOTS);
                // Buckets below `OVERDUE` name a level in use, so `get`
                // always finds it; a head's `prev` is `NIL`.
                if let (NIL, Some(lvl)) = (prev, self.levels.items_mut().get_mut(level)) {
                    let heads = lvl.head[slot].as_mut();
                    if let Some(way) = heads.get_mut(way_of::<K::Ways>(i)) {
                        *way = !next;
                    }
                    if next == NIL && heads.iter().all(|&h| h == !NIL) {
                        lvl.occupied &= !(1 << slot);
                    }
                }
            }
        }
    }

    /// The next occupied slot `(level, slot, deadline_tick)`, lowest level
    /// first (every timer on a lower level is due before any on a higher).
    #[inline]
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let now = self.elapsed;
        let in_use = self.num_levels() as usize;
        for (level, lvl) in self.levels.items().iter().take(in_use).enumerate() {
            if lvl.occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            // Search from the slot after the current one: below the top level
            // the current slot is never occupied (a timer there would differ
            // from `elapsed` only on a lower level), and on the top level the
            // current slot is the farthest one, a full rotation ahead.
            let start = (((now >> shift) as u32 & 63) + 1) & 63;
            let rotated = lvl.occupied.rotate_right(start);
            let slot = (rotated.trailing_zeros() + start) as usize % SLOTS;
            let level_bits = shift + SLOT_BITS;
            // level_bits <= 60, so the shifts below stay in range.
            let level_start = now & !((1u64 << level_bits) - 1);
            let mut deadline = level_start.saturating_add((slot as u64) << shift);
            if deadline <= now {
                // Only the top level wraps: a far timer placed in a slot at
                // or behind the current one is one rotation ahead.
                debug_assert_eq!(level, self.num_levels() as usize - 1);
                deadline = deadline.saturating_add(1u64 << level_bits);
            }
            return Some((level, slot, deadline));
        }
        None
    }

    /// The earliest time (caller units) at which [`advance_to`](Self::advance_to)
    /// has work to do: the wheel's current time if overdue timers wait,
    /// else the start of the next occupied slot. A lower bound on the next
    /// deadline: when the slot is above level 0 the advance may only
    /// cascade. `None` for a wheel with nothing pending (expired timers not
    /// yet taken do not count).
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.overdue.head != NIL {
            return Some(self.now());
        }
        self.next_slot().map(|(_, _, t)| self.units_of(t))
    }

    /// Moves the wheel's time to `now` (caller units; a `now` earlier than
    /// the wheel's time is ignored) and moves every timer due by then to the
    /// expired list, which stays in deadline order (ties in the order they
    /// came due): timers overdue when inserted or reset take their place by
    /// deadline too. Returns how many expired. Take them with
    /// [`pop_expired`](Self::pop_expired) or
    /// [`drain_expired`](Self::drain_expired).
    pub fn advance_to(&mut self, now: u64) -> usize {
        let fired = self.advance_core::<false, _>(now, &mut |w, i| w.push_back(i, READY));
        if self.ready.unsorted {
            self.sort_list(READY);
        }
        fired
    }

    /// Sorts the overdue or ready list by deadline, stably (ground rule
    /// 4): a bottom-up merge sort over the `next` links, O(n log n), no
    /// allocation; then the `prev` links and the tail are rebuilt.
    #[cold]
    #[inline(never)]
    fn sort_list(&mut self, bucket: u16) {
        let head = if bucket == OVERDUE {
            !self.overdue.head
        } else {
            !self.ready.head
        };
        // `runs[k]` is NIL or a sorted run of 2^k entries, all of which came
        // before every entry of `runs[j]` for `j < k` (a binary counter).
        let mut runs = [NIL; 33];
        let mut i = head;
        while i != NIL {
            let next = self.arena.next_of(i);
            self.arena.set_next(i, NIL);
            let mut run = i;
            // The first empty `runs[k]` takes the carry; 33 counters hold
            // 2^33 - 1 entries, more than `u32` indices can name, so one
            // is always empty.
            for slot in runs.iter_mut() {
                if *slot == NIL {
                    *slot = run;
                    break;
                }
                run = self.merge(*slot, run);
                *slot = NIL;
            }
            i = next;
        }
        let mut sorted = NIL;
        for &run in &runs {
            if run != NIL {
                sorted = if sorted == NIL {
                    run
                } else {
                    self.merge(run, sorted)
                };
            }
        }
        let (mut prev, mut i) = (NIL, sorted);
        while i != NIL {
            self.arena.set_prev(i, prev);
            prev = i;
            i = self.arena.next_of(i);
        }
        let list = if bucket == OVERDUE {
            &mut self.overdue
        } else {
            &mut self.ready
        };
        list.head = !sorted;
        list.tail = !prev;
        list.unsorted = false;
    }

    /// Merges two sorted `next`-linked chains; on equal deadlines `a`'s
    /// entries (the earlier ones) go first, so the sort is stable.
    fn merge(&mut self, mut a: u32, mut b: u32) -> u32 {
        let (mut head, mut tail) = (NIL, NIL);
        while a != NIL && b != NIL {
            let take;
            if self.arena.when_of(a) <= self.arena.when_of(b) {
                take = a;
                a = self.arena.next_of(a);
            } else {
                take = b;
                b = self.arena.next_of(b);
            }
            if tail == NIL {
                head = take;
            } else {
                self.arena.set_next(tail, take);
            }
            tail = take;
        }
        let rest = if a != NIL { a } else { b };
        if tail == NIL {
            return rest;
        }
        self.arena.set_next(tail, rest);
        head
    }

    /// The one advance loop behind [`advance_to`](Self::advance_to) and
    /// [`advance_with`](Self::advance_with): moves time to `now`, cascading
    /// what is due, and calls `fire` for each timer that expires (already
    /// unlinked; `fire` parks it on the expired list or takes it out).
    ///
    /// `USER`: `fire` runs user code that may panic (a sink), so a slot's
    /// detached list is held by a [`Detached`] guard; without it the plain
    /// loop is kept (the guard costs a few percent of instructions).
    fn advance_core<const USER: bool, F: FnMut(&mut Self, u32)>(
        &mut self,
        now: u64,
        fire: &mut F,
    ) -> usize {
        let mut fired = 0;
        if self.overdue.unsorted {
            self.sort_list(OVERDUE);
        }
        // Overdue timers fire at this advance whatever `now` is, earliest
        // deadline first.
        loop {
            let i = self.pop_front(OVERDUE);
            if i == NIL {
                break;
            }
            fire(self, i);
            fired += 1;
        }
        let now = now >> self.tick_shift;
        if now < self.elapsed {
            return fired;
        }
        while let Some((level, slot, deadline)) = self.next_slot() {
            if deadline > now {
                break;
            }
            self.elapsed = deadline;
            let top = self.num_levels() as usize - 1;
            // `next_slot` names a level in use, so this always finds it.
            let Some(lvl) = self.levels.items_mut().get_mut(level) else {
                break;
            };
            let heads = core::mem::replace(&mut lvl.head[slot], Blank::BLANK);
            lvl.occupied &= !(1 << slot);
            let mut progress = level < top;
            // A level-0 slot below the top holds timers of exactly this
            // tick (they differed from `elapsed` in the lowest digit only,
            // and no occupied slot is skipped): all fire, unchecked.
            let all_due = level == 0 && level < top;
            if USER {
                let mut rest = Detached::new(self, heads, deadline);
                while let Some(i) = rest.next() {
                    let w = &mut *rest.wheel;
                    debug_assert!(!all_due || w.tick_of(w.arena.when_of(i)) == deadline);
                    if all_due || w.tick_of(w.arena.when_of(i)) <= deadline {
                        fire(w, i);
                        fired += 1;
                        progress = true;
                    } else {
                        progress |= (w.place(i) as usize) < top * SLOTS;
                    }
                }
                rest.done();
            } else {
                // `fire` runs no user code: nothing can interrupt the list.
                let mut walk = Lookahead::start(&self.arena, heads);
                while let Some(i) = walk.next(&self.arena) {
                    debug_assert!(!all_due || self.tick_of(self.arena.when_of(i)) == deadline);
                    if all_due || self.tick_of(self.arena.when_of(i)) <= deadline {
                        fire(self, i);
                        fired += 1;
                        progress = true;
                    } else {
                        progress |= (self.place(i) as usize) < top * SLOTS;
                    }
                }
            }
            if !progress
                && self
                    .levels
                    .items()
                    .iter()
                    .take(top)
                    .all(|l| l.occupied == 0)
            {
                // Only far timers are left, all on the top level's ring:
                // rotating it slot by slot could take ~now / 64^levels
                // steps. Jump straight to the earliest of them instead.
                fired += self.rebase::<USER, F>(now, fire);
            }
        }
        self.elapsed = now;
        fired
    }

    /// Like [`advance_to`](Self::advance_to), but hands every expired timer
    /// straight to `sink` (already removed from the wheel, its key stale)
    /// instead of parking it on the expired list: one pass over each timer
    /// instead of two, which is what a bulk drain wants. Order: timers
    /// already on the expired list first (in deadline order), then those
    /// overdue when inserted or reset (in deadline order), then the rest
    /// tick by tick; timers of one tick (different deadlines only when
    /// `tick_shift > 0`) in no particular order. The sink is the caller's own
    /// code running with the wheel borrowed, not a callback stored in the
    /// wheel. Returns how many timers went to `sink`.
    ///
    /// If `sink` panics, the timer it was given is gone (it was the sink's)
    /// and the wheel stays whole: timers due but not yet handed out fire at
    /// the next advance, the others stay in place, `len` counts exactly
    /// what is left.
    pub fn advance_with(&mut self, now: u64, mut sink: impl FnMut(Expired<T>)) -> usize {
        let mut n = 0;
        while let Some(e) = self.pop_expired() {
            sink(e);
            n += 1;
        }
        n + self.advance_core::<true, _>(now, &mut |w, i| {
            if let Some(e) = w.take(i) {
                sink(e);
            }
        })
    }

    /// Removes unlinked entry `i` and packages it (`None` only if `i` is
    /// not a live entry, which no list holds).
    #[inline(always)]
    fn take(&mut self, i: u32) -> Option<Expired<T>> {
        let (key, link, value) = self.arena.remove(i)?;
        Some(Expired {
            key: TimerKey(key),
            value,
            deadline: link,
        })
    }

    /// With every timer on the top level, moves `elapsed` to the earlier of
    /// `now` and the earliest deadline and re-places every timer relative to
    /// it (firing those due). O(timers on the top level); runs only when a
    /// top-level slot came due and held nothing but timers still beyond the
    /// horizon, so at most once per timer fired plus once per advance.
    /// `USER` as in `advance_core`.
    #[cold]
    fn rebase<const USER: bool, F: FnMut(&mut Self, u32)>(
        &mut self,
        now: u64,
        fire: &mut F,
    ) -> usize {
        let top = self.num_levels() as usize - 1;
        let mut min = u64::MAX;
        let mut chain = NIL;
        let Some(mut occupied) = self.levels.items().get(top).map(|l| l.occupied) else {
            return 0;
        };
        while occupied != 0 {
            let slot = occupied.trailing_zeros() as usize & (SLOTS - 1);
            occupied &= occupied - 1;
            let Some(level) = self.levels.items_mut().get_mut(top) else {
                break;
            };
            // Emptied slot by slot (no copy of the level), so the level
            // ends empty once its occupancy word is cleared below.
            let heads = core::mem::replace(&mut level.head[slot], Blank::BLANK);
            for &head in heads.as_ref() {
                let mut i = !head;
                while i != NIL {
                    let next = self.arena.next_of(i);
                    min = min.min(self.tick_of(self.arena.when_of(i)));
                    self.arena.set_next(i, chain);
                    chain = i;
                    i = next;
                }
            }
        }
        if let Some(level) = self.levels.items_mut().get_mut(top) {
            level.occupied = 0;
        }
        let target = min.min(now);
        debug_assert!(target >= self.elapsed);
        self.elapsed = target;
        let mut fired = 0;
        if !USER {
            // `fire` runs no user code: nothing can interrupt the chain.
            let mut walk = Lookahead::<K::Ways>::start_one(&self.arena, chain);
            while let Some(i) = walk.next(&self.arena) {
                if self.tick_of(self.arena.when_of(i)) <= target {
                    fire(self, i);
                    fired += 1;
                } else {
                    self.place(i);
                }
            }
            return fired;
        }
        let mut rest = Detached::new_one(self, chain, target);
        while let Some(i) = rest.next() {
            let w = &mut *rest.wheel;
            if w.tick_of(w.arena.when_of(i)) <= target {
                fire(w, i);
                fired += 1;
            } else {
                w.place(i);
            }
        }
        rest.done();
        fired
    }

    /// Takes the earliest expired timer (the list is in deadline order).
    #[inline]
    pub fn pop_expired(&mut self) -> Option<Expired<T>> {
        let i = self.pop_front(READY);
        if i == NIL {
            return None;
        }
        self.take(i)
    }

    /// Takes the first entry off the overdue or ready list (`NIL` if it is
    /// empty): `unlink` for the one case the drains need, without its
    /// general branches.
    #[inline(always)]
    fn pop_front(&mut self, bucket: u16) -> u32 {
        let list = if bucket == OVERDUE {
            &mut self.overdue
        } else {
            &mut self.ready
        };
        let i = !list.head;
        if i == NIL {
            return NIL;
        }
        let next = self.arena.next_of(i);
        list.head = !next;
        if next == NIL {
            list.tail = !NIL;
            list.unsorted = false;
        } else {
            self.arena.set_prev(next, NIL);
            // The caller takes `i` now and, popping in a loop, `next` soon:
            // start its slot on the way (its chain entry is cached by the
            // write above).
            self.arena.prefetch(next);
        }
        i
    }

    /// The expired timer [`pop_expired`](Self::pop_expired) would take
    /// next: its key, value and deadline. `None` when nothing expired is
    /// waiting (pending timers are not looked at: a wheel knows the next
    /// one only to a slot, see [`next_deadline`](Self::next_deadline)).
    ///
    /// ```
    /// use latchfree::wheel::{Fixed, Wheel, WheelConfig};
    ///
    /// let mut wheel: Wheel<&str, Fixed<4>> = Wheel::new_fixed(WheelConfig::new());
    /// let late = wheel.try_insert_at("late", 8).unwrap();
    /// let early = wheel.try_insert_at("early", 3).unwrap();
    /// assert_eq!(wheel.peek(), None); // nothing expired yet
    /// wheel.advance_to(10);
    /// assert_eq!(wheel.peek(), Some((early, &"early", 3)));
    /// assert!(wheel.reset_at(early, 20)); // the key lets you act on it
    /// assert_eq!(wheel.peek().map(|(k, _, _)| k), Some(late));
    /// ```
    pub fn peek(&self) -> Option<(TimerKey, &T, u64)> {
        let i = !self.ready.head;
        if i == NIL {
            return None;
        }
        let key = self.arena.key_of(i)?;
        let value = self.arena.get(key)?;
        Some((TimerKey(key), value, self.arena.when_of(i)))
    }

    /// Takes every expired timer, in deadline order (ties in the order they
    /// came due). Timers the iterator does not reach stay in the expired
    /// list.
    pub fn drain_expired(&mut self) -> DrainExpired<'_, T, K, LEVELS> {
        DrainExpired { wheel: self }
    }

    /// Hands back the memory of free slots above the highest live one
    /// (growable storage; a fixed wheel keeps its array). Keys stay valid
    /// and stale keys stay stale. O(slots).
    pub fn compact(&mut self) {
        self.arena.compact();
    }

    /// Advances to `now` and takes the earliest expired timer: a loop of
    /// `while let Some(e) = wheel.poll_expired(now)` fires everything due.
    #[inline]
    pub fn poll_expired(&mut self, now: u64) -> Option<Expired<T>> {
        if !self.ready.head == NIL {
            self.advance_to(now);
        }
        self.pop_expired()
    }

    /// Removes every timer, dropping the payloads. Keys handed out before
    /// stay stale; the wheel's time is kept.
    pub fn clear(&mut self) {
        // Lists first: dropping payloads runs user code, and if a `Drop`
        // panics the arena still ends empty, so nothing may point into it.
        for level in self.levels.items_mut() {
            *level = Level::EMPTY;
        }
        self.overdue = List::EMPTY;
        self.ready = List::EMPTY;
        self.arena.clear();
    }
}

/// A chain of timers taken off the wheel to be fired or re-placed (a due
/// slot's list, or the top level during a rebase), linked through `next`
/// and in no list, walked with a [`Lookahead`]. `fire` runs user code (a
/// sink) that may panic: if it does, dropping this re-homes the rest, so
/// no timer is left in no list (counted by `len` but unreachable): those
/// due by `due` go to the overdue list (they fire at the next advance),
/// the others back to their slots.
struct Detached<'a, T, K: StorageKind, const LEVELS: usize> {
    wheel: &'a mut Wheel<T, K, LEVELS>,
    walk: Lookahead<K::Ways>,
    due: u64,
}

impl<'a, T, K: StorageKind, const LEVELS: usize> Detached<'a, T, K, LEVELS> {
    /// The chains of a slot's lists, `heads` as the level stored them.
    #[inline(always)]
    fn new(wheel: &'a mut Wheel<T, K, LEVELS>, heads: K::Ways, due: u64) -> Self {
        let walk = Lookahead::start(&wheel.arena, heads);
        Detached { wheel, walk, due }
    }

    /// One chain, `head` a plain index.
    #[inline(always)]
    fn new_one(wheel: &'a mut Wheel<T, K, LEVELS>, head: u32, due: u64) -> Self {
        let walk = Lookahead::start_one(&wheel.arena, head);
        Detached { wheel, walk, due }
    }

    /// Takes the next timer off the chain (it is then the caller's to fire
    /// or place).
    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        self.walk.next(&self.wheel.arena)
    }

    /// The chain was worked through: nothing to re-home (the drop glue is
    /// skipped, keeping the common path as cheap as a plain loop).
    #[inline(always)]
    fn done(self) {
        debug_assert!(self.walk.is_done());
        core::mem::forget(self);
    }
}

impl<T, K: StorageKind, const LEVELS: usize> Drop for Detached<'_, T, K, LEVELS> {
    fn drop(&mut self) {
        // Empty unless a sink panicked; runs no user code.
        while let Some(i) = self.next() {
            if self.wheel.tick_of(self.wheel.arena.when_of(i)) <= self.due {
                self.wheel.push_back(i, OVERDUE);
            } else {
                self.wheel.place(i);
            }
        }
    }
}

/// Iterator returned by [`Wheel::drain_expired`].
///
/// ```
/// use latchfree::wheel::{Fixed, Wheel, WheelConfig};
///
/// let mut wheel: Wheel<char, Fixed<8>> = Wheel::new_fixed(WheelConfig::new());
/// wheel.advance_to(100);
/// for (t, c) in [(103, 'c'), (101, 'a'), (102, 'b'), (109, 'z')] {
///     wheel.try_insert_at(c, t).unwrap();
/// }
/// // Already overdue when inserted: they take their place by deadline too.
/// wheel.try_insert_at('y', 50).unwrap();
/// wheel.try_insert_at('x', 40).unwrap();
/// assert_eq!(wheel.advance_to(105), 5);
/// let due: String = wheel.drain_expired().map(|e| e.value).collect();
/// assert_eq!(due, "xyabc"); // deadline order
/// assert_eq!(wheel.len(), 1);
/// ```
pub struct DrainExpired<'a, T, K: StorageKind, const LEVELS: usize = 6> {
    wheel: &'a mut Wheel<T, K, LEVELS>,
}

impl<T, K: StorageKind, const LEVELS: usize> Iterator for DrainExpired<'_, T, K, LEVELS> {
    type Item = Expired<T>;
    #[inline]
    fn next(&mut self) -> Option<Expired<T>> {
        self.wheel.pop_expired()
    }
}

impl<T, K: StorageKind, const LEVELS: usize> core::fmt::Debug for Wheel<T, K, LEVELS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Wheel")
            .field("len", &self.len())
            .field("now", &self.now())
            .field("levels", &self.num_levels())
            .field("tick_shift", &self.tick_shift)
            .finish_non_exhaustive()
    }
}
