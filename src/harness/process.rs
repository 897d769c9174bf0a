//! Starting a server program, waiting until it is ready, collecting what it prints, and making
//! sure it is gone afterwards.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Which of the program's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line the program printed (without its newline; invalid UTF-8 replaced).
#[derive(Debug, Clone)]
pub struct OutputLine {
    pub stream: Stream,
    pub text: String,
}

/// How to tell that a freshly started server is ready for clients.
#[derive(Debug, Clone, Copy)]
pub enum Readiness {
    /// The workbook's convention: the first stdout line is `listening on <ip>:<port>`.
    ListeningLine,
    /// Any program: something listens on this port on 127.0.0.1. Checked without connecting, so a
    /// server that serves a single client is not used up by the check.
    PortListening(u16),
    /// Any UDP program: a UDP socket of the program (its process group) is bound to this port.
    /// UDP has no `listen`: a bound socket is all a UDP server needs to receive datagrams.
    UdpBound(u16),
    /// Do not wait (for client programs).
    Started,
}

/// Why a server could not be started or did not become ready.
#[derive(Debug)]
pub struct StartError {
    pub message: String,
    /// The last lines the program printed on stderr, if any.
    pub stderr_tail: Vec<String>,
    /// How the program ended, when it exited by itself before it was ready (`exit code 2`); `None`
    /// when it could not be started, or was still running when the wait ran out.
    pub exit: Option<String>,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.stderr_tail.is_empty() {
            write!(f, "\nits stderr ended with:")?;
            for line in &self.stderr_tail {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

/// Process groups of all programs started and not yet reaped, so that [`kill_all_running`] can
/// end them when the tool itself is interrupted.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Set by [`kill_all_running`]: no new program may keep running.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Kills every program this process started that may still run (SIGTERM, then SIGKILL). For a
/// Ctrl-C handler: our programs run in process groups of their own, so the terminal's SIGINT
/// does not reach them.
pub fn kill_all_running() {
    let groups = {
        let running = RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // From now on no program is started (see `ServerProcess::start`).
        INTERRUPTED.store(true, Ordering::SeqCst);
        running.clone()
    };
    for &pgid in &groups {
        signal_group(pgid, libc::SIGTERM);
    }
    if !groups.is_empty() {
        // Give them a moment to exit cleanly, then make sure.
        std::thread::sleep(Duration::from_millis(300));
        for &pgid in &groups {
            signal_group(pgid, libc::SIGKILL);
        }
    }
}

/// After [`kill_all_running`] began (from a Ctrl-C handler), the work in other threads must not
/// finish the process before the handler has made sure every program is gone: they wait here.
pub fn wait_if_interrupted() {
    while INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::park();
    }
}

/// Keep at most this many output lines (the rest are counted, not stored) and cut longer lines:
/// a program that prints without end must not fill our memory.
const MAX_LINES: usize = 10_000;
const MAX_LINE_BYTES: usize = 4096;

#[derive(Default)]
struct OutputState {
    lines: Vec<OutputLine>,
    dropped: usize,
    open_streams: usize,
}

#[derive(Default)]
struct Output {
    state: Mutex<OutputState>,
    changed: Condvar,
}

/// A running server program. Dropping it kills the program's whole process group, also when a
/// test panics, so no server outlives its test.
pub struct ServerProcess {
    pid: i32,
    addr: SocketAddr,
    output: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
    exited: Receiver<io::Result<ExitStatus>>,
    exit_status: Option<ExitStatus>,
    /// How long a killed program gets to clean up after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// How it was started, so that [`ServerProcess::restart`] can start it again.
    again: StartAgain,
}

/// A program's command line, folder, environment and readiness: enough to start it again.
struct StartAgain {
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    dir: Option<std::path::PathBuf>,
    envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)>,
    readiness: Readiness,
    timeout: Duration,
}

impl StartAgain {
    fn of(command: &Command, readiness: Readiness, timeout: Duration) -> StartAgain {
        StartAgain {
            program: command.get_program().to_owned(),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            dir: command.get_current_dir().map(ToOwned::to_owned),
            envs: command
                .get_envs()
                .map(|(key, value)| (key.to_owned(), value.map(ToOwned::to_owned)))
                .collect(),
            readiness,
            timeout,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }
}

/// How long a program stopped by [`ServerProcess::restart`] gets after SIGTERM: enough to save
/// its data on the way out.
pub const RESTART_GRACE: Duration = Duration::from_secs(2);

impl ServerProcess {
    /// Starts `command` (with its arguments already set) and waits up to `timeout` for it to be
    /// ready. Its stdin is closed and its stdout/stderr are read on background threads.
    pub fn start(
        mut command: Command,
        readiness: Readiness,
        timeout: Duration,
    ) -> Result<ServerProcess, StartError> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A process group of its own, so killing it also kills anything it started
            // (`sh -c "python3 server.py"` is two processes).
            .process_group(0);
        let program = format!("{command:?}");
        let again = StartAgain::of(&command, readiness, timeout);
        // Spawn and register while holding the registry's lock: a Ctrl-C handler that runs
        // `kill_all_running` meanwhile waits for the lock, and then sees this program too.
        let mut child: Child = {
            let mut running = RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(StartError {
                    message: "interrupted".to_string(),
                    stderr_tail: Vec::new(),
                    exit: None,
                });
            }
            let child = command.spawn().map_err(|err| StartError {
                message: format!("could not start {program}: {err}"),
                stderr_tail: Vec::new(),
                exit: None,
            })?;
            running.push(child.id() as i32);
            child
        };
        let pid = child.id() as i32;
        let output = Arc::new(Output::default());
        let mut readers = Vec::new();
        for (stream, pipe) in [
            (
                Stream::Stdout,
                child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                Stream::Stderr,
                child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ] {
            let pipe = pipe.expect("stdout and stderr were set to piped");
            output.state.lock().unwrap().open_streams += 1;
            let output = Arc::clone(&output);
            readers.push(thread::spawn(move || collect_lines(pipe, stream, &output)));
        }
        // A thread waits for the child, so that "has it exited?" can be asked with a timeout.
        let (exit_tx, exited) = mpsc::channel();
        thread::spawn(move || {
            let _ = exit_tx.send(child.wait());
        });
        let mut server = ServerProcess {
            pid,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            output,
            readers,
            exited,
            exit_status: None,
            grace: Duration::from_millis(500),
            again,
        };
        server.addr = match readiness {
            Readiness::ListeningLine => server.wait_for_listening_line(timeout)?,
            Readiness::PortListening(port) => server.wait_for_port(port, timeout)?,
            Readiness::UdpBound(port) => server.wait_for_udp_port(port, timeout)?,
            Readiness::Started => server.addr,
        };
        Ok(server)
    }

