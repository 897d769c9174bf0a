//! Scenarios for client programs: the harness plays a scripted server, runs the client with the
//! scenario's arguments, and checks what the client sent, how it exited and what it printed.
//!
//! The transcript is written from the client's side, like server scenarios:
//! `client > "GET a\n"` is what the client sent, `client < "1\n"` what our fake server answered.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use super::client::{Connection, ReadEnd, describe_io_error};
use super::process::{OutputLine, Readiness, ServerProcess, Stream, describe_exit, stderr_excerpt};
use super::run::{
    Failure, FailureKind, RunOptions, StepFailure, add_note, amount, end_detail, hopeless_for, judge_read,
    stable_tokens,
};
use super::scenario::{Expect, Read};
use crate::escape::shell_line;
use crate::kv::Command as KvCommand;
use crate::proxy::{self, ProxyConfig, ProxyHandle, Weather};

/// The seed of the proxy in front of a weathered scenario's fake server: the same seed, the same
/// weather, on every run.
pub const PATH_SEED: u64 = 14;

/// What the fake server does with the client's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Read what the client sent and check it.
    Receive(Read, Expect),
    /// The client must signal it has finished sending (close or half-close: we read 0).
    ExpectEndOfInput,
    /// Send these bytes to the client.
    Send(Vec<u8>),
    /// Close the connection.
    Close,
    /// Close the connection with a reset (RST).
    Reset,
    /// The client must connect again (after a reset, say): the next steps are on the new
    /// connection.
    AcceptAgain,
    /// Say nothing more, and keep the connection open until the client exits: a server that
    /// went silent. The client must give up by itself, within the scenario's `exit_within`.
    Silence,
}

/// How the client program must exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitExpect {
    Code(i32),
    /// Any non-zero code (not killed by a signal).
    Failure,
}

/// A client scenario: arguments, the fake server's script, and what the client must do.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientScenario {
    pub name: &'static str,
    pub about: &'static str,
    /// Appended to the client's command line.
    pub args: Vec<String>,
    /// `false`: nothing listens on the port (the client must report a refused connection).
    pub listen: bool,
    pub server: Vec<ServerStep>,
    pub exit: ExitExpect,
    /// What the client's stdout must be (or contain, with `Expect::Contains`).
    pub stdout: Expect,
    /// `true`: stderr must be empty on success and must say something on failure; never a panic.
    pub check_stderr: bool,
    /// The likely mistake when a client fails this scenario.
    pub hint: Option<&'static str>,
    /// The book's section that shows the mistake by hand (`06-kv-client.md#heading`).
    pub see: Option<&'static str>,
    /// How long the client has to exit once the fake server's script is done; `None`: the
    /// run's read timeout. A scenario that waits for the client to give up by itself (a silent
    /// server) sets the limit its description states.
    pub exit_within: Option<Duration>,
    /// `Some`: the fake server sits behind the proxy (`crate::proxy`, seeded with
    /// [`PATH_SEED`]), which applies this weather both ways; the client is given the proxy's port.
    pub weather: Option<Weather>,
    /// `Some`: the client speaks UDP, and the fake server is a UDP socket that answers these
    /// requests of the datagram format (`crate::udp_kv`), in order; `server` is then unused.
    pub datagrams: Option<Vec<DatagramExchange>>,
}

/// One request a UDP client must send, and what the fake server sends back for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramExchange {
    /// The command the request must carry after its id.
    pub command: KvCommand,
    /// What the fake server sends, in order, when the request first arrives. A repeat of the
    /// request (the same id) gets the [`DatagramReply::Answer`] again, as from a reply cache;
    /// with no `Answer`, it gets nothing.
    pub replies: Vec<DatagramReply>,
}

/// A datagram the fake UDP server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramReply {
    /// `<id> ` and this line: the reply to the request.
    Answer(Vec<u8>),
    /// A reply to another request: `<another id> ` and this line (a late reply, as the client sees
    /// it).
    OtherId(Vec<u8>),
    /// These bytes, as they are.
    Junk(Vec<u8>),
}

