//! Property test: the scheduler against a plain model (`scheduler_model`), through random
//! schedules, cancels, reschedules, clock moves and passes, with callbacks that schedule,
//! cancel, reschedule and panic.

mod scheduler_model;

use std::rc::Rc;

use proptest::prelude::*;
use scheduler_model::{check, Delay, Effect, Op, Plan};

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400;
const YEAR: u64 = 365 * DAY + DAY / 4;

/// Delays biased toward zero, tick edges (at 1 ms and 1 µs), days, years and the end of time.
fn delay() -> impl Strategy<Value = Delay> {
    prop_oneof![
        3 => (0..4u64).prop_map(Delay::Nanos),
        6 => (0..4u64, 0..3u64, prop_oneof![Just(1_000u64), Just(1_000_000)])
            .prop_map(|(n, off, unit)| Delay::Nanos((n * unit + off).saturating_sub(1))),
        4 => (0..5_000_000u64).prop_map(Delay::Nanos),
        2 => (0..30 * SEC).prop_map(Delay::Nanos),
        1 => prop_oneof![
            Just(Delay::Secs(DAY)),
            Just(Delay::Nanos(DAY * SEC + 1_000_000)),
            Just(Delay::Secs(3 * YEAR)),
            Just(Delay::Secs(100 * YEAR)),
            Just(Delay::Secs(u64::MAX / 1_000)),
            Just(Delay::Secs(u64::MAX)),
            Just(Delay::Max),
        ],
    ]
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![
        4 => delay().prop_map(Effect::Later),
        1 => delay().prop_map(Effect::At),
        2 => Just(Effect::Soon),
        4 => any::<usize>().prop_map(Effect::Cancel),
        2 => (any::<usize>(), delay()).prop_map(|(n, d)| Effect::Reschedule(n, d)),
        2 => (any::<usize>(), delay()).prop_map(|(n, d)| Effect::RescheduleLater(n, d)),
        1 => Just(Effect::Panic),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (prop::collection::vec(effect(), 0..3), 0..3u8).prop_map(|(effects, depth)| Plan {
        effects: Rc::from(effects),
        depth,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (delay(), plan()).prop_map(|(d, p)| Op::Later(d, p)),
        2 => (delay(), plan()).prop_map(|(d, p)| Op::At(d, p)),
        2 => plan().prop_map(Op::Soon),
        3 => any::<usize>().prop_map(Op::Cancel),
        2 => (any::<usize>(), delay()).prop_map(|(n, d)| Op::Reschedule(n, d)),
        2 => (any::<usize>(), delay()).prop_map(|(n, d)| Op::RescheduleLater(n, d)),
        5 => delay().prop_map(Op::Advance),
        1 => prop_oneof![0..10 * SEC, Just(u64::MAX - 1), Just(u64::MAX)].prop_map(Op::Set),
        5 => Just(Op::RunDue),
    ]
}

fn tick_nanos() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(1_000_000u64),
        Just(1_000),
        Just(1),
        Just(7),
        1..3 * SEC
    ]
}

fn start_nanos() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0..10 * SEC,
        Just(u64::MAX - 5_000_000),
        Just(u64::MAX)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn scheduler_matches_model(
        tick in tick_nanos(),
        start in start_nanos(),
        ops in prop::collection::vec(op(), 0..48),
    ) {
        check(tick, start, &ops);
    }
}
