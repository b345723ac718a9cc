//! loom models of the service's races, on the very code the service runs (its `sync` module
//! switches to loom under `cfg(tierwheel_loom)`, a cfg of our own so that a downstream crate's
//! `--cfg loom` leaves tierwheel on std); the driver is a `ManualDriver` stepped by the model's
//! main thread while other threads cancel, reset, schedule and poll. Run:
//!
//! ```text
//! RUSTFLAGS="--cfg tierwheel_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release --target-dir target/loom --test loom_service
//! ```
#![cfg(tierwheel_loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tierwheel::service::{Handle, Timeout, TimerService, TimerStatus};

const SECOND: Duration = Duration::from_secs(1);

/// A timer due at `at` whose callback counts its runs.
fn counted(handle: &Handle, at: Duration) -> (Timeout, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let timeout = handle
        .call_at(at, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    (timeout, ran)
}

#[test]
fn cancel_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), Duration::ZERO);
        let racer = timeout.clone();
        let cancel = thread::spawn(move || racer.cancel());
        driver.run_until(Duration::ZERO);
        let won = cancel.join().unwrap();
        let ran = ran.load(Ordering::SeqCst);
        assert_eq!(usize::from(won) + ran, 1, "won {won}, ran {ran}");
        assert_eq!(timeout.is_cancelled(), won);
        assert_eq!(timeout.is_expired(), ran == 1);
        // A winning cancel frees the timer at once, not at its deadline.
        assert_eq!(driver.pending(), 0);
    });
}

/// Counts how many times it was dropped: a callback's captures, to see when it is freed.
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A cancel races another thread scheduling: the cancelled timer is freed at once and its
/// callback dropped exactly once; the other is never lost.
#[test]
fn cancel_vs_schedule() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let handle = driver.handle();
        let dropped = Arc::new(AtomicUsize::new(0));
        let token = Token(Arc::clone(&dropped));
        let mine = handle.call_at(SECOND, move || drop(token)).unwrap();
        let racer = mine.clone();
        let cancel = thread::spawn(move || racer.cancel());
        let other_handle = handle.clone();
        let other = thread::spawn(move || other_handle.call_at(2 * SECOND, || {}));
        assert!(cancel.join().unwrap());
        let other = other.join().unwrap().unwrap();
        assert_eq!(driver.pending(), 1, "the other timer");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(other.cancel());
        assert_eq!(driver.pending(), 0);
    });
}

/// Two timers due at the same time, scheduled from two threads, the first call happening
/// before the second (the second thread waits for a flag the first sets after its call): they
/// fire in the order they were scheduled.
#[test]
fn ties_across_threads_fire_in_scheduling_order() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let order = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let scheduled = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = [1, 2]
            .into_iter()
            .map(|i| {
                let (handle, order, scheduled) =
                    (driver.handle(), Arc::clone(&order), Arc::clone(&scheduled));
                thread::spawn(move || {
                    if i == 2 {
                        while !scheduled.load(Ordering::Acquire) {
                            thread::yield_now();
                        }
                    }
                    handle
                        .call_at(SECOND, move || order.lock().unwrap().push(i))
                        .unwrap();
                    scheduled.store(true, Ordering::Release);
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_eq!(driver.run_until(SECOND), 2);
        assert_eq!(*order.lock().unwrap(), [1, 2]);
    });
}

#[test]
fn cancel_vs_cancel() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), Duration::ZERO);
        let cancels: Vec<_> = (0..2)
            .map(|_| {
                let racer = timeout.clone();
                thread::spawn(move || racer.cancel())
            })
            .collect();
        let wins: usize = cancels
            .into_iter()
            .map(|c| usize::from(c.join().unwrap()))
            .sum();
        assert_eq!(wins, 1);
        driver.run_until(Duration::ZERO);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(driver.pending(), 0);
    });
}

#[test]
fn cancel_vs_fire_vs_cancel() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), Duration::ZERO);
        let cancels: Vec<_> = (0..2)
            .map(|_| {
                let racer = timeout.clone();
                thread::spawn(move || racer.cancel())
            })
            .collect();
        driver.run_until(Duration::ZERO);
        let wins: usize = cancels
            .into_iter()
            .map(|c| usize::from(c.join().unwrap()))
            .sum();
        assert_eq!(wins + ran.load(Ordering::SeqCst), 1);
        assert_eq!(driver.pending(), 0);
    });
}

