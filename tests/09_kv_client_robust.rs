//! Lesson 09 against the real lesson 05 server, and against fake servers that fail on purpose:
//! a reset, a close in the middle of a reply, a server that never answers or answers one byte at a
//! time, nothing listening, a full accept queue, and connections that break while the client
//! waits for its next command. Each error is met for real, over loopback, and its transcript is
//! recorded for the book: the command, what the client printed on stdout and stderr, its exit
//! code, then what the fake server did.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command as Process, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use socket_workbook::escape::escape_abbreviated;
use socket_workbook::harness::{ServerProcess, server_output_story, stable_tokens, start_lesson};
use socket_workbook::proxy::{self, ProxyConfig, ProxyHandle};

const SERVER: &str = env!("CARGO_BIN_EXE_05_kv_server");
const LESSON: &str = env!("CARGO_BIN_EXE_09_kv_client_robust");

/// How long any one thing in these tests may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// A fake server that follows a script, one connection after the other
// ---------------------------------------------------------------------------------------------

/// What the fake server does on one connection.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Read one line (up to its `\n`) and log it.
    ReadLine,
    /// Send these bytes.
    Send(&'static [u8]),
    /// Close normally: the client reads end of stream (FIN).
    Close,
    /// Close with SO_LINGER 0: the client's kernel gets a reset (RST), and the client an error.
    Reset,
    /// Shut down our sending side (FIN), then close with SO_LINGER 0 (RST): a server that said
    /// goodbye, then aborted.
    CloseThenReset,
    /// Say nothing; wait until the client closes the connection.
    Silent,
    /// Send `v` once every 100 ms, never a newline, until the client closes the connection.
    Dribble,
}

/// The fake server's log, shared with the test, which can wait for a line to appear.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
    /// The client's address of each connection, in order.
    peers: Mutex<Vec<SocketAddr>>,
}

impl Log {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
        self.changed.notify_all();
    }
}

