//! A TCP echo server on `mio` with idle timeouts from a [`Scheduler`], and a loopback load
//! generator that checks them: the example to copy when embedding tierwheel in an event loop.
//!
//! The server is one thread and one loop. Its poll timeout is [`Scheduler::next_timeout`],
//! rounded *up* to the poll's millisecond resolution, so the loop never wakes before the next
//! callback is due. Each connection has one idle-timeout callback, pushed back on every read
//! with [`Scheduler::reschedule_later`] (O(1), no allocation, the handle kept).
//!
//! A second thread opens the connections on 127.0.0.1: most stay chatty (a message every fifth
//! of the idle timeout), a known set goes silent after its first message. When the run ends
//! the example checks, on the server's clock:
//!
//! - no connection is closed before its idle timeout has elapsed since its last traffic;
//! - none is closed more than one tick plus 1 ms (the poll's resolution) after its deadline,
//!   not counting time the loop could not poll: a poll that returned later than it asked (the
//!   operating system's doing), or I/O work that kept the loop busy past the deadline; both
//!   are measured and reported;
//! - every silent connection is closed, and no chatty one.
//!
//! Everything stays on loopback, the connections are bounded (and clamped to what the
//! open-file limit allows) and the run stops by itself.
//!
//! ```text
//! cargo run --release --example event_server -- --connections 3000 --idle 500ms --duration 3s
//! ```

use std::collections::{HashSet, VecDeque};
use std::error::Error;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use tierwheel::{MonotonicClock, Resolution, Scheduler, TimerHandle};

/// Command line, and the configuration of one run.
#[derive(Parser, Clone, Debug)]
#[command(about = "An echo server whose idle timeouts are tierwheel callbacks, under load")]
pub(crate) struct Config {
    /// Connections the load generator opens (clamped to the open-file limit).
    #[arg(long, default_value_t = 3000)]
    pub(crate) connections: usize,
    /// A connection without traffic for this long is closed by the server.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub(crate) idle: Duration,
    /// How long the load runs once every connection is open (at least twice `idle`).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// The share of connections that go silent after their first message.
    #[arg(long, default_value_t = 0.25)]
    pub(crate) silent_fraction: f64,
    /// The scheduler's tick.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub(crate) tick: Duration,
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

/// epoll takes its timeout in whole milliseconds.
const POLL_RESOLUTION: Duration = Duration::from_millis(1);
/// epoll takes an `i32` of milliseconds; waking early is harmless, since a pass that finds
/// nothing due costs little and the loop asks again.
const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(3600);

/// The poll timeout for a scheduler timeout: rounded *up* to the poll's resolution. Rounded
/// down, the loop would wake just before the deadline, find nothing due, and spin on zero
/// timeouts until the tick boundary.
pub(crate) fn poll_timeout(timeout: Duration) -> Duration {
    let resolution = POLL_RESOLUTION.as_nanos();
    let nanos = timeout.as_nanos().div_ceil(resolution) * resolution;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).min(MAX_POLL_TIMEOUT)
}

const LISTENER: Token = Token(0);
const STOP: Token = Token(1);
/// Connection `i` has token `FIRST_CONNECTION + i`.
const FIRST_CONNECTION: usize = 2;

/// The scheduler of the server's loop: callbacks get the server as their context.
type Loop = Scheduler<Server>;

/// The server's state, handed to every scheduler callback as `&mut Server`.
struct Server {
    listener: TcpListener,
    registry: Registry,
    idle: Duration,
    /// By token; a closed connection leaves `None`, and its token is not reused, so an event
    /// still queued for it finds nothing.
    connections: Vec<Option<Connection>>,
    /// What the checks need to know about the loop and the closes.
    record: Record,
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// The idle timeout: pushed back on every read, cancelled when the peer closes first.
    idle: TimerHandle,
    /// Echoed bytes the socket had no room for yet.
    unsent: Vec<u8>,
    /// When the server last read from it, and when its idle timeout is due (the deadline
    /// rounded up to a tick boundary), on the scheduler's clock; for the checks.
    last_traffic: Duration,
    due: Duration,
}

