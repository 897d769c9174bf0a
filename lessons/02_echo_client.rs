//! # Lesson 02: an echo client
//!
//! The other side of lesson 01: connect, send one message, say "that's all" with a half-close,
//! and read the answer until the server hangs up.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 01_echo_server                      # terminal 1
//! cargo run --bin 02_echo_client -- "Hi there"        # terminal 2
//! ```
//!
//! Without a server running you get a clear "connection refused" line, not a crash: the first
//! thing that goes wrong in network programming is that nobody is listening.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;

use clap::Parser;
use socket_workbook::escape::escape_bytes;
use socket_workbook::lesson::{self, ConnectArgs};

/// Lesson 02: send a message to the echo server and print its reply.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    server: ConnectArgs<65432>,
    /// The message to send.
    #[arg(default_value = "Hello, world!")]
    message: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    lesson::exit_status(talk_to_echo_server(&args))
}

// ANCHOR: client
fn talk_to_echo_server(args: &Args) -> io::Result<()> {
    // ANCHOR: connect
    // `connect` performs TCP's three-way handshake. If nothing listens on that port, the other
    // machine's kernel answers with a reset and we get "connection refused" right away.
    let mut stream =
        TcpStream::connect((args.server.host.as_str(), args.server.port)).unwrap_or_else(|err| {
            lesson::exit_connect_failed(&args.server.address(), &err, "cargo run --bin 01_echo_server")
        });
    // ANCHOR_END: connect

    // ANCHOR: send
    let message = args.message.as_bytes();
    // `write_all` keeps calling `write` until every byte is handed to the kernel.
    stream.write_all(message)?;
    println!("sent     {}", escape_bytes(message));

    // Shut down our write half: the server's next `read` returns 0, so it knows we are done.
    // We can still read its answer: the other direction stays open.
    stream.shutdown(Shutdown::Write)?;
    // ANCHOR_END: send

    // ANCHOR: receive
    // The reply may arrive in several pieces; keep reading until the server closes (read = 0).
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    println!("received {}", escape_bytes(&reply));
    // ANCHOR_END: receive
    Ok(())
}
// ANCHOR_END: client
