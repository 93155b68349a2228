//! Unit tests of the pools, sized to run under Miri.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

extern crate std;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize as StdAtomic, Ordering as StdOrdering};
use std::vec::Vec;

use super::*;
use crate::sync::HandleArc as Arc;

const N: usize = if cfg!(miri) { 32 } else { 2_000 };

#[test]
fn object_pool_reuses_and_resets() {
    let made = std::sync::Arc::new(StdAtomic::new(0));
    let m2 = made.clone();
    let pool = ObjectPool::new(4, move || {
        m2.fetch_add(1, StdOrdering::Relaxed);
        Vec::<u32>::new()
    })
    .with_reset(|v| v.clear());
    {
        let mut a = pool.get();
        a.push(1);
    }
    let b = pool.get();
    assert!(b.is_empty(), "reset on return");
    assert_eq!(made.load(StdOrdering::Relaxed), 1);
    let m = pool.metrics();
    assert_eq!((m.hits, m.misses, m.created), (1, 1, 1));
    drop(b);
    // More returns than idle cells: the extras are dropped.
    let held: Vec<_> = (0..6).map(|_| pool.get()).collect();
    drop(held);
    assert_eq!(pool.metrics().dropped, 2);
    pool.trim();
    let _c = pool.get();
    assert_eq!(pool.metrics().misses, 7);
}

#[test]
fn bound_and_owned_guards() {
    let pool = Arc::new(ObjectPool::new(2, || 0u64).with_bound(2));
    let a = pool.get_owned();
    let b = pool.try_get().unwrap();
    assert!(pool.try_get().is_none());
    assert!(pool.try_get_owned().is_none());
    drop(b);
    let t = {
        let p = pool.clone();
        std::thread::spawn(move || {
            let mut c = p.get_owned();
            *c += 1;
        })
    };
    t.join().unwrap();
    let kept = a.detach();
    assert_eq!(kept, 0);
    assert!(pool.try_get().is_some());
}

#[test]
fn objects_never_shared_across_threads() {
    let ids = StdAtomic::new(0);
    let pool = ObjectPool::new(8, move || (ids.fetch_add(1, StdOrdering::Relaxed), 0usize));
    let in_use: std::sync::Mutex<HashSet<usize>> = std::sync::Mutex::new(HashSet::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..N {
                    let mut o = pool.get();
                    assert!(
                        in_use.lock().unwrap().insert(o.0),
                        "object handed out twice"
                    );
                    o.1 += 1;
                    assert!(in_use.lock().unwrap().remove(&o.0));
                }
            });
        }
    });
    let m = pool.metrics();
    assert_eq!(m.hits + m.misses, 3 * N);
}

#[test]
fn buffer_classes_and_limits() {
    // Fill this thread's cache with another pool's buffer, so every return
    // below goes to the shared classes this test checks.
    let other = BufferPool::new();
    drop(other.get(1));
    let pool = BufferPool::builder()
        .min_size(64)
        .max_retained(4096)
        .max_idle_per_class(2)
        .class_limit(128, 1)
        .build();
    let b = pool.get(100);
    assert_eq!(b.capacity(), 128);
    assert_eq!(pool.class_size(1), 64);
    assert_eq!(pool.class_size(4097), 8192);
    drop(b);
    assert_eq!(pool.metrics().idle_bytes, 128);
    let mut b = pool.get(65);
    assert!(b.is_empty());
    assert_eq!(pool.metrics().hits, 1);
    b.extend_from_slice(&[1; 10]);
    drop(b);
    assert!(pool.get(128).is_empty(), "cleared on return");
    // Growth past max_retained: freed, not pinned.
    let mut big = pool.get(1000);
    big.extend_from_slice(&[0; 5000]);
    let dropped = pool.metrics().dropped;
    drop(big);
    assert_eq!(pool.metrics().dropped, dropped + 1);
    // Over max_retained from the start: never pooled.
    drop(pool.get(10_000));
    assert_eq!(pool.metrics().dropped, dropped + 2);
    // Class limit of 1 for 128.
    let (x, y) = (pool.get(128), pool.get(128));
    drop((x, y));
    assert_eq!(pool.metrics().dropped, dropped + 3);
    assert!(pool.metrics().idle_bytes > 0);
    pool.trim();
    assert_eq!(pool.metrics().idle_bytes, 0);
    drop(other);
}

#[cfg(feature = "std")] // the per-thread cache exists only under std
#[test]
fn thread_cache_serves_one_thread_first() {
    let pool = BufferPool::new();
    let b = pool.get(1000);
    let p = b.as_ptr();
    drop(b);
    // Cached on this thread: not in the shared classes.
    assert_eq!(pool.metrics().idle_bytes, 0);
    let b = pool.get(1000);
    assert_eq!(b.as_ptr(), p);
    assert_eq!(pool.metrics().hits, 1);
    drop(b);
    pool.trim();
    let _b = pool.get(1000);
    assert_eq!(pool.metrics().misses, 2);
}

#[test]
fn buffer_write_and_detach() {
    use std::io::Write;
    let pool = BufferPool::new();
    let mut b = pool.get(16);
    write!(b, "hello {}", 42).unwrap();
    assert_eq!(&b[..], b"hello 42");
    let v = b.detach();
    assert_eq!(v, b"hello 42");
    assert_eq!(pool.metrics().idle_bytes, 0);
}

#[test]
fn buffers_across_threads() {
    let pool = BufferPool::builder().max_idle_per_class(4).build();
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..N {
                    let mut b = pool.get(16 << (i % 4));
                    assert!(b.is_empty());
                    b.push(t);
                }
            });
        }
    });
    let m = pool.metrics();
    assert_eq!(m.hits + m.misses, 2 * N);
}
