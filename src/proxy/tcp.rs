//! TCP: an accept loop, and one thread per connection.
//!
//! A connection's thread owns both of its sockets (the client's, and the one it opened to the
//! server), both non-blocking, and runs a `poll` loop over them. Each direction is a [`Pipe`]:
//! bytes read from its source are cut at fixed offsets, given their fate (a delay, a slice, a
//! close, a reset, a stall) and queued; the loop writes each queued piece to the destination once
//! its time has come, and reads again only while the queue has room. One thread per connection
//! rather than one per direction, because a reset must close a socket (with `SO_LINGER` 0) that
//! no other thread is blocked on: Linux sends the RST only once the last `read` on it returned.
//!
//! Who gets a reset: both sides, always. The proxy sets `SO_LINGER` to 0 on both of its sockets
//! and closes them, so the client's kernel and the server's kernel each receive an RST (the bytes
//! forwarded before it arrive first; bytes still queued in the proxy are lost).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::dice::{Dice, Purpose};
use super::log::Log;
use super::weather::{Weather, bytes_word};
use super::{ProxyConfig, Shared, poll};
use crate::escape::escape_bytes;
use crate::lesson::{after_failed_accept, set_listen_backlog};

/// How long the proxy tries to connect to the server for each client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One read takes at most this much.
pub const READ_BUFFER: usize = 64 * 1024;
/// A direction queues at most this many bytes (counting [`ENTRY_COST`] per queued piece).
pub const MAX_QUEUED: usize = 256 * 1024;
/// What one queued piece costs beyond its bytes: slicing a stream into 1-byte pieces must not
/// let 64 KiB become 64 Ki allocations.
pub const ENTRY_COST: usize = 64;
/// A log line shows at most this many bytes of a piece.
const PREVIEW: usize = 40;
/// A bandwidth limit writes in pieces of at most this share of a second's worth.
const BANDWIDTH_PIECES_PER_SECOND: u64 = 20;
/// The backlog of the listening socket: a burst of clients is queued, not dropped.
const BACKLOG: i32 = 1024;
/// Stack size of a connection's thread: it keeps its buffers on the heap.
const THREAD_STACK: usize = 256 * 1024;

/// Binds the listening socket. With `refuse_for`, the socket is closed again at once, so that
/// nothing listens on the port until the refusal ends: connecting gets "connection refused".
pub(crate) fn bind(config: &ProxyConfig) -> io::Result<(Option<TcpListener>, SocketAddr)> {
    let listener = TcpListener::bind(config.listen)?;
    let addr = listener.local_addr()?;
    if config.refuse_for.is_some() {
        return Ok((None, addr));
    }
    set_listen_backlog(&listener, BACKLOG)?;
    Ok((Some(listener), addr))
}

/// What every connection needs to know.
struct Settings {
    to: SocketAddr,
    up: Weather,
    down: Weather,
    dice: Dice,
    reset_after_time: Option<Duration>,
}

