//! Scenarios for a key-value server that speaks RESP2, Redis's protocol (lesson 13). The
//! protocol is described in [`crate::resp`].
//!
//! Replies that *are* the protocol are strict: `+OK\r\n`, `$5\r\nhello\r\n`, `$-1\r\n` for a
//! missing key, `:2\r\n` for a count. Error replies are one line starting with `-`; the text
//! after it is for humans, so any text passes (Redis's is `-ERR ...`).
//!
//! Where the assignment leaves a choice open, both answers pass, the other with a note: a
//! server may refuse inline commands (typed lines like `PING`), answering an error and closing,
//! and may ignore `*-2` as Redis 7 does (it treats every count below 1 as an empty request)
//! instead of refusing it. What fails is a bug: a crash, a hang, a reply that is not RESP, a
//! value mangled, a connection that stays open after a length that cannot be trusted.

use crate::harness::{Expect, Path, Scenario};
use crate::resp::encode_request;

/// The note for a server that does not take inline commands.
pub const NOTE_NO_INLINE_COMMANDS: &str = "your server does not take inline commands (a typed line like \
     \"PING\\r\\n\"): it answers an error and closes, which RESP allows (the reference, like Redis, answers them, \
     so that nc and telnet users can type commands)";
/// The note for a server that ignores `*-2` as Redis 7 does.
pub const NOTE_NEGATIVE_COUNT_IGNORED: &str = "your server ignores the array count -2 as an empty request, as \
     Redis 7 does (the reference refuses counts below -1 with a protocol error, since only -1 means something)";

/// A request as RESP: `req(&["SET", "a", "1"])`.
fn req(args: &[&str]) -> Vec<u8> {
    encode_request(args)
}

/// An error reply: one line starting with `-`.
fn error_line() -> Expect {
    Expect::prefix("-")
}

