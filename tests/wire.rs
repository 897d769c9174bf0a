//! The packets behind the lessons, captured on loopback with `tcpdump`, for the chapter
//! "Watching the wire" (book/src/watching-the-wire.md).
//!
//! Each test starts a lesson server, starts `tcpdump -i lo` for its port, plays one client, and
//! compares what went over the wire with the capture committed in `book/src/wire/` (only what
//! is stable on loopback: see `socket_workbook::wire::stable_form`). To record the captures
//! again, for instance after changing a lesson:
//!
//! ```text
//! WIRE_UPDATE=1 cargo test --test wire -- --ignored --test-threads 1
//! ```
//!
//! Capturing needs tcpdump and root or `CAP_NET_RAW`. Without them these tests say so and pass,
//! except in CI (`CI=true`), where they fail: CI runs as root and installs tcpdump.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use socket_workbook::harness::{Readiness, ServerProcess, start_lesson};
use socket_workbook::wire::{Capture, CaptureError, render, stable_form};

const ECHO_SERVER: &str = env!("CARGO_BIN_EXE_01_echo_server");
const KV_SERVER: &str = env!("CARGO_BIN_EXE_05_kv_server");
const KV_EVENTS_SERVER: &str = env!("CARGO_BIN_EXE_08_kv_server_events");

const TIMEOUT: Duration = Duration::from_secs(5);

// ANCHOR: handshake
/// Connect, send `Hello\n`, read the 12-byte echo, close our side, and read until the server
/// closes its side too.
#[test]
#[ignore = "slow: captures packets with tcpdump (needs root)"]
fn handshake_echo_close() {
    let description = "lesson 01: the three-way handshake, one echo, an orderly close";
    record("handshake-echo-close", description, ECHO_SERVER, |addr| {
        let mut conn = connect(addr);
        conn.write_all(b"Hello\n").unwrap();
        let mut echo = [0; 12];
        conn.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"Echo: Hello\n");
        // FIN: "I will send nothing more". The server reads 0, exits, and its side closes too.
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(conn.read(&mut echo).unwrap(), 0);
    });
}
// ANCHOR_END: handshake

// ANCHOR: reset
/// Send `Hello\n`, wait until the echo has arrived, and close without reading it: the kernel
/// throws the unread bytes away and sends RST instead of FIN.
#[test]
#[ignore = "slow: captures packets with tcpdump (needs root)"]
fn close_with_unread_data_sends_reset() {
    let description = "lesson 01: the client closes with the echo unread, so its kernel resets";
    record("close-with-unread-data", description, ECHO_SERVER, |addr| {
        let mut conn = connect(addr);
        conn.write_all(b"Hello\n").unwrap();
        wait_until_readable(&conn, 12);
        drop(conn);
    });
}
// ANCHOR_END: reset

// ANCHOR: zero_window
/// A client with a small receive buffer asks for 10 KB and does not read until no more arrives:
/// its window closes, and the server's kernel keeps the rest and probes. Then it reads
/// everything and closes.
#[test]
#[ignore = "slow: captures packets with tcpdump (needs root)"]
fn zero_window() {
    let description = "lesson 08: a client with a 4 KB receive buffer that stops reading";
    record("zero-window", description, KV_EVENTS_SERVER, |addr| {
        let mut conn = connect_with_receive_buffer(addr, 4096);
        let value = "v".repeat(1000);
        let mut commands = format!("SET big {value}\n");
        commands.push_str(&"GET big\n".repeat(10));
        conn.write_all(commands.as_bytes()).unwrap();
        wait_until_nothing_more_arrives(&conn);
        // Deliberate: long enough for the server's kernel to probe the closed window once
        // (its first probe comes after about 200 ms).
        thread::sleep(Duration::from_millis(300));
        let expected = 3 + 10 * (value.len() + 1);
        let mut replies = vec![0; expected];
        conn.read_exact(&mut replies).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(conn.read(&mut replies).unwrap(), 0);
    });
}
// ANCHOR_END: zero_window

// ANCHOR: delayed_ack
/// Three commands, each sent in two writes (`SET a ` and `1\n`), each followed by reading the
/// reply: write, write, read. With Nagle's algorithm on (the default), the second write waits
/// for the ACK of the first, and the server's kernel delays that ACK.
#[test]
#[ignore = "slow: captures packets with tcpdump (needs root)"]
fn delayed_ack_with_nagle() {
    let description = "lesson 05: write, write, read, with Nagle's algorithm on (the default)";
    record("delayed-ack-nagle", description, KV_SERVER, |addr| {
        write_write_read(addr, false)
    });
}

/// The same with `TCP_NODELAY`: the second write goes out at once.
#[test]
#[ignore = "slow: captures packets with tcpdump (needs root)"]
fn delayed_ack_with_nodelay() {
    let description = "lesson 05: write, write, read, with TCP_NODELAY (Nagle off)";
    record("delayed-ack-nodelay", description, KV_SERVER, |addr| {
        write_write_read(addr, true)
    });
}

