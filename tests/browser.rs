//! The built book in a real browser: every page opened in headless Chromium, every image, SVG
//! object and inline diagram checked for having loaded and having a size, and every JavaScript
//! error and missing file reported.
//!
//! A check of the HTML alone would pass a page whose diagram file is missing or is not valid SVG.
//! Here the browser decides: a small HTTP server (a thread in this test) serves the built book,
//! adding to each page a script that records errors, and one more page holds every chapter in an
//! iframe, looks at each once they have all loaded, and posts what it found back to the server.
//!
//! Run after building the book (`.ci/run` does, as root, after `mdbook build book`):
//!
//! ```text
//! mdbook build book
//! WORKBOOK_BOOK_HTML=book/book/html cargo test --test browser -- --ignored
//! ```
//!
//! Without Chromium these tests say so and pass, except in CI (`CI=true`), where they fail.
//! Without `WORKBOOK_BOOK_HTML`, the book test looks in `book/book/html` and, if nothing has been
//! built there, says so and passes: `cargo test -- --ignored` runs before the book is built.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long Chromium may take to load every page and report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest request body the server accepts (the report of every page).
const MAX_BODY: usize = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "slow: opens every page of the built book in headless Chromium"]
fn every_page_of_the_built_book_renders_in_chromium() {
    let Some(chromium) = chromium_or_skip("every_page_of_the_built_book_renders_in_chromium") else {
        return;
    };
    let html = match std::env::var("WORKBOOK_BOOK_HTML") {
        Ok(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("index.html").is_file(),
                "WORKBOOK_BOOK_HTML={} holds no built book; run `mdbook build book` first",
                dir.display()
            );
            dir
        }
        Err(_) => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("book/book/html");
            if !dir.join("index.html").is_file() {
                eprintln!(
                    "SKIPPED: no built book in {}; run `mdbook build book`, then \
                     WORKBOOK_BOOK_HTML=book/book/html cargo test --test browser -- --ignored \
                     (.ci/run does this after building the book)",
                    dir.display()
                );
                return;
            }
            dir
        }
    };
    let pages = html_pages(&html);
    assert!(
        pages.len() > 10,
        "only {} pages in {}",
        pages.len(),
        html.display()
    );
    let report = check_pages(&chromium, &html, &pages);
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "{} of {} pages of the book do not render cleanly in Chromium:\n{}",
        failures.len(),
        pages.len(),
        failures.join("\n")
    );
    println!(
        "{} pages checked in Chromium: {} images, {} SVG objects, {} inline SVG diagrams",
        pages.len(),
        report.count("images"),
        report.count("objects"),
        report.count("svgs")
    );
}

