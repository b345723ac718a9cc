//! The service's async and reset surface through its public API, on a `ManualDriver`: `Sleep`
//! (reset both ways, after completion and before its first poll, `deadline`, `is_elapsed`),
//! `sleep_until`, `WithTimeout` and `timeout_at`, `Timeout::reset_at`/`reset_after`, `Interval`
//! with each `MissedTickBehavior` and as a `Stream`, `pending`, the `Instant` conversions and
//! shutdown. Time moves only when a test says so, so every instant is exact. One test races
//! resets and cancels against the real driver thread, on the real clock (bounded, see there).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures_core::Stream;
use tierwheel::service::{
    Handle, Interval, ManualDriver, MissedTickBehavior, ShutdownError, Sleep, Timeout,
    TimeoutError, TimerService, TimerStatus,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A manual driver with the default 1 ms tick, and a handle on it.
fn manual() -> (ManualDriver, Handle) {
    let driver = TimerService::builder().build_manual();
    let handle = driver.handle();
    (driver, handle)
}

/// A waker that counts its wakes.
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Wakes {
    fn new() -> (Arc<Self>, Waker) {
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        (wakes, waker)
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn poll_sleep(sleep: &mut Sleep, cx: &mut Context<'_>) -> Poll<Result<(), ShutdownError>> {
    Pin::new(sleep).poll(cx)
}

/// Runs `future` to completion on the manual time line: whenever it is pending, the clock
/// jumps to the next tick a timer is filed at. A future that waits on no timer is a bug here.
fn block_on_manual<F: Future>(driver: &mut ManualDriver, future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let next = driver
            .next_deadline()
            .expect("a pending future waits on a timer");
        driver.run_until(next);
    }
}

// ---------------------------------------------------------------------------------------
// Sleep
// ---------------------------------------------------------------------------------------

#[test]
fn a_sleep_reset_later_never_fires_at_the_old_time_and_fires_at_the_new_tick() {
    let (mut driver, handle) = manual();
    let (wakes, waker) = Wakes::new();
    let mut cx = Context::from_waker(&waker);
    let mut sleep = handle.sleep(ms(10));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    let later = handle.instant_of(ms(30));
    Pin::new(&mut sleep).reset(later);
    assert_eq!(sleep.deadline(), later);

    // The old tick passes: the driver files the timer again, nothing fires.
    assert_eq!(driver.run_until(ms(10)), 0);
    assert_eq!(driver.run_until(ms(30) - Duration::from_nanos(1)), 0);
    assert_eq!(wakes.count(), 0);
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert!(!sleep.is_elapsed());
    assert_eq!(driver.pending(), 1);

    assert_eq!(driver.run_until(ms(30)), 1);
    assert_eq!(wakes.count(), 1);
    assert!(sleep.is_elapsed());
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
    assert_eq!(driver.pending(), 0);
}

#[test]
fn a_sleep_reset_earlier_fires_at_the_new_tick_and_only_once() {
    let (mut driver, handle) = manual();
    let (wakes, waker) = Wakes::new();
    let mut cx = Context::from_waker(&waker);
    let mut sleep = handle.sleep(ms(50));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    Pin::new(&mut sleep).reset(handle.instant_of(ms(20)));
    assert_eq!(driver.next_deadline(), Some(ms(20)));

    assert_eq!(driver.run_until(ms(20) - Duration::from_nanos(1)), 0);
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(20)), 1);
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
    // Nothing is left at the old deadline.
    assert_eq!(driver.run_until(ms(50)), 0);
    assert_eq!(wakes.count(), 1);
    assert_eq!(driver.pending(), 0);
}

#[test]
fn resets_later_then_earlier_then_later_fire_at_the_last_one() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sleep = handle.sleep(ms(10));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    for at in [40, 25, 60, 15, 35] {
        Pin::new(&mut sleep).reset(handle.instant_of(ms(at)));
    }
    assert_eq!(driver.run_until(ms(34)), 0);
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(35)), 1);
    assert!(poll_sleep(&mut sleep, &mut cx).is_ready());
    assert_eq!(driver.run_until(ms(100)), 0);
}

#[test]
fn a_sleep_reset_into_the_past_fires_at_the_next_pass() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    driver.run_until(ms(10));
    let mut sleep = handle.sleep(ms(50));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    Pin::new(&mut sleep).reset(handle.instant_of(ms(3)));
    // The clock does not move: the pass at the current time fires it.
    assert_eq!(driver.run_until(ms(10)), 1);
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
}

#[test]
fn a_completed_sleep_reset_is_armed_again() {
    let (mut driver, handle) = manual();
    let (wakes, waker) = Wakes::new();
    let mut cx = Context::from_waker(&waker);
    let mut sleep = handle.sleep(ms(5));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(5)), 1);
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
    assert!(sleep.is_elapsed());

    Pin::new(&mut sleep).reset(handle.instant_of(ms(15)));
    assert!(!sleep.is_elapsed());
    assert_eq!(sleep.deadline(), handle.instant_of(ms(15)));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.pending(), 1);
    assert_eq!(driver.run_until(ms(15) - Duration::from_nanos(1)), 0);
    assert!(!sleep.is_elapsed());
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(15)), 1);
    assert_eq!(wakes.count(), 2);
    assert!(sleep.is_elapsed());
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));

    // Again, this time reset after the driver's next pass has given the entry back.
    driver.run_until(ms(16));
    Pin::new(&mut sleep).reset(handle.instant_of(ms(20)));
    assert!(!sleep.is_elapsed());
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(20)), 1);
    assert!(poll_sleep(&mut sleep, &mut cx).is_ready());
    assert_eq!(wakes.count(), 3);
}

