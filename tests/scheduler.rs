//! Integration tests of `Scheduler`, `ManualClock` and `Resolution`, through the public API only.
//! Time comes from a `ManualClock`; nothing sleeps.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tierwheel::{
    CallbackStatus, Clock, ManualClock, MonotonicClock, Resolution, Scheduler, TimerHandle,
};

type Log = Vec<&'static str>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn manual(resolution: Resolution) -> (ManualClock, Scheduler<Log, ManualClock>) {
    let clock = ManualClock::new();
    let sched = Scheduler::with_clock_and_resolution(clock.clone(), resolution);
    (clock, sched)
}

const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400 + 86_400 / 4);

/// Long delays run exactly at their time at both resolutions: not a tick early, not a tick late.
#[test]
fn long_delays_run_on_time() {
    let delays = [DAY + ms(1), 3 * YEAR, 100 * YEAR];
    for resolution in [Resolution::MILLISECOND, Resolution::MICROSECOND] {
        for delay in delays {
            let (clock, mut sched) = manual(resolution);
            clock.advance(Duration::from_nanos(123_456)); // off the tick grid
            let start = sched.time();
            let h = sched.call_later(delay, |log, _| log.push("ran"));
            let when = sched.when(h).unwrap();
            assert!(
                when >= start + delay,
                "{delay:?} at {resolution:?}: due {when:?} early"
            );
            assert!(when < start + delay + resolution.tick());
            assert_eq!(sched.next_timeout(), Some(when - start));

            let mut log = Log::new();
            clock.set(when - Duration::from_nanos(1)).unwrap();
            assert_eq!(sched.run_due(&mut log), 0, "{delay:?} at {resolution:?}");
            assert_eq!(sched.next_timeout(), Some(Duration::from_nanos(1)));
            clock.advance(Duration::from_nanos(1));
            assert_eq!(sched.run_due(&mut log), 1, "{delay:?} at {resolution:?}");
            assert_eq!(log, ["ran"]);
            assert!(sched.is_empty());
        }
    }
}

/// `Duration::MAX`, and delays past the tick range, saturate to the end of time: accepted,
/// pending, cancellable, never run by any clock reading `ManualClock` can reach.
#[test]
fn delays_past_the_tick_range_saturate_to_the_end_of_time() {
    for resolution in [
        Resolution::MILLISECOND,
        Resolution::MICROSECOND,
        Resolution::NANOSECOND,
    ] {
        let (clock, mut sched) = manual(resolution);
        let beyond = resolution.duration(u64::MAX - 1) + resolution.tick();
        let forever = sched.call_later(Duration::MAX, |log, _| log.push("max"));
        let also = sched.call_at(beyond, |log, _| log.push("beyond"));
        let secs = sched.call_later(Duration::from_secs(u64::MAX), |log, _| log.push("secs"));
        for h in [forever, also, secs] {
            assert_eq!(sched.when(h), Some(Duration::MAX), "{resolution:?}");
        }
        clock.advance(Duration::MAX); // saturates at u64::MAX ns, about 584 years
        let mut log = Log::new();
        assert_eq!(sched.run_due(&mut log), 0, "{resolution:?}");
        assert_eq!(sched.len(), 3);
        assert!(sched.next_timeout().unwrap() > Duration::from_secs(u64::MAX / 2));
        assert!(sched.cancel(forever));
        assert_eq!(sched.len(), 2);
    }
}

/// A clock that reads `Duration::MAX` has reached the end of time: callbacks there run too.
#[test]
fn the_end_of_time_comes_only_at_duration_max() {
    struct Shared(Rc<RefCell<Duration>>);
    impl Clock for Shared {
        fn now(&self) -> Duration {
            *self.0.borrow()
        }
    }
    let now = Rc::new(RefCell::new(Duration::ZERO));
    let mut sched = Scheduler::with_clock(Shared(now.clone()));
    sched.call_later(Duration::MAX, |log: &mut Log, sched| {
        log.push("end");
        sched.call_soon(|log, _| log.push("after the end"));
    });
    let mut log = Log::new();
    *now.borrow_mut() = Duration::MAX - Duration::from_nanos(1);
    assert_eq!(sched.run_due(&mut log), 0);
    *now.borrow_mut() = Duration::MAX;
    assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    assert_eq!(sched.run_due(&mut log), 1);
    assert_eq!(sched.run_due(&mut log), 1);
    assert_eq!(log, ["end", "after the end"]);
}

