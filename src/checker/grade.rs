//! `workbook grade DIR`: check a whole class.
//!
//! `DIR` holds one folder per student. Each folder has a file `workbook-commands.txt` that says
//! how to run that student's program for each step, one step per line:
//!
//! ```text
//! # step: command (run in this folder by `sh -c`; {port} is replaced by a free port)
//! echo-server: python3 echo_server.py {port}
//! kv-server: python3 kv_server.py --port {port}
//! kv-client: python3 kv_client.py --port {port}
//! ```
//!
//! Every step runs exactly like `workbook check`, with the same isolation and timeouts, and each
//! student has a time budget: scenarios not started when it runs out count as failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::{CheckOptions, CheckStep, StepReport, check, find_step};

/// The file in each student's folder.
pub const COMMANDS_FILE: &str = "workbook-commands.txt";

/// One student's folder and what it asks us to run.
#[derive(Debug, Clone)]
pub struct Student {
    pub name: String,
    pub dir: PathBuf,
    /// (step, command line)
    pub commands: Vec<(String, String)>,
    /// Problems with the commands file, by line.
    pub problems: Vec<String>,
}

/// Reads `workbook-commands.txt`: `step: command` lines; `#` comments and blank lines are skipped.
pub fn parse_commands(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut commands = Vec::new();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((step, command)) if find_step(step.trim()).is_some() && !command.trim().is_empty() => {
                commands.push((step.trim().to_string(), command.trim().to_string()));
            }
            Some((step, _)) if find_step(step.trim()).is_none() => {
                problems.push(format!(
                    "line {}: unknown step {:?} (see `workbook list`)",
                    number + 1,
                    step.trim()
                ));
            }
            _ => problems.push(format!(
                "line {}: expected `step: command`, got {line:?}",
                number + 1
            )),
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

/// One cell of the table.
#[derive(Debug)]
pub enum Cell {
    /// The step ran: passed of total scenarios.
    Ran(StepReport),
    /// The student gave no command for this step.
    Missing,
    /// The step could not run (e.g. the program was not found).
    CannotRun(String),
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

    fn text(&self) -> String {
        match self {
            Cell::Ran(report) => format!("{}/{}", report.passed(), report.total()),
            Cell::Missing => "—".to_string(),
            Cell::CannotRun(_) => "could not run".to_string(),
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
    /// commands file, steps that could not run or ran out of time, and the notes of passed
    /// scenarios (`kv-server: your server refuses an empty value ...`). `steps` are the table's.
    pub fn notes(&self, steps: &[CheckStep]) -> Vec<String> {
        let mut notes = self.student.problems.clone();
        for (step, cell) in steps.iter().zip(&self.cells) {
            match cell {
                Cell::CannotRun(why) => notes.push(format!("{}: {why}", step.name)),
                Cell::Ran(report) if report.never_started() => {
                    notes.push(format!("{}: the program never started listening", step.name));
                }
                Cell::Ran(report) if report.ran_out_of_time() => {
                    notes.push(format!("{}: time limit reached", step.name));
                }
                _ => {}
            }
            notes.extend(
                cell.notes()
                    .into_iter()
                    .map(|note| format!("{}: {note}", step.name)),
            );
        }
        notes
    }
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
                .any(|s| s.commands.iter().any(|(name, _)| name == step.name))
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
            |step| match student.commands.iter().find(|(name, _)| name == step.name) {
                None => Cell::Missing,
                Some((_, line)) => {
                    let command = vec!["sh".to_string(), "-c".to_string(), line.clone()];
                    match check(step, &command, &check_options) {
                        Ok(report) => Cell::Ran(report),
                        Err(why) => Cell::CannotRun(why.0),
                    }
                }
            },
        )
        .collect();
    StudentGrade {
        student,
        cells,
        elapsed: started.elapsed(),
    }
}

fn totals(grade: &StudentGrade) -> (usize, usize) {
    grade
        .cells
        .iter()
        .fold((0, 0), |(passed, total), cell| match cell {
            Cell::Ran(report) => (passed + report.passed(), total + report.total()),
            _ => (passed, total),
        })
}

/// The table as Markdown: a row per student, a column per step, passed/total in each cell.
pub fn markdown(grades: &[StudentGrade], steps: &[CheckStep]) -> String {
    let mut out = String::from("| student |");
    for step in steps {
        out.push_str(&format!(" {} |", step.name));
    }
    out.push_str(" total | notes |\n|---|");
    out.push_str(&"---|".repeat(steps.len() + 2));
    out.push('\n');
    for grade in grades {
        let (passed, total) = totals(grade);
        out.push_str(&format!("| {} |", grade.student.name));
        for cell in &grade.cells {
            out.push_str(&format!(" {} |", cell.text()));
        }
        out.push_str(&format!(
            " {passed}/{total} | {} |\n",
            grade.notes(steps).join("; ").replace('|', "\\|")
        ));
    }
    out
}

/// The same table as CSV, with the notes column last.
pub fn csv(grades: &[StudentGrade], steps: &[CheckStep]) -> String {
    let quote = |field: &str| {
        if field.contains([',', '"', '\n']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_string()
        }
    };
    let mut out = String::from("student");
    for step in steps {
        out.push_str(&format!(",{}", step.name));
    }
    out.push_str(",passed,total,notes\n");
    for grade in grades {
        let (passed, total) = totals(grade);
        out.push_str(&quote(&grade.student.name));
        for cell in &grade.cells {
            out.push(',');
            out.push_str(&quote(&cell.text()));
        }
        out.push_str(&format!(
            ",{passed},{total},{}\n",
            quote(&grade.notes(steps).join("; "))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_file_lines_are_parsed_and_problems_reported() {
        let (commands, problems) = parse_commands(
            "# my steps\n\necho-server: python3 echo.py {port}\nkv-serve: x\nnonsense\ntime-server:   ./time --port {port}  \n",
        );
        assert_eq!(
            commands,
            vec![
                ("echo-server".to_string(), "python3 echo.py {port}".to_string()),
                ("time-server".to_string(), "./time --port {port}".to_string()),
            ]
        );
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].contains("line 4") && problems[0].contains("unknown step"),
            "{problems:?}"
        );
        assert!(problems[1].contains("line 5"), "{problems:?}");
    }
}
