//! Clocks, and the conversion between their [`Duration`]s and the wheel's `u64` ticks.
//!
//! A [`Clock`] reports the time since its own origin. [`Resolution`] turns such a time into
//! ticks and back. Deadlines round **up** ([`Resolution::ticks_ceil`]): a callback never runs
//! before its time. Clock readings round **down** ([`Resolution::ticks_floor`]): a tick is
//! reached only once the clock has read its whole length. Together they give "never early".
//!
//! The last tick, `u64::MAX`, is *the end of time*. Deadlines beyond the tick range, and
//! `Duration::MAX` itself, saturate to it; only a clock reading of `Duration::MAX` reaches it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of monotonic time.
///
/// # Contract
/// - `now` MUST be monotonic: a reading MUST NOT be smaller than any earlier reading of the
///   same clock (or of a clone of it, for shared clocks).
/// - `now` is the time since the clock's origin, an arbitrary fixed instant (for
///   [`MonotonicClock`], its creation).
///
/// A clock that breaks the contract cannot make the scheduler panic or run a callback twice:
/// its time line simply stands still until the clock catches up again. But callbacks may then
/// run early with respect to the bad readings.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::clock::Clock;
///
/// /// A clock frozen at one instant: monotonic, if not very useful.
/// struct Frozen(Duration);
///
/// impl Clock for Frozen {
///     fn now(&self) -> Duration {
///         self.0
///     }
/// }
///
/// assert_eq!(Frozen(Duration::from_secs(3)).now(), Duration::from_secs(3));
/// ```
pub trait Clock {
    /// Time elapsed since this clock's origin; never less than an earlier reading.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::starting_at(Duration::from_millis(7));
    /// assert_eq!(clock.now(), Duration::from_millis(7));
    /// ```
    fn now(&self) -> Duration;
}

impl<K: Clock + ?Sized> Clock for &K {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

impl<K: Clock + ?Sized> Clock for Arc<K> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// The real clock: [`std::time::Instant`], with its origin at the clock's creation.
///
/// ```
/// use tierwheel::clock::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(a <= b);
/// ```
#[derive(Copy, Clone, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock reading zero now.
    ///
    /// ```
    /// use tierwheel::clock::{Clock, MonotonicClock};
    ///
    /// assert!(MonotonicClock::new().now() < std::time::Duration::from_secs(60));
    /// ```
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }

    /// The instant this clock reads zero.
    ///
    /// ```
    /// use tierwheel::clock::MonotonicClock;
    ///
    /// let clock = MonotonicClock::new();
    /// assert!(clock.origin() <= std::time::Instant::now());
    /// ```
    pub fn origin(&self) -> Instant {
        self.origin
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// Clones share one time line, so a test can keep a clone and advance the clock a scheduler
/// owns, from any thread. The time is kept in whole nanoseconds in a `u64`: it ends at
/// `u64::MAX` nanoseconds (about 584 years), where [`advance`](Self::advance) and
/// [`set`](Self::set) saturate.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let view = clock.clone();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(view.now(), Duration::from_millis(1500));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    /// Time since the origin, in nanoseconds.
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading zero.
    ///
    /// ```
    /// use tierwheel::clock::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new().now(), std::time::Duration::ZERO);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock reading `now` (saturating at `u64::MAX` nanoseconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::starting_at(Duration::from_secs(10));
    /// assert_eq!(clock.now(), Duration::from_secs(10));
    /// ```
    pub fn starting_at(now: Duration) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(saturating_nanos(now))),
        }
    }

    /// Moves the clock forward by `by`, saturating at `u64::MAX` nanoseconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(2));
    /// clock.advance(Duration::MAX);
    /// assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        // Saturates instead of wrapping; `fetch_update` retries on a concurrent change.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |nanos| {
                Some(nanos.saturating_add(by))
            });
    }

    /// Sets the clock to `now`, which must not lie before the clock's current reading.
    ///
    /// # Errors
    /// A clock is monotonic: setting it back is refused with a [`BackwardsError`] and the
    /// clock keeps its reading. Setting it to its current reading is allowed and does nothing.
    /// `now` beyond `u64::MAX` nanoseconds saturates there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// assert!(clock.set(Duration::from_secs(5)).is_ok());
    /// let err = clock.set(Duration::from_secs(4)).unwrap_err();
    /// assert_eq!(err.now, Duration::from_secs(5));
    /// assert_eq!(clock.now(), Duration::from_secs(5));
    /// ```
    pub fn set(&self, now: Duration) -> Result<(), BackwardsError> {
        let requested = saturating_nanos(now);
        self.nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |nanos| {
                (requested >= nanos).then_some(requested)
            })
            .map(|_| ())
            .map_err(|nanos| BackwardsError {
                now: Duration::from_nanos(nanos),
                requested: now,
            })
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

