//! The checker checked: our own lessons pass their steps, correct solutions written by someone
//! else (different log text) pass, and deliberately broken programs are caught with the hint that
//! names their mistake.

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use socket_workbook::checker::steps;
use socket_workbook::harness::client_scenario::NOTE_ERROR_ON_STDOUT;
use socket_workbook::harness::scenario::{NOTE_TIME_WITHOUT_NEWLINE, NOTE_TIME_WITHOUT_OFFSET};
use socket_workbook::scenarios::echo::NOTE_SERVES_THE_NEXT_CLIENT;
use socket_workbook::scenarios::kv::{
    NOTE_BYTES_STORED_AS_THEY_CAME, NOTE_CASE_SENSITIVE_COMMANDS, NOTE_COMMAND_ENDS_WITH_CRLF,
    NOTE_DELETE_OF_MISSING_KEY_OK, NOTE_EMPTY_VALUE_REFUSED, NOTE_LONG_LINE_KEEPS_CONNECTION,
};

/// A POSIX time zone five and a half hours east of UTC, given to the checker (and so to the
/// program it runs) as `TZ`: a time zone that is not UTC on every machine, CI included, so that
/// local time and UTC tell apart. A POSIX rule needs no time zone database.
const NOT_UTC: &str = "XST-5:30";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn workbook() -> Command {
    let mut command = Command::cargo_bin("workbook").unwrap();
    command.timeout(Duration::from_secs(120));
    command
}

/// Runs `workbook check STEP --json -- COMMAND...`; returns the exit code and the JSON report.
fn check_json(step: &str, command: &[&str]) -> (i32, Value) {
    check_json_in(workbook(), &[], step, command)
}

/// The same, with the checker (and the program it runs) in time zone `tz`.
fn check_json_in_zone(tz: &str, step: &str, command: &[&str]) -> (i32, Value) {
    let mut checker = workbook();
    checker.env("TZ", tz);
    check_json_in(checker, &[], step, command)
}

/// The same, with `checker` set up beforehand (its environment, say) and `options` for `check`
/// (`--only NAME`, say).
fn check_json_in(mut checker: Command, options: &[&str], step: &str, command: &[&str]) -> (i32, Value) {
    let output = checker
        .args(["check", step, "--timeout", "1", "--json"])
        .args(options)
        .arg("--")
        .args(command)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&output.stdout)));
    (output.status.code().unwrap_or(-1), report)
}

