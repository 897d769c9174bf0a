//! What `workbook check` prints: a line per scenario, and for each failure the conversation,
//! expected vs got with the first differing byte, the hint, the book's section that shows the
//! mistake by hand, and the program's stderr.
//!
//! Said once, not once per scenario: a cause that explains several failures (above the list),
//! a note that several passed scenarios share (under the first of them), and why a step stopped
//! early (below the list).

use serde_json::{Value, json};

use super::hints::in_built_book;
use super::{CheckStep, Outcome, StepKind, StepReport};
use crate::escape::{escape_shortened, shell_line};
use crate::harness::run::Failure;

/// The human report.
pub fn text(report: &StepReport) -> String {
    let mut out = format!(
        "workbook check {} -- {}\n",
        report.step,
        shell_line(&report.command)
    );
    for cause in report.causes.iter().filter(|c| c.scenarios.len() > 1) {
        out.push_str(&format!(
            "  one cause for {} failures ({}): your program {}\n      hint: {}\n",
            cause.scenarios.len(),
            cause.scenarios.join(", "),
            cause.what,
            cause.hint
        ));
        if let Some(see) = cause.see {
            out.push_str(&format!("      see: {}\n", in_built_book(see)));
        }
    }
    let width = report.results.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut notes_said: Vec<&str> = Vec::new();
    for (index, result) in report.results.iter().enumerate() {
        match &result.outcome {
            Outcome::Passed { notes } => {
                out.push_str(&format!("  ✓ {:width$}  {}\n", result.name, result.about));
                for note in notes {
                    if notes_said.contains(&note.as_str()) {
                        continue;
                    }
                    notes_said.push(note);
                    let also: Vec<&str> = report.results[index + 1..]
                        .iter()
                        .filter(|r| r.outcome.notes().contains(note))
                        .map(|r| r.name)
                        .collect();
                    out.push_str(&format!("      note: {note}\n"));
                    if !also.is_empty() {
                        out.push_str(&format!("      (the same note for {})\n", also.join(", ")));
                    }
                }
            }
            Outcome::NotRun { why } => {
                // A run of scenarios not run for the same reason is one line.
                let same =
                    |r: &super::ScenarioResult| matches!(&r.outcome, Outcome::NotRun { why: w } if w == why);
                let start = report.results[..index]
                    .iter()
                    .rposition(|r| !same(r))
                    .map_or(0, |i| i + 1);
                let starts_run = start == index;
                let run: Vec<&str> = report.results[start..]
                    .iter()
                    .take_while(|r| same(r))
                    .map(|r| r.name)
                    .collect();
                if run.len() < 3 {
                    out.push_str(&format!("  - {:width$}  not run: {why}\n", result.name));
                } else if starts_run {
                    out.push_str(&format!(
                        "  - {} scenarios not run: {why}: {}\n",
                        run.len(),
                        run.join(", ")
                    ));
                }
            }
            Outcome::Failed {
                failure,
                hint,
                see,
                cause,
            } => {
                out.push_str(&format!("  ✗ {:width$}  {}\n", result.name, result.about));
                let same_as = report.results[..index].iter().find(|earlier| {
                    earlier
                        .outcome
                        .failure()
                        .is_some_and(|f| same_failure(f, failure) && earlier.outcome_hint() == Some(hint))
                });
                if let Some(earlier) = same_as {
                    out.push_str(&format!("      the same failure as {}\n", earlier.name));
                    continue;
                }
                if failure.step_number > 0 {
                    out.push_str(&format!("      failed at step {}\n", failure.step_number));
                }
                for line in failure.report_lines() {
                    out.push_str(&format!("      {line}\n"));
                }
                let shared = cause.is_some_and(|what| {
                    report
                        .causes
                        .iter()
                        .any(|c| c.what == what && c.scenarios.len() > 1)
                });
                match cause {
                    Some(what) if shared => {
                        out.push_str(&format!("      hint: the cause above: your program {what}\n"));
                    }
                    _ => {
                        out.push_str(&format!("      hint: {hint}\n"));
                        if let Some(see) = see {
                            out.push_str(&format!("      see: {}\n", in_built_book(see)));
                        }
                    }
                }
            }
        }
    }
    if let Some(trouble) = &report.trouble {
        out.push_str(&format!("the program {}\n", trouble.what));
        if trouble.stopped_early {
            out.push_str("(`--no-fail-fast` runs every scenario anyway)\n");
        }
    }
    let with_notes = match report.noted() {
        0 => String::new(),
        1 => ", 1 of them with a note".to_string(),
        n => format!(", {n} of them with notes"),
    };
    out.push_str(&format!(
        "{} of {} scenarios passed{with_notes} ({:.1} s)\n",
        report.passed(),
        report.total(),
        report.elapsed.as_secs_f64()
    ));
    out
}

