//! Where a [`DelayQueue`](super::DelayQueue) gets its time and its one wakeup timer: a
//! [`Sleep`] on a timer service, or (feature `tokio`) one boxed `tokio::time::Sleep`.
//!
//! The queue works on a *time line*, a [`Duration`] since some origin, cut into ticks of
//! [`RESOLUTION`]: on a service, the service's own time line (so a manual driver controls the
//! queue's clock too); on tokio, the time since the queue was made, read from tokio's clock (so
//! tokio's paused test clock moves it). Instants map to the time line through one anchor, an
//! instant and the time-line reading taken just after it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::clock::Resolution;
use crate::service::{Handle, ShutdownError, Sleep};

/// The queue's tick: deadlines round up to it, clock readings down.
pub(super) const RESOLUTION: Resolution = Resolution::MILLISECOND;

/// How far ahead the tokio timer is parked when the queue wants no wakeup, and the latest it is
/// ever set for: about 30 years, as tokio itself treats "never". A timer parked there keeps its
/// allocation for the next arm; should it ever fire, the queue finds nothing due and sets it
/// again.
#[cfg(feature = "tokio")]
const TOKIO_FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The time source and the one timer that wakes the task polling the queue.
pub(super) struct Alarm {
    timer: Timer,
    /// An instant, and the time line's reading just after it was taken.
    anchor: Instant,
    anchor_time: Duration,
    /// The tick the timer is set for, with a waker registered on it; `None` when it is idle.
    armed: Option<u64>,
    /// The waker of the last poll; taken when the queue wakes that task itself.
    waker: Option<Waker>,
}

