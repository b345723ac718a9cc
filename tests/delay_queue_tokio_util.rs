//! tokio-util 0.7's own `DelayQueue` tests (`tests/time_delay_queue.rs`), ported to
//! `tierwheel::DelayQueue` on tokio's paused clock, under their names.
//!
//! The port is faithful except where this queue's documented contract differs; each such
//! assertion says why at the test: ties come out first in, first out; no deadline panics; the
//! queue never wakes its task at a cascade boundary of its wheel, nor on a reset that leaves
//! nothing due; `compact` does not move entries, and storage is given back in segments.
//!
//! tokio-test's mock task is replaced by a small one here (`task::spawn`, `enter`,
//! `is_woken`), with the same meaning.
#![cfg(feature = "tokio")]

use std::time::Duration;
use tierwheel::DelayQueue;
use tokio::time::{self, sleep, sleep_until, Instant};

/// A future-less mock task: polls what it owns with a waker that records being woken.
mod task {
    use std::ops::{Deref, DerefMut};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    pub(crate) struct Spawn<T> {
        inner: T,
        flag: Arc<Flag>,
        waker: Waker,
    }

    pub(crate) fn spawn<T>(inner: T) -> Spawn<T> {
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(Arc::clone(&flag));
        Spawn { inner, flag, waker }
    }

    impl<T: Unpin> Spawn<T> {
        /// Polls through `f` with the task's waker, clearing the woken flag first.
        pub(crate) fn enter<R>(&mut self, f: impl FnOnce(&mut Context<'_>, Pin<&mut T>) -> R) -> R {
            self.flag.0.store(false, Ordering::SeqCst);
            let mut cx = Context::from_waker(&self.waker);
            f(&mut cx, Pin::new(&mut self.inner))
        }

        /// Whether the task was woken since it last polled.
        pub(crate) fn is_woken(&self) -> bool {
            self.flag.0.load(Ordering::SeqCst)
        }
    }

    impl<T> Deref for Spawn<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T> DerefMut for Spawn<T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.inner
        }
    }
}

macro_rules! poll {
    ($queue:ident) => {
        $queue.enter(|cx, mut queue| queue.poll_expired(cx))
    };
}

macro_rules! assert_ready {
    ($e:expr) => {{
        match $e {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("pending"),
        }
    }};
}

macro_rules! assert_pending {
    ($e:expr) => {{
        if let std::task::Poll::Ready(v) = $e {
            panic!("ready: {:?}", v.map(|e| e.into_inner()));
        }
    }};
}

macro_rules! assert_ready_some {
    ($e:expr) => {{
        match assert_ready!($e) {
            Some(v) => v,
            None => panic!("None"),
        }
    }};
}

/// The queue as a `Stream`, awaited once (what `StreamExt::next` does).
async fn next<T>(queue: &mut DelayQueue<T>) -> Option<tierwheel::delay_queue::Expired<T>> {
    use futures_core::Stream;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *queue).poll_next(cx)).await
}

/// `std::time::Instant` from tokio's: the queue takes std instants, read on tokio's clock.
fn std(instant: Instant) -> std::time::Instant {
    instant.into_std()
}

#[tokio::test]
async fn single_immediate_delay() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());
    let _key = queue.insert_at("foo", std(Instant::now()));

    // Advance time by 1ms to handle thee rounding
    sleep(ms(1)).await;

    assert_ready_some!(poll!(queue));

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none())
}

#[tokio::test]
async fn multi_immediate_delays() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let _k = queue.insert_at("1", std(Instant::now()));
    let _k = queue.insert_at("2", std(Instant::now()));
    let _k = queue.insert_at("3", std(Instant::now()));

    sleep(ms(1)).await;

    let mut res = vec![];

    while res.len() < 3 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
    }

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none());

    // Adapted: ties come out first in, first out here, so the order is checked before the
    // sort that tokio-util needs.
    assert_eq!(res, ["1", "2", "3"]);

    res.sort_unstable();

    assert_eq!("1", res[0]);
    assert_eq!("2", res[1]);
    assert_eq!("3", res[2]);
}

