//! Scenarios for a time server (lesson 03): every connection gets the current time as an
//! RFC 3339 timestamp and a newline, then the server closes it and waits for the next one.

use std::time::Duration;

use crate::harness::{Expect, Scenario};

/// How far from this machine's clock a timestamp may be: enough for a slow machine, far too
/// little for a wrong time zone.
pub const TOLERANCE: Duration = Duration::from_secs(5);

fn ask_the_time(scenario: Scenario, client: &'static str) -> Scenario {
    scenario
        .connect(client)
        .read_line(client, Expect::RecentTimestamp { within: TOLERANCE })
        .expect_closed(client)
}

/// One client connects, reads the time, and sees the server close the connection.
pub fn one_client() -> Scenario {
    ask_the_time(
        Scenario::new("one-client", "a client connects and receives the current time").hint(
            "send the local time as RFC 3339 with a numeric offset and a newline, then close the connection",
        ),
        "c1",
    )
}

/// Three clients, one after the other: the server keeps serving.
pub fn three_clients() -> Scenario {
    let mut scenario = Scenario::new(
        "three-clients",
        "three clients in a row each get the time; the server keeps running",
    )
    .hint("after answering one client, close its connection and go back to accept the next one");
    for client in ["c1", "c2", "c3"] {
        scenario = ask_the_time(scenario, client);
    }
    scenario
}

/// All time server scenarios.
pub fn all() -> Vec<Scenario> {
    vec![one_client(), three_clients()]
}
