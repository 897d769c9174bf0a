//! Lesson 05 against its scenarios, a `HashMap` model of the store, and hostile clients, over
//! real loopback sockets.

mod common;

use std::time::Duration;

use socket_workbook::harness::client::ReadEnd;
use socket_workbook::harness::{Connection, Expect, run_lesson, start_lesson};
use socket_workbook::kv::MAX_LINE;
use socket_workbook::scenarios::kv;

const LESSON: &str = env!("CARGO_BIN_EXE_05_kv_server");
const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in kv::all() {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &[], &scenario));
    }
}

/// `--quiet` keeps the connection lines and drops the line per command.
#[test]
fn quiet_logs_only_connections() {
    let scenario = kv::set_get_delete();
    insta::assert_snapshot!("quiet", run_lesson(LESSON, &["--quiet"], &scenario));
}

#[test]
fn replies_match_a_hashmap_model() {
    common::kv::assert_server_matches_model(LESSON, &["--quiet"]);
}

#[test]
fn random_bytes_never_break_the_server() {
    common::kv::assert_server_survives_junk(LESSON, &["--quiet"]);
}

/// The cap is 65536 bytes before the `\n`: a line of exactly that length is a command.
#[test]
fn a_line_of_exactly_65536_bytes_is_accepted() {
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let value = "v".repeat(MAX_LINE - "SET big ".len());
    let mut conn = Connection::connect(server.addr(), TIMEOUT).unwrap();
    let line = format!("SET big {value}");
    assert_eq!(line.len(), MAX_LINE);
    conn.send(format!("{line}\n").as_bytes()).unwrap();
    assert_eq!(conn.read_line(TIMEOUT, 1024).bytes, b"OK\n");
    drop(conn);
    common::kv::assert_serves(&server, "big", &format!("{value}\n"));
}

/// A megabyte without a newline: the client reliably reads the error line (the server closes
/// gracefully, without a reset), then sees the connection closed; the next client is served.
#[test]
fn a_megabyte_without_newline_gets_the_error_line_then_a_clean_close() {
    let mut server = start_lesson(LESSON, &[]).unwrap();
    let mut conn = Connection::connect(server.addr(), TIMEOUT).unwrap();
    conn.send(b"SET kept yes\n").unwrap();
    assert_eq!(conn.read_line(TIMEOUT, 1024).bytes, b"OK\n");
    // The server stops reading at the cap; the rest of the megabyte is still in flight or in
    // its receive buffer when it answers.
    conn.send(&vec![b'x'; 1024 * 1024]).unwrap();
    let reply = conn.read_line(TIMEOUT, 1024);
    assert!(Expect::ErrorLine.check(&reply.bytes).is_ok(), "{reply:?}");
    let rest = conn.read_to_end(TIMEOUT);
    assert_eq!((rest.bytes.as_slice(), rest.end), (&b""[..], ReadEnd::Closed));
    drop(conn);
    common::kv::assert_serves(&server, "kept", "yes\n");
    assert!(server.wait_for_output("#1 sent more than 65536 bytes without a newline", TIMEOUT));
    assert!(server.exit_status().is_none());
}

/// A client that sends without end and never reads: the server hangs up after a bounded drain
/// and serves the next client.
#[test]
fn a_flood_without_newline_does_not_hold_the_server() {
    common::kv::assert_flood_is_cut_off(LESSON);
}

/// A client that pipelines big replies and vanishes without reading them: the server logs it
/// and serves the next client.
#[test]
fn a_client_that_vanishes_does_not_stop_the_server() {
    common::kv::assert_vanishing_client_is_survived(LESSON);
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("05_kv_server");
}

#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    common::environment::assert_kv_server_survives_closed_stdout(LESSON);
}

#[test]
fn failed_accepts_pause_instead_of_spinning() {
    common::environment::assert_failed_accepts_do_not_spin(LESSON, &[]);
}

#[test]
fn a_client_that_sends_a_byte_at_a_time_cannot_stretch_the_drain() {
    common::environment::assert_drain_ends_by_its_deadline(LESSON);
}
