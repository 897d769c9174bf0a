//! Scenarios as data: who connects, what they send, what they must get back.
//!
//! One scenario serves three purposes: it is the lesson's test (its transcript is snapshotted),
//! the book shows that transcript, and `workbook check` runs it against a learner's program.
//! So a scenario says only what any correct program must do on the wire; checks that only make
//! sense for our own lessons (their log lines) are marked as such.
//!
//! # Choices and bugs
//!
//! What a scenario must catch is a bug: a crash, a hang, a connection closed too early, a value
//! lost or mangled. Where our lessons make a choice that another correct program may make
//! differently (refusing an empty value, serving a second client instead of exiting), the
//! scenario accepts both. The lesson's behaviour is the *reference*; another accepted behaviour
//! passes with a *note*, a remark the checker shows next to the ✓. Two tools say so, as data:
//!
//! - [`Expect::also_accept`]: another reply is fine, and the scenario goes on as before.
//! - [`Step::Either`]: what the scenario does next depends on the choice (after a refused value,
//!   `GET` must find nothing; after a stored one, it must return it).
//!
//! Our own lessons are run with [`RunOptions::reference`](super::RunOptions::reference), which
//! accepts only the reference: their tests and transcripts stay exactly as strict as before.

use std::time::Duration;

use chrono::{FixedOffset, Local, NaiveDateTime, TimeZone, Utc};

use crate::escape::{escape_abbreviated, escape_shortened};

/// A client's name in a transcript: `c1`, `c2`, ...
pub type Client = &'static str;

/// What a read step reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Up to and including the next `\n`.
    Line,
    /// Exactly this many bytes.
    Bytes(usize),
    /// Everything until the server closes the connection.
    ToEnd,
}

/// What the bytes a client read must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these bytes.
    Exact(Vec<u8>),
    /// Anything that starts with these bytes.
    Prefix(Vec<u8>),
    /// Anything that contains these bytes somewhere.
    Contains(Vec<u8>),
    /// An error line of the KV protocol: `ERROR\n`, or `ERROR <reason>\n`.
    ErrorLine,
    /// The current time, within `within` of this machine's clock. The reference is RFC 3339 with
    /// an offset and a newline (`2026-11-25T14:03:07+01:00\n`). Also accepted: `Z`, fractions of
    /// a second, `t` or a space for `T`, an offset without its colon; with a note, local time
    /// without an offset (read in this machine's time zone) and no final newline (the read step
    /// decides whether the server must close right after it).
    RecentTimestamp { within: Duration },
    /// Whatever arrives (used where a scenario only needs to consume bytes).
    Anything,
    /// The reference's reply, or one of the alternatives, each accepted with its note. Made by
    /// [`Expect::also_accept`].
    Accepting {
        reference: Box<Expect>,
        alternatives: Vec<Alternative>,
    },
}

/// Another reply a step accepts, and the note the report adds when a program sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub expect: Expect,
    pub note: &'static str,
}

/// A timestamp's note: local time without an offset.
pub const NOTE_TIME_WITHOUT_OFFSET: &str = "your server sends local time without its UTC offset, right in this \
     machine's zone (the reference adds the offset, like +01:00, which tells the time to a reader in any zone)";
/// A timestamp's note: no newline at the end.
pub const NOTE_TIME_WITHOUT_NEWLINE: &str = "your server closes the connection right after the time, without a \
     newline (the reference ends the line with \"\\n\", for clients that read lines)";

impl Expect {
    pub fn exact(bytes: impl AsRef<[u8]>) -> Expect {
        Expect::Exact(bytes.as_ref().to_vec())
    }

    pub fn prefix(bytes: impl AsRef<[u8]>) -> Expect {
        Expect::Prefix(bytes.as_ref().to_vec())
    }

    pub fn contains(bytes: impl AsRef<[u8]>) -> Expect {
        Expect::Contains(bytes.as_ref().to_vec())
    }

