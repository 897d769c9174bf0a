//! From a failure to the mistake that most likely caused it, and to the book's section that
//! shows that mistake by hand.
//!
//! The order matters: a program that never got going explains everything; a crash explains
//! everything after it; a missing newline is certain when adding one would have passed; a
//! connection closed early is unmistakable; otherwise the scenario knows what it tests and says
//! so in its own hint.
//!
//! The first three depend on what the program is: a time server closes after one answer on
//! purpose, a key-value server must not. So every step says them in its own words
//! ([`StepHints`]), and no step gets another step's advice.
//!
//! Some mistakes show in several scenarios at once, or only in the pattern of them (one `recv`
//! taken as one command fails pipelining, one-byte writes and the line cap together). [`causes`]
//! finds those patterns in a step's results, so that the report can name the cause once.

use super::{Outcome, ScenarioResult};
use crate::harness::run::{EXPECTED_A_DATAGRAM, Failure, FailureKind};

/// Where `mdbook build book` writes the book, from the repository's root. Hints link into it:
/// `book/book/html/05-kv-server.html#a-missing-newline`.
pub const BUILT_BOOK: &str = "book/book/html";

/// A link to a book section as the learner opens it: `05-kv-server.md#a-missing-newlin` becomes
/// `book/book/html/05-kv-server.html#a-missing-newline`.
pub fn in_built_book(chapter_and_heading: &str) -> String {
    let (chapter, heading) = chapter_and_heading
        .split_once('#')
        .unwrap_or((chapter_and_heading, ""));
    let page = chapter.strip_suffix(".md").unwrap_or(chapter);
    if heading.is_empty() {
        format!("{BUILT_BOOK}/{page}.html")
    } else {
        format!("{BUILT_BOOK}/{page}.html#{heading}")
    }
}

/// Advice for a situation, and the book's section that reproduces it by hand, if there is one
/// (`chapter.md#heading`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    pub text: &'static str,
    pub see: Option<&'static str>,
}

const fn advice(text: &'static str) -> Advice {
    Advice { text, see: None }
}

const fn advice_and_see(text: &'static str, see: &'static str) -> Advice {
    Advice { text, see: Some(see) }
}

/// The hint a failure gets: what to do, and where the book shows the mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub text: String,
    /// `chapter.md#heading` (see [`in_built_book`]).
    pub see: Option<&'static str>,
}

impl Hint {
    fn new(text: impl Into<String>, see: Option<&'static str>) -> Hint {
        Hint {
            text: text.into(),
            see,
        }
    }
}

impl From<Advice> for Hint {
    fn from(advice: Advice) -> Hint {
        Hint::new(advice.text, advice.see)
    }
}

/// For a server that never listened on the port it was given.
pub const DID_NOT_LISTEN: &str = "your program must listen on the port the checker gives it: put {port} in \
     the command where your program reads its port (the examples use --port {port}), and bind to \
     127.0.0.1 (or 0.0.0.0) on that port";

/// For a UDP server that never bound a UDP socket to the port it was given.
pub const DID_NOT_BIND_UDP: &str = "your program must bind a UDP socket (SOCK_DGRAM, not a TCP one) to the \
     port the checker gives it: put {port} in the command where your program reads its port (the \
     examples use --port {port}), and bind to 127.0.0.1 (or 0.0.0.0) on that port";

/// What to tell a learner in the situations every step shares, in the step's own words.
#[derive(Debug, Clone, Copy)]
pub struct StepHints {
    /// After "your program crashed (...) during the conversation; its stderr (shown above) says where.":
    /// what a program of this step must do instead of crashing.
    pub crashed: Advice,
    /// The program exited (exit code 0) while a client still expected an answer, and the
    /// scenario has no hint of its own.
    pub exited_early: Advice,
    /// The program closed a connection after an answer, while the scenario had more to say.
    pub closed_after_answer: Advice,
    /// What it sent lacks only a final `\n`.
    pub missing_newline: Advice,
    /// A client kept its side of the connection open where the server waits for its end of
    /// stream (never said for a server).
    pub no_end_of_stream: Advice,
}

const LINE_WITHOUT_NEWLINE: Advice = advice_and_see(
    "what your program sent has no newline at the end: the other side reads whole lines, so end \
     every line you send with \\n (and flush, if your output is buffered)",
    "05-kv-server.md#a-missing-newline",
);

const NOT_A_CLIENT: Advice = advice("a server does not need to end its stream here");

