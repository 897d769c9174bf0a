//! `workbook grade DIR`: check a whole class.
//!
//! `DIR` holds one folder per student. Each folder has a file `workbook-commands.txt` that says
//! how to run that student's program for each step, one step per line:
//!
//! ```text
//! # step: command (run in this folder by sh; {port} is replaced by a free port)
//! echo-server: python3 echo_server.py --port {port}
//! kv-server: python3 kv_server.py --port {port}
//! kv-client: python3 kv_client.py --port {port}
//! ```
//!
//! Every step runs exactly like `workbook check`, with the same isolation and timeouts, and each
//! student has a time budget: scenarios not started when it runs out count as failed. A line is
//! run as `sh -c 'LINE "$@"' sh WORDS...`: for a client step, the scenario's words (`SET a 1`) are
//! added at the end of the student's command, each one a word of its own, as `workbook check`
//! adds them.
//!
//! The table (Markdown) and the CSV file are made for a gradebook: one row per student, one
//! column per step, the same total for everyone (a step not given counts as none passed), and a
//! note for everything a number does not say, every zero included.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::{CheckOptions, CheckStep, Outcome, StepReport, check, find_step};

/// The file in each student's folder.
pub const COMMANDS_FILE: &str = "workbook-commands.txt";

/// One line of a commands file: how to run a student's program for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCommand {
    pub step: String,
    /// The command line, `{port}` included, as the student wrote it.
    pub command: String,
    /// Its line in the commands file (1-based), for the notes.
    pub line: usize,
}

/// One student's folder and what it asks us to run.
#[derive(Debug, Clone)]
pub struct Student {
    pub name: String,
    pub dir: PathBuf,
    pub commands: Vec<StepCommand>,
    /// Problems with the commands file, by line.
    pub problems: Vec<String>,
}

/// Reads `workbook-commands.txt`: `step: command` lines; `#` comments and blank lines are skipped.
/// Returns the commands and the problems, each naming its line.
pub fn parse_commands(text: &str) -> (Vec<StepCommand>, Vec<String>) {
    let mut commands: Vec<StepCommand> = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((step, command)) = line.split_once(':') else {
            problems.push(format!("line {number}: expected `step: command`, got {line:?}"));
            continue;
        };
        let (step, command) = (step.trim(), command.trim());
        if find_step(step).is_none() {
            problems.push(format!(
                "line {number}: unknown step {step:?} (see `workbook list`)"
            ));
        } else if command.is_empty() {
            problems.push(format!("line {number}: no command after `{step}:`"));
        } else if let Some(first) = commands.iter().find(|c| c.step == step) {
            problems.push(format!(
                "line {number}: {step} again; the command on line {} is the one used",
                first.line
            ));
        } else {
            commands.push(StepCommand {
                step: step.to_string(),
                command: command.to_string(),
                line: number,
            });
        }
    }
    (commands, problems)
}

/// Every sub-folder of `dir`, sorted by name. A folder without a commands file is listed with a
/// problem, so a missing submission shows in the table instead of vanishing.
pub fn discover(dir: &Path) -> std::io::Result<Vec<Student>> {
    let mut students = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let (commands, problems) = match fs::read_to_string(path.join(COMMANDS_FILE)) {
            Ok(text) => parse_commands(&text),
            Err(_) => (Vec::new(), vec![format!("no {COMMANDS_FILE}")]),
        };
        let dir = path.canonicalize().unwrap_or(path);
        students.push(Student {
            name,
            dir,
            commands,
            problems,
        });
    }
    students.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(students)
}

/// The command `check` runs for a line of a commands file: the line, run by `sh`, with the
/// words a client scenario adds passed on to the student's program as `"$@"`.
pub fn shell_command(line: &str) -> Vec<String> {
    vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{line} \"$@\""),
        "sh".to_string(),
    ]
}

/// One cell of the table.
#[derive(Debug)]
pub enum Cell {
    /// The step ran: passed of total scenarios.
    Ran(StepReport),
    /// The student gave no command for this step.
    Missing,
    /// The step could not run (e.g. the command has no `{port}`); the line of the commands file.
    CannotRun { why: String, line: usize },
}

impl Cell {
    /// The notes of the step's passed scenarios (other accepted choices than the reference's),
    /// each once.
    pub fn notes(&self) -> Vec<&str> {
        match self {
            Cell::Ran(report) => report.notes(),
            _ => Vec::new(),
        }
    }

