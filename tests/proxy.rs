//! `workbook proxy` and its library, over real loopback sockets: one snapshot transcript per kind
//! of weather (each run twice with the same seed, and the two runs must match), lessons 05 and 06
//! through a proxy that slices every byte, and the hostile inputs the servers survive (junk,
//! floods, half-closes, connection churn) with the proxy's descriptors counted.
//!
//! Every read has a timeout; nothing sleeps to wait for readiness (tests wait for log lines).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket_workbook::escape::escape_abbreviated;
use socket_workbook::harness::{Readiness, ServerProcess, stable_tokens, start_lesson};
use socket_workbook::proxy::{self, ProxyConfig, ProxyHandle};

const LESSON_05: &str = env!("CARGO_BIN_EXE_05_kv_server");
const LESSON_06: &str = env!("CARGO_BIN_EXE_06_kv_client");
const WORKBOOK: &str = env!("CARGO_BIN_EXE_workbook");

/// How long anything that should happen may take.
const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// A server to forward to, and clients
// ---------------------------------------------------------------------------------------------

/// What the upstream test server does with what it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Sends every read back; on end of stream, shuts down its sending side.
    Echo,
    /// Reads nothing at all: its buffers fill up.
    Deaf,
}

/// A TCP server in threads (one per connection) that tells, for each connection, everything it
/// received and how the connection ended: `server got "hello" then end of stream`.
struct Upstream {
    addr: SocketAddr,
    stories: Arc<(Mutex<Vec<String>>, Condvar)>,
    /// The sockets of a `Deaf` server, so that a test can close them.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Upstream {
    fn start(mode: Mode) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stories: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (thread_stories, thread_held) = (Arc::clone(&stories), Arc::clone(&held));
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if mode == Mode::Deaf {
                    thread_held.lock().unwrap().push(conn);
                    continue;
                }
                let stories = Arc::clone(&thread_stories);
                thread::spawn(move || {
                    let story = echo(conn);
                    stories.0.lock().unwrap().push(story);
                    stories.1.notify_all();
                });
            }
        });
        Upstream { addr, stories, held }
    }

    /// Waits for `n` connections to have ended, and returns their stories.
    fn stories(&self, n: usize) -> Vec<String> {
        let (lock, changed) = &*self.stories;
        let (stories, timeout) = changed
            .wait_timeout_while(lock.lock().unwrap(), TIMEOUT, |stories| stories.len() < n)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "only {} connections ended: {stories:?}",
            stories.len()
        );
        stories.clone()
    }
}

fn echo(mut conn: TcpStream) -> String {
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let end = loop {
        match conn.read(&mut buf) {
            Ok(0) => {
                let _ = conn.shutdown(Shutdown::Write);
                break "end of stream".to_string();
            }
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if let Err(err) = conn.write_all(&buf[..n]) {
                    break describe(&err);
                }
            }
            Err(err) => break describe(&err),
        }
    };
    if got.is_empty() {
        format!("server got nothing, then {end}")
    } else {
        format!("server got {} then {end}", escape_abbreviated(&got, 60))
    }
}

/// `connection reset (ECONNRESET)` and the like: the same words on every run.
fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionReset => "connection reset (ECONNRESET)".to_string(),
        io::ErrorKind::ConnectionRefused => "connection refused (ECONNREFUSED)".to_string(),
        io::ErrorKind::BrokenPipe => "broken pipe (EPIPE)".to_string(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => err.to_string(),
    }
}

/// Reads until `want` bytes arrived, the stream ended, it failed, or `wait` passed. Returns the
/// bytes and how the read ended.
fn read_up_to(stream: &mut TcpStream, want: usize, wait: Duration) -> (Vec<u8>, String) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while got.len() < want {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return (got, format!("nothing more for {} ms", wait.as_millis()));
        };
        stream.set_read_timeout(Some(left)).unwrap();
        let room = (want - got.len()).min(buf.len());
        match stream.read(&mut buf[..room]) {
            Ok(0) => return (got, "end of stream".to_string()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return (got, format!("nothing more for {} ms", wait.as_millis()));
            }
            Err(err) => return (got, describe(&err)),
        }
    }
    (got, "complete".to_string())
}

/// `client < "hello" then end of stream`
fn received(bytes: &[u8], end: &str) -> String {
    match end {
        "complete" => format!("client < {}", escape_abbreviated(bytes, 60)),
        _ if bytes.is_empty() => format!("client < {end}"),
        _ => format!("client < {} then {end}", escape_abbreviated(bytes, 60)),
    }
}

/// A proxy in this process, to `to`, with `flags` as `workbook proxy` takes them.
fn start_proxy(to: SocketAddr, flags: &[&str]) -> ProxyHandle {
    let mut all = vec!["--to".to_string(), to.to_string()];
    all.extend(flags.iter().map(|f| f.to_string()));
    let config = ProxyConfig::from_flags(&all).unwrap_or_else(|why| panic!("{why}"));
    proxy::start(config).unwrap()
}

/// The proxy's address becomes `<proxy>`, the server's `<server>`, any other `<addr>`.
fn tokens(line: &str, proxy: SocketAddr, server: SocketAddr) -> String {
    let line = line
        .replace(&proxy.to_string(), "<proxy>")
        .replace(&server.to_string(), "<server>");
    stable_tokens(&line, proxy, &[])
}

