//! Your echo server, for the `echo-server` step (lesson 01).
//!
//! Read first: the book's "Lesson 01: an echo server", sections "The code" and "What goes
//! wrong, and how to see it". What the step expects: `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
//!     workbook check echo-server -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch echo-server -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     echo-server: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// `--host` and `--port`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16), String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 65432);
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

/// Answers every read with `Echo: ` and exactly the bytes read, until the client closes.
fn serve(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buffer = [0u8; 1024];
    loop {
        let n: usize = todo!("conn.read(&mut buffer)?; 0 means the client closed: return Ok(())");
        todo!("conn.write_all(b\"Echo: \")? and conn.write_all(&buffer[..n])?");
    }
}

fn main() {
    let (host, port) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("echo-server: {why}");
            std::process::exit(2);
        }
    };
    let listener: TcpListener = todo!("TcpListener::bind((host.as_str(), port)): bind and listen in one call");
    let addr = listener.local_addr().expect("a bound listener has an address");
    // The checker waits for this line: the real port (with --port 0 the system picks it).
    println!("listening on {addr}");
    loop {
        let (conn, peer): (TcpStream, std::net::SocketAddr) =
            todo!("listener.accept(); on an error, print it and go on");
        if let Err(err) = serve(conn) {
            eprintln!("{peer}: {err}");
        }
    }
}
