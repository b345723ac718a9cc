//! The wheel against every baseline and crates.io peer, on one workload, at several N.
//!
//! Prints ns per operation, the ratio to the wheel and the heap bytes per pending timer
//! (counted by the global allocator while the timers are pending, minus the caller's keys),
//! and writes an SVG plot of ns/op against N, one line per implementation. For `fire` and
//! `spread` it also counts, in one untimed run, the adjacent pairs of the fired sequence that
//! are out of firing order (by deadline, then insertion): an implementation that skips the
//! ordering does less work, and the column says so.
//!
//! ```text
//! cargo run --release -p tierwheel-bench --bin compare                       # timeouts, N = 10^3 .. 10^6
//! cargo run --release -p tierwheel-bench --bin compare -- --max-n 10000      # a quick smoke run
//! cargo run --release -p tierwheel-bench --bin compare -- --workload fire --duration 2 --plot fire.svg
//! cargo run --release -p tierwheel-bench --bin compare -- --n 10000000       # 10^7, takes a while
//! ```

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap};
use tierwheel::TimerWheel;

use tierwheel_bench::counting_alloc;
use tierwheel_bench::workloads::{
    self, Connections, HashWheel, Nexus, Subject, TokioDelayQueue, Touch,
};

#[global_allocator]
static ALLOCATOR: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

/// Heap bytes currently allocated by the whole process.
fn live_bytes() -> isize {
    counting_alloc::live_bytes() as isize
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Idle timeouts: touch (cancel + insert) a random connection; a tick every 64 steps.
    Timeouts,
    /// As timeouts, but each touch reschedules the timer (with a fresh jitter).
    Reschedule,
    /// Each touch reschedules the timer later (each connection's jitter is fixed).
    Idle,
    /// Insert N timers due within 2^20 ticks into an empty scheduler.
    Insert,
    /// Insert N timers due within 2^20 ticks, then advance to the end.
    Fire,
    /// Insert N timers due anywhere below 2^60, then advance to the end (full-range only).
    Spread,
}

/// Compare tierwheel's wheel with heap schedulers and other timer crates.
#[derive(Parser, Debug)]
struct Options {
    /// Workload to run.
    #[arg(long, value_enum, default_value = "timeouts")]
    workload: Workload,
    /// Numbers of timers to run at (repeatable); default 10^3, 10^4, 10^5, 10^6.
    #[arg(long = "n")]
    sizes: Vec<usize>,
    /// Drop sizes above this.
    #[arg(long)]
    max_n: Option<usize>,
    /// Seconds of measurement per implementation and size (after a quarter as much warm-up).
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Run only these implementations (repeatable): wheel, lazy_heap, indexed_heap, btree,
    /// nexus_timer, tokio_delay_queue, hash_wheel_timer.
    #[arg(long)]
    only: Vec<String>,
    /// Where to write the SVG plot.
    #[arg(long, default_value = "target/compare.svg")]
    plot: std::path::PathBuf,
}

/// One measurement: ns per operation and heap bytes per pending timer.
struct Row {
    name: &'static str,
    n: usize,
    ns: f64,
    bytes: f64,
    /// Timers fired in the first 2N steps of the connections workload: the same for every
    /// implementation that fires at the exact tick.
    fired: u64,
    /// `fire` and `spread`: adjacent pairs fired out of order, in one untimed run.
    inversions: Option<usize>,
}

/// Runs `work` in growing chunks until `duration` has passed; returns ns per operation.
/// `work(k)` does `k` operations and returns the time they took.
fn measure(duration: Duration, mut work: impl FnMut(u64) -> Duration) -> f64 {
    let (mut ops, mut spent, mut chunk) = (0u64, Duration::ZERO, 1u64);
    while spent < duration {
        spent += work(chunk);
        ops += chunk;
        chunk = (chunk * 2).min(1 << 20);
    }
    spent.as_nanos() as f64 / ops as f64
}

