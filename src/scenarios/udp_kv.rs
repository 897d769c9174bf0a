//! Lesson 11's scenarios: the run through the lossy relay that its test records for the book
//! ([`RELAY_WEATHER`], [`RELAY_COMMANDS`], [`RELAY_ANSWERS`]), and the client scenarios of
//! `workbook check udp-kv-client`: a client of the datagram format (`crate::udp_kv`) against a
//! fake UDP server, through a lossy path, with replies to ignore, and against silence.

use std::time::Duration;

use crate::harness::client_scenario::{ClientScenario, DatagramReply, ExitExpect};
use crate::harness::scenario::Expect;
use crate::kv::Command;
use crate::proxy::Weather;

/// The weather of lesson 11's run through the relay, as typed after
/// `workbook proxy --udp --to <server>`: 30 % loss, duplicates and reordering, seeded.
pub const RELAY_WEATHER: &str = "--drop 30% --duplicate 20% --reorder 20% --seed 5";

/// The commands of that run, one per line on the client's stdin ...
pub const RELAY_COMMANDS: &str = "set a 1\nset b 2\nget a\ndelete b\nget b\nget a\n";

/// ... and the answers each must get, in order, whatever the weather did.
pub const RELAY_ANSWERS: &str = "OK\nOK\n1\nOK\nERROR no such key\n1\n";

/// How long a client has to give up on a server that never replies: lesson 11 gives up at its
/// 5 s deadline.
pub const GIVE_UP_LIMIT: Duration = Duration::from_secs(10);

/// How long a client has for a conversation with answers, retries included.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

fn get_greeting() -> Command {
    Command::Get {
        key: "greeting".into(),
    }
}

fn answer(text: &str) -> DatagramReply {
    DatagramReply::Answer(text.as_bytes().to_vec())
}

/// Half the datagrams are lost, both ways (seeded: the same ones every run). The client must send
/// its request again, with the same id, until the reply gets through.
pub fn answers_through_loss() -> ClientScenario {
    ClientScenario::new(
        "answers-through-loss",
        "through a path that loses half the datagrams both ways, the client sends `<id> GET greeting` again (same id) after each silence until `<id> hello` gets through, prints hello and exits 0",
    )
    .hint(
        "UDP does not deliver every datagram: when no reply comes within a timeout (say 250 ms), send the \
         same request again, with the same id, and wait longer each time (exponential backoff), a few times",
    )
    .see("11-udp-kv.md#loss")
    .args(&["GET", "greeting"])
    .weather(Weather {
        drop: 0.5,
        ..Weather::default()
    })
    .datagram_exchange(get_greeting(), vec![answer("hello\n")])
    .exits_within(ANSWER_LIMIT)
    .exits(ExitExpect::Code(0))
    .stdout(Expect::exact("hello\n"))
}

/// Before the right reply comes a reply to another request and a datagram without an id; after
/// it, the right reply again. Only the right one counts, once.
pub fn ignores_other_replies() -> ClientScenario {
    ClientScenario::new(
        "ignores-other-replies",
        "the server first sends a reply with another request's id and a datagram without an id, then the right reply twice: the client prints only the right value, once, and exits 0",
    )
    .hint(
        "match every reply to your request by its id: a datagram with another id (a late reply to an \
         earlier request, or a duplicate) or without an id is not your answer; ignore it and keep waiting",
    )
    .see("11-udp-kv.md#duplicates-and-late-replies")
    .args(&["GET", "greeting"])
    .datagram_exchange(
        get_greeting(),
        vec![
            DatagramReply::OtherId(b"stale\n".to_vec()),
            DatagramReply::Junk(b"no id here".to_vec()),
            answer("hello\n"),
            answer("hello\n"),
        ],
    )
    .exits_within(ANSWER_LIMIT)
    .exits(ExitExpect::Code(0))
    .stdout(Expect::exact("hello\n"))
}

/// The server receives every attempt and never answers: the client must give up by itself.
pub fn gives_up_on_silence() -> ClientScenario {
    ClientScenario::new(
        "gives-up-on-silence",
        "the server receives every request and never replies: the client gives up within 10 s, says so on stderr, and exits non-zero",
    )
    .hint(
        "retransmissions need a limit: after a few attempts, or at a deadline for the whole command, stop, \
         say so on stderr and exit with a non-zero code",
    )
    .see("11-udp-kv.md#loss")
    .args(&["GET", "greeting"])
    .datagram_exchange(get_greeting(), Vec::new())
    .exits_within(GIVE_UP_LIMIT)
    .exits(ExitExpect::Failure)
}

/// Every scenario of `workbook check udp-kv-client`.
pub fn client_all() -> Vec<ClientScenario> {
    vec![
        answers_through_loss(),
        ignores_other_replies(),
        gives_up_on_silence(),
    ]
}
