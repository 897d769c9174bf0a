//! # kv_bench: lessons 07, 08 and 12 against Redis, under the same load
//!
//! ```text
//! cargo bench --bench kv_bench                                # 50 connections, pipeline 1 and 16
//! cargo bench --bench kv_bench -- --duration 10 --pipeline 1,4,16,64
//! cargo bench --bench kv_bench -- --lessons 08             # only lesson 08 (and Redis)
//! cargo bench --bench kv_bench -- --lessons 08,12 --idle 0,10000   # also with 10,000 idle clients
//! cargo bench --bench kv_bench -- --json results.json      # also write the results as JSON
//! cargo bench --bench kv_bench -- --record benches/results # keep a dated text + JSON recording
//! cargo bench --bench kv_bench -- --help
//! ```
//!
//! The benchmark starts `07_kv_server_threads` (a thread per connection), `08_kv_server_events`
//! (one thread, an event loop on `poll`) and `12_kv_server_epoll` (the same on `epoll`, Linux),
//! those given to `--lessons`, the release builds cargo made for this bench, with
//! `--quiet --port 0`; and, when `redis-server` is on the PATH, a Redis on a free port with
//! persistence off (`apt-get install redis-server` on Debian/Ubuntu, `brew install redis` on
//! macOS). It runs the same load against each, one after the other: our servers in our text
//! protocol, Redis twice, once in RESP and once with inline commands (see "Protocols"). It prints
//! throughput, batch latency and CPU for each, and for each lesson its ratio to both Redis runs.
//! All servers are stopped at the end, also after an error or a panic (and on Ctrl-C).
//!
//! # The load
//! - `--connections` connections (default 50), opened before the clock starts.
//! - Each connection is a closed loop: it sends a batch of `--pipeline` commands in one write,
//!   waits for all their replies, and sends the next batch at once. Pipeline depth 1 is the plain
//!   request/reply conversation; 16 lets a server amortise its system calls over 16 commands.
//! - Commands: `GET key:NNNN` (80 %) and `SET key:NNNN value` (20 %), keys drawn uniformly from
//!   10,000. Every run draws the same sequence. Every key is stored once before the runs, so
//!   every `GET` finds a value.
//! - A key's value is always the same 32 bytes (derived from the key), so every reply can be
//!   checked exactly: `OK` and the value, whatever the protocol. A wrong or unexpected reply
//!   stops the benchmark with an error.
//! - Throughput counts replies that arrived within the run (`--duration` seconds, default 5).
//!   Latency is per batch: from the batch's write until its last reply has arrived (at depth 1
//!   that is the latency of one command).
//!
//! # Protocols
//! The same commands, written three ways ([`Protocol`]):
//! - `text`, ours (lessons 05 to 08): `GET key:0042\r\n`, `SET key:0042 value\r\n`; replies
//!   `OK\n` and `value\n`.
//! - `inline`, for Redis: the same lines, which Redis reads as *inline commands*, the form meant
//!   for typing by hand. Redis splits such a line with a general splitter that handles quotes and
//!   escapes and builds each word a byte at a time.
//! - `resp`, for Redis: each command an array of bulk strings,
//!   `*2\r\n$3\r\nGET\r\n$8\r\nkey:0042\r\n`, as redis-cli, the client libraries and
//!   redis-benchmark send them. Every word comes with its length, so Redis copies it in one piece.
//!
//! Redis replies in RESP to both: `+OK\r\n`, `$32\r\n<value>\r\n`, `$-1\r\n`, `-ERR ...\r\n`.
//! The ratio of a lesson to Redis in RESP is the project's goal figure: it compares with Redis as
//! its clients use it. The ratio to Redis inline is printed beside it, in parentheses.
//!
//! # Idle connections
//! `--idle N` (a comma-separated list, default 0) opens N connections to a server before its
//! runs, which stay open and send nothing while the busy ones are measured; then closes them. The
//! servers are started with room for them (`--max-connections` for ours, `--maxclients` for
//! Redis), and the benchmark raises its own open-file limit. It reads each server's resident
//! memory (`VmRSS` in `/proc/PID/status`) before and after opening them and prints the growth
//! per idle connection.
//!
//! # Results files
//! `--json PATH` writes the results in a machine-readable form; `--record DIR` writes
//! `DIR/kv_bench-<date>.txt` (the command line, then the printed output) and
//! `DIR/kv_bench-<date>.json`, and refuses to replace either. `benches/results/README.md`
//! describes the JSON schema. Recording into `benches/results` also redraws the book's plots of
//! the results (`book/src/diagrams/plots/`, see `socket_workbook::diagram`).
//!
//! # The load generator is not the lesson
//! It must cost as little CPU as possible, because it shares the machine with the server. It runs
//! a few threads (`--client-threads`, default 1), each driving its share of the connections with
//! non-blocking sockets and `epoll` (Linux), so the generator costs a few system calls per batch
//! and no thread switches. It reports the CPU time the server and the generator used, so you can
//! see who was busy. The load loop is written once, over a [`Protocol`] that encodes a command
//! and cuts one reply from the bytes received.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use socket_workbook::harness::{self, Readiness, ServerProcess};

/// Our servers, as cargo built them for this benchmark (release profile under `cargo bench`):
/// the lesson number, the program's name, and its path.
const LESSONS: [(&str, &str, &str); 4] = [
    (
        "07",
        "07_kv_server_threads",
        env!("CARGO_BIN_EXE_07_kv_server_threads"),
    ),
    (
        "08",
        "08_kv_server_events",
        env!("CARGO_BIN_EXE_08_kv_server_events"),
    ),
    (
        "12",
        "12_kv_server_epoll",
        env!("CARGO_BIN_EXE_12_kv_server_epoll"),
    ),
    // Lesson 13 speaks RESP, not our text protocol (`--lessons 13`; benches/resp_bench.rs).
    ("13", "13_resp_server", env!("CARGO_BIN_EXE_13_resp_server")),
];

/// The most idle connections `--idle` opens (a server needs a descriptor for each, and so do we).
const MAX_IDLE: usize = 90_000;

