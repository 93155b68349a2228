//! Consumer handles: [`Consumer`] (sees every event) and [`Worker`] (shares
//! events with the other workers of its group, each event handled once).
//!
//! Both are pollers first: [`Consumer::poll`] and [`Worker::poll`] never wait,
//! so they fit a `no_std` main loop, and report whether they processed
//! events, were gated by an upstream node, or found the ring idle. The
//! `wait` forms put the ring's wait strategy around the same poll.
//!
//! A consumer or worker keeps its place until the ring is closed or halted:
//! dropping one while producers go on makes them wait for it once the ring
//! fills (a [`Timeout`](super::Timeout) strategy turns that into an error and
//! [`Ring::halt`] releases them).

use core::cell::Cell;
use core::future::Future;
use core::marker::PhantomData;
use core::ops::Deref;
use core::task::Poll as TaskPoll;

use super::async_wait::{AsyncWait, Awaitable, Retry, Spin};
use super::error::ConsumeError;
use super::sequence::{distance, pack, word, Position};
use super::shared::{AnyRing, Mode, Node, Ring};
use super::storage::Storage;
use super::wait::WaitStrategy;
use crate::sync::{fence, Ordering};

/// What a poll found.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Poll, Ring, Single};
///
/// let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(Heap::builder(4).gates(2).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut first = graph.consumer(&[]).unwrap();
/// let mut second = graph.consumer(&[first.node()]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
///
/// assert_eq!(first.poll(|_, _, _| ()), Poll::Idle); // nothing published
/// producer.push(1).unwrap();
/// assert_eq!(second.poll(|_, _, _| ()), Poll::Gated); // `first` has not handled it
/// assert_eq!(first.poll(|_, _, _| ()), Poll::Processed(1));
/// producer.close();
/// assert_eq!(second.poll(|_, _, _| ()), Poll::Processed(1));
/// assert_eq!(second.poll(|_, _, _| ()), Poll::Closed); // closed and drained
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Handled this many events (at least one).
    Processed(usize),
    /// Events are published but an upstream node has not handled them yet.
    Gated,
    /// Nothing published that this handle has not handled, and no producer
    /// is writing the next event.
    Idle,
    /// The next event's slot is claimed by a producer that has not published
    /// it yet (multi-producer rings only). Events claimed after it may
    /// already be published; they are handed out in sequence order, so they
    /// wait for this one. Keep polling: a publish is under way.
    Unfinished,
    /// The ring is closed and this handle has handled everything published.
    Closed,
    /// The ring was halted.
    Halted,
}

/// A consumer that sees every event, in sequence order, after the nodes it
/// was built to follow.
///
/// `Send` but not `Sync`: it is its gate's only writer.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(Heap::builder(8).gates(2).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// // Multicast: both consumers see every event.
/// let mut audit = graph.consumer(&[]).unwrap();
/// let mut totals = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// for i in 1..=3 {
///     producer.push(i).unwrap();
/// }
/// let (mut seen, mut sum) = (Vec::new(), 0);
/// audit.poll(|e, seq, _end_of_batch| seen.push((seq, *e)));
/// totals.poll(|e, _, _| sum += e);
/// assert_eq!(seen, [(0, 1), (1, 2), (2, 3)]);
/// assert_eq!((sum, totals.sequence()), (6, 3));
/// ```
pub struct Consumer<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    ring: R,
    gate: usize,
    deps_plain: u64,
    deps_workers: u64,
    node: Node,
    next: Position,
    /// How many events from `next` on are known to be available
    /// (`0..=capacity`): a count in a word, so a 32-bit target keeps it in
    /// one register.
    avail: usize,
    /// `capacity - 1`, kept here so the hot path needs no load for it.
    mask: usize,
    /// Whether the `avail` events from `next` may hold skipped slots (only on a
    /// multi-producer ring): while false, events are handed out without
    /// loading their stamps again.
    skips: bool,
    /// How long an awaiting wait spins before it registers, and the waker
    /// cell the handle keeps between its awaits (plain state, touched only
    /// by the `_async` waits of an `AsyncWait` ring; the cell is given
    /// back on drop).
    spin: Spin,
    _not_sync: PhantomData<Cell<()>>,
}

impl<R> Drop for Consumer<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    fn drop(&mut self) {
        self.ring.release_wait_cell(self.spin.take_home());
    }
}

/// Releases the events a consumer has handled when dropped, including on
/// unwind from a panicking handler: the event that panicked counts as
/// handled, so it is neither redelivered nor left to stall the ring.
struct Commit<'a, R, S: Storage, M: Mode, W: WaitStrategy>
where
    R: Deref<Target = Ring<S, M, W>>,
{
    consumer: &'a mut Consumer<R>,
    /// Events of the batch that count as handled.
    done: usize,
}

impl<R, S: Storage, M: Mode, W: WaitStrategy> Drop for Commit<'_, R, S, M, W>
where
    R: Deref<Target = Ring<S, M, W>>,
{
    #[inline]
    fn drop(&mut self) {
        self.consumer.release(self.done);
    }
}

