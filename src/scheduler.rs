//! Callbacks on top of the wheel: asyncio's `call_later` / `call_at` / `call_soon`, driven by a
//! [`Clock`].
//!
//! The scheduler keeps one boxed closure per pending callback in a [`TimerWheel`] whose ticks
//! are the clock's time divided by a [`Resolution`]. A pass ([`Scheduler::run_due`]) polls the
//! wheel up to the tick the clock has reached. A callback scheduled during the pass is placed
//! no earlier than that tick; the first one that lands on it is preceded by a *fence*, an entry
//! without a callback, which sorts behind everything already due and ends the pass. Nothing is
//! copied out of the wheel, so a callback cancelled by an earlier one of the same pass is simply
//! no longer there.
//!
//! The wheel orders a deadline before its current tick as if it were that tick, first in first
//! out, where asyncio runs past deadlines in deadline order. So a callback scheduled between
//! passes for a tick before the wheel's current tick is *late*: it goes in the wheel as usual
//! (its handle works like any other) and also in [`Late`], ordered by tick, and a pass takes
//! the late callbacks out of the wheel in that order before it polls the wheel. Their ticks lie
//! before the wheel's current tick, so before every other pending callback.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, MonotonicClock, Resolution};
use crate::slab::Fate;
use crate::{TimerKey, TimerWheel};

/// A scheduled callback. The wheel stores `Option<Callback>`: `None` is a pass's fence.
type Callback<C, K> = Box<dyn FnOnce(&mut C, &mut Scheduler<C, K>)>;

/// Names one callback of a [`Scheduler`], to [`cancel`](Scheduler::cancel) or
/// [`reschedule`](Scheduler::reschedule) it, or ask [`when`](Scheduler::when) it is due.
///
/// Handles are `Copy` and cost nothing to keep. A reschedule keeps the handle. Once its
/// callback has run or been cancelled, a handle is inert forever: it never names a later
/// callback, even one stored in the same place. A handle belongs to the scheduler that
/// returned it; do not use it with another.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::{ManualClock, Scheduler};
///
/// let mut sched = Scheduler::<u32, _>::with_clock(ManualClock::new());
/// let h = sched.call_later(Duration::from_millis(5), |n, _| *n += 1);
/// let copy = h;
/// assert!(sched.cancel(h));
/// assert!(!sched.cancel(copy));
/// assert!(!sched.is_pending(copy));
/// assert_eq!(std::mem::size_of::<Option<tierwheel::TimerHandle>>(), 8);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle(TimerKey);

/// What became of a scheduled callback, from [`Scheduler::status`].
///
/// ```
/// use tierwheel::{CallbackStatus, Scheduler};
///
/// let mut sched = Scheduler::<()>::new();
/// let h = sched.call_soon(|_, _| {});
/// assert_eq!(sched.status(h), CallbackStatus::Pending);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallbackStatus {
    /// Scheduled, not yet run nor cancelled.
    Pending,
    /// It ran, or is running (a callback that panicked counts as run).
    Ran,
    /// A [`cancel`](Scheduler::cancel) stopped it.
    Cancelled,
    /// It ran or was cancelled, and the scheduler no longer knows which: a later callback has
    /// taken its storage.
    Unknown,
}

