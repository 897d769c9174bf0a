//! Packets on loopback, captured with `tcpdump` and written down as stable tokens, for the
//! book's chapter "Watching the wire".
//!
//! A [`Capture`] runs `tcpdump -i lo` for one server port while a test talks to the server. It
//! returns the [`Packet`]s it saw; [`render`] writes them one per line, the way transcripts are
//! written, so the same diagram generator can draw them:
//!
//! ```text
//! # handshake-echo-close: the three-way handshake, one echo, an orderly close
//! c1 > SYN
//! c1 < SYN ACK
//! c1 > ACK
//! c1 > PSH ACK 6 bytes
//! c1 < ACK (after 40 ms)
//! ```
//!
//! `>` is a packet from the client to the server, `<` one from the server to the client. A line
//! names the TCP flags (in the order SYN, PSH, FIN, RST, ACK), the payload length when there is
//! one, `window 0` when the sender says it has no room left, `(retransmitted)` when it repeats
//! what was sent before, and `(after N ms)` when the packet came at least 30 ms after the one
//! before it. Sequence numbers, window sizes, options and times
//! are left out: they change on every run.
//!
//! Not everything that is left changes never. On loopback the kernel decides how to cut a
//! stream into segments, whether an ACK goes alone or rides on data, and how often it probes a
//! closed window. So two captures are compared by their [`stable_form`] only: for each client
//! and each direction, the order of SYN, FIN and RST, the bytes of payload between them, and
//! whether a zero window was announced. That much is the same on every run.
//!
//! Capturing needs `tcpdump` and the right to capture (root or `CAP_NET_RAW`);
//! [`CaptureError::Unavailable`] says which is missing, so a test can skip with a reason.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

/// A packet that came at least this long after the one before it gets an `(after N ms)` note.
pub const NOTABLE_GAP: Duration = Duration::from_millis(30);

/// How long `tcpdump` may take to start capturing or to report the end marker.
const TCPDUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// One TCP segment on loopback, as far as it is worth showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// 1 for the first client port seen, 2 for the next, ...
    pub client: usize,
    /// `true` from the client to the server (`>`), `false` the other way (`<`).
    pub to_server: bool,
    pub syn: bool,
    pub psh: bool,
    pub fin: bool,
    pub rst: bool,
    pub ack: bool,
    /// Payload bytes.
    pub length: usize,
    /// The sender announced a receive window of 0: it has no room for more data.
    pub zero_window: bool,
    /// Time since the packet before it, when that is at least [`NOTABLE_GAP`].
    pub after: Option<Duration>,
    /// The packet repeats a SYN, FIN or bytes sent before.
    pub retransmitted: bool,
}

impl Packet {
    /// `SYN ACK`, `PSH ACK 6 bytes`, `ACK window 0 (after 200 ms)`,
    /// `PSH ACK 2 bytes (retransmitted)`, ...
    pub fn label(&self) -> String {
        let mut words: Vec<String> = [
            (self.syn, "SYN"),
            (self.psh, "PSH"),
            (self.fin, "FIN"),
            (self.rst, "RST"),
            (self.ack, "ACK"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name.to_string())
        .collect();
        if self.length > 0 {
            words.push(format!("{} bytes", self.length));
        }
        if self.zero_window {
            words.push("window 0".to_string());
        }
        if self.retransmitted {
            words.push("(retransmitted)".to_string());
        }
        if let Some(after) = self.after {
            // Rounded down to 10 ms: the delayed-ACK timer fires 40 to 50 ms after a segment.
            words.push(format!("(after {} ms)", after.as_millis() / 10 * 10));
        }
        words.join(" ")
    }

    /// The packet as a line of a capture file: `c1 > PSH ACK 6 bytes`.
    pub fn line(&self) -> String {
        let arrow = if self.to_server { '>' } else { '<' };
        format!("c{} {arrow} {}", self.client, self.label())
    }
}

/// One line of `tcpdump -nn -tt` output, before clients are numbered.
#[derive(Debug, Clone, PartialEq)]
struct RawPacket {
    seconds: f64,
    from_port: u16,
    to_port: u16,
    flags: String,
    /// `seq 17:23` (bytes 17 to 22) or `seq 7` (a FIN or a RST), relative to the first byte.
    seq: Option<(u64, Option<u64>)>,
    window: Option<u64>,
    length: usize,
}

static TCP_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d+\.\d+) IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\](?:, seq (\d+)(?::(\d+))?)?(?:.*?, win (\d+))?(?:.*?, length (\d+))?",
    )
    .expect("valid regex")
});

