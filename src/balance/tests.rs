//! Unit and distribution tests of the balancers (also run under Miri,
//! with smaller sizes).

use alloc::vec::Vec;

use super::*;

const KEYS: u32 = if cfg!(miri) { 300 } else { 20_000 };

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn swrr_reproduces_nginx() {
    // The sequence from nginx's commit introducing smooth weighting.
    let w = Weighted::new([('a', 5), ('b', 1), ('c', 1)]).unwrap();
    let seq: Vec<char> = (0..14).map(|_| w.pick_cloned().unwrap()).collect();
    assert_eq!(
        seq.iter().collect::<alloc::string::String>(),
        "aabacaaaabacaa"
    );
    // Weights with a common factor give the reduced period.
    let w = Weighted::new([('x', 4), ('y', 2), ('z', 2)]).unwrap();
    let seq: alloc::string::String = (0..4).map(|_| w.pick_cloned().unwrap()).collect();
    assert_eq!(seq, "xyzx");
    // Reweight restarts a period; zero weights are refused.
    w.reweight(&'x', 1).unwrap();
    let seq: alloc::string::String = (0..5).map(|_| w.pick_cloned().unwrap()).collect();
    assert_eq!(seq, "yzxyz");
    assert_eq!(w.reweight(&'x', 0), Err(BalanceError::ZeroWeight));
    assert_eq!(w.remove(&'q'), Err(BalanceError::NotFound));
    assert_eq!(
        Weighted::new([(1, u32::MAX), (2, 1)]).err(),
        Some(BalanceError::PeriodTooLong)
    );
}

#[test]
fn swrr_matches_a_direct_nginx_run() {
    // The table's precomputed period against the per-pick algorithm run
    // step by step for random weights.
    let mut seed = 0x1234_5678_9abc_def1;
    for _ in 0..if cfg!(miri) { 2 } else { 50 } {
        let n = (xorshift(&mut seed) % 6 + 1) as usize;
        let weights: Vec<u32> = (0..n)
            .map(|_| (xorshift(&mut seed) % 9 + 1) as u32)
            .collect();
        let w = Weighted::new(weights.iter().copied().enumerate()).unwrap();
        let total: i64 = weights.iter().map(|&x| x as i64).sum();
        let mut current = alloc::vec![0i64; n];
        for _ in 0..2 * total {
            let mut best = 0;
            for i in 0..n {
                current[i] += weights[i] as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            assert_eq!(w.pick_cloned(), Some(best));
        }
    }
}

#[test]
fn ring_moves_about_one_nth_on_add() {
    for n in [3u32, 10] {
        let ring = HashRing::new(0..n, 160);
        let before: Vec<u32> = (0..KEYS).map(|k| ring.pick_cloned(&k).unwrap()).collect();
        // Each member's share is near 1/n.
        for m in 0..n {
            let share = before.iter().filter(|&&x| x == m).count() as f64 / KEYS as f64;
            assert!(
                (share - 1.0 / n as f64).abs() < if cfg!(miri) { 0.8 } else { 0.3 } / n as f64,
                "share {share}"
            );
        }
        ring.add(n);
        let mut moved = 0;
        for k in 0..KEYS {
            let now = ring.pick_cloned(&k).unwrap();
            if now != before[k as usize] {
                assert_eq!(now, n, "a key moved between old members");
                moved += 1;
            }
        }
        let frac = moved as f64 / KEYS as f64;
        let ideal = 1.0 / (n + 1) as f64;
        assert!(
            (frac - ideal).abs() < if cfg!(miri) { 0.7 } else { 0.25 } * ideal,
            "moved {frac}, ideal {ideal}"
        );
        // Removing it again restores every key.
        ring.remove(&n).unwrap();
        assert!((0..KEYS).all(|k| ring.pick_cloned(&k) == Some(before[k as usize])));
    }
}

/// The ring's documented placement, computed the slow way: every virtual
/// node `v` of member `m` at `StableHasher(m, v as u32)`, sorted (ties by
/// member index).
fn naive_points(members: &[u32], vnodes: u32) -> Vec<(u64, u32)> {
    use core::hash::{Hash, Hasher};
    let mut points: Vec<(u64, u32)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for v in 0..vnodes {
            let mut h = StableHasher::new();
            m.hash(&mut h);
            h.write_u32(v);
            points.push((h.finish(), i as u32));
        }
    }
    points.sort_unstable();
    points
}

/// A hash goes to the first point at or after it, wrapping to the first.
fn naive_owner(members: &[u32], points: &[(u64, u32)], hash: u64) -> Option<u32> {
    let at = points.partition_point(|p| p.0 < hash);
    let (_, i) = *points.get(at).or(points.first())?;
    Some(members[i as usize])
}

