//! The wheel against every baseline and crates.io peer, on one workload, at several N.
//!
//! Measures each implementation at each N once per round, rounds interleaving the
//! implementations (in each round, for each N, every implementation once), so that a slow
//! minute of a shared machine spreads over all of them instead of landing on one. Prints:
//!
//! - the machine (CPU, cores, OS, compiler) and what one operation of the workload is;
//! - a table with the implementations as rows and N as columns: in each cell the median ns per
//!   operation over the rounds, the range of the rounds (min-max) and the median over the
//!   wheel's median (2.00x: twice the wheel's time);
//! - the heap bytes per pending timer (counted by the global allocator in the steady state of
//!   the connections workload, minus the caller's keys);
//! - for `fire` and `spread`, the adjacent pairs of the fired sequence that are out of firing
//!   order (by deadline, then insertion), from one untimed run: an implementation that skips the
//!   ordering does less work, and the table says so.
//!
//! It also writes an SVG plot of the medians against N, one line per implementation, with the
//! rounds' range as bars: by default `target/tierwheel-compare/<workload>.svg` under the
//! workspace (or under `CARGO_TARGET_DIR` when that is set), else where `--plot` says.
//!
//! ```text
//! cargo run --release -p tierwheel-bench --bin compare                       # timeouts, N = 10^3 .. 10^6
//! cargo run --release -p tierwheel-bench --bin compare -- --max-n 10000 --duration 0.2   # a quick smoke run
//! cargo run --release -p tierwheel-bench --bin compare -- --workload fire --rounds 5 --plot fire.svg
//! cargo run --release -p tierwheel-bench --bin compare -- --n 10000000       # 10^7, takes a while
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, ValueEnum};
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

impl Workload {
    /// The name on the command line, in reports and in the default plot path.
    fn name(self) -> String {
        self.to_possible_value()
            .expect("no workload is skipped")
            .get_name()
            .to_string()
    }

    /// What one measured operation is.
    fn unit(self) -> &'static str {
        match self {
            Workload::Timeouts | Workload::Reschedule | Workload::Idle => "step",
            Workload::Insert | Workload::Fire | Workload::Spread => "timer",
        }
    }

    /// One sentence: what an operation of this workload does.
    fn operation(self) -> &'static str {
        match self {
            Workload::Timeouts => {
                "A step touches one of N connections at random: its idle timer is cancelled and a \
                 new one inserted; every 64 steps time moves one tick and the timers due fire and \
                 are replaced."
            }
            Workload::Reschedule => {
                "A step reschedules the idle timer of one of N connections at random, with a fresh \
                 jitter (so about half of the moves are earlier); every 64 steps time moves one \
                 tick and the timers due fire and are replaced."
            }
            Workload::Idle => {
                "A step reschedules the idle timer of one of N connections at random, always later \
                 (each connection's jitter is fixed); every 64 steps time moves one tick and the \
                 timers due fire and are replaced."
            }
            Workload::Insert => {
                "An operation is one insert: N timers due within 2^20 ticks go into an empty \
                 scheduler, and the time is shared out per timer."
            }
            Workload::Fire => {
                "An operation is one timer's share of inserting N timers due within 2^20 ticks and \
                 advancing to the end, firing every one of them."
            }
            Workload::Spread => {
                "An operation is one timer's share of inserting N timers due anywhere below 2^60 \
                 ticks and advancing to the end, firing every one of them; implementations capped \
                 below 2^60 are left out."
            }
        }
    }
}

/// Compare tierwheel's wheel with heap schedulers and other timer crates.
#[derive(Parser, Debug)]
#[command(name = "compare")]
struct Options {
    /// Workload to run.
    #[arg(long, value_enum, default_value = "timeouts")]
    workload: Workload,
    /// Numbers of timers to run at (repeatable); default 10^3, 10^4, 10^5, 10^6.
    #[arg(long = "n", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    sizes: Vec<u64>,
    /// Drop sizes above this.
    #[arg(long)]
    max_n: Option<u64>,
    /// Seconds of measurement per implementation, size and round (after a quarter as much
    /// warm-up).
    #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
    duration: f64,
    /// Rounds: each measures every implementation once at each N; a cell is the median over the
    /// rounds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Run only these implementations (repeatable): wheel, lazy_heap, indexed_heap, btree,
    /// nexus_timer, tokio_delay_queue, hash_wheel_timer.
    #[arg(long)]
    only: Vec<String>,
    /// Where to write the SVG plot [default: tierwheel-compare/<WORKLOAD>.svg under
    /// $CARGO_TARGET_DIR, or else under the workspace's target/].
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

/// The target directory: `CARGO_TARGET_DIR` if it is set, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the bench crate sits inside the workspace")
                .join("target")
        })
}