#[tokio::test]
async fn single_short_delay() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());
    let _key = queue.insert_at("foo", std(Instant::now() + ms(5)));

    assert_pending!(poll!(queue));

    sleep(ms(1)).await;

    assert!(!queue.is_woken());

    sleep(ms(5)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(*entry.get_ref(), "foo");

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none());
}

#[tokio::test]
async fn multi_delay_at_start() {
    time::pause();

    let long = 262_144 + 9 * 4096;
    let delays = &[1000, 2, 234, long, 60, 10];

    let mut queue = task::spawn(DelayQueue::new());

    // Setup the delays
    for &i in delays {
        let _key = queue.insert_at(i, std(Instant::now() + ms(i)));
    }

    assert_pending!(poll!(queue));
    assert!(!queue.is_woken());

    let start = Instant::now();
    for elapsed in 0..1200 {
        let elapsed = elapsed + 1;
        tokio::time::sleep_until(start + ms(elapsed)).await;

        if delays.contains(&elapsed) {
            assert!(queue.is_woken());
            assert_ready!(poll!(queue));
            assert_pending!(poll!(queue));
        } else {
            // Adapted: tokio-util's queue may wake at its wheel's cascade boundaries (192 and
            // 960 ms here) with nothing due. This one's timer is set for the exact next
            // deadline, so it is never woken between deadlines.
            assert!(
                !queue.is_woken(),
                "elapsed={} dt={:?}",
                elapsed,
                Instant::now() - start
            );
        }
    }
}

#[tokio::test]
async fn insert_in_past_fires_immediately() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());
    let now = Instant::now();

    sleep(ms(10)).await;

    queue.insert_at("foo", std(now));

    assert_ready!(poll!(queue));
}

#[tokio::test]
async fn remove_entry() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let key = queue.insert_at("foo", std(Instant::now() + ms(5)));

    assert_pending!(poll!(queue));

    let entry = queue.remove(&key);
    assert_eq!(entry.into_inner(), "foo");

    sleep(ms(10)).await;

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none());
}

// Adapted: paused from the runtime's start instead of by `time::pause()` in the test. Paused
// later, the clock stands off tokio's millisecond grid, and tokio rounds the test's own sleeps
// up to that grid: `sleep(ms(7))` below then moves the clock 8 ms, onto the entry's
// deadline. This queue reads the clock and yields the entry as soon as it is due; tokio-util's
// yields it only once its own timer, rounded up a further millisecond, has fired. On the grid,
// both behave as the test expects.
#[tokio::test(start_paused = true)]
async fn reset_entry() {
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();
    let key = queue.insert_at("foo", std(now + ms(5)));

    assert_pending!(poll!(queue));
    sleep(ms(1)).await;

    queue.reset_at(&key, std(now + ms(10)));

    assert_pending!(poll!(queue));

    sleep(ms(7)).await;

    assert!(!queue.is_woken());

    assert_pending!(poll!(queue));

    sleep(ms(3)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(*entry.get_ref(), "foo");

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none())
}

#[tokio::test]
async fn reset_to_past_wakes_pending_queue() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());
    let key = queue.insert("foo", ms(10_000));

    assert_pending!(poll!(queue));
    assert!(!queue.is_woken());

    queue.reset_at(&key, std(Instant::now() - ms(100)));

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(*entry.get_ref(), "foo");

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none());
}

// A reset far earlier than the deadline the timer was set for still wakes the task.
#[tokio::test]
async fn reset_much_later() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();
    sleep(ms(1)).await;

    let key = queue.insert_at("foo", std(now + ms(200)));
    assert_pending!(poll!(queue));

    sleep(ms(3)).await;

    queue.reset_at(&key, std(now + ms(10)));

    sleep(ms(20)).await;

    assert!(queue.is_woken());
}

