//! `workbook check --watch STEP -- COMMAND...`: check again every time the learner saves.
//!
//! - **What is watched**: the program's folder. That is the crate's folder when the program is
//!   a binary under a `target/` folder; otherwise the folder of the first argument after the
//!   program that is an existing file (`python3 my-kv/kv_server.py` watches `my-kv/`); otherwise
//!   the folder of the program itself when it is given by its path (`./my_server`); otherwise
//!   the folder `workbook` runs in (right for `cargo run`). Everything below it counts, except `target/`, `.git/`,
//!   `__pycache__/`, editors' swap and backup files, and the progress file.
//! - **Debounced**: a save that touches several files (or one file several times) is one run,
//!   300 ms after the last change. Only a file whose time or size changed counts: programs that
//!   merely read the folder (cargo does at every run) do not start a run.
//! - **Rust**: when the folder has a `Cargo.toml`, or COMMAND is `cargo ...`, every run starts
//!   with `cargo build` there (`--release` for a program under `target/release/`); when it
//!   fails, its errors are the report.
//! - **Ctrl-C**: the program under test runs in a process group of its own and is killed by the
//!   checker's Ctrl-C handler (see `harness::process::kill_all_running`); `cargo build` is in
//!   ours, and gets the terminal's Ctrl-C itself.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use notify_debouncer_mini::{DebounceEventResult, new_debouncer, notify::RecursiveMode};

use super::progress::PROGRESS_FILE;
use super::stale::crate_of_binary;

/// How long the folder must be quiet after a change before the check runs again.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// The folder `--watch` watches for `command` (see the module's documentation).
pub fn watched_folder(command: &[String]) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let Some((program, args)) = command.split_first() else {
        return cwd;
    };
    if program.contains('/')
        && let Some(root) = crate_of_binary(Path::new(program))
    {
        return root;
    }
    let folder_of = |file: &Path| file.canonicalize().ok()?.parent().map(Path::to_path_buf);
    // The script an interpreter runs comes after it (`python3 -S my-kv/kv_server.py`); a
    // program given by its path (`./my_server`) is the file itself.
    let script = args
        .iter()
        .map(Path::new)
        .find(|path| (path.components().count() > 1 || path.extension().is_some()) && path.is_file());
    let program = Some(Path::new(program)).filter(|path| program.contains('/') && path.is_file());
    script.or(program).and_then(folder_of).unwrap_or(cwd)
}

/// Does the program in `folder` need `cargo build` before each check?
pub fn is_rust(folder: &Path, command: &[String]) -> bool {
    folder.join("Cargo.toml").is_file() || command.first().is_some_and(|program| program == "cargo")
}

/// A change to `path`, under the watched `folder`, is not a reason to check again. (Only the
/// part below `folder` counts: a learner's folder may itself be inside a `target/`.)
pub fn ignored(path: &Path, folder: &Path) -> bool {
    let path = path.strip_prefix(folder).unwrap_or(path);
    let in_ignored_folder = path.components().any(|part| {
        matches!(
            part.as_os_str().to_str(),
            Some("target" | ".git" | "__pycache__" | ".mypy_cache" | ".pytest_cache")
        )
    });
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    in_ignored_folder
        || name.starts_with(PROGRESS_FILE)
        || name.ends_with('~')
        || name.starts_with(".#")
        || name.starts_with('#')
        || [".swp", ".swo", ".swx", ".tmp", ".pyc"]
            .iter()
            .any(|ext| name.ends_with(ext))
        || name == "4913" // vim's probe that it may write in the folder
}

/// Every file under `folder` that counts (see [`ignored`]), with its modification time and size.
pub fn snapshot(folder: &Path) -> BTreeMap<PathBuf, (Option<SystemTime>, u64)> {
    let mut files = BTreeMap::new();
    let mut todo = vec![folder.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if ignored(&path, folder) {
                continue;
            }
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => todo.push(path),
                Ok(meta) => {
                    files.insert(path, (meta.modified().ok(), meta.len()));
                }
                Err(_) => {}
            }
        }
    }
    files
}