    /// Accepts `other` too, with `note`: `self` is what the reference sends, `other` what a
    /// correct program that chose differently sends.
    pub fn also_accept(self, other: Expect, note: &'static str) -> Expect {
        let alternative = Alternative { expect: other, note };
        match self {
            Expect::Accepting {
                reference,
                mut alternatives,
            } => {
                alternatives.push(alternative);
                Expect::Accepting {
                    reference,
                    alternatives,
                }
            }
            reference => Expect::Accepting {
                reference: Box::new(reference),
                alternatives: vec![alternative],
            },
        }
    }

    /// What only the reference may send: `self` without its alternatives.
    pub fn reference(&self) -> &Expect {
        match self {
            Expect::Accepting { reference, .. } => reference.reference(),
            other => other,
        }
    }

    /// A human description: `"OK\n"`, `a line starting with "ERROR"`.
    pub fn describe(&self) -> String {
        match self {
            Expect::Exact(bytes) => format!("{} ({} bytes)", escape_shortened(bytes, 120), bytes.len()),
            Expect::Prefix(bytes) => format!("something starting with {}", escape_abbreviated(bytes, 120)),
            Expect::Contains(bytes) => format!("something containing {}", escape_abbreviated(bytes, 120)),
            Expect::ErrorLine => r#"an error line: "ERROR\n" or "ERROR <reason>\n""#.to_string(),
            Expect::RecentTimestamp { within } => format!(
                r#"the current time, like "2026-11-25T14:03:07+01:00\n" (RFC 3339; Z, fractions of a second and local time without an offset are fine too), within {} s of this machine's clock"#,
                within.as_secs()
            ),
            Expect::Anything => "anything".to_string(),
            Expect::Accepting {
                reference,
                alternatives,
            } => {
                let mut text = reference.describe();
                for alternative in alternatives {
                    text.push_str(&format!("; or {}", alternative.expect.describe()));
                }
                text
            }
        }
    }

    /// Can bytes that start with `prefix` never meet this expectation, whatever follows them?
    /// Then a read can stop waiting for the rest. `false` where that cannot be known (a
    /// timestamp, bytes contained somewhere, anything).
    pub fn cannot_match(&self, prefix: &[u8]) -> bool {
        let diverges = |want: &[u8]| {
            let n = want.len().min(prefix.len());
            want[..n] != prefix[..n]
        };
        match self {
            Expect::Exact(want) => !want.starts_with(prefix),
            Expect::Prefix(want) => diverges(want),
            Expect::ErrorLine => {
                diverges(b"ERROR") || prefix.get(5).is_some_and(|&b| b != b'\n' && b != b' ')
            }
            Expect::Contains(_) | Expect::RecentTimestamp { .. } | Expect::Anything => false,
            Expect::Accepting {
                reference,
                alternatives,
            } => {
                reference.cannot_match(prefix)
                    && alternatives
                        .iter()
                        .all(|alternative| alternative.expect.cannot_match(prefix))
            }
        }
    }

    /// Checks `got`, accepting alternatives (see [`Expect::judge`] for their notes). On a
    /// mismatch, says what is wrong and, where it is meaningful, the index of the first byte that
    /// differs.
    pub fn check(&self, got: &[u8]) -> Result<(), Mismatch> {
        self.judge(got).map(|_notes| ())
    }

