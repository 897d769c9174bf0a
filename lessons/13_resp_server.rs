//! # Lesson 13: speaking Redis: the key-value server in RESP
//!
//! Lessons 05 to 08 speak a text protocol with an honest flaw: a reply does not say what it is.
//! After `SET answer OK`, the reply to `GET answer` is `OK`, just like the reply to a `SET`.
//! This server keeps lesson 08's event loop and changes only the protocol, to RESP2, the one
//! Redis speaks. Every reply starts with a byte that says what it is (`+OK`, `-ERR ...`, `:2`,
//! `$5` and five bytes of value, `$-1` for "no such key"), and every request is an array of
//! length-prefixed strings, so keys and values may hold any byte.
//!
//! Speaking RESP means tools nobody here wrote can drive this server: `redis-cli`, client
//! libraries such as redis-py, and `redis-benchmark`.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 13_resp_server                       # terminal 1 (Ctrl-C stops it)
//! redis-cli -p 65443 set greeting hello                # terminal 2: OK
//! redis-cli -p 65443 get greeting                      # "hello"
//! nc 127.0.0.1 65443                                   # or type inline commands: PING, GET greeting
//! ```
//!
//! The port is 65443, not Redis's 6379, so this server never collides with a real Redis on the
//! same machine (and `redis-cli` without `-p` never talks to it by mistake).
//!
//! What changes from lesson 08:
//! - **The parser** ([`socket_workbook::resp`]): a request is complete when its last element
//!   has arrived, not at a newline, and every announced length is checked against a cap before
//!   it is believed.
//! - **The receive buffer** grows as bytes arrive (a value can be 512 MB), within one memory
//!   budget for all connections together.
//! - **Typed replies**, and the commands that `redis-cli`, `redis-benchmark` and redis-py send.
//! - **Malformed input** is answered with `-ERR Protocol error: ...` and the connection closed:
//!   after a broken length, nobody knows where the next request starts.
//!
//! The loop itself, back-pressure, the connection cap, draining and Ctrl-C are lesson 08's.
//! `cargo bench --bench resp_bench` measures this server against Redis with `redis-benchmark`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use socket_workbook::escape::escape_abbreviated;
use socket_workbook::kv::ByteStore;
use socket_workbook::lesson::{
    self, ACCEPT_PAUSE, ConnectionLog, DRAIN_LIMIT, DRAIN_TIMEOUT, Deadline, ListenArgs, ManyClientsArgs,
};
use socket_workbook::log_error;
use socket_workbook::resp::{self, Limits, MemoryBudget, RequestBuffer, RequestParser};

/// Lesson 13: a key-value store that speaks RESP2, Redis's protocol, in one thread.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65443>,
    /// `--max-connections` and `--quiet`.
    #[command(flatten)]
    serving: ManyClientsArgs,
    /// The longest key or value a request may carry, in bytes (Redis: 512 MB).
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_BULK)]
    max_bulk: usize,
    /// Bytes all connections' unanswered requests may hold together; a connection that needs
    /// more is told so and closed.
    #[arg(long, default_value_t = 1024 * 1024 * 1024)]
    request_memory: usize,
    /// Bytes the stored keys and values may take; a SET past it is refused.
    #[arg(long, default_value_t = 1024 * 1024 * 1024)]
    max_store: usize,
}

/// As in lesson 08: past this many reply bytes waiting, a client's commands wait too.
const OUTBOX_LIMIT: usize = 64 * 1024;

/// How many connections the kernel may hold for us, complete but not yet accepted.
const BACKLOG: i32 = 1024;

// ANCHOR: client
/// Everything the server must remember about one client between two turns of the loop.
struct Client {
    conn: TcpStream,
    log: ConnectionLog,
    /// Bytes received and not answered yet; grows with what arrives, within the budget.
    inbox: RequestBuffer,
    /// Where the request at the start of the inbox has been parsed to.
    parser: RequestParser,
    /// What the parser's memory is charged against the budget.
    parser_charged: usize,
    /// Replies not sent yet.
    outbox: Vec<u8>,
    /// The inbox may still hold complete requests: answering stopped because the outbox was full.
    commands_waiting: bool,
    phase: Phase,
}
// ANCHOR_END: client

/// Where the conversation with a client is (lesson 08's phases).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Serving,
    /// The client closed its sending side: answer what it sent, then close.
    ClientFinished,
    /// After `QUIT` or an error that ends the connection: send the outbox, then hang up.
    SendingLastReply,
    /// Our sending side is shut down; discard what the client still sends, then close.
    Draining {
        until: Deadline,
        discarded: usize,
    },
}

/// What the loop does with a client after serving it.
enum Next {
    KeepOpen,
    Close(io::Result<()>),
}

fn main() -> ExitCode {
    let args = Args::parse();
    lesson::exit_status(serve_forever(&args))
}

