//! The due run: a coarse slot that one `poll` target passes entirely, sorted once instead of
//! cascaded level by level.
//!
//! When `advance` catches up over a long stretch (bulk expiry, a loop that stalled), every
//! timer of a coarse slot would move to the next finer level, then the next, before it fires:
//! up to one move per level. When time reaches such a slot and its whole span lies at or
//! before the poll's target, the wheel instead takes the slot's live timers, sorts them by
//! (effective deadline, stamp) and fires them from that sorted run. Only slots of levels 1 to 5
//! (at most 2^30 ticks) become runs, so that a deadline's offset in the slot fits a sort key.
//!
//! Everything pending with an effective deadline inside the run's span when the run is made is
//! in the run: when time reaches a slot, no finer slot holds a timer of that span (see the
//! wheel's invariant), and a timer lazily moved past the span is filed again instead of joining
//! the run. A timer filed later goes to the wheel as usual, and fires after run timers with the
//! same deadline, since its stamp is newer. A run timer's storage entry is filed at `RUN`, so
//! cancel knows to find it here.

use crate::slab::Ref;

/// Bits of a sort key that hold a reference's position in its slot.
const POSITION_BITS: u32 = 12;

/// Largest slot turned into a run: 4096 references (a run's arrivals, references, keys and
/// radix scratch take 48 bytes each, 192 KB, which stay in L2). A larger slot cascades once
/// more, and its finer slots become runs.
pub(crate) const RUN_MAX: usize = 1 << POSITION_BITS;

/// The timers of one coarse slot, in firing order. Inactive when `live == 0`.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// The slot's live references, in stamp order.
    entries: Vec<Ref>,
    /// One key per reference, sorted: its deadline's offset from `start` above
    /// `POSITION_BITS`, its index in `entries` below. Sorting plain `u64`s is several times
    /// cheaper than sorting references by a compound key.
    keys: Vec<u64>,
    /// Room for a radix sort pass.
    scratch: Vec<u64>,
    /// Room to put the references in stamp order, with their offsets, when they did not arrive
    /// in it.
    arrivals: Vec<(u64, Ref, u64)>,
    /// Next key to fire. Whenever the run is active, its timer is live: the wheel skips stale
    /// references as the head reaches them.
    head: usize,
    /// Timers filed in the run.
    pub(crate) live: usize,
    /// First tick of the span the run covers.
    start: u64,
}

impl Run {
    /// The effective deadline and reference of the next timer to fire from the run, if it is
    /// active.
    #[inline]
    pub(crate) fn next(&self) -> Option<(u64, Ref)> {
        (self.live > 0).then(|| {
            let key = self.keys[self.head];
            (self.deadline(key), self.entry(key))
        })
    }

