//! What the comparison programs (`compare`, `steps`, `sleeps`) and the criterion suites share:
//! the workloads, one adapter per implementation (the wheel, the baselines, the crates.io
//! peers), registered service sleeps, and a counting global allocator for bytes per timer.

pub mod counting_alloc;
pub mod sleeps;
pub mod workloads;