#[test]
fn a_completed_sleep_reset_and_not_polled_still_fires_at_its_new_tick() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sleep = handle.sleep(ms(5));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    driver.run_until(ms(5));
    assert!(poll_sleep(&mut sleep, &mut cx).is_ready());
    Pin::new(&mut sleep).reset(handle.instant_of(ms(9)));
    assert_eq!(driver.pending(), 1);
    assert_eq!(driver.run_until(ms(8)), 0);
    assert!(!sleep.is_elapsed());
    assert_eq!(driver.run_until(ms(9)), 1);
    assert!(sleep.is_elapsed());
}

#[test]
fn a_sleep_reset_before_its_first_poll_registers_at_the_new_deadline() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sleep = handle.sleep(ms(10));
    Pin::new(&mut sleep).reset(handle.instant_of(ms(30)));
    assert_eq!(
        driver.pending(),
        0,
        "a sleep is registered at its first poll"
    );
    assert_eq!(sleep.deadline(), handle.instant_of(ms(30)));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.next_deadline(), Some(ms(30)));
    assert_eq!(driver.run_until(ms(29)), 0);
    assert_eq!(driver.run_until(ms(30)), 1);
    assert!(poll_sleep(&mut sleep, &mut cx).is_ready());

    // Reset before the first poll to an instant already passed: ready at once, no timer.
    let mut sleep = handle.sleep(ms(60));
    Pin::new(&mut sleep).reset(handle.instant_of(ms(1)));
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
    assert_eq!(driver.pending(), 0);
}

#[test]
fn reset_after_counts_from_the_current_time() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sleep = handle.sleep(ms(100));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    driver.run_until(ms(7));
    Pin::new(&mut sleep).reset_after(ms(10));
    assert_eq!(sleep.deadline(), handle.instant_of(ms(17)));
    assert_eq!(driver.run_until(ms(16)), 0);
    assert_eq!(driver.run_until(ms(17)), 1);
    assert!(poll_sleep(&mut sleep, &mut cx).is_ready());

    // And before the first poll.
    let mut sleep = handle.sleep(ms(100));
    driver.run_until(ms(20));
    Pin::new(&mut sleep).reset_after(ms(4));
    assert_eq!(sleep.deadline(), handle.instant_of(ms(24)));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(23)), 0);
    assert_eq!(driver.run_until(ms(24)), 1);
}

#[test]
fn deadline_is_the_instant_asked_for() {
    let (mut driver, handle) = manual();
    driver.run_until(ms(3));
    assert_eq!(handle.sleep(ms(7)).deadline(), handle.instant_of(ms(10)));
    let at = handle.instant_of(Duration::from_micros(12_345));
    assert_eq!(handle.sleep_until(at).deadline(), at);
    assert_eq!(
        handle
            .timeout_at(at, std::future::pending::<()>())
            .deadline(),
        at
    );
    assert_eq!(
        handle
            .timeout(ms(7), std::future::pending::<()>())
            .deadline(),
        handle.instant_of(ms(10))
    );
    // Not rounded to the tick, also once registered.
    let mut sleep = handle.sleep_until(at);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(sleep.deadline(), at);
}

#[test]
fn sleep_until_fires_at_the_first_tick_boundary_at_or_after_the_instant() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sleep = handle.sleep_until(handle.instant_of(Duration::from_micros(12_500)));
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(Duration::from_micros(12_999)), 0);
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(driver.run_until(ms(13)), 1);
    assert!(poll_sleep(&mut sleep, &mut cx).is_ready());
}

#[test]
fn a_sleep_whose_instant_passed_is_ready_at_its_first_poll_without_a_timer() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let _other = handle.call_later(ms(100), || {}).unwrap();
    driver.run_until(ms(10));
    assert_eq!(handle.pending(), 1);
    let before_start = handle.instant_of(Duration::ZERO) - ms(1);
    for instant in [
        handle.instant_of(ms(5)),
        handle.instant_of(ms(10)),
        before_start,
    ] {
        let mut sleep = handle.sleep_until(instant);
        assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
        assert_eq!(handle.pending(), 1, "no timer registered");
    }
    let mut now = handle.sleep(Duration::ZERO);
    assert_eq!(poll_sleep(&mut now, &mut cx), Poll::Ready(Ok(())));
    assert_eq!(handle.pending(), 1);
    assert_eq!(driver.run_until(ms(11)), 0);
}

/// A sleep that completed must say so, however it completed: `select!` loops guard a sleep's
/// branch with `!sleep.is_elapsed()`, and a completed sleep that claims otherwise is picked
/// again on every turn.
#[test]
fn a_sleep_that_completed_at_its_first_poll_is_elapsed() {
    let (mut driver, handle) = manual();
    driver.run_until(ms(10));
    let mut sleep = handle.sleep_until(handle.instant_of(ms(5)));
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(poll_sleep(&mut sleep, &mut cx), Poll::Ready(Ok(())));
    assert!(sleep.is_elapsed());
}

#[test]
fn the_sleep_is_small_and_unpin() {
    fn unpin<T: Unpin>() {}
    unpin::<Sleep>();
    unpin::<Interval>();
    assert!(
        std::mem::size_of::<Sleep>() <= 64,
        "Sleep is {} bytes",
        std::mem::size_of::<Sleep>()
    );
}

// ---------------------------------------------------------------------------------------
// WithTimeout
// ---------------------------------------------------------------------------------------

/// A future that completes (with its label) once its gate is opened.
struct Gate {
    open: Arc<AtomicBool>,
    label: u32,
}

impl Future for Gate {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        if self.open.load(Ordering::SeqCst) {
            Poll::Ready(self.label)
        } else {
            Poll::Pending
        }
    }
}

