//! Balancers: picks per second against `Mutex`-guarded implementations of
//! the same algorithms and the `hashring` crate (behind a `RwLock`, as it
//! is not concurrent), on one and two threads; and picker tail latency
//! while a third thread changes the membership. `latchfree` rows use a
//! per-thread picker (`RoundRobin::picker` etc.), `latchfree_shared` rows
//! the balancer's own `pick_cloned`/`pick_with` (shared counter, a pin
//! per pick).

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::guard_support::{add_rows, loadavg, median, target, ROUNDS};
use crate::placement;
use crate::report::{Better, Report};
use latchfree::balance::{HashRing, LeastLoaded, RoundRobin, Weighted};

const OPS: usize = 1_000_000;
const MEMBERS: u32 = 16;

/// nginx's SWRR run per pick under a lock.
struct MutexSwrr {
    inner: Mutex<Vec<(u32, i64, i64)>>, // (member, weight, current)
}

impl MutexSwrr {
    fn pick(&self) -> u32 {
        let mut v = self.inner.lock().unwrap();
        let total: i64 = v.iter().map(|m| m.1).sum();
        let mut best = 0;
        for i in 0..v.len() {
            v[i].2 += v[i].1;
            if v[i].2 > v[best].2 {
                best = i;
            }
        }
        v[best].2 -= total;
        v[best].0
    }
}

/// P2C under a lock: the in-flight counts in a vector.
struct MutexP2c {
    load: Mutex<Vec<usize>>,
}

impl MutexP2c {
    fn pick(&self, r: u64) -> usize {
        let mut l = self.load.lock().unwrap();
        let n = l.len();
        let (i, j) = ((r as usize) % n, ((r >> 32) as usize) % n);
        let c = if l[j] < l[i] { j } else { i };
        l[c] += 1;
        c
    }

    fn done(&self, c: usize) {
        self.load.lock().unwrap()[c] -= 1;
    }
}

/// Nanoseconds per operation with `threads` threads, each pinned to its
/// own core (when the machine reports cores), building its per-thread
/// state with `make` and running the returned op `ops` times. Used for
/// every row of the pick sections, so all implementations run alike.
fn per_thread_op<'a>(
    threads: usize,
    ops: usize,
    make: &(dyn Fn() -> Box<dyn FnMut(usize) + 'a> + Sync + 'a),
) -> f64 {
    per_thread_op_on(true, threads, ops, make)
}

/// As [`per_thread_op`], pinned only if `pin`.
fn per_thread_op_on<'a>(
    pin: bool,
    threads: usize,
    ops: usize,
    make: &(dyn Fn() -> Box<dyn FnMut(usize) + 'a> + Sync + 'a),
) -> f64 {
    let t = std::time::Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                placement::pin(pin, th);
                let mut op = make();
                for i in 0..ops {
                    op(th * ops + i);
                }
            });
        }
    });
    t.elapsed().as_nanos() as f64 / ops as f64
}

