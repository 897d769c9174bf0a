//! `cargo bench --bench resp_bench`: lesson 13 against Redis, measured with Redis's own load
//! generator, `redis-benchmark`, in Redis's own protocol.
//!
//! `kv_bench` measures with a load generator written here; a reader may fairly ask whether it
//! flatters our servers. This benchmark answers with the tool Redis users already trust: the same
//! `redis-benchmark -t set,get -c 50 -P 1` and `-P 16` (random keys over 10,000, 32-byte values,
//! as kv_bench's load) runs against lesson 13 and against `redis-server`, one after the other
//! in the same run, and prints each command's requests per second, the ratio 13/Redis, and the CPU
//! each process used: the server's from `/proc/PID/stat`, redis-benchmark's from
//! `getrusage(RUSAGE_CHILDREN)` once it has exited. redis-benchmark runs on one thread by default:
//! when it used a whole core, it, not the server, was the limit; so every setting runs again with
//! `--threads 2`.
//!
//! With `--kv-bench-json PATH` (a file written by `cargo bench --bench kv_bench -- --lessons 13
//! --redis-protocols resp --json PATH`), kv_bench's own figures for the same two servers are
//! printed next to these and kept in the recording. `bash benches/record-resp-bench` makes both
//! runs and the recording in one command.
//!
//! ```sh
//! apt-get install redis-server redis-tools     # or: brew install redis
//! cargo bench --bench resp_bench
//! cargo bench --bench resp_bench -- --help
//! bash benches/record-resp-bench               # record both benchmarks in benches/results/
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use socket_workbook::harness::{self, Readiness, ServerProcess};

const LESSON: &str = env!("CARGO_BIN_EXE_13_resp_server");
const SCHEMA: &str = "socket-workbook/bench-results";
const SCHEMA_VERSION: u32 = 1;

/// Lesson 13 against Redis, with redis-benchmark.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Connections (redis-benchmark -c).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Pipeline depths, comma-separated (redis-benchmark -P).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pipeline: Vec<usize>,
    /// redis-benchmark threads to try, comma-separated (1 is its default).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Requests per command at depth 1 (redis-benchmark -n); depth P sends P times as many, so
    /// that every run lasts about as long.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Distinct keys (redis-benchmark -r).
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Bytes in every value (redis-benchmark -d).
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// The Redis server to compare with.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
    /// The load generator.
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: String,
    /// A kv_bench results file whose RESP runs to show next to these (see the module comment).
    #[arg(long, value_name = "PATH")]
    kv_bench_json: Option<PathBuf>,
    /// Keep a recording in this directory: resp_bench-<date>.txt and .json.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// `cargo bench` passes this to every bench target; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    // Ctrl-C reaches us, not the servers (they run in process groups of their own): stop them.
    let _ = ctrlc::set_handler(|| {
        harness::process::kill_all_running();
        std::process::exit(130);
    });
    if let Err(err) = run(&args) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

/// A server under test.
struct Server {
    name: String,
    version: Option<String>,
    process: ServerProcess,
}

