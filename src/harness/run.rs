//! Running a scenario against a server and writing down what happened.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitStatus;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::client::{Amount, Connection, ReadEnd, ReadResult, describe_io_error};
use super::process::{OutputLine, ServerProcess, Stream, describe_exit};
use super::scenario::{Client, Expect, Mismatch, Observes, Path, Read, Scenario, Step};
use crate::escape::{escape_abbreviated, escape_bytes, escape_shortened};

/// Longest line a `Read::Line` step waits for before it gives up on seeing a newline.
const MAX_LINE: usize = 1024 * 1024;
/// After a client that stopped reading sends more requests: how long the bytes waiting for it
/// must stay the same before the server counts as done writing to it (see
/// [`Connection::wait_until_nothing_more_arrives`]).
const SETTLE: Duration = Duration::from_millis(50);
/// A failure report's `got:` shows at most this many bytes (the start and the end).
const SHOW_GOT: usize = 120;
/// How a datagram step's failure describes what it expected: the checker's hints look for it.
pub const EXPECTED_A_DATAGRAM: &str = "a datagram from the server";
/// A datagram step's receive buffer: more than the largest UDP payload (65,507 bytes over IPv4),
/// so no datagram the server sends is ever cut short on our side.
const DATAGRAM_BUFFER: usize = 65_536;
/// The pause between the writes of a `SendInWrites` step. Deliberate: it makes the pieces
/// arrive in separate reads on the server, which is what such a step is there to test.
const PAUSE_BETWEEN_WRITES: Duration = Duration::from_millis(2);

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Every read waits at most this long for data.
    pub read_timeout: Duration,
    /// Run `ServerLogs` steps (true for our own lessons; false for a learner's program).
    pub check_logs: bool,
    /// Accept the other behaviours a scenario allows, with their notes (false for our own
    /// lessons, which must behave as the reference; true for a learner's program).
    pub accept_alternatives: bool,
    /// How long a client program gets to start and connect to the fake server.
    pub start_timeout: Duration,
    /// How a transcript line shows a long byte string.
    pub long_bytes: LongBytes,
}

/// How a transcript line shows a byte string longer than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongBytes {
    /// The first bytes, then the total: `"aaaa"... (65537 bytes)`. What the lessons' snapshots and
    /// the book show.
    Start(usize),
    /// The start and the end, and how many bytes are left out between them, then the total: for
    /// a failure report, where the end of a reply (is there a newline?) matters.
    StartAndEnd(usize),
}

impl LongBytes {
    /// `bytes` as this shows them.
    pub fn show(self, bytes: &[u8]) -> String {
        match self {
            LongBytes::Start(max) => escape_abbreviated(bytes, max),
            LongBytes::StartAndEnd(max) if bytes.len() > max => {
                format!("{} ({} bytes)", escape_shortened(bytes, max), bytes.len())
            }
            LongBytes::StartAndEnd(_) => escape_bytes(bytes),
        }
    }
}

impl RunOptions {
    /// For the workbook's own lessons: logs are checked, and only the reference is accepted.
    pub fn reference() -> RunOptions {
        RunOptions {
            read_timeout: Duration::from_secs(2),
            check_logs: true,
            accept_alternatives: false,
            start_timeout: Duration::from_secs(10),
            long_bytes: LongBytes::Start(300),
        }
    }

    /// For anybody's program: logs are not checked, and every behaviour a scenario allows is
    /// accepted, with a note where it is not the reference's.
    pub fn learner() -> RunOptions {
        RunOptions {
            read_timeout: Duration::from_secs(2),
            check_logs: false,
            accept_alternatives: true,
            start_timeout: Duration::from_secs(10),
            long_bytes: LongBytes::StartAndEnd(SHOW_GOT),
        }
    }
}

/// What went over the wire, one line per event, with bytes escaped.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub lines: Vec<String>,
    /// Each client's local address, so server logs that mention it can say `<c1>` instead.
    pub clients: Vec<(Client, SocketAddr)>,
    /// Where the program chose another accepted behaviour than the reference: what the report
    /// says about it, each note once. Empty for a program that behaves as the reference.
    pub notes: Vec<String>,
}

impl Transcript {
    /// Adds `note`, unless it is there already (three clients with the same choice make one note).
    pub fn add_note(&mut self, note: String) {
        add_note(&mut self.notes, note);
    }
}

/// Adds `note` to `notes`, unless it is there already.
pub(crate) fn add_note(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// What kind of thing went wrong, so a checker can suggest the likely mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// Bytes arrived, but not the expected ones.
    WrongBytes,
    /// Expected bytes, but nothing (or not enough) arrived in time.
    NoAnswer,
    /// The server closed the connection before sending what was expected.
    ClosedEarly,
    /// The connection broke (reset).
    ConnectionBroken,
    /// Could not connect at all.
    ConnectFailed,
    /// The server sent something where it should have sent nothing (or closed).
    UnexpectedData,
    /// The server kept a connection open that it should have closed.
    NotClosed,
    /// The server should have exited, and did not (or exited with another code).
    ExitMismatch,
    /// The server did not print a log line our own lesson must print.
    MissingLog,
    /// Sending failed.
    SendFailed,
    /// A client program printed something other than expected.
    WrongOutput,
    /// A client program did not connect to the server it was given.
    DidNotConnect,
    /// A client program did not end its stream (no close, no half-close) where the server waits
    /// for the end of it.
    NoEndOfStream,
    /// UDP: a reply went to another address than the one the request came from (another
    /// client's).
    WrongPeer,
    /// UDP: a reply came from another address than the one the request went to.
    WrongSource,
}

