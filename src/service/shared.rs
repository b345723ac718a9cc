//! What the handles and the driver share: the command queues (one per shard of the calling
//! threads), the clock, and the per-timer record.

use super::state::TimerState;
use super::sync::{lock, thread_index, Arc, AtomicU64, Mutex, MutexGuard, Ordering};
use super::{CallbackPanic, ShutdownError};
use crate::clock::{Clock, ManualClock, MonotonicClock, Resolution};
use crate::TimerHandle;
use crossbeam_utils::sync::Unparker;
use crossbeam_utils::CachePadded;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// A timer's callback slot, type-erased: the callback lives in the timer's own allocation,
/// so scheduling costs one allocation for both.
pub(crate) trait Callback: Send + Sync {
    /// Takes the callback out and runs it; does nothing if it was taken already.
    fn run(&self);
    /// Takes the callback out and drops it unrun; does nothing if it was taken already.
    fn discard(&self);
}

impl<F: FnOnce() + Send> Callback for Mutex<Option<F>> {
    fn run(&self) {
        let callback = lock(self).take();
        if let Some(callback) = callback {
            callback();
        }
    }

    fn discard(&self) {
        let callback = lock(self).take();
        drop(callback);
    }
}

/// A shared timer. A std `Arc` even under loom: loom's `Arc` cannot hold an unsized value,
/// and the count is only a count; the atomics and locks inside are loom's.
pub(crate) type TimerRef = std::sync::Arc<Timer>;

/// One timer as every [`Timeout`](super::Timeout) clone and the driver see it. Whoever decides
/// its fate also disposes of its callback: the driver runs or discards it, the owner of an
/// [`UnfiredTimer`](super::UnfiredTimer) runs or discards it, a winning cancel of a timer the
/// driver has not placed discards it. (The driver may then try to discard it too, finding
/// the timer cancelled; taking the callback out under its lock makes the second try a no-op.)
pub(crate) struct Timer<C: ?Sized = dyn Callback> {
    pub(crate) state: TimerState,
    /// The deadline asked for, on the service's time line.
    pub(crate) deadline: Duration,
    /// The timer's place in the driver's scheduler: `None` until the driver inserts it (and
    /// forever if a cancel won first). Only the driver reads or writes it, so the lock is
    /// never contended; cancellers learn whether it is set from the `PLACED` bit of `state`.
    pub(crate) handle: Mutex<Option<TimerHandle>>,
    /// The callback, until it is run or discarded.
    pub(crate) callback: C,
}

impl Timer {
    /// Drops the callback unrun, wherever this is called. Its captures are user code: a panic
    /// in their destructor is caught and handed back, for the panic hook.
    pub(crate) fn discard_callback(&self) -> Result<(), CallbackPanic> {
        catch_unwind(AssertUnwindSafe(|| self.callback.discard())).map_err(|payload| {
            CallbackPanic {
                payload,
                deadline: self.deadline,
            }
        })
    }
}

/// A request from a handle to the driver. Each is queued with a sequence number, and the
/// driver applies the commands it takes at once in the order of those numbers.
pub(crate) enum Command {
    /// Hand a new timer to the scheduler.
    Insert(TimerRef),
    /// A `cancel` won for this timer after the driver placed it: take it out of the
    /// scheduler and free it.
    Cancel(TimerRef),
    /// A cancelled callback's captures panicked while a `cancel` dropped them: for the
    /// panic hook, which lives on the driver. Boxed: it is rare, and the other commands are
    /// moved on every push, so the enum stays two words and a tag.
    Report(Box<CallbackPanic>),
}

/// A command and its sequence number (see [`Shard::push`]).
pub(crate) type Queued = (u64, Command);

/// How many command queues the callers spread over, by thread: a thread always uses the same
/// one, so two threads scheduling at once rarely share a lock. (Two under loom, which is
/// enough for every race between shards and keeps the models small.)
pub(crate) const SHARDS: usize = if cfg!(tierwheel_loom) { 2 } else { 4 };

/// Commands queued in one shard past which the driver is woken whatever their deadlines: the
/// bound on memory held by commands (cancelled timers included) while the driver sleeps.
pub(crate) const WAKE_BATCH: usize = 1024;

struct Queue {
    commands: Vec<Queued>,
    /// Set once by shutdown; from then on no command is accepted.
    closed: bool,
    /// When the parked driver will wake by itself; zero while it is awake (it looks at every
    /// shard before it parks) or already being woken. The driver sets it in every shard at
    /// once, holding all their locks; a push that wakes the driver clears it in its own
    /// shard only, so each shard wakes a parked driver at most once.
    driver_wakes_at: Duration,
    /// The earliest deadline of the timers queued here since the driver last planned to park,
    /// whether or not they were cancelled since; `Duration::MAX` if none.
    earliest_queued: Duration,
}

