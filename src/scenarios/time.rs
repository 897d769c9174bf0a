//! Scenarios for a time server (lesson 03): every connection gets the current time, then the
//! server closes it and waits for the next one.
//!
//! The reference sends an RFC 3339 timestamp with its offset and a newline. A recent timestamp is
//! a recent timestamp: `Z`, fractions of a second, and local time without an offset (read in
//! this machine's time zone) pass too, and so does a missing newline, since the client reads
//! until the server closes (see [`Expect::RecentTimestamp`]). What fails is a wrong time or zone,
//! something that is not a timestamp, a connection left open, and a server that stops serving.

use std::time::Duration;

use crate::harness::{Expect, Scenario};

/// How far from this machine's clock a timestamp may be: enough for a slow machine, far too
/// little for a wrong time zone.
pub const TOLERANCE: Duration = Duration::from_secs(5);

/// The client connects and reads until the server closes: the time must be all it gets.
fn ask_the_time(scenario: Scenario, client: &'static str) -> Scenario {
    scenario
        .connect(client)
        .read_to_end(client, Expect::RecentTimestamp { within: TOLERANCE })
}

/// One client connects, reads the time, and sees the server close the connection.
pub fn one_client() -> Scenario {
    ask_the_time(
        Scenario::new("one-client", "a client connects and receives the current time")
            .hint(
                "as soon as a client connects, send it the current time in RFC 3339 (like \
             2026-11-25T14:03:07+01:00: the local time and its offset from UTC), then close the connection",
            )
            .see("03-time-server.md#run-it"),
        "c1",
    )
}

/// Three clients, one after the other: the server keeps serving.
pub fn three_clients() -> Scenario {
    let mut scenario = Scenario::new(
        "three-clients",
        "three clients in a row each get the time; the server keeps running",
    )
    .hint(
        "send every client the current time and close its connection, then go back to accept() for the \
         next one",
    )
    .see("03-time-server.md#run-it");
    for client in ["c1", "c2", "c3"] {
        scenario = ask_the_time(scenario, client);
    }
    scenario
}

/// All time server scenarios.
pub fn all() -> Vec<Scenario> {
    vec![one_client(), three_clients()]
}