/// Idle connections are opened in batches of this many; after each, one round trip makes sure
/// the server has accepted them, so the listen backlog never overflows.
const IDLE_BATCH: usize = 500;

/// The results file's schema name and version (see `benches/results/README.md`).
const SCHEMA: &str = "socket-workbook/bench-results";
const SCHEMA_VERSION: u32 = 1;

/// Throughput and latency of the KV servers of lessons 07 and 08, compared with Redis under the
/// same load. Redis runs twice: in RESP, the protocol its clients use (the goal figure), and with
/// inline commands, the same text lines our servers read.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Connections open at once, each with one batch of commands in flight.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Pipeline depths to run, comma-separated: commands sent in one batch per connection.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pipeline: Vec<usize>,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Bytes in every value.
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// Percentage of commands that are GET (the rest are SET).
    #[arg(long, default_value_t = 80)]
    get_percent: u32,
    /// Threads in the load generator; the connections are divided among them.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Which lessons' servers to run, comma-separated: 07 (threads), 08 (poll), 12 (epoll),
    /// 13 (RESP on poll; it speaks RESP whatever --protocol says).
    #[arg(long, value_delimiter = ',', default_value = "07,08,12")]
    lessons: Vec<String>,
    /// Idle connections held open during the runs, comma-separated: every server is measured
    /// with each number in turn (see "Idle connections").
    #[arg(long, value_delimiter = ',', default_value = "0")]
    idle: Vec<usize>,
    /// Only run against our servers, even if redis-server is installed.
    #[arg(long)]
    no_redis: bool,
    /// Only run against Redis (to try load generator settings).
    #[arg(long, conflicts_with = "no_redis")]
    redis_only: bool,
    /// The Redis server program to start.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
    /// How to talk to Redis, comma-separated, in this order: resp (arrays of bulk strings, as
    /// Redis's clients send; the goal figure), inline (the text lines our servers read).
    #[arg(long, value_delimiter = ',', default_value = "resp,inline", value_parser = parse_redis_protocol)]
    redis_protocols: Vec<Protocol>,
    /// Also write the results as JSON to this file (replaced if it exists). The schema is in
    /// benches/results/README.md.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Keep a recording in this directory: kv_bench-<date>.txt (the command line and the printed
    /// output) and kv_bench-<date>.json. Refuses to replace an existing recording.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// `cargo bench` passes this to every bench target; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_redis_protocol(name: &str) -> Result<Protocol, String> {
    match name {
        "resp" => Ok(Protocol::Resp),
        "inline" => Ok(Protocol::Inline),
        _ => Err(format!(
            "{name:?} is not a Redis protocol here; choose resp or inline"
        )),
    }
}

fn main() {
    let args = Args::parse();
    let started = chrono::Local::now();
    let record = match validate(&args, &started) {
        Ok(record) => record,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(2);
        }
    };
    // Ctrl-C reaches us, not the servers (they run in process groups of their own): stop them.
    let _ = ctrlc::set_handler(|| {
        harness::process::kill_all_running();
        std::process::exit(130);
    });
    match run(&args, &started, record.as_ref()) {
        Ok(()) => {}
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
}

/// The two files `--record` writes.
struct Recording {
    text: PathBuf,
    json: PathBuf,
}

fn validate(args: &Args, started: &chrono::DateTime<chrono::Local>) -> Result<Option<Recording>, String> {
    if args.connections == 0 || args.client_threads == 0 || args.keys == 0 {
        return Err("--connections, --client-threads and --keys must be at least 1".into());
    }
    if args.pipeline.is_empty() || args.pipeline.contains(&0) || args.pipeline.iter().any(|&p| p > 10_000) {
        return Err("--pipeline depths must be between 1 and 10000".into());
    }
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        return Err("--duration must be between 0 and 3600 seconds".into());
    }
    if args.get_percent > 100 {
        return Err("--get-percent must be between 0 and 100".into());
    }
    if let Some(unknown) = args
        .lessons
        .iter()
        .find(|l| !LESSONS.iter().any(|(n, _, _)| n == l))
    {
        return Err(format!(
            "--lessons: there is no lesson {unknown} to run; choose from 07, 08, 12"
        ));
    }
    if args.idle.is_empty() || args.idle.iter().any(|&n| n > MAX_IDLE) {
        return Err(format!(
            "--idle: give numbers of idle connections up to {MAX_IDLE}"
        ));
    }
    if args.value_size == 0 || args.value_size > 1024 {
        return Err("--value-size must be between 1 and 1024".into());
    }
    if args.redis_protocols.is_empty() {
        return Err("--redis-protocols: name at least one of resp, inline".into());
    }
    let Some(dir) = &args.record else {
        return Ok(None);
    };
    if !dir.is_dir() {
        return Err(format!("--record: {} is not a directory", dir.display()));
    }
    let stem = format!("kv_bench-{}", started.format("%F"));
    let recording = Recording {
        text: dir.join(format!("{stem}.txt")),
        json: dir.join(format!("{stem}.json")),
    };
    // Checked now, not after a minute of benchmarking.
    for path in [&recording.text, &recording.json] {
        if path.exists() {
            return Err(format!(
                "--record: {} exists already; move it away, or record into another directory \
                 (--json PATH writes the JSON anywhere)",
                path.display()
            ));
        }
    }
    Ok(Some(recording))
}

