//! The thread-safe layer: [`TimerService`] runs a timing wheel on a driver thread and takes
//! timers from any thread, with exactly-once firing under every cancel race.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use tierwheel::service::TimerService;
//!
//! let service = TimerService::new();
//! let (tx, rx) = mpsc::channel();
//! let fired = tx.clone();
//! service.call_later(Duration::from_millis(1), move || fired.send("fired").unwrap())?;
//! let idle = service.call_later(Duration::from_secs(60), move || tx.send("idle").unwrap())?;
//!
//! assert!(idle.cancel()); // true: this call stopped the callback
//! assert!(!idle.cancel()); // and no later cancel ever wins again
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("fired"));
//! assert!(service.shutdown().is_empty());
//! # Ok::<(), tierwheel::service::ShutdownError>(())
//! ```
//!
//! Each timer's fate is one atomic state word: the driver firing it, any number of
//! [`Timeout::cancel`] calls, and shutdown all race by compare-and-swap out of
//! [`TimerStatus::Pending`], and exactly one of them wins. The same word holds a pending timer's
//! true deadline, so moving a timer later ([`Timeout::reset_at`], [`Sleep::reset`]) is one
//! compare-and-swap with no lock: the service's wheel keeps the timer where it was filed, and
//! the driver files it again when it gets there. Scheduling, cancelling and moving a timer
//! earlier are O(1) operations on the wheel, under its lock, on the caller's thread: no
//! command queue and no thread hop; the driver thread is woken only for a timer due before it
//! would wake anyway. A winning cancel drops the callback at once, on its own thread, and
//! frees the timer in the wheel. See docs/design.md, "The timer service".

mod core;
mod driver;
mod entry;
mod future;
mod global;
mod interval;
mod sync;

pub use future::{Sleep, TimeoutError, WithTimeout};
pub use global::global;
pub use interval::{Interval, MissedTickBehavior};

use self::core::{EntryRef, Shared};
use crate::clock::Resolution;
use driver::Driver;
use entry::Action;
use std::any::Any;
use std::fmt;
use std::io;
use std::thread::{current, JoinHandle};
use std::time::{Duration, Instant};
use sync::Arc;

/// Where a timer is in its life, as [`Timeout::status`] reads it.
///
/// New states may be added, so a `match` on it needs a wildcard arm.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{TimerService, TimerStatus};
///
/// let mut driver = TimerService::builder().build_manual();
/// let fires = driver.handle().call_later(Duration::from_millis(1), || {}).unwrap();
/// let cancelled = driver.handle().call_later(Duration::from_millis(1), || {}).unwrap();
/// let unfired = driver.handle().call_later(Duration::from_secs(1), || {}).unwrap();
/// assert_eq!(fires.status(), TimerStatus::Pending);
/// assert!(cancelled.cancel());
/// driver.run_until(Duration::from_millis(1));
/// drop(driver.shutdown());
/// assert_eq!(fires.status(), TimerStatus::Expired);
/// assert_eq!(cancelled.status(), TimerStatus::Cancelled);
/// assert_eq!(unfired.status(), TimerStatus::Unfired);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerStatus {
    /// Nothing has decided the timer's fate yet.
    Pending,
    /// The callback has started (the driver, or whoever ran it after shutdown, won), or the
    /// sleep has completed.
    Expired,
    /// A `cancel` won: the callback will never run.
    Cancelled,
    /// Shutdown claimed the timer and handed it back to the caller of `shutdown`.
    Unfired,
}

/// The callback panic hook as the driver holds it.
type PanicHook = Box<dyn FnMut(CallbackPanic) + Send + 'static>;

/// The service has shut down: it takes no new timers.
///
/// Returned by every scheduling method once [`TimerService::shutdown`] has begun (or the
/// service was dropped), instead of a [`Timeout`] that would never fire.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{ShutdownError, TimerService};
///
/// let service = TimerService::new();
/// let handle = service.handle();
/// service.shutdown();
/// assert_eq!(handle.call_later(Duration::ZERO, || {}).unwrap_err(), ShutdownError);
/// assert_eq!(ShutdownError.to_string(), "tierwheel: the timer service has shut down");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShutdownError;

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tierwheel: the timer service has shut down")
    }
}

impl std::error::Error for ShutdownError {}

