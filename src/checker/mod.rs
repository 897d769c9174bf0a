//! `workbook check`: run a learner's program — in any language — through the same scenarios our
//! own lessons are tested with, and explain every failure.
//!
//! # Layout
//! - this file: the steps that can be checked, and running one step's scenarios.
//! - [`hints`]: from a failure to the likely mistake.
//! - [`report`]: the text and JSON a learner or a tool reads.
//! - [`grade`]: many students' folders at once, for an instructor.

pub mod grade;
pub mod hints;
pub mod report;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::client_scenario::{ClientScenario, run_client_scenario};
use crate::harness::process::{Readiness, ServerProcess, StartError};
use crate::harness::run::{Failure, FailureKind, RunOptions, run_scenario};
use crate::harness::scenario::Scenario;
use crate::scenarios;
use hints::{Advice, Cause, Hint};

/// What a step's scenarios test: a server we connect to, or a client we run against a fake server.
#[derive(Clone, Copy)]
pub enum StepKind {
    Server(fn() -> Vec<Scenario>),
    Client(fn() -> Vec<ClientScenario>),
}

/// A step a learner can check, usually one lesson's program.
#[derive(Clone, Copy)]
pub struct CheckStep {
    /// What the learner types: `kv-server`.
    pub name: &'static str,
    /// The reference lessons, which pass every scenario: `["05_kv_server"]`.
    pub lessons: &'static [&'static str],
    /// One line: what a program must do to pass, naming every detail the step fixes (where a
    /// detail is left open, the scenarios accept each reasonable choice).
    pub expects: &'static str,
    /// An example command line.
    pub example: &'static str,
    pub kind: StepKind,
    /// What to tell a learner in the situations every step shares, in this step's words.
    pub hints: hints::StepHints,
}

impl CheckStep {
    /// How many scenarios this step has.
    pub fn scenario_count(&self) -> usize {
        match self.kind {
            StepKind::Server(all) => all().len(),
            StepKind::Client(all) => all().len(),
        }
    }
}

