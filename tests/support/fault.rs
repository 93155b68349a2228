//! Fault injection for the reliability tests (`tests/faults.rs`) and the
//! soak (`examples/soak.rs`, which includes this file by path).
//!
//! This is the one fault mechanism of the test suite: `tests/faults.rs`,
//! `tests/faults_core.rs`, `tests/faults_map.rs`, `tests/batch_faults.rs`
//! and the soak all include it.
//!
//! - [`Fault`]: a trigger that user callbacks call once per invocation
//!   ([`Fault::hit`]); it panics on the k-th call, on every k-th call, or on
//!   a seeded pseudo-random fraction of calls. Which call indices panic is a
//!   pure function of the plan (and seed), so a failing seed replays.
//!   Injected panics carry a message starting with [`INJECTED`] (or are a
//!   [`Bomb`], a payload whose own `Drop` panics), and
//!   [`quiet_injected_panics`] keeps them off stderr.
//! - [`arm`], [`point`], [`disarm`], [`fired`], [`paused`]: this thread's
//!   own [`Fault`], for user code that has nowhere to keep a shared one (a
//!   value's `Drop`, `Hash` or `Ord`): the k-th [`point`] after `arm(k)`
//!   panics, once.
//! - [`Ledger`] and [`Tracked`]: a value type that counts its creations,
//!   clones and drops, and whose `Clone`, `Drop`, `Hash` and `Eq` each call
//!   a [`Fault`] of the ledger, so a test can make them panic too. After a
//!   run, [`Ledger::live`] is zero exactly when nothing leaked and nothing
//!   was dropped twice.
//! - [`Tally`]: one counter per item id, to check that every accepted item
//!   was seen exactly once.
//! - [`Rng`]: SplitMix64, for seeded choices in the tests and the soak.
#![allow(dead_code)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

/// Every injected panic's message starts with this.
pub const INJECTED: &str = "injected fault";

/// SplitMix64 finaliser: a well-mixed 64-bit function of its input.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small seeded generator (SplitMix64); one per thread.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `true` with probability `per_million / 1_000_000`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

const NEVER: u8 = 0;
const ON_CALL: u8 = 1;
const EVERY: u8 = 2;
const RATE: u8 = 3;

/// When a [`Fault`] panics. Call numbers start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Never panic (the default).
    Never,
    /// Panic on call `k` only.
    OnCall(u64),
    /// Panic on calls `k`, `2k`, `3k`, ...
    Every(u64),
    /// Panic on a call `n` when `mix(seed ^ n) % 1_000_000 < per_million`:
    /// a fixed, seed-determined set of call numbers at that rate.
    Rate {
        /// Panics per million calls.
        per_million: u32,
        /// Chooses which calls.
        seed: u64,
    },
}

/// A trigger for user callbacks: each invocation calls [`hit`](Self::hit),
/// which counts it and panics when the [`Plan`] says so. Re-armable at any
/// time ([`arm`](Self::arm)); shared by reference or `Arc`.
#[derive(Debug, Default)]
pub struct Fault {
    kind: AtomicU8,
    k: AtomicU64,
    seed: AtomicU64,
    calls: AtomicU64,
    fired: AtomicU64,
}

impl Fault {
    /// A trigger that never fires until armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trigger following `plan`.
    pub fn with(plan: Plan) -> Self {
        let f = Self::new();
        f.arm(plan);
        f
    }

