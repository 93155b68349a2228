//! The entry-shaped API: `entry(key).and_modify(..).or_insert(..)`,
//! evaluated as one atomic read-modify-write when it is finished. An
//! [`Entry`] holds the key and the closures, never a lock or a slot: it is
//! sugar over the same write path as [`MapRef::compute`].

use core::fmt;
use core::hash::{BuildHasher, Hash};

use crossbeam_epoch::Guard;

use super::{AsGuard, Decision, MapRef, Updater};

/// A key of a [`MapRef`] and what to do with its entry, from
/// [`MapRef::entry`]. Nothing happens until a finishing method
/// (`or_insert`, `or_insert_with`, `or_insert_with_key`, `or_default`)
/// runs; that one call is atomic per key, like
/// [`compute`](MapRef::compute): if the key is present, the
/// [`and_modify`](Self::and_modify) closure (if any) replaces its value,
/// otherwise the new value is inserted.
///
/// Unlike `std`'s entry, it holds no lock and no reference into the map,
/// so it can neither deadlock nor block readers. The price: the modify
/// closure sees `&V` and returns the new value, and it **may run more than
/// once** when another writer changes the key concurrently (only the last
/// result is stored). The insert closure runs at most once.
///
/// ```
/// use latchfree::map::HashMap;
///
/// let words: HashMap<&str, u32> = HashMap::new();
/// let m = words.pin();
/// for w in ["a", "b", "a"] {
///     m.entry(w).and_modify(|n| n + 1).or_insert(1);
/// }
/// assert_eq!(m.get("a"), Some(&2));
/// assert_eq!(m.get("b"), Some(&1));
/// assert_eq!(*m.entry("c").or_default(), 0);
/// ```
pub struct Entry<'r, 'm, K, V, S, G: AsGuard, F = fn(&V) -> V> {
    map: &'r MapRef<'m, K, V, S, G>,
    key: K,
    modify: Option<F>,
}

impl<'r, 'm, K, V, S, G: AsGuard> Entry<'r, 'm, K, V, S, G> {
    pub(super) fn new(map: &'r MapRef<'m, K, V, S, G>, key: K) -> Self {
        Self {
            map,
            key,
            modify: None,
        }
    }
}

impl<'r, 'm, K, V, S, G, F> Entry<'r, 'm, K, V, S, G, F>
where
    K: Hash + Eq + Send,
    V: Send,
    S: BuildHasher,
    G: AsGuard,
    F: FnMut(&V) -> V,
{
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// If the key turns out present, replace its value with `f(current)`
    /// (`f` may run more than once; see the type docs). Replaces an
    /// earlier `and_modify`.
    pub fn and_modify<F2: FnMut(&V) -> V>(self, f: F2) -> Entry<'r, 'm, K, V, S, G, F2> {
        Entry {
            map: self.map,
            key: self.key,
            modify: Some(f),
        }
    }

    /// Inserts `value` if the key is absent (else modifies, if asked);
    /// returns the value stored afterwards.
    pub fn or_insert(self, value: V) -> &'r V
where {
        self.finish(|_| value)
    }

    /// Inserts `make()` if the key is absent (else modifies, if asked);
    /// returns the value stored afterwards. `make` runs at most once.
    pub fn or_insert_with<I: FnOnce() -> V>(self, make: I) -> &'r V
where {
        self.finish(|_| make())
    }

    /// Inserts `make(&key)` if the key is absent (else modifies, if
    /// asked); returns the value stored afterwards. `make` runs at most
    /// once.
    pub fn or_insert_with_key<I: FnOnce(&K) -> V>(self, make: I) -> &'r V
where {
        self.finish(make)
    }

    /// Inserts `V::default()` if the key is absent (else modifies, if
    /// asked); returns the value stored afterwards.
    pub fn or_default(self) -> &'r V
    where
        V: Default,
    {
        self.finish(|_| V::default())
    }

    fn finish<I: FnOnce(&K) -> V>(self, make: I) -> &'r V
where {
        /// Decides for one entry: modify if present, insert if absent. A
        /// made value whose commit went stale is kept for the retry (the
        /// maker is `FnOnce`); a modified one is not (it was computed from
        /// a value that is gone).
        struct Upd<V, I, F> {
            make: Option<I>,
            made: Option<V>,
            modify: Option<F>,
            inserting: bool,
        }
        impl<'g, K, V: 'g, I, F> Updater<'g, K, V> for Upd<V, I, F>
        where
            I: FnOnce(&K) -> V,
            F: FnMut(&V) -> V,
        {
            fn decide(&mut self, key: &K, cur: Option<&'g V>) -> Decision<V> {
                self.inserting = cur.is_none();
                match cur {
                    Some(v) => self
                        .modify
                        .as_mut()
                        .map_or(Decision::Keep, |f| Decision::Put(f(v))),
                    None => match (self.made.take(), self.make.take()) {
                        (Some(v), _) => Decision::Put(v),
                        (None, Some(make)) => Decision::Put(make(key)),
                        (None, None) => unreachable!("a made value is kept for the retry"),
                    },
                }
            }
            fn recycle(&mut self, v: V) {
                if self.inserting {
                    self.made = Some(v);
                }
            }
        }
        let mut u = Upd {
            make: Some(make),
            made: None,
            modify: self.modify,
            inserting: false,
        };
        let guard: &'r Guard = self.map.guard();
        match self.map.map.modify(self.key, guard, &mut u).new {
            Some((_, v)) => v,
            None => unreachable!("an entry always ends with a value"),
        }
    }
}

impl<K: fmt::Debug, V, S, G: AsGuard, F> fmt::Debug for Entry<'_, '_, K, V, S, G, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("and_modify", &self.modify.is_some())
            .finish()
    }
}