/// A story for a snapshot: the title, the command, what the client and the server saw, and the
/// proxy's log once `last_line` is in it.
fn story(
    title: &str,
    flags: &[&str],
    client: &[String],
    server: &[String],
    proxy: ProxyHandle,
    upstream: SocketAddr,
    last_line: &str,
) -> String {
    assert!(
        proxy.wait_for_log(last_line, TIMEOUT),
        "no {last_line:?} in the log:\n{}",
        proxy.log_lines().join("\n")
    );
    let addr = proxy.addr();
    let log = proxy.stop();
    let mut text = format!("# {title}\n$ workbook proxy --to <server> {}\n", flags.join(" "));
    for line in client.iter().chain(server) {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("--- proxy log ---\n");
    for line in log
        .iter()
        .filter(|line| !line.contains("closed: the proxy is stopping"))
    {
        text.push_str(&tokens(line, addr, upstream));
        text.push('\n');
    }
    text
}

/// Runs `scenario` twice and checks that both runs tell the same story: the same seed, the same
/// traffic, the same transcript. Returns it.
fn twice(scenario: impl Fn() -> String) -> String {
    let first = scenario();
    let second = scenario();
    assert_eq!(first, second, "two runs with the same seed differ");
    first
}

// ---------------------------------------------------------------------------------------------
// One snapshot per kind of weather
// ---------------------------------------------------------------------------------------------

/// Issue 14's "done when": lessons 05 and 06 through `--slice 1`. Each byte leaves in a write
/// of its own, the log shows them one by one, and the commands still work; so does a client that
/// types its commands one at a time, as with `nc`.
#[test]
fn lesson_05_and_06_work_through_one_byte_slices() {
    let transcript = twice(|| {
        let server = start_lesson(LESSON_05, &[]).unwrap();
        let flags = ["--slice", "1", "--seed", "1"];
        let proxy = start_proxy(server.addr(), &flags);
        let port = proxy.addr().port().to_string();
        let mut text = format!(
            "# 05_kv_server behind `workbook proxy --slice 1`: one byte per write, both ways\n\
             $ 05_kv_server --port 0\n$ workbook proxy --to <server> {}\n",
            flags.join(" ")
        );
        for (n, command) in [["SET", "a", "1"], ["GET", "a", ""]].iter().enumerate() {
            let args: Vec<&str> = command.iter().copied().filter(|a| !a.is_empty()).collect();
            let output = Command::new(LESSON_06)
                .args(["--port", &port])
                .args(&args)
                .output()
                .unwrap();
            assert!(output.status.success(), "06_kv_client {args:?}: {output:?}");
            text.push_str(&format!(
                "$ 06_kv_client --port <proxy's port> {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            ));
            // The next client comes after this one is gone, as in a terminal.
            assert!(proxy.wait_for_log(&format!("c{} closed", n + 1), TIMEOUT));
        }
        // Like `nc 127.0.0.1 <port>`: type a line, read the reply, then Ctrl-D.
        text.push_str("$ nc 127.0.0.1 <proxy's port>\n");
        let mut nc = TcpStream::connect(proxy.addr()).unwrap();
        for (line, reply) in [("GET a\n", "1\n"), ("DELETE a\n", "OK\n")] {
            nc.write_all(line.as_bytes()).unwrap();
            let (got, end) = read_up_to(&mut nc, reply.len(), TIMEOUT);
            assert_eq!((got.as_slice(), end.as_str()), (reply.as_bytes(), "complete"));
            text.push_str(&format!("{}{}", line, reply));
        }
        nc.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_up_to(&mut nc, 1, TIMEOUT).1, "end of stream");
        text.push_str("(Ctrl-D)\n");
        assert!(proxy.wait_for_log("c3 closed", TIMEOUT));
        assert!(server.wait_for_output("#3 disconnected", TIMEOUT));
        let (proxy_addr, server_addr) = (proxy.addr(), server.addr());
        text.push_str("--- proxy log ---\n");
        for line in proxy.stop() {
            text.push_str(&tokens(&line, proxy_addr, server_addr));
            text.push('\n');
        }
        text.push_str("--- server output ---\n");
        for line in server.finish() {
            text.push_str(&tokens(&line.text, proxy_addr, server_addr));
            text.push('\n');
        }
        text
    });
    // One line per byte: 8 + 3, 6 + 2, then 15 + 5.
    assert_eq!(transcript.matches(" 1 byte at ").count(), 39, "{transcript}");
    insta::assert_snapshot!("slice", transcript);
}

/// The book's recipes, with lessons 05 and 06: what a client meets when the server's reply is
/// cut off by a reset, and when the server goes silent. (Each weather kind is also checked twice
/// with the test server above; these show a real client's message and exit code.)
#[test]
fn lesson_06_meets_a_reset_and_a_silent_server() {
    let recipes: [(&str, &[&str], &[&str], &str); 2] = [
        (
            "lesson-06-reset",
            &["--direction", "down", "--reset-after", "1", "--seed", "1"],
            &[],
            "c1 reset:",
        ),
        (
            "lesson-06-stall",
            &["--direction", "down", "--stall-after", "0", "--seed", "1"],
            &["--timeout", "1"],
            "c1 closed",
        ),
    ];
    for (name, flags, client_flags, last_line) in recipes {
        let server = start_lesson(LESSON_05, &[]).unwrap();
        let proxy = start_proxy(server.addr(), flags);
        let port = proxy.addr().port().to_string();
        let output = Command::new(LESSON_06)
            .args(["--port", &port])
            .args(client_flags)
            .args(["GET", "a"])
            .output()
            .unwrap();
        assert!(proxy.wait_for_log(last_line, TIMEOUT), "{:?}", proxy.log_lines());
        assert!(server.wait_for_output("#1 disconnected", TIMEOUT));
        let (proxy_addr, server_addr) = (proxy.addr(), server.addr());
        let mut text = format!(
            "$ 05_kv_server --port 0\n$ workbook proxy --to <server> {}\n\
             $ 06_kv_client --port <proxy's port> {}GET a\n{}{}(exit code {})\n--- proxy log ---\n",
            flags.join(" "),
            client_flags.iter().map(|f| format!("{f} ")).collect::<String>(),
            String::from_utf8_lossy(&output.stdout),
            // Only the address: which error the client met is the point here.
            String::from_utf8_lossy(&output.stderr).replace(&proxy_addr.to_string(), "<proxy>"),
            output.status.code().unwrap_or(-1),
        );
        for line in proxy.stop() {
            text.push_str(&tokens(&line, proxy_addr, server_addr));
            text.push('\n');
        }
        text.push_str("--- server output ---\n");
        for line in server.finish() {
            let line = line.text.replace(&server_addr.to_string(), "<server>");
            text.push_str(&stable_tokens(&line, server_addr, &[]));
            text.push('\n');
        }
        insta::assert_snapshot!(name, text);
    }
}

/// Without `--slice`, one delay per direction of a connection, chosen by the seed and logged
/// when the first byte arrives.
#[test]
fn latency_delays_each_direction_by_a_seeded_amount() {
    let transcript = twice(|| {
        let upstream = Upstream::start(Mode::Echo);
        let flags = ["--latency-ms", "40", "--jitter-ms", "20", "--seed", "7"];
        let proxy = start_proxy(upstream.addr, &flags);
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        let started = Instant::now();
        client.write_all(b"ping\n").unwrap();
        let (got, end) = read_up_to(&mut client, 5, TIMEOUT);
        let round_trip = started.elapsed();
        // Two delays of at least 20 ms each; generous bounds, not a stopwatch.
        assert!(round_trip >= Duration::from_millis(40), "{round_trip:?}");
        let lines = vec!["client > \"ping\\n\"".to_string(), received(&got, &end)];
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_up_to(&mut client, 1, TIMEOUT).1, "end of stream");
        story(
            "latency: each direction of a connection gets its own delay, 40 ± 20 ms",
            &flags,
            &lines,
            &upstream.stories(1),
            proxy,
            upstream.addr,
            "c1 closed",
        )
    });
    insta::assert_snapshot!("latency", transcript);
}

/// With `--slice`, every piece gets its own delay; a piece cut short by the end of the client's
/// message is logged when the stream ends.
#[test]
fn sliced_latency_delays_each_piece_by_a_seeded_amount() {
    let transcript = twice(|| {
        let upstream = Upstream::start(Mode::Echo);
        let flags = [
            "--slice",
            "4",
            "--latency-ms",
            "20",
            "--jitter-ms",
            "15",
            "--seed",
            "7",
        ];
        let proxy = start_proxy(upstream.addr, &flags);
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        client.write_all(b"hello, world\n").unwrap();
        let (got, end) = read_up_to(&mut client, 13, TIMEOUT);
        let lines = vec!["client > \"hello, world\\n\"".to_string(), received(&got, &end)];
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_up_to(&mut client, 1, TIMEOUT).1, "end of stream");
        story(
            "sliced latency: pieces of 4 bytes, each delayed 20 ± 15 ms",
            &flags,
            &lines,
            &upstream.stories(1),
            proxy,
            upstream.addr,
            "c1 closed",
        )
    });
    insta::assert_snapshot!("latency-sliced", transcript);
}