    /// Stops the program (SIGTERM, then SIGKILL after [`RESTART_GRACE`]) and starts it again
    /// with the same command line, folder and environment, waiting until it is ready as the
    /// first time. What the first run printed is kept, before what the second prints.
    pub fn restart(&mut self) -> Result<(), StartError> {
        self.grace = self.grace.max(RESTART_GRACE);
        self.kill();
        let mut next = ServerProcess::start(self.again.command(), self.again.readiness, self.again.timeout)?;
        let earlier = std::mem::take(&mut self.output.state.lock().unwrap().lines);
        next.output.state.lock().unwrap().lines.splice(0..0, earlier);
        // The stopped program's readers finish as its pipes close, when `self` is dropped.
        std::mem::swap(self, &mut next);
        Ok(())
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn start_error(&mut self, message: String) -> StartError {
        // Exited by itself, or still running (and about to be killed)?
        let exit = self.wait_exit(Duration::ZERO).map(describe_exit);
        self.kill();
        StartError {
            message,
            stderr_tail: self.stderr_tail(8),
            exit,
        }
    }

    fn wait_for_listening_line(&mut self, timeout: Duration) -> Result<SocketAddr, StartError> {
        let deadline = Instant::now() + timeout;
        let first = {
            let mut state = self.output.state.lock().unwrap();
            loop {
                if let Some(line) = state.lines.iter().find(|l| l.stream == Stream::Stdout) {
                    break Some(line.text.clone());
                }
                if state.open_streams == 0 {
                    break None;
                }
                let now = Instant::now();
                if now >= deadline {
                    break None;
                }
                state = self.output.changed.wait_timeout(state, deadline - now).unwrap().0;
            }
        };
        let Some(first) = first else {
            let why = match self.wait_exit(Duration::from_millis(200)) {
                Some(status) => format!(
                    "it exited ({}) before printing anything on stdout",
                    describe_exit(status)
                ),
                None => format!(
                    "it printed no `listening on <ip>:<port>` line within {} s",
                    timeout.as_secs_f32()
                ),
            };
            return Err(self.start_error(format!("the server did not become ready: {why}")));
        };
        match first.strip_prefix("listening on ").and_then(|a| a.trim().parse::<SocketAddr>().ok()) {
            Some(addr) if addr.port() != 0 => Ok(addr),
            _ => Err(self.start_error(format!(
                "the server's first stdout line must be `listening on <ip>:<port>` with the real port, but it was {first:?}"
            ))),
        }
    }

    fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<SocketAddr, StartError> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // Most programs listen within milliseconds: look often at first, then every 25 ms.
        let mut pause = Duration::from_millis(2);
        loop {
            // Listening, and by our program: another program (a check running at the same time)
            // may hold the port we chose, and then our program's `bind` fails and it exits.
            if is_listening(port) && listener_in_group(port, self.pid) != Some(false) {
                return Ok(addr);
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(format!(
                    "nothing was listening on port {port} after {} s; does your program listen on the port it was given?",
                    timeout.as_secs_f32()
                )));
            }
            // Doubles as the pause between two looks: returns at once if the program exits.
            if let Some(status) = self.wait_exit(pause) {
                return Err(self.start_error(format!(
                    "the program exited ({}) before it listened on port {port}",
                    describe_exit(status)
                )));
            }
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }

