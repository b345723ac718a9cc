//! Unit tests of the wheel's internals: locations, tombstones, compaction, capacity. The public
//! behaviour is tested against a reference model in `tests/`.

use std::collections::BTreeMap;

use super::*;

/// A plain model: pending timers ordered by (effective deadline, insertion sequence).
#[derive(Default)]
struct Model {
    now: u64,
    seq: u64,
    order: BTreeMap<(u64, u64), (TimerKey, u64, u32)>,
    by_key: std::collections::HashMap<TimerKey, (u64, u64)>,
}

impl Model {
    fn insert(&mut self, key: TimerKey, deadline: u64, value: u32) {
        let slot = (deadline.max(self.now), self.seq);
        self.seq += 1;
        self.order.insert(slot, (key, deadline, value));
        self.by_key.insert(key, slot);
    }
    fn cancel(&mut self, key: TimerKey) -> Option<u32> {
        let slot = self.by_key.remove(&key)?;
        self.order.remove(&slot).map(|(_, _, value)| value)
    }
    fn poll(&mut self, now: u64) -> Option<(TimerKey, u64, u32)> {
        let target = now.max(self.now);
        match self.order.first_key_value() {
            Some((&(effective, _), _)) if effective <= target => {
                let (slot, fired) = self.order.pop_first().unwrap();
                self.by_key.remove(&fired.0);
                self.now = self.now.max(slot.0);
                Some(fired)
            }
            _ => {
                self.now = target;
                None
            }
        }
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

/// Runs a random op stream against the model and checks every answer.
fn differential(seed: u64, start: u64, steps: usize, wheel: &mut TimerWheel<u32>) {
    differential_with(seed, start, steps, wheel, deadline);
}

/// `differential` with deadlines (and some poll targets) drawn from `deadline`. Returns the
/// number of steps after which a run was active.
fn differential_with(
    seed: u64,
    start: u64,
    steps: usize,
    wheel: &mut TimerWheel<u32>,
    deadline: fn(&mut Rng, u64) -> u64,
) -> usize {
    let mut run_steps = 0;
    let mut rng = Rng(seed);
    let mut model = Model {
        now: start,
        ..Model::default()
    };
    let mut keys: Vec<TimerKey> = Vec::new();
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(10) {
            0..=3 => {
                let d = deadline(&mut rng, wheel.now());
                let value = step as u32;
                let key = wheel.insert_at(d, value);
                model.insert(key, d, value);
                keys.push(key);
            }
            4 | 5 if !keys.is_empty() => {
                let key = keys[rng.below(keys.len() as u64) as usize];
                assert_eq!(wheel.cancel(key), model.cancel(key), "{ctx}");
            }
            6 if !keys.is_empty() => {
                let key = keys[rng.below(keys.len() as u64) as usize];
                let d = deadline(&mut rng, wheel.now());
                let pending = model.cancel(key);
                assert_eq!(wheel.deadline(key).is_some(), pending.is_some(), "{ctx}");
                assert_eq!(wheel.reschedule(key, d), pending.is_some(), "{ctx}");
                if let Some(value) = pending {
                    model.insert(key, d, value);
                }
            }
            _ => {
                let to = match rng.below(4) {
                    0 => wheel.now().saturating_add(rng.below(70)),
                    1 => wheel.now().saturating_add(rng.below(1 << 20)),
                    2 => deadline(&mut rng, wheel.now()),
                    _ => wheel.next_deadline().unwrap_or(u64::MAX),
                };
                let limit = rng.below(6);
                let mut drain = wheel.advance(to);
                for _ in 0..limit {
                    let got = drain.next().map(|e| (e.key, e.deadline, e.value));
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
        wheel.check_locations();
        run_steps += usize::from(wheel.run.live > 0);
    }
    run_steps
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
        differential(seed, 0, 400, &mut TimerWheel::new());
    }
}

#[test]
fn matches_the_model_near_the_end_of_time() {
    for seed in seeds(100) {
        let start = u64::MAX - (1 << (seed % 40));
        differential(seed, start, 300, &mut TimerWheel::starting_at(start));
    }
}

#[test]
fn matches_the_model_through_runs() {
    let mut run_steps = 0;
    for seed in seeds(300) {
        run_steps += differential_with(seed, 0, 400, &mut TimerWheel::new(), crowded_deadline);
        let mut later = TimerWheel::starting_at(1 << 40);
        run_steps += differential_with(seed, 1 << 40, 400, &mut later, crowded_deadline);
    }
    // The stream must exercise what it is for: operations while a run is active.
    assert!(
        run_steps > 10_000,
        "runs were active after only {run_steps} steps"
    );
}

/// `poll`'s fast path pops the run while its next timer is below `run_gate`: at a level-0 tick
/// the wheel holds, the run goes first only on a tie; at the start of a coarse slot placed
/// during the run, the slot cascades first, so that timers placed later queue behind it.
#[test]
fn the_run_gives_way_to_wheel_timers_placed_while_it_lasts() {
    // A run over the level-1 slot 64..=127; `w` joins level 0 at tick 100 while it lasts.
    let mut wheel = TimerWheel::new();
    for (deadline, value) in [(90, "r0"), (100, "r1"), (101, "r2")] {
        wheel.insert_at(deadline, value);
    }
    assert_eq!(wheel.advance(200).next().map(|e| e.value), Some("r0"));
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
    // Placed after `w`, with the same deadline: fires after it.
    wheel.insert_at(4224, "x");
    wheel.check_locations();
    let order: Vec<_> = wheel.advance(10_000).map(|e| e.value).collect();
    assert_eq!(order, ["w", "x"]);
}

#[test]
fn a_reused_storage_entry_does_not_revive_its_tombstone() {
    let mut wheel = TimerWheel::new();
    let e = wheel.insert_at(300_100, 'e'); // storage entry 0
    wheel.insert_at(300_000, 'f'); // same slot, earlier deadline: not in deadline order
    wheel.cancel(e); // a tombstone of entry 0 stays at the front of the slot
    wheel.insert_at(300_050, 'g'); // entry 0 again, same slot, behind `f`
    wheel.check_locations();
    let order: String = wheel.advance(400_000).map(|e| e.value).collect();
    assert_eq!(order, "fg");
    assert!(wheel.is_empty());
}

#[test]
fn tombstones_never_outnumber_live_timers_for_long() {
    let mut wheel = TimerWheel::new();
    let stays = wheel.insert_at(5000, 0u32);
    // Touch one timer again and again in the slot that also holds `stays`.
    let mut key = wheel.insert_at(5000, 1);
    for i in 2..100_000 {
        assert!(wheel.reschedule(key, 5000));
        wheel.cancel(key);
        key = wheel.insert_at(5000, i);
    }
    let level = level_of(0, 5000);
    let slot = &wheel.slots[level * SLOTS + slot_of(5000, level)];
    assert_eq!(slot.live, 2);
    assert!(
        slot.len() <= 2 * slot::CHUNK,
        "tombstones piled up: {}",
        slot.len()
    );
    let fired: Vec<_> = wheel.advance(5000).map(|e| e.key).collect();
    assert_eq!(fired, [stays, key]);
}

#[test]
fn cancelling_the_last_timer_of_a_slot_clears_it() {
    let mut wheel = TimerWheel::new();
    let keys: Vec<_> = (0..10).map(|i| wheel.insert_at(1 << 30, i)).collect();
    for key in keys {
        wheel.cancel(key);
    }
    assert!(wheel.occupied.iter().all(|&bits| bits == 0));
    assert!(wheel.slots.iter().all(|slot| slot.len() == 0));
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
fn next_deadline_is_exact_after_the_earliest_of_a_coarse_slot_is_cancelled() {
    let mut wheel = TimerWheel::new();
    let first = wheel.insert_at(70_001, ());
    wheel.insert_at(70_500, ());
    wheel.insert_at(70_200, ());
    assert_eq!(wheel.next_deadline(), Some(70_001));
    wheel.cancel(first);
    assert_eq!(wheel.next_deadline(), Some(70_200));
}

#[test]
fn bookkeeping_per_timer() {
    // A storage entry (generation, location, deadline, value) and one slot reference (the
    // storage index): 20 bytes beyond the payload, for payloads of 8 bytes or less.
    let storage = crate::slab::entry_bytes::<Timer<u64>>();
    let per_timer = storage + std::mem::size_of::<SlotEntry>();
    assert_eq!(storage, 24);
    assert_eq!(per_timer - std::mem::size_of::<u64>(), 20);
    assert_eq!(std::mem::size_of::<crate::slab::TimerKey>(), 8);
}

/// Whether the first occupied coarse slot (when level 0 is empty) caches a live earliest
/// reference, so `next_deadline` answers without walking it.
fn front_cache_is_live<T>(wheel: &TimerWheel<T>) -> bool {
    if wheel.occupied[0] != 0 {
        return true;
    }
    let Some((level, slot_index)) = wheel.first_coarse_slot() else {
        return true;
    };
    let slot = &wheel.slots[level * SLOTS + slot_index];
    !slot.stale && slot.holds_earliest(&wheel.pool)
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
        assert!(front_cache_is_live(&wheel), "after cancel {i}");
        assert_eq!(wheel.next_deadline(), Some(100_001 + i as u64));
    }
    let level = level_of(0, 104_999);
    let slot = &wheel.slots[level * SLOTS + slot_of(104_999, level)];
    assert!(
        slot.len() <= 2 * slot::CHUNK,
        "tombstones kept at the head: {}",
        slot.len()
    );
}

#[test]
fn the_front_slot_cache_stays_live_under_random_cancels_and_polls() {
    let mut rng = Rng(11);
    let mut wheel = TimerWheel::new();
    let mut keys: Vec<_> = (0..3_000u32)
        .map(|i| wheel.insert_at(5_000 + rng.below(20_000), i))
        .collect();
    while !keys.is_empty() {
        let at = rng.below(keys.len() as u64) as usize;
        wheel.cancel(keys.swap_remove(at));
        if rng.below(50) == 0 {
            let to = wheel.now() + rng.below(3_000);
            for expired in wheel.advance(to) {
                keys.retain(|&key| key != expired.key);
            }
        }
        assert!(front_cache_is_live(&wheel), "{} timers left", keys.len());
    }
}

#[test]
fn a_stale_slot_that_becomes_the_first_as_a_run_starts_is_refreshed() {
    // A cancel leaves a coarse slot stale while another slot is the first. Then a poll passes
    // that first slot whole, makes it the run and fires from the run at once: the stale slot is
    // now the first, and `next_deadline` must find an exact cache there, not walk the slot on
    // every call (it did, until the eighth session).
    let mut wheel = TimerWheel::new();
    wheel.insert_at(100, 0u64);
    wheel.insert_at(101, 1);
    let keys: Vec<_> = (0..1_000u64)
        .map(|i| wheel.insert_at(8_192 + i, i))
        .collect();
    wheel.cancel(keys[0]);
    // One timer of the advance only: the rest stays pending.
    assert_eq!(wheel.advance(200).next().map(|e| e.deadline), Some(100));
    assert!(front_cache_is_live(&wheel), "after the run's first timer");
    let rest: Vec<_> = wheel.advance(200).map(|e| e.deadline).collect();
    assert_eq!(rest, [101]);
    assert!(front_cache_is_live(&wheel), "after the run");
    assert_eq!(wheel.next_deadline(), Some(8_193));
}

#[test]
fn large_wheels_prefetch_and_still_match_the_model() {
    // Storage past `PREFETCH_ABOVE_BYTES`, then the `timeouts` pattern: random cancels and
    // inserts leave tombstones, cascades prefetch each timer's storage a chunk ahead, and the
    // final `advance` fills runs the same way (firing from a run prefetches at every size).
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
    for step in 0..400_000_u32 {
        let at = rng.below(n as u64) as usize;
        assert_eq!(
            wheel.cancel(keys[at]),
            model.cancel(keys[at]),
            "step {step}"
        );
        let deadline = wheel.now() + 30_000 + rng.below(7_500);
        keys[at] = wheel.insert_at(deadline, step);
        model.insert(keys[at], deadline, step);
        if step % 16 == 15 {
            let to = wheel.now() + 1;
            fired += poll_like_the_model(&mut wheel, &mut model, to, step);
        }
    }
    assert!(fired > 0, "nothing fired: the test does not reach level 0");
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
        assert_eq!((expired.key, expired.deadline, expired.value), expected);
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
fn sweeps_and_cascades_keep_every_location() {
    // Thousands of timers in a few coarse slots, touched at random: sweeps move the live
    // references, cascades move them again, and every later cancel must find its reference.
    let mut rng = Rng(5);
    let mut wheel = TimerWheel::new();
    let mut model = Model::default();
    let mut keys = Vec::new();
    let deadline = |rng: &mut Rng, now: u64| now + 100_000 + rng.below(5_000);
    for value in 0..3_000u32 {
        let d = deadline(&mut rng, 0);
        let key = wheel.insert_at(d, value);
        model.insert(key, d, value);
        keys.push(key);
    }
    let mut fired = 0;
    for step in 0..60_000u32 {
        let at = rng.below(keys.len() as u64) as usize;
        assert_eq!(
            wheel.cancel(keys[at]),
            model.cancel(keys[at]),
            "step {step}"
        );
        let d = deadline(&mut rng, wheel.now());
        keys[at] = wheel.insert_at(d, step);
        model.insert(keys[at], d, step);
        if step % 8 == 0 {
            let to = wheel.now() + 1 + rng.below(512);
            fired += poll_like_the_model(&mut wheel, &mut model, to, step);
        }
        if step % 1_000 == 0 {
            wheel.check_locations();
        }
    }
    wheel.check_locations();
    assert!(
        fired > 1_000,
        "only {fired} fired: cascades into level 0 are not exercised"
    );
    fire_the_rest_like_the_model(&mut wheel, &mut model);
}
