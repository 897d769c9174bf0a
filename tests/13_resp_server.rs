//! Lesson 13 over real loopback sockets: its RESP scenarios (snapshotted), the commands real
//! clients send when they connect, and hostile RESP: impossible lengths, truncated requests,
//! junk, 10,000 pipelined commands, one byte per write, and a memory budget that holds.
//!
//! The slow stage (`cargo test -- --ignored`) adds real clients nobody here wrote: `redis-cli`
//! (its output compared with its output against a real `redis-server`), the `redis` package from
//! PyPI in a virtual environment under `target/`, and `redis-benchmark`. Missing tools skip those
//! tests with a loud message; in CI (`CI=true`) they fail.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use socket_workbook::harness::{Readiness, ServerProcess, run_lesson, start_lesson};
use socket_workbook::resp::{Limits, Value, decode_reply, encode_request};
use socket_workbook::scenarios::resp;

const LESSON: &str = env!("CARGO_BIN_EXE_13_resp_server");
const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in resp::all() {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &[], &scenario));
    }
}

/// A RESP client for tests: every read has a deadline.
struct Client {
    stream: TcpStream,
    received: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            received: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next reply; panics if none arrives within the timeout or the connection ends first.
    fn reply(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some((value, used)) = decode_reply(&self.received, &Limits::default()).unwrap() {
                self.received.drain(..used);
                return value;
            }
            assert!(Instant::now() < deadline, "no complete reply in {TIMEOUT:?}");
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("reading a reply");
            assert!(
                n > 0,
                "the connection ended; received so far: {:?}",
                self.received
            );
            self.received.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Value {
        self.send(&encode_request(args));
        self.reply()
    }

    /// Everything until the server closes the connection (which it must, within the timeout).
    fn rest_until_closed(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.received);
        self.stream
            .read_to_end(&mut rest)
            .expect("the server did not close the connection");
        rest
    }
}

fn bulk(bytes: &[u8]) -> Value {
    Value::Bulk(Some(bytes.to_vec()))
}

fn simple(text: &str) -> Value {
    Value::Simple(text.as_bytes().to_vec())
}

/// The server still answers a new client.
fn assert_serves(server: &ServerProcess) {
    let mut client = Client::connect(server.addr());
    assert_eq!(client.call(&[b"PING"]), simple("PONG"));
}

/// What redis-cli, redis-benchmark and redis-py send when they connect gets answers they accept.
#[test]
fn what_real_clients_send_on_connect_is_answered() {
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let mut client = Client::connect(server.addr());
    let cases: &[(&[&[u8]], &[u8])] = &[
        (&[b"COMMAND", b"DOCS"], b"*0\r\n"),
        (&[b"COMMAND"], b"*0\r\n"),
        (&[b"CONFIG", b"GET", b"save"], b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
        (
            &[b"config", b"get", b"appendonly"],
            b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
        ),
        (&[b"CONFIG", b"GET", b"maxmemory"], b"*0\r\n"),
        (&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py"], b"+OK\r\n"),
        (&[b"CLIENT", b"SETINFO", b"LIB-VER", b"5.0.8"], b"+OK\r\n"),
        (&[b"SELECT", b"0"], b"+OK\r\n"),
        (&[b"SELECT", b"1"], b"-ERR DB index is out of range\r\n"),
        (
            &[b"HELLO", b"3"],
            b"-ERR unknown command 'HELLO', with args beginning with: '3' \r\n",
        ),
        (&[b"SET", b"k", b"v", b"EX", b"10"], b"-ERR syntax error\r\n"),
        (&[b"GET"], b"-ERR wrong number of arguments for 'get' command\r\n"),
    ];
    for (request, want) in cases {
        client.send(&encode_request(request));
        let got = client.reply();
        assert_eq!(got.to_bytes(), *want, "{request:?}");
    }
}

/// Redis's wording for an unknown command, its truncations included, with `\r\n` inside the
/// name turned into spaces so the error stays one line.
#[test]
fn unknown_commands_are_refused_in_redis_words() {
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let mut client = Client::connect(server.addr());
    let long = vec![b'x'; 200];
    let got = client.call(&[b"FOO\r\nBAR", &long, b"bcd"]);
    let mut want = b"ERR unknown command 'FOO  BAR', with args beginning with: '".to_vec();
    want.extend(&long[..128]);
    want.extend(b"' ");
    assert_eq!(got, Value::Error(want));
}

/// 10,000 commands in one write: 10,000 replies, in order, and the server is not stuck.
#[test]
fn ten_thousand_pipelined_commands_get_their_replies_in_order() {
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let mut client = Client::connect(server.addr());
    let mut batch = Vec::new();
    for i in 0..5_000 {
        let key = format!("key:{i}");
        batch.extend(encode_request(&[
            b"SET",
            key.as_bytes(),
            i.to_string().as_bytes(),
        ]));
        batch.extend(encode_request(&[b"GET", key.as_bytes()]));
    }
    // Written by another thread: the server answers while we send, and neither side may wait
    // for the other with full buffers.
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&batch));
    for i in 0..5_000 {
        assert_eq!(client.reply(), simple("OK"), "reply to SET {i}");
        assert_eq!(client.reply(), bulk(i.to_string().as_bytes()), "reply to GET {i}");
    }
    sender.join().unwrap().unwrap();
    assert_serves(&server);
}

