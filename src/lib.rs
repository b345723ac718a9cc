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
//! # Callbacks on a clock
//!
//! [`Scheduler`] puts asyncio's `call_later` / `call_at` / `call_soon` on the wheel. A callback
//! is an `FnOnce(&mut C, &mut Scheduler<C, K>)`: it gets the context you pass to
//! [`run_due`](Scheduler::run_due) and the scheduler itself, so it can re-arm itself or cancel
//! others while it runs. Time comes from a [`Clock`]; [`ManualClock`] makes tests exact.
//! Delays round up to the tick ([`Resolution`], 1 ms by default): never early.
//!
//! ```
//! use std::time::Duration;
//! use tierwheel::{ManualClock, Scheduler, TimerHandle};
//!
//! struct Conn {
//!     pings: u32,
//!     idle: Option<TimerHandle>,
//! }
//!
//! fn ping(conn: &mut Conn, sched: &mut Scheduler<Conn, ManualClock>) {
//!     conn.pings += 1;
//!     if conn.pings < 3 {
//!         sched.call_later(Duration::from_secs(1), ping); // re-arm
//!     } else if let Some(idle) = conn.idle.take() {
//!         sched.cancel(idle);
//!     }
//! }
//!
//! let clock = ManualClock::new();
//! let mut sched = Scheduler::with_clock(clock.clone());
//! let mut conn = Conn { pings: 0, idle: None };
//! sched.call_later(Duration::from_secs(1), ping);
//! conn.idle = Some(sched.call_later(Duration::from_secs(10), |_: &mut Conn, _| panic!("idle")));
//!
//! while let Some(timeout) = sched.next_timeout() {
//!     clock.advance(timeout); // a real loop sleeps here, e.g. in epoll_wait
//!     sched.run_due(&mut conn);
//! }
//! assert_eq!((conn.pings, sched.time()), (3, Duration::from_secs(3)));
//! ```
//!
//! # A timer service for threads
//!
//! [`service::TimerService`] runs a scheduler on its own driver thread and takes timers from
//! any thread. For each timer exactly one thing happens, whatever the race: its callback runs
//! once, or exactly one [`cancel`](service::Timeout::cancel) returns true (or shutdown hands
//! it back unrun). Cancelled timers are freed by the driver in O(1), not at their deadline.
//! [`sleep`](service::Handle::sleep) and [`timeout`](service::Handle::timeout) are futures for
//! any executor.
//!
//! ```
//! use std::time::Duration;
//! use tierwheel::service::TimerService;
//!
//! let service = TimerService::new();
//! let request_timeout = service.call_later(Duration::from_secs(30), || eprintln!("timed out"))?;
//! // ... the response arrived in time, on some other thread:
//! assert!(request_timeout.cancel());
//! # Ok::<(), tierwheel::service::ShutdownError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
mod scheduler;
pub mod service;
mod slab;
mod wheel;

pub use clock::{Clock, ManualClock, MonotonicClock, Resolution};
pub use scheduler::{Scheduler, TimerHandle};
pub use slab::{CapacityError, TimerKey};
pub use wheel::{Drain, Expired, TimerWheel};