/// `--bandwidth`: 5,000 bytes at 20,000 bytes per second leave in pieces of 1,000 (a twentieth
/// of a second's worth), 50 ms apart: at least 200 ms one way (the echo comes back unthrottled).
/// Generous bounds: this is a limit, not a stopwatch.
#[test]
fn bandwidth_limits_the_rate() {
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &["--direction", "up", "--bandwidth", "20000"]);
    let started = Instant::now();
    round_trip(proxy.addr(), &junk(5, 5000));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "5,000 bytes at 20,000 bytes/s took {took:?}"
    );
    assert!(took < TIMEOUT, "{took:?}");
}

/// The server's reply ends after 5 bytes: the client reads end of stream in the middle of it.
#[test]
fn close_after_n_bytes_ends_the_stream_there() {
    let transcript = twice(|| {
        let upstream = Upstream::start(Mode::Echo);
        let flags = ["--direction", "down", "--close-after", "5", "--seed", "7"];
        let proxy = start_proxy(upstream.addr, &flags);
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        client.write_all(b"hello, world\n").unwrap();
        let (got, end) = read_up_to(&mut client, 13, TIMEOUT);
        let lines = vec!["client > \"hello, world\\n\"".to_string(), received(&got, &end)];
        drop(client);
        story(
            "close after 5 bytes, server to client: the reply ends early with a FIN",
            &flags,
            &lines,
            &upstream.stories(1),
            proxy,
            upstream.addr,
            "c1 closed",
        )
    });
    insta::assert_snapshot!("close-after", transcript);
}

/// After 5 bytes towards the server, both sides get a reset: the server reads those 5 bytes, then
/// ECONNRESET; the client, waiting for its echo, ECONNRESET.
#[test]
fn reset_after_n_bytes_resets_both_sides() {
    let transcript = twice(reset_after_scenario);
    insta::assert_snapshot!("reset-after", transcript);
}

fn reset_after_scenario() -> String {
    let upstream = Upstream::start(Mode::Echo);
    let flags = ["--direction", "up", "--reset-after", "5", "--seed", "7"];
    let proxy = start_proxy(upstream.addr, &flags);
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    client.write_all(b"hello, world\n").unwrap();
    let (got, end) = read_up_to(&mut client, 13, TIMEOUT);
    // The proxy resets both sides right after writing "hello" to the server, before it reads
    // anything from it: the echo never reaches the client.
    let lines = vec!["client > \"hello, world\\n\"".to_string(), received(&got, &end)];
    assert!(got.is_empty(), "{lines:?}");
    story(
        "reset after 5 bytes, client to server: both sides get an RST",
        &flags,
        &lines,
        &upstream.stories(1),
        proxy,
        upstream.addr,
        "c1 reset:",
    )
}

