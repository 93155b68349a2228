//! A circuit breaker whose whole state machine is one atomic word.
//!
//! # The state machine (sony/gobreaker's, Hystrix's)
//!
//! - **Closed**: calls pass. Outcomes are counted in a rolling window of
//!   [`BUCKETS`] time buckets. The breaker *trips* (→ Open) when the
//!   failures in a row reach `consecutive_failures`, or when the window
//!   holds at least `min_calls` calls of which at least `failure_rate`
//!   percent failed.
//! - **Open**: calls are rejected until `cool_down` has passed since the
//!   trip; the first call after that moves it to Half-open and is its
//!   first probe.
//! - **Half-open**: at most `probes` calls are admitted (the recurring bug
//!   elsewhere is to admit every concurrent caller as a probe). `successes`
//!   successful probes close it (with a fresh window); one failed probe
//!   opens it again.
//!
//! # Ground rules
//!
//! - The state word is `kind (2 bits) | generation (22) | payload (40)`:
//!   Open's payload is the end of the cool-down in units of 2²⁰ ns
//!   (≈ 1.05 ms, rounded up; compared as a wrapping 40-bit distance, good
//!   for cool-downs below 2³⁹ units, 17 years); Half-open's is the probes
//!   admitted and the probe successes, 20 bits each. Every transition is
//!   one compare-and-swap on that word that also bumps the generation, so
//!   exactly one caller wins each transition and runs the observer for it.
//! - A [`Permit`] remembers the word it was admitted under. A probe's
//!   outcome counts only while the word still has that generation: a
//!   probe that finishes after its half-open round ended (a sibling
//!   failed, or the round closed) changes nothing but the totals.
//! - Closed-state outcomes go to the window's buckets: `ok`/`err` counters
//!   stamped with their bucket's epoch (`now / bucket width`). The first
//!   caller of a new epoch claims its bucket (a CAS on the stamp) and
//!   moves the old counts to the totals with a swap, so totals are exact;
//!   the window may misplace the few outcomes recorded during a claim.
//! - Orderings: the state word is read with `Acquire` and transitions are
//!   `AcqRel`, so whoever sees a new state also sees the window reset that
//!   came before it; the counters themselves are statistics (`Relaxed`).
//! - `now` is the caller's clock in **nanoseconds** (monotonic). A clock
//!   that runs backwards never panics: outcomes count in the newest bucket,
//!   and an Open breaker simply stays open until its cool-down end is
//!   reached on the new clock (at most `cool_down` plus the jump).
//!
//! # Panics and callbacks
//!
//! A [`Guard`] dropped without an outcome records a failure, so a panic
//! inside a guarded call counts as a failure (and keeps unwinding). The
//! observer runs after its transition is complete; if it panics the
//! breaker is already consistent, the panic reaches the caller, and (under
//! `std`) a panic from an observer run while a guard is dropped during an
//! unwind is caught rather than aborting the process.
//!
//! Progress: admission and recording are lock-free; nothing blocks.
//!
//! ```
//! use latchfree::breaker::{Breaker, CallError, Config, State};
//!
//! static DB: Breaker = Breaker::new(Config::new().consecutive_failures(2).cool_down(1_000_000));
//! let fail = || Err::<(), _>("timeout");
//! assert!(matches!(DB.call_at(0, fail), Err(CallError::Failed("timeout"))));
//! assert!(matches!(DB.call_at(0, fail), Err(CallError::Failed(_))));
//! assert_eq!(DB.state(), State::Open);
//! assert!(matches!(DB.call_at(10, || Ok::<_, ()>(1)), Err(CallError::Rejected(_))));
//! // After the cool-down one probe goes through and closes it.
//! assert_eq!(DB.call_at(2_100_000, || Ok::<_, ()>(1)).ok(), Some(1));
//! assert_eq!(DB.state(), State::Closed);
//! ```

#[cfg(feature = "std")]
mod std_call;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, CachePadded, Ordering};
use Ordering::{AcqRel, Acquire, Relaxed};

/// Buckets in the rolling window.
pub const BUCKETS: usize = 10;