impl<R, S, M, W> Consumer<R>
where
    R: Deref<Target = Ring<S, M, W>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    pub(super) fn new(
        ring: R,
        gate: usize,
        deps_plain: u64,
        deps_workers: u64,
        node: Node,
    ) -> Self {
        let first = ring.first;
        Self {
            mask: ring.capacity() - 1,
            ring,
            gate,
            deps_plain,
            deps_workers,
            node,
            next: Position::new(first),
            avail: 0,
            skips: false,
            spin: Spin::new(),
            _not_sync: PhantomData,
        }
    }

    /// This consumer as a graph node, for nodes that run after it.
    pub fn node(&self) -> Node {
        self.node
    }

    /// The sequence of the next event this consumer will handle.
    pub fn sequence(&self) -> u64 {
        self.next.get()
    }

    /// How many events are ready for this consumer now: published, past
    /// every upstream node, not yet handled by it. Always rescans; stale
    /// once producers or upstream nodes move on.
    #[inline]
    pub fn available(&mut self) -> usize {
        self.refresh(usize::MAX)
    }

    /// The number of events ready for this consumer ([`available`](Self::available)).
    #[inline]
    pub fn len(&mut self) -> usize {
        self.available()
    }

    /// Whether no event is ready for this consumer now. May be stale under
    /// concurrency.
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        self.available() == 0
    }

    /// `available`, inlined into `poll` and `wait`: a cached batch of at
    /// least `limit`, or one rescan of the barrier (a cursor load for a
    /// consumer right after the producer).
    #[inline(always)]
    fn refresh(&mut self, limit: usize) -> usize {
        let cached = self.avail;
        // `poll` and `wait` pass no limit: a batch is everything published,
        // so they always rescan (the test folds away for them).
        if limit != usize::MAX && cached >= limit {
            return cached;
        }
        let ring: &Ring<S, M, W> = &self.ring;
        let cap = self.mask + 1;
        let n = if self.deps_plain | self.deps_workers == 0 {
            if M::MULTI {
                // Only the part past what is already known needs scanning
                // (one stamp load per event), and the scan says whether it
                // met a skipped slot.
                let (k, skips) = ring.published_scan(self.next.get() + cached as u64, cap - cached);
                self.skips = (cached > 0 && self.skips) || skips;
                cached + k
            } else {
                // One cursor load covers everything published. Acquire:
                // pairs with the producer's Release cursor store, so every
                // event below it is visible. No cap on the count: the
                // producer never gets more than a capacity past the
                // terminal gates, which are at or behind this consumer's
                // (downstream of it, or its own), and the cursor never
                // reads as behind `next` (this consumer saw it there).
                let n = distance(self.next.word(), ring.cursor.load(Ordering::Acquire));
                debug_assert!(n <= cap);
                n
            }
        } else {
            // Behind other nodes no stamp is scanned: check each event.
            self.skips = M::MULTI;
            ring.gate_lead(self.next.word(), self.deps_plain, self.deps_workers, cap)
        };
        self.avail = n;
        n
    }

    #[inline]
    /// Releases the next `k` events (`k <= avail`): they count as handled.
    fn release(&mut self, k: usize) {
        debug_assert!(k <= self.avail);
        self.avail -= k;
        self.next.advance(k);
        self.ring.store_gate(self.gate, self.next.word());
    }

    /// Whether the ring is halted. Relaxed: nothing is read on the
    /// strength of it, and a halt that happened before this poll is seen by
    /// coherence.
    #[inline(always)]
    fn halted(&self) -> bool {
        Ring::<S, M, W>::halted_bit(self.ring.state_relaxed())
    }

    /// Why nothing is available: gated, idle, closed or halted.
    fn empty_state(&self) -> Poll {
        empty_state(
            &self.ring,
            self.next.get(),
            self.deps_plain | self.deps_workers != 0,
        )
    }

    /// Hands every available event to `handler` as
    /// `(event, sequence, end_of_batch)`, then releases them. Never waits.
    ///
    /// If `handler` panics, the events before it and the one that panicked
    /// count as handled; the rest are handed out by the next poll.
    ///
    /// After [`Ring::halt`] it hands out nothing more and returns
    /// [`Poll::Halted`], even with events left (they are abandoned); a poll
    /// already running when the halt comes finishes its batch.
    #[inline]
    pub fn poll<F: FnMut(&S::Item, u64, bool)>(&mut self, handler: F) -> Poll {
        self.poll_limit(usize::MAX, handler)
    }

    /// [`poll`](Self::poll), handing out at most `max` events (at least
    /// one) this time: smaller batches release slots to producers sooner.
    /// The limit is for this call only.
    #[inline]
    pub fn poll_limit<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        max: usize,
        mut handler: F,
    ) -> Poll {
        let max = max.max(1);
        let n = self.refresh(max).min(max);
        if n == 0 {
            return self.empty_state();
        }
        // Once per batch, not per event: a halt is seen at the next poll.
        if self.halted() {
            return Poll::Halted;
        }
        Poll::Processed(self.run(n, &mut handler))
    }

    /// Hands the `n >= 1` events from `next` on to `handler` and releases
    /// them (on unwind too, up to and including the one that panicked).
    #[inline(always)]
    fn run<F: FnMut(&S::Item, u64, bool)>(&mut self, n: usize, handler: &mut F) -> usize {
        let start = self.next.get();
        // Offsets from `start` in a word, so a 32-bit target counts events
        // with one register, not a pair; the handler's 64-bit sequence is
        // `start + i` (dead code for a handler that ignores it).
        let mut last = n - 1;
        let skips = M::MULTI && self.skips;
        if skips {
            while last > 0 && self.ring.skipped(start + last as u64) {
                last -= 1;
            }
        }
        let mask = self.mask;
        let base = self.next.word();
        let mut commit = Commit {
            consumer: self,
            done: 0,
        };
        let ring: &Ring<S, M, W> = &commit.consumer.ring;
        // `n >= 1`: test for the end after each event, not before the first.
        let mut i = 0;
        loop {
            commit.done = i + 1;
            let seq = start + i as u64;
            if !(skips && ring.skipped(seq)) {
                let p = ring.storage.slot(base.wrapping_add(i) & mask);
                // SAFETY: `seq` is below this consumer's barrier (published
                // and past every upstream gate) and at or above its own gate,
                // so the producer cannot reclaim the slot until we release
                // it; others only read it too.
                handler(unsafe { &*p }, seq, i == last);
            }
            i += 1;
            if i == n {
                break;
            }
        }
        drop(commit);
        n
    }

    /// Like [`poll`](Self::poll), but waits with the ring's wait strategy
    /// until there is something to handle. Returns how many were handled.
    ///
    /// # Errors
    ///
    /// `Closed` once the ring is closed and drained for this consumer,
    /// `Halted`, or `Timeout` from a time-limited strategy.
    ///
    /// The barrier is read once per batch, as in [`poll`](Self::poll): when
    /// events are ready `wait` costs what `poll` does; the wait strategy,
    /// and the closed and halted checks, run only while nothing is ready.
    #[inline]
    pub fn wait<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        handler: F,
    ) -> Result<usize, ConsumeError> {
        self.wait_limit(usize::MAX, handler)
    }

    /// [`wait`](Self::wait), handing out at most `max` events (at least
    /// one) this time.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    #[inline]
    pub fn wait_limit<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        max: usize,
        mut handler: F,
    ) -> Result<usize, ConsumeError> {
        self.wait_using(max, None::<&W>, &mut handler)
    }

    /// [`wait`](Self::wait), but waiting with `strategy` instead of the
    /// ring's own: a per-consumer wait (a latency-critical consumer spins
    /// on a ring whose others park, or the reverse). `strategy` must not
    /// need [`notify`](WaitStrategy::notify) (its `NOTIFIES` is `false`,
    /// checked at compile time): the ring notifies only its own strategy.
    ///
    /// ```
    /// use latchfree::ring::{BusySpin, Heap, Ring};
    ///
    /// // The ring parks by default; this consumer spins.
    /// let ring = Ring::new(Heap::with_capacity(8).unwrap());
    /// let mut graph = Ring::graph(&ring).unwrap();
    /// let mut hot = graph.consumer(&[]).unwrap();
    /// let mut producer = graph.single_producer().unwrap();
    /// producer.push(1u32).unwrap();
    /// assert_eq!(hot.wait_with(&BusySpin, |e, _, _| assert_eq!(*e, 1)), Ok(1));
    /// ```
    ///
    /// A strategy that sleeps until notified is refused at compile time:
    ///
    /// ```compile_fail
    /// use latchfree::ring::{Blocking, Heap, Ring};
    ///
    /// let ring = Ring::new(Heap::<u32>::with_capacity(8).unwrap());
    /// let mut graph = Ring::graph(&ring).unwrap();
    /// let mut c = graph.consumer(&[]).unwrap();
    /// let _ = c.wait_with(&Blocking::new(), |_, _, _| ()); // nobody would wake it
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    #[inline]
    pub fn wait_with<V: WaitStrategy, F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        strategy: &V,
        mut handler: F,
    ) -> Result<usize, ConsumeError> {
        const { assert!(!V::NOTIFIES, "only the ring's own strategy is notified") };
        self.wait_using(usize::MAX, Some(strategy), &mut handler)
    }

    /// `wait_limit` with `strategy`, or the ring's own for `None`.
    #[inline(always)]
    fn wait_using<V: WaitStrategy, F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        max: usize,
        strategy: Option<&V>,
        handler: &mut F,
    ) -> Result<usize, ConsumeError> {
        let max = max.max(1);
        let mut n = self.refresh(max).min(max);
        if n == 0 {
            // Values in, a count out: the handle's fields stay in registers
            // across the (not inlined) slow path.
            let (ring, at) = (&*self.ring, self.next.get());
            let (plain, workers) = (self.deps_plain, self.deps_workers);
            let (found, skips) = match strategy {
                Some(s) => wait_ready(ring, s, at, plain, workers)?,
                None => wait_ready(ring, &ring.wait, at, plain, workers)?,
            };
            self.avail = found;
            self.skips = skips;
            n = found.min(max);
        }
        // Once per batch, as in `poll`.
        if self.halted() {
            return Err(ConsumeError::Halted);
        }
        Ok(self.run(n, handler))
    }

    /// Takes the available events as a [`ReadBatch`]
    /// to read in place and release, all at once when it is dropped or in
    /// parts with [`ReadBatch::release`]. Never waits.
    ///
    /// # Errors
    ///
    /// The [`Poll`] state (never `Processed`) when nothing is available.
    pub fn read(&mut self) -> Result<ReadBatch<'_, R>, Poll> {
        self.read_limit(usize::MAX)
    }

    /// [`read`](Self::read), taking at most `max` events (at least one).
    ///
    /// # Errors
    ///
    /// As for [`read`](Self::read).
    pub fn read_limit(&mut self, max: usize) -> Result<ReadBatch<'_, R>, Poll> {
        let max = max.max(1);
        let n = self.refresh(max).min(max);
        if n == 0 {
            return Err(self.empty_state());
        }
        if self.halted() {
            return Err(Poll::Halted);
        }
        let start = self.next.get();
        Ok(ReadBatch {
            consumer: self,
            start,
            end: start + n as u64,
        })
    }
}

