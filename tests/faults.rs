//! Fault injection across the ring and the thread pool: writers, handlers,
//! jobs, hooks and `Drop` panicking at every k-th call (`support/fault.rs`).
//! Each case checks that no item is lost, duplicated or leaked (drop
//! counters), that the panic is reported where the API says, and that the
//! structure keeps working afterwards. The batcher and `TaskQueue`, the map,
//! the wheel, the queues and the buffer pools have their own suites.
//!
//! Several cases here failed before the reliability fixes of issue 11 (a
//! dropped worker stalling its group, a halting panic letting events
//! through, a panicking `on_panic` killing the consumer thread).
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/fault.rs"]
mod fault;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fault::{is_injected, quiet_injected_panics, Fault, Ledger, Plan, Tally, Tracked};
use latchfree::pool::{Builder as PoolBuilder, JoinError, ThreadPool};
use latchfree::ring::{BusySpin, Heap, Multi, Poll, PublishError, Ring, Single, Worker, Yielding};
use latchfree::ring::{Disruptor, EventHandler, PanicPolicy, PanicReport};

/// Events per case (small: every case runs for many k).
const N: u64 = if cfg!(miri) { 40 } else { 400 };
/// The k values tried: every k up to 9, then a few larger ones.
const KS: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 31, 64];

type Ev = Option<Tracked>;

fn id_of(e: &Ev) -> u64 {
    e.as_ref().expect("a published slot holds an event").id()
}

/// Runs `f` on a thread and fails the test (instead of hanging it) if it
/// has not finished within `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let out = f();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(limit) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}"),
    }
}

// ---------------------------------------------------------------- ring

#[test]
fn single_producer_writer_panicking_at_every_k() {
    quiet_injected_panics();
    for &k in KS {
        let ledger = Ledger::new();
        let fault = Fault::with(Plan::Every(k));
        let published = Tally::new(N as usize);
        let (seen_a, seen_b) = (Tally::new(N as usize), Tally::new(N as usize));
        {
            let ring = Ring::<Heap<Ev>, Single, BusySpin>::with_wait(
                Heap::builder(8).gates(2).build().unwrap(),
                BusySpin,
            );
            let mut g = Ring::graph(&ring).unwrap();
            let mut a = g.consumer(&[]).unwrap();
            let mut b = g.consumer(&[a.node()]).unwrap();
            let mut p = g.single_producer().unwrap();
            let drain = |a: &mut latchfree::ring::Consumer<_>,
                         b: &mut latchfree::ring::Consumer<_>| {
                while let Poll::Processed(_) = a.poll(|e: &Ev, _, _| seen_a.see(id_of(e))) {}
                while let Poll::Processed(_) = b.poll(|e: &Ev, _, _| seen_b.see(id_of(e))) {}
            };
            for id in 0..N {
                let t = ledger.track(id);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    p.try_publish(|slot| {
                        fault.hit("writer");
                        *slot = Some(t);
                    })
                }));
                match r {
                    Ok(Ok(_)) => published.see(id),
                    Ok(Err(e)) => panic!("k={k}: publish refused: {e}"),
                    Err(payload) => assert!(is_injected(&*payload), "k={k}: a real panic"),
                }
                drain(&mut a, &mut b);
            }
            p.close();
            drain(&mut a, &mut b);
            assert_eq!(a.poll(|_, _, _| ()), Poll::Closed);
            assert_eq!(b.poll(|_, _, _| ()), Poll::Closed);
        }
        let expected = |id| published.count(id) == 1;
        assert_eq!(published.total(), N - fault.fired(), "k={k}");
        assert!(
            seen_a.check(expected).is_empty(),
            "k={k}: A {:?}",
            seen_a.check(expected)
        );
        assert!(
            seen_b.check(expected).is_empty(),
            "k={k}: B {:?}",
            seen_b.check(expected)
        );
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

