//! One client connection of a scenario.
//!
//! A background thread reads everything the server sends into an inbox, so that (a) every read
//! a scenario makes has a deadline, (b) a large send never deadlocks against a server that
//! answers while we are still writing, and (c) "the server closed the connection" is noticed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Stop buffering what the server sends past this many unread bytes.
const INBOX_CAP: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct InboxState {
    bytes: Vec<u8>,
    /// The server closed its side (read returned 0).
    eof: bool,
    /// Reading failed (e.g. connection reset), or the server sent too much.
    error: Option<String>,
    /// The scenario stopped reading: the reader thread waits, and what the server sends stays in
    /// the kernel's buffers, as if the client were slow. The next read resumes it.
    paused: bool,
    /// The connection is being dropped: the reader thread must end.
    closing: bool,
}

#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    arrived: Condvar,
}

/// How a read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// Got what was asked for.
    Complete,
    /// The server closed the connection first.
    Closed,
    /// Nothing more arrived before the deadline.
    TimedOut,
    /// The connection failed (reset, ...).
    Failed(String),
    /// The bytes taken so far can never become what the reader expects, whatever follows: it
    /// stopped waiting (see [`Connection::read_unless_hopeless`]).
    Hopeless,
}

/// How much one read takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Up to and including the next `\n`, or `max` bytes without one.
    Line { max: usize },
    /// Exactly this many bytes.
    Exactly(usize),
    /// Everything until the peer closes the connection.
    ToEnd,
}

/// The bytes a read consumed (all of them, also when it ended early) and how it ended.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub bytes: Vec<u8>,
    pub end: ReadEnd,
}

/// A connected client.
pub struct Connection {
    stream: TcpStream,
    inbox: Arc<Inbox>,
    reader: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
    /// Close with a reset (RST) rather than an end of stream (FIN), see [`Connection::reset`].
    reset: bool,
}

