//! # Lesson 06: a key-value client
//!
//! The other side of lesson 05: send one command line, read one reply line, and turn the reply
//! into something a shell script can use: the reply on stdout and an exit code.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 05_kv_server                                  # terminal 1
//! cargo run --bin 06_kv_client -- SET greeting hello world      # terminal 2: prints OK
//! cargo run --bin 06_kv_client -- GET greeting                  # prints hello world
//! cargo run --bin 06_kv_client -- DELETE greeting               # prints OK
//! cargo run --bin 06_kv_client -- GET greeting; echo $?         # ERROR no such key, then 1
//! cargo run --bin 06_kv_client                                  # no command: type them, Ctrl-D ends
//! ```
//!
//! Options go before the command: everything after `SET key` is the value, even words that
//! start with `-` (`06_kv_client SET balance -5`).
//!
//! Unlike the echo client of lesson 02, this client does not need to half-close its connection to
//! say "that's all": the protocol's `\n` tells the server where the command ends, and tells us
//! where the reply ends. That is what a protocol with framing buys.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use socket_workbook::escape::escape_abbreviated;
use socket_workbook::kv::{self, Command};
use socket_workbook::lesson::{self, ConnectArgs};

// ANCHOR: args
/// Lesson 06: send one command to the key-value server and print its reply.
#[derive(Parser)]
#[command(
    version,
    override_usage = "06_kv_client [--host H] [--port P] SET key value... | GET key | DELETE key\n       \
                      06_kv_client [--host H] [--port P]        (no command: read commands from stdin)",
    after_help = "Exit codes: 0 the server replied OK or a value; 1 the server replied with an ERROR line; \
                  2 wrong usage; 3 could not connect; 4 the connection failed before a whole reply arrived."
)]
struct Args {
    #[command(flatten)]
    server: ConnectArgs<65433>,
    /// How many seconds to wait for a reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u64,
    /// The command and its arguments. The value words of SET are joined with single spaces.
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The server replied with an `ERROR` line.
const EXIT_ERROR_REPLY: u8 = 1;
/// The connection broke, the reply timed out, or the server closed without a whole reply.
const EXIT_NO_REPLY: u8 = 4;
// ANCHOR_END: args

/// The longest reply line we accept: a value can be almost as long as the server's line cap.
const MAX_REPLY: u64 = 2 * kv::MAX_LINE as u64;

fn main() -> ExitCode {
    let args = Args::parse();
    // Check the command before connecting: a typo should not need a server to be reported.
    let command = if args.command.is_empty() {
        None
    } else {
        Some(command_from_words(&args.command).unwrap_or_else(|why| {
            Args::command()
                .error(clap::error::ErrorKind::InvalidValue, why)
                .exit()
        }))
    };

    // ANCHOR: connect
    let address = args.server.address();
    let stream = TcpStream::connect((args.server.host.as_str(), args.server.port))
        .unwrap_or_else(|err| lesson::exit_connect_failed(&address, &err, "cargo run --bin 05_kv_server"));
    // ANCHOR_END: connect

    // A server that never answers must not hang us: every read gives up after this long.
    let timeout = Duration::from_secs(args.timeout.max(1));
    let result = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| match command {
            Some(command) => send_one_command(&stream, &command),
            None => interactive(&stream),
        });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {address}: {err}");
            ExitCode::from(EXIT_NO_REPLY)
        }
    }
}

// ANCHOR: command_from_words
/// `["set", "greeting", "hello", "world"]` becomes `SET greeting hello world`. The words are
/// checked with the same parser the server uses, so a mistake is reported before anything is sent.
fn command_from_words(words: &[String]) -> Result<Command, String> {
    if words.iter().any(|word| word.contains(['\n', '\r'])) {
        return Err("keys and values cannot contain a line break".to_string());
    }
    let line = words.join(" ");
    Command::parse(line.as_bytes()).map_err(|err| match err {
        kv::ParseError::WrongArity(kv::Verb::Set) => {
            "SET needs a key and a value: SET key value... (a key is one word; pass '' for an empty value)"
                .to_string()
        }
        kv::ParseError::WrongArity(verb) => format!(
            "{} needs exactly one key: {} (a key is one word, without spaces)",
            verb.name(),
            verb.usage()
        ),
        kv::ParseError::UnknownCommand(word) => {
            format!("unknown command {word:?}; the commands are SET key value..., GET key and DELETE key")
        }
        kv::ParseError::EmptyLine => {
            "empty command; the commands are SET key value..., GET key and DELETE key".to_string()
        }
        kv::ParseError::InvalidUtf8 => err.to_string(),
    })
}
// ANCHOR_END: command_from_words

// ANCHOR: one_command
/// Sends `command`, prints the reply line, and says which exit code the reply means.
fn send_one_command(stream: &TcpStream, command: &Command) -> io::Result<ExitCode> {
    // `to_line` writes the canonical form with its `\n`: `SET greeting hello world\n`.
    (&*stream).write_all(command.to_line().as_bytes())?;
    let mut replies = BufReader::new(stream);
    let reply = read_reply(&mut replies)?;
    print_line(&reply)?;
    // Only the first word tells an error from a value, and a stored value `ERROR x` looks the
    // same: the protocol's flaw, which lesson 05 describes.
    Ok(if kv::is_error_reply(&reply) {
        ExitCode::from(EXIT_ERROR_REPLY)
    } else {
        ExitCode::SUCCESS
    })
}
// ANCHOR_END: one_command

// ANCHOR: read_reply
/// Reads one reply line and returns it without its `\n` (and without a `\r` before it).
///
/// Lesson 05 splits lines by hand; here `BufReader` does the same work: it keeps what one `read`
/// returned beyond the `\n` for the next call. `take` caps how much we accept, and the socket's
/// read timeout makes a silent server an error instead of a hang.
fn read_reply(replies: &mut BufReader<&TcpStream>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let result = replies.by_ref().take(MAX_REPLY).read_until(b'\n', &mut line);
    match result {
        Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            let waited = replies.get_ref().read_timeout()?.unwrap_or_default();
            return Err(io::Error::other(format!(
                "no reply within {} s",
                waited.as_secs()
            )));
        }
        Err(err) => return Err(err),
        Ok(_) => {}
    }
    let Some(reply) = line.strip_suffix(b"\n") else {
        let why = if line.is_empty() {
            "the server closed the connection without replying".to_string()
        } else if line.len() as u64 >= MAX_REPLY {
            format!("the reply is longer than {MAX_REPLY} bytes without a newline")
        } else {
            format!(
                "the server closed the connection in the middle of a reply: got {} without a newline",
                escape_abbreviated(&line, 60)
            )
        };
        return Err(io::Error::other(why));
    };
    Ok(reply.strip_suffix(b"\r").unwrap_or(reply).to_vec())
}
// ANCHOR_END: read_reply

/// Prints a reply line as the server sent it (bytes, not necessarily UTF-8) and a newline.
fn print_line(reply: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(reply)?;
    out.write_all(b"\n")?;
    out.flush()
}

// ANCHOR: interactive
/// No command on the command line: send each line typed on stdin as it is, and print each reply.
/// You speak the protocol yourself, as with `nc`, but every line gets its reply before the next.
fn interactive(stream: &TcpStream) -> io::Result<ExitCode> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprintln!("connected; type SET key value, GET key or DELETE key (Ctrl-D to quit)");
    }
    let mut replies = BufReader::new(stream);
    for line in stdin.lock().lines() {
        let line = line?;
        (&*stream).write_all(format!("{line}\n").as_bytes())?;
        print_line(&read_reply(&mut replies)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
// ANCHOR_END: interactive
