//! A tokio TCP server with an idle timeout per connection, pushed back on every read, and a
//! loopback load generator that checks the timeouts: the same server on `tokio::time::sleep`
//! (`--timer tokio`) or on a tierwheel [`TimerService`] (`--timer tierwheel`: one service for
//! the process, [`Handle::sleep_until`] and [`Sleep::reset`]), for a side-by-side figure of
//! what a reset costs.
//!
//! ```text
//! cargo run --release --example idle_server -- --timer tierwheel
//! cargo run --release --example idle_server -- --timer tokio --runtime multi-thread
//! cargo run --release --example idle_server -- --connections 2000 --idle 300ms --duration 2s
//! ```
//!
//! Each connection is one task: a `select!` of a read and its idle sleep. A read resets the
//! sleep to the time of the read plus `--idle`; the sleep completing closes the connection.
//! The server only reads: every read is one reset, so the figures below are about the timer,
//! not about echoing.
//!
//! A second thread, with a runtime of its own, opens `--connections` connections to
//! 127.0.0.1 (default 10,000, clamped to what the open-file limit allows: each connection
//! takes two descriptors here, its client and its server side). Each says hello with its
//! number (ports are reused once the server closes connections, so an address names no
//! connection for long). Most stay chatty, writing a small message five times per idle
//! timeout; a known set (`--silent-fraction`) goes silent after the hello. Once every
//! connection is open, the chatty ones go on for `--duration`; then everything is closed.
//!
//! # Reading the output
//!
//! ```text
//! --timer tierwheel --runtime current-thread: 9968 connections (2492 silent; the slowest took
//!   1.0s to open): 2492 closed idle, 7476 closed by their peer
//! 224277 resets in 3.000s of steady load: 74754 resets/s, 6.76 µs of server CPU per reset
//!   (server threads 1.517s, whole process 3.374s; CPU from /proc/self/task/*/schedstat)
//! idle closes: timers woke at most 4.3ms after the deadline (tolerance 27.9ms: a 1ms tick +
//!   5ms + 21.9ms the OS overslept a 1 ms park, beyond time the timer's thread was busy with
//!   other work: up to 418.6µs); tasks ran at most 3.2ms after their wake
//! all checks passed
//! ```
//!
//! - *resets/s* and *CPU per reset* cover the steady window only (every connection open, the
//!   chatty ones talking). The rate is the load generator's: it says how much work the CPU
//!   figure is spread over. CPU per reset is the CPU time the server's threads used in the
//!   window (the runtime's threads and, with `--timer tierwheel`, the service's driver
//!   thread) divided by the resets: the whole path of one message, its read (a system call,
//!   most of the cost), the reset and the task's wake-ups. The load generator's CPU is in the
//!   whole process's figure only. CPU time comes from `/proc/self/task/*/schedstat`
//!   (nanoseconds), or where that is missing from `/proc/self/task/*/stat` (utime + stime,
//!   in clock ticks of 1/100 s: Linux's `USER_HZ`); the line says which. A slow open (a
//!   second: the kernel's retry of a connection the full accept queue dropped) is harmless:
//!   the chatty connections keep talking while one opens.
//! - The checks, on every idle close: the connection is closed no earlier than `--idle` after
//!   its last read, and its timer woke its task (called the waker) no earlier than that and
//!   at most one tick (1 ms, tokio's and the service's) plus a 5 ms allowance after it, not
//!   counting time its timer's thread could not help. That is how late the operating system
//!   lets a thread run (a probe thread parks for 1 ms over and over; the worst it overslept
//!   is added), and the time the timer's thread was busy with other work past the deadline:
//!   tokio's timer is driven by the runtime's threads, which look at it when they park (and
//!   every so many tasks), so the work they did first is not counted (measured with the
//!   runtime's park hooks); the service's driver thread fires timers and nothing else, so
//!   only the wakes before this one in its pass are not counted. The allowance covers a
//!   thread descheduled between the probe's parks on a loaded two-core machine; a timer filed
//!   in the wrong slot, or fired by a later cascade, is late by tens of ticks and still fails
//!   the check. How long the runtime then took to run the woken task is the runtime's doing:
//!   measured, reported, not bounded. Every silent connection must be closed by the server,
//!   and no chatty one.
//!
//! Everything stays on loopback; the connections are bounded, and the run stops by itself (a
//! guard ends it if the load generator never finishes).