/// Accepts connections until the proxy stops. Returns `Err` only if it cannot listen again after
/// refusing connections.
pub(crate) fn accept_loop(
    listener: Option<TcpListener>,
    addr: SocketAddr,
    config: ProxyConfig,
    dice: Dice,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let log = &shared.log;
    let listener = match (listener, config.refuse_for) {
        (Some(listener), _) => listener,
        (None, refuse_for) => {
            let refuse_for = refuse_for.unwrap_or_default();
            log.event(format_args!(
                "refusing connections for {} ms: nothing listens on the port",
                refuse_for.as_millis()
            ));
            if shared.sleep_unless_stopped(refuse_for) {
                return Ok(());
            }
            let listener = TcpListener::bind(addr).map_err(|err| {
                log.always(format_args!("cannot listen again on {addr}: {err}"));
                io::Error::new(err.kind(), format!("cannot listen again on {addr}: {err}"))
            })?;
            set_listen_backlog(&listener, BACKLOG)?;
            log.event(format_args!("accepting connections again"));
            listener
        }
    };
    listener.set_nonblocking(true)?;
    let settings = Arc::new(Settings {
        to: config.to,
        up: config.up.clone(),
        down: config.down.clone(),
        dice,
        reset_after_time: config.reset_after_time,
    });
    let clear = Arc::new(Settings {
        up: Weather::default(),
        down: Weather::default(),
        reset_after_time: None,
        ..*settings
    });
    let mut number: u64 = 0;
    let mut fds = [
        libc::pollfd {
            fd: shared.stop_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        if shared.stopping() {
            return Ok(());
        }
        poll(&mut fds, None)?;
        if shared.stopping() {
            return Ok(());
        }
        let (client, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                continue;
            }
            Err(err) => {
                after_failed_accept(&err);
                continue;
            }
        };
        number += 1;
        let open = shared.open.load(Ordering::SeqCst);
        if open >= config.max_connections {
            log.event(format_args!(
                "c{number} from {peer}: reset, {open} connections are open already (--max-connections)"
            ));
            reset(client);
            continue;
        }
        let weathered = config.only_first.is_none_or(|first| number <= first);
        if weathered {
            log.event(format_args!("c{number} from {peer}"));
        } else {
            log.event(format_args!(
                "c{number} from {peer} (no weather: only the first connections get it)"
            ));
        }
        let settings = Arc::clone(if weathered { &settings } else { &clear });
        shared.open.fetch_add(1, Ordering::SeqCst);
        let guard = shared.thread_guard();
        let thread_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("proxy c{number}"))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _guard = guard;
                serve(client, number, &settings, &thread_shared);
                thread_shared.open.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            // The closure, with the client's socket and the guard, was dropped: the client sees
            // its connection closed.
            shared.open.fetch_sub(1, Ordering::SeqCst);
            log.event(format_args!("c{number} closed: no thread for it ({err})"));
        }
    }
}

/// Closes `socket` with a reset (RST) instead of a normal close (FIN): `SO_LINGER` set to
/// "on, 0 seconds" tells the kernel to drop whatever is unsent and reset the connection.
fn reset(socket: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid `linger`, on a descriptor
    // that `socket` owns and keeps open for the duration of the call.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(socket);
}

/// One connection, from connecting to the server to the last line.
fn serve(client: TcpStream, number: u64, settings: &Settings, shared: &Shared) {
    let log = &shared.log;
    let server = match TcpStream::connect_timeout(&settings.to, CONNECT_TIMEOUT) {
        Ok(server) => server,
        Err(err) => {
            log.event(format_args!(
                "c{number} cannot connect to {}: {err}; resetting the client's connection",
                settings.to
            ));
            reset(client);
            return;
        }
    };
    let prepared = [&client, &server].iter().try_for_each(|socket| {
        socket.set_nonblocking(true)?;
        // Each piece leaves in its own segment at once: Nagle's algorithm would hold a small
        // piece back until the previous one is acknowledged, and glue pieces together.
        socket.set_nodelay(true)
    });
    if let Err(err) = prepared {
        log.event(format_args!("c{number} closed: cannot set up its sockets: {err}"));
        reset(client);
        reset(server);
        return;
    }
    let now = Instant::now();
    let mut connection = Connection {
        number,
        sockets: [client, server],
        pipes: [
            Pipe::new(number, Way::Up, settings.up.clone(), now),
            Pipe::new(number, Way::Down, settings.down.clone(), now),
        ],
        reset_at: settings.reset_after_time.map(|after| (now + after, after)),
    };
    let end = connection.run(settings.dice, shared);
    connection.finish(end, log);
}

/// Up: client to server; down: server to client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Up,
    Down,
}

impl Way {
    fn index(self) -> usize {
        match self {
            Way::Up => 0,
            Way::Down => 1,
        }
    }
    fn arrow(self) -> char {
        match self {
            Way::Up => '>',
            Way::Down => '<',
        }
    }
    fn source(self) -> &'static str {
        match self {
            Way::Up => "client",
            Way::Down => "server",
        }
    }
    fn destination(self) -> &'static str {
        match self {
            Way::Up => "server",
            Way::Down => "client",
        }
    }
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Both directions ended with end of stream: close both sockets normally.
    Closed,
    /// Reset both sides.
    Reset,
    /// The proxy is stopping.
    Stopped,
}

/// What reading a direction's source does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Bytes are forwarded.
    Open,
    /// After `close_after`: bytes are read and thrown away until end of stream.
    Closed,
    /// After `stall_after`: bytes are read and thrown away, and end of stream too.
    Stalled,
    /// After `reset_after`: nothing is read; the reset is queued.
    Resetting,
    /// End of stream was read.
    Ended,
}

