//! The core: a hierarchical hashed timing wheel over `u64` ticks.
//!
//! The wheel never reads a clock, never calls user code and never allocates per operation once
//! its storage has grown. Its invariant, checked in debug builds where it could break: every
//! pending timer sits in the slot that [`position`] names for its effective deadline and the
//! current tick, behind every timer placed there before it. Cascading a slot when time reaches
//! its start, also when nothing is due, is what keeps that true; FIFO order follows from it.

mod position;
mod slot;

use std::fmt;
use std::iter::FusedIterator;

use crate::slab::{CapacityError, Slab, TimerKey};
use position::{level_of, slot_of, slot_start, LEVELS, SLOTS};
use slot::{Slot, SlotEntry};

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
pub struct Expired<T> {
    /// The key the timer had; stale from now on.
    pub key: TimerKey,
    /// The deadline that was asked for, in ticks. It lies before the tick the timer fired at
    /// when it was already past at insertion.
    pub deadline: u64,
    /// The timer's value.
    pub value: T,
}

/// A stored timer.
struct Timer<T> {
    /// The deadline asked for, in ticks. The effective deadline is `max(deadline, now)`: a
    /// pending timer's effective deadline is never before `now`, so only a timer that was past
    /// due at insertion has one that differs, and that one equals `now`.
    deadline: u64,
    /// Placement stamp, matched by the [`SlotEntry`] that places the timer.
    stamp: u32,
    value: T,
}

/// A hierarchical hashed timing wheel: timers keyed by [`TimerKey`], due at `u64` ticks.
///
/// Insert, cancel and reschedule are O(1), independent of the number of pending timers and of
/// the delay. Any deadline up to `u64::MAX` is accepted and fires at exactly its tick. Timers
/// fire by effective deadline (`max(deadline, now())` at insertion), then first in, first out.
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
    /// Per level, one bit per slot holding at least one live timer.
    occupied: [u64; LEVELS],
    /// `LEVELS * SLOTS` slots, level by level.
    slots: Box<[Slot]>,
    /// The current tick.
    now: u64,
    /// Stamp of the next placement. Stamps tell a slot's live reference to a timer from the
    /// tombstones it left by being cancelled or rescheduled.
    next_stamp: u32,
    /// When `next_stamp` reaches this, every live timer is stamped anew (see `restamp`).
    stamp_limit: u32,
}

/// The timers due at a given tick, in firing order, returned by [`TimerWheel::advance`].
///
/// Each step is one [`TimerWheel::poll`]: dropping the iterator early leaves the wheel
/// consistent, at the tick of the last timer it yielded, with the rest still pending.
///
/// ```
/// use tierwheel::TimerWheel;
///
/// let mut wheel = TimerWheel::new();
/// for tick in [3, 5, 9] {
///     wheel.insert_at(tick, tick);
/// }
/// let mut drain = wheel.advance(100);
/// assert_eq!(drain.next().map(|e| e.value), Some(3));
/// drop(drain);
/// assert_eq!((wheel.now(), wheel.len()), (3, 2));
/// ```
pub struct Drain<'a, T> {
    wheel: &'a mut TimerWheel<T>,
    /// The tick to advance to.
    now: u64,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = Expired<T>;

    fn next(&mut self) -> Option<Expired<T>> {
        self.wheel.poll(self.now)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.wheel.len()))
    }
}

impl<T> FusedIterator for Drain<'_, T> {}