fn gate(label: u32) -> (Gate, Arc<AtomicBool>) {
    let open = Arc::new(AtomicBool::new(false));
    let gate = Gate {
        open: Arc::clone(&open),
        label,
    };
    (gate, open)
}

#[test]
fn with_timeout_reset_moves_the_limit_both_ways() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let (future, _open) = gate(1);
    let mut limited = handle.timeout(ms(10), future);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    assert_eq!(handle.pending(), 1);

    limited.reset(handle.instant_of(ms(30)));
    assert_eq!(limited.deadline(), handle.instant_of(ms(30)));
    driver.run_until(ms(29));
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());

    limited.reset(handle.instant_of(ms(35)));
    limited.reset(handle.instant_of(ms(32)));
    driver.run_until(ms(31));
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    driver.run_until(ms(32));
    assert_eq!(
        Pin::new(&mut limited).poll(&mut cx),
        Poll::Ready(Err(TimeoutError::Elapsed))
    );
    assert_eq!(driver.run_until(ms(40)), 0);
}

#[test]
fn with_timeout_reset_after_counts_from_now_both_ways() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let (future, _open) = gate(2);
    let mut limited = handle.timeout(ms(10), future);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    driver.run_until(ms(8));
    limited.reset_after(ms(10)); // later: 18
    assert_eq!(limited.deadline(), handle.instant_of(ms(18)));
    driver.run_until(ms(12));
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    limited.reset_after(ms(2)); // earlier: 14
    assert_eq!(limited.deadline(), handle.instant_of(ms(14)));
    assert_eq!(driver.run_until(ms(13)), 0);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    assert_eq!(driver.run_until(ms(14)), 1);
    assert_eq!(
        Pin::new(&mut limited).poll(&mut cx),
        Poll::Ready(Err(TimeoutError::Elapsed))
    );
    assert_eq!(driver.run_until(ms(18)), 0);
}

#[test]
fn with_timeout_yields_the_output_of_a_future_that_beats_its_limit() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let (future, open) = gate(3);
    let mut limited = handle.timeout(ms(10), future);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    driver.run_until(ms(9));
    open.store(true, Ordering::SeqCst);
    assert_eq!(Pin::new(&mut limited).poll(&mut cx), Poll::Ready(Ok(3)));
    drop(limited);
    assert_eq!(handle.pending(), 0);
    assert_eq!(driver.run_until(ms(10)), 0);
}

#[test]
fn with_timeout_reset_earlier_elapses_at_the_new_tick() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let (future, _open) = gate(4);
    let mut limited = handle.timeout(ms(100), future);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    driver.run_until(ms(5));
    limited.reset_after(ms(5));
    assert_eq!(driver.run_until(ms(9)), 0);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    assert_eq!(driver.run_until(ms(10)), 1);
    assert_eq!(
        Pin::new(&mut limited).poll(&mut cx),
        Poll::Ready(Err(TimeoutError::Elapsed))
    );
}

#[test]
fn with_timeout_gives_access_to_its_future() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    let (future, open) = gate(5);
    let mut limited = handle.timeout(ms(10), future);
    assert_eq!(limited.get_ref().label, 5);
    limited.get_mut().get_mut().label = 50;
    assert_eq!(limited.get_ref().label, 50);
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    assert_eq!(handle.pending(), 1);

    // Taking the future out cancels the limit's timer.
    let mut inner = limited.into_inner();
    assert_eq!(handle.pending(), 0);
    assert_eq!(driver.run_until(ms(20)), 0);
    assert!(inner.as_mut().poll(&mut cx).is_pending());
    open.store(true, Ordering::SeqCst);
    assert_eq!(inner.as_mut().poll(&mut cx), Poll::Ready(50));
}

#[test]
fn timeout_at_limits_at_the_instant() {
    let (mut driver, handle) = manual();
    let (future, _open) = gate(6);
    let limited = handle.timeout_at(handle.instant_of(ms(20)), future);
    assert_eq!(
        block_on_manual(&mut driver, limited),
        Err(TimeoutError::Elapsed)
    );
    assert_eq!(handle.time(), ms(20));

    // A limit already passed: a future ready at once still wins (it is polled first) ...
    let limited = handle.timeout_at(handle.instant_of(ms(1)), async { 7 });
    assert_eq!(block_on_manual(&mut driver, limited), Ok(7));
    // ... and one that is not is cut off at its first poll, with no timer.
    let (future, _open) = gate(8);
    let mut limited = handle.timeout_at(handle.instant_of(ms(1)), future);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(
        Pin::new(&mut limited).poll(&mut cx),
        Poll::Ready(Err(TimeoutError::Elapsed))
    );
    assert_eq!(handle.pending(), 0);
}

// ---------------------------------------------------------------------------------------
// Timeout (callback timers)
// ---------------------------------------------------------------------------------------

