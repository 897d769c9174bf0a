//! Network weather: a proxy that forwards TCP connections (or UDP datagrams) to a server and
//! misbehaves on purpose — slow, sliced, cut off, reset, silent, lossy — the same way on every run
//! with the same seed, and writes down what it did.
//!
//! ```text
//! cargo run --bin 05_kv_server                                     # terminal 1
//! cargo run --bin workbook -- proxy --to 127.0.0.1:65433 --slice 1 # terminal 2: prints its port
//! cargo run --bin 06_kv_client -- --port <that port> SET a 1       # terminal 3
//! ```
//!
//! In a test or a lesson, the same proxy runs in-process:
//!
//! ```no_run
//! use socket_workbook::proxy::{self, ProxyConfig, Weather};
//! # fn main() -> std::io::Result<()> {
//! let mut config = ProxyConfig::new("127.0.0.1:65433".parse().unwrap());
//! config.down = Weather { reset_after: Some(3), ..Weather::default() };
//! config.seed = Some(7);
//! let proxy = proxy::start(config)?;
//! // ... connect to proxy.addr() ...
//! for line in proxy.stop() {
//!     println!("{line}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! or from the command line's flags: `ProxyConfig::from_flags(["--to", "127.0.0.1:65433",
//! "--slice", "1"])`.
//!
//! # Layout
//! - [`weather`]: what can happen to one direction's traffic, [`Weather`], a plain struct.
//! - [`cli`]: `workbook proxy`'s flags ([`ProxyArgs`]), which fill a [`ProxyConfig`].
//! - `dice`: seeded choices, a hash of the seed and of where the choice is made.
//! - `log`: the transcript, on stdout or kept in memory ([`LogTo`]).
//! - `tcp`: the accept loop, and one thread per connection that runs a `poll` loop over its two
//!   sockets: reading, deciding each byte's fate, and writing when its time has come.
//! - `udp`: one thread, one `poll` loop: the listening socket, a socket per client towards the
//!   server, and a queue of datagrams waiting for their time.
//! - This file: [`ProxyConfig`], [`start`] and the [`ProxyHandle`] that stops the proxy when
//!   dropped.
//!
//! # Directions
//! `up` is client to server (`>` in the log, as in the harness's transcripts: what the client
//! sent), `down` is server to client (`<`). Each has its own [`Weather`].
//!
//! # Determinism
//! Every random choice is a hash of the seed and of its place: (connection, direction, byte
//! offset) for TCP, (client, direction, datagram number) for UDP; never the time, a thread's
//! timing or how `read` split the bytes. The log is written in the same terms, so that it does not depend on
//! them either:
//! - with `slice`, one line per piece of the stream's fixed grid (bytes 0 to N-1, N to 2N-1, ...),
//!   written once the piece is complete, or when the stream ends inside it. (A piece whose bytes
//!   the sender sent in two goes also leaves in two writes; the log still shows it once.)
//! - without `slice`, the delay is chosen once per direction of a connection, and logged when its
//!   first byte arrives;
//! - the close, reset and stall fates happen at exact offsets, and end of stream gives the total;
//! - UDP datagrams are numbered per client and direction in the order they reach the proxy, one
//!   line each.
//!
//! Lines of one direction are in order; lines of both directions interleave as the traffic does:
//! for a client that waits for each reply, the same way on every run. (A UDP client that
//! retransmits, through a proxy that duplicates, is not such a client: read each direction's
//! lines on their own.)
//!
//! # Bounds
//! A connection holds one 64 KiB read buffer and at most 256 KiB queued per direction (a slice
//! counts 64 bytes more for its bookkeeping); when a queue is full, the proxy stops reading that
//! side until it drains, and the sender's writes wait. At most `max_connections` connections
//! (TCP) or clients (UDP) at once. UDP keeps at most 4 MiB of delayed datagrams and forgets a
//! client after a minute without datagrams. The log in memory keeps at most 100,000 lines.

pub mod cli;
mod dice;
mod log;
mod tcp;
mod udp;
pub mod weather;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use cli::ProxyArgs;
pub use log::{LogTo, MAX_KEPT_LINES};
pub use weather::Weather;

