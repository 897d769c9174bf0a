//! Scenarios for a frame echo server (lesson 04): every frame a client sends comes back as a frame
//! with the same payload. A frame is a 4-byte big-endian length, then that many payload bytes.
//!
//! The server accepts payloads of up to 1 MiB. A larger header is a protocol error: the server
//! closes that connection without answering, and keeps serving the next client. So does a client
//! that ends its stream in the middle of a frame.
//!
//! A client that is done shuts down its write half; the server reads the end of the stream, and
//! must then close the connection. The rejection scenarios send a bad header and nothing after it,
//! so the server has read every byte when it closes (closing with unread data would make the
//! kernel reset the connection instead).
//!
//! Transcripts show bytes escaped, so a header shows as `"\0\0\0\x0e"` (14). Payloads here are
//! shorter than 32 bytes but not 9, 10 or 13 bytes long, so that no header byte reads as a
//! letter or as `\t`, `\n`, `\r`.

use crate::harness::Scenario;

/// The largest payload the server must accept: 1 MiB.
pub const MAX_FRAME: usize = 1024 * 1024;

/// `payload` as a frame: its length as 4 bytes, most significant first, then the payload.
pub fn frame(payload: impl AsRef<[u8]>) -> Vec<u8> {
    let payload = payload.as_ref();
    let len = u32::try_from(payload.len()).expect("a scenario's payload fits a 4-byte length");
    [&len.to_be_bytes()[..], payload].concat()
}

/// Sends `payload` as a frame in one write and expects the same frame back.
fn echo(scenario: Scenario, client: &'static str, payload: &[u8]) -> Scenario {
    scenario
        .send(client, frame(payload))
        .expect_bytes(client, frame(payload))
}

/// The client says it is done; the server must close the connection.
fn finish(scenario: Scenario, client: &'static str) -> Scenario {
    scenario.shutdown_write(client).expect_closed(client)
}

/// After a rejected client, a new client must still be served.
fn next_client_is_served(scenario: Scenario, client: &'static str) -> Scenario {
    finish(echo(scenario.connect(client), client, b"still there?"), client)
}

/// The basic exchange: one frame, one echo.
pub fn one_frame() -> Scenario {
    let scenario = Scenario::new(
        "one-frame",
        "a client sends one frame and gets the same frame back",
    )
    .hint("read the 4-byte header, turn it into a length with big-endian byte order (int.from_bytes(h, \"big\"), u32::from_be_bytes), then read exactly that many bytes")
    .see("04-length-prefix.md#a-sender-that-uses-the-wrong-byte-order")
    .connect("c1");
    finish(echo(scenario, "c1", b"Hello, frames!"), "c1")
}

/// A frame arriving one byte per read, its header included: the server must put it together.
pub fn split_into_single_bytes() -> Scenario {
    let scenario = Scenario::new(
        "split-into-single-bytes",
        "a frame sent one byte per write comes back whole, as one frame",
    )
    .hint("one read may return fewer bytes than you asked for, even inside the header: loop until you have all 4 header bytes, then all the payload bytes")
    .see("04-length-prefix.md#the-demo")
    .connect("c1")
    .send_bytewise("c1", frame("Hello"))
    .expect_bytes("c1", frame("Hello"));
    finish(scenario, "c1")
}

/// Two frames in one write: the server must find the boundary between them.
pub fn two_frames_in_one_write() -> Scenario {
    let scenario = Scenario::new(
        "two-frames-in-one-write",
        "two frames sent in a single write come back as two frames",
    )
    .hint("one read may hold more than one frame: keep the bytes after the first frame and decode them as the next one")
    .see("04-length-prefix.md#the-demo")
    .connect("c1")
    .send("c1", [frame("ping"), frame("pong")].concat())
    .expect_bytes("c1", frame("ping"))
    .expect_bytes("c1", frame("pong"));
    finish(scenario, "c1")
}

