//! Slots: append-only lists of timer references in the order they were filed, stored as chains
//! of fixed-size chunks drawn from one pool that every slot of the wheel shares.
//!
//! Chunks keep a slot's references contiguous in runs of [`CHUNK`], so a cascade reads them
//! sequentially and a push writes into a tail that is usually in cache; a slot that empties
//! returns its whole chain to the pool in O(1), and any other slot reuses it, so memory follows
//! the number of references in the wheel, not the peak size each slot ever had.
//!
//! A slot holding a single reference keeps it in its header and takes no chunk: most slots of
//! the finer levels hold one timer at a time when timers are sparse, and they then cost no
//! chunk allocation, write or release.
//!
//! A reference is `(storage index, placement)` ([`Ref`]); a cancelled or moved timer leaves its
//! reference behind, stale, and nothing writes to it. The slot counts its live timers, so it
//! knows how many of its references are stale, and sweeps them out when they outnumber the live
//! ones; cascades and fires skip them.

use crate::slab::{ref_index, Ref};

/// References per chunk: 256 bytes, four cache lines.
pub(crate) const CHUNK: usize = 32;

/// No chunk, no block, no storage index.
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Copy, Clone)]
struct Chunk {
    refs: [Ref; CHUNK],
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
            refs: [0; CHUNK],
            next: NIL,
        });
        chunk
    }

    /// Returns the chain `first..=last` to the free list in O(1).
    fn release(&mut self, first: u32, last: u32) {
        self.chunks[last as usize].next = self.free;
        self.free = first;
    }

    /// Chunks some slot holds, for tests.
    #[cfg(test)]
    pub(crate) fn chunks_in_use(&self) -> usize {
        let mut free = 0;
        let mut chunk = self.free;
        while chunk != NIL {
            free += 1;
            chunk = self.chunks[chunk as usize].next;
        }
        self.chunks.len() - free
    }
}

/// Makes room for one more chunk, doubling: growth copies each chunk about once in all.
/// Steady state does not grow at all.
fn grow_gently(chunks: &mut Vec<Chunk>) {
    if chunks.len() == chunks.capacity() {
        chunks.reserve_exact(chunks.len().max(16));
    }
}

/// One slot: a chain of chunks holding references from `head` in `first` to `tail` in
/// `last`, or (with one reference and no chunk) the reference in `single`; or, if `child` is
/// set, no references at all: the slot is split, and the block `child` holds its timers.
///
/// The header also caches the slot's earliest timer, by (deadline, stamp), so that
/// `next_deadline` and `peek` need not read the references.
#[derive(Debug)]
pub(crate) struct Slot {
    first: u32,
    last: u32,
    /// First unconsumed reference in `first`.
    head: u32,
    /// References written in `last`; `CHUNK` when the slot has no chunk, so that one
    /// comparison sends every push that needs a chunk to the slow path.
    tail: u32,
    /// Unconsumed references, stale ones included. A `usize`: with stale references, one slot
    /// may hold more references than there are `u32` storage indices.
    len: usize,
    /// The slot's only reference, when it has one and no chunk.
    single: Ref,
    /// Timers filed here: live references.
    pub(crate) live: u32,
    /// The block this slot is split into, or `NIL`.
    pub(crate) child: u32,
    /// The earliest (deadline, stamp) of the timers filed here, and the storage index of the
    /// timer that has it (`NIL` if none). Exact unless `stale`; when stale, a lower bound.
    pub(crate) earliest: u64,
    pub(crate) earliest_stamp: u64,
    pub(crate) earliest_index: u32,
    /// Whether the timer `earliest_index` has left or moved, so the cache may be a bound only.
    pub(crate) stale: bool,
    /// Whether the references were pushed in stamp order, so that in a level-0 slot (where
    /// every timer has the same effective deadline) the first live one is the earliest. Lazy
    /// moves never happen in level-0 slots.
    pub(crate) stamp_order: bool,
    /// Stamp of the last reference pushed.
    latest_stamp: u64,
    /// Pushes and departures since the slot was last scanned: what pays for the next scan.
    pub(crate) touches: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            first: NIL,
            last: NIL,
            head: 0,
            tail: CHUNK as u32,
            len: 0,
            single: 0,
            live: 0,
            child: NIL,
            earliest: u64::MAX,
            earliest_stamp: u64::MAX,
            earliest_index: NIL,
            stale: false,
            stamp_order: true,
            latest_stamp: 0,
            touches: 0,
        }
    }
}

impl Slot {
    /// References held, stale ones included.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether stale references outnumber live ones (and the slot is past two chunks). A
    /// sweep reads every reference once and removes more stale ones than there are live ones,
    /// so it costs under two reads per stale reference, and a slot holds at most two
    /// references per live timer, plus two chunks.
    #[inline]
    pub(crate) fn should_sweep(&self) -> bool {
        let live = self.live as usize;
        self.len >= 2 * CHUNK && self.len - live > live
    }