/// A callback timer at `deadline` that counts its runs.
fn counted(handle: &Handle, deadline: Duration) -> (Timeout, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let timeout = handle
        .call_at(deadline, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    (timeout, runs)
}

#[test]
fn timeout_reset_at_moves_it_later_or_earlier_to_the_exact_tick() {
    let (mut driver, handle) = manual();
    let (later, later_runs) = counted(&handle, ms(10));
    let (earlier, earlier_runs) = counted(&handle, ms(40));
    assert!(later.reset_at(ms(25)));
    assert!(earlier.reset_at(ms(15)));
    assert_eq!(later.deadline(), ms(25));
    assert_eq!(earlier.deadline(), ms(15));

    assert_eq!(driver.run_until(ms(10)), 0);
    assert_eq!(driver.run_until(ms(15) - Duration::from_nanos(1)), 0);
    assert_eq!(driver.run_until(ms(15)), 1);
    assert_eq!(earlier_runs.load(Ordering::SeqCst), 1);
    assert_eq!(driver.run_until(ms(24)), 0);
    assert_eq!(later_runs.load(Ordering::SeqCst), 0);
    assert_eq!(driver.run_until(ms(25)), 1);
    assert_eq!(later_runs.load(Ordering::SeqCst), 1);
    assert_eq!(driver.run_until(ms(40)), 0);
    assert_eq!(driver.pending(), 0);

    // A deadline between ticks rounds up; one in the past fires at the next pass.
    let (between, _) = counted(&handle, ms(100));
    assert!(between.reset_at(Duration::from_micros(45_200)));
    assert_eq!(driver.run_until(ms(45)), 0);
    assert_eq!(driver.run_until(ms(46)), 1);
    let (past, past_runs) = counted(&handle, ms(100));
    assert!(past.reset_at(ms(1)));
    assert_eq!(driver.run_until(ms(46)), 1);
    assert_eq!(past_runs.load(Ordering::SeqCst), 1);
}

#[test]
fn timeout_reset_after_counts_from_now() {
    let (mut driver, handle) = manual();
    let (timeout, runs) = counted(&handle, ms(10));
    driver.run_until(ms(6));
    assert!(timeout.reset_after(ms(10)));
    assert_eq!(timeout.deadline(), ms(16));
    assert_eq!(driver.run_until(ms(15)), 0);
    assert!(timeout.reset_after(ms(2)));
    assert_eq!(timeout.deadline(), ms(17));
    assert_eq!(driver.run_until(ms(16)), 0);
    assert_eq!(driver.run_until(ms(17)), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Saturates rather than overflow.
    let (far, _) = counted(&handle, ms(100));
    assert!(far.reset_after(Duration::MAX));
    assert_eq!(far.deadline(), Duration::MAX);
}

#[test]
fn timeout_resets_fail_once_its_fate_is_decided_and_never_revive_it() {
    let (mut driver, handle) = manual();
    let (fired, fired_runs) = counted(&handle, ms(5));
    let (cancelled, cancelled_runs) = counted(&handle, ms(5));
    let (unfired, unfired_runs) = counted(&handle, ms(50));
    assert!(cancelled.cancel());
    assert_eq!(driver.run_until(ms(5)), 1);

    for timeout in [&fired, &cancelled] {
        assert!(!timeout.reset_at(ms(20)));
        assert!(!timeout.reset_at(ms(1)));
        assert!(!timeout.reset_after(ms(10)));
        assert!(!timeout.cancel());
    }
    assert_eq!(fired.status(), TimerStatus::Expired);
    assert_eq!(cancelled.status(), TimerStatus::Cancelled);
    // A failed reset changes nothing, deadline included.
    assert_eq!(fired.deadline(), ms(5));
    assert_eq!(driver.pending(), 1);
    assert_eq!(driver.run_until(ms(30)), 0);
    assert_eq!(fired_runs.load(Ordering::SeqCst), 1);
    assert_eq!(cancelled_runs.load(Ordering::SeqCst), 0);

    let handed_back = driver.shutdown();
    assert_eq!(handed_back.len(), 1);
    assert!(!unfired.reset_at(ms(60)));
    assert!(!unfired.reset_after(Duration::ZERO));
    assert_eq!(unfired.status(), TimerStatus::Unfired);
    assert_eq!(handed_back[0].deadline(), ms(50));
    for timer in handed_back {
        timer.run();
    }
    assert_eq!(unfired_runs.load(Ordering::SeqCst), 1);
    assert!(!unfired.reset_at(ms(60)));
    assert_eq!(unfired.status(), TimerStatus::Expired);
}

/// A callback that cancels a timer due at the same tick, scheduled after it, stops it: timers
/// due together fire one after another, in order, as the wheel and the `Scheduler` fire them
/// (and asyncio skips a cancelled handle that was already due).
#[test]
fn a_callback_cancels_a_timer_due_at_the_same_tick() {
    let (mut driver, handle) = manual();
    let slot: Arc<std::sync::Mutex<Option<Timeout>>> = Arc::default();
    let (won_tx, won) = mpsc::channel();
    let victim_slot = Arc::clone(&slot);
    handle
        .call_at(ms(5), move || {
            let victim = victim_slot.lock().unwrap().take().unwrap();
            won_tx.send(victim.cancel()).unwrap();
        })
        .unwrap();
    let (victim, victim_runs) = counted(&handle, ms(5));
    *slot.lock().unwrap() = Some(victim.clone());
    driver.run_until(ms(5));
    assert_eq!(won.try_recv(), Ok(true), "the cancel from the callback won");
    assert_eq!(victim_runs.load(Ordering::SeqCst), 0);
    assert_eq!(victim.status(), TimerStatus::Cancelled);
}

/// Timers due by one pass run in deadline order, a timer moved later by a reset included:
/// here the driver reaches 10 ms at once, as a manual driver jumping or a late driver thread
/// does.
#[test]
fn timers_due_in_one_pass_run_in_deadline_order_after_resets() {
    let (mut driver, handle) = manual();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = |name: &'static str| {
        let order = Arc::clone(&order);
        move || order.lock().unwrap().push(name)
    };
    let moved = handle.call_at(ms(3), log("moved to 8 ms")).unwrap();
    handle.call_at(ms(5), log("due at 5 ms")).unwrap();
    assert!(moved.reset_at(ms(8)));
    assert_eq!(driver.run_until(ms(10)), 2);
    assert_eq!(*order.lock().unwrap(), ["due at 5 ms", "moved to 8 ms"]);
}

/// Shutdown hands back the unfired timers in the order they would have fired, by the deadlines
/// their last resets gave them.
#[test]
fn shutdown_hands_back_reset_timers_in_firing_order() {
    let (driver, handle) = manual();
    let moved = handle.call_at(ms(3), || {}).unwrap();
    handle.call_at(ms(10), || {}).unwrap();
    assert!(moved.reset_at(ms(50)));
    let deadlines: Vec<Duration> = driver.shutdown().iter().map(|t| t.deadline()).collect();
    assert_eq!(deadlines, [ms(10), ms(50)]);
}

/// Every timer's callback runs once, or exactly one cancel wins, while threads race cancels
/// and resets (later, earlier, into the past, relative) against the real driver firing them.
/// On the real clock by necessity: the race is with the driver thread. Timers are due within
/// 16 ticks of 50 µs, and the run stops after a fixed number of rounds or a time budget,
/// whichever comes first.
#[test]
fn timeout_resets_cancels_and_the_driver_race_exactly_once() {
    const TICK: Duration = Duration::from_micros(50);
    const ROUNDS: usize = 400;
    const BATCH: usize = 128;
    const RACERS: usize = 3;
    const BUDGET: Duration = Duration::from_secs(10);

    let service = TimerService::builder().tick(TICK).build().unwrap();
    let handle = service.handle();
    let ran: Arc<Vec<AtomicU8>> = Arc::new((0..ROUNDS * BATCH).map(|_| AtomicU8::new(0)).collect());
    let won: Vec<AtomicU8> = (0..ROUNDS * BATCH).map(|_| AtomicU8::new(0)).collect();
    let resets = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let mut timeouts: Vec<Timeout> = Vec::with_capacity(ROUNDS * BATCH);
    let started = Instant::now();
    let mut rounds = 0;

    while rounds < ROUNDS && started.elapsed() < BUDGET {
        let first = rounds * BATCH;
        let batch: Vec<Timeout> = (0..BATCH)
            .map(|i| {
                let ran = Arc::clone(&ran);
                let delay = TICK * (i % 16) as u32;
                handle
                    .call_later(delay, move || {
                        ran[first + i].fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap()
            })
            .collect();
        let start = Barrier::new(RACERS);
        thread::scope(|scope| {
            for racer in 0..RACERS {
                let (batch, start, won, resets, refused) =
                    (&batch, &start, &won, &resets, &refused);
                let handle = handle.clone();
                scope.spawn(move || {
                    let mut seed = (rounds * RACERS + racer) as u64;
                    start.wait();
                    for step in 0..BATCH {
                        // Each racer walks the batch from its own offset, so they meet.
                        let i = (step + racer * BATCH / RACERS) % BATCH;
                        let timeout = &batch[i];
                        let ticks = u32::try_from(splitmix(&mut seed) % 16).unwrap();
                        let moved = match splitmix(&mut seed) % 5 {
                            0 => {
                                if timeout.cancel() {
                                    won[first + i].fetch_add(1, Ordering::SeqCst);
                                }
                                continue;
                            }
                            1 => timeout.reset_at(handle.time() + TICK * ticks),
                            2 => timeout.reset_at(handle.time().saturating_sub(TICK * ticks)),
                            3 => timeout.reset_after(TICK * ticks),
                            _ => timeout.reset_at(Duration::ZERO),
                        };
                        let counter = if moved { resets } else { refused };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        // Whatever is still pending is cancelled, racing the driver once more.
        for (i, timeout) in batch.iter().enumerate() {
            if timeout.cancel() {
                won[first + i].fetch_add(1, Ordering::SeqCst);
            }
        }
        timeouts.extend(batch);
        rounds += 1;
    }
    // Joins the driver: every callback that started has finished.
    assert!(service.shutdown().is_empty(), "every timer was cancelled");

    let (mut ran_total, mut won_total) = (0, 0);
    for (id, timeout) in timeouts.iter().enumerate() {
        let r = ran[id].load(Ordering::SeqCst);
        let w = won[id].load(Ordering::SeqCst);
        assert_eq!(r + w, 1, "timer {id}: ran {r} times, {w} cancels won");
        let expected = if r == 1 {
            TimerStatus::Expired
        } else {
            TimerStatus::Cancelled
        };
        assert_eq!(timeout.status(), expected, "timer {id}");
        assert!(!timeout.cancel(), "timer {id}");
        assert!(!timeout.reset_at(Duration::ZERO), "timer {id}");
        assert!(!timeout.reset_after(TICK), "timer {id}");
        ran_total += usize::from(r);
        won_total += usize::from(w);
    }
    let (resets, refused) = (resets.into_inner(), refused.into_inner());
    println!(
        "{rounds} rounds, {} timers: {ran_total} ran, {won_total} cancelled; \
         {resets} resets moved a timer, {refused} found it decided",
        timeouts.len()
    );
    assert!(rounds >= 10, "only {rounds} rounds in {BUDGET:?}");
    assert!(ran_total > 0 && won_total > 0 && resets > 0);
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------
// Interval
// ---------------------------------------------------------------------------------------

/// The tick the interval yields at the current time, if one is due: the clock does not move.
/// A tick the interval has rescheduled at or before now may wait for the driver's pass at the
/// current time, which is run before giving up.
fn tick_now(interval: &mut Interval, driver: &mut ManualDriver) -> Option<Instant> {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..2 {
        match interval.poll_tick(&mut cx) {
            Poll::Ready(tick) => return Some(tick.expect("the service is running")),
            Poll::Pending => {
                let now = driver.handle().time();
                driver.run_until(now);
            }
        }
    }
    None
}

/// A 10 ms interval from time 0 with `behavior`, its first tick taken and the next one
/// registered, then driven to each of `times` (the first a stall of three periods and a half):
/// the ticks it yields at each, in order.
fn ticks_after_a_stall(behavior: MissedTickBehavior, times: &[u64]) -> Vec<(u64, Vec<Duration>)> {
    let (mut driver, handle) = manual();
    let mut interval = handle.interval(ms(10));
    interval.set_missed_tick_behavior(behavior);
    assert_eq!(interval.missed_tick_behavior(), behavior);
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(Duration::ZERO))
    );
    assert_eq!(tick_now(&mut interval, &mut driver), None);
    times
        .iter()
        .map(|&t| {
            driver.run_until(ms(t));
            let mut ticks = Vec::new();
            while let Some(tick) = tick_now(&mut interval, &mut driver) {
                ticks.push(handle.time_of(tick));
                assert!(ticks.len() < 10, "endless ticks at {t} ms");
            }
            (t, ticks)
        })
        .collect()
}

#[test]
fn interval_burst_catches_up_every_missed_tick() {
    assert_eq!(
        ticks_after_a_stall(MissedTickBehavior::Burst, &[35, 39, 40, 49, 50]),
        [
            (35, vec![ms(10), ms(20), ms(30)]),
            (39, vec![]),
            (40, vec![ms(40)]),
            (49, vec![]),
            (50, vec![ms(50)]),
        ]
    );
}

#[test]
fn interval_delay_shifts_the_schedule_to_the_late_tick() {
    assert_eq!(
        ticks_after_a_stall(MissedTickBehavior::Delay, &[35, 40, 44, 45, 55]),
        [
            (35, vec![ms(10)]),
            (40, vec![]),
            (44, vec![]),
            (45, vec![ms(45)]),
            (55, vec![ms(55)]),
        ]
    );
}

#[test]
fn interval_skip_keeps_the_cadence_and_drops_missed_ticks() {
    assert_eq!(
        ticks_after_a_stall(MissedTickBehavior::Skip, &[35, 39, 40, 50, 70, 79, 80]),
        [
            (35, vec![ms(10)]),
            (39, vec![]),
            (40, vec![ms(40)]),
            (50, vec![ms(50)]),
            // A stall that ends exactly on a point of the schedule skips it too.
            (70, vec![ms(60)]),
            (79, vec![]),
            (80, vec![ms(80)]),
        ]
    );
}

#[test]
fn interval_ticks_on_time_are_a_period_apart_whatever_the_behaviour() {
    for behavior in [
        MissedTickBehavior::Burst,
        MissedTickBehavior::Delay,
        MissedTickBehavior::Skip,
    ] {
        let (mut driver, handle) = manual();
        driver.run_until(ms(3));
        let mut interval = handle.interval(ms(10));
        interval.set_missed_tick_behavior(behavior);
        assert_eq!(interval.period(), ms(10));
        let mut ticks = Vec::new();
        for t in 3..=43 {
            driver.run_until(ms(t));
            if let Some(tick) = tick_now(&mut interval, &mut driver) {
                ticks.push(handle.time_of(tick));
                assert_eq!(handle.time(), handle.time_of(tick), "{behavior:?}: late");
            }
        }
        assert_eq!(
            ticks,
            [ms(3), ms(13), ms(23), ms(33), ms(43)],
            "{behavior:?}"
        );
    }
}

#[test]
fn the_first_tick_is_at_once_and_interval_at_starts_at_its_instant() {
    let (mut driver, handle) = manual();
    driver.run_until(ms(7));
    let mut cx = Context::from_waker(Waker::noop());
    let mut interval = handle.interval(ms(10));
    assert_eq!(
        interval.poll_tick(&mut cx),
        Poll::Ready(Ok(handle.instant_of(ms(7))))
    );
    assert_eq!(handle.pending(), 0, "the first tick needs no timer");
    assert!(interval.poll_tick(&mut cx).is_pending());
    assert_eq!(handle.pending(), 1);
    assert_eq!(driver.next_deadline(), Some(ms(17)));

    let mut later = handle.interval_at(handle.instant_of(ms(25)), ms(4));
    assert!(later.poll_tick(&mut cx).is_pending());
    driver.run_until(ms(24));
    assert_eq!(tick_now(&mut later, &mut driver), None);
    driver.run_until(ms(25));
    assert_eq!(
        tick_now(&mut later, &mut driver),
        Some(handle.instant_of(ms(25)))
    );
    driver.run_until(ms(29));
    assert_eq!(
        tick_now(&mut later, &mut driver),
        Some(handle.instant_of(ms(29)))
    );

    // A zero period is one tick of the service.
    assert_eq!(handle.interval(Duration::ZERO).period(), ms(1));
}

#[test]
fn interval_resets_move_the_next_tick() {
    let (mut driver, handle) = manual();
    let mut interval = handle.interval(ms(10));
    assert!(tick_now(&mut interval, &mut driver).is_some()); // 0
    assert!(tick_now(&mut interval, &mut driver).is_none()); // registered at 10

    // reset: one period from now.
    driver.run_until(ms(4));
    interval.reset();
    driver.run_until(ms(13));
    assert_eq!(tick_now(&mut interval, &mut driver), None);
    driver.run_until(ms(14));
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(14)))
    );
    assert!(tick_now(&mut interval, &mut driver).is_none()); // registered at 24

    // reset_immediately: the next tick is now, then the schedule goes on from it.
    driver.run_until(ms(16));
    interval.reset_immediately();
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(16)))
    );
    driver.run_until(ms(25));
    assert_eq!(tick_now(&mut interval, &mut driver), None);
    driver.run_until(ms(26));
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(26)))
    );

    // reset_after: the next tick `after` from now, later or earlier than planned.
    driver.run_until(ms(27));
    interval.reset_after(ms(30));
    driver.run_until(ms(56));
    assert_eq!(tick_now(&mut interval, &mut driver), None);
    driver.run_until(ms(57));
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(57)))
    );
    interval.reset_after(ms(2));
    driver.run_until(ms(58));
    assert_eq!(tick_now(&mut interval, &mut driver), None);
    driver.run_until(ms(59));
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(59)))
    );

    // reset_at: the next tick at the instant.
    interval.reset_at(handle.instant_of(ms(100)));
    driver.run_until(ms(99));
    assert_eq!(tick_now(&mut interval, &mut driver), None);
    driver.run_until(ms(100));
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(100)))
    );
    driver.run_until(ms(110));
    assert_eq!(
        tick_now(&mut interval, &mut driver),
        Some(handle.instant_of(ms(110)))
    );
}