#[test]
fn ties_run_first_scheduled_first() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    sched.call_later(ms(5), |log, _| log.push("a"));
    sched.call_at(ms(5), |log, _| log.push("b"));
    // 4.2 ms rounds up to the same tick as 5 ms: scheduled later, runs later.
    sched.call_later(Duration::from_micros(4200), |log, _| log.push("c"));
    sched.call_later(ms(4), |log, _| log.push("first"));
    clock.advance(ms(5));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 4);
    assert_eq!(log, ["first", "a", "b", "c"]);
}

#[test]
fn callbacks_scheduled_during_a_pass_wait_for_the_next_pass() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    sched.call_later(ms(1), |log, sched| {
        log.push("outer");
        sched.call_soon(|log, _| log.push("soon"));
        sched.call_later(Duration::ZERO, |log, _| log.push("zero"));
        sched.call_at(Duration::ZERO, |log, _| log.push("past"));
    });
    sched.call_later(ms(2), |log, _| log.push("already due"));
    clock.advance(ms(3));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["outer", "already due"]);
    assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    assert_eq!(sched.run_due(&mut log), 3);
    assert_eq!(log, ["outer", "already due", "soon", "zero", "past"]);
}

#[test]
fn a_callback_that_re_arms_itself_at_zero_delay_does_not_livelock() {
    fn again(n: &mut u32, sched: &mut Scheduler<u32, ManualClock>) {
        *n += 1;
        sched.call_soon(again);
    }
    let mut sched = Scheduler::with_clock(ManualClock::new());
    sched.call_soon(again);
    let mut n = 0;
    for pass in 1..=100 {
        assert_eq!(sched.run_due(&mut n), 1);
        assert_eq!(n, pass);
    }
    assert_eq!(sched.len(), 1);
}

#[test]
fn a_callback_cancelled_earlier_in_the_pass_does_not_run() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let victim: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
    let target = victim.clone();
    sched.call_later(ms(1), move |log, sched| {
        let h = target.borrow().unwrap();
        assert!(sched.is_pending(h));
        assert!(sched.cancel(h), "the cancel that stops it returns true");
        assert!(!sched.cancel(h));
        log.push("killer");
    });
    *victim.borrow_mut() = Some(sched.call_later(ms(1), |log, _| log.push("victim")));
    sched.call_later(ms(1), |log, _| log.push("bystander"));
    clock.advance(ms(1));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["killer", "bystander"]);
}

#[test]
fn a_callback_cannot_cancel_itself_nor_a_callback_that_already_ran() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let handles: Rc<RefCell<Vec<TimerHandle>>> = Rc::default();
    let seen = handles.clone();
    let first = sched.call_later(ms(1), |log, _| log.push("first"));
    let second = sched.call_later(ms(1), move |log, sched| {
        let hs = seen.borrow();
        log.push(if sched.cancel(hs[0]) {
            "cancelled first"
        } else {
            "first ran"
        });
        log.push(if sched.cancel(hs[1]) {
            "cancelled self"
        } else {
            "self running"
        });
        assert_eq!(sched.len(), 0);
    });
    handles.borrow_mut().extend([first, second]);
    clock.advance(ms(1));
    let mut log = Log::new();
    sched.run_due(&mut log);
    assert_eq!(log, ["first", "first ran", "self running"]);
}

#[test]
fn run_due_inside_a_callback_does_nothing() {
    let mut sched = Scheduler::with_clock(ManualClock::new());
    sched.call_soon(|log: &mut Log, sched| {
        log.push("outer");
        assert_eq!(sched.run_due(log), 0);
    });
    sched.call_soon(|log: &mut Log, _| log.push("second"));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["outer", "second"]);
}

