//! Loom models of the std adapters' async wake-ups: the one-shot `Signal`
//! behind the timer service's `Sleep`, and the thread pool's join packet
//! behind `JoinHandle` as a future (a mutex-guarded result plus an
//! `AtomicWaker`). Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test async_adapters`.
//!
//! The waiting side runs under `loom::future::block_on`, which parks the
//! model thread until its waker is called: a lost wake-up is a deadlock,
//! which loom reports. With the re-check removed from `Signal::poll` or
//! from `JoinHandle::poll` (returning `Pending` right after registering),
//! `signal_set_races_poll` and `join_handle_races_completion` fail.
#![cfg(latchfree_loom)]

use std::future::poll_fn;

use latchfree::__loom::{join_pair, Signal};
use latchfree::pool::JoinError;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

mod support;
use support::model;

/// The setter races the waiter's first poll: the waiter always completes
/// with the value set.
#[test]
fn signal_set_races_poll() {
    model(|| {
        let s = Arc::new(Signal::new());
        let setter = {
            let s = s.clone();
            thread::spawn(move || assert!(s.set(1)))
        };
        assert_eq!(block_on(poll_fn(|cx| s.poll(cx))), 1);
        setter.join().unwrap();
    });
}

/// Two setters (a timer firing and its callback dropped by a shutdown)
/// race: exactly one wins, and the waiter sees the winner's value.
#[test]
fn signal_two_setters_one_winner() {
    model(|| {
        let s = Arc::new(Signal::new());
        let other = {
            let s = s.clone();
            thread::spawn(move || s.set(2))
        };
        let mine = s.set(1);
        let got = block_on(poll_fn(|cx| s.poll(cx)));
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one set wins");
        assert_eq!(got, if mine { 1 } else { 2 });
    });
}

/// A worker completes a task (or drops it unrun) while its handle is
/// awaited: the awaiting task always gets the result.
#[test]
fn join_handle_races_completion() {
    model(|| {
        let (complete, h) = join_pair::<usize>();
        let worker = thread::spawn(move || complete(Some(5)));
        assert!(matches!(block_on(h), Ok(5)));
        worker.join().unwrap();
    });
    model(|| {
        let (complete, h) = join_pair::<usize>();
        let worker = thread::spawn(move || complete(None));
        assert!(matches!(block_on(h), Err(JoinError::Cancelled)));
        worker.join().unwrap();
    });
}
