//! Lesson 07 over real loopback sockets: lesson 05's scenarios and model, the concurrency
//! scenarios (snapshotted, with lesson 05 run through the same idle client for contrast), a
//! hundred clients at once, the connection cap, Ctrl-C, hostile clients, and a thousand
//! connections opened and closed again and again without leaking threads.

mod common;

use socket_workbook::harness::run_lesson;
use socket_workbook::scenarios::{concurrency, kv};

use common::concurrent::{self, PerConnection, run_then_interrupt};

const LESSON: &str = env!("CARGO_BIN_EXE_07_kv_server_threads");
const LESSON_05: &str = env!("CARGO_BIN_EXE_05_kv_server");

#[test]
fn concurrency_scenarios_match_their_snapshots() {
    for scenario in concurrency::all() {
        insta::assert_snapshot!(scenario.name, run_then_interrupt(LESSON, &[], &scenario));
    }
}

/// Per-command logging is off: how many of the unread client's commands were answered when the
/// buffers filled up depends on timing.
#[test]
fn a_client_that_reads_nothing_holds_up_only_its_own_thread() {
    let scenario = concurrency::client_not_reading_does_not_block();
    insta::assert_snapshot!(scenario.name, run_then_interrupt(LESSON, &["--quiet"], &scenario));
}

#[test]
fn the_client_over_the_cap_is_refused_and_the_others_are_served() {
    let scenario = concurrency::connection_cap();
    insta::assert_snapshot!(
        scenario.name,
        run_then_interrupt(LESSON, &["--max-connections", "2"], &scenario)
    );
}

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

/// Everything lesson 05 must do, lesson 07 does too (its transcripts are lesson 05's, so they
/// are not recorded twice).
#[test]
fn every_kv_scenario_of_lesson_05_passes() {
    for scenario in kv::all() {
        run_lesson(LESSON, &[], &scenario);
    }
}

#[test]
fn replies_match_a_hashmap_model() {
    common::kv::assert_server_matches_model(LESSON, &["--quiet"]);
}

#[test]
fn random_bytes_never_break_the_server() {
    common::kv::assert_server_survives_junk(LESSON, &["--quiet"]);
}

#[test]
fn a_hundred_clients_at_once_each_get_their_own_replies() {
    concurrent::assert_hundred_clients_get_their_own_replies(LESSON);
}

#[test]
fn ctrl_c_with_clients_connected_exits_0_and_closes_their_connections() {
    concurrent::assert_ctrl_c_closes_connected_clients(LESSON);
}

#[test]
fn a_line_of_exactly_65536_bytes_is_accepted() {
    concurrent::assert_line_of_exactly_the_cap_is_accepted(LESSON);
}

/// Replies leave in 64 KiB writes (the thread's outbox is bounded), complete and in order.
#[test]
fn big_pipelined_replies_come_back_complete_and_in_order() {
    concurrent::assert_big_pipelined_replies_arrive_in_order(LESSON);
}

/// A client flooding bytes without a newline is cut off at the cap, and while that happens,
/// another client is served.
#[test]
fn a_flood_without_newline_does_not_hold_anyone_else() {
    common::kv::assert_flood_is_cut_off(LESSON);
}

/// A client that pipelines big replies and vanishes without reading them: only its own thread
/// notices (the write fails); the server serves the next client.
#[test]
fn a_client_that_vanishes_does_not_stop_the_server() {
    common::kv::assert_vanishing_client_is_survived(LESSON);
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
