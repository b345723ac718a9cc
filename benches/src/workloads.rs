//! The workloads shared by the criterion suites (`benches/benches/`) and the comparison programs (`benches/src/bin/`), and one adapter per
//! implementation (the wheel, the baselines, and the crates.io peers, each driven through its
//! own API). Every implementation gets the same operation stream from the same seed and the
//! same per-step bookkeeping (an `Option<Key>` per connection, the same generator calls).

use std::hint::black_box;
use std::time::{Duration, Instant};

use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap, SplitMix64, TimerQueue};
use tierwheel::{TimerKey, TimerWheel};

/// "timeouts"/"reschedule": a timer is due this many ticks after its last touch...
pub const TIMEOUT: u64 = 30_000;
/// ...plus up to this much jitter (25%).
pub const JITTER: u64 = TIMEOUT / 4;
/// "timeouts"/"reschedule": time moves one tick every this many steps.
pub const STEPS_PER_TICK: u64 = 64;
/// "fire"/"insert": deadlines are uniform below this.
pub const FIRE_RANGE: u64 = 1 << 20;
/// "spread": deadlines are uniform below this.
pub const SPREAD_RANGE: u64 = 1 << 60;
/// Every stream starts from this seed.
pub const SEED: u64 = 0x7133_5EED;

/// One scheduler as the workloads drive it. Keys are consumed by value, because some peers'
/// handles must be.
pub trait Subject {
    /// What names a pending timer.
    type Key;
    /// Name in reports and bench ids.
    const NAME: &'static str;
    /// Whether deadlines up to 2^60 ticks are accepted (the "spread" workload).
    const FULL_RANGE: bool = true;
    fn new() -> Self;
    fn insert(&mut self, deadline: u64, value: u64) -> Self::Key;
    fn cancel(&mut self, key: Self::Key);
    /// Moves a pending timer (whose value is `value`) to `deadline`.
    fn reschedule(&mut self, key: Self::Key, deadline: u64, value: u64) -> Self::Key;
    /// Moves time to `now` and appends the value of every due timer to `fired`.
    fn advance(&mut self, now: u64, fired: &mut Vec<u64>);
    /// Lets go of the key of a timer that has fired.
    fn release(&mut self, key: Self::Key) {
        let _ = key;
    }
    /// The tick an event loop would sleep until, if the implementation tells: the connection
    /// table counts the wakeups at it that find nothing due. `None` for those it is not asked
    /// of.
    fn next_deadline(&self) -> Option<u64> {
        None
    }
}

macro_rules! queue_subject {
    ($ty:ty, $name:literal $(, $next_deadline:ident)?) => {
        impl Subject for $ty {
            type Key = <$ty as TimerQueue<u64>>::Key;
            const NAME: &'static str = $name;
            fn new() -> Self {
                <$ty>::new()
            }
            fn insert(&mut self, deadline: u64, value: u64) -> Self::Key {
                TimerQueue::insert_at(self, deadline, value)
            }
            fn cancel(&mut self, key: Self::Key) {
                black_box(TimerQueue::cancel(self, key));
            }
            fn reschedule(&mut self, key: Self::Key, deadline: u64, _: u64) -> Self::Key {
                TimerQueue::reschedule(self, key, deadline).expect("rescheduled a pending timer")
            }
            fn advance(&mut self, now: u64, fired: &mut Vec<u64>) {
                while let Some(value) = TimerQueue::poll(self, now) {
                    fired.push(value);
                }
            }
            $(
                fn $next_deadline(&self) -> Option<u64> {
                    TimerQueue::next_deadline(self)
                }
            )?
        }
    };
}

// Only the wheel is asked for its next deadline: the figure is about its exactness, and the
// others' steps stay as they were.
queue_subject!(TimerWheel<u64>, "wheel", next_deadline);
queue_subject!(LazyBinaryHeap<u64>, "lazy_heap");
queue_subject!(IndexedHeap<u64>, "indexed_heap");
queue_subject!(BTreeQueue<u64>, "btree");

/// `nexus-timer`'s wheel at its default geometry (1 ms ticks): handles are consumed by
/// `cancel`, `reschedule` or (after firing) `free`, and `poll_and_rebalance` collects.
pub struct Nexus {
    wheel: nexus_timer::Wheel<u64>,
    epoch: Instant,
}

impl Nexus {
    fn at(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_millis(tick)
    }
}

