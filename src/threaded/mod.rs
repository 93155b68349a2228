//! The thread-owning adapters: everything here starts, parks and joins
//! threads of its own, on top of the `no_std` cores. Every file under this
//! folder may name `std`; outside it only the `std_*.rs` files do. Each
//! adapter is re-exported where a user looks for it, so public paths stay
//! short (`latchfree::pool`, `latchfree::batch`, `latchfree::ring::Disruptor`,
//! `latchfree::wheel::TimerService`).
//!
//! The adapters depend downward only. Each shared mechanism lives here
//! once, below them, and no adapter imports another:
//!
//! - [`doorbell`]: the one sleep/wake protocol (pool workers and batch
//!   flushers sleep on it; submitters ring it after publishing);
//! - [`lane`]: the queue the pool and the batcher publish into (a
//!   multi-producer ring of take-once slots), per-thread producer lanes and
//!   the one publish with its retry and its error mapping;
//! - [`room`]: async pushers waiting for room in that queue, and the
//!   consumer side's one fence and load to see whether any are;
//! - [`slot`]: the take-once slot;
//! - [`signal`]: a one-shot flag an async task awaits (the timer
//!   service's `Sleep`);
//! - [`unwind`]: the panic payload type and a drop that cannot unwind.
//!
//! On top: [`pool`] (jobs on an elastic set of workers), [`batch`] (the
//! batcher, and the task queue built on it), `disruptor` (the ring's
//! consumer threads) and `timer_service` (the timer thread).

#[allow(rustdoc::private_intra_doc_links)]
pub(crate) mod doorbell;
pub(crate) mod lane;
#[cfg_attr(not(latchfree_loom), allow(unreachable_pub))]
pub(crate) mod room;
#[cfg_attr(not(latchfree_loom), allow(unreachable_pub))]
pub(crate) mod signal;
pub(crate) mod slot;
pub(crate) mod unwind;

pub mod batch;
pub mod pool;

pub(crate) mod disruptor;
pub(crate) mod timer_service;
