//! The `TimerService` per-timer state machine under fuzz-chosen interleavings of simulated
//! threads: two cancellers and two resetters (later, earlier, into the past, relative to now),
//! the driver (firing, with callbacks that cancel or reset other timers) and shutdown, in
//! whatever order the input says. It runs the service's own code through its public API (a
//! `ManualDriver`, `Timeout`, `UnfiredTimer`), checked against a plain model: every timer's
//! callback runs once, or exactly one cancel returns true, or shutdown hands it back; never two
//! of these, never none; a reset succeeds exactly while the timer's fate is open, and a timer
//! runs at the first pass at or after the deadline of its last successful reset, never before.
//!
//! The model's pass: the timers pending and due when the pass begins run one by one, each only
//! if it is still pending and due when its turn comes, so a callback can cancel a timer due in
//! the same pass, or reset it past the pass. Timers never reset run in deadline order, ties in
//! scheduling order; shutdown hands timers back in deadline order (a reset's tie order with
//! other timers is not modelled).
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tierwheel::service::{ManualDriver, Timeout, TimerService, TimerStatus, UnfiredTimer};

const MAX_TIMERS: usize = 48;

/// A reset, relative to the timer's deadline in the model (`Later`, `Earlier`, through
/// `Timeout::reset_at`) or to now (`After`, through `Timeout::reset_after`).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Reset {
    Later(u8),
    /// May reach before now: the timer is then due at the next pass.
    Earlier(u8),
    After(u8),
}

/// What a timer's callback does to its victim.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Act {
    Cancel,
    /// `reset_after` this many ms, from inside the driver's pass.
    ResetAfter(u8),
}

/// One step of one simulated thread.
#[derive(Arbitrary, Debug)]
enum Step {
    /// Any thread: schedule a timer `delay_ms` from now whose callback acts on `victim` (an
    /// index into the timers scheduled so far, itself included), if any.
    Schedule {
        delay_ms: u8,
        victim: Option<u8>,
        act: Act,
    },
    /// Canceller A or B (they share the timers; B holds clones of the `Timeout`s).
    Cancel { thread_b: bool, timer: u8 },
    /// Resetter A or B, likewise.
    Reset {
        thread_b: bool,
        timer: u8,
        reset: Reset,
    },
    /// The driver: the clock moves on `by_ms` and every due timer fires.
    Drive { by_ms: u8 },
    /// The shutdown thread; later steps still run against the shut-down service.
    Shutdown,
}

/// The racers on one timer of its own, in a fuzz-chosen order: two cancels, the driver, shutdown
/// and three resets.
#[derive(Arbitrary, Debug)]
struct WordRace {
    order: [u8; RACERS],
    /// Whether the driver places the timer in its wheel before the racers go.
    placed: bool,
    run_unfired: bool,
    /// The relative reset's delay, in ms.
    after_ms: u8,
}

const RACERS: usize = 7;

#[derive(Arbitrary, Debug)]
struct Input {
    steps: Vec<Step>,
    words: Vec<WordRace>,
    /// Whether the owner of the timers handed back at shutdown runs them (else drops them).
    run_unfired: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Fate {
    Pending,
    Ran,
    Cancelled,
    Unfired,
}

struct ModelTimer {
    /// The deadline asked for last: at scheduling or by the last successful reset. Before now
    /// if a reset moved it there.
    deadline_ms: u64,
    victim: Option<(usize, Act)>,
    fate: Fate,
    /// A reset succeeded on it: its place among timers due together is not modelled.
    reset: bool,
}

/// Callbacks as they ran: timer index, and the result of what it did to its victim.
type Ran = Arc<Mutex<Vec<(usize, Option<bool>)>>>;

struct Sim {
    driver: Option<ManualDriver>,
    handle: tierwheel::service::Handle,
    timeouts: Vec<Timeout>,
    model: Vec<ModelTimer>,
    ran: Ran,
    now_ms: u64,
}

impl Sim {
    fn schedule(&mut self, delay_ms: u8, victim: Option<u8>, act: Act) {
        let index = self.timeouts.len();
        if index == MAX_TIMERS {
            return;
        }
        let victim = victim.map(|v| usize::from(v) % (index + 1));
        // The callback needs the victim's Timeout, which may not exist yet (itself): share a
        // slot filled in after scheduling.
        let slot: Arc<Mutex<Option<Timeout>>> = Arc::new(Mutex::new(None));
        let (ran, callback_slot) = (Arc::clone(&self.ran), Arc::clone(&slot));
        let deadline_ms = self.now_ms + u64::from(delay_ms);
        let result = self.handle.call_at(ms(deadline_ms), move || {
            let acted = callback_slot
                .lock()
                .unwrap()
                .as_ref()
                .map(|victim| match act {
                    Act::Cancel => victim.cancel(),
                    Act::ResetAfter(delay) => victim.reset_after(ms(u64::from(delay))),
                });
            ran.lock().unwrap().push((index, acted));
        });
        let Ok(timeout) = result else {
            assert!(self.driver.is_none(), "scheduling refused before shutdown");
            return;
        };
        assert!(self.driver.is_some(), "scheduling accepted after shutdown");
        self.timeouts.push(timeout);
        if let Some(victim) = victim {
            *slot.lock().unwrap() = Some(self.timeouts[victim].clone());
        }
        self.model.push(ModelTimer {
            deadline_ms,
            victim: victim.map(|v| (v, act)),
            fate: Fate::Pending,
            reset: false,
        });
    }

