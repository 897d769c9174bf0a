//! What every lesson program shares but is not the lesson's point: the `--host`/`--port`
//! arguments, the `listening on` line that tests and the checker wait for, one clear line for
//! the errors a learner meets first (port in use, connection refused), log lines that never take
//! a server down ([`log_line!`](crate::log_line)), what to do when `accept` fails, and deadlines.
//!
//! The socket calls themselves stay in the lessons, where the book can show them.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{self, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::escape::escape_abbreviated;
use crate::kv::Reply;

/// `--host` and `--port` for a server lesson. `DEFAULT_PORT` is the lesson's own port, so
/// `cargo run --bin 01_echo_server` needs no arguments; `--port 0` asks the kernel for any free port.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenArgs<const DEFAULT_PORT: u16> {
    /// Address to listen on. 127.0.0.1 (IPv4) and ::1 (IPv6) accept connections from this machine
    /// only; 0.0.0.0 (all IPv4 addresses) and :: (all IPv6 addresses, on Linux IPv4 too) from
    /// anywhere your firewall allows.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port to listen on (0 = let the kernel choose a free one; the real port is printed).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
}

/// `--host` and `--port` for a client lesson: where the server is.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs<const DEFAULT_PORT: u16> {
    /// Host the server runs on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port the server listens on.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
}

/// The options of a server for many clients at once (lessons 07 and 08), next to `ListenArgs`.
#[derive(clap::Args, Debug, Clone)]
pub struct ManyClientsArgs {
    /// Most clients served at once; the next one is told "ERROR server busy" and disconnected.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connections: u32,
    /// Do not log every command and reply (connections are still logged).
    #[arg(long)]
    pub quiet: bool,
}

impl<const P: u16> ListenArgs<P> {
    /// `host:port` as the user typed it, for messages.
    pub fn address(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl<const P: u16> ConnectArgs<P> {
    /// `host:port` as the user typed it, for messages.
    pub fn address(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Prints `listening on <ip>:<port>` with the port the kernel really gave us, and flushes it at
/// once: whoever started us (a test, the checker, you) waits for this line before connecting.
pub fn announce_listening(listener: &TcpListener) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    // A log line like any other: if nobody reads our stdout, we serve anyway.
    crate::log_line!("listening on {addr}");
    Ok(addr)
}

// ANCHOR: log_line
/// `println!` for a server's log: writes one line to stdout, and never panics.
///
/// `println!` panics when stdout is gone: run a server as `05_kv_server | head -1`, and once
/// `head` has its line and exits, the next `println!` fails with "Broken pipe" (EPIPE) and the
/// server dies in the middle of serving. A C or Python server dies too, but differently: the
/// kernel sends SIGPIPE, whose default action ends the process at once, with no message. Rust
/// programs ignore SIGPIPE from the start, so the failed `write` returns the error instead, and
/// `println!` turns it into a panic. A log is not worth a server: when a line cannot be written,
/// this stops logging to stdout and the server goes on serving.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {
        $crate::lesson::write_log_line($crate::lesson::LogTo::Stdout, format_args!($($arg)*))
    };
}

/// `eprintln!` for a server's log: one line to stderr, and never a panic (see [`log_line!`]).
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => {
        $crate::lesson::write_log_line($crate::lesson::LogTo::Stderr, format_args!($($arg)*))
    };
}

/// Where a log line goes.
#[derive(Debug, Clone, Copy)]
pub enum LogTo {
    Stdout,
    Stderr,
}

/// Set when a line could not be written to stdout (or stderr): nothing more is written there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// What [`log_line!`] and [`log_error!`] call. The stream is locked for the whole line, so lines
/// written by different threads never mix.
pub fn write_log_line(to: LogTo, line: fmt::Arguments<'_>) {
    let gone = match to {
        LogTo::Stdout => &STDOUT_GONE,
        LogTo::Stderr => &STDERR_GONE,
    };
    if gone.load(Ordering::Relaxed) {
        return;
    }
    let written = match to {
        // Flushed at once: whoever reads our log (a test waiting for a line) sees it now.
        LogTo::Stdout => {
            let mut out = io::stdout().lock();
            writeln!(out, "{line}").and_then(|()| out.flush())
        }
        LogTo::Stderr => writeln!(io::stderr().lock(), "{line}"),
    };
    if written.is_err() {
        gone.store(true, Ordering::Relaxed);
    }
}
// ANCHOR_END: log_line

