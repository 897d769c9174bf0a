//! Your key-value client, for the `kv-client` step (lesson 06).
//!
//! Read first: the book's "The key-value protocol", and "Lesson 06: a key-value client",
//! sections "The code" and "Write your own client". What the step expects: `workbook list`.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in and adds the
//! command's words, like `SET a 1`, at the end):
//!     workbook check kv-client -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch kv-client -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     kv-client: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long to wait for the reply.
const TIMEOUT: Duration = Duration::from_secs(5);

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

fn main() {
    let (host, port, words) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("kv-client: {why}");
            std::process::exit(2);
        }
    };
    let line = format!("{}\n", words.join(" "));
    let mut stream: TcpStream = todo!(
        "TcpStream::connect((host.as_str(), port)); on an error, print one line on stderr naming \
         {host}:{port} and saying to start the kv server, then std::process::exit(2)"
    );
    todo!("stream.set_read_timeout(Some(TIMEOUT)): a silent server must not hang us");
    todo!("stream.write_all(line.as_bytes())");
    let mut reply = String::new();
    todo!(
        "BufReader::new(&stream).read_line(&mut reply): it reads until the \\n, however the bytes \
         arrive; an error or a reply without \\n: say so on stderr, exit non-zero"
    );
    print!("{reply}");
    std::process::exit(if reply.starts_with("ERROR") { 1 } else { 0 });
}
