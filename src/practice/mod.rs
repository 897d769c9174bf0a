//! Practice mode: what a learner needs around `workbook check` to write a solution of their own.
//!
//! # Layout
//! - this file: `workbook new STEP`: a starter for a step, in Rust or Python, written into the
//!   learner's folder. The starters are files under `src/practice/starters/<step>/<lang>/`,
//!   embedded in the binary, so an installed `workbook` needs nothing from this repository.
//! - [`progress`]: which steps the learner has passed, in a small file in their folder.
//! - [`watch`]: `workbook check --watch`: check again on every save, rebuilding Rust first.
//! - [`stale`]: warn when the program to check is a binary older than its crate's sources.
//!
//! # Adding a starter for a new step
//! Two files and one line: `starters/<step>/python/<file>.py` and `starters/<step>/rust/main.rs`,
//! then `starter!("<step>", "<file>")` in [`STARTERS`]. The test
//! `every_step_has_a_starter_in_both_languages` (tests/practice.rs) says when one is missing.

pub mod progress;
pub mod stale;
pub mod watch;

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The languages a starter can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
        }
    }

    pub fn parse(name: &str) -> Option<Lang> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Lang::Rust),
            "python" | "py" | "python3" => Some(Lang::Python),
            _ => None,
        }
    }
}

/// One step's starter, in both languages.
pub struct Starter {
    pub step: &'static str,
    /// The Python file's name without `.py` (`kv_server`).
    pub python_file: &'static str,
    pub python: &'static str,
    /// `src/main.rs` of the Rust crate, whose package (and binary) is named after the step.
    pub rust_main: &'static str,
}

macro_rules! starter {
    ($step:literal, $python_file:literal) => {
        Starter {
            step: $step,
            python_file: $python_file,
            python: include_str!(concat!("starters/", $step, "/python/", $python_file, ".py")),
            rust_main: include_str!(concat!("starters/", $step, "/rust/main.rs")),
        }
    };
}

/// Every starter, in teaching order.
pub const STARTERS: &[Starter] = &[
    starter!("echo-server", "echo_server"),
    starter!("echo-client", "echo_client"),
    starter!("time-server", "time_server"),
    starter!("length-prefix-server", "frame_server"),
    starter!("kv-server", "kv_server"),
    starter!("kv-client", "kv_client"),
    starter!("kv-client-robust", "kv_client_robust"),
    starter!("concurrent-kv-server", "kv_server_threads"),
    starter!("udp-echo-server", "udp_echo_server"),
    starter!("udp-kv-client", "udp_kv_client"),
    starter!("kv-server-idle-timeout", "kv_server_idle"),
    starter!("kv-server-persistent", "kv_server_persistent"),
    starter!("resp-server", "resp_server"),
];

/// The Rust starter's `Cargo.toml`; `{step}` is replaced by the step's name.
const CARGO_TOML: &str = include_str!("starters/Cargo.toml.template");

/// The starter of a step.
pub fn starter(step: &str) -> Option<&'static Starter> {
    STARTERS.iter().find(|s| s.step == step)
}

impl Starter {
    /// The files of the starter in `lang`: path inside the learner's folder, and contents.
    pub fn files(&self, lang: Lang) -> Vec<(PathBuf, String)> {
        match lang {
            Lang::Python => vec![(
                PathBuf::from(format!("{}.py", self.python_file)),
                self.python.to_string(),
            )],
            Lang::Rust => vec![
                (
                    PathBuf::from("Cargo.toml"),
                    CARGO_TOML.replace("{step}", self.step),
                ),
                (PathBuf::from("src/main.rs"), self.rust_main.to_string()),
                (PathBuf::from(".gitignore"), "/target\n".to_string()),
            ],
        }
    }

    /// The command that checks the starter, run from its folder (`{port}` as the checker wants it).
    pub fn command(&self, lang: Lang) -> Vec<String> {
        let words: Vec<String> = match lang {
            Lang::Python => vec!["python3".into(), format!("{}.py", self.python_file)],
            Lang::Rust => ["cargo", "run", "-q", "--"].map(String::from).to_vec(),
        };
        words
            .into_iter()
            .chain(["--port".to_string(), "{port}".to_string()])
            .collect()
    }
}

