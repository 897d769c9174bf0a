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

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::client_scenario::{ClientScenario, run_client_scenario};
use crate::harness::process::{Readiness, ServerProcess};
use crate::harness::run::{Failure, FailureKind, RunOptions, run_scenario};
use crate::harness::scenario::Scenario;
use crate::scenarios;

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
            example: "python3 echo_server.py {port}",
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
            expects: "sends its arguments as one command line ending in \\n, prints the reply line, exits 0 (OK or a \
                      value) or 1 (ERROR)",
            example: "python3 kv_client.py --port {port}",
            kind: StepKind::Client(scenarios::kv::client_all),
            hints: hints::KV_CLIENT,
        },
        CheckStep {
            name: "concurrent-kv-server",
            lessons: &["07_kv_server_threads", "08_kv_server_events"],
            expects: "the kv-server protocol for many clients at once: neither an idle client nor one that reads none of its replies holds up anybody",
            example: "python3 kv_server_threads.py --port {port}",
            kind: StepKind::Server(scenarios::concurrency::kv_server_all),
            hints: hints::KV_SERVER,
        },
    ]
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
    /// How long a server program gets to start listening.
    pub start_timeout: Duration,
    /// Run only the scenarios whose name contains this.
    pub only: Option<String>,
    /// Run the program in this folder.
    pub dir: Option<PathBuf>,
    /// Scenarios not started by then are reported as not run.
    pub deadline: Option<Instant>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            read_timeout: Duration::from_secs(2),
            start_timeout: Duration::from_secs(10),
            only: None,
            dir: None,
            deadline: None,
        }
    }
}

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
        hint: String,
    },
    NotRun {
        why: String,
    },
}

impl Outcome {
    /// A failure, with the hint that fits it best (see [`hints::hint_for`]).
    fn failed(failure: Box<Failure>, scenario_hint: Option<&str>, step_hints: &hints::StepHints) -> Outcome {
        let hint = hints::hint_for(&failure, scenario_hint, step_hints);
        Outcome::Failed { failure, hint }
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
}

#[derive(Debug)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub about: &'static str,
    pub outcome: Outcome,
}

/// One step's results.
#[derive(Debug)]
pub struct StepReport {
    pub step: &'static str,
    pub command: Vec<String>,
    pub results: Vec<ScenarioResult>,
    pub elapsed: Duration,
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

    /// The program never got as far as listening (the first scenario failed before its first step).
    pub fn never_started(&self) -> bool {
        matches!(self.results.first(), Some(ScenarioResult { outcome: Outcome::Failed { failure, .. }, .. }) if failure.step_number == 0)
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
    let results = match step.kind {
        StepKind::Server(all) => check_server(step, &select(all(), |s| s.name, options), command, options)?,
        StepKind::Client(all) => check_client(step, &select(all(), |s| s.name, options), command, options)?,
    };
    Ok(StepReport {
        step: step.name,
        command: command.to_vec(),
        results,
        elapsed: started.elapsed(),
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

fn free_port() -> Result<u16, CannotRun> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| CannotRun(format!("could not find a free port: {err}")))
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

fn check_server(
    step: &CheckStep,
    scenarios: &[Scenario],
    command: &[String],
    options: &CheckOptions,
) -> Result<Vec<ScenarioResult>, CannotRun> {
    let run_options = RunOptions {
        read_timeout: options.read_timeout,
        ..RunOptions::learner()
    };
    let mut results = Vec::new();
    let mut never_started: Option<String> = None;
    for scenario in scenarios {
        let outcome = if let Some(why) = &never_started {
            Outcome::NotRun { why: why.clone() }
        } else if past_deadline(options) {
            Outcome::NotRun {
                why: TIME_IS_UP.to_string(),
            }
        } else {
            // A fresh copy of the program for every scenario: each one starts from an empty
            // store and from nobody connected.
            let port = free_port()?;
            match ServerProcess::start(
                command_for(command, port, options),
                Readiness::PortListening(port),
                options.start_timeout,
            ) {
                Err(err) if err.message.starts_with("could not start") => return Err(CannotRun(err.message)),
                Err(err) => {
                    never_started =
                        Some("the program did not start listening (see the first failure)".into());
                    let failure = Box::new(Failure {
                        scenario: scenario.name,
                        about: scenario.about,
                        step_number: 0,
                        kind: FailureKind::ConnectFailed,
                        expected: format!("your program to listen on port {port} (given as {{port}})"),
                        got: None,
                        detail: err.message,
                        mismatch: None,
                        transcript: Vec::new(),
                        server_exit: None,
                        stderr_tail: err.stderr_tail,
                        missing_newline: false,
                    });
                    Outcome::failed(failure, Some(hints::DID_NOT_LISTEN), &step.hints)
                }
                Ok(mut server) => match run_scenario(&mut server, scenario, &run_options) {
                    Ok(transcript) => Outcome::Passed {
                        notes: transcript.notes,
                    },
                    Err(failure) => Outcome::failed(failure, scenario.hint, &step.hints),
                },
            }
        };
        results.push(ScenarioResult {
            name: scenario.name,
            about: scenario.about,
            outcome,
        });
    }
    Ok(results)
}

fn check_client(
    step: &CheckStep,
    scenarios: &[ClientScenario],
    command: &[String],
    options: &CheckOptions,
) -> Result<Vec<ScenarioResult>, CannotRun> {
    let run_options = RunOptions {
        read_timeout: options.read_timeout,
        ..RunOptions::learner()
    };
    let mut results = Vec::new();
    for scenario in scenarios {
        let outcome = if past_deadline(options) {
            Outcome::NotRun {
                why: TIME_IS_UP.to_string(),
            }
        } else {
            let mut command = command.to_vec();
            if let Some(dir) = &options.dir {
                // Client programs are started by the harness; run them from the student's folder.
                command = vec![
                    "sh".into(),
                    "-c".into(),
                    r#"cd "$0" && exec "$@""#.into(),
                    dir.display().to_string(),
                ]
                .into_iter()
                .chain(command)
                .collect();
            }
            match run_client_scenario(&command, scenario, &run_options) {
                Ok(run) => Outcome::Passed { notes: run.notes },
                Err(failure) if failure.step_number == 0 && failure.expected.contains("to start") => {
                    return Err(CannotRun(format!(
                        "could not start {:?}: {}",
                        command[0], failure.detail
                    )));
                }
                Err(failure) => Outcome::failed(failure, scenario.hint, &step.hints),
            }
        };
        results.push(ScenarioResult {
            name: scenario.name,
            about: scenario.about,
            outcome,
        });
    }
    Ok(results)
}