/// Every step, in teaching order.
pub fn steps() -> Vec<CheckStep> {
    vec![
        CheckStep {
            name: "echo-server",
            lessons: &["01_echo_server"],
            expects: "answers every read with \"Echo: \" and exactly the bytes read, reading up to 1024 bytes at a time \
                      (like recv(1024)); when its client closes, exits (or serves the next client)",
            example: "python3 echo_server.py --port {port}",
            kind: StepKind::Server(scenarios::echo::all),
            hints: hints::ECHO_SERVER,
        },
        CheckStep {
            name: "echo-client",
            lessons: &["02_echo_client"],
            expects: "sends its command-line argument, prints the reply; a refused connection is one clear error line \
                      and a non-zero exit code",
            example: "python3 echo_client.py --port {port}",
            kind: StepKind::Client(scenarios::echo::client_all),
            hints: hints::ECHO_CLIENT,
        },
        CheckStep {
            name: "time-server",
            lessons: &["03_time_server"],
            expects: "sends every client the current time as soon as it connects (like 2026-11-25T14:03:07+01:00, or \
                      local time without the offset), then closes the connection (a final newline is optional); serves the next",
            example: "python3 time_server.py --port {port}",
            kind: StepKind::Server(scenarios::time::all),
            hints: hints::TIME_SERVER,
        },
        CheckStep {
            name: "length-prefix-server",
            lessons: &["04_length_prefix"],
            expects: "echoes every frame (4-byte big-endian length + payload, up to 1 MiB) as a frame; closes the \
                      connection without a word on a larger header or a stream that ends inside a frame; serves the next client",
            example: "python3 frame_server.py --port {port}",
            kind: StepKind::Server(scenarios::frame::all),
            hints: hints::FRAME_SERVER,
        },
        CheckStep {
            name: "kv-server",
            lessons: &["05_kv_server"],
            expects: "the key-value protocol: SET/GET/DELETE lines ending in \\n or \\r\\n, one reply line each (OK, the \
                      value, or ERROR for anything wrong), lines of up to 64 KiB, one store for all clients",
            example: "python3 kv_server.py --port {port}",
            kind: StepKind::Server(scenarios::kv::all),
            hints: hints::KV_SERVER,
        },
        CheckStep {
            name: "kv-client",
            lessons: &["06_kv_client"],
            expects: "sends its arguments as one command line ending in \\n, prints the reply line (even when it arrives a byte at a time), exits 0 (OK or a \
                      value) or 1 (ERROR); when the server never replies, gives up within 10 s with a non-zero exit",
            example: "python3 kv_client.py --port {port}",
            kind: StepKind::Client(scenarios::kv::client_all),
            hints: hints::KV_CLIENT,
        },
        CheckStep {
            name: "kv-client-robust",
            lessons: &["09_kv_client_robust"],
            expects: "a kv-client that survives the network: after a reset, connects again and repeats a GET \
                      (it is safe to repeat); when no attempt is ever answered, gives up within 10 s with a message \
                      on stderr and a non-zero exit",
            example: "python3 kv_client_robust.py --port {port}",
            kind: StepKind::Client(scenarios::kv::robust_client_all),
            hints: hints::KV_CLIENT,
        },
        CheckStep {
            name: "concurrent-kv-server",
            lessons: &[
                "07_kv_server_threads",
                "08_kv_server_events",
                "12_kv_server_epoll",
            ],
            expects: "the kv-server protocol for many clients at once: neither an idle client nor one that reads none of its replies holds up anybody",
            example: "python3 kv_server_threads.py --port {port}",
            kind: StepKind::Server(scenarios::concurrency::kv_server_all),
            hints: hints::KV_SERVER,
        },
        CheckStep {
            name: "udp-echo-server",
            lessons: &["10_udp_echo"],
            expects: "binds a UDP port and sends every datagram (0 to 1024 bytes) back unchanged, as one datagram, \
                      to the address it came from (the one recvfrom returns); serves any number of clients",
            example: "python3 udp_echo_server.py --port {port}",
            kind: StepKind::Server(scenarios::udp::all),
            hints: hints::UDP_ECHO_SERVER,
        },
        CheckStep {
            name: "udp-kv-client",
            lessons: &["11_udp_kv"],
            expects: "a client of the datagram format over UDP (`<id> GET key` in, `<id> value` back): sends the \
                      same request again (same id) after each silence until the reply gets through a lossy path, \
                      ignores replies with another id or none, and gives up on a silent server within 10 s with a \
                      message on stderr and a non-zero exit",
            example: "python3 udp_kv_client.py --port {port}",
            kind: StepKind::Client(scenarios::udp_kv::client_all),
            hints: hints::UDP_KV_CLIENT,
        },
        CheckStep {
            name: "kv-server-idle-timeout",
            lessons: &[],
            expects: "a kv-server that takes --idle-timeout SECONDS (the checker gives --idle-timeout 1) and closes a \
                      connection that has sent nothing for that long (an error line first is allowed); an active client stays",
            example: "python3 kv_server_idle.py --port {port}",
            kind: StepKind::Server(scenarios::exercises::idle_timeout_all),
            hints: hints::KV_SERVER_IDLE_TIMEOUT,
        },
        CheckStep {
            name: "kv-server-persistent",
            lessons: &[],
            expects: "a kv-server that takes --data-file PATH (the checker gives a file in a fresh folder, absent at \
                      first) and keeps its store there: after a stop (SIGTERM) and a start with the same arguments, the data is back",
            example: "python3 kv_server_persistent.py --port {port}",
            kind: StepKind::Server(scenarios::exercises::persistent_all),
            hints: hints::KV_SERVER,
        },
        CheckStep {
            name: "resp-server",
            lessons: &["13_resp_server"],
            expects: "RESP2 as Redis speaks it: requests are arrays of bulk strings (inline lines too, or an error and a \
                      close); replies +OK, $<len> bulk strings, $-1 for a missing key, :<n> for DEL and EXISTS, -<error>; \
                      binary-safe values; a length that cannot be true gets an error reply and a close",
            example: "python3 resp_server.py --port {port}",
            kind: StepKind::Server(scenarios::resp::all),
            hints: hints::RESP_SERVER,
        },
    ]
}

