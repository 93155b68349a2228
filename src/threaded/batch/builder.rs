//! Configuring and starting a [`Batcher`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::error::{BatchError, BuildError};
use super::flusher::{Flusher, OnError, Source, Weigher};
use super::handoff::Handoff;
use super::metrics::Counters;
use super::{Batcher, Queue, Shared};
use crate::ring::Ring;
use crate::sync::blocking::Mutex;
use crate::sync::{thread, Arc, HandleArc};
use crate::threaded::lane;
use crate::threaded::room::Room;

/// The most flusher threads: a ring has 64 gates, one of which a work
/// group's claim takes.
pub const MAX_FLUSHERS: usize = crate::ring::MAX_GATES - 1;

/// Configures and starts a [`Batcher`].
///
/// ```
/// use std::time::Duration;
/// use latchfree::batch::Batcher;
///
/// let b = Batcher::builder::<std::io::Error>()
///     .max_items(512)
///     .max_bytes(64 * 1024, |line: &String| line.len())
///     .max_delay(Duration::from_millis(5))
///     .queue_capacity(4096)
///     .thread_name("log-writer")
///     .build(|lines: &mut Vec<String>| {
///         // Write `lines` somewhere; an `Err` goes to the error callback.
///         assert!(!lines.is_empty());
///         Ok(())
///     }).unwrap();
/// b.push("hello".to_string()).unwrap();
/// b.close();
/// ```
pub struct Builder<T, E> {
    pub(super) max_items: usize,
    pub(super) max_bytes: usize,
    pub(super) weigher: Option<Weigher<T>>,
    pub(super) max_delay: Duration,
    pub(super) capacity: usize,
    pub(super) flushers: usize,
    pub(super) name: String,
    pub(super) on_error: Option<OnError<T, E>>,
}

impl<T, E> fmt::Debug for Builder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_items", &self.max_items)
            .field("max_bytes", &self.max_bytes)
            .field("max_delay", &self.max_delay)
            .field("capacity", &self.capacity)
            .field("flushers", &self.flushers)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, E: 'static> Default for Builder<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static, E: 'static> Builder<T, E> {
    /// Defaults: 64 items, no byte limit, 1 ms delay, 1024 queued items,
    /// one flusher, errors and panics of batches printed to stderr.
    pub fn new() -> Self {
        Self {
            max_items: 64,
            max_bytes: usize::MAX,
            weigher: None,
            max_delay: Duration::from_millis(1),
            capacity: 1024,
            flushers: 1,
            name: String::from("latchfree-batch"),
            on_error: None,
        }
    }

    /// Most items per batch (at least 1). Bigger batches amortise the
    /// handler's fixed cost; smaller ones cut latency.
    pub fn max_items(mut self, n: usize) -> Self {
        self.max_items = n.max(1);
        self
    }

    /// Most bytes per batch, as weighed by `weigher`. A single item heavier
    /// than this still ships (alone).
    pub fn max_bytes(
        mut self,
        bytes: usize,
        weigher: impl Fn(&T) -> usize + Send + Sync + 'static,
    ) -> Self {
        self.max_bytes = bytes;
        self.weigher = Some(HandleArc::new(weigher));
        self
    }

    /// How long a batch may wait for more items, counted from its first.
    /// Zero is natural batching: ship what is there at once.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Items that may wait (rounded up to a power of two). When full,
    /// `push` waits, `try_push` refuses and `push_timeout` waits a while.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Flusher threads (1..=[`MAX_FLUSHERS`]). With more than one, batches run in
    /// parallel and order across batches is not kept.
    pub fn flushers(mut self, n: usize) -> Self {
        self.flushers = n.clamp(1, MAX_FLUSHERS);
        self
    }

    /// Flusher threads are named `<prefix>-<n>`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Receives every batch the handler rejected or panicked on, with its
    /// items (whatever the handler left in the `Vec`).
    pub fn on_error(
        mut self,
        f: impl Fn(BatchError<E>, &mut Vec<T>) + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(HandleArc::new(f));
        self
    }

    /// Starts the flushers, each with a clone of `handler`.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if the capacity is too large for a ring or a thread
    /// cannot start (then none is left running).
    pub fn build<H>(self, handler: H) -> Result<Batcher<T>, BuildError>
    where
        H: FnMut(&mut Vec<T>) -> Result<(), E> + Send + Clone + 'static,
    {
        let ring: Arc<Queue<T>> = lane::queue(self.capacity, self.flushers + 1)
            .map_err(|_| BuildError::Capacity(self.capacity))?;
        let mut graph = Ring::graph(ring.clone()).expect("fresh ring");
        let sources: Vec<Source<T>> = if self.flushers == 1 {
            alloc::vec![Source::One(graph.consumer(&[]).expect("gates sized"))]
        } else {
            graph
                .work_group_vec(self.flushers, &[])
                .expect("gates sized")
                .into_iter()
                .map(|w| Source::Many(w, 0))
                .collect()
        };
        let producers = lane::Lanes::new(
            graph
                .multi_producer()
                .expect("the graph has its consumers"),
        );
        let shared = Arc::new(Shared {
            ring,
            producers,
            handoff: Handoff::new(self.flushers),
            tap: None,
            counters: Counters::default(),
            room: Room::new(),
        });
        let on_error: OnError<T, E> = self.on_error.unwrap_or_else(|| {
            HandleArc::new(|e: BatchError<E>, items: &mut Vec<T>| {
                let why = match e {
                    BatchError::Failed(_) => "failed",
                    BatchError::Panicked(_) => "panicked",
                    BatchError::Unweighed(_) => {
                        std::eprintln!("latchfree batch: the weigher panicked on an item");
                        return;
                    }
                };
                std::eprintln!("latchfree batch: a batch of {} items {why}", items.len());
            })
        });
        // Clone every handler before starting a thread: a panicking `Clone`
        // then leaves nothing running.
        let mut handlers: Vec<H> = (1..sources.len()).map(|_| handler.clone()).collect();
        handlers.push(handler);
        let mut joins = Vec::new();
        for (i, (src, handler)) in sources.into_iter().zip(handlers).enumerate() {
            let f = Flusher {
                shared: shared.clone(),
                index: i,
                src,
                handler,
                on_error: on_error.clone(),
                weigher: self.weigher.clone(),
                max_items: self.max_items,
                max_bytes: self.max_bytes,
                max_delay: self.max_delay,
                batch: Vec::with_capacity(self.max_items.min(4096)),
                incoming: Vec::new(),
                bytes: 0,
                first_at: None,
                freed: false,
            };
            let started = thread::Builder::new()
                .name(alloc::format!("{}-{i}", self.name))
                .spawn(move || f.run());
            match started {
                Ok(j) => joins.push(j),
                Err(_) => {
                    // Stop the flushers already running before reporting.
                    shared.ring.close();
                    shared.handoff.wake_all();
                    for j in joins {
                        let _ = j.join();
                    }
                    return Err(BuildError::Spawn);
                }
            }
        }
        Ok(Batcher {
            shared,
            joins: Mutex::new(joins),
        })
    }
}