impl Subject for Nexus {
    type Key = nexus_timer::TimerHandle<u64>;
    const NAME: &'static str = "nexus_timer";
    const FULL_RANGE: bool = false;
    fn new() -> Self {
        let epoch = Instant::now();
        Nexus {
            wheel: nexus_timer::Wheel::unbounded(4096, epoch),
            epoch,
        }
    }
    fn insert(&mut self, deadline: u64, value: u64) -> Self::Key {
        let at = self.at(deadline);
        self.wheel.schedule(at, value)
    }
    fn cancel(&mut self, key: Self::Key) {
        black_box(self.wheel.cancel(key));
    }
    fn reschedule(&mut self, key: Self::Key, deadline: u64, _: u64) -> Self::Key {
        let at = self.at(deadline);
        self.wheel.reschedule(key, at)
    }
    fn advance(&mut self, now: u64, fired: &mut Vec<u64>) {
        let at = self.at(now);
        self.wheel.poll_and_rebalance(at, fired);
    }
    fn release(&mut self, key: Self::Key) {
        self.wheel.free(key);
    }
}

static TOKIO: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();

/// `tokio-util`'s `DelayQueue` (1 ms resolution) on a current-thread runtime with tokio's
/// paused clock: time moves by `tokio::time::advance`, expired entries come from
/// `poll_expired` until it returns `Pending`.
pub struct TokioDelayQueue {
    queue: tokio_util::time::DelayQueue<u64>,
    start: tokio::time::Instant,
    now: u64,
    // Declared last: dropped after the queue, whose timer entry needs the runtime.
    _runtime: tokio::runtime::EnterGuard<'static>,
}

impl TokioDelayQueue {
    fn runtime() -> &'static tokio::runtime::Runtime {
        TOKIO.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("tokio runtime")
        })
    }
}