/// A zero-length frame is valid: four zero bytes and no payload.
pub fn empty_frame() -> Scenario {
    let scenario = Scenario::new(
        "empty-frame",
        "an empty frame (a header of zeros) is echoed, and the next frame follows as usual",
    )
    .hint("a length of 0 is a valid frame: answer it with a header of four zero bytes, and do not treat it as the end of the stream")
    .connect("c1");
    let scenario = echo(scenario, "c1", b"");
    finish(echo(scenario, "c1", b"after the empty one"), "c1")
}

/// The largest frame the server must accept.
pub fn largest_frame() -> Scenario {
    let payload: Vec<u8> = (0..MAX_FRAME).map(|i| b'a' + (i % 26) as u8).collect();
    let scenario = Scenario::new(
        "largest-frame",
        "a frame of exactly 1 MiB (header 00 10 00 00), the largest allowed, is echoed",
    )
    .hint("send the whole reply (sendall / write_all), and accept payloads up to 1 MiB")
    .connect("c1");
    finish(echo(scenario, "c1", &payload), "c1")
}

/// One byte over the limit: rejected from the header alone.
pub fn one_byte_too_large() -> Scenario {
    let too_large = u32::try_from(MAX_FRAME + 1).expect("fits");
    let scenario = Scenario::new(
        "one-byte-too-large",
        "a header announcing 1 MiB + 1 bytes makes the server close the connection; the next client is served",
    )
    .hint("check the length against the 1 MiB maximum before reading or allocating the payload; close that connection, then keep serving")
    .see("04-length-prefix.md#a-hostile-header")
    .connect("c1")
    .send("c1", too_large.to_be_bytes())
    .expect_closed("c1")
    .server_logs("more than the maximum");
    next_client_is_served(scenario, "c2")
}

/// The largest header there is (4 GiB - 1): a server that allocates before it checks runs out of
/// memory, or waits for 4 GiB that never come.
pub fn header_ff_ff_ff_ff() -> Scenario {
    let scenario = Scenario::new(
        "header-ff-ff-ff-ff",
        "a header announcing 4294967295 bytes is rejected at once; the next client is served",
    )
    .hint("check the length against the maximum before allocating: a hostile header must not make you reserve 4 GiB or wait for it")
    .see("04-length-prefix.md#a-hostile-header")
    .connect("c1")
    .send("c1", [0xff, 0xff, 0xff, 0xff])
    .expect_closed("c1")
    .server_logs("announces 4294967295 bytes");
    next_client_is_served(scenario, "c2")
}

/// Clients that stop in the middle of a frame: inside the payload, then inside the header.
pub fn end_inside_a_frame() -> Scenario {
    let scenario = Scenario::new(
        "end-inside-a-frame",
        "clients that end their stream inside a payload or a header are closed; the next client is served",
    )
    .hint("a stream that ends inside a frame is an error for that connection only: close it and go back to accept")
    .see("04-length-prefix.md#the-stream-ends-in-the-middle-of-a-frame")
    .connect("c1")
    .send("c1", [&8u32.to_be_bytes()[..], b"abc"].concat());
    let scenario = finish(scenario, "c1")
        .server_logs("only 3 arrived")
        .connect("c2")
        .send("c2", [0x00, 0x00]);
    let scenario = finish(scenario, "c2").server_logs("got 2");
    next_client_is_served(scenario, "c3")
}

/// All frame echo server scenarios, in the order the book tells them.
pub fn all() -> Vec<Scenario> {
    vec![
        one_frame(),
        split_into_single_bytes(),
        two_frames_in_one_write(),
        empty_frame(),
        largest_frame(),
        one_byte_too_large(),
        header_ff_ff_ff_ff(),
        end_inside_a_frame(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_big_endian() {
        assert_eq!(frame([b'x'; 256])[..4], [0x00, 0x00, 0x01, 0x00]);
        assert_eq!(frame(""), [0, 0, 0, 0]);
    }

    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<_> = all().iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all().len());
    }
}