/// How a lesson's `main` ends: status 0, or one line `error: ...` on stderr and status 1
/// (never the `Error: Os { code: .. }` that returning an `io::Result` from `main` prints).
pub fn exit_status(result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            crate::log_error!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Ends the program with one line explaining why `bind` failed. Exit code 1.
pub fn exit_bind_failed(address: &str, err: &io::Error) -> ! {
    let advice = match err.kind() {
        io::ErrorKind::AddrInUse => {
            "another program (perhaps an earlier run of this lesson) is using that port; \
             stop it, or choose another port with --port (0 picks a free one)"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need root or, on Linux, the CAP_NET_BIND_SERVICE capability \
             (or a lower net.ipv4.ip_unprivileged_port_start); use a port from 1024 up"
        }
        io::ErrorKind::AddrNotAvailable => {
            "that address does not belong to this machine; try --host 127.0.0.1 or --host ::1"
        }
        _ => "check --host and --port",
    };
    eprintln!("error: cannot listen on {address}: {err}; {advice}");
    process::exit(1)
}

/// Ends a client with one line saying it could not reach the server and how to start one.
/// Exit code 3 (codes 1 and 2 are left for "the server said no" and "bad usage").
pub fn exit_connect_failed(address: &str, err: &io::Error, start_server: &str) -> ! {
    let advice = connect_advice(err, start_server);
    eprintln!("error: cannot connect to {address}: {err}; {advice}");
    process::exit(3)
}

/// What to do when `connect` failed with `err`: `nothing is listening there; start the server
/// first with ...` (the end of [`exit_connect_failed`]'s line).
pub fn connect_advice(err: &io::Error, start_server: &str) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("nothing is listening there; start the server first with `{start_server}`")
        }
        io::ErrorKind::TimedOut => "the server did not answer the connection request in time: it may \
             be overloaded (its queue of connections waiting to be accepted is full), or packets to \
             it are dropped (a firewall, a machine that is down)"
            .to_string(),
        _ => format!("is the server running? start it with `{start_server}`"),
    }
}

/// The C name of the error number behind `err`, such as `ECONNRESET`, for the errors a network
/// program meets; `None` for other numbers, and for errors that did not come from the operating
/// system (such as the standard library's own "connection timed out" of `connect_timeout`).
///
/// Rust prints `Connection reset by peer (os error 104)`; the number differs between systems,
/// the name does not, and the name is what manuals (`man 2 recv`, `man 7 tcp`) and C or Python
/// programs show (`ConnectionResetError: [Errno 104]`, `errno.ECONNRESET`).
///
/// ```
/// use std::io;
/// use socket_workbook::lesson::errno_name;
/// assert_eq!(errno_name(&io::Error::from_raw_os_error(libc::EPIPE)), Some("EPIPE"));
/// assert_eq!(errno_name(&io::Error::new(io::ErrorKind::TimedOut, "connection timed out")), None);
/// ```
pub fn errno_name(err: &io::Error) -> Option<&'static str> {
    #[cfg(unix)]
    {
        let name = match err.raw_os_error()? {
            libc::ECONNREFUSED => "ECONNREFUSED",
            libc::ECONNRESET => "ECONNRESET",
            libc::ECONNABORTED => "ECONNABORTED",
            libc::EPIPE => "EPIPE",
            libc::ETIMEDOUT => "ETIMEDOUT",
            // EWOULDBLOCK is the same number on Linux and macOS.
            libc::EAGAIN => "EAGAIN",
            libc::EINTR => "EINTR",
            libc::EINPROGRESS => "EINPROGRESS",
            libc::ENETUNREACH => "ENETUNREACH",
            libc::ENETDOWN => "ENETDOWN",
            libc::EHOSTUNREACH => "EHOSTUNREACH",
            libc::EADDRINUSE => "EADDRINUSE",
            libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            libc::ENOTCONN => "ENOTCONN",
            libc::EMFILE => "EMFILE",
            libc::ENFILE => "ENFILE",
            libc::ENOBUFS => "ENOBUFS",
            libc::EACCES => "EACCES",
            libc::EPERM => "EPERM",
            _ => return None,
        };
        Some(name)
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        None
    }
}

/// `6 bytes: "Hello\n"` — how lessons log a chunk of received bytes. Long chunks are cut after
/// 60 bytes so a megabyte does not flood the terminal.
pub fn describe_chunk(bytes: &[u8]) -> String {
    let noun = if bytes.len() == 1 { "byte" } else { "bytes" };
    format!("{} {noun}: {}", bytes.len(), escape_abbreviated(bytes, 60))
}

/// Log lines for one connection of a key-value server (lessons 05, 07 and 08), numbered so that
/// they can be told apart: `#3 disconnected`. Written with [`log_line!`](crate::log_line), so
/// lines printed by different threads never mix, and a closed stdout does not stop the server.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLog {
    /// The connection's number: 1 for the first client since the server started.
    pub number: u64,
    /// Log every command and its reply (`--quiet` turns this off).
    pub per_command: bool,
}

impl ConnectionLog {
    /// `#3 text`.
    pub fn line(&self, text: &str) {
        crate::log_line!("#{} {text}", self.number);
    }

