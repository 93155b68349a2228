//! The ring's sequential model and the operation replayer, shared by the
//! proptest (`tests/ring_model.rs`) and the fuzz target (`fuzz/`).
//!
//! The graph under test: consumer A straight after the producer, consumer B
//! after A, and a work group of two workers straight after the producer. The
//! producer is gated by B and the group. Every return value is compared with
//! the model after every step.

use latchfree::ring::{BusySpin, Heap, Poll, PublishError, Ring, Single};

macro_rules! ensure {
    ($cond:expr) => {
        if !$cond {
            return Err(format!("{} failed at line {}", stringify!($cond), line!()));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!("{:?} != {:?} at line {}", a, b, line!()));
        }
    }};
}

/// One step of a replayed sequence.
#[derive(Debug, Clone)]
pub enum Op {
    /// `try_push` a value.
    Push(u32),
    /// `try_publish_batch` of n slots.
    Batch(usize),
    /// Poll A with a batch cap.
    PollA(usize),
    /// Poll B with a batch cap.
    PollB(usize),
    /// Poll worker i with a batch cap.
    PollWorker(usize, usize),
    /// Read a batch from A, releasing n early.
    ReadA(usize),
    /// Drop the producer.
    Close,
}

impl Op {
    /// Decodes an operation from fuzzer bytes.
    pub fn from_bytes(b: [u8; 3]) -> Op {
        let (x, y) = (usize::from(b[1]), usize::from(b[2]));
        match b[0] % 16 {
            0..=4 => Op::Push(u32::from(b[1]) << 8 | u32::from(b[2])),
            5 | 6 => Op::Batch(x % 10),
            7 | 8 => Op::PollA(1 + x % 6),
            9 | 10 => Op::PollB(1 + x % 6),
            11 | 12 => Op::PollWorker(x % 2, 1 + y % 4),
            13 | 14 => Op::ReadA(x % 5),
            _ => Op::Close,
        }
    }
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

pub fn run(cap: usize, ops: Vec<Op>) -> Result<(), String> {
    let ring: Ring<Heap<u32>, Single, BusySpin> =
        Ring::with_wait(Heap::builder(cap).gates(8).build().unwrap(), BusySpin);
    let mut g = Ring::graph(&ring).unwrap();
    let mut a = g.consumer(&[]).unwrap();
    let mut b = g.consumer(&[a.node()]).unwrap();
    let mut workers = g.work_group::<2>(&[]).unwrap();
    let mut producer = Some(g.single_producer().unwrap());
    let mut m = Model::default();
    let mut next_value = 0u32;

    for op in ops {
        match op {
            Op::Push(v) => {
                let Some(p) = producer.as_mut() else { continue };
                let got = p.try_push(v);
                if m.free(cap) > 0 {
                    ensure_eq!(got.ok(), Some(m.events.len() as u64));
                    m.events.push(v);
                } else {
                    ensure!(matches!(got, Err(PublishError::Full(x)) if x == v));
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
                    ensure!(matches!(got, Err(PublishError::TooLarge(_))));
                } else if n <= m.free(cap) {
                    ensure_eq!(got.ok(), Some(m.events.len() as u64));
                    m.events.extend((0..n as u32).map(|i| start + i));
                    next_value += n as u32;
                } else {
                    ensure!(matches!(got, Err(PublishError::Full(_))));
                }
            }
            Op::PollA(max) => {
                let (want, n) = m.expect_poll(m.a, m.events.len(), max, false);
                let mut seen = Vec::new();
                let got = a.poll_limit(max, |e, s, eob| seen.push((s, *e, eob)));
                ensure_eq!(got, want);
                let expect: Vec<_> = (m.a..m.a + n)
                    .map(|s| (s as u64, m.events[s], s + 1 == m.a + n))
                    .collect();
                ensure_eq!(seen, expect);
                m.a += n;
            }
            Op::PollB(max) => {
                let (want, n) = m.expect_poll(m.b, m.a, max, true);
                let mut seen = Vec::new();
                let got = b.poll_limit(max, |e, s, _| seen.push((s, *e)));
                ensure_eq!(got, want);
                let expect: Vec<_> = (m.b..m.b + n).map(|s| (s as u64, m.events[s])).collect();
                ensure_eq!(seen, expect);
                m.b += n;
            }
            Op::PollWorker(w, max) => {
                let (want, n) = m.expect_poll(m.claim, m.events.len(), max, false);
                let mut seen = Vec::new();
                let got = workers[w].poll_limit(max, |e, s, _| seen.push((s, *e)));
                ensure_eq!(got, want);
                let expect: Vec<_> = (m.claim..m.claim + n)
                    .map(|s| (s as u64, m.events[s]))
                    .collect();
                ensure_eq!(seen, expect);
                m.claim += n;
            }
            Op::ReadA(early) => {
                let avail = m.events.len() - m.a;
                match a.read() {
                    Ok(mut batch) => {
                        ensure_eq!(batch.len(), avail);
                        let got: Vec<_> = batch.iter().map(|(s, e)| (s, *e)).collect();
                        let expect: Vec<_> = (m.a..m.a + avail)
                            .map(|s| (s as u64, m.events[s]))
                            .collect();
                        ensure_eq!(got, expect);
                        batch.release(early);
                        ensure_eq!(batch.len(), avail - early.min(avail));
                    }
                    Err(state) => {
                        ensure_eq!(avail, 0);
                        let (want, _) = m.expect_poll(m.a, m.events.len(), 1, false);
                        ensure_eq!(state, want);
                    }
                }
                m.a += avail;
            }
            Op::Close => {
                producer = None;
                m.closed = true;
            }
        }
        ensure_eq!(ring.is_closed(), m.closed);
    }
    Ok(())
}
