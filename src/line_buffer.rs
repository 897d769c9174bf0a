//! A receive buffer that hands out complete lines, for a server that answers a line protocol
//! one `read` at a time (lesson 07).
//!
//! Lesson 05 splits lines by hand, because that is its lesson: one `read` may return half a
//! command, or three commands and the start of a fourth. A server that wants to be fast does the
//! same, with three more concerns that are not a lesson of their own, so they live here:
//!
//! - **One copy.** `read` writes straight into the buffer, and [`LineBuffer::next_line`] lends out
//!   slices of it: no byte is copied on its way to the parser, except the start of an unfinished
//!   line, which moves to the front when the buffer's end is reached.
//! - **Bounded memory.** The buffer holds no memory until bytes arrive: an idle connection costs
//!   nothing here. The first `read` gets [`LineBuffer::FIRST_SIZE`] bytes of room; a client that
//!   keeps filling it gets twice as much each time, up to [`LineBuffer::READ_SIZE`], and only one
//!   unfinished line that fills everything makes it grow past that, up to the line cap and one
//!   byte more. A client that sends more than the cap without a newline makes
//!   [`LineBuffer::line_too_long`] true; it can never make the buffer bigger.
//! - **Memory given back.** When every byte received has been handed out as a line, the buffer
//!   frees its memory, as Redis does with a client's query buffer: ten thousand connections that
//!   sent one command each and now wait hold nothing here.
//! - **Linear time.** The bytes of an unfinished line are searched for `\n` once, not again after
//!   every read, so a client sending a long line one byte per write costs time in proportion to
//!   the line, not its square.
//!
//! ```
//! use socket_workbook::line_buffer::LineBuffer;
//!
//! let mut lines = LineBuffer::new(100);
//! let mut wire: &[u8] = b"SET a 1\nGET a\nGET";
//! assert_eq!(lines.read_from(&mut wire).unwrap(), 17);
//! assert_eq!(lines.next_line(), Some(&b"SET a 1"[..]));
//! assert_eq!(lines.next_line(), Some(&b"GET a"[..]));
//! assert_eq!(lines.next_line(), None);
//! assert_eq!(lines.unfinished(), b"GET");
//!
//! let mut wire: &[u8] = b" b\n";
//! lines.read_from(&mut wire).unwrap();
//! assert_eq!(lines.next_line(), Some(&b"GET b"[..]));
//! ```

use std::io::{self, Read};

/// Received bytes: complete lines not handed out yet, then at most one unfinished line.
#[derive(Debug)]
pub struct LineBuffer {
    /// Initialised memory; `read` fills `bytes[end..]`.
    bytes: Vec<u8>,
    /// The first byte not handed out yet.
    start: usize,
    /// `bytes[start..scanned]` is known to hold no `\n`.
    scanned: usize,
    /// One past the last byte received.
    end: usize,
    /// The longest line allowed, without its `\n`.
    max_line: usize,
}

impl LineBuffer {
    /// The room the first `read` gets: a few dozen short commands, and small enough that a
    /// memory allocator keeps freed buffers of this size at hand for the next connection.
    pub const FIRST_SIZE: usize = 1024;

    /// How big a busy client's buffer may grow for lines that fit: a few hundred pipelined
    /// commands per `read` (Redis reads in 16 KiB chunks too). Only a longer unfinished line
    /// makes it grow past this, up to the cap.
    pub const READ_SIZE: usize = 16 * 1024;

    /// An empty buffer for lines of at most `max_line` bytes before their `\n`. It holds no
    /// memory until the first [`LineBuffer::read_from`].
    pub fn new(max_line: usize) -> LineBuffer {
        LineBuffer {
            bytes: Vec::new(),
            start: 0,
            scanned: 0,
            end: 0,
            max_line,
        }
    }

