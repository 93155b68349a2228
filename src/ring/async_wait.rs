//! [`AsyncWait`]: the wait strategy that lets ring handles `.await` instead
//! of holding a thread, in `no_std` without an allocator.
//!
//! # Protocol (register, then re-check)
//!
//! A waiting future (`Consumer::wait_async`, `Producer::push_async`, ...)
//! first tries its operation. If it cannot proceed it registers its
//! task's waker in a waker cell (one of the strategy's `SLOTS`, a bit in
//! `taken`: the one its handle kept from an earlier wait, or a free one,
//! lowest first; see below for which a handle keeps), marks the cell *armed*
//! (its bit in `armed`), issues a `SeqCst` fence and tries again; only if
//! that second try also fails does it return `Pending`. A handle that can
//! tell cheaply that its operation would fail (a consumer: one barrier
//! scan and the closed and halted bits, `Awaitable::may_proceed`) makes
//! both tries that cheap check and runs the full operation only when it
//! finds something, so a wait costs one full check (the one that
//! succeeds), not three. Every publish, every consumer release, close and
//! halt call [`notify`](WaitStrategy::notify), which issues a `SeqCst`
//! fence, loads `armed`, and, if any armed bit is set, claims the armed
//! bits (one compare-exchange turns each into the cell's *claimed* bit,
//! in the same word), wakes each claimed cell's waker by reference (it
//! stays in the cell) and then sets the cell's `done` flag (a plain
//! store). A woken cell is no longer armed, so the publishes that follow the one
//! that woke it (a producer filling the ring before the woken consumer
//! runs) find no armed bit and wake nothing: one wake per wait, not one
//! per publish.
//!
//! The two fences make it a Dekker handshake: either the notifier's load
//! sees the waiter's bit (and wakes the cell), or the waiter's second try
//! sees the notifier's progress. So a wake is never lost.
//!
//! The bits and the flag are also the cell's lock, so a wait costs two
//! atomic read-modify-writes of ours besides the fences: the owner's arm
//! and the notifier's claim. The owner writes the cell only while it is
//! neither armed nor claimed by a notify that has not set `done`; a notify
//! only reads it, between its claim and its `done`. The claimed bit stays
//! set after the wake, and the owner's next arm clears it in the same
//! read-modify-write (`fetch_xor`) that sets its armed bit, having first
//! seen `done` (and cleared it for the next notify). An owner that finds
//! its cell claimed and not done (a notify is still inside the waker's
//! `wake_by_ref`, which on a multi-threaded runtime may be unparking a
//! worker for microseconds while the woken task already runs elsewhere)
//! does not wait for it: it trades the cell for a free one, giving this
//! one back (its next owner meets the notify the same way), and asks to
//! be polled again only if no free cell is ready. Since a notify claims
//! what it wakes, no two notifies ever wake one registration. A waker
//! whose wake panics does not strand its cell or the others the notify
//! claimed: the notify sets that cell's `done` and wakes the rest while
//! the panic unwinds, and the panic then reaches the publisher, whose
//! handle is already whole (every handle notifies after its own state is
//! written).
//!
//! Keeping the cell in the handle (not in each future) saves taking and
//! giving back a cell per wait, two more read-modify-writes of `taken`.
//! Only the lower half of the cells (`SLOTS / 2`, rounded down) can be
//! kept: a handle whose wait ends in one of them keeps it until it is
//! dropped; a wait that took one of the upper half gives it back when it
//! ends (the future's `park`). So handles that awaited once and went idle
//! hold at most `SLOTS / 2` cells, and the other `SLOTS - SLOTS / 2`
//! always serve the handles waiting now, however many handles a ring has
//! (a multi-producer ring's clones, say); with `SLOTS = 1` no cell is
//! kept. (Keeping every handle's cell, as first built, made a ring with
//! more handles than cells busy-poll even while most of them were idle.)
//! An `EventStream` or `EventSink` takes over its handle's cell, whichever
//! half it is in, until it is dropped.
//!
//! A cell keeps its waker, woken or not, and the next registration there
//! keeps it if it [`will_wake`](Waker::will_wake) the same task: no clone
//! per wait and no drop per wake (a clone and a by-value wake are two
//! locked instructions on tokio's task reference count, a by-reference
//! wake none beyond the wake's own). A first build woke by value for fear
//! of the owner finding its cell still claimed: it asked to be polled
//! again then, and busy-polled until the waking thread came back from its
//! wake (15x slower ping-pong on a 2-worker runtime); trading the cell
//! removed that. A kept waker keeps its task's allocation (not its
//! future, which its executor drops when it ends) alive until it is
//! replaced or the ring is dropped, at most `SLOTS` per ring, and is never
//! called unless armed again.
//!
//! A ring nobody awaits pays a fence and one load of a word nobody writes
//! per publish and per release; rings with any other strategy pay nothing
//! at all (the ring only calls `notify` when
//! [`NOTIFIES`](WaitStrategy::NOTIFIES) is true).
//!
//! Why the notifier keeps its fence (issue 15 asked for "at most one
//! uncontended load per publish"): a publish is a store (the cursor, a
//! stamp, a gate) followed by a load of `armed`, and a waiter is a store
//! to `armed` followed by a load of the ring's words: the store-buffering
//! shape, which no ordering on the load alone can close. With `notify`
//! reduced to one `SeqCst` load of `armed` (no fence), loom deadlocks
//! `register_races_publish` and `producer_awaits_a_release`
//! (`loom-tests/tests/ring_async.rs`): the publisher's store is still in
//! its store buffer when it reads `armed == 0`, while the waiter's
//! re-check reads the old cursor. Moving the whole cost to the waiter side
//! needs an asymmetric barrier (`membarrier`, `FlushProcessWriteBuffers`)
//! that `no_std` has no portable form of, or a publish that is a
//! read-modify-write (a `swap` on the cursor costs what the fence does and
//! makes multi-producer stamps contend), so the fence stays: it is the
//! price of an awaitable ring, paid only by rings that choose `AsyncWait`.
//!
//! Two ways to save atomic read-modify-writes were measured and dropped
//! (issue 15, ping-pong on a current-thread tokio runtime, the
//! `async_cost` example under cachegrind and by CPU time on a 2-core EPYC
//! VM): keeping a handle's cell between its waits instead of claiming and
//! giving it back per wait (prototyped: two fewer per wait, but 8 more
//! instructions per round trip for the bookkeeping, and 3% more CPU
//! time), and leaving out `arm`'s fence on x86, where the `lock`ed
//! `fetch_or` before it already orders like one (one fewer per wait, 2
//! fewer instructions, 2% less CPU time: not worth shipping a path that
//! loom and Miri, which model the language and not the CPU, never check).
//! A later pass kept the cell in the handle after all (the lower half of
//! the cells), ends a wake with the plain `done` store in place of the
//! notifier's `fetch_and` of the busy bit, and wakes by reference: 26 ->
//! 16 locked instructions per ping-pong round trip, the runtime's
//! included (kanal 18), for 1380 -> 1389 instructions (kanal 1068). Per-cell
//! state words (arming by a plain store) were tried on the way and
//! dropped: fewer locked instructions, but every notify then loads the
//! state of every taken cell, which cost `spsc_ct` about a third of its
//! instructions per event. Issue 15's reading that a round trip's time
//! follows its instruction count did not hold up: the locked instructions
//! matter more (some 7 ns each on that VM). About 600 of a round trip's
//! instructions are the runtime's own scheduling (the same for every
//! channel), the rest this module (registration, wake, the futures) and
//! the ring's consume and claim paths (the single producer's refill at
//! capacity 1 about 50 a push).
//!
//! Two calls on that path were made inline and dropped (issue 15, same
//! measures; the shootout alternating old and new binaries, load 3.3-3.7):
//! the consumer's try, a closure `Retry::poll` calls from two sites which
//! LLVM keeps out of line, as a type whose `step` is `#[inline(always)]`
//! (ping-pong 1319 -> 1295 instructions per round trip at capacity 2,
//! 1380 -> 1357 at 1; SPSC 65 -> 66 per event), and in addition the
//! producers' tries the same way, with the single producer's spent free
//! count refilled inline from the plain gates instead of by its slow
//! path's call, which a small ring makes on every push or every other one
//! (1267 and 1294; SPSC 73). At capacity 2 neither moved `pingpong_ct`
//! out of its 10 ns clock step (190-191 ns before and after); at capacity
//! 1, which the shootout gives every queue, the second took it from 200
//! to 190 ns (kanal 180: still missed). Both cost throughput: `spsc_ct`
//! 235 -> 220 M events/s for the first (3 runs each), about a tenth of
//! `spsc_ct` and `3p1c_ct` for the second (commit `6ec30bb` on branch
//! `async15e` holds it).
//!
//! A woken future re-registers on every poll, so one cell per handle is
//! enough. A future polled again first takes its cell out of the next
//! notify's reach (`unarm`: one load when the notify that woke it already
//! claimed it), and one that completes or is dropped leaves the cell
//! unarmed with its handle. Every waiter is
//! woken on every change; each re-tries and at most the ones that can
//! proceed do. When all
//! `SLOTS` cells are taken, a further waiter cannot register: it asks to be
//! polled again at once (`wake_by_ref`) and so busy-polls its executor
//! until a cell frees; size `SLOTS` so that its upper half covers the
//! handles that await at once (beyond the ones keeping a lower cell).
//!
//! Before it registers, a future spins a little on the cheap check (a
//! producer: a rescan of the gates) if its handle's [`Spin`] budget allows:
//! plain handle state that grows while spins succeed (the other side runs
//! on another core) and drops to none when they fail (it needs this
//! thread), from where one wait in 64 probes again. A spin that finds the
//! way clear runs the operation once more; one that does not changes
//! nothing: register, then re-check, as above.
//!
//! Blocking waits (`wait`, `push`, ...) on a ring with this strategy use
//! the wrapped strategy `W` unchanged, so one consumer can await while
//! another spins or blocks on a thread, and the wrapped strategy is
//! notified too when it needs to be.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll as TaskPoll, Waker};

