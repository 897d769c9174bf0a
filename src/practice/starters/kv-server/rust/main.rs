//! Your key-value server, for the `kv-server` step (lesson 05).
//!
//! Read first: the book's "The key-value protocol", and "Lesson 05: a key-value server",
//! sections "The code" and "What goes wrong, and how to see it". What the step expects:
//! `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
//!     workbook check kv-server -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch kv-server -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     kv-server: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The longest command line accepted, newline included.
const MAX_LINE: usize = 64 * 1024;

type Store = HashMap<String, String>;

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
fn answer(store: &mut Store, line: &str) -> String {
    todo!(
        "SET key value -> store it, \"OK\"; GET key -> the value, or ERROR; DELETE key -> \"OK\"; \
         anything else -> a line starting with ERROR"
    )
}

/// Answers every line until the client closes.
fn serve(conn: TcpStream, store: &mut Store) -> std::io::Result<()> {
    let mut writer = conn.try_clone()?;
    // A BufReader puts lines back together, however the bytes arrive; take() caps one line.
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = Vec::new();
        let n: usize = todo!(
            "(&mut reader).take(MAX_LINE as u64).read_until(b'\\n', &mut line)?; 0 means the client \
             closed; a line without its \\n at the cap is too long: answer ERROR"
        );
        let reply = answer(store, String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']));
        todo!("writer.write_all(reply.as_bytes())? and a \\n");
    }
}

fn main() {
    let (host, port) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("kv-server: {why}");
            std::process::exit(2);
        }
    };
    let mut store = Store::new(); // one store for every client
    let listener: TcpListener = todo!("TcpListener::bind((host.as_str(), port)): bind and listen in one call");
    let addr = listener.local_addr().expect("a bound listener has an address");
    // The checker waits for this line: the real port (with --port 0 the system picks it).
    println!("listening on {addr}");
    loop {
        let (conn, peer): (TcpStream, std::net::SocketAddr) =
            todo!("listener.accept(); on an error, print it and go on");
        if let Err(err) = serve(conn, &mut store) {
            eprintln!("{peer}: {err}");
        }
    }
}