    /// Scenarios passed; `None` for a step not given.
    pub fn passed(&self) -> Option<usize> {
        match self {
            Cell::Ran(report) => Some(report.passed()),
            Cell::CannotRun { .. } => Some(0),
            Cell::Missing => None,
        }
    }

    fn text(&self, step: &CheckStep) -> String {
        match self {
            Cell::Ran(report) => format!("{}/{}", report.passed(), report.total()),
            Cell::Missing => "—".to_string(),
            Cell::CannotRun { .. } => format!("0/{} (could not run)", step.scenario_count()),
        }
    }
}

#[derive(Debug)]
pub struct StudentGrade {
    pub student: Student,
    /// One cell per step of the table, in the table's order.
    pub cells: Vec<Cell>,
    pub elapsed: Duration,
}

impl StudentGrade {
    /// What the instructor should know beside the numbers, one entry each: problems with the
    /// commands file, why a step scored nothing (never listened, exited at once, never answered,
    /// could not run), steps that ran out of time, and the notes of passed scenarios
    /// (`kv-server: your server refuses an empty value ...`). `steps` are the table's.
    pub fn notes(&self, steps: &[CheckStep]) -> Vec<String> {
        let mut notes = self.student.problems.clone();
        for (step, cell) in steps.iter().zip(&self.cells) {
            match cell {
                Cell::Missing => {}
                Cell::CannotRun { why, line } => {
                    notes.push(format!("{} (line {line}): could not run: {why}", step.name));
                }
                Cell::Ran(report) => {
                    if let Some(trouble) = &report.trouble {
                        notes.push(format!("{}: {}", step.name, trouble.what));
                    } else if report.ran_out_of_time() {
                        let not_run = report
                            .results
                            .iter()
                            .filter(|r| matches!(r.outcome, Outcome::NotRun { .. }))
                            .count();
                        notes.push(format!(
                            "{}: time limit reached, {not_run} scenarios not run",
                            step.name
                        ));
                    } else if report.passed() == 0 && report.total() > 0 {
                        notes.push(format!("{}: {}", step.name, why_none_passed(report)));
                    }
                    notes.extend(
                        cell.notes()
                            .into_iter()
                            .map(|note| format!("{}: {note}", step.name)),
                    );
                }
            }
        }
        notes
    }

    /// Scenarios passed, and the table's total (the same for every student).
    pub fn totals(&self, steps: &[CheckStep]) -> (usize, usize) {
        let passed = self.cells.iter().filter_map(Cell::passed).sum();
        (passed, steps.iter().map(CheckStep::scenario_count).sum())
    }
}

/// For a step that ran and passed nothing, without a trouble of its own: the first failure and
/// its hint (or its cause).
fn why_none_passed(report: &StepReport) -> String {
    if let Some(cause) = report.causes.first() {
        return format!("none passed; the program {}", cause.what);
    }
    report
        .results
        .iter()
        .find_map(|r| match &r.outcome {
            Outcome::Failed { hint, .. } => {
                Some(format!("none passed; the first failure, {}: {hint}", r.name))
            }
            _ => None,
        })
        .unwrap_or_else(|| "none passed".to_string())
}

/// How to grade.
#[derive(Debug, Clone)]
pub struct GradeOptions {
    /// Total time for one student's steps.
    pub per_student: Duration,
    /// Students checked at the same time.
    pub jobs: usize,
    pub check: CheckOptions,
}

/// The steps that appear in at least one student's commands file, in teaching order.
pub fn table_steps(students: &[Student]) -> Vec<CheckStep> {
    super::steps()
        .into_iter()
        .filter(|step| {
            students
                .iter()
                .any(|s| s.commands.iter().any(|c| c.step == step.name))
        })
        .collect()
}

/// Grades every student; `progress` is called as each one finishes.
pub fn grade(
    students: Vec<Student>,
    steps: &[CheckStep],
    options: &GradeOptions,
    progress: &(dyn Fn(&StudentGrade) + Sync),
) -> Vec<StudentGrade> {
    let queue = Mutex::new(students.into_iter().enumerate().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some((index, student)) = next else { break };
                    let graded = grade_student(student, steps, options);
                    progress(&graded);
                    done.lock().unwrap().push((index, graded));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, graded)| graded).collect()
}

