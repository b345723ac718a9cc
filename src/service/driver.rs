//! The driver: the one place timers fire and are handed back at shutdown. [`Driver`] knows
//! nothing of threads; the driver thread ([`run`]) and [`ManualDriver`](super::ManualDriver)
//! both step it.

use super::core::{EntryRef, Shared};
use super::entry::{Action, Fire};
use super::sync::Arc;
use super::{CallbackPanic, PanicHook, UnfiredTimer};
use crossbeam_utils::sync::Parker;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// What the driver keeps between passes.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    hook: PanicHook,
    /// Timers that came due in the last pass, whose actions are performed outside the lock.
    due: Vec<EntryRef>,
    /// Timers whose actions were performed, to be given back for reuse at the next pass.
    done: Vec<EntryRef>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, hook: PanicHook) -> Self {
        Driver {
            shared,
            hook,
            due: Vec::new(),
            done: Vec::new(),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Fires every timer due by the tick the clock has reached, and reports the panics caught
    /// meanwhile. Returns how many callbacks ran and sleeps were woken, or `None` once the
    /// service is closed.
    pub(crate) fn step(&mut self) -> Option<usize> {
        let now = self.shared.now_tick();
        let pass = self.shared.pass(now, &mut self.due, &mut self.done);
        for panic in pass.reports {
            self.report(panic);
        }
        if pass.closed {
            return None;
        }
        let mut fired = 0;
        let mut due = std::mem::take(&mut self.due);
        for entry in due.drain(..) {
            match entry.fire(now) {
                Fire::Fired => fired += 1,
                Fire::Refile(tick) => {
                    self.shared.refile_late(entry, tick);
                    continue;
                }
                Fire::Gone => {
                    self.done.push(entry);
                    continue;
                }
            }
            match entry.take_action() {
                Action::Wake(waker) => waker.wake(),
                Action::Call(callback) => {
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(callback)) {
                        self.report(CallbackPanic {
                            payload,
                            deadline: entry.asked(),
                        });
                    }
                }
                Action::None => {}
            }
            self.done.push(entry);
        }
        self.due = due;
        Some(fired)
    }

    fn report(&mut self, panic: CallbackPanic) {
        let hook = &mut self.hook;
        // A panicking hook must not take the driver down; its payload is dropped with care too.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(panic))) {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        }
    }

    /// After the service closed: claims every timer still pending, in the order they would have
    /// fired, and hands back the callbacks; sleeps are woken to find the service gone.
    pub(crate) fn unfired(&mut self) -> Vec<UnfiredTimer> {
        debug_assert!(
            self.shared.is_closed(),
            "handing back timers of an open service"
        );
        let mut unfired = Vec::new();
        self.shared
            .drain_unfired(|entry| match entry.take_action() {
                Action::Call(callback) => {
                    // `UnfiredTimer` runs or drops it; the entry keeps it until then.
                    entry.put_callback(callback);
                    unfired.push(UnfiredTimer { entry });
                }
                Action::Wake(waker) => waker.wake(),
                Action::None => {}
            });
        // Panics reported after the last pass (a cancel racing shutdown) still reach the hook.
        self.done.clear();
        unfired
    }
}

/// The driver thread's body: fire what is due, park until the next timer or an earlier wake.
/// Returns the timers still pending at shutdown.
pub(crate) fn run(shared: Arc<Shared>, hook: PanicHook, parker: Parker) -> Vec<UnfiredTimer> {
    let mut driver = Driver::new(shared, hook);
    loop {
        if driver.step().is_none() {
            return driver.unfired();
        }
        let shared = driver.shared();
        let next = match shared.plan_park() {
            Ok(next) => next,
            Err(()) => continue,
        };
        match next {
            None => parker.park(),
            Some(tick) => {
                let at = shared.resolution().duration(tick);
                let now = shared.time();
                if at > now {
                    parker.park_timeout(at - now);
                }
            }
        }
    }
}

/// How long the manual driver's [`next_deadline`](super::ManualDriver::next_deadline) says to
/// wait: the start of the next timer's tick.
pub(crate) fn tick_start(shared: &Shared, tick: u64) -> Duration {
    shared.resolution().duration(tick)
}