#[test]
fn cancel_vs_shutdown() {
    loom::model(|| {
        let driver = TimerService::builder().build_manual();
        let handle = driver.handle();
        let (timeout, ran) = counted(&handle, SECOND);
        // A late scheduler: refused after shutdown, taken before it; never lost.
        let late_handle = handle.clone();
        let late = thread::spawn(move || late_handle.call_at(2 * SECOND, || {}));
        let racer = timeout.clone();
        let cancel = thread::spawn(move || racer.cancel());
        let unfired = driver.shutdown();
        let won = cancel.join().unwrap();
        let late = late.join().unwrap();
        assert_eq!(timeout.status() == TimerStatus::Unfired, !won);
        assert_eq!(unfired.len(), usize::from(!won) + usize::from(late.is_ok()));
        if let Ok(late) = late {
            assert_eq!(late.status(), TimerStatus::Unfired);
        }
        assert!(handle.call_at(Duration::ZERO, || {}).is_err());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

/// A reset to a later deadline (a compare-and-swap, no lock) races the driver firing the timer
/// at its old deadline: either the fire wins (the reset reports false) or the reset does, and
/// then the timer does not fire now but exactly once at its new deadline.
#[test]
fn later_reset_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), Duration::ZERO);
        let racer = timeout.clone();
        let reset = thread::spawn(move || racer.reset_at(SECOND));
        driver.run_until(Duration::ZERO);
        let moved = reset.join().unwrap();
        let early = ran.load(Ordering::SeqCst);
        assert_eq!(early, usize::from(!moved), "moved {moved}, ran {early}");
        driver.run_until(SECOND);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(driver.pending(), 0);
    });
}

/// A reset to an earlier deadline (a move in the wheel under the lock) races the driver's pass
/// at that earlier time: the timer fires once, never before its deadline, and by the next pass
/// at that time at the latest.
#[test]
fn earlier_reset_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), SECOND);
        let racer = timeout.clone();
        let reset = thread::spawn(move || racer.reset_at(Duration::ZERO));
        driver.run_until(Duration::ZERO);
        assert!(reset.join().unwrap());
        driver.run_until(Duration::ZERO);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        driver.run_until(SECOND);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(driver.pending(), 0);
    });
}

/// A reset to an earlier deadline races the pass that finds the timer due: the driver may
/// already hold it as due when the reset lands. The timer fires exactly once, by the next pass.
#[test]
fn earlier_reset_of_a_due_timer_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), SECOND);
        let racer = timeout.clone();
        let reset = thread::spawn(move || racer.reset_at(Duration::ZERO));
        driver.run_until(SECOND);
        reset.join().unwrap();
        driver.run_until(SECOND);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(timeout.is_expired());
        assert_eq!(driver.pending(), 0);
    });
}

/// A callback cancels a timer due in the same pass while another thread cancels it too: the
/// timer never runs, and exactly one of the two cancels wins.
#[test]
fn callback_cancel_vs_thread_cancel_in_one_pass() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let handle = driver.handle();
        let (victim, victim_ran) = counted(&handle, Duration::from_millis(1));
        let in_callback = victim.clone();
        let callback_won = Arc::new(AtomicUsize::new(0));
        let won_flag = Arc::clone(&callback_won);
        handle
            .call_at(Duration::ZERO, move || {
                won_flag.store(usize::from(in_callback.cancel()) + 1, Ordering::SeqCst);
            })
            .unwrap();
        let racer = victim.clone();
        let cancel = thread::spawn(move || racer.cancel());
        driver.run_until(Duration::from_millis(1));
        let thread_won = cancel.join().unwrap();
        let callback_won = callback_won.load(Ordering::SeqCst);
        assert_ne!(callback_won, 0, "the first callback ran");
        assert_eq!(victim_ran.load(Ordering::SeqCst), 0);
        assert_eq!(usize::from(thread_won) + (callback_won - 1), 1);
        assert!(victim.is_cancelled());
        assert_eq!(driver.pending(), 0);
    });
}