/// The loop's timing and every close, on the scheduler's clock, for the checks.
#[derive(Default)]
struct Record {
    /// The pass in progress.
    pass: Pass,
    idle_closes: Vec<IdleClose>,
    peer_closes: usize,
    echoed: u64,
    passes: u64,
    /// The longest a poll returned after the time it asked for.
    overslept: Duration,
}

/// One turn of the loop, as the checks see it.
#[derive(Copy, Clone, Default)]
struct Pass {
    /// When the loop read the clock to ask the scheduler how long to wait.
    asked_at: Duration,
    /// The poll timeout it asked for.
    timeout: Duration,
    /// When the poll returned and the scheduler's pass began.
    woke: Duration,
}

struct IdleClose {
    peer: SocketAddr,
    last_traffic: Duration,
    /// The callback's due time as the scheduler reported it.
    due: Duration,
    closed_at: Duration,
    pass: Pass,
}

impl Server {
    fn accept(&mut self, sched: &mut Loop) -> io::Result<()> {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) => return Err(err),
            };
            let index = self.connections.len();
            let token = Token(FIRST_CONNECTION + index);
            self.registry
                .register(&mut stream, token, Interest::READABLE)?;
            let last_traffic = sched.time();
            // The callback names the connection by index: it is cancelled whenever the
            // connection closes otherwise, so it never runs for a closed one.
            let idle = sched.call_later(self.idle, move |server: &mut Server, sched: &mut Loop| {
                server.close_idle(index, sched);
            });
            self.connections.push(Some(Connection {
                stream,
                peer,
                idle,
                unsent: Vec::new(),
                last_traffic,
                due: sched.when(idle).expect("just scheduled"),
            }));
        }
    }

    /// The idle-timeout callback.
    fn close_idle(&mut self, index: usize, sched: &mut Loop) {
        let connection = self.connections[index]
            .take()
            .expect("an idle timeout outlived its connection");
        let closed_at = sched.time();
        self.record.idle_closes.push(IdleClose {
            peer: connection.peer,
            last_traffic: connection.last_traffic,
            due: connection.due,
            closed_at,
            pass: self.record.pass,
        });
        self.drop_connection(connection);
    }

    fn drop_connection(&mut self, mut connection: Connection) {
        // Dropping the stream closes it; deregistering first keeps epoll's set exact on
        // every platform mio supports.
        let _ = self.registry.deregister(&mut connection.stream);
    }

    /// Reads and echoes what a connection sent; any traffic pushes its idle timeout back.
    fn readable(&mut self, index: usize, sched: &mut Loop) -> io::Result<()> {
        let Some(connection) = self.connections[index].as_mut() else {
            return Ok(()); // closed earlier in this turn
        };
        let mut buffer = [0; 4096];
        let mut traffic = false;
        let mut peer_closed = false;
        loop {
            match connection.stream.read(&mut buffer) {
                Ok(0) => {
                    peer_closed = true;
                    break;
                }
                Ok(n) => {
                    traffic = true;
                    connection.unsent.extend_from_slice(&buffer[..n]);
                    self.record.echoed += 1;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    peer_closed = true; // reset by the peer: same as a close here
                    break;
                }
            }
        }
        if peer_closed {
            let connection = self.connections[index].take().expect("checked above");
            // Cancelled, not left to fire: its callback trusts that its index names an open
            // connection.
            sched.cancel(connection.idle);
            self.record.peer_closes += 1;
            self.drop_connection(connection);
            return Ok(());
        }
        if traffic {
            connection.last_traffic = sched.time();
            let pending = sched.reschedule_later(connection.idle, self.idle);
            debug_assert!(pending, "an open connection's idle timeout is pending");
            connection.due = sched.when(connection.idle).expect("just rescheduled");
        }
        self.flush(index)
    }

    /// Writes what is waiting to be echoed; asks for writability while something is left.
    fn flush(&mut self, index: usize) -> io::Result<()> {
        let Some(connection) = self.connections[index].as_mut() else {
            return Ok(());
        };
        let was_waiting = !connection.unsent.is_empty();
        while !connection.unsent.is_empty() {
            match connection.stream.write(&connection.unsent) {
                Ok(n) => {
                    connection.unsent.drain(..n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // The read side will see the close and drop the connection.
                Err(_) => {
                    connection.unsent.clear();
                    break;
                }
            }
        }
        let token = Token(FIRST_CONNECTION + index);
        let interest = if connection.unsent.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        if was_waiting || !connection.unsent.is_empty() {
            self.registry
                .reregister(&mut connection.stream, token, interest)?;
        }
        Ok(())
    }
}

/// Runs the server loop until the load generator says it is done (or `hard_stop` passes).
fn serve(
    mut poll: Poll,
    mut server: Server,
    mut sched: Loop,
    hard_stop: Duration,
) -> io::Result<Server> {
    let mut events = Events::with_capacity(1024);
    loop {
        // Asked before the timeout is computed, so that the checks' bound holds exactly.
        let asked_at = sched.time();
        if asked_at >= hard_stop {
            break;
        }
        let until_hard_stop = hard_stop - asked_at;
        let timeout = sched
            .next_timeout()
            .map(poll_timeout)
            .map_or(until_hard_stop, |timeout| timeout.min(until_hard_stop));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        let woke = sched.time();
        let overslept = woke.saturating_sub(asked_at + timeout);
        server.record.overslept = server.record.overslept.max(overslept);
        server.record.pass = Pass {
            asked_at,
            timeout,
            woke,
        };
        server.record.passes += 1;
        // Timers first: they were due by now, and I/O work below can take a while.
        sched.run_due(&mut server);

        let mut stop = false;
        for event in events.iter() {
            match event.token() {
                LISTENER => server.accept(&mut sched)?,
                STOP => stop = true,
                Token(token) => {
                    let index = token - FIRST_CONNECTION;
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        server.readable(index, &mut sched)?;
                    }
                    if event.is_writable() {
                        server.flush(index)?;
                    }
                }
            }
        }
        if stop {
            break;
        }
    }
    // Whatever is still open goes now, its timeout with it.
    for index in 0..server.connections.len() {
        if let Some(connection) = server.connections[index].take() {
            sched.cancel(connection.idle);
            server.drop_connection(connection);
        }
    }
    debug_assert!(sched.is_empty(), "{} timers outlived the run", sched.len());
    Ok(server)
}

