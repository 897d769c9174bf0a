//! Sequence diagrams: lifelines side by side, time running down, one arrow per event.
//!
//! [`from_transcript`] reads a recorded transcript (a `tests/snapshots/*.snap` file, or the same
//! text inline) and [`Sequence::render`] draws it. The hand-made figures build a [`Sequence`]
//! directly, so both kinds look the same.
//!
//! What a transcript line becomes:
//!
//! | line | drawn as |
//! |---|---|
//! | `c1 connects`, `client connects` | a blue open arrow to the server, "connect()" |
//! | `c1 > "SET a 1\n"` / `c1 < "OK\n"` | a black arrow to / from the server with the bytes, shortened when long |
//! | `c1 >> "ping"` / `c1 << "pong"` | a dashed arrow: one UDP datagram |
//! | `c1 > SYN`, `c1 < SYN ACK`, `c1 > PSH ACK 6 bytes` | a packet from a capture, its flags as the label (coloured as connect, FIN or RST) |
//! | `c1 closes`, `c1 shuts down its write half`, `c1 sees the server close the connection` | an amber arrow: an end of stream |
//! | `c1 sees the server reset the connection`, `server resets the connection (RST)` | a red arrow ending in ✕ |
//! | `c1 receives nothing for 1 s` | a break in the client's lifeline with the wait written beside it |
//! | `c1 stops reading (...)`, `server exits (...)`, ... | a note beside that lifeline |
//! | anything else | a note across the whole diagram, word for word |
//!
//! The lines after `--- server output ---` (or `--- client output ---`, ...) are drawn in a box
//! below the arrows, in the order they were printed. The recording keeps that order but not when
//! each line came relative to the arrows, so the diagram does not place them between arrows.

use super::svg::{self, Anchor, Svg};

/// What kind of arrow an event is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes on a TCP connection (or a packet with data): black, filled head.
    Data,
    /// One UDP datagram: dashed, filled head.
    Datagram,
    /// A connection opening (`connect()`, SYN): blue, open head.
    Connect,
    /// An end of stream (close, shutdown, FIN): amber.
    End,
    /// A reset or a refused connection (RST): red, ending in ✕.
    Reset,
}

impl Kind {
    fn colour(self) -> &'static str {
        match self {
            Kind::Data | Kind::Datagram => svg::INK,
            Kind::Connect => svg::BLUE,
            Kind::End => svg::AMBER,
            Kind::Reset => svg::RED,
        }
    }

    fn legend(self) -> &'static str {
        match self {
            Kind::Data => "bytes",
            Kind::Datagram => "datagram (UDP)",
            Kind::Connect => "connection opens",
            Kind::End => "close, end of stream (FIN)",
            Kind::Reset => "reset (RST)",
        }
    }
}

/// One row of a sequence diagram, top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// An arrow from one lifeline to another (indexes into `participants`), with its label.
    /// `from_note` and `to_note` are written beside the two lifelines: the call that caused the
    /// arrow, and what the other side sees.
    Arrow {
        from: usize,
        to: usize,
        label: String,
        kind: Kind,
        from_note: Option<String>,
        to_note: Option<String>,
    },
    /// A note beside one lifeline.
    Note { at: usize, text: String },
    /// Time passing on one lifeline with nothing arriving: its line is broken and the note says
    /// how long.
    Gap { at: usize, text: String },
    /// A note across the whole diagram.
    Wide { text: String },
}

/// A box of lines below the diagram: what a program printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub heading: String,
    pub lines: Vec<String>,
}

/// A whole sequence diagram.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sequence {
    /// Names of the lifelines, left to right.
    pub participants: Vec<String>,
    pub rows: Vec<Row>,
    pub outputs: Vec<Output>,
}

/// The longest label, in characters, before it is shortened.
const LABEL_MAX: usize = 48;
/// The longest line of a note before it wraps.
const NOTE_WIDTH: usize = 26;
/// At most this many lines of program output are drawn; the rest are counted.
const OUTPUT_LINES_MAX: usize = 14;
/// The longest line of program output drawn, in characters.
const OUTPUT_LINE_MAX: usize = 100;

