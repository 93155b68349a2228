//! Multi-threaded stress tests of the ring and its threaded runner: every
//! event seen exactly once per multicast consumer, exactly once overall in a
//! work group, per-producer order kept, nothing leaked or dropped twice,
//! panics reported without stalling, shutdown draining, nothing hanging.
#![cfg(feature = "std")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
#![allow(clippy::redundant_pattern_matching)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchfree::ring::{
    Blocking, ConsumeError, Heap, Multi, Parking, PublishError, Ring, Single, Timeout, Yielding,
};
use latchfree::ring::{Disruptor, PanicPolicy};

const PER_PRODUCER: u64 = 50_000;

/// Event: (producer id, per-producer counter).
type Ev = (u64, u64);

#[test]
fn producers_times_multicast_consumers_and_a_work_group() {
    const PRODUCERS: u64 = 3;
    let ring = Arc::new(Ring::<Heap<Ev>, Multi, Yielding>::with_wait(
        Heap::builder(64).gates(8).build().unwrap(),
        Yielding,
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let consumers = [g.consumer(&[]).unwrap(), g.consumer(&[]).unwrap()];
    let workers = g.work_group::<2>(&[]).unwrap();
    let p = g.multi_producer().unwrap();
    let seen_by_workers: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..PRODUCERS * PER_PRODUCER)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    std::thread::scope(|s| {
        for id in 0..PRODUCERS {
            let mut p = p.clone();
            s.spawn(move || {
                for i in 0..PER_PRODUCER {
                    p.publish(|e| *e = (id, i)).unwrap();
                }
            });
        }
        drop(p);
        for mut c in consumers {
            s.spawn(move || {
                let mut next = [0u64; PRODUCERS as usize];
                let mut seq_expected = 0;
                while let Ok(_) = c.wait(|&(id, i), seq, _| {
                    assert_eq!(seq, seq_expected);
                    seq_expected += 1;
                    assert_eq!(next[id as usize], i, "per-producer order");
                    next[id as usize] += 1;
                }) {}
                assert_eq!(next, [PER_PRODUCER; PRODUCERS as usize]);
            });
        }
        for mut w in workers {
            let seen = seen_by_workers.clone();
            s.spawn(move || {
                while let Ok(_) = w.wait(|&(id, i), _, _| {
                    seen[(id * PER_PRODUCER + i) as usize].fetch_add(1, Ordering::Relaxed);
                }) {}
            });
        }
    });
    assert!(seen_by_workers
        .iter()
        .all(|c| c.load(Ordering::Relaxed) == 1));
}

#[test]
fn pipeline_and_diamond_under_threads() {
    const N: u64 = 100_000;
    let ring = Arc::new(Ring::<Heap<u64>, Single, Blocking>::with_wait(
        Heap::builder(32).gates(4).build().unwrap(),
        Blocking::new(),
    ));
    let order = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let total = Arc::new(AtomicU64::new(0));
    let (o1, o2, o3, t) = (order.clone(), order.clone(), order.clone(), total.clone());
    let (mut producer, d) = Disruptor::builder(ring)
        .unwrap()
        .handle_events_with(move |_: &u64, seq: u64, _| o1[0].store(seq + 1, Ordering::Release))
        .handle_events_with(move |_: &u64, seq: u64, _| o2[1].store(seq + 1, Ordering::Release))
        .then(move |e: &u64, seq: u64, _| {
            // Both sides of the diamond are done with this event.
            assert!(o3[0].load(Ordering::Acquire) > seq);
            assert!(o3[1].load(Ordering::Acquire) > seq);
            t.fetch_add(*e, Ordering::Relaxed);
        })
        .build_single()
        .unwrap();
    for i in 1..=N {
        producer.publish(|e| *e = i).unwrap();
    }
    drop(producer);
    d.shutdown();
    assert_eq!(total.load(Ordering::Relaxed), N * (N + 1) / 2);
}

#[test]
fn events_are_never_leaked_or_dropped_twice() {
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    struct Counted(#[allow(dead_code)] u64);
    impl Counted {
        fn new(v: u64) -> Self {
            LIVE.fetch_add(1, Ordering::Relaxed);
            Counted(v)
        }
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    {
        let ring = Ring::<Heap<Counted>, Multi, Parking>::with_wait(
            Heap::builder(16)
                .gates(2)
                .build_with(|| Counted::new(0))
                .unwrap(),
            Parking::new(),
        );
        assert_eq!(LIVE.load(Ordering::Relaxed), 16);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let p = g.multi_producer().unwrap();
        std::thread::scope(|s| {
            for _ in 0..2 {
                let mut p = p.clone();
                s.spawn(move || {
                    for i in 0..10_000 {
                        if p.push(Counted::new(i)).is_err() {
                            panic!("ring closed early");
                        }
                    }
                });
            }
            drop(p);
            while let Ok(_) = c.wait(|_, _, _| ()) {}
        });
        assert_eq!(LIVE.load(Ordering::Relaxed), 16, "one live event per slot");
    }
    assert_eq!(LIVE.load(Ordering::Relaxed), 0);
}

#[test]
fn a_panicking_handler_is_reported_and_skipped() {
    let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::with_wait(
        Heap::builder(8).gates(2).build().unwrap(),
        Parking::new(),
    ));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    let (mut producer, d) = Disruptor::builder(ring)
        .unwrap()
        .thread_name_prefix("stress")
        .on_panic(move |rep| {
            r.lock()
                .unwrap()
                .push((rep.consumer, rep.sequence, rep.message))
        })
        .handle_events_with(move |e: &u64, _: u64, _| {
            if *e % 10 == 0 {
                panic!("bad order {e}");
            }
            t.fetch_add(*e, Ordering::Relaxed);
        })
        .build_single()
        .unwrap();
    for i in 1..=100 {
        producer.publish(|e| *e = i).unwrap();
    }
    drop(producer);
    d.shutdown();
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 10);
    assert_eq!(
        reports[0],
        ("stress-0".to_string(), Some(9), "bad order 10".to_string())
    );
    assert_eq!(
        total.load(Ordering::Relaxed),
        5050 - (10..=100).step_by(10).sum::<u64>()
    );
}

#[test]
fn panic_policy_halt_stops_the_ring() {
    let ring = Arc::new(Ring::<Heap<u64>, Multi, Parking>::with_wait(
        Heap::builder(4).gates(2).build().unwrap(),
        Parking::new(),
    ));
    let (mut producer, d) = Disruptor::builder(ring.clone())
        .unwrap()
        .panic_policy(PanicPolicy::Halt)
        .on_panic(|_| ())
        .handle_events_with(|_: &u64, _: u64, _| panic!("fatal"))
        .build_multi()
        .unwrap();
    let mut refused = None;
    for i in 0..100 {
        if let Err(e) = producer.publish(move |e| *e = i) {
            refused = Some(matches!(e, PublishError::Halted(_)));
            break;
        }
    }
    assert_eq!(refused, Some(true));
    assert!(ring.is_halted());
    d.shutdown();
}

type SlowRing = Ring<Heap<u64>, Single, Parking>;
/// The ring, the count of events handled (plus 1 000 000 once the backlog
/// is published) and the runner.
type Slow = (
    Arc<SlowRing>,
    Arc<AtomicU64>,
    Disruptor<Heap<u64>, Single, Parking>,
);

/// A handler that takes 2 ms per event, behind a backlog of 256.
fn slow_backlog(policy: PanicPolicy, panic_at: u64) -> Slow {
    let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::with_wait(
        Heap::builder(256).gates(1).build().unwrap(),
        Parking::new(),
    ));
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let (mut producer, d) = Disruptor::builder(ring.clone())
        .unwrap()
        .panic_policy(policy)
        .on_panic(|_| ())
        .handle_events_with(move |e: &u64, _: u64, _| {
            if *e == 0 {
                // Let the whole backlog be published before going on.
                while h.load(Ordering::Relaxed) == 0 {
                    std::thread::yield_now();
                }
            }
            h.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(2));
            assert!(*e != panic_at, "fatal");
        })
        .build_single()
        .unwrap();
    for i in 0..256 {
        producer.push(i).unwrap();
    }
    handled.store(1_000_000, Ordering::Relaxed); // releases event 0
    drop(producer);
    (ring, handled, d)
}

