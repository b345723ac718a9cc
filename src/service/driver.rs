//! The driver: the one place timers are inserted, fired, freed and handed back. `Core` is
//! thread-free; the driver thread and [`ManualDriver`](super::ManualDriver) both step it.

use super::shared::{Callback, Command, Shared, Timer};
use super::sync::{lock, Arc};
use super::{CallbackPanic, PanicHook, UnfiredTimer};
use crate::TimerWheel;
use crossbeam_utils::sync::Parker;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// A timer in the wheel.
pub(crate) struct Entry {
    timer: Arc<Timer>,
    callback: Callback,
}

pub(crate) struct Core {
    wheel: TimerWheel<Entry>,
    /// The commands being processed; kept between batches so its buffer is reused.
    batch: Vec<Command>,
    hook: PanicHook,
}

impl Core {
    pub(crate) fn new(hook: PanicHook) -> Self {
        Core {
            wheel: TimerWheel::new(),
            batch: Vec::new(),
            hook,
        }
    }

    /// Applies every queued command. True iff the queue is closed, in which case every command
    /// there will ever be has been applied.
    pub(crate) fn apply_commands(&mut self, shared: &Shared) -> bool {
        let closed = shared.take_commands(&mut self.batch);
        let mut batch = std::mem::take(&mut self.batch);
        for command in batch.drain(..) {
            self.apply(command);
        }
        self.batch = batch;
        closed
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Insert {
                timer,
                tick,
                callback,
            } => {
                // Cancelled before the driver saw it: never enters the wheel.
                if !timer.state.is_pending() {
                    self.drop_callback(callback, timer.deadline);
                    return;
                }
                let key_slot = Arc::clone(&timer);
                let key = self.wheel.insert_at(tick, Entry { timer, callback });
                *lock(&key_slot.key) = Some(key);
            }
            Command::Cancel(timer) => {
                // `None`: the insert was skipped. A stale key (fired meanwhile) matches nothing.
                let key = lock(&timer.key).take();
                if let Some(entry) = key.and_then(|key| self.wheel.cancel(key)) {
                    debug_assert!(entry.timer.state.is_cancelled(), "freed a live timer");
                    self.drop_callback(entry.callback, entry.timer.deadline);
                }
            }
        }
    }

    /// Fires every timer due at or before `tick`; returns how many callbacks ran.
    pub(crate) fn fire_due(&mut self, tick: u64) -> usize {
        let mut ran = 0;
        while let Some(expired) = self.wheel.poll(tick) {
            let Entry { timer, callback } = expired.value;
            if timer.state.start_firing() {
                ran += 1;
                if let Err(payload) = catch_unwind(AssertUnwindSafe(callback)) {
                    self.report(CallbackPanic {
                        payload,
                        deadline: timer.deadline,
                    });
                }
            } else {
                // Cancelled, and its Cancel command is still queued: drop it now; the command
                // will find a stale key.
                self.drop_callback(callback, timer.deadline);
            }
        }
        ran
    }

    /// The tick of the next timer, if any.
    pub(crate) fn next_tick(&self) -> Option<u64> {
        self.wheel.next_deadline()
    }

    pub(crate) fn pending(&self) -> usize {
        self.wheel.len()
    }

    /// After the queue has closed and its last commands are applied: claims every timer still
    /// pending, in the order they would have fired, and hands it back. Timers a cancel won are
    /// freed instead.
    pub(crate) fn unfired(&mut self) -> Vec<UnfiredTimer> {
        let mut unfired = Vec::new();
        while let Some(expired) = self.wheel.poll(u64::MAX) {
            let Entry { timer, callback } = expired.value;
            if timer.state.claim_unfired() {
                unfired.push(UnfiredTimer { timer, callback });
            } else {
                self.drop_callback(callback, timer.deadline);
            }
        }
        unfired
    }

    /// Drops a callback that will never run. Its captures are user code too: a panicking
    /// destructor is reported like a panicking callback.
    fn drop_callback(&mut self, callback: Callback, deadline: Duration) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(callback))) {
            self.report(CallbackPanic { payload, deadline });
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

/// The driver thread's body: apply commands, fire what is due, park until the next tick or an
/// earlier wake. Returns the timers still pending at shutdown.
pub(crate) fn run(shared: Arc<Shared>, mut core: Core, parker: Parker) -> Vec<UnfiredTimer> {
    let start = shared
        .start()
        .expect("the driver thread runs on the real clock");
    loop {
        if core.apply_commands(&shared) {
            return core.unfired();
        }
        let now = shared.elapsed_tick(shared.time());
        core.fire_due(now);
        match core.next_tick() {
            // Fired nothing new but the next timer is already due: a callback just scheduled
            // it, and its command is queued (the unpark token is set), or it is due this tick.
            Some(tick) if tick <= shared.elapsed_tick(shared.time()) => continue,
            Some(tick) => match start.checked_add(shared.tick_start(tick)) {
                Some(wake_at) => parker.park_deadline(wake_at),
                None => parker.park(),
            },
            None => parker.park(),
        }
    }
}