pub const ECHO_SERVER: StepHints = StepHints {
    crashed: advice_and_see(
        "whatever a client sends, an echo server must not crash: treat what you read as bytes, and \
         never decode it",
        "common-mistakes.md#bytes-are-not-text",
    ),
    exited_early: advice(
        "answer every read, and end the conversation only when read returns 0 (the client has closed)",
    ),
    closed_after_answer: advice(
        "your program closed the connection after answering: keep reading in a loop and answer every \
         read, until read returns 0 (the client has closed)",
    ),
    missing_newline: advice(
        "the reply lacks the \\n at the end of what the client sent: send back exactly the bytes you \
         read, without stripping them",
    ),
    no_end_of_stream: NOT_A_CLIENT,
};

pub const ECHO_CLIENT: StepHints = StepHints {
    crashed: advice_and_see(
        "a client must not crash: catch the error, print one line on stderr that says what went \
         wrong, and exit with a non-zero code",
        "common-mistakes.md#nobody-is-listening",
    ),
    exited_early: advice("send the message, then read the reply before you exit"),
    closed_after_answer: advice("send the message, then read the reply before you close the connection"),
    missing_newline: advice("compare what your client sent with what was expected, byte by byte"),
    no_end_of_stream: advice_and_see(
        "after sending your message, shut down your sending side (shutdown(SHUT_WR) in Python and C, \
         shutdown(Shutdown::Write) in Rust), then read the reply: an echo server like lesson 01 \
         answers, then waits for the end of your stream before it closes, so a client that waits \
         for the server to close first waits for ever",
        "02-echo-client.md#forgetting-the-half-close",
    ),
};

pub const TIME_SERVER: StepHints = StepHints {
    crashed: advice(
        "a time server must survive every client: a client that is gone before the time is sent ends \
         that connection, not the program",
    ),
    exited_early: advice(
        "after sending the time and closing the connection, go back to accept() and wait for the next client",
    ),
    closed_after_answer: advice(
        "send the whole time, then close the connection normally (a close, not a reset)",
    ),
    missing_newline: advice(
        "send the time as one line: end it with \\n, or close the connection right after it",
    ),
    no_end_of_stream: NOT_A_CLIENT,
};

pub const FRAME_SERVER: StepHints = StepHints {
    crashed: advice_and_see(
        "a frame server must survive every header and every payload: check the length against the \
         1 MiB maximum before anything else, treat the payload as bytes, and end only that connection \
         when a frame is wrong",
        "04-length-prefix.md#a-hostile-header",
    ),
    exited_early: advice("a server keeps running: after one client, go back to accept() and serve the next"),
    closed_after_answer: advice(
        "your program closed the connection after one frame: keep reading frames until the client \
         ends its stream (read returns 0 where a header would begin)",
    ),
    missing_newline: advice(
        "a frame is its header and exactly its payload: send back the payload as it came, nothing \
         added or removed",
    ),
    no_end_of_stream: NOT_A_CLIENT,
};

/// A kv-server with an idle timeout: a connection closed after an answer was most likely cut by
/// a timer that did not start again when the client spoke.
pub const KV_SERVER_IDLE_TIMEOUT: StepHints = StepHints {
    closed_after_answer: advice_and_see(
        "your program closed a connection that was not idle: the idle time counts from the client's last \
         bytes, not from when it connected, so start the clock again after every read that returned data",
        "08-kv-server-events.md#exercises",
    ),
    ..KV_SERVER
};

pub const KV_SERVER: StepHints = StepHints {
    crashed: advice_and_see(
        "bad input from the network must get an error reply, never end the program",
        "05-kv-server.md#bytes-that-are-not-utf-8",
    ),
    exited_early: advice("a server keeps running and goes back to accept the next client"),
    closed_after_answer: advice(
        "your program closed the connection after answering: keep the connection open and keep reading \
         commands until the client closes it (read returns 0)",
    ),
    missing_newline: LINE_WITHOUT_NEWLINE,
    no_end_of_stream: NOT_A_CLIENT,
};

pub const UDP_ECHO_SERVER: StepHints = StepHints {
    crashed: advice_and_see(
        "whatever a datagram holds, a UDP echo server must not crash: treat it as bytes, never decode it, \
         and remember that a datagram may be empty",
        "10-udp-echo.md#an-empty-datagram-is-not-the-end",
    ),
    exited_early: advice_and_see(
        "a UDP server has no connection to end: keep receiving datagrams in a loop, and never exit \
         because one was empty",
        "10-udp-echo.md#an-empty-datagram-is-not-the-end",
    ),
    closed_after_answer: advice("a UDP server keeps receiving datagrams in a loop"),
    missing_newline: advice(
        "send back exactly the bytes of the datagram you received, without stripping or adding anything",
    ),
    no_end_of_stream: NOT_A_CLIENT,
};