/// Store, read back and delete a key; then it is gone: nil, not an error.
pub fn set_get_del() -> Scenario {
    Scenario::new(
        "set-get-del",
        "SET answers +OK, GET the value as a bulk string, DEL the number of keys removed, and GET of a missing key nil",
    )
    .hint("answer SET with +OK\\r\\n, GET with $<length>\\r\\n<value>\\r\\n (or $-1\\r\\n when the key is missing), DEL with :<count>\\r\\n")
    .see("13-resp-server.md#typed-replies")
    .connect("c1")
    .send("c1", req(&["SET", "city", "Paris"]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", req(&["GET", "city"]))
    .expect_bytes("c1", "$5\r\nParis\r\n")
    .send("c1", req(&["DEL", "city"]))
    .expect_bytes("c1", ":1\r\n")
    .send("c1", req(&["GET", "city"]))
    .expect_bytes("c1", "$-1\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// The flaw of lessons 05 to 08, fixed: a stored `OK` comes back as a bulk string.
pub fn a_value_is_not_a_status() -> Scenario {
    Scenario::new(
        "a-value-is-not-a-status",
        "a stored \"OK\" comes back as a bulk string, $2\\r\\nOK\\r\\n, which no client mistakes for +OK",
    )
    .hint("GET always answers a bulk string ($<length>\\r\\n<value>\\r\\n), whatever the value looks like")
    .see("13-resp-server.md#typed-replies")
    .connect("c1")
    .send("c1", req(&["SET", "answer", "OK"]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", req(&["GET", "answer"]))
    .expect_bytes("c1", "$2\r\nOK\r\n")
    .send("c1", req(&["SET", "note", "-ERR disk full"]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", req(&["GET", "note"]))
    .expect_bytes("c1", "$14\r\n-ERR disk full\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Keys and values are bytes: `\r\n`, NUL and invalid UTF-8 are stored and returned as they are.
pub fn binary_safe() -> Scenario {
    let key: &[u8] = b"line\r\nbreak";
    let value: &[u8] = b"\x00\xff\r\n$3\r\n";
    Scenario::new(
        "binary-safe",
        "a key and a value holding \\r\\n, NUL and invalid UTF-8 are stored and returned byte for byte",
    )
    .hint("read exactly <length> bytes of a bulk string, whatever they are (do not look for \\r\\n inside it), and store them as bytes, not text")
    .see("13-resp-server.md#binary-safe-keys-and-values")
    .connect("c1")
    .send("c1", encode_request(&[&b"SET"[..], key, value]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", encode_request(&[&b"GET"[..], key]))
    .expect_bytes("c1", b"$8\r\n\x00\xff\r\n$3\r\n\r\n")
    .send("c1", encode_request(&[&b"EXISTS"[..], key, b"line"]))
    .expect_bytes("c1", ":1\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// `DEL` and `EXISTS` take several keys and count.
pub fn del_and_exists_count() -> Scenario {
    Scenario::new(
        "del-and-exists-count",
        "DEL and EXISTS take several keys and answer how many were removed or found",
    )
    .hint("DEL k1 k2 ... answers :<number of keys removed>, EXISTS k1 k2 ... :<number of keys found> (a key named twice counts twice)")
    .see("13-resp-server.md#typed-replies")
    .connect("c1")
    .send("c1", req(&["SET", "a", "1"]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", req(&["SET", "b", "2"]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", req(&["EXISTS", "a", "b", "nothing", "a"]))
    .expect_bytes("c1", ":3\r\n")
    .send("c1", req(&["DEL", "a", "b", "nothing"]))
    .expect_bytes("c1", ":2\r\n")
    .send("c1", req(&["EXISTS", "a", "b"]))
    .expect_bytes("c1", ":0\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// `PING`, `PING message` and `ECHO`, with command names in any letter case.
pub fn ping_and_echo() -> Scenario {
    Scenario::new(
        "ping-and-echo",
        "PING answers +PONG, PING and ECHO with a message answer it as a bulk string; command names take any letter case",
    )
    .hint("compare command names without regard to letter case (redis-py sends them in upper case, people type lower case)")
    .see("13-resp-server.md#run-it")
    .connect("c1")
    .send("c1", req(&["PING"]))
    .expect_bytes("c1", "+PONG\r\n")
    .send("c1", req(&["ping", "hello there"]))
    .expect_bytes("c1", "$11\r\nhello there\r\n")
    .send("c1", req(&["Echo", ""]))
    .expect_bytes("c1", "$0\r\n\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Errors are error replies, and the connection stays usable after them.
pub fn errors_keep_the_connection() -> Scenario {
    Scenario::new(
        "errors-keep-the-connection",
        "an unknown command and a wrong number of arguments get an error reply (-...); the connection stays usable",
    )
    .hint("answer a command you do not know, or one with the wrong number of arguments, with one error line (-ERR <reason>\\r\\n) and keep serving")
    .see("13-resp-server.md#typed-replies")
    .connect("c1")
    .send("c1", req(&["FLY", "away"]))
    .read_line("c1", error_line())
    .send("c1", req(&["GET"]))
    .read_line("c1", error_line())
    .send("c1", req(&["PING"]))
    .expect_bytes("c1", "+PONG\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Several requests in one write, and one request spread over several writes.
pub fn pipelined_and_split() -> Scenario {
    let mut three = req(&["SET", "a", "1"]);
    three.extend(req(&["GET", "a"]));
    three.extend(req(&["DEL", "a"]));
    Scenario::new(
        "pipelined-and-split",
        "three requests in one write get three replies in order; a request split across writes (even inside a length) is put back together",
    )
    .hint("keep the bytes you have not parsed yet: one read may end in the middle of a request (even in the middle of \"$12\"), or hold several")
    .see("13-resp-server.md#how-a-request-arrives")
    .connect("c1")
    .send("c1", three)
    .expect_bytes("c1", "+OK\r\n$1\r\n1\r\n:1\r\n")
    .send_in_writes(
        "c1",
        &[b"*3\r\n$3\r\nSE", b"T\r\n$", b"1", b"\r", b"\nb\r\n$5\r\nhel", b"lo\r", b"\n"],
    )
    .expect_bytes("c1", "+OK\r\n")
    .send_in_writes("c1", &[b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*1\r\n$4\r", b"\nPING\r\n"])
    .expect_bytes("c1", "$5\r\nhello\r\n+PONG\r\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// Inline commands, as typed into `nc`: words separated by spaces, `\r\n` or `\n` at the end.
pub fn inline_commands() -> Scenario {
    Scenario::new(
        "inline-commands",
        "typed lines (inline commands) work too: PING\\r\\n, SET a 1\\n, GET a\\r\\n; a server may refuse them instead",
    )
    .hint("a request that does not start with '*' is an inline command: split the line at spaces; answer it like the same array")
    .see("13-resp-server.md#inline-commands")
    .connect("c1")
    .send("c1", "PING\r\n")
    .either(
        Path::reference(|then| {
            then.expect_bytes("c1", "+PONG\r\n")
                .send("c1", "SET typed 42\n")
                .expect_bytes("c1", "+OK\r\n")
                .send("c1", "get  typed\r\n")
                .expect_bytes("c1", "$2\r\n42\r\n")
        }),
        [Path::accepted(NOTE_NO_INLINE_COMMANDS, |then| {
            then.read_bytes("c1", 7, error_line()).read_to_end("c1", Expect::Anything)
        })],
    )
    .close("c1")
    .server_logs("#1 disconnected")
}

/// A length that cannot be true: error reply, connection closed; the server serves the next client.
pub fn impossible_bulk_length() -> Scenario {
    Scenario::new(
        "impossible-bulk-length",
        "a bulk length of 18446744073709551615 gets a protocol error reply and the connection is closed; the next client is served",
    )
    .hint("parse a length without overflow and check it against your cap (512 MB) before you allocate or wait for anything; then answer -ERR Protocol error ... and close")
    .see("13-resp-server.md#a-length-that-lies")
    .connect("c1")
    .send("c1", req(&["SET", "kept", "yes"]))
    .expect_bytes("c1", "+OK\r\n")
    .send("c1", "*2\r\n$3\r\nGET\r\n$18446744073709551615\r\n")
    .read_line("c1", error_line())
    .expect_closed("c1")
    .close("c1")
    .server_logs("#1 disconnected")
    .connect("c2")
    .send("c2", req(&["GET", "kept"]))
    .expect_bytes("c2", "$3\r\nyes\r\n")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// Negative lengths: `$-2` is an error; `*-2` too (or, as Redis 7 does, an empty request).
pub fn negative_lengths() -> Scenario {
    Scenario::new(
        "negative-lengths",
        "a bulk length of -2 gets a protocol error and the connection closed; an array count of -2 too (or is ignored, as Redis does)",
    )
    .hint("a negative length is no length: never use it to index or allocate; answer -ERR Protocol error ... and close")
    .see("13-resp-server.md#a-length-that-lies")
    .connect("c1")
    .send("c1", "*1\r\n$-2\r\n")
    .read_line("c1", error_line())
    .expect_closed("c1")
    .close("c1")
    .server_logs("#1 disconnected")
    .connect("c2")
    .send("c2", "*-2\r\n*1\r\n$4\r\nPING\r\n")
    .either(
        Path::reference(|then| then.read_line("c2", error_line()).expect_closed("c2").close("c2")),
        [Path::accepted(NOTE_NEGATIVE_COUNT_IGNORED, |then| {
            then.read_line("c2", Expect::exact("+PONG\r\n")).close("c2")
        })],
    )
    .server_logs("#2 disconnected")
}

/// A nested array is not a command.
pub fn nested_array() -> Scenario {
    Scenario::new(
        "nested-array",
        "a request whose element is an array, not a bulk string, gets a protocol error and the connection closed",
    )
    .hint("every element of a request must be a bulk string ($...): refuse anything else with -ERR Protocol error ... and close, instead of recursing")
    .see("13-resp-server.md#a-length-that-lies")
    .connect("c1")
    .send("c1", "*1\r\n*1\r\n$4\r\nPING\r\n")
    .read_line("c1", error_line())
    .expect_closed("c1")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// `QUIT`: `+OK`, then the server closes.
pub fn quit() -> Scenario {
    Scenario::new("quit", "QUIT answers +OK and the server closes the connection")
        .hint("after the +OK of QUIT, close the connection (after sending the reply)")
        .see("13-resp-server.md#run-it")
        .connect("c1")
        .send("c1", req(&["QUIT"]))
        .expect_bytes("c1", "+OK\r\n")
        .expect_closed("c1")
        .close("c1")
        .server_logs("#1 disconnected")
}

/// What one client stores, the next one reads.
pub fn shared_between_connections() -> Scenario {
    Scenario::new(
        "shared-between-connections",
        "a value one client stores is there for the next client",
    )
    .hint("the store belongs to the server, not to a connection")
    .see("13-resp-server.md#run-it")
    .connect("c1")
    .send("c1", req(&["SET", "message", "hi from c1"]))
    .expect_bytes("c1", "+OK\r\n")
    .close("c1")
    .connect("c2")
    .send("c2", req(&["GET", "message"]))
    .expect_bytes("c2", "$10\r\nhi from c1\r\n")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// Every scenario, in the order the book and the checker show them.
pub fn all() -> Vec<Scenario> {
    vec![
        set_get_del(),
        a_value_is_not_a_status(),
        binary_safe(),
        del_and_exists_count(),
        ping_and_echo(),
        errors_keep_the_connection(),
        pipelined_and_split(),
        inline_commands(),
        impossible_bulk_length(),
        negative_lengths(),
        nested_array(),
        quit(),
        shared_between_connections(),
    ]
}
