//! # Lesson 10: a UDP echo server and client
//!
//! UDP has no connections and no byte stream: a program sends *datagrams*, each one a message
//! that arrives whole or not at all. This program is both sides: the server sends every datagram
//! back, unchanged, to the address it came from; the client sends its messages one by one and
//! waits a limited time for each reply.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 10_udp_echo -- server                  # terminal 1: "listening on 127.0.0.1:65440"
//! nc -u 127.0.0.1 65440                                  # terminal 2: type a line, see it come back
//! cargo run --bin 10_udp_echo -- client one two three    # or the lesson's own client
//! ```
//!
//! What to notice:
//! - three sends are three datagrams, received as three (over TCP, lesson 04 showed three writes
//!   read as one);
//! - the server's buffer holds at most `--max-datagram` bytes; a longer datagram loses its tail,
//!   and the server sees that it did (`MSG_TRUNC`) and logs the real length;
//! - there is no connection: one socket serves every client, and `recv_from` says who sent each
//!   datagram, so that is where the reply goes;
//! - stop the server and run the client again: it is told at once that nothing listens, because
//!   its socket is *connected*; with `--unconnected` it hears nothing and gives up after
//!   `--timeout-ms`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use socket_workbook::datagram::{Received, recv_from_reporting_truncation};
use socket_workbook::escape::escape_bytes;
use socket_workbook::lesson::{self, describe_chunk};
use socket_workbook::{log_error, log_line};

/// The largest datagram this lesson's protocol allows, and the server's default buffer size.
pub const MAX_DATAGRAM: usize = 1024;

/// Lesson 10: a UDP echo server, and a client for it.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Send every datagram back to whoever sent it.
    Server(ServerArgs),
    /// Send each message as one datagram and print the reply.
    Client(ClientArgs),
}

// ANCHOR: args
#[derive(clap::Args)]
struct ServerArgs {
    /// Address to bind. 127.0.0.1 (IPv4) and ::1 (IPv6) receive from this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// UDP port to bind (0 = let the kernel choose a free one; the real port is printed).
    #[arg(long, default_value_t = 65440)]
    port: u16,
    /// The receive buffer's size: the largest datagram received whole. A longer one loses its
    /// tail (the log says so).
    #[arg(long, default_value_t = MAX_DATAGRAM as u16, value_parser = clap::value_parser!(u16).range(1..))]
    max_datagram: u16,
    /// Do not log every datagram.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Host the server runs on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// UDP port the server is bound to.
    #[arg(long, default_value_t = 65440)]
    port: u16,
    /// How long to wait for each reply, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
    /// Do not `connect` the socket: send with `send_to` and take replies from anyone. Then
    /// nobody tells the client when nothing listens on the server's port.
    #[arg(long)]
    unconnected: bool,
    /// The messages, one datagram each (at most 1024 bytes each).
    #[arg(required = true)]
    messages: Vec<String>,
}
// ANCHOR_END: args

// How the client ends: 0 when every message got its reply, otherwise one of these.
/// A message too long to send (like a usage error).
const EXIT_TOO_LONG: u8 = 2;
/// Nothing listens on the server's port (as lessons 06 and 09 exit when refused).
const EXIT_REFUSED: u8 = 3;
/// A reply did not come in time.
const EXIT_NO_REPLY: u8 = 4;

fn main() -> ExitCode {
    match Args::parse().mode {
        Mode::Server(args) => lesson::exit_status(serve(&args)),
        Mode::Client(args) => run_client(&args),
    }
}

// ANCHOR: serve
fn serve(args: &ServerArgs) -> io::Result<()> {
    // ANCHOR: bind
    // A UDP server only binds: there is no `listen` and no `accept`, because there are no
    // connections to accept. From now on, every datagram sent to this address and port waits in
    // this one socket's receive queue, whoever sent it.
    let address = format!("{}:{}", args.host, args.port);
    let socket = UdpSocket::bind((args.host.as_str(), args.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&address, &err));
    log_line!("listening on {}", socket.local_addr()?);
    // ANCHOR_END: bind

    // One buffer for the whole run, of a fixed size: the largest datagram the server accepts.
    let max_datagram = usize::from(args.max_datagram);
    let mut buf = vec![0u8; max_datagram];
    loop {
        // ANCHOR: receive
        // One call, one whole datagram, and the address it came from (like `recv_from`, plus
        // whether it was longer than `buf`; see src/datagram.rs). Never part of a datagram,
        // never two: the boundaries the sender chose survive.
        let received = match recv_from_reporting_truncation(&socket, &mut buf) {
            Ok(received) => received,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Some systems report an earlier reply's ICMP "port unreachable" here; it concerns
            // one client that has gone, not the server.
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(err) => return Err(err),
        };
        let datagram = &buf[..received.len];
        if !args.quiet {
            log_datagram(&received, datagram, max_datagram);
        }
        // ANCHOR_END: receive

        // ANCHOR: reply
        // No connection tells us where the reply goes: the datagram did. `send_to` sends one
        // datagram, exactly these bytes, to that address, from our bound port, so the client
        // sees the reply come from the address it wrote to.
        if let Err(err) = socket.send_to(datagram, received.from) {
            // One reply that cannot be sent concerns one client: log it, serve the next.
            log_error!("could not reply to {}: {err}", received.from);
        }
        // ANCHOR_END: reply
    }
}
// ANCHOR_END: serve