fn serve_forever(args: &Args) -> io::Result<()> {
    let listener = TcpListener::bind((args.listen.host.as_str(), args.listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&args.listen.address(), &err));
    if let Err(err) = lesson::set_listen_backlog(&listener, BACKLOG) {
        log_error!("warning: the listen backlog stays at 128: {err}");
    }
    listener.set_nonblocking(true)?;
    let wake = wake_on_ctrl_c()?;
    lesson::announce_listening(&listener)?;
    let mut server = Server {
        listener,
        wake,
        store: ByteStore::with_limit(args.max_store),
        limits: Limits {
            max_bulk: args.max_bulk,
            ..Limits::default()
        },
        budget: MemoryBudget::new(args.request_memory),
        clients: Vec::new(),
        max_connections: args.serving.max_connections as usize,
        per_command_log: !args.serving.quiet,
        connections: 0,
        accept_paused_until: None,
    };
    server.run()
}

/// The event loop's state. One thread owns all of it.
struct Server {
    listener: TcpListener,
    wake: UnixStream,
    store: ByteStore,
    limits: Limits,
    /// Shared by every client's inbox.
    budget: MemoryBudget,
    clients: Vec<Client>,
    max_connections: usize,
    per_command_log: bool,
    connections: u64,
    accept_paused_until: Option<Instant>,
}

/// What `poll` should watch a client for (lesson 08's rule).
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

