//! The book (`book/src`) must show the real code and the real transcripts, never a stale copy.
//!
//! mdBook 0.5 is forgiving where we cannot be: a misspelled anchor includes nothing, a missing
//! file leaves the raw include directive in the page, and `mdbook build` still exits 0. These
//! tests read the book's sources the way mdBook does and fail, naming the file, the line and
//! the fix, when:
//! - an include (`include`, `rustdoc_include`, `playground`) names a file that does not exist,
//!   an anchor without an `ANCHOR:`/`ANCHOR_END:` pair, or resolves to empty text;
//! - a snapshot include does not start at the first transcript line after the insta header;
//! - Rust code is included outside a `rust,ignore` block (`mdbook test` would try to run it);
//! - `SUMMARY.md` names a missing file, or a chapter file is not reachable from it;
//! - a link between chapters points to a heading that does not exist;
//! - a lesson binary in `Cargo.toml` has no chapter that includes its source.
//!
//! The parsing mirrors mdBook 0.5.4 (`mdbook-driver`'s `links` preprocessor, `mdbook-html`'s
//! heading ids); the unit tests at the end pin that behaviour on small inline examples.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

// ---------------------------------------------------------------------------------------------
// The checks, on the real book
// ---------------------------------------------------------------------------------------------

#[test]
fn every_include_resolves_to_text() {
    let book = Book::load();
    let mut problems = Problems::default();
    for chapter in &book.chapters {
        for directive in &chapter.directives {
            check_directive(&chapter.path, directive, &mut problems);
        }
    }
    problems.fail_if_any("the book includes code or transcripts that do not resolve");
}

#[test]
fn summary_names_existing_chapters_and_every_chapter_is_listed() {
    let book = Book::load();
    let mut problems = Problems::default();
    let summary_path = book.src.join("SUMMARY.md");
    for entry in &book.summary {
        if !entry.target.is_file() {
            problems.add(
                &summary_path,
                entry.line,
                format!(
                    "`{}` names {}, which does not exist; create the chapter or fix the path \
                     (it is relative to book/src; book.toml has create-missing = false)",
                    entry.link,
                    shown(&entry.target)
                ),
            );
        }
    }
    let listed: HashSet<PathBuf> = book
        .summary
        .iter()
        .map(|entry| normalize(&entry.target))
        .collect();
    let included: HashSet<PathBuf> = book
        .chapters
        .iter()
        .flat_map(|chapter| &chapter.directives)
        .map(|directive| directive.target.clone())
        .collect();
    for chapter in &book.chapters {
        let path = normalize(&chapter.path);
        if !listed.contains(&path) && !included.contains(&path) {
            problems.add(
                &chapter.path,
                1,
                "this chapter is not listed in book/src/SUMMARY.md, so mdBook never builds it; \
                 add `- [Title](FILE)` there, or delete the file"
                    .replace("FILE", &relative_to(&chapter.path, &book.src)),
            );
        }
    }
    problems.fail_if_any("SUMMARY.md and the chapter files disagree");
}

#[test]
fn every_lesson_binary_has_a_chapter() {
    let book = Book::load();
    let manifest = root().join("Cargo.toml");
    let cargo_toml = read(&manifest);
    let listed: HashSet<PathBuf> = book
        .summary
        .iter()
        .map(|entry| normalize(&entry.target))
        .collect();
    let mut problems = Problems::default();
    for bin in cargo_bins(&cargo_toml) {
        if !bin.path.starts_with("lessons/") {
            continue;
        }
        let source = normalize(&root().join(&bin.path));
        let chapters: Vec<&Chapter> = book
            .chapters
            .iter()
            .filter(|chapter| listed.contains(&normalize(&chapter.path)))
            .filter(|chapter| chapter.directives.iter().any(|d| d.target == source))
            .collect();
        if chapters.is_empty() {
            let stem = bin.path.trim_start_matches("lessons/").trim_end_matches(".rs");
            problems.add(
                &manifest,
                bin.line,
                format!(
                    "lesson binary `{}` ({}) has no chapter in the book. Every lesson lands \
                     together with its chapter: write book/src/{}.md, show the code with \
                     ```rust,ignore blocks that include ../../{}:ANCHOR (add `// ANCHOR: name` \
                     / `// ANCHOR_END: name` lines to the lesson), and list the chapter in \
                     book/src/SUMMARY.md",
                    bin.name,
                    bin.path,
                    stem.replace('_', "-"),
                    bin.path
                ),
            );
        }
    }
    problems.fail_if_any("a lesson has no chapter");
}

