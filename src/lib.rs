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
//! - [`buffer`] (`alloc`): an object pool and a byte-buffer pool in
//!   power-of-two size classes over a lock-free idle set; `std` adds a
//!   per-thread cache.
//! - [`pool`] (`std`): an elastic, bounded thread pool on a ring, with
//!   graceful shutdown that loses nothing.
//! - [`batch`] (`std`): an asynchronous batcher (items, bytes, delay) on a
//!   ring, with flush and draining close.
//! - [`limiter`]: rate limiters on one atomic word each (GCRA, token and
//!   leaky buckets, window counters) on the caller's clock; a keyed
//!   limiter with `alloc`.
//! - [`breaker`]: a circuit breaker whose state machine is one atomic word,
//!   with bounded half-open probes.
//! - [`balance`]: load balancers (round robin, smooth weighted, consistent
//!   hashing, power of two choices) whose pickers never block.
//!
//! The core is `#![no_std]` and written against atomics; the `alloc` feature
//! adds heap-backed forms and the `std` feature (default) adds blocking waits
//! and thread-based adapters.
//!
//! ## Quick start
//!
//! Producers on any thread publish into a multi-producer ring; a consumer
//! thread applies each event to a sharded map that every thread can read
//! without blocking:
//!
//! ```
//! use std::sync::Arc;
//! use latchfree::map::HashMap;
//! use latchfree::ring::{threaded::Disruptor, Heap, Multi, Parking, Ring};
//!
//! let balances: Arc<HashMap<u32, i64>> = Arc::new(HashMap::new());
//! let ring = Arc::new(Ring::<Heap<(u32, i64)>, Multi, Parking>::new(
//!     Heap::with_default(1024, 1).unwrap(), // 1024 slots, 1 consumer
//!     Parking::new(),
//! ));
//! let b = balances.clone();
//! let (producer, disruptor) = Disruptor::builder(ring)
//!     .unwrap()
//!     .handle_events_with(move |&(account, amount): &(u32, i64), _seq: u64, _eob: bool| {
//!         b.upsert(account, || amount, |v| v + amount);
//!     })
//!     .build_multi()
//!     .unwrap();
//! let threads: Vec<_> = (0..2)
//!     .map(|_| {
//!         let mut p = producer.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..100 {
//!                 p.push((i % 4, 1)).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! threads.into_iter().for_each(|t| t.join().unwrap());
//! drop(producer); // the last producer handle closes the ring
//! disruptor.shutdown(); // every event is applied, then the thread joins
//! assert_eq!(balances.get(&0), Some(50));
//! ```
//!
//! `examples/order_gateway.rs` puts every module together in a small
//! service; see the README.
//!
//! ## Feature flags
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | heap storage with a runtime capacity |
//! | `std` | yes | blocking and parking waits, the threaded ring runner, self-pinning map methods, the thread pool, the batcher |
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

pub mod error;
// The thread-owning adapters (`std`): `pool` and `batch` below, and what
// they share. Under loom too: the models run the real code (`loom-tests`).
#[cfg(feature = "std")]
#[cfg_attr(not(latchfree_loom), allow(unreachable_pub))]
mod threaded;
/// The batcher's flush/close/sleep hand-off, exposed for the loom models
/// only.
#[cfg(all(feature = "std", latchfree_loom))]
#[doc(hidden)]
pub use threaded::batch::handoff as batch_handoff;
/// The adapters' sleep/wake protocol, exposed for the loom models only.
#[cfg(all(feature = "std", latchfree_loom))]
#[doc(hidden)]
pub use threaded::doorbell::{Check, Doorbell};
#[cfg(feature = "std")]
pub use threaded::{batch, pool};

pub mod balance;
#[cfg(any(target_has_atomic = "64", latchfree_loom))]
pub mod breaker;
#[cfg(feature = "alloc")]
pub mod buffer;
pub mod limiter;
#[cfg(feature = "alloc")]
pub mod map;
pub mod queue;
pub mod ring;
pub mod wheel;

/// The README's Rust snippets compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