/// Something queued, done in order when its time has come.
enum Entry {
    /// Bytes to write, from `sent` on, not before `ready`.
    Data {
        bytes: Vec<u8>,
        sent: usize,
        ready: Instant,
    },
    /// Send end of stream (FIN): `shutdown(Write)` on the destination.
    Fin,
    /// Reset both sides.
    Reset,
    /// Close both sides normally (the end of a stall).
    CloseBoth,
}

/// The piece of a sliced stream being read: for its log line.
struct Piece {
    start: u64,
    len: usize,
    preview: Vec<u8>,
    delay: Duration,
}

/// One direction of a connection.
struct Pipe {
    number: u64,
    way: Way,
    weather: Weather,
    reading: Reading,
    /// Bytes taken into the stream (read and not thrown away): the offset of the next byte.
    offset: u64,
    /// Bytes read and thrown away after a close or a stall.
    thrown: u64,
    piece: Option<Piece>,
    /// Without slicing: the delay of every byte, chosen when the first one arrives.
    delay: Option<Duration>,
    queue: VecDeque<Entry>,
    /// Bytes queued plus [`ENTRY_COST`] per entry.
    queued: usize,
    /// Bytes written to the destination.
    written: u64,
    last_write: Option<Instant>,
    /// With a bandwidth limit: when the link is free again.
    link_free_at: Instant,
    /// The last write would have blocked: wait for the destination to be writable.
    blocked: bool,
}

/// What the loop needs to log and to choose.
struct Context<'a> {
    log: &'a Log,
    dice: Dice,
}

impl Pipe {
    fn new(number: u64, way: Way, weather: Weather, now: Instant) -> Pipe {
        Pipe {
            number,
            way,
            weather,
            reading: Reading::Open,
            offset: 0,
            thrown: 0,
            piece: None,
            delay: None,
            queue: VecDeque::new(),
            queued: 0,
            written: 0,
            last_write: None,
            link_free_at: now,
            blocked: false,
        }
    }

    /// `c1 >`
    fn tag(&self) -> String {
        format!("c{} {}", self.number, self.way.arrow())
    }

    /// Reads from the source are wanted now.
    fn wants_read(&self) -> bool {
        match self.reading {
            Reading::Open => self.queued < MAX_QUEUED,
            Reading::Closed | Reading::Stalled => true,
            Reading::Resetting | Reading::Ended => false,
        }
    }

    /// How much the next read may take, so that the queue stays within [`MAX_QUEUED`].
    fn read_limit(&self, buffer: usize) -> usize {
        if self.reading != Reading::Open {
            return buffer;
        }
        let room = MAX_QUEUED.saturating_sub(self.queued);
        let piece = self.piece_size().unwrap_or(buffer);
        // Each piece of `piece` bytes costs `piece + ENTRY_COST`.
        let bytes = (room as u128 * piece as u128 / (piece + ENTRY_COST) as u128) as usize;
        bytes.clamp(1, buffer)
    }

    /// The size of the pieces the stream is cut into for writing, if any.
    fn piece_size(&self) -> Option<usize> {
        self.weather.slice.or_else(|| {
            self.weather
                .bandwidth
                .map(|rate| (rate / BANDWIDTH_PIECES_PER_SECOND).max(1) as usize)
        })
    }

    /// Direction over: end of stream read (or nothing more will be) and everything queued done.
    fn finished(&self) -> bool {
        self.reading == Reading::Ended && self.queue.is_empty()
    }

    /// The fate due at the current offset, if any: reset before close before stall.
    fn apply_fate(&mut self, cx: &Context) {
        if self.reading != Reading::Open {
            return;
        }
        let at = Some(self.offset);
        let fate = if self.weather.reset_after == at {
            Some((Reading::Resetting, Entry::Reset))
        } else if self.weather.close_after == at {
            Some((Reading::Closed, Entry::Fin))
        } else if self.weather.stall_after == at {
            Some((Reading::Stalled, Entry::CloseBoth))
        } else {
            None
        };
        let Some((reading, entry)) = fate else {
            return;
        };
        self.log_piece(cx);
        let n = self.offset;
        let tag = self.tag();
        match reading {
            Reading::Closed => cx.log.event(format_args!(
                "{tag} closed after {n} {} (FIN to the {})",
                bytes_word(n),
                self.way.destination()
            )),
            Reading::Stalled => cx.log.event(format_args!(
                "{tag} stalled after {n} {}: nothing more goes through",
                bytes_word(n)
            )),
            _ => cx
                .log
                .event(format_args!("{tag} reset after {n} {}", bytes_word(n))),
        }
        self.reading = reading;
        // A stall queues nothing: what it does happens when the sender closes (see `end_of_stream`).
        if reading != Reading::Stalled {
            self.push(entry);
        }
    }

