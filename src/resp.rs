//! RESP2, the protocol Redis speaks (lesson 13): requests parsed incrementally with every length
//! checked before anything is allocated, typed replies, and a memory budget for every
//! connection's receive buffer together.
//!
//! # The protocol
//!
//! A **request** is an array of bulk strings: `*` and the number of elements, then each element
//! as `$`, its length in bytes, `\r\n`, the bytes themselves and `\r\n`. `SET a 1` is
//!
//! ```text
//! *3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n
//! ```
//!
//! Because every element says its length first, keys and values may hold any byte, `\r\n`
//! included. A request that does not start with `*` is an **inline command**: one line of words
//! separated by spaces, ending in `\r\n` (or `\n` alone), the form you type into `nc`. An empty
//! line, `*0\r\n` and `*-1\r\n` are empty requests: Redis ignores them, and so do we.
//!
//! A **reply** starts with one byte that says what it is:
//!
//! | first byte | type          | example                    |
//! |------------|---------------|----------------------------|
//! | `+`        | simple string | `+OK\r\n`                  |
//! | `-`        | error         | `-ERR unknown command ...\r\n` |
//! | `:`        | integer       | `:2\r\n`                   |
//! | `$`        | bulk string   | `$5\r\nhello\r\n`; `$-1\r\n` is nil (no such key) |
//! | `*`        | array         | `*2\r\n$4\r\nsave\r\n$0\r\n\r\n` |
//!
//! # The caps
//!
//! A length on the wire is a promise from the other side, not a fact: `$18446744073709551615`
//! announces 16 exabytes. So a length is parsed without overflow, checked against a cap
//! ([`Limits`]) *before* anything is done with it, and never used to size a buffer: the
//! [`RequestBuffer`] grows as bytes arrive, and all connections' buffers together stay within one
//! [`MemoryBudget`]. Anything malformed is a [`ProtocolError`], worded like Redis's (`Protocol
//! error: invalid bulk length`); the server answers it with `-ERR` and closes that connection,
//! since it can no longer tell where the next request starts.
//!
//! ```
//! use socket_workbook::resp::{Limits, RequestParser};
//!
//! let mut parser = RequestParser::new(Limits::default());
//! let wire = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n";
//! assert_eq!(parser.parse(&wire[..10]).unwrap(), None); // not all there yet
//! let used = parser.parse(wire).unwrap().unwrap();
//! assert_eq!(parser.args(wire).collect::<Vec<_>>(), [&b"GET"[..], b"a"]);
//! let used_inline = parser.parse(&wire[used..]).unwrap().unwrap();
//! assert_eq!(parser.args(&wire[used..]).collect::<Vec<_>>(), [&b"PING"[..]]);
//! assert_eq!(used + used_inline, wire.len());
//!
//! let err = parser.parse(b"*1\r\n$18446744073709551615\r\n").unwrap_err();
//! assert_eq!(err.to_string(), "Protocol error: invalid bulk length");
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::ops::Range;

/// How big the parts of a request may be. Checked before anything is allocated for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string, in bytes (Redis: `proto-max-bulk-len`, 512 MB).
    pub max_bulk: usize,
    /// The most elements in a request array.
    pub max_array: usize,
    /// The longest inline command, and the longest `*` or `$` header line, before its `\n`
    /// (Redis: 64 KiB).
    pub max_inline: usize,
    /// How deeply arrays may nest in a *reply* ([`decode_reply`]); requests are always flat.
    pub max_depth: usize,
}

impl Limits {
    /// 512 MB, as Redis.
    pub const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;
    /// A million elements: far more than any command needs.
    pub const DEFAULT_MAX_ARRAY: usize = 1024 * 1024;
    /// 64 KiB, as Redis (`PROTO_INLINE_MAX_SIZE`).
    pub const DEFAULT_MAX_INLINE: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: Limits::DEFAULT_MAX_BULK,
            max_array: Limits::DEFAULT_MAX_ARRAY,
            max_inline: Limits::DEFAULT_MAX_INLINE,
            max_depth: 8,
        }
    }
}

