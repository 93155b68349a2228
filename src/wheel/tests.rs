use super::*;
use crate::queue::arena::Fixed;

type W<const N: usize> = Wheel<u64, Fixed<N>>;

#[test]
fn overhead_per_timer_is_at_most_32_bytes() {
    use crate::queue::arena::Slot;
    type S<T> = Slot<levels_link::Link, T>;
    assert!(core::mem::size_of::<S<u64>>() - core::mem::size_of::<u64>() <= 32);
    assert!(core::mem::size_of::<S<[u64; 4]>>() - 32 <= 32);
    assert!(core::mem::size_of::<S<()>>() <= 32);
}

mod levels_link {
    pub(crate) use super::super::levels::Link;
}

#[test]
fn fires_exactly_at_deadline_never_early() {
    let mut w: W<64> = Wheel::new_fixed(WheelConfig::new());
    let deadlines = [
        0u64,
        1,
        63,
        64,
        65,
        4095,
        4096,
        4097,
        262_143,
        262_144,
        1 << 30,
    ];
    for (n, &d) in deadlines.iter().enumerate() {
        w.insert(d, n as u64).unwrap();
    }
    let mut t = 0u64;
    let mut seen = 0;
    // Walk through every deadline and one tick before it.
    let mut stops: [u64; 22] = [0; 22];
    for (n, &d) in deadlines.iter().enumerate() {
        stops[2 * n] = d.saturating_sub(1);
        stops[2 * n + 1] = d;
    }
    stops.sort_unstable();
    for &s in &stops {
        t = t.max(s);
        w.advance_to(t);
        while let Some(e) = w.pop_expired() {
            assert!(e.deadline <= t, "early: {} at {}", e.deadline, t);
            assert_eq!(e.deadline, t, "late: {} at {}", e.deadline, t);
            seen += 1;
        }
    }
    assert_eq!(seen, deadlines.len());
    assert!(w.is_empty());
}

#[test]
fn past_deadline_fires_on_next_advance() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    w.advance_to(1000);
    let k = w.insert(10, 7).unwrap();
    assert_eq!(w.next_expiration(), Some(1000));
    assert!(w.pop_expired().is_none());
    w.advance_to(1000);
    let e = w.pop_expired().unwrap();
    assert_eq!((e.key, e.value, e.deadline), (k, 7, 10));
}

#[test]
fn far_deadlines_saturate_and_still_fire_on_time() {
    for levels in 1..=MAX_LEVELS as u8 {
        let mut w: W<8> = Wheel::new_fixed(WheelConfig::new().levels(levels));
        let far = [u64::MAX, u64::MAX - 1, 1 << 62, (1 << 40) + 3];
        for &d in &far {
            w.insert(d, d).unwrap();
        }
        let mut t = 0u64;
        let mut fired = 0;
        let mut sorted = far;
        sorted.sort_unstable();
        for &d in &sorted {
            w.advance_to(d - 1);
            assert!(w.pop_expired().is_none(), "early at levels {levels}");
            t = t.max(d);
            w.advance_to(t);
            let e = w.pop_expired();
            assert!(
                e.is_some(),
                "levels {levels} deadline {d:#x} missing, wheel {w:?}"
            );
            assert_eq!(e.unwrap().deadline, d);
            fired += 1;
        }
        assert_eq!(fired, far.len());
    }
}

#[test]
fn cancel_and_reset_are_generation_checked() {
    let mut w: W<2> = Wheel::new_fixed(WheelConfig::new());
    let a = w.insert(100, 1).unwrap();
    let b = w.insert(200, 2).unwrap();
    assert_eq!(w.insert(300, 3), Err(3));
    assert_eq!(w.capacity(), 2);
    assert!(w.reset(a, 150));
    assert!(w.reset(a, 151)); // same slot: fast path
    assert_eq!(w.deadline(a), Some(151));
    assert_eq!(w.cancel(a), Some(1));
    assert_eq!(w.cancel(a), None);
    assert!(!w.reset(a, 10));
    let c = w.insert(50, 4).unwrap(); // reuses a's slot
    assert_eq!(c.raw().index, a.raw().index);
    assert_eq!(w.cancel(a), None);
    w.advance_to(500);
    let got: [u64; 2] = [
        w.pop_expired().unwrap().value,
        w.pop_expired().unwrap().value,
    ];
    assert_eq!(got, [4, 2]);
    assert_eq!(w.cancel(b), None);
    assert_eq!(w.cancel(c), None);
}

#[test]
fn expired_but_untaken_can_be_cancelled_or_rearmed() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    let a = w.insert(5, 1).unwrap();
    let b = w.insert(5, 2).unwrap();
    w.advance_to(10);
    assert_eq!(w.cancel(a), Some(1));
    assert!(w.reset(b, 20));
    assert!(w.pop_expired().is_none());
    w.advance_to(19);
    assert!(w.pop_expired().is_none());
    w.advance_to(20);
    assert_eq!(w.pop_expired().unwrap().value, 2);
}

#[test]
fn tick_shift_rounds_up() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new().tick_shift(4));
    w.insert(17, 1).unwrap(); // tick 2 = time 32
    w.advance_to(31);
    assert!(w.pop_expired().is_none());
    w.advance_to(32);
    assert_eq!(w.pop_expired().unwrap().value, 1);
}

#[test]
fn const_static_wheel() {
    static W0: Wheel<u32, Fixed<4>> = Wheel::new_fixed(WheelConfig::new());
    assert!(W0.is_empty());
    let mut w: Wheel<u32, Fixed<0>> = Wheel::new_fixed(WheelConfig::new());
    assert_eq!(w.insert(1, 1), Err(1));
    assert_eq!(w.capacity(), 0);
}

#[test]
fn next_expiration_is_a_lower_bound() {
    let mut w: W<4> = Wheel::new_fixed(WheelConfig::new());
    assert_eq!(w.next_expiration(), None);
    w.insert(10_000, 1).unwrap();
    let mut n = 0;
    while let Some(t) = w.next_expiration() {
        assert!(t <= 10_000);
        w.advance_to(t);
        n += 1;
        if w.pop_expired().is_some() {
            break;
        }
    }
    assert!(n <= 3);
    assert_eq!(w.now(), 10_000);
}

#[cfg(feature = "alloc")]
#[test]
fn growable_drops_payloads_once() {
    use alloc::rc::Rc;
    let probe = Rc::new(());
    let mut w: Wheel<Rc<()>, crate::queue::arena::Growable> = Wheel::new(WheelConfig::new());
    const N: u64 = if cfg!(miri) { 64 } else { 10_000 };
    let mut keys = alloc::vec::Vec::new();
    for i in 0..N {
        keys.push(w.insert(i * 7, probe.clone()).unwrap());
    }
    for k in keys.iter().step_by(3) {
        assert!(w.cancel(*k).is_some());
    }
    w.advance_to(N * 3);
    let drained = w.drain_expired().count();
    assert!(drained > 0);
    assert_eq!(
        Rc::strong_count(&probe) as u64,
        1 + N - drained as u64 - N.div_ceil(3)
    );
    drop(w);
    assert_eq!(Rc::strong_count(&probe), 1);
}