/// `d` in whole nanoseconds, saturating at `u64::MAX`.
fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// [`ManualClock::set`] was asked to move the clock backwards.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::clock::ManualClock;
///
/// let clock = ManualClock::starting_at(Duration::from_secs(2));
/// let err = clock.set(Duration::from_secs(1)).unwrap_err();
/// assert_eq!(err.to_string(), "tierwheel: clock at 2s cannot be set back to 1s");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BackwardsError {
    /// The clock's reading, which it keeps.
    pub now: Duration,
    /// The earlier time that was refused.
    pub requested: Duration,
}

impl fmt::Display for BackwardsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tierwheel: clock at {:?} cannot be set back to {:?}",
            self.now, self.requested
        )
    }
}

impl std::error::Error for BackwardsError {}

/// The length of one tick: how a [`Duration`] on a clock's time line maps to `u64` ticks.
///
/// Tick `k` starts at `k * tick` on the time line. Tick `u64::MAX` is the end of time.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::clock::Resolution;
///
/// let ms = Resolution::MILLISECOND;
/// assert_eq!(ms.ticks_ceil(Duration::from_micros(1500)), 2); // never early
/// assert_eq!(ms.ticks_floor(Duration::from_micros(1500)), 1); // tick 2 not reached yet
/// assert_eq!(ms.ticks_ceil(Duration::MAX), u64::MAX); // the end of time
/// assert_eq!(ms.duration(2), Duration::from_millis(2));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resolution {
    /// Length of a tick, in nanoseconds; never zero.
    tick_nanos: u64,
}

impl Resolution {
    /// One tick per nanosecond: the finest resolution.
    ///
    /// ```
    /// use tierwheel::clock::Resolution;
    /// assert_eq!(Resolution::NANOSECOND.tick(), std::time::Duration::from_nanos(1));
    /// ```
    pub const NANOSECOND: Resolution = Resolution { tick_nanos: 1 };

    /// One tick per microsecond.
    ///
    /// ```
    /// use tierwheel::clock::Resolution;
    /// assert_eq!(Resolution::MICROSECOND.tick(), std::time::Duration::from_micros(1));
    /// ```
    pub const MICROSECOND: Resolution = Resolution { tick_nanos: 1_000 };

    /// One tick per millisecond: the default of [`Scheduler`](crate::Scheduler).
    ///
    /// ```
    /// use tierwheel::clock::Resolution;
    /// assert_eq!(Resolution::MILLISECOND.tick(), std::time::Duration::from_millis(1));
    /// assert_eq!(Resolution::default(), Resolution::MILLISECOND);
    /// ```
    pub const MILLISECOND: Resolution = Resolution {
        tick_nanos: 1_000_000,
    };

    /// A resolution with ticks of length `tick`.
    ///
    /// # Errors
    /// [`ResolutionError::Zero`] if `tick` is shorter than a nanosecond, and
    /// [`ResolutionError::TooLong`] if it is longer than `u64::MAX` nanoseconds (about 584
    /// years).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::{Resolution, ResolutionError};
    ///
    /// let tenth = Resolution::new(Duration::from_millis(100)).unwrap();
    /// assert_eq!(tenth.ticks_ceil(Duration::from_secs(1)), 10);
    /// assert_eq!(Resolution::new(Duration::ZERO), Err(ResolutionError::Zero));
    /// assert_eq!(Resolution::new(Duration::MAX), Err(ResolutionError::TooLong));
    /// ```
    pub fn new(tick: Duration) -> Result<Self, ResolutionError> {
        match u64::try_from(tick.as_nanos()) {
            Ok(0) => Err(ResolutionError::Zero),
            Ok(tick_nanos) => Ok(Resolution { tick_nanos }),
            Err(_) => Err(ResolutionError::TooLong),
        }
    }

    /// A resolution with ticks of `tick_nanos` nanoseconds.
    ///
    /// # Errors
    /// [`ResolutionError::Zero`] if `tick_nanos` is zero.
    ///
    /// ```
    /// use tierwheel::clock::{Resolution, ResolutionError};
    ///
    /// assert_eq!(Resolution::from_nanos(1_000), Ok(Resolution::MICROSECOND));
    /// assert_eq!(Resolution::from_nanos(0), Err(ResolutionError::Zero));
    /// ```
    pub const fn from_nanos(tick_nanos: u64) -> Result<Self, ResolutionError> {
        if tick_nanos == 0 {
            Err(ResolutionError::Zero)
        } else {
            Ok(Resolution { tick_nanos })
        }
    }

