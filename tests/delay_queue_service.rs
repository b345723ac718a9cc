//! `DelayQueue` on a timer service (the runtime-agnostic source), through the public API: one
//! timer per queue, wakeups counted on a manual driver's clock, stale keys, deadlines past the
//! end of time, and the process-wide default service.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tierwheel::delay_queue::{Expired, Key};
use tierwheel::service::{ManualDriver, TimerService};
use tierwheel::DelayQueue;

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

/// A queue on a manual driver, polled with a counting waker.
struct Rig {
    driver: ManualDriver,
    queue: DelayQueue<u64>,
    wakes: Arc<Counter>,
    waker: Waker,
}

impl Rig {
    fn new() -> Self {
        let driver = TimerService::builder().build_manual();
        let queue = DelayQueue::with_handle(driver.handle());
        let wakes = Arc::new(Counter::default());
        let waker = Waker::from(Arc::clone(&wakes));
        Rig {
            driver,
            queue,
            wakes,
            waker,
        }
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }

    fn run_until(&mut self, millis: u64) {
        self.driver.run_until(Duration::from_millis(millis));
    }

    /// Polls until pending (true) or empty (false), returning the values that came out.
    fn drain(&mut self) -> (Vec<u64>, bool) {
        let mut cx = Context::from_waker(&self.waker);
        let mut out = Vec::new();
        loop {
            match self.queue.poll_expired(&mut cx) {
                Poll::Ready(Some(expired)) => out.push(expired.into_inner()),
                Poll::Ready(None) => return (out, false),
                Poll::Pending => return (out, true),
            }
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn one_timer_per_queue_whatever_its_length() {
    let mut rig = Rig::new();
    for i in 0..10_000 {
        rig.queue.insert(i, ms(1 + i % 5_000));
    }
    assert!(rig.drain().1);
    assert_eq!(rig.driver.pending(), 1);
    for i in 0..10_000 {
        rig.queue.insert(i, ms(1 + i % 5_000));
    }
    assert_eq!(rig.driver.pending(), 1);
}

#[test]
fn woken_exactly_at_each_deadline_on_a_manual_clock() {
    let mut rig = Rig::new();
    let deadlines = [1, 63, 64, 65, 4095, 4096, 4097, 262_144, 262_145];
    for &at in deadlines.iter().rev() {
        rig.queue.insert(at, ms(at));
    }
    assert!(rig.drain().1);
    let mut wakes = 0;
    let mut now = 0;
    for &at in &deadlines {
        // The tick before: nothing due, no wake.
        rig.run_until(at - 1);
        assert_eq!(rig.wakes(), wakes, "before {at} ms");
        if at - 1 > now {
            assert_eq!(rig.drain(), (vec![], true));
        }
        rig.run_until(at);
        wakes += 1;
        assert_eq!(rig.wakes(), wakes, "at {at} ms");
        assert_eq!(rig.drain(), (vec![at], at != 262_145));
        now = at;
    }
}

#[test]
fn a_sub_tick_deadline_rounds_up_never_early() {
    let mut rig = Rig::new();
    rig.driver.run_until(Duration::from_micros(300));
    let key = rig.queue.insert(1, Duration::from_micros(800)); // at 1.1 ms: tick 2
    let start = rig.queue.deadline(&key) - ms(2);
    assert!(rig.drain().1);
    rig.driver.run_until(Duration::from_micros(1999));
    assert_eq!((rig.wakes(), rig.drain()), (0, (vec![], true)));
    rig.run_until(2);
    assert_eq!((rig.wakes(), rig.drain()), (1, (vec![1], false)));
    let at = rig.queue.insert(2, ms(5));
    assert_eq!(rig.queue.deadline(&at), start + ms(7));
}

#[test]
fn moving_the_first_deadline_does_not_wake() {
    let mut rig = Rig::new();
    let a = rig.queue.insert(1, ms(10));
    let b = rig.queue.insert(2, ms(20));
    assert!(rig.drain().1);
    rig.queue.reset(&a, ms(30));
    rig.queue.reset(&b, ms(5));
    rig.queue.remove(&b);
    rig.queue.insert(3, ms(40));
    rig.run_until(29);
    assert_eq!(rig.wakes(), 0);
    assert_eq!(rig.driver.pending(), 1);
    rig.run_until(30);
    assert_eq!(rig.wakes(), 1);
    assert_eq!(rig.drain(), (vec![1], true));
}

#[test]
fn ties_come_out_first_in_first_out_by_insert_or_reset() {
    let mut rig = Rig::new();
    let keys: Vec<Key> = (0..6).map(|i| rig.queue.insert(i, ms(10))).collect();
    rig.queue.reset(&keys[1], ms(10));
    rig.queue.reset(&keys[3], ms(10));
    rig.run_until(10);
    assert_eq!(rig.drain().0, [0, 2, 4, 5, 1, 3]);
}

#[test]
fn past_deadlines_are_due_at_once_in_deadline_order_from_the_last_poll() {
    let mut rig = Rig::new();
    rig.queue.insert(1, ms(5));
    rig.run_until(10);
    let probe = rig.queue.insert(0, Duration::ZERO);
    let base = rig.queue.deadline(&probe) - ms(10);
    rig.queue.remove(&probe);
    // Not polled since tick 0: past deadlines keep their order among the waiting entries.
    rig.queue.insert_at(2, base);
    rig.queue.insert_at(3, base + ms(7));
    assert_eq!(rig.drain().0, [2, 1, 3]);
    // Polled at tick 10: a deadline before it counts as tick 10, behind what is due there.
    rig.queue.insert(4, Duration::ZERO);
    rig.queue.insert_at(5, base);
    assert_eq!(rig.drain().0, [4, 5]);
}

#[test]
fn deadlines_past_the_end_of_time_saturate() {
    let mut rig = Rig::new();
    let never = rig.queue.insert(1, Duration::MAX);
    let far = rig.queue.insert(2, Duration::from_secs(u64::MAX / 2));
    let soon = rig.queue.insert(3, ms(1));
    assert!(rig.queue.deadline(&never) >= rig.queue.deadline(&far));
    assert!(rig.drain().1);
    rig.driver.run_until(Duration::MAX);
    let (out, pending) = rig.drain();
    assert!(out.contains(&3) && pending);
    assert!(!rig.queue.contains(&soon));
    assert!(rig.queue.contains(&never));
    // Resetting to the end of time does not panic either.
    rig.queue.reset_at(&never, rig.queue.deadline(&never));
    rig.queue.reset(&never, Duration::MAX);
}

#[test]
fn stale_keys_are_inert_or_panic_clearly() {
    let mut rig = Rig::new();
    let key = rig.queue.insert(1, ms(5));
    rig.queue.remove(&key);
    assert!(rig.queue.try_remove(&key).is_none());
    assert!(!rig.queue.try_reset(&key, ms(1)));
    assert!(!rig.queue.try_reset_at(&key, Instant::now()));
    assert_eq!(rig.queue.get(&key), None);
    assert_eq!(rig.queue.get_mut(&key), None);
    assert!(!rig.queue.contains(&key));

    type Call = fn(&mut DelayQueue<u64>, &Key);
    let calls: [(&str, Call); 4] = [
        ("remove", |q, k| {
            let _ = q.remove(k);
        }),
        ("reset", |q, k| q.reset(k, ms(1))),
        ("reset_at", |q, k| q.reset_at(k, Instant::now())),
        ("deadline", |q, k| {
            let _ = q.deadline(k);
        }),
    ];
    for (method, call) in calls {
        let panic =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&mut rig.queue, &key)))
                .expect_err(method);
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains(&format!(
                "DelayQueue::{method} with a key that names no entry"
            )),
            "{message}"
        );
    }
}

