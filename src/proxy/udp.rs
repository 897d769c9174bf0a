//! UDP: one thread and one `poll` loop.
//!
//! Clients send datagrams to the proxy's socket. For each client address the proxy opens a socket
//! of its own, connected to the server, and forwards that client's datagrams through it; what the
//! server answers on it goes back to that client from the proxy's socket. (One socket towards the
//! server for all clients could not tell whose answer is whose.)
//!
//! Datagrams are numbered `d1`, `d2`, ... per client and direction, in the order they reach the
//! proxy: `d3 c1 >` is the third datagram client 1 sent, `d3 c1 <` the third the server sent it.
//! Each one's fate (dropped, truncated, delayed, held back so others overtake it, sent twice) is
//! chosen from the seed and (client, direction, number) alone. Those waiting for their time sit in
//! a queue ordered by (time, number).
//!
//! Why per direction, not one count for all: a client that retransmits, and a server that answers
//! every copy of a duplicated request, send datagrams at the same moment from both sides (the
//! server's second answer races the client's next request). Whichever reached the proxy first
//! would take the lower number, and with it the other's fate: the same seed would lose different
//! datagrams on different runs. Within one client and one direction, the order is the order the
//! sender sent in, which the weather alone decides for a client that waits for its replies.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::dice::{Dice, Purpose};
use super::weather::{REORDER_HOLD, Weather};
use super::{ProxyConfig, Shared, poll};
use crate::escape::escape_bytes;

/// The largest UDP payload is 65,507 bytes (IPv4); a buffer of 64 KiB holds every datagram.
const MAX_DATAGRAM: usize = 64 * 1024;
/// Datagrams waiting for their time hold at most this many bytes; past it, new ones are dropped.
pub const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;
/// A client that sent nothing and got nothing for this long is forgotten (its socket closed).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A log line shows at most this many bytes of a datagram.
const PREVIEW: usize = 40;
/// Datagrams read from one socket before the loop looks at the others.
const BATCH: usize = 64;

pub(crate) fn bind(config: &ProxyConfig) -> io::Result<UdpSocket> {
    UdpSocket::bind(config.listen)
}

/// A client: an address that sent us a datagram, and our socket towards the server for it.
struct Client {
    number: u64,
    peer: SocketAddr,
    upstream: UdpSocket,
    weathered: bool,
    last_active: Instant,
    /// How many datagrams this client sent (up) and was sent (down) so far.
    counted_up: u64,
    counted_down: u64,
}

/// Up: client to server; down: server to client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    Up,
    Down,
}

/// A datagram waiting for its time.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    due: Instant,
    /// The datagram's number, then 0 for the first copy and 1 for a duplicate: ties keep order.
    number: u64,
    copy: u8,
    client: u64,
    way: Way,
    bytes: Vec<u8>,
}

struct Udp<'a> {
    socket: UdpSocket,
    config: &'a ProxyConfig,
    dice: Dice,
    shared: &'a Shared,
    clients: HashMap<u64, Client>,
    by_peer: HashMap<SocketAddr, u64>,
    next_client: u64,
    pending: BinaryHeap<Reverse<Pending>>,
    pending_bytes: usize,
}

pub(crate) fn run(socket: UdpSocket, config: &ProxyConfig, dice: Dice, shared: &Shared) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let mut udp = Udp {
        socket,
        config,
        dice,
        shared,
        clients: HashMap::new(),
        by_peer: HashMap::new(),
        next_client: 1,
        pending: BinaryHeap::new(),
        pending_bytes: 0,
    };
    let result = udp.serve();
    shared.open.store(0, Ordering::SeqCst);
    result
}

