//! Lesson 10 against its scenarios over real loopback UDP sockets; its client against its
//! server and against a port where nothing listens; and the TCP side of "three sends", shown with
//! lesson 04's lockstep connection.

use std::io::Read;
use std::net::UdpSocket;
use std::process::Command as StdCommand;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use socket_workbook::escape::escape_bytes;
use socket_workbook::harness::{client_story, run_lesson, start_lesson};
use socket_workbook::lockstep;
use socket_workbook::scenarios::udp;

const LESSON: &str = env!("CARGO_BIN_EXE_10_udp_echo");

#[test]
fn every_scenario_matches_its_snapshot() {
    for scenario in udp::all().into_iter().chain(udp::lesson_only()) {
        insta::assert_snapshot!(scenario.name, run_lesson(LESSON, &["server"], &scenario));
    }
}

/// The TCP side of "three sends": three writes, and the receiver's one `read` returns all of
/// them as one run of bytes. Lesson 04's lockstep connection lets the receiver read only once
/// the sender's turn is over, so this is the same on every run.
#[test]
fn three_tcp_writes_can_be_read_as_one() {
    let story = Arc::new(Mutex::new(vec![
        "TCP: the sender writes three times before the receiver reads".to_string(),
    ]));
    let say = {
        let story = Arc::clone(&story);
        move |line: String| story.lock().unwrap().push(line)
    };
    let (mut sender, mut receiver) = lockstep::connect().unwrap();
    thread::scope(|scope| {
        let say_sender = say.clone();
        let sending = scope.spawn(move || -> std::io::Result<()> {
            sender.start_turn()?;
            for message in ["one", "two", "three"] {
                say_sender(format!(
                    "  sender   writes {} bytes: {}",
                    message.len(),
                    escape_bytes(message.as_bytes())
                ));
                sender.write(message.as_bytes())?;
            }
            sender.end_turn()?;
            sender.start_turn()?;
            say_sender("  sender   closes the connection".to_string());
            sender.close()
        });
        let mut buf = [0u8; 1024];
        loop {
            let n = receiver.read(&mut buf).unwrap();
            say(format!(
                "  receiver read() with room for 1024 bytes returns {n}: {}",
                escape_bytes(&buf[..n])
            ));
            if n == 0 {
                break;
            }
        }
        sending.join().unwrap().unwrap();
    });
    let story = story.lock().unwrap().join("\n") + "\n";
    insta::assert_snapshot!("tcp-three-writes", story);
}

/// `10_udp_echo client` run with `args`: what it printed on stdout and stderr (with the server's
/// port as `<port>`) and its exit code.
fn run_client(port: u16, args: &[&str]) -> (String, String, Option<i32>) {
    let output = StdCommand::new(LESSON)
        .args(["client", "--port", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    let tokens = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&port.to_string(), "<port>");
    (
        tokens(&output.stdout),
        tokens(&output.stderr),
        output.status.code(),
    )
}

#[test]
fn the_client_gets_one_reply_per_message() {
    let server = start_lesson(LESSON, &["server"]).unwrap();
    let (stdout, stderr, code) = run_client(server.addr().port(), &["one", "two", "three"]);
    assert_eq!((stderr.as_str(), code), ("", Some(0)));
    // Every datagram is logged before its reply is sent: the log is complete here.
    assert!(server.wait_for_output("sent 5 bytes", Duration::from_secs(5)));
    insta::assert_snapshot!(
        "client-round-trip",
        client_story("10_udp_echo client --port <port> one two three", &stdout, server)
    );
}

/// A UDP port nobody has bound: taken from the kernel, then let go.
fn unbound_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client_run_story(shown: &str, (stdout, stderr, code): (String, String, Option<i32>)) -> String {
    let mut story = format!("$ {shown}\n{stdout}");
    for line in stderr.lines() {
        story.push_str(&format!("[stderr] {line}\n"));
    }
    story.push_str(&format!(
        "exit code {}\n",
        code.map_or("none".to_string(), |c| c.to_string())
    ));
    story
}

/// A *connected* UDP socket hears about the ICMP "port unreachable" its datagram caused: the
/// client's `recv` fails with ECONNREFUSED at once, and it says nothing listens there.
#[test]
fn a_connected_client_is_told_nothing_listens() {
    let port = unbound_udp_port();
    let run = run_client(port, &["anyone there?"]);
    assert_eq!(run.2, Some(3), "{run:?}");
    assert!(run.1.contains("ECONNREFUSED"), "{run:?}");
    insta::assert_snapshot!(
        "client-connected-refused",
        client_run_story("10_udp_echo client --port <port> \"anyone there?\"", run)
    );
}

/// An unconnected socket is told nothing: the client waits its whole timeout, then gives up.
#[test]
fn an_unconnected_client_hears_nothing_and_gives_up() {
    let port = unbound_udp_port();
    let run = run_client(port, &["--unconnected", "--timeout-ms", "300", "anyone there?"]);
    assert_eq!(run.2, Some(4), "{run:?}");
    insta::assert_snapshot!(
        "client-unconnected-silence",
        client_run_story(
            "10_udp_echo client --port <port> --unconnected --timeout-ms 300 \"anyone there?\"",
            run
        )
    );
}

/// A message longer than the protocol's largest datagram is refused before anything is sent.
#[test]
fn the_client_refuses_a_message_longer_than_the_largest_datagram() {
    let port = unbound_udp_port();
    let long = "x".repeat(udp::MAX_DATAGRAM + 1);
    let (stdout, stderr, code) = run_client(port, &[&long]);
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "", "nothing was sent");
    assert!(
        stderr.contains("1025 bytes") && stderr.contains("1024"),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_is_reported_clearly() {
    // Holding this socket keeps the UDP port busy for the duration of the test.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::new(LESSON)
        .args(["server", "--port", &port.to_string()])
        .timeout(Duration::from_secs(10))
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8_lossy(&output.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

/// The server over IPv6 loopback, with the harness's clients on `::1` too.
#[test]
fn it_serves_over_ipv6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this machine has no IPv6 loopback");
        return;
    }
    let scenario = udp::two_clients();
    let story = run_lesson(LESSON, &["server", "--host", "::1"], &scenario);
    assert!(story.contains("listening on [::1]:<port>"), "{story}");
    assert!(story.contains("<c2> sent 7 bytes: \"from c2\""), "{story}");
}

/// `nc -u`, the tool the chapter uses, gets its line back.
#[test]
#[ignore = "slow: runs nc, a program from outside the workbook"]
fn nc_gets_its_line_back() {
    if StdCommand::new("nc").arg("-h").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nc is missing: .ci/run installs netcat-openbsd"
        );
        eprintln!("SKIPPED: nc is not installed (apt-get install netcat-openbsd)");
        return;
    }
    let server = start_lesson(LESSON, &["server"]).unwrap();
    let port = server.addr().port().to_string();
    // `-w 1`: nc stops one second after its input ended and nothing more arrived; the reply
    // comes back long before.
    let output = Command::new("nc")
        .args(["-u", "-w", "1", "127.0.0.1", &port])
        .write_stdin("hello over UDP\n")
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello over UDP\n");
    assert!(server.wait_for_output("sent 15 bytes", Duration::from_secs(5)));
}