impl Subject for TokioDelayQueue {
    type Key = tokio_util::time::delay_queue::Key;
    const NAME: &'static str = "tokio_delay_queue";
    const FULL_RANGE: bool = false;
    fn new() -> Self {
        let guard = Self::runtime().enter();
        TokioDelayQueue {
            queue: tokio_util::time::DelayQueue::new(),
            start: tokio::time::Instant::now(),
            now: 0,
            _runtime: guard,
        }
    }
    fn insert(&mut self, deadline: u64, value: u64) -> Self::Key {
        self.queue
            .insert_at(value, self.start + Duration::from_millis(deadline))
    }
    fn cancel(&mut self, key: Self::Key) {
        black_box(self.queue.remove(&key));
    }
    fn reschedule(&mut self, key: Self::Key, deadline: u64, _: u64) -> Self::Key {
        self.queue
            .reset_at(&key, self.start + Duration::from_millis(deadline));
        key
    }
    fn advance(&mut self, now: u64, fired: &mut Vec<u64>) {
        if now > self.now {
            let step = Duration::from_millis(now - self.now);
            Self::runtime().block_on(tokio::time::advance(step));
            self.now = now;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        while let std::task::Poll::Ready(Some(expired)) = self.queue.poll_expired(&mut cx) {
            fired.push(expired.into_inner());
        }
    }
}

/// An entry of `hierarchical_hash_wheel_timer`'s cancellable wheel: a unique id (the key),
/// the value and the delay it was inserted with.
#[derive(Debug)]
pub struct HashWheelEntry {
    id: u64,
    value: u64,
    delay: Duration,
}

impl hierarchical_hash_wheel_timer::wheels::TimerEntryWithDelay for HashWheelEntry {
    fn delay(&self) -> Duration {
        self.delay
    }
}

impl hierarchical_hash_wheel_timer::wheels::cancellable::CancellableTimerEntry for HashWheelEntry {
    type Id = u64;
    fn id(&self) -> &u64 {
        &self.id
    }
}

/// `hierarchical_hash_wheel_timer`'s cancellable quad wheel (1 ms units): insert by delay,
/// cancel by id, `tick` one unit at a time, `skip` what `can_skip` allows. It has no
/// reschedule: cancel and insert with a fresh id.
pub struct HashWheel {
    wheel:
        hierarchical_hash_wheel_timer::wheels::cancellable::QuadWheelWithOverflow<HashWheelEntry>,
    now: u64,
    next_id: u64,
    /// Inserted with no delay left: the wheel refuses those as already expired.
    due: Vec<u64>,
}

impl Subject for HashWheel {
    type Key = u64;
    const NAME: &'static str = "hash_wheel_timer";
    const FULL_RANGE: bool = false;
    fn new() -> Self {
        HashWheel {
            wheel: hierarchical_hash_wheel_timer::wheels::cancellable::QuadWheelWithOverflow::new(),
            now: 0,
            next_id: 0,
            due: Vec::new(),
        }
    }
    fn insert(&mut self, deadline: u64, value: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let delay = Duration::from_millis(deadline.saturating_sub(self.now));
        if self
            .wheel
            .insert(HashWheelEntry { id, value, delay })
            .is_err()
        {
            self.due.push(value);
        }
        id
    }
    fn cancel(&mut self, key: u64) {
        black_box(self.wheel.cancel(&key).is_ok());
    }
    fn reschedule(&mut self, key: u64, deadline: u64, value: u64) -> u64 {
        // No reschedule in this API, and cancel does not hand the value back.
        black_box(self.wheel.cancel(&key).is_ok());
        self.insert(deadline, value)
    }
    fn advance(&mut self, now: u64, fired: &mut Vec<u64>) {
        use hierarchical_hash_wheel_timer::wheels::Skip;
        fired.append(&mut self.due);
        while self.now < now {
            let left = u32::try_from(now - self.now).unwrap_or(u32::MAX);
            match self.wheel.can_skip() {
                Skip::Empty => {
                    self.wheel.skip(left);
                    self.now += u64::from(left);
                }
                Skip::Millis(n) => {
                    let n = n.min(left);
                    self.wheel.skip(n);
                    self.now += u64::from(n);
                }
                Skip::None => {
                    self.now += 1;
                    fired.extend(self.wheel.tick().iter().map(|entry| entry.value));
                }
            }
        }
    }
}

/// Not a timer: a bare slab with no order, whose `advance` fires nothing. In `timeouts` it costs
/// what no implementation can avoid (the harness, the caller's key, and the storage entry a
/// cancel frees and the next insert reuses), so it shows how close each scheduler gets to the
/// floor. Only the criterion `timeouts` and `budget` groups run it.
pub struct Floor {
    /// Per entry: generation, next free entry (`u32::MAX` while occupied), value.
    entries: Vec<(u32, u32, u64)>,
    free: u32,
}

impl Subject for Floor {
    type Key = (u32, u32);
    const NAME: &'static str = "floor";
    fn new() -> Self {
        Floor {
            entries: Vec::new(),
            free: u32::MAX,
        }
    }
    fn insert(&mut self, _deadline: u64, value: u64) -> (u32, u32) {
        if self.free != u32::MAX {
            let index = self.free;
            let entry = &mut self.entries[index as usize];
            self.free = entry.1;
            (entry.1, entry.2) = (u32::MAX, value);
            return (index, entry.0);
        }
        self.entries.push((0, u32::MAX, value));
        (self.entries.len() as u32 - 1, 0)
    }
    fn cancel(&mut self, key: (u32, u32)) {
        black_box(self.free(key));
    }
    fn reschedule(&mut self, key: (u32, u32), deadline: u64, value: u64) -> (u32, u32) {
        self.cancel(key);
        self.insert(deadline, value)
    }
    fn advance(&mut self, _now: u64, _fired: &mut Vec<u64>) {}
}

impl Floor {
    /// Frees the entry `key` names, if it is occupied by that generation, and returns its value.
    fn free(&mut self, (index, generation): (u32, u32)) -> Option<u64> {
        let entry = &mut self.entries[index as usize];
        if entry.0 != generation || entry.1 != u32::MAX {
            return None;
        }
        entry.0 += 1;
        entry.1 = self.free;
        self.free = index;
        Some(entry.2)
    }
}

/// The floor, plus work on every cancel that needs the freed entry's value but reads and writes
/// no memory: `ROUNDS` rounds of an add, a rotate and an xor on each of eight independent
/// lanes. It prices instructions without misses: how fast a touch can be that executes that
/// many more instructions than the floor, with as much parallelism as a processor can use. The
/// criterion `budget` group runs it beside the wheel and the lazy heap (docs/benchmarks.md,
/// "The floor", quotes the floor itself).
pub struct Budget<const ROUNDS: usize> {
    floor: Floor,
    sink: u64,
}

/// `ROUNDS` rounds of eight-lane work seeded by `seed`, folded into one word.
fn spend<const ROUNDS: usize>(seed: u64) -> u64 {
    let mut lanes = [0u64; 8];
    for (lane, x) in lanes.iter_mut().enumerate() {
        *x = seed ^ lane as u64;
    }
    for _ in 0..ROUNDS {
        for (lane, x) in lanes.iter_mut().enumerate() {
            *x = x.wrapping_add(0x9E37_79B9).rotate_left(7) ^ lane as u64;
        }
    }
    lanes.iter().fold(0, |folded, x| folded ^ x)
}

impl<const ROUNDS: usize> Subject for Budget<ROUNDS> {
    type Key = (u32, u32);
    /// The criterion `budget` group runs 1, 2, 4 and 8 rounds.
    const NAME: &'static str = match ROUNDS {
        1 => "floor_work1",
        2 => "floor_work2",
        4 => "floor_work4",
        8 => "floor_work8",
        _ => "floor_work",
    };
    fn new() -> Self {
        Budget {
            floor: Floor::new(),
            sink: 0,
        }
    }
    fn insert(&mut self, deadline: u64, value: u64) -> (u32, u32) {
        self.floor.insert(deadline, value)
    }
    fn cancel(&mut self, key: (u32, u32)) {
        if let Some(value) = self.floor.free(key) {
            // Kept in a field, so the work is not optimized away.
            self.sink ^= spend::<ROUNDS>(value);
        }
    }
    fn reschedule(&mut self, key: (u32, u32), deadline: u64, value: u64) -> (u32, u32) {
        self.cancel(key);
        self.insert(deadline, value)
    }
    fn advance(&mut self, _now: u64, _fired: &mut Vec<u64>) {
        black_box(self.sink);
    }
}