/// `--reset-after-ms`: the connection works, then is reset, whatever is going on.
#[test]
fn reset_after_a_time_resets_a_working_connection() {
    let transcript = twice(|| {
        let upstream = Upstream::start(Mode::Echo);
        let flags = ["--reset-after-ms", "200", "--seed", "7"];
        let proxy = start_proxy(upstream.addr, &flags);
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        client.write_all(b"hi\n").unwrap();
        let (got, end) = read_up_to(&mut client, 3, TIMEOUT);
        let mut lines = vec!["client > \"hi\\n\"".to_string(), received(&got, &end)];
        let (got, end) = read_up_to(&mut client, 1, TIMEOUT);
        lines.push(received(&got, &end));
        story(
            "reset after 200 ms: a working connection is reset",
            &flags,
            &lines,
            &upstream.stories(1),
            proxy,
            upstream.addr,
            "c1 reset:",
        )
    });
    insta::assert_snapshot!("reset-after-time", transcript);
}

/// `--stall-after 0`: the black hole. The client's request never arrives, no reply ever comes,
/// and the client gives up after its own timeout; then the proxy closes both sides.
#[test]
fn stall_forwards_nothing_until_the_client_gives_up() {
    let transcript = twice(|| {
        let upstream = Upstream::start(Mode::Echo);
        let flags = ["--stall-after", "0", "--seed", "7"];
        let proxy = start_proxy(upstream.addr, &flags);
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        client.write_all(b"GET a\n").unwrap();
        let (got, end) = read_up_to(&mut client, 1, Duration::from_millis(300));
        let lines = vec![
            "client > \"GET a\\n\"".to_string(),
            received(&got, &end),
            "client closes".to_string(),
        ];
        drop(client);
        story(
            "stall after 0 bytes: a black hole that makes the client wait",
            &flags,
            &lines,
            &upstream.stories(1),
            proxy,
            upstream.addr,
            "c1 closed",
        )
    });
    insta::assert_snapshot!("stall", transcript);
}

/// `--refuse-for-ms`: connecting fails with "connection refused" until the time is up, then
/// works.
#[test]
fn refuse_makes_connections_fail_for_a_while() {
    let transcript = twice(|| {
        let upstream = Upstream::start(Mode::Echo);
        let flags = ["--refuse-for-ms", "500", "--seed", "7"];
        let proxy = start_proxy(upstream.addr, &flags);
        let mut lines = Vec::new();
        let refused = TcpStream::connect(proxy.addr()).map(|_| ()).unwrap_err();
        lines.push(format!("client connects: {}", describe(&refused)));
        assert!(proxy.wait_for_log("accepting connections again", TIMEOUT));
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        lines.push("client connects (after the proxy's \"accepting connections again\")".to_string());
        client.write_all(b"hi\n").unwrap();
        let (got, end) = read_up_to(&mut client, 3, TIMEOUT);
        lines.push("client > \"hi\\n\"".to_string());
        lines.push(received(&got, &end));
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_up_to(&mut client, 1, TIMEOUT).1, "end of stream");
        story(
            "refuse for 500 ms: nothing listens, then the proxy accepts",
            &flags,
            &lines,
            &upstream.stories(1),
            proxy,
            upstream.addr,
            "c1 closed",
        )
    });
    insta::assert_snapshot!("refuse", transcript);
}

// ---------------------------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------------------------

/// A UDP socket that stands for the server and receives whatever comes.
fn udp_sink() -> UdpSocket {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(TIMEOUT)).unwrap();
    sink
}

/// Sends `ping 1` to `ping 10` through a UDP proxy with `flags`, waits until the proxy has logged
/// all ten, then receives as many datagrams as the log says went through. Returns the story.
fn udp_one_way(title: &str, flags: &[&str], payload: impl Fn(usize) -> Vec<u8>) -> String {
    let sink = udp_sink();
    let to = sink.local_addr().unwrap();
    let mut all = vec!["--udp"];
    all.extend_from_slice(flags);
    let proxy = start_proxy(to, &all);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 1..=10 {
        client.send_to(&payload(i), proxy.addr()).unwrap();
    }
    assert!(
        proxy.wait_for_log_count(" c1 > ", 10, TIMEOUT),
        "{:?}",
        proxy.log_lines()
    );
    let log = proxy.log_lines();
    let datagram_lines: Vec<&String> = log.iter().filter(|line| line.contains(" c1 > ")).collect();
    let expected: usize = datagram_lines
        .iter()
        .map(|line| {
            if line.ends_with("dropped") {
                0
            } else if line.contains("duplicated") {
                2
            } else {
                1
            }
        })
        .sum();
    let mut lines = vec!["client sends 10 datagrams, one right after the other".to_string()];
    let mut buf = [0u8; 2048];
    for _ in 0..expected {
        let n = sink.recv(&mut buf).expect("a datagram the log says was sent");
        lines.push(format!("server receives {}", escape_abbreviated(&buf[..n], 60)));
    }
    // Nothing else comes: the log told the whole story.
    sink.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert!(sink.recv(&mut buf).is_err(), "an extra datagram arrived");
    let mut all_flags = vec!["--udp"];
    all_flags.extend_from_slice(flags);
    story(title, &all_flags, &lines, &[], proxy, to, "")
}

fn ping(i: usize) -> Vec<u8> {
    format!("ping {i}").into_bytes()
}

#[test]
fn udp_drop_loses_a_seeded_share_of_datagrams() {
    let transcript = twice(|| {
        udp_one_way(
            "UDP, drop 30%: which datagrams are lost depends only on the seed",
            &["--drop", "30%", "--seed", "13"],
            ping,
        )
    });
    assert!(transcript.contains("dropped"), "{transcript}");
    insta::assert_snapshot!("udp-drop", transcript);
}

