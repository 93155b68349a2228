//! # latchfree
//!
//! Lock-free data structures for latency-sensitive services and for
//! embedded, `no_std` targets.
//!
//! - [`ring`]: Disruptor-style ring buffers: pre-allocated slots, single- and
//!   multi-producer sequencers, multicast consumers with dependency graphs,
//!   work-queue consumers, batch claim and consume, pollers, pluggable waits.
//! - [`map`] (`alloc`): a sharded concurrent hash map whose readers never
//!   block and whose API cannot deadlock.
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
//! | `std` | yes | blocking and parking waits, the threaded ring runner, self-pinning map methods |
//! | `serde` | no | `Serialize`/`Deserialize` for `map::HashMap` |
//! | `rayon` | no | parallel iteration and extension for `map::HashMap` |
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod macros;
mod sync;

#[cfg(all(feature = "std", not(latchfree_loom)))]
pub mod batch;
#[cfg(feature = "alloc")]
pub mod buffer;
#[cfg(feature = "alloc")]
pub mod map;
#[cfg(all(feature = "std", not(latchfree_loom)))]
pub mod pool;
pub mod queue;
pub mod ring;
pub mod wheel;
