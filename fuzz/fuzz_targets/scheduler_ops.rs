//! `Scheduler` on a `ManualClock` against the plain model in `tests/scheduler_model`: callbacks
//! that schedule, cancel, reschedule and panic; the order of callbacks run must equal the
//! model's, each exactly once or cancelled once.
#![no_main]

#[path = "../../tests/scheduler_model/mod.rs"]
mod scheduler_model;

use std::rc::Rc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use scheduler_model::{check, Delay, Effect, Op, Plan};

/// A delay biased toward zero, tick edges at 1 µs and 1 ms, long delays and the end of time.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzDelay {
    Small(u8),
    /// `n` whole units (µs if `micros`, else ms) plus `offset` - 1 nanoseconds.
    TickEdge {
        n: u8,
        offset: u8,
        micros: bool,
    },
    Nanos(u32),
    Raw(u64),
    Secs(u64),
    Max,
}

impl From<FuzzDelay> for Delay {
    fn from(d: FuzzDelay) -> Delay {
        match d {
            FuzzDelay::Small(n) => Delay::Nanos(u64::from(n % 4)),
            FuzzDelay::TickEdge { n, offset, micros } => {
                let unit = if micros { 1_000 } else { 1_000_000 };
                Delay::Nanos((u64::from(n) * unit + u64::from(offset % 3)).saturating_sub(1))
            }
            FuzzDelay::Nanos(n) => Delay::Nanos(u64::from(n)),
            FuzzDelay::Raw(n) => Delay::Nanos(n),
            FuzzDelay::Secs(s) => Delay::Secs(s),
            FuzzDelay::Max => Delay::Max,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzEffect {
    Later(FuzzDelay),
    At(FuzzDelay),
    Soon,
    Cancel(u16),
    Reschedule(u16, FuzzDelay),
    RescheduleLater(u16, FuzzDelay),
    Panic,
}

impl From<FuzzEffect> for Effect {
    fn from(e: FuzzEffect) -> Effect {
        match e {
            FuzzEffect::Later(d) => Effect::Later(d.into()),
            FuzzEffect::At(d) => Effect::At(d.into()),
            FuzzEffect::Soon => Effect::Soon,
            FuzzEffect::Cancel(n) => Effect::Cancel(usize::from(n)),
            FuzzEffect::Reschedule(n, d) => Effect::Reschedule(usize::from(n), d.into()),
            FuzzEffect::RescheduleLater(n, d) => Effect::RescheduleLater(usize::from(n), d.into()),
            FuzzEffect::Panic => Effect::Panic,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
struct FuzzPlan {
    effects: Vec<FuzzEffect>,
    depth: u8,
}

impl From<FuzzPlan> for Plan {
    fn from(p: FuzzPlan) -> Plan {
        // Bounded so that re-arming callbacks cannot grow the run without limit.
        let effects: Vec<Effect> = p.effects.into_iter().take(3).map(Effect::from).collect();
        Plan {
            effects: Rc::from(effects),
            depth: p.depth % 3,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum FuzzOp {
    Later(FuzzDelay, FuzzPlan),
    At(FuzzDelay, FuzzPlan),
    Soon(FuzzPlan),
    Cancel(u16),
    Reschedule(u16, FuzzDelay),
    RescheduleLater(u16, FuzzDelay),
    Advance(FuzzDelay),
    Set(u64),
    RunDue,
}

impl From<FuzzOp> for Op {
    fn from(op: FuzzOp) -> Op {
        match op {
            FuzzOp::Later(d, p) => Op::Later(d.into(), p.into()),
            FuzzOp::At(d, p) => Op::At(d.into(), p.into()),
            FuzzOp::Soon(p) => Op::Soon(p.into()),
            FuzzOp::Cancel(n) => Op::Cancel(usize::from(n)),
            FuzzOp::Reschedule(n, d) => Op::Reschedule(usize::from(n), d.into()),
            FuzzOp::RescheduleLater(n, d) => Op::RescheduleLater(usize::from(n), d.into()),
            FuzzOp::Advance(d) => Op::Advance(d.into()),
            FuzzOp::Set(n) => Op::Set(n),
            FuzzOp::RunDue => Op::RunDue,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum FuzzTick {
    Millisecond,
    Microsecond,
    Nanosecond,
    Odd(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum FuzzStart {
    Zero,
    Nanos(u32),
    NearEnd(u32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    tick: FuzzTick,
    start: FuzzStart,
    ops: Vec<FuzzOp>,
}

fuzz_target!(|input: Input| {
    let tick = match input.tick {
        FuzzTick::Millisecond => 1_000_000,
        FuzzTick::Microsecond => 1_000,
        FuzzTick::Nanosecond => 1,
        FuzzTick::Odd(n) => u64::from(n) | 1,
        FuzzTick::Raw(n) => n.max(1),
    };
    let start = match input.start {
        FuzzStart::Zero => 0,
        FuzzStart::Nanos(n) => u64::from(n),
        FuzzStart::NearEnd(back) => u64::MAX - u64::from(back),
    };
    let ops: Vec<Op> = input.ops.into_iter().take(64).map(Op::from).collect();
    check(tick, start, &ops);
});
