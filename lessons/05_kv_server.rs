//! # Lesson 05: a key-value server
//!
//! A server that remembers: clients store short texts under names (`SET key value`), read them back
//! (`GET key`) and remove them (`DELETE key`), one command per line, one reply line per command.
//! What one client stores, the next one reads: the store lives as long as the server, not as long
//! as a connection. The protocol is written down in full in `src/kv.rs` (`cargo doc --open`, module
//! `kv`); the command parsing and the store live there too, so that other lessons and the tests reuse them.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 05_kv_server                         # terminal 1 (Ctrl-C stops it)
//! nc 127.0.0.1 65433                                   # terminal 2: type SET a 1, GET a, DELETE a
//! cargo run --bin 06_kv_client -- GET a                # terminal 3, after quitting nc (Ctrl-C)
//! ```
//!
//! The lesson is in the read loop. TCP delivers bytes, not lines: one `read` may return half a
//! command, or three commands and the start of a fourth. So the server keeps the bytes of the line
//! it has not finished yet, and answers each line as soon as its `\n` arrives. And because a client
//! could send bytes without ever sending a `\n`, that unfinished line has a cap (64 KiB): past it,
//! the client gets `ERROR line too long` and is disconnected, and the server's memory stays bounded.
//!
//! Two limits, on purpose:
//! - One client at a time. While one is connected, the next ones wait in the kernel's queue; a
//!   client that connects and sends nothing (or never reads its replies) holds up everybody. (Try
//!   it: leave `nc` connected and run `06_kv_client`; it waits, then gives up.) Lesson 07
//!   serves many clients at once.
//! - A reply does not say what kind of reply it is: after `SET answer OK`, `GET answer` replies
//!   `OK`, just like a successful `SET`. A client cannot tell a stored value from a status. Typed
//!   replies fix that (see the exercises in the book's chapter).
//!
//! `--quiet` turns off the log line per command (a benchmark sends far too many of them).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

use clap::Parser;
use socket_workbook::kv::{Command, MAX_LINE, Reply, Store};
use socket_workbook::lesson::{self, ConnectionLog, ListenArgs};

/// Lesson 05: a key-value store for one client at a time, forever.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65433>,
    /// Do not log every command and reply (connections are still logged).
    #[arg(long)]
    quiet: bool,
}

/// How much one `read` may return. Any size works; commands longer than this simply take
/// several reads, which is the point of this lesson.
const READ_BUFFER: usize = 4096;

fn main() -> ExitCode {
    let args = Args::parse();
    // Status 1 and one line `error: ...` if the server cannot even start.
    lesson::exit_status(serve_forever(&args))
}

fn serve_forever(args: &Args) -> io::Result<()> {
    let listener = TcpListener::bind((args.listen.host.as_str(), args.listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&args.listen.address(), &err));
    lesson::announce_listening(&listener)?;

    // ANCHOR: accept_loop
    // One store for every client, created before the first one connects.
    let mut store = Store::new();
    let mut connections: u64 = 0;
    loop {
        let (mut conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            // Log it, pause if we are out of file descriptors, and keep serving.
            Err(err) => {
                lesson::after_failed_accept(&err);
                continue;
            }
        };
        connections += 1;
        let log = ConnectionLog {
            number: connections,
            per_command: !args.quiet,
        };
        log.line(&format!("connected from {peer}"));
        // Whatever happens to this connection, the server goes back to `accept` afterwards.
        match serve_client(&mut conn, &mut store, &log) {
            Ok(()) => log.line("disconnected"),
            // Most often "connection reset by peer": the client closed, or its process ended,
            // with our replies still unread, so its kernel answered with a reset instead of a
            // normal close. Its problem, not ours.
            Err(err) => log.line(&format!("disconnected abruptly: {err}")),
        }
    }
    // ANCHOR_END: accept_loop
}

// ANCHOR: serve_client
/// Answers every command `conn` sends, until the client closes the connection (`Ok`) or the
/// connection fails (`Err`).
fn serve_client(conn: &mut TcpStream, store: &mut Store, log: &ConnectionLog) -> io::Result<()> {
    // Send each small reply at once. Otherwise the kernel holds a reply back while the previous
    // one is unacknowledged (Nagle's algorithm), and the client's kernel may delay that
    // acknowledgement by 40 ms, hoping to send it with data (delayed ACK): together, a stall.
    conn.set_nodelay(true)?;

    // The start of a line whose `\n` has not arrived yet. Never longer than MAX_LINE.
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; READ_BUFFER];
    loop {
        let n = match conn.read(&mut buf) {
            // End of stream: the client closed (or shut down) its side.
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };

        // ANCHOR: split_lines
        // What this read returned can be the end of a line begun in an earlier read, whole
        // lines, and the beginning of a line the next read will finish, in any combination.
        let mut received = &buf[..n];
        while let Some(newline) = received.iter().position(|&b| b == b'\n') {
            if !append_within_cap(&mut line, &received[..newline]) {
                return refuse_long_line(conn, log);
            }
            answer(conn, &line, store, log)?;
            line.clear();
            received = &received[newline + 1..];
        }
        // No `\n` in what is left: keep it until the rest of its line arrives.
        if !append_within_cap(&mut line, received) {
            return refuse_long_line(conn, log);
        }
        // ANCHOR_END: split_lines
    }
}
// ANCHOR_END: serve_client

// ANCHOR: cap
/// Appends `bytes` to the unfinished `line`, unless that would make it longer than MAX_LINE.
/// The check comes first: a client must never make us allocate more than the cap.
fn append_within_cap(line: &mut Vec<u8>, bytes: &[u8]) -> bool {
    if line.len() + bytes.len() > MAX_LINE {
        return false;
    }
    line.extend_from_slice(bytes);
    true
}
// ANCHOR_END: cap

// ANCHOR: answer
/// Parses one line (without its `\n`), carries it out, and sends the one reply line.
fn answer(conn: &mut TcpStream, line: &[u8], store: &mut Store, log: &ConnectionLog) -> io::Result<()> {
    let reply = match Command::parse(line) {
        Ok(command) => store.apply(command),
        Err(err) => Reply::from(err),
    };
    // Log before writing: whoever reads the reply can be sure the log line is already out.
    log.command(line, &reply);
    conn.write_all(&reply.to_bytes())
}
// ANCHOR_END: answer

// ANCHOR: refuse_long_line
/// More than MAX_LINE bytes without a `\n`: we cannot know where the next command would start,
/// so we say why and end the connection, gracefully (`close_gracefully` is in `src/lesson.rs`,
/// because lesson 07 hangs up the same way).
fn refuse_long_line(conn: &mut TcpStream, log: &ConnectionLog) -> io::Result<()> {
    let reply = Reply::line_too_long();
    log.line_too_long(&reply);
    conn.write_all(&reply.to_bytes())?;
    lesson::close_gracefully(conn)
}
// ANCHOR_END: refuse_long_line
