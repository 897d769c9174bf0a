//! Your time server, for the `time-server` step (lesson 03).
//!
//! Read first: the book's "Lesson 03: a time server", sections "The code" and "What goes wrong,
//! and how to see it". What the step expects: `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
//!     workbook check time-server -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch time-server -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     time-server: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;

/// `--host` and `--port`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16), String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 65431);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            other => return Err(format!("unknown argument {other:?}; usage: --host H --port P")),
        }
    }
    Ok((host, port))
}

/// The current local time like `2026-11-25T14:03:07+01:00`, and a newline. The standard library
/// has no calendar, and this crate has no dependencies, so `date` does it (or add `chrono`).
fn now() -> String {
    let output = Command::new("date").arg("+%Y-%m-%dT%H:%M:%S%:z").output();
    match output {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(err) => format!("no clock: {err}\n"),
    }
}

fn main() {
    let (host, port) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("time-server: {why}");
            std::process::exit(2);
        }
    };
    let listener: TcpListener = todo!("TcpListener::bind((host.as_str(), port)): bind and listen in one call");
    let addr = listener.local_addr().expect("a bound listener has an address");
    // The checker waits for this line: the real port (with --port 0 the system picks it).
    println!("listening on {addr}");
    loop {
        let mut conn: TcpStream = todo!("listener.accept(); on an error, print it and go on");
        todo!("conn.write_all(now().as_bytes()); then drop conn, which closes it; an error ends this connection, not the server");
    }
}
