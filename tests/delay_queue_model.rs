//! `DelayQueue` against a plain model, on a `ManualDriver`'s clock (and with feature `tokio`,
//! on tokio's paused clock too): random inserts, removes, resets, clears and clock moves,
//! checking after every step the exact expiry sequence (keys, values, deadlines), the queue's
//! view of itself, and when its task was woken: only when an entry is due (or the queue became
//! empty), and always by the time one is.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tierwheel::delay_queue::Key;
use tierwheel::service::{ManualDriver, TimerService};
use tierwheel::DelayQueue;

/// Microseconds per tick of the queue.
const TICK_US: u64 = 1_000;

#[derive(Clone, Debug)]
enum Op {
    /// `insert` with a delay in microseconds.
    Insert(u64),
    /// `insert_at` the time line's microsecond `now - back + ahead` (so possibly past).
    InsertAt {
        back: u64,
        ahead: u64,
    },
    /// `try_remove` of the `n`th key ever made (modulo), live or stale.
    Remove(usize),
    /// `try_reset` of the `n`th key ever made to a delay in microseconds.
    Reset(usize, u64),
    /// `try_reset_at` of the `n`th key ever made, like `InsertAt`.
    ResetAt(usize, u64, u64),
    Clear,
    /// Moves the manual clock on by microseconds.
    Advance(u64),
    /// Polls until the queue is pending or empty.
    Poll,
}

fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0..5_000_u64,
        3 => 0..300_000_u64,
        1 => 0..(1_u64 << 40),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => delay().prop_map(Op::Insert),
        2 => (0..20_000_u64, delay()).prop_map(|(back, ahead)| Op::InsertAt { back, ahead }),
        3 => any::<usize>().prop_map(Op::Remove),
        3 => (any::<usize>(), delay()).prop_map(|(n, d)| Op::Reset(n, d)),
        1 => (any::<usize>(), 0..20_000_u64, delay()).prop_map(|(n, b, a)| Op::ResetAt(n, b, a)),
        1 => Just(Op::Clear),
        5 => prop_oneof![4 => 0..3_000_u64, 1 => 0..(1_u64 << 36)].prop_map(Op::Advance),
        4 => Just(Op::Poll),
    ]
}

#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The plain model: entries by (effective deadline tick, sequence), as the queue orders them.
#[derive(Default)]
struct Model {
    /// (effective tick, sequence) -> (key, value, deadline tick asked for).
    order: BTreeMap<(u64, u64), (Key, u32, u64)>,
    /// Where each live key sits in `order`.
    place: HashMap<Key, (u64, u64)>,
    seq: u64,
    /// The clock, in microseconds.
    now_us: u64,
    /// The tick the queue had polled up to: an entry asked for before it is due at it.
    polled: u64,
}

impl Model {
    fn now_tick(&self) -> u64 {
        self.now_us / TICK_US
    }

    fn file(&mut self, key: Key, value: u32, tick: u64) {
        let at = (tick.max(self.polled), self.seq);
        self.seq += 1;
        self.order.insert(at, (key, value, tick));
        self.place.insert(key, at);
    }

    fn remove(&mut self, key: Key) -> Option<(Key, u32, u64)> {
        let at = self.place.remove(&key)?;
        self.order.remove(&at)
    }

    fn due(&self) -> bool {
        self.order
            .keys()
            .next()
            .is_some_and(|&(tick, _)| tick <= self.now_tick())
    }
}

/// What moves the queue's clock.
enum Clock {
    Manual(Box<ManualDriver>),
    /// A current-thread runtime with the paused clock, the queue made inside it.
    #[cfg(feature = "tokio")]
    Tokio(tokio::runtime::Runtime),
}

struct Harness {
    // Before the clock: dropped while its runtime still runs.
    queue: DelayQueue<u32>,
    clock: Clock,
    /// The instant of the time line's tick 0.
    base: Instant,
    model: Model,
    keys: Vec<Key>,
    next_value: u32,
    wakes: Arc<Counter>,
    waker: Waker,
    /// Wakes counted when the queue was last drained, if it has been: from then on its task
    /// waits to be woken.
    wakes_at_drain: Option<usize>,
}