/// A single-threaded callback scheduler: asyncio's `call_later`, `call_at` and `call_soon` on a
/// timing wheel.
///
/// `C` is the context every callback receives as `&mut C` (pass it to
/// [`run_due`](Self::run_due)); `K` is the [`Clock`]. A callback is any
/// `FnOnce(&mut C, &mut Scheduler<C, K>) + 'static`: its captures play the role of asyncio's
/// `*args`, and the second argument is this scheduler, so a callback can schedule, re-arm and
/// cancel callbacks while it runs.
///
/// Callbacks run in order of their due tick, ties first-scheduled first, never before their
/// time on the clock; [`run_due`](Self::run_due) states the order exactly. A scheduler is not
/// `Send` (callbacks need not be): build it on the thread that runs it.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::{ManualClock, Scheduler};
///
/// let clock = ManualClock::new();
/// let mut sched = Scheduler::with_clock(clock.clone());
/// let mut log: Vec<&str> = Vec::new();
///
/// sched.call_later(Duration::from_millis(20), |log: &mut Vec<&str>, _| log.push("b"));
/// sched.call_later(Duration::from_millis(10), |log: &mut Vec<&str>, sched| {
///     log.push("a");
///     // Re-arm: 30 ms after the clock's reading now (25 ms), so at 55 ms.
///     sched.call_later(Duration::from_millis(30), |log, _| log.push("c"));
/// });
///
/// clock.advance(Duration::from_millis(25));
/// assert_eq!(sched.run_due(&mut log), 2);
/// assert_eq!(sched.next_timeout(), Some(Duration::from_millis(30)));
/// clock.advance(Duration::from_millis(30));
/// sched.run_due(&mut log);
/// assert_eq!(log, ["a", "b", "c"]);
/// assert!(sched.is_empty());
/// ```
pub struct Scheduler<C, K: Clock = MonotonicClock> {
    /// Pending callbacks, at the tick they are due; during a pass also its fence (`None`).
    wheel: TimerWheel<Option<Callback<C, K>>>,
    /// The pending callbacks due before the wheel's current tick, in the order they run.
    late: Late,
    clock: K,
    resolution: Resolution,
    /// The pass in progress, if any.
    pass: Option<Pass>,
}

/// Callbacks scheduled, outside a pass, for a tick before the wheel's current tick: the wheel
/// would run them as due at its current tick, first in first out, and they must run by tick.
/// Each is still in the wheel; this only records the order in which a pass takes them out.
///
/// Every key here names a pending callback: whatever takes a callback out of the wheel or
/// moves it (`cancel`, `reschedule`, a pass) removes its entry first. None is added during a
/// pass, since a pass places callbacks no earlier than its own tick.
#[derive(Default)]
struct Late {
    /// Running order: by tick, then by sequence number (scheduling order).
    order: BTreeMap<(u64, u64), TimerKey>,
    /// Where each late callback's entry is in `order`.
    at: HashMap<TimerKey, (u64, u64)>,
    /// The next sequence number.
    next_seq: u64,
}

impl Late {
    fn len(&self) -> usize {
        debug_assert_eq!(self.order.len(), self.at.len(), "late entries out of step");
        self.at.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&mut self, tick: u64, key: TimerKey) {
        let at = (tick, self.next_seq);
        self.next_seq += 1;
        self.order.insert(at, key);
        let before = self.at.insert(key, at);
        debug_assert!(before.is_none(), "{key:?} entered twice as late");
    }

    /// Forgets `key`, if it is late. Cheap when nothing is late, the common case.
    fn remove(&mut self, key: TimerKey) {
        if self.at.is_empty() {
            return;
        }
        if let Some(at) = self.at.remove(&key) {
            self.order.remove(&at);
        }
    }

    /// Forgets the late callback that runs first, and returns its key.
    fn pop_first(&mut self) -> Option<TimerKey> {
        let (_, key) = self.order.pop_first()?;
        self.at.remove(&key);
        Some(key)
    }
}

/// A pass of [`Scheduler::run_due`] in progress.
#[derive(Copy, Clone, Debug)]
struct Pass {
    /// The tick the pass runs to. Callbacks scheduled during the pass are placed no earlier.
    tick: u64,
    /// The wheel entry at `tick` that ends the pass, put in before the first callback scheduled
    /// during the pass lands on `tick`, so that it sorts behind them.
    fence: Option<TimerKey>,
}

impl<C> Scheduler<C, MonotonicClock> {
    /// A scheduler on the real clock ([`MonotonicClock`], reading zero now), with 1 ms ticks.
    ///
    /// ```
    /// use tierwheel::Scheduler;
    ///
    /// let mut sched = Scheduler::new();
    /// sched.call_soon(|n: &mut u32, _| *n += 1);
    /// let mut n = 0;
    /// assert_eq!(sched.run_due(&mut n), 1);
    /// assert_eq!(n, 1);
    /// ```
    pub fn new() -> Self {
        Self::with_clock(MonotonicClock::new())
    }
}

impl<C> Default for Scheduler<C, MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C, K: Clock> Scheduler<C, K> {
    /// A scheduler on `clock`, with 1 ms ticks ([`Resolution::MILLISECOND`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let sched = Scheduler::<(), _>::with_clock(ManualClock::starting_at(Duration::from_secs(1)));
    /// assert_eq!(sched.time(), Duration::from_secs(1));
    /// ```
    pub fn with_clock(clock: K) -> Self {
        Self::with_clock_and_resolution(clock, Resolution::MILLISECOND)
    }

