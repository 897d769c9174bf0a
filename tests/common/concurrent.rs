//! Checks for a key-value server that serves many clients at once (lessons 07 and 08), however it
//! does it: with a thread per connection or with an event loop. What differs between the two
//! (threads, file descriptors, memory) is measured with the `/proc` helpers at the end.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use socket_workbook::harness::client::ReadEnd;
use socket_workbook::harness::process::describe_exit;
use socket_workbook::harness::{
    Connection, RunOptions, Scenario, ServerProcess, render, run_scenario, start_lesson,
};
use socket_workbook::kv::MAX_LINE;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Defines the tests every concurrent KV server lesson passes, for the program `$lesson`, in the
/// test file that invokes it (so snapshots are named after that file: `08_kv_server_events__...`).
#[macro_export]
macro_rules! concurrent_kv_server_tests {
    ($lesson:expr) => {
        #[test]
        fn concurrency_scenarios_match_their_snapshots() {
            for scenario in socket_workbook::scenarios::concurrency::all() {
                insta::assert_snapshot!(
                    scenario.name,
                    common::concurrent::run_then_interrupt($lesson, &[], &scenario)
                );
            }
        }

        /// Per-command logging is off: how many of the unread client's commands were answered
        /// when the buffers filled up depends on timing.
        #[test]
        fn a_client_that_reads_nothing_does_not_hold_up_the_others() {
            let scenario = socket_workbook::scenarios::concurrency::client_not_reading_does_not_block();
            insta::assert_snapshot!(
                scenario.name,
                common::concurrent::run_then_interrupt($lesson, &["--quiet"], &scenario)
            );
        }

        #[test]
        fn the_client_over_the_cap_is_refused_and_the_others_are_served() {
            let scenario = socket_workbook::scenarios::concurrency::connection_cap();
            insta::assert_snapshot!(
                scenario.name,
                common::concurrent::run_then_interrupt($lesson, &["--max-connections", "2"], &scenario)
            );
        }

        /// Everything lesson 05 must do, this server does too (the transcripts are lesson 05's,
        /// so they are not recorded again).
        #[test]
        fn every_kv_scenario_of_lesson_05_passes() {
            for scenario in socket_workbook::scenarios::kv::all() {
                socket_workbook::harness::run_lesson($lesson, &[], &scenario);
            }
        }

        #[test]
        fn replies_match_a_hashmap_model() {
            common::kv::assert_server_matches_model($lesson, &["--quiet"]);
        }

        #[test]
        fn random_bytes_never_break_the_server() {
            common::kv::assert_server_survives_junk($lesson, &["--quiet"]);
        }

        /// `--help` starts with the lesson's own line, not the crate's description.
        #[test]
        fn help_starts_with_the_lesson() {
            let output = std::process::Command::new($lesson)
                .arg("--help")
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&output.stdout);
            assert!(help.starts_with("Lesson "), "--help starts with: {help}");
        }

        #[test]
        fn a_closed_stdout_does_not_stop_the_server() {
            common::environment::assert_kv_server_survives_closed_stdout($lesson);
        }

        #[test]
        fn a_client_that_sends_a_byte_at_a_time_cannot_stretch_the_drain() {
            common::environment::assert_drain_ends_by_its_deadline($lesson);
        }

        #[test]
        fn a_hundred_clients_at_once_each_get_their_own_replies() {
            common::concurrent::assert_hundred_clients_get_their_own_replies($lesson);
        }

        #[test]
        fn ctrl_c_with_clients_connected_exits_0_and_closes_their_connections() {
            common::concurrent::assert_ctrl_c_closes_connected_clients($lesson);
        }

        #[test]
        fn a_line_of_exactly_65536_bytes_is_accepted() {
            common::concurrent::assert_line_of_exactly_the_cap_is_accepted($lesson);
        }

        /// The outbox is bounded (64 KiB), so big replies leave in many writes.
        #[test]
        fn big_pipelined_replies_come_back_complete_and_in_order() {
            common::concurrent::assert_big_pipelined_replies_arrive_in_order($lesson);
        }

        /// A client flooding bytes without a newline is cut off at the cap after a bounded
        /// drain, and while that happens, another client is served.
        #[test]
        fn a_flood_without_newline_does_not_hold_anyone_else() {
            common::kv::assert_flood_is_cut_off($lesson);
        }

        /// A client that pipelines big replies and vanishes without reading them: the server
        /// notices (a write fails) and serves the next client.
        #[test]
        fn a_client_that_vanishes_does_not_stop_the_server() {
            common::kv::assert_vanishing_client_is_survived($lesson);
        }
    };
}

/// Sends SIGINT, as Ctrl-C in the server's terminal does.
pub fn interrupt(server: &ServerProcess) {
    // SAFETY: kill(2) takes no pointers; the pid is our own child's.
    unsafe {
        libc::kill(server.pid(), libc::SIGINT);
    }
}