const KIND_MASK: u64 = 0b11;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const GEN_SHIFT: u32 = 2;
const GEN_MASK: u64 = (1 << 22) - 1;
const PAYLOAD_SHIFT: u32 = 24;
const FIELD_BITS: u32 = 20;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const UNIT_SHIFT: u32 = 20; // Open payload unit: 2^20 ns
const UNTIL_MASK: u64 = (1 << 40) - 1;

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass and are counted.
    Closed,
    /// Calls are rejected until the cool-down ends.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
}

const fn kind(word: u64) -> u64 {
    word & KIND_MASK
}

const fn generation(word: u64) -> u64 {
    (word >> GEN_SHIFT) & GEN_MASK
}

const fn state_of(word: u64) -> State {
    match kind(word) {
        CLOSED => State::Closed,
        OPEN => State::Open,
        _ => State::HalfOpen,
    }
}

/// The word for `kind` one generation after `word`, with `payload`.
const fn next_word(word: u64, kind: u64, payload: u64) -> u64 {
    let generation = (generation(word) + 1) & GEN_MASK;
    kind | generation << GEN_SHIFT | payload << PAYLOAD_SHIFT
}

/// Time in Open payload units (2²⁰ ns), rounded up.
const fn to_units(ns: u64) -> u64 {
    ns.div_ceil(1 << UNIT_SHIFT)
}

/// The breaker's knobs. `const` builder: every setter returns the new
/// config, so a configured breaker can be a `static`.
///
/// ```
/// use latchfree::breaker::Config;
///
/// let c = Config::new()
///     .failure_rate(25) // trip at 25 % failures ...
///     .min_calls(100) // ... once the window has 100 calls
///     .window(30_000_000_000) // 30 s window
///     .cool_down(5_000_000_000)
///     .probes(3)
///     .successes(2);
/// assert_eq!(c.get_probes(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    failure_rate: u8,
    min_calls: u32,
    consecutive: u32,
    bucket_width: u64,
    cool_down: u64,
    probes: u32,
    successes: u32,
}

impl Config {
    /// Defaults: trip at 50 % failures over at least 20 calls in a 10 s
    /// window, or at 5 failures in a row; 5 s cool-down; one probe, which
    /// must succeed, to close again.
    pub const fn new() -> Config {
        Config {
            failure_rate: 50,
            min_calls: 20,
            consecutive: 5,
            bucket_width: 10_000_000_000 / BUCKETS as u64,
            cool_down: 5_000_000_000,
            probes: 1,
            successes: 1,
        }
    }

    /// Trip when at least this percentage of the window's calls failed
    /// (1..=100; 0 turns the rate rule off). Lower trips sooner on a
    /// sick dependency, and more often on a healthy noisy one.
    pub const fn failure_rate(mut self, percent: u8) -> Config {
        self.failure_rate = if percent > 100 { 100 } else { percent };
        self
    }

    /// The rate rule applies only once the window holds this many calls,
    /// so a handful of early failures cannot trip it.
    pub const fn min_calls(mut self, calls: u32) -> Config {
        self.min_calls = calls;
        self
    }

    /// Trip after this many failures in a row (0 turns the rule off).
    pub const fn consecutive_failures(mut self, failures: u32) -> Config {
        self.consecutive = failures;
        self
    }

    /// The rolling window's length in nanoseconds, split into
    /// [`BUCKETS`] buckets (at least 1 ns each). Longer remembers more and
    /// reacts slower to a change.
    pub const fn window(mut self, nanos: u64) -> Config {
        let width = nanos / BUCKETS as u64;
        self.bucket_width = if width == 0 { 1 } else { width };
        self
    }

    /// How long an open breaker rejects before it probes (nanoseconds,
    /// kept to a multiple of 2²⁰ ns, rounded up).
    pub const fn cool_down(mut self, nanos: u64) -> Config {
        self.cool_down = nanos;
        self
    }

    /// Most probes admitted per half-open round (1..2²⁰; clamped). More
    /// probes decide faster and load a recovering dependency harder.
    pub const fn probes(mut self, probes: u32) -> Config {
        self.probes = clamp_field(probes);
        if self.successes > self.probes {
            self.successes = self.probes;
        }
        self
    }