fn write_write_read(addr: SocketAddr, nodelay: bool) {
    let mut conn = connect(addr);
    conn.set_nodelay(nodelay).unwrap();
    let mut took = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        conn.write_all(b"SET a ").unwrap();
        conn.write_all(b"1\n").unwrap();
        let mut reply = [0; 3];
        conn.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"OK\n");
        took.push(format!("{:.1} ms", start.elapsed().as_secs_f64() * 1000.0));
    }
    // Figures, not an assertion: how long depends on the machine and its kernel.
    println!(
        "write-write-read with TCP_NODELAY {}: {}",
        if nodelay { "on" } else { "off" },
        took.join(", ")
    );
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
}
// ANCHOR_END: delayed_ack

// ANCHOR: strace
/// Lesson 01 under `strace`, for the same conversation as `handshake_echo_close`: the system
/// calls the server makes, and what each returned.
#[test]
#[ignore = "slow: runs a lesson under strace"]
fn strace_of_the_echo_server() {
    let name = "strace-echo-server";
    if !tool_runs("strace", &["-V"]) {
        return skip_or_fail(name, "strace is not installed (apt-get install strace)");
    }
    let trace = std::env::temp_dir().join(format!("workbook-strace-{}.txt", std::process::id()));
    let mut command = std::process::Command::new("strace");
    // -f: threads too; -s 80: show strings up to 80 bytes; -o: the trace goes to a file, so the
    // server's own output stays as it is.
    command
        .args(["-f", "-s", "80", "-e", "trace=network,read,write", "-o"])
        .arg(&trace)
        .args([ECHO_SERVER, "--port", "0"]);
    let mut server = match ServerProcess::start(command, Readiness::ListeningLine, TIMEOUT) {
        Ok(server) => server,
        Err(err) => return skip_or_fail(name, &format!("strace could not start lesson 01: {err}")),
    };
    let addr = server.addr();
    let mut conn = connect(addr);
    let client_port = conn.local_addr().unwrap().port();
    conn.write_all(b"Hello\n").unwrap();
    let mut echo = [0; 12];
    conn.read_exact(&mut echo).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(conn.read(&mut echo).unwrap(), 0);
    let status = server.wait_exit(TIMEOUT);
    server.finish();
    assert!(status.is_some(), "lesson 01 did not exit after its client");
    let raw = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let traced = format!(
        "# {name}: lesson 01 under strace -f -e trace=network,read,write\n{}",
        strace_with_stable_tokens(&raw, addr.port(), client_port)
    );
    // Not `.txt`: the `.txt` files in book/src/wire are packet captures, one packet a line.
    compare_or_update(&format!("{name}.log"), &traced, strace_calls);
}
// ANCHOR_END: strace

/// The calls from `socket` on (before it, the program is loading its libraries), without the
/// process id, with the ports as tokens.
fn strace_with_stable_tokens(raw: &str, server_port: u16, client_port: u16) -> String {
    let mut text = String::new();
    let mut started = false;
    for line in raw.lines() {
        // `12345 socket(...)`: drop the process id.
        let call = line.split_once(" ").map_or(line, |(_, rest)| rest.trim_start());
        started |= call.starts_with("socket(");
        if !started {
            continue;
        }
        let call = call
            .replace(&format!("htons({server_port})"), "htons(<port>)")
            .replace(&format!("htons({client_port})"), "htons(<c1 port>)")
            .replace(&format!(":{server_port}"), ":<port>")
            .replace(&format!(":{client_port}"), ":<c1 port>");
        // strace pads the ` = result` of short calls with spaces; keep one.
        let call = match call.split_once(") ") {
            Some((head, tail)) if tail.trim_start().starts_with('=') => {
                format!("{head}) {}", tail.trim_start())
            }
            _ => call,
        };
        text.push_str(&call);
        text.push('\n');
    }
    text
}

/// What is compared in a trace: the names of the calls, in order. Arguments and lengths may
/// differ with the versions of strace, Rust's standard library, and the C library.
fn strace_calls(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('(').map(|(call, _)| call.to_string()))
        .collect()
}

fn tool_runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Without a tool, a test says so and passes; in CI (`CI=true`) it fails.
fn skip_or_fail(name: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name}: {why}");
    }
    eprintln!("SKIPPED {name}: {why} (in CI, with CI=true, this fails)");
}

// ---------------------------------------------------------------------------------------------
// Machinery
// ---------------------------------------------------------------------------------------------

