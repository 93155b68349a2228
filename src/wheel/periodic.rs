//! The state machine of one periodic timer series (the timer service's
//! `every`/`schedule`), split out so the loom models run this very code.
//!
//! A series is one state word and the handle of its next armed run:
//!
//! - `state`: `IDLE` (between runs: the next run may be armed or being
//!   armed), `RUNNING` (a run is in progress), or `CANCELLED` (final).
//!   A run starts with `IDLE -> RUNNING` and ends with `RUNNING -> IDLE`;
//!   [`Series::cancel`] swaps in `CANCELLED` from either. Exactly one of a
//!   run's start and a cancel wins, so once `cancel` returned `true` no run
//!   starts (one already running finishes).
//! - `current`: the handle of the armed run, written by [`Series::arm`]
//!   under the lock after checking the state, and cancelled by `cancel`
//!   under the same lock after its swap. So either `arm` sees `CANCELLED`
//!   and arms nothing, or `cancel` finds the armed handle and cancels it:
//!   no run is left armed behind a cancelled series.
//! - A run's callback may panic. The run ends (`RUNNING -> IDLE`) on every
//!   path, so a panic never leaves the series stuck in `RUNNING` (which
//!   would stop it for good); the panic is counted and handed back to the
//!   caller with the verdict, to be re-raised once the next run is armed.

use alloc::boxed::Box;
use core::any::Any;

use crate::sync::blocking::Mutex;
use crate::sync::{AtomicU8, AtomicUsize, Ordering};

/// Between runs.
const IDLE: u8 = 0;
/// A run is in progress.
const RUNNING: u8 = 1;
/// Cancelled (final).
const CANCELLED: u8 = 2;

/// What [`Series::run`] did.
pub enum Run {
    /// The series was cancelled before this run could start: nothing ran.
    Cancelled,
    /// The callback ran; `rearm` says whether the series is still live (no
    /// cancel came during the run) and so wants its next run armed;
    /// `panic` is the callback's panic, if it panicked.
    Ran {
        /// No cancel came in: arm the next run.
        rearm: bool,
        /// The callback's panic payload.
        panic: Option<Box<dyn Any + Send + 'static>>,
    },
}

/// One periodic series: see the module docs. `H` is the handle of an armed
/// run (a timer handle in the service).
pub struct Series<H> {
    /// `IDLE`, `RUNNING` or `CANCELLED`.
    state: AtomicU8,
    /// The handle of the last armed run (`None` before the first).
    current: Mutex<Option<H>>,
    /// Runs whose callback panicked; only grows.
    panics: AtomicUsize,
}

impl<H> Default for Series<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H> Series<H> {
    /// A live series with nothing armed yet.
    pub fn new() -> Self {
        Series {
            state: AtomicU8::new(IDLE),
            current: Mutex::new(None),
            panics: AtomicUsize::new(0),
        }
    }

    /// Arms the next run: `submit` schedules it and returns its handle
    /// (`None` if it could not be scheduled). Runs under the lock, and not
    /// at all once the series is cancelled.
    pub fn arm(&self, submit: impl FnOnce() -> Option<H>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // Acquire: pairs with `cancel`'s swap. The lock orders this check
        // against `cancel`'s look at `current` (module docs).
        if self.state.load(Ordering::Acquire) == CANCELLED {
            return;
        }
        *cur = submit();
    }

    /// Runs `f` if the series is live: `IDLE -> RUNNING`, the callback
    /// (its panic caught), `RUNNING -> IDLE` unless cancelled meanwhile.
    pub fn run(&self, f: impl FnOnce()) -> Run {
        // AcqRel: pairs with `cancel`'s swap, so exactly one side wins.
        if self
            .state
            .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Run::Cancelled;
        }
        let panic = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).err();
        if panic.is_some() {
            // Relaxed: a statistic; nothing is ordered by it.
            self.panics.fetch_add(1, Ordering::Relaxed);
        }
        // RUNNING -> IDLE on every path, panic included; fails only if a
        // cancel came during the run. AcqRel: as above.
        let rearm = self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        Run::Ran { rearm, panic }
    }

    /// Cancels the series: `true` if this call did (a run in progress
    /// finishes, none follows), `false` if it already was. `cancel_armed`
    /// is given the armed run's handle, under the lock.
    pub fn cancel(&self, cancel_armed: impl FnOnce(&H)) -> bool {
        // AcqRel: pairs with the run's CASes and `arm`'s load.
        if self.state.swap(CANCELLED, Ordering::AcqRel) == CANCELLED {
            return false;
        }
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = cur.as_ref() {
            cancel_armed(h);
        }
        true
    }

    /// Runs whose callback panicked so far.
    pub fn panics(&self) -> usize {
        // Relaxed: a statistic.
        self.panics.load(Ordering::Relaxed)
    }
}
