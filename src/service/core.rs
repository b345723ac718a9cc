//! What every handle and the driver share: the service's clock, and one timing wheel of timers
//! behind a lock that callers take themselves. Scheduling and cancelling are O(1) wheel
//! operations under that lock on the caller's thread: no command is queued, no thread is
//! woken unless the new timer is due before the driver would wake anyway. A later reset of a
//! pending timer takes no lock at all (see `entry.rs`).

use super::entry::{Action, Due, Entry, Extend, LAST_TICK};
use super::sync::{lock, Mutex};
use super::{CallbackPanic, ShutdownError};
use crate::clock::{Clock, ManualClock, MonotonicClock, Resolution};
use crate::TimerWheel;
use crossbeam_utils::sync::Unparker;
use std::time::{Duration, Instant};

/// A timer as its owners, the wheel and the driver hold it. A std `Arc` even under loom: it
/// is only a count; the atomics and locks inside are loom's.
pub(crate) type EntryRef = std::sync::Arc<Entry>;

/// The service's time line: the real monotonic clock, or one moved by a
/// [`ManualDriver`](super::ManualDriver).
enum ServiceClock {
    Real(MonotonicClock),
    Manual(ManualClock),
}

/// Everything behind the lock.
struct Core {
    /// Pending timers, at their registered tick (a later reset may have moved the true one).
    wheel: TimerWheel<EntryRef>,
    /// Entries no timer uses: a sleep made after one was dropped costs no allocation.
    pool: Vec<EntryRef>,
    /// Set once by shutdown: from then on nothing is scheduled.
    closed: bool,
    /// The tick the parked driver wakes at by itself (`u64::MAX`: only when woken); 0 while
    /// it is awake (it looks at the wheel again before it parks).
    wakes_at: u64,
    /// Panics caught off the driver (a cancelled callback's captures panicking while dropped),
    /// for the panic hook, which lives on the driver.
    reports: Vec<CallbackPanic>,
}

/// State shared by every handle and the driver.
pub(crate) struct Shared {
    core: Mutex<Core>,
    clock: ServiceClock,
    /// The instant the time line starts at.
    origin: Instant,
    resolution: Resolution,
    /// Wakes the driver thread; `None` when a manual driver is stepped by hand.
    unparker: Option<Unparker>,
}

/// What the driver found in one pass.
pub(crate) struct Pass {
    /// The service has shut down: time to hand back the unfired timers.
    pub(crate) closed: bool,
    /// Panics to report.
    pub(crate) reports: Vec<CallbackPanic>,
}

impl Shared {
    pub(crate) fn real(resolution: Resolution, unparker: Unparker) -> Self {
        let clock = MonotonicClock::new();
        let origin = clock.origin();
        Self::with_clock(
            ServiceClock::Real(clock),
            origin,
            resolution,
            Some(unparker),
        )
    }

    pub(crate) fn manual(resolution: Resolution) -> Self {
        let clock = ServiceClock::Manual(ManualClock::new());
        Self::with_clock(clock, Instant::now(), resolution, None)
    }

    fn with_clock(
        clock: ServiceClock,
        origin: Instant,
        resolution: Resolution,
        unparker: Option<Unparker>,
    ) -> Self {
        Shared {
            core: Mutex::new(Core {
                wheel: TimerWheel::new(),
                pool: Vec::new(),
                closed: false,
                wakes_at: 0,
                reports: Vec::new(),
            }),
            clock,
            origin,
            resolution,
            unparker,
        }
    }

    /// Time elapsed on the service's time line.
    pub(crate) fn time(&self) -> Duration {
        match &self.clock {
            ServiceClock::Real(clock) => clock.now(),
            ServiceClock::Manual(clock) => clock.now(),
        }
    }

    /// Moves a manual clock to `to`; never back.
    pub(crate) fn set_manual_time(&self, to: Duration) {
        if let ServiceClock::Manual(clock) = &self.clock {
            // An earlier time is refused: the time line never runs backwards.
            let _ = clock.set(to);
        }
    }