/// Starts the servers, runs every depth against every server in each of its protocols, prints
/// the table, and writes the results files. Dropping a `ServerProcess` kills it, so the servers
/// are stopped however `run` ends: normally, with an error, or by a panic unwinding through it.
fn run(
    args: &Args,
    started: &chrono::DateTime<chrono::Local>,
    record: Option<&Recording>,
) -> Result<(), String> {
    let machine = Machine::now();
    let workload = Arc::new(Workload::new(args));
    let servers = start_servers(args)?;
    let has_redis = servers.iter().any(|server| server.lesson.is_none());

    let mut report = Report::default();
    report.say(format!(
        "load: {} connections, {}% GET / {}% SET over {} keys, {}-byte values, {} s per run, {} client thread(s)",
        args.connections,
        args.get_percent,
        100 - args.get_percent,
        args.keys,
        args.value_size,
        args.duration,
        args.client_threads,
    ));
    report.say(format!(
        "machine: {} CPUs, {}, load average {} at the start",
        machine.cores,
        machine.kernel.as_deref().unwrap_or("unknown kernel"),
        format_load(machine.load_average),
    ));
    report.say("latency is per batch: from writing a batch of P commands to reading its last reply");
    report.say(
        "other CPU: what else kept the machine busy (other programs, kernel work); high: a shared machine",
    );
    if has_redis {
        report.say(
            "protocols: text is ours; Redis runs in RESP (arrays of bulk strings, as its clients send them)",
        );
        report.say("and inline (our text lines, which Redis parses on a slower path)");
        report.say("goal figure: ratio NN/Redis-RESP; the ratio to Redis inline is in parentheses");
    }
    report.say("");
    for server in &servers {
        preload(server, &workload)?;
    }
    report.say(format!(
        "{:>8}  {:<22} {:<8} {:>12} {:>10} {:>10}  {:>10} {:>10} {:>10}",
        "pipeline", "server", "protocol", "ops/s", "p50", "p99", "server CPU", "client CPU", "other CPU"
    ));
    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    for &idle in &args.idle {
        // (depth, index in `servers`, protocol, ops/s) of every run with this many idle clients.
        let mut measured: Vec<(usize, usize, Protocol, f64)> = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            let (idle_streams, memory) = hold_idle_connections(server, idle)?;
            if let Some(memory) = &memory {
                report.say(memory.line(&server.label(), idle));
            }
            for &depth in &args.pipeline {
                for &protocol in &server.protocols {
                    let load_at_start = read_load_average();
                    let result = measure(server, protocol, &workload, args, depth)?;
                    report.say(format!(
                        "{:>8}  {:<22} {:<8} {:>12} {:>10} {:>10}  {:>10} {:>10} {:>10}",
                        depth,
                        server.label(),
                        protocol.label(),
                        group_thousands(result.ops_per_second().round() as u64),
                        format_latency(result.percentile(50.0)),
                        format_latency(result.percentile(99.0)),
                        format!("{:.2} cores", result.server_cpu),
                        format!("{:.2} cores", result.client_cpu),
                        result
                            .other_cpu
                            .map_or_else(|| "-".to_string(), |cores| format!("{cores:.2} cores")),
                    ));
                    let mut run = run_json(server, protocol, depth, args, load_at_start, &result);
                    run["idle_connections"] = json!(idle);
                    if let Some(memory) = &memory {
                        run["rss_kib_before_idle"] = json!(memory.before_kib);
                        run["rss_kib_with_idle"] = json!(memory.with_idle_kib);
                        run["rss_bytes_per_idle_connection"] = json!(memory.bytes_per_connection(idle));
                    }
                    runs.push(run);
                    measured.push((depth, index, protocol, result.ops_per_second()));
                }
            }
            drop(idle_streams);
        }
        // One line per lesson and depth, the goal figure first:
        // "ratio 08/Redis-RESP  1.05  (08/Redis-inline 1.23)".
        for &depth in &args.pipeline {
            let redis = |wanted: Protocol| {
                measured
                    .iter()
                    .find(|&&(d, index, protocol, _)| {
                        d == depth && servers[index].lesson.is_none() && protocol == wanted
                    })
                    .map(|&(_, index, _, ops)| (&servers[index], ops))
            };
            for &(_, index, protocol, ops) in measured.iter().filter(|m| m.0 == depth) {
                let Some(lesson) = servers[index].lesson else {
                    continue;
                };
                let mut figures = Vec::new();
                for against in [Protocol::Resp, Protocol::Inline] {
                    let Some((redis_server, redis_ops)) = redis(against) else {
                        continue;
                    };
                    let ratio = ops / redis_ops;
                    figures.push((against, ratio));
                    ratios.push(json!({
                        "depth": depth,
                        "connections": args.connections,
                        "idle_connections": idle,
                        "numerator": {"server": servers[index].name, "protocol": protocol.id()},
                        "denominator": {"server": redis_server.name, "protocol": against.id()},
                        "value": rounded(ratio, 3),
                        "goal": against == Protocol::Resp,
                    }));
                }
                if let Some(line) = ratio_line(depth, lesson, &figures) {
                    report.say(if idle > 0 {
                        format!("{line}  [{idle} idle]")
                    } else {
                        line
                    });
                }
            }
        }
    }
    report.say("");
    report.say("stopping the servers");
    for server in servers {
        let name = server.name;
        let output = server.process.finish();
        if let Some(panic) = output.iter().find(|line| line.text.contains("panicked")) {
            return Err(format!("{name} panicked: {}", panic.text));
        }
    }

    let results = json!({
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool": "kv_bench",
        "date": started.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "command": shown_command(),
        "source": source_json(),
        "machine": {
            "cores": machine.cores,
            "cpu_model": machine.cpu_model,
            "kernel": machine.kernel,
            "load_average": load_json(machine.load_average),
        },
        "settings": {
            "connections": args.connections,
            "pipeline_depths": args.pipeline,
            "duration_s": args.duration,
            "keys": args.keys,
            "value_bytes": args.value_size,
            "mix_percent": {"GET": args.get_percent, "SET": 100 - args.get_percent},
            "client_threads": args.client_threads,
            "idle_connections": args.idle,
        },
        "runs": runs,
        "ratios": ratios,
    });
    let json_text = serde_json::to_string_pretty(&results).map_err(|err| err.to_string())? + "\n";
    if let Some(path) = &args.json {
        write_file(path, &json_text)?;
    }
    if let Some(recording) = record {
        write_file(
            &recording.text,
            &format!("$ {}\n{}", shown_command(), report.text),
        )?;
        write_file(&recording.json, &json_text)?;
        println!(
            "recorded {} and {}",
            recording.text.display(),
            recording.json.display()
        );
        redraw_plots(recording)?;
    }
    Ok(())
}

