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
use std::process::ExitCode;

use chrono::{Local, SecondsFormat};
use clap::Parser;
use socket_workbook::lesson::{self, ListenArgs};
use socket_workbook::{log_error, log_line};

/// Lesson 03: tell every client the time, forever.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65431>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Status 1 and one line `error: ...` if the server cannot even start.
    lesson::exit_status(serve_forever(&args.listen))
}

fn serve_forever(listen: &ListenArgs<65431>) -> io::Result<()> {
    let listener = TcpListener::bind((listen.host.as_str(), listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&listen.address(), &err));
    lesson::announce_listening(&listener)?;

    // ANCHOR: accept_loop
    // One client at a time: while we talk to one, the kernel queues the next ones (the `listen`
    // backlog) until we come back to `accept`.
    loop {
        let (mut conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            // A client that gave up before we accepted it, or no file descriptor left for a new
            // connection ("too many open files"): report it and keep serving; one failed
            // connection must not stop the server. In the second case the same call would
            // fail again at once, so `after_failed_accept` pauses first (see src/lesson.rs).
            Err(err) => {
                lesson::after_failed_accept(&err);
                continue;
            }
        };
        // ANCHOR: reply
        // `false`: always write the offset as +HH:MM, never as "Z".
        let now = Local::now().to_rfc3339_opts(SecondsFormat::Secs, false);
        // `log_line!` is `println!` that never panics: a closed stdout must not stop the server.
        log_line!("{peer} connected; sending {now}");
        if let Err(err) = conn.write_all(format!("{now}\n").as_bytes()) {
            // The client may already be gone; that is its problem, not the server's.
            log_error!("could not send the time to {peer}: {err}");
        }
        // ANCHOR_END: reply
        // `conn` is dropped here, which closes the connection: the client reads 0 (end of
        // stream) and knows the reply is complete.
    }
    // ANCHOR_END: accept_loop
}