    /// Successful probes needed to close (1..=probes; clamped).
    pub const fn successes(mut self, successes: u32) -> Config {
        let s = clamp_field(successes);
        self.successes = if s > self.probes { self.probes } else { s };
        self
    }

    /// The probe limit.
    pub const fn get_probes(&self) -> u32 {
        self.probes
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

const fn clamp_field(v: u32) -> u32 {
    if v == 0 {
        1
    } else if v as u64 > FIELD_MASK {
        FIELD_MASK as u32
    } else {
        v
    }
}

/// Receives every state change, from the thread whose call caused it.
///
/// Implemented for `()` (nothing) and for any `Fn(State, State) + Sync`.
pub trait Observer {
    /// The breaker went from `from` to `to`.
    fn on_transition(&self, from: State, to: State);
}

impl Observer for () {
    #[inline(always)]
    fn on_transition(&self, _from: State, _to: State) {}
}

impl<F: Fn(State, State)> Observer for F {
    fn on_transition(&self, from: State, to: State) {
        self(from, to)
    }
}

/// One window bucket: outcomes during one epoch (`now / width`).
#[derive(Debug)]
struct Bucket {
    /// The epoch these counts belong to.
    epoch: AtomicU64,
    ok: AtomicUsize,
    err: AtomicUsize,
}

impl Bucket {
    const_fn_unless_loom! {
        fn new() -> Bucket {
            Bucket { epoch: AtomicU64::new(0), ok: AtomicUsize::new(0), err: AtomicUsize::new(0) }
        }
    }
}

/// A circuit breaker. See the [module docs](self) for the state machine.
///
/// ```
/// use latchfree::breaker::{Breaker, Config, State};
///
/// let b = Breaker::with_observer(Config::new().consecutive_failures(1), |from, to| {
///     assert_eq!((from, to), (State::Closed, State::Open));
/// });
/// let g = b.guard_at(0).unwrap();
/// g.failure();
/// assert_eq!(b.state(), State::Open);
/// assert_eq!(b.metrics().opened, 1);
/// ```
pub struct Breaker<O = ()> {
    /// `kind | generation | payload`; see the module docs.
    state: CachePadded<AtomicU64>,
    /// The newest bucket epoch any caller has claimed (only grows).
    epoch: AtomicU64,
    buckets: [Bucket; BUCKETS],
    /// Failures in a row in the closed state (reset by a success).
    streak: AtomicU32,
    /// Outcomes moved out of reclaimed buckets (totals = these + live).
    retired_ok: AtomicUsize,
    retired_err: AtomicUsize,
    rejected: AtomicUsize,
    opened: AtomicUsize,
    config: Config,
    observer: O,
}

impl<O> fmt::Debug for Breaker<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &state_of(self.state.load(Acquire)))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a call was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The breaker is open until `retry_at` (the caller's clock, ns).
    Open {
        /// When it will admit a probe.
        retry_at: u64,
    },
    /// Half-open and every probe of this round is taken.
    ProbesBusy,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Open { retry_at } => write!(f, "circuit open until {retry_at}"),
            Rejected::ProbesBusy => f.write_str("circuit half-open, all probes in flight"),
        }
    }
}

impl core::error::Error for Rejected {}

/// What [`Breaker::call_at`] returns on failure: rejected without running,
/// or the call's own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker did not run the call.
    Rejected(Rejected),
    /// The call ran and failed (recorded as a failure).
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::Failed(e) => write!(f, "call failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for CallError<E> {}

/// Admission to one call: the state word it was admitted under.
#[derive(Clone, Copy, Debug)]
#[must_use = "record the outcome with Breaker::record_at, or use a Guard"]
pub struct Permit {
    word: u64,
}

impl Permit {
    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        kind(self.word) == HALF_OPEN
    }
}

/// Counters for metrics. Totals are exact; `window_*` is the rolling
/// window as of the call (may be stale under concurrency).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Successful calls, ever.
    pub successes: usize,
    /// Failed calls, ever.
    pub failures: usize,
    /// Calls rejected without running.
    pub rejected: usize,
    /// Times the breaker opened.
    pub opened: usize,
    /// Calls in the rolling window.
    pub window_calls: usize,
    /// Failures in the rolling window.
    pub window_failures: usize,
}