/// After a recording into this repository's `benches/results`, redraws the book's plots from it
/// (the newest recording is the one plotted), so that they never show an older run.
fn redraw_plots(recording: &Recording) -> Result<(), String> {
    use socket_workbook::diagram;
    let root = diagram::repository();
    let ours = root.join(diagram::RESULTS_DIR).canonicalize().ok();
    let recorded_into = recording.json.parent().and_then(|dir| dir.canonicalize().ok());
    if ours.is_none() || ours != recorded_into {
        println!(
            "the book's plots are drawn from {}; this recording is elsewhere, so they are unchanged",
            diagram::RESULTS_DIR
        );
        return Ok(());
    }
    for path in diagram::write_plots(&root)? {
        println!("redrew {}", path.strip_prefix(&root).unwrap_or(&path).display());
    }
    Ok(())
}

/// `       1  ratio 08/Redis-RESP    1.05  (08/Redis-inline 1.23)`: the lesson's ops/s over
/// Redis's, the first figure in the ops/s column. `None` when Redis did not run.
fn ratio_line(depth: usize, lesson: &str, figures: &[(Protocol, f64)]) -> Option<String> {
    let ((against, ratio), rest) = figures.split_first()?;
    let name = format!("ratio {lesson}/Redis-{}", against.label());
    let mut line = format!("{depth:>8}  {name:<31} {ratio:>12.2}");
    for (i, (against, ratio)) in rest.iter().enumerate() {
        let open = if i == 0 { "  (" } else { ", " };
        let _ = write!(line, "{open}{lesson}/Redis-{} {ratio:.2}", against.label());
    }
    if !rest.is_empty() {
        line.push(')');
    }
    Some(line)
}

/// A server under test.
struct Server {
    /// `07_kv_server_threads`, `redis-server`: the program.
    name: String,
    /// Redis's version; `None` for a lesson.
    version: Option<String>,
    /// The lesson's number, `07` or `08`; `None` for Redis.
    lesson: Option<&'static str>,
    /// How the benchmark talks to it, one run each, in this order.
    protocols: Vec<Protocol>,
    process: ServerProcess,
}

impl Server {
    /// The name in the table: `07_kv_server_threads`, `redis-server 7.0.15`.
    fn label(&self) -> String {
        match &self.version {
            Some(version) => format!("{} {version}", self.name),
            None => self.name.clone(),
        }
    }
}

fn start_servers(args: &Args) -> Result<Vec<Server>, String> {
    let mut servers = Vec::new();
    if !args.redis_only {
        for (number, name, program) in LESSONS {
            if !args.lessons.iter().any(|wanted| wanted == number) {
                continue;
            }
            let max_connections = room_for_clients(args).to_string();
            let process = harness::start_lesson(program, &["--quiet", "--max-connections", &max_connections])
                .map_err(|err| format!("could not start {program}: {err}"))?;
            servers.push(Server {
                name: name.to_string(),
                version: None,
                lesson: Some(number),
                protocols: vec![if number == "13" {
                    Protocol::Resp
                } else {
                    Protocol::Text
                }],
                process,
            });
        }
    }
    if !args.no_redis {
        match start_redis(&args.redis_server, &args.redis_protocols, room_for_clients(args))? {
            Some(server) => servers.push(server),
            None => println!(
                "redis-server not found on PATH: running our server only \
                 (install Redis with `apt-get install redis-server` to compare)"
            ),
        }
    }
    if servers.is_empty() {
        return Err("no server to benchmark".into());
    }
    Ok(servers)
}

/// Starts Redis on a free port, without persistence, and waits until it listens. `None` when
/// the program is not installed.
fn start_redis(program: &str, protocols: &[Protocol], max_clients: usize) -> Result<Option<Server>, String> {
    let version = match Command::new(program).arg("--version").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("could not run {program}: {err}")),
    };
    // "Redis server v=7.0.15 sha=..." -> "7.0.15"
    let version = version
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .unwrap_or("?")
        .to_string();
    let port = free_port().map_err(|err| format!("could not find a free port: {err}"))?;
    let mut command = Command::new(program);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        // No snapshots, no append-only file: a pure in-memory store, like ours.
        "--save",
        "",
        "--appendonly",
        "no",
        // Room for the idle connections too (Redis raises its own open-file limit to fit).
        "--maxclients",
        &max_clients.to_string(),
    ]);
    let process = ServerProcess::start(command, Readiness::PortListening(port), Duration::from_secs(10))
        .map_err(|err| format!("could not start {program}: {err}"))?;
    let name = Path::new(program)
        .file_name()
        .map_or_else(|| program.to_string(), |name| name.to_string_lossy().into_owned());
    Ok(Some(Server {
        name,
        version: Some(version),
        lesson: None,
        protocols: protocols.to_vec(),
        process,
    }))
}

/// How many clients each server must accept: the busy ones, the most idle ones, the preload
/// and probe connections, and some room. Also raises our own open-file limit to hold them.
fn room_for_clients(args: &Args) -> usize {
    let most_idle = args.idle.iter().copied().max().unwrap_or(0);
    let room = args.connections + most_idle + 100;
    raise_open_file_limit(room as u64 + 100);
    room.max(1000)
}

/// Raises this process's soft open-file limit towards `wanted`, as far as the hard limit allows.
fn raise_open_file_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) and setrlimit(2) read and write only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A server's resident memory before and after its idle connections were opened.
struct IdleMemory {
    before_kib: u64,
    with_idle_kib: u64,
}

impl IdleMemory {
    fn bytes_per_connection(&self, idle: usize) -> u64 {
        self.with_idle_kib.saturating_sub(self.before_kib) * 1024 / idle.max(1) as u64
    }

    /// `idle 10000  12_kv_server_epoll: resident 2.6 MB -> 9.8 MB, 740 bytes per idle connection`
    fn line(&self, server: &str, idle: usize) -> String {
        format!(
            "idle {idle}  {server}: resident {:.1} MB -> {:.1} MB, {} bytes per idle connection",
            self.before_kib as f64 / 1024.0,
            self.with_idle_kib as f64 / 1024.0,
            group_thousands(self.bytes_per_connection(idle)),
        )
    }
}

