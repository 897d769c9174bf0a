//! Scenarios for a UDP echo server (lesson 10): every datagram comes back, unchanged, as one
//! datagram, to the address it came from.
//!
//! [`all`] is what `workbook check udp-echo-server` runs: what any correct UDP echo server does,
//! whatever its buffer size (up to 1024 bytes are sent in one datagram) and whatever it logs.
//! [`lesson_only`] shows what depends on the lesson's choices: its 1024-byte buffer cuts a longer
//! datagram short, and its log says so.

use std::time::Duration;

use crate::harness::Scenario;

/// The largest datagram the checker sends, and lesson 10's buffer: a longer one is cut short.
pub const MAX_DATAGRAM: usize = 1024;

/// How long a client listens for a datagram that must not come. Deliberate: silence can only be
/// shown by waiting; on loopback, a reply that does come takes well under a millisecond.
pub const QUIET_FOR: Duration = Duration::from_millis(200);

/// Where the book explains how a reply finds its way back.
const SEE_REPLY_TO_SENDER: &str = "10-udp-echo.md#replying-to-the-wrong-address";

/// Three datagrams sent before any reply is read come back as three datagrams, in order.
pub fn three_datagrams() -> Scenario {
    let mut scenario = Scenario::new(
        "three-datagrams",
        "a client sends three datagrams before reading; each comes back as a datagram of its own",
    )
    .hint(
        "receive one datagram at a time (recvfrom) and send exactly its bytes back in one datagram \
         (sendto), then wait for the next: no prefix, no newline added, nothing joined",
    )
    .see("10-udp-echo.md#run-it");
    for message in ["one", "two", "three"] {
        scenario = scenario.send_datagram("c1", message);
    }
    for message in ["one", "two", "three"] {
        scenario = scenario.expect_datagram("c1", message);
    }
    scenario.server_logs("sent 5 bytes")
}

/// A line typed into `nc -u` is a datagram ending in a newline, and comes back as it was.
pub fn a_line_from_nc() -> Scenario {
    Scenario::new(
        "a-line-from-nc",
        "a line as `nc -u` sends it, newline included, comes back unchanged",
    )
    .hint("send back exactly the bytes you received: do not strip the newline or decode the text")
    .see("10-udp-echo.md#run-it")
    .send_datagram("c1", "hello\n")
    .expect_datagram("c1", "hello\n")
    .server_logs("sent 6 bytes")
}

/// Every byte value, 0 to 255, in one datagram.
pub fn all_byte_values() -> Scenario {
    let every_byte: Vec<u8> = (0..=255).collect();
    Scenario::new(
        "all-byte-values",
        "one datagram holding the 256 byte values comes back unchanged",
    )
    .hint("treat a datagram as bytes: do not decode it as text, strip it, or stop at a NUL byte")
    .see("common-mistakes.md#bytes-are-not-text")
    .send_datagram("c1", &every_byte)
    .expect_datagram("c1", &every_byte)
    .server_logs("sent 256 bytes")
}

/// A datagram of 0 bytes is a datagram: it comes back, and the server keeps serving.
pub fn empty_datagram() -> Scenario {
    Scenario::new(
        "empty-datagram",
        "an empty datagram (0 bytes) comes back as an empty datagram, and the server goes on",
    )
    .hint(
        "a UDP receive that returns 0 bytes got an empty datagram, not an end of stream (UDP has no \
         stream to end): send an empty datagram back and keep serving",
    )
    .see("10-udp-echo.md#an-empty-datagram-is-not-the-end")
    .send_datagram("c1", "")
    .expect_datagram("c1", "")
    .send_datagram("c1", "still there?")
    .expect_datagram("c1", "still there?")
    .server_logs("sent 12 bytes")
}

/// Two clients, one server socket: each reply goes to the client that sent the request, and
/// to nobody else.
pub fn two_clients() -> Scenario {
    Scenario::new(
        "two-clients",
        "two clients (two sockets, two ports) send to one server; each gets its own reply and nothing else",
    )
    .hint(
        "send each reply to the address recvfrom returned with that datagram, not to a fixed address or \
         to the first client you heard from",
    )
    .see(SEE_REPLY_TO_SENDER)
    .send_datagram("c1", "from c1")
    .expect_datagram("c1", "from c1")
    .send_datagram("c2", "from c2")
    .expect_datagram("c2", "from c2")
    .send_datagram("c1", "c1 again")
    .expect_datagram("c1", "c1 again")
    .expect_no_datagram("c2", QUIET_FOR)
    .server_logs("sent 8 bytes: \"c1 again\"")
}

/// Every scenario a UDP echo server must pass, in the order the book tells them.
pub fn all() -> Vec<Scenario> {
    vec![
        three_datagrams(),
        a_line_from_nc(),
        all_byte_values(),
        empty_datagram(),
        two_clients(),
    ]
}

/// A datagram longer than lesson 10's 1024-byte buffer loses its tail: the server receives (and
/// echoes) its first 1024 bytes, and logs the real length. Only for the lesson: another server
/// with a larger buffer echoes it whole, which is as correct.
pub fn truncated() -> Scenario {
    let long: Vec<u8> = (0..2000).map(|i| b'a' + (i % 26) as u8).collect();
    Scenario::new(
        "truncated",
        "a 2000-byte datagram reaches a 1024-byte buffer: the server gets its first 1024 bytes, and knows it lost the rest",
    )
    .send_datagram("c1", &long)
    .expect_datagram("c1", &long[..MAX_DATAGRAM])
    .send_datagram("c1", "next")
    .expect_datagram("c1", "next")
    .server_logs("sent 4 bytes")
}

/// The scenarios that show lesson 10's own choices.
pub fn lesson_only() -> Vec<Scenario> {
    vec![truncated()]
}