/// `ceil(us / TICK_US)`: the tick a deadline at `us` microseconds is due.
fn tick_at(us: u64) -> u64 {
    us.div_ceil(TICK_US)
}

impl Harness {
    fn new(clock: Clock) -> Self {
        // The queue reads tokio's paused clock only inside the runtime.
        #[cfg(feature = "tokio")]
        let _inside = match &clock {
            Clock::Tokio(runtime) => Some(runtime.enter()),
            Clock::Manual(_) => None,
        };
        let mut queue = match &clock {
            Clock::Manual(driver) => DelayQueue::with_handle(driver.handle()),
            #[cfg(feature = "tokio")]
            Clock::Tokio(_) => DelayQueue::with_tokio(),
        };
        let probe = queue.insert(0, Duration::ZERO);
        let base = queue.deadline(&probe);
        queue.remove(&probe);
        let wakes = Arc::new(Counter::default());
        let waker = Waker::from(Arc::clone(&wakes));
        Harness {
            queue,
            clock,
            base,
            model: Model::default(),
            keys: Vec::new(),
            next_value: 0,
            wakes,
            waker,
            wakes_at_drain: None,
        }
    }

    /// Runs every step inside the runtime, if there is one.
    fn run(&mut self, ops: &[Op]) {
        #[cfg(feature = "tokio")]
        let _inside = match &self.clock {
            Clock::Tokio(runtime) => Some(runtime.handle().clone()),
            Clock::Manual(_) => None,
        };
        #[cfg(feature = "tokio")]
        let _inside = _inside.as_ref().map(|handle| handle.enter());
        for op in ops {
            self.apply(op);
        }
        // Run out the clock: everything comes out, in order.
        self.apply(&Op::Advance(1 << 42));
        self.drain();
        assert!(self.queue.is_empty());
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }

    /// The time line's microsecond `now - back + ahead`, saturating at 0.
    fn target(&self, back: u64, ahead: u64) -> u64 {
        self.model.now_us.saturating_sub(back) + ahead
    }

    fn key(&self, n: usize) -> Option<Key> {
        (!self.keys.is_empty()).then(|| self.keys[n % self.keys.len()])
    }

    fn value(&mut self) -> u32 {
        self.next_value += 1;
        self.next_value
    }

    fn apply(&mut self, op: &Op) {
        let was_empty = self.queue.is_empty();
        let wakes_before = self.wakes();
        match *op {
            Op::Insert(us) => {
                let value = self.value();
                let key = self.queue.insert(value, Duration::from_micros(us));
                self.model.file(key, value, tick_at(self.model.now_us + us));
                self.keys.push(key);
            }
            Op::InsertAt { back, ahead } => {
                let us = self.target(back, ahead);
                let value = self.value();
                let key = self
                    .queue
                    .insert_at(value, self.base + Duration::from_micros(us));
                self.model.file(key, value, tick_at(us));
                self.keys.push(key);
            }
            Op::Remove(n) => {
                let Some(key) = self.key(n) else { return };
                let got = self.queue.try_remove(&key);
                let want = self.model.remove(key);
                assert_eq!(got.is_some(), want.is_some(), "remove {key:?}");
                if let (Some(got), Some((k, value, tick))) = (got, want) {
                    assert_eq!((got.key(), *got.get_ref()), (k, value));
                    assert_eq!(got.deadline(), self.instant(tick));
                }
            }
            Op::Reset(n, us) => {
                let Some(key) = self.key(n) else { return };
                let done = self.queue.try_reset(&key, Duration::from_micros(us));
                self.model_reset(key, done, tick_at(self.model.now_us + us));
            }
            Op::ResetAt(n, back, ahead) => {
                let Some(key) = self.key(n) else { return };
                let us = self.target(back, ahead);
                let done = self
                    .queue
                    .try_reset_at(&key, self.base + Duration::from_micros(us));
                self.model_reset(key, done, tick_at(us));
            }
            Op::Clear => {
                self.queue.clear();
                self.model.order.clear();
                self.model.place.clear();
            }
            Op::Advance(us) => {
                self.model.now_us += us;
                match &mut self.clock {
                    Clock::Manual(driver) => {
                        driver.run_until(Duration::from_micros(self.model.now_us));
                    }
                    #[cfg(feature = "tokio")]
                    Clock::Tokio(runtime) => {
                        runtime.block_on(tokio::time::advance(Duration::from_micros(us)));
                    }
                }
            }
            Op::Poll => {
                self.drain();
                return;
            }
        }
        // Never woken for nothing: a wake during this step means an entry is due, or the step
        // emptied the queue.
        let emptied = !was_empty && self.queue.is_empty();
        if self.wakes() > wakes_before {
            assert!(
                self.model.due() || emptied,
                "woken with nothing due after {op:?}"
            );
        }
        // Never left asleep: once an entry is due, the task has been woken since it last
        // polled.
        if let Some(wakes_at_drain) = self.wakes_at_drain.filter(|_| self.model.due()) {
            assert!(
                self.wakes() > wakes_at_drain,
                "an entry is due and the task was not woken after {op:?}"
            );
        }
        self.check_view();
    }