/// Opens `idle` connections to `server` that will send nothing, and measures what they cost it.
/// `None` for the memory when `idle` is 0.
fn hold_idle_connections(
    server: &Server,
    idle: usize,
) -> Result<(Vec<TcpStream>, Option<IdleMemory>), String> {
    if idle == 0 {
        return Ok((Vec::new(), None));
    }
    let addr = server.process.addr();
    let pid = server.process.pid();
    let before_kib = resident_kib(pid)?;
    let mut streams = Vec::with_capacity(idle);
    while streams.len() < idle {
        for _ in 0..IDLE_BATCH.min(idle - streams.len()) {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|err| {
                format!(
                    "idle connection {} to {} ({addr}): {err}",
                    streams.len() + 1,
                    server.name
                )
            })?;
            streams.push(stream);
        }
        // The backlog is first come, first served: once this is answered, the server has
        // accepted every idle connection before it.
        probe_round_trip(addr)
            .map_err(|err| format!("{} with {} idle connections: {err}", server.name, streams.len()))?;
    }
    let with_idle_kib = resident_kib(pid)?;
    Ok((
        streams,
        Some(IdleMemory {
            before_kib,
            with_idle_kib,
        }),
    ))
}

/// One command on a fresh connection, `GET` of a key nobody stores: one reply line from our
/// servers (`ERROR ...`) and from Redis, which reads it as an inline command (`$-1`).
fn probe_round_trip(addr: SocketAddr) -> Result<(), String> {
    let mut conn =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|err| err.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|err| err.to_string())?;
    conn.write_all(b"GET kv-bench-probe\r\n")
        .map_err(|err| err.to_string())?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n") {
        match conn.read(&mut byte) {
            Ok(0) => return Err(format!("the probe connection closed after {}", show(&reply))),
            Ok(_) => reply.push(byte[0]),
            Err(err) => return Err(format!("no reply to the probe: {err}")),
        }
        if reply.len() > 1024 {
            return Err("the reply to the probe is too long".into());
        }
    }
    Ok(())
}

