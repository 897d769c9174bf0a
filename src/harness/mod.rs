//! The transcript harness: run a server program, talk to it over real loopback sockets as a
//! scenario says, and write down the conversation.
//!
//! It knows nothing about our lessons' internals or about snapshot testing, so the same code
//! checks a learner's program written in any language.
//!
//! # Layout
//! - [`process`]: start a server, wait until it is ready, collect its output, kill it on drop.
//! - [`client`]: a client connection whose every read has a deadline.
//! - [`scenario`]: scenarios as data ([`Scenario`], [`Step`], [`Expect`]): stream steps for TCP,
//!   datagram steps for UDP (`c1 >> "..."` sent, `c1 << "..."` received).
//! - [`run`]: run a scenario, get a [`Transcript`] or a [`Failure`] that explains itself.
//! - [`client_scenario`]: the other way round: a scripted fake server checks a client program.

pub mod client;
pub mod client_scenario;
pub mod process;
pub mod run;
pub mod scenario;

use std::process::Command;
use std::time::Duration;

pub use client::Connection;
pub use client_scenario::{ClientScenario, ExitExpect, ServerStep, run_client_scenario};
pub use process::{Readiness, ServerProcess, StartError};
pub use run::{Failure, FailureKind, RunOptions, Transcript, render, run_scenario, stable_tokens};
pub use scenario::{Alternative, Client, Expect, Observes, Path, Read, Scenario, Step};

/// How long a server gets to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts one of our lesson servers (`program` is the binary's path) with `args` and `--port 0`,
/// waiting for its `listening on` line.
pub fn start_lesson(program: &str, args: &[&str]) -> Result<ServerProcess, StartError> {
    let mut command = Command::new(program);
    command.args(args).args(["--port", "0"]);
    ServerProcess::start(command, Readiness::ListeningLine, START_TIMEOUT)
}

/// Runs `scenario` against a fresh copy of a lesson server and returns the rendered transcript
/// with the server's output. Panics with the full failure report if a step fails: this is what
/// the lesson tests call.
pub fn run_lesson(program: &str, args: &[&str], scenario: &Scenario) -> String {
    let mut server = start_lesson(program, args).unwrap_or_else(|err| panic!("{err}"));
    let transcript = match run_scenario(&mut server, scenario, &RunOptions::reference()) {
        Ok(transcript) => transcript,
        Err(failure) => panic!("{failure}"),
    };
    let addr = server.addr();
    let output = server.finish();
    render(scenario, &transcript, addr, &output)
}

/// A client program's run against one of our servers, told for a snapshot: the command line as
/// shown, what the client printed, then everything the server printed (with stable tokens). It
/// stops the server, so call it once the client has finished.
pub fn client_story(shown_command: &str, client_stdout: &str, server: ServerProcess) -> String {
    format!(
        "$ {shown_command}\n{client_stdout}{}",
        server_output_story(server)
    )
}

/// The end of a client's story: `--- server output ---`, then every line the server printed,
/// with stable tokens. It stops the server.
pub fn server_output_story(server: ServerProcess) -> String {
    let addr = server.addr();
    let mut story = "--- server output ---\n".to_string();
    for line in server.finish() {
        story.push_str(&stable_tokens(&line.text, addr, &[]));
        story.push('\n');
    }
    story
}
