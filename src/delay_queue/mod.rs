//! [`DelayQueue`]: values that come out once their deadline has passed, as a [`Stream`], on
//! one timing wheel with one wakeup timer per queue.
//!
//! ```
//! use std::task::{Context, Poll, Waker};
//! use std::time::Duration;
//! use tierwheel::service::TimerService;
//! use tierwheel::DelayQueue;
//!
//! // A manual driver makes the example's clock exact; `DelayQueue::new()` uses a real one.
//! let mut driver = TimerService::builder().build_manual();
//! let mut queue = DelayQueue::with_handle(driver.handle());
//! let session = queue.insert("session expired", Duration::from_secs(30));
//! queue.insert("retry", Duration::from_millis(200));
//!
//! // Activity on the session pushes its expiry back.
//! queue.reset(&session, Duration::from_secs(60));
//!
//! let mut cx = Context::from_waker(Waker::noop());
//! assert!(queue.poll_expired(&mut cx).is_pending());
//! driver.run_until(Duration::from_millis(200));
//! let Poll::Ready(Some(expired)) = queue.poll_expired(&mut cx) else { panic!() };
//! assert_eq!(expired.into_inner(), "retry");
//! assert_eq!(queue.len(), 1);
//! ```

mod alarm;

use std::fmt;
use std::iter::FusedIterator;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use crate::service::Handle;
use crate::{TimerKey, TimerWheel};
use alarm::Alarm;

/// A queue of values, each yielded once its deadline has passed: tokio-util's `DelayQueue`,
/// on a hierarchical timing wheel, for any executor.
///
/// Insert a value with a deadline ([`insert`](Self::insert), [`insert_at`](Self::insert_at))
/// and get a [`Key`]; the key moves the deadline ([`reset`](Self::reset)) or takes the value
/// back early ([`remove`](Self::remove)). [`poll_expired`](Self::poll_expired), or the queue as
/// a [`Stream`], yields each value as an [`Expired`] once its deadline has passed, and
/// `Ready(None)` when the queue is empty. Insert, remove and reset are O(1) whatever the number
/// of entries or the length of the delay.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::TimerService;
/// use tierwheel::DelayQueue;
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
///
/// let mut queue = DelayQueue::new(); // on the process-wide timer service
/// queue.insert("second", Duration::from_millis(2));
/// queue.insert("first", Duration::from_millis(1));
/// let order: Vec<_> = block_on(async {
///     let mut order = Vec::new();
///     while let Some(expired) = std::future::poll_fn(|cx| queue.poll_expired(cx)).await {
///         order.push(expired.into_inner());
///     }
///     order
/// });
/// assert_eq!(order, ["first", "second"]);
/// ```
///
/// # Time and order
///
/// The queue counts time in ticks of 1 ms. A deadline rounds **up** to the tick, so an entry
/// never comes out before its deadline; [`deadline`](Self::deadline) and
/// [`Expired::deadline`] report the rounded instant. Entries come out by deadline tick, and
/// entries due at the same tick first in, first out, by the time they were inserted or last
/// reset. A deadline that has passed makes its entry due at once; one before the tick the
/// queue last polled at counts as that tick (the queue never yields into its past), so such an
/// entry comes out behind those due at that tick.
///
/// Any deadline is accepted: one past the end of the queue's time line (about 584 million
/// years of 1 ms ticks, or an instant the platform cannot represent) saturates to the end of
/// time. Such an entry never expires, and its deadline reads as the latest instant the
/// platform can represent.
///
/// # Wakeups
///
/// The queue has one timer, set for the exact tick its first entry is due, never for one entry
/// per entry and never for a coarse slot of the wheel: the task polling the queue is woken
/// once an entry is due, neither before nor more than a tick after (plus the granularity of
/// the timer itself where it is coarser than the queue's tick). The timer is moved only when
/// the first deadline changes. The queue also wakes its task when it becomes empty (by
/// [`remove`](Self::remove) or [`clear`](Self::clear)), as its next poll then returns
/// `Ready(None)`, and at once when an insert or reset makes an entry due already.
///
/// # Where time comes from
///
/// - [`DelayQueue::new`] (and [`with_capacity`](Self::with_capacity),
///   [`Default`]) uses the process-wide [`service::global`](crate::service::global) timer
///   service, started on first use: the queue reads that service's clock and sleeps on it, so
///   it can be polled by any executor, on any thread.
/// - [`DelayQueue::with_handle`] uses the service a [`Handle`] names, also a
///   [`ManualDriver`](crate::service::ManualDriver)'s, whose manual clock then drives the
///   queue.
/// - With the cargo feature `tokio`, a queue made by `new` *inside a tokio runtime* (or by
///   `with_tokio`) uses tokio's clock and one `tokio::time::Sleep` instead: no extra thread,
///   and tokio's paused test clock (`tokio::time::pause`, `advance`) moves it. It must then be
///   polled inside that runtime, whose time driver must be enabled; under the paused clock,
///   insert and reset inside it too, as tokio reads the real clock elsewhere. A queue made
///   outside any runtime uses the service as without the feature.
///
/// # Keys
///
/// A [`Key`] names its entry until the entry is yielded by `poll_expired` or removed; after
/// that it is stale forever, also once the entry's storage is reused. With a stale key,
/// [`try_remove`](Self::try_remove), [`get`](Self::get), [`get_mut`](Self::get_mut) and
/// [`contains`](Self::contains) answer `None` or `false`, [`try_reset`](Self::try_reset) and
/// [`try_reset_at`](Self::try_reset_at) `false`, while [`remove`](Self::remove),
/// [`reset`](Self::reset), [`reset_at`](Self::reset_at) and [`deadline`](Self::deadline)
/// panic, as tokio-util's do, with a message that says so. A key does not record its queue:
/// use it only with the queue that made it. [`compact`](Self::compact) and
/// [`shrink_to_fit`](Self::shrink_to_fit) never move an entry, so keys stay valid across
/// them.
///
/// # Beside tokio-util's `DelayQueue`
///
/// Every method of tokio-util 0.7's `DelayQueue` is here with the same name and meaning, with
/// `std::time::Instant` deadlines. The differences: no deadline makes it panic (tokio-util's
/// panics past about two years); ties come out first in, first out; no wakeup at a cascade
/// boundary of the wheel, and none on an insert that does not make an entry due; `compact`
/// does not move entries (see there). Beyond it: [`get`](Self::get),
/// [`get_mut`](Self::get_mut), [`contains`](Self::contains), [`iter`](Self::iter),
/// [`next_deadline`](Self::next_deadline), [`try_reset`](Self::try_reset),
/// [`try_reset_at`](Self::try_reset_at), [`with_handle`](Self::with_handle).
pub struct DelayQueue<T> {
    wheel: TimerWheel<T>,
    alarm: Alarm,
}

