//! # Lesson 07: a key-value server for many clients at once
//!
//! Lesson 05's server talks to one client at a time: while it waits for that client's next
//! command, every other client waits in the kernel's queue, and a client that connects and says
//! nothing blocks everybody. This server speaks the same protocol with the same code (`src/kv.rs`),
//! but gives every connection a thread of its own, so a slow or idle client only ever waits for
//! itself. The clients share one store, behind a lock.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 07_kv_server_threads                 # terminal 1 (Ctrl-C stops it)
//! nc 127.0.0.1 65435                                   # terminal 2: connect, type nothing
//! nc 127.0.0.1 65435                                   # terminal 3: SET a 1, GET a -- answered
//! ```
//!
//! Do the same with `05_kv_server` (port 65433): terminal 3 gets no answer until terminal 2 quits.
//!
//! What this lesson adds to lesson 05:
//! - **A thread per connection**, and a cap on how many (`--max-connections`): the one over the
//!   cap is told `ERROR server busy: too many connections` and disconnected.
//! - **Shared state**: one `Store` behind a `Mutex`, held only while a command is carried out.
//! - **Pipelining done right**: one `read` may bring many commands. They are all answered into one
//!   buffer, which goes out in one `write`, so a client that sends 16 commands at once costs the
//!   server two system calls (one `read`, one `write`), not 17.
//! - **Ctrl-C** (SIGINT, or SIGTERM): a log line, then exit with status 0.
//!
//! `--quiet` turns off the log line per command: a benchmark sends hundreds of thousands of
//! commands a second, and printing a line costs more than carrying out a command.
//! `cargo bench --bench kv_bench` measures this server against Redis (see the README).

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{self, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use clap::Parser;
use socket_workbook::kv::{Command, MAX_LINE, Reply, Store};
use socket_workbook::lesson::{self, ConnectionLog, ListenArgs, ManyClientsArgs};
use socket_workbook::line_buffer::LineBuffer;
use socket_workbook::log_error;

/// Lesson 07: a key-value store for many clients at once, one thread per connection.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65435>,
    /// `--max-connections` and `--quiet`.
    #[command(flatten)]
    serving: ManyClientsArgs,
}

/// Replies are collected in a buffer and written when no complete command is left. A client can
/// pipeline thousands of commands in one read, each with a reply up to 64 KiB long, so the buffer
/// also goes out whenever it holds this much: per-connection memory stays bounded.
const OUTBOX_LIMIT: usize = 64 * 1024;

/// How many connections the kernel may hold for us, complete but not yet accepted.
const BACKLOG: i32 = 1024;

/// Each connection thread gets this much stack. Rust's default is 2 MiB of address space per
/// thread; ours needs far less (its buffers live on the heap), so a thousand threads reserve
/// 256 MiB of address space instead of 2 GiB. Only the pages a thread touches use real memory.
const THREAD_STACK: usize = 256 * 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    // Status 1 and one line `error: ...` if the server cannot even start.
    lesson::exit_status(serve_forever(&args))
}

fn serve_forever(args: &Args) -> io::Result<()> {
    let listener = TcpListener::bind((args.listen.host.as_str(), args.listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&args.listen.address(), &err));
    if let Err(err) = lesson::set_listen_backlog(&listener, BACKLOG) {
        log_error!("warning: the listen backlog stays at 128: {err}");
    }

    // ANCHOR: shared_state
    // One store for every client. `Arc` (an atomically counted reference) lets every connection
    // thread own a handle to it; the `Mutex` lets one thread at a time use it.
    //
    // Why a Mutex and not a RwLock (many readers or one writer)? `Store::apply` takes `&mut self`
    // for every command, a GET included, so every command needs the store to itself anyway. And
    // the lock is held for one hash-map operation, well under a microsecond: threads seldom meet
    // there, so letting readers share it would save little, and a RwLock costs more to take.
    let store = Arc::new(Mutex::new(Store::new()));
    // How many connections are being served right now, for the cap.
    let open = Arc::new(AtomicUsize::new(0));
    // ANCHOR_END: shared_state

    // ANCHOR: ctrl_c
    // Ctrl-C in the terminal sends SIGINT; `kill` and service managers send SIGTERM. The `ctrlc`
    // crate runs this closure on a thread of its own (not inside the signal handler), so it may
    // print. Exiting closes every socket: the kernel refuses new connections at once. A client
    // whose bytes we have all read gets a FIN and reads the end of the stream; a client whose
    // commands still wait unread in our receive buffer (it pipelined more than we have read)
    // gets a reset, sees "connection reset by peer", and loses the replies not yet delivered to
    // it. The store lives in memory only, so nothing needs saving; a reply being written at
    // that very moment can be cut short, which a client sees as a connection that ended early.
    // (A server that writes to disk would instead stop each connection thread after its
    // current command and wait for them all.)
    let open_at_exit = Arc::clone(&open);
    let installed = ctrlc::set_handler(move || {
        lesson::log_shutting_down(open_at_exit.load(Ordering::SeqCst));
        process::exit(0);
    });
    if let Err(err) = installed {
        log_error!("warning: Ctrl-C will stop the server without a message: {err}");
    }
    // ANCHOR_END: ctrl_c

    // Announced only now, when Ctrl-C is handled: whoever waits for this line (you, a test,
    // the benchmark) may stop the server as soon as it appears.
    lesson::announce_listening(&listener)?;

    // ANCHOR: accept_loop
    let mut connections: u64 = 0;
    loop {
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                // Most often "too many open files": `after_failed_accept` logs it and waits a
                // moment for connections to close instead of spinning through the same error.
                lesson::after_failed_accept(&err);
                continue;
            }
        };
        connections += 1;
        let log = ConnectionLog {
            number: connections,
            per_command: !args.serving.quiet,
        };
        // Take a slot, or refuse. Only this thread adds to `open`, so the check and the
        // increment cannot race with another accept; threads that finish only subtract.
        if open.load(Ordering::SeqCst) >= args.serving.max_connections as usize {
            log.line(&format!(
                "refused {peer}: already serving {} clients (--max-connections)",
                args.serving.max_connections
            ));
            lesson::refuse_over_cap(conn);
            continue;
        }
        let slot = Slot::take(&open);
        log.line(&format!("connected from {peer}"));
        let store = Arc::clone(&store);
        let spawned = thread::Builder::new()
            .name(format!("connection #{connections}"))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let mut conn = conn;
                let result = serve_client(&mut conn, &store, &log);
                // Give the slot back before saying so: whoever reads "disconnected" can connect
                // again at once without being refused.
                drop(slot);
                match result {
                    Ok(()) => log.line("disconnected"),
                    Err(err) => log.line(&format!("disconnected abruptly: {err}")),
                }
                // The thread ends here; `conn` is dropped, which closes the socket.
            });
        if let Err(err) = spawned {
            // The system would not give us another thread. The closure (with the connection
            // and its slot) has been dropped: that client sees its connection close.
            log_error!("#{connections} could not start a thread: {err}; connection closed");
        }
    }
    // ANCHOR_END: accept_loop
}