/// The check must find what it is for: a missing image, an SVG that is not valid, an empty SVG,
/// a missing stylesheet and a script error, each on its own page, and no problem on a good page.
#[test]
#[ignore = "slow: opens test pages in headless Chromium"]
fn a_broken_image_a_missing_file_and_a_script_error_are_found() {
    let Some(chromium) = chromium_or_skip("a_broken_image_a_missing_file_and_a_script_error_are_found")
    else {
        return;
    };
    let dir = TempDir::new("pages");
    let good_svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40"><text x="4" y="24">fine</text></svg>"#;
    let empty_svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>"#;
    let files = [
        ("good.svg", good_svg.to_string()),
        (
            "broken.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>no end".to_string(),
        ),
        ("empty.svg", empty_svg.to_string()),
        (
            "good.html",
            page(&format!(
                "<img src=\"good.svg\" alt=\"fine\"><object data=\"good.svg\" type=\"image/svg+xml\"></object>\
                 <main>{good_svg}</main>"
            )),
        ),
        (
            "lazy.html",
            page(
                "<div style=\"height: 5000px\"></div>\
                 <img loading=\"lazy\" src=\"good.svg\" alt=\"far below, loaded late\">",
            ),
        ),
        (
            "missing-image.html",
            page("<img src=\"missing.svg\" alt=\"gone\">"),
        ),
        ("broken-svg.html", page("<img src=\"broken.svg\" alt=\"broken\">")),
        ("empty-svg.html", page("<img src=\"empty.svg\" alt=\"nothing\">")),
        (
            "missing-object.html",
            page("<object data=\"missing-too.svg\" type=\"image/svg+xml\"></object>"),
        ),
        (
            "missing-css.html",
            page("<link rel=\"stylesheet\" href=\"missing.css\"><p>text</p>"),
        ),
        (
            "script-error.html",
            page("<script>thisFunctionDoesNotExist();</script>"),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path.join(name), text).unwrap();
    }
    let pages = html_pages(&dir.path);
    let report = check_pages(&chromium, &dir.path, &pages);
    let problems = |page: &str| report.problems(page).join("\n");

    assert_eq!(problems("good.html"), "", "the good page has no problems");
    assert_eq!(
        problems("lazy.html"),
        "",
        "an image that loads only when scrolled to is not broken"
    );
    assert_eq!(report.count("images"), 5, "one image on each of five pages");
    for (page, expected) in [
        ("missing-image.html", "missing.svg"),
        ("broken-svg.html", "broken.svg"),
        ("empty-svg.html", "empty.svg"),
        ("missing-object.html", "missing-too.svg"),
        ("missing-css.html", "missing.css"),
        ("script-error.html", "thisFunctionDoesNotExist"),
    ] {
        assert!(
            problems(page).contains(expected),
            "the check should report `{expected}` on {page}; it reported:\n{}",
            problems(page)
        );
    }
}