/// Jitter for connection `slot` touched at tick `now`: a hash, not a generator call, so the
/// stream of touches stays the same even if an implementation fired at another tick.
fn jitter(slot: u64, now: u64) -> u64 {
    let mut z = slot.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now;
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 29)) % (JITTER + 1)
}

/// How a step of the connection table touches a connection's timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Touch {
    /// "timeouts": cancel the timer and insert a new one, with a fresh jitter.
    CancelInsert,
    /// "reschedule": reschedule the timer, with a fresh jitter, so that at small N about half
    /// of the touches move a deadline earlier.
    Reschedule,
    /// "idle": reschedule the timer; each connection's jitter is fixed, so every touch moves
    /// its deadline later, as traffic on an idle timeout does.
    Idle,
}

/// "timeouts", "reschedule" and "idle": `n` connections, each with an idle timer due
/// `TIMEOUT + jitter` ticks after its last touch. Each step touches a random connection (see
/// [`Touch`]); every `STEPS_PER_TICK` steps time moves one tick, and each timer that fires is
/// replaced by a new one for its connection.
pub struct Connections<S: Subject> {
    subject: S,
    keys: Vec<Option<S::Key>>,
    rng: SplitMix64,
    now: u64,
    steps: u64,
    fired: Vec<u64>,
    touch: Touch,
    /// Timers fired so far.
    pub fired_total: u64,
    /// Ticks at which the subject's reported next deadline was due, so an event loop would have
    /// woken up: counted only for a subject that reports one.
    pub wakeups: u64,
    /// Of those, the wakeups whose poll fired nothing.
    pub empty_wakeups: u64,
}

impl<S: Subject> Connections<S> {
    /// `n` connections touched at random times in the last timeout, so the first steps already
    /// look like the steady state.
    pub fn new(n: usize, touch: Touch) -> Self {
        let mut rng = SplitMix64::new(SEED);
        let mut subject = S::new();
        let mut keys = Vec::with_capacity(n);
        for slot in 0..n as u64 {
            let deadline = 1 + rng.below(TIMEOUT + JITTER);
            keys.push(Some(subject.insert(deadline, slot)));
        }
        Connections {
            subject,
            keys,
            rng,
            now: 0,
            steps: 0,
            fired: Vec::new(),
            touch,
            fired_total: 0,
            wakeups: 0,
            empty_wakeups: 0,
        }
    }

    /// Wakeups that found nothing due, per 10^6 touches; `None` if the subject reports no next
    /// deadline.
    pub fn empty_wakeups_per_million(&self) -> Option<f64> {
        // The table always holds its n timers: a subject that reports deadlines reports one.
        self.subject.next_deadline()?;
        Some(self.empty_wakeups as f64 * 1e6 / self.steps.max(1) as f64)
    }