// A reset far earlier than the deadline the timer was set for still wakes the task.
#[tokio::test]
async fn reset_twice() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());
    let now = Instant::now();

    sleep(ms(1)).await;

    let key = queue.insert_at("foo", std(now + ms(200)));

    assert_pending!(poll!(queue));

    sleep(ms(3)).await;

    queue.reset_at(&key, std(now + ms(50)));

    sleep(ms(20)).await;

    queue.reset_at(&key, std(now + ms(40)));

    sleep(ms(20)).await;

    assert!(queue.is_woken());
}

/// An entry inserted with a deadline in the past, then reset twice into the future, comes out
/// once, at the last reset's deadline.
#[tokio::test]
async fn repeatedly_reset_entry_inserted_as_expired() {
    time::pause();

    time::sleep(ms(1000)).await;

    let mut queue = task::spawn(DelayQueue::new());
    let now = Instant::now();

    let key = queue.insert_at("foo", std(now - ms(100)));

    queue.reset_at(&key, std(now + ms(100)));
    queue.reset_at(&key, std(now + ms(50)));

    assert_pending!(poll!(queue));

    time::sleep_until(now + ms(60)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "foo");

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none());
}

#[tokio::test]
async fn remove_expired_item() {
    time::pause();

    let mut queue = DelayQueue::new();

    let now = Instant::now();

    sleep(ms(10)).await;

    let key = queue.insert_at("foo", std(now));

    let entry = queue.remove(&key);
    assert_eq!(entry.into_inner(), "foo");
}

/// Entries due exactly at the start of a level of the wheel, and at its current time, can be
/// removed.
#[tokio::test]
async fn remove_at_timer_wheel_threshold() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let key1 = queue.insert_at("foo", std(now + ms(64)));
    let key2 = queue.insert_at("bar", std(now + ms(64)));

    sleep(ms(80)).await;

    let entry = assert_ready_some!(poll!(queue)).into_inner();

    // Adapted: ties come out first in, first out, so "foo" is first; tokio-util accepts
    // either.
    assert_eq!(entry, "foo");

    match entry {
        "foo" => {
            let entry = queue.remove(&key2).into_inner();
            assert_eq!(entry, "bar");
        }
        "bar" => {
            let entry = queue.remove(&key1).into_inner();
            assert_eq!(entry, "foo");
        }
        other => panic!("other: {other:?}"),
    }
}

#[tokio::test]
async fn expires_before_last_insert() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    queue.insert_at("foo", std(now + ms(10_000)));

    // The timer is set for the one entry (10 s; tokio-util's for 8.192 s, a slot start).
    assert_pending!(poll!(queue));

    // Now for the new entry.
    queue.insert_at("bar", std(now + ms(600)));

    assert_pending!(poll!(queue));

    sleep(ms(600)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "bar");
}

#[tokio::test]
async fn multi_reset() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let one = queue.insert_at("one", std(now + ms(200)));
    let two = queue.insert_at("two", std(now + ms(250)));

    assert_pending!(poll!(queue));

    queue.reset_at(&one, std(now + ms(300)));
    queue.reset_at(&two, std(now + ms(350)));
    queue.reset_at(&one, std(now + ms(400)));

    sleep(ms(310)).await;

    assert_pending!(poll!(queue));

    sleep(ms(50)).await;

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(*entry.get_ref(), "two");

    assert_pending!(poll!(queue));

    sleep(ms(50)).await;

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(*entry.get_ref(), "one");

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none())
}

#[tokio::test]
async fn expire_first_key_when_reset_to_expire_earlier() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let one = queue.insert_at("one", std(now + ms(200)));
    queue.insert_at("two", std(now + ms(250)));

    assert_pending!(poll!(queue));

    queue.reset_at(&one, std(now + ms(100)));

    sleep(ms(100)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "one");
}

#[tokio::test]
async fn expire_second_key_when_reset_to_expire_earlier() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    queue.insert_at("one", std(now + ms(200)));
    let two = queue.insert_at("two", std(now + ms(250)));

    assert_pending!(poll!(queue));

    queue.reset_at(&two, std(now + ms(100)));

    sleep(ms(100)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "two");
}

