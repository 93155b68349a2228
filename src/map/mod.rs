//! A sharded concurrent hash map whose readers never block.
//!
//! # Design
//!
//! The map is split into a power-of-two number of *shards*, picked by the
//! top bits of a key's hash. Each shard is an open-addressing table
//! (linear probing, indexed by the low hash bits) of pointers to boxed
//! entries (a key and its value), with one control byte per slot (state
//! and a hash tag) packed eight to a word, so a lookup reads one control
//! word and then the one entry whose tag matches. Memory is managed with
//! [crossbeam-epoch](crossbeam_epoch):
//!
//! - **Reads take no lock and never wait.** An entry is written once,
//!   before it is published, and never written again. A new value for a
//!   present key is a new entry, published by one pointer store, so a
//!   reader sees the old or the new value, never a torn one. Removed and
//!   replaced entries and outgrown tables are dropped only once no pinned
//!   reader can hold them.
//! - **Writers to different shards never contend.** Within a shard, writers
//!   serialise their *commit* (a validation and a few stores) with a small
//!   spin-then-yield lock. Everything the user wrote (`Hash`, `Eq`,
//!   closures, `Drop`) runs outside that lock: a writer finds its key
//!   lock-free, runs its closure, then locks and checks that the slot it
//!   read still holds the entry it saw; if not, it retries. So a closure
//!   passed to [`MapRef::compute`], [`MapRef::update`] or
//!   [`MapRef::upsert`] **may run more than once** for one call (only the
//!   result of the last run is stored). No method returns anything that
//!   holds a lock, so nothing you do with the map can deadlock it. Writers
//!   are *blocking* within a shard in the strict sense (a writer preempted
//!   while committing delays the others of its shard), and readers are
//!   wait-free apart from the epoch pin.
//! - **Growth is incremental.** When a table passes 3/4 occupancy the shard
//!   allocates a table for twice its live entries, and every later write
//!   to that shard moves at most 16 old slots, so no single insert rehashes
//!   a large table. Moving a slot moves the *pointer* to its entry: keys
//!   and values never move and are never copied. Readers look in the old
//!   table and then the new one.
//!
//! ## What this asks of your types
//!
//! Nothing beyond `Hash + Eq + Send` (and `Sync` to share the map): keys
//! and values need not be `Clone` (a channel sender, a file handle, a
//! `Box<dyn FnOnce>` are fine). A value stays at one address for as long as
//! it is its key's current value, so interior mutability inside a value
//! (an `AtomicU64` counter, a `Mutex`) works while shards grow. Storing a
//! value for a present key stores the caller's key with it (the entry is
//! replaced whole) and drops the old key later with the old value.
//!
//! Keys and values may borrow (`HashMap<&str, &T>`): nothing of theirs is
//! dropped after the map. A removed or replaced value (and a removed key)
//! is dropped by a later write to its shard once no pinned reader can see
//! it, or when the map is dropped, whichever comes first; a value replaced
//! while its shard is growing waits for that growth to complete. (The
//! epoch only raises a flag; the map runs the drops itself: see
//! `src/map/grave.rs`.)
//!
//! Entries live in chunks of cells that each shard allocates (no heap
//! block per entry). A removed entry's cell is reused by later inserts
//! into its shard; the chunks are returned to the allocator when the map
//! is dropped, so a map that once held many entries keeps their cells
//! ([`shrink_to_fit`](HashMap::shrink_to_fit) and `clear` shrink the
//! tables only).
//!
//! The map requires the `alloc` feature. The default hasher is `ahash`;
//! see [`HashMap::with_seeds`] for what an unseeded `no_std` map risks.
//!
//! # Guards
//!
//! The core API lives on [`MapRef`], a view of the map bound to an epoch
//! guard; references it returns cannot outlive that guard, and a `MapRef`
//! holding its own guard is not `Send`. Get one with [`HashMap::pin`]
//! (under `std` a cheap thread-local pin) or, in `no_std` hot paths, with
//! [`HashMap::with_guard`] and a guard from a [`LocalHandle`] you keep:
//!
//! ```
//! use latchfree::map::HashMap;
//!
//! let map: HashMap<u32, &str> = HashMap::new();
//! let handle = map.collector().register();
//! let guard = handle.pin();
//! let m = map.with_guard(&guard);
//! m.insert(1, "one");
//! assert_eq!(m.get(&1), Some(&"one"));
//! ```
//!
//! Under `std`, [`HashMap`] also has self-pinning methods that return owned
//! values (`get` clones): `map.insert(1, 2); map.get(&1)`.
//!
//! Keep guards short-lived: memory retired while any guard is pinned is not
//! freed until that guard is dropped. A view kept across a long run of
//! operations can [`repin`](MapRef::repin) every few dozen of them: that
//! costs no fence, so the run still pays for about one pin. The self-pinning
//! methods pin for the call only: a thread that stops calling the map holds
//! nothing back (`tests/map_reclaim.rs` checks it).
//!
//! # Consistency
//!
//! Every single-key operation is linearizable. [`HashMap::len`] sums
//! per-shard counters without locking: each counter is exact between its
//! shard's writes, but the sum is not an atomic snapshot while writes are
//! in flight (it is exact when none are). Iteration (and everything built
//! on it: `retain`, snapshots, `Debug`) is *weakly consistent*; see
//! [`Iter`].

mod entry;
mod grave;
mod iter;
mod lock;
mod raw;
#[cfg(feature = "rayon")]
mod rayon_impl;
#[cfg(feature = "serde")]
mod serde_impl;
mod set;
mod slab;
#[cfg(feature = "std")]
mod std_contained;
#[cfg(feature = "std")]
mod std_methods;
#[cfg(feature = "std")]
mod std_set;

