//! What the handles and the driver share: the command queue, the clock, and the per-timer
//! record.

use super::state::TimerState;
use super::sync::{lock, Arc, Mutex};
use super::ShutdownError;
use crate::TimerKey;
use crossbeam_utils::sync::Unparker;
use std::time::{Duration, Instant};

/// A callback as the service stores it.
pub(crate) type Callback = Box<dyn FnOnce() + Send + 'static>;

/// One timer as every [`Timeout`](super::Timeout) clone and the driver see it.
pub(crate) struct Timer {
    pub(crate) state: TimerState,
    /// The deadline asked for, on the service's time line.
    pub(crate) deadline: Duration,
    /// Where the timer sits in the driver's wheel. Only the driver reads or writes it (set on
    /// insertion, taken when a cancel is processed); the lock is never contended.
    pub(crate) key: Mutex<Option<TimerKey>>,
}

/// A request from a handle to the driver, processed in the order it was queued.
pub(crate) enum Command {
    /// Put a new timer in the wheel at `tick`.
    Insert {
        timer: Arc<Timer>,
        tick: u64,
        callback: Callback,
    },
    /// A `cancel` won for this timer: take it out of the wheel and free it.
    Cancel(Arc<Timer>),
}

struct Queue {
    commands: Vec<Command>,
    /// Set once by shutdown; from then on no command is accepted.
    closed: bool,
}

/// The service's time line: the real monotonic clock, or one moved by a
/// [`ManualDriver`](super::ManualDriver).
enum Clock {
    Real(Instant),
    Manual(Mutex<Duration>),
}

/// State shared by every handle and the driver.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    clock: Clock,
    /// One tick, in nanoseconds (at least 1).
    tick_nanos: u64,
    /// Wakes the driver thread; `None` when a manual driver is stepped by hand.
    unparker: Option<Unparker>,
}

impl Shared {
    pub(crate) fn real(tick: Duration, unparker: Unparker) -> Self {
        Self::with_clock(Clock::Real(Instant::now()), tick, Some(unparker))
    }

    pub(crate) fn manual(tick: Duration) -> Self {
        Self::with_clock(Clock::Manual(Mutex::new(Duration::ZERO)), tick, None)
    }

    fn with_clock(clock: Clock, tick: Duration, unparker: Option<Unparker>) -> Self {
        Shared {
            queue: Mutex::new(Queue {
                commands: Vec::new(),
                closed: false,
            }),
            clock,
            tick_nanos: tick_nanos(tick),
            unparker,
        }
    }

    /// Time elapsed on the service's time line.
    pub(crate) fn time(&self) -> Duration {
        match &self.clock {
            Clock::Real(start) => start.elapsed(),
            Clock::Manual(now) => *lock(now),
        }
    }

    /// Moves a manual clock forward (never back).
    pub(crate) fn set_manual_time(&self, to: Duration) {
        if let Clock::Manual(now) = &self.clock {
            let mut now = lock(now);
            *now = (*now).max(to);
        }
    }

    /// The real clock's origin, if the clock is real.
    pub(crate) fn start(&self) -> Option<Instant> {
        match &self.clock {
            Clock::Real(start) => Some(*start),
            Clock::Manual(_) => None,
        }
    }