fn mix(i: usize) -> u64 {
    (i as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(31)
}

pub fn run(r: &mut Report) {
    r.note("balance: picks vs Mutex-guarded versions of each algorithm and the hashring crate");
    let weights: Vec<(u32, u32)> = (0..MEMBERS).map(|m| (m, m % 4 + 1)).collect();
    let rr = RoundRobin::new(0..MEMBERS);
    let rr_mx = Mutex::new((0..MEMBERS).collect::<Vec<_>>());
    let rr_next = Mutex::new(0usize);
    let sw = Weighted::new(weights.iter().copied()).unwrap();
    let sw_mx = MutexSwrr {
        inner: Mutex::new(weights.iter().map(|&(m, w)| (m, w as i64, 0)).collect()),
    };
    let ring = HashRing::new(0..MEMBERS, 160);
    let mut hr = hashring::HashRing::new();
    for m in 0..MEMBERS {
        for v in 0..160u32 {
            hr.add((m, v));
        }
    }
    let hr = RwLock::new(hr);
    let hr_mx = Mutex::new(hr.read().unwrap().clone());
    let p2c = LeastLoaded::new(0..MEMBERS);
    let p2c_mx = MutexP2c {
        load: Mutex::new(vec![0; MEMBERS as usize]),
    };

    // Verify: each picks valid members with the right distribution.
    let mut counts = [0usize; MEMBERS as usize];
    for _ in 0..MEMBERS * 100 {
        counts[rr.pick_cloned().unwrap() as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c == 100));
    let total_w: u32 = weights.iter().map(|w| w.1).sum();
    let mut counts = [0u32; MEMBERS as usize];
    for _ in 0..total_w {
        counts[sw.pick_cloned().unwrap() as usize] += 1;
        let _ = sw_mx.pick();
    }
    assert!(weights.iter().all(|&(m, w)| counts[m as usize] == w));
    assert!((0..1000u64)
        .all(|k| ring.pick_cloned(&k).is_some() && hr.read().unwrap().get(&k).is_some()));
    r.note("  verified: round robin even, SWRR exact per period, rings answer every key");

    for threads in [1, 2] {
        let suffix = format!("{threads}_thread{}", if threads > 1 { "s" } else { "" });
        add_rows(
            r,
            "balance",
            &format!("round_robin_{suffix}"),
            "ns_per_pick",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_thread_op(threads, OPS, &|| {
                        let mut p = rr.picker();
                        Box::new(move |_| {
                            let _ = black_box(p.pick().copied());
                        })
                    })
                }),
                ("latchfree_shared", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|_| {
                            let _ = black_box(rr.pick_cloned());
                        })
                    })
                }),
                ("mutex", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|_| {
                            let v = rr_mx.lock().unwrap();
                            let mut n = rr_next.lock().unwrap();
                            *n += 1;
                            black_box(v[*n % v.len()]);
                        })
                    })
                }),
            ],
        );
        add_rows(
            r,
            "balance",
            &format!("swrr_{suffix}"),
            "ns_per_pick",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_thread_op(threads, OPS, &|| {
                        let mut p = sw.picker();
                        Box::new(move |_| {
                            let _ = black_box(p.pick().copied());
                        })
                    })
                }),
                ("latchfree_shared", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|_| {
                            let _ = black_box(sw.pick_cloned());
                        })
                    })
                }),
                ("mutex", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|_| {
                            let _ = black_box(sw_mx.pick());
                        })
                    })
                }),
            ],
        );
        add_rows(
            r,
            "balance",
            &format!("hash_ring_{suffix}"),
            "ns_per_pick",
            Better::Lower,
            &[
                ("latchfree", &|| {
                    per_thread_op(threads, OPS, &|| {
                        let mut p = ring.picker();
                        Box::new(move |i| {
                            let _ = black_box(p.pick(&mix(i)).copied());
                        })
                    })
                }),
                ("latchfree_shared", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|i| {
                            let _ = black_box(ring.pick_cloned(&mix(i)));
                        })
                    })
                }),
                ("hashring_rwlock", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|i| {
                            let _ = black_box(hr.read().unwrap().get(&mix(i)).copied());
                        })
                    })
                }),
                ("hashring_mutex", &|| {
                    per_thread_op(threads, OPS, &|| {
                        Box::new(|i| {
                            let _ = black_box(hr_mx.lock().unwrap().get(&mix(i)).copied());
                        })
                    })
                }),
            ],
        );
        for pin in [true, false] {
            let scenario = format!(
                "p2c_pick_release_{suffix}{}",
                if pin { "" } else { "_unpinned" }
            );
            r.note(&format!("  {scenario}: loadavg {}", loadavg()));
            add_rows(
                r,
                "balance",
                &scenario,
                "ns_per_pick",
                Better::Lower,
                &[
                    ("latchfree", &|| {
                        per_thread_op_on(pin, threads, OPS, &|| {
                            let mut p = p2c.picker();
                            Box::new(move |i| {
                                let _ = black_box(p.pick_with(mix(i)));
                            })
                        })
                    }),
                    ("latchfree_shared", &|| {
                        per_thread_op_on(pin, threads, OPS, &|| {
                            Box::new(|i| {
                                let _ = black_box(p2c.pick_with(mix(i)));
                            })
                        })
                    }),
                    ("mutex", &|| {
                        per_thread_op_on(pin, threads, OPS, &|| {
                            Box::new(|i| {
                                let c = p2c_mx.pick(mix(i));
                                p2c_mx.done(black_box(c));
                            })
                        })
                    }),
                ],
            );
            if threads == 2 {
                target(
                    r,
                    &format!("{scenario} >= 3x mutex"),
                    "balance",
                    &scenario,
                    "mutex",
                    "latchfree",
                    3.0,
                );
            }
        }
    }
    churn(r);
}