/// A callback panicked on the driver thread (or a callback's captures panicked while being
/// dropped). Handed to the panic hook set with [`Builder::panic_hook`]; the service carries on.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let (tx, rx) = mpsc::channel();
/// let service = TimerService::builder()
///     .panic_hook(move |panic| tx.send(panic.message().map(String::from)).unwrap())
///     .build()?;
/// service.call_later(Duration::ZERO, || panic!("boom")).unwrap();
/// let message = rx.recv_timeout(Duration::from_secs(10)).unwrap();
/// assert_eq!(message.as_deref(), Some("boom"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct CallbackPanic {
    payload: Box<dyn Any + Send + 'static>,
    deadline: Duration,
}

impl CallbackPanic {
    /// The panic message, when the payload is a string (as with `panic!("...")`).
    ///
    /// ```
    /// # use std::{sync::mpsc, time::Duration};
    /// # let (tx, rx) = mpsc::channel();
    /// let service = tierwheel::service::TimerService::builder()
    ///     .panic_hook(move |panic| tx.send(panic.message().unwrap().to_owned()).unwrap())
    ///     .build()?;
    /// service.call_later(Duration::ZERO, || panic!("timer {}", 7)).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "timer 7");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn message(&self) -> Option<&str> {
        if let Some(message) = self.payload.downcast_ref::<&'static str>() {
            Some(message)
        } else {
            self.payload.downcast_ref::<String>().map(String::as_str)
        }
    }

    /// The deadline the panicking timer was given, on the service's time line.
    ///
    /// ```
    /// # use std::{sync::mpsc, time::Duration};
    /// # let (tx, rx) = mpsc::channel();
    /// let service = tierwheel::service::TimerService::builder()
    ///     .panic_hook(move |panic| tx.send(panic.deadline()).unwrap())
    ///     .build()?;
    /// let timeout = service.call_at(Duration::from_micros(5), || panic!()).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), timeout.deadline());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The panic payload, e.g. to resume the panic elsewhere with
    /// [`std::panic::resume_unwind`].
    ///
    /// ```
    /// # use std::{sync::mpsc, time::Duration};
    /// # let (tx, rx) = mpsc::channel();
    /// let service = tierwheel::service::TimerService::builder()
    ///     .panic_hook(move |panic| tx.send(panic.into_payload()).unwrap())
    ///     .build()?;
    /// service.call_later(Duration::ZERO, || std::panic::panic_any(42_u32)).unwrap();
    /// let payload = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }
}

impl fmt::Debug for CallbackPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackPanic")
            .field("message", &self.message())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The default panic hook: one line on stderr.
fn print_panic(panic: CallbackPanic) {
    eprintln!(
        "tierwheel: timer callback (deadline {:?}) panicked: {}",
        panic.deadline,
        panic.message().unwrap_or("<non-string payload>")
    );
}

/// A timer handed back by [`TimerService::shutdown`]: it never ran and no cancel won.
///
/// Its [`Timeout`]s now report [`TimerStatus::Unfired`]; their `cancel` returns `false`. The
/// owner decides: [`run`](Self::run) it now, or drop it (the callback is dropped unrun).
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let service = TimerService::new();
/// let timeout = service.call_later(Duration::from_secs(3600), || println!("late")).unwrap();
/// let unfired = service.shutdown();
/// assert_eq!(unfired.len(), 1);
/// assert!(!timeout.cancel());
/// for timer in unfired {
///     assert_eq!(timer.deadline(), timeout.deadline());
///     timer.run();
/// }
/// assert!(timeout.is_expired());
/// ```
pub struct UnfiredTimer {
    entry: EntryRef,
}

impl UnfiredTimer {
    /// The deadline the timer was given, on the service's time line.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// service.call_at(Duration::from_secs(90), || {}).unwrap();
    /// assert_eq!(service.shutdown()[0].deadline(), Duration::from_secs(90));
    /// ```
    pub fn deadline(&self) -> Duration {
        self.entry.asked()
    }

    /// Runs the callback on this thread, now. Its `Timeout`s then report expired.
    ///
    /// # Panics
    ///
    /// If the callback panics: the panic reaches the caller, and the timer still counts as
    /// expired.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// service.call_later(Duration::from_secs(90), move || tx.send(()).unwrap()).unwrap();
    /// service.shutdown().into_iter().for_each(|timer| timer.run());
    /// assert!(rx.try_recv().is_ok());
    /// ```
    pub fn run(self) {
        let finished = self.entry.finish_unfired();
        debug_assert!(finished, "an unfired timer left UNFIRED without being run");
        if let Action::Call(callback) = self.entry.take_action() {
            callback();
        }
    }
}

impl Drop for UnfiredTimer {
    /// Drops the callback unrun, unless [`run`](Self::run) ran it.
    fn drop(&mut self) {
        drop(self.entry.take_action());
    }
}