/// Why a request (or a reply) cannot be parsed. The `Display` text is what follows `-ERR ` in
/// the reply; where Redis has a message for the same mistake, it is Redis's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline command longer than [`Limits::max_inline`] without a newline.
    InlineTooLong,
    /// A `*` header line longer than the cap without `\r\n`.
    ArrayHeaderTooLong,
    /// The number after `*` is not a number, is below -1, or is over [`Limits::max_array`].
    InvalidArrayLength,
    /// A `$` header line longer than the cap without `\r\n`.
    BulkHeaderTooLong,
    /// The number after `$` is not a number, is negative, or is over [`Limits::max_bulk`].
    InvalidBulkLength,
    /// An element of a request is not a bulk string (a nested array, or junk).
    ExpectedBulk(u8),
    /// The bytes after a bulk string's content are not `\r\n`.
    ExpectedCrlf,
    /// A reply starts with a byte that is no reply type.
    UnknownReplyType(u8),
    /// A reply nests arrays deeper than [`Limits::max_depth`].
    TooDeep,
    /// An integer reply (`:`) that is not a number.
    InvalidInteger,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            ProtocolError::InlineTooLong => f.write_str("too big inline request"),
            ProtocolError::ArrayHeaderTooLong => f.write_str("too big mbulk count string"),
            ProtocolError::InvalidArrayLength => f.write_str("invalid multibulk length"),
            ProtocolError::BulkHeaderTooLong => f.write_str("too big bulk count string"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedBulk(got) => write!(f, "expected '$', got '{}'", printable(*got)),
            ProtocolError::ExpectedCrlf => f.write_str("expected \\r\\n after a bulk string"),
            ProtocolError::UnknownReplyType(got) => write!(f, "unknown reply type '{}'", printable(*got)),
            ProtocolError::TooDeep => f.write_str("arrays nested too deeply"),
            ProtocolError::InvalidInteger => f.write_str("invalid integer"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A byte as one printable character for an error message (`?` for the others).
fn printable(byte: u8) -> char {
    if byte.is_ascii_graphic() || byte == b' ' {
        byte as char
    } else {
        '?'
    }
}

// ANCHOR: parse_length
/// Reads the number in a header line (`3` in `*3\r\n`) without ever overflowing: at most 19
/// digits and an optional `-`, checked arithmetic, nothing else allowed (no `+`, no spaces).
/// `None` for anything that is not such a number, `*99999999999999999999` included.
fn parse_length(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(digit - b'0'))?;
    }
    Some(if negative { -value } else { value })
}
// ANCHOR_END: parse_length

/// Where the header line that starts at `buf[0]` ends: `Ok(Some(i))` with `buf[i..i + 2] ==
/// "\r\n"`, `Ok(None)` if it is not all there yet, `Err(too_long)` once more than `max` bytes
/// have come without `\r\n` (or a `\r` is followed by something else).
fn header_end(
    buf: &[u8],
    max: usize,
    too_long: ProtocolError,
    invalid: ProtocolError,
) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[..buf.len().min(max + 2)];
    match window.iter().position(|&b| b == b'\r') {
        Some(i) if i + 1 == buf.len() => Ok(None),
        Some(i) if buf[i + 1] == b'\n' => Ok(Some(i)),
        Some(_) => Err(invalid),
        None if buf.len() > max => Err(too_long),
        None => Ok(None),
    }
}

// ANCHOR: parser
/// Parses requests one at a time from the start of a connection's unanswered bytes.
///
/// It is *incremental*: when a request is not all there yet, [`parse`](RequestParser::parse)
/// returns `Ok(None)` and remembers how far it got, so the next call (with the same bytes and
/// more after them) goes on from there instead of starting again. A request of a million
/// elements arriving one byte per `read` costs time in proportion to its size.
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    /// The elements found so far, as ranges of the request's bytes.
    args: Vec<Range<usize>>,
    /// Where the request is.
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing parsed of the next request.
    Start,
    /// Inside `*N`: `remaining` elements to go, the next starting at `at`.
    Array { remaining: usize, at: usize },
}