/// The hints of the failed scenarios, by scenario name.
fn failures(report: &Value) -> Vec<(String, String)> {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failed")
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["failure"]["hint"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The notes of the passed scenarios, by scenario name, in the order they ran.
fn notes(report: &Value) -> Vec<(String, String)> {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("note").is_some())
        .map(|s| {
            assert_eq!(s["status"], "passed", "only a passed scenario has a note: {s:#}");
            (
                s["name"].as_str().unwrap().to_string(),
                s["note"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `(scenario, note)` pairs as `notes` returns them.
fn noted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(scenario, note)| (scenario.to_string(), note.to_string()))
        .collect()
}

/// The step passes every scenario, and the notes are exactly `expected`.
fn assert_passes_with_notes(report: &Value, code: i32, expected: &[(&str, &str)]) {
    assert_eq!(code, 0, "a correct program must pass: {report:#}");
    assert_eq!(report["passed"], report["total"], "{report:#}");
    assert_eq!(notes(report), noted(expected), "{report:#}");
}

fn assert_caught(step: &str, command: &[&str], scenario: &str, hint_words: &str) {
    let (code, report) = check_json(step, command);
    assert_caught_in(code, report, scenario, hint_words);
}

fn assert_caught_in(code: i32, report: Value, scenario: &str, hint_words: &str) {
    assert_eq!(code, 1, "a broken program must fail: {report:#}");
    let failed = failures(&report);
    let (_, hint) = failed
        .iter()
        .find(|(name, _)| name == scenario)
        .unwrap_or_else(|| panic!("scenario {scenario} should fail; failures: {failed:?}"));
    let details = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == scenario)
        .cloned();
    assert!(
        hint.contains(hint_words),
        "hint for {scenario} should mention {hint_words:?}, got {hint:?}; the failure: {details:#?}"
    );
}

#[test]
fn our_own_lessons_pass_every_step() {
    for step in steps() {
        for &lesson in step.lessons {
            let command: &[&str] = match lesson {
                "01_echo_server" => &[env!("CARGO_BIN_EXE_01_echo_server")],
                "02_echo_client" => &[env!("CARGO_BIN_EXE_02_echo_client")],
                "03_time_server" => &[env!("CARGO_BIN_EXE_03_time_server")],
                "04_length_prefix" => &[env!("CARGO_BIN_EXE_04_length_prefix"), "server"],
                "05_kv_server" => &[env!("CARGO_BIN_EXE_05_kv_server")],
                "06_kv_client" => &[env!("CARGO_BIN_EXE_06_kv_client")],
                "07_kv_server_threads" => &[env!("CARGO_BIN_EXE_07_kv_server_threads")],
                "08_kv_server_events" => &[env!("CARGO_BIN_EXE_08_kv_server_events")],
                other => panic!("add lesson {other} to this test"),
            };
            let (code, report) = check_json(step.name, &[command, &["--port", "{port}"]].concat());
            assert_eq!(code, 0, "{} against {lesson}: {report:#}", step.name);
            assert_eq!(report["passed"], report["total"]);
            // The lessons are the reference: no note, ever.
            assert_eq!(notes(&report), [], "{} against {lesson}: {report:#}", step.name);
        }
    }
}

#[test]
fn list_names_every_step() {
    let output = workbook()
        .arg("list")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    for step in steps() {
        assert!(text.contains(step.name), "{text}");
    }
    insta::assert_snapshot!("list", text);
}

#[test]
fn correct_python_solutions_pass() {
    let echo = fixture("echo_server.py");
    let client = fixture("echo_client.py");
    let time = fixture("time_server.py");
    let kv_server = fixture("kv_server.py");
    let kv_client = fixture("kv_client.py");
    let kv_events = fixture("kv_events_server.py");
    let frame = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/frame_echo_server.py")
        .display()
        .to_string();
    for (step, command) in [
        ("echo-server", vec!["python3", &echo, "{port}"]),
        ("kv-server", vec!["python3", &kv_server, "--port", "{port}"]),
        ("kv-client", vec!["python3", &kv_client, "--port", "{port}"]),
        (
            "concurrent-kv-server",
            vec!["python3", &kv_events, "--port", "{port}"],
        ),
        ("length-prefix-server", vec!["python3", &frame, "{port}"]),
        ("echo-client", vec!["python3", &client, "--port", "{port}"]),
        ("time-server", vec!["python3", &time, "--port", "{port}"]),
    ] {
        let (code, report) = check_json(step, &command);
        assert_eq!(code, 0, "{step}: {report:#}");
        // These fixtures make the lessons' choices: nothing to remark on.
        assert_eq!(notes(&report), [], "{step}: {report:#}");
    }
}

#[test]
fn broken_echo_servers_are_caught_with_the_right_hint() {
    let echo = fixture("echo_server.py");
    let run = |bug: &'static str| ["python3", echo.as_str(), "{port}", "--bug", bug];
    assert_caught(
        "echo-server",
        &run("no-prefix"),
        "greeting",
        "\"Echo: \" followed by exactly",
    );
    assert_caught(
        "echo-server",
        &run("one-read"),
        "three-messages",
        "keep reading in a loop",
    );
    assert_caught("echo-server", &run("text"), "all-byte-values", "crashed");
    assert_caught("echo-server", &run("hang"), "greeting", "Echo:");
}

/// Lesson 05 is a correct kv-server, but it serves one client at a time: the concurrent step
/// catches that, and says what to do about it.
#[test]
fn a_one_client_at_a_time_kv_server_is_caught_by_the_concurrent_step() {
    assert_caught(
        "concurrent-kv-server",
        &[env!("CARGO_BIN_EXE_05_kv_server"), "--port", "{port}"],
        "idle-client-does-not-block",
        "its own thread",
    );
}

/// An event loop that writes its replies with a blocking write is correct until a client stops
/// reading: then it waits for that client and serves nobody else. Only the scenario made for
/// that mistake fails, and its hint names the cure.
#[test]
fn an_event_loop_with_a_blocking_write_is_caught_by_the_concurrent_step() {
    let server = fixture("kv_events_server.py");
    let command = [
        "python3",
        server.as_str(),
        "--port",
        "{port}",
        "--bug",
        "blocking-write",
    ];
    let (code, report) = check_json("concurrent-kv-server", &command);
    assert_eq!(code, 1, "a broken program must fail: {report:#}");
    let failed = failures(&report);
    assert!(
        matches!(&failed[..], [(name, hint)]
            if name == "client-not-reading-does-not-block" && hint.contains("non-blocking write")),
        "only client-not-reading-does-not-block should fail, with its own hint; failures: {failed:?}"
    );
}

#[test]
fn broken_echo_clients_are_caught_with_the_right_hint() {
    let client = fixture("echo_client.py");
    let run = |bug: &'static str| ["python3", client.as_str(), "--port", "{port}", "--bug", bug];
    assert_caught(
        "echo-client",
        &run("crash-on-refused"),
        "connection-refused",
        "print one line",
    );
    assert_caught(
        "echo-client",
        &run("wrong-message"),
        "round-trip",
        "send the message given",
    );
}

/// Time servers that are wrong, not merely different, still fail: garbage, a server that stops
/// after one client, a connection left open, and UTC passed off as local time (checked in a zone
/// that is not UTC, where the two differ). Every hint is a time server's: nothing about commands.
#[test]
fn broken_time_servers_are_caught_with_the_right_hint() {
    let time = fixture("time_server.py");
    let run = |bug: &'static str| ["python3", time.as_str(), "--port", "{port}", "--bug", bug];
    for (bug, scenario, hint_words) in [
        ("ctime", "one-client", "RFC 3339"),
        ("one-client", "three-clients", "accept"),
        ("no-close", "one-client", "then close the connection"),
    ] {
        let (code, report) = check_json("time-server", &run(bug));
        assert_no_command_hints(&report);
        assert_caught_in(code, report, scenario, hint_words);
    }
    let (code, report) = check_json_in_zone(NOT_UTC, "time-server", &run("utc-without-offset"));
    assert_no_command_hints(&report);
    let reason = report["scenarios"][0]["failure"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("has no UTC offset")
            && reason.contains("(UTC+05:30)")
            && reason.contains("right as UTC"),
        "the reason should explain the zone: {report:#}"
    );
    assert_caught_in(code, report, "one-client", "offset from UTC");
}

/// A time server's report never gives a key-value server's advice.
fn assert_no_command_hints(report: &Value) {
    for (scenario, hint) in failures(report) {
        assert!(
            !hint.contains("command"),
            "{scenario}: a key-value hint for a time server: {hint}"
        );
    }
}

/// The seed assignment's own time server (local time without an offset, microseconds, no
/// newline, then close) is correct: it passes, with notes. Checked in a zone that is not UTC, so
/// that reading its time as local time, not as UTC, is what makes it pass.
#[test]
fn the_seed_time_server_passes_with_notes() {
    let seed = fixture("seed_time_server.py");
    let (code, report) = check_json_in_zone(NOT_UTC, "time-server", &["python3", &seed, "{port}"]);
    let both = format!("{NOTE_TIME_WITHOUT_OFFSET}; {NOTE_TIME_WITHOUT_NEWLINE}");
    assert_passes_with_notes(&report, code, &[("one-client", &both), ("three-clients", &both)]);
}

/// An echo server that goes back to accept the next client instead of exiting (lesson 01's
/// exercise 2) is correct: every scenario passes, with a note, once a second client is served.
#[test]
fn an_echo_server_that_serves_the_next_client_passes_with_notes() {
    let echo = fixture("echo_server.py");
    let (code, report) = check_json(
        "echo-server",
        &["python3", &echo, "{port}", "--choice", "serve-forever"],
    );
    let note = NOTE_SERVES_THE_NEXT_CLIENT;
    assert_passes_with_notes(
        &report,
        code,
        &[
            ("greeting", note),
            ("all-byte-values", note),
            ("three-messages", note),
            ("half-close", note),
        ],
    );
}

/// A key-value server that decides differently from lesson 05 wherever the protocol leaves it
/// open (stores bytes that are not UTF-8 as they came, as Redis does; refuses empty values; takes
/// upper-case commands only; answers OK to DELETE of a missing key; keeps the connection after a
/// line that is too long) is correct: every scenario passes, and the one that shows each choice
/// says so in a note.
#[test]
fn kv_servers_that_choose_differently_pass_with_notes() {
    let server = fixture("kv_server.py");
    let mut command = vec!["python3", server.as_str(), "--port", "{port}"];
    for choice in [
        "binary-safe",
        "refuse-empty-value",
        "upper-case-only",
        "delete-missing-ok",
        "keep-open-after-long-line",
    ] {
        command.extend(["--choice", choice]);
    }
    let (code, report) = check_json("kv-server", &command);
    assert_passes_with_notes(
        &report,
        code,
        &[
            ("missing-key", NOTE_DELETE_OF_MISSING_KEY_OK),
            ("empty-value", NOTE_EMPTY_VALUE_REFUSED),
            ("mixed-case-commands", NOTE_CASE_SENSITIVE_COMMANDS),
            ("invalid-utf8", NOTE_BYTES_STORED_AS_THEY_CAME),
            ("line-too-long", NOTE_LONG_LINE_KEEPS_CONNECTION),
        ],
    );
}

/// Storing a value that is not UTF-8 is a choice; changing it on the way is a bug: a server that
/// decodes with replacement characters fails, and the hint says why.
#[test]
fn a_kv_server_that_mangles_bytes_is_caught() {
    let server = fixture("kv_server.py");
    let command = [
        "python3",
        server.as_str(),
        "--port",
        "{port}",
        "--bug",
        "replace-undecodable",
    ];
    let (code, report) = check_json_in(workbook(), &["--only", "invalid-utf8"], "kv-server", &command);
    assert_eq!(report["total"], 1, "{report:#}");
    assert_caught_in(code, report, "invalid-utf8", "never replace bytes");
}

/// A key-value client that ends its command with `\r\n`, and reports its own errors on stdout,
/// is correct too.
#[test]
fn a_kv_client_that_chooses_differently_passes_with_notes() {
    let client = fixture("kv_client.py");
    let (code, report) = check_json(
        "kv-client",
        &[
            "python3",
            &client,
            "--port",
            "{port}",
            "--choice",
            "crlf",
            "--choice",
            "errors-on-stdout",
        ],
    );
    let crlf = NOTE_COMMAND_ENDS_WITH_CRLF;
    let both = format!("{crlf}; {NOTE_ERROR_ON_STDOUT}");
    assert_passes_with_notes(
        &report,
        code,
        &[
            ("set", crlf),
            ("get", crlf),
            ("get-missing", crlf),
            ("bare-error", crlf),
            ("value-with-spaces", crlf),
            ("delete", crlf),
            ("no-reply", &both),
            ("connection-refused", NOTE_ERROR_ON_STDOUT),
        ],
    );
}

#[test]
fn the_text_report_shows_the_conversation_the_difference_and_the_hint() {
    let echo = fixture("echo_server.py");
    let output = workbook()
        .args([
            "check",
            "echo-server",
            "--timeout",
            "1",
            "--only",
            "greeting",
            "--",
        ])
        .args(["python3", &echo, "{port}", "--bug", "no-prefix"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    for expected in [
        "✗ greeting",
        r#"c1 > "Hello, world!\n""#,
        r#"c1 < "Hello, world!\n""#,
        r#"expected: bytes: "Echo: Hello, world!\n" (20 bytes)"#,
        r#"first difference at byte 0: expected "E" (0x45), got "H" (0x48)"#,
        "hint: ",
        "0 of 1 scenarios passed",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn usage_problems_exit_with_code_2_and_say_why() {
    let echo = fixture("echo_server.py");
    let stderr = |args: &[&str]| {
        let out = workbook().args(args).assert().code(2).get_output().stderr.clone();
        String::from_utf8(out).unwrap()
    };
    assert!(stderr(&["check", "no-such-step", "--", "x", "{port}"]).contains("workbook list"));
    assert!(stderr(&["check", "echo-server", "--", "python3", &echo, "12345"]).contains("{port}"));
    assert!(
        stderr(&["check", "echo-server", "--", "/no/such/program", "{port}"]).contains("could not start")
    );
}

/// Nothing the checker started may outlive it, also when it is interrupted with Ctrl-C.
#[test]
fn ctrl_c_stops_the_program_under_test() {
    let echo = fixture("echo_server.py");
    let marker = format!("ctrl-c-marker-{}", std::process::id());
    let mut checker = StdCommand::new(env!("CARGO_BIN_EXE_workbook"))
        .args(["check", "echo-server", "--timeout", "30", "--"])
        .args(["python3", &echo, "{port}", "--bug", "hang", "--tag"])
        .arg(&marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the hanging server is up, then interrupt the checker.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !program_running(&marker) {
        assert!(Instant::now() < deadline, "the fixture never started");
        std::thread::yield_now();
    }
    unsafe { libc::kill(checker.id() as i32, libc::SIGINT) };
    let status = checker.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let survivors = programs_with(&marker);
    assert!(
        survivors.is_empty(),
        "the program under test outlived the checker: {survivors:?}"
    );
}

/// Is a process other than the checker, whose command line holds `marker`, running? (The
/// checker's own command line holds the marker too.)
fn program_running(marker: &str) -> bool {
    !programs_with(marker).is_empty()
}

/// The processes other than the checker whose command line holds `marker`, with their status
/// lines (state, parent, process group) for a helpful failure message.
fn programs_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let program = cmdline.split(' ').next().unwrap_or("");
        if !program.ends_with("workbook") && cmdline.contains(marker) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            found.push(format!("{cmdline} [{}]", stat.trim()));
        }
    }
    found
}

/// A class of six: a correct solution, a hanging one, a crashing one, a missing commands file, a
/// command that does not exist, and a correct time server that makes other choices than the
/// lesson (the seed's). The table is complete, the notes are in it, and nothing is left running.
#[test]
fn grade_builds_a_complete_table_and_leaves_nothing_running() {
    let class = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("class-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&class);
    let marker = format!("grade-marker-{}", std::process::id());
    let echo = fixture("echo_server.py");
    let time = fixture("time_server.py");
    let seed_time = fixture("seed_time_server.py");
    let students: [(&str, Option<String>); 6] = [
        (
            "alice",
            Some(format!(
                "# alice's steps\necho-server: python3 {echo} {{port}}\ntime-server: python3 {time} --port {{port}}\n"
            )),
        ),
        (
            "bob",
            Some(format!(
                "echo-server: python3 {echo} {{port}} --bug hang --tag {marker}\ntime-server: python3 {time} --port {{port}} --bug one-client\n"
            )),
        ),
        (
            "carol",
            Some(format!(
                "echo-server: python3 {echo} {{port}} --bug text\nkv-sever: whatever\n"
            )),
        ),
        ("dave", None),
        (
            "erin",
            Some("echo-server: ./no-such-program {port}\n".to_string()),
        ),
        (
            "frank",
            Some(format!("time-server: python3 {seed_time} {{port}}\n")),
        ),
    ];
    for (name, commands) in &students {
        let dir = class.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(commands) = commands {
            std::fs::write(dir.join("workbook-commands.txt"), commands).unwrap();
        }
    }
    let output = workbook()
        .args(["grade", "--per-student", "30", "--timeout", "0.5", "--jobs", "2"])
        .arg(&class)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(output).unwrap();
    // Recorded for the instructors' chapter of the book.
    insta::assert_snapshot!("grade-table", table);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("{name}:\n{table}"))
    };
    assert!(
        table.starts_with("| student | echo-server | time-server | total | notes |"),
        "{table}"
    );
    assert!(row("alice").starts_with("| alice | 4/4 | 2/2 | 6/6 |"), "{table}");
    assert!(row("bob").starts_with("| bob | 0/4 | 1/2 | 1/6 |"), "{table}");
    assert!(row("carol").starts_with("| carol | 3/4 | — | 3/4 |"), "{table}");
    assert!(row("carol").contains("unknown step \"kv-sever\""), "{table}");
    assert!(row("dave").contains("no workbook-commands.txt"), "{table}");
    assert!(row("erin").starts_with("| erin | 0/4 |"), "{table}");
    // Notes are remarks, not lost points.
    let frank_notes =
        format!("time-server: {NOTE_TIME_WITHOUT_OFFSET}; time-server: {NOTE_TIME_WITHOUT_NEWLINE}");
    assert_eq!(
        row("frank"),
        format!("| frank | — | 2/2 | 2/2 | {frank_notes} |"),
        "{table}"
    );

    let csv = std::fs::read_to_string(class.join("grades.csv")).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("student,echo-server,time-server,passed,total,notes")
    );
    assert!(csv.lines().any(|l| l == "alice,4/4,2/2,6,6,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l == format!("frank,—,2/2,2,2,\"{}\"", frank_notes.replace('"', "\"\""))),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 7, "{csv}");

    assert!(
        !program_running(&marker),
        "a hanging submission outlived the grading"
    );
    std::fs::remove_dir_all(&class).unwrap();
}

/// The report a learner sees, recorded for the book: with the fixture's folder and the timing
/// replaced by stable text.
fn recorded_report(step: &str, only: &str, command: &[&str]) -> String {
    recorded_report_with_code(1, step, only, command)
}

fn recorded_report_with_code(code: i32, step: &str, only: &str, command: &[&str]) -> String {
    let output = workbook()
        .args(["check", step, "--timeout", "1", "--only", only, "--"])
        .args(command)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let folder = format!(
        "{}/",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .display()
    );
    let timing = regex::Regex::new(r"\(\d+\.\d s\)").unwrap();
    timing
        .replace_all(&text.replace(&folder, ""), "(<seconds>)")
        .into_owned()
}

#[test]
fn report_of_an_echo_server_without_the_prefix() {
    let echo = fixture("echo_server.py");
    let report = recorded_report(
        "echo-server",
        "greeting",
        &["python3", &echo, "{port}", "--bug", "no-prefix"],
    );
    insta::assert_snapshot!("report-echo-no-prefix", report);
}

/// Every mistake the KV fixtures can make is caught, in the scenario that tests for it, with a
/// hint that names the mistake.
#[test]
fn broken_kv_servers_in_python_are_caught_with_the_right_hint() {
    let server = fixture("kv_server.py");
    let run = |bug: &'static str| ["python3", server.as_str(), "--port", "{port}", "--bug", bug];
    for (bug, scenario, hint_words) in [
        ("missing-empty-line", "missing-key", "not an empty line"),
        ("one-read", "command-in-one-byte-writes", "across several reads"),
        (
            "one-read",
            "pipelined-commands",
            "several commands can arrive in one read",
        ),
        (
            "first-line-only",
            "pipelined-commands",
            "several commands can arrive in one read",
        ),
        (
            "close-after-one",
            "set-get-delete",
            "closed the connection after answering",
        ),
        ("first-word-value", "value-with-spaces", "spaces included"),
        ("no-newline", "set-get-delete", "no newline at the end"),
        (
            "store-per-connection",
            "shared-between-connections",
            "create it once",
        ),
        ("crash-on-unknown", "unknown-command", "crashed"),
    ] {
        assert_caught("kv-server", &run(bug), scenario, hint_words);
    }
}

/// The same check for a solution in plain Rust, built the way a learner would build it.
#[test]
fn broken_kv_servers_in_rust_are_caught_with_the_right_hint() {
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kv_server_fixture");
    let built = StdCommand::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2021", "-O", "-o"])
        .arg(&binary)
        .arg(fixture("kv_server.rs"))
        .status()
        .unwrap();
    assert!(built.success(), "could not compile tests/fixtures/kv_server.rs");
    let program = binary.display().to_string();
    let (code, report) = check_json("kv-server", &[&program, "--port", "{port}"]);
    assert_eq!(code, 0, "the correct Rust solution must pass: {report:#}");
    let run = |bug: &'static str| [program.as_str(), "--port", "{port}", "--bug", bug];
    assert_caught(
        "kv-server",
        &run("no-newline"),
        "set-get-delete",
        "no newline at the end",
    );
    assert_caught(
        "kv-server",
        &run("store-per-connection"),
        "shared-between-connections",
        "create it once",
    );
    assert_caught(
        "kv-server",
        &run("close-after-one"),
        "set-get-delete",
        "closed the connection after answering",
    );
    assert_caught(
        "kv-server",
        &run("one-read"),
        "pipelined-commands",
        "several commands can arrive in one read",
    );
}

#[test]
fn broken_kv_clients_are_caught_with_the_right_hint() {
    let client = fixture("kv_client.py");
    let run = |bug: &'static str| ["python3", client.as_str(), "--port", "{port}", "--bug", bug];
    assert_caught("kv-client", &run("no-newline"), "set", "no newline at the end");
    assert_caught(
        "kv-client",
        &run("exit-zero-on-error"),
        "get-missing",
        "exit with code 1",
    );
}

/// A correct KV server in Python is checked in well under the 3 s a learner should wait.
#[test]
fn checking_a_correct_kv_server_is_quick() {
    let server = fixture("kv_server.py");
    let (code, report) = check_json("kv-server", &["python3", &server, "--port", "{port}"]);
    assert_eq!(code, 0, "{report:#}");
    let seconds = report["seconds"].as_f64().unwrap();
    // Not a timing test of the checker's speed (that is reported in the notes), only a guard
    // against a check that waits for timeouts on a correct program.
    assert!(seconds < 20.0, "checking a correct server took {seconds} s");
}

#[test]
fn report_of_a_kv_server_that_keeps_only_the_first_word() {
    let server = fixture("kv_server.py");
    let report = recorded_report(
        "kv-server",
        "value-with-spaces",
        &[
            "python3",
            &server,
            "--port",
            "{port}",
            "--bug",
            "first-word-value",
        ],
    );
    insta::assert_snapshot!("report-kv-first-word-value", report);
}

/// A note, as a learner sees it: the ✓, the note under it, and the count.
#[test]
fn report_of_a_kv_server_that_refuses_empty_values() {
    let server = fixture("kv_server.py");
    let report = recorded_report_with_code(
        0,
        "kv-server",
        "empty-value",
        &[
            "python3",
            &server,
            "--port",
            "{port}",
            "--choice",
            "refuse-empty-value",
        ],
    );
    assert!(
        report.contains("  ✓ empty-value  ")
            && report.contains(&format!("      note: {NOTE_EMPTY_VALUE_REFUSED}\n")),
        "{report}"
    );
    assert!(
        report.contains("1 of 1 scenarios passed, 1 of them with a note"),
        "{report}"
    );
    insta::assert_snapshot!("report-kv-empty-value-refused", report);
}