impl<R, S, M, W> Consumer<R>
where
    R: Deref<Target = Ring<S, M, W>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
    S::Item: Clone,
{
    /// Takes the events available now as an iterator of owned
    /// `(sequence, event)` pairs, cloned out of their slots: each slot goes
    /// back to the producers as soon as its event is yielded, so a slow
    /// loop body never holds the ring. Events published after the call are
    /// left for the next one. Never waits; yields nothing after
    /// [`Ring::halt`].
    ///
    /// Dropping the iterator early leaves the rest for the next poll. If a
    /// `clone` panics, that event stays unreleased too.
    ///
    /// ```
    /// use latchfree::ring::{Heap, Ring};
    ///
    /// let ring = Ring::new(Heap::<String>::with_capacity(4).unwrap());
    /// let mut graph = Ring::graph(&ring).unwrap();
    /// let mut consumer = graph.consumer(&[]).unwrap();
    /// let mut producer = graph.single_producer().unwrap();
    /// for word in ["a", "b", "c", "d"] {
    ///     producer.push(word.to_string()).unwrap();
    /// }
    /// let mut drain = consumer.drain();
    /// assert_eq!(drain.next(), Some((0, "a".to_string())));
    /// assert_eq!(drain.next(), Some((1, "b".to_string())));
    /// drop(drain);
    /// // Two slots are free again; "c" and "d" wait for the next call.
    /// producer.push("e".to_string()).unwrap();
    /// let rest: Vec<_> = consumer.drain().map(|(_, w)| w).collect();
    /// assert_eq!(rest, ["c", "d", "e"]);
    /// ```
    pub fn drain(&mut self) -> Drain<'_, R> {
        let n = if self.halted() { 0 } else { self.available() };
        let end = self.next.get() + n as u64;
        Drain {
            consumer: self,
            end,
        }
    }
}