impl ClientScenario {
    pub fn new(name: &'static str, about: &'static str) -> ClientScenario {
        ClientScenario {
            name,
            about,
            args: Vec::new(),
            listen: true,
            server: Vec::new(),
            exit: ExitExpect::Code(0),
            stdout: Expect::Anything,
            check_stderr: true,
            hint: None,
            see: None,
            exit_within: None,
            weather: None,
            datagrams: None,
        }
    }

    /// The client speaks UDP; the fake server expects a request carrying `command` next, and
    /// sends `replies` when it arrives.
    pub fn datagram_exchange(mut self, command: KvCommand, replies: Vec<DatagramReply>) -> Self {
        self.datagrams
            .get_or_insert_with(Vec::new)
            .push(DatagramExchange { command, replies });
        self
    }

    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// The book's section that reproduces this scenario's mistake by hand:
    /// `"06-kv-client.md#see-exactly-what-your-client-sends"`.
    pub fn see(mut self, chapter_and_heading: &'static str) -> Self {
        self.see = Some(chapter_and_heading);
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Nothing will listen on the client's port.
    pub fn nobody_listening(mut self) -> Self {
        self.listen = false;
        self
    }

    pub fn receive_line(mut self, expect: Expect) -> Self {
        self.server.push(ServerStep::Receive(Read::Line, expect));
        self
    }

    pub fn receive_bytes(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.server.push(ServerStep::Receive(
            Read::Bytes(bytes.len()),
            Expect::exact(bytes),
        ));
        self
    }

    pub fn expect_end_of_input(mut self) -> Self {
        self.server.push(ServerStep::ExpectEndOfInput);
        self
    }

    pub fn reply(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.server.push(ServerStep::Send(bytes.as_ref().to_vec()));
        self
    }

    pub fn close(mut self) -> Self {
        self.server.push(ServerStep::Close);
        self
    }

    /// The fake server resets the connection (RST).
    pub fn reset(mut self) -> Self {
        self.server.push(ServerStep::Reset);
        self
    }

    /// The client must connect again; the next steps are on the new connection.
    pub fn accept_again(mut self) -> Self {
        self.server.push(ServerStep::AcceptAgain);
        self
    }

    /// The fake server says nothing more and keeps the connection open until the client exits.
    pub fn say_nothing(mut self) -> Self {
        self.server.push(ServerStep::Silence);
        self
    }

    /// Put the fake server behind the proxy, with `weather` both ways.
    pub fn weather(mut self, weather: Weather) -> Self {
        self.weather = Some(weather);
        self
    }

    /// The client must exit within `limit` once the script is done (instead of the read timeout).
    pub fn exits_within(mut self, limit: Duration) -> Self {
        self.exit_within = Some(limit);
        self
    }

    pub fn exits(mut self, exit: ExitExpect) -> Self {
        self.exit = exit;
        self
    }

    pub fn stdout(mut self, expect: Expect) -> Self {
        self.stdout = expect;
        self
    }
}

/// What a passing client scenario produced.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub lines: Vec<String>,
    pub output: Vec<OutputLine>,
    pub port: u16,
    /// Where the client chose another accepted behaviour than the reference (see
    /// [`Transcript::notes`](super::Transcript::notes)).
    pub notes: Vec<String>,
}

/// A client's note: it reported its error on stdout.
pub const NOTE_ERROR_ON_STDOUT: &str = "your client reports the problem on stdout, which is enough (the \
     reference writes errors to stderr, so that a script reading the output never takes an error \
     message for a reply)";