impl fmt::Debug for UnfiredTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnfiredTimer")
            .field("deadline", &self.entry.asked())
            .finish_non_exhaustive()
    }
}

/// One scheduled callback: cancel it, or ask what became of it. Cheap to clone; every clone
/// names the same timer, and any of them may cancel it from any thread.
///
/// Dropping a `Timeout` does not cancel the timer.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let service = TimerService::new();
/// let timeout = service.call_later(Duration::from_secs(5), || {}).unwrap();
/// let other = timeout.clone();
/// let racer = std::thread::spawn(move || other.cancel());
/// let mine = timeout.cancel();
/// assert!(mine ^ racer.join().unwrap()); // exactly one cancel won
/// assert!(timeout.is_cancelled() && !timeout.is_expired());
/// ```
#[derive(Clone)]
pub struct Timeout {
    entry: EntryRef,
    shared: Arc<Shared>,
}

impl Timeout {
    /// Stops the callback. True iff this call stopped it: for each timer, either its callback
    /// runs once or exactly one `cancel` call returns true, whatever the race (other cancels,
    /// resets, the driver firing it, shutdown, a cancel from inside another callback). The
    /// callback is dropped at once, on this thread, and the timer freed in the service's wheel.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_later(Duration::from_secs(5), || {}).unwrap();
    /// assert!(timeout.cancel());
    /// assert!(!timeout.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        self.shared.cancel(&self.entry)
    }

    /// Moves the timer's deadline to `deadline` on the service's time line (see
    /// [`Handle::time`]). True iff the timer was pending and now is due then; false (and
    /// nothing changes) once it fired, was cancelled or was handed back by shutdown. A later
    /// deadline is one compare-and-swap with no lock; an earlier one moves the timer in the
    /// service's wheel. Exactly once holds under every race with firing, cancels, shutdown and
    /// other resets: a reset never revives a timer whose fate is decided.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// let timeout = driver.handle().call_at(Duration::from_millis(10), || {}).unwrap();
    /// assert!(timeout.reset_at(Duration::from_millis(30)));
    /// assert_eq!(driver.run_until(Duration::from_millis(20)), 0);
    /// assert_eq!(driver.run_until(Duration::from_millis(30)), 1);
    /// assert!(!timeout.reset_at(Duration::from_millis(50)));
    /// ```
    pub fn reset_at(&self, deadline: Duration) -> bool {
        let moved = self.shared.reset(&self.entry, deadline);
        if moved {
            self.entry.set_asked(deadline);
        }
        moved
    }

    /// [`reset_at`](Self::reset_at) `delay` from now.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let idle = service.call_later(Duration::from_secs(30), || {}).unwrap();
    /// // Traffic: push the idle timeout back.
    /// assert!(idle.reset_after(Duration::from_secs(30)));
    /// assert!(idle.cancel());
    /// assert!(!idle.reset_after(Duration::from_secs(30)));
    /// ```
    pub fn reset_after(&self, delay: Duration) -> bool {
        self.reset_at(self.shared.time().saturating_add(delay))
    }

    /// Whether a `cancel` stopped the callback.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_later(Duration::from_secs(5), || {}).unwrap();
    /// assert!(!timeout.is_cancelled());
    /// timeout.clone().cancel();
    /// assert!(timeout.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.status() == TimerStatus::Cancelled
    }

    /// Whether the callback has started (on the driver, or through [`UnfiredTimer::run`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let timeout = service.call_later(Duration::ZERO, move || tx.send(()).unwrap()).unwrap();
    /// rx.recv_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(timeout.is_expired());
    /// ```
    pub fn is_expired(&self) -> bool {
        self.status() == TimerStatus::Expired
    }

    /// Where the timer is in its life, read once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tierwheel::service::TimerStatus;
    ///
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_later(Duration::from_secs(5), || {}).unwrap();
    /// assert_eq!(timeout.status(), TimerStatus::Pending);
    /// drop(service); // dropping the service drops unfired timers unrun
    /// assert_eq!(timeout.status(), TimerStatus::Unfired);
    /// ```
    pub fn status(&self) -> TimerStatus {
        self.entry.status()
    }

    /// The deadline asked for (by the schedule or the last reset), on the service's time line
    /// (see [`Handle::time`]). The callback runs at the first tick boundary at or after it,
    /// never before.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_at(Duration::from_secs(5), || {}).unwrap();
    /// assert_eq!(timeout.deadline(), Duration::from_secs(5));
    /// ```
    pub fn deadline(&self) -> Duration {
        self.entry.asked()
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.entry.asked())
            .field("status", &self.status())
            .finish()
    }
}