/// Reads one line of `tcpdump -nn -tt` output for a TCP packet; `None` for anything else.
fn parse_tcpdump_line(line: &str) -> Option<RawPacket> {
    let caps = TCP_LINE.captures(line)?;
    Some(RawPacket {
        seconds: caps[1].parse().ok()?,
        from_port: caps[3].parse().ok()?,
        to_port: caps[5].parse().ok()?,
        flags: caps[6].to_string(),
        seq: match (caps.get(7), caps.get(8)) {
            (Some(start), end) => Some((
                start.as_str().parse().ok()?,
                end.and_then(|end| end.as_str().parse().ok()),
            )),
            (None, _) => None,
        },
        window: caps.get(9).and_then(|w| w.as_str().parse().ok()),
        length: caps.get(10).map_or(Some(0), |l| l.as_str().parse().ok())?,
    })
}

/// Turns `tcpdump` lines into packets: numbers the clients in order of appearance, tells the
/// direction from the server's port, notes long gaps, and recognises retransmissions.
fn packets_from_lines(lines: &[String], server_port: u16) -> Vec<Packet> {
    let mut clients: BTreeMap<u16, usize> = BTreeMap::new();
    // (client port, to_server) -> the end of the highest sequence number sent so far
    let mut sent_up_to: BTreeMap<(u16, bool), u64> = BTreeMap::new();
    let mut previous: Option<f64> = None;
    let mut packets = Vec::new();
    for raw in lines.iter().filter_map(|line| parse_tcpdump_line(line)) {
        let to_server = raw.to_port == server_port;
        let client_port = if to_server { raw.from_port } else { raw.to_port };
        let next = clients.len() + 1;
        let client = *clients.entry(client_port).or_insert(next);
        let gap = previous.map(|before| Duration::from_secs_f64((raw.seconds - before).max(0.0)));
        previous = Some(raw.seconds);
        let has = |flag: char| raw.flags.contains(flag);
        // SYN and FIN count as one byte of the sequence; tcpdump numbers the bytes after the
        // SYN from 1. A segment that ends where an earlier one already reached is sent again:
        // on a busy machine the kernel may retransmit even on loopback, before the ACK arrives.
        let end = if has('S') {
            Some(1)
        } else if has('R') {
            None
        } else {
            raw.seq
                .filter(|_| raw.length > 0 || has('F'))
                .map(|(start, end)| end.unwrap_or(start) + u64::from(has('F')))
        };
        let highest = sent_up_to.entry((client_port, to_server)).or_insert(0);
        let retransmitted = end.is_some_and(|end| end <= *highest);
        if let Some(end) = end {
            *highest = (*highest).max(end);
        }
        packets.push(Packet {
            retransmitted,
            client,
            to_server,
            syn: has('S'),
            psh: has('P'),
            fin: has('F'),
            rst: has('R'),
            ack: has('.'),
            length: raw.length,
            // A reset's window means nothing.
            zero_window: raw.window == Some(0) && !has('R'),
            after: gap.filter(|gap| *gap >= NOTABLE_GAP),
        });
    }
    packets
}

/// A capture file: `# name: description`, then one packet per line.
pub fn render(name: &str, description: &str, packets: &[Packet]) -> String {
    let mut text = format!("# {name}: {description}\n");
    for packet in packets {
        text.push_str(&packet.line());
        text.push('\n');
    }
    text
}