/// One redis-benchmark test (SET or GET) of one run.
struct Measured {
    command: String,
    requests_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// One redis-benchmark process: its tests, and the CPU used while it ran.
struct BenchRun {
    tests: Vec<Measured>,
    wall_s: f64,
    server_cpu: f64,
    client_cpu: f64,
    other_cpu: Option<f64>,
}

fn run(args: &Args) -> Result<(), String> {
    for program in [&args.redis_server, &args.redis_benchmark] {
        if Command::new(program).arg("--version").output().is_err() {
            return Err(format!(
                "{program} is not installed: apt-get install redis-server redis-tools (macOS: brew install redis)"
            ));
        }
    }
    let started = chrono::Local::now();
    let recording = match &args.record {
        Some(dir) => {
            let stem = format!("resp_bench-{}", started.format("%Y-%m-%d"));
            let (text, json) = (dir.join(format!("{stem}.txt")), dir.join(format!("{stem}.json")));
            if text.exists() || json.exists() {
                return Err(format!("{} exists: move it away first", text.display()));
            }
            Some((text, json))
        }
        None => None,
    };
    let load_at_start = load_average();
    let lesson = Server {
        name: "13_resp_server".to_string(),
        version: None,
        process: harness::start_lesson(LESSON, &["--quiet"]).map_err(|err| format!("lesson 13: {err}"))?,
    };
    let redis = start_redis(&args.redis_server)?;
    let mut out = String::new();
    let mut say = |line: String| {
        println!("{line}");
        out.push_str(&line);
        out.push('\n');
    };
    say(format!(
        "load: redis-benchmark -t set,get -c {} -r {} -d {}, {} requests per command at depth 1 (x depth deeper)",
        args.clients, args.keys, args.value_size, args.requests
    ));
    say(format!(
        "machine: {} CPUs, load average {} at the start",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_at_start.map_or("unknown".into(), |l| format!(
            "{:.2} {:.2} {:.2}",
            l[0], l[1], l[2]
        ))
    ));
    say("CPU in cores (1.00 = one core busy all the time); a load generator near 1.00 per thread was the limit".into());
    say(String::new());
    say(format!(
        "{:>5} {:>7}  {:<22} {:<4} {:>12} {:>8} {:>8}  {:>10} {:>10} {:>10}",
        "depth",
        "threads",
        "server",
        "test",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "server CPU",
        "bench CPU",
        "other CPU"
    ));
    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    for &depth in &args.pipeline {
        for &threads in &args.threads {
            let mut figures: Vec<(String, f64)> = Vec::new();
            // CPU seconds each server spent on the whole run (SET and GET, the same requests).
            let mut server_cpu_seconds = Vec::new();
            for server in [&lesson, &redis] {
                let measured = bench(args, server, depth, threads)?;
                server_cpu_seconds.push(measured.server_cpu * measured.wall_s);
                for test in &measured.tests {
                    say(format!(
                        "{:>5} {:>7}  {:<22} {:<4} {:>12.0} {:>8} {:>8}  {:>10.2} {:>10.2} {:>10}",
                        depth,
                        threads,
                        label(server),
                        test.command,
                        test.requests_per_s,
                        test.p50_ms.map_or("-".into(), |ms| format!("{ms:.3}")),
                        test.p99_ms.map_or("-".into(), |ms| format!("{ms:.3}")),
                        measured.server_cpu,
                        measured.client_cpu,
                        measured
                            .other_cpu
                            .map_or("-".into(), |cores| format!("{cores:.2}")),
                    ));
                    figures.push((format!("{}/{}", server.name, test.command), test.requests_per_s));
                    runs.push(json!({
                        "server": server.name,
                        "server_version": server.version,
                        "protocol": "resp",
                        "client": "redis-benchmark",
                        "depth": depth,
                        "connections": args.clients,
                        "idle_connections": 0,
                        // redis-benchmark times each test itself; the CPU figures cover the
                        // whole process (both tests), over this wall time.
                        "duration_s": rounded(measured.wall_s, 3),
                        "replies": requests(args, depth),
                        "ops_per_s": rounded(test.requests_per_s, 0),
                        "p50_us": test.p50_ms.map(|ms| rounded(ms * 1000.0, 1)),
                        "p99_us": test.p99_ms.map(|ms| rounded(ms * 1000.0, 1)),
                        "server_cpu": rounded(measured.server_cpu, 3),
                        "client_cpu": rounded(measured.client_cpu, 3),
                        "other_cpu": measured.other_cpu.map(|cores| rounded(cores, 3)),
                        "load_average_at_start": load_average(),
                        "command_tested": test.command,
                        "client_threads": threads,
                    }));
                }
            }
            // On a busy machine a server may get little CPU: requests per CPU-second it used
            // compare the servers' work, whatever else ran.
            let per_cpu = match server_cpu_seconds[..] {
                [ours, theirs] if ours > 0.0 => Some(theirs / ours),
                _ => None,
            };
            for command in ["SET", "GET"] {
                let find = |server: &str| {
                    figures
                        .iter()
                        .find(|(name, _)| name == &format!("{server}/{command}"))
                        .map(|&(_, rps)| rps)
                };
                if let (Some(ours), Some(theirs)) = (find("13_resp_server"), find("redis-server")) {
                    let ratio = ours / theirs;
                    say(format!(
                        "{depth:>5} {threads:>7}  ratio 13/Redis {command:<4} {ratio:>17.2}"
                    ));
                    ratios.push(json!({
                        "depth": depth,
                        "connections": args.clients,
                        "idle_connections": 0,
                        "client": "redis-benchmark",
                        "client_threads": threads,
                        "command_tested": command,
                        "numerator": {"server": "13_resp_server", "protocol": "resp"},
                        "denominator": {"server": "redis-server", "protocol": "resp"},
                        "value": rounded(ratio, 3),
                        "per_server_cpu_second": per_cpu.map(|r| rounded(r, 3)),
                        "goal": true,
                    }));
                }
            }
            if let Some(per_cpu) = per_cpu {
                say(format!(
                    "{depth:>5} {threads:>7}  ratio 13/Redis per server CPU-second (SET+GET) {per_cpu:>5.2}"
                ));
            }
        }
    }
    if let Some(path) = &args.kv_bench_json {
        say(String::new());
        say(format!("kv_bench's own load generator ({}):", path.display()));
        let (kv_runs, kv_ratios) = kv_bench_figures(path, &mut say)?;
        runs.extend(kv_runs);
        ratios.extend(kv_ratios);
    }
    for server in [lesson, redis] {
        let name = server.name.clone();
        if let Some(line) = server
            .process
            .finish()
            .iter()
            .find(|line| line.text.contains("panicked"))
        {
            return Err(format!("{name} panicked: {}", line.text));
        }
    }
    let results = json!({
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool": "resp_bench",
        "date": started.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "command": "cargo bench --bench resp_bench",
        "source": {"commit": git(&["rev-parse", "HEAD"]), "uncommitted_changes": git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty())},
        "machine": {
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "load_average": load_at_start,
        },
        "settings": {
            "connections": args.clients,
            "pipeline_depths": args.pipeline,
            "keys": args.keys,
            "value_bytes": args.value_size,
            "requests_at_depth_1": args.requests,
            "client_threads": args.threads,
        },
        "runs": runs,
        "ratios": ratios,
    });
    if let Some((text, json_path)) = recording {
        let shown = std::env::args()
            .skip(1)
            .filter(|arg| arg != "--bench")
            .collect::<Vec<_>>()
            .join(" ");
        write(
            &text,
            &format!("$ cargo bench --bench resp_bench -- {shown}\n{out}"),
        )?;
        write(
            &json_path,
            &(serde_json::to_string_pretty(&results).map_err(|e| e.to_string())? + "\n"),
        )?;
        println!("recorded {} and {}", text.display(), json_path.display());
    }
    Ok(())
}

