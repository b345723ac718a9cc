//! The core: a hierarchical hashed timing wheel over `u64` ticks.
//!
//! The wheel never reads a clock, never calls user code and never allocates per operation once
//! its storage has grown.
//!
//! # Blocks and the path
//!
//! The time line is cut into *blocks* of 64 *slots*: a block of level `L` spans 64^(L+1) ticks
//! and each of its slots 64^L, so a level-0 slot is one tick. For every level the wheel holds
//! the block that contains `now`: together they are the *path*. A slot of a path block before
//! `now`'s is empty; the slot that holds `now` is the next finer path block; a later slot holds
//! the timers due in its span. Such a slot is flat, a list of references, until its timers must
//! be told apart: when time reaches its start (a *cascade*), or when it is the first occupied
//! slot of the wheel, its earliest timer has left, and it is too large to scan (a *split*). It
//! is then split into a block of the next finer level, and so on down to single ticks, so each
//! timer descends at most once per level. When time reaches a slot that is split already, its
//! block simply becomes part of the path.
//!
//! # Order
//!
//! Every insert and reschedule takes a *stamp* from a counter. Timers fire by effective
//! deadline (`max(deadline, now)` when filed), then by stamp: first in, first out, a reschedule
//! counting as an insertion.
//!
//! # Lazy reschedule
//!
//! A reschedule to a deadline at or after the start of the coarse slot the timer sits in only
//! rewrites its deadline and stamp (and the slot's cached earliest, which is in cache): the
//! timer stays where it is, and when time reaches that slot (or a split needs it) it is filed
//! again by its true deadline, as a cascade files every timer. Anything else (an earlier
//! deadline, a timer in a level-0 slot or in the run) is moved at once.
//!
//! # Exact next deadline
//!
//! The first occupied slot of the wheel (the *front*) is kept exact after every operation: its
//! cached earliest timer is live, its true deadline is the cached one, and nothing in the slot
//! comes before it (a level-0 front is in stamp order). Whatever may spoil that (a cancel or a
//! move of the front's earliest, a poll) ends by *settling* the front: popping stale
//! references from an ordered slot, scanning a small one, or splitting a large one.

mod position;
mod run;
mod slot;

use std::fmt;
use std::iter::FusedIterator;

use crate::slab::{ref_index, CapacityError, Fate, Ref, Slab, TimerKey};
use position::{block_start, level_of, slot_end, slot_of, LEVELS, SLOTS, SLOT_BITS};
use run::{Run, RUN_MAX};
use slot::{Pool, Slot, NIL};

/// A timer that has come due, as yielded by [`TimerWheel::poll`] and [`TimerWheel::advance`].
///
/// ```
/// use tierwheel::TimerWheel;
///
/// let mut wheel = TimerWheel::starting_at(100);
/// let key = wheel.insert_at(40, "late"); // in the past: due at once
/// let expired = wheel.poll(100).unwrap();
/// assert_eq!((expired.key, expired.deadline, expired.value), (key, 40, "late"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Expired<T> {
    /// The key the timer had; stale from now on.
    pub key: TimerKey,
    /// The deadline that was asked for, in ticks. It lies before the tick the timer fired at
    /// when it was already past when the timer was inserted or rescheduled.
    pub deadline: u64,
    /// The timer's value.
    pub value: T,
}

/// A stored timer.
struct Timer<T> {
    /// The deadline asked for, in ticks. The effective deadline is `max(deadline, now)` when
    /// the timer is filed; only a timer past due when it was filed has one that differs, and
    /// that timer sits in a level-0 slot.
    deadline: u64,
    /// When it was inserted or last rescheduled, from the wheel's counter: ties fire in stamp
    /// order.
    stamp: u64,
    value: T,
}

/// Counts maintenance work (references and blocks visited) in test builds, for the tests that
/// bound the work per operation; nothing otherwise.
macro_rules! count {
    ($wheel:expr, $units:expr) => {
        #[cfg(test)]
        $wheel.work.set($wheel.work.get() + ($units) as u64);
    };
}

/// Where a timer filed in the run is filed.
const RUN: u32 = u32::MAX;

/// Blocks the arena may hold: a slot id (`block << SLOT_BITS | slot`) must stay below the
/// flag bits, `CACHED` and `TICK_SLOT`, and so below `RUN`.
const MAX_BLOCKS: usize = ((CACHED - 1) >> SLOT_BITS) as usize;

/// A stale front slot is scanned for its earliest timer if it holds at most this many
/// references, or at most `SCAN_PER_TOUCH` per operation that touched it since its last scan
/// (so that scans cost O(1) per operation, amortized); otherwise it is split. A scan costs a
/// read per reference; a split a move per timer that a cascade would make anyway, but a block
/// (about 6 KB), and inserts into a split slot descend into its block. A slot split down to
/// ticks is in stamp order, so a run of cancels of the earliest pops its head each time. (Small
/// in tests, so that the model tests split often.)
const SCAN_MAX: usize = if cfg!(test) { 6 } else { 16 };
const SCAN_PER_TOUCH: usize = if cfg!(test) { 1 } else { 4 };

/// Timer storage larger than this is not expected to stay in cache, so cascades, splits,
/// sweeps and runs being filled, which read the storage of every timer they visit, prefetch it
/// a chunk ahead. Below it, those prefetches cost more instructions than they save time.
/// Firing from a run prefetches at every size: see `pop_run`.
const PREFETCH_ABOVE_BYTES: usize = 1 << 20;

/// Finest and coarsest levels whose slots can become a run: their spans (2^6 to 2^30 ticks)
/// fit a run's sort keys.
const RUN_LEVELS: std::ops::RangeInclusive<usize> = 1..=5;

/// 64 slots of one level covering 64^(level+1) ticks from `start`.
struct Block {
    slots: [Slot; SLOTS],
    /// First tick covered.
    start: u64,
    level: usize,
    /// The slot this block splits (`NIL` for a path block).
    parent: u32,
}

/// The bit of a slot id that says the slot is a level-0 slot (one tick), whose timers are moved
/// at once, never lazily. `RUN` has it too.
const TICK_SLOT: u32 = 1 << 31;

/// The id of slot `slot` of block `block` of `level`, as entries record where they are filed.
#[inline(always)]
fn slot_id(block: u32, slot: usize, level: usize) -> u32 {
    let tick = if level == 0 { TICK_SLOT } else { 0 };
    (block << SLOT_BITS) | slot as u32 | tick
}

/// The bit of an entry's filing that says the timer may be its slot's cached earliest: set
/// whenever it becomes so, cleared when a reschedule finds it is not. A later reschedule of a
/// timer without it (and not in a tick slot) writes the timer's storage and nothing else.
const CACHED: u32 = 1 << 30;

/// The block and slot an id names.
#[inline(always)]
fn split_id(id: u32) -> (u32, usize) {
    (
        (id & !(TICK_SLOT | CACHED)) >> SLOT_BITS,
        (id & (SLOTS as u32 - 1)) as usize,
    )
}

/// `CACHED` if `became` says a push made the timer its slot's cached earliest.
#[inline(always)]
fn cached_if(became: bool) -> u32 {
    if became {
        CACHED
    } else {
        0
    }
}