use super::error::TimedOut;
use super::wait::{DefaultWait, WaitStrategy};
use crate::sync::{fence, spin_loop, AtomicUsize, Backoff, Ordering, UnsafeCell};

/// A [`WaitStrategy`] whose rings can be awaited: handles get `wait_async`
/// ([`Consumer`](super::Consumer), [`Worker`](super::Worker)) and
/// `push_async`/`publish_async` ([`Producer`](super::Producer),
/// [`MultiProducer`](super::MultiProducer)) futures, which register a
/// [`Waker`] instead of holding a thread. Blocking waits use the wrapped
/// strategy `W`.
///
/// `SLOTS` (at most half the bits of a `usize`: 32 on 64-bit targets, 16
/// on 32-bit ones; 8 by default) is how many futures can be waiting at
/// once without busy-polling; a handle that awaited may keep one of the
/// lower `SLOTS / 2` between its waits, so the upper `SLOTS - SLOTS / 2`
/// are always there for the rest (module docs of `async_wait`). Each
/// costs an `Option<Waker>` and a flag (three words).
///
/// Cost: every publish and release issues a `SeqCst` fence and loads one
/// word, which stays in the publisher's cache while nobody awaits.
///
/// ```
/// use latchfree::ring::{AsyncWait, Heap, Ring, BusySpin};
///
/// let ring: Ring<Heap<u32>, _, AsyncWait<BusySpin>> =
///     Ring::with_wait(Heap::with_capacity(8).unwrap(), AsyncWait::with(BusySpin));
/// let mut graph = Ring::graph(&ring).unwrap();
/// let mut consumer = graph.consumer(&[]).unwrap();
/// let mut producer = graph.single_producer().unwrap();
/// let got = pollster::block_on(async {
///     producer.push_async(7).await.unwrap();
///     let mut got = 0;
///     consumer.wait_async(|e, _, _| got = *e).await.unwrap();
///     got
/// });
/// assert_eq!(got, 7);
/// ```
pub struct AsyncWait<W = DefaultWait, const SLOTS: usize = 8> {
    inner: W,
    /// Bit `i` set: cell `i` belongs to a waiting future, to a handle
    /// that keeps it between waits (`i < SLOTS / 2` only), or to a stream
    /// or a sink. Below `2^SLOTS`. Only the owner clears its bit.
    taken: AtomicUsize,
    /// Two bits per cell. Bit `i` (*armed*): cell `i` holds a waker no
    /// notify has claimed yet (set by its owner's `arm`, cleared by the
    /// `notify` that claims it or by the owner's `unarm`). Bit `HALF + i`
    /// (*claimed*): a notify claimed the cell's last arm; it is done with
    /// the cell once its `done` is set. Never both for one cell;
    /// only bits of `taken` are ever set. Only the owner clears a claimed
    /// bit, in the same read-modify-write that arms the cell again.
    armed: AtomicUsize,
    cells: [WakerCell; SLOTS],
}

/// One waiter's registration.
struct WakerCell {
    /// Set (1) by the notify that claimed the cell once it has taken the
    /// waker out; cleared (0) by the owner before it arms the cell. Only
    /// the claiming notify writes it while the cell's claimed bit is set,
    /// only the owner while it is clear.
    done: AtomicUsize,
    /// The last waker registered here, until a notify takes it out; kept
    /// between polls that are not woken (module docs). Touched by the
    /// owner only while the cell is neither armed nor claimed by a notify
    /// that is not done; by that notify only between its claim and `done`.
    waker: UnsafeCell<Option<Waker>>,
}

/// Where the claimed bits start in `armed`: its upper half.
const HALF: u32 = usize::BITS / 2;
/// The armed bits of `armed`: its lower half.
const ARMED: usize = usize::MAX >> HALF;

// SAFETY: a cell's waker is written only by its owner while no notify can
// read it (the ground rules at `armed` and `WakerCell`), and `Waker` is
// `Send + Sync`.
unsafe impl<W: Send, const SLOTS: usize> Send for AsyncWait<W, SLOTS> {}
// SAFETY: as for `Send`: every write of a cell excludes every other access.
unsafe impl<W: Sync, const SLOTS: usize> Sync for AsyncWait<W, SLOTS> {}

impl<W: Default, const SLOTS: usize> Default for AsyncWait<W, SLOTS> {
    fn default() -> Self {
        Self::with(W::default())
    }
}

