//! A concurrent hash set: a [`HashMap`] with `()` values, so it has the
//! map's guarantees (lock-free reads that never wait, per-shard writer
//! commits, incremental growth) and costs nothing for the values.

use alloc::collections::TryReserveError;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crossbeam_epoch::{Collector, Guard};

use super::{AsGuard, Builder, DefaultHashBuilder, HashMap, Keys, MapRef};

/// A concurrent hash set whose readers never block: a [`HashMap<T, ()>`]
/// (see its docs for the design and the consistency of `len` and
/// iteration).
///
/// ```
/// use latchfree::map::HashSet;
///
/// let seen: HashSet<u64> = HashSet::new();
/// let s = seen.pin();
/// assert!(s.insert(7));
/// assert!(!s.insert(7));
/// assert!(s.contains(&7));
/// assert!(s.remove(&7));
/// assert!(s.is_empty());
/// ```
pub struct HashSet<T, S = DefaultHashBuilder> {
    map: HashMap<T, (), S>,
}

impl<T> HashSet<T, DefaultHashBuilder> {
    /// An empty set with the default hasher and shard count.
    pub fn new() -> Self {
        Self::from_map(HashMap::new())
    }

    /// An empty set with room for `capacity` elements.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::from_map(HashMap::with_capacity(capacity))
    }
}

impl<T, S> HashSet<T, S> {
    /// An empty set using `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::from_map(HashMap::with_hasher(hasher))
    }

    /// An empty set with room for `capacity` elements, using `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self::from_map(HashMap::with_capacity_and_hasher(capacity, hasher))
    }

    /// The set over a map built with every knob:
    /// `HashSet::from_map(HashMap::builder().shards(8).build())`.
    pub fn from_map(map: HashMap<T, (), S>) -> Self {
        Self { map }
    }

    /// Number of shards (a power of two).
    pub fn shards(&self) -> usize {
        self.map.shards()
    }

    /// The set's hasher.
    pub fn hasher(&self) -> &S {
        self.map.hasher()
    }

    /// The epoch collector guarding this set; see [`HashMap::collector`].
    pub fn collector(&self) -> &Collector {
        self.map.collector()
    }

    /// Number of elements; see [`HashMap::len`].
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty; may be stale under concurrency.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Pins the epoch and returns a view of the set bound to that guard;
    /// see [`HashMap::pin`].
    #[inline]
    pub fn pin(&self) -> SetRef<'_, T, S, Guard> {
        SetRef {
            map: self.map.pin(),
        }
    }

    /// A view of the set bound to `guard`; see [`HashMap::with_guard`].
    ///
    /// # Panics
    ///
    /// If `guard` was not pinned from this set's collector.
    #[inline]
    pub fn with_guard<'g>(&'g self, guard: &'g Guard) -> SetRef<'g, T, S, &'g Guard> {
        SetRef {
            map: self.map.with_guard(guard),
        }
    }

    /// Removes every element; see [`HashMap::clear`].
    pub fn clear(&self) {
        self.map.clear();
    }
}

impl<T, S> HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
{
    /// Elements the set holds before a shard grows; see
    /// [`HashMap::capacity`].
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Makes room for `additional` more elements; see
    /// [`HashMap::try_reserve`].
    pub fn try_reserve(&self, additional: usize) -> Result<(), TryReserveError>
where {
        self.map.try_reserve(additional)
    }

    /// Shrinks the tables to what the elements need; see
    /// [`HashMap::shrink_to_fit`].
    pub fn shrink_to_fit(&self) {
        self.map.shrink_to_fit();
    }

    /// Iterates over clones of the elements, pinning once; see
    /// [`HashMap::iter`].
    pub fn iter(&self) -> impl Iterator<Item = T> + '_
    where
        T: Clone,
    {
        self.map.iter().map(|(t, ())| t)
    }
}

/// A view of a [`HashSet`] bound to an epoch guard, like [`MapRef`] for
/// the map: references it returns live as long as the view.
pub struct SetRef<'m, T, S, G: AsGuard> {
    map: MapRef<'m, T, (), S, G>,
}

impl<'m, T, S, G> SetRef<'m, T, S, G>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
    G: AsGuard,
{
    /// The guard this view is bound to.
    pub fn guard(&self) -> &Guard {
        self.map.guard()
    }

    /// Adds `value`; `false` if it was present already (the set keeps the
    /// element it had and drops `value`).
    pub fn insert(&self, value: T) -> bool
where {
        self.map.try_insert(value, ()).is_ok()
    }

    /// Whether `value` is in the set. Lock-free; never waits.
    #[inline]
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(value)
    }

    /// The stored element equal to `value`.
    #[inline]
    pub fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(value).map(|(k, ())| k)
    }

    /// Removes `value`; whether it was present.
    pub fn remove<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(value).is_some()
    }

    /// Removes `value` and returns the element the set held.
    pub fn take<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove_entry(value).map(|(k, ())| k)
    }

    /// Keeps only the elements for which `keep` holds; see
    /// [`MapRef::retain`].
    pub fn retain<F: FnMut(&T) -> bool>(&self, mut keep: F) {
        self.map.retain(|k, ()| keep(k));
    }

    /// Removes every element; see [`HashMap::clear`].
    pub fn clear(&self) {
        self.map.clear();
    }

    /// Number of elements; see [`HashMap::len`].
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty; may be stale under concurrency.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterates over the elements without locking; weakly consistent, see
    /// [`Iter`](super::Iter).
    pub fn iter(&self) -> Keys<'_, T, ()> {
        self.map.keys()
    }
}

impl<T, S, G> fmt::Debug for SetRef<'_, T, S, G>
where
    T: Hash + Eq + Send + fmt::Debug,
    S: BuildHasher,
    G: AsGuard,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T, S> fmt::Debug for HashSet<T, S>
where
    T: Hash + Eq + Send + fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.pin(), f)
    }
}

impl<T, S> PartialEq for HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
{
    /// Whether both sets hold the same elements; see
    /// [`HashMap`'s `eq`](HashMap#impl-PartialEq-for-HashMap<K,+V,+S>).
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<T, S> Eq for HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
{
}

impl<T, S> Clone for HashSet<T, S>
where
    T: Hash + Eq + Clone + Send,
    S: BuildHasher + Clone,
{
    fn clone(&self) -> Self {
        Self::from_map(self.map.clone())
    }
}

impl<T, S: Default> Default for HashSet<T, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<T, S> Extend<T> for &HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let s = self.pin();
        for t in iter {
            s.insert(t);
        }
    }
}

impl<T, S> Extend<T> for HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<T, S> FromIterator<T> for HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher + Default,
{
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let set = Self::from_map(
            Builder::new()
                .capacity(iter.size_hint().0)
                .hasher(S::default())
                .build(),
        );
        (&set).extend(iter);
        set
    }
}
