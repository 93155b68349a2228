//! `serde` support: a map serialises as a map (a weakly consistent
//! snapshot when written concurrently) and deserialises from one.

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Builder, HashMap};

impl<K, V, S> Serialize for HashMap<K, V, S>
where
    K: Hash + Eq + Send + Serialize,
    V: Send + Serialize,
    S: BuildHasher,
{
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let m = self.pin();
        serializer.collect_map(m.iter())
    }
}

impl<'de, K, V, S> Deserialize<'de> for HashMap<K, V, S>
where
    K: Hash + Eq + Send + Deserialize<'de>,
    V: Send + Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

type MakesMap<K, V, S> = fn() -> HashMap<K, V, S>;

struct MapVisitor<K, V, S>(PhantomData<MakesMap<K, V, S>>);

impl<'de, K, V, S> Visitor<'de> for MapVisitor<K, V, S>
where
    K: Hash + Eq + Send + Deserialize<'de>,
    V: Send + Deserialize<'de>,
    S: BuildHasher + Default,
{
    type Value = HashMap<K, V, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let map: HashMap<K, V, S> = Builder::new()
            .capacity(access.size_hint().unwrap_or(0))
            .hasher(S::default())
            .build();
        {
            let m = map.pin();
            while let Some((k, v)) = access.next_entry()? {
                m.insert(k, v);
            }
        }
        Ok(map)
    }
}