impl<const SLOTS: usize> AsyncWait<DefaultWait, SLOTS> {
    /// The strategy, wrapping [`DefaultWait`] for blocking waits.
    pub fn new() -> Self {
        Self::with(DefaultWait::default())
    }
}

impl<W, const SLOTS: usize> AsyncWait<W, SLOTS> {
    const_fn_unless_loom! {
        /// The strategy, wrapping `inner` for blocking waits. `const`, so a
        /// ring with [`Inline`](super::Inline) storage can be a `static`.
        pub fn with(inner: W) -> Self {
            const { assert!(SLOTS >= 1 && SLOTS <= HALF as usize, "1 ..= usize::BITS / 2 slots") };
            Self {
                inner,
                taken: AtomicUsize::new(0),
                armed: AtomicUsize::new(0),
                cells: new_cells(),
            }
        }
    }

    /// The wrapped strategy.
    pub fn inner(&self) -> &W {
        &self.inner
    }

    /// Takes a cell for `slot` if it has none, registers `waker` there and
    /// fences. The caller must re-try its operation afterwards. Inlined
    /// into each future's poll.
    #[inline(always)]
    pub(super) fn arm(&self, slot: &mut Option<usize>, waker: &Waker) {
        let mut i = match *slot {
            Some(i) => i,
            None => match self.claim() {
                Some(i) => {
                    *slot = Some(i);
                    i
                }
                // Every cell is taken: be polled again at once.
                None => return poll_again(waker),
            },
        };
        // Relaxed: only we set our armed bit (clear here: every owner
        // unarms before it re-tries) and only we clear our claimed bit, so
        // the value cannot go stale in a way that matters; the `done`
        // load in `in_flight` is what orders us after a notify.
        let mut cur = self.armed.load(Ordering::Relaxed);
        if self.in_flight(i, cur) {
            // A notify is still waking the cell's waker (a previous one of
            // ours, or a previous owner's), by reference: it may be inside
            // the executor's wake for microseconds, and on a multi-threaded
            // runtime the task it woke runs at once and lands here. Do not
            // wait for it: trade the cell for a free one (giving this one
            // back; its next owner meets the notify the same way), or, with
            // none free, be polled again and arm then.
            match self.claim() {
                Some(j) if !self.in_flight(j, self.armed.load(Ordering::Relaxed)) => {
                    self.disarm(slot);
                    *slot = Some(j);
                    i = j;
                    cur = self.armed.load(Ordering::Relaxed);
                }
                Some(j) => {
                    self.disarm(&mut Some(j));
                    return poll_again(waker);
                }
                None => return poll_again(waker),
            }
        }
        let Some(cell) = self.cells.get(i) else {
            return poll_again(waker);
        };
        let claimed = 1 << (HALF as usize + i);
        let mut flip = 1 << i;
        debug_assert_eq!(cur & flip, 0, "armed before a re-try");
        if cur & claimed != 0 {
            // A notify claimed the cell's last arm and is done with it
            // (`in_flight`): our arm below clears the claimed bit as it
            // sets the armed one.
            flip |= claimed;
        }
        // SAFETY: the cell is not armed and no notify that claimed it is
        // still using it; no notify can claim it before our arm below: the
        // waker is ours (the ground rules at `armed`).
        cell.waker.with_mut(|cached| unsafe {
            match &*cached {
                // The same task waits again: keep the waker we have.
                Some(w) if w.will_wake(waker) => {}
                _ => *cached = Some(waker.clone()),
            }
        });
        // Relaxed: ordered before the claiming notify's store of 1 by the
        // Release below and that notify's Acquire claim.
        cell.done.store(0, Ordering::Relaxed);
        // Release: a notify whose CAS claims the armed bit (Acquire) finds
        // the waker above in the cell. The one RMW sets our armed bit and
        // clears our claimed bit if it was set (no one else touches either
        // now).
        self.armed.fetch_xor(flip, Ordering::Release);
        // SeqCst: pairs with the fence in `notify`. Either the notifier's
        // load of `armed` sees our bit, or our re-try sees its progress.
        fence(Ordering::SeqCst);
    }

    /// Whether a notify that claimed cell `i` (by `armed`, a value of the
    /// word) may still be using its waker: claimed, and `done` not set.
    #[inline(always)]
    fn in_flight(&self, i: usize, armed: usize) -> bool {
        armed & (1 << (HALF as usize + i)) != 0
            // Acquire: pairs with the notify's Release store of `done`:
            // its use of the waker happens before our writes to the cell.
            && self.cells.get(i).is_some_and(|c| c.done.load(Ordering::Acquire) == 0)
    }

    /// Takes a free cell: its index, or `None` if all are taken.
    #[inline]
    fn claim(&self) -> Option<usize> {
        let all = (1 << SLOTS) - 1;
        let mut cur = self.taken.load(Ordering::Relaxed);
        loop {
            let free = !cur & all;
            if free == 0 {
                return None;
            }
            let i = free.trailing_zeros() as usize;
            // Acquire: the previous owner's last write to the cell happens
            // before ours. Failure Relaxed: we retry.
            match self.taken.compare_exchange_weak(
                cur,
                cur | 1 << i,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(i),
                Err(now) => cur = now,
            }
        }
    }

    /// The bitmap of taken cells, for the stream and sink tests.
    #[cfg(all(test, any(feature = "futures-core", feature = "futures-sink")))]
    pub(super) fn inner_taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }

    /// Takes `slot`'s cell out of the next notify's reach, keeping the
    /// cell and its waker: if it is still armed (no notify claimed it: the
    /// future was polled without being woken), unarms it. Afterwards the
    /// cell is not armed; a notify that claimed it may still be waking it.
    #[inline]
    pub(super) fn unarm(&self, slot: Option<usize>) {
        if let Some(i) = slot {
            // Relaxed: we touch no waker on the strength of either (`arm`
            // orders itself after a notify by `done`). Usually the notify
            // that woke us took the bit already: then this is one load.
            if self.armed.load(Ordering::Relaxed) & (1 << i) != 0 {
                self.armed.fetch_and(!(1 << i), Ordering::Relaxed);
            }
        }
    }

    /// How many cells handles may keep between their awaits: the lower
    /// half (indices below this). A future holding one of the upper half
    /// gives it back when it ends, so at least `SLOTS - SLOTS / 2` cells
    /// serve handles that wait now, however many kept one and went idle.
    const KEEPABLE: usize = SLOTS / 2;

    /// Ends a future's hold on cell `i` (module docs): unarms it, and
    /// returns it for the handle to keep if it is a keepable one;
    /// otherwise gives it back (`disarm`) and returns `None`.
    #[inline]
    pub(super) fn park(&self, i: usize) -> Option<usize> {
        if i < Self::KEEPABLE {
            self.unarm(Some(i));
            Some(i)
        } else {
            self.disarm(&mut Some(i));
            None
        }
    }

    /// Gives `slot`'s cell back (unarmed; a notify may still be waking
    /// it), if it has one. Its waker stays cached for the next owner's
    /// `will_wake`, and a claimed bit for the next owner's `arm` to clear.
    #[inline]
    pub(super) fn disarm(&self, slot: &mut Option<usize>) {
        if let Some(i) = slot.take() {
            // Unarm before the cell changes hands, so its next owner does
            // not inherit an armed registration.
            self.unarm(Some(i));
            // Release: the cell is handed to the next owner, whose claim
            // (Acquire) is ordered after this by `taken`'s modification
            // order. A notify still waking it has not set `done`, and the
            // next owner does not write the cell before it has (`arm`).
            self.taken.fetch_and(!(1 << i), Ordering::Release);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_all(&self) {
        // Acquire: pairs with `arm`'s Release (the registration is in the
        // cell). Moving the armed bits to claimed makes later notifies skip
        // these cells until their owners arm them again (module docs), and
        // keeps the owners out of them until we set `done`.
        let mut cur = self.armed.load(Ordering::Relaxed);
        let claimed = loop {
            let arms = cur & ARMED;
            if arms == 0 {
                return;
            }
            match self.armed.compare_exchange_weak(
                cur,
                (cur & !ARMED) | arms << HALF,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break arms,
                Err(now) => cur = now,
            }
        };
        Claimed {
            wait: self,
            current: NONE,
            rest: claimed,
        }
        .wake();
    }
}

/// `Claimed::current` when no cell is being woken.
const NONE: usize = usize::MAX;

/// The cells a notify claimed and has not finished waking. Dropped half
/// way (a waker's `wake_by_ref` panicked), it finishes the job before the
/// panic goes on: the panicking cell's `done` is set and the other cells
/// are still woken, so no owner waits for a claim that never ends or a
/// wake that never comes. (A second waker panicking then aborts, as any
/// panic during unwinding does.)
struct Claimed<'a, W, const SLOTS: usize> {
    wait: &'a AsyncWait<W, SLOTS>,
    /// The cell whose waker is being woken, or `NONE`.
    current: usize,
    /// The claimed cells not woken yet, a bit each.
    rest: usize,
}

