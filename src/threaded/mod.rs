//! The thread-owning adapters (`std`): the thread pool and the batcher, and
//! the pieces they share. The only part of the crate besides `std_*` files
//! that may name `std`.
//!
//! The adapters depend downward only. Each shared mechanism lives here
//! once, below both, and neither adapter imports the other:
//!
//! - [`doorbell`]: the one sleep/wake protocol (pool workers and batch
//!   flushers sleep on it; submitters ring it after publishing);
//! - [`lane`]: the queue both publish into (a multi-producer ring of
//!   take-once slots), per-thread producer lanes and the one publish with
//!   its retry and its error mapping;
//! - [`slot`]: the take-once slot;
//! - [`unwind`]: the panic payload type and a drop that cannot unwind.
//!
//! On top: [`pool`] (jobs on an elastic set of workers) and [`batch`] (the
//! batcher, and the task queue built on it).

pub(crate) mod doorbell;
pub(crate) mod lane;
pub(crate) mod slot;
pub(crate) mod unwind;

pub mod batch;
pub mod pool;
