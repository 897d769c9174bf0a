//! Which steps a learner has passed: a small JSON file, `.workbook-progress.json`, in the folder
//! `workbook check` runs from (the learner's solution folder). `workbook check` updates it after
//! every run and prints one line from it; `workbook progress` prints it all.
//!
//! ```json
//! {"steps": {"kv-server": {"passed": true, "last": "12/12", "when": "2026-12-02T01:50:00Z"}}}
//! ```
//!
//! `passed` stays true once a full run (no `--only`) passed every scenario; `last` is the latest
//! run's count. A file that cannot be read or parsed is started afresh, never a reason to fail.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::checker::{CheckStep, StepReport};

/// The file's name, in the folder `check` runs from.
pub const PROGRESS_FILE: &str = ".workbook-progress.json";

/// What the file says about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepProgress {
    pub passed: bool,
    /// The latest run: "5/12" (with `(only …)` when it ran a part).
    pub last: String,
}

/// The progress file of `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(PROGRESS_FILE)
}

fn read(path: &Path) -> Map<String, Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|value| value.get("steps").and_then(Value::as_object).cloned())
        .unwrap_or_default()
}

/// The progress of every step the file knows.
pub fn load(path: &Path) -> Vec<(String, StepProgress)> {
    read(path)
        .into_iter()
        .map(|(step, entry)| {
            let progress = StepProgress {
                passed: entry.get("passed").and_then(Value::as_bool).unwrap_or(false),
                last: entry
                    .get("last")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            };
            (step, progress)
        })
        .collect()
}

/// Records a run of a step. `only` is the `--only` filter it ran with: such a run never marks
/// a step passed.
pub fn record(path: &Path, report: &StepReport, only: Option<&str>) -> std::io::Result<()> {
    let mut steps = read(path);
    let full = only.is_none();
    let before = steps
        .get(report.step)
        .and_then(|entry| entry.get("passed"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut last = format!("{}/{}", report.passed(), report.total());
    if let Some(only) = only {
        last.push_str(&format!(" (only {only:?})"));
    }
    steps.insert(
        report.step.to_string(),
        json!({
            "passed": before || (full && report.total() > 0 && report.all_passed()),
            "last": last,
            "when": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }),
    );
    let text = serde_json::to_string_pretty(&json!({ "steps": steps }))?;
    // Written whole, then renamed: a Ctrl-C in the middle never leaves half a file.
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text + "\n")?;
    std::fs::rename(&temporary, path)
}

/// One line for the end of a check: `progress: 3 of 9 steps passed (echo-server, ...)`.
pub fn summary_line(path: &Path, steps: &[CheckStep]) -> String {
    let known = load(path);
    let passed: Vec<&str> = steps
        .iter()
        .filter(|step| known.iter().any(|(name, p)| name == step.name && p.passed))
        .map(|step| step.name)
        .collect();
    let list = if passed.is_empty() {
        String::new()
    } else {
        format!(" ({})", passed.join(", "))
    };
    format!(
        "progress: {} of {} steps passed{list}; `workbook progress` shows them all\n",
        passed.len(),
        steps.len()
    )
}

/// `workbook progress`: every step, passed or not, with its latest run.
pub fn table(path: &Path, steps: &[CheckStep]) -> String {
    let known = load(path);
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = format!("Progress recorded in {}:\n", path.display());
    let mut passed = 0;
    for step in steps {
        let line = match known.iter().find(|(name, _)| name == step.name) {
            Some((_, p)) if p.passed => {
                passed += 1;
                format!("  ✓ {:width$}  passed (latest run: {})", step.name, p.last)
            }
            Some((_, p)) => format!(
                "  ✗ {:width$}  not passed yet (latest run: {})",
                step.name, p.last
            ),
            None => format!("  · {:width$}  not checked yet", step.name),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!("{passed} of {} steps passed\n", steps.len()));
    out
}
