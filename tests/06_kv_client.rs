//! Lesson 06 against scripted fake servers (the client scenarios), the real lesson 05 server,
//! a server that never answers, and a port where nothing listens.

mod common;

use std::io::{self, Write};
use std::net::{Ipv6Addr, TcpListener};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use socket_workbook::harness::{RunOptions, run_client_scenario, server_output_story, start_lesson};
use socket_workbook::scenarios::kv;

const SERVER: &str = env!("CARGO_BIN_EXE_05_kv_server");
const LESSON: &str = env!("CARGO_BIN_EXE_06_kv_client");

/// The client scenarios `workbook check kv-client` uses, against our own client.
#[test]
fn every_client_scenario_matches_its_snapshot() {
    for scenario in kv::client_all() {
        let mut command = vec![LESSON.to_string(), "--port".to_string(), "{port}".to_string()];
        // The silent server is waited out: with a 1-second timeout instead of the default 5,
        // the test takes a second. (`tests/workbook.rs` checks that the default passes too.)
        if scenario.name == "silent-server" {
            command.extend(["--timeout".to_string(), "1".to_string()]);
        }
        let run = run_client_scenario(&command, &scenario, &RunOptions::reference())
            .unwrap_or_else(|failure| panic!("{failure}"));
        insta::assert_snapshot!(format!("client-{}", scenario.name), run.render(&scenario));
    }
}

fn client(port: u16) -> Command {
    let mut command = Command::cargo_bin("06_kv_client").unwrap();
    command
        .args(["--port", &port.to_string()])
        .timeout(Duration::from_secs(10));
    command
}

/// A session as a learner types it in a second shell while lesson 05 runs: every command's
/// stdout, stderr and exit code, then the server's log.
#[test]
fn a_session_against_the_real_server() {
    let server = start_lesson(SERVER, &[]).unwrap();
    let port = server.addr().port();
    let session: [(&[&str], &str, i32); 9] = [
        (&["SET", "greeting", "hello", "world"], "OK\n", 0),
        (&["GET", "greeting"], "hello world\n", 0),
        (&["set", "balance", "-5"], "OK\n", 0),
        (&["GET", "balance"], "-5\n", 0),
        (&["SET", "empty", ""], "OK\n", 0),
        (&["GET", "empty"], "\n", 0),
        (&["DELETE", "greeting"], "OK\n", 0),
        (&["GET", "greeting"], "ERROR no such key\n", 1),
        (&["DELETE", "greeting"], "ERROR no such key\n", 1),
    ];
    let mut story = String::new();
    for (args, stdout, code) in session {
        client(port)
            .args(args)
            .assert()
            .code(code)
            .stdout(stdout)
            .stderr("");
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.is_empty() {
                    "''".to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        story.push_str(&format!(
            "$ 06_kv_client {}\n{stdout}(exit code {code})\n",
            shown.join(" ")
        ));
    }
    // The last client's "disconnected" is logged after it has exited; wait for it.
    assert!(server.wait_for_output("#9 disconnected", Duration::from_secs(5)));
    story.push_str(&server_output_story(server));
    insta::assert_snapshot!("against-the-kv-server", story);
}

/// Without a command, each line on stdin is sent as it is and gets its reply.
#[test]
fn without_a_command_it_reads_commands_from_stdin() {
    let server = start_lesson(SERVER, &[]).unwrap();
    client(server.addr().port())
        .write_stdin("SET a 1\nget a\nFLY\nDELETE a\n")
        .assert()
        .success()
        .stdout("OK\n1\nERROR unknown command \"FLY\" (expected SET, GET or DELETE)\nOK\n")
        .stderr("");
}

/// `--host ::1` on both sides, as the book's sockets chapter shows: lesson 05 listens on the IPv6
/// loopback address and lesson 06 talks to it. Skipped, with a note on stderr that shows even when
/// the output is captured, on a machine without IPv6 loopback.
#[test]
fn server_and_client_talk_over_ipv6_loopback() {
    if let Err(err) = TcpListener::bind("[::1]:0") {
        let _ = writeln!(
            io::stderr(),
            "SKIPPED server_and_client_talk_over_ipv6_loopback: no IPv6 loopback here ([::1]:0: {err})"
        );
        return;
    }
    let server = start_lesson(SERVER, &["--host", "::1"]).unwrap();
    assert_eq!(server.addr().ip(), Ipv6Addr::LOCALHOST);
    let port = server.addr().port();
    client(port)
        .args(["--host", "::1", "SET", "six", "over IPv6"])
        .assert()
        .success()
        .stdout("OK\n");
    client(port)
        .args(["--host", "::1", "GET", "six"])
        .assert()
        .success()
        .stdout("over IPv6\n");
    assert!(server.wait_for_output("#2 disconnected", Duration::from_secs(5)));
    let log: Vec<String> = server.finish().into_iter().map(|line| line.text).collect();
    assert_eq!(log[0], format!("listening on [::1]:{port}"));
    assert!(log[1].starts_with("#1 connected from [::1]:"), "{log:?}");
}

/// Mistakes in the command are reported before connecting (nothing listens on the port, so a
/// connection attempt would fail with exit code 3): usage on stderr, exit code 2.
#[test]
fn usage_errors_exit_with_code_2() {
    let port = common::unused_port();
    let mistakes: [&[&str]; 7] = [
        &["GET"],
        &["GET", "a", "b"],
        &["GET", "two words"],
        &["DELETE"],
        &["SET", "a"],
        &["FLY", "away"],
        &["SET", "a", "line\nbreak"],
    ];
    for args in mistakes {
        let assert = client(port).args(args).assert().code(2).stdout("");
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        let clear = predicate::str::starts_with("error: ")
            .and(predicate::str::contains("Usage: 06_kv_client"))
            .and(predicate::str::contains("panicked").not());
        assert!(clear.eval(&stderr), "{args:?}: {stderr}");
    }
}

#[test]
fn a_refused_connection_gets_one_clear_line_and_exit_code_3() {
    let port = common::unused_port();
    let assert = client(port).args(["GET", "a"]).assert().code(3).stdout("");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr, got:\n{stderr}");
    let clear = predicate::str::contains(format!("cannot connect to 127.0.0.1:{port}"))
        .and(predicate::str::contains("cargo run --bin 05_kv_server"))
        .and(predicate::str::contains("panicked").not());
    assert!(clear.eval(&stderr), "{stderr}");
}

/// A server that accepts the connection and never answers: the client gives up after its
/// timeout with one clear line and exit code 4, instead of hanging.
#[test]
fn a_silent_server_times_out() {
    // The kernel completes the connection (the listen backlog) even though we never accept it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let assert = client(port)
        .args(["--timeout", "1", "GET", "a"])
        .assert()
        .code(4)
        .stdout("");
    assert!(started.elapsed() < Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stderr.trim_end(),
        format!("error: 127.0.0.1:{port}: no reply within 1 s")
    );
}