impl Udp<'_> {
    fn serve(&mut self) -> io::Result<()> {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        loop {
            if self.shared.stopping() {
                return Ok(());
            }
            let now = Instant::now();
            self.send_due(now);
            self.forget_idle(now);
            // The clients' sockets, in a fixed order, after the stop pipe and our own socket.
            let numbers: Vec<u64> = {
                let mut numbers: Vec<u64> = self.clients.keys().copied().collect();
                numbers.sort_unstable();
                numbers
            };
            let mut fds = vec![
                libc::pollfd {
                    fd: self.shared.stop_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.socket.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            fds.extend(numbers.iter().map(|n| libc::pollfd {
                fd: self.clients[n].upstream.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }));
            let wake = [
                self.pending.peek().map(|Reverse(p)| p.due),
                self.clients.values().map(|c| c.last_active + IDLE_TIMEOUT).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            poll(
                &mut fds,
                wake.map(|at| at.saturating_duration_since(Instant::now())),
            )?;
            if fds[0].revents != 0 {
                return Ok(());
            }
            if fds[1].revents != 0 {
                self.read_clients(&mut buffer);
            }
            for (i, number) in numbers.iter().enumerate() {
                if fds[2 + i].revents != 0 {
                    self.read_server(*number, &mut buffer);
                }
            }
        }
    }

    /// Datagrams from clients, towards the server.
    fn read_clients(&mut self, buffer: &mut [u8]) {
        for _ in 0..BATCH {
            let (n, peer) = match self.socket.recv_from(buffer) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // A failed earlier send_to to a client can be reported here (ICMP "port
                // unreachable": the client is gone). Nothing to do about it.
                Err(_) => continue,
            };
            let now = Instant::now();
            let client = match self.by_peer.get(&peer) {
                Some(&client) => client,
                None => match self.add_client(peer, now) {
                    Some(client) => client,
                    None => continue,
                },
            };
            let Some(known) = self.clients.get_mut(&client) else {
                continue;
            };
            known.last_active = now;
            known.counted_up += 1;
            let number = known.counted_up;
            self.arrived(number, client, Way::Up, &buffer[..n], now);
        }
    }

    /// A datagram from an address we do not know yet: a new client, unless there are too many.
    fn add_client(&mut self, peer: SocketAddr, now: Instant) -> Option<u64> {
        let log = &self.shared.log;
        if self.clients.len() >= self.config.max_connections {
            log.event(format_args!(
                "a datagram from {peer}: dropped, {} clients already (--max-connections)",
                self.clients.len()
            ));
            return None;
        }
        let number = self.next_client;
        let upstream = match connect_upstream(self.config.to) {
            Ok(upstream) => upstream,
            Err(err) => {
                log.event(format_args!(
                    "a datagram from {peer}: dropped, no socket towards {}: {err}",
                    self.config.to
                ));
                return None;
            }
        };
        self.next_client += 1;
        let weathered = self.config.only_first.is_none_or(|first| number <= first);
        if weathered {
            log.event(format_args!("c{number} from {peer}"));
        } else {
            log.event(format_args!(
                "c{number} from {peer} (no weather: only the first clients get it)"
            ));
        }
        self.clients.insert(
            number,
            Client {
                number,
                peer,
                upstream,
                weathered,
                last_active: now,
                counted_up: 0,
                counted_down: 0,
            },
        );
        self.by_peer.insert(peer, number);
        self.shared.open.store(self.clients.len(), Ordering::SeqCst);
        Some(number)
    }

    /// Datagrams from the server for client `number`.
    fn read_server(&mut self, number: u64, buffer: &mut [u8]) {
        for _ in 0..BATCH {
            let Some(client) = self.clients.get(&number) else {
                return;
            };
            let n = match client.upstream.recv(buffer) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // Typically "connection refused": an earlier datagram reached a port where
                    // nothing listens, and the server's kernel said so (ICMP port unreachable).
                    self.shared
                        .log
                        .event(format_args!("c{number} < from the server: {err}"));
                    continue;
                }
            };
            let now = Instant::now();
            let Some(client) = self.clients.get_mut(&number) else {
                return;
            };
            client.last_active = now;
            client.counted_down += 1;
            let datagram = client.counted_down;
            self.arrived(datagram, number, Way::Down, &buffer[..n], now);
        }
    }

    /// Decides the fate of datagram `number` of `client` going `way`, logs it, and queues it (or
    /// not).
    fn arrived(&mut self, number: u64, client: u64, way: Way, bytes: &[u8], now: Instant) {
        let clear = Weather::default();
        let weathered = self.clients.get(&client).is_some_and(|c| c.weathered);
        let weather = match (weathered, way) {
            (false, _) => &clear,
            (true, Way::Up) => &self.config.up,
            (true, Way::Down) => &self.config.down,
        };
        let arrow = if way == Way::Up { '>' } else { '<' };
        let mut shown = escape_bytes(&bytes[..bytes.len().min(PREVIEW)]);
        if bytes.len() > PREVIEW {
            shown.push_str("...");
        }
        let mut line = format!(
            "d{number} c{client} {arrow} {} {}: {shown}",
            bytes.len(),
            super::weather::bytes_word(bytes.len() as u64)
        );
        let key = dice_key(number, client, way);
        if self.dice.chance(Purpose::Drop, &key, weather.drop) {
            self.shared.log.event(format_args!("{line}, dropped"));
            return;
        }
        let mut payload = bytes;
        if let Some(limit) = weather.truncate
            && bytes.len() > limit
        {
            payload = &bytes[..limit];
            line.push_str(&format!(
                ", truncated to {limit} {}",
                super::weather::bytes_word(limit as u64)
            ));
        }
        let mut wait = Duration::ZERO;
        if weather.has_delay() {
            wait = weather.delay(self.dice.roll(Purpose::Delay, &key));
            line.push_str(&format!(", delayed {} ms", wait.as_millis()));
        }
        if self.dice.chance(Purpose::Reorder, &key, weather.reorder) {
            wait += REORDER_HOLD;
            line.push_str(&format!(", held back {} ms", REORDER_HOLD.as_millis()));
        }
        let copies = if self.dice.chance(Purpose::Duplicate, &key, weather.duplicate) {
            line.push_str(", duplicated");
            2
        } else {
            1
        };
        if self.pending_bytes + copies * payload.len() > MAX_PENDING_BYTES {
            self.shared.log.event(format_args!(
                "{line}; dropped instead: {MAX_PENDING_BYTES} bytes are waiting already"
            ));
            return;
        }
        self.shared.log.event(format_args!("{line}"));
        for copy in 0..copies {
            self.pending_bytes += payload.len();
            self.pending.push(Reverse(Pending {
                due: now + wait,
                number,
                copy: copy as u8,
                client,
                way,
                bytes: payload.to_vec(),
            }));
        }
    }

    /// Sends every datagram whose time has come.
    fn send_due(&mut self, now: Instant) {
        while self.pending.peek().is_some_and(|Reverse(p)| p.due <= now) {
            let Some(Reverse(datagram)) = self.pending.pop() else {
                return;
            };
            self.pending_bytes -= datagram.bytes.len();
            // The client may have been forgotten meanwhile: then there is nobody to send to.
            let Some(client) = self.clients.get(&datagram.client) else {
                continue;
            };
            let sent = match datagram.way {
                Way::Up => client.upstream.send(&datagram.bytes),
                Way::Down => self.socket.send_to(&datagram.bytes, client.peer),
            };
            if let Err(err) = sent {
                let arrow = if datagram.way == Way::Up { '>' } else { '<' };
                self.shared.log.event(format_args!(
                    "d{} c{} {arrow} not sent: {err}",
                    datagram.number, client.number
                ));
            }
        }
    }

    /// Forgets clients idle for [`IDLE_TIMEOUT`], closing their sockets towards the server.
    fn forget_idle(&mut self, now: Instant) {
        let idle: Vec<u64> = self
            .clients
            .values()
            .filter(|c| now >= c.last_active + IDLE_TIMEOUT)
            .map(|c| c.number)
            .collect();
        for number in idle {
            if let Some(client) = self.clients.remove(&number) {
                self.by_peer.remove(&client.peer);
                self.shared.log.event(format_args!(
                    "c{number} forgotten after {} s without datagrams",
                    IDLE_TIMEOUT.as_secs()
                ));
            }
        }
        self.shared.open.store(self.clients.len(), Ordering::SeqCst);
    }
}

/// Where a datagram's choices are made: (number, direction, client). The first client's datagrams
/// towards the server keep the key `[number]` that every datagram had when the proxy counted them
/// all together, so the recorded one-way transcripts still hold.
fn dice_key(number: u64, client: u64, way: Way) -> Vec<u64> {
    match (client, way) {
        (1, Way::Up) => vec![number],
        (_, Way::Up) => vec![number, 0, client],
        (_, Way::Down) => vec![number, 1, client],
    }
}

/// A socket of our own towards the server, for one client.
fn connect_upstream(to: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = if to.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind((any, 0))?;
    socket.connect(to)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}