impl Queue {
    /// Drops the inserts of timers cancelled before the driver took them, at the end of the
    /// queue: the usual fate of a timeout, cancelled soon after it was set. Called by every
    /// push and by the driver before it parks, so the driver need never hear of such timers
    /// (and does not stay awake for them). Dropping them under the lock runs no user code:
    /// their cancel took the callback out before its `Timeout` (and so the last reference
    /// but these) could be dropped.
    fn drop_cancelled_tail(&mut self) {
        while let Some((_, Command::Insert(last))) = self.commands.last() {
            if !last.state.is_cancelled() {
                break;
            }
            self.commands.pop();
        }
    }
}

/// What every shard and the driver share.
struct Common {
    /// The next command's sequence number.
    sequence: CachePadded<AtomicU64>,
    /// Wakes the driver thread; `None` when a manual driver is stepped by hand.
    unparker: Option<Unparker>,
}

impl Common {
    fn wake(&self) {
        if let Some(unparker) = &self.unparker {
            unparker.unpark();
        }
    }
}

/// One command queue. A [`Timeout`](super::Timeout) keeps the shard its timer's insert went
/// to: its cancel queues a `Cancel` there if the driver placed the timer.
pub(crate) struct Shard {
    queue: Mutex<Queue>,
    common: Arc<Common>,
}

impl Shard {
    /// Queues a new timer. The one error: the service has shut down.
    pub(crate) fn schedule<F>(
        &self,
        deadline: Duration,
        callback: F,
    ) -> Result<TimerRef, ShutdownError>
    where
        F: FnOnce() + Send + 'static,
    {
        let timer: TimerRef = std::sync::Arc::new(Timer {
            state: TimerState::new(),
            deadline,
            handle: Mutex::new(None),
            callback: Mutex::new(Some(callback)),
        });
        let command = Command::Insert(TimerRef::clone(&timer));
        match self.push(command, deadline) {
            Ok(()) => Ok(timer),
            Err(_) => Err(ShutdownError),
        }
    }

    /// Tells the driver that a cancel won for `timer`, so it frees the timer at once. After
    /// shutdown there is nothing to tell: the final pass drops every cancelled timer.
    pub(crate) fn cancelled(&self, timer: &TimerRef) {
        let _ = self.push(Command::Cancel(TimerRef::clone(timer)), Duration::MAX);
    }

    /// Hands a panic caught off the driver to the panic hook, on the driver, which is woken
    /// for it. After shutdown it is dropped (with care: its payload is user code too).
    pub(crate) fn report(&self, panic: CallbackPanic) {
        if let Err(refused) = self.push(Command::Report(Box::new(panic)), Duration::ZERO) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(refused)));
        }
    }

    /// Appends a command due at `due`, numbered from the service-wide sequence under this
    /// shard's lock (so numbers rise along each shard, and along every chain of calls ordered
    /// by happens-before, whatever shards they use). Wakes the parked driver if it would
    /// otherwise sleep past `due`, or if [`WAKE_BATCH`] commands wait in this shard; an awake
    /// driver looks at every shard before it parks, so it needs no wake. A refused command is
    /// handed back, to be dropped outside the lock.
    fn push(&self, command: Command, due: Duration) -> Result<(), Command> {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return Err(command);
        }
        queue.drop_cancelled_tail();
        let seq = self.common.sequence.fetch_add(1, Ordering::Relaxed);
        queue.commands.push((seq, command));
        queue.earliest_queued = queue.earliest_queued.min(due);
        let wake = !queue.driver_wakes_at.is_zero()
            && (due < queue.driver_wakes_at || queue.commands.len() >= WAKE_BATCH);
        if wake {
            queue.driver_wakes_at = Duration::ZERO;
        }
        drop(queue);
        if wake {
            self.common.wake();
        }
        Ok(())
    }
}

/// The service's time line: the real monotonic clock, or one moved by a
/// [`ManualDriver`](super::ManualDriver).
enum ServiceClock {
    Real(MonotonicClock),
    Manual(ManualClock),
}