/// For a step no lesson implements (a chapter's exercise): where the book asks for it.
pub fn exercise_of(step: &str) -> Option<&'static str> {
    match step {
        "kv-server-idle-timeout" => Some("the exercise \"An idle timeout\" of lessons 07 and 08"),
        "kv-server-persistent" => Some("the exercise \"Persistence\" of lesson 05"),
        _ => None,
    }
}

/// The arguments the checker adds to a server's command for one scenario of `step` (the
/// settings the step fixes); `scratch` is an empty folder of that scenario's own.
pub fn added_arguments(step: &str, scratch: &std::path::Path) -> Vec<String> {
    match step {
        "kv-server-idle-timeout" => scenarios::exercises::IDLE_TIMEOUT_ARGS.map(String::from).to_vec(),
        "kv-server-persistent" => scenarios::exercises::data_file_args(&scratch.join("kv-data")),
        _ => Vec::new(),
    }
}

/// An empty folder for one scenario, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, CannotRun> {
        let dir = std::env::temp_dir().join(format!("workbook-{}-{:x}", std::process::id(), random()));
        std::fs::create_dir_all(&dir)
            .map_err(|err| CannotRun(format!("could not create a folder in {}: {err}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every section of the book a hint links to (`chapter.md#heading`), each once: the steps'
/// shared hints, every scenario's own, and the causes. The book's tests check that each exists.
pub fn book_links() -> Vec<&'static str> {
    let mut links = hints::cause_links();
    links.extend(hints::REPLY_TO_THE_SENDER.see);
    links.extend(hints::NO_DATAGRAM_BACK.see);
    links.extend(hints::REPLY_FROM_THE_BOUND_SOCKET.see);
    for step in steps() {
        let h = step.hints;
        links.extend(
            [
                h.crashed,
                h.exited_early,
                h.closed_after_answer,
                h.missing_newline,
                h.no_end_of_stream,
            ]
            .iter()
            .filter_map(|advice| advice.see),
        );
        match step.kind {
            StepKind::Server(all) => links.extend(all().iter().filter_map(|s| s.see)),
            StepKind::Client(all) => links.extend(all().iter().filter_map(|s| s.see)),
        }
    }
    links.sort_unstable();
    links.dedup();
    links
}

/// Looks a step up by name.
pub fn find_step(name: &str) -> Option<CheckStep> {
    steps().into_iter().find(|step| step.name == name)
}

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Every read waits at most this long.
    pub read_timeout: Duration,
    /// How long a server program gets to start listening, and a client program to connect.
    pub start_timeout: Duration,
    /// Run only the scenarios whose name contains this.
    pub only: Option<String>,
    /// Run the program in this folder.
    pub dir: Option<PathBuf>,
    /// Scenarios not started by then are reported as not run.
    pub deadline: Option<Instant>,
    /// Stop a step whose first scenarios all stall the same way (see [`FAIL_FAST_AFTER`]).
    pub fail_fast: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            read_timeout: Duration::from_secs(2),
            start_timeout: Duration::from_secs(10),
            only: None,
            dir: None,
            deadline: None,
            fail_fast: true,
        }
    }
}

/// A step stops when its first this many scenarios all waited out a timeout the same way (a
/// server that never answers, a client that never exits): the rest would only wait as long,
/// and could not pass. A program that did not even start (never listened, never connected)
/// stops the step at once, since that wait is the long start timeout.
pub const FAIL_FAST_AFTER: usize = 3;