/// A failed step, with everything needed to understand it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub scenario: &'static str,
    pub about: &'static str,
    /// 1-based index of the failing step.
    pub step_number: usize,
    pub kind: FailureKind,
    /// What was expected, described.
    pub expected: String,
    /// What was read, if this was a read step.
    pub got: Option<Vec<u8>>,
    /// How the read ended, in words ("then nothing more arrived for 2 s").
    pub detail: String,
    pub mismatch: Option<Mismatch>,
    /// The conversation up to and including the failing step.
    pub transcript: Vec<String>,
    /// Set when the server program had exited by the time of the failure.
    pub server_exit: Option<String>,
    /// The last lines of the server's stderr.
    pub stderr_tail: Vec<String>,
    /// The bytes read would have been right with a `\n` at the end.
    pub missing_newline: bool,
    /// The failing step waited its whole timeout: for an answer, a close, an exit, a connection.
    pub timed_out: bool,
    /// The most threads any process of the program ran at the failure, where the system tells
    /// (see [`ServerProcess::max_threads`]); `None` for a client program.
    pub program_threads: Option<usize>,
}

impl Failure {
    /// The report without its heading: conversation, expected, got, where they differ, and how
    /// the program ended. One entry per line.
    pub fn report_lines(&self) -> Vec<String> {
        let mut lines = vec!["conversation so far:".to_string()];
        lines.extend(self.transcript.iter().map(|line| format!("  {line}")));
        if self.transcript.is_empty() {
            lines.push("  (nothing yet)".to_string());
        }
        lines.push(format!("expected: {}", self.expected));
        if let Some(got) = &self.got {
            lines.push(format!(
                "     got: {} ({} bytes){}",
                escape_shortened(got, SHOW_GOT),
                got.len(),
                self.detail
            ));
        } else if !self.detail.is_empty() {
            lines.push(format!("     got: {}", self.detail.trim_start_matches(", ")));
        }
        if let Some(m) = &self.mismatch {
            // When nothing arrived at all, the `got` line says so; a marker at byte 0 would
            // only repeat it.
            if let (Some(i), Some(got)) = (m.first_difference, &self.got)
                && !got.is_empty()
            {
                lines.push(format!(
                    "          {}",
                    difference_marker(got, i, m.expected_byte)
                ));
            }
            if let Some(reason) = &m.reason {
                lines.push(format!("          {reason}"));
            }
        }
        if let Some(exit) = &self.server_exit {
            lines.push(format!("the program had exited: {exit}"));
        }
        if !self.stderr_tail.is_empty() {
            lines.push("its stderr ended with:".to_string());
            lines.extend(self.stderr_tail.iter().map(|line| format!("  {line}")));
        }
        lines
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario `{}` ({}) failed at step {}",
            self.scenario, self.about, self.step_number
        )?;
        for line in self.report_lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// `first difference at byte 2: expected "\n" (0x0a), got end of data`
pub fn difference_marker(got: &[u8], index: usize, expected: Option<u8>) -> String {
    let show = |b: Option<u8>| match b {
        Some(b) => format!("{} (0x{b:02x})", escape_bytes(&[b])),
        None => "end of data".to_string(),
    };
    format!(
        "first difference at byte {index}: expected {}, got {}",
        show(expected),
        show(got.get(index).copied())
    )
}

struct Runner<'a> {
    server: &'a mut ServerProcess,
    scenario: &'a Scenario,
    options: &'a RunOptions,
    connections: Vec<(Client, Connection)>,
    /// Each UDP client's socket, made by its first datagram.
    datagram_sockets: Vec<(Client, UdpSocket)>,
    transcript: Transcript,
    /// Steps started so far, counting those inside the path an `Either` followed: the number a
    /// failure reports.
    steps_started: usize,
}

/// What an observing step saw (see [`Step::observes`]).
enum Observation {
    Read(ReadResult),
    Exit(Option<ExitStatus>),
}

