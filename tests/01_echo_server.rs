//! Lesson 01 against its scenarios, over real loopback sockets.

mod common;

use std::time::Duration;

use socket_workbook::harness::{Connection, run_lesson, start_lesson};
use socket_workbook::scenarios::echo;

const LESSON: &str = env!("CARGO_BIN_EXE_01_echo_server");

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in echo::all() {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &[], &scenario));
    }
}

// ANCHOR: megabyte
/// A megabyte arrives in many reads, and each read gets its own `Echo: ` prefix. With the
/// prefixes taken out, the data must be intact, and there must be one prefix per logged read.
#[test]
fn a_megabyte_comes_back_intact_with_one_prefix_per_read() {
    // Lowercase letters only, so the payload cannot contain "Echo: " itself.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut server = start_lesson(LESSON, &[]).unwrap();
    let mut client = Connection::connect(server.addr(), Duration::from_secs(2)).unwrap();
    client.send(&payload).unwrap();
    client.shutdown_write().unwrap();
    let reply = client.read_to_end(Duration::from_secs(10));
    assert_eq!(reply.end, socket_workbook::harness::client::ReadEnd::Closed);
    assert!(reply.bytes.starts_with(b"Echo: "));

    let text = String::from_utf8(reply.bytes).unwrap();
    let pieces: Vec<&str> = text.split("Echo: ").skip(1).collect();
    assert_eq!(pieces.concat().as_bytes(), payload.as_slice());

    assert_eq!(
        server.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    let reads = server
        .finish()
        .iter()
        .filter(|line| line.text.starts_with("received "))
        .count();
    assert_eq!(reads, pieces.len(), "one prefix per read");
    assert!(
        reads >= 1024,
        "1 MiB through a 1024-byte buffer takes at least 1024 reads, saw {reads}"
    );
}
// ANCHOR_END: megabyte

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("01_echo_server");
}

/// Once its stdout is closed, every log line fails: the server still echoes, and exits with
/// status 0 when its client leaves.
#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    use socket_workbook::harness::client::ReadEnd;

    let mut server = common::environment::start_with_stdout_closed(LESSON, &[]);
    let mut client = Connection::connect(server.addr, Duration::from_secs(5)).unwrap();
    client.send(b"hi").unwrap();
    client.shutdown_write().unwrap();
    let reply = client.read_to_end(Duration::from_secs(5));
    assert_eq!(reply.end, ReadEnd::Closed);
    assert_eq!(reply.bytes, b"Echo: hi");
    server.assert_exits_successfully(Duration::from_secs(5));
    server.finish();
}