    /// Restarts the counts: the next call is call 1, nothing has fired.
    pub fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.fired.store(0, Ordering::Relaxed);
    }

    /// Replaces the plan; the call count goes on from where it is.
    pub fn arm(&self, plan: Plan) {
        let (kind, k, seed) = match plan {
            Plan::Never => (NEVER, 0, 0),
            Plan::OnCall(k) => (ON_CALL, k, 0),
            Plan::Every(k) => (EVERY, k.max(1), 0),
            Plan::Rate { per_million, seed } => (RATE, u64::from(per_million), seed),
        };
        self.k.store(k, Ordering::Relaxed);
        self.seed.store(seed, Ordering::Relaxed);
        // Release/Acquire with `hit`: a call that sees the new kind sees its
        // parameters.
        self.kind.store(kind, Ordering::Release);
    }

    /// Stops injecting (same as `arm(Plan::Never)`).
    pub fn disarm(&self) {
        self.arm(Plan::Never);
    }

    /// Whether call number `n` is planned to panic.
    pub fn plans(&self, n: u64) -> bool {
        let kind = self.kind.load(Ordering::Acquire);
        let k = self.k.load(Ordering::Relaxed);
        match kind {
            ON_CALL => n == k,
            EVERY => n % k == 0,
            RATE => mix(self.seed.load(Ordering::Relaxed) ^ n) % 1_000_000 < k,
            _ => false,
        }
    }

    /// Counts one call of the callback named `what`; panics (with a message
    /// starting with [`INJECTED`]) if this call is planned to. Never panics
    /// while the thread is already unwinding (that would abort). Returns the
    /// call number.
    #[track_caller]
    pub fn hit(&self, what: &str) -> u64 {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.plans(n) && !std::thread::panicking() {
            self.fired.fetch_add(1, Ordering::Relaxed);
            panic!("{INJECTED}: {what} call {n}");
        }
        n
    }

    /// Like [`hit`](Self::hit), but a planned call panics with `payload()`
    /// (a [`Bomb`], say) instead of a message.
    pub fn hit_with<P: std::any::Any + Send>(&self, payload: impl FnOnce() -> P) -> u64 {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.plans(n) && !std::thread::panicking() {
            self.fired.fetch_add(1, Ordering::Relaxed);
            std::panic::panic_any(payload());
        }
        n
    }

    /// Like [`hit`](Self::hit), but reports instead of panicking: `true` if
    /// this call is planned to fail (counted as fired). For callbacks whose
    /// failure is an `Err`, not a panic.
    pub fn fails(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let f = self.plans(n);
        if f {
            self.fired.fetch_add(1, Ordering::Relaxed);
        }
        f
    }

    /// Calls counted so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Panics (or planned failures) injected so far.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// Wraps a one-argument callback: each call first [`hit`](Self::hit)s
    /// this trigger.
    pub fn wrap<A, R>(
        self: &Arc<Self>,
        what: &'static str,
        f: impl Fn(A) -> R + Send + Sync + 'static,
    ) -> impl Fn(A) -> R + Send + Sync + 'static {
        let fault = Arc::clone(self);
        move |a| {
            fault.hit(what);
            f(a)
        }
    }
}

/// A panic payload whose own `Drop` panics (with an injected message):
/// whoever drops it must do so where a panic is caught.
#[derive(Debug)]
pub struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{INJECTED}: a Bomb payload dropped");
    }
}

/// Whether a panic payload is one this module injected.
pub fn is_injected(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<Bomb>()
        || payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .is_some_and(|m| m.starts_with(INJECTED))
}

thread_local! {
    /// This thread's own trigger (module docs).
    static HERE: Fault = Fault::new();
    static PAUSED: Cell<bool> = const { Cell::new(false) };
}

/// Arms this thread's trigger: the `k`-th [`point`] from now (k >= 1)
/// panics, once. Also keeps injected panics quiet.
pub fn arm(k: usize) {
    quiet_injected_panics();
    HERE.with(|f| {
        f.reset();
        f.arm(Plan::OnCall(k as u64));
    });
}

/// Disarms this thread's trigger.
pub fn disarm() {
    HERE.with(Fault::disarm);
}

/// Whether this thread's trigger went off since it was armed.
pub fn fired() -> bool {
    HERE.with(|f| f.fired() > 0)
}

/// One call of user code on this thread: panics if it is the armed one
/// (never while the thread unwinds; the fault is then spent).
#[track_caller]
pub fn point() {
    if !PAUSED.with(Cell::get) {
        HERE.with(|f| f.hit("user code"));
    }
}

/// Runs `f` with this thread's trigger neither counting nor firing (a
/// test's own checks between the operations under test).
pub fn paused<R>(f: impl FnOnce() -> R) -> R {
    let was = PAUSED.with(|p| p.replace(true));
    let r = f();
    PAUSED.with(|p| p.set(was));
    r
}

/// Installs (once per process) a panic hook that prints nothing for
/// injected panics and defers to the previous hook for every other panic,
/// so real failures still show with their location.
pub fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_injected(info.payload()) {
                previous(info);
            }
        }));
    });
}

