//! Lesson 08 over real loopback sockets: everything lesson 07 is tested for (lesson 05's
//! scenarios and model, the concurrency scenarios, a hundred clients, the cap, Ctrl-C, hostile
//! clients, a thousand connections again and again), plus what only an event loop can get wrong:
//! one thread serves everyone, and a client that reads nothing costs bounded memory.

mod common;

use std::time::Duration;

use socket_workbook::harness::{Connection, start_lesson};

use common::concurrent::{self, PerConnection};

const LESSON: &str = env!("CARGO_BIN_EXE_08_kv_server_events");
const TIMEOUT: Duration = Duration::from_secs(5);

// The concurrency snapshots, lesson 05's scenarios, model and junk tests, a hundred clients,
// Ctrl-C, the line cap, big pipelined replies, and hostile clients: what every concurrent
// server passes.
crate::concurrent_kv_server_tests!(LESSON);

/// One thread, however many clients: the thread count never moves, and each connection holds
/// exactly one file descriptor while it is open and none after.
#[test]
fn a_thousand_connections_opened_and_closed_repeatedly_leave_nothing_behind() {
    concurrent::assert_thousand_connections_leave_nothing_behind(
        LESSON,
        &[
            PerConnection {
                what: "threads",
                measure: concurrent::thread_count,
                per_connection: 0,
            },
            PerConnection {
                what: "open file descriptors",
                measure: concurrent::open_descriptors,
                per_connection: 1,
            },
        ],
    );
}

/// Back-pressure: a client pipelines 1,000 commands whose replies total 60 MB, and reads none
/// of them. The server stops answering it once about 64 KiB of replies wait, so its memory grows
/// by a few MiB at most (the kernel's socket buffers are not counted), not by 60 MB. Meanwhile
/// another client is served. When the client finally reads, every reply arrives, in order.
#[test]
#[ignore = "slow (about 5 s): reads 60 MB of replies; run by the slow stage of .ci/run, `cargo test -- --ignored`"]
fn a_client_that_reads_nothing_costs_bounded_memory() {
    const REPLIES: usize = 1000;
    let server = start_lesson(LESSON, &["--quiet"]).unwrap();
    let pid = server.pid();
    let value = "v".repeat(60_000);
    let mut slow = Connection::connect(server.addr(), TIMEOUT).unwrap();
    slow.send(format!("SET big {value}\n").as_bytes()).unwrap();
    assert_eq!(slow.read_line(TIMEOUT, 1024).bytes, b"OK\n");
    let before = concurrent::resident_kib(pid);

    slow.stop_reading();
    slow.send("GET big\n".repeat(REPLIES).as_bytes()).unwrap();
    // Served while the slow client's replies wait: the loop is not stuck on it. By now the
    // kernel's buffers towards the slow client are full (this connection was accepted after
    // those commands were sent, and the loop answers in order of readiness).
    common::kv::assert_serves(&server, "big", &format!("{value}\n"));
    let during = concurrent::resident_kib(pid);
    assert!(
        during < before + 8 * 1024,
        "resident memory grew from {before} KiB to {during} KiB while a client read nothing"
    );

    for i in 0..REPLIES {
        let reply = slow.read_line(TIMEOUT, 2 * 65_536);
        assert!(
            reply.bytes.len() == value.len() + 1 && reply.bytes.starts_with(value.as_bytes()),
            "reply {i}: {} bytes, {:?}",
            reply.bytes.len(),
            reply.end
        );
    }
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("08_kv_server_events");
}

/// With too few file descriptors, `accept` fails and the listener stays ready. The loop must
/// neither spin on that error nor stop serving: connected clients are answered, and a client
/// waiting in the backlog is served as soon as another one leaves.
#[test]
fn running_out_of_descriptors_pauses_accepting_without_spinning() {
    use std::process::Command;

    use socket_workbook::harness::{Readiness, ServerProcess};

    // 24 descriptors: stdin/out/err, the listener, the wake-up pair, and what the runtime and
    // the `ctrlc` crate open leave room for a dozen or so connections.
    let mut command = Command::new("sh");
    command.args(["-c", &format!("ulimit -n 24 && exec {LESSON} --quiet --port 0")]);
    let server = ServerProcess::start(command, Readiness::ListeningLine, TIMEOUT).unwrap();

    let mut clients = Vec::new();
    for _ in 0..30 {
        // The kernel completes every connection (the backlog is long); the server accepts
        // only as many as it has descriptors for.
        clients.push(Connection::connect(server.addr(), TIMEOUT).unwrap());
    }
    assert!(
        server.wait_for_output("accept failed", TIMEOUT),
        "no accept error logged"
    );
    // The first client was accepted before descriptors ran out: it is served.
    clients[0].send(b"SET a 1\n").unwrap();
    assert_eq!(clients[0].read_line(TIMEOUT, 1024).bytes, b"OK\n");
    // The last one waits in the backlog: its command is answered only after others leave.
    let mut last = clients.pop().unwrap();
    last.send(b"GET a\n").unwrap();
    clients.truncate(1);
    assert_eq!(last.read_line(TIMEOUT, 1024).bytes, b"1\n");

    // While descriptors were short, the loop paused accepting for 100 ms at a time: a few
    // dozen errors at most. A loop that retried at once would have logged thousands.
    let output = server.finish();
    let errors = output
        .iter()
        .filter(|line| line.text.contains("accept failed"))
        .count();
    assert!(errors < 50, "{errors} accept errors logged: the loop spun");
}