/// What the load generator saw.
struct Load {
    /// Local addresses of the connections that went silent, and of the chatty ones.
    silent: HashSet<SocketAddr>,
    chatty: HashSet<SocketAddr>,
    /// Connections whose close by the server the generator saw, by local address.
    closed_by_server: HashSet<SocketAddr>,
    /// Chatty messages that could not be written at once (a full socket buffer).
    blocked_writes: u64,
}

/// One client connection of the load generator.
struct Peer {
    stream: TcpStream,
    local: SocketAddr,
}

/// Opening every connection may not take longer than this.
const CONNECT_BUDGET: Duration = Duration::from_secs(20);

/// Opens the connections, each saying hello at once; keeps the chatty ones talking until
/// `config.duration` after the last one opened; then closes them and wakes the server.
fn generate_load(server: SocketAddr, config: &Config, stop: &Waker) -> io::Result<Load> {
    let mut poll = Poll::new()?;
    let silent_count = (config.connections as f64 * config.silent_fraction).round() as usize;
    let period = config.idle / 5;
    let mut load = Load {
        silent: HashSet::new(),
        chatty: HashSet::new(),
        closed_by_server: HashSet::new(),
        blocked_writes: 0,
    };
    let mut peers = Vec::with_capacity(config.connections);
    // The chatty connections' next messages, in time order: all have the same period.
    let mut next_send = VecDeque::new();
    let opening = Instant::now();
    for i in 0..config.connections {
        if opening.elapsed() > CONNECT_BUDGET {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("opened only {i} connections in {CONNECT_BUDGET:?}"),
            ));
        }
        let stream = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(5))?;
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        // Spread the silent ones evenly over the connections.
        let silent =
            (i + 1) * silent_count / config.connections != i * silent_count / config.connections;
        let local = stream.local_addr()?;
        send(&mut stream, b"hello\n", &mut load.blocked_writes);
        if silent {
            load.silent.insert(local);
        } else {
            load.chatty.insert(local);
            next_send.push_back((Instant::now() + period, i));
        }
        peers.push(Peer { stream, local });
        // Opening thousands of connections takes a while: keep the early ones talking.
        send_due(&mut peers, &mut next_send, period, &mut load.blocked_writes);
    }

    let end = Instant::now() + config.duration;
    let mut events = Events::with_capacity(1024);
    let mut buffer = [0; 4096];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        send_due(&mut peers, &mut next_send, period, &mut load.blocked_writes);
        let wake = next_send.front().map_or(end, |&(at, _)| at).min(end);
        poll.poll(&mut events, Some(wake.saturating_duration_since(now)))?;
        for event in events.iter() {
            let peer = &mut peers[event.token().0];
            loop {
                match peer.stream.read(&mut buffer) {
                    Ok(0) => {
                        load.closed_by_server.insert(peer.local);
                        let _ = poll.registry().deregister(&mut peer.stream);
                        break;
                    }
                    Ok(_) => continue, // the echo
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        load.closed_by_server.insert(peer.local);
                        let _ = poll.registry().deregister(&mut peer.stream);
                        break;
                    }
                }
            }
        }
    }
    drop(peers);
    stop.wake()?;
    Ok(load)
}