/// One implementation at one N in one round.
struct Measurement {
    /// ns per operation.
    ns: f64,
    /// The first round's extras, `None` in later rounds.
    extras: Option<Extras>,
}

/// What does not change from round to round, so it is measured in the first only.
struct Extras {
    /// Heap bytes per pending timer in the steady state of the connections workload.
    bytes: f64,
    /// Timers fired in the first 2N steps of the connections workload: the same for every
    /// implementation that fires at the exact tick.
    fired: u64,
    /// `fire` and `spread`: adjacent pairs fired out of order, in one untimed run.
    inversions: Option<usize>,
    /// The connections workloads, for an implementation that reports its next deadline: the
    /// wakeups at it that found nothing due, per 10^6 touches, and the wakeups, over every
    /// step of the first round.
    empty_wakeups: Option<(f64, u64)>,
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

fn run<S: Subject>(options: &Options, n: usize, first_round: bool) -> Measurement {
    let duration = Duration::from_secs_f64(options.duration);
    let warm_up = duration / 4;
    let touch = match options.workload {
        Workload::Reschedule => Touch::Reschedule,
        Workload::Idle => Touch::Idle,
        _ => Touch::CancelInsert,
    };
    let connections_workload = matches!(
        options.workload,
        Workload::Timeouts | Workload::Reschedule | Workload::Idle
    );
    // The connections table is the measurement itself for the connections workloads, and where
    // the bytes per timer are counted for all of them.
    let mut table = None;
    let mut extras = None;
    if connections_workload || first_round {
        let before = live_bytes();
        let mut connections = Connections::<S>::new(n, touch);
        connections.run(n as u64 * 2);
        let keys = connections.key_bytes() as isize;
        extras = Some(Extras {
            bytes: (live_bytes() - before - keys) as f64 / n as f64,
            fired: connections.fired_total,
            inversions: None,
            empty_wakeups: None,
        });
        table = Some(connections);
    }
    let ns = if connections_workload {
        let table = table.as_mut().expect("built above");
        let mut steps = |k: u64| {
            let start = Instant::now();
            table.run(k);
            start.elapsed()
        };
        measure(warm_up, &mut steps);
        measure(duration, steps)
    } else {
        let range = match options.workload {
            Workload::Spread => workloads::SPREAD_RANGE,
            _ => workloads::FIRE_RANGE,
        };
        let deadlines = workloads::deadlines(n, range);
        if let (Some(extras), false) = (&mut extras, options.workload == Workload::Insert) {
            extras.inversions = Some(workloads::fire_inversions::<S>(&deadlines, range));
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
    };
    if let Some(table) = table {
        if let Some(extras) = extras.as_mut().filter(|_| connections_workload) {
            extras.empty_wakeups = table
                .empty_wakeups_per_million()
                .map(|rate| (rate, table.wakeups));
        }
        table.finish();
    }
    Measurement {
        ns,
        extras: if first_round { extras } else { None },
    }
}

/// A subject as `main` schedules it.
struct Implementation {
    name: &'static str,
    full_range: bool,
    run: fn(&Options, usize, bool) -> Measurement,
}

fn implementation<S: Subject>() -> Implementation {
    Implementation {
        name: S::NAME,
        full_range: S::FULL_RANGE,
        run: run::<S>,
    }
}

/// Every implementation, the wheel first.
fn implementations() -> Vec<Implementation> {
    vec![
        implementation::<TimerWheel<u64>>(),
        implementation::<LazyBinaryHeap<u64>>(),
        implementation::<IndexedHeap<u64>>(),
        implementation::<BTreeQueue<u64>>(),
        implementation::<Nexus>(),
        implementation::<TokioDelayQueue>(),
        implementation::<HashWheel>(),
    ]
}

const WHEEL: &str = <TimerWheel<u64> as Subject>::NAME;

/// All rounds of one implementation at one N.
struct Cell {
    name: &'static str,
    n: u64,
    /// ns per operation, one per round.
    ns: Vec<f64>,
    extras: Option<Extras>,
}

impl Cell {
    fn median(&self) -> f64 {
        let mut sorted = self.ns.clone();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        }
    }

    fn min(&self) -> f64 {
        self.ns.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.ns.iter().copied().fold(0.0, f64::max)
    }
}

/// The results, looked up by implementation and N.
struct Results {
    cells: Vec<Cell>,
}

impl Results {
    fn get(&self, name: &str, n: u64) -> Option<&Cell> {
        self.cells.iter().find(|c| c.name == name && c.n == n)
    }

