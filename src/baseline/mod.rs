//! Schedulers the wheel is measured against, behind one [`TimerQueue`] trait that the wheel
//! implements too (cargo feature `baseline`, off by default). They exist for the benchmarks
//! and the differential test; an application uses [`TimerWheel`](crate::TimerWheel) itself.
//!
//! All of them fire ties first-in first-out with a sequence number, so on the same operations
//! they produce exactly the event sequence of [`TimerWheel`](crate::TimerWheel):
//!
//! - [`LazyBinaryHeap`]: asyncio's scheme. A std binary heap; cancel only flags the entry, and
//!   the heap is rebuilt without cancelled entries when they are more than half of it.
//! - [`IndexedHeap`]: a 4-ary heap whose timers know their heap position (Go's arity, libuv's
//!   eager removal), so cancel and reschedule are O(log n) and leave no garbage.
//! - [`BTreeQueue`]: an ordered map keyed by `(deadline, seq)`, as async-io does it; the key
//!   is the map key itself.
//!
//! [`SplitMix64`] is the small fixed-seed generator the tests, benches and `compare` use, so
//! every implementation sees the same operation stream.
//!
//! ```
//! use tierwheel::baseline::{BTreeQueue, IndexedHeap, LazyBinaryHeap, TimerQueue};
//! use tierwheel::TimerWheel;
//!
//! fn run<Q: TimerQueue<u32>>(mut queue: Q) -> Vec<u32> {
//!     for (i, deadline) in [5, 1, 5, 3].into_iter().enumerate() {
//!         queue.insert_at(deadline, i as u32);
//!     }
//!     std::iter::from_fn(|| queue.poll(10)).collect()
//! }
//! let expected = run(TimerWheel::new());
//! assert_eq!(expected, [1, 3, 0, 2]);
//! assert_eq!(run(LazyBinaryHeap::new()), expected);
//! assert_eq!(run(IndexedHeap::new()), expected);
//! assert_eq!(run(BTreeQueue::new()), expected);
//! ```

mod btree;
mod indexed_heap;
mod lazy_heap;
mod queue;
mod rng;
mod slots;

pub use btree::{BTreeKey, BTreeQueue};
pub use indexed_heap::IndexedHeap;
pub use lazy_heap::LazyBinaryHeap;
pub use queue::TimerQueue;
pub use rng::SplitMix64;
pub use slots::HeapKey;