impl ClientRun {
    /// The transcript and the client's output, with the port replaced by `<port>`.
    pub fn render(&self, scenario: &ClientScenario) -> String {
        let server = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut text = format!("# {}: {}\n", scenario.name, scenario.about);
        text.push_str(&format!(
            "$ client --port <port> {}\n",
            shell_line(&scenario.args)
        ));
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("--- client output ---\n");
        for line in &self.output {
            let prefix = if line.stream == Stream::Stderr {
                "[stderr] "
            } else {
                ""
            };
            let shown = stable_tokens(&line.text, server, &[]).replace(&self.port.to_string(), "<port>");
            text.push_str(&format!("{prefix}{shown}\n"));
        }
        text
    }
}

/// Runs a client program against the scenario's fake server. `command` is the program and its
/// arguments, in which `{port}` is replaced by the fake server's port; the scenario's arguments
/// are appended.
pub fn run_client_scenario(
    command: &[String],
    scenario: &ClientScenario,
    options: &RunOptions,
) -> Result<ClientRun, Box<Failure>> {
    let mut lines = Vec::new();
    if let Some(exchanges) = &scenario.datagrams {
        return run_datagram_scenario(command, scenario, exchanges, options);
    }
    let fail = |lines: &Vec<String>, client: Option<&mut ServerProcess>, step: usize, f: Box<StepFailure>| {
        client_failure(scenario, lines, client, step, f)
    };
    let could_not = |what: &str, err: io::Error| {
        StepFailure::new(FailureKind::DidNotConnect, what.to_string(), err.to_string())
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| fail(&lines, None, 0, could_not("a free port", e)))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(&lines, None, 0, could_not("a free port", e)))?
        .port();
    // With weather, the client connects to the proxy, which connects to our fake server.
    let path: Option<ProxyHandle> = match (&scenario.weather, scenario.listen) {
        (Some(weather), true) => {
            let mut config =
                ProxyConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).both_ways(weather.clone());
            config.seed = Some(PATH_SEED);
            config.quiet = true;
            Some(
                proxy::start(config)
                    .map_err(|e| fail(&lines, None, 0, could_not("the proxy to start", e)))?,
            )
        }
        _ => None,
    };
    let port = path.as_ref().map_or(port, |proxy| proxy.addr().port());
    let listener = if scenario.listen {
        Some(listener)
    } else {
        // The kernel gave us a free port; closing the listener leaves nothing there.
        drop(listener);
        None
    };

    let mut client = start_client(command, scenario, port).map_err(|f| fail(&lines, None, 0, f))?;

    let mut step_number = 0;
    let mut notes: Vec<String> = Vec::new();
    // A silent server's connection and listener, held open until the client has exited: a client
    // that tries again connects (into the listen backlog) and meets the same silence.
    let mut held: Option<(Option<Connection>, TcpListener)> = None;
    if let Some(listener) = listener {
        step_number = 1;
        let conn = accept_client(&listener, &mut client, options)
            .map_err(|f| fail(&lines, Some(&mut client), step_number, f))?;
        lines.push("client connects".to_string());
        if let Some(weather) = &scenario.weather {
            lines.push(format!(
                "(through the proxy, both ways: {}; seed {PATH_SEED})",
                weather.describe()
            ));
        }
        let mut conn = Some(conn);
        for step in &scenario.server {
            step_number += 1;
            if *step == ServerStep::AcceptAgain {
                drop(conn.take());
                let again = accept_client(&listener, &mut client, options).map_err(|mut f| {
                    f.kind = FailureKind::ExitMismatch;
                    f.expected = "the client to connect again and repeat its command".to_string();
                    fail(&lines, Some(&mut client), step_number, f)
                })?;
                lines.push("client connects again".to_string());
                conn = Some(again);
                continue;
            }
            let step_notes = run_server_step(step, &mut conn, &mut lines, options)
                .map_err(|f| fail(&lines, Some(&mut client), step_number, f))?;
            for note in step_notes {
                add_note(&mut notes, note);
            }
        }
        if scenario.server.last() == Some(&ServerStep::Silence) {
            held = Some((conn, listener));
        }
    }

    step_number += 1;
    let exit_within = scenario.exit_within.unwrap_or(options.read_timeout);
    let result = judge_exit(
        client,
        scenario,
        options,
        Conversation {
            lines,
            notes,
            step_number,
            port,
            exit_within,
            silent: held.is_some(),
        },
    );
    drop(held);
    result
}

