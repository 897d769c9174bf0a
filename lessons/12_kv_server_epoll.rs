//! # Lesson 12: ten thousand clients: `epoll`
//!
//! Lesson 08 serves every client from one thread, but on every turn of its loop it hands `poll`
//! the whole list of sockets, and the kernel looks at every one of them, ready or not. With ten
//! thousand clients connected and fifty of them busy, almost all of that work is wasted: the
//! loop's cost grows with the connections, not with the work. This server is lesson 08 on Linux's
//! `epoll`, whose cost grows with the sockets that are ready:
//!
//! - **Interest is registered once**, not handed over on every turn: `epoll_ctl` adds a socket
//!   when it is accepted, changes what we wait for only when that changes, and removes it when
//!   the connection ends. `epoll_wait` returns only the sockets that are ready.
//! - **Tokens and a slab.** With each socket we register a number, its token; `epoll_wait` gives
//!   the token back. Ours is the client's index in a slab: a `Vec` of slots with a list of free
//!   ones, so finding a client is one index, and a slot is reused when its client leaves.
//! - **Level-triggered**, like `poll`: a socket with unread bytes is reported again on the next
//!   turn, so reading once per turn is enough (the chapter explains edge-triggered mode, and the
//!   "read until `WouldBlock`" rule it imposes).
//! - **A fair share per turn.** Each ready client gets one `read` and at most
//!   `COMMANDS_PER_TURN` commands per turn, then the next ready client has its turn: a client that
//!   floods us with commands cannot starve the others.
//! - **Little memory per idle client.** Its buffers hold no memory while it has nothing unfinished
//!   (see `src/line_buffer.rs`): an idle connection costs a slot and a socket.
//! - **The descriptor limit.** Each connection is a file descriptor, and a process may open only
//!   `ulimit -n` of them (often 1024). At start the server raises its limit as far as it is
//!   allowed, and says so when `--max-connections` does not fit.
//!
//! Try it:
//!
//! ```text
//! cargo run --release --bin 12_kv_server_epoll -- --max-connections 20000   # terminal 1
//! nc 127.0.0.1 65442                                                         # terminal 2
//! cargo bench --bench kv_bench -- --idle 10000          # 10,000 idle clients, then the load
//! ```
//!
//! The protocol, the replies, the caps, back-pressure, the drain, Ctrl-C and the log lines are
//! lesson 08's. `epoll` is Linux's; on other systems this program says so and exits.

use std::process::ExitCode;

// epoll is Linux's, so every item below except the second `main` is compiled only on Linux:
// each is marked `#[cfg(target_os = "linux")]`, the mark above its doc comment. (One `mod linux`
// would need a single mark, but would indent every line the book shows.)
#[cfg(target_os = "linux")]
use std::{
    io::{self, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    os::unix::net::UnixStream,
    time::Instant,
};

#[cfg(target_os = "linux")]
use clap::Parser;
#[cfg(target_os = "linux")]
use socket_workbook::{
    kv::{Command, MAX_LINE, Reply, Store},
    lesson::{
        self, ACCEPT_PAUSE, ConnectionLog, DRAIN_LIMIT, DRAIN_TIMEOUT, Deadline, ListenArgs, ManyClientsArgs,
    },
    line_buffer::LineBuffer,
    log_error,
};

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    let args = Args::parse();
    lesson::exit_status(serve_forever(&args))
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!(
        "error: lesson 12 uses epoll, which only Linux has; run lesson 08 (poll) here, or this \
         lesson on Linux (a virtual machine, a container, or WSL on Windows)"
    );
    ExitCode::FAILURE
}

#[cfg(target_os = "linux")]
/// Lesson 12: lesson 08's key-value store for ten thousand clients, on Linux's epoll.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65442>,
    /// `--max-connections` and `--quiet`.
    #[command(flatten)]
    serving: ManyClientsArgs,
}

#[cfg(target_os = "linux")]
/// The most reply bytes a connection may have waiting to be sent (back-pressure, as in
/// lesson 08).
const OUTBOX_LIMIT: usize = 64 * 1024;

#[cfg(target_os = "linux")]
/// A client's fair share of one turn: at most this many commands are answered before the
/// loop moves on to the next ready client. The rest wait in the inbox for the next turn.
const COMMANDS_PER_TURN: usize = 128;

#[cfg(target_os = "linux")]
/// How many connections the kernel may hold for us, complete but not yet accepted. Ten
/// thousand clients connect in bursts; Linux caps this at `net.core.somaxconn` (4096).
const BACKLOG: i32 = 4096;