#[test]
fn multi_producer_writer_panicking_at_every_k() {
    quiet_injected_panics();
    const PRODUCERS: u64 = 2;
    let total = (PRODUCERS * N) as usize;
    for &k in KS {
        let ledger = Ledger::new();
        let fault = Arc::new(Fault::with(Plan::Every(k)));
        let published = Arc::new(Tally::new(total));
        // Two multicast consumers and a work group of two, each on a thread.
        let tallies: Vec<Arc<Tally>> = (0..3).map(|_| Arc::new(Tally::new(total))).collect();
        {
            let ring = Arc::new(Ring::<Heap<Ev>, Multi, Yielding>::with_wait(
                Heap::builder(16).gates(5).build().unwrap(),
                Yielding,
            ));
            let mut g = Ring::graph(ring.clone()).unwrap();
            let a = g.consumer(&[]).unwrap();
            let b = g.consumer(&[]).unwrap();
            let workers = g.work_group_vec(2, &[]).unwrap();
            let producer = g.multi_producer().unwrap();
            let mut threads = Vec::new();
            for (mut c, t) in [a, b].into_iter().zip(tallies.clone()) {
                threads.push(thread::spawn(move || {
                    while c.wait(|e: &Ev, _, _| t.see(id_of(e))).is_ok() {}
                }));
            }
            for mut w in workers {
                let t = tallies[2].clone();
                threads.push(thread::spawn(move || {
                    while w.wait(|e: &Ev, _, _| t.see(id_of(e))).is_ok() {}
                }));
            }
            for pi in 0..PRODUCERS {
                let (mut p, fault, published, ledger) = (
                    producer.clone(),
                    fault.clone(),
                    published.clone(),
                    ledger.clone(),
                );
                threads.push(thread::spawn(move || {
                    for i in 0..N {
                        let id = pi * N + i;
                        let t = ledger.track(id);
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            p.publish(|slot| {
                                fault.hit("writer");
                                *slot = Some(t);
                            })
                        }));
                        match r {
                            Ok(Ok(_)) => published.see(id),
                            Ok(Err(e)) => panic!("publish refused: {e}"),
                            Err(payload) => assert!(is_injected(&*payload)),
                        }
                    }
                }));
            }
            drop(producer); // the producer threads hold the last handles
            within(Duration::from_secs(30), "multi-producer run", move || {
                for t in threads {
                    t.join().unwrap();
                }
            });
        }
        assert_eq!(published.total(), PRODUCERS * N - fault.fired(), "k={k}");
        for (name, t) in ["A", "B", "work group"].iter().zip(&tallies) {
            let m = t.check(|id| published.count(id) == 1);
            assert!(m.is_empty(), "k={k}: {name}: {m:?}");
        }
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

#[test]
fn consumer_handler_panicking_at_every_k() {
    quiet_injected_panics();
    for &k in KS {
        let fault = Fault::with(Plan::Every(k));
        let (seen_a, seen_b) = (Tally::new(N as usize), Tally::new(N as usize));
        let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
            Heap::builder(8).gates(2).build().unwrap(),
            BusySpin,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut a = g.consumer(&[]).unwrap();
        let mut b = g.consumer(&[a.node()]).unwrap();
        let mut p = g.single_producer().unwrap();
        let mut panics = 0;
        let mut poll_all = |a: &mut latchfree::ring::Consumer<_>,
                            b: &mut latchfree::ring::Consumer<_>| {
            loop {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    a.poll(|e: &u64, _, _| {
                        seen_a.see(*e);
                        fault.hit("consumer A");
                    })
                }));
                match r {
                    Ok(Poll::Processed(_)) => {}
                    Ok(_) => break,
                    Err(payload) => {
                        assert!(is_injected(&*payload));
                        panics += 1;
                    }
                }
            }
            while let Poll::Processed(_) = b.poll(|e: &u64, _, _| seen_b.see(*e)) {}
        };
        for id in 0..N {
            // The ring never stays full: a panic released what it handled.
            p.try_push(id)
                .unwrap_or_else(|e| panic!("k={k}: push {id} refused: {e}"));
            if id % 5 == 4 {
                poll_all(&mut a, &mut b);
            }
        }
        p.close();
        poll_all(&mut a, &mut b);
        assert_eq!(a.poll(|_, _, _| ()), Poll::Closed);
        assert_eq!(b.poll(|_, _, _| ()), Poll::Closed);
        assert_eq!(panics, fault.fired(), "k={k}");
        // The panicking event counts as handled: each handed out once.
        assert!(
            seen_a.check(|_| true).is_empty(),
            "k={k}: A {:?}",
            seen_a.check(|_| true)
        );
        assert!(
            seen_b.check(|_| true).is_empty(),
            "k={k}: B {:?}",
            seen_b.check(|_| true)
        );
    }
}