#[test]
fn udp_duplicate_sends_a_seeded_share_twice() {
    let transcript = twice(|| {
        udp_one_way(
            "UDP, duplicate 30%: some datagrams arrive twice",
            &["--duplicate", "30%", "--seed", "4"],
            ping,
        )
    });
    assert!(transcript.contains("duplicated"), "{transcript}");
    insta::assert_snapshot!("udp-duplicate", transcript);
}

/// A held-back datagram arrives 100 ms late: the ones sent after it overtake it.
#[test]
fn udp_reorder_lets_later_datagrams_overtake() {
    let transcript = twice(|| {
        udp_one_way(
            "UDP, reorder 30%: held-back datagrams arrive after later ones",
            &["--reorder", "30%", "--seed", "22"],
            ping,
        )
    });
    assert!(transcript.contains("held back"), "{transcript}");
    insta::assert_snapshot!("udp-reorder", transcript);
}

#[test]
fn udp_truncate_cuts_long_datagrams() {
    let transcript = twice(|| {
        udp_one_way(
            "UDP, truncate to 8 bytes: longer datagrams lose their end",
            &["--truncate", "8", "--seed", "7"],
            |i| "x".repeat(i * 2).into_bytes(),
        )
    });
    assert!(transcript.contains("truncated to 8 bytes"), "{transcript}");
    insta::assert_snapshot!("udp-truncate", transcript);
}

/// A request-reply conversation over a lossy path, lockstep: after each datagram the client waits
/// for the proxy's log to say what became of it (so nothing depends on a timeout), and only then
/// expects the echo. Datagrams are numbered in the order they reach the proxy, both ways.
#[test]
fn udp_lossy_request_reply_is_the_same_twice() {
    let transcript = twice(|| {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server_stop = Arc::clone(&stop);
        let echo = thread::spawn(move || {
            server.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 2048];
            while !server_stop.load(Ordering::SeqCst) {
                if let Ok((n, from)) = server.recv_from(&mut buf) {
                    let reply = String::from_utf8_lossy(&buf[..n]).replace("ping", "pong");
                    server.send_to(reply.as_bytes(), from).unwrap();
                }
            }
        });
        let flags = ["--udp", "--drop", "25%", "--seed", "19"];
        let proxy = start_proxy(to, &flags);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut lines = Vec::new();
        let mut seen = 0;
        // Waits for the next datagram line of the log; true if that datagram was dropped.
        let next_dropped = |seen: &mut usize| -> bool {
            *seen += 1;
            assert!(proxy.wait_for_log_count(" c1 ", *seen, TIMEOUT));
            let log = proxy.log_lines();
            let line = log.iter().filter(|l| l.contains(" c1 ")).nth(*seen - 1).unwrap();
            line.ends_with("dropped")
        };
        for i in 1..=8 {
            client
                .send_to(format!("ping {i}").as_bytes(), proxy.addr())
                .unwrap();
            if next_dropped(&mut seen) {
                lines.push(format!(
                    "client sends \"ping {i}\": lost on the way to the server"
                ));
                continue;
            }
            if next_dropped(&mut seen) {
                lines.push(format!("client sends \"ping {i}\": the reply is lost"));
                continue;
            }
            let mut buf = [0u8; 64];
            let n = client.recv(&mut buf).unwrap();
            lines.push(format!(
                "client sends \"ping {i}\", receives {}",
                escape_abbreviated(&buf[..n], 60)
            ));
        }
        let text = story(
            "UDP request and reply, drop 25% both ways",
            &flags,
            &lines,
            &[],
            proxy,
            to,
            "",
        );
        stop.store(true, Ordering::SeqCst);
        echo.join().unwrap();
        text
    });
    assert!(transcript.contains("lost"), "{transcript}");
    insta::assert_snapshot!("udp-lossy", transcript);
}

/// Each datagram's fate depends on its client, direction and number in that direction, not on
/// how the two directions interleave: a retrying client and a server answering duplicates send
/// at the same moment from both sides, and which reaches the proxy first must not matter. Two
/// runs with one seed, where six datagrams go each way, all up first in one and all down first in
/// the other, give every datagram the same fate.
#[test]
fn udp_fates_do_not_depend_on_how_the_directions_interleave() {
    let run = |up_first: bool| -> (Vec<String>, Vec<String>) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let proxy = start_proxy(
            server.local_addr().unwrap(),
            &["--udp", "--drop", "40%", "--duplicate", "30%", "--seed", "5"],
        );
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        // One datagram up, which gets through with this seed, so the server learns where the
        // proxy's socket for this client is.
        client.send_to(b"hello", proxy.addr()).unwrap();
        let mut buf = [0u8; 64];
        let (_, upstream) = server.recv_from(&mut buf).unwrap();
        let send_up = || {
            for i in 1..=6 {
                client
                    .send_to(format!("up {i}").as_bytes(), proxy.addr())
                    .unwrap();
            }
            assert!(proxy.wait_for_log_count(" c1 > ", 7, TIMEOUT));
        };
        let send_down = || {
            for i in 1..=6 {
                server.send_to(format!("down {i}").as_bytes(), upstream).unwrap();
            }
            assert!(proxy.wait_for_log_count(" c1 < ", 6, TIMEOUT));
        };
        if up_first {
            send_up();
            send_down();
        } else {
            send_down();
            send_up();
        }
        let log = proxy.stop();
        let way = |arrow: &str| -> Vec<String> {
            log.iter().filter(|line| line.contains(arrow)).cloned().collect()
        };
        (way(" c1 > "), way(" c1 < "))
    };
    let (up, down) = run(true);
    assert_eq!(run(false), (up.clone(), down.clone()));
    // The weather did something both ways, or the comparison proves little.
    for lines in [&up, &down] {
        assert!(lines.iter().any(|l| l.ends_with("dropped")), "{lines:#?}");
        assert!(lines.iter().any(|l| !l.ends_with("dropped")), "{lines:#?}");
    }
}

