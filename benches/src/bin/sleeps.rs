//! Replaces or resets the registered sleeps of N connections on a timer service, a fixed
//! number of times, and prints the time it took: a loop for profilers, the `replace` and
//! `reset` patterns of the service bench's `vs_tokio` groups without criterion or tokio around
//! them. Under callgrind, the difference between two step counts is the per-operation
//! instruction count (the service's driver thread included), with building the N sleeps
//! cancelled out.
//!
//! ```text
//! cargo build --release -p tierwheel-bench --bin sleeps
//! target/release/sleeps replace 10000 100000   # PATTERN N STEPS
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/sleeps replace 10000 300000
//! ```

use std::pin::Pin;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use tierwheel::baseline::SplitMix64;
use tierwheel::service::{Sleep, TimerService};
use tierwheel_bench::sleeps::{registered, IDLE};

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Pattern {
    /// Drop a random connection's sleep, make a new one and poll it once (registering it).
    Replace,
    /// Reset a random connection's sleep to now + 30 s.
    Reset,
}

/// Replace or reset timer-service sleeps, for profilers.
#[derive(Parser, Debug)]
struct Args {
    /// What a step does.
    #[arg(value_enum)]
    pattern: Pattern,
    /// Connections, each with one registered sleep.
    n: usize,
    /// Steps to run.
    steps: u64,
}

fn main() {
    let args = Args::parse();
    let service = TimerService::new();
    let handle = service.handle();
    // Declared after the service: dropped before it.
    let mut sleeps: Vec<Sleep> = (0..args.n.max(1)).map(|_| registered(&handle)).collect();
    let mut rng = SplitMix64::new(0x5eed);
    let n = sleeps.len() as u64;
    let start = Instant::now();
    for _ in 0..args.steps {
        let i = rng.below(n) as usize;
        match args.pattern {
            Pattern::Replace => sleeps[i] = registered(&handle),
            Pattern::Reset => Pin::new(&mut sleeps[i]).reset(Instant::now() + IDLE),
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{:?} {} steps at N = {}: {:.1} ns per step",
        args.pattern,
        args.steps,
        sleeps.len(),
        elapsed.as_nanos() as f64 / args.steps.max(1) as f64
    );
}