use std::cell::Cell;
use std::collections::HashSet;
use std::error::Error;
use std::fmt;
use std::fs;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tierwheel::service::{Handle, Sleep, TimerService};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Command line, and the configuration of one run.
#[derive(Parser, Clone, Debug)]
#[command(about = "A tokio server whose idle timeouts are reset on every read, under load")]
pub(crate) struct Config {
    /// Connections the load generator opens (clamped to the open-file limit).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) connections: usize,
    /// A connection without a read for this long is closed by the server.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub(crate) idle: Duration,
    /// How long the chatty connections talk once every connection is open (at least twice
    /// `idle`).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// The share of connections that go silent after their first message.
    #[arg(long, default_value_t = 0.25)]
    pub(crate) silent_fraction: f64,
    /// Whose timer the idle timeouts use.
    #[arg(long, value_enum, default_value_t = Timer::Tierwheel)]
    pub(crate) timer: Timer,
    /// The server's tokio runtime.
    #[arg(long, value_enum, default_value_t = Flavour::CurrentThread)]
    pub(crate) runtime: Flavour,
}

/// Whose timer the idle timeouts use.
#[derive(ValueEnum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// `tokio::time::sleep_until` and `Sleep::reset`, on the runtime's own timer.
    Tokio,
    /// `tierwheel::service::Handle::sleep_until` and `Sleep::reset`, on one `TimerService`.
    Tierwheel,
}

/// The server's tokio runtime.
#[derive(ValueEnum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// One thread runs every connection.
    CurrentThread,
    /// A worker per core.
    MultiThread,
}

/// `250us`, `1ms`, `3s`, `1.5s`: a number and a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?}: give a unit: us, ms or s"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number"))?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        _ => return Err(format!("{text:?}: the unit is us, ms or s")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"))
}

/// The resolution of both timers: tokio's wheel works in milliseconds, and the service is built
/// with this tick.
const TICK: Duration = Duration::from_millis(1);

/// What a wake may be late beyond a tick and what the probe saw, for descheduling the probe
/// did not catch.
const ALLOWANCE: Duration = Duration::from_millis(5);

/// The name of the server's threads, for their CPU time. At most 15 bytes: Linux cuts thread
/// names there.
const SERVER_THREAD: &str = "idle-server";
/// The timer service's driver thread.
const TIMER_THREAD: &str = "idle-timer";
/// Opening every connection may not take longer than this.
const CONNECT_BUDGET: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The two timers, behind one trait
// ---------------------------------------------------------------------------------------

/// An idle timer: a sleep until an instant, reset to another.
trait IdleTimer: Clone + Send + Sync + 'static {
    type Sleep: Future + Send;
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant);
    /// Whether the sleep's output says its deadline passed (else its timer went away).
    fn elapsed(output: <Self::Sleep as Future>::Output) -> bool;
}

#[derive(Clone)]
struct TokioTimer;

impl IdleTimer for TokioTimer {
    type Sleep = tokio::time::Sleep;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.reset(deadline.into());
    }

    fn elapsed((): ()) -> bool {
        true
    }
}

#[derive(Clone)]
struct TierwheelTimer(Handle);

impl IdleTimer for TierwheelTimer {
    type Sleep = Sleep;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.0.sleep_until(deadline)
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.reset(deadline);
    }

    fn elapsed(output: Result<(), tierwheel::service::ShutdownError>) -> bool {
        output.is_ok()
    }
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// What the server's tasks record, shared between them.
#[derive(Default)]
struct Record {
    resets: AtomicU64,
    peer_closes: AtomicU64,
    idle_closes: Mutex<Vec<IdleClose>>,
    /// Sleeps that ended without their deadline passing (the timer went away).
    lost_timers: AtomicU64,
    /// Accept errors (a full descriptor table): connections the server never saw.
    accept_errors: AtomicU64,
}

struct IdleClose {
    /// The number the connection gave in its hello, if it got that far.
    connection: Option<usize>,
    last_read: Instant,
    /// When the timer called the task's waker; `None` if it never did: the sleep was complete
    /// when the task polled it for another reason (a sleep whose deadline has passed is ready
    /// at its first poll).
    woke: Option<Instant>,
    /// See [`Wakes::busy`].
    busy: Option<(Instant, Instant)>,
    closed: Instant,
}

