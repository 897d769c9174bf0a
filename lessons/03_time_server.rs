//! # Lesson 03: a time server
//!
//! A server that never stops: every client that connects gets the current time, one line in
//! RFC 3339 format (`2026-11-25T14:03:07+01:00`), and is then disconnected. The server goes back
//! to `accept` and waits for the next one. The oldest protocols on the Internet (daytime, RFC 867)
//! work like this: the reply is the whole conversation, and closing the connection ends it.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 03_time_server          # terminal 1 (Ctrl-C stops it)
//! nc 127.0.0.1 65431                      # terminal 2, as often as you like
//! ```

use std::io::{self, Write};
use std::net::TcpListener;

use chrono::{Local, SecondsFormat};
use clap::Parser;
use socket_workbook::lesson::{self, ListenArgs};

/// Lesson 03: tell every client the time, forever.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65431>,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind((args.listen.host.as_str(), args.listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&args.listen.address(), &err));
    lesson::announce_listening(&listener)?;

    // ANCHOR: accept_loop
    // One client at a time: while we talk to one, the kernel queues the next ones (the `listen`
    // backlog) until we come back to `accept`.
    loop {
        let (mut conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            // A client that gave up before we accepted it, or a full process file table: report
            // it and keep serving. One failed connection must not stop the server.
            Err(err) => {
                eprintln!("accept failed: {err}");
                continue;
            }
        };
        // ANCHOR: reply
        // `false`: always write the offset as +HH:MM, never as "Z".
        let now = Local::now().to_rfc3339_opts(SecondsFormat::Secs, false);
        println!("{peer} connected; sending {now}");
        if let Err(err) = conn.write_all(format!("{now}\n").as_bytes()) {
            // The client may already be gone; that is its problem, not the server's.
            eprintln!("could not send the time to {peer}: {err}");
        }
        // ANCHOR_END: reply
        // `conn` is dropped here, which closes the connection: the client reads 0 (end of
        // stream) and knows the reply is complete.
    }
    // ANCHOR_END: accept_loop
}
