//! `tierwheel::DelayQueue` against tokio-util's `DelayQueue`, both on tokio's timer in a
//! current-thread runtime with the paused clock. Bench ids are `delay_queue/<op>/<impl>/<N>`,
//! impl `tierwheel` or `tokio_util`; one iteration is a batch of N operations (criterion's
//! throughput is per operation):
//! - `insert`: N inserts with random delays of 1 ms to 60 s (`insert(value, Duration)`, so
//!   each reads the clock) into a queue that a task is waiting on;
//! - `reset`: each of N entries reset once to a new random delay, in random order;
//! - `remove`: each of N entries removed, in random order;
//! - `expire`: N inserts, then `poll_expired` awaited until the queue is empty (the paused
//!   clock jumps from one timer to the next).
//!
//! Before the benches it prints the heap bytes per entry of both queues (u64 values), measured
//! by a counting allocator.
//!
//! ```text
//! cargo bench -p tierwheel-bench --bench delay_queue
//! cargo bench -p tierwheel-bench --bench delay_queue -- 'delay_queue/expire/.*/1000000'
//! ```

use std::future::poll_fn;
use std::hint::black_box;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tierwheel::baseline::SplitMix64;
use tierwheel_bench::counting_alloc::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

/// The longest random delay, in milliseconds.
const SPREAD_MS: u64 = 60_000;

/// The two queues behind one interface, so each workload is written once.
trait Queue {
    type Key: Copy;
    const NAME: &'static str;
    /// An empty queue; called inside the runtime.
    fn new() -> Self;
    fn insert(&mut self, value: u64, delay: Duration) -> Self::Key;
    fn reset(&mut self, key: &Self::Key, delay: Duration);
    fn remove(&mut self, key: &Self::Key) -> u64;
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<u64>>;
}

impl Queue for tierwheel::DelayQueue<u64> {
    type Key = tierwheel::delay_queue::Key;
    const NAME: &'static str = "tierwheel";
    fn new() -> Self {
        tierwheel::DelayQueue::with_tokio()
    }
    fn insert(&mut self, value: u64, delay: Duration) -> Self::Key {
        tierwheel::DelayQueue::insert(self, value, delay)
    }
    fn reset(&mut self, key: &Self::Key, delay: Duration) {
        tierwheel::DelayQueue::reset(self, key, delay);
    }
    fn remove(&mut self, key: &Self::Key) -> u64 {
        tierwheel::DelayQueue::remove(self, key).into_inner()
    }
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<u64>> {
        tierwheel::DelayQueue::poll_expired(self, cx).map(|e| e.map(|e| e.into_inner()))
    }
}

impl Queue for tokio_util::time::DelayQueue<u64> {
    type Key = tokio_util::time::delay_queue::Key;
    const NAME: &'static str = "tokio_util";
    fn new() -> Self {
        tokio_util::time::DelayQueue::new()
    }
    fn insert(&mut self, value: u64, delay: Duration) -> Self::Key {
        tokio_util::time::DelayQueue::insert(self, value, delay)
    }
    fn reset(&mut self, key: &Self::Key, delay: Duration) {
        tokio_util::time::DelayQueue::reset(self, key, delay);
    }
    fn remove(&mut self, key: &Self::Key) -> u64 {
        tokio_util::time::DelayQueue::remove(self, key).into_inner()
    }
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<u64>> {
        tokio_util::time::DelayQueue::poll_expired(self, cx).map(|e| e.map(|e| e.into_inner()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("tokio runtime")
    })
}

/// `n` random delays of 1 ms to `SPREAD_MS`, the same for every implementation.
fn delays(n: usize, seed: u64) -> Vec<Duration> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| Duration::from_millis(1 + rng.below(SPREAD_MS)))
        .collect()
}

/// A random order of `0..n`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order
}

/// An empty queue that a task has polled and now waits on (as in a server's event loop): one
/// entry an hour out keeps its timer set.
fn waited_on<Q: Queue>() -> Q {
    let mut queue = Q::new();
    queue.insert(u64::MAX, Duration::from_secs(3600));
    let pending = queue.poll_expired(&mut Context::from_waker(Waker::noop()));
    assert!(pending.is_pending());
    queue
}

