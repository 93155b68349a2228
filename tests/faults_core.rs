//! Fault injection for the single-owner structures and the pools: user code
//! (`init`/`reset`, `Drop`, `Ord`, wheel sinks, timer callbacks) panics on
//! its k-th call, for every k a scenario reaches. After the panic the
//! structure must be consistent: nothing lost, nothing duplicated, nothing
//! leaked (drop counters), bounds exact, and every later call working.
//! The trigger is this thread's own (`support/fault.rs`: `fault::arm(k)`,
//! then every `fault::point()` counts).
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/fault.rs"]
mod fault;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchfree::buffer::{BufferPool, ObjectPool};
use latchfree::queue::{DelayQueue, Fixed, Growable, PriorityQueue};
use latchfree::wheel::shared::{Driver, Entry, TimerState};
use latchfree::wheel::{MissedTick, TimerService, Wheel, WheelConfig};

/// Counts live instances; its `Drop` is a fault point.
#[derive(Debug)]
struct Tracked {
    id: u64,
    live: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(id: u64, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Tracked {
            id,
            live: Arc::clone(live),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        fault::point();
    }
}

fn caught<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

// ---------------------------------------------------------------- pools

#[test]
fn object_pool_panicking_init_does_not_leak_the_bound() {
    let pool = ObjectPool::new(1, || {
        fault::point();
        Vec::<u8>::new()
    })
    .with_bound(1);
    fault::arm(1);
    assert!(caught(|| drop(pool.get())).is_none());
    fault::disarm();
    // Bound 1: a leaked unit would make this `None` (and `get` block).
    assert!(pool.try_get().is_some(), "the bound leaked a unit");
}

/// `init`, `reset` and `T::drop` each panic on their k-th call; the bound
/// stays exact (exactly `BOUND` objects can be held afterwards, no more)
/// and every object made is dropped exactly once.
#[test]
fn object_pool_faults_across_k() {
    const BOUND: usize = 3;
    for k in 1..40 {
        let live = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let (l, m) = (live.clone(), made.clone());
        let pool = ObjectPool::new(2, move || {
            fault::point();
            let id = m.fetch_add(1, Ordering::Relaxed) as u64;
            Tracked::new(id, &l)
        })
        .with_reset(|t| {
            fault::point();
            t.id += 1000;
        })
        .with_bound(BOUND);
        fault::arm(k);
        for round in 0..6 {
            let _ = caught(|| {
                let a = pool.get();
                let b = pool.try_get();
                if round % 2 == 0 {
                    drop(a);
                    drop(b);
                } else {
                    let _kept = a.detach();
                    drop(b);
                }
                pool.trim();
            });
        }
        fault::disarm();
        let held: Vec<_> = std::iter::from_fn(|| pool.try_get())
            .take(BOUND + 1)
            .collect();
        assert_eq!(held.len(), BOUND, "k={k}: the bound is not exact");
        drop(held);
        drop(pool);
        assert_eq!(live.load(Ordering::Relaxed), 0, "k={k}: an object leaked");
    }
}

/// With no idle room, every object made is dropped on return: objects
/// alive never exceed the bound, even while one is being reset.
#[test]
fn object_pool_bound_counts_objects_being_returned() {
    let live = Arc::new(AtomicUsize::new(0));
    let l = live.clone();
    let pool = Arc::new(
        ObjectPool::new(0, move || Tracked::new(0, &l))
            .with_reset(|_| std::thread::sleep(Duration::from_millis(1)))
            .with_bound(1),
    );
    let peak = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (pool, live, peak) = (pool.clone(), live.clone(), peak.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let o = pool.get();
                    peak.fetch_max(live.load(Ordering::Relaxed), Ordering::Relaxed);
                    drop(o);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(
        peak.load(Ordering::Relaxed),
        1,
        "more objects alive than the bound"
    );
}

#[test]
fn buffer_cache_of_a_pool_dropped_elsewhere_does_not_block_other_pools() {
    let a = Arc::new(BufferPool::new());
    let a2 = a.clone();
    // This thread caches a buffer of pool `a`...
    drop(a.get(100));
    // ...and `a` is dropped on another thread (its `forget` runs there).
    drop(a);
    std::thread::spawn(move || drop(a2)).join().unwrap();
    // A second pool used on this thread must get this thread's cache.
    // Kept in the thread cache, the buffer is not counted idle in the
    // shared set; refused by the cache, it lands there.
    let b = BufferPool::new();
    drop(b.get(100));
    assert_eq!(
        b.metrics().idle_bytes,
        0,
        "the dead pool's cached buffer blocks the cache"
    );
    drop(b.get(100));
    let m = b.metrics();
    assert_eq!((m.hits, m.created), (1, 1));
}

// ---------------------------------------------------------------- wheel

fn wheel_with(live: &Arc<AtomicUsize>, deadlines: &[u64]) -> Wheel<Tracked, Growable> {
    let mut w = Wheel::new(WheelConfig::new());
    for (i, &d) in deadlines.iter().enumerate() {
        w.insert_at(Tracked::new(i as u64, live), d);
    }
    w
}

#[test]
fn wheel_panicking_sink_orphans_no_timer() {
    let live = Arc::new(AtomicUsize::new(0));
    let mut w = wheel_with(&live, &[5; 10]);
    let mut seen = Vec::new();
    // Points: sink, drop, sink, drop, sink: the third sink call panics.
    fault::arm(5);
    let r = caught(|| {
        w.advance_with(10, |e| {
            seen.push(e.value.id);
            fault::point();
        })
    });
    assert!(r.is_none() && fault::fired());
    fault::disarm();
    // Three went to the sink (the third panicked in it): seven are left.
    assert_eq!(seen.len(), 3);
    assert_eq!(w.len(), 7);
    assert!(w.next_deadline().is_some(), "orphaned: nothing pending");
    assert_eq!(w.advance_with(10, |e| seen.push(e.value.id)), 7);
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<u64>>());
    assert!(w.is_empty());
    assert_eq!(live.load(Ordering::Relaxed), 0);
}

/// Timers spread over levels (cascades, the far-timer rebase), a sink that
/// panics on its k-th call: each timer reaches the sink exactly once over
/// the calls that follow, and `len` always matches what is left.
#[test]
fn wheel_sink_faults_across_k() {
    let deadlines: Vec<u64> = (0..60u64)
        .map(|i| match i % 4 {
            // Groups of four in one level-0 slot, pairs on higher levels.
            0 => i / 16 * 16,
            1 => 64 + i * 37,
            2 => 5_000 + i / 8 * 997,
            _ => u64::MAX - i,
        })
        .collect();
    for k in 1..=deadlines.len() {
        let live = Arc::new(AtomicUsize::new(0));
        let mut w = wheel_with(&live, &deadlines);
        let mut seen = vec![0u32; deadlines.len()];
        fault::arm(k);
        let nows = [0, 100, 3_000, 100_000, u64::MAX / 2, u64::MAX];
        for round in 0..nows.len() + 60 {
            if w.is_empty() {
                break;
            }
            let now = nows[round.min(nows.len() - 1)];
            let before = w.len();
            let mut got = 0;
            let _ = caught(|| {
                w.advance_with(now, |e| {
                    seen[e.value.id as usize] += 1;
                    got += 1;
                    fault::point();
                })
            });
            assert_eq!(w.len(), before - got, "k={k}: len drifted");
            assert!(
                w.is_empty() || w.next_deadline().is_some(),
                "k={k}: timers in no slot"
            );
        }
        assert!(w.is_empty(), "k={k}: timers never fired");
        assert!(seen.iter().all(|&n| n == 1), "k={k}: {seen:?}");
        assert_eq!(live.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn wheel_payload_drop_faults_across_k() {
    for k in 1..30 {
        let live = Arc::new(AtomicUsize::new(0));
        let mut w = wheel_with(&live, &[1, 2, 3, 70, 80, 5000, 6000, 9, 10, 11]);
        let keys: Vec<_> = (0..4)
            .map(|i| w.insert_at(Tracked::new(99, &live), 100 + i))
            .collect();
        fault::arm(k);
        for key in keys {
            let _ = caught(|| drop(w.remove(key)));
        }
        let _ = caught(|| w.advance_to(75));
        let _ = caught(|| w.drain_expired().for_each(drop));
        let _ = caught(|| w.clear());
        fault::disarm();
        assert!(w.is_empty(), "k={k}");
        assert_eq!(w.next_deadline(), None);
        assert_eq!(live.load(Ordering::Relaxed), 0, "k={k}: leaked");
        w.insert_at(Tracked::new(0, &live), 1);
        assert_eq!(w.poll_expired(u64::MAX).map(|e| e.value.id), Some(0));
    }
}

#[test]
fn handoff_panicking_drop_loses_no_command() {
    let live = Arc::new(AtomicUsize::new(0));
    let (mut d, s) = Driver::new(Wheel::<Entry<Tracked>, Growable>::new(WheelConfig::new()));
    let hs: Vec<_> = (0..6)
        .map(|i| s.insert_at(Tracked::new(i, &live), i).unwrap())
        .collect();
    // Cancelled before the driver saw it: its payload is dropped while the
    // command list is applied, and that drop panics.
    assert!(hs[1].cancel());
    fault::arm(1);
    assert!(caught(|| d.apply_commands()).is_none() && fault::fired());
    fault::disarm();
    let mut fired: Vec<u64> = std::iter::from_fn(|| d.poll_expired(100))
        .map(|f| f.value.id)
        .collect();
    fired.sort_unstable();
    assert_eq!(fired, [0, 2, 3, 4, 5], "commands after the panic were lost");
    assert!(hs
        .iter()
        .enumerate()
        .all(|(i, h)| (i == 1) == (h.state() == TimerState::Cancelled)));
    assert_eq!(live.load(Ordering::Relaxed), 0);
}

#[test]
fn handoff_drop_faults_across_k() {
    for k in 1..20 {
        let live = Arc::new(AtomicUsize::new(0));
        let (mut d, s) = Driver::new(Wheel::<Entry<Tracked>, Fixed<4>>::new_fixed(
            WheelConfig::new(),
        ));
        let hs: Vec<_> = (0..8)
            .map(|i| s.insert_at(Tracked::new(i, &live), i % 3).unwrap())
            .collect();
        for h in hs.iter().step_by(3) {
            h.cancel();
        }
        fault::arm(k);
        let mut fired = Vec::new();
        for _ in 0..20 {
            let _ = caught(|| {
                while let Some(f) = d.poll_expired(10) {
                    fired.push(f.value.id);
                }
            });
        }
        fault::disarm();
        // Every timer ended in exactly one way.
        for (i, h) in hs.iter().enumerate() {
            let n = fired.iter().filter(|&&f| f == i as u64).count();
            match h.state() {
                TimerState::Fired => assert_eq!(n, 1, "k={k} timer {i}"),
                TimerState::Pending => panic!("k={k}: timer {i} stuck pending"),
                _ => assert_eq!(n, 0, "k={k} timer {i}"),
            }
        }
        drop(fired);
        assert!(d.is_empty());
        drop(d);
        assert_eq!(live.load(Ordering::Relaxed), 0, "k={k}: leaked");
    }
}

// ---------------------------------------------------------------- timer service

#[test]
fn periodic_timer_survives_a_panicking_run() {
    fault::quiet_injected_panics();
    let timers = TimerService::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let t = timers
        .schedule_every(
            move || {
                if r.fetch_add(1, Ordering::Relaxed) == 0 {
                    std::panic::panic_any(fault::INJECTED);
                }
            },
            Duration::from_millis(1),
            MissedTick::Skip,
        )
        .unwrap();
    let start = Instant::now();
    while runs.load(Ordering::Relaxed) < 3 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        runs.load(Ordering::Relaxed) >= 3,
        "the series stopped after a panic"
    );
    assert_eq!(t.panics(), 1);
    assert!(t.cancel());
}

#[test]
fn huge_durations_saturate_instead_of_panicking() {
    let timers = TimerService::new();
    let t = timers.schedule(|| unreachable!(), Duration::MAX).unwrap();
    let p = timers
        .schedule_every(|| unreachable!(), Duration::MAX, MissedTick::Skip)
        .unwrap();
    assert!(t.cancel() && p.cancel());
    assert_eq!(timers.shutdown(), 0);
}

#[test]
fn ring_timeout_with_a_huge_limit_waits_instead_of_panicking() {
    use latchfree::ring::{Parking, Timeout, WaitStrategy};
    let wait = Timeout::new(Parking::new(), Duration::MAX);
    let mut polls = 0;
    let r = wait.wait_until(|| {
        polls += 1;
        polls > 100
    });
    assert!(r.is_ok() && polls > 100);
}

// ---------------------------------------------------------------- queues

/// A priority whose `Ord` and `Drop` are fault points.
#[derive(Debug)]
struct Prio(u64, Arc<AtomicUsize>);

impl Prio {
    fn new(p: u64, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Prio(p, live.clone())
    }
}

impl Drop for Prio {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::Relaxed);
        fault::point();
    }
}

impl PartialEq for Prio {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Prio {}
impl PartialOrd for Prio {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Prio {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        fault::point();
        self.0.cmp(&o.0)
    }
}

/// `Ord` or `Drop` panics at the k-th call anywhere in push, pop, remove,
/// change_priority and clear: afterwards every handle still names its
/// entry or is stale, popping everything yields each live value once, in
/// order, and nothing leaks.
#[test]
fn priority_queue_faults_across_k() {
    // Every k that reaches a fault point natively; a sample under Miri.
    let ks = if cfg!(miri) { 60 } else { 400 };
    for k in 1..ks {
        let live = Arc::new(AtomicUsize::new(0));
        let mut q: PriorityQueue<Tracked, Prio, Growable> = PriorityQueue::new();
        let mut handles = Vec::new();
        fault::arm(k);
        for i in 0..40u64 {
            let _ = caught(|| {
                let p = Prio::new((i * 7919) % 31, &live);
                handles.push((i, q.push(Tracked::new(i, &live), p)));
            });
            if i % 5 == 4 {
                let _ = caught(|| drop(q.pop()));
            }
            if i % 7 == 6 {
                let (_, h) = handles[handles.len() / 2];
                let _ = caught(|| drop(q.remove(h)));
            }
            if i % 3 == 2 {
                let (_, h) = handles[handles.len() / 3];
                let _ = caught(|| q.change_priority(h, Prio::new(i % 5, &live)));
            }
        }
        if k % 2 == 0 {
            let _ = caught(|| q.clear());
        }
        fault::disarm();
        // A push whose sift panicked still stored its entry (as std's
        // `BinaryHeap` does), without the caller learning its handle.
        let want: Vec<u64> = handles
            .iter()
            .filter(|(_, h)| q.contains(*h))
            .map(|&(i, h)| {
                assert_eq!(q.get(h).map(|v| v.id), Some(i), "k={k}");
                i
            })
            .collect();
        assert!(q.len() >= want.len(), "k={k}: len below live handles");
        // After a panicking `Ord` the order is unspecified (as for std's
        // `BinaryHeap`); the contents are not.
        let n = q.len();
        let mut ids = Vec::new();
        while let Some((v, _)) = q.pop() {
            ids.push(v.id);
        }
        assert_eq!(ids.len(), n, "k={k}: len vs entries");
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(n, ids.len(), "k={k}: a value came out twice");
        assert!(
            want.iter().all(|i| ids.contains(i)),
            "k={k}: an entry was lost"
        );
        assert!(q.is_empty());
        drop(q);
        assert_eq!(live.load(Ordering::Relaxed), 0, "k={k}: leaked");
        q = PriorityQueue::new();
        q.push(Tracked::new(0, &live), Prio::new(1, &live));
        assert!(q.pop().is_some());
    }
}

/// `retain` with a predicate, `Drop`s and `Ord` that panic at the k-th
/// call: afterwards every entry not removed is still there exactly once,
/// and nothing leaks.
#[test]
fn priority_queue_retain_faults_across_k() {
    for k in 1..200 {
        let live = Arc::new(AtomicUsize::new(0));
        let mut q: PriorityQueue<Tracked, Prio, Growable> = PriorityQueue::new();
        for i in 0..30u64 {
            q.push(Tracked::new(i, &live), Prio::new((i * 7919) % 23, &live));
        }
        fault::arm(k);
        let mut asked = Vec::new();
        let _ = caught(|| {
            q.retain(|v, _| {
                asked.push(v.id);
                fault::point();
                v.id % 3 != 0
            })
        });
        fault::disarm();
        let mut ids = Vec::new();
        while let Some((v, _)) = q.pop() {
            ids.push(v.id);
        }
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(n, ids.len(), "k={k}: an entry came out twice");
        // Kept entries and those not yet asked about are all there; one
        // whose predicate or drop panicked may be either.
        for i in 0..30u64 {
            if i % 3 != 0 || !asked.contains(&i) {
                assert!(
                    ids.contains(&i) || asked.last() == Some(&i),
                    "k={k}: entry {i} lost"
                );
            }
        }
        drop(q);
        assert_eq!(live.load(Ordering::Relaxed), 0, "k={k}: leaked");
    }
}

#[test]
fn delay_queue_drop_faults_across_k() {
    for k in 1..30 {
        let live = Arc::new(AtomicUsize::new(0));
        let mut q: DelayQueue<Tracked, Fixed<16>> = DelayQueue::new_fixed();
        let keys: Vec<_> = (0..12u64)
            .map(|i| q.try_insert_at(Tracked::new(i, &live), 20 - i).unwrap())
            .collect();
        fault::arm(k);
        for key in keys.iter().step_by(4) {
            let _ = caught(|| drop(q.remove(*key)));
        }
        let mut seen = Vec::new();
        for now in [5, 10, 15] {
            let _ = caught(|| {
                while let Some(e) = q.poll_expired(now) {
                    seen.push(e.value.id);
                }
            });
        }
        let _ = caught(|| q.clear());
        fault::disarm();
        assert!(q.is_empty() && keys.iter().all(|k| !q.contains(*k)));
        drop(seen);
        assert_eq!(live.load(Ordering::Relaxed), 0, "k={k}: leaked");
        q.try_insert_at(Tracked::new(0, &live), 1).unwrap();
        assert_eq!(q.poll_expired(1).map(|e| e.value.id), Some(0));
    }
}
