//! The `TimerService` per-timer state machine under fuzz-chosen interleavings of simulated
//! threads: two cancellers, the driver (firing, with callbacks that cancel other timers) and
//! shutdown, in whatever order the input says. It runs the service's own code through its
//! public API (a `ManualDriver`, `Timeout`, `UnfiredTimer`), checked against a plain model:
//! every timer's callback runs once, or exactly one cancel returns true, or shutdown hands it
//! back; never two of these, never none; firing order and returned order as the model says.
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tierwheel::service::{ManualDriver, Timeout, TimerService, TimerStatus};

const MAX_TIMERS: usize = 48;

/// One step of one simulated thread.
#[derive(Arbitrary, Debug)]
enum Step {
    /// Any thread: schedule a timer `delay_ms` from now whose callback cancels `victim` (an
    /// index into the timers scheduled so far, itself included), if any.
    Schedule { delay_ms: u8, victim: Option<u8> },
    /// Canceller A or B (they share the timers; B holds clones of the `Timeout`s).
    Cancel { thread_b: bool, timer: u8 },
    /// The driver: the clock moves on `by_ms` and every due timer fires.
    Drive { by_ms: u8 },
    /// The shutdown thread; later steps still run against the shut-down service.
    Shutdown,
}

/// The four racers on one timer of its own, in a fuzz-chosen order.
#[derive(Arbitrary, Debug)]
struct WordRace {
    order: [u8; 4],
    /// Whether the driver places the timer in its scheduler before the racers go, which
    /// decides who frees it if a cancel wins.
    placed: bool,
    run_unfired: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    steps: Vec<Step>,
    words: Vec<WordRace>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Fate {
    Pending,
    Ran,
    Cancelled,
    Unfired,
}

struct ModelTimer {
    deadline_ms: u64,
    victim: Option<usize>,
    fate: Fate,
}

struct Sim {
    driver: Option<ManualDriver>,
    handle: tierwheel::service::Handle,
    timeouts: Vec<Timeout>,
    model: Vec<ModelTimer>,
    /// Callbacks as they ran, by timer index; and the cancels they made, by victim: result.
    ran: Arc<Mutex<Vec<(usize, Option<bool>)>>>,
    now_ms: u64,
}

impl Sim {
    fn schedule(&mut self, delay_ms: u8, victim: Option<u8>) {
        let index = self.timeouts.len();
        if index == MAX_TIMERS {
            return;
        }
        let victim = victim.map(|v| usize::from(v) % (index + 1));
        // The callback needs the victim's Timeout, which may not exist yet (itself): share a
        // slot filled in after scheduling.
        let slot: Arc<Mutex<Option<Timeout>>> = Arc::new(Mutex::new(None));
        let (ran, callback_slot) = (Arc::clone(&self.ran), Arc::clone(&slot));
        let deadline = Duration::from_millis(self.now_ms + u64::from(delay_ms));
        let result = self.handle.call_at(deadline, move || {
            let cancelled = callback_slot.lock().unwrap().as_ref().map(Timeout::cancel);
            ran.lock().unwrap().push((index, cancelled));
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
            deadline_ms: self.now_ms + u64::from(delay_ms),
            victim,
            fate: Fate::Pending,
        });
    }

