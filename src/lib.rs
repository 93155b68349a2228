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
//! use latchfree::ring::{Disruptor, Heap, Multi, Ring};
//!
//! let balances: Arc<HashMap<u32, i64>> = Arc::new(HashMap::new());
//! let ring = Ring::<Heap<(u32, i64)>, Multi>::new(Heap::with_capacity(1024).unwrap());
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

#[cfg(all(latchfree_loom, not(feature = "std")))]
compile_error!("the loom models (`--cfg latchfree_loom`) need the `std` feature");

#[macro_use]
mod macros;
mod arena;
mod sync;
mod waker;

pub mod balance;
cfg_atomic64! {
    pub mod breaker;
}
#[cfg(feature = "alloc")]
pub mod buffer;
pub mod error;
pub mod limiter;
#[cfg(feature = "alloc")]
pub mod map;
pub mod queue;
pub mod ring;
pub mod wheel;

// The thread-owning adapters (`src/threaded/`), also under loom, whose
// models run their real protocols (`__loom` below). Their public paths are
// short: `pool` and `batch` here, the ring's runner and the timer service
// from `ring` and `wheel`.
cfg_threads! {
    #[cfg_attr(not(latchfree_loom), allow(unreachable_pub))]
    mod threaded;
    pub use threaded::{batch, pool};
}

/// The padding that keeps hot atomics apart (the ring's gates, see
/// [`ring::Storage::gates`]): crossbeam-utils' `CachePadded` wherever
/// cores share a data cache, a word-aligned wrapper on bare-metal ARM
/// (Cortex-M), which has no line to share falsely.
pub use sync::CachePadded;

// Footprint on Cortex-M (issue 14): a single-producer ring's overhead
// beyond its slots stays within 64 bytes (40 with word-aligned gates; it
// was 160 with 32-byte lines). CI builds thumbv7em, so this is checked.
#[cfg(all(target_arch = "arm", target_os = "none"))]
const _: () = assert!(
    core::mem::size_of::<ring::Ring<ring::Inline<u8, 1, 1>, ring::Single, ring::BusySpin>>() <= 64
);

/// Internals the loom models in `loom-tests/` drive directly: re-exports
/// only, the same in every build; not part of the API.
#[doc(hidden)]
pub mod __loom {
    cfg_threads! {
        pub use crate::threaded::batch::handoff::{clock, Flush, FlushCause, Handoff};
        pub use crate::threaded::batch::tap::Tap;
        pub use crate::threaded::doorbell::{Check, Doorbell};
        pub use crate::threaded::pool::join_pair;
        pub use crate::threaded::room::Room;
        pub use crate::threaded::signal::Signal;
        pub use crate::wheel::std_periodic::{Run, Series};
    }
    #[cfg(feature = "alloc")]
    pub use crate::buffer::idle::IdleSet;
    pub use crate::waker::AtomicWaker;
}

/// The README's Rust snippets compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