use alloc::boxed::Box;
use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

pub use crossbeam_epoch::{Collector, Guard, LocalHandle};

pub use self::entry::Entry;
pub use self::iter::{Iter, Keys, PinnedIter, Values};
use self::raw::{find, find_noting_growth, Found, Plan, Shard, Stale};
pub use self::set::{HashSet, SetRef};
use crate::sync::CachePadded;

/// The default hasher: `ahash`, randomly seeded under `std`. Without `std`
/// its seeds are weak; see [`HashMap::with_seeds`].
///
/// ```
/// use core::hash::BuildHasher;
/// use latchfree::map::{DefaultHashBuilder, HashMap};
///
/// // Fixed seeds give the same hashes in every run (no_std, tests).
/// let a = DefaultHashBuilder::with_seeds([1, 2, 3, 4]);
/// let b = DefaultHashBuilder::with_seeds([1, 2, 3, 4]);
/// assert_eq!(a.hash_one(42u64), b.hash_one(42u64));
/// let map: HashMap<u64, u64> = HashMap::with_hasher(a);
/// map.pin().insert(1, 2);
/// ```
#[derive(Clone, Debug)]
pub struct DefaultHashBuilder(ahash::RandomState);

impl DefaultHashBuilder {
    /// A hasher with the best seeds available (see the type docs).
    pub fn new() -> Self {
        Self(ahash::RandomState::new())
    }

    /// A hasher with these seeds.
    pub const fn with_seeds(seeds: [u64; 4]) -> Self {
        Self(ahash::RandomState::with_seeds(
            seeds[0], seeds[1], seeds[2], seeds[3],
        ))
    }
}

impl Default for DefaultHashBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for DefaultHashBuilder {
    type Hasher = ahash::AHasher;

    #[inline]
    fn build_hasher(&self) -> ahash::AHasher {
        self.0.build_hasher()
    }
}

/// Most shards a map may have.
const MAX_SHARDS: usize = 1 << 16;

/// A sharded concurrent hash map whose readers never block. See the
/// [module documentation](self).
///
/// ```
/// use latchfree::map::{HashMap, Op};
///
/// let prices: HashMap<&str, u64> = HashMap::new();
/// prices.insert("AAPL", 190);
/// prices.compute("AAPL", |p| Op::Put(p.map_or(0, |p| p + 1)));
/// assert_eq!(prices.get("AAPL"), Some(191));
/// assert_eq!(prices.len(), 1);
/// ```
pub struct HashMap<K, V, S = DefaultHashBuilder> {
    shards: Box<[CachePadded<Shard<K, V>>]>,
    /// `63 - log2(shards)`: `hash >> shift >> 1` is the shard index (the
    /// top bits; the in-shard tables use the low bits).
    shift: u32,
    hasher: S,
    collector: Collector,
    /// Whether `collector` is the process-wide default one, which has a
    /// cheap thread-local pin.
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    default_collector: bool,
}

/// A builder for [`HashMap`] with every knob.
///
/// ```
/// use latchfree::map::HashMap;
/// let map: HashMap<u64, u64> = HashMap::builder().shards(8).capacity(1000).build();
/// assert_eq!(map.shards(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct Builder<S = DefaultHashBuilder> {
    shards: usize,
    capacity: usize,
    hasher: S,
    collector: Option<Collector>,
}

impl Builder<DefaultHashBuilder> {
    /// A builder with the defaults: automatic shard count, no
    /// preallocation, the default hasher and collector.
    pub fn new() -> Self {
        Self {
            shards: 0,
            capacity: 0,
            hasher: DefaultHashBuilder::new(),
            collector: None,
        }
    }
}

impl Default for Builder<DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Builder<S> {
    /// Number of shards, rounded up to a power of two (at most 65536); `0`
    /// (the default) chooses for you: four per available CPU under `std`,
    /// at least 16. More shards spread writers and keep each table (and so
    /// each growth step) small; each costs a cache line and an initial
    /// table, and `len` sums them all.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Entries to make room for up front (spread evenly over the shards),
    /// so a map filled to this size does not grow. Default 0.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The hasher. Use a seeded one where keys may come from an attacker.
    pub fn hasher<S2>(self, hasher: S2) -> Builder<S2> {
        Builder {
            shards: self.shards,
            capacity: self.capacity,
            hasher,
            collector: self.collector,
        }
    }

    /// The epoch collector that reclaims removed entries. Default: the
    /// process-wide collector under `std` (cheap thread-local pins), a new
    /// collector per map without `std`.
    pub fn collector(mut self, collector: Collector) -> Self {
        self.collector = Some(collector);
        self
    }

    /// Builds the map.
    pub fn build<K, V>(self) -> HashMap<K, V, S> {
        let shards = resolve_shards(self.shards);
        let per_shard = self.capacity.div_ceil(shards);
        // Room for `per_shard` entries below the growth threshold.
        let table = raw::slots_for(per_shard).expect("latchfree::map: capacity overflow");
        let shard_vec: Vec<_> = (0..shards).map(|_| Shard::new(table)).collect();
        let collector = self.collector.unwrap_or_else(default_collector);
        HashMap {
            shards: shard_vec.into_boxed_slice(),
            shift: 63 - shards.trailing_zeros(),
            hasher: self.hasher,
            #[cfg(all(feature = "std", not(latchfree_loom)))]
            default_collector: collector == *crossbeam_epoch::default_collector(),
            collector,
        }
    }
}