impl RequestParser {
    pub fn new(limits: Limits) -> RequestParser {
        RequestParser {
            limits,
            args: Vec::new(),
            state: State::Start,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses the request at the start of `buf`, which must begin where the last request ended
    /// (and hold the same bytes as on the last call, and maybe more). Returns:
    /// - `Ok(Some(n))`: a complete request of `n` bytes; its elements are
    ///   [`args`](RequestParser::args) (none for an empty request, which gets no reply).
    /// - `Ok(None)`: not complete yet; call again when more bytes have arrived.
    /// - `Err(_)`: malformed. The connection cannot go on: answer the error and close it.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let parsed = self.parse_from_state(buf);
        if parsed.is_err() {
            // The connection is over; a parser used again starts afresh.
            self.state = State::Start;
        }
        parsed
    }

    fn parse_from_state(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if self.state == State::Start {
            self.args.clear();
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return self.parse_inline(buf),
            }
            let Some(end) = header_end(
                &buf[1..],
                self.limits.max_inline,
                ProtocolError::ArrayHeaderTooLong,
                ProtocolError::InvalidArrayLength,
            )?
            else {
                return Ok(None);
            };
            let count = parse_length(&buf[1..1 + end]).ok_or(ProtocolError::InvalidArrayLength)?;
            // `*0` and `*-1` (the nil array) hold no command: Redis skips them. The count is
            // checked against the cap before it means anything.
            if count < -1 || count > self.limits.max_array as i64 {
                return Err(ProtocolError::InvalidArrayLength);
            }
            let header = 1 + end + 2;
            if count <= 0 {
                return Ok(Some(header));
            }
            self.state = State::Array {
                remaining: count as usize,
                at: header,
            };
        }
        while let State::Array { remaining, at } = self.state {
            if remaining == 0 {
                self.state = State::Start;
                return Ok(Some(at));
            }
            let Some(element) = self.parse_bulk(&buf[at..])? else {
                return Ok(None);
            };
            // The vector of ranges grows one element at a time, as elements arrive: never to
            // the announced count.
            self.args.push(at + element.start..at + element.end);
            self.state = State::Array {
                remaining: remaining - 1,
                at: at + element.end + 2,
            };
        }
        unreachable!("the loop returns when the array is complete")
    }
    // ANCHOR_END: parser

    // ANCHOR: parse_bulk
    /// One bulk string at the start of `buf`: the range of its content, or `None` if it is not
    /// all there yet. The length is checked against the cap first; nothing is allocated for it.
    fn parse_bulk(&self, buf: &[u8]) -> Result<Option<Range<usize>>, ProtocolError> {
        match buf.first() {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
        }
        let Some(end) = header_end(
            &buf[1..],
            self.limits.max_inline,
            ProtocolError::BulkHeaderTooLong,
            ProtocolError::InvalidBulkLength,
        )?
        else {
            return Ok(None);
        };
        let len = parse_length(&buf[1..1 + end]).ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len > self.limits.max_bulk as i64 {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let start = 1 + end + 2;
        // No overflow: `start` is at most a few dozen, `len` at most the cap.
        let content = start..start + len as usize;
        match buf.get(content.end..content.end + 2) {
            None if buf.len() < content.end + 2 => {
                // Not all there. Check the bytes after the content as soon as they arrive.
                match buf.get(content.end) {
                    Some(b'\r') | None => Ok(None),
                    Some(_) => Err(ProtocolError::ExpectedCrlf),
                }
            }
            Some(b"\r\n") => Ok(Some(content)),
            _ => Err(ProtocolError::ExpectedCrlf),
        }
    }
    // ANCHOR_END: parse_bulk

    // ANCHOR: parse_inline
    /// An inline command: one line, words separated by spaces or tabs. The line ends with `\n`;
    /// one `\r` before it is dropped.
    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let window = &buf[..buf.len().min(self.limits.max_inline + 1)];
        let Some(newline) = window.iter().position(|&b| b == b'\n') else {
            return if buf.len() > self.limits.max_inline {
                Err(ProtocolError::InlineTooLong)
            } else {
                Ok(None)
            };
        };
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let mut word_start = None;
        for (i, &byte) in buf[..line_end].iter().enumerate() {
            let space = byte == b' ' || byte == b'\t';
            match (word_start, space) {
                (None, false) => word_start = Some(i),
                (Some(start), true) => {
                    self.args.push(start..i);
                    word_start = None;
                }
                _ => {}
            }
        }
        if let Some(start) = word_start {
            self.args.push(start..line_end);
        }
        Ok(Some(newline + 1))
    }
    // ANCHOR_END: parse_inline

