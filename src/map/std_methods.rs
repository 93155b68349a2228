//! Self-pinning convenience methods (`std` only: they pin the epoch through
//! a thread-local handle) returning owned values.

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use super::{HashMap, Op, Order};

impl<K, V, S> HashMap<K, V, S>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
{
    /// A clone of the value for `key`. Lock-free; never waits for a writer.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.pin().get(key).cloned()
    }

    /// Runs `f` on the value for `key` without cloning it; the reference
    /// cannot escape `f`. Lock-free.
    #[inline]
    pub fn get_with<Q, R, F>(&self, key: &Q, f: F) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: FnOnce(&V) -> R,
    {
        self.pin().get(key).map(f)
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.pin().contains_key(key)
    }

    /// Inserts or replaces; returns a clone of the previous value.
    #[inline]
    pub fn insert(&self, key: K, value: V) -> Option<V>
    where
        V: Clone,
    {
        self.pin().insert(key, value).cloned()
    }

    /// Inserts if absent; otherwise gives `value` back.
    pub fn try_insert(&self, key: K, value: V) -> Result<(), V>
    where
        V: Clone,
    {
        self.pin()
            .try_insert(key, value)
            .map(|_| ())
            .map_err(|e| e.not_inserted)
    }

    /// A clone of the value for `key`, inserting `make()` first if absent
    /// (`make` runs at most once).
    pub fn get_or_insert_with<F: FnOnce() -> V>(&self, key: K, make: F) -> V
    where
        V: Clone,
    {
        self.pin().get_or_insert_with(key, make).clone()
    }

    /// Removes `key`; returns a clone of its value.
    #[inline]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.pin().remove(key).cloned()
    }

    /// Removes `key` if `pred` holds for its entry; see
    /// [`MapRef::remove_if`](super::MapRef::remove_if).
    pub fn remove_if<Q, F>(&self, key: &Q, pred: F) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
        F: FnMut(&K, &V) -> bool,
    {
        self.pin().remove_if(key, pred).cloned()
    }

    /// See [`MapRef::update`](super::MapRef::update); `f` may run more than
    /// once. Returns a clone of the stored value.
    pub fn update<F: FnMut(&V) -> V>(&self, key: K, f: F) -> Option<V>
    where
        V: Clone,
    {
        self.pin().update(key, f).cloned()
    }

    /// See [`MapRef::upsert`](super::MapRef::upsert); the closures may run
    /// more than once. Returns a clone of the stored value.
    pub fn upsert<I, F>(&self, key: K, insert: I, update: F) -> V
    where
        V: Clone,
        I: FnMut() -> V,
        F: FnMut(&V) -> V,
    {
        self.pin().upsert(key, insert, update).clone()
    }

    /// See [`MapRef::compute`](super::MapRef::compute); `f` may run more
    /// than once. Returns a clone of the key's value afterwards.
    pub fn compute<F: FnMut(Option<&V>) -> Op<V>>(&self, key: K, f: F) -> Option<V>
    where
        V: Clone,
    {
        self.pin().compute(key, f).value().cloned()
    }

    /// See [`MapRef::retain`](super::MapRef::retain).
    pub fn retain<F: FnMut(&K, &V) -> bool>(&self, keep: F) {
        self.pin().retain(keep);
    }

    /// Calls `f` on every entry; weakly consistent, see
    /// [`Iter`](super::Iter).
    pub fn for_each<F: FnMut(&K, &V)>(&self, mut f: F) {
        for (k, v) in self.pin().iter() {
            f(k, v);
        }
    }

    /// Clones of the keys (weakly consistent snapshot).
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        self.pin().keys().cloned().collect()
    }

    /// Clones of the values (weakly consistent snapshot).
    pub fn values(&self) -> Vec<V>
    where
        V: Clone,
    {
        self.pin().values().cloned().collect()
    }

    /// Clones of the entries (weakly consistent snapshot).
    pub fn to_vec(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.pin().to_vec()
    }

    /// See [`MapRef::sorted_by_key`](super::MapRef::sorted_by_key).
    pub fn sorted_by_key(&self, order: Order) -> Vec<(K, V)>
    where
        K: Clone + Ord,
        V: Clone,
    {
        self.pin().sorted_by_key(order)
    }

    /// See [`MapRef::sorted_by_value`](super::MapRef::sorted_by_value).
    pub fn sorted_by_value(&self, order: Order) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone + Ord,
    {
        self.pin().sorted_by_value(order)
    }

    /// See [`MapRef::sorted_by_value_stable`](super::MapRef::sorted_by_value_stable).
    pub fn sorted_by_value_stable(&self, order: Order) -> Vec<(K, V)>
    where
        K: Clone + Ord,
        V: Clone + Ord,
    {
        self.pin().sorted_by_value_stable(order)
    }
}
