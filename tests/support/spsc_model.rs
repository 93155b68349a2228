//! The sequential model of `ring::Spsc` (a `VecDeque` and two "gone"
//! marks), shared by the proptest (`tests/spsc_model.rs`) and the fuzz
//! target (`fuzz/fuzz_targets/spsc.rs`). Every return value, `len`,
//! `is_empty`/`is_full` and `is_closed` is compared after each step, and
//! every item is a drop-counted value, so a lost, duplicated or leaked item
//! fails the run.
#![allow(dead_code, clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use latchfree::error::TryPushError;
use latchfree::ring::{Spsc, TryPopError};
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

/// One step.
#[derive(Clone, Debug)]
pub enum Op {
    Push(u32),
    Pop,
    DropProducer,
    DropConsumer,
}

impl Op {
    /// Two fuzzer bytes as one step.
    pub fn from_bytes(b: [u8; 2]) -> Op {
        match b[0] % 16 {
            0..=6 => Op::Push(u32::from(b[1])),
            7..=13 => Op::Pop,
            14 => Op::DropProducer,
            _ => Op::DropConsumer,
        }
    }
}

/// A value that counts its drops in a shared cell.
struct Counted {
    value: u32,
    drops: Rc<Cell<usize>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// Runs `ops` on an `Spsc` of `capacity` slots (1, 2, 4 or 8; any other
/// is taken as 8) whose positions start at `start` (near `usize::MAX` to
/// cross the wrap of the position words).
pub fn run(capacity: usize, start: usize, ops: &[Op]) -> Result<(), String> {
    match capacity {
        1 => run_n::<1>(start, ops),
        2 => run_n::<2>(start, ops),
        4 => run_n::<4>(start, ops),
        _ => run_n::<8>(start, ops),
    }
}

fn run_n<const N: usize>(start: usize, ops: &[Op]) -> Result<(), String> {
    let drops = Rc::new(Cell::new(0));
    let mut created = 0usize;
    {
        let queue: Spsc<Counted, N> = Spsc::starting_at(start);
        let (producer, consumer) = queue.split().ok_or("split refused")?;
        if queue.split().is_some() {
            return Err("split twice".into());
        }
        let (mut producer, mut consumer) = (Some(producer), Some(consumer));
        let mut model: VecDeque<u32> = VecDeque::new();
        for (step, op) in ops.iter().enumerate() {
            let fail = |what: String| Err(format!("step {step} ({op:?}): {what}"));
            match op {
                Op::Push(v) => {
                    let Some(p) = producer.as_mut() else { continue };
                    created += 1;
                    let item = Counted {
                        value: *v,
                        drops: drops.clone(),
                    };
                    let got = p.try_push(item).map_err(|e| match e {
                        TryPushError::Full(i) => ("full", i.value),
                        TryPushError::Closed(i) => ("closed", i.value),
                    });
                    let want = if model.len() < N {
                        model.push_back(*v);
                        Ok(())
                    } else if consumer.is_none() {
                        Err(("closed", *v))
                    } else {
                        Err(("full", *v))
                    };
                    if got != want {
                        return fail(format!("got {got:?}, want {want:?}"));
                    }
                }
                Op::Pop => {
                    let Some(c) = consumer.as_mut() else { continue };
                    let got = c.try_pop().map(|i| i.value);
                    let want = match model.pop_front() {
                        Some(v) => Ok(v),
                        None if producer.is_none() => Err(TryPopError::Closed),
                        None => Err(TryPopError::Empty),
                    };
                    if got != want {
                        return fail(format!("got {got:?}, want {want:?}"));
                    }
                }
                Op::DropProducer => drop(producer.take()),
                Op::DropConsumer => drop(consumer.take()),
            }
            if queue.len() != model.len() || queue.is_empty() != model.is_empty() {
                return fail(format!("len {} vs model {}", queue.len(), model.len()));
            }
            if let Some(p) = &producer {
                if p.len() != model.len() || p.is_full() != (model.len() == N) {
                    return fail(format!("producer len {} vs {}", p.len(), model.len()));
                }
                if p.is_closed() != consumer.is_none() {
                    return fail("producer is_closed".into());
                }
            }
            if let Some(c) = &consumer {
                if c.len() != model.len() || c.is_empty() != model.is_empty() {
                    return fail(format!("consumer len {} vs {}", c.len(), model.len()));
                }
                if c.is_closed() != producer.is_none() {
                    return fail("consumer is_closed".into());
                }
            }
            // Items still queued are alive; every other one was dropped.
            if drops.get() != created - model.len() {
                return Err(format!(
                    "step {step}: {} drops for {created} items, {} queued",
                    drops.get(),
                    model.len()
                ));
            }
        }
    }
    // The queue's drop drops what was still queued, once.
    if drops.get() != created {
        return Err(format!("{} drops for {created} items", drops.get()));
    }
    Ok(())
}
