//! Your UDP echo server, for the `udp-echo-server` step (lesson 10).
//!
//! Read first: the book's "Lesson 10: a UDP echo server", sections "The code"
//! (10-udp-echo.md#the-code: "Bind, and nothing else", "Receive one datagram", "Reply to the
//! sender") and "What goes wrong, and how to see it"
//! (10-udp-echo.md#what-goes-wrong-and-how-to-see-it). What the step expects: `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in, and waits
//! until your program has a UDP socket bound to that port):
//!     workbook check udp-echo-server -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch udp-echo-server -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     udp-echo-server: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::net::{SocketAddr, UdpSocket};

/// At least 1024: the step sends datagrams of up to 1024 bytes.
const BUFFER: usize = 2048;

/// `--host` and `--port`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16), String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 65440);
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
            eprintln!("udp-echo-server: {why}");
            std::process::exit(2);
        }
    };
    let socket: UdpSocket = todo!(
        "UdpSocket::bind((host.as_str(), port)): socket and bind, no listen, no accept \
         (10-udp-echo.md#bind-and-nothing-else)"
    );
    let addr = socket.local_addr().expect("a bound socket has an address");
    // People (and `workbook check` for TCP steps) read this line: the real port.
    println!("listening on {addr}");
    let mut buffer = [0u8; BUFFER];
    loop {
        let (n, sender): (usize, SocketAddr) = todo!(
            "socket.recv_from(&mut buffer): one whole datagram and who sent it; 0 bytes is an \
             empty datagram, not the end (10-udp-echo.md#an-empty-datagram-is-not-the-end); on \
             an error, print it and go on"
        );
        todo!(
            "socket.send_to(&buffer[..n], sender): back to the address recv_from gave, as one \
             datagram; on an error, print it and go on (10-udp-echo.md#reply-to-the-sender)"
        );
    }
}