    /// The effective deadline of the next timer to fire from the run, if it is active.
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        (self.live > 0).then(|| self.deadline(self.keys[self.head]))
    }

    #[inline]
    fn deadline(&self, key: u64) -> u64 {
        self.start + (key >> POSITION_BITS)
    }

    #[inline]
    fn entry(&self, key: u64) -> Ref {
        self.entries[position(key)]
    }

    /// A reference a few places ahead of the head, to prefetch its storage.
    #[inline]
    pub(crate) fn ahead(&self, by: usize) -> Option<Ref> {
        self.keys.get(self.head + by).map(|&key| self.entry(key))
    }

    /// Starts a run for the slot spanning ticks `start..=end`, at most 2^32 ticks: `fill`
    /// pushes the live timers of the slot, each with its effective deadline and stamp. Then
    /// [`finish`](Self::finish) makes it fire in order. Returns whether they came in stamp order.
    pub(crate) fn fill(
        &mut self,
        start: u64,
        end: u64,
        fill: impl FnOnce(&mut Filling<'_>),
    ) -> bool {
        debug_assert_eq!(self.live, 0, "a run starts while another is active");
        debug_assert!(
            end - start <= u64::from(u32::MAX),
            "a run spans more than 2^32 ticks"
        );
        self.entries.clear();
        self.keys.clear();
        let mut filling = Filling {
            entries: &mut self.entries,
            keys: &mut self.keys,
            start,
            end,
            last_stamp: 0,
            stamp_order: true,
        };
        fill(&mut filling);
        self.start = start;
        filling.stamp_order
    }

    /// Sorts the run filled last into firing order and makes it active: `stamp_of`, given if
    /// the references did not come in stamp order, tells each one's stamp. An empty run stays
    /// inactive.
    pub(crate) fn finish(&mut self, stamp_of: Option<impl Fn(Ref) -> u64>) {
        if let Some(stamp_of) = stamp_of {
            // A lazily moved timer rejoined the slot late: positions must follow the stamps,
            // so that ties fire by stamp.
            self.order_by_stamp(stamp_of);
        }
        debug_assert!(
            self.entries.len() <= RUN_MAX,
            "a run of {}",
            self.entries.len()
        );
        let span = self
            .keys
            .iter()
            .map(|&key| key >> POSITION_BITS)
            .max()
            .unwrap_or(0);
        let offset_bits = u64::BITS - span.leading_zeros();
        sort_by_offset(&mut self.keys, &mut self.scratch, offset_bits);
        (self.head, self.live) = (0, self.keys.len());
        if self.live == 0 {
            self.clear();
        }
    }

    /// Renumbers the references just filled in stamp order, keeping each one's offset.
    #[cold]
    fn order_by_stamp(&mut self, stamp_of: impl Fn(Ref) -> u64) {
        let mut arrivals = std::mem::take(&mut self.arrivals);
        arrivals.clear();
        for (&key, &r) in self.keys.iter().zip(&self.entries) {
            arrivals.push((stamp_of(r), r, key >> POSITION_BITS));
        }
        arrivals.sort_unstable_by_key(|&(stamp, _, _)| stamp);
        self.entries.clear();
        self.keys.clear();
        for (at, &(_, r, offset)) in arrivals.iter().enumerate() {
            self.keys.push((offset << POSITION_BITS) | at as u64);
            self.entries.push(r);
        }
        self.arrivals = arrivals;
    }

    /// Moves the head past the timer that just fired or left; the caller then skips stale
    /// references with `skip_stale`.
    #[inline(always)]
    pub(crate) fn advance(&mut self) {
        self.head += 1;
    }

    /// Keeps the head live (`is_live` tells a live reference), and ends the run when its last
    /// timer has left.
    #[inline]
    pub(crate) fn skip_stale(&mut self, is_live: impl Fn(Ref) -> bool) {
        if self.live == 0 {
            self.clear();
            return;
        }
        // Without stale references every one left is live.
        if self.live < self.keys.len() - self.head {
            while !is_live(self.entry(self.keys[self.head])) {
                self.head += 1;
            }
        }
    }

    /// The references of the run, live or not, for tests.
    #[cfg(test)]
    pub(crate) fn for_each(&self, mut each: impl FnMut(Ref)) {
        if self.live > 0 {
            for &key in &self.keys[self.head..] {
                each(self.entry(key));
            }
        }
    }

    /// Ends the run, keeping the buffers.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.keys.clear();
        (self.head, self.live, self.start) = (0, 0, 0);
    }
}

/// A run being filled.
pub(crate) struct Filling<'a> {
    entries: &'a mut Vec<Ref>,
    keys: &'a mut Vec<u64>,
    start: u64,
    end: u64,
    last_stamp: u64,
    stamp_order: bool,
}

impl Filling<'_> {
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.keys.reserve(additional);
    }

    /// Adds the next live timer of the slot, due at `deadline` with stamp `stamp`.
    #[inline]
    pub(crate) fn push(&mut self, r: Ref, deadline: u64, stamp: u64) {
        debug_assert!(
            (self.start..=self.end).contains(&deadline),
            "a run timer at {deadline} outside {}..={}",
            self.start,
            self.end
        );
        self.stamp_order &= stamp >= self.last_stamp;
        self.last_stamp = stamp;
        let at = self.entries.len() as u64;
        self.keys
            .push(((deadline - self.start) << POSITION_BITS) | at);
        self.entries.push(r);
    }
}

/// The index in `entries` that a sort key names.
#[inline]
fn position(key: u64) -> usize {
    (key & (RUN_MAX as u64 - 1)) as usize
}