/// The bucket-indexed lookup (shared and per-thread picker) agrees with
/// the naive search on every point, its neighbours, the ends of the hash
/// space and random hashes, for ring sizes around the index's powers of
/// two (0, 1, 2 points, a bucket per point and more).
#[test]
fn ring_lookup_matches_the_naive_search() {
    let mut rng = 0x1234_5678_9abc_def1u64;
    let sizes: &[(u32, u32)] = if cfg!(miri) {
        &[(0, 4), (1, 1), (1, 2), (2, 1), (3, 5)]
    } else {
        &[(0, 4), (1, 1), (1, 2), (2, 1), (3, 5), (4, 16), (16, 160)]
    };
    for &(n, vnodes) in sizes {
        let members: Vec<u32> = (0..n).map(|m| m * 7 + 1).collect();
        let points = naive_points(&members, vnodes);
        let ring = HashRing::new(members.iter().copied(), vnodes);
        let mut p = ring.picker();
        let mut hashes = alloc::vec![0, 1, u64::MAX - 1, u64::MAX, 1 << 63, (1 << 63) - 1];
        for &(pt, _) in &points {
            hashes.extend([pt.wrapping_sub(1), pt, pt.wrapping_add(1)]);
        }
        let randoms = if cfg!(miri) { 20 } else { 2_000 };
        hashes.extend((0..randoms).map(|_| xorshift(&mut rng)));
        let guard = ring.collector().register().pin();
        for h in hashes {
            let want = naive_owner(&members, &points, h);
            assert_eq!(p.pick_hash(h).copied(), want, "hash {h:#x}, {n} members");
            assert_eq!(ring.pick_hash_in(h, &guard).copied(), want);
        }
    }
}

#[test]
fn rendezvous_moves_only_the_new_members_keys() {
    let r = Rendezvous::new(0..5u32);
    let before: Vec<u32> = (0..KEYS).map(|k| r.pick_cloned(&k).unwrap()).collect();
    r.add(5);
    let mut moved = 0;
    for k in 0..KEYS {
        let now = r.pick_cloned(&k).unwrap();
        if now != before[k as usize] {
            assert_eq!(now, 5);
            moved += 1;
        }
    }
    let frac = moved as f64 / KEYS as f64;
    // About four standard deviations of a binomial share at this size.
    let tolerance = if cfg!(miri) { 0.09 } else { 0.02 };
    assert!((frac - 1.0 / 6.0).abs() < tolerance, "{frac}");
}

#[test]
fn p2c_keeps_max_load_near_the_mean() {
    let n = if cfg!(miri) { 10 } else { 100 };
    let per = if cfg!(miri) { 5 } else { 100 };
    let lb = LeastLoaded::new(0..n);
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let leases: Vec<Lease<u32>> = (0..n * per)
        .map(|_| lb.pick_with(xorshift(&mut seed)).unwrap())
        .collect();
    let loads = lb.in_flight();
    let max = loads.iter().map(|l| l.1).max().unwrap();
    // Two choices: max ≤ mean + ln ln n / ln 2 + O(1) (≈ 2.2 + c for
    // n = 100). One random choice would give about mean + 30 here.
    assert!(max <= per as usize + 4, "max load {max} for mean {per}");
    drop(leases);
    assert!(lb.in_flight().iter().all(|l| l.1 == 0));
}

#[test]
fn p2c_keeps_counts_across_membership_changes() {
    let lb = LeastLoaded::new(["a", "b"]);
    let held: Vec<_> = (0..4)
        .map(|i| lb.pick_with(i * 0x1_0000_0001).unwrap())
        .collect();
    lb.add("c");
    lb.remove(&"a").unwrap();
    let total: usize = lb.in_flight().iter().map(|l| l.1).sum();
    let on_a = held.iter().filter(|l| *l.member() == "a").count();
    assert_eq!(total, 4 - on_a);
    drop(held);
    assert!(lb.in_flight().iter().all(|l| l.1 == 0));
    assert!(LeastLoaded::<u8>::new([]).pick_with(1).is_none());
}

#[test]
fn round_robin_cycles_and_changes() {
    let rr = RoundRobin::new([1, 2, 3]);
    let picks: Vec<i32> = (0..6).map(|_| rr.pick_cloned().unwrap()).collect();
    assert_eq!(picks, [1, 2, 3, 1, 2, 3]);
    rr.set([7]);
    assert_eq!(rr.pick_cloned(), Some(7));
    rr.remove(&7).unwrap();
    assert_eq!(rr.pick_cloned(), None);
    assert_eq!(rr.remove(&7), Err(BalanceError::NotFound));
}

