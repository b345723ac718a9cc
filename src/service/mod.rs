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
//! Each timer's fate is one atomic [`TimerState`] word: the driver firing it, any number of
//! [`Timeout::cancel`] calls, and shutdown all race by compare-and-swap out of
//! [`TimerStatus::Pending`], and exactly one of them wins. A winning cancel drops the
//! callback at once, on its own thread, if the driver has not placed the timer yet (the
//! timer's queued insert is then dropped by the next push to its queue, or skipped by the
//! driver); otherwise the driver frees the timer in O(1) on its next pass, not at its
//! deadline (the driver is woken for a timer due before it would wake anyway, or once 1024
//! requests wait in one of the queues). Callers queue requests in one of a few queues chosen
//! by thread, so threads scheduling at once rarely share a lock. See docs/design.md, "The
//! timer service".

mod driver;
mod future;
mod global;
mod shared;
mod state;
mod sync;

pub use future::{Sleep, TimeoutError, WithTimeout};
pub use global::global;
pub use state::{TimerState, TimerStatus};

use crate::clock::Resolution;
use crossbeam_utils::CachePadded;
use driver::Core;
use shared::{Shard, Shared, TimerRef};
use std::any::Any;
use std::fmt;
use std::io;
use std::thread::{current, JoinHandle};
use std::time::Duration;
use sync::Arc;

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
    timer: TimerRef,
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
        self.timer.deadline
    }

    /// Runs the callback on this thread, now. Its `Timeout`s then report expired. A panic in
    /// the callback reaches the caller.
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
        let finished = self.timer.state.finish_unfired();
        debug_assert!(finished, "an unfired timer left UNFIRED without being run");
        self.timer.callback.run();
    }
}

impl Drop for UnfiredTimer {
    /// Drops the callback unrun, unless [`run`](Self::run) ran it.
    fn drop(&mut self) {
        self.timer.callback.discard();
    }
}

impl fmt::Debug for UnfiredTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnfiredTimer")
            .field("deadline", &self.timer.deadline)
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
    timer: TimerRef,
    /// The command shard the timer's insert went to.
    shard: Arc<CachePadded<Shard>>,
}

impl Timeout {
    /// Stops the callback. True iff this call stopped it: for each timer, either its callback
    /// runs once or exactly one `cancel` call returns true, whatever the race (other cancels,
    /// the driver firing it, shutdown, a cancel from inside another callback).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_later(Duration::from_secs(5), || {}).unwrap();
    /// assert!(timeout.cancel());
    /// assert!(!timeout.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        match self.timer.state.cancel_placed() {
            None => false,
            // In the driver's scheduler: only the driver can take it out.
            Some(true) => {
                self.shard.cancelled(&self.timer);
                true
            }
            // Not placed yet: the driver will find the insert cancelled and drop the timer
            // unplaced, or (if it is placing it meanwhile) take it straight out again. The
            // callback is this thread's to drop now: every disposal takes it out of the
            // timer first, so whoever comes second finds nothing. The insert itself, if still
            // last in its shard, is dropped by the shard's next push or by the driver before
            // it parks.
            Some(false) => {
                self.discard_here();
                true
            }
        }
    }

    /// Drops the callback of a timer this thread cancelled before the driver placed it, on this
    /// thread. Its captures are user code: a panic while dropping them goes to the panic hook,
    /// on the driver, as it would had the driver dropped them.
    fn discard_here(&self) {
        if let Err(panic) = self.timer.discard_callback() {
            self.shard.report(panic);
        }
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
        self.timer.state.is_cancelled()
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
        self.timer.state.is_expired()
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
        self.timer.state.status()
    }

    /// The deadline asked for, on the service's time line (see [`Handle::time`]). The callback
    /// runs at the first tick boundary at or after it, never before.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let timeout = service.call_at(Duration::from_secs(5), || {}).unwrap();
    /// assert_eq!(timeout.deadline(), Duration::from_secs(5));
    /// ```
    pub fn deadline(&self) -> Duration {
        self.timer.deadline
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.timer.deadline)
            .field("status", &self.status())
            .finish()
    }
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
        let shard = self.shared.local_shard();
        let timer = shard.schedule(deadline, callback)?;
        Ok(Timeout {
            timer,
            shard: Arc::clone(shard),
        })
    }

    /// A future that completes once `duration` has elapsed. See [`Sleep`].
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
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep::new(self, self.time().saturating_add(duration))
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
    pub fn timeout<F: std::future::Future>(&self, duration: Duration, future: F) -> WithTimeout<F> {
        WithTimeout::new(future, self.sleep(duration))
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
    pub fn tick(mut self, tick: Duration) -> Self {
        self.resolution = shared::resolution(tick);
        self
    }

    /// The driver thread's name. Default `"tierwheel-timer"`.
    ///
    /// ```
    /// let builder = tierwheel::service::TimerService::builder().thread_name("timeouts");
    /// # builder.build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    pub fn panic_hook<F>(mut self, hook: F) -> Self
    where
        F: FnMut(CallbackPanic) + Send + 'static,
    {
        self.hook = Box::new(hook);
        self
    }

    /// Starts the service: spawns its driver thread. Fails only if the thread cannot be
    /// spawned.
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
            core: Core::new(Arc::clone(&shared), self.hook),
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
    pub fn timeout<F: std::future::Future>(&self, duration: Duration, future: F) -> WithTimeout<F> {
        self.handle.timeout(duration, future)
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
    core: Core,
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

    /// Moves the time line to `time` (never back), applies every queued schedule and cancel,
    /// and runs every callback due; returns how many ran. Callbacks scheduled by these
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
        if self.core.apply_commands() {
            return 0;
        }
        self.core.run_due()
    }

    /// Applies queued commands and reports how many timers the wheel holds: cancelled timers
    /// are gone from it at once.
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
        self.core.apply_commands();
        self.core.pending()
    }

    /// The deadline tick's start of the next timer in the wheel, if any (commands still queued
    /// are not counted until the next [`run_until`](Self::run_until) or
    /// [`pending`](Self::pending)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// driver.handle().call_at(Duration::from_micros(1500), || {}).unwrap();
    /// driver.pending();
    /// assert_eq!(driver.next_deadline(), Some(Duration::from_millis(2)));
    /// ```
    pub fn next_deadline(&self) -> Option<Duration> {
        let timeout = self.core.next_timeout()?;
        Some(self.handle.time().saturating_add(timeout))
    }

    /// Shuts down like [`TimerService::shutdown`]: closes the queue, applies its last commands
    /// and hands back every timer still pending.
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
        let closed = self.core.apply_commands();
        debug_assert!(closed, "the queue reopened");
        self.core.unfired()
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
