//! # Lesson 11: request and reply over UDP
//!
//! The key-value protocol of lesson 05, one command per datagram. UDP delivers each datagram
//! whole or not at all, but it promises nothing else: a request or a reply can be lost, arrive
//! twice, or arrive after one sent later. What TCP gave lessons 05 to 09 for free, this client
//! and server bring themselves:
//!
//! - **Request ids.** Each request starts with a number (`17 GET a`), and its reply starts with
//!   the same number (`17 hello`). The client keeps only the reply to the request it is waiting
//!   for: a duplicate, or a late reply to an earlier request, is ignored.
//! - **Timeouts and retransmission.** No reply within the timeout: send the same request again
//!   (same id), and wait longer each time: exponential backoff with jitter, from `src/retry.rs`
//!   (lesson 09). The client says on stderr each time it sends again, and gives up after
//!   `--attempts` attempts or at `--deadline`.
//! - **Repeats made harmless.** The client cannot tell a lost request from a lost reply, so the
//!   server may see a request twice. It remembers the replies it sent, keyed by (client address,
//!   request id), and answers a repeat with the same reply without carrying it out again: a
//!   repeated `DELETE` says `OK` twice instead of `OK`, then `ERROR no such key`.
//! - **A largest datagram.** 1200 bytes, requests and replies alike (`src/udp_kv.rs` says why).
//!
//! The datagram format is written down in `src/udp_kv.rs` and in the book's "The datagram format".
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 11_udp_kv -- server                          # terminal 1
//! cargo run --bin 11_udp_kv -- client set greeting hello       # terminal 2: OK
//! cargo run --bin 11_udp_kv -- client get greeting             # hello
//! nc -u 127.0.0.1 65441                                        # type: 1 GET greeting
//! # through a lossy path: 30 % of datagrams lost, some doubled or reordered
//! cargo run --bin workbook -- proxy --udp --to 127.0.0.1:65441 --drop 30% --duplicate 20% --reorder 20% --seed 3
//! cargo run --bin 11_udp_kv -- client --port <the proxy's port> get greeting
//! ```

use std::io::{self, BufRead, IsTerminal};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use socket_workbook::escape::{escape_abbreviated, escape_bytes};
use socket_workbook::kv::{self, Command, Store};
use socket_workbook::lesson::{self, Deadline, errno_name};
use socket_workbook::retry::{Backoff, GaveUp, Jitter, Next, Retry, RetryPolicy, random_seed};
use socket_workbook::udp_kv::{
    MAX_DATAGRAM, ReplyCache, encode_reply, encode_request, first_request_id, parse_reply, parse_request,
    split_id,
};
use socket_workbook::{log_error, log_line};

/// The lesson's port, for the server and the client alike.
const DEFAULT_PORT: u16 = 65441;

/// Lesson 11: the key-value protocol over UDP, with request ids, retransmission and a reply cache.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Serve the key-value store over UDP: one request datagram in, one reply datagram out.
    Server(ServerArgs),
    /// Send commands to the server, again and again until each one is answered.
    Client(ClientArgs),
}

#[derive(Args)]
struct ServerArgs {
    /// Address to receive datagrams on (127.0.0.1: from this machine only; 0.0.0.0 or ::, from
    /// anywhere your firewall allows).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// UDP port (0 = let the kernel choose a free one; the real port is printed).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
}