/// How one scenario went.
#[derive(Debug)]
pub enum Outcome {
    /// Passed. `notes` says where the program chose another accepted behaviour than the
    /// reference ("your server refuses an empty value ..."): remarks, never failures. Empty when
    /// it behaved as the reference. A passed scenario with notes counts as passed everywhere.
    Passed {
        notes: Vec<String>,
    },
    Failed {
        failure: Box<Failure>,
        /// What to do about it.
        hint: String,
        /// The book's section that reproduces the mistake by hand (`chapter.md#heading`; see
        /// [`hints::in_built_book`]).
        see: Option<&'static str>,
        /// Set when the failure is one of several with one cause, which the report names once
        /// (see [`StepReport::causes`]): that cause's `what`.
        cause: Option<&'static str>,
    },
    NotRun {
        why: String,
    },
}

impl Outcome {
    /// A failure, with the hint that fits it best (see [`hints::hint_for`]).
    fn failed(failure: Box<Failure>, scenario: Option<Advice>, step_hints: &hints::StepHints) -> Outcome {
        let hint = hints::hint_for(&failure, scenario, step_hints);
        Outcome::failed_with(failure, hint)
    }

    fn failed_with(failure: Box<Failure>, hint: Hint) -> Outcome {
        Outcome::Failed {
            failure,
            hint: hint.text,
            see: hint.see,
            cause: None,
        }
    }

    pub fn is_passed(&self) -> bool {
        matches!(self, Outcome::Passed { .. })
    }

    /// The notes of a passed scenario; none for any other outcome.
    pub fn notes(&self) -> &[String] {
        match self {
            Outcome::Passed { notes } => notes,
            _ => &[],
        }
    }

    /// The failure, if the scenario failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed { failure, .. } => Some(failure),
            _ => None,
        }
    }
}

/// A scenario's own hint and book section, as advice.
fn scenario_advice(hint: Option<&'static str>, see: Option<&'static str>) -> Option<Advice> {
    hint.map(|text| Advice { text, see })
}

#[derive(Debug)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub about: &'static str,
    pub outcome: Outcome,
}