/// The iterator of [`Consumer::drain`]: owned events, each slot released as
/// its event is yielded.
pub struct Drain<'a, R>
where
    R: Deref,
    R::Target: AnyRing,
{
    consumer: &'a mut Consumer<R>,
    end: u64,
}

impl<R, S, M, W> Iterator for Drain<'_, R>
where
    R: Deref<Target = Ring<S, M, W>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
    S::Item: Clone,
{
    type Item = (u64, S::Item);

    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut *self.consumer;
        while c.next.get() < self.end {
            let seq = c.next.get();
            let ring: &Ring<S, M, W> = &c.ring;
            let item = if M::MULTI && c.skips && ring.skipped(seq) {
                None
            } else {
                // SAFETY: `seq` is below this consumer's barrier (counted by
                // `available` when the drain began) and at or above its own
                // gate, so no producer reclaims the slot before the release
                // below; others only read it too.
                Some(unsafe { &*ring.storage.slot(word(seq) & c.mask) }.clone())
            };
            c.release(1);
            if let Some(item) = item {
                return Some((seq, item));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some((self.end - self.consumer.next.get()) as usize))
    }
}

/// Why a handle at `next` finds nothing available: halted, closed and
/// drained, gated (events published but an upstream node is behind them:
/// only possible if it `has_deps`) or idle.
fn empty_state<S: Storage, M: Mode, W: WaitStrategy>(
    ring: &Ring<S, M, W>,
    next: u64,
    has_deps: bool,
) -> Poll {
    if Ring::<S, M, W>::halted_bit(ring.state()) {
        return Poll::Halted;
    }
    if ring.closed_remaining(next) == Some(0) {
        return Poll::Closed;
    }
    if has_deps && ring.published_from(next, 1) > 0 {
        Poll::Gated
    } else if ring.claimed_past(next) {
        Poll::Unfinished
    } else {
        Poll::Idle
    }
}

/// The slow path of [`Consumer::wait`]: waits with the ring's strategy
/// until events are available to a consumer at `next` behind the gates
/// `deps_plain`/`deps_workers` (or the producer when there are none) and
/// returns how many (and whether they may hold skipped slots), or why there
/// will be none. The closed and halted checks live here, off the path that
/// finds events ready.
#[inline(never)]
fn wait_ready<S: Storage, M: Mode, W: WaitStrategy, V: WaitStrategy>(
    ring: &Ring<S, M, W>,
    strategy: &V,
    next: u64,
    deps_plain: u64,
    deps_workers: u64,
) -> Result<(usize, bool), ConsumeError> {
    let cap = ring.capacity();
    let has_deps = deps_plain | deps_workers != 0;
    let scan = || {
        if has_deps {
            (
                ring.gate_lead(word(next), deps_plain, deps_workers, cap),
                M::MULTI,
            )
        } else {
            ring.published_scan(next, cap)
        }
    };
    loop {
        let (mut found, mut skips) = scan();
        if found > 0 {
            return Ok((found, skips));
        }
        // Only halted and closed matter here: gated, idle and unfinished
        // all mean wait, so the claim word or cursor is not read to tell
        // them apart (`empty_state` would, a hot line for a consumer).
        if Ring::<S, M, W>::halted_bit(ring.state()) {
            return Err(ConsumeError::Halted);
        }
        if ring.closed_remaining(next) == Some(0) {
            return Err(ConsumeError::Closed);
        }
        let waited = strategy.wait_until(|| {
            (found, skips) = scan();
            found > 0
                || Ring::<S, M, W>::halted_bit(ring.state())
                || ring.closed_remaining(next) == Some(0)
        });
        if found > 0 {
            return Ok((found, skips));
        }
        if waited.is_err() {
            return Err(ConsumeError::Timeout);
        }
        // Halted, or closed and drained: reported at the top of the loop.
    }
}