#[test]
fn links_between_chapters_point_to_existing_headings() {
    let book = Book::load();
    let mut problems = Problems::default();
    for chapter in &book.chapters {
        for link in markdown_links(&chapter.text) {
            let Some((file, fragment)) = local_markdown_link(&link.url) else {
                continue;
            };
            let target = if file.is_empty() {
                chapter.path.clone()
            } else {
                normalize(&chapter.path.parent().unwrap().join(file))
            };
            let Ok(text) = fs::read_to_string(&target) else {
                problems.add(
                    &chapter.path,
                    link.line,
                    format!(
                        "link `{}`: {} does not exist; fix the link",
                        link.url,
                        shown(&target)
                    ),
                );
                continue;
            };
            let Some(fragment) = fragment else { continue };
            let ids = heading_ids(&text);
            if !ids.iter().any(|id| id == fragment) {
                problems.add(
                    &chapter.path,
                    link.line,
                    format!(
                        "link `{}`: {} has no heading with the id `{fragment}`; its headings are: {}",
                        link.url,
                        shown(&target),
                        ids.join(", ")
                    ),
                );
            }
        }
    }
    problems.fail_if_any("a link between chapters is broken");
}

/// The checker's hints send a learner to the book's section that reproduces the mistake by hand
/// (`workbook check` shows them as `book/book/html/05-kv-server.html#a-missing-newline`): each
/// must name a chapter in `SUMMARY.md` and a heading of it.
#[test]
fn every_hint_of_the_checker_links_to_a_heading_that_exists() {
    let book = Book::load();
    let links = socket_workbook::checker::book_links();
    assert!(
        !links.is_empty(),
        "the checker's hints link to no section of the book"
    );
    let mut broken = Vec::new();
    for link in links {
        let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
        let target = normalize(&book.src.join(file));
        let Some(chapter) = book.chapters.iter().find(|c| c.path == target) else {
            broken.push(format!("{link}: book/src/{file} does not exist"));
            continue;
        };
        if !book.summary.iter().any(|entry| entry.target == target) {
            broken.push(format!(
                "{link}: book/src/{file} is not in SUMMARY.md, so it is not built"
            ));
        }
        let ids = heading_ids(&chapter.text);
        if fragment.is_empty() || !ids.iter().any(|id| id == fragment) {
            broken.push(format!(
                "{link}: book/src/{file} has no heading with the id `{fragment}`; its headings are: {}",
                ids.join(", ")
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "a hint of the checker (src/checker/hints.rs, src/scenarios/*.rs: `.see(...)`) links to a \
         section that does not exist; fix the link or the heading:\n{}",
        broken.join("\n")
    );
}

/// The starters of `workbook new` (src/practice/starters/) point the learner to sections as
/// `10-udp-echo.md#reply-to-the-sender`: each must name a chapter and a heading of it.
#[test]
fn every_section_a_starter_names_exists() {
    static SECTION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b([0-9a-z][0-9a-z_-]*\.md)#([0-9a-z_-]+)").unwrap());
    let book = Book::load();
    let mut broken = Vec::new();
    let mut named = 0;
    for starter in socket_workbook::practice::STARTERS {
        for (lang, text) in [("python", starter.python), ("rust", starter.rust_main)] {
            for cap in SECTION.captures_iter(text) {
                named += 1;
                let (file, fragment) = (&cap[1], &cap[2]);
                let target = normalize(&book.src.join(file));
                let Some(chapter) = book.chapters.iter().find(|c| c.path == target) else {
                    broken.push(format!(
                        "{} ({lang}): book/src/{file} does not exist",
                        starter.step
                    ));
                    continue;
                };
                if !heading_ids(&chapter.text).iter().any(|id| id == fragment) {
                    broken.push(format!(
                        "{} ({lang}): book/src/{file} has no heading with the id `{fragment}`",
                        starter.step
                    ));
                }
            }
        }
    }
    assert!(
        named > 0,
        "no starter names a section; is the pattern out of date?"
    );
    assert!(
        broken.is_empty(),
        "a starter (src/practice/starters/<step>/) names a section that does not exist:\n{}",
        broken.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Checking one include directive
// ---------------------------------------------------------------------------------------------

fn check_directive(chapter: &Path, directive: &Directive, problems: &mut Problems) {
    let at = |problems: &mut Problems, message: String| {
        problems.add(
            chapter,
            directive.line,
            format!("`{}`: {message}", directive.text),
        );
    };
    let Ok(contents) = fs::read_to_string(&directive.target) else {
        at(
            problems,
            format!(
                "{} does not exist; fix the path (it is relative to the .md file's folder)",
                shown(&directive.target)
            ),
        );
        return;
    };
    let is_snapshot = directive.path.ends_with(".snap");
    if is_snapshot
        && let Err(message) = check_snapshot_selection(&contents, &directive.selection, &directive.path)
    {
        at(problems, message);
        return;
    }
    match included_text(&contents, &directive.selection) {
        Err(message) => at(problems, message),
        Ok(text) if text.trim().is_empty() => at(
            problems,
            "includes only empty or blank lines; check the line range or the anchor".to_string(),
        ),
        Ok(_) => {}
    }
    if directive.path.ends_with(".rs") && !directive.fence.as_deref().is_some_and(is_rust_ignore) {
        at(
            problems,
            format!(
                "Rust code must be shown in a ```rust,ignore block (found {}), so that \
                 `mdbook test` does not try to compile and run a network program",
                match &directive.fence {
                    Some(info) => format!("```{info}"),
                    None => "no code block".to_string(),
                }
            ),
        );
    }
}

/// `rust,ignore`, `rust ignore`, `rust,ignore,edition2024`, ...
fn is_rust_ignore(info: &str) -> bool {
    let words: Vec<&str> = info.split([',', ' ']).map(str::trim).collect();
    words.first() == Some(&"rust") && words.contains(&"ignore")
}

/// The text mdBook puts in the page for this selection of `contents`, or why there is none.
fn included_text(contents: &str, selection: &Selection) -> Result<String, String> {
    match selection {
        Selection::Lines(range) => Ok(take_lines(contents, *range)),
        Selection::Anchor(name) => {
            let starts: Vec<usize> = contents
                .lines()
                .enumerate()
                .filter(|(_, line)| ANCHOR_START.captures(line).is_some_and(|cap| &cap[1] == name))
                .map(|(index, _)| index)
                .collect();
            let Some(&start) = starts.first() else {
                let known = anchor_names(contents);
                return Err(format!(
                    "the file has no `ANCHOR: {name}` line, so mdBook would include nothing; \
                     anchors in that file: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            let has_end = contents
                .lines()
                .skip(start + 1)
                .any(|line| ANCHOR_END.captures(line).is_some_and(|cap| &cap[1] == name));
            if !has_end {
                return Err(format!(
                    "`ANCHOR: {name}` (line {}) has no `ANCHOR_END: {name}` after it, so mdBook \
                     would include everything to the end of the file; add the end marker",
                    start + 1
                ));
            }
            Ok(take_anchored_lines(contents, name))
        }
    }
}

/// An insta snapshot starts with a header (`---`, `source: ...`, `expression: ...`, `---`); the
/// transcript is everything after it. An include must start exactly there.
fn check_snapshot_selection(contents: &str, selection: &Selection, path: &str) -> Result<(), String> {
    let Some(first) = first_transcript_line(contents) else {
        return Err("this .snap file has no insta header (`---` ... `---`); is it a snapshot?".to_string());
    };
    let right = format!("`{path}:{first}:`");
    match selection {
        Selection::Lines(LineRange {
            start: Some(start), ..
        }) if start + 1 == first => Ok(()),
        Selection::Lines(LineRange {
            start: Some(start), ..
        }) => Err(format!(
            "starts at line {}, but the transcript starts at line {first}, right after the \
             snapshot header; include {right}",
            start + 1
        )),
        Selection::Lines(_) => Err(format!(
            "includes the snapshot header too; include only the transcript: {right}"
        )),
        Selection::Anchor(_) => Err(format!("snapshots have no anchors; include {right}")),
    }
}

/// The 1-based number of the first line after the snapshot header.
fn first_transcript_line(contents: &str) -> Option<usize> {
    let mut lines = contents.lines();
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    let closing = lines.position(|line| line.trim_end() == "---")?;
    // Line 1 is the opening `---`, the closing one is line `closing + 2`.
    Some(closing + 3)
}

// ---------------------------------------------------------------------------------------------
// mdBook's include directives, parsed as mdBook 0.5.4 parses them
// ---------------------------------------------------------------------------------------------

static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \\\{\{\#.*\}\}          # an escaped directive: shown as text, not expanded
        |
        \{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}",
    )
    .unwrap()
});
static ANCHOR_START: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"ANCHOR:\s*([\w_-]+)").unwrap());
static ANCHOR_END: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"ANCHOR_END:\s*([\w_-]+)").unwrap());

/// One `include`, `rustdoc_include` or `playground` directive in a chapter.
#[derive(Debug, Clone, PartialEq)]
struct Directive {
    /// 1-based line of the chapter where the directive starts.
    line: usize,
    /// The directive as written, for messages.
    text: String,
    /// The path as written (relative to the chapter's folder).
    path: String,
    /// The file it points to (the chapter's folder joined with `path`, normalized).
    target: PathBuf,
    selection: Selection,
    /// The info string of the fenced code block the directive sits in (`rust,ignore`), if any.
    fence: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Selection {
    Lines(LineRange),
    Anchor(String),
}

/// 0-based, end exclusive, like mdBook's `LineRange`; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LineRange {
    start: Option<usize>,
    end: Option<usize>,
}

const ALL_LINES: LineRange = LineRange {
    start: None,
    end: None,
};

fn find_directives(chapter_text: &str, chapter_dir: &Path) -> Vec<Directive> {
    let fences = fence_of_each_line(chapter_text);
    let mut directives = Vec::new();
    for cap in DIRECTIVE.captures_iter(chapter_text) {
        let (Some(kind), Some(rest)) = (cap.get(1), cap.get(2)) else {
            continue; // escaped
        };
        if !matches!(kind.as_str(), "include" | "rustdoc_include" | "playground") {
            continue; // `title` and unknown directives carry no path
        }
        let Some(argument) = rest.as_str().split_whitespace().next() else {
            continue;
        };
        let whole = cap.get(0).unwrap();
        let line = chapter_text[..whole.start()].matches('\n').count() + 1;
        let (path, selection) = if kind.as_str() == "playground" {
            (argument.to_string(), Selection::Lines(ALL_LINES))
        } else {
            parse_path_and_selection(argument)
        };
        directives.push(Directive {
            line,
            text: whole.as_str().to_string(),
            target: normalize(&chapter_dir.join(&path)),
            path,
            selection,
            fence: fences[line - 1].clone(),
        });
    }
    directives
}

/// `file.rs`, `file.rs:anchor`, `file.rs:3`, `file.rs:3:7`, `file.rs:3:`, `file.rs::7`, with
/// mdBook's meaning: line numbers are 1-based and inclusive, a single number is one line.
fn parse_path_and_selection(argument: &str) -> (String, Selection) {
    let mut parts = argument.splitn(2, ':');
    let path = parts.next().unwrap_or_default().to_string();
    let mut spec = parts.next().unwrap_or("").splitn(3, ':');
    let first = spec.next();
    let start = match first {
        Some(text) => match text.parse::<usize>() {
            Ok(number) => Some(number.saturating_sub(1)),
            Err(_) if text.is_empty() => None,
            Err(_) => return (path, Selection::Anchor(text.to_string())),
        },
        None => None,
    };
    let end = spec.next().map(|text| text.parse::<usize>());
    let range = match (start, end) {
        (Some(start), Some(Ok(end))) => LineRange {
            start: Some(start),
            end: Some(end),
        },
        (Some(start), Some(Err(_))) => LineRange {
            start: Some(start),
            end: None,
        },
        (Some(start), None) => LineRange {
            start: Some(start),
            end: Some(start + 1),
        },
        (None, Some(Ok(end))) => LineRange {
            start: None,
            end: Some(end),
        },
        (None, _) => ALL_LINES,
    };
    (path, Selection::Lines(range))
}

/// mdBook's `take_lines`.
fn take_lines(text: &str, range: LineRange) -> String {
    let start = range.start.unwrap_or(0);
    let lines = text.lines().skip(start);
    match range.end {
        Some(end) => lines
            .take(end.saturating_sub(start))
            .collect::<Vec<_>>()
            .join("\n"),
        None => lines.collect::<Vec<_>>().join("\n"),
    }
}

/// mdBook's `take_anchored_lines`: the lines between `ANCHOR: name` and the next
/// `ANCHOR_END: name`, without any other anchor lines nested inside.
fn take_anchored_lines(text: &str, name: &str) -> String {
    let mut kept = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if inside {
            match ANCHOR_END.captures(line) {
                Some(cap) if &cap[1] == name => break,
                Some(_) => {}
                None if ANCHOR_START.is_match(line) => {}
                None => kept.push(line),
            }
        } else if ANCHOR_START.captures(line).is_some_and(|cap| &cap[1] == name) {
            inside = true;
        }
    }
    kept.join("\n")
}

fn anchor_names(text: &str) -> Vec<String> {
    let names: BTreeSet<String> = ANCHOR_START
        .captures_iter(text)
        .map(|cap| cap[1].to_string())
        .collect();
    names.into_iter().collect()
}

/// For each line: the info string of the fenced code block it is in (`""` for a bare fence).
/// Fence lines themselves count as outside.
fn fence_of_each_line(text: &str) -> Vec<Option<String>> {
    let mut open: Option<(String, String)> = None; // (fence, info)
    let mut result = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let fence: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
        let is_fence = fence.len() >= 3 && fence.chars().all(|c| c == fence.chars().next().unwrap());
        match &open {
            Some((opening, _))
                if is_fence
                    && fence.starts_with(opening.as_str())
                    && trimmed[fence.len()..].trim().is_empty() =>
            {
                open = None;
                result.push(None);
            }
            Some((_, info)) => result.push(Some(info.clone())),
            None if is_fence => {
                open = Some((fence.clone(), trimmed[fence.len()..].trim().to_string()));
                result.push(None);
            }
            None => result.push(None),
        }
    }
    // A directive on the last line of a file without a trailing newline still needs an entry.
    result.push(None);
    result
}

// ---------------------------------------------------------------------------------------------
// SUMMARY.md, links and headings
// ---------------------------------------------------------------------------------------------

static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\]\(([^)\s]*)\)").unwrap());