    fn model_reset(&mut self, key: Key, done: bool, tick: u64) {
        let entry = self.model.remove(key);
        assert_eq!(done, entry.is_some(), "reset {key:?}");
        if let Some((_, value, _)) = entry {
            self.model.file(key, value, tick);
        }
    }

    fn instant(&self, tick: u64) -> Instant {
        self.base + Duration::from_millis(tick)
    }

    /// Polls until pending or empty, checking each entry against the model.
    fn drain(&mut self) {
        let mut cx = Context::from_waker(&self.waker);
        let now = self.model.now_tick();
        loop {
            match self.queue.poll_expired(&mut cx) {
                Poll::Ready(Some(expired)) => {
                    let (&at, _) = self.model.order.iter().next().expect("model has none");
                    assert!(
                        at.0 <= now,
                        "yielded {:?} due at tick {} at {now}",
                        expired,
                        at.0
                    );
                    let (key, value, tick) = self.model.order.remove(&at).unwrap();
                    self.model.place.remove(&key);
                    assert_eq!((expired.key(), *expired.get_ref()), (key, value));
                    assert_eq!(expired.deadline(), self.instant(tick));
                }
                Poll::Ready(None) => {
                    assert!(self.model.order.is_empty(), "Ready(None) with entries");
                    break;
                }
                Poll::Pending => {
                    assert!(!self.model.due(), "Pending with an entry due");
                    assert!(!self.model.order.is_empty(), "Pending when empty");
                    break;
                }
            }
        }
        self.model.polled = now;
        self.wakes_at_drain = Some(self.wakes());
        // One timer per queue at most, whatever the number of entries.
        match &mut self.clock {
            Clock::Manual(driver) => assert!(driver.pending() <= 1),
            #[cfg(feature = "tokio")]
            Clock::Tokio(_) => {}
        }
        self.check_view();
    }

    fn check_view(&self) {
        let model = &self.model;
        assert_eq!(self.queue.len(), model.order.len());
        let first = model.order.iter().next();
        assert_eq!(self.queue.peek(), first.map(|(_, &(key, _, _))| key));
        assert_eq!(
            self.queue.next_deadline(),
            first.map(|(&(tick, _), _)| self.instant(tick))
        );
        for (&key, at) in &model.place {
            let (_, value, tick) = model.order[at];
            assert_eq!(self.queue.get(&key), Some(&value));
            assert_eq!(self.queue.deadline(&key), self.instant(tick));
        }
    }
}

fn manual() -> Clock {
    Clock::Manual(Box::new(TimerService::builder().build_manual()))
}

#[cfg(feature = "tokio")]
fn tokio_paused() -> Clock {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    Clock::Tokio(runtime)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn delay_queue_matches_model(ops in prop::collection::vec(op(), 1..150)) {
        Harness::new(manual()).run(&ops);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn delay_queue_on_tokio_matches_model(ops in prop::collection::vec(op(), 1..150)) {
        Harness::new(tokio_paused()).run(&ops);
    }
}