/// `VmRSS` of a process, in KiB (Linux).
fn resident_kib(pid: i32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| format!("/proc/{pid}/status: {err}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|n| n.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// The workload: keys, values, and the bytes of each command.

/// Every key and its one value, and the mix of commands.
struct Workload {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    get_percent: u32,
}

/// One command of the workload, by key number.
#[derive(Debug, Clone, Copy)]
enum Op {
    Get(usize),
    Set(usize),
}

impl Workload {
    fn new(args: &Args) -> Workload {
        let width = (args.keys - 1).to_string().len().max(4);
        let mut workload = Workload {
            keys: Vec::with_capacity(args.keys),
            values: Vec::with_capacity(args.keys),
            get_percent: args.get_percent,
        };
        for i in 0..args.keys {
            // "value-0042-" then filler, cut to the value size: different for every key.
            let mut value = format!("value-{i:0width$}-");
            while value.len() < args.value_size {
                value.push((b'a' + (value.len() % 26) as u8) as char);
            }
            value.truncate(args.value_size);
            workload.keys.push(format!("key:{i:0width$}").into_bytes());
            workload.values.push(value.into_bytes());
        }
        workload
    }

    /// The next command: a random key, GET or SET in the configured mix.
    fn draw(&self, rng: &mut Rng) -> Op {
        let key = rng.below(self.keys.len() as u64) as usize;
        if (rng.below(100) as u32) < self.get_percent {
            Op::Get(key)
        } else {
            Op::Set(key)
        }
    }
}

/// The workload's commands as one protocol writes them, ready to copy into a batch.
struct Commands {
    protocol: Protocol,
    /// `GET key:0042`, encoded, by key number.
    gets: Vec<Vec<u8>>,
    /// `SET key:0042 <value>`, encoded, by key number.
    sets: Vec<Vec<u8>>,
}

impl Commands {
    fn new(workload: &Workload, protocol: Protocol) -> Commands {
        let mut commands = Commands {
            protocol,
            gets: Vec::with_capacity(workload.keys.len()),
            sets: Vec::with_capacity(workload.keys.len()),
        };
        for (key, value) in workload.keys.iter().zip(&workload.values) {
            let mut get = Vec::new();
            protocol.encode(&[b"GET", key], &mut get);
            commands.gets.push(get);
            let mut set = Vec::new();
            protocol.encode(&[b"SET", key, value], &mut set);
            commands.sets.push(set);
        }
        commands
    }

    /// Appends one random command to `out` and returns what its reply must be.
    fn push(&self, workload: &Workload, rng: &mut Rng, out: &mut Vec<u8>) -> Expected {
        match workload.draw(rng) {
            Op::Get(key) => {
                out.extend_from_slice(&self.gets[key]);
                Expected::Value(key)
            }
            Op::Set(key) => {
                out.extend_from_slice(&self.sets[key]);
                Expected::Ok
            }
        }
    }
}

/// xorshift64*: fast, and good enough to pick keys.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

// ---------------------------------------------------------------------------------------------
// Wire protocols: how a command is written, and how one reply is cut from the bytes received.

/// How the benchmark talks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Ours: `GET key\r\n`; one line per reply, `OK\n` or the value and `\n`.
    Text,
    /// Redis inline commands: the same lines as `Text`; replies in RESP.
    Inline,
    /// RESP: `*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n`; replies in RESP.
    Resp,
}

/// One reply, as its protocol frames it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply<'a> {
    /// A line of our text protocol, without its `\n`: `OK`, a value, or `ERROR <reason>`.
    Line(&'a [u8]),
    /// RESP simple string, `+OK\r\n`: the text after `+`.
    Simple(&'a [u8]),
    /// RESP bulk string, `$5\r\nhello\r\n`: the bytes.
    Bulk(&'a [u8]),
    /// RESP null bulk string, `$-1\r\n`: no such key.
    Null,
    /// RESP error, `-ERR ...\r\n`: the text after `-`.
    Error(&'a [u8]),
    /// Any other RESP type (integer, array, ...): no command here gets one.
    Other,
}

/// Longest reply line, and longest bulk string, we wait for before calling the reply broken.
const MAX_REPLY_LINE: usize = 64 * 1024;
const MAX_BULK: usize = 1024 * 1024;

impl Protocol {
    /// The name in the JSON results: `text`, `inline`, `resp`.
    fn id(self) -> &'static str {
        match self {
            Protocol::Text => "text",
            Protocol::Inline => "inline",
            Protocol::Resp => "resp",
        }
    }

    /// The name in the printed table.
    fn label(self) -> &'static str {
        match self {
            Protocol::Text => "text",
            Protocol::Inline => "inline",
            Protocol::Resp => "RESP",
        }
    }

    /// Appends the command made of `words` to `out`.
    fn encode(self, words: &[&[u8]], out: &mut Vec<u8>) {
        match self {
            Protocol::Text | Protocol::Inline => {
                out.extend_from_slice(&words.join(&b' '));
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Resp => {
                let _ = write!(out, "*{}\r\n", words.len());
                for word in words {
                    let _ = write!(out, "${}\r\n", word.len());
                    out.extend_from_slice(word);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// Cuts one reply from the start of `buf`: `Ok(None)` while it is incomplete,
    /// `Ok(Some((reply, n)))` when it is there and took `n` bytes, `Err` when the bytes are not
    /// a well-formed reply.
    fn parse_reply(self, buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, String> {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_REPLY_LINE {
                return Err(format!("a reply line longer than 64 KiB: {}", show(buf)));
            }
            return Ok(None);
        };
        let after = newline + 1;
        if self == Protocol::Text {
            return Ok(Some((Reply::Line(&buf[..newline]), after)));
        }
        let Some(line) = buf[..newline].strip_suffix(b"\r") else {
            return Err(format!("a RESP line must end in \\r\\n: {}", show(&buf[..after])));
        };
        let reply = match line.first() {
            Some(b'+') => Reply::Simple(&line[1..]),
            Some(b'-') => Reply::Error(&line[1..]),
            Some(b'$') => {
                let length = std::str::from_utf8(&line[1..])
                    .ok()
                    .and_then(|digits| digits.parse::<i64>().ok());
                match length {
                    Some(-1) => Reply::Null,
                    Some(n) if (0..=MAX_BULK as i64).contains(&n) => {
                        let end = after + n as usize + 2;
                        if buf.len() < end {
                            return Ok(None);
                        }
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(format!(
                                "a bulk string must end in \\r\\n after its {n} bytes: {}",
                                show(&buf[..end])
                            ));
                        }
                        return Ok(Some((Reply::Bulk(&buf[after..end - 2]), end)));
                    }
                    _ => return Err(format!("a bulk string length we do not accept: {}", show(line))),
                }
            }
            _ => Reply::Other,
        };
        Ok(Some((reply, after)))
    }
}

/// What the reply to a command must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Ok,
    /// The value of this key.
    Value(usize),
}

/// Reads one reply from the start of `buf`. `Ok(None)`: it is not complete yet. `Ok(Some(n))`:
/// it was the expected reply and took `n` bytes. `Err`: a reply, but the wrong one.
fn check_reply(
    protocol: Protocol,
    buf: &[u8],
    expected: Expected,
    workload: &Workload,
) -> Result<Option<usize>, String> {
    let Some((reply, length)) = protocol.parse_reply(buf)? else {
        return Ok(None);
    };
    let right = match (expected, reply) {
        (Expected::Ok, Reply::Line(text) | Reply::Simple(text)) => text == b"OK",
        (Expected::Value(key), Reply::Line(value) | Reply::Bulk(value)) => value == workload.values[key],
        _ => false,
    };
    if right {
        return Ok(Some(length));
    }
    let want = match expected {
        Expected::Ok => "OK".to_string(),
        Expected::Value(key) => format!("the value {}", show(&workload.values[key])),
    };
    let got = match reply {
        Reply::Null => "no value ($-1, no such key)".to_string(),
        Reply::Error(text) => format!("the error {}", show(text)),
        _ => show(&buf[..length]),
    };
    Err(format!("expected {want}, got {got}"))
}

fn show(bytes: &[u8]) -> String {
    socket_workbook::escape::escape_abbreviated(bytes, 80)
}

/// Sends every `SET` once, in batches, so that every `GET` of the runs finds its value.
fn preload(server: &Server, workload: &Workload) -> Result<(), String> {
    let commands = Commands::new(workload, server.protocols[0]);
    let mut stream = TcpStream::connect(server.process.addr()).map_err(|err| err.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|err| err.to_string())?;
    let mut inbox = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for chunk in commands.sets.chunks(500) {
        stream
            .write_all(&chunk.concat())
            .map_err(|err| format!("preload: {err}"))?;
        let mut answered = 0;
        while answered < chunk.len() {
            match check_reply(commands.protocol, &inbox, Expected::Ok, workload) {
                Ok(Some(n)) => {
                    inbox.drain(..n);
                    answered += 1;
                }
                Ok(None) => {
                    let n = stream.read(&mut buf).map_err(|err| format!("preload: {err}"))?;
                    if n == 0 {
                        return Err(format!(
                            "{} closed the connection during the preload",
                            server.name
                        ));
                    }
                    inbox.extend_from_slice(&buf[..n]);
                }
                Err(err) => return Err(format!("{}: preload: {err}", server.name)),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One run: connections, batches, replies, latencies.

/// What one run measured.
struct RunResult {
    replies: u64,
    elapsed: Duration,
    /// Batch latencies in nanoseconds, sorted.
    latencies: Vec<u64>,
    /// CPU time (user + system) divided by wall time: 1.0 is one core busy all the time.
    server_cpu: f64,
    client_cpu: f64,
    /// The machine's busy CPU time, less the server's and ours, in the same unit: everything
    /// else that ran (other programs, and kernel work charged to neither). `None` off Linux.
    other_cpu: Option<f64>,
}

impl RunResult {
    fn ops_per_second(&self) -> f64 {
        self.replies as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let index = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        Some(Duration::from_nanos(self.latencies[index]))
    }
}

/// Runs the load against `server`, spoken to in `protocol`, with batches of `depth` commands.
fn measure(
    server: &Server,
    protocol: Protocol,
    workload: &Arc<Workload>,
    args: &Args,
    depth: usize,
) -> Result<RunResult, String> {
    let addr = server.process.addr();
    let commands = Arc::new(Commands::new(workload, protocol));
    let threads = args.client_threads.min(args.connections);
    let duration = Duration::from_secs_f64(args.duration);
    // Every thread opens its connections, then all start the clock together.
    let start_line = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        // Connections t, t + threads, t + 2*threads, ...
        let count = (args.connections - t).div_ceil(threads);
        let workload = Arc::clone(workload);
        let commands = Arc::clone(&commands);
        let start_line = Arc::clone(&start_line);
        handles.push(thread::spawn(move || {
            drive(
                addr,
                &workload,
                &commands,
                count,
                depth,
                duration,
                &start_line,
                t as u64,
            )
        }));
    }
    start_line.wait();
    let server_cpu_before = cpu_seconds(server.process.pid());
    let client_cpu_before = cpu_seconds_self();
    let machine_before = machine_busy_seconds();
    let started = Instant::now();
    let mut replies = 0;
    let mut latencies = Vec::new();
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(part)) => {
                replies += part.replies;
                latencies.extend(part.latencies);
            }
            Ok(Err(err)) => failure = Some(err),
            Err(_) => failure = Some("a load generator thread panicked".to_string()),
        }
    }
    let elapsed = started.elapsed();
    if let Some(err) = failure {
        return Err(format!("{} ({}): {err}", server.name, protocol.label()));
    }
    let wall = elapsed.as_secs_f64();
    let server_cpu = (cpu_seconds(server.process.pid()) - server_cpu_before) / wall;
    let client_cpu = (cpu_seconds_self() - client_cpu_before) / wall;
    let other_cpu = machine_before
        .zip(machine_busy_seconds())
        .map(|(before, after)| ((after - before) / wall - server_cpu - client_cpu).max(0.0));
    latencies.sort_unstable();
    Ok(RunResult {
        replies,
        // The threads stop taking replies at the deadline; count the run as exactly that long.
        elapsed: duration.min(elapsed),
        latencies,
        server_cpu,
        client_cpu,
        other_cpu,
    })
}

/// One connection of the load generator.
struct LoadConnection {
    stream: TcpStream,
    /// The batch being written, and how much of it is written.
    out: Vec<u8>,
    written: usize,
    /// Replies received but not yet checked (the start of one, usually).
    inbox: Vec<u8>,
    /// The replies still due for the batch in flight, in order.
    due: VecDeque<Expected>,
    batch_started: Instant,
}

/// What one generator thread counted.
struct PartResult {
    replies: u64,
    latencies: Vec<u64>,
}

/// One generator thread: opens `count` connections, waits at the start line, then keeps one
/// batch in flight on each until `duration` has passed.
#[allow(clippy::too_many_arguments)]
fn drive(
    addr: SocketAddr,
    workload: &Workload,
    commands: &Commands,
    count: usize,
    depth: usize,
    duration: Duration,
    start_line: &Barrier,
    seed: u64,
) -> Result<PartResult, String> {
    let opened = open_connections(addr, count);
    // Every thread must reach the start line, or the others wait there for ever.
    start_line.wait();
    let mut connections = opened?;
    let epoll = Epoll::new().map_err(|err| format!("epoll: {err}"))?;
    for (token, conn) in connections.iter().enumerate() {
        epoll
            .add(conn.stream.as_raw_fd(), token as u64)
            .map_err(|err| format!("epoll: {err}"))?;
    }
    let mut rng = Rng::new(seed + 1);
    let mut part = PartResult {
        replies: 0,
        latencies: Vec::with_capacity(1 << 20),
    };
    let started = Instant::now();
    let deadline = started + duration;
    for conn in &mut connections {
        start_batch(conn, workload, commands, &mut rng, depth, started);
        write_pending(conn)?;
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; connections.len()];
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let timeout_ms = (deadline - now).as_millis().clamp(1, 100) as i32;
        let ready = epoll
            .wait(&mut events, timeout_ms)
            .map_err(|err| format!("epoll: {err}"))?;
        for event in &events[..ready] {
            let conn = &mut connections[event.u64 as usize];
            if conn.written < conn.out.len() {
                write_pending(conn)?;
            }
            let n = match conn.stream.read(&mut buf) {
                Ok(0) => return Err("the server closed a connection".into()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(format!("read: {err}")),
            };
            // Check replies straight from `buf` when nothing is left over from the last read
            // (the usual case), else append and check from the leftover.
            let mut checked = 0;
            let data: &[u8] = if conn.inbox.is_empty() {
                &buf[..n]
            } else {
                conn.inbox.extend_from_slice(&buf[..n]);
                &conn.inbox
            };
            while let Some(&expected) = conn.due.front() {
                match check_reply(commands.protocol, &data[checked..], expected, workload)? {
                    Some(length) => {
                        checked += length;
                        conn.due.pop_front();
                    }
                    None => break,
                }
            }
            if checked < data.len() && conn.due.is_empty() {
                return Err(format!(
                    "unexpected bytes after the last reply: {}",
                    show(&data[checked..])
                ));
            }
            let leftover = data[checked..].to_vec();
            conn.inbox = leftover;
            if conn.due.is_empty() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                part.replies += depth as u64;
                part.latencies.push((now - conn.batch_started).as_nanos() as u64);
                start_batch(conn, workload, commands, &mut rng, depth, now);
                write_pending(conn)?;
            }
        }
    }
    Ok(part)
}

fn open_connections(addr: SocketAddr, count: usize) -> Result<Vec<LoadConnection>, String> {
    (0..count)
        .map(|_| {
            let stream = TcpStream::connect(addr).map_err(|err| format!("connect to {addr}: {err}"))?;
            stream.set_nodelay(true).map_err(|err| err.to_string())?;
            stream.set_nonblocking(true).map_err(|err| err.to_string())?;
            Ok(LoadConnection {
                stream,
                out: Vec::new(),
                written: 0,
                inbox: Vec::new(),
                due: VecDeque::new(),
                batch_started: Instant::now(),
            })
        })
        .collect()
}

fn start_batch(
    conn: &mut LoadConnection,
    workload: &Workload,
    commands: &Commands,
    rng: &mut Rng,
    depth: usize,
    now: Instant,
) {
    conn.out.clear();
    conn.written = 0;
    for _ in 0..depth {
        let expected = commands.push(workload, rng, &mut conn.out);
        conn.due.push_back(expected);
    }
    conn.batch_started = now;
}

/// Writes what the socket takes of the current batch. A batch is small (16 commands are under
/// 1 KiB), so this is one `write` nearly always; the rest goes when epoll says we can read
/// (the server cannot reply to a command it has not received, so it reads first).
fn write_pending(conn: &mut LoadConnection) -> Result<(), String> {
    while conn.written < conn.out.len() {
        match conn.stream.write(&conn.out[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("write: {err}")),
        }
    }
    Ok(())
}

/// A minimal `epoll` (Linux): register sockets for "readable", wait for some to be.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a negative result is an error.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the kernel writes at most `events.len()` entries into `events`.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and close it once.
        unsafe {
            libc::close(self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

/// User + system CPU seconds a process has used so far (Linux `/proc/<pid>/stat`; 0 elsewhere).
fn cpu_seconds(pid: i32) -> f64 {
    proc_cpu_seconds(&format!("/proc/{pid}/stat"))
}

fn cpu_seconds_self() -> f64 {
    proc_cpu_seconds("/proc/self/stat")
}

fn proc_cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the name and state.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / clock_ticks_per_second()
}

/// CPU seconds the whole machine has spent on anything but idling, summed over its cores
/// (Linux `/proc/stat`: user, nice, system, irq, softirq and steal; not idle or iowait).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user and nice).
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum();
    Some(busy / clock_ticks_per_second())
}

/// The unit of `/proc`'s CPU times (100 on nearly every Linux system).
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_second <= 0 { 100.0 } else { per_second as f64 }
}

fn cpu_count() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15-minute load averages (Linux `/proc/loadavg`; `None` elsewhere).
fn read_load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|field| field.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

fn format_load(load: Option<[f64; 3]>) -> String {
    match load {
        Some([one, five, fifteen]) => format!("{one:.2} {five:.2} {fifteen:.2}"),
        None => "unknown".to_string(),
    }
}

fn load_json(load: Option<[f64; 3]>) -> Value {
    load.map_or(Value::Null, |load| json!(load))
}

/// The machine, as the results file describes it.
struct Machine {
    cores: usize,
    /// `model name` in `/proc/cpuinfo`.
    cpu_model: Option<String>,
    /// `Linux 6.18.44`: `/proc/sys/kernel/ostype` and `osrelease`.
    kernel: Option<String>,
    load_average: Option<[f64; 3]>,
}

impl Machine {
    fn now() -> Machine {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_string())
        };
        let cpu_model = read("/proc/cpuinfo").and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        });
        let kernel = match (
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
        ) {
            (Some(os), Some(release)) => Some(format!("{os} {release}")),
            _ => None,
        };
        Machine {
            cores: cpu_count(),
            cpu_model,
            kernel,
            load_average: read_load_average(),
        }
    }
}