#[cfg(target_os = "linux")]
/// How many ready sockets one `epoll_wait` reports at most. More stay ready and are reported
/// on the next turn.
const EVENTS_PER_WAIT: usize = 1024;

#[cfg(target_os = "linux")]
/// Descriptors the server needs besides its clients: stdin, stdout, stderr, the listener,
/// the epoll instance, the wake-up pair, the `ctrlc` crate's pipe, and some room.
const DESCRIPTORS_BESIDES_CLIENTS: u64 = 16;

#[cfg(target_os = "linux")]
// ANCHOR: tokens
/// The token registered with the wake-up socket, the listener, and client slot `n` (`n + 2`).
const WAKE: u64 = 0;
#[cfg(target_os = "linux")]
const LISTENER: u64 = 1;
#[cfg(target_os = "linux")]
const FIRST_CLIENT: u64 = 2;

#[cfg(target_os = "linux")]
fn token_of(slot: usize) -> u64 {
    slot as u64 + FIRST_CLIENT
}
// ANCHOR_END: tokens

// What a socket is watched for, and what `epoll_wait` reports. `EPOLLHUP` and `EPOLLERR`
// are always reported, asked for or not.
#[cfg(target_os = "linux")]
const READABLE: u32 = libc::EPOLLIN as u32;
#[cfg(target_os = "linux")]
const WRITABLE: u32 = libc::EPOLLOUT as u32;
#[cfg(target_os = "linux")]
const HUNG_UP: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;

#[cfg(target_os = "linux")]
// ANCHOR: client
/// Everything the server remembers about one client between two turns: lesson 08's, plus
/// what is registered with epoll for it.
struct Client {
    conn: TcpStream,
    log: ConnectionLog,
    /// Bytes received and not answered yet; no memory while nothing unfinished is held.
    inbox: LineBuffer,
    /// Replies not sent yet; no memory while there is nothing to send.
    outbox: Vec<u8>,
    /// The inbox may still hold complete commands: the outbox filled up, or the client's
    /// share of the turn was used up.
    commands_waiting: bool,
    phase: Phase,
    /// What epoll watches this socket for now (`READABLE`, `WRITABLE` or both).
    registered: u32,
}

#[cfg(target_os = "linux")]
/// Where the conversation with a client is (lesson 08's phases).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Serving,
    ClientFinished,
    SendingLastReply,
    Draining { until: Deadline, discarded: usize },
}
// ANCHOR_END: client

#[cfg(target_os = "linux")]
enum Next {
    KeepOpen,
    Close(io::Result<()>),
}

#[cfg(target_os = "linux")]
fn serve_forever(args: &Args) -> io::Result<()> {
    let max_connections = args.serving.max_connections as usize;
    // Before anything else: the limit decides how many clients we can ever accept.
    raise_descriptor_limit(max_connections as u64 + DESCRIPTORS_BESIDES_CLIENTS);
    let listener = TcpListener::bind((args.listen.host.as_str(), args.listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&args.listen.address(), &err));
    if let Err(err) = lesson::set_listen_backlog(&listener, BACKLOG) {
        log_error!("warning: the listen backlog stays at 128: {err}");
    }
    listener.set_nonblocking(true)?;
    let wake = wake_on_ctrl_c()?;
    let epoll = Epoll::new()?;
    epoll.add(wake.as_raw_fd(), READABLE, WAKE)?;
    epoll.add(listener.as_raw_fd(), READABLE, LISTENER)?;
    lesson::announce_listening(&listener)?;
    let mut server = Server {
        epoll,
        listener,
        _wake: wake,
        store: Store::new(),
        slots: Vec::new(),
        free_slots: Vec::new(),
        draining: Vec::new(),
        max_connections,
        per_command_log: !args.serving.quiet,
        connections: 0,
        accept_paused_until: None,
    };
    server.run()
}