    /// The elements of the request [`parse`](RequestParser::parse) just returned, as slices of
    /// `buf` (the same bytes it was given).
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        self.args.iter().map(move |range| &buf[range.clone()])
    }

    /// How many elements the last complete request has.
    pub fn arg_count(&self) -> usize {
        self.args.len()
    }

    /// Lets go of the memory a request of many elements needed (call it between requests).
    pub fn shrink(&mut self) {
        if self.state == State::Start && self.args.capacity() > 64 {
            self.args = Vec::new();
        }
    }

    /// The bytes the parser holds for a request in progress (its list of element ranges), to
    /// count against a memory budget. Each element costs at least 6 bytes on the wire (`$0\r\n\r\n`).
    pub fn memory(&self) -> usize {
        self.args.capacity() * std::mem::size_of::<Range<usize>>()
    }
}

// ANCHOR: budget
/// One budget of bytes for the receive buffers of all connections together. A connection's
/// buffer grows only with the budget's leave; when the budget is used up, the connection that
/// needs more is told so and closed, and the others go on.
///
/// Without it, a thousand clients each sending the first half of a 512 MB value would ask for
/// 256 GB between them, every one of them within the bulk cap.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    used: usize,
    limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget { used: 0, limit }
    }

    /// Takes `bytes` from the budget, if that many are left.
    pub fn take(&mut self, bytes: usize) -> bool {
        match self.used.checked_add(bytes) {
            Some(after) if after <= self.limit => {
                self.used = after;
                true
            }
            _ => false,
        }
    }

    /// Gives back `bytes` taken earlier.
    pub fn give_back(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}
// ANCHOR_END: budget

/// The budget had no room for a buffer to grow: [`RequestBuffer::read_from`]'s error.
#[derive(Debug)]
pub struct BudgetExhausted;

impl fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's memory for unanswered requests is used up")
    }
}

impl std::error::Error for BudgetExhausted {}

// ANCHOR: request_buffer
/// A connection's received bytes not answered yet. It starts small and grows, by doubling, only
/// while one request fills it, taking what it grows by from a [`MemoryBudget`]; when it is empty
/// again it shrinks back and returns the rest. Its size follows the bytes that have *arrived*,
/// never a length a request announced.
#[derive(Debug)]
pub struct RequestBuffer {
    bytes: Vec<u8>,
    /// `bytes[start..end]` is received and not consumed yet.
    start: usize,
    end: usize,
    /// What this buffer has taken from the budget (its capacity).
    charged: usize,
}

impl Default for RequestBuffer {
    fn default() -> Self {
        RequestBuffer::new()
    }
}

impl RequestBuffer {
    /// 16 KiB, as Redis reads.
    pub const INITIAL_SIZE: usize = 16 * 1024;

    /// An empty buffer; it takes memory from the budget on its first read.
    pub fn new() -> RequestBuffer {
        RequestBuffer {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            charged: 0,
        }
    }