use crate::lesson::Deadline;
use dice::Dice;

/// Everything a proxy needs to run. Build one with [`ProxyConfig::new`] and change its public
/// fields, or from `workbook proxy`'s flags with [`ProxyConfig::from_flags`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Where to listen: `127.0.0.1:0` picks a free port (see [`ProxyHandle::addr`]).
    pub listen: SocketAddr,
    /// The server to forward to.
    pub to: SocketAddr,
    /// Forward UDP datagrams instead of TCP connections.
    pub udp: bool,
    /// Weather from client to server.
    pub up: Weather,
    /// Weather from server to client.
    pub down: Weather,
    /// The seed of every random choice; `None` picks one and logs it.
    pub seed: Option<u64>,
    /// Log only the `listening on` line and the seed.
    pub quiet: bool,
    /// Where the log goes.
    pub log: LogTo,
    /// Most connections (TCP) or clients (UDP) at once. A TCP connection over it is reset at
    /// once; a datagram from a new UDP client over it is dropped.
    pub max_connections: usize,
    /// Only the first N connections (TCP) or clients (UDP) get the weather; the next ones go
    /// through untouched (a client that reconnects gets through).
    pub only_first: Option<u64>,
    /// TCP: reset every connection this long after it was accepted.
    pub reset_after_time: Option<Duration>,
    /// TCP: refuse connections (nothing listens on the port) for this long after the start.
    pub refuse_for: Option<Duration>,
}

/// The default of `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 500;

/// The longest `reset_after_time` and `refuse_for`: a day.
pub const MAX_TIME: Duration = Duration::from_secs(24 * 60 * 60);

impl ProxyConfig {
    /// A TCP proxy to `to` on a free port of 127.0.0.1, with clear weather, a random seed, and the
    /// log kept in memory.
    pub fn new(to: SocketAddr) -> ProxyConfig {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            to,
            udp: false,
            up: Weather::default(),
            down: Weather::default(),
            seed: None,
            quiet: false,
            log: LogTo::Memory,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            only_first: None,
            reset_after_time: None,
            refuse_for: None,
        }
    }

    /// A config from `workbook proxy`'s flags (without `workbook proxy` itself), with the log
    /// kept in memory: `from_flags(["--to", "127.0.0.1:65433", "--slice", "1", "--seed", "7"])`.
    /// `Err` is the message the command line would print.
    pub fn from_flags<I, T>(flags: I) -> Result<ProxyConfig, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        cli::parse_flags(flags)
    }

    /// The same weather both ways.
    pub fn both_ways(mut self, weather: Weather) -> ProxyConfig {
        self.up = weather.clone();
        self.down = weather;
        self
    }

    /// `Err` names what is wrong, in terms of the command line's flags.
    pub fn check(&self) -> Result<(), String> {
        self.up.check(self.udp)?;
        self.down.check(self.udp)?;
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".to_string());
        }
        for (flag, time) in [
            ("--reset-after-ms", self.reset_after_time),
            ("--refuse-for-ms", self.refuse_for),
        ] {
            if time.is_some_and(|time| time > MAX_TIME) {
                return Err(format!("{flag} must stay within a day"));
            }
        }
        if self.udp && self.reset_after_time.is_some() {
            return Err("--reset-after-ms is TCP weather; it does not apply with --udp".to_string());
        }
        if self.udp && self.refuse_for.is_some() {
            return Err("--refuse-for-ms is TCP weather; it does not apply with --udp".to_string());
        }
        Ok(())
    }
}

/// What the proxy's threads share: the log, the stop signal, and the counts.
pub(crate) struct Shared {
    pub(crate) log: log::Log,
    stopping: AtomicBool,
    /// Every thread's `poll` watches this pipe; closing its other end wakes them all.
    stop_read: OwnedFd,
    stop_write: Mutex<Option<OwnedFd>>,
    /// Threads that have not finished yet (the accept loop and one per connection).
    threads: Mutex<usize>,
    threads_changed: Condvar,
    /// Open connections (TCP) or known clients (UDP).
    pub(crate) open: AtomicUsize,
}

