//! Fault injection for the batcher and the task queue (issue 11): every
//! user callback (handler, error callback, weigher, an item's `Drop`, a
//! panic payload's `Drop`) panics on its k-th call, for every k up to a
//! bound. Whatever panics, the flushers survive: `flush` and `close` return,
//! every accepted item reaches the handler or the error callback exactly
//! once, later pushes are still delivered, and drop counters show that no
//! item leaked or was dropped twice.
//!
//! The faults are `support/fault.rs`'s, shared by every fault test and the
//! soak: a `Fault` planned to fire on call k, counted across threads.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/fault.rs"]
mod fault;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use fault::{is_injected, quiet_injected_panics, Bomb, Fault, Plan, Tally};
use latchfree::batch::{BatchError, Batcher, TaskError, TaskQueue};

/// Items per run.
const ITEMS: usize = if cfg!(miri) { 12 } else { 60 };
/// The k-th call panics, for k in `1..=KS`.
const KS: usize = if cfg!(miri) { 3 } else { 24 };

/// A shared fault that fires on the `k`-th call (1-based), and never again.
fn on_call(k: usize) -> Arc<Fault> {
    Arc::new(Fault::with(Plan::OnCall(k as u64)))
}

/// An item that counts its drops and, when given a fault, may panic in
/// `Drop` (after counting).
struct Item {
    id: usize,
    drops: Arc<Tally>,
    fault: Option<Arc<Fault>>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops.see(self.id as u64);
        if let Some(f) = &self.fault {
            f.hit("Item::drop");
        }
    }
}

