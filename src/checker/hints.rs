//! From a failure to the mistake that most likely caused it.
//!
//! The order matters: a crash explains everything after it; a missing newline is certain when
//! adding one would have passed; a connection closed early is unmistakable; otherwise the
//! scenario knows what it tests and says so in its own hint.

use crate::harness::run::{Failure, FailureKind};

/// For a server that never listened on the port it was given.
pub const DID_NOT_LISTEN: &str = "your program must listen on the port the checker gives it: put {port} in \
     the command where your program reads its port, and bind to 127.0.0.1 (or 0.0.0.0) on that port";

/// The hint for `failure`, given the failing scenario's own hint.
pub fn hint_for(failure: &Failure, scenario_hint: Option<&str>) -> String {
    if let Some(exit) = &failure.server_exit {
        let crashed = !exit.ends_with("exit code 0");
        if crashed && failure.kind != FailureKind::ExitMismatch && failure.kind != FailureKind::WrongOutput {
            return format!(
                "your program crashed ({exit}) during the conversation; its stderr (below) says where. \
                 Bad input from the network must get an error reply, never end the program"
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
            let advice =
                scenario_hint.unwrap_or("a server keeps running and goes back to accept the next client");
            return format!("your program exited ({exit}) while a client still expected an answer: {advice}");
        }
    }
    if failure.missing_newline {
        return "what your program sent has no newline at the end: the other side reads whole lines, so end \
                every line you send with \\n (and flush, if your output is buffered)"
            .to_string();
    }
    match failure.kind {
        // Closed after an answer: seen as end of stream, or as a reset when our next request
        // reached the already closed socket first.
        FailureKind::ClosedEarly | FailureKind::ConnectionBroken
            if failure.transcript.iter().any(|l| l.contains(" < ")) =>
        {
            return "your program closed the connection after answering: keep the connection open and keep \
                    reading commands until the client closes it (read returns 0)"
                .to_string();
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