/// Runs `scenario` against `server`. Returns the transcript, or the first failed step.
pub fn run_scenario(
    server: &mut ServerProcess,
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<Transcript, Box<Failure>> {
    let mut runner = Runner {
        server,
        scenario,
        options,
        connections: Vec::new(),
        datagram_sockets: Vec::new(),
        transcript: Transcript::default(),
        steps_started: 0,
    };
    for step in &scenario.steps {
        runner
            .run_step(step)
            .map_err(|failure| runner.fail(runner.steps_started, *failure))?;
    }
    Ok(runner.transcript)
}

/// A failure before the scenario-wide fields are filled in.
pub(crate) struct StepFailure {
    pub(crate) kind: FailureKind,
    pub(crate) expected: String,
    pub(crate) got: Option<Vec<u8>>,
    pub(crate) detail: String,
    pub(crate) mismatch: Option<Mismatch>,
    pub(crate) missing_newline: bool,
    pub(crate) timed_out: bool,
}

impl StepFailure {
    pub(crate) fn new(
        kind: FailureKind,
        expected: impl Into<String>,
        detail: impl Into<String>,
    ) -> Box<StepFailure> {
        Box::new(StepFailure {
            kind,
            expected: expected.into(),
            got: None,
            detail: detail.into(),
            mismatch: None,
            missing_newline: false,
            timed_out: false,
        })
    }

    /// The same failure, marked as one that waited its whole timeout.
    pub(crate) fn timed_out(mut self: Box<Self>) -> Box<StepFailure> {
        self.timed_out = true;
        self
    }
}

impl Runner<'_> {
    fn connection(&mut self, client: Client) -> Result<&mut Connection, Box<StepFailure>> {
        match self.connections.iter_mut().find(|(name, _)| *name == client) {
            Some((_, conn)) => Ok(conn),
            None => Err(StepFailure::new(
                FailureKind::ConnectFailed,
                format!("{client} to be connected"),
                "the scenario uses a client before connecting it (a bug in the scenario)",
            )),
        }
    }

    fn log(&mut self, line: String) {
        self.transcript.lines.push(line);
    }

    fn run_step(&mut self, step: &Step) -> Result<(), Box<StepFailure>> {
        let timeout = self.options.read_timeout;
        if let Step::Either(paths) = step {
            return self.run_either(paths);
        }
        self.steps_started += 1;
        if let Some(observes) = step.observes() {
            let seen = self.observe(&observes, &[step])?;
            let notes = self.judge(step, &seen)?;
            for note in notes {
                self.transcript.add_note(note);
            }
            return Ok(());
        }
        match step {
            Step::Connect(client) => {
                let conn = Connection::connect(self.server.addr(), timeout).map_err(|err| {
                    StepFailure::new(
                        FailureKind::ConnectFailed,
                        format!("{client} to connect to the server"),
                        describe_io_error(&err),
                    )
                })?;
                self.transcript.clients.push((client, conn.local_addr()));
                self.connections.push((client, conn));
                self.log(format!("{client} connects"));
            }
            Step::Send(client, bytes) => {
                self.log(format!("{client} > {}", self.options.long_bytes.show(bytes)));
                self.send(client, bytes)?;
                // A client that has stopped reading sent requests whose replies will pile up:
                // before the scenario goes on, let the server fill the buffers, so that a server
                // that then waits in a write to this client is already waiting.
                let connection = self.connection(client)?;
                if connection.is_paused() {
                    connection.wait_until_nothing_more_arrives(SETTLE, timeout);
                }
            }
            Step::SendInWrites(client, writes) => {
                for (i, piece) in writes.iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(PAUSE_BETWEEN_WRITES);
                    }
                    self.log(format!("{client} > {}", self.options.long_bytes.show(piece)));
                    self.send(client, piece)?;
                }
            }
            Step::ExpectSilence(client, duration) => {
                let result = self.connection(client)?.read_exact(1, *duration);
                if result.end == ReadEnd::TimedOut {
                    self.log(format!(
                        "{client} receives nothing for {} s",
                        duration.as_secs_f32()
                    ));
                } else {
                    let mut failure = StepFailure::new(
                        FailureKind::UnexpectedData,
                        format!("nothing to arrive for {} s", duration.as_secs_f32()),
                        end_detail(&result.end, timeout),
                    );
                    failure.got = Some(result.bytes);
                    return Err(failure);
                }
            }
            Step::ShutdownWrite(client) => {
                self.log(format!("{client} shuts down its write half"));
                self.connection(client)?.shutdown_write().map_err(|err| {
                    StepFailure::new(
                        FailureKind::SendFailed,
                        "to shut down the write half",
                        describe_io_error(&err),
                    )
                })?;
            }
            Step::StopReading(client) => {
                self.log(format!(
                    "{client} stops reading (what the server sends piles up in the kernel's buffers)"
                ));
                self.connection(client)?.stop_reading();
            }
            Step::Close(client) => {
                self.connections.retain(|(name, _)| name != client);
                self.log(format!("{client} closes"));
            }
            Step::ServerLogs(text) => {
                if self.options.check_logs && !self.server.wait_for_output(text, timeout) {
                    return Err(StepFailure::new(
                        FailureKind::MissingLog,
                        format!("the server to log a line containing {text:?}"),
                        format!("no such line within {} s", timeout.as_secs_f32()),
                    ));
                }
            }
            Step::SendDatagram(client, bytes) => {
                self.log(format!("{client} >> {}", self.options.long_bytes.show(bytes)));
                let to = self.server_datagram_addr();
                let socket = self.datagram_socket(client)?;
                socket.send_to(bytes, to).map_err(|err| {
                    StepFailure::new(
                        FailureKind::SendFailed,
                        format!("{client} to send its datagram"),
                        describe_io_error(&err),
                    )
                })?;
            }
            Step::ReceiveDatagram(client, expect) => {
                let notes = self.receive_datagram(client, expect)?;
                for note in notes {
                    self.transcript.add_note(note);
                }
            }
            Step::ExpectNoDatagram(client, duration) => {
                let mut buf = vec![0u8; DATAGRAM_BUFFER];
                match receive_within(self.datagram_socket(client)?, &mut buf, *duration) {
                    Ok(None) => self.log(format!(
                        "{client} receives no datagram for {} s",
                        duration.as_secs_f32()
                    )),
                    Ok(Some((n, from))) => {
                        let shown = self.options.long_bytes.show(&buf[..n]);
                        self.log(format!("{client} << {shown}"));
                        let mut failure = StepFailure::new(
                            FailureKind::UnexpectedData,
                            format!("no datagram for {client} for {} s", duration.as_secs_f32()),
                            format!(", from {from}"),
                        );
                        failure.got = Some(buf[..n].to_vec());
                        return Err(failure);
                    }
                    Err(err) => {
                        return Err(StepFailure::new(
                            FailureKind::ConnectionBroken,
                            format!("no datagram for {client} for {} s", duration.as_secs_f32()),
                            describe_io_error(&err),
                        ));
                    }
                }
            }
            Step::Receive(..)
            | Step::ExpectClosed(_)
            | Step::ExpectOpen(_)
            | Step::ServerExits(_)
            | Step::ServerKeepsRunning
            | Step::Either(_) => unreachable!("observing steps and `Either` are handled above"),
        }
        Ok(())
    }

    /// Observes once, then follows the first path whose first step accepts what was seen. Our
    /// own lessons (`accept_alternatives` off) may follow only the reference's path.
    fn run_either(&mut self, paths: &[Path]) -> Result<(), Box<StepFailure>> {
        self.steps_started += 1;
        let paths = if self.options.accept_alternatives {
            paths
        } else {
            &paths[..1]
        };
        let first_steps: Vec<&Step> = paths.iter().filter_map(|path| path.steps.first()).collect();
        let observes = first_steps.first().and_then(|step| step.observes());
        let Some(observes) =
            observes.filter(|o| first_steps.iter().all(|s| s.observes().as_ref() == Some(o)))
        else {
            return Err(StepFailure::new(
                FailureKind::SendFailed,
                "every path of `either` to start by observing the same thing",
                "a bug in the scenario",
            ));
        };
        let seen = self.observe(&observes, &first_steps)?;
        let mut failures = Vec::new();
        for path in paths {
            match self.judge(&path.steps[0], &seen) {
                Ok(notes) => {
                    for note in path.note.map(str::to_string).into_iter().chain(notes) {
                        self.transcript.add_note(note);
                    }
                    for step in &path.steps[1..] {
                        self.run_step(step)?;
                    }
                    return Ok(());
                }
                Err(failure) => failures.push(failure),
            }
        }
        // None fits: report the reference's failure, expecting any of the paths.
        let missing_newline = failures.iter().any(|f| f.missing_newline);
        let expected = failures
            .iter()
            .map(|f| f.expected.as_str())
            .collect::<Vec<_>>()
            .join("; or ");
        let mut failure = failures.swap_remove(0);
        failure.expected = expected;
        failure.missing_newline = missing_newline;
        Err(failure)
    }

    /// Reads, or waits for the server to exit, as an observing step asks; logs what arrived. A
    /// read stops waiting once what arrived can meet none of `steps` (the steps that will judge
    /// it).
    fn observe(&mut self, observes: &Observes, steps: &[&Step]) -> Result<Observation, Box<StepFailure>> {
        let timeout = self.options.read_timeout;
        match observes {
            Observes::Read(client, read) => {
                // What each step accepts: bytes an `Expect` describes, or (`None`) nothing at all.
                let accepts: Option<Vec<Option<&Expect>>> = steps
                    .iter()
                    .map(|step| match step {
                        Step::Receive(_, _, expect) => Some(Some(expect)),
                        Step::ExpectClosed(_) | Step::ExpectOpen(_) => Some(None),
                        _ => None,
                    })
                    .collect();
                let accept_alternatives = self.options.accept_alternatives;
                let hopeless = |prefix: &[u8]| {
                    accepts.as_ref().is_some_and(|accepts| {
                        accepts.iter().all(|accepted| match accepted {
                            Some(expect) => hopeless_for(expect, accept_alternatives, prefix),
                            None => !prefix.is_empty(),
                        })
                    })
                };
                let conn = self.connection(client)?;
                let result = conn.read_unless_hopeless(amount(read), timeout, &hopeless);
                if !result.bytes.is_empty() {
                    let shown = self.options.long_bytes.show(&result.bytes);
                    self.log(format!("{client} < {shown}"));
                }
                Ok(Observation::Read(result))
            }
            Observes::Exit => Ok(Observation::Exit(self.server.wait_exit(timeout))),
        }
    }

    /// Does what an observing step saw meet it? If so, logs the outcome and returns the notes
    /// (where the program differs from the reference in a way the step accepts).
    fn judge(&mut self, step: &Step, seen: &Observation) -> Result<Vec<String>, Box<StepFailure>> {
        let timeout = self.options.read_timeout;
        match (step, seen) {
            (Step::Receive(client, read, expect), Observation::Read(result)) => {
                let notes = judge_read(read, expect, result, timeout, self.options.accept_alternatives)?;
                if *read == Read::ToEnd {
                    self.log(format!("{client} sees the server close the connection"));
                }
                Ok(notes)
            }
            (Step::ExpectClosed(client), Observation::Read(result)) => {
                let expected = "the server to close the connection, sending nothing more";
                match (result.bytes.is_empty(), &result.end) {
                    (true, ReadEnd::Closed) => {
                        self.log(format!("{client} sees the server close the connection"))
                    }
                    (true, ReadEnd::Failed(_)) => {
                        self.log(format!("{client} sees the server reset the connection"))
                    }
                    (false, _) => {
                        let mut failure = StepFailure::new(FailureKind::UnexpectedData, expected, "");
                        failure.got = Some(result.bytes.clone());
                        return Err(failure);
                    }
                    (true, _) => {
                        return Err(StepFailure::new(
                            FailureKind::NotClosed,
                            expected,
                            format!("the connection was still open after {} s", timeout.as_secs_f32()),
                        )
                        .timed_out());
                    }
                }
                Ok(Vec::new())
            }
            (Step::ExpectOpen(client), Observation::Read(result)) => {
                let expected = "the server to keep the connection open, sending nothing";
                if result.bytes.is_empty() && result.end == ReadEnd::TimedOut {
                    self.log(format!(
                        "{client} sees the connection stay open ({} s without a byte)",
                        timeout.as_secs_f32()
                    ));
                    Ok(Vec::new())
                } else {
                    let kind = if result.bytes.is_empty() {
                        FailureKind::ClosedEarly
                    } else {
                        FailureKind::UnexpectedData
                    };
                    let mut failure = StepFailure::new(kind, expected, end_detail(&result.end, timeout));
                    failure.got = Some(result.bytes.clone());
                    Err(failure)
                }
            }
            (Step::ServerExits(code), Observation::Exit(status)) => {
                let expected = match code {
                    Some(code) => format!("the server to exit with code {code}"),
                    None => "the server to exit".to_string(),
                };
                match status {
                    None => Err(StepFailure::new(
                        FailureKind::ExitMismatch,
                        expected,
                        format!("it was still running after {} s", timeout.as_secs_f32()),
                    )
                    .timed_out()),
                    Some(status) if code.is_none() || status.code() == *code => {
                        self.log(format!("server exits ({})", describe_exit(*status)));
                        Ok(Vec::new())
                    }
                    Some(status) => Err(StepFailure::new(
                        FailureKind::ExitMismatch,
                        expected,
                        format!("it exited with {}", describe_exit(*status)),
                    )),
                }
            }
            (Step::ServerKeepsRunning, Observation::Exit(status)) => match status {
                None => {
                    self.log(format!(
                        "server keeps running ({} s later)",
                        timeout.as_secs_f32()
                    ));
                    Ok(Vec::new())
                }
                Some(status) => Err(StepFailure::new(
                    FailureKind::ExitMismatch,
                    "the server to keep running",
                    format!("it exited with {}", describe_exit(*status)),
                )),
            },
            _ => Err(StepFailure::new(
                FailureKind::SendFailed,
                "an observing step to judge what it observed",
                "a bug in the scenario: the step does not observe that",
            )),
        }
    }

    /// Where datagrams for the server go: its address, with a loopback address for a server
    /// that printed an unspecified one (`0.0.0.0`, `::`).
    fn server_datagram_addr(&self) -> SocketAddr {
        let mut addr = self.server.addr();
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        addr
    }

    /// `client`'s UDP socket; its first use binds it to a free port on the loopback address of
    /// the server's family.
    fn datagram_socket(&mut self, client: Client) -> Result<&UdpSocket, Box<StepFailure>> {
        if !self.datagram_sockets.iter().any(|(name, _)| *name == client) {
            let local: SocketAddr = match self.server.addr() {
                SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
            };
            let socket =
                UdpSocket::bind(local).and_then(|socket| socket.local_addr().map(|addr| (socket, addr)));
            let (socket, addr) = socket.map_err(|err| {
                StepFailure::new(
                    FailureKind::SendFailed,
                    format!("{client} to get a UDP socket"),
                    describe_io_error(&err),
                )
            })?;
            self.transcript.clients.push((client, addr));
            self.datagram_sockets.push((client, socket));
        }
        let (_, socket) = self
            .datagram_sockets
            .iter()
            .find(|(name, _)| *name == client)
            .expect("made above");
        Ok(socket)
    }

    /// Waits (up to the read timeout) for one datagram for `client` and judges it: its bytes,
    /// and that it came from the server's address. When none comes, looks whether it went to
    /// another client instead.
    fn receive_datagram(&mut self, client: Client, expect: &Expect) -> Result<Vec<String>, Box<StepFailure>> {
        let timeout = self.options.read_timeout;
        let server = self.server_datagram_addr();
        let mut buf = vec![0u8; DATAGRAM_BUFFER];
        let what = format!("{EXPECTED_A_DATAGRAM}: {}", expect.describe());
        let received = receive_within(self.datagram_socket(client)?, &mut buf, timeout);
        let (n, from) = match received {
            Ok(Some(received)) => received,
            Ok(None) => {
                let mut failure = match self.datagram_for_another_client(client) {
                    Some((other, bytes)) => {
                        let mut failure = StepFailure::new(
                            FailureKind::WrongPeer,
                            what,
                            format!(
                                ", but not to {client}: nothing came back to {client}'s address within {} s, \
                                 and {other} received this at its own address instead",
                                timeout.as_secs_f32()
                            ),
                        );
                        failure.got = Some(bytes);
                        failure
                    }
                    None => StepFailure::new(
                        FailureKind::NoAnswer,
                        what,
                        format!(
                            "no datagram came back to {client}'s address within {} s",
                            timeout.as_secs_f32()
                        ),
                    ),
                };
                failure.timed_out = true;
                return Err(failure);
            }
            Err(err) => {
                return Err(StepFailure::new(
                    FailureKind::ConnectionBroken,
                    what,
                    describe_io_error(&err),
                ));
            }
        };
        let bytes = buf[..n].to_vec();
        let shown = self.options.long_bytes.show(&bytes);
        if from != server {
            self.log(format!("{client} << {shown} (from {from})"));
            let mut failure = StepFailure::new(
                FailureKind::WrongSource,
                what,
                format!(", from {from}: not the server's address {server}, where the request went"),
            );
            failure.got = Some(bytes);
            return Err(failure);
        }
        self.log(format!("{client} << {shown}"));
        let expect = if self.options.accept_alternatives {
            expect
        } else {
            expect.reference()
        };
        let judged = expect.judge(&bytes).and_then(|notes| {
            if self.options.accept_alternatives || notes.is_empty() {
                Ok(notes)
            } else {
                Err(Mismatch::because(format!(
                    "a learner's program would pass with a note, but a reference lesson must behave as the \
                     reference: {}",
                    notes.join("; ")
                )))
            }
        });
        judged.map_err(|mismatch| {
            Box::new(StepFailure {
                kind: FailureKind::WrongBytes,
                expected: format!("a datagram: {}", expect.describe()),
                got: Some(bytes),
                detail: String::new(),
                mismatch: Some(mismatch),
                missing_newline: false,
                timed_out: false,
            })
        })
    }

    /// A datagram waiting for another client than `client`, without taking it: who, and its
    /// bytes.
    fn datagram_for_another_client(&self, client: Client) -> Option<(Client, Vec<u8>)> {
        let mut buf = vec![0u8; DATAGRAM_BUFFER];
        self.datagram_sockets
            .iter()
            .filter(|(name, _)| *name != client)
            .find_map(|(name, socket)| {
                socket.set_nonblocking(true).ok()?;
                let peeked = socket.peek_from(&mut buf);
                let _ = socket.set_nonblocking(false);
                let (n, _) = peeked.ok()?;
                Some((*name, buf[..n].to_vec()))
            })
    }

    fn send(&mut self, client: Client, bytes: &[u8]) -> Result<(), Box<StepFailure>> {
        self.connection(client)?.send(bytes).map_err(|err| {
            StepFailure::new(
                FailureKind::SendFailed,
                format!("{client} to send its bytes"),
                describe_io_error(&err),
            )
        })
    }

    fn fail(&mut self, step_number: usize, failure: StepFailure) -> Box<Failure> {
        // A connection that ended early may mean the program just died: give the exit a moment
        // to be noticed, so the report can say so.
        let grace = match failure.kind {
            FailureKind::ClosedEarly | FailureKind::ConnectionBroken | FailureKind::ConnectFailed => {
                Duration::from_millis(200)
            }
            _ => Duration::ZERO,
        };
        let mut exit = self.server.wait_exit(grace);
        if exit.is_none() && shows_a_crash(&self.server.stderr_tail(40)) {
            // It is printing a traceback or a panic: it is on its way out, which takes longer on
            // a busy machine (an interpreter shutting down, a backtrace being symbolized). Wait
            // for it, so the hint says "crashed" and not "closed the connection" or "no answer".
            exit = self.server.wait_exit(Duration::from_secs(3));
        }
        let server_exit = exit.map(describe_exit);
        let program_threads = match server_exit {
            None => self.server.max_threads(),
            Some(_) => None,
        };
        Box::new(Failure {
            scenario: self.scenario.name,
            about: self.scenario.about,
            step_number,
            kind: failure.kind,
            expected: failure.expected,
            got: failure.got,
            detail: failure.detail,
            mismatch: failure.mismatch,
            transcript: self.transcript.lines.clone(),
            server_exit,
            stderr_tail: self.server.stderr_tail(8),
            missing_newline: failure.missing_newline,
            timed_out: failure.timed_out,
            program_threads,
        })
    }
}