/// Reads a transcript into a sequence diagram. `text` may be a whole `.snap` file (its insta
/// header is skipped) or just the transcript.
pub fn from_transcript(text: &str) -> Sequence {
    let mut body = text;
    // The insta header: "---\nsource: ...\n---\n".
    if let Some(rest) = text.strip_prefix("---\n")
        && let Some(end) = rest.find("\n---\n")
    {
        body = &rest[end + 5..];
    }
    let mut builder = Builder::default();
    let mut output: Option<Output> = None;
    for line in body.lines() {
        if let Some(heading) = line
            .strip_prefix("--- ")
            .and_then(|rest| rest.strip_suffix(" ---"))
        {
            if let Some(done) = output.take() {
                builder.sequence.outputs.push(done);
            }
            output = Some(Output {
                heading: heading.to_string(),
                lines: Vec::new(),
            });
            continue;
        }
        if let Some(output) = &mut output {
            output.lines.push(line.to_string());
            continue;
        }
        if line.starts_with("# ") || line.starts_with("$ ") || line.trim().is_empty() {
            continue;
        }
        builder.event(line);
    }
    if let Some(done) = output.take() {
        builder.sequence.outputs.push(done);
    }
    builder.finish()
}

#[derive(Default)]
struct Builder {
    sequence: Sequence,
    /// Lines that name no client of their own ("server ...") need a server; clients come first.
    clients: Vec<String>,
}

impl Builder {
    fn client(&mut self, name: &str) -> usize {
        match self.clients.iter().position(|known| known == name) {
            Some(index) => index,
            None => {
                self.clients.push(name.to_string());
                self.clients.len() - 1
            }
        }
    }

    /// The server's index until [`finish`](Builder::finish) knows how many clients there are.
    const SERVER: usize = usize::MAX;

    fn arrow(&mut self, from: usize, to: usize, label: String, kind: Kind) {
        self.sequence.rows.push(Row::Arrow {
            from,
            to,
            label,
            kind,
            from_note: None,
            to_note: None,
        });
    }

    fn note(&mut self, at: usize, text: &str) {
        self.sequence.rows.push(Row::Note {
            at,
            text: text.to_string(),
        });
    }

    fn event(&mut self, line: &str) {
        let server = Self::SERVER;
        let (who, rest) = line.split_once(' ').unwrap_or((line, ""));
        if who == "server" {
            match rest {
                "closes the connection" => {
                    // Needs a client; the client-scenario transcripts have exactly one.
                    let client = self.client("client");
                    self.arrow(server, client, "close()".into(), Kind::End);
                }
                "resets the connection (RST)" => {
                    let client = self.client("client");
                    self.arrow(server, client, "RST".into(), Kind::Reset);
                }
                _ => self.note(server, rest),
            }
            return;
        }
        let is_client = who == "client"
            || (who.len() > 1 && who.starts_with('c') && who[1..].bytes().all(|b| b.is_ascii_digit()));
        if !is_client {
            self.sequence.rows.push(Row::Wide {
                text: line.to_string(),
            });
            return;
        }
        let client = self.client(who);
        if let Some(bytes) = rest.strip_prefix(">> ") {
            self.arrow(client, server, shorten_bytes(bytes), Kind::Datagram);
        } else if let Some(bytes) = rest.strip_prefix("<< ") {
            self.arrow(server, client, shorten_bytes(bytes), Kind::Datagram);
        } else if let Some(sent) = rest.strip_prefix("> ") {
            if sent.starts_with('"') {
                self.arrow(client, server, shorten_bytes(sent), Kind::Data);
            } else {
                self.arrow(client, server, sent.to_string(), packet_kind(sent));
            }
        } else if let Some(received) = rest.strip_prefix("< ") {
            if let Some(bytes) = received.strip_suffix(" then end of stream") {
                self.arrow(server, client, shorten_bytes(bytes), Kind::Data);
                self.arrow(server, client, "close()".into(), Kind::End);
            } else if received.starts_with('"') {
                self.arrow(server, client, shorten_bytes(received), Kind::Data);
            } else if received.starts_with("connection reset") {
                self.arrow(server, client, "RST".into(), Kind::Reset);
            } else if let Some(wait) = received.strip_prefix("nothing more for ") {
                self.sequence.rows.push(Row::Gap {
                    at: client,
                    text: format!("nothing more for {wait}"),
                });
            } else {
                self.arrow(server, client, received.to_string(), packet_kind(received));
            }
        } else if rest == "connects" || rest.starts_with("connects again") || rest.starts_with("connects (") {
            self.arrow(client, server, "connect()".into(), Kind::Connect);
        } else if rest.starts_with("connects: connection refused") {
            self.arrow(client, server, "connect()".into(), Kind::Connect);
            self.arrow(server, client, "refused (RST)".into(), Kind::Reset);
        } else if rest == "closes" {
            self.arrow(client, server, "close()".into(), Kind::End);
        } else if rest == "shuts down its write half" {
            self.arrow(client, server, "shutdown(Write)".into(), Kind::End);
        } else if rest.starts_with("sends end of stream") {
            self.arrow(client, server, "end of stream".into(), Kind::End);
        } else if rest == "sees the server close the connection" {
            self.arrow(server, client, "end of stream".into(), Kind::End);
        } else if rest == "sees the server reset the connection" {
            self.arrow(server, client, "RST".into(), Kind::Reset);
        } else if let Some(wait) = rest.strip_prefix("receives nothing for ") {
            self.sequence.rows.push(Row::Gap {
                at: client,
                text: format!("nothing arrives for {wait}"),
            });
        } else if rest.starts_with("stops reading") {
            self.note(client, "stops reading (replies pile up in the kernel's buffers)");
        } else {
            self.note(client, rest);
        }
    }