/// Sends the chatty messages that are due.
fn send_due(
    peers: &mut [Peer],
    next_send: &mut VecDeque<(Instant, usize)>,
    period: Duration,
    blocked: &mut u64,
) {
    let now = Instant::now();
    while let Some(&(at, i)) = next_send.front() {
        if at > now {
            break;
        }
        next_send.pop_front();
        send(&mut peers[i].stream, b"ping\n", blocked);
        next_send.push_back((at + period, i));
    }
}

/// Writes one small message; loopback has room, so a short write is only counted.
fn send(stream: &mut TcpStream, message: &[u8], blocked: &mut u64) {
    match stream.write(message) {
        Ok(n) if n == message.len() => {}
        _ => *blocked += 1,
    }
}

/// The soft open-file limit, from `/proc/self/limits` (Linux); `None` where it cannot be read.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Runs the server and the load generator on 127.0.0.1 and gathers what the checks need.
///
/// # Errors
///
/// A socket or poll error on either side, or a configuration that cannot show anything
/// (`duration` shorter than twice `idle`, a tick that is zero or too long).
pub(crate) fn run(config: &Config) -> Result<Report, Box<dyn Error>> {
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
    // Each connection takes two descriptors here, its client side and its server side; leave
    // some for everything else. Nothing is raised: the run shrinks to fit.
    if let Some(limit) = open_file_limit() {
        let fits = limit.saturating_sub(64) / 2;
        if config.connections > fits {
            eprintln!(
                "event_server: the open-file limit ({limit}) allows {fits} connections \
                 (two descriptors each); running {fits} instead of {}",
                config.connections
            );
            config.connections = fits;
        }
        if fits == 0 {
            return Err("the open-file limit leaves no room for a connection".into());
        }
    }

    let poll = Poll::new()?;
    let mut listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    let address = listener.local_addr()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let stop = Arc::new(Waker::new(poll.registry(), STOP)?);
    let server = Server {
        listener,
        registry: poll.registry().try_clone()?,
        idle: config.idle,
        connections: Vec::with_capacity(config.connections),
        record: Record::default(),
    };
    let sched =
        Loop::with_clock_and_resolution(MonotonicClock::new(), Resolution::new(config.tick)?);
    // Generous: the connections open, the load runs, the last silent ones time out. The server
    // stops at this time even if the load generator never says it is done.
    let hard_stop = sched.time() + Duration::from_secs(30) + 2 * config.duration;

    let generator = {
        let (config, stop) = (config.clone(), Arc::clone(&stop));
        thread::Builder::new()
            .name("load".into())
            .spawn(move || generate_load(address, &config, &stop))?
    };
    let served = serve(poll, server, sched, hard_stop);
    let loaded = generator
        .join()
        .map_err(|_| "the load generator panicked")?;
    // A server error first: it explains the load generator's, never the other way round.
    let server = served?;
    let load = loaded?;
    Ok(Report::new(&config, server, load))
}

