//! Your key-value server that keeps its data, for the `kv-server-persistent` step (the exercise
//! "Persistence" of lesson 05).
//!
//! Read first: the book's "Lesson 05: a key-value server", section "Exercises". What the step
//! expects: `workbook list`. Start from your kv-server solution: copy its parts in.
//!
//! Check it, from this folder (`{port}` is typed as it is; the checker fills it in, and adds
//! `--data-file PATH` itself, a file in a fresh folder that does not exist at first):
//!     workbook check kv-server-persistent -- cargo run -q -- --port {port}
//! Check it again on every save (it rebuilds first):
//!     workbook check --watch kv-server-persistent -- cargo run -q -- --port {port}
//! Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
//!     kv-server-persistent: cargo run -q -- --port {port}
//!
//! Replace every `todo!(...)` with the socket calls it names.

// Remove these once the todo!s are gone: until then, code after a todo! is never reached.
#![allow(unreachable_code, unused_variables, unused_imports, unused_mut, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

type Store = HashMap<String, String>;

/// `--host`, `--port` and `--data-file`, written for you: not the point of this exercise.
fn parse_args() -> Result<(String, u16, PathBuf), String> {
    let (mut host, mut port, mut data) = ("127.0.0.1".to_string(), 65433, PathBuf::from("kv-data"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--data-file" => data = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other:?}; usage: --host H --port P --data-file F")),
        }
    }
    Ok((host, port, data))
}

/// The store saved in `path`, or an empty one if there is no such file yet.
fn load(path: &Path) -> std::io::Result<Store> {
    todo!(
        "std::fs::read_to_string(path); ErrorKind::NotFound means a first start: Ok(Store::new()); \
         otherwise parse your format, e.g. one `key value` line per key (keys have no spaces)"
    )
}

/// Writes the store to `path`, so that a crash in the middle never leaves half a file.
fn save(store: &Store, path: &Path) -> std::io::Result<()> {
    todo!("write to path.with_extension(\"new\"), then std::fs::rename it over path, which is atomic")
}

/// Answers every line until the client closes, saving after every change and before the reply.
fn serve(conn: TcpStream, store: &mut Store, data: &Path) -> std::io::Result<()> {
    todo!("as in your kv-server; after a SET or DELETE that changed the store: save(store, data)?")
}

fn main() {
    let (host, port, data) = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("kv-server-persistent: {why}");
            std::process::exit(2);
        }
    };
    let mut store = match load(&data) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("kv-server-persistent: cannot read {}: {err}", data.display());
            std::process::exit(1);
        }
    };
    let listener: TcpListener = todo!("TcpListener::bind((host.as_str(), port)): bind and listen in one call");
    let addr = listener.local_addr().expect("a bound listener has an address");
    // The checker waits for this line: the real port (with --port 0 the system picks it).
    println!("listening on {addr}");
    loop {
        let (conn, peer): (TcpStream, std::net::SocketAddr) =
            todo!("listener.accept(); on an error, print it and go on");
        if let Err(err) = serve(conn, &mut store, &data) {
            eprintln!("{peer}: {err}");
        }
    }
}