/// Two failures a learner would read as one: the same conversation, ending the same way.
fn same_failure(a: &Failure, b: &Failure) -> bool {
    a.kind == b.kind
        && a.step_number == b.step_number
        && a.expected == b.expected
        && a.got == b.got
        && a.detail == b.detail
        && a.transcript == b.transcript
        && a.server_exit == b.server_exit
        && a.stderr_tail == b.stderr_tail
}

/// The same as JSON, for tools. A passed scenario with notes has `"status": "passed"` and a
/// `"note"`: its notes, joined by "; " when there are several. A failure's `"see"` is a path into
/// the built book.
pub fn json(report: &StepReport) -> Value {
    let scenarios: Vec<Value> = report
        .results
        .iter()
        .map(|result| match &result.outcome {
            Outcome::Passed { notes } if notes.is_empty() => {
                json!({"name": result.name, "about": result.about, "status": "passed"})
            }
            Outcome::Passed { notes } => json!({
                "name": result.name,
                "about": result.about,
                "status": "passed",
                "note": notes.join("; "),
            }),
            Outcome::NotRun { why } => {
                json!({"name": result.name, "about": result.about, "status": "not run", "why": why})
            }
            Outcome::Failed {
                failure,
                hint,
                see,
                cause,
            } => json!({
                "name": result.name,
                "about": result.about,
                "status": "failed",
                "failure": {
                    "step": failure.step_number,
                    "kind": format!("{:?}", failure.kind),
                    "expected": failure.expected,
                    "got": failure.got.as_ref().map(|got| escape_shortened(got, 4096)),
                    "got_length": failure.got.as_ref().map(|got| got.len()),
                    "detail": failure.detail.trim_start_matches(", "),
                    "first_difference": failure.mismatch.as_ref().and_then(|m| m.first_difference),
                    "reason": failure.mismatch.as_ref().and_then(|m| m.reason.clone()),
                    "conversation": failure.transcript,
                    "program_exit": failure.server_exit,
                    "stderr_tail": failure.stderr_tail,
                    "hint": hint,
                    "see": see.map(in_built_book),
                    "cause": cause,
                },
            }),
        })
        .collect();
    let causes: Vec<Value> = report
        .causes
        .iter()
        .map(|cause| {
            json!({
                "what": cause.what,
                "hint": cause.hint,
                "see": cause.see.map(in_built_book),
                "scenarios": cause.scenarios,
            })
        })
        .collect();
    json!({
        "step": report.step,
        "command": report.command,
        "passed": report.passed(),
        "total": report.total(),
        "seconds": report.elapsed.as_secs_f64(),
        "trouble": report.trouble.as_ref().map(|t| json!({"what": t.what, "stopped_early": t.stopped_early})),
        "causes": causes,
        "scenarios": scenarios,
    })
}

/// `workbook list`.
pub fn list(steps: &[CheckStep]) -> String {
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::from("Steps you can check (workbook check STEP -- YOUR COMMAND WITH {port}):\n\n");
    for step in steps {
        let kind = match step.kind {
            StepKind::Server(_) => "server",
            StepKind::Client(_) => "client",
        };
        let like = match super::exercise_of(step.name) {
            Some(exercise) => exercise.to_string(),
            None => format!("like lesson {}", step.lessons.join(" or ")),
        };
        out.push_str(&format!(
            "  {:width$}  {} ({kind}, {like}; {} scenarios)\n  {:width$}  e.g. workbook check {} -- {}\n",
            step.name,
            step.expects,
            step.scenario_count(),
            "",
            step.name,
            step.example
        ));
        out.push_str(&format!(
            "  {:width$}  or   workbook check {} -- cargo run -q -- --port {{port}}   (in a Rust crate)\n",
            "", step.name
        ));
        if crate::practice::starter(step.name).is_some() {
            out.push_str(&format!(
                "  {:width$}  a starter: workbook new {} --lang rust|python DIR\n",
                "", step.name
            ));
        }
    }
    out
}