    /// The length of one tick.
    ///
    /// ```
    /// use tierwheel::clock::Resolution;
    /// assert_eq!(Resolution::MICROSECOND.tick().as_nanos(), 1_000);
    /// ```
    pub const fn tick(self) -> Duration {
        Duration::from_nanos(self.tick_nanos)
    }

    /// The first tick that starts at or after `d`: the tick a deadline at `d` is due.
    ///
    /// Rounds up, so `self.duration(self.ticks_ceil(d)) >= d` always holds (never early).
    /// Saturates: `Duration::MAX`, and any `d` past the start of tick `u64::MAX - 1`, give
    /// `u64::MAX`, the end of time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::Resolution;
    ///
    /// let us = Resolution::MICROSECOND;
    /// assert_eq!(us.ticks_ceil(Duration::ZERO), 0);
    /// assert_eq!(us.ticks_ceil(Duration::from_nanos(1)), 1);
    /// assert_eq!(us.ticks_ceil(Duration::from_nanos(1000)), 1);
    /// assert_eq!(us.ticks_ceil(Duration::from_secs(u64::MAX / 1000)), u64::MAX);
    /// ```
    pub fn ticks_ceil(self, d: Duration) -> u64 {
        if d == Duration::MAX {
            return u64::MAX;
        }
        match u64::try_from(d.as_nanos()) {
            // The common case, in 64-bit arithmetic: a 128-bit division costs several times more,
            // and a division by a constant (the usual ticks) is a multiplication.
            Ok(nanos) => match self.tick_nanos {
                1_000_000 => nanos.div_ceil(1_000_000),
                1_000 => nanos.div_ceil(1_000),
                tick => nanos.div_ceil(tick),
            },
            Err(_) => {
                let ticks = d.as_nanos().div_ceil(u128::from(self.tick_nanos));
                u64::try_from(ticks).unwrap_or(u64::MAX)
            }
        }
    }

    /// The last tick that starts at or before `d`: the tick a clock reading `d` has reached.
    ///
    /// Rounds down, so `self.duration(self.ticks_floor(d)) <= d`. Only `Duration::MAX`
    /// reaches the end of time (`u64::MAX`); any other reading stops at `u64::MAX - 1`, so
    /// a deadline saturated to the end of time is never run early.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::Resolution;
    ///
    /// let ns = Resolution::NANOSECOND;
    /// assert_eq!(ns.ticks_floor(Duration::from_nanos(7)), 7);
    /// assert_eq!(ns.ticks_floor(Duration::from_secs(u64::MAX)), u64::MAX - 1);
    /// assert_eq!(ns.ticks_floor(Duration::MAX), u64::MAX);
    /// ```
    pub fn ticks_floor(self, d: Duration) -> u64 {
        if d == Duration::MAX {
            return u64::MAX;
        }
        let ticks = match u64::try_from(d.as_nanos()) {
            Ok(nanos) => match self.tick_nanos {
                1_000_000 => nanos / 1_000_000,
                1_000 => nanos / 1_000,
                tick => nanos / tick,
            },
            Err(_) => {
                let ticks = d.as_nanos() / u128::from(self.tick_nanos);
                u64::try_from(ticks).unwrap_or(u64::MAX)
            }
        };
        ticks.min(u64::MAX - 1)
    }

    /// Where tick `ticks` starts on the time line, saturating at `Duration::MAX`.
    ///
    /// The end of time, `u64::MAX`, maps to `Duration::MAX`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::clock::Resolution;
    ///
    /// assert_eq!(Resolution::MILLISECOND.duration(1500), Duration::from_millis(1500));
    /// assert_eq!(Resolution::MILLISECOND.duration(u64::MAX), Duration::MAX);
    /// ```
    pub fn duration(self, ticks: u64) -> Duration {
        if ticks == u64::MAX {
            return Duration::MAX;
        }
        let nanos = u128::from(ticks) * u128::from(self.tick_nanos);
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        match u64::try_from(nanos / NANOS_PER_SEC) {
            // The remainder is below 10^9, so it fits a u32.
            Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
            Err(_) => Duration::MAX,
        }
    }
}

impl Default for Resolution {
    fn default() -> Self {
        Resolution::MILLISECOND
    }
}

/// Why a [`Resolution`] could not be made.
///
/// New reasons may be added, so a `match` on it needs a wildcard arm.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::clock::{Resolution, ResolutionError};
///
/// let err = Resolution::new(Duration::from_nanos(0)).unwrap_err();
/// assert_eq!(err, ResolutionError::Zero);
/// assert_eq!(err.to_string(), "tierwheel: a tick must last at least one nanosecond");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResolutionError {
    /// The tick is shorter than one nanosecond.
    Zero,
    /// The tick is longer than `u64::MAX` nanoseconds.
    TooLong,
}