    /// The jitter of connection `slot` touched now: fixed per connection for `Touch::Idle`,
    /// fresh on every touch otherwise.
    fn jitter(&self, slot: u64) -> u64 {
        match self.touch {
            Touch::Idle => jitter(slot, 0),
            Touch::CancelInsert | Touch::Reschedule => jitter(slot, self.now),
        }
    }

    /// Bytes the caller's keys take (not the scheduler's).
    pub fn key_bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<Option<S::Key>>()
    }

    /// Runs `steps` touches.
    pub fn run(&mut self, steps: u64) {
        let n = self.keys.len() as u64;
        for _ in 0..steps {
            let slot = self.rng.below(n);
            let deadline = self.now + TIMEOUT + self.jitter(slot);
            let key = self.keys[slot as usize]
                .take()
                .expect("connection has a timer");
            let key = match self.touch {
                Touch::Reschedule | Touch::Idle => self.subject.reschedule(key, deadline, slot),
                Touch::CancelInsert => {
                    self.subject.cancel(key);
                    self.subject.insert(deadline, slot)
                }
            };
            self.keys[slot as usize] = Some(key);
            self.steps += 1;
            if self.steps.is_multiple_of(STEPS_PER_TICK) {
                self.now += 1;
                // An event loop sleeps until the next deadline and polls there. Every timer is
                // due after the previous tick, so a deadline due by now is this very tick.
                let wakeup = self
                    .subject
                    .next_deadline()
                    .is_some_and(|at| at <= self.now);
                let mut fired = std::mem::take(&mut self.fired);
                self.subject.advance(self.now, &mut fired);
                if wakeup {
                    self.wakeups += 1;
                    self.empty_wakeups += u64::from(fired.is_empty());
                }
                self.fired_total += fired.len() as u64;
                for slot in fired.drain(..) {
                    let old = self.keys[slot as usize]
                        .take()
                        .expect("fired timer had a key");
                    self.subject.release(old);
                    let deadline = self.now + TIMEOUT + self.jitter(slot);
                    self.keys[slot as usize] = Some(self.subject.insert(deadline, slot));
                }
                self.fired = fired;
            }
        }
    }

    /// Cancels every timer (some peers insist their handles are consumed).
    pub fn finish(mut self) {
        for key in self.keys.drain(..).flatten() {
            self.subject.cancel(key);
        }
    }
}

/// `n` deadlines below `range`, the same for every implementation.
pub fn deadlines(n: usize, range: u64) -> Vec<u64> {
    let mut rng = SplitMix64::new(SEED);
    (0..n).map(|_| rng.below(range)).collect()
}

/// "insert": inserts a timer at each deadline into an empty scheduler. Returns the time the
/// inserts took (building the scheduler and tearing it down are not timed).
pub fn insert<S: Subject>(deadlines: &[u64]) -> Duration {
    let mut subject = S::new();
    let mut keys = Vec::with_capacity(deadlines.len());
    let start = Instant::now();
    for (slot, &deadline) in deadlines.iter().enumerate() {
        keys.push(Some(subject.insert(deadline, slot as u64)));
    }
    let elapsed = start.elapsed();
    for key in keys.into_iter().flatten() {
        subject.cancel(key);
    }
    elapsed
}

/// "fire" and "spread", untimed: how many adjacent pairs of the fired sequence are out of
/// firing order (by deadline, then insertion). 0 for an implementation that fires in order;
/// about half the pairs for one whose bulk poll hands out due timers level by level.
pub fn fire_inversions<S: Subject>(deadlines: &[u64], end: u64) -> usize {
    let mut subject = S::new();
    let mut keys = Vec::with_capacity(deadlines.len());
    let mut fired = Vec::with_capacity(deadlines.len());
    insert_and_fire(&mut subject, deadlines, end, &mut keys, &mut fired);
    let order = |slot: u64| (deadlines[slot as usize], slot);
    fired
        .windows(2)
        .filter(|pair| order(pair[0]) > order(pair[1]))
        .count()
}

