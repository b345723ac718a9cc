//! Unit tests of the wheel's internals: invariants after every step against a plain model,
//! lazy moves, splits, sweeps, capacity, and bounds on the work per operation, counted. The
//! public behaviour is also tested against a reference model in `tests/`.

use std::collections::{BTreeMap, HashMap};

use super::*;

/// A plain model: pending timers ordered by (effective deadline, stamp).
#[derive(Default)]
struct Model {
    now: u64,
    seq: u64,
    order: BTreeMap<(u64, u64), (TimerKey, u64, u32)>,
    by_key: HashMap<TimerKey, (u64, u64)>,
}

impl Model {
    fn insert(&mut self, key: TimerKey, deadline: u64, value: u32) {
        let at = (deadline.max(self.now), self.seq);
        self.seq += 1;
        self.order.insert(at, (key, deadline, value));
        self.by_key.insert(key, at);
    }
    fn cancel(&mut self, key: TimerKey) -> Option<u32> {
        let at = self.by_key.remove(&key)?;
        self.order.remove(&at).map(|(_, _, value)| value)
    }
    fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        match self.cancel(key) {
            Some(value) => {
                self.insert(key, deadline, value);
                true
            }
            None => false,
        }
    }
    fn poll(&mut self, now: u64) -> Option<(TimerKey, u64, u32)> {
        let target = now.max(self.now);
        match self.order.first_key_value() {
            Some((&(effective, _), _)) if effective <= target => {
                let (at, fired) = self.order.pop_first().unwrap();
                self.by_key.remove(&fired.0);
                self.now = self.now.max(at.0);
                Some(fired)
            }
            _ => {
                self.now = target;
                None
            }
        }
    }
    fn first(&self) -> Option<(TimerKey, u64, u32)> {
        self.order.first_key_value().map(|(_, &fired)| fired)
    }
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn deadline(rng: &mut Rng, now: u64) -> u64 {
    match rng.below(8) {
        0 => now.saturating_sub(rng.below(100)),
        1 => now,
        2 => now.saturating_add(rng.below(64)),
        3 => now.saturating_add(rng.below(5000)),
        4 => u64::MAX - rng.below(3),
        5 => 1u64 << rng.below(64),
        6 => now.saturating_add(1 << rng.below(64)),
        _ => now.saturating_add(rng.below(300_000)),
    }
}

/// Deadlines crowded into the next few level-1 and level-2 slots, with many ties: a `poll`
/// that passes a whole slot turns it into a run, and later operations land inside its span.
fn crowded_deadline(rng: &mut Rng, now: u64) -> u64 {
    match rng.below(6) {
        0 => now.saturating_add(rng.below(64)),
        1 => (now | 63).saturating_add(1 + 8 * rng.below(16)),
        2 => (now | 4095).saturating_add(1 + 256 * rng.below(40)),
        3 => now.saturating_sub(rng.below(10)),
        _ => now.saturating_add(rng.below(3 * 4096)),
    }
}

/// Deadlines clustered in the next coarse slots and beyond, so that the front is often a
/// coarse slot holding many timers: cancelling or moving its earliest scans or splits it.
fn clustered_deadline(rng: &mut Rng, now: u64) -> u64 {
    let next_slot = (now | 4095).saturating_add(1);
    match rng.below(10) {
        0 => now.saturating_add(rng.below(64)),
        1 => now.saturating_add(rng.below(1 << 20)),
        _ => next_slot.saturating_add(rng.below(4096)),
    }
}

/// A reschedule target: mostly later than the timer's deadline (a lazy move), sometimes far
/// later, sometimes earlier (a move at once), sometimes the same tick.
fn moved_deadline(rng: &mut Rng, now: u64, current: u64, crowded: bool) -> u64 {
    match rng.below(8) {
        0 => current,
        1 => deadline(rng, now),
        2 => current.saturating_sub(rng.below(5_000)).max(now),
        3 => current.saturating_add(1 << rng.below(40)),
        _ if crowded => current.saturating_add(rng.below(4096)),
        _ => current.saturating_add(rng.below(100_000)),
    }
}