#[test]
fn fixed_round_robin() {
    let lb: fixed::RoundRobin<u8, 2> = fixed::RoundRobin::new();
    assert_eq!(lb.pick(), None);
    lb.add(1).unwrap();
    lb.add(2).unwrap();
    assert_eq!(lb.add(3), Err(BalanceError::Full));
    assert_eq!(
        [lb.pick(), lb.pick(), lb.pick()],
        [Some(1), Some(2), Some(1)]
    );
    lb.remove(&1).unwrap();
    assert_eq!(lb.remove(&1), Err(BalanceError::NotFound));
    assert_eq!(lb.len(), 1);
    assert_eq!(lb.pick(), Some(2));
}

/// nginx's loop, run directly: the reference for the pickers.
fn nginx_sequence(weights: &[i64], picks: usize) -> Vec<usize> {
    let total: i64 = weights.iter().sum();
    let mut current = alloc::vec![0i64; weights.len()];
    (0..picks)
        .map(|_| {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += w;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            best
        })
        .collect()
}

#[test]
fn round_robin_pickers_are_fair_overall() {
    let n = 7usize;
    let rr = RoundRobin::new(0..n);
    let mut pickers: Vec<_> = (0..3).map(|_| rr.picker()).collect();
    // Successive pickers start at successive members.
    let firsts: Vec<usize> = pickers.iter_mut().map(|p| *p.pick().unwrap()).collect();
    assert_eq!(firsts, [0, 1, 2]);
    // Uneven, interleaved use: each picker is an exact rotation of its
    // own, and the totals stay within one per picker of the even share.
    let mut counts = alloc::vec![0usize; n];
    for &c in &firsts {
        counts[c] += 1;
    }
    let mut state = 0x9e37_79b9u64;
    let mut last: Vec<usize> = firsts.clone();
    let mut total = firsts.len();
    for _ in 0..KEYS {
        let k = (xorshift(&mut state) % 3) as usize;
        let m = *pickers[k].pick().unwrap();
        assert_eq!(m, (last[k] + 1) % n, "picker {k} left its rotation");
        last[k] = m;
        counts[m] += 1;
        total += 1;
    }
    for &c in &counts {
        assert!(
            (c as f64 - total as f64 / n as f64).abs() < pickers.len() as f64,
            "{counts:?}"
        );
    }
}

#[test]
fn round_robin_picker_follows_membership_changes() {
    let rr = RoundRobin::new([1u32, 2, 3]);
    let mut p = rr.picker();
    assert_eq!(p.pick(), Some(&1));
    rr.set([7u32, 8]);
    // A change is seen at the next pick, even with the pin held.
    for _ in 0..100 {
        assert!(matches!(p.pick(), Some(7 | 8)));
    }
    rr.set([]);
    assert_eq!(p.pick(), None);
    rr.add(5);
    p.refresh();
    assert_eq!(p.pick(), Some(&5));
}

#[test]
fn weighted_pickers_walk_nginx_exactly_and_share_fairly() {
    let weights = [5i64, 1, 3, 2, 4];
    let w = Weighted::new(weights.iter().enumerate().map(|(i, &x)| (i, x as u32))).unwrap();
    let period: usize = weights.iter().sum::<i64>() as usize;
    let nginx = nginx_sequence(&weights, period);
    let mut pickers: Vec<_> = (0..4).map(|_| w.picker()).collect();
    let mut counts = alloc::vec![0usize; weights.len()];
    let mut seen: Vec<Vec<usize>> = alloc::vec![Vec::new(); pickers.len()];
    let mut state = 7u64;
    for _ in 0..KEYS {
        let k = (xorshift(&mut state) % pickers.len() as u64) as usize;
        let m = *pickers[k].pick().unwrap();
        seen[k].push(m);
        counts[m] += 1;
    }
    // Each picker yields nginx's sequence, rotated to its starting offset
    // (picker k starts at position k).
    for (k, s) in seen.iter().enumerate() {
        for (i, &m) in s.iter().enumerate() {
            assert_eq!(m, nginx[(k + i) % period], "picker {k} pick {i}");
        }
    }
    let total = KEYS as f64;
    for (m, &c) in counts.iter().enumerate() {
        let share = total * weights[m] as f64 / period as f64;
        assert!(
            (c as f64 - share).abs() < (pickers.len() as i64 * weights[m]) as f64,
            "member {m}: {c} vs {share}"
        );
    }
    // A change restarts each picker's walk of the new period at its offset.
    w.reweight(&0, 1).unwrap();
    let nginx = nginx_sequence(&[1, 1, 3, 2, 4], 11);
    let seq: Vec<usize> = (0..11).map(|_| *pickers[2].pick().unwrap()).collect();
    let expect: Vec<usize> = (0..11).map(|i| nginx[(2 + i) % 11]).collect();
    assert_eq!(seq, expect);
}

