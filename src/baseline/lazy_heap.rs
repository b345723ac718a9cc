//! asyncio's timer heap: a binary heap with cancellation by flag.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::slots::{HeapKey, Slots};
use super::TimerQueue;

/// Below this many heap entries the heap is never rebuilt (asyncio's
/// `_MIN_SCHEDULED_TIMER_HANDLES`).
const MIN_REBUILD_LEN: usize = 100;

/// One heap entry. It is live while its storage slot holds the same `seq`; a cancelled or
/// rescheduled timer leaves its old entry behind as garbage.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Effective deadline, in ticks.
    deadline: u64,
    /// Insertion order, the FIFO tiebreak.
    seq: u64,
    index: u32,
}

impl Ord for Entry {
    /// Reversed, so that std's max-heap pops the earliest `(deadline, seq)`.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A binary-heap scheduler with lazy cancellation, as asyncio's event loop does it.
///
/// `cancel` frees the timer's value and storage at once but leaves its heap entry in place;
/// entries whose timer is gone are skipped when they reach the top, and the whole heap is
/// rebuilt without them when they are more than half of it (and the heap holds more than 100
/// entries). Insert and poll are O(log n); cancel is O(1) amortised. Ties fire in insertion
/// order.
///
/// ```
/// use tierwheel::baseline::LazyBinaryHeap;
/// use tierwheel::baseline::TimerQueue;
///
/// let mut heap = LazyBinaryHeap::new();
/// let a = heap.insert_at(10, "a");
/// heap.insert_at(10, "b");
/// assert_eq!(heap.cancel(a), Some("a"));
/// assert_eq!(heap.poll(10), Some("b"));
/// assert!(heap.is_empty());
/// ```
pub struct LazyBinaryHeap<T> {
    heap: BinaryHeap<Entry>,
    /// Per timer: the `seq` of its live heap entry and its value.
    timers: Slots<(u64, T)>,
    /// Heap entries whose timer is gone.
    cancelled: usize,
    next_seq: u64,
    /// The current tick.
    now: u64,
}

impl<T> LazyBinaryHeap<T> {
    /// An empty heap at tick 0.
    ///
    /// ```
    /// let heap = tierwheel::baseline::LazyBinaryHeap::<()>::new();
    /// assert_eq!(tierwheel::baseline::TimerQueue::len(&heap), 0);
    /// ```
    pub fn new() -> Self {
        LazyBinaryHeap {
            heap: BinaryHeap::new(),
            timers: Slots::new(),
            cancelled: 0,
            next_seq: 0,
            now: 0,
        }
    }

    fn is_live(&self, entry: &Entry) -> bool {
        self.timers
            .at(entry.index)
            .is_some_and(|&(seq, _)| seq == entry.seq)
    }

    fn push(&mut self, index: u32, deadline: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.timers.at_mut(index).0 = seq;
        self.heap.push(Entry {
            deadline: deadline.max(self.now),
            seq,
            index,
        });
    }

    /// Accounts for one more garbage entry: drops garbage from the top (so the top is always
    /// live and `next_deadline` exact) and rebuilds when garbage is the majority.
    fn forget_one(&mut self) {
        self.cancelled += 1;
        while self.heap.peek().is_some_and(|top| !self.is_live(top)) {
            self.heap.pop();
            self.cancelled -= 1;
        }
        if self.heap.len() > MIN_REBUILD_LEN && self.cancelled * 2 > self.heap.len() {
            let timers = &self.timers;
            self.heap.retain(|entry| {
                timers
                    .at(entry.index)
                    .is_some_and(|&(seq, _)| seq == entry.seq)
            });
            self.cancelled = 0;
        }
        debug_assert!(
            self.cancelled <= self.heap.len(),
            "{} garbage entries in a heap of {}",
            self.cancelled,
            self.heap.len()
        );
    }
}

impl<T> Default for LazyBinaryHeap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerQueue<T> for LazyBinaryHeap<T> {
    type Key = HeapKey;

    fn now(&self) -> u64 {
        self.now
    }

    fn len(&self) -> usize {
        self.timers.len()
    }

    fn insert_at(&mut self, deadline: u64, value: T) -> HeapKey {
        let key = self.timers.insert((0, value));
        self.push(key.index(), deadline);
        key
    }

    fn cancel(&mut self, key: HeapKey) -> Option<T> {
        self.timers.get_mut(key)?;
        let (_, value) = self.timers.remove_at(key.index());
        self.forget_one();
        Some(value)
    }

    fn reschedule(&mut self, key: HeapKey, deadline: u64) -> Option<HeapKey> {
        self.timers.get_mut(key)?;
        self.push(key.index(), deadline);
        self.forget_one();
        Some(key)
    }

    fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|top| top.deadline)
    }

    fn poll(&mut self, now: u64) -> Option<T> {
        let now = now.max(self.now);
        match self.heap.peek() {
            Some(top) if top.deadline <= now => {
                let top = *top;
                self.heap.pop();
                let (_, value) = self.timers.remove_at(top.index);
                self.now = self.now.max(top.deadline);
                while self.heap.peek().is_some_and(|top| !self.is_live(top)) {
                    self.heap.pop();
                    self.cancelled -= 1;
                }
                Some(value)
            }
            _ => {
                self.now = now;
                None
            }
        }
    }
}
