#![cfg(latchfree_loom)]
//! Loom models of the breaker's state word: the half-open probe limit
//! under racing callers, racing probe outcomes, and racing trips (one
//! transition, one observer call).

mod support;

use latchfree::breaker::{Breaker, Config, Rejected, State};
use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use loom::sync::Arc;
use loom::thread;
use support::model;

const MS: u64 = 1 << 20;

/// An open breaker whose cool-down is over at `2 * MS`.
fn tripped(config: Config) -> Breaker {
    let b = Breaker::new(config.consecutive_failures(1).cool_down(MS));
    b.guard_at(0).unwrap().failure();
    assert_eq!(b.state(), State::Open);
    b
}

#[test]
fn half_open_admits_at_most_the_probe_limit() {
    model(|| {
        let b = Arc::new(tripped(Config::new().probes(1)));
        let b2 = b.clone();
        let t = thread::spawn(move || b2.try_acquire_at(2 * MS).is_ok() as u32);
        let mine = b.try_acquire_at(2 * MS);
        let theirs = t.join().unwrap();
        assert_eq!(mine.is_ok() as u32 + theirs, 1, "exactly one probe");
        if let Err(e) = mine {
            assert_eq!(e, Rejected::ProbesBusy);
        }
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.metrics().rejected, 1);
    });
}

#[test]
fn racing_probe_outcomes_settle() {
    model(|| {
        let b = Arc::new(tripped(Config::new().probes(2).successes(1)));
        let p1 = b.try_acquire_at(2 * MS).unwrap();
        let p2 = b.try_acquire_at(2 * MS).unwrap();
        let b2 = b.clone();
        let t = thread::spawn(move || b2.record_at(p1, true, 2 * MS));
        b.record_at(p2, false, 2 * MS);
        t.join().unwrap();
        // Whichever landed first decided the round; the other was stale.
        let m = b.metrics();
        match b.state() {
            State::Closed => assert_eq!(m.opened, 1),
            State::Open => assert_eq!(m.opened, 2),
            State::HalfOpen => panic!("a settled round stayed half-open"),
        }
        assert_eq!((m.successes, m.failures), (1, 2));
    });
}

#[test]
fn racing_trips_make_one_transition() {
    model(|| {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let b = Arc::new(Breaker::with_observer(
            Config::new().consecutive_failures(2).failure_rate(0),
            move |from: State, to: State| {
                assert_eq!((from, to), (State::Closed, State::Open));
                c.fetch_add(1, Relaxed);
            },
        ));
        let b2 = b.clone();
        let t = thread::spawn(move || {
            b2.guard_at(0).unwrap().failure();
        });
        b.guard_at(0).unwrap().failure();
        t.join().unwrap();
        assert_eq!(b.state(), State::Open);
        assert_eq!(calls.load(Relaxed), 1);
        assert_eq!(b.metrics().opened, 1);
    });
}
