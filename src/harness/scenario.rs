//! Scenarios as data: who connects, what they send, what they must get back.
//!
//! One scenario serves three purposes: it is the lesson's test (its transcript is snapshotted),
//! the book shows that transcript, and `workbook check` runs it against a learner's program.
//! So a scenario says only what any correct program must do on the wire; checks that only make
//! sense for our own lessons (their log lines) are marked as such.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local};

use crate::escape::{escape_abbreviated, escape_bytes};

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
    /// An RFC 3339 timestamp with offset and a newline, within `within` of now.
    RecentTimestamp { within: Duration },
    /// Whatever arrives (used where a scenario only needs to consume bytes).
    Anything,
}

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

    /// A human description: `"OK\n"`, `a line starting with "ERROR"`.
    pub fn describe(&self) -> String {
        match self {
            Expect::Exact(bytes) if bytes.len() > 120 => escape_abbreviated(bytes, 120),
            Expect::Exact(bytes) => format!("{} ({} bytes)", escape_bytes(bytes), bytes.len()),
            Expect::Prefix(bytes) => format!("something starting with {}", escape_abbreviated(bytes, 120)),
            Expect::Contains(bytes) => format!("something containing {}", escape_abbreviated(bytes, 120)),
            Expect::ErrorLine => r#"an error line: "ERROR\n" or "ERROR <reason>\n""#.to_string(),
            Expect::RecentTimestamp { within } => format!(
                r#"the current time as an RFC 3339 timestamp with offset and "\n" (like "2026-11-25T14:03:07+01:00\n"), within {} s of now"#,
                within.as_secs()
            ),
            Expect::Anything => "anything".to_string(),
        }
    }

    /// Checks `got`. On a mismatch, says what is wrong and, where it is meaningful, the index of
    /// the first byte that differs.
    pub fn check(&self, got: &[u8]) -> Result<(), Mismatch> {
        match self {
            Expect::Exact(want) => {
                if got == want.as_slice() {
                    Ok(())
                } else {
                    Err(Mismatch::at(first_difference(want, got), want))
                }
            }
            Expect::Prefix(want) => {
                if got.starts_with(want) {
                    Ok(())
                } else {
                    Err(Mismatch::at(first_difference(want, got), want))
                }
            }
            Expect::Contains(want) => {
                if want.is_empty() || got.windows(want.len()).any(|w| w == want.as_slice()) {
                    Ok(())
                } else {
                    Err(Mismatch::because(format!(
                        "{} does not appear in it",
                        escape_abbreviated(want, 120)
                    )))
                }
            }
            Expect::ErrorLine => {
                let ok = got == b"ERROR\n" || (got.starts_with(b"ERROR ") && got.ends_with(b"\n"));
                if ok {
                    Ok(())
                } else {
                    let want = if got.starts_with(b"ERROR") {
                        &b"ERROR\n"[..]
                    } else {
                        &b"ERROR "[..]
                    };
                    Err(Mismatch::at(first_difference(want, got).min(got.len()), want))
                }
            }
            Expect::RecentTimestamp { within } => check_timestamp(got, *within),
            Expect::Anything => Ok(()),
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

    fn because(reason: String) -> Mismatch {
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

fn check_timestamp(got: &[u8], within: Duration) -> Result<(), Mismatch> {
    let Some(line) = got.strip_suffix(b"\n") else {
        return Err(Mismatch::because(
            r#"the timestamp must end with "\n""#.to_string(),
        ));
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text =
        std::str::from_utf8(line).map_err(|_| Mismatch::because("the reply is not valid UTF-8".into()))?;
    let time: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(text).map_err(|err| {
        Mismatch::because(format!(
            "{text:?} is not an RFC 3339 timestamp with offset ({err})"
        ))
    })?;
    let skew = (Local::now().fixed_offset() - time).abs();
    if skew.to_std().unwrap_or(Duration::MAX) > within {
        return Err(Mismatch::because(format!(
            "{text} is {} s away from this machine's clock (allowed: {} s)",
            skew.num_seconds(),
            within.as_secs()
        )));
    }
    Ok(())
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
    /// Reference lessons only (skipped when checking a learner's program, whose logs differ):
    /// wait until the server has printed a line containing this text. Used so that a snapshot
    /// holds the server's full log, never a part of it that depends on timing.
    ServerLogs(String),
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
            | Step::ExpectSilence(c, _)
            | Step::ShutdownWrite(c)
            | Step::StopReading(c)
            | Step::Close(c) => Some(c),
            Step::ServerExits(_) | Step::ServerLogs(_) => None,
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
}

impl Scenario {
    pub fn new(name: &'static str, about: &'static str) -> Scenario {
        Scenario {
            name,
            about,
            steps: Vec::new(),
            hint: None,
        }
    }

    /// Sets the hint shown when a program fails this scenario.
    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
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

    pub fn server_logs(mut self, text: impl Into<String>) -> Self {
        self.steps.push(Step::ServerLogs(text.into()));
        self
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
    fn error_lines_with_and_without_reason_are_accepted() {
        assert!(Expect::ErrorLine.check(b"ERROR\n").is_ok());
        assert!(Expect::ErrorLine.check(b"ERROR no such key\n").is_ok());
        assert!(Expect::ErrorLine.check(b"ERROR no such key").is_err());
        assert!(Expect::ErrorLine.check(b"ERRORS\n").is_err());
        assert!(Expect::ErrorLine.check(b"\n").is_err());
    }

    #[test]
    fn timestamps_must_be_rfc3339_and_recent() {
        let within = Duration::from_secs(5);
        let now = format!("{}\n", Local::now().to_rfc3339());
        assert!(Expect::RecentTimestamp { within }.check(now.as_bytes()).is_ok());
        assert!(
            Expect::RecentTimestamp { within }
                .check(b"2001-01-01T00:00:00+00:00\n")
                .is_err()
        );
        assert!(
            Expect::RecentTimestamp { within }
                .check(b"Wed Nov 25 12:00:00 2026\n")
                .is_err()
        );
        assert!(
            Expect::RecentTimestamp { within }
                .check(now.trim_end().as_bytes())
                .is_err()
        );
    }
}
