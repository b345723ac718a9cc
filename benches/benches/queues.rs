//! The wheel against the baselines and crates.io peers, workload by workload. Bench ids are
//! `workload/implementation/N` (`adversarial/pattern/N`, the wheel alone); every time reported
//! is per operation (per step for "timeouts", "reschedule" and "adversarial", per timer
//! otherwise).
//!
//! ```text
//! cargo bench -p tierwheel-bench --bench queues -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p tierwheel-bench --bench queues -- 'timeouts/.*/1000000'
//! cargo bench -p tierwheel-bench --bench queues -- '^budget/'    # the floor and the touch budget
//! cargo bench -p tierwheel-bench --bench queues -- '^adversarial/'   # one crowded slot, the wheel alone
//! TIERWHEEL_BENCH_HUGE=1 cargo bench -p tierwheel-bench --bench queues -- 'timeouts/.*/10000000'
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use criterion::{measurement::WallTime, BenchmarkId, SamplingMode};
use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap};
use tierwheel::TimerWheel;

use tierwheel_bench::workloads::{
    self, Budget, Connections, Crowd, Crowding, Floor, HashWheel, Nexus, Subject, TokioDelayQueue,
    Touch,
};

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// 10^7 only when asked: building it takes seconds per implementation.
fn sizes(huge: bool) -> Vec<usize> {
    let mut sizes = SIZES.to_vec();
    if huge && std::env::var_os("TIERWHEEL_BENCH_HUGE").is_some() {
        sizes.push(10_000_000);
    }
    sizes
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group
}

/// Per-step cost of a long-running connection table; the table is built once, outside timing.
fn connections<S: Subject>(group: &mut BenchmarkGroup<'_, WallTime>, n: usize, touch: Touch) {
    group.bench_with_input(BenchmarkId::new(S::NAME, n), &n, |b, &n| {
        let mut table = Connections::<S>::new(n, touch);
        b.iter_custom(|steps| {
            let start = std::time::Instant::now();
            table.run(steps);
            start.elapsed()
        });
        table.finish();
    });
}

/// Per-timer cost of a batch workload: whole batches of `deadlines.len()` timers, scaled to
/// the operation count criterion asked for.
/// `fire_at`: `None` only inserts; `Some(end)` inserts then fires everything by `end`.
fn batches<S: Subject>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    deadlines: &[u64],
    fire_at: Option<u64>,
) {
    let run = |deadlines: &[u64]| match fire_at {
        None => workloads::insert::<S>(deadlines),
        Some(end) => workloads::fire::<S>(deadlines, end),
    };
    let n = deadlines.len() as u64;
    group.bench_with_input(BenchmarkId::new(S::NAME, n), deadlines, |b, deadlines| {
        b.iter_custom(|ops| {
            let rounds = ops.div_ceil(n);
            let total: Duration = (0..rounds).map(|_| run(deadlines)).sum();
            total.mul_f64(ops as f64 / (rounds * n) as f64)
        });
    });
}

macro_rules! for_each_subject {
    ($f:ident, $group:expr, $($arg:expr),*) => {
        $f::<TimerWheel<u64>>($group, $($arg),*);
        $f::<LazyBinaryHeap<u64>>($group, $($arg),*);
        $f::<IndexedHeap<u64>>($group, $($arg),*);
        $f::<BTreeQueue<u64>>($group, $($arg),*);
        $f::<Nexus>($group, $($arg),*);
        $f::<TokioDelayQueue>($group, $($arg),*);
        $f::<HashWheel>($group, $($arg),*);
    };
}

fn timeouts(c: &mut Criterion) {
    let mut group = group(c, "timeouts");
    for n in sizes(true) {
        for_each_subject!(connections, &mut group, n, Touch::CancelInsert);
        // The cost of the harness and of the two misses no implementation avoids.
        connections::<Floor>(&mut group, n, Touch::CancelInsert);
    }
    group.finish();
}

/// "timeouts" for the wheel and the lazy heap beside the floor with more and more work per
/// touch that costs instructions but no misses: what a touch may execute to reach a given
/// speed (docs/benchmarks.md, "The floor").
fn budget(c: &mut Criterion) {
    let mut group = group(c, "budget");
    for n in [10_000, 1_000_000] {
        connections::<TimerWheel<u64>>(&mut group, n, Touch::CancelInsert);
        connections::<LazyBinaryHeap<u64>>(&mut group, n, Touch::CancelInsert);
        connections::<Floor>(&mut group, n, Touch::CancelInsert);
        connections::<Budget<1>>(&mut group, n, Touch::CancelInsert);
        connections::<Budget<2>>(&mut group, n, Touch::CancelInsert);
        connections::<Budget<4>>(&mut group, n, Touch::CancelInsert);
        connections::<Budget<8>>(&mut group, n, Touch::CancelInsert);
    }
    group.finish();
}

fn reschedule(c: &mut Criterion) {
    let mut group = group(c, "reschedule");
    for n in sizes(false) {
        for_each_subject!(connections, &mut group, n, Touch::Reschedule);
    }
    group.finish();
}

/// "reschedule" with each connection's jitter fixed: every touch moves a deadline later.
fn idle(c: &mut Criterion) {
    let mut group = group(c, "idle");
    for n in sizes(false) {
        for_each_subject!(connections, &mut group, n, Touch::Idle);
    }
    group.finish();
}

fn insert(c: &mut Criterion) {
    let mut group = group(c, "insert");
    for n in sizes(false) {
        let deadlines = workloads::deadlines(n, workloads::FIRE_RANGE);
        for_each_subject!(batches, &mut group, &deadlines, None);
    }
    group.finish();
}

fn fire(c: &mut Criterion) {
    let mut group = group(c, "fire");
    for n in sizes(false) {
        let deadlines = workloads::deadlines(n, workloads::FIRE_RANGE);
        for_each_subject!(batches, &mut group, &deadlines, Some(workloads::FIRE_RANGE));
    }
    group.finish();
}

fn spread(c: &mut Criterion) {
    fn full_range<S: Subject>(
        group: &mut BenchmarkGroup<'_, WallTime>,
        deadlines: &[u64],
        fire_at: Option<u64>,
    ) {
        // The peers take Instants or Durations in 1 ms units and stop at years, not 2^60.
        if S::FULL_RANGE {
            batches::<S>(group, deadlines, fire_at);
        }
    }
    let mut group = group(c, "spread");
    for n in sizes(false) {
        let deadlines = workloads::deadlines(n, workloads::SPREAD_RANGE);
        for_each_subject!(
            full_range,
            &mut group,
            &deadlines,
            Some(workloads::SPREAD_RANGE)
        );
    }
    group.finish();
}

/// The wheel alone with N timers crowded into one level-2 slot (deadlines in [4096, 8192) on a
/// wheel at tick 0), `next_deadline()` asked after every operation, under patterns that take
/// the earliest timer again and again. Each should cost within a small factor of
/// `cancel_random` at the same N, and not grow with N. A step is an insert and a cancel for the
/// first three patterns, one reschedule for the last two (see `Crowding`).
fn adversarial(c: &mut Criterion) {
    let mut group = group(c, "adversarial");
    for n in [16_384, 65_536] {
        for pattern in Crowding::ALL {
            group.bench_with_input(BenchmarkId::new(pattern.name(), n), &n, |b, &n| {
                let mut crowd = Crowd::new(n, pattern);
                b.iter_custom(|steps| crowd.run(steps));
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    insert,
    timeouts,
    fire,
    reschedule,
    idle,
    spread,
    budget,
    adversarial
);
criterion_main!(benches);
