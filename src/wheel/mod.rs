//! The core: a hierarchical hashed timing wheel over `u64` ticks.
//!
//! The wheel never reads a clock, never calls user code and never allocates per operation once
//! its storage has grown.

use crate::slab::{CapacityError, Slab, TimerKey};

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
    /// The deadline that was asked for, in ticks (it may lie before the tick it fired at,
    /// if it was already past when inserted).
    pub deadline: u64,
    /// The timer's value.
    pub value: T,
}

/// A hierarchical hashed timing wheel.
pub struct TimerWheel<T> {
    slab: Slab<T>,
    now: u64,
}

/// Iterator over the timers due at a given tick, returned by [`TimerWheel::advance`].
pub struct Drain<'a, T> {
    wheel: &'a mut TimerWheel<T>,
    now: u64,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = Expired<T>;

    fn next(&mut self) -> Option<Expired<T>> {
        self.wheel.poll(self.now)
    }
}

impl<T> TimerWheel<T> {
    /// A wheel at tick 0.
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// A wheel at tick `now`.
    pub fn starting_at(now: u64) -> Self {
        TimerWheel {
            slab: Slab::new(),
            now,
        }
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts a timer due at `deadline`.
    pub fn insert_at(&mut self, deadline: u64, value: T) -> TimerKey {
        let _ = (deadline, value);
        todo!()
    }

    /// Inserts a timer due `delay` ticks from now, saturating at `u64::MAX`.
    pub fn insert_after(&mut self, delay: u64, value: T) -> TimerKey {
        self.insert_at(self.now.saturating_add(delay), value)
    }

    /// Like [`insert_at`](Self::insert_at), but returns an error when storage is full.
    pub fn try_insert_at(&mut self, deadline: u64, value: T) -> Result<TimerKey, CapacityError> {
        let _ = (deadline, value);
        todo!()
    }

    /// Like [`insert_after`](Self::insert_after), but returns an error when storage is full.
    pub fn try_insert_after(&mut self, delay: u64, value: T) -> Result<TimerKey, CapacityError> {
        self.try_insert_at(self.now.saturating_add(delay), value)
    }

    /// Cancels a pending timer and returns its value.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let _ = key;
        todo!()
    }

    /// Moves a pending timer to a new deadline, behind every timer already due then.
    pub fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        let _ = (key, deadline);
        todo!()
    }

    /// The deadline a pending timer was given.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        let _ = key;
        todo!()
    }

    /// The smallest effective deadline of any pending timer.
    pub fn next_deadline(&self) -> Option<u64> {
        todo!()
    }

    /// The next timer due at or before `now`, in firing order.
    pub fn poll(&mut self, now: u64) -> Option<Expired<T>> {
        let _ = now;
        todo!()
    }

    /// Every timer due at or before `now`, lazily, in firing order.
    pub fn advance(&mut self, now: u64) -> Drain<'_, T> {
        Drain { wheel: self, now }
    }
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new()
    }
}