impl<T> fmt::Debug for Drain<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("now", &self.now)
            .field("wheel", &self.wheel)
            .finish()
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
        TimerWheel {
            slab: Slab::new(),
            occupied: [0; LEVELS],
            slots: (0..LEVELS * SLOTS).map(|_| Slot::default()).collect(),
            now,
            next_stamp: 0,
            stamp_limit: u32::MAX,
        }
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

    /// The current tick.
    ///
    /// It only moves forward, through [`poll`](Self::poll) and [`advance`](Self::advance).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::<()>::new();
    /// wheel.poll(50);
    /// wheel.poll(20); // time never runs backwards
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
    /// If `u32::MAX` timers are pending, so that no key is left; use
    /// [`try_insert_at`](Self::try_insert_at) to get an error instead.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(u64::MAX, "at the end of time");
    /// assert_eq!(wheel.deadline(key), Some(u64::MAX));
    /// ```
    pub fn insert_at(&mut self, deadline: u64, value: T) -> TimerKey {
        match self.try_insert_at(deadline, value) {
            Ok(key) => key,
            Err(CapacityError) => panic!(
                "tierwheel: cannot insert a timer, u32::MAX timers are pending \
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
    pub fn insert_after(&mut self, delay: u64, value: T) -> TimerKey {
        self.insert_at(self.now.saturating_add(delay), value)
    }

    /// Like [`insert_at`](Self::insert_at), but returns [`CapacityError`] instead of
    /// panicking when no key is left. The value is dropped in that case.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.try_insert_at(5, ()).expect("room for one more");
    /// assert_eq!(wheel.deadline(key), Some(5));
    /// ```
    pub fn try_insert_at(&mut self, deadline: u64, value: T) -> Result<TimerKey, CapacityError> {
        let stamp = self.take_stamp();
        let key = self.slab.insert(Timer {
            deadline,
            stamp,
            value,
        })?;
        self.place(
            SlotEntry {
                index: key.index(),
                stamp,
            },
            deadline,
        );
        Ok(key)
    }

    /// Like [`insert_after`](Self::insert_after), but returns [`CapacityError`] instead of
    /// panicking when no key is left.
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
    /// Returns `None`, and does nothing, if the timer has fired or been cancelled, or the key
    /// is not from this wheel.
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.insert_at(5, "value");
    /// assert_eq!(wheel.cancel(key), Some("value"));
    /// assert_eq!(wheel.cancel(key), None);
    /// ```
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let deadline = self.slab.get(key)?.deadline;
        self.unplace(deadline);
        Some(self.slab.vacate(key.index()).value)
    }

    /// Moves a pending timer to `deadline`, as if it were inserted anew: behind every timer
    /// already due at the same tick, also when the deadline does not change. The key stays
    /// valid. Returns `false`, and does nothing, if the timer is not pending.
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
    pub fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        if self.slab.get(key).is_none() {
            return false;
        }
        // Restamping, if it is due, must see the timer where it still is.
        let stamp = self.take_stamp();
        let timer = self.slab.get_mut(key).expect("checked above");
        let old_deadline = std::mem::replace(&mut timer.deadline, deadline);
        timer.stamp = stamp;
        self.unplace(old_deadline);
        self.place(
            SlotEntry {
                index: key.index(),
                stamp,
            },
            deadline,
        );
        true
    }

    /// The deadline a pending timer was given (the one asked for, even if it was past).
    ///
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::starting_at(100);
    /// let key = wheel.insert_at(3, ());
    /// assert_eq!(wheel.deadline(key), Some(3));
    /// wheel.poll(100);
    /// assert_eq!(wheel.deadline(key), None);
    /// ```
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.slab.get(key).map(|timer| timer.deadline)
    }

    /// The smallest effective deadline of any pending timer: the tick at which
    /// [`poll`](Self::poll) will next yield one. Exact, never the start of a coarse slot.
    ///
    /// O(levels) when the earliest timer is within 64 ticks of `now()`, or when the earliest
    /// timer placed in the first occupied slot is still there; otherwise it walks that one slot.
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
        if self.occupied[0] != 0 {
            let slot = self.occupied[0].trailing_zeros() as usize;
            return Some(slot_start(self.now, 0, slot));
        }
        let level = (1..LEVELS).find(|&level| self.occupied[level] != 0)?;
        let slot = &self.slots[level * SLOTS + self.occupied[level].trailing_zeros() as usize];
        if let Some(entry) = slot.earliest_entry {
            if live(&self.slab, entry).is_some() {
                return Some(slot.earliest);
            }
        }
        slot.entries[slot.head as usize..]
            .iter()
            .filter_map(|&entry| live(&self.slab, entry))
            .map(|timer| timer.deadline)
            .min()
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
    pub fn poll(&mut self, now: u64) -> Option<Expired<T>> {
        let target = now.max(self.now);
        loop {
            if self.occupied[0] != 0 {
                let slot = self.occupied[0].trailing_zeros() as usize;
                let tick = slot_start(self.now, 0, slot);
                debug_assert!(
                    tick >= self.now,
                    "level 0 holds tick {tick} before now {}",
                    self.now
                );
                if tick > target {
                    break;
                }
                self.now = tick;
                return Some(self.pop(slot));
            }
            let Some(level) = (1..LEVELS).find(|&level| self.occupied[level] != 0) else {
                break;
            };
            let slot = self.occupied[level].trailing_zeros() as usize;
            let start = slot_start(self.now, level, slot);
            if start > target {
                break;
            }
            // Time reaches the slot: its timers move to finer levels before anything else
            // can be placed behind them there.
            self.now = start;
            self.cascade(level, slot);
        }
        self.now = target;
        None
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
    pub fn advance(&mut self, now: u64) -> Drain<'_, T> {
        Drain { wheel: self, now }
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
        self.slots.iter_mut().for_each(Slot::clear);
        self.occupied = [0; LEVELS];
        self.slab.clear();
    }

    /// Places a timer with deadline `deadline` at the back of its slot.
    fn place(&mut self, entry: SlotEntry, deadline: u64) {
        let effective = deadline.max(self.now);
        let level = level_of(self.now, effective);
        let slot_index = slot_of(effective, level);
        let slot = &mut self.slots[level * SLOTS + slot_index];
        if slot.should_compact() {
            compact(slot, &self.slab, self.now);
        }
        slot.push(entry, effective);
        self.occupied[level] |= 1 << slot_index;
    }

    /// Takes a timer with deadline `deadline` out of its slot's live count; its reference
    /// stays behind as a tombstone.
    fn unplace(&mut self, deadline: u64) {
        let effective = deadline.max(self.now);
        let level = level_of(self.now, effective);
        let slot_index = slot_of(effective, level);
        let slot = &mut self.slots[level * SLOTS + slot_index];
        debug_assert!(
            slot.live > 0,
            "unplace from the empty slot {slot_index} of level {level}"
        );
        slot.live -= 1;
        if slot.live == 0 {
            slot.clear();
            self.occupied[level] &= !(1 << slot_index);
        }
    }

    /// Removes and returns the first live timer of level 0's `slot_index`.
    fn pop(&mut self, slot_index: usize) -> Expired<T> {
        let slot = &mut self.slots[slot_index];
        let entry = loop {
            let entry = slot.entries[slot.head as usize];
            slot.head += 1;
            if live(&self.slab, entry).is_some() {
                break entry;
            }
        };
        slot.live -= 1;
        if slot.live == 0 {
            slot.clear();
            self.occupied[0] &= !(1 << slot_index);
        }
        let (key, _) = self.slab.get_at(entry.index).expect("checked live");
        let timer = self.slab.vacate(entry.index);
        Expired {
            key,
            deadline: timer.deadline,
            value: timer.value,
        }
    }

    /// Moves every live timer of `slot_index` on `level` to the finer level its deadline now
    /// names, in order; `now` has just reached the slot's start.
    fn cascade(&mut self, level: usize, slot_index: usize) {
        let source = &mut self.slots[level * SLOTS + slot_index];
        let head = source.head as usize;
        let mut entries = std::mem::take(&mut source.entries);
        source.clear();
        self.occupied[level] &= !(1 << slot_index);
        for &entry in &entries[head..] {
            let Some(timer) = live(&self.slab, entry) else {
                continue;
            };
            let deadline = timer.deadline;
            let to_level = level_of(self.now, deadline);
            debug_assert!(
                to_level < level,
                "cascade of {deadline} from level {level} at {}",
                self.now
            );
            let to_slot = slot_of(deadline, to_level);
            self.slots[to_level * SLOTS + to_slot].push(entry, deadline);
            self.occupied[to_level] |= 1 << to_slot;
        }
        entries.clear();
        self.slots[level * SLOTS + slot_index].entries = entries;
    }

    /// Hands out a placement stamp. When the counter would wrap, every live timer is stamped
    /// anew from zero and every tombstone dropped first, so no tombstone can ever carry a stamp
    /// that a later placement of the same entry gets. That sweep is O(pending timers) once per
    /// 2^32 placements.
    fn take_stamp(&mut self) -> u32 {
        if self.next_stamp == self.stamp_limit {
            self.restamp();
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        stamp
    }

    fn restamp(&mut self) {
        let mut stamp = 0;
        for slot in self.slots.iter_mut() {
            compact(slot, &self.slab, self.now);
            for entry in slot.entries.iter_mut() {
                let timer = self
                    .slab
                    .get_at_mut(entry.index)
                    .expect("compacted entries are live");
                timer.stamp = stamp;
                entry.stamp = stamp;
                if slot.earliest_entry.is_some_and(|e| e.index == entry.index) {
                    slot.earliest_entry = Some(*entry);
                }
                stamp += 1;
            }
        }
        assert!(
            stamp < self.stamp_limit,
            "tierwheel: more live timers than placement stamps"
        );
        self.next_stamp = stamp;
    }

    /// A wheel whose stamps wrap after `limit` placements, to test the restamp sweep.
    #[cfg(test)]
    fn with_stamp_limit(limit: u32) -> Self {
        TimerWheel {
            stamp_limit: limit,
            ..Self::new()
        }
    }
}

/// The timer a slot reference places, if that reference is not a tombstone.
#[inline]
fn live<T>(slab: &Slab<Timer<T>>, entry: SlotEntry) -> Option<&Timer<T>> {
    match slab.get_at(entry.index) {
        Some((_, timer)) if timer.stamp == entry.stamp => Some(timer),
        _ => None,
    }
}

/// Drops a slot's tombstones and consumed references, keeping order, and recomputes its
/// earliest deadline.
fn compact<T>(slot: &mut Slot, slab: &Slab<Timer<T>>, now: u64) {
    let head = slot.head as usize;
    let mut kept = 0;
    slot.earliest_entry = None;
    for read in head..slot.entries.len() {
        let entry = slot.entries[read];
        if let Some(timer) = live(slab, entry) {
            let effective = timer.deadline.max(now);
            if slot.earliest_entry.is_none() || effective < slot.earliest {
                slot.earliest = effective;
                slot.earliest_entry = Some(entry);
            }
            slot.entries[kept] = entry;
            kept += 1;
        }
    }
    debug_assert_eq!(
        kept, slot.live as usize,
        "slot live count disagrees with its references"
    );
    slot.entries.truncate(kept);
    slot.head = 0;
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