    fn get_mut(&mut self, name: &str, n: u64) -> &mut Cell {
        self.cells
            .iter_mut()
            .find(|c| c.name == name && c.n == n)
            .expect("a cell per implementation and N")
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// ns with one decimal below 100, none above, so that wide cells stay narrow.
fn ns(value: f64) -> String {
    if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Prints a markdown table with padded columns, so it reads in a terminal and pastes into docs.
fn print_table(header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, &width))| match column {
                0 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header);
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(column, &width)| match column {
            0 => "-".repeat(width),
            _ => format!("{}:", "-".repeat(width - 1)),
        })
        .collect();
    line(&rule);
    for row in rows {
        line(row);
    }
}

/// One line naming the machine: CPU model, cores, OS and the compiler that built this program.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map_or("unknown CPU", |(_, model)| model.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| format!(" {}", release.trim()))
        .unwrap_or_default();
    let rustc = option_env!("TIERWHEEL_BENCH_RUSTC")
        .map(|version| format!(", {version}"))
        .unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        " (a debug build: run with --release for figures that mean anything)"
    } else {
        ""
    };
    format!(
        "machine: {cpu}, {cores} cores available, {}{kernel} {}{rustc}{profile}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn report(options: &Options, names: &[&'static str], results: &Results) {
    let unit = options.workload.unit();
    println!("{}", machine());
    println!(
        "{}: ns per {unit}, median of {} round{} of {} s each (rounds interleave the \
         implementations); in brackets the rounds' range, min-max; then the median over the \
         wheel's.",
        options.workload.name(),
        options.rounds,
        if options.rounds == 1 { "" } else { "s" },
        options.duration,
    );
    println!(
        "{} A ratio is the implementation's time over the wheel's: 2.00x is twice as slow as \
         the wheel, 0.50x twice as fast.",
        options.workload.operation()
    );
    println!();

    let mut header = vec![format!("ns/{unit} (x wheel)")];
    header.extend(
        options
            .sizes
            .iter()
            .map(|&n| format!("N = {}", thousands(n))),
    );
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|&name| {
            let mut row = vec![name.to_string()];
            for &n in &options.sizes {
                let wheel = results.get(WHEEL, n).map(Cell::median);
                row.push(results.get(name, n).map_or("-".to_string(), |cell| {
                    let median = cell.median();
                    let ratio = wheel.map_or("-".to_string(), |w| format!("{:.2}x", median / w));
                    format!(
                        "{} [{}-{}] {ratio}",
                        ns(median),
                        ns(cell.min()),
                        ns(cell.max())
                    )
                }));
            }
            row
        })
        .collect();
    print_table(&header, &rows);

    println!();
    let mut header = vec!["bytes/timer".to_string()];
    header.extend(
        options
            .sizes
            .iter()
            .map(|&n| format!("N = {}", thousands(n))),
    );
    let extras = |name: &str, n: u64| results.get(name, n).and_then(|c| c.extras.as_ref());
    let rows: Vec<Vec<String>> =
        names
            .iter()
            .map(|&name| {
                let mut row = vec![name.to_string()];
                row.extend(options.sizes.iter().map(|&n| {
                    extras(name, n).map_or("-".to_string(), |e| format!("{:.1}", e.bytes))
                }));
                row
            })
            .collect();
    print_table(&header, &rows);
    println!(
        "Heap bytes per pending timer in the steady state of N connections, the caller's keys \
         not counted."
    );

    if matches!(options.workload, Workload::Fire | Workload::Spread) {
        println!();
        let mut header = vec!["out of order".to_string()];
        header.extend(
            options
                .sizes
                .iter()
                .map(|&n| format!("N = {}", thousands(n))),
        );
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|&name| {
                let mut row = vec![name.to_string()];
                row.extend(options.sizes.iter().map(|&n| {
                    extras(name, n)
                        .and_then(|e| e.inversions)
                        .map_or("-".to_string(), |count| count.to_string())
                }));
                row
            })
            .collect();
        print_table(&header, &rows);
        println!(
            "Adjacent pairs of the fired sequence out of firing order (by deadline, then \
             insertion), of N - 1: 0 for an implementation that fires in order."
        );
    }

    if options.workload == Workload::Idle {
        let cells: Vec<String> = options
            .sizes
            .iter()
            .filter_map(|&n| {
                let (rate, wakeups) = extras(WHEEL, n)?.empty_wakeups?;
                Some(format!(
                    "{rate:.1} at N = {} (of {} wakeups)",
                    thousands(n),
                    thousands(wakeups)
                ))
            })
            .collect();
        if !cells.is_empty() {
            println!(
                "Wakeups at the wheel's next_deadline() that found nothing due, per 10^6 touches: {}.",
                cells.join(", ")
            );
        }
    }

    // Every implementation that fires at the exact tick fires the same timers; say so when one
    // does not, since its figures then measure other work.
    for &n in &options.sizes {
        let Some(wheel) = extras(WHEEL, n) else {
            continue;
        };
        for &name in names {
            if let Some(other) = extras(name, n).filter(|e| e.fired != wheel.fired) {
                println!(
                    "note: at N = {}, {name} fired {} timers in the first 2N steps of the \
                     connections workload, the wheel {}",
                    thousands(n),
                    other.fired,
                    wheel.fired
                );
            }
        }
    }
}

