//! `Scheduler` against a binary-heap callback scheduler, per timer, with 10^4 and 10^6 other
//! callbacks pending:
//! - `call_later_cancel/{wheel,binary_heap}/N`: schedule a callback, then cancel it;
//! - `call_later_run_due/{wheel,binary_heap}/N`: schedule a callback one tick ahead, move the
//!   clock one tick, run it;
//! - `run_due_idle/{wheel,binary_heap}/N`: move the clock one tick, run nothing.
//!
//! Every callback captures a `u64`, so each costs one allocation in both schedulers. Time comes
//! from a `ManualClock` in both.
//!
//! ```text
//! cargo bench -p tierwheel-bench --bench scheduler -- --warm-up-time 1 --measurement-time 2
//! ```

mod heap_scheduler;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use heap_scheduler::HeapScheduler;
use tierwheel::baseline::SplitMix64;
use tierwheel::{ManualClock, Resolution, Scheduler};

const SIZES: [(usize, &str); 2] = [(10_000, "1e4"), (1_000_000, "1e6")];
const TICK: Duration = Duration::from_millis(1);
const DAY_MS: u64 = 86_400_000;

/// A delay in `[lo, hi)` milliseconds from the crate's fixed-seed generator.
fn millis(rng: &mut SplitMix64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.below(hi - lo))
}

/// The operations both schedulers offer, so that each workload is written once.
trait Callbacks {
    type Handle: Copy;
    fn new(clock: ManualClock) -> Self;
    fn later(&mut self, delay: Duration, id: u64) -> Self::Handle;
    fn cancel(&mut self, handle: Self::Handle) -> bool;
    fn run_due(&mut self, ctx: &mut u64) -> usize;
    fn len(&self) -> usize;
}

impl Callbacks for Scheduler<u64, ManualClock> {
    type Handle = tierwheel::TimerHandle;
    fn new(clock: ManualClock) -> Self {
        Scheduler::with_clock_and_resolution(clock, Resolution::MILLISECOND)
    }
    fn later(&mut self, delay: Duration, id: u64) -> Self::Handle {
        self.call_later(delay, move |sum: &mut u64, _| *sum += id)
    }
    fn cancel(&mut self, handle: Self::Handle) -> bool {
        Scheduler::cancel(self, handle)
    }
    fn run_due(&mut self, ctx: &mut u64) -> usize {
        Scheduler::run_due(self, ctx)
    }
    fn len(&self) -> usize {
        Scheduler::len(self)
    }
}

impl Callbacks for HeapScheduler<u64, ManualClock> {
    type Handle = heap_scheduler::HeapHandle;
    fn new(clock: ManualClock) -> Self {
        HeapScheduler::with_clock_and_resolution(clock, Resolution::MILLISECOND)
    }
    fn later(&mut self, delay: Duration, id: u64) -> Self::Handle {
        self.call_later(delay, move |sum: &mut u64, _| *sum += id)
    }
    fn cancel(&mut self, handle: Self::Handle) -> bool {
        HeapScheduler::cancel(self, handle)
    }
    fn run_due(&mut self, ctx: &mut u64) -> usize {
        HeapScheduler::run_due(self, ctx)
    }
    fn len(&self) -> usize {
        HeapScheduler::len(self)
    }
}

/// A scheduler with `pending` callbacks due between 30 and 60 days from now: far enough that
/// no run of a benchmark reaches them.
fn filled<S: Callbacks>(pending: usize) -> (ManualClock, S) {
    let clock = ManualClock::new();
    let mut sched = S::new(clock.clone());
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    for id in 0..pending as u64 {
        sched.later(millis(&mut rng, 30 * DAY_MS, 60 * DAY_MS), id);
    }
    (clock, sched)
}

fn call_later_cancel<S: Callbacks>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group("call_later_cancel");
    for (pending, label) in SIZES {
        let (_clock, mut sched) = filled::<S>(pending);
        let mut rng = SplitMix64::new(7);
        group.bench_function(BenchmarkId::new(name, label), |b| {
            b.iter(|| {
                let h = sched.later(black_box(millis(&mut rng, 1, 60_000)), 1);
                assert!(sched.cancel(h));
            })
        });
        assert_eq!(sched.len(), pending);
    }
}

fn call_later_run_due<S: Callbacks>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group("call_later_run_due");
    for (pending, label) in SIZES {
        let (clock, mut sched) = filled::<S>(pending);
        let mut sum = 0;
        group.bench_function(BenchmarkId::new(name, label), |b| {
            b.iter(|| {
                sched.later(black_box(TICK), 1);
                clock.advance(TICK);
                assert_eq!(sched.run_due(&mut sum), 1);
            })
        });
        assert_eq!(sched.len(), pending);
    }
}

/// An event loop woken with nothing due: the clock moves a tick, `run_due` runs nothing.
fn run_due_idle<S: Callbacks>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group("run_due_idle");
    for (pending, label) in SIZES {
        let (clock, mut sched) = filled::<S>(pending);
        let mut sum = 0;
        group.bench_function(BenchmarkId::new(name, label), |b| {
            b.iter(|| {
                clock.advance(TICK);
                assert_eq!(sched.run_due(&mut sum), 0);
            })
        });
    }
}

fn benches(c: &mut Criterion) {
    call_later_cancel::<Scheduler<u64, ManualClock>>(c, "wheel");
    call_later_cancel::<HeapScheduler<u64, ManualClock>>(c, "binary_heap");
    call_later_run_due::<Scheduler<u64, ManualClock>>(c, "wheel");
    call_later_run_due::<HeapScheduler<u64, ManualClock>>(c, "binary_heap");
    run_due_idle::<Scheduler<u64, ManualClock>>(c, "wheel");
    run_due_idle::<HeapScheduler<u64, ManualClock>>(c, "binary_heap");
}

criterion_group!(scheduler, benches);
criterion_main!(scheduler);