/// Events taken by [`Consumer::read`], readable in place until released.
///
/// Dropping the batch releases all of it. [`release`](Self::release) hands
/// the first events back to the producers early, while the rest are still
/// being worked on; the borrow checker keeps you from reading them after.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(Heap::builder(4).gates(1).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// for i in 0..4 {
///     producer.push(i * 10).unwrap();
/// }
/// assert!(producer.try_push(99).unwrap_err().is_full());
///
/// let mut batch = consumer.read().unwrap();
/// assert_eq!((batch.len(), batch.get(1)), (4, Some(&10)));
/// batch.release(2); // the first two slots go back to the producer now...
/// let rest: Vec<u32> = batch.iter().map(|(_seq, e)| *e).collect();
/// assert_eq!(rest, [20, 30]); // ...while the rest are still readable
/// drop(batch);
/// producer.push(40).unwrap();
/// ```
pub struct ReadBatch<'a, R>
where
    R: Deref,
    R::Target: AnyRing,
{
    consumer: &'a mut Consumer<R>,
    start: u64,
    end: u64,
}

impl<R, S, M, W> ReadBatch<'_, R>
where
    R: Deref<Target = Ring<S, M, W>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    /// Events still held by the batch (including any skipped slots of a
    /// multi-producer ring, which [`iter`](Self::iter) passes over).
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether every event was released.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The sequence of the first event still held.
    pub fn first_sequence(&self) -> u64 {
        self.start
    }

    /// The event with sequence `seq`, if the batch still holds it (and it
    /// was not skipped).
    pub fn get(&self, seq: u64) -> Option<&S::Item> {
        let ring: &Ring<S, M, W> = &self.consumer.ring;
        if seq < self.start || seq >= self.end || ring.skipped(seq) {
            return None;
        }
        // SAFETY: as in `Consumer::poll`: held by this batch, unreleased.
        Some(unsafe { &*ring.storage.slot(ring.index(seq)) })
    }

    /// Iterates `(sequence, event)` over the events still held.
    pub fn iter<'b>(&'b self) -> impl Iterator<Item = (u64, &'b S::Item)> + 'b
    where
        S::Item: 'b,
    {
        (self.start..self.end).filter_map(move |s| self.get(s).map(|e| (s, e)))
    }

    /// Releases the first `count` events held (all, if fewer remain) so
    /// producers can reuse their slots.
    pub fn release(&mut self, count: usize) {
        let upto = (self.start + count as u64).min(self.end);
        self.consumer.release((upto - self.start) as usize);
        self.start = upto;
    }
}

impl<R> Drop for ReadBatch<'_, R>
where
    R: Deref,
    R::Target: AnyRing,
{
    fn drop(&mut self) {
        let c = &mut *self.consumer;
        // The batch came out of the consumer's `avail` events.
        let k = (self.end - c.next.get()) as usize;
        c.avail -= k;
        c.next.advance(k);
        c.ring.store_gate(c.gate, c.next.word());
    }
}

/// One worker of a work group: the group's workers share the events, each
/// event handled by exactly one of them (LMAX's `WorkerPool`, which the Java
/// Disruptor dropped in 4.0).
///
/// # Protocol
///
/// The group has a *claim* gate (the next unclaimed sequence) and each worker
/// a *word* gate holding `pack(position, busy)`. To take a batch a worker
/// reads the claim `c`, finds `k` events available from it, announces
/// `pack(c, busy)` in its word, issues a `SeqCst` fence and CASes the claim
/// from `c` to `c + k`; after handling the batch it stores
/// `pack(c + k, idle)`. Whoever gates on the group (a producer or a
/// downstream consumer) reads the claim, fences, then reads the words and
/// counts only busy ones: by the two fences, a worker whose busy word it
/// missed must have CASed after it read the claim, so that worker's batch
/// lies at or above the claim it already counted. Both word stores are
/// Release: a gater that reads a busy word in place of the idle word it
/// overwrote must still see the batch handled before (a Relaxed announce
/// would break that chain: it does not continue the idle store's release
/// sequence). Idle workers hold nothing, so a worker that stops polling
/// never stalls the ring.
///
/// If a handler panics, the rest of the worker's batch stays with it (its
/// word stays busy) and its next poll handles it first. A worker dropped
/// before that (its thread unwound, say) goes idle as it goes, so the rest
/// of the group and the producers go on; the events left in its batch are
/// abandoned, since no other worker can claim them back. Poll once more
/// after a caught panic (the [`Disruptor`](super::Disruptor) runner does) to
/// lose nothing.
///
/// ```
/// use latchfree::ring::{BusySpin, Heap, Ring, Single};
///
/// let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(Heap::builder(8).gates(3).build().unwrap(), BusySpin);
/// let mut graph = Ring::graph(&ring).unwrap();
/// let [mut w1, mut w2] = graph.work_group::<2>(&[]).unwrap(); // 3 gates
/// let mut producer = graph.single_producer().unwrap();
/// for i in 0..6 {
///     producer.push(i).unwrap();
/// }
/// let mut handled = Vec::new();
/// w1.poll_limit(2, |e, _, _| handled.push(*e)); // claims 0 and 1
/// w2.poll(|e, _, _| handled.push(*e)); // claims the rest
/// w1.poll(|e, _, _| handled.push(*e)); // nothing left
/// handled.sort();
/// assert_eq!(handled, [0, 1, 2, 3, 4, 5]); // each event exactly once
/// ```
pub struct Worker<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    ring: R,
    claim: usize,
    me: usize,
    deps_plain: u64,
    deps_workers: u64,
    group: Node,
    /// Events claimed by this worker but not handled because the handler
    /// panicked on an earlier one; handled first by the next poll.
    backlog: (u64, u64),
    busy: bool,
    /// The last poll stored an idle word over a busy one ([`Worker::released`]).
    released: bool,
    /// As `Consumer::spin`.
    spin: Spin,
    _not_sync: PhantomData<Cell<()>>,
}

