//! Lesson 04 against its scenarios over real loopback sockets, its demo, its client, and a frame
//! client and server written in Python (interoperability: the protocol is the bytes, not Rust).

mod common;

use std::net::TcpListener;
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use socket_workbook::harness::{
    Readiness, RunOptions, START_TIMEOUT, Scenario, ServerProcess, client_story, run_lesson, run_scenario,
    start_lesson,
};
use socket_workbook::scenarios::frame::{self, frame};

const LESSON: &str = env!("CARGO_BIN_EXE_04_length_prefix");
const TIMEOUT: Duration = Duration::from_secs(5);
const PYTHON_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/frame_echo_server.py");
const PYTHON_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/frame_client.py");

fn lesson() -> Command {
    let mut command = Command::cargo_bin("04_length_prefix").unwrap();
    command.timeout(Duration::from_secs(20));
    command
}

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in frame::all() {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &["server"], &scenario));
    }
}

/// The demo controls how bytes are split and when the receiver reads, so its output is the
/// same on every run; it prints no addresses or ports.
#[test]
fn the_demo_matches_its_snapshot() {
    let assert = lesson().assert().success().stderr("");
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    insta::assert_snapshot!("demo", stdout);
    // `demo` is the default mode; asking for it by name prints the same.
    lesson().arg("demo").assert().success().stdout(stdout);
}

#[test]
fn send_talks_to_the_real_server() {
    let server = start_lesson(LESSON, &["server"]).unwrap();
    let port = server.addr().port().to_string();
    let assert = lesson()
        .args(["send", "--port", &port, "hello", "", "wörld"])
        .assert()
        .success()
        .stderr("");
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    // `send` waits for the server to close the connection, so the server's log is complete.
    let story = client_story(
        "04_length_prefix send --port <port> hello \"\" wörld",
        &stdout,
        server,
    );
    insta::assert_snapshot!("send-to-the-server", story);
}

#[test]
fn send_reports_a_server_that_closes_instead_of_replying() {
    let server = start_lesson(LESSON, &["server", "--max-frame", "4"]).unwrap();
    let port = server.addr().port().to_string();
    let assert = lesson()
        .args(["send", "--port", &port, "four", "seven!!"])
        .assert()
        .code(1)
        .stdout(
            "sent     frame 00 00 00 04 \"four\"\nreceived frame 00 00 00 04 \"four\"\n\
             sent     frame 00 00 00 07 \"seven!!\"\n",
        );
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stderr,
        "error: the server closed the connection instead of replying (a frame server does that when \
         it rejects a frame, e.g. one above its maximum size)\n"
    );
    let log: Vec<String> = server.finish().into_iter().map(|line| line.text).collect();
    assert!(
        log.iter()
            .any(|line| line.contains("announces 7 bytes, more than the maximum of 4 bytes")),
        "{log:#?}"
    );
}

#[test]
fn a_refused_connection_gets_one_clear_line_and_exit_code_3() {
    let port = common::unused_port();
    let assert = lesson()
        .args(["send", "--port", &port.to_string(), "hello"])
        .assert()
        .code(3)
        .stdout("");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr, got:\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("cargo run --bin 04_length_prefix -- server"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let assert = lesson()
        .args(["server", "--port", &port])
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr, got:\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

/// `--max-frame` moves the limit: exactly the maximum is echoed, one byte more is not.
#[test]
fn the_maximum_frame_size_is_configurable() {
    let scenario = Scenario::new("max-frame-5", "with --max-frame 5")
        .connect("c1")
        .send("c1", frame("hello"))
        .expect_bytes("c1", frame("hello"))
        .send("c1", frame("hello!"))
        .expect_closed("c1")
        .server_logs("announces 6 bytes, more than the maximum of 5 bytes");
    run_lesson(LESSON, &["server", "--max-frame", "5"], &scenario);
}

// ---------------------------------------------------------------------------------------------
// Interoperability with Python (skipped, with a note, where python3 is missing)
// ---------------------------------------------------------------------------------------------

fn python3_available() -> bool {
    let found = StdCommand::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("python3 not found: skipping the interoperability test");
    }
    found
}

fn start_python_server() -> ServerProcess {
    let mut command = StdCommand::new("python3");
    command.args([PYTHON_SERVER, "0"]);
    ServerProcess::start(command, Readiness::ListeningLine, START_TIMEOUT)
        .unwrap_or_else(|err| panic!("{err}"))
}

/// The scenarios ask only what any correct frame echo server does: a Python one passes them all,
/// as `workbook check` would run them (server logs not checked).
#[test]
fn a_python_frame_server_passes_every_scenario() {
    if !python3_available() {
        return;
    }
    for scenario in frame::all() {
        let mut server = start_python_server();
        if let Err(failure) = run_scenario(&mut server, &scenario, &RunOptions::learner()) {
            panic!("{failure}");
        }
    }
}

#[test]
fn send_talks_to_a_python_frame_server() {
    if !python3_available() {
        return;
    }
    let server = start_python_server();
    let port = server.addr().port().to_string();
    lesson()
        .args(["send", "--port", &port, "hello", "", "world"])
        .assert()
        .success()
        .stderr("")
        .stdout(
            "sent     frame 00 00 00 05 \"hello\"\nreceived frame 00 00 00 05 \"hello\"\n\
             sent     frame 00 00 00 00 \"\"\nreceived frame 00 00 00 00 \"\"\n\
             sent     frame 00 00 00 05 \"world\"\nreceived frame 00 00 00 05 \"world\"\n",
        );
}

#[test]
fn a_python_frame_client_talks_to_the_server() {
    if !python3_available() {
        return;
    }
    let server = start_lesson(LESSON, &["server"]).unwrap();
    let port = server.addr().port().to_string();
    let long = "x".repeat(300);
    Command::new("python3")
        .args([PYTHON_CLIENT, "--port", &port, "hello", "", &long])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(format!(
            "00 00 00 05 b'hello'\n00 00 00 00 b''\n00 00 01 2c b'{long}'\n"
        ));
    let log: Vec<String> = server.finish().into_iter().map(|line| line.text).collect();
    assert!(
        log.iter()
            .any(|line| line.contains("header 00 00 01 2c, 300 bytes")),
        "{log:#?}"
    );
}

#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    use socket_workbook::harness::Connection;

    let mut server = common::environment::start_with_stdout_closed(LESSON, &["server"]);
    for message in [&b"one"[..], b"two"] {
        let mut client = Connection::connect(server.addr, TIMEOUT).unwrap();
        let sent = socket_workbook::frame::encode_frame(message).unwrap();
        client.send(&sent).unwrap();
        assert_eq!(client.read_exact(sent.len(), TIMEOUT).bytes, sent);
    }
    server.assert_still_running();
    server.finish();
}

