//! A keyed GCRA limiter on the crate's map.
//!
//! Each key owns one `tat` word behind an `Arc` (the map's values are
//! snapshots that growth may clone, so shared mutable state lives behind a
//! pointer every copy shares). Admission is [`Gcra`](super::Gcra)'s step on
//! that word.
//!
//! **Expiry.** A key whose `tat` is at or before `now` has an empty
//! schedule, exactly like a key never seen: removing it changes no future
//! decision. [`Keyed::sweep_at`] removes such keys, so memory is bounded by
//! the keys admitted within the last burst period. The race to get right:
//! a caller that looked the key up just before the sweep removed it must
//! not keep admitting on the orphaned word while a new word for the same
//! key starts over (that would hand out a second burst). So the sweep
//! first *retires* the word, swapping the idle `tat` for the `RETIRED`
//! marker with a compare-and-swap (which fails if an admission moved it
//! first), and only then removes the entry; an admitter that finds
//! `RETIRED` helps remove it and looks again. A retired word admits
//! nothing, ever, and a word is retired only while idle, so no admission is
//! lost or doubled.

use alloc::sync::Arc;
use core::hash::{BuildHasher, Hash};

use super::gcra::acquire_on;
use super::{Quota, TryAcquireError};
use crate::map::{Builder, DefaultHashBuilder, HashMap};
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Marks a word the sweep has taken out of service.
const RETIRED: u64 = u64::MAX;

/// One GCRA schedule per key (per client, per account), in a
/// [`map::HashMap`](crate::map::HashMap); idle keys are removed by
/// [`sweep_at`](Keyed::sweep_at).
///
/// ```
/// use latchfree::limiter::{Keyed, Quota};
///
/// let per_account = Keyed::new(Quota::with_period(1_000).allow_burst(2));
/// assert!(per_account.try_acquire_at(&"alice", 2, 0).is_ok());
/// assert!(per_account.try_acquire_at(&"alice", 1, 0).is_err());
/// assert!(per_account.try_acquire_at(&"bob", 1, 0).is_ok()); // own quota
/// assert_eq!(per_account.len(), 2);
/// assert_eq!(per_account.sweep_at(10_000), 2); // both idle again
/// assert!(per_account.is_empty());
/// ```
pub struct Keyed<K, S = DefaultHashBuilder> {
    map: HashMap<K, Arc<AtomicU64>, S>,
    quota: Quota,
}

impl<K, S> core::fmt::Debug for Keyed<K, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keyed")
            .field("quota", &self.quota)
            .field("keys", &self.map.len())
            .finish()
    }
}

impl<K> Keyed<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// An empty keyed limiter; every key gets `quota`.
    pub fn new(quota: Quota) -> Keyed<K> {
        Keyed {
            map: HashMap::new(),
            quota,
        }
    }

    /// The same with `shards` map shards (rounded up to a power of two;
    /// `0` chooses): fewer for a handful of keys, more for many writers.
    pub fn with_shards(quota: Quota, shards: usize) -> Keyed<K> {
        Keyed {
            map: HashMap::with_shards(shards),
            quota,
        }
    }
}

impl<K, S> Keyed<K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The same on a map built by `builder` (shards, capacity, hasher
    /// seeds: see [`map::Builder`](crate::map::Builder)).
    pub fn with_map_builder(quota: Quota, builder: Builder<S>) -> Keyed<K, S> {
        Keyed {
            map: builder.build(),
            quota,
        }
    }

    /// Admits `n` cells for `key` at `now`, or says when they will be
    /// available. The first use of a key inserts it.
    pub fn try_acquire_at(&self, key: &K, n: u32, now: u64) -> Result<(), TryAcquireError> {
        let map = self.map.pin();
        loop {
            let word = match map.get(key) {
                Some(w) => w,
                None => map.get_or_insert_with(key.clone(), || Arc::new(AtomicU64::new(0))),
            };
            if word.load(Relaxed) == RETIRED {
                // The sweep retired it and may not have removed it yet:
                // help, then look again for the fresh word.
                map.remove_if(key, |_, w| w.load(Relaxed) == RETIRED);
                crate::sync::spin_loop();
                continue;
            }
            return match acquire_on(word, &self.quota, n, now) {
                // The admission CAS cannot succeed on a retired word (its
                // expected value was not RETIRED), so a success counts.
                Ok(()) => Ok(()),
                Err(e) => {
                    if word.load(Relaxed) == RETIRED {
                        continue;
                    }
                    Err(e)
                }
            };
        }
    }

    /// Removes every key whose schedule is empty at `now` (it would be
    /// admitted exactly like a fresh key); returns how many were removed.
    /// Run it from a timer (every burst period or so) to bound memory.
    pub fn sweep_at(&self, now: u64) -> usize {
        let map = self.map.pin();
        let mut removed = 0;
        map.retain(|_, word| {
            let tat = word.load(Relaxed);
            if tat == RETIRED {
                return false;
            }
            // Retire only if still idle: fails if an admission moved it.
            if tat <= now
                && word
                    .compare_exchange(tat, RETIRED, Relaxed, Relaxed)
                    .is_ok()
            {
                removed += 1;
                return false;
            }
            true
        });
        removed
    }

    /// Keys tracked (may be stale under concurrency).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is tracked (may be stale under concurrency).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The per-key quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }
}
