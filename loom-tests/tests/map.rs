#![cfg(latchfree_loom)]
//! Loom models of `latchfree::map`.
//!
//! Run (crossbeam-epoch must be built with its loom support too):
//! `cd loom-tests && RUSTFLAGS="--cfg latchfree_loom --cfg crossbeam_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test map`

use std::hash::{BuildHasher, Hash, Hasher};

use latchfree::map::{DefaultHashBuilder, HashMap, Op};
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// One shard, the smallest table (eight slots on 64-bit targets, four on
/// 32-bit ones): growth starts when it is 3/4 full and migrates one slot
/// per write under loom. Fixed hash seeds: a model must
/// be deterministic.
fn tiny<V>() -> HashMap<u32, V> {
    HashMap::builder()
        .shards(1)
        .hasher(DefaultHashBuilder::with_seeds([1, 2, 3, 4]))
        .build()
}

/// `loom::model` with room for longer executions: a lookup that looks in
/// two tables also moves a migration chunk (a try-lock and a few slot
/// stores), which takes a growth model past loom's default of 1000
/// branches per execution.
fn model_long<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    b.max_branches = 10_000;
    b.check(f);
}

/// Keys that fill the smallest table to its growth threshold: one group,
/// 7 usable slots of 8 on 64-bit targets (3 of 4 on 32-bit ones), 3/4 of
/// them.
const FILL: u32 = if cfg!(target_pointer_width = "64") {
    5
} else {
    2
};

/// Slot indices per group (the last one is a sentinel).
const GROUP: u64 = if cfg!(target_pointer_width = "64") {
    8
} else {
    4
};

/// A tiny map holding keys `0..FILL` (value `k + 100`): one insert short
/// of growth.
fn filled() -> HashMap<u32, u32> {
    let map = tiny();
    {
        let m = map.pin();
        for k in 0..FILL {
            m.insert(k, k + 100);
        }
    }
    map
}

#[test]
fn insert_get_remove_one_key() {
    loom::model(|| {
        let map = Arc::new(tiny::<u32>());
        let m1 = map.clone();
        let t1 = thread::spawn(move || {
            let m = m1.pin();
            let old = m.insert(1, 10).copied();
            let seen = m.get(&1).copied();
            (old, seen)
        });
        let m = map.pin();
        let removed = m.remove(&1).copied();
        let (old, seen) = t1.join().unwrap();
        assert_eq!(old, None);
        // The reader saw the insert or (after it) the remove; never junk.
        assert!(seen.is_none() || seen == Some(10));
        let now = m.get(&1).copied();
        match removed {
            // The remove ran after the insert: the key is gone, and the
            // inserting thread's own read came before the remove or not.
            Some(v) => {
                assert_eq!(v, 10);
                assert_eq!(now, None);
            }
            // The remove ran first and found nothing; the insert stands
            // and its thread read it back.
            None => {
                assert_eq!(now, Some(10));
                assert_eq!(seen, Some(10));
            }
        }
        assert_eq!(m.len(), usize::from(now.is_some()));
    });
}

#[test]
fn reader_during_growth() {
    model_long(|| {
        let map = Arc::new(filled());
        let w = map.clone();
        let writer = thread::spawn(move || {
            let m = w.pin();
            // The first insert starts growth and moves a slot, the
            // replacement moves its key on to the next table and another
            // slot.
            m.insert(FILL, FILL + 100);
            m.insert(0, 200);
        });
        let m = map.pin();
        // A key the writer does not touch, then the one it replaces: each
        // lookup that looks in both tables may also move a chunk, so the
        // reader is kept short for the model to finish.
        assert_eq!(m.get(&1), Some(&101), "key 1 vanished mid-growth");
        let v0 = *m.get(&0).unwrap();
        assert!(v0 == 100 || v0 == 200);
        drop(m);
        writer.join().unwrap();
        let m = map.pin();
        for k in 0..=FILL {
            let want = if k == 0 { 200 } else { k + 100 };
            assert_eq!(m.get(&k), Some(&want));
        }
        assert_eq!(m.len(), FILL as usize + 1);
        assert_eq!(m.iter().count(), FILL as usize + 1);
    });
}