fn label(server: &Server) -> String {
    match &server.version {
        Some(version) => format!("{} {version}", server.name),
        None => server.name.clone(),
    }
}

fn requests(args: &Args, depth: usize) -> usize {
    args.requests * depth
}

/// Runs redis-benchmark once against `server` and measures the CPU everyone used meanwhile.
fn bench(args: &Args, server: &Server, depth: usize, threads: usize) -> Result<BenchRun, String> {
    let server_pid = server.process.pid();
    let server_before = process_cpu(server_pid);
    let children_before = children_cpu();
    let machine_before = machine_busy();
    let started = Instant::now();
    let mut command = Command::new(&args.redis_benchmark);
    command.args([
        "-h",
        "127.0.0.1",
        "-p",
        &server.process.addr().port().to_string(),
        "-t",
        "set,get",
        "--csv",
    ]);
    command.args(["-c", &args.clients.to_string(), "-P", &depth.to_string()]);
    command.args(["-n", &requests(args, depth).to_string()]);
    command.args(["-r", &args.keys.to_string(), "-d", &args.value_size.to_string()]);
    if threads > 1 {
        command.args(["--threads", &threads.to_string()]);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("could not run {}: {err}", args.redis_benchmark))?;
    let wall_s = started.elapsed().as_secs_f64();
    let server_cpu = (process_cpu(server_pid) - server_before) / wall_s;
    let client_cpu = (children_cpu() - children_before) / wall_s;
    let other_cpu = machine_busy()
        .zip(machine_before)
        .map(|(after, before)| ((after - before) / wall_s - server_cpu - client_cpu).max(0.0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || stderr.contains("ERR") || stdout.contains("ERR") {
        return Err(format!(
            "redis-benchmark against {} failed:\n{stdout}{stderr}",
            server.name
        ));
    }
    Ok(BenchRun {
        tests: parse_csv(&stdout)?,
        wall_s,
        server_cpu,
        client_cpu,
        other_cpu,
    })
}

/// redis-benchmark --csv: a header, then `"SET","41666.67","1.1","0.2","0.599","2.1","3.0","5.0"`.
fn parse_csv(text: &str) -> Result<Vec<Measured>, String> {
    let mut lines = text.lines().filter(|line| line.starts_with('"'));
    let header: Vec<String> = lines
        .next()
        .ok_or("redis-benchmark printed no CSV")?
        .split(',')
        .map(unquote)
        .collect();
    let column = |name: &str| header.iter().position(|field| field == name);
    let (rps, p50, p99) = (
        column("rps").ok_or("no rps column")?,
        column("p50_latency_ms"),
        column("p99_latency_ms"),
    );
    let mut tests = Vec::new();
    for line in lines {
        let fields: Vec<String> = line.split(',').map(unquote).collect();
        let number = |i: Option<usize>| i.and_then(|i| fields.get(i)).and_then(|f| f.parse::<f64>().ok());
        tests.push(Measured {
            command: fields[0].clone(),
            requests_per_s: number(Some(rps)).ok_or_else(|| format!("no rps in {line}"))?,
            p50_ms: number(p50),
            p99_ms: number(p99),
        });
    }
    Ok(tests)
}

fn unquote(field: &str) -> String {
    field.trim().trim_matches('"').to_string()
}

/// The RESP runs and ratios of a kv_bench results file, printed as they are.
fn kv_bench_figures(path: &Path, say: &mut impl FnMut(String)) -> Result<(Vec<Value>, Vec<Value>), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let results: Value = serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))?;
    let empty = Vec::new();
    let runs: Vec<Value> = results["runs"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|run| run["protocol"] == "resp")
        .cloned()
        .collect();
    let number = |value: &Value, decimals: usize| {
        value
            .as_f64()
            .map_or("-".to_string(), |x| format!("{x:.decimals$}"))
    };
    for run in &runs {
        say(format!(
            "{:>5} {:>7}  {:<22} {:<4} {:>12} {:>8} {:>8}  {:>10} {:>10} {:>10}",
            number(&run["depth"], 0),
            "-",
            run["server"].as_str().unwrap_or("?"),
            "mix",
            number(&run["ops_per_s"], 0),
            run["p50_us"]
                .as_f64()
                .map_or("-".into(), |us| format!("{:.3}", us / 1000.0)),
            run["p99_us"]
                .as_f64()
                .map_or("-".into(), |us| format!("{:.3}", us / 1000.0)),
            number(&run["server_cpu"], 2),
            number(&run["client_cpu"], 2),
            number(&run["other_cpu"], 2),
        ));
    }
    let ratios: Vec<Value> = results["ratios"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|ratio| {
            ratio["numerator"]["server"] == "13_resp_server" && ratio["denominator"]["protocol"] == "resp"
        })
        .cloned()
        .collect();
    for ratio in &ratios {
        say(format!(
            "{:>5} {:>7}  ratio 13/Redis mix  {:>17}",
            number(&ratio["depth"], 0),
            "-",
            number(&ratio["value"], 2)
        ));
    }
    Ok((runs, ratios))
}

/// Starts Redis on a free port, without persistence.
fn start_redis(program: &str) -> Result<Server, String> {
    let version = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|err| format!("{program}: {err}"))?;
    let version = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .map(str::to_string);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| err.to_string())?
        .port();
    let mut command = Command::new(program);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    let process = ServerProcess::start(command, Readiness::PortListening(port), Duration::from_secs(10))
        .map_err(|err| format!("could not start {program}: {err}"))?;
    Ok(Server {
        name: "redis-server".to_string(),
        version,
        process,
    })
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 { 100.0 } else { ticks as f64 }
}

/// User + system CPU seconds of a running process (`/proc/PID/stat`, fields 14 and 15).
fn process_cpu(pid: i32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum::<f64>()
        / ticks_per_second()
}

/// User + system CPU seconds of every child process that has exited and been waited for: after
/// a redis-benchmark run, what it used (the servers, also our children, are still running).
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we pass, and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The machine's busy CPU seconds over all cores (`/proc/stat`).
fn machine_busy() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    Some(
        [0, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|&i| fields.get(i))
            .sum::<f64>()
            / ticks_per_second(),
    )
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|field| field.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn rounded(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|err| format!("could not write {}: {err}", path.display()))
}