fn resolve_shards(requested: usize) -> usize {
    let n = if requested == 0 {
        default_shards()
    } else {
        requested
    };
    n.min(MAX_SHARDS).next_power_of_two()
}

fn default_shards() -> usize {
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    {
        let cpus = crate::sync::thread::available_parallelism().map_or(4, |n| n.get());
        (cpus * 4).clamp(16, MAX_SHARDS)
    }
    #[cfg(not(all(feature = "std", not(latchfree_loom))))]
    {
        16
    }
}

fn default_collector() -> Collector {
    #[cfg(all(feature = "std", not(latchfree_loom)))]
    {
        crossbeam_epoch::default_collector().clone()
    }
    #[cfg(not(all(feature = "std", not(latchfree_loom))))]
    {
        Collector::new()
    }
}

impl<K, V> HashMap<K, V, DefaultHashBuilder> {
    /// An empty map with the default hasher and shard count.
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Builder::new().capacity(capacity).build()
    }

    /// An empty map with `shards` shards (rounded up to a power of two;
    /// `0` chooses for you).
    pub fn with_shards(shards: usize) -> Self {
        Builder::new().shards(shards).build()
    }

    /// An empty map whose `ahash` hasher uses these seeds.
    ///
    /// Under `std` the default hasher is seeded from the operating system's
    /// random source, which defeats HashDoS (an attacker choosing keys that
    /// all collide). Without `std` there is no such source: the default
    /// seeds are fixed constants mixed with an address and a counter, so an
    /// attacker who knows the binary may be able to precompute colliding
    /// keys and turn every operation on a shard into a linear scan. Where
    /// keys come from outside, pass seeds from a hardware RNG here.
    pub fn with_seeds(seeds: [u64; 4]) -> Self {
        Builder::new()
            .hasher(DefaultHashBuilder::with_seeds(seeds))
            .build()
    }
}

impl HashMap<(), ()> {
    /// A [`Builder`] with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<K, V, S> HashMap<K, V, S> {
    /// An empty map using `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Builder::new().hasher(hasher).build()
    }

    /// An empty map with room for `capacity` entries, using `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Builder::new().capacity(capacity).hasher(hasher).build()
    }

    /// Number of shards (a power of two).
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The map's hasher.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The epoch collector guarding this map; register a [`LocalHandle`]
    /// with it to pin guards for [`with_guard`](Self::with_guard).
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Number of entries, summed from per-shard counters without locking.
    ///
    /// Exact when no write is in flight; under concurrent writes it may be
    /// stale, and is not an atomic snapshot across shards (each shard's
    /// count was exact at some moment during the call).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether [`len`](Self::len) is zero; may be stale under concurrency.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.len() == 0)
    }

    /// Pins the epoch and returns a view of the map bound to that guard.
    ///
    /// Under `std` with the default collector this is a cheap thread-local
    /// pin. Otherwise it registers a participant with the map's collector
    /// on every call (an allocation); in hot `no_std` code keep a
    /// [`LocalHandle`] and use [`with_guard`](Self::with_guard).
    #[inline]
    pub fn pin(&self) -> MapRef<'_, K, V, S, Guard> {
        MapRef {
            map: self,
            guard: self.pin_guard(),
        }
    }

    /// A view of the map bound to `guard`.
    ///
    /// # Panics
    ///
    /// If `guard` was not pinned from this map's [`collector`](Self::collector)
    /// (an unprotected guard included): the map could not then keep what it
    /// returns alive.
    #[inline]
    pub fn with_guard<'g>(&'g self, guard: &'g Guard) -> MapRef<'g, K, V, S, &'g Guard> {
        assert!(
            guard.collector() == Some(&self.collector),
            "latchfree::map: guard pinned from another collector"
        );
        MapRef { map: self, guard }
    }

    #[inline]
    fn pin_guard(&self) -> Guard {
        #[cfg(all(feature = "std", not(latchfree_loom)))]
        if self.default_collector {
            return crossbeam_epoch::pin();
        }
        self.collector.register().pin()
    }

    /// Removes every entry. Concurrent inserts may survive (each shard is
    /// cleared at one instant, shard by shard).
    pub fn clear(&self) {
        let guard = self.pin_guard();
        for s in self.shards.iter() {
            s.clear(&guard);
        }
    }
}

/// Owned or borrowed epoch guard held by a [`MapRef`].
///
/// Implemented for an owned [`Guard`] (what [`HashMap::pin`] holds) and a
/// borrowed one (what [`HashMap::with_guard`] holds); you never implement
/// it yourself.
///
/// ```
/// use latchfree::map::{AsGuard, HashMap};
///
/// let map: HashMap<u8, u8> = HashMap::new();
/// let m = map.pin();
/// m.guard().flush(); // the guard `m` holds, as any `AsGuard` exposes it
/// ```
pub trait AsGuard: sealed::Sealed {
    /// The guard.
    fn as_guard(&self) -> &Guard;
}

impl AsGuard for Guard {
    #[inline]
    fn as_guard(&self) -> &Guard {
        self
    }
}

