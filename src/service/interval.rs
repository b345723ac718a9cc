//! [`Interval`]: ticks at a fixed period on a timer service, with tokio's choice of what to do
//! about ticks missed while nobody polled.

use super::core::far_instant;
use super::future::Sleep;
use super::ShutdownError;
use futures_core::Stream;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What an [`Interval`] does about ticks it missed (its task was busy, or the process stalled):
/// tokio's three behaviours, with the same names and meaning.
///
/// The default is [`Skip`](Self::Skip), not tokio's `Burst`: after a stall, `Burst` fires every
/// missed tick back to back, which is rarely what a heartbeat, a metrics flush or a retry loop
/// wants (a burst of requests right after a pause is how a stall turns into an overload), and
/// many tokio users switch away from it. `Skip` keeps the original cadence and drops the
/// missed ticks.
///
/// ```
/// use tierwheel::service::MissedTickBehavior;
/// assert_eq!(MissedTickBehavior::default(), MissedTickBehavior::Skip);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissedTickBehavior {
    /// Fire the missed ticks as fast as possible, then go on at the original schedule.
    Burst,
    /// Fire one tick now, and the next ones a period apart from now: the schedule shifts.
    Delay,
    /// Fire one tick now, and the next at the next point of the original schedule.
    #[default]
    Skip,
}

impl MissedTickBehavior {
    /// The tick after the one scheduled at `tick`, which fired at `now`. Past what `Instant`
    /// can hold it saturates to the farthest instant it can (a tick that never comes).
    fn next(self, tick: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            MissedTickBehavior::Burst => far_instant(tick, period),
            MissedTickBehavior::Delay => far_instant(now, period),
            MissedTickBehavior::Skip => {
                let late = now.saturating_duration_since(tick);
                let period_nanos = period.as_nanos().max(1);
                let skipped = late.as_nanos() / period_nanos;
                let steps = u32::try_from(skipped + 1).unwrap_or(u32::MAX);
                tick.checked_add(period.saturating_mul(steps))
                    .unwrap_or_else(|| far_instant(now, period))
            }
        }
    }
}