impl<R, S, M, W> Worker<R>
where
    R: Deref<Target = Ring<S, M, W>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    pub(super) fn new(
        ring: R,
        claim: usize,
        me: usize,
        deps_plain: u64,
        deps_workers: u64,
        group: Node,
    ) -> Self {
        Self {
            ring,
            claim,
            me,
            deps_plain,
            deps_workers,
            group,
            backlog: (0, 0),
            busy: false,
            released: false,
            spin: Spin::new(),
            _not_sync: PhantomData,
        }
    }

    /// The whole work group as a graph node, for nodes that run after it.
    pub fn group(&self) -> Node {
        self.group
    }

    /// The group's claim as a 64-bit position, rebuilt from the claim word
    /// and the ring's epoch (a worker's own last view may be laps old).
    fn claim_pos(&self) -> u64 {
        let ring: &Ring<S, M, W> = &self.ring;
        // Acquire: pairs with other workers' AcqRel claim CAS (see the type
        // docs); also the value we CAS against.
        let claim = &ring.storage.gates()[self.claim];
        let (c, epoch) = ring.read_anchored(|| claim.load(Ordering::Acquire));
        ring.group_position(c, epoch)
    }

    /// How many events from `pos` on are ready, and whether they may hold
    /// skipped slots (a stamp scan knows; behind other nodes, assume so).
    fn available_from(&self, pos: u64, limit: usize) -> (usize, bool) {
        let ring: &Ring<S, M, W> = &self.ring;
        if self.deps_plain | self.deps_workers == 0 {
            ring.published_scan(pos, limit.min(ring.capacity()))
        } else {
            let lead = ring.gate_lead(word(pos), self.deps_plain, self.deps_workers, limit);
            (lead, M::MULTI)
        }
    }

    fn set_idle(&mut self, pos: u64) {
        if self.busy {
            self.busy = false;
            self.released = true;
            self.ring.store_gate(self.me, pack(word(pos), false));
        }
    }

    /// Whether the last poll withdrew a claim announcement of this worker
    /// (stored its word idle over a busy one), which may give producers
    /// room: always after a poll that handled events, and also after one
    /// that returned [`Poll::Idle`] (or `Closed`) because another worker
    /// won the claim it had announced. A producer that read the
    /// announcement counted it as holding slots, so whoever tells waiting
    /// producers about freed slots outside the ring's wait strategy (which
    /// the ring notifies itself) must do so after such a poll too.
    ///
    /// ```
    /// use latchfree::ring::{BusySpin, Heap, Poll, Ring, Single};
    ///
    /// let ring = Ring::<Heap<u32>, Single, BusySpin>::with_wait(Heap::builder(4).gates(3).build().unwrap(), BusySpin);
    /// let mut graph = Ring::graph(&ring).unwrap();
    /// let [mut w1, _w2] = graph.work_group::<2>(&[]).unwrap();
    /// let mut producer = graph.single_producer().unwrap();
    /// assert_eq!(w1.poll(|_, _, _| ()), Poll::Idle);
    /// assert!(!w1.released()); // announced nothing
    /// producer.push(7).unwrap();
    /// assert_eq!(w1.poll(|_, _, _| ()), Poll::Processed(1));
    /// assert!(w1.released());
    /// ```
    pub fn released(&self) -> bool {
        self.released
    }

    /// Handles `[start, end)`, which this worker owns, checking each stamp
    /// for a skipped slot only if `skips`; on unwind the rest becomes the
    /// backlog and the word stays busy at the first unhandled event.
    fn run<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        start: u64,
        end: u64,
        skips: bool,
        handler: &mut F,
    ) {
        struct Unwind<'a, R: Deref>
        where
            R::Target: AnyRing,
        {
            worker: &'a mut Worker<R>,
            next: u64,
            end: u64,
        }
        impl<R: Deref> Drop for Unwind<'_, R>
        where
            R::Target: AnyRing,
        {
            fn drop(&mut self) {
                if self.next < self.end {
                    // Unwinding: keep the rest for the next poll.
                    self.worker.backlog = (self.next, self.end);
                    self.worker
                        .ring
                        .store_gate(self.worker.me, pack(word(self.next), true));
                }
            }
        }
        let mut last = end - 1;
        let skips = M::MULTI && skips;
        if skips {
            while last > start && self.ring.skipped(last) {
                last -= 1;
            }
        }
        let mut guard = Unwind {
            worker: self,
            next: start,
            end,
        };
        let ring: &Ring<S, M, W> = &guard.worker.ring;
        for seq in start..end {
            guard.next = seq + 1;
            if skips && ring.skipped(seq) {
                continue;
            }
            // SAFETY: this worker owns `seq` (claimed by its CAS, or kept in
            // its backlog), the barrier has passed it, and the busy word
            // keeps producers from reclaiming it until we go idle.
            handler(
                unsafe { &*ring.storage.slot(ring.index(seq)) },
                seq,
                seq == last,
            );
        }
        guard.next = end;
        drop(guard);
    }

    /// Claims a batch of available events and hands each to `handler` as
    /// `(event, sequence, end_of_batch)`. Never waits.
    ///
    /// If `handler` panics, the event that panicked counts as handled and the
    /// rest of the batch stays with this worker for its next poll.
    ///
    /// After [`Ring::halt`] it claims nothing more and returns
    /// [`Poll::Halted`]; a backlog left by a panic is abandoned too.
    pub fn poll<F: FnMut(&S::Item, u64, bool)>(&mut self, handler: F) -> Poll {
        self.poll_limit(Self::DEFAULT_CLAIM, handler)
    }

    /// How many events one claim of [`poll`](Self::poll) and
    /// [`wait`](Self::wait) takes at most.
    pub const DEFAULT_CLAIM: usize = 64;

    /// [`poll`](Self::poll), claiming at most `max` events (at least one)
    /// this time. Larger claims mean fewer CASes; smaller ones spread work
    /// more evenly over the group.
    pub fn poll_limit<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        max: usize,
        mut handler: F,
    ) -> Poll {
        let max = max.max(1);
        self.released = false;
        // Once per poll (a batch), not per event.
        // Relaxed: a bit test only (see `Ring::state_relaxed`).
        if Ring::<S, M, W>::halted_bit(self.ring.state_relaxed()) {
            return Poll::Halted;
        }
        if self.backlog.0 < self.backlog.1 {
            let (start, end) = self.backlog;
            self.backlog = (0, 0);
            self.run(start, end, true, &mut handler);
            self.set_idle_after(end);
            return Poll::Processed((end - start) as usize);
        }
        loop {
            let pos = self.claim_pos();
            let gates = self.ring.storage.gates();
            let (k, skips) = self.available_from(pos, max);
            if k == 0 {
                self.set_idle(pos);
                return self.empty_state(pos);
            }
            // Release store, then the SeqCst fence: the fence orders the
            // announcement before the claim CAS (see the type docs); Release
            // because a downstream gater that reads this word (Acquire) in
            // place of the idle store it overwrites must still see the
            // events we handled before it (a plain store does not continue
            // the idle store's release sequence; loom found this at three
            // preemptions: `downstream_of_a_work_group`).
            gates[self.me].store(pack(word(pos), true), Ordering::Release);
            self.busy = true;
            fence(Ordering::SeqCst);
            let end = pos + k as u64;
            // AcqRel: Release so that a gater that reads the new claim (with
            // Acquire) also orders our fence before its own; see type docs.
            let claimed = gates[self.claim].compare_exchange(
                word(pos),
                word(end),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if claimed.is_err() {
                crate::sync::spin_loop();
                continue;
            }
            // The claimed range is the one just scanned: its stamps, and so
            // `skips`, cannot change until this group releases it.
            self.run(pos, end, skips, &mut handler);
            self.set_idle_after(end);
            return Poll::Processed(k);
        }
    }

    fn set_idle_after(&mut self, end: u64) {
        self.busy = true;
        self.set_idle(end);
    }

    fn empty_state(&self, pos: u64) -> Poll {
        let ring: &Ring<S, M, W> = &self.ring;
        if Ring::<S, M, W>::halted_bit(ring.state()) {
            return Poll::Halted;
        }
        if ring.closed_remaining(pos) == Some(0) {
            return Poll::Closed;
        }
        if self.deps_plain | self.deps_workers != 0 && ring.published_from(pos, 1) > 0 {
            Poll::Gated
        } else if ring.claimed_past(pos) {
            Poll::Unfinished
        } else {
            Poll::Idle
        }
    }

    /// Like [`poll`](Self::poll), but waits with the ring's wait strategy
    /// until there is something to claim. Returns how many were handled.
    ///
    /// # Errors
    ///
    /// `Closed` once the ring is closed and nothing is left to claim,
    /// `Halted`, or `Timeout` from a time-limited strategy.
    pub fn wait<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        handler: F,
    ) -> Result<usize, ConsumeError> {
        self.wait_limit(Self::DEFAULT_CLAIM, handler)
    }

    /// [`wait`](Self::wait), claiming at most `max` events (at least one).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_limit<F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        max: usize,
        handler: F,
    ) -> Result<usize, ConsumeError> {
        self.wait_using(max, None::<&W>, handler)
    }

    /// [`wait`](Self::wait), but waiting with `strategy` instead of the
    /// ring's own (see [`Consumer::wait_with`]; `NOTIFIES` must be `false`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_with<V: WaitStrategy, F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        strategy: &V,
        handler: F,
    ) -> Result<usize, ConsumeError> {
        const { assert!(!V::NOTIFIES, "only the ring's own strategy is notified") };
        self.wait_using(Self::DEFAULT_CLAIM, Some(strategy), handler)
    }

    /// `wait_limit` with `strategy`, or the ring's own for `None`.
    fn wait_using<V: WaitStrategy, F: FnMut(&S::Item, u64, bool)>(
        &mut self,
        max: usize,
        strategy: Option<&V>,
        mut handler: F,
    ) -> Result<usize, ConsumeError> {
        loop {
            match self.poll_limit(max, &mut handler) {
                Poll::Processed(n) => return Ok(n),
                Poll::Closed => return Err(ConsumeError::Closed),
                Poll::Halted => return Err(ConsumeError::Halted),
                Poll::Gated | Poll::Idle | Poll::Unfinished => {}
            }
            let ready = || {
                let pos = self.claim_pos();
                self.available_from(pos, 1).0 > 0
                    || Ring::<S, M, W>::halted_bit(self.ring.state())
                    || self.ring.closed_remaining(pos) == Some(0)
            };
            let waited = match strategy {
                Some(s) => s.wait_until(ready),
                None => self.ring.wait.wait_until(ready),
            };
            if waited.is_err() {
                return Err(ConsumeError::Timeout);
            }
        }
    }
}