fn grade_student(student: Student, steps: &[CheckStep], options: &GradeOptions) -> StudentGrade {
    let started = Instant::now();
    let check_options = CheckOptions {
        dir: Some(student.dir.clone()),
        deadline: Some(started + options.per_student),
        ..options.check.clone()
    };
    let cells = steps
        .iter()
        .map(
            |step| match student.commands.iter().find(|c| c.step == step.name) {
                None => Cell::Missing,
                Some(given) => match check(step, &shell_command(&given.command), &check_options) {
                    Ok(report) => Cell::Ran(report),
                    Err(why) => Cell::CannotRun {
                        why: why.0,
                        line: given.line,
                    },
                },
            },
        )
        .collect();
    StudentGrade {
        student,
        cells,
        elapsed: started.elapsed(),
    }
}

/// The table as Markdown: a row per student, a column per step, passed/total in each cell (`—`
/// for a step not given).
pub fn markdown(grades: &[StudentGrade], steps: &[CheckStep]) -> String {
    let mut out = String::from("| student |");
    for step in steps {
        out.push_str(&format!(" {} |", step.name));
    }
    out.push_str(" total | notes |\n|---|");
    out.push_str(&"---|".repeat(steps.len() + 2));
    out.push('\n');
    for grade in grades {
        let (passed, total) = grade.totals(steps);
        out.push_str(&format!("| {} |", grade.student.name));
        for (step, cell) in steps.iter().zip(&grade.cells) {
            out.push_str(&format!(" {} |", cell.text(step)));
        }
        let notes = grade.notes(steps).join("; ");
        out.push_str(&format!(
            " {passed}/{total} | {} |\n",
            notes.replace('|', "\\|").replace(['\n', '\r'], " ")
        ));
    }
    out
}

/// The same table as CSV (RFC 4180), for a spreadsheet or a gradebook: a column per step headed
/// `step (of N)` with the number of scenarios passed (a number, not `3/4`, which a spreadsheet
/// reads as a date), an empty cell for a step not given, then passed, total and the notes.
pub fn csv(grades: &[StudentGrade], steps: &[CheckStep]) -> String {
    let mut out = String::new();
    let mut header = vec!["student".to_string()];
    header.extend(
        steps
            .iter()
            .map(|step| format!("{} (of {})", step.name, step.scenario_count())),
    );
    header.extend(["passed", "total", "notes"].map(String::from));
    push_csv_row(&mut out, &header);
    for grade in grades {
        let (passed, total) = grade.totals(steps);
        let mut row = vec![grade.student.name.clone()];
        row.extend(
            grade
                .cells
                .iter()
                .map(|cell| cell.passed().map_or(String::new(), |n| n.to_string())),
        );
        row.extend([
            passed.to_string(),
            total.to_string(),
            grade.notes(steps).join("; "),
        ]);
        push_csv_row(&mut out, &row);
    }
    out
}

fn push_csv_row(out: &mut String, fields: &[String]) {
    let quoted: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
    out.push_str(&quoted.join(","));
    out.push_str("\r\n");
}

/// One CSV field: quoted when it holds a comma, a quote or a line break (quotes doubled). Text
/// that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a `'` in front.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_string()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_file_lines_are_parsed_and_problems_reported() {
        let (commands, problems) = parse_commands(
            "# my steps\n\necho-server: python3 echo.py --port {port}\nkv-serve: x\nnonsense\n\
             time-server:   ./time --port {port}  \necho-server: again\nkv-server:\n",
        );
        assert_eq!(
            commands,
            vec![
                StepCommand {
                    step: "echo-server".to_string(),
                    command: "python3 echo.py --port {port}".to_string(),
                    line: 3
                },
                StepCommand {
                    step: "time-server".to_string(),
                    command: "./time --port {port}".to_string(),
                    line: 6
                },
            ]
        );
        assert_eq!(
            problems,
            [
                "line 4: unknown step \"kv-serve\" (see `workbook list`)",
                "line 5: expected `step: command`, got \"nonsense\"",
                "line 7: echo-server again; the command on line 3 is the one used",
                "line 8: no command after `kv-server:`",
            ]
        );
    }

    #[test]
    fn the_words_of_a_client_scenario_reach_the_program_as_they_are() {
        let mut command: Vec<String> = shell_command("printf '[%s]' {port}");
        command.extend(["SET", "greeting", "hello, big world"].map(String::from));
        let output = std::process::Command::new(&command[0])
            .args(&command[1..])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "[{port}][SET][greeting][hello, big world]"
        );
    }

    #[test]
    fn csv_fields_are_quoted_for_a_spreadsheet() {
        assert_eq!(csv_field("alice"), "alice");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field(""), "");
    }
}