/// What a differential run did, to check that a stream exercises what it is for.
#[derive(Default, Debug)]
struct Coverage {
    run_steps: usize,
    splits: usize,
}

/// Runs a random operation stream against the model and checks every answer and every
/// invariant after every step.
fn differential(
    seed: u64,
    start: u64,
    steps: usize,
    deadline: fn(&mut Rng, u64) -> u64,
    crowded: bool,
    polls: u64,
) -> Coverage {
    let mut wheel = TimerWheel::starting_at(start);
    let mut coverage = Coverage::default();
    let mut rng = Rng(seed);
    let mut model = Model {
        now: start,
        ..Model::default()
    };
    let mut keys: Vec<TimerKey> = Vec::new();
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(9 + polls) {
            0..=3 => {
                let d = deadline(&mut rng, wheel.now());
                let value = step as u32;
                let key = wheel.insert_at(d, value);
                model.insert(key, d, value);
                keys.push(key);
            }
            4 | 5 if !keys.is_empty() => {
                let key = pick(&wheel, &keys, &mut rng);
                assert_eq!(wheel.cancel(key), model.cancel(key), "{ctx}");
            }
            6..=8 if !keys.is_empty() => {
                let key = pick(&wheel, &keys, &mut rng);
                let current = wheel.deadline(key).unwrap_or(wheel.now());
                let d = moved_deadline(&mut rng, wheel.now(), current, crowded);
                assert_eq!(wheel.reschedule(key, d), model.reschedule(key, d), "{ctx}");
            }
            _ => {
                let to = match rng.below(4) {
                    0 => wheel.now().saturating_add(rng.below(70)),
                    1 => wheel.now().saturating_add(rng.below(1 << 20)),
                    2 => deadline(&mut rng, wheel.now()),
                    _ => wheel.next_deadline().unwrap_or(u64::MAX),
                };
                let limit = rng.below(6);
                let mut due = wheel.advance(to);
                for _ in 0..limit {
                    let got = due.next().map(|e| (e.key, e.deadline, e.value));
                    assert_eq!(got, model.poll(to), "{ctx}");
                    if got.is_none() {
                        break;
                    }
                }
            }
        }
        assert_eq!(wheel.now(), model.now, "{ctx}");
        assert_eq!(wheel.len(), model.order.len(), "{ctx}");
        let expected = model
            .order
            .first_key_value()
            .map(|(&(effective, _), _)| effective);
        assert_eq!(wheel.next_deadline(), expected, "{ctx}");
        assert_eq!(
            wheel
                .peek()
                .map(|(key, deadline, &value)| (key, deadline, value)),
            model.first(),
            "{ctx}"
        );
        wheel.check();
        coverage.run_steps += usize::from(wheel.run.live > 0);
        coverage.splits = wheel.splits;
    }
    coverage
}

/// A key to cancel or reschedule: often the next timer to fire (which makes the front slot
/// stale, to be scanned or split), else any key ever made.
fn pick(wheel: &TimerWheel<u32>, keys: &[TimerKey], rng: &mut Rng) -> TimerKey {
    match wheel.peek() {
        Some((key, _, _)) if rng.below(2) == 0 => key,
        _ => keys[rng.below(keys.len() as u64) as usize],
    }
}

