//! Buffer pool against `lockfree-object-pool`, `object-pool` and a fresh
//! allocation: get a 16 KiB buffer, write a byte, return it; on one thread
//! and on two at once.

// Host-only code: std paths are fine here.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use crate::report::{Better, Report};
use latchfree::buffer::BufferPool;
use std::hint::black_box;
use std::time::Instant;

const OPS: usize = 2_000_000;
const SIZE: usize = 16 * 1024;

fn measure(threads: usize, op: &(dyn Fn() + Sync)) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..OPS {
                    op();
                }
            });
        }
    });
    t.elapsed().as_nanos() as f64 / OPS as f64
}

pub fn run(r: &mut Report) {
    r.note("buffer: 16 KiB buffer get/put vs lockfree-object-pool, object-pool, fresh allocation");
    for threads in [1, 2] {
        let scenario = if threads == 1 {
            "16k_get_put_1_thread"
        } else {
            "16k_get_put_2_threads"
        };
        let lf = BufferPool::new();
        let ns = measure(threads, &|| {
            let mut b = lf.get(SIZE);
            b.push(1);
            black_box(&b);
        });
        assert!(lf.metrics().hits + lf.metrics().misses == threads * OPS);
        r.add(
            "buffer",
            scenario,
            "latchfree",
            "ns_per_op",
            ns,
            Better::Lower,
        );

        let lop = lockfree_object_pool::LinearObjectPool::<Vec<u8>>::new(
            || Vec::with_capacity(SIZE),
            |v| v.clear(),
        );
        let ns = measure(threads, &|| {
            let mut b = lop.pull();
            b.push(1);
            black_box(&b);
        });
        r.add(
            "buffer",
            scenario,
            "lockfree-object-pool",
            "ns_per_op",
            ns,
            Better::Lower,
        );

        let op = object_pool::Pool::<Vec<u8>>::new(4, || Vec::with_capacity(SIZE));
        let ns = measure(threads, &|| {
            let mut b = op.pull(|| Vec::with_capacity(SIZE));
            b.clear();
            b.push(1);
            black_box(&b);
        });
        r.add(
            "buffer",
            scenario,
            "object-pool",
            "ns_per_op",
            ns,
            Better::Lower,
        );

        let ns = measure(threads, &|| {
            let mut b = Vec::<u8>::with_capacity(SIZE);
            b.push(1);
            black_box(&b);
        });
        r.add(
            "buffer",
            scenario,
            "fresh_alloc",
            "ns_per_op",
            ns,
            Better::Lower,
        );
    }
}