impl AsGuard for &Guard {
    #[inline]
    fn as_guard(&self) -> &Guard {
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Guard {}
    impl Sealed for &super::Guard {}
}

/// A view of a [`HashMap`] bound to an epoch guard: the map's core API.
///
/// References it returns live as long as the `MapRef` (and so the guard):
/// the entries they point to are kept alive even if the key is removed or
/// overwritten meanwhile. A `MapRef` that owns its guard is not `Send`.
/// Drop it promptly: nothing retired while it lives is freed before.
///
/// ```
/// use latchfree::map::HashMap;
///
/// let map: HashMap<u32, String> = HashMap::new();
/// let m = map.pin();
/// m.insert(7, "seven".to_string());
/// // A reference, not a clone: valid while `m` (and its guard) lives.
/// let v: &String = m.get(&7).unwrap();
/// assert_eq!(v, "seven");
/// ```
pub struct MapRef<'m, K, V, S, G: AsGuard> {
    map: &'m HashMap<K, V, S>,
    guard: G,
}

impl<K, V, S> MapRef<'_, K, V, S, Guard> {
    /// Moves this view's own guard up to the current epoch, so that what
    /// was retired while it was pinned can be reclaimed; for a view kept
    /// across a long run of operations (a worker's loop, a handle held per
    /// thread). It costs a load and at most a store, no fence: a view
    /// repinned every few dozen operations pays for the pin about once,
    /// and holds back at most what those operations retired. `&mut self`:
    /// no reference the view returned can still be alive.
    ///
    /// If the thread holds another guard as well, nothing moves until
    /// that one is dropped too (the outermost guard decides).
    ///
    /// ```
    /// use latchfree::map::HashMap;
    ///
    /// let map: HashMap<u64, u64> = HashMap::new();
    /// let mut m = map.pin();
    /// for i in 0..1000 {
    ///     m.insert(i % 10, i);
    ///     if i % 64 == 63 {
    ///         m.repin();
    ///     }
    /// }
    /// assert_eq!(m.len(), 10);
    /// ```
    #[inline]
    pub fn repin(&mut self) {
        self.guard.repin();
    }
}

/// What a [`compute`](MapRef::compute) closure asks for.
///
/// ```
/// use latchfree::map::{HashMap, Op};
///
/// let stock: HashMap<&str, u32> = HashMap::new();
/// stock.insert("widget", 1);
/// // Take one; remove the entry when the last one goes.
/// let take = |n: Option<&u32>| match n {
///     Some(1) => Op::Remove,
///     Some(n) => Op::Put(n - 1),
///     None => Op::Keep,
/// };
/// stock.pin().compute("widget", take);
/// assert!(stock.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<V> {
    /// Store this value (insert or replace).
    Put(V),
    /// Remove the entry (nothing happens if there is none).
    Remove,
    /// Leave the map as it is.
    Keep,
}

/// What a [`compute`](MapRef::compute) did.
///
/// ```
/// use latchfree::map::{Computed, HashMap, Op};
///
/// let map: HashMap<u8, u8> = HashMap::new();
/// let m = map.pin();
/// assert_eq!(m.compute(1, |_| Op::Put(10)), Computed::Inserted(&10));
/// assert_eq!(
///     m.compute(1, |v| Op::Put(v.unwrap() + 1)),
///     Computed::Updated { old: &10, new: &11 }
/// );
/// assert_eq!(m.compute(1, |_| Op::Remove), Computed::Removed(&11));
/// assert_eq!(m.compute(1, |_| Op::Keep), Computed::Unchanged(None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed<'a, V> {
    /// The key was absent; this value was inserted.
    Inserted(&'a V),
    /// The value `old` was replaced by `new`.
    Updated {
        /// The value before.
        old: &'a V,
        /// The value stored.
        new: &'a V,
    },
    /// This value was removed.
    Removed(&'a V),
    /// Nothing changed; the current value, if any.
    Unchanged(Option<&'a V>),
}

impl<'a, V> Computed<'a, V> {
    /// The key's value after the operation (`None` if it is absent).
    pub fn value(&self) -> Option<&'a V> {
        match *self {
            Computed::Inserted(v) | Computed::Updated { new: v, .. } => Some(v),
            Computed::Removed(_) => None,
            Computed::Unchanged(v) => v,
        }
    }
}

/// [`MapRef::try_insert`] found the key present.
///
/// ```
/// use latchfree::map::HashMap;
///
/// let map: HashMap<u8, &str> = HashMap::new();
/// let m = map.pin();
/// m.insert(1, "first");
/// let err = m.try_insert(1, "second").unwrap_err();
/// assert_eq!(*err.current, "first");
/// assert_eq!(err.not_inserted, "second");
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct OccupiedError<'a, V> {
    /// The value in the map.
    pub current: &'a V,
    /// The value that was not inserted.
    pub not_inserted: V,
}

impl<V: fmt::Debug> fmt::Display for OccupiedError<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key already present with value {:?}", self.current)
    }
}

impl<V: fmt::Debug> core::error::Error for OccupiedError<'_, V> {}

/// Sort direction for the sorted snapshots.
///
/// ```
/// use latchfree::map::{HashMap, Order};
///
/// let map: HashMap<&str, u32> = [("b", 2), ("a", 1), ("c", 3)].into_iter().collect();
/// let m = map.pin();
/// let by_key: Vec<_> = m.sorted_by_key(Order::Ascending).into_iter().map(|(k, _)| k).collect();
/// assert_eq!(by_key, ["a", "b", "c"]);
/// let by_value = m.sorted_by_value(Order::Descending);
/// assert_eq!(by_value[0], ("c", 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Smallest first.
    #[default]
    Ascending,
    /// Largest first.
    Descending,
}

/// What a writer wants, given the current value.
enum Decision<V> {
    Keep,
    Put(V),
    Remove,
}

