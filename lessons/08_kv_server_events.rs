//! # Lesson 08: one thread, many clients: an event loop
//!
//! Lesson 07 gives every client a thread, and each thread spends its life blocked in `read`,
//! waiting for its one client. This server serves the same protocol to just as many clients with
//! a single thread. Its sockets never block: instead of waiting in `read` on one socket, the
//! thread asks the kernel "which of these sockets can I use now?" (`poll`), serves exactly those,
//! and asks again. That loop is an *event loop*; Redis, nginx and Node.js are built around one.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 08_kv_server_events                  # terminal 1 (Ctrl-C stops it)
//! nc 127.0.0.1 65436                                   # terminal 2: connect, type nothing
//! nc 127.0.0.1 65436                                   # terminal 3: SET a 1, GET a -- answered
//! pid=$(ss -Hltnp 'sport = :65436' | grep -o 'pid=[0-9]*' | cut -d= -f2)
//! grep Threads /proc/$pid/status                      # Threads: 2, however many clients
//! ```
//!
//! (The second thread is the `ctrlc` crate's, which waits for Ctrl-C; see `wake_on_ctrl_c`.)
//!
//! What changes from lesson 07:
//! - **Non-blocking sockets.** `read`, `write` and `accept` return at once. When there is nothing
//!   to read, or no room to write, they fail with `WouldBlock` (EAGAIN) instead of waiting.
//! - **`poll`** waits for many sockets at once and says which are ready.
//! - **State per connection**, kept between calls: the bytes received but not answered yet, the
//!   replies not sent yet, and where the conversation is (serving, finishing, hanging up). In
//!   lesson 07 that state lived on each thread's stack, in local variables and in where the code
//!   was waiting.
//! - **Back-pressure.** A client that sends commands but does not read the replies is no longer
//!   stopped by a `write` that blocks: this server stops reading from it instead, until the
//!   replies have gone out.
//! - **No locks.** One thread owns the store.
//!
//! The protocol, the replies, `--max-connections`, `--quiet` and the log lines are lesson 07's.
//! `cargo bench --bench kv_bench` measures this server against lesson 07 and Redis.
//!
//! `poll` is POSIX, so this runs on Linux and macOS (on Windows, use WSL).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use socket_workbook::kv::{Command, MAX_LINE, Reply, Store};
use socket_workbook::lesson::{
    self, ACCEPT_PAUSE, ConnectionLog, DRAIN_LIMIT, DRAIN_TIMEOUT, Deadline, ListenArgs, ManyClientsArgs,
};
use socket_workbook::line_buffer::LineBuffer;
use socket_workbook::log_error;

/// Lesson 08: a key-value store for many clients at once, in one thread, with an event loop.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65436>,
    /// `--max-connections` and `--quiet`.
    #[command(flatten)]
    serving: ManyClientsArgs,
}

/// The most reply bytes a connection may have waiting to be sent. Past it, the server answers no
/// more of that client's commands and reads nothing more from it until the client has read its
/// replies (back-pressure): per-connection memory stays bounded.
const OUTBOX_LIMIT: usize = 64 * 1024;

/// How many connections the kernel may hold for us, complete but not yet accepted.
const BACKLOG: i32 = 1024;

// ANCHOR: client
/// Everything the server must remember about one client between two turns of the loop. In
/// lesson 07 the connection's thread kept this on its stack; here it has to be written down.
struct Client {
    conn: TcpStream,
    log: ConnectionLog,
    /// Bytes received and not answered yet: at most MAX_LINE + 1 (see src/line_buffer.rs).
    inbox: LineBuffer,
    /// Replies not sent yet. Stays near OUTBOX_LIMIT: no command is answered once it is reached.
    /// Empty, with no memory, while there is nothing to send.
    outbox: Vec<u8>,
    /// The inbox may still hold complete commands: answering stopped because the outbox was full.
    commands_waiting: bool,
    phase: Phase,
}