    /// Checks `got`. When it meets the expectation, returns the notes that say where it differs
    /// from the reference (none when it is what the reference sends). On a mismatch, the
    /// reference's mismatch: what is wrong, and where meaningful, the first byte that differs.
    pub fn judge(&self, got: &[u8]) -> Result<Vec<String>, Mismatch> {
        let plain = |ok: Result<(), Mismatch>| ok.map(|()| Vec::new());
        match self {
            Expect::Exact(want) => plain(if got == want.as_slice() {
                Ok(())
            } else {
                Err(Mismatch::at(first_difference(want, got), want))
            }),
            Expect::Prefix(want) => plain(if got.starts_with(want) {
                Ok(())
            } else {
                Err(Mismatch::at(first_difference(want, got), want))
            }),
            Expect::Contains(want) => plain(
                if want.is_empty() || got.windows(want.len()).any(|w| w == want.as_slice()) {
                    Ok(())
                } else {
                    Err(Mismatch::because(format!(
                        "{} does not appear in it",
                        escape_abbreviated(want, 120)
                    )))
                },
            ),
            Expect::ErrorLine => {
                let ok = got == b"ERROR\n" || (got.starts_with(b"ERROR ") && got.ends_with(b"\n"));
                plain(if ok {
                    Ok(())
                } else {
                    let want = if got.starts_with(b"ERROR") {
                        &b"ERROR\n"[..]
                    } else {
                        &b"ERROR "[..]
                    };
                    Err(Mismatch::at(first_difference(want, got).min(got.len()), want))
                })
            }
            Expect::RecentTimestamp { within } => judge_timestamp(got, *within),
            Expect::Anything => Ok(Vec::new()),
            Expect::Accepting {
                reference,
                alternatives,
            } => {
                let mismatch = match reference.judge(got) {
                    Ok(notes) => return Ok(notes),
                    Err(mismatch) => mismatch,
                };
                for alternative in alternatives {
                    if let Ok(mut notes) = alternative.expect.judge(got) {
                        notes.insert(0, alternative.note.to_string());
                        return Ok(notes);
                    }
                }
                Err(mismatch)
            }
        }
    }
}

/// Why bytes did not meet an [`Expect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Index of the first byte that differs from what was expected, if that is meaningful.
    pub first_difference: Option<usize>,
    /// The expected byte at that index (`None`: the expected bytes had ended there).
    pub expected_byte: Option<u8>,
    /// Extra explanation, e.g. "not a valid timestamp".
    pub reason: Option<String>,
}

impl Mismatch {
    fn at(index: usize, want: &[u8]) -> Mismatch {
        Mismatch {
            first_difference: Some(index),
            expected_byte: want.get(index).copied(),
            reason: None,
        }
    }

    pub(crate) fn because(reason: String) -> Mismatch {
        Mismatch {
            first_difference: None,
            expected_byte: None,
            reason: Some(reason),
        }
    }
}

fn first_difference(want: &[u8], got: &[u8]) -> usize {
    want.iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()))
}

fn judge_timestamp(got: &[u8], within: Duration) -> Result<Vec<String>, Mismatch> {
    let mut notes = Vec::new();
    let line = match got.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => {
            notes.push(NOTE_TIME_WITHOUT_NEWLINE.to_string());
            got
        }
    };
    let text =
        std::str::from_utf8(line).map_err(|_| Mismatch::because("the reply is not valid UTF-8".into()))?;
    let (local_time, offset) = parse_timestamp(text).ok_or_else(|| {
        Mismatch::because(format!(
            "{text:?} is not a date and time like 2026-11-25T14:03:07+01:00 (RFC 3339)"
        ))
    })?;
    let now = Utc::now();
    let skew_of = |offset: FixedOffset| {
        let instant = local_time - offset;
        (now.naive_utc() - instant).abs()
    };
    let allowed = chrono::TimeDelta::from_std(within).unwrap_or(chrono::TimeDelta::MAX);
    match offset {
        Some(offset) => {
            let skew = skew_of(offset);
            if skew > allowed {
                return Err(Mismatch::because(format!(
                    "{text} is {} s away from this machine's clock (allowed: {} s)",
                    skew.num_seconds(),
                    within.as_secs()
                )));
            }
        }
        None => {
            // Without an offset, the time is read in this machine's zone. Around a daylight
            // saving change a local time may name two instants (or none): any one will do.
            let candidates = Local.from_local_datetime(&local_time);
            let closest = [candidates.earliest(), candidates.latest()]
                .into_iter()
                .flatten()
                .map(|time| skew_of(*time.offset()))
                .min();
            let local_offset = Local::now().offset().to_string();
            match closest {
                Some(skew) if skew <= allowed => notes.insert(0, NOTE_TIME_WITHOUT_OFFSET.to_string()),
                _ => {
                    let read_as_utc = skew_of(FixedOffset::east_opt(0).expect("0 is a valid offset"));
                    let utc_hint = if read_as_utc <= allowed {
                        " It is right as UTC: a time in UTC must say so, with Z or +00:00 at the end."
                    } else {
                        ""
                    };
                    return Err(Mismatch::because(format!(
                        "{text} has no UTC offset, so it was read as local time in this machine's zone \
                         (UTC{local_offset}), where it is {} s away from the clock (allowed: {} s).{utc_hint}",
                        closest.unwrap_or(chrono::TimeDelta::MAX).num_seconds(),
                        within.as_secs()
                    )));
                }
            }
        }
    }
    Ok(notes)
}

