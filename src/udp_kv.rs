//! The key-value protocol over UDP (lesson 11): one command per datagram, one reply per datagram,
//! matched by a request id.
//!
//! Over TCP, the stream keeps commands and replies in order and delivers each byte once. Over UDP
//! nothing does: a datagram can be lost, arrive twice, or arrive after one sent later. So each
//! request carries a number chosen by the client, and the reply carries it back; the client
//! sends again when no reply comes, and keeps only the reply whose id it is waiting for.
//!
//! # The format
//!
//! **Request**: one datagram, `<id> <command>`, optionally ending in `\n`: `17 SET greeting hello`.
//! The id is a decimal number from 0 to 2⁶⁴−1 (at most 20 digits, no sign), then one space. The
//! command is a line of the key-value protocol ([`crate::kv`]), parsed by [`Command::parse`]:
//! `SET key value`, `GET key`, `DELETE key`, any letter case for the command word.
//!
//! **Reply**: one datagram, `<id> <reply>\n`: the request's id, a space, and exactly the line the
//! TCP server would send ([`Reply::encode_into`]): `17 OK\n`, `18 hello\n`,
//! `19 ERROR no such key\n`.
//!
//! **Largest datagram**: [`MAX_DATAGRAM`] bytes (1200), requests and replies alike. That fits in
//! one IP packet on practically every path (IPv6 promises 1280 bytes, headers included), so a
//! datagram is never split into fragments, where losing one fragment loses it all. A request
//! longer than that is answered `<id> ERROR datagram too long (...)`. A reply can never be
//! longer than the request it answers except by the `\n` (`18 v\n` vs. `18 SET k v`), but the
//! encoder checks anyway.
//!
//! **Junk**: a datagram that does not start with an id gets no reply at all: the sender could not
//! match it to anything, and a server that answers every datagram from any address can be used to
//! flood a third party (with a forged sender address). The server logs it and goes on.
//!
//! **Repeats**: a client sends the same request (same id) again when it got no reply. The server
//! must make that harmless: it keeps the replies it sent, keyed by (client address, id), in a
//! bounded [`ReplyCache`], and answers a repeat with the same reply without carrying the command
//! out again.
//!
//! ```
//! use socket_workbook::kv::{Command, Reply};
//! use socket_workbook::udp_kv::{encode_reply, encode_request, parse_reply, parse_request};
//!
//! let datagram = encode_request(17, &Command::Get { key: "a".into() });
//! assert_eq!(datagram, b"17 GET a\n");
//! let request = parse_request(&datagram).unwrap();
//! assert_eq!((request.id, request.command), (17, Command::Get { key: "a".into() }));
//!
//! let reply = encode_reply(17, &Reply::Value("hello".into()));
//! assert_eq!(reply, b"17 hello\n");
//! assert_eq!(parse_reply(&reply), Some((17, &b"hello"[..])));
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;

use crate::kv::{Command, ParseError, Reply};

// ANCHOR: max_datagram
/// The most bytes a request or reply datagram may hold: small enough for one IP packet on any
/// path, so it is never fragmented.
pub const MAX_DATAGRAM: usize = 1200;
// ANCHOR_END: max_datagram

/// The most digits of an id: 2⁶⁴−1 has 20.
const MAX_ID_DIGITS: usize = 20;

/// A request as the server understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub command: Command,
}

/// Why a datagram is not a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// It does not start with `<id> `: nobody can match an answer to it, so it gets none.
    NoId,
    /// Longer than [`MAX_DATAGRAM`] (`length` bytes, or more when the receive buffer cut it).
    TooLong { id: u64, length: usize },
    /// An id, then something that is not a command.
    Command { id: u64, error: ParseError },
}

impl RequestError {
    /// The id to answer to, if there is one.
    pub fn id(&self) -> Option<u64> {
        match self {
            RequestError::NoId => None,
            RequestError::TooLong { id, .. } | RequestError::Command { id, .. } => Some(*id),
        }
    }

    /// The `ERROR` reply to send, if the datagram can be answered at all.
    pub fn reply(&self) -> Option<(u64, Reply)> {
        match self {
            RequestError::NoId => None,
            RequestError::TooLong { id, .. } => Some((
                *id,
                Reply::Error(format!("datagram too long (at most {MAX_DATAGRAM} bytes)")),
            )),
            RequestError::Command { id, error } => Some((*id, Reply::from(error.clone()))),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoId => write!(f, "no request id (a datagram must start with `<id> `)"),
            RequestError::TooLong { length, .. } => {
                write!(f, "{length} bytes or more, over the limit of {MAX_DATAGRAM}")
            }
            RequestError::Command { error, .. } => write!(f, "{error}"),
        }
    }
}

