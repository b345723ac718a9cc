//! Runtime-agnostic futures on the service: the driver thread wakes them.

use super::sync::{lock, Arc, Mutex};
use super::{Handle, ShutdownError, Timeout};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

enum Phase {
    /// The timer has not fired; the waker of the last poll, if any.
    Waiting(Option<Waker>),
    /// The timer fired.
    Done,
    /// The timer will never fire: the service shut down (or it had already when the sleep was
    /// made).
    Gone,
}

/// What a sleep and its timer callback share.
struct Signal {
    phase: Mutex<Phase>,
}

impl Signal {
    fn settle(&self, to: Phase) {
        let mut phase = lock(&self.phase);
        if let Phase::Waiting(waker) = &mut *phase {
            let waker = waker.take();
            *phase = to;
            drop(phase);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// Owned by the timer's callback: firing settles the sleep as done; being dropped unrun (the
/// service shut down and nobody ran the timer) settles it as gone.
struct Settle(Arc<Signal>);

impl Drop for Settle {
    fn drop(&mut self) {
        self.0.settle(Phase::Gone);
    }
}

/// A future that completes once its duration has elapsed on a timer service, made by
/// [`Handle::sleep`] or [`TimerService::sleep`](super::TimerService::sleep).
///
/// Works with any executor: the driver thread wakes the last waker it was polled with.
/// Resolves to `Ok(())`, or to `Err(ShutdownError)` if the service shut down first (or already
/// had). Dropping a `Sleep` cancels its timer (freed at once, or by the driver's next pass).
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{ShutdownError, TimerService};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
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
    signal: Arc<Signal>,
    timeout: Option<Timeout>,
}

impl Sleep {
    pub(super) fn new(handle: &Handle, deadline: std::time::Duration) -> Self {
        let signal = Arc::new(Signal {
            phase: Mutex::new(Phase::Waiting(None)),
        });
        let settle = Settle(Arc::clone(&signal));
        let timeout = handle
            .call_at(deadline, move || {
                settle.0.settle(Phase::Done);
                drop(settle);
            })
            .ok();
        if timeout.is_none() {
            // The callback was dropped with the refused command, settling the sleep as gone.
            debug_assert!(matches!(*lock(&signal.phase), Phase::Gone));
        }
        Sleep { signal, timeout }
    }

    /// The timer behind this sleep, if the service took it (see [`Timeout::deadline`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let sleep = service.sleep(Duration::from_secs(1));
    /// assert!(sleep.timeout().unwrap().deadline() >= Duration::from_secs(1));
    /// ```
    pub fn timeout(&self) -> Option<&Timeout> {
        self.timeout.as_ref()
    }
}

impl Future for Sleep {
    type Output = Result<(), ShutdownError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut phase = lock(&self.signal.phase);
        match &mut *phase {
            Phase::Done => Poll::Ready(Ok(())),
            Phase::Gone => Poll::Ready(Err(ShutdownError)),
            Phase::Waiting(waker) => {
                match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(timeout) = &self.timeout {
            timeout.cancel();
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a [`WithTimeout`] gave up on its future.
///
/// New reasons may be added, so a `match` on it needs a wildcard arm.
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

/// A future with a time limit, made by [`Handle::timeout`]: resolves to `Ok(output)` if the
/// future completes first (checked first on every poll), else to an error. The future is boxed
/// (pinned on the heap), so `WithTimeout` is `Unpin` whatever the future. Dropping it cancels
/// its timer.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{TimeoutError, TimerService};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
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

    /// The timer enforcing the limit, if the service took it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let limited = service.timeout(Duration::from_secs(1), async {});
    /// assert!(limited.timeout().is_some());
    /// ```
    pub fn timeout(&self) -> Option<&Timeout> {
        self.sleep.timeout()
    }
}

impl<F: Future> Future for WithTimeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            if let Some(timeout) = self.sleep.timeout() {
                timeout.cancel();
            }
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