/// A whole conversation written one byte per `write` (with TCP_NODELAY, so most bytes arrive in
/// reads of their own) gets the same replies as written at once.
#[test]
fn one_byte_per_write_gets_the_same_replies() {
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let mut client = Client::connect(server.addr());
    let mut conversation = encode_request(&[&b"SET"[..], b"bin\r\nkey", b"\x00\xff\r\n"]);
    conversation.extend(encode_request(&[&b"GET"[..], b"bin\r\nkey"]));
    conversation.extend(b"EXISTS bin\r\n");
    conversation.extend(encode_request(&[&b"DEL"[..], b"bin\r\nkey", b"other"]));
    for byte in &conversation {
        client.send(std::slice::from_ref(byte));
    }
    assert_eq!(client.reply(), simple("OK"));
    assert_eq!(client.reply(), bulk(b"\x00\xff\r\n"));
    assert_eq!(client.reply(), Value::Integer(0));
    assert_eq!(client.reply(), Value::Integer(1));
}

/// Each of these gets `-ERR Protocol error: ...` and a closed connection, at once (the server
/// never waits for bytes a bad header promised), and the server goes on.
#[test]
fn impossible_lengths_and_junk_get_a_protocol_error_and_a_close() {
    let mut server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n$18446744073709551615\r\n", "invalid bulk length"),
        (b"*1\r\n$9223372036854775808\r\n", "invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),
        (b"*1\r\n$-2\r\n", "invalid bulk length"),
        (b"*-2\r\n", "invalid multibulk length"),
        (b"*99999999999999999999\r\n", "invalid multibulk length"),
        (b"*1048577\r\n", "invalid multibulk length"),
        (b"*2\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*1\r\n$4\r\nPINGjunk", "expected \\r\\n after a bulk string"),
    ];
    for (wire, message) in cases {
        let mut client = Client::connect(server.addr());
        client.send(wire);
        let rest = client.rest_until_closed();
        assert_eq!(
            rest,
            format!("-ERR Protocol error: {message}\r\n").as_bytes(),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
    // 64 KiB without a line end, as inline, as an array count, as a bulk length.
    for (start, message) in [
        (&b""[..], "too big inline request"),
        (b"*1", "too big mbulk count string"),
        (b"*1\r\n$1", "too big bulk count string"),
    ] {
        let mut client = Client::connect(server.addr());
        let mut wire = start.to_vec();
        wire.extend(vec![b'7'; 70_000]);
        client.send(&wire);
        let rest = client.rest_until_closed();
        assert_eq!(rest, format!("-ERR Protocol error: {message}\r\n").as_bytes());
    }
    assert_serves(&server);
    assert!(server.exit_status().is_none(), "the server exited");
}

/// Requests cut short (the client closes in the middle) cost nothing afterwards, and random
/// bytes never crash the server: afterwards it still answers.
#[test]
fn truncated_requests_and_random_junk_never_break_the_server() {
    let mut server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let whole = encode_request(&[&b"SET"[..], b"key", b"value"]);
    for end in 0..whole.len() {
        let mut client = Client::connect(server.addr());
        client.send(&whole[..end]);
        // Closing with a request half sent: the server must forget it.
    }
    let addr = server.addr();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let junk = (
        prop::sample::select(vec![&b""[..], b"*", b"*1\r\n$", b"*2\r\n$3\r\nGET\r\n", b"$"]),
        prop::collection::vec(any::<u8>(), 0..300),
    );
    runner
        .run(&junk, |(start, bytes)| {
            let mut client = Client::connect(addr);
            let mut wire = start.to_vec();
            wire.extend(bytes);
            client.send(&wire);
            // Whatever it answers, it is RESP, or nothing; then the connection goes away.
            drop(client);
            let mut probe = Client::connect(addr);
            prop_assert_eq!(probe.call(&[b"PING"]), simple("PONG"));
            Ok(())
        })
        .unwrap();
    assert!(server.exit_status().is_none(), "the server exited");
    let output = server.finish();
    assert!(
        !output.iter().any(|line| line.text.contains("panicked")),
        "the server panicked"
    );
}

/// The bulk cap is exact, and configurable: `--max-bulk 1000` takes 1,000 bytes, not 1,001.
#[test]
fn the_bulk_cap_is_exact() {
    let server = start_lesson(LESSON, &["--quiet", "--max-bulk", "1000"]).unwrap();
    let mut client = Client::connect(server.addr());
    let value = vec![b'v'; 1000];
    assert_eq!(client.call(&[b"SET", b"big", &value]), simple("OK"));
    assert_eq!(client.call(&[b"GET", b"big"]), bulk(&value));
    client.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1001\r\n");
    assert_eq!(
        client.rest_until_closed(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_serves(&server);
}

/// A value arrives in pieces and the buffer grows with them: 8 MB in one SET, read back whole.
#[test]
fn a_big_value_arrives_in_pieces_and_comes_back_whole() {
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let mut client = Client::connect(server.addr());
    let value: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(client.call(&[b"SET", b"big", &value]), simple("OK"));
    assert_eq!(client.call(&[b"GET", b"big"]), bulk(&value));
}

/// The memory budget for requests holds: 50 clients announce 500 MB values and send a few bytes
/// of them (the server's memory does not move: buffers follow what arrived); one that sends more
/// than the whole budget is told so and closed, while the others are still served.
#[test]
fn the_request_memory_budget_holds() {
    let budget = 4 * 1024 * 1024;
    let mut server = start_lesson(LESSON, &["--quiet", "--request-memory", &budget.to_string()]).unwrap();
    let pid = server.pid();
    let before = common::concurrent::resident_kib(pid);
    let mut announcers: Vec<Client> = (0..50)
        .map(|_| {
            let mut client = Client::connect(server.addr());
            client.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nsome bytes of it");
            client
        })
        .collect();
    assert_serves(&server);
    let during = common::concurrent::resident_kib(pid);
    assert!(
        during < before + 8 * 1024,
        "resident memory grew from {before} KiB to {during} KiB for 50 announced 500 MB values"
    );

    let mut greedy = Client::connect(server.addr());
    greedy.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n");
    // Written by another thread, read here at once: the server refuses while we are still
    // sending, and closes with our bytes unread, which may reset the connection later.
    let mut writer = greedy.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(2 * budget / chunk.len()) {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match greedy.stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            other => panic!(
                "no refusal, only {:?} ({other:?})",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&line),
        "-ERR the server's memory for unanswered requests is used up\r\n"
    );
    sender.join().unwrap();
    assert_serves(&server);
    // The announcers are still connected and can finish a short request.
    announcers.truncate(1);
    assert!(server.exit_status().is_none(), "the server exited");
}

/// Over `--max-connections`, a client is told so in RESP, as Redis words it, and disconnected;
/// the connected client is still served.
#[test]
fn a_client_over_the_cap_gets_a_resp_error() {
    let server = start_lesson(LESSON, &["--max-connections", "1"]).unwrap();
    let mut first = Client::connect(server.addr());
    assert_eq!(first.call(&[b"PING"]), simple("PONG"));
    let mut second = Client::connect(server.addr());
    assert_eq!(
        second.rest_until_closed(),
        b"-ERR max number of clients reached\r\n"
    );
    assert_eq!(first.call(&[b"PING"]), simple("PONG"));
}

/// Ctrl-C (SIGINT) stops the server cleanly, with a client connected: exit code 0.
#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let mut server = start_lesson(LESSON, &[]).unwrap();
    let mut client = Client::connect(server.addr());
    assert_eq!(client.call(&[b"SET", b"a", b"1"]), simple("OK"));
    common::concurrent::interrupt(&server);
    let status = server.wait_exit(TIMEOUT).expect("still running 5 s after SIGINT");
    assert_eq!(status.code(), Some(0));
    assert_eq!(client.rest_until_closed(), b"");
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("13_resp_server");
}

// ----- Real clients (slow stage) -----

/// Is `program` installed? Locally a missing tool skips the test with a loud message; in CI
/// (`CI=true`, where `.ci/run` installs the tools) it fails.
fn have_tool(program: &str, install: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        let message = format!("`{program}` is not installed ({install}); this test needs it");
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("{message}");
        }
        eprintln!("\n!!!!!! SKIPPED: {message} !!!!!!\n");
    }
    found
}

/// A `redis-server` on a free port, persistence off, ready when its port listens (it prints no
/// line to wait for when stdout is not a terminal), stopped when dropped.
fn start_redis_server() -> ServerProcess {
    let port = common::unused_port();
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--bind",
        "127.0.0.1",
    ]);
    ServerProcess::start(command, Readiness::PortListening(port), TIMEOUT)
        .unwrap_or_else(|err| panic!("{err}"))
}

