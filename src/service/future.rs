//! Runtime-agnostic futures on the service: [`Sleep`] and [`WithTimeout`]. The driver thread
//! wakes them; any executor polls them.

use super::core::{EntryRef, Shared};
use super::entry::Action;
use super::sync::Arc;
use super::{ShutdownError, TimerStatus};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A future that completes at an instant, on a timer service: made by
/// [`Handle::sleep`](super::Handle::sleep) and [`Handle::sleep_until`](super::Handle::sleep_until).
///
/// It resolves to `Ok(())` once its deadline has passed on the service's clock (rounded up to
/// the service's tick: never early), or to `Err(ShutdownError)` if the service shut down
/// first (or already had). Works with any executor: the driver thread wakes the waker of the
/// last poll.
///
/// A sleep is registered with the service the first time it is polled, so a sleep that is
/// never polled (say, the time limit of a future that was ready at once) costs nothing but its
/// creation. [`reset`](Self::reset) to a later deadline is a single atomic compare-and-swap on
/// the timer, with no lock and no message to the driver; an earlier one moves the timer in the
/// service's wheel under its lock; a reset after the sleep completed arms it again. Dropping a
/// sleep cancels its timer, whose storage is reused by the next sleep: neither a reset nor, in
/// steady state, a new sleep allocates.
///
/// `Sleep` is `Unpin`: no `Box::pin` or `pin!` needed to keep one in a struct or reset it.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{ShutdownError, TimerService};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
///
/// let service = TimerService::new();
/// let handle = service.handle();
/// let long = handle.sleep(Duration::from_secs(3600));
/// assert_eq!(block_on(service.sleep(Duration::from_millis(1))), Ok(()));
/// drop(service);
/// assert_eq!(block_on(long), Err(ShutdownError));
/// ```
pub struct Sleep {
    shared: Arc<Shared>,
    /// The timer, once the sleep is registered.
    entry: Option<EntryRef>,
    deadline: Instant,
    /// How the sleep ended without a timer of its own, if it did.
    settled: Settled,
}

/// How a [`Sleep`] ended without (or after losing) its timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Settled {
    /// Not ended that way: the timer (or, before the first poll, the deadline) decides.
    Open,
    /// Its deadline had passed when it was polled, so it completed with no timer.
    Elapsed,
    /// The service had shut down when it tried to register or re-arm.
    Gone,
}

impl Sleep {
    pub(super) fn new(shared: Arc<Shared>, deadline: Instant) -> Self {
        Sleep {
            shared,
            entry: None,
            deadline,
            settled: Settled::Open,
        }
    }