/// The outcome of a run: what happened, and which checks failed.
pub(crate) struct Report {
    pub(crate) connections: usize,
    pub(crate) silent: usize,
    pub(crate) idle_closes: usize,
    pub(crate) peer_closes: usize,
    pub(crate) echoed: u64,
    pub(crate) passes: u64,
    /// The latest idle close after its exact deadline (last traffic + idle).
    pub(crate) max_late: Duration,
    /// The longest a poll returned after the time it asked for.
    pub(crate) max_overslept: Duration,
    /// The longest I/O work kept the loop from polling past a deadline.
    pub(crate) max_busy: Duration,
    pub(crate) tolerance: Duration,
    pub(crate) failures: Vec<String>,
}

impl Report {
    fn new(config: &Config, server: Server, load: Load) -> Report {
        let tolerance = config.tick + POLL_RESOLUTION;
        let mut failures = Vec::new();
        let (mut max_late, mut max_busy) = (Duration::ZERO, Duration::ZERO);
        let mut idle_closed = HashSet::new();
        for close in &server.record.idle_closes {
            idle_closed.insert(close.peer);
            let deadline = close.last_traffic + config.idle;
            if close.closed_at < deadline {
                failures.push(format!(
                    "{}: closed {:?} early",
                    close.peer,
                    deadline - close.closed_at
                ));
            }
            max_late = max_late.max(close.closed_at.saturating_sub(deadline));
            // The pass should have begun by the tick boundary after the deadline plus the
            // poll's resolution, or at once if the loop only got to poll after the deadline.
            // Whatever the poll returned later than asked is the operating system's.
            let Pass {
                asked_at,
                timeout,
                woke,
            } = close.pass;
            let busy = asked_at.saturating_sub(close.due);
            max_busy = max_busy.max(busy);
            let overslept = woke.saturating_sub(asked_at + timeout);
            let latest = close.due.max(asked_at) + POLL_RESOLUTION + overslept;
            if woke > latest {
                failures.push(format!(
                    "{}: its pass began {:?} past the tolerance",
                    close.peer,
                    woke - latest
                ));
            }
        }
        for peer in &load.silent {
            if !idle_closed.contains(peer) || !load.closed_by_server.contains(peer) {
                failures.push(format!("{peer}: silent, but not closed for idleness"));
            }
        }
        for peer in load.chatty.intersection(&load.closed_by_server) {
            failures.push(format!("{peer}: chatty, but closed by the server"));
        }
        if load.blocked_writes > 0 {
            failures.push(format!(
                "{} chatty messages could not be sent",
                load.blocked_writes
            ));
        }
        Report {
            connections: load.silent.len() + load.chatty.len(),
            silent: load.silent.len(),
            idle_closes: server.record.idle_closes.len(),
            peer_closes: server.record.peer_closes,
            echoed: server.record.echoed,
            passes: server.record.passes,
            max_late,
            max_overslept: server.record.overslept,
            max_busy,
            tolerance,
            failures,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} connections ({} silent): {} closed idle, {} closed by their peer; \
             {} reads echoed in {} loop turns",
            self.connections,
            self.silent,
            self.idle_closes,
            self.peer_closes,
            self.echoed,
            self.passes
        )?;
        writeln!(
            f,
            "idle closes at most {:?} after their deadline (tolerance {:?} beyond what the \
             loop could not help: polls returned up to {:?} late, I/O kept it busy up to {:?})",
            self.max_late, self.tolerance, self.max_overslept, self.max_busy
        )?;
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
            eprintln!("event_server: {err}");
            std::process::exit(2);
        }
    }
}