enum Timer {
    Service {
        handle: Handle,
        sleep: Option<Sleep>,
    },
    /// Made at the first poll, inside the runtime; only reset after that.
    #[cfg(feature = "tokio")]
    Tokio {
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl Alarm {
    /// On a timer service's time line, woken by sleeps on that service.
    pub(super) fn on_service(handle: Handle) -> Self {
        // The instant is read first, so the pair maps an instant to a point on the time line
        // at or after it: an entry never fires before its instant.
        let anchor = Instant::now();
        let anchor_time = handle.time();
        Alarm {
            timer: Timer::Service {
                handle,
                sleep: None,
            },
            anchor,
            anchor_time,
            armed: None,
            waker: None,
        }
    }

    /// On tokio's clock, woken by one `tokio::time::Sleep`.
    #[cfg(feature = "tokio")]
    pub(super) fn on_tokio() -> Self {
        Alarm {
            timer: Timer::Tokio { sleep: None },
            anchor: tokio::time::Instant::now().into_std(),
            anchor_time: Duration::ZERO,
            armed: None,
            waker: None,
        }
    }

    /// The source `DelayQueue::new` picks: tokio's inside a tokio runtime when the feature is
    /// on, else the process-wide service.
    pub(super) fn by_default() -> Self {
        #[cfg(feature = "tokio")]
        if tokio::runtime::Handle::try_current().is_ok() {
            return Self::on_tokio();
        }
        Self::on_service(crate::service::global().handle())
    }

    /// The time line's current reading.
    pub(super) fn now(&self) -> Duration {
        match &self.timer {
            Timer::Service { handle, .. } => handle.time(),
            #[cfg(feature = "tokio")]
            Timer::Tokio { .. } => tokio::time::Instant::now()
                .into_std()
                .saturating_duration_since(self.anchor),
        }
    }

    /// The tick the clock has reached (rounded down: a tick is reached once it has begun).
    pub(super) fn now_tick(&self) -> u64 {
        RESOLUTION.ticks_floor(self.now())
    }

    /// The tick a deadline at `when` is due (rounded up: never early). Instants before the
    /// time line's origin map to tick 0; those past its end saturate to the end of time.
    pub(super) fn tick_of(&self, when: Instant) -> u64 {
        let time = match when.checked_duration_since(self.anchor) {
            Some(after) => self.anchor_time.saturating_add(after),
            None => self
                .anchor_time
                .saturating_sub(self.anchor.duration_since(when)),
        };
        RESOLUTION.ticks_ceil(time)
    }

    /// The tick `timeout` from now is due.
    pub(super) fn tick_after(&self, timeout: Duration) -> u64 {
        RESOLUTION.ticks_ceil(self.now().saturating_add(timeout))
    }

    /// The instant tick `tick` starts at, or the instant nearest to it that the platform can
    /// represent.
    pub(super) fn instant_of(&self, tick: u64) -> Instant {
        let time = RESOLUTION.duration(tick);
        match time.checked_sub(self.anchor_time) {
            Some(after) => self
                .anchor
                .checked_add(after)
                .unwrap_or_else(|| farthest(self.anchor, Instant::checked_add)),
            None => self
                .anchor
                .checked_sub(self.anchor_time - time)
                .unwrap_or_else(|| farthest(self.anchor, Instant::checked_sub)),
        }
    }

    /// Keeps the waker of the task polling now. A poll runs inside the runtime, so this is
    /// where the tokio timer is made: later it is only reset, which needs no runtime context.
    pub(super) fn remember(&mut self, waker: &Waker) {
        match &self.waker {
            Some(known) if known.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
        #[cfg(feature = "tokio")]
        if let Timer::Tokio {
            sleep: sleep @ None,
        } = &mut self.timer
        {
            let parked = tokio::time::Instant::now() + TOKIO_FAR;
            *sleep = Some(Box::pin(tokio::time::sleep_until(parked)));
        }
    }

    /// Whether a task polled the queue and has not been woken by it since.
    pub(super) fn is_watched(&self) -> bool {
        self.waker.is_some()
    }

    /// The tick the timer is set for.
    pub(super) fn armed(&self) -> Option<u64> {
        self.armed
    }

    /// Wakes the task that polled last, now, and forgets it until it polls again.
    pub(super) fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Sets the timer for `tick`, unless it is set for it already, and registers `cx`'s waker
    /// on it. Ready if the timer has fired.
    ///
    /// # Panics
    ///
    /// If the queue's timer service has shut down: nothing could wake the task any more.
    pub(super) fn arm(&mut self, tick: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed != Some(tick) {
            self.set(tick);
            self.armed = Some(tick);
        }
        match &mut self.timer {
            Timer::Service { sleep, .. } => {
                let sleep = sleep.as_mut().expect("an armed service timer has a sleep");
                match Pin::new(sleep).poll(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(()),
                    Poll::Ready(Err(ShutdownError)) => {
                        panic!("tierwheel: the timer service of a DelayQueue has shut down")
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            #[cfg(feature = "tokio")]
            Timer::Tokio { sleep } => sleep
                .as_mut()
                .expect("an armed tokio timer has a sleep")
                .as_mut()
                .poll(cx),
        }
    }

    /// [`arm`](Self::arm) outside a poll, for the task that polled last: it is woken at once if
    /// the timer has fired already. Does nothing if no task is watching.
    pub(super) fn rearm(&mut self, tick: u64) {
        let Some(waker) = self.waker.take() else {
            return;
        };
        if self.arm(tick, &mut Context::from_waker(&waker)).is_ready() {
            waker.wake();
        } else {
            self.waker = Some(waker);
        }
    }

    /// Points the timer at `tick`: the one place it is moved.
    fn set(&mut self, tick: u64) {
        match &mut self.timer {
            // A later tick is one compare-and-swap on the sleep's timer; an earlier one moves it
            // in the service's wheel.
            Timer::Service { handle, sleep } => {
                let at = handle.instant_of(RESOLUTION.duration(tick));
                match sleep {
                    Some(sleep) => Pin::new(sleep).reset(at),
                    None => *sleep = Some(handle.sleep_until(at)),
                }
            }
            #[cfg(feature = "tokio")]
            Timer::Tokio { .. } => {
                let at = tokio::time::Instant::from_std(self.instant_of(tick));
                self.set_tokio(at);
            }
        }
    }

    /// Moves the tokio timer to `at`, no later than [`TOKIO_FAR`] from now (tokio's arithmetic
    /// must not overflow), making it on first use.
    #[cfg(feature = "tokio")]
    fn set_tokio(&mut self, at: tokio::time::Instant) {
        let Timer::Tokio { sleep } = &mut self.timer else {
            return;
        };
        let at = at.min(tokio::time::Instant::now() + TOKIO_FAR);
        match sleep {
            Some(sleep) => sleep.as_mut().reset(at),
            None => *sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Stops the timer: nothing is due, or nobody is waiting.
    pub(super) fn disarm(&mut self) {
        if self.armed.take().is_none() {
            return;
        }
        match &mut self.timer {
            Timer::Service { sleep, .. } => {
                // Dropping a pending sleep cancels its timer without waking the task.
                drop(sleep.take());
            }
            #[cfg(feature = "tokio")]
            Timer::Tokio { .. } => self.set_tokio(tokio::time::Instant::now() + TOKIO_FAR),
        }
    }
}

/// The instant farthest from `from` in the direction `step` moves (`Instant::checked_add` or
/// `checked_sub`): the platform decides how far instants reach, so it is searched for. Only a
/// deadline near the end of time needs it.
#[cold]
fn farthest(from: Instant, step: fn(&Instant, Duration) -> Option<Instant>) -> Instant {
    // `reach` is reachable, `beyond` is not.
    let (mut reach, mut beyond) = (Duration::ZERO, Duration::MAX);
    while beyond - reach > Duration::from_nanos(1) {
        let middle = reach + (beyond - reach) / 2;
        if step(&from, middle).is_some() {
            reach = middle;
        } else {
            beyond = middle;
        }
    }
    step(&from, reach).unwrap_or(from)
}

impl fmt::Debug for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.timer {
            Timer::Service { .. } => "service",
            #[cfg(feature = "tokio")]
            Timer::Tokio { .. } => "tokio",
        };
        f.debug_struct("Alarm")
            .field("source", &source)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::TimerService;

    #[test]
    fn instants_round_trip_through_ticks() {
        let driver = TimerService::builder().build_manual();
        let alarm = Alarm::on_service(driver.handle());
        let base = alarm.instant_of(0);
        for micros in [0, 1, 999, 1000, 1001, 123_456_789] {
            let when = base + Duration::from_micros(micros);
            let tick = alarm.tick_of(when);
            assert_eq!(tick, micros.div_ceil(1000), "at {micros} µs");
            assert!(alarm.instant_of(tick) >= when, "early at {micros} µs");
        }
    }

    #[test]
    fn instants_before_the_origin_map_to_tick_zero() {
        let driver = TimerService::builder().build_manual();
        let alarm = Alarm::on_service(driver.handle());
        let base = alarm.instant_of(0);
        if let Some(before) = base.checked_sub(Duration::from_secs(1)) {
            assert_eq!(alarm.tick_of(before), 0);
        }
    }

    #[test]
    fn the_end_of_time_maps_to_a_representable_instant() {
        let driver = TimerService::builder().build_manual();
        let alarm = Alarm::on_service(driver.handle());
        let end = alarm.instant_of(u64::MAX);
        assert!(end >= alarm.instant_of(u64::MAX - 1));
        assert!(end > alarm.instant_of(0));
        let latest = farthest(Instant::now(), Instant::checked_add);
        assert!(latest.checked_add(Duration::from_nanos(1)).is_none());
    }
}