    /// The instant the sleep completes at (as asked for; it fires at the first tick boundary at
    /// or after it).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let at = Instant::now() + Duration::from_secs(5);
    /// assert_eq!(service.handle().sleep_until(at).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the sleep has completed: its timer fired, or its deadline had already passed
    /// when it was polled. A sleep never polled has not completed, whatever its deadline; a
    /// reset makes it pending again.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// let mut sleep = driver.handle().sleep(Duration::from_millis(5));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(std::pin::Pin::new(&mut sleep).poll(&mut cx).is_pending());
    /// assert!(!sleep.is_elapsed());
    /// driver.run_until(Duration::from_millis(5));
    /// assert!(sleep.is_elapsed());
    /// # use std::future::Future;
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.settled == Settled::Elapsed
            || self
                .entry
                .as_ref()
                .is_some_and(|entry| entry.status() == TimerStatus::Expired)
    }

    /// Moves the deadline to `deadline`, whether or not the sleep has completed (a completed
    /// sleep is armed again). A later deadline than the pending one is one atomic
    /// compare-and-swap; an earlier one takes the service's lock. Allocates nothing.
    ///
    /// ```
    /// use std::pin::Pin;
    /// use std::time::Duration;
    /// # use std::future::Future;
    /// let mut driver = tierwheel::service::TimerService::builder().build_manual();
    /// let handle = driver.handle();
    /// let mut idle = handle.sleep(Duration::from_millis(10));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(Pin::new(&mut idle).poll(&mut cx).is_pending());
    /// // Traffic: push the idle timeout back.
    /// Pin::new(&mut idle).reset(handle.instant_of(Duration::from_millis(30)));
    /// driver.run_until(Duration::from_millis(20));
    /// assert!(Pin::new(&mut idle).poll(&mut cx).is_pending());
    /// driver.run_until(Duration::from_millis(30));
    /// assert!(Pin::new(&mut idle).poll(&mut cx).is_ready());
    /// ```
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.deadline = deadline;
        match this.settled {
            Settled::Gone => return,
            // Completed with no timer: pending again, and the next poll registers it.
            Settled::Elapsed => this.settled = Settled::Open,
            Settled::Open => {}
        }
        let Some(entry) = &mut this.entry else {
            // Not registered yet: the next poll registers it at the new deadline.
            return;
        };
        let time = this.shared.time_of(deadline);
        if this.shared.reset(entry, time) {
            return;
        }
        match entry.status() {
            // Completed: armed again, with no waker until the next poll.
            TimerStatus::Expired => {
                if this.shared.rearm(entry, time, Action::None).is_err() {
                    this.settled = Settled::Gone;
                }
            }
            // Shutdown claimed it: it stays gone.
            _ => this.settled = Settled::Gone,
        }
    }

    /// [`reset`](Self::reset) to `delay` from now.
    ///
    /// ```
    /// use std::pin::Pin;
    /// use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let mut sleep = service.sleep(Duration::from_secs(1));
    /// Pin::new(&mut sleep).reset_after(Duration::from_secs(60));
    /// assert!(sleep.deadline() > std::time::Instant::now() + Duration::from_secs(59));
    /// ```
    pub fn reset_after(self: Pin<&mut Self>, delay: Duration) {
        let deadline = self.shared.instant_after(delay);
        self.reset(deadline);
    }

    /// The service's clock, as an instant.
    pub(super) fn now_instant(&self) -> Instant {
        self.shared.now_instant()
    }

    /// Whether the service behind the sleep has shut down.
    pub(super) fn is_shut_down(&self) -> bool {
        self.settled == Settled::Gone || self.shared.is_closed()
    }

    /// The status of the timer behind the sleep, if it is registered.
    fn timer_status(&self) -> Option<TimerStatus> {
        self.entry.as_ref().map(|entry| entry.status())
    }
}

impl Future for Sleep {
    type Output = Result<(), ShutdownError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.settled {
            Settled::Gone => return Poll::Ready(Err(ShutdownError)),
            Settled::Elapsed => return Poll::Ready(Ok(())),
            Settled::Open => {}
        }
        let Some(entry) = &this.entry else {
            if this.deadline <= this.shared.now_instant() {
                // Passed already: no timer needed.
                this.settled = Settled::Elapsed;
                return Poll::Ready(Ok(()));
            }
            let deadline = this.shared.time_of(this.deadline);
            return match this
                .shared
                .schedule(deadline, Action::Wake(cx.waker().clone()))
            {
                Ok(entry) => {
                    this.entry = Some(entry);
                    Poll::Pending
                }
                Err(ShutdownError) => {
                    this.settled = Settled::Gone;
                    Poll::Ready(Err(ShutdownError))
                }
            };
        };
        let ready = |status| match status {
            TimerStatus::Pending => Poll::Pending,
            TimerStatus::Expired => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(ShutdownError)),
        };
        if let ready @ Poll::Ready(_) = ready(entry.status()) {
            return ready;
        }
        entry.set_waker(cx.waker());
        // The driver takes the waker after it marks the timer expired: if it fired before the
        // waker was set, this read sees it.
        ready(entry.status())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.shared.release(entry);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("status", &self.timer_status())
            .finish()
    }
}