/// Resets race a cancel: exactly one of "a cancel won" and "the callback ran" happens, and no
/// reset revives a cancelled timer.
#[test]
fn reset_vs_cancel() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), SECOND);
        let (later, earlier) = (timeout.clone(), timeout.clone());
        let resets = [
            thread::spawn(move || later.reset_at(3 * SECOND)),
            thread::spawn(move || earlier.reset_at(Duration::ZERO)),
        ];
        let won = timeout.cancel();
        for reset in resets {
            reset.join().unwrap();
        }
        driver.run_until(3 * SECOND);
        assert!(won, "nothing else can decide the timer's fate");
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert!(!timeout.reset_at(5 * SECOND));
        assert_eq!(driver.pending(), 0);
    });
}

/// Two resets race each other and the driver: the timer fires once, at the deadline of the
/// reset that landed last (or at the original one, if it fired first).
#[test]
fn reset_vs_reset_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), SECOND);
        let (a, b) = (timeout.clone(), timeout.clone());
        let resets = [
            thread::spawn(move || a.reset_at(2 * SECOND)),
            thread::spawn(move || b.reset_at(3 * SECOND)),
        ];
        driver.run_until(SECOND);
        for reset in resets {
            reset.join().unwrap();
        }
        let at_one = ran.load(Ordering::SeqCst);
        driver.run_until(2 * SECOND);
        let at_two = ran.load(Ordering::SeqCst);
        driver.run_until(3 * SECOND);
        let at_three = ran.load(Ordering::SeqCst);
        assert_eq!(at_three, 1, "fired {at_three} times");
        // Whichever won, the timer never fired before the deadline it had then.
        assert!(at_one <= at_two && at_two <= at_three);
        assert!(timeout.deadline() >= SECOND);
        assert_eq!(driver.pending(), 0);
    });
}

/// A reset races shutdown: the timer is handed back unfired exactly once, whatever the order.
#[test]
fn reset_vs_shutdown() {
    loom::model(|| {
        let driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle(), SECOND);
        let racer = timeout.clone();
        let reset = thread::spawn(move || racer.reset_at(Duration::ZERO));
        let unfired = driver.shutdown();
        let moved = reset.join().unwrap();
        assert_eq!(unfired.len(), 1, "moved {moved}");
        assert_eq!(timeout.status(), TimerStatus::Unfired);
        assert!(!timeout.reset_at(2 * SECOND));
        drop(unfired);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

/// A waker that counts its wakes.
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A sleep's poll (storing its waker) races the driver firing it: no wakeup is lost. Either the
/// poll sees the sleep complete, or the driver wakes the waker the poll stored.
#[test]
fn sleep_poll_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let handle = driver.handle();
        let mut sleep = handle.sleep(SECOND);
        let first = std::sync::Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(std::sync::Arc::clone(&first));
        let mut cx = Context::from_waker(&waker);
        // Registered by its first poll, with the first waker.
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        let fire = thread::spawn(move || {
            driver.run_until(SECOND);
            driver
        });
        let second = std::sync::Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(std::sync::Arc::clone(&second));
        let mut cx = Context::from_waker(&waker);
        let ready = Pin::new(&mut sleep).poll(&mut cx).is_ready();
        let driver = fire.join().unwrap();
        let woken = first.0.load(Ordering::SeqCst) + second.0.load(Ordering::SeqCst);
        assert!(ready || second.0.load(Ordering::SeqCst) == 1, "lost wakeup");
        assert!(woken <= 1, "woken {woken} times");
        assert!(sleep.is_elapsed());
        drop(driver);
    });
}

/// A sleep reset to later races the driver firing it at its old deadline: it completes at once
/// only if the fire won, and otherwise not before its new deadline.
#[test]
fn sleep_reset_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let handle = driver.handle();
        let mut sleep = handle.sleep(SECOND);
        let counter = std::sync::Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(std::sync::Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        let fire = thread::spawn(move || {
            driver.run_until(SECOND);
            driver
        });
        Pin::new(&mut sleep).reset(handle.instant_of(3 * SECOND));
        let mut driver = fire.join().unwrap();
        // Re-armed after completing, or moved before: either way due at 3 s now.
        let fired_early = counter.0.load(Ordering::SeqCst);
        assert!(!sleep.is_elapsed());
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        driver.run_until(2 * SECOND);
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        driver.run_until(3 * SECOND);
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_ready());
        assert!(
            counter.0.load(Ordering::SeqCst) > fired_early,
            "not woken at 3 s"
        );
    });
}