/// Where the conversation with a client is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Reading commands and answering them.
    Serving,
    /// The client has closed its sending side (`read` returned 0): answer what it sent, send
    /// the replies, then close.
    ClientFinished,
    /// The client sent a line over the cap: send what is in the outbox (ending with
    /// `ERROR line too long`), then hang up.
    SendingLastReply,
    /// Our sending side is shut down; read and discard what the client still sends until it
    /// closes, `DRAIN_LIMIT` bytes have come, or the time is up. Then close.
    Draining { until: Deadline, discarded: usize },
}
// ANCHOR_END: client

/// What the loop does with a client after serving it.
enum Next {
    KeepOpen,
    /// Close the connection; `Err` if it failed (the log says why).
    Close(io::Result<()>),
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Status 1 and one line `error: ...` if the server cannot start, or `poll` fails.
    lesson::exit_status(serve_forever(&args))
}

fn serve_forever(args: &Args) -> io::Result<()> {
    let listener = TcpListener::bind((args.listen.host.as_str(), args.listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&args.listen.address(), &err));
    if let Err(err) = lesson::set_listen_backlog(&listener, BACKLOG) {
        log_error!("warning: the listen backlog stays at 128: {err}");
    }
    // ANCHOR: nonblocking_listener
    // From now on `accept` never waits: with no connection in the backlog it fails with
    // `WouldBlock`. We call it only when `poll` says a connection is there.
    listener.set_nonblocking(true)?;
    // ANCHOR_END: nonblocking_listener
    let wake = wake_on_ctrl_c()?;
    // Announced only now, when Ctrl-C is handled: whoever waits for this line (you, a test,
    // the benchmark) may stop the server as soon as it appears.
    lesson::announce_listening(&listener)?;
    let mut server = Server {
        listener,
        wake,
        store: Store::new(),
        clients: Vec::new(),
        max_connections: args.serving.max_connections as usize,
        per_command_log: !args.serving.quiet,
        connections: 0,
        accept_paused_until: None,
    };
    server.run()
}

/// The event loop's state: the listening socket, the clients, the store. One thread owns all
/// of it, so nothing here needs a lock.
struct Server {
    listener: TcpListener,
    /// Becomes readable when Ctrl-C (SIGINT) or SIGTERM arrives.
    wake: UnixStream,
    store: Store,
    clients: Vec<Client>,
    max_connections: usize,
    per_command_log: bool,
    /// Connections accepted since the start, to number them in the log.
    connections: u64,
    accept_paused_until: Option<Instant>,
}

// ANCHOR: poll_interest
/// What `poll` should watch a client for: `POLLIN` when we want to read from it, `POLLOUT` when
/// we have something to write (or commands to answer once there is room). Asking for `POLLOUT`
/// with nothing to write would wake the loop at once, every time: a socket with room in its
/// send buffer is always "ready to write".
fn interest(client: &Client) -> libc::c_short {
    match client.phase {
        Phase::Serving => {
            let mut events = 0;
            if !client.commands_waiting && client.outbox.len() < OUTBOX_LIMIT {
                events |= libc::POLLIN;
            }
            if !client.outbox.is_empty() || client.commands_waiting {
                events |= libc::POLLOUT;
            }
            events
        }
        Phase::ClientFinished | Phase::SendingLastReply => libc::POLLOUT,
        Phase::Draining { .. } => libc::POLLIN,
    }
}
// ANCHOR_END: poll_interest