fn plot(
    options: &Options,
    path: &Path,
    names: &[&'static str],
    results: &Results,
) -> Result<(), Box<dyn std::error::Error>> {
    let (min_n, max_n) = results
        .cells
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), c| (lo.min(c.n), hi.max(c.n)));
    let (min_ns, max_ns) = results.cells.iter().fold((f64::MAX, 0f64), |(lo, hi), c| {
        (lo.min(c.min()), hi.max(c.max()))
    });
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: median ns per {} of {} rounds (bars: min-max)",
                options.workload.name(),
                options.workload.unit(),
                options.rounds
            ),
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
        .y_desc(format!("ns / {}", options.workload.unit()))
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
        let cells: Vec<&Cell> = results.cells.iter().filter(|c| c.name == name).collect();
        if cells.is_empty() {
            continue;
        }
        let style = ShapeStyle::from(color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                cells.iter().map(|c| (c.n as f64, c.median())),
                style,
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(
            cells.iter().map(|c| {
                ErrorBar::new_vertical(c.n as f64, c.min(), c.median(), c.max(), style, 8)
            }),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::parse();
    if options.sizes.is_empty() {
        options.sizes = vec![1_000, 10_000, 100_000, 1_000_000];
    }
    if let Some(max) = options.max_n {
        options.sizes.retain(|&n| n <= max);
    }
    let all = implementations();
    if let Some(unknown) = options
        .only
        .iter()
        .find(|name| !all.iter().any(|i| i.name == name.as_str()))
    {
        let known: Vec<&str> = all.iter().map(|i| i.name).collect();
        Options::command()
            .error(
                clap::error::ErrorKind::InvalidValue,
                format!("--only {unknown}: not one of {}", known.join(", ")),
            )
            .exit();
    }
    let chosen: Vec<Implementation> = all
        .into_iter()
        .filter(|i| options.workload != Workload::Spread || i.full_range)
        .filter(|i| options.only.is_empty() || options.only.iter().any(|name| name == i.name))
        .collect();
    let names: Vec<&'static str> = chosen.iter().map(|i| i.name).collect();
    let plot_path = options.plot.clone().unwrap_or_else(|| {
        target_dir()
            .join("tierwheel-compare")
            .join(format!("{}.svg", options.workload.name()))
    });
    // The tokio runtime is made once; make it before any bytes are counted.
    drop(TokioDelayQueue::new());

    let mut results = Results {
        cells: options
            .sizes
            .iter()
            .flat_map(|&n| {
                names.iter().map(move |&name| Cell {
                    name,
                    n,
                    ns: Vec::new(),
                    extras: None,
                })
            })
            .collect(),
    };
    let bar = ProgressBar::new(results.cells.len() as u64 * u64::from(options.rounds));
    bar.set_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} {elapsed} {msg}",
    )?);
    for round in 0..options.rounds {
        for &n in &options.sizes {
            for implementation in &chosen {
                bar.set_message(format!(
                    "round {} of {}: {} at N = {}",
                    round + 1,
                    options.rounds,
                    implementation.name,
                    thousands(n)
                ));
                let measured = (implementation.run)(&options, n as usize, round == 0);
                let cell = results.get_mut(implementation.name, n);
                cell.ns.push(measured.ns);
                if measured.extras.is_some() {
                    cell.extras = measured.extras;
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    report(&options, &names, &results);
    if !results.cells.is_empty() {
        if let Some(dir) = plot_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        plot(&options, &plot_path, &names, &results)?;
        println!();
        println!("plot: {}", plot_path.display());
    }
    Ok(())
}