/// A writer's decision procedure. `recycle` takes back a value that was
/// prepared but not stored (the commit was stale), so a one-shot value is
/// reused by the retry instead of being lost.
trait Updater<'g, K, V> {
    fn decide(&mut self, key: &K, current: Option<&'g V>) -> Decision<V>;
    fn recycle(&mut self, _value: V) {}
}

/// The outcome of [`HashMap::modify`].
struct Outcome<'g, K, V> {
    old: Option<(&'g K, &'g V)>,
    new: Option<(&'g K, &'g V)>,
    changed: bool,
}

impl<K, V, S> HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        // Two shifts: `shift` is 63 when there is one shard, and a 64-bit
        // shift would overflow.
        let i = (hash >> self.shift >> 1) as usize;
        debug_assert!(i < self.shards.len());
        // SAFETY: `shift` is `63 - log2(shards)`, so `i` keeps the top
        // `log2(shards)` bits of the hash: below the (power-of-two) count.
        unsafe { self.shards.get_unchecked(i) }
    }

    #[inline(always)]
    fn find<'g, Q>(&self, key: &Q, guard: &'g Guard) -> Option<Found<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        find(self.shard(hash).table(guard), hash, key, guard)
    }

    /// [`find`](Self::find) for a reader: one that has to look in two
    /// tables does a share of the migration first if its key is one of the
    /// few that do ([`raw::ASSIST_KEYS`]) and the shard's lock is free (it
    /// never waits).
    #[inline(always)]
    fn lookup<'g, Q>(&self, key: &Q, guard: &'g Guard) -> Option<Found<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let shard = self.shard(hash);
        // Before it goes on to the next table (a key the assist moves is
        // then found there).
        find_noting_growth(shard.table(guard), hash, key, guard, || {
            if hash & raw::ASSIST_KEYS == 0 {
                shard.assist_migration(&self.hasher, guard);
            }
        })
    }

    /// The write path of every operation that may store a value.
    fn modify<'g, U: Updater<'g, K, V>>(
        &self,
        key: K,
        guard: &'g Guard,
        u: &mut U,
    ) -> Outcome<'g, K, V>
where {
        let hash = self.hash(&key);
        let shard = self.shard(hash);
        let mut key = Some(key);
        loop {
            let inserts = shard.inserts();
            let Some(k) = key.as_ref() else {
                unreachable!("the key is restored after every stale commit")
            };
            let found = find(shard.table(guard), hash, k, guard);
            let old = found.map(|f| (f.key, f.value));
            let plan = match u.decide(k, found.map(|f| f.value)) {
                Decision::Keep => {
                    return Outcome {
                        old,
                        new: old,
                        changed: false,
                    }
                }
                Decision::Remove if found.is_none() => {
                    return Outcome {
                        old: None,
                        new: None,
                        changed: false,
                    }
                }
                Decision::Remove => Plan::Remove,
                Decision::Put(value) => {
                    Plan::Put(key.take().unwrap_or_else(|| unreachable!()), value)
                }
            };
            let plan = match shard.commit(hash, found, inserts, plan, guard) {
                Ok(committed) => {
                    // Growth is paid for by writes, a chunk each.
                    if shard.growing(guard) {
                        shard.help_migrate(&self.hasher, guard);
                    }
                    return Outcome {
                        old,
                        new: committed.new,
                        changed: true,
                    };
                }
                Err(Stale::Changed(plan)) => plan,
                Err(Stale::Migrate(plan)) => {
                    shard.help_migrate(&self.hasher, guard);
                    plan
                }
            };
            if let Plan::Put(k, v) = plan {
                // Never stored: we own both again.
                key = Some(k);
                u.recycle(v);
            }
        }
    }

    /// The write path of removals by borrowed key.
    fn remove_where<'g, Q, F>(
        &self,
        key: &Q,
        guard: &'g Guard,
        mut pred: F,
    ) -> Option<(&'g K, &'g V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: FnMut(&K, &V) -> bool,
    {
        let hash = self.hash(key);
        let shard = self.shard(hash);
        loop {
            let found = find(shard.table(guard), hash, key, guard)?;
            if !pred(found.key, found.value) {
                return None;
            }
            if shard
                .commit(hash, Some(found), 0, Plan::Remove, guard)
                .is_ok()
            {
                return Some((found.key, found.value));
            }
        }
    }

    /// Removes the entry `found` if it is still the key's current one.
    fn remove_found<'g>(&self, found: Found<'g, K, V>, guard: &'g Guard) -> bool {
        let hash = self.hash(found.key);
        self.shard(hash)
            .commit(hash, Some(found), 0, Plan::Remove, guard)
            .is_ok()
    }
}