/// The failure of `scenario` at `step`, with the transcript so far and, if the client is given,
/// how it ended and the end of its stderr.
// Step failures come boxed from every caller (they are large); unboxing each would be noise.
#[allow(clippy::boxed_local)]
fn client_failure(
    scenario: &ClientScenario,
    lines: &[String],
    client: Option<&mut ServerProcess>,
    step: usize,
    f: Box<StepFailure>,
) -> Box<Failure> {
    let (server_exit, stderr_tail) = match client {
        Some(client) => (client.exit_status().map(describe_exit), client.stderr_tail(8)),
        None => (None, Vec::new()),
    };
    Box::new(Failure {
        scenario: scenario.name,
        about: scenario.about,
        step_number: step,
        kind: f.kind,
        expected: f.expected,
        got: f.got,
        detail: f.detail,
        mismatch: f.mismatch,
        transcript: lines.to_vec(),
        server_exit,
        stderr_tail,
        missing_newline: f.missing_newline,
        timed_out: f.timed_out,
        program_threads: None,
    })
}

/// Starts the client program: `command` with `{port}` replaced by `port`, then the scenario's
/// arguments.
fn start_client(
    command: &[String],
    scenario: &ClientScenario,
    port: u16,
) -> Result<ServerProcess, Box<StepFailure>> {
    let Some((program, rest)) = command.split_first() else {
        return Err(StepFailure::new(
            FailureKind::DidNotConnect,
            "a command to run",
            "none",
        ));
    };
    let mut cmd = Command::new(program);
    cmd.args(rest.iter().map(|a| a.replace("{port}", &port.to_string())));
    cmd.args(&scenario.args);
    ServerProcess::start(cmd, Readiness::Started, Duration::ZERO).map_err(|e| {
        StepFailure::new(
            FailureKind::DidNotConnect,
            "the client program to start",
            e.message,
        )
    })
}