/// The scheduler stays consistent when a callback panics: the panic reaches the caller, the
/// panicking callback counts as run, the others run exactly once, in order, later.
#[test]
fn a_panicking_callback_leaves_the_scheduler_consistent() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let mut handles = Vec::new();
    for (i, name) in ["a", "b", "boom", "c", "d"].into_iter().enumerate() {
        let h = sched.call_later(ms(i as u64 + 1), move |log: &mut Log, sched| {
            log.push(name);
            if name == "b" {
                sched.call_soon(|log, _| log.push("scheduled by b"));
            }
            if name == "boom" {
                panic!("boom");
            }
        });
        handles.push(h);
    }
    sched.call_later(ms(100), |log, _| log.push("later"));
    clock.advance(ms(10));

    let mut log = Log::new();
    let result = catch_unwind(AssertUnwindSafe(|| sched.run_due(&mut log)));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(log, ["a", "b", "boom"]);
    assert!(
        !sched.is_pending(handles[2]),
        "the panicking callback counts as run"
    );
    assert!(!sched.cancel(handles[2]));
    assert!(sched.is_pending(handles[3]) && sched.is_pending(handles[4]));
    assert_eq!(sched.len(), 4, "c, d, scheduled by b, later");
    assert_eq!(sched.next_timeout(), Some(Duration::ZERO));

    // A new callback scheduled between the passes goes behind those already due.
    sched.call_soon(|log, _| log.push("soon"));
    assert_eq!(sched.run_due(&mut log), 4);
    assert_eq!(log, ["a", "b", "boom", "c", "d", "scheduled by b", "soon"]);
    assert_eq!(sched.next_timeout(), Some(ms(90)));
    clock.advance(ms(90));
    assert_eq!(sched.run_due(&mut log), 1);
    assert!(sched.is_empty());
}

#[test]
fn handles_stay_inert_after_their_storage_is_reused() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let old = sched.call_later(ms(1), |log, _| log.push("old"));
    assert!(sched.cancel(old));
    let new = sched.call_later(ms(1), |log, _| log.push("new"));
    assert_ne!(old, new);
    assert!(!sched.cancel(old));
    assert_eq!(sched.when(old), None);
    assert!(!sched.is_pending(old));
    clock.advance(ms(1));
    let mut log = Log::new();
    sched.run_due(&mut log);
    assert_eq!(log, ["new"]);
    assert!(!sched.is_pending(new));
}

#[test]
fn next_timeout_never_rounds_down_past_a_deadline() {
    for resolution in [Resolution::MILLISECOND, Resolution::from_nanos(7).unwrap()] {
        let (clock, mut sched) = manual(resolution);
        let mut log = Log::new();
        for delay_ns in [1, 6, 7, 8, 999_999, 1_000_000, 1_000_001, 2_500_000] {
            clock.advance(Duration::from_nanos(333));
            sched.call_later(Duration::from_nanos(delay_ns), |log, _| log.push("x"));
            let timeout = sched.next_timeout().unwrap();
            assert!(timeout >= Duration::from_nanos(delay_ns), "{resolution:?}");
            if let Some(short) = timeout.checked_sub(Duration::from_nanos(1)) {
                clock.advance(short);
                assert_eq!(sched.run_due(&mut log), 0, "{resolution:?} {delay_ns}");
                clock.advance(Duration::from_nanos(1));
            }
            assert_eq!(sched.run_due(&mut log), 1, "{resolution:?} {delay_ns}");
        }
    }
}

#[test]
fn call_at_in_the_past_runs_at_the_next_pass_in_deadline_order() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    clock.advance(ms(10));
    sched.call_at(ms(9), |log, _| log.push("at 9"));
    sched.call_at(ms(3), |log, _| log.push("at 3"));
    let mut log = Log::new();
    assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["at 3", "at 9"]);
}

#[test]
fn the_context_is_the_callers() {
    struct Server {
        requests: u32,
        timeouts: Vec<u32>,
    }
    let clock = ManualClock::new();
    let mut sched = Scheduler::with_clock(clock.clone());
    for id in 0..3 {
        sched.call_later(ms(u64::from(id) * 10), move |s: &mut Server, _| {
            s.requests += 1;
            s.timeouts.push(id);
        });
    }
    let mut server = Server {
        requests: 0,
        timeouts: vec![],
    };
    clock.advance(ms(15));
    sched.run_due(&mut server);
    assert_eq!(
        (server.requests, server.timeouts.as_slice()),
        (2, &[0, 1][..])
    );
}