/// Per-pick latency percentiles of two picking threads, with and without
/// a third thread changing the membership every 50 µs.
fn churn(r: &mut Report) {
    let rr = RoundRobin::new(0..MEMBERS);
    let mx = Mutex::new((0..MEMBERS).collect::<Vec<u32>>());
    let mx_next = std::sync::atomic::AtomicUsize::new(0);
    let clock = quanta::Clock::new();
    let picks = 200_000;
    let measure = |pick: &(dyn Fn() + Sync), change: Option<&(dyn Fn() + Sync)>| -> f64 {
        let stop = AtomicBool::new(false);
        let hist = std::thread::scope(|s| {
            if let Some(change) = change {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        change();
                        std::thread::sleep(Duration::from_micros(50));
                    }
                });
            }
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                        for _ in 0..picks {
                            let t0 = clock.raw();
                            pick();
                            let t1 = clock.raw();
                            h.saturating_record(clock.delta_as_nanos(t0, t1));
                        }
                        h
                    })
                })
                .collect();
            let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            for h in hs {
                all.add(h.join().unwrap()).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            all
        });
        hist.value_at_quantile(0.999) as f64
    };
    let flip = std::sync::atomic::AtomicU32::new(0);
    let lf_pick = || {
        let _ = black_box(rr.pick_cloned());
    };
    let lf_change = || {
        let k = flip.fetch_add(1, Ordering::Relaxed);
        if k % 2 == 0 {
            rr.add(MEMBERS + k)
        } else {
            rr.set(0..MEMBERS)
        }
    };
    let mx_pick = || {
        let v = mx.lock().unwrap();
        black_box(v[mx_next.fetch_add(1, Ordering::Relaxed) % v.len()]);
    };
    let mx_change = || {
        let mut v = mx.lock().unwrap();
        if v.len() == MEMBERS as usize {
            v.push(MEMBERS);
        } else {
            v.truncate(MEMBERS as usize);
        }
    };
    let mut lf_quiet = Vec::new();
    let mut lf_churn = Vec::new();
    let mut mx_quiet = Vec::new();
    let mut mx_churn = Vec::new();
    for _ in 0..ROUNDS {
        lf_quiet.push(measure(&lf_pick, None));
        lf_churn.push(measure(&lf_pick, Some(&lf_change)));
        mx_quiet.push(measure(&mx_pick, None));
        mx_churn.push(measure(&mx_pick, Some(&mx_change)));
    }
    let (lq, lc, mq, mc) = (
        median(&mut lf_quiet),
        median(&mut lf_churn),
        median(&mut mx_quiet),
        median(&mut mx_churn),
    );
    r.note(&format!(
        "  pick p99.9 ns, 2 pickers: latchfree quiet {lq:.0} churn {lc:.0} (ranges {:.0}..{:.0} / {:.0}..{:.0}); mutex quiet {mq:.0} churn {mc:.0}",
        lf_quiet[0], lf_quiet[ROUNDS - 1], lf_churn[0], lf_churn[ROUNDS - 1]
    ));
    r.add(
        "balance",
        "pick_p999_quiet",
        "latchfree",
        "p999_ns",
        lq,
        Better::Lower,
    );
    r.add(
        "balance",
        "pick_p999_quiet",
        "mutex",
        "p999_ns",
        mq,
        Better::Lower,
    );
    r.add(
        "balance",
        "pick_p999_membership_churn",
        "latchfree",
        "p999_ns",
        lc,
        Better::Lower,
    );
    r.add(
        "balance",
        "pick_p999_membership_churn",
        "mutex",
        "p999_ns",
        mc,
        Better::Lower,
    );
    // "Unchanged": churn's p99.9 within 25% of quiet's (timer resolution
    // and scheduling noise make a tighter bound flaky on a shared host).
    let verdict = if lc <= lq * 1.25 { "met" } else { "MISSED" };
    r.note(&format!(
        "target pick p99.9 unchanged under membership churn (<= 1.25x quiet): {:.2}x ({lc:.0} / {lq:.0} ns), {verdict}; loadavg {}",
        lc / lq,
        loadavg()
    ));
}