    pub(crate) fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick_nanos)
    }

    /// The first tick at or after `deadline`: rounding up, so a timer never fires early.
    pub(crate) fn deadline_tick(&self, deadline: Duration) -> u64 {
        ticks_ceil(deadline, self.tick_nanos)
    }

    /// The last tick that has fully begun at `time`.
    pub(crate) fn elapsed_tick(&self, time: Duration) -> u64 {
        let ticks = time.as_nanos() / u128::from(self.tick_nanos);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// Where tick `tick` begins on the time line, saturating at `Duration::MAX`.
    pub(crate) fn tick_start(&self, tick: u64) -> Duration {
        let nanos = u128::from(tick) * u128::from(self.tick_nanos);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        // Always below 10^9, so the cast is exact.
        let sub = (nanos % 1_000_000_000) as u32;
        Duration::new(secs, sub)
    }

    /// Queues a new timer. The one error: the service has shut down.
    pub(crate) fn schedule(
        &self,
        deadline: Duration,
        callback: Callback,
    ) -> Result<Arc<Timer>, ShutdownError> {
        let timer = Arc::new(Timer {
            state: TimerState::new(),
            deadline,
            key: Mutex::new(None),
        });
        let tick = self.deadline_tick(deadline);
        let command = Command::Insert {
            timer: Arc::clone(&timer),
            tick,
            callback,
        };
        match self.push(command) {
            Ok(()) => Ok(timer),
            Err(_) => Err(ShutdownError),
        }
    }

    /// Tells the driver that a cancel won for `timer`, so it frees the timer at once. After
    /// shutdown there is nothing to tell: the final pass drops every cancelled timer.
    pub(crate) fn cancelled(&self, timer: &Arc<Timer>) {
        let _ = self.push(Command::Cancel(Arc::clone(timer)));
    }

    /// Appends a command and wakes the driver if the queue was empty. The driver drains the
    /// whole queue on every wake, so a non-empty queue always has a wake on its way: one
    /// unpark per batch, not per command. A refused command is handed back, to be dropped
    /// outside the lock.
    fn push(&self, command: Command) -> Result<(), Command> {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return Err(command);
        }
        let was_empty = queue.commands.is_empty();
        queue.commands.push(command);
        drop(queue);
        if was_empty {
            self.wake();
        }
        Ok(())
    }

    pub(crate) fn wake(&self) {
        if let Some(unparker) = &self.unparker {
            unparker.unpark();
        }
    }

    /// Swaps the queued commands into `batch` (which must be empty) and reports whether the
    /// queue is closed. Once this returns true, `batch` holds the last commands there will be.
    pub(crate) fn take_commands(&self, batch: &mut Vec<Command>) -> bool {
        debug_assert!(batch.is_empty(), "batch not drained: {} left", batch.len());
        let mut queue = lock(&self.queue);
        std::mem::swap(&mut queue.commands, batch);
        queue.closed
    }

    /// Refuses every command from now on. True iff this call closed the queue.
    pub(crate) fn close(&self) -> bool {
        let mut queue = lock(&self.queue);
        let first = !queue.closed;
        queue.closed = true;
        drop(queue);
        self.wake();
        first
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }
}

/// A tick length in nanoseconds: a zero tick is taken as 1 ns, and a tick beyond `u64::MAX`
/// nanoseconds (584 years) as `u64::MAX` nanoseconds.
pub(crate) fn tick_nanos(tick: Duration) -> u64 {
    u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// `duration` in ticks of `tick_nanos`, rounded up, saturating at `u64::MAX`.
pub(crate) fn ticks_ceil(duration: Duration, tick_nanos: u64) -> u64 {
    let ticks = duration.as_nanos().div_ceil(u128::from(tick_nanos));
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up_and_saturate() {
        let ms = tick_nanos(Duration::from_millis(1));
        assert_eq!(ticks_ceil(Duration::ZERO, ms), 0);
        assert_eq!(ticks_ceil(Duration::from_nanos(1), ms), 1);
        assert_eq!(ticks_ceil(Duration::from_millis(1), ms), 1);
        assert_eq!(ticks_ceil(Duration::from_nanos(1_000_001), ms), 2);
        assert_eq!(ticks_ceil(Duration::MAX, ms), 18_446_744_073_709_552);
        assert_eq!(ticks_ceil(Duration::MAX, 1), u64::MAX);
        assert_eq!(tick_nanos(Duration::ZERO), 1);
        assert_eq!(tick_nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn tick_boundaries_never_fire_early() {
        let shared = Shared::manual(Duration::from_micros(7));
        for nanos in [0u64, 1, 6_999, 7_000, 7_001, 1 << 40, u64::MAX] {
            let deadline = Duration::from_nanos(nanos);
            let tick = shared.deadline_tick(deadline);
            assert!(
                shared.tick_start(tick) >= deadline,
                "{nanos} ns fires early"
            );
            assert_eq!(shared.elapsed_tick(shared.tick_start(tick)), tick);
            if tick > 0 {
                assert!(
                    shared.tick_start(tick - 1) < deadline,
                    "{nanos} ns fires late"
                );
            }
        }
    }
}