/// Screenshots of three chapters, in the light theme and in the dark `navy` theme, for a person
/// to look at. Runs only when asked, with the folder to write them to:
/// `WORKBOOK_SCREENSHOTS=/tmp/shots cargo test --test browser -- --ignored screenshots`.
#[test]
#[ignore = "slow: screenshots of the built book in headless Chromium"]
fn screenshots_of_three_chapters() {
    let Ok(out) = std::env::var("WORKBOOK_SCREENSHOTS") else {
        eprintln!("SKIPPED: set WORKBOOK_SCREENSHOTS=DIR to take screenshots of the book");
        return;
    };
    let out = PathBuf::from(out);
    let Some(chromium) = chromium_or_skip("screenshots_of_three_chapters") else {
        return;
    };
    let html = PathBuf::from(
        std::env::var("WORKBOOK_BOOK_HTML")
            .unwrap_or_else(|_| format!("{}/book/book/html", env!("CARGO_MANIFEST_DIR"))),
    );
    assert!(
        html.join("index.html").is_file(),
        "no built book in {}; run `mdbook build book` first",
        html.display()
    );
    std::fs::create_dir_all(&out).unwrap();
    let server = BookServer::start(&html, Vec::new());
    for chapter in ["01-echo-server", "08-kv-server-events", "watching-the-wire"] {
        if !html.join(format!("{chapter}.html")).is_file() {
            eprintln!("no {chapter}.html in the book; skipped");
            continue;
        }
        for theme in ["light", "navy"] {
            let file = out.join(format!("{chapter}-{theme}.png"));
            let _ = std::fs::remove_file(&file);
            let url = format!("http://{}/{chapter}.html?theme={theme}", server.addr);
            let profile = TempDir::new("profile");
            let status = Command::new(&chromium)
                .args(chromium_flags(&profile.path))
                .arg(format!("--screenshot={}", file.display()))
                .arg("--window-size=1280,2400")
                .arg(&url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("running chromium");
            assert!(status.success(), "chromium --screenshot failed for {url}");
            let png = std::fs::read(&file).unwrap_or_default();
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 10_000,
                "{} is not a screenshot",
                file.display()
            );
            println!("screenshot: {}", file.display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chromium
// ---------------------------------------------------------------------------------------------

/// Debian calls it `chromium`; other systems `chromium-browser` or `google-chrome`.
fn chromium_or_skip(test: &str) -> Option<String> {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if found {
            return Some(candidate.to_string());
        }
    }
    let why = "Chromium is not installed (apt-get install chromium)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why} (in CI, with CI=true, this fails)");
    None
}

/// Headless, without a sandbox (CI runs as root, where Chromium's sandbox refuses to start),
/// and without anything that would reach the network.
fn chromium_flags(profile: &Path) -> Vec<String> {
    [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|flag| flag.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// A Chromium that is killed, with every process it started, when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium started its own process group (see `process_group(0)`): end all of it.
        // SAFETY: kill(2) on the process group of a child we started.
        unsafe {
            libc::kill(-(self.0.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// What the check page found, page by page.
struct Report {
    /// page -> problems
    pages: BTreeMap<String, Vec<String>>,
    counts: BTreeMap<String, usize>,
    /// Files the pages asked for that do not exist.
    missing: Vec<String>,
}

impl Report {
    fn problems(&self, page: &str) -> Vec<String> {
        let mut problems = self
            .pages
            .get(page)
            .cloned()
            .unwrap_or_else(|| vec!["the check page did not report on this page".to_string()]);
        for missing in &self.missing {
            if missing.starts_with(&format!("{page}: ")) {
                problems.push(missing.clone());
            }
        }
        problems
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (page, problems) in &self.pages {
            for problem in problems {
                failures.push(format!("{page}: {problem}"));
            }
        }
        failures.extend(self.missing.iter().cloned());
        failures
    }

    fn count(&self, what: &str) -> usize {
        self.counts.get(what).copied().unwrap_or(0)
    }
}

/// Opens `pages` (paths under `root`) in one Chromium, through the check page, and returns what
/// it reported.
fn check_pages(chromium: &str, root: &Path, pages: &[String]) -> Report {
    let server = BookServer::start(root, pages.to_vec());
    let profile = TempDir::new("profile");
    let child = Command::new(chromium)
        .args(chromium_flags(&profile.path))
        .arg("--window-size=1280,1024")
        .arg(format!("http://{}/__workbook_check__.html", server.addr))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting chromium");
    let _browser = Browser(child);
    let body = server.reports.recv_timeout(REPORT_TIMEOUT).unwrap_or_else(|_| {
        panic!(
            "Chromium did not report within {REPORT_TIMEOUT:?}; requests it made:\n{}",
            server.log.lock().unwrap().join("\n")
        )
    });
    let report: serde_json::Value = serde_json::from_str(&body).expect("the report is JSON");
    let mut pages_report = BTreeMap::new();
    for (page, result) in report["pages"].as_object().expect("pages") {
        let problems = result["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|problem| problem.as_str().unwrap_or("?").to_string())
            .collect();
        pages_report.insert(page.clone(), problems);
    }
    let counts = ["images", "objects", "svgs"]
        .iter()
        .map(|what| {
            (
                what.to_string(),
                report["counts"][what].as_u64().unwrap_or(0) as usize,
            )
        })
        .collect();
    let missing = server.missing.lock().unwrap().clone();
    Report {
        pages: pages_report,
        counts,
        missing,
    }
}

/// Every `.html` file under `root`, as a path relative to it with `/` between folders.
fn html_pages(root: &Path) -> Vec<String> {
    let mut pages = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "html") {
                let relative = path.strip_prefix(root).unwrap();
                pages.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    pages.sort();
    pages
}

// ---------------------------------------------------------------------------------------------
// The script Chromium runs
// ---------------------------------------------------------------------------------------------

/// Put at the top of every page served: collects script errors and failed loads (an `error`
/// event on `window` in the capture phase sees both), and sets the theme from `?theme=`.
const PAGE_PROBE: &str = r#"<script>
window.__workbookErrors = [];
addEventListener('error', function (event) {
  var target = event.target;
  if (target && target !== window && target.nodeType === 1) {
    window.__workbookErrors.push('failed to load <' + target.nodeName.toLowerCase() + '> ' +
      (target.currentSrc || target.src || target.href || target.data || ''));
  } else {
    window.__workbookErrors.push('script error: ' + event.message + ' (' + event.filename + ':' + event.lineno + ')');
  }
}, true);
addEventListener('unhandledrejection', function (event) {
  window.__workbookErrors.push('unhandled promise rejection: ' + event.reason);
});
(function () {
  var theme = new URLSearchParams(location.search).get('theme');
  if (theme) { try { localStorage.setItem('mdbook-theme', theme); } catch (e) {} }
})();
</script>"#;

/// The check page: every page in an iframe; once all have loaded (the page's `load` event waits
/// for its iframes, and theirs for their images), each is examined and the result is posted to
/// `/__workbook_report__`.
const CHECK_SCRIPT: &str = r#"
function loadsAlone(src) {
  // An image that is not complete yet (a lazy one, say) is loaded once more on its own.
  return new Promise(function (resolve) {
    var image = new Image();
    var timer = setTimeout(function () { resolve(false); }, 10000);
    image.onload = function () { clearTimeout(timer); resolve(image.naturalWidth > 0 && image.naturalHeight > 0); };
    image.onerror = function () { clearTimeout(timer); resolve(false); };
    image.src = src;
  });
}
async function examine(frame, counts) {
  var problems = [];
  var win = frame.contentWindow, doc = frame.contentDocument;
  if (!doc || !win) { return ['the page could not be opened']; }
  (win.__workbookErrors || ['the error probe did not run']).forEach(function (e) { problems.push(e); });
  var images = Array.from(doc.querySelectorAll('img'));
  for (var image of images) {
    counts.images++;
    var src = image.getAttribute('src');
    var fine = image.complete && image.naturalWidth > 0 && image.naturalHeight > 0;
    if (!fine && !image.complete) { fine = await loadsAlone(image.currentSrc || image.src); }
    if (!fine) { problems.push('image does not render (missing, broken or empty): ' + src); }
    else if (!image.getAttribute('alt')) { problems.push('image without alt text: ' + src); }
  }
  for (var object of Array.from(doc.querySelectorAll('object'))) {
    counts.objects++;
    var data = object.getAttribute('data');
    var inner = null;
    try { inner = object.contentDocument; } catch (e) {}
    var root = inner && inner.documentElement;
    var box = object.getBoundingClientRect();
    if (!root || root.nodeName.toLowerCase() !== 'svg') { problems.push('object does not hold an SVG (missing or broken): ' + data); }
    else if (box.width <= 0 || box.height <= 0) { problems.push('object has no size: ' + data); }
  }
  // Inline SVG in the chapter text (the icons of mdBook's menu bar are not diagrams).
  for (var svg of Array.from(doc.querySelectorAll('main svg'))) {
    if (svg.closest('.fa-svg') || svg.parentElement.closest('main svg')) { continue; }
    counts.svgs++;
    var rect = svg.getBoundingClientRect();
    if (rect.width <= 0 || rect.height <= 0) { problems.push('inline SVG has no size: ' + (svg.getAttribute('aria-label') || svg.id || 'unnamed')); }
  }
  return problems;
}
addEventListener('load', async function () {
  var report = { pages: {}, counts: { images: 0, objects: 0, svgs: 0 } };
  for (var frame of Array.from(document.querySelectorAll('iframe'))) {
    var page = frame.getAttribute('data-page');
    try { report.pages[page] = { problems: await examine(frame, report.counts) }; }
    catch (e) { report.pages[page] = { problems: ['the check failed: ' + e] }; }
  }
  await fetch('/__workbook_report__', { method: 'POST', body: JSON.stringify(report) });
  document.title = 'reported';
});
"#;

fn check_page(pages: &[String]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>check</title></head><body>\n",
    );
    for page in pages {
        html.push_str(&format!(
            "<iframe data-page=\"{page}\" src=\"/{page}\" width=\"1200\" height=\"900\"></iframe>\n"
        ));
    }
    html.push_str("<script>");
    html.push_str(CHECK_SCRIPT);
    html.push_str("</script></body></html>\n");
    html
}

fn page(body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>t</title></head><body>{body}</body></html>\n"
    )
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP server for the built book
// ---------------------------------------------------------------------------------------------

/// Serves the files under a folder on 127.0.0.1 (a port chosen by the kernel), with the error
/// probe added to every HTML page, the check page at `/__workbook_check__.html`, and the report
/// received at `/__workbook_report__`. Runs until the test ends.
struct BookServer {
    addr: SocketAddr,
    reports: Receiver<String>,
    /// `page: missing file` for every request the server could not answer from the folder.
    missing: Arc<Mutex<Vec<String>>>,
    /// Every request, for a report when Chromium never answers.
    log: Arc<Mutex<Vec<String>>>,
}

struct Shared {
    root: PathBuf,
    check_page: String,
    reports: Sender<String>,
    missing: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl BookServer {
    fn start(root: &Path, pages: Vec<String>) -> BookServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, reports) = mpsc::channel();
        let missing = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            check_page: check_page(&pages),
            reports: sender,
            missing: Arc::clone(&missing),
            log: Arc::clone(&log),
        });
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                // One thread per connection: the browser opens several at once.
                thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        BookServer {
            addr,
            reports,
            missing,
            log,
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    // Keep-alive: answer requests on this connection until the browser closes it.
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mut content_length = 0;
        let mut referer = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                content_length = value.trim().parse().unwrap_or(0);
            }
            if let Some((_, value)) = header.split_once(':').filter(|_| lower.starts_with("referer:")) {
                referer = value.trim().to_string();
            }
        }
        shared.log.lock().unwrap().push(format!("{method} {target}"));
        let path = target.split(['?', '#']).next().unwrap_or("/");
        if method == "POST" && path == "/__workbook_report__" {
            if content_length > MAX_BODY {
                return respond(&mut writer, 413, "text/plain", b"too large");
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body)?;
            let _ = shared.reports.send(String::from_utf8_lossy(&body).into_owned());
            respond(&mut writer, 204, "text/plain", b"")?;
            continue;
        }
        if path == "/__workbook_check__.html" {
            respond(
                &mut writer,
                200,
                "text/html; charset=utf-8",
                shared.check_page.as_bytes(),
            )?;
            continue;
        }
        let relative = percent_decode(path.trim_start_matches('/'));
        let relative = if relative.is_empty() || relative.ends_with('/') {
            format!("{relative}index.html")
        } else {
            relative
        };
        let file = shared.root.join(&relative);
        let inside = !relative.split('/').any(|part| part == "..");
        match std::fs::read(&file) {
            Ok(bytes) if inside => {
                let kind = content_type(&relative);
                if kind.starts_with("text/html") {
                    let text = String::from_utf8_lossy(&bytes);
                    respond(&mut writer, 200, kind, with_probe(&text).as_bytes())?;
                } else {
                    respond(&mut writer, 200, kind, &bytes)?;
                }
            }
            _ => {
                // Chromium asks for /favicon.ico by itself; the book names its own icons.
                if relative != "favicon.ico" {
                    let page = referer
                        .split_once("://")
                        .and_then(|(_, rest)| rest.split_once('/'))
                        .map_or(String::new(), |(_, page)| {
                            page.split(['?', '#']).next().unwrap_or("").to_string()
                        });
                    shared
                        .missing
                        .lock()
                        .unwrap()
                        .push(format!("{page}: missing file {relative}"));
                }
                respond(&mut writer, 404, "text/plain", b"not found")?;
            }
        }
    }
}

fn with_probe(html: &str) -> String {
    match html.find("<head>") {
        Some(at) => {
            let at = at + "<head>".len();
            format!("{}{PAGE_PROBE}{}", &html[..at], &html[at..])
        }
        None => format!("{PAGE_PROBE}{html}"),
    }
}

fn respond(writer: &mut TcpStream, status: u16, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        _ => "Error",
    };
    write!(
        writer,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n\r\n",
        body.len()
    )?;
    writer.write_all(body)?;
    writer.flush()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `%20` and friends in a URL path, back to bytes.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A folder in the temporary directory, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "workbook-browser-{what}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos())
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