/// A date and time as ISO 8601 writes it: `2026-11-25T14:03:07`, with `t` or a space instead of
/// `T` and any fraction of a second, then an offset (`+01:00`, `+0100`, `+01`, `Z`) or nothing.
/// Returns the date and time as written, and the offset if there is one.
fn parse_timestamp(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let mut normalized = text.to_string();
    if matches!(normalized.get(10..11), Some(" ") | Some("t")) {
        normalized.replace_range(10..11, "T");
    }
    let (local_time, rest) = NaiveDateTime::parse_and_remainder(&normalized, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let offset = match rest {
        "" => return Some((local_time, None)),
        "Z" | "z" => FixedOffset::east_opt(0)?,
        _ => parse_offset(rest)?,
    };
    Some((local_time, Some(offset)))
}

/// `+01:00`, `+0100`, `+01`, `-05:30`, ...
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = &text[1..];
    let (hours, minutes) = match digits.len() {
        5 if digits.as_bytes()[2] == b':' => (&digits[..2], &digits[3..]),
        4 => (&digits[..2], &digits[2..]),
        2 => (digits, "00"),
        _ => return None,
    };
    if !(hours.bytes().chain(minutes.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// One thing a scenario does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Open a new connection named `client`.
    Connect(Client),
    /// Send these bytes in one write.
    Send(Client, Vec<u8>),
    /// Send each piece as its own write, pausing briefly between them so that they arrive in
    /// separate reads: the server must put them back together.
    SendInWrites(Client, Vec<Vec<u8>>),
    /// Read and check.
    Receive(Client, Read, Expect),
    /// The server must close this connection, sending nothing more.
    ExpectClosed(Client),
    /// The server must keep this connection open, sending nothing, for the read timeout. (Only
    /// useful as an alternative in [`Step::Either`]: it waits the whole timeout.)
    ExpectOpen(Client),
    /// Nothing may arrive on this connection for a while (the server must not answer yet).
    ExpectSilence(Client, Duration),
    /// Shut down this client's write half: the server reads end-of-file, but can still send.
    ShutdownWrite(Client),
    /// This client stops reading what the server sends (until its next `Receive`), like a slow
    /// client: the bytes pile up in the kernel's buffers until the server cannot write more.
    StopReading(Client),
    /// Close this client's connection.
    Close(Client),
    /// The server program must exit by itself, with this exit code if one is given.
    ServerExits(Option<i32>),
    /// The server program must still be running after the read timeout. (Only useful as an
    /// alternative to [`Step::ServerExits`] in [`Step::Either`]: it waits the whole timeout.)
    ServerKeepsRunning,
    /// One of several accepted behaviours, each followed by the steps that fit it. Every path
    /// starts with a step that observes the same thing (one read on the same connection, or
    /// whether the server exits); the harness observes once, and the first path whose first step
    /// accepts what it saw is the one the scenario follows. The first path is the reference's;
    /// the others carry the note the report shows. Made by [`Scenario::either`].
    Either(Vec<Path>),
    /// Reference lessons only (skipped when checking a learner's program, whose logs differ):
    /// wait until the server has printed a line containing this text. Used so that a snapshot
    /// holds the server's full log, never a part of it that depends on timing.
    ServerLogs(String),
    /// UDP: this client sends one datagram with these bytes to the server's address (written
    /// `c1 >> "..."`). A client's first datagram gives it a UDP socket of its own, bound to a
    /// port the kernel picks, so several clients are several sockets and several addresses.
    SendDatagram(Client, Vec<u8>),
    /// UDP: this client receives one datagram (written `c1 << "..."`), within the read timeout,
    /// whose bytes must meet the expectation and which must come from the server's address.
    ReceiveDatagram(Client, Expect),
    /// UDP: no datagram arrives for this client for this long.
    ExpectNoDatagram(Client, Duration),
}

impl Step {
    /// The step as a transcript line, before it runs.
    pub fn client(&self) -> Option<Client> {
        match self {
            Step::Connect(c)
            | Step::Send(c, _)
            | Step::SendInWrites(c, _)
            | Step::Receive(c, _, _)
            | Step::ExpectClosed(c)
            | Step::ExpectOpen(c)
            | Step::ExpectSilence(c, _)
            | Step::ShutdownWrite(c)
            | Step::StopReading(c)
            | Step::Close(c)
            | Step::SendDatagram(c, _)
            | Step::ReceiveDatagram(c, _)
            | Step::ExpectNoDatagram(c, _) => Some(c),
            Step::ServerExits(_) | Step::ServerKeepsRunning | Step::ServerLogs(_) => None,
            Step::Either(paths) => paths
                .first()
                .and_then(|path| path.steps.first())
                .and_then(Step::client),
        }
    }

    /// What this step looks at, if it only observes (reads, or waits for the server to exit).
    /// Steps that observe the same thing can start the paths of one [`Step::Either`].
    pub fn observes(&self) -> Option<Observes> {
        match self {
            Step::Receive(client, Read::ToEnd, _) | Step::ExpectClosed(client) | Step::ExpectOpen(client) => {
                Some(Observes::Read(client, Read::ToEnd))
            }
            Step::Receive(client, read, _) => Some(Observes::Read(client, read.clone())),
            Step::ServerExits(_) | Step::ServerKeepsRunning => Some(Observes::Exit),
            _ => None,
        }
    }
}

/// What an observing step looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observes {
    /// One read on this client's connection.
    Read(Client, Read),
    /// Whether the server program exits within the read timeout.
    Exit,
}

/// One accepted behaviour of a [`Step::Either`] and the steps that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// `None` for the reference's path; otherwise what the report says about this behaviour.
    pub note: Option<&'static str>,
    /// Starts with an observing step (see [`Step::observes`]).
    pub steps: Vec<Step>,
}