/// A tick as the builder takes it: zero is taken as 1 ns, and a tick beyond `u64::MAX`
/// nanoseconds (584 years) as `u64::MAX` nanoseconds.
fn resolution(tick: Duration) -> Resolution {
    let nanos = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
    Resolution::from_nanos(nanos).unwrap_or(Resolution::NANOSECOND)
}

/// A cheap, cloneable way to schedule on a [`TimerService`] (or a [`ManualDriver`]) from
/// anywhere. A handle does not keep the driver running: once the service shuts down, every
/// scheduling method returns [`ShutdownError`].
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let service = TimerService::new();
/// let handle = service.handle();
/// let worker = std::thread::spawn(move || {
///     handle.call_later(Duration::from_secs(30), || {}).unwrap().cancel()
/// });
/// assert!(worker.join().unwrap());
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Runs `callback` on the driver thread once `delay` has elapsed (measured from now, rounded
    /// up to a tick boundary: never early). A delay past the end of the time line saturates.
    ///
    /// # Errors
    ///
    /// [`ShutdownError`] once the service has begun shutting down (or was dropped); the
    /// callback is dropped unrun.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// let timeout = handle.call_later(Duration::MAX, || {}).unwrap();
    /// assert_eq!(timeout.deadline(), Duration::MAX);
    /// ```
    pub fn call_later<F>(&self, delay: Duration, callback: F) -> Result<Timeout, ShutdownError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.call_at(self.time().saturating_add(delay), callback)
    }

    /// Runs `callback` on the driver thread once the service's time line reaches `deadline`
    /// (see [`time`](Self::time)). A deadline in the past runs at the next pass.
    ///
    /// # Errors
    ///
    /// [`ShutdownError`] once the service has begun shutting down (or was dropped); the
    /// callback is dropped unrun.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// handle.call_at(Duration::ZERO, move || tx.send(()).unwrap()).unwrap();
    /// assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok());
    /// ```
    pub fn call_at<F>(&self, deadline: Duration, callback: F) -> Result<Timeout, ShutdownError>
    where
        F: FnOnce() + Send + 'static,
    {
        let entry = self
            .shared
            .schedule(deadline, Action::Call(Box::new(callback)))?;
        Ok(Timeout {
            entry,
            shared: Arc::clone(&self.shared),
        })
    }

    /// A future that completes once `duration` has elapsed from now. See [`Sleep`]: its timer
    /// is registered when it is first polled.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// assert_eq!(block_on(handle.sleep(Duration::from_millis(2))), Ok(()));
    /// ```
    #[must_use = "futures do nothing unless polled; dropping a `Sleep` cancels its timer"]
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep::new(
            Arc::clone(&self.shared),
            self.shared.instant_after(duration),
        )
    }

    /// A future that completes at `deadline` (tokio's `sleep_until`). See [`Sleep`].
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// let service = tierwheel::service::TimerService::new();
    /// let at = Instant::now() + Duration::from_millis(2);
    /// assert_eq!(block_on(service.handle().sleep_until(at)), Ok(()));
    /// assert!(Instant::now() >= at);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::new(Arc::clone(&self.shared), deadline)
    }

    /// Runs `future` with a time limit: it resolves to the future's output, or to
    /// [`TimeoutError::Elapsed`] once `duration` has elapsed first. See [`WithTimeout`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// use tierwheel::service::TimeoutError;
    ///
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// let never = std::future::pending::<()>();
    /// let result = block_on(handle.timeout(Duration::from_millis(1), never));
    /// assert_eq!(result, Err(TimeoutError::Elapsed));
    /// assert_eq!(block_on(handle.timeout(Duration::from_secs(60), async { 7 })), Ok(7));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub fn timeout<F: std::future::Future>(&self, duration: Duration, future: F) -> WithTimeout<F> {
        WithTimeout::new(future, self.sleep(duration))
    }

    /// Runs `future` with a time limit at `deadline` (tokio's `timeout_at`). See
    /// [`WithTimeout`].
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// use tierwheel::service::TimeoutError;
    /// let service = tierwheel::service::TimerService::new();
    /// let soon = Instant::now() + Duration::from_millis(1);
    /// let result = block_on(service.handle().timeout_at(soon, std::future::pending::<()>()));
    /// assert_eq!(result, Err(TimeoutError::Elapsed));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub fn timeout_at<F: std::future::Future>(
        &self,
        deadline: Instant,
        future: F,
    ) -> WithTimeout<F> {
        WithTimeout::new(future, self.sleep_until(deadline))
    }

    /// Ticks every `period`, the first tick at once (tokio's `interval`). A zero period is
    /// taken as one tick of the service. See [`Interval`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let ticks = service.handle().interval(Duration::from_secs(1));
    /// assert_eq!(ticks.period(), Duration::from_secs(1));
    /// ```
    #[must_use = "an interval does nothing unless ticked"]
    pub fn interval(&self, period: Duration) -> Interval {
        self.interval_at(self.shared.now_instant(), period)
    }

    /// Ticks every `period`, the first tick at `start` (tokio's `interval_at`). A zero period
    /// is taken as one tick of the service.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let start = Instant::now() + Duration::from_secs(5);
    /// let mut ticks = service.handle().interval_at(start, Duration::from_secs(1));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(ticks.poll_tick(&mut cx).is_pending());
    /// ```
    #[must_use = "an interval does nothing unless ticked"]
    pub fn interval_at(&self, start: Instant, period: Duration) -> Interval {
        let period = period.max(self.shared.resolution().tick());
        Interval::new(self.sleep_until(start), period)
    }

    /// The instant a point of the service's time line falls on: the time line starts at the
    /// instant the service started (for a [`ManualDriver`], the instant it was built) and
    /// runs with the monotonic clock. Points too far in the future for the platform's
    /// `Instant` saturate at the farthest instant it can hold.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// let at = handle.instant_of(Duration::from_secs(10));
    /// assert_eq!(handle.time_of(at), Duration::from_secs(10));
    /// ```
    pub fn instant_of(&self, time: Duration) -> std::time::Instant {
        self.shared.instant_of(time)
    }

    /// The point of the service's time line an instant falls on (zero for instants before
    /// the service started). Inverse of [`instant_of`](Self::instant_of).
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// let now = handle.time_of(std::time::Instant::now());
    /// assert!(now >= handle.time() || handle.time() - now < std::time::Duration::from_secs(1));
    /// ```
    pub fn time_of(&self, instant: Instant) -> Duration {
        self.shared.time_of(instant)
    }

    /// Timers pending: scheduled or registered, not yet fired, cancelled or dropped (Netty's
    /// `pendingTimeouts`). A sleep counts once polled.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// let timeout = handle.call_later(Duration::from_secs(60), || {}).unwrap();
    /// assert_eq!(handle.pending(), 1);
    /// timeout.cancel();
    /// assert_eq!(handle.pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// The service's time line: time elapsed since the service started (for a
    /// [`ManualDriver`], the time it was last run to). Deadlines are points on it.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// let before = service.handle().time();
    /// assert!(service.handle().time() >= before);
    /// ```
    pub fn time(&self) -> Duration {
        self.shared.time()
    }

    /// Whether the service has shut down (every scheduling method now fails).
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// assert!(!handle.is_shut_down());
    /// drop(service);
    /// assert!(handle.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("tick", &self.shared.resolution().tick())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// Configures a [`TimerService`] (or a [`ManualDriver`]).
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let service = TimerService::builder()
///     .tick(Duration::from_micros(100))
///     .thread_name("my-timers")
///     .panic_hook(|panic| eprintln!("timer failed: {panic:?}"))
///     .build()?;
/// assert_eq!(service.tick(), Duration::from_micros(100));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Builder {
    resolution: Resolution,
    thread_name: String,
    hook: PanicHook,
}