#[test]
fn least_loaded_picker_leases_count_and_release() {
    let lb = LeastLoaded::new(0..4u32);
    let mut p = lb.picker();
    let mut state = 3u64;
    for _ in 0..KEYS {
        let lease = p.pick_with(xorshift(&mut state)).unwrap();
        let m = *lease.member();
        assert_eq!(lb.in_flight()[m as usize].1, 1);
        drop(lease);
    }
    assert!(lb.in_flight().iter().all(|m| m.1 == 0));
    // With one member held busy by an owned lease (another shard's
    // count), the picker's choice among the two sampled avoids it once
    // it has forgotten the loads it cached.
    let busy = lb.pick_with(0).unwrap();
    let b = *busy.member();
    p.refresh();
    for _ in 0..100 {
        let lease = p.pick_with(xorshift(&mut state)).unwrap();
        assert_ne!(*lease.member(), b);
        drop(lease);
        // Every choice pairs two members; the busy one loses each pair
        // it appears in, so it is never picked while busy.
    }
    drop(busy);
    p.refresh();
    // A removed member's lease stays valid while the pin holds it.
    let lease = p.pick_with(0).unwrap();
    let m = *lease.member();
    lb.remove(&m).unwrap();
    assert_eq!(*lease.member(), m);
    drop(lease);
    assert!(lb.in_flight().iter().all(|x| x.0 != m));
}

/// A picker sees the other shards' counts at most `P2C_STALE_AFTER` of
/// its own picks late: after that many picks it avoids a member another
/// shard holds busy, without a refresh.
#[test]
fn least_loaded_picker_staleness_is_bounded() {
    let lb = LeastLoaded::new(0..2u32);
    let mut p = lb.picker();
    let mut state = 11u64;
    for _ in 0..10 {
        drop(p.pick_with(xorshift(&mut state)).unwrap());
    }
    let busy = lb.pick_with(0).unwrap();
    let b = *busy.member();
    for _ in 0..P2C_STALE_AFTER {
        drop(p.pick_with(xorshift(&mut state)).unwrap());
    }
    for _ in 0..200 {
        let lease = p.pick_with(xorshift(&mut state)).unwrap();
        assert_ne!(
            *lease.member(),
            b,
            "still stale after {P2C_STALE_AFTER} picks"
        );
    }
    drop(busy);
}

/// Every release decrements the very count its pick incremented (member
/// and shard), whichever thread drops the lease and whether it is dropped
/// by a panic's unwinding: with pickers on two threads and shared leases
/// handed between threads, each shard's count of each member equals the
/// leases alive on it at every checkpoint, and all are zero at the end.
#[cfg(feature = "std")]
#[test]
fn least_loaded_releases_land_on_their_own_count() {
    use core::panic::AssertUnwindSafe;
    use std::panic::catch_unwind;
    use std::sync::{Barrier, Mutex};

    let rounds = if cfg!(miri) { 4 } else { 300 };
    let lb = LeastLoaded::new(0..5u32);
    // Round by round: (member, shard) of each live lease.
    let held: Mutex<Vec<(u32, usize)>> = Mutex::new(Vec::new());
    let sync = Barrier::new(3);
    let shared: Mutex<Vec<Lease<u32>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (lb, held, sync, shared) = (&lb, &held, &sync, &shared);
            s.spawn(move || {
                let mut p = lb.picker();
                let shard = p.shard();
                assert!(shard == 1 || shard == 2, "the first two pickers made");
                let mut state = 0x1234_5678 + t;
                for round in 0..rounds {
                    let r = xorshift(&mut state);
                    let lease = p.pick_with(r).unwrap();
                    let owned = lb.pick_with(xorshift(&mut state)).unwrap();
                    {
                        let mut h = held.lock().unwrap();
                        h.push((*lease.member(), shard));
                        h.push((*owned.member(), 0));
                    }
                    shared.lock().unwrap().push(owned);
                    sync.wait(); // main checks the counts
                    sync.wait();
                    if round % 3 == 0 {
                        // Released by unwinding.
                        let r = catch_unwind(AssertUnwindSafe(move || {
                            let _held = lease;
                            panic!("call failed");
                        }));
                        assert!(r.is_err());
                    } else {
                        drop(lease);
                    }
                    sync.wait(); // main drops the shared leases, checks zero
                    sync.wait();
                }
            });
        }
        for _ in 0..rounds {
            sync.wait();
            let mut expect = [[0usize; P2C_SHARDS]; 5];
            for &(m, k) in held.lock().unwrap().iter() {
                expect[m as usize][k] += 1;
            }
            for (m, counts) in lb.shard_counts() {
                assert_eq!(counts, expect[m as usize], "member {m}");
            }
            sync.wait();
            sync.wait();
            // The other threads' shared leases, dropped here.
            shared.lock().unwrap().clear();
            held.lock().unwrap().clear();
            for (m, counts) in lb.shard_counts() {
                assert_eq!(counts, [0; P2C_SHARDS], "member {m}");
            }
            sync.wait();
        }
    });
    assert!(lb.in_flight().iter().all(|l| l.1 == 0));
}