/// Runs `scenario` against `program`, then stops the server the way its user does, with Ctrl-C.
/// The server must exit by itself with status 0; the transcript ends with that.
pub fn run_then_interrupt(program: &str, args: &[&str], scenario: &Scenario) -> String {
    let mut server = start_lesson(program, args).unwrap_or_else(|err| panic!("{err}"));
    let mut transcript = match run_scenario(&mut server, scenario, &RunOptions::reference()) {
        Ok(transcript) => transcript,
        Err(failure) => panic!("{failure}"),
    };
    interrupt(&server);
    let status = server
        .wait_exit(TIMEOUT)
        .expect("the server was still running 5 s after SIGINT");
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGINT: {}",
        describe_exit(status)
    );
    transcript
        .lines
        .push("server receives SIGINT (Ctrl-C)".to_string());
    transcript
        .lines
        .push(format!("server exits ({})", describe_exit(status)));
    let addr = server.addr();
    let output = server.finish();
    render(scenario, &transcript, addr, &output)
}

/// A hundred clients, all connected at the same time, each storing and reading its own keys:
/// every reply is the right one (no reply goes to the wrong client, no update is lost).
pub fn assert_hundred_clients_get_their_own_replies(program: &str) {
    const CLIENTS: usize = 100;
    const KEYS: usize = 20;
    let server = start_lesson(program, &["--quiet"]).unwrap();
    let addr = server.addr();
    // Nobody starts before all are connected: a server that serves one client at a time
    // would leave 99 of them waiting here, and the test would fail on a timeout.
    let all_connected = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let all_connected = Arc::clone(&all_connected);
            thread::spawn(move || -> Result<(), String> {
                let mut conn = Connection::connect(addr, TIMEOUT).map_err(|e| e.to_string())?;
                all_connected.wait();
                for i in 0..KEYS {
                    let (key, value) = (format!("c{n}-k{i}"), format!("value {n} {i}"));
                    conn.send(format!("SET {key} {value}\nGET {key}\n").as_bytes())
                        .map_err(|e| e.to_string())?;
                    for want in ["OK\n".to_string(), format!("{value}\n")] {
                        let reply = conn.read_line(TIMEOUT, 1024);
                        if reply.bytes != want.as_bytes() {
                            return Err(format!("client {n}, key {key}: expected {want:?}, got {reply:?}"));
                        }
                    }
                }
                // All of them again, pipelined in one write: still ours, still in order.
                let batch: String = (0..KEYS).map(|i| format!("GET c{n}-k{i}\n")).collect();
                conn.send(batch.as_bytes()).map_err(|e| e.to_string())?;
                for i in 0..KEYS {
                    let want = format!("value {n} {i}\n");
                    let reply = conn.read_line(TIMEOUT, 1024);
                    if reply.bytes != want.as_bytes() {
                        return Err(format!(
                            "client {n}, pipelined GET {i}: expected {want:?}, got {reply:?}"
                        ));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|client| client.join().unwrap().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} clients failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Ctrl-C with clients still connected: one log line, exit status 0, and every client sees its
/// connection end.
pub fn assert_ctrl_c_closes_connected_clients(program: &str) {
    let mut server = start_lesson(program, &[]).unwrap();
    let mut clients: Vec<Connection> = (0..2)
        .map(|_| Connection::connect(server.addr(), TIMEOUT).unwrap())
        .collect();
    for (i, conn) in clients.iter_mut().enumerate() {
        conn.send(format!("SET k{i} v\n").as_bytes()).unwrap();
        assert_eq!(conn.read_line(TIMEOUT, 1024).bytes, b"OK\n");
    }
    interrupt(&server);
    let status = server.wait_exit(TIMEOUT).expect("still running 5 s after SIGINT");
    assert_eq!(status.code(), Some(0));
    for conn in &mut clients {
        let rest = conn.read_to_end(TIMEOUT);
        assert!(rest.bytes.is_empty());
        assert!(
            matches!(rest.end, ReadEnd::Closed | ReadEnd::Failed(_)),
            "{rest:?}"
        );
    }
    let output = server.finish();
    assert!(
        output
            .iter()
            .any(|line| line.text.contains("shutting down") && line.text.contains("connections of 2 clients")),
        "{output:?}"
    );
}

/// The cap is 65536 bytes before the `\n`: a line of exactly that length is a command, also when
/// it arrives in pieces.
pub fn assert_line_of_exactly_the_cap_is_accepted(program: &str) {
    let server = start_lesson(program, &["--quiet"]).unwrap();
    let value = "v".repeat(MAX_LINE - "SET big ".len());
    let line = format!("SET big {value}\n");
    assert_eq!(line.len(), MAX_LINE + 1);
    let mut conn = Connection::connect(server.addr(), TIMEOUT).unwrap();
    for piece in line.as_bytes().chunks(10_000) {
        conn.send(piece).unwrap();
    }
    assert_eq!(conn.read_line(TIMEOUT, 1024).bytes, b"OK\n");
    drop(conn);
    super::kv::assert_serves(&server, "big", &format!("{value}\n"));
}

/// Thousands of pipelined commands with big replies: the replies come back complete and in order
/// (the server's outbox is bounded, so they leave in many writes).
pub fn assert_big_pipelined_replies_arrive_in_order(program: &str) {
    let server = start_lesson(program, &["--quiet"]).unwrap();
    let mut conn = Connection::connect(server.addr(), TIMEOUT).unwrap();
    let values: Vec<String> = (0..4).map(|i| format!("{i}").repeat(30_000)).collect();
    let mut commands = String::new();
    for (i, value) in values.iter().enumerate() {
        commands.push_str(&format!("SET v{i} {value}\n"));
    }
    for round in 0..200 {
        commands.push_str(&format!("GET v{}\n", round % 4));
    }
    conn.send(commands.as_bytes()).unwrap();
    for _ in 0..4 {
        assert_eq!(conn.read_line(TIMEOUT, 1024).bytes, b"OK\n");
    }
    for round in 0..200 {
        let reply = conn.read_line(TIMEOUT, 2 * MAX_LINE);
        assert!(
            reply.bytes.len() == 30_001 && reply.bytes.starts_with(values[round % 4].as_bytes()),
            "reply {round}: {} bytes, {:?}",
            reply.bytes.len(),
            reply.end
        );
    }
}

/// One line of `/proc/<pid>/status` (Linux), as a number: `Threads:`, or `VmRSS:` in KiB.
pub fn proc_status(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("cannot read /proc/{pid}/status ({err}): has the server exited?"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|n| n.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

pub fn thread_count(pid: i32) -> u64 {
    proc_status(pid, "Threads:")
}

/// `VmRSS:` (resident memory) of a process, in KiB.
pub fn resident_kib(pid: i32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// How many file descriptors the process has open (Linux): one per connection, plus a few.
pub fn open_descriptors(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|err| panic!("cannot list /proc/{pid}/fd ({err}): has the server exited?"))
        .count() as u64
}

/// Waits until `measure` returns `want`. A thread ends, and a socket is closed, a moment after
/// its client has gone, and nothing announces it, so this looks every few milliseconds, with a
/// deadline.
pub fn wait_until(what: &str, measure: impl Fn() -> u64, want: u64, deadline: Duration) {
    let start = Instant::now();
    loop {
        let now = measure();
        if now == want {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: still {now} after {} s; expected {want}",
            deadline.as_secs()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Raises this process's open-file limit (which the server inherits) to at least `want` if the
/// hard limit allows: a thousand connections need a thousand descriptors on each side, and some
/// systems allow 1024 by default.
pub fn raise_open_file_limit(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// What a server holds for each connection, looked at while connections are open and after
/// they have closed.
pub struct PerConnection {
    /// What is counted, for messages: "threads", "open file descriptors".
    pub what: &'static str,
    pub measure: fn(i32) -> u64,
    /// How much the count rises per open connection: 1 thread (lesson 07), 1 descriptor.
    pub per_connection: u64,
}

/// 1,000 connections at once, each answered, then all closed; three times. While they are open,
/// the server holds `per_connection` of each counted resource per connection; afterwards, exactly
/// as many as before the first round: nothing leaks. Memory does not keep growing either.
pub fn assert_thousand_connections_leave_nothing_behind(program: &str, counts: &[PerConnection]) {
    const CONNECTIONS: usize = 1000;
    raise_open_file_limit(4096);
    let server = start_lesson(program, &["--quiet"]).unwrap();
    let pid = server.pid();
    let baselines: Vec<u64> = counts.iter().map(|count| (count.measure)(pid)).collect();
    let mut resident_after_round = Vec::new();
    for round in 0..3 {
        let mut streams = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let stream = TcpStream::connect(server.addr()).unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            streams.push(stream);
        }
        // Every connection is served (none was refused: the cap is 1000).
        for (i, stream) in streams.iter_mut().enumerate() {
            stream
                .write_all(format!("SET r{round}c{i} x\n").as_bytes())
                .unwrap();
        }
        for (i, stream) in streams.iter().enumerate() {
            let mut reply = String::new();
            BufReader::new(stream).read_line(&mut reply).unwrap();
            assert_eq!(reply, "OK\n", "round {round}, connection {i}");
        }
        for (count, baseline) in counts.iter().zip(&baselines) {
            assert_eq!(
                (count.measure)(pid),
                baseline + count.per_connection * CONNECTIONS as u64,
                "{} with {CONNECTIONS} connections open",
                count.what
            );
        }
        drop(streams);
        for (count, &baseline) in counts.iter().zip(&baselines) {
            wait_until(
                count.what,
                || (count.measure)(pid),
                baseline,
                Duration::from_secs(20),
            );
        }
        resident_after_round.push(resident_kib(pid));
    }
    // The first round leaves memory behind that later rounds reuse (the allocator keeps freed
    // buffers for the next connections; the store keeps its keys). After that, a round must
    // not add more than 4 KiB per connection: a buffer or a stack kept for every connection that
    // ended would add 16 KiB or more each, 16 MiB or more per round.
    let growth = resident_after_round[2].saturating_sub(resident_after_round[1]);
    assert!(
        growth < 4 * 1024,
        "resident memory after each round (KiB): {resident_after_round:?}"
    );
    super::kv::assert_serves(&server, "r2c999", "x\n");
}
