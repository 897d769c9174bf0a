//! Round trips per second over loopback: a TCP echo against a UDP echo (lesson 10).
//!
//! ```text
//! cargo bench --bench echo_bench                  # about 20 seconds
//! cargo bench --bench echo_bench -- --seconds 5 --runs 5 --payload 512
//! cargo bench --bench echo_bench -- --record benches/results/echo_bench.txt   # what the book shows
//! ```
//!
//! One client sends a message, waits for the whole echo, and sends the next, for `--seconds`;
//! the figure is how many such round trips it completed per second, with the median (p50) and
//! 99th-percentile (p99) time of one. Three servers are measured in turn, `--runs` times each:
//!
//! - **TCP echo**: a minimal echo server on a thread of this program (`accept`, then `read` and
//!   `write_all` in a loop), with `TCP_NODELAY` on both ends so that no small write waits;
//! - **UDP echo**: the same on a UDP socket (`recv_from`, then `send_to`);
//! - **lesson 10**: `10_udp_echo server --quiet`, a program of its own (so every round trip also
//!   crosses between two processes), as cargo built it for this bench.
//!
//! The first two differ only in the protocol, so their ratio is the figure that counts. Nothing
//! is asserted: the numbers depend on the machine and on what else runs on it. The output starts
//! with the load average, so a busy machine shows; on a laptop, close other programs first.
//! A round trip on loopback is a few microseconds of system calls and two thread wake-ups, so
//! one busy core elsewhere moves the figures by tens of percent.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use socket_workbook::harness;

const LESSON_10: &str = env!("CARGO_BIN_EXE_10_udp_echo");

/// Round trips per second over loopback, TCP echo against UDP echo.
#[derive(Parser)]
struct Args {
    /// How long each run lasts, in seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// How many runs per server.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Bytes per message (1 to 1024, lesson 10's largest datagram).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    payload: u16,
    /// Also write the output to this file (the book includes `benches/results/echo_bench.txt`).
    #[arg(long)]
    record: Option<std::path::PathBuf>,
    // `cargo bench` passes `--bench` to every bench program.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(err) = run(&args) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

/// Prints a line, and keeps it for `--record`.
struct Output(Vec<String>);

impl Output {
    fn say(&mut self, line: String) {
        println!("{line}");
        self.0.push(line);
    }
}

fn run(args: &Args) -> io::Result<()> {
    let mut out = Output(Vec::new());
    let duration = Duration::from_secs_f64(args.seconds);
    let payload: Vec<u8> = (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect();
    out.say(format!(
        "echo round trips over 127.0.0.1: {} bytes per message, one client, {} s per run, {} runs per server",
        payload.len(),
        args.seconds,
        args.runs
    ));
    out.say(format!(
        "load average at the start: {} (1, 5, 15 min; {} cores)",
        load_average(),
        thread::available_parallelism().map_or(0, |n| n.get())
    ));
    out.say(format!(
        "{:<28} {:>16} {:>10} {:>10}",
        "server", "round trips/s", "p50", "p99"
    ));

    let tcp = start_tcp_echo()?;
    let udp = start_udp_echo()?;
    let lesson = harness::start_lesson(LESSON_10, &["server", "--quiet"])
        .map_err(|err| io::Error::other(format!("could not start lesson 10: {err}")))?;
    let mut medians = Vec::new();
    for (name, measure) in [
        ("TCP echo (thread)", Target::Tcp(tcp)),
        ("UDP echo (thread)", Target::Udp(udp)),
        ("UDP lesson 10 (process)", Target::Udp(lesson.addr())),
    ] {
        let mut rates = Vec::new();
        for run in 1..=args.runs {
            let result = measure.run(&payload, duration)?;
            out.say(format!(
                "{:<28} {:>16} {:>10} {:>10}",
                format!("{name} run {run}"),
                group_thousands(result.per_second() as u64),
                format_micros(result.percentile(0.50)),
                format_micros(result.percentile(0.99)),
            ));
            rates.push(result.per_second());
        }
        rates.sort_by(f64::total_cmp);
        medians.push((name, rates[rates.len() / 2]));
    }
    drop(lesson);
    let median_of = |wanted: &str| medians.iter().find(|(name, _)| *name == wanted).map(|(_, r)| *r);
    if let (Some(tcp), Some(udp)) = (median_of("TCP echo (thread)"), median_of("UDP echo (thread)")) {
        out.say(format!(
            "median of the runs: TCP {} / s, UDP {} / s; UDP/TCP {:.2}",
            group_thousands(tcp as u64),
            group_thousands(udp as u64),
            udp / tcp
        ));
    }
    out.say(format!("load average at the end: {}", load_average()));
    if let Some(path) = &args.record {
        std::fs::write(path, out.0.join("\n") + "\n")?;
        println!("written to {}", path.display());
    }
    Ok(())
}

enum Target {
    Tcp(SocketAddr),
    Udp(SocketAddr),
}

struct Measured {
    round_trips: Vec<Duration>,
    elapsed: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.round_trips.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.round_trips.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied()
    }
}

impl Target {
    fn run(&self, payload: &[u8], duration: Duration) -> io::Result<Measured> {
        let mut reply = vec![0u8; payload.len().max(2048)];
        let mut round_trips = Vec::with_capacity(1 << 20);
        let started = Instant::now();
        match self {
            Target::Tcp(addr) => {
                let mut stream = TcpStream::connect(addr)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    stream.write_all(payload)?;
                    stream.read_exact(&mut reply[..payload.len()])?;
                    round_trips.push(sent.elapsed());
                    check_echo(&reply[..payload.len()], payload)?;
                }
            }
            Target::Udp(addr) => {
                let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
                socket.connect(addr)?;
                // A lost datagram would stall the run: on loopback none is lost unless a
                // buffer overflows, which one message at a time cannot cause.
                socket.set_read_timeout(Some(Duration::from_secs(5)))?;
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    socket.send(payload)?;
                    let n = socket.recv(&mut reply)?;
                    round_trips.push(sent.elapsed());
                    check_echo(&reply[..n], payload)?;
                }
            }
        }
        Ok(Measured {
            round_trips,
            elapsed: started.elapsed(),
        })
    }
}

fn check_echo(got: &[u8], sent: &[u8]) -> io::Result<()> {
    if got == sent {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the echo differs from what was sent ({} bytes back for {})",
            got.len(),
            sent.len()
        )))
    }
}

/// A minimal TCP echo server on threads of this program: one per connection.
fn start_tcp_echo() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = echo_tcp(stream);
            });
        }
    });
    Ok(addr)
}

fn echo_tcp(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = [0u8; 2048];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// The same for UDP, on one thread.
fn start_udp_echo() -> io::Result<SocketAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = socket.local_addr()?;
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    Ok(addr)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

fn format_micros(duration: Option<Duration>) -> String {
    match duration {
        Some(d) => format!("{:.1} µs", d.as_secs_f64() * 1e6),
        None => "-".to_string(),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