// ANCHOR: log_datagram
/// `127.0.0.1:50123 sent 3 bytes: "one"`, and for a datagram cut short, how long it
/// really was.
fn log_datagram(received: &Received, datagram: &[u8], max: usize) {
    let from = received.from;
    if !received.truncated {
        log_line!("{from} sent {}", describe_chunk(datagram));
        return;
    }
    let real = match received.datagram_len {
        Some(len) => format!("{len} bytes"),
        None => format!("more than {max} bytes"),
    };
    log_line!(
        "{from} sent a datagram of {real}, larger than our {max}-byte buffer: kept {}; the rest is lost",
        describe_chunk(datagram)
    );
}
// ANCHOR_END: log_datagram

// ANCHOR: client
fn run_client(args: &ClientArgs) -> ExitCode {
    let shown_address = if args.host.contains(':') {
        format!("[{}]:{}", args.host, args.port)
    } else {
        format!("{}:{}", args.host, args.port)
    };
    match talk_to_udp_echo_server(args, &shown_address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::TooLong(len)) => {
            eprintln!(
                "error: a message of {len} bytes is longer than the largest datagram this protocol allows \
                 ({MAX_DATAGRAM} bytes); send it in pieces"
            );
            ExitCode::from(EXIT_TOO_LONG)
        }
        Err(ClientError::Refused) => {
            eprintln!(
                "error: nothing is listening on UDP {shown_address} (its kernel answered with ICMP \"port \
                 unreachable\", reported as ECONNREFUSED on our connected socket); start the server first \
                 with `cargo run --bin 10_udp_echo -- server`"
            );
            ExitCode::from(EXIT_REFUSED)
        }
        Err(ClientError::NoReply(timeout)) => {
            // A connected socket would have heard of a port where nothing listens (above).
            let or_else = if args.unconnected {
                "or nothing listens there (an unconnected UDP socket is not told)"
            } else {
                "or the server did not answer"
            };
            eprintln!(
                "error: no reply from {shown_address} within {} s: the datagram or its reply was lost, {or_else}",
                timeout.as_secs_f32()
            );
            ExitCode::from(EXIT_NO_REPLY)
        }
        Err(ClientError::Io(err)) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// What can go wrong for the client, each with its own exit code.
#[derive(Debug)]
enum ClientError {
    /// A message longer than [`MAX_DATAGRAM`].
    TooLong(usize),
    /// Nothing listens on the server's port, and our connected socket was told.
    Refused,
    /// No reply within the timeout.
    NoReply(Duration),
    Io(io::Error),
}

impl From<io::Error> for ClientError {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => ClientError::Refused,
            _ => ClientError::Io(err),
        }
    }
}

fn talk_to_udp_echo_server(args: &ClientArgs, shown_address: &str) -> Result<(), ClientError> {
    let server: SocketAddr = (args.host.as_str(), args.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{shown_address} has no address")))?;
    // Refuse what the server could not receive whole, before sending anything: the protocol's
    // largest datagram is how a UDP protocol avoids truncation.
    if let Some(long) = args.messages.iter().find(|m| m.len() > MAX_DATAGRAM) {
        return Err(ClientError::TooLong(long.len()));
    }
    // ANCHOR: client_socket
    // Port 0: any free port. The server learns it from our first datagram.
    let any_port: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("a valid address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("a valid address"),
    };
    let socket = UdpSocket::bind(any_port)?;
    if !args.unconnected {
        // `connect` on a UDP socket sends nothing. It fixes the peer: `send` goes there, `recv`
        // takes datagrams from there only, and an ICMP error about our datagrams ("port
        // unreachable") is reported on the next call, as ECONNREFUSED. An unconnected socket
        // is never told: the error could concern any of the addresses it sends to.
        socket.connect(server)?;
    }
    // Without a timeout, a lost datagram would leave `recv` waiting for ever.
    let timeout = Duration::from_millis(args.timeout_ms);
    socket.set_read_timeout(Some(timeout))?;
    // ANCHOR_END: client_socket

    let mut buf = vec![0u8; MAX_DATAGRAM];
    for message in &args.messages {
        let message = message.as_bytes();
        // ANCHOR: client_round_trip
        if args.unconnected {
            socket.send_to(message, server)?;
        } else {
            socket.send(message)?;
        }
        println!("sent     {}", escape_bytes(message));
        let reply = loop {
            let received = if args.unconnected {
                socket.recv_from(&mut buf)
            } else {
                socket.recv(&mut buf).map(|n| (n, server))
            };
            match received {
                // An unconnected socket hears from anyone: only the server's datagram is the reply.
                Ok((n, from)) if from == server => break &buf[..n],
                Ok((_, from)) => eprintln!("ignored a datagram from {from}, not from the server"),
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(ClientError::NoReply(timeout));
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err.into()),
            }
        };
        println!("received {}", escape_bytes(reply));
        // ANCHOR_END: client_round_trip
    }
    Ok(())
}
// ANCHOR_END: client
