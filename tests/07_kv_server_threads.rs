//! Lesson 07 over real loopback sockets: lesson 05's scenarios and model, the concurrency
//! scenarios (snapshotted, with lesson 05 run through the same idle client for contrast), a
//! hundred clients at once, the connection cap, Ctrl-C, hostile clients, and a thousand
//! connections opened and closed again and again without leaking threads.

mod common;

use socket_workbook::harness::run_lesson;
use socket_workbook::scenarios::concurrency;

use common::concurrent::{self, PerConnection};

const LESSON: &str = env!("CARGO_BIN_EXE_07_kv_server_threads");
const LESSON_05: &str = env!("CARGO_BIN_EXE_05_kv_server");

// The concurrency snapshots, lesson 05's scenarios, model and junk tests, a hundred clients,
// Ctrl-C, the line cap, big pipelined replies, and hostile clients: what every concurrent
// server passes.
crate::concurrent_kv_server_tests!(LESSON);

/// The same idle client against lesson 05, which serves one client at a time: the second client
/// waits until the first leaves. The book shows this transcript next to lesson 07's.
#[test]
fn lesson_05_makes_the_second_client_wait_for_the_idle_one() {
    let scenario = concurrency::idle_client_blocks_a_sequential_server();
    insta::assert_snapshot!(
        "lesson-05-idle-client-blocks",
        run_lesson(LESSON_05, &[], &scenario)
    );
}

/// Each round the server runs one thread per connection, and afterwards exactly as many threads
/// as before the first round: every connection thread ended with its client.
#[test]
fn a_thousand_connections_opened_and_closed_repeatedly_leave_no_threads_behind() {
    concurrent::assert_thousand_connections_leave_nothing_behind(
        LESSON,
        &[
            PerConnection {
                what: "threads",
                measure: concurrent::thread_count,
                per_connection: 1,
            },
            PerConnection {
                what: "open file descriptors",
                measure: concurrent::open_descriptors,
                per_connection: 1,
            },
        ],
    );
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("07_kv_server_threads");
}