pub const RESP_SERVER: StepHints = StepHints {
    crashed: advice_and_see(
        "bad input from the network must get an error reply (-ERR Protocol error: ...) and a closed \
         connection, never end the program: check every length before you use it",
        "13-resp-server.md#a-length-that-lies",
    ),
    exited_early: advice("a server keeps running and goes back to accept the next client"),
    closed_after_answer: advice(
        "your program closed the connection after answering: keep reading requests until the client \
         closes it (read returns 0) or sends QUIT",
    ),
    missing_newline: advice_and_see(
        "every RESP reply ends with \\r\\n, a bulk string too: $5\\r\\nhello\\r\\n (the length counts only \
         the 5 bytes between)",
        "13-resp-server.md#typed-replies",
    ),
    no_end_of_stream: NOT_A_CLIENT,
};

pub const KV_CLIENT: StepHints = StepHints {
    crashed: advice_and_see(
        "a client must not crash: catch the error, print one line on stderr that says what went \
         wrong, and exit with a non-zero code",
        "06-kv-client.md#nobody-is-listening",
    ),
    exited_early: advice("send the command line, then read the whole reply line before you exit"),
    closed_after_answer: advice("send the command line, then read the whole reply line before you close"),
    missing_newline: advice_and_see(
        "your client sent the command with no newline at the end: the server reads whole lines, and \
         waits for the \\n before it answers",
        "05-kv-server.md#a-missing-newline",
    ),
    no_end_of_stream: advice(
        "once you have the reply line, close the connection (or exit): the server waits for the end \
         of your stream before it lets go of the connection",
    ),
};

/// For a UDP server whose reply went elsewhere than to the sender of the request.
pub const REPLY_TO_THE_SENDER: Advice = advice_and_see(
    "send each reply to the address recvfrom returned with that datagram (sendto(reply, address)), \
     not to a fixed address or to the first client you heard from: UDP has no connection, so every \
     datagram says who sent it, and that is who gets the answer. Reply from the socket the request \
     came in on, so the reply comes from the address the client sent to",
    "10-udp-echo.md#replying-to-the-wrong-address",
);

/// For a UDP server whose reply came from another address than the one the client sent to.
pub const REPLY_FROM_THE_BOUND_SOCKET: Advice = advice_and_see(
    "send the reply from the socket that received the request (the one bound to the port you were \
     given), not from a new socket: a reply from another port is not the server's answer to the \
     client, which sent its datagram to your port (a connected client socket does not even receive it)",
    "10-udp-echo.md#replying-to-the-wrong-address",
);

/// For a UDP server from which no reply came back to the client that sent the request.
pub const NO_DATAGRAM_BACK: Advice = advice_and_see(
    "no reply came back to the address the datagram was sent from: send each reply with sendto to the \
     address recvfrom returned with that datagram (not to a fixed address), from the socket bound to the \
     port you were given, and send one reply for every datagram, the empty one included",
    "10-udp-echo.md#replying-to-the-wrong-address",
);

pub const UDP_KV_CLIENT: StepHints = StepHints {
    crashed: advice_and_see(
        "a client must not crash: when no reply comes, or a datagram is not what you expected, say \
         so on stderr and exit with a non-zero code",
        "11-udp-kv.md#loss",
    ),
    exited_early: advice("send the request, then wait for the reply that carries its id before you exit"),
    closed_after_answer: advice(
        "send the request, then wait for the reply that carries its id before you exit",
    ),
    missing_newline: advice_and_see(
        "a request is one datagram, `<id> <command>`; a final \\n is allowed but not needed",
        "datagram-format.md#requests",
    ),
    no_end_of_stream: advice("UDP has no stream to end: send datagrams, and exit when you have your answer"),
};

