//! Your key-value server for many clients at once, for the `concurrent-kv-server` step
//! (lessons 07 and 08).
//!
//! Read first: the book's "Lesson 07: many clients at once" (a thread per client) or "Lesson 08:
//! one thread, many clients" (an event loop), sections "The code" and "What goes wrong, and how
//! to see it". What the step expects: `workbook list`. Start from your kv-server solution.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
//!     workbook check concurrent-kv-server -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch concurrent-kv-server -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     concurrent-kv-server: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The longest command line accepted, newline included.
const MAX_LINE: usize = 64 * 1024;

/// One store for every client, shared between their threads.
type Store = Arc<Mutex<HashMap<String, String>>>;

/// `--host` and `--port`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16), String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 65433);
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

/// One command line (its `\n` or `\r\n` removed) to one reply line (without its `\n`).
fn answer(store: &Store, line: &str) -> String {
    todo!("as in your kv-server, with the store behind store.lock() (other threads use it too)")
}

/// Answers every line until the client closes: as in your kv-server.
fn serve(conn: TcpStream, store: Store) -> std::io::Result<()> {
    todo!("read lines (at most MAX_LINE bytes each), write one reply line per command")
}

fn main() {
    let (host, port) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("concurrent-kv-server: {why}");
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
        todo!("std::thread::spawn(move || serve(conn, store)): one silent client must hold up nobody else");
    }
}