    /// A scheduler on `clock`, with ticks of `resolution`.
    ///
    /// A finer resolution runs callbacks closer to their time; a coarser one batches them.
    /// Either way a callback never runs before its time on the clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Resolution, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched =
    ///     Scheduler::with_clock_and_resolution(clock.clone(), Resolution::MICROSECOND);
    /// sched.call_later(Duration::from_nanos(1500), |n: &mut u32, _| *n += 1);
    /// let mut n = 0;
    /// clock.advance(Duration::from_micros(1));
    /// sched.run_due(&mut n);
    /// assert_eq!(n, 0); // due at tick 2 (2 µs): 1.5 µs rounds up
    /// clock.advance(Duration::from_micros(1));
    /// sched.run_due(&mut n);
    /// assert_eq!(n, 1);
    /// ```
    pub fn with_clock_and_resolution(clock: K, resolution: Resolution) -> Self {
        let start = resolution.ticks_floor(clock.now());
        Scheduler {
            wheel: TimerWheel::starting_at(start),
            late: Late::default(),
            clock,
            resolution,
            pass: None,
        }
    }

    /// The clock.
    ///
    /// ```
    /// use tierwheel::{Clock, ManualClock, Scheduler};
    ///
    /// let sched = Scheduler::<(), _>::with_clock(ManualClock::new());
    /// assert_eq!(sched.clock().now(), sched.time());
    /// ```
    pub fn clock(&self) -> &K {
        &self.clock
    }

    /// The tick length.
    ///
    /// ```
    /// use tierwheel::{Resolution, Scheduler};
    ///
    /// assert_eq!(Scheduler::<()>::new().resolution(), Resolution::MILLISECOND);
    /// ```
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The current time on the scheduler's time line: the clock's reading, like asyncio's
    /// `loop.time()`. [`call_at`](Self::call_at) takes times on this line.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let sched = Scheduler::<(), _>::with_clock(clock.clone());
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(sched.time(), Duration::from_secs(2));
    /// ```
    pub fn time(&self) -> Duration {
        self.clock.now()
    }

