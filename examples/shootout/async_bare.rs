//! The bare async hand-off between two tasks: one slot and the standard
//! waker cell (`futures_util`'s `AtomicWaker`), nothing a channel adds (no
//! capacity, no close, no second waiter). A send is a swap and a wake; a
//! receive a swap, and when that finds nothing, a registration and a
//! second swap. It is a reference, not a lower bound: `AtomicWaker` hands
//! its waker over by value (a clone per registration, a wake by value),
//! which a channel that keeps its waker and wakes by reference undercuts
//! on one thread. Across threads the wake of a sleeping thread decides
//! the round trip, and there it shows what any hand-off costs. The `async`
//! section's `pingpong` runs it beside the channels, and
//! `examples/async_phase.rs` splits its round trip in two.

#![allow(clippy::std_instead_of_core)]

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// The slot's value when it holds nothing.
const EMPTY: u64 = u64::MAX;

/// One `u64` in flight at most, one receiving task.
pub struct Slot {
    value: AtomicU64,
    waiter: AtomicWaker,
}

impl Slot {
    pub fn new() -> Self {
        Self {
            value: AtomicU64::new(EMPTY),
            waiter: AtomicWaker::new(),
        }
    }

    /// Puts `v` (not `u64::MAX`) in the empty slot and wakes the receiver.
    /// Release: the receiver's Acquire swap sees what came before.
    pub fn send(&self, v: u64) {
        assert_ne!(v, EMPTY, "bare-waker: u64::MAX marks the empty slot");
        let was = self.value.swap(v, Ordering::Release);
        assert_eq!(was, EMPTY, "bare-waker: one value in flight at most");
        self.waiter.wake();
    }

    /// Takes the value, waiting for it: register, then re-check, so a send
    /// between the first check and the registration is not missed.
    pub async fn recv(&self) -> u64 {
        poll_fn(|cx| {
            let v = self.value.swap(EMPTY, Ordering::Acquire);
            if v != EMPTY {
                return Poll::Ready(v);
            }
            self.waiter.register(cx.waker());
            match self.value.swap(EMPTY, Ordering::Acquire) {
                EMPTY => Poll::Pending,
                v => Poll::Ready(v),
            }
        })
        .await
    }
}
