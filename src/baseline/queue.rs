//! The [`TimerQueue`] trait: the operations every scheduler in the comparison offers, so the
//! wheel and the baselines run the same workloads in the benchmarks and the differential test.

use crate::{TimerKey, TimerWheel};

/// A timer queue over `u64` ticks: insert at a deadline, cancel by key, reschedule, poll what
/// is due. Implemented by [`TimerWheel`] and by every baseline, for comparison only: the wheel's
/// inherent methods say the same and are what an application calls.
///
/// Every implementation follows the [`TimerWheel`] contract: a timer's *effective deadline* is
/// `max(deadline, now())` at its insertion; timers fire by effective deadline, then in insertion
/// order (first in, first out; a reschedule counts as a new insertion); time never runs
/// backwards; a `poll` that yields a timer moves `now()` to its effective deadline, and one
/// that yields nothing moves it to `max(now, now())`. So the same operations give the same
/// event sequence on every implementation (`tests/differential.rs` checks it).
///
/// ```
/// use tierwheel::baseline::TimerQueue;
/// use tierwheel::TimerWheel;
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

    /// The current tick. It only moves forward, through [`poll`](Self::poll).
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let wheel = TimerWheel::<()>::starting_at(7);
    /// assert_eq!(TimerQueue::now(&wheel), 7);
    /// ```
    fn now(&self) -> u64;

    /// The number of pending timers.
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let mut wheel = TimerWheel::new();
    /// TimerQueue::insert_at(&mut wheel, 3, ());
    /// assert_eq!(TimerQueue::len(&wheel), 1);
    /// ```
    fn len(&self) -> usize;

    /// Whether no timer is pending.
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// assert!(TimerQueue::is_empty(&TimerWheel::<()>::new()));
    /// ```
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts a timer due at tick `deadline` and returns its key.
    ///
    /// A deadline before [`now`](Self::now) is due at once, behind the timers already due at
    /// `now()`. Any `u64` is accepted.
    ///
    /// # Panics
    ///
    /// If the implementation is full: [`TimerWheel`] at [`MAX_PENDING`](crate::MAX_PENDING)
    /// pending timers, the heaps beyond `u32::MAX - 1`.
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let mut wheel = TimerWheel::starting_at(10);
    /// let key = TimerQueue::insert_at(&mut wheel, 3, "past");
    /// assert_eq!(TimerQueue::next_deadline(&wheel), Some(10)); // its effective deadline
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), Some("past"));
    /// ```
    fn insert_at(&mut self, deadline: u64, value: T) -> Self::Key;

    /// Cancels a pending timer and returns its value.
    ///
    /// Returns `None`, and does nothing, if the timer has fired or been cancelled.
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let mut wheel = TimerWheel::new();
    /// let key = TimerQueue::insert_at(&mut wheel, 3, "x");
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), Some("x"));
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), None);
    /// ```
    fn cancel(&mut self, key: Self::Key) -> Option<T>;

    /// Moves a pending timer to `deadline`, as if it were inserted anew: behind every timer
    /// already due at the same tick, also when the deadline does not change. Returns the key
    /// that names it from now on (the wheel and the heaps keep the old one, [`BTreeQueue`]
    /// mints a new one), or `None`, doing nothing, if the timer is not pending.
    ///
    /// [`BTreeQueue`]: super::BTreeQueue
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let mut wheel = TimerWheel::new();
    /// let key = TimerQueue::insert_at(&mut wheel, 3, "x");
    /// let key = TimerQueue::reschedule(&mut wheel, key, 9).unwrap();
    /// assert_eq!(TimerQueue::next_deadline(&wheel), Some(9));
    /// assert_eq!(TimerQueue::cancel(&mut wheel, key), Some("x"));
    /// assert_eq!(TimerQueue::reschedule(&mut wheel, key, 9), None);
    /// ```
    fn reschedule(&mut self, key: Self::Key, deadline: u64) -> Option<Self::Key>;

    /// The smallest effective deadline of any pending timer: the tick at which
    /// [`poll`](Self::poll) will next yield one. Exact in every implementation, never a lower
    /// bound.
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let mut wheel = TimerWheel::new();
    /// assert_eq!(TimerQueue::next_deadline(&wheel), None);
    /// let early = TimerQueue::insert_at(&mut wheel, 1_000_003, ());
    /// TimerQueue::insert_at(&mut wheel, 1_000_017, ());
    /// assert_eq!(TimerQueue::next_deadline(&wheel), Some(1_000_003));
    /// TimerQueue::cancel(&mut wheel, early);
    /// assert_eq!(TimerQueue::next_deadline(&wheel), Some(1_000_017));
    /// ```
    fn next_deadline(&self) -> Option<u64>;

    /// Yields the value of the next timer due at or before tick `now`, in firing order, or
    /// `None`.
    ///
    /// Yielding a timer moves [`now`](Self::now) to its effective deadline (never back);
    /// yielding nothing moves it to `max(now, self.now())`. A `now` in the past acts as
    /// `self.now()`.
    ///
    /// ```
    /// use tierwheel::baseline::TimerQueue;
    /// use tierwheel::TimerWheel;
    ///
    /// let mut wheel = TimerWheel::new();
    /// TimerQueue::insert_at(&mut wheel, 20, 'b');
    /// TimerQueue::insert_at(&mut wheel, 10, 'a');
    /// assert_eq!(TimerQueue::poll(&mut wheel, 15), Some('a'));
    /// assert_eq!(TimerQueue::now(&wheel), 10);
    /// assert_eq!(TimerQueue::poll(&mut wheel, 15), None);
    /// assert_eq!(TimerQueue::now(&wheel), 15);
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
