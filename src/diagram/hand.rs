//! The figures that no recording can draw, described here and drawn by the same writer as the
//! recorded ones: the life of a TCP connection with the calls that cause each packet, a close
//! that resets, the buffers behind back-pressure, and lesson 08's connection phases.
//!
//! These are descriptions of how TCP and lesson 08 behave, written by hand, so they can drift
//! from the truth where a generated diagram cannot: each says where it comes from, and the
//! "Watching the wire" captures and lesson 08's code are what to check them against.

use super::sequence::{Kind, Row, Sequence};
use super::svg::{self, Anchor, Svg};

fn arrow(from: usize, to: usize, label: &str, kind: Kind, from_note: &str, to_note: &str) -> Row {
    let note = |text: &str| (!text.is_empty()).then(|| text.to_string());
    Row::Arrow {
        from,
        to,
        label: label.to_string(),
        kind,
        from_note: note(from_note),
        to_note: note(to_note),
    }
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// The life of one TCP connection: the handshake, data and its acknowledgement, a FIN each way,
/// TIME_WAIT; beside each packet, the call that sent it and what the other side's calls see.
pub fn tcp_connection_life(title: &str) -> String {
    use Kind::*;
    let rows = vec![
        Row::Note {
            at: SERVER,
            text: "socket(), bind(), listen(): nothing is sent".into(),
        },
        arrow(
            CLIENT,
            SERVER,
            "SYN",
            Connect,
            "connect() sends SYN and waits",
            "",
        ),
        arrow(
            SERVER,
            CLIENT,
            "SYN ACK",
            Connect,
            "the kernel answers; no call needed",
            "",
        ),
        arrow(
            CLIENT,
            SERVER,
            "ACK",
            Data,
            "connect() returns",
            "connection waits in the accept queue; accept() returns it",
        ),
        arrow(
            CLIENT,
            SERVER,
            "PSH ACK \"hi\\n\" (3 bytes)",
            Data,
            "write(\"hi\\n\") returns at once",
            "read() returns \"hi\\n\"",
        ),
        arrow(SERVER, CLIENT, "ACK", Data, "the kernel acknowledges", ""),
        arrow(
            CLIENT,
            SERVER,
            "FIN ACK",
            End,
            "shutdown(Write) or close()",
            "read() returns 0: end of stream",
        ),
        arrow(SERVER, CLIENT, "ACK", Data, "", ""),
        arrow(
            SERVER,
            CLIENT,
            "FIN ACK",
            End,
            "close()",
            "read() returns 0 (if still open)",
        ),
        arrow(CLIENT, SERVER, "ACK", Data, "", "the connection is gone"),
        Row::Gap {
            at: CLIENT,
            text: "TIME_WAIT: the side that closed first keeps the connection's name for 60 s (Linux)".into(),
        },
    ];
    Sequence {
        participants: vec!["client".into(), "server".into()],
        rows,
        outputs: Vec::new(),
    }
    .render(title)
}

/// A close with bytes still unread: the kernel sends RST instead of FIN, and the peer can lose
/// a reply that had already arrived.
pub fn close_with_unread_data(title: &str) -> String {
    use Kind::*;
    let rows = vec![
        arrow(CLIENT, SERVER, "connect() (handshake)", Connect, "", "accept()"),
        arrow(
            CLIENT,
            SERVER,
            "\"SET a 1\\nGET a\\n\"",
            Data,
            "write() two commands",
            "the server reads only the first command; \"GET a\\n\" stays unread in its receive buffer",
        ),
        arrow(
            SERVER,
            CLIENT,
            "\"OK\\n\"",
            Data,
            "write() the reply",
            "arrives in the client's receive buffer",
        ),
        arrow(
            SERVER,
            CLIENT,
            "RST",
            Reset,
            "close() with unread bytes: the kernel sends RST, not FIN",
            "the next read() fails: ECONNRESET; \"OK\\n\" may be thrown away unread",
        ),
    ];
    Sequence {
        participants: vec!["client".into(), "server".into()],
        rows,
        outputs: Vec::new(),
    }
    .render(title)
}

/// The four places bytes wait between a writer and a reader, when the reader stops reading:
/// its receive buffer fills, the window closes, the writer's send buffer fills, `write` waits.
pub fn back_pressure_buffers(title: &str) -> String {
    let width = 780.0;
    let height = 300.0;
    let mut out = Svg::new(width, height, title);
    let top = 60.0;
    let box_height = 110.0;
    // (x, width, heading, lines, how full from 0 to 1, or None for a program)
    type Stage<'a> = (f64, f64, &'a str, &'a [&'a str], Option<f64>);
    let stages: [Stage; 4] = [
        (
            12.0,
            150.0,
            "server program",
            &[
                "write(reply)",
                "waits (blocking)",
                "or WouldBlock",
                "(non-blocking)",
            ],
            None,
        ),
        (
            212.0,
            160.0,
            "send buffer",
            &["server's kernel", "full: nothing", "may leave"],
            Some(1.0),
        ),
        (
            422.0,
            160.0,
            "receive buffer",
            &["client's kernel", "full: window 0"],
            Some(1.0),
        ),
        (632.0, 136.0, "client program", &["stopped", "reading"], None),
    ];
    for (x, w, heading, lines, full) in stages {
        out.rect(
            x,
            top,
            w,
            box_height,
            svg::INK,
            "none",
            if full.is_some() { "" } else { "5 3" },
        );
        if let Some(full) = full {
            let level = box_height * full;
            out.fill_rect(
                x + 1.0,
                top + box_height - level + 1.0,
                w - 2.0,
                level - 2.0,
                svg::AMBER,
                0.18,
            );
        }
        out.text_sized(
            x + w / 2.0,
            top + 20.0,
            heading,
            Anchor::Middle,
            svg::INK,
            svg::FONT_SIZE,
            true,
        );
        for (i, line) in lines.iter().enumerate() {
            out.text(
                x + w / 2.0,
                top + 42.0 + i as f64 * 16.0,
                line,
                Anchor::Middle,
                svg::MUTED,
            );
        }
    }
    let mid = top + 36.0;
    // Data flows left to right.
    out.arrow(162.0, mid, 212.0, mid, svg::INK, "", false);
    out.text(187.0, mid - 8.0, "copy", Anchor::Middle, svg::INK);
    out.arrow(372.0, mid, 422.0, mid, svg::INK, "", false);
    out.text(397.0, mid - 8.0, "TCP", Anchor::Middle, svg::INK);
    out.arrow(582.0, mid, 632.0, mid, svg::INK, "4 3", false);
    out.text(607.0, mid - 8.0, "read", Anchor::Middle, svg::INK);
    // The window travels back.
    let back = top + box_height - 22.0;
    out.arrow(422.0, back, 372.0, back, svg::RED, "", false);
    out.text(397.0, back + 18.0, "win 0", Anchor::Middle, svg::RED);
    out.arrow(212.0, back, 162.0, back, svg::RED, "", false);
    out.text(187.0, back + 18.0, "wait", Anchor::Middle, svg::RED);
    out.text(
        width / 2.0,
        30.0,
        "bytes flow left to right; the stop travels right to left",
        Anchor::Middle,
        svg::INK,
    );
    let notes = [
        "1. The client stops reading: its receive buffer fills with replies.",
        "2. Its kernel advertises a window of 0: the server's kernel may send nothing more.",
        "3. The server's send buffer fills; write() waits, or takes fewer bytes, or none.",
        "Lesson 08 then keeps the rest in the client's outbox and stops reading its commands.",
    ];
    for (i, note) in notes.iter().enumerate() {
        out.text(
            12.0,
            top + box_height + 34.0 + i as f64 * 18.0,
            note,
            Anchor::Start,
            svg::INK,
        );
    }
    out.mark("back-pressure");
    out.finish()
}