impl Builder {
    /// The tick resolution: deadlines round up to a multiple of it. Default 1 ms. A zero tick is
    /// taken as 1 ns.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = tierwheel::service::TimerService::builder().tick(Duration::from_micros(1));
    /// assert_eq!(builder.build()?.tick(), Duration::from_micros(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "a builder setter returns the configured builder"]
    pub fn tick(mut self, tick: Duration) -> Self {
        self.resolution = resolution(tick);
        self
    }

    /// The driver thread's name. Default `"tierwheel-timer"`.
    ///
    /// ```
    /// let builder = tierwheel::service::TimerService::builder().thread_name("timeouts");
    /// # builder.build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "a builder setter returns the configured builder"]
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Called on the driver thread with every [`CallbackPanic`]. Default: one line on stderr.
    /// The panic has already been caught; the service carries on. A hook that itself panics
    /// is ignored. (Rust's global panic hook still prints its usual message when the callback
    /// panics; silence that with [`std::panic::set_hook`] if needed.)
    ///
    /// ```
    /// let builder = tierwheel::service::TimerService::builder().panic_hook(|_| {});
    /// # builder.build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "a builder setter returns the configured builder"]
    pub fn panic_hook<F>(mut self, hook: F) -> Self
    where
        F: FnMut(CallbackPanic) + Send + 'static,
    {
        self.hook = Box::new(hook);
        self
    }