impl Breaker<()> {
    const_fn_unless_loom! {
        /// A closed breaker with no observer.
        pub fn new(config: Config) -> Breaker<()> {
            Breaker::with_observer(config, ())
        }
    }
}

impl<O: Observer> Breaker<O> {
    const_fn_unless_loom! {
        /// A closed breaker that reports every transition to `observer`.
        pub fn with_observer(config: Config, observer: O) -> Breaker<O> {
            Breaker {
                state: CachePadded::new(AtomicU64::new(CLOSED)),
                epoch: AtomicU64::new(0),
                buckets: new_buckets(),
                streak: AtomicU32::new(0),
                retired_ok: AtomicUsize::new(0),
                retired_err: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                opened: AtomicUsize::new(0),
                config,
                observer,
            }
        }
    }

    /// The state now (stale as soon as it returns).
    pub fn state(&self) -> State {
        state_of(self.state.load(Acquire))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Admits a call at `now` or says why not. Never waits.
    #[inline]
    pub fn try_acquire_at(&self, now: u64) -> Result<Permit, Rejected> {
        // Acquire: pairs with the AcqRel transitions, so a caller admitted
        // under a new Closed word sees the window reset made before it.
        let mut word = self.state.load(Acquire);
        loop {
            match kind(word) {
                CLOSED => return Ok(Permit { word }),
                OPEN => {
                    let until = word >> PAYLOAD_SHIFT;
                    // `now` rounded down, the end rounded up: the cool-down
                    // lasts at least as long as configured.
                    let now_units = now >> UNIT_SHIFT;
                    // Wrapping 40-bit distance: 0 or "negative" means over.
                    let left = until.wrapping_sub(now_units) & UNTIL_MASK;
                    if left != 0 && left < 1 << 39 {
                        self.rejected.fetch_add(1, Relaxed);
                        return Err(Rejected::Open {
                            retry_at: (now_units + left).saturating_mul(1 << UNIT_SHIFT),
                        });
                    }
                    // Cool-down over: this caller opens the round as its
                    // first probe.
                    let probe = next_word(word, HALF_OPEN, 1);
                    match self.state.compare_exchange(word, probe, AcqRel, Acquire) {
                        Ok(_) => {
                            self.notify(State::Open, State::HalfOpen);
                            return Ok(Permit { word: probe });
                        }
                        Err(seen) => word = seen,
                    }
                }
                _ => {
                    let payload = word >> PAYLOAD_SHIFT;
                    if payload & FIELD_MASK >= self.config.probes as u64 {
                        self.rejected.fetch_add(1, Relaxed);
                        return Err(Rejected::ProbesBusy);
                    }
                    let probe = word + (1 << PAYLOAD_SHIFT); // one more admitted
                    match self.state.compare_exchange(word, probe, AcqRel, Acquire) {
                        Ok(_) => return Ok(Permit { word: probe }),
                        Err(seen) => word = seen,
                    }
                }
            }
            crate::sync::busy_loop();
        }
    }

    /// Records the outcome of an admitted call at `now`.
    #[inline]
    pub fn record_at(&self, permit: Permit, success: bool, now: u64) {
        if kind(permit.word) == CLOSED {
            if success {
                self.count(now, true);
                // Reset the streak only if needed: no write on the hot path.
                if self.streak.load(Relaxed) != 0 {
                    self.streak.store(0, Relaxed);
                }
            } else {
                self.closed_failure(now);
            }
        } else {
            self.probe_outcome(permit, success, now);
        }
    }

    /// Admits a call and returns a guard that records its outcome; a guard
    /// dropped without one (a panic, an early return) records a failure.
    #[inline]
    pub fn guard_at(&self, now: u64) -> Result<Guard<'_, O>, Rejected> {
        let permit = self.try_acquire_at(now)?;
        Ok(Guard {
            breaker: self,
            permit,
            now,
            done: false,
        })
    }