#[tokio::test]
async fn reset_first_expiring_item_to_expire_later() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let one = queue.insert_at("one", std(now + ms(200)));
    let _two = queue.insert_at("two", std(now + ms(250)));

    assert_pending!(poll!(queue));

    queue.reset_at(&one, std(now + ms(300)));
    sleep(ms(250)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "two");
}

// Adapted: paused from the runtime's start instead of by `time::pause()` in the test. Paused
// later, the clock stands off tokio's millisecond grid, and tokio rounds the test's own sleeps
// up to that grid: `sleep(ms(99))` below then moves the clock 100 ms, onto the entry's
// deadline. This queue reads the clock and yields the entry as soon as it is due; tokio-util's
// yields it only once its own timer, rounded up a further millisecond, has fired. On the grid,
// both behave as the test expects.
#[tokio::test(start_paused = true)]
async fn insert_before_first_after_poll() {
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let _one = queue.insert_at("one", std(now + ms(200)));

    assert_pending!(poll!(queue));

    let _two = queue.insert_at("two", std(now + ms(100)));

    sleep(ms(99)).await;

    assert_pending!(poll!(queue));

    sleep(ms(1)).await;

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "two");
}

#[tokio::test]
async fn insert_after_ready_poll() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    queue.insert_at("1", std(now + ms(100)));
    queue.insert_at("2", std(now + ms(100)));
    queue.insert_at("3", std(now + ms(100)));

    assert_pending!(poll!(queue));

    sleep(ms(100)).await;

    assert!(queue.is_woken());

    let mut res = vec![];

    while res.len() < 3 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
        queue.insert_at("foo", std(now + ms(500)));
    }

    // Adapted: ties come out first in, first out, so the order is checked before the sort.
    assert_eq!(res, ["1", "2", "3"]);

    res.sort_unstable();

    assert_eq!("1", res[0]);
    assert_eq!("2", res[1]);
    assert_eq!("3", res[2]);
}

#[tokio::test]
async fn reset_later_after_slot_starts() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let foo = queue.insert_at("foo", std(now + ms(100)));

    assert_pending!(poll!(queue));

    sleep_until(now + Duration::from_millis(80)).await;

    assert!(!queue.is_woken());

    // Adapted: tokio-util's wheel, not polled since time 0, files the entry reset to 120 ms in
    // its [64, 128) slot without knowing when in it the entry is due, so it wakes at once to
    // advance. This queue knows the exact next deadline and moves its timer to 120 ms: its
    // task is not woken, as nothing is due.
    queue.reset_at(&foo, std(now + ms(120)));
    assert!(!queue.is_woken());

    assert_pending!(poll!(queue));

    sleep_until(now + Duration::from_millis(119)).await;
    assert!(!queue.is_woken());

    sleep(ms(1)).await;
    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "foo");
}

#[tokio::test]
async fn reset_inserted_expired() {
    time::pause();

    time::sleep(ms(1000)).await;

    let mut queue = task::spawn(DelayQueue::new());
    let now = Instant::now();

    let key = queue.insert_at("foo", std(now - ms(100)));

    // A reset of an entry inserted with a deadline in the past.
    queue.reset_at(&key, std(now + ms(100)));

    assert_eq!(1, queue.len());

    sleep(ms(200)).await;

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "foo");

    assert_eq!(queue.len(), 0);
}

#[tokio::test]
async fn reset_earlier_after_slot_starts() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let foo = queue.insert_at("foo", std(now + ms(200)));

    assert_pending!(poll!(queue));

    sleep_until(now + Duration::from_millis(80)).await;

    assert!(!queue.is_woken());

    // Adapted: as in `reset_later_after_slot_starts`, tokio-util wakes at once here because its
    // wheel does not know when in the [64, 128) slot the entry is due; this queue moves its
    // timer to exactly 120 ms and does not wake its task, as nothing is due.
    queue.reset_at(&foo, std(now + ms(120)));
    assert!(!queue.is_woken());

    assert_pending!(poll!(queue));

    sleep_until(now + Duration::from_millis(119)).await;
    assert!(!queue.is_woken());

    sleep(ms(1)).await;
    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "foo");
}