/// Wraps the waker the idle sleep is polled with, to record when the timer calls it.
#[derive(Default)]
struct WakeRecord(Mutex<Wakes>);

#[derive(Default)]
struct Wakes {
    /// The task's own waker, from its last poll.
    task: Option<Waker>,
    /// When the timer last called the waker.
    woke: Option<Instant>,
    /// When the thread that called the waker was busy with other work, up to the call. See
    /// [`busy`].
    busy: Option<(Instant, Instant)>,
}

impl Wake for WakeRecord {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let now = Instant::now();
        let mut wakes = self.0.lock().unwrap();
        wakes.woke = Some(now);
        wakes.busy = busy(now);
        if let Some(task) = &wakes.task {
            task.wake_by_ref();
        }
    }
}

thread_local! {
    /// On the server runtime's threads: when the thread last began to park (where tokio's
    /// timer and I/O drivers run) and last came back from it.
    static PARKED: Cell<Option<Instant>> = const { Cell::new(None) };
    static UNPARKED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// On other threads (the service's driver): the first and the last of the thread's latest
    /// run of wakes less than a quarter tick apart (the wakes of one pass; passes are a tick
    /// apart).
    static WAKES: Cell<Option<(Instant, Instant)>> = const { Cell::new(None) };
}

/// For a wake at `now`, when the waking thread was busy with other work up to it: time that
/// thread could not spend on this timer.
///
/// tokio's timer is driven by the runtime's threads, which look at it when they park (and
/// between tasks every so often): a wake from inside a park comes after the work the thread did
/// since its last park, a wake between tasks after all the work since then. The service's
/// driver thread does nothing but fire timers: a wake comes after the other wakes of its pass.
fn busy(now: Instant) -> Option<(Instant, Instant)> {
    match (PARKED.get(), UNPARKED.get()) {
        (Some(parked), unparked) if unparked.is_none_or(|unparked| parked >= unparked) => {
            Some((unparked.unwrap_or(parked), parked))
        }
        (_, Some(unparked)) => Some((unparked, now)),
        _ => {
            let first = match WAKES.get() {
                Some((first, last)) if now.saturating_duration_since(last) < TICK / 4 => first,
                _ => now,
            };
            WAKES.set(Some((first, now)));
            Some((first, now))
        }
    }
}

/// Polls `sleep` with a waker that records when it is woken, then wakes the task.
fn poll_recorded<S: Future>(
    sleep: Pin<&mut S>,
    record: &Arc<WakeRecord>,
    waker: &Waker,
    cx: &mut Context<'_>,
) -> Poll<S::Output> {
    {
        let mut wakes = record.0.lock().unwrap();
        if !wakes.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            wakes.task = Some(cx.waker().clone());
        }
    }
    sleep.poll(&mut Context::from_waker(waker))
}

/// The connection number in a hello line, `hello <number>`.
fn hello_number(line: &[u8]) -> Option<usize> {
    std::str::from_utf8(line.strip_prefix(b"hello ")?)
        .ok()?
        .trim_end()
        .parse()
        .ok()
}

/// One connection: reads until the peer closes it or it stays idle for `idle`.
async fn serve_connection<T: IdleTimer>(
    mut stream: TcpStream,
    timer: T,
    idle: Duration,
    record: Arc<Record>,
) {
    let mut buffer = [0; 512];
    // The hello line, until its end has been read.
    let mut hello = Vec::new();
    let mut connection = None;
    let mut last_read = Instant::now();
    let wake_record = Arc::new(WakeRecord::default());
    let waker = Waker::from(Arc::clone(&wake_record));
    let sleep = timer.sleep_until(last_read + idle);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            // Reads first: a connection with data waiting is not idle.
            biased;
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    record.peer_closes.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(n) => {
                    last_read = Instant::now();
                    T::reset(sleep.as_mut(), last_read + idle);
                    record.resets.fetch_add(1, Ordering::Relaxed);
                    if connection.is_none() && hello.len() < 64 {
                        hello.extend_from_slice(&buffer[..n]);
                        if let Some(end) = hello.iter().position(|&b| b == b'\n') {
                            connection = hello_number(&hello[..end]);
                        }
                    }
                }
            },
            output = std::future::poll_fn(|cx| {
                poll_recorded(sleep.as_mut(), &wake_record, &waker, cx)
            }) => {
                let closed = Instant::now();
                if !T::elapsed(output) {
                    record.lost_timers.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let wakes = wake_record.0.lock().unwrap();
                record.idle_closes.lock().unwrap().push(IdleClose {
                    connection,
                    last_read,
                    woke: wakes.woke,
                    busy: wakes.busy,
                    closed,
                });
                return; // dropping the stream closes it
            }
        }
    }
}

