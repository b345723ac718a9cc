//! A hierarchical hashed timing wheel: O(1) insert, cancel and reschedule, any `u64` deadline,
//! first-in first-out ties, every timer fired exactly once at its exact tick.
//!
//! ```
//! use tierwheel::TimerWheel;
//!
//! let mut wheel = TimerWheel::new();
//! let a = wheel.insert_at(10, "a");
//! wheel.insert_at(10, "b");
//! wheel.insert_after(u64::MAX, "end of time");
//! assert_eq!(wheel.cancel(a), Some("a"));
//!
//! let fired: Vec<_> = wheel.advance(100).map(|e| e.value).collect();
//! assert_eq!(fired, ["b"]);
//! assert_eq!(wheel.next_deadline(), Some(u64::MAX));
//! ```
//!
//! # Crate features
//!
//! - `baseline` (off by default): the module `tierwheel::baseline` holds heap and B-tree
//!   schedulers behind the same [`TimerQueue`] trait as the wheel, for side-by-side
//!   comparison (`benches/queues.rs`, `examples/compare.rs`, `docs/benchmarks.md`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "baseline")]
pub mod baseline;
mod queue;
mod slab;
mod wheel;

pub use queue::TimerQueue;
pub use slab::{CapacityError, TimerKey};
pub use wheel::{Drain, Expired, TimerWheel};