#[test]
fn callbacks_and_their_captures_drop_when_cancelled_or_dropped() {
    let token = Rc::new(());
    let (_clock, mut sched) = manual(Resolution::MILLISECOND);
    let held = token.clone();
    let h = sched.call_later(ms(1), move |_, _| drop(held));
    let held = token.clone();
    sched.call_later(ms(2), move |_, _| drop(held));
    assert_eq!(Rc::strong_count(&token), 3);
    sched.cancel(h);
    assert_eq!(Rc::strong_count(&token), 2);
    drop(sched);
    assert_eq!(Rc::strong_count(&token), 1);
}

#[test]
fn manual_clock_is_shared_across_clones_and_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<ManualClock>();

    let clock = ManualClock::new();
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let clock = clock.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                for _ in 0..1000 {
                    clock.advance(Duration::from_micros(1));
                }
                tx.send(()).unwrap();
            })
        })
        .collect();
    for _ in 0..4 {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("advancing threads finish");
    }
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(clock.now(), ms(4));
}

#[test]
fn manual_clock_refuses_to_go_backwards_and_saturates() {
    let clock = ManualClock::starting_at(ms(10));
    assert_eq!(clock.set(ms(10)), Ok(()));
    let err = clock.set(ms(9)).unwrap_err();
    assert_eq!((err.now, err.requested), (ms(10), ms(9)));
    assert_eq!(clock.now(), ms(10));
    clock.set(Duration::MAX).unwrap();
    assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    clock.advance(ms(1));
    assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
}

#[test]
fn monotonic_clock_drives_a_scheduler() {
    let clock = MonotonicClock::new();
    assert!(clock.now() <= clock.now());
    let mut sched = Scheduler::new();
    sched.call_soon(|n: &mut u32, _| *n += 1);
    let mut n = 0;
    assert_eq!(sched.run_due(&mut n), 1);
    assert!(sched.time() < Duration::from_secs(3600));
}

/// asyncio's `test_call_later_negative_delays`: `call_later(-1, a)` then `call_later(-2, b)`
/// runs b, then a. Rust has no negative delay; `call_at` a time already past is the same. It
/// holds on a fresh scheduler whose clock is past zero (as a monotonic clock is by the time
/// anything is scheduled) and after a pass, and past callbacks run ahead of one due now.
#[test]
fn call_later_negative_delays() {
    fn negative_delays(clock: &ManualClock, sched: &mut Scheduler<Log, ManualClock>) -> Log {
        let now = sched.time();
        sched.call_soon(|log, _| log.push("now"));
        sched.call_at(now - ms(1), |log, _| log.push("a"));
        sched.call_at(now - ms(2), |log, _| log.push("b"));
        sched.call_at(now - ms(2), |log, _| log.push("b2"));
        assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
        assert_eq!(sched.len(), 4);
        clock.advance(Duration::from_micros(300)); // within the same tick: changes nothing
        let mut log = Log::new();
        assert_eq!(sched.run_due(&mut log), 4);
        assert!(sched.is_empty());
        log
    }

    // A fresh scheduler on a clock already 10 s in.
    let clock = ManualClock::starting_at(Duration::from_secs(10));
    let mut sched = Scheduler::with_clock(clock.clone());
    assert_eq!(negative_delays(&clock, &mut sched), ["b", "b2", "a", "now"]);

    // After a pass that ran something, and after one that ran nothing.
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    sched.call_later(ms(3), |log, _| log.push("earlier"));
    clock.advance(ms(5));
    assert_eq!(sched.run_due(&mut Log::new()), 1);
    assert_eq!(negative_delays(&clock, &mut sched), ["b", "b2", "a", "now"]);
    clock.set(ms(10)).unwrap();
    assert_eq!(sched.run_due(&mut Log::new()), 0);
    assert_eq!(negative_delays(&clock, &mut sched), ["b", "b2", "a", "now"]);
}

