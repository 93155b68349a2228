#![cfg(latchfree_loom)]
//! Loom models of the wheel's cross-thread hand-off: cancel racing expiry
//! (exactly one wins, and the canceller knows which) and submission racing
//! the owner's advance (nothing lost, nothing delivered twice).

use latchfree::queue::arena::Growable;
use latchfree::wheel::shared::{Driver, Entry, TimerState};
use latchfree::wheel::{Wheel, WheelConfig};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

type W = Wheel<Entry<usize>, Growable>;

#[test]
fn cancel_vs_expiry_has_exactly_one_winner() {
    loom::model(|| {
        let (mut driver, sub) = Driver::new(W::new(WheelConfig::new()));
        let h = sub.schedule(0, 7).unwrap();
        let h2 = h.clone();
        let canceller = thread::spawn(move || h2.cancel());
        let fired = driver.poll(0).map(|f| f.value);
        let cancelled = canceller.join().unwrap();
        // Whatever the interleaving, one more poll settles everything.
        let fired = fired.or_else(|| driver.poll(0).map(|f| f.value));
        assert!(
            fired.is_some() != cancelled,
            "fired {fired:?}, cancelled {cancelled}"
        );
        let expect = if cancelled {
            TimerState::Cancelled
        } else {
            TimerState::Fired
        };
        assert_eq!(h.state(), expect);
        assert!(driver.poll(1).is_none());
        assert!(driver.is_empty());
    });
}

#[test]
fn submit_vs_advance_loses_nothing() {
    loom::model(|| {
        let (mut driver, sub) = Driver::new(W::new(WheelConfig::new()));
        let sub2 = sub.clone();
        let delivered = Arc::new(AtomicUsize::new(0));
        let p1 = thread::spawn(move || {
            sub2.schedule(0, 1).unwrap();
        });
        sub.schedule(0, 2).unwrap();
        let mut got = 0usize;
        // Poll while the producer may still be pushing.
        for _ in 0..2 {
            while let Some(f) = driver.poll(0) {
                got |= f.value;
            }
            thread::yield_now();
        }
        p1.join().unwrap();
        while let Some(f) = driver.poll(0) {
            assert_eq!(got & f.value, 0, "delivered twice");
            got |= f.value;
        }
        delivered.store(got, Ordering::Relaxed);
        assert_eq!(got, 3, "a submission was lost");
    });
}

#[test]
fn submit_after_driver_drop_gives_value_back() {
    loom::model(|| {
        let (driver, sub) = Driver::new(W::new(WheelConfig::new()));
        let t = thread::spawn(move || match sub.schedule(5, 1) {
            Ok(h) => {
                // Accepted before the drop: dropped with the driver, never
                // handed out; a cancel cannot lose to a fire that never comes.
                assert!(h.cancel() || h.state() != TimerState::Fired);
            }
            Err(e) => assert_eq!(e.into_inner(), 1),
        });
        drop(driver);
        t.join().unwrap();
    });
}