    /// Canceller B cancels through a clone of the `Timeout`, as another thread would.
    fn cancel(&mut self, timer: u8, thread_b: bool) {
        if self.timeouts.is_empty() {
            return;
        }
        let index = usize::from(timer) % self.timeouts.len();
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

    /// The model's firing order up to `now_ms`: by deadline, ties in scheduling order; a
    /// callback's cancel takes effect for the rest of the pass.
    fn model_pass(&mut self) -> Vec<(usize, Option<bool>)> {
        let mut due: Vec<usize> = (0..self.model.len())
            .filter(|&i| self.model[i].deadline_ms <= self.now_ms)
            .collect();
        due.sort_by_key(|&i| (self.model[i].deadline_ms, i));
        let mut fired = Vec::new();
        for i in due {
            if self.model[i].fate != Fate::Pending {
                continue;
            }
            self.model[i].fate = Fate::Ran;
            let cancelled = self.model[i].victim.map(|v| {
                let won = self.model[v].fate == Fate::Pending;
                if won {
                    self.model[v].fate = Fate::Cancelled;
                }
                won
            });
            fired.push((i, cancelled));
        }
        fired
    }

    fn drive(&mut self, by_ms: u8) {
        let Some(driver) = self.driver.as_mut() else {
            return;
        };
        self.now_ms += u64::from(by_ms);
        let count = driver.run_until(Duration::from_millis(self.now_ms));
        let real = std::mem::take(&mut *self.ran.lock().unwrap());
        assert_eq!(count, real.len());
        let expected = self.model_pass();
        assert_eq!(real, expected, "firing order at {} ms", self.now_ms);
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

    fn shutdown(&mut self) {
        let Some(driver) = self.driver.take() else {
            return;
        };
        let unfired = driver.shutdown();
        let mut expected: Vec<usize> = (0..self.model.len())
            .filter(|&i| self.model[i].fate == Fate::Pending)
            .collect();
        expected.sort_by_key(|&i| (self.model[i].deadline_ms, i));
        let deadlines: Vec<Duration> = unfired.iter().map(|t| t.deadline()).collect();
        let want: Vec<Duration> = expected
            .iter()
            .map(|&i| Duration::from_millis(self.model[i].deadline_ms))
            .collect();
        assert_eq!(deadlines, want, "unfired timers out of order");
        for &i in &expected {
            self.model[i].fate = Fate::Unfired;
        }
        drop(unfired);
        assert!(
            self.ran.lock().unwrap().is_empty(),
            "shutdown ran a callback"
        );
    }

    /// Every timer met exactly one fate, and its `Timeout` says which.
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
        }
    }
}

/// Cancel (through two `Timeout` clones), fire and shutdown on one timer of a fresh
/// `ManualDriver`, in the order given: whichever goes first wins, every later one fails.
fn word_race(race: &WordRace) {
    let mut driver = Some(TimerService::builder().build_manual());
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let timeout = driver.as_ref().expect("just built").handle();
    let timeout = timeout
        .call_at(Duration::ZERO, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .expect("the service is running");
    let other = timeout.clone();
    if race.placed {
        assert_eq!(driver.as_mut().expect("just built").pending(), 1);
    }
    let mut winners = Vec::new();
    let mut unfired = Vec::new();
    let mut seen = [false; 4];
    let mut order: Vec<usize> = race.order.iter().map(|&b| usize::from(b) % 4).collect();
    // Make it a permutation: fill in racers the input left out.
    order.retain(|&r| !std::mem::replace(&mut seen[r], true));
    order.extend((0..4).filter(|&r| !seen[r]));
    for racer in order {
        let won = match racer {
            0 => timeout.cancel(),
            1 => other.cancel(),
            2 => driver
                .as_mut()
                .is_some_and(|driver| driver.run_until(Duration::ZERO) == 1),
            _ => driver.take().is_some_and(|driver| {
                unfired = driver.shutdown();
                !unfired.is_empty()
            }),
        };
        if won {
            winners.push(racer);
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
        assert_eq!(
            driver.pending(),
            0,
            "a decided timer is still in the scheduler"
        );
    }
    if let Some(timer) = unfired.pop() {
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
            Step::Schedule { delay_ms, victim } => sim.schedule(delay_ms, victim),
            Step::Cancel { timer, thread_b } => sim.cancel(timer, thread_b),
            Step::Drive { by_ms } => sim.drive(by_ms),
            Step::Shutdown => sim.shutdown(),
        }
    }
    sim.shutdown();
    sim.check();
    for race in input.words.iter().take(64) {
        word_race(race);
    }
});
