//! Your echo client, for the `echo-client` step (lesson 02).
//!
//! Read first: the book's "Lesson 02: an echo client", sections "The code" and "What goes
//! wrong, and how to see it". What the step expects: `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in and adds the
//! message to send as the last argument):
//!     workbook check echo-client -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch echo-client -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     echo-client: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

/// `--host`, `--port` and the message, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16, String), String> {
    let (mut host, mut port, mut message) = ("127.0.0.1".to_string(), 65432, "Hello, world".to_string());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            _ => message = arg,
        }
    }
    Ok((host, port, message))
}

fn main() {
    let (host, port, message) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("echo-client: {why}");
            std::process::exit(2);
        }
    };
    let mut stream: TcpStream = todo!(
        "TcpStream::connect((host.as_str(), port)); on an error, print one line on stderr naming \
         {host}:{port} and saying to start the echo server, then std::process::exit(1)"
    );
    todo!("stream.write_all(message.as_bytes()), then stream.shutdown(Shutdown::Write): nothing more to send");
    let mut reply = Vec::new();
    todo!("stream.read_to_end(&mut reply): the server closes once it has seen our end of stream");
    println!("{}", String::from_utf8_lossy(&reply));
}
