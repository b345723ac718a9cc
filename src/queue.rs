//! The [`TimerQueue`] trait: the operations every scheduler in the comparison offers, so the
//! wheel and the heaps in [`baseline`](crate#crate-features) run the same workloads.

use crate::{TimerKey, TimerWheel};

/// A timer queue over `u64` ticks: insert at a deadline, cancel by key, poll what is due.
///
/// Every implementation follows the [`TimerWheel`] contract: the effective deadline of a
/// timer is `max(deadline, now() at insertion)`; timers fire by effective deadline, then in
/// insertion order (first in, first out; a reschedule counts as a new insertion); time never
/// runs backwards; `poll` that yields a timer sets `now()` to `max(now(), effective deadline)`
/// and `poll` that yields nothing sets it to `max(now, now())`. So the same operations give
/// the same event sequence on every implementation.
///
/// ```
/// use tierwheel::{TimerQueue, TimerWheel};
///
/// fn fire_all<Q: TimerQueue<&'static str>>(queue: &mut Q, now: u64) -> Vec<&'static str> {
///     std::iter::from_fn(|| queue.poll(now)).collect()
/// }
///
/// let mut wheel = TimerWheel::new();
/// TimerQueue::insert_at(&mut wheel, 5, "b");
/// TimerQueue::insert_at(&mut wheel, 2, "a");
/// assert_eq!(fire_all(&mut wheel, 10), ["a", "b"]);
/// ```
pub trait TimerQueue<T> {
    /// Names a pending timer. It goes stale when the timer fires or is cancelled; operations
    /// on a stale key do nothing.
    type Key: Copy;

    /// The current tick.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let wheel = TimerWheel::<()>::starting_at(7);
    /// assert_eq!(TimerQueue::now(&wheel), 7);
    /// ```
    fn now(&self) -> u64;

    /// Number of pending timers.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let mut wheel = TimerWheel::new();
    /// TimerQueue::insert_at(&mut wheel, 3, ());
    /// assert_eq!(TimerQueue::len(&wheel), 1);
    /// ```
    fn len(&self) -> usize;

    /// Whether no timer is pending.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// assert!(TimerQueue::is_empty(&TimerWheel::<()>::new()));
    /// ```
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts a timer due at `deadline` (a past deadline is due at once, behind the timers
    /// already due).
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let mut wheel = TimerWheel::new();
    /// let key = TimerQueue::insert_at(&mut wheel, 3, "x");
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), Some("x"));
    /// ```
    fn insert_at(&mut self, deadline: u64, value: T) -> Self::Key;

    /// Cancels a pending timer and returns its value; `None` for a stale key.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let mut wheel = TimerWheel::new();
    /// let key = TimerQueue::insert_at(&mut wheel, 3, "x");
    /// TimerQueue::cancel(&mut wheel, key);
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), None);
    /// ```
    fn cancel(&mut self, key: Self::Key) -> Option<T>;

    /// Moves a pending timer to `deadline`, behind every timer already due then. Returns the
    /// key that names it from now on (some implementations keep the old one, some mint a new
    /// one), or `None` for a stale key.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let mut wheel = TimerWheel::new();
    /// let key = TimerQueue::insert_at(&mut wheel, 3, "x");
    /// let key = TimerQueue::reschedule(&mut wheel, key, 9).unwrap();
    /// assert_eq!(TimerQueue::next_deadline(&wheel), Some(9));
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), Some("x"));
    /// ```
    fn reschedule(&mut self, key: Self::Key, deadline: u64) -> Option<Self::Key>;

    /// The smallest effective deadline pending, exactly.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let mut wheel = TimerWheel::starting_at(10);
    /// TimerQueue::insert_at(&mut wheel, 3, ());
    /// assert_eq!(TimerQueue::next_deadline(&wheel), Some(10));
    /// ```
    fn next_deadline(&self) -> Option<u64>;

    /// The value of the next timer due at or before `now`, in firing order.
    ///
    /// ```
    /// use tierwheel::{TimerQueue, TimerWheel};
    /// let mut wheel = TimerWheel::new();
    /// TimerQueue::insert_at(&mut wheel, 3, "x");
    /// assert_eq!(TimerQueue::poll(&mut wheel, 2), None);
    /// assert_eq!(TimerQueue::poll(&mut wheel, 3), Some("x"));
    /// ```
    fn poll(&mut self, now: u64) -> Option<T>;
}

impl<T> TimerQueue<T> for TimerWheel<T> {
    type Key = TimerKey;

    #[inline]
    fn now(&self) -> u64 {
        TimerWheel::now(self)
    }

    #[inline]
    fn len(&self) -> usize {
        TimerWheel::len(self)
    }

    #[inline]
    fn insert_at(&mut self, deadline: u64, value: T) -> TimerKey {
        TimerWheel::insert_at(self, deadline, value)
    }

    #[inline]
    fn cancel(&mut self, key: TimerKey) -> Option<T> {
        TimerWheel::cancel(self, key)
    }

    #[inline]
    fn reschedule(&mut self, key: TimerKey, deadline: u64) -> Option<TimerKey> {
        TimerWheel::reschedule(self, key, deadline).then_some(key)
    }

    #[inline]
    fn next_deadline(&self) -> Option<u64> {
        TimerWheel::next_deadline(self)
    }

    #[inline]
    fn poll(&mut self, now: u64) -> Option<T> {
        TimerWheel::poll(self, now).map(|expired| expired.value)
    }
}
