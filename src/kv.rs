//! The key-value protocol of lessons 05 and 06: commands, replies, and the store.
//!
//! A client keeps short texts on the server under names ("keys"): it stores one with `SET`, reads
//! it back with `GET` and removes it with `DELETE`. It is the smallest protocol that needs
//! everything a real one does: a way to tell where a message ends, errors, and state on the
//! server that outlives a connection.
//!
//! # The protocol
//!
//! **Lines.** A client sends one command per line; a line ends with `\n`. A line ending in `\r\n`
//! is accepted too (one `\r` before the `\n` is dropped), so `nc` and Windows tools work. The
//! server answers every command with exactly one line ending in `\n`, in the order the commands
//! arrived. Several commands may arrive in one read (a client may send them without waiting for
//! the replies: *pipelining*), and one command may arrive spread over many reads; neither changes
//! the replies.
//!
//! **Commands.** Words are separated by one space. The command word is case-insensitive (`SET`,
//! `set` and `Set` are the same); keys and values are case-sensitive. A key is one word: at least
//! one character, no spaces.
//!
//! | command            | reply when it works               | error when                     |
//! |--------------------|-----------------------------------|--------------------------------|
//! | `SET key value`    | `OK`                              |                                |
//! | `GET key`          | the value, as it was stored       | the key does not exist         |
//! | `DELETE key`       | `OK`                              | the key does not exist         |
//!
//! The value of `SET` is the rest of the line after the one space that follows the key. It may
//! contain spaces (`SET greeting hello world` stores `hello world`), and it may be empty:
//! `SET key ` (with the space) stores the empty value, and `GET key` then replies with an empty
//! line. `SET key` without the space has no value at all; this implementation treats it as a
//! wrong number of arguments. Keys and values are UTF-8 text and cannot contain a line break;
//! since one `\r` before the `\n` is dropped, a value cannot end with `\r`.
//!
//! **Errors.** Everything that goes wrong is answered with one line that starts with `ERROR`,
//! a space and a short reason for a human, like `ERROR no such key`. Errors are: a missing key
//! (`GET` or `DELETE`), an unknown command, a wrong number of arguments, a line that is not valid
//! UTF-8, and an empty line. The reason text is not part of the protocol: a reply that is exactly
//! `ERROR` is a valid error reply too, and clients must accept both. The connection stays usable
//! after every error, with one exception:
//!
//! **The line cap.** A line may hold at most [`MAX_LINE`] bytes (64 KiB) before its `\n`. A server
//! that has received more than that without a newline answers `ERROR line too long` and closes
//! the connection: it cannot know where the next command would begin. It keeps serving other
//! clients. The cap is what keeps a hostile client from filling the server's memory with one line.
//!
//! **The flaw.** A reply does not say what kind of reply it is. After `SET answer OK`, the reply to
//! `GET answer` is `OK`, exactly like the reply to a `SET`; after `SET note ERROR disk full`, the
//! reply to `GET note` looks like an error. A client cannot tell a stored value from a status.
//! Real protocols fix this with typed replies (Redis, for example, starts every reply with a
//! character that says what follows: `+OK`, `-ERR ...`, `$5` and five bytes of value). Lesson 05's
//! exercises let you make that change; this protocol shows why it is needed.
//!
//! # Store size
//!
//! Each entry is bounded by the line cap. The number of entries is not, so a [`Store`] has a
//! memory budget ([`Store::DEFAULT_LIMIT`]): a `SET` that would take the store past it is answered
//! with `ERROR store full`, and nothing is stored.
//!
//! # In code
//!
//! ```
//! use socket_workbook::kv::{Command, Reply, Store};
//!
//! let mut store = Store::new();
//! let set = Command::parse(b"SET greeting hello world").unwrap();
//! assert_eq!(store.apply(set).to_bytes(), b"OK\n");
//! let get = Command::parse(b"get greeting\r").unwrap();
//! assert_eq!(store.apply(get).to_bytes(), b"hello world\n");
//!
//! let wrong = Command::parse(b"GET").unwrap_err();
//! assert_eq!(Reply::from(wrong).to_bytes(), b"ERROR wrong number of arguments for GET (usage: GET key)\n");
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::escape::escape_abbreviated;

// ANCHOR: max_line
/// The most bytes a line may hold before its `\n` (a `\r` before the `\n` counts): 64 KiB.
pub const MAX_LINE: usize = 64 * 1024;
// ANCHOR_END: max_line