/// The printed output, kept for `--record`.
#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    /// Prints one line, and keeps it.
    fn say(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        println!("{line}");
        self.text.push_str(line);
        self.text.push('\n');
    }
}

/// One entry of the results file's `runs` (see `benches/results/README.md`).
fn run_json(
    server: &Server,
    protocol: Protocol,
    depth: usize,
    args: &Args,
    load_at_start: Option<[f64; 3]>,
    result: &RunResult,
) -> Value {
    let micros = |p: f64| {
        result
            .percentile(p)
            .map(|latency| rounded(latency.as_nanos() as f64 / 1000.0, 1))
    };
    json!({
        "server": server.name,
        "server_version": server.version,
        "protocol": protocol.id(),
        "client": "kv_bench",
        "depth": depth,
        "connections": args.connections,
        "idle_connections": 0,
        "duration_s": rounded(result.elapsed.as_secs_f64(), 3),
        "replies": result.replies,
        "ops_per_s": rounded(result.ops_per_second(), 0),
        "p50_us": micros(50.0),
        "p99_us": micros(99.0),
        "server_cpu": rounded(result.server_cpu, 3),
        "client_cpu": rounded(result.client_cpu, 3),
        "other_cpu": result.other_cpu.map(|cores| rounded(cores, 3)),
        "load_average_at_start": load_json(load_at_start),
    })
}

