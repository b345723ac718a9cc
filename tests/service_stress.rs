//! 10^6 timers scheduled and cancelled from 4 threads with delays of 0..=2 ticks, so cancels
//! land right at firing time; every timer is accounted for exactly once: its callback ran
//! (on the driver, or by us after shutdown) or exactly one cancel returned true.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;
use tierwheel::service::{Timeout, TimerService};

const THREADS: usize = 4;
const PER_THREAD: usize = 250_000;
const TICK: Duration = Duration::from_micros(50);
/// How many of its own timers a thread keeps in flight before cancelling the oldest.
const LAG: usize = 256;

struct Outcomes {
    ran: Vec<AtomicU8>,
    won: Vec<AtomicU8>,
}

#[test]
fn every_timer_exactly_once_under_cancel_races() {
    let total = THREADS * PER_THREAD;
    let outcomes = Arc::new(Outcomes {
        ran: (0..total).map(|_| AtomicU8::new(0)).collect(),
        won: (0..total).map(|_| AtomicU8::new(0)).collect(),
    });
    let service = TimerService::builder().tick(TICK).build().unwrap();
    let cancels_after_fire = Arc::new(AtomicUsize::new(0));

    // Thread t sends clones of some timeouts to thread t + 1, which races its own cancel.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| mpsc::channel::<(usize, Timeout)>())
        .unzip();
    let workers: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, inbox)| {
            let neighbour = senders[(t + 1) % THREADS].clone();
            let handle = service.handle();
            let outcomes = Arc::clone(&outcomes);
            let late = Arc::clone(&cancels_after_fire);
            thread::Builder::new()
                .name(format!("stress-{t}"))
                .spawn(move || {
                    let cancel = |id: usize, timeout: &Timeout| {
                        if timeout.cancel() {
                            outcomes.won[id].fetch_add(1, Ordering::SeqCst);
                        } else if timeout.is_expired() {
                            late.fetch_add(1, Ordering::Relaxed);
                        }
                    };
                    let mut in_flight = VecDeque::with_capacity(LAG + 1);
                    for i in 0..PER_THREAD {
                        let id = t * PER_THREAD + i;
                        let delay = TICK * (i % 3) as u32;
                        let o = Arc::clone(&outcomes);
                        let timeout = handle
                            .call_later(delay, move || {
                                o.ran[id].fetch_add(1, Ordering::SeqCst);
                            })
                            .unwrap();
                        match i % 8 {
                            0 => cancel(id, &timeout),
                            1 => neighbour.send((id, timeout.clone())).unwrap(),
                            // Left to fire (or to be handed back by shutdown).
                            2 | 3 => continue,
                            _ => {}
                        }
                        in_flight.push_back((id, timeout));
                        if in_flight.len() > LAG {
                            let (id, timeout) = in_flight.pop_front().unwrap();
                            cancel(id, &timeout);
                            cancel(id, &timeout); // never wins twice
                        }
                        while let Ok((id, timeout)) = inbox.try_recv() {
                            cancel(id, &timeout);
                        }
                    }
                    for (id, timeout) in in_flight {
                        cancel(id, &timeout);
                    }
                    inbox
                })
                .unwrap()
        })
        .collect();
    drop(senders);
    let inboxes: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for inbox in inboxes {
        for (id, timeout) in inbox.try_iter() {
            if timeout.cancel() {
                outcomes.won[id].fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    for timer in service.shutdown() {
        timer.run();
    }

    let (mut ran, mut won) = (0, 0);
    for id in 0..total {
        let r = outcomes.ran[id].load(Ordering::SeqCst);
        let w = outcomes.won[id].load(Ordering::SeqCst);
        assert_eq!(r + w, 1, "timer {id}: ran {r} times, {w} cancels won");
        ran += usize::from(r);
        won += usize::from(w);
    }
    let late = cancels_after_fire.load(Ordering::Relaxed);
    println!("{total} timers: {ran} ran, {won} cancelled, {late} cancels lost to the driver");
    // The races really happened: both outcomes, and cancels that came too late.
    assert!(
        ran > 0 && won > 0 && late > 0,
        "ran {ran}, won {won}, late {late}"
    );
}