#[test]
fn interval_tick_is_a_future_and_the_interval_a_stream() {
    let (mut driver, handle) = manual();
    let mut interval = handle.interval_at(handle.instant_of(ms(5)), ms(5));
    let first = block_on_manual(&mut driver, interval.tick());
    assert_eq!(first, Ok(handle.instant_of(ms(5))));
    assert_eq!(handle.time(), ms(5));

    let mut next = || {
        block_on_manual(
            &mut driver,
            std::future::poll_fn(|cx| Pin::new(&mut interval).poll_next(cx)),
        )
    };
    let ticks: Vec<_> = (0..3).map(|_| next()).collect();
    assert_eq!(
        ticks,
        [ms(10), ms(15), ms(20)].map(|t| Some(handle.instant_of(t)))
    );
    assert_eq!(handle.time(), ms(20));
}

#[test]
fn the_interval_stream_ends_when_the_service_shuts_down() {
    let (mut driver, handle) = manual();
    let (wakes, waker) = Wakes::new();
    let mut cx = Context::from_waker(&waker);
    let mut interval = handle.interval(ms(10));
    assert!(Pin::new(&mut interval).poll_next(&mut cx).is_ready());
    assert!(Pin::new(&mut interval).poll_next(&mut cx).is_pending());
    driver.run_until(ms(3));
    drop(driver.shutdown());
    assert_eq!(wakes.count(), 1, "the waiting stream is woken");
    assert_eq!(
        Pin::new(&mut interval).poll_next(&mut cx),
        Poll::Ready(None)
    );
    assert_eq!(interval.poll_tick(&mut cx), Poll::Ready(Err(ShutdownError)));
    // And stays ended, resets or not.
    interval.reset_immediately();
    assert_eq!(
        Pin::new(&mut interval).poll_next(&mut cx),
        Poll::Ready(None)
    );
}