/// Lesson 08's phases of a connection (`enum Phase`), what each waits for in `poll`, and what
/// moves a connection from one to the next.
pub fn lesson_08_phases(title: &str) -> String {
    let width = 840.0;
    let height = 370.0;
    let mut out = Svg::new(width, height, title);
    struct State {
        x: f64,
        y: f64,
        w: f64,
        name: &'static str,
        waits: &'static str,
    }
    let h = 50.0;
    let w = 250.0;
    let serving = State {
        x: 60.0,
        y: 80.0,
        w,
        name: "Serving",
        waits: "POLLIN (+POLLOUT)",
    };
    let finished = State {
        x: 440.0,
        y: 80.0,
        w,
        name: "ClientFinished",
        waits: "POLLOUT",
    };
    let last = State {
        x: 60.0,
        y: 250.0,
        w,
        name: "SendingLastReply",
        waits: "POLLOUT",
    };
    let draining = State {
        x: 440.0,
        y: 250.0,
        w,
        name: "Draining",
        waits: "POLLIN, and a deadline",
    };
    for state in [&serving, &finished, &last, &draining] {
        out.rect(state.x, state.y, state.w, h, svg::INK, "none", "");
        out.text_sized(
            state.x + state.w / 2.0,
            state.y + 20.0,
            state.name,
            Anchor::Middle,
            svg::INK,
            svg::FONT_SIZE,
            true,
        );
        out.text(
            state.x + state.w / 2.0,
            state.y + 38.0,
            &format!("poll: {}", state.waits),
            Anchor::Middle,
            svg::MUTED,
        );
    }
    // Start: accept().
    let mid = serving.y + h / 2.0;
    out.circle(20.0, mid, 6.0, svg::INK, svg::INK);
    out.arrow(26.0, mid, serving.x, mid, svg::BLUE, "", true);
    out.text(12.0, serving.y - 8.0, "accept()", Anchor::Start, svg::BLUE);
    // End: closed.
    let end = (770.0, 190.0);
    out.circle(end.0, end.1, 9.0, svg::INK, "none");
    out.circle(end.0, end.1, 5.0, svg::INK, svg::INK);
    out.text(end.0 + 14.0, end.1 + 4.0, "closed", Anchor::Start, svg::INK);
    // Serving loops on itself.
    out.polyline(
        &[(150.0, 80.0), (150.0, 52.0), (200.0, 52.0), (200.0, 70.0)],
        svg::INK,
        1.4,
        "",
    );
    out.arrow(200.0, 62.0, 200.0, 80.0, svg::INK, "", false);
    out.text(
        210.0,
        50.0,
        "read, answer whole lines, write what fits",
        Anchor::Start,
        svg::INK,
    );
    // Serving → ClientFinished.
    out.arrow(serving.x + serving.w, mid, finished.x, mid, svg::AMBER, "", false);
    out.text(375.0, mid - 8.0, "read() = 0", Anchor::Middle, svg::AMBER);
    // ClientFinished → end.
    out.polyline(
        &[
            (finished.x + finished.w, mid),
            (end.0, mid),
            (end.0, end.1 - 20.0),
        ],
        svg::INK,
        1.4,
        "",
    );
    out.arrow(end.0, end.1 - 21.0, end.0, end.1 - 10.0, svg::INK, "", false);
    out.text(
        finished.x + 10.0,
        finished.y + h + 18.0,
        "every reply sent: close()",
        Anchor::Start,
        svg::INK,
    );
    // Serving → SendingLastReply.
    out.arrow(
        serving.x + 60.0,
        serving.y + h,
        last.x + 60.0,
        last.y,
        svg::INK,
        "",
        false,
    );
    out.text(
        serving.x + 70.0,
        175.0,
        "a line over 64 KiB: queue",
        Anchor::Start,
        svg::INK,
    );
    out.text(
        serving.x + 70.0,
        190.0,
        "\"ERROR line too long\"",
        Anchor::Start,
        svg::INK,
    );
    // SendingLastReply → Draining.
    let low = last.y + h / 2.0;
    out.arrow(last.x + last.w, low, draining.x, low, svg::AMBER, "", false);
    out.text(375.0, low - 22.0, "outbox empty:", Anchor::Middle, svg::AMBER);
    out.text(375.0, low - 8.0, "shutdown(Write)", Anchor::Middle, svg::AMBER);
    // Draining → end.
    out.polyline(
        &[
            (draining.x + draining.w, low),
            (end.0, low),
            (end.0, end.1 + 20.0),
        ],
        svg::INK,
        1.4,
        "",
    );
    out.arrow(end.0, end.1 + 21.0, end.0, end.1 + 10.0, svg::INK, "", false);
    out.text(
        draining.x + 10.0,
        draining.y + h + 18.0,
        "client closes, 1 MiB discarded,",
        Anchor::Start,
        svg::INK,
    );
    out.text(
        draining.x + 10.0,
        draining.y + h + 33.0,
        "or 250 ms pass: close()",
        Anchor::Start,
        svg::INK,
    );
    // Errors, from any phase.
    out.text(
        12.0,
        height - 12.0,
        "From any phase: a failed read or write (a reset, a broken pipe) closes at once.",
        Anchor::Start,
        svg::RED,
    );
    out.mark("states");
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hand_made_figure_is_a_titled_svg() {
        for (svg, must_show) in [
            (tcp_connection_life("life"), "SYN ACK"),
            (close_with_unread_data("rst"), "RST"),
            (back_pressure_buffers("buffers"), "receive buffer"),
            (lesson_08_phases("phases"), "Draining"),
        ] {
            assert!(svg.starts_with("<svg "), "{svg}");
            assert!(svg.contains("<title>"), "{svg}");
            assert!(svg.contains(must_show), "{svg}");
        }
    }
}