    /// Makes room, then calls `read` once on `source`. Returns what `read` returned: `Ok(0)` is
    /// the end of the stream. Call it only when [`LineBuffer::next_line`] has no line left and
    /// [`LineBuffer::line_too_long`] is false (a full buffer has no room for another byte).
    pub fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        self.make_room();
        if self.end == self.bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the line buffer is full: the unfinished line is longer than the cap",
            ));
        }
        let n = source.read(&mut self.bytes[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Room after `end`: memory for the first bytes; else start over at the front when
    /// everything was handed out; else move the unfinished line to the front; and grow when the
    /// last `read` filled the buffer (a busy client) or one line fills all of it.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.scanned = 0;
            self.end = 0;
        }
        if self.bytes.is_empty() {
            self.bytes = vec![0; LineBuffer::FIRST_SIZE.min(self.max_line + 1)];
            return;
        }
        if self.end < self.bytes.len() {
            return;
        }
        let one_line_fills_it = self.start == 0;
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.scanned -= self.start;
            self.end -= self.start;
            self.start = 0;
        }
        if one_line_fills_it || self.bytes.len() < LineBuffer::READ_SIZE {
            // The cap plus one byte is enough to see that a line is too long, so the buffer
            // never grows past it.
            let size = (self.bytes.len() * 2).min(self.max_line + 1);
            self.bytes.resize(size, 0);
        }
    }

    /// Everything received has been handed out: give the memory back. A connection that waits
    /// for its client's next command then holds no buffer at all.
    fn release(&mut self) {
        self.bytes = Vec::new();
        self.start = 0;
        self.scanned = 0;
        self.end = 0;
    }

    /// The next complete line, without its `\n` (a `\r` before it stays: the parser decides).
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let newline = self.bytes[self.scanned..self.end]
            .iter()
            .position(|&b| b == b'\n');
        match newline {
            Some(offset) => {
                let line_end = self.scanned + offset;
                let line = self.start..line_end;
                self.start = line_end + 1;
                self.scanned = self.start;
                Some(&self.bytes[line])
            }
            None => {
                self.scanned = self.end;
                if self.start == self.end && !self.bytes.is_empty() {
                    self.release();
                }
                None
            }
        }
    }

    /// The start of a line whose `\n` has not arrived yet.
    pub fn unfinished(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Has more than the cap arrived without a `\n`? Then the connection cannot go on: nobody
    /// knows where the next line would start.
    pub fn line_too_long(&self) -> bool {
        self.end - self.start > self.max_line
    }

    /// Memory held, in bytes: 0 while nothing unfinished is held, and never more than the cap
    /// plus one.
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A source that returns its chunks one per `read`, as a network connection may.
    struct Chunks(VecDeque<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.0.front_mut() else {
                return Ok(0);
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.0.pop_front();
            }
            Ok(n)
        }
    }

    /// Reads everything, collecting the lines in order, until the end or a too-long line.
    fn lines_of(chunks: &[&[u8]], max_line: usize) -> (Vec<Vec<u8>>, bool) {
        let mut source = Chunks(chunks.iter().map(|c| c.to_vec()).collect());
        let mut buffer = LineBuffer::new(max_line);
        let mut lines = Vec::new();
        loop {
            while let Some(line) = buffer.next_line() {
                lines.push(line.to_vec());
            }
            if buffer.line_too_long() {
                return (lines, true);
            }
            assert!(buffer.capacity() <= max_line + 1);
            if buffer.read_from(&mut source).unwrap() == 0 {
                return (lines, false);
            }
        }
    }

    #[test]
    fn lines_split_across_reads_are_put_back_together() {
        let (lines, too_long) = lines_of(&[b"SE", b"T a 1\nGE", b"T a\n", b"\n", b"x"], 100);
        assert_eq!(lines, vec![b"SET a 1".to_vec(), b"GET a".to_vec(), b"".to_vec()]);
        assert!(!too_long);
    }

    #[test]
    fn a_line_of_exactly_the_cap_fits_one_more_byte_does_not() {
        let line = vec![b'x'; 40_000];
        let (lines, too_long) = lines_of(&[&line, b"\nnext\n"], 40_000);
        assert_eq!(lines, vec![line.clone(), b"next".to_vec()]);
        assert!(!too_long);

        let (lines, too_long) = lines_of(&[&line, b"y\n"], 40_000);
        assert!(lines.is_empty());
        assert!(too_long);
    }

    #[test]
    fn many_short_lines_reuse_the_buffer() {
        let text: Vec<u8> = (0..10_000)
            .flat_map(|i| format!("GET key{i}\n").into_bytes())
            .collect();
        let chunks: Vec<&[u8]> = text.chunks(1000).collect();
        let (lines, _) = lines_of(&chunks, 64 * 1024);
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines[9_999], b"GET key9999");
    }

    #[test]
    fn an_idle_buffer_holds_no_memory_and_gives_it_back_when_empty() {
        let mut buffer = LineBuffer::new(64 * 1024);
        assert_eq!(buffer.capacity(), 0, "a new buffer allocates nothing");
        let mut wire: &[u8] = b"SET a 1\nGET";
        buffer.read_from(&mut wire).unwrap();
        assert_eq!(buffer.capacity(), LineBuffer::FIRST_SIZE);
        assert_eq!(buffer.next_line(), Some(&b"SET a 1"[..]));
        assert_eq!(buffer.next_line(), None);
        assert_eq!(
            buffer.capacity(),
            LineBuffer::FIRST_SIZE,
            "\"GET\" is unfinished: kept"
        );
        let mut wire: &[u8] = b" a\n";
        buffer.read_from(&mut wire).unwrap();
        assert_eq!(buffer.next_line(), Some(&b"GET a"[..]));
        assert_eq!(buffer.next_line(), None);
        assert_eq!(buffer.capacity(), 0, "everything handed out: memory given back");
    }

    #[test]
    fn a_busy_client_gets_bigger_reads_up_to_the_read_size() {
        let text: Vec<u8> = (0..10_000)
            .flat_map(|i| format!("GET key{i}\n").into_bytes())
            .collect();
        let mut source = Chunks([text].into_iter().collect());
        let mut buffer = LineBuffer::new(64 * 1024);
        let mut biggest = 0;
        let mut lines = 0;
        loop {
            while buffer.next_line().is_some() {
                lines += 1;
            }
            biggest = biggest.max(buffer.capacity());
            if buffer.read_from(&mut source).unwrap() == 0 {
                break;
            }
        }
        assert_eq!(lines, 10_000);
        assert_eq!(biggest, LineBuffer::READ_SIZE);
    }

    #[test]
    fn a_long_line_byte_by_byte_grows_the_buffer_only_to_the_cap() {
        let line = vec![b'z'; 70_000];
        let chunks: Vec<&[u8]> = line.chunks(1).collect();
        let (lines, too_long) = lines_of(&chunks, 64 * 1024);
        assert!(lines.is_empty());
        assert!(too_long);
    }
}