    /// The bytes received and not consumed: the next request starts at `unparsed()[0]`.
    pub fn unparsed(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Marks the first `n` bytes of [`unparsed`](RequestBuffer::unparsed) as answered.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Gives memory back once a big request has been answered: an empty buffer bigger than
    /// [`INITIAL_SIZE`](RequestBuffer::INITIAL_SIZE) shrinks to it.
    pub fn shrink(&mut self, budget: &mut MemoryBudget) {
        if self.start == self.end && self.bytes.len() > RequestBuffer::INITIAL_SIZE {
            self.bytes = vec![0; RequestBuffer::INITIAL_SIZE];
            budget.give_back(self.charged - RequestBuffer::INITIAL_SIZE);
            self.charged = RequestBuffer::INITIAL_SIZE;
        }
    }

    /// What the buffer holds against the budget.
    pub fn charged(&self) -> usize {
        self.charged
    }

    /// Returns everything to the budget (the connection is closing).
    pub fn release(&mut self, budget: &mut MemoryBudget) {
        budget.give_back(self.charged);
        self.charged = 0;
        self.bytes = Vec::new();
        self.start = 0;
        self.end = 0;
    }

    /// Makes room for at least one more byte (moving unconsumed bytes to the front, or growing
    /// within the budget), then calls `read` once. Returns what `read` returned (`Ok(0)` is the
    /// end of the stream), or an error of kind `OutOfMemory` carrying [`BudgetExhausted`].
    pub fn read_from(&mut self, source: &mut impl Read, budget: &mut MemoryBudget) -> io::Result<usize> {
        if self.end == self.bytes.len() {
            if self.start > 0 {
                self.bytes.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.bytes.len() {
                let new_size = (self.bytes.len() * 2).max(RequestBuffer::INITIAL_SIZE);
                if !budget.take(new_size - self.charged) {
                    return Err(io::Error::new(io::ErrorKind::OutOfMemory, BudgetExhausted));
                }
                self.charged = new_size;
                self.bytes.resize(new_size, 0);
            }
        }
        let n = source.read(&mut self.bytes[self.end..])?;
        self.end += n;
        Ok(n)
    }
}
// ANCHOR_END: request_buffer

/// Is `err` the [`RequestBuffer::read_from`] error for a used-up budget?
pub fn is_budget_exhausted(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<BudgetExhausted>())
}

// ANCHOR: replies
/// Appends `+text\r\n`. `text` must not contain `\r` or `\n` (simple strings cannot).
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `-message\r\n`, with any `\r` or `\n` in `message` turned into spaces (an error is
/// one line, and `message` may quote what a client sent), as Redis does.
pub fn error(out: &mut Vec<u8>, message: impl AsRef<[u8]>) {
    out.push(b'-');
    out.extend(
        message
            .as_ref()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends `:n\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    // `write!` into a Vec formats in place, without a String in between; it cannot fail.
    let _ = write!(out, ":{n}\r\n");
}

/// Appends `$len\r\nbytes\r\n`: any bytes at all, since the length says where they end.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = write!(out, "${}\r\n", bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$-1\r\n`, the nil bulk string: "there is no value", unlike `$0\r\n\r\n`, the empty one.
pub fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends `*n\r\n`; the `n` elements follow.
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    let _ = write!(out, "*{n}\r\n");
}
// ANCHOR_END: replies

/// A request as a client sends it: an array of bulk strings.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    array_header(&mut out, args.len());
    for arg in args {
        bulk(&mut out, arg.as_ref());
    }
    out
}

/// A reply, decoded: what a client gets. Tests and the checker use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    /// `None` is nil (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `None` is the nil array (`*-1`).
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The bytes on the wire.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let line = |out: &mut Vec<u8>, kind: u8, text: &[u8]| {
            out.push(kind);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        };
        match self {
            Value::Simple(text) => line(out, b'+', text),
            Value::Error(text) => line(out, b'-', text),
            Value::Integer(n) => integer(out, *n),
            Value::Bulk(Some(bytes)) => bulk(out, bytes),
            Value::Bulk(None) => nil(out),
            Value::Array(Some(items)) => {
                array_header(out, items.len());
                items.iter().for_each(|item| item.encode(out));
            }
            Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Decodes one reply from the start of `buf`: `Ok(Some((value, bytes used)))`, `Ok(None)` if it
/// is not all there yet. Lengths are checked against `limits` before use, arrays may nest at
/// most [`Limits::max_depth`] deep, and a vector is never sized from an announced count.
/// (Replies are small in tests, so this one starts from the beginning on every call.)
pub fn decode_reply(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, ProtocolError> {
    decode_at(buf, limits, 0)
}

fn decode_at(buf: &[u8], limits: &Limits, depth: usize) -> Result<Option<(Value, usize)>, ProtocolError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    // Simple strings, errors and integers are one line.
    let line = |buf: &[u8]| -> Result<Option<(Vec<u8>, usize)>, ProtocolError> {
        let window = &buf[1..buf.len().min(limits.max_inline + 2)];
        match window.windows(2).position(|pair| pair == b"\r\n") {
            Some(i) => Ok(Some((window[..i].to_vec(), 1 + i + 2))),
            None if buf.len() > limits.max_inline + 1 => Err(ProtocolError::InlineTooLong),
            None => Ok(None),
        }
    };
    let header =
        |buf: &[u8], invalid: ProtocolError, too_long| -> Result<Option<(i64, usize)>, ProtocolError> {
            let Some(end) = header_end(&buf[1..], limits.max_inline, too_long, invalid.clone())? else {
                return Ok(None);
            };
            let n = parse_length(&buf[1..1 + end]).ok_or(invalid)?;
            Ok(Some((n, 1 + end + 2)))
        };
    match kind {
        b'+' => Ok(line(buf)?.map(|(text, used)| (Value::Simple(text), used))),
        b'-' => Ok(line(buf)?.map(|(text, used)| (Value::Error(text), used))),
        b':' => match line(buf)? {
            None => Ok(None),
            Some((text, used)) => {
                let n = parse_length(&text).ok_or(ProtocolError::InvalidInteger)?;
                Ok(Some((Value::Integer(n), used)))
            }
        },
        b'$' => {
            let Some((len, start)) = header(
                buf,
                ProtocolError::InvalidBulkLength,
                ProtocolError::BulkHeaderTooLong,
            )?
            else {
                return Ok(None);
            };
            if len == -1 {
                return Ok(Some((Value::Bulk(None), start)));
            }
            if len < 0 || len > limits.max_bulk as i64 {
                return Err(ProtocolError::InvalidBulkLength);
            }
            let end = start + len as usize;
            match buf.get(end..end + 2) {
                None => Ok(None),
                Some(b"\r\n") => Ok(Some((Value::Bulk(Some(buf[start..end].to_vec())), end + 2))),
                Some(_) => Err(ProtocolError::ExpectedCrlf),
            }
        }
        b'*' => {
            let Some((count, mut at)) = header(
                buf,
                ProtocolError::InvalidArrayLength,
                ProtocolError::ArrayHeaderTooLong,
            )?
            else {
                return Ok(None);
            };
            if count == -1 {
                return Ok(Some((Value::Array(None), at)));
            }
            if count < 0 || count > limits.max_array as i64 {
                return Err(ProtocolError::InvalidArrayLength);
            }
            if depth >= limits.max_depth {
                return Err(ProtocolError::TooDeep);
            }
            let mut items = Vec::new();
            for _ in 0..count {
                let Some((item, used)) = decode_at(&buf[at..], limits, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at += used;
            }
            Ok(Some((Value::Array(Some(items)), at)))
        }
        other => Err(ProtocolError::UnknownReplyType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(parser: &mut RequestParser, wire: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut requests = Vec::new();
        let mut at = 0;
        while let Some(used) = parser.parse(&wire[at..])? {
            requests.push(parser.args(&wire[at..]).map(<[u8]>::to_vec).collect());
            at += used;
        }
        Ok(requests)
    }

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    fn error_of(wire: &[u8]) -> String {
        let mut parser = RequestParser::new(Limits::default());
        parse_all(&mut parser, wire).unwrap_err().to_string()
    }

    #[test]
    fn arrays_of_bulk_strings_and_inline_commands() {
        let mut parser = RequestParser::new(Limits::default());
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$4\r\n\r\n\x00\xff\r\nPING\r\nget  a\n\r\n*0\r\n*-1\r\n";
        assert_eq!(
            parse_all(&mut parser, wire).unwrap(),
            vec![
                vec![b"SET".to_vec(), b"a".to_vec(), b"\r\n\x00\xff".to_vec()],
                args(&["PING"]),
                args(&["get", "a"]),
                vec![],
                vec![],
                vec![],
            ]
        );
    }

    #[test]
    fn hostile_lengths_are_errors_without_overflow_or_allocation() {
        for (wire, message) in [
            (&b"*1\r\n$18446744073709551615\r\n"[..], "invalid bulk length"),
            (b"*1\r\n$9223372036854775807\r\n", "invalid bulk length"),
            (b"*1\r\n$-2\r\n", "invalid bulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "invalid bulk length"),
            (b"*1\r\n$+5\r\n", "invalid bulk length"),
            (b"*1\r\n$ 5\r\n", "invalid bulk length"),
            (b"*1\r\n$5\rx", "invalid bulk length"),
            (b"*-2\r\n", "invalid multibulk length"),
            (b"*99999999999999999999\r\n", "invalid multibulk length"),
            (b"*1048577\r\n", "invalid multibulk length"),
            (b"*x\r\n", "invalid multibulk length"),
            (b"*\r\n", "invalid multibulk length"),
            (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
            (b"*1\r\nPING\r\n", "expected '$', got 'P'"),
            (b"*1\r\n$4\r\nPINGxx", "expected \\r\\n after a bulk string"),
            (b"*1\r\n$4\r\nPING\rx", "expected \\r\\n after a bulk string"),
        ] {
            assert_eq!(error_of(wire), format!("Protocol error: {message}"), "{wire:?}");
        }
        // 64 KiB without a line end.
        assert_eq!(error_of(&[b'a'; 65537]), "Protocol error: too big inline request");
        let mut header = b"*1".to_vec();
        header.extend([b'1'; 65537]);
        assert_eq!(error_of(&header), "Protocol error: too big mbulk count string");
        let mut header = b"*1\r\n$".to_vec();
        header.extend([b'1'; 65537]);
        assert_eq!(error_of(&header), "Protocol error: too big bulk count string");
    }

    #[test]
    fn the_caps_are_configurable_and_exact() {
        let limits = Limits {
            max_bulk: 5,
            max_array: 2,
            max_inline: 8,
            max_depth: 1,
        };
        let mut parser = RequestParser::new(limits);
        assert!(parse_all(&mut parser, b"*2\r\n$5\r\nhello\r\n$0\r\n\r\n").is_ok());
        assert!(parse_all(&mut parser, b"*1\r\n$6\r\n").is_err());
        assert!(parse_all(&mut parser, b"*3\r\n").is_err());
        assert!(parse_all(&mut parser, b"12345678\n").is_ok());
        assert!(parse_all(&mut parser, b"12345678\r\n").is_err());
        assert_eq!(parser.parse(b"12345678").unwrap(), None);
        assert!(parser.parse(b"123456789").is_err());
    }

    #[test]
    fn lines_that_are_not_complete_are_incomplete() {
        let mut parser = RequestParser::new(Limits::default());
        for wire in [
            &b""[..],
            b"*",
            b"*1",
            b"*1\r",
            b"*1\r\n$",
            b"*1\r\n$3\r\nGE",
            b"*1\r\n$3\r\nGET\r",
            b"PING\r",
        ] {
            assert_eq!(parser.parse(wire), Ok(None), "{wire:?}");
            parser = RequestParser::new(Limits::default());
        }
    }

    #[test]
    fn replies_encode_as_redis_sends_them() {
        let mut out = Vec::new();
        simple(&mut out, "OK");
        error(&mut out, "ERR bad\r\nthing");
        integer(&mut out, -3);
        bulk(&mut out, b"a\r\nb");
        nil(&mut out);
        array_header(&mut out, 0);
        assert_eq!(
            out,
            b"+OK\r\n-ERR bad  thing\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n*0\r\n"
        );
        let limits = Limits::default();
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((value, used)) = decode_reply(&out[at..], &limits).unwrap() {
            got.push(value);
            at += used;
        }
        assert_eq!(
            got,
            [
                Value::Simple(b"OK".to_vec()),
                Value::Error(b"ERR bad  thing".to_vec()),
                Value::Integer(-3),
                Value::Bulk(Some(b"a\r\nb".to_vec())),
                Value::Bulk(None),
                Value::Array(Some(vec![])),
            ]
        );
    }

    #[test]
    fn replies_nest_only_so_deep() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert!(decode_reply(b"*1\r\n*1\r\n:1\r\n", &limits).unwrap().is_some());
        assert_eq!(
            decode_reply(b"*1\r\n*1\r\n*1\r\n:1\r\n", &limits),
            Err(ProtocolError::TooDeep)
        );
        let deep = "*1\r\n".repeat(100_000);
        assert_eq!(
            decode_reply(deep.as_bytes(), &Limits::default()),
            Err(ProtocolError::TooDeep)
        );
    }

    #[test]
    fn the_buffer_grows_with_what_arrives_within_the_budget_and_shrinks_back() {
        let mut budget = MemoryBudget::new(64 * 1024);
        let mut buffer = RequestBuffer::new();
        let data = vec![b'x'; 40_000];
        let mut source = &data[..];
        while !source.is_empty() {
            buffer.read_from(&mut source, &mut budget).unwrap();
        }
        assert_eq!(buffer.unparsed().len(), 40_000);
        assert_eq!(buffer.charged(), 64 * 1024);
        assert_eq!(budget.used(), 64 * 1024);
        // Full, and the budget cannot double it.
        let more = vec![b'y'; 30_000];
        let mut source = &more[..];
        let err = loop {
            match buffer.read_from(&mut source, &mut budget) {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        assert!(is_budget_exhausted(&err));
        buffer.consume(buffer.unparsed().len());
        buffer.shrink(&mut budget);
        assert_eq!(budget.used(), RequestBuffer::INITIAL_SIZE);
        buffer.release(&mut budget);
        assert_eq!(budget.used(), 0);
    }

    fn arb_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 ]{0,20}".prop_map(|s| Value::Simple(s.into_bytes())),
            "[a-zA-Z0-9 ]{0,20}".prop_map(|s| Value::Error(s.into_bytes())),
            any::<i64>().prop_map(Value::Integer),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..30)).prop_map(Value::Bulk),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop::option::of(prop::collection::vec(inner, 0..5)).prop_map(Value::Array)
        })
    }

    proptest! {
        #[test]
        fn requests_round_trip(requests in prop::collection::vec(arb_args(), 1..5)) {
            let mut wire = Vec::new();
            for request in &requests {
                wire.extend(encode_request(request));
            }
            let mut parser = RequestParser::new(Limits::default());
            prop_assert_eq!(parse_all(&mut parser, &wire).unwrap(), requests);
        }

        /// Fed the bytes up to every possible split point first (as if one `read` ended there),
        /// the incremental parser finds the same requests.
        #[test]
        fn a_split_at_every_byte_parses_the_same(requests in prop::collection::vec(arb_args(), 1..3)) {
            let mut wire = Vec::new();
            for request in &requests {
                wire.extend(encode_request(request));
            }
            for split in 0..=wire.len() {
                let mut parser = RequestParser::new(Limits::default());
                let mut got = Vec::new();
                let mut at = 0;
                // The first "read" ends at `split`: parse what is there, then the rest.
                while let Some(used) = parser.parse(&wire[at..split.max(at)]).unwrap() {
                    got.push(parser.args(&wire[at..]).map(<[u8]>::to_vec).collect::<Vec<_>>());
                    at += used;
                }
                while let Some(used) = parser.parse(&wire[at..]).unwrap() {
                    got.push(parser.args(&wire[at..]).map(<[u8]>::to_vec).collect::<Vec<_>>());
                    at += used;
                }
                prop_assert_eq!(&got, &requests, "split at {}", split);
            }
        }

        /// One byte at a time, like a client that writes byte by byte.
        #[test]
        fn one_byte_at_a_time_parses_the_same(request in arb_args()) {
            let wire = encode_request(&request);
            let mut parser = RequestParser::new(Limits::default());
            for end in 0..wire.len() {
                prop_assert_eq!(parser.parse(&wire[..end]).unwrap(), None);
            }
            prop_assert_eq!(parser.parse(&wire).unwrap(), Some(wire.len()));
            prop_assert_eq!(parser.args(&wire).map(<[u8]>::to_vec).collect::<Vec<_>>(), request);
        }

        #[test]
        fn replies_round_trip(value in arb_value()) {
            let wire = value.to_bytes();
            let limits = Limits::default();
            prop_assert_eq!(decode_reply(&wire, &limits).unwrap(), Some((value, wire.len())));
            for end in 0..wire.len() {
                prop_assert_eq!(decode_reply(&wire[..end], &limits).unwrap(), None);
            }
        }

        #[test]
        fn junk_never_panics(junk in prop::collection::vec(any::<u8>(), 0..200), prefix in "[*$:+-]?[-0-9]{0,22}\r?\n?") {
            let mut wire = prefix.into_bytes();
            wire.extend(junk);
            let mut parser = RequestParser::new(Limits { max_inline: 64, ..Limits::default() });
            let _ = parse_all(&mut parser, &wire);
            let _ = decode_reply(&wire, &Limits::default());
        }
    }
}
