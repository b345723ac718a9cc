//! The `idle_server` example, short: a few hundred loopback connections for a couple of seconds
//! on each timer, tokio's and the service's, with every check the example makes (no idle close
//! early, no timer wake later than a tick and a small allowance beyond what the operating
//! system and the timer's own thread could not help, every silent connection closed, no chatty
//! one). Real sockets on the real clock, bounded: each run stops by itself.

#[path = "../examples/idle_server.rs"]
#[allow(dead_code)] // its `main`, and what only `main` prints
mod idle_server;

use std::time::Duration;

use clap::Parser;
use idle_server::{run, Config, Flavour, Timer};

fn short_run(timer: &str, runtime: &str) -> idle_server::Report {
    let config = Config::parse_from([
        "idle_server",
        "--connections",
        "300",
        "--idle",
        "300ms",
        "--duration",
        "1500ms",
        "--silent-fraction",
        "0.3",
        "--timer",
        timer,
        "--runtime",
        runtime,
    ]);
    let report = run(&config).expect("the run completes");
    println!("{report}");
    report
}

fn assert_checks_pass(report: &idle_server::Report) {
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.connections, 300, "{report}");
    assert_eq!(report.silent, 90, "{report}");
    assert_eq!(report.idle_closes, report.silent, "{report}");
    assert_eq!(report.peer_closes, 210, "{report}");
    // 210 chatty connections, five messages per idle timeout, for the steady window.
    assert!(report.resets > 2_000, "{report}");
    assert!(report.resets_per_second > 0.0 && report.cpu_per_reset > Duration::ZERO);
}

/// Both timers, one after the other so that neither run loads the machine under the other.
#[test]
fn idle_timeouts_close_the_silent_connections_on_time_and_no_others() {
    for timer in ["tokio", "tierwheel"] {
        let report = short_run(timer, "current-thread");
        assert_checks_pass(&report);
    }
    let report = short_run("tierwheel", "multi-thread");
    assert_eq!(report.runtime, Flavour::MultiThread);
    assert_eq!(report.timer, Timer::Tierwheel);
    assert_checks_pass(&report);
}

#[test]
fn a_run_too_short_to_show_an_idle_timeout_is_refused() {
    let config = Config::parse_from(["idle_server", "--idle", "1s", "--duration", "1s"]);
    assert!(run(&config).is_err());
    let config = Config::parse_from(["idle_server", "--silent-fraction", "1.5"]);
    assert!(run(&config).is_err());
}

#[test]
fn options_parse_with_their_units_and_names() {
    let config = Config::parse_from([
        "idle_server",
        "--idle",
        "1.5s",
        "--timer",
        "tokio",
        "--runtime",
        "multi-thread",
    ]);
    assert_eq!(config.idle, Duration::from_millis(1500));
    assert_eq!(config.timer, Timer::Tokio);
    assert_eq!(config.runtime, Flavour::MultiThread);
    let defaults = Config::parse_from(["idle_server"]);
    assert_eq!(defaults.connections, 10_000);
    assert_eq!(defaults.timer, Timer::Tierwheel);
    assert_eq!(defaults.runtime, Flavour::CurrentThread);
    assert!(Config::try_parse_from(["idle_server", "--idle", "5"]).is_err());
    assert!(Config::try_parse_from(["idle_server", "--timer", "heap"]).is_err());
}
