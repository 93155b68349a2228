//! Disruptor-style ring buffers.
//!
//! A ring is a power-of-two array of pre-allocated events. Producers claim
//! slots, write events in place and publish them; consumers read them in
//! place, each at its own pace, in a dependency graph (pipelines A → B → C,
//! diamonds (A, B) → C), and work groups share events so each is handled by
//! exactly one worker. No allocation happens per event, and a slot is reused
//! only when every consumer at the end of the graph has passed it.
//!
//! ```
//! use latchfree::ring::{Heap, Poll, Ring};
//!
//! // `Ring<Heap<u64>>`: one producer, the default wait strategy.
//! let ring = Ring::new(Heap::with_capacity(16).unwrap());
//! let mut graph = Ring::graph(&ring).unwrap();
//! let mut consumer = graph.consumer(&[]).unwrap();
//! let mut producer = graph.single_producer().unwrap();
//!
//! for i in 0..3 {
//!     producer.publish(|slot| *slot = i * 10).unwrap();
//! }
//! let mut seen = Vec::new();
//! assert_eq!(consumer.poll(|e, seq, _end| seen.push((seq, *e))), Poll::Processed(3));
//! assert_eq!(seen, [(0, 0), (1, 10), (2, 20)]);
//! assert_eq!(consumer.poll(|_, _, _| ()), Poll::Idle);
//! ```
//!
//! Pieces:
//! - [`Ring`] with [`Inline`] (const, `static`-ready) or [`Heap`] storage,
//!   [`Single`] or [`Multi`] producer mode, and a [`WaitStrategy`];
//! - [`Graph`] builds the consumer graph and hands out [`Producer`] or
//!   [`MultiProducer`];
//! - [`Consumer`] (multicast) and [`Worker`] (work queue) are pollers with
//!   blocking `wait` forms (each with a per-call `_limit` form);
//!   [`ReadBatch`] reads a batch in place and can release part of it early;
//!   [`Consumer::drain`] yields owned copies, releasing as it goes;
//! - under `std`, [`Disruptor`] runs handlers on named threads, laid out in
//!   stages as the `disruptor` crate does, with lifecycle callbacks, a
//!   thread-start hook, panic handling and graceful shutdown.
//!
//! The wait strategy is one per ring (`W`), shared by its producers and
//! consumers; a handle that needs another way to wait can loop on the
//! never-waiting `poll` with its own.

mod async_wait;
mod consumer;
mod error;
mod producer;
mod sequence;
mod shared;
#[cfg(feature = "futures-sink")]
mod sink;
mod spsc;
#[cfg(feature = "std")]
mod std_wait;
mod storage;
#[cfg(feature = "futures-core")]
mod stream;
mod wait;

pub use self::async_wait::AsyncWait;
pub use self::consumer::{Consumer, Drain, Poll, ReadBatch, Worker};
pub use self::error::{
    BuildError, CapacityError, ConsumeError, ForcePushError, PublishError, TimedOut,
};
pub use self::producer::{Claimed, ClaimedIter, MultiProducer, Producer};
pub use self::sequence::MAX_CAPACITY;
pub use self::shared::{AnyRing, Graph, Mode, Multi, Node, Ring, RingRef, Single};
#[cfg(feature = "futures-sink")]
pub use self::sink::{EventSink, SinkTarget};
pub use self::spsc::{Spsc, SpscConsumer, SpscProducer, TryPopError};
#[cfg(feature = "std")]
pub use self::std_wait::{Blocking, Parking, TimedWait, Timeout, Yielding};
pub use self::storage::Inline;
pub use self::storage::{Gate, InStorage, Stamp, StampTable, Storage, MAX_GATES};
#[cfg(feature = "alloc")]
pub use self::storage::{Heap, HeapBuilder};
#[cfg(feature = "futures-core")]
pub use self::stream::{EventStream, StreamSource};
pub use self::wait::{BusySpin, DefaultWait, WaitStrategy};
cfg_threads! {
    pub use crate::threaded::disruptor::{
        Disruptor, DisruptorBuilder, EventHandler, PanicPolicy, PanicReport,
    };
}

#[cfg(all(test, feature = "std"))]
mod tests;