    /// Starts the service: spawns its driver thread.
    ///
    /// # Errors
    ///
    /// The error of [`std::thread::Builder::spawn`] if the driver thread cannot be spawned.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::builder().build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<TimerService> {
        let parker = crossbeam_utils::sync::Parker::new();
        let shared = Arc::new(Shared::real(self.resolution, parker.unparker().clone()));
        let driver_shared = Arc::clone(&shared);
        let hook = self.hook;
        let driver = std::thread::Builder::new()
            .name(self.thread_name)
            .spawn(move || driver::run(driver_shared, hook, parker))?;
        Ok(TimerService {
            handle: Handle { shared },
            driver: Some(driver),
        })
    }

    /// A [`ManualDriver`] with this configuration (the thread name is unused).
    ///
    /// ```
    /// let driver = tierwheel::service::TimerService::builder().build_manual();
    /// # drop(driver);
    /// ```
    pub fn build_manual(self) -> ManualDriver {
        let shared = Arc::new(Shared::manual(self.resolution));
        ManualDriver {
            driver: Driver::new(Arc::clone(&shared), self.hook),
            handle: Handle { shared },
        }
    }
}

impl Default for Builder {
    /// 1 ms ticks, thread `"tierwheel-timer"`, panics printed to stderr.
    ///
    /// ```
    /// let service = tierwheel::service::Builder::default().build()?;
    /// assert_eq!(service.tick(), std::time::Duration::from_millis(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn default() -> Self {
        Builder {
            resolution: Resolution::MILLISECOND,
            thread_name: String::from("tierwheel-timer"),
            hook: Box::new(print_panic),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("tick", &self.resolution.tick())
            .field("thread_name", &self.thread_name)
            .finish_non_exhaustive()
    }
}

/// A timer service: a timing wheel on its own driver thread, scheduled from any thread.
///
/// `TimerService` is `Send + Sync`; share it by reference, in an `Arc`, or hand out
/// [`Handle`]s. Dropping it shuts it down and joins the driver thread, dropping unfired timers
/// unrun; [`shutdown`](Self::shutdown) hands them back instead.
///
/// ```
/// use std::sync::{mpsc, Arc};
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let service = Arc::new(TimerService::new());
/// let (tx, rx) = mpsc::channel();
/// let workers: Vec<_> = (0..4)
///     .map(|i| {
///         let (service, tx) = (Arc::clone(&service), tx.clone());
///         std::thread::spawn(move || {
///             service.call_later(Duration::from_millis(i), move || tx.send(i).unwrap())
///         })
///     })
///     .collect();
/// for worker in workers {
///     worker.join().unwrap().unwrap();
/// }
/// let mut fired: Vec<u64> = (0..4).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
/// fired.sort();
/// assert_eq!(fired, [0, 1, 2, 3]);
/// ```
pub struct TimerService {
    handle: Handle,
    driver: Option<JoinHandle<Vec<UnfiredTimer>>>,
}

impl TimerService {
    /// A service with the default configuration (1 ms ticks).
    ///
    /// # Panics
    /// If the driver thread cannot be spawned, as [`std::thread::spawn`] does; use
    /// [`Builder::build`] to get the error instead.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// # drop(service);
    /// ```
    pub fn new() -> Self {
        Builder::default()
            .build()
            .expect("tierwheel: failed to spawn the timer driver thread")
    }

    /// A [`Builder`] with the defaults.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::builder().build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A handle for scheduling from elsewhere.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// let handle = service.handle();
    /// # drop(handle);
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The tick resolution.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// assert_eq!(service.tick(), std::time::Duration::from_millis(1));
    /// ```
    pub fn tick(&self) -> Duration {
        self.handle.shared.resolution().tick()
    }

