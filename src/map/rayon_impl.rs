//! `rayon` support (`std` only): parallel iteration over a snapshot, and
//! parallel extension and collection.

use alloc::vec::Vec;
use core::hash::{BuildHasher, Hash};

use rayon::iter::{FromParallelIterator, IntoParallelIterator, ParallelExtend, ParallelIterator};

use super::HashMap;

impl<K, V, S> HashMap<K, V, S>
where
    K: Hash + Eq + Send + Sync + Clone,
    V: Send + Sync + Clone,
    S: BuildHasher,
{
    /// A parallel iterator over a weakly consistent snapshot (clones) of the
    /// entries; see [`Iter`](super::Iter).
    pub fn par_iter(&self) -> rayon::vec::IntoIter<(K, V)> {
        self.into_par_iter()
    }
}

impl<K, V, S> IntoParallelIterator for &HashMap<K, V, S>
where
    K: Hash + Eq + Send + Sync + Clone,
    V: Send + Sync + Clone,
    S: BuildHasher,
{
    type Iter = rayon::vec::IntoIter<(K, V)>;
    type Item = (K, V);

    fn into_par_iter(self) -> Self::Iter {
        let v: Vec<(K, V)> = self.pin().to_vec();
        v.into_par_iter()
    }
}

impl<K, V, S> ParallelExtend<(K, V)> for &HashMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Sync,
{
    fn par_extend<I: IntoParallelIterator<Item = (K, V)>>(&mut self, iter: I) {
        let map: &HashMap<K, V, S> = self;
        iter.into_par_iter().for_each(|(k, v)| {
            map.pin().insert(k, v);
        });
    }
}

impl<K, V, S> ParallelExtend<(K, V)> for HashMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Sync,
{
    fn par_extend<I: IntoParallelIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).par_extend(iter);
    }
}

impl<K, V, S> FromParallelIterator<(K, V)> for HashMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Default + Sync,
{
    fn from_par_iter<I: IntoParallelIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = HashMap::with_hasher(S::default());
        map.par_extend(iter);
        map
    }
}