impl<K, V, S> HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
{
    /// A mutable reference to the value for `key`. Needs `&mut self`, so
    /// no other thread can be reading the map: the value is changed in
    /// place, without a new version or a lock.
    ///
    /// ```
    /// use latchfree::map::HashMap;
    ///
    /// let mut map: HashMap<&str, Vec<u32>> = HashMap::new();
    /// map.pin().insert("a", vec![1]);
    /// map.get_mut("a").unwrap().push(2);
    /// assert_eq!(map.pin().get("a"), Some(&vec![1, 2]));
    /// ```
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // SAFETY: `&mut self`: no reader or writer can reach the tables
        // (retired entries are dropped by the map's own writers, which need
        // `&self`), so nothing is retired while we look and the unprotected
        // guard is enough.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let f = self.find(key, guard)?;
        // SAFETY: the current value of a live entry: initialised, and (see
        // above) nobody else reads or drops it while `self` is borrowed
        // mutably, which the returned reference keeps it.
        Some(unsafe { &mut *f.value_ptr() })
    }

    /// Iterates over clones of the entries, pinning the epoch once for the
    /// whole walk; see [`PinnedIter`]. For references instead of clones,
    /// iterate a [`pin`](Self::pin)ned view: `map.pin().iter()`.
    pub fn iter(&self) -> PinnedIter<'_, K, V>
    where
        K: Clone,
        V: Clone,
    {
        PinnedIter::new(&self.shards, &self.hasher, self.pin_guard())
    }

    /// Entries the map holds before a shard grows, if they spread over the
    /// shards as evenly as they do now: the sum of what each shard has room
    /// for. May be stale under concurrency.
    ///
    /// ```
    /// use latchfree::map::HashMap;
    ///
    /// let map: HashMap<u64, u64> = HashMap::with_capacity(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    pub fn capacity(&self) -> usize {
        let guard = self.pin_guard();
        self.shards.iter().map(|s| s.capacity(&guard)).sum()
    }

    /// Makes room for `additional` more entries, spread evenly over the
    /// shards (each shard's share rounded up), so that inserting them does
    /// not grow a shard; grows now (migrating completely) where needed.
    /// Reports an allocation failure instead of aborting; shards grown
    /// before the failure stay grown.
    ///
    /// Concurrent writers keep working while it grows (they help migrate).
    /// Runs `Hash` on entries it moves.
    ///
    /// ```
    /// use latchfree::map::HashMap;
    ///
    /// let map: HashMap<u64, u64> = HashMap::new();
    /// map.try_reserve(10_000).unwrap();
    /// assert!(map.capacity() >= 10_000);
    /// assert!(map.try_reserve(usize::MAX).is_err());
    /// ```
    pub fn try_reserve(&self, additional: usize) -> Result<(), TryReserveError>
where {
        let share = additional.div_ceil(self.shards.len());
        let guard = self.pin_guard();
        for s in self.shards.iter() {
            s.rebuild(&self.hasher, &guard, |t, live| {
                let room = t.capacity().saturating_sub(t.occupied());
                if room >= share {
                    return Ok(None);
                }
                table_for(live.checked_add(share).ok_or_else(raw::overflow)?).map(Some)
            })?;
        }
        Ok(())
    }

    /// Shrinks every shard whose table is larger than its live entries
    /// need into the smallest table that holds them (also dropping the
    /// slots removed entries left behind), migrating completely. Runs
    /// `Hash` on entries it moves.
    ///
    /// ```
    /// use latchfree::map::HashMap;
    ///
    /// let map: HashMap<u64, u64> = (0..10_000).map(|i| (i, i)).collect();
    /// let big = map.capacity();
    /// map.retain(|k, _| *k < 10);
    /// map.shrink_to_fit();
    /// assert!(map.capacity() < big / 10);
    /// assert_eq!(map.len(), 10);
    /// ```
    pub fn shrink_to_fit(&self) {
        let guard = self.pin_guard();
        for s in self.shards.iter() {
            // An error can only be a refused allocation of a table smaller
            // than the one in use: keeping the bigger one loses nothing.
            let _ = s.rebuild(&self.hasher, &guard, |t, live| {
                let slots = table_for(live)?;
                Ok((slots < t.len()).then_some(slots))
            });
        }
    }
}

/// Slots of the smallest table holding `entries` below its growth
/// threshold.
fn table_for(entries: usize) -> Result<usize, TryReserveError> {
    raw::slots_for(entries).ok_or_else(raw::overflow)
}

impl<K, V, S> PartialEq for HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send + PartialEq,
    S: BuildHasher,
{
    /// Whether both maps hold the same keys with equal values. Exact when
    /// neither changes during the call; under concurrent writes it compares
    /// weakly consistent views (see [`Iter`]).
    fn eq(&self, other: &Self) -> bool {
        if core::ptr::eq(self, other) {
            return true;
        }
        let (a, b) = (self.pin(), other.pin());
        a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
    }
}

impl<K, V, S> Eq for HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send + Eq,
    S: BuildHasher,
{
}

impl<K, V, S> Clone for HashMap<K, V, S>
where
    K: Hash + Eq + Clone + Send,
    V: Clone + Send,
    S: BuildHasher + Clone,
{
    /// A map with the same shard count, hasher and collector, holding
    /// clones of the entries (a weakly consistent snapshot under concurrent
    /// writes; see [`Iter`]).
    fn clone(&self) -> Self {
        let from = self.pin();
        let map = Builder::new()
            .shards(self.shards.len())
            .capacity(self.len())
            .hasher(self.hasher.clone())
            .collector(self.collector.clone())
            .build();
        {
            let to = map.pin();
            for (k, v) in from.iter() {
                to.insert(k.clone(), v.clone());
            }
        }
        map
    }
}

impl<'m, K, V, S, G> MapRef<'m, K, V, S, G>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
    G: AsGuard,
{
    /// The guard this view is bound to.
    #[inline]
    pub fn guard(&self) -> &Guard {
        self.guard.as_guard()
    }

    /// The map.
    #[inline]
    pub fn map(&self) -> &'m HashMap<K, V, S> {
        self.map
    }

    /// The value for `key`. Lock-free; never waits for a writer.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lookup(key, self.guard()).map(|f| f.value)
    }

    /// The stored key and value for `key`.
    #[inline]
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lookup(key, self.guard()).map(|f| (f.key, f.value))
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lookup(key, self.guard()).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&self, key: K, value: V) -> Option<&V>
where {
        struct Ins<V>(Option<V>);
        impl<K, V> Updater<'_, K, V> for Ins<V> {
            fn decide(&mut self, _: &K, _: Option<&V>) -> Decision<V> {
                self.0.take().map_or(Decision::Keep, Decision::Put)
            }
            fn recycle(&mut self, v: V) {
                self.0 = Some(v);
            }
        }
        let out = self.map.modify(key, self.guard(), &mut Ins(Some(value)));
        debug_assert!(out.changed);
        out.old.map(|(_, v)| v)
    }

    /// Inserts if `key` is absent and returns the stored value; otherwise
    /// hands `value` back with the current one.
    pub fn try_insert(&self, key: K, value: V) -> Result<&V, OccupiedError<'_, V>>