    /// The index `timer` names, `None` before any timer exists.
    fn index(&self, timer: u8) -> Option<usize> {
        (!self.timeouts.is_empty()).then(|| usize::from(timer) % self.timeouts.len())
    }

    /// Canceller B cancels through a clone of the `Timeout`, as another thread would.
    fn cancel(&mut self, timer: u8, thread_b: bool) {
        let Some(index) = self.index(timer) else {
            return;
        };
        let won = if thread_b {
            self.timeouts[index].clone().cancel()
        } else {
            self.timeouts[index].cancel()
        };
        let model = &mut self.model[index];
        assert_eq!(
            won,
            model.fate == Fate::Pending,
            "timer {index}: cancel returned {won}"
        );
        if won {
            model.fate = Fate::Cancelled;
        }
    }

    /// Resetter B resets through a clone of the `Timeout`, likewise.
    fn reset(&mut self, timer: u8, thread_b: bool, reset: Reset) {
        let Some(index) = self.index(timer) else {
            return;
        };
        let clone;
        let timeout = if thread_b {
            clone = self.timeouts[index].clone();
            &clone
        } else {
            &self.timeouts[index]
        };
        let model = &mut self.model[index];
        let (moved, to_ms) = match reset {
            Reset::Later(by) => {
                let to = model.deadline_ms + u64::from(by);
                (timeout.reset_at(ms(to)), to)
            }
            Reset::Earlier(by) => {
                let to = model.deadline_ms.saturating_sub(u64::from(by));
                (timeout.reset_at(ms(to)), to)
            }
            Reset::After(delay) => {
                let moved = timeout.reset_after(ms(u64::from(delay)));
                (moved, self.now_ms + u64::from(delay))
            }
        };
        assert_eq!(
            moved,
            model.fate == Fate::Pending,
            "timer {index} ({:?}): reset returned {moved}",
            model.fate
        );
        if moved {
            model.deadline_ms = to_ms;
            model.reset = true;
            assert_eq!(timeout.deadline(), ms(to_ms), "timer {index}");
        } else {
            assert_eq!(timeout.deadline(), ms(model.deadline_ms), "timer {index}");
        }
    }

    /// Checks the callbacks a pass at `now_ms` ran, in their order, against the model, and
    /// applies them. `due` were pending and due when the pass began. Each ran only if it was
    /// still pending and due when its turn came (an earlier callback may have cancelled it or
    /// reset it past the pass); its act on its victim succeeds iff the victim was still pending.
    fn apply_callbacks(&mut self, real: &[(usize, Option<bool>)], due: &[usize]) {
        let now = self.now_ms;
        for &(i, acted) in real {
            assert!(
                due.contains(&i),
                "timer {i} ran at {now} ms but was not due"
            );
            let timer = &mut self.model[i];
            assert_eq!(
                timer.fate,
                Fate::Pending,
                "timer {i} ran while {:?}",
                timer.fate
            );
            assert!(
                timer.deadline_ms <= now,
                "timer {i} ran at {now} ms before its deadline {} ms",
                timer.deadline_ms
            );
            timer.fate = Fate::Ran;
            let want = self.model[i].victim.map(|(v, act)| {
                let victim = &mut self.model[v];
                let open = victim.fate == Fate::Pending;
                if open {
                    match act {
                        Act::Cancel => victim.fate = Fate::Cancelled,
                        Act::ResetAfter(delay) => {
                            victim.deadline_ms = now + u64::from(delay);
                            victim.reset = true;
                        }
                    }
                }
                open
            });
            assert_eq!(acted, want, "timer {i}'s callback on its victim");
        }
        // A timer due when the pass began and still pending was moved past the pass by a
        // callback; anything else due must have run.
        for &i in due {
            let timer = &self.model[i];
            assert!(
                timer.fate != Fate::Pending || timer.deadline_ms > now,
                "timer {i}, due at {} ms, did not run at {now} ms",
                timer.deadline_ms
            );
        }
        // Timers never reset keep the wheel's order: by deadline, ties in scheduling order.
        let plain: Vec<(u64, usize)> = real
            .iter()
            .filter(|&&(i, _)| !self.model[i].reset)
            .map(|&(i, _)| (self.model[i].deadline_ms, i))
            .collect();
        assert!(
            plain.windows(2).all(|w| w[0] < w[1]),
            "timers never reset ran out of order: {plain:?}"
        );
    }

