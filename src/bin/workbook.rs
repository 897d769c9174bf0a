//! `workbook`: check your own solution against the scenarios the lessons are tested with, or
//! grade a whole class.
//!
//! ```text
//! cargo run --bin workbook -- list
//! cargo run --bin workbook -- check kv-server -- python3 kv_server.py --port {port}
//! cargo run --bin workbook -- grade submissions/
//! cargo run --bin workbook -- proxy --to 127.0.0.1:65433 --slice 1
//! cargo run --bin workbook -- diagrams            # redraw the book's figures
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use socket_workbook::checker::grade::{self, COMMANDS_FILE, GradeOptions};
use socket_workbook::checker::{CheckOptions, check, find_step, report, steps};
use socket_workbook::harness::process::{kill_all_running, wait_if_interrupted};
use socket_workbook::proxy::ProxyArgs;

#[derive(Parser)]
#[command(
    version,
    about = "Check your own solution to a lesson, in any language, grade a class, or put bad network weather between a client and a server."
)]
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List the steps that can be checked and what each expects.
    List,
    /// Run your program through a step's scenarios: `workbook check kv-server -- python3 kv.py --port {port}`.
    Check {
        /// The step to check (see `workbook list`).
        step: String,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds each read waits for your program to answer.
        #[arg(long, default_value_t = 2.0)]
        timeout: f64,
        /// Run only the scenarios whose name contains this text.
        #[arg(long)]
        only: Option<String>,
        /// Run every scenario, also when the first three stall the same way (a server that never
        /// answers, a client that never exits); by default the rest are then not run.
        #[arg(long)]
        no_fail_fast: bool,
        /// Your program and its arguments; `{port}` is replaced by the port to use.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Check every student's folder in DIR (each with a `workbook-commands.txt`) and print a table.
    Grade {
        /// The folder with one sub-folder per student.
        dir: PathBuf,
        /// Where to write the table as CSV [default: DIR/grades.csv].
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Seconds one student's steps may take in all.
        #[arg(long, default_value_t = 120.0)]
        per_student: f64,
        /// Students checked at the same time.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Seconds each read waits for a program to answer.
        #[arg(long, default_value_t = 2.0)]
        timeout: f64,
        /// Also print every failure in full.
        #[arg(long)]
        details: bool,
    },
    /// Forward TCP (or UDP) to a server through bad network weather, and log what it did:
    /// `workbook proxy --to 127.0.0.1:65433 --slice 1`.
    #[command(
        long_about = "Forward TCP connections (or UDP datagrams, with --udp) to a server through \
                      bad network weather: delays, slices, closes, resets, stalls, refusals, lost \
                      or reordered datagrams. It prints `listening on <ip>:<port>`, then one line \
                      for everything it does. The same --seed and the same traffic make the same \
                      run. Weather flags apply to both directions unless --direction says otherwise.",
        after_help = "Examples:\n  \
                      workbook proxy --to 127.0.0.1:65433 --slice 1                 # one byte per write\n  \
                      workbook proxy --to 127.0.0.1:65433 --direction down --reset-after 2\n  \
                      workbook proxy --to 127.0.0.1:65433 --stall-after 0           # a black hole\n  \
                      workbook proxy --udp --to 127.0.0.1:9999 --drop 20% --seed 7\n\n\
                      The book's page \"Network weather\" explains every flag and the log."
    )]
    Proxy(Box<ProxyArgs>),
    /// Redraw the book's figures (book/src/diagrams/) from the recorded transcripts, the
    /// hand-made descriptions and the benchmark's results; `--check` only compares.
    Diagrams {
        /// Change nothing: list the figures that differ from what would be drawn, and fail if any.
        #[arg(long)]
        check: bool,
        /// The repository's folder [default: the one this program was built from].
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.clamp(0.05, 3600.0))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The proxy starts no programs; Ctrl-C simply ends it.
    if let Action::Proxy(args) = &cli.command {
        return socket_workbook::proxy::cli::run(args);
    }
    if let Action::Diagrams { check, root } = &cli.command {
        return diagrams(*check, root.clone());
    }
    // The programs we start run in process groups of their own, out of reach of the terminal's
    // Ctrl-C: stop them ourselves, so none is left behind.
    let _ = ctrlc::set_handler(|| {
        kill_all_running();
        eprintln!("workbook: interrupted; every program it started has been stopped");
        std::process::exit(130);
    });
    let code = run(cli.command);
    // If Ctrl-C came while we were working, the handler ends the process once every program
    // is stopped; do not race it to the exit.
    wait_if_interrupted();
    code
}