impl ScenarioResult {
    /// The hint of a failed scenario.
    pub fn outcome_hint(&self) -> Option<&String> {
        match &self.outcome {
            Outcome::Failed { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

/// What kept a program from being checked scenario by scenario: it never started, never
/// connected, or stalled the same way in its first scenarios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    /// What the program did, to follow "the program ": `exited before connecting (exit code 2):
    /// python3: can't open file ...`, `listens but never answered in 3 conversations; the rest
    /// were not run`.
    pub what: String,
    /// The step stopped early because of [`CheckOptions::fail_fast`]; without it, the rest of
    /// the scenarios would have run.
    pub stopped_early: bool,
}

/// One step's results.
#[derive(Debug)]
pub struct StepReport {
    pub step: &'static str,
    pub command: Vec<String>,
    pub results: Vec<ScenarioResult>,
    pub elapsed: Duration,
    /// Set when the program as a whole did not get as far as the scenarios test (every zero of
    /// this kind says why here).
    pub trouble: Option<Trouble>,
    /// Causes that explain several failures at once (or one failure better than its scenario's
    /// hint), each named once.
    pub causes: Vec<Cause>,
}

impl StepReport {
    /// Passed scenarios, those with notes included.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome.is_passed()).count()
    }

    /// Passed scenarios that have notes.
    pub fn noted(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !r.outcome.notes().is_empty())
            .count()
    }

    /// Every note of the step, each once, in the order the scenarios ran (a choice that shows
    /// in several scenarios is one note).
    pub fn notes(&self) -> Vec<&str> {
        let mut notes: Vec<&str> = Vec::new();
        for note in self.results.iter().flat_map(|r| r.outcome.notes()) {
            if !notes.contains(&note.as_str()) {
                notes.push(note);
            }
        }
        notes
    }

    pub fn total(&self) -> usize {
        self.results.len()
    }

    pub fn all_passed(&self) -> bool {
        self.passed() == self.total()
    }

    /// Some scenarios were not run because the time limit was reached.
    pub fn ran_out_of_time(&self) -> bool {
        self.results
            .iter()
            .any(|r| matches!(&r.outcome, Outcome::NotRun { why } if why == TIME_IS_UP))
    }
}

/// Why a check could not run at all (exit code 2).
#[derive(Debug)]
pub struct CannotRun(pub String);

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CannotRun {}

/// Runs `step`'s scenarios against `command` (program and arguments; `{port}` in any argument is
/// replaced by the port the checker chose).
pub fn check(step: &CheckStep, command: &[String], options: &CheckOptions) -> Result<StepReport, CannotRun> {
    if command.is_empty() {
        return Err(CannotRun(format!(
            "no command given; put your program after `--`, e.g. `workbook check {} -- {}`",
            step.name, step.example
        )));
    }
    if !command.iter().any(|arg| arg.contains("{port}")) {
        return Err(CannotRun(format!(
            "the command must contain {{port}} where your program takes its port, e.g. `{}`; \
             the checker replaces it with a free port",
            step.example
        )));
    }
    let started = Instant::now();
    let (mut results, trouble) = match step.kind {
        StepKind::Server(all) => check_server(step, &select(all(), |s| s.name, options), command, options)?,
        StepKind::Client(all) => check_client(step, &select(all(), |s| s.name, options), command, options)?,
    };
    let causes = hints::causes(step.name, &results);
    for cause in &causes {
        for result in results.iter_mut().filter(|r| cause.scenarios.contains(&r.name)) {
            if let Outcome::Failed {
                hint,
                see,
                cause: named,
                ..
            } = &mut result.outcome
            {
                *hint = cause.hint.to_string();
                *see = cause.see;
                *named = Some(cause.what);
            }
        }
    }
    Ok(StepReport {
        step: step.name,
        command: command.to_vec(),
        results,
        elapsed: started.elapsed(),
        trouble,
        causes,
    })
}

fn select<T>(all: Vec<T>, name: fn(&T) -> &'static str, options: &CheckOptions) -> Vec<T> {
    match &options.only {
        Some(only) => all
            .into_iter()
            .filter(|s| name(s).contains(only.as_str()))
            .collect(),
        None => all,
    }
}

fn past_deadline(options: &CheckOptions) -> bool {
    options
        .deadline
        .is_some_and(|deadline| Instant::now() >= deadline)
}

const TIME_IS_UP: &str = "the time limit was reached before this scenario started";

/// Why the scenarios after a stop are not run.
const STOPPED: &str = "the step stopped early (see below)";

/// A port for the program to listen on. A port the kernel picks (`bind` to port 0) comes from
/// the range it also gives the outgoing connections of every program on the machine, so between
/// our choice and the program's `bind`, another connection may take it, and the program fails
/// with "address already in use". So the port is chosen at random below that range (from
/// 10000), where no outgoing connection lands, and checked free by binding it for a moment.
/// `udp` picks a free UDP port instead (for a step whose scenarios talk in datagrams): TCP and
/// UDP ports are separate, so a port free for one may be taken for the other.
fn free_port(udp: bool) -> Result<u16, CannotRun> {
    let is_free = |port: u16| {
        if udp {
            UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        } else {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        }
    };
    const LOWEST: u32 = 10_000;
    let outgoing_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if outgoing_start > LOWEST + 1000 {
        for _ in 0..20 {
            let port = LOWEST + (random() % u64::from(outgoing_start - LOWEST)) as u32;
            let port = u16::try_from(port).expect("below the outgoing range, so below 65536");
            if is_free(port) {
                return Ok(port);
            }
        }
    }
    let any = if udp {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|socket| socket.local_addr())
    } else {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|listener| listener.local_addr())
    };
    any.map(|addr| addr.port())
        .map_err(|err| CannotRun(format!("could not find a free port: {err}")))
}

