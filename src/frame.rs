//! Length-prefixed frames: how to send messages over a byte stream.
//!
//! TCP delivers bytes, not messages: one `read` may return part of a message, or the end of one
//! and the start of the next. A frame says where a message ends by stating its length first:
//!
//! ```text
//! 00 00 00 05  68 65 6c 6c 6f      the frame holding "hello": a 4-byte header, then 5 bytes
//! 00 00 01 00  ...256 bytes...     256 = 0x00000100, most significant byte first
//! 00 00 00 00                      an empty frame (valid: a header and nothing after it)
//! ```
//!
//! The header is the payload's length as an unsigned 32-bit integer in big-endian order
//! ("network byte order"): most significant byte first, whatever the CPU's own order is.
//!
//! A reader never trusts a header: a peer may announce up to 4 GiB. [`read_frame`] compares
//! the length with a maximum *before* it allocates anything, and reports a larger one as
//! [`FrameError::TooLarge`]. Nor does it allocate what an acceptable header announces: the
//! payload's buffer grows as its bytes arrive, so a peer that announces 1 MiB and sends nothing
//! more costs nothing.
//!
//! ```
//! use socket_workbook::frame::{read_frame, write_frame, DEFAULT_MAX_FRAME};
//!
//! let mut wire = Vec::new();
//! write_frame(&mut wire, b"hello").unwrap();
//! assert_eq!(wire, b"\x00\x00\x00\x05hello");
//!
//! let mut reader = wire.as_slice();
//! assert_eq!(read_frame(&mut reader, DEFAULT_MAX_FRAME).unwrap(), Some(b"hello".to_vec()));
//! assert_eq!(read_frame(&mut reader, DEFAULT_MAX_FRAME).unwrap(), None); // no more frames
//! ```

use std::fmt;
use std::io::{self, Read, Write};

use crate::escape::hex_bytes;

/// Every frame starts with this many header bytes.
pub const HEADER_LEN: usize = 4;

/// The largest payload a reader accepts unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 1024 * 1024;

// ANCHOR: header
/// The header for a payload of `len` bytes: `len` as 4 bytes, most significant first.
/// `256` becomes `00 00 01 00` on every machine, whatever order the CPU keeps numbers in.
pub fn encode_header(len: u32) -> [u8; HEADER_LEN] {
    len.to_be_bytes()
}

/// The payload length a header announces.
pub fn decode_header(header: [u8; HEADER_LEN]) -> u32 {
    u32::from_be_bytes(header)
}
// ANCHOR_END: header

/// `payload` as a frame: header, then payload.
///
/// Fails only for a payload longer than `u32::MAX` bytes, which a 4-byte header cannot announce.
pub fn encode_frame(payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a frame holds at most {} bytes, but this payload has {}",
                u32::MAX,
                payload.len()
            ),
        )
    })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&encode_header(len));
    frame.extend_from_slice(payload);
    Ok(frame)
}

// ANCHOR: write_frame
/// Writes `payload` as one frame.
///
/// Header and payload go out in a single `write_all`: written separately, a small header could
/// leave in a packet of its own (and with Nagle's algorithm, wait for the peer's acknowledgement).
pub fn write_frame<W: Write + ?Sized>(writer: &mut W, payload: &[u8]) -> io::Result<()> {
    writer.write_all(&encode_frame(payload)?)
}
// ANCHOR_END: write_frame

// ANCHOR: read_frame
/// Reads one frame and returns its payload, calling `read` as often as it takes.
///
/// - `Ok(None)`: the stream ended cleanly, before the first byte of a header: no more frames.
/// - [`FrameError::TooLarge`]: the header announces more than `max` bytes. Nothing has been
///   allocated for it, and the stream is left right after the header.
/// - [`FrameError::TruncatedHeader`] / [`FrameError::TruncatedPayload`]: the stream ended in the
///   middle of a frame.
pub fn read_frame<R: Read + ?Sized>(reader: &mut R, max: u32) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match read_until_full(reader, &mut header)? {
        0 => return Ok(None),
        HEADER_LEN => {}
        got => return Err(FrameError::TruncatedHeader { got }),
    }
    let len = decode_header(header);
    // Check before allocating: the header is whatever the peer chose to send.
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    read_payload(reader, len).map(Some)
}