/// The connections' tasks, for the end of the run.
type Tasks = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// Accepts connections and spawns a task for each, forever.
async fn accept<T: IdleTimer>(
    listener: TcpListener,
    timer: T,
    idle: Duration,
    record: Arc<Record>,
    tasks: Tasks,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let task = serve_connection(stream, timer.clone(), idle, Arc::clone(&record));
                tasks.lock().unwrap().push(tokio::spawn(task));
            }
            Err(_) => {
                // Out of descriptors, most likely: the error repeats until one is freed.
                record.accept_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(TICK).await;
            }
        }
    }
}

/// Accepts connections (on a task of the runtime's, like the connections') until the load
/// generator is done, then waits for the connections to end: the generator closed its side of
/// each.
async fn serve<T: IdleTimer>(
    listener: TcpListener,
    timer: T,
    idle: Duration,
    record: Arc<Record>,
    generator: thread::JoinHandle<io::Result<Load>>,
) -> Result<Load, Box<dyn Error + Send + Sync>> {
    let tasks = Tasks::default();
    let acceptor = tokio::spawn(accept(listener, timer, idle, record, Arc::clone(&tasks)));
    let joined = tokio::task::spawn_blocking(move || generator.join()).await?;
    acceptor.abort();
    let load = joined.map_err(|_| "the load generator panicked")??;
    let connections = std::mem::take(&mut *tasks.lock().unwrap());
    for connection in connections {
        connection.await?;
    }
    Ok(load)
}

// ---------------------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------------------

/// What the load generator saw and measured.
struct Load {
    /// Whether each connection, by number, went silent.
    silent: Vec<bool>,
    /// The connections the server closed, by number.
    closed_by_server: HashSet<usize>,
    /// Chatty messages that could not be written at once (a full socket buffer).
    blocked_writes: u64,
    /// The longest a connection took to open.
    slowest_connect: Duration,
    /// The steady window: every connection open, the chatty ones talking.
    window: Window,
}

/// The measurements at both ends of the steady window.
struct Window {
    duration: Duration,
    resets: u64,
    server_cpu: Duration,
    process_cpu: Duration,
    cpu_source: &'static str,
}