    fn finish(mut self) -> Sequence {
        let server = self.clients.len();
        for row in &mut self.sequence.rows {
            match row {
                Row::Arrow { from, to, .. } => {
                    for end in [from, to] {
                        if *end == Self::SERVER {
                            *end = server;
                        }
                    }
                }
                Row::Note { at, .. } | Row::Gap { at, .. } if *at == Self::SERVER => *at = server,
                _ => {}
            }
        }
        self.sequence.participants = self.clients;
        self.sequence.participants.push("server".to_string());
        self.sequence
    }
}

/// The kind of a packet line from a capture, by its flags.
fn packet_kind(label: &str) -> Kind {
    let flags: Vec<&str> = label.split_whitespace().collect();
    if flags.contains(&"RST") {
        Kind::Reset
    } else if flags.contains(&"FIN") {
        Kind::End
    } else if flags.contains(&"SYN") {
        Kind::Connect
    } else {
        Kind::Data
    }
}

/// A quoted, escaped byte string from a transcript (`"SET a 1\n"`, or `"aaaa"... (65537 bytes)`
/// when the transcript already abbreviated it), shortened to fit a label: its start, `…`, and
/// the total length. Escapes are never cut in half.
pub fn shorten_bytes(shown: &str) -> String {
    let (quoted, total) = match shown.rsplit_once("... (") {
        Some((quoted, count)) if count.ends_with(" bytes)") => {
            (quoted, count.trim_end_matches(" bytes)").parse::<usize>().ok())
        }
        _ => (shown, None),
    };
    let Some(inner) = quoted.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) else {
        return shown.to_string();
    };
    let pieces = escape_pieces(inner);
    let total = total.unwrap_or(pieces.len());
    let full = format!("\"{inner}\"");
    if full.chars().count() <= LABEL_MAX && total == pieces.len() {
        return full;
    }
    let suffix = format!(" ({total} bytes)");
    let budget = LABEL_MAX.saturating_sub(suffix.len() + 3);
    let mut kept = String::new();
    for piece in pieces {
        if kept.chars().count() + piece.chars().count() > budget {
            break;
        }
        kept.push_str(piece);
    }
    format!("\"{kept}…\"{suffix}")
}

/// The escaped text of each byte: `\n`, `\xff`, `\\` and `a` are one byte each.
fn escape_pieces(inner: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = inner;
    while let Some(c) = rest.chars().next() {
        let len = if c == '\\' {
            match rest.as_bytes().get(1) {
                Some(b'x') => 4.min(rest.len()),
                Some(_) => 2,
                None => 1,
            }
        } else {
            c.len_utf8()
        };
        pieces.push(&rest[..len]);
        rest = &rest[len..];
    }
    pieces
}