fn redis_cli(port: u16, args: &[&str]) -> (String, String, Option<i32>) {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.code(),
    )
}

/// `redis-cli -p PORT set k v` / `get k` / `del k` / ... print exactly what they print against
/// a real redis-server, errors included.
#[test]
#[ignore = "slow: runs redis-cli against the lesson and a real redis-server; run by `cargo test -- --ignored`"]
fn redis_cli_prints_the_same_as_against_redis() {
    if !(have_tool("redis-cli", "apt-get install redis-tools")
        && have_tool("redis-server", "apt-get install redis-server"))
    {
        return;
    }
    let lesson = start_lesson(LESSON, &["--quiet"]).unwrap();
    let redis = start_redis_server();
    let conversation: &[&[&str]] = &[
        &["set", "k", "v"],
        &["get", "k"],
        &["exists", "k", "k", "nothing"],
        &["del", "k"],
        &["get", "k"],
        &["del", "k"],
        &["ping"],
        &["ping", "hello world"],
        &["echo", "two\nlines"],
        &["set", "k"],
        &["fly", "away"],
    ];
    for args in conversation {
        let ours = redis_cli(lesson.addr().port(), args);
        let theirs = redis_cli(redis.addr().port(), args);
        assert_eq!(ours, theirs, "redis-cli {}", args.join(" "));
    }
}