    /// [`Handle::call_later`] on this service.
    ///
    /// # Errors
    ///
    /// [`ShutdownError`] once shutdown has begun, as for [`Handle::call_later`]. Shutting down
    /// takes the service by value, so this returns `Ok` while the service exists; the error
    /// is for the [`Handle`]s that outlive it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_later(Duration::from_secs(1), || {}).unwrap();
    /// assert!(timeout.cancel());
    /// ```
    pub fn call_later<F>(&self, delay: Duration, callback: F) -> Result<Timeout, ShutdownError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.handle.call_later(delay, callback)
    }

    /// [`Handle::call_at`] on this service.
    ///
    /// # Errors
    ///
    /// As [`call_later`](Self::call_later).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_at(service.time() + Duration::from_secs(1), || {}).unwrap();
    /// assert!(timeout.cancel());
    /// ```
    pub fn call_at<F>(&self, deadline: Duration, callback: F) -> Result<Timeout, ShutdownError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.handle.call_at(deadline, callback)
    }

    /// [`Handle::sleep`] on this service.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let sleep = service.sleep(Duration::from_secs(1));
    /// drop(sleep); // cancels its timer
    /// ```
    #[must_use = "futures do nothing unless polled; dropping a `Sleep` cancels its timer"]
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.handle.sleep(duration)
    }

    /// [`Handle::timeout`] on this service.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let limited = service.timeout(Duration::from_secs(1), async { 1 });
    /// # drop(limited);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub fn timeout<F: std::future::Future>(&self, duration: Duration, future: F) -> WithTimeout<F> {
        self.handle.timeout(duration, future)
    }

    /// [`Handle::sleep_until`] on this service.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let sleep = service.sleep_until(Instant::now() + Duration::from_secs(1));
    /// # drop(sleep);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.handle.sleep_until(deadline)
    }

    /// [`Handle::timeout_at`] on this service.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let limited = service.timeout_at(Instant::now() + Duration::from_secs(1), async { 1 });
    /// # drop(limited);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub fn timeout_at<F: std::future::Future>(
        &self,
        deadline: Instant,
        future: F,
    ) -> WithTimeout<F> {
        self.handle.timeout_at(deadline, future)
    }

    /// [`Handle::interval`] on this service.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let ticks = service.interval(Duration::from_secs(1));
    /// # drop(ticks);
    /// ```
    #[must_use = "an interval does nothing unless ticked"]
    pub fn interval(&self, period: Duration) -> Interval {
        self.handle.interval(period)
    }

    /// [`Handle::pending`] on this service: timers pending (Netty's `pendingTimeouts`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// service.call_later(Duration::from_secs(60), || {}).unwrap();
    /// assert_eq!(service.pending(), 1);
    /// ```
    pub fn pending(&self) -> usize {
        self.handle.pending()
    }

    /// [`Handle::time`] on this service.
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::new();
    /// assert!(service.time() < std::time::Duration::from_secs(3600));
    /// ```
    pub fn time(&self) -> Duration {
        self.handle.time()
    }

    /// Stops the driver and returns the timers that never ran and that no cancel won, in the
    /// order they would have fired; each is claimed ([`TimerStatus::Unfired`]), so no cancel
    /// can win it any more. A callback running on the driver when shutdown begins finishes
    /// first. From the moment this is called, scheduling returns [`ShutdownError`]. Called on
    /// the driver thread itself (from a callback that owns the service), it cannot wait for
    /// the driver: it returns an empty list and the driver drops the unfired timers when the
    /// callback returns.
    ///
    /// # Panics
    ///
    /// Only if the driver thread itself panicked, which would be a bug in tierwheel: the driver
    /// catches every panic of a callback and of the panic hook. That panic is resumed here.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// service.call_later(Duration::from_secs(20), || {}).unwrap();
    /// service.call_later(Duration::from_secs(10), || {}).unwrap();
    /// let unfired = service.shutdown();
    /// assert!(unfired[0].deadline() < unfired[1].deadline());
    /// ```
    pub fn shutdown(mut self) -> Vec<UnfiredTimer> {
        self.stop()
    }

    fn stop(&mut self) -> Vec<UnfiredTimer> {
        self.handle.shared.close();
        let driver = self.driver.take();
        if let Some(driver) = driver
            .as_ref()
            .filter(|d| d.thread().id() == current().id())
        {
            // Shut down from one of its own callbacks (e.g. the last `Arc<TimerService>` was
            // dropped there): the driver cannot join itself. It stops after this callback and
            // drops the unfired timers itself.
            debug_assert_eq!(driver.thread().id(), current().id());
            return Vec::new();
        }
        match driver.map(JoinHandle::join) {
            Some(Ok(unfired)) => unfired,
            // The driver catches every user panic, so this is a bug in the driver itself.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Vec::new(),
        }
    }
}

impl Default for TimerService {
    /// [`TimerService::new`].
    ///
    /// ```
    /// let service = tierwheel::service::TimerService::default();
    /// # drop(service);
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TimerService {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Do not risk a double panic: stop the driver but drop the unfired timers there.
            self.handle.shared.close();
            if let Some(driver) = self.driver.take() {
                if driver.thread().id() != current().id() {
                    let _ = driver.join();
                }
            }
        } else {
            drop(self.stop());
        }
    }
}