/// Files a timer whose stamp is newer than every stamp in the wheel (an insert, or a move at
/// once): reference `r`, effective deadline `effective` (at or after `now`), at the back of its
/// slot in the blocks `path` leads to. Returns the slot's id for its storage entry. A free
/// function over the wheel's parts, so that an insert can file while it holds its storage entry.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn file_fresh(
    path: &[u32; LEVELS],
    blocks: &mut [Block],
    occupancy: &mut [u64],
    pool: &mut Pool,
    now: u64,
    r: Ref,
    effective: u64,
    stamp: u64,
) -> u32 {
    let mut level = level_of(now, effective);
    let mut block = path[level];
    let mut slot_index = slot_of(effective, level);
    if occupancy[block as usize] == 0 {
        // An empty path block may cover a span time has left: it starts where `now` is.
        blocks[block as usize].start = block_start(now, level);
    } else if blocks[block as usize].slots[slot_index].child != NIL {
        (block, slot_index, level) = file_in_split(blocks, block, slot_index, level, effective);
    }
    let became = blocks[block as usize].slots[slot_index].push_fresh(pool, r, effective, stamp);
    occupancy[block as usize] |= 1 << slot_index;
    slot_id(block, slot_index, level) | cached_if(became)
}

/// The flat slot under slot `slot_index` of `block` (of `level`) where `effective` belongs,
/// descending through splits: block, slot, level.
#[cold]
fn file_in_split(
    blocks: &[Block],
    mut block: u32,
    mut slot_index: usize,
    mut level: usize,
    effective: u64,
) -> (u32, usize, usize) {
    loop {
        let child = blocks[block as usize].slots[slot_index].child;
        if child == NIL {
            return (block, slot_index, level);
        }
        (block, level) = (child, level - 1);
        slot_index = slot_of(effective, level);
    }
}

/// A hierarchical hashed timing wheel: timers keyed by [`TimerKey`], due at `u64` ticks.
///
/// Insert, cancel and reschedule are O(1), independent of the number of pending timers and of
/// the delay; any deadline up to `u64::MAX` is accepted and fires at exactly its tick. Timers
/// fire by effective deadline (`max(deadline, now())` at insertion or reschedule), then first
/// in, first out, a reschedule counting as an insertion. [`next_deadline`](Self::next_deadline)
/// is exact.
///
/// A reschedule to a later deadline (precisely: one at or after the start of the coarse slot
/// the timer sits in) rewrites the timer's storage and nothing else; the timer is filed again
/// when time reaches its old slot. No sequence of operations makes one of them cost more than
/// O(1) amortized per timer it touches (docs/design.md, "What does an operation cost?").
///
/// ```
/// use tierwheel::TimerWheel;
///
/// let mut wheel = TimerWheel::new();
/// let idle = wheel.insert_after(30_000, "idle timeout");
/// wheel.insert_at(7, "retry");
/// wheel.insert_at(7, "second retry"); // same tick: fires after "retry"
///
/// // Traffic on the connection pushes its idle timeout back.
/// assert!(wheel.reschedule(idle, 60_000));
///
/// let due: Vec<_> = wheel.advance(10).map(|e| e.value).collect();
/// assert_eq!(due, ["retry", "second retry"]);
/// assert_eq!(wheel.now(), 10);
/// assert_eq!(wheel.next_deadline(), Some(60_000));
/// ```
pub struct TimerWheel<T> {
    slab: Slab<Timer<T>>,
    /// Path blocks, split blocks and free ones.
    blocks: Vec<Block>,
    /// Per block, one bit per occupied slot: holding a live timer, or split.
    occupancy: Vec<u64>,
    /// Blocks no slot or level uses.
    free_blocks: Vec<u32>,
    /// Per level, the block that holds `now`.
    path: [u32; LEVELS],
    /// The chunks the slots' reference lists are made of.
    pool: Pool,
    /// A coarse slot that a `poll` passed whole, sorted into firing order (`run.rs`).
    run: Run,
    /// While the run is active: a run timer due before this tick fires before anything in the
    /// levels, so `poll` fires it without searching them. The last `poll` that searched the
    /// levels and fired from the run set it; every filing zeroes it. Cancels, cascades and
    /// fires only move the levels' timers later, so it stays a lower bound until then.
    run_gate: u64,
    /// The current tick.
    now: u64,
    /// The next stamp.
    stamp: u64,
    /// Room to sort a slot's timers by stamp, and to hold timers being filed again.
    scratch: Vec<(u64, Ref)>,
    refile: Vec<Ref>,
    /// References and blocks visited by maintenance (sweeps, splits, scans, sorts, cascades),
    /// for the tests that bound the work per operation.
    #[cfg(test)]
    work: std::cell::Cell<u64>,
    /// Splits made, for the tests that check they are exercised.
    #[cfg(test)]
    splits: usize,
}

/// The timers due by a given tick, in firing order, returned by [`TimerWheel::advance`].
///
/// Each step is one [`TimerWheel::poll`]: the timers fire as the iterator yields them, and
/// dropping it early leaves the wheel consistent, at the tick of the last timer it yielded,
/// with the rest still pending (unlike `Vec::drain`, dropping it removes nothing).
///
/// ```
/// use tierwheel::TimerWheel;
///
/// let mut wheel = TimerWheel::new();
/// for tick in [3, 5, 9] {
///     wheel.insert_at(tick, tick);
/// }
/// let mut due = wheel.advance(100);
/// assert_eq!(due.next().map(|e| e.value), Some(3));
/// drop(due);
/// assert_eq!((wheel.now(), wheel.len()), (3, 2));
/// ```
#[must_use = "timers fire only as the iterator is advanced"]
pub struct Advance<'a, T> {
    wheel: &'a mut TimerWheel<T>,
    /// The tick to advance to.
    now: u64,
}

impl<T> Iterator for Advance<'_, T> {
    type Item = Expired<T>;

    fn next(&mut self) -> Option<Expired<T>> {
        self.wheel.poll(self.now)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.wheel.len()))
    }
}

impl<T> FusedIterator for Advance<'_, T> {}

impl<T> fmt::Debug for Advance<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advance")
            .field("now", &self.now)
            .field("wheel", &self.wheel)
            .finish()
    }
}

