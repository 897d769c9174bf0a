//! Property tests for any key-value server lesson (05, and later ones that serve the same
//! protocol): the random inputs live here because they need proptest; the model and the
//! conversation are in `socket_workbook::scenarios::kv`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use socket_workbook::escape::escape_abbreviated;
use socket_workbook::harness::{Connection, Expect, ServerProcess, start_lesson};
use socket_workbook::kv::MAX_LINE;
use socket_workbook::scenarios::kv::{MODEL_KEYS, ModelCommand, ModelLine, check_against_model};

/// Every read waits at most this long. Short, so that a failing case shrinks in reasonable time.
const TIMEOUT: Duration = Duration::from_secs(2);

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(&MODEL_KEYS[..]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9 ]{0,12}",
        2 => "[xé日 ]{0,4}",
        1 => Just("OK".to_string()),
        1 => Just("ERROR x".to_string()),
    ]
}

/// Lines every correct server answers with an error line, storing nothing.
fn malformed() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![
        &b""[..],
        b"FLY a",
        b"GET",
        b"GET a b",
        b"DELETE",
        b"DELETE a b",
        b"SET",
        b"GET \xff",
        b"SET a \xc3",
    ])
    .prop_map(<[u8]>::to_vec)
}

fn command() -> impl Strategy<Value = ModelCommand> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(key, value)| ModelCommand::Set { key, value }),
        3 => key().prop_map(|key| ModelCommand::Get { key }),
        2 => key().prop_map(|key| ModelCommand::Delete { key }),
        1 => malformed().prop_map(ModelCommand::Malformed),
    ]
}

fn line() -> impl Strategy<Value = ModelLine> {
    (command(), prop::bool::weighted(0.2), prop::bool::weighted(0.2)).prop_map(
        |(command, lowercase, crlf)| ModelLine {
            command,
            lowercase,
            crlf,
        },
    )
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // Each failing case can wait for a read timeout; stop shrinking after a while.
        max_shrink_time: 30_000,
        ..Config::default()
    })
}

/// Random command sequences, sent over a real connection in random-sized writes (so commands
/// arrive split and pipelined), get the replies a `HashMap` model predicts. One server serves
/// every case, as one server serves every client.
pub fn assert_server_matches_model(program: &str, args: &[&str]) {
    let mut server = start_lesson(program, args).unwrap_or_else(|err| panic!("{err}"));
    let addr = server.addr();
    let strategy = (vec(line(), 1..40), vec(1usize..80, 1..6));
    let result = runner(96).run(&strategy, |(lines, write_sizes)| {
        check_against_model(addr, &lines, &write_sizes, TIMEOUT).map_err(TestCaseError::fail)
    });
    if let Err(err) = result {
        panic!("the server's replies differ from the model: {err}");
    }
    assert!(
        server.exit_status().is_none(),
        "the server exited: {:?}",
        server.exit_status()
    );
}

/// Pieces of which hostile input is made: random bytes, and fragments that look like commands.
fn junk() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        vec(any::<u8>(), 1..16),
        prop::sample::select(vec![
            &b"SET "[..],
            b"GET ",
            b"DELETE ",
            b"set",
            b" ",
            b"\n",
            b"\r",
            b"\r\n",
            b"\0",
            b"\xff",
            b"\xc3",
            b"ERROR",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    vec(piece, 0..120).prop_map(|pieces| pieces.concat())
}

/// Whatever bytes a client sends (short of the line cap), the server answers one line per line,
/// and then still answers correctly. Every case uses a new connection to one server.
pub fn assert_server_survives_junk(program: &str, args: &[&str]) {
    let mut server = start_lesson(program, args).unwrap_or_else(|err| panic!("{err}"));
    let addr = server.addr();
    let result = runner(64).run(&junk(), |mut junk| {
        junk.push(b'\n');
        let lines = junk.iter().filter(|&&b| b == b'\n').count();
        let mut conn = Connection::connect(addr, TIMEOUT).map_err(|e| TestCaseError::fail(e.to_string()))?;
        conn.send(&junk).map_err(|e| TestCaseError::fail(e.to_string()))?;
        conn.send(b"SET probe alive\nGET probe\n")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for i in 0..lines {
            let reply = conn.read_line(TIMEOUT, 1024 * 1024);
            prop_assert!(
                reply.bytes.ends_with(b"\n"),
                "reply {} of {lines} is not a line: {:?} ({:?})",
                i + 1,
                String::from_utf8_lossy(&reply.bytes),
                reply.end
            );
        }
        for want in ["OK\n", "alive\n"] {
            let reply = conn.read_line(TIMEOUT, 1024);
            prop_assert!(
                Expect::exact(want).check(&reply.bytes).is_ok(),
                "after the junk, expected {want:?}, got {:?}",
                String::from_utf8_lossy(&reply.bytes)
            );
        }
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    assert!(server.exit_status().is_none(), "the server exited");
}

/// How long the hostile-client checks below wait for one thing to happen.
const HOSTILE_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks `server` on a new connection for `key` and checks the reply.
pub fn assert_serves(server: &ServerProcess, key: &str, want: &str) {
    let mut conn = Connection::connect(server.addr(), HOSTILE_TIMEOUT).unwrap();
    conn.send(format!("GET {key}\n").as_bytes()).unwrap();
    let reply = conn.read_line(HOSTILE_TIMEOUT, 2 * MAX_LINE);
    assert!(
        reply.bytes == want.as_bytes(),
        "GET {key}: expected {}, got {} ({:?})",
        escape_abbreviated(want.as_bytes(), 60),
        escape_abbreviated(&reply.bytes, 60),
        reply.end
    );
}

/// A client that sends without end and never reads: the server hangs up after a bounded drain
/// and serves the next client.
pub fn assert_flood_is_cut_off(program: &str) {
    let mut server = start_lesson(program, &[]).unwrap();
    let mut flood = TcpStream::connect(server.addr()).unwrap();
    flood.set_write_timeout(Some(HOSTILE_TIMEOUT)).unwrap();
    let flooder = thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        // Ends when the server resets the connection (or, if something is wrong, on the timeout).
        for _ in 0..1024 {
            if flood.write_all(&chunk).is_err() {
                return true;
            }
        }
        false
    });
    assert_serves(&server, "anything", "ERROR no such key\n");
    assert!(flooder.join().unwrap(), "the server kept reading 64 MiB");
    assert!(server.wait_for_output("#1 disconnected", HOSTILE_TIMEOUT));
    assert!(server.exit_status().is_none());
}

/// A client that pipelines big replies and vanishes without reading them: the server notices
/// (its write fails) and serves the next client.
pub fn assert_vanishing_client_is_survived(program: &str) {
    let mut server = start_lesson(program, &[]).unwrap();
    let mut vanishing = TcpStream::connect(server.addr()).unwrap();
    let value = "v".repeat(60 * 1024);
    let mut commands = format!("SET big {value}\n");
    commands.push_str(&"GET big\n".repeat(200));
    vanishing.write_all(commands.as_bytes()).unwrap();
    // Read one byte, so the server is surely writing; the unread rest makes our close a reset.
    vanishing.set_read_timeout(Some(HOSTILE_TIMEOUT)).unwrap();
    vanishing.read_exact(&mut [0u8; 1]).unwrap();
    drop(vanishing);
    assert_serves(&server, "big", &format!("{value}\n"));
    assert!(server.wait_for_output("#1 disconnected abruptly", HOSTILE_TIMEOUT));
    assert!(server.exit_status().is_none());
}
