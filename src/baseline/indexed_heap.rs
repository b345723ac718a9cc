//! A 4-ary heap whose timers know their position: eager O(log n) removal.

use super::slots::{HeapKey, Slots};
use super::TimerQueue;

/// Children per node (Go's runtime timer heap uses 4: shallower than binary, and the four
/// children of a node share a cache line or two).
const ARITY: usize = 4;

/// One heap node; the timer's record points back at the node's position.
#[derive(Clone, Copy)]
struct Node {
    /// Effective deadline, in ticks.
    deadline: u64,
    /// Insertion order, the FIFO tiebreak.
    seq: u64,
    index: u32,
}

impl Node {
    fn before(&self, other: &Node) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

/// A 4-ary min-heap with back-pointers, as Go's runtime and libuv keep timers.
///
/// Each timer's storage records its position in the heap, so cancel and reschedule remove or
/// move the node at once in O(log n) and the heap never holds garbage. Ties fire in insertion
/// order.
///
/// ```
/// use tierwheel::baseline::IndexedHeap;
/// use tierwheel::baseline::TimerQueue;
///
/// let mut heap = IndexedHeap::new();
/// let a = heap.insert_at(10, "a");
/// heap.insert_at(10, "b");
/// let a = heap.reschedule(a, 10).unwrap(); // behind "b" now
/// assert_eq!(heap.poll(10), Some("b"));
/// assert_eq!(heap.poll(10), Some("a"));
/// assert_eq!(heap.cancel(a), None);
/// ```
pub struct IndexedHeap<T> {
    heap: Vec<Node>,
    /// Per timer: its node's position in `heap`, and its value.
    timers: Slots<(u32, T)>,
    next_seq: u64,
    /// The current tick.
    now: u64,
}

impl<T> IndexedHeap<T> {
    /// An empty heap at tick 0.
    ///
    /// ```
    /// let heap = tierwheel::baseline::IndexedHeap::<()>::new();
    /// assert_eq!(tierwheel::baseline::TimerQueue::next_deadline(&heap), None);
    /// ```
    pub fn new() -> Self {
        IndexedHeap {
            heap: Vec::new(),
            timers: Slots::new(),
            next_seq: 0,
            now: 0,
        }
    }

    fn seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Writes `node` at `pos` and points its timer at it.
    fn place(&mut self, pos: usize, node: Node) {
        self.heap[pos] = node;
        self.timers.at_mut(node.index).0 = pos as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if !node.before(&self.heap[parent]) {
                break;
            }
            let moved = self.heap[parent];
            self.place(pos, moved);
            pos = parent;
        }
        self.place(pos, node);
    }

    fn sift_down(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        loop {
            let first = pos * ARITY + 1;
            if first >= self.heap.len() {
                break;
            }
            let last = (first + ARITY).min(self.heap.len());
            let mut best = first;
            for child in first + 1..last {
                if self.heap[child].before(&self.heap[best]) {
                    best = child;
                }
            }
            if !self.heap[best].before(&node) {
                break;
            }
            let moved = self.heap[best];
            self.place(pos, moved);
            pos = best;
        }
        self.place(pos, node);
    }

    /// Restores heap order around `pos` after its node changed.
    fn fix(&mut self, pos: usize) {
        if pos > 0 && self.heap[pos].before(&self.heap[(pos - 1) / ARITY]) {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
    }

    /// Takes the node at `pos` out of the heap and frees its timer.
    fn remove_node(&mut self, pos: usize) -> T {
        let node = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            self.fix(pos);
        }
        self.timers.remove_at(node.index).1
    }
}

impl<T> Default for IndexedHeap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerQueue<T> for IndexedHeap<T> {
    type Key = HeapKey;

    fn now(&self) -> u64 {
        self.now
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn insert_at(&mut self, deadline: u64, value: T) -> HeapKey {
        let pos = self.heap.len();
        let key = self.timers.insert((pos as u32, value));
        let node = Node {
            deadline: deadline.max(self.now),
            seq: self.seq(),
            index: key.index(),
        };
        self.heap.push(node);
        self.sift_up(pos);
        key
    }

    fn cancel(&mut self, key: HeapKey) -> Option<T> {
        let pos = self.timers.get_mut(key)?.0 as usize;
        Some(self.remove_node(pos))
    }

    fn reschedule(&mut self, key: HeapKey, deadline: u64) -> Option<HeapKey> {
        let pos = self.timers.get_mut(key)?.0 as usize;
        let seq = self.seq();
        let node = &mut self.heap[pos];
        node.deadline = deadline.max(self.now);
        node.seq = seq;
        self.fix(pos);
        Some(key)
    }

    fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|top| top.deadline)
    }

    fn poll(&mut self, now: u64) -> Option<T> {
        let now = now.max(self.now);
        match self.heap.first() {
            Some(top) if top.deadline <= now => {
                self.now = self.now.max(top.deadline);
                Some(self.remove_node(0))
            }
            _ => {
                self.now = now;
                None
            }
        }
    }
}
