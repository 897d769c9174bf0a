//! What `workbook check` prints: a line per scenario, and for each failure the conversation,
//! expected vs got with the first differing byte, the hint, and the program's stderr. A passed
//! scenario with notes (another accepted choice than the reference's) gets a `note:` line for
//! each note, under its ✓.

use serde_json::{Value, json};

use super::{CheckStep, Outcome, StepKind, StepReport};
use crate::escape::{escape_abbreviated, shell_line};

/// The human report.
pub fn text(report: &StepReport) -> String {
    let mut out = format!(
        "workbook check {} -- {}\n",
        report.step,
        shell_line(&report.command)
    );
    let width = report.results.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for result in &report.results {
        match &result.outcome {
            Outcome::Passed { notes } => {
                out.push_str(&format!("  ✓ {:width$}  {}\n", result.name, result.about));
                for note in notes {
                    out.push_str(&format!("      note: {note}\n"));
                }
            }
            Outcome::NotRun { why } => {
                out.push_str(&format!("  - {:width$}  not run: {why}\n", result.name));
            }
            Outcome::Failed { failure, hint } => {
                out.push_str(&format!("  ✗ {:width$}  {}\n", result.name, result.about));
                if failure.step_number > 0 {
                    out.push_str(&format!("      failed at step {}\n", failure.step_number));
                }
                for line in failure.report_lines() {
                    out.push_str(&format!("      {line}\n"));
                }
                out.push_str(&format!("      hint: {hint}\n"));
            }
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

/// The same as JSON, for tools. A passed scenario with notes has `"status": "passed"` and a
/// `"note"`: its notes, joined by "; " when there are several.
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
            Outcome::Failed { failure, hint } => json!({
                "name": result.name,
                "about": result.about,
                "status": "failed",
                "failure": {
                    "step": failure.step_number,
                    "kind": format!("{:?}", failure.kind),
                    "expected": failure.expected,
                    "got": failure.got.as_ref().map(|got| escape_abbreviated(got, 4096)),
                    "got_length": failure.got.as_ref().map(|got| got.len()),
                    "detail": failure.detail.trim_start_matches(", "),
                    "first_difference": failure.mismatch.as_ref().and_then(|m| m.first_difference),
                    "reason": failure.mismatch.as_ref().and_then(|m| m.reason.clone()),
                    "conversation": failure.transcript,
                    "program_exit": failure.server_exit,
                    "stderr_tail": failure.stderr_tail,
                    "hint": hint,
                },
            }),
        })
        .collect();
    json!({
        "step": report.step,
        "command": report.command,
        "passed": report.passed(),
        "total": report.total(),
        "seconds": report.elapsed.as_secs_f64(),
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
        out.push_str(&format!(
            "  {:width$}  {} ({kind}, like lesson {}; {} scenarios)\n  {:width$}  e.g. workbook check {} -- {}\n",
            step.name,
            step.expects,
            step.lessons.join(" or "),
            step.scenario_count(),
            "",
            step.name,
            step.example
        ));
    }
    out
}
