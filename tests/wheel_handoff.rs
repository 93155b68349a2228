//! The wheel's cross-thread hand-off under real threads: producers
//! schedule and cancel while the owner polls; every timer is fired or
//! cancelled exactly once.
#![cfg(feature = "std")]

use latchfree::wheel::shared::{Driver, Entry};
use latchfree::wheel::{Growable, Wheel, WheelConfig};

#[test]
fn threads_submit_and_cancel_while_owner_polls() {
    const N: u32 = if cfg!(miri) { 50 } else { 20_000 };
    let wheel: Wheel<Entry<u32>, Growable> = Wheel::new(WheelConfig::new());
    let (mut d, s) = Driver::new(wheel);
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut cancelled = Vec::new();
                for i in 0..N {
                    let h = s.insert_at(t * N + i, u64::from(i % 64)).unwrap();
                    if i % 3 == 0 && h.cancel() {
                        cancelled.push(t * N + i);
                    }
                }
                cancelled
            })
        })
        .collect();
    let mut fired = Vec::new();
    let mut now = 0;
    while fired.len() < 2 * N as usize {
        while let Some(f) = d.poll_expired(now) {
            fired.push(f.value);
        }
        now += 1;
        let done = producers.iter().all(|p| p.is_finished());
        if done && d.is_empty() {
            d.apply_commands();
            if d.is_empty() {
                break;
            }
        }
    }
    let mut cancelled: Vec<u32> = producers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    cancelled.extend(&fired);
    cancelled.sort_unstable();
    let n = cancelled.len();
    cancelled.dedup();
    assert_eq!(n, cancelled.len(), "fired and cancelled overlap");
    assert_eq!(n, 2 * N as usize, "a timer was lost");
}
