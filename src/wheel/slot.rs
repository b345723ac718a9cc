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
//! Cancelling a timer frees its storage at once and overwrites its reference here with
//! [`DEAD`], at the location its storage entry held: a tombstone. Tombstones go when the slot is
//! cascaded or fired, when its last live timer leaves, and when they outnumber its live timers
//! (`compact`).

/// References per chunk: 128 bytes, two cache lines.
pub(crate) const CHUNK: usize = 32;

/// `log2(CHUNK)`: a reference's location in the pool is `chunk << CHUNK_BITS | offset`.
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();

/// Tombstones a slot may hold per live reference before it is swept.
pub(crate) const TOMBSTONES_PER_LIVE: usize = 1;

/// No chunk.
pub(crate) const NIL: u32 = u32::MAX;

/// A reference from a slot to a timer: the timer's storage index, or [`DEAD`].
pub(crate) type SlotEntry = u32;

/// What a cancelled or rescheduled timer leaves of its reference: a tombstone, swept later.
pub(crate) const DEAD: SlotEntry = u32::MAX;

/// Locations of the references in a slot's header (one per slot: `HEADER_AT + slot number`,
/// the slot's only reference when it has no chunk) start here. Every live timer's storage entry
/// holds the location of its reference, so that cancel can turn the reference into a tombstone.
/// Locations below [`RUN_AT`] are in the pool; those from `RUN_AT` are the run's.
pub(crate) const HEADER_AT: u32 = u32::MAX - 1024;

/// Locations of the run's references (`RUN_AT + position`) start here.
pub(crate) const RUN_AT: u32 = HEADER_AT - super::run::RUN_MAX as u32;

/// Chunks the pool may hold: every reference location must stay below [`RUN_AT`].
const MAX_CHUNKS: u32 = RUN_AT >> CHUNK_BITS;

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
            .filter(|&chunk| chunk < MAX_CHUNKS)
            .expect("tierwheel: chunk pool exhausted");
        grow_gently(&mut self.chunks);
        self.chunks.push(Chunk {
            refs: [DEAD; CHUNK],
            next: NIL,
        });
        chunk
    }

    /// Returns the chain `first..=last` to the free list in O(1).
    fn release(&mut self, first: u32, last: u32) {
        self.chunks[last as usize].next = self.free;
        self.free = first;
    }

    /// Turns the reference at pool location `at` into a tombstone.
    #[inline]
    pub(crate) fn kill(&mut self, at: u32) {
        debug_assert!(at < RUN_AT, "kill of the non-pool location {at}");
        self.chunks[(at >> CHUNK_BITS) as usize].refs[at as usize % CHUNK] = DEAD;
    }
}

