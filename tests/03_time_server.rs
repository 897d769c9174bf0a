//! Lesson 03 against its scenarios, over real loopback sockets.

mod common;

use std::time::Duration;

use socket_workbook::harness::run_lesson;
use socket_workbook::scenarios::time;

const LESSON: &str = env!("CARGO_BIN_EXE_03_time_server");
const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in time::all() {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &[], &scenario));
    }
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("03_time_server");
}

/// Two clients get the time after the server's stdout was closed, and it still runs.
#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    use socket_workbook::harness::Connection;
    use socket_workbook::harness::client::ReadEnd;

    let mut server = common::environment::start_with_stdout_closed(LESSON, &[]);
    for _ in 0..2 {
        let mut client = Connection::connect(server.addr, TIMEOUT).unwrap();
        let reply = client.read_to_end(TIMEOUT);
        assert_eq!(reply.end, ReadEnd::Closed);
        assert!(
            reply.bytes.len() > 20 && reply.bytes.ends_with(b"\n"),
            "{reply:?}"
        );
    }
    server.assert_still_running();
    server.finish();
}

#[test]
fn failed_accepts_pause_instead_of_spinning() {
    common::environment::assert_failed_accepts_do_not_spin(LESSON, &[]);
}
