//! Slots: append-only lists of timer references in insertion order, stored as chains of
//! fixed-size chunks drawn from one pool that every slot of the wheel shares.
//!
//! Chunks keep a slot's references contiguous in runs of [`CHUNK`], so a cascade reads them
//! sequentially and a push writes into a tail that is usually in cache; a slot that empties
//! returns its whole chain to the pool in O(1), and any other slot reuses it, so memory follows
//! the number of references in the wheel, not the peak size each slot ever had.
//!
//! A slot holding a single reference keeps it in its header, in `earliest_entry` (the one
//! reference is necessarily the earliest), and takes no chunk: most slots of the finer levels
//! hold one timer at a time when timers are sparse, and they then cost no chunk allocation,
//! write or release.
//!
//! Cancelling a timer frees its storage at once but leaves its reference here as a tombstone;
//! the reference carries the stamp the timer had when placed, so a tombstone never matches a
//! later timer in the same storage entry. Tombstones go when the slot is cascaded or fired,
//! when its last live timer leaves, and when they outnumber its live timers (`compact`).

/// References per chunk: 256 bytes, four cache lines.
pub(crate) const CHUNK: usize = 32;

/// Tombstones a slot may hold per live reference before it is swept.
pub(crate) const TOMBSTONES_PER_LIVE: usize = 1;

/// No chunk, no storage index.
pub(crate) const NIL: u32 = u32::MAX;

/// A reference from a slot to a timer: its storage index and the stamp it was placed with.
/// Eight bytes: a cascade reads the timer's deadline from its storage entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotEntry {
    pub(crate) index: u32,
    pub(crate) stamp: u32,
}

/// No reference.
const NO_ENTRY: SlotEntry = SlotEntry {
    index: NIL,
    stamp: 0,
};

#[derive(Copy, Clone)]
struct Chunk {
    refs: [SlotEntry; CHUNK],
    /// Next chunk of the same slot, or of the free list.
    next: u32,
}

/// The chunks of every slot, and a free list of chunks no slot holds.
pub(crate) struct Pool {
    chunks: Vec<Chunk>,
    free: u32,
}

impl Pool {
    pub(crate) const fn new() -> Self {
        Pool {
            chunks: Vec::new(),
            free: NIL,
        }
    }

    #[inline]
    fn alloc(&mut self) -> u32 {
        if self.free != NIL {
            let chunk = self.free;
            self.free = self.chunks[chunk as usize].next;
            self.chunks[chunk as usize].next = NIL;
            return chunk;
        }
        self.grow()
    }

    #[cold]
    fn grow(&mut self) -> u32 {
        let chunk = u32::try_from(self.chunks.len())
            .ok()
            .filter(|&chunk| chunk != NIL)
            .expect("tierwheel: chunk pool exhausted");
        grow_gently(&mut self.chunks);
        self.chunks.push(Chunk {
            refs: [NO_ENTRY; CHUNK],
            next: NIL,
        });
        chunk
    }

    /// Returns the chain `first..=last` to the free list in O(1).
    fn release(&mut self, first: u32, last: u32) {
        self.chunks[last as usize].next = self.free;
        self.free = first;
    }
}

/// Makes room for one more chunk, growing by a quarter instead of doubling: a pool of tens of
/// megabytes then wastes at most a fifth of itself, not up to half, for 1.25x more copying
/// while it grows. Steady state does not grow at all. (Timer storage never copies: it is a
/// `SegVec`. A segment of 1024 chunks would be 397 KB, too much to leave unused in a small
/// wheel.)
fn grow_gently(chunks: &mut Vec<Chunk>) {
    if chunks.len() == chunks.capacity() {
        chunks.reserve_exact((chunks.len() / 4).max(16));
    }
}

/// One slot: a chain of chunks holding references from `head` in `first` to `tail` in
/// `last`, and the counts that let cancel and `next_deadline` avoid walking it. With one
/// reference and no chunk (`len == 1`, `first == NIL`), the reference is `earliest_entry`.
#[derive(Debug)]
pub(crate) struct Slot {
    first: u32,
    last: u32,
    /// First unconsumed reference in `first`.
    head: u32,
    /// References written in `last`; `CHUNK` when the slot has no chunk, so that one
    /// comparison sends every push that needs a chunk to the slow path.
    tail: u32,
    /// Unconsumed references, tombstones included. A `usize`: with tombstones, one slot may
    /// hold more references than there are `u32` timer keys.
    len: usize,
    /// References whose timer is still placed here.
    pub(crate) live: u32,
    /// Smallest effective deadline placed here since the slot was last empty, in ticks, and
    /// the reference that brought it (index `NIL` if none). Exact while that reference is
    /// live; a lower bound after. A slot's only reference, when it has no chunk.
    pub(crate) earliest: u64,
    pub(crate) earliest_entry: SlotEntry,
    /// Effective deadline of the last reference pushed, in ticks.
    latest: u64,
    /// Whether references were pushed in deadline order (each at or after the one before),
    /// so the first live reference is the earliest.
    pub(crate) in_order: bool,
    /// Whether a timer due at `earliest` has left, so the cached earliest may be a bound only.
    pub(crate) stale: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            first: NIL,
            last: NIL,
            head: 0,
            tail: CHUNK as u32,
            len: 0,
            live: 0,
            earliest: u64::MAX,
            earliest_entry: NO_ENTRY,
            latest: 0,
            in_order: true,
            stale: false,
        }
    }
}

