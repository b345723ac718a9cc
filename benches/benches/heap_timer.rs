//! The usual hand-rolled thread-safe timer, for comparison with `TimerService`: a
//! `Mutex<BinaryHeap>` of deadlines and a `Condvar` driver thread. A cancel sets the entry's
//! flag; the entry stays in the heap until its deadline (that is what a binary heap allows).
//! The flag is swapped by both the canceller and the driver, so it is exactly-once too.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Callback = Box<dyn FnOnce() + Send + 'static>;

struct Entry {
    deadline: Instant,
    /// Insertion order, for FIFO ties.
    seq: u64,
    done: Arc<AtomicBool>,
    callback: Callback,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap, we want the earliest deadline on top.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

struct Heap {
    entries: BinaryHeap<Entry>,
    next_seq: u64,
    shutdown: bool,
}

struct Shared {
    heap: Mutex<Heap>,
    changed: Condvar,
}

/// A `Mutex<BinaryHeap>` + `Condvar` timer with its own driver thread.
pub(crate) struct HeapTimer {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
}

/// Cancels one timer of a [`HeapTimer`].
#[derive(Clone)]
pub(crate) struct HeapTimeout {
    done: Arc<AtomicBool>,
}

impl HeapTimeout {
    /// True iff this call stopped the callback.
    pub(crate) fn cancel(&self) -> bool {
        !self.done.swap(true, Ordering::AcqRel)
    }
}

impl HeapTimer {
    pub(crate) fn new() -> Self {
        let shared = Arc::new(Shared {
            heap: Mutex::new(Heap {
                entries: BinaryHeap::new(),
                next_seq: 0,
                shutdown: false,
            }),
            changed: Condvar::new(),
        });
        let driver_shared = Arc::clone(&shared);
        let driver = std::thread::Builder::new()
            .name("heap-timer".into())
            .spawn(move || drive(&driver_shared))
            .unwrap();
        HeapTimer {
            shared,
            driver: Some(driver),
        }
    }

    pub(crate) fn call_later<F: FnOnce() + Send + 'static>(
        &self,
        delay: Duration,
        f: F,
    ) -> HeapTimeout {
        let deadline = Instant::now() + delay;
        let done = Arc::new(AtomicBool::new(false));
        let mut heap = self.shared.heap.lock().unwrap();
        let seq = heap.next_seq;
        heap.next_seq += 1;
        let earliest = heap
            .entries
            .peek()
            .is_none_or(|top| deadline < top.deadline);
        heap.entries.push(Entry {
            deadline,
            seq,
            done: Arc::clone(&done),
            callback: Box::new(f),
        });
        drop(heap);
        if earliest {
            self.shared.changed.notify_one();
        }
        HeapTimeout { done }
    }
}

fn drive(shared: &Shared) {
    let mut heap = shared.heap.lock().unwrap();
    loop {
        if heap.shutdown {
            return;
        }
        let now = Instant::now();
        match heap.entries.peek().map(|top| top.deadline) {
            Some(deadline) if deadline <= now => {
                let entry = heap.entries.pop().unwrap();
                drop(heap);
                if !entry.done.swap(true, Ordering::AcqRel) {
                    (entry.callback)();
                }
                heap = shared.heap.lock().unwrap();
            }
            Some(deadline) => heap = shared.changed.wait_timeout(heap, deadline - now).unwrap().0,
            None => heap = shared.changed.wait(heap).unwrap(),
        }
    }
}

impl Drop for HeapTimer {
    fn drop(&mut self) {
        self.shared.heap.lock().unwrap().shutdown = true;
        self.shared.changed.notify_one();
        if let Some(driver) = self.driver.take() {
            driver.join().unwrap();
        }
    }
}
