//! The book's figures, drawn as SVG by code in this repository: no script, no plugin, so they
//! render offline, in print, and in every mdBook theme.
//!
//! - [`sequence`]: sequence diagrams, generated from the recorded transcripts
//!   (`tests/snapshots/*.snap`), so they cannot drift from what the lessons do.
//! - [`hand`]: the few figures no recording can give (a connection's life, a reset, the buffers
//!   behind back-pressure, lesson 08's phases), described in Rust and drawn the same way.
//! - [`plot`]: the benchmark's recorded results (`benches/results/*.json`) as plots.
//! - [`svg`]: the small SVG writer they share.
//!
//! [`FIGURES`] lists every figure once: where it comes from, where it goes, and its alt text,
//! which is also the SVG's `<title>`. `cargo run --bin workbook -- diagrams` writes them all
//! into `book/src/diagrams/`; `tests/diagrams.rs` fails when a committed figure differs from what
//! this code draws now, or a chapter's `<img>` does not match the list.

pub mod hand;
pub mod plot;
pub mod sequence;
pub mod svg;

use std::path::{Path, PathBuf};

/// Where a figure comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A recorded transcript: the file's name in `tests/snapshots/`, without `.snap`.
    Snapshot(&'static str),
    /// A transcript in any other file, relative to the repository (packet captures normalised
    /// to lines like `c1 > SYN`, for example).
    Transcript(&'static str),
    /// A hand-made figure: the function that draws it, given its title.
    Hand(fn(&str) -> String),
    /// A plot of the benchmark's recordings in `benches/results/`; `None` while no recording has
    /// the runs it needs.
    Plot(fn(&[plot::Recording], &str) -> Option<String>),
}

/// One figure of the book.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// The file under `book/src/diagrams/`, which is also what a chapter's `<img src>` names
    /// after `diagrams/`.
    pub file: &'static str,
    pub source: Source,
    /// What the figure shows, in words: the `<img alt>` of the chapter and the SVG's `<title>`.
    pub alt: &'static str,
}

/// Where the figures go, relative to the repository.
pub const DIAGRAMS_DIR: &str = "book/src/diagrams";
/// Where the benchmark's recordings are, relative to the repository.
pub const RESULTS_DIR: &str = "benches/results";
/// The command that redraws every figure.
pub const REDRAW: &str = "cargo run --bin workbook -- diagrams";

const fn snapshot(file: &'static str, snap: &'static str, alt: &'static str) -> Figure {
    Figure {
        file,
        source: Source::Snapshot(snap),
        alt,
    }
}

