//! `TimerService` through its public API: real threads, waiting on channels and joins only
//! (generous timeouts are failure guards, never timing).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;
use tierwheel::service::{ShutdownError, TimeoutError, TimerService, TimerStatus};

const GUARD: Duration = Duration::from_secs(30);

/// A std-only executor: parks the thread until the future's waker unparks it.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

#[test]
fn callbacks_run_on_the_named_driver_thread_never_early() {
    let service = TimerService::builder()
        .thread_name("timers-under-test")
        .tick(Duration::from_micros(200))
        .build()
        .unwrap();
    let handle = service.handle();
    let (tx, rx) = mpsc::channel();
    for delay_us in [0u64, 150, 200, 201, 1_000, 3_333] {
        let (tx, handle) = (tx.clone(), handle.clone());
        let timeout = service
            .call_later(Duration::from_micros(delay_us), move || {
                let name = thread::current().name().map(String::from);
                tx.send((delay_us, handle.time(), name)).unwrap();
            })
            .unwrap();
        assert_eq!(timeout.status(), TimerStatus::Pending);
    }
    drop(tx);
    let mut seen = Vec::new();
    while let Ok((delay_us, at, name)) = rx.recv_timeout(GUARD) {
        assert_eq!(name.as_deref(), Some("timers-under-test"));
        assert!(
            at >= Duration::from_micros(delay_us),
            "{delay_us} µs fired at {at:?}"
        );
        seen.push(delay_us);
    }
    seen.sort();
    assert_eq!(seen, [0, 150, 200, 201, 1_000, 3_333]);
}