// ANCHOR: datagram_scenario
/// A UDP client against a fake server of the datagram format (`crate::udp_kv`): the fake server
/// answers each expected request as `scenario.datagrams` says, answers a repeat of a request
/// (the same id) with the same reply, and goes on until the client exits. The transcript shows
/// every datagram the fake server received (`client >> ...`) and sent (`client << ...`), with
/// the client's request id written `<id>`. Behind the proxy, these are the datagrams that got
/// through.
fn run_datagram_scenario(
    command: &[String],
    scenario: &ClientScenario,
    exchanges: &[DatagramExchange],
    options: &RunOptions,
) -> Result<ClientRun, Box<Failure>> {
    let mut lines: Vec<String> = Vec::new();
    let could_not = |what: &str, err: io::Error| {
        client_failure(
            scenario,
            &[],
            None,
            0,
            StepFailure::new(FailureKind::DidNotConnect, what.to_string(), err.to_string()),
        )
    };
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| could_not("a free UDP port", e))?;
    let server = socket.local_addr().map_err(|e| could_not("a free UDP port", e))?;
    // Short receives, so that the loop notices the client's exit between datagrams.
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| could_not("a UDP socket", e))?;
    let mut path: Option<ProxyHandle> = match &scenario.weather {
        Some(weather) => {
            let mut config = ProxyConfig::new(server).both_ways(weather.clone());
            config.udp = true;
            config.seed = Some(PATH_SEED);
            // Not quiet: its log tells whether the client sent anything the weather dropped.
            config.quiet = false;
            Some(proxy::start(config).map_err(|e| could_not("the proxy to start", e))?)
        }
        None => None,
    };
    let port = path.as_ref().map_or(server.port(), |proxy| proxy.addr().port());
    let mut client =
        start_client(command, scenario, port).map_err(|f| client_failure(scenario, &lines, None, 0, f))?;
    lines.push("client sends datagrams (UDP)".to_string());
    if let Some(weather) = &scenario.weather {
        lines.push(format!(
            "(through the proxy, both ways: {}; seed {PATH_SEED})",
            weather.describe()
        ));
    }
    let exit_within = scenario.exit_within.unwrap_or(options.read_timeout);
    let deadline = Instant::now() + exit_within;
    let mut next = 0;
    // The replies sent to each request id, for its repeats; ids with no answer (silence).
    let mut answered: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut unanswered: HashSet<u64> = HashSet::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let show = |bytes: &[u8], id: Option<u64>, token: &str| -> String {
        let shown = match id.map(|id| id.to_string()) {
            Some(digits) if bytes.starts_with(digits.as_bytes()) => {
                [token.as_bytes(), &bytes[digits.len()..]].concat()
            }
            _ => bytes.to_vec(),
        };
        options.long_bytes.show(&shown)
    };
    let mut step_number = 0;
    // Until the client has exited and every datagram it sent before has been read (or the time
    // is up): a client may send its request and exit before we look.
    let mut exited = false;
    while Instant::now() < deadline {
        if !exited && client.wait_exit(Duration::ZERO).is_some() {
            exited = true;
            // What is queued still counts; then nothing more can come.
            socket
                .set_nonblocking(true)
                .map_err(|e| could_not("a UDP socket", e))?;
        }
        let (n, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if exited {
                    break;
                }
                continue;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(could_not("a datagram from the client", err)),
        };
        step_number += 1;
        let datagram = buffer[..n].to_vec();
        let parsed = crate::udp_kv::split_id(&datagram);
        lines.push(format!(
            "client >> {}",
            show(&datagram, parsed.map(|(id, _)| id), "<id>")
        ));
        let Some((id, rest)) = parsed else {
            let mut f = StepFailure::new(
                FailureKind::WrongOutput,
                "a request datagram: `<id> <command>`, the id a decimal number, then one space",
                "the datagram does not start with an id",
            );
            f.got = Some(datagram);
            return Err(client_failure(
                scenario,
                &lines,
                Some(&mut client),
                step_number,
                f,
            ));
        };
        let send = |bytes: &[u8], token: &str, shown_id: Option<u64>, lines: &mut Vec<String>| {
            // A failed send is a lost datagram, which UDP allows: the client must cope.
            let _ = socket.send_to(bytes, peer);
            lines.push(format!("client << {}", show(bytes, shown_id, token)));
        };
        if let Some(reply) = answered.get(&id) {
            send(&reply.clone(), "<id>", Some(id), &mut lines);
            continue;
        }
        if unanswered.contains(&id) {
            continue;
        }
        let line = rest.strip_suffix(b"\n").unwrap_or(rest);
        let Some(exchange) = exchanges.get(next) else {
            let mut f = StepFailure::new(
                FailureKind::UnexpectedData,
                "no request with a new id: the client has had all its answers",
                "a request with a new id",
            );
            f.got = Some(datagram);
            return Err(client_failure(
                scenario,
                &lines,
                Some(&mut client),
                step_number,
                f,
            ));
        };
        if KvCommand::parse(line).as_ref() != Ok(&exchange.command) {
            let mut f = StepFailure::new(
                FailureKind::WrongOutput,
                format!("a request `<id> {}`", exchange.command.to_line().trim_end()),
                "another request",
            );
            f.got = Some(datagram);
            return Err(client_failure(
                scenario,
                &lines,
                Some(&mut client),
                step_number,
                f,
            ));
        }
        next += 1;
        unanswered.insert(id);
        for reply in &exchange.replies {
            match reply {
                DatagramReply::Answer(text) => {
                    let bytes = [format!("{id} ").as_bytes(), text].concat();
                    send(&bytes, "<id>", Some(id), &mut lines);
                    unanswered.remove(&id);
                    answered.insert(id, bytes);
                }
                DatagramReply::OtherId(text) => {
                    let other = id.wrapping_add(1_000_003);
                    let bytes = [format!("{other} ").as_bytes(), text].concat();
                    send(&bytes, "<another id>", Some(other), &mut lines);
                }
                DatagramReply::Junk(bytes) => send(bytes, "", None, &mut lines),
            }
        }
    }
    // What the weather did, from the proxy's log: the client may have sent datagrams that never
    // reached the fake server.
    let proxy_log = path.take().map(ProxyHandle::stop).unwrap_or_default();
    let sent_into_the_weather = proxy_log.iter().any(|line| line.contains(" c1 > "));
    if scenario.weather.is_some() {
        let dropped = |arrow: &str| {
            proxy_log
                .iter()
                .filter(|line| line.contains(arrow) && line.ends_with(", dropped"))
                .count()
        };
        lines.push(format!(
            "(on the way, the proxy dropped {} of the client's datagrams and {} of the server's)",
            dropped(" c1 > "),
            dropped(" c1 < ")
        ));
    }
    if client.wait_exit(Duration::ZERO).is_none() {
        let expected = if silent_at_the_end(exchanges) {
            "the client to give up on the silent server and exit"
        } else {
            "the client to finish and exit"
        };
        let f = StepFailure::new(
            FailureKind::ExitMismatch,
            expected,
            format!(
                "it was still running {} s after it started",
                exit_within.as_secs_f32()
            ),
        )
        .timed_out();
        return Err(client_failure(
            scenario,
            &lines,
            Some(&mut client),
            step_number + 1,
            f,
        ));
    }
    if step_number == 0 && !sent_into_the_weather {
        let status = client
            .wait_exit(Duration::ZERO)
            .map(describe_exit)
            .unwrap_or_default();
        let f = StepFailure::new(
            FailureKind::DidNotConnect,
            "the client to send its request to the port it was given",
            format!("it exited ({status}) without sending a datagram"),
        );
        return Err(client_failure(scenario, &lines, Some(&mut client), 0, f));
    }
    let silent = silent_at_the_end(exchanges);
    judge_exit(
        client,
        scenario,
        options,
        Conversation {
            lines,
            notes: Vec::new(),
            step_number: step_number + 1,
            port,
            // The wait above used the client's time already: whatever is left, at least a moment.
            exit_within: deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100)),
            silent,
        },
    )
}
// ANCHOR_END: datagram_scenario

