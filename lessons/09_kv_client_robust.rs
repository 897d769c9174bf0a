//! # Lesson 09: a key-value client that survives a misbehaving network
//!
//! Lesson 06's client sends one command, reads one reply, and gives up at the first problem.
//! Over a real network, problems are normal: a server restarts and refuses connections for a
//! moment, a connection is reset, a reply stops in the middle, a peer goes silent for good. This
//! client meets each of them and says which one it met, by the name of its error number
//! (ECONNREFUSED, ECONNRESET, EPIPE, ...):
//!
//! - It connects with a time limit (`--connect-timeout`), and gives each attempt a *deadline*
//!   for sending the command and receiving the whole reply (`--timeout`), not a timeout per
//!   `read`. The whole command, retries included, has a deadline too (`--deadline`).
//! - It tries again (`--attempts`) after waits that double and are random: exponential backoff
//!   with jitter, from `src/retry.rs`.
//! - It tries again only when that is safe. A `GET` changes nothing, so it can always be
//!   repeated. A `SET` or `DELETE` is repeated only if the server cannot have received it (the
//!   connection failed, or sending failed), unless you allow more with `--retry-unsafe`: a write
//!   whose connection broke after it was sent may have been carried out already.
//! - Every retry uses a new connection: after a reset (RST) or a close (FIN), it reconnects.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 05_kv_server                                       # terminal 1
//! cargo run --bin 09_kv_client_robust -- --verbose SET a 1            # terminal 2: OK
//! # stop the server with Ctrl-C, then:
//! cargo run --bin 09_kv_client_robust -- --verbose GET a; echo $?     # refused 4 times; 3
//! # start it again, and hold it with `nc 127.0.0.1 65433` in terminal 3 (it serves one
//! # client at a time), then:
//! cargo run --bin 09_kv_client_robust -- --verbose GET a; echo $?     # no reply; gives up: 5
//! ```
//!
//! Without a command, it reads commands from stdin, one per line, over one connection that it
//! keeps, and replaces when it breaks.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use socket_workbook::escape::escape_abbreviated;
use socket_workbook::kv::{self, Command, Verb};
use socket_workbook::lesson::{self, ConnectArgs, Deadline, DeadlineStream, errno_name};
use socket_workbook::log_error;
use socket_workbook::retry::{Backoff, GaveUp, Jitter, Next, Retry, RetryPolicy, random_seed};

// ANCHOR: args
/// Lesson 09: send one command to the key-value server, and survive what the network does to it.
#[derive(Parser)]
#[command(
    version,
    override_usage = "09_kv_client_robust [OPTIONS] SET key value... | GET key | DELETE key\n       \
                      09_kv_client_robust [OPTIONS]        (no command: read commands from stdin)",
    after_help = "Exit codes: 0 the server replied OK or a value; 1 the server replied with an ERROR line; \
                  2 wrong usage; 3 no attempt could connect; 4 no reply, and the command was \
                  not repeated because the server may have carried it out (or the reply was too long); \
                  5 gave up: no reply within --attempts attempts or before --deadline."
)]
struct Args {
    #[command(flatten)]
    server: ConnectArgs<65433>,
    /// How long one connection attempt may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = lesson::parse_seconds)]
    connect_timeout: Duration,
    /// How long one attempt may take to send the command and receive the whole reply, in seconds:
    /// a deadline for the exchange, not a timeout for each read.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = lesson::parse_seconds)]
    timeout: Duration,
    /// How long the whole command may take, every attempt and every wait included, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "6", value_parser = lesson::parse_seconds)]
    deadline: Duration,
    /// Most attempts per command, the first one included (1: never try again).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    attempts: u32,
    /// Also repeat a SET or DELETE whose connection broke after it was sent. It may then be
    /// carried out twice: only safe when no other client writes the same keys.
    #[arg(long)]
    retry_unsafe: bool,
    /// Seed for the random waits between attempts: the same seed, the same waits.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Turn on TCP keepalive: a probe after SECONDS of silence, then every SECONDS; after 3
    /// unanswered probes the connection fails with ETIMEDOUT (Linux).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=32767))]
    keepalive: Option<u32>,
    /// Tell on stderr what each attempt does, and why it failed.
    #[arg(long, short)]
    verbose: bool,
    /// The command and its arguments. The value words of SET are joined with single spaces.
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The server replied with an `ERROR` line.
const EXIT_ERROR_REPLY: u8 = 1;
/// Every attempt failed to connect: the server cannot have received the command.
const EXIT_CANNOT_CONNECT: u8 = 3;
/// No reply, and not repeated: the server may or may not have carried the command out.
const EXIT_NOT_REPEATED: u8 = 4;
/// No reply after every attempt allowed, or before the deadline.
const EXIT_GAVE_UP: u8 = 5;

/// The waits between attempts: random, below a limit that starts at 100 ms and doubles, up to 2 s.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    cap: Duration::from_secs(2),
    jitter: Jitter::Full,
};
// ANCHOR_END: args