where {
        struct TryIns<V>(Option<V>);
        impl<K, V> Updater<'_, K, V> for TryIns<V> {
            fn decide(&mut self, _: &K, cur: Option<&V>) -> Decision<V> {
                match (cur, self.0.take()) {
                    (None, Some(v)) => Decision::Put(v),
                    (_, v) => {
                        self.0 = v;
                        Decision::Keep
                    }
                }
            }
            fn recycle(&mut self, v: V) {
                self.0 = Some(v);
            }
        }
        let mut u = TryIns(Some(value));
        let out = self.map.modify(key, self.guard(), &mut u);
        match (out.changed, out.new, u.0) {
            (true, Some((_, e)), _) => Ok(e),
            (_, Some((_, e)), Some(v)) => Err(OccupiedError {
                current: e,
                not_inserted: v,
            }),
            _ => unreachable!("try_insert either stores or finds a value"),
        }
    }

    /// The value for `key`, inserting `make()` first if it is absent.
    /// `make` runs at most once, and only if the key was absent when
    /// looked up (if another thread inserts the key meanwhile, its value
    /// wins and the made one is dropped).
    pub fn get_or_insert_with<F: FnOnce() -> V>(&self, key: K, make: F) -> &V
where {
        if let Some(f) = self.map.find(&key, self.guard()) {
            return f.value;
        }
        struct OrIns<V, F>(Option<F>, Option<V>);
        impl<K, V, F: FnOnce() -> V> Updater<'_, K, V> for OrIns<V, F> {
            fn decide(&mut self, _: &K, cur: Option<&V>) -> Decision<V> {
                if cur.is_some() {
                    return Decision::Keep;
                }
                match self.1.take() {
                    Some(v) => Decision::Put(v),
                    None => self.0.take().map_or(Decision::Keep, |f| Decision::Put(f())),
                }
            }
            fn recycle(&mut self, v: V) {
                self.1 = Some(v);
            }
        }
        let out = self
            .map
            .modify(key, self.guard(), &mut OrIns(Some(make), None));
        match out.new {
            Some((_, v)) => v,
            None => unreachable!("get_or_insert_with always ends with a value"),
        }
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with a ready value.
    pub fn get_or_insert(&self, key: K, value: V) -> &V
where {
        self.get_or_insert_with(key, || value)
    }

    /// Replaces the value of a present key with `f(current)`, atomically
    /// per key; returns the stored value, or `None` if the key is absent.
    ///
    /// `f` runs outside any lock and **may run more than once** if another
    /// writer changes the key concurrently; only the last result is stored.
    pub fn update<F: FnMut(&V) -> V>(&self, key: K, mut f: F) -> Option<&V>
where {
        self.compute(key, |cur| cur.map_or(Op::Keep, |v| Op::Put(f(v))))
            .value()
    }

    /// Inserts `insert()` if `key` is absent, else replaces the value with
    /// `update(current)`; atomic per key; returns the stored value.
    ///
    /// Either closure may run more than once (see [`update`](Self::update)).
    pub fn upsert<I, F>(&self, key: K, mut insert: I, mut update: F) -> &V
    where
        I: FnMut() -> V,
        F: FnMut(&V) -> V,
    {
        match self.compute(key, |cur| {
            Op::Put(cur.map_or_else(&mut insert, &mut update))
        }) {
            Computed::Inserted(v) | Computed::Updated { new: v, .. } => v,
            _ => unreachable!("upsert always stores"),
        }
    }

    /// The general read-modify-write: `f` sees the current value (or
    /// `None`) and says whether to store a value, remove the entry or keep
    /// things as they are. Atomic per key: the decision is committed only
    /// if the key's entry is still the one `f` saw.
    ///
    /// `f` runs outside any lock and **may run more than once** when
    /// another writer changes the same key (or, for an absent key, inserts
    /// into the same shard) concurrently; only the last run's result takes
    /// effect. Keep side effects in `f` idempotent.
    pub fn compute<F: FnMut(Option<&V>) -> Op<V>>(&self, key: K, f: F) -> Computed<'_, V>