/// Sets its flag when dropped.
struct Flagged(Arc<AtomicUsize>);

impl Drop for Flagged {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn removed_value_outlives_reader_guard() {
    loom::model(|| {
        let map = Arc::new(tiny::<Flagged>());
        let drops = Arc::new(AtomicUsize::new(0));
        map.pin().insert(1, Flagged(drops.clone()));
        let w = map.clone();
        let writer = thread::spawn(move || {
            let m = w.pin();
            assert!(m.remove(&1).is_some());
            drop(m);
            // Give reclamation every chance to run.
            for _ in 0..2 {
                w.pin().guard().flush();
            }
        });
        {
            let m = map.pin();
            if let Some(v) = m.get(&1) {
                // Our guard keeps the removed value alive.
                thread::yield_now();
                assert_eq!(v.0.load(SeqCst), 0, "value dropped under a reader");
            }
        }
        writer.join().unwrap();
        drop(map);
        // The map's collector is gone: the value was dropped exactly once.
        assert_eq!(drops.load(SeqCst), 1);
    });
}

#[test]
fn compute_from_two_threads_loses_no_update() {
    loom::model(|| {
        let map = Arc::new(tiny::<u32>());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let m = map.clone();
                thread::spawn(move || {
                    m.pin().compute(7, |v| Op::Put(v.map_or(1, |x| x + 1)));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(map.pin().get(&7), Some(&2));
    });
}

#[test]
fn replaced_values_are_read_whole_and_in_order() {
    loom::model(|| {
        let map = Arc::new(tiny::<u64>());
        map.pin().insert(1, 10);
        let w = map.clone();
        let writer = thread::spawn(move || {
            let m = w.pin();
            // Each replacement publishes a new node by one pointer store.
            assert_eq!(m.insert(1, 20), Some(&10));
            assert_eq!(m.insert(1, 30), Some(&20));
        });
        let m = map.pin();
        let a = *m.get(&1).unwrap();
        let b = *m.get(&1).unwrap();
        assert!([10, 20, 30].contains(&a) && [10, 20, 30].contains(&b));
        assert!(b >= a, "a read went back in time: {a} then {b}");
        drop(m);
        writer.join().unwrap();
        assert_eq!(map.pin().get(&1), Some(&30));
        assert_eq!(map.len(), 1);
    });
}

/// Two keys the tiny map files under the same home slot and the same tag:
/// the second's probe takes the first's slot once that is removed, and a
/// lookup of either matches the other's control byte.
fn same_slot_pair() -> (u32, u32) {
    let h = DefaultHashBuilder::with_seeds([1, 2, 3, 4]);
    let slot = |k: u32| {
        let x = h.hash_one(k);
        (x & (GROUP - 1), (x >> 32) & 31)
    };
    let a = 1;
    let b = (2..)
        .find(|&k| slot(k) == slot(a))
        .expect("some key shares the slot");
    (a, b)
}

/// Slot reuse (`src/map/raw.rs`, "Ground rules"): a removed entry's slot
/// goes back to `FULL` for the next key whose probe reaches it, its new
/// pointer stored before its control byte. A reader racing the removal
/// and the reuse (which may load the slot's pointer after seeing the byte
/// `FULL` for the removed key) reads the removed key's value or nothing,
/// and the new key's value or nothing: never one for the other.
#[test]
fn a_removed_slot_is_reused_and_never_read_for_the_wrong_key() {
    let (a, b) = same_slot_pair();
    loom::model(move || {
        let map = Arc::new(tiny::<u32>());
        let room = map.capacity();
        map.pin().insert(a, 1);
        let w = map.clone();
        let writer = thread::spawn(move || {
            let m = w.pin();
            assert_eq!(m.remove(&a), Some(&1));
            assert_eq!(m.insert(b, 2), None);
        });
        let m = map.pin();
        let x = m.get(&a).copied();
        let y = m.get(&b).copied();
        assert!(x.is_none() || x == Some(1), "{a} read as {x:?}");
        assert!(y.is_none() || y == Some(2), "{b} read as {y:?}");
        drop(m);
        writer.join().unwrap();
        let m = map.pin();
        assert_eq!(m.get(&a), None);
        assert_eq!(m.get(&b), Some(&2));
        assert_eq!(m.len(), 1);
        // The new key took the removed slot: no room was used up.
        assert_eq!(map.capacity(), room);
    });
}

/// A key with the same home slot as `a` in the tiny map (any tag), other
/// than `a` and `b`.
fn same_home(a: u32, b: u32) -> u32 {
    let h = DefaultHashBuilder::with_seeds([1, 2, 3, 4]);
    let home = |k: u32| h.hash_one(k) & (GROUP - 1);
    (2..)
        .find(|&k| k != b && home(k) == home(a))
        .expect("some key shares the home")
}

/// Removal in the middle of a run (`src/map/raw.rs`, "Ground rules"): `a`
/// sits at its home and `c` just after it, so removing `a` leaves a
/// `DELETED` slot (an `EMPTY` one would cut `c`'s probe short), which `b`
/// then reuses. A reader of `c`, present throughout, finds it every time.
#[test]
fn a_key_after_a_removed_slot_is_always_found() {
    let (a, b) = same_slot_pair();
    let c = same_home(a, b);
    loom::model(move || {
        let map = Arc::new(tiny::<u32>());
        {
            let m = map.pin();
            m.insert(a, 1);
            m.insert(c, 3);
        }
        let w = map.clone();
        let writer = thread::spawn(move || {
            let m = w.pin();
            assert_eq!(m.remove(&a), Some(&1));
            assert_eq!(m.insert(b, 2), None);
        });
        let m = map.pin();
        assert_eq!(m.get(&c), Some(&3));
        assert_eq!(m.get(&c), Some(&3));
        drop(m);
        writer.join().unwrap();
        let m = map.pin();
        assert_eq!(m.get(&a), None);
        assert_eq!(m.get(&b), Some(&2));
        assert_eq!(m.get(&c), Some(&3));
        assert_eq!(m.len(), 2);
    });
}

#[test]
fn migration_races_removes() {
    model_long(|| {
        let map = Arc::new(filled());
        let w = map.clone();
        let grower = thread::spawn(move || {
            let m = w.pin();
            // Starts growth; each write then moves a slot's pointer.
            m.insert(FILL, FILL + 100);
            m.insert(FILL + 1, FILL + 101);
        });
        let m = map.pin();
        assert_eq!(m.remove(&0), Some(&100));
        assert_eq!(m.remove(&2), Some(&102));
        drop(m);
        grower.join().unwrap();
        let m = map.pin();
        for k in [0, 2] {
            assert_eq!(m.get(&k), None, "removed key {k} came back");
        }
        let want: Vec<u32> = (0..FILL + 2).filter(|k| ![0, 2].contains(k)).collect();
        for &k in &want {
            assert_eq!(m.get(&k), Some(&(k + 100)), "key {k} lost");
        }
        assert_eq!(m.len(), want.len());
        let mut keys: Vec<u32> = m.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, want);
    });
}

/// The graves protocol (`src/map/grave.rs`): the epoch only raises a
/// ticket; a later write of the shard drops what the ticket covers. A
/// reader that found the value before its removal must still read it
/// while a second writer's sweep runs; once every reader is gone, later
/// writes drop it (before the map, which must find nothing left to drop
/// twice).
#[test]
fn graves_are_dropped_by_later_writes_never_under_a_reader() {
    loom::model(|| {
        let map = Arc::new(tiny::<Flagged>());
        let drops = Arc::new(AtomicUsize::new(0));
        map.pin().insert(1, Flagged(drops.clone()));
        let w = map.clone();
        let writer = thread::spawn(move || {
            assert!(w.pin().remove(&1).is_some());
            // A later write: it may find the ticket raised (after the
            // flush) and sweep.
            w.pin().guard().flush();
            w.pin().remove(&2);
        });
        {
            let m = map.pin();
            if let Some(v) = m.get(&1) {
                thread::yield_now();
                assert_eq!(v.0.load(SeqCst), 0, "value dropped under a reader");
            }
        }
        writer.join().unwrap();
        let before = drops.load(SeqCst);
        assert!(before <= 1);
        drop(map);
        assert_eq!(drops.load(SeqCst), 1, "dropped twice or never");
    });
}

/// Overtaking (`src/map/grave.rs`): a ticket deferred into a handle's bag
/// that is never flushed (its thread went idle) must not hold the shard's
/// graves back, so a later raised ticket releases every grave sealed
/// before it; never, though, while a reader that found one of them is
/// still pinned.
#[test]
fn a_stranded_ticket_is_overtaken_never_under_a_reader() {
    loom::model(|| {
        let map = Arc::new(tiny::<Flagged>());
        let (d1, d2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        map.pin().insert(1, Flagged(d1.clone()));
        map.pin().insert(2, Flagged(d2.clone()));
        let r = map.clone();
        let reader = thread::spawn(move || {
            let m = r.pin();
            for k in [1, 2] {
                if let Some(v) = m.get(&k) {
                    thread::yield_now();
                    assert_eq!(v.0.load(SeqCst), 0, "value {k} dropped under a reader");
                }
            }
        });
        // An idle writer: it removes key 1 through a handle it keeps, so
        // the ticket stays in that handle's bag.
        let idle = map.collector().register();
        {
            let g = idle.pin();
            assert!(map.with_guard(&g).remove(&1).is_some());
        }
        // Other writes: their ticket reaches the epoch (flush), and a later
        // write sweeps.
        assert!(map.pin().remove(&2).is_some());
        map.pin().guard().flush();
        map.pin().remove(&3);
        reader.join().unwrap();
        assert!(d1.load(SeqCst) <= 1 && d2.load(SeqCst) <= 1);
        drop(idle);
        drop(map);
        assert_eq!(
            (d1.load(SeqCst), d2.load(SeqCst)),
            (1, 1),
            "dropped twice or never"
        );
    });
}

/// A key that notices being read after it was dropped: its `Hash` and
/// `Eq` assert that its flag is still down. The flag lives in an `Arc` the
/// model keeps a clone of, so reading it stays meaningful after the drop;
/// `repr(C)` with 16 leading bytes keeps the flag's pointer out of the
/// part of a freed block the allocator writes its free-list links into
/// (the key comes first in its entry: the larger alignment), so a read
/// after the drop fails this assertion rather than crashing.
#[repr(C)]
struct Watched {
    _free_list_room: [u64; 2],
    dropped: Arc<AtomicBool>,
    k: u32,
}

impl Watched {
    fn new(k: u32) -> Self {
        Watched {
            _free_list_room: [0; 2],
            dropped: Arc::new(AtomicBool::new(false)),
            k,
        }
    }
    fn check(&self) {
        assert!(
            !self.dropped.load(SeqCst),
            "key {} read after its drop",
            self.k
        );
    }
}

impl Hash for Watched {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.check();
        self.k.hash(h);
    }
}

impl PartialEq for Watched {
    fn eq(&self, other: &Self) -> bool {
        self.check();
        other.check();
        self.k == other.k
    }
}

impl Eq for Watched {}

impl Drop for Watched {
    fn drop(&mut self) {
        self.dropped.store(true, SeqCst);
    }
}

/// Iteration reads the entry a migrating table's `MOVED` slot still names
/// (to follow its key into the next table). The victim is moved by the
/// insert that starts growth and then removed from the next table, both
/// before the threads start; a writer lets the epoch pass and sweeps while
/// the old table is still current (three of its slots migrated), and
/// a reader pins and iterates. The removed entry must not be dropped before
/// the old table is unlinked, since a reader pinned after the removal still
/// reaches it through the old table (graves are sealed only once the
/// migration is done). Without that rule the reader hashes the dropped key.
///
/// Small enough for CI's bound: the reader takes the iterator's first item
/// only (the victim's slot is slot 0, the first one visited).
#[test]
fn iteration_reads_moved_slots_whose_keys_were_removed() {
    loom::model(|| {
        let map: Arc<HashMap<Watched, u32>> = Arc::new(
            HashMap::builder()
                .shards(1)
                .hasher(DefaultHashBuilder::with_seeds([1, 2, 3, 4]))
                .build(),
        );
        // The smallest table is one group; a key's home is its hash's
        // byte in it, folded off the sentinel (as `Table::home` does).
        let home = |k: u32| {
            let h = map.hasher().hash_one(Watched::new(k)) % GROUP;
            h * (GROUP - 1) / GROUP
        };
        // The victim sits in slot 0, the first one growth moves: inserted
        // first, at its home.
        let victim = (0..).find(|&k| home(k) == 0).unwrap();
        let victim_dropped;
        let keys: Vec<u32> = core::iter::once(victim)
            .chain((0..).filter(|&k| k != victim).take(FILL as usize - 1))
            .collect();
        {
            let m = map.pin();
            for &k in &keys {
                m.insert(Watched::new(k), k);
            }
            victim_dropped = m
                .get_key_value(&Watched::new(victim))
                .unwrap()
                .0
                .dropped
                .clone();
            // Starts growth and moves slot 0; the removal moves slot 1 and
            // buries the victim's entry.
            m.insert(Watched::new(1000), 1000);
            assert!(m.remove(&Watched::new(victim)).is_some());
        }
        let w = map.clone();
        let writer = thread::spawn(move || {
            // Two epoch advances raise anything sealed; then a write
            // sweeps what is raised (and moves slot 2).
            for _ in 0..2 {
                w.pin().guard().flush();
            }
            w.pin().insert(Watched::new(1001), 1001);
        });
        {
            let m = map.pin();
            let first = m.iter().next().map(|(k, v)| {
                k.check();
                assert_eq!(k.k, *v);
                k.k
            });
            assert!(first.is_some_and(|k| k != victim));
        }
        writer.join().unwrap();
        assert_eq!(map.len(), FILL as usize + 1);
        // Still buried (the old table is current), dropped with the map.
        assert!(!victim_dropped.load(SeqCst));
        drop(map);
        assert!(victim_dropped.load(SeqCst));
    });
}

#[test]
fn readers_move_chunks_while_a_writer_grows() {
    // Lookups that look in two tables try the shard lock and move a chunk
    // of the migration; the writer's own chunks race them. No key may
    // vanish or be moved twice, and a reader never waits for the lock.
    model_long(|| {
        let map = Arc::new(filled());
        let w = map.clone();
        let writer = thread::spawn(move || {
            let m = w.pin();
            // Starts growth and moves a chunk.
            m.insert(FILL, FILL + 100);
        });
        let m = map.pin();
        // An absent key probes both tables once growth has started: such a
        // lookup may move a chunk, racing the writer's; then a present
        // key, old or moved.
        assert_eq!(m.get(&(FILL + 7)), None);
        assert_eq!(m.get(&1), Some(&101), "key 1 vanished mid-growth");
        drop(m);
        writer.join().unwrap();
        let m = map.pin();
        for k in 0..=FILL {
            assert_eq!(m.get(&k), Some(&(k + 100)));
        }
        assert_eq!(m.len(), FILL as usize + 1);
        assert_eq!(m.iter().count(), FILL as usize + 1);
    });
}