#[tokio::test]
async fn insert_in_past_after_poll_fires_immediately() {
    time::pause();

    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    queue.insert_at("foo", std(now + ms(200)));

    assert_pending!(poll!(queue));

    sleep(ms(80)).await;

    assert!(!queue.is_woken());
    queue.insert_at("bar", std(now + ms(40)));

    assert!(queue.is_woken());

    let entry = assert_ready_some!(poll!(queue)).into_inner();
    assert_eq!(entry, "bar");
}

#[tokio::test]
async fn delay_queue_poll_expired_when_empty() {
    let mut delay_queue = task::spawn(DelayQueue::new());
    let key = delay_queue.insert(0, std::time::Duration::from_secs(10));
    assert_pending!(poll!(delay_queue));

    delay_queue.remove(&key);
    assert!(assert_ready!(poll!(delay_queue)).is_none());
}

#[tokio::test(start_paused = true)]
async fn compact_expire_empty() {
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    queue.insert_at("foo1", std(now + ms(10)));
    queue.insert_at("foo2", std(now + ms(10)));

    sleep(ms(10)).await;

    let mut res = vec![];
    while res.len() < 2 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
    }

    queue.compact();

    assert_eq!(queue.len(), 0);
    assert_eq!(queue.capacity(), 0);
}

#[tokio::test(start_paused = true)]
async fn compact_remove_empty() {
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let key1 = queue.insert_at("foo1", std(now + ms(10)));
    let key2 = queue.insert_at("foo2", std(now + ms(10)));

    queue.remove(&key1);
    queue.remove(&key2);

    queue.compact();

    assert_eq!(queue.len(), 0);
    assert_eq!(queue.capacity(), 0);
}

#[tokio::test(start_paused = true)]
// Keys of entries that `compact` would move in tokio-util still remove their entries after it.
async fn compact_remove_remapped_keys() {
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    queue.insert_at("foo1", std(now + ms(10)));
    queue.insert_at("foo2", std(now + ms(10)));

    let key3 = queue.insert_at("foo3", std(now + ms(20)));
    let key4 = queue.insert_at("foo4", std(now + ms(20)));

    sleep(ms(10)).await;

    let mut res = vec![];
    while res.len() < 2 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
    }

    queue.compact();

    queue.insert_at("foo5", std(now + ms(10)));

    let expired3 = queue.remove(&key3);
    let expired4 = queue.remove(&key4);

    assert_eq!(expired3.into_inner(), "foo3");
    assert_eq!(expired4.into_inner(), "foo4");

    queue.compact();
    assert_eq!(queue.len(), 1);
    // Adapted: tokio-util's `compact` leaves room for exactly the one entry. This queue never
    // moves entries and gives storage back in segments of 1024 entries: the segment holding
    // "foo5" stays.
    assert!((1..=1024).contains(&queue.capacity()));
}

#[tokio::test(start_paused = true)]
async fn compact_change_deadline() {
    let mut queue = task::spawn(DelayQueue::new());

    let mut now = Instant::now();

    queue.insert_at("foo1", std(now + ms(10)));
    queue.insert_at("foo2", std(now + ms(10)));

    queue.insert_at("foo3", std(now + ms(20)));
    let key4 = queue.insert_at("foo4", std(now + ms(20)));

    sleep(ms(10)).await;

    let mut res = vec![];
    while res.len() < 2 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
    }

    queue.compact();

    now = Instant::now();

    queue.insert_at("foo5", std(now + ms(10)));
    let key6 = queue.insert_at("foo6", std(now + ms(10)));

    queue.reset_at(&key4, std(now + ms(20)));
    queue.reset_at(&key6, std(now + ms(20)));

    // foo3 and foo5 will expire
    sleep(ms(10)).await;

    while res.len() < 4 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
    }

    sleep(ms(10)).await;

    while res.len() < 6 {
        let entry = assert_ready_some!(poll!(queue));
        res.push(entry.into_inner());
    }

    let entry = assert_ready!(poll!(queue));
    assert!(entry.is_none());
}