#[test]
fn worker_handler_panicking_at_every_k() {
    quiet_injected_panics();
    for &k in KS {
        let fault = Fault::with(Plan::Every(k));
        let seen = Tally::new(N as usize);
        let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
            Heap::builder(8).gates(4).build().unwrap(),
            BusySpin,
        );
        let mut g = Ring::graph(&ring).unwrap();
        let mut workers = g.work_group_vec(3, &[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let mut panics = 0;
        let mut turn = 0;
        let mut poll_some = |workers: &mut Vec<Worker<_>>, rounds: usize| -> bool {
            // Whether every poll of these rounds found the ring closed.
            let mut closed = true;
            for _ in 0..rounds {
                turn += 1;
                let w = &mut workers[turn % 3];
                // Each worker claims its own batch size: 2, 3 or 4.
                let max = turn % 3 + 2;
                let r = catch_unwind(AssertUnwindSafe(|| {
                    w.poll_limit(max, |e: &u64, _, _| {
                        seen.see(*e);
                        fault.hit("worker");
                    })
                }));
                closed &= match r {
                    Ok(p) => p == Poll::Closed,
                    Err(payload) => {
                        assert!(is_injected(&*payload));
                        panics += 1;
                        false
                    }
                };
            }
            closed
        };
        for id in 0..N {
            let mut v = id;
            loop {
                match p.try_push(v) {
                    Ok(_) => break,
                    Err(PublishError::Full(back)) => {
                        v = back;
                        poll_some(&mut workers, 3);
                    }
                    Err(e) => panic!("k={k}: push refused: {e}"),
                }
            }
            if id % 3 == 0 {
                poll_some(&mut workers, 2);
            }
        }
        p.close();
        // Every worker polls until it sees Closed (a backlog comes first).
        let mut rounds = 0;
        while !poll_some(&mut workers, 3) {
            rounds += 1;
            assert!(
                rounds < 10 * N,
                "k={k}: the work group never reports closed"
            );
        }
        assert_eq!(panics, fault.fired(), "k={k}");
        let m = seen.check(|_| true);
        assert!(m.is_empty(), "k={k}: {m:?}");
    }
}

/// Issue 11: a worker dropped after its handler panicked mid-batch kept its
/// word busy, and the producers stalled on it for good. A dropped worker
/// cannot handle its backlog, so those events may be abandoned (at most
/// once each); everything published after the drop is handled exactly once
/// by the rest of the group.
#[test]
fn a_worker_dropped_after_a_panic_does_not_stall_the_group() {
    quiet_injected_panics();
    let ring = Ring::<Heap<u64>, Single, BusySpin>::with_wait(
        Heap::builder(8).gates(3).build().unwrap(),
        BusySpin,
    );
    let mut g = Ring::graph(&ring).unwrap();
    let [mut w1, mut w2] = g.work_group::<2>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    for i in 0..8 {
        p.try_push(i).unwrap();
    }
    let seen = Tally::new(64);
    let r = catch_unwind(AssertUnwindSafe(|| {
        w1.poll_limit(8, |e, _, _| {
            seen.see(*e);
            if *e == 1 {
                panic!("{}: handler", fault::INJECTED);
            }
        })
    }));
    assert!(r.is_err());
    drop(w1); // events 2..8 were its backlog
    for i in 8..40 {
        let mut v = i;
        let mut tries = 0;
        while let Err(e) = p.try_push(v) {
            v = e.into_inner();
            w2.poll(|e, _, _| seen.see(*e));
            tries += 1;
            assert!(tries < 1000, "the producer stalls on the dropped worker");
        }
    }
    p.close();
    while let Poll::Processed(_) = w2.poll(|e, _, _| seen.see(*e)) {}
    assert_eq!(w2.poll(|_, _, _| ()), Poll::Closed);
    // The backlog: at most once each; the rest: exactly once.
    let m = seen.check(|id| !(2..8).contains(&id) && id < 40);
    let wrong: Vec<_> = m
        .missing
        .iter()
        .chain(&m.extra)
        .filter(|id| !(2..8).contains(*id) || seen.count(**id) > 1)
        .collect();
    assert!(wrong.is_empty(), "{m:?}");
}

#[test]
fn displaced_event_whose_drop_panics() {
    // Publishing over a slot drops its previous event; that `Drop` panics
    // at every k. The publish panics, the new event is not published (and
    // is dropped later), consumers see exactly what was published.
    quiet_injected_panics();
    for &k in KS {
        for multi in [false, true] {
            let ledger = Ledger::new();
            let published = Tally::new(N as usize);
            let seen = Tally::new(N as usize);
            ledger.drop.arm(Plan::Every(k));
            let mut panics = 0;
            macro_rules! run {
                ($mode:ty, $producer:ident) => {{
                    let ring = Ring::<Heap<Ev>, $mode, BusySpin>::with_wait(
                        Heap::builder(4).gates(1).build().unwrap(),
                        BusySpin,
                    );
                    let mut g = Ring::graph(&ring).unwrap();
                    let mut c = g.consumer(&[]).unwrap();
                    let mut p = g.$producer().unwrap();
                    for id in 0..N {
                        let t = ledger.track(id);
                        match catch_unwind(AssertUnwindSafe(|| p.try_push(Some(t)))) {
                            Ok(Ok(_)) => published.see(id),
                            Ok(Err(e)) => panic!("k={k}: push refused: {e}"),
                            Err(payload) => {
                                assert!(is_injected(&*payload));
                                panics += 1;
                            }
                        }
                        while let Poll::Processed(_) = c.poll(|e: &Ev, _, _| seen.see(id_of(e))) {}
                    }
                    drop(p);
                    while let Poll::Processed(_) = c.poll(|e: &Ev, _, _| seen.see(id_of(e))) {}
                    assert_eq!(c.poll(|_, _, _| ()), Poll::Closed);
                    // Dropping the ring drops the last events: no faults then.
                    ledger.disarm_all();
                }};
            }
            if multi {
                run!(Multi, multi_producer);
            } else {
                run!(Single, single_producer);
            }
            assert!(panics > 0, "k={k}: no drop ran into the fault");
            let m = seen.check(|id| published.count(id) == 1);
            assert!(m.is_empty(), "k={k} multi={multi}: {m:?}");
            assert_eq!(
                ledger.live(),
                0,
                "k={k} multi={multi}: {}",
                ledger.summary()
            );
        }
    }
}

/// A handler that records each event, hits its fault, and can panic in
/// `on_start` / `on_shutdown` too.
struct Faulty {
    seen: Arc<Tally>,
    fault: Arc<Fault>,
    lifecycle: Arc<Fault>,
}

impl EventHandler<Ev> for Faulty {
    fn on_event(&mut self, e: &Ev, _seq: u64, _eob: bool) {
        self.seen.see(id_of(e));
        self.fault.hit("handler");
    }
    fn on_start(&mut self) {
        self.lifecycle.hit("on_start");
    }
    fn on_shutdown(&mut self) {
        self.lifecycle.hit("on_shutdown");
    }
}

#[test]
fn disruptor_handlers_panicking_at_every_k_are_reported_and_skipped() {
    quiet_injected_panics();
    const PRODUCERS: u64 = 2;
    let total = (PRODUCERS * N) as usize;
    for &k in KS {
        let ledger = Ledger::new();
        let fault = Arc::new(Fault::with(Plan::Every(k)));
        // Every on_start and on_shutdown panics.
        let lifecycle = Arc::new(Fault::with(Plan::Every(1)));
        let stages: Vec<Arc<Tally>> = (0..3).map(|_| Arc::new(Tally::new(total))).collect();
        let reports = Arc::new(Mutex::new(Vec::<PanicReport>::new()));
        {
            let ring = Arc::new(Ring::<Heap<Ev>, Multi, Yielding>::with_wait(
                Heap::builder(32).gates(6).build().unwrap(),
                Yielding,
            ));
            let h = |i: usize| Faulty {
                seen: stages[i].clone(),
                fault: fault.clone(),
                lifecycle: lifecycle.clone(),
            };
            let r = reports.clone();
            // A and B in parallel, then a work group of three after both.
            let (producer, disruptor) = Disruptor::builder(ring)
                .unwrap()
                .thread_name_prefix("faulty")
                .on_panic(move |report| r.lock().unwrap().push(report))
                .handle_events_with(h(0))
                .handle_events_with(h(1))
                .then_workers(vec![h(2), h(2), h(2)])
                .build_multi()
                .unwrap();
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|pi| {
                    let (mut p, ledger) = (producer.clone(), ledger.clone());
                    thread::spawn(move || {
                        for i in 0..N {
                            p.push(Some(ledger.track(pi * N + i))).unwrap();
                        }
                    })
                })
                .collect();
            drop(producer);
            within(Duration::from_secs(30), "disruptor run", move || {
                for p in producers {
                    p.join().unwrap();
                }
                disruptor.shutdown();
            });
        }
        for (i, t) in stages.iter().enumerate() {
            let m = t.check(|_| true);
            assert!(m.is_empty(), "k={k}: stage {i}: {m:?}");
        }
        let reports = reports.lock().unwrap();
        let lifecycle_reports = reports.iter().filter(|r| r.sequence.is_none()).count();
        // Five threads, each with an on_start and an on_shutdown panic.
        assert_eq!(lifecycle_reports, 10, "k={k}");
        assert_eq!(reports.len() as u64 - 10, fault.fired(), "k={k}");
        assert!(reports
            .iter()
            .all(|r| r.message.starts_with(fault::INJECTED) && r.consumer.starts_with("faulty")));
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

/// The panic callback is user code too: when it panics, the consumer
/// thread must survive it (the event still counts as handled, later
/// events are handled, shutdown returns).
#[test]
fn disruptor_panic_callback_panicking_at_every_k() {
    quiet_injected_panics();
    for &k in &[1u64, 2, 3, 7] {
        let handler = Arc::new(Fault::with(Plan::Every(3)));
        let callback = Arc::new(Fault::with(Plan::Every(k)));
        let seen = Arc::new(Tally::new(N as usize));
        let ledger = Ledger::new();
        {
            let ring = Arc::new(Ring::<Heap<Ev>, Multi, Yielding>::with_wait(
                Heap::builder(8).gates(4).build().unwrap(),
                Yielding,
            ));
            let cb = callback.clone();
            let h = |seen: &Arc<Tally>| Faulty {
                seen: seen.clone(),
                fault: handler.clone(),
                lifecycle: Arc::new(Fault::new()),
            };
            let (producer, disruptor) = Disruptor::builder(ring)
                .unwrap()
                .on_panic(move |_| {
                    cb.hit("on_panic");
                })
                .handle_events_with_workers(vec![h(&seen), h(&seen)])
                .build_multi()
                .unwrap();
            let l = ledger.clone();
            within(
                Duration::from_secs(30),
                "run with a panicking panic callback",
                move || {
                    let mut p = producer;
                    for id in 0..N {
                        p.push(Some(l.track(id))).unwrap();
                    }
                    drop(p);
                    disruptor.shutdown();
                },
            );
        }
        let m = seen.check(|_| true);
        assert!(m.is_empty(), "k={k}: {m:?}");
        assert!(callback.fired() > 0, "k={k}");
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

#[test]
fn disruptor_halt_policy_stops_producers_and_shuts_down() {
    quiet_injected_panics();
    for &k in &[1, 2, 7, 50] {
        let ledger = Ledger::new();
        let fault = Arc::new(Fault::with(Plan::OnCall(k)));
        let reports = Arc::new(AtomicUsize::new(0));
        {
            let ring = Arc::new(Ring::<Heap<Ev>, Single, Yielding>::with_wait(
                Heap::builder(16).gates(1).build().unwrap(),
                Yielding,
            ));
            let seen = Arc::new(Tally::new(1 << 16));
            let r = reports.clone();
            let (mut producer, disruptor) = Disruptor::builder(ring.clone())
                .unwrap()
                .panic_policy(PanicPolicy::Halt)
                .on_panic(move |report| {
                    assert_eq!(report.sequence, Some(k - 1));
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .handle_events_with(Faulty {
                    seen,
                    fault: fault.clone(),
                    lifecycle: Arc::new(Fault::new()),
                })
                .build_single()
                .unwrap();
            let l = ledger.clone();
            within(Duration::from_secs(30), "halt run", move || {
                let mut id = 0;
                let err = loop {
                    match producer.push(Some(l.track(id))) {
                        Ok(_) => id += 1,
                        Err(e) => break e,
                    }
                    assert!(id < 1 << 16, "the ring never halted");
                };
                assert!(matches!(err, PublishError::Halted(_)), "{err:?}");
                drop(err);
                assert!(ring.is_halted());
                // Every later call answers at once.
                assert!(matches!(
                    producer.try_push(None),
                    Err(PublishError::Halted(_))
                ));
                disruptor.shutdown();
            });
        }
        assert_eq!(reports.load(Ordering::SeqCst), 1, "k={k}");
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

/// Issue 11, failure 7: with `PanicPolicy::Halt` the consumer goes on
/// handling the rest of its batch after the panic that halted the ring.
#[test]

fn disruptor_halt_policy_hands_out_nothing_after_the_panic() {
    quiet_injected_panics();
    let ring = Arc::new(Ring::<Heap<u64>, Single, Yielding>::with_wait(
        Heap::builder(256).gates(1).build().unwrap(),
        Yielding,
    ));
    let after = Arc::new(AtomicU64::new(0));
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate_rx = Mutex::new(gate_rx);
    let a = after.clone();
    let mut panicked = false;
    let (mut producer, disruptor) = Disruptor::builder(ring.clone())
        .unwrap()
        .panic_policy(PanicPolicy::Halt)
        .on_panic(|_| {})
        .handle_events_with(move |e: &u64, _seq: u64, _eob: bool| {
            if *e == 0 {
                // Hold the consumer until the whole backlog is published.
                let _ = gate_rx.lock().unwrap().recv();
            }
            if panicked {
                a.fetch_add(1, Ordering::SeqCst);
            }
            if *e == 1 {
                panicked = true;
                panic!("{}: handler", fault::INJECTED);
            }
        })
        .build_single()
        .unwrap();
    for i in 0..200 {
        producer.push(i).unwrap();
    }
    gate_tx.send(()).unwrap();
    while !ring.is_halted() {
        thread::yield_now();
    }
    drop(producer);
    disruptor.shutdown();
    assert_eq!(
        after.load(Ordering::SeqCst),
        0,
        "events handled after the halting panic"
    );
}

// ---------------------------------------------------------------- pool

#[test]
fn pool_jobs_panicking_at_every_k_reach_the_panic_handler() {
    quiet_injected_panics();
    for &k in KS {
        let ledger = Ledger::new();
        let fault = Arc::new(Fault::with(Plan::Every(k)));
        let ran = Arc::new(Tally::new(N as usize));
        let reported = Arc::new(Mutex::new(Vec::new()));
        let r = reported.clone();
        let pool = PoolBuilder::new()
            .min_workers(1)
            .max_workers(3)
            .queue_capacity(16)
            .panic_handler(move |info, payload| {
                assert!(is_injected(&**payload));
                r.lock().unwrap().push(info.id);
            })
            .build()
            .unwrap();
        for id in 0..N {
            let (fault, ran, t) = (fault.clone(), ran.clone(), ledger.track(id));
            pool.execute(move || {
                ran.see(t.id());
                fault.hit("job");
            })
            .unwrap();
        }
        pool.wait_idle().unwrap();
        let m = pool.metrics();
        assert_eq!((m.completed + m.panicked) as u64, N, "k={k}: {m:?}");
        assert_eq!(m.panicked as u64, fault.fired(), "k={k}");
        assert_eq!(
            reported.lock().unwrap().len() as u64,
            fault.fired(),
            "k={k}"
        );
        assert!(ran.check(|_| true).is_empty(), "k={k}");
        // Later calls work: the workers survived.
        assert_eq!(pool.spawn(|| 7).unwrap().join().unwrap(), 7);
        pool.shutdown();
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

#[test]
fn pool_spawned_jobs_panicking_at_every_k_report_to_their_handles() {
    quiet_injected_panics();
    for &k in KS {
        let ledger = Ledger::new();
        let fault = Arc::new(Fault::with(Plan::Every(k)));
        let handler_calls = Arc::new(AtomicUsize::new(0));
        let hc = handler_calls.clone();
        let pool = PoolBuilder::new()
            .min_workers(2)
            .max_workers(2)
            .queue_capacity(8)
            .panic_handler(move |_, _| {
                hc.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let handles: Vec<_> = (0..N)
            .map(|id| {
                let (fault, t) = (fault.clone(), ledger.track(id));
                pool.spawn(move || {
                    fault.hit("spawned job");
                    t
                })
                .unwrap()
            })
            .collect();
        let (mut ok, mut panicked) = (0, 0);
        for (id, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(t) => {
                    assert_eq!(t.id(), id as u64);
                    ok += 1;
                }
                Err(JoinError::Panicked(p)) => {
                    assert!(is_injected(&*p));
                    panicked += 1;
                }
                Err(e) => panic!("k={k}: job {id}: {e}"),
            }
        }
        assert_eq!(ok + panicked, N, "k={k}");
        assert_eq!(panicked, fault.fired(), "k={k}");
        pool.wait_idle().unwrap();
        // A spawned job's panic goes to its handle, not the handler.
        assert_eq!(handler_calls.load(Ordering::SeqCst), 0, "k={k}");
        assert_eq!(pool.metrics().panicked as u64, panicked, "k={k}");
        pool.shutdown();
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

#[test]
fn pool_hooks_panicking_leave_the_pool_working() {
    quiet_injected_panics();
    for &k in &[1u64, 2, 3] {
        let hooks = Arc::new(Fault::with(Plan::Every(k)));
        let jobs = Arc::new(Fault::with(Plan::Every(3)));
        let ran = Arc::new(Tally::new(N as usize));
        let (h1, h2, h3) = (hooks.clone(), hooks.clone(), hooks.clone());
        let pool = PoolBuilder::new()
            .min_workers(0)
            .max_workers(3)
            .keep_alive(Duration::from_millis(1))
            .queue_capacity(8)
            .on_thread_start(h1.wrap("on_thread_start", |_: usize| ()))
            .on_thread_exit(move |_| {
                h2.hit("on_thread_exit");
            })
            .panic_handler(move |_, _| {
                h3.hit("panic_handler");
            })
            .build()
            .unwrap();
        for id in 0..N {
            let (jobs, ran) = (jobs.clone(), ran.clone());
            pool.execute(move || {
                ran.see(id);
                jobs.hit("job");
            })
            .unwrap();
            if id % 50 == 49 {
                // Let the workers retire and restart.
                pool.wait_idle().unwrap();
                thread::sleep(Duration::from_millis(3));
            }
        }
        pool.wait_idle().unwrap();
        assert!(ran.check(|_| true).is_empty(), "k={k}");
        let m = pool.metrics();
        assert_eq!(m.panicked as u64, jobs.fired(), "k={k}");
        assert_eq!((m.completed + m.panicked) as u64, N, "k={k}");
        assert!(hooks.fired() > 0);
        within(Duration::from_secs(10), "shutdown", move || pool.shutdown());
    }
}

#[test]
fn pool_shutdown_now_with_panicking_jobs_accounts_for_every_job() {
    quiet_injected_panics();
    for &k in &[1u64, 2, 5, 13] {
        let ledger = Ledger::new();
        let fault = Arc::new(Fault::with(Plan::Every(k)));
        let ran = Arc::new(Tally::new(2 * N as usize));
        let accepted = Arc::new(Tally::new(2 * N as usize));
        let pool = Arc::new(
            PoolBuilder::new()
                .min_workers(1)
                .max_workers(2)
                .queue_capacity(32)
                .panic_handler(|_, _| {})
                .build()
                .unwrap(),
        );
        let submitters: Vec<_> = (0..2u64)
            .map(|s| {
                let (pool, fault, ran, accepted, ledger) = (
                    pool.clone(),
                    fault.clone(),
                    ran.clone(),
                    accepted.clone(),
                    ledger.clone(),
                );
                thread::spawn(move || {
                    for i in 0..N {
                        let id = s * N + i;
                        let (fault, ran, t) = (fault.clone(), ran.clone(), ledger.track(id));
                        let job = move || {
                            ran.see(t.id());
                            thread::sleep(Duration::from_micros(20));
                            fault.hit("job");
                        };
                        match pool.execute(job) {
                            Ok(()) => accepted.see(id),
                            Err(_closed) => return,
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(5));
        let back = pool.shutdown_now();
        for s in submitters {
            s.join().unwrap();
        }
        let returned = back.len();
        for job in back {
            // The caller runs what came back; its panics are the caller's.
            let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
        }
        let m = ran.check(|id| accepted.count(id) == 1);
        assert!(m.is_empty(), "k={k}: {m:?}");
        let pm = pool.metrics();
        assert_eq!(
            (pm.completed + pm.panicked + returned) as u64,
            accepted.total(),
            "k={k}: {pm:?}, {returned} returned"
        );
        drop(pool);
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}

#[test]
fn pool_execute_before_with_panicking_timeout_callbacks() {
    quiet_injected_panics();
    let ledger = Ledger::new();
    let fault = Arc::new(Fault::with(Plan::Every(2)));
    let outcomes = Arc::new(Tally::new(N as usize));
    let pool = ThreadPool::builder()
        .min_workers(1)
        .max_workers(1)
        .queue_capacity(64)
        .panic_handler(|_, _| {})
        .build()
        .unwrap();
    // Keep the only worker busy so every deadline passes.
    let (tx, rx) = mpsc::channel::<()>();
    pool.execute(move || {
        let _ = rx.recv();
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_millis(1);
    for id in 0..40u64 {
        let (o1, o2, f, t1, t2) = (
            outcomes.clone(),
            outcomes.clone(),
            fault.clone(),
            ledger.track(id),
            ledger.track(id),
        );
        pool.execute_before(
            deadline,
            move || o1.see(t1.id()),
            move || {
                o2.see(t2.id());
                f.hit("on_timeout");
            },
        )
        .unwrap();
    }
    thread::sleep(Duration::from_millis(5));
    tx.send(()).unwrap();
    pool.wait_idle().unwrap();
    let m = outcomes.check(|id| id < 40);
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(pool.metrics().timed_out, 40);
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    pool.shutdown();
    assert_eq!(ledger.live(), 0, "{}", ledger.summary());
}

// ---------------------------------------------------------------- queue

/// A priority whose `Ord` hits a fault (a user callback).
struct Prio(u64, Arc<Fault>, #[allow(dead_code)] Tracked);

impl PartialEq for Prio {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Prio {}
impl PartialOrd for Prio {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Prio {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.1.hit("priority Ord");
        self.0.cmp(&o.0)
    }
}

/// Found by the soak: `Ord` panicking mid-sift left a moved-out entry
/// inside `0..len`, so it was dropped twice (heap corruption), and a pop
/// lost its item. Now every push, pop, remove and priority change whose
/// `Ord` panics leaves each item in the queue exactly once.
#[test]
fn priority_queue_ord_panicking_at_every_k() {
    use latchfree::queue::{Growable, PriorityQueue};
    quiet_injected_panics();
    for &k in KS {
        let ledger = Ledger::new();
        let ord = Arc::new(Fault::with(Plan::Every(k)));
        let (mut pushed, mut out) = (Vec::new(), Vec::new());
        {
            let mut q: PriorityQueue<Tracked, Prio, Growable> = PriorityQueue::new();
            let mut handles = Vec::new();
            let mut rng = fault::Rng::new(k);
            for id in 0..N {
                let prio = Prio(rng.below(50), ord.clone(), ledger.track(id));
                let before = q.len();
                match catch_unwind(AssertUnwindSafe(|| q.push(ledger.track(id), prio))) {
                    Ok(h) => {
                        pushed.push(id);
                        handles.push(h);
                    }
                    Err(p) => {
                        assert!(is_injected(&*p));
                        // Whole or not at all.
                        assert!(q.len() == before || q.len() == before + 1);
                        if q.len() == before + 1 {
                            pushed.push(id);
                        }
                    }
                }
                let before = q.len();
                match rng.below(4) {
                    0 => match catch_unwind(AssertUnwindSafe(|| q.pop())) {
                        Ok(Some((t, _))) => out.push(t.id()),
                        Ok(None) => {}
                        Err(_) => {
                            assert_eq!(q.len(), before, "k={k}: a panicking pop lost its item")
                        }
                    },
                    1 if !handles.is_empty() => {
                        let h = handles.swap_remove(rng.below(handles.len() as u64) as usize);
                        match catch_unwind(AssertUnwindSafe(|| q.remove(h))) {
                            Ok(Some((t, _))) => out.push(t.id()),
                            Ok(None) => {}
                            Err(_) => assert_eq!(
                                q.len(),
                                before,
                                "k={k}: a panicking remove lost its item"
                            ),
                        }
                    }
                    2 if !handles.is_empty() => {
                        let h = handles[rng.below(handles.len() as u64) as usize];
                        let p = Prio(rng.below(50), ord.clone(), ledger.track(u64::MAX));
                        let _ = catch_unwind(AssertUnwindSafe(|| q.change_priority(h, p)));
                        assert_eq!(q.len(), before);
                    }
                    _ => {}
                }
            }
            ord.disarm();
            while let Some((t, _)) = q.pop() {
                out.push(t.id());
            }
        }
        out.sort_unstable();
        pushed.sort_unstable();
        assert_eq!(out, pushed, "k={k}: items lost or duplicated");
        assert_eq!(ledger.live(), 0, "k={k}: {}", ledger.summary());
    }
}