/// Opens the connections, each saying hello at once; keeps the chatty ones talking until
/// `config.duration` after the last one opened; then closes them.
async fn generate_load(server: SocketAddr, config: &Config, record: &Record) -> io::Result<Load> {
    let silent_count = (config.connections as f64 * config.silent_fraction).round() as usize;
    let period = config.idle / 5;
    let closed_by_server = Arc::new(Mutex::new(HashSet::new()));
    let mut silent = Vec::with_capacity(config.connections);
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    let mut blocked_writes = 0;
    // The chatty connections' next messages, in time order: all have the same period.
    let mut next_send = std::collections::VecDeque::new();
    let opening = Instant::now();
    let mut slowest_connect = Duration::ZERO;
    for i in 0..config.connections {
        if opening.elapsed() > CONNECT_BUDGET {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("opened only {i} connections in {CONNECT_BUDGET:?}"),
            ));
        }
        // A connect can take long (a full accept queue makes the kernel retry after a
        // second): the chatty ones keep talking meanwhile.
        let asked = Instant::now();
        let connect = TcpStream::connect(server);
        tokio::pin!(connect);
        let stream = loop {
            let wake = next_send
                .front()
                .map_or(asked + CONNECT_BUDGET, |&(at, _)| at);
            tokio::select! {
                stream = &mut connect => break stream?,
                () = tokio::time::sleep_until(wake.into()) => {
                    send_due(&writers, &mut next_send, period, &mut blocked_writes);
                }
            }
        };
        slowest_connect = slowest_connect.max(asked.elapsed());
        stream.set_nodelay(true)?;
        let (mut reader, writer) = stream.into_split();
        // The server never writes: the read ends when it closes the connection.
        let closed = Arc::clone(&closed_by_server);
        readers.push(tokio::spawn(async move {
            let mut byte = [0; 1];
            if let Ok(0) | Err(_) = reader.read(&mut byte).await {
                closed.lock().unwrap().insert(i);
            }
        }));
        send(
            &writer,
            format!("hello {i}\n").as_bytes(),
            &mut blocked_writes,
        );
        // Spread the silent ones evenly over the connections.
        let is_silent =
            (i + 1) * silent_count / config.connections != i * silent_count / config.connections;
        silent.push(is_silent);
        if !is_silent {
            next_send.push_back((Instant::now() + period, writers.len()));
        }
        writers.push(writer);
        // Opening thousands of connections takes a while: keep the early ones talking.
        send_due(&writers, &mut next_send, period, &mut blocked_writes);
    }

    let start = Snapshot::take(record);
    let end = start.at + config.duration;
    loop {
        send_due(&writers, &mut next_send, period, &mut blocked_writes);
        let now = Instant::now();
        if now >= end {
            break;
        }
        let wake = next_send.front().map_or(end, |&(at, _)| at).min(end);
        tokio::time::sleep_until(wake.into()).await;
    }
    let stop = Snapshot::take(record);
    drop(writers);
    for reader in readers {
        reader.abort();
    }
    let closed_by_server = std::mem::take(&mut *closed_by_server.lock().unwrap());
    Ok(Load {
        silent,
        closed_by_server,
        blocked_writes,
        slowest_connect,
        window: stop.since(&start),
    })
}

/// Sends the chatty messages that are due.
fn send_due(
    writers: &[tokio::net::tcp::OwnedWriteHalf],
    next_send: &mut std::collections::VecDeque<(Instant, usize)>,
    period: Duration,
    blocked: &mut u64,
) {
    let now = Instant::now();
    while let Some(&(at, i)) = next_send.front() {
        if at > now {
            break;
        }
        next_send.pop_front();
        send(&writers[i], b"ping\n", blocked);
        next_send.push_back((at + period, i));
    }
}

/// Writes one small message; loopback has room, so a short write is only counted.
fn send(writer: &tokio::net::tcp::OwnedWriteHalf, message: &[u8], blocked: &mut u64) {
    match writer.try_write(message) {
        Ok(n) if n == message.len() => {}
        _ => *blocked += 1,
    }
}

// ---------------------------------------------------------------------------------------
// CPU time, and how late the operating system runs a parked thread
// ---------------------------------------------------------------------------------------

/// The resets made and the CPU used so far, at an instant.
struct Snapshot {
    at: Instant,
    resets: u64,
    server_cpu: Duration,
    process_cpu: Duration,
    cpu_source: &'static str,
}

impl Snapshot {
    fn take(record: &Record) -> Snapshot {
        let (server_cpu, process_cpu, cpu_source) = cpu_times();
        Snapshot {
            at: Instant::now(),
            resets: record.resets.load(Ordering::Relaxed),
            server_cpu,
            process_cpu,
            cpu_source,
        }
    }

    fn since(&self, start: &Snapshot) -> Window {
        Window {
            duration: self.at - start.at,
            resets: self.resets - start.resets,
            server_cpu: self.server_cpu.saturating_sub(start.server_cpu),
            process_cpu: self.process_cpu.saturating_sub(start.process_cpu),
            cpu_source: self.cpu_source,
        }
    }
}

/// CPU time of the server's threads and of the whole process, and where it was read. Threads
/// are told apart by name: the server's runtime threads and the timer service's driver.
fn cpu_times() -> (Duration, Duration, &'static str) {
    let (mut server, mut process) = (Duration::ZERO, Duration::ZERO);
    let mut source = "/proc/self/task/*/schedstat";
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return (server, process, "unavailable (no /proc/self/task)");
    };
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(name) = fs::read_to_string(path.join("comm")) else {
            continue;
        };
        let cpu = match schedstat_cpu(&path) {
            Some(cpu) => cpu,
            None => {
                source = "/proc/self/task/*/stat (utime + stime, 1/100 s ticks)";
                stat_cpu(&path).unwrap_or_default()
            }
        };
        process += cpu;
        if matches!(name.trim_end(), SERVER_THREAD | TIMER_THREAD) {
            server += cpu;
        }
    }
    (server, process, source)
}

