//! The set's self-pinning methods (`std` only, like the map's in
//! `std_methods.rs`: they pin through a thread-local handle).

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use super::HashSet;

impl<T, S> HashSet<T, S>
where
    T: Hash + Eq + Send,
    S: BuildHasher,
{
    /// Adds `value`; `false` if it was present already.
    pub fn insert(&self, value: T) -> bool
where {
        self.pin().insert(value)
    }

    /// Whether `value` is in the set. Lock-free; never waits.
    #[inline]
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.pin().contains(value)
    }

    /// Removes `value`; whether it was present.
    pub fn remove<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.pin().remove(value)
    }

    /// Keeps only the elements for which `keep` holds.
    pub fn retain<F: FnMut(&T) -> bool>(&self, keep: F) {
        self.pin().retain(keep);
    }
}