/// Runs `cargo build` in `folder` (with `--release` when the program is a release build); its
/// output when it fails.
pub fn cargo_build(folder: &Path, release: bool) -> Result<(), String> {
    let output = Command::new("cargo")
        .args(["build", "--color", "never"])
        .args(release.then_some("--release"))
        .current_dir(folder)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("could not run cargo: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Checks, then again after every change under the program's folder, until Ctrl-C (or until
/// the watcher fails). `check_once` runs the step and returns what to print.
pub fn run(command: &[String], check_once: &mut dyn FnMut() -> String) -> Result<(), String> {
    let folder = watched_folder(command);
    let rust = is_rust(&folder, command);
    let release = command
        .first()
        .is_some_and(|program| program.contains("/release/"));
    let (sender, changes) = mpsc::channel::<DebounceEventResult>();
    let mut debouncer =
        new_debouncer(DEBOUNCE, sender).map_err(|err| format!("cannot watch for changes: {err}"))?;
    debouncer
        .watcher()
        .watch(&folder, RecursiveMode::Recursive)
        .map_err(|err| format!("cannot watch {}: {err}", folder.display()))?;
    let terminal = std::io::stdout().is_terminal();
    for run in 1.. {
        let before = snapshot(&folder);
        if terminal {
            // Clear the screen and the scrollback, cursor to the top: only the latest report shows.
            print!("\x1b[2J\x1b[3J\x1b[H");
        } else if run > 1 {
            println!("\n---- run {run} ----");
        }
        let report = match rust.then(|| cargo_build(&folder, release)) {
            Some(Err(errors)) => format!(
                "`cargo build` in {} failed, so nothing was checked:\n\n{errors}",
                folder.display()
            ),
            _ => check_once(),
        };
        print!("{report}");
        println!(
            "watching {} for changes{}; Ctrl-C to stop",
            folder.display(),
            if rust { " (rebuilds first)" } else { "" }
        );
        // Wait for a change that counts: a file whose time or size is not what it was when this
        // run started (so a save during the run counts too). Reading a file is an event as well
        // (cargo opens Cargo.toml and src/ at every run), which is why the files are compared.
        loop {
            match changes.recv() {
                Ok(Ok(events)) if events.iter().any(|event| !ignored(&event.path, &folder)) => {
                    if snapshot(&folder) != before {
                        break;
                    }
                }
                Ok(Ok(_)) => continue,
                Ok(Err(err)) => eprintln!("workbook: watching: {err}"),
                Err(_) => return Err("the file watcher stopped".to_string()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_output_editor_files_and_progress_are_ignored() {
        for path in [
            "/a/target/debug/kv",
            "/a/.git/index",
            "/a/__pycache__/kv.cpython-311.pyc",
            "/a/.kv_server.py.swp",
            "/a/kv_server.py~",
            "/a/.#kv_server.py",
            "/a/4913",
            "/a/.workbook-progress.json",
            "/a/.workbook-progress.json.tmp",
        ] {
            assert!(ignored(Path::new(path), Path::new("/a")), "{path}");
        }
        for path in ["/a/kv_server.py", "/a/src/main.rs", "/a/Cargo.toml"] {
            assert!(!ignored(Path::new(path), Path::new("/a")), "{path}");
        }
        let folder = Path::new("/work/target/tmp/my-kv");
        assert!(!ignored(&folder.join("kv_server.py"), folder));
        assert!(ignored(&folder.join("target/debug/kv"), folder));
        // A path outside the folder (none should come) is judged whole.
        assert!(!ignored(Path::new("/b/kv_server.py"), Path::new("/a")));
    }

    #[test]
    fn the_folder_of_the_first_file_argument_is_watched() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = here.join("tests/fixtures/kv_server.py").display().to_string();
        let command: Vec<String> = vec!["python3".into(), script, "--port".into(), "{port}".into()];
        assert_eq!(
            watched_folder(&command),
            here.join("tests/fixtures").canonicalize().unwrap()
        );
        assert!(!is_rust(&here.join("tests/fixtures"), &command));
        // An interpreter given by its path is not the program's folder; the script is.
        let mut by_path = command.clone();
        by_path[0] = "/bin/sh".to_string();
        assert_eq!(
            watched_folder(&by_path),
            here.join("tests/fixtures").canonicalize().unwrap()
        );
        // A program given by its path, with no file after it: its own folder.
        let program = here.join("tests/fixtures/kv_server.py").display().to_string();
        assert_eq!(
            watched_folder(&[program, "--port".into(), "{port}".into()]),
            here.join("tests/fixtures").canonicalize().unwrap()
        );
        assert!(is_rust(here, &["cargo".to_string(), "run".to_string()]));
    }
}
