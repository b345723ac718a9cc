//! loom models of the service's races, on the very code the service runs (its `sync` module
//! switches to loom under `cfg(tierwheel_loom)`, a cfg of our own so that a downstream crate's
//! `--cfg loom` leaves tierwheel on std); the driver is a `ManualDriver` stepped by the model's
//! main thread. Run:
//!
//! ```text
//! RUSTFLAGS="--cfg tierwheel_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release --target-dir target/loom --test loom_service
//! ```
#![cfg(tierwheel_loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;
use tierwheel::service::{Timeout, TimerService, TimerStatus};

/// A timer due at once whose callback counts its runs.
fn counted(handle: &tierwheel::service::Handle) -> (Timeout, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let timeout = handle
        .call_at(Duration::ZERO, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    (timeout, ran)
}

#[test]
fn cancel_vs_fire() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle());
        let racer = timeout.clone();
        let cancel = thread::spawn(move || racer.cancel());
        driver.run_until(Duration::ZERO);
        let won = cancel.join().unwrap();
        let ran = ran.load(Ordering::SeqCst);
        assert_eq!(usize::from(won) + ran, 1, "won {won}, ran {ran}");
        assert_eq!(timeout.is_cancelled(), won);
        assert_eq!(timeout.is_expired(), ran == 1);
        // A winning cancel is freed by the driver's next pass, not at the deadline.
        assert_eq!(driver.pending(), 0);
    });
}

/// The driver applying a timer's insert races a cancel of it; the timer is far from due, so a
/// cancelled timer left in the scheduler would show as pending.
#[test]
fn cancel_vs_insert_frees_at_once() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let timeout = driver
            .handle()
            .call_at(Duration::from_secs(1), || {})
            .unwrap();
        let racer = timeout.clone();
        let cancel = thread::spawn(move || racer.cancel());
        let during = driver.pending();
        assert!(during <= 1);
        assert!(cancel.join().unwrap());
        assert_eq!(driver.pending(), 0, "a cancelled timer outlived the cancel");
    });
}

/// Counts how many times it was dropped: a callback's captures, to see when it is freed.
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The placing race in full: the driver takes the insert, checks the state, places the timer
/// and sets `PLACED`, while a cancel wins the CAS and then either finds `PLACED` (and sends a
/// `Cancel`), withdraws the queued insert, or leaves the timer to the driver. Whatever the
/// interleaving the callback is dropped exactly once, by the end of the driver's next pass,
/// and the scheduler is left empty.
#[test]
fn cancel_vs_placing_frees_exactly_once() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let dropped = Arc::new(AtomicUsize::new(0));
        let token = Token(Arc::clone(&dropped));
        let timeout = driver
            .handle()
            .call_at(Duration::from_secs(1), move || drop(token))
            .unwrap();
        let racer = timeout.clone();
        let cancel = thread::spawn(move || racer.cancel());
        driver.pending();
        assert!(cancel.join().unwrap());
        assert_eq!(driver.pending(), 0, "a cancelled timer outlived the cancel");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(timeout.is_cancelled());
    });
}

/// A push drops the inserts of cancelled timers at the end of its shard: a cancel of the
/// last timer queued in a shard races another thread pushing to that shard and the driver
/// taking the queues. The timer queued before the cancelled one, and the one pushed after
/// it, are never lost or duplicated; the cancelled one never reaches the scheduler for good
/// and its callback is dropped exactly once. (Under loom there are two shards, and a thread
/// uses the shard of its number: the main thread and thread 2 share shard 0.)
#[test]
fn cancel_vs_push_vs_take() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let handle = driver.handle();
        let dropped = Arc::new(AtomicUsize::new(0));
        let token = Token(Arc::clone(&dropped));
        let kept = handle.call_at(Duration::from_secs(3), || {}).unwrap();
        let mine = handle
            .call_at(Duration::from_secs(1), move || drop(token))
            .unwrap();
        let racer = mine.clone();
        let cancel = thread::spawn(move || racer.cancel());
        let other_handle = handle.clone();
        let other = thread::spawn(move || other_handle.call_at(Duration::from_secs(2), || {}));
        driver.pending();
        assert!(cancel.join().unwrap());
        let other = other.join().unwrap().unwrap();
        assert_eq!(driver.pending(), 2, "the kept and the other timer");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(kept.cancel() && other.cancel());
        assert_eq!(driver.pending(), 0);
    });
}

/// Two timers due at the same time, scheduled from threads on different shards, the first
/// call happening before the second (the second thread waits for a flag the first sets after
/// its call), while the driver takes the queues: they fire in the order they were
/// scheduled, whichever shard each used and whether the driver's take saw none, the first,
/// or both.
fn ties_across_shards(first_on_shard_0: bool) {
    loom::model(move || {
        let mut driver = TimerService::builder().build_manual();
        let order = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let scheduled = Arc::new(AtomicBool::new(false));
        // Thread 1 uses shard 1, thread 2 shard 0.
        let callers: Vec<_> = [1, 2]
            .into_iter()
            .map(|thread| {
                let (handle, order, scheduled) =
                    (driver.handle(), Arc::clone(&order), Arc::clone(&scheduled));
                let first = (thread == 2) == first_on_shard_0;
                thread::spawn(move || {
                    if !first {
                        while !scheduled.load(Ordering::Acquire) {
                            thread::yield_now();
                        }
                    }
                    let i = if first { 1 } else { 2 };
                    handle
                        .call_at(Duration::from_secs(1), move || {
                            order.lock().unwrap().push(i)
                        })
                        .unwrap();
                    scheduled.store(true, Ordering::Release);
                })
            })
            .collect();
        // Lets the callers go first in loom's first schedule; the others are explored anyway.
        thread::yield_now();
        driver.pending();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_eq!(driver.run_until(Duration::from_secs(1)), 2);
        assert_eq!(*order.lock().unwrap(), [1, 2]);
    });
}

#[test]
fn ties_across_shards_first_on_shard_0() {
    ties_across_shards(true);
}

#[test]
fn ties_across_shards_first_on_shard_1() {
    ties_across_shards(false);
}

#[test]
fn cancel_vs_cancel() {
    loom::model(|| {
        let mut driver = TimerService::builder().build_manual();
        let (timeout, ran) = counted(&driver.handle());
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
        let (timeout, ran) = counted(&driver.handle());
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
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        let timeout = handle
            .call_at(Duration::from_secs(1), move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        // A late scheduler: refused after shutdown, taken before it; never lost. It is thread
        // 1, so it pushes to shard 1, which nothing used before.
        let late_handle = handle.clone();
        let late = thread::spawn(move || late_handle.call_at(Duration::from_secs(2), || {}));
        let racer = timeout.clone();
        let cancel = thread::spawn(move || racer.cancel());
        let unfired = driver.shutdown();
        let won = cancel.join().unwrap();
        let late = late.join().unwrap();
        let handed_back = unfired.len();
        assert_eq!(timeout.status() == TimerStatus::Unfired, !won);
        assert_eq!(handed_back, usize::from(!won) + usize::from(late.is_ok()));
        if let Ok(late) = late {
            assert_eq!(late.status(), TimerStatus::Unfired);
        }
        assert!(handle.call_at(Duration::ZERO, || {}).is_err());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}