    fn push(&mut self, entry: Entry) {
        self.queued += ENTRY_COST
            + match &entry {
                Entry::Data { bytes, .. } => bytes.len(),
                _ => 0,
            };
        self.queue.push_back(entry);
    }

    /// Takes `bytes`, just read from the source.
    fn feed(&mut self, mut bytes: &[u8], now: Instant, cx: &Context) {
        loop {
            self.apply_fate(cx);
            if bytes.is_empty() {
                return;
            }
            if self.reading != Reading::Open {
                self.thrown += bytes.len() as u64;
                return;
            }
            let mut take = bytes.len();
            for fate in [
                self.weather.reset_after,
                self.weather.close_after,
                self.weather.stall_after,
            ]
            .into_iter()
            .flatten()
            {
                if fate > self.offset {
                    take = take.min((fate - self.offset).min(usize::MAX as u64) as usize);
                }
            }
            if let Some(size) = self.piece_size() {
                let into_piece = (self.offset % size as u64) as usize;
                take = take.min(size - into_piece);
            }
            let (chunk, rest) = bytes.split_at(take);
            self.take_chunk(chunk, now, cx);
            bytes = rest;
        }
    }

    /// Queues `chunk`, which lies within one piece, with its delay, and logs what the grid says.
    fn take_chunk(&mut self, chunk: &[u8], now: Instant, cx: &Context) {
        let delay = if let Some(size) = self.weather.slice {
            let size = size as u64;
            if self.offset % size == 0 {
                let delay = self.choose_delay(self.offset, cx);
                self.piece = Some(Piece {
                    start: self.offset,
                    len: 0,
                    preview: Vec::new(),
                    delay,
                });
            }
            let piece = self.piece.get_or_insert_with(|| Piece {
                start: self.offset,
                len: 0,
                preview: Vec::new(),
                delay: Duration::ZERO,
            });
            piece.len += chunk.len();
            let room = PREVIEW.saturating_sub(piece.preview.len());
            piece.preview.extend_from_slice(&chunk[..chunk.len().min(room)]);
            piece.delay
        } else {
            match self.delay {
                Some(delay) => delay,
                None if self.weather.has_delay() => {
                    let delay = self.choose_delay(0, cx);
                    cx.log
                        .event(format_args!("{} delayed {} ms", self.tag(), delay.as_millis()));
                    self.delay = Some(delay);
                    delay
                }
                None => Duration::ZERO,
            }
        };
        self.offset += chunk.len() as u64;
        self.push(Entry::Data {
            bytes: chunk.to_vec(),
            sent: 0,
            ready: now + delay,
        });
        if let Some(size) = self.weather.slice
            && self.offset % size as u64 == 0
        {
            self.log_piece(cx);
        }
    }

    fn choose_delay(&self, offset: u64, cx: &Context) -> Duration {
        if !self.weather.has_delay() {
            return Duration::ZERO;
        }
        let roll = cx
            .dice
            .roll(Purpose::Delay, &[self.number, self.way.index() as u64, offset]);
        self.weather.delay(roll)
    }

    /// Logs the piece being read, complete or cut short, and forgets it.
    fn log_piece(&mut self, cx: &Context) {
        let Some(piece) = self.piece.take() else {
            return;
        };
        if piece.len == 0 {
            return;
        }
        // The line gives the length; a long piece shows its first bytes, then `...`.
        let mut shown = escape_bytes(&piece.preview);
        if piece.len > piece.preview.len() {
            shown.push_str("...");
        }
        let delayed = if self.weather.has_delay() {
            format!(", delayed {} ms", piece.delay.as_millis())
        } else {
            String::new()
        };
        cx.log.event(format_args!(
            "{} {} {} at {}: {shown}{delayed}",
            self.tag(),
            piece.len,
            bytes_word(piece.len as u64),
            piece.start
        ));
    }

