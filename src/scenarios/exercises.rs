//! Scenarios for chapter exercises that change what a server does, so that a learner can check
//! them like a lesson: an idle timeout (lessons 07 and 08, exercise "An idle timeout") and a
//! store that survives a restart (the `kv-server-persistent` step).
//!
//! No lesson implements these; the checker's own tests check them against Python solutions
//! (`tests/fixtures/kv_server_threads.py --idle-timeout`, `--data-file`) and broken variants.
//! The arguments the checker adds to the learner's command are [`IDLE_TIMEOUT_ARGS`] and
//! [`data_file_args`].

use std::time::Duration;

use crate::harness::{Expect, Scenario};

/// What the checker adds to the command of `kv-server-idle-timeout`: one second, so a check is
/// quick and a busy machine still tells idle from slow.
pub const IDLE_TIMEOUT_ARGS: [&str; 2] = ["--idle-timeout", "1"];

/// What the checker adds to the command of `kv-server-persistent`: a file in a fresh folder of
/// its own for each scenario, which does not exist when the program first starts.
pub fn data_file_args(file: &std::path::Path) -> Vec<String> {
    vec!["--data-file".to_string(), file.display().to_string()]
}

/// The note for a server that says why before it closes an idle connection.
pub const NOTE_IDLE_ERROR_LINE: &str = "your server sends an error line before it closes an idle connection \
     (the reference closes it without a word)";

/// A client that says nothing is disconnected after the idle timeout; the next client is
/// served as before.
pub fn idle_client_disconnected() -> Scenario {
    Scenario::new(
        "idle-client-disconnected",
        "with --idle-timeout 1, a client that sends nothing is disconnected about a second later; the next client is served",
    )
    .hint(
        "give every connection a time limit between reads (a read timeout, or in an event loop a deadline \
         from the last read), and close the connection when it passes, with a log line that says why",
    )
    .see("07-kv-server-threads.md#exercises")
    .connect("c1")
    .expect_silence("c1", Duration::from_millis(300))
    .read_to_end(
        "c1",
        Expect::exact("").also_accept(Expect::prefix("ERROR"), NOTE_IDLE_ERROR_LINE),
    )
    .connect("c2")
    .send("c2", "SET after idle\n")
    .expect_line("c2", "OK\n")
    .send("c2", "GET after\n")
    .expect_line("c2", "idle\n")
    .close("c2")
}

/// A client that sends a command every 0.4 s is never idle for a second, so it stays
/// connected for longer than the timeout.
pub fn active_client_kept() -> Scenario {
    let mut scenario = Scenario::new(
        "active-client-kept",
        "with --idle-timeout 1, a client that sends a command every 0.4 s stays connected for 2 s and more",
    )
    .hint(
        "the idle time counts from the client's last bytes, not from when it connected: start the clock \
         again after every read that returned data",
    )
    .see("08-kv-server-events.md#exercises")
    .connect("c1");
    for (command, reply) in [
        ("SET n 1\n", "OK\n"),
        ("SET n 2\n", "OK\n"),
        ("SET n 3\n", "OK\n"),
        ("SET n 4\n", "OK\n"),
        ("GET n\n", "4\n"),
    ] {
        scenario = scenario
            .expect_silence("c1", Duration::from_millis(400))
            .send("c1", command)
            .expect_line("c1", reply);
    }
    scenario.close("c1")
}

/// The idle-timeout scenarios.
pub fn idle_timeout_all() -> Vec<Scenario> {
    vec![idle_client_disconnected(), active_client_kept()]
}

/// Keys set before a restart are there after it, values with spaces included.
pub fn set_survives_a_restart() -> Scenario {
    Scenario::new(
        "set-survives-a-restart",
        "keys set before the server is stopped and started again (same --data-file) are there after it",
    )
    .hint(
        "write the store to the --data-file before you answer OK (or at the latest when you get SIGTERM), \
         and read it back when you start, if it exists",
    )
    .see("05-kv-server.md#exercises")
    .connect("c1")
    .send("c1", "SET city Paris\n")
    .expect_line("c1", "OK\n")
    .send("c1", "SET greeting hello, big world\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .restart_server()
    .connect("c2")
    .send("c2", "GET city\n")
    .expect_line("c2", "Paris\n")
    .send("c2", "GET greeting\n")
    .expect_line("c2", "hello, big world\n")
    .close("c2")
}

/// A deleted key stays deleted after a restart, and an overwritten one keeps its last value.
pub fn delete_and_overwrite_survive() -> Scenario {
    Scenario::new(
        "delete-and-overwrite-survive",
        "a key deleted before a restart is still gone after it; a key set twice keeps its second value",
    )
    .hint("save the store after every change, DELETE and a second SET included, not only after the first SET")
    .see("05-kv-server.md#exercises")
    .connect("c1")
    .send("c1", "SET a 1\n")
    .expect_line("c1", "OK\n")
    .send("c1", "SET b 1\n")
    .expect_line("c1", "OK\n")
    .send("c1", "DELETE a\n")
    .expect_line("c1", "OK\n")
    .send("c1", "SET b 2\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .restart_server()
    .connect("c2")
    .send("c2", "GET a\n")
    .read_line("c2", Expect::ErrorLine)
    .send("c2", "GET b\n")
    .expect_line("c2", "2\n")
    .close("c2")
}

/// Two restarts in a row: what the second run stored is there in the third.
pub fn two_restarts() -> Scenario {
    Scenario::new(
        "two-restarts",
        "the server is restarted twice: a key set in the second run is there in the third, the first run's key too",
    )
    .hint("when the data file exists at start, load it, and keep saving to the same file")
    .see("05-kv-server.md#exercises")
    .connect("c1")
    .send("c1", "SET first 1\n")
    .expect_line("c1", "OK\n")
    .close("c1")
    .restart_server()
    .connect("c2")
    .send("c2", "SET second 2\n")
    .expect_line("c2", "OK\n")
    .close("c2")
    .restart_server()
    .connect("c3")
    .send("c3", "GET first\n")
    .expect_line("c3", "1\n")
    .send("c3", "GET second\n")
    .expect_line("c3", "2\n")
    .close("c3")
}

/// The persistence scenarios.
pub fn persistent_all() -> Vec<Scenario> {
    vec![
        set_survives_a_restart(),
        delete_and_overwrite_survive(),
        two_restarts(),
    ]
}