#[cfg(target_os = "linux")]
// ANCHOR: rlimit
/// Raises this process's open-file limit (`ulimit -n`) to `wanted` descriptors, or as far
/// as the hard limit allows. The soft limit is what `accept` is held to; a process may raise
/// it up to the hard limit itself, and only root may raise the hard limit. Many systems
/// start programs with a soft limit of 1024: without this, client 1010 or so would get no
/// descriptor (EMFILE), however high `--max-connections` is.
fn raise_descriptor_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) and setrlimit(2) read and write only the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        log_error!(
            "warning: cannot read the open-file limit: {}",
            io::Error::last_os_error()
        );
        return;
    }
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted.min(limit.rlim_max);
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            log_error!(
                "warning: cannot raise the open-file limit: {}",
                io::Error::last_os_error()
            );
        }
    }
    if limit.rlim_max < wanted {
        log_error!(
            "warning: --max-connections needs about {wanted} file descriptors, but this \
             process may open at most {} (the hard limit, `ulimit -Hn`); beyond about {} \
             clients, accepting fails with \"Too many open files\" until some leave. \
             Raise the hard limit as root (`ulimit -Hn {wanted}`, or LimitNOFILE in a \
             systemd unit), or lower --max-connections.",
            limit.rlim_max,
            limit.rlim_max.saturating_sub(DESCRIPTORS_BESIDES_CLIENTS)
        );
    }
}
// ANCHOR_END: rlimit

#[cfg(target_os = "linux")]
// ANCHOR: epoll
/// An epoll instance: a set of sockets registered with the kernel, each with what we wait
/// for on it and a token. It is itself a file descriptor, closed when this is dropped.
struct Epoll(OwnedFd);

#[cfg(target_os = "linux")]
impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1(2) takes no pointers. CLOEXEC: a program we might start
        // does not inherit it.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Starts watching `fd` for `interest`; `epoll_wait` reports it with `token`.
    fn add(&self, fd: RawFd, interest: u32, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, interest, token)
    }

    /// Changes what `fd` is watched for. Called only when that changes, not every turn.
    fn modify(&self, fd: RawFd, interest: u32, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, interest, token)
    }

    /// Stops watching `fd`. (Closing the socket would do it too, but only once no other
    /// descriptor refers to it: saying so is clearer, and always right.)
    fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn control(&self, op: libc::c_int, fd: RawFd, interest: u32, token: u64) -> io::Result<()> {
        // No EPOLLET: level-triggered, like poll. A socket with unread bytes is reported
        // again on every turn until they are read.
        let mut event = libc::epoll_event {
            events: interest,
            u64: token,
        };
        // SAFETY: epoll_ctl(2) reads `event` during the call only.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until a registered socket is ready, or until `deadline`, and fills the start of
    /// `events` with what is ready (a token and its flags each). Returns how many. The
    /// kernel keeps a list of ready sockets as they become ready, so this costs time in
    /// proportion to the ready ones, however many are registered.
    fn wait(&self, events: &mut [libc::epoll_event], deadline: Option<Instant>) -> io::Result<usize> {
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `events` is a valid array of `events.len()` structs, which the kernel
        // writes to during the call only.
        let ready = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout,
            )
        };
        if ready < 0 {
            let err = io::Error::last_os_error();
            // A signal arrived while we waited: nothing is ready, look again.
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(ready as usize)
    }
}
// ANCHOR_END: epoll

#[cfg(target_os = "linux")]
/// The event loop's state. One thread owns all of it.
struct Server {
    epoll: Epoll,
    listener: TcpListener,
    /// Becomes readable when Ctrl-C or SIGTERM arrives; registered with token `WAKE`.
    _wake: UnixStream,
    store: Store,
    // ANCHOR: slab
    /// The slab: client `n` lives in `slots[n]` and is registered with token `n + 2`.
    slots: Vec<Option<Client>>,
    /// Slots whose client left, to be used again before the slab grows.
    free_slots: Vec<usize>,
    // ANCHOR_END: slab
    /// Slots of the clients being drained, whose deadlines the loop must wake up for.
    draining: Vec<usize>,
    max_connections: usize,
    per_command_log: bool,
    connections: u64,
    accept_paused_until: Option<Instant>,
}

#[cfg(target_os = "linux")]
// ANCHOR: interest
/// What a client's socket should be watched for: lesson 08's rule, as epoll flags.
fn interest(client: &Client) -> u32 {
    match client.phase {
        Phase::Serving => {
            let mut events = 0;
            if !client.commands_waiting && client.outbox.len() < OUTBOX_LIMIT {
                events |= READABLE;
            }
            if !client.outbox.is_empty() || client.commands_waiting {
                events |= WRITABLE;
            }
            events
        }
        Phase::ClientFinished | Phase::SendingLastReply => WRITABLE,
        Phase::Draining { .. } => READABLE,
    }
}
// ANCHOR_END: interest