/// A number that differs from call to call and from run to run (from the standard library's
/// randomly keyed hasher).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.finish()
}

/// Did the program fail because its port was taken meanwhile (by another program)? Then it is
/// worth another try, on another port.
fn port_was_taken(err: &StartError) -> bool {
    err.exit.is_some()
        && err
            .stderr_tail
            .iter()
            .any(|line| line.to_lowercase().contains("address already in use"))
}

fn command_for(command: &[String], port: u16, options: &CheckOptions) -> Command {
    let mut cmd = Command::new(&command[0]);
    cmd.args(
        command[1..]
            .iter()
            .map(|arg| arg.replace("{port}", &port.to_string())),
    );
    if let Some(dir) = &options.dir {
        cmd.current_dir(dir);
    }
    cmd
}

fn run_options(options: &CheckOptions) -> RunOptions {
    RunOptions {
        read_timeout: options.read_timeout,
        start_timeout: options.start_timeout,
        ..RunOptions::learner()
    }
}

/// How a failed scenario waited out a timeout, when it did in a way that says the program is
/// stuck (it never answered at all, never ended a line, never exited), and after how many such
/// scenarios in a row the step stops.
fn stall(failure: &Failure, client: bool) -> Option<(&'static str, usize)> {
    if !failure.timed_out {
        return None;
    }
    if client {
        return Some(match failure.kind {
            FailureKind::DidNotConnect => ("never connected to the port it was given", 1),
            FailureKind::ExitMismatch => ("never exited", FAIL_FAST_AFTER),
            FailureKind::NoEndOfStream => (
                "never ended its stream (no close, no half-close)",
                FAIL_FAST_AFTER,
            ),
            _ if failure.missing_newline => ("sent its request without the final newline", FAIL_FAST_AFTER),
            FailureKind::NoAnswer if failure.got.as_ref().is_none_or(Vec::is_empty) => {
                ("connected but never sent its request", FAIL_FAST_AFTER)
            }
            _ => return None,
        });
    }
    if failure.missing_newline {
        return Some(("answered without the final newline", FAIL_FAST_AFTER));
    }
    let answered = failure
        .transcript
        .iter()
        .any(|line| line.contains(" < ") || line.contains(" << "));
    (failure.kind == FailureKind::NoAnswer && !answered && failure.server_exit.is_none())
        .then_some(("listens but never answered", FAIL_FAST_AFTER))
}

/// Should the step stop after `results` (in the order they ran)? Returns what to say: the first
/// scenarios all stalled the same way.
fn stop_early(results: &[&Outcome], client: bool, options: &CheckOptions) -> Option<Trouble> {
    if !options.fail_fast {
        return None;
    }
    let stalls: Vec<_> = results
        .iter()
        .map(|outcome| outcome.failure().and_then(|f| stall(f, client)))
        .collect();
    let (what, after) = stalls.first().copied().flatten()?;
    if stalls.len() != after || stalls.iter().any(|s| s.map(|(w, _)| w) != Some(what)) {
        return None;
    }
    let what = if after == 1 {
        format!(
            "{what} within {} s; the rest were not run",
            options.start_timeout.as_secs_f32()
        )
    } else {
        format!("{what} in {after} conversations; the rest were not run")
    };
    Some(Trouble {
        what,
        stopped_early: true,
    })
}

/// "exit code 2: python3: can't open file ..." from how a program ended and its stderr.
fn how_it_ended(exit: &str, stderr_tail: &[String]) -> String {
    match hints::why_it_stopped(stderr_tail) {
        Some(why) => format!("({exit}): {why}"),
        None => format!("({exit}), printing nothing on stderr"),
    }
}