    /// The source sent end of stream (read returned 0).
    fn end_of_stream(&mut self, cx: &Context) {
        let tag = self.tag();
        let total = self.offset + self.thrown;
        match self.reading {
            Reading::Open => {
                self.log_piece(cx);
                cx.log.event(format_args!(
                    "{tag} end of stream after {total} {}",
                    bytes_word(total)
                ));
                self.push(Entry::Fin);
            }
            Reading::Closed => {
                cx.log.event(format_args!(
                    "{tag} end of stream after {total} {} ({} thrown away after the close)",
                    bytes_word(total),
                    self.thrown
                ));
            }
            Reading::Stalled => {
                cx.log.event(format_args!(
                    "{tag} end of stream after {total} {} ({} swallowed by the stall); closing both sides",
                    bytes_word(total),
                    self.thrown
                ));
                self.push(Entry::CloseBoth);
            }
            Reading::Resetting | Reading::Ended => {}
        }
        self.reading = Reading::Ended;
    }

    /// Writes what is due to `destination`. Returns when it next has something to do (`None`:
    /// nothing queued, or waiting for the destination to be writable), or how the connection ends.
    fn flush(&mut self, destination: &TcpStream, now: Instant, cx: &Context) -> Result<Option<Instant>, End> {
        self.blocked = false;
        while let Some(entry) = self.queue.front_mut() {
            match entry {
                Entry::Data { bytes, sent, ready } => {
                    let mut at = *ready;
                    if *sent == 0 {
                        if let (Some(_), Some(last)) = (self.weather.slice, self.last_write) {
                            at = at.max(last + self.weather.slice_pause);
                        }
                        if self.weather.bandwidth.is_some() {
                            at = at.max(self.link_free_at);
                        }
                    }
                    if at > now {
                        return Ok(Some(at));
                    }
                    match (&*destination).write(&bytes[*sent..]) {
                        Ok(n) => {
                            *sent += n;
                            self.written += n as u64;
                            if let Some(rate) = self.weather.bandwidth {
                                let busy = Duration::from_secs_f64(n as f64 / rate as f64);
                                self.link_free_at = self.link_free_at.max(now) + busy;
                            }
                            if *sent == bytes.len() {
                                self.queued -= bytes.len() + ENTRY_COST;
                                self.queue.pop_front();
                                self.last_write = Some(now);
                            }
                        }
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                            self.blocked = true;
                            return Ok(None);
                        }
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => {
                            cx.log.event(format_args!(
                                "{} writing to the {} failed: {err}",
                                self.tag(),
                                self.way.destination()
                            ));
                            return Err(End::Reset);
                        }
                    }
                }
                Entry::Fin => {
                    // The destination may have gone already; its own direction will tell.
                    let _ = destination.shutdown(Shutdown::Write);
                    self.queued -= ENTRY_COST;
                    self.queue.pop_front();
                }
                Entry::Reset => return Err(End::Reset),
                Entry::CloseBoth => return Err(End::Closed),
            }
        }
        Ok(None)
    }
}

/// A connection: the client's socket, the server's, and the two directions between them.
struct Connection {
    number: u64,
    /// `[client, server]`: the up pipe reads the first and writes the second.
    sockets: [TcpStream; 2],
    pipes: [Pipe; 2],
    /// When `reset_after_time` resets the connection, and that time.
    reset_at: Option<(Instant, Duration)>,
}

