//! The core: a hierarchical hashed timing wheel over `u64` ticks.
//!
//! The wheel never reads a clock, never calls user code and never allocates per operation once
//! its storage has grown. Its invariant, checked in debug builds where it could break: every
//! pending timer sits in the slot that [`position`] names for its effective deadline and the
//! current tick, behind every timer placed there before it, or in the run (see [`run`]), which
//! holds every timer of one span placed before the run began, in firing order. Cascading a slot
//! when time reaches its start, also when nothing is due, is what keeps that true; FIFO order
//! follows from it.

mod position;
mod run;
mod slot;

use std::fmt;
use std::iter::FusedIterator;

use crate::slab::{CapacityError, Slab, TimerKey};
use position::{level_of, slot_end, slot_of, slot_start, LEVELS, SLOTS};
use run::{Run, RUN_MAX};
use slot::{Pool, Slot, SlotEntry, DEAD, HEADER_AT};

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
    value: T,
}

/// Timer storage larger than this is not expected to stay in cache, so cascades and runs being
/// filled, which read the storage of every timer they move, prefetch it a chunk ahead. Below
/// it, those prefetches cost more instructions than they save time (measured on `fire` at 10^3
/// and 10^4). Firing from a run prefetches at every size: see `pop_run`.
const PREFETCH_ABOVE_BYTES: usize = 1 << 20;

/// Finest and coarsest levels whose slots can become a run: their spans (2^6 to 2^30 ticks)
/// fit a run's sort keys.
const RUN_LEVELS: std::ops::RangeInclusive<usize> = 1..=5;