/// Another seed, another run: the seed is what decides.
#[test]
fn another_seed_makes_other_choices() {
    let runs: Vec<String> = ["1", "2"]
        .iter()
        .map(|seed| {
            udp_one_way("", &["--drop", "50%", "--seed", seed], ping)
                .lines()
                .filter(|line| line.starts_with('d'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert_ne!(runs[0], runs[1]);
}

// ---------------------------------------------------------------------------------------------
// Hostile input, limits, and the command line
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator for junk.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `bytes` through the proxy to the echo server (while reading, so nothing blocks), half-
/// closes, and checks that exactly the same bytes come back, followed by end of stream.
fn round_trip(proxy: SocketAddr, bytes: &[u8]) {
    let mut client = TcpStream::connect(proxy).unwrap();
    let mut writer = client.try_clone().unwrap();
    let sent = bytes.to_vec();
    let sending = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let (got, end) = read_up_to(&mut client, bytes.len(), TIMEOUT * 2);
    sending.join().unwrap();
    assert_eq!(end, "complete", "after {} of {} bytes", got.len(), bytes.len());
    assert!(got == bytes, "the bytes came back changed");
    assert_eq!(read_up_to(&mut client, 1, TIMEOUT).1, "end of stream");
}

/// Random bytes of every size go through unchanged, with clear weather and with slices and
/// jitter (the pieces are reassembled in order).
#[test]
fn junk_passes_through_unchanged() {
    let upstream = Upstream::start(Mode::Echo);
    // Slicing writes 7 bytes at a time: it gets less to carry.
    for (flags, largest) in [
        (&["--seed", "1"][..], 300_000),
        (
            &[
                "--slice",
                "7",
                "--slice-pause-ms",
                "0",
                "--jitter-ms",
                "3",
                "--seed",
                "1",
            ],
            20_000,
        ),
        (&["--bandwidth", "4000000", "--seed", "1"], 100_000),
    ] {
        let proxy = start_proxy(upstream.addr, flags);
        for (i, len) in [0, 1, 2, 100, 4096, largest].into_iter().enumerate() {
            round_trip(proxy.addr(), &junk(i as u64, len));
        }
        let lines = proxy.stop();
        assert!(!lines.iter().any(|l| l.contains("reset")), "{lines:?}");
    }
}

/// 8 MiB as fast as the client can send it, with no weather: all of it arrives, in order.
#[test]
fn a_flood_arrives_complete() {
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &["--quiet"]);
    round_trip(proxy.addr(), &junk(99, 8 * 1024 * 1024));
}

/// Half-closes go through as half-closes, both ways: the side that finished sending can still
/// receive, and end of stream arrives only after every byte.
#[test]
fn half_closes_are_forwarded_both_ways() {
    // Client first: it sends, half-closes, and still reads the (echoed) bytes.
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &["--slice", "3", "--slice-pause-ms", "0"]);
    round_trip(proxy.addr(), b"the client is done sending");
    assert_eq!(
        upstream.stories(1),
        ["server got \"the client is done sending\" then end of stream"]
    );

    // Server first: it sends a greeting and half-closes; the client reads it and end of stream,
    // then sends and the server still receives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start_proxy(listener.local_addr().unwrap(), &[]);
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    server.write_all(b"hello from the server").unwrap();
    server.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_up_to(&mut client, 100, TIMEOUT);
    assert_eq!(
        (got.as_slice(), end.as_str()),
        (&b"hello from the server"[..], "end of stream")
    );
    client.write_all(b"and the client answers").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_up_to(&mut server, 100, TIMEOUT);
    assert_eq!(
        (got.as_slice(), end.as_str()),
        (&b"and the client answers"[..], "end of stream")
    );
    assert!(proxy.wait_for_log("c1 closed (22 bytes up, 21 bytes down)", TIMEOUT));
}

/// A client that floods a server that never reads: the proxy's queue fills up to its cap, then
/// it stops reading and the client's writes wait. When the server goes, the proxy resets.
#[test]
fn a_flood_into_a_server_that_never_reads_is_held_back() {
    let upstream = Upstream::start(Mode::Deaf);
    let mut proxy = proxy_process(upstream.addr, &[]);
    let before = resident_kib(proxy.pid());
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    client
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    while client.write_all(&chunk).is_ok() {
        sent += chunk.len();
        assert!(
            sent < 256 * 1024 * 1024,
            "the proxy takes everything: 256 MiB so far"
        );
    }
    let growth = resident_kib(proxy.pid()).saturating_sub(before);
    eprintln!(
        "flood into a deaf server: {} KiB sent before the client's writes waited; the proxy's \
         resident memory grew by {growth} KiB (from {before} KiB)",
        sent / 1024
    );
    assert!(
        growth < 4 * 1024,
        "the proxy grew by {growth} KiB holding a flood"
    );
    // The server vanishes: its sockets close with unread data (a reset); the proxy passes it on.
    upstream.held.lock().unwrap().clear();
    let (_, end) = read_up_to(&mut client, 1, TIMEOUT);
    assert_eq!(end, "connection reset (ECONNRESET)");
    assert!(proxy.wait_for_output("c1 reset:", TIMEOUT));
    assert!(proxy.exit_status().is_none());
}

/// Over `--max-connections`, a connection is reset at once; once one closes, a new one is served.
#[test]
fn connections_over_the_cap_are_reset() {
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &["--max-connections", "2"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(proxy.addr()).unwrap())
        .collect();
    assert!(proxy.wait_for_log("c2 from", TIMEOUT));
    let mut third = TcpStream::connect(proxy.addr()).unwrap();
    assert_eq!(
        read_up_to(&mut third, 1, TIMEOUT).1,
        "connection reset (ECONNRESET)"
    );
    assert!(proxy.wait_for_log("c3 from", TIMEOUT));
    assert!(
        proxy
            .log_lines()
            .iter()
            .any(|l| l.contains("c3 from") && l.contains("--max-connections"))
    );
    drop(held);
    assert!(wait_until(|| proxy.open_connections() == 0));
    round_trip(proxy.addr(), b"served again");
}

/// Nothing listens where the proxy forwards to: each client's connection is reset (it cannot be
/// refused: the proxy accepted it already), and the proxy goes on.
#[test]
fn an_unreachable_server_resets_the_client() {
    let nowhere = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = start_proxy(nowhere, &[]);
    for _ in 0..2 {
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(
            read_up_to(&mut client, 1, TIMEOUT).1,
            "connection reset (ECONNRESET)"
        );
    }
    assert!(proxy.wait_for_log("c2 cannot connect to", TIMEOUT));
}

/// `--only-first 1`: the first connection gets the weather, the next goes through untouched.
#[test]
fn only_the_first_connections_get_the_weather() {
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &["--reset-after", "0", "--only-first", "1"]);
    let mut first = TcpStream::connect(proxy.addr()).unwrap();
    assert_eq!(
        read_up_to(&mut first, 1, TIMEOUT).1,
        "connection reset (ECONNRESET)"
    );
    round_trip(proxy.addr(), b"the second one gets through");
    assert!(proxy.wait_for_log("c2 from", TIMEOUT));
    assert!(proxy.log_lines().iter().any(|l| l.contains("no weather")));
}

/// Dropping the handle stops the proxy: connected clients see their connection end, and nothing
/// listens any more.
#[test]
fn dropping_the_handle_stops_the_proxy() {
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &["--latency-ms", "10"]);
    let addr = proxy.addr();
    let mut client = TcpStream::connect(addr).unwrap();
    assert!(proxy.wait_for_log("c1 from", TIMEOUT));
    let started = Instant::now();
    drop(proxy);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        started.elapsed()
    );
    assert_eq!(read_up_to(&mut client, 1, TIMEOUT).1, "end of stream");
    assert!(TcpStream::connect(addr).is_err());
}