impl<R> Drop for Worker<R>
where
    R: Deref,
    R::Target: AnyRing,
{
    fn drop(&mut self) {
        self.ring.release_wait_cell(self.spin.take_home());
        if self.backlog.0 < self.backlog.1 {
            // Left busy by a panicking handler: go idle, or the producers
            // would wait for this word forever. The backlog is abandoned
            // (documented on the type).
            self.ring
                .store_gate(self.me, pack(word(self.backlog.1), false));
        }
    }
}

/// Maps a non-waiting poll to a future step: done, or not yet.
fn async_step(p: Poll) -> TaskPoll<Result<usize, ConsumeError>> {
    match p {
        Poll::Processed(n) => TaskPoll::Ready(Ok(n)),
        Poll::Closed => TaskPoll::Ready(Err(ConsumeError::Closed)),
        Poll::Halted => TaskPoll::Ready(Err(ConsumeError::Halted)),
        Poll::Gated | Poll::Idle | Poll::Unfinished => TaskPoll::Pending,
    }
}

impl<R, S, M, W, const N: usize> Awaitable for Consumer<R>
where
    R: Deref<Target = Ring<S, M, AsyncWait<W, N>>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    #[inline(always)]
    fn arm(&self, slot: &mut Option<usize>, waker: &core::task::Waker) {
        self.ring.wait.arm(slot, waker);
    }
    fn unarm(&self, slot: Option<usize>) {
        self.ring.wait.unarm(slot);
    }
    fn disarm(&self, slot: &mut Option<usize>) {
        self.ring.wait.disarm(slot);
    }
    fn park(&self, cell: usize) -> Option<usize> {
        self.ring.wait.park(cell)
    }
    fn spin_budget(&mut self) -> &mut Spin {
        &mut self.spin
    }
    const CHEAP_CHECK: bool = true;
    /// One barrier scan (a cursor load right after the producer) and the
    /// state bits, not the full empty-poll diagnosis. Relaxed state: after
    /// `arm`'s fence a close or halt ordered before the notifier's fence is
    /// seen; before it, this is only a hint.
    #[inline(always)]
    fn may_proceed(&mut self) -> bool {
        self.refresh(usize::MAX) != 0
            || !Ring::<S, M, AsyncWait<W, N>>::open_bit_only(self.ring.state_relaxed())
            || (M::MULTI && self.ring.is_closed())
    }
}

