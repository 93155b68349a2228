use super::*;
use crate::arena::Growable;
use crate::queue::DelayQueue;
use crate::wheel::{Wheel, WheelConfig};

#[test]
fn cancel_vs_fire_has_one_winner() {
    let wheel: Wheel<Entry<u32>, Growable> = Wheel::new(WheelConfig::new());
    let (mut d, s) = Driver::new(wheel);
    let a = s.insert_at(1, 10).unwrap();
    let b = s.insert_at(2, 10).unwrap();
    let c = s.insert_at(3, 20).unwrap();
    assert!(c.cancel());
    assert!(!c.cancel());
    assert!(d.poll_expired(5).is_none());
    assert_eq!(d.len(), 2);
    assert!(b.cancel());
    assert_eq!(d.poll_expired(10).map(|f| f.value), Some(1));
    assert!(!a.cancel());
    assert_eq!(a.state(), TimerState::Fired);
    assert!(d.poll_expired(100).is_none());
    assert!(d.is_empty());
    assert!(!a.reset_at(50));
    drop(d);
    assert_eq!(s.insert_at(9, 1).unwrap_err().into_inner(), 9);
}

#[test]
fn reset_from_handle_and_delay_queue_core() {
    let q: DelayQueue<Entry<u32>, Growable> = DelayQueue::new();
    let (mut d, s) = Driver::new(q);
    let a = s.insert_at(1, 10).unwrap();
    d.apply_commands();
    assert!(a.reset_at(30));
    assert!(d.poll_expired(29).is_none());
    assert_eq!(
        d.poll_expired(30).map(|f| (f.deadline, f.value)),
        Some((30, 1))
    );
}
