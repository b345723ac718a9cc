//! Differential test: `TimerWheel` against a plain reference model (`tests/model/mod.rs`) over
//! random streams of every operation, comparing every returned value and `now()`, `len()`,
//! `is_empty()`, `next_deadline()` and `peek()` after every step.
//!
//! The default case count keeps `cargo test` fast. For a long run:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --test wheel_model
//! ```
//!
//! Failures proptest finds are kept in `tests/wheel_model.proptest-regressions` and replayed
//! first on every run; that file is checked in.

mod model;

use model::{Delay, Earlier, Harness, KeyPick, Later, Op, Time, DAY_MS, YEAR_MS};
use proptest::prelude::*;

fn key_pick() -> impl Strategy<Value = KeyPick> {
    prop_oneof![
        3 => any::<u16>().prop_map(KeyPick::Live),
        1 => any::<u16>().prop_map(KeyPick::Any),
        2 => Just(KeyPick::Next),
    ]
}

/// Level offsets around a boundary: a tick either side, or on it.
fn offset() -> impl Strategy<Value = i8> {
    prop_oneof![3 => -2i8..=2, 1 => any::<i8>()]
}

fn later() -> impl Strategy<Value = Later> {
    prop_oneof![
        3 => prop_oneof![0u16..8, 0u16..300, any::<u16>()].prop_map(Later::By),
        3 => (0u8..12, offset()).prop_map(|(level, offset)| Later::Span { level, offset }),
        3 => (0u8..11, offset()).prop_map(|(level, offset)| Later::NextSlot { level, offset }),
        1 => (0u16..300).prop_map(Later::End),
    ]
}

fn earlier() -> impl Strategy<Value = Earlier> {
    prop_oneof![
        1 => prop_oneof![0u16..8, any::<u16>()].prop_map(Earlier::By),
        3 => any::<u16>().prop_map(Earlier::InSlot),
        2 => (0u8..10, any::<u16>()).prop_map(|(level, n)| Earlier::InSlotOf { level, n }),
        2 => prop_oneof![0u16..4, any::<u16>()].prop_map(Earlier::BeforeSlot),
    ]
}

/// Forward jumps of mixed scales: a few ticks, a slot or two at each level, days and years at
/// 1 ms per tick, 2^40, anything.
fn jump() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..8,
        4 => 0u64..300,
        2 => 0u64..300_000,
        1 => (1u64..=1000).prop_map(|days| days * DAY_MS),
        1 => (1u64..=200, 0u64..1000).prop_map(|(years, ms)| years * YEAR_MS + ms),
        1 => (0u64..4).prop_map(|k| (1 << 40) + k),
        1 => any::<u64>(),
    ]
}

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![
        6 => jump().prop_map(Time::After),
        2 => prop_oneof![0u64..100, any::<u64>()].prop_map(Time::Before),
        1 => any::<u64>().prop_map(Time::Abs),
        2 => (0u16..300).prop_map(Time::End),
        2 => (0u8..12, -2i8..=2).prop_map(|(level, offset)| Time::LevelBoundary { level, offset }),
        3 => (0u8..11, -2i8..=2).prop_map(|(level, offset)| Time::SlotBoundary { level, offset }),
        3 => key_pick().prop_map(Time::TieWith),
    ]
}

fn delay() -> impl Strategy<Value = Delay> {
    prop_oneof![
        4 => jump().prop_map(Delay::Ticks),
        2 => (0u8..12, -2i8..=2).prop_map(|(level, offset)| Delay::Level { level, offset }),
        1 => (0u16..1000).prop_map(Delay::Days),
        1 => (0u16..300).prop_map(Delay::Years),
        1 => (0u16..300).prop_map(Delay::Huge),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (time(), any::<bool>()).prop_map(|(at, try_)| Op::InsertAt { at, try_ }),
        4 => (delay(), any::<bool>()).prop_map(|(delay, try_)| Op::InsertAfter { delay, try_ }),
        3 => key_pick().prop_map(Op::Cancel),
        3 => (key_pick(), time()).prop_map(|(pick, at)| Op::Reschedule(pick, at)),
        4 => (key_pick(), later()).prop_map(|(pick, later)| Op::RescheduleLater(pick, later)),
        2 => (key_pick(), earlier())
            .prop_map(|(pick, earlier)| Op::RescheduleEarlier(pick, earlier)),
        1 => (any::<u8>(), 0u8..8, later())
            .prop_map(|(step, offset, later)| Op::RescheduleEvery { step, offset, later }),
        1 => key_pick().prop_map(Op::Deadline),
        3 => time().prop_map(Op::Poll),
        3 => (time(), prop::option::of(0u8..8)).prop_map(|(to, take)| Op::Advance { to, take }),
        1 => (time(), 0u8..100, prop_oneof![Just(0u8), 0u8..4, any::<u8>()])
            .prop_map(|(at, count, spread)| Op::InsertBurst { at, count, spread }),
        1 => (any::<u8>(), 0u8..8).prop_map(|(step, offset)| Op::CancelEvery { step, offset }),
        1 => Just(Op::Clear),
    ]
}

fn start() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        0u64..1000,
        (0u64..300).prop_map(|k| u64::MAX - k),
        (1u32..11, -2i64..=2)
            .prop_map(|(level, offset)| (1u64 << (6 * level)).saturating_add_signed(offset)),
        any::<u64>(),
    ]
}

proptest! {
    #[test]
    fn wheel_matches_model(start in start(), ops in prop::collection::vec(op(), 1..120)) {
        let mut harness = Harness::starting_at(start);
        for op in &ops {
            harness.apply(op);
        }
        harness.finish();
    }
}

/// The cases in `tests/wheel_model.proptest-regressions`, as written there: proptest replays a
/// regression by its seed through the strategies above, so a change to them would silently
/// replay other cases.
#[test]
fn checked_in_regressions() {
    let cases = [
        (
            0,
            vec![
                Op::InsertAt {
                    at: Time::End(0),
                    try_: false,
                },
                Op::InsertAt {
                    at: Time::End(60),
                    try_: false,
                },
                Op::InsertAt {
                    at: Time::End(0),
                    try_: false,
                },
                Op::Reschedule(KeyPick::Any(15781), Time::After(0)),
                Op::Reschedule(KeyPick::Live(37327), Time::End(0)),
            ],
        ),
        (
            u64::MAX,
            vec![
                Op::InsertBurst {
                    at: Time::After(0),
                    count: 20,
                    spread: 0,
                },
                Op::InsertAt {
                    at: Time::After(0),
                    try_: false,
                },
                Op::Reschedule(KeyPick::Live(2919), Time::After(0)),
                Op::InsertAt {
                    at: Time::After(0),
                    try_: false,
                },
            ],
        ),
    ];
    for (start, ops) in cases {
        let mut harness = Harness::starting_at(start);
        for op in &ops {
            harness.apply(op);
        }
        harness.finish();
    }
}
