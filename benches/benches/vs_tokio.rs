//! The `vs_tokio_wall` and `vs_tokio_cpu` groups of the `service` bench: the timer service's
//! async timers against `tokio::time`, where servers spend their timers,
//! in one process on a current-thread tokio runtime, with N live connections each holding one
//! registered sleep (polled once):
//!
//! - `reset/{tierwheel,tokio}/N`: reset a random connection's sleep to now + 30 s (tokio:
//!   `Sleep::reset`), the idle-timeout pattern; one iteration is one reset;
//! - `replace/{tierwheel,tokio}/N`: drop a random connection's sleep, make a new one due in
//!   30 s and poll it once (registering it), the request-timeout pattern; one iteration is one
//!   replacement;
//! - `await_1e6/{tierwheel,tokio}`: 10^6 tasks each await a sleep due within 200 ms, spawned
//!   and run to completion; one iteration is one task.
//!
//! Every benchmark runs twice, in groups `vs_tokio_wall` (wall time) and `vs_tokio_cpu`
//! (process CPU time, every thread counted: tierwheel's driver thread and tokio's runtime
//! alike).
//!
//! ```text
//! cargo bench -p tierwheel-bench --bench service -- vs_tokio --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use tierwheel::baseline::SplitMix64;
use tierwheel::service::{Handle, Sleep, TimerService};
use tierwheel_bench::sleeps::{poll_once, registered, IDLE};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

/// CPU time of the whole process so far: every thread.
fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the valid pointer it is given and
    // reads nothing else; CLOCK_PROCESS_CPUTIME_ID is supported on every Linux.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Which clock a benchmark reports.
#[derive(Copy, Clone)]
enum Clock {
    Wall,
    Cpu,
}

impl Clock {
    fn time<R>(self, run: impl FnOnce() -> R) -> Duration {
        match self {
            Clock::Wall => {
                let start = Instant::now();
                black_box(run());
                start.elapsed()
            }
            Clock::Cpu => {
                let start = process_cpu();
                black_box(run());
                process_cpu() - start
            }
        }
    }

    fn group(self) -> &'static str {
        match self {
            Clock::Wall => "vs_tokio_wall",
            Clock::Cpu => "vs_tokio_cpu",
        }
    }
}

/// The sleeps of one implementation, for the reset and replace patterns.
trait Sleeps {
    const NAME: &'static str;
    fn new(n: usize) -> Self;
    /// Pushes connection `i`'s sleep back to now + 30 s.
    fn reset(&mut self, i: usize);
    /// Drops connection `i`'s sleep and registers a new one due in 30 s.
    fn replace(&mut self, i: usize);
}

struct Tierwheel {
    handle: Handle,
    sleeps: Vec<Sleep>,
    // Declared last: dropped after the sleeps.
    _service: TimerService,
}

impl Sleeps for Tierwheel {
    const NAME: &'static str = "tierwheel";
    fn new(n: usize) -> Self {
        let service = TimerService::new();
        let handle = service.handle();
        let sleeps = (0..n).map(|_| registered(&handle)).collect();
        Tierwheel {
            handle,
            sleeps,
            _service: service,
        }
    }
    fn reset(&mut self, i: usize) {
        Pin::new(&mut self.sleeps[i]).reset(Instant::now() + IDLE);
    }
    fn replace(&mut self, i: usize) {
        self.sleeps[i] = registered(&self.handle);
    }
}

struct Tokio {
    sleeps: Vec<Pin<Box<tokio::time::Sleep>>>,
    // Dropped after the sleeps, whose timer entries need the runtime: the guard, then it.
    _guard: tokio::runtime::EnterGuard<'static>,
}

static TOKIO: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();

fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    TOKIO.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    })
}

impl Sleeps for Tokio {
    const NAME: &'static str = "tokio";
    fn new(n: usize) -> Self {
        let guard = tokio_runtime().enter();
        let sleeps = (0..n)
            .map(|_| {
                let mut sleep = Box::pin(tokio::time::sleep(IDLE));
                poll_once(sleep.as_mut());
                sleep
            })
            .collect();
        Tokio {
            sleeps,
            _guard: guard,
        }
    }
    fn reset(&mut self, i: usize) {
        let deadline = tokio::time::Instant::now() + IDLE;
        self.sleeps[i].as_mut().reset(deadline);
    }
    fn replace(&mut self, i: usize) {
        let mut sleep = Box::pin(tokio::time::sleep(IDLE));
        poll_once(sleep.as_mut());
        self.sleeps[i] = sleep;
    }
}

/// One pattern (`reset` or `replace`) of one implementation at size `n`, on one clock.
fn pattern<S: Sleeps>(c: &mut Criterion, clock: Clock, name: &str, n: usize, replace: bool) {
    let mut group = c.benchmark_group(clock.group());
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut sleeps = S::new(n);
    let mut rng = SplitMix64::new(0x5eed);
    group.bench_function(BenchmarkId::new(format!("{name}/{}", S::NAME), n), |b| {
        b.iter_custom(|iters| {
            let picks: Vec<usize> = (0..iters).map(|_| rng.below(n as u64) as usize).collect();
            clock.time(|| {
                for &i in &picks {
                    if replace {
                        sleeps.replace(i);
                    } else {
                        sleeps.reset(i);
                    }
                }
            })
        })
    });
    group.finish();
}

/// 10^6 tasks on a current-thread runtime, each awaiting one sleep due within 200 ms; the time
/// from spawning the first to the last finishing, per task.
fn await_many(c: &mut Criterion, clock: Clock, tierwheel: bool) {
    const TASKS: u64 = 1_000_000;
    let mut group = c.benchmark_group(clock.group());
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let name = if tierwheel { "tierwheel" } else { "tokio" };
    let service = TimerService::new();
    group.bench_function(BenchmarkId::new("await_1e6", name), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for round in 0..iters.div_ceil(TASKS) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("tokio runtime");
                let handle = service.handle();
                let mut rng = SplitMix64::new(round);
                let delays: Vec<Duration> = (0..TASKS)
                    .map(|_| Duration::from_micros(rng.below(200_000)))
                    .collect();
                total += clock.time(|| {
                    runtime.block_on(async {
                        let tasks: Vec<_> = delays
                            .iter()
                            .map(|&delay| {
                                if tierwheel {
                                    let sleep = handle.sleep(delay);
                                    tokio::spawn(async move {
                                        sleep.await.expect("the service runs");
                                    })
                                } else {
                                    tokio::spawn(tokio::time::sleep(delay))
                                }
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("the task finishes");
                        }
                    })
                });
            }
            total.mul_f64(iters as f64 / (iters.div_ceil(TASKS) * TASKS) as f64)
        })
    });
    group.finish();
}

/// Every benchmark of the groups: reset and replace at each size, then the 10^6 awaits, on
/// the wall clock and then on the process's CPU clock.
pub(crate) fn benches(c: &mut Criterion) {
    for clock in [Clock::Wall, Clock::Cpu] {
        for n in SIZES {
            pattern::<Tierwheel>(c, clock, "reset", n, false);
            pattern::<Tokio>(c, clock, "reset", n, false);
        }
        for n in SIZES {
            pattern::<Tierwheel>(c, clock, "replace", n, true);
            pattern::<Tokio>(c, clock, "replace", n, true);
        }
        await_many(c, clock, true);
        await_many(c, clock, false);
    }
}