/// Every figure of the book. A new lesson's diagram is one more entry here, for example
///
/// ```text
/// snapshot("10-echo.svg", "10_udp_echo__one-datagram", "Sequence diagram: c1 sends ..."),
/// ```
///
/// then `REDRAW`, then `<img class="diagram" src="diagrams/10-echo.svg" alt="...">` (the same
/// alt text) in its chapter. `tests/diagrams.rs` checks the three agree.
pub const FIGURES: &[Figure] = &[
    // Recorded conversations, one or more per lesson chapter.
    snapshot(
        "01-greeting.svg",
        "01_echo_server__greeting",
        "Sequence diagram: client c1 connects to the echo server, sends Hello, world! with a newline, receives it back after Echo: and closes; the server exits.",
    ),
    snapshot(
        "01-half-close.svg",
        "01_echo_server__half-close",
        "Sequence diagram: c1 sends last words with a newline, shuts down its write half, still receives the echo, then sees the server close the connection.",
    ),
    snapshot(
        "02-round-trip.svg",
        "02_echo_client__client-round-trip",
        "Sequence diagram: the echo client connects, sends hello checker, ends its stream, receives Echo: hello checker, sees the server close, and exits 0.",
    ),
    snapshot(
        "03-three-clients.svg",
        "03_time_server__three-clients",
        "Sequence diagram: three clients connect one after another; each receives the time and sees the server close the connection.",
    ),
    snapshot(
        "04-split-into-single-bytes.svg",
        "04_length_prefix__split-into-single-bytes",
        "Sequence diagram: c1 sends a 9-byte frame one byte per write (four header bytes, then Hello); the server answers with the whole frame in one piece.",
    ),
    snapshot(
        "04-two-frames-in-one-write.svg",
        "04_length_prefix__two-frames-in-one-write",
        "Sequence diagram: c1 sends two frames in a single write; the server echoes them as two frames.",
    ),
    snapshot(
        "05-pipelined-commands.svg",
        "05_kv_server__pipelined-commands",
        "Sequence diagram: c1 sends SET, GET and DELETE in one write and receives three replies, OK, apple and OK, in order.",
    ),
    snapshot(
        "05-line-too-long.svg",
        "05_kv_server__line-too-long",
        "Sequence diagram: c1 sends 65537 bytes without a newline, receives ERROR line too long and sees the server close; a second client c2 is then served.",
    ),
    snapshot(
        "06-set.svg",
        "06_kv_client__client-set",
        "Sequence diagram: the key-value client connects, sends one line SET a 1, receives OK, ends its stream and exits 0.",
    ),
    snapshot(
        "07-lesson-05-idle-client-blocks.svg",
        "07_kv_server_threads__lesson-05-idle-client-blocks",
        "Sequence diagram, lesson 05's server: c1 stays connected and silent; c2 sends GET a and receives nothing for 1 second, until c1 closes.",
    ),
    snapshot(
        "07-idle-client-does-not-block.svg",
        "07_kv_server_threads__idle-client-does-not-block",
        "Sequence diagram, lesson 07's server: c1 stays connected and silent; c2 sends GET a and is answered at once; c1 is still served afterwards.",
    ),
    snapshot(
        "08-client-not-reading.svg",
        "08_kv_server_events__client-not-reading-does-not-block",
        "Sequence diagram, lesson 08's server: c1 stores a 50 KB value, asks for it 400 times and reads nothing; c2 connects and is answered at once.",
    ),
    snapshot(
        "09-reset-then-answer.svg",
        "09_kv_client_robust__checker-reset-then-answer",
        "Sequence diagram: the robust client sends GET a, the server resets the connection (RST); the client connects again, repeats GET a, receives 1 and exits 0.",
    ),
    snapshot(
        "10-two-clients.svg",
        "10_udp_echo__two-clients",
        "Sequence diagram, lesson 10's UDP server: c1 and c2 each send a datagram from their own socket and each gets its own reply back as a datagram; c2 receives nothing more.",
    ),
    snapshot(
        "10-truncated.svg",
        "10_udp_echo__truncated",
        "Sequence diagram: c1 sends a 2000-byte datagram to a server with a 1024-byte buffer and receives only the first 1024 bytes back; the next datagram, next, comes back whole.",
    ),
    snapshot(
        "11-ignores-other-replies.svg",
        "11_udp_kv__checker-ignores-other-replies",
        "Sequence diagram: the client sends its request GET greeting with an id; the checker's server answers with another id, then without an id, then twice with the right id; the client prints hello once and exits 0.",
    ),
    snapshot(
        "12-idle-client-does-not-block.svg",
        "12_kv_server_epoll__idle-client-does-not-block",
        "Sequence diagram, lesson 12's epoll server: c1 stores a 1 and stays connected; c2 connects, sends GET a and is answered at once; c1 is served afterwards; Ctrl-C ends the server.",
    ),
    snapshot(
        "13-set-get-del.svg",
        "13_resp_server__set-get-del",
        "Sequence diagram: c1 sends SET, GET, DEL and GET as RESP arrays of bulk strings and receives +OK, the bulk string Paris, the integer 1, and the nil bulk string.",
    ),
    // Packets captured on loopback (`tests/wire.rs`), for "Watching the wire".
    Figure {
        file: "wire-handshake-echo-close.svg",
        source: Source::Transcript("book/src/wire/handshake-echo-close.txt"),
        alt: "Packet diagram captured on loopback: SYN, SYN ACK, ACK; the client's 6 bytes and their ACK; the server's 12 bytes and their ACK; FIN ACK each way and a last ACK.",
    },
    Figure {
        file: "wire-close-with-unread-data.svg",
        source: Source::Transcript("book/src/wire/close-with-unread-data.txt"),
        alt: "Packet diagram captured on loopback: the same handshake and echo, then the client closes with the 12-byte echo unread and its kernel sends RST instead of FIN.",
    },
    Figure {
        file: "wire-zero-window.svg",
        source: Source::Transcript("book/src/wire/zero-window.txt"),
        alt: "Packet diagram captured on loopback: lesson 08 sends a large reply to a client that stops reading; the client's ACKs announce window 0 until it reads again, then the rest flows and both sides close with FIN.",
    },
    // Hand-made: what no recording shows.
    Figure {
        file: "hand/tcp-connection-life.svg",
        source: Source::Hand(hand::tcp_connection_life),
        alt: "Sequence diagram of one TCP connection's packets: SYN, SYN ACK, ACK when connect and accept meet; data and its ACK for a write; a FIN and its ACK each way for shutdown or close; then TIME_WAIT on the side that closed first.",
    },
    Figure {
        file: "hand/close-with-unread-data.svg",
        source: Source::Hand(hand::close_with_unread_data),
        alt: "Sequence diagram: the server closes its socket while a command it never read is still in its receive buffer, so its kernel sends RST instead of FIN, and the client's next read fails with ECONNRESET.",
    },
    Figure {
        file: "hand/back-pressure-buffers.svg",
        source: Source::Hand(hand::back_pressure_buffers),
        alt: "Four boxes from left to right: the server program, its send buffer, the client's receive buffer, the client program. The client stops reading, so both buffers are full, a window of 0 travels back, and the server's write waits.",
    },
    Figure {
        file: "hand/08-phases.svg",
        source: Source::Hand(hand::lesson_08_phases),
        alt: "State diagram of a connection in lesson 08: Serving, then ClientFinished when read returns 0, or SendingLastReply after a line over 64 KiB, then Draining after shutdown; each ends in close.",
    },
    // Benchmarks.
    Figure {
        file: "plots/kv-bench-depth.svg",
        source: Source::Plot(plot::by_depth),
        alt: "Two line plots of the recorded benchmark: commands per second and p99 latency at pipeline depths 1 and 16, for lesson 07, lesson 08, Redis in RESP and Redis inline.",
    },
    Figure {
        file: "plots/kv-bench-idle.svg",
        source: Source::Plot(plot::by_idle_connections),
        alt: "Two line plots of the recorded benchmark: commands per second and p99 latency against the number of idle connections, for each server.",
    },
];

