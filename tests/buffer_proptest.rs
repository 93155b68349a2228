//! proptest for the pools against a sequential model: an object is never
//! handed out while in use, it is reset on return, idle counts follow the
//! limit, and buffers come from the right size class.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use latchfree::buffer::{BufferPool, ObjectPool};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Get,
    Put(usize),
    Dirty(usize),
    Trim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Get),
        3 => any::<usize>().prop_map(Op::Put),
        2 => any::<usize>().prop_map(Op::Dirty),
        1 => Just(Op::Trim),
    ]
}

proptest! {
    #[test]
    fn object_pool_matches_model(max_idle in 0usize..5, ops in proptest::collection::vec(op(), 1..200)) {
        let ids = AtomicUsize::new(0);
        // (id, dirty flag)
        let pool = ObjectPool::new(max_idle, move || (ids.fetch_add(1, Ordering::Relaxed), 0u32))
            .with_reset(|o| o.1 = 0);
        let mut out = Vec::new();
        let mut in_use = HashSet::new();
        let mut idle = 0usize;
        for op in ops {
            match op {
                Op::Get => {
                    let g = pool.get();
                    prop_assert!(in_use.insert(g.0), "object {} handed out twice", g.0);
                    prop_assert_eq!(g.1, 0, "not reset");
                    idle = idle.saturating_sub(1);
                    out.push(g);
                }
                Op::Put(i) if !out.is_empty() => {
                    let g = out.swap_remove(i % out.len());
                    in_use.remove(&g.0);
                    drop(g);
                    idle = (idle + 1).min(max_idle);
                }
                Op::Dirty(i) if !out.is_empty() => {
                    let n = out.len();
                    out[i % n].1 = 7;
                }
                Op::Trim => {
                    pool.trim();
                    idle = 0;
                }
                _ => {}
            }
            let m = pool.metrics();
            prop_assert!(m.hits + m.misses >= out.len());
        }
        // Single-threaded, the pool's idle count is exactly the model's:
        // taking `idle + 1` objects must hit `idle` times and miss once.
        let before = pool.metrics();
        let extra: Vec<_> = (0..=idle).map(|_| pool.get()).collect();
        let after = pool.metrics();
        prop_assert_eq!(after.hits - before.hits, idle);
        prop_assert_eq!(after.misses - before.misses, 1);
        drop(extra);
    }

    #[test]
    fn buffers_come_from_their_class(reqs in proptest::collection::vec(0usize..20_000, 1..100)) {
        let pool = BufferPool::builder().min_size(64).max_retained(8192).build();
        let mut held = Vec::new();
        for (i, r) in reqs.into_iter().enumerate() {
            let b = pool.get(r);
            let want = r.max(64).next_power_of_two();
            prop_assert!(b.capacity() >= r);
            prop_assert!(b.capacity() >= want);
            prop_assert!(b.is_empty());
            if want <= 8192 {
                prop_assert!(b.capacity() < 2 * want, "class too big: {} for {}", b.capacity(), r);
            }
            if i % 3 == 0 { held.push(b); }
        }
        drop(held);
        let m = pool.metrics();
        prop_assert!(m.idle_bytes <= 64 * (8192 * 2));
        pool.trim();
        prop_assert_eq!(pool.metrics().idle_bytes, 0);
    }
}

#[test]
fn hits_follow_idle_model() {
    // Deterministic check of the hit/miss split the proptest only bounds.
    let pool = ObjectPool::new(2, || 0u8);
    let a = pool.get();
    let b = pool.get();
    let c = pool.get();
    drop((a, b, c));
    let _x = pool.get();
    let _y = pool.get();
    let _z = pool.get();
    let m = pool.metrics();
    assert_eq!((m.hits, m.misses, m.dropped), (2, 4, 1));
}
