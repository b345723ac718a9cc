//! The driver: the one place timers are inserted, fired, freed and handed back. [`Core`] owns
//! a [`Scheduler`] and knows nothing of threads; the driver thread ([`run`]) and
//! [`ManualDriver`](super::ManualDriver) both step it.

use super::shared::{Command, Queued, Shared, TimerRef};
use super::sync::{lock, Arc};
use super::{CallbackPanic, PanicHook, UnfiredTimer};
use crate::clock::Clock;
use crate::Scheduler;
use crossbeam_utils::sync::Parker;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// The scheduler's clock: the service's time line, until shutdown sends it to the end of
/// time so that one last pass reaches every timer.
pub(crate) struct DriverClock {
    shared: Arc<Shared>,
    end_of_time: Cell<bool>,
}

impl Clock for DriverClock {
    fn now(&self) -> Duration {
        if self.end_of_time.get() {
            Duration::MAX
        } else {
            self.shared.time()
        }
    }
}

/// The context every scheduler callback gets: what the driver does with a due timer.
pub(crate) struct Driver {
    hook: PanicHook,
    /// Set for the last pass: claim timers and hand them back instead of running them.
    shutting_down: bool,
    unfired: Vec<UnfiredTimer>,
    /// Callbacks run so far.
    fired: usize,
}

impl Driver {
    /// A timer's scheduler callback has come due.
    fn due(&mut self, timer: TimerRef) {
        if self.shutting_down {
            if timer.state.claim_unfired() {
                self.unfired.push(UnfiredTimer { timer });
                return;
            }
        } else if timer.state.start_firing() {
            self.fired += 1;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| timer.callback.run())) {
                self.report(CallbackPanic {
                    payload,
                    deadline: timer.deadline,
                });
            }
            return;
        }
        // A cancel won, and its Cancel command is still queued: free the callback now; the
        // command will find a stale handle.
        self.discard(&timer);
    }

    /// Drops a callback that will never run. Its captures are user code too: a panicking
    /// destructor is reported like a panicking callback.
    fn discard(&mut self, timer: &TimerRef) {
        if let Err(panic) = timer.discard_callback() {
            self.report(panic);
        }
    }

    fn report(&mut self, panic: CallbackPanic) {
        let hook = &mut self.hook;
        // A panicking hook must not take the driver down; its payload is dropped with care too.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(panic))) {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        }
    }
}

pub(crate) struct Core {
    sched: Scheduler<Driver, DriverClock>,
    driver: Driver,
    /// The commands being processed; kept between batches so its buffer is reused.
    batch: Vec<Queued>,
}

impl Core {
    /// Must be built on the thread that steps it: the scheduler is not `Send`.
    pub(crate) fn new(shared: Arc<Shared>, hook: PanicHook) -> Self {
        let resolution = shared.resolution();
        let clock = DriverClock {
            shared,
            end_of_time: Cell::new(false),
        };
        Core {
            sched: Scheduler::with_clock_and_resolution(clock, resolution),
            driver: Driver {
                hook,
                shutting_down: false,
                unfired: Vec::new(),
                fired: 0,
            },
            batch: Vec::new(),
        }
    }

    fn shared(&self) -> &Shared {
        &self.sched.clock().shared
    }

    /// Applies every queued command. True iff the queue is closed, in which case every command
    /// there will ever be has been applied.
    pub(crate) fn apply_commands(&mut self) -> bool {
        let mut batch = std::mem::take(&mut self.batch);
        let closed = self.shared().take_commands(&mut batch);
        for (_, command) in batch.drain(..) {
            self.apply(command);
        }
        self.batch = batch;
        closed
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Insert(timer) => {
                if !timer.state.is_pending() {
                    // Cancelled before the driver saw it: it never enters the scheduler.
                    self.driver.discard(&timer);
                    return;
                }
                let (deadline, owner) = (timer.deadline, TimerRef::clone(&timer));
                let handle = self
                    .sched
                    .call_at(deadline, move |driver: &mut Driver, _| driver.due(owner));
                if timer.state.mark_placed() {
                    *lock(&timer.handle) = Some(handle);
                } else {
                    // A cancel won since the check above, before `PLACED` was set, so it sent
                    // no `Cancel`: freeing the timer falls to the driver, now.
                    self.sched.cancel(handle);
                    self.driver.discard(&timer);
                }
            }
            Command::Cancel(timer) => {
                // A stale handle (the timer came due meanwhile) names nothing.
                let handle = lock(&timer.handle).take();
                if let Some(handle) = handle {
                    debug_assert!(timer.state.is_cancelled(), "freeing a timer no cancel won");
                    self.sched.cancel(handle);
                    self.driver.discard(&timer);
                }
            }
            Command::Report(panic) => self.driver.report(*panic),
        }
    }

    /// Runs every callback due now; returns how many ran.
    pub(crate) fn run_due(&mut self) -> usize {
        let before = self.driver.fired;
        self.sched.run_due(&mut self.driver);
        self.driver.fired - before
    }

    /// How long the driver may sleep: zero when something is due, `None` when nothing is
    /// pending.
    pub(crate) fn next_timeout(&self) -> Option<Duration> {
        self.sched.next_timeout()
    }

    pub(crate) fn pending(&self) -> usize {
        self.sched.len()
    }

    /// After the queue has closed and its last commands are applied: claims every timer still
    /// pending, in the order they would have fired, and hands it back. Timers a cancel won are
    /// freed instead.
    pub(crate) fn unfired(&mut self) -> Vec<UnfiredTimer> {
        debug_assert!(
            self.shared().is_closed(),
            "handing back timers of an open service"
        );
        self.driver.shutting_down = true;
        self.sched.clock().end_of_time.set(true);
        self.sched.run_due(&mut self.driver);
        debug_assert!(
            self.sched.is_empty(),
            "{} timers outlived shutdown",
            self.sched.len()
        );
        std::mem::take(&mut self.driver.unfired)
    }
}

/// The driver thread's body: apply commands, run what is due, park until the next tick or an
/// earlier wake. Returns the timers still pending at shutdown.
pub(crate) fn run(shared: Arc<Shared>, hook: PanicHook, parker: Parker) -> Vec<UnfiredTimer> {
    let mut core = Core::new(shared, hook);
    loop {
        if core.apply_commands() {
            return core.unfired();
        }
        core.run_due();
        let timeout = core.next_timeout();
        if timeout == Some(Duration::ZERO) {
            continue; // already due: the clock moved on during the pass
        }
        let shared = core.shared();
        let now = shared.time();
        let wheel_wakes_at = match timeout {
            // The driver wakes at this or a few microseconds later; a new timer due no earlier
            // needs no wake: it fires when the driver wakes for its own next timer.
            Some(timeout) => now.saturating_add(timeout),
            None => Duration::MAX,
        };
        match shared.plan_park(now, wheel_wakes_at) {
            None => continue,
            Some(Duration::MAX) => parker.park(),
            Some(wake_at) => parker.park_timeout(wake_at.saturating_sub(now)),
        }
    }
}
