//! The std timer service: one-shot, periodic, cancel, shutdown.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::wheel::std_service::{MissedTick, TimerService};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[test]
fn after_runs_once_not_early_and_cancel_reports_truthfully() {
    let svc = TimerService::new();
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    svc.after(Duration::from_millis(30), move || {
        tx.send(Instant::now()).unwrap()
    })
    .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = Arc::clone(&ran);
    let t = svc
        .after(Duration::from_millis(40), move || {
            r2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(t.cancel());
    assert!(!t.cancel());
    let at = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(at.duration_since(start) >= Duration::from_millis(30));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    // A fired one-shot cannot be cancelled, and says so.
    let (tx, rx) = mpsc::channel();
    let t = svc
        .after(Duration::ZERO, move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!t.cancel());
}

#[test]
fn every_runs_repeatedly_without_overlap_until_cancelled() {
    let svc = TimerService::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let (r2, a2) = (Arc::clone(&runs), Arc::clone(&active));
    let t = svc
        .every(Duration::from_millis(2), MissedTick::Skip, move || {
            assert_eq!(a2.fetch_add(1, Ordering::SeqCst), 0, "overlapping runs");
            std::thread::sleep(Duration::from_millis(3));
            r2.fetch_add(1, Ordering::SeqCst);
            a2.fetch_sub(1, Ordering::SeqCst);
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(t.cancel());
    assert!(!t.cancel());
    std::thread::sleep(Duration::from_millis(20));
    let n = runs.load(Ordering::SeqCst);
    assert!(n >= 5);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(runs.load(Ordering::SeqCst), n, "ran after cancel");
}

#[test]
fn shutdown_reports_pending_and_refuses_new_work() {
    let svc = TimerService::new();
    for _ in 0..3 {
        svc.after(Duration::from_secs(3600), || panic!("must not run"))
            .unwrap();
    }
    let inner = Arc::new(AtomicUsize::new(0));
    let i2 = Arc::clone(&inner);
    assert_eq!(svc.shutdown(), 3);
    assert_eq!(svc.shutdown(), 0);
    let refused = svc.after(Duration::ZERO, || ()).unwrap_err();
    (refused.0)(); // the callback comes back to the caller
    assert!(svc
        .every(Duration::from_millis(1), MissedTick::Burst, || ())
        .is_err());
    drop(i2);
    assert_eq!(Arc::strong_count(&inner), 1);
    let svc = TimerService::new();
    drop(svc); // dropping also stops the driver thread
}