/// Names one entry of a [`DelayQueue`], from its insert until it is yielded or removed.
///
/// Cheap to copy and compare; `Option<Key>` is the same size as `Key`. Once its entry has left
/// the queue the key is stale forever (see [`DelayQueue`], "Keys").
///
/// ```
/// use std::time::Duration;
/// use tierwheel::DelayQueue;
///
/// let mut queue = DelayQueue::new();
/// let key = queue.insert('a', Duration::from_secs(1));
/// assert_eq!(queue.remove(&key).into_inner(), 'a');
/// assert_eq!(queue.try_remove(&key).map(|e| e.into_inner()), None);
/// assert_ne!(queue.insert('b', Duration::from_secs(1)), key);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Key(TimerKey);

/// A value that left a [`DelayQueue`]: yielded by [`poll_expired`](DelayQueue::poll_expired)
/// once its deadline passed, or taken out by [`remove`](DelayQueue::remove).
///
/// ```
/// use std::time::Duration;
/// use tierwheel::DelayQueue;
///
/// let mut queue = DelayQueue::new();
/// let key = queue.insert(String::from("value"), Duration::from_secs(1));
/// let deadline = queue.deadline(&key);
/// let mut expired = queue.remove(&key);
/// expired.get_mut().push('!');
/// assert_eq!((expired.key(), expired.deadline()), (key, deadline));
/// assert_eq!(expired.get_ref(), "value!");
/// assert_eq!(expired.into_inner(), "value!");
/// ```
#[derive(Debug)]
pub struct Expired<T> {
    value: T,
    deadline: Instant,
    key: Key,
}