impl Slot {
    /// References held, tombstones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether tombstones outnumber live references by more than `TOMBSTONES_PER_LIVE` to one
    /// (and the slot is past two chunks). A sweep reads every reference once and removes more
    /// tombstones than there are live references, so it costs under two reads per tombstone,
    /// and a slot holds at most `TOMBSTONES_PER_LIVE + 1` references per live timer.
    #[inline]
    pub(crate) fn should_compact(&self) -> bool {
        let live = self.live as usize;
        self.len >= 2 * CHUNK && self.len - live > TOMBSTONES_PER_LIVE * live
    }

    /// Appends a live reference to a timer with effective deadline `deadline`.
    #[inline(always)]
    pub(crate) fn push(&mut self, pool: &mut Pool, entry: SlotEntry, deadline: u64) {
        if self.tail as usize >= CHUNK {
            self.push_slow(pool, entry, deadline);
            return;
        }
        pool.chunks[self.last as usize].refs[self.tail as usize] = entry;
        self.pushed(entry, deadline);
    }

    /// `push` into a slot whose last chunk is full, or that has none.
    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, pool: &mut Pool, entry: SlotEntry, deadline: u64) {
        if self.len == 0 {
            // The only reference: it stays in the header, as the earliest.
            debug_assert!(self.first == NIL && self.earliest_entry == NO_ENTRY);
            (self.len, self.live) = (1, 1);
            (self.earliest, self.earliest_entry) = (deadline, entry);
            (self.latest, self.in_order, self.stale) = (deadline, true, false);
            return;
        }
        self.add_chunk(pool);
        pool.chunks[self.last as usize].refs[self.tail as usize] = entry;
        self.pushed(entry, deadline);
    }

    /// The bookkeeping of a reference just written at `tail`.
    #[inline(always)]
    fn pushed(&mut self, entry: SlotEntry, deadline: u64) {
        self.tail += 1;
        self.len += 1;
        self.live += 1;
        if deadline < self.earliest || self.earliest_entry == NO_ENTRY {
            self.earliest = deadline;
            self.earliest_entry = entry;
            self.stale = false;
        }
        self.in_order &= deadline >= self.latest;
        self.latest = deadline;
    }

    #[inline]
    fn add_chunk(&mut self, pool: &mut Pool) {
        let chunk = pool.alloc();
        if self.first == NIL {
            (self.first, self.head) = (chunk, 0);
            (self.last, self.tail) = (chunk, 0);
            if self.len == 1 {
                // The header's only reference goes first into the chunk.
                pool.chunks[chunk as usize].refs[0] = self.earliest_entry;
                self.tail = 1;
            }
        } else {
            pool.chunks[self.last as usize].next = chunk;
            (self.last, self.tail) = (chunk, 0);
        }
    }

    /// Whether the slot's only reference is held in its header.
    #[inline]
    fn inline(&self) -> bool {
        self.first == NIL && self.len == 1
    }

    /// The first unconsumed reference, live or not.
    pub(crate) fn front(&self, pool: &Pool) -> Option<SlotEntry> {
        if self.inline() {
            return Some(self.earliest_entry);
        }
        (self.len > 0).then(|| pool.chunks[self.first as usize].refs[self.head as usize])
    }

    /// Empties a slot that holds exactly one reference in its header and returns it; `None`,
    /// and nothing changes, for any other slot.
    #[inline]
    pub(crate) fn take_single(&mut self) -> Option<SlotEntry> {
        if !self.inline() {
            return None;
        }
        let entry = self.earliest_entry;
        *self = Slot::default();
        Some(entry)
    }

    /// Consumes and returns the first reference, live or not.
    #[inline]
    pub(crate) fn pop_front(&mut self, pool: &mut Pool) -> Option<SlotEntry> {
        if self.len == 0 {
            return None;
        }
        if self.inline() {
            let (entry, live) = (self.earliest_entry, self.live);
            *self = Slot::default();
            self.live = live;
            return Some(entry);
        }
        let entry = pool.chunks[self.first as usize].refs[self.head as usize];
        self.head += 1;
        self.len -= 1;
        if self.len == 0 {
            let live = self.live;
            self.clear(pool);
            self.live = live;
        } else if self.head == CHUNK as u32 {
            let next = pool.chunks[self.first as usize].next;
            pool.release(self.first, self.first);
            (self.first, self.head) = (next, 0);
        }
        Some(entry)
    }

    /// Empties the slot and hands its references, in order, to `each`, which may push into
    /// other slots of the same pool. `ahead` sees each chunk's references before `each` does,
    /// to prefetch what `each` will read.
    pub(crate) fn drain(
        &mut self,
        pool: &mut Pool,
        mut ahead: impl FnMut(SlotEntry),
        mut each: impl FnMut(&mut Pool, SlotEntry),
    ) {
        if self.inline() {
            // Into a chunk, so that `each` has one call site and is inlined into the loop.
            // Hot callers take a single reference out with `take_single` first.
            self.add_chunk(pool);
        }
        let (mut chunk, mut start, mut remaining) = (self.first, self.head as usize, self.len());
        let (first, last) = (self.first, self.last);
        *self = Slot::default();
        while remaining > 0 {
            let end = CHUNK.min(start + remaining);
            pool.chunks[chunk as usize].refs[start..end]
                .iter()
                .for_each(|&entry| ahead(entry));
            for at in start..end {
                // Read one at a time: `each` may grow the pool, which moves the chunks.
                let entry = pool.chunks[chunk as usize].refs[at];
                each(pool, entry);
            }
            remaining -= end - start;
            (chunk, start) = (pool.chunks[chunk as usize].next, 0);
        }
        if first != NIL {
            pool.release(first, last);
        }
    }

    /// Keeps the references for which `keep` is true, in order, and frees the chunks left over.
    /// `ahead` sees each chunk's references before `keep` does, as in [`drain`](Self::drain).
    pub(crate) fn retain(
        &mut self,
        pool: &mut Pool,
        mut ahead: impl FnMut(SlotEntry),
        mut keep: impl FnMut(SlotEntry) -> bool,
    ) {
        if self.inline() {
            ahead(self.earliest_entry);
            if !keep(self.earliest_entry) {
                let live = self.live;
                *self = Slot::default();
                self.live = live;
            }
            return;
        }
        if self.first == NIL {
            return;
        }
        let (mut read_chunk, mut read, mut remaining) =
            (self.first, self.head as usize, self.len());
        let (mut write_chunk, mut write, mut kept) = (self.first, 0, 0);
        loop {
            let end = CHUNK.min(read + remaining);
            remaining -= end - read;
            pool.chunks[read_chunk as usize].refs[read..end]
                .iter()
                .for_each(|&entry| ahead(entry));
            while read < end {
                if write == CHUNK {
                    write_chunk = pool.chunks[write_chunk as usize].next;
                    write = 0;
                }
                let before = write;
                // Every reference read is written at `write`, which moves on only past those
                // kept: no branch on `keep`, which a sweep finds true and false at random.
                // Writes land on references already read, so clobbering them is harmless.
                if write_chunk == read_chunk {
                    // Writing behind the read position of the same chunk: never overtakes it.
                    let refs = &mut pool.chunks[read_chunk as usize].refs;
                    for at in read..end {
                        let entry = refs[at];
                        refs[write % CHUNK] = entry;
                        write += usize::from(keep(entry));
                    }
                    read = end;
                } else {
                    let [from, to] = pool
                        .chunks
                        .get_disjoint_mut([read_chunk as usize, write_chunk as usize])
                        .expect("the read and write chunks differ");
                    while read < end && write < CHUNK {
                        let entry = from.refs[read];
                        read += 1;
                        to.refs[write] = entry;
                        write += usize::from(keep(entry));
                    }
                }
                kept += write - before;
            }
            if remaining == 0 {
                break;
            }
            (read_chunk, read) = (pool.chunks[read_chunk as usize].next, 0);
        }
        if kept == 0 {
            let live = self.live;
            self.clear(pool);
            self.live = live;
            return;
        }
        let after = pool.chunks[write_chunk as usize].next;
        if after != NIL {
            pool.release(after, self.last);
            pool.chunks[write_chunk as usize].next = NIL;
        }
        (self.last, self.head, self.tail) = (write_chunk, 0, write as u32);
        self.len = kept;
    }

    /// Forgets every reference and returns the chunks to the pool.
    pub(crate) fn clear(&mut self, pool: &mut Pool) {
        if self.first != NIL {
            pool.release(self.first, self.last);
        }
        *self = Slot::default();
    }

    /// Visits the unconsumed references in order.
    pub(crate) fn for_each(&self, pool: &Pool, mut each: impl FnMut(SlotEntry)) {
        if self.inline() {
            each(self.earliest_entry);
            return;
        }
        let (mut chunk, mut start, mut remaining) = (self.first, self.head as usize, self.len());
        while remaining > 0 {
            let Chunk { refs, next } = &pool.chunks[chunk as usize];
            let end = CHUNK.min(start + remaining);
            refs[start..end].iter().for_each(|&entry| each(entry));
            remaining -= end - start;
            (chunk, start) = (*next, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u32) -> SlotEntry {
        SlotEntry { index, stamp: 0 }
    }

    fn collect(slot: &Slot, pool: &Pool) -> Vec<u32> {
        let mut out = Vec::new();
        slot.for_each(pool, |e| out.push(e.index));
        out
    }

    #[test]
    fn push_pop_across_chunk_boundaries() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        for n in [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            for i in 0..n as u32 {
                slot.push(&mut pool, entry(i), 0);
            }
            assert_eq!(collect(&slot, &pool), (0..n as u32).collect::<Vec<_>>());
            for i in 0..n as u32 {
                assert_eq!(slot.pop_front(&mut pool), Some(entry(i)));
            }
            assert_eq!(slot.pop_front(&mut pool), None);
            slot.live = 0;
            assert_eq!(slot.first, NIL);
        }
        // Every chunk went back to the pool: the next round reuses them.
        let held = pool.chunks.len();
        for i in 0..3 * CHUNK as u32 {
            slot.push(&mut pool, entry(i), 0);
        }
        assert_eq!(pool.chunks.len(), held);
    }

    #[test]
    fn a_single_reference_lives_in_the_header_until_a_second_arrives() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        slot.push(&mut pool, entry(7), 5);
        assert_eq!(
            (pool.chunks.len(), slot.first),
            (0, NIL),
            "no chunk for one reference"
        );
        assert_eq!((slot.len(), slot.front(&pool)), (1, Some(entry(7))));
        assert_eq!(collect(&slot, &pool), [7]);
        // A second reference moves the first into a chunk, in order.
        slot.push(&mut pool, entry(8), 3);
        assert_eq!(pool.chunks.len(), 1);
        assert_eq!(collect(&slot, &pool), [7, 8]);
        assert_eq!((slot.earliest, slot.earliest_entry), (3, entry(8)));
        slot.clear(&mut pool);

        slot.push(&mut pool, entry(9), 1);
        assert_eq!(slot.take_single(), Some(entry(9)));
        assert_eq!((slot.len(), slot.take_single()), (0, None));

        slot.push(&mut pool, entry(10), 1);
        assert_eq!(slot.pop_front(&mut pool), Some(entry(10)));
        assert_eq!((slot.len(), slot.first), (0, NIL));

        slot.push(&mut pool, entry(11), 1);
        slot.retain(&mut pool, |_| {}, |_| true);
        assert_eq!(collect(&slot, &pool), [11]);
        slot.retain(&mut pool, |_| {}, |_| false);
        assert_eq!(slot.len(), 0);

        // `drain` of a single reference hands it out like any other.
        slot.push(&mut pool, entry(12), 1);
        let mut out = Vec::new();
        slot.drain(&mut pool, |_| {}, |_, e| out.push(e.index));
        assert_eq!((out, slot.len()), (vec![12], 0));
    }

    #[test]
    fn retain_keeps_order_and_frees_the_rest() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        for i in 0..5 * CHUNK as u32 + 3 {
            slot.push(&mut pool, entry(i), 0);
        }
        slot.pop_front(&mut pool);
        slot.retain(&mut pool, |_| {}, |e| e.index % 3 == 0);
        let expected: Vec<u32> = (1..5 * CHUNK as u32 + 3).filter(|i| i % 3 == 0).collect();
        assert_eq!(collect(&slot, &pool), expected);
        assert_eq!(slot.len(), expected.len());
        slot.push(&mut pool, entry(999), 0);
        assert_eq!(collect(&slot, &pool).last(), Some(&999));
        slot.retain(&mut pool, |_| {}, |_| false);
        assert_eq!((slot.len(), slot.first), (0, NIL));
    }

    #[test]
    fn drain_hands_out_everything_in_order() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        let mut other = Slot::default();
        for i in 0..2 * CHUNK as u32 + 5 {
            slot.push(&mut pool, entry(i), 0);
        }
        slot.pop_front(&mut pool);
        slot.drain(&mut pool, |_| {}, |pool, e| other.push(pool, e, 0));
        assert_eq!(
            collect(&other, &pool),
            (1..2 * CHUNK as u32 + 5).collect::<Vec<_>>()
        );
        assert_eq!(slot.len(), 0);
    }
}