fn check_server(
    step: &CheckStep,
    scenarios: &[Scenario],
    command: &[String],
    options: &CheckOptions,
) -> Result<(Vec<ScenarioResult>, Option<Trouble>), CannotRun> {
    let run_options = run_options(options);
    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut trouble: Option<Trouble> = None;
    for scenario in scenarios {
        let outcome = if trouble.is_some() {
            Outcome::NotRun { why: STOPPED.into() }
        } else if past_deadline(options) {
            Outcome::NotRun {
                why: TIME_IS_UP.to_string(),
            }
        } else {
            // A fresh copy of the program for every scenario: each one starts from an empty
            // store and from nobody connected.
            let scratch = Scratch::new()?;
            let mut command = command.to_vec();
            command.extend(added_arguments(step.name, &scratch.0));
            let mut tries = 0;
            let udp = scenario.uses_datagrams();
            let (port, started) = loop {
                let port = free_port(udp)?;
                let readiness = if udp {
                    Readiness::UdpBound(port)
                } else {
                    Readiness::PortListening(port)
                };
                let started = ServerProcess::start(
                    command_for(&command, port, options),
                    readiness,
                    options.start_timeout,
                );
                tries += 1;
                match started {
                    Err(err) if tries < 3 && port_was_taken(&err) => continue,
                    started => break (port, started),
                }
            };
            match started {
                Err(err) if err.exit.is_none() && err.message.starts_with("could not start") => {
                    return Err(CannotRun(err.message));
                }
                Err(err) => {
                    let (what, hint) = did_not_listen(&err, udp, options);
                    trouble = Some(Trouble {
                        what,
                        stopped_early: false,
                    });
                    let failure = Box::new(Failure {
                        scenario: scenario.name,
                        about: scenario.about,
                        step_number: 0,
                        kind: FailureKind::ConnectFailed,
                        expected: if udp {
                            format!("your program to bind a UDP socket to port {port} (given as {{port}})")
                        } else {
                            format!("your program to listen on port {port} (given as {{port}})")
                        },
                        got: None,
                        detail: err.message,
                        mismatch: None,
                        transcript: Vec::new(),
                        server_exit: err.exit,
                        stderr_tail: err.stderr_tail,
                        missing_newline: false,
                        timed_out: false,
                        program_threads: None,
                    });
                    Outcome::failed_with(failure, hint)
                }
                Ok(mut server) => match run_scenario(&mut server, scenario, &run_options) {
                    Ok(transcript) => Outcome::Passed {
                        notes: transcript.notes,
                    },
                    Err(failure) => {
                        Outcome::failed(failure, scenario_advice(scenario.hint, scenario.see), &step.hints)
                    }
                },
            }
        };
        results.push(ScenarioResult {
            name: scenario.name,
            about: scenario.about,
            outcome,
        });
        if trouble.is_none() {
            let so_far: Vec<&Outcome> = results.iter().map(|r| &r.outcome).collect();
            trouble = stop_early(&so_far, false, options);
        }
    }
    Ok((results, trouble))
}

/// What to say about a server that did not start listening: for the step, and as the hint.
fn did_not_listen(err: &StartError, udp: bool, options: &CheckOptions) -> (String, Hint) {
    match &err.exit {
        Some(exit) => (
            format!("exited before listening {}", how_it_ended(exit, &err.stderr_tail)),
            hints::exited_before_listening(exit),
        ),
        None if udp => (
            format!(
                "never bound a UDP socket to the port it was given within {} s",
                options.start_timeout.as_secs_f32()
            ),
            Hint {
                text: hints::DID_NOT_BIND_UDP.to_string(),
                see: None,
            },
        ),
        None => (
            format!(
                "never listened on the port it was given within {} s",
                options.start_timeout.as_secs_f32()
            ),
            Hint {
                text: hints::DID_NOT_LISTEN.to_string(),
                see: None,
            },
        ),
    }
}