/// What two captures of the same conversation have in common on every run: for each client and
/// direction, `SYN`, `SYN ACK`, `FIN` and `RST` in order, the payload bytes between them added
/// up (`6 bytes`), and a last line saying whether that side announced a zero window. Lone ACKs,
/// PSH, retransmissions, and how the payload was cut into segments are left out.
///
/// Reads a capture file (as [`render`] writes it), so a committed capture and a new one can be
/// compared. Lines it cannot read are reported in the result, so they fail a comparison.
pub fn stable_form(capture: &str) -> Vec<String> {
    // (client, 0 for `>` or 1 for `<`) -> (tokens, payload bytes not yet written down, whether a
    // zero window was announced)
    let mut sides: BTreeMap<(String, u8), (Vec<String>, usize, bool)> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for line in capture.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let (Some(client), Some(arrow), Some(label)) = (parts.next(), parts.next(), parts.next()) else {
            unreadable.push(format!("unreadable line: {line}"));
            continue;
        };
        let to_server = match arrow {
            ">" => true,
            "<" => false,
            _ => {
                unreadable.push(format!("unreadable line: {line}"));
                continue;
            }
        };
        if label.contains("(retransmitted)") {
            // Sent again: nothing new, and how often depends on how busy the machine was.
            continue;
        }
        let label = label.split(" (").next().unwrap_or(label);
        let words: Vec<&str> = label.split(' ').collect();
        let side = sides
            .entry((client.to_string(), if to_server { 0 } else { 1 }))
            .or_insert_with(|| (Vec::new(), 0, false));
        let mut position = 0;
        let mut flags = Vec::new();
        while let Some(&word @ ("SYN" | "PSH" | "FIN" | "RST" | "ACK")) = words.get(position) {
            flags.push(word);
            position += 1;
        }
        if let (Some(count), Some(&"bytes")) = (words.get(position), words.get(position + 1)) {
            match count.parse::<usize>() {
                Ok(count) => side.1 += count,
                Err(_) => unreadable.push(format!("unreadable length: {line}")),
            }
            position += 2;
        }
        if words.get(position..) == Some(&["window", "0"][..]) {
            side.2 = true;
            position += 2;
        }
        if position != words.len() || flags.is_empty() {
            unreadable.push(format!("unreadable line: {line}"));
        }
        let flag_token = if flags.contains(&"SYN") {
            Some(if flags.contains(&"ACK") { "SYN ACK" } else { "SYN" })
        } else if flags.contains(&"FIN") {
            Some("FIN")
        } else if flags.contains(&"RST") {
            Some("RST")
        } else {
            None
        };
        if let Some(token) = flag_token {
            // Payload in a FIN segment comes before the FIN.
            if side.1 > 0 {
                side.0.push(format!("{} bytes", side.1));
                side.1 = 0;
            }
            side.0.push(token.to_string());
        }
    }
    let mut form = Vec::new();
    for ((client, direction), (mut tokens, pending, zero_window)) in sides {
        if pending > 0 {
            tokens.push(format!("{pending} bytes"));
        }
        let arrow = if direction == 0 { '>' } else { '<' };
        form.push(format!("{client} {arrow} {}", tokens.join(", ")));
        if zero_window {
            form.push(format!("{client} {arrow} announced window 0"));
        }
    }
    form.extend(unreadable);
    form
}