impl<T> Expired<T> {
    /// The value.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut queue = tierwheel::DelayQueue::new();
    /// let key = queue.insert(7, Duration::from_secs(1));
    /// assert_eq!(*queue.remove(&key).get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.value
    }

    /// The value, to change it in place.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut queue = tierwheel::DelayQueue::new();
    /// let key = queue.insert(7, Duration::from_secs(1));
    /// let mut expired = queue.remove(&key);
    /// *expired.get_mut() += 1;
    /// assert_eq!(expired.into_inner(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// Takes the value.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut queue = tierwheel::DelayQueue::new();
    /// let key = queue.insert("v", Duration::from_secs(1));
    /// assert_eq!(queue.remove(&key).into_inner(), "v");
    /// ```
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The entry's deadline, rounded up to the queue's tick. Earlier than the moment the entry
    /// was yielded when the deadline had passed already at its insert (or last reset).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut queue = tierwheel::DelayQueue::new();
    /// let key = queue.insert((), Duration::from_secs(1));
    /// let deadline = queue.deadline(&key);
    /// assert_eq!(queue.remove(&key).deadline(), deadline);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The key the entry had; stale from now on.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let mut queue = tierwheel::DelayQueue::new();
    /// let key = queue.insert((), Duration::from_secs(1));
    /// assert_eq!(queue.remove(&key).key(), key);
    /// ```
    pub fn key(&self) -> Key {
        self.key
    }
}

/// The entries of a [`DelayQueue`] in storage order (not expiry order): key, deadline (rounded
/// up to the tick) and value. Made by [`DelayQueue::iter`].
///
/// ```
/// use std::time::Duration;
/// use tierwheel::DelayQueue;
///
/// let mut queue = DelayQueue::new();
/// queue.insert('a', Duration::from_secs(2));
/// queue.insert('b', Duration::from_secs(1));
/// let mut entries: Vec<_> = queue.iter().map(|(_, deadline, &v)| (deadline, v)).collect();
/// entries.sort();
/// assert_eq!(entries.iter().map(|&(_, v)| v).collect::<String>(), "ba");
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<'a, T> {
    entries: crate::Iter<'a, T>,
    alarm: &'a Alarm,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (Key, Instant, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, tick, value) = self.entries.next()?;
        Some((Key(key), self.alarm.instant_of(tick), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> FusedIterator for Iter<'_, T> {}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("left", &self.entries.len())
            .finish()
    }
}

/// The message of a panic on a stale key.
#[cold]
#[track_caller]
fn stale(method: &str) -> ! {
    panic!(
        "tierwheel: DelayQueue::{method} with a key that names no entry (it expired, was \
         removed, or comes from another queue)"
    )
}