    /// `#1 "SET a 1" -> "OK"`: the line as received (a `\r` shows), and the reply, both without
    /// their `\n`. Nothing when per-command logging is off.
    pub fn command(&self, line: &[u8], reply: &Reply) {
        if self.per_command {
            self.line(&format!(
                "{} -> {}",
                escape_abbreviated(line, 80),
                escape_abbreviated(reply.to_string().as_bytes(), 80)
            ));
        }
    }

    /// `#4 sent more than 65536 bytes without a newline -> "ERROR line too long"; closing the
    /// connection`: why the server hangs up, with the reply it sends last.
    pub fn line_too_long(&self, reply: &Reply) {
        self.line(&format!(
            "sent more than {} bytes without a newline -> {}; closing the connection",
            crate::kv::MAX_LINE,
            escape_abbreviated(reply.to_string().as_bytes(), 80)
        ));
    }
}

// ANCHOR: close_gracefully
/// How long, and how much, a server listens to a client it is hanging up on.
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);
pub const DRAIN_LIMIT: usize = 1024 * 1024;

/// Closes so that the client reliably reads our last reply.
///
/// Closing a socket while the client's bytes still sit unread in our receive buffer makes the
/// kernel send a reset (RST) instead of a normal close (FIN), and a reset may make the client's
/// kernel throw away our reply before the client has read it. So: shut down our sending side
/// (the client reads the reply, then end of stream), read and discard what the client still sends
/// for a short while, and only then close.
///
/// "A short while" is a deadline for the whole drain, not a timeout for each `read`: with a
/// timeout per call, a client that sends one byte every 200 ms would keep us draining forever.
pub fn close_gracefully(conn: &mut TcpStream) -> io::Result<()> {
    conn.shutdown(Shutdown::Write)?;
    let mut draining = DeadlineStream::new(conn, Deadline::after(DRAIN_TIMEOUT));
    let mut buf = [0u8; 4096];
    let mut discarded = 0;
    while discarded < DRAIN_LIMIT {
        match draining.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => discarded += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // The deadline passed, or the client reset: either way we are done listening.
            Err(_) => break,
        }
    }
    Ok(())
}
// ANCHOR_END: close_gracefully

// ANCHOR: deadline
/// A moment by which something must be over: a whole request, or a whole drain.
///
/// A socket's read timeout (`set_read_timeout`, the `SO_RCVTIMEO` option) bounds each `read`
/// call, not the conversation: every byte that arrives starts the clock again, so a client that
/// sends one byte just before each timeout runs out can hold a server forever. A deadline is
/// fixed once; before each call, the socket gets only the time that is left.
///
/// Deadlines compare by time: `a.min(b)` is the earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// The moment `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline(Instant::now() + limit)
    }

    /// When it is.
    pub fn instant(&self) -> Instant {
        self.0
    }

    /// The time left, or `None` once the deadline has passed.
    pub fn time_left(&self) -> Option<Duration> {
        let left = self.0.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// The error a call gets when the deadline has passed: [`io::ErrorKind::TimedOut`], with
    /// the message "the deadline passed".
    pub fn passed_error(&self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, DeadlinePassed)
    }

    /// Is `err` the error of a passed deadline ([`passed_error`](Deadline::passed_error), which
    /// [`DeadlineStream`] returns)? A `TimedOut` from the kernel (ETIMEDOUT) is not.
    pub fn is_passed_error(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|inner| inner.is::<DeadlinePassed>())
    }
}

/// What [`Deadline::passed_error`] carries, so that it can be told from other timeouts.
#[derive(Debug)]
struct DeadlinePassed;

impl fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the deadline passed")
    }
}

impl std::error::Error for DeadlinePassed {}

/// A connection whose every `read` and `write` ends by one [`Deadline`]: each call waits at
/// most for the time that is left, and once it has passed, calls fail with `TimedOut`.
pub struct DeadlineStream<'a> {
    conn: &'a TcpStream,
    deadline: Deadline,
}

impl<'a> DeadlineStream<'a> {
    pub fn new(conn: &'a TcpStream, deadline: Deadline) -> DeadlineStream<'a> {
        DeadlineStream { conn, deadline }
    }

    /// A timeout from a call we limited means the deadline passed: say so, whatever the OS
    /// called it (`WouldBlock`, EAGAIN, on Unix; `TimedOut`, WSAETIMEDOUT, on Windows).
    ///
    /// On Unix a `TimedOut` error is something else, ETIMEDOUT: the kernel gave up on the
    /// connection itself (keepalive probes or retransmissions went unanswered). That one is
    /// passed on as it is.
    fn deadline_error(&self, err: io::Error) -> io::Error {
        let our_timer = if cfg!(windows) {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::WouldBlock
        };
        if err.kind() == our_timer {
            self.deadline.passed_error()
        } else {
            err
        }
    }
}

impl Read for DeadlineStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self
            .deadline
            .time_left()
            .ok_or_else(|| self.deadline.passed_error())?;
        self.conn.set_read_timeout(Some(left))?;
        (&*self.conn).read(buf).map_err(|err| self.deadline_error(err))
    }
}