    /// Appends a live reference to a timer with effective deadline `deadline` and stamp
    /// `stamp`, and counts it. Returns whether it became the slot's cached earliest.
    #[inline(always)]
    pub(crate) fn push(&mut self, pool: &mut Pool, r: Ref, deadline: u64, stamp: u64) -> bool {
        if self.tail as usize >= CHUNK {
            self.push_slow(pool, r);
        } else {
            pool.chunks[self.last as usize].refs[self.tail as usize] = r;
            self.tail += 1;
            self.len += 1;
        }
        self.note(r, deadline, stamp)
    }

    /// `push` of a timer whose stamp is newer than every stamp in the wheel (an insert, or a
    /// move at once): it cannot come before an equal deadline, nor break the stamp order.
    #[inline(always)]
    pub(crate) fn push_fresh(
        &mut self,
        pool: &mut Pool,
        r: Ref,
        deadline: u64,
        stamp: u64,
    ) -> bool {
        debug_assert!(
            stamp >= self.latest_stamp,
            "a fresh stamp older than the slot's"
        );
        if self.tail as usize >= CHUNK {
            self.push_slow(pool, r);
        } else {
            pool.chunks[self.last as usize].refs[self.tail as usize] = r;
            self.tail += 1;
            self.len += 1;
        }
        self.live += 1;
        self.touches = self.touches.saturating_add(1);
        let earliest = deadline < self.earliest || self.earliest_index == NIL;
        if earliest {
            (self.earliest, self.earliest_stamp) = (deadline, stamp);
            self.earliest_index = ref_index(r);
            self.stale = false;
        }
        self.latest_stamp = stamp;
        earliest
    }

    /// What a push of a live reference tells the header: counts, cache, orders.
    #[inline(always)]
    fn note(&mut self, r: Ref, deadline: u64, stamp: u64) -> bool {
        self.live += 1;
        self.touches = self.touches.saturating_add(1);
        let earliest =
            (deadline, stamp) < (self.earliest, self.earliest_stamp) || self.earliest_index == NIL;
        if earliest {
            (self.earliest, self.earliest_stamp) = (deadline, stamp);
            self.earliest_index = ref_index(r);
            self.stale = false;
        }
        self.stamp_order &= stamp >= self.latest_stamp;
        self.latest_stamp = stamp;
        earliest
    }