/// The longest reply line we accept: a value can be almost as long as the server's line cap.
const MAX_REPLY: u64 = 2 * kv::MAX_LINE as u64;

/// Unanswered keepalive probes before the kernel gives up on the connection (Linux's default: 9).
const KEEPALIVE_PROBES: u32 = 3;

fn main() -> ExitCode {
    let args = Args::parse();
    // Check the command before connecting: a typo should not need a server to be reported.
    let request = if args.command.is_empty() {
        None
    } else {
        Some(Request::from_words(&args.command).unwrap_or_else(|why| {
            Args::command()
                .error(clap::error::ErrorKind::InvalidValue, why)
                .exit()
        }))
    };
    let client = Client::new(&args);
    match request {
        Some(request) => {
            let mut connection = None;
            match client.send(&mut connection, &request, 0) {
                Ok(reply) => client.print_reply(&reply),
                Err(failure) => client.report(&failure),
            }
        }
        None => client.interactive(),
    }
}

// ANCHOR: request
/// One command to send, and what the client needs to know to decide whether it may repeat it.
struct Request {
    /// The bytes to send: the command and its `\n`.
    line: Vec<u8>,
    /// The command, or `None` for a line typed on stdin that is not a valid command (it is sent as
    /// typed, for the server to answer with an `ERROR` line).
    command: Option<Command>,
}

impl Request {
    /// `["get", "a"]` becomes `GET a\n`, checked with the parser the server uses.
    fn from_words(words: &[String]) -> Result<Request, String> {
        if words.iter().any(|word| word.contains(['\n', '\r'])) {
            return Err("keys and values cannot contain a line break".to_string());
        }
        let command = Command::parse(words.join(" ").as_bytes())
            .map_err(|err| format!("{err}; the commands are SET key value..., GET key and DELETE key"))?;
        Ok(Request {
            line: command.to_line().into_bytes(),
            command: Some(command),
        })
    }

    /// A line typed on stdin, without its `\n`: sent as it is.
    fn from_typed_line(mut line: Vec<u8>) -> Request {
        let command = Command::parse(&line).ok();
        line.push(b'\n');
        Request { line, command }
    }

    /// A `SET` or `DELETE`: a command that changes what the server holds.
    fn is_write(&self) -> bool {
        matches!(
            self.command.as_ref().map(Command::verb),
            Some(Verb::Set | Verb::Delete)
        )
    }

    /// `GET a`, for messages.
    fn shown(&self) -> String {
        let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        String::from_utf8_lossy(line).into_owned()
    }
}
// ANCHOR_END: request

// ANCHOR: errors
/// Why one attempt failed. Where it failed decides what the server may have done.
enum AttemptError {
    /// `connect` failed or timed out: nothing was sent.
    Connect(io::Error),
    /// Writing the command failed. Its final `\n` never reached the kernel, and the server carries
    /// out whole lines only, so it cannot have carried this one out.
    Send(io::Error),
    /// The command was sent, but no whole reply came back: the server may have carried it out.
    Receive(ReplyError),
}

/// What went wrong after the command was sent.
enum ReplyError {
    /// The connection failed: reset by the server (ECONNRESET), or given up by our kernel
    /// (ETIMEDOUT, when keepalive probes go unanswered). Holds what came of the reply before.
    Failed(io::Error, Vec<u8>),
    /// The attempt's deadline passed before the whole reply arrived (`--timeout`).
    AttemptDeadline(Duration),
    /// The deadline of the whole command passed first (`--deadline`).
    CommandDeadline(Duration),
    /// End of stream before the first byte of a reply: the server closed the connection (FIN).
    Closed,
    /// End of stream in the middle of a reply: these bytes, and no `\n`.
    ClosedMidReply(Vec<u8>),
    /// More than MAX_REPLY bytes without a `\n`: not a reply of this protocol. Not repeated.
    TooLong,
}

