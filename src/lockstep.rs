//! A real TCP connection over 127.0.0.1 whose two ends take turns, for demos that must print the
//! same thing on every run.
//!
//! How many bytes one `read` returns depends on timing: on what has arrived when it is called.
//! A demo that wants to *show* this (lesson 04) must still be repeatable. So here the sender
//! writes only while the receiver waits, and the receiver's next `read` runs only once everything
//! the sender wrote in its turn has arrived. Each `read` then returns exactly
//! `min(room in the buffer, bytes not yet read)`. The reads are real `read` calls on a real socket;
//! only *when* they happen is controlled.
//!
//! ```text
//! sender thread                          receiver (uses Receiver as any `Read`)
//! start_turn()   waits for the receiver  read()  everything sent so far is read: lets the sender go
//! write(..) ×n   one write call each             ...waits for the sender's turn to end...
//! end_turn()                                     ...waits until those bytes have arrived...
//!                                                calls read on the socket
//! start_turn(); close()                  read()  returns 0: end of stream
//! ```
//!
//! For small demos: everything one turn writes must fit in the socket buffers (some KiB is fine).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// No step of a demo should take anywhere near this long; it turns a bug into an error, not a hang.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the sender tells the receiver at the end of a turn: how many bytes it has written in all.
enum TurnEnd {
    Wrote(u64),
    Closed(u64),
}

/// The writing end. Use it from its own thread.
pub struct Sender {
    stream: TcpStream,
    written: u64,
    receiver_waiting: mpsc::Receiver<u64>,
    turn_ended: mpsc::Sender<TurnEnd>,
}

/// The reading end: a [`Read`] whose every `read` is a `read` on the socket.
pub struct Receiver {
    stream: TcpStream,
    consumed: u64,
    /// Bytes the sender has written so far (as of its last turn).
    announced: u64,
    closed: bool,
    waiting: mpsc::Sender<u64>,
    turn_ended: mpsc::Receiver<TurnEnd>,
}

/// Opens a connection over 127.0.0.1 and returns its two ends.
pub fn connect() -> io::Result<(Sender, Receiver)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let sending = TcpStream::connect(listener.local_addr()?)?;
    let (receiving, _) = listener.accept()?;
    // Send every write at once, as its own segment, instead of holding small writes back.
    sending.set_nodelay(true)?;
    sending.set_write_timeout(Some(TIMEOUT))?;
    receiving.set_read_timeout(Some(TIMEOUT))?;
    let (waiting, receiver_waiting) = mpsc::channel();
    let (turn_ended_tx, turn_ended) = mpsc::channel();
    Ok((
        Sender {
            stream: sending,
            written: 0,
            receiver_waiting,
            turn_ended: turn_ended_tx,
        },
        Receiver {
            stream: receiving,
            consumed: 0,
            announced: 0,
            closed: false,
            waiting,
            turn_ended,
        },
    ))
}

fn receiver_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the receiver stopped reading before the sender was done",
    )
}

fn sender_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the sender stopped without closing the connection",
    )
}

impl Sender {
    /// Waits until the receiver has read everything written so far and asks for more.
    pub fn start_turn(&mut self) -> io::Result<()> {
        let consumed = self.receiver_waiting.recv().map_err(|_| receiver_gone())?;
        debug_assert_eq!(
            consumed, self.written,
            "the receiver waits only when it has read everything"
        );
        Ok(())
    }

    /// Writes `bytes` with one `write_all` on the socket. Call between `start_turn` and `end_turn`.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Lets the receiver read what this turn wrote.
    pub fn end_turn(&mut self) -> io::Result<()> {
        self.turn_ended
            .send(TurnEnd::Wrote(self.written))
            .map_err(|_| receiver_gone())
    }

    /// Closes the sending direction (the receiver's `read` returns 0) and ends the turn.
    /// Call after `start_turn`.
    pub fn close(self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)?;
        self.turn_ended
            .send(TurnEnd::Closed(self.written))
            .map_err(|_| receiver_gone())
    }
}

impl Receiver {
    /// Blocks until every byte the sender has written has arrived in our socket's receive
    /// buffer, so the next `read` sees all of it. Usually they are there already (on loopback,
    /// the sender's `write` delivers them); peeking makes sure without consuming anything.
    fn wait_until_arrived(&mut self) -> io::Result<()> {
        let pending = (self.announced - self.consumed) as usize;
        if pending == 0 {
            return Ok(());
        }
        let mut peeked = vec![0u8; pending];
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // `peek` blocks until at least one byte is there, then returns what is there.
            let available = self.stream.peek(&mut peeked)?;
            if available == pending {
                return Ok(());
            }
            if available == 0 || Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("only {available} of the {pending} bytes the sender wrote arrived"),
                ));
            }
            thread::yield_now();
        }
    }
}

impl Read for Receiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.consumed == self.announced && !self.closed {
            // Everything sent so far is read: the sender's turn.
            self.waiting.send(self.consumed).map_err(|_| sender_gone())?;
            match self.turn_ended.recv().map_err(|_| sender_gone())? {
                TurnEnd::Wrote(total) => self.announced = total,
                TurnEnd::Closed(total) => {
                    self.announced = total;
                    self.closed = true;
                }
            }
            self.wait_until_arrived()?;
        }
        let n = self.stream.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `turns` (each a list of writes) and records every read of a `room`-byte buffer.
    fn reads(turns: Vec<Vec<&'static [u8]>>, room: usize) -> Vec<Vec<u8>> {
        let (mut sender, mut receiver) = connect().unwrap();
        let sending = thread::spawn(move || {
            for turn in turns {
                sender.start_turn().unwrap();
                for piece in turn {
                    sender.write(piece).unwrap();
                }
                sender.end_turn().unwrap();
            }
            sender.start_turn().unwrap();
            sender.close().unwrap();
        });
        let mut reads = Vec::new();
        let mut buf = vec![0u8; room];
        loop {
            let n = receiver.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            reads.push(buf[..n].to_vec());
        }
        sending.join().unwrap();
        reads
    }

    #[test]
    fn each_turn_is_read_whole_and_alone() {
        for _ in 0..20 {
            assert_eq!(
                reads(vec![vec![b"Hello, "], vec![b"world!"]], 1024),
                vec![b"Hello, ".to_vec(), b"world!".to_vec()]
            );
            assert_eq!(
                reads(vec![vec![b"ping", b"pong"]], 1024),
                vec![b"pingpong".to_vec()]
            );
        }
    }

    #[test]
    fn a_small_buffer_takes_a_turn_in_pieces() {
        assert_eq!(
            reads(vec![vec![b"abcde"], vec![b"f"]], 2),
            vec![b"ab".to_vec(), b"cd".to_vec(), b"e".to_vec(), b"f".to_vec()]
        );
    }

    #[test]
    fn a_receiver_that_gives_up_does_not_hang_the_sender() {
        let (mut sender, receiver) = connect().unwrap();
        drop(receiver);
        assert_eq!(sender.start_turn().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
