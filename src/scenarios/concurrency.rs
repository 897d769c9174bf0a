//! Scenarios for a key-value server that serves many clients at once (lesson 07), and the one
//! that shows lesson 05's single-client server holding everybody up.
//!
//! The protocol is lesson 05's ([`crate::kv`]); [`super::kv::all`] holds its scenarios, which a
//! concurrent server passes too. These add what only a concurrent server does.
//!
//! With several clients, our server logs from several threads, and the order of two lines from
//! different threads depends on timing. So these scenarios wait for a log line (`server_logs`,
//! reference only) wherever the next step could otherwise race with it: then a snapshot is the
//! same on every run.

use std::time::Duration;

use crate::harness::{Expect, Scenario};

/// How long a client waits to show that no reply comes. Long enough to be sure on a busy
/// machine; short enough for a test.
pub const SILENCE: Duration = Duration::from_millis(1000);

/// Two clients take turns on one store: each sees what the other did.
pub fn two_clients_interleaved() -> Scenario {
    Scenario::new(
        "two-clients-interleaved",
        "two clients connected at once take turns; each sees the other's changes at once",
    )
    .hint(
        "serve each connection on its own thread (or with an event loop), with one store shared \
         by all of them",
    )
    .see("07-kv-server-threads.md#head-of-line-blocking")
    .connect("c1")
    .server_logs("#1 connected")
    .connect("c2")
    .server_logs("#2 connected")
    .send("c1", "SET x 1\n")
    .expect_line("c1", "OK\n")
    .send("c2", "GET x\n")
    .expect_line("c2", "1\n")
    .send("c2", "SET x 2\n")
    .expect_line("c2", "OK\n")
    .send("c1", "GET x\n")
    .expect_line("c1", "2\n")
    .send("c1", "DELETE x\n")
    .expect_line("c1", "OK\n")
    .send("c2", "GET x\n")
    .read_line("c2", Expect::ErrorLine)
    .close("c1")
    .server_logs("#1 disconnected")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// The steps both idle-client scenarios share: c1 is served once and then says nothing; c2
/// connects and asks for the value.
fn idle_client_start(name: &'static str, about: &'static str) -> Scenario {
    Scenario::new(name, about)
        .connect("c1")
        .send("c1", "SET a 1\n")
        .expect_line("c1", "OK\n")
        // c1 stays connected and sends nothing more for now.
        .connect("c2")
        .send("c2", "GET a\n")
}

/// A client that is connected and silent must not hold up another one.
pub fn idle_client_does_not_block() -> Scenario {
    idle_client_start(
        "idle-client-does-not-block",
        "c1 stays connected and silent; c2 is answered at once, and c1 is still served afterwards",
    )
    .hint(
        "a server that waits for one client's next command cannot answer anyone else: serve each \
         connection on its own thread, or watch all of them with an event loop",
    )
    .see("05-kv-server.md#a-second-client-waits")
    .expect_line("c2", "1\n")
    .close("c2")
    .server_logs("#2 disconnected")
    .send("c1", "GET a\n")
    .expect_line("c1", "1\n")
    .close("c1")
    .server_logs("#1 disconnected")
}

/// The same clients against a server that serves one client at a time (lesson 05): c2 gets no
/// answer while c1 is connected, and is answered as soon as c1 leaves.
///
/// A demonstration for the book, not a requirement: a concurrent server fails it (on purpose),
/// and `workbook check` does not run it.
pub fn idle_client_blocks_a_sequential_server() -> Scenario {
    idle_client_start(
        "idle-client-blocks",
        "c1 stays connected and silent; a one-client-at-a-time server cannot answer c2 until c1 leaves",
    )
    .expect_silence("c2", SILENCE)
    .close("c1")
    .expect_line("c2", "1\n")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// With `--max-connections 2`, a third client is refused with an error line and disconnected;
/// once a client leaves, the next one is served again.
pub fn connection_cap() -> Scenario {
    Scenario::new(
        "connection-cap",
        "with room for two clients, a third gets an error line and is disconnected; when one leaves, a new client is served",
    )
    .connect("c1")
    .server_logs("#1 connected")
    .connect("c2")
    .server_logs("#2 connected")
    .connect("c3")
    .read_line("c3", Expect::ErrorLine)
    .expect_closed("c3")
    .send("c1", "SET a 1\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .server_logs("#1 disconnected")
    .connect("c4")
    .send("c4", "GET a\n")
    .expect_line("c4", "1\n")
    .close("c4")
    .server_logs("#4 disconnected")
    .close("c2")
    .server_logs("#2 disconnected")
}

/// The length of the value that [`client_not_reading_does_not_block`] asks for again and again.
pub const UNREAD_VALUE_LEN: usize = 50_000;
/// How many times it asks: 400 replies of 50 KB are 20 MB, far more than the kernel's buffers
/// on both ends of a connection hold, so a server that writes them all must wait for the client.
pub const UNREAD_REPLIES: usize = 400;

/// A client that asks for a lot and reads none of it must not hold up another client. A server
/// that writes with a blocking `write` from a single thread (an event loop done wrong) waits for
/// c1 forever, and c2 gets no answer. A thread per connection passes if it lets go of the store's
/// lock before it writes: then only c1's thread waits. One that writes while it holds the lock
/// fails too: c1's thread waits in the write with the lock, and c2's thread waits for the lock.
/// (The harness lets the server fill the buffers to c1 before c2 connects, so that such a server
/// is already waiting.)
///
/// Run it with per-command logging off: how many of c1's commands the server has answered when
/// the buffers fill up depends on timing.
pub fn client_not_reading_does_not_block() -> Scenario {
    let value = "x".repeat(UNREAD_VALUE_LEN);
    Scenario::new(
        "client-not-reading-does-not-block",
        "c1 asks for 20 MB of replies and reads none of them; c2 is still answered at once",
    )
    .hint(
        "a client that does not read its replies must not hold up the others. A blocking write \
         waits until that client reads: with threads, do not hold the store's lock while you write; \
         in an event loop, write only what the socket takes now (a non-blocking write), keep the \
         rest for later, and serve the other clients meanwhile",
    )
    .see("07-kv-server-threads.md#a-client-that-reads-nothing")
    .connect("c1")
    .server_logs("#1 connected")
    .send("c1", format!("SET big {value}\n"))
    .expect_line("c1", "OK\n")
    .stop_reading("c1")
    .send("c1", "GET big\n".repeat(UNREAD_REPLIES))
    .connect("c2")
    .server_logs("#2 connected")
    .send("c2", "SET a 1\n")
    .expect_line("c2", "OK\n")
    .send("c2", "GET a\n")
    .expect_line("c2", "1\n")
    .close("c2")
    .server_logs("#2 disconnected")
    // c1 reads again: its first reply is there, complete.
    .expect_line("c1", format!("{value}\n"))
    // Closing with replies unread makes c1's kernel reset the connection.
    .close("c1")
    .server_logs("#1 disconnected")
}

/// The scenarios every concurrent KV server passes (with any connection cap above 2).
pub fn all() -> Vec<Scenario> {
    vec![two_clients_interleaved(), idle_client_does_not_block()]
}

/// What `workbook check concurrent-kv-server` runs: lesson 05's protocol scenarios, then these.
pub fn kv_server_all() -> Vec<Scenario> {
    [super::kv::all(), all(), vec![client_not_reading_does_not_block()]].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_scenario_ends_by_waiting_for_its_last_log_line() {
        let scenarios = [
            all(),
            vec![idle_client_blocks_a_sequential_server(), connection_cap()],
        ]
        .concat();
        let mut names: Vec<_> = scenarios.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), scenarios.len());
        for scenario in &scenarios {
            assert!(
                matches!(scenario.steps.last(), Some(crate::harness::Step::ServerLogs(_))),
                "{}",
                scenario.name
            );
        }
    }
}
