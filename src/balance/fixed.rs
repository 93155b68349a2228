//! A balancer without an allocator: round robin over at most `N` members,
//! kept in two fixed copies (the left-right scheme).
//!
//! Ground rules:
//! - `live` (0 or 1) names the copy pickers read; the other copy is
//!   written only by the one writer holding `writing`, and only once its
//!   reader count has drained to zero.
//! - A picker increments the count of the copy `live` names, then checks
//!   `live` again; only if it still names that copy does it read. The
//!   writer checks the count of the idle copy before writing it. This is
//!   the store-load pattern of Dekker's algorithm (picker: count++ then
//!   load live; writer: store live, later load count), which only a
//!   `SeqCst` fence between each side's store and load orders. So a picker
//!   either is counted before the writer looks (and the writer waits for
//!   it), or sees the flip and retries: no picker reads a copy being
//!   written.
//! - Pickers never wait for a writer (they retry only if a flip happened
//!   between their two loads: lock-free). Writers wait for each other and
//!   for pickers still inside the copy they want (blocking).

use core::mem::MaybeUninit;

use super::BalanceError;
use crate::sync::{
    fence, spin_loop, AtomicBool, AtomicUsize, CachePadded,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
    UnsafeCell,
};

struct Members<B, const N: usize> {
    items: [MaybeUninit<B>; N],
    /// `0 ..= N` initialised items.
    len: usize,
}

impl<B: Copy, const N: usize> Members<B, N> {
    const fn new() -> Members<B, N> {
        Members {
            items: [const { MaybeUninit::uninit() }; N],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[B] {
        // SAFETY: the first `len` items are initialised (every writer keeps
        // this), and MaybeUninit<B> has B's layout.
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<B>(), self.len) }
    }
}

/// Round robin over at most `N` `Copy` members, with no allocation:
/// `const`-constructible for a `static`.
///
/// ```
/// use latchfree::balance::fixed::RoundRobin;
///
/// static LB: RoundRobin<u16, 4> = RoundRobin::new();
/// LB.add(8080).unwrap();
/// LB.add(8081).unwrap();
/// assert_eq!([LB.pick(), LB.pick(), LB.pick()], [Some(8080), Some(8081), Some(8080)]);
/// LB.remove(&8080).unwrap();
/// assert_eq!(LB.pick(), Some(8081));
/// ```
pub struct RoundRobin<B, const N: usize> {
    copies: [UnsafeCell<Members<B, N>>; 2],
    /// Pickers inside each copy.
    readers: [CachePadded<AtomicUsize>; 2],
    /// The copy pickers read: 0 or 1.
    live: AtomicUsize,
    /// Held by the one writer.
    writing: AtomicBool,
    next: CachePadded<AtomicUsize>,
}

// SAFETY: the copies are read only by counted pickers and written only by
// the single writer while uncounted (see the module's ground rules); the
// members are `Copy + Send + Sync` plain values.
unsafe impl<B: Copy + Send + Sync, const N: usize> Sync for RoundRobin<B, N> {}

impl<B, const N: usize> core::fmt::Debug for RoundRobin<B, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("fixed::RoundRobin")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<B: Copy + PartialEq, const N: usize> RoundRobin<B, N> {
    const_fn_unless_loom! {
        /// An empty balancer for up to `N` members.
        pub fn new() -> RoundRobin<B, N> {
            RoundRobin {
                copies: [UnsafeCell::new(Members::new()), UnsafeCell::new(Members::new())],
                readers: [CachePadded::new(AtomicUsize::new(0)), CachePadded::new(AtomicUsize::new(0))],
                live: AtomicUsize::new(0),
                writing: AtomicBool::new(false),
                next: CachePadded::new(AtomicUsize::new(0)),
            }
        }
    }