/// The pending timers of a [`TimerWheel`], in storage order (not firing order): key, deadline
/// asked for, value. Made by [`TimerWheel::iter`].
///
/// ```
/// let mut wheel = tierwheel::TimerWheel::new();
/// let a = wheel.insert_at(20, 'a');
/// let b = wheel.insert_at(10, 'b');
/// let mut pending: Vec<_> = wheel.iter().map(|(key, deadline, &v)| (key, deadline, v)).collect();
/// pending.sort_by_key(|&(_, deadline, _)| deadline);
/// assert_eq!(pending, [(b, 10, 'b'), (a, 20, 'a')]);
/// ```
pub struct Iter<'a, T> {
    slab: &'a Slab<Timer<T>>,
    index: u32,
    left: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (TimerKey, u64, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            let index = self.index;
            self.index += 1;
            if let (Some(key), Some((_, timer))) = (self.slab.key_at(index), self.slab.at(index)) {
                self.left -= 1;
                return Some((key, timer.deadline, &timer.value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> FusedIterator for Iter<'_, T> {}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("left", &self.left).finish()
    }
}

impl<T> TimerWheel<T> {
    /// An empty wheel at tick 0.
    ///
    /// ```
    /// let wheel = tierwheel::TimerWheel::<()>::new();
    /// assert_eq!((wheel.now(), wheel.len()), (0, 0));
    /// ```
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// An empty wheel at tick `now`.
    ///
    /// ```
    /// let wheel = tierwheel::TimerWheel::<()>::starting_at(u64::MAX - 1);
    /// assert_eq!(wheel.now(), u64::MAX - 1);
    /// ```
    pub fn starting_at(now: u64) -> Self {
        let mut wheel = TimerWheel {
            slab: Slab::new(),
            blocks: Vec::with_capacity(LEVELS + 1),
            occupancy: Vec::with_capacity(LEVELS + 1),
            free_blocks: Vec::new(),
            path: [0; LEVELS],
            pool: Pool::new(),
            run: Run::default(),
            run_gate: 0,
            now,
            stamp: 0,
            scratch: Vec::new(),
            refile: Vec::new(),
            #[cfg(test)]
            work: std::cell::Cell::new(0),
            #[cfg(test)]
            splits: 0,
        };
        for level in 0..LEVELS {
            wheel.path[level] = wheel.alloc_block(level, block_start(now, level), NIL);
        }
        wheel
    }

    /// An empty wheel at tick 0 with storage for `capacity` timers.
    ///
    /// ```
    /// let wheel = tierwheel::TimerWheel::<u64>::with_capacity(1 << 20);
    /// assert!(wheel.capacity() >= 1 << 20);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        let mut wheel = Self::new();
        wheel.slab.reserve(capacity);
        wheel
    }

    /// How many timers the wheel can hold before its storage grows.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// wheel.insert_at(1, ());
    /// assert!(wheel.capacity() >= 1);
    /// ```
    pub fn capacity(&self) -> usize {
        self.slab.capacity()
    }

    /// Makes room for at least `additional` more timers without growing storage.
    ///
    /// # Panics
    ///
    /// If the allocator cannot provide the memory, as `Vec::reserve` does.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::<u8>::new();
    /// wheel.reserve(10_000);
    /// assert!(wheel.capacity() >= 10_000);
    /// ```
    pub fn reserve(&mut self, additional: usize) {
        self.slab.reserve(additional);
    }

    /// Gives back storage after a burst: [`capacity`](Self::capacity) goes down to about the
    /// highest storage position still in use (storage comes in segments of 1024 timers). Keys
    /// stay valid: timers never move in storage, so a wheel that still holds one timer at a
    /// high position keeps the storage below it. Free positions are then reused lowest first,
    /// so a later call can give back more.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let keys: Vec<_> = (0..100_000).map(|i| wheel.insert_at(i, i)).collect();
    /// let kept = keys[10];
    /// for &key in &keys[100..] {
    ///     wheel.cancel(key);
    /// }
    /// wheel.shrink_to_fit();
    /// assert!(wheel.capacity() < 2_000);
    /// assert_eq!(wheel.deadline(kept), Some(10));
    /// ```
    pub fn shrink_to_fit(&mut self) {
        self.slab.shrink_to_fit();
        self.scratch = Vec::new();
        self.refile = Vec::new();
        self.free_blocks.shrink_to_fit();
    }

    /// The current tick.
    ///
    /// It only moves forward, through [`poll`](Self::poll) and [`advance`](Self::advance).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::<()>::new();
    /// assert!(wheel.poll(50).is_none());
    /// assert!(wheel.poll(20).is_none()); // time never runs backwards
    /// assert_eq!(wheel.now(), 50);
    /// ```
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The number of pending timers.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(9, ());
    /// assert_eq!(wheel.len(), 1);
    /// wheel.cancel(key);
    /// assert_eq!(wheel.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no timer is pending.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// assert!(wheel.is_empty());
    /// wheel.insert_at(9, ());
    /// assert!(!wheel.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts a timer due at tick `deadline` and returns its key.
    ///
    /// A deadline before [`now`](Self::now) is due at once, behind the timers already due at
    /// `now()`. Any `u64` is accepted.
    ///
    /// # Panics
    ///
    /// If [`MAX_PENDING`](crate::MAX_PENDING) timers are pending; use
    /// [`try_insert_at`](Self::try_insert_at) to get an error instead.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(u64::MAX, "at the end of time");
    /// assert_eq!(wheel.deadline(key), Some(u64::MAX));
    /// ```
    #[inline]
    pub fn insert_at(&mut self, deadline: u64, value: T) -> TimerKey {
        match self.try_insert_at(deadline, value) {
            Ok(key) => key,
            Err(CapacityError) => panic!(
                "tierwheel: cannot insert a timer, MAX_PENDING (2^32 - 2) timers are pending \
                 (try_insert_at returns an error instead)"
            ),
        }
    }

    /// Inserts a timer due `delay` ticks after [`now`](Self::now), saturating at `u64::MAX`.
    ///
    /// # Panics
    ///
    /// As [`insert_at`](Self::insert_at).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::starting_at(10);
    /// let key = wheel.insert_after(u64::MAX, ());
    /// assert_eq!(wheel.deadline(key), Some(u64::MAX));
    /// ```
    #[inline]
    pub fn insert_after(&mut self, delay: u64, value: T) -> TimerKey {
        self.insert_at(self.now.saturating_add(delay), value)
    }

    /// Like [`insert_at`](Self::insert_at), but returns [`CapacityError`] instead of
    /// panicking when no key is left. The value is dropped in that case.
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if [`MAX_PENDING`](crate::MAX_PENDING) timers are pending.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.try_insert_at(5, ()).expect("room for one more");
    /// assert_eq!(wheel.deadline(key), Some(5));
    /// ```
    #[inline]
    pub fn try_insert_at(&mut self, deadline: u64, value: T) -> Result<TimerKey, CapacityError> {
        let (now, stamp) = (self.now, self.stamp);
        let (path, blocks, occupancy, pool) = (
            &self.path,
            &mut self.blocks,
            &mut self.occupancy,
            &mut self.pool,
        );
        let key = self.slab.insert_with(
            Timer {
                deadline,
                stamp,
                value,
            },
            |r| {
                file_fresh(
                    path,
                    blocks,
                    occupancy,
                    pool,
                    now,
                    r,
                    deadline.max(now),
                    stamp,
                )
            },
        )?;
        self.stamp += 1;
        // The new timer may come before the run's next: `poll` checks the wheel again.
        self.run_gate = 0;
        Ok(key)
    }

    /// Like [`insert_after`](Self::insert_after), but returns [`CapacityError`] instead of
    /// panicking when no key is left.
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if [`MAX_PENDING`](crate::MAX_PENDING) timers are pending.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::starting_at(1);
    /// let key = wheel.try_insert_after(5, ()).unwrap();
    /// assert_eq!(wheel.deadline(key), Some(6));
    /// ```
    pub fn try_insert_after(&mut self, delay: u64, value: T) -> Result<TimerKey, CapacityError> {
        self.try_insert_at(self.now.saturating_add(delay), value)
    }

    /// Cancels a pending timer and returns its value.
    ///
    /// Returns `None`, and does nothing, if the timer has fired or been cancelled. A key is
    /// not tied to the wheel that made it: used on another wheel, it may name a timer there
    /// (or nothing), so keep each key with its wheel.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(5, "value");
    /// assert_eq!(wheel.cancel(key), Some("value"));
    /// assert_eq!(wheel.cancel(key), None);
    /// ```
    #[inline]
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let (filed, timer) = self.slab.remove(key)?;
        self.unfile(filed, key.index());
        Some(timer.value)
    }

    /// Moves a pending timer to `deadline`, as if it were inserted anew: behind every timer
    /// already due at the same tick, also when the deadline does not change. The key stays
    /// valid. Returns `false`, and does nothing, if the timer is not pending.
    ///
    /// A later deadline (one at or after the start of the coarse slot the timer sits in) is a
    /// write to the timer's storage and to its slot's cached earliest: the timer stays where it
    /// is until time reaches that slot, then is filed again by its true deadline. It still
    /// fires at exactly its deadline, in order.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let a = wheel.insert_at(8, "a");
    /// wheel.insert_at(8, "b");
    /// assert!(wheel.reschedule(a, 8));
    /// let order: Vec<_> = wheel.advance(8).map(|e| e.value).collect();
    /// assert_eq!(order, ["b", "a"]);
    /// assert!(!wheel.reschedule(a, 9));
    /// ```
    #[inline]
    pub fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        let (now, stamp) = (self.now, self.stamp);
        let Some(occupant) = self.slab.get_mut(key) else {
            return false;
        };
        self.stamp += 1;
        let filed = *occupant.filed;
        let old = std::mem::replace(&mut occupant.value.deadline, deadline);
        occupant.value.stamp = stamp;
        let effective = deadline.max(now);
        let index = key.index();
        if filed & TICK_SLOT == 0 {
            // In a coarse slot (not a tick, not the run), whose timers are all due at or after
            // its start: one moved later stays where it is. Unless it may be its slot's cached
            // earliest, nothing else needs to know.
            if effective >= old {
                if filed & CACHED != 0 {
                    *occupant.filed = filed & !CACHED;
                    let (block, slot_index) = split_id(filed);
                    let slot = &mut self.blocks[block as usize].slots[slot_index];
                    if slot.earliest_index == index && !slot.stale {
                        slot.stale = true;
                        self.settle();
                    }
                }
                return true;
            }
            if self.reschedule_earlier_lazily(filed, index, effective, stamp) {
                return true;
            }
        }
        self.move_now(index, filed, effective, stamp);
        true
    }

    /// A reschedule of the timer at storage `index`, in coarse slot `slot_index` of `block`,
    /// to an earlier effective deadline: lazy too, if still at or after the slot's start (the
    /// slot's cached earliest follows); returns whether it was.
    #[inline]
    fn reschedule_earlier_lazily(
        &mut self,
        filed: u32,
        index: u32,
        effective: u64,
        stamp: u64,
    ) -> bool {
        let (block, slot_index) = split_id(filed);
        let block = &mut self.blocks[block as usize];
        let start = block.start | ((slot_index as u64) << (block.level as u32 * SLOT_BITS));
        if effective < start {
            return false;
        }
        let slot = &mut block.slots[slot_index];
        // Earlier than before: if it was the earliest it still is, and if it comes before the
        // cached earliest (a bound even when stale) it is the earliest now.
        if (slot.earliest_index == index && !slot.stale) || effective < slot.earliest {
            (slot.earliest, slot.earliest_stamp) = (effective, stamp);
            slot.earliest_index = index;
            slot.stale = false;
            self.slab.set_filed(index, filed | CACHED);
        }
        true
    }

    /// Files the pending timer at storage `index`, filed at `filed`, again at once by
    /// `effective` and `stamp`, leaving its old reference behind, stale.
    #[cold]
    #[inline(never)]
    fn move_now(&mut self, index: u32, filed: u32, effective: u64, stamp: u64) {
        let r = self.slab.replace(index, RUN);
        self.unfile(filed, index);
        let filed = file_fresh(
            &self.path,
            &mut self.blocks,
            &mut self.occupancy,
            &mut self.pool,
            self.now,
            r,
            effective,
            stamp,
        );
        self.run_gate = 0;
        self.slab.set_filed(index, filed);
    }

    /// The deadline a pending timer was given (the one asked for, even if it was past).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::starting_at(100);
    /// let key = wheel.insert_at(3, ());
    /// assert_eq!(wheel.deadline(key), Some(3));
    /// let _ = wheel.poll(100);
    /// assert_eq!(wheel.deadline(key), None);
    /// ```
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.slab.get(key).map(|timer| timer.deadline)
    }

    /// What became of the timer `key` names: pending, fired or cancelled, as long as its
    /// storage has had no other timer since; `Fate::Unknown` after that.
    pub(crate) fn fate(&self, key: TimerKey) -> Fate {
        self.slab.fate(key)
    }

    /// Makes a timer taken out with `cancel` count as fired for [`fate`](Self::fate).
    pub(crate) fn record_fired(&mut self, key: TimerKey) {
        self.slab.record_fired(key);
    }

    /// Whether `key` names a pending timer.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(3, ());
    /// assert!(wheel.contains(key));
    /// wheel.cancel(key);
    /// assert!(!wheel.contains(key));
    /// ```
    pub fn contains(&self, key: TimerKey) -> bool {
        self.slab.get(key).is_some()
    }

    /// The value of a pending timer.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(3, "three");
    /// assert_eq!(wheel.get(key), Some(&"three"));
    /// ```
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.slab.get(key).map(|timer| &timer.value)
    }

    /// The value of a pending timer, to change it in place.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(3, 1);
    /// *wheel.get_mut(key).unwrap() += 1;
    /// assert_eq!(wheel.cancel(key), Some(2));
    /// ```
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        self.slab
            .get_mut(key)
            .map(|occupant| &mut occupant.value.value)
    }

    /// The pending timers in storage order (not firing order), with their keys and the
    /// deadlines asked for. O(capacity).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// wheel.insert_at(5, 'x');
    /// wheel.insert_at(1, 'y');
    /// let mut deadlines: Vec<u64> = wheel.iter().map(|(_, deadline, _)| deadline).collect();
    /// deadlines.sort();
    /// assert_eq!(deadlines, [1, 5]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            slab: &self.slab,
            index: 0,
            left: self.slab.len(),
        }
    }

    /// Cancels every pending timer for which `keep` returns false, dropping its value. `keep`
    /// sees each timer's key, deadline asked for and value, in storage order. O(capacity).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// for i in 0..10 {
    ///     wheel.insert_at(i, i);
    /// }
    /// wheel.retain(|_, _, value| *value % 2 == 0);
    /// let fired: Vec<_> = wheel.advance(100).map(|e| e.value).collect();
    /// assert_eq!(fired, [0, 2, 4, 6, 8]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(TimerKey, u64, &mut T) -> bool) {
        for index in 0..self.slab.made() {
            let Some((key, timer)) = self.slab.value_mut_at(index) else {
                continue;
            };
            if !keep(key, timer.deadline, &mut timer.value) {
                self.cancel(key);
            }
        }
    }

    /// The next timer to fire: its key, the deadline asked for and its value, without removing
    /// it. The timer [`poll`](Self::poll) yields next, once time reaches
    /// [`next_deadline`](Self::next_deadline). O(levels).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// assert!(wheel.peek().is_none());
    /// let first = wheel.insert_at(70_000, "first");
    /// wheel.insert_at(70_000, "second");
    /// wheel.insert_at(90_000, "later");
    /// assert_eq!(wheel.peek(), Some((first, 70_000, &"first")));
    /// ```
    pub fn peek(&self) -> Option<(TimerKey, u64, &T)> {
        let index = match (self.run.next(), self.front()) {
            (Some((run, r)), Some((tick, _))) if run <= tick => ref_index(r),
            (_, Some((_, index))) => index,
            (Some((_, r)), None) => ref_index(r),
            (None, None) => return None,
        };
        let key = self.slab.key_at(index)?;
        let (_, timer) = self.slab.at(index)?;
        Some((key, timer.deadline, &timer.value))
    }

    /// The smallest effective deadline of any pending timer: the tick at which
    /// [`poll`](Self::poll) will next yield one. Exact, never the start of a coarse slot, also
    /// after lazy reschedules. O(levels).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// assert_eq!(wheel.next_deadline(), None);
    /// let early = wheel.insert_at(1_000_003, ());
    /// wheel.insert_at(1_000_017, ());
    /// assert_eq!(wheel.next_deadline(), Some(1_000_003));
    /// wheel.cancel(early);
    /// assert_eq!(wheel.next_deadline(), Some(1_000_017));
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        let wheel = self.front().map(|(tick, _)| tick);
        match self.run.next_deadline() {
            Some(run) => Some(wheel.map_or(run, |wheel| wheel.min(run))),
            None => wheel,
        }
    }

    /// The effective deadline and storage index of the wheel's earliest timer, outside the run.
    /// Exact: the front is settled after every operation.
    fn front(&self) -> Option<(u64, u32)> {
        let (block, slot_index) = self.first_slot()?;
        let block = &self.blocks[block as usize];
        let slot = &block.slots[slot_index];
        debug_assert!(!slot.stale, "the front slot is stale");
        if block.level == 0 {
            return Some((block.start | slot_index as u64, slot.earliest_index));
        }
        Some((slot.earliest, slot.earliest_index))
    }

    /// The first occupied slot in time order, not split: block and slot.
    #[inline]
    fn first_slot(&self) -> Option<(u32, usize)> {
        for &block in &self.path {
            let bits = self.occupancy[block as usize];
            if bits != 0 {
                return Some(self.descend(block, bits.trailing_zeros() as usize));
            }
        }
        None
    }

    /// The first occupied slot under slot `slot_index` of `block`, descending through splits.
    #[inline]
    fn descend(&self, mut block: u32, mut slot_index: usize) -> (u32, usize) {
        loop {
            let child = self.blocks[block as usize].slots[slot_index].child;
            if child == NIL {
                return (block, slot_index);
            }
            count!(self, 1);
            block = child;
            let bits = self.occupancy[block as usize];
            debug_assert_ne!(bits, 0, "a split slot's block is empty");
            slot_index = bits.trailing_zeros() as usize;
        }
    }

    /// Yields the next timer due at or before tick `now`, in firing order, or `None`.
    ///
    /// Yielding a timer moves [`now`](Self::now) to its effective deadline (never back);
    /// yielding nothing moves it to `max(now, self.now())`. A `now` in the past acts as
    /// `self.now()`.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// wheel.insert_at(20, 'b');
    /// wheel.insert_at(10, 'a');
    /// assert_eq!(wheel.poll(15).map(|e| e.value), Some('a'));
    /// assert_eq!(wheel.now(), 10);
    /// assert!(wheel.poll(15).is_none());
    /// assert_eq!(wheel.now(), 15);
    /// ```
    #[inline]
    #[must_use = "a timer polled and dropped is lost"]
    pub fn poll(&mut self, now: u64) -> Option<Expired<T>> {
        // While a run lasts, its timers usually fire one after another with nothing of the
        // wheel's in between: skip the search of the levels.
        if let Some(run_next) = self.run.next_deadline() {
            if run_next < self.run_gate && run_next <= now.max(self.now) {
                debug_assert!(
                    self.run_gate <= self.levels_gate(),
                    "run gate {} past the levels' first event",
                    self.run_gate
                );
                return Some(self.pop_run());
            }
        }
        self.poll_wheel(now)
    }

    /// The tick `run_gate` is a lower bound of, as `poll_wheel` computes it: the first
    /// level-0 tick plus one (the run wins ties there), else the first coarse slot's start
    /// (which cascades before a run timer due at its start), else the end of time.
    fn levels_gate(&self) -> u64 {
        let level0 = self.path[0];
        let bits = self.occupancy[level0 as usize];
        if bits != 0 {
            let tick = self.blocks[level0 as usize].start | u64::from(bits.trailing_zeros());
            return tick.saturating_add(1);
        }
        self.first_coarse_slot()
            .map_or(u64::MAX, |(level, slot_index)| {
                self.path_slot_start(level, slot_index)
            })
    }

    /// The level and index of the first occupied path slot above level 0, if any.
    #[inline]
    fn first_coarse_slot(&self) -> Option<(usize, usize)> {
        (1..LEVELS).find_map(|level| {
            let bits = self.occupancy[self.path[level] as usize];
            (bits != 0).then(|| (level, bits.trailing_zeros() as usize))
        })
    }

    /// First tick of slot `slot_index` of the path block of `level`.
    #[inline]
    fn path_slot_start(&self, level: usize, slot_index: usize) -> u64 {
        let block = &self.blocks[self.path[level] as usize];
        block.start | ((slot_index as u64) << (level as u32 * SLOT_BITS))
    }

    /// `poll`, looking at the wheel's levels as well as the run.
    fn poll_wheel(&mut self, now: u64) -> Option<Expired<T>> {
        let target = now.max(self.now);
        let expired = loop {
            // The run's next timer goes before any wheel timer due at the same tick: it was
            // filed before the run began, they after (see `run.rs`).
            let run_next = self.run.next_deadline();
            let run_first = |wheel_next: u64| run_next.is_some_and(|run| run <= wheel_next);
            let level0 = self.path[0];
            let bits = self.occupancy[level0 as usize];
            if bits != 0 {
                let slot_index = bits.trailing_zeros() as usize;
                let tick = self.blocks[level0 as usize].start | slot_index as u64;
                debug_assert!(
                    tick >= self.now,
                    "level 0 holds tick {tick} before now {}",
                    self.now
                );
                if run_first(tick) {
                    if run_next > Some(target) {
                        break None;
                    }
                    // Nothing in the wheel is due before `tick`.
                    self.run_gate = tick.saturating_add(1);
                    break Some(self.pop_run());
                }
                if tick > target {
                    break None;
                }
                self.now = tick;
                break Some(self.pop_tick(level0, slot_index));
            }
            let Some((level, slot_index)) = self.first_coarse_slot() else {
                if run_next.is_some_and(|run| run <= target) {
                    self.run_gate = u64::MAX;
                    break Some(self.pop_run());
                }
                break None;
            };
            let start = self.path_slot_start(level, slot_index);
            // Before the slot's start, not at it: time must not pass a slot it has not
            // reached, and the slot holds nothing due before its start.
            if run_next.is_some_and(|run| run < start) {
                if run_next > Some(target) {
                    break None;
                }
                // Every occupied slot starts at or after `start`.
                self.run_gate = start;
                break Some(self.pop_run());
            }
            if start > target {
                break None;
            }
            let block = self.path[level];
            let slot = &self.blocks[block as usize].slots[slot_index];
            // A flat slot whose one live timer is its cached earliest holds just that timer
            // (and perhaps stale references).
            let single = slot.child == NIL && slot.live == 1 && !slot.stale;
            if single && slot.earliest <= target && !run_first(slot.earliest) {
                // The first occupied slot holds one timer, and it is due: fire it without
                // cascading. Every finer slot is empty, so nothing can be filed behind it.
                self.now = slot.earliest;
                let index = slot.earliest_index;
                self.blocks[block as usize].slots[slot_index].clear(&mut self.pool);
                self.occupancy[block as usize] &= !(1 << slot_index);
                break Some(self.expire(index));
            }
            // Time reaches the slot: its timers go to finer slots before anything else can be
            // filed behind them there; or, if this poll passes the whole slot, into a run in
            // firing order.
            self.now = start;
            let end = slot_end(start, level);
            if run_next.is_none()
                && end <= target
                && RUN_LEVELS.contains(&level)
                && slot.child == NIL
                && slot.len() <= RUN_MAX
            {
                self.start_run(level, slot_index, end);
            } else {
                self.reach(level, slot_index);
            }
        };
        if expired.is_none() {
            self.now = target;
        }
        // A fire, a cascade or a run may have made another slot the front.
        self.settle();
        expired
    }

    /// Every timer due at or before tick `now`, in firing order, as a lazy iterator of
    /// [`poll`](Self::poll)s. Once it is exhausted, [`now`](Self::now) is
    /// `max(now, self.now())`.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// wheel.insert_at(300, "later");
    /// wheel.insert_at(100, "first");
    /// wheel.insert_at(100, "second");
    /// let fired: Vec<_> = wheel.advance(200).map(|e| (e.deadline, e.value)).collect();
    /// assert_eq!(fired, [(100, "first"), (100, "second")]);
    /// assert_eq!(wheel.now(), 200);
    /// ```
    pub fn advance(&mut self, now: u64) -> Advance<'_, T> {
        Advance { wheel: self, now }
    }

    /// Cancels every pending timer, dropping their values. [`now`](Self::now) stays; keys
    /// issued before stay stale.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(1, ());
    /// wheel.clear();
    /// assert!(wheel.is_empty());
    /// assert_eq!(wheel.cancel(key), None);
    /// ```
    pub fn clear(&mut self) {
        for block in &mut self.blocks {
            for slot in &mut block.slots {
                // The pool is dropped below: no chunk needs to go back to it.
                *slot = Slot::default();
            }
            block.parent = NIL;
        }
        self.pool = Pool::new();
        self.occupancy.iter_mut().for_each(|bits| *bits = 0);
        self.free_blocks = (0..self.blocks.len() as u32)
            .filter(|block| !self.path.contains(block))
            .collect();
        self.run.clear();
        self.run_gate = 0;
        self.slab.clear();
    }

    /// Files the timer that reference `r` names, with effective deadline `effective` (at or
    /// after `now`) and stamp `stamp` (of any age: a timer filed again), at the back of its
    /// slot, and returns the slot's id for its storage entry.
    fn file(&mut self, r: Ref, effective: u64, stamp: u64) -> u32 {
        let level = level_of(self.now, effective);
        let path_block = self.path[level] as usize;
        if self.occupancy[path_block] == 0 {
            self.blocks[path_block].start = block_start(self.now, level);
        }
        let (block, slot_index, level) = file_in_split(
            &self.blocks,
            self.path[level],
            slot_of(effective, level),
            level,
            effective,
        );
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        let became = slot.push(&mut self.pool, r, effective, stamp);
        self.occupancy[block as usize] |= 1 << slot_index;
        self.run_gate = 0;
        slot_id(block, slot_index, level) | cached_if(became)
    }

    /// Takes a timer that just left (cancelled, fired or moved: its reference is stale now)
    /// out of the counts of the slot `filed` names, and keeps the front settled.
    #[inline(always)]
    fn unfile(&mut self, filed: u32, index: u32) {
        if filed == RUN {
            self.unfile_from_run(index);
            return;
        }
        let (block, slot_index) = split_id(filed);
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        debug_assert!(slot.live > 0, "unfile from the empty slot {filed}");
        slot.live -= 1;
        slot.touches = slot.touches.saturating_add(1);
        if slot.live == 0 {
            slot.clear(&mut self.pool);
            self.slot_emptied(block, slot_index);
            self.settle_cold();
        } else if slot.earliest_index == index && !slot.stale {
            slot.stale = true;
            self.settle_cold();
        } else if slot.should_sweep() {
            self.sweep(block, slot_index);
        }
    }

    /// `unfile` of a run timer, out of line: runs exist only while a long `advance` is under
    /// way, so the touch path should not carry this code.
    #[cold]
    fn unfile_from_run(&mut self, index: u32) {
        debug_assert!(self.run.live > 0, "unfile from an empty run");
        self.run.live -= 1;
        if self.run.next().is_some_and(|(_, r)| ref_index(r) == index) {
            let slab = &self.slab;
            self.run.skip_stale(|r| slab.is_live(r));
        } else if self.run.live == 0 {
            self.run.clear();
        }
    }

    /// The slot `slot_index` of `block` has just been emptied and cleared: its bit goes, and
    /// a split block left empty is freed, as is any split block above it left empty.
    fn slot_emptied(&mut self, mut block: u32, mut slot_index: usize) {
        loop {
            self.occupancy[block as usize] &= !(1 << slot_index);
            let parent = self.blocks[block as usize].parent;
            if self.occupancy[block as usize] != 0 || parent == NIL {
                return;
            }
            self.free_block(block);
            (block, slot_index) = split_id(parent);
            self.blocks[block as usize].slots[slot_index].child = NIL;
        }
    }

    /// Drops the stale references of a slot.
    #[cold]
    fn sweep(&mut self, block: u32, slot_index: usize) {
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        count!(self, slot.len() as u64);
        let slab = &self.slab;
        let prefetch = slab.bytes() > PREFETCH_ABOVE_BYTES;
        slot.retain(
            &mut self.pool,
            |r| {
                if prefetch {
                    slab.prefetch(r);
                }
            },
            |r| slab.is_live(r),
        );
        debug_assert_eq!(slot.len(), slot.live as usize, "live count disagrees");
    }

    /// `settle` out of line, for the cancel path, which needs it rarely.
    #[cold]
    #[inline(never)]
    fn settle_cold(&mut self) {
        self.settle();
    }

    /// Makes the front exact again: its cached earliest live, with its true deadline, before
    /// everything else in the slot; a level-0 front in stamp order.
    fn settle(&mut self) {
        while let Some((block, slot_index)) = self.first_slot() {
            let level = self.blocks[block as usize].level;
            let slot = &self.blocks[block as usize].slots[slot_index];
            if !slot.stale && (level > 0 || slot.stamp_order) {
                return;
            }
            if level == 0 {
                self.settle_tick(block, slot_index);
            } else if slot.len() <= SCAN_MAX.max(slot.touches as usize * SCAN_PER_TOUCH) {
                self.scan(block, slot_index);
            } else {
                self.split(block, slot_index);
            }
        }
    }

    /// Settles a level-0 slot: puts its live references in stamp order and caches the first.
    fn settle_tick(&mut self, block: u32, slot_index: usize) {
        let tick = self.blocks[block as usize].start | slot_index as u64;
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        if slot.stamp_order {
            // Ordered, the first live reference is the earliest: drop the stale ones before it.
            while let Some(r) = slot.front(&self.pool) {
                count!(self, 1);
                if let Some(timer) = self.slab.resolve(r) {
                    (slot.earliest, slot.earliest_stamp) = (tick, timer.stamp);
                    slot.earliest_index = ref_index(r);
                    slot.stale = false;
                    return;
                }
                slot.pop_front(&mut self.pool);
            }
            unreachable!("a level-0 slot with live timers has a live reference");
        }
        // Out of stamp order (a cascade or split filed a lazily moved timer behind newer
        // ones): sort once.
        let mut scratch = std::mem::take(&mut self.scratch);
        let slab = &self.slab;
        slot.for_each(&self.pool, |r| {
            if let Some(timer) = slab.resolve(r) {
                scratch.push((timer.stamp, r));
            }
        });
        count!(self, slot.len() as u64);
        scratch.sort_unstable_by_key(|&(stamp, _)| stamp);
        slot.restart(&mut self.pool);
        for &(stamp, r) in &scratch {
            slot.push(&mut self.pool, r, tick, stamp);
        }
        scratch.clear();
        self.scratch = scratch;
    }

    /// Settles a small coarse slot by reading all of it: drops its stale references, files
    /// again the timers lazily moved past its span, and caches the earliest of the rest.
    fn scan(&mut self, block: u32, slot_index: usize) {
        let (start, level) = {
            let block = &self.blocks[block as usize];
            let level = block.level;
            (
                block.start | ((slot_index as u64) << (level as u32 * SLOT_BITS)),
                level,
            )
        };
        let end = slot_end(start, level);
        let mut refile = std::mem::take(&mut self.refile);
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        count!(self, slot.len() as u64);
        let slab = &self.slab;
        let mut earliest: Option<(u64, u64, u32)> = None;
        slot.retain(
            &mut self.pool,
            |_| {},
            |r| {
                let Some(timer) = slab.resolve(r) else {
                    return false;
                };
                if timer.deadline > end {
                    refile.push(r);
                    return false;
                }
                let candidate = (timer.deadline, timer.stamp, ref_index(r));
                if earliest.is_none_or(|e| (candidate.0, candidate.1) < (e.0, e.1)) {
                    earliest = Some(candidate);
                }
                true
            },
        );
        slot.live -= refile.len() as u32;
        slot.touches = 0;
        match earliest {
            Some((deadline, stamp, index)) => {
                (slot.earliest, slot.earliest_stamp, slot.earliest_index) =
                    (deadline, stamp, index);
                slot.stale = false;
                self.slab
                    .set_filed(index, slot_id(block, slot_index, level) | CACHED);
            }
            None => {
                debug_assert_eq!(slot.live, 0);
                slot.clear(&mut self.pool);
                self.slot_emptied(block, slot_index);
            }
        }
        self.refile_all(&mut refile);
        self.refile = refile;
    }

    /// Splits a large coarse slot into a block of the next finer level, early: what a cascade
    /// does when time reaches the slot, done now because the slot's earliest timer is needed.
    /// When time reaches the slot, its block becomes part of the path as it is.
    fn split(&mut self, block: u32, slot_index: usize) {
        let (start, level) = {
            let block = &self.blocks[block as usize];
            let level = block.level;
            (
                block.start | ((slot_index as u64) << (level as u32 * SLOT_BITS)),
                level,
            )
        };
        let Some(child) = self.try_alloc_block(level - 1, start, slot_id(block, slot_index, level))
        else {
            // Out of block ids (a wheel of more than 2^26 blocks): scan instead.
            return self.scan(block, slot_index);
        };
        #[cfg(test)]
        {
            self.splits += 1;
        }
        let source = std::mem::take(&mut self.blocks[block as usize].slots[slot_index]);
        self.distribute(source, child);
        if self.occupancy[child as usize] == 0 {
            // Every timer had moved past the slot.
            self.free_block(child);
            self.slot_emptied(block, slot_index);
        } else {
            self.blocks[block as usize].slots[slot_index].child = child;
        }
    }

    /// Files the live timers of `source`, a flat slot of the span of `child` (an empty block),
    /// in `child`'s slots, in order; those lazily moved past the span are filed again
    /// wherever their deadline says, relative to `now`.
    fn distribute(&mut self, mut source: Slot, child: u32) {
        let (start, level) = {
            let block = &self.blocks[child as usize];
            (block.start, block.level)
        };
        let end = slot_end(start, level + 1);
        let mut refile = std::mem::take(&mut self.refile);
        count!(self, source.len() as u64 + 1);
        let prefetch = self.slab.bytes() > PREFETCH_ABOVE_BYTES;
        let block = &mut self.blocks[child as usize];
        let occupancy = &mut self.occupancy[child as usize];
        source.drain(
            &mut self.pool,
            &mut self.slab,
            |slab, r| {
                if prefetch {
                    slab.prefetch(r);
                }
            },
            |slab, pool, r| {
                let Some(occupant) = slab.resolve_mut(r) else {
                    return;
                };
                let (deadline, stamp) = (occupant.value.deadline, occupant.value.stamp);
                if deadline > end {
                    refile.push(r);
                    return;
                }
                debug_assert!(deadline >= start, "a timer before its slot");
                let to = slot_of(deadline, level);
                let became = block.slots[to].push(pool, r, deadline, stamp);
                *occupancy |= 1 << to;
                *occupant.filed = slot_id(child, to, level) | cached_if(became);
            },
        );
        self.run_gate = 0;
        self.refile_all(&mut refile);
        self.refile = refile;
    }

    /// Files again, relative to `now`, each timer in `refile` (live references whose slots
    /// let go of them), by its true deadline, and empties `refile`.
    fn refile_all(&mut self, refile: &mut Vec<Ref>) {
        count!(self, refile.len() as u64);
        for r in refile.drain(..) {
            let Some(timer) = self.slab.resolve(r) else {
                continue;
            };
            let (deadline, stamp) = (timer.deadline, timer.stamp);
            debug_assert!(deadline >= self.now, "a lazily moved timer before now");
            let filed = self.file(r, deadline, stamp);
            self.slab.set_filed(ref_index(r), filed);
        }
    }

    /// Time has just reached the start of slot `slot_index` of the path block of `level`:
    /// that slot becomes the path below `level`, split if it was not.
    fn reach(&mut self, level: usize, slot_index: usize) {
        let block = self.path[level];
        // The finer path blocks cover spans that time has left: they are empty.
        for finer in 0..level {
            self.free_block(self.path[finer]);
        }
        self.occupancy[block as usize] &= !(1 << slot_index);
        let child = self.take_as_block(block, slot_index, level);
        self.path[level - 1] = child;
        // `now` starts the slot's span, so it is in slot 0 of each finer block: that slot is
        // the next path block.
        for finer in (1..level).rev() {
            let block = self.path[finer];
            self.occupancy[block as usize] &= !1;
            self.path[finer - 1] = self.take_as_block(block, 0, finer);
        }
    }

    /// Slot `slot_index` of `block` (of `level`), which time has reached and whose bit is
    /// cleared, as a block of the next finer level: its split block, or a new one its timers
    /// are distributed into.
    fn take_as_block(&mut self, block: u32, slot_index: usize, level: usize) -> u32 {
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        let child = std::mem::replace(&mut slot.child, NIL);
        if child != NIL {
            self.blocks[child as usize].parent = NIL;
            return child;
        }
        let source = std::mem::take(slot);
        let child = self.alloc_block(level - 1, self.now, NIL);
        if source.len() > 0 {
            self.distribute(source, child);
        }
        child
    }

    /// Turns slot `slot_index` of the path block of `level`, which time has just reached and
    /// the current poll passes whole (its last tick is `end`), into the run.
    fn start_run(&mut self, level: usize, slot_index: usize, end: u64) {
        let block = self.path[level];
        for finer in 0..level {
            self.free_block(self.path[finer]);
        }
        let mut source = std::mem::take(&mut self.blocks[block as usize].slots[slot_index]);
        self.occupancy[block as usize] &= !(1 << slot_index);
        for finer in (0..level).rev() {
            self.path[finer] = self.alloc_block(finer, block_start(self.now, finer), NIL);
        }
        count!(self, source.len() as u64);
        let mut refile = std::mem::take(&mut self.refile);
        let (slab, pool, start) = (&mut self.slab, &mut self.pool, self.now);
        let prefetch = slab.bytes() > PREFETCH_ABOVE_BYTES;
        let stamp_order = self.run.fill(start, end, |run| {
            run.reserve(source.live as usize);
            source.drain(
                pool,
                slab,
                |slab, r| {
                    if prefetch {
                        slab.prefetch(r);
                    }
                },
                |slab, _, r| {
                    let Some(occupant) = slab.resolve_mut(r) else {
                        return;
                    };
                    let timer = &*occupant.value;
                    if timer.deadline > end {
                        refile.push(r);
                        return;
                    }
                    run.push(r, timer.deadline, timer.stamp);
                    *occupant.filed = RUN;
                },
            );
        });
        let slab = &self.slab;
        let stamp_of = |r| slab.resolve(r).map_or(0, |timer: &Timer<T>| timer.stamp);
        self.run.finish((!stamp_order).then_some(stamp_of));
        self.refile_all(&mut refile);
        self.refile = refile;
    }

    /// Fires the first timer of the level-0 slot `slot_index` of `block`, the front.
    fn pop_tick(&mut self, block: u32, slot_index: usize) -> Expired<T> {
        let slot = &self.blocks[block as usize].slots[slot_index];
        if slot.stale || !slot.stamp_order {
            self.settle_tick(block, slot_index);
        }
        let slot = &mut self.blocks[block as usize].slots[slot_index];
        let index = slot.earliest_index;
        // Stale references may come before it: the earliest is the first live one.
        while let Some(r) = slot.pop_front(&mut self.pool) {
            if ref_index(r) == index && self.slab.is_live(r) {
                break;
            }
        }
        slot.live -= 1;
        if slot.live == 0 {
            slot.clear(&mut self.pool);
            self.occupancy[block as usize] &= !(1 << slot_index);
        } else {
            // The next live reference is the earliest now; `poll_wheel` settles.
            slot.stale = true;
        }
        self.expire(index)
    }

    /// Fires the run's next timer.
    fn pop_run(&mut self) -> Expired<T> {
        // A run fires in deadline order, which is random in storage: load the storage of the
        // timer eight places ahead. Worth it even when storage fits in L2, where the sweeps'
        // and cascades' prefetches are not.
        if let Some(ahead) = self.run.ahead(8) {
            self.slab.prefetch(ahead);
        }
        let (deadline, r) = self.run.next().expect("an active run");
        debug_assert!(
            deadline >= self.now,
            "run timer at {deadline} before now {}",
            self.now
        );
        self.run.advance();
        self.run.live -= 1;
        let index = ref_index(r);
        let expired = self.expire(index);
        let slab = &self.slab;
        self.run.skip_stale(|r| slab.is_live(r));
        self.now = deadline;
        expired
    }

    /// Frees the live timer at storage `index`, once its slot has let go of it.
    #[inline]
    fn expire(&mut self, index: u32) -> Expired<T> {
        let (key, timer) = self.slab.vacate(index);
        Expired {
            key,
            deadline: timer.deadline,
            value: timer.value,
        }
    }

    /// A block of `level` from `start`, empty.
    fn alloc_block(&mut self, level: usize, start: u64, parent: u32) -> u32 {
        self.try_alloc_block(level, start, parent)
            .expect("tierwheel: the wheel has no block left")
    }

    /// A block of `level` from `start`, empty, or `None` if every block id is taken.
    fn try_alloc_block(&mut self, level: usize, start: u64, parent: u32) -> Option<u32> {
        count!(self, 1);
        if let Some(block) = self.free_blocks.pop() {
            let b = &mut self.blocks[block as usize];
            (b.start, b.level, b.parent) = (start, level, parent);
            return Some(block);
        }
        if self.blocks.len() >= MAX_BLOCKS {
            return None;
        }
        self.blocks.push(Block {
            slots: std::array::from_fn(|_| Slot::default()),
            start,
            level,
            parent,
        });
        self.occupancy.push(0);
        Some(self.blocks.len() as u32 - 1)
    }

    /// Returns an empty block to the free list.
    fn free_block(&mut self, block: u32) {
        debug_assert_eq!(self.occupancy[block as usize], 0, "freeing a block in use");
        self.blocks[block as usize].parent = NIL;
        self.free_blocks.push(block);
    }

    /// Checks the wheel's invariants: every live reference where its storage says, every count
    /// and bit right, every cache a bound (and the front's exact), the path consistent.
    #[cfg(test)]
    fn check(&self) {
        let mut total = 0;
        let mut visit = vec![];
        for (level, &block) in self.path.iter().enumerate() {
            let b = &self.blocks[block as usize];
            assert_eq!(b.level, level, "path block of level {level}");
            if self.occupancy[block as usize] != 0 {
                assert_eq!(
                    b.start,
                    block_start(self.now, level),
                    "path block start at {level}"
                );
            }
            assert_eq!(b.parent, NIL);
            let current = slot_of(self.now, level);
            let before = if level == 0 {
                (1u64 << current) - 1
            } else {
                (1u64 << current << 1).wrapping_sub(1)
            };
            assert_eq!(
                self.occupancy[block as usize] & before,
                0,
                "level {level} has timers before now"
            );
            visit.push(block);
        }
        while let Some(block) = visit.pop() {
            let b = &self.blocks[block as usize];
            for (slot_index, slot) in b.slots.iter().enumerate() {
                let id = slot_id(block, slot_index, b.level);
                let bit = self.occupancy[block as usize] >> slot_index & 1 == 1;
                if slot.child != NIL {
                    assert_eq!(slot.len(), 0, "a split slot holds references");
                    assert!(bit, "split slot {id} unoccupied");
                    let child = &self.blocks[slot.child as usize];
                    assert_eq!(child.parent, id);
                    assert_eq!(child.level + 1, b.level);
                    visit.push(slot.child);
                    continue;
                }
                let start = b.start | ((slot_index as u64) << (b.level as u32 * SLOT_BITS));
                let mut live = 0;
                let mut min: Option<(u64, u64)> = None;
                slot.for_each(&self.pool, |r| {
                    if let Some(timer) = self.slab.resolve(r) {
                        live += 1;
                        let (filed, _) = self.slab.at(ref_index(r)).unwrap();
                        assert_eq!(
                            filed & !CACHED,
                            id,
                            "timer {} not where its storage says",
                            ref_index(r)
                        );
                        let effective = if b.level == 0 { start } else { timer.deadline };
                        assert!(effective >= start, "timer before its slot {id}");
                        if b.level == 0 {
                            assert!(timer.deadline <= start);
                        }
                        if min.is_none_or(|m| (effective, timer.stamp) < m) {
                            min = Some((effective, timer.stamp));
                        }
                    }
                });
                assert_eq!(live, slot.live as usize, "live count of slot {id}");
                assert_eq!(bit, live > 0, "occupancy of slot {id}");
                if let Some(min) = min {
                    assert!(
                        (slot.earliest, slot.earliest_stamp) <= min,
                        "slot {id}'s cache is not a bound"
                    );
                    if !slot.stale {
                        assert_eq!((slot.earliest, slot.earliest_stamp), min, "cache of {id}");
                        if b.level > 0 {
                            let (filed, _) = self.slab.at(slot.earliest_index).unwrap();
                            assert_ne!(filed & CACHED, 0, "slot {id}'s earliest is not marked");
                        }
                    }
                }
                total += live;
            }
        }
        let mut live = 0;
        self.run.for_each(|r| {
            if self.slab.resolve(r).is_some() {
                live += 1;
                assert_eq!(self.slab.at(ref_index(r)).unwrap().0, RUN);
            }
        });
        assert_eq!(live, self.run.live, "live count of the run");
        if let Some((_, r)) = self.run.next() {
            assert!(self.slab.is_live(r), "the run's head is stale");
        }
        total += live;
        assert_eq!(total, self.slab.len(), "timers without a reference");
        // The front is exact: its cache a live timer with that deadline, nothing before it.
        if let Some((block, slot_index)) = self.first_slot() {
            let b = &self.blocks[block as usize];
            let slot = &b.slots[slot_index];
            assert!(!slot.stale, "the front slot is stale");
            let (filed, timer) = self.slab.at(slot.earliest_index).expect("front cache live");
            if b.level == 0 {
                assert!(slot.stamp_order, "the level-0 front is out of stamp order");
            } else {
                assert_eq!(timer.deadline, slot.earliest);
                assert_ne!(
                    filed & CACHED,
                    0,
                    "the front's earliest does not know it is cached"
                );
            }
        }
    }
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("now", &self.now)
            .field("len", &self.len())
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