/// A callback scheduled from a running callback for a past time waits for the next pass and
/// runs as due at the tick of the pass that scheduled it: behind a past-due callback
/// scheduled between the passes for an earlier time, ahead of one for a later time.
#[test]
fn past_times_scheduled_during_a_pass_are_due_at_the_pass_tick() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    clock.advance(ms(10));
    sched.call_soon(|log, sched| {
        log.push("outer");
        sched.call_at(ms(1), |log, _| log.push("past, in the pass"));
    });
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 1);
    let h = sched.call_at(ms(9), |log, _| log.push("9 ms, between passes"));
    sched.call_at(ms(10), |log, _| log.push("10 ms, between passes"));
    assert_eq!(sched.when(h), Some(ms(9)));
    clock.advance(ms(1));
    assert_eq!(sched.run_due(&mut log), 3);
    assert_eq!(
        log,
        [
            "outer",
            "9 ms, between passes",
            "past, in the pass",
            "10 ms, between passes"
        ]
    );
}

/// Past-due callbacks keep handles like any other: `when` reports the time asked for (rounded
/// up), `is_pending`, `cancel` and `reschedule` work, and a cancelled or moved one does not run
/// in their order.
#[test]
fn past_due_callbacks_can_be_cancelled_and_rescheduled() {
    let clock = ManualClock::starting_at(ms(100));
    let mut sched = Scheduler::with_clock(clock.clone());
    let a = sched.call_at(ms(50), |log: &mut Log, _| log.push("a"));
    let b = sched.call_at(Duration::from_micros(40_500), |log: &mut Log, _| {
        log.push("b")
    });
    let c = sched.call_at(ms(30), |log: &mut Log, _| log.push("c"));
    let d = sched.call_at(ms(20), |log: &mut Log, _| log.push("d"));
    assert_eq!(sched.when(b), Some(ms(41)));
    assert!(sched.is_pending(a) && sched.is_pending(d));
    assert!(sched.cancel(c));
    assert!(!sched.is_pending(c));
    assert!(sched.reschedule(d, ms(60))); // still past, now the latest
    assert!(sched.reschedule(a, ms(150))); // no longer past
    assert!(sched.reschedule(b, ms(41))); // same time: moves behind nothing at 41 ms
    assert_eq!(sched.len(), 3);
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["b", "d"]);
    assert_eq!(sched.next_timeout(), Some(ms(50)));
    clock.advance(ms(50));
    assert_eq!(sched.run_due(&mut log), 1);
    assert_eq!(log, ["b", "d", "a"]);
}

/// A past-due callback that panics leaves the rest in order, past-due ones first.
#[test]
fn a_panicking_past_due_callback_leaves_the_rest_in_order() {
    let clock = ManualClock::starting_at(ms(100));
    let mut sched = Scheduler::with_clock(clock.clone());
    sched.call_soon(|log: &mut Log, _| log.push("now"));
    sched.call_at(ms(30), |log: &mut Log, _| log.push("30"));
    let boom = sched.call_at(ms(20), |_: &mut Log, _| panic!("boom"));
    sched.call_at(ms(10), |log: &mut Log, _| log.push("10"));
    let mut log = Log::new();
    let result = catch_unwind(AssertUnwindSafe(|| sched.run_due(&mut log)));
    assert!(result.is_err());
    assert_eq!(log, ["10"]);
    assert!(!sched.is_pending(boom));
    assert_eq!(sched.len(), 2);
    assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    sched.call_at(ms(25), |log: &mut Log, _| log.push("25"));
    assert_eq!(sched.run_due(&mut log), 3);
    assert_eq!(log, ["10", "25", "30", "now"]);
}

#[test]
fn reschedule_moves_a_callback_and_keeps_its_handle() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let h = sched.call_later(ms(10), |log, _| log.push("moved"));
    sched.call_later(ms(5), |log, _| log.push("five"));
    assert!(sched.reschedule(h, ms(3))); // earlier
    assert_eq!(sched.when(h), Some(ms(3)));
    assert_eq!(sched.next_timeout(), Some(ms(3)));
    assert!(sched.reschedule(h, ms(7))); // later again
    assert_eq!((sched.when(h), sched.len()), (Some(ms(7)), 2));
    clock.advance(ms(6));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 1);
    assert!(sched.is_pending(h));
    clock.advance(ms(1));
    assert_eq!(sched.run_due(&mut log), 1);
    assert_eq!(log, ["five", "moved"]);
    assert!(!sched.is_pending(h));
}

