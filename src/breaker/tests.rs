//! Unit tests of the breaker (also run under Miri).

use super::*;

const MS: u64 = 1_000_000;

fn fail(b: &Breaker<impl Observer>, now: u64) {
    b.guard_at(now).unwrap().failure();
}

#[test]
fn consecutive_failures_trip_and_a_probe_closes() {
    let b = Breaker::new(
        Config::new()
            .consecutive_failures(3)
            .failure_rate(0)
            .cool_down(10 * MS),
    );
    fail(&b, 0);
    fail(&b, 0);
    b.guard_at(0).unwrap().success(); // resets the streak
    fail(&b, 0);
    fail(&b, 0);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 0);
    assert_eq!(b.state(), State::Open);
    let Err(Rejected::Open { retry_at }) = b.try_acquire_at(MS) else {
        panic!()
    };
    assert!((10 * MS..12 * MS).contains(&retry_at), "{retry_at}");
    // Half-open: exactly one probe.
    let probe = b.guard_at(retry_at).unwrap();
    assert!(probe.is_probe());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        b.try_acquire_at(retry_at).unwrap_err(),
        Rejected::ProbesBusy
    );
    probe.success();
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.successes, m.failures, m.opened), (2, 5, 1));
    assert_eq!(m.window_calls, 0, "window reset on close");
}

#[test]
fn failure_rate_over_the_window() {
    let b = Breaker::new(
        Config::new()
            .consecutive_failures(0)
            .failure_rate(50)
            .min_calls(10)
            .window(1_000 * MS),
    );
    // 4 failures, 5 successes: below min_calls.
    for i in 0..9 {
        let g = b.guard_at(i * MS).unwrap();
        if i % 2 == 0 {
            g.success()
        } else {
            g.failure()
        }
    }
    assert_eq!(b.state(), State::Closed);
    fail(&b, 9 * MS); // 10 calls, 5 failures: 50 %
    assert_eq!(b.state(), State::Open);
}

#[test]
fn old_buckets_leave_the_window() {
    let b = Breaker::new(
        Config::new()
            .consecutive_failures(0)
            .failure_rate(50)
            .min_calls(4)
            .window(100 * MS),
    );
    for _ in 0..3 {
        fail(&b, 0);
    }
    for _ in 0..3 {
        b.guard_at(MS).unwrap().success();
    }
    // Much later: the old failures are out of the window.
    for t in 0..3 {
        b.guard_at(1_000 * MS + t).unwrap().success();
    }
    fail(&b, 1_000 * MS + 5);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window_calls, 4);
    assert_eq!(b.metrics().failures, 4);
}

#[test]
fn half_open_admits_at_most_n_and_a_failure_reopens() {
    let b = Breaker::new(
        Config::new()
            .consecutive_failures(1)
            .probes(2)
            .successes(2)
            .cool_down(MS),
    );
    fail(&b, 0);
    let t = 3 * MS;
    let p1 = b.guard_at(t).unwrap();
    let p2 = b.guard_at(t).unwrap();
    assert!(b.guard_at(t).is_err());
    p1.success();
    assert_eq!(b.state(), State::HalfOpen);
    drop(p2); // dropped without an outcome: a failure
    assert_eq!(b.state(), State::Open);
    // A stale probe of the old round changes nothing.
    let t2 = 10 * MS;
    let p3 = b.guard_at(t2).unwrap();
    assert!(p3.is_probe());
    p3.success();
    let p4 = b.guard_at(t2).unwrap();
    p4.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn stale_probe_is_ignored() {
    let b = Breaker::new(
        Config::new()
            .consecutive_failures(1)
            .probes(2)
            .successes(1)
            .cool_down(MS),
    );
    fail(&b, 0);
    let p1 = b.try_acquire_at(2 * MS).unwrap();
    let p2 = b.try_acquire_at(2 * MS).unwrap();
    b.record_at(p1, true, 2 * MS);
    assert_eq!(b.state(), State::Closed);
    b.record_at(p2, false, 2 * MS); // from the finished round
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn backwards_clock_does_not_panic_or_close() {
    let b = Breaker::new(Config::new().consecutive_failures(1).cool_down(5 * MS));
    fail(&b, 100 * MS);
    assert!(b.try_acquire_at(0).is_err());
    assert!(b.try_acquire_at(u64::MAX).is_ok() || b.state() != State::Closed);
    let b = Breaker::new(Config::new());
    for t in [5 * MS, 0, u64::MAX, 3] {
        b.guard_at(t).unwrap().success();
    }
    assert_eq!(b.metrics().successes, 4);
}

#[cfg(feature = "std")]
#[test]
fn panics_count_as_failures_and_observer_panics_are_safe() {
    extern crate std;
    use core::cell::Cell;
    use core::panic::AssertUnwindSafe;
    use std::panic::catch_unwind;

    let seen = Cell::new(0);
    let b = Breaker::with_observer(
        Config::new().consecutive_failures(1),
        |_: State, to: State| {
            seen.set(seen.get() + 1);
            if to == State::Open {
                panic!("observer");
            }
        },
    );
    // f panics -> failure -> trip -> observer panics during the unwind:
    // no abort, the original panic arrives, the breaker is open.
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.call_at(0, || -> Result<(), ()> { panic!("call") })
    }));
    let msg = r.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"call"));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().failures, 1);
    assert_eq!(seen.get(), 1);
}

#[cfg(feature = "std")]
#[test]
fn observer_panic_outside_unwind_reaches_caller_and_state_is_consistent() {
    extern crate std;
    use core::panic::AssertUnwindSafe;
    use std::panic::catch_unwind;
    let b = Breaker::with_observer(
        Config::new().consecutive_failures(1),
        |_: State, _: State| panic!("observer"),
    );
    let r = catch_unwind(AssertUnwindSafe(|| b.call_at(0, || Err::<(), _>(()))));
    assert!(r.is_err());
    assert_eq!(b.state(), State::Open);
    assert!(b.try_acquire_at(1).is_err());
}