impl<W, const SLOTS: usize> Claimed<'_, W, SLOTS> {
    fn wake(&mut self) {
        if let Some(cell) = self.wait.cells.get(self.current) {
            // Unwinding from this cell's wake: it is done with the cell.
            cell.done.store(1, Ordering::Release);
            self.current = NONE;
        }
        while self.rest != 0 {
            let i = self.rest.trailing_zeros() as usize;
            self.rest &= self.rest - 1;
            let Some(cell) = self.wait.cells.get(i) else {
                continue;
            };
            self.current = i;
            // SAFETY: cell `i` is claimed by our CAS: its owner does not
            // write it until we set `done`, and we only read it. Woken by
            // reference: the waker stays for the owner's next registration
            // (no clone there, no drop here).
            cell.waker.with(|w| unsafe {
                if let Some(w) = &*w {
                    w.wake_by_ref();
                }
            });
            self.current = NONE;
            // Release: the owner's next write (after its Acquire load sees
            // 1) is ordered after our read.
            cell.done.store(1, Ordering::Release);
        }
    }
}

impl<W, const SLOTS: usize> Drop for Claimed<'_, W, SLOTS> {
    fn drop(&mut self) {
        // Only when a wake panicked: `wake` returns with both cleared.
        if self.current != NONE || self.rest != 0 {
            self.wake();
        }
    }
}

impl WakerCell {
    const_fn_unless_loom! {
        fn new() -> Self {
            Self {
                done: AtomicUsize::new(0),
                waker: UnsafeCell::new(None),
            }
        }
    }
}

cfg_not_loom! {
    const fn new_cells<const SLOTS: usize>() -> [WakerCell; SLOTS] {
        [const { WakerCell::new() }; SLOTS]
    }
}

cfg_loom! {
    fn new_cells<const SLOTS: usize>() -> [WakerCell; SLOTS] {
        core::array::from_fn(|_| WakerCell::new())
    }
}

/// Asks to be polled again at once: the way out of a wait that cannot
/// register now.
#[cold]
fn poll_again(waker: &Waker) {
    waker.wake_by_ref();
    spin_loop();
}

impl<W: WaitStrategy, const SLOTS: usize> WaitStrategy for AsyncWait<W, SLOTS> {
    const NOTIFIES: bool = true;

    #[inline]
    fn wait_until<F: FnMut() -> bool>(&self, ready: F) -> Result<(), TimedOut> {
        self.inner.wait_until(ready)
    }

    fn release_cell(&self, cell: usize) {
        self.disarm(&mut Some(cell));
    }

    #[inline]
    fn notify(&self) {
        if W::NOTIFIES {
            self.inner.notify();
        }
        // SeqCst: orders the caller's publish, release, close or halt
        // before the load of `armed`; pairs with the fence in `arm`.
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) & ARMED != 0 {
            self.wake_all();
        }
    }
}

impl<W: fmt::Debug, const SLOTS: usize> fmt::Debug for AsyncWait<W, SLOTS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWait")
            .field("inner", &self.inner)
            .field("slots", &SLOTS)
            .finish_non_exhaustive()
    }
}

/// How long a handle spins on its cheap check before it registers a
/// waker: plain per-handle state (no atomics), so it changes no protocol.
/// The spin only decides whether to try the operation once more before
/// arming; the register-then-recheck that follows a failed spin is the
/// same as without it.
///
/// Why spin at all: when the other side runs on another core (a
/// multi-threaded runtime), the event or slot a future waits for usually
/// arrives within a few hundred nanoseconds, while a registration costs a
/// cross-thread wake (several microseconds) and a trip through the
/// executor. When the other side needs this thread (a current-thread
/// runtime, or both tasks on one worker), a spin cannot succeed and is
/// pure loss. So the budget adapts: a spin that succeeds keeps the full
/// budget, one that fails halves it (six steps, three, one, none), and at
/// none a wait costs one byte's decrement, except that every
/// [`PROBE_EVERY`]th wait probes with a short spin, so a handle whose
/// other side has moved to another core finds out.
///
/// Why not spin longer: the full budget stays below the time to wake a
/// parked thread. A budget long enough to outlast one, so that a reply
/// that needed a sleeping worker woken would be caught without parking,
/// was tried (255 and 447 spin hints, the probe as long) on a 2-worker
/// runtime on 2 cores: the median round trip of a ping-pong did not move,
/// and some rounds fell to tens of microseconds.
///
/// A step is one turn of the crate's [`Backoff`] (exponential: 1, 2, 4, ..
/// 32 spin hints), followed by the check.
#[derive(Clone, Copy, Debug)]
pub struct Spin {
    /// One byte, so the common case (no budget, no probe due) is a load, a
    /// compare and a store: `0`, a probe is due; `1 .. PROBE_EVERY`, waits
    /// left before it; `SPINNING + s` (`s` in `1 ..= MAX_STEPS`), a budget
    /// of `s` steps.
    left: u8,
    /// The waker cell the handle keeps between its awaits (module docs),
    /// `NO_HOME` if it has none: below `SLOTS`, at most 32. Given back by
    /// the handle's `Drop` (`AnyRing::release_wait_cell`).
    home: u8,
}

/// `Spin::home` of a handle that keeps no cell.
const NO_HOME: u8 = u8::MAX;