/// A thread's time on the CPU, in nanoseconds: the first field of its `schedstat`.
fn schedstat_cpu(task: &std::path::Path) -> Option<Duration> {
    let text = fs::read_to_string(task.join("schedstat")).ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// A thread's user and system time from its `stat`, in clock ticks of `USER_HZ`, which Linux
/// fixes at 100 per second for user space whatever the kernel's own tick.
fn stat_cpu(task: &std::path::Path) -> Option<Duration> {
    let text = fs::read_to_string(task.join("stat")).ok()?;
    // The name, in parentheses, may hold spaces: fields are counted after its end.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The soft open-file limit, from `/proc/self/limits` (Linux); `None` where it cannot be read.
fn open_file_limit() -> Option<usize> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Parks for 1 ms over and over until `stop`, and returns the most it overslept: how late the
/// operating system let a parked thread run again, as it does the timers' threads.
fn probe_oversleep(stop: &AtomicBool) -> Duration {
    let mut worst = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now() + TICK;
        thread::park_timeout(TICK);
        worst = worst.max(Instant::now().saturating_duration_since(asked));
    }
    worst
}

// ---------------------------------------------------------------------------------------
// A run
// ---------------------------------------------------------------------------------------

/// Runs the server and the load generator on 127.0.0.1 and gathers what the checks need.
///
/// # Errors
///
/// A socket or runtime error on either side, or a configuration that cannot show anything
/// (`duration` shorter than twice `idle`, no connection, a fraction outside 0..=1).
pub(crate) fn run(config: &Config) -> Result<Report, Box<dyn Error + Send + Sync>> {
    let mut config = config.clone();
    if config.duration < 2 * config.idle {
        return Err(
            "--duration must be at least twice --idle, so silent connections time out".into(),
        );
    }
    if !(0.0..=1.0).contains(&config.silent_fraction) {
        return Err("--silent-fraction must lie in 0..=1".into());
    }
    if config.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    // Two descriptors per connection, and some for everything else. Nothing is raised: the
    // run shrinks to fit.
    if let Some(limit) = open_file_limit() {
        let fits = limit.saturating_sub(64) / 2;
        if fits == 0 {
            return Err("the open-file limit leaves no room for a connection".into());
        }
        if config.connections > fits {
            eprintln!(
                "idle_server: the open-file limit ({limit}) allows {fits} connections \
                 (two descriptors each); running {fits} instead of {}",
                config.connections
            );
            config.connections = fits;
        }
    }

    let record = Arc::new(Record::default());
    let service = match config.timer {
        Timer::Tierwheel => Some(
            TimerService::builder()
                .tick(TICK)
                .thread_name(TIMER_THREAD)
                .build()?,
        ),
        Timer::Tokio => None,
    };
    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe = {
        let stop = Arc::clone(&stop_probe);
        thread::Builder::new()
            .name("oversleep".into())
            .spawn(move || probe_oversleep(&stop))?
    };

    let served = {
        let (config, record) = (config.clone(), Arc::clone(&record));
        let handle = service.as_ref().map(TimerService::handle);
        thread::Builder::new()
            .name(SERVER_THREAD.into())
            .spawn(move || serve_on_runtime(&config, record, handle))?
            .join()
            .map_err(|_| "the server panicked")?
    };
    stop_probe.store(true, Ordering::Relaxed);
    let overslept = probe.join().map_err(|_| "the probe panicked")?;
    if let Some(service) = service {
        drop(service.shutdown());
    }
    let load = served?;
    Ok(Report::new(&config, &record, load, overslept))
}

/// The server's thread: builds the runtime, starts the load generator, serves until it is done.
fn serve_on_runtime(
    config: &Config,
    record: Arc<Record>,
    service: Option<Handle>,
) -> Result<Load, Box<dyn Error + Send + Sync>> {
    let mut builder = match config.runtime {
        Flavour::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavour::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .thread_name(SERVER_THREAD)
        .on_thread_park(|| PARKED.set(Some(Instant::now())))
        .on_thread_unpark(|| UNPARKED.set(Some(Instant::now())))
        .build()?;
    // The whole run: opening, the load, the last silent connections' timeouts. A guard only.
    let guard = CONNECT_BUDGET + 2 * config.duration + 4 * config.idle;
    runtime.block_on(async {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let address = listener.local_addr()?;
        let generator = {
            let (config, record) = (config.clone(), Arc::clone(&record));
            thread::Builder::new().name("load".into()).spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(generate_load(address, &config, &record))
            })?
        };
        let served = match service {
            Some(handle) => {
                let timer = TierwheelTimer(handle);
                let serving = serve(listener, timer, config.idle, record, generator);
                tokio::time::timeout(guard, serving).await
            }
            None => {
                let serving = serve(listener, TokioTimer, config.idle, record, generator);
                tokio::time::timeout(guard, serving).await
            }
        };
        served.map_err(|_| format!("the run did not end within {guard:?}"))?
    })
}