/// Why `workbook new` wrote nothing.
#[derive(Debug)]
pub enum NewError {
    UnknownStep(String),
    /// The folder is inside this repository's own sources.
    InsideTheCourse(PathBuf),
    /// These files exist already; nothing was written.
    WouldOverwrite(Vec<PathBuf>),
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for NewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewError::UnknownStep(step) => write!(
                f,
                "no starter for the step {step:?}; `workbook list` shows the steps"
            ),
            NewError::InsideTheCourse(dir) => write!(
                f,
                "{} is inside the course's own sources (src/, lessons/, tests/); write your solution \
                 in a folder of your own, e.g. `workbook new STEP ~/my-solutions/STEP`",
                dir.display()
            ),
            NewError::WouldOverwrite(files) => {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                write!(
                    f,
                    "not overwriting {}; choose another folder, or move the file away first",
                    names.join(", ")
                )
            }
            NewError::Io(path, err) => write!(f, "cannot write {}: {err}", path.display()),
        }
    }
}

impl std::error::Error for NewError {}

/// The folders of this repository a starter must never be written into. Known when `workbook`
/// was built; an installed `workbook` whose clone has moved simply finds none of them.
fn course_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["src", "lessons", "tests"]
        .iter()
        .filter_map(|dir| root.join(dir).canonicalize().ok())
        .collect()
}

/// `path` made absolute and free of `..` and symbolic links, also when it does not exist yet
/// (its nearest existing ancestor is resolved, the rest appended).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(name) => out.push(name),
                    _ => {}
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Writes the starter of `step` in `lang` into `dir` (created if needed), and returns the files
/// written. Writes nothing when any of them exists, or when `dir` is inside the course's sources.
pub fn write_starter(step: &str, lang: Lang, dir: &Path) -> Result<Vec<PathBuf>, NewError> {
    let starter = starter(step).ok_or_else(|| NewError::UnknownStep(step.to_string()))?;
    let target = resolved(dir);
    if course_sources().iter().any(|src| target.starts_with(src)) {
        return Err(NewError::InsideTheCourse(target));
    }
    let files = starter.files(lang);
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|(path, _)| dir.join(path))
        .filter(|path| path.symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() {
        return Err(NewError::WouldOverwrite(existing));
    }
    let mut written = Vec::new();
    for (path, contents) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| NewError::Io(parent.to_path_buf(), err))?;
        }
        // create_new: a file that appeared since the check above is still not overwritten.
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, contents.as_bytes()));
        result.map_err(|err| NewError::Io(path.clone(), err))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_starter_names_its_step_and_the_exact_check_command() {
        for starter in STARTERS {
            for lang in [Lang::Rust, Lang::Python] {
                let check = format!(
                    "workbook check {} -- {}",
                    starter.step,
                    starter.command(lang).join(" ")
                );
                let watch = check.replace("workbook check ", "workbook check --watch ");
                let (name, text) = match lang {
                    Lang::Rust => ("main.rs", starter.rust_main),
                    Lang::Python => ("the Python file", starter.python),
                };
                assert!(text.contains(&check), "{} {name}: no `{check}`", starter.step);
                assert!(text.contains(&watch), "{} {name}: no `{watch}`", starter.step);
                let commands_line = format!("{}: {}", starter.step, starter.command(lang).join(" "));
                assert!(
                    text.contains(&commands_line),
                    "{} {name}: no workbook-commands.txt line `{commands_line}`",
                    starter.step
                );
                let marker = match lang {
                    Lang::Rust => "todo!(",
                    Lang::Python => "raise NotImplementedError(",
                };
                assert!(
                    text.contains(marker),
                    "{} {name}: nothing left to write",
                    starter.step
                );
                assert!(text.contains("--host") && text.contains("--port"));
                assert!(
                    text.contains("Lesson "),
                    "{} {name}: no chapter named",
                    starter.step
                );
            }
        }
    }

    #[test]
    fn a_folder_that_does_not_exist_yet_is_resolved_through_its_existing_parent() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let inside = src.join("not-yet/../also-not-yet/deeper");
        assert!(resolved(&inside).starts_with(src.canonicalize().unwrap()));
        assert_eq!(
            resolved(&src.join("../tests/x")),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .canonicalize()
                .unwrap()
                .join("tests/x")
        );
    }
}