// --- the proxy as its own process ---

/// `workbook proxy --to <to> flags...`, started like any server: its `listening on` line first.
fn proxy_process(to: SocketAddr, flags: &[&str]) -> ServerProcess {
    let mut command = Command::new(WORKBOOK);
    command.args(["proxy", "--to", &to.to_string()]).args(flags);
    ServerProcess::start(command, Readiness::ListeningLine, TIMEOUT).unwrap()
}

fn open_descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn resident_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Polls `condition` every few milliseconds for up to [`TIMEOUT`]: for counts that settle.
fn wait_until(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        // Deliberate: descriptors close a moment after the last byte; there is no event to wait on.
        thread::sleep(Duration::from_millis(5));
    }
    condition()
}

/// `connections` clients, each in one of four ways: a normal exchange, a reset from the client
/// with its reply unread, a connect-and-close, a half-close; then the proxy's descriptors must be
/// back where they were.
fn churn(connections: usize) {
    let upstream = Upstream::start(Mode::Echo);
    let mut proxy = proxy_process(upstream.addr, &["--quiet"]);
    let pid = proxy.pid();
    let baseline = open_descriptors(pid);
    let addr = proxy.addr();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            thread::spawn(move || {
                for i in (worker..connections).step_by(4) {
                    let mut conn = TcpStream::connect(addr).unwrap();
                    match i % 4 {
                        0 => {
                            conn.write_all(b"x").unwrap();
                            assert_eq!(read_up_to(&mut conn, 1, TIMEOUT).1, "complete");
                        }
                        1 => {
                            conn.write_all(b"unread").unwrap();
                            let linger = libc::linger {
                                l_onoff: 1,
                                l_linger: 0,
                            };
                            // SAFETY: a valid linger struct, on a socket `conn` owns.
                            unsafe {
                                libc::setsockopt(
                                    conn.as_raw_fd(),
                                    libc::SOL_SOCKET,
                                    libc::SO_LINGER,
                                    (&linger as *const libc::linger).cast(),
                                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                                );
                            }
                        }
                        2 => {}
                        _ => {
                            conn.write_all(b"abc").unwrap();
                            conn.shutdown(Shutdown::Write).unwrap();
                            let (got, end) = read_up_to(&mut conn, 4, TIMEOUT);
                            assert_eq!((got.as_slice(), end.as_str()), (&b"abc"[..], "end of stream"));
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let right_after = open_descriptors(pid);
    let settled = wait_until(|| open_descriptors(pid) == baseline);
    eprintln!(
        "churn of {connections}: the proxy had {baseline} descriptors open before, {right_after} right \
         after the last client, {} once the last connections closed",
        open_descriptors(pid)
    );
    assert!(
        settled,
        "after {connections} connections the proxy has {} descriptors open, {baseline} before",
        open_descriptors(pid)
    );
    round_trip(addr, b"still serving");
    assert!(proxy.exit_status().is_none());
    let output = proxy.finish();
    assert!(!output.iter().any(|l| l.text.contains("panicked")), "{output:?}");
}

/// Clients that behave in every way at random (random bytes, resets, half-closes, sudden
/// closes) through every fate the proxy deals (slices, delays, close, reset, stall, each at an
/// offset some clients reach and others do not): the proxy stays up, still serves, and closes
/// every connection's descriptors.
#[test]
fn stormy_churn_leaks_no_descriptors() {
    let upstream = Upstream::start(Mode::Echo);
    for fate in ["--close-after", "--reset-after", "--stall-after"] {
        for direction in ["up", "down"] {
            let flags = [
                "--quiet",
                "--slice",
                "5",
                "--slice-pause-ms",
                "0",
                "--jitter-ms",
                "2",
                "--direction",
                direction,
                fate,
                "40",
                "--only-first",
                "40",
            ];
            let mut proxy = proxy_process(upstream.addr, &flags);
            let pid = proxy.pid();
            let baseline = open_descriptors(pid);
            for i in 0..40u64 {
                let mut conn = TcpStream::connect(proxy.addr()).unwrap();
                let bytes = junk(i, (i as usize * 37) % 90);
                let _ = conn.write_all(&bytes);
                match i % 4 {
                    0 => {}
                    1 => {
                        let linger = libc::linger {
                            l_onoff: 1,
                            l_linger: 0,
                        };
                        // SAFETY: a valid linger struct, on a socket `conn` owns.
                        unsafe {
                            libc::setsockopt(
                                conn.as_raw_fd(),
                                libc::SOL_SOCKET,
                                libc::SO_LINGER,
                                (&linger as *const libc::linger).cast(),
                                std::mem::size_of::<libc::linger>() as libc::socklen_t,
                            );
                        }
                    }
                    _ => {
                        let _ = conn.shutdown(Shutdown::Write);
                        // Whatever comes back, it comes to an end: data, end of stream or reset.
                        let (_, end) = read_up_to(&mut conn, 1000, TIMEOUT);
                        assert_ne!(end, "complete", "{fate} {direction}, client {i}");
                    }
                }
            }
            assert!(
                wait_until(|| open_descriptors(pid) == baseline),
                "{fate} {direction}: {} descriptors open, {baseline} before",
                open_descriptors(pid)
            );
            // Connection 41 has no weather: the proxy still forwards faithfully.
            round_trip(proxy.addr(), b"after the storm");
            assert!(proxy.exit_status().is_none());
            let output = proxy.finish();
            assert!(!output.iter().any(|l| l.text.contains("panicked")), "{output:?}");
        }
    }
}

#[test]
fn connection_churn_leaks_no_descriptors() {
    churn(200);
}

#[test]
#[ignore = "slow: 2,000 connections through the proxy (a few seconds)"]
fn churn_of_2000_connections_leaks_no_descriptors() {
    churn(2000);
}

/// The command line, twice with the same seed: the same transcript (the "done when",
/// through `workbook proxy` itself rather than the library).
#[test]
fn the_command_prints_the_same_transcript_twice_with_a_seed() {
    let run = || {
        let upstream = Upstream::start(Mode::Echo);
        let proxy = proxy_process(
            upstream.addr,
            &["--direction", "up", "--reset-after", "5", "--seed", "7"],
        );
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        client.write_all(b"hello, world\n").unwrap();
        assert_eq!(
            read_up_to(&mut client, 13, TIMEOUT).1,
            "connection reset (ECONNRESET)"
        );
        assert!(proxy.wait_for_output("c1 reset:", TIMEOUT));
        let addr = proxy.addr();
        proxy
            .finish()
            .iter()
            .map(|line| tokens(&line.text, addr, upstream.addr))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    // The same lines as the library's (the snapshot's proxy log).
    let library = reset_after_scenario();
    let library_log: Vec<&str> = library
        .lines()
        .skip_while(|l| *l != "--- proxy log ---")
        .skip(1)
        .collect();
    assert_eq!(first, library_log);
}

#[test]
fn the_command_explains_wrong_flags_in_one_line() {
    for (flags, says) in [
        (
            &["--to", "127.0.0.1:9", "--drop", "10%"][..],
            "--drop is UDP weather",
        ),
        (
            &["--to", "127.0.0.1:9", "--udp", "--reset-after", "1"],
            "--reset-after is TCP weather",
        ),
        (&["--to", "nowhere"], "HOST:PORT"),
    ] {
        let output = Command::new(WORKBOOK).arg("proxy").args(flags).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let help = Command::new(WORKBOOK).args(["proxy", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--slice",
        "--reset-after",
        "--stall-after",
        "--refuse-for-ms",
        "--drop",
        "--seed",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

/// Without `--seed`, the seed is chosen and printed with the way to replay it.
#[test]
fn without_a_seed_the_chosen_one_is_printed() {
    let upstream = Upstream::start(Mode::Echo);
    let proxy = start_proxy(upstream.addr, &[]);
    let seed = proxy.seed();
    assert!(
        proxy.log_lines()[1].ends_with(&format!(
            "seed {seed} (chosen at random; --seed {seed} replays this run)"
        )),
        "{:?}",
        proxy.log_lines()
    );
}

/// Datagrams of every size, the empty one included, go through unchanged and in order.
#[test]
fn udp_junk_passes_through_unchanged() {
    let sink = udp_sink();
    let proxy = start_proxy(sink.local_addr().unwrap(), &["--udp", "--quiet"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagrams: Vec<Vec<u8>> = (0..50u64).map(|i| junk(i, (i as usize * 997) % 9000)).collect();
    let mut buf = vec![0u8; 65536];
    for datagram in &datagrams {
        client.send_to(datagram, proxy.addr()).unwrap();
        // One at a time, so that no kernel buffer overflows (UDP drops what does not fit).
        let n = sink.recv(&mut buf).unwrap();
        assert!(
            buf[..n] == datagram[..],
            "a datagram of {} bytes came changed",
            datagram.len()
        );
    }
}

/// Nothing listens where the proxy forwards to: the server's kernel answers "port unreachable",
/// which the proxy logs, and it goes on.
#[test]
fn udp_survives_a_missing_server() {
    let nowhere = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = start_proxy(nowhere, &["--udp"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u64 {
        client.send_to(&junk(i, 100), proxy.addr()).unwrap();
    }
    assert!(
        proxy.wait_for_log("d20 c1 > ", TIMEOUT),
        "{:?}",
        proxy.log_lines()
    );
    assert_eq!(proxy.open_connections(), 1);
}
