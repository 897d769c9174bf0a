//! A learner who checks `target/debug/kv-server` after editing `src/main.rs`, but before
//! `cargo build`, checks yesterday's program. This finds that out from file times.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The crate a built binary belongs to: the folder above the `target/` folder the binary is in,
/// when it has a `Cargo.toml`.
pub fn crate_of_binary(binary: &Path) -> Option<PathBuf> {
    let binary = binary.canonicalize().ok()?;
    binary
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "target"))
        .and_then(Path::parent)
        .filter(|root| root.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The newest file under `dir` (recursively), with its time.
fn newest_under(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(entry.path());
            } else if let Ok(modified) = meta.modified()
                && newest.as_ref().is_none_or(|(time, _)| modified > *time)
            {
                newest = Some((modified, entry.path()));
            }
        }
    }
    newest
}

/// When `program` is a path to a binary built by Cargo that is older than a file of its crate's
/// `src/` (or its `Cargo.toml`): the warning to print.
pub fn stale_binary_warning(program: &str) -> Option<String> {
    if !program.contains('/') {
        return None;
    }
    let binary = Path::new(program);
    let built = binary.metadata().ok()?.modified().ok()?;
    let root = crate_of_binary(binary)?;
    let manifest = root.join("Cargo.toml");
    let candidates = [
        newest_under(&root.join("src")),
        manifest
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .map(|t| (t, manifest)),
    ];
    let (changed, file) = candidates.into_iter().flatten().max_by_key(|(time, _)| *time)?;
    (changed > built).then(|| {
        let shown = file.strip_prefix(&root).unwrap_or(&file);
        format!(
            "workbook: warning: {program} is older than {} (changed since the last build), so this \
             checks the program as it was; run `cargo build` in {} first, or check with \
             `cargo run -q -- --port {{port}}`, or use `--watch`, which rebuilds",
            shown.display(),
            root.display()
        )
    })
}