#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    url: String,
}

/// Markdown links `[text](url)` outside code blocks and code spans.
fn markdown_links(text: &str) -> Vec<Link> {
    let fences = fence_of_each_line(text);
    let mut links = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if fences[index].is_some() || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            continue;
        }
        let without_code = CODE_SPAN.replace_all(line, "");
        for cap in LINK.captures_iter(&without_code) {
            links.push(Link {
                line: index + 1,
                url: cap[1].to_string(),
            });
        }
    }
    links
}

static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`[^`]*`").unwrap());

/// `chapter.md#heading` → `("chapter.md", Some("heading"))`, `#heading` → `("", Some(..))`.
/// `None` for web links and for links to anything but a chapter.
fn local_markdown_link(url: &str) -> Option<(&str, Option<&str>)> {
    if url.contains("://") || url.starts_with("mailto:") {
        return None;
    }
    let (file, fragment) = match url.split_once('#') {
        Some((file, fragment)) => (file, Some(fragment)),
        None => (url, None),
    };
    (file.is_empty() || file.ends_with(".md")).then_some((file, fragment))
}

/// The ids mdBook 0.5 gives the headings of a chapter (`mdbook-html`'s `id_from_content` and
/// `unique_id`).
fn heading_ids(text: &str) -> Vec<String> {
    static HEADING: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$").unwrap());
    static MARKUP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[([^\]]*)\]\([^)]*\)|[`*]").unwrap());
    let fences = fence_of_each_line(text);
    let mut used = HashSet::new();
    let mut ids = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if fences[index].is_some() {
            continue;
        }
        let Some(cap) = HEADING.captures(line) else {
            continue;
        };
        let plain = MARKUP.replace_all(&cap[1], |link: &regex::Captures| {
            link.get(1)
                .map_or(String::new(), |text| text.as_str().to_string())
        });
        let id = id_from_content(&plain);
        let mut unique = id.clone();
        let mut counter = 1;
        while !used.insert(unique.clone()) {
            unique = format!("{id}-{counter}");
            counter += 1;
        }
        ids.push(unique);
    }
    ids
}

fn id_from_content(content: &str) -> String {
    content
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|ch| {
            if ch.is_alphanumeric() || ch == '_' || ch == '-' {
                Some(ch)
            } else if ch.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

#[derive(Debug)]
struct SummaryEntry {
    line: usize,
    link: String,
    target: PathBuf,
}

/// The chapters `SUMMARY.md` names (draft chapters, `[Title]()`, have no file and are skipped).
fn summary_entries(summary: &str, src: &Path) -> Vec<SummaryEntry> {
    markdown_links(summary)
        .into_iter()
        .filter(|link| !link.url.is_empty())
        .map(|link| {
            let file = link.url.split('#').next().unwrap_or_default();
            SummaryEntry {
                line: link.line,
                target: normalize(&src.join(file)),
                link: link.url,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cargo.toml's lesson binaries
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct CargoBin {
    name: String,
    path: String,
    /// 1-based line of the `[[bin]]` header.
    line: usize,
}

/// The `[[bin]]` tables of a Cargo.toml, read line by line (name and path are plain strings).
fn cargo_bins(manifest: &str) -> Vec<CargoBin> {
    static KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"^\s*(name|path)\s*=\s*"([^"]*)""#).unwrap());
    let mut bins = Vec::new();
    let mut current: Option<(usize, BTreeMap<String, String>)> = None;
    let mut finish = |current: &mut Option<(usize, BTreeMap<String, String>)>| {
        if let Some((line, mut keys)) = current.take() {
            bins.push(CargoBin {
                name: keys.remove("name").unwrap_or_default(),
                path: keys.remove("path").unwrap_or_default(),
                line,
            });
        }
    };
    for (index, line) in manifest.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            finish(&mut current);
            if trimmed == "[[bin]]" {
                current = Some((index + 1, BTreeMap::new()));
            }
        } else if let (Some((_, keys)), Some(cap)) = (current.as_mut(), KEY.captures(line)) {
            keys.insert(cap[1].to_string(), cap[2].to_string());
        }
    }
    finish(&mut current);
    bins
}

// ---------------------------------------------------------------------------------------------
// Loading the book, reporting problems
// ---------------------------------------------------------------------------------------------

struct Book {
    src: PathBuf,
    summary: Vec<SummaryEntry>,
    /// Every .md file under book/src except SUMMARY.md.
    chapters: Vec<Chapter>,
}

struct Chapter {
    path: PathBuf,
    text: String,
    directives: Vec<Directive>,
}

impl Book {
    fn load() -> Book {
        let src = root().join("book/src");
        let summary = summary_entries(&read(&src.join("SUMMARY.md")), &src);
        let mut files = Vec::new();
        markdown_files(&src, &mut files);
        files.sort();
        let chapters = files
            .into_iter()
            .filter(|path| path.file_name().is_some_and(|name| name != "SUMMARY.md"))
            .map(|path| {
                let text = read(&path);
                let directives = find_directives(&text, path.parent().unwrap());
                Chapter {
                    path: normalize(&path),
                    text,
                    directives,
                }
            })
            .collect();
        Book {
            src,
            summary,
            chapters,
        }
    }
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            out.push(path);
        }
    }
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.0.push(format!("{}:{line}: {}", shown(file), message.into()));
    }

    fn fail_if_any(self, summary: &str) {
        assert!(
            self.0.is_empty(),
            "{summary}:\n\n{}\n\n(mdBook would build the book anyway, with missing or wrong text.)",
            self.0.join("\n\n")
        );
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// `path` relative to the repository root when it is inside it, for messages.
fn shown(path: &Path) -> String {
    relative_to(path, &root())
}

fn relative_to(path: &Path, base: &Path) -> String {
    let path = normalize(path);
    path.strip_prefix(normalize(base))
        .unwrap_or(&path)
        .display()
        .to_string()
}

/// Removes `.` and resolves `..` without touching the file system (the file may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The parser itself, on small inline examples
// ---------------------------------------------------------------------------------------------

mod parser {
    use super::*;

    fn lines(start: Option<usize>, end: Option<usize>) -> Selection {
        Selection::Lines(LineRange { start, end })
    }

    #[test]
    fn paths_and_selections_are_read_as_mdbook_reads_them() {
        let cases = [
            ("a.rs", lines(None, None)),
            ("a.rs:bind", Selection::Anchor("bind".into())),
            ("a.rs:echo_loop", Selection::Anchor("echo_loop".into())),
            ("a.snap:5:", lines(Some(4), None)),
            ("a.rs:2:3", lines(Some(1), Some(3))),
            ("a.rs:3", lines(Some(2), Some(3))),
            ("a.rs::2", lines(None, Some(2))),
            ("a.rs:0:", lines(Some(0), None)),
        ];
        for (argument, selection) in cases {
            let (path, got) = parse_path_and_selection(argument);
            assert_eq!(path, argument.split(':').next().unwrap(), "{argument}");
            assert_eq!(got, selection, "{argument}");
        }
    }

    #[test]
    fn line_ranges_take_the_lines_mdbook_takes() {
        let text = "Lorem\nipsum\ndolor\nsit\namet";
        let take = |argument: &str| match parse_path_and_selection(argument).1 {
            Selection::Lines(range) => take_lines(text, range),
            Selection::Anchor(_) => unreachable!(),
        };
        assert_eq!(take("f:2:3"), "ipsum\ndolor");
        assert_eq!(take("f:4:"), "sit\namet");
        assert_eq!(take("f::3"), "Lorem\nipsum\ndolor");
        assert_eq!(take("f:2"), "ipsum");
        assert_eq!(take("f"), text);
        assert_eq!(take("f:9:"), "");
    }

    #[test]
    fn anchors_drop_nested_anchor_lines_and_stop_at_their_own_end() {
        let text =
            "a\n// ANCHOR: outer\nb\n// ANCHOR: inner\nc\n// ANCHOR_END: inner\nd\n// ANCHOR_END: outer\ne";
        assert_eq!(take_anchored_lines(text, "outer"), "b\nc\nd");
        assert_eq!(take_anchored_lines(text, "inner"), "c");
        assert_eq!(
            included_text(text, &Selection::Anchor("inner".into())).unwrap(),
            "c"
        );
    }

    #[test]
    fn a_missing_or_unterminated_anchor_is_an_error() {
        let text = "// ANCHOR: bind\nlet x = 1;\n// ANCHOR_END: bind\n// ANCHOR: open\nlet y = 2;";
        let missing = included_text(text, &Selection::Anchor("bnid".into())).unwrap_err();
        assert!(missing.contains("no `ANCHOR: bnid`"), "{missing}");
        assert!(missing.contains("bind, open"), "{missing}");
        let open = included_text(text, &Selection::Anchor("open".into())).unwrap_err();
        assert!(open.contains("no `ANCHOR_END: open`"), "{open}");
        assert!(open.contains("line 4"), "{open}");
        // An end marker *before* the start does not count.
        let backwards = "// ANCHOR_END: x\n// ANCHOR: x\ncode";
        assert!(included_text(backwards, &Selection::Anchor("x".into())).is_err());
    }

    #[test]
    fn an_anchor_with_only_blank_lines_is_found_but_empty() {
        let text = "// ANCHOR: nothing\n\n   \n// ANCHOR_END: nothing";
        let got = included_text(text, &Selection::Anchor("nothing".into())).unwrap();
        assert!(got.trim().is_empty());
    }

    #[test]
    fn directives_are_found_with_their_line_and_code_block() {
        let chapter = "# Title\n\n```rust,ignore\n{{#include ../../lessons/01.rs:bind}}\n```\n\n\
                       text {{#include x.snap:5:}} and \\{{#include escaped.rs}}\n{{#title Other}}\n\
                       {{ #rustdoc_include  y.rs:2:3 }}";
        let found = find_directives(chapter, Path::new("/book/src"));
        let summary: Vec<(usize, &str, Option<&str>)> = found
            .iter()
            .map(|d| (d.line, d.path.as_str(), d.fence.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (4, "../../lessons/01.rs", Some("rust,ignore")),
                (7, "x.snap", None),
                (9, "y.rs", None)
            ]
        );
        assert_eq!(found[0].target, PathBuf::from("/lessons/01.rs"));
        assert_eq!(found[0].selection, Selection::Anchor("bind".into()));
        assert_eq!(found[2].selection, lines(Some(1), Some(3)));
    }

    #[test]
    fn code_blocks_are_tracked_inside_lists_and_with_tildes() {
        let text = "1. step\n\n   ```sh\n   nc -l\n   ```\n~~~text\n```\nstill inside\n~~~\nout";
        let fences = fence_of_each_line(text);
        assert_eq!(fences[3].as_deref(), Some("sh"));
        assert_eq!(fences[4], None);
        assert_eq!(fences[6].as_deref(), Some("text"));
        assert_eq!(fences[7].as_deref(), Some("text"));
        assert_eq!(fences[9], None);
        assert!(is_rust_ignore("rust,ignore"));
        assert!(!is_rust_ignore("rust,no_run"));
        assert!(!is_rust_ignore("text"));
    }

    #[test]
    fn snapshot_includes_must_start_after_the_header() {
        let snap = "---\nsource: tests/x.rs\nexpression: \"run()\"\n---\n# greeting\nc1 connects\n";
        assert_eq!(first_transcript_line(snap), Some(5));
        let check = |argument: &str| {
            let (path, selection) = parse_path_and_selection(argument);
            check_snapshot_selection(snap, &selection, &path)
        };
        assert_eq!(check("x.snap:5:"), Ok(()));
        assert_eq!(check("x.snap:5:6"), Ok(()));
        assert!(check("x.snap:4:").unwrap_err().contains("`x.snap:5:`"));
        assert!(check("x.snap:6:").unwrap_err().contains("starts at line 6"));
        assert!(check("x.snap").unwrap_err().contains("header"));
        assert!(check("x.snap::9").unwrap_err().contains("header"));
        assert!(check("x.snap:greeting").is_err());
        assert_eq!(first_transcript_line("no header\n"), None);
    }

    #[test]
    fn summary_links_and_heading_ids_follow_mdbook() {
        let summary =
            "# Summary\n\n[Introduction](introduction.md)\n\n# Part\n\n- [One](01-one.md)\n  - [Draft]()\n";
        let entries = summary_entries(summary, Path::new("/src"));
        let got: Vec<(usize, PathBuf)> = entries.iter().map(|e| (e.line, e.target.clone())).collect();
        assert_eq!(
            got,
            [
                (3, PathBuf::from("/src/introduction.md")),
                (7, PathBuf::from("/src/01-one.md"))
            ]
        );

        let chapter = "# Lesson 01: an echo server\n## Run it\n```sh\n# not a heading\n```\n\
                       ## Not closing sockets, TIME_WAIT and \"address already in use\"\n\
                       ### Send, then say \"that's all\"\n## Run it\n## See [the `ss` tool](x.md)";
        assert_eq!(
            heading_ids(chapter),
            [
                "lesson-01-an-echo-server",
                "run-it",
                "not-closing-sockets-time_wait-and-address-already-in-use",
                "send-then-say-thats-all",
                "run-it-1",
                "see-the-ss-tool"
            ]
        );
        assert_eq!(local_markdown_link("a.md#b"), Some(("a.md", Some("b"))));
        assert_eq!(local_markdown_link("#b"), Some(("", Some("b"))));
        assert_eq!(local_markdown_link("https://beej.us/guide/bgnet/"), None);
        let links = markdown_links("see [a](a.md) and `[b](b.md)`\n```\n[c](c.md)\n```\n");
        assert_eq!(
            links,
            [Link {
                line: 1,
                url: "a.md".into()
            }]
        );
    }

    #[test]
    fn lesson_binaries_are_read_from_cargo_toml() {
        let manifest = "[package]\nname = \"socket-workbook\"\n\n[[bin]]\nname = \"01_echo_server\"\n\
                        path = \"lessons/01_echo_server.rs\"\n\n[[bin]]\npath = \"src/bin/workbook.rs\"\n\
                        name = \"workbook\"\n\n[dependencies]\nname = \"not a bin\"\n";
        assert_eq!(
            cargo_bins(manifest),
            [
                CargoBin {
                    name: "01_echo_server".into(),
                    path: "lessons/01_echo_server.rs".into(),
                    line: 4
                },
                CargoBin {
                    name: "workbook".into(),
                    path: "src/bin/workbook.rs".into(),
                    line: 8
                },
            ]
        );
    }
}