/// The outcome of a run: what happened, the figures, and which checks failed.
pub(crate) struct Report {
    pub(crate) timer: Timer,
    pub(crate) runtime: Flavour,
    pub(crate) connections: usize,
    pub(crate) silent: usize,
    pub(crate) idle_closes: usize,
    pub(crate) peer_closes: u64,
    /// The longest a connection took to open.
    pub(crate) slowest_connect: Duration,
    pub(crate) resets: u64,
    pub(crate) window: Duration,
    pub(crate) resets_per_second: f64,
    /// Server CPU time per reset in the steady window.
    pub(crate) cpu_per_reset: Duration,
    pub(crate) server_cpu: Duration,
    pub(crate) process_cpu: Duration,
    pub(crate) cpu_source: &'static str,
    /// The latest a timer woke its task after the deadline.
    pub(crate) max_wake_late: Duration,
    /// The longest the runtime took to run a task its timer woke.
    pub(crate) max_run_delay: Duration,
    /// The longest the timer's thread was busy with other work past a deadline before it woke
    /// the connection's task.
    pub(crate) max_busy: Duration,
    /// Idle closes whose sleep was complete when the task polled it, with no wake: their
    /// timing is checked by the close alone.
    pub(crate) unwoken: usize,
    /// The most the probe thread overslept a 1 ms park.
    pub(crate) overslept: Duration,
    pub(crate) tolerance: Duration,
    pub(crate) failures: Vec<String>,
}