    /// Number of callbacks pending (scheduled, not yet run nor cancelled).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::Scheduler;
    ///
    /// let mut sched = Scheduler::<()>::new();
    /// sched.call_later(Duration::from_secs(60), |_, _| {});
    /// assert_eq!(sched.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let fence = self.pass.is_some_and(|pass| pass.fence.is_some());
        self.wheel.len() - usize::from(fence)
    }

    /// Whether no callback is pending.
    ///
    /// ```
    /// use tierwheel::Scheduler;
    ///
    /// assert!(Scheduler::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `callback` to run once `delay` has elapsed on the clock: at the first pass at
    /// or after [`time()`](Self::time)` + delay`, rounded up to a whole tick.
    ///
    /// Any delay is accepted. One that reaches past the tick range, such as `Duration::MAX`,
    /// saturates to the end of time: the callback stays pending, can be cancelled, and never
    /// runs (unless the clock reads `Duration::MAX`).
    ///
    /// # Panics
    ///
    /// If [`MAX_PENDING`](crate::MAX_PENDING) callbacks are pending (the wheel is full).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::with_clock(clock.clone());
    /// let h = sched.call_later(Duration::from_millis(3), |n: &mut u32, _| *n += 1);
    /// assert_eq!(sched.when(h), Some(Duration::from_millis(3)));
    /// let forever = sched.call_later(Duration::MAX, |_, _| unreachable!());
    /// assert_eq!(sched.when(forever), Some(Duration::MAX));
    ///
    /// let mut n = 0;
    /// clock.advance(Duration::from_millis(3));
    /// assert_eq!(sched.run_due(&mut n), 1);
    /// assert_eq!(sched.len(), 1);
    /// ```
    pub fn call_later<F>(&mut self, delay: Duration, callback: F) -> TimerHandle
    where
        F: FnOnce(&mut C, &mut Scheduler<C, K>) + 'static,
    {
        let when = self.clock.now().saturating_add(delay);
        self.call_at(when, callback)
    }

    /// Schedules `callback` to run at `when` on the scheduler's time line (see
    /// [`time`](Self::time)), rounded up to a whole tick.
    ///
    /// A time already past is due at once: it runs at the next pass, in deadline order among
    /// the callbacks already due (ties in scheduling order), as asyncio runs negative delays.
    /// Called from inside a running callback, a time at or before that pass's tick waits for
    /// the next pass, as due at the pass's tick (see [`run_due`](Self::run_due)). Times past
    /// the tick range saturate to the end of time, as in [`call_later`](Self::call_later).
    ///
    /// # Panics
    ///
    /// If [`MAX_PENDING`](crate::MAX_PENDING) callbacks are pending (the wheel is full).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::starting_at(Duration::from_secs(5));
    /// let mut sched = Scheduler::with_clock(clock.clone());
    /// let mut log = Vec::new();
    /// sched.call_at(Duration::from_secs(6), |log: &mut Vec<u32>, _| log.push(6));
    /// sched.call_at(Duration::from_secs(2), |log: &mut Vec<u32>, _| log.push(2));
    /// sched.call_at(Duration::from_secs(1), |log: &mut Vec<u32>, _| log.push(1));
    /// assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    /// clock.set(Duration::from_secs(6)).unwrap();
    /// sched.run_due(&mut log);
    /// assert_eq!(log, [1, 2, 6]);
    /// ```
    pub fn call_at<F>(&mut self, when: Duration, callback: F) -> TimerHandle
    where
        F: FnOnce(&mut C, &mut Scheduler<C, K>) + 'static,
    {
        let tick = self.resolution.ticks_ceil(when);
        self.schedule(tick, Box::new(callback))
    }

    /// Schedules `callback` to run at the next pass, whatever the clock says then, behind every
    /// callback already due: it is due at the tick the clock has reached (rounded down, where
    /// `call_later(Duration::ZERO)` rounds up to the next tick boundary).
    ///
    /// Called from a running callback, it runs at the next pass, not the current one.
    ///
    /// # Panics
    ///
    /// If [`MAX_PENDING`](crate::MAX_PENDING) callbacks are pending (the wheel is full).
    ///
    /// ```
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let mut sched = Scheduler::with_clock(ManualClock::new());
    /// sched.call_soon(|n: &mut u32, sched| {
    ///     *n += 1;
    ///     sched.call_soon(|n, _| *n += 10);
    /// });
    /// let mut n = 0;
    /// assert_eq!(sched.run_due(&mut n), 1);
    /// assert_eq!(sched.run_due(&mut n), 1);
    /// assert_eq!(n, 11);
    /// ```
    pub fn call_soon<F>(&mut self, callback: F) -> TimerHandle
    where
        F: FnOnce(&mut C, &mut Scheduler<C, K>) + 'static,
    {
        // Due at the tick the clock has reached: behind every callback already due, and run
        // by the next pass whatever the clock reads then (`call_later(ZERO)` rounds up instead).
        let tick = self.resolution.ticks_floor(self.clock.now());
        self.schedule(tick, Box::new(callback))
    }

    fn schedule(&mut self, tick: u64, callback: Callback<C, K>) -> TimerHandle {
        let tick = self.placement(tick);
        let key = self.wheel.insert_at(tick, Some(callback));
        if tick < self.wheel.now() {
            self.late.insert(tick, key);
        }
        TimerHandle(key)
    }

    /// The tick a callback due at `tick` goes to: `tick`, except during a pass, where a
    /// callback due by the pass's own tick must wait behind a fence for the next pass.
    fn placement(&mut self, tick: u64) -> u64 {
        match &mut self.pass {
            Some(pass) if tick <= pass.tick => {
                if pass.fence.is_none() {
                    pass.fence = Some(self.wheel.insert_at(pass.tick, None));
                }
                pass.tick
            }
            _ => tick,
        }
    }

    /// Cancels a pending callback. Returns `true` iff this call stopped it from running:
    /// `false` if it has already run, is running, or was cancelled before. O(1); O(log n) for
    /// one of n callbacks waiting with a time that was already past when it was scheduled.
    ///
    /// The callback is dropped at once, with everything it captured.
    ///
    /// # Panics
    ///
    /// If dropping what the callback captured panics. The callback is cancelled all the same,
    /// and the scheduler is in order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::with_clock(clock.clone());
    /// let victim = sched.call_later(Duration::from_millis(2), |log: &mut Vec<&str>, _| {
    ///     log.push("victim")
    /// });
    /// // An earlier callback of the same pass cancels it: it does not run.
    /// sched.call_later(Duration::from_millis(1), move |log: &mut Vec<&str>, sched| {
    ///     assert!(sched.cancel(victim));
    ///     log.push("killer");
    /// });
    /// clock.advance(Duration::from_millis(5));
    /// let mut log = Vec::new();
    /// assert_eq!(sched.run_due(&mut log), 1);
    /// assert_eq!(log, ["killer"]);
    /// assert!(!sched.cancel(victim));
    /// ```
    pub fn cancel(&mut self, handle: TimerHandle) -> bool {
        self.late.remove(handle.0);
        // Only callbacks (`Some`) ever get a handle; the fence is never named by one. The
        // callback is dropped after the wheel has let go of it, so a panicking destructor
        // finds the scheduler in order.
        self.wheel.cancel(handle.0).is_some()
    }

    /// Moves a pending callback to `when` on the scheduler's time line, rounded up to a whole
    /// tick as in [`call_at`](Self::call_at): libuv's restart of a running timer, tokio's
    /// `reset`. Returns `true` iff the callback was pending; `false`, and nothing happens, once
    /// it has run (or is running) or was cancelled. The handle stays valid. O(1); O(log n) when
    /// the old or the new time was already past when given, n being how many callbacks wait
    /// with such a time.
    ///
    /// A reschedule counts as scheduling anew: the callback runs behind every callback already
    /// due at its new tick, also when the tick does not change. The same rules as for `call_at`
    /// apply to a time already past, and to a reschedule from inside a running callback (due by
    /// that pass's tick, it waits for the next pass).
    ///
    /// # Panics
    ///
    /// Called from a running callback, if [`MAX_PENDING`](crate::MAX_PENDING) callbacks are
    /// pending and the pass needs one more wheel key for its fence (see
    /// [`run_due`](Self::run_due)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::with_clock(clock.clone());
    /// let a = sched.call_at(Duration::from_millis(5), |log: &mut Vec<&str>, _| log.push("a"));
    /// sched.call_at(Duration::from_millis(5), |log: &mut Vec<&str>, _| log.push("b"));
    /// assert!(sched.reschedule(a, Duration::from_millis(5))); // now behind "b"
    /// clock.advance(Duration::from_millis(5));
    /// let mut log = Vec::new();
    /// sched.run_due(&mut log);
    /// assert_eq!(log, ["b", "a"]);
    /// assert!(!sched.reschedule(a, Duration::from_millis(9))); // it ran: nothing happens
    /// assert!(sched.is_empty());
    /// ```
    pub fn reschedule(&mut self, handle: TimerHandle, when: Duration) -> bool {
        let tick = self.resolution.ticks_ceil(when);
        self.move_to(handle.0, tick)
    }

    /// Moves a pending callback to run once `delay` has elapsed from now on the clock, as
    /// [`call_later`](Self::call_later) would: the idle timeout pushed back on traffic.
    /// Otherwise as [`reschedule`](Self::reschedule): `false`, and nothing happens, for a
    /// callback that has run or was cancelled; the handle stays valid; O(1).
    ///
    /// # Panics
    ///
    /// As [`reschedule`](Self::reschedule).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::with_clock(clock.clone());
    /// let idle = sched.call_later(Duration::from_secs(30), |closed: &mut bool, _| *closed = true);
    /// clock.advance(Duration::from_secs(20));
    /// assert!(sched.reschedule_later(idle, Duration::from_secs(30))); // traffic
    /// assert_eq!(sched.when(idle), Some(Duration::from_secs(50)));
    ///
    /// let mut closed = false;
    /// clock.advance(Duration::from_secs(29));
    /// sched.run_due(&mut closed);
    /// assert!(!closed);
    /// clock.advance(Duration::from_secs(1));
    /// sched.run_due(&mut closed);
    /// assert!(closed);
    /// ```
    pub fn reschedule_later(&mut self, handle: TimerHandle, delay: Duration) -> bool {
        let when = self.clock.now().saturating_add(delay);
        self.reschedule(handle, when)
    }

    fn move_to(&mut self, key: TimerKey, tick: u64) -> bool {
        // Checked first: a stale handle must not make a pass put in a fence.
        if self.wheel.deadline(key).is_none() {
            return false;
        }
        let tick = self.placement(tick);
        self.late.remove(key);
        let moved = self.wheel.reschedule(key, tick);
        debug_assert!(moved, "{key:?} was pending a moment ago");
        if tick < self.wheel.now() {
            self.late.insert(tick, key);
        }
        true
    }

    /// When a pending callback is due, on the scheduler's time line: the start of the tick it
    /// runs at or after (`Duration::MAX` for the end of time). `None` once it has run or been
    /// cancelled. O(1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Resolution, Scheduler};
    ///
    /// let mut sched = Scheduler::<(), _>::with_clock(ManualClock::new());
    /// let h = sched.call_later(Duration::from_micros(1500), |_, _| {});
    /// assert_eq!(sched.when(h), Some(Duration::from_millis(2))); // rounded up to a tick
    /// sched.cancel(h);
    /// assert_eq!(sched.when(h), None);
    /// ```
    pub fn when(&self, handle: TimerHandle) -> Option<Duration> {
        let tick = self.wheel.deadline(handle.0)?;
        Some(self.resolution.duration(tick))
    }

    /// Whether a callback is still waiting to run. O(1).
    ///
    /// ```
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let mut sched = Scheduler::with_clock(ManualClock::new());
    /// let h = sched.call_soon(|_: &mut (), _| {});
    /// assert!(sched.is_pending(h));
    /// sched.run_due(&mut ());
    /// assert!(!sched.is_pending(h));
    /// ```
    pub fn is_pending(&self, handle: TimerHandle) -> bool {
        self.wheel.deadline(handle.0).is_some()
    }

    /// What became of a callback: pending, ran (or is running), or cancelled.
    ///
    /// Handles are `Copy` and cost nothing to keep, so the scheduler does not keep a record
    /// per handle: it remembers a finished callback's fate in the storage the callback used,
    /// until a later callback takes that storage. After that the answer is
    /// [`CallbackStatus::Unknown`]. Storage is reused most recently freed first, so ask before
    /// scheduling more callbacks (or keep the fate yourself: [`cancel`](Self::cancel) returns
    /// whether it stopped the callback). O(1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{CallbackStatus, ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::<(), _>::with_clock(clock.clone());
    /// let ran = sched.call_later(Duration::from_millis(1), |_, _| {});
    /// let cancelled = sched.call_later(Duration::from_millis(9), |_, _| {});
    /// assert_eq!(sched.status(ran), CallbackStatus::Pending);
    /// sched.cancel(cancelled);
    /// clock.advance(Duration::from_millis(5));
    /// sched.run_due(&mut ());
    /// assert_eq!(sched.status(ran), CallbackStatus::Ran);
    /// assert_eq!(sched.status(cancelled), CallbackStatus::Cancelled);
    /// ```
    pub fn status(&self, handle: TimerHandle) -> CallbackStatus {
        match self.wheel.fate(handle.0) {
            Fate::Pending => CallbackStatus::Pending,
            Fate::Fired => CallbackStatus::Ran,
            Fate::Cancelled => CallbackStatus::Cancelled,
            Fate::Unknown => CallbackStatus::Unknown,
        }
    }

    /// How long an event loop may sleep before the next callback is due: zero if one is due
    /// now, `None` if none is pending. Never rounds down past a deadline: after sleeping
    /// this long (or longer), [`run_due`](Self::run_due) runs at least one callback.
    ///
    /// Only callbacks at the end of time pending: a timeout near `Duration::MAX`. Clamp it
    /// before handing it to a system call that takes milliseconds, and round it *up* there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::<(), _>::with_clock(clock.clone());
    /// assert_eq!(sched.next_timeout(), None);
    /// sched.call_later(Duration::from_millis(10), |_, _| {});
    /// clock.advance(Duration::from_micros(2500));
    /// assert_eq!(sched.next_timeout(), Some(Duration::from_micros(7500)));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    /// ```
    pub fn next_timeout(&self) -> Option<Duration> {
        if !self.late.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.is_empty() {
            return None;
        }
        // During a pass this may be the fence's tick: zero, which errs on the safe side.
        let tick = self.wheel.next_deadline()?;
        let due = self.resolution.duration(tick);
        Some(due.saturating_sub(self.clock.now()))
    }

    /// Reads the clock once and runs every callback due by then. Returns how many ran.
    ///
    /// The order is asyncio's: each pending callback is due at the tick it was given (its
    /// time, rounded up), and the pass runs every callback that was pending when it began and
    /// is due at or before the tick the clock has reached, by due tick, ties in scheduling
    /// order (a reschedule counts as scheduling anew). So callbacks whose time was already past
    /// when they were scheduled run in deadline order among the callbacks already due.
    ///
    /// Callbacks scheduled (or rescheduled) while the pass runs wait for the next pass, even
    /// with zero delay or a time already past, so a callback that re-arms itself cannot keep a
    /// pass going forever; one asked for at or before the pass's tick is due at the pass's
    /// tick, so the next pass runs it behind the callbacks due earlier and behind those
    /// scheduled before it for that tick. A callback cancelled or rescheduled by an earlier
    /// callback of the same pass does not run in it. Called from inside a callback, `run_due`
    /// does nothing and returns 0.
    ///
    /// # Panics
    ///
    /// If a callback panics, the panic propagates to the caller once the scheduler is back in
    /// order: the panicking callback counts as run (its handle is inert), every other callback
    /// is still pending or has run exactly once, and the next `run_due` carries on in order.
    ///
    /// Also if [`MAX_PENDING`](crate::MAX_PENDING) callbacks are pending when a callback
    /// schedules or reschedules one due by the pass's tick: the pass then needs one more wheel
    /// key for its fence.
    ///
    /// ```
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    /// use std::time::Duration;
    /// use tierwheel::{ManualClock, Scheduler};
    ///
    /// let clock = ManualClock::new();
    /// let mut sched = Scheduler::with_clock(clock.clone());
    /// sched.call_later(Duration::from_millis(1), |log: &mut Vec<u8>, _| log.push(1));
    /// let bad = sched.call_later(Duration::from_millis(2), |_, _| panic!("bad callback"));
    /// sched.call_later(Duration::from_millis(3), |log: &mut Vec<u8>, _| log.push(3));
    /// clock.advance(Duration::from_millis(5));
    ///
    /// let mut log = Vec::new();
    /// let result = catch_unwind(AssertUnwindSafe(|| sched.run_due(&mut log)));
    /// assert!(result.is_err());
    /// assert_eq!((log.as_slice(), sched.len(), sched.is_pending(bad)), (&[1][..], 1, false));
    /// assert_eq!(sched.run_due(&mut log), 1);
    /// assert_eq!(log, [1, 3]);
    /// ```
    pub fn run_due(&mut self, ctx: &mut C) -> usize {
        if self.pass.is_some() {
            return 0;
        }
        let tick = self
            .resolution
            .ticks_floor(self.clock.now())
            .max(self.wheel.now());
        self.pass = Some(Pass { tick, fence: None });
        let pass = PassGuard { sched: self };
        let mut ran = 0;
        // Late callbacks are due before the wheel's current tick, so before all it holds.
        while let Some(key) = pass.sched.late.pop_first() {
            let callback = pass
                .sched
                .wheel
                .cancel(key)
                .flatten()
                .expect("a late callback is pending in the wheel");
            pass.sched.wheel.record_fired(key);
            ran += 1;
            callback(ctx, pass.sched);
        }
        while let Some(expired) = pass.sched.wheel.poll(tick) {
            debug_assert!(pass.sched.late.is_empty(), "a late callback during a pass");
            let Some(callback) = expired.value else {
                break; // the fence: what follows was scheduled during this pass
            };
            ran += 1;
            callback(ctx, pass.sched);
        }
        ran
    }
}

/// Ends a pass, also when a callback unwinds out of it: removes the fence if it was not
/// reached, so the scheduler is back in order for the caller.
struct PassGuard<'a, C, K: Clock> {
    sched: &'a mut Scheduler<C, K>,
}

impl<C, K: Clock> Drop for PassGuard<'_, C, K> {
    fn drop(&mut self) {
        // After a normal pass the fence, if any, has been polled and this does nothing.
        if let Some(fence) = self.sched.pass.take().and_then(|pass| pass.fence) {
            self.sched.wheel.cancel(fence);
        }
    }
}

impl<C, K: Clock + fmt::Debug> fmt::Debug for Scheduler<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("len", &self.len())
            .field("clock", &self.clock)
            .field("resolution", &self.resolution)
            .field("tick", &self.wheel.now())
            .finish_non_exhaustive()
    }
}