/// Does the fake UDP server answer nothing to the last request?
fn silent_at_the_end(exchanges: &[DatagramExchange]) -> bool {
    exchanges.last().is_some_and(|last| {
        !last
            .replies
            .iter()
            .any(|reply| matches!(reply, DatagramReply::Answer(_)))
    })
}

/// Where a conversation with a client stands when the fake server's script is done.
struct Conversation {
    lines: Vec<String>,
    notes: Vec<String>,
    step_number: usize,
    port: u16,
    /// How long the client has left to exit.
    exit_within: Duration,
    /// The fake server went silent (the client must give up by itself).
    silent: bool,
}

/// Once the fake server's script is done: waits for the client to exit, then judges its exit
/// code, stdout and stderr.
fn judge_exit(
    mut client: ServerProcess,
    scenario: &ClientScenario,
    options: &RunOptions,
    conversation: Conversation,
) -> Result<ClientRun, Box<Failure>> {
    let Conversation {
        mut lines,
        mut notes,
        step_number,
        port,
        exit_within,
        silent,
    } = conversation;
    let Some(status) = client.wait_exit(exit_within) else {
        let (expected, after) = if silent {
            (
                "the client to give up on the silent server and exit",
                "the server went silent",
            )
        } else {
            ("the client to finish and exit", "the conversation ended")
        };
        let f = StepFailure::new(
            FailureKind::ExitMismatch,
            expected,
            format!(
                "it was still running {} s after {after}",
                exit_within.as_secs_f32()
            ),
        )
        .timed_out();
        return Err(client_failure(
            scenario,
            &lines,
            Some(&mut client),
            step_number,
            f,
        ));
    };
    let code_ok = match scenario.exit {
        ExitExpect::Code(code) => status.code() == Some(code),
        ExitExpect::Failure => matches!(status.code(), Some(code) if code != 0),
    };
    if !code_ok {
        let expected = match scenario.exit {
            ExitExpect::Code(code) => format!("the client to exit with code {code}"),
            ExitExpect::Failure => "the client to exit with a non-zero code (not a crash)".to_string(),
        };
        let f = StepFailure::new(
            FailureKind::ExitMismatch,
            expected,
            format!("it exited with {}", describe_exit(status)),
        );
        return Err(client_failure(
            scenario,
            &lines,
            Some(&mut client),
            step_number,
            f,
        ));
    }
    lines.push(format!("client exits ({})", describe_exit(status)));

    let output = client.finish();
    let stdout: Vec<u8> = output
        .iter()
        .filter(|l| l.stream == Stream::Stdout)
        .flat_map(|l| l.text.bytes().chain(std::iter::once(b'\n')))
        .collect();
    let stderr: Vec<&str> = output
        .iter()
        .filter(|l| l.stream == Stream::Stderr)
        .map(|l| l.text.as_str())
        .collect();
    let output_failure = |kind, expected: String, got: Option<Vec<u8>>, detail: String| {
        let mut f = StepFailure::new(kind, expected, detail);
        f.got = got;
        f
    };
    let expected_stdout = if options.accept_alternatives {
        &scenario.stdout
    } else {
        scenario.stdout.reference()
    };
    match expected_stdout.judge(&stdout) {
        Ok(stdout_notes) => {
            for note in stdout_notes {
                add_note(&mut notes, note);
            }
        }
        Err(mismatch) => {
            let mut f = output_failure(
                FailureKind::WrongOutput,
                format!("the client's stdout: {}", expected_stdout.describe()),
                Some(stdout),
                String::new(),
            );
            f.mismatch = Some(mismatch);
            let mut failure = client_failure(scenario, &lines, None, step_number, f);
            failure.stderr_tail = stderr_excerpt(&stderr, 8);
            return Err(failure);
        }
    }
    if scenario.check_stderr {
        let panicked = stderr
            .iter()
            .any(|l| l.contains("panicked at") || l.contains("Traceback (most recent call last)"));
        let failing_and_silent = scenario.exit != ExitExpect::Code(0) && stderr.is_empty();
        // A failing client that says why on stdout instead has made a choice, not a mistake.
        let said_it_on_stdout = failing_and_silent && !stdout.is_empty() && options.accept_alternatives;
        let problem = if panicked {
            Some("it crashed (a panic or a traceback) instead of reporting the problem in one clear line")
        } else if failing_and_silent && !said_it_on_stdout {
            Some("nothing on stderr: a failing client should say why")
        } else {
            None
        };
        if said_it_on_stdout && problem.is_none() {
            add_note(&mut notes, NOTE_ERROR_ON_STDOUT.to_string());
        }
        if let Some(problem) = problem {
            let f = output_failure(
                FailureKind::WrongOutput,
                "a clear message on stderr".into(),
                None,
                problem.into(),
            );
            let mut failure = client_failure(scenario, &lines, None, step_number, f);
            failure.stderr_tail = stderr_excerpt(&stderr, 8);
            return Err(failure);
        }
    }
    Ok(ClientRun {
        lines,
        output,
        port,
        notes,
    })
}