impl Path {
    /// The reference's behaviour: `steps` builds its steps on an empty scenario.
    pub fn reference(steps: impl FnOnce(Scenario) -> Scenario) -> Path {
        Path {
            note: None,
            steps: steps(Scenario::new("", "")).steps,
        }
    }

    /// Another behaviour a correct program may choose, accepted with `note`.
    pub fn accepted(note: &'static str, steps: impl FnOnce(Scenario) -> Scenario) -> Path {
        Path {
            note: Some(note),
            steps: steps(Scenario::new("", "")).steps,
        }
    }
}

/// A named, described list of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Short, file-name friendly: `greeting`, `pipelined-commands`.
    pub name: &'static str,
    /// One sentence: what this scenario shows or checks.
    pub about: &'static str,
    pub steps: Vec<Step>,
    /// The mistake that most likely makes a program fail this scenario, told to the learner
    /// when it does (unless a more specific cause, like a crash, is known).
    pub hint: Option<&'static str>,
    /// The book's section that reproduces that mistake by hand, with `nc`:
    /// `05-kv-server.md#several-commands-in-one-read`.
    pub see: Option<&'static str>,
}

impl Scenario {
    pub fn new(name: &'static str, about: &'static str) -> Scenario {
        Scenario {
            name,
            about,
            steps: Vec::new(),
            hint: None,
            see: None,
        }
    }

