//! What the handles and the driver share: the command queue, the clock, and the per-timer
//! record.

use super::state::TimerState;
use super::sync::{lock, Arc, Mutex};
use super::ShutdownError;
use crate::clock::{Clock, ManualClock, MonotonicClock, Resolution};
use crate::TimerHandle;
use crossbeam_utils::sync::Unparker;
use std::time::Duration;

/// A callback as the service stores it.
pub(crate) type Callback = Box<dyn FnOnce() + Send + 'static>;

/// One timer as every [`Timeout`](super::Timeout) clone and the driver see it.
pub(crate) struct Timer {
    pub(crate) state: TimerState,
    /// The deadline asked for, on the service's time line.
    pub(crate) deadline: Duration,
    /// The timer's place in the driver's scheduler: `None` until the driver inserts it (and
    /// forever if a cancel won first). The driver writes it; a winning cancel reads it once,
    /// to learn whether the driver must be told. The lock is held for a few instructions.
    pub(crate) handle: Mutex<Option<TimerHandle>>,
}

/// A request from a handle to the driver, processed in the order it was queued.
pub(crate) enum Command {
    /// Hand a new timer to the scheduler.
    Insert {
        timer: Arc<Timer>,
        callback: Callback,
    },
    /// A `cancel` won for this timer: take it out of the wheel and free it.
    Cancel(Arc<Timer>),
}

/// Queued commands past which the driver is woken whatever their deadlines: the bound on
/// memory held by commands (cancelled timers included) while the driver sleeps.
pub(crate) const WAKE_BATCH: usize = 1024;

struct Queue {
    commands: Vec<Command>,
    /// Set once by shutdown; from then on no command is accepted.
    closed: bool,
    /// The tick the parked driver will wake at by itself; 0 while it is awake (it looks at
    /// the queue before parking) or already being woken.
    driver_wakes_at: u64,
}

/// The service's time line: the real monotonic clock, or one moved by a
/// [`ManualDriver`](super::ManualDriver).
enum ServiceClock {
    Real(MonotonicClock),
    Manual(ManualClock),
}

/// State shared by every handle and the driver.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    clock: ServiceClock,
    resolution: Resolution,
    /// Wakes the driver thread; `None` when a manual driver is stepped by hand.
    unparker: Option<Unparker>,
}

impl Shared {
    pub(crate) fn real(resolution: Resolution, unparker: Unparker) -> Self {
        let clock = ServiceClock::Real(MonotonicClock::new());
        Self::with_clock(clock, resolution, Some(unparker))
    }

    pub(crate) fn manual(resolution: Resolution) -> Self {
        Self::with_clock(ServiceClock::Manual(ManualClock::new()), resolution, None)
    }

    fn with_clock(clock: ServiceClock, resolution: Resolution, unparker: Option<Unparker>) -> Self {
        Shared {
            queue: Mutex::new(Queue {
                commands: Vec::new(),
                closed: false,
                driver_wakes_at: 0,
            }),
            clock,
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

    pub(crate) fn resolution(&self) -> Resolution {
        self.resolution
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
            handle: Mutex::new(None),
        });
        let command = Command::Insert {
            timer: Arc::clone(&timer),
            callback,
        };
        let tick = self.resolution.ticks_ceil(deadline);
        match self.push(command, tick) {
            Ok(()) => Ok(timer),
            Err(_) => Err(ShutdownError),
        }
    }

    /// Tells the driver that a cancel won for `timer`, so it frees the timer at once. After
    /// shutdown there is nothing to tell: the final pass drops every cancelled timer.
    pub(crate) fn cancelled(&self, timer: &Arc<Timer>) {
        let _ = self.push(Command::Cancel(Arc::clone(timer)), u64::MAX);
    }

    /// Appends a command due at `tick` and wakes the parked driver if it would otherwise
    /// sleep past that tick, or if [`WAKE_BATCH`] commands are waiting. An awake driver looks
    /// at the queue before it parks, so it needs no wake. A refused command is handed back,
    /// to be dropped outside the lock.
    fn push(&self, command: Command, tick: u64) -> Result<(), Command> {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return Err(command);
        }
        queue.commands.push(command);
        let wake = queue.driver_wakes_at != 0
            && (tick < queue.driver_wakes_at || queue.commands.len() >= WAKE_BATCH);
        if wake {
            queue.driver_wakes_at = 0;
        }
        drop(queue);
        if wake {
            self.wake();
        }
        Ok(())
    }

    /// The driver is about to park until `tick` (`u64::MAX`: until woken). False if commands
    /// arrived since it last took them: it must not park.
    pub(crate) fn plan_park(&self, tick: u64) -> bool {
        let mut queue = lock(&self.queue);
        if queue.closed || !queue.commands.is_empty() {
            return false;
        }
        // Never 0: that means awake.
        queue.driver_wakes_at = tick.max(1);
        true
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
        queue.driver_wakes_at = 0;
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

/// A tick as the builder takes it: zero is taken as 1 ns, and a tick beyond `u64::MAX`
/// nanoseconds (584 years) as `u64::MAX` nanoseconds.
pub(crate) fn resolution(tick: Duration) -> Resolution {
    let nanos = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
    Resolution::from_nanos(nanos).unwrap_or(Resolution::NANOSECOND)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ticks_clamp() {
        assert_eq!(resolution(Duration::ZERO), Resolution::NANOSECOND);
        assert_eq!(
            resolution(Duration::from_millis(1)),
            Resolution::MILLISECOND
        );
        assert_eq!(
            resolution(Duration::MAX).tick(),
            Duration::from_nanos(u64::MAX)
        );
    }
}
