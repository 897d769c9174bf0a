//! Scenarios for a key-value server (lesson 05) and a key-value client (lesson 06), and a model of
//! the store for property tests. The protocol is described in [`crate::kv`].
//!
//! Server scenarios expect exact bytes for `OK` and for values, and [`Expect::ErrorLine`] for
//! errors: the reason after `ERROR` is for humans, and other implementations may word it
//! differently (or leave it out).
//!
//! Lesson 05 makes some choices that a correct server may make differently: it stores an empty
//! value, refuses bytes that are not UTF-8, takes command words in any letter case, answers an
//! error to `DELETE` of a missing key, and closes the connection after a line that is too long.
//! The scenarios accept the other choice too (refusing the empty value, storing the bytes as they
//! came, ...), with a note; what they fail is a bug: a crash, a hang, a connection closed too
//! early, a value lost or mangled. Exact replies that *are* the protocol (`OK`, a value as it was
//! stored, an error line for a missing key) stay strict.
//!
//! Our server logs its last line for a connection ("#2 disconnected") after the client's last
//! observable event, so scenarios that close a client end by waiting for that line
//! (`server_logs`): then a snapshot always holds the complete log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::escape::escape_bytes;
use crate::harness::client::ReadEnd;
use crate::harness::{ClientScenario, Connection, ExitExpect, Expect, Path, Scenario};
use crate::kv::MAX_LINE;
use crate::proxy::Weather;

/// The note for a server that refuses `SET key ` (an empty value).
pub const NOTE_EMPTY_VALUE_REFUSED: &str = "your server refuses an empty value with an error line (the \
     reference stores it, and GET returns an empty line)";
/// The note for a server that stores bytes that are not UTF-8.
pub const NOTE_BYTES_STORED_AS_THEY_CAME: &str = "your server stores a value that is not UTF-8 and returns it \
     byte for byte, as Redis does (the reference refuses it with an error line)";
/// The note for a server whose command words are case-sensitive.
pub const NOTE_CASE_SENSITIVE_COMMANDS: &str = "your server takes command words in upper case only, and \
     answers \"set\" with an error line (the reference takes any letter case, as Redis does)";
/// The note for a server that answers `OK` to `DELETE` of a missing key.
pub const NOTE_DELETE_OF_MISSING_KEY_OK: &str = "your server answers OK to DELETE of a key that does not \
     exist (the reference answers an error line)";
/// The note for a server that keeps the connection open after a line that is too long.
pub const NOTE_LONG_LINE_KEEPS_CONNECTION: &str = "your server keeps the connection open after its error for \
     a line that is too long (the reference closes it, since the rest of that line is still coming)";

/// Store, read back and delete a key; afterwards it is gone.
pub fn set_get_delete() -> Scenario {
    Scenario::new(
        "set-get-delete",
        "a key is stored, read back and deleted; after that it is gone",
    )
    .hint("answer every command with exactly one line ending in \\n: OK, the value, or ERROR and a reason")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "SET city Paris\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET city\n")
    .expect_line("c1", "Paris\n")
    .send("c1", "DELETE city\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET city\n")
    .read_line("c1", Expect::ErrorLine)
    .close("c1")
    .server_logs("#1 disconnected")
}

/// A second `SET` of the same key replaces the value.
pub fn overwrite() -> Scenario {
    Scenario::new("overwrite", "a second SET of the same key replaces its value")
        .hint("a SET of a key that exists replaces its value")
        .see("05-kv-server.md#run-it")
        .connect("c1")
        .send("c1", "SET color red\n")
        .expect_line("c1", "OK\n")
        .send("c1", "SET color blue\n")
        .expect_line("c1", "OK\n")
        .send("c1", "GET color\n")
        .expect_line("c1", "blue\n")
        .close("c1")
        .server_logs("#1 disconnected")
}