/// Receives one datagram on `socket` within `timeout`: its length and sender, or `None` when
/// nothing came. Interrupted calls are retried with the time that is left.
fn receive_within(
    socket: &UdpSocket,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<Option<(usize, SocketAddr)>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv_from(buf) {
            Ok(received) => return Ok(Some(received)),
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Ok(None);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Judges what a read step got: the bytes must meet `expect`, and the read must have ended the
/// way `read` asks (a whole line, all `n` bytes, or the peer closing for `Read::ToEnd`). Returns
/// the notes of an accepted alternative; with `accept_alternatives` off (our own lessons), only
/// the reference is accepted, and what would have been a note is a failure.
pub(crate) fn judge_read(
    read: &Read,
    expect: &Expect,
    result: &ReadResult,
    timeout: Duration,
    accept_alternatives: bool,
) -> Result<Vec<String>, Box<StepFailure>> {
    let expect = if accept_alternatives {
        expect
    } else {
        expect.reference()
    };
    let finished = match read {
        Read::ToEnd => result.end == ReadEnd::Closed,
        _ => result.end == ReadEnd::Complete,
    };
    let checked = expect.judge(&result.bytes).and_then(|notes| {
        if accept_alternatives || notes.is_empty() {
            Ok(notes)
        } else {
            Err(Mismatch::because(format!(
                "a learner's program would pass with a note, but a reference lesson must behave as the \
                 reference: {}",
                notes.join("; ")
            )))
        }
    });
    let checked = match (finished, checked) {
        (true, Ok(notes)) => return Ok(notes),
        (_, checked) => checked.map(|_notes| ()),
    };
    let what = match read {
        Read::Line => "a line",
        Read::Bytes(_) => "bytes",
        Read::ToEnd => "everything until the connection closes",
    };
    // Bytes that differ from the expected ones within what arrived are wrong, however the
    // read ended.
    let differs_within = checked
        .as_ref()
        .err()
        .and_then(|m| m.first_difference)
        .is_some_and(|i| i < result.bytes.len());
    let kind = match (&result.end, finished) {
        (_, true) => FailureKind::WrongBytes,
        _ if differs_within => FailureKind::WrongBytes,
        (ReadEnd::Closed, _) => FailureKind::ClosedEarly,
        (ReadEnd::Failed(_), _) => FailureKind::ConnectionBroken,
        // Enough bytes arrived for a line, but no newline: judged by content.
        (ReadEnd::Complete, false) | (ReadEnd::Hopeless, _) => FailureKind::WrongBytes,
        (ReadEnd::TimedOut, _) if checked.is_err() && !result.bytes.is_empty() => FailureKind::WrongBytes,
        // Everything that was expected arrived, but the connection stayed open.
        (ReadEnd::TimedOut, _) if *read == Read::ToEnd && checked.is_ok() => FailureKind::NotClosed,
        (ReadEnd::TimedOut, _) => FailureKind::NoAnswer,
    };
    let detail = if finished {
        String::new()
    } else {
        end_detail(&result.end, timeout)
    };
    // Only when the bytes are wrong as they are, and right with a newline.
    let missing_newline = checked.is_err()
        && !result.bytes.is_empty()
        && !result.bytes.ends_with(b"\n")
        && expect.check(&[result.bytes.as_slice(), b"\n"].concat()).is_ok();
    Err(Box::new(StepFailure {
        kind,
        expected: format!("{what}: {}", expect.describe()),
        got: Some(result.bytes.clone()),
        detail,
        mismatch: checked.err(),
        missing_newline,
        timed_out: result.end == ReadEnd::TimedOut,
    }))
}

/// How much a read step takes.
pub(crate) fn amount(read: &Read) -> Amount {
    match read {
        Read::Line => Amount::Line { max: MAX_LINE },
        Read::Bytes(n) => Amount::Exactly(*n),
        Read::ToEnd => Amount::ToEnd,
    }
}

/// Can bytes starting with `prefix` never meet `expect` (only its reference, for our own
/// lessons)?
pub(crate) fn hopeless_for(expect: &Expect, accept_alternatives: bool, prefix: &[u8]) -> bool {
    let expect = if accept_alternatives {
        expect
    } else {
        expect.reference()
    };
    expect.cannot_match(prefix)
}

pub(crate) fn end_detail(end: &ReadEnd, timeout: Duration) -> String {
    match end {
        ReadEnd::Complete => String::new(),
        ReadEnd::Closed => ", then the server closed the connection".to_string(),
        ReadEnd::TimedOut => format!(", then nothing more arrived for {} s", timeout.as_secs_f32()),
        ReadEnd::Failed(why) => format!(", then {why}"),
        ReadEnd::Hopeless => String::new(),
    }
}

/// An IPv4 address and port (`127.0.0.1:5000`) or a bracketed IPv6 one (`[::1]:5000`). Only the
/// IPv4 form starts with `\b`: between a space and `[` there is no word boundary (neither is a
/// word character), so a `\b` in front of both forms never matched `[::1]:5000` after a space.
static ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\b\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})\b").unwrap());
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?").unwrap()
});