// ---------------------------------------------------------------------------------------
// pending, conversions, shutdown
// ---------------------------------------------------------------------------------------

#[test]
fn pending_counts_registered_sleeps_and_callback_timers_only() {
    let (mut driver, handle) = manual();
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(handle.pending(), 0);
    let (first, _) = counted(&handle, ms(10));
    let (second, _) = counted(&handle, ms(20));
    assert_eq!(handle.pending(), 2);
    let mut long = handle.sleep(ms(30));
    let mut short = handle.sleep(ms(5));
    assert_eq!(handle.pending(), 2, "sleeps count once polled");
    assert!(poll_sleep(&mut long, &mut cx).is_pending());
    assert!(poll_sleep(&mut short, &mut cx).is_pending());
    assert_eq!(handle.pending(), 4);
    // Polled again, or reset later (it stays filed once), it still counts once.
    assert!(poll_sleep(&mut long, &mut cx).is_pending());
    Pin::new(&mut long).reset(handle.instant_of(ms(40)));
    assert!(first.reset_at(ms(12)));
    assert_eq!(handle.pending(), 4);

    assert!(second.cancel());
    assert_eq!(handle.pending(), 3);
    assert_eq!(driver.run_until(ms(12)), 2); // short, first
    assert_eq!(handle.pending(), 1);
    assert_eq!(driver.pending(), 1);
    drop(long);
    assert_eq!(handle.pending(), 0);
    drop(short); // fired already: nothing to take back
    assert_eq!(handle.pending(), 0);
}

