//! Scenarios for an echo server (lesson 01): whatever a client sends comes back after `Echo: `;
//! and for an echo client (lesson 02), played against a scripted fake server.
//!
//! Lesson 01's server adds the prefix once per `read`, not per message. Each scenario therefore
//! waits for a reply before sending more, and keeps every write far below 1024 bytes, the read
//! buffer of lesson 01 and of the `recv(1024)` every tutorial uses, so one write arrives as one
//! read. That is a detail the step fixes (its description says so); lesson 04 shows what happens
//! otherwise.
//!
//! Lesson 01 serves one client and exits when it leaves. A server that goes back to `accept`
//! instead (the chapter's exercise 2) is as correct: it passes with a note, once it has served a
//! second client.

use crate::harness::{ClientScenario, ExitExpect, Expect, Path, Scenario};

/// The bytes an echo server sends back for `message`.
pub fn echo_of(message: &[u8]) -> Vec<u8> {
    [b"Echo: ", message].concat()
}

/// The note for a server that serves the next client instead of exiting.
pub const NOTE_SERVES_THE_NEXT_CLIENT: &str = "your server keeps running after its client left, and serves \
     the next one (the reference serves one client, then exits)";

/// The end of every scenario: once its client has gone, the server exits with code 0, or goes
/// on serving, which a second client checks.
fn exits_or_serves_the_next_client(scenario: Scenario) -> Scenario {
    scenario.either(
        Path::reference(|then| then.server_exits(Some(0))),
        [Path::accepted(NOTE_SERVES_THE_NEXT_CLIENT, |then| {
            then.server_keeps_running()
                .connect("c2")
                .send("c2", "still there?\n")
                .expect_bytes("c2", echo_of(b"still there?\n"))
                .close("c2")
        })],
    )
}

/// One client sends one line and reads the echo; the server exits when the client leaves.
pub fn greeting() -> Scenario {
    let scenario = Scenario::new(
        "greeting",
        "one client sends a greeting and gets it back with the prefix",
    )
    .hint("answer each read with \"Echo: \" followed by exactly the bytes you read, in one write")
    .see("01-echo-server.md#run-it")
    .connect("c1")
    .send("c1", "Hello, world!\n")
    .expect_bytes("c1", echo_of(b"Hello, world!\n"))
    .close("c1");
    exits_or_serves_the_next_client(scenario)
}

/// Every byte value, 0 to 255: an echo server must not treat the data as text.
pub fn all_byte_values() -> Scenario {
    let every_byte: Vec<u8> = (0..=255).collect();
    let scenario = Scenario::new(
        "all-byte-values",
        "the 256 byte values, NUL and invalid UTF-8 included, come back unchanged",
    )
    .hint("treat what you receive as bytes: do not decode it as text, strip it, or stop at a NUL byte")
    .see("common-mistakes.md#bytes-are-not-text")
    .connect("c1")
    .send("c1", &every_byte)
    .expect_bytes("c1", echo_of(&every_byte))
    .close("c1");
    exits_or_serves_the_next_client(scenario)
}

/// Three messages, each waiting for its reply before the next one is sent.
pub fn three_messages() -> Scenario {
    let mut scenario = Scenario::new(
        "three-messages",
        "a client sends three messages, waiting for each reply",
    )
    .hint("keep reading in a loop until read returns 0; one read is not the whole conversation")
    .see("01-echo-server.md#run-it")
    .connect("c1");
    for message in ["one\n", "two\n", "three\n"] {
        scenario = scenario
            .send("c1", message)
            .expect_bytes("c1", echo_of(message.as_bytes()));
    }
    exits_or_serves_the_next_client(scenario.close("c1"))
}

/// The client says "no more data" with a half-close and still gets its reply and a clean close.
pub fn half_close() -> Scenario {
    let scenario = Scenario::new(
        "half-close",
        "the client shuts down its write half; the server still answers, then closes",
    )
    .hint("when read returns 0 the client has finished sending: answer what you have read, then close the connection")
    .see("common-mistakes.md#nc-and-the-end-of-its-input")
    .connect("c1")
    .send("c1", "last words\n")
    .shutdown_write("c1")
    .expect_bytes("c1", echo_of(b"last words\n"))
    .expect_closed("c1");
    exits_or_serves_the_next_client(scenario)
}

/// All echo server scenarios, in the order the book tells them.
pub fn all() -> Vec<Scenario> {
    vec![greeting(), all_byte_values(), three_messages(), half_close()]
}

// Scenarios for an echo client (lesson 02), played against a scripted fake server.

/// The client sends its message; the fake server echoes it and, like lesson 01, closes only
/// once the client has ended its stream (a half-close or a close); the client prints the echo.
/// A client that waits for the server to close before it ends its own stream never gets there.
pub fn client_round_trip() -> ClientScenario {
    ClientScenario::new(
        "round-trip",
        "the client sends its message, ends its stream, and prints the echo it gets back",
    )
    .hint("send the message given on the command line, then read the reply and print it")
    .see("02-echo-client.md#seeing-exactly-what-your-client-sends")
    .args(&["hello checker"])
    .receive_bytes("hello checker")
    .reply(echo_of(b"hello checker"))
    .expect_end_of_input()
    .close()
    .exits(ExitExpect::Code(0))
    .stdout(Expect::contains("Echo: hello checker"))
}

/// Nobody listens: the client must say so clearly and exit non-zero, not crash.
pub fn client_refused() -> ClientScenario {
    ClientScenario::new(
        "connection-refused",
        "no server is running: the client reports it in a clear line and exits non-zero",
    )
    .args(&["anyone there?"])
    .hint("catch the connection error and print one line saying the server is not running, then exit with a non-zero code")
    .see("common-mistakes.md#nobody-is-listening")
    .nobody_listening()
    .exits(ExitExpect::Failure)
}

/// All echo client scenarios.
pub fn client_all() -> Vec<ClientScenario> {
    vec![client_round_trip(), client_refused()]
}