impl Report {
    fn new(config: &Config, record: &Record, load: Load, overslept: Duration) -> Report {
        let tolerance = TICK + ALLOWANCE + overslept;
        let mut failures = Vec::new();
        let (mut max_wake_late, mut max_run_delay) = (Duration::ZERO, Duration::ZERO);
        let mut max_busy = Duration::ZERO;
        let mut unwoken = 0;
        let closes = std::mem::take(&mut *record.idle_closes.lock().unwrap());
        let mut idle_closed = HashSet::new();
        for close in &closes {
            let Some(connection) = close.connection else {
                failures.push("a connection closed for idleness before its hello".into());
                continue;
            };
            idle_closed.insert(connection);
            let deadline = close.last_read + config.idle;
            if close.closed < deadline {
                failures.push(format!(
                    "connection {}: closed {:?} early",
                    connection,
                    deadline - close.closed
                ));
            }
            let Some(woke) = close.woke else {
                unwoken += 1;
                continue;
            };
            if woke < deadline {
                failures.push(format!(
                    "connection {}: its timer woke it {:?} early",
                    connection,
                    deadline - woke
                ));
            }
            let late = woke.saturating_duration_since(deadline);
            max_wake_late = max_wake_late.max(late);
            max_run_delay = max_run_delay.max(close.closed.saturating_duration_since(woke));
            // A timer is not late for time its thread was busy with other work after the
            // deadline.
            let busy = close.busy.map_or(Duration::ZERO, |(from, to)| {
                to.saturating_duration_since(from.max(deadline))
            });
            max_busy = max_busy.max(busy);
            let latest = deadline + busy + tolerance;
            if woke > latest {
                failures.push(format!(
                    "connection {connection}: its timer woke it {late:?} after the deadline, \
                     {:?} past the tolerance (the runtime was busy {busy:?} of it)",
                    woke - latest
                ));
            }
        }
        for (connection, &silent) in load.silent.iter().enumerate() {
            let closed = load.closed_by_server.contains(&connection);
            if silent && !(closed && idle_closed.contains(&connection)) {
                failures.push(format!(
                    "connection {connection}: silent, but not closed for idleness"
                ));
            }
            if !silent && (closed || idle_closed.contains(&connection)) {
                failures.push(format!(
                    "connection {connection}: chatty, but closed by the server"
                ));
            }
        }
        if load.blocked_writes > 0 {
            failures.push(format!(
                "{} chatty messages could not be sent",
                load.blocked_writes
            ));
        }
        let lost = record.lost_timers.load(Ordering::Relaxed);
        if lost > 0 {
            failures.push(format!("{lost} idle timers ended without firing"));
        }
        let accept_errors = record.accept_errors.load(Ordering::Relaxed);
        if accept_errors > 0 {
            failures.push(format!("{accept_errors} connections could not be accepted"));
        }
        let window = load.window;
        let resets_per_second = window.resets as f64 / window.duration.as_secs_f64();
        let cpu_per_reset = if window.resets == 0 {
            Duration::ZERO
        } else {
            window.server_cpu / u32::try_from(window.resets).unwrap_or(u32::MAX)
        };
        Report {
            timer: config.timer,
            runtime: config.runtime,
            connections: load.silent.len(),
            silent: load.silent.iter().filter(|&&silent| silent).count(),
            idle_closes: closes.len(),
            peer_closes: record.peer_closes.load(Ordering::Relaxed),
            slowest_connect: load.slowest_connect,
            resets: window.resets,
            window: window.duration,
            resets_per_second,
            cpu_per_reset,
            server_cpu: window.server_cpu,
            process_cpu: window.process_cpu,
            cpu_source: window.cpu_source,
            max_wake_late,
            max_run_delay,
            max_busy,
            unwoken,
            overslept,
            tolerance,
            failures,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "--timer {} --runtime {}: {} connections ({} silent; the slowest took {:.1?} to \
             open): {} closed idle, {} closed by their peer",
            arg_name(self.timer),
            arg_name(self.runtime),
            self.connections,
            self.silent,
            self.slowest_connect,
            self.idle_closes,
            self.peer_closes
        )?;
        writeln!(
            f,
            "{} resets in {:.3?} of steady load: {:.0} resets/s, {:.2} µs of server CPU per reset",
            self.resets,
            self.window,
            self.resets_per_second,
            self.cpu_per_reset.as_secs_f64() * 1e6
        )?;
        writeln!(
            f,
            "  (server threads {:.3?}, whole process {:.3?}; CPU from {})",
            self.server_cpu, self.process_cpu, self.cpu_source
        )?;
        writeln!(
            f,
            "idle closes: timers woke at most {:.1?} after the deadline (tolerance {:.1?}: a {:?} \
             tick + {:?} + {:.1?} the OS overslept a 1 ms park, beyond time the timer's thread \
             was busy with other work: up to {:.1?}); tasks ran at most {:.1?} after their wake",
            self.max_wake_late,
            self.tolerance,
            TICK,
            ALLOWANCE,
            self.overslept,
            self.max_busy,
            self.max_run_delay
        )?;
        if self.unwoken > 0 {
            writeln!(
                f,
                "{} idle sleeps were complete when their task polled them, with no wake",
                self.unwoken
            )?;
        }
        if self.failures.is_empty() {
            write!(f, "all checks passed")
        } else {
            write!(f, "{} checks failed:", self.failures.len())?;
            for failure in self.failures.iter().take(20) {
                write!(f, "\n  {failure}")?;
            }
            Ok(())
        }
    }
}

/// A value as the command line spells it.
fn arg_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |value| value.get_name().to_owned())
}

fn main() {
    let config = Config::parse();
    match run(&config) {
        Ok(report) => {
            println!("{report}");
            if !report.failures.is_empty() {
                std::process::exit(1);
            }
        }
        Err(err) => {
            eprintln!("idle_server: {err}");
            std::process::exit(2);
        }
    }
}
