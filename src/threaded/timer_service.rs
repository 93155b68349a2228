//! A timer service for threads (std only): a driver thread on the monotonic
//! clock runs a [`Wheel`] through the lock-free hand-off of
//! [`shared`](crate::wheel::shared); callbacks run on an [`Executor`], never
//! on the driver thread. Public as `latchfree::wheel::TimerService`.
//!
//! Names follow the crate's convention for timed inserts: the callback
//! first, then when; `_at` takes an `Instant`, no suffix a delay from now.
//!
//! - [`TimerService::schedule`], [`schedule_at`](TimerService::schedule_at):
//!   one-shot callbacks.
//! - [`schedule_every`](TimerService::schedule_every): a period with a
//!   [`MissedTick`] policy.
//! - [`schedule_series`](TimerService::schedule_series),
//!   [`schedule_series_at`](TimerService::schedule_series_at): the next run
//!   time comes from a function of the last one (the Go original's
//!   `ScheduleFunc`).
//! - Runs of one periodic timer never overlap: the next run is scheduled
//!   only when the previous one has finished. So a periodic callback and
//!   its schedule need only be `Send` (`FnMut`: they may keep state
//!   without atomics); neither is ever shared between threads.
//! - A panicking callback never stops its series: the run ends, the next
//!   one is scheduled as usual, [`Timer::panics`] counts it, and the panic
//!   is then re-raised on the executor (as a one-shot's is), which
//!   [`WorkerThread`] catches and drops.
//! - Durations and instants too far out to represent (`Duration::MAX`)
//!   saturate to "never" instead of panicking.
//! - [`sleep`](TimerService::sleep), [`sleep_at`](TimerService::sleep_at):
//!   a runtime-agnostic [`Sleep`] future, completed by a one-shot timer's
//!   callback through a [`Signal`](crate::threaded::signal::Signal); it
//!   needs no async runtime's timer, so it works on any executor.
//! - [`TimerService::shutdown`] stops accepting (later calls return
//!   [`ShutDown`]) and reports how many callbacks were pending and will not
//!   run.
//!
//! The driver thread sleeps with `park_timeout` until the next slot is due;
//! a submission wakes it with `unpark`, whose token makes a wake-up sent
//! before the driver parks count, so none is lost. Ticks are 2^20 ns
//! (about 1.05 ms): a callback is never started before its time and is
//! handed to the executor within about one tick after it (plus scheduling
//! latency).

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::mpsc;

use crate::arena::Growable;
use crate::sync::blocking::Mutex;
use crate::sync::thread::{park_timeout, JoinHandle, Thread};
use crate::sync::time::{now, Instant};
// The real `Arc` also under loom: the service's reference count orders
// nothing a model checks, and it needs `Weak` (loom has none).
use crate::sync::{AtomicBool, HandleArc as Arc, Ordering};
use crate::threaded::signal::Signal;
use crate::wheel::shared::{Driver, Entry, Submitter, TimerHandle, TimerState};
use crate::wheel::std_periodic::{Run, Series};
use crate::wheel::{Wheel, WheelConfig};

/// A unit of work the service hands to an executor.
///
/// ```
/// use latchfree::wheel::{Executor, Job};
///
/// struct Inline;
/// impl Executor for Inline {
///     fn execute(&self, job: Job) {
///         job() // runs callbacks on the driver thread: only for tiny ones
///     }
/// }
/// Inline.execute(Box::new(|| println!("ran")));
/// ```
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs callbacks off the driver thread. Implement it to plug in a pool.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use latchfree::wheel::{Executor, Job, TimerService};
///
/// /// Runs each callback on a fresh thread.
/// struct Spawner;
/// impl Executor for Spawner {
///     fn execute(&self, job: Job) {
///         std::thread::spawn(job);
///     }
/// }
/// let timers = TimerService::with_executor(Spawner);
/// let (tx, rx) = mpsc::channel();
/// timers.schedule(move || tx.send("done").unwrap(), Duration::from_millis(1)).unwrap();
/// assert_eq!(rx.recv().unwrap(), "done");
/// ```
pub trait Executor: Send + Sync + 'static {
    /// Runs `job` (now or soon, on some other thread).
    fn execute(&self, job: Job);
}