/// The repository this library was built from: where the snapshots, results and book are.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Draws `figure` from the files under `root`. `Ok(None)`: a plot with no data for it yet.
pub fn draw(figure: &Figure, root: &Path, recordings: &[plot::Recording]) -> Result<Option<String>, String> {
    match figure.source {
        Source::Snapshot(name) => {
            let path = root.join("tests/snapshots").join(format!("{name}.snap"));
            let text = std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
            Ok(Some(sequence::from_transcript(&text).render(figure.alt)))
        }
        Source::Transcript(file) => {
            let path = root.join(file);
            let text = std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
            Ok(Some(sequence::from_transcript(&text).render(figure.alt)))
        }
        Source::Hand(draw) => Ok(Some(draw(figure.alt))),
        Source::Plot(draw) => Ok(draw(recordings, figure.alt)),
    }
}

/// Every figure as it should be now: its path under `root`, and its text (`None`: it should not
/// exist yet, a plot without data).
pub fn expected(root: &Path) -> Result<Vec<(PathBuf, Option<String>)>, String> {
    // `kv_bench --idle` records into `idle/`; those come first, so that the plot against pipeline
    // depth keeps to the main recording (newest last) and the idle plot finds the idle one.
    let mut recordings = Vec::new();
    let idle_dir = format!("{RESULTS_DIR}/idle");
    if root.join(&idle_dir).is_dir() {
        recordings.extend(plot::recordings(root, &idle_dir)?);
    }
    recordings.extend(plot::recordings(root, RESULTS_DIR)?);
    FIGURES
        .iter()
        .map(|figure| {
            Ok((
                root.join(DIAGRAMS_DIR).join(figure.file),
                draw(figure, root, &recordings)?,
            ))
        })
        .collect()
}

/// Writes every figure under `root`, and removes a plot whose data is gone. Returns the files
/// written, changed or not.
pub fn write_all(root: &Path) -> Result<Vec<PathBuf>, String> {
    write_where(root, |_| true)
}

/// Writes only the plots (what the benchmark calls after it records).
pub fn write_plots(root: &Path) -> Result<Vec<PathBuf>, String> {
    write_where(root, |figure| matches!(figure.source, Source::Plot(_)))
}

fn write_where(root: &Path, wanted: impl Fn(&Figure) -> bool) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (figure, (path, text)) in FIGURES.iter().zip(expected(root)?) {
        if !wanted(figure) {
            continue;
        }
        match text {
            Some(text) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
                }
                std::fs::write(&path, text).map_err(|err| format!("{}: {err}", path.display()))?;
                written.push(path);
            }
            None if path.exists() => {
                std::fs::remove_file(&path).map_err(|err| format!("{}: {err}", path.display()))?;
            }
            None => {}
        }
    }
    Ok(written)
}

/// What differs between the committed figures under `root` and what this code draws now, one
/// line per figure, naming the command that fixes it. Empty when everything is up to date.
pub fn stale(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (path, text) in expected(root)? {
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let committed = std::fs::read_to_string(&path).ok();
        match (text, committed) {
            (Some(text), Some(committed)) if text == committed => {}
            (Some(_), Some(_)) => problems.push(format!(
                "{shown} is stale: its transcript, data or drawing code changed; run `{REDRAW}` and commit it"
            )),
            (Some(_), None) => problems.push(format!("{shown} is missing; run `{REDRAW}` and commit it")),
            (None, Some(_)) => problems.push(format!(
                "{shown} exists, but no recording has the data to draw it; run `{REDRAW}` to remove it"
            )),
            (None, None) => {}
        }
    }
    Ok(problems)
}
