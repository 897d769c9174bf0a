//! Helpers shared by the lesson tests.
#![allow(dead_code)]

pub mod concurrent;
pub mod environment;
pub mod kv;

use std::net::TcpListener;

use assert_cmd::Command;
use predicates::prelude::*;

/// A server lesson started on a port that is already taken must say so in one line on stderr,
/// print no `listening on` line, and exit with code 1 (not panic).
pub fn assert_port_in_use_is_reported(bin: &str) {
    // Holding this listener keeps the port busy for the duration of the test.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::cargo_bin(bin)
        .unwrap()
        .args(["--port", &port.to_string()])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8_lossy(&output.get_output().stderr).into_owned();
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line on stderr, got:\n{stderr}"
    );
    let clear = predicate::str::contains(format!("cannot listen on 127.0.0.1:{port}"))
        .and(predicate::str::contains("in use"))
        .and(predicate::str::contains("--port"))
        .and(predicate::str::contains("panicked").not());
    assert!(clear.eval(&stderr), "unexpected stderr: {stderr}");
}

/// A port on which nothing listens (the kernel gave it to us, and we let it go again).
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Python interpreter itself (`sys.executable`), found once: a version manager's `python3` is
/// often a shell script that starts it, which doubles what each of the hundreds of Python starts
/// in the checker's tests costs.
pub fn python_path() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let output = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("these tests need python3");
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if path.is_empty() {
            "python3".to_string()
        } else {
            path
        }
    })
}