impl Server {
    // ANCHOR: event_loop
    fn run(&mut self) -> io::Result<()> {
        let mut watched: Vec<libc::pollfd> = Vec::new();
        loop {
            watched.clear();
            watched.push(watch(self.wake.as_raw_fd(), libc::POLLIN));
            watched.push(watch(self.listener.as_raw_fd(), self.listener_interest()));
            for client in &self.clients {
                watched.push(watch(client.conn.as_raw_fd(), interest(client)));
            }

            wait_until_ready(&mut watched, self.next_deadline())?;

            if watched[0].revents != 0 {
                self.shut_down();
                return Ok(());
            }
            let now = Instant::now();
            let mut index = 0;
            self.clients.retain_mut(|client| {
                let ready = watched[2 + index].revents;
                index += 1;
                let next = if ready != 0 {
                    serve_ready_client(client, ready, &mut self.store, &mut self.budget)
                } else {
                    Next::KeepOpen
                };
                let keep = match next {
                    Next::KeepOpen if client.drain_time_is_up(now) => {
                        client.log.line("disconnected");
                        false
                    }
                    Next::KeepOpen => true,
                    Next::Close(Ok(())) => {
                        client.log.line("disconnected");
                        false
                    }
                    Next::Close(Err(err)) => {
                        client.log.line(&format!("disconnected abruptly: {err}"));
                        false
                    }
                };
                if !keep {
                    // What the client's requests held goes back to the budget.
                    client.inbox.release(&mut self.budget);
                    self.budget.give_back(client.parser_charged);
                }
                keep
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

    fn next_deadline(&self) -> Option<Instant> {
        let draining = self.clients.iter().filter_map(|client| match client.phase {
            Phase::Draining { until, .. } => Some(until.instant()),
            _ => None,
        });
        draining.chain(self.accept_paused_until).min()
    }

    fn accept_new_clients(&mut self) {
        loop {
            let (conn, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if lesson::out_of_resources(&err) => {
                    log_error!("accept failed: {err}; not accepting for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
                Err(err) => {
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
                refuse_over_cap(conn);
                continue;
            }
            match Client::new(conn, log, self.limits) {
                Ok(client) => {
                    log.line(&format!("connected from {peer}"));
                    self.clients.push(client);
                }
                Err(err) => log.line(&format!("could not set up the connection from {peer}: {err}")),
            }
        }
    }

    fn shut_down(&self) {
        lesson::log_shutting_down(self.clients.len());
    }
}

/// The client over the cap gets what Redis sends in that case, as a RESP error.
fn refuse_over_cap(mut conn: TcpStream) {
    let _ = conn.write_all(b"-ERR max number of clients reached\r\n");
    let _ = conn.shutdown(Shutdown::Both);
}

fn watch(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until a socket in `watched` is ready, or until `deadline` (lesson 08's `poll`).
fn wait_until_ready(watched: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<()> {
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
        if err.kind() == io::ErrorKind::Interrupted {
            watched.iter_mut().for_each(|entry| entry.revents = 0);
            return Ok(());
        }
        return Err(err);
    }
    Ok(())
}

/// Ctrl-C and SIGTERM wake the loop through a socket pair (lesson 08's self-pipe trick).
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

impl Client {
    fn new(conn: TcpStream, log: ConnectionLog, limits: Limits) -> io::Result<Client> {
        conn.set_nonblocking(true)?;
        conn.set_nodelay(true)?;
        Ok(Client {
            conn,
            log,
            inbox: RequestBuffer::new(),
            parser: RequestParser::new(limits),
            parser_charged: 0,
            outbox: Vec::new(),
            commands_waiting: false,
            phase: Phase::Serving,
        })
    }

    fn drain_time_is_up(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Draining { until, .. } if now >= until.instant())
    }

    /// Says why the server hangs up, and makes `message` the last reply.
    fn last_reply(&mut self, message: &str) {
        self.log.line(&format!("{message}; closing the connection"));
        resp::error(&mut self.outbox, format!("ERR {message}"));
        self.phase = Phase::SendingLastReply;
    }
}

// ANCHOR: serve_ready_client
/// One turn for a ready client: read at most once, answer the complete requests, write what the
/// socket takes. Lesson 08's turn; only the read is new, since the inbox may have to grow.
fn serve_ready_client(
    client: &mut Client,
    ready: libc::c_short,
    store: &mut ByteStore,
    budget: &mut MemoryBudget,
) -> Next {
    if let Phase::Draining { .. } = client.phase {
        return discard_input(client);
    }
    let readable = ready & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    if readable && interest(client) & libc::POLLIN != 0 {
        match client.inbox.read_from(&mut client.conn, budget) {
            Ok(0) => client.phase = Phase::ClientFinished,
            Ok(_) => {}
            Err(err) if would_block(&err) => {}
            // The budget for everyone's unanswered requests is used up, and this client's
            // request needs more: it is the one that goes.
            Err(err) if resp::is_budget_exhausted(&err) => client.last_reply(&err.to_string()),
            Err(err) => return Next::Close(Err(err)),
        }
    }
    answer_requests(client, store, budget);
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

// ANCHOR: answer_requests
/// Answers complete requests from the inbox into the outbox, until none is left or the outbox
/// is full. A malformed request is answered with its protocol error, and ends the connection.
fn answer_requests(client: &mut Client, store: &mut ByteStore, budget: &mut MemoryBudget) {
    if !matches!(client.phase, Phase::Serving | Phase::ClientFinished) {
        return;
    }
    while client.outbox.len() < OUTBOX_LIMIT {
        let unparsed = client.inbox.unparsed();
        match client.parser.parse(unparsed) {
            Ok(Some(used)) => {
                let args: Vec<&[u8]> = client.parser.args(unparsed).collect();
                let before = client.outbox.len();
                // An empty request (an empty line, `*0`) gets no reply, as in Redis.
                let after = if args.is_empty() {
                    After::KeepServing
                } else {
                    execute(&args, store, &mut client.outbox)
                };
                if client.log.per_command && !args.is_empty() {
                    log_request(&client.log, &args, &client.outbox[before..]);
                }
                client.inbox.consume(used);
                client.parser.shrink();
                if after == After::Hangup {
                    client.phase = Phase::SendingLastReply;
                    return;
                }
            }
            Ok(None) => {
                client.commands_waiting = false;
                client.inbox.shrink(budget);
                // A request of many elements is charged for the parser's list of them too.
                let memory = client.parser.memory();
                if memory > client.parser_charged {
                    if !budget.take(memory - client.parser_charged) {
                        client.last_reply(&resp::BudgetExhausted.to_string());
                        return;
                    }
                } else {
                    budget.give_back(client.parser_charged - memory);
                }
                client.parser_charged = memory;
                return;
            }
            Err(err) => {
                client.last_reply(&err.to_string());
                return;
            }
        }
    }
    client.commands_waiting = true;
}
// ANCHOR_END: answer_requests

/// `#1 "SET" "a" "1" -> "+OK\r\n"`.
fn log_request(log: &ConnectionLog, args: &[&[u8]], reply: &[u8]) {
    let words: Vec<String> = args
        .iter()
        .take(4)
        .map(|arg| escape_abbreviated(arg, 40))
        .collect();
    let more = if args.len() > 4 {
        format!(" ... ({} arguments)", args.len())
    } else {
        String::new()
    };
    log.line(&format!(
        "{}{more} -> {}",
        words.join(" "),
        escape_abbreviated(reply, 80)
    ));
}

/// What happens to the connection after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepServing,
    /// `QUIT`: send the reply, then close.
    Hangup,
}

// ANCHOR: execute
/// Carries out one request (`args[0]` is the command, in any letter case) and appends its reply.
fn execute(args: &[&[u8]], store: &mut ByteStore, out: &mut Vec<u8>) -> After {
    let mut lower = [0u8; 16];
    let name = lowercase(args[0], &mut lower);
    let rest = &args[1..];
    match (name, rest) {
        (b"ping", []) => resp::simple(out, "PONG"),
        (b"ping", [message]) | (b"echo", [message]) => resp::bulk(out, message),
        (b"set", [key, value]) => match store.set(key, value) {
            Ok(()) => resp::simple(out, "OK"),
            Err(_) => resp::error(out, "OOM command not allowed when used memory > 'maxmemory'."),
        },
        // Redis's SET takes options (EX 10, NX, ...); this one does not.
        (b"set", [_, _, ..]) => resp::error(out, "ERR syntax error"),
        (b"get", [key]) => match store.get(key) {
            Some(value) => resp::bulk(out, value),
            // Nil: "no such key", which no stored value can look like.
            None => resp::nil(out),
        },
        (b"del", [_, ..]) => {
            let removed = rest.iter().filter(|key| store.remove(key)).count();
            resp::integer(out, removed as i64);
        }
        (b"exists", [_, ..]) => {
            // Counted once per key named, so `EXISTS a a` is 2 if `a` exists, as in Redis.
            let found = rest.iter().filter(|key| store.contains(key)).count();
            resp::integer(out, found as i64);
        }
        (b"quit", _) => {
            resp::simple(out, "OK");
            return After::Hangup;
        }
        _ => return execute_connection_command(name, args, out),
    }
    After::KeepServing
}

/// `word` in lower case, in `buf` (no allocation for every command). A word longer than any
/// command name stays as it is: it matches nothing either way.
fn lowercase<'a>(word: &'a [u8], buf: &'a mut [u8; 16]) -> &'a [u8] {
    match buf.get_mut(..word.len()) {
        Some(lower) => {
            lower.copy_from_slice(word);
            lower.make_ascii_lowercase();
            lower
        }
        None => word,
    }
}
// ANCHOR_END: execute

// ANCHOR: connection_commands
/// What clients send when they connect, before any command of yours, and the errors for
/// everything else.
fn execute_connection_command(name: &[u8], args: &[&[u8]], out: &mut Vec<u8>) -> After {
    let rest = &args[1..];
    let subcommand = rest.first().map(|word| word.to_ascii_lowercase());
    match (name, subcommand.as_deref(), rest.len()) {
        // redis-cli asks for the documentation of every command, to complete what you type.
        // An empty list is a fine answer.
        (b"command", _, _) => resp::array_header(out, 0),
        // redis-benchmark asks whether the server saves to disk, and warns when it cannot tell.
        // Nothing is saved here: `save` is empty (no snapshots) and `appendonly` is `no`.
        (b"config", Some(b"get"), 2) => match rest[1].to_ascii_lowercase().as_slice() {
            b"save" => config_pair(out, b"save", b""),
            b"appendonly" => config_pair(out, b"appendonly", b"no"),
            _ => resp::array_header(out, 0),
        },
        // redis-py 5 tells the server its name and version; Redis 7.2 answers +OK.
        (b"client", Some(b"setinfo"), 3) | (b"client", Some(b"setname"), 2) => resp::simple(out, "OK"),
        // Only database 0 exists.
        (b"select", _, 1) if rest[0] == b"0" => resp::simple(out, "OK"),
        (b"select", _, 1) => resp::error(out, "ERR DB index is out of range"),
        (b"ping" | b"echo" | b"get" | b"set" | b"del" | b"exists" | b"select", _, _) => {
            let name = String::from_utf8_lossy(name);
            resp::error(out, format!("ERR wrong number of arguments for '{name}' command"));
        }
        // Everything else, HELLO included: a client that asks for RESP3 with `HELLO 3` reads
        // this and goes on in RESP2, as with Redis before version 6.
        _ => resp::error(out, unknown_command(args)),
    }
    After::KeepServing
}

fn config_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    resp::array_header(out, 2);
    resp::bulk(out, name);
    resp::bulk(out, value);
}

/// `ERR unknown command 'FOO', with args beginning with: 'a' 'b' `, word for word as Redis 7
/// says it: at most 128 bytes of the name, and arguments until 128 bytes of them are quoted.
fn unknown_command(args: &[&[u8]]) -> Vec<u8> {
    let mut message = b"ERR unknown command '".to_vec();
    message.extend_from_slice(&args[0][..args[0].len().min(128)]);
    message.extend_from_slice(b"', with args beginning with: ");
    let mut quoted = Vec::new();
    for arg in &args[1..] {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(&arg[..arg.len().min(room)]);
        quoted.extend_from_slice(b"' ");
    }
    message.extend(quoted);
    message
}
// ANCHOR_END: connection_commands

/// Writes as much of the outbox as the socket takes now (lesson 08's).
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
    client.outbox.drain(..sent);
    // A big reply (a 100 MB value) is not kept around once sent.
    if client.outbox.is_empty() && client.outbox.capacity() > 4 * OUTBOX_LIMIT {
        client.outbox = Vec::new();
    }
    Ok(())
}

fn would_block(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// The last reply is sent: shut down our side and discard what still comes (lesson 08's).
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
        Err(_) => Next::Close(Ok(())),
    }
}
