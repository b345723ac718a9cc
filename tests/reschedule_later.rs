//! A reschedule to a later deadline leaves the timer in its slot and only rewrites its
//! deadline; the timer must still fire at exactly its last deadline, never earlier and never
//! later, in (deadline, last reschedule) order. Through the public API only: many timers moved
//! later many times, then time advanced one tick at a time.

use std::collections::BTreeMap;

use tierwheel::{TimerKey, TimerWheel};

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// Ticks from the start within which every deadline lies, so that time can walk all of them
/// tick by tick: levels 0 to 3.
const HORIZON: u64 = 1 << 19;

/// The timers pending, by firing order, and each timer's place in it.
struct Expected {
    order: BTreeMap<(u64, u64), usize>,
    /// Per timer (its value is its index): key, and `(deadline, stamp)` while pending.
    timers: Vec<(TimerKey, Option<(u64, u64)>)>,
    stamp: u64,
}

impl Expected {
    /// Records that timer `id` was inserted or rescheduled to `deadline` just now: behind every
    /// timer already due then.
    fn file(&mut self, id: usize, deadline: u64) {
        if let Some(old) = self.timers[id].1 {
            self.order.remove(&old);
        }
        let at = (deadline, self.stamp);
        self.stamp += 1;
        self.order.insert(at, id);
        self.timers[id].1 = Some(at);
    }

    fn deadline(&self, id: usize) -> Option<u64> {
        self.timers[id].1.map(|(deadline, _)| deadline)
    }
}

/// A deadline later than `current` (or the same, at the end of the horizon), by one of the
/// amounts that matter to a wheel: a little, to the last tick of its slot of some level, just
/// past that slot, a few slots of some level on, or onto another timer's deadline (a tie).
fn later(rng: &mut Rng, current: u64, end: u64, expected: &Expected) -> u64 {
    let span = 1u64 << (6 * (1 + rng.below(3)));
    let last_of_slot = current | (span - 1);
    let deadline = match rng.below(6) {
        0 => current.saturating_add(rng.below(8)),
        1 => last_of_slot,
        2 => last_of_slot.saturating_add(1),
        3 => current.saturating_add(span * (1 + rng.below(3))),
        4 => {
            let other = rng.below(expected.timers.len() as u64) as usize;
            expected.deadline(other).unwrap_or(current).max(current)
        }
        _ => current.saturating_add(rng.below(span)),
    };
    if deadline > end {
        current
    } else {
        deadline
    }
}

/// Advances `wheel` one tick at a time from `now()` to `to`, checking at each tick that exactly
/// the timers whose last deadline is that tick fire, in order, and that `next_deadline()` is
/// the first of those left.
fn walk(wheel: &mut TimerWheel<usize>, expected: &mut Expected, to: u64) {
    while wheel.now() < to {
        let tick = wheel.now() + 1;
        let fired: Vec<(usize, u64)> = wheel.advance(tick).map(|e| (e.value, e.deadline)).collect();
        let mut due = Vec::new();
        while let Some(entry) = expected.order.first_entry() {
            let (deadline, _) = *entry.key();
            assert!(
                deadline >= tick,
                "timer {} due at {deadline} did not fire by {tick}",
                entry.get()
            );
            if deadline > tick {
                break;
            }
            let id = entry.remove();
            expected.timers[id].1 = None;
            due.push((id, deadline));
        }
        assert_eq!(fired, due, "fired at tick {tick}");
        assert_eq!(wheel.now(), tick);
        assert_eq!(
            wheel.next_deadline(),
            expected.order.keys().next().map(|&(deadline, _)| deadline),
            "next_deadline() after tick {tick}"
        );
    }
}

fn later_reschedules_fire_on_time(start: u64, seed: u64) {
    const TIMERS: usize = 2_000;
    let end = start.saturating_add(HORIZON);
    let mut rng = Rng(seed);
    let mut wheel = TimerWheel::starting_at(start);
    let mut expected = Expected {
        order: BTreeMap::new(),
        timers: Vec::with_capacity(TIMERS),
        stamp: 0,
    };
    for id in 0..TIMERS {
        // Mostly on levels 1 and 2, so that later moves stay in coarse slots.
        let deadline = start + 1 + rng.below(HORIZON / 8);
        let key = wheel.insert_at(deadline, id);
        expected.timers.push((key, None));
        expected.file(id, deadline);
    }
    // Rounds of later reschedules, each followed by a stretch of ticks, so that timers are also
    // moved after time has reached, split or passed parts of the slots they were filed in.
    for _ in 0..8 {
        for _ in 0..3 * TIMERS {
            let id = rng.below(TIMERS as u64) as usize;
            let Some(current) = expected.deadline(id) else {
                assert!(
                    !wheel.reschedule(expected.timers[id].0, end),
                    "fired timer {id}"
                );
                continue;
            };
            let deadline = later(&mut rng, current, end, &expected);
            assert!(wheel.reschedule(expected.timers[id].0, deadline));
            expected.file(id, deadline);
            assert_eq!(wheel.deadline(expected.timers[id].0), Some(deadline));
        }
        let to = wheel.now() + HORIZON / 32;
        walk(&mut wheel, &mut expected, to);
    }
    walk(&mut wheel, &mut expected, end);
    assert!(expected.order.is_empty() && wheel.is_empty());
}

#[test]
fn later_reschedules_fire_exactly_at_their_last_deadline() {
    later_reschedules_fire_on_time(0, 1);
}

/// The same where the timers' slots straddle a level-5 boundary (2^30), whose slots and blocks
/// all change at once.
#[test]
fn later_reschedules_fire_on_time_across_a_level_boundary() {
    later_reschedules_fire_on_time((1 << 30) - HORIZON / 16, 2);
}

/// The same in the last ticks of time, where moves past the end stay at `u64::MAX`.
#[test]
fn later_reschedules_fire_on_time_at_the_end_of_time() {
    later_reschedules_fire_on_time(u64::MAX - HORIZON, 3);
}