/// "fire" and "spread": inserts a timer at each deadline, then advances to `end` in one call,
/// collecting every timer. Returns the time for all of it (building the scheduler is not
/// timed).
pub fn fire<S: Subject>(deadlines: &[u64], end: u64) -> Duration {
    let mut subject = S::new();
    let mut keys = Vec::with_capacity(deadlines.len());
    let mut fired = Vec::with_capacity(deadlines.len());
    let start = Instant::now();
    insert_and_fire(&mut subject, deadlines, end, &mut keys, &mut fired);
    let elapsed = start.elapsed();
    assert_eq!(
        fired.len(),
        deadlines.len(),
        "{}: every timer fires",
        S::NAME
    );
    elapsed
}

/// What "fire" and "spread" do: inserts a timer at each deadline (its value is its index in
/// `deadlines`, its key kept in `keys`), advances to `end` collecting the fired values in
/// `fired`, in the order fired, and lets go of the fired timers' keys.
fn insert_and_fire<S: Subject>(
    subject: &mut S,
    deadlines: &[u64],
    end: u64,
    keys: &mut Vec<Option<S::Key>>,
    fired: &mut Vec<u64>,
) {
    for (slot, &deadline) in deadlines.iter().enumerate() {
        keys.push(Some(subject.insert(deadline, slot as u64)));
    }
    subject.advance(end, fired);
    for &slot in fired.iter() {
        let key = keys[slot as usize].take().expect("fired once");
        subject.release(key);
    }
}

/// "adversarial": first tick of the one coarse slot every timer is due in, on a wheel at tick
/// 0: slot 1 of level 2, 4096 ticks long.
pub const CROWD_START: u64 = 4096;
/// "adversarial": one past the slot's last tick.
pub const CROWD_END: u64 = 8192;

/// How an "adversarial" step uses the crowded slot. Every step asks `next_deadline()` after
/// each wheel operation, as an event loop does before it sleeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Crowding {
    /// The baseline: cancel a random timer and insert its replacement at a random deadline in
    /// the slot. A step is the pair.
    CancelRandom,
    /// The table is inserted in decreasing deadline order, so that each list holds its
    /// earliest timer last; a step inserts the next timer of that order (from the slot's end
    /// downward) and cancels the earliest. A step is the pair.
    DecreasingCancelEarliest,
    /// Insert a random deadline in the slot and cancel the earliest, as a priority queue is
    /// used. A step is the pair.
    RandomCancelEarliest,
    /// Reschedule the earliest timer to a random later deadline in the slot. A step is one
    /// reschedule.
    RescheduleEarliestLater,
    /// Reschedule a random timer to a random earlier deadline in the slot: a lazy move while
    /// the deadline stays in the part of the slot the timer is filed in (all of it, or a finer
    /// slot once it is split), a move at once otherwise. A step is one reschedule.
    RescheduleRandomEarlier,
}

impl Crowding {
    /// Every pattern, the baseline first.
    pub const ALL: [Crowding; 5] = [
        Crowding::CancelRandom,
        Crowding::DecreasingCancelEarliest,
        Crowding::RandomCancelEarliest,
        Crowding::RescheduleEarliestLater,
        Crowding::RescheduleRandomEarlier,
    ];

    /// Name in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Crowding::CancelRandom => "cancel_random",
            Crowding::DecreasingCancelEarliest => "decreasing_cancel_earliest",
            Crowding::RandomCancelEarliest => "random_cancel_earliest",
            Crowding::RescheduleEarliestLater => "reschedule_earliest_later",
            Crowding::RescheduleRandomEarlier => "reschedule_random_earlier",
        }
    }
}

/// "adversarial": `n` timers crowded into one coarse slot of a wheel that stays at tick 0,
/// used by one [`Crowding`] pattern. The slot always holds `n` timers between steps.
///
/// With time standing still, the patterns that take the earliest timer move the slot's
/// deadlines toward its end (and the decreasing inserts meet the cancels after `n / 2` steps),
/// so every `n / 2` steps the table is built again from the same kind of start, outside the
/// measured time. A phase's cost includes the splits its first steps trigger.
pub struct Crowd {
    wheel: TimerWheel<u64>,
    /// Timers in the slot.
    n: usize,
    /// Indexed by each timer's value; one spare entry for a pattern that inserts before it
    /// cancels.
    keys: Vec<TimerKey>,
    /// The entry of `keys` no pending timer uses, for the insert-then-cancel patterns.
    spare: usize,
    rng: SplitMix64,
    pattern: Crowding,
    /// Steps left before the table is built again.
    left: u64,
    /// Inserts made in decreasing deadline order since the table was built.
    descending: u64,
}