/// The default executor: one worker thread fed by a channel. Callbacks run
/// one at a time, in the order they fell due.
///
/// ```
/// use latchfree::wheel::{TimerService, WorkerThread};
///
/// // The same as `TimerService::new()`: callbacks run one at a time, in order.
/// let timers = TimerService::with_executor(WorkerThread::new());
/// assert_eq!(timers.shutdown(), 0);
/// ```
pub struct WorkerThread {
    tx: Mutex<mpsc::Sender<Job>>,
}

impl WorkerThread {
    /// Starts the worker thread; it exits when the executor is dropped.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        crate::sync::thread::Builder::new()
            .name("latchfree-timer-worker".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    // A panicking callback must not kill the worker.
                    let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(job));
                }
            })
            .expect("spawn timer worker thread");
        WorkerThread { tx: Mutex::new(tx) }
    }
}

impl Default for WorkerThread {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor for WorkerThread {
    fn execute(&self, job: Job) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        // The worker only stops when this sender is dropped.
        let _ = tx.send(job);
    }
}

/// What a periodic timer does when runs fall behind (a run took longer than
/// the period, or the machine stalled).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use latchfree::wheel::{MissedTick, TimerService};
///
/// let timers = TimerService::new();
/// let runs = Arc::new(AtomicU32::new(0));
/// let r = runs.clone();
/// // A slow run is followed by one run, not a burst of catch-up runs.
/// let heartbeat = timers
///     .schedule_every(
///         move || {
///             r.fetch_add(1, Ordering::Relaxed);
///         },
///         Duration::from_millis(2),
///         MissedTick::Skip,
///     )
///     .unwrap();
/// while runs.load(Ordering::Relaxed) < 3 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// assert!(heartbeat.cancel());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissedTick {
    /// Catch up: run back to back until on schedule (next = last planned
    /// time + period).
    Burst,
    /// Shift the schedule: next = end of the last run + period.
    Delay,
    /// Drop missed runs: next = the first planned time still in the future.
    Skip,
}

/// The service was shut down; carries back the callback.
///
/// ```
/// use std::time::Duration;
/// use latchfree::wheel::{ShutDown, TimerService};
///
/// let timers = TimerService::new();
/// timers.shutdown();
/// let Err(ShutDown(callback)) = timers.schedule(|| println!("flush"), Duration::from_secs(1)) else {
///     panic!("the service is shut down");
/// };
/// callback(); // handed back: run it yourself, or drop it
/// ```
pub struct ShutDown<F>(pub F);

impl<F> core::fmt::Debug for ShutDown<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ShutDown(..)")
    }
}

impl<F> core::fmt::Display for ShutDown<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the timer service is shut down")
    }
}

impl<F> core::error::Error for ShutDown<F> {}

struct Inner {
    sub: Submitter<Job>,
    epoch: Instant,
    driver: Thread,
    stop: AtomicBool,
}

impl Inner {
    const TICK_SHIFT: u8 = 20;

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn submit(&self, at: Instant, job: Job) -> Result<TimerHandle<Job>, Job> {
        if self.stop.load(Ordering::Acquire) {
            return Err(job);
        }
        let h = self.sub.insert_at(job, self.nanos(at)).map_err(|c| c.0)?;
        self.driver.unpark();
        Ok(h)
    }
}

/// `t + d`, or the latest instant this platform can represent after `t`
/// (any instant that far out is "never" to the service: its time in
/// nanoseconds saturates at `u64::MAX`, ~584 years).
fn saturating_add(t: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(later) = t.checked_add(d) {
            return later;
        }
        d /= 2;
    }
}

