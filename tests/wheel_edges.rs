//! The edges where timing wheels usually break, one test each, through the public API only.

use tierwheel::{TimerKey, TimerWheel};

/// Values of everything due at `now`, in firing order.
fn fire<T>(wheel: &mut TimerWheel<T>, now: u64) -> Vec<T> {
    wheel.advance(now).map(|expired| expired.value).collect()
}

/// A timer waiting on a coarse level must not be overtaken by a later insert with the same
/// deadline that goes straight to a finer level, even when the poll that reached its slot
/// yielded nothing and so had no reason to look at it.
#[test]
fn fifo_across_a_cascade_when_a_poll_yields_nothing() {
    let mut wheel = TimerWheel::new();
    wheel.insert_at(100, 'a');
    assert!(wheel.poll(64).is_none());
    assert_eq!(wheel.now(), 64);
    wheel.insert_at(100, 'b');
    assert_eq!(wheel.next_deadline(), Some(100));
    assert!(wheel.poll(99).is_none());
    assert_eq!(fire(&mut wheel, 100), ['a', 'b']);

    // The same at every level: the early timer sits at level k, the poll reaches the start of
    // its slot (and of every finer slot on the way) without anything being due.
    for level in 1..=10u32 {
        let slot = 1u64 << (6 * level);
        for start in [0, 1, slot - 1] {
            let deadline = 2 * slot + 5;
            let mut wheel = TimerWheel::starting_at(start);
            wheel.insert_at(deadline, 'a');
            for now in [slot, 2 * slot, 2 * slot + 4] {
                assert!(
                    wheel.poll(now).is_none(),
                    "level {level}: fired early at {now}"
                );
                wheel.insert_at(deadline, 'b');
            }
            assert_eq!(wheel.next_deadline(), Some(deadline), "level {level}");
            assert_eq!(
                fire(&mut wheel, u64::MAX),
                ['a', 'b', 'b', 'b'],
                "level {level}, start {start}"
            );
            assert_eq!(wheel.now(), u64::MAX);
        }
    }
}

/// A timer inserted in the past is due now and queues behind the timers already due now, and
/// ahead of those inserted after it: one order, not a "late" list and an "on time" list.
#[test]
fn past_due_inserts_tie_with_timers_due_exactly_now() {
    let mut wheel = TimerWheel::new();
    wheel.insert_at(1000, "a");
    wheel.insert_at(1000, "b");
    assert_eq!(wheel.poll(5000).map(|e| e.value), Some("a"));
    assert_eq!(
        wheel.now(),
        1000,
        "a poll that fires moves time only to the deadline"
    );
    let late = wheel.insert_at(3, "late");
    wheel.insert_at(1000, "c");
    wheel.insert_after(0, "d");
    wheel.insert_at(0, "e");
    assert_eq!(
        wheel.deadline(late),
        Some(3),
        "deadline() reports what was asked for"
    );
    assert_eq!(wheel.next_deadline(), Some(1000));
    let fired: Vec<_> = wheel.advance(1000).map(|e| (e.value, e.deadline)).collect();
    assert_eq!(
        fired,
        [("b", 1000), ("late", 3), ("c", 1000), ("d", 1000), ("e", 0)]
    );

    // The same on a fresh wheel that starts late.
    let mut wheel = TimerWheel::starting_at(1 << 40);
    wheel.insert_at(1 << 40, 1);
    wheel.insert_at(7, 2);
    wheel.insert_at(1 << 40, 3);
    assert_eq!(wheel.next_deadline(), Some(1 << 40));
    assert_eq!(fire(&mut wheel, 0), [1, 2, 3], "time never runs backwards");
}

/// The top level spans 2^66 ticks, more than the tick range: any shift by `6 * level` of a
/// deadline near the end of time must neither overflow nor wrap to an early slot.
#[test]
fn the_top_level_spans_two_to_the_66() {
    let deadlines = [
        1 << 60,
        (1 << 60) + 1,
        (1 << 61) - 1,
        1 << 62,
        1 << 63,
        (1 << 63) + (1 << 60),
        u64::MAX - (1 << 60),
        u64::MAX - 64,
        u64::MAX - 1,
        u64::MAX,
    ];
    for start in [0, 1, (1 << 60) - 2] {
        let mut wheel = TimerWheel::starting_at(start);
        for (i, &deadline) in deadlines.iter().enumerate().rev() {
            wheel.insert_at(deadline, i);
        }
        for (i, &deadline) in deadlines.iter().enumerate() {
            assert_eq!(wheel.next_deadline(), Some(deadline), "start {start}");
            assert!(wheel.poll(deadline - 1).is_none(), "{deadline} fired early");
            assert_eq!(wheel.now(), deadline - 1);
            let expired = wheel.poll(deadline).expect("due");
            assert_eq!((expired.value, expired.deadline), (i, deadline));
            assert_eq!(wheel.now(), deadline);
        }
        assert!(wheel.is_empty());
    }
}