impl Connection {
    fn run(&mut self, dice: Dice, shared: &Shared) -> End {
        let cx = Context {
            log: &shared.log,
            dice,
        };
        let mut buffer = vec![0u8; READ_BUFFER];
        for pipe in &mut self.pipes {
            pipe.apply_fate(&cx);
        }
        loop {
            if shared.stopping() {
                return End::Stopped;
            }
            let now = Instant::now();
            if let Some((at, after)) = self.reset_at
                && now >= at
            {
                cx.log.event(format_args!(
                    "c{} reset after {} ms",
                    self.number,
                    after.as_millis()
                ));
                return End::Reset;
            }
            let mut wake: Option<Instant> = self.reset_at.map(|(at, _)| at);
            for way in [Way::Up, Way::Down] {
                let destination = &self.sockets[1 - way.index()];
                match self.pipes[way.index()].flush(destination, now, &cx) {
                    Ok(Some(at)) => wake = Some(wake.map_or(at, |w| w.min(at))),
                    Ok(None) => {}
                    Err(end) => return end,
                }
            }
            if self.pipes.iter().all(Pipe::finished) {
                return End::Closed;
            }
            let mut fds = [
                libc::pollfd {
                    fd: shared.stop_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                self.pollfd(0),
                self.pollfd(1),
            ];
            let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(err) = poll(&mut fds, timeout) {
                cx.log.event(format_args!("c{} poll failed: {err}", self.number));
                return End::Reset;
            }
            if fds[0].revents != 0 {
                return End::Stopped;
            }
            let now = Instant::now();
            for way in [Way::Up, Way::Down] {
                let i = way.index();
                let ready = fds[1 + i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
                if !ready || !self.pipes[i].wants_read() {
                    continue;
                }
                let limit = self.pipes[i].read_limit(buffer.len());
                match (&self.sockets[i]).read(&mut buffer[..limit]) {
                    Ok(0) => self.pipes[i].end_of_stream(&cx),
                    Ok(n) => self.pipes[i].feed(&buffer[..n], now, &cx),
                    Err(err)
                        if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                    Err(err) => {
                        let pipe = &self.pipes[i];
                        let total = pipe.offset + pipe.thrown;
                        if err.kind() == io::ErrorKind::ConnectionReset {
                            cx.log.event(format_args!(
                                "{} reset by the {} after {total} {}",
                                pipe.tag(),
                                way.source(),
                                bytes_word(total)
                            ));
                        } else {
                            cx.log.event(format_args!(
                                "{} reading from the {} failed after {total} {}: {err}",
                                pipe.tag(),
                                way.source(),
                                bytes_word(total)
                            ));
                        }
                        return End::Reset;
                    }
                }
            }
        }
    }

    /// What to `poll` for on socket `i` (0: the client's, 1: the server's); fd -1 (ignored by
    /// `poll`) when nothing, so that a socket that has hung up does not wake us over and over.
    fn pollfd(&self, i: usize) -> libc::pollfd {
        let mut events = 0;
        if self.pipes[i].wants_read() {
            events |= libc::POLLIN;
        }
        // The pipe that writes to socket i is the other one.
        if self.pipes[1 - i].blocked {
            events |= libc::POLLOUT;
        }
        libc::pollfd {
            fd: if events == 0 {
                -1
            } else {
                self.sockets[i].as_raw_fd()
            },
            events,
            revents: 0,
        }
    }

    /// Closes both sockets as `end` says, and logs the connection's last line.
    fn finish(self, end: End, log: &Log) {
        let number = self.number;
        let (up, down) = (self.pipes[0].written, self.pipes[1].written);
        let [client, server] = self.sockets;
        match end {
            End::Closed => {
                drop(client);
                drop(server);
                log.event(format_args!(
                    "c{number} closed ({up} {} up, {down} {} down)",
                    bytes_word(up),
                    bytes_word(down)
                ));
            }
            End::Reset => {
                reset(client);
                reset(server);
                log.event(format_args!(
                    "c{number} reset: RST to the client and to the server"
                ));
            }
            End::Stopped => {
                drop(client);
                drop(server);
                log.event(format_args!("c{number} closed: the proxy is stopping"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::log::LogTo;
    use super::*;

    /// Feeds `stream` to a fresh up pipe in pieces of the given sizes (cycled), then end of
    /// stream, and returns the log.
    fn log_of(weather: &Weather, stream: &[u8], splits: &[usize]) -> Vec<String> {
        let log = Log::new(LogTo::Memory, false);
        let cx = Context {
            log: &log,
            dice: Dice::new(7),
        };
        let now = Instant::now();
        let mut pipe = Pipe::new(1, Way::Up, weather.clone(), now);
        pipe.apply_fate(&cx);
        let mut rest = stream;
        for &size in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            pipe.feed(chunk, now, &cx);
            rest = tail;
        }
        pipe.end_of_stream(&cx);
        log.lines()
    }

    /// The heart of determinism: however `read` splits the bytes, the log is the same.
    #[test]
    fn the_log_does_not_depend_on_how_reads_split_the_stream() {
        let stream: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        let weathers = [
            Weather::default(),
            Weather {
                slice: Some(7),
                latency: Duration::from_millis(30),
                jitter: Duration::from_millis(20),
                ..Weather::default()
            },
            Weather {
                latency: Duration::from_millis(30),
                jitter: Duration::from_millis(20),
                ..Weather::default()
            },
            Weather {
                slice: Some(1),
                close_after: Some(5),
                ..Weather::default()
            },
            Weather {
                slice: Some(16),
                reset_after: Some(100),
                ..Weather::default()
            },
            Weather {
                stall_after: Some(33),
                bandwidth: Some(100),
                ..Weather::default()
            },
        ];
        for weather in &weathers {
            let whole = log_of(weather, &stream, &[stream.len()]);
            for splits in [&[1][..], &[3, 5], &[64], &[13, 1, 2], &[199, 1]] {
                assert_eq!(
                    log_of(weather, &stream, splits),
                    whole,
                    "weather {weather:?}, reads of {splits:?} bytes"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, failure_persistence: None, ..Default::default() })]

        /// Any weather, any bytes, any way of splitting them into reads: the same log, and no panic.
        #[test]
        fn any_split_gives_the_same_log(
            stream in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            splits in proptest::collection::vec(1usize..80, 1..8),
            slice in proptest::option::of(1usize..50),
            latency in 0u64..50,
            jitter in 0u64..50,
            bandwidth in proptest::option::of(1u64..5000),
            fates in (proptest::option::of(0u64..700), proptest::option::of(0u64..700), proptest::option::of(0u64..700)),
        ) {
            let weather = Weather {
                slice,
                latency: Duration::from_millis(latency),
                jitter: Duration::from_millis(jitter),
                bandwidth,
                close_after: fates.0,
                reset_after: fates.1,
                stall_after: fates.2,
                ..Weather::default()
            };
            let whole = log_of(&weather, &stream, &[stream.len().max(1)]);
            proptest::prop_assert_eq!(log_of(&weather, &stream, &splits), whole);
        }
    }

    #[test]
    fn slices_are_logged_on_the_grid_with_their_bytes() {
        let weather = Weather {
            slice: Some(4),
            ..Weather::default()
        };
        assert_eq!(
            log_of(&weather, b"SET a 1\n", &[3]),
            [
                r#"c1 > 4 bytes at 0: "SET ""#,
                r#"c1 > 4 bytes at 4: "a 1\n""#,
                "c1 > end of stream after 8 bytes",
            ]
        );
    }

    #[test]
    fn fates_happen_at_their_offset_even_at_zero() {
        let close = Weather {
            close_after: Some(0),
            ..Weather::default()
        };
        assert_eq!(
            log_of(&close, b"abc", &[1]),
            [
                "c1 > closed after 0 bytes (FIN to the server)",
                "c1 > end of stream after 3 bytes (3 thrown away after the close)",
            ]
        );
        let stall = Weather {
            stall_after: Some(2),
            ..Weather::default()
        };
        assert_eq!(
            log_of(&stall, b"abcde", &[5]),
            [
                "c1 > stalled after 2 bytes: nothing more goes through",
                "c1 > end of stream after 5 bytes (3 swallowed by the stall); closing both sides",
            ]
        );
    }

    #[test]
    fn the_queue_stays_within_its_cap_even_for_one_byte_slices() {
        let weather = Weather {
            slice: Some(1),
            ..Weather::default()
        };
        let log = Log::new(LogTo::Memory, true);
        let cx = Context {
            log: &log,
            dice: Dice::new(1),
        };
        let now = Instant::now();
        let mut pipe = Pipe::new(1, Way::Up, weather, now);
        let junk = vec![b'x'; READ_BUFFER];
        while pipe.wants_read() {
            let limit = pipe.read_limit(READ_BUFFER);
            pipe.feed(&junk[..limit], now, &cx);
        }
        assert!(pipe.queued <= MAX_QUEUED + ENTRY_COST + 1, "{}", pipe.queued);
        assert!(pipe.queue.len() < MAX_QUEUED / ENTRY_COST);
    }
}