/// Why a capture could not be made.
#[derive(Debug)]
pub enum CaptureError {
    /// `tcpdump` is missing or may not capture here (it needs root or `CAP_NET_RAW`).
    Unavailable(String),
    /// `tcpdump` ran but did not behave as expected.
    Failed(String),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Unavailable(why) => write!(f, "cannot capture packets here: {why}"),
            CaptureError::Failed(why) => write!(f, "the packet capture failed: {why}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// A running `tcpdump -i lo` for the TCP packets of one server port.
pub struct Capture {
    tcpdump: Child,
    /// tcpdump's stdout, a line at a time: one line per packet.
    lines: Receiver<String>,
    /// What tcpdump says on stderr after `listening on`: its counts when it stops.
    remarks: Receiver<String>,
    server_port: u16,
    /// `tcpdump` also captures datagrams to this socket: one marks the end of the capture.
    marker: UdpSocket,
}

impl Capture {
    /// Starts capturing the TCP packets to and from `server_port` on loopback, and returns once
    /// `tcpdump` says it is listening.
    pub fn start(server_port: u16) -> Result<Capture, CaptureError> {
        let marker = UdpSocket::bind("127.0.0.1:0")
            .map_err(|err| CaptureError::Failed(format!("binding the marker socket: {err}")))?;
        let marker_port = marker
            .local_addr()
            .map_err(|err| CaptureError::Failed(err.to_string()))?
            .port();
        let filter = format!("(tcp port {server_port}) or (udp dst port {marker_port})");
        // -nn: numbers, not names; -tt: seconds since 1970; -l: a line at a time;
        // --immediate-mode: hand over every packet at once, not in batches.
        // -s 200: keep the headers only (at most 134 bytes on loopback). With whole packets,
        // tcpdump's 2 MB ring holds only a few, and a burst overflows it ("dropped by kernel").
        let mut tcpdump = Command::new("tcpdump")
            .args(["-i", "lo", "-nn", "-tt", "-l", "--immediate-mode"])
            .args(["-s", "200", "-B", "4096", &filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                CaptureError::Unavailable(format!(
                    "cannot run tcpdump ({err}); install it (apt-get install tcpdump)"
                ))
            })?;
        let stdout = tcpdump.stdout.take().expect("stdout is piped");
        let stderr = tcpdump.stderr.take().expect("stderr is piped");
        let (line_sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_sender.send(line).is_err() {
                    break;
                }
            }
        });
        // tcpdump says `listening on lo, ...` on stderr once it captures, or why it cannot.
        let (ready_sender, ready) = mpsc::channel();
        let (remark_sender, remarks) = mpsc::channel();
        thread::spawn(move || {
            let mut ready_sender = Some(ready_sender);
            let mut said = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if ready_sender.is_none() {
                    let _ = remark_sender.send(line);
                } else if line.contains("listening on") {
                    if let Some(sender) = ready_sender.take() {
                        let _ = sender.send(Ok(()));
                    }
                } else {
                    said.push(line);
                }
            }
            if let Some(sender) = ready_sender {
                let _ = sender.send(Err(said.join("\n")));
            }
        });
        let mut capture = Capture {
            tcpdump,
            lines,
            remarks,
            server_port,
            marker,
        };
        match ready.recv_timeout(TCPDUMP_TIMEOUT) {
            Ok(Ok(())) => Ok(capture),
            Ok(Err(said)) => {
                capture.kill();
                if said.contains("ermission") || said.contains("not permitted") {
                    Err(CaptureError::Unavailable(format!(
                        "tcpdump needs root or CAP_NET_RAW: {said}"
                    )))
                } else {
                    Err(CaptureError::Failed(format!("tcpdump did not start: {said}")))
                }
            }
            Err(_) => {
                capture.kill();
                Err(CaptureError::Failed(format!(
                    "tcpdump did not say `listening on` within {TCPDUMP_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Ends the capture and returns the packets it saw, in order. Fails if tcpdump says it lost
    /// any: a capture with holes would compare as a changed conversation.
    pub fn finish(mut self) -> Result<Vec<Packet>, CaptureError> {
        // Deliberate pause: the kernel sends some packets by itself after the programs are done
        // (the last ACK of a close, a delayed ACK); give them time to appear.
        thread::sleep(Duration::from_millis(100));
        // Then a datagram that tcpdump also captures: loopback hands packets to tcpdump in the
        // order they are sent, so once the marker is reported, every earlier packet is too.
        let target = self
            .marker
            .local_addr()
            .map_err(|err| CaptureError::Failed(err.to_string()))?;
        self.marker
            .send_to(b"end of capture", target)
            .map_err(|err| CaptureError::Failed(format!("sending the end marker: {err}")))?;
        let deadline = Instant::now() + TCPDUMP_TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(" UDP") => break,
                Ok(line) => lines.push(line),
                Err(_) => {
                    self.kill();
                    return Err(CaptureError::Failed(format!(
                        "tcpdump did not report the end marker within {TCPDUMP_TIMEOUT:?}; \
                         it reported {} lines",
                        lines.len()
                    )));
                }
            }
        }
        // SIGINT, not SIGKILL: tcpdump then says how many packets the kernel dropped.
        // SAFETY: kill(2) on our own child's process id.
        unsafe {
            libc::kill(self.tcpdump.id() as libc::pid_t, libc::SIGINT);
        }
        let mut counts = Vec::new();
        while let Ok(remark) = self.remarks.recv_timeout(TCPDUMP_TIMEOUT) {
            counts.push(remark);
        }
        self.kill();
        let dropped = counts
            .iter()
            .find_map(|line| line.strip_suffix(" packets dropped by kernel"))
            .and_then(|count| count.trim().parse::<u64>().ok());
        match dropped {
            Some(0) => Ok(packets_from_lines(&lines, self.server_port)),
            _ => Err(CaptureError::Failed(format!(
                "tcpdump lost packets or did not say; it said: {}",
                counts.join("; ")
            ))),
        }
    }

    fn kill(&mut self) {
        let _ = self.tcpdump.kill();
        let _ = self.tcpdump.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDSHAKE: &str = "\
1764638737.138400 IP 127.0.0.1.55930 > 127.0.0.1.42797: Flags [S], seq 242851680, win 65495, options [mss 65495,sackOK,TS val 3317102258 ecr 0,nop,wscale 10], length 0
1764638737.138421 IP 127.0.0.1.42797 > 127.0.0.1.55930: Flags [S.], seq 3984778104, ack 242851681, win 65483, options [mss 65495,sackOK,TS val 1679890504 ecr 3317102258,nop,wscale 10], length 0
1764638737.138442 IP 127.0.0.1.55930 > 127.0.0.1.42797: Flags [.], ack 1, win 64, options [nop,nop,TS val 3317102258 ecr 1679890504], length 0
1764638737.138676 IP 127.0.0.1.55930 > 127.0.0.1.42797: Flags [P.], seq 1:7, ack 1, win 64, options [nop,nop,TS val 3317102258 ecr 1679890504], length 6
1764638737.182687 IP 127.0.0.1.42797 > 127.0.0.1.55930: Flags [.], ack 7, win 0, options [nop,nop,TS val 1679890504 ecr 3317102258], length 0
1764638737.182769 IP 127.0.0.1.42797 > 127.0.0.1.55930: Flags [FP.], seq 1:13, ack 7, win 64, options [nop,nop,TS val 1679890505 ecr 3317102258], length 12
1764638737.182777 IP 127.0.0.1.55930 > 127.0.0.1.42797: Flags [R.], seq 7, ack 13, win 0, length 0
";

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn tcpdump_lines_become_labelled_packets() {
        let packets = packets_from_lines(&lines(HANDSHAKE), 42797);
        let shown: Vec<String> = packets.iter().map(Packet::line).collect();
        assert_eq!(
            shown,
            [
                "c1 > SYN",
                "c1 < SYN ACK",
                "c1 > ACK",
                "c1 > PSH ACK 6 bytes",
                "c1 < ACK window 0 (after 40 ms)",
                "c1 < PSH FIN ACK 12 bytes",
                "c1 > RST ACK",
            ]
        );
    }

    #[test]
    fn other_lines_and_a_second_client_are_told_apart() {
        let text = "\
listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes
1764638737.1 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [S], seq 1, win 65495, length 0
1764638737.2 IP 127.0.0.1.40001 > 127.0.0.1.5000: Flags [S], seq 1, win 65495, length 0
1764638737.2 IP 127.0.0.1.5000 > 127.0.0.1.40001: Flags [R.], seq 0, ack 2, win 0, length 0
";
        let shown: Vec<String> = packets_from_lines(&lines(text), 5000)
            .iter()
            .map(Packet::line)
            .collect();
        assert_eq!(shown, ["c1 > SYN", "c2 > SYN (after 100 ms)", "c2 < RST ACK"]);
    }

    #[test]
    fn the_stable_form_keeps_flags_and_byte_counts_per_direction() {
        let capture = "\
# name: what
c1 > SYN
c1 < SYN ACK
c1 > ACK
c1 > PSH ACK 6 bytes
c1 < ACK
c1 < PSH ACK 1000 bytes
c1 > ACK window 0 (after 40 ms)
c1 < ACK
c1 < PSH ACK 24 bytes
c1 > FIN ACK
c1 < FIN ACK
c1 > ACK
";
        assert_eq!(
            stable_form(capture),
            [
                "c1 > SYN, 6 bytes, FIN",
                "c1 > announced window 0",
                "c1 < SYN ACK, 1024 bytes, FIN",
            ]
        );
    }

    #[test]
    fn how_the_stream_is_cut_and_lone_acks_do_not_change_the_stable_form() {
        let one = "c1 > SYN\nc1 < SYN ACK\nc1 > ACK\nc1 > PSH ACK 8 bytes\nc1 < ACK\nc1 > FIN ACK\n";
        let other = "c1 > SYN\nc1 < SYN ACK\nc1 > PSH ACK 6 bytes\nc1 > PSH ACK 2 bytes\nc1 > FIN ACK\nc1 < ACK (after 40 ms)\n";
        assert_eq!(stable_form(one), stable_form(other));
        let reset = "c1 > SYN\nc1 < SYN ACK\nc1 > ACK\nc1 > PSH ACK 8 bytes\nc1 > RST ACK\n";
        assert_ne!(stable_form(one), stable_form(reset));
    }

    #[test]
    fn unreadable_lines_show_up_in_the_stable_form() {
        assert_eq!(
            stable_form("c1 > SYN\nc1 = ACK\nc1 > ACK 3 bites\n"),
            [
                "c1 > SYN",
                "unreadable line: c1 = ACK",
                "unreadable line: c1 > ACK 3 bites",
            ]
        );
    }

    #[test]
    fn a_rendered_capture_reads_back_to_the_same_stable_form() {
        let packets = packets_from_lines(&lines(HANDSHAKE), 42797);
        let text = render("x", "y", &packets);
        assert!(text.starts_with("# x: y\nc1 > SYN\n"));
        assert_eq!(
            stable_form(&text),
            [
                "c1 > SYN, 6 bytes, RST",
                "c1 < SYN ACK, 12 bytes, FIN",
                "c1 < announced window 0",
            ]
        );
    }

    #[test]
    fn a_segment_sent_again_is_marked_and_left_out_of_the_stable_form() {
        let text = "\
1.000 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [S], seq 99, win 65495, length 0
1.001 IP 127.0.0.1.5000 > 127.0.0.1.40000: Flags [S.], seq 7, ack 100, win 65483, length 0
1.002 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [.], ack 1, win 64, length 0
1.003 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [P.], seq 1:7, ack 1, win 64, length 6
1.004 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [P.], seq 7:9, ack 1, win 64, length 2
1.010 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [P.], seq 7:9, ack 1, win 64, length 2
1.011 IP 127.0.0.1.5000 > 127.0.0.1.40000: Flags [.], ack 9, win 64, length 0
1.012 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [F.], seq 9, ack 1, win 64, length 0
1.250 IP 127.0.0.1.40000 > 127.0.0.1.5000: Flags [F.], seq 9, ack 1, win 64, length 0
1.251 IP 127.0.0.1.5000 > 127.0.0.1.40000: Flags [F.], seq 1, ack 10, win 64, length 0
";
        let packets = packets_from_lines(&lines(text), 5000);
        let shown: Vec<String> = packets.iter().map(Packet::line).collect();
        assert_eq!(
            shown,
            [
                "c1 > SYN",
                "c1 < SYN ACK",
                "c1 > ACK",
                "c1 > PSH ACK 6 bytes",
                "c1 > PSH ACK 2 bytes",
                "c1 > PSH ACK 2 bytes (retransmitted)",
                "c1 < ACK",
                "c1 > FIN ACK",
                "c1 > FIN ACK (retransmitted) (after 230 ms)",
                "c1 < FIN ACK",
            ]
        );
        assert_eq!(
            stable_form(&render("x", "y", &packets)),
            ["c1 > SYN, 8 bytes, FIN", "c1 < SYN ACK, FIN"]
        );
    }
}