impl AttemptError {
    /// Could the server have received the whole command, and carried it out?
    fn may_have_been_carried_out(&self) -> bool {
        matches!(self, AttemptError::Receive(_))
    }

    /// Did this attempt get as far as a connection?
    fn connected(&self) -> bool {
        !matches!(self, AttemptError::Connect(_))
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Connect(err) => write!(f, "cannot connect: {}", plain(err)),
            AttemptError::Send(err) => write!(f, "sending failed: {}", plain(err)),
            AttemptError::Receive(ReplyError::Failed(err, partial)) if partial.is_empty() => {
                write!(f, "{} while waiting for the reply", plain(err))
            }
            AttemptError::Receive(ReplyError::Failed(err, partial)) => write!(
                f,
                "{} in the middle of the reply, after {}",
                plain(err),
                escape_abbreviated(partial, 60)
            ),
            AttemptError::Receive(ReplyError::AttemptDeadline(limit)) => {
                write!(f, "no complete reply within {} (--timeout)", seconds(*limit))
            }
            AttemptError::Receive(ReplyError::CommandDeadline(limit)) => write!(
                f,
                "no complete reply before the deadline of the whole command ({}, --deadline)",
                seconds(*limit)
            ),
            AttemptError::Receive(ReplyError::Closed) => {
                write!(
                    f,
                    "the server closed the connection without replying (end of stream)"
                )
            }
            AttemptError::Receive(ReplyError::ClosedMidReply(bytes)) => write!(
                f,
                "the server closed the connection in the middle of a reply: got {} without a newline",
                escape_abbreviated(bytes, 60)
            ),
            AttemptError::Receive(ReplyError::TooLong) => {
                write!(f, "the reply is longer than {MAX_REPLY} bytes without a newline")
            }
        }
    }
}

/// `connection reset by peer (ECONNRESET)`: what the OS says, in lower case, with the name of
/// the error number instead of Rust's `(os error 104)`.
fn plain(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    match errno_name(err) {
        Some(name) => format!("{text} ({name})"),
        None => text,
    }
}
// ANCHOR_END: errors

/// `300 ms`, `2 s`, `1.5 s`.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

/// The reply to a command, and whether it answers a write (`SET`, `DELETE`) that an earlier
/// attempt may have carried out already.
struct Reply {
    line: Vec<u8>,
    repeated_write: bool,
}

/// Why a command got no reply in the end.
enum Failure {
    /// Every attempt failed to connect: here is the last error.
    CannotConnect { last: io::Error, gave_up: GaveUp },
    /// It failed after it was sent, and repeating it is not safe (or pointless).
    NotRepeated { command: String, error: AttemptError },
    /// No attempt got a reply, and the limits are reached.
    GaveUp {
        command: String,
        last: AttemptError,
        gave_up: GaveUp,
    },
}

/// The options, and the server's addresses.
struct Client {
    addresses: Vec<SocketAddr>,
    /// `host:port` as given, for messages.
    server: String,
    connect_timeout: Duration,
    timeout: Duration,
    deadline: Duration,
    policy: RetryPolicy,
    retry_unsafe: bool,
    seed: u64,
    keepalive: Option<u32>,
    verbose: bool,
}

impl Client {
    fn new(args: &Args) -> Client {
        let server = args.server.address();
        // Name resolution happens once: `localhost` may give ::1 and 127.0.0.1, tried in turn.
        let addresses: Vec<SocketAddr> = match (args.server.host.as_str(), args.server.port).to_socket_addrs()
        {
            Ok(addresses) => addresses.collect(),
            Err(err) => lesson::exit_connect_failed(&server, &err, "cargo run --bin 05_kv_server"),
        };
        Client {
            addresses,
            server,
            connect_timeout: args.connect_timeout,
            timeout: args.timeout,
            deadline: args.deadline,
            policy: RetryPolicy {
                max_attempts: args.attempts,
                backoff: BACKOFF,
            },
            retry_unsafe: args.retry_unsafe,
            seed: args.seed.unwrap_or_else(random_seed),
            keepalive: args.keepalive,
            verbose: args.verbose,
        }
    }