    fn wait_for_udp_port(&mut self, port: u16, timeout: Duration) -> Result<SocketAddr, StartError> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut pause = Duration::from_millis(2);
        loop {
            // Bound by our program, not by another one that happens to hold the port.
            if udp_bound_in_group(port, self.pid) {
                return Ok(addr);
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(format!(
                    "no UDP socket was bound to port {port} after {} s; does your program bind a UDP socket \
                     (SOCK_DGRAM) to the port it was given?",
                    timeout.as_secs_f32()
                )));
            }
            if let Some(status) = self.wait_exit(pause) {
                return Err(self.start_error(format!(
                    "the program exited ({}) before it bound UDP port {port}",
                    describe_exit(status)
                )));
            }
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }

    /// Waits up to `timeout` for the program to exit on its own; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            match self.exited.recv_timeout(timeout) {
                Ok(Ok(status)) => self.exit_status = Some(status),
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {}
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        self.exit_status
    }

    /// Waits until some line the program printed contains `text`, for at most `timeout`.
    pub fn wait_for_output(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.output.state.lock().unwrap();
        loop {
            if state.lines.iter().any(|l| l.text.contains(text)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || state.open_streams == 0 {
                return false;
            }
            state = self.output.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Stops the program (if it still runs) and returns everything it printed, in the order it
    /// was read (stdout and stderr are each in order; how they interleave is not defined).
    pub fn finish(mut self) -> Vec<OutputLine> {
        self.kill();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let state = self.output.state.lock().unwrap();
        let mut lines = state.lines.clone();
        if state.dropped > 0 {
            lines.push(OutputLine {
                stream: Stream::Stderr,
                text: format!("[{} more lines not kept]", state.dropped),
            });
        }
        lines
    }

    /// The last `n` lines the program printed on stderr so far; see [`stderr_excerpt`]. If the
    /// program has exited, what it wrote last may still be on its way through the pipe: this
    /// waits a moment (at most 200 ms) for its output to end, so that the lines that say why it
    /// exited are there.
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        let mut state = self.output.state.lock().unwrap();
        if self.exit_status.is_some() {
            let deadline = Instant::now() + Duration::from_millis(200);
            while state.open_streams > 0 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = self.output.changed.wait_timeout(state, deadline - now).unwrap().0;
            }
        }
        let err: Vec<&str> = state
            .lines
            .iter()
            .filter(|l| l.stream == Stream::Stderr)
            .map(|l| l.text.as_str())
            .collect();
        stderr_excerpt(&err, n)
    }

    /// The most threads any one process of the program runs right now (the program and what it
    /// started share a process group; `sh -c` around a program is one more process, with one
    /// thread). `None` where the system does not tell (no `/proc`).
    pub fn max_threads(&self) -> Option<usize> {
        max_threads_in_group(self.pid)
    }

    /// Has the program exited (on its own or killed)? Returns its status if so.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.wait_exit(Duration::ZERO)
    }

    /// SIGTERM to the whole process group, then SIGKILL if it has not exited after `grace`.
    fn kill(&mut self) {
        if self.wait_exit(Duration::ZERO).is_none() {
            signal_group(self.pid, libc::SIGTERM);
            if self.wait_exit(self.grace).is_none() {
                signal_group(self.pid, libc::SIGKILL);
                self.wait_exit(Duration::from_secs(5));
            }
        }
        // Children the program started may still hold the group; they go too.
        signal_group(self.pid, libc::SIGKILL);
        RUNNING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|&pid| pid != self.pid);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal_group(pgid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
    // Errors (ESRCH: the group is already gone) are fine to ignore.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// The last `n` of `lines` (a program's stderr), but never without the line that says where a
/// Rust program panicked: with `RUST_BACKTRACE=1` the backtrace that follows it is longer than
/// `n` lines, and the frames alone say nothing. Then the panic line and its message come first,
/// then `...`, then the last lines.
pub fn stderr_excerpt(lines: &[&str], n: usize) -> Vec<String> {
    let tail_start = lines.len().saturating_sub(n);
    let panic_at = lines.iter().rposition(|line| line.contains("panicked at"));
    match panic_at {
        Some(at) if at < tail_start && n >= 4 => {
            // The message follows the location (Rust 1.73 and later), up to the backtrace.
            let message_end = lines[at + 1..]
                .iter()
                .position(|line| line.starts_with("stack backtrace:") || line.starts_with("note: "))
                .map_or(lines.len(), |i| at + 1 + i)
                .min(at + 3)
                .min(at + n - 2);
            let mut excerpt: Vec<String> = lines[at..message_end].iter().map(|l| l.to_string()).collect();
            excerpt.push("...".to_string());
            let rest = n - excerpt.len();
            let from = lines.len().saturating_sub(rest).max(message_end);
            excerpt.extend(lines[from..].iter().map(|l| l.to_string()));
            excerpt
        }
        _ => lines[tail_start..].iter().map(|l| l.to_string()).collect(),
    }
}

/// The processes of process group `pgid`: each one's `/proc/PID` folder and the fields of its
/// `/proc/PID/stat` after the command name.
fn group_members(pgid: i32) -> Vec<(std::path::PathBuf, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so the fields
        // are counted from the last ')'. After it: state, ppid, pgrp (index 2), ..., num_threads
        // (index 17).
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<String> = after.split_whitespace().map(String::from).collect();
        if fields.get(2).and_then(|pgrp| pgrp.parse::<i32>().ok()) == Some(pgid) {
            members.push((entry.path(), fields));
        }
    }
    members
}