/// Sorts keys whose positions (the low `POSITION_BITS`) are already in increasing order by
/// their `offset_bits` offset bits, keeping equal offsets in position order.
///
/// Small runs take `sort_unstable`, large ones a least-significant-digit radix sort, with a
/// digit width that makes the fewest passes of at most 10 bits. The size from which the radix
/// sort is faster was measured for each width on whole nanoseconds (a run's offsets are 6, 12,
/// 18, 24 or 30 bits, its level's slot width): at 2500 keys of 18 bits, about 4.5 ns a key
/// against 10.7 for `sort_unstable` and 11.5 for three 8-bit passes.
fn sort_by_offset(keys: &mut Vec<u64>, scratch: &mut Vec<u64>, offset_bits: u32) {
    let n = keys.len();
    match offset_bits {
        // One offset: the keys are in position order already.
        0 => {}
        1..=6 if n >= 64 => radix_sort::<64>(keys, scratch, offset_bits),
        7..=12 if n >= 256 => radix_sort::<64>(keys, scratch, offset_bits),
        13..=18 if n >= 512 => radix_sort::<512>(keys, scratch, offset_bits),
        19..=24 if n >= 2048 => radix_sort::<256>(keys, scratch, offset_bits),
        25..=30 if n >= 1024 => radix_sort::<1024>(keys, scratch, offset_bits),
        // Positions differ, so sorting whole keys is stable by construction.
        _ => keys.sort_unstable(),
    }
}

/// Sorts by the `offset_bits` offset bits, one pass per digit of `log2(BUCKETS)` bits; each
/// pass is stable, so ties keep position order. The counts stay on the stack (at most 4 KB).
fn radix_sort<const BUCKETS: usize>(keys: &mut Vec<u64>, scratch: &mut Vec<u64>, offset_bits: u32) {
    let n = keys.len();
    if n < 2 {
        return;
    }
    let digit_bits = BUCKETS.trailing_zeros();
    scratch.clear();
    scratch.resize(n, 0);
    for pass in 0..offset_bits.div_ceil(digit_bits) {
        let shift = POSITION_BITS + pass * digit_bits;
        let digit = |key: u64| ((key >> shift) as usize) & (BUCKETS - 1);
        let mut starts = [0u32; BUCKETS];
        for &key in keys.iter() {
            starts[digit(key)] += 1;
        }
        if starts[digit(keys[0])] as usize == n {
            // Every key has the same digit here: the pass would copy them in order.
            continue;
        }
        let mut total = 0;
        for start in starts.iter_mut() {
            (*start, total) = (total, total + *start);
        }
        for &key in keys.iter() {
            let at = &mut starts[digit(key)];
            scratch[*at as usize] = key;
            *at += 1;
        }
        std::mem::swap(keys, scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` keys in position order with random offsets of `offset_bits` bits, few of them
    /// distinct (so that ties are common), and the same keys in the order a run must have.
    fn keys_and_sorted(n: usize, offset_bits: u32) -> (Vec<u64>, Vec<u64>) {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let keys: Vec<u64> = (0..n as u64)
            .map(|position| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let offset = (rng % 40) << offset_bits.saturating_sub(6);
                let offset = offset & ((1 << offset_bits) - 1);
                (offset << POSITION_BITS) | position
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by_key(|&key| (key >> POSITION_BITS, position(key)));
        (keys, sorted)
    }

    #[test]
    fn sorting_by_offset_keeps_ties_in_position_order() {
        let sizes = [
            0, 1, 2, 31, 63, 64, 255, 256, 300, 511, 512, 1023, 1024, 2047, 2048, RUN_MAX,
        ];
        for n in sizes {
            for offset_bits in [0, 1, 6, 12, 18, 24, 30] {
                let (mut keys, sorted) = keys_and_sorted(n, offset_bits);
                sort_by_offset(&mut keys, &mut Vec::new(), offset_bits);
                assert_eq!(keys, sorted, "{n} keys of {offset_bits} offset bits");
            }
        }
    }

    #[test]
    fn the_radix_sort_is_stable_at_every_digit_width() {
        let mut scratch = Vec::new();
        for n in [0, 1, 5, 256, 1000] {
            for offset_bits in [1, 6, 13, 18, 30] {
                let (keys, sorted) = keys_and_sorted(n, offset_bits);
                type Sort = fn(&mut Vec<u64>, &mut Vec<u64>, u32);
                let sorts: [(usize, Sort); 4] = [
                    (64, radix_sort::<64>),
                    (256, radix_sort::<256>),
                    (512, radix_sort::<512>),
                    (1024, radix_sort::<1024>),
                ];
                for (buckets, sort) in sorts {
                    let mut keys = keys.clone();
                    sort(&mut keys, &mut scratch, offset_bits);
                    assert_eq!(
                        keys, sorted,
                        "{n} keys, {offset_bits} bits, {buckets} buckets"
                    );
                }
            }
        }
    }
}