/// Ticks at a fixed period: made by [`Handle::interval`](super::Handle::interval) (first tick
/// at once) and [`Handle::interval_at`](super::Handle::interval_at).
///
/// [`tick`](Self::tick) completes at each tick with the instant it was scheduled for. Between
/// ticks the interval holds one sleep, reset for the next tick (no allocation per tick). It is
/// also a [`Stream`] of those instants, which ends when the service shuts down.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
///
/// let service = TimerService::new();
/// let mut heartbeat = service.handle().interval(Duration::from_millis(2));
/// let first = block_on(heartbeat.tick()).unwrap(); // at once
/// let second = block_on(heartbeat.tick()).unwrap();
/// assert_eq!(second - first, Duration::from_millis(2));
/// ```
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    pub(super) fn new(sleep: Sleep, period: Duration) -> Self {
        Interval {
            sleep,
            period,
            missed: MissedTickBehavior::default(),
        }
    }

    /// Whether the next tick is due by the clock (the first tick of `interval`, or one reset
    /// to now), so that it completes at once rather than at the driver's next pass.
    fn due_now(&self) -> bool {
        self.sleep.deadline() <= self.sleep.now_instant()
    }

    /// Completes at the next tick, with the instant it was scheduled for. Cancel-safe: dropping
    /// the future before it completes loses no tick.
    ///
    /// # Errors
    ///
    /// [`ShutdownError`] once the service has shut down.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_millis(1));
    /// assert!(block_on(ticks.tick()).is_ok());
    /// ```
    pub async fn tick(&mut self) -> Result<Instant, ShutdownError> {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick: `Ready` with the instant it was scheduled for, once it passed.
    ///
    /// # Errors
    ///
    /// `Ready(Err(ShutdownError))` once the service has shut down.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_secs(60));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(ticks.poll_tick(&mut cx).is_ready()); // the first tick: at once
    /// assert!(ticks.poll_tick(&mut cx).is_pending());
    /// ```
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Result<Instant, ShutdownError>> {
        let polled = if self.due_now() && !self.sleep.is_shut_down() {
            Poll::Ready(Ok(()))
        } else {
            Pin::new(&mut self.sleep).poll(cx)
        };
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(())) => {
                let tick = self.sleep.deadline();
                let now = self.sleep_now();
                let next = self.missed.next(tick, now, self.period);
                Pin::new(&mut self.sleep).reset(next);
                Poll::Ready(Ok(tick))
            }
        }
    }

    /// The service's clock, as an instant.
    fn sleep_now(&self) -> Instant {
        self.sleep.now_instant()
    }

    /// Starts the schedule again: the next tick is one period from now.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_secs(60));
    /// ticks.reset();
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(ticks.poll_tick(&mut cx).is_pending());
    /// ```
    pub fn reset(&mut self) {
        let next = far_instant(self.sleep_now(), self.period);
        Pin::new(&mut self.sleep).reset(next);
    }

    /// Makes the next tick due at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_secs(60));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(ticks.poll_tick(&mut cx).is_ready());
    /// ticks.reset_immediately();
    /// assert!(ticks.poll_tick(&mut cx).is_ready());
    /// ```
    pub fn reset_immediately(&mut self) {
        let now = self.sleep_now();
        Pin::new(&mut self.sleep).reset(now);
    }

    /// Makes the next tick due `after` from now.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_secs(1));
    /// ticks.reset_after(Duration::from_secs(60));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(ticks.poll_tick(&mut cx).is_pending());
    /// ```
    pub fn reset_after(&mut self, after: Duration) {
        Pin::new(&mut self.sleep).reset_after(after);
    }

    /// Makes the next tick due at `deadline`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_secs(1));
    /// ticks.reset_at(Instant::now() + Duration::from_secs(60));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(ticks.poll_tick(&mut cx).is_pending());
    /// ```
    pub fn reset_at(&mut self, deadline: Instant) {
        Pin::new(&mut self.sleep).reset(deadline);
    }

    /// The period between ticks.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let service = tierwheel::service::TimerService::new();
    /// assert_eq!(service.handle().interval(Duration::from_secs(3)).period(), Duration::from_secs(3));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What the interval does about missed ticks.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tierwheel::service::MissedTickBehavior;
    /// let service = tierwheel::service::TimerService::new();
    /// let ticks = service.handle().interval(Duration::from_secs(1));
    /// assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Skip);
    /// ```
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets what the interval does about missed ticks.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tierwheel::service::MissedTickBehavior;
    /// let service = tierwheel::service::TimerService::new();
    /// let mut ticks = service.handle().interval(Duration::from_secs(1));
    /// ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    /// assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Delay);
    /// ```
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}

impl Stream for Interval {
    type Item = Instant;

    /// The instants of the ticks; the stream ends when the service shuts down.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Result::ok)
    }
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("next", &self.sleep.deadline())
            .field("period", &self.period)
            .field("missed_tick_behavior", &self.missed)
            .finish()
    }
}

#[cfg(all(test, not(tierwheel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn missed_ticks_follow_tokios_three_behaviours() {
        let start = Instant::now();
        let period = Duration::from_millis(10);
        let at = |ms| start + Duration::from_millis(ms);
        // The tick scheduled at 0 fired at 35: three periods late and a half.
        assert_eq!(
            MissedTickBehavior::Burst.next(at(0), at(35), period),
            at(10)
        );
        assert_eq!(
            MissedTickBehavior::Delay.next(at(0), at(35), period),
            at(45)
        );
        assert_eq!(MissedTickBehavior::Skip.next(at(0), at(35), period), at(40));
        // On time, all three agree.
        for behavior in [
            MissedTickBehavior::Burst,
            MissedTickBehavior::Delay,
            MissedTickBehavior::Skip,
        ] {
            assert_eq!(behavior.next(at(0), at(0), period), at(10));
        }
        // Exactly on a later tick: Skip goes to the one after.
        assert_eq!(MissedTickBehavior::Skip.next(at(0), at(20), period), at(30));
    }
}