    /// Sets the hint shown when a program fails this scenario.
    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// The book's section that reproduces this scenario's mistake by hand (`chapter.md#heading`);
    /// the checker shows it with the hint.
    pub fn see(mut self, chapter_and_heading: &'static str) -> Self {
        self.see = Some(chapter_and_heading);
        self
    }

    pub fn connect(mut self, client: Client) -> Self {
        self.steps.push(Step::Connect(client));
        self
    }

    pub fn send(mut self, client: Client, bytes: impl AsRef<[u8]>) -> Self {
        self.steps.push(Step::Send(client, bytes.as_ref().to_vec()));
        self
    }

    /// Sends `bytes` one byte per write.
    pub fn send_bytewise(mut self, client: Client, bytes: impl AsRef<[u8]>) -> Self {
        let writes = bytes.as_ref().iter().map(|&b| vec![b]).collect();
        self.steps.push(Step::SendInWrites(client, writes));
        self
    }

    pub fn send_in_writes(mut self, client: Client, writes: &[&[u8]]) -> Self {
        self.steps.push(Step::SendInWrites(
            client,
            writes.iter().map(|w| w.to_vec()).collect(),
        ));
        self
    }

    pub fn read_line(mut self, client: Client, expect: Expect) -> Self {
        self.steps.push(Step::Receive(client, Read::Line, expect));
        self
    }

    /// Reads one line that must be exactly `line`.
    pub fn expect_line(self, client: Client, line: impl AsRef<[u8]>) -> Self {
        self.read_line(client, Expect::exact(line))
    }

    pub fn read_bytes(mut self, client: Client, n: usize, expect: Expect) -> Self {
        self.steps.push(Step::Receive(client, Read::Bytes(n), expect));
        self
    }

    /// Reads exactly `bytes.len()` bytes, which must equal `bytes`.
    pub fn expect_bytes(self, client: Client, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.read_bytes(client, bytes.len(), Expect::exact(bytes))
    }

    pub fn read_to_end(mut self, client: Client, expect: Expect) -> Self {
        self.steps.push(Step::Receive(client, Read::ToEnd, expect));
        self
    }

    pub fn expect_closed(mut self, client: Client) -> Self {
        self.steps.push(Step::ExpectClosed(client));
        self
    }

    /// The connection stays open (see [`Step::ExpectOpen`]).
    pub fn expect_open(mut self, client: Client) -> Self {
        self.steps.push(Step::ExpectOpen(client));
        self
    }

    pub fn expect_silence(mut self, client: Client, duration: Duration) -> Self {
        self.steps.push(Step::ExpectSilence(client, duration));
        self
    }

    pub fn shutdown_write(mut self, client: Client) -> Self {
        self.steps.push(Step::ShutdownWrite(client));
        self
    }

    /// The client stops reading (see [`Step::StopReading`]) until its next read step.
    pub fn stop_reading(mut self, client: Client) -> Self {
        self.steps.push(Step::StopReading(client));
        self
    }

    pub fn close(mut self, client: Client) -> Self {
        self.steps.push(Step::Close(client));
        self
    }

    pub fn server_exits(mut self, code: Option<i32>) -> Self {
        self.steps.push(Step::ServerExits(code));
        self
    }

    /// The server is still running (see [`Step::ServerKeepsRunning`]).
    pub fn server_keeps_running(mut self) -> Self {
        self.steps.push(Step::ServerKeepsRunning);
        self
    }