/// A full budget: 63 spin hints in six steps (`Backoff` caps a step at
/// 64).
const MAX_STEPS: u8 = 6;
/// A probe: 7 spin hints in three steps.
const PROBE_STEPS: u8 = 3;
/// At a budget of none, one wait in this many probes.
const PROBE_EVERY: u8 = 64;
/// `Spin::left` at or above this holds a budget.
const SPINNING: u8 = 128;

impl Spin {
    /// A handle's first wait probes.
    pub(super) const fn new() -> Self {
        Self {
            left: 0,
            home: NO_HOME,
        }
    }

    /// Takes the kept cell out (a future holds it while it runs, and a
    /// dropped handle gives it back).
    #[inline(always)]
    pub(super) fn take_home(&mut self) -> Option<usize> {
        let h = core::mem::replace(&mut self.home, NO_HOME);
        (h != NO_HOME).then_some(h as usize)
    }

    /// Keeps `slot`'s cell, if any, for the handle's next await.
    #[inline(always)]
    fn set_home(&mut self, slot: Option<usize>) {
        if let Some(i) = slot {
            self.home = i as u8;
        }
    }

    /// Whether this wait skips the spin: no budget, no probe due. Then it
    /// only counts the wait down to the next probe, checking nothing.
    #[inline(always)]
    fn skip(&mut self) -> bool {
        let skips = self.left.wrapping_sub(1) < PROBE_EVERY - 1;
        if skips {
            self.left -= 1;
        }
        skips
    }

    /// Whether `ready` turned true while spinning within the budget, or
    /// probing (when `skip` said not to skip); adapts the budget to the
    /// outcome.
    #[inline(always)]
    fn spin(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        let probe = self.left == 0;
        let steps = if probe {
            PROBE_STEPS
        } else {
            self.left - SPINNING
        };
        debug_assert!((1..=MAX_STEPS).contains(&steps));
        let backoff = Backoff::new();
        for _ in 0..steps {
            backoff.spin();
            if ready() {
                self.left = SPINNING + MAX_STEPS;
                return true;
            }
        }
        // Halve the budget; after a failed probe, or from a budget of one
        // step, none: `PROBE_EVERY - 1` waits until the next probe.
        self.left = match steps / 2 {
            s if s != 0 && !probe => SPINNING + s,
            _ => PROBE_EVERY - 1,
        };
        false
    }
}

impl Default for Spin {
    fn default() -> Self {
        Self::new()
    }
}

/// A ring handle whose ring has an [`AsyncWait`] strategy: what [`Retry`],
/// `EventStream` and `EventSink` need of it. Public only so those can name
/// it in their bounds; this module is private, so it stays sealed.
pub trait Awaitable {
    /// [`AsyncWait::arm`] on the handle's ring.
    #[doc(hidden)]
    fn arm(&self, slot: &mut Option<usize>, waker: &Waker);
    /// [`AsyncWait::unarm`] on the handle's ring.
    #[doc(hidden)]
    fn unarm(&self, slot: Option<usize>);
    /// [`AsyncWait::disarm`] on the handle's ring. Only the stream and
    /// the sink, which keep a cell of their own, call it.
    #[doc(hidden)]
    #[cfg_attr(
        not(any(feature = "futures-core", feature = "futures-sink")),
        allow(dead_code)
    )]
    fn disarm(&self, slot: &mut Option<usize>);
    /// [`AsyncWait::park`] on the handle's ring.
    #[doc(hidden)]
    fn park(&self, cell: usize) -> Option<usize>;
    /// A cheap check whether the operation could complete now. `false`
    /// must mean the operation would return `Pending`, judged only by
    /// loads of words a notifier writes before it notifies (the cursor or
    /// stamps, upstream gates, the closed and halted bits), so that it can
    /// stand in for the operation both before registering and as the
    /// re-check after it: an operation that has to wait runs these loads
    /// twice and its full body not at all. `true` may be wrong (the
    /// operation then returns `Pending` itself); the default is always
    /// `true`, which makes every check the full operation.
    #[doc(hidden)]
    #[inline(always)]
    fn may_proceed(&mut self) -> bool {
        true
    }
    /// Whether [`may_proceed`](Self::may_proceed) is a real check (not
    /// the default `true`): then the spin before arming runs in its place.
    #[doc(hidden)]
    const CHEAP_CHECK: bool = false;
    /// The handle's spin budget ([`Spin`]).
    #[doc(hidden)]
    fn spin_budget(&mut self) -> &mut Spin;
    /// What the spin before arming watches: whether the operation could
    /// complete now. Only a hint (`true` ends the spin and the operation
    /// is tried; the register-then-recheck does not rely on it), so it may
    /// read anything cheap; the default is [`may_proceed`](Self::may_proceed).
    #[doc(hidden)]
    #[inline(always)]
    fn spin_hint(&mut self) -> bool {
        self.may_proceed()
    }
    /// Spins on [`spin_hint`](Self::spin_hint) within the handle's budget
    /// ([`Spin`]): whether it turned true. Called where a wait would arm.
    #[doc(hidden)]
    #[inline(always)]
    fn spun_ready(&mut self) -> bool {
        if self.spin_budget().skip() {
            return false;
        }
        self.spin_within_budget()
    }
    /// The spin of [`spun_ready`](Self::spun_ready), out of line.
    #[doc(hidden)]
    #[inline(never)]
    fn spin_within_budget(&mut self) -> bool {
        let mut budget = *self.spin_budget();
        let ready = budget.spin(|| self.spin_hint());
        *self.spin_budget() = budget;
        ready
    }
}

/// The future of a ring handle's `_async` method: re-tries an operation
/// until it completes, registering the task's waker in between (module
/// docs). Dropping it gives up the wait and loses nothing: the operation
/// either completed inside a poll that returned `Ready` or did not happen.
#[must_use = "futures do nothing unless polled"]
pub(super) struct Retry<'a, H: Awaitable, Op> {
    handle: &'a mut H,
    op: Op,
    slot: Option<usize>,
}

impl<'a, H: Awaitable, Op> Retry<'a, H, Op> {
    pub(super) fn new(handle: &'a mut H, op: Op) -> Self {
        Self {
            handle,
            op,
            slot: None,
        }
    }
}

impl<H: Awaitable, Op> Retry<'_, H, Op> {
    /// Ends the future's hold on its cell: a keepable one goes, unarmed,
    /// to its handle for its next await; any other back to the ring.
    #[inline(always)]
    fn park(&mut self) {
        // Usually none: a wait that completes at its first try takes no
        // cell, and its drop after `Ready` finds it parked.
        if let Some(i) = self.slot.take() {
            let kept = self.handle.park(i);
            self.handle.spin_budget().set_home(kept);
        }
    }
}

// No field is structurally pinned: `op` is only ever called through
// `&mut`, so moving the future between polls is fine.
impl<H: Awaitable, Op> Unpin for Retry<'_, H, Op> {}

