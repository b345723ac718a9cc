//! A small event loop on the real clock: it sleeps `next_timeout()` and runs what is due.
//!
//! A heartbeat re-arms itself every 20 ms, a watchdog would abort the loop at 500 ms unless the
//! work finishes first and cancels it, and a retry backs off 20, 40, 80 ms until its fourth
//! attempt succeeds. All of them keep their state in the context; the options change the
//! periods and the number of attempts (enough attempts, or a short enough watchdog, and the
//! watchdog fires).
//!
//! ```text
//! cargo run --example event_loop
//! cargo run --example event_loop -- --heartbeat-ms 5 --attempts 6 --watchdog-ms 2000
//! ```

use std::thread;
use std::time::Duration;

use clap::Parser;
use tierwheel::{Scheduler, TimerHandle};

/// A small event loop on the real clock: a heartbeat, a retry with backoff, and a watchdog.
#[derive(Parser, Debug)]
#[command(name = "event_loop")]
struct Options {
    /// Milliseconds between heartbeats.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_ms: u64,
    /// The attempt that succeeds; the backoff before attempt k + 1 is 10 * 2^k ms.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=16))]
    attempts: u32,
    /// Milliseconds after which the watchdog aborts the loop if the work has not finished.
    #[arg(long, default_value_t = 500)]
    watchdog_ms: u64,
}

#[derive(Default)]
struct State {
    heartbeat_every: Duration,
    succeed_at: u32,
    heartbeats: u32,
    attempts: u32,
    done: bool,
    watchdog: Option<TimerHandle>,
    heartbeat: Option<TimerHandle>,
}

type Loop = Scheduler<State>;

fn heartbeat(state: &mut State, sched: &mut Loop) {
    state.heartbeats += 1;
    println!("{:>8.1?}  heartbeat {}", sched.time(), state.heartbeats);
    state.heartbeat = Some(sched.call_later(state.heartbeat_every, heartbeat));
}

fn attempt(state: &mut State, sched: &mut Loop) {
    state.attempts += 1;
    if state.attempts < state.succeed_at {
        let backoff = Duration::from_millis(10 << state.attempts);
        println!(
            "{:>8.1?}  attempt {} failed, retrying in {backoff:?}",
            sched.time(),
            state.attempts
        );
        sched.call_later(backoff, attempt);
        return;
    }
    println!(
        "{:>8.1?}  attempt {} succeeded",
        sched.time(),
        state.attempts
    );
    state.done = true;
    // The work is done: nothing else should fire.
    for h in [state.watchdog.take(), state.heartbeat.take()]
        .into_iter()
        .flatten()
    {
        assert!(sched.cancel(h));
    }
}

fn main() {
    let options = Options::parse();
    let mut sched = Loop::new();
    let heartbeat = sched.call_soon(heartbeat);
    sched.call_later(Duration::from_millis(10), attempt);
    let watchdog = sched.call_later(Duration::from_millis(options.watchdog_ms), |_, sched| {
        panic!(
            "watchdog fired at {:?}: the work never finished",
            sched.time()
        )
    });
    let mut state = State {
        heartbeat_every: Duration::from_millis(options.heartbeat_ms),
        succeed_at: options.attempts,
        heartbeat: Some(heartbeat),
        watchdog: Some(watchdog),
        ..State::default()
    };

    while let Some(timeout) = sched.next_timeout() {
        // A real loop would block in epoll_wait/poll here, with the timeout rounded up to
        // whole milliseconds; sleeping is the same without I/O.
        thread::sleep(timeout);
        sched.run_due(&mut state);
    }

    assert!(state.done && sched.is_empty());
    println!(
        "{:>8.1?}  idle after {} heartbeats and {} attempts",
        sched.time(),
        state.heartbeats,
        state.attempts
    );
}