    /// Runs `f` if admitted at `now` and records `Ok` as a success and
    /// `Err` (or a panic, which keeps unwinding) as a failure.
    #[inline]
    pub fn call_at<T, E>(
        &self,
        now: u64,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let guard = self.guard_at(now).map_err(CallError::Rejected)?;
        match f() {
            Ok(v) => {
                guard.success();
                Ok(v)
            }
            Err(e) => {
                guard.failure();
                Err(CallError::Failed(e))
            }
        }
    }

    /// Counters for metrics.
    pub fn metrics(&self) -> Metrics {
        let epoch = self.epoch.load(Acquire);
        let (mut ok, mut err) = (0, 0);
        let (mut wok, mut werr) = (0, 0);
        for b in &self.buckets {
            let (o, e) = (b.ok.load(Relaxed), b.err.load(Relaxed));
            ok += o;
            err += e;
            if epoch.wrapping_sub(b.epoch.load(Relaxed)) < BUCKETS as u64 {
                wok += o;
                werr += e;
            }
        }
        Metrics {
            successes: ok + self.retired_ok.load(Relaxed),
            failures: err + self.retired_err.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            opened: self.opened.load(Relaxed),
            window_calls: wok + werr,
            window_failures: werr,
        }
    }

    /// Counts one closed-state outcome in `now`'s bucket.
    #[inline]
    fn count(&self, now: u64, success: bool) {
        let width = self.config.bucket_width;
        let epoch = self.epoch.load(Acquire);
        let bucket = if now.wrapping_sub(epoch.wrapping_mul(width)) < width {
            &self.buckets[(epoch % BUCKETS as u64) as usize]
        } else {
            self.advance(now / width, epoch)
        };
        let counter = if success { &bucket.ok } else { &bucket.err };
        counter.fetch_add(1, Relaxed);
    }

    /// The bucket for `target`, claimed for it if `target` is newer than
    /// `epoch`; for an older `target` (the clock went back) the newest.
    #[cold]
    fn advance(&self, target: u64, epoch: u64) -> &Bucket {
        if target <= epoch {
            return &self.buckets[(epoch % BUCKETS as u64) as usize];
        }
        let bucket = &self.buckets[(target % BUCKETS as u64) as usize];
        let stamp = bucket.epoch.load(Relaxed);
        if stamp < target
            && bucket
                .epoch
                .compare_exchange(stamp, target, Relaxed, Relaxed)
                .is_ok()
        {
            // Claimed: its old counts leave the window for the totals.
            self.retire(bucket);
        }
        // Release: publishes the claim (and its reset) to the fast path's
        // Acquire load of `epoch`.
        self.epoch.fetch_max(target, AcqRel);
        bucket
    }

    fn retire(&self, bucket: &Bucket) {
        self.retired_ok
            .fetch_add(bucket.ok.swap(0, Relaxed), Relaxed);
        self.retired_err
            .fetch_add(bucket.err.swap(0, Relaxed), Relaxed);
    }

    /// The window's (calls, failures) as of `now`.
    fn window(&self, now: u64) -> (usize, usize) {
        let current = now / self.config.bucket_width;
        let current = current.max(self.epoch.load(Acquire));
        let (mut calls, mut failures) = (0, 0);
        for b in &self.buckets {
            if current.wrapping_sub(b.epoch.load(Relaxed)) < BUCKETS as u64 {
                let (o, e) = (b.ok.load(Relaxed), b.err.load(Relaxed));
                calls += o + e;
                failures += e;
            }
        }
        (calls, failures)
    }

    #[cold]
    fn closed_failure(&self, now: u64) {
        self.count(now, false);
        let streak = self.streak.fetch_add(1, Relaxed).saturating_add(1);
        let c = &self.config;
        let mut trip = c.consecutive != 0 && streak >= c.consecutive;
        if !trip && c.failure_rate != 0 {
            let (calls, failures) = self.window(now);
            trip = calls >= c.min_calls as usize
                && calls > 0
                && failures * 100 >= c.failure_rate as usize * calls;
        }
        if !trip {
            return;
        }
        let word = self.state.load(Acquire);
        if kind(word) == CLOSED {
            self.open(word, State::Closed, now);
        }
    }

