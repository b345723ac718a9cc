//! What the comparison programs (`compare`, `steps`) and the criterion suites share: the
//! workloads, one adapter per implementation (the wheel, the baselines, the crates.io peers),
//! and a counting global allocator for bytes per timer.

pub mod counting_alloc;
pub mod workloads;
