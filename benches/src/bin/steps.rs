//! Runs a fixed number of "timeouts" steps for one implementation and prints the time they
//! took: a loop for profilers. Under callgrind, the difference between two step counts is the
//! per-step instruction count, with building and tearing down the table cancelled out.
//!
//! ```text
//! cargo build --release -p tierwheel-bench --bin steps
//! # implementation, N, steps
//! target/release/steps wheel 10000 1000000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/steps floor_work2 10000 3000000
//! ```
//!
//! Implementations: `wheel`, `lazy_heap`, `indexed_heap`, `btree`, `floor` and
//! `floor_work1`, `floor_work2`, `floor_work4`, `floor_work8` (the floor with that many rounds
//! of work per touch; see the criterion `budget` group and docs/benchmarks.md, "The touch
//! budget").

use std::process::ExitCode;
use std::time::Instant;

use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap};
use tierwheel::TimerWheel;

use tierwheel_bench::workloads::{Budget, Connections, Floor, Subject, Touch};

/// Builds `n` connections, runs `steps` touches and prints ns per step.
fn run<S: Subject>(n: usize, steps: u64) {
    let touch = match std::env::var("TIERWHEEL_TOUCH").as_deref() {
        Ok("idle") => Touch::Idle,
        Ok("reschedule") => Touch::Reschedule,
        _ => Touch::CancelInsert,
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [name, n, steps] => n.parse().ok().zip(steps.parse().ok()).map(|ns| (name, ns)),
        _ => None,
    };
    let Some((name, (n, steps))) = parsed.filter(|(_, (n, _))| *n > 0) else {
        eprintln!("usage: steps IMPLEMENTATION N STEPS (N > 0)");
        return ExitCode::from(2);
    };
    match name.as_str() {
        "wheel" => run::<TimerWheel<u64>>(n, steps),
        "lazy_heap" => run::<LazyBinaryHeap<u64>>(n, steps),
        "indexed_heap" => run::<IndexedHeap<u64>>(n, steps),
        "btree" => run::<BTreeQueue<u64>>(n, steps),
        "floor" => run::<Floor>(n, steps),
        "floor_work1" => run::<Budget<1>>(n, steps),
        "floor_work2" => run::<Budget<2>>(n, steps),
        "floor_work4" => run::<Budget<4>>(n, steps),
        "floor_work8" => run::<Budget<8>>(n, steps),
        other => {
            eprintln!("steps: unknown implementation {other:?}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