/// Seeds per differential test; `TIERWHEEL_SEEDS=100000` for a long run.
fn seeds(default: u64) -> std::ops::Range<u64> {
    let n = std::env::var("TIERWHEEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok());
    0..n.unwrap_or(default)
}

#[test]
fn matches_the_model() {
    for seed in seeds(200) {
        differential(seed, 0, 400, deadline, false, 3);
    }
}

#[test]
fn matches_the_model_near_the_end_of_time() {
    for seed in seeds(100) {
        let start = u64::MAX - (1 << (seed % 40));
        differential(seed, start, 300, deadline, false, 3);
    }
}

#[test]
fn matches_the_model_through_runs() {
    let mut run_steps = 0;
    for seed in seeds(300) {
        for start in [0, 1 << 40] {
            run_steps += differential(seed, start, 400, crowded_deadline, true, 3).run_steps;
        }
    }
    // The stream must exercise what it is for: operations while a run is active.
    assert!(
        run_steps > 5_000,
        "runs were active after only {run_steps} steps"
    );
}

#[test]
fn matches_the_model_through_splits() {
    let mut splits = 0;
    for seed in seeds(300) {
        for start in [0, 1 << 40, u64::MAX - (1 << 20)] {
            splits += differential(seed, start, 400, clustered_deadline, true, 1).splits;
        }
    }
    assert!(splits > 1_000, "only {splits} splits");
}

/// `poll`'s fast path pops the run while its next timer is below `run_gate`: at a level-0 tick
/// the wheel holds, the run goes first only on a tie; at the start of a coarse slot filed
/// during the run, the slot cascades first, so that timers filed later queue behind it.
#[test]
fn the_run_gives_way_to_wheel_timers_filed_while_it_lasts() {
    // A run over the level-1 slot 64..=127; `w` joins level 0 at tick 100 while it lasts.
    let mut wheel = TimerWheel::new();
    for (deadline, value) in [(90, "r0"), (100, "r1"), (101, "r2")] {
        wheel.insert_at(deadline, value);
    }
    assert_eq!(wheel.advance(200).next().map(|e| e.value), Some("r0"));
    assert!(wheel.run.live > 0, "no run");
    wheel.insert_at(100, "w");
    let order: Vec<_> = wheel.advance(200).map(|e| e.value).collect();
    assert_eq!(order, ["r1", "w", "r2"]);

    // A run over the level-2 slot 4096..=8191; `w` goes to the level-1 slot starting at 4224.
    let mut wheel = TimerWheel::new();
    for (deadline, value) in [(4106, "r0"), (4200, "r1"), (4224, "r2")] {
        wheel.insert_at(deadline, value);
    }
    assert_eq!(wheel.advance(10_000).next().map(|e| e.value), Some("r0"));
    wheel.insert_at(4224, "w");
    assert_eq!(wheel.poll(4224).map(|e| e.value), Some("r1"));
    assert_eq!(wheel.poll(4224).map(|e| e.value), Some("r2"));
    assert_eq!(wheel.now(), 4224);
    // Filed after `w`, with the same deadline: fires after it.
    wheel.insert_at(4224, "x");
    wheel.check();
    let order: Vec<_> = wheel.advance(10_000).map(|e| e.value).collect();
    assert_eq!(order, ["w", "x"]);
}

#[test]
fn a_later_reschedule_touches_only_the_timer_and_its_slot_header() {
    let mut wheel = TimerWheel::new();
    let keys: Vec<_> = (0..1_000u64)
        .map(|i| wheel.insert_at(50_000 + i, i))
        .collect();
    let refs_before = wheel.pool.chunks_in_use();
    let work = wheel.work.get();
    // Later, repeatedly: no reference is written, the timer stays filed where it was.
    let filed = wheel.slab.at(keys[500].index()).unwrap().0;
    for step in 0..10_000u64 {
        assert!(wheel.reschedule(keys[500], 60_000 + step));
    }
    assert_eq!(wheel.slab.at(keys[500].index()).unwrap().0, filed);
    assert_eq!(wheel.pool.chunks_in_use(), refs_before);
    assert_eq!(wheel.work.get(), work, "a lazy move did maintenance");
    // It fires at its true deadline, after the timers that were due before it.
    let fired: Vec<_> = wheel
        .advance(u64::MAX)
        .map(|e| (e.deadline, e.value))
        .collect();
    assert_eq!(fired.len(), 1_000);
    assert_eq!(fired.last(), Some(&(69_999, 500)));
    assert!(fired.windows(2).all(|pair| pair[0].0 <= pair[1].0));
}

#[test]
fn a_lazily_moved_timer_keeps_its_place_among_ties() {
    // `a` is moved lazily to 9000, after `b` was inserted at 9000 and before `c` was.
    let mut wheel = TimerWheel::new();
    let a = wheel.insert_at(5000, "a");
    wheel.insert_at(9000, "b");
    assert!(wheel.reschedule(a, 9000));
    wheel.insert_at(9000, "c");
    // `a` is refiled when time reaches 4096, behind `b` and `c`: the tick must fire by stamp.
    let order: Vec<_> = wheel.advance(9000).map(|e| e.value).collect();
    assert_eq!(order, ["b", "a", "c"]);
}

#[test]
fn a_lazily_moved_front_keeps_next_deadline_exact() {
    let mut wheel = TimerWheel::new();
    let a = wheel.insert_at(70_000, 'a');
    wheel.insert_at(80_000, 'b');
    assert!(wheel.reschedule(a, 90_000));
    assert_eq!(wheel.next_deadline(), Some(80_000));
    assert_eq!(wheel.peek().map(|(_, d, &v)| (d, v)), Some((80_000, 'b')));
    wheel.check();
    // Earlier again, inside its slot: moved lazily too, and the cache follows.
    assert!(wheel.reschedule(a, 65_600));
    assert_eq!(wheel.next_deadline(), Some(65_600));
    wheel.check();
}

#[test]
fn stale_references_never_outnumber_live_timers_for_long() {
    let mut wheel = TimerWheel::new();
    let stays = wheel.insert_at(5000, 0u32);
    // Touch one timer again and again in the slot that also holds `stays`.
    let mut key = wheel.insert_at(5000, 1);
    for i in 2..100_000 {
        assert!(wheel.reschedule(key, 4097)); // earlier: moved at once
        wheel.cancel(key);
        key = wheel.insert_at(5000, i);
    }
    let filed = wheel.slab.at(key.index()).unwrap().0;
    let (block, slot_index) = split_id(filed);
    let slot = &wheel.blocks[block as usize].slots[slot_index];
    assert_eq!(slot.live, 2);
    assert!(
        slot.len() <= 2 * slot::CHUNK,
        "stale references piled up: {}",
        slot.len()
    );
    let fired: Vec<_> = wheel.advance(5000).map(|e| e.key).collect();
    assert_eq!(fired, [stays, key]);
}

#[test]
fn cancelling_the_last_timer_of_a_slot_clears_it() {
    let mut wheel = TimerWheel::new();
    let keys: Vec<_> = (0..200)
        .map(|i| wheel.insert_at((1 << 30) + i * 1_000, i))
        .collect();
    // Make the slot the front and stale, large enough to be split.
    wheel.cancel(keys[0]);
    for key in keys {
        wheel.cancel(key);
    }
    assert!(wheel.occupancy.iter().all(|&bits| bits == 0));
    assert!(wheel.blocks.iter().all(|block| block
        .slots
        .iter()
        .all(|slot| slot.len() == 0 && slot.child == NIL)));
    assert_eq!(
        wheel.blocks.len() - wheel.free_blocks.len(),
        LEVELS,
        "a block leaked"
    );
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn full_storage_is_an_error_and_a_clear_panic() {
    let mut wheel = TimerWheel {
        slab: Slab::with_max_entries(2),
        ..TimerWheel::new()
    };
    wheel.insert_at(1, ());
    let key = wheel.insert_at(2, ());
    assert_eq!(wheel.try_insert_at(3, ()), Err(CapacityError));
    assert_eq!(wheel.try_insert_after(3, ()), Err(CapacityError));
    assert_eq!(wheel.len(), 2);
    wheel.cancel(key);
    assert!(wheel.try_insert_at(3, ()).is_ok());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wheel.insert_at(4, ());
    }))
    .unwrap_err();
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(message.contains("timers are pending"), "{message}");
    // Nothing was lost on the way.
    assert_eq!(wheel.advance(u64::MAX).count(), 2);
}

