//! A hostile environment for any server lesson: a stdout that nobody reads any more, and a
//! process that has run out of file descriptors. Neither may crash a server or make it spin.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use socket_workbook::harness::client::ReadEnd;
use socket_workbook::harness::{Connection, Readiness, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A server started as `server | head -1` would start it: its `listening on` line was read,
/// then the reading end of its stdout was closed, so every later write there fails with EPIPE.
pub struct ServerWithoutStdout {
    child: Child,
    pub addr: SocketAddr,
    /// Everything the server wrote on stderr, sent when that pipe closes (when it exits).
    stderr: Receiver<String>,
    stderr_text: Option<String>,
}

/// Starts `program` with `args` and `--port 0`, waits for its `listening on` line, and closes
/// the pipe its stdout writes to.
pub fn start_with_stdout_closed(program: &str, args: &[&str]) -> ServerWithoutStdout {
    let mut child = Command::new(program)
        .args(args)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {program}: {err}"));
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .expect("reading the first stdout line");
    let addr = first
        .trim_end()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("first line is not `listening on <ip>:<port>`: {first:?}"));
    // Like `head -1` exiting: nobody reads the server's stdout from now on.
    drop(stdout);
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = sender.send(text);
    });
    ServerWithoutStdout {
        child,
        addr,
        stderr: receiver,
        stderr_text: None,
    }
}

impl ServerWithoutStdout {
    /// Fails, with what the server wrote on stderr, if it has exited.
    pub fn assert_still_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the server exited ({status}) once its stdout was closed; its stderr:\n{}",
                self.stderr_text()
            );
        }
    }

    /// Waits up to `timeout` for the server to exit on its own; fails unless it exits with 0.
    pub fn assert_exits_successfully(&mut self, timeout: Duration) {
        // Its stderr pipe closes when it exits.
        let stderr = self
            .stderr
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("the server did not exit within {timeout:?}"));
        let status = self.child.wait().unwrap();
        assert!(
            status.success() && !stderr.contains("panicked"),
            "the server exited with {status}; its stderr:\n{stderr}"
        );
        self.stderr_text = Some(stderr);
    }

    /// Ends the server and returns everything it wrote on stderr; fails if that shows a panic.
    pub fn finish(mut self) -> String {
        let stderr = self.stderr_text();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("failed printing"),
            "the server panicked once its stdout was closed:\n{stderr}"
        );
        stderr
    }

    fn stderr_text(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(text) = &self.stderr_text {
            return text.clone();
        }
        let text = self.stderr.recv_timeout(TIMEOUT).unwrap_or_default();
        self.stderr_text = Some(text.clone());
        text
    }
}

impl Drop for ServerWithoutStdout {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key-value server (lessons 05, 07 and 08) whose stdout is closed serves two clients, one
/// after the other, correctly, and is still running afterwards. Every command makes it log a
/// line, so every command meets the broken pipe.
pub fn assert_kv_server_survives_closed_stdout(program: &str) {
    let mut server = start_with_stdout_closed(program, &[]);
    for (command, reply) in [("SET a 1\n", "OK\n"), ("GET a\n", "1\n")] {
        let mut client = Connection::connect(server.addr, TIMEOUT).unwrap();
        client.send(command.as_bytes()).unwrap();
        assert_eq!(
            client.read_line(TIMEOUT, 1024).bytes,
            reply.as_bytes(),
            "after {command:?}"
        );
        client.shutdown_write().unwrap();
        assert_eq!(client.read_to_end(TIMEOUT).end, ReadEnd::Closed);
    }
    server.assert_still_running();
    server.finish();
}

/// With no file descriptor left for a new connection, `accept` fails with EMFILE ("too many
/// open files") for as long as a client waits. The server must log that and keep running, but
/// not spin: one error per pause (100 ms), not thousands a second.
///
/// `ulimit -n 4` leaves descriptors 0 to 2 (stdin, stdout, stderr) and 3, the listener: every
/// connection would need a fifth.
pub fn assert_failed_accepts_do_not_spin(program: &str, args: &[&str]) {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "ulimit -n 4 && exec \"$0\" \"$@\" --port 0 --host 127.0.0.1",
        program,
    ]);
    command.args(args);
    let mut server = ServerProcess::start(command, Readiness::ListeningLine, TIMEOUT).unwrap();
    let mut client = Connection::connect(server.addr(), TIMEOUT).unwrap();
    assert!(
        server.wait_for_output("accept failed", TIMEOUT),
        "no `accept failed` line: the server should log the failed accept"
    );
    // The client waits in the kernel's queue, unanswered: a second to count the errors in.
    let waited = client.read_line(Duration::from_secs(1), 1024);
    assert_eq!(waited.end, ReadEnd::TimedOut, "{waited:?}");
    assert!(
        server.exit_status().is_none(),
        "the server exited when accept failed"
    );
    let output = server.finish();
    let errors = output
        .iter()
        .filter(|line| line.text.contains("accept failed"))
        .count();
    // About 10 with a 100 ms pause; a loop that retries at once logs tens of thousands.
    assert!(
        errors <= 40,
        "{errors} `accept failed` lines in about a second: the accept loop spins"
    );
}

/// A client that sent a line over the cap gets `ERROR line too long`, and the server drains
/// what it still sends before closing (`close_gracefully`, or lesson 08's draining phase). A
/// client that keeps sending one byte every 50 ms must not keep it draining: the drain has a
/// deadline of 250 ms in all, not 250 ms per `read`. Once the server has closed, the client's
/// writes fail (the server's kernel answers them with a reset).
pub fn assert_drain_ends_by_its_deadline(program: &str) {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Instant;

    use socket_workbook::kv::MAX_LINE;

    let server = socket_workbook::harness::start_lesson(program, &["--quiet"]).unwrap();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn.write_all(&vec![b'x'; MAX_LINE + 1]).unwrap();
    let mut reply = Vec::new();
    // The reply, then the end of the stream: the server has shut down its sending side.
    conn.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"ERROR line too long\n");

    let draining_since = Instant::now();
    let mut bytes_sent = 0;
    loop {
        // Deliberately slow: this client is the byte-a-minute client, sped up.
        thread::sleep(Duration::from_millis(50));
        if conn.write_all(b"x").is_err() {
            break;
        }
        bytes_sent += 1;
        assert!(
            draining_since.elapsed() < Duration::from_secs(3),
            "the server still reads from a client it hung up on {:?} ago ({bytes_sent} bytes, \
             one every 50 ms): its drain has no deadline",
            draining_since.elapsed()
        );
    }
}