#[test]
fn keys_survive_compact_and_shrink() {
    let mut rig = Rig::new();
    let keys: Vec<Key> = (0..5_000).map(|i| rig.queue.insert(i, ms(5))).collect();
    for key in &keys[..4_999] {
        rig.queue.remove(key);
    }
    rig.queue.compact();
    rig.queue.shrink_to_fit();
    assert_eq!(rig.queue.get(&keys[4_999]), Some(&4_999));
    rig.run_until(5);
    let (out, _) = rig.drain();
    assert_eq!(out, [4_999]);
}

#[test]
fn iter_get_mut_and_clear() {
    let mut rig = Rig::new();
    let a = rig.queue.insert(1, ms(5));
    let b = rig.queue.insert(2, ms(9));
    *rig.queue.get_mut(&a).unwrap() = 10;
    let mut seen: Vec<(Key, Instant, u64)> = rig.queue.iter().map(|(k, d, &v)| (k, d, v)).collect();
    seen.sort_by_key(|&(_, d, _)| d);
    let want = [
        (a, rig.queue.deadline(&a), 10),
        (b, rig.queue.deadline(&b), 2),
    ];
    assert_eq!(seen, want);
    assert_eq!(rig.queue.iter().len(), 2);
    assert!(rig.drain().1);
    rig.queue.clear();
    assert_eq!(rig.wakes(), 1);
    assert_eq!(rig.drain(), (vec![], false));
    assert!(!rig.queue.contains(&a));
}

#[test]
#[should_panic(expected = "timer service of a DelayQueue has shut down")]
fn polling_after_the_service_shut_down_panics() {
    let driver = TimerService::builder().build_manual();
    let mut queue = DelayQueue::with_handle(driver.handle());
    queue.insert((), ms(5));
    drop(driver);
    let _ = queue.poll_expired(&mut Context::from_waker(Waker::noop()));
}

#[test]
fn new_uses_the_process_wide_service_on_the_real_clock() {
    let mut queue = DelayQueue::new();
    assert!(format!("{queue:?}").contains("service"));
    let start = Instant::now();
    queue.insert("a", ms(3));
    queue.insert("b", ms(1));
    let out: Vec<Expired<&str>> = block_on(async {
        let mut out = Vec::new();
        while let Some(expired) = std::future::poll_fn(|cx| queue.poll_expired(cx)).await {
            assert!(Instant::now() >= expired.deadline());
            out.push(expired);
        }
        out
    });
    assert_eq!(
        out.iter().map(|e| *e.get_ref()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert!(Instant::now() - start >= ms(3));
}

#[test]
fn the_queue_is_send_sync_unpin_and_a_stream() {
    fn check<Q: Send + Sync + Unpin + futures_core::Stream<Item = Expired<u8>> + Default>() {}
    check::<DelayQueue<u8>>();
}

/// Runs a future on this thread, parking until its waker is called.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