impl fmt::Debug for TimerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerService")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// The service's engine without its thread, stepped by hand on a manual time line: for
/// deterministic tests and simulations of code that schedules through a [`Handle`], and for
/// the loom models and the `cancel_race` fuzz target. It runs the same code as the driver
/// thread.
///
/// A `ManualDriver` is `Send` but not `Sync`: it owns the panic hook, an `FnMut` that is
/// `Send` but not `Sync` (the hook is only ever called from one thread at a time, the driver's),
/// and every step takes `&mut self` anyway. Move it to the thread that steps it; other threads
/// schedule, reset and cancel through [`Handle`]s and [`Timeout`]s, which are `Send + Sync`.
///
/// ```
/// let driver = tierwheel::service::TimerService::builder().build_manual();
/// std::thread::spawn(move || drop(driver)).join().unwrap(); // `Send`
/// ```
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// shared(&tierwheel::service::TimerService::builder().build_manual()); // not `Sync`
/// ```
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
///
/// let mut driver = TimerService::builder().build_manual();
/// let handle = driver.handle();
/// let runs = Arc::new(AtomicUsize::new(0));
/// let r = Arc::clone(&runs);
/// handle.call_later(Duration::from_millis(5), move || { r.fetch_add(1, Ordering::SeqCst); }).unwrap();
/// assert_eq!(driver.run_until(Duration::from_millis(4)), 0);
/// assert_eq!(driver.run_until(Duration::from_millis(5)), 1);
/// assert_eq!(runs.load(Ordering::SeqCst), 1);
/// ```
pub struct ManualDriver {
    handle: Handle,
    driver: Driver,
}

impl ManualDriver {
    /// A handle scheduling on this driver.
    ///
    /// ```
    /// let driver = tierwheel::service::TimerService::builder().build_manual();
    /// let handle = driver.handle();
    /// # drop(handle);
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Moves the time line to `time` (never back) and fires every timer due: runs the due
    /// callbacks and wakes the due sleeps; returns how many. Timers scheduled by these
    /// callbacks wait for the next call.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// driver.handle().call_later(Duration::from_millis(1), || {}).unwrap();
    /// assert_eq!(driver.run_until(Duration::from_millis(1)), 1);
    /// assert_eq!(driver.handle().time(), Duration::from_millis(1));
    /// ```
    pub fn run_until(&mut self, time: Duration) -> usize {
        self.handle.shared.set_manual_time(time);
        self.driver.step().unwrap_or(0)
    }

    /// How many timers are pending: cancelled timers are gone at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// let timeout = driver.handle().call_later(Duration::from_secs(9), || {}).unwrap();
    /// assert_eq!(driver.pending(), 1);
    /// timeout.cancel();
    /// assert_eq!(driver.pending(), 0);
    /// ```
    pub fn pending(&mut self) -> usize {
        self.handle.shared.pending()
    }

    /// The start of the tick the next pending timer is filed at, if any: where the next
    /// [`run_until`](Self::run_until) has something to do (a timer moved later by a reset is
    /// still filed at its old tick until the driver reaches it there).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// driver.handle().call_at(Duration::from_micros(1500), || {}).unwrap();
    /// driver.pending();
    /// assert_eq!(driver.next_deadline(), Some(Duration::from_millis(2)));
    /// ```
    pub fn next_deadline(&self) -> Option<Duration> {
        let tick = self.handle.shared.next_tick()?;
        Some(driver::tick_start(&self.handle.shared, tick))
    }

    /// Shuts down like [`TimerService::shutdown`]: refuses new timers and hands back every
    /// timer still pending.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let driver = tierwheel::service::TimerService::builder().build_manual();
    /// let handle = driver.handle();
    /// handle.call_later(Duration::from_secs(9), || {}).unwrap();
    /// assert_eq!(driver.shutdown().len(), 1);
    /// assert!(handle.call_later(Duration::ZERO, || {}).is_err());
    /// ```
    pub fn shutdown(mut self) -> Vec<UnfiredTimer> {
        self.finish()
    }

    fn finish(&mut self) -> Vec<UnfiredTimer> {
        self.handle.shared.close();
        let closed = self.driver.step().is_none();
        debug_assert!(closed, "the service reopened");
        self.driver.unfired()
    }
}

impl Drop for ManualDriver {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            drop(self.finish());
        }
    }
}

impl fmt::Debug for ManualDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualDriver")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}
