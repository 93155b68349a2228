#![cfg(latchfree_loom)]
//! Loom models of the wheel's cross-thread hand-off: cancel racing expiry
//! (exactly one wins, and the canceller knows which) and submission racing
//! the owner's advance (nothing lost, nothing delivered twice); and of the
//! timer service's periodic series: a run (panicking or not) racing a
//! cancel and the re-arm that follows it, and a last run racing a cancel
//! (a cancel after the series ended stopped nothing and says so).

use std::panic::{catch_unwind, AssertUnwindSafe};

use latchfree::__loom::{Run, Series};
use latchfree::wheel::shared::{Driver, Entry, TimerState};
use latchfree::wheel::{Growable, Wheel, WheelConfig};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::sync::Mutex;
use loom::thread;

type W = Wheel<Entry<usize>, Growable>;

#[test]
fn cancel_vs_expiry_has_exactly_one_winner() {
    loom::model(|| {
        let (mut driver, sub) = Driver::new(W::new(WheelConfig::new()));
        let h = sub.insert_at(7, 0).unwrap();
        let h2 = h.clone();
        let canceller = thread::spawn(move || h2.cancel());
        let fired = driver.poll_expired(0).map(|f| f.value);
        let cancelled = canceller.join().unwrap();
        // Whatever the interleaving, one more poll settles everything.
        let fired = fired.or_else(|| driver.poll_expired(0).map(|f| f.value));
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
        assert!(driver.poll_expired(1).is_none());
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
            sub2.insert_at(1, 0).unwrap();
        });
        sub.insert_at(2, 0).unwrap();
        let mut got = 0usize;
        // Poll while the producer may still be pushing.
        for _ in 0..2 {
            while let Some(f) = driver.poll_expired(0) {
                got |= f.value;
            }
            thread::yield_now();
        }
        p1.join().unwrap();
        while let Some(f) = driver.poll_expired(0) {
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
        let t = thread::spawn(move || match sub.insert_at(1, 5) {
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

/// An armed run of a periodic series, as the model sees it: cancelled or
/// not (the service's is a timer handle in the wheel).
#[derive(Default)]
struct Armed(AtomicBool);

/// Arms the series' next run, recording it in `armed`.
fn arm(series: &Series<Arc<Armed>>, armed: &Mutex<Vec<Arc<Armed>>>) {
    series.arm(|| {
        let h = Arc::new(Armed::default());
        armed.lock().unwrap().push(h.clone());
        Some(h)
    });
}

/// A run whose callback panics races a cancel: the panic never leaves the
/// series stuck; once the cancel returned, no run is left armed (the
/// re-arm either saw the cancel or was cancelled by it) and none starts.
#[test]
fn periodic_cancel_vs_panicking_run_and_rearm() {
    loom::model(|| {
        let series = Arc::new(Series::new());
        let armed = Arc::new(Mutex::new(Vec::new()));
        arm(&series, &armed);
        let (s, a) = (series.clone(), armed.clone());
        let runner =
            thread::spawn(
                move || match s.run(|| std::panic::panic_any("run failed"), || true) {
                    Run::Cancelled => false,
                    Run::Ran { rearm, panic } => {
                        assert!(panic.is_some(), "the panic was not handed back");
                        if rearm {
                            arm(&s, &a);
                        }
                        true
                    }
                },
            );
        assert!(series.cancel(|h| {
            h.0.store(true, Ordering::Relaxed);
            true
        }));
        let ran = runner.join().unwrap();
        assert_eq!(series.panics(), usize::from(ran));
        let armed = armed.lock().unwrap();
        assert!(
            armed[1..].iter().all(|h| h.0.load(Ordering::Relaxed)),
            "a run stays armed behind a cancelled series"
        );
        assert!(
            matches!(
                series.run(|| panic!("ran after cancel"), || true),
                Run::Cancelled
            ),
            "a run started after the cancel"
        );
        assert!(!series.cancel(|_| true));
    });
}

/// Without a cancel, a panicking run ends like any other: the series asks
/// to be re-armed and its next run starts, even with the second run racing
/// a late cancel.
#[test]
fn periodic_panicking_run_keeps_the_schedule() {
    loom::model(|| {
        let series = Arc::new(Series::new());
        let armed = Arc::new(Mutex::new(Vec::new()));
        arm(&series, &armed);
        let first = catch_unwind(AssertUnwindSafe(|| {
            series.run(|| std::panic::panic_any("run failed"), || true)
        }));
        let Ok(Run::Ran {
            rearm: true,
            panic: Some(_),
        }) = first
        else {
            panic!("a panicking run stopped the series");
        };
        arm(&series, &armed);
        let s = series.clone();
        let canceller = thread::spawn(move || {
            s.cancel(|h| {
                h.0.store(true, Ordering::Relaxed);
                true
            })
        });
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let second = series.run(
            move || {
                r.fetch_add(1, Ordering::Relaxed);
            },
            || true,
        );
        assert!(canceller.join().unwrap());
        match second {
            // The cancel won the start: the run never began.
            Run::Cancelled => assert_eq!(runs.load(Ordering::Relaxed), 0),
            // The run began first: it ran once and wants no re-arm unless
            // the cancel came after it ended.
            Run::Ran { panic, .. } => {
                assert!(panic.is_none());
                assert_eq!(runs.load(Ordering::Relaxed), 1);
            }
        }
        assert_eq!(series.panics(), 1);
    });
}

/// The series' last run (its schedule says "no more") races a cancel:
/// the cancel returns `true` only if it came before the run ended, in which
/// case it stopped the run from starting or found it still running; once
/// the run ended the series is over and the cancel returns `false`. Either
/// way nothing is armed afterwards and a later cancel returns `false`.
#[test]
fn periodic_last_run_vs_cancel() {
    loom::model(|| {
        let series = Arc::new(Series::new());
        let armed = Arc::new(Mutex::new(Vec::new()));
        arm(&series, &armed);
        let ended = Arc::new(AtomicBool::new(false));
        let (s, e) = (series.clone(), ended.clone());
        let runner = thread::spawn(move || match s.run(|| (), || false) {
            Run::Cancelled => false,
            Run::Ran { rearm, panic } => {
                assert!(!rearm && panic.is_none());
                e.store(true, Ordering::SeqCst);
                true
            }
        });
        let cancelled = series.cancel(|h| {
            h.0.store(true, Ordering::Relaxed);
            true
        });
        let ran = runner.join().unwrap();
        if !ran {
            assert!(cancelled, "the run was stopped, so the cancel did it");
        }
        if !cancelled {
            assert!(ran, "a cancel that stopped nothing came after the run");
        }
        assert!(!series.cancel(|_| true), "cancelled or ended: final");
        assert_eq!(armed.lock().unwrap().len(), 1, "nothing re-armed");
        let _ = ended.load(Ordering::SeqCst);
    });
}

/// A series whose next run cannot be armed (the service is gone) ends: a
/// cancel then stops nothing.
#[test]
fn periodic_failed_arm_ends_the_series() {
    loom::model(|| {
        let series: Arc<Series<Arc<Armed>>> = Arc::new(Series::new());
        let s = series.clone();
        let armer = thread::spawn(move || s.arm(|| None));
        let cancelled = series.cancel(|_| true);
        armer.join().unwrap();
        // Either the cancel came first (and the arm saw it), or the arm
        // failed first and the series had ended.
        assert!(!series.cancel(|_| true));
        let _ = cancelled;
        assert!(matches!(
            series.run(|| panic!("ran after the end"), || true),
            Run::Cancelled
        ));
    });
}