#[test]
fn same_deadline_fires_in_scheduling_order() {
    let service = TimerService::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let deadline = service.time() + Duration::from_millis(3);
    for i in 0..100 {
        let order = Arc::clone(&order);
        service
            .call_at(deadline, move || order.lock().unwrap().push(i))
            .unwrap();
    }
    service
        .call_at(deadline, move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(GUARD).unwrap();
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

/// Calls ordered by happens-before keep their order across threads too, although each thread
/// queues its requests in a queue of its own: here every timer is scheduled by a new thread,
/// started after the previous one finished, and all are taken by the driver at once.
#[test]
fn same_deadline_from_successive_threads_fires_in_scheduling_order() {
    let mut driver = TimerService::builder().build_manual();
    let order = Arc::new(Mutex::new(Vec::new()));
    let deadline = Duration::from_millis(3);
    for i in 0..100 {
        let (handle, order) = (driver.handle(), Arc::clone(&order));
        std::thread::spawn(move || {
            handle
                .call_at(deadline, move || order.lock().unwrap().push(i))
                .unwrap();
        })
        .join()
        .unwrap();
    }
    assert_eq!(driver.run_until(deadline), 100);
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn cancel_from_inside_a_callback_wins_exactly_once() {
    let service = TimerService::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let victim = service
        .call_later(Duration::from_secs(5), move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let v = victim.clone();
    service
        .call_later(Duration::ZERO, move || tx.send(v.cancel()).unwrap())
        .unwrap();
    let won = rx.recv_timeout(GUARD).unwrap();
    assert!(won);
    assert!(!victim.cancel());
    drop(service);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(victim.is_cancelled());
}

#[test]
fn a_panicking_callback_is_reported_and_the_service_carries_on() {
    let (panics_tx, panics) = mpsc::channel();
    let service = TimerService::builder()
        .panic_hook(move |panic| {
            panics_tx
                .send((panic.message().map(String::from), panic.deadline()))
                .unwrap()
        })
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let boom = service
        .call_later(Duration::ZERO, || panic!("boom"))
        .unwrap();
    let tx2 = tx.clone();
    service
        .call_later(Duration::from_millis(1), move || tx2.send(1).unwrap())
        .unwrap();
    // A callback whose captures panic when dropped unrun: reported too.
    struct Grenade;
    impl Drop for Grenade {
        fn drop(&mut self) {
            panic!("grenade");
        }
    }
    let grenade = Grenade;
    let dud = service
        .call_later(Duration::from_secs(60), move || drop(grenade))
        .unwrap();
    assert!(dud.cancel());
    // The cancel may be applied before the boom fires: either order.
    let mut reports: Vec<_> = (0..2)
        .map(|_| panics.recv_timeout(GUARD).unwrap())
        .collect();
    reports.sort();
    assert_eq!(reports[0], (Some("boom".into()), boom.deadline()));
    assert_eq!(reports[1], (Some("grenade".into()), dud.deadline()));
    assert_eq!(rx.recv_timeout(GUARD), Ok(1));
    assert!(boom.is_expired());
    service
        .call_later(Duration::ZERO, move || tx.send(2).unwrap())
        .unwrap();
    assert_eq!(rx.recv_timeout(GUARD), Ok(2));
}

/// A cancelled callback's captures are dropped by the canceller when the driver had not placed
/// the timer yet, and by the driver otherwise: a panic there reaches the hook,
/// on the driver, either way (in the order the drops happened); `cancel` returns normally.
#[test]
fn a_panicking_destructor_is_reported_whoever_drops_it() {
    struct Grenade(&'static str);
    impl Drop for Grenade {
        fn drop(&mut self) {
            panic!("{}", self.0);
        }
    }
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let mut driver = TimerService::builder()
        .panic_hook(move |panic| {
            seen.lock()
                .unwrap()
                .push(panic.message().unwrap().to_owned())
        })
        .build_manual();
    let handle = driver.handle();
    let unplaced = Grenade("unplaced");
    let early = handle
        .call_later(Duration::from_secs(9), move || drop(unplaced))
        .unwrap();
    // Dropped on the cancelling thread; the panic waits for the driver, where the hook lives.
    assert!(early.cancel());
    let placed = Grenade("placed");
    let late = handle
        .call_later(Duration::from_secs(9), move || drop(placed))
        .unwrap();
    assert_eq!(driver.pending(), 1);
    assert!(late.cancel());
    assert_eq!(driver.pending(), 0);
    assert!(reports.lock().unwrap().is_empty());
    driver.run_until(Duration::from_millis(1));
    assert_eq!(*reports.lock().unwrap(), ["unplaced", "placed"]);
}

#[test]
fn a_panicking_hook_does_not_stop_the_driver() {
    let service = TimerService::builder()
        .panic_hook(|_| panic!("the hook too"))
        .build()
        .unwrap();
    service
        .call_later(Duration::ZERO, || panic!("first"))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    service
        .call_later(Duration::from_millis(1), move || tx.send(()).unwrap())
        .unwrap();
    assert!(rx.recv_timeout(GUARD).is_ok());
}

#[test]
fn shutdown_hands_back_unfired_timers_in_firing_order() {
    let service = TimerService::new();
    let handle = service.handle();
    let later = service.call_later(Duration::from_secs(30), || {}).unwrap();
    let cancelled = service.call_later(Duration::from_secs(10), || {}).unwrap();
    let sooner = service.call_later(Duration::from_secs(20), || {}).unwrap();
    let end = service.call_at(Duration::MAX, || {}).unwrap();
    assert!(cancelled.cancel());
    let unfired = service.shutdown();
    let deadlines: Vec<_> = unfired.iter().map(|t| t.deadline()).collect();
    assert_eq!(
        deadlines,
        [sooner.deadline(), later.deadline(), Duration::MAX]
    );
    for timeout in [&later, &sooner, &end] {
        assert_eq!(timeout.status(), TimerStatus::Unfired);
        assert!(!timeout.cancel());
    }
    assert!(handle.is_shut_down());
    assert_eq!(
        handle.call_later(Duration::ZERO, || {}).unwrap_err(),
        ShutdownError
    );
    assert_eq!(
        handle.call_at(Duration::ZERO, || {}).unwrap_err(),
        ShutdownError
    );
    let ran = Arc::new(AtomicUsize::new(0));
    drop(unfired);
    // Running a handed-back timer marks it expired.
    let service = TimerService::new();
    let r = Arc::clone(&ran);
    let t = service
        .call_later(Duration::from_secs(30), move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    service.shutdown().into_iter().for_each(|timer| timer.run());
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert!(t.is_expired());
}

#[test]
fn drop_joins_the_driver_and_drops_unfired_callbacks() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let service = TimerService::new();
    let flag = Flag(Arc::clone(&dropped));
    let timeout = service
        .call_later(Duration::from_secs(60), move || drop(flag))
        .unwrap();
    drop(service);
    // Drop joined the driver, which dropped the callback unrun before returning.
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(timeout.status(), TimerStatus::Unfired);
}

#[test]
fn the_service_is_send_and_sync_and_timeouts_clone_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TimerService>();
    assert_send_sync::<tierwheel::service::Handle>();
    assert_send_sync::<tierwheel::service::Timeout>();
    fn assert_send<T: Send>() {}
    assert_send::<tierwheel::service::Sleep>();
    assert_send::<tierwheel::service::UnfiredTimer>();
}

#[test]
fn sleep_completes_and_timeout_limits() {
    let service = TimerService::new();
    let start = service.time();
    assert_eq!(block_on(service.sleep(Duration::from_millis(3))), Ok(()));
    assert!(service.time() >= start + Duration::from_millis(3));

    let never = std::future::pending::<u8>();
    let limited = service.timeout(Duration::from_millis(2), never);
    assert_eq!(block_on(limited), Err(TimeoutError::Elapsed));

    // The inner future wins at its first poll: no timer is ever registered.
    let pending = service.pending();
    let limited = service.timeout(Duration::from_secs(60), async { 5 });
    assert_eq!(block_on(limited), Ok(5));
    assert_eq!(service.pending(), pending);

    // A sleep that the service outlives: shut down while it waits.
    let handle = service.handle();
    let waiter = thread::spawn(move || block_on(handle.sleep(Duration::from_secs(3600))));
    let limited = service.timeout(Duration::from_secs(3600), std::future::pending::<()>());
    drop(service);
    assert_eq!(waiter.join().unwrap(), Err(ShutdownError));
    assert_eq!(block_on(limited), Err(TimeoutError::Shutdown));
}

#[test]
fn dropping_a_sleep_cancels_its_timer_at_once() {
    let mut driver = TimerService::builder().build_manual();
    let handle = driver.handle();
    let mut sleep = handle.sleep(Duration::from_secs(5));
    // Registered at its first poll.
    assert_eq!(driver.pending(), 0);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::pin::Pin::new(&mut sleep).poll(&mut cx).is_pending());
    assert_eq!(driver.pending(), 1);
    drop(sleep);
    assert_eq!(driver.pending(), 0);
}

#[test]
fn manual_driver_is_deterministic() {
    let mut driver = TimerService::builder()
        .tick(Duration::from_millis(10))
        .build_manual();
    let handle = driver.handle();
    let log = Arc::new(Mutex::new(Vec::new()));
    for (name, ms) in [("c", 25u64), ("a", 5), ("b", 10), ("d", 30)] {
        let log = Arc::clone(&log);
        handle
            .call_later(Duration::from_millis(ms), move || {
                log.lock().unwrap().push(name)
            })
            .unwrap();
    }
    // 5 ms rounds up to the 10 ms tick, with "b" after it (scheduled later).
    assert_eq!(driver.run_until(Duration::from_millis(9)), 0);
    assert_eq!(driver.next_deadline(), Some(Duration::from_millis(10)));
    assert_eq!(driver.run_until(Duration::from_millis(10)), 2);
    assert_eq!(driver.run_until(Duration::from_millis(29)), 0);
    assert_eq!(driver.run_until(Duration::from_millis(30)), 2);
    assert_eq!(*log.lock().unwrap(), ["a", "b", "c", "d"]);
    // Time never runs backwards.
    driver.run_until(Duration::from_millis(1));
    assert_eq!(handle.time(), Duration::from_millis(30));
}

#[test]
fn manual_sleep_is_woken_by_the_driver() {
    let mut driver = TimerService::builder().build_manual();
    let handle = driver.handle();
    let woken = Arc::new(AtomicUsize::new(0));
    struct Count(Arc<AtomicUsize>);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let waker = Waker::from(Arc::new(Count(Arc::clone(&woken))));
    let mut cx = Context::from_waker(&waker);
    let mut sleep = handle.sleep(Duration::from_millis(2));
    assert!(std::pin::Pin::new(&mut sleep).poll(&mut cx).is_pending());
    driver.run_until(Duration::from_millis(1));
    assert_eq!(woken.load(Ordering::SeqCst), 0);
    driver.run_until(Duration::from_millis(2));
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::pin::Pin::new(&mut sleep).poll(&mut cx),
        Poll::Ready(Ok(()))
    );
}

#[test]
fn the_service_can_be_dropped_from_its_own_callback() {
    let service = Arc::new(TimerService::new());
    let handle = service.handle();
    let (tx, rx) = mpsc::channel();
    let owner = Arc::clone(&service);
    struct Dropped(mpsc::Sender<&'static str>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.send("far dropped").unwrap();
        }
    }
    let (dropped_tx, dropped) = mpsc::channel();
    let witness = Dropped(dropped_tx);
    let far = service
        .call_later(Duration::from_secs(3600), move || drop(witness))
        .unwrap();
    drop(service);
    handle
        .call_later(Duration::ZERO, move || {
            drop(owner); // the last reference: shuts down from the driver thread
            tx.send(()).unwrap();
        })
        .unwrap();
    rx.recv_timeout(GUARD).unwrap();
    assert!(handle.is_shut_down());
    assert!(handle.call_later(Duration::ZERO, || {}).is_err());
    // The driver claims and drops the far timer as it exits.
    assert_eq!(dropped.recv_timeout(GUARD), Ok("far dropped"));
    assert_eq!(far.status(), TimerStatus::Unfired);
}
