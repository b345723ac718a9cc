//! An ordered map keyed by `(deadline, seq)`, as async-io keeps its timers.

use std::collections::BTreeMap;

use super::TimerQueue;

/// Names a timer in a [`BTreeQueue`]: its effective deadline and insertion sequence number,
/// which is exactly its key in the map.
///
/// ```
/// use tierwheel::baseline::BTreeQueue;
/// use tierwheel::baseline::TimerQueue;
///
/// let mut queue = BTreeQueue::new();
/// let key = queue.insert_at(4, ());
/// assert_eq!(queue.cancel(key), Some(()));
/// assert_eq!(queue.cancel(key), None);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BTreeKey {
    /// Effective deadline, in ticks.
    deadline: u64,
    seq: u64,
}

/// A `BTreeMap<(deadline, seq), T>` scheduler: every operation O(log n), ties in insertion
/// order. A reschedule removes and reinserts, so it returns a new key.
///
/// ```
/// use tierwheel::baseline::BTreeQueue;
/// use tierwheel::baseline::TimerQueue;
///
/// let mut queue = BTreeQueue::new();
/// let a = queue.insert_at(10, "a");
/// let a2 = queue.reschedule(a, 20).unwrap();
/// assert_ne!(a, a2);
/// assert_eq!(queue.next_deadline(), Some(20));
/// ```
pub struct BTreeQueue<T> {
    map: BTreeMap<(u64, u64), T>,
    next_seq: u64,
    /// The current tick.
    now: u64,
}

impl<T> BTreeQueue<T> {
    /// An empty queue at tick 0.
    ///
    /// ```
    /// let queue = tierwheel::baseline::BTreeQueue::<()>::new();
    /// assert_eq!(tierwheel::baseline::TimerQueue::now(&queue), 0);
    /// ```
    pub fn new() -> Self {
        BTreeQueue {
            map: BTreeMap::new(),
            next_seq: 0,
            now: 0,
        }
    }
}

impl<T> Default for BTreeQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerQueue<T> for BTreeQueue<T> {
    type Key = BTreeKey;

    fn now(&self) -> u64 {
        self.now
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn insert_at(&mut self, deadline: u64, value: T) -> BTreeKey {
        let key = BTreeKey {
            deadline: deadline.max(self.now),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.map.insert((key.deadline, key.seq), value);
        key
    }

    fn cancel(&mut self, key: BTreeKey) -> Option<T> {
        self.map.remove(&(key.deadline, key.seq))
    }

    fn reschedule(&mut self, key: BTreeKey, deadline: u64) -> Option<BTreeKey> {
        let value = self.cancel(key)?;
        Some(self.insert_at(deadline, value))
    }

    fn next_deadline(&self) -> Option<u64> {
        self.map
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    fn poll(&mut self, now: u64) -> Option<T> {
        let now = now.max(self.now);
        match self.map.first_entry() {
            Some(entry) if entry.key().0 <= now => {
                self.now = self.now.max(entry.key().0);
                Some(entry.remove())
            }
            _ => {
                self.now = now;
                None
            }
        }
    }
}