#[test]
fn bookkeeping_per_timer() {
    // A storage entry (generation, placement, filing, deadline, stamp, value) and one slot
    // reference (storage index and placement): 40 bytes beyond a payload of 8 bytes or less.
    let storage = crate::slab::entry_bytes::<Timer<u64>>();
    assert_eq!(storage, 40);
    assert_eq!(
        storage + std::mem::size_of::<Ref>() - std::mem::size_of::<u64>(),
        40
    );
    assert_eq!(std::mem::size_of::<crate::slab::TimerKey>(), 8);
}

#[test]
fn cancelling_the_earliest_in_order_trims_the_front_slot() {
    // Fixed request timeouts answered in order: every cancel hits the earliest timer.
    let mut wheel = TimerWheel::new();
    let keys: Vec<_> = (0..5_000u64)
        .map(|i| wheel.insert_at(100_000 + i, i))
        .collect();
    for (i, &key) in keys.iter().enumerate().take(4_999) {
        wheel.cancel(key);
        assert_eq!(wheel.next_deadline(), Some(100_001 + i as u64));
    }
    wheel.check();
    assert!(
        wheel.pool.chunks_in_use() <= 2,
        "stale references kept at the head"
    );
}

#[test]
fn large_wheels_prefetch_and_still_match_the_model() {
    // Storage past `PREFETCH_ABOVE_BYTES`, then the `timeouts` pattern with reschedules:
    // cascades and sweeps prefetch each timer's storage a chunk ahead, and the final `advance`
    // fills runs the same way (firing from a run prefetches at every size).
    let n = 2 * PREFETCH_ABOVE_BYTES / crate::slab::entry_bytes::<Timer<u32>>() + 1;
    let mut wheel = TimerWheel::new();
    let mut model = Model::default();
    let mut rng = Rng(7);
    let mut keys = Vec::with_capacity(n);
    for value in 0..n as u32 {
        let deadline = rng.below(40_000);
        let key = wheel.insert_at(deadline, value);
        model.insert(key, deadline, value);
        keys.push(key);
    }
    assert!(wheel.slab.bytes() > PREFETCH_ABOVE_BYTES);
    let mut fired = 0;
    for step in 0..300_000_u32 {
        let at = rng.below(n as u64) as usize;
        let deadline = wheel.now() + 30_000 + rng.below(7_500);
        if step % 2 == 0 {
            assert_eq!(
                wheel.cancel(keys[at]),
                model.cancel(keys[at]),
                "step {step}"
            );
            keys[at] = wheel.insert_at(deadline, step);
            model.insert(keys[at], deadline, step);
        } else if !wheel.reschedule(keys[at], deadline) {
            assert!(!model.reschedule(keys[at], deadline));
            keys[at] = wheel.insert_at(deadline, step);
            model.insert(keys[at], deadline, step);
        } else {
            assert!(model.reschedule(keys[at], deadline));
        }
        if step % 16 == 15 {
            let to = wheel.now() + 1;
            fired += poll_like_the_model(&mut wheel, &mut model, to, step);
        }
    }
    assert!(fired > 0, "nothing fired: the test does not reach level 0");
    wheel.check();
    fire_the_rest_like_the_model(&mut wheel, &mut model);
}