#[test]
fn failed_accepts_pause_instead_of_spinning() {
    common::environment::assert_failed_accepts_do_not_spin(LESSON, &["server"]);
}

/// A timeout per `read` is not a deadline. This client sends a 5-byte frame one byte every
/// 300 ms: every read gets a byte well within the 1-second `--client-timeout`, but the frame
/// takes 2.4 s in all. The server must give up on it when the frame's deadline passes, about a
/// second after it started waiting, and then serve the next client.
#[test]
fn a_client_that_sends_a_byte_at_a_time_is_cut_off_at_the_deadline() {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::thread;
    use std::time::Instant;

    let server = start_lesson(LESSON, &["server", "--client-timeout", "1"]).unwrap();
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let started = Instant::now();
    let mut dripping = slow.try_clone().unwrap();
    let drip = thread::spawn(move || {
        for byte in socket_workbook::frame::encode_frame(b"hello").unwrap() {
            if dripping.write_all(&[byte]).is_err() {
                return;
            }
            // Deliberately slow: the byte-a-minute client, sped up.
            thread::sleep(Duration::from_millis(300));
        }
    });
    // The server closes the connection (end of stream, or a reset if a byte was unread).
    let mut reply = Vec::new();
    let _ = slow.read_to_end(&mut reply);
    let cut_off_after = started.elapsed();
    assert_eq!(reply, b"", "the slow client got an echo");
    assert!(
        cut_off_after >= Duration::from_millis(900) && cut_off_after < Duration::from_millis(2300),
        "the slow client was disconnected after {cut_off_after:?}; its frame's deadline was 1 s"
    );
    drip.join().unwrap();
    assert!(
        server.wait_for_output("the deadline passed", TIMEOUT),
        "the log should say why the client was disconnected"
    );
    // Next, please.
    let mut next = socket_workbook::harness::Connection::connect(server.addr(), TIMEOUT).unwrap();
    let sent = socket_workbook::frame::encode_frame(b"next").unwrap();
    next.send(&sent).unwrap();
    assert_eq!(next.read_exact(sent.len(), TIMEOUT).bytes, sent);
}

/// A header is a promise, not bytes: a header that announces 1 MiB followed by 100 bytes and
/// the end of the stream must not cost a megabyte. `read_frame` grows the payload as bytes
/// arrive. (This test binary counts every allocation its threads make; see `counting` below.)
#[test]
fn a_header_alone_does_not_allocate_what_it_announces() {
    use socket_workbook::frame::{FrameError, encode_header, read_frame};

    let mut wire = encode_header(1024 * 1024).to_vec();
    wire.extend_from_slice(&[7u8; 100]);
    let peak = counting::peak_during(|| {
        let err = read_frame(&mut wire.as_slice(), 1024 * 1024).unwrap_err();
        assert!(
            matches!(err, FrameError::TruncatedPayload { got: 100, .. }),
            "{err:?}"
        );
    });
    assert!(
        peak < 64 * 1024,
        "reading a 1 MiB header and 100 bytes allocated {peak} bytes at its peak"
    );
}

/// Counts the bytes this test binary's threads hold allocated, per thread, so a test can ask
/// how much one call allocated at its peak while other tests run in parallel.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    thread_local! {
        static HELD: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    fn grew(bytes: usize) {
        let _ = HELD.try_with(|held| {
            held.set(held.get() + bytes);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(held.get())));
        });
    }

    fn shrank(bytes: usize) {
        let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(bytes)));
    }

    // SAFETY: every call is passed on to the system allocator unchanged; we only count.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            shrank(layout.size());
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            shrank(layout.size());
            grew(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// The most bytes this thread held allocated during `work`, above what it held before.
    pub fn peak_during(work: impl FnOnce()) -> usize {
        let before = HELD.with(Cell::get);
        PEAK.with(|peak| peak.set(before));
        work();
        PEAK.with(Cell::get) - before
    }
}