impl Server {
    // ANCHOR: event_loop
    fn run(&mut self) -> io::Result<()> {
        // One entry per socket to watch, rebuilt every turn: [wake, listener, client 0, ...].
        let mut watched: Vec<libc::pollfd> = Vec::new();
        loop {
            watched.clear();
            watched.push(watch(self.wake.as_raw_fd(), libc::POLLIN));
            watched.push(watch(self.listener.as_raw_fd(), self.listener_interest()));
            for client in &self.clients {
                watched.push(watch(client.conn.as_raw_fd(), interest(client)));
            }

            // The one place this thread waits: until a socket is ready, or the next deadline.
            wait_until_ready(&mut watched, self.next_deadline())?;

            if watched[0].revents != 0 {
                self.shut_down();
                return Ok(());
            }
            // Serve every client whose socket is ready, each for one turn. `watched[2 + i]`
            // belongs to `self.clients[i]`: no client is added until this is done, and
            // `retain_mut` visits every client once, in order, so `index` stays in step even
            // while finished clients are removed.
            let now = Instant::now();
            let mut index = 0;
            self.clients.retain_mut(|client| {
                let ready = watched[2 + index].revents;
                index += 1;
                let next = if ready != 0 {
                    serve_ready_client(client, ready, &mut self.store)
                } else {
                    Next::KeepOpen
                };
                match next {
                    Next::KeepOpen if client.drain_time_is_up(now) => {
                        client.log.line("disconnected");
                        false
                    }
                    Next::KeepOpen => true,
                    // Removing the client drops its `TcpStream`, which closes the socket.
                    Next::Close(Ok(())) => {
                        client.log.line("disconnected");
                        false
                    }
                    Next::Close(Err(err)) => {
                        client.log.line(&format!("disconnected abruptly: {err}"));
                        false
                    }
                }
            });
            if watched[1].revents != 0 {
                self.accept_new_clients();
            }
        }
    }
    // ANCHOR_END: event_loop

    fn listener_interest(&mut self) -> libc::c_short {
        match self.accept_paused_until {
            Some(until) if Instant::now() < until => 0,
            _ => {
                self.accept_paused_until = None;
                libc::POLLIN
            }
        }
    }

    // ANCHOR: next_deadline
    /// The nearest moment the loop must wake up even if no socket is ready: a draining client's
    /// time is up, or accepting may start again.
    fn next_deadline(&self) -> Option<Instant> {
        let draining = self.clients.iter().filter_map(|client| match client.phase {
            Phase::Draining { until, .. } => Some(until.instant()),
            _ => None,
        });
        draining.chain(self.accept_paused_until).min()
    }
    // ANCHOR_END: next_deadline