/// Polls `wheel` and `model` to `to`, checking every timer fired; returns how many fired.
fn poll_like_the_model(
    wheel: &mut TimerWheel<u32>,
    model: &mut Model,
    to: u64,
    step: u32,
) -> usize {
    let mut fired = 0;
    while let Some(expired) = wheel.poll(to) {
        let expected = model.poll(to).expect("the model has it due too");
        assert_eq!(
            (expired.key, expired.deadline, expired.value),
            expected,
            "step {step}"
        );
        fired += 1;
    }
    assert_eq!(model.poll(to), None, "step {step}");
    fired
}

/// Fires every timer left in `wheel` and checks them against `model`.
fn fire_the_rest_like_the_model(wheel: &mut TimerWheel<u32>, model: &mut Model) {
    let rest: Vec<_> = wheel
        .advance(u64::MAX)
        .map(|e| (e.key, e.deadline, e.value))
        .collect();
    let expected: Vec<_> = std::iter::from_fn(|| model.poll(u64::MAX)).collect();
    assert_eq!(rest, expected);
}

#[test]
fn shrink_to_fit_gives_back_storage_after_a_burst() {
    let mut wheel = TimerWheel::new();
    let keys: Vec<_> = (0..50_000u32)
        .map(|i| wheel.insert_at(u64::from(i) * 7, i))
        .collect();
    let burst = wheel.capacity();
    for &key in &keys[64..] {
        wheel.cancel(key);
    }
    wheel.shrink_to_fit();
    assert!(
        wheel.capacity() * 10 < burst,
        "{} of {burst}",
        wheel.capacity()
    );
    wheel.check();
    let fired: Vec<_> = wheel.advance(u64::MAX).map(|e| e.value).collect();
    assert_eq!(fired, (0..64).collect::<Vec<_>>());
}