/// Splits `<id> <rest>` into the id and the rest. `None` if it does not start with 1 to 20
/// digits, a value that fits in 64 bits, and one space.
pub fn split_id(datagram: &[u8]) -> Option<(u64, &[u8])> {
    let space = datagram.iter().take(MAX_ID_DIGITS + 1).position(|&b| b == b' ')?;
    let digits = &datagram[..space];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All ASCII digits, so valid UTF-8; `parse` rejects values over u64::MAX.
    let id = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some((id, &datagram[space + 1..]))
}

// ANCHOR: parse_request
/// Parses one received datagram. Receive into a buffer one byte larger than [`MAX_DATAGRAM`]: a
/// datagram that fills it was too long (the kernel cut it to fit), and is refused.
pub fn parse_request(datagram: &[u8]) -> Result<Request, RequestError> {
    let (id, rest) = split_id(datagram).ok_or(RequestError::NoId)?;
    if datagram.len() > MAX_DATAGRAM {
        return Err(RequestError::TooLong {
            id,
            length: datagram.len(),
        });
    }
    // One optional `\n` at the end (`nc -u` sends one per line); the KV parser drops a `\r`.
    let line = rest.strip_suffix(b"\n").unwrap_or(rest);
    let command = Command::parse(line).map_err(|error| RequestError::Command { id, error })?;
    Ok(Request { id, command })
}
// ANCHOR_END: parse_request

/// The request datagram for `command`: `<id> <command>\n`.
pub fn encode_request(id: u64, command: &Command) -> Vec<u8> {
    format!("{id} {}", command.to_line()).into_bytes()
}

// ANCHOR: encode_reply
/// The reply datagram: `<id> `, then the line [`Reply::encode_into`] writes for TCP. A reply that
/// would not fit in [`MAX_DATAGRAM`] becomes an `ERROR` reply that does.
pub fn encode_reply(id: u64, reply: &Reply) -> Vec<u8> {
    let mut datagram = format!("{id} ").into_bytes();
    reply.encode_into(&mut datagram);
    if datagram.len() > MAX_DATAGRAM {
        datagram = format!("{id} ").into_bytes();
        Reply::Error("reply too long for one datagram".to_string()).encode_into(&mut datagram);
    }
    datagram
}
// ANCHOR_END: encode_reply

/// A reply datagram's id and its line without the `\n` (a missing `\n` is accepted). `None` if it
/// does not start with an id.
pub fn parse_reply(datagram: &[u8]) -> Option<(u64, &[u8])> {
    let (id, rest) = split_id(datagram)?;
    Some((id, rest.strip_suffix(b"\n").unwrap_or(rest)))
}

/// A client's first request id, drawn from `seed`: a number below a million (short, to read in
/// logs). Not 0 or 1 for every client: a client that restarts on the same port and starts at the
/// same id would be answered with the replies the server remembers from its previous run.
pub fn first_request_id(seed: u64) -> u64 {
    // SplitMix64's mixing function (see `crate::retry`), so that nearby seeds give unrelated ids.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 1_000_000
}

// ANCHOR: reply_cache
/// The replies a server sent lately, keyed by (client address, request id), so that a repeated
/// request gets the same reply without being carried out again.
///
/// Why a server needs it: the client repeats a request when it got no reply, and it cannot know
/// whether the request or the reply was lost. If the reply was lost, the server already carried
/// the command out, and does so again:
/// - `GET` changes nothing: repeating it is harmless (the value may have changed meanwhile, but
///   that is a newer answer, not a wrong one).
/// - `SET k v` is *idempotent*: twice has the same effect as once, and the same reply `OK`. But
///   only when no one else writes `k` between the two: if another client sets `k` to `w`
///   meanwhile, the late repeat puts `v` back, undoing a write that came after it.
/// - `DELETE k` changes the key once, but its reply does not repeat: the first one says `OK`, the
///   repeat `ERROR no such key`. The client, who saw only the second reply, is told its delete
///   failed when it worked.
///
/// With the cache, a repeat is answered from memory, so every request is carried out at most
/// once and its reply is the same every time it is asked. The cache is bounded
/// ([`ReplyCache::CAPACITY`] entries, the oldest forgotten first): a repeat that comes after its
/// entry was forgotten is carried out again. Clients keep that unlikely by giving up after a few
/// seconds, and by never reusing an id soon (lesson 11's client starts at a random id).
#[derive(Debug, Clone)]
pub struct ReplyCache {
    replies: HashMap<(SocketAddr, u64), Vec<u8>>,
    /// Keys in the order they were added, the oldest first, to know which one to forget.
    order: VecDeque<(SocketAddr, u64)>,
    capacity: usize,
}
// ANCHOR_END: reply_cache

impl Default for ReplyCache {
    fn default() -> Self {
        ReplyCache::new()
    }
}

impl ReplyCache {
    /// How many replies the server remembers: at most 4096 × 1200 bytes, about 5 MB.
    pub const CAPACITY: usize = 4096;