/// `workbook diagrams`: write every figure, or with `check`, only say which are out of date.
fn diagrams(check: bool, root: Option<PathBuf>) -> ExitCode {
    use socket_workbook::diagram;
    let root = root.unwrap_or_else(diagram::repository);
    let result = if check {
        diagram::stale(&root).map(|problems| {
            for problem in &problems {
                eprintln!("{problem}");
            }
            problems.is_empty()
        })
    } else {
        diagram::write_all(&root).map(|written| {
            println!(
                "drew {} figures into {}",
                written.len(),
                root.join(diagram::DIAGRAMS_DIR).display()
            );
            true
        })
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("workbook diagrams: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(action: Action) -> ExitCode {
    match action {
        Action::Proxy(args) => socket_workbook::proxy::cli::run(&args),
        Action::Diagrams { check, root } => diagrams(check, root),
        Action::List => {
            print!("{}", report::list(&steps()));
            ExitCode::SUCCESS
        }
        Action::Check {
            step,
            json,
            timeout,
            only,
            no_fail_fast,
            command,
        } => {
            let Some(step) = find_step(&step) else {
                eprintln!("workbook: unknown step {step:?}; `workbook list` shows the steps");
                return ExitCode::from(2);
            };
            let options = CheckOptions {
                read_timeout: seconds(timeout),
                only,
                fail_fast: !no_fail_fast,
                ..CheckOptions::default()
            };
            match check(&step, &command, &options) {
                Err(why) => {
                    eprintln!("workbook: could not run the check: {why}");
                    ExitCode::from(2)
                }
                Ok(result) => {
                    if json {
                        println!("{:#}", report::json(&result));
                    } else {
                        print!("{}", report::text(&result));
                    }
                    if result.total() == 0 {
                        eprintln!("workbook: no scenario matched --only");
                        ExitCode::from(2)
                    } else if result.all_passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
            }
        }
        Action::Grade {
            dir,
            csv,
            per_student,
            jobs,
            timeout,
            details,
        } => {
            let students = match grade::discover(&dir) {
                Ok(students) if !students.is_empty() => students,
                Ok(_) => {
                    eprintln!("workbook: {} has no student folders", dir.display());
                    return ExitCode::from(2);
                }
                Err(err) => {
                    eprintln!("workbook: cannot read {}: {err}", dir.display());
                    return ExitCode::from(2);
                }
            };
            let table_steps = grade::table_steps(&students);
            if table_steps.is_empty() {
                eprintln!("workbook: no student folder has a usable {COMMANDS_FILE}");
                return ExitCode::from(2);
            }
            let options = GradeOptions {
                per_student: seconds(per_student),
                jobs,
                check: CheckOptions {
                    read_timeout: seconds(timeout),
                    ..CheckOptions::default()
                },
            };
            eprintln!(
                "grading {} students ({} at a time)",
                students.len(),
                options.jobs.max(1)
            );
            let grades = grade::grade(students, &table_steps, &options, &|graded| {
                eprintln!(
                    "  {} done in {:.1} s",
                    graded.student.name,
                    graded.elapsed.as_secs_f64()
                );
            });
            if details {
                for graded in &grades {
                    for cell in &graded.cells {
                        if let grade::Cell::Ran(result) = cell
                            && !result.all_passed()
                        {
                            println!(
                                "## {}\n\n```text\n{}```\n",
                                graded.student.name,
                                report::text(result)
                            );
                        }
                    }
                }
            }
            print!("{}", grade::markdown(&grades, &table_steps));
            let csv_path = csv.unwrap_or_else(|| dir.join("grades.csv"));
            if let Err(err) = std::fs::write(&csv_path, grade::csv(&grades, &table_steps)) {
                eprintln!("workbook: could not write {}: {err}", csv_path.display());
                return ExitCode::from(2);
            }
            eprintln!("wrote {}", csv_path.display());
            ExitCode::SUCCESS
        }
    }
}