    /// One of several accepted behaviours: `reference` (made with [`Path::reference`]) first,
    /// then each alternative (made with [`Path::accepted`]). Panics if the paths do not all
    /// start by observing the same thing: that is a mistake in the scenario, found by any test
    /// that builds it.
    pub fn either(mut self, reference: Path, alternatives: impl IntoIterator<Item = Path>) -> Self {
        let paths: Vec<Path> = std::iter::once(reference).chain(alternatives).collect();
        let observes = |path: &Path| path.steps.first().and_then(Step::observes);
        let first = observes(&paths[0]);
        assert!(
            first.is_some(),
            "scenario {}: a path of `either` must start with a step that only observes (a read, a close, an exit)",
            self.name
        );
        assert!(
            paths.len() > 1,
            "scenario {}: `either` needs an alternative",
            self.name
        );
        for (index, path) in paths.iter().enumerate() {
            assert_eq!(
                observes(path),
                first,
                "scenario {}: every path of `either` must start by observing the same thing",
                self.name
            );
            assert_eq!(
                path.note.is_none(),
                index == 0,
                "scenario {}: the first path of `either` is the reference's (no note), every other has a note",
                self.name
            );
        }
        self.steps.push(Step::Either(paths));
        self
    }

    pub fn server_logs(mut self, text: impl Into<String>) -> Self {
        self.steps.push(Step::ServerLogs(text.into()));
        self
    }

    /// UDP: `client` sends one datagram holding `bytes` (see [`Step::SendDatagram`]).
    pub fn send_datagram(mut self, client: Client, bytes: impl AsRef<[u8]>) -> Self {
        self.steps
            .push(Step::SendDatagram(client, bytes.as_ref().to_vec()));
        self
    }

    /// UDP: `client` receives one datagram that meets `expect`, from the server's address.
    pub fn receive_datagram(mut self, client: Client, expect: Expect) -> Self {
        self.steps.push(Step::ReceiveDatagram(client, expect));
        self
    }

    /// UDP: `client` receives one datagram that is exactly `bytes`, from the server's address.
    pub fn expect_datagram(self, client: Client, bytes: impl AsRef<[u8]>) -> Self {
        self.receive_datagram(client, Expect::exact(bytes))
    }

    /// UDP: nothing arrives for `client` for `duration`.
    pub fn expect_no_datagram(mut self, client: Client, duration: Duration) -> Self {
        self.steps.push(Step::ExpectNoDatagram(client, duration));
        self
    }