/// A write to a client that has reset the connection fails with one of two errors, depending on
/// whether the reset has arrived yet when the write starts.
static CONNECTION_LOST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:Connection reset by peer|Broken pipe) \(os error \d+\)").unwrap());

/// Replaces what changes from run to run with stable tokens: a client's address becomes `<c1>`,
/// the server's port `<port>`, any other address `<addr>`, a timestamp `<time>`, and the two
/// errors a lost connection can give, `<connection reset or broken pipe>`.
pub fn stable_tokens(line: &str, server: SocketAddr, clients: &[(Client, SocketAddr)]) -> String {
    let line = TIMESTAMP.replace_all(line, "<time>");
    let line = CONNECTION_LOST.replace_all(&line, "<connection reset or broken pipe>");
    ADDRESS
        .replace_all(&line, |caps: &regex::Captures| {
            let port: u16 = caps[2].parse().unwrap_or(0);
            if let Some((name, _)) = clients.iter().find(|(_, addr)| addr.port() == port) {
                format!("<{name}>")
            } else if port == server.port() {
                format!("{}:<port>", &caps[1])
            } else {
                "<addr>".to_string()
            }
        })
        .into_owned()
}

/// The transcript followed by the server's output, all with stable tokens: the text a snapshot
/// holds and the book shows.
pub fn render(
    scenario: &Scenario,
    transcript: &Transcript,
    server: SocketAddr,
    output: &[OutputLine],
) -> String {
    let mut text = format!("# {}: {}\n", scenario.name, scenario.about);
    for line in &transcript.lines {
        text.push_str(&stable_tokens(line, server, &transcript.clients));
        text.push('\n');
    }
    if !output.is_empty() {
        text.push_str("--- server output ---\n");
        for line in output {
            let prefix = if line.stream == Stream::Stderr {
                "[stderr] "
            } else {
                ""
            };
            text.push_str(prefix);
            text.push_str(&stable_tokens(&line.text, server, &transcript.clients));
            text.push('\n');
        }
    }
    text
}