/// `next_deadline` names the exact tick, not the start of the coarse slot the timer sits in,
/// also after time has moved into that slot without firing it.
#[test]
fn next_deadline_is_exact_not_a_coarse_slot_start() {
    for level in 0..=10u32 {
        let slot = 1u64 << (6 * level);
        for start in [0, 3, slot - 1, slot + 1] {
            let deadlines = [slot + 37, 3 * slot - 1, 15 * slot + 17, u64::MAX - 3];
            for deadline in deadlines
                .into_iter()
                .filter(|&deadline| deadline > start + 1)
            {
                let mut wheel = TimerWheel::starting_at(start);
                let key = wheel.insert_at(deadline, ());
                assert_eq!(wheel.next_deadline(), Some(deadline));
                // Walk time towards it in big steps, then one below.
                for now in [
                    start + (deadline - start) / 2,
                    (deadline - deadline % slot).clamp(start, deadline - 1),
                    deadline - 1,
                ] {
                    assert!(
                        wheel.poll(now).is_none(),
                        "fired before {deadline} at {now}"
                    );
                    assert_eq!(wheel.next_deadline(), Some(deadline), "after poll({now})");
                    assert_eq!(wheel.deadline(key), Some(deadline));
                }
                assert_eq!(wheel.poll(deadline).map(|e| e.key), Some(key));
                assert_eq!(wheel.next_deadline(), None);
            }
        }
    }
}

/// Rescheduling counts as a new insertion, also when the deadline does not change.
#[test]
fn reschedule_to_the_same_deadline_moves_behind_peers() {
    let mut wheel = TimerWheel::new();
    let a = wheel.insert_at(50, 'a');
    wheel.insert_at(50, 'b');
    let c = wheel.insert_at(5000, 'c');
    wheel.insert_at(50, 'd');
    assert!(wheel.reschedule(a, 50));
    assert!(wheel.reschedule(c, 50));
    assert_eq!(wheel.deadline(a), Some(50));
    assert_eq!(fire(&mut wheel, 50), ['b', 'd', 'a', 'c']);
    assert!(!wheel.reschedule(a, 50), "fired: not pending");

    // Into the past: due now, behind everything already due now.
    let mut wheel = TimerWheel::starting_at(100);
    let a = wheel.insert_at(100, 'a');
    wheel.insert_at(100, 'b');
    assert!(wheel.reschedule(a, 0));
    assert_eq!(wheel.deadline(a), Some(0));
    let fired: Vec<_> = wheel.advance(100).map(|e| (e.value, e.deadline)).collect();
    assert_eq!(fired, [('b', 100), ('a', 0)]);
}

/// `u64::MAX` is a deadline like any other: it fires, in FIFO order, at `poll(u64::MAX)`, and
/// time can get there and stay there.
#[test]
fn timers_at_u64_max() {
    let mut wheel = TimerWheel::new();
    wheel.insert_at(u64::MAX, 0);
    wheel.insert_after(u64::MAX, 1); // saturates to the same deadline
    wheel.insert_at(u64::MAX - 1, 2);
    let k3 = wheel.insert_at(u64::MAX, 3);
    assert_eq!(wheel.deadline(k3), Some(u64::MAX));
    assert!(wheel.poll(u64::MAX - 2).is_none());
    assert_eq!(wheel.next_deadline(), Some(u64::MAX - 1));
    assert_eq!(fire(&mut wheel, u64::MAX - 1), [2]);
    assert_eq!(wheel.next_deadline(), Some(u64::MAX));
    assert_eq!(fire(&mut wheel, u64::MAX), [0, 1, 3]);
    assert_eq!(wheel.now(), u64::MAX);

    // At the end of time every insert is due at once, and the wheel still works.
    let a = wheel.insert_after(5, 10);
    wheel.insert_at(3, 11);
    wheel.insert_at(u64::MAX, 12);
    assert_eq!(wheel.next_deadline(), Some(u64::MAX));
    assert_eq!(wheel.cancel(a), Some(10));
    assert_eq!(fire(&mut wheel, 0), [11, 12]);
    assert!(wheel.is_empty());
    assert_eq!(wheel.now(), u64::MAX);
}

