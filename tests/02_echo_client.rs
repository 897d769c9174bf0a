//! Lesson 02 against the real lesson 01 server, a fake server that records what it receives,
//! and a port where nothing listens.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use socket_workbook::harness::{RunOptions, client_story, run_client_scenario, start_lesson};
use socket_workbook::scenarios::echo;

const SERVER: &str = env!("CARGO_BIN_EXE_01_echo_server");
const LESSON: &str = env!("CARGO_BIN_EXE_02_echo_client");

/// The client scenarios `workbook check echo-client` uses, against our own client.
#[test]
fn every_client_scenario_matches_its_snapshot() {
    let command = [LESSON.to_string(), "--port".to_string(), "{port}".to_string()];
    for scenario in echo::client_all() {
        let run = run_client_scenario(&command, &scenario, &RunOptions::reference())
            .unwrap_or_else(|failure| panic!("{failure}"));
        insta::assert_snapshot!(format!("client-{}", scenario.name), run.render(&scenario));
    }
}

fn client() -> Command {
    let mut command = Command::cargo_bin("02_echo_client").unwrap();
    command.timeout(Duration::from_secs(10));
    command
}

#[test]
fn talks_to_the_real_echo_server() {
    let server = start_lesson(SERVER, &[]).unwrap();
    let port = server.addr().port().to_string();
    let assert = client()
        .args(["--port", &port, "Hi there"])
        .assert()
        .success()
        .stderr("");
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let story = client_story("02_echo_client --port <port> \"Hi there\"", &stdout, server);
    insta::assert_snapshot!("against-the-echo-server", story);
}

/// The exact bytes on the wire: the message, nothing added, then end-of-stream (the half-close),
/// and the client waits for the reply instead of closing at once.
#[test]
fn sends_exactly_the_message_then_half_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let fake_server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut received = Vec::new();
        // Returns only when the client has shut down its write half (or on timeout: an error).
        conn.read_to_end(&mut received)
            .expect("the client should half-close after sending");
        conn.write_all(b"Echo: ").unwrap();
        conn.write_all(&received).unwrap();
        received
    });
    client()
        .args(["--port", &port])
        .assert()
        .success()
        .stdout("sent     \"Hello, world!\"\nreceived \"Echo: Hello, world!\"\n");
    assert_eq!(fake_server.join().unwrap(), b"Hello, world!");
}

#[test]
fn a_refused_connection_gets_one_clear_line_and_exit_code_3() {
    let port = common::unused_port();
    let assert = client()
        .args(["--port", &port.to_string()])
        .assert()
        .code(3)
        .stdout("");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr, got:\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("cargo run --bin 01_echo_server"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
