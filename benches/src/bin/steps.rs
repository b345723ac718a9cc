//! Runs a fixed number of steps of the connection table (`timeouts`, `reschedule` or `idle`)
//! for one implementation and prints the time they took: a loop for profilers. Under callgrind, the difference between two step counts is the
//! per-step instruction count, with building and tearing down the table cancelled out.
//!
//! ```text
//! cargo build --release -p tierwheel-bench --bin steps
//! target/release/steps wheel 10000 1000000   # IMPLEMENTATION N STEPS
//! target/release/steps wheel 10000 1000000 --workload idle
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/steps floor_work2 10000 3000000
//! ```
//!
//! Implementations: `wheel`, `lazy_heap`, `indexed_heap`, `btree`, `floor` and
//! `floor_work1`, `floor_work2`, `floor_work4`, `floor_work8` (the floor with that many rounds
//! of work per touch; see the criterion `budget` group and docs/benchmarks.md, "The floor").

use std::time::Instant;

use clap::{Parser, ValueEnum};
use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap};
use tierwheel::TimerWheel;

use tierwheel_bench::workloads::{self, Budget, Connections, Floor, Subject, Touch};

#[derive(Copy, Clone, Debug, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Implementation {
    Wheel,
    LazyHeap,
    IndexedHeap,
    Btree,
    Floor,
    #[value(name = "floor_work1")]
    FloorWork1,
    #[value(name = "floor_work2")]
    FloorWork2,
    #[value(name = "floor_work4")]
    FloorWork4,
    #[value(name = "floor_work8")]
    FloorWork8,
}

/// How each step touches a connection's timer.
#[derive(Copy, Clone, Debug, ValueEnum)]
enum Workload {
    /// Cancel and insert, with a fresh jitter.
    Timeouts,
    /// Reschedule, with a fresh jitter.
    Reschedule,
    /// Reschedule later (each connection's jitter fixed).
    Idle,
    /// Insert N timers due within 2^20 ticks into an empty scheduler, again and again: a step
    /// is one insert.
    Insert,
    /// Insert N timers due within 2^20 ticks, then advance to the end, again and again: a step
    /// is one timer inserted and fired.
    Fire,
}

/// Runs a fixed number of connection-table steps for one implementation and prints ns per step.
#[derive(Parser, Debug)]
#[command(name = "steps")]
struct Options {
    /// The implementation to run.
    #[arg(value_enum)]
    implementation: Implementation,
    /// Connections, each with one pending timer.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    n: u64,
    /// Steps (touches) to run after the table is built.
    steps: u64,
    /// How each step touches a connection's timer.
    #[arg(long, value_enum, default_value = "timeouts")]
    workload: Workload,
}

/// Builds `n` connections, runs `steps` touches and prints ns per step.
fn run<S: Subject>(n: usize, steps: u64, workload: Workload) {
    let touch = match workload {
        Workload::Timeouts => Touch::CancelInsert,
        Workload::Reschedule => Touch::Reschedule,
        Workload::Idle => Touch::Idle,
        Workload::Insert | Workload::Fire => return run_batches::<S>(n, steps, workload),
    };
    let mut table = Connections::<S>::new(n, touch);
    let start = Instant::now();
    table.run(steps);
    let ns = start.elapsed().as_nanos() as f64 / steps.max(1) as f64;
    println!(
        "{} n={n} steps={steps}: {ns:.1} ns/step, {} fired",
        S::NAME,
        table.fired_total
    );
    table.finish();
}

/// `insert` or `fire` in whole batches of `n` timers, `steps` timers in all (rounded up to a
/// whole batch); prints ns per timer.
fn run_batches<S: Subject>(n: usize, steps: u64, workload: Workload) {
    let deadlines = workloads::deadlines(n, workloads::FIRE_RANGE);
    let rounds = steps.div_ceil(n as u64);
    let elapsed: std::time::Duration = (0..rounds)
        .map(|_| match workload {
            Workload::Fire => workloads::fire::<S>(&deadlines, workloads::FIRE_RANGE),
            _ => workloads::insert::<S>(&deadlines),
        })
        .sum();
    let ns = elapsed.as_nanos() as f64 / (rounds * n as u64) as f64;
    println!(
        "{} n={n} timers={}: {ns:.1} ns/timer",
        S::NAME,
        rounds * n as u64
    );
}

fn main() {
    let options = Options::parse();
    let (n, steps) = (options.n as usize, options.steps);
    let touch = options.workload;
    match options.implementation {
        Implementation::Wheel => run::<TimerWheel<u64>>(n, steps, touch),
        Implementation::LazyHeap => run::<LazyBinaryHeap<u64>>(n, steps, touch),
        Implementation::IndexedHeap => run::<IndexedHeap<u64>>(n, steps, touch),
        Implementation::Btree => run::<BTreeQueue<u64>>(n, steps, touch),
        Implementation::Floor => run::<Floor>(n, steps, touch),
        Implementation::FloorWork1 => run::<Budget<1>>(n, steps, touch),
        Implementation::FloorWork2 => run::<Budget<2>>(n, steps, touch),
        Implementation::FloorWork4 => run::<Budget<4>>(n, steps, touch),
        Implementation::FloorWork8 => run::<Budget<8>>(n, steps, touch),
    }
}