where {
        struct Comp<F>(F);
        impl<'g, K, V: 'g, F: FnMut(Option<&V>) -> Op<V>> Updater<'g, K, V> for Comp<F> {
            fn decide(&mut self, _: &K, cur: Option<&'g V>) -> Decision<V> {
                match (self.0)(cur) {
                    Op::Put(v) => Decision::Put(v),
                    Op::Remove => Decision::Remove,
                    Op::Keep => Decision::Keep,
                }
            }
        }
        let out = self.map.modify(key, self.guard(), &mut Comp(f));
        match (out.changed, out.old, out.new) {
            (false, _, cur) => Computed::Unchanged(cur.map(|(_, v)| v)),
            (true, None, Some((_, n))) => Computed::Inserted(n),
            (true, Some((_, o)), Some((_, n))) => Computed::Updated { old: o, new: n },
            (true, Some((_, o)), None) => Computed::Removed(o),
            (true, None, None) => Computed::Unchanged(None),
        }
    }

    /// The entry for `key`, to finish with `or_insert` and friends,
    /// optionally after [`and_modify`](Entry::and_modify): one atomic
    /// read-modify-write that holds no lock; see [`Entry`].
    pub fn entry(&self, key: K) -> Entry<'_, 'm, K, V, S, G> {
        Entry::new(self, key)
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`; returns the stored key and value.
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove_where(key, self.guard(), |_, _| true)
    }

    /// Removes `key` if `pred(key, value)` holds for its current entry,
    /// atomically; returns the removed value. `pred` runs outside any lock
    /// and may run more than once.
    pub fn remove_if<Q, F>(&self, key: &Q, pred: F) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: FnMut(&K, &V) -> bool,
    {
        self.map
            .remove_where(key, self.guard(), pred)
            .map(|(_, v)| v)
    }

    /// Keeps only the entries for which `keep(key, value)` holds.
    ///
    /// Weakly consistent, like [`iter`](Self::iter): each entry present
    /// throughout the call is tested; an entry that changes (or moves, as
    /// its shard grows) between its test and its removal is tested again,
    /// so `keep` may see one key more than once. `keep` runs outside any
    /// lock.
    pub fn retain<F: FnMut(&K, &V) -> bool>(&self, mut keep: F) {
        for mut f in self.raw_iter() {
            while !keep(f.key, f.value) {
                if self.map.remove_found(f, self.guard()) {
                    break;
                }
                match self.map.find(f.key, self.guard()) {
                    Some(now) => f = now,
                    None => break,
                }
            }
        }
    }

    /// Removes every entry; see [`HashMap::clear`].
    pub fn clear(&self) {
        for s in self.map.shards.iter() {
            s.clear(self.guard());
        }
    }

    /// Number of entries; see [`HashMap::len`].
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty; may be stale under concurrency.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterates over the entries without locking; see [`Iter`] for what it
    /// guarantees.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(&self.map.shards, &self.map.hasher, self.guard())
    }

    fn raw_iter(&self) -> iter::RawIter<'_, K, V> {
        iter::RawIter::new(&self.map.shards, &self.map.hasher, self.guard())
    }

    /// Iterates over the keys; see [`Iter`].
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys(self.iter())
    }

    /// Iterates over the values; see [`Iter`].
    pub fn values(&self) -> Values<'_, K, V> {
        Values(self.iter())
    }

    /// Clones every entry into a `Vec`, in unspecified order.
    pub fn to_vec(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        let mut v = Vec::with_capacity(self.map.len());
        v.extend(self.iter().map(|(k, v)| (k.clone(), v.clone())));
        v
    }

    /// A snapshot sorted by key in `order`.
    pub fn sorted_by_key(&self, order: Order) -> Vec<(K, V)>
    where
        K: Clone + Ord,
        V: Clone,
    {
        // Keys are unique, so an unstable sort is deterministic.
        let mut v = self.to_vec();
        match order {
            Order::Ascending => v.sort_unstable_by(|a, b| a.0.cmp(&b.0)),
            Order::Descending => v.sort_unstable_by(|a, b| b.0.cmp(&a.0)),
        }
        v
    }

    /// A snapshot sorted by value in `order`; the order of entries with
    /// equal values is unspecified (use
    /// [`sorted_by_value_stable`](Self::sorted_by_value_stable) for a
    /// deterministic one).
    pub fn sorted_by_value(&self, order: Order) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone + Ord,
    {
        let mut v = self.to_vec();
        match order {
            Order::Ascending => v.sort_unstable_by(|a, b| a.1.cmp(&b.1)),
            Order::Descending => v.sort_unstable_by(|a, b| b.1.cmp(&a.1)),
        }
        v
    }

    /// A snapshot sorted by value in `order`, entries with equal values in
    /// ascending key order (in both directions): the same map contents
    /// always give the same `Vec`.
    pub fn sorted_by_value_stable(&self, order: Order) -> Vec<(K, V)>
    where
        K: Clone + Ord,
        V: Clone + Ord,
    {
        let mut v = self.to_vec();
        match order {
            Order::Ascending => {
                v.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
            }
            Order::Descending => {
                v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)))
            }
        }
        v
    }

    /// A snapshot sorted with `compare` (a stable sort: entries `compare`
    /// calls equal keep their iteration order, which is unspecified).
    pub fn sorted_by<F>(&self, mut compare: F) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
        F: FnMut(&(K, V), &(K, V)) -> core::cmp::Ordering,
    {
        let mut v = self.to_vec();
        v.sort_by(&mut compare);
        v
    }
}

impl<K, V, S, G: AsGuard> fmt::Debug for MapRef<'_, K, V, S, G>
where
    K: Hash + Eq + Send + fmt::Debug,
    V: Send + fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V, S> fmt::Debug for HashMap<K, V, S>
where
    K: Hash + Eq + Send + fmt::Debug,
    V: Send + fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.pin(), f)
    }
}

impl<K, V, S: Default> Default for HashMap<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K, V, S> Extend<(K, V)> for HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<K, V, S> Extend<(K, V)> for &HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let m = self.pin();
        for (k, v) in iter {
            m.insert(k, v);
        }
    }
}

impl<K, V, S> FromIterator<(K, V)> for HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher + Default,
{
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let map = Builder::new()
            .capacity(iter.size_hint().0)
            .hasher(S::default())
            .build();
        (&map).extend(iter);
        map
    }
}

#[cfg(test)]
mod tests;