impl fmt::Display for ResolutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolutionError::Zero => "tierwheel: a tick must last at least one nanosecond",
            ResolutionError::TooLong => "tierwheel: a tick must last at most u64::MAX nanoseconds",
        })
    }
}

impl std::error::Error for ResolutionError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolutions at the edges: 1 ns, odd, decimal, one that does not divide a second, the
    /// longest.
    fn resolutions() -> impl Iterator<Item = Resolution> {
        [1, 7, 1_000, 1_000_000, 999_999_937, 3_000_000_000, u64::MAX]
            .into_iter()
            .map(|n| Resolution::from_nanos(n).unwrap())
    }

    /// Times around every power of two of nanoseconds, around tick boundaries, and at the ends.
    fn times(r: Resolution) -> Vec<Duration> {
        let mut out = vec![Duration::ZERO, Duration::MAX, Duration::from_secs(u64::MAX)];
        for bit in 0..128 {
            let n = 1u128 << bit;
            for nanos in [n - 1, n, n + 1] {
                out.push(from_nanos_saturating(nanos));
            }
        }
        for ticks in [
            1,
            2,
            63,
            64,
            65,
            1 << 32,
            u64::MAX - 2,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let start = u128::from(ticks) * u128::from(r.tick_nanos);
            for nanos in [start - 1, start, start + 1] {
                out.push(from_nanos_saturating(nanos));
            }
        }
        out
    }

    fn from_nanos_saturating(nanos: u128) -> Duration {
        match u64::try_from(nanos / 1_000_000_000) {
            Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
            Err(_) => Duration::MAX,
        }
    }

    #[test]
    fn ticks_ceil_is_never_early_and_the_smallest_such_tick() {
        for r in resolutions() {
            for d in times(r) {
                let t = r.ticks_ceil(d);
                assert!(r.duration(t) >= d, "{r:?} {d:?}: tick {t} starts early");
                if t != 0 && t != u64::MAX {
                    assert!(
                        r.duration(t - 1) < d,
                        "{r:?} {d:?}: tick {t} is not the first"
                    );
                }
                if t == u64::MAX && d != Duration::MAX {
                    let last = r.duration(u64::MAX - 1);
                    assert!(
                        d > last || last == Duration::MAX,
                        "{r:?} {d:?} saturated early"
                    );
                }
            }
        }
    }

    #[test]
    fn ticks_floor_is_reached_and_only_duration_max_reaches_the_end_of_time() {
        for r in resolutions() {
            for d in times(r) {
                let t = r.ticks_floor(d);
                assert!(r.duration(t) <= d, "{r:?} {d:?}: tick {t} not reached yet");
                assert_eq!(t == u64::MAX, d == Duration::MAX, "{r:?} {d:?}");
                assert!(t <= r.ticks_ceil(d), "{r:?} {d:?}");
                if t < u64::MAX - 1 {
                    assert!(
                        r.duration(t + 1) > d,
                        "{r:?} {d:?}: tick {t} is not the last"
                    );
                }
            }
        }
    }

    #[test]
    fn conversions_are_monotonic() {
        for r in resolutions() {
            let mut times = times(r);
            times.sort();
            for pair in times.windows(2) {
                assert!(
                    r.ticks_ceil(pair[0]) <= r.ticks_ceil(pair[1]),
                    "{r:?} {pair:?}"
                );
                assert!(
                    r.ticks_floor(pair[0]) <= r.ticks_floor(pair[1]),
                    "{r:?} {pair:?}"
                );
            }
        }
    }

    #[test]
    fn whole_ticks_round_trip() {
        for r in resolutions() {
            for t in [0, 1, 2, 1 << 20, 1 << 40, u64::MAX - 1, u64::MAX] {
                let d = r.duration(t);
                if d != Duration::MAX {
                    assert_eq!(r.ticks_ceil(d), t, "{r:?}");
                    assert_eq!(r.ticks_floor(d), t, "{r:?}");
                }
            }
        }
    }

    #[test]
    fn resolution_new_rejects_zero_and_too_long() {
        assert_eq!(Resolution::new(Duration::ZERO), Err(ResolutionError::Zero));
        assert_eq!(Resolution::from_nanos(0), Err(ResolutionError::Zero));
        let longest = Duration::from_nanos(u64::MAX);
        assert_eq!(Resolution::new(longest).unwrap().tick(), longest);
        assert_eq!(
            Resolution::new(longest + Duration::from_nanos(1)),
            Err(ResolutionError::TooLong)
        );
    }
}
