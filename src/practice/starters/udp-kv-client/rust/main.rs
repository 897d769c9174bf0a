//! Your key-value client over UDP, for the `udp-kv-client` step (lesson 11).
//!
//! Read first: the book's "The datagram format" (datagram-format.md#requests,
//! datagram-format.md#replies, datagram-format.md#the-largest-datagram), and "Lesson 11: request
//! and reply over UDP", sections "The client: send, wait, send again"
//! (11-udp-kv.md#the-client-send-wait-send-again) and "Duplicates and late replies"
//! (11-udp-kv.md#duplicates-and-late-replies). What the step expects: `workbook list`, and
//! 11-udp-kv.md#workbook-check-udp-kv-client.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in with the UDP
//! port of its fake server, and adds the command's words, `GET greeting`, at the end):
//!     workbook check udp-kv-client -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch udp-kv-client -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     udp-kv-client: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A request or a reply holds at most this many bytes.
const MAX_DATAGRAM: usize = 1200;
/// How long to wait for the reply before sending the request again (then twice as long, ...).
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The whole command: the step wants it to give up on a silent server within 10 s.
const GIVE_UP_AFTER: Duration = Duration::from_secs(7);

/// `--host`, `--port` and the command's words, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16, Vec<String>), String> {
    let (mut host, mut port, mut words) = ("127.0.0.1".to_string(), 65441, Vec::new());
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

fn main() {
    let (host, port, words) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("udp-kv-client: {why}");
            std::process::exit(2);
        }
    };
    // A new id for each request, starting at an unpredictable number (datagram-format.md#requests):
    // the clock's nanoseconds will do here.
    let request_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |t| t.subsec_nanos() as u64 * 1_000_003);
    let request = format!("{request_id} {}\n", words.join(" "));
    if request.len() > MAX_DATAGRAM {
        eprintln!(
            "udp-kv-client: the request is {} bytes, more than {MAX_DATAGRAM}",
            request.len()
        );
        std::process::exit(2);
    }
    let socket: UdpSocket = todo!(
        "UdpSocket::bind(\"127.0.0.1:0\") (any free port; \"[::1]:0\" for an IPv6 --host), then \
         socket.connect((host.as_str(), port)): on a UDP socket it only records the server's \
         address (11-udp-kv.md#the-client-send-wait-send-again)"
    );
    let deadline = Instant::now() + GIVE_UP_AFTER;
    let mut wait = FIRST_WAIT;
    let mut reply = [0u8; MAX_DATAGRAM + 1];
    while Instant::now() < deadline {
        todo!(
            "socket.send(request.as_bytes()): the same bytes, same id, every time; then \
             socket.set_read_timeout(Some(wait)) (no longer than the time left)"
        );
        todo!(
            "loop: socket.recv(&mut reply); a WouldBlock or TimedOut error: wait = (wait * 2).min(2 s), \
             send again; ConnectionRefused (nobody on the port): wait and send again; a reply that \
             does not start with \"{{request_id}} \" is a duplicate or late: ignore it \
             (11-udp-kv.md#duplicates-and-late-replies); the right one: print the line after the \
             id, exit 1 if it starts with ERROR, else 0"
        );
    }
    todo!(
        "no reply before the deadline: one line on stderr naming {host}:{port} and saying to \
         start the UDP kv server, then std::process::exit(1)"
    );
}