    /// The point of the time line an instant falls on (zero for instants before the start).
    pub(crate) fn time_of(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.origin)
    }

    /// The instant a point of the time line falls on, saturating at the last instant the
    /// platform can represent near `origin + time` (far beyond any deadline that fires).
    pub(crate) fn instant_of(&self, time: Duration) -> Instant {
        far_instant(self.origin, time)
    }

    /// The instant `delay` from now on the service's time line, saturating like `instant_of`.
    pub(crate) fn instant_after(&self, delay: Duration) -> Instant {
        match &self.clock {
            ServiceClock::Real(_) => far_instant(Instant::now(), delay),
            ServiceClock::Manual(clock) => {
                far_instant(self.origin, clock.now().saturating_add(delay))
            }
        }
    }

    /// The instant "now" on the service's time line.
    pub(crate) fn now_instant(&self) -> Instant {
        match &self.clock {
            ServiceClock::Real(_) => Instant::now(),
            ServiceClock::Manual(clock) => far_instant(self.origin, clock.now()),
        }
    }

    pub(crate) fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The tick a deadline on the time line fires at: rounded up (never early), saturated at
    /// the last tick.
    pub(crate) fn tick_of(&self, deadline: Duration) -> u64 {
        self.resolution.ticks_ceil(deadline).min(LAST_TICK)
    }

    /// The tick the clock has reached.
    pub(crate) fn now_tick(&self) -> u64 {
        self.resolution.ticks_floor(self.time())
    }

    /// Schedules a new timer due at `deadline` on the time line, doing `action`. The one error:
    /// the service has shut down (`action` is then dropped, outside the lock).
    pub(crate) fn schedule(
        &self,
        deadline: Duration,
        action: Action,
    ) -> Result<EntryRef, ShutdownError> {
        let tick = self.tick_of(deadline);
        let mut core = lock(&self.core);
        if core.closed {
            drop(core);
            drop(action);
            return Err(ShutdownError);
        }
        let entry = core
            .pool
            .pop()
            .unwrap_or_else(|| EntryRef::new(Entry::new()));
        entry.arm(tick, deadline, action);
        self.file(&mut core, &entry, tick);
        Ok(entry)
    }

    /// Files `entry`, pending at `tick`, in the wheel, and wakes the driver if it would sleep
    /// past it.
    fn file(&self, core: &mut Core, entry: &EntryRef, tick: u64) {
        let key = core.wheel.insert_at(tick, EntryRef::clone(entry));
        entry.set_key(key);
        self.wake_for(core, tick);
    }

    /// Wakes the parked driver if it would sleep past `tick`.
    fn wake_for(&self, core: &mut Core, tick: u64) {
        if tick < core.wakes_at {
            // Later timers due before the driver wakes need no wake of their own.
            core.wakes_at = tick;
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(unparker) = &self.unparker {
            unparker.unpark();
        }
    }

    /// Files again a timer of the caller's (a sleep whose last deadline passed or that never
    /// was filed) as a pending timer due at `deadline`, doing `action`. Reuses `entry` if the
    /// caller holds the only reference, else takes another.
    pub(crate) fn rearm(
        &self,
        entry: &mut EntryRef,
        deadline: Duration,
        action: Action,
    ) -> Result<(), ShutdownError> {
        let tick = self.tick_of(deadline);
        let mut core = lock(&self.core);
        if core.closed {
            drop(core);
            drop(action);
            return Err(ShutdownError);
        }
        if EntryRef::strong_count(entry) > 1 {
            // The driver still holds it (it fired and is being woken): use another.
            *entry = core
                .pool
                .pop()
                .unwrap_or_else(|| EntryRef::new(Entry::new()));
        }
        entry.arm(tick, deadline, action);
        self.file(&mut core, entry, tick);
        Ok(())
    }

    /// Moves a pending timer to `deadline`: a lock-free store if that is not earlier than its
    /// deadline, else a move in the wheel under the lock. False if it is no longer pending.
    pub(crate) fn reset(&self, entry: &EntryRef, deadline: Duration) -> bool {
        let tick = self.tick_of(deadline);
        match entry.extend(tick) {
            Extend::Done => true,
            Extend::Finished => false,
            Extend::Earlier => self.reset_earlier(entry, tick),
        }
    }

    /// `reset` to an earlier tick: the wheel must move the timer, or it would fire late.
    #[cold]
    fn reset_earlier(&self, entry: &EntryRef, tick: u64) -> bool {
        let mut core = lock(&self.core);
        // Under the lock the driver cannot be firing it; a cancel still can (lock-free).
        if !entry.move_to(tick) {
            return false;
        }
        let key = entry.key().expect("a pending timer is filed");
        if core.wheel.reschedule(key, tick) {
            self.wake_for(&mut core, tick);
        }
        // Otherwise the driver has taken it out of the wheel as due and is about to fire it:
        // an earlier tick is due too.
        true
    }

    /// Cancels a pending timer: true iff this call decided its fate. Its action is dropped on
    /// this thread (a panic while dropping a callback's captures goes to the hook), and its
    /// wheel entry freed at once.
    pub(crate) fn cancel(&self, entry: &EntryRef) -> bool {
        if !entry.cancel() {
            return false;
        }
        let action = entry.take_action();
        let mut core = lock(&self.core);
        Self::unfile(&mut core, entry);
        drop(core);
        if let Action::Call(callback) = action {
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(callback)));
            if let Err(payload) = dropped {
                self.report(CallbackPanic {
                    payload,
                    deadline: entry.asked(),
                });
            }
        }
        true
    }

    /// Cancels a sleep's pending timer, if it still is, and gives its entry back for reuse.
    pub(crate) fn release(&self, entry: EntryRef) {
        if !entry.cancel() {
            return;
        }
        let waker = entry.take_action();
        let mut core = lock(&self.core);
        Self::unfile(&mut core, &entry);
        if EntryRef::strong_count(&entry) == 1 {
            core.pool.push(entry);
        }
        drop(core);
        drop(waker);
    }

    /// Takes a cancelled timer out of the wheel, if the driver has not taken it out already.
    fn unfile(core: &mut Core, entry: &EntryRef) {
        if let Some(key) = entry.key() {
            // A stale key (the driver took the timer out and dropped it) names nothing.
            drop(core.wheel.cancel(key));
        }
    }

    /// Hands a panic caught off the driver to the panic hook, on the driver, which is woken
    /// for it. After shutdown it is dropped (with care: its payload is user code too).
    pub(crate) fn report(&self, panic: CallbackPanic) {
        let mut core = lock(&self.core);
        if core.closed {
            drop(core);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(panic)));
            return;
        }
        core.reports.push(panic);
        core.wakes_at = 0;
        drop(core);
        self.wake();
    }

    /// The driver's pass at tick `now`: moves every timer due by then out of the wheel into
    /// `due`, in firing order (a timer a later reset moved goes back in at its true tick, and
    /// comes out there if that is due too), gives back for reuse the entries in `done` nobody
    /// else holds, and takes the panics to report. The timers in `due` are still pending:
    /// the driver fires each just before performing its action, so a callback can still
    /// cancel a timer due in the same pass. The driver is awake until it calls
    /// [`plan_park`](Self::plan_park).
    pub(crate) fn pass(&self, now: u64, due: &mut Vec<EntryRef>, done: &mut Vec<EntryRef>) -> Pass {
        let mut core = lock(&self.core);
        core.wakes_at = 0;
        for entry in done.drain(..) {
            if EntryRef::strong_count(&entry) == 1 {
                core.pool.push(entry);
            }
        }
        let reports = std::mem::take(&mut core.reports);
        if core.closed {
            return Pass {
                closed: true,
                reports,
            };
        }
        while let Some(expired) = core.wheel.poll(now) {
            let entry = expired.value;
            match entry.due(expired.deadline) {
                Due::Later(tick) => Self::refile(&mut core, entry, tick),
                Due::Now => due.push(entry),
                Due::Gone => {
                    if EntryRef::strong_count(&entry) == 1 {
                        core.pool.push(entry);
                    }
                }
            }
        }
        Pass {
            closed: false,
            reports,
        }
    }

    /// Files again, at its true tick, a timer the wheel gave up at an earlier one.
    fn refile(core: &mut Core, entry: EntryRef, tick: u64) {
        let holder = EntryRef::clone(&entry);
        let key = core.wheel.insert_at(tick, entry);
        holder.set_key(key);
    }

    /// Files again a due timer that a reset moved past the pass's tick before the driver
    /// fired it. Even after shutdown: the driver hands it back with the other unfired timers.
    pub(crate) fn refile_late(&self, entry: EntryRef, tick: u64) {
        let mut core = lock(&self.core);
        Self::refile(&mut core, entry, tick);
    }

    /// The driver is about to park: returns the tick to wake at (`None`: until woken), or
    /// `Err` if it must not park (the service closed, or panics wait to be reported).
    pub(crate) fn plan_park(&self) -> Result<Option<u64>, ()> {
        let mut core = lock(&self.core);
        if core.closed || !core.reports.is_empty() {
            return Err(());
        }
        let next = core.wheel.next_deadline();
        core.wakes_at = next.unwrap_or(u64::MAX).max(1);
        Ok(next)
    }

    /// The earliest tick a pending timer is filed at.
    pub(crate) fn next_tick(&self) -> Option<u64> {
        lock(&self.core).wheel.next_deadline()
    }

    /// Timers pending (cancelled ones are gone at once).
    pub(crate) fn pending(&self) -> usize {
        lock(&self.core).wheel.len()
    }

    /// Refuses every schedule from now on and wakes the driver. True iff this call closed the
    /// service.
    pub(crate) fn close(&self) -> bool {
        let mut core = lock(&self.core);
        let first = !core.closed;
        core.closed = true;
        core.wakes_at = 0;
        drop(core);
        self.wake();
        first
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.core).closed
    }

    /// After `close`: claims every timer still pending, in the order they would have fired,
    /// and hands them to `each` (timers a cancel won are dropped instead), and empties the
    /// pool.
    pub(crate) fn drain_unfired(&self, mut each: impl FnMut(EntryRef)) {
        let mut core = lock(&self.core);
        debug_assert!(core.closed, "draining an open service");
        let mut claimed = Vec::with_capacity(core.wheel.len());
        while let Some(expired) = core.wheel.poll(u64::MAX) {
            let entry = expired.value;
            match entry.due(expired.deadline) {
                // Reset later: it belongs further on in the order.
                Due::Later(tick) => Self::refile(&mut core, entry, tick),
                Due::Now => {
                    if entry.claim_unfired() {
                        claimed.push(entry);
                    }
                }
                Due::Gone => {}
            }
        }
        core.pool = Vec::new();
        drop(core);
        claimed.into_iter().for_each(&mut each);
    }
}

/// `origin + time`, or, past what the platform's `Instant` can hold, the farthest instant it
/// can in steps of halving (deadlines that far never fire anyway).
pub(super) fn far_instant(origin: Instant, time: Duration) -> Instant {
    if let Some(instant) = origin.checked_add(time) {
        return instant;
    }
    let mut step = time;
    let mut instant = origin;
    while !step.is_zero() {
        match instant.checked_add(step) {
            Some(later) => instant = later,
            None => step /= 2,
        }
        if instant - origin >= time {
            break;
        }
    }
    instant
}

#[cfg(all(test, not(tierwheel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn far_instants_saturate() {
        let origin = Instant::now();
        assert_eq!(far_instant(origin, Duration::ZERO), origin);
        assert_eq!(
            far_instant(origin, Duration::from_secs(5)),
            origin + Duration::from_secs(5)
        );
        let far = far_instant(origin, Duration::MAX);
        assert!(far > origin + Duration::from_secs(100 * 365 * 86_400));
    }
}