/// Is `line` (without its `\n`) an error reply: exactly `ERROR`, or `ERROR` followed by a space
/// and a reason? Note the protocol's flaw: a stored value `ERROR disk full` looks the same.
///
/// ```
/// use socket_workbook::kv::is_error_reply;
/// assert!(is_error_reply(b"ERROR no such key"));
/// assert!(is_error_reply(b"ERROR"));
/// assert!(!is_error_reply(b"ERRORS"));
/// assert!(!is_error_reply(b"OK"));
/// ```
// ANCHOR: is_error_reply
pub fn is_error_reply(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"ERROR ")
}
// ANCHOR_END: is_error_reply

/// The three command words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Set,
    Get,
    Delete,
}

impl Verb {
    /// `SET`, `GET`, `DELETE`: how the word is written on the wire by clients of this crate.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Set => "SET",
            Verb::Get => "GET",
            Verb::Delete => "DELETE",
        }
    }

    /// How the command is used, for error messages: `GET key`.
    pub fn usage(self) -> &'static str {
        match self {
            Verb::Set => "SET key value",
            Verb::Get => "GET key",
            Verb::Delete => "DELETE key",
        }
    }

    /// The verb a command word names, in any letter case.
    pub fn from_word(word: &str) -> Option<Verb> {
        [Verb::Set, Verb::Get, Verb::Delete]
            .into_iter()
            .find(|verb| word.eq_ignore_ascii_case(verb.name()))
    }
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Set { key: String, value: String },
    Get { key: String },
    Delete { key: String },
}

impl Command {
    /// Parses one line, given without its `\n`. One `\r` at the end is dropped first.
    ///
    /// ```
    /// use socket_workbook::kv::{Command, ParseError, Verb};
    /// assert_eq!(
    ///     Command::parse(b"set name Ada Lovelace\r"),
    ///     Ok(Command::Set { key: "name".into(), value: "Ada Lovelace".into() })
    /// );
    /// assert_eq!(
    ///     Command::parse(b"SET empty "),
    ///     Ok(Command::Set { key: "empty".into(), value: "".into() })
    /// );
    /// assert_eq!(Command::parse(b"SET empty"), Err(ParseError::WrongArity(Verb::Set)));
    /// assert_eq!(Command::parse(b"GET a b"), Err(ParseError::WrongArity(Verb::Get)));
    /// assert_eq!(Command::parse(b""), Err(ParseError::EmptyLine));
    /// ```
    // ANCHOR: parse
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(ParseError::EmptyLine);
        }
        let line = std::str::from_utf8(line).map_err(|_| ParseError::InvalidUtf8)?;
        // Everything after the first space is the command's arguments (`None`: there was no space).
        let (word, arguments) = match line.split_once(' ') {
            Some((word, arguments)) => (word, Some(arguments)),
            None => (line, None),
        };
        let verb = Verb::from_word(word).ok_or_else(|| ParseError::UnknownCommand(word.to_string()))?;
        let wrong_arity = ParseError::WrongArity(verb);
        match verb {
            Verb::Get | Verb::Delete => {
                let key = arguments.filter(|key| is_key(key)).ok_or(wrong_arity)?;
                let key = key.to_string();
                Ok(match verb {
                    Verb::Get => Command::Get { key },
                    _ => Command::Delete { key },
                })
            }
            Verb::Set => {
                // The key ends at the next space; the value is everything after that one space.
                let (key, value) = arguments
                    .and_then(|arguments| arguments.split_once(' '))
                    .filter(|(key, _)| is_key(key))
                    .ok_or(wrong_arity)?;
                Ok(Command::Set {
                    key: key.to_string(),
                    value: value.to_string(),
                })
            }
        }
    }
    // ANCHOR_END: parse

    /// The command as a line to send, with its `\n`: `SET key value\n`.
    ///
    /// ```
    /// use socket_workbook::kv::Command;
    /// let command = Command::Set { key: "a".into(), value: "x y".into() };
    /// assert_eq!(command.to_line(), "SET a x y\n");
    /// assert_eq!(Command::parse(command.to_line().trim_end().as_bytes()), Ok(command));
    /// ```
    pub fn to_line(&self) -> String {
        match self {
            Command::Set { key, value } => format!("SET {key} {value}\n"),
            Command::Get { key } => format!("GET {key}\n"),
            Command::Delete { key } => format!("DELETE {key}\n"),
        }
    }

    pub fn verb(&self) -> Verb {
        match self {
            Command::Set { .. } => Verb::Set,
            Command::Get { .. } => Verb::Get,
            Command::Delete { .. } => Verb::Delete,
        }
    }
}