// ANCHOR: client_args
#[derive(Args)]
#[command(
    override_usage = "11_udp_kv client [OPTIONS] set key value... | get key | delete key\n       \
                      11_udp_kv client [OPTIONS]        (no command: read commands from stdin, one per line)",
    after_help = "Exit codes: 0 every command was answered OK or with a value; 1 some reply was an ERROR line; \
                  2 wrong usage; 5 some command got no reply within --attempts attempts or before --deadline."
)]
struct ClientArgs {
    /// Host the server runs on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// UDP port the server receives on.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// How long to wait for the first reply before sending again, in seconds. Each later wait is
    /// random, between this and three times the wait before (at most 2 s).
    #[arg(long, value_name = "SECONDS", default_value = "0.25", value_parser = lesson::parse_seconds)]
    timeout: Duration,
    /// Most attempts per command, the first one included (1: never send again).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    attempts: u32,
    /// How long one command may take, every attempt included, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = lesson::parse_seconds)]
    deadline: Duration,
    /// Seed for the waits and the first request id: the same seed, the same waits and ids.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Also tell on stderr about every reply that is ignored (duplicates, late replies, junk).
    #[arg(long, short)]
    verbose: bool,
    /// The command and its arguments. The value words of SET are joined with single spaces.
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The longest wait for one reply.
const MAX_WAIT: Duration = Duration::from_secs(2);
// ANCHOR_END: client_args

/// Some reply was an `ERROR` line.
const EXIT_ERROR_REPLY: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// Some command got no reply in the end.
const EXIT_GAVE_UP: u8 = 5;

fn main() -> ExitCode {
    match Cli::parse().mode {
        Mode::Server(args) => serve(&args),
        Mode::Client(args) => run_client(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

fn serve(args: &ServerArgs) -> ExitCode {
    let address = if args.host.contains(':') {
        format!("[{}]:{}", args.host, args.port)
    } else {
        format!("{}:{}", args.host, args.port)
    };
    // No listen, no accept: a bound UDP socket receives datagrams from anyone at once.
    let socket = match UdpSocket::bind(&address) {
        Ok(socket) => socket,
        Err(err) => lesson::exit_bind_failed(&address, &err),
    };
    match socket.local_addr() {
        Ok(bound) => log_line!("listening on {bound}"),
        Err(err) => {
            log_error!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    let mut server = Server {
        socket,
        store: Store::new(),
        replies: ReplyCache::new(),
    };
    server.run();
    ExitCode::SUCCESS
}

struct Server {
    socket: UdpSocket,
    store: Store,
    replies: ReplyCache,
}

impl Server {
    // ANCHOR: server_loop
    fn run(&mut self) {
        // One byte more than the largest datagram: if recv_from fills it, the datagram was too
        // long (the kernel cut it to fit, and the rest is gone).
        let mut buffer = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            // recv_from says who sent it: there is no connection, each datagram names its peer.
            let (length, peer) = match self.socket.recv_from(&mut buffer) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    log_error!("recv_from failed: {err}");
                    // Deliberate: a pause, so an error that repeats does not spin the CPU.
                    thread::sleep(lesson::ACCEPT_PAUSE);
                    continue;
                }
            };
            self.answer(&buffer[..length], peer);
        }
    }
    // ANCHOR_END: server_loop

    // ANCHOR: answer
    /// Answers one datagram: from the reply cache if it is a repeat, else by carrying it out.
    fn answer(&mut self, datagram: &[u8], peer: SocketAddr) {
        let shown = escape_abbreviated(datagram, 60);
        // A repeat (the same id from the same address): the same reply again, and the command is
        // not carried out twice.
        if let Some((id, _)) = split_id(datagram)
            && let Some(reply) = self.replies.get(peer, id)
        {
            let reply = reply.to_vec();
            log_line!(
                "{peer} {shown} -> {} (a repeat: the same reply again)",
                show_reply(&reply)
            );
            self.send(&reply, peer);
            return;
        }
        let (id, reply) = match parse_request(datagram) {
            Ok(request) => (request.id, self.store.apply(request.command)),
            Err(error) => match error.reply() {
                Some(answer) => answer,
                None => {
                    // No id: nothing the sender could match a reply to. Dropped, not answered.
                    log_line!("{peer} {shown}: dropped, {error}");
                    return;
                }
            },
        };
        let reply = encode_reply(id, &reply);
        log_line!("{peer} {shown} -> {}", show_reply(&reply));
        self.send(&reply, peer);
        self.replies.insert(peer, id, reply);
    }
    // ANCHOR_END: answer

    fn send(&self, reply: &[u8], peer: SocketAddr) {
        // A failed send loses one reply, which the client will ask for again: log it and go on.
        if let Err(err) = self.socket.send_to(reply, peer) {
            log_error!("send_to {peer} failed: {err}");
        }
    }
}

/// A reply for the log: without its `\n`.
fn show_reply(reply: &[u8]) -> String {
    escape_abbreviated(reply.strip_suffix(b"\n").unwrap_or(reply), 60)
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

fn run_client(args: &ClientArgs) -> ExitCode {
    // Check the command before anything else: a typo should not need a server to be reported.
    let command = if args.command.is_empty() {
        None
    } else {
        Some(command_from_words(&args.command).unwrap_or_else(|why| {
            Cli::command()
                .error(clap::error::ErrorKind::InvalidValue, why)
                .exit()
        }))
    };
    let mut client = match Client::new(args) {
        Ok(client) => client,
        Err(why) => {
            log_error!("error: {why}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut worst = 0;
    match command {
        Some(command) => worst = client.ask(&command),
        None => {
            if io::stdin().is_terminal() {
                log_error!("type commands, one per line (Ctrl-D to end): SET key value, GET key, DELETE key");
            }
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let words: Vec<String> = line.split(' ').map(String::from).collect();
                let code = match command_from_words(&words) {
                    Ok(command) => client.ask(&command),
                    Err(why) => {
                        log_error!("error: {why}");
                        EXIT_USAGE
                    }
                };
                worst = worst.max(code);
            }
        }
    }
    ExitCode::from(worst)
}

/// `["get", "a"]` becomes `GET a`, checked with the parser the server uses.
fn command_from_words(words: &[String]) -> Result<Command, String> {
    if words.iter().any(|word| word.contains(['\n', '\r'])) {
        return Err("keys and values cannot contain a line break".to_string());
    }
    let command = Command::parse(words.join(" ").as_bytes())
        .map_err(|err| format!("{err}; the commands are SET key value..., GET key and DELETE key"))?;
    let longest_id = u64::MAX.to_string().len();
    if command.to_line().len() + longest_id + 1 > MAX_DATAGRAM {
        return Err(format!(
            "the command does not fit in one datagram of {MAX_DATAGRAM} bytes"
        ));
    }
    Ok(command)
}

struct Client {
    socket: UdpSocket,
    /// `host:port` as given, for messages.
    server: String,
    policy: RetryPolicy,
    deadline: Duration,
    seed: u64,
    verbose: bool,
    /// The id of the next request.
    next_id: u64,
    /// How many commands were sent, to give each its own waits.
    asked: u64,
}

/// Why an attempt got no reply.
enum NoReply {
    /// The wait ran out.
    Silence(Duration),
    /// The kernel said nothing listens on the server's port (an ICMP "port unreachable" came
    /// back). Only a connected UDP socket hears about it.
    Refused(io::Error),
    /// Another error from `send` or `recv`.
    Failed(io::Error),
}

impl std::fmt::Display for NoReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoReply::Silence(wait) => write!(f, "no reply within {} ms", wait.as_millis()),
            NoReply::Refused(err) => write!(f, "{}: nothing receives on the server's port", plain(err)),
            NoReply::Failed(err) => write!(f, "{}", plain(err)),
        }
    }
}

impl Client {
    fn new(args: &ClientArgs) -> Result<Client, String> {
        let server = if args.host.contains(':') {
            format!("[{}]:{}", args.host, args.port)
        } else {
            format!("{}:{}", args.host, args.port)
        };
        let address: SocketAddr = (args.host.as_str(), args.port)
            .to_socket_addrs()
            .map_err(|err| format!("cannot resolve {server}: {err}"))?
            .next()
            .ok_or_else(|| format!("{server} has no address"))?;
        let local: SocketAddr = if address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(|err| format!("cannot open a UDP socket: {err}"))?;
        // A connected UDP socket sends to the server without naming it each time, receives only
        // what comes from the server's address, and hears of ICMP "port unreachable" as
        // ECONNREFUSED. No packet is sent: UDP's connect only records the address.
        socket
            .connect(address)
            .map_err(|err| format!("cannot use {server}: {err}"))?;
        let seed = args.seed.unwrap_or_else(random_seed);
        Ok(Client {
            socket,
            server,
            policy: RetryPolicy {
                max_attempts: args.attempts,
                // Decorrelated jitter: each wait between `first` and three times the one before,
                // never shorter than `first`, which suits a retransmission timeout.
                backoff: Backoff {
                    first: args.timeout,
                    cap: MAX_WAIT.max(args.timeout),
                    jitter: Jitter::Decorrelated,
                },
            },
            deadline: args.deadline,
            seed,
            verbose: args.verbose,
            // Ids start at a number drawn from the seed, not at 1: a client that restarts on the
            // same port must not repeat ids the server still remembers replies for.
            next_id: first_request_id(seed),
            asked: 0,
        })
    }

    /// Sends `command` until it is answered; prints the reply. Returns the exit code it deserves.
    fn ask(&mut self, command: &Command) -> u8 {
        let shown = command.to_line().trim_end().to_string();
        match self.request(command) {
            Ok(reply) => {
                println!("{}", String::from_utf8_lossy(&reply));
                if kv::is_error_reply(&reply) {
                    EXIT_ERROR_REPLY
                } else {
                    0
                }
            }
            Err((last, gave_up)) => {
                log_error!(
                    "error: {shown}: no reply from {}; the last attempt: {last}; {gave_up}. Is the \
                     server running? Start it with `cargo run --bin 11_udp_kv -- server`",
                    self.server
                );
                EXIT_GAVE_UP
            }
        }
    }

    // ANCHOR: request
    /// Sends `command` as one request, again (same id) after each wait without its reply, until
    /// the reply comes or the limits are reached.
    fn request(&mut self, command: &Command) -> Result<Vec<u8>, (NoReply, GaveUp)> {
        let id = self.next_id;
        self.next_id = id.wrapping_add(1);
        let number = self.asked;
        self.asked += 1;
        let datagram = encode_request(id, command);
        let deadline = Deadline::after(self.deadline);
        // Each command gets its own waits; with --seed, the same ones on every run.
        let mut retry = Retry::new(self.policy, deadline, self.seed.wrapping_add(number));
        let mut wait = self.policy.backoff.first;
        loop {
            let attempt = retry.failures() + 1;
            let outcome = match self.socket.send(&datagram) {
                // Wait for this attempt's reply, but never past the command's deadline.
                Ok(_) => self.wait_for_reply(id, Deadline::after(wait).min(deadline), wait),
                Err(err) => Err(classify(err)),
            };
            let failure = match outcome {
                Ok(reply) => return Ok(reply),
                Err(failure) => failure,
            };
            match retry.after_failure() {
                Next::RetryAfter(next_wait) => {
                    // The retries a command needed, always on stderr: `attempt 2 of 8 ...`.
                    log_error!(
                        "request {id} {}: {failure}; attempt {} of {}, waiting up to {} ms",
                        escape_bytes(shown_command(&datagram)),
                        attempt + 1,
                        self.policy.max_attempts,
                        next_wait.as_millis()
                    );
                    if matches!(failure, NoReply::Refused(_) | NoReply::Failed(_)) {
                        // Deliberate: the error came at once; wait as long as a silence would
                        // have, so a server that is starting is not hammered.
                        thread::sleep(wait);
                    }
                    wait = next_wait;
                }
                Next::GiveUp(gave_up) => return Err((failure, gave_up)),
            }
        }
    }
    // ANCHOR_END: request

    // ANCHOR: wait_for_reply
    /// Receives until the reply to request `id` arrives or `until` passes. Every other datagram
    /// is ignored: a duplicate, a late reply to an earlier request, or junk.
    fn wait_for_reply(&self, id: u64, until: Deadline, wait: Duration) -> Result<Vec<u8>, NoReply> {
        let mut buffer = [0u8; MAX_DATAGRAM + 1];
        loop {
            let Some(left) = until.time_left() else {
                return Err(NoReply::Silence(wait));
            };
            // A read timeout of the time left, not of the whole wait: ignored datagrams must not
            // make the wait longer.
            self.socket
                .set_read_timeout(Some(left))
                .map_err(NoReply::Failed)?;
            let length = match self.socket.recv(&mut buffer) {
                Ok(length) => length,
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(NoReply::Silence(wait));
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(classify(err)),
            };
            let datagram = &buffer[..length];
            match parse_reply(datagram) {
                Some(_) if length > MAX_DATAGRAM => {
                    self.tell(format_args!("ignored a reply over {MAX_DATAGRAM} bytes"))
                }
                Some((reply_id, line)) if reply_id == id => return Ok(line.to_vec()),
                Some((other, _)) => self.tell(format_args!(
                    "ignored a reply to request {other} while waiting for {id}: a duplicate or a late reply"
                )),
                None => self.tell(format_args!(
                    "ignored a datagram without a request id: {}",
                    escape_abbreviated(datagram, 60)
                )),
            }
        }
    }
    // ANCHOR_END: wait_for_reply

    /// One line on stderr with `--verbose`.
    fn tell(&self, text: std::fmt::Arguments<'_>) {
        if self.verbose {
            log_error!("{text}");
        }
    }
}

/// The command of a request datagram, without its id and `\n`: `GET a`.
fn shown_command(datagram: &[u8]) -> &[u8] {
    let line = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    split_id(line).map_or(line, |(_, command)| command)
}

/// `connection refused (ECONNREFUSED)`: what the OS says, in lower case, with the name of the
/// error number instead of Rust's `(os error 111)`.
fn plain(err: &io::Error) -> String {
    let text = err.to_string();
    let text = text.find(" (os error ").map_or(text.as_str(), |end| &text[..end]);
    let text = text.to_lowercase();
    match errno_name(err) {
        Some(name) => format!("{text} ({name})"),
        None => text,
    }
}

fn classify(err: io::Error) -> NoReply {
    if err.kind() == io::ErrorKind::ConnectionRefused {
        NoReply::Refused(err)
    } else {
        NoReply::Failed(err)
    }
}