    pub fn new() -> ReplyCache {
        ReplyCache::with_capacity(ReplyCache::CAPACITY)
    }

    /// A cache that remembers at most `capacity` replies (at least one).
    pub fn with_capacity(capacity: usize) -> ReplyCache {
        ReplyCache {
            replies: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// The reply already sent to request `id` from `peer`, if it is remembered.
    pub fn get(&self, peer: SocketAddr, id: u64) -> Option<&[u8]> {
        self.replies.get(&(peer, id)).map(Vec::as_slice)
    }

    /// Remembers the reply to request `id` from `peer`, forgetting the oldest one when full.
    pub fn insert(&mut self, peer: SocketAddr, id: u64, reply: Vec<u8>) {
        let key = (peer, id);
        if self.replies.insert(key, reply).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.replies.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.replies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request(b"0 set k hello world\r\n"),
            Ok(Request {
                id: 0,
                command: Command::Set {
                    key: "k".into(),
                    value: "hello world".into()
                }
            })
        );
        assert_eq!(
            parse_request(b"18446744073709551615 DELETE k").map(|r| r.id),
            Ok(u64::MAX)
        );
        // One past u64::MAX, a sign, no space, an empty id: no id at all.
        for junk in [
            &b"18446744073709551616 GET k"[..],
            b"-1 GET k",
            b"+1 GET k",
            b"12",
            b" GET k",
            b"GET k",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_request(junk), Err(RequestError::NoId), "{junk:?}");
        }
        assert_eq!(
            parse_request(b"5 FLY away"),
            Err(RequestError::Command {
                id: 5,
                error: ParseError::UnknownCommand("FLY".into())
            })
        );
        assert_eq!(
            parse_request(b"5 ").unwrap_err().reply(),
            Some((5, Reply::Error("empty line".into())))
        );
    }

    #[test]
    fn a_datagram_over_the_limit_is_refused_with_its_id() {
        let mut datagram = b"9 SET k ".to_vec();
        datagram.resize(MAX_DATAGRAM + 1, b'v');
        let error = parse_request(&datagram).unwrap_err();
        assert_eq!(
            error,
            RequestError::TooLong {
                id: 9,
                length: MAX_DATAGRAM + 1
            }
        );
        let (id, reply) = error.reply().unwrap();
        assert_eq!(
            encode_reply(id, &reply),
            b"9 ERROR datagram too long (at most 1200 bytes)\n"
        );
        datagram.truncate(MAX_DATAGRAM);
        assert!(parse_request(&datagram).is_ok());
    }

    #[test]
    fn a_reply_too_long_becomes_an_error_that_fits() {
        let reply = encode_reply(3, &Reply::Value("v".repeat(MAX_DATAGRAM)));
        assert_eq!(reply, b"3 ERROR reply too long for one datagram\n");
        let longest = Reply::Value("v".repeat(MAX_DATAGRAM - 3));
        assert_eq!(encode_reply(3, &longest).len(), MAX_DATAGRAM);
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply(b"7 OK\n"), Some((7, &b"OK"[..])));
        assert_eq!(parse_reply(b"7 \n"), Some((7, &b""[..])));
        assert_eq!(parse_reply(b"7 OK"), Some((7, &b"OK"[..])));
        assert_eq!(parse_reply(b"OK\n"), None);
    }

    #[test]
    fn the_cache_forgets_the_oldest_reply_first() {
        let mut cache = ReplyCache::with_capacity(2);
        cache.insert(peer(1), 1, b"1 OK\n".to_vec());
        cache.insert(peer(2), 1, b"1 v\n".to_vec());
        // The same id from another client is another request.
        assert_eq!(cache.get(peer(1), 1), Some(&b"1 OK\n"[..]));
        assert_eq!(cache.get(peer(2), 1), Some(&b"1 v\n"[..]));
        cache.insert(peer(1), 2, b"2 OK\n".to_vec());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(peer(1), 1), None);
        assert_eq!(cache.get(peer(1), 2), Some(&b"2 OK\n"[..]));
    }

    proptest! {
        /// Any bytes: parsing never panics, and whatever parses encodes back to an equal request.
        #[test]
        fn junk_never_panics(datagram in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(request) = parse_request(&datagram) {
                let again = parse_request(&encode_request(request.id, &request.command));
                prop_assert_eq!(again, Ok(request));
            }
            let _ = parse_reply(&datagram);
        }

        #[test]
        fn the_cache_stays_bounded(keys in proptest::collection::vec((0u16..8, 0u64..8), 0..100)) {
            let mut cache = ReplyCache::with_capacity(5);
            for (port, id) in keys {
                cache.insert(peer(port), id, Vec::new());
                prop_assert!(cache.len() <= 5);
                prop_assert_eq!(cache.order.len(), cache.len());
            }
        }
    }
}
