//! A simulated server: a million connections, each with an idle timeout on one `TimerWheel`.
//!
//! Every request on a connection pushes its idle timeout back (`reschedule`); every 64 requests
//! one millisecond passes and the connections that stayed idle for 30 s (plus up to 25 %
//! jitter) time out and are replaced by new ones. Prints requests per second, timeouts fired
//! and the wheel's bytes per pending timer, measured by a counting allocator.
//!
//! ```text
//! cargo run --release --example server_timeouts [-- [CONNECTIONS] [REQUESTS]]
//! cargo run --release --example server_timeouts -- 20_000 2_000_000
//! ```

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::time::Instant;

use clap::Parser;
use tierwheel::baseline::SplitMix64;
use tierwheel::{TimerKey, TimerWheel};

#[global_allocator]
static ALLOC: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

/// Idle timeout, in ticks of 1 ms.
const IDLE_TIMEOUT: u64 = 30_000;
/// Requests served per millisecond.
const REQUESTS_PER_TICK: u64 = 64;

/// An idle timeout with up to 25 % jitter, in ticks.
fn idle_timeout(rng: &mut SplitMix64) -> u64 {
    IDLE_TIMEOUT + rng.below(IDLE_TIMEOUT / 4)
}

/// A simulated server: connections with idle timeouts on one wheel, every request pushing its
/// connection's timeout back.
#[derive(Parser, Debug)]
#[command(name = "server_timeouts")]
struct Options {
    /// Open connections, each with an idle timer (underscores allowed: 1_000_000).
    #[arg(default_value = "1_000_000", value_parser = positive)]
    connections: u64,
    /// Requests to serve (underscores allowed).
    #[arg(default_value = "50_000_000", value_parser = whole)]
    requests: u64,
}

fn whole(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

fn positive(text: &str) -> Result<u64, String> {
    match whole(text)? {
        0 => Err("at least one connection is needed".to_string()),
        n => Ok(n),
    }
}

fn main() {
    let Options {
        connections,
        requests,
    } = Options::parse();

    let mut rng = SplitMix64::new(0x7157_2024);
    let mut idle_timers: Vec<TimerKey> = Vec::with_capacity(connections as usize);
    let before = counting_alloc::live_bytes();
    let mut wheel = TimerWheel::new();
    // Start in the steady state: connections last heard from at random points in the past.
    for connection in 0..connections {
        let deadline = rng.below(IDLE_TIMEOUT + IDLE_TIMEOUT / 4);
        idle_timers.push(wheel.insert_at(deadline, connection));
    }

    let started = Instant::now();
    let mut timed_out = 0u64;
    for request in 0..requests {
        let connection = rng.below(connections) as usize;
        let deadline = wheel.now() + idle_timeout(&mut rng);
        let rescheduled = wheel.reschedule(idle_timers[connection], deadline);
        debug_assert!(rescheduled, "every connection has a pending idle timer");
        if request % REQUESTS_PER_TICK == REQUESTS_PER_TICK - 1 {
            let tick = wheel.now() + 1;
            while let Some(expired) = wheel.poll(tick) {
                // The connection closes; a new client takes its place.
                timed_out += 1;
                let deadline = wheel.now() + idle_timeout(&mut rng);
                idle_timers[expired.value as usize] = wheel.insert_at(deadline, expired.value);
            }
        }
    }
    let elapsed = started.elapsed();
    let bytes = counting_alloc::live_bytes() - before;

    println!("connections          {connections}");
    println!("requests             {requests}");
    println!(
        "simulated time       {:.1} s at 1 ms per tick",
        wheel.now() as f64 / 1000.0
    );
    println!(
        "requests per second  {:.1} M  ({:.1} ns each, timeouts included)",
        requests as f64 / elapsed.as_secs_f64() / 1e6,
        elapsed.as_nanos() as f64 / requests as f64
    );
    println!("idle timeouts fired  {timed_out}");
    println!(
        "wheel bytes / timer  {:.1}  (payload 8 bytes; {} timers pending)",
        bytes as f64 / wheel.len() as f64,
        wheel.len()
    );
    assert_eq!(wheel.len() as u64, connections, "a timer was lost");
}
