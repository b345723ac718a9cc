//! The `event_server` example, short: a few hundred loopback connections for a couple of
//! seconds, with every check the example makes (no idle close early, none later than a tick
//! plus the poll's resolution beyond what the operating system and the loop's own I/O work
//! cost, every silent connection closed, no chatty one).

#[path = "../examples/event_server.rs"]
#[allow(dead_code)] // its `main`, and what only `main` prints
mod event_server;

use std::time::Duration;

use clap::Parser;
use event_server::{run, Config};

#[test]
fn idle_timeouts_close_the_silent_connections_on_time_and_no_others() {
    let config = Config::parse_from([
        "event_server",
        "--connections",
        "400",
        "--idle",
        "400ms",
        "--duration",
        "2s",
        "--silent-fraction",
        "0.3",
    ]);
    let report = run(&config).expect("the run completes");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.connections > 100, "{report}");
    assert!(report.silent > 0 && report.silent < report.connections);
    assert_eq!(report.idle_closes, report.silent, "{report}");
    assert!(report.echoed >= report.connections as u64, "{report}");
}

#[test]
fn a_run_too_short_to_show_an_idle_timeout_is_refused() {
    let config = Config::parse_from(["event_server", "--idle", "1s", "--duration", "1s"]);
    assert!(run(&config).is_err());
}

#[test]
fn durations_parse_with_their_unit() {
    let config = Config::parse_from(["event_server", "--idle", "1.5s", "--tick", "250us"]);
    assert_eq!(config.idle, Duration::from_millis(1500));
    assert_eq!(config.tick, Duration::from_micros(250));
    assert!(Config::try_parse_from(["event_server", "--idle", "5"]).is_err());
    assert!(Config::try_parse_from(["event_server", "--idle", "5h"]).is_err());
}

/// The poll timeout never ends before the scheduler's timeout: epoll's milliseconds round up.
#[test]
fn poll_timeouts_round_up_to_whole_milliseconds() {
    use event_server::poll_timeout;
    let ms = Duration::from_millis;
    assert_eq!(poll_timeout(Duration::ZERO), Duration::ZERO);
    assert_eq!(poll_timeout(Duration::from_nanos(1)), ms(1));
    assert_eq!(poll_timeout(ms(1)), ms(1));
    assert_eq!(poll_timeout(ms(1) + Duration::from_nanos(1)), ms(2));
    assert_eq!(poll_timeout(Duration::from_micros(2500)), ms(3));
    assert_eq!(poll_timeout(Duration::MAX), Duration::from_secs(3600));
}
