//! The book's figures (`book/src/diagrams/`) must be what the code in `src/diagram/` draws now
//! from the recorded transcripts, the hand-made descriptions and the benchmark's results: a
//! changed scenario, a re-recorded benchmark or a changed drawing fails here until the figures
//! are redrawn (`cargo run --bin workbook -- diagrams`) and committed. This test only compares;
//! it never writes.
//!
//! It also checks that chapters show figures the way the list says: every
//! `<img ... src="diagrams/...">` names a listed figure that exists, with the list's alt text,
//! and every listed figure that exists is shown somewhere.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use regex::Regex;
use socket_workbook::diagram::{self, DIAGRAMS_DIR, FIGURES, REDRAW};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_figures_are_what_the_code_draws_now() {
    let problems = diagram::stale(root()).unwrap_or_else(|err| panic!("cannot draw the figures: {err}"));
    assert!(
        problems.is_empty(),
        "the book's figures are out of date:\n  {}\n(fix: `{REDRAW}`, look at the changed figures, and commit them)",
        problems.join("\n  ")
    );
}

#[test]
fn every_file_in_the_diagrams_folder_is_a_listed_figure() {
    let listed: BTreeSet<String> = FIGURES.iter().map(|figure| figure.file.to_string()).collect();
    let mut unlisted = Vec::new();
    let base = root().join(DIAGRAMS_DIR);
    let mut folders = vec![base.clone()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("book/src/diagrams exists") {
            let path = entry.expect("a readable folder").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path
                    .strip_prefix(&base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if !listed.contains(&name) {
                    unlisted.push(name);
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "{DIAGRAMS_DIR} has files that src/diagram/mod.rs (FIGURES) does not list, so nothing keeps \
         them up to date: {unlisted:?}; add them to FIGURES or delete them"
    );
}

#[test]
fn chapters_show_listed_figures_with_their_alt_text() {
    let img = Regex::new(r#"<img\b[^>]*>"#).unwrap();
    let src = Regex::new(r#"\bsrc="diagrams/([^"]+)""#).unwrap();
    let alt = Regex::new(r#"\balt="([^"]*)""#).unwrap();
    let class = Regex::new(r#"\bclass="diagram""#).unwrap();
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    let book = root().join("book/src");
    for entry in fs::read_dir(&book).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let chapter = path.file_name().unwrap().to_string_lossy().to_string();
        for (number, line) in text.lines().enumerate() {
            for tag in img.find_iter(line) {
                let tag = tag.as_str();
                let Some(file) = src.captures(tag).map(|caps| caps[1].to_string()) else {
                    continue;
                };
                let place = format!("book/src/{chapter}:{}", number + 1);
                let Some(figure) = FIGURES.iter().find(|figure| figure.file == file) else {
                    problems.push(format!(
                        "{place}: diagrams/{file} is not in FIGURES (src/diagram/mod.rs)"
                    ));
                    continue;
                };
                if !book.join("diagrams").join(&file).is_file() {
                    problems.push(format!(
                        "{place}: diagrams/{file} does not exist (yet); run `{REDRAW}`"
                    ));
                }
                let expected_alt = html_escape(figure.alt);
                match alt.captures(tag) {
                    Some(caps) if caps[1] == expected_alt => {}
                    _ => problems.push(format!(
                        "{place}: the <img> for {file} needs alt=\"{expected_alt}\" (its text in FIGURES)"
                    )),
                }
                if !class.is_match(tag) {
                    problems.push(format!(
                        "{place}: the <img> for {file} needs class=\"diagram\" (book/diagrams.css inverts it in dark themes)"
                    ));
                }
                shown.insert(file);
            }
        }
    }
    for figure in FIGURES {
        let exists = book.join("diagrams").join(figure.file).is_file();
        if exists && !shown.contains(figure.file) {
            problems.push(format!(
                "diagrams/{} is drawn but no chapter shows it",
                figure.file
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "figures in the book:\n  {}",
        problems.join("\n  ")
    );
}

/// `text` as it appears inside an HTML attribute.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Lessons 01 to 09 each show at least one recorded conversation as a diagram. (Lessons 10 and
/// later join this list once their figures are in `FIGURES`: raise `LAST_LESSON_WITH_FIGURES`.)
#[test]
fn every_lesson_chapter_shows_a_recorded_conversation() {
    const LAST_LESSON_WITH_FIGURES: u32 = 13;
    let book = root().join("book/src");
    let mut missing = Vec::new();
    for entry in fs::read_dir(&book).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let Some(number) = name.get(..2).and_then(|digits| digits.parse::<u32>().ok()) else {
            continue;
        };
        if number > LAST_LESSON_WITH_FIGURES || !name.ends_with(".md") {
            continue;
        }
        let text = fs::read_to_string(book.join(&name)).unwrap();
        let shows_recording = FIGURES.iter().any(|figure| {
            matches!(
                figure.source,
                diagram::Source::Snapshot(_) | diagram::Source::Transcript(_)
            ) && text.contains(&format!("src=\"diagrams/{}\"", figure.file))
        });
        if !shows_recording {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "these lesson chapters show no sequence diagram of a recorded conversation: {missing:?}; \
         add one to FIGURES (src/diagram/mod.rs), run `{REDRAW}`, and show it with \
         <img class=\"diagram\" src=\"diagrams/FILE\" alt=\"ALT\">"
    );
}

/// `workbook diagrams` draws into the repository it is given, and `--check` fails, naming the
/// command that fixes it, once a transcript changes. Runs on a copy, so it never writes here.
#[test]
fn the_command_draws_and_checks_a_copy_of_the_repository() {
    let copy = std::env::temp_dir().join(format!("workbook-diagrams-{}", std::process::id()));
    let _ = fs::remove_dir_all(&copy);
    for folder in [
        "tests/snapshots",
        "benches/results",
        "benches/results/idle",
        "book/src/wire",
    ] {
        fs::create_dir_all(copy.join(folder)).unwrap();
        for entry in fs::read_dir(root().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            fs::copy(&path, copy.join(folder).join(path.file_name().unwrap())).unwrap();
        }
    }
    let workbook = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_workbook"))
            .args(args)
            .arg("--root")
            .arg(&copy)
            .output()
            .expect("workbook runs")
    };
    let drawn = workbook(&["diagrams"]);
    assert!(drawn.status.success(), "{drawn:?}");
    let greeting = copy.join(DIAGRAMS_DIR).join("01-greeting.svg");
    assert_eq!(
        fs::read_to_string(&greeting).unwrap(),
        fs::read_to_string(root().join(DIAGRAMS_DIR).join("01-greeting.svg")).unwrap(),
        "the copy draws what is committed here"
    );
    assert!(workbook(&["diagrams", "--check"]).status.success());

    let snapshot = copy.join("tests/snapshots/01_echo_server__greeting.snap");
    let text = fs::read_to_string(&snapshot).unwrap();
    fs::write(&snapshot, text.replace("Hello, world!", "Hello, there!")).unwrap();
    let checked = workbook(&["diagrams", "--check"]);
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(
        !checked.status.success(),
        "a changed transcript must fail --check"
    );
    assert!(
        said.contains("01-greeting.svg is stale") && said.contains(REDRAW),
        "{said}"
    );
    assert!(
        !fs::read_to_string(&greeting).unwrap().contains("Hello, there!"),
        "--check must not write"
    );
    let _ = fs::remove_dir_all(&copy);
}
