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

/// A pusher awaits room on a full queue (the batcher's `push_async`
/// protocol: try, register in `Room`, fence, try again) while a consumer
/// frees the slot and notifies: the pusher always gets in. With the
/// fence in `Room::notify` removed, this deadlocks.
#[test]
fn room_register_races_release() {
    use latchfree::__loom::Room;
    use latchfree::ring::{BusySpin, Heap, Multi, Poll as RingPoll, PublishError, Ring};
    use std::task::Poll;

    model(|| {
        let ring: Arc<Ring<Heap<usize>, Multi, BusySpin>> = Arc::new(Ring::with_wait(
            Heap::builder(1).gates(1).build().unwrap(),
            BusySpin,
        ));
        let room = Arc::new(Room::new());
        let mut g = Ring::graph(ring.clone()).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        p.push(1).unwrap();
        let pusher = {
            let room = room.clone();
            thread::spawn(move || {
                let mut id = None;
                let mut item = Some(2);
                block_on(poll_fn(|cx| {
                    let mut armed = false;
                    loop {
                        match p.try_push(item.take().unwrap()) {
                            Ok(_) => {
                                room.forget(&mut id);
                                return Poll::Ready(());
                            }
                            Err(PublishError::Full(v)) => {
                                item = Some(v);
                                if armed {
                                    return Poll::Pending;
                                }
                                room.register(&mut id, cx.waker());
                                armed = true;
                            }
                            Err(_) => unreachable!(),
                        }
                    }
                }));
            })
        };
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 1)), RingPoll::Processed(1));
        room.notify();
        pusher.join().unwrap();
        assert_eq!(c.poll(|e, _, _| assert_eq!(*e, 2)), RingPoll::Processed(1));
    });
}

/// Two flushers (a work group) free a full queue's slot while an async
/// pusher awaits room: the `push_async` hang with two flushers. A worker
/// that loses the claim race to the other stores its word idle over the
/// busy announcement a pusher may have counted as holding the slot the
/// winner freed; its poll returns `Idle`, yet it made room, so it notifies
/// too (`Worker::released`, as the batcher's flusher does). Notifying only
/// after a poll that handled events, this deadlocks: the pusher's re-try
/// saw the loser's announcement, and the winner's notify came before the
/// pusher registered.
#[test]
fn room_work_group_claim_race_releases() {
    use latchfree::__loom::Room;
    use latchfree::ring::{BusySpin, Heap, Multi, Poll as RingPoll, PublishError, Ring};
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;

    model(|| {
        let ring: Arc<Ring<Heap<usize>, Multi, BusySpin>> = Arc::new(Ring::with_wait(
            Heap::builder(1).gates(3).build().unwrap(),
            BusySpin,
        ));
        let room = Arc::new(Room::new());
        let handled = Arc::new(AtomicUsize::new(0));
        let mut g = Ring::graph(ring.clone()).unwrap();
        let workers = g.work_group_vec(2, &[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        p.push(1).unwrap();
        let pusher = {
            let room = room.clone();
            thread::spawn(move || {
                let mut id = None;
                let mut item = Some(2);
                block_on(poll_fn(|cx| {
                    let mut armed = false;
                    loop {
                        match p.try_push(item.take().unwrap()) {
                            Ok(_) => {
                                room.forget(&mut id);
                                return Poll::Ready(());
                            }
                            Err(PublishError::Full(v)) => {
                                item = Some(v);
                                if armed {
                                    return Poll::Pending;
                                }
                                room.register(&mut id, cx.waker());
                                armed = true;
                            }
                            Err(_) => unreachable!(),
                        }
                    }
                }));
            })
        };
        let flushers: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                let room = room.clone();
                let handled = handled.clone();
                thread::spawn(move || {
                    let r = w.poll(|e, _, _| {
                        handled.fetch_add(*e, Ordering::Relaxed);
                    });
                    // The flusher's rule (`Source::poll`, `absorb`).
                    if matches!(r, RingPoll::Processed(_)) || w.released() {
                        room.notify();
                    }
                    w
                })
            })
            .collect();
        let mut ws: Vec<_> = flushers.into_iter().map(|t| t.join().unwrap()).collect();
        pusher.join().unwrap();
        // Item 1 went to exactly one worker, item 2 (pushed in time for
        // the other, or not) to one worker at most.
        if handled.load(Ordering::Relaxed) == 1 {
            let r = ws[0].poll(|e, _, _| {
                handled.fetch_add(*e, Ordering::Relaxed);
            });
            assert_eq!(r, RingPoll::Processed(1));
        }
        assert_eq!(handled.load(Ordering::Relaxed), 3);
    });
}