/// Starts `lesson`, captures its port while `client` talks to it, and compares the capture with
/// `book/src/wire/NAME.txt` (or writes that file, with `WIRE_UPDATE=1`).
fn record(name: &str, description: &str, lesson: &str, client: impl FnOnce(SocketAddr)) {
    let server = start_lesson(lesson, &[]).unwrap_or_else(|err| panic!("{err}"));
    let capture = match Capture::start(server.addr().port()) {
        Ok(capture) => capture,
        Err(CaptureError::Unavailable(why)) => return skip_or_fail(name, &why),
        Err(err) => panic!("{name}: {err}"),
    };
    client(server.addr());
    wait_for_exit_or_stop(server);
    let packets = capture.finish().unwrap_or_else(|err| panic!("{name}: {err}"));
    let captured = render(name, description, &packets);

    compare_or_update(&format!("{name}.txt"), &captured, stable_form);
}

/// Compares `captured` with `book/src/wire/FILE` by what `stable` keeps of each, or writes the
/// file when `WIRE_UPDATE=1`.
fn compare_or_update(file: &str, captured: &str, stable: fn(&str) -> Vec<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("book/src/wire")
        .join(file);
    if std::env::var("WIRE_UPDATE").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, captured).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err}; record it with \
             WIRE_UPDATE=1 cargo test --test wire -- --ignored --test-threads 1",
            path.display()
        )
    });
    let (expected, got) = (stable(&committed), stable(captured));
    assert!(
        expected == got,
        "`{file}` changed in what is stable from run to run.\n\
         committed ({}):\n  {}\ncaptured now:\n  {}\nthe whole new capture:\n{captured}\n\
         If the change is intended (a lesson changed), record the captures again with\n  \
         WIRE_UPDATE=1 cargo test --test wire -- --ignored --test-threads 1\n\
         and review the diff of book/src/wire/.",
        path.display(),
        expected.join("\n  "),
        got.join("\n  "),
    );
}

/// Lesson 01 exits by itself once its client is gone; the others serve until stopped. Either
/// way the server has finished with the connection before the capture ends.
fn wait_for_exit_or_stop(mut server: ServerProcess) {
    // Half a second is plenty for lesson 01 to notice the close and exit; the others are
    // stopped after it (by `finish`), with their connection already closed.
    server.wait_exit(Duration::from_millis(500));
    server.finish();
}

fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn
}

/// A connection whose receive buffer is set to `bytes` *before* connecting: the window it
/// announces in its SYN, and every window after, follow from that size. (Set after the
/// handshake, the window already announced could not shrink any more.)
fn connect_with_receive_buffer(addr: SocketAddr, bytes: libc::c_int) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("the captures use IPv4 loopback, not {addr}")
    };
    // SAFETY: plain system calls on a descriptor we own; `sockaddr_in` is filled completely.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        // From here the descriptor belongs to `stream`, which closes it when dropped.
        let stream = TcpStream::from_raw_fd(fd);
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0, "SO_RCVBUF: {}", io::Error::last_os_error());
        let mut sockaddr: libc::sockaddr_in = std::mem::zeroed();
        sockaddr.sin_family = libc::AF_INET as libc::sa_family_t;
        sockaddr.sin_port = v4.port().to_be();
        sockaddr.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
        let connected = libc::connect(
            fd,
            (&sockaddr as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0, "connect: {}", io::Error::last_os_error());
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream
    }
}

/// Waits until bytes have arrived and no more have come for 300 ms: the receive buffer is as
/// full as the sender will make it. (A fixed pause could end too early on a busy machine.)
fn wait_until_nothing_more_arrives(conn: &TcpStream) {
    let deadline = Instant::now() + TIMEOUT;
    let mut waiting = 0;
    let mut unchanged_since = Instant::now();
    loop {
        let mut now_waiting: libc::c_int = 0;
        // FIONREAD: how many bytes wait in the receive buffer, without reading them.
        // SAFETY: ioctl on a descriptor we own, with a pointer to a c_int as FIONREAD expects.
        let status = unsafe { libc::ioctl(conn.as_raw_fd(), libc::FIONREAD, &mut now_waiting) };
        assert_eq!(status, 0, "FIONREAD: {}", io::Error::last_os_error());
        if now_waiting != waiting {
            waiting = now_waiting;
            unchanged_since = Instant::now();
        } else if waiting > 0 && unchanged_since.elapsed() >= Duration::from_millis(300) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replies stopped at {waiting} bytes"
        );
        // Deliberate short pause between looks at the buffer.
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `bytes` bytes are waiting in the receive buffer, without reading them.
fn wait_until_readable(conn: &TcpStream, bytes: usize) {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = vec![0; bytes];
    // `peek` returns what is there (at least one byte) and leaves it there.
    while conn.peek(&mut buf).unwrap() < bytes {
        assert!(Instant::now() < deadline, "{bytes} bytes did not arrive");
        // Deliberate short pause between peeks: the rest of the reply is on its way.
        thread::sleep(Duration::from_millis(1));
    }
}