    /// One line on stderr with `--verbose`.
    fn tell(&self, text: std::fmt::Arguments<'_>) {
        if self.verbose {
            log_error!("{text}");
        }
    }

    // ANCHOR: send
    /// Sends `request` until a reply comes back, trying again while that is safe and the limits
    /// allow. `connection` is the open connection, if there is one: it is used, replaced when it
    /// fails, and left open for the next command.
    fn send(
        &self,
        connection: &mut Option<TcpStream>,
        request: &Request,
        number: u64,
    ) -> Result<Reply, Failure> {
        let deadline = Deadline::after(self.deadline);
        // Each command gets its own waits; with --seed, the same ones on every run.
        let mut retry = Retry::new(self.policy, deadline, self.seed.wrapping_add(number));
        let mut ever_connected = false;
        let mut write_sent_before = false;
        loop {
            let attempt = retry.failures() + 1;
            let error = match self.attempt(connection, request, deadline, attempt) {
                Ok(line) => {
                    self.tell(format_args!(
                        "attempt {attempt}: reply {}",
                        escape_abbreviated(&line, 60)
                    ));
                    return Ok(Reply {
                        line,
                        repeated_write: write_sent_before,
                    });
                }
                Err(error) => error,
            };
            // A connection that failed once is never used again.
            *connection = None;
            ever_connected |= error.connected();
            if !self.may_repeat(request, &error) {
                self.tell(format_args!("attempt {attempt}: {error}; not repeated"));
                return Err(Failure::NotRepeated {
                    command: request.shown(),
                    error,
                });
            }
            write_sent_before |= error.may_have_been_carried_out() && request.is_write();
            match retry.after_failure() {
                Next::RetryAfter(wait) => {
                    self.tell(format_args!(
                        "attempt {attempt}: {error}; retrying in {}",
                        seconds(wait)
                    ));
                    // Deliberate: nothing else to do until the next attempt.
                    thread::sleep(wait);
                }
                Next::GiveUp(gave_up) => {
                    self.tell(format_args!("attempt {attempt}: {error}; {gave_up}"));
                    let command = request.shown();
                    return Err(match error {
                        AttemptError::Connect(last) if !ever_connected => {
                            Failure::CannotConnect { last, gave_up }
                        }
                        last => Failure::GaveUp {
                            command,
                            last,
                            gave_up,
                        },
                    });
                }
            }
        }
    }
    // ANCHOR_END: send

    // ANCHOR: may_repeat
    /// May a command whose attempt failed with `error` be sent again?
    ///
    /// - Nothing complete was sent (connect failed, or sending failed): always. The server has
    ///   not seen the command.
    /// - The command was sent: a `GET` reads and changes nothing, so yes. A `SET` or `DELETE` may
    ///   have been carried out before the connection broke, and repeating it can undo what other
    ///   clients did in between: only with `--retry-unsafe`.
    /// - A reply too long for the protocol: never. The next attempt would get the same.
    fn may_repeat(&self, request: &Request, error: &AttemptError) -> bool {
        if matches!(error, AttemptError::Receive(ReplyError::TooLong)) {
            return false;
        }
        if !error.may_have_been_carried_out() {
            return true;
        }
        match request.command.as_ref().map(Command::verb) {
            Some(Verb::Get) => true,
            Some(Verb::Set | Verb::Delete) => self.retry_unsafe,
            // A line that is not a command: the server replies with an error, or has; no point.
            None => false,
        }
    }
    // ANCHOR_END: may_repeat

