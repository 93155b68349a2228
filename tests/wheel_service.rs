//! The std timer service: one-shot, periodic, cancel, shutdown.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::wheel::{MissedTick, TimerService};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[test]
fn schedule_runs_once_not_early_and_cancel_reports_truthfully() {
    let svc = TimerService::new();
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    svc.schedule(
        move || tx.send(Instant::now()).unwrap(),
        Duration::from_millis(30),
    )
    .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = Arc::clone(&ran);
    let t = svc
        .schedule(
            move || {
                r2.fetch_add(1, Ordering::SeqCst);
            },
            Duration::from_millis(40),
        )
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
        .schedule(move || tx.send(()).unwrap(), Duration::ZERO)
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!t.cancel());
}

#[test]
fn schedule_every_runs_repeatedly_without_overlap_until_cancelled() {
    let svc = TimerService::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let (r2, a2) = (Arc::clone(&runs), Arc::clone(&active));
    let t = svc
        .schedule_every(
            move || {
                assert_eq!(a2.fetch_add(1, Ordering::SeqCst), 0, "overlapping runs");
                std::thread::sleep(Duration::from_millis(3));
                r2.fetch_add(1, Ordering::SeqCst);
                a2.fetch_sub(1, Ordering::SeqCst);
            },
            Duration::from_millis(2),
            MissedTick::Skip,
        )
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
        svc.schedule(|| panic!("must not run"), Duration::from_secs(3600))
            .unwrap();
    }
    let inner = Arc::new(AtomicUsize::new(0));
    let i2 = Arc::clone(&inner);
    assert_eq!(svc.shutdown(), 3);
    assert_eq!(svc.shutdown(), 0);
    let refused = svc.schedule(|| (), Duration::ZERO).unwrap_err();
    (refused.0)(); // the callback comes back to the caller
    assert!(svc
        .schedule_every(|| (), Duration::from_millis(1), MissedTick::Burst)
        .is_err());
    drop(i2);
    assert_eq!(Arc::strong_count(&inner), 1);
    let svc = TimerService::new();
    drop(svc); // dropping also stops the driver thread
}

#[test]
fn cancel_after_a_series_ended_reports_nothing_stopped() {
    // The trap issue 12 names: `cancel` said `true` after the schedule had
    // returned `None` (nothing was left to stop).
    let svc = TimerService::new();
    let (tx, rx) = mpsc::channel();
    let t = svc
        .schedule_series(move || tx.send(()).unwrap(), Duration::ZERO, |_, _| None)
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    after_running_jobs(&svc);
    assert!(
        !t.cancel(),
        "cancel claimed to stop a series that had ended"
    );
    // A panicking schedule ends the series the same way.
    let (tx, rx) = mpsc::channel();
    let t = svc
        .schedule_series(
            move || tx.send(()).unwrap(),
            Duration::ZERO,
            |_, _| -> Option<Instant> { panic!("schedule failed") },
        )
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    after_running_jobs(&svc);
    assert!(!t.cancel());
}

/// Returns once every job handed to the service's (single, in-order)
/// worker before this call has finished.
fn after_running_jobs(svc: &TimerService) {
    let (tx, rx) = mpsc::channel();
    svc.schedule(move || tx.send(()).unwrap(), Duration::ZERO)
        .unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
}

#[test]
fn cancel_after_shutdown_reports_nothing_stopped() {
    let svc = TimerService::new();
    let once = svc
        .schedule(|| panic!("must not run"), Duration::from_secs(3600))
        .unwrap();
    let every = svc
        .schedule_every(
            || panic!("must not run"),
            Duration::from_secs(3600),
            MissedTick::Skip,
        )
        .unwrap();
    assert_eq!(svc.shutdown(), 2);
    assert!(!once.cancel(), "the one-shot was dropped by the shutdown");
    assert!(!every.cancel(), "the series was dropped by the shutdown");
}

#[test]
fn stateful_callbacks_need_only_send() {
    // `FnMut + Send`, not `Sync`: a `Cell` and a plain counter, no atomics.
    use std::cell::Cell;
    let svc = TimerService::new();
    let (tx, rx) = mpsc::channel();
    let seen = Cell::new(0u32); // `Send`, not `Sync`
    let mut planned = Vec::new();
    let t = svc
        .schedule_series_at(
            move || {
                seen.set(seen.get() + 1);
                tx.send(seen.get()).unwrap();
            },
            Instant::now(),
            move |at, _| {
                planned.push(at);
                (planned.len() < 3).then(|| at + Duration::from_millis(1))
            },
        )
        .unwrap();
    let runs: Vec<u32> = rx.iter().take(3).collect();
    assert_eq!(runs, [1, 2, 3]);
    let _ = t;
}