impl Connection {
    /// Connects to `addr`, giving up after `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        Connection::from_stream(stream, timeout)
    }

    /// Wraps an already connected stream (for example one a fake server accepted).
    pub fn from_stream(stream: TcpStream, timeout: Duration) -> io::Result<Connection> {
        // Send each write at once, so a scenario's "1-byte writes" really leave one by one.
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout.max(Duration::from_secs(5))))?;
        let local_addr = stream.local_addr()?;
        let inbox = Arc::new(Inbox::default());
        let mut read_half = stream.try_clone()?;
        let reader_inbox = Arc::clone(&inbox);
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                {
                    let mut state = reader_inbox.state.lock().unwrap();
                    while state.paused && !state.closing {
                        state = reader_inbox.arrived.wait(state).unwrap();
                    }
                    if state.closing {
                        return;
                    }
                }
                let result = read_half.read(&mut buf);
                let mut state = reader_inbox.state.lock().unwrap();
                match result {
                    Ok(0) => state.eof = true,
                    Ok(n) if state.bytes.len() + n > INBOX_CAP => {
                        state.error = Some(format!(
                            "the server sent more than {INBOX_CAP} bytes that were never read"
                        ));
                    }
                    Ok(n) => state.bytes.extend_from_slice(&buf[..n]),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => state.error = Some(describe_io_error(&err)),
                }
                reader_inbox.arrived.notify_all();
                if state.eof || state.error.is_some() {
                    return;
                }
            }
        });
        Ok(Connection {
            stream,
            inbox,
            reader: Some(reader),
            local_addr,
            reset: false,
        })
    }

    /// This end's address (the address the server sees for us).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Stops taking what the server sends (after the read in progress, at most 64 KiB): from now on
    /// it piles up in the kernel's buffers, until they are full and the server's writes can no
    /// longer go through. The next read of any kind starts taking bytes again.
    pub fn stop_reading(&mut self) {
        self.inbox.state.lock().unwrap().paused = true;
    }

    /// Has [`Connection::stop_reading`] paused the taking of what the server sends?
    pub fn is_paused(&self) -> bool {
        self.inbox.state.lock().unwrap().paused
    }

    /// For a connection that has stopped reading: waits until what the server sends stops
    /// arriving in our kernel's receive buffer (the same number of unread bytes for `settle`),
    /// which means the buffers between us are full and the server's writes to us have stopped,
    /// or it has nothing more to send; or until `timeout`. Then a server that waits in a write
    /// to us is already waiting when the scenario goes on. Returns whether it settled.
    pub fn wait_until_nothing_more_arrives(&self, settle: Duration, timeout: Duration) -> bool {
        use std::os::fd::AsRawFd;
        let unread = || {
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int, the number of bytes waiting in the socket's
            // receive buffer, to the pointer it is given.
            let result = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::FIONREAD, &mut n) };
            (result == 0).then_some(n)
        };
        let deadline = Instant::now() + timeout;
        let mut last = unread();
        let mut unchanged_since = Instant::now();
        let mut state = self.inbox.state.lock().unwrap();
        loop {
            let now = Instant::now();
            if now >= deadline || last.is_none() {
                return false;
            }
            if now.duration_since(unchanged_since) >= settle {
                return true;
            }
            // A pause between two looks (nobody signals the paused inbox: this only waits).
            state = self
                .inbox
                .arrived
                .wait_timeout(state, Duration::from_millis(5).min(deadline - now))
                .unwrap()
                .0;
            let current = unread();
            if current != last {
                last = current;
                unchanged_since = Instant::now();
            }
        }
    }

    /// Tells the server we will send nothing more (it reads 0, "end of file"); we can still read.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Reads up to and including the next `\n`. Gives up after `max` bytes without one.
    pub fn read_line(&mut self, timeout: Duration, max: usize) -> ReadResult {
        self.read_unless_hopeless(Amount::Line { max }, timeout, &|_| false)
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize, timeout: Duration) -> ReadResult {
        self.read_unless_hopeless(Amount::Exactly(n), timeout, &|_| false)
    }

    /// Reads until the server closes the connection.
    pub fn read_to_end(&mut self, timeout: Duration) -> ReadResult {
        self.read_unless_hopeless(Amount::ToEnd, timeout, &|_| false)
    }

    /// Reads `amount`, but stops waiting as soon as `hopeless` says that the bytes taken so far
    /// (always the start of what the read would return) can never become what is expected,
    /// whatever follows: then the read ends with [`ReadEnd::Hopeless`] instead of waiting for its
    /// timeout. A wrong reply is reported at once.
    pub fn read_unless_hopeless(
        &mut self,
        amount: Amount,
        timeout: Duration,
        hopeless: &dyn Fn(&[u8]) -> bool,
    ) -> ReadResult {
        let ready = |bytes: &[u8]| match amount {
            Amount::Line { max } => bytes
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + 1)
                .or(if bytes.len() >= max { Some(max) } else { None }),
            Amount::Exactly(n) => (bytes.len() >= n).then_some(n),
            Amount::ToEnd => None,
        };
        self.take_when(timeout, ready, hopeless)
    }

    /// Waits until `ready` says how many of the buffered bytes to take, the connection closes,
    /// `hopeless` gives up on the bytes so far, or the deadline passes; consumes and returns what
    /// it took (everything buffered if it ended early).
    fn take_when(
        &mut self,
        timeout: Duration,
        ready: impl Fn(&[u8]) -> Option<usize>,
        hopeless: &dyn Fn(&[u8]) -> bool,
    ) -> ReadResult {
        let deadline = Instant::now() + timeout;
        let mut state = self.inbox.state.lock().unwrap();
        if state.paused {
            state.paused = false;
            self.inbox.arrived.notify_all();
        }
        loop {
            if let Some(n) = ready(&state.bytes) {
                let bytes = state.bytes.drain(..n).collect();
                return ReadResult {
                    bytes,
                    end: ReadEnd::Complete,
                };
            }
            let end = if !state.bytes.is_empty() && hopeless(&state.bytes) {
                Some(ReadEnd::Hopeless)
            } else if state.eof {
                Some(ReadEnd::Closed)
            } else if let Some(err) = &state.error {
                Some(ReadEnd::Failed(err.clone()))
            } else if Instant::now() >= deadline {
                Some(ReadEnd::TimedOut)
            } else {
                None
            };
            if let Some(end) = end {
                return ReadResult {
                    bytes: std::mem::take(&mut state.bytes),
                    end,
                };
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            state = self.inbox.arrived.wait_timeout(state, wait).unwrap().0;
        }
    }
}

impl Connection {
    /// Closes the connection with a reset (RST): `SO_LINGER` "on, 0 s" makes the last close of
    /// the socket drop what is unsent and reset, and only the read half is shut down first (a
    /// write shutdown would send a FIN before the reset).
    pub fn reset(mut self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid `linger`, on a
        // descriptor that `self.stream` owns and keeps open for the duration of the call.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&self.stream),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        self.reset = true;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closing both directions also wakes our reader thread if it is in `read`; `closing`
        // wakes it if it is paused. The socket closes when the reader's copy goes too.
        self.inbox.state.lock().unwrap().closing = true;
        self.inbox.arrived.notify_all();
        let how = if self.reset {
            Shutdown::Read
        } else {
            Shutdown::Both
        };
        let _ = self.stream.shutdown(how);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// "connection reset by the server" rather than "Connection reset by peer (os error 104)".
pub fn describe_io_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionReset => "the connection was reset by the server".to_string(),
        io::ErrorKind::ConnectionRefused => "the connection was refused (nothing listening)".to_string(),
        io::ErrorKind::BrokenPipe => "the server had already closed the connection".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "the operation timed out".to_string(),
        _ => err.to_string(),
    }
}