/// A reschedule is a new insertion: behind callbacks already due at the same tick, also when
/// the tick does not change; `reschedule_later` measures from the clock's reading now.
#[test]
fn reschedule_counts_as_a_new_insertion() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let a = sched.call_later(ms(5), |log, _| log.push("a"));
    let b = sched.call_later(ms(5), |log, _| log.push("b"));
    sched.call_later(ms(5), |log, _| log.push("c"));
    assert!(sched.reschedule(a, ms(5)));
    clock.advance(ms(2));
    assert!(sched.reschedule_later(b, ms(3)));
    clock.advance(ms(3));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 3);
    assert_eq!(log, ["c", "a", "b"]);
}

/// Rescheduling rounds up like `call_at` and `call_later`: never early, at most a tick late.
#[test]
fn reschedule_rounds_up_never_early() {
    for resolution in [Resolution::MILLISECOND, Resolution::from_nanos(7).unwrap()] {
        let (clock, mut sched) = manual(resolution);
        let h = sched.call_later(DAY, |log, _| log.push("x"));
        clock.advance(Duration::from_nanos(1_234_567)); // off the tick grid
        let delay = Duration::from_nanos(2_500_001);
        assert!(sched.reschedule_later(h, delay));
        let due = sched.when(h).unwrap();
        let asked = sched.time() + delay;
        assert!(
            due >= asked && due < asked + resolution.tick(),
            "{resolution:?}"
        );
        let compare = sched.call_later(delay, |log, _| log.push("compare"));
        assert_eq!(sched.when(compare), Some(due));
        assert!(sched.reschedule(compare, Duration::from_nanos(1)));
        assert_eq!(sched.when(compare), Some(resolution.tick()));

        let mut log = Log::new();
        clock.set(due - Duration::from_nanos(1)).unwrap();
        assert_eq!(
            sched.run_due(&mut log),
            1,
            "{resolution:?}: only compare is due"
        );
        clock.advance(Duration::from_nanos(1));
        assert_eq!(sched.run_due(&mut log), 1, "{resolution:?}");
        assert_eq!(log, ["compare", "x"]);
    }
}

/// A handle whose callback ran, is running, or was cancelled reschedules nothing: `false`,
/// and the scheduler is unchanged (no fence either, from inside a pass).
#[test]
fn reschedule_of_a_callback_that_ran_or_was_cancelled_does_nothing() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let cancelled = sched.call_later(ms(1), |log, _| log.push("cancelled"));
    assert!(sched.cancel(cancelled));
    assert!(!sched.reschedule(cancelled, ms(1)));
    assert!(!sched.reschedule_later(cancelled, ms(1)));
    assert!(sched.is_empty());

    let ran = sched.call_later(ms(1), |log, _| log.push("ran"));
    let me: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
    let seen = me.clone();
    let running = sched.call_later(ms(1), move |log, sched| {
        log.push("running");
        assert!(!sched.reschedule(ran, Duration::ZERO));
        assert!(!sched.reschedule_later(seen.borrow().unwrap(), Duration::ZERO));
        assert_eq!(sched.len(), 1, "only the later one; no fence counted");
        assert_eq!(sched.next_timeout(), Some(ms(4)));
    });
    *me.borrow_mut() = Some(running);
    sched.call_later(ms(5), |log, _| log.push("later"));
    clock.advance(ms(1));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["ran", "running"]);
    assert!(!sched.reschedule(running, ms(2)));
    assert_eq!(sched.len(), 1);
    assert_eq!(sched.next_timeout(), Some(ms(4)));
}