struct FakeServer {
    addr: SocketAddr,
    log: Arc<Log>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Listens on a free port and serves one script per connection, in order; then stops
    /// listening, so that further connections are refused.
    fn start(connections: Vec<Vec<Step>>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let thread_log = Arc::clone(&log);
        let thread = thread::spawn(move || {
            for (index, steps) in connections.iter().enumerate() {
                let number = index + 1;
                let Some(conn) = accept_within(&listener, TIMEOUT) else {
                    thread_log.push(format!("#{number} never came"));
                    return;
                };
                if let Ok(peer) = conn.peer_addr() {
                    thread_log.peers.lock().unwrap().push(peer);
                }
                thread_log.push(format!("#{number} connected"));
                serve(conn, number, steps, &thread_log);
            }
        });
        FakeServer {
            addr,
            log,
            thread: Some(thread),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits until the log has a line that contains `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + TIMEOUT;
        let mut lines = self.log.lines.lock().unwrap();
        while !lines.iter().any(|line| line.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the fake server never logged {text:?}: {lines:?}"
            );
            lines = self.log.changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// The client's port on connection `number` (from 1).
    fn client_port(&self, number: usize) -> u16 {
        self.log.peers.lock().unwrap()[number - 1].port()
    }

    /// Waits for the script to end, and returns the log.
    fn finish(mut self) -> Vec<String> {
        if let Some(thread) = self.thread.take() {
            // The thread ends when its script is done, or TIMEOUT after a missing connection.
            thread.join().unwrap();
        }
        self.log.lines.lock().unwrap().clone()
    }
}

/// `accept`, but giving up after `timeout` (a test must not hang on a client that never came).
fn accept_within(listener: &TcpListener, timeout: Duration) -> Option<TcpStream> {
    use std::os::fd::AsRawFd;
    let mut entry = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let ready = unsafe { libc::poll(&mut entry, 1, timeout.as_millis() as libc::c_int) };
    if ready != 1 {
        return None;
    }
    listener.accept().ok().map(|(conn, _)| conn)
}

fn serve(mut conn: TcpStream, number: usize, steps: &[Step], log: &Log) {
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for step in steps {
        match *step {
            Step::ReadLine => {
                let mut line = Vec::new();
                let _ = reader.read_until(b'\n', &mut line);
                log.push(format!("#{number} received {}", escape_abbreviated(&line, 60)));
            }
            Step::Send(bytes) => {
                conn.write_all(bytes).unwrap();
                log.push(format!("#{number} sent {}", escape_abbreviated(bytes, 60)));
            }
            // `reader` holds a second descriptor of the socket: both must go for it to close.
            Step::Close => {
                drop((reader, conn));
                log.push(format!("#{number} closed the connection (FIN)"));
                return;
            }
            Step::Reset => {
                set_linger_zero(&conn);
                drop((reader, conn));
                log.push(format!("#{number} reset the connection (RST)"));
                return;
            }
            Step::CloseThenReset => {
                conn.shutdown(std::net::Shutdown::Write).unwrap();
                set_linger_zero(&conn);
                drop((reader, conn));
                log.push(format!(
                    "#{number} closed the connection (FIN), then reset it (RST)"
                ));
                return;
            }
            Step::Silent => {
                log.push(format!("#{number} says nothing"));
                let ended = read_until_closed(&mut reader);
                log.push(format!("#{number} {ended}"));
            }
            Step::Dribble => {
                log.push(format!("#{number} sends \"v\" every 100 ms, and no newline"));
                // Deliberately slow: this is the server that keeps a per-read timeout happy.
                while conn.write_all(b"v").is_ok() {
                    thread::sleep(Duration::from_millis(100));
                }
                log.push(format!("#{number} the client closed the connection"));
            }
        }
    }
}

/// Reads and discards until end of stream: the client closed.
fn read_until_closed(reader: &mut impl Read) -> &'static str {
    let mut buf = [0u8; 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return "the client closed the connection",
            Ok(_) => {}
            Err(_) => return "the connection failed, or the client never closed it",
        }
    }
}

/// SO_LINGER with a zero timeout: `close` then resets the connection instead of closing it.
/// (The standard library's `set_linger` is not stable yet.)
fn set_linger_zero(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one `linger` from a pointer to a live value.
    let result = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "setsockopt(SO_LINGER)");
}

/// The state of the client's end of a TCP connection between local ports `client` and `server`
/// on this machine, from the kernel's tables (`/proc/net/tcp*`, Linux): `Some("01")` ESTABLISHED,
/// `Some("08")` CLOSE_WAIT (the server's FIN has arrived), `None` once the socket is closed (a
/// reset has arrived).
fn socket_state(client: u16, server: u16) -> Option<String> {
    let port = |address: Option<&&str>| {
        address
            .and_then(|address| address.rsplit(':').next())
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if port(fields.get(1)) == Some(client) && port(fields.get(2)) == Some(server) {
                return fields.get(3).map(|state| state.to_string());
            }
        }
    }
    None
}

/// Waits until the client's end of the connection from port `client` to port `server` is in
/// `state` (`None`: gone). A FIN or RST that a server sends on loopback usually reaches the
/// client's socket before the server's `close` returns, but on a busy machine the kernel may
/// finish that work a little later; a test that types the client's next command must wait.
fn wait_for_socket_state(client: u16, server: u16, state: Option<&str>) {
    let deadline = Instant::now() + TIMEOUT;
    while socket_state(client, server).as_deref() != state {
        assert!(
            Instant::now() < deadline,
            "the client's socket (port {client}) is in state {:?}, not {state:?}",
            socket_state(client, server)
        );
        // The kernel offers no notification for this; look again shortly.
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------------
// Running the client and telling the story
// ---------------------------------------------------------------------------------------------

/// What a client run printed, and how it ended.
struct Run {
    shown: String,
    stdin: String,
    stdout: String,
    stderr: String,
    code: Option<i32>,
    took: Duration,
}

/// Runs the lesson with `--port port` and `args`, `stdin` on its standard input.
fn run_client(port: u16, args: &[&str], stdin: &str) -> Run {
    let started = Instant::now();
    let output = Command::new(LESSON)
        .args(["--port", &port.to_string()])
        .args(args)
        .write_stdin(stdin)
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    Run {
        shown: shown_args(args),
        stdin: stdin.to_string(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code(),
        took: started.elapsed(),
    }
}

/// `"--seed 1 GET a"` as the words a shell would pass.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn shown_args(args: &[&str]) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.is_empty() {
                "''".to_string()
            } else {
                arg.to_string()
            }
        })
        .collect();
    format!("09_kv_client_robust {}", shown.join(" "))
}

impl Run {
    /// `$ 09_kv_client_robust ...`, stdout, stderr (marked), the exit code: the client's side.
    fn story(&self, server: SocketAddr) -> String {
        let mut story = if self.stdin.is_empty() {
            format!("$ {}\n", self.shown)
        } else {
            let typed = self.stdin.trim_end().replace('\n', "\\n");
            format!("$ printf '{typed}\\n' | {}\n", self.shown)
        };
        for line in self.stdout.lines() {
            story.push_str(line);
            story.push('\n');
        }
        for line in self.stderr.lines() {
            story.push_str("[stderr] ");
            story.push_str(&stable_tokens(line, server, &[]));
            story.push('\n');
        }
        match self.code {
            Some(code) => story.push_str(&format!("(exit code {code})\n")),
            None => story.push_str("(killed by a signal)\n"),
        }
        story
    }

    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "{}: exit code\nstdout:\n{}\nstderr:\n{}",
            self.shown,
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

/// The client's story, then the fake server's log.
fn story(runs: &[&str], server_log: &[String]) -> String {
    let mut story = runs.concat();
    story.push_str("--- fake server ---\n");
    for line in server_log {
        story.push_str(line);
        story.push('\n');
    }
    story
}

// ---------------------------------------------------------------------------------------------
// The happy path
// ---------------------------------------------------------------------------------------------

/// Against lesson 05 the client behaves like lesson 06: one attempt, the reply, exit code 0 or 1.
#[test]
fn a_session_against_the_real_server() {
    let server = start_lesson(SERVER, &[]).unwrap();
    let addr = server.addr();
    let port = addr.port();
    let session: [(&[&str], &str, &str, i32); 6] = [
        (&["--verbose", "SET", "greeting", "hello", "world"], "", "OK\n", 0),
        (&["GET", "greeting"], "", "hello world\n", 0),
        (&["set", "balance", "-5"], "", "OK\n", 0),
        (&["DELETE", "greeting"], "", "OK\n", 0),
        (&["GET", "greeting"], "", "ERROR no such key\n", 1),
        (
            &["--verbose"],
            "SET a 1\nGET a\nFLY\n",
            "OK\n1\nERROR unknown command \"FLY\" (expected SET, GET or DELETE)\n",
            0,
        ),
    ];
    let mut stories = Vec::new();
    for (args, stdin, stdout, code) in session {
        let run = run_client(port, args, stdin);
        run.assert_code(code);
        assert_eq!(run.stdout, stdout, "{}", run.shown);
        if !args.contains(&"--verbose") {
            assert_eq!(run.stderr, "", "{}", run.shown);
        }
        stories.push(run.story(addr));
    }
    assert!(server.wait_for_output("#6 disconnected", TIMEOUT));
    let mut story = stories.concat();
    story.push_str(&server_output_story(server));
    insta::assert_snapshot!("against-the-kv-server", story);
}

// ---------------------------------------------------------------------------------------------
// Errors after the command was sent
// ---------------------------------------------------------------------------------------------

/// ECONNRESET while waiting for the reply: a GET is sent again, on a new connection.
#[test]
fn a_get_is_repeated_after_a_reset() {
    use Step::*;
    let server = FakeServer::start(vec![vec![ReadLine, Reset], vec![ReadLine, Send(b"1\n")]]);
    let run = run_client(server.port(), &["--verbose", "--seed", "1", "GET", "a"], "");
    run.assert_code(0);
    assert_eq!(run.stdout, "1\n");
    assert!(run.stderr.contains("(ECONNRESET)"), "{}", run.stderr);
    let addr = server.addr;
    insta::assert_snapshot!("reset-then-answer", story(&[&run.story(addr)], &server.finish()));
}

/// The same reset after a SET: it may have been carried out, so it is not repeated (exit 4),
/// unless --retry-unsafe says so.
#[test]
fn a_set_is_not_repeated_after_a_reset_unless_allowed() {
    use Step::*;
    let server = FakeServer::start(vec![vec![ReadLine, Reset]]);
    let refused = run_client(server.port(), &["--verbose", "SET", "a", "1"], "");
    refused.assert_code(4);
    assert_eq!(refused.stdout, "");
    assert!(refused.stderr.contains("--retry-unsafe"), "{}", refused.stderr);
    let addr = server.addr;
    let log = server.finish();

    let server = FakeServer::start(vec![vec![ReadLine, Reset], vec![ReadLine, Send(b"OK\n")]]);
    let allowed = run_client(
        server.port(),
        &["--verbose", "--seed", "1", "--retry-unsafe", "SET", "a", "1"],
        "",
    );
    allowed.assert_code(0);
    assert_eq!(allowed.stdout, "OK\n");
    // Same story; the second fake server has another port.
    let allowed_story = allowed.story(server.addr);
    let allowed_log = server.finish();
    insta::assert_snapshot!(
        "set-not-repeated",
        format!(
            "{}{}",
            story(&[&refused.story(addr)], &log),
            story(&[&allowed_story], &allowed_log)
        )
    );
}

/// A DELETE that the server carried out, whose reply was lost: its repeat finds no key. The
/// client prints the reply it got, and a note that says why it may mislead.
#[test]
fn a_repeated_delete_can_find_its_key_gone() {
    use Step::*;
    let server = FakeServer::start(vec![
        vec![ReadLine, Reset],
        vec![ReadLine, Send(b"ERROR no such key\n")],
    ]);
    let run = run_client(
        server.port(),
        &["--verbose", "--seed", "1", "--retry-unsafe", "DELETE", "a"],
        "",
    );
    run.assert_code(1);
    assert_eq!(run.stdout, "ERROR no such key\n");
    assert!(run.stderr.contains("note: an earlier attempt"), "{}", run.stderr);
    let addr = server.addr;
    insta::assert_snapshot!("delete-repeated", story(&[&run.story(addr)], &server.finish()));
}

/// End of stream in the middle of a reply: never printed as if it were whole; a GET is repeated.
#[test]
fn a_reply_cut_short_is_not_printed_and_the_get_is_repeated() {
    use Step::*;
    let server = FakeServer::start(vec![
        vec![ReadLine, Send(b"hel"), Close],
        vec![ReadLine, Send(b"hello\n")],
    ]);
    let run = run_client(
        server.port(),
        &["--verbose", "--seed", "1", "GET", "greeting"],
        "",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "hello\n");
    assert!(run.stderr.contains("in the middle of a reply"), "{}", run.stderr);
    let addr = server.addr;
    insta::assert_snapshot!("closed-mid-reply", story(&[&run.story(addr)], &server.finish()));
}

/// A server that accepts and never answers: every attempt ends at its --timeout, and the client
/// gives up at its --deadline (exit 5), instead of waiting for ever.
#[test]
fn a_silent_server_is_given_up_by_the_deadline() {
    use Step::*;
    let server = FakeServer::start(vec![
        vec![ReadLine, Silent],
        vec![ReadLine, Silent],
        vec![ReadLine, Silent],
    ]);
    let args = words("--verbose --seed 1 --timeout 0.5 --deadline 1.6 GET a");
    let run = run_client(server.port(), &args, "");
    run.assert_code(5);
    assert_eq!(run.stdout, "");
    assert!(
        run.took < Duration::from_millis(2400),
        "the deadline is 1.6 s; the client took {:?}",
        run.took
    );
    let addr = server.addr;
    insta::assert_snapshot!("silent-server", story(&[&run.story(addr)], &server.finish()));
}

/// A server that sends one byte every 100 ms never lets a per-read timeout run out, but the
/// attempt's deadline ends the wait.
#[test]
fn a_deadline_ends_a_reply_that_trickles_in() {
    use Step::*;
    let server = FakeServer::start(vec![vec![ReadLine, Dribble]]);
    let args = ["--verbose", "--timeout", "0.5", "--attempts", "1", "GET", "a"];
    let run = run_client(server.port(), &args, "");
    run.assert_code(5);
    assert!(run.took < Duration::from_millis(1500), "took {:?}", run.took);
    let addr = server.addr;
    insta::assert_snapshot!("trickle", story(&[&run.story(addr)], &server.finish()));
}

// ---------------------------------------------------------------------------------------------
// Errors before the command was sent
// ---------------------------------------------------------------------------------------------

/// ECONNREFUSED: nothing listens. Every attempt is refused at once; the waits between them grow;
/// then one line, and exit code 3, as lesson 06.
#[test]
fn a_refused_connection_is_retried_then_reported() {
    let port = common::unused_port();
    let run = run_client(port, &["--verbose", "--seed", "1", "SET", "a", "1"], "");
    run.assert_code(3);
    assert_eq!(run.stdout, "");
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "error: cannot connect to 127.0.0.1:{port}: connection refused (ECONNREFUSED)"
        )) && last.contains("cargo run --bin 05_kv_server"),
        "{}",
        run.stderr
    );
    // A SET is repeated here: a refused connection carried nothing to the server.
    assert_eq!(run.stderr.matches("(ECONNREFUSED)").count(), 5, "{}", run.stderr);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    insta::assert_snapshot!("connection-refused", run.story(addr));
}

/// A server whose accept queue is full does not answer a new connection's SYN: `connect` would
/// wait for minutes, `--connect-timeout` ends it.
#[test]
fn a_connect_timeout_ends_a_handshake_that_never_completes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    set_backlog(&listener, 0);
    // Linux queues backlog + 1 connections: fill the queue; we never accept.
    let _queued = TcpStream::connect(addr).unwrap();
    let args = words("--verbose --seed 1 --connect-timeout 0.2 --attempts 2 GET a");
    let run = run_client(addr.port(), &args, "");
    run.assert_code(3);
    assert!(run.stderr.contains("connection timed out"), "{}", run.stderr);
    assert!(run.took < Duration::from_secs(2), "took {:?}", run.took);
    insta::assert_snapshot!("connect-timeout", run.story(addr));
}

fn set_backlog(listener: &TcpListener, backlog: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a listening socket we own sets a new backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), backlog) }, 0);
}

// ---------------------------------------------------------------------------------------------
// A kept connection that breaks while the client waits for its next command
// ---------------------------------------------------------------------------------------------

/// The lesson in its interactive mode, with pipes: the test types a line, waits for the reply.
struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    typed: String,
}

impl Interactive {
    fn start(port: u16, args: &[&str]) -> Interactive {
        let mut child = Process::new(LESSON)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = lines_of(child.stdout.take().unwrap());
        let (stderr_tx, stderr) = mpsc::channel();
        let mut stderr_pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            let _ = stderr_tx.send(text);
        });
        Interactive {
            child,
            stdin,
            stdout,
            stderr,
            typed: String::new(),
        }
    }

    /// Types `line` and waits for the reply line on stdout.
    fn ask(&mut self, line: &str) -> String {
        self.typed.push_str(line);
        self.typed.push('\n');
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        self.stdout
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("no reply to {line:?} within {TIMEOUT:?}"))
    }

    /// Ends the input (Ctrl-D) and waits for the client to exit.
    fn finish(mut self, shown_args: &[&str], replies: &[String]) -> (Run, ExitStatus) {
        drop(self.stdin.take());
        let started = Instant::now();
        // Its stderr reaches end of stream when it exits.
        let stderr = self
            .stderr
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("the client did not exit within {TIMEOUT:?} after its input ended"));
        let status = self.child.wait().unwrap();
        let mut stdout: String = replies.iter().map(|line| format!("{line}\n")).collect();
        while let Ok(line) = self.stdout.try_recv() {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let run = Run {
            shown: shown_args_for_stdin(shown_args),
            stdin: self.typed.clone(),
            stdout,
            stderr,
            code: status.code(),
            took: started.elapsed(),
        };
        (run, status)
    }
}

fn shown_args_for_stdin(args: &[&str]) -> String {
    format!("09_kv_client_robust {}", args.join(" "))
}

fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server closed the kept connection (FIN) while the client waited for its next command.
/// The next command is written without error, and the client reads end of stream: a GET is sent
/// again on a new connection.
#[test]
fn a_kept_connection_closed_by_the_server_is_replaced() {
    use Step::*;
    let server = FakeServer::start(vec![
        vec![ReadLine, Send(b"1\n"), Close],
        vec![ReadLine, Send(b"2\n")],
    ]);
    let args = ["--verbose", "--seed", "1"];
    let mut client = Interactive::start(server.port(), &args);
    let first = client.ask("GET a");
    server.wait_for("#1 closed");
    // CLOSE_WAIT: the server's FIN has arrived.
    wait_for_socket_state(server.client_port(1), server.port(), Some("08"));
    let second = client.ask("GET b");
    assert_eq!([first.as_str(), second.as_str()], ["1", "2"]);
    let (run, _) = client.finish(&args, &[first, second]);
    run.assert_code(0);
    assert!(run.stderr.contains("end of stream"), "{}", run.stderr);
    let addr = server.addr;
    insta::assert_snapshot!(
        "kept-connection-closed",
        story(&[&run.story(addr)], &server.finish())
    );
}

/// The server reset the kept connection (RST) while the client waited: writing the next command
/// fails with ECONNRESET. The command never left, so even a SET is sent again.
#[test]
fn a_kept_connection_reset_by_the_server_fails_the_write() {
    use Step::*;
    let server = FakeServer::start(vec![
        vec![ReadLine, Send(b"OK\n"), Reset],
        vec![ReadLine, Send(b"OK\n")],
    ]);
    let args = ["--verbose", "--seed", "1"];
    let mut client = Interactive::start(server.port(), &args);
    let first = client.ask("SET a 1");
    server.wait_for("#1 reset");
    wait_for_socket_state(server.client_port(1), server.port(), None);
    let second = client.ask("SET b 2");
    let (run, _) = client.finish(&args, &[first, second]);
    run.assert_code(0);
    assert_eq!(run.stdout, "OK\nOK\n");
    assert!(
        run.stderr
            .contains("sending failed: connection reset by peer (ECONNRESET)"),
        "{}",
        run.stderr
    );
    let addr = server.addr;
    insta::assert_snapshot!(
        "kept-connection-reset",
        story(&[&run.story(addr)], &server.finish())
    );
}

/// The server closed the kept connection and then reset it: writing the next command fails with
/// EPIPE, "broken pipe", the error for writing to a connection that is known to be dead.
#[test]
fn writing_to_a_connection_closed_and_reset_is_a_broken_pipe() {
    use Step::*;
    let server = FakeServer::start(vec![
        vec![ReadLine, Send(b"OK\n"), CloseThenReset],
        vec![ReadLine, Send(b"OK\n")],
    ]);
    let args = ["--verbose", "--seed", "1"];
    let mut client = Interactive::start(server.port(), &args);
    let first = client.ask("SET a 1");
    server.wait_for("#1 closed the connection (FIN), then reset");
    wait_for_socket_state(server.client_port(1), server.port(), None);
    let second = client.ask("SET b 2");
    let (run, _) = client.finish(&args, &[first, second]);
    run.assert_code(0);
    assert_eq!(run.stdout, "OK\nOK\n");
    assert!(
        run.stderr.contains("sending failed: broken pipe (EPIPE)"),
        "{}",
        run.stderr
    );
    let addr = server.addr;
    insta::assert_snapshot!("broken-pipe", story(&[&run.story(addr)], &server.finish()));
}

// ---------------------------------------------------------------------------------------------
// The same errors through `workbook proxy`, in front of the real lesson 05
// ---------------------------------------------------------------------------------------------

/// Lesson 05 behind the proxy, with the weather of `workbook proxy`'s `flags` (as typed after
/// `workbook proxy --to <server>`) and seed 7. The server holds `greeting` = `hello` (set
/// directly, as its log's first connection shows).
struct Weathered {
    server: ServerProcess,
    proxy: ProxyHandle,
    flags: String,
}

impl Weathered {
    fn start(flags: &str) -> Weathered {
        let server = start_lesson(SERVER, &[]).unwrap();
        let mut direct = TcpStream::connect(server.addr()).unwrap();
        direct.set_read_timeout(Some(TIMEOUT)).unwrap();
        direct.write_all(b"SET greeting hello\n").unwrap();
        let mut reply = [0u8; 3];
        direct.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"OK\n");
        drop(direct);
        let to = server.addr().to_string();
        let mut all = vec!["--to", to.as_str(), "--seed", "7"];
        all.extend(flags.split_whitespace());
        let config = ProxyConfig::from_flags(all).unwrap_or_else(|why| panic!("{why}"));
        let proxy = proxy::start(config).unwrap();
        Weathered {
            server,
            proxy,
            flags: flags.to_string(),
        }
    }

    fn port(&self) -> u16 {
        self.proxy.addr().port()
    }

    /// How the proxy was started, the client's runs, then what the proxy did, once it has logged
    /// each of `proxy_ends` (how each of its connections ended), then the server's log, once it
    /// has logged `connections` disconnections (its first, the direct `SET greeting hello`,
    /// included).
    fn story(self, runs: &[String], connections: usize, proxy_ends: &[&str]) -> String {
        let proxy_addr = self.proxy.addr();
        for end in proxy_ends {
            assert!(
                self.proxy.wait_for_log(end, TIMEOUT),
                "the proxy never logged {end:?}: {:?}",
                self.proxy.log_lines()
            );
        }
        let proxy_log = self.proxy.stop();
        assert!(
            self.server
                .wait_for_output(&format!("#{connections} disconnected"), TIMEOUT),
            "the server never logged its connection #{connections} ending"
        );
        let mut story = format!("$ workbook proxy --to <server> --seed 7 {} &\n", self.flags);
        story.push_str(&runs.concat());
        story.push_str("--- proxy ---\n");
        for line in proxy_log {
            story.push_str(&stable_tokens(&line, proxy_addr, &[]));
            story.push('\n');
        }
        story.push_str(&server_output_story(self.server));
        story
    }
}

/// ECONNRESET: the proxy resets the first connection after 2 bytes of the reply. The GET is
/// sent again on a new connection, which the proxy lets through.
#[test]
fn through_the_proxy_a_reset_is_met_and_the_get_repeated() {
    let weathered = Weathered::start("--direction down --reset-after 2 --only-first 1");
    let run = run_client(
        weathered.port(),
        &["--verbose", "--seed", "1", "GET", "greeting"],
        "",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "hello\n");
    assert!(
        run.stderr.contains("(ECONNRESET) in the middle of the reply"),
        "{}",
        run.stderr
    );
    let runs = [run.story(weathered.proxy.addr())];
    insta::assert_snapshot!(
        "proxy-reset",
        weathered.story(&runs, 3, &["c1 reset:", "c2 closed ("])
    );
}

/// The reply to a SET is lost (reset after its first byte): the client does not repeat the SET,
/// and says it may have been carried out. The server's log shows that it was, and a GET says so.
#[test]
fn through_the_proxy_a_set_whose_reply_was_lost_was_carried_out() {
    let weathered = Weathered::start("--direction down --reset-after 1 --only-first 1");
    let set = run_client(weathered.port(), &["--verbose", "SET", "a", "1"], "");
    set.assert_code(4);
    assert_eq!(set.stdout, "");
    let get = run_client(weathered.port(), &["GET", "a"], "");
    get.assert_code(0);
    assert_eq!(get.stdout, "1\n");
    let addr = weathered.proxy.addr();
    let runs = [set.story(addr), get.story(addr)];
    insta::assert_snapshot!(
        "proxy-set-carried-out",
        weathered.story(&runs, 3, &["c1 reset:", "c2 closed ("])
    );
}

/// End of stream in the middle of a reply: the proxy closes the first connection after 3 bytes
/// of the reply (`hel`). Never printed as a value; the GET is sent again.
#[test]
fn through_the_proxy_a_reply_cut_short_is_sent_again() {
    let weathered = Weathered::start("--direction down --close-after 3 --only-first 1");
    let run = run_client(
        weathered.port(),
        &["--verbose", "--seed", "1", "GET", "greeting"],
        "",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "hello\n");
    let runs = [run.story(weathered.proxy.addr())];
    insta::assert_snapshot!(
        "proxy-close",
        weathered.story(&runs, 3, &["c1 closed (", "c2 closed ("])
    );
}

/// A black hole: the proxy accepts and forwards nothing, and keeps the connection open. Each
/// attempt ends at its --timeout, the whole command at its --deadline (exit 5).
#[test]
fn through_the_proxy_a_black_hole_ends_at_the_deadline() {
    let weathered = Weathered::start("--stall-after 0");
    let args = words("--verbose --seed 1 --timeout 0.5 --deadline 1.6 GET greeting");
    let run = run_client(weathered.port(), &args, "");
    run.assert_code(5);
    assert!(run.took < Duration::from_millis(2400), "took {:?}", run.took);
    let runs = [run.story(weathered.proxy.addr())];
    let ends = ["c1 closed (", "c2 closed (", "c3 closed ("];
    insta::assert_snapshot!("proxy-stall", weathered.story(&runs, 4, &ends));
}

/// One byte per write in both directions: the client reads its reply in pieces, and prints it
/// whole.
#[test]
fn through_the_proxy_a_sliced_path_still_works() {
    let weathered = Weathered::start("--slice 1");
    let run = run_client(weathered.port(), &["GET", "greeting"], "");
    run.assert_code(0);
    assert_eq!(run.stdout, "hello\n");
    let runs = [run.story(weathered.proxy.addr())];
    insta::assert_snapshot!("proxy-slice", weathered.story(&runs, 2, &["c1 closed ("]));
}

/// ECONNREFUSED while the proxy does not listen (its first 550 ms): the client waits 56, 149
/// and 388 ms between attempts (seed 1), so its fourth attempt, at least 593 ms after its first,
/// is accepted.
#[test]
fn through_the_proxy_refused_connections_are_retried_until_accepted() {
    let weathered = Weathered::start("--refuse-for-ms 550");
    let run = run_client(
        weathered.port(),
        &["--verbose", "--seed", "1", "GET", "greeting"],
        "",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "hello\n");
    assert_eq!(run.stderr.matches("(ECONNREFUSED)").count(), 3, "{}", run.stderr);
    let runs = [run.story(weathered.proxy.addr())];
    insta::assert_snapshot!("proxy-refused", weathered.story(&runs, 2, &["c1 closed ("]));
}

/// EPIPE: while the client waits for its next command, the proxy closes the kept connection
/// (FIN, after the 3 bytes of the first reply) and then resets it (300 ms after accepting it).
/// Writing the next command fails with "broken pipe"; nothing was sent, so it is sent again.
#[test]
fn through_the_proxy_writing_after_a_close_and_a_reset_is_a_broken_pipe() {
    let weathered = Weathered::start("--direction down --close-after 3 --reset-after-ms 300 --only-first 1");
    let args = ["--verbose", "--seed", "1"];
    let mut client = Interactive::start(weathered.port(), &args);
    let first = client.ask("SET a 1");
    assert!(weathered.proxy.wait_for_log("c1 reset: RST", TIMEOUT));
    let client_port = weathered
        .proxy
        .log_lines()
        .iter()
        .find_map(|line| line.strip_prefix("c1 from ")?.parse::<SocketAddr>().ok())
        .expect("the proxy logs `c1 from <client address>`")
        .port();
    wait_for_socket_state(client_port, weathered.port(), None);
    let second = client.ask("GET greeting");
    let (run, _) = client.finish(&args, &[first, second]);
    run.assert_code(0);
    assert_eq!(run.stdout, "OK\nhello\n");
    assert!(
        run.stderr.contains("sending failed: broken pipe (EPIPE)"),
        "{}",
        run.stderr
    );
    let runs = [run.story(weathered.proxy.addr())];
    let ends = ["c1 reset:", "c2 closed ("];
    insta::assert_snapshot!("proxy-broken-pipe", weathered.story(&runs, 3, &ends));
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// Mistakes in the command are reported before connecting: usage on stderr, exit code 2.
#[test]
fn usage_errors_exit_with_code_2() {
    let port = common::unused_port();
    let mistakes: [&[&str]; 6] = [
        &["GET"],
        &["SET", "a"],
        &["FLY", "away"],
        &["SET", "a", "line\nbreak"],
        &["--attempts", "0", "GET", "a"],
        &["--timeout", "0", "GET", "a"],
    ];
    for args in mistakes {
        let run = run_client(port, args, "");
        run.assert_code(2);
        assert!(run.stderr.starts_with("error: "), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
}

// ---------------------------------------------------------------------------------------------
// Keepalive, in a network namespace of our own
// ---------------------------------------------------------------------------------------------

/// TCP keepalive cannot catch a server that is alive but silent: its kernel answers every probe,
/// and only the client's deadline ends the wait. It does catch a link that went dead: once no
/// packet gets through, the probes go unanswered and the `read` fails with ETIMEDOUT.
///
/// "Dead" is made for real: the test moves one thread into a new network namespace (it needs
/// root, as CI has; elsewhere it says SKIPPED), with a loopback interface of its own, and takes
/// that interface down while the client waits. Nothing outside the namespace is touched.
#[test]
#[ignore = "slow: keepalive needs seconds of silence (about 8 s in all); needs root for a network namespace"]
fn keepalive_catches_a_dead_link_but_not_a_silent_server() {
    // A network namespace belongs to a thread: this one moves into a new one, and everything it
    // starts (the fake server's thread, the client process) lives there too.
    let result = thread::spawn(|| -> std::io::Result<String> {
        // SAFETY: unshare(2) with a flag; it changes only this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        set_loopback_up(true)?;
        Ok(format!(
            "{}{}",
            keepalive_and_a_silent_server(),
            keepalive_and_a_dead_link()
        ))
    })
    .join()
    .unwrap();
    match result {
        Ok(story) => insta::assert_snapshot!("keepalive", story),
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED keepalive_catches_a_dead_link_but_not_a_silent_server: cannot make a \
                 network namespace here ({err}); it needs root"
            );
        }
    }
}

/// The server accepted, read the command, and says nothing: keepalive probes are answered by its
/// kernel, so the client waits for its whole --timeout.
fn keepalive_and_a_silent_server() -> String {
    use Step::*;
    let server = FakeServer::start(vec![vec![ReadLine, Silent]]);
    let args = words("--verbose --keepalive 1 --timeout 3.5 --attempts 1 GET a");
    let run = run_client(server.port(), &args, "");
    run.assert_code(5);
    assert!(
        run.stderr.contains("no complete reply within 3.5 s"),
        "{}",
        run.stderr
    );
    assert!(run.took >= Duration::from_millis(3400), "took {:?}", run.took);
    let addr = server.addr;
    story(&[&run.story(addr)], &server.finish())
}

/// The same, but once the server has the command, the namespace's loopback interface goes down:
/// no packet gets through any more, as when a cable is cut. Three probes, one a second after a
/// second of silence, go unanswered, and the read fails with ETIMEDOUT in about 4 s, long before
/// the 20 s timeout.
fn keepalive_and_a_dead_link() -> String {
    use Step::*;
    let server = FakeServer::start(vec![vec![ReadLine, Silent]]);
    let args =
        words("--verbose --seed 1 --keepalive 1 --timeout 20 --connect-timeout 0.5 --attempts 2 GET a");
    let mut client = Interactive::start(server.port(), &args);
    server.wait_for("#1 received");
    set_loopback_up(false).unwrap();
    let link_down = Instant::now();
    drop(client.stdin.take());
    let stderr = client
        .stderr
        .recv_timeout(Duration::from_secs(15))
        .expect("the client did not give up within 15 s of the link going down");
    let took = link_down.elapsed();
    let status = client.child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("connection timed out (ETIMEDOUT) while waiting for the reply"),
        "{stderr}"
    );
    assert!(
        took > Duration::from_secs(2) && took < Duration::from_secs(10),
        "keepalive should end the wait about 4 s after the link went down; it took {took:?}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "keepalive: the client gave up {took:?} after the link went down"
    );
    // The fake server's thread still waits for a close that cannot reach it; it is left behind.
    let mut story = format!("$ {}\n", shown_args(&args));
    for (index, line) in stderr.lines().enumerate() {
        story.push_str("[stderr] ");
        story.push_str(&stable_tokens(line, server.addr, &[]));
        story.push('\n');
        if index == 0 {
            story.push_str("(the server has read \"GET a\\n\"; the loopback interface goes down)\n");
        }
    }
    story.push_str(&format!("(exit code {})\n", status.code().unwrap_or(-1)));
    story
}

/// `ip link set lo up` (or `down`), with the ioctl that `ip` and `ifconfig` use, so the test
/// needs no tools.
fn set_loopback_up(up: bool) -> std::io::Result<()> {
    // SAFETY: a plain socket, used only as a handle for the ioctls, and closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the `ifreq` we pass, which lives
    // across the calls; the flags field is the member of the union these requests use.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            -1
        } else {
            let flags = request.ifr_ifru.ifru_flags;
            request.ifr_ifru.ifru_flags = if up {
                flags | libc::IFF_UP as libc::c_short
            } else {
                flags & !(libc::IFF_UP as libc::c_short)
            };
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &mut request)
        }
    };
    let error = std::io::Error::last_os_error();
    // SAFETY: we opened `fd` above and close it once.
    unsafe { libc::close(fd) };
    if result < 0 { Err(error) } else { Ok(()) }
}

/// `workbook check kv-client-robust`'s reset scenario, against the lesson, with `--verbose` so
/// the transcript shows the reset and the second attempt (`--seed` fixes the wait between them),
/// its stderr before its stdout.
/// Its other scenario, a server that never answers, waits for the 6 s deadline: the checker's
/// own tests run it (`our_own_lessons_pass_every_step`).
#[test]
fn the_checkers_reset_scenario_matches_its_snapshot() {
    use socket_workbook::harness::process::Stream;
    use socket_workbook::harness::{RunOptions, run_client_scenario};
    let command = [LESSON, "--verbose", "--seed", "7", "--port", "{port}"].map(String::from);
    let scenario = socket_workbook::scenarios::kv::robust_reset_then_answer();
    let mut run = run_client_scenario(&command, &scenario, &RunOptions::reference())
        .unwrap_or_else(|failure| panic!("{failure}"));
    // stdout and stderr are two pipes, read by two threads: only each one's order is fixed.
    run.output.sort_by_key(|line| line.stream != Stream::Stderr);
    insta::assert_snapshot!("checker-reset-then-answer", run.render(&scenario));
}
