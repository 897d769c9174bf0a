//! Your robust key-value client, for the `kv-client-robust` step (lesson 09).
//!
//! Read first: the book's "Lesson 09: a client that survives the network", sections "The code"
//! and "What goes wrong, and how to see it". What the step expects: `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in and adds the
//! command's words, like `GET a`, at the end):
//!     workbook check kv-client-robust -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch kv-client-robust -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     kv-client-robust: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The whole command's time, every attempt and every wait included.
const DEADLINE: Duration = Duration::from_secs(6);
const ATTEMPTS: u32 = 4;

/// `--host`, `--port` and the command's words, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16, Vec<String>), String> {
    let (mut host, mut port, mut words) = ("127.0.0.1".to_string(), 65433, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            _ => words.push(arg),
        }
    }
    if words.is_empty() {
        return Err("usage: --host H --port P SET key value | GET key | DELETE key".into());
    }
    Ok((host, port, words))
}

/// One connection: sends the line, returns the reply line. An error for a refusal, a reset, a
/// timeout, or a stream that ends before the reply.
fn attempt(host: &str, port: u16, line: &str, deadline: Instant) -> std::io::Result<String> {
    todo!(
        "TcpStream::connect_timeout with the time left before deadline; set_read_timeout to the \
         time left; write_all(line); read_line until the \\n; 0 bytes first: an UnexpectedEof error"
    )
}

fn main() {
    let (host, port, words) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("kv-client-robust: {why}");
            std::process::exit(2);
        }
    };
    let line = format!("{}\n", words.join(" "));
    let deadline = Instant::now() + DEADLINE;
    todo!(
        "call attempt() up to ATTEMPTS times while time is left, sleeping a little (more each time) \
         between attempts, but retry only a GET: it is safe to repeat; print the reply and exit 1 \
         if it starts with ERROR, else 0; when no attempt succeeds, say why on stderr, exit non-zero"
    );
}