/// The most threads of any process in process group `pgid`, read from `/proc/PID/stat`.
fn max_threads_in_group(pgid: i32) -> Option<usize> {
    group_members(pgid)
        .iter()
        .filter_map(|(_, fields)| fields.get(17)?.parse::<usize>().ok())
        .max()
}

/// Does a process of group `pgid` hold the socket listening on `port`? `None` when this cannot be
/// told (not Linux, or the kernel does not answer `sock_diag`).
fn listener_in_group(port: u16, pgid: i32) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        let inodes: Vec<u32> = sock_diag::listening_sockets()?
            .into_iter()
            .filter(|&(listening_port, _)| listening_port == port)
            .map(|(_, inode)| inode)
            .collect();
        Some(group_holds_socket(pgid, &inodes))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (port, pgid);
        None
    }
}

/// Does a process of group `pgid` hold one of the sockets with these inodes open?
fn group_holds_socket(pgid: i32, inodes: &[u32]) -> bool {
    group_members(pgid).iter().any(|(folder, _)| {
        let Ok(descriptors) = std::fs::read_dir(folder.join("fd")) else {
            return false;
        };
        descriptors.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                inodes
                    .iter()
                    .any(|inode| target.to_string_lossy() == format!("socket:[{inode}]"))
            })
        })
    })
}

/// Is a UDP socket of process group `pgid` bound to `port`? On Linux, from the kernel's UDP
/// socket tables (`/proc/net/udp*`, one line per socket, with its local port and inode) and the
/// group's open descriptors. Elsewhere: whether the port is taken at all (binding it fails).
pub fn udp_bound_in_group(port: u16, pgid: i32) -> bool {
    let mut inodes = Vec::new();
    let mut found_table = false;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        found_table = true;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // fields[1] is "local_address:port" in hex, fields[9] the socket's inode.
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && let Some(inode) = fields.get(9).and_then(|i| i.parse::<u32>().ok())
            {
                inodes.push(inode);
            }
        }
    }
    if found_table {
        return !inodes.is_empty() && group_holds_socket(pgid, &inodes);
    }
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err()
}