#[cfg(target_os = "linux")]
impl Server {
    // ANCHOR: event_loop
    fn run(&mut self) -> io::Result<()> {
        let empty = libc::epoll_event { events: 0, u64: 0 };
        let mut events = vec![empty; EVENTS_PER_WAIT];
        loop {
            // The one place this thread waits. Nothing is handed to the kernel here: it
            // already knows what to watch.
            let ready = self.epoll.wait(&mut events, self.next_deadline())?;
            let mut listener_ready = false;
            for event in &events[..ready] {
                // Copied out: the struct is packed on x86-64, so no references into it.
                let (token, flags) = (event.u64, event.events);
                match token {
                    WAKE => {
                        self.shut_down();
                        return Ok(());
                    }
                    // Accepted after the clients are served: a slot freed in this batch
                    // must not get a new client while an event for the old one may follow.
                    LISTENER => listener_ready = true,
                    token => self.serve((token - FIRST_CLIENT) as usize, flags),
                }
            }
            self.end_finished_drains();
            self.resume_accepting_when_paused_long_enough();
            if listener_ready {
                self.accept_new_clients();
            }
        }
    }
    // ANCHOR_END: event_loop

    // ANCHOR: serve
    /// One turn for the client in `slot`, then tell epoll if what it waits for changed.
    fn serve(&mut self, slot: usize, flags: u32) {
        let Some(client) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let was_draining = matches!(client.phase, Phase::Draining { .. });
        let next = serve_ready_client(client, flags, &mut self.store);
        match next {
            Next::KeepOpen => {
                let wanted = interest(client);
                if wanted != client.registered {
                    // One system call, only when the interest changes: when a client
                    // fills its outbox, or it empties again.
                    if let Err(err) = self.epoll.modify(client.conn.as_raw_fd(), wanted, token_of(slot)) {
                        client.log.line(&format!("disconnected abruptly: {err}"));
                        self.remove(slot);
                        return;
                    }
                    client.registered = wanted;
                }
                if !was_draining && matches!(client.phase, Phase::Draining { .. }) {
                    self.draining.push(slot);
                }
            }
            Next::Close(Ok(())) => {
                client.log.line("disconnected");
                self.remove(slot);
            }
            Next::Close(Err(err)) => {
                client.log.line(&format!("disconnected abruptly: {err}"));
                self.remove(slot);
            }
        }
    }

    /// Stops watching the client's socket, closes it (dropping the `TcpStream`) and frees
    /// its slot for the next client.
    fn remove(&mut self, slot: usize) {
        if let Some(client) = self.slots[slot].take() {
            let _ = self.epoll.delete(client.conn.as_raw_fd());
            self.free_slots.push(slot);
        }
    }
    // ANCHOR_END: serve

    /// Closes the clients whose drain time is up.
    fn end_finished_drains(&mut self) {
        if self.draining.is_empty() {
            return;
        }
        let now = Instant::now();
        let slots = &self.slots;
        // A slot may have been closed, or reused by a client that is not draining.
        self.draining.retain(|&slot| {
            matches!(
                slots[slot].as_ref().map(|client| client.phase),
                Some(Phase::Draining { .. })
            )
        });
        let expired: Vec<usize> = self
            .draining
            .iter()
            .copied()
            .filter(|&slot| {
                slots[slot]
                    .as_ref()
                    .is_some_and(|client| client.drain_time_is_up(now))
            })
            .collect();
        for slot in expired {
            if let Some(client) = &self.slots[slot] {
                client.log.line("disconnected");
            }
            self.remove(slot);
        }
    }

    /// The nearest moment the loop must wake up even if no socket is ready. Only the
    /// draining clients are looked at, not all of them.
    fn next_deadline(&self) -> Option<Instant> {
        let draining = self
            .draining
            .iter()
            .filter_map(|&slot| match self.slots[slot].as_ref()?.phase {
                Phase::Draining { until, .. } => Some(until.instant()),
                _ => None,
            });
        draining.chain(self.accept_paused_until).min()
    }

    fn open_connections(&self) -> usize {
        self.slots.len() - self.free_slots.len()
    }

    /// After "Too many open files", accepting pauses: the listener is watched for nothing
    /// until the pause is over.
    fn resume_accepting_when_paused_long_enough(&mut self) {
        if let Some(until) = self.accept_paused_until
            && Instant::now() >= until
        {
            self.accept_paused_until = None;
            if let Err(err) = self.epoll.modify(self.listener.as_raw_fd(), READABLE, LISTENER) {
                log_error!("cannot watch the listener again: {err}");
            }
        }
    }