    // ANCHOR: attempt
    /// One attempt: connect unless a connection is open, send the command, read the reply.
    fn attempt(
        &self,
        connection: &mut Option<TcpStream>,
        request: &Request,
        command_deadline: Deadline,
        attempt: u32,
    ) -> Result<Vec<u8>, AttemptError> {
        let stream = match connection {
            Some(stream) => {
                self.tell(format_args!(
                    "attempt {attempt}: using the open connection to {}",
                    self.server
                ));
                stream
            }
            None => {
                let stream = self.connect(command_deadline).map_err(AttemptError::Connect)?;
                self.tell(format_args!("attempt {attempt}: connected to {}", self.server));
                connection.insert(stream)
            }
        };
        // One deadline for the whole exchange: this attempt's, or the command's if it comes first.
        let attempt_deadline = Deadline::after(self.timeout);
        let deadline = attempt_deadline.min(command_deadline);
        let mut conn = DeadlineStream::new(stream, deadline);
        // `write_all` may need several `write` calls; each one waits at most for the time left.
        conn.write_all(&request.line).map_err(AttemptError::Send)?;
        let mut replies = BufReader::new(conn);
        let result = read_reply(&mut replies).map_err(|err| {
            AttemptError::Receive(match err {
                ReadError::DeadlinePassed if deadline == command_deadline => {
                    ReplyError::CommandDeadline(self.deadline)
                }
                ReadError::DeadlinePassed => ReplyError::AttemptDeadline(self.timeout),
                ReadError::Reply(reply_error) => reply_error,
            })
        });
        let out_of_step = !replies.buffer().is_empty();
        drop(replies);
        if result.is_ok() && out_of_step {
            // The server sent more than one line for one command: the next reply we would read on
            // this connection would not be the answer to the next command. Start afresh.
            self.tell(format_args!(
                "attempt {attempt}: more than one reply line; closing the connection"
            ));
            *connection = None;
        }
        result
    }
    // ANCHOR_END: attempt

    // ANCHOR: connect
    /// Connects to the first of the server's addresses that accepts, giving each one the connect
    /// timeout, and none of them time past the deadline.
    fn connect(&self, deadline: Deadline) -> io::Result<TcpStream> {
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
        for address in &self.addresses {
            let Some(left) = deadline.time_left() else {
                return Err(deadline.passed_error());
            };
            // `connect` on a non-blocking socket, then `poll` until the handshake completes or
            // the time is up. A plain blocking `connect` can wait minutes for a server that
            // does not answer: the kernel resends its SYN, 1, 2, 4, ... seconds apart.
            match TcpStream::connect_timeout(address, self.connect_timeout.min(left)) {
                Ok(stream) => {
                    if let Some(seconds) = self.keepalive {
                        set_keepalive(&stream, seconds)?;
                    }
                    return Ok(stream);
                }
                Err(err) => last_error = err,
            }
        }
        Err(last_error)
    }
    // ANCHOR_END: connect

    /// Prints a reply as the server sent it, and says which exit code it means.
    fn print_reply(&self, reply: &Reply) -> ExitCode {
        if let Err(err) = print_line(&reply.line) {
            log_error!("error: cannot print the reply: {err}");
        }
        let error_reply = kv::is_error_reply(&reply.line);
        if error_reply && reply.repeated_write {
            // The first attempt may have done the work: a repeated DELETE finds no key to delete.
            log_error!(
                "note: an earlier attempt may have been carried out before its connection broke; \
                 this reply answers the repeat"
            );
        }
        if error_reply {
            ExitCode::from(EXIT_ERROR_REPLY)
        } else {
            ExitCode::SUCCESS
        }
    }

    // ANCHOR: report
    /// One line on stderr saying why there is no reply, and the exit code that says it to a script.
    fn report(&self, failure: &Failure) -> ExitCode {
        let server = &self.server;
        match failure {
            Failure::CannotConnect { last, gave_up } => {
                let advice = lesson::connect_advice(last, "cargo run --bin 05_kv_server");
                log_error!(
                    "error: cannot connect to {server}: {}; {gave_up}; {advice}",
                    plain(last)
                );
                ExitCode::from(EXIT_CANNOT_CONNECT)
            }
            Failure::NotRepeated { command, error } => {
                let why = match error {
                    AttemptError::Receive(ReplyError::TooLong) => String::new(),
                    _ => "; not repeated, because the server may have carried it out before the \
                          connection broke (GET shows what the server holds now; --retry-unsafe \
                          repeats SET and DELETE)"
                        .to_string(),
                };
                log_error!("error: {server}: no reply to {command}: {error}{why}");
                ExitCode::from(EXIT_NOT_REPEATED)
            }
            Failure::GaveUp {
                command,
                last,
                gave_up,
            } => {
                log_error!("error: {server}: no reply to {command}: {last}; {gave_up}");
                ExitCode::from(EXIT_GAVE_UP)
            }
        }
    }
    // ANCHOR_END: report

