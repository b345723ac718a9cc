//! A small binary-heap callback scheduler with the same semantics as `tierwheel::Scheduler`
//! (ticks rounded up, deadline-then-FIFO order, one boxed closure per callback, callbacks
//! scheduled during a pass wait for the next), for comparison. Cancel is lazy, as in asyncio:
//! the callback is dropped at once, its heap entry when it reaches the top or when more than
//! half the heap is cancelled entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tierwheel::{Clock, Resolution};

type Callback<C, K> = Box<dyn FnOnce(&mut C, &mut HeapScheduler<C, K>)>;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeapHandle {
    index: u32,
    generation: u32,
}

struct Entry<C, K: Clock> {
    generation: u32,
    callback: Option<Callback<C, K>>,
}

pub(crate) struct HeapScheduler<C, K: Clock> {
    /// `(tick, seq)` first, so the heap orders by deadline then scheduling order.
    heap: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    entries: Vec<Entry<C, K>>,
    free: Vec<u32>,
    /// Heap entries whose callback was cancelled.
    cancelled: usize,
    seq: u64,
    clock: K,
    resolution: Resolution,
    /// During a pass, its tick: new callbacks are placed no earlier.
    pass: Option<u64>,
}

impl<C, K: Clock> HeapScheduler<C, K> {
    pub(crate) fn with_clock_and_resolution(clock: K, resolution: Resolution) -> Self {
        HeapScheduler {
            heap: BinaryHeap::new(),
            entries: Vec::new(),
            free: Vec::new(),
            cancelled: 0,
            seq: 0,
            clock,
            resolution,
            pass: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len() - self.cancelled
    }

    pub(crate) fn call_later<F>(&mut self, delay: Duration, callback: F) -> HeapHandle
    where
        F: FnOnce(&mut C, &mut HeapScheduler<C, K>) + 'static,
    {
        let when = self.clock.now().saturating_add(delay);
        let tick = self.resolution.ticks_ceil(when);
        let tick = self.pass.map_or(tick, |pass| tick.max(pass));
        let callback: Callback<C, K> = Box::new(callback);
        let index = match self.free.pop() {
            Some(index) => {
                self.entries[index as usize].callback = Some(callback);
                index
            }
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    callback: Some(callback),
                });
                (self.entries.len() - 1) as u32
            }
        };
        let generation = self.entries[index as usize].generation;
        self.heap.push(Reverse((tick, self.seq, index, generation)));
        self.seq += 1;
        HeapHandle { index, generation }
    }

    pub(crate) fn cancel(&mut self, handle: HeapHandle) -> bool {
        let Some(entry) = self.entries.get_mut(handle.index as usize) else {
            return false;
        };
        if entry.generation != handle.generation || entry.callback.take().is_none() {
            return false;
        }
        // The heap entry stays behind, stale; its slot may be reused at once.
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(handle.index);
        self.cancelled += 1;
        if self.cancelled > 64 && self.cancelled * 2 > self.heap.len() {
            let entries = &self.entries;
            self.heap
                .retain(|Reverse((_, _, i, g))| entries[*i as usize].generation == *g);
            self.cancelled = 0;
        }
        true
    }

    pub(crate) fn run_due(&mut self, ctx: &mut C) -> usize {
        let tick = self.resolution.ticks_floor(self.clock.now());
        let fence = self.seq;
        self.pass = Some(tick);
        let mut ran = 0;
        while let Some(&Reverse((t, seq, index, generation))) = self.heap.peek() {
            if t > tick || (t == tick && seq >= fence) {
                break;
            }
            self.heap.pop();
            let entry = &mut self.entries[index as usize];
            if entry.generation != generation {
                self.cancelled -= 1;
                continue;
            }
            let callback = entry
                .callback
                .take()
                .expect("live entry holds its callback");
            entry.generation = entry.generation.wrapping_add(1);
            self.free.push(index);
            ran += 1;
            callback(ctx, self);
        }
        self.pass = None;
        ran
    }
}