    // ANCHOR: accept
    /// Accepts every connection waiting in the backlog (`poll` said there is at least one).
    fn accept_new_clients(&mut self) {
        loop {
            let (conn, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                // The backlog is empty: back to the loop.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if lesson::out_of_resources(&err) => {
                    // "Too many open files", most often. The connection stays in the backlog
                    // and the listener stays ready: without a pause, the loop would spin on
                    // this error, and the clients that are connected would wait behind it.
                    // Lessons 03 to 07 pause by sleeping; one thread serving everyone cannot
                    // sleep, so it stops watching the listener until the pause is over.
                    log_error!("accept failed: {err}; not accepting for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
                Err(err) => {
                    // The client gave up before we got to it (ECONNABORTED), or another error
                    // about this one connection: the next one may be fine.
                    log_error!("accept failed: {err}");
                    continue;
                }
            };
            self.connections += 1;
            let log = ConnectionLog {
                number: self.connections,
                per_command: self.per_command_log,
            };
            if self.clients.len() >= self.max_connections {
                log.line(&format!(
                    "refused {peer}: already serving {} clients (--max-connections)",
                    self.max_connections
                ));
                lesson::refuse_over_cap(conn);
                continue;
            }
            match Client::new(conn, log) {
                Ok(client) => {
                    log.line(&format!("connected from {peer}"));
                    self.clients.push(client);
                }
                Err(err) => log.line(&format!("could not set up the connection from {peer}: {err}")),
            }
        }
    }
    // ANCHOR_END: accept

    fn shut_down(&self) {
        lesson::log_shutting_down(self.clients.len());
        // Returning from `main` drops the server, which closes every socket. A client whose
        // bytes we have all read reads the end of the stream; one whose commands still wait
        // unread in our receive buffer (back-pressure stopped us reading) is reset instead.
        // Replies still in an outbox are lost; the store lives in memory only, so there is
        // nothing to save.
    }
}

fn watch(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

// ANCHOR: poll
/// Waits until at least one socket in `watched` is ready for what it is watched for, or until
/// `deadline`, and fills in each entry's `revents`.
fn wait_until_ready(watched: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<()> {
    // Milliseconds to wait; -1 waits for as long as it takes. Rounded up, so that the loop does
    // not wake a fraction of a millisecond early and find nothing to do.
    let timeout = match deadline {
        None => -1,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        }
    };
    // SAFETY: `watched` is a valid array of `watched.len()` pollfd structs, which poll(2) reads
    // and writes only while the call lasts.
    let ready = unsafe { libc::poll(watched.as_mut_ptr(), watched.len() as libc::nfds_t, timeout) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        // A signal arrived while we waited: no socket changed, just look again.
        if err.kind() == io::ErrorKind::Interrupted {
            watched.iter_mut().for_each(|entry| entry.revents = 0);
            return Ok(());
        }
        return Err(err);
    }
    Ok(())
}
// ANCHOR_END: poll

// ANCHOR: wake
/// Lets Ctrl-C (SIGINT) and SIGTERM wake the loop. The loop sleeps in `poll`, watching sockets,
/// so the signal has to become something `poll` sees: a byte on a socket. The `ctrlc` crate runs
/// our closure on a thread of its own; the closure writes one byte into one end of a socket pair,
/// the loop watches the other end, wakes up, and shuts down between two turns, never in the
/// middle of serving a client. (This is the "self-pipe trick".)
fn wake_on_ctrl_c() -> io::Result<UnixStream> {
    let (watched_end, signal_end) = UnixStream::pair()?;
    let installed = ctrlc::set_handler(move || {
        let _ = (&signal_end).write(&[1]);
    });
    if let Err(err) = installed {
        log_error!("warning: Ctrl-C will stop the server without a message: {err}");
    }
    Ok(watched_end)
}
// ANCHOR_END: wake

impl Client {
    fn new(conn: TcpStream, log: ConnectionLog) -> io::Result<Client> {
        // A connection from a non-blocking listener is blocking on Linux and non-blocking on
        // macOS: say what we want.
        conn.set_nonblocking(true)?;
        // Send each write at once; replies are already batched (see lesson 07).
        conn.set_nodelay(true)?;
        Ok(Client {
            conn,
            log,
            inbox: LineBuffer::new(MAX_LINE),
            outbox: Vec::new(),
            commands_waiting: false,
            phase: Phase::Serving,
        })
    }

    fn drain_time_is_up(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Draining { until, .. } if now >= until.instant())
    }
}

// ANCHOR: serve_ready_client
/// One turn for a client whose socket `poll` reported ready (`ready` holds what it reported):
/// read at most once, answer the complete commands, write what the socket takes. Nothing here
/// waits, and one turn is bounded (one read, one outbox of replies), so a client that sends a
/// lot cannot keep the loop from the others for long.
fn serve_ready_client(client: &mut Client, ready: libc::c_short, store: &mut Store) -> Next {
    if let Phase::Draining { .. } = client.phase {
        return discard_input(client);
    }
    // POLLHUP and POLLERR come whether we asked or not; a `read` then reports what happened.
    let readable = ready & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    if readable && interest(client) & libc::POLLIN != 0 {
        // Ready means this `read` returns at once: with bytes, with 0 (the client closed its
        // side), or with an error. `WouldBlock` happens only if the bytes went away meanwhile.
        match client.inbox.read_from(&mut client.conn) {
            Ok(0) => client.phase = Phase::ClientFinished,
            Ok(_) => {}
            Err(err) if would_block(&err) => {}
            Err(err) => return Next::Close(Err(err)),
        }
    }
    answer_commands(client, store);
    if let Err(err) = send_replies(client) {
        return Next::Close(Err(err));
    }
    let everything_sent = client.outbox.is_empty() && !client.commands_waiting;
    match client.phase {
        Phase::ClientFinished if everything_sent => Next::Close(Ok(())),
        Phase::SendingLastReply if client.outbox.is_empty() => start_draining(client),
        _ => Next::KeepOpen,
    }
}
// ANCHOR_END: serve_ready_client

// ANCHOR: answer_commands
/// Answers complete commands from the inbox into the outbox, until none is left or the outbox is
/// full. In the second case the rest wait in the inbox (`commands_waiting`), and the client gets
/// no more turns to read until its replies have gone out.
fn answer_commands(client: &mut Client, store: &mut Store) {
    if !matches!(client.phase, Phase::Serving | Phase::ClientFinished) {
        return;
    }
    while client.outbox.len() < OUTBOX_LIMIT {
        let Some(line) = client.inbox.next_line() else {
            client.commands_waiting = false;
            if client.inbox.line_too_long() {
                refuse_long_line(client);
            }
            return;
        };
        let reply = match Command::parse(line) {
            Ok(command) => store.apply(command),
            Err(err) => Reply::from(err),
        };
        client.log.command(line, &reply);
        reply.encode_into(&mut client.outbox);
    }
    client.commands_waiting = true;
}
// ANCHOR_END: answer_commands

// ANCHOR: send_replies
/// Writes as much of the outbox as the socket's send buffer takes now. A `write` on a
/// non-blocking socket may take fewer bytes than offered (the buffer is nearly full), or none
/// (`WouldBlock`): the rest stays in the outbox, and `poll` will say when there is room again.
fn send_replies(client: &mut Client) -> io::Result<()> {
    let mut sent = 0;
    while sent < client.outbox.len() {
        match client.conn.write(&client.outbox[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(err) if would_block(&err) => break,
            Err(err) => return Err(err),
        }
    }
    // Forget what was sent; the unsent rest moves to the front. Once everything is sent, give
    // the memory back: a client waiting for its next command holds no buffer.
    client.outbox.drain(..sent);
    if client.outbox.is_empty() {
        client.outbox = Vec::new();
    }
    Ok(())
}
// ANCHOR_END: send_replies

fn would_block(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// More than MAX_LINE bytes without a `\n`: as in lessons 05 and 07, say why and hang up.
fn refuse_long_line(client: &mut Client) {
    let reply = Reply::line_too_long();
    client.log.line_too_long(&reply);
    reply.encode_into(&mut client.outbox);
    client.phase = Phase::SendingLastReply;
}

// ANCHOR: draining
/// The last reply is sent: shut down our sending side, so the client reads the end of the
/// stream after it, and start discarding what the client still sends. Lessons 05 and 07 did this
/// with a blocking read and a read timeout; a loop that serves everyone cannot wait, so the
/// timeout becomes a deadline that `poll` wakes up for.
fn start_draining(client: &mut Client) -> Next {
    if let Err(err) = client.conn.shutdown(Shutdown::Write) {
        return Next::Close(Err(err));
    }
    client.phase = Phase::Draining {
        until: Deadline::after(DRAIN_TIMEOUT),
        discarded: 0,
    };
    Next::KeepOpen
}

/// Reads and throws away what the client sends, until it closes or has sent `DRAIN_LIMIT`.
fn discard_input(client: &mut Client) -> Next {
    let Phase::Draining { until, discarded } = client.phase else {
        return Next::KeepOpen;
    };
    let mut buf = [0u8; 4096];
    match client.conn.read(&mut buf) {
        Ok(0) => Next::Close(Ok(())),
        Ok(n) if discarded + n >= DRAIN_LIMIT => Next::Close(Ok(())),
        Ok(n) => {
            client.phase = Phase::Draining {
                until,
                discarded: discarded + n,
            };
            Next::KeepOpen
        }
        Err(err) if would_block(&err) => Next::KeepOpen,
        // The client reset the connection: it is gone either way.
        Err(_) => Next::Close(Ok(())),
    }
}
// ANCHOR_END: draining
