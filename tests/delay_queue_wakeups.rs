//! When a `DelayQueue` on tokio's timer wakes its task, counted under tokio's paused clock:
//! exactly when an entry is due, never before, never for a change that leaves nothing due.
#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tierwheel::delay_queue::Expired;
use tierwheel::DelayQueue;
use tokio::time::{advance, Instant};

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A queue polled by hand with a counting waker.
struct Watched<T> {
    queue: DelayQueue<T>,
    wakes: Arc<Counter>,
    waker: Waker,
}

impl<T> Watched<T> {
    fn new(queue: DelayQueue<T>) -> Self {
        let wakes = Arc::new(Counter::default());
        let waker = Waker::from(Arc::clone(&wakes));
        Watched {
            queue,
            wakes,
            waker,
        }
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }

    /// Polls until the queue is pending or empty: what came out, and whether it ended pending.
    fn drain(&mut self) -> (Vec<Expired<T>>, bool) {
        let mut cx = Context::from_waker(&self.waker);
        let mut out = Vec::new();
        loop {
            match self.queue.poll_expired(&mut cx) {
                Poll::Ready(Some(expired)) => out.push(expired),
                Poll::Ready(None) => return (out, false),
                Poll::Pending => return (out, true),
            }
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn woken_exactly_at_each_deadline_and_never_between() {
    // Around the boundaries of the wheel's levels (64, 4096 ms) and of tokio's.
    let deadlines = [1, 2, 63, 64, 65, 127, 128, 192, 960, 4095, 4096, 4097, 5000];
    let mut watched = Watched::new(DelayQueue::new());
    let start = Instant::now();
    for &at in deadlines.iter().rev() {
        watched.queue.insert_at(at, (start + ms(at)).into_std());
    }
    assert!(watched.drain().1);
    let mut wakes = 0;
    for elapsed in 1..=5001 {
        advance(ms(1)).await;
        assert_eq!(Instant::now() - start, ms(elapsed));
        let due = deadlines.contains(&elapsed);
        if due {
            wakes += 1;
        }
        assert_eq!(watched.wakes(), wakes, "at {elapsed} ms");
        if due {
            let (out, pending) = watched.drain();
            let values: Vec<u64> = out.into_iter().map(Expired::into_inner).collect();
            assert_eq!(values, [elapsed]);
            assert_eq!(pending, elapsed != 5000);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn changes_that_leave_nothing_due_do_not_wake() {
    let mut watched = Watched::new(DelayQueue::new());
    let first = watched.queue.insert("first", ms(100));
    let second = watched.queue.insert("second", ms(200));
    let third = watched.queue.insert("third", ms(300));
    assert!(watched.drain().1);

    // Earlier, later, away: the timer moves each time, the task is not woken.
    watched.queue.reset(&first, ms(50));
    watched.queue.reset(&first, ms(250));
    watched.queue.remove(&second);
    watched.queue.insert("fourth", ms(400));
    assert_eq!(watched.wakes(), 0);

    // The first deadline is now "first" at 250 ms.
    advance(ms(249)).await;
    assert_eq!(watched.wakes(), 0);
    advance(ms(1)).await;
    assert_eq!(watched.wakes(), 1);
    let (out, pending) = watched.drain();
    assert!(pending);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get_ref(), &"first");
    assert_eq!(out[0].deadline(), (Instant::now()).into_std());

    watched.queue.remove(&third);
    advance(ms(149)).await;
    assert_eq!(watched.wakes(), 1);
    advance(ms(1)).await;
    assert_eq!(watched.wakes(), 2);
    let (out, pending) = watched.drain();
    assert_eq!((out.len(), pending), (1, false));
}

#[tokio::test(start_paused = true)]
async fn an_entry_due_already_wakes_at_once() {
    let mut watched = Watched::new(DelayQueue::new());
    let key = watched.queue.insert("later", ms(1000));
    assert!(watched.drain().1);
    advance(ms(10)).await;

    watched.queue.insert("now", Duration::ZERO);
    assert_eq!(watched.wakes(), 1);
    let (out, _) = watched.drain();
    assert_eq!(out.len(), 1);

    watched.queue.reset(&key, Duration::ZERO);
    assert_eq!(watched.wakes(), 2);
    let (out, pending) = watched.drain();
    assert_eq!((out.len(), pending), (1, false));
}

#[tokio::test(start_paused = true)]
async fn emptied_queue_wakes_once_then_sleeps() {
    let mut watched = Watched::new(DelayQueue::new());
    let key = watched.queue.insert((), ms(1000));
    assert!(watched.drain().1);
    watched.queue.remove(&key);
    assert_eq!(watched.wakes(), 1);
    assert!(!watched.drain().1);

    // The timer was stopped: time passing the old deadline wakes nobody.
    advance(ms(2000)).await;
    assert_eq!(watched.wakes(), 1);

    // A task that saw `Ready(None)` is woken when a later insert comes due, not before.
    watched.queue.insert((), ms(10));
    advance(ms(9)).await;
    assert_eq!(watched.wakes(), 1);
    advance(ms(1)).await;
    assert_eq!(watched.wakes(), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_yields_each_entry_at_its_tick() {
    let mut queue = DelayQueue::new();
    let start = Instant::now();
    for (value, at) in [(0, 30), (1, 10), (2, 10), (3, 4097), (4, 1), (5, 10)] {
        queue.insert_at(value, (start + ms(at)).into_std());
    }
    let mut seen = Vec::new();
    while let Some(expired) = next(&mut queue).await {
        let elapsed = Instant::now() - start;
        assert_eq!(expired.deadline(), (start + elapsed).into_std());
        seen.push((expired.into_inner(), elapsed.as_millis()));
    }
    assert_eq!(
        seen,
        [(4, 1), (1, 10), (2, 10), (5, 10), (0, 30), (3, 4097)]
    );
}

#[tokio::test(start_paused = true)]
async fn off_grid_deadlines_are_never_early_and_at_most_a_tick_late() {
    // The queue starts half a millisecond off tokio's grid, and deadlines fall between ticks.
    advance(Duration::from_micros(500)).await;
    let mut queue = DelayQueue::new();
    let start = Instant::now();
    let offsets = [1, 999, 1000, 1001, 1500, 63_999, 64_001, 5_000_000];
    for &micros in &offsets {
        queue.insert_at(micros, (start + Duration::from_micros(micros)).into_std());
    }
    while let Some(expired) = next(&mut queue).await {
        let late = Instant::now() - (start + Duration::from_micros(*expired.get_ref()));
        // Up to a tick of the queue's rounding and one of tokio's, as the grids differ.
        assert!(late < ms(2), "{} µs: {late:?} late", expired.get_ref());
        assert!(Instant::now().into_std() >= expired.deadline());
    }
}

#[tokio::test(start_paused = true)]
async fn deadlines_past_tokio_horizon_do_not_panic() {
    let mut queue = DelayQueue::new();
    let never = queue.insert("never", Duration::MAX);
    let decade = queue.insert("in ten years", Duration::from_secs(10 * 365 * 86_400));
    let soon = queue.insert("soon", ms(5));
    assert!(queue.deadline(&never) > queue.deadline(&decade));
    assert_eq!(next(&mut queue).await.unwrap().key(), soon);
    assert_eq!(next(&mut queue).await.unwrap().key(), decade);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.peek(), Some(never));
}

#[tokio::test]
async fn new_inside_a_runtime_uses_tokio_and_outside_the_service() {
    let inside = DelayQueue::<()>::new();
    assert!(format!("{inside:?}").contains("tokio"));
    let outside = std::thread::spawn(|| format!("{:?}", DelayQueue::<()>::new()))
        .join()
        .unwrap();
    assert!(outside.contains("service"));
}

#[test]
#[should_panic(expected = "outside a tokio runtime")]
fn with_tokio_outside_a_runtime_panics() {
    let _ = DelayQueue::<()>::with_tokio();
}

/// The queue as a `Stream`, awaited once.
async fn next<T>(queue: &mut DelayQueue<T>) -> Option<Expired<T>> {
    use futures_core::Stream;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *queue).poll_next(cx)).await
}
