//! `TimerService` against the usual hand-rolled alternative, a `Mutex<BinaryHeap>` with a
//! `Condvar` driver thread (`heap_timer.rs`), with 10^5 other timers pending (due in 1 to 60
//! minutes, random):
//! - `schedule_cancel/{service,heap_condvar}/1e5`: one thread schedules a timer (1 to 60 s
//!   out) and cancels it; one iteration is one pair;
//! - `schedule_cancel_2threads/{service,heap_condvar}/1e5`: the same from two threads at
//!   once; one iteration is one pair (each thread does half);
//! - `schedule_fire/{service,heap_condvar}/1e5`: schedule timers due at once and wait until
//!   the driver has run them all; one iteration is one timer.
//!
//! Every callback captures a `u64`-sized value, so each costs one allocation in both.
//!
//! The groups `vs_tokio_wall` and `vs_tokio_cpu` (in `vs_tokio.rs`) measure the async timers
//! against `tokio::time`: resetting and replacing sleeps, and 10^6 tasks awaiting sleeps.
//!
//! ```text
//! cargo bench -p tierwheel-bench --bench service -- --warm-up-time 1 --measurement-time 2
//! cargo bench -p tierwheel-bench --bench service -- vs_tokio --warm-up-time 1 --measurement-time 3
//! ```

mod heap_timer;
mod vs_tokio;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use heap_timer::{HeapTimeout, HeapTimer};
use tierwheel::baseline::SplitMix64;
use tierwheel::service::{Timeout, TimerService};

const PENDING: (usize, &str) = (100_000, "1e5");

/// A delay in `[lo, hi)` milliseconds from the crate's fixed-seed generator.
fn millis(rng: &mut SplitMix64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.below(hi - lo))
}

/// What both timers offer, so each workload is written once.
trait Timers: Sync {
    type Timeout;
    fn new() -> Self;
    fn later<F: FnOnce() + Send + 'static>(&self, delay: Duration, f: F) -> Self::Timeout;
    fn cancel(timeout: &Self::Timeout) -> bool;
}

impl Timers for TimerService {
    type Timeout = Timeout;
    fn new() -> Self {
        TimerService::new()
    }
    fn later<F: FnOnce() + Send + 'static>(&self, delay: Duration, f: F) -> Timeout {
        self.call_later(delay, f).unwrap()
    }
    fn cancel(timeout: &Timeout) -> bool {
        timeout.cancel()
    }
}

impl Timers for HeapTimer {
    type Timeout = HeapTimeout;
    fn new() -> Self {
        HeapTimer::new()
    }
    fn later<F: FnOnce() + Send + 'static>(&self, delay: Duration, f: F) -> HeapTimeout {
        self.call_later(delay, f)
    }
    fn cancel(timeout: &HeapTimeout) -> bool {
        timeout.cancel()
    }
}

/// A timer service with `n` timers pending far in the future.
fn loaded<T: Timers>(n: usize) -> (T, Vec<T::Timeout>) {
    let timers = T::new();
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let pending = (0..n as u64)
        .map(|i| {
            timers.later(millis(&mut rng, 60_000, 3_600_000), move || {
                black_box(i);
            })
        })
        .collect();
    (timers, pending)
}

fn pairs<T: Timers>(timers: &T, rng: &mut SplitMix64, count: u64) {
    for i in 0..count {
        let timeout = timers.later(millis(rng, 1_000, 60_000), move || {
            black_box(i);
        });
        assert!(T::cancel(&timeout));
    }
}

fn schedule_cancel<T: Timers>(c: &mut Criterion, name: &str) {
    let (timers, _pending) = loaded::<T>(PENDING.0);
    let mut group = c.benchmark_group("schedule_cancel");
    group.throughput(Throughput::Elements(1));
    let mut rng = SplitMix64::new(7);
    group.bench_function(BenchmarkId::new(name, PENDING.1), |b| {
        b.iter(|| pairs(&timers, &mut rng, 1))
    });
    group.finish();
}

fn schedule_cancel_2threads<T: Timers>(c: &mut Criterion, name: &str) {
    let (timers, _pending) = loaded::<T>(PENDING.0);
    let mut group = c.benchmark_group("schedule_cancel_2threads");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new(name, PENDING.1), |b| {
        b.iter_custom(|iters| {
            let start_line = Barrier::new(3);
            std::thread::scope(|s| {
                for seed in [11, 13] {
                    let (timers, start_line) = (&timers, &start_line);
                    s.spawn(move || {
                        start_line.wait();
                        pairs(timers, &mut SplitMix64::new(seed), iters.div_ceil(2));
                    });
                }
                start_line.wait();
                Instant::now()
            })
            .elapsed()
        })
    });
    group.finish();
}

fn schedule_fire<T: Timers>(c: &mut Criterion, name: &str) {
    let (timers, _pending) = loaded::<T>(PENDING.0);
    let mut group = c.benchmark_group("schedule_fire");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new(name, PENDING.1), |b| {
        b.iter_custom(|iters| {
            let fired = Arc::new(AtomicU64::new(0));
            let (tx, rx) = mpsc::channel();
            let start = Instant::now();
            for _ in 0..iters {
                let (fired, tx) = (Arc::clone(&fired), tx.clone());
                timers.later(Duration::ZERO, move || {
                    if fired.fetch_add(1, Ordering::Relaxed) + 1 == iters {
                        tx.send(()).unwrap();
                    }
                });
            }
            rx.recv_timeout(Duration::from_secs(60)).unwrap();
            start.elapsed()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    schedule_cancel::<TimerService>(c, "service");
    schedule_cancel::<HeapTimer>(c, "heap_condvar");
    schedule_cancel_2threads::<TimerService>(c, "service");
    schedule_cancel_2threads::<HeapTimer>(c, "heap_condvar");
    schedule_fire::<TimerService>(c, "service");
    schedule_fire::<HeapTimer>(c, "heap_condvar");
}

criterion_group!(service, benches, vs_tokio::benches);
criterion_main!(service);