impl<R, S, M, W, const N: usize> Consumer<R>
where
    R: Deref<Target = Ring<S, M, AsyncWait<W, N>>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    /// [`wait`](Self::wait) as a future: handles the available events with
    /// `handler`, or, when there are none, registers the task's waker and
    /// completes once some are published (or the ring closes or halts).
    /// Only on rings with the [`AsyncWait`] strategy.
    ///
    /// Dropping the future before it completes loses nothing: events are
    /// handled (and released) only inside the poll that completes it.
    ///
    /// ```
    /// use latchfree::ring::{AsyncWait, ConsumeError, Heap, Ring, BusySpin};
    ///
    /// let ring: Ring<Heap<u32>, _, AsyncWait<BusySpin>> =
    ///     Ring::with_wait(Heap::with_capacity(4).unwrap(), AsyncWait::with(BusySpin));
    /// let mut graph = Ring::graph(&ring).unwrap();
    /// let mut consumer = graph.consumer(&[]).unwrap();
    /// let mut producer = graph.single_producer().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || (1..=3).for_each(|i| { producer.push(i).unwrap(); }));
    ///     let sum = pollster::block_on(async {
    ///         let mut sum = 0;
    ///         while consumer.wait_async(|e, _, _| sum += e).await.is_ok() {}
    ///         sum
    ///     });
    ///     assert_eq!(sum, 6); // then `Closed`: the producer was dropped
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// `Closed` once the ring is closed and drained for this consumer, or
    /// `Halted`.
    pub fn wait_async<'a, F>(
        &'a mut self,
        mut handler: F,
    ) -> impl Future<Output = Result<usize, ConsumeError>> + 'a
    where
        F: FnMut(&S::Item, u64, bool) + 'a,
    {
        Retry::new(self, move |c: &mut Self| async_step(c.poll(&mut handler)))
    }
}

impl<R, S, M, W, const N: usize> Awaitable for Worker<R>
where
    R: Deref<Target = Ring<S, M, AsyncWait<W, N>>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    #[inline(always)]
    fn arm(&self, slot: &mut Option<usize>, waker: &core::task::Waker) {
        self.ring.wait.arm(slot, waker);
    }
    fn unarm(&self, slot: Option<usize>) {
        self.ring.wait.unarm(slot);
    }
    fn disarm(&self, slot: &mut Option<usize>) {
        self.ring.wait.disarm(slot);
    }
    fn park(&self, cell: usize) -> Option<usize> {
        self.ring.wait.park(cell)
    }
    fn spin_budget(&mut self) -> &mut Spin {
        &mut self.spin
    }
}

impl<R, S, M, W, const N: usize> Worker<R>
where
    R: Deref<Target = Ring<S, M, AsyncWait<W, N>>>,
    S: Storage,
    M: Mode,
    W: WaitStrategy,
{
    /// [`wait`](Self::wait) as a future (see [`Consumer::wait_async`]):
    /// claims and handles events, or registers the task's waker until
    /// there are some to claim (or the ring closes or halts).
    ///
    /// # Errors
    ///
    /// As for [`Consumer::wait_async`].
    pub fn wait_async<'a, F>(
        &'a mut self,
        mut handler: F,
    ) -> impl Future<Output = Result<usize, ConsumeError>> + 'a
    where
        F: FnMut(&S::Item, u64, bool) + 'a,
    {
        Retry::new(self, move |w: &mut Self| async_step(w.poll(&mut handler)))
    }
}
