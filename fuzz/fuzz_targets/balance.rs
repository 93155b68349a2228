//! The balancers against sequential models over arbitrary sequences of
//! picks and membership changes (add, remove, set, reweight, leases taken
//! and dropped):
//!
//! - `HashRing` (shared pick and a per-thread picker held throughout):
//!   every pick is the first virtual node at or after the key's hash,
//!   computed the slow way from the documented placement; an `add` moves
//!   keys only to the new member, a `remove` only the removed member's.
//! - `Rendezvous`: every pick is a current member; an `add` moves keys
//!   only to the new member, a `remove` only the removed member's.
//! - `RoundRobin` (shared counter and a picker's own cursor) and
//!   `fixed::RoundRobin` (capacity 4: `Full`, `NotFound`): exact
//!   rotations; any `len` consecutive shared picks between changes hit
//!   every member once.
//! - `Weighted`: the exact nginx sequence (restarted by every change),
//!   `ZeroWeight`/`NotFound` refused without a change; its picker picks
//!   current members.
//! - `LeastLoaded`: every pick is the less loaded of the two members the
//!   random bits name, and `in_flight` matches the model's lease counts
//!   through removals (a removed member's leases stay valid).
#![no_main]
use std::hash::{Hash, Hasher};

use arbitrary::Arbitrary;
use latchfree::balance::{
    fixed, stable_hash, BalanceError, HashRing, LeastLoaded, Rendezvous, RoundRobin, StableHasher,
    Weighted,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Add(u8, u8),
    Remove(u8),
    Set(Vec<u8>),
    Reweight(u8, u8),
    Pick(u64),
    PickerPick(u64),
    Lease(u64),
    Release(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    vnodes: u8,
    initial: Vec<(u8, u8)>,
    ops: Vec<Op>,
}

/// At most this many members per balancer (more adds are skipped), so a
/// run stays fast under the sanitizer.
const MAX_MEMBERS: usize = 16;

/// Members are small so that adds, removes and duplicates collide often.
fn member(m: u8) -> u8 {
    m % 12
}

/// The ring's documented placement the slow way: virtual node `v` of
/// member `m` at `StableHasher(m, v as u32)`, sorted (ties by member
/// index).
fn ring_points(members: &[u8], vnodes: u32) -> Vec<(u64, u32)> {
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

/// A hash goes to the first point at or after it, wrapping.
fn ring_owner(members: &[u8], points: &[(u64, u32)], hash: u64) -> Option<u8> {
    let at = points.partition_point(|p| p.0 < hash);
    let (_, i) = *points.get(at).or(points.first())?;
    Some(members[i as usize])
}

/// nginx's smooth weighted round robin, run live for one period of the
/// unreduced weights (the reduced period repeated).
fn nginx_period(weights: &[(u8, u32)]) -> Vec<u8> {
    let total: i64 = weights.iter().map(|w| i64::from(w.1)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut seq = Vec::new();
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += i64::from(w.1);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        seq.push(weights[best].0);
    }
    seq
}

/// Probe keys for the movement checks.
const PROBES: u64 = 64;

fn owners<F: Fn(u64) -> Option<u8>>(pick: F) -> Vec<Option<u8>> {
    (0..PROBES)
        .map(|k| pick(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect()
}

/// After adding `added`: a key moved only to it. After removing
/// `removed`: only its keys moved.
fn check_movement(
    before: &[Option<u8>],
    after: &[Option<u8>],
    added: Option<u8>,
    removed: Option<u8>,
) {
    for (b, a) in before.iter().zip(after) {
        if b == a || b.is_none() {
            continue;
        }
        if let Some(x) = added {
            assert_eq!(*a, Some(x), "a key moved between old members on add");
        }
        if let Some(x) = removed {
            assert_eq!(*b, Some(x), "a key of a remaining member moved on remove");
        }
    }
}

fuzz_target!(|input: Input| {
    let vnodes = u32::from(input.vnodes % 8) + 1;
    let initial: Vec<(u8, u32)> = input
        .initial
        .iter()
        .take(8)
        .map(|&(m, w)| (member(m), u32::from(w % 6) + 1))
        .collect();
    let names: Vec<u8> = initial.iter().map(|m| m.0).collect();

    let ring = HashRing::new(names.iter().copied(), vnodes);
    let rdv = Rendezvous::new(names.iter().copied());
    let rr = RoundRobin::new(names.iter().copied());
    let fx: fixed::RoundRobin<u8, 4> = fixed::RoundRobin::new();
    let sw = Weighted::new(initial.iter().copied()).unwrap();
    let p2c = LeastLoaded::new(names.iter().copied());

    // Models.
    let mut members = names.clone(); // ring, round robin (which have `set`)
    let mut rdv_members = names.clone();
    let mut points = ring_points(&members, vnodes);
    let mut fx_members: Vec<u8> = Vec::new();
    let mut weights = initial.clone();
    let mut rr_next = 0usize;
    let mut fx_next = 0usize;
    let mut sw_next = 0usize;
    let mut sw_seq = nginx_period(&weights);
    // P2C: slots (member, id) and in-flight counts by slot id.
    let mut slots: Vec<(u8, usize)> = names.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    let mut loads: Vec<usize> = vec![0; slots.len()];
    let mut leases = Vec::new();

    let mut ring_picker = ring.picker();
    let mut rr_picker = rr.picker();
    let mut rr_cursor = rr_next;
    rr_next += 1;
    let mut sw_picker = sw.picker();
    sw_next += 1;
    let mut since_change = Vec::new();

    for op in input.ops.iter().take(200) {
        match *op {
            Op::Add(m, w) => {
                let (m, w) = (member(m), u32::from(w % 6));
                let sizes = [members.len(), rdv_members.len(), slots.len(), weights.len()];
                if sizes.iter().any(|&n| n >= MAX_MEMBERS) {
                    continue;
                }
                let (rb, db) = (
                    owners(|h| ring.pick_cloned(&h)),
                    owners(|h| rdv.pick_cloned(&h)),
                );
                ring.add(m);
                rdv.add(m);
                rr.add(m);
                p2c.add(m);
                // A duplicate sits on the same points: nothing visible moves.
                check_movement(&rb, &owners(|h| ring.pick_cloned(&h)), Some(m), None);
                check_movement(&db, &owners(|h| rdv.pick_cloned(&h)), Some(m), None);
                members.push(m);
                points = ring_points(&members, vnodes);
                rdv_members.push(m);
                slots.push((m, loads.len()));
                loads.push(0);
                let r = fx.add(m);
                if fx_members.len() == 4 {
                    assert_eq!(r, Err(BalanceError::Full));
                } else {
                    assert_eq!(r, Ok(()));
                    fx_members.push(m);
                }
                let r = sw.add(m, w);
                if w == 0 {
                    assert_eq!(r, Err(BalanceError::ZeroWeight));
                } else {
                    assert_eq!(r, Ok(()));
                    weights.push((m, w));
                    sw_seq = nginx_period(&weights);
                    sw_next = 0;
                }
                since_change.clear();
            }
            Op::Remove(m) => {
                let m = member(m);
                let (rb, db) = (
                    owners(|h| ring.pick_cloned(&h)),
                    owners(|h| rdv.pick_cloned(&h)),
                );
                let found = |at: Option<usize>| at.map(|_| ()).ok_or(BalanceError::NotFound);
                let at = members.iter().position(|&x| x == m);
                assert_eq!(ring.remove(&m), found(at));
                assert_eq!(rr.remove(&m), found(at));
                if let Some(at) = at {
                    members.remove(at);
                    points = ring_points(&members, vnodes);
                    check_movement(&rb, &owners(|h| ring.pick_cloned(&h)), None, Some(m));
                }
                let at = rdv_members.iter().position(|&x| x == m);
                assert_eq!(rdv.remove(&m), found(at));
                if let Some(at) = at {
                    rdv_members.remove(at);
                    check_movement(&db, &owners(|h| rdv.pick_cloned(&h)), None, Some(m));
                }
                let at = slots.iter().position(|x| x.0 == m);
                assert_eq!(p2c.remove(&m), found(at));
                if let Some(at) = at {
                    slots.remove(at);
                }
                let fat = fx_members.iter().position(|&x| x == m);
                assert_eq!(fx.remove(&m), fat.map(|_| ()).ok_or(BalanceError::NotFound));
                if let Some(at) = fat {
                    fx_members.remove(at);
                }
                let wat = weights.iter().position(|x| x.0 == m);
                assert_eq!(sw.remove(&m), wat.map(|_| ()).ok_or(BalanceError::NotFound));
                if let Some(at) = wat {
                    weights.remove(at);
                    sw_seq = nginx_period(&weights);
                    sw_next = 0;
                }
                since_change.clear();
            }
            Op::Set(ref list) => {
                let list: Vec<u8> = list.iter().take(8).map(|&m| member(m)).collect();
                ring.set(list.iter().copied());
                rr.set(list.iter().copied());
                members = list;
                points = ring_points(&members, vnodes);
                since_change.clear();
            }
            Op::Reweight(m, w) => {
                let (m, w) = (member(m), u32::from(w % 6));
                let at = weights.iter().position(|x| x.0 == m);
                let r = sw.reweight(&m, w);
                match at {
                    None => assert_eq!(r, Err(BalanceError::NotFound)),
                    Some(_) if w == 0 => assert_eq!(r, Err(BalanceError::ZeroWeight)),
                    Some(at) => {
                        assert_eq!(r, Ok(()));
                        weights[at].1 = w;
                        sw_seq = nginx_period(&weights);
                        sw_next = 0;
                    }
                }
            }
            Op::Pick(h) => {
                let want = ring_owner(&members, &points, stable_hash(&h));
                assert_eq!(ring.pick_cloned(&h), want, "ring, key {h}");
                let got = rdv.pick_cloned(&h);
                assert_eq!(got.is_some(), !rdv_members.is_empty());
                assert!(got.map_or(true, |g| rdv_members.contains(&g)));
                let want = if members.is_empty() {
                    None
                } else {
                    rr_next += 1;
                    Some(members[(rr_next - 1) % members.len()])
                };
                assert_eq!(rr.pick_cloned(), want, "round robin");
                if let Some(m) = want {
                    since_change.push(m);
                    if since_change.len() == members.len() {
                        let mut seen = since_change.clone();
                        let mut all = members.clone();
                        seen.sort_unstable();
                        all.sort_unstable();
                        assert_eq!(seen, all, "a round missed a member");
                        since_change.clear();
                    }
                }
                let want = if fx_members.is_empty() {
                    None
                } else {
                    fx_next += 1;
                    Some(fx_members[(fx_next - 1) % fx_members.len()])
                };
                assert_eq!(fx.pick(), want, "fixed round robin");
                let want = if sw_seq.is_empty() {
                    None
                } else {
                    sw_next += 1;
                    Some(sw_seq[(sw_next - 1) % sw_seq.len()])
                };
                assert_eq!(sw.pick_cloned(), want, "weighted");
            }
            Op::PickerPick(h) => {
                let want = ring_owner(&members, &points, h);
                assert_eq!(
                    ring_picker.pick_hash(h).copied(),
                    want,
                    "ring picker, hash {h:#x}"
                );
                let want = if members.is_empty() {
                    None
                } else {
                    let len = members.len();
                    let i = if rr_cursor < len {
                        rr_cursor
                    } else {
                        rr_cursor % len
                    };
                    rr_cursor = i + 1;
                    Some(members[i])
                };
                assert_eq!(rr_picker.pick().copied(), want, "round robin picker");
                let got = sw_picker.pick().copied();
                assert_eq!(got.is_some(), !weights.is_empty());
                assert!(got.map_or(true, |g| weights.iter().any(|w| w.0 == g)));
            }
            Op::Lease(random) => {
                let lease = p2c.pick_with(random);
                let n = slots.len();
                let want = match n {
                    0 => None,
                    1 => Some(0),
                    _ => {
                        let i = ((random as u32 as u64 * n as u64) >> 32) as usize;
                        let mut j = (((random >> 32) * (n as u64 - 1)) >> 32) as usize;
                        if j >= i {
                            j += 1;
                        }
                        Some(if loads[slots[j].1] < loads[slots[i].1] {
                            j
                        } else {
                            i
                        })
                    }
                };
                assert_eq!(lease.is_some(), want.is_some());
                if let (Some(lease), Some(at)) = (lease, want) {
                    assert_eq!(*lease.member(), slots[at].0, "p2c chose the other member");
                    loads[slots[at].1] += 1;
                    leases.push((lease, slots[at].1));
                }
            }
            Op::Release(k) => {
                if !leases.is_empty() {
                    let (lease, id) = leases.swap_remove(usize::from(k) % leases.len());
                    drop(lease);
                    loads[id] -= 1;
                }
            }
        }
        let want: Vec<(u8, usize)> = slots.iter().map(|&(m, id)| (m, loads[id])).collect();
        assert_eq!(p2c.in_flight(), want, "in-flight counts");
    }
});