enum Kind {
    /// A one-shot: its hand-off handle settles cancel against firing.
    Once(TimerHandle<Job>),
    /// A periodic timer: its series settles cancel against a run.
    Periodic(Arc<Series<TimerHandle<Job>>>),
}

/// A handle to a scheduled callback (one-shot or periodic).
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use latchfree::wheel::TimerService;
///
/// let timers = TimerService::new();
/// let ran = Arc::new(AtomicBool::new(false));
/// let r = ran.clone();
/// let timeout = timers.schedule(move || r.store(true, Ordering::Relaxed), Duration::from_secs(60)).unwrap();
/// assert!(timeout.cancel()); // the reply came first
/// assert!(!timeout.cancel());
/// assert_eq!(timers.shutdown(), 0); // nothing left pending
/// assert!(!ran.load(Ordering::Relaxed));
/// ```
pub struct Timer {
    kind: Kind,
}

impl Timer {
    /// Cancels the callback: `true` if this call stopped something.
    /// One-shot: `true` if this prevented the run; `false` if the callback
    /// ran, is running or will run (it had already fired), was already
    /// cancelled, or was dropped by a shutdown. Periodic: `true` if this
    /// stopped the series (a run in progress finishes, none follows);
    /// `false` if it was already cancelled, or had ended (its schedule
    /// returned `None`, or the service shut down).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::{Duration, Instant};
    /// use latchfree::wheel::TimerService;
    ///
    /// let timers = TimerService::new();
    /// let (tx, rx) = mpsc::channel();
    /// let (ended_tx, ended) = mpsc::channel();
    /// // Two runs, then the schedule says "no more".
    /// let mut left = 2;
    /// let twice = timers
    ///     .schedule_series(
    ///         move || tx.send(()).unwrap(),
    ///         Duration::ZERO,
    ///         move |_, _| {
    ///             left -= 1;
    ///             if left == 0 {
    ///                 ended_tx.send(()).unwrap();
    ///             }
    ///             (left > 0).then(Instant::now)
    ///         },
    ///     )
    ///     .unwrap();
    /// rx.recv().unwrap();
    /// rx.recv().unwrap();
    /// ended.recv().unwrap(); // the schedule said "no more"
    /// std::thread::sleep(Duration::from_millis(20)); // let the service record it
    /// assert!(!twice.cancel()); // it had ended: nothing was stopped
    /// ```
    pub fn cancel(&self) -> bool {
        match &self.kind {
            Kind::Once(h) => h.cancel(),
            // Cancelling the armed run frees its wheel slot early. It would
            // still have run unless the shutdown dropped it.
            Kind::Periodic(series) => series.cancel(|h| {
                h.cancel();
                h.state() != TimerState::Rejected
            }),
        }
    }

    /// How many runs of this timer panicked (each was counted, the series
    /// went on, and the panic was re-raised on the executor). Always 0 for
    /// a one-shot, whose panic goes to the executor alone.
    pub fn panics(&self) -> usize {
        match &self.kind {
            Kind::Once(_) => 0,
            Kind::Periodic(series) => series.panics(),
        }
    }
}

impl core::fmt::Debug for Timer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Timer")
    }
}

/// A driver thread running timers; see the module docs.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::{Duration, Instant};
/// use latchfree::wheel::TimerService;
///
/// let timers = TimerService::new();
/// let (tx, rx) = mpsc::channel();
/// let start = Instant::now();
/// for ms in [30u64, 10, 20] {
///     let tx = tx.clone();
///     timers.schedule(move || tx.send(ms).unwrap(), Duration::from_millis(ms)).unwrap();
/// }
/// let order: Vec<u64> = (0..3).map(|_| rx.recv().unwrap()).collect();
/// assert_eq!(order, [10, 20, 30]);
/// assert!(start.elapsed() >= Duration::from_millis(30)); // never early
/// timers.shutdown();
/// ```
pub struct TimerService {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<usize>>>,
}

