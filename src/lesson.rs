//! What every lesson program shares but is not the lesson's point: the `--host`/`--port`
//! arguments, the `listening on` line that tests and the checker wait for, and one clear line for
//! the errors a learner meets first (port in use, connection refused).
//!
//! The socket calls themselves stay in the lessons, where the book can show them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process;
use std::time::Duration;

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
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(addr)
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
    let advice = match err.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("nothing is listening there; start the server first with `{start_server}`")
        }
        _ => format!("is the server running? start it with `{start_server}`"),
    };
    eprintln!("error: cannot connect to {address}: {err}; {advice}");
    process::exit(3)
}

/// `6 bytes: "Hello\n"` — how lessons log a chunk of received bytes. Long chunks are cut after
/// 60 bytes so a megabyte does not flood the terminal.
pub fn describe_chunk(bytes: &[u8]) -> String {
    let noun = if bytes.len() == 1 { "byte" } else { "bytes" };
    format!("{} {noun}: {}", bytes.len(), escape_abbreviated(bytes, 60))
}

/// Log lines for one connection of a key-value server (lessons 05, 07 and 08), numbered so that
/// they can be told apart: `#3 disconnected`. `println!` locks stdout for each line, so lines
/// printed by different threads never mix.
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
        println!("#{} {text}", self.number);
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
pub fn close_gracefully(conn: &mut TcpStream) -> io::Result<()> {
    conn.shutdown(Shutdown::Write)?;
    conn.set_read_timeout(Some(DRAIN_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    let mut discarded = 0;
    while discarded < DRAIN_LIMIT {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => discarded += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Timed out, or the client reset: either way we are done listening.
            Err(_) => break,
        }
    }
    Ok(())
}
// ANCHOR_END: close_gracefully

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