impl<H: Awaitable, Op, T> Future for Retry<'_, H, Op>
where
    Op: FnMut(&mut H) -> TaskPoll<T>,
{
    type Output = T;

    /// Always inlined into the awaiting task's state machine (the
    /// operation `op` stays a call): left to LLVM, which keeps it out of
    /// line even with `#[inline]`, every `push_async` pays a call that
    /// moves the value in and the result out, and nothing around it folds
    /// away. Measured with `examples/async_cost.rs` under cachegrind:
    /// 97 -> 65 instructions per event (`spsc`), 1394 -> 1319 per round
    /// trip (`pingpong`).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<T> {
        let this = self.get_mut();
        let try_first = match this.slot {
            // Polled again (woken, as a rule): keep the cell, but take it
            // out of reach of the try's own notify (a consumer's release,
            // a producer's publish), which would wake our own task. If the
            // try fails we arm again below, and re-check.
            Some(_) => {
                this.handle.unarm(this.slot);
                true
            }
            // First poll: try at once unless the handle can tell cheaply
            // that it would fail; if it can, spin on that check within
            // its budget ([`Spin`]) before registering.
            None => this.handle.may_proceed() || this.handle.spun_ready(),
        };
        if try_first {
            if let TaskPoll::Ready(v) = (this.op)(this.handle) {
                this.park();
                return TaskPoll::Ready(v);
            }
            // A handle without a cheap check (a producer) learns only from
            // the operation that it has to wait: spin now, then try again.
            if !H::CHEAP_CHECK && this.handle.spun_ready() {
                if let TaskPoll::Ready(v) = (this.op)(this.handle) {
                    this.park();
                    return TaskPoll::Ready(v);
                }
            }
        }
        if this.slot.is_none() {
            // The cell the handle kept from its last registration, if any;
            // `arm` takes a free one otherwise.
            this.slot = this.handle.spin_budget().take_home();
        }
        this.handle.arm(&mut this.slot, cx.waker());
        // The re-check: progress made before our registration was visible
        // to the notifier is seen here (module docs); the cheap check
        // first, the operation only if that finds something.
        if !this.handle.may_proceed() {
            return TaskPoll::Pending;
        }
        match (this.op)(this.handle) {
            TaskPoll::Ready(v) => {
                this.park();
                TaskPoll::Ready(v)
            }
            TaskPoll::Pending => TaskPoll::Pending,
        }
    }
}

impl<H: Awaitable, Op> Drop for Retry<'_, H, Op> {
    fn drop(&mut self) {
        self.park();
    }
}