// ANCHOR: is_key
/// A key is one word: not empty, no spaces.
fn is_key(text: &str) -> bool {
    !text.is_empty() && !text.contains(' ')
}
// ANCHOR_END: is_key

/// Why a line is not a command. Its `Display` text is the reason in the `ERROR` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing before the `\n` (or `\r\n`).
    EmptyLine,
    /// The line is not valid UTF-8 text.
    InvalidUtf8,
    /// The first word is not `SET`, `GET` or `DELETE` (in any case). Holds that word.
    UnknownCommand(String),
    /// A known command with too few or too many words, or an empty key.
    WrongArity(Verb),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::EmptyLine => write!(f, "empty line"),
            ParseError::InvalidUtf8 => write!(f, "invalid UTF-8"),
            // Escaped and shortened: the word is the client's bytes, and must not break our line.
            ParseError::UnknownCommand(word) => write!(
                f,
                "unknown command {} (expected SET, GET or DELETE)",
                escape_abbreviated(word.as_bytes(), 32)
            ),
            ParseError::WrongArity(verb) => write!(
                f,
                "wrong number of arguments for {} (usage: {})",
                verb.name(),
                verb.usage()
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK`: a `SET` or `DELETE` worked.
    Ok,
    /// The value `GET` found.
    Value(String),
    /// `ERROR <reason>`. The reason is one line of text for a human.
    Error(String),
}

impl Reply {
    /// The reply to a line longer than [`MAX_LINE`]; the server closes the connection after it.
    pub fn line_too_long() -> Reply {
        Reply::Error("line too long".to_string())
    }

    /// The reply to `GET` or `DELETE` of a key that does not exist.
    pub fn no_such_key() -> Reply {
        Reply::Error("no such key".to_string())
    }

    /// The reply to a `SET` that would take the store past its memory budget.
    pub fn store_full() -> Reply {
        Reply::Error("store full".to_string())
    }

    // ANCHOR: encode
    /// The bytes to send: the line and its `\n`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode_into(&mut bytes);
        bytes
    }

    /// Appends the bytes to send (the line and its `\n`) to `out`: the one place a reply is
    /// turned into bytes for the wire. A server that batches replies (lessons 07 and 08) appends
    /// them to its outgoing buffer this way, without building each one on its own first.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Ok => out.extend_from_slice(b"OK"),
            Reply::Value(value) => out.extend_from_slice(value.as_bytes()),
            Reply::Error(reason) => {
                out.extend_from_slice(b"ERROR ");
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out.push(b'\n');
    }
    // ANCHOR_END: encode
}

// ANCHOR: reply_display
/// The reply line without its `\n`, for logs: the same text [`Reply::encode_into`] sends.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ok => write!(f, "OK"),
            Reply::Value(value) => write!(f, "{value}"),
            Reply::Error(reason) => write!(f, "ERROR {reason}"),
        }
    }
}
// ANCHOR_END: reply_display

impl From<ParseError> for Reply {
    fn from(err: ParseError) -> Reply {
        Reply::Error(err.to_string())
    }
}

/// The server's state: one map from keys to values, shared by every client.
#[derive(Debug, Clone)]
pub struct Store {
    entries: HashMap<String, String>,
    /// What the entries cost, counted with [`Store::entry_cost`].
    bytes_used: usize,
    limit: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// The default memory budget: 64 MiB of entries.
    pub const DEFAULT_LIMIT: usize = 64 * 1024 * 1024;

    /// What one entry is charged for the map's own bookkeeping besides the key's and the
    /// value's bytes (two `String`s, a hash slot, allocator rounding): a rough, safe estimate.
    pub const ENTRY_OVERHEAD: usize = 64;

    /// An empty store with the default budget.
    pub fn new() -> Store {
        Store::with_limit(Store::DEFAULT_LIMIT)
    }

    /// An empty store that holds entries costing at most `limit` bytes in total.
    pub fn with_limit(limit: usize) -> Store {
        Store {
            entries: HashMap::new(),
            bytes_used: 0,
            limit,
        }
    }

    /// What an entry counts against the budget.
    pub fn entry_cost(key: &str, value: &str) -> usize {
        key.len() + value.len() + Store::ENTRY_OVERHEAD
    }

    // ANCHOR: apply
    /// Carries out `command` and says what to answer.
    pub fn apply(&mut self, command: Command) -> Reply {
        match command {
            Command::Set { key, value } => {
                let old_cost = self
                    .entries
                    .get(&key)
                    .map_or(0, |old| Store::entry_cost(&key, old));
                let bytes_after = self.bytes_used - old_cost + Store::entry_cost(&key, &value);
                if bytes_after > self.limit {
                    return Reply::store_full();
                }
                self.bytes_used = bytes_after;
                self.entries.insert(key, value);
                Reply::Ok
            }
            Command::Get { key } => match self.entries.get(&key) {
                Some(value) => Reply::Value(value.clone()),
                None => Reply::no_such_key(),
            },
            Command::Delete { key } => match self.entries.remove(&key) {
                Some(value) => {
                    self.bytes_used -= Store::entry_cost(&key, &value);
                    Reply::Ok
                }
                None => Reply::no_such_key(),
            },
        }
    }
    // ANCHOR_END: apply

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the stored entries cost against the budget.
    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }
}

// ANCHOR: byte_store
/// The store of lesson 13, whose protocol (RESP) carries any bytes: keys and values are byte
/// strings, not text, and may hold `\r\n`, `\0` or invalid UTF-8. The budget works as in
/// [`Store`]: a `set` that would take the store past it changes nothing.
#[derive(Debug, Clone)]
pub struct ByteStore {
    entries: HashMap<Vec<u8>, Vec<u8>>,
    bytes_used: usize,
    limit: usize,
}

/// A `set` the store's budget has no room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFull;

impl ByteStore {
    /// An empty store that holds entries costing at most `limit` bytes in total (each costs its
    /// key, its value and [`Store::ENTRY_OVERHEAD`]).
    pub fn with_limit(limit: usize) -> ByteStore {
        ByteStore {
            entries: HashMap::new(),
            bytes_used: 0,
            limit,
        }
    }

    fn cost(key: &[u8], value: &[u8]) -> usize {
        key.len() + value.len() + Store::ENTRY_OVERHEAD
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreFull> {
        let old_cost = self.entries.get(key).map_or(0, |old| ByteStore::cost(key, old));
        let bytes_after = self.bytes_used - old_cost + ByteStore::cost(key, value);
        if bytes_after > self.limit {
            return Err(StoreFull);
        }
        self.bytes_used = bytes_after;
        match self.entries.get_mut(key) {
            // Reuse the key (and the value's memory) of an overwritten entry.
            Some(old) => {
                old.clear();
                old.extend_from_slice(value);
            }
            None => {
                self.entries.insert(key.to_vec(), value.to_vec());
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Removes `key`; `true` if it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.entries.remove(key) {
            Some(value) => {
                self.bytes_used -= ByteStore::cost(key, &value);
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the stored entries cost against the budget.
    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }
}
// ANCHOR_END: byte_store

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> Command {
        Command::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> Command {
        Command::Get { key: key.into() }
    }

    #[test]
    fn command_words_are_case_insensitive_keys_are_not() {
        assert_eq!(Command::parse(b"gEt Key"), Ok(get("Key")));
        assert_eq!(
            Command::parse(b"delete k"),
            Ok(Command::Delete { key: "k".into() })
        );
        let mut store = Store::new();
        store.apply(set("Key", "1"));
        assert_eq!(store.apply(get("key")), Reply::no_such_key());
    }

    #[test]
    fn a_set_value_is_the_rest_of_the_line_after_one_space() {
        assert_eq!(
            Command::parse(b"SET k  two  spaces "),
            Ok(set("k", " two  spaces "))
        );
        assert_eq!(Command::parse(b"SET k \t"), Ok(set("k", "\t")));
        assert_eq!(Command::parse(b"SET k "), Ok(set("k", "")));
        assert_eq!(Command::parse(b"SET k OK"), Ok(set("k", "OK")));
    }

    #[test]
    fn one_carriage_return_is_dropped() {
        assert_eq!(Command::parse(b"GET k\r"), Ok(get("k")));
        assert_eq!(Command::parse(b"SET k v\r\r"), Ok(set("k", "v\r")));
        assert_eq!(Command::parse(b"\r"), Err(ParseError::EmptyLine));
    }

    #[test]
    fn wrong_arity_includes_missing_and_empty_keys() {
        for line in [
            &b"GET"[..],
            b"GET ",
            b"GET a b",
            b"GET  a",
            b"GET a ",
            b"DELETE",
            b"DELETE a b",
            b"SET",
            b"SET k",
            b"SET  v",
        ] {
            let err = Command::parse(line).unwrap_err();
            assert!(matches!(err, ParseError::WrongArity(_)), "{line:?}: {err:?}");
        }
    }

    #[test]
    fn other_errors() {
        assert_eq!(Command::parse(b""), Err(ParseError::EmptyLine));
        assert_eq!(Command::parse(b"SET k \xff"), Err(ParseError::InvalidUtf8));
        assert_eq!(
            Command::parse(b"FLY away"),
            Err(ParseError::UnknownCommand("FLY".into()))
        );
        assert_eq!(
            Command::parse(b" GET a"),
            Err(ParseError::UnknownCommand("".into()))
        );
    }

    #[test]
    fn error_replies_are_one_safe_line() {
        let word = "X\r\u{7}".repeat(100);
        let reply = Reply::from(Command::parse(word.as_bytes()).unwrap_err()).to_bytes();
        assert!(reply.starts_with(b"ERROR unknown command \"X\\r\\x07"));
        assert!(reply.len() < 200, "{}", reply.len());
        assert_eq!(reply.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(reply[..reply.len() - 1].iter().all(|b| (0x20..0x7f).contains(b)));
    }

    #[test]
    fn replies() {
        assert_eq!(Reply::Ok.to_bytes(), b"OK\n");
        assert_eq!(Reply::Value(String::new()).to_bytes(), b"\n");
        assert_eq!(Reply::no_such_key().to_bytes(), b"ERROR no such key\n");
        assert_eq!(Reply::line_too_long().to_bytes(), b"ERROR line too long\n");
        assert_eq!(
            Reply::from(ParseError::EmptyLine).to_bytes(),
            b"ERROR empty line\n"
        );
        assert!(is_error_reply(
            Reply::from(ParseError::InvalidUtf8).to_string().as_bytes()
        ));
    }

    #[test]
    fn the_wire_bytes_are_the_log_text_and_a_newline() {
        let replies = [
            Reply::Ok,
            Reply::Value("hello world".into()),
            Reply::Value(String::new()),
            Reply::no_such_key(),
        ];
        let mut batch = Vec::new();
        for reply in &replies {
            assert_eq!(reply.to_bytes(), format!("{reply}\n").into_bytes());
            reply.encode_into(&mut batch);
        }
        assert_eq!(batch, b"OK\nhello world\n\nERROR no such key\n");
    }

    #[test]
    fn set_get_delete() {
        let mut store = Store::new();
        assert_eq!(store.apply(get("a")), Reply::no_such_key());
        assert_eq!(store.apply(set("a", "1")), Reply::Ok);
        assert_eq!(store.apply(set("a", "2")), Reply::Ok);
        assert_eq!(store.apply(get("a")), Reply::Value("2".into()));
        assert_eq!(store.apply(Command::Delete { key: "a".into() }), Reply::Ok);
        assert_eq!(
            store.apply(Command::Delete { key: "a".into() }),
            Reply::no_such_key()
        );
        assert!(store.is_empty());
        assert_eq!(store.bytes_used(), 0);
    }

    #[test]
    fn the_byte_store_takes_any_bytes_and_keeps_its_budget() {
        let limit = 2 * (Store::ENTRY_OVERHEAD + 4);
        let mut store = ByteStore::with_limit(limit);
        assert_eq!(store.set(b"k\r\n", b"\xff"), Ok(()));
        assert_eq!(store.get(b"k\r\n"), Some(&b"\xff"[..]));
        assert_eq!(store.set(b"k2", b"12"), Ok(()));
        assert_eq!(store.bytes_used(), limit);
        assert_eq!(store.set(b"k3", b""), Err(StoreFull));
        assert_eq!(store.set(b"k2", b"123"), Err(StoreFull));
        assert_eq!(store.get(b"k2"), Some(&b"12"[..]));
        assert!(store.remove(b"k2"));
        assert!(!store.remove(b"k2"));
        assert!(!store.contains(b"k2"));
        assert_eq!(store.len(), 1);
        assert_eq!(store.bytes_used(), limit / 2);
    }

    #[test]
    fn the_budget_is_kept_and_overwrites_are_charged_the_difference() {
        let limit = 2 * Store::entry_cost("a", "1234");
        let mut store = Store::with_limit(limit);
        assert_eq!(store.apply(set("a", "1234")), Reply::Ok);
        assert_eq!(store.apply(set("b", "1234")), Reply::Ok);
        assert_eq!(store.bytes_used(), limit);
        assert_eq!(store.apply(set("c", "")), Reply::store_full());
        assert_eq!(store.apply(set("a", "12345")), Reply::store_full());
        assert_eq!(store.apply(set("a", "12")), Reply::Ok);
        assert_eq!(store.apply(set("a", "1234")), Reply::Ok);
        assert_eq!(store.get("c"), None);
        store.apply(Command::Delete { key: "b".into() });
        assert_eq!(store.apply(set("c", "")), Reply::Ok);
        assert_eq!(store.len(), 2);
    }
}