impl Shared {
    fn new(log: log::Log) -> io::Result<Shared> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass, which has room for two.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are new, open, and owned by nobody else.
        let (stop_read, stop_write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Shared {
            log,
            stopping: AtomicBool::new(false),
            stop_read,
            stop_write: Mutex::new(Some(stop_write)),
            threads: Mutex::new(0),
            threads_changed: Condvar::new(),
            open: AtomicUsize::new(0),
        })
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The descriptor to `poll` for `POLLIN`: it becomes ready (end of file) when the proxy stops.
    pub(crate) fn stop_fd(&self) -> RawFd {
        self.stop_read.as_raw_fd()
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Closing the write end wakes every `poll` on the read end.
        self.stop_write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }

    /// Counts a thread about to start; the guard uncounts it when dropped, also after a panic.
    pub(crate) fn thread_guard(self: &Arc<Shared>) -> ThreadGuard {
        *self
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) += 1;
        ThreadGuard(Arc::clone(self))
    }

    /// Waits until every thread has finished, or `deadline` passes. True if all finished.
    fn wait_for_threads(&self, deadline: Deadline) -> bool {
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while *threads > 0 {
            let Some(left) = deadline.time_left() else {
                return false;
            };
            threads = self
                .threads_changed
                .wait_timeout(threads, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// Sleeps for `pause`, or less if the proxy stops meanwhile. True if it is stopping.
    pub(crate) fn sleep_unless_stopped(&self, pause: Duration) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.stop_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let deadline = Deadline::after(pause);
        while let Some(left) = deadline.time_left() {
            if self.stopping() {
                return true;
            }
            let _ = poll(&mut fds, Some(left));
        }
        self.stopping()
    }
}

pub(crate) struct ThreadGuard(Arc<Shared>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut threads = self
            .0
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *threads = threads.saturating_sub(1);
        self.0.threads_changed.notify_all();
    }
}