    // ANCHOR: accept
    /// Accepts every connection waiting in the backlog, and registers each once.
    fn accept_new_clients(&mut self) {
        loop {
            let (conn, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if lesson::out_of_resources(&err) => {
                    // As in lesson 08: stop watching the listener for a moment, or the
                    // loop would spin on this error.
                    log_error!("accept failed: {err}; not accepting for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    if let Err(err) = self.epoll.modify(self.listener.as_raw_fd(), 0, LISTENER) {
                        log_error!("cannot pause watching the listener: {err}");
                    }
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
            if self.open_connections() >= self.max_connections {
                log.line(&format!(
                    "refused {peer}: already serving {} clients (--max-connections)",
                    self.max_connections
                ));
                lesson::refuse_over_cap(conn);
                continue;
            }
            let client = match Client::new(conn, log) {
                Ok(client) => client,
                Err(err) => {
                    log.line(&format!("could not set up the connection from {peer}: {err}"));
                    continue;
                }
            };
            // A free slot if there is one, else a new one at the end of the slab.
            let slot = self.free_slots.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            });
            // Registered once, for reading; changed only when its interest changes.
            if let Err(err) = self
                .epoll
                .add(client.conn.as_raw_fd(), client.registered, token_of(slot))
            {
                log.line(&format!("could not set up the connection from {peer}: {err}"));
                self.free_slots.push(slot);
                continue;
            }
            log.line(&format!("connected from {peer}"));
            self.slots[slot] = Some(client);
        }
    }
    // ANCHOR_END: accept

    fn shut_down(&self) {
        lesson::log_shutting_down(self.open_connections());
    }
}

#[cfg(target_os = "linux")]
/// Lets Ctrl-C (SIGINT) and SIGTERM wake the loop: lesson 08's self-pipe trick.
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

#[cfg(target_os = "linux")]
impl Client {
    fn new(conn: TcpStream, log: ConnectionLog) -> io::Result<Client> {
        conn.set_nonblocking(true)?;
        conn.set_nodelay(true)?;
        Ok(Client {
            conn,
            log,
            inbox: LineBuffer::new(MAX_LINE),
            outbox: Vec::new(),
            commands_waiting: false,
            phase: Phase::Serving,
            registered: READABLE,
        })
    }

    fn drain_time_is_up(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Draining { until, .. } if now >= until.instant())
    }
}

#[cfg(target_os = "linux")]
// ANCHOR: serve_ready_client
/// One turn for a ready client: at most one `read`, at most `COMMANDS_PER_TURN` commands,
/// then write what the socket takes. Level-triggered epoll reports the socket again next turn
/// if bytes are left unread, so one `read` per turn loses nothing, and keeps the turn short.
fn serve_ready_client(client: &mut Client, flags: u32, store: &mut Store) -> Next {
    if let Phase::Draining { .. } = client.phase {
        return discard_input(client);
    }
    let readable = flags & (READABLE | HUNG_UP) != 0;
    if readable && interest(client) & READABLE != 0 {
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

#[cfg(target_os = "linux")]
// ANCHOR: answer_commands
/// Answers complete commands until none is left, the outbox is full, or the client's share
/// of this turn is used up. Then the rest wait (`commands_waiting`): the client is watched
/// for `WRITABLE`, which a socket with room to send is at once, so it gets another turn
/// soon, after the other ready clients had theirs.
fn answer_commands(client: &mut Client, store: &mut Store) {
    if !matches!(client.phase, Phase::Serving | Phase::ClientFinished) {
        return;
    }
    let mut answered = 0;
    while client.outbox.len() < OUTBOX_LIMIT && answered < COMMANDS_PER_TURN {
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
        answered += 1;
    }
    client.commands_waiting = true;
}
// ANCHOR_END: answer_commands

#[cfg(target_os = "linux")]
/// Writes as much of the outbox as the socket takes now (lesson 08's), and frees the
/// outbox's memory once it is empty.
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
    if client.outbox.is_empty() {
        client.outbox = Vec::new();
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn would_block(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

#[cfg(target_os = "linux")]
fn refuse_long_line(client: &mut Client) {
    let reply = Reply::line_too_long();
    client.log.line_too_long(&reply);
    reply.encode_into(&mut client.outbox);
    client.phase = Phase::SendingLastReply;
}

#[cfg(target_os = "linux")]
/// The last reply is sent: shut down our side and discard what the client still sends,
/// until it closes, `DRAIN_LIMIT` bytes have come, or `DRAIN_TIMEOUT` is over.
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

#[cfg(target_os = "linux")]
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