/// The commit the benchmark was built from, if it runs in a git work tree.
fn source_json() -> Value {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(commit) => json!({
            "commit": commit,
            "uncommitted_changes": git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|status| !status.is_empty()),
        }),
        None => json!({"commit": null, "uncommitted_changes": null}),
    }
}

/// The command that ran, as someone would type it: `cargo bench --bench kv_bench -- ...`,
/// without the options that only choose where results go.
fn shown_command() -> String {
    let mut shown = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--json" | "--record" => {
                args.next();
            }
            _ if arg.starts_with("--json=") || arg.starts_with("--record=") => {}
            _ => shown.push(arg),
        }
    }
    let mut command = "cargo bench --bench kv_bench".to_string();
    if !shown.is_empty() {
        command.push_str(" -- ");
        command.push_str(&shown.join(" "));
    }
    command
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|err| format!("could not write {}: {err}", path.display()))
}

/// `x` rounded to `decimals` places, so the JSON shows 0.92 rather than 0.9213875.
fn rounded(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn format_latency(latency: Option<Duration>) -> String {
    match latency {
        None => "-".to_string(),
        Some(d) if d < Duration::from_millis(1) => format!("{} µs", d.as_micros()),
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1000.0),
    }
}

/// 1234567 -> "1,234,567"
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        let _ = out.write_char(c);
    }
    out
}
