//! Lesson 03 against its scenarios, over real loopback sockets.

mod common;

use socket_workbook::harness::run_lesson;
use socket_workbook::scenarios::time;

const LESSON: &str = env!("CARGO_BIN_EXE_03_time_server");

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in time::all() {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &[], &scenario));
    }
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    common::assert_port_in_use_is_reported("03_time_server");
}
