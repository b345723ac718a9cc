//! Every `TimerQueue` implementation, run side by side on the same random operation streams,
//! must produce the same event sequence: same values fired at the same `now()`, same return
//! values, `len()` and `next_deadline()` after every step. FIFO ties everywhere.

use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap, SplitMix64, TimerQueue};
use tierwheel::TimerWheel;

#[derive(Clone, Copy, Debug)]
enum Op {
    Insert {
        deadline: u64,
    },
    /// Cancel the timer made by the `n`-th insert (maybe fired or cancelled already).
    Cancel {
        n: usize,
    },
    Reschedule {
        n: usize,
        deadline: u64,
    },
    Poll {
        now: u64,
    },
    /// Poll until nothing more is due at `now`.
    Advance {
        now: u64,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Inserted,
    Cancelled(Option<u64>),
    Rescheduled(bool),
    Fired(Option<u64>, u64),
}

/// A deadline near `cursor` at one of many scales, including ties, the past and the far end.
fn deadline(rng: &mut SplitMix64, cursor: u64) -> u64 {
    match rng.below(10) {
        0 => cursor.saturating_sub(rng.below(100)),
        1 => cursor,
        2..=4 => cursor.saturating_add(rng.below(8)),
        5 | 6 => cursor.saturating_add(rng.below(5_000)),
        7 => cursor.saturating_add(rng.below(1 << 40)),
        8 => u64::MAX - rng.below(3),
        _ => rng.next_u64(),
    }
}

fn ops(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = SplitMix64::new(seed);
    let mut cursor = 0u64;
    let mut inserts = 0usize;
    let mut ops = Vec::with_capacity(len);
    for _ in 0..len {
        let op = match rng.below(20) {
            0..=7 => {
                inserts += 1;
                Op::Insert {
                    deadline: deadline(&mut rng, cursor),
                }
            }
            8..=10 if inserts > 0 => Op::Cancel {
                n: rng.below(inserts as u64) as usize,
            },
            11..=13 if inserts > 0 => Op::Reschedule {
                n: rng.below(inserts as u64) as usize,
                deadline: deadline(&mut rng, cursor),
            },
            14..=17 => {
                cursor = cursor.saturating_add(rng.below(64));
                Op::Poll { now: cursor }
            }
            _ => {
                cursor = match rng.below(8) {
                    0 => cursor.saturating_add(rng.below(1 << 42)),
                    1 => u64::MAX,
                    // Time never runs backwards: the queue must treat this as now().
                    2 => cursor.saturating_sub(50),
                    _ => cursor.saturating_add(rng.below(3_000)),
                };
                Op::Advance { now: cursor }
            }
        };
        ops.push(op);
    }
    ops
}

/// Runs `ops` and records, per step, what happened and the state after it.
fn trace<Q: TimerQueue<u64>>(mut queue: Q, ops: &[Op]) -> Vec<(Event, u64, usize, Option<u64>)> {
    let mut keys: Vec<Q::Key> = Vec::new();
    let mut trace = Vec::with_capacity(ops.len());
    for &op in ops {
        let mut record = |event: Event, queue: &Q| {
            trace.push((event, queue.now(), queue.len(), queue.next_deadline()));
        };
        match op {
            Op::Insert { deadline } => {
                let id = keys.len() as u64;
                keys.push(queue.insert_at(deadline, id));
                record(Event::Inserted, &queue);
            }
            Op::Cancel { n } => {
                let value = queue.cancel(keys[n]);
                record(Event::Cancelled(value), &queue);
            }
            Op::Reschedule { n, deadline } => {
                let moved = queue.reschedule(keys[n], deadline);
                if let Some(key) = moved {
                    keys[n] = key;
                }
                record(Event::Rescheduled(moved.is_some()), &queue);
            }
            Op::Poll { now } => {
                let fired = queue.poll(now);
                record(Event::Fired(fired, now), &queue);
            }
            Op::Advance { now } => loop {
                let fired = queue.poll(now);
                record(Event::Fired(fired, now), &queue);
                if fired.is_none() {
                    break;
                }
            },
        }
    }
    trace
}

type Trace = Vec<(Event, u64, usize, Option<u64>)>;

/// Runs `ops` on every queue and panics at the first step where a baseline differs from the
/// wheel; returns the wheel's trace.
fn compare(stream: &str, ops: &[Op]) -> Trace {
    let wheel = trace(TimerWheel::new(), ops);
    let lazy = trace(LazyBinaryHeap::new(), ops);
    let indexed = trace(IndexedHeap::new(), ops);
    let btree = trace(BTreeQueue::new(), ops);
    for (name, other) in [("lazy", &lazy), ("indexed", &indexed), ("btree", &btree)] {
        if let Some(step) = (0..wheel.len()).find(|&i| wheel[i] != other[i]) {
            panic!(
                "{stream}: {name} differs from the wheel at step {step} ({:?}):\n  wheel {:?}\n  {name} {:?}",
                ops[step], wheel[step], other[step]
            );
        }
    }
    wheel
}

/// Timers fired in a trace.
fn fired(trace: &Trace) -> usize {
    trace
        .iter()
        .filter(|(event, ..)| matches!(event, Event::Fired(Some(_), _)))
        .count()
}

fn check(seed: u64, len: usize) {
    let wheel = compare(&format!("seed {seed}"), &ops(seed, len));
    assert!(
        len < 100 || fired(&wheel) > 0,
        "seed {seed}: nothing fired, the stream tests little"
    );
}

#[test]
fn every_queue_gives_the_same_event_sequence() {
    for seed in 0..300 {
        check(seed, 600);
    }
}

#[test]
fn long_streams_with_many_pending_timers() {
    // Long enough for the lazy heap to rebuild (over 100 entries, mostly garbage).
    for seed in 1000..1010 {
        check(seed, 20_000);
    }
}

#[test]
fn ties_fire_first_in_first_out_everywhere() {
    fn ties<Q: TimerQueue<u64>>(mut queue: Q) -> Vec<u64> {
        let keys: Vec<_> = (0..50).map(|i| queue.insert_at(7, i)).collect();
        for key in keys.iter().step_by(3) {
            queue.cancel(*key);
        }
        // Rescheduling to the same deadline moves a timer behind its peers.
        queue.reschedule(keys[1], 7);
        std::iter::from_fn(|| queue.poll(7)).collect()
    }
    let expected: Vec<u64> = (0..50)
        .filter(|i| i % 3 != 0 && *i != 1)
        .chain([1])
        .collect();
    assert_eq!(ties(TimerWheel::new()), expected);
    assert_eq!(ties(LazyBinaryHeap::new()), expected);
    assert_eq!(ties(IndexedHeap::new()), expected);
    assert_eq!(ties(BTreeQueue::new()), expected);
}

#[test]
fn mass_cancellation_and_rebuild_keep_the_sequence() {
    // Cancelling most of a large heap makes the lazy heap rebuild; the survivors must still
    // fire in (deadline, insertion) order, like everywhere else.
    fn survivors<Q: TimerQueue<u64>>(mut queue: Q) -> Vec<u64> {
        let mut rng = SplitMix64::new(99);
        let keys: Vec<_> = (0..2_000)
            .map(|i| queue.insert_at(rng.below(300), i))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            if i % 5 != 0 {
                assert_eq!(queue.cancel(*key), Some(i as u64));
            }
        }
        assert_eq!(queue.len(), 400);
        std::iter::from_fn(|| queue.poll(300)).collect()
    }
    let expected = survivors(TimerWheel::new());
    assert_eq!(expected.len(), 400);
    assert_eq!(survivors(LazyBinaryHeap::new()), expected);
    assert_eq!(survivors(IndexedHeap::new()), expected);
    assert_eq!(survivors(BTreeQueue::new()), expected);
}