/// The pool location of offset `at` of `chunk`.
#[inline]
fn location(chunk: u32, at: usize) -> u32 {
    chunk << CHUNK_BITS | at as u32
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
    /// the storage index of the timer that brought it (`NIL` if none). Exact unless `stale`.
    /// A slot's only reference, when it has no chunk.
    pub(crate) earliest: u64,
    pub(crate) earliest_entry: SlotEntry,
    /// Effective deadline of the last reference pushed, in ticks.
    latest: u64,
    /// Whether references were pushed in deadline order (each at or after the one before),
    /// so the first live reference is the earliest.
    pub(crate) in_order: bool,
    /// Whether the timer `earliest_entry` has left, so the cached earliest may be a bound only.
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
            earliest_entry: NIL,
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

    /// Appends a live reference to the timer at storage `index`, with effective deadline
    /// `deadline`, and returns its location. `header` is the location of this slot's header;
    /// `moved` is told of the reference already here that moves out of the header into the
    /// first chunk, if the slot held just that one.
    #[inline(always)]
    pub(crate) fn push(
        &mut self,
        pool: &mut Pool,
        index: SlotEntry,
        deadline: u64,
        header: u32,
        moved: impl FnOnce(SlotEntry, u32),
    ) -> u32 {
        if self.tail as usize >= CHUNK {
            return self.push_slow(pool, index, deadline, header, moved);
        }
        self.append(pool, index, deadline)
    }

    /// `push` into a slot whose last chunk is full, or that has none.
    #[cold]
    #[inline(never)]
    fn push_slow(
        &mut self,
        pool: &mut Pool,
        index: SlotEntry,
        deadline: u64,
        header: u32,
        moved: impl FnOnce(SlotEntry, u32),
    ) -> u32 {
        if self.len == 0 {
            // The only reference: it stays in the header, as the earliest.
            debug_assert!(self.first == NIL && self.earliest_entry == NIL);
            (self.len, self.live) = (1, 1);
            (self.earliest, self.earliest_entry) = (deadline, index);
            (self.latest, self.in_order, self.stale) = (deadline, true, false);
            return header;
        }
        if self.add_chunk(pool) {
            moved(self.earliest_entry, location(self.first, 0));
        }
        self.append(pool, index, deadline)
    }

    /// Writes a reference at `tail` of the last chunk, which has room, and returns its
    /// location. Inlined into `push`, which has just checked the room, so the write needs no
    /// bounds check there.
    #[inline(always)]
    fn append(&mut self, pool: &mut Pool, index: SlotEntry, deadline: u64) -> u32 {
        pool.chunks[self.last as usize].refs[self.tail as usize] = index;
        let at = location(self.last, self.tail as usize);
        self.tail += 1;
        self.len += 1;
        self.live += 1;
        if deadline < self.earliest || self.earliest_entry == NIL {
            self.earliest = deadline;
            self.earliest_entry = index;
            self.stale = false;
        }
        self.in_order &= deadline >= self.latest;
        self.latest = deadline;
        at
    }

    /// Starts a new last chunk. Returns whether the header's only reference moved into it.
    #[inline]
    fn add_chunk(&mut self, pool: &mut Pool) -> bool {
        let chunk = pool.alloc();
        if self.first == NIL {
            (self.first, self.head) = (chunk, 0);
            (self.last, self.tail) = (chunk, 0);
            if self.len == 1 {
                // The header's only reference goes first into the chunk.
                pool.chunks[chunk as usize].refs[0] = self.earliest_entry;
                self.tail = 1;
                return true;
            }
        } else {
            pool.chunks[self.last as usize].next = chunk;
            (self.last, self.tail) = (chunk, 0);
        }
        false
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
    /// to prefetch what `each` will read; both get `cx`. Each chunk goes back to the pool as
    /// soon as it is read, so that a cascade needs no more chunks than it moves references.
    pub(crate) fn drain<C: ?Sized>(
        &mut self,
        pool: &mut Pool,
        cx: &mut C,
        ahead: impl Fn(&C, SlotEntry),
        mut each: impl FnMut(&mut C, &mut Pool, SlotEntry),
    ) {
        if self.inline() {
            // Into a chunk, so that `each` has one call site and is inlined into the loop.
            // Hot callers take a single reference out with `take_single` first.
            self.add_chunk(pool);
        }
        let (mut chunk, mut start, mut remaining) = (self.first, self.head as usize, self.len());
        *self = Slot::default();
        while remaining > 0 {
            let end = CHUNK.min(start + remaining);
            pool.chunks[chunk as usize].refs[start..end]
                .iter()
                .for_each(|&entry| ahead(cx, entry));
            // Out of the chunk first: `each` may grow the pool, which moves the chunks, and
            // may reuse this one once it is released.
            let Chunk { refs, next } = pool.chunks[chunk as usize];
            pool.release(chunk, chunk);
            for &entry in &refs[start..end] {
                each(cx, pool, entry);
            }
            remaining -= end - start;
            (chunk, start) = (next, 0);
        }
    }

    /// Drops the tombstones, keeping the live references in order, and frees the chunks left
    /// over. `moved` is told the new location of each live reference that moves.
    pub(crate) fn retain(&mut self, pool: &mut Pool, mut moved: impl FnMut(SlotEntry, u32)) {
        if self.first == NIL {
            // No chunk: no reference, or the header's only one, which is live.
            return;
        }
        let (mut read_chunk, mut read, mut remaining) =
            (self.first, self.head as usize, self.len());
        let (mut write_chunk, mut write, mut kept) = (self.first, 0, 0);
        loop {
            let end = CHUNK.min(read + remaining);
            remaining -= end - read;
            while read < end {
                if write == CHUNK {
                    write_chunk = pool.chunks[write_chunk as usize].next;
                    write = 0;
                }
                let before = write;
                // Every reference read is written at `write`, which moves on only past those
                // kept: no branch on liveness, which a sweep finds true and false at random.
                // Writes land on references already read, so clobbering them is harmless.
                if write_chunk == read_chunk {
                    // Writing behind the read position of the same chunk: never overtakes it.
                    let refs = &mut pool.chunks[read_chunk as usize].refs;
                    for at in read..end {
                        let entry = refs[at];
                        refs[write % CHUNK] = entry;
                        write += usize::from(entry != DEAD);
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
                        write += usize::from(entry != DEAD);
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
        // Second pass, over the references kept, all of them live: their new locations. (Those
        // that did not move are told their location again; finding the first that did would
        // cost a branch per reference in the sweep.)
        let mut chunk = self.first;
        loop {
            let end = if chunk == self.last { write } else { CHUNK };
            let Chunk { refs, next } = &pool.chunks[chunk as usize];
            let base = location(chunk, 0);
            for (at, &entry) in refs[..end].iter().enumerate() {
                moved(entry, base | at as u32);
            }
            if chunk == self.last {
                break;
            }
            chunk = *next;
        }
    }

    /// Whether the reference `earliest_entry` names is among the slot's (a tombstone never is),
    /// for tests.
    #[cfg(test)]
    pub(crate) fn holds_earliest(&self, pool: &Pool) -> bool {
        let mut found = false;
        self.for_each(pool, HEADER_AT, |entry, _| {
            found |= entry == self.earliest_entry
        });
        found
    }

    /// Forgets every reference and returns the chunks to the pool.
    pub(crate) fn clear(&mut self, pool: &mut Pool) {
        if self.first != NIL {
            pool.release(self.first, self.last);
        }
        *self = Slot::default();
    }

    /// Visits the unconsumed references in order, with their locations (`header` for the
    /// header's only reference).
    pub(crate) fn for_each(&self, pool: &Pool, header: u32, mut each: impl FnMut(SlotEntry, u32)) {
        if self.inline() {
            each(self.earliest_entry, header);
            return;
        }
        let (mut chunk, mut start, mut remaining) = (self.first, self.head as usize, self.len());
        while remaining > 0 {
            let Chunk { refs, next } = &pool.chunks[chunk as usize];
            let end = CHUNK.min(start + remaining);
            for (at, &entry) in refs.iter().enumerate().take(end).skip(start) {
                each(entry, location(chunk, at));
            }
            remaining -= end - start;
            (chunk, start) = (*next, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: u32 = HEADER_AT;

    /// Pushes `index`, checking that a header reference moving to a chunk is reported.
    fn push(slot: &mut Slot, pool: &mut Pool, index: u32, deadline: u64) -> u32 {
        let before = slot.inline().then_some(slot.earliest_entry);
        let mut reported = None;
        let at = slot.push(pool, index, deadline, HEADER, |entry, to| {
            reported = Some((entry, to));
        });
        if let Some(entry) = before {
            assert_eq!(reported, Some((entry, location(slot.first, 0))));
        } else {
            assert_eq!(reported, None);
        }
        at
    }

    fn collect(slot: &Slot, pool: &Pool) -> Vec<u32> {
        let mut out = Vec::new();
        slot.for_each(pool, HEADER, |e, _| out.push(e));
        out
    }

    fn locations(slot: &Slot, pool: &Pool) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        slot.for_each(pool, HEADER, |e, at| out.push((e, at)));
        out
    }

    #[test]
    fn push_pop_across_chunk_boundaries() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        for n in [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let mut at = Vec::new();
            for i in 0..n as u32 {
                at.push((i, push(&mut slot, &mut pool, i, 0)));
                if i == 1 {
                    // The first moved from the header into the first chunk.
                    at[0].1 = location(slot.first, 0);
                }
            }
            // What `push` returned is where the references are.
            assert_eq!(locations(&slot, &pool), at);
            assert_eq!(collect(&slot, &pool), (0..n as u32).collect::<Vec<_>>());
            for i in 0..n as u32 {
                assert_eq!(slot.pop_front(&mut pool), Some(i));
            }
            assert_eq!(slot.pop_front(&mut pool), None);
            slot.live = 0;
            assert_eq!(slot.first, NIL);
        }
        // Every chunk went back to the pool: the next round reuses them.
        let held = pool.chunks.len();
        for i in 0..3 * CHUNK as u32 {
            push(&mut slot, &mut pool, i, 0);
        }
        assert_eq!(pool.chunks.len(), held);
    }

    #[test]
    fn a_single_reference_lives_in_the_header_until_a_second_arrives() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        assert_eq!(push(&mut slot, &mut pool, 7, 5), HEADER);
        assert_eq!(
            (pool.chunks.len(), slot.first),
            (0, NIL),
            "no chunk for one reference"
        );
        assert_eq!((slot.len(), slot.front(&pool)), (1, Some(7)));
        assert_eq!(locations(&slot, &pool), [(7, HEADER)]);
        // A second reference moves the first into a chunk, in order.
        push(&mut slot, &mut pool, 8, 3);
        assert_eq!(pool.chunks.len(), 1);
        assert_eq!(collect(&slot, &pool), [7, 8]);
        assert_eq!((slot.earliest, slot.earliest_entry), (3, 8));
        slot.clear(&mut pool);

        push(&mut slot, &mut pool, 9, 1);
        assert_eq!(slot.take_single(), Some(9));
        assert_eq!((slot.len(), slot.take_single()), (0, None));

        push(&mut slot, &mut pool, 10, 1);
        assert_eq!(slot.pop_front(&mut pool), Some(10));
        assert_eq!((slot.len(), slot.first), (0, NIL));

        push(&mut slot, &mut pool, 11, 1);
        slot.retain(&mut pool, |_, _| panic!("nothing moves"));
        assert_eq!(collect(&slot, &pool), [11]);

        // `drain` of a single reference hands it out like any other.
        let mut out = Vec::new();
        slot.drain(&mut pool, &mut (), |_, _| {}, |_, _, e| out.push(e));
        assert_eq!((out, slot.len()), (vec![11], 0));
    }

    #[test]
    fn retain_keeps_order_reports_moves_and_frees_the_rest() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        let mut at = Vec::new();
        for i in 0..5 * CHUNK as u32 + 3 {
            at.push(push(&mut slot, &mut pool, i, 0));
        }
        slot.pop_front(&mut pool);
        for i in 1..5 * CHUNK as u32 + 3 {
            if i % 3 != 0 {
                pool.kill(at[i as usize]);
            }
        }
        let mut moves = Vec::new();
        slot.retain(&mut pool, |e, to| moves.push((e, to)));
        let expected: Vec<u32> = (1..5 * CHUNK as u32 + 3).filter(|i| i % 3 == 0).collect();
        assert_eq!(collect(&slot, &pool), expected);
        assert_eq!(slot.len(), expected.len());
        // Every reference kept is reported where it now is.
        assert_eq!(moves, locations(&slot, &pool));
        push(&mut slot, &mut pool, 999, 0);
        assert_eq!(collect(&slot, &pool).last(), Some(&999));
        let everything: Vec<u32> = locations(&slot, &pool).iter().map(|&(_, at)| at).collect();
        for at in everything {
            pool.kill(at);
        }
        slot.retain(&mut pool, |_, _| panic!("nothing is kept"));
        assert_eq!((slot.len(), slot.first), (0, NIL));
    }

    #[test]
    fn drain_hands_out_everything_in_order_and_frees_as_it_goes() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        let mut other = Slot::default();
        for i in 0..2 * CHUNK as u32 + 5 {
            push(&mut slot, &mut pool, i, 0);
        }
        slot.pop_front(&mut pool);
        let held = pool.chunks.len();
        slot.drain(
            &mut pool,
            &mut (),
            |_, _| {},
            |_, pool, e| {
                other.push(pool, e, 0, HEADER, |_, _| {});
            },
        );
        assert_eq!(
            collect(&other, &pool),
            (1..2 * CHUNK as u32 + 5).collect::<Vec<_>>()
        );
        assert_eq!(slot.len(), 0);
        // The source's chunks were reused for the destination as they emptied.
        assert!(
            pool.chunks.len() <= held + 1,
            "{} chunks",
            pool.chunks.len()
        );
    }
}