/// Waits for the client program to connect, noticing if it exits first.
fn accept_client(
    listener: &TcpListener,
    client: &mut ServerProcess,
    options: &RunOptions,
) -> Result<Connection, Box<StepFailure>> {
    let expected = "the client to connect to the port it was given";
    listener
        .set_nonblocking(true)
        .map_err(|e| StepFailure::new(FailureKind::DidNotConnect, expected, e.to_string()))?;
    let deadline = Instant::now() + options.start_timeout;
    // Most clients connect within milliseconds: look often at first, then every 20 ms.
    let mut pause = Duration::from_millis(2);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .map_err(|e| StepFailure::new(FailureKind::DidNotConnect, expected, e.to_string()))?;
                return Connection::from_stream(stream, options.read_timeout).map_err(|e| {
                    StepFailure::new(FailureKind::DidNotConnect, expected, describe_io_error(&e))
                });
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => {
                return Err(StepFailure::new(
                    FailureKind::DidNotConnect,
                    expected,
                    err.to_string(),
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(StepFailure::new(
                FailureKind::DidNotConnect,
                expected,
                format!(
                    "it was still running, and had not connected, after {} s",
                    options.start_timeout.as_secs_f32()
                ),
            )
            .timed_out());
        }
        // Doubles as the pause between two looks: returns at once if the client exits.
        let exited = client.wait_exit(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
        if let Some(status) = exited {
            return Err(StepFailure::new(
                FailureKind::DidNotConnect,
                expected,
                format!("it exited ({}) without connecting", describe_exit(status)),
            ));
        }
    }
}

/// Runs one step of the fake server; returns the notes of an accepted alternative.
fn run_server_step(
    step: &ServerStep,
    conn: &mut Option<Connection>,
    lines: &mut Vec<String>,
    options: &RunOptions,
) -> Result<Vec<String>, Box<StepFailure>> {
    let timeout = options.read_timeout;
    let Some(connection) = conn.as_mut() else {
        return Err(StepFailure::new(
            FailureKind::NotClosed,
            "an open connection",
            "the scenario closed it already",
        ));
    };
    match step {
        ServerStep::Receive(read, expect) => {
            let hopeless = |prefix: &[u8]| hopeless_for(expect, options.accept_alternatives, prefix);
            let result = connection.read_unless_hopeless(amount(read), timeout, &hopeless);
            if !result.bytes.is_empty() {
                lines.push(format!("client > {}", options.long_bytes.show(&result.bytes)));
            }
            return judge_read(read, expect, &result, timeout, options.accept_alternatives);
        }
        ServerStep::ExpectEndOfInput => {
            let result = connection.read_to_end(timeout);
            if !result.bytes.is_empty() {
                lines.push(format!("client > {}", options.long_bytes.show(&result.bytes)));
            }
            let expected = "the client to signal the end of its request (shut down its write half or close)";
            match (&result.end, result.bytes.is_empty()) {
                (ReadEnd::Closed, true) => {
                    lines.push("client sends end of stream (close or half-close)".to_string())
                }
                (_, false) => {
                    let mut f = StepFailure::new(FailureKind::UnexpectedData, expected, "it sent more");
                    f.got = Some(result.bytes);
                    return Err(f);
                }
                (ReadEnd::TimedOut, true) => {
                    return Err(StepFailure::new(
                        FailureKind::NoEndOfStream,
                        expected,
                        format!(
                            "it sent nothing more and kept its side open for {} s",
                            timeout.as_secs_f32()
                        ),
                    )
                    .timed_out());
                }
                (end, true) => {
                    return Err(StepFailure::new(
                        FailureKind::ConnectionBroken,
                        expected,
                        end_detail(end, timeout),
                    ));
                }
            }
        }
        ServerStep::Send(bytes) => {
            lines.push(format!("client < {}", options.long_bytes.show(bytes)));
            // The client may legitimately have closed already; what it does next is judged later.
            let _ = connection.send(bytes);
        }
        ServerStep::Close => {
            *conn = None;
            lines.push("server closes the connection".to_string());
        }
        ServerStep::Reset => {
            if let Some(connection) = conn.take() {
                connection.reset();
            }
            lines.push("server resets the connection (RST)".to_string());
        }
        ServerStep::AcceptAgain => {}
        ServerStep::Silence => {
            lines.push("server says nothing, and keeps the connection open".to_string());
        }
    }
    Ok(Vec::new())
}