/// Runs `f` on its own thread; fails if it is still running after `secs`
/// (a dead flusher shows up as a `flush` or `close` that never returns).
fn within(secs: u64, what: String, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = channel();
    let h = thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => panic::resume_unwind(h.join().unwrap_err()),
        Err(RecvTimeoutError::Timeout) => panic!("{what}: hung for {secs} s"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Site {
    Handler,
    OnError,
    /// The error callback panics with a payload whose `Drop` panics.
    OnErrorBomb,
    Weigher,
    ItemDrop,
}

/// One batcher run: `ITEMS` items pushed (a flush every 7), the `site`
/// callback panicking on its `k`-th call, then a close. Every item is
/// handled (the handler returned `Ok` with it) or reported (the error
/// callback got it) exactly once, and dropped exactly once.
fn batcher_run(site: Site, k: usize, flushers: usize) {
    let fault = on_call(k);
    let (handled, reported, drops) = (
        Arc::new(Tally::new(ITEMS)),
        Arc::new(Tally::new(ITEMS)),
        Arc::new(Tally::new(ITEMS)),
    );
    let (f1, f2, f3) = (fault.clone(), fault.clone(), fault.clone());
    let (h, r) = (handled.clone(), reported.clone());
    let b = Batcher::builder::<&'static str>()
        .max_items(4)
        .max_delay(Duration::from_micros(100))
        .flushers(flushers)
        .queue_capacity(8)
        .max_bytes(12, move |it: &Item| {
            if site == Site::Weigher {
                f1.hit("weigher");
            }
            it.id % 5
        })
        .on_error(move |e, items: &mut Vec<Item>| {
            let _ = e;
            for it in items.iter() {
                r.see(it.id as u64);
            }
            match site {
                Site::OnError => {
                    f2.hit("error callback");
                }
                Site::OnErrorBomb => {
                    f2.hit_with(|| Bomb);
                }
                _ => {}
            }
        })
        .build(move |batch: &mut Vec<Item>| {
            if site == Site::Handler {
                f3.hit("handler");
            }
            if batch.iter().any(|it| it.id % 11 == 10) {
                return Err("an item the handler refuses");
            }
            for it in batch.iter() {
                h.see(it.id as u64);
            }
            Ok(())
        })
        .unwrap();
    let b = Arc::new(b);
    let b2 = b.clone();
    let (d2, f4) = (drops.clone(), fault.clone());
    within(
        10,
        format!("{site:?} k={k} flushers={flushers}"),
        move || {
            for id in 0..ITEMS {
                let item = Item {
                    id,
                    drops: d2.clone(),
                    fault: (site == Site::ItemDrop).then(|| f4.clone()),
                };
                b2.push(item).map_err(|_| ()).expect("accepted");
                if id % 7 == 6 {
                    b2.flush();
                }
            }
            b2.flush();
            b2.close();
        },
    );
    let m = b.metrics();
    drop(b);
    for id in 0..ITEMS {
        let id64 = id as u64;
        let (hd, rp, dr) = (handled.count(id64), reported.count(id64), drops.count(id64));
        assert_eq!(
            (hd + rp, dr),
            (1, 1),
            "{site:?} k={k} flushers={flushers}: item {id} handled {hd}, reported {rp}, dropped {dr}"
        );
    }
    assert_eq!(m.accepted, ITEMS);
    assert_eq!(m.delivered + m.unweighed, ITEMS, "{m:?}");
    if k == 1 {
        assert!(fault.fired() > 0, "{site:?}: the fault never fired");
    }
}

fn sweep_batcher(site: Site) {
    quiet_injected_panics();
    for flushers in [1, 2] {
        for k in 1..=KS {
            batcher_run(site, k, flushers);
        }
    }
}

#[test]
fn batcher_survives_a_panicking_handler() {
    sweep_batcher(Site::Handler);
}

#[test]
fn batcher_survives_a_panicking_error_callback() {
    sweep_batcher(Site::OnError);
}

#[test]
fn batcher_survives_a_panic_payload_that_panics_on_drop() {
    sweep_batcher(Site::OnErrorBomb);
}

/// Issue 11, failure 3: a panicking weigher killed the flusher (its items
/// dropped unreported, `flush` hung, later pushes never delivered).
#[test]
fn batcher_survives_a_panicking_weigher() {
    sweep_batcher(Site::Weigher);
}

/// Issue 11, failure 3: a panicking `T::drop` while a shipped batch is
/// cleared killed the flusher the same way.
#[test]
fn batcher_survives_an_item_drop_that_panics() {
    sweep_batcher(Site::ItemDrop);
}

/// The weigher's victim goes to the error callback, alone, with the
/// weigher's panic; the batches around it are unaffected.
#[test]
fn a_weigher_panic_reports_that_item() {
    quiet_injected_panics();
    let fault = on_call(3);
    let f = fault.clone();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (g, delivered) = (got.clone(), Arc::new(AtomicUsize::new(0)));
    let d = delivered.clone();
    let b = Batcher::builder::<()>()
        .max_items(100)
        .max_delay(Duration::from_secs(60))
        .max_bytes(1000, move |_: &u32| {
            f.hit("weigher");
            1
        })
        .on_error(move |e, items: &mut Vec<u32>| {
            let panicked = matches!(e, BatchError::Unweighed(ref p) if is_injected(&**p));
            g.lock().unwrap().push((panicked, items.clone()));
        })
        .build(move |batch: &mut Vec<u32>| {
            d.fetch_add(batch.len(), Ordering::SeqCst);
            Ok::<(), ()>(())
        })
        .unwrap();
    let b = Arc::new(b);
    let b2 = b.clone();
    within(10, "weigher panic".into(), move || {
        for x in 0..5 {
            b2.push(x).unwrap();
        }
        b2.flush();
        b2.push(5).unwrap();
        b2.flush();
    });
    assert_eq!(*got.lock().unwrap(), [(true, vec![2])]);
    assert_eq!(delivered.load(Ordering::SeqCst), 5);
    let m = b.metrics();
    assert_eq!(
        (m.accepted, m.delivered, m.unweighed, m.failed, m.panicked),
        (6, 5, 1, 1, 1)
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum TaskSite {
    Handler,
    OnError,
    OnErrorBomb,
    ValueDrop,
}

/// One task-queue run: the handler is called exactly once per pushed value
/// and each value dropped once, whatever panics; the counters add up.
fn task_run(site: TaskSite, k: usize, workers: usize) {
    let fault = on_call(k);
    let (calls, drops, errors) = (
        Arc::new(Tally::new(ITEMS)),
        Arc::new(Tally::new(ITEMS)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (f1, f2, c, e) = (fault.clone(), fault.clone(), calls.clone(), errors.clone());
    let q = TaskQueue::builder()
        .workers(workers)
        .queue_capacity(8)
        .on_error(move |err: TaskError<usize>| {
            e.fetch_add(1, Ordering::SeqCst);
            drop(err);
            match site {
                TaskSite::OnError => {
                    f1.hit("error callback");
                }
                TaskSite::OnErrorBomb => {
                    f1.hit_with(|| Bomb);
                }
                _ => {}
            }
        })
        .build(move |it: Item| {
            c.see(it.id as u64);
            if site == TaskSite::Handler {
                f2.hit("handler");
            }
            if it.id % 9 == 8 {
                return Err(it.id);
            }
            Ok(())
        })
        .unwrap();
    let q = Arc::new(q);
    let q2 = q.clone();
    let (d2, f3) = (drops.clone(), fault.clone());
    within(10, format!("{site:?} k={k} workers={workers}"), move || {
        for id in 0..ITEMS {
            let item = Item {
                id,
                drops: d2.clone(),
                fault: (site == TaskSite::ValueDrop).then(|| f3.clone()),
            };
            q2.push(item).map_err(|_| ()).expect("accepted");
            if id % 7 == 6 {
                q2.flush();
            }
        }
        q2.close();
    });
    let m = q.metrics();
    drop(q);
    for id in 0..ITEMS {
        assert_eq!(
            (calls.count(id as u64), drops.count(id as u64)),
            (1, 1),
            "{site:?} k={k} workers={workers}: item {id}"
        );
    }
    assert_eq!(m.pushed, ITEMS);
    assert_eq!(m.handled + m.failed + m.panicked, ITEMS, "{m:?}");
    assert_eq!(errors.load(Ordering::SeqCst), m.failed + m.panicked);
}

fn sweep_tasks(site: TaskSite) {
    quiet_injected_panics();
    for workers in [1, 2] {
        for k in 1..=KS {
            task_run(site, k, workers);
        }
    }
}

#[test]
fn task_queue_survives_a_panicking_handler() {
    sweep_tasks(TaskSite::Handler);
}

#[test]
fn task_queue_survives_a_panicking_error_callback() {
    sweep_tasks(TaskSite::OnError);
}

#[test]
fn task_queue_survives_a_panic_payload_that_panics_on_drop() {
    sweep_tasks(TaskSite::OnErrorBomb);
}

#[test]
fn task_queue_survives_a_value_drop_that_panics() {
    sweep_tasks(TaskSite::ValueDrop);
}

/// The items' own panics stay contained even when the batcher is dropped
/// without a close (its `Drop` closes and drains).
#[test]
fn dropping_a_batcher_with_panicking_items_loses_nothing() {
    quiet_injected_panics();
    let drops = Arc::new(Tally::new(ITEMS));
    let fault = on_call(2);
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let b = Batcher::builder::<()>()
        .max_items(3)
        .max_delay(Duration::from_secs(60))
        .build(move |batch: &mut Vec<Item>| {
            h.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    for id in 0..ITEMS {
        b.push(Item {
            id,
            drops: drops.clone(),
            fault: Some(fault.clone()),
        })
        .map_err(|_| ())
        .unwrap();
    }
    let r = panic::catch_unwind(AssertUnwindSafe(|| drop(b)));
    assert!(r.is_ok(), "dropping the batcher panicked");
    assert_eq!(handled.load(Ordering::SeqCst), ITEMS);
    assert!((0..ITEMS).all(|id| drops.count(id as u64) == 1));
}