/// A wheel that starts a few ticks before the end of time: every tick up to `u64::MAX`
/// still fires exactly, in order, and nothing wraps to tick 0.
#[test]
fn starting_at_the_end_of_time() {
    for k in (0..=70).chain([4095, 4096, 1 << 20, 1 << 40]) {
        let start = u64::MAX - k;
        let mut wheel = TimerWheel::starting_at(start);
        assert_eq!(wheel.now(), start);
        // (asked-for deadline, effective deadline) by insertion order; the value is the index.
        let mut inserted = Vec::new();
        let mut insert_at = |wheel: &mut TimerWheel<usize>, deadline: u64| {
            wheel.insert_at(deadline, inserted.len());
            inserted.push((deadline, deadline.max(start)));
        };
        for j in (0..=k.min(70)).rev() {
            insert_at(&mut wheel, start + j);
            insert_at(&mut wheel, u64::MAX - j);
        }
        insert_at(&mut wheel, 0);
        insert_at(&mut wheel, start - 1);
        wheel.insert_after(u64::MAX, inserted.len());
        inserted.push((u64::MAX, u64::MAX));
        wheel.insert_after(k, inserted.len());
        inserted.push((u64::MAX, u64::MAX));
        let mut expected: Vec<usize> = (0..inserted.len()).collect();
        expected.sort_by_key(|&i| (inserted[i].1, i));

        let mut fired = Vec::new();
        let mut now = start;
        loop {
            for expired in wheel.advance(now) {
                assert_eq!(expired.deadline, inserted[expired.value].0);
                assert_eq!(
                    inserted[expired.value].1, now,
                    "k {k}: fired at the wrong tick"
                );
                fired.push(expired.value);
            }
            assert_eq!(wheel.now(), now);
            if now == u64::MAX {
                break;
            }
            // Tick by tick near the end, then jump straight to the next deadline.
            now = if k <= 70 {
                now + 1
            } else {
                wheel.next_deadline().unwrap_or(u64::MAX)
            };
        }
        assert!(wheel.is_empty());
        assert_eq!(fired, expected, "k {k}");
    }
}

/// A key whose timer fired or was cancelled stays stale after its storage is reused.
#[test]
fn stale_keys_do_nothing_after_reuse() {
    let mut wheel = TimerWheel::new();
    let fired = wheel.insert_at(1, "fired");
    let cancelled = wheel.insert_at(2, "cancelled");
    assert_eq!(wheel.cancel(cancelled), Some("cancelled"));
    assert_eq!(fire(&mut wheel, 1), ["fired"]);
    let fresh: Vec<TimerKey> = (0..4).map(|i| wheel.insert_at(10 + i, "fresh")).collect();
    for stale in [fired, cancelled] {
        assert!(!fresh.contains(&stale));
        assert_eq!(wheel.cancel(stale), None);
        assert!(!wheel.reschedule(stale, 0));
        assert_eq!(wheel.deadline(stale), None);
    }
    assert_eq!(wheel.len(), 4);
    assert_eq!(wheel.next_deadline(), Some(10));
}

/// Dropping a `Drain` part way leaves `now()` where its last poll left it and the rest pending.
#[test]
fn a_drain_dropped_part_way_loses_nothing() {
    let mut wheel = TimerWheel::new();
    for (i, deadline) in [5, 5, 9, 12, 40].into_iter().enumerate() {
        wheel.insert_at(deadline, i);
    }
    let first: Vec<_> = wheel.advance(30).take(3).map(|e| e.value).collect();
    assert_eq!(first, [0, 1, 2]);
    assert_eq!(wheel.now(), 9);
    assert_eq!(wheel.len(), 2);
    assert_eq!(wheel.next_deadline(), Some(12));
    {
        let _never_polled = wheel.advance(30);
    }
    assert_eq!(
        wheel.now(),
        9,
        "a Drain that was never polled moves nothing"
    );
    assert_eq!(fire(&mut wheel, 30), [3]);
    assert_eq!(wheel.now(), 30);
    assert_eq!(fire(&mut wheel, 40), [4]);
}