impl TimerService {
    /// A service whose callbacks run on one [`WorkerThread`].
    pub fn new() -> Self {
        Self::with_executor(WorkerThread::new())
    }

    /// A service whose callbacks run on `executor`.
    pub fn with_executor(executor: impl Executor) -> Self {
        let wheel: Wheel<Entry<Job>, Growable, 7> =
            Wheel::new(WheelConfig::new().levels(7).tick_shift(Inner::TICK_SHIFT));
        let (mut driver, sub) = Driver::new(wheel);
        let (tx, rx) = mpsc::channel::<Arc<Inner>>();
        let thread = crate::sync::thread::Builder::new()
            .name("latchfree-timer-driver".into())
            .spawn(move || {
                let inner: Arc<Inner> = rx.recv().expect("service handshake");
                loop {
                    // Acquire: pairs with the Release store in `shutdown`.
                    if inner.stop.load(Ordering::Acquire) {
                        break;
                    }
                    let now = inner.nanos(now());
                    while let Some(f) = driver.poll_expired(now) {
                        executor.execute(f.value);
                    }
                    match driver.next_deadline() {
                        Some(d) => park_timeout(Duration::from_nanos(d.saturating_sub(now).max(1))),
                        None => park_timeout(Duration::from_secs(3600)),
                    }
                }
                drop(inner);
                // Pending timers will never run: settle each one so a later
                // `cancel` says it stopped nothing.
                let mut core = driver.shutdown();
                let mut abandoned = 0;
                while let Some(e) = core.poll_expired(u64::MAX) {
                    let (state, job) = e.value;
                    abandoned += usize::from(state.abandon());
                    drop(job);
                }
                abandoned
            })
            .expect("spawn timer driver thread");
        let inner = Arc::new(Inner {
            sub,
            epoch: now(),
            driver: thread.thread().clone(),
            stop: AtomicBool::new(false),
        });
        tx.send(Arc::clone(&inner)).expect("service handshake");
        TimerService {
            inner,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Runs `f` once after `delay`.
    pub fn schedule<F: FnOnce() + Send + 'static>(
        &self,
        f: F,
        delay: Duration,
    ) -> Result<Timer, ShutDown<F>> {
        self.schedule_at(f, saturating_add(now(), delay))
    }

    /// Runs `f` once at `when` (at once if `when` has passed).
    pub fn schedule_at<F: FnOnce() + Send + 'static>(
        &self,
        f: F,
        when: Instant,
    ) -> Result<Timer, ShutDown<F>> {
        if self.inner.stop.load(Ordering::Acquire) {
            return Err(ShutDown(f));
        }
        // The closure sits in a shared slot so a refused submission can
        // hand it back.
        let slot = Arc::new(Mutex::new(Some(f)));
        let s2 = Arc::clone(&slot);
        let job: Job = Box::new(move || {
            let f = s2.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(f) = f {
                f();
            }
        });
        match self.inner.submit(when, job) {
            Ok(h) => Ok(Timer {
                kind: Kind::Once(h),
            }),
            Err(job) => {
                drop(job);
                let f = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                match f {
                    Some(f) => Err(ShutDown(f)),
                    None => unreachable!("a refused job never ran"),
                }
            }
        }
    }