/// Whether a program's last stderr lines show it crashing: a Python traceback or a Rust panic.
fn shows_a_crash(stderr_tail: &[String]) -> bool {
    stderr_tail
        .iter()
        .any(|line| line.contains("Traceback (most recent call last)") || line.contains("panicked at"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceback_or_a_panic_in_stderr_shows_a_crash() {
        let lines = |text: &[&str]| text.iter().map(|line| line.to_string()).collect::<Vec<_>>();
        assert!(shows_a_crash(&lines(&[
            "Traceback (most recent call last):",
            "  File \"x.py\""
        ])));
        assert!(shows_a_crash(&lines(&[
            "thread 'main' panicked at src/main.rs:3:5:"
        ])));
        assert!(!shows_a_crash(&lines(&[
            "accept failed: Too many open files (os error 24)"
        ])));
    }

    #[test]
    fn addresses_and_times_become_tokens() {
        let server: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let c1: SocketAddr = "127.0.0.1:51234".parse().unwrap();
        let clients = [("c1", c1)];
        assert_eq!(
            stable_tokens("listening on 127.0.0.1:40000", server, &clients),
            "listening on 127.0.0.1:<port>"
        );
        assert_eq!(
            stable_tokens("connected by 127.0.0.1:51234", server, &clients),
            "connected by <c1>"
        );
        assert_eq!(
            stable_tokens("from 10.0.0.1:999", server, &clients),
            "from <addr>"
        );
        assert_eq!(
            stable_tokens(r#"c1 < "2026-11-25T12:58:44.123+01:00\n""#, server, &clients),
            r#"c1 < "<time>\n""#
        );
    }

    #[test]
    fn ipv6_addresses_after_a_space_become_tokens() {
        let server: SocketAddr = "[::1]:40000".parse().unwrap();
        let c1: SocketAddr = "[::1]:51234".parse().unwrap();
        let clients = [("c1", c1)];
        assert_eq!(
            stable_tokens("listening on [::1]:40000", server, &clients),
            "listening on [::1]:<port>"
        );
        assert_eq!(
            stable_tokens("connected by [::1]:51234; from [fe80::1]:999", server, &clients),
            "connected by <c1>; from <addr>"
        );
        assert_eq!(stable_tokens("(127.0.0.1:51234)", server, &clients), "(<c1>)");
    }

    #[test]
    fn the_marker_names_the_byte_values() {
        assert_eq!(
            difference_marker(b"OK", 2, Some(b'\n')),
            r#"first difference at byte 2: expected "\n" (0x0a), got end of data"#
        );
    }
}
