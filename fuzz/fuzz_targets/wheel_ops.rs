//! `TimerWheel` against the plain reference model of `tests/model/mod.rs` (the same model the
//! property test uses), over a fuzz-chosen start tick and stream of operations. Any difference
//! in a returned value, `now()`, `len()`, `is_empty()`, `next_deadline()` or `peek()` panics.
//!
//! The operation types bias deadlines toward ties, level and slot boundaries, the past and the
//! end of time, and move timers relative to their own deadlines (later within or past their
//! slot, earlier within or before it); keys are picked among the pending ones, as the next to
//! fire, or among every key ever minted (stale).
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

use libfuzzer_sys::fuzz_target;
use model::{Harness, Model, Op, Time};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    /// Resolved against a model at tick 0: `End`, `LevelBoundary` and `Abs` matter most.
    start: Time,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let start = Model::starting_at(0).resolve(&input.start);
    let mut harness = Harness::starting_at(start);
    for op in &input.ops {
        harness.apply(op);
    }
    harness.finish();
});