/// Work (references and blocks visited by maintenance) per operation of `pattern` run on
/// `n` timers crowded into one coarse slot, with `next_deadline` asked after every operation
/// as an event loop does, and the invariants checked every 97 operations; amortized over the
/// inserts that filled the slot and the pattern's operations.
fn work_per_op(
    n: u64,
    pattern: fn(&mut TimerWheel<u64>, &mut Vec<TimerKey>, &mut Rng, u64),
) -> f64 {
    let mut wheel = TimerWheel::new();
    let mut rng = Rng(n);
    // Deadlines within [4096, 8192): one slot of level 2.
    let mut keys: Vec<TimerKey> = (0..n)
        .map(|i| wheel.insert_at(4096 + rng.below(4096), i))
        .collect();
    // The setup counts: the one split of the slot is paid for by the inserts that filled it.
    let ops = 20_000;
    for op in 0..ops {
        pattern(&mut wheel, &mut keys, &mut rng, op);
        std::hint::black_box(wheel.next_deadline());
        if op % 97 == 0 {
            wheel.check();
        }
    }
    wheel.work.get() as f64 / (n + ops) as f64
}

fn cancel_random(wheel: &mut TimerWheel<u64>, keys: &mut Vec<TimerKey>, rng: &mut Rng, op: u64) {
    let at = rng.below(keys.len() as u64) as usize;
    wheel.cancel(keys.swap_remove(at));
    keys.push(wheel.insert_at(4096 + rng.below(4096), op));
}

fn decreasing_then_cancel_earliest(
    wheel: &mut TimerWheel<u64>,
    keys: &mut Vec<TimerKey>,
    _: &mut Rng,
    op: u64,
) {
    let earliest = wheel.peek().map(|(key, _, _)| key).unwrap();
    wheel.cancel(earliest);
    keys.push(wheel.insert_at(8191 - op % 4096, op));
}

fn random_then_cancel_earliest(
    wheel: &mut TimerWheel<u64>,
    keys: &mut Vec<TimerKey>,
    rng: &mut Rng,
    op: u64,
) {
    keys.push(wheel.insert_at(4096 + rng.below(4096), op));
    let earliest = wheel.peek().map(|(key, _, _)| key).unwrap();
    wheel.cancel(earliest);
}

fn reschedule_earliest_later(
    wheel: &mut TimerWheel<u64>,
    _: &mut Vec<TimerKey>,
    rng: &mut Rng,
    _: u64,
) {
    let (earliest, deadline, _) = wheel.peek().unwrap();
    let later = (deadline + 1 + rng.below(64)).min(8191);
    assert!(wheel.reschedule(earliest, later));
}

#[test]
fn no_pattern_makes_work_grow_with_the_slot() {
    type Pattern = fn(&mut TimerWheel<u64>, &mut Vec<TimerKey>, &mut Rng, u64);
    let patterns: [(&str, Pattern); 4] = [
        ("cancel at random", cancel_random),
        (
            "insert decreasing, cancel the earliest",
            decreasing_then_cancel_earliest,
        ),
        (
            "insert at random, cancel the earliest",
            random_then_cancel_earliest,
        ),
        ("reschedule the earliest later", reschedule_earliest_later),
    ];
    for (name, pattern) in patterns {
        let small = work_per_op(16_384, pattern);
        let large = work_per_op(65_536, pattern);
        // A constant per operation: a few references or blocks, whatever the slot holds.
        assert!(
            small < 20.0 && large < 20.0,
            "{name}: {small:.2} and {large:.2} per operation"
        );
        assert!(
            large < small * 1.25 + 1.0,
            "{name}: grows from {small:.2} to {large:.2}"
        );
    }
}
