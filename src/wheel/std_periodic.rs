//! The state machine of one periodic timer series (the timer service's
//! `schedule_every`/`schedule_series`), split out so the loom models run
//! this very code.
//!
//! A series is one state word and the handle of its next armed run:
//!
//! - `state`: `IDLE` (between runs: the next run may be armed or being
//!   armed), `RUNNING` (a run is in progress), `CANCELLED` (final: a
//!   cancel stopped it) or `ENDED` (final: the schedule said "no more
//!   runs", or the next run could not be armed). A run starts with
//!   `IDLE -> RUNNING` and ends with `RUNNING -> IDLE` (or `-> ENDED` when
//!   its `next` said so); [`Series::cancel`] moves `IDLE` or `RUNNING` to
//!   `CANCELLED`. Exactly one of a run's start and a cancel wins, so once
//!   `cancel` returned `true` no run starts (one already running
//!   finishes); and a cancel after the series ended returns `false`,
//!   because it stopped nothing.
//! - `current`: the handle of the armed run, written by [`Series::arm`]
//!   under the lock after checking the state, and looked at by `cancel`
//!   under the same lock after its swap. So either `arm` sees `CANCELLED`
//!   and arms nothing, or `cancel` finds the armed handle and cancels it:
//!   no run is left armed behind a cancelled series. If the armed run was
//!   abandoned (its service shut down), the cancel stopped nothing and says
//!   so.
//! - A run's callback may panic. The run ends on every path, so a panic
//!   never leaves the series stuck in `RUNNING` (which would stop it for
//!   good); the panic is counted and handed back to the caller with the
//!   verdict, to be re-raised once the next run is armed.

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
/// The schedule ended on its own (final).
const ENDED: u8 = 3;

/// What [`Series::run`] did.
pub enum Run {
    /// The series was cancelled (or had ended) before this run could
    /// start: nothing ran.
    Cancelled,
    /// The callback ran; `rearm` says whether the series is still live (no
    /// cancel came during the run and `next` wants another run) and so
    /// wants its next run armed; `panic` is the callback's panic, if it
    /// panicked.
    Ran {
        /// No cancel came in and the schedule goes on: arm the next run.
        rearm: bool,
        /// The callback's panic payload.
        panic: Option<Box<dyn Any + Send + 'static>>,
    },
}

/// One periodic series: see the module docs. `H` is the handle of an armed
/// run (a timer handle in the service).
pub struct Series<H> {
    /// `IDLE`, `RUNNING`, `CANCELLED` or `ENDED`.
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
    /// (`None` if it could not be scheduled: the series then ends). Runs
    /// under the lock, and not at all once the series is cancelled.
    pub fn arm(&self, submit: impl FnOnce() -> Option<H>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // Acquire: pairs with `cancel`'s CAS. The lock orders this check
        // against `cancel`'s look at `current` (module docs).
        if self.state.load(Ordering::Acquire) != IDLE {
            return;
        }
        *cur = submit();
        if cur.is_none() {
            // Nothing will run again. AcqRel: as the run's CASes; fails
            // only if a cancel came first, which then stands.
            let _ = self
                .state
                .compare_exchange(IDLE, ENDED, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Runs `f` if the series is live: `IDLE -> RUNNING`, the callback
    /// (its panic caught), then `goes_on` (the schedule's verdict, asked
    /// while still `RUNNING`: `false` ends the series), then `RUNNING ->
    /// IDLE` (or `-> ENDED`) unless cancelled meanwhile.
    pub fn run(&self, f: impl FnOnce(), goes_on: impl FnOnce() -> bool) -> Run {
        // AcqRel: pairs with `cancel`'s CAS, so exactly one side wins.
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
        let more = goes_on();
        let after = if more { IDLE } else { ENDED };
        // RUNNING -> IDLE/ENDED on every path, panic included; fails only
        // if a cancel came during the run. AcqRel: as above.
        let live = self
            .state
            .compare_exchange(RUNNING, after, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        Run::Ran {
            rearm: live && more,
            panic,
        }
    }

    /// Cancels the series: `true` if this call stopped something (a run
    /// in progress finishes, none follows); `false` if it was already
    /// cancelled or had ended, or its armed run had been abandoned
    /// (`armed_was_live` said so). `armed_was_live` is given the armed
    /// run's handle, under the lock: it cancels it and answers whether
    /// that run would still have happened.
    pub fn cancel(&self, armed_was_live: impl FnOnce(&H) -> bool) -> bool {
        // Acquire: a value only used as the CAS's expected value, but an
        // ENDED seen here must order after the run that ended it.
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state == CANCELLED || state == ENDED {
                return false;
            }
            // AcqRel: pairs with the run's CASes and `arm`'s load.
            match self.state.compare_exchange_weak(
                state,
                CANCELLED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let armed_live = cur.as_ref().map_or(true, armed_was_live);
        // A run in progress is followed by none now: that was stopped even
        // when the armed one (the run itself) is gone.
        state == RUNNING || armed_live
    }

    /// Runs whose callback panicked so far.
    pub fn panics(&self) -> usize {
        // Relaxed: a statistic.
        self.panics.load(Ordering::Relaxed)
    }
}