/// `text` cut into lines of at most `width` characters, at spaces where it can.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The heading of a box of program output: the recording keeps the order of its lines, but not
/// when each came relative to the arrows.
fn output_heading(heading: &str) -> String {
    format!("{heading} (in the order printed; not timed against the arrows)")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

const MARGIN: f64 = 12.0;
const HEAD_HEIGHT: f64 = 26.0;
const LINE_HEIGHT: f64 = 15.0;
const ROW_GAP: f64 = 11.0;
const MIN_COLUMN: f64 = 90.0;

impl Sequence {
    /// The notes beside lifeline `at` go left of the first lifeline, right of the last, and
    /// right of any other.
    fn note_column(&self, at: usize) -> usize {
        if at == 0 { 0 } else { at + 1 }
    }

    /// Draws the diagram; `title` says what it shows (the SVG's `<title>` and `aria-label`).
    pub fn render(&self, title: &str) -> String {
        let count = self.participants.len().max(1);
        // Columns: 0 = left of lifeline 0, k = between lifeline k-1 and k, count = right of the last.
        let mut columns = vec![0.0_f64; count + 1];
        for (i, name) in self.participants.iter().enumerate() {
            let half = svg::text_width(name) / 2.0 + 10.0;
            columns[i] = columns[i].max(half);
            columns[i + 1] = columns[i + 1].max(half);
        }
        // The columns between two lifelines (not the outer two) have room for a short label.
        for column in &mut columns[1..count] {
            *column = column.max(MIN_COLUMN);
        }
        let note_width = |columns: &mut Vec<f64>, column: usize, text: &str| {
            for line in wrap(text, NOTE_WIDTH) {
                columns[column] = columns[column].max(svg::text_width(&line) + 16.0);
            }
        };
        for row in &self.rows {
            match row {
                Row::Arrow {
                    from,
                    to,
                    label,
                    from_note,
                    to_note,
                    ..
                } => {
                    let column = from.min(to) + 1;
                    columns[column] = columns[column].max(svg::text_width(label) + 24.0);
                    if let Some(note) = from_note {
                        note_width(&mut columns, self.note_column(*from), note);
                    }
                    if let Some(note) = to_note {
                        note_width(&mut columns, self.note_column(*to), note);
                    }
                }
                Row::Note { at, text } | Row::Gap { at, text } => {
                    note_width(&mut columns, self.note_column(*at), text)
                }
                Row::Wide { .. } => {}
            }
        }
        let mut xs = Vec::with_capacity(count);
        let mut x = MARGIN + columns[0];
        for (i, column) in columns.iter().enumerate().skip(1).take(count) {
            xs.push(x);
            if i < count {
                x += column;
            }
        }
        let mut width = xs[count - 1] + columns[count] + MARGIN;
        for row in &self.rows {
            if let Row::Wide { text } = row {
                width = width.max(svg::text_width(&clip(text, OUTPUT_LINE_MAX)) + 2.0 * MARGIN + 16.0);
            }
        }
        for output in &self.outputs {
            for line in output.lines.iter().take(OUTPUT_LINES_MAX) {
                width = width.max(svg::text_width(&clip(line, OUTPUT_LINE_MAX)) + 2.0 * MARGIN + 20.0);
            }
            width = width.max(svg::text_width(&output_heading(&output.heading)) + 2.0 * MARGIN + 20.0);
        }
        // The legend must fit too: it names every kind of arrow used besides plain bytes.
        let legend_width: f64 = [Kind::Connect, Kind::Datagram, Kind::End, Kind::Reset]
            .into_iter()
            .filter(|kind| {
                self.rows
                    .iter()
                    .any(|row| matches!(row, Row::Arrow { kind: used, .. } if used == kind))
            })
            .map(|kind| 34.0 + svg::text_width(kind.legend()) + 22.0)
            .sum();
        width = width.max(MARGIN + legend_width + MARGIN);
        // A wider figure than the lifelines need: centre them.
        let shift = (width - (xs[count - 1] + columns[count] + MARGIN)) / 2.0;
        for x in &mut xs {
            *x += shift;
        }

        // Rows first, into a body drawn after we know the height.
        let mut body = Svg::new(0.0, 0.0, "");
        let mut y = MARGIN + HEAD_HEIGHT + 14.0;
        let mut gaps: Vec<(usize, f64, f64)> = Vec::new();
        let mut kinds: Vec<Kind> = Vec::new();
        let note_x = |at: usize| -> (f64, Anchor) {
            if at == 0 {
                (xs[0] - 8.0, Anchor::End)
            } else {
                (xs[at] + 8.0, Anchor::Start)
            }
        };
        for row in &self.rows {
            match row {
                Row::Arrow {
                    from,
                    to,
                    label,
                    kind,
                    from_note,
                    to_note,
                } => {
                    if !kinds.contains(kind) {
                        kinds.push(*kind);
                    }
                    let (x1, x2) = (xs[*from], xs[*to]);
                    let colour = kind.colour();
                    let left = xs[*from.min(to)];
                    let arrow_y = y + LINE_HEIGHT + 3.0;
                    body.text(left + 12.0, y + 11.0, label, Anchor::Start, colour);
                    let dash = if *kind == Kind::Datagram { "6 4" } else { "" };
                    if *kind == Kind::Reset {
                        // No arrowhead: the connection ends here, in a ✕.
                        body.line(x1, arrow_y, x2, arrow_y, colour, 1.4, "");
                    } else {
                        body.arrow(x1, arrow_y, x2, arrow_y, colour, dash, *kind == Kind::Connect);
                    }
                    match kind {
                        Kind::Reset => {
                            body.cross(x2, arrow_y, colour);
                            body.mark("reset");
                        }
                        Kind::End => {
                            // A short bar across the arrow's end: nothing more follows.
                            body.line(x2, arrow_y - 6.0, x2, arrow_y + 6.0, colour, 2.4, "");
                            body.mark("end of stream");
                        }
                        Kind::Connect => body.mark("connect"),
                        Kind::Datagram => body.mark("datagram"),
                        Kind::Data => {}
                    }
                    let mut height = LINE_HEIGHT + 10.0;
                    for (at, note) in [(from, from_note), (to, to_note)] {
                        if let Some(note) = note {
                            let (nx, anchor) = note_x(*at);
                            let lines = wrap(note, NOTE_WIDTH);
                            for (i, line) in lines.iter().enumerate() {
                                body.text(nx, y + 11.0 + i as f64 * LINE_HEIGHT, line, anchor, svg::MUTED);
                            }
                            height = height.max(lines.len() as f64 * LINE_HEIGHT + 4.0);
                        }
                    }
                    y += height + ROW_GAP;
                }
                Row::Note { at, text } => {
                    let (nx, anchor) = note_x(*at);
                    let lines = wrap(text, NOTE_WIDTH);
                    for (i, line) in lines.iter().enumerate() {
                        body.text_sized(
                            nx,
                            y + 11.0 + i as f64 * LINE_HEIGHT,
                            line,
                            anchor,
                            svg::MUTED,
                            svg::FONT_SIZE,
                            false,
                        );
                    }
                    body.circle(xs[*at], y + 7.0, 3.0, svg::MUTED, svg::MUTED);
                    y += lines.len() as f64 * LINE_HEIGHT + ROW_GAP;
                }
                Row::Gap { at, text } => {
                    let (nx, anchor) = note_x(*at);
                    let lines = wrap(text, NOTE_WIDTH);
                    let height = (lines.len() as f64 * LINE_HEIGHT).max(34.0);
                    for (i, line) in lines.iter().enumerate() {
                        let line_y = y + height / 2.0 - (lines.len() as f64 - 1.0) * LINE_HEIGHT / 2.0 + 4.0;
                        body.text(nx, line_y + i as f64 * LINE_HEIGHT, line, anchor, svg::MUTED);
                    }
                    gaps.push((*at, y, y + height));
                    body.mark("a wait");
                    y += height + ROW_GAP;
                }
                Row::Wide { text } => {
                    body.text(
                        width / 2.0,
                        y + 11.0,
                        &clip(text, OUTPUT_LINE_MAX),
                        Anchor::Middle,
                        svg::MUTED,
                    );
                    y += LINE_HEIGHT + ROW_GAP;
                }
            }
        }
        let lifeline_end = y;

        // The legend: only the kinds this diagram uses besides plain bytes.
        let legend: Vec<Kind> = [Kind::Connect, Kind::Datagram, Kind::End, Kind::Reset]
            .into_iter()
            .filter(|kind| kinds.contains(kind))
            .collect();
        let mut legend_y = None;
        if !legend.is_empty() {
            legend_y = Some(y + 14.0);
            y += 28.0;
        }

        // Program output, in the order printed, below everything.
        let mut output_boxes = Vec::new();
        for output in &self.outputs {
            let shown = output.lines.len().min(OUTPUT_LINES_MAX);
            let extra = usize::from(output.lines.len() > OUTPUT_LINES_MAX);
            let height = 30.0 + (shown + extra) as f64 * LINE_HEIGHT;
            output_boxes.push((y + 6.0, height, output));
            y += height + 14.0;
        }
        let height = y + MARGIN;

        let mut out = Svg::new(width, height, title);
        // Lifelines with their names on top, broken where a gap is.
        for (i, name) in self.participants.iter().enumerate() {
            let box_width = svg::text_width(name) + 16.0;
            out.rect(
                xs[i] - box_width / 2.0,
                MARGIN,
                box_width,
                HEAD_HEIGHT,
                svg::INK,
                "none",
                "",
            );
            out.text_sized(
                xs[i],
                MARGIN + 17.0,
                name,
                Anchor::Middle,
                svg::INK,
                svg::FONT_SIZE,
                true,
            );
            let mut from = MARGIN + HEAD_HEIGHT;
            for (_, start, end) in gaps.iter().filter(|(at, ..)| *at == i) {
                out.line(xs[i], from, xs[i], *start, svg::MUTED, 1.0, "");
                out.line(xs[i], *start, xs[i], *end, svg::MUTED, 2.0, "3 3");
                from = *end;
            }
            out.line(xs[i], from, xs[i], lifeline_end, svg::MUTED, 1.0, "");
        }
        out.absorb(body);
        if let Some(legend_y) = legend_y {
            let mut lx = MARGIN;
            for kind in legend {
                let colour = kind.colour();
                let dash = if kind == Kind::Datagram { "6 4" } else { "" };
                if kind == Kind::Reset {
                    out.line(lx, legend_y - 4.0, lx + 24.0, legend_y - 4.0, colour, 1.4, "");
                    out.cross(lx + 24.0, legend_y - 4.0, colour);
                } else {
                    out.arrow(
                        lx,
                        legend_y - 4.0,
                        lx + 28.0,
                        legend_y - 4.0,
                        colour,
                        dash,
                        kind == Kind::Connect,
                    );
                }
                out.text(lx + 34.0, legend_y, kind.legend(), Anchor::Start, colour);
                lx += 34.0 + svg::text_width(kind.legend()) + 22.0;
            }
        }
        for (top, box_height, output) in output_boxes {
            out.rect(
                MARGIN,
                top,
                width - 2.0 * MARGIN,
                box_height,
                svg::MUTED,
                "none",
                "4 3",
            );
            out.text_sized(
                MARGIN + 10.0,
                top + 18.0,
                &output_heading(&output.heading),
                Anchor::Start,
                svg::MUTED,
                svg::FONT_SIZE,
                true,
            );
            for (i, line) in output.lines.iter().take(OUTPUT_LINES_MAX).enumerate() {
                out.text(
                    MARGIN + 10.0,
                    top + 18.0 + (i + 1) as f64 * LINE_HEIGHT,
                    &clip(line, OUTPUT_LINE_MAX),
                    Anchor::Start,
                    svg::INK,
                );
            }
            if output.lines.len() > OUTPUT_LINES_MAX {
                let more = output.lines.len() - OUTPUT_LINES_MAX;
                out.text(
                    MARGIN + 10.0,
                    top + 18.0 + (OUTPUT_LINES_MAX + 1) as f64 * LINE_HEIGHT,
                    &format!("… {more} more lines"),
                    Anchor::Start,
                    svg::MUTED,
                );
            }
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = "---\nsource: tests/01_echo_server.rs\nexpression: x\n---\n\
        # greeting: one client\n\
        c1 connects\n\
        c1 > \"Hello, world!\\n\"\n\
        c1 < \"Echo: Hello, world!\\n\"\n\
        c1 closes\n\
        server exits (exit code 0)\n\
        --- server output ---\n\
        listening on 127.0.0.1:<port>\n\
        connected by <c1>\n";

    #[test]
    fn a_transcript_becomes_lifelines_arrows_and_notes() {
        let sequence = from_transcript(GREETING);
        assert_eq!(sequence.participants, ["c1", "server"]);
        let arrow = |from, to, label: &str, kind| Row::Arrow {
            from,
            to,
            label: label.into(),
            kind,
            from_note: None,
            to_note: None,
        };
        assert_eq!(
            sequence.rows,
            [
                arrow(0, 1, "connect()", Kind::Connect),
                arrow(0, 1, r#""Hello, world!\n""#, Kind::Data),
                arrow(1, 0, r#""Echo: Hello, world!\n""#, Kind::Data),
                arrow(0, 1, "close()", Kind::End),
                Row::Note {
                    at: 1,
                    text: "exits (exit code 0)".into()
                },
            ]
        );
        assert_eq!(sequence.outputs.len(), 1);
        assert_eq!(sequence.outputs[0].heading, "server output");
        assert_eq!(
            sequence.outputs[0].lines,
            ["listening on 127.0.0.1:<port>", "connected by <c1>"]
        );
    }

    #[test]
    fn changing_the_bytes_changes_the_diagram() {
        let before = from_transcript(GREETING).render("greeting");
        let after = from_transcript(&GREETING.replace("Hello, world!", "Hello, World!")).render("greeting");
        assert_ne!(before, after);
        assert!(after.contains("Echo: Hello, World!\\n"), "{after}");
        // A log line is part of the picture too.
        let after = from_transcript(&GREETING.replace("connected by", "accepted")).render("greeting");
        assert_ne!(before, after);
    }

    #[test]
    fn datagrams_packets_resets_and_waits_are_told_apart() {
        let text = "c1 > SYN\nc1 < SYN ACK\nc1 > PSH ACK 6 bytes\nc1 < RST\n\
                    c2 >> \"ping\"\nc2 << \"pong\"\nc2 receives nothing for 1 s\n\
                    c1 sees the server reset the connection\nsomething new happens\n";
        let sequence = from_transcript(text);
        assert_eq!(sequence.participants, ["c1", "c2", "server"]);
        let kinds: Vec<Kind> = sequence
            .rows
            .iter()
            .filter_map(|row| match row {
                Row::Arrow { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        use Kind::*;
        assert_eq!(kinds, [Connect, Connect, Data, Reset, Datagram, Datagram, Reset]);
        assert!(matches!(&sequence.rows[6], Row::Gap { at: 1, text } if text == "nothing arrives for 1 s"));
        assert!(matches!(&sequence.rows[8], Row::Wide { text } if text == "something new happens"));
        let svg = sequence.render("all kinds");
        assert!(svg.contains("stroke-dasharray=\"6 4\""), "datagrams are dashed");
        assert!(
            svg.contains("<desc>shows: connect, reset, datagram, a wait</desc>"),
            "{svg}"
        );
        assert!(svg.contains("PSH ACK 6 bytes"));
    }

    #[test]
    fn client_scenarios_have_a_client_and_a_server() {
        let text = "# reset: x\n$ client --port <port> GET a\nclient connects\nclient > \"GET a\\n\"\n\
                    server resets the connection (RST)\nclient connects again\nclient exits (exit code 0)\n\
                    --- client output ---\n1\n";
        let sequence = from_transcript(text);
        assert_eq!(sequence.participants, ["client", "server"]);
        assert!(matches!(
            &sequence.rows[2],
            Row::Arrow {
                from: 1,
                to: 0,
                kind: Kind::Reset,
                ..
            }
        ));
        assert!(matches!(&sequence.rows[4], Row::Note { at: 0, .. }));
    }

    #[test]
    fn long_bytes_are_shortened_without_cutting_an_escape() {
        assert_eq!(shorten_bytes(r#""OK\n""#), r#""OK\n""#);
        let long = format!("\"{}\"... (65537 bytes)", "a".repeat(300));
        let shown = shorten_bytes(&long);
        assert!(shown.ends_with("…\" (65537 bytes)"), "{shown}");
        assert!(shown.chars().count() <= LABEL_MAX, "{shown}");
        let escapes = format!("\"{}\"", "\\xff".repeat(40));
        let shown = shorten_bytes(&escapes);
        assert!(shown.starts_with("\"\\xff"), "{shown}");
        assert!(shown.contains("\\xff…\" (40 bytes)"), "{shown}");
    }

    #[test]
    fn notes_wrap_at_spaces() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
