//! # latchfree
//!
//! Lock-free data structures for latency-sensitive services and for
//! embedded, `no_std` targets.
//!
//! - [`ring`]: Disruptor-style ring buffers: pre-allocated slots, single- and
//!   multi-producer sequencers, multicast consumers with dependency graphs,
//!   work-queue consumers, batch claim and consume, pollers, pluggable waits.
//! - [`wheel`]: a hierarchical timing wheel driven by the caller's clock, a
//!   cross-thread hand-off into it and (with `std`) a timer service.
//! - [`queue`]: an addressable priority queue and a delay queue on the same
//!   generation-checked arena, and (with `std`) a blocking delay queue.
//!
//! The core is `#![no_std]` and written against atomics; the `alloc` feature
//! adds heap-backed forms and the `std` feature (default) adds blocking waits
//! and thread-based adapters.
//!
//! ## Feature flags
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | heap storage with a runtime capacity |
//! | `std` | yes | blocking and parking waits, the threaded ring runner |
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod macros;
mod sync;

pub mod queue;
pub mod ring;
pub mod wheel;