/// `exit code 3`, `killed by signal 9`.
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "unknown status".to_string(),
    }
}

fn collect_lines(mut pipe: Box<dyn Read + Send>, stream: Stream, output: &Output) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let push = |bytes: &[u8]| {
        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LINE_BYTES)]).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        let mut state = output.state.lock().unwrap();
        if state.lines.len() < MAX_LINES {
            state.lines.push(OutputLine { stream, text });
        } else {
            state.dropped += 1;
        }
        output.changed.notify_all();
    };
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(newline) = pending.iter().position(|&b| b == b'\n') {
            push(&pending[..newline]);
            pending.drain(..=newline);
        }
        if pending.len() > MAX_LINE_BYTES {
            // A very long line without newline: keep its start, skip the rest of it.
            push(&pending);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        push(&pending);
    }
    let mut state = output.state.lock().unwrap();
    state.open_streams -= 1;
    output.changed.notify_all();
}

/// Is something listening on `port` on this machine? On Linux this asks the kernel, without
/// making a connection: with a `sock_diag` query for listening TCP sockets (what `ss -ltn` does),
/// or else by reading its socket tables (`/proc/net/tcp*`, which list every socket and grow
/// slow to read when thousands wait in TIME-WAIT). Elsewhere it tries to connect.
pub fn is_listening(port: u16) -> bool {
    #[cfg(target_os = "linux")]
    if let Some(sockets) = sock_diag::listening_sockets() {
        return sockets.iter().any(|&(listening_port, _)| listening_port == port);
    }
    let mut found_table = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        found_table = true;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // fields[1] is "local_address:port" in hex, fields[3] the state; 0A is LISTEN.
            if fields.len() > 3 && fields[3] == "0A" {
                let local_port = fields[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if local_port == Some(port) {
                    return true;
                }
            }
        }
    }
    if found_table {
        return false;
    }
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// The ports that TCP sockets listen on, from the kernel's `sock_diag` netlink interface.
#[cfg(target_os = "linux")]
mod sock_diag {
    use std::io;
    use std::mem::size_of;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const TCP_LISTEN: u32 = 10;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct InetDiagSockId {
        sport: [u8; 2],
        dport: [u8; 2],
        src: [u32; 4],
        dst: [u32; 4],
        interface: u32,
        cookie: [u32; 2],
    }

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct InetDiagReqV2 {
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: InetDiagSockId,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Request {
        header: libc::nlmsghdr,
        body: InetDiagReqV2,
    }

    /// The local port and the inode of every listening TCP socket (IPv4 and IPv6); `None` if the
    /// kernel does not answer (no netlink, or a sandbox that forbids it).
    pub fn listening_sockets() -> Option<Vec<(u16, u32)>> {
        let mut sockets = Vec::new();
        for family in [libc::AF_INET, libc::AF_INET6] {
            sockets.extend(query(family as u8).ok()?);
        }
        Some(sockets)
    }

    fn query(family: u8) -> io::Result<Vec<(u16, u32)>> {
        // SAFETY: plain system calls on a socket we own, with buffers of the sizes we pass; the
        // socket is closed on every path.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let result = ask(fd, family);
            libc::close(fd);
            result
        }
    }