fn check_client(
    step: &CheckStep,
    scenarios: &[ClientScenario],
    command: &[String],
    options: &CheckOptions,
) -> Result<(Vec<ScenarioResult>, Option<Trouble>), CannotRun> {
    let run_options = run_options(options);
    let mut command = command.to_vec();
    if let Some(dir) = &options.dir {
        // Client programs are started by the harness; run them from the student's folder.
        command = ["sh", "-c", r#"cd "$0" && exec "$@""#]
            .into_iter()
            .map(String::from)
            .chain([dir.display().to_string()])
            .chain(command)
            .collect();
    }
    // The scenarios where a server listens run first: whether the client ever connects decides
    // whether a refused connection can be judged at all.
    let mut order: Vec<usize> = (0..scenarios.len()).collect();
    order.sort_by_key(|&i| !scenarios[i].listen);
    let mut done: Vec<(usize, Outcome)> = Vec::new();
    let mut trouble: Option<Trouble> = None;
    for index in order {
        let scenario = &scenarios[index];
        let outcome = if trouble.is_some() {
            Outcome::NotRun { why: STOPPED.into() }
        } else if past_deadline(options) {
            Outcome::NotRun {
                why: TIME_IS_UP.to_string(),
            }
        } else if let (false, Some(never)) = (scenario.listen, never_connected(&done, scenarios)) {
            // A client that exits before connecting also exits non-zero when nobody listens:
            // that proves nothing, and earns nothing.
            trouble = Some(never);
            Outcome::NotRun {
                why: "your client never connected where a server listened, so a refused connection \
                      proves nothing"
                    .into(),
            }
        } else {
            match run_client_scenario(&command, scenario, &run_options) {
                Ok(run) => Outcome::Passed { notes: run.notes },
                Err(failure) if failure.step_number == 0 && failure.expected.contains("to start") => {
                    return Err(CannotRun(format!(
                        "could not start {:?}: {}",
                        command[0], failure.detail
                    )));
                }
                Err(failure) => {
                    Outcome::failed(failure, scenario_advice(scenario.hint, scenario.see), &step.hints)
                }
            }
        };
        done.push((index, outcome));
        if trouble.is_none() {
            let so_far: Vec<&Outcome> = done.iter().map(|(_, outcome)| outcome).collect();
            trouble = stop_early(&so_far, true, options);
        }
    }
    if trouble.is_none() && scenarios.iter().all(|s| s.listen) {
        trouble = never_connected(&done, scenarios);
    }
    done.sort_by_key(|(index, _)| *index);
    let results = done
        .into_iter()
        .map(|(index, outcome)| ScenarioResult {
            name: scenarios[index].name,
            about: scenarios[index].about,
            outcome,
        })
        .collect();
    Ok((results, trouble))
}

/// If the client exited without connecting in every scenario run so far where a server
/// listened (and there was at least one): what to say about it.
fn never_connected(done: &[(usize, Outcome)], scenarios: &[ClientScenario]) -> Option<Trouble> {
    let mut exits = done
        .iter()
        .filter(|(index, _)| scenarios[*index].listen)
        .map(|(_, outcome)| match outcome.failure() {
            Some(f) if f.kind == FailureKind::DidNotConnect && !f.timed_out => {
                f.server_exit.as_ref().map(|exit| (exit, &f.stderr_tail))
            }
            _ => None,
        })
        .peekable();
    exits.peek()?;
    let all: Option<Vec<_>> = exits.collect();
    let (exit, stderr_tail) = all?.into_iter().next()?;
    let what = if exit == "exit code 0" {
        "exited without connecting to the port it was given (exit code 0), in every conversation".to_string()
    } else {
        format!("exited before connecting {}", how_it_ended(exit, stderr_tail))
    };
    Some(Trouble {
        what,
        stopped_early: false,
    })
}