    fn drive(&mut self, by_ms: u8) {
        let Some(driver) = self.driver.as_mut() else {
            return;
        };
        self.now_ms += u64::from(by_ms);
        // Due: pending, and the deadline of the last successful reset has come. Never before.
        let due: Vec<usize> = (0..self.model.len())
            .filter(|&i| self.model[i].fate == Fate::Pending)
            .filter(|&i| self.model[i].deadline_ms <= self.now_ms)
            .collect();
        let count = driver.run_until(ms(self.now_ms));
        let real = std::mem::take(&mut *self.ran.lock().unwrap());
        assert_eq!(count, real.len());
        self.apply_callbacks(&real, &due);
        let pending = self
            .model
            .iter()
            .filter(|t| t.fate == Fate::Pending)
            .count();
        let driver = self.driver.as_mut().expect("checked above");
        assert_eq!(
            driver.pending(),
            pending,
            "cancelled timers must be freed at once"
        );
    }

    fn shutdown(&mut self, run_unfired: bool) {
        let Some(driver) = self.driver.take() else {
            return;
        };
        let unfired = driver.shutdown();
        assert!(
            self.ran.lock().unwrap().is_empty(),
            "shutdown ran a callback"
        );
        let expected: Vec<usize> = (0..self.model.len())
            .filter(|&i| self.model[i].fate == Fate::Pending)
            .collect();
        let mut deadlines: Vec<Duration> = unfired.iter().map(UnfiredTimer::deadline).collect();
        let mut want: Vec<Duration> = expected
            .iter()
            .map(|&i| ms(self.model[i].deadline_ms))
            .collect();
        // In the order they would have fired: by deadline, a deadline a reset moved into the
        // past counting as now.
        let now = ms(self.now_ms);
        assert!(
            deadlines.windows(2).all(|w| w[0].max(now) <= w[1].max(now)),
            "unfired timers out of order: {deadlines:?}"
        );
        if expected.iter().all(|&i| !self.model[i].reset) {
            want.sort();
            assert_eq!(deadlines, want, "unfired timers");
        } else {
            deadlines.sort();
            want.sort();
            assert_eq!(deadlines, want, "unfired timers");
        }
        for &i in &expected {
            self.model[i].fate = Fate::Unfired;
        }
        if run_unfired {
            for timer in unfired {
                timer.run();
            }
            let real = std::mem::take(&mut *self.ran.lock().unwrap());
            for &i in &expected {
                self.model[i].fate = Fate::Ran;
            }
            // Every fate is sealed: each callback's act on its victim fails.
            let mut ran: Vec<usize> = real.iter().map(|&(i, _)| i).collect();
            ran.sort_unstable();
            assert_eq!(ran, expected, "unfired timers run by their owner");
            for &(i, acted) in &real {
                assert_eq!(acted, self.model[i].victim.map(|_| false), "timer {i}");
            }
        } else {
            drop(unfired);
            assert!(self.ran.lock().unwrap().is_empty(), "dropped unfired ran");
        }
    }

