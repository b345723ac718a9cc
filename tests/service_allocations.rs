//! What the service allocates, counted by a global allocator on the test's own thread only (a
//! thread-local switch, so the test harness's threads do not disturb the counts): resetting a
//! registered sleep allocates nothing, nor does replacing a sleep by a new one once the
//! service is warmed up (timer entries are pooled), and sleeps registered and fired cost at
//! most one allocation each, amortized. Everything runs on a `ManualDriver`, on this thread.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tierwheel::service::{Handle, ManualDriver, Sleep, Timeout, TimerService};

mod counting {
    //! The counting allocator: the one place this file uses `unsafe`.
    #![allow(unsafe_code)]

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Whether this thread's allocations are being counted.
        pub(super) static COUNTING: Cell<bool> = const { Cell::new(false) };
        /// This thread's allocations (growths by `realloc` included) while counting.
        pub(super) static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// Wraps the system allocator; counts allocations made while the thread's switch is on.
    pub(super) struct CountingAlloc;

    fn count() {
        // `const` thread-locals of `Cell`s have no destructor and never allocate, so this is
        // safe to call from inside the allocator; `try_with` covers a thread's teardown.
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if counting {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    }

    // SAFETY:
    // 1. Every method forwards to `System` with the caller's arguments unchanged, so it upholds
    //    `GlobalAlloc`'s contract exactly as `System` does.
    // 2. The bookkeeping (`count`) touches only `const` thread-local `Cell`s: it neither
    //    allocates nor unwinds.
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: forwarded as is (1. above).
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded as is (1. above).
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: forwarded as is (1. above).
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: forwarded as is (1. above).
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::CountingAlloc = counting::CountingAlloc;

/// Runs `f` and returns what it returned and how many allocations this thread made in it.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    counting::ALLOCATIONS.with(|n| n.set(0));
    counting::COUNTING.with(|on| on.set(true));
    let result = f();
    counting::COUNTING.with(|on| on.set(false));
    (result, counting::ALLOCATIONS.with(Cell::get))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A waker as a runtime's: an `Arc`, whose clones only count references.
struct Task(AtomicUsize);

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn task_waker() -> Waker {
    Waker::from(Arc::new(Task(AtomicUsize::new(0))))
}

fn poll(
    sleep: &mut Sleep,
    cx: &mut Context<'_>,
) -> Poll<Result<(), tierwheel::service::ShutdownError>> {
    Pin::new(sleep).poll(cx)
}

/// A manual driver that has registered, fired, reset and dropped `n` sleeps, so that its wheel,
/// its pool of entries and the driver's buffers have grown to hold `n` at once.
fn warmed_up(n: usize, cx: &mut Context<'_>) -> (ManualDriver, Handle) {
    let mut driver = TimerService::builder().build_manual();
    let handle = driver.handle();
    let start = handle.time();
    let mut sleeps: Vec<Sleep> = (0..n)
        .map(|i| handle.sleep(ms(1 + (i % 50) as u64)))
        .collect();
    for sleep in &mut sleeps {
        assert!(poll(sleep, cx).is_pending());
    }
    for (i, sleep) in sleeps.iter_mut().enumerate() {
        let at = start + ms(if i % 2 == 0 { 100 } else { 1 });
        Pin::new(sleep).reset(handle.instant_of(at));
    }
    driver.run_until(start + ms(200));
    for sleep in &mut sleeps {
        assert!(poll(sleep, cx).is_ready());
    }
    drop(sleeps);
    // One more pass gives the fired entries back to the pool.
    driver.run_until(start + ms(201));
    (driver, handle)
}

/// An idle timeout under traffic, for `steps` milliseconds: every millisecond the driver runs
/// (filing the timer again when its old tick comes) and the sleep, and a callback timer beside
/// it, are pushed back; every tenth, pulled in first.
fn traffic(
    driver: &mut ManualDriver,
    idle: &mut Sleep,
    timeout: &Timeout,
    steps: u64,
    cx: &mut Context<'_>,
) {
    let handle = driver.handle();
    for step in 0..steps {
        let now = handle.time() + ms(1);
        driver.run_until(now);
        if step % 10 == 0 {
            Pin::new(&mut *idle).reset(handle.instant_of(now + ms(2)));
            assert!(timeout.reset_at(now + ms(2)));
        }
        Pin::new(&mut *idle).reset(handle.instant_of(now + ms(30 + step % 7)));
        Pin::new(&mut *idle).reset_after(ms(30));
        assert!(timeout.reset_after(ms(30)));
        assert!(poll(idle, cx).is_pending());
    }
}

#[test]
fn resetting_a_registered_sleep_allocates_nothing() {
    let waker = task_waker();
    let mut cx = Context::from_waker(&waker);
    let (mut driver, handle) = warmed_up(1_000, &mut cx);
    let mut idle = handle.sleep(ms(30));
    assert!(poll(&mut idle, &mut cx).is_pending());
    let timeout = handle.call_later(ms(30), || {}).unwrap();
    // The wheel's free list of blocks grows the first time time crosses the span of each of its
    // levels (64 ms, 4.096 s): a first run of the same traffic does that.
    traffic(&mut driver, &mut idle, &timeout, 10_000, &mut cx);
    let ((), allocations) =
        allocations_in(|| traffic(&mut driver, &mut idle, &timeout, 10_000, &mut cx));
    assert_eq!(allocations, 0, "allocations in 10,000 steps of resets");
    assert!(!idle.is_elapsed());
    assert_eq!(driver.pending(), 2);
}

/// The pattern of a request loop, `steps` times: drop the last request's sleep, start the next
/// one's; the driver runs every hundredth step.
fn requests(driver: &mut ManualDriver, sleep: &mut Sleep, steps: u64, cx: &mut Context<'_>) {
    let handle = driver.handle();
    for step in 0..steps {
        drop(std::mem::replace(sleep, handle.sleep(ms(30 + step % 5))));
        assert!(poll(sleep, cx).is_pending());
        if step % 100 == 0 {
            driver.run_until(handle.time() + ms(1));
        }
    }
}

#[test]
fn replacing_a_sleep_by_a_new_one_allocates_nothing_once_warmed_up() {
    let waker = task_waker();
    let mut cx = Context::from_waker(&waker);
    let (mut driver, handle) = warmed_up(64, &mut cx);
    let mut sleep = handle.sleep(ms(30));
    assert!(poll(&mut sleep, &mut cx).is_pending());
    // As above: the wheel has seen this much time pass once.
    requests(&mut driver, &mut sleep, 10_000, &mut cx);
    let ((), allocations) = allocations_in(|| requests(&mut driver, &mut sleep, 10_000, &mut cx));
    assert_eq!(allocations, 0, "allocations in 10,000 replacements");
    assert_eq!(driver.pending(), 1);
}

#[test]
fn sleeps_registered_and_fired_cost_at_most_one_allocation_each() {
    const SLEEPS: usize = 10_000;
    const ROUNDS: usize = 4;
    let waker = task_waker();
    let mut cx = Context::from_waker(&waker);
    // Warmed up for a handful of sleeps only: the rounds below grow everything they need.
    let (mut driver, handle) = warmed_up(16, &mut cx);
    let mut sleeps: Vec<Sleep> = Vec::with_capacity(SLEEPS);
    let mut per_round = Vec::new();
    for _ in 0..ROUNDS {
        let ((), allocations) = allocations_in(|| {
            let start = handle.time();
            for i in 0..SLEEPS {
                sleeps.push(handle.sleep(ms(1 + (i % 100) as u64)));
            }
            for sleep in &mut sleeps {
                assert!(poll(sleep, &mut cx).is_pending());
            }
            assert_eq!(driver.run_until(start + ms(100)), SLEEPS);
            for sleep in &mut sleeps {
                assert!(poll(sleep, &mut cx).is_ready());
            }
            sleeps.clear();
        });
        per_round.push(allocations);
    }
    let total: u64 = per_round.iter().sum();
    println!("allocations per round of {SLEEPS} sleeps registered and fired: {per_round:?}");
    // A fired entry goes back to the pool at the driver's pass after its sleep is dropped, so
    // the first two rounds allocate one entry per sleep (and grow the wheel and the driver's
    // buffers), and later rounds reuse them.
    assert!(
        total <= (ROUNDS * SLEEPS) as u64,
        "{total} allocations for {} sleeps: {per_round:?}",
        ROUNDS * SLEEPS
    );
    for (round, &allocations) in per_round.iter().enumerate() {
        assert!(
            allocations <= (SLEEPS + SLEEPS / 100) as u64,
            "round {round}: {allocations} allocations for {SLEEPS} sleeps"
        );
    }
}