/// A waited-on queue holding `delays.len()` entries, with their keys.
fn filled<Q: Queue>(delays: &[Duration]) -> (Q, Vec<Q::Key>) {
    let mut queue = waited_on::<Q>();
    let keys = (0..)
        .zip(delays)
        .map(|(i, &d)| queue.insert(i, d))
        .collect();
    (queue, keys)
}

/// Times `batches` runs of `run` on fresh state from `setup`; setup and teardown untimed.
fn batched<S>(batches: u64, mut setup: impl FnMut() -> S, mut run: impl FnMut(&mut S)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..batches {
        let mut state = setup();
        let start = Instant::now();
        run(&mut state);
        total += start.elapsed();
        drop(state);
    }
    total
}

fn insert<Q: Queue>(n: usize, b: &mut criterion::Bencher<'_>) {
    let delays = delays(n, 1);
    b.iter_custom(|batches| {
        batched(batches, waited_on::<Q>, |queue| {
            for (i, &delay) in (0..).zip(&delays) {
                black_box(queue.insert(i, delay));
            }
        })
    });
}

fn reset<Q: Queue>(n: usize, b: &mut criterion::Bencher<'_>) {
    let (delays, later, order) = (delays(n, 1), delays(n, 2), shuffled(n, 3));
    b.iter_custom(|batches| {
        batched(
            batches,
            || filled::<Q>(&delays),
            |(queue, keys)| {
                for &i in &order {
                    queue.reset(&keys[i], later[i]);
                }
            },
        )
    });
}

fn remove<Q: Queue>(n: usize, b: &mut criterion::Bencher<'_>) {
    let (delays, order) = (delays(n, 1), shuffled(n, 3));
    b.iter_custom(|batches| {
        batched(
            batches,
            || filled::<Q>(&delays),
            |(queue, keys)| {
                for &i in &order {
                    black_box(queue.remove(&keys[i]));
                }
            },
        )
    });
}

fn expire<Q: Queue>(n: usize, b: &mut criterion::Bencher<'_>) {
    let delays = delays(n, 1);
    b.iter_custom(|batches| {
        batched(batches, Q::new, |queue| {
            for (i, &delay) in (0..).zip(&delays) {
                queue.insert(i, delay);
            }
            let expired = runtime().block_on(async {
                let mut expired = 0_usize;
                while let Some(value) = poll_fn(|cx| queue.poll_expired(cx)).await {
                    black_box(value);
                    expired += 1;
                }
                expired
            });
            assert_eq!(expired, delays.len());
        })
    });
}

type Ours = tierwheel::DelayQueue<u64>;
type Theirs = tokio_util::time::DelayQueue<u64>;

/// `delay_queue/<op>/<Q::NAME>/<n>`.
fn bench<Q: Queue>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    op: &str,
    n: usize,
    workload: fn(usize, &mut criterion::Bencher<'_>),
) {
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new(format!("{op}/{}", Q::NAME), n), |b| {
        workload(n, b)
    });
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("delay_queue");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    macro_rules! both {
        ($op:ident) => {
            for n in SIZES {
                bench::<Ours>(&mut group, stringify!($op), n, $op::<Ours>);
                bench::<Theirs>(&mut group, stringify!($op), n, $op::<Theirs>);
            }
        };
    }
    both!(insert);
    both!(reset);
    both!(remove);
    both!(expire);
    group.finish();
}

/// Heap bytes per entry of a queue holding `n` entries (u64 values), the queue's own
/// structures included, measured around making and filling it.
fn bytes_per_entry<Q: Queue>(n: usize) -> f64 {
    let delays = delays(n, 1);
    let before = counting_alloc::live_bytes();
    let (queue, keys) = filled::<Q>(&delays);
    let after = counting_alloc::live_bytes();
    drop((queue, keys));
    // The keys are the caller's, not the queue's.
    let keys = n * std::mem::size_of::<Q::Key>();
    (after - before - keys) as f64 / n as f64
}

fn memory() {
    let n = 100_000;
    println!(
        "delay_queue memory, heap bytes per entry at N = {n} (u64 values): {} {:.1}, {} {:.1}",
        Ours::NAME,
        bytes_per_entry::<Ours>(n),
        Theirs::NAME,
        bytes_per_entry::<Theirs>(n),
    );
}

fn main() {
    // Every queue is made, filled and dropped inside the runtime.
    let _runtime = runtime().enter();
    memory();
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