    /// Every timer met exactly one fate, its `Timeout` says which, and nothing moves it again.
    fn check(&self) {
        for (i, (timeout, model)) in self.timeouts.iter().zip(&self.model).enumerate() {
            let status = match model.fate {
                Fate::Pending => panic!("timer {i} still pending after shutdown"),
                Fate::Ran => TimerStatus::Expired,
                Fate::Cancelled => TimerStatus::Cancelled,
                Fate::Unfired => TimerStatus::Unfired,
            };
            assert_eq!(timeout.status(), status, "timer {i}");
            assert!(
                !timeout.cancel(),
                "timer {i}: a cancel won after its fate was sealed"
            );
            assert!(
                !timeout.reset_at(Duration::ZERO) && !timeout.reset_after(Duration::ZERO),
                "timer {i}: a reset succeeded after its fate was sealed"
            );
            assert_eq!(timeout.status(), status, "timer {i}: revived");
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// On one timer of a fresh `ManualDriver`, due at 10 ms, in the order given: cancels through
/// two `Timeout` clones, the driver's pass at 10 ms, shutdown, a reset later (to 30 ms), one
/// earlier (to 2 ms) and one relative to now. Exactly one of the cancels, the pass and shutdown
/// decides the timer's fate (the pass only if the timer is due by then); each reset succeeds
/// iff it comes first.
fn word_race(race: &WordRace) {
    let mut driver = Some(TimerService::builder().build_manual());
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let handle = driver.as_ref().expect("just built").handle();
    let timeout = handle
        .call_at(ms(10), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .expect("the service is running");
    let other = timeout.clone();
    if race.placed {
        assert_eq!(driver.as_mut().expect("just built").pending(), 1);
    }
    let mut deadline_ms = 10;
    let mut now_ms = 0;
    let mut decided = false;
    let mut winners = Vec::new();
    let mut unfired = Vec::new();
    let mut seen = [false; RACERS];
    let mut order: Vec<usize> = race
        .order
        .iter()
        .map(|&b| usize::from(b) % RACERS)
        .collect();
    // Make it a permutation: fill in racers the input left out.
    order.retain(|&r| !std::mem::replace(&mut seen[r], true));
    order.extend((0..RACERS).filter(|&r| !seen[r]));
    for racer in order {
        match racer {
            0..=3 => {
                let won = match racer {
                    0 => timeout.cancel(),
                    1 => other.cancel(),
                    2 => driver.as_mut().is_some_and(|driver| {
                        now_ms = 10;
                        driver.run_until(ms(now_ms)) == 1
                    }),
                    _ => driver.take().is_some_and(|driver| {
                        unfired = driver.shutdown();
                        !unfired.is_empty()
                    }),
                };
                if racer == 2 {
                    // The pass fires the timer iff it is open and due; never before its deadline.
                    assert_eq!(won, !decided && deadline_ms <= now_ms, "the driver's pass");
                } else {
                    assert_eq!(won, !decided, "racer {racer}");
                }
                if won {
                    winners.push(racer);
                    decided = true;
                }
            }
            _ => {
                let (moved, to_ms) = match racer {
                    4 => (other.reset_at(ms(30)), 30),
                    5 => (timeout.reset_at(ms(2)), 2),
                    _ => {
                        let delay = u64::from(race.after_ms);
                        (timeout.reset_after(ms(delay)), now_ms + delay)
                    }
                };
                assert_eq!(moved, !decided, "reset racer {racer}");
                if moved {
                    deadline_ms = to_ms;
                }
            }
        }
    }
    assert_eq!(winners.len(), 1, "winners {winners:?}");
    let expected = match winners[0] {
        0 | 1 => TimerStatus::Cancelled,
        2 => TimerStatus::Expired,
        _ => TimerStatus::Unfired,
    };
    assert_eq!(timeout.status(), expected);
    assert_eq!(ran.load(Ordering::SeqCst), usize::from(winners[0] == 2));
    if let Some(mut driver) = driver {
        assert_eq!(driver.pending(), 0, "a decided timer is still in the wheel");
    }
    if let Some(timer) = unfired.pop() {
        assert_eq!(timer.deadline(), ms(deadline_ms));
        // Only a handed-back timer can be run by its owner, and only once: it is moved.
        if race.run_unfired {
            timer.run();
            assert_eq!(timeout.status(), TimerStatus::Expired);
            assert_eq!(ran.load(Ordering::SeqCst), 1);
        } else {
            drop(timer);
            assert_eq!(timeout.status(), TimerStatus::Unfired);
            assert_eq!(ran.load(Ordering::SeqCst), 0);
        }
    }
    assert!(!timeout.cancel() && !other.cancel());
    assert!(!timeout.reset_at(ms(1)) && !other.reset_after(ms(1)));
}

fuzz_target!(|input: Input| {
    let driver = TimerService::builder()
        .tick(Duration::from_millis(1))
        .build_manual();
    let mut sim = Sim {
        handle: driver.handle(),
        driver: Some(driver),
        timeouts: Vec::new(),
        model: Vec::new(),
        ran: Arc::new(Mutex::new(Vec::new())),
        now_ms: 0,
    };
    for step in input.steps.iter().take(256) {
        match *step {
            Step::Schedule {
                delay_ms,
                victim,
                act,
            } => sim.schedule(delay_ms, victim, act),
            Step::Cancel { timer, thread_b } => sim.cancel(timer, thread_b),
            Step::Reset {
                thread_b,
                timer,
                reset,
            } => sim.reset(timer, thread_b, reset),
            Step::Drive { by_ms } => sim.drive(by_ms),
            Step::Shutdown => sim.shutdown(input.run_unfired),
        }
    }
    sim.shutdown(input.run_unfired);
    sim.check();
    for race in input.words.iter().take(64) {
        word_race(race);
    }
});