    /// Does this scenario talk in datagrams (UDP)? Then the server it runs against binds a UDP
    /// port, and the checker picks a free UDP port for it and waits for a bound UDP socket.
    pub fn uses_datagrams(&self) -> bool {
        fn any(steps: &[Step]) -> bool {
            steps.iter().any(|step| match step {
                Step::SendDatagram(..) | Step::ReceiveDatagram(..) | Step::ExpectNoDatagram(..) => true,
                Step::Either(paths) => paths.iter().any(|path| any(&path.steps)),
                _ => false,
            })
        }
        any(&self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reports_the_first_differing_byte() {
        let m = Expect::exact("OK\n").check(b"OK").unwrap_err();
        assert_eq!(m.first_difference, Some(2));
        assert_eq!(m.expected_byte, Some(b'\n'));
        let m = Expect::exact("value\n").check(b"valuX\n").unwrap_err();
        assert_eq!(m.first_difference, Some(4));
    }

    #[test]
    fn a_reply_that_is_already_wrong_cannot_match() {
        let ok = Expect::exact("OK\n");
        assert!(!ok.cannot_match(b"O") && !ok.cannot_match(b"OK"));
        assert!(ok.cannot_match(b"ERROR") && ok.cannot_match(b"OKAY"));
        assert!(!Expect::ErrorLine.cannot_match(b"ERR") && !Expect::ErrorLine.cannot_match(b"ERROR no"));
        assert!(Expect::ErrorLine.cannot_match(b"OK") && Expect::ErrorLine.cannot_match(b"ERRORS"));
        let either = Expect::ErrorLine.also_accept(Expect::exact("OK\n"), "note");
        assert!(!either.cannot_match(b"O") && !either.cannot_match(b"ERR"));
        assert!(either.cannot_match(b"NO"));
        assert!(!Expect::contains("x").cannot_match(b"abc"));
        assert!(!Expect::prefix("Echo: ").cannot_match(b"Echo: anything"));
        assert!(Expect::prefix("Echo: ").cannot_match(b"Hello"));
    }

    #[test]
    fn error_lines_with_and_without_reason_are_accepted() {
        assert!(Expect::ErrorLine.check(b"ERROR\n").is_ok());
        assert!(Expect::ErrorLine.check(b"ERROR no such key\n").is_ok());
        assert!(Expect::ErrorLine.check(b"ERROR no such key").is_err());
        assert!(Expect::ErrorLine.check(b"ERRORS\n").is_err());
        assert!(Expect::ErrorLine.check(b"\n").is_err());
    }

    #[test]
    fn timestamps_in_rfc3339_pass_without_a_note() {
        let within = Duration::from_secs(5);
        let expect = Expect::RecentTimestamp { within };
        let now = Local::now();
        for text in [
            format!("{}\n", now.to_rfc3339()),
            format!("{}\r\n", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
            format!(
                "{}\n",
                Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            format!("{}\n", now.format("%Y-%m-%d %H:%M:%S%z")),
        ] {
            assert_eq!(expect.judge(text.as_bytes()), Ok(Vec::new()), "{text:?}");
        }
    }

    #[test]
    fn local_time_without_offset_or_newline_passes_with_notes() {
        let expect = Expect::RecentTimestamp {
            within: Duration::from_secs(5),
        };
        // What Python's `datetime.now().isoformat()` sends.
        let seed = Local::now()
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        assert_eq!(
            expect.judge(seed.as_bytes()),
            Ok(vec![
                NOTE_TIME_WITHOUT_OFFSET.to_string(),
                NOTE_TIME_WITHOUT_NEWLINE.to_string()
            ])
        );
        assert_eq!(
            expect.judge(format!("{seed}\n").as_bytes()),
            Ok(vec![NOTE_TIME_WITHOUT_OFFSET.to_string()])
        );
    }

    #[test]
    fn wrong_times_and_other_text_fail() {
        let expect = Expect::RecentTimestamp {
            within: Duration::from_secs(5),
        };
        let an_hour_ago = Local::now() - chrono::TimeDelta::hours(1);
        for text in [
            "2001-01-01T00:00:00+00:00\n".to_string(),
            format!("{}\n", an_hour_ago.to_rfc3339()),
            format!("{}\n", an_hour_ago.naive_local().format("%Y-%m-%dT%H:%M:%S")),
            "Wed Nov 25 12:00:00 2026\n".to_string(),
            format!("{}\n", Local::now().format("%H:%M:%S")),
            format!("{} and more\n", Local::now().to_rfc3339()),
        ] {
            assert!(expect.judge(text.as_bytes()).is_err(), "{text:?}");
        }
    }

    #[test]
    fn an_alternative_passes_with_its_note_and_the_reference_without() {
        let expect = Expect::ErrorLine.also_accept(Expect::exact("OK\n"), "you said OK");
        assert_eq!(expect.judge(b"ERROR gone\n"), Ok(Vec::new()));
        assert_eq!(expect.judge(b"OK\n"), Ok(vec!["you said OK".to_string()]));
        let mismatch = expect.judge(b"KO\n").unwrap_err();
        assert_eq!(mismatch.first_difference, Some(0), "the reference's mismatch");
        assert_eq!(expect.reference(), &Expect::ErrorLine);
        assert!(
            expect.describe().contains("; or \"OK\\n\""),
            "{}",
            expect.describe()
        );
    }

    #[test]
    #[should_panic(expected = "must start by observing the same thing")]
    fn paths_of_either_must_observe_the_same_thing() {
        let _ = Scenario::new("bad", "paths that look at different things")
            .connect("c1")
            .either(
                Path::reference(|then| then.expect_line("c1", "OK\n")),
                [Path::accepted("note", |then| then.server_exits(None))],
            );
    }
}
