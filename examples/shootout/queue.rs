//! Addressable priority queue against `BinaryHeap` (push+pop only) and the
//! `priority-queue` crate (hash map + index heap, change-priority); delay
//! queue insert+remove against tokio-util's `DelayQueue`.

// Host-only code: std paths are fine here.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use crate::report::{Better, Report};
use latchfree::queue::{Growable, PriorityQueue};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const N: usize = 1_000_000;

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn ns_per(t: Duration, n: usize) -> f64 {
    t.as_nanos() as f64 / n as f64
}

pub fn run(r: &mut Report) {
    r.note("queue: addressable priority queue vs BinaryHeap vs priority-queue crate");
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let prios: Vec<u64> = (0..N).map(|_| rng(&mut s) % (N as u64 * 4)).collect();
    let mut sorted = prios.clone();
    sorted.sort_unstable();

    // --- push all then pop all -------------------------------------------
    {
        let mut q: PriorityQueue<u32, u64, Growable> = PriorityQueue::with_capacity(N);
        let t = Instant::now();
        for (i, &p) in prios.iter().enumerate() {
            q.push(i as u32, p);
        }
        let mut out = Vec::with_capacity(N);
        while let Some((_, p)) = q.pop() {
            out.push(p);
        }
        let el = t.elapsed();
        assert_eq!(out, sorted);
        r.add(
            "queue",
            "push+pop 1M",
            "latchfree",
            "ns_per_item",
            ns_per(el, N),
            Better::Lower,
        );
    }
    {
        let mut h = BinaryHeap::with_capacity(N);
        let t = Instant::now();
        for (i, &p) in prios.iter().enumerate() {
            h.push(Reverse((p, i as u32)));
        }
        let mut out = Vec::with_capacity(N);
        while let Some(Reverse((p, _))) = h.pop() {
            out.push(p);
        }
        let el = t.elapsed();
        assert_eq!(out, sorted);
        r.add(
            "queue",
            "push+pop 1M",
            "BinaryHeap",
            "ns_per_item",
            ns_per(el, N),
            Better::Lower,
        );
    }
    {
        let mut q = priority_queue::PriorityQueue::with_capacity(N);
        let t = Instant::now();
        for (i, &p) in prios.iter().enumerate() {
            q.push(i as u32, Reverse(p));
        }
        let mut out = Vec::with_capacity(N);
        while let Some((_, Reverse(p))) = q.pop() {
            out.push(p);
        }
        let el = t.elapsed();
        assert_eq!(out, sorted);
        r.add(
            "queue",
            "push+pop 1M",
            "priority-queue crate",
            "ns_per_item",
            ns_per(el, N),
            Better::Lower,
        );
    }

    // --- change priority -------------------------------------------------
    const LIVE: usize = 100_000;
    const CHANGES: usize = 1_000_000;
    let mut s2 = 7u64;
    let changes: Vec<(usize, u64)> = (0..CHANGES)
        .map(|_| {
            (
                (rng(&mut s2) % LIVE as u64) as usize,
                rng(&mut s2) % (N as u64 * 4),
            )
        })
        .collect();
    let final_sum: u64 = {
        let mut cur: Vec<u64> = prios[..LIVE].to_vec();
        for &(i, p) in &changes {
            cur[i] = p;
        }
        cur.iter().sum()
    };
    {
        let mut q: PriorityQueue<u32, u64, Growable> = PriorityQueue::with_capacity(LIVE);
        let hs: Vec<_> = (0..LIVE).map(|i| q.push(i as u32, prios[i])).collect();
        let t = Instant::now();
        for &(i, p) in &changes {
            q.change_priority(hs[i], p);
        }
        let el = t.elapsed();
        let mut sum = 0;
        while let Some((_, p)) = q.pop() {
            sum += p;
        }
        assert_eq!(sum, final_sum);
        r.add(
            "queue",
            "change-priority 1M on 100k",
            "latchfree",
            "ns_per_change",
            ns_per(el, CHANGES),
            Better::Lower,
        );
    }
    {
        let mut q = priority_queue::PriorityQueue::with_capacity(LIVE);
        for (i, &p) in prios[..LIVE].iter().enumerate() {
            q.push(i as u32, Reverse(p));
        }
        let t = Instant::now();
        for &(i, p) in &changes {
            black_box(q.change_priority(&(i as u32), Reverse(p)));
        }
        let el = t.elapsed();
        let mut sum = 0;
        while let Some((_, Reverse(p))) = q.pop() {
            sum += p;
        }
        assert_eq!(sum, final_sum);
        r.add(
            "queue",
            "change-priority 1M on 100k",
            "priority-queue crate",
            "ns_per_change",
            ns_per(el, CHANGES),
            Better::Lower,
        );
    }

    // --- delay queue: insert then remove --------------------------------
    {
        let mut q: latchfree::queue::DelayQueue<u64, Growable> =
            latchfree::queue::DelayQueue::with_capacity(N);
        let t = Instant::now();
        let keys: Vec<_> = prios.iter().map(|&p| q.insert_at(p, p % 10_000)).collect();
        let mut sum = 0u64;
        for k in keys {
            sum += q.remove(k).unwrap();
        }
        let el = t.elapsed();
        assert_eq!(sum, prios.iter().sum::<u64>());
        r.add(
            "queue",
            "delay queue insert+remove 1M",
            "latchfree",
            "ns_per_item",
            ns_per(el, N),
            Better::Lower,
        );
    }
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _g = rt.enter();
        let mut q = tokio_util::time::DelayQueue::with_capacity(N);
        let t = Instant::now();
        let keys: Vec<_> = prios
            .iter()
            .map(|&p| q.insert(p, Duration::from_millis(p % 10_000)))
            .collect();
        let mut sum = 0u64;
        for k in &keys {
            sum += q.remove(k).into_inner();
        }
        let el = t.elapsed();
        assert_eq!(sum, prios.iter().sum::<u64>());
        r.add(
            "queue",
            "delay queue insert+remove 1M",
            "tokio-util DelayQueue",
            "ns_per_item",
            ns_per(el, N),
            Better::Lower,
        );
    }
}
