//! Your Redis-speaking server, for the `resp-server` step (lesson 13).
//!
//! Read first: the book's "Lesson 13: speaking Redis", sections "Typed replies"
//! (13-resp-server.md#typed-replies), "Binary-safe keys and values"
//! (13-resp-server.md#binary-safe-keys-and-values), "How a request arrives"
//! (13-resp-server.md#how-a-request-arrives), "Inline commands"
//! (13-resp-server.md#inline-commands) and "A length that lies"
//! (13-resp-server.md#a-length-that-lies); the whole protocol is in
//! 13-resp-server.md#going-deeper-the-protocol-in-one-place. What the step expects: `workbook
//! list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
//!     workbook check resp-server -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch resp-server -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     resp-server: cargo run -q -- --port {port}
//! Then try it with `redis-cli -p PORT` (13-resp-server.md#pointing-redis-cli-at-your-own-server).
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The longest key or value accepted, as Redis.
const MAX_BULK: usize = 512 * 1024 * 1024;
/// The most elements in one request.
const MAX_ELEMENTS: usize = 1024 * 1024;

/// Keys and values are bytes: any byte, `\r\n` and NUL included.
type Store = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

/// Why no request could be taken from the buffer.
enum ParseError {
    /// The buffer ends before the request does: read more and parse again.
    Incomplete,
    /// The bytes cannot be a request: reply `-ERR Protocol error: ...` and close.
    Protocol(String),
}

/// One request from the front of `buffer`: its arguments, and how many bytes it used.
fn parse_request(buffer: &[u8]) -> Result<(Vec<Vec<u8>>, usize), ParseError> {
    todo!(
        "b'*': the count up to \\r\\n (check it against MAX_ELEMENTS), then for each element b'$', \
         the length up to \\r\\n (check it against MAX_BULK before waiting for the bytes), exactly \
         that many bytes (never look for \\r\\n inside them), then \\r\\n. Anything else first: an \
         inline command, one line split at spaces (13-resp-server.md#inline-commands)"
    )
}

/// The reply to one request (13-resp-server.md#typed-replies), and whether to close the
/// connection after it (QUIT). Command names take any letter case.
fn execute(store: &Store, args: &[Vec<u8>]) -> (Vec<u8>, bool) {
    todo!(
        "SET k v -> +OK\\r\\n; GET k -> $<len>\\r\\n<value>\\r\\n or $-1\\r\\n; DEL/EXISTS k... -> \
         :<n>\\r\\n; PING -> +PONG\\r\\n; PING msg and ECHO msg -> msg as a bulk string; QUIT -> \
         +OK\\r\\n and close; an unknown command or a wrong number of arguments -> \
         -ERR <reason>\\r\\n, and go on"
    )
}

/// Answers every request on `conn` until the client closes.
fn serve(mut conn: TcpStream, store: Store) -> std::io::Result<()> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n: usize = todo!("conn.read(&mut chunk)?; 0 means the client closed: return Ok(())");
        buffer.extend_from_slice(&chunk[..n]);
        todo!(
            "while parse_request(&buffer) gives a request: let (reply, close) = \
             execute(&store, &args); conn.write_all(&reply)?, buffer.drain(..used), return after \
             QUIT; Incomplete: read more; Protocol: write -ERR Protocol error ... and return \
             (13-resp-server.md#how-a-request-arrives)"
        );
    }
}

/// `--host` and `--port`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16), String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 65443);
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

fn main() {
    let (host, port) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("resp-server: {why}");
            std::process::exit(2);
        }
    };
    let store: Store = Arc::default();
    let listener: TcpListener =
        todo!("TcpListener::bind((host.as_str(), port)): bind and listen in one call");
    let addr = listener.local_addr().expect("a bound listener has an address");
    // The checker waits for this line: the real port (with --port 0 the system picks it).
    println!("listening on {addr}");
    loop {
        let (conn, peer): (TcpStream, std::net::SocketAddr) =
            todo!("listener.accept(); on an error, print it and go on");
        let store = Arc::clone(&store);
        todo!(
            "std::thread::spawn(move || serve(conn, store)): one thread per client; print the \
             error serve returns, with {{peer}}"
        );
    }
}
