//! 10^6 schedule + cancel pairs leave the service's memory flat: a cancel takes its timer out
//! of the wheel and drops its callback at once, not at its (distant) deadline.

use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tierwheel::service::TimerService;

const PAIRS: usize = 1_000_000;
const BATCH: usize = 100_000;
const GUARD: Duration = Duration::from_secs(60);

/// Counts the callbacks alive: +1 when made, -1 when dropped (run or not).
struct Live(Arc<AtomicIsize>);

impl Live {
    fn new(count: &Arc<AtomicIsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(count))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resident set size in bytes, where the platform tells it.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn schedule_cancel_pairs_leave_memory_flat() {
    let service = TimerService::new();
    let live = Arc::new(AtomicIsize::new(0));
    let mut baseline = None;
    for batch in 0..PAIRS / BATCH {
        for _ in 0..BATCH {
            let token = Live::new(&live);
            let timeout = service
                .call_later(Duration::from_secs(3600), move || drop(token))
                .unwrap();
            assert!(timeout.cancel());
        }
        // A cancel takes its timer out of the wheel and drops its callback before it returns;
        // this timer makes the driver run a pass before the count and the memory are read.
        let (tx, rx) = mpsc::channel();
        service
            .call_later(Duration::ZERO, move || tx.send(()).unwrap())
            .unwrap();
        rx.recv_timeout(GUARD).unwrap();
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "batch {batch}: cancelled callbacks alive"
        );
        if batch == 1 {
            baseline = resident_bytes();
        }
    }
    if let (Some(before), Some(after)) = (baseline, resident_bytes()) {
        let growth = after.saturating_sub(before);
        // A leak of one timer per pair would be well over 100 MB.
        assert!(
            growth < 16 << 20,
            "resident set grew {growth} bytes over {PAIRS} pairs"
        );
    }
    assert!(service.shutdown().is_empty());
}

#[test]
fn the_manual_driver_holds_no_cancelled_timer() {
    let mut driver = TimerService::builder().build_manual();
    let handle = driver.handle();
    for round in 0..1_000 {
        for i in 0..1_000 {
            let timeout = handle.call_later(Duration::from_secs(3600), || {}).unwrap();
            if i % 2 == 0 {
                // In the driver's scheduler before the cancel: the cancel must free it there.
                assert_eq!(driver.pending(), 1);
            }
            assert!(timeout.cancel());
        }
        assert_eq!(driver.pending(), 0, "round {round}");
    }
}

#[test]
fn cancelled_callbacks_are_dropped_while_their_timeouts_live() {
    let mut driver = TimerService::builder().build_manual();
    let handle = driver.handle();
    let live = Arc::new(AtomicIsize::new(0));
    let mut kept = Vec::new();
    for i in 0..1_000 {
        let token = Live::new(&live);
        let timeout = handle
            .call_later(Duration::from_secs(3600), move || drop(token))
            .unwrap();
        if i % 2 == 0 {
            driver.pending(); // inserted first: the cancel goes through the driver
        }
        assert!(timeout.cancel());
        kept.push(timeout);
    }
    assert_eq!(driver.pending(), 0);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(kept.iter().all(|t| t.is_cancelled()));
}