    /// Runs `f` every `period` (first run one period from now), handling
    /// late runs per `policy`. Runs never overlap, so `f` may be `FnMut`
    /// and need not be `Sync`.
    pub fn schedule_every<F: FnMut() + Send + 'static>(
        &self,
        f: F,
        period: Duration,
        policy: MissedTick,
    ) -> Result<Timer, ShutDown<F>> {
        let period = period.max(Duration::from_nanos(1));
        self.schedule_series_at(
            f,
            saturating_add(now(), period),
            move |planned, finished| match policy {
                MissedTick::Burst => Some(saturating_add(planned, period)),
                MissedTick::Delay => Some(saturating_add(finished, period)),
                MissedTick::Skip => {
                    let mut next = saturating_add(planned, period);
                    if next <= finished {
                        let behind =
                            finished.duration_since(next).as_nanos() / period.as_nanos() + 1;
                        let skip = u32::try_from(behind)
                            .ok()
                            .and_then(|n| period.checked_mul(n))
                            .unwrap_or(Duration::MAX);
                        next = saturating_add(next, skip);
                    }
                    Some(next)
                }
            },
        )
    }

    /// Runs `f` after `first_delay`, then as
    /// [`schedule_series_at`](Self::schedule_series_at) does.
    pub fn schedule_series<F, N>(
        &self,
        f: F,
        first_delay: Duration,
        next: N,
    ) -> Result<Timer, ShutDown<F>>
    where
        F: FnMut() + Send + 'static,
        N: FnMut(Instant, Instant) -> Option<Instant> + Send + 'static,
    {
        self.schedule_series_at(f, saturating_add(now(), first_delay), next)
    }

    /// Runs `f` at `first`, then at `next(planned, finished)` after each
    /// run (`planned`: when the run was due; `finished`: when it ended)
    /// until `next` returns `None` or the timer is cancelled. Runs never
    /// overlap: the next one is scheduled when the last has finished, so
    /// `f` and `next` are never called concurrently and need only be
    /// `Send` (`FnMut`: a schedule may count or back off in plain
    /// variables). A panicking run is followed by the next as usual (see
    /// the module docs); a panicking `next` ends the series as `None`
    /// would, and its panic is re-raised on the executor too.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::{Duration, Instant};
    /// use latchfree::wheel::TimerService;
    ///
    /// let timers = TimerService::new();
    /// let (tx, rx) = mpsc::channel();
    /// let mut run = 0u32; // plain state, no atomics: runs never overlap
    /// let mut backoff = Duration::from_millis(1);
    /// timers
    ///     .schedule_series_at(
    ///         move || {
    ///             run += 1;
    ///             tx.send(run).unwrap();
    ///         },
    ///         Instant::now(),
    ///         move |_planned, finished| {
    ///             backoff *= 2; // exponential backoff, up to 3 runs
    ///             (backoff <= Duration::from_millis(4)).then(|| finished + backoff)
    ///         },
    ///     )
    ///     .unwrap();
    /// let runs: Vec<u32> = rx.iter().take(3).collect();
    /// assert_eq!(runs, [1, 2, 3]);
    /// ```
    pub fn schedule_series_at<F, N>(
        &self,
        f: F,
        first: Instant,
        next: N,
    ) -> Result<Timer, ShutDown<F>>
    where
        F: FnMut() + Send + 'static,
        N: FnMut(Instant, Instant) -> Option<Instant> + Send + 'static,
    {
        if self.inner.stop.load(Ordering::Acquire) {
            return Err(ShutDown(f));
        }
        let series = Arc::new(Series::new());
        let run = Periodic {
            inner: Arc::downgrade(&self.inner),
            f,
            next,
            series: Arc::clone(&series),
        };
        run.arm(first);
        Ok(Timer {
            kind: Kind::Periodic(series),
        })
    }

    /// A future that completes `delay` from now, driven by this service
    /// (see [`sleep_at`](Self::sleep_at)).
    pub fn sleep(&self, delay: Duration) -> Sleep {
        self.sleep_at(saturating_add(now(), delay))
    }

    /// A future that completes at `deadline` (at once if it has passed),
    /// never earlier, and within about a tick after it, like any of this
    /// service's timers. It needs no async runtime's timer: the service's
    /// callback wakes the awaiting task, on any executor. It resolves to
    /// `Err(ShutDown(()))` if the service shuts down (or had) before the
    /// deadline; dropping it cancels its timer.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use latchfree::wheel::TimerService;
    ///
    /// let timers = TimerService::new();
    /// let start = Instant::now();
    /// pollster::block_on(timers.sleep(Duration::from_millis(5))).unwrap();
    /// assert!(start.elapsed() >= Duration::from_millis(5));
    /// ```
    pub fn sleep_at(&self, deadline: Instant) -> Sleep {
        let signal = Arc::new(Signal::new());
        let fire = Fire(Arc::clone(&signal));
        // Moving `fire` in: run, it sets `FIRED`; dropped unrun (cancelled,
        // or discarded by a shutdown), it sets `DROPPED`.
        let timer = match self.schedule_at(move || fire.fire(), deadline) {
            Ok(t) => Some(t),
            Err(ShutDown(f)) => {
                drop(f);
                None
            }
        };
        Sleep { signal, timer }
    }

    /// Stops the service: later calls fail with [`ShutDown`], the driver
    /// thread exits, and the number of callbacks that were pending (and
    /// will not run) is returned; 0 on a second call. Callbacks already
    /// handed to the executor still run.
    pub fn shutdown(&self) -> usize {
        // Release: pairs with the driver's Acquire load.
        self.inner.stop.store(true, Ordering::Release);
        self.inner.driver.unpark();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        thread.map_or(0, |t| t.join().unwrap_or(0))
    }
}