#[test]
fn the_services_pending_counts_its_timers_on_the_real_driver() {
    let service = TimerService::new();
    let handle = service.handle();
    let far: Vec<_> = (0..5)
        .map(|_| {
            service
                .call_later(Duration::from_secs(3600), || {})
                .unwrap()
        })
        .collect();
    let mut sleep = service.sleep(Duration::from_secs(3600));
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(service.pending(), 5);
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert_eq!(service.pending(), 6);
    assert_eq!(handle.pending(), 6);
    assert!(far[0].cancel() && far[1].cancel());
    assert_eq!(service.pending(), 4);
    // One that fires: the driver takes it out before running it.
    let (tx, rx) = mpsc::channel();
    service
        .call_later(Duration::ZERO, move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(service.pending(), 4);
    drop(sleep);
    assert_eq!(service.pending(), 3);
    assert_eq!(service.shutdown().len(), 3);
}

#[test]
fn instant_of_and_time_of_are_inverse_and_saturate() {
    let (mut driver, handle) = manual();
    let origin = handle.instant_of(Duration::ZERO);
    for time in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(1500),
        ms(12_345),
        Duration::from_secs(86_400 * 365),
    ] {
        assert_eq!(handle.time_of(handle.instant_of(time)), time, "{time:?}");
        assert_eq!(handle.instant_of(time) - origin, time);
    }
    let now = Instant::now();
    assert_eq!(handle.instant_of(handle.time_of(now)), now);
    // Before the time line starts: its start.
    assert_eq!(handle.time_of(origin - ms(1)), Duration::ZERO);

    // The far end saturates instead of panicking, and stays ordered.
    let far = handle.instant_of(Duration::MAX);
    let century = handle.instant_of(Duration::from_secs(100 * 365 * 86_400));
    assert!(far >= century);
    assert!(handle.time_of(far) >= handle.time_of(century));
    // A sleep there never fires, and its deadline reads back.
    let mut sleep = handle.sleep_until(far);
    let mut forever = handle.sleep(Duration::MAX);
    assert_eq!(sleep.deadline(), far);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert!(poll_sleep(&mut forever, &mut cx).is_pending());
    assert_eq!(driver.run_until(Duration::from_secs(10 * 365 * 86_400)), 0);
    assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
    assert!(poll_sleep(&mut forever, &mut cx).is_pending());
}