impl<H: Awaitable, Op> fmt::Debug for Retry<'_, H, Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {

    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::future::Future;
    use core::pin::pin;
    use core::sync::atomic::Ordering;

    use core::task::{Context, Poll as TaskPoll};

    use crate::ring::{
        AsyncWait, BusySpin, ConsumeError, Heap, Multi, Poll, PublishError, Ring, Single,
    };

    use crate::waker::counting::{counter, Count};

    /// Two consumers of `ring` (gated, so the ring needs two gates) and
    /// its single producer.
    fn two_consumers<const N: usize>(
        ring: &Sp<N>,
    ) -> (
        crate::ring::Consumer<&Sp<N>>,
        crate::ring::Consumer<&Sp<N>>,
        crate::ring::Producer<&Sp<N>>,
    ) {
        let mut g = Ring::graph(ring).unwrap();
        let a = g.consumer(&[]).unwrap();
        let b = g.consumer(&[]).unwrap();
        (a, b, g.single_producer().unwrap())
    }

    /// Polls `fut` once with `waker`.
    fn poll_with<F: Future + ?Sized>(
        fut: core::pin::Pin<&mut F>,
        waker: &core::task::Waker,
    ) -> TaskPoll<F::Output> {
        fut.poll(&mut Context::from_waker(waker))
    }
    fn wakes(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    type Sp<const N: usize> = Ring<Heap<u32>, Single, AsyncWait<BusySpin, N>>;

    /// The bitmap of armed cells.
    fn armed<const N: usize>(ring: &Sp<N>) -> usize {
        ring.wait.armed.load(Ordering::SeqCst) & super::ARMED
    }

    fn mk<M: crate::ring::Mode, const N: usize>(
        cap: usize,
        gates: usize,
    ) -> Ring<Heap<u32>, M, AsyncWait<BusySpin, N>> {
        Ring::with_wait(
            Heap::builder(cap).gates(gates).build().unwrap(),
            AsyncWait::with(BusySpin),
        )
    }

    /// The spin budget: a failing spin halves it down to none, from where
    /// 63 waits in 64 check nothing and the 64th probes; a probe or spin
    /// that succeeds restores the full budget.
    #[test]
    fn spin_budget_shrinks_on_failure_probes_rarely_and_grows_on_success() {
        use super::{Spin, MAX_STEPS, PROBE_EVERY, PROBE_STEPS};
        // One wait: the number of checks it made, and what it returned.
        fn wait(s: &mut Spin, ok_at: Option<u8>) -> (u8, bool) {
            if s.skip() {
                return (0, false);
            }
            let mut checks = 0;
            let ready = s.spin(|| {
                checks += 1;
                Some(checks) == ok_at
            });
            (checks, ready)
        }
        let mut s = Spin::new();
        assert_eq!(
            wait(&mut s, None),
            (PROBE_STEPS, false),
            "the first wait probes"
        );
        for _ in 1..PROBE_EVERY {
            assert_eq!(wait(&mut s, None), (0, false), "no budget: no check");
        }
        assert_eq!(
            wait(&mut s, Some(2)),
            (2, true),
            "the 64th probes, and succeeds"
        );
        assert_eq!(wait(&mut s, None), (MAX_STEPS, false), "full budget, spent");
        assert_eq!(wait(&mut s, None), (MAX_STEPS / 2, false), "halved");
        assert_eq!(wait(&mut s, Some(1)), (1, true), "succeeds: full again");
        assert_eq!(wait(&mut s, None), (MAX_STEPS, false));
        assert_eq!(wait(&mut s, None), (3, false));
        assert_eq!(wait(&mut s, None), (1, false));
        for _ in 1..PROBE_EVERY {
            assert_eq!(wait(&mut s, None), (0, false), "none again");
        }
        assert_eq!(wait(&mut s, None), (PROBE_STEPS, false), "probe");
    }

    #[test]
    fn async_consumer_sleeps_until_a_publish_wakes_it() {
        let ring: Sp<8> = mk(4, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut seen = Vec::new();
        {
            let mut fut = pin!(c.wait_async(|e, _, _| seen.push(*e)));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(wakes(&count), 0);
            p.push(5).unwrap();
            assert_eq!(wakes(&count), 1, "the publish wakes the registered task");
            p.push(6).unwrap(); // the waker was taken: nothing more to wake
            assert_eq!(wakes(&count), 1);
            assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(2)));
        }
        assert_eq!(seen, [5, 6]);
        let taken = || ring.wait.taken.load(Ordering::SeqCst);
        assert_eq!(taken(), 1, "the handle keeps its cell for its next wait");
        drop(c);
        assert_eq!(taken(), 0, "a dropped handle gives its cell back");
    }

    #[test]
    fn async_a_woken_cell_stays_owned_but_is_not_woken_again() {
        let ring: Sp<8> = mk(8, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(c.wait_async(|_, _, _| ()));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(armed(&ring), 1);
        p.push(1).unwrap();
        assert_eq!(wakes(&count), 1);
        assert_eq!(
            (ring.wait.taken.load(Ordering::SeqCst), armed(&ring)),
            (1, 0),
            "the woken cell is still the future's, but no longer armed"
        );
        for i in 2..6 {
            p.push(i).unwrap(); // finds nothing armed: no wake, no cell touched
        }
        assert_eq!(wakes(&count), 1);
        assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(5)));
        assert_eq!(
            (ring.wait.taken.load(Ordering::SeqCst), armed(&ring)),
            (1, 0),
            "kept by the handle, unarmed"
        );
    }

    #[test]
    fn async_producer_waits_for_space_and_a_release_wakes_it() {
        let ring: Sp<8> = mk(2, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        p.push(1).unwrap();
        p.push(2).unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        {
            let mut fut = pin!(p.push_async(3));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(c.poll(|_, _, _| ()), Poll::Processed(2));
            assert_eq!(wakes(&count), 1);
            assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(2)));
        }
        let mut got = 0;
        c.poll(|e, _, _| got = *e);
        assert_eq!(got, 3);
    }

    #[test]
    fn async_close_and_halt_wake_every_waiter() {
        let ring: Sp<8> = mk(2, 2);
        let (mut a, mut b, p) = two_consumers(&ring);
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let mut fa = pin!(a.wait_async(|_, _, _| ()));
        let mut fb = pin!(b.wait_async(|_, _, _| ()));
        assert!(poll_with(fa.as_mut(), &wa).is_pending());
        assert!(poll_with(fb.as_mut(), &wb).is_pending());
        drop(p); // closes the ring
        assert_eq!((wakes(&ca), wakes(&cb)), (1, 1));
        let closed = TaskPoll::Ready(Err(ConsumeError::Closed));
        assert_eq!(poll_with(fa.as_mut(), &wa), closed);
        assert_eq!(poll_with(fb.as_mut(), &wb), closed);

        let ring: Ring<Heap<u32>, Multi, AsyncWait<BusySpin, 8>> = mk(1, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let _c = g.consumer(&[]).unwrap();
        let mut p = g.multi_producer().unwrap();
        p.push(1).unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(p.push_async(2));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        ring.halt();
        assert_eq!(wakes(&count), 1);
        assert!(matches!(
            fut.as_mut().poll(&mut cx),
            TaskPoll::Ready(Err(PublishError::Halted(2)))
        ));
    }

    #[test]
    fn async_dropped_future_unarms_its_cell_and_loses_nothing() {
        // Two cells: cell 0 is keepable, so the handle keeps it.
        let ring: Sp<2> = mk(4, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut n = 0;
        {
            let mut fut = pin!(c.wait_async(|_, _, _| n += 1));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(ring.wait.taken.load(Ordering::SeqCst), 1);
        } // dropped mid-await
        assert_eq!(
            (ring.wait.taken.load(Ordering::SeqCst), armed(&ring)),
            (1, 0),
            "unarmed; the handle keeps the cell"
        );
        p.push(1).unwrap();
        assert_eq!(wakes(&count), 0, "a dropped future's waker is not woken");
        // The event is still there for the next wait.
        {
            let mut fut = pin!(c.wait_async(|_, _, _| n += 1));
            assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(1)));
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn async_only_the_lower_half_of_the_cells_is_kept() {
        // Two cells: the first handle to await keeps cell 0; every other
        // one borrows cell 1 per await and gives it back, so any number of
        // handles can take turns awaiting without busy-polling.
        let ring: Sp<2> = mk(4, 3);
        let mut g = Ring::graph(&ring).unwrap();
        let mut cs = [
            g.consumer(&[]).unwrap(),
            g.consumer(&[]).unwrap(),
            g.consumer(&[]).unwrap(),
        ];
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let taken = |r: &Sp<2>| r.wait.taken.load(Ordering::SeqCst);
        for round in 1..=3 {
            for (k, c) in cs.iter_mut().enumerate() {
                {
                    let mut fut = pin!(c.wait_async(|_, _, _| ()));
                    assert!(fut.as_mut().poll(&mut cx).is_pending());
                    // Handle 0 waits in its kept cell 0; the others in cell 1.
                    let holds = if k == 0 { 0b01 } else { 0b11 };
                    assert_eq!(taken(&ring), holds, "round {round}, handle {k} waiting");
                } // dropped: gives up the wait
                assert_eq!(taken(&ring), 0b01, "round {round}, handle {k} gone");
            }
            p.push(round).unwrap();
            for c in cs.iter_mut() {
                let mut got = 0;
                {
                    let mut fut = pin!(c.wait_async(|e, _, _| got = *e));
                    assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(1)));
                }
                assert_eq!(got, round);
            }
        }
        assert_eq!(wakes(&count), 0, "nobody busy-polled, nobody was woken");
        drop(cs);
        assert_eq!(taken(&ring), 0, "the kept cell goes back with its handle");
    }

    /// A waker that panics when woken.
    struct Panics;
    impl alloc::task::Wake for Panics {
        fn wake(self: Arc<Self>) {
            panic!("a waker that panics");
        }
    }

    #[test]
    fn async_a_panicking_waker_leaves_no_cell_claimed_and_no_wake_lost() {
        let ring: Sp<2> = mk(4, 2);
        let (mut a, mut b, mut p) = two_consumers(&ring);
        let bad = core::task::Waker::from(Arc::new(Panics));
        let (count, good) = counter();
        {
            let mut fa = pin!(a.wait_async(|_, _, _| ()));
            let mut fb = pin!(b.wait_async(|_, _, _| ()));
            // `a` registers in cell 0 with the panicking waker, `b` in 1.
            assert!(poll_with(fa.as_mut(), &bad).is_pending());
            assert!(poll_with(fb.as_mut(), &good).is_pending());
            let panicked = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| p.push(1)));
            assert!(panicked.is_err(), "the waker's panic reaches the publisher");
            assert_eq!(wakes(&count), 1, "cell 1 was still woken");
            let claimed = 0b11 << super::HALF;
            assert_eq!(ring.wait.armed.load(Ordering::SeqCst), claimed);
            for cell in &ring.wait.cells {
                assert_eq!(cell.done.load(Ordering::SeqCst), 1, "no claim left open");
            }
            // The event is there for both; `a` re-arms with a good waker.
            let good_cx = &mut Context::from_waker(&good);
            assert_eq!(fb.as_mut().poll(good_cx), TaskPoll::Ready(Ok(1)));
            assert_eq!(fa.as_mut().poll(good_cx), TaskPoll::Ready(Ok(1)));
        }
        // The producer's handle is whole: the notify came after its state.
        let mut fb = pin!(b.wait_async(|e, _, _| assert_eq!(*e, 2)));
        assert!(poll_with(fb.as_mut(), &good).is_pending());
        p.push(2).unwrap();
        assert_eq!(wakes(&count), 2);
        assert_eq!(poll_with(fb.as_mut(), &good), TaskPoll::Ready(Ok(1)));
    }

    #[test]
    fn async_a_kept_cell_still_being_woken_is_traded_for_a_free_one() {
        let ring: Sp<2> = mk(4, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let taken = |r: &Sp<2>| r.wait.taken.load(Ordering::SeqCst);
        // A first wait: the handle keeps cell 0.
        {
            let mut fut = pin!(c.wait_async(|_, _, _| ()));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(taken(&ring), 0b01);
        // Stand in for a notify that claimed cell 0 and is still waking.
        let claimed = 1 << super::HALF;
        ring.wait.armed.fetch_or(claimed, Ordering::SeqCst);
        ring.wait.cells[0].done.store(0, Ordering::SeqCst);
        let mut got = 0;
        {
            let mut fut = pin!(c.wait_async(|e, _, _| got = *e));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(wakes(&count), 0, "no busy-poll: armed elsewhere");
            assert_eq!(taken(&ring), 0b10, "cell 0 given back, cell 1 taken");
            assert_eq!(ring.wait.armed.load(Ordering::SeqCst), claimed | 0b10);
            ring.wait.cells[0].done.store(1, Ordering::SeqCst); // the notify ends
            p.push(5).unwrap();
            assert_eq!(wakes(&count), 1, "woken through cell 1");
            assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(1)));
        }
        assert_eq!(got, 5);
        assert_eq!(taken(&ring), 0, "cell 1 lent for the wait, given back");
        // Cell 0 (claimed, done) serves the next wait: the arm clears the
        // claimed bit as it sets the armed one.
        {
            let mut fut = pin!(c.wait_async(|_, _, _| ()));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            let armed = ring.wait.armed.load(Ordering::SeqCst);
            assert_eq!(armed & (claimed | 1), 1, "cell 0 armed, its claim cleared");
        }
        assert_eq!(taken(&ring), 0b01, "kept again");
    }

    #[test]
    fn async_a_cell_a_notify_is_still_waking_is_not_written() {
        let ring: Sp<1> = mk(4, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let claimed = 1 << super::HALF;
        let done = &ring.wait.cells[0].done;
        // Stand in for a notify that claimed the cell and is not done.
        ring.wait.armed.fetch_or(claimed, Ordering::SeqCst);
        let mut fut = pin!(c.wait_async(|_, _, _| ()));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes(&count), 1, "asked to be polled again at once");
        assert_eq!(ring.wait.armed.load(Ordering::SeqCst), claimed, "not armed");
        assert_eq!(Arc::strong_count(&count), 2, "nothing stored in the cell");
        done.store(1, Ordering::SeqCst); // the notify is done
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            ring.wait.armed.load(Ordering::SeqCst),
            1,
            "armed now, the claimed bit cleared in the same step"
        );
        assert_eq!(done.load(Ordering::SeqCst), 0);
        p.push(1).unwrap();
        assert_eq!(wakes(&count), 2);
        assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(1)));
    }

    /// A wake takes the waker out of its cell (and wakes it by value once
    /// the cell is free); a registration that is not woken leaves it there
    /// for the next one, which keeps it if it `will_wake` the same task,
    /// and the ring drops what its cells keep.
    #[test]
    fn async_a_cell_keeps_its_waker_through_wakes_until_another_task_registers() {
        let ring: Sp<1> = mk(4, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (a, wa) = counter();
        let (b, wb) = counter();
        for round in 1..=3 {
            let mut fut = pin!(c.wait_async(|_, _, _| ()));
            assert!(poll_with(fut.as_mut(), &wa).is_pending());
            assert_eq!(
                Arc::strong_count(&a),
                3,
                "ours, `wa`'s, the cell's: one clone"
            );
            p.push(round).unwrap();
            assert_eq!(wakes(&a), round as usize);
            assert_eq!(
                Arc::strong_count(&a),
                3,
                "woken by reference: still in the cell"
            );
            assert_eq!(poll_with(fut.as_mut(), &wa), TaskPoll::Ready(Ok(1)));
        }
        {
            let mut fut = pin!(c.wait_async(|_, _, _| ()));
            assert!(poll_with(fut.as_mut(), &wb).is_pending());
            assert!(poll_with(fut.as_mut(), &wb).is_pending());
            assert_eq!(Arc::strong_count(&b), 3, "one clone, kept across polls");
            assert_eq!(
                Arc::strong_count(&a),
                2,
                "replaced: the cell dropped `wa`'s"
            );
        }
        assert_eq!(Arc::strong_count(&b), 3, "kept after the future dropped");
        p.push(9).unwrap();
        assert_eq!((wakes(&a), wakes(&b)), (3, 0), "a kept waker is not armed");
        drop((c, p));
        drop(ring);
        assert_eq!(
            Arc::strong_count(&b),
            2,
            "the ring dropped its cell's waker"
        );
    }

    #[test]
    fn async_a_future_polled_without_a_wake_keeps_one_waker() {
        let ring: Sp<1> = mk(4, 1);
        let mut g = Ring::graph(&ring).unwrap();
        let mut c = g.consumer(&[]).unwrap();
        let (count, waker) = counter();
        let (other, w_other) = counter();
        let mut cx = Context::from_waker(&waker);
        {
            let mut fut = pin!(c.wait_async(|_, _, _| ()));
            for _ in 0..3 {
                assert!(fut.as_mut().poll(&mut cx).is_pending());
                assert_eq!(Arc::strong_count(&count), 3, "ours, `waker`'s, the cell's");
            }
            assert!(poll_with(fut.as_mut(), &w_other).is_pending());
            assert_eq!(Arc::strong_count(&count), 2, "replaced, dropped");
            assert_eq!(Arc::strong_count(&other), 3);
        }
        assert_eq!(armed(&ring), 0, "the dropped future unarmed its cell");
        assert_eq!((wakes(&count), wakes(&other)), (0, 0));
    }

    #[test]
    fn async_waiters_beyond_the_cells_busy_poll() {
        let ring: Sp<1> = mk(4, 2);
        let (mut a, mut b, mut p) = two_consumers(&ring);
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let mut fa = pin!(a.wait_async(|_, _, _| ()));
        let mut fb = pin!(b.wait_async(|_, _, _| ()));
        assert!(poll_with(fa.as_mut(), &wa).is_pending());
        assert!(poll_with(fb.as_mut(), &wb).is_pending());
        assert_eq!(wakes(&ca), 0);
        assert_eq!(wakes(&cb), 1, "no cell left: asked to be polled again");
        p.push(1).unwrap();
        assert_eq!(wakes(&ca), 1);
        assert_eq!(poll_with(fa.as_mut(), &wa), TaskPoll::Ready(Ok(1)));
        assert_eq!(poll_with(fb.as_mut(), &wb), TaskPoll::Ready(Ok(1)));
    }

    #[test]
    fn async_worker_and_a_spinning_consumer_share_a_ring() {
        let ring: Sp<8> = mk(8, 4);
        let mut g = Ring::graph(&ring).unwrap();
        let [mut w] = g.work_group::<1>(&[]).unwrap();
        let mut spinner = g.consumer(&[]).unwrap();
        let mut p = g.single_producer().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut sum = 0;
        {
            let mut fut = pin!(w.wait_async(|e, _, _| sum += e));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            p.push(4).unwrap();
            assert_eq!(spinner.wait(|e, _, _| assert_eq!(*e, 4)), Ok(1));
            assert!(wakes(&count) >= 1);
            assert_eq!(fut.as_mut().poll(&mut cx), TaskPoll::Ready(Ok(1)));
        }
        assert_eq!(sum, 4);
    }
}
