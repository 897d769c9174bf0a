//! Your key-value server with an idle timeout, for the `kv-server-idle-timeout` step (the
//! exercise "An idle timeout" of lessons 07 and 08).
//!
//! Read first: the book's "Lesson 07: many clients at once", section "Exercises", and "Lesson
//! 08: one thread, many clients", section "Exercises". What the step expects: `workbook list`.
//! Start from your concurrent-kv-server solution: copy its parts in.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in, and adds
//! `--idle-timeout 1` itself):
//!     workbook check kv-server-idle-timeout -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch kv-server-idle-timeout -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     kv-server-idle-timeout: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One store for every client, shared between their threads.
type Store = Arc<Mutex<HashMap<String, String>>>;

/// `--host`, `--port` and `--idle-timeout`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16, Duration), String> {
    let (mut host, mut port, mut idle) = ("127.0.0.1".to_string(), 65433, Duration::from_secs(60));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--idle-timeout" => {
                let seconds: f64 = value()?.parse().map_err(|e| format!("--idle-timeout: {e}"))?;
                idle = Duration::try_from_secs_f64(seconds).map_err(|e| format!("--idle-timeout: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}; usage: --host H --port P --idle-timeout S")),
        }
    }
    Ok((host, port, idle))
}

/// Answers every line until the client closes, or stays silent for `idle`.
fn serve(conn: TcpStream, store: Store, idle: Duration) -> std::io::Result<()> {
    todo!(
        "conn.set_read_timeout(Some(idle))?: a read that waits longer fails with ErrorKind::WouldBlock \
         (TimedOut on Windows); treat both as idle: log it and return; the rest as in your \
         concurrent-kv-server"
    )
}

fn main() {
    let (host, port, idle) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("kv-server-idle-timeout: {why}");
            std::process::exit(2);
        }
    };
    let store = Store::default();
    let listener: TcpListener = todo!("TcpListener::bind((host.as_str(), port)): bind and listen in one call");
    let addr = listener.local_addr().expect("a bound listener has an address");
    // The checker waits for this line: the real port (with --port 0 the system picks it).
    println!("listening on {addr}");
    loop {
        let (conn, peer): (TcpStream, std::net::SocketAddr) =
            todo!("listener.accept(); on an error, print it and go on");
        let store = Arc::clone(&store);
        todo!("std::thread::spawn(move || serve(conn, store, idle)): a thread per client");
    }
}