/// `poll(2)` over `fds`, waiting at most `timeout` (`None`: until something happens). Retries
/// when interrupted by a signal. A timeout is rounded up to whole milliseconds, so that a wait
/// for 0.3 ms does not become a busy loop of zero-millisecond polls.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let millis = match timeout {
        None => -1,
        Some(timeout) => {
            let micros = timeout.as_micros();
            micros.div_ceil(1000).min(i32::MAX as u128) as i32
        }
    };
    loop {
        // SAFETY: the pointer and length describe `fds`, a valid, writable slice of pollfd.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready >= 0 {
            return Ok(ready as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// How long [`ProxyHandle::stop`] waits for the proxy's threads to finish.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running proxy. Dropping it stops the proxy: it stops listening, closes every connection,
/// and waits (at most [`STOP_TIMEOUT`]) for its threads.
pub struct ProxyHandle {
    addr: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    main: Option<JoinHandle<io::Result<()>>>,
}

/// Starts a proxy: binds `config.listen`, logs `listening on <ip>:<port>` and the seed, and
/// serves in background threads until the handle is dropped.
pub fn start(config: ProxyConfig) -> io::Result<ProxyHandle> {
    config
        .check()
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    let shared = Arc::new(Shared::new(log::Log::new(config.log, config.quiet))?);
    let seed = config.seed.unwrap_or_else(dice::random_seed);
    let dice = Dice::new(seed);
    let log = &shared.log;
    let (addr, main) = if config.udp {
        let socket = udp::bind(&config)?;
        let addr = socket.local_addr()?;
        log_header(log, addr, &config, seed);
        let guard = shared.thread_guard();
        let shared_for_thread = Arc::clone(&shared);
        let main = std::thread::Builder::new()
            .name("proxy udp".to_string())
            .spawn(move || {
                let _guard = guard;
                udp::run(socket, &config, dice, &shared_for_thread)
            })?;
        (addr, main)
    } else {
        let (listener, addr) = tcp::bind(&config)?;
        log_header(log, addr, &config, seed);
        let guard = shared.thread_guard();
        let shared_for_thread = Arc::clone(&shared);
        let main = std::thread::Builder::new()
            .name("proxy accept".to_string())
            .spawn(move || {
                let _guard = guard;
                tcp::accept_loop(listener, addr, config, dice, &shared_for_thread)
            })?;
        (addr, main)
    };
    Ok(ProxyHandle {
        addr,
        seed,
        shared,
        main: Some(main),
    })
}

/// The first lines: `listening on`, what is forwarded where with which seed, and the weather.
fn log_header(log: &log::Log, addr: SocketAddr, config: &ProxyConfig, seed: u64) {
    log.always(format_args!("listening on {addr}"));
    let what = if config.udp { "UDP" } else { "TCP" };
    match config.seed {
        Some(_) => log.always(format_args!("forwarding {what} to {}, seed {seed}", config.to)),
        None => log.always(format_args!(
            "forwarding {what} to {}, seed {seed} (chosen at random; --seed {seed} replays this run)",
            config.to
        )),
    }
    if config.up == config.down {
        log.event(format_args!("weather both ways: {}", config.up.describe()));
    } else {
        log.event(format_args!("weather up (>): {}", config.up.describe()));
        log.event(format_args!("weather down (<): {}", config.down.describe()));
    }
    let mut rules = Vec::new();
    if let Some(after) = config.reset_after_time {
        rules.push(format!("reset each connection after {} ms", after.as_millis()));
    }
    if let Some(n) = config.only_first {
        let what = if config.udp { "client" } else { "connection" };
        rules.push(format!(
            "weather for the first {n} {what}{} only",
            if n == 1 { "" } else { "s" }
        ));
    }
    if !rules.is_empty() {
        log.event(format_args!("{}", rules.join(", ")));
    }
}

impl ProxyHandle {
    /// The address the proxy listens on, with the real port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed of this run (the one given, or the one chosen).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The log so far (empty when it goes to stdout).
    pub fn log_lines(&self) -> Vec<String> {
        self.shared.log.lines()
    }

    /// Waits up to `timeout` until a log line contains `text`. False if none did in time.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        self.shared
            .log
            .wait_until(timeout, |lines| lines.iter().any(|line| line.contains(text)))
    }

    /// Waits up to `timeout` until `count` log lines contain `text`.
    pub fn wait_for_log_count(&self, text: &str, count: usize, timeout: Duration) -> bool {
        self.shared.log.wait_until(timeout, |lines| {
            lines.iter().filter(|line| line.contains(text)).count() >= count
        })
    }

    /// Open connections (TCP) or known clients (UDP) right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Blocks until the proxy stops by itself, which it does only when it cannot go on (it
    /// could not listen again after `refuse_for`): what `workbook proxy` does after starting.
    pub fn wait(mut self) -> io::Result<()> {
        match self.main.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the proxy's main thread panicked")),
            None => Ok(()),
        }
    }

    /// Stops the proxy (see [`ProxyHandle`]) and returns its log.
    pub fn stop(mut self) -> Vec<String> {
        self.shutdown();
        self.log_lines()
    }

    fn shutdown(&mut self) {
        self.shared.stop();
        if let Some(main) = self.main.take() {
            let _ = main.join();
        }
        if !self.shared.wait_for_threads(Deadline::after(STOP_TIMEOUT)) {
            crate::log_error!(
                "proxy: some connections were still closing {} s after the stop",
                STOP_TIMEOUT.as_secs()
            );
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_that_would_overflow_a_clock_are_refused() {
        let mut config = ProxyConfig::new("127.0.0.1:9".parse().unwrap());
        config.reset_after_time = Some(Duration::MAX);
        assert!(config.check().unwrap_err().contains("--reset-after-ms"));
        config.reset_after_time = None;
        config.refuse_for = Some(Duration::MAX);
        assert!(config.check().unwrap_err().contains("--refuse-for-ms"));
        config.refuse_for = Some(MAX_TIME);
        assert!(config.check().is_ok());
        config.up.latency = Duration::MAX;
        assert!(start(config).is_err());
    }
}