    /// Runs `f` on the live members. Never waits for a writer.
    fn read<R>(&self, f: impl FnOnce(&[B]) -> R) -> R {
        loop {
            let side = self.live.load(Acquire);
            self.readers[side].fetch_add(1, Relaxed);
            // Dekker, the picker's side: the count is ordered before the
            // re-read of `live` (pairs with the writer's fence).
            fence(SeqCst);
            // Acquire: pairs with the flip's Release, so the copy's
            // contents are visible.
            if self.live.load(Acquire) == side {
                // SAFETY: counted in `side` while it was live: no writer
                // writes it until this count is released (ground rules).
                let r = self.copies[side].with(|m| f(unsafe { (*m).as_slice() }));
                // Release: our reads happen before a writer's Acquire
                // check of the count, hence before its writes.
                self.readers[side].fetch_sub(1, Release);
                return r;
            }
            self.readers[side].fetch_sub(1, Release);
            spin_loop();
        }
    }

    /// The next member, or `None` if there are none.
    #[inline]
    pub fn pick(&self) -> Option<B> {
        self.read(|m| {
            if m.is_empty() {
                None
            } else {
                Some(m[self.next.fetch_add(1, Relaxed) % m.len()])
            }
        })
    }

    /// Members now (may be stale).
    pub fn len(&self) -> usize {
        self.read(|m| m.len())
    }

    /// Whether there are no members (may be stale).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rewrites the idle copy with `f(current members)` and makes it live.
    /// Waits for other writers and for pickers still in the idle copy.
    fn write(
        &self,
        f: impl FnOnce(&[B], &mut Members<B, N>) -> Result<(), BalanceError>,
    ) -> Result<(), BalanceError> {
        while self
            .writing
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            spin_loop();
        }
        let live = self.live.load(Relaxed); // only writers change it
        let idle = 1 - live;
        // Dekker, the writer's side: the last flip (our store to `live`)
        // is ordered before this count check.
        fence(SeqCst);
        // Acquire: pairs with the pickers' Release decrements, so their
        // reads of this copy happen before our writes.
        while self.readers[idle].load(Acquire) != 0 {
            spin_loop();
        }
        // SAFETY: we are the only writer; `idle` is not live and its count
        // drained after the last flip, so no picker reads it (ground
        // rules); `live` is only read, by us and by counted pickers.
        let result = self.copies[idle].with_mut(|dst| {
            self.copies[live].with(|src| {
                // SAFETY: see above: `dst` is ours alone, `src` is only read.
                let (src, dst) = unsafe { ((*src).as_slice(), &mut *dst) };
                dst.len = 0;
                f(src, dst)
            })
        });
        if result.is_ok() {
            // Release: publishes the copy to pickers' Acquire of `live`.
            self.live.store(idle, Release);
        }
        self.writing.store(false, Release);
        result
    }

    /// Adds a member; `Full` if there are already `N`.
    pub fn add(&self, member: B) -> Result<(), BalanceError> {
        self.write(|src, dst| {
            if src.len() == N {
                return Err(BalanceError::Full);
            }
            for (i, m) in src.iter().chain([member].iter()).enumerate() {
                dst.items[i] = MaybeUninit::new(*m);
            }
            dst.len = src.len() + 1;
            Ok(())
        })
    }

    /// Removes the first member equal to `member`.
    pub fn remove(&self, member: &B) -> Result<(), BalanceError> {
        self.write(|src, dst| {
            let at = src
                .iter()
                .position(|m| m == member)
                .ok_or(BalanceError::NotFound)?;
            for (i, m) in src
                .iter()
                .enumerate()
                .filter(|e| e.0 != at)
                .map(|e| e.1)
                .enumerate()
            {
                dst.items[i] = MaybeUninit::new(*m);
            }
            dst.len = src.len() - 1;
            Ok(())
        })
    }
}

impl<B: Copy + PartialEq, const N: usize> Default for RoundRobin<B, N> {
    fn default() -> Self {
        Self::new()
    }
}