/// A Python virtual environment under `target/` with the pinned `redis` package, made once.
fn redis_py_venv() -> Option<PathBuf> {
    if !have_tool("python3", "apt-get install python3 python3-venv") {
        return None;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redis-py-venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import redis; assert redis.__version__ == '5.0.8'"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !ready() {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        let installed = made.is_ok_and(|status| status.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "redis==5.0.8"])
                .status()
                .is_ok_and(|status| status.success());
        if !installed || !ready() {
            let message = "could not make a virtual environment with redis==5.0.8 (python3 -m venv needs python3-venv; pip needs the network)";
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("{message}");
            }
            eprintln!("\n!!!!!! SKIPPED: {message} !!!!!!\n");
            return None;
        }
    }
    Some(python)
}

/// redis-py, the `redis` package from PyPI: set, get, a binary value, a pipeline of 1,000
/// commands, delete, and an error reply raised as `ResponseError`.
#[test]
#[ignore = "slow: sets up a Python virtual environment with redis-py; run by `cargo test -- --ignored`"]
fn redis_py_works_against_the_lesson() {
    let Some(python) = redis_py_venv() else {
        return;
    };
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let script = r#"
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=5)
assert r.ping() is True
assert r.set("greeting", "hello") is True
assert r.get("greeting") == b"hello"
assert r.get("missing") is None
blob = bytes(range(256)) + b"\r\n$-1\r\n"
assert r.set(b"bin\x00key", blob) is True
assert r.get(b"bin\x00key") == blob
pipe = r.pipeline(transaction=False)
for i in range(500):
    pipe.set(f"key:{i}", i)
    pipe.get(f"key:{i}")
replies = pipe.execute()
assert len(replies) == 1000
assert replies[0::2] == [True] * 500
assert replies[1::2] == [str(i).encode() for i in range(500)]
assert r.delete("greeting", "missing", b"bin\x00key") == 2
assert r.exists("greeting") == 0
try:
    r.execute_command("FLY", "away")
    raise SystemExit("an unknown command raised nothing")
except redis.exceptions.ResponseError as err:
    assert "unknown command" in str(err), err
print("redis-py: all good")
"#;
    let output = Command::new(python)
        .args(["-c", script, &server.addr().port().to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "redis-py failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "redis-py: all good\n");
}

/// `redis-benchmark -t set,get -n 20000 -q` runs against the lesson with no error and no
/// warning (it asks `CONFIG GET save` and `appendonly` first).
#[test]
#[ignore = "slow: runs redis-benchmark against the lesson; run by `cargo test -- --ignored`"]
fn redis_benchmark_runs_without_errors() {
    if !have_tool("redis-benchmark", "apt-get install redis-tools") {
        return;
    }
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let output = Command::new("redis-benchmark")
        .args([
            "-p",
            &server.addr().port().to_string(),
            "-t",
            "set,get",
            "-n",
            "20000",
            "-q",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "redis-benchmark failed:\n{stdout}{stderr}"
    );
    let text = format!("{stdout}{stderr}");
    for bad in ["ERR", "WARNING", "Error", "error"] {
        assert!(!text.contains(bad), "redis-benchmark printed {bad:?}:\n{text}");
    }
    // Its final lines: "SET: 41666.67 requests per second, p50=0.599 msec".
    for command in ["SET:", "GET:"] {
        assert!(
            text.lines()
                .any(|line| line.contains(command) && line.contains("requests per second")),
            "no {command} result:\n{text}"
        );
    }
}
