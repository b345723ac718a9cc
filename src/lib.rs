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
//! # A timer service for threads and async runtimes
//!
//! [`service::TimerService`] takes timers from any thread and any runtime: callbacks run on its
//! driver thread, and futures ([`Sleep`](service::Sleep), [`WithTimeout`](service::WithTimeout),
//! [`Interval`](service::Interval)) are woken by it. For each callback exactly one thing
//! happens, whatever the race: it runs once, or exactly one
//! [`cancel`](service::Timeout::cancel) returns true (or shutdown hands it back unrun). Moving a
//! timer later ([`Sleep::reset`](service::Sleep::reset), [`Timeout::reset_after`](service::Timeout::reset_after))
//! is one compare-and-swap, with no lock.
//!
//! ```
//! use std::time::Duration;
//! use tierwheel::service::TimerService;
//!
//! let service = TimerService::new();
//! let request_timeout = service.call_later(Duration::from_secs(30), || eprintln!("timed out"))?;
//! // Traffic on the connection: push the timeout back.
//! assert!(request_timeout.reset_after(Duration::from_secs(30)));
//! // ... the response arrived in time, on some other thread:
//! assert!(request_timeout.cancel());
//! # Ok::<(), tierwheel::service::ShutdownError>(())
//! ```
//!
//! # A delay queue for async code
//!
//! [`DelayQueue`] is tokio-util's `DelayQueue` on the wheel: values come out, as a `Stream`,
//! once their deadline has passed; keys remove them early or move their deadline, in O(1).
//! One timer per queue wakes its task exactly when the first entry is due. It runs on any
//! executor (its timer is a sleep on a timer service), or on tokio's own timer and clock with
//! the `tokio` feature.
//!
//! ```
//! use std::task::{Context, Poll, Waker};
//! use std::time::Duration;
//! use tierwheel::service::TimerService;
//! use tierwheel::DelayQueue;
//!
//! let mut driver = TimerService::builder().build_manual(); // a clock for the example
//! let mut queue = DelayQueue::with_handle(driver.handle());
//! let idle = queue.insert("close idle connection", Duration::from_secs(30));
//! queue.insert("retry", Duration::from_secs(1));
//! queue.reset(&idle, Duration::from_secs(60)); // traffic: push the idle timeout back
//!
//! let mut cx = Context::from_waker(Waker::noop());
//! assert!(queue.poll_expired(&mut cx).is_pending());
//! driver.run_until(Duration::from_secs(1));
//! let Poll::Ready(Some(retry)) = queue.poll_expired(&mut cx) else { panic!() };
//! assert_eq!(retry.into_inner(), "retry");
//! ```
//!
//! # Crate features
//!
//! - `baseline` (off by default): the module `baseline`, the schedulers tierwheel is measured
//!   against, behind one `TimerQueue` trait that the wheel implements too: a lazily cancelling
//!   binary heap (asyncio's scheme), a 4-ary indexed heap (Go's arity, libuv's eager removal)
//!   and a `BTreeMap` keyed by `(deadline, sequence)`. All fire ties first in, first out, like
//!   the wheel. They are there for benchmarks and differential tests.
//! - `tokio` (off by default): a [`DelayQueue`] made inside a tokio runtime (by
//!   [`DelayQueue::new`], or `DelayQueue::with_tokio`) takes its time from tokio's clock and
//!   its wakeups from one `tokio::time::Sleep`, reset in place: no extra thread, and tokio's
//!   paused test clock drives it. It must then be polled inside that runtime. Made outside a
//!   runtime, a queue uses the process-wide timer service as without the feature.
//!
//! # Implementation
//!
//! The wheel follows Varghese and Lauck's hierarchical timing wheels ("Hashed and Hierarchical
//! Timing Wheels", SOSP 1987): eleven levels of 64 slots, each level six bits of the `u64`
//! tick. A timer lives on the level of the highest bit in which its deadline and the current
//! tick differ; when time reaches a coarse slot, its timers cascade into finer ones, so each
//! fires at its exact tick. Ties fire by a stamp taken at every insert and reschedule.
//!
//! | level | slot width (ticks) | covers up to (ticks) | at 1 ms per tick |
//! |------:|-------------------:|---------------------:|-----------------:|
//! | 0 | 1 | 2^6 | 64 ms |
//! | 1 | 2^6 | 2^12 | 4.1 s |
//! | 2 | 2^12 | 2^18 | 4.4 min |
//! | 3 | 2^18 | 2^24 | 4.7 h |
//! | 4 | 2^24 | 2^30 | 12.4 days |
//! | 5 | 2^30 | 2^36 | 2.2 years |
//! | 6 | 2^36 | 2^42 | 139 years |
//! | 7..=10 | 2^42 ..= 2^60 | 2^64 | the end of time |
//!
//! A slot is a flat list of 8-byte references until its timers must be told apart: when time
//! reaches it, or when it is the first occupied slot and too large to scan for its earliest
//! timer, it is split into a block of the next finer level. A cancel writes only the timer's
//! storage (its references go stale and are swept later); a reschedule to a later deadline
//! writes only the timer's storage, and the timer is filed again when time reaches its old
//! slot. Bookkeeping is 40 bytes per pending timer beyond a payload of up to 8 bytes, and a
//! wheel holds up to [`MAX_PENDING`] timers. `docs/design.md` in the repository explains every
//! choice, and `docs/benchmarks.md` measures them.
// `unsafe` is denied everywhere but in one fenced block, the prefetch hint in src/prefetch.rs.
#![deny(unsafe_code)]
#![deny(missing_docs)]
// docs.rs marks what needs a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "baseline")]
#[cfg_attr(docsrs, doc(cfg(feature = "baseline")))]
pub mod baseline;
pub mod clock;
pub mod delay_queue;
mod prefetch;
mod scheduler;
mod segvec;
pub mod service;
mod slab;
mod wheel;

pub use clock::{Clock, ManualClock, MonotonicClock, Resolution};
pub use delay_queue::DelayQueue;
pub use scheduler::{CallbackStatus, Scheduler, TimerHandle};
pub use slab::{CapacityError, TimerKey, MAX_PENDING};
pub use wheel::{Advance, Expired, Iter, TimerWheel};

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