/// Payload bytes are read in pieces of at most this many bytes.
const READ_PIECE: usize = 8 * 1024;

/// Reads the `len` payload bytes that follow a header.
///
/// Even a length under the maximum is only a promise: a peer can send a header announcing 1 MiB
/// and then nothing. `vec![0; len]` would cost the whole megabyte at once, for every such peer.
/// So the payload grows as bytes really arrive, a piece at a time, and never holds much more
/// than what was received.
fn read_payload<R: Read + ?Sized>(reader: &mut R, len: u32) -> Result<Vec<u8>, FrameError> {
    let len = len as usize;
    let mut payload = Vec::new();
    let mut piece = [0u8; READ_PIECE];
    while payload.len() < len {
        // Ask only for what this frame still needs: the next frame's bytes stay in the stream.
        let wanted = (len - payload.len()).min(READ_PIECE);
        match reader.read(&mut piece[..wanted]) {
            Ok(0) => {
                return Err(FrameError::TruncatedPayload {
                    len: len as u32,
                    got: payload.len(),
                });
            }
            Ok(n) => payload.extend_from_slice(&piece[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(payload)
}

/// Reads until `buf` is full or the stream ends; returns how many bytes it got. Unlike
/// `read_exact`, it tells how many bytes arrived before the end, for the error message.
fn read_until_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        // `read` returns whatever has arrived (at least 1 byte, at most what we ask for),
        // or 0 at the end of the stream.
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            // A signal interrupted the call before any data arrived: just ask again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}
// ANCHOR_END: read_frame

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The header announces a payload longer than the reader accepts.
    TooLarge { len: u32, max: u32 },
    /// The stream ended after `got` of the header's 4 bytes (`got` is 1 to 3).
    TruncatedHeader { got: usize },
    /// The stream ended after `got` of the `len` payload bytes the header announced.
    TruncatedPayload { len: u32, got: usize },
    /// Reading (or, for a server's reply, writing) failed.
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(
                    f,
                    "the frame header {} announces {len} bytes, more than the maximum of {max} bytes",
                    hex_bytes(&encode_header(*len))
                )?;
                // The most common cause: a sender that wrote the length in its CPU's own
                // (little-endian) byte order.
                let swapped = len.swap_bytes();
                if swapped <= *max && swapped != *len {
                    write!(
                        f,
                        " (if the sender meant {swapped}, it wrote the length little-endian; \
                         frame headers are big-endian, most significant byte first)"
                    )?;
                }
                Ok(())
            }
            FrameError::TruncatedHeader { got } => write!(
                f,
                "the stream ended inside a frame header: expected {HEADER_LEN} header bytes, got {got}"
            ),
            FrameError::TruncatedPayload { len, got } => write!(
                f,
                "the stream ended inside a frame: the header announced {len} bytes of payload, \
                 but only {got} arrived"
            ),
            FrameError::Io(err) => match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    write!(f, "timed out waiting for the peer ({err})")
                }
                io::ErrorKind::ConnectionReset => write!(f, "the peer reset the connection ({err})"),
                io::ErrorKind::BrokenPipe => write!(f, "the peer had already closed the connection ({err})"),
                _ => write!(f, "{err}"),
            },
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> FrameError {
        FrameError::Io(err)
    }
}