/// A stream that keeps moving timers later at one level, from `start`: timers crowd the next
/// few slots of `level` (64^level ticks each), and are rescheduled later again and again, by
/// amounts that keep them in their slot, move them to a later slot or level, or to the end of
/// time. The wheel leaves such a timer where it is and files it again by its true deadline when
/// time reaches its slot (or when the slot, as the first occupied one, must be split), so time
/// moves by fractions of a slot and onto slot boundaries. Cancels, reschedules earlier and
/// polls are interleaved.
fn lazy_ops(seed: u64, level: u32, start: u64, len: usize) -> Vec<Op> {
    let mut rng = SplitMix64::new(seed);
    let span = 1u64 << (6 * level);
    let mut cursor = start;
    // The deadline each insert's timer was last given (it may have fired or been cancelled).
    let mut deadlines: Vec<u64> = Vec::new();
    let mut ops = vec![Op::Advance { now: start }];
    // A timer to move: mostly a recent one, which is more likely still pending.
    let pick = |rng: &mut SplitMix64, inserts: usize| {
        let recent = inserts.min(16) as u64;
        match rng.below(3) {
            0 => rng.below(inserts as u64) as usize,
            _ => inserts - 1 - rng.below(recent) as usize,
        }
    };
    for _ in 0..len {
        let inserts = deadlines.len();
        let op = match rng.below(24) {
            0..=5 => {
                // One of the next three slots of this level (or of the next level up, near the
                // end of a block).
                let slot = (cursor & !(span - 1)).saturating_add(span * (1 + rng.below(3)));
                let deadline = slot.saturating_add(rng.below(span));
                deadlines.push(deadline);
                Op::Insert { deadline }
            }
            6..=12 if inserts > 0 => {
                let n = pick(&mut rng, inserts);
                let current = deadlines[n].max(cursor);
                let last_of_slot = current | (span - 1);
                let deadline = match rng.below(6) {
                    0 => current.saturating_add(rng.below(8)),
                    // Still in the slot of this level.
                    1 => current.saturating_add(rng.below(last_of_slot - current + 1)),
                    // Into a later slot of this level: just past the boundary, or further.
                    2 => last_of_slot.saturating_add(1 + rng.below(2)),
                    3 => last_of_slot.saturating_add(1 + rng.below(2 * span)),
                    // A level up.
                    4 => current.saturating_add((span << 6).saturating_mul(1 + rng.below(2))),
                    _ => u64::MAX - rng.below(2),
                };
                deadlines[n] = deadline;
                Op::Reschedule { n, deadline }
            }
            13 | 14 if inserts > 0 => {
                // Earlier: inside its slot of this level, or before it.
                let n = pick(&mut rng, inserts);
                let current = deadlines[n].max(cursor);
                let first_of_slot = (current & !(span - 1)).max(cursor);
                let deadline = match rng.below(2) {
                    0 => first_of_slot + rng.below(current - first_of_slot + 1),
                    _ => first_of_slot.saturating_sub(1 + rng.below(span)),
                };
                deadlines[n] = deadline;
                Op::Reschedule { n, deadline }
            }
            15..=17 if inserts > 0 => Op::Cancel {
                n: pick(&mut rng, inserts),
            },
            18 | 19 => {
                cursor = cursor.saturating_add(rng.below(span / 8 + 1));
                Op::Poll { now: cursor }
            }
            _ => {
                cursor = match rng.below(4) {
                    // Onto the start of the next slot of this level, or just before it.
                    0 => (cursor | (span - 1)).saturating_add(rng.below(2)),
                    _ => cursor.saturating_add(rng.below(span / 4 + 1)),
                };
                Op::Advance { now: cursor }
            }
        };
        ops.push(op);
    }
    // Everything left fires, in order.
    ops.push(Op::Advance { now: u64::MAX });
    ops
}

#[test]
fn lazily_moved_timers_fire_in_the_same_order_at_every_level() {
    let mut rng = SplitMix64::new(17);
    for level in 1..=10u32 {
        let span = 1u64 << (6 * level);
        let starts = [
            0,
            rng.next_u64() >> 64u32.saturating_sub(6 * level + 8),
            rng.next_u64(),
            // Across the end of time: the last slots of the last block, where deadlines
            // saturate at u64::MAX.
            u64::MAX - span.saturating_mul(8 + rng.below(24)).min(u64::MAX / 2) - rng.below(span),
            u64::MAX - rng.below(64),
        ];
        for (i, &start) in starts.iter().enumerate() {
            for round in 0..3 {
                let seed = u64::from(level) << 16 | (i as u64) << 8 | round;
                let ops = lazy_ops(seed, level, start, 1_500);
                let wheel = compare(&format!("level {level}, start {start}, seed {seed}"), &ops);
                let moved = wheel
                    .iter()
                    .filter(|(event, ..)| *event == Event::Rescheduled(true))
                    .count();
                assert!(
                    moved > 15 && fired(&wheel) > 200,
                    "level {level}, start {start}: {moved} moves, {} fired: the stream tests little",
                    fired(&wheel)
                );
            }
        }
    }
}
