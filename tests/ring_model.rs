//! proptest: random operation sequences on a single-threaded ring, checked
//! step by step against a plain sequential model.
//!
//! The graph under test: consumer A straight after the producer, consumer B
//! after A, and a work group of two workers straight after the producer. The
//! producer is gated by B and the group.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::ring::{BusySpin, Heap, Poll, PublishError, Ring, Single};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u32),
    Batch(usize),
    PollA(usize),
    PollB(usize),
    PollWorker(usize, usize),
    ReadA(usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Push),
        2 => (0usize..10).prop_map(Op::Batch),
        3 => (1usize..6).prop_map(Op::PollA),
        3 => (1usize..6).prop_map(Op::PollB),
        3 => (0usize..2, 1usize..4).prop_map(|(w, m)| Op::PollWorker(w, m)),
        1 => (0usize..5).prop_map(Op::ReadA),
        1 => Just(Op::Close),
    ]
}

/// The sequential model: every published value by sequence, and positions.
#[derive(Default)]
struct Model {
    events: Vec<u32>,
    a: usize,
    b: usize,
    claim: usize,
    closed: bool,
}

impl Model {
    fn free(&self, cap: usize) -> usize {
        cap - (self.events.len() - self.b.min(self.claim))
    }

    /// What a poll of a consumer at `pos`, bounded by `bound`, must return
    /// and hand out.
    fn expect_poll(&self, pos: usize, bound: usize, max: usize, gated: bool) -> (Poll, usize) {
        let n = (bound - pos).min(max);
        if n > 0 {
            (Poll::Processed(n), n)
        } else if self.closed && pos == self.events.len() {
            (Poll::Closed, 0)
        } else if gated && self.events.len() > pos {
            (Poll::Gated, 0)
        } else {
            (Poll::Idle, 0)
        }
    }
}

fn run(cap: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let ring: Ring<Heap<u32>, Single, BusySpin> =
        Ring::new(Heap::with_default(cap, 8).unwrap(), BusySpin);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[a.node()]).unwrap();
    let mut workers = g.work_group::<2>(&[]).unwrap();
    let mut producer = Some(g.single_producer());
    let mut m = Model::default();
    let mut next_value = 0u32;

    for op in ops {
        match op {
            Op::Push(v) => {
                let Some(p) = producer.as_mut() else { continue };
                let got = p.try_push(v);
                if m.free(cap) > 0 {
                    prop_assert_eq!(got.ok(), Some(m.events.len() as u64));
                    m.events.push(v);
                } else {
                    prop_assert!(matches!(got, Err(PublishError::Full(x)) if x == v));
                }
            }
            Op::Batch(n) => {
                let Some(p) = producer.as_mut() else { continue };
                let start = next_value;
                let got = p.try_publish_batch(n, |slots| {
                    for (i, s) in slots.into_iter().enumerate() {
                        *s = start + i as u32;
                    }
                });
                if n > cap {
                    prop_assert!(matches!(got, Err(PublishError::TooLarge(_))));
                } else if n <= m.free(cap) {
                    prop_assert_eq!(got.ok(), Some(m.events.len() as u64));
                    m.events.extend((0..n as u32).map(|i| start + i));
                    next_value += n as u32;
                } else {
                    prop_assert!(matches!(got, Err(PublishError::Full(_))));
                }
            }
            Op::PollA(max) => {
                a.set_max_batch(max);
                let (want, n) = m.expect_poll(m.a, m.events.len(), max, false);
                let mut seen = Vec::new();
                let got = a.poll(|e, s, eob| seen.push((s, *e, eob)));
                prop_assert_eq!(got, want);
                let expect: Vec<_> = (m.a..m.a + n)
                    .map(|s| (s as u64, m.events[s], s + 1 == m.a + n))
                    .collect();
                prop_assert_eq!(seen, expect);
                m.a += n;
            }
            Op::PollB(max) => {
                b.set_max_batch(max);
                let (want, n) = m.expect_poll(m.b, m.a, max, true);
                let mut seen = Vec::new();
                let got = b.poll(|e, s, _| seen.push((s, *e)));
                prop_assert_eq!(got, want);
                let expect: Vec<_> = (m.b..m.b + n).map(|s| (s as u64, m.events[s])).collect();
                prop_assert_eq!(seen, expect);
                m.b += n;
            }
            Op::PollWorker(w, max) => {
                workers[w].set_max_batch(max);
                let (want, n) = m.expect_poll(m.claim, m.events.len(), max, false);
                let mut seen = Vec::new();
                let got = workers[w].poll(|e, s, _| seen.push((s, *e)));
                prop_assert_eq!(got, want);
                let expect: Vec<_> = (m.claim..m.claim + n)
                    .map(|s| (s as u64, m.events[s]))
                    .collect();
                prop_assert_eq!(seen, expect);
                m.claim += n;
            }
            Op::ReadA(early) => {
                let avail = m.events.len() - m.a;
                a.set_max_batch(usize::MAX);
                match a.read() {
                    Ok(mut batch) => {
                        prop_assert_eq!(batch.len(), avail);
                        let got: Vec<_> = batch.iter().map(|(s, e)| (s, *e)).collect();
                        let expect: Vec<_> = (m.a..m.a + avail)
                            .map(|s| (s as u64, m.events[s]))
                            .collect();
                        prop_assert_eq!(got, expect);
                        batch.release(early);
                        prop_assert_eq!(batch.len(), avail - early.min(avail));
                    }
                    Err(state) => {
                        prop_assert_eq!(avail, 0);
                        let (want, _) = m.expect_poll(m.a, m.events.len(), 1, false);
                        prop_assert_eq!(state, want);
                    }
                }
                m.a += avail;
            }
            Op::Close => {
                producer = None;
                m.closed = true;
            }
        }
        prop_assert_eq!(ring.is_closed(), m.closed);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn ring_matches_its_model(cap_log in 0u32..4, ops in proptest::collection::vec(op(), 1..120)) {
        run(1 << cap_log, ops)?;
    }
}