#[tokio::test(start_paused = true)]
async fn item_expiry_greater_than_wheel() {
    // A queue that has existed for at least 2^36 milliseconds does not panic when an entry is
    // inserted.
    let mut queue = DelayQueue::new();
    for _ in 0..2 {
        tokio::time::advance(Duration::from_millis(1 << 35)).await;
        queue.insert(0, Duration::from_millis(0));
        next(&mut queue).await;
    }
    // This should not panic
    let no_panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        queue.insert(1, Duration::from_millis(1));
    }));
    assert!(no_panic.is_ok());
}

#[tokio::test(start_paused = true)]
#[cfg(panic = "unwind")]
async fn remove_after_compact() {
    let now = Instant::now();
    let mut queue = DelayQueue::new();

    let foo_key = queue.insert_at("foo", std(now + ms(10)));
    queue.insert_at("bar", std(now + ms(20)));
    queue.remove(&foo_key);
    queue.compact();

    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        queue.remove(&foo_key);
    }));
    assert!(panic.is_err());
}

#[tokio::test(start_paused = true)]
#[cfg(panic = "unwind")]
async fn remove_after_compact_poll() {
    let now = Instant::now();
    let mut queue = task::spawn(DelayQueue::new());

    let foo_key = queue.insert_at("foo", std(now + ms(10)));
    queue.insert_at("bar", std(now + ms(20)));

    sleep(ms(10)).await;
    assert_eq!(assert_ready_some!(poll!(queue)).key(), foo_key);

    queue.compact();

    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        queue.remove(&foo_key);
    }));
    assert!(panic.is_err());
}

#[tokio::test(start_paused = true)]
async fn peek() {
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let key = queue.insert_at("foo", std(now + ms(5)));
    let key2 = queue.insert_at("bar", std(now));
    let key3 = queue.insert_at("baz", std(now + ms(10)));

    assert_eq!(queue.peek(), Some(key2));

    sleep(ms(6)).await;

    assert_eq!(queue.peek(), Some(key2));

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(entry.get_ref(), &"bar");

    assert_eq!(queue.peek(), Some(key));

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(entry.get_ref(), &"foo");

    assert_eq!(queue.peek(), Some(key3));

    assert_pending!(poll!(queue));

    sleep(ms(5)).await;

    assert_eq!(queue.peek(), Some(key3));

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(entry.get_ref(), &"baz");

    assert!(queue.peek().is_none());
}

#[tokio::test(start_paused = true)]
async fn peek_entries_sharing_a_wheel_slot() {
    // Entries with different deadlines in one coarse slot of the wheel (64..=127 ms) are
    // peeked in deadline order, before and after time reaches the slot.
    let mut queue = task::spawn(DelayQueue::new());

    let now = Instant::now();

    let early = queue.insert_at("early", std(now + ms(100)));
    let late = queue.insert_at("late", std(now + ms(120)));

    assert_eq!(queue.peek(), Some(early));

    sleep(ms(105)).await;

    assert_eq!(queue.peek(), Some(early));

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(entry.key(), early);
    assert_eq!(entry.get_ref(), &"early");

    assert_eq!(queue.peek(), Some(late));

    sleep(ms(20)).await;

    let entry = assert_ready_some!(poll!(queue));
    assert_eq!(entry.key(), late);

    assert!(queue.peek().is_none());
}

#[tokio::test(start_paused = true)]
async fn wake_after_remove_last() {
    let mut queue = task::spawn(DelayQueue::new());
    let key = queue.insert("foo", ms(1000));

    assert_pending!(poll!(queue));

    queue.remove(&key);

    assert!(queue.is_woken());
    assert!(assert_ready!(poll!(queue)).is_none());
}

#[tokio::test(start_paused = true)]
async fn wake_after_clear() {
    let mut queue = task::spawn(DelayQueue::new());
    queue.insert("foo", ms(1000));

    assert_pending!(poll!(queue));
    assert!(!queue.is_woken());

    queue.clear();

    assert!(queue.is_woken());
    assert!(assert_ready!(poll!(queue)).is_none());
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
