//! Criterion benchmarks for the thread pool, the buffer pool and the
//! batcher, with peers in the same groups. The shootout
//! (`examples/shootout/{pool,buffer,batch}.rs`) runs the larger scenarios
//! and the idle-CPU measurement.

// Host-only code: std paths are fine here.
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use latchfree::batch::Batcher;
use latchfree::buffer::BufferPool;
use latchfree::pool::ThreadPool;

const JOBS: usize = 100_000;
const SIZE: usize = 16 * 1024;

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool_noop_100k");
    g.sample_size(10);
    let lf = ThreadPool::builder()
        .min_workers(2)
        .max_workers(2)
        .queue_capacity(4096)
        .build()
        .unwrap();
    g.bench_function("latchfree", |b| {
        b.iter(|| {
            let n = Arc::new(AtomicUsize::new(0));
            for _ in 0..JOBS {
                let n = n.clone();
                lf.execute(move || {
                    n.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            }
            lf.wait_idle().unwrap();
            assert_eq!(n.load(Ordering::Relaxed), JOBS);
        })
    });
    let tp = threadpool::ThreadPool::new(2);
    g.bench_function("threadpool", |b| {
        b.iter(|| {
            let n = Arc::new(AtomicUsize::new(0));
            for _ in 0..JOBS {
                let n = n.clone();
                tp.execute(move || {
                    n.fetch_add(1, Ordering::Relaxed);
                });
            }
            tp.join();
            assert_eq!(n.load(Ordering::Relaxed), JOBS);
        })
    });
    let rp = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    g.bench_function("rayon_spawn", |b| {
        b.iter(|| {
            let n = Arc::new(AtomicUsize::new(0));
            rp.scope(|s| {
                for _ in 0..JOBS {
                    let n = n.clone();
                    s.spawn(move |_| {
                        n.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            assert_eq!(n.load(Ordering::Relaxed), JOBS);
        })
    });
    g.finish();
}

fn buffer(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffer_16k_get_put");
    let lf = BufferPool::new();
    g.bench_function("latchfree", |b| {
        b.iter(|| {
            let mut buf = lf.get(SIZE);
            buf.push(1);
            black_box(&buf);
        })
    });
    let lop = lockfree_object_pool::LinearObjectPool::<Vec<u8>>::new(
        || Vec::with_capacity(SIZE),
        |v| v.clear(),
    );
    g.bench_function("lockfree-object-pool", |b| {
        b.iter(|| {
            let mut buf = lop.pull();
            buf.push(1);
            black_box(&buf);
        })
    });
    g.bench_function("fresh_alloc", |b| {
        b.iter(|| {
            let mut buf = Vec::<u8>::with_capacity(SIZE);
            buf.push(1);
            black_box(&buf);
        })
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_64_100k_items");
    g.sample_size(10);
    g.bench_function("latchfree", |b| {
        b.iter(|| {
            let n = Arc::new(AtomicUsize::new(0));
            let n2 = n.clone();
            let bt = Batcher::builder::<()>()
                .max_items(64)
                .max_delay(Duration::from_millis(1))
                .queue_capacity(4096)
                .build(move |v: &mut Vec<u64>| {
                    n2.fetch_add(v.len(), Ordering::Relaxed);
                    Ok(())
                })
                .unwrap();
            for i in 0..JOBS as u64 {
                bt.push(i).unwrap();
            }
            bt.close();
            assert_eq!(n.load(Ordering::Relaxed), JOBS);
        })
    });
    g.finish();
}

criterion_group!(benches, pool, buffer, batch);
criterion_main!(benches);