fn run<S: Subject>(options: &Options, n: usize, bar: &ProgressBar) -> Option<Row> {
    if options.workload == Workload::Spread && !S::FULL_RANGE {
        return None;
    }
    if !options.only.is_empty() && !options.only.iter().any(|name| name == S::NAME) {
        return None;
    }
    bar.set_message(format!("{} at N = {n}", S::NAME));
    let duration = Duration::from_secs_f64(options.duration);
    let warm_up = duration / 4;
    let touch = match options.workload {
        Workload::Reschedule => Touch::Reschedule,
        Workload::Idle => Touch::Idle,
        _ => Touch::CancelInsert,
    };
    // Heap bytes per pending timer, in the steady state of the connections workload.
    let before = live_bytes();
    let mut table = Connections::<S>::new(n, touch);
    table.run(n as u64 * 2);
    let bytes = (live_bytes() - before - table.key_bytes() as isize) as f64 / n as f64;
    let fired = table.fired_total;
    let mut inversions = None;
    let ns = match options.workload {
        Workload::Timeouts | Workload::Reschedule | Workload::Idle => {
            let mut steps = |k: u64| {
                let start = Instant::now();
                table.run(k);
                start.elapsed()
            };
            measure(warm_up, &mut steps);
            measure(duration, steps)
        }
        Workload::Insert | Workload::Fire | Workload::Spread => {
            let range = match options.workload {
                Workload::Spread => workloads::SPREAD_RANGE,
                _ => workloads::FIRE_RANGE,
            };
            let deadlines = workloads::deadlines(n, range);
            if options.workload != Workload::Insert {
                inversions = Some(workloads::fire_inversions::<S>(&deadlines, range));
            }
            let mut batches = |k: u64| {
                let rounds = k.div_ceil(n as u64);
                let total: Duration = (0..rounds)
                    .map(|_| match options.workload {
                        Workload::Insert => workloads::insert::<S>(&deadlines),
                        _ => workloads::fire::<S>(&deadlines, range),
                    })
                    .sum();
                total.mul_f64(k as f64 / (rounds * n as u64) as f64)
            };
            measure(warm_up, &mut batches);
            measure(duration, batches)
        }
    };
    table.finish();
    bar.inc(1);
    Some(Row {
        name: S::NAME,
        n,
        ns,
        bytes,
        fired,
        inversions,
    })
}

fn plot(
    options: &Options,
    rows: &[Row],
    names: &[&'static str],
) -> Result<(), Box<dyn std::error::Error>> {
    let (min_n, max_n) = rows
        .iter()
        .fold((usize::MAX, 0), |(lo, hi), r| (lo.min(r.n), hi.max(r.n)));
    let (min_ns, max_ns) = rows
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(r.ns), hi.max(r.ns)));
    let root = SVGBackend::new(&options.plot, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{:?}: ns per operation", options.workload),
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (min_n as f64 / 1.5..max_n as f64 * 1.5).log_scale(),
            (min_ns / 1.5..max_ns * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("N (pending timers)")
        .y_desc("ns / op")
        .draw()?;
    let colors = [
        RED,
        BLUE,
        GREEN,
        BLACK,
        MAGENTA,
        CYAN,
        RGBColor(200, 120, 0),
    ];
    for (&name, color) in names.iter().zip(colors.iter().cycle()) {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.name == name)
            .map(|r| (r.n as f64, r.ns))
            .collect();
        if points.is_empty() {
            continue;
        }
        let style = ShapeStyle::from(color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

macro_rules! subjects {
    ($($ty:ty),*) => {
        const NAMES: &[&str] = &[$(<$ty as Subject>::NAME),*];
        fn run_all(options: &Options, n: usize, bar: &ProgressBar, rows: &mut Vec<Row>) {
            $(rows.extend(run::<$ty>(options, n, bar));)*
        }
    };
}

subjects!(
    TimerWheel<u64>,
    LazyBinaryHeap<u64>,
    IndexedHeap<u64>,
    BTreeQueue<u64>,
    Nexus,
    TokioDelayQueue,
    HashWheel
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::parse();
    if options.sizes.is_empty() {
        options.sizes = vec![1_000, 10_000, 100_000, 1_000_000];
    }
    if let Some(max) = options.max_n {
        options.sizes.retain(|&n| n <= max);
    }
    // The tokio runtime is made once; make it before any bytes are counted.
    drop(TokioDelayQueue::new());

    let bar = ProgressBar::new((options.sizes.len() * NAMES.len()) as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} {elapsed} {msg}",
    )?);
    let mut rows = Vec::new();
    for &n in &options.sizes {
        run_all(&options, n, &bar, &mut rows);
    }
    bar.finish_and_clear();

    println!(
        "workload {:?}, {} s per measurement; ns per {}",
        options.workload,
        options.duration,
        match options.workload {
            Workload::Timeouts | Workload::Reschedule | Workload::Idle => "step",
            _ => "timer",
        }
    );
    println!(
        "{:<18} {:>9} {:>10} {:>9} {:>12} {:>10} {:>13}",
        "implementation", "N", "ns/op", "x wheel", "bytes/timer", "fired(2N)", "out of order"
    );
    for row in &rows {
        let wheel = rows
            .iter()
            .find(|r| r.n == row.n && r.name == <TimerWheel<u64> as Subject>::NAME)
            .map_or(f64::NAN, |r| r.ns);
        let inversions = row
            .inversions
            .map_or("-".to_string(), |count| count.to_string());
        println!(
            "{:<18} {:>9} {:>10.1} {:>9.2} {:>12.1} {:>10} {:>13}",
            row.name,
            row.n,
            row.ns,
            row.ns / wheel,
            row.bytes,
            row.fired,
            inversions
        );
    }
    if !rows.is_empty() {
        if let Some(dir) = options.plot.parent() {
            std::fs::create_dir_all(dir)?;
        }
        plot(&options, &rows, NAMES)?;
        println!("plot: {}", options.plot.display());
    }
    Ok(())
}