/// The hint for `failure`, given the failing scenario's own hint and link and the step's hints.
pub fn hint_for(failure: &Failure, scenario: Option<Advice>, step: &StepHints) -> Hint {
    if failure.kind == FailureKind::DidNotConnect {
        return client_did_not_connect(failure);
    }
    if let Some(exit) = &failure.server_exit {
        let crashed = !exit.ends_with("exit code 0");
        if crashed && failure.kind != FailureKind::ExitMismatch && failure.kind != FailureKind::WrongOutput {
            return Hint::new(
                format!(
                    "your program crashed ({exit}) during the conversation; its stderr (shown above) says where. {}",
                    capitalized(step.crashed.text)
                ),
                step.crashed.see,
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
            let advice = scenario.unwrap_or(step.exited_early);
            return Hint::new(
                format!(
                    "your program exited ({exit}) while a client still expected an answer: {}",
                    advice.text
                ),
                advice.see,
            );
        }
    }
    if failure.missing_newline {
        return step.missing_newline.into();
    }
    match failure.kind {
        FailureKind::NoEndOfStream => return step.no_end_of_stream.into(),
        // Closed after an answer: seen as end of stream, or as a reset when our next request
        // reached the already closed socket first.
        FailureKind::ClosedEarly | FailureKind::ConnectionBroken
            if failure.transcript.iter().any(|l| l.contains(" < ")) =>
        {
            return step.closed_after_answer.into();
        }
        FailureKind::ConnectFailed if failure.step_number > 1 => {
            return Hint::new(
                "a new client could not connect: after one client leaves, your server must go back to \
                 accept() and keep serving",
                None,
            );
        }
        _ => {}
    }
    if failure.kind == FailureKind::WrongPeer {
        return REPLY_TO_THE_SENDER.into();
    }
    if failure.kind == FailureKind::WrongSource {
        return REPLY_FROM_THE_BOUND_SOCKET.into();
    }
    if failure.kind == FailureKind::NoAnswer && failure.expected.starts_with(EXPECTED_A_DATAGRAM) {
        return NO_DATAGRAM_BACK.into();
    }
    if let Some(advice) = scenario {
        return advice.into();
    }
    let text = match failure.kind {
        FailureKind::NoAnswer => {
            "no answer in time: does your program send a reply for every request, and flush it if its \
             output is buffered?"
        }
        FailureKind::ClosedEarly => "the connection was closed before the answer came",
        FailureKind::ConnectionBroken => {
            "the connection was reset: the program closed its socket with data still unread, or it crashed"
        }
        FailureKind::ConnectFailed => DID_NOT_LISTEN,
        FailureKind::UnexpectedData => "your program sent bytes where it should have sent nothing",
        FailureKind::NotClosed => "your program should close the connection at this point",
        FailureKind::WrongBytes => {
            "compare expected and got byte by byte: the marker shows the first difference"
        }
        FailureKind::ExitMismatch => {
            "check how your program exits: exit code 0 on success, non-zero on an error"
        }
        FailureKind::WrongOutput => "check what your program prints",
        FailureKind::MissingLog | FailureKind::SendFailed => "see the conversation above",
        FailureKind::DidNotConnect
        | FailureKind::NoEndOfStream
        | FailureKind::WrongPeer
        | FailureKind::WrongSource => {
            unreachable!("answered above")
        }
    };
    Hint::new(text, None)
}

/// A client that did not connect to the fake server: it exited first, or never tried.
fn client_did_not_connect(failure: &Failure) -> Hint {
    match failure.server_exit.as_deref() {
        Some("exit code 0") => Hint::new(
            "your client exited (exit code 0) without connecting to the port it was given: take the \
             port from the command line (put {port} in your command, like --port {port}) and connect \
             to 127.0.0.1 on it",
            None,
        ),
        Some(exit) => Hint::new(
            format!(
                "your client exited ({exit}) before it connected, so nothing else could be checked: its \
                 stderr (shown above) says why. Run your command by hand, with a port number for {{port}}, \
                 and fix that first"
            ),
            None,
        ),
        None => Hint::new(
            "your client did not connect: it must connect to 127.0.0.1 on the port it is given (put \
             {port} in your command, like --port {port})",
            None,
        ),
    }
}

/// The hint for a server program that exited before it listened, with its exit status.
pub fn exited_before_listening(exit: &str) -> Hint {
    Hint::new(
        format!(
            "your program exited ({exit}) before it listened, so nothing else could be checked: its \
             stderr (shown above) says why. Run your command by hand, with a port number for {{port}}, and \
             fix that first"
        ),
        None,
    )
}

/// One cause behind one or more failures of a step, found in the pattern of its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// What the program does wrong, as the end of "your program ...": "takes what one read
    /// returns as one command".
    pub what: &'static str,
    /// What to do about it.
    pub hint: &'static str,
    /// The book's section that reproduces it by hand (`chapter.md#heading`).
    pub see: Option<&'static str>,
    /// The failed scenarios it explains, in the order they ran.
    pub scenarios: Vec<&'static str>,
}