    unsafe fn ask(fd: i32, family: u8) -> io::Result<Vec<(u16, u32)>> {
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY (this function): see `query`.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            );
            let mut header: libc::nlmsghdr = std::mem::zeroed();
            header.nlmsg_len = size_of::<Request>() as u32;
            header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
            header.nlmsg_flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
            let request = Request {
                header,
                body: InetDiagReqV2 {
                    family,
                    protocol: libc::IPPROTO_TCP as u8,
                    states: 1 << TCP_LISTEN,
                    ..Default::default()
                },
            };
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            let sent = libc::sendto(
                fd,
                (&request as *const Request).cast(),
                size_of::<Request>(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut ports = Vec::new();
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                let n = libc::recv(fd, buffer.as_mut_ptr().cast(), buffer.len(), 0);
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                let mut rest = &buffer[..n as usize];
                while rest.len() >= size_of::<libc::nlmsghdr>() {
                    let length = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                    let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
                    if length < size_of::<libc::nlmsghdr>() || length > rest.len() {
                        return Err(io::Error::other("a malformed netlink message"));
                    }
                    match kind {
                        NLMSG_DONE => return Ok(ports),
                        NLMSG_ERROR => return Err(io::Error::other("the kernel refused the query")),
                        _ => {
                            // inet_diag_msg: family, state, timer, retrans (4 bytes), then the
                            // socket id (48 bytes), whose first two are the local port,
                            // big-endian; then expires, rqueue, wqueue, uid and the socket's
                            // inode (4 bytes each, the machine's byte order).
                            let message = &rest[size_of::<libc::nlmsghdr>()..length];
                            if message.len() >= 72 {
                                let port = u16::from_be_bytes([message[4], message[5]]);
                                let inode = u32::from_ne_bytes(message[68..72].try_into().unwrap());
                                ports.push((port, inode));
                            }
                        }
                    }
                    let aligned = (length + 3) & !3;
                    rest = &rest[aligned.min(rest.len())..];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_seen_and_a_closed_one_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(is_listening(port));
        drop(listener);
        assert!(!is_listening(port));
        #[cfg(target_os = "linux")]
        if let Some(sockets) = sock_diag::listening_sockets() {
            let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            // Counted, not just looked for: on a busy machine another program may listen on the
            // same port number at another address.
            let on_port = |sockets: &[(u16, u32)]| sockets.iter().filter(|&&(p, _)| p == port).count();
            assert_eq!(
                on_port(&sock_diag::listening_sockets().unwrap()),
                on_port(&sockets) + 1
            );
        }
    }

    /// A port held by another process group (here: this test process, whose group is not the
    /// child's) is not the child's listener, so a check never talks to another check's server.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_listener_of_another_process_group_is_not_taken_for_the_programs() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // SAFETY: getpgrp(2) takes nothing and cannot fail.
        let own_group = unsafe { libc::getpgrp() };
        if sock_diag::listening_sockets().is_some() {
            assert_eq!(listener_in_group(port, own_group), Some(true));
            assert_eq!(listener_in_group(port, i32::MAX), Some(false));
        }
    }

    /// A bound UDP socket is seen, and only as the program's when its process group holds it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_bound_udp_port_is_seen_as_the_groups() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        // SAFETY: getpgrp(2) takes nothing and cannot fail.
        let own_group = unsafe { libc::getpgrp() };
        assert!(udp_bound_in_group(port, own_group));
        assert!(!udp_bound_in_group(port, i32::MAX));
        drop(socket);
        assert!(!udp_bound_in_group(port, own_group));
    }

    #[test]
    fn a_panic_line_is_kept_above_a_long_backtrace() {
        let mut stderr = vec![
            "listening",
            "thread 'main' panicked at src/main.rs:42:9:",
            "unknown command \"HELLO\"",
            "stack backtrace:",
        ];
        let frames: Vec<String> = (0..30).map(|i| format!("  {i}: frame {i}")).collect();
        stderr.extend(frames.iter().map(String::as_str));
        stderr
            .push("note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.");
        let excerpt = stderr_excerpt(&stderr, 8);
        assert_eq!(excerpt.len(), 8, "{excerpt:#?}");
        assert_eq!(excerpt[0], "thread 'main' panicked at src/main.rs:42:9:");
        assert_eq!(excerpt[1], "unknown command \"HELLO\"");
        assert_eq!(excerpt[2], "...");
        assert_eq!(excerpt[7], stderr[stderr.len() - 1]);
    }

    #[test]
    fn a_short_stderr_is_shown_as_it_is() {
        let stderr = [
            "thread 'main' panicked at src/main.rs:1:1:",
            "boom",
            "note: run with `RUST_BACKTRACE=1`",
        ];
        assert_eq!(stderr_excerpt(&stderr, 8), stderr.map(String::from).to_vec());
        assert_eq!(stderr_excerpt(&["a", "b", "c"], 2), ["b", "c"]);
    }

    #[test]
    fn the_threads_of_a_program_are_counted() {
        let mut command = Command::new("sleep");
        command.arg("10");
        let program = ServerProcess::start(command, Readiness::Started, Duration::ZERO).unwrap();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert_eq!(program.max_threads(), Some(1));
        }
    }
}
