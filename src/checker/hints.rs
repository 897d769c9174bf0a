//! From a failure to the mistake that most likely caused it.
//!
//! The order matters: a crash explains everything after it; a missing newline is certain when
//! adding one would have passed; a connection closed early is unmistakable; otherwise the
//! scenario knows what it tests and says so in its own hint.
//!
//! The first three depend on what the program is: a time server closes after one answer on
//! purpose, a key-value server must not. So every step says them in its own words
//! ([`StepHints`]), and no step gets another step's advice.

use crate::harness::run::{Failure, FailureKind};

/// For a server that never listened on the port it was given.
pub const DID_NOT_LISTEN: &str = "your program must listen on the port the checker gives it: put {port} in \
     the command where your program reads its port, and bind to 127.0.0.1 (or 0.0.0.0) on that port";

/// What to tell a learner in the situations every step shares, in the step's own words.
#[derive(Debug, Clone, Copy)]
pub struct StepHints {
    /// After "your program crashed (...) during the conversation; its stderr (below) says where.":
    /// what a program of this step must do instead of crashing.
    pub crashed: &'static str,
    /// The program exited (exit code 0) while a client still expected an answer, and the
    /// scenario has no hint of its own.
    pub exited_early: &'static str,
    /// The program closed a connection after an answer, while the scenario had more to say.
    pub closed_after_answer: &'static str,
    /// What it sent lacks only a final `\n`.
    pub missing_newline: &'static str,
}

const LINE_WITHOUT_NEWLINE: &str = "what your program sent has no newline at the end: the other side reads \
     whole lines, so end every line you send with \\n (and flush, if your output is buffered)";

pub const ECHO_SERVER: StepHints = StepHints {
    crashed: "whatever a client sends, an echo server must not crash: treat what you read as bytes, and \
              never decode it",
    exited_early: "answer every read, and end the conversation only when read returns 0 (the client \
                   has closed)",
    closed_after_answer: "your program closed the connection after answering: keep reading in a loop and \
                          answer every read, until read returns 0 (the client has closed)",
    missing_newline: "the reply lacks the \\n at the end of what the client sent: send back exactly the \
                      bytes you read, without stripping them",
};

pub const ECHO_CLIENT: StepHints = StepHints {
    crashed: "a client must not crash: catch the error, print one line on stderr that says what went \
              wrong, and exit with a non-zero code",
    exited_early: "send the message, then read the reply before you exit",
    closed_after_answer: "send the message, then read the reply before you close the connection",
    missing_newline: "compare what your client sent with what was expected, byte by byte",
};

pub const TIME_SERVER: StepHints = StepHints {
    crashed: "a time server must survive every client: a client that is gone before the time is sent \
              ends that connection, not the program",
    exited_early: "after sending the time and closing the connection, go back to accept() and wait for \
                   the next client",
    closed_after_answer: "send the whole time, then close the connection normally (a close, not a reset)",
    missing_newline: "send the time as one line: end it with \\n, or close the connection right after it",
};

pub const FRAME_SERVER: StepHints = StepHints {
    crashed: "a frame server must survive every header and every payload: check the length against the \
              1 MiB maximum before anything else, treat the payload as bytes, and end only that \
              connection when a frame is wrong",
    exited_early: "a server keeps running: after one client, go back to accept() and serve the next",
    closed_after_answer: "your program closed the connection after one frame: keep reading frames until \
                          the client ends its stream (read returns 0 where a header would begin)",
    missing_newline: "a frame is its header and exactly its payload: send back the payload as it came, \
                      nothing added or removed",
};

pub const KV_SERVER: StepHints = StepHints {
    crashed: "bad input from the network must get an error reply, never end the program",
    exited_early: "a server keeps running and goes back to accept the next client",
    closed_after_answer: "your program closed the connection after answering: keep the connection open and \
                          keep reading commands until the client closes it (read returns 0)",
    missing_newline: LINE_WITHOUT_NEWLINE,
};

pub const KV_CLIENT: StepHints = StepHints {
    crashed: "a client must not crash: catch the error, print one line on stderr that says what went \
              wrong, and exit with a non-zero code",
    exited_early: "send the command line, then read the whole reply line before you exit",
    closed_after_answer: "send the command line, then read the whole reply line before you close",
    missing_newline: "your client sent the command with no newline at the end: the server reads whole \
                      lines, and waits for the \\n before it answers",
};

/// The hint for `failure`, given the failing scenario's own hint and the step's hints.
pub fn hint_for(failure: &Failure, scenario_hint: Option<&str>, step: &StepHints) -> String {
    if let Some(exit) = &failure.server_exit {
        let crashed = !exit.ends_with("exit code 0");
        if crashed && failure.kind != FailureKind::ExitMismatch && failure.kind != FailureKind::WrongOutput {
            return format!(
                "your program crashed ({exit}) during the conversation; its stderr (below) says where. {}",
                capitalized(step.crashed)
            );
        }
        let stopped_early = matches!(
            failure.kind,
            FailureKind::ClosedEarly
                | FailureKind::ConnectFailed
                | FailureKind::NoAnswer
                | FailureKind::ConnectionBroken
        );
        if !crashed && stopped_early {
            let advice = scenario_hint.unwrap_or(step.exited_early);
            return format!("your program exited ({exit}) while a client still expected an answer: {advice}");
        }
    }
    if failure.missing_newline {
        return step.missing_newline.to_string();
    }
    match failure.kind {
        // Closed after an answer: seen as end of stream, or as a reset when our next request
        // reached the already closed socket first.
        FailureKind::ClosedEarly | FailureKind::ConnectionBroken
            if failure.transcript.iter().any(|l| l.contains(" < ")) =>
        {
            return step.closed_after_answer.to_string();
        }
        FailureKind::ConnectFailed if failure.step_number > 1 => {
            return "a new client could not connect: after one client leaves, your server must go back to \
                    accept() and keep serving"
                .to_string();
        }
        _ => {}
    }
    if let Some(hint) = scenario_hint {
        return hint.to_string();
    }
    match failure.kind {
        FailureKind::NoAnswer => "no answer in time: does your program send a reply for every request, and \
                                  flush it if its output is buffered?"
            .to_string(),
        FailureKind::ClosedEarly => "the connection was closed before the answer came".to_string(),
        FailureKind::ConnectionBroken => "the connection was reset: the program closed its socket with data \
                                          still unread, or it crashed"
            .to_string(),
        FailureKind::ConnectFailed => DID_NOT_LISTEN.to_string(),
        FailureKind::UnexpectedData => {
            "your program sent bytes where it should have sent nothing".to_string()
        }
        FailureKind::NotClosed => "your program should close the connection at this point".to_string(),
        FailureKind::WrongBytes => {
            "compare expected and got byte by byte: the marker shows the first difference".to_string()
        }
        FailureKind::ExitMismatch => {
            "check how your program exits: exit code 0 on success, non-zero on an error".to_string()
        }
        FailureKind::WrongOutput => "check what your program prints".to_string(),
        FailureKind::DidNotConnect => {
            "your client must connect to the host and port it is given ({port})".to_string()
        }
        FailureKind::MissingLog | FailureKind::SendFailed => "see the conversation above".to_string(),
    }
}

/// "Bad input ..." from "bad input ...": the step's text starts a sentence here.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