impl Cause {
    pub fn hint(&self) -> Hint {
        Hint::new(self.hint, self.see)
    }
}

/// One `recv` taken as one command: pipelining, one-byte writes and the line cap fail together.
pub const ONE_READ_AS_ONE_COMMAND: (&str, &str, &str) = (
    "takes what one read returns as one command",
    "a read returns whatever has arrived: part of a line, or several lines. Keep what you read in a \
     buffer, answer every complete line in it (up to each \\n), and keep the rest for the next read",
    "05-kv-server.md#several-commands-in-one-read",
);

/// A server that serves one client at a time, checked for many.
pub const ONE_CLIENT_AT_A_TIME: (&str, &str, &str) = (
    "serves one client at a time: the second client waits until the first one leaves",
    "one client at a time → serve each connection on a thread of its own (lesson 07) or watch all of \
     them with an event loop (lesson 08)",
    "05-kv-server.md#a-second-client-waits",
);

/// An echo server whose reads are smaller than the checker's messages.
pub const SMALL_READS: (&str, &str, &str) = (
    "reads less than a whole message at a time (an \"Echo: \" appears inside a reply)",
    "your reads are smaller than the message; this step assumes reads of up to 1024 bytes, like the \
     seed's recv(1024), so that each message of the checker arrives in one read and gets one \"Echo: \"",
    "01-echo-server.md#one-read-is-not-one-message",
);

/// A server with threads that writes while it holds the store's lock.
pub const LOCK_HELD_WHILE_WRITING: (&str, &str, &str) = (
    "writes a reply while it holds the store's lock: the thread of the client that reads nothing waits \
     in that write, and every other thread waits for the lock",
    "release the lock before writing: take the lock, work out the reply, let the lock go (drop the \
     guard, leave the `with` block), then write the reply",
    "07-kv-server-threads.md#a-lock-held-too-long",
);

/// A single-threaded server (an event loop) that writes with a blocking write.
pub const BLOCKING_WRITE_IN_A_LOOP: (&str, &str, &str) = (
    "waits in a blocking write for the client that reads nothing, and serves nobody else meanwhile",
    "a client that does not read its replies must not hold up the others. In an event loop, write only \
     what the socket takes now (a non-blocking write), keep the rest for later, and serve the other \
     clients meanwhile",
    "08-kv-server-events.md#a-blocking-socket-in-the-loop",
);

/// The same, where we cannot tell threads from an event loop.
pub const HELD_UP_BY_A_CLIENT_THAT_READS_NOTHING: (&str, &str, &str) = (
    "stops serving everybody while one client reads none of its replies",
    "a client that does not read its replies must not hold up the others. With threads, do not hold \
     the store's lock while you write a reply; in an event loop, write only what the socket takes now \
     (a non-blocking write) and keep the rest for later",
    "07-kv-server-threads.md#a-client-that-reads-nothing",
);

/// Every `chapter.md#heading` the causes link to (the book's tests check that each exists).
pub fn cause_links() -> Vec<&'static str> {
    [
        ONE_READ_AS_ONE_COMMAND,
        ONE_CLIENT_AT_A_TIME,
        SMALL_READS,
        LOCK_HELD_WHILE_WRITING,
        BLOCKING_WRITE_IN_A_LOOP,
        HELD_UP_BY_A_CLIENT_THAT_READS_NOTHING,
    ]
    .iter()
    .map(|(_, _, see)| *see)
    .collect()
}