#[test]
fn disruptor_halt_stops_before_the_next_event() {
    let (_ring, handled, d) = slow_backlog(PanicPolicy::Skip, u64::MAX);
    while handled.load(Ordering::Relaxed) < 1_000_003 {
        std::thread::yield_now();
    }
    d.halt();
    // At most the event under way when halt was called finishes.
    let total = handled.load(Ordering::Relaxed) - 1_000_000;
    assert!(total <= 4, "{total} of 256 events handled, halted after 3");
}

#[test]
fn panic_policy_halt_handles_nothing_after_the_panic() {
    let (ring, handled, d) = slow_backlog(PanicPolicy::Halt, 2);
    while !ring.is_halted() {
        std::thread::yield_now();
    }
    d.shutdown();
    assert_eq!(handled.load(Ordering::Relaxed) - 1_000_000, 3);
}

#[test]
fn a_producer_blocked_on_a_full_ring_gets_an_error_at_shutdown() {
    let ring = Arc::new(Ring::<Heap<u64>, Multi, Parking>::with_wait(
        Heap::builder(2).gates(2).build().unwrap(),
        Parking::new(),
    ));
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g2 = gate.clone();
    let (producer, d) = Disruptor::builder(ring.clone())
        .unwrap()
        .handle_events_with(move |_: &u64, _: u64, _| drop(g2.lock().unwrap()))
        .build_multi()
        .unwrap();
    let blocked = std::thread::spawn(move || {
        let mut producer = producer;
        let mut accepted = 0;
        loop {
            match producer.publish(|e| *e = 1) {
                Ok(_) => accepted += 1,
                Err(e) => return (accepted, e.to_string()),
            }
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    ring.close();
    let (accepted, err) = blocked.join().unwrap();
    assert_eq!(err, "the ring is closed");
    assert!(accepted >= 2);
    drop(held);
    d.shutdown();
}

#[test]
fn shutdown_does_not_hang_on_a_live_single_producer() {
    let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::with_wait(
        Heap::builder(4).gates(2).build().unwrap(),
        Parking::new(),
    ));
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let (mut producer, d) = Disruptor::builder(ring)
        .unwrap()
        .handle_events_with(move |e: &u64, _: u64, _| {
            h.fetch_add(*e, Ordering::Relaxed);
        })
        .build_single()
        .unwrap();
    producer.publish(|e| *e = 1).unwrap();
    // The producer is alive and owned by this very thread: waiting for it
    // would never end.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(d.shutdown()).unwrap());
    let drained = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("shutdown hung on a live single producer");
    assert!(!drained);
    // The close request stands: the next publish is refused...
    assert!(matches!(
        producer.publish(|e| *e = 2),
        Err(PublishError::Closed(_))
    ));
    // ...and everything published before it is still delivered.
    while handled.load(Ordering::Relaxed) != 1 {
        std::thread::yield_now();
    }
}

#[test]
fn shutdown_timeout_halts_when_the_producer_never_closes() {
    let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::with_wait(
        Heap::builder(4).gates(2).build().unwrap(),
        Parking::new(),
    ));
    let (mut producer, d) = Disruptor::builder(ring)
        .unwrap()
        .handle_events_with(|_: &u64, _: u64, _| ())
        .build_single()
        .unwrap();
    producer.publish(|e| *e = 1).unwrap();
    // The producer stays alive and idle: a plain shutdown would wait for it.
    assert!(!d.shutdown_timeout(Duration::from_millis(50)));
    assert!(matches!(
        producer.publish(|e| *e = 2),
        Err(PublishError::Halted(_))
    ));
}

#[test]
fn lifecycle_callbacks_run_on_the_consumer_thread() {
    use latchfree::ring::EventHandler;
    struct H(Arc<Mutex<Vec<String>>>);
    impl EventHandler<u64> for H {
        fn on_event(&mut self, e: &u64, _: u64, _: bool) {
            self.0.lock().unwrap().push(format!("event {e}"));
        }
        fn on_start(&mut self) {
            let name = std::thread::current().name().unwrap().to_string();
            self.0.lock().unwrap().push(format!("start {name}"));
        }
        fn on_shutdown(&mut self) {
            self.0.lock().unwrap().push("shutdown".to_string());
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::with_wait(
        Heap::builder(4).gates(1).build().unwrap(),
        Parking::new(),
    ));
    let (mut p, d) = Disruptor::builder(ring)
        .unwrap()
        .thread_name_prefix("lc")
        .handle_events_with(H(log.clone()))
        .build_single()
        .unwrap();
    p.publish(|e| *e = 5).unwrap();
    drop(p);
    d.shutdown();
    assert_eq!(*log.lock().unwrap(), ["start lc-0", "event 5", "shutdown"]);
}

#[test]
fn work_groups_in_the_runner_handle_each_event_once() {
    const N: u64 = 50_000;
    let ring = Arc::new(Ring::<Heap<u64>, Single, Parking>::with_wait(
        Heap::builder(64).gates(8).build().unwrap(),
        Parking::new(),
    ));
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let handlers: Vec<_> = (0..3)
        .map(|_| {
            let c = counts.clone();
            move |e: &u64, _: u64, _: bool| {
                c[*e as usize].fetch_add(1, Ordering::Relaxed);
            }
        })
        .collect();
    let after = Arc::new(AtomicU64::new(0));
    let a = after.clone();
    let (mut p, d) = Disruptor::builder(ring)
        .unwrap()
        .handle_events_with_workers(handlers)
        .then(move |_: &u64, _: u64, _| {
            a.fetch_add(1, Ordering::Relaxed);
        })
        .build_single()
        .unwrap();
    for i in 0..N {
        p.publish(|e| *e = i).unwrap();
    }
    drop(p);
    d.shutdown();
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    assert_eq!(after.load(Ordering::Relaxed), N);
}

#[test]
fn timeout_strategy_reports_timeouts() {
    let ring = Ring::<Heap<u64>, Single, Timeout<Parking>>::with_wait(
        Heap::builder(1).gates(1).build().unwrap(),
        Timeout::new(Parking::new(), Duration::from_millis(20)),
    );
    let mut g = Ring::graph(&ring).unwrap();
    let mut c = g.consumer(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    assert_eq!(c.wait(|_, _, _| ()), Err(ConsumeError::Timeout));
    p.publish(|e| *e = 1).unwrap();
    assert!(matches!(
        p.publish(|e| *e = 2),
        Err(PublishError::Timeout(_))
    ));
    assert_eq!(c.wait(|e, _, _| assert_eq!(*e, 1)), Ok(1));
}

// ----- issue 12: the runner's traps and missing pieces -----

#[test]
fn handlers_added_together_run_in_parallel_and_then_runs_after_all() {
    // The `disruptor` crate's chain: `a` and `b` in one stage, `c` after
    // both. `a` is slow, so a `c` gated on `b` alone would overtake it.
    const N: u64 = 200;
    let done: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let early = Arc::new(AtomicU64::new(0));
    let (d0, d1, d2, e) = (done.clone(), done.clone(), done.clone(), early.clone());
    let (mut producer, d) = Disruptor::builder(Ring::new(Heap::with_capacity(64).unwrap()))
        .unwrap()
        .handle_events_with(move |_: &u64, seq: u64, _| {
            if seq % 16 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            d0[0].store(seq + 1, Ordering::Release);
        })
        .handle_events_with(move |_: &u64, seq: u64, _| d1[1].store(seq + 1, Ordering::Release))
        .then(move |_: &u64, seq: u64, _| {
            for gate in d2.iter() {
                if gate.load(Ordering::Acquire) <= seq {
                    e.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build_single()
        .unwrap();
    for i in 0..N {
        producer.push(i).unwrap();
    }
    drop(producer);
    assert!(d.shutdown());
    assert_eq!(
        early.load(Ordering::Relaxed),
        0,
        "c saw events before a or b"
    );
    assert_eq!(done[0].load(Ordering::Relaxed), N);
}

#[test]
fn dropping_the_disruptor_delivers_every_published_event() {
    const N: u64 = 64;
    for multi in [false, true] {
        let handled = Arc::new(AtomicU64::new(0));
        let h = handled.clone();
        let slow = move |_: &u64, _: u64, _: bool| {
            std::thread::sleep(Duration::from_micros(200));
            h.fetch_add(1, Ordering::Relaxed);
        };
        if multi {
            let ring = Ring::<Heap<u64>, Multi>::new(Heap::with_capacity(128).unwrap());
            let (mut producer, d) = Disruptor::builder(ring)
                .unwrap()
                .handle_events_with(slow)
                .build_multi()
                .unwrap();
            for i in 0..N {
                producer.push(i).unwrap();
            }
            // The producer is still alive: dropping closes the ring, drains
            // and joins.
            drop(d);
            assert_eq!(handled.load(Ordering::Relaxed), N, "multi");
            assert!(matches!(producer.push(0), Err(PublishError::Closed(_))));
        } else {
            let (mut producer, d) =
                Disruptor::builder(Ring::new(Heap::with_capacity(128).unwrap()))
                    .unwrap()
                    .handle_events_with(slow)
                    .build_single()
                    .unwrap();
            for i in 0..N {
                producer.push(i).unwrap();
            }
            drop(producer);
            drop(d);
            assert_eq!(handled.load(Ordering::Relaxed), N, "single");
        }
    }
}

#[test]
fn dropping_the_disruptor_with_a_live_single_producer_loses_nothing() {
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let (mut producer, d) = Disruptor::builder(Ring::new(Heap::with_capacity(8).unwrap()))
        .unwrap()
        .handle_events_with(move |e: &u64, _: u64, _| {
            h.fetch_add(*e, Ordering::Relaxed);
        })
        .build_single()
        .unwrap();
    producer.push(1).unwrap();
    drop(d); // may not hang on the live producer, may not halt
    assert!(matches!(producer.push(2), Err(PublishError::Closed(_))));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while handled.load(Ordering::Relaxed) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "event 1 was abandoned"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_runner_without_handlers_is_refused() {
    let r = Disruptor::builder(Ring::new(Heap::<u64>::with_capacity(8).unwrap()))
        .unwrap()
        .build_single();
    assert!(matches!(r, Err(latchfree::ring::BuildError::NoConsumers)));
    let r = Disruptor::builder(Ring::<Heap<u64>, Multi>::new(
        Heap::with_capacity(8).unwrap(),
    ))
    .unwrap()
    .and_then()
    .build_multi();
    assert!(matches!(r, Err(latchfree::ring::BuildError::NoConsumers)));
}

#[test]
fn thread_start_hook_runs_on_each_consumer_thread_with_its_stage() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let noop = |_: &u64, _: u64, _: bool| ();
    let (producer, d) = Disruptor::builder(Ring::new(Heap::with_capacity(8).unwrap()))
        .unwrap()
        .thread_name_prefix("pin")
        .on_thread_start(move |stage, index| {
            let name = std::thread::current().name().unwrap().to_string();
            log.lock().unwrap().push((stage, index, name));
        })
        .handle_events_with(noop)
        .handle_events_with(noop)
        .and_then()
        .handle_events_with_workers(vec![noop, noop])
        .build_single()
        .unwrap();
    drop(producer);
    assert!(d.shutdown());
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let want: Vec<(usize, usize, String)> = [(0, 0), (0, 1), (1, 2), (1, 3)]
        .iter()
        .map(|&(s, i)| (s, i, format!("pin-{i}")))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn a_handler_factory_runs_on_the_consumer_thread_and_may_be_non_send() {
    use std::rc::Rc;
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let (mut producer, d) = Disruptor::builder(Ring::new(Heap::with_capacity(8).unwrap()))
        .unwrap()
        .thread_name_prefix("local")
        .handle_events_from(move || {
            assert_eq!(std::thread::current().name(), Some("local-0"));
            let local = Rc::new(std::cell::Cell::new(0u64)); // not `Send`
            move |e: &u64, _: u64, _: bool| {
                local.set(local.get() + e);
                s.store(local.get(), Ordering::Relaxed);
            }
        })
        .build_single()
        .unwrap();
    for i in 1..=10 {
        producer.push(i).unwrap();
    }
    drop(producer);
    assert!(d.shutdown());
    assert_eq!(sum.load(Ordering::Relaxed), 55);
}

#[test]
fn a_panicking_handler_factory_halts_instead_of_stalling() {
    let reports = Arc::new(AtomicU64::new(0));
    let r = reports.clone();
    let ring = Arc::new(Ring::new(Heap::<u64>::with_capacity(2).unwrap()));
    let (mut producer, d) = Disruptor::builder(ring.clone())
        .unwrap()
        .on_panic(move |rep| {
            assert_eq!(rep.sequence, None);
            r.fetch_add(1, Ordering::Relaxed);
        })
        .handle_events_from(|| -> fn(&u64, u64, bool) { panic!("no handler today") })
        .build_single()
        .unwrap();
    // Producers are refused (halted), never left waiting on the dead node.
    let mut refused = false;
    for i in 0..4 {
        if producer.push(i).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused);
    assert!(ring.is_halted());
    d.halt();
    assert_eq!(reports.load(Ordering::Relaxed), 1);
}

#[test]
fn force_push_with_racing_workers_loses_and_duplicates_nothing() {
    const N: u64 = 200_000;
    let ring = Arc::new(Ring::<Heap<u64>, Single, Yielding>::with_wait(
        Heap::builder(8).gates(3).build().unwrap(),
        Yielding,
    ));
    let mut g = Ring::graph(ring.clone()).unwrap();
    let workers = g.work_group::<2>(&[]).unwrap();
    let mut p = g.single_producer().unwrap();
    let seen: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
    let mut taken = Vec::new();
    std::thread::scope(|s| {
        for mut w in workers {
            let seen = &seen;
            s.spawn(move || {
                while w
                    .wait(|e, seq, _| {
                        assert_eq!(*e, seq, "an event torn or moved");
                        seen[*e as usize].fetch_add(1, Ordering::Relaxed);
                    })
                    .is_ok()
                {}
            });
        }
        for i in 0..N {
            if let Some(old) = p.force_push(i).unwrap() {
                taken.push(old);
            }
        }
        drop(p);
    });
    for old in &taken {
        seen[*old as usize].fetch_add(1, Ordering::Relaxed);
    }
    for (i, n) in seen.iter().enumerate() {
        assert_eq!(n.load(Ordering::Relaxed), 1, "event {i}");
    }
    // Taken events are oldest-first.
    assert!(taken.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_panicking_thread_start_hook_is_reported_and_every_event_still_handled() {
    let reports = Arc::new(AtomicUsize::new(0));
    let r = reports.clone();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let (mut producer, d) = Disruptor::builder(Ring::new(Heap::with_capacity(8).unwrap()))
        .unwrap()
        .on_panic(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .on_thread_start(|_, _| panic!("the pinning hook failed"))
        .handle_events_with(move |e: &u64, _: u64, _: bool| {
            s.fetch_add(*e, Ordering::Relaxed);
        })
        .build_single()
        .unwrap();
    for i in 1..=100 {
        producer.push(i).unwrap();
    }
    drop(producer);
    assert!(d.shutdown());
    assert_eq!(sum.load(Ordering::Relaxed), 5050);
    assert_eq!(reports.load(Ordering::Relaxed), 1);
}