/// splitmix64: a small deterministic generator, so the test needs no dependency.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A million timers over the whole `u64` range, at every scale (a random number shifted right
/// by a random amount, so each bit length is as likely as any other), plus ties: all fire, each
/// once, never early, in (deadline, insertion) order, while time moves in jumps of every size.
#[test]
fn a_million_timers_over_the_whole_range_all_fire_in_order() {
    const N: usize = 1_000_000;
    let mut rng = 0x5eed;
    let mut wheel = TimerWheel::new();
    let mut deadlines = Vec::with_capacity(N);
    for i in 0..N {
        let r = splitmix(&mut rng);
        let deadline = match i % 8 {
            0 => deadlines.get(i / 2).copied().unwrap_or(0), // a tie with an earlier timer
            1 => u64::MAX - (r & 0xff),
            _ => r >> (splitmix(&mut rng) % 64),
        };
        wheel.insert_at(deadline, i);
        deadlines.push(deadline);
    }
    let mut expected: Vec<usize> = (0..N).collect();
    expected.sort_by_key(|&i| (deadlines[i], i)); // stable: insertion order breaks ties

    let mut checkpoints: Vec<u64> = (0..2000)
        .map(|_| splitmix(&mut rng) >> (splitmix(&mut rng) % 64))
        .collect();
    checkpoints.push(u64::MAX);
    checkpoints.sort_unstable();
    let mut fired = Vec::with_capacity(N);
    for now in checkpoints {
        for expired in wheel.advance(now) {
            assert!(expired.deadline <= now, "fired early");
            assert_eq!(expired.deadline, deadlines[expired.value]);
            fired.push(expired.value);
        }
        assert_eq!(wheel.now(), now);
        assert!(wheel.next_deadline().is_none_or(|next| next > now));
    }
    assert!(wheel.is_empty());
    assert_eq!(fired.len(), N);
    assert!(fired == expected, "timers fired out of order");
}

/// Cancelled timers leave tombstones in their slot that are swept when the slot list would
/// grow; the sweep must keep the survivors in insertion order and `next_deadline` exact.
#[test]
fn cancelling_most_of_a_crowded_slot_keeps_order_and_next_deadline() {
    for deadline in [40, 5000, 1 << 40] {
        let mut wheel = TimerWheel::new();
        let keys: Vec<TimerKey> = (0..256)
            .map(|i| wheel.insert_at(deadline + i % 2, i))
            .collect();
        // Cancel three in four, earliest first, so the slot's earliest timer keeps dying.
        for (i, &key) in keys.iter().enumerate() {
            if i % 4 != 3 {
                assert_eq!(wheel.cancel(key), Some(i as u64));
            }
        }
        // Only odd i survive, all due at deadline + 1.
        assert_eq!(
            wheel.next_deadline(),
            Some(deadline + 1),
            "deadline {deadline}"
        );
        // Pushes after the cancels, into the same slot, run the sweep.
        for i in 256..400u64 {
            wheel.insert_at(deadline + i % 2, i);
        }
        assert_eq!(wheel.next_deadline(), Some(deadline), "deadline {deadline}");
        let fired: Vec<u64> = fire(&mut wheel, deadline + 1);
        let mut expected: Vec<u64> = (0..256).filter(|i| i % 4 == 3).chain(256..400).collect();
        expected.sort_by_key(|&i| (i % 2, i)); // deadline first (even i is on `deadline`), then FIFO
        assert_eq!(fired, expected, "deadline {deadline}");
    }
}

/// When the earliest timer of a coarse slot is cancelled or rescheduled later, the next one
/// in that slot (exactly) becomes `next_deadline`.
#[test]
fn next_deadline_after_the_earliest_of_a_coarse_slot_leaves() {
    let mut wheel = TimerWheel::new();
    let first = wheel.insert_at(4100, 'a');
    let second = wheel.insert_at(4103, 'b');
    wheel.insert_at(4107, 'c');
    assert_eq!(wheel.next_deadline(), Some(4100));
    assert!(wheel.reschedule(first, 4105));
    assert_eq!(wheel.next_deadline(), Some(4103));
    assert_eq!(wheel.cancel(second), Some('b'));
    assert_eq!(wheel.next_deadline(), Some(4105));
    assert!(wheel.poll(4104).is_none());
    assert_eq!(wheel.next_deadline(), Some(4105));
    assert_eq!(fire(&mut wheel, 5000), ['a', 'c']);
}