/// From inside a running callback, a reschedule to a time due by the pass's tick waits for
/// the next pass, like `call_at`; so does one of a callback that was due later in the pass.
#[test]
fn reschedule_from_a_running_callback_waits_for_the_next_pass() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let handles: Rc<RefCell<Vec<TimerHandle>>> = Rc::default();
    let seen = handles.clone();
    sched.call_later(ms(1), move |log, sched| {
        log.push("first");
        let hs = seen.borrow();
        assert!(sched.reschedule(hs[0], Duration::ZERO)); // was due in this pass
        assert!(sched.reschedule_later(hs[1], Duration::ZERO)); // was due much later
        assert_eq!(sched.when(hs[1]), Some(ms(3)));
    });
    let later_in_pass = sched.call_later(ms(2), |log, _| log.push("was due in the pass"));
    let far = sched.call_later(ms(100), |log, _| log.push("was far"));
    handles.borrow_mut().extend([later_in_pass, far]);
    sched.call_later(ms(3), |log, _| log.push("third"));
    clock.advance(ms(3));
    let mut log = Log::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["first", "third"]);
    assert_eq!(sched.next_timeout(), Some(Duration::ZERO));
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, ["first", "third", "was due in the pass", "was far"]);
}

/// The idle-timeout pattern: traffic pushes the timeout back; silence lets it fire, once, at
/// its time.
#[test]
fn reschedule_later_pushes_an_idle_timeout_back() {
    let (clock, mut sched) = manual(Resolution::MILLISECOND);
    let idle = sched.call_later(ms(100), |log, _| log.push("idle"));
    let mut log = Log::new();
    for _ in 0..10 {
        clock.advance(ms(60));
        assert_eq!(sched.run_due(&mut log), 0);
        assert!(sched.reschedule_later(idle, ms(100)));
    }
    assert_eq!(sched.when(idle), Some(ms(700)));
    clock.advance(ms(99));
    assert_eq!(sched.run_due(&mut log), 0);
    clock.advance(ms(1));
    assert_eq!(sched.run_due(&mut log), 1);
    assert_eq!(log, ["idle"]);
    assert!(!sched.reschedule_later(idle, ms(100)));
}

#[test]
fn status_tells_a_cancelled_callback_from_one_that_ran() {
    let clock = ManualClock::starting_at(Duration::from_secs(10));
    let mut sched = Scheduler::<Vec<u8>, _>::with_clock(clock.clone());
    let ran = sched.call_later(Duration::from_millis(1), |log, _| log.push(1));
    let cancelled = sched.call_later(Duration::from_millis(2), |log, _| log.push(2));
    // Past due when scheduled: taken out of the wheel by the pass before it runs.
    let late = sched.call_at(Duration::from_secs(9), |log, _| log.push(3));
    assert_eq!(sched.status(cancelled), CallbackStatus::Pending);
    assert!(sched.cancel(cancelled));
    assert_eq!(sched.status(cancelled), CallbackStatus::Cancelled);
    clock.advance(Duration::from_millis(5));
    let mut log = Vec::new();
    assert_eq!(sched.run_due(&mut log), 2);
    assert_eq!(log, [3, 1]);
    assert_eq!(sched.status(ran), CallbackStatus::Ran);
    assert_eq!(sched.status(late), CallbackStatus::Ran);
    assert_eq!(sched.status(cancelled), CallbackStatus::Cancelled);
    // Storage is reused most recently freed first: the fates of the callbacks whose storage
    // went to new ones are no longer known; the others still are.
    let fresh: Vec<_> = (0..3)
        .map(|_| sched.call_later(Duration::from_secs(1), |_, _| {}))
        .collect();
    let statuses = [ran, late, cancelled].map(|h| sched.status(h));
    assert!(
        statuses.iter().all(|&s| s == CallbackStatus::Unknown),
        "{statuses:?}"
    );
    assert!(fresh
        .iter()
        .all(|&h| sched.status(h) == CallbackStatus::Pending));
}

#[test]
fn a_callback_that_panicked_counts_as_ran() {
    let clock = ManualClock::new();
    let mut sched = Scheduler::<(), _>::with_clock(clock.clone());
    let bad = sched.call_later(Duration::from_millis(1), |_, _| panic!("bad callback"));
    clock.advance(Duration::from_millis(1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sched.run_due(&mut ())));
    assert!(result.is_err());
    assert_eq!(sched.status(bad), CallbackStatus::Ran);
}