impl Default for TimerService {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TimerService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl core::fmt::Debug for TimerService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TimerService").finish_non_exhaustive()
    }
}

/// The future of [`TimerService::sleep`] and
/// [`sleep_at`](TimerService::sleep_at): `Ok(())` once the deadline has
/// passed, `Err(ShutDown(()))` if the service shut down first. Dropping it
/// cancels its timer.
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    signal: Arc<Signal>,
    /// `None` once completed, or if the service was already shut down.
    timer: Option<Timer>,
}

/// The signal values a [`Sleep`] completes with.
const FIRED: u8 = 1;
const DROPPED: u8 = 2;

/// Sets a sleep's signal when its callback runs (`FIRED`) or is dropped
/// unrun (`DROPPED`): so a sleep completes whatever becomes of its timer.
struct Fire(Arc<Signal>);

impl Fire {
    fn fire(self) {
        self.0.set(FIRED);
    }
}

impl Drop for Fire {
    fn drop(&mut self) {
        // A no-op after `fire`.
        self.0.set(DROPPED);
    }
}

impl Future for Sleep {
    type Output = Result<(), ShutDown<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.signal.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(v) => {
                this.timer = None;
                Poll::Ready(if v == FIRED { Ok(()) } else { Err(ShutDown(())) })
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
    }
}

impl core::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sleep")
            .field("signal", &self.signal)
            .finish_non_exhaustive()
    }
}

/// One periodic timer's callback and schedule. Owned by exactly one job
/// at a time (the armed run's), and moved into the next run's job when it
/// re-arms: `f` and `next` are never shared, so `Send` is all they need.
struct Periodic<F, N> {
    inner: alloc::sync::Weak<Inner>,
    f: F,
    next: N,
    series: Arc<Series<TimerHandle<Job>>>,
}

impl<F, N> Periodic<F, N>
where
    F: FnMut() + Send + 'static,
    N: FnMut(Instant, Instant) -> Option<Instant> + Send + 'static,
{
    fn arm(self, when: Instant) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let series = Arc::clone(&self.series);
        let mut me = self;
        let job: Job = Box::new(move || {
            let Periodic { f, next, series, .. } = &mut me;
            let mut after = None;
            let mut next_panic = None;
            let verdict = series.run(f, || {
                // `next` is user code too: if it panics the series ends.
                match std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
                    next(when, now())
                })) {
                    Ok(t) => after = t,
                    Err(p) => next_panic = Some(p),
                }
                after.is_some()
            });
            let Run::Ran { rearm, panic } = verdict else {
                return;
            };
            if let (true, Some(t)) = (rearm, after) {
                me.arm(t);
            }
            // Reported where one-shots report theirs: on the executor.
            if let Some(p) = panic.or(next_panic) {
                std::panic::resume_unwind(p);
            }
        });
        series.arm(|| inner.submit(when, job).ok());
    }
}