/// An interval whose period reaches past what `Instant` can hold schedules its next tick at
/// the far end, like a sleep there: the first tick, then none.
#[test]
fn an_interval_with_an_endless_period_ticks_once() {
    let (mut driver, handle) = manual();
    for behavior in [
        MissedTickBehavior::Burst,
        MissedTickBehavior::Delay,
        MissedTickBehavior::Skip,
    ] {
        let mut interval = handle.interval(Duration::MAX);
        interval.set_missed_tick_behavior(behavior);
        assert!(tick_now(&mut interval, &mut driver).is_some());
        driver.run_until(Duration::from_secs(86_400));
        assert_eq!(tick_now(&mut interval, &mut driver), None);
        interval.reset();
        assert_eq!(tick_now(&mut interval, &mut driver), None);
    }
}

#[test]
fn shutdown_resolves_waiting_sleeps_timeouts_and_intervals() {
    let (mut driver, handle) = manual();
    let (wakes, waker) = Wakes::new();
    let mut cx = Context::from_waker(&waker);
    let mut waiting = handle.sleep(ms(50));
    let mut completed = handle.sleep(ms(1));
    let mut unpolled = handle.sleep(ms(50));
    let (future, _open) = gate(9);
    let mut limited = handle.timeout(ms(50), future);
    let mut interval = handle.interval(ms(10));
    assert!(poll_sleep(&mut waiting, &mut cx).is_pending());
    assert!(poll_sleep(&mut completed, &mut cx).is_pending());
    assert!(Pin::new(&mut limited).poll(&mut cx).is_pending());
    assert!(interval.poll_tick(&mut cx).is_ready());
    assert!(interval.poll_tick(&mut cx).is_pending());
    driver.run_until(ms(1));
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_sleep(&mut completed, &mut cx), Poll::Ready(Ok(())));

    drop(driver.shutdown());
    assert_eq!(wakes.count(), 4, "every waiting task is woken");
    assert_eq!(
        poll_sleep(&mut waiting, &mut cx),
        Poll::Ready(Err(ShutdownError))
    );
    assert_eq!(
        poll_sleep(&mut unpolled, &mut cx),
        Poll::Ready(Err(ShutdownError))
    );
    assert_eq!(
        Pin::new(&mut limited).poll(&mut cx),
        Poll::Ready(Err(TimeoutError::Shutdown))
    );
    assert_eq!(interval.poll_tick(&mut cx), Poll::Ready(Err(ShutdownError)));
    // A completed sleep stays completed; reset, it cannot be armed again.
    assert_eq!(poll_sleep(&mut completed, &mut cx), Poll::Ready(Ok(())));
    Pin::new(&mut completed).reset(handle.instant_of(ms(60)));
    assert_eq!(
        poll_sleep(&mut completed, &mut cx),
        Poll::Ready(Err(ShutdownError))
    );
    // Nor can the others.
    Pin::new(&mut waiting).reset_after(ms(5));
    assert_eq!(
        poll_sleep(&mut waiting, &mut cx),
        Poll::Ready(Err(ShutdownError))
    );
    let mut fresh = handle.sleep(ms(1));
    assert_eq!(
        poll_sleep(&mut fresh, &mut cx),
        Poll::Ready(Err(ShutdownError))
    );
    assert_eq!(handle.pending(), 0);
}

/// On the real driver: a task parked on a sleep and an interval is woken by shutdown, through
/// its waker. Bounded: the task gives up after a guard time, and the test fails instead of
/// hanging.
#[test]
fn shutdown_of_the_real_service_wakes_a_task_blocked_on_a_sleep() {
    const GUARD: Duration = Duration::from_secs(30);
    struct Unpark {
        thread: thread::Thread,
        wakes: AtomicUsize,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let service = TimerService::new();
    let handle = service.handle();
    let (ready_tx, ready) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let mut sleep = handle.sleep(Duration::from_secs(3600));
        let mut interval = handle.interval(Duration::from_secs(3600));
        let unpark = Arc::new(Unpark {
            thread: thread::current(),
            wakes: AtomicUsize::new(0),
        });
        let waker = Waker::from(Arc::clone(&unpark));
        let mut cx = Context::from_waker(&waker);
        assert!(interval.poll_tick(&mut cx).is_ready());
        assert!(poll_sleep(&mut sleep, &mut cx).is_pending());
        assert!(interval.poll_tick(&mut cx).is_pending());
        ready_tx.send(()).unwrap();
        let give_up = Instant::now() + GUARD;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            if unpark.wakes.load(Ordering::SeqCst) > 0 || left.is_zero() {
                break;
            }
            thread::park_timeout(left);
        }
        let sleep = poll_sleep(&mut sleep, &mut cx);
        let tick = Pin::new(&mut interval).poll_next(&mut cx);
        (unpark.wakes.load(Ordering::SeqCst), sleep, tick)
    });
    ready.recv_timeout(GUARD).unwrap();
    drop(service);
    let (wakes, sleep, tick) = waiter.join().unwrap();
    assert!(wakes > 0, "the waiting task was never woken");
    assert_eq!(sleep, Poll::Ready(Err(ShutdownError)));
    assert_eq!(tick, Poll::Ready(None));
}