impl<T> DelayQueue<T> {
    /// An empty queue. It allocates nothing until the first insert.
    ///
    /// Its time and wakeups come from the process-wide
    /// [`service::global`](crate::service::global) timer service (started on first use), or,
    /// with the cargo feature `tokio` and when called inside a tokio runtime, from tokio's
    /// clock and timer: see [`DelayQueue`], "Where time comes from".
    ///
    /// # Panics
    ///
    /// If the process-wide service must be started and its driver thread cannot be spawned.
    ///
    /// ```
    /// let queue = tierwheel::DelayQueue::<u32>::new();
    /// assert!(queue.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_alarm(Alarm::by_default())
    }

    /// An empty queue with room for `capacity` entries before it allocates again. Time comes
    /// from where [`new`](Self::new) takes it.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new), and if the allocator cannot provide the memory.
    ///
    /// ```
    /// let queue = tierwheel::DelayQueue::<u32>::with_capacity(10_000);
    /// assert!(queue.capacity() >= 10_000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        let mut queue = Self::new();
        queue.reserve(capacity);
        queue
    }

    /// An empty queue on the time line of the timer service `handle` names: the queue reads
    /// that service's clock and sleeps on it. With a
    /// [`ManualDriver`](crate::service::ManualDriver)'s handle, the queue's time moves only
    /// with [`run_until`](crate::service::ManualDriver::run_until), and its task is woken from
    /// there.
    ///
    /// Polling the queue panics once the service has shut down while the queue waits for a
    /// deadline, as nothing could wake it any more.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// use std::time::Duration;
    /// use tierwheel::service::TimerService;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut driver = TimerService::builder().build_manual();
    /// let mut queue = DelayQueue::with_handle(driver.handle());
    /// queue.insert("tea", Duration::from_secs(180));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(queue.poll_expired(&mut cx).is_pending());
    /// driver.run_until(Duration::from_secs(180));
    /// assert!(matches!(queue.poll_expired(&mut cx), Poll::Ready(Some(_))));
    /// ```
    pub fn with_handle(handle: Handle) -> Self {
        Self::with_alarm(Alarm::on_service(handle))
    }

    /// An empty queue on tokio's clock and timer: one `tokio::time::Sleep`, reset rather than
    /// made anew, and tokio's paused test clock followed. It must be polled inside the tokio
    /// runtime it was made in, whose time driver must be enabled (and under the paused clock
    /// also filled there: outside a runtime, tokio's clock reads the real time).
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread()
    ///     .enable_time()
    ///     .start_paused(true)
    ///     .build()?;
    /// let value = runtime.block_on(async {
    ///     let mut queue = DelayQueue::with_tokio();
    ///     queue.insert("an hour later", Duration::from_secs(3600));
    ///     // The paused clock jumps to the queue's one timer: no hour passes.
    ///     std::future::poll_fn(|cx| queue.poll_expired(cx)).await
    /// });
    /// assert_eq!(value.unwrap().into_inner(), "an hour later");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    #[track_caller]
    pub fn with_tokio() -> Self {
        if tokio::runtime::Handle::try_current().is_err() {
            panic!("tierwheel: DelayQueue::with_tokio called outside a tokio runtime");
        }
        Self::with_alarm(Alarm::on_tokio())
    }

    fn with_alarm(alarm: Alarm) -> Self {
        DelayQueue {
            wheel: TimerWheel::starting_at(alarm.now_tick()),
            alarm,
        }
    }

    /// Inserts `value`, due once `timeout` has elapsed from now (rounded up to the tick), and
    /// returns its key. A zero `timeout` makes it due at once. Any `timeout` is accepted,
    /// `Duration::MAX` included (see [`DelayQueue`], "Time and order").
    ///
    /// # Panics
    ///
    /// If the queue holds [`MAX_PENDING`](crate::MAX_PENDING) entries.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let soon = queue.insert("soon", Duration::from_secs(5));
    /// let never = queue.insert("never", Duration::MAX);
    /// assert!(queue.deadline(&soon) < queue.deadline(&never));
    /// ```
    pub fn insert(&mut self, value: T, timeout: Duration) -> Key {
        let tick = self.alarm.tick_after(timeout);
        self.insert_tick(value, tick)
    }

    /// Inserts `value`, due at `when` (rounded up to the tick), and returns its key. A `when`
    /// that has passed makes it due at once.
    ///
    /// # Panics
    ///
    /// If the queue holds [`MAX_PENDING`](crate::MAX_PENDING) entries.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let when = Instant::now() + Duration::from_secs(10);
    /// let key = queue.insert_at("later", when);
    /// assert!(queue.deadline(&key) >= when);
    /// assert!(queue.deadline(&key) < when + Duration::from_millis(1));
    /// ```
    pub fn insert_at(&mut self, value: T, when: Instant) -> Key {
        let tick = self.alarm.tick_of(when);
        self.insert_tick(value, tick)
    }

    fn insert_tick(&mut self, value: T, tick: u64) -> Key {
        let key = self.wheel.insert_at(tick, value);
        // Only an entry due before the timer can move it; with no timer set, any entry needs
        // one if a task waits.
        let due = tick.max(self.wheel.now());
        let moves_timer = match self.alarm.armed() {
            Some(armed) => due < armed,
            None => self.alarm.is_watched(),
        };
        if moves_timer {
            self.follow();
        }
        Key(key)
    }

    /// Yields the next entry whose deadline has passed, in deadline order (ties first in,
    /// first out). Returns `Pending` when entries wait, after arranging for the task to be
    /// woken once the first of them is due, and `Ready(None)` when the queue is empty (more
    /// may be inserted and polled for later).
    ///
    /// Cancel-safe: an entry leaves the queue only when it is returned, so a poll dropped
    /// half-way (in `select!`, say) loses nothing.
    ///
    /// # Panics
    ///
    /// If the queue waits on a timer service that has shut down (see
    /// [`with_handle`](Self::with_handle)), or, on tokio's timer, if polled outside a runtime
    /// with its time driver.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// use std::time::Duration;
    /// use tierwheel::service::TimerService;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut driver = TimerService::builder().build_manual();
    /// let mut queue = DelayQueue::with_handle(driver.handle());
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(matches!(queue.poll_expired(&mut cx), Poll::Ready(None)));
    ///
    /// queue.insert('a', Duration::from_millis(10));
    /// assert!(queue.poll_expired(&mut cx).is_pending());
    /// driver.run_until(Duration::from_millis(10));
    /// let Poll::Ready(Some(expired)) = queue.poll_expired(&mut cx) else { panic!() };
    /// assert_eq!(expired.into_inner(), 'a');
    /// assert!(matches!(queue.poll_expired(&mut cx), Poll::Ready(None)));
    /// ```
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<Expired<T>>> {
        self.alarm.remember(cx.waker());
        // What was due at the last reading of the clock is due still: no need to read it.
        if let Some(expired) = self.wheel.poll(self.wheel.now()) {
            return Poll::Ready(Some(self.expired(expired)));
        }
        let mut fired = false;
        loop {
            if let Some(expired) = self.wheel.poll(self.alarm.now_tick()) {
                return Poll::Ready(Some(self.expired(expired)));
            }
            let Some(next) = self.wheel.next_deadline() else {
                self.alarm.disarm();
                return Poll::Ready(None);
            };
            if self.alarm.arm(next, cx).is_pending() {
                return Poll::Pending;
            }
            // The timer fired for `next` between the clock reading and now: read it again. A
            // second time would mean the timer and the clock disagree; ask for another poll
            // rather than spin.
            if fired {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            fired = true;
        }
    }

    fn expired(&self, expired: crate::Expired<T>) -> Expired<T> {
        Expired {
            value: expired.value,
            deadline: self.alarm.instant_of(expired.deadline),
            key: Key(expired.key),
        }
    }

    /// Moves the timer to the queue's new first deadline after a change, for the task that
    /// polled last; wakes that task at once if an entry is due already or the queue has become
    /// empty. While no task watches (none has polled, or the queue woke it and it has not
    /// polled since), a timer that no longer fits is stopped: the next poll sets it.
    fn follow(&mut self) {
        let armed = self.alarm.armed();
        if armed.is_none() && !self.alarm.is_watched() {
            return;
        }
        let wanted = self.wheel.next_deadline();
        if wanted == armed {
            return;
        }
        if !self.alarm.is_watched() {
            self.alarm.disarm();
            return;
        }
        match wanted {
            None => {
                self.alarm.disarm();
                self.alarm.wake();
            }
            Some(tick) if tick <= self.alarm.now_tick() => self.alarm.wake(),
            Some(tick) => self.alarm.rearm(tick),
        }
    }

    /// The deadline of the entry `key` names, rounded up to the tick.
    ///
    /// # Panics
    ///
    /// If `key` is stale (see [`DelayQueue`], "Keys"); [`iter`](Self::iter) and
    /// [`contains`](Self::contains) do not panic.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let a = queue.insert((), Duration::from_secs(5));
    /// let b = queue.insert((), Duration::from_secs(10));
    /// assert!(queue.deadline(&a) < queue.deadline(&b));
    /// ```
    #[track_caller]
    pub fn deadline(&self, key: &Key) -> Instant {
        match self.wheel.deadline(key.0) {
            Some(tick) => self.alarm.instant_of(tick),
            None => stale("deadline"),
        }
    }

    /// Takes the entry `key` names out of the queue, whether or not its deadline has passed.
    ///
    /// # Panics
    ///
    /// If `key` is stale (see [`DelayQueue`], "Keys"); [`try_remove`](Self::try_remove)
    /// returns `None` instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// assert_eq!(queue.remove(&key).into_inner(), "foo");
    /// assert!(queue.is_empty());
    /// ```
    #[track_caller]
    pub fn remove(&mut self, key: &Key) -> Expired<T> {
        match self.try_remove(key) {
            Some(expired) => expired,
            None => stale("remove"),
        }
    }

    /// Takes the entry `key` names out of the queue, or returns `None` if `key` is stale.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// assert!(queue.try_remove(&key).is_some());
    /// assert!(queue.try_remove(&key).is_none());
    /// ```
    pub fn try_remove(&mut self, key: &Key) -> Option<Expired<T>> {
        let tick = self.wheel.deadline(key.0)?;
        let value = self.wheel.cancel(key.0)?;
        self.follow();
        Some(Expired {
            value,
            deadline: self.alarm.instant_of(tick),
            key: *key,
        })
    }

    /// Moves the entry `key` names to `timeout` from now (rounded up to the tick), as if it
    /// were inserted anew: behind the entries already due at the same tick. The key stays
    /// valid.
    ///
    /// # Panics
    ///
    /// If `key` is stale (see [`DelayQueue`], "Keys"); [`try_reset`](Self::try_reset)
    /// returns `false` instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// let before = queue.deadline(&key);
    /// queue.reset(&key, Duration::from_secs(10));
    /// assert!(queue.deadline(&key) > before);
    /// ```
    #[track_caller]
    pub fn reset(&mut self, key: &Key, timeout: Duration) {
        if !self.try_reset(key, timeout) {
            stale("reset");
        }
    }

    /// Moves the entry `key` names to `when` (rounded up to the tick), as if it were inserted
    /// anew: behind the entries already due at the same tick. The key stays valid. A `when`
    /// that has passed makes the entry due at once.
    ///
    /// # Panics
    ///
    /// If `key` is stale (see [`DelayQueue`], "Keys"); [`try_reset_at`](Self::try_reset_at)
    /// returns `false` instead.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// let when = Instant::now() + Duration::from_secs(60);
    /// queue.reset_at(&key, when);
    /// assert!(queue.deadline(&key) >= when);
    /// ```
    #[track_caller]
    pub fn reset_at(&mut self, key: &Key, when: Instant) {
        if !self.try_reset_at(key, when) {
            stale("reset_at");
        }
    }

    /// [`reset`](Self::reset), or `false` (and nothing done) if `key` is stale.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// assert!(queue.try_reset(&key, Duration::from_secs(10)));
    /// queue.remove(&key);
    /// assert!(!queue.try_reset(&key, Duration::from_secs(10)));
    /// ```
    pub fn try_reset(&mut self, key: &Key, timeout: Duration) -> bool {
        let tick = self.alarm.tick_after(timeout);
        self.reset_tick(key, tick)
    }

    /// [`reset_at`](Self::reset_at), or `false` (and nothing done) if `key` is stale.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// let when = Instant::now() + Duration::from_secs(1);
    /// assert!(queue.try_reset_at(&key, when));
    /// queue.remove(&key);
    /// assert!(!queue.try_reset_at(&key, when));
    /// ```
    pub fn try_reset_at(&mut self, key: &Key, when: Instant) -> bool {
        let tick = self.alarm.tick_of(when);
        self.reset_tick(key, tick)
    }

    fn reset_tick(&mut self, key: &Key, tick: u64) -> bool {
        if !self.wheel.reschedule(key.0, tick) {
            return false;
        }
        self.follow();
        true
    }

    /// The key of the next entry to expire: the one [`poll_expired`](Self::poll_expired)
    /// yields next once its deadline has passed. Ties are broken first in, first out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// assert_eq!(queue.peek(), None);
    /// queue.insert("later", Duration::from_secs(10));
    /// let first = queue.insert("first", Duration::from_secs(5));
    /// queue.insert("second", Duration::from_secs(5));
    /// assert_eq!(queue.peek(), Some(first));
    /// ```
    pub fn peek(&self) -> Option<Key> {
        self.wheel.peek().map(|(key, _, _)| Key(key))
    }

    /// When the next entry is due: the instant [`poll_expired`](Self::poll_expired) next
    /// yields one, exact to the tick: the earliest deadline rounded up, or the tick the queue
    /// last polled at if that deadline lies before it.
    /// The queue's timer is set for this instant while a task waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// assert_eq!(queue.next_deadline(), None);
    /// let key = queue.insert((), Duration::from_millis(1500));
    /// assert_eq!(queue.next_deadline(), Some(queue.deadline(&key)));
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        let tick = self.wheel.next_deadline()?;
        Some(self.alarm.instant_of(tick))
    }

    /// The value of the entry `key` names, or `None` if `key` is stale.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// assert_eq!(queue.get(&key), Some(&"foo"));
    /// queue.remove(&key);
    /// assert_eq!(queue.get(&key), None);
    /// ```
    pub fn get(&self, key: &Key) -> Option<&T> {
        self.wheel.get(key.0)
    }

    /// The value of the entry `key` names, to change it in place; `None` if `key` is stale.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert(1, Duration::from_secs(5));
    /// *queue.get_mut(&key).unwrap() += 1;
    /// assert_eq!(queue.remove(&key).into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut T> {
        self.wheel.get_mut(key.0)
    }

    /// Whether `key` names an entry of the queue.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert((), Duration::from_secs(5));
    /// assert!(queue.contains(&key));
    /// queue.remove(&key);
    /// assert!(!queue.contains(&key));
    /// ```
    pub fn contains(&self, key: &Key) -> bool {
        self.wheel.contains(key.0)
    }

    /// The entries in storage order (not expiry order), with their keys and deadlines.
    /// O(capacity).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// let entries: Vec<_> = queue.iter().collect();
    /// assert_eq!(entries, [(key, queue.deadline(&key), &"foo")]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            entries: self.wheel.iter(),
            alarm: &self.alarm,
        }
    }

    /// Gives back storage after a burst: [`capacity`](Self::capacity) falls to about the
    /// highest storage position still in use (storage comes in segments of 1024 entries).
    /// Entries never move, so keys stay valid.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let keys: Vec<_> = (0..10_000).map(|i| queue.insert(i, Duration::from_secs(5))).collect();
    /// for key in &keys[1..] {
    ///     queue.remove(key);
    /// }
    /// queue.shrink_to_fit();
    /// assert!(queue.capacity() <= 1024);
    /// assert_eq!(queue.get(&keys[0]), Some(&0));
    /// ```
    pub fn shrink_to_fit(&mut self) {
        self.wheel.shrink_to_fit();
    }

    /// The same as [`shrink_to_fit`](Self::shrink_to_fit). Unlike tokio-util's `compact`, it
    /// does not move entries to the front of storage: keys stay valid and need no remapping,
    /// but an entry at a high position keeps the storage below it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let a = queue.insert('a', Duration::from_secs(5));
    /// let b = queue.insert('b', Duration::from_secs(5));
    /// queue.remove(&a);
    /// queue.compact();
    /// assert_eq!(queue.remove(&b).into_inner(), 'b');
    /// queue.compact();
    /// assert_eq!(queue.capacity(), 0);
    /// ```
    pub fn compact(&mut self) {
        self.shrink_to_fit();
    }

    /// Removes every entry, dropping the values. Every key becomes stale.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let key = queue.insert("foo", Duration::from_secs(5));
    /// queue.clear();
    /// assert!(queue.is_empty());
    /// assert!(!queue.contains(&key));
    /// ```
    pub fn clear(&mut self) {
        self.wheel.clear();
        self.follow();
    }

    /// How many entries the queue can hold before its storage grows.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// assert_eq!(queue.capacity(), 0);
    /// queue.insert((), Duration::from_secs(5));
    /// assert!(queue.capacity() >= 1);
    /// ```
    pub fn capacity(&self) -> usize {
        self.wheel.capacity()
    }

    /// The number of entries in the queue, due or not.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// queue.insert((), Duration::ZERO);
    /// queue.insert((), Duration::from_secs(5));
    /// assert_eq!(queue.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.wheel.len()
    }

    /// Makes room for at least `additional` more entries without growing storage.
    ///
    /// # Panics
    ///
    /// If the allocator cannot provide the memory, as `Vec::reserve` does.
    ///
    /// ```
    /// let mut queue = tierwheel::DelayQueue::<u64>::new();
    /// queue.reserve(10_000);
    /// assert!(queue.capacity() >= 10_000);
    /// ```
    pub fn reserve(&mut self, additional: usize) {
        self.wheel.reserve(additional);
    }

    /// Whether the queue holds no entry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tierwheel::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// assert!(queue.is_empty());
    /// queue.insert((), Duration::from_secs(5));
    /// assert!(!queue.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.wheel.is_empty()
    }
}

// No value is ever pinned: the queue moves them freely.
impl<T> Unpin for DelayQueue<T> {}

impl<T> Default for DelayQueue<T> {
    /// [`DelayQueue::new`].
    ///
    /// ```
    /// let queue: tierwheel::DelayQueue<u8> = Default::default();
    /// assert!(queue.is_empty());
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Stream for DelayQueue<T> {
    type Item = Expired<T>;

    /// [`DelayQueue::poll_expired`]. The stream is not fused: after `Ready(None)`, entries
    /// inserted later come out of it again.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Expired<T>>> {
        self.get_mut().poll_expired(cx)
    }
}

impl<T> fmt::Debug for DelayQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayQueue")
            .field("len", &self.len())
            .field("next_deadline", &self.next_deadline())
            .field("alarm", &self.alarm)
            .finish()
    }
}