/// `GET` and `DELETE` of a key that was never stored are errors, and the connection stays usable.
pub fn missing_key() -> Scenario {
    Scenario::new(
        "missing-key",
        "GET and DELETE of a key that does not exist get an error line; the connection stays usable",
    )
.hint("a missing key must get an ERROR line (\"ERROR\" or \"ERROR <reason>\"), not an empty line or silence")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "GET nothing\n")
    .read_line("c1", Expect::ErrorLine)
    .send("c1", "DELETE nothing\n")
    .read_line(
        "c1",
        Expect::ErrorLine.also_accept(Expect::exact("OK\n"), NOTE_DELETE_OF_MISSING_KEY_OK),
    )
    .send("c1", "SET something 1\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// A value is the rest of the line: spaces inside it are kept.
pub fn value_with_spaces() -> Scenario {
    Scenario::new(
        "value-with-spaces",
        "the value of SET is the rest of the line, spaces included",
    )
.hint("the value is the rest of the line after the key and one space, spaces included: split the line at most twice")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "SET greeting hello,  big world\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET greeting\n")
    .expect_line("c1", "hello,  big world\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// `SET key ` (with the space) stores the empty value; `GET` answers with an empty line. A
/// server may refuse the empty value instead (with a note): then `GET` must find nothing.
pub fn empty_value() -> Scenario {
    Scenario::new(
        "empty-value",
        "SET with nothing after the key's space stores an empty value; GET replies with an empty line",
    )
    .hint(
        "\"SET key \" (a space, then nothing) stores the empty value, and GET then answers an empty line; \
         or refuse it with an ERROR line, and then GET must find nothing",
    )
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "SET nothing \n")
    .either(
        Path::reference(|then| {
            then.expect_line("c1", "OK\n")
                .send("c1", "GET nothing\n")
                .expect_line("c1", "\n")
        }),
        [Path::accepted(NOTE_EMPTY_VALUE_REFUSED, |then| {
            then.read_line("c1", Expect::ErrorLine)
                .send("c1", "GET nothing\n")
                .read_line("c1", Expect::ErrorLine)
        })],
    )
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Command words in any letter case.
/// A server may take upper case only (with a note): then every one of these is an error.
pub fn mixed_case_commands() -> Scenario {
    Scenario::new("mixed-case-commands", "command words are case-insensitive")
        .hint(
            "command words are case-insensitive: compare them in upper case (or refuse every word that \
             is not in upper case, with an ERROR line)",
        )
        .see("05-kv-server.md#run-it")
        .connect("c1")
        .send("c1", "set lang Rust\n")
        .either(
            Path::reference(|then| {
                then.expect_line("c1", "OK\n")
                    .send("c1", "Get lang\n")
                    .expect_line("c1", "Rust\n")
                    .send("c1", "dElEtE lang\n")
                    .expect_line("c1", "OK\n")
            }),
            [Path::accepted(NOTE_CASE_SENSITIVE_COMMANDS, |then| {
                then.read_line("c1", Expect::ErrorLine)
                    .send("c1", "Get lang\n")
                    .read_line("c1", Expect::ErrorLine)
                    .send("c1", "dElEtE lang\n")
                    .read_line("c1", Expect::ErrorLine)
            })],
        )
        .close("c1")
        .server_logs("#1 disconnected")
}

/// An unknown command is an error, not the end of the connection.
pub fn unknown_command() -> Scenario {
    Scenario::new(
        "unknown-command",
        "an unknown command gets an error line, and the next command works",
    )
.hint("an unknown command gets an ERROR line and the connection stays usable: never crash or hang up on bad input")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "HELLO server\n")
    .read_line("c1", Expect::ErrorLine)
    .send("c1", "SET a 1\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Too few or too many words. (`SET key` without a space is left out: the protocol does not
/// say whether that is an error or an empty value.)
pub fn wrong_arity() -> Scenario {
    let mut scenario = Scenario::new(
        "wrong-arity",
        "commands with too few or too many words get error lines; the connection stays usable",
    )
    .hint("a command with too few or too many words gets an ERROR line, and the connection stays usable")
    .see("05-kv-server.md#run-it")
    .connect("c1");
    for line in ["GET\n", "GET a b\n", "DELETE\n", "SET\n"] {
        scenario = scenario.send("c1", line).read_line("c1", Expect::ErrorLine);
    }
    scenario
        .send("c1", "SET a 1\n")
        .expect_line("c1", "OK\n")
        .close("c1")
        .server_logs("#1 disconnected")
}

/// `\r\n` line endings are accepted, and the `\r` is not part of the value.
pub fn crlf_line_endings() -> Scenario {
    Scenario::new(
        "crlf-line-endings",
        "lines may end with \\r\\n; the \\r is not part of the command or the value",
    )
    .hint("strip one \\r before the \\n: some clients (telnet, Windows tools) end lines with \\r\\n")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "SET os windows\r\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET os\r\n")
    .expect_line("c1", "windows\n")
    .send("c1", "GET os\n")
    .expect_line("c1", "windows\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Three commands in one write arrive in one read: each gets its reply, in order.
pub fn pipelined_commands() -> Scenario {
    Scenario::new(
        "pipelined-commands",
        "three commands sent in one write get three replies, in order",
    )
.hint("several commands can arrive in one read: answer every complete line in your buffer, not only the first")
    .see("05-kv-server.md#several-commands-in-one-read")
    .connect("c1")
    .send("c1", "SET fruit apple\nGET fruit\nDELETE fruit\n")
    .expect_line("c1", "OK\n")
    .expect_line("c1", "apple\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// One command arrives one byte at a time: the server must put it together.
pub fn command_in_one_byte_writes() -> Scenario {
    Scenario::new(
        "command-in-one-byte-writes",
        "a command sent one byte per write gets one reply, once its newline arrives",
    )
.hint("a command can arrive across several reads: keep what you read in a buffer until a \\n arrives, then handle the line")
    .see("05-kv-server.md#a-command-in-pieces")
    .connect("c1")
    .send_bytewise("c1", "SET slow yes\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET slow\n")
    .expect_line("c1", "yes\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Bytes that are not UTF-8 text: an error, nothing is stored, the connection stays usable. A
/// binary-safe server may store them instead (with a note), and must then return them byte for
/// byte; a value changed on the way (say, to U+FFFD replacement characters) fails.
pub fn invalid_utf8() -> Scenario {
    Scenario::new(
        "invalid-utf8",
        "a line that is not UTF-8 gets an error line and stores nothing; the next command works",
    )
    .hint(
        "bytes that are not UTF-8 get an ERROR line (or are stored and returned exactly as they came): \
         do not crash while decoding, and never replace bytes you cannot decode",
    )
    .see("05-kv-server.md#bytes-that-are-not-utf-8")
    .connect("c1")
    .send("c1", b"SET bytes \xff\xfe\n")
    .either(
        Path::reference(|then| {
            then.read_line("c1", Expect::ErrorLine)
                .send("c1", "GET bytes\n")
                .read_line("c1", Expect::ErrorLine)
        }),
        [Path::accepted(NOTE_BYTES_STORED_AS_THEY_CAME, |then| {
            then.expect_line("c1", "OK\n")
                .send("c1", "GET bytes\n")
                .expect_line("c1", b"\xff\xfe\n")
        })],
    )
    .send("c1", "SET bytes text\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// One byte over the line cap, without a newline: an error line, then the server hangs up. The
/// store survives and the next client is served.
pub fn line_too_long() -> Scenario {
    let too_long = vec![b'a'; MAX_LINE + 1];
    Scenario::new(
        "line-too-long",
        "65537 bytes without a newline get an error line and the connection is closed; the next client is served",
    )
.hint("cap the line length: once more than 65536 bytes have arrived without a newline, answer an ERROR line, close that connection, and keep serving")
    .see("05-kv-server.md#a-line-longer-than-64-kib")
    .connect("c1")
    .send("c1", "SET kept yes\n")
    .expect_line("c1", "OK\n")
    .send("c1", &too_long)
    .read_line("c1", Expect::ErrorLine)
    .either(
        Path::reference(|then| then.expect_closed("c1")),
        [Path::accepted(NOTE_LONG_LINE_KEEPS_CONNECTION, |then| then.expect_open("c1"))],
    )
    .close("c1")
    .connect("c2")
    .send("c2", "GET kept\n")
    .expect_line("c2", "yes\n")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// What one client stores, the next one reads: the store belongs to the server.
pub fn shared_between_connections() -> Scenario {
    Scenario::new(
        "shared-between-connections",
        "a value one client stores is there for the next client",
    )
    .hint("the store belongs to the server, not to a connection: create it once, before the accept loop")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "SET message hi from c1\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .connect("c2")
    .send("c2", "GET message\n")
    .expect_line("c2", "hi from c1\n")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// The protocol's flaw: stored values that look exactly like status replies.
pub fn ok_value_ambiguity() -> Scenario {
    Scenario::new(
        "ok-value-ambiguity",
        "values \"OK\" and \"ERROR oops\" come back looking exactly like status replies",
    )
    .hint("store and return values exactly as given, even when they look like OK or ERROR")
    .see("05-kv-server.md#run-it")
    .connect("c1")
    .send("c1", "SET answer OK\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET answer\n")
    .expect_line("c1", "OK\n")
    .send("c1", "SET note ERROR oops\n")
    .expect_line("c1", "OK\n")
    .send("c1", "GET note\n")
    .expect_line("c1", "ERROR oops\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// All key-value server scenarios, in the order the book tells them.
pub fn all() -> Vec<Scenario> {
    vec![
        set_get_delete(),
        overwrite(),
        missing_key(),
        value_with_spaces(),
        empty_value(),
        mixed_case_commands(),
        unknown_command(),
        wrong_arity(),
        crlf_line_endings(),
        pipelined_commands(),
        command_in_one_byte_writes(),
        invalid_utf8(),
        line_too_long(),
        shared_between_connections(),
        ok_value_ambiguity(),
    ]
}

// Scenarios for a key-value client (lesson 06), played against a scripted fake server. The client
// is run with the scenario's arguments: `SET a 1`, `GET a`, ... It must send exactly one command
// line, print the reply line, and exit 0 for `OK` or a value, 1 for an error reply.

/// The note for a client that ends its command line with `\r\n`.
pub const NOTE_COMMAND_ENDS_WITH_CRLF: &str = "your client ends the command line with \\r\\n, which servers \
     of this protocol accept (the reference ends it with \\n alone)";

/// The command line a client must send: `line` (ending in `\n`), or the same line ending in
/// `\r\n`, with a note.
fn command_line(line: &str) -> Expect {
    let crlf = format!("{}\r\n", line.trim_end_matches('\n'));
    Expect::exact(line).also_accept(Expect::exact(crlf), NOTE_COMMAND_ENDS_WITH_CRLF)
}

/// `SET a 1`: exactly `SET a 1\n` on the wire, then nothing more.
pub fn client_set() -> ClientScenario {
    ClientScenario::new(
        "set",
        "SET sends exactly one command line, prints the OK reply and exits 0",
    )
.hint("send exactly one line (the words joined by single spaces, then \\n), print the reply line, and exit 0")
    .see("06-kv-client.md#see-exactly-what-your-client-sends")
    .args(&["SET", "a", "1"])
    .receive_line(command_line("SET a 1\n"))
    .reply("OK\n")
    .expect_end_of_input()
    .exits(ExitExpect::Code(0))
    .stdout(Expect::exact("OK\n"))
}

/// `GET a`: the value is printed.
pub fn client_get() -> ClientScenario {
    ClientScenario::new("get", "GET prints the value the server replies and exits 0")
        .hint("print the reply line as it came, without the newline and without anything added")
        .see("06-kv-client.md#see-exactly-what-your-client-sends")
        .args(&["GET", "a"])
        .receive_line(command_line("GET a\n"))
        .reply("1\n")
        .expect_end_of_input()
        .exits(ExitExpect::Code(0))
        .stdout(Expect::exact("1\n"))
}

/// An error reply is printed as the server sent it, and the exit code says it was an error.
pub fn client_get_missing() -> ClientScenario {
    let mut scenario = ClientScenario::new(
        "get-missing",
        "an ERROR reply is printed as it came, and the client exits 1",
    )
    .hint("when the reply starts with ERROR, print it as it came and exit with code 1")
    .see("06-kv-client.md#see-exactly-what-your-client-sends")
    .args(&["GET", "nothing"])
    .receive_line(command_line("GET nothing\n"))
    .reply("ERROR no such key\n")
    .expect_end_of_input()
    .exits(ExitExpect::Code(1))
    .stdout(Expect::exact("ERROR no such key\n"));
    // The client worked; the server said no. Its answer on stdout is all a client needs to say.
    scenario.check_stderr = false;
    scenario
}

/// A bare `ERROR`, without a reason, is an error reply too.
pub fn client_bare_error() -> ClientScenario {
    let mut scenario = ClientScenario::new(
        "bare-error",
        "a reply of just ERROR (no reason) is an error reply too: exit 1",
    )
    .hint("a reply of just ERROR is an error too: print it and exit with code 1")
    .see("06-kv-client.md#see-exactly-what-your-client-sends")
    .args(&["DELETE", "a"])
    .receive_line(command_line("DELETE a\n"))
    .reply("ERROR\n")
    .expect_end_of_input()
    .exits(ExitExpect::Code(1))
    .stdout(Expect::exact("ERROR\n"));
    scenario.check_stderr = false;
    scenario
}

/// A value given as one argument with spaces goes on the wire as it is.
pub fn client_value_with_spaces() -> ClientScenario {
    ClientScenario::new(
        "value-with-spaces",
        "a value with spaces is sent as it is, after one space",
    )
    .hint("send the value as it was given, after the key and one space")
    .see("06-kv-client.md#see-exactly-what-your-client-sends")
    .args(&["SET", "greeting", "hello, big world"])
    .receive_line(command_line("SET greeting hello, big world\n"))
    .reply("OK\n")
    .expect_end_of_input()
    .exits(ExitExpect::Code(0))
    .stdout(Expect::exact("OK\n"))
}

/// `DELETE a`.
pub fn client_delete() -> ClientScenario {
    ClientScenario::new("delete", "DELETE sends one line and prints the OK reply")
.hint("send exactly one line (the words joined by single spaces, then \\n), print the reply line, and exit 0")
        .see("06-kv-client.md#see-exactly-what-your-client-sends")
    .args(&["DELETE", "a"])
        .receive_line(command_line("DELETE a\n"))
        .reply("OK\n")
        .expect_end_of_input()
        .exits(ExitExpect::Code(0))
        .stdout(Expect::exact("OK\n"))
}

/// The server hangs up without replying: the client must say so and fail, not print nothing and
/// exit 0.
pub fn client_no_reply() -> ClientScenario {
    ClientScenario::new(
        "no-reply",
        "the server closes the connection without replying: the client says so and exits non-zero",
    )
    .hint("if the server closes without a reply, say so on stderr and exit with a non-zero code")
    .see("06-kv-client.md#see-exactly-what-your-client-sends")
    .args(&["GET", "a"])
    .receive_line(command_line("GET a\n"))
    .close()
    .exits(ExitExpect::Failure)
}

/// How long a client may wait for a server that has gone silent before it must have given up:
/// lesson 06 waits 5 s for its reply, lesson 09 gives the whole command 6 s; twice the first
/// leaves room for a busy machine and for other reasonable choices.
pub const SILENT_SERVER_LIMIT: Duration = Duration::from_secs(10);

/// The server reads the command and then says nothing, with the connection open: a client with
/// no read timeout (or deadline) would wait for ever.
pub fn client_silent_server() -> ClientScenario {
    ClientScenario::new(
        "silent-server",
        "the server reads the command and never replies: the client gives up within 10 s, says so, and exits non-zero",
    )
    .hint(
        "a blocking read waits for ever when the server goes silent: give the reply a time limit (a read \
         timeout, like lesson 06's 5 s, or a deadline for the whole exchange, like lesson 09's), then say so \
         on stderr and exit with a non-zero code",
    )
    .see("09-kv-client-robust.md#a-server-that-says-nothing-the-deadline")
    .args(&["GET", "a"])
    .receive_line(command_line("GET a\n"))
    .say_nothing()
    .exits_within(SILENT_SERVER_LIMIT)
    .exits(ExitExpect::Failure)
}

/// The weather of [`client_sliced_path`]: every byte in its own `write`, 2 ms apart, each 20 ms
/// late. Far below every timeout (the whole exchange takes well under a second), so a correct
/// client only ever sees its bytes arrive in pieces.
pub fn sliced_path_weather() -> Weather {
    Weather {
        slice: Some(1),
        latency: Duration::from_millis(20),
        ..Weather::default()
    }
}

/// Over a path that delivers one byte at a time, a little late, the command still reaches the
/// server whole and the reply is printed whole: a client must read until the `\n`, not take one
/// `recv` for the reply.
pub fn client_sliced_path() -> ClientScenario {
    ClientScenario::new(
        "sliced-path",
        "through a proxy that forwards one byte at a time, 20 ms late, the client still prints the exact reply",
    )
    .hint(
        "one recv is not one reply: the reply can arrive a byte at a time, so keep reading and collect the \
         bytes until the \\n arrives, then print the whole line",
    )
    .see("09-kv-client-robust.md#a-sliced-path")
    .weather(sliced_path_weather())
    .args(&["GET", "greeting"])
    .receive_line(command_line("GET greeting\n"))
    .reply("hello, sliced world\n")
    .expect_end_of_input()
    .exits(ExitExpect::Code(0))
    .stdout(Expect::exact("hello, sliced world\n"))
}

/// Nobody listens: a clear line, a non-zero exit, no crash.
pub fn client_refused() -> ClientScenario {
    ClientScenario::new(
        "connection-refused",
        "no server is running: the client reports it in a clear line and exits non-zero",
    )
    .hint("catch the connection error, print one clear line on stderr, and exit with a non-zero code")
    .see("06-kv-client.md#nobody-is-listening")
    .args(&["GET", "a"])
    .nobody_listening()
    .exits(ExitExpect::Failure)
}

/// All key-value client scenarios.
pub fn client_all() -> Vec<ClientScenario> {
    vec![
        client_set(),
        client_get(),
        client_get_missing(),
        client_bare_error(),
        client_value_with_spaces(),
        client_delete(),
        client_no_reply(),
        client_silent_server(),
        client_sliced_path(),
        client_refused(),
    ]
}

/// The first connection is reset after the command arrives; a `GET` is safe to repeat, so a
/// robust client connects again, repeats it, and prints the reply of the second connection.
pub fn robust_reset_then_answer() -> ClientScenario {
    ClientScenario::new(
        "reset-then-answer",
        "the first connection is reset (RST) after the GET arrives; the client connects again, repeats the GET, prints the reply and exits 0",
    )
    .hint(
        "a GET changes nothing, so it is safe to repeat: when the connection is reset (ECONNRESET, or the \
         stream ends before the reply), wait a little and try again on a new connection, a few times",
    )
    .see("09-kv-client-robust.md#the-connection-is-reset-econnreset")
    .args(&["GET", "a"])
    .receive_line(command_line("GET a\n"))
    .reset()
    .accept_again()
    .receive_line(command_line("GET a\n"))
    .reply("1\n")
    .expect_end_of_input()
    .exits(ExitExpect::Code(0))
    .stdout(Expect::exact("1\n"))
}

/// The server reads every attempt's command and never answers (new connections wait in the
/// listen backlog): the client must give up by its deadline, say so, and exit non-zero.
pub fn robust_gives_up() -> ClientScenario {
    ClientScenario::new(
        "gives-up-by-its-deadline",
        "the server reads the GET and never replies, to any attempt: the client gives up within 10 s, says so on stderr, and exits non-zero",
    )
    .hint(
        "retries need a limit too: give the whole command a deadline (every attempt and every wait \
         included), and when it passes, say so on stderr and exit with a non-zero code",
    )
    .see("09-kv-client-robust.md#a-server-that-says-nothing-the-deadline")
    .args(&["GET", "a"])
    .receive_line(command_line("GET a\n"))
    .say_nothing()
    .exits_within(SILENT_SERVER_LIMIT)
    .exits(ExitExpect::Failure)
}

/// The scenarios of the robust client (lesson 09), beyond the kv-client ones.
pub fn robust_client_all() -> Vec<ClientScenario> {
    vec![robust_reset_then_answer(), robust_gives_up()]
}

// A model of the store, for property tests: random command sequences sent to a server must get
// the replies a plain `HashMap` predicts. The random generation lives with the tests (it needs
// proptest); the model and the conversation live here, so every KV server lesson, and the checker,
// can use them.

/// The keys model tests use: few, so that commands often meet keys stored earlier.
pub const MODEL_KEYS: [&str; 4] = ["a", "b", "c", "d"];

/// One command of a model test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelCommand {
    Set {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    Delete {
        key: String,
    },
    /// A line every correct server answers with an error line, changing nothing (given without
    /// its line ending).
    Malformed(Vec<u8>),
}

/// A command as it is written on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLine {
    pub command: ModelCommand,
    /// Write the command word in lower case (`set`).
    pub lowercase: bool,
    /// End the line with `\r\n` instead of `\n`.
    pub crlf: bool,
}

impl ModelLine {
    /// The bytes to send, line ending included.
    pub fn bytes(&self) -> Vec<u8> {
        let word = |w: &str| {
            if self.lowercase {
                w.to_lowercase()
            } else {
                w.to_string()
            }
        };
        let mut line = match &self.command {
            ModelCommand::Set { key, value } => format!("{} {key} {value}", word("SET")).into_bytes(),
            ModelCommand::Get { key } => format!("{} {key}", word("GET")).into_bytes(),
            ModelCommand::Delete { key } => format!("{} {key}", word("DELETE")).into_bytes(),
            ModelCommand::Malformed(bytes) => bytes.clone(),
        };
        line.extend_from_slice(if self.crlf { b"\r\n" } else { b"\n" });
        line
    }
}

/// What a key-value server must answer, worked out with a plain `HashMap`.
#[derive(Debug, Clone, Default)]
pub struct KvModel {
    entries: HashMap<String, String>,
}

impl KvModel {
    pub fn new() -> KvModel {
        KvModel::default()
    }

    /// Applies `command` to the model and returns what the server's reply must be.
    pub fn expect(&mut self, command: &ModelCommand) -> Expect {
        match command {
            ModelCommand::Set { key, value } => {
                self.entries.insert(key.clone(), value.clone());
                Expect::exact("OK\n")
            }
            ModelCommand::Get { key } => match self.entries.get(key) {
                Some(value) => Expect::exact(format!("{value}\n")),
                None => Expect::ErrorLine,
            },
            ModelCommand::Delete { key } => match self.entries.remove(key) {
                Some(_) => Expect::exact("OK\n"),
                None => Expect::ErrorLine,
            },
            ModelCommand::Malformed(_) => Expect::ErrorLine,
        }
    }
}

/// Runs one model test case over a new connection to the server at `addr`: deletes every key in
/// [`MODEL_KEYS`] (so the server starts as empty as the model, whatever earlier cases stored),
/// sends all `lines` cut into writes of `write_sizes` bytes (taken in turn, over and over), and
/// checks every reply against the model. On a mismatch, returns the conversation and what was
/// expected.
pub fn check_against_model(
    addr: SocketAddr,
    lines: &[ModelLine],
    write_sizes: &[usize],
    timeout: Duration,
) -> Result<(), String> {
    let mut conn = Connection::connect(addr, timeout).map_err(|err| format!("cannot connect: {err}"))?;
    let reset: String = MODEL_KEYS.iter().map(|key| format!("DELETE {key}\n")).collect();
    conn.send(reset.as_bytes())
        .map_err(|err| format!("cannot send: {err}"))?;
    for key in MODEL_KEYS {
        let reply = conn.read_line(timeout, 1024);
        let ok = Expect::exact("OK\n").check(&reply.bytes).is_ok()
            || Expect::ErrorLine.check(&reply.bytes).is_ok();
        if !ok {
            return Err(format!(
                "sent {} (to start from an empty store); the reply to DELETE {key} was {} ({:?})",
                escape_bytes(reset.as_bytes()),
                escape_bytes(&reply.bytes),
                reply.end
            ));
        }
    }

    let stream: Vec<u8> = lines.iter().flat_map(ModelLine::bytes).collect();
    let mut rest = stream.as_slice();
    let write_sizes = if write_sizes.is_empty() {
        &[usize::MAX][..]
    } else {
        write_sizes
    };
    for &size in write_sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (write, after) = rest.split_at(size.clamp(1, rest.len()));
        conn.send(write).map_err(|err| format!("cannot send: {err}"))?;
        rest = after;
    }

    let mut model = KvModel::new();
    let mut conversation = String::new();
    for (number, line) in lines.iter().enumerate() {
        let expect = model.expect(&line.command);
        let reply = conn.read_line(timeout, 2 * MAX_LINE);
        conversation.push_str(&format!(
            "> {}\n< {}\n",
            escape_bytes(&line.bytes()),
            escape_bytes(&reply.bytes)
        ));
        if expect.check(&reply.bytes).is_err() {
            let ended = match reply.end {
                ReadEnd::Complete => String::new(),
                other => format!(" (the read ended: {other:?})"),
            };
            return Err(format!(
                "reply {} of {} differs from the model: expected {}{ended}\nthe conversation (after the reset):\n{conversation}",
                number + 1,
                lines.len(),
                expect.describe(),
            ));
        }
    }
    Ok(())
}
