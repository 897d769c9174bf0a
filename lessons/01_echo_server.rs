//! # Lesson 01: an echo server
//!
//! The smallest useful TCP server: it waits for one client, sends back everything the client
//! sends (with `Echo: ` in front), and exits when the client hangs up.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 01_echo_server          # terminal 1: prints "listening on 127.0.0.1:65432"
//! nc 127.0.0.1 65432                      # terminal 2: type a line, press Enter, see the echo
//! ```
//!
//! The lesson hidden here: the server adds `Echo: ` once per `read`, not once per message.
//! TCP delivers a stream of bytes, not messages. Type slowly and each line comes back with its own
//! prefix; send 5000 bytes in one go and they come back as several reads, each prefixed, because the
//! kernel hands them over in pieces. Lesson 04 fixes this with framing.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use socket_workbook::lesson::{self, ListenArgs, describe_chunk};
use socket_workbook::log_line;

// ANCHOR: args
/// Lesson 01: echo back what one client sends, then exit.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    listen: ListenArgs<65432>,
}
// ANCHOR_END: args

fn main() -> ExitCode {
    let args = Args::parse();
    // Status 0, or one line `error: ...` and status 1.
    lesson::exit_status(serve_one_client(&args.listen))
}

// ANCHOR: serve
fn serve_one_client(listen: &ListenArgs<65432>) -> io::Result<()> {
    // ANCHOR: bind
    // `bind` claims the address and port; `TcpListener::bind` also calls `listen`, which tells the
    // kernel to accept connections on our behalf and queue them until we ask for one.
    let listener = TcpListener::bind((listen.host.as_str(), listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&listen.address(), &err));
    lesson::announce_listening(&listener)?;
    // ANCHOR_END: bind

    // ANCHOR: accept
    // `accept` blocks until a client has connected, then returns a new socket for talking to
    // that one client. The listener itself never carries data.
    let (mut conn, peer) = listener.accept()?;
    log_line!("connected by {peer}");
    // ANCHOR_END: accept

    // ANCHOR: echo_loop
    let mut buf = [0u8; 1024];
    loop {
        // `read` returns as soon as *some* bytes are there: maybe fewer than the client sent in
        // one write, maybe the end of one write and the start of the next. Never "one message".
        let n = match conn.read(&mut buf) {
            Ok(n) => n,
            // A signal interrupted the call before any data arrived: just ask again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        // `read` returning 0 means end of stream: the client closed (or shut down) its side.
        if n == 0 {
            log_line!("{peer} closed the connection; exiting");
            return Ok(());
        }
        let chunk = &buf[..n];
        // `log_line!` is `println!` that never panics (see src/lesson.rs): a server must not die
        // because nobody reads its log.
        log_line!("received {}", describe_chunk(chunk));

        // Build the whole reply first and hand it over with one `write_all`: one system call,
        // and no tiny packet holding only the prefix. The client may still read the reply in
        // pieces, split anywhere, just as we read its bytes. (`write_all` calls `write` until
        // every byte is taken: a `write` can stop short after a signal or a send timeout.)
        let mut reply = Vec::with_capacity(b"Echo: ".len() + n);
        reply.extend_from_slice(b"Echo: ");
        reply.extend_from_slice(chunk);
        conn.write_all(&reply)?;
    }
    // ANCHOR_END: echo_loop
    // Leaving the function drops `conn` and `listener`, which closes both sockets.
}
// ANCHOR_END: serve