/// So that code returning `io::Result` can use `?` on [`read_frame`]. Protocol errors become
/// [`io::ErrorKind::InvalidData`] (a truncated frame: `UnexpectedEof`), keeping their message.
impl From<FrameError> for io::Error {
    fn from(err: FrameError) -> io::Error {
        match err {
            // Keep the kind, but take the message that says what it means for a frame.
            FrameError::Io(ref io_err) => io::Error::new(io_err.kind(), err.to_string()),
            FrameError::TooLarge { .. } => io::Error::new(io::ErrorKind::InvalidData, err.to_string()),
            FrameError::TruncatedHeader { .. } | FrameError::TruncatedPayload { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, err.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reader that hands out its data in the chunk sizes it is given (cycling through them),
    /// like a socket whose bytes arrive in arbitrary pieces. A chunk size of 0 stands for a
    /// read interrupted by a signal.
    struct ChunkedReader {
        data: Vec<u8>,
        pos: usize,
        chunks: Vec<usize>,
        next_chunk: usize,
    }

    impl ChunkedReader {
        fn new(data: Vec<u8>, chunks: Vec<usize>) -> ChunkedReader {
            assert!(chunks.iter().any(|&c| c > 0), "some chunk must make progress");
            ChunkedReader {
                data,
                pos: 0,
                chunks,
                next_chunk: 0,
            }
        }
    }

    impl Read for ChunkedReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let chunk = self.chunks[self.next_chunk % self.chunks.len()];
            self.next_chunk += 1;
            if chunk == 0 {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = chunk.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn read_all(reader: &mut impl Read, max: u32) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        while let Some(frame) = read_frame(reader, max)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn the_header_is_big_endian() {
        assert_eq!(encode_header(256), [0x00, 0x00, 0x01, 0x00]);
        assert_eq!(encode_header(5), [0x00, 0x00, 0x00, 0x05]);
        assert_eq!(encode_header(0x0102_0304), [0x01, 0x02, 0x03, 0x04]);
        assert_eq!(decode_header([0x00, 0x00, 0x01, 0x00]), 256);
        let mut wire = Vec::new();
        write_frame(&mut wire, &[b'x'; 256]).unwrap();
        assert_eq!(&wire[..4], &[0x00, 0x00, 0x01, 0x00]);
        assert_eq!(wire.len(), 4 + 256);
    }

    #[test]
    fn an_empty_frame_is_just_a_header() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"").unwrap();
        write_frame(&mut wire, b"after").unwrap();
        assert_eq!(&wire[..4], &[0, 0, 0, 0]);
        let frames = read_all(&mut wire.as_slice(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(frames, vec![b"".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn a_frame_of_exactly_the_maximum_is_accepted() {
        let wire = encode_frame(&[7u8; 100]).unwrap();
        assert_eq!(
            read_frame(&mut wire.as_slice(), 100).unwrap(),
            Some(vec![7u8; 100])
        );
    }

    #[test]
    fn a_header_above_the_maximum_is_rejected_without_reading_further() {
        let mut wire = encode_header(101).to_vec();
        wire.extend_from_slice(&[0u8; 101]);
        let mut reader = wire.as_slice();
        let err = read_frame(&mut reader, 100).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len: 101, max: 100 }),
            "{err:?}"
        );
        // Only the header was consumed.
        assert_eq!(reader.len(), 101);
        assert_eq!(
            err.to_string(),
            "the frame header 00 00 00 65 announces 101 bytes, more than the maximum of 100 bytes"
        );
    }

    #[test]
    fn the_largest_possible_header_is_rejected_at_once() {
        // Nothing follows the header: a reader that tried to allocate or read 4 GiB would fail
        // differently (or not at all).
        let err = read_frame(&mut &[0xff, 0xff, 0xff, 0xff][..], DEFAULT_MAX_FRAME).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    len: u32::MAX,
                    max: DEFAULT_MAX_FRAME
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the frame header ff ff ff ff announces 4294967295 bytes, more than the maximum of 1048576 bytes"
        );
    }

    // ANCHOR: little_endian_hint
    #[test]
    fn a_little_endian_header_gets_a_hint() {
        // 5, written least significant byte first.
        let err = read_frame(&mut &[0x05, 0, 0, 0][..], DEFAULT_MAX_FRAME).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the frame header 05 00 00 00 announces 83886080 bytes, more than the maximum of 1048576 bytes \
             (if the sender meant 5, it wrote the length little-endian; frame headers are big-endian, \
             most significant byte first)"
        );
    }
    // ANCHOR_END: little_endian_hint

    #[test]
    fn a_clean_end_before_a_header_means_no_more_frames() {
        assert!(read_frame(&mut &[][..], DEFAULT_MAX_FRAME).unwrap().is_none());
    }

    #[test]
    fn an_end_inside_the_header_says_how_much_arrived() {
        let err = read_frame(&mut &[0, 0][..], DEFAULT_MAX_FRAME).unwrap_err();
        assert!(matches!(err, FrameError::TruncatedHeader { got: 2 }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the stream ended inside a frame header: expected 4 header bytes, got 2"
        );
    }

    #[test]
    fn an_end_inside_the_payload_says_how_much_arrived() {
        let err = read_frame(&mut &b"\x00\x00\x00\x0aabc"[..], DEFAULT_MAX_FRAME).unwrap_err();
        assert!(
            matches!(err, FrameError::TruncatedPayload { len: 10, got: 3 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the stream ended inside a frame: the header announced 10 bytes of payload, but only 3 arrived"
        );
        let as_io = io::Error::from(err);
        assert_eq!(as_io.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn interrupted_reads_are_retried() {
        let wire = encode_frame(b"hello").unwrap();
        let mut reader = ChunkedReader::new(wire, vec![0, 1, 0, 3]);
        assert_eq!(read_all(&mut reader, 10).unwrap(), vec![b"hello".to_vec()]);
    }

    #[test]
    fn a_frame_is_written_with_one_write_call() {
        /// Records the size of every `write` call.
        struct Writes(Vec<usize>);
        impl Write for Writes {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.push(buf.len());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writes = Writes(Vec::new());
        write_frame(&mut writes, b"hello").unwrap();
        assert_eq!(writes.0, vec![9]);
    }

    proptest! {
        /// However the bytes are cut into reads, the frames come out as they went in.
        #[test]
        fn frames_survive_any_split_into_reads(
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            chunks in prop::collection::vec(0usize..40, 1..20),
        ) {
            prop_assume!(chunks.iter().any(|&c| c > 0));
            let mut wire = Vec::new();
            for message in &messages {
                write_frame(&mut wire, message).unwrap();
            }
            let mut reader = ChunkedReader::new(wire, chunks);
            prop_assert_eq!(read_all(&mut reader, 300).unwrap(), messages);
        }

        /// A stream cut anywhere ends either cleanly between two frames, or with a truncation
        /// error; the frames before the cut are intact.
        #[test]
        fn a_cut_stream_ends_cleanly_or_with_a_truncation_error(
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 1..10),
            cut_at in any::<prop::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            let mut boundaries = vec![0];
            for message in &messages {
                write_frame(&mut wire, message).unwrap();
                boundaries.push(wire.len());
            }
            let cut = cut_at.index(wire.len() + 1);
            let mut reader = &wire[..cut];
            let mut decoded = Vec::new();
            let end = loop {
                match read_frame(&mut reader, 50) {
                    Ok(Some(frame)) => decoded.push(frame),
                    Ok(None) => break None,
                    Err(err) => break Some(err),
                }
            };
            prop_assert_eq!(&decoded[..], &messages[..decoded.len()]);
            match end {
                None => prop_assert!(boundaries.contains(&cut)),
                Some(FrameError::TruncatedHeader { got }) => prop_assert!((1..HEADER_LEN).contains(&got)),
                Some(FrameError::TruncatedPayload { len, got }) => {
                    prop_assert_eq!(len as usize, messages[decoded.len()].len());
                    prop_assert!(got < len as usize);
                }
                Some(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }
}