/// Counts the [`Tracked`] values of one test, and holds the faults their
/// `Clone`, `Drop`, `Hash` and `Eq` call.
#[derive(Debug, Default)]
pub struct Ledger {
    created: AtomicUsize,
    cloned: AtomicUsize,
    dropped: AtomicUsize,
    /// Hit by every `Tracked::clone`.
    pub clone: Fault,
    /// Hit by every `Tracked::drop` (after the drop is counted: the value
    /// is gone either way).
    pub drop: Fault,
    /// Hit by every `Tracked::hash`.
    pub hash: Fault,
    /// Hit by every `Tracked::eq`.
    pub eq: Fault,
}

impl Ledger {
    /// A fresh ledger, no faults armed.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A new tracked value with identity `id`.
    pub fn track(self: &Arc<Self>, id: u64) -> Tracked {
        self.created.fetch_add(1, Ordering::Relaxed);
        Tracked {
            id,
            ledger: Arc::clone(self),
        }
    }

    /// Values created with [`track`](Self::track).
    pub fn created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    /// Values made by `clone`.
    pub fn cloned(&self) -> usize {
        self.cloned.load(Ordering::Relaxed)
    }

    /// Values dropped.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Values alive now: created + cloned - dropped. Negative means a
    /// double drop.
    pub fn live(&self) -> i64 {
        // Read `dropped` first: a value counted dropped was counted created
        // before, so a concurrent reader never sees a spurious negative.
        let d = self.dropped() as i64;
        self.created() as i64 + self.cloned() as i64 - d
    }

    /// Disarms every fault (for the clean-up phase of a test).
    pub fn disarm_all(&self) {
        for f in [&self.clone, &self.drop, &self.hash, &self.eq] {
            f.disarm();
        }
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        format!(
            "created {} cloned {} dropped {} live {}",
            self.created(),
            self.cloned(),
            self.dropped(),
            self.live()
        )
    }
}

/// A value whose life is counted in its [`Ledger`]. Two values are equal
/// when their ids are; `Clone`, `Drop`, `Hash` and `Eq` hit the ledger's
/// faults.
#[derive(Debug)]
pub struct Tracked {
    id: u64,
    ledger: Arc<Ledger>,
}

impl Tracked {
    /// Its identity.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.ledger.clone.hit("Tracked::clone");
        self.ledger.cloned.fetch_add(1, Ordering::Relaxed);
        Tracked {
            id: self.id,
            ledger: Arc::clone(&self.ledger),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.dropped.fetch_add(1, Ordering::Relaxed);
        self.ledger.drop.hit("Tracked::drop");
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.ledger.eq.hit("Tracked::eq");
        self.id == other.id
    }
}

impl Eq for Tracked {}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ledger.hash.hit("Tracked::hash");
        self.id.hash(state);
    }
}

/// One counter per item id in `0..n`: [`see`](Self::see) each delivery,
/// then [`check`](Self::check) which were seen other than once.
#[derive(Debug)]
pub struct Tally {
    seen: Vec<AtomicU32>,
}

/// What [`Tally::check`] found wrong.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mismatch {
    /// Expected once, never seen.
    pub missing: Vec<u64>,
    /// Seen more than once (or seen though not expected).
    pub extra: Vec<u64>,
}

impl Mismatch {
    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

impl Tally {
    /// Counters for ids `0..n`.
    pub fn new(n: usize) -> Self {
        Tally {
            seen: (0..n).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Records one sighting of `id`.
    pub fn see(&self, id: u64) {
        self.seen[id as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How often `id` was seen.
    pub fn count(&self, id: u64) -> u32 {
        self.seen[id as usize].load(Ordering::Relaxed)
    }

    /// Sightings in total.
    pub fn total(&self) -> u64 {
        self.seen
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum()
    }

    /// Compares with `expected(id)`: ids expected must be seen exactly
    /// once, the others never. Lists at most 10 of each kind.
    pub fn check(&self, expected: impl Fn(u64) -> bool) -> Mismatch {
        let mut m = Mismatch::default();
        for (id, c) in self.seen.iter().enumerate() {
            let (id, c) = (id as u64, c.load(Ordering::Relaxed));
            let want = u32::from(expected(id));
            if c < want && m.missing.len() < 10 {
                m.missing.push(id);
            } else if c > want && m.extra.len() < 10 {
                m.extra.push(id);
            }
        }
        m
    }
}