    /// Moves `word` to Open with a cool-down from `now`; returns whether
    /// this caller did it.
    fn open(&self, word: u64, from: State, now: u64) -> bool {
        let until = to_units(now.saturating_add(self.config.cool_down)) & UNTIL_MASK;
        let open = next_word(word, OPEN, until);
        if self
            .state
            .compare_exchange(word, open, AcqRel, Relaxed)
            .is_ok()
        {
            self.opened.fetch_add(1, Relaxed);
            self.notify(from, State::Open);
            true
        } else {
            false
        }
    }

    #[cold]
    fn probe_outcome(&self, permit: Permit, success: bool, now: u64) {
        if success {
            self.retired_ok.fetch_add(1, Relaxed);
        } else {
            self.retired_err.fetch_add(1, Relaxed);
        }
        let mut word = self.state.load(Acquire);
        loop {
            // Only a probe of the current round counts.
            if kind(word) != HALF_OPEN || generation(word) != generation(permit.word) {
                return;
            }
            if !success {
                if self.open(word, State::HalfOpen, now) {
                    return;
                }
                word = self.state.load(Acquire);
                continue;
            }
            let succeeded = (word >> (PAYLOAD_SHIFT + FIELD_BITS)) & FIELD_MASK;
            if succeeded + 1 >= self.config.successes as u64 {
                // Reset the window first, so nothing that sees Closed sees
                // the failures that opened it.
                self.streak.store(0, Relaxed);
                for b in &self.buckets {
                    self.retire(b);
                }
                let closed = next_word(word, CLOSED, 0);
                match self.state.compare_exchange(word, closed, AcqRel, Acquire) {
                    Ok(_) => {
                        self.notify(State::HalfOpen, State::Closed);
                        return;
                    }
                    Err(seen) => word = seen,
                }
            } else {
                let counted = word + (1 << (PAYLOAD_SHIFT + FIELD_BITS));
                match self.state.compare_exchange(word, counted, AcqRel, Acquire) {
                    Ok(_) => return,
                    Err(seen) => word = seen,
                }
            }
            crate::sync::busy_loop();
        }
    }

    fn notify(&self, from: State, to: State) {
        #[cfg(feature = "std")]
        std_call::notify(&self.observer, from, to);
        #[cfg(not(feature = "std"))]
        self.observer.on_transition(from, to);
    }
}

const_fn_unless_loom! {
    fn new_buckets() -> [Bucket; BUCKETS] {
        #[cfg(not(latchfree_loom))]
        {
            [const { Bucket::new() }; BUCKETS]
        }
        #[cfg(latchfree_loom)]
        {
            core::array::from_fn(|_| Bucket::new())
        }
    }
}

/// Records the outcome of one admitted call; dropped without
/// [`success`](Guard::success) or [`failure`](Guard::failure) (a panic, an
/// early `?`) it records a failure.
///
/// ```
/// use latchfree::breaker::{Breaker, Config};
///
/// let b = Breaker::new(Config::new());
/// let g = b.guard_at(0).expect("closed");
/// // ... the call ...
/// g.success();
/// assert_eq!(b.metrics().successes, 1);
/// ```
#[must_use = "a guard dropped at once records a failure"]
pub struct Guard<'a, O: Observer = ()> {
    breaker: &'a Breaker<O>,
    permit: Permit,
    now: u64,
    done: bool,
}

impl<O: Observer> Guard<'_, O> {
    /// The call succeeded.
    #[inline]
    pub fn success(mut self) {
        self.done = true;
        self.breaker.record_at(self.permit, true, self.now);
    }

    /// The call failed.
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.record_at(self.permit, false, self.now);
    }

    /// The call failed, observed at `now` (for a probe, the cool-down then
    /// starts from `now` rather than from admission).
    pub fn failure_at(mut self, now: u64) {
        self.done = true;
        self.breaker.record_at(self.permit, false, now);
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.permit.is_probe()
    }
}

impl<O: Observer> Drop for Guard<'_, O> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.record_at(self.permit, false, self.now);
        }
    }
}

impl<O: Observer> fmt::Debug for Guard<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("probe", &self.is_probe())
            .finish_non_exhaustive()
    }
}