impl Crowd {
    /// `n` timers (at least 2) in the slot, the table built for `pattern`.
    pub fn new(n: usize, pattern: Crowding) -> Self {
        assert!(n >= 2, "a crowd of {n}");
        let mut crowd = Crowd {
            wheel: TimerWheel::with_capacity(n + 1),
            n,
            keys: Vec::with_capacity(n + 1),
            spare: n,
            rng: SplitMix64::new(SEED),
            pattern,
            left: 0,
            descending: 0,
        };
        crowd.build();
        crowd
    }

    /// Empties the wheel and inserts the table again: `n` timers at random deadlines in the
    /// slot, or in decreasing deadline order for `DecreasingCancelEarliest`.
    fn build(&mut self) {
        let n = self.n;
        self.wheel.clear();
        self.keys.clear();
        self.descending = 0;
        for value in 0..n as u64 {
            let deadline = match self.pattern {
                Crowding::DecreasingCancelEarliest => self.next_descending(n),
                _ => self.random_deadline(),
            };
            self.keys.push(self.wheel.insert_at(deadline, value));
        }
        // The spare entry: a key that names no pending timer.
        let spare = self.wheel.insert_at(CROWD_START, n as u64);
        self.wheel.cancel(spare);
        self.keys.push(spare);
        self.spare = n;
        self.left = n as u64 / 2;
    }

    fn random_deadline(&mut self) -> u64 {
        CROWD_START + self.rng.below(CROWD_END - CROWD_START)
    }

    /// The next deadline of the decreasing order: from the slot's last tick down to its first,
    /// `n / 4096` timers a tick, then again from the last.
    fn next_descending(&mut self, n: usize) -> u64 {
        let span = CROWD_END - CROWD_START;
        let step = self.descending * span / n as u64;
        self.descending += 1;
        CROWD_END - 1 - step % span
    }

    /// Runs `steps` steps and returns the time they took, not counting the rebuilds.
    pub fn run(&mut self, steps: u64) -> Duration {
        let mut elapsed = Duration::ZERO;
        let mut steps_left = steps;
        while steps_left > 0 {
            if self.left == 0 {
                self.build();
            }
            let phase = steps_left.min(self.left);
            let start = Instant::now();
            for _ in 0..phase {
                self.step();
            }
            elapsed += start.elapsed();
            assert_eq!(self.wheel.len(), self.n, "{:?} left the slot", self.pattern);
            self.left -= phase;
            steps_left -= phase;
        }
        elapsed
    }

    fn step(&mut self) {
        match self.pattern {
            Crowding::CancelRandom => {
                let value = self.rng.below(self.n as u64);
                black_box(self.wheel.cancel(self.keys[value as usize]));
                black_box(self.wheel.next_deadline());
                let deadline = self.random_deadline();
                self.keys[value as usize] = self.wheel.insert_at(deadline, value);
                black_box(self.wheel.next_deadline());
            }
            Crowding::DecreasingCancelEarliest | Crowding::RandomCancelEarliest => {
                let deadline = match self.pattern {
                    Crowding::DecreasingCancelEarliest => self.next_descending(self.n),
                    _ => self.random_deadline(),
                };
                self.keys[self.spare] = self.wheel.insert_at(deadline, self.spare as u64);
                black_box(self.wheel.next_deadline());
                let (key, _, &value) = self.wheel.peek().expect("a crowded slot");
                black_box(self.wheel.cancel(key));
                self.spare = value as usize;
                black_box(self.wheel.next_deadline());
            }
            Crowding::RescheduleEarliestLater => {
                let (key, deadline, _) = self.wheel.peek().expect("a crowded slot");
                // The earliest is at the slot's last tick only if every timer is.
                let later = deadline + 1 + self.rng.below((CROWD_END - 1 - deadline).max(1));
                self.wheel.reschedule(key, later.min(CROWD_END - 1));
                black_box(self.wheel.next_deadline());
            }
            Crowding::RescheduleRandomEarlier => {
                let key = self.keys[self.rng.below(self.n as u64) as usize];
                let deadline = self.wheel.deadline(key).expect("a pending timer");
                let earlier = CROWD_START + self.rng.below((deadline - CROWD_START).max(1));
                self.wheel.reschedule(key, earlier);
                black_box(self.wheel.next_deadline());
            }
        }
    }
}