    // ANCHOR: interactive
    /// No command on the command line: send each line typed on stdin, and print each reply. The
    /// connection is kept from one command to the next; when it breaks, the next attempt
    /// connects again. The first command that gets no reply ends the program.
    fn interactive(&self) -> ExitCode {
        let mut stdin = io::stdin().lock();
        if stdin.is_terminal() {
            eprintln!("type SET key value, GET key or DELETE key (Ctrl-D to quit)");
        }
        let mut connection: Option<TcpStream> = None;
        for number in 0.. {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) => {
                    log_error!("error: cannot read standard input: {err}");
                    return ExitCode::from(2);
                }
            }
            let line = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
            match self.send(&mut connection, &Request::from_typed_line(line), number) {
                Ok(reply) => {
                    self.print_reply(&reply);
                }
                Err(failure) => return self.report(&failure),
            }
        }
        ExitCode::SUCCESS
    }
    // ANCHOR_END: interactive
}

/// How reading a reply failed.
enum ReadError {
    /// The deadline given to the `DeadlineStream` passed.
    DeadlinePassed,
    Reply(ReplyError),
}

// ANCHOR: read_reply
/// Reads one reply line and returns it without its `\n` (and without a `\r` before it).
///
/// As in lesson 06, but every `read` that `read_until` makes waits only for the time left
/// before the deadline: a server that sends one byte a second cannot keep us here for ever.
fn read_reply(replies: &mut BufReader<DeadlineStream<'_>>) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    if let Err(err) = replies.by_ref().take(MAX_REPLY).read_until(b'\n', &mut line) {
        // Our deadline (the socket's timeout ran out: EAGAIN), or the connection failed
        // (ECONNRESET; ETIMEDOUT when keepalive gave up).
        return Err(if Deadline::is_passed_error(&err) {
            ReadError::DeadlinePassed
        } else {
            ReadError::Reply(ReplyError::Failed(err, line))
        });
    }
    let Some(reply) = line.strip_suffix(b"\n") else {
        return Err(ReadError::Reply(if line.is_empty() {
            ReplyError::Closed
        } else if line.len() as u64 >= MAX_REPLY {
            ReplyError::TooLong
        } else {
            ReplyError::ClosedMidReply(line)
        }));
    };
    Ok(reply.strip_suffix(b"\r").unwrap_or(reply).to_vec())
}
// ANCHOR_END: read_reply

/// Prints a reply line as the server sent it (bytes, not necessarily UTF-8) and a newline.
fn print_line(reply: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(reply)?;
    out.write_all(b"\n")?;
    out.flush()
}

// ANCHOR: keepalive
/// Turns on TCP keepalive for `stream`: after `seconds` without a packet from the server, our
/// kernel sends a probe (an empty segment the server's kernel must acknowledge), then another
/// every `seconds`; after KEEPALIVE_PROBES unanswered probes it gives up on the connection, and
/// a waiting `read` fails with ETIMEDOUT. Linux's defaults: 7200 s, then every 75 s, 9 probes.
///
/// The server's *kernel* answers the probes, not the server: a server process that is stuck, or
/// a proxy that holds the connection open and forwards nothing, looks alive to keepalive.
#[cfg(target_os = "linux")]
fn set_keepalive(stream: &TcpStream, seconds: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let seconds = seconds as libc::c_int;
    set_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, seconds)?;
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, seconds)?;
    set_option(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        KEEPALIVE_PROBES as libc::c_int,
    )
}

/// `setsockopt` for an option whose value is a C `int`.
#[cfg(target_os = "linux")]
fn set_option(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt(2) reads `size` bytes from a pointer to `value`, which lives on our stack
    // for the whole call; `fd` is a socket we own.
    let result = unsafe { libc::setsockopt(fd, level, name, (&raw const value).cast(), size) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
// ANCHOR_END: keepalive

/// Elsewhere the options have other names (macOS: TCP_KEEPALIVE for the idle time).
#[cfg(not(target_os = "linux"))]
fn set_keepalive(_stream: &TcpStream, _seconds: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--keepalive sets Linux's TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT, which this system names differently",
    ))
}