    /// `push` into a slot whose last chunk is full, or that has none.
    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, pool: &mut Pool, r: Ref) {
        if self.len == 0 {
            // The only reference: it stays in the header.
            debug_assert!(self.first == NIL && self.child == NIL);
            (self.single, self.len) = (r, 1);
            return;
        }
        self.add_chunk(pool);
        pool.chunks[self.last as usize].refs[self.tail as usize] = r;
        self.tail += 1;
        self.len += 1;
    }

    /// Starts a new last chunk; moves the header's only reference into it first.
    #[inline]
    fn add_chunk(&mut self, pool: &mut Pool) {
        let chunk = pool.alloc();
        if self.first == NIL {
            (self.first, self.head) = (chunk, 0);
            (self.last, self.tail) = (chunk, 0);
            if self.len == 1 {
                pool.chunks[chunk as usize].refs[0] = self.single;
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
    #[inline]
    pub(crate) fn front(&self, pool: &Pool) -> Option<Ref> {
        if self.inline() {
            return Some(self.single);
        }
        (self.len > 0).then(|| pool.chunks[self.first as usize].refs[self.head as usize])
    }

    /// Consumes and returns the first reference, live or not; the counts and the cache are the
    /// caller's to keep.
    #[inline]
    pub(crate) fn pop_front(&mut self, pool: &mut Pool) -> Option<Ref> {
        if self.len == 0 {
            return None;
        }
        if self.inline() {
            self.len = 0;
            return Some(self.single);
        }
        let r = pool.chunks[self.first as usize].refs[self.head as usize];
        self.head += 1;
        self.len -= 1;
        if self.len == 0 {
            pool.release(self.first, self.last);
            (self.first, self.last, self.head, self.tail) = (NIL, NIL, 0, CHUNK as u32);
        } else if self.head == CHUNK as u32 {
            let next = pool.chunks[self.first as usize].next;
            pool.release(self.first, self.first);
            (self.first, self.head) = (next, 0);
        }
        Some(r)
    }

    /// Empties the slot (references and header) and hands its references, in order, to
    /// `each`, which may push into other slots of the same pool. `ahead` sees each chunk's
    /// references before `each` does, to prefetch what `each` will read; both get `cx`. Each
    /// chunk goes back to the pool as soon as it is read, so that a cascade needs no more
    /// chunks than it moves references.
    pub(crate) fn drain<C: ?Sized>(
        &mut self,
        pool: &mut Pool,
        cx: &mut C,
        ahead: impl Fn(&C, Ref),
        mut each: impl FnMut(&mut C, &mut Pool, Ref),
    ) {
        if self.inline() {
            let r = self.single;
            *self = Slot::default();
            each(cx, pool, r);
            return;
        }
        let (mut chunk, mut start, mut remaining) = (self.first, self.head as usize, self.len);
        *self = Slot::default();
        while remaining > 0 {
            let end = CHUNK.min(start + remaining);
            pool.chunks[chunk as usize].refs[start..end]
                .iter()
                .for_each(|&r| ahead(cx, r));
            // Out of the chunk first: `each` may grow the pool, which moves the chunks, and
            // may reuse this one once it is released.
            let Chunk { refs, next } = pool.chunks[chunk as usize];
            pool.release(chunk, chunk);
            for &r in &refs[start..end] {
                each(cx, pool, r);
            }
            remaining -= end - start;
            (chunk, start) = (next, 0);
        }
    }

    /// Drops the references `keep` rejects, keeping the others in order, and frees the chunks
    /// left over. `ahead` sees each chunk's references first, as in `drain`. The counts and
    /// the cache are the caller's to keep.
    pub(crate) fn retain(
        &mut self,
        pool: &mut Pool,
        ahead: impl Fn(Ref),
        mut keep: impl FnMut(Ref) -> bool,
    ) {
        if self.first == NIL {
            if self.len == 1 && !keep(self.single) {
                self.len = 0;
            }
            return;
        }
        let (mut read_chunk, mut read, mut remaining) = (self.first, self.head as usize, self.len);
        let (mut write_chunk, mut write, mut kept) = (self.first, 0, 0);
        loop {
            let end = CHUNK.min(read + remaining);
            remaining -= end - read;
            pool.chunks[read_chunk as usize].refs[read..end]
                .iter()
                .for_each(|&r| ahead(r));
            while read < end {
                let r = pool.chunks[read_chunk as usize].refs[read];
                read += 1;
                if write == CHUNK {
                    write_chunk = pool.chunks[write_chunk as usize].next;
                    write = 0;
                }
                // Every reference read is written at `write`, which moves on only past those
                // kept: no branch on liveness, which a sweep finds true and false at random.
                // The write position never overtakes the read position (it trails it in the
                // same chunk or writes a chunk already read), so nothing unread is clobbered.
                let kept_here = keep(r);
                pool.chunks[write_chunk as usize].refs[write] = r;
                write += usize::from(kept_here);
                kept += usize::from(kept_here);
            }
            if remaining == 0 {
                break;
            }
            (read_chunk, read) = (pool.chunks[read_chunk as usize].next, 0);
        }
        if kept == 0 {
            pool.release(self.first, self.last);
            (self.first, self.last, self.head, self.tail, self.len) =
                (NIL, NIL, 0, CHUNK as u32, 0);
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

    /// Forgets every reference and resets the header.
    pub(crate) fn clear(&mut self, pool: &mut Pool) {
        if self.first != NIL {
            pool.release(self.first, self.last);
        }
        *self = Slot::default();
    }

    /// Forgets every reference but keeps the header's counts and cache, for a slot whose
    /// references are about to be pushed back (sorted): `restart` then `push`es them.
    pub(crate) fn restart(&mut self, pool: &mut Pool) {
        if self.first != NIL {
            pool.release(self.first, self.last);
        }
        (self.first, self.last, self.head, self.tail, self.len) = (NIL, NIL, 0, CHUNK as u32, 0);
        self.live = 0;
        (self.earliest, self.earliest_stamp, self.earliest_index) = (u64::MAX, u64::MAX, NIL);
        (self.stale, self.stamp_order, self.latest_stamp) = (false, true, 0);
    }

    /// Visits the unconsumed references in order.
    pub(crate) fn for_each(&self, pool: &Pool, mut each: impl FnMut(Ref)) {
        if self.inline() {
            each(self.single);
            return;
        }
        let (mut chunk, mut start, mut remaining) = (self.first, self.head as usize, self.len);
        while remaining > 0 {
            let end = CHUNK.min(start + remaining);
            let Chunk { refs, next } = &pool.chunks[chunk as usize];
            refs[start..end].iter().for_each(|&r| each(r));
            remaining -= end - start;
            (chunk, start) = (*next, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::make_ref;

    fn collect(slot: &Slot, pool: &Pool) -> Vec<Ref> {
        let mut out = Vec::new();
        slot.for_each(pool, |r| out.push(r));
        out
    }

    fn push(slot: &mut Slot, pool: &mut Pool, i: u32) {
        slot.push(pool, make_ref(i, 0), u64::from(i), u64::from(i));
    }

    #[test]
    fn pushes_and_pops_in_order_across_chunks() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        for i in 0..3 * CHUNK as u32 + 7 {
            push(&mut slot, &mut pool, i);
        }
        assert_eq!(slot.len(), 3 * CHUNK + 7);
        assert_eq!(slot.live as usize, 3 * CHUNK + 7);
        assert!(slot.stamp_order);
        for i in 0..3 * CHUNK as u32 + 7 {
            assert_eq!(slot.front(&pool), Some(make_ref(i, 0)));
            assert_eq!(slot.pop_front(&mut pool), Some(make_ref(i, 0)));
        }
        assert_eq!(slot.pop_front(&mut pool), None);
        // Every chunk went back: a new slot reuses them instead of growing the pool.
        let chunks = pool.chunks.len();
        let mut other = Slot::default();
        for i in 0..3 * CHUNK as u32 {
            push(&mut other, &mut pool, i);
        }
        assert_eq!(pool.chunks.len(), chunks);
    }

    #[test]
    fn one_reference_lives_in_the_header() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        push(&mut slot, &mut pool, 9);
        assert_eq!(
            (pool.chunks.len(), slot.front(&pool)),
            (0, Some(make_ref(9, 0)))
        );
        assert_eq!(slot.earliest_index, 9);
        push(&mut slot, &mut pool, 10);
        assert_eq!(collect(&slot, &pool), [make_ref(9, 0), make_ref(10, 0)]);
        assert_eq!(slot.pop_front(&mut pool), Some(make_ref(9, 0)));
        let mut out = Vec::new();
        slot.drain(&mut pool, &mut (), |_, _| {}, |_, _, r| out.push(r));
        assert_eq!((out, slot.len()), (vec![make_ref(10, 0)], 0));
    }

    #[test]
    fn orders_and_cache_follow_the_pushes() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        slot.push(&mut pool, make_ref(1, 0), 50, 1);
        slot.push(&mut pool, make_ref(2, 0), 50, 2);
        assert!(slot.stamp_order);
        slot.push(&mut pool, make_ref(3, 0), 40, 3);
        assert!(slot.stamp_order);
        assert_eq!((slot.earliest, slot.earliest_index), (40, 3));
        // An older stamp at the same deadline takes the cache: (deadline, stamp) order.
        slot.push(&mut pool, make_ref(4, 0), 40, 0);
        assert!(!slot.stamp_order);
        assert_eq!(
            (slot.earliest, slot.earliest_stamp, slot.earliest_index),
            (40, 0, 4)
        );
    }

    #[test]
    fn retain_keeps_order_and_frees_the_rest() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        for i in 0..5 * CHUNK as u32 + 3 {
            push(&mut slot, &mut pool, i);
        }
        slot.pop_front(&mut pool);
        slot.retain(&mut pool, |_| {}, |r| ref_index(r) % 3 == 0);
        let expected: Vec<Ref> = (1..5 * CHUNK as u32 + 3)
            .filter(|i| i % 3 == 0)
            .map(|i| make_ref(i, 0))
            .collect();
        assert_eq!(collect(&slot, &pool), expected);
        assert_eq!(slot.len(), expected.len());
        push(&mut slot, &mut pool, 999);
        assert_eq!(collect(&slot, &pool).last(), Some(&make_ref(999, 0)));
        slot.retain(&mut pool, |_| {}, |_| false);
        assert_eq!((slot.len(), slot.first), (0, NIL));
        // A lone header reference is kept or dropped too.
        push(&mut slot, &mut pool, 5);
        slot.retain(&mut pool, |_| {}, |_| true);
        assert_eq!(slot.len(), 1);
        slot.retain(&mut pool, |_| {}, |_| false);
        assert_eq!(slot.len(), 0);
    }

    #[test]
    fn drain_hands_out_everything_in_order_and_frees_as_it_goes() {
        let mut pool = Pool::new();
        let mut slot = Slot::default();
        let mut other = Slot::default();
        for i in 0..2 * CHUNK as u32 + 5 {
            push(&mut slot, &mut pool, i);
        }
        slot.pop_front(&mut pool);
        let held = pool.chunks.len();
        slot.drain(
            &mut pool,
            &mut (),
            |_, _| {},
            |_, pool, r| {
                other.push(pool, r, 0, 0);
            },
        );
        let expected: Vec<Ref> = (1..2 * CHUNK as u32 + 5).map(|i| make_ref(i, 0)).collect();
        assert_eq!(collect(&other, &pool), expected);
        assert_eq!(slot.len(), 0);
        // The source's chunks were reused for the destination as they emptied.
        assert!(
            pool.chunks.len() <= held + 1,
            "{} chunks",
            pool.chunks.len()
        );
    }
}