/// Why a [`WithTimeout`] gave up on its future.
///
/// ```
/// use tierwheel::service::TimeoutError;
/// assert_eq!(TimeoutError::Elapsed.to_string(), "tierwheel: deadline elapsed");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutError {
    /// The time limit passed before the future completed.
    Elapsed,
    /// The timer service shut down, so the time limit could no longer be enforced.
    Shutdown,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutError::Elapsed => "tierwheel: deadline elapsed",
            TimeoutError::Shutdown => "tierwheel: the timer service has shut down",
        })
    }
}

impl std::error::Error for TimeoutError {}

/// A future with a time limit, made by [`Handle::timeout`](super::Handle::timeout) and
/// [`Handle::timeout_at`](super::Handle::timeout_at): resolves to `Ok(output)` if the future
/// completes first (checked first on every poll), else to an error.
///
/// Unlike tokio's `Timeout`, the limit can be moved while the future runs
/// ([`reset`](Self::reset), [`reset_after`](Self::reset_after)): an idle limit pushed back on
/// traffic, or a deadline a peer extends. The future is boxed (pinned on the heap), so
/// `WithTimeout` is `Unpin` whatever the future, and [`into_inner`](Self::into_inner) hands it
/// back pinned. Its timer is registered only if the future is not ready at its first poll.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{TimeoutError, TimerService};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
///
/// let service = TimerService::new();
/// let slow = service.sleep(Duration::from_secs(3600));
/// let limited = service.timeout(Duration::from_millis(1), slow);
/// assert_eq!(block_on(limited), Err(TimeoutError::Elapsed));
/// ```
pub struct WithTimeout<F> {
    future: Pin<Box<F>>,
    sleep: Sleep,
}

impl<F: Future> WithTimeout<F> {
    pub(super) fn new(future: F, sleep: Sleep) -> Self {
        WithTimeout {
            future: Box::pin(future),
            sleep,
        }
    }

    /// The instant the time limit passes at.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(service.handle().timeout_at(at, async {}).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Moves the time limit to `deadline` (see [`Sleep::reset`]).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let mut limited = service.timeout(Duration::from_secs(1), std::future::pending::<()>());
    /// let later = Instant::now() + Duration::from_secs(60);
    /// limited.reset(later);
    /// assert_eq!(limited.deadline(), later);
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        Pin::new(&mut self.sleep).reset(deadline);
    }

    /// Moves the time limit to `delay` from now.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let mut limited = service.timeout(Duration::from_secs(1), std::future::pending::<()>());
    /// limited.reset_after(Duration::from_secs(60));
    /// assert!(limited.deadline() > Instant::now() + Duration::from_secs(59));
    /// ```
    pub fn reset_after(&mut self, delay: Duration) {
        Pin::new(&mut self.sleep).reset_after(delay);
    }

    /// The future being limited.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let limited = service.timeout(Duration::from_secs(1), std::future::ready(7));
    /// # let _ = limited.get_ref();
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The future being limited, pinned (it is boxed, see the type's docs).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let mut limited = service.timeout(Duration::from_secs(1), std::future::ready(7));
    /// let _pinned = limited.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> Pin<&mut F> {
        self.future.as_mut()
    }

    /// The future being limited, pinned, without its time limit (whose timer is cancelled).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let service = tierwheel::service::TimerService::new();
    /// let limited = service.timeout(Duration::from_secs(1), std::future::ready(7));
    /// assert_eq!(block_on(limited.into_inner()), 7);
    /// ```
    pub fn into_inner(self) -> Pin<Box<F>> {
        self.future
    }
}

impl<F: Future> Future for WithTimeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(TimeoutError::Elapsed)),
            Poll::Ready(Err(ShutdownError)) => Poll::Ready(Err(TimeoutError::Shutdown)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for WithTimeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithTimeout")
            .field("sleep", &self.sleep)
            .finish_non_exhaustive()
    }
}