// ANCHOR: thread_per_connection
// Why a thread per connection, and not a fixed pool of, say, 8 worker threads? A pool worker
// serves one connection until that client leaves; with 8 idle clients connected, the ninth
// waits, exactly the head-of-line blocking of lesson 05, just 8 clients later. A thread per
// connection never makes a client wait for another one. Its price is a thread for each client,
// even an idle one: a stack, a kernel task, and a switch between threads whenever another
// client has something to say. That is cheap for hundreds or a few thousand clients, so the cap
// keeps us there; servers with a hundred thousand mostly idle connections use an event loop
// instead (one thread watching many sockets; see the book).
// ANCHOR_END: thread_per_connection

/// One counted connection. Dropping it (when the thread ends, also by a panic) frees the slot.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::SeqCst);
        Slot(Arc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// ANCHOR: serve_client
/// Answers every command `conn` sends, until the client closes the connection (`Ok`) or the
/// connection fails (`Err`).
fn serve_client(conn: &mut TcpStream, store: &Mutex<Store>, log: &ConnectionLog) -> io::Result<()> {
    // Send each write at once: replies are already batched, so there is nothing to gain from
    // letting the kernel hold them back until the last write is acknowledged (Nagle's
    // algorithm), and a client that delays its acknowledgements (delayed ACK) makes that wait
    // 40 ms.
    conn.set_nodelay(true)?;
    // The bytes received and not answered yet: at most MAX_LINE + 1 (see src/line_buffer.rs).
    let mut inbox = LineBuffer::new(MAX_LINE);
    // The replies not written yet: at most OUTBOX_LIMIT plus one reply.
    let mut outbox: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // Block until the client sends something, or goes. This is the only place a
        // connection thread waits for its client, and it waits for nobody else.
        match inbox.read_from(conn) {
            // End of stream: the client closed (or shut down) its side. An unfinished line
            // without its `\n` is not a command, so it gets no reply.
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }

        // ANCHOR: pipelining
        // This read may hold many commands (pipelining): answer every complete one...
        while let Some(line) = inbox.next_line() {
            answer(line, store, log, &mut outbox);
            if outbox.len() >= OUTBOX_LIMIT {
                conn.write_all(&outbox)?;
                outbox.clear();
            }
        }
        if inbox.line_too_long() {
            conn.write_all(&outbox)?;
            return refuse_long_line(conn, log);
        }
        // ...then send all their replies in one write, and go back to reading.
        if !outbox.is_empty() {
            conn.write_all(&outbox)?;
            outbox.clear();
        }
        // ANCHOR_END: pipelining
    }
}
// ANCHOR_END: serve_client

// ANCHOR: answer
/// Parses one line (without its `\n`), carries it out, and appends the reply line to `outbox`.
fn answer(line: &[u8], store: &Mutex<Store>, log: &ConnectionLog, outbox: &mut Vec<u8>) {
    // Parsing touches only this client's bytes: it happens before, not inside, the lock.
    let reply = match Command::parse(line) {
        Ok(command) => apply(store, command),
        Err(err) => Reply::from(err),
    };
    // Log before the reply can reach the client (it is sent after this line is printed).
    log.command(line, &reply);
    // The reply's bytes go straight into the outbox (`src/kv.rs`): no buffer of its own.
    reply.encode_into(outbox);
}

/// Carries out one command on the shared store. The lock is held for this call only.
fn apply(store: &Mutex<Store>, command: Command) -> Reply {
    // A Mutex is "poisoned" if a thread panicked while holding it. `Store::apply` does not
    // panic, and if it ever did, the map would still be a valid map: keep serving.
    let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
    store.apply(command)
    // The guard is dropped here, which unlocks.
}
// ANCHOR_END: answer

/// More than MAX_LINE bytes without a `\n`: as in lesson 05, say why and end the connection
/// gracefully (only this connection's thread waits while it drains).
fn refuse_long_line(conn: &mut TcpStream, log: &ConnectionLog) -> io::Result<()> {
    let reply = Reply::line_too_long();
    log.line_too_long(&reply);
    conn.write_all(&reply.to_bytes())?;
    lesson::close_gracefully(conn)
}