/// State shared by every handle and the driver.
pub(crate) struct Shared {
    shards: [Arc<CachePadded<Shard>>; SHARDS],
    common: Arc<Common>,
    clock: ServiceClock,
    resolution: Resolution,
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
        let common = Arc::new(Common {
            sequence: CachePadded::new(AtomicU64::new(0)),
            unparker,
        });
        let shards = std::array::from_fn(|_| {
            Arc::new(CachePadded::new(Shard {
                queue: Mutex::new(Queue {
                    commands: Vec::new(),
                    closed: false,
                    driver_wakes_at: Duration::ZERO,
                    earliest_queued: Duration::MAX,
                }),
                common: Arc::clone(&common),
            }))
        });
        Shared {
            shards,
            common,
            clock,
            resolution,
        }
    }

    /// The calling thread's shard.
    pub(crate) fn local_shard(&self) -> &Arc<CachePadded<Shard>> {
        &self.shards[thread_index() % SHARDS]
    }

    /// Every shard's lock, taken in shard order (callers hold one at a time, so this never
    /// deadlocks). Holding them all gives the driver a consistent cut of the queues: a
    /// command it sees was pushed after every command it does not see from the same chain
    /// of happens-before, never before.
    fn lock_all(&self) -> [MutexGuard<'_, Queue>; SHARDS] {
        std::array::from_fn(|i| lock(&self.shards[i].queue))
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

    /// The driver is about to park until `wheel_wakes_at` on the time line, the next deadline
    /// in its scheduler (`Duration::MAX`: none). Returns when it must wake instead: no later
    /// than that, and no later than the earliest deadline queued since it last planned to
    /// park, even if that timer was cancelled since; `None` if commands arrived since it last
    /// took them, so it must not park.
    ///
    /// Waking early is always allowed; waking late never is. Parking until a recently queued
    /// deadline costs the driver at most one wake for nothing, and spares the callers one
    /// unpark for every later timer due after it: a stream of timers that are scheduled and
    /// soon cancelled (the usual fate of a timeout) would otherwise wake the driver for each
    /// of them, since none of them reaches the scheduler to lower its next deadline.
    ///
    /// `now` is the driver's last clock reading: a queued deadline at or before it is no
    /// reason to wake (that timer, if still pending, is in the scheduler and due already).
    pub(crate) fn plan_park(&self, now: Duration, wheel_wakes_at: Duration) -> Option<Duration> {
        let mut queues = self.lock_all();
        let mut earliest_queued = Duration::MAX;
        let mut busy = false;
        for queue in &mut queues {
            queue.drop_cancelled_tail();
            let earliest = std::mem::replace(&mut queue.earliest_queued, Duration::MAX);
            earliest_queued = earliest_queued.min(earliest);
            busy |= queue.closed || !queue.commands.is_empty();
        }
        if busy {
            return None;
        }
        // Rounded up to its tick, where the scheduler would fire it: no wake before that.
        let resolution = self.resolution;
        let earliest_queued = resolution.duration(resolution.ticks_ceil(earliest_queued));
        let wake_at = if earliest_queued > now {
            wheel_wakes_at.min(earliest_queued)
        } else {
            wheel_wakes_at
        };
        // Never zero: that means awake.
        let planned = wake_at.max(Duration::from_nanos(1));
        for queue in &mut queues {
            queue.driver_wakes_at = planned;
        }
        Some(wake_at)
    }

    /// Moves every shard's queued commands into `batch` (which must be empty), in sequence
    /// order, and reports whether the queue is closed. Once this returns true, `batch` holds
    /// the last commands there will be.
    pub(crate) fn take_commands(&self, batch: &mut Vec<Queued>) -> bool {
        debug_assert!(batch.is_empty(), "batch not drained: {} left", batch.len());
        let mut queues = self.lock_all();
        let mut sources = 0;
        for queue in &mut queues {
            queue.driver_wakes_at = Duration::ZERO;
            if !queue.commands.is_empty() {
                sources += 1;
                batch.append(&mut queue.commands);
            }
        }
        let closed = queues.iter().all(|queue| queue.closed);
        drop(queues);
        if sources > 1 {
            // Each shard's run is in order already: a merge of sorted runs.
            batch.sort_by_key(|&(seq, _)| seq);
        }
        closed
    }

    /// Refuses every command from now on. True iff this call closed the queue.
    pub(crate) fn close(&self) -> bool {
        let mut queues = self.lock_all();
        let first = !queues[0].closed;
        for queue in &mut queues {
            queue.closed = true;
        }
        drop(queues);
        self.common.wake();
        first
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.shards[0].queue).closed
    }
}

/// A tick as the builder takes it: zero is taken as 1 ns, and a tick beyond `u64::MAX`
/// nanoseconds (584 years) as `u64::MAX` nanoseconds.
pub(crate) fn resolution(tick: Duration) -> Resolution {
    let nanos = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
    Resolution::from_nanos(nanos).unwrap_or(Resolution::NANOSECOND)
}

#[cfg(all(test, not(tierwheel_loom)))]
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
