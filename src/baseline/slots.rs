//! Generation-checked storage shared by the two heaps: a vector threaded by a free list.

use std::fmt;

/// Names a timer in a [`LazyBinaryHeap`](super::LazyBinaryHeap) or an
/// [`IndexedHeap`](super::IndexedHeap): a storage index and the generation it had.
///
/// Generations are 32 bits and wrap: after 2^32 timers have lived in one entry, a key that old
/// could alias a new timer. The baselines accept that; the wheel's [`TimerKey`](crate::TimerKey)
/// retires such entries instead.
///
/// ```
/// use tierwheel::baseline::IndexedHeap;
/// use tierwheel::baseline::TimerQueue;
///
/// let mut heap = IndexedHeap::new();
/// let key = heap.insert_at(4, ());
/// heap.cancel(key);
/// assert_ne!(heap.insert_at(4, ()), key); // same storage, newer generation
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct HeapKey {
    index: u32,
    generation: u32,
}

impl fmt::Debug for HeapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeapKey({}v{})", self.index, self.generation)
    }
}

impl HeapKey {
    /// Position of the timer's storage.
    pub(super) fn index(self) -> u32 {
        self.index
    }
}

/// End of the free list.
const NONE: u32 = u32::MAX;

enum Slot<E> {
    Live { generation: u32, item: E },
    Free { generation: u32, next: u32 },
}

/// Storage for the heaps' timers; `E` is the per-timer record.
pub(super) struct Slots<E> {
    slots: Vec<Slot<E>>,
    free: u32,
    len: usize,
}

impl<E> Slots<E> {
    pub(super) fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: NONE,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn insert(&mut self, item: E) -> HeapKey {
        self.len += 1;
        if self.free != NONE {
            let index = self.free;
            let slot = &mut self.slots[index as usize];
            let Slot::Free { generation, next } = *slot else {
                unreachable!("free list points at a live slot {index}")
            };
            self.free = next;
            *slot = Slot::Live { generation, item };
            return HeapKey { index, generation };
        }
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&i| i != NONE)
            .expect("baseline heap: more than u32::MAX - 1 timers pending");
        self.slots.push(Slot::Live {
            generation: 0,
            item,
        });
        HeapKey {
            index,
            generation: 0,
        }
    }

    /// The record of a live key.
    pub(super) fn get_mut(&mut self, key: HeapKey) -> Option<&mut E> {
        match self.slots.get_mut(key.index as usize) {
            Some(Slot::Live { generation, item }) if *generation == key.generation => Some(item),
            _ => None,
        }
    }

    /// The record at `index`, whatever its generation: the heaps address live entries by index.
    pub(super) fn at(&self, index: u32) -> Option<&E> {
        match &self.slots[index as usize] {
            Slot::Live { item, .. } => Some(item),
            Slot::Free { .. } => None,
        }
    }

    pub(super) fn at_mut(&mut self, index: u32) -> &mut E {
        match &mut self.slots[index as usize] {
            Slot::Live { item, .. } => item,
            Slot::Free { .. } => unreachable!("heap points at free slot {index}"),
        }
    }

    /// Frees a live entry and returns its record.
    pub(super) fn remove_at(&mut self, index: u32) -> E {
        let slot = &mut self.slots[index as usize];
        let generation = match slot {
            Slot::Live { generation, .. } => generation.wrapping_add(1),
            Slot::Free { .. } => unreachable!("removing free slot {index}"),
        };
        let old = std::mem::replace(
            slot,
            Slot::Free {
                generation,
                next: self.free,
            },
        );
        self.free = index;
        self.len -= 1;
        match old {
            Slot::Live { item, .. } => item,
            Slot::Free { .. } => unreachable!(),
        }
    }
}