fn cause(parts: (&'static str, &'static str, &'static str), scenarios: Vec<&'static str>) -> Cause {
    let (what, hint, see) = parts;
    Cause {
        what,
        hint,
        see: Some(see),
        scenarios,
    }
}

/// The causes that explain failures of `step` better than each scenario's hint does, found in
/// the pattern of `results`. A scenario is explained by one cause at most.
pub fn causes(step: &str, results: &[ScenarioResult]) -> Vec<Cause> {
    let failure = |name: &str| {
        results.iter().find_map(|r| match &r.outcome {
            Outcome::Failed { failure, .. } if r.name == name => Some(failure.as_ref()),
            _ => None,
        })
    };
    let failed = |name: &str| failure(name).is_some();
    let passed = |name: &str| results.iter().any(|r| r.name == name && r.outcome.is_passed());
    // The client that got no answer while another one held the server.
    let second_client_unanswered = |name: &str| {
        failure(name).is_some_and(|f| {
            f.kind == FailureKind::NoAnswer
                && f.server_exit.is_none()
                && f.transcript.last().is_some_and(|line| line.starts_with("c2 >"))
        })
    };
    let mut found = Vec::new();
    let is_kv_server = step == "kv-server" || step == "concurrent-kv-server";
    if is_kv_server
        && passed("set-get-delete")
        && failed("pipelined-commands")
        && failed("command-in-one-byte-writes")
    {
        let scenarios = [
            "pipelined-commands",
            "command-in-one-byte-writes",
            "line-too-long",
        ]
        .into_iter()
        .filter(|name| failed(name))
        .collect();
        found.push(cause(ONE_READ_AS_ONE_COMMAND, scenarios));
    }
    if step == "concurrent-kv-server" {
        let one_at_a_time = second_client_unanswered("two-clients-interleaved")
            && second_client_unanswered("idle-client-does-not-block");
        if one_at_a_time && passed("set-get-delete") {
            let scenarios = [
                "two-clients-interleaved",
                "idle-client-does-not-block",
                "client-not-reading-does-not-block",
            ]
            .into_iter()
            .filter(|name| failed(name))
            .collect();
            found.push(cause(ONE_CLIENT_AT_A_TIME, scenarios));
        } else if let Some(f) = failure("client-not-reading-does-not-block")
            && second_client_unanswered("client-not-reading-does-not-block")
            && !one_at_a_time
        {
            let parts = match f.program_threads {
                Some(threads) if threads > 1 => LOCK_HELD_WHILE_WRITING,
                Some(_) => BLOCKING_WRITE_IN_A_LOOP,
                None => HELD_UP_BY_A_CLIENT_THAT_READS_NOTHING,
            };
            found.push(cause(parts, vec!["client-not-reading-does-not-block"]));
        }
    }
    if step == "echo-server" {
        let scenarios: Vec<&'static str> = results
            .iter()
            .filter(|r| r.outcome.failure().is_some_and(a_new_echo_begins_too_early))
            .map(|r| r.name)
            .collect();
        if !scenarios.is_empty() {
            found.push(cause(SMALL_READS, scenarios));
        }
    }
    found
}

/// Where an echo's bytes first differ from the expected ones, a new `Echo: ` begins (or the
/// start of one, cut off where the read ended): the server answered a piece of the message.
fn a_new_echo_begins_too_early(failure: &Failure) -> bool {
    const PREFIX: &[u8] = b"Echo: ";
    let (Some(got), Some(at)) = (
        &failure.got,
        failure.mismatch.as_ref().and_then(|m| m.first_difference),
    ) else {
        return false;
    };
    let rest = got.get(at..).unwrap_or_default();
    at > 0 && (rest.starts_with(PREFIX) || (rest.len() >= 3 && PREFIX.starts_with(rest)))
}

/// "Bad input ..." from "bad input ...": the step's text starts a sentence here.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The line of a program's stderr that says best why it stopped: where a Rust program panicked
/// (with the message on the next line), or else the last line (a Python traceback ends with the
/// exception, `python3: can't open file ...` is one line).
pub fn why_it_stopped(stderr_tail: &[String]) -> Option<String> {
    if let Some(at) = stderr_tail.iter().position(|l| l.contains("panicked at")) {
        let location = stderr_tail[at].trim_end_matches(':');
        return Some(match stderr_tail.get(at + 1) {
            Some(message) if !message.starts_with("note:") && message != "..." => {
                format!("{location}: {message}")
            }
            _ => location.to_string(),
        });
    }
    stderr_tail
        .iter()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_into_the_built_book() {
        assert_eq!(
            in_built_book("05-kv-server.md#a-missing-newline"),
            "book/book/html/05-kv-server.html#a-missing-newline"
        );
        assert_eq!(in_built_book("kv-protocol.md"), "book/book/html/kv-protocol.html");
    }

    #[test]
    fn the_line_that_says_why_a_program_stopped() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            why_it_stopped(&lines(&[
                "thread 'main' panicked at src/main.rs:3:5:",
                "boom",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            ])),
            Some("thread 'main' panicked at src/main.rs:3:5: boom".to_string())
        );
        assert_eq!(
            why_it_stopped(&lines(&[
                "python3: can't open file '/x/kv.py': [Errno 2] No such file or directory"
            ])),
            Some("python3: can't open file '/x/kv.py': [Errno 2] No such file or directory".to_string())
        );
        assert_eq!(why_it_stopped(&[]), None);
    }
}
