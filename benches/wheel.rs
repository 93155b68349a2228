//! Criterion benchmarks for the timing wheel, the priority queue and the
//! delay queue, with peers in the same groups. The shootout
//! (`examples/shootout/{wheel,queue}.rs`) runs the larger 1M/5M scenarios.

// Host-only code: std paths are fine here.
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    missing_docs
)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use latchfree::queue::PriorityQueue;
use latchfree::wheel::{Growable, Wheel, WheelConfig};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

const N: usize = 10_000;

fn deadlines(n: usize, spread: u64) -> Vec<u64> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            1 + s % spread
        })
        .collect()
}

fn wheel(c: &mut Criterion) {
    let ds = deadlines(N, 10_000);
    let mut g = c.benchmark_group("wheel insert+cancel 10k");
    g.bench_function("latchfree", |b| {
        let mut w: Wheel<u64, Growable> = Wheel::with_capacity(WheelConfig::new(), N);
        let mut keys = Vec::with_capacity(N);
        b.iter(|| {
            keys.extend(ds.iter().map(|&d| w.insert_at(d, d)));
            let mut sum = 0;
            for k in keys.drain(..) {
                sum += w.remove(k).unwrap();
            }
            assert!(w.is_empty());
            black_box(sum)
        })
    });
    g.bench_function("tokio-util DelayQueue", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _g = rt.enter();
        let mut q = tokio_util::time::DelayQueue::with_capacity(N);
        let mut keys = Vec::with_capacity(N);
        b.iter(|| {
            keys.extend(ds.iter().map(|&d| q.insert(d, Duration::from_millis(d))));
            let mut sum = 0;
            for k in keys.drain(..) {
                sum += q.remove(&k).into_inner();
            }
            assert!(q.is_empty());
            black_box(sum)
        })
    });
    g.finish();

    let ds = deadlines(N, 64);
    let mut g = c.benchmark_group("wheel insert+drain 10k");
    g.bench_function("latchfree", |b| {
        b.iter_batched_ref(
            || {
                let mut w: Wheel<u64, Growable> = Wheel::with_capacity(WheelConfig::new(), N);
                for &d in &ds {
                    w.insert_at(d, d);
                }
                w
            },
            |w| {
                w.advance_to(64);
                assert_eq!(w.drain_expired().count(), N);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("BinaryHeap", |b| {
        b.iter_batched_ref(
            || ds.iter().map(|&d| Reverse(d)).collect::<BinaryHeap<_>>(),
            |h| {
                let mut n = 0;
                while h.pop().is_some() {
                    n += 1;
                }
                assert_eq!(n, N);
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn pqueue(c: &mut Criterion) {
    let ps = deadlines(N, 1 << 40);
    let mut g = c.benchmark_group("pqueue push+pop 10k");
    g.bench_function("latchfree", |b| {
        let mut q: PriorityQueue<u32, u64, Growable> = PriorityQueue::with_capacity(N);
        b.iter(|| {
            for (i, &p) in ps.iter().enumerate() {
                q.push(i as u32, p);
            }
            let mut n = 0;
            while q.pop().is_some() {
                n += 1;
            }
            assert_eq!(n, N);
        })
    });
    g.bench_function("BinaryHeap", |b| {
        let mut h = BinaryHeap::with_capacity(N);
        b.iter(|| {
            for (i, &p) in ps.iter().enumerate() {
                h.push(Reverse((p, i as u32)));
            }
            let mut n = 0;
            while h.pop().is_some() {
                n += 1;
            }
            assert_eq!(n, N);
        })
    });
    g.bench_function("priority-queue crate", |b| {
        let mut q = priority_queue::PriorityQueue::with_capacity(N);
        b.iter(|| {
            for (i, &p) in ps.iter().enumerate() {
                q.push(i as u32, Reverse(p));
            }
            let mut n = 0;
            while q.pop().is_some() {
                n += 1;
            }
            assert_eq!(n, N);
        })
    });
    g.finish();
}

criterion_group!(benches, wheel, pqueue);
criterion_main!(benches);