impl Write for DeadlineStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self
            .deadline
            .time_left()
            .ok_or_else(|| self.deadline.passed_error())?;
        self.conn.set_write_timeout(Some(left))?;
        (&*self.conn).write(buf).map_err(|err| self.deadline_error(err))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
// ANCHOR_END: deadline

/// Reads a number of seconds such as `30` or `0.5` (for options like `--client-timeout`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (e.g. 30 or 0.5)"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!(
            "{text}: give a number of seconds above 0 and at most 86400"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

// ANCHOR: failed_accept
/// How long a server stops accepting after `accept` failed for lack of resources.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Errors of `accept` that say the process or the system is short of something (descriptors,
/// memory), not that one connection went wrong: retrying at once fails the same way.
pub fn out_of_resources(err: &io::Error) -> bool {
    #[cfg(unix)]
    return matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    );
    #[cfg(not(unix))]
    return err.kind() == io::ErrorKind::OutOfMemory;
}

/// What a server that blocks in `accept` does when `accept` fails: log it, and pause if the
/// process is out of resources.
///
/// "Too many open files" (EMFILE) is the common case: every connection costs a file descriptor,
/// and the process has a limit (`ulimit -n`). The waiting connection stays in the kernel's
/// queue, so the next `accept` fails again at once: a loop that simply goes back to `accept`
/// spins, burning a core and writing thousands of log lines a second. Pausing gives connections
/// time to close. Any other error is about one connection (a client that gave up before we
/// accepted it, ECONNABORTED): the next one may be fine, so we go on at once.
pub fn after_failed_accept(err: &io::Error) {
    if out_of_resources(err) {
        crate::log_error!("accept failed: {err}; not accepting for {ACCEPT_PAUSE:?}");
        // Deliberate: this thread has nothing else to do until resources come back.
        thread::sleep(ACCEPT_PAUSE);
    } else {
        crate::log_error!("accept failed: {err}");
    }
}
// ANCHOR_END: failed_accept

/// `shutting down (Ctrl-C or SIGTERM); closing the connections of 3 clients`: what lessons 07
/// and 08 say when they stop.
pub fn log_shutting_down(open_connections: usize) {
    match open_connections {
        0 => crate::log_line!("shutting down (Ctrl-C or SIGTERM); no clients connected"),
        1 => crate::log_line!("shutting down (Ctrl-C or SIGTERM); closing the connection of 1 client"),
        n => crate::log_line!("shutting down (Ctrl-C or SIGTERM); closing the connections of {n} clients"),
    }
}

// ANCHOR: refuse
/// The reply to a client over the connection cap (lessons 07 and 08), before the server hangs up.
pub const BUSY: &[u8] = b"ERROR server busy: too many connections\n";

/// Tells a client over the cap why it cannot be served, and hangs up. Done by the thread that
/// accepts (lesson 07) or by the event loop (lesson 08), so it must not block: 40 bytes always fit
/// a new connection's empty send buffer, and we do not wait for the client to read them. (If the
/// client had already sent a command, closing with it unread makes the kernel reset the
/// connection, and the client may miss the line; it sees its connection end either way.)
pub fn refuse_over_cap(mut conn: TcpStream) {
    let _ = conn.write_all(BUSY);
    let _ = conn.shutdown(Shutdown::Both);
}
// ANCHOR_END: refuse

// ANCHOR: backlog
/// Sets how many connections the kernel queues for us before we `accept` them.
///
/// `TcpListener::bind` calls `listen` with a backlog of 128. Lesson 05 never needs more: it
/// accepts the next client only after the last one left. Lessons 07 and 08 accept as fast as they
/// can, and a burst of clients connects faster than that. When the queue is full, the kernel
/// drops the next connection request, and that client's kernel sends it again only after a
/// second: a burst of 1,000 clients stalls for seconds. Calling `listen` again on a listening
/// socket sets a new backlog (the kernel caps it at `net.core.somaxconn`, 4096 on Linux today).
#[cfg(unix)]
pub fn set_listen_backlog(listener: &TcpListener, backlog: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) takes a descriptor we own (it lives as long as `listener`) and a number.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
// ANCHOR_END: backlog

/// Elsewhere the backlog stays what the standard library chose.
#[cfg(not(unix))]
pub fn set_listen_backlog(_listener: &TcpListener, _backlog: i32) -> io::Result<()> {
    Ok(())
}