/// A hierarchical hashed timing wheel: timers keyed by [`TimerKey`], due at `u64` ticks.
///
/// Insert, cancel and reschedule are O(1), independent of the number of pending timers and of
/// the delay; cancel and reschedule amortized, with one exception, below. Any deadline up to
/// `u64::MAX` is accepted and fires at exactly its tick. Timers fire by effective deadline
/// (`max(deadline, now())` at insertion), then first in, first out.
///
/// The exception keeps [`next_deadline`](Self::next_deadline) exact and O(levels): a cancel or
/// reschedule of the earliest timer of the first occupied coarse slot, when that slot's
/// deadlines did not arrive in increasing order, walks the slot to find its new earliest. A
/// cancel at random hits that timer with probability one in the slot's size, so this is O(1)
/// expected; a caller that cancels exactly that timer again and again pays O(slot) each time
/// (docs/design.md, "How is `next_deadline` exact?").
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
    slots: Box<[Slot; LEVELS * SLOTS]>,
    /// The chunks the slots' reference lists are made of.
    pool: Pool,
    /// A coarse slot that a `poll` passed whole, sorted into firing order (`run.rs`).
    run: Run,
    /// While the run is active: a run timer due before this tick fires before anything in the
    /// levels, so `poll` fires it without searching them. The last `poll` that searched the
    /// levels and fired from the run set it; every placement zeroes it. Cancels, cascades and
    /// fires only move the levels' timers later, so it stays a lower bound until then.
    run_gate: u64,
    /// The current tick.
    now: u64,
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
            // Built on the heap (45 KB), then typed as an array so that slot indices computed
            // from `level_of` and `slot_of` need no bounds checks.
            slots: (0..LEVELS * SLOTS)
                .map(|_| Slot::default())
                .collect::<Box<[Slot]>>()
                .try_into()
                .expect("LEVELS * SLOTS slots"),
            pool: Pool::new(),
            run: Run::default(),
            run_gate: 0,
            now,
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
    /// If [`MAX_PENDING`](crate::MAX_PENDING) (2^31 - 2^16) timers are pending; use
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
                "tierwheel: cannot insert a timer, MAX_PENDING (2^31 - 2^16) timers are \
                 pending (try_insert_at returns an error instead)"
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
    /// ```
    /// let mut wheel = tierwheel::TimerWheel::new();
    /// let key = wheel.try_insert_at(5, ()).expect("room for one more");
    /// assert_eq!(wheel.deadline(key), Some(5));
    /// ```
    #[inline]
    pub fn try_insert_at(&mut self, deadline: u64, value: T) -> Result<TimerKey, CapacityError> {
        let index = self.slab.next_index()?;
        let at = self.place(index, deadline);
        Ok(self.slab.insert_at_next(Timer { deadline, value }, at))
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
        let (at, timer) = self.slab.remove(key)?;
        self.unplace(key.index(), timer.deadline, at);
        Some(timer.value)
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
    #[inline]
    pub fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        let Some((at, timer)) = self.slab.get_mut(key) else {
            return false;
        };
        let old_deadline = std::mem::replace(&mut timer.deadline, deadline);
        let old_at = *at;
        self.unplace(key.index(), old_deadline, old_at);
        let at = self.place(key.index(), deadline);
        self.slab.set_tag(key.index(), at);
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
    /// O(levels): the first occupied slot caches its earliest deadline, and the operations that
    /// could make that stale (a cancel or reschedule of it, a `poll`) refresh it first.
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
        let wheel = self.wheel_next_deadline();
        match self.run.next_deadline() {
            Some(run) => Some(wheel.map_or(run, |wheel| wheel.min(run))),
            None => wheel,
        }
    }

    /// `next_deadline` of the levels, without the run.
    fn wheel_next_deadline(&self) -> Option<u64> {
        if self.occupied[0] != 0 {
            let slot = self.occupied[0].trailing_zeros() as usize;
            return Some(slot_start(self.now, 0, slot));
        }
        let (level, slot_index) = self.first_coarse_slot()?;
        let slot = &self.slots[level * SLOTS + slot_index];
        if !slot.stale {
            return Some(slot.earliest);
        }
        let start = slot_start(self.now, level, slot_index);
        let mut earliest = u64::MAX;
        slot.for_each(&self.pool, header(level, slot_index), |entry, _| {
            if entry != DEAD {
                earliest = earliest.min(deadline_of(&self.slab, entry, level, start));
            }
        });
        Some(earliest)
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
        if self.occupied[0] != 0 {
            let slot = self.occupied[0].trailing_zeros() as usize;
            return slot_start(self.now, 0, slot).saturating_add(1);
        }
        self.first_coarse_slot()
            .map_or(u64::MAX, |(level, slot)| slot_start(self.now, level, slot))
    }

    /// The level and index of the first occupied slot above level 0, if any.
    #[inline]
    fn first_coarse_slot(&self) -> Option<(usize, usize)> {
        let level = (1..LEVELS).find(|&level| self.occupied[level] != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// `poll`, looking at the wheel's levels as well as the run.
    fn poll_wheel(&mut self, now: u64) -> Option<Expired<T>> {
        let target = now.max(self.now);
        let expired = loop {
            // The run's next timer goes before any wheel timer due at the same tick: it was
            // placed before the run began, they after (see `run.rs`).
            let run_next = self.run.next_deadline();
            let run_first = |wheel_next: u64| run_next.is_some_and(|run| run <= wheel_next);
            if self.occupied[0] != 0 {
                let slot = self.occupied[0].trailing_zeros() as usize;
                let tick = slot_start(self.now, 0, slot);
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
                break Some(self.pop(slot));
            }
            let Some((level, slot_index)) = self.first_coarse_slot() else {
                if run_next.is_some_and(|run| run <= target) {
                    self.run_gate = u64::MAX;
                    break Some(self.pop_run());
                }
                break None;
            };
            let start = slot_start(self.now, level, slot_index);
            // Before the slot's start, not at it: time must not pass a slot it has not
            // cascaded, and the slot holds nothing due before its start.
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
            let slot = &self.slots[level * SLOTS + slot_index];
            // A slot whose one live timer is its cached earliest holds just that timer (and
            // perhaps tombstones).
            let single = slot.live == 1 && !slot.stale;
            if single && slot.earliest <= target && !run_first(slot.earliest) {
                // The first occupied slot holds one timer, and it is due: fire it without
                // cascading. Every finer slot is empty, so nothing can be placed behind it.
                self.now = slot.earliest;
                let entry = slot.earliest_entry;
                self.slots[level * SLOTS + slot_index].clear(&mut self.pool);
                self.occupied[level] &= !(1 << slot_index);
                break Some(self.expire(entry));
            }
            // Time reaches the slot: its timers move to finer levels before anything else
            // can be placed behind them there; or, if this poll passes the whole slot, into a
            // run in firing order.
            self.now = start;
            let end = slot_end(start, level);
            if run_next.is_none()
                && end <= target
                && RUN_LEVELS.contains(&level)
                && slot.len() <= RUN_MAX
            {
                self.start_run(level, slot_index, end);
            } else {
                self.cascade(level, slot_index);
            }
        };
        if expired.is_none() {
            self.now = target;
        }
        // A fire, a cascade or a slot made the run may have made another slot the first, and
        // one that a cancel left stale while it was not the first: refresh it, so that
        // `next_deadline` reads an exact cache. (The first slot before was kept exact.)
        self.refresh_front();
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
        for slot in self.slots.iter_mut() {
            slot.clear(&mut self.pool);
        }
        self.run.clear();
        self.run_gate = 0;
        self.occupied = [0; LEVELS];
        self.slab.clear();
    }

    /// Places the timer at storage `index` at the back of the slot for `deadline`, and returns
    /// the location of its reference, for its storage entry.
    #[inline(always)]
    fn place(&mut self, index: u32, deadline: u64) -> u32 {
        let effective = deadline.max(self.now);
        let level = level_of(self.now, effective);
        let slot = slot_of(effective, level);
        let slab = &mut self.slab;
        let at = self.slots[level * SLOTS + slot].push(
            &mut self.pool,
            index,
            effective,
            header(level, slot),
            |moved, to| slab.set_tag(moved, to),
        );
        self.occupied[level] |= 1 << slot;
        // The new timer may come before the run's next: `poll` checks the wheel again.
        self.run_gate = 0;
        at
    }

    /// Takes the timer at storage `index`, with deadline `deadline`, whose reference is at
    /// location `at`, out of its slot (or the run): the reference becomes a tombstone, swept
    /// later, and the slot's counts and cached earliest deadline follow.
    #[inline(always)]
    fn unplace(&mut self, index: u32, deadline: u64, at: u32) {
        if Run::holds(at) {
            self.unplace_from_run(at);
            return;
        }
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
            slot.clear(&mut self.pool);
            self.occupied[level] &= !(1 << slot_index);
            self.refresh_front_cold();
            return;
        }
        // Not the slot's only reference, so not in its header: in the pool.
        self.pool.kill(at);
        // The cached earliest is the live timer `earliest_entry` unless stale: this one? (`&`,
        // not `&&`: whether a slot is stale varies from cancel to cancel, and a branch on it
        // would be mispredicted often.)
        let was_earliest = (slot.earliest_entry == index) & !slot.stale;
        if slot.should_compact() {
            self.compact(level, slot_index, was_earliest);
        } else if level > 0 && was_earliest {
            // Refresh now if `next_deadline` reads this slot, else when it becomes the first.
            slot.stale = true;
            if self.is_front(level, slot_index) {
                self.refresh_front_cold();
            }
        }
    }

    /// `unplace` of a run timer, out of line: runs exist only while a long `advance` is
    /// under way, so the touch path should not carry this code.
    #[cold]
    fn unplace_from_run(&mut self, at: u32) {
        self.run.unplace(at);
    }

    /// Whether `slot_index` of coarse `level` is the first occupied slot of the wheel.
    #[inline]
    fn is_front(&self, level: usize, slot_index: usize) -> bool {
        level > 0
            && self.occupied[level].trailing_zeros() as usize == slot_index
            && self.occupied[..level].iter().all(|&bits| bits == 0)
    }

    /// Makes the cached earliest deadline of the first occupied coarse slot exact again, if
    /// level 0 is empty and a cancel made it stale, so `next_deadline` stays O(levels). A slot
    /// whose deadlines arrived in order only drops the tombstones at its head (each once); any
    /// other slot is walked, which a random cancel causes with probability one in the slot's
    /// size, so O(1) expected.
    #[inline]
    fn refresh_front(&mut self) {
        if self.occupied[0] != 0 {
            return;
        }
        let Some((level, slot_index)) = self.first_coarse_slot() else {
            return;
        };
        if self.slots[level * SLOTS + slot_index].stale {
            self.refresh_slot(level, slot_index);
        }
    }

    /// `refresh_front` out of line, for the cancel path, which needs it rarely.
    #[cold]
    fn refresh_front_cold(&mut self) {
        self.refresh_front();
    }

    /// Finds the earliest live timer of a stale slot: see `refresh_front`.
    #[cold]
    fn refresh_slot(&mut self, level: usize, slot_index: usize) {
        let start = slot_start(self.now, level, slot_index);
        let slot = &mut self.slots[level * SLOTS + slot_index];
        let earliest = if slot.in_order {
            while slot.front(&self.pool) == Some(DEAD) {
                slot.pop_front(&mut self.pool);
            }
            slot.front(&self.pool)
                .map(|entry| (deadline_of(&self.slab, entry, level, start), entry))
        } else {
            let mut earliest: Option<(u64, SlotEntry)> = None;
            slot.for_each(&self.pool, header(level, slot_index), |entry, _| {
                if entry != DEAD {
                    let deadline = deadline_of(&self.slab, entry, level, start);
                    if earliest.is_none_or(|(e, _)| deadline < e) {
                        earliest = Some((deadline, entry));
                    }
                }
            });
            earliest
        };
        let (deadline, entry) = earliest.expect("an occupied slot has a live timer");
        (slot.earliest, slot.earliest_entry, slot.stale) = (deadline, entry, false);
    }

    /// Drops the tombstones of a slot, keeping order, and recomputes its earliest deadline if
    /// the timer just taken out of it (`was_earliest`) was its cached earliest.
    #[cold]
    fn compact(&mut self, level: usize, slot_index: usize, was_earliest: bool) {
        let slot = &mut self.slots[level * SLOTS + slot_index];
        let slab = &mut self.slab;
        slot.retain(&mut self.pool, |moved, to| slab.set_tag(moved, to));
        debug_assert_eq!(
            slot.len(),
            slot.live as usize,
            "live count disagrees with references"
        );
        if level == 0 || !was_earliest {
            return;
        }
        if self.occupied[level].trailing_zeros() as usize != slot_index {
            // Not a slot `next_deadline` can read before others empty: refresh it then.
            slot.stale = true;
            return;
        }
        // The earliest timer left: the sweep just read the slot, so find the new one now.
        self.refresh_slot(level, slot_index);
    }

    /// Removes and returns the first live timer of level 0's `slot_index`.
    fn pop(&mut self, slot_index: usize) -> Expired<T> {
        let slot = &mut self.slots[slot_index];
        let entry = loop {
            let entry = slot
                .pop_front(&mut self.pool)
                .expect("an occupied slot has a live timer");
            if entry != DEAD {
                break entry;
            }
        };
        slot.live -= 1;
        if slot.live == 0 {
            slot.clear(&mut self.pool);
            self.occupied[0] &= !(1 << slot_index);
        }
        self.expire(entry)
    }

    /// Fires the run's next timer.
    fn pop_run(&mut self) -> Expired<T> {
        // A run fires in deadline order, which is random in storage: load the storage of the
        // timer eight places ahead. Worth it even when storage fits in L2 (7-9 % on `fire` at
        // 10^3 and 10^4 timers, criterion), where the sweeps' and cascades' prefetches are not.
        if let Some(ahead) = self.run.ahead(8) {
            self.slab.prefetch(ahead);
        }
        let (deadline, entry) = self.run.pop();
        debug_assert!(
            deadline >= self.now,
            "run timer at {deadline} before now {}",
            self.now
        );
        self.now = deadline;
        self.expire(entry)
    }

    /// Turns the slot `slot_index` of `level`, which time has just reached and the current
    /// poll passes whole (its last tick is `end`), into the run.
    fn start_run(&mut self, level: usize, slot_index: usize, end: u64) {
        let mut source = std::mem::take(&mut self.slots[level * SLOTS + slot_index]);
        self.occupied[level] &= !(1 << slot_index);
        let (slab, pool, start) = (&mut self.slab, &mut self.pool, self.now);
        let ahead = prefetcher(slab);
        self.run.start(start, end, |run| {
            run.reserve(source.live as usize);
            // Each live timer's deadline is in its storage (on a run's levels the effective
            // deadline is the one asked for: `deadline_of`), prefetched a chunk ahead.
            source.drain(pool, slab, ahead, |slab, _, entry| {
                if entry != DEAD {
                    slab.retag_with(entry, |timer| run.push(entry, timer.deadline));
                }
            });
        });
    }

    /// Frees the live timer at storage `index`, once its slot has let go of it.
    fn expire(&mut self, index: u32) -> Expired<T> {
        let (key, timer) = self.slab.vacate(index);
        Expired {
            key,
            deadline: timer.deadline,
            value: timer.value,
        }
    }

    /// Moves every live timer of `slot_index` on `level` to the finer level its deadline now
    /// names, in order; `now` has just reached the slot's start.
    fn cascade(&mut self, level: usize, slot_index: usize) {
        let mut source = std::mem::take(&mut self.slots[level * SLOTS + slot_index]);
        self.occupied[level] &= !(1 << slot_index);
        let now = self.now;
        let ahead = prefetcher(&self.slab);
        let (slots, occupied) = (&mut self.slots, &mut self.occupied);
        // `move`: the scalars are copied in, not reloaded through references on every move.
        let mut move_finer = move |slab: &mut Slab<Timer<T>>, pool: &mut Pool, entry: SlotEntry| {
            if entry == DEAD {
                return;
            }
            // One storage lookup reads the deadline and records the new location. A reference
            // that a push moves out of a slot's header is told its location after.
            let mut moved_out = None;
            slab.retag_with(entry, |timer| {
                // A coarse slot's effective deadlines are the ones in storage (`deadline_of`).
                let deadline = timer.deadline;
                let to_level = level_of(now, deadline);
                debug_assert!(
                    to_level < level,
                    "cascade of {deadline} from level {level} at {now}"
                );
                let to_slot = slot_of(deadline, to_level);
                occupied[to_level] |= 1 << to_slot;
                slots[to_level * SLOTS + to_slot].push(
                    pool,
                    entry,
                    deadline,
                    header(to_level, to_slot),
                    |moved, to| moved_out = Some((moved, to)),
                )
            });
            if let Some((moved, to)) = moved_out {
                slab.set_tag(moved, to);
            }
        };
        match source.take_single() {
            Some(entry) => move_finer(&mut self.slab, &mut self.pool, entry),
            None => source.drain(&mut self.pool, &mut self.slab, ahead, move_finer),
        }
    }

    /// Checks that every live timer's storage entry holds the location of its reference, that
    /// every reference that is not a tombstone is that of a live timer, and the live counts.
    #[cfg(test)]
    fn check_locations(&self) {
        // Counts a live reference, checking its location.
        let count = |live: &mut usize, entry: SlotEntry, at: u32| {
            if entry != DEAD {
                *live += 1;
                assert_eq!(
                    self.slab.tag_at(entry),
                    Some(at),
                    "timer {entry} is not where its storage says"
                );
            }
        };
        let mut total = 0;
        for (number, slot) in self.slots.iter().enumerate() {
            let (level, slot_index) = (number / SLOTS, number % SLOTS);
            let mut live = 0;
            slot.for_each(&self.pool, header(level, slot_index), |entry, at| {
                count(&mut live, entry, at);
            });
            assert_eq!(live, slot.live as usize, "live count of {number}");
            let bit = self.occupied[level] >> slot_index & 1 == 1;
            assert_eq!(bit, slot.live > 0, "occupancy of slot {number}");
            if level > 0 && slot.live > 0 && !slot.stale {
                assert!(
                    slot.holds_earliest(&self.pool),
                    "the cached earliest of {number} is gone"
                );
            }
            total += live;
        }
        let mut live = 0;
        self.run.for_each(|entry, at| count(&mut live, entry, at));
        assert_eq!(live, self.run.live, "live count of the run");
        total += live;
        assert_eq!(total, self.slab.len(), "timers without a reference");
        // `next_deadline` reads the first coarse slot's cached earliest when level 0 is empty:
        // it must be exact there, or `next_deadline` walks the slot (O(slot), not O(levels)).
        if let (0, Some((level, slot_index))) = (self.occupied[0], self.first_coarse_slot()) {
            assert!(
                !self.slots[level * SLOTS + slot_index].stale,
                "the first occupied slot, {slot_index} of level {level}, is stale"
            );
        }
    }
}

/// The location of the header of `slot_index` on `level`.
#[inline]
fn header(level: usize, slot_index: usize) -> u32 {
    HEADER_AT + (level * SLOTS + slot_index) as u32
}

/// What a pass over a slot calls on each reference a chunk ahead of reading its timer's
/// storage: a prefetch of that storage if the slab is too large to stay in cache.
fn prefetcher<T>(slab: &Slab<Timer<T>>) -> impl Fn(&Slab<Timer<T>>, SlotEntry) {
    let prefetch = slab.bytes() > PREFETCH_ABOVE_BYTES;
    move |slab, entry| {
        if prefetch {
            slab.prefetch(entry);
        }
    }
}

/// The effective deadline of the live timer at storage `index`, placed in the slot of `level`
/// starting at tick `start`. A level-0 slot is one tick; on the coarser levels the effective
/// deadline is the one asked for, since a timer due before `now` at insertion goes to level 0.
#[inline]
fn deadline_of<T>(slab: &Slab<Timer<T>>, index: SlotEntry, level: usize, start: u64) -> u64 {
    if level == 0 {
        return start;
    }
    let timer = slab.at(index).expect("a live reference has a timer");
    debug_assert!(timer.deadline >= start, "a coarse timer before its slot");
    timer.deadline
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
