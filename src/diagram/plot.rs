//! Plots of the benchmark's recorded results (`benches/results/*.json`, format in that folder's
//! README): commands per second and p99 latency against pipeline depth for each server, and,
//! when a recording has runs with idle connections, against the number of idle connections.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::svg::{self, Anchor, Svg};

/// One run of a recording, the fields a plot needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub server: String,
    pub protocol: String,
    pub depth: u64,
    pub connections: u64,
    pub idle_connections: u64,
    pub ops_per_s: f64,
    pub p99_us: Option<f64>,
}

/// A recording: where it came from and its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The file, relative to the repository (`benches/results/kv_bench-2026-12-02.json`).
    pub file: String,
    pub date: String,
    pub runs: Vec<Run>,
}

/// Reads one results file. Unknown fields are ignored, as the format asks.
pub fn parse(file: &str, text: &str) -> Result<Recording, String> {
    let json: Value = serde_json::from_str(text).map_err(|err| format!("{file}: {err}"))?;
    if json["schema"] != "socket-workbook/bench-results" || json["version"] != 1 {
        return Err(format!(
            "{file}: not a socket-workbook/bench-results version 1 file"
        ));
    }
    let runs = json["runs"]
        .as_array()
        .ok_or_else(|| format!("{file}: no runs"))?
        .iter()
        .map(|run| -> Result<Run, String> {
            let text = |key: &str| {
                run[key]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{file}: a run without {key}"))
            };
            let int = |key: &str| {
                run[key]
                    .as_u64()
                    .ok_or_else(|| format!("{file}: a run without {key}"))
            };
            Ok(Run {
                server: text("server")?,
                protocol: text("protocol")?,
                depth: int("depth")?,
                connections: int("connections")?,
                idle_connections: run["idle_connections"].as_u64().unwrap_or(0),
                ops_per_s: run["ops_per_s"]
                    .as_f64()
                    .ok_or_else(|| format!("{file}: a run without ops_per_s"))?,
                p99_us: run["p99_us"].as_f64(),
            })
        })
        .collect::<Result<Vec<Run>, String>>()?;
    Ok(Recording {
        file: file.to_string(),
        date: json["date"].as_str().unwrap_or("").chars().take(10).collect(),
        runs,
    })
}

/// Every recording in `dir` (`kv_bench-*.json`), oldest first (by name, which starts with the date).
pub fn recordings(root: &Path, dir: &str) -> Result<Vec<Recording>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .map_err(|err| format!("{dir}: {err}"))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
            name.starts_with("kv_bench") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
            parse(&format!("{dir}/{name}"), &text)
        })
        .collect()
}

/// How a server and protocol are named and drawn.
fn series_style(server: &str, protocol: &str) -> (String, &'static str, &'static str) {
    match (server, protocol) {
        ("07_kv_server_threads", _) => ("lesson 07 (threads)".into(), svg::BLUE, ""),
        ("08_kv_server_events", _) => ("lesson 08 (event loop)".into(), svg::GREEN, ""),
        ("12_kv_server_epoll", _) => ("lesson 12 (epoll)".into(), svg::RED, ""),
        ("13_resp_server", _) => ("lesson 13 (RESP)".into(), svg::AMBER, ""),
        ("redis-server", "resp") => ("Redis, RESP".into(), svg::INK, ""),
        ("redis-server", "inline") => ("Redis, inline".into(), svg::MUTED, "6 4"),
        (server, protocol) => (format!("{server} ({protocol})"), svg::AMBER, "2 3"),
    }
}

struct Series {
    name: String,
    colour: &'static str,
    dash: &'static str,
    points: Vec<(u64, f64)>,
}

/// A round step for about `parts` ticks up to `max`.
fn tick_step(max: f64, parts: f64) -> f64 {
    let raw = (max / parts).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 2.5 {
        2.5
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn format_value(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.1}M", value / 1_000_000.0)
    } else if value >= 1000.0 {
        format!("{}k", (value / 1000.0).round())
    } else if value >= 10.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Draws one panel: `xs` are the categories along the x axis (evenly spaced), each series a line.
#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut Svg,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    heading: &str,
    x_label: &str,
    xs: &[u64],
    series: &[Series],
) {
    let max = series
        .iter()
        .flat_map(|series| series.points.iter().map(|(_, y)| *y))
        .fold(0.0_f64, f64::max);
    let step = tick_step(max * 1.1, 4.0);
    let top_value = (max * 1.1 / step).ceil() * step;
    let plot_left = left + 52.0;
    let plot_width = width - 60.0;
    let plot_top = top + 26.0;
    let plot_height = height - 66.0;
    let y_of = |value: f64| plot_top + plot_height - value / top_value * plot_height;
    let x_of = |x: u64| {
        let index = xs.iter().position(|known| *known == x).unwrap_or(0) as f64;
        let slots = xs.len().max(1) as f64;
        plot_left + plot_width * (index + 0.5) / slots
    };
    out.text_sized(
        left + width / 2.0,
        top + 12.0,
        heading,
        Anchor::Middle,
        svg::INK,
        svg::FONT_SIZE,
        true,
    );
    let mut tick = 0.0;
    while tick <= top_value + step / 2.0 {
        let y = y_of(tick);
        out.line(plot_left, y, plot_left + plot_width, y, svg::MUTED, 0.5, "2 3");
        out.text(
            plot_left - 6.0,
            y + 4.0,
            &format_value(tick),
            Anchor::End,
            svg::MUTED,
        );
        tick += step;
    }
    out.line(
        plot_left,
        plot_top,
        plot_left,
        plot_top + plot_height,
        svg::INK,
        1.0,
        "",
    );
    out.line(
        plot_left,
        plot_top + plot_height,
        plot_left + plot_width,
        plot_top + plot_height,
        svg::INK,
        1.0,
        "",
    );
    for x in xs {
        out.text(
            x_of(*x),
            plot_top + plot_height + 16.0,
            &x.to_string(),
            Anchor::Middle,
            svg::INK,
        );
    }
    out.text(
        plot_left + plot_width / 2.0,
        plot_top + plot_height + 34.0,
        x_label,
        Anchor::Middle,
        svg::INK,
    );
    // Labels beside the points, pushed apart where points crowd at one x.
    let mut labels: Vec<(u64, f64, String, &'static str)> = Vec::new();
    for series in series {
        let points: Vec<(f64, f64)> = series.points.iter().map(|(x, y)| (x_of(*x), y_of(*y))).collect();
        out.polyline(&points, series.colour, 2.0, series.dash);
        for ((x, value), (px, py)) in series.points.iter().zip(&points) {
            out.circle(*px, *py, 3.5, series.colour, series.colour);
            labels.push((*x, *py + 4.0, format_value(*value), series.colour));
        }
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for i in 1..labels.len() {
        if labels[i].0 == labels[i - 1].0 && labels[i].1 < labels[i - 1].1 + 11.0 {
            labels[i].1 = labels[i - 1].1 + 11.0;
        }
    }
    // A stack pushed below the x axis moves up as a whole.
    let bottom = plot_top + plot_height - 2.0;
    for x in xs {
        let lowest = labels
            .iter()
            .filter(|label| label.0 == *x)
            .map(|label| label.1)
            .fold(f64::MIN, f64::max);
        if lowest > bottom {
            for label in labels.iter_mut().filter(|label| label.0 == *x) {
                label.1 -= lowest - bottom;
            }
        }
    }
    // Left of the first column's points (the lines leave them to the right), right of the others.
    for (x, y, text, colour) in labels {
        if xs.first() == Some(&x) {
            out.text_sized(x_of(x) - 8.0, y, &text, Anchor::End, colour, 10.0, false);
        } else {
            out.text_sized(x_of(x) + 8.0, y, &text, Anchor::Start, colour, 10.0, false);
        }
    }
}

/// Where each legend entry goes: (x, row), wrapping to a new row before `width` is passed.
fn legend_layout(left: f64, width: f64, series: &[Series]) -> Vec<(f64, usize)> {
    let mut places = Vec::new();
    let (mut x, mut row) = (left, 0);
    for series in series {
        let entry = 32.0 + svg::text_width(&series.name) + 24.0;
        if x > left && x + entry > width {
            x = left;
            row += 1;
        }
        places.push((x, row));
        x += entry;
    }
    places
}

/// The legend's rows, the first at `y`, 20 apart.
fn legend(out: &mut Svg, places: &[(f64, usize)], y: f64, series: &[Series]) {
    for (series, &(x, row)) in series.iter().zip(places) {
        let y = y + row as f64 * 20.0;
        out.line(x, y - 4.0, x + 26.0, y - 4.0, series.colour, 2.0, series.dash);
        out.circle(x + 13.0, y - 4.0, 3.5, series.colour, series.colour);
        out.text(x + 32.0, y, &series.name, Anchor::Start, series.colour);
    }
}

/// The values `x_of` takes over `runs`, sorted, each once.
fn distinct(runs: &[&Run], x_of: fn(&Run) -> u64) -> Vec<u64> {
    let mut xs: Vec<u64> = runs.iter().map(|run| x_of(run)).collect();
    xs.sort();
    xs.dedup();
    xs
}

/// One server's commands per second and p99 latency (ms) against `x_of`, in the same style.
fn series_pair(
    mine: &[&&Run],
    x_of: fn(&Run) -> u64,
    name: String,
    colour: &'static str,
    dash: &'static str,
) -> (Series, Series) {
    let mut ops: Vec<(u64, f64)> = mine.iter().map(|run| (x_of(run), run.ops_per_s)).collect();
    ops.sort_by_key(|point| point.0);
    let mut p99: Vec<(u64, f64)> = mine
        .iter()
        .filter_map(|run| run.p99_us.map(|us| (x_of(run), us / 1000.0)))
        .collect();
    p99.sort_by_key(|point| point.0);
    let throughput = Series {
        name: name.clone(),
        colour,
        dash,
        points: ops,
    };
    let latency = Series {
        name,
        colour,
        dash,
        points: p99,
    };
    (throughput, latency)
}

/// The (server, protocol) pairs in the order they first ran.
fn servers(runs: &[&Run]) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for run in runs {
        let key = (run.server.clone(), run.protocol.clone());
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen
}

fn two_panels(
    title: &str,
    subtitle: &str,
    x_label: &str,
    xs: &[u64],
    throughput: Vec<Series>,
    latency: Vec<Series>,
) -> String {
    let width = 800.0;
    let panel_height = 290.0;
    let places = legend_layout(20.0, width - 20.0, &throughput);
    let legend_rows = places.last().map_or(1, |&(_, row)| row + 1);
    let height = 40.0 + panel_height + 20.0 + 20.0 * legend_rows as f64;
    let mut out = Svg::new(width, height, title);
    out.text(width / 2.0, 20.0, subtitle, Anchor::Middle, svg::MUTED);
    panel(
        &mut out,
        8.0,
        34.0,
        width / 2.0 - 12.0,
        panel_height,
        "commands per second",
        x_label,
        xs,
        &throughput,
    );
    panel(
        &mut out,
        width / 2.0 + 4.0,
        34.0,
        width / 2.0 - 12.0,
        panel_height,
        "p99 latency of a batch (ms)",
        x_label,
        xs,
        &latency,
    );
    legend(&mut out, &places, 40.0 + panel_height + 26.0, &throughput);
    out.mark("plot");
    out.finish()
}

/// Commands per second and p99 latency against pipeline depth, from the newest recording with
/// at least two depths and no idle connections. `None` when there is no such recording.
pub fn by_depth(recordings: &[Recording], title: &str) -> Option<String> {
    let recording = recordings.iter().rev().find(|recording| {
        let mut depths: Vec<u64> = recording
            .runs
            .iter()
            .filter(|run| run.idle_connections == 0)
            .map(|run| run.depth)
            .collect();
        depths.sort();
        depths.dedup();
        depths.len() >= 2
    })?;
    let runs: Vec<&Run> = recording
        .runs
        .iter()
        .filter(|run| run.idle_connections == 0)
        .collect();
    let xs = distinct(&runs, |run| run.depth);
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for (server, protocol) in servers(&runs) {
        let (name, colour, dash) = series_style(&server, &protocol);
        let mine: Vec<&&Run> = runs
            .iter()
            .filter(|run| run.server == server && run.protocol == protocol)
            .collect();
        let (ops, p99) = series_pair(&mine, |run| run.depth, name, colour, dash);
        throughput.push(ops);
        latency.push(p99);
    }
    let connections = runs.first().map_or(0, |run| run.connections);
    let subtitle = format!(
        "{}, {} connections: one run (another run can differ by a third)",
        recording.file.rsplit('/').next().unwrap_or(&recording.file),
        connections
    );
    Some(two_panels(
        title,
        &subtitle,
        "pipeline depth (commands per batch)",
        &xs,
        throughput,
        latency,
    ))
}

/// Commands per second and p99 latency against the number of idle connections, one line per
/// server and depth, from the newest recording that has runs with idle connections. `None`
/// while no recording has them.
pub fn by_idle_connections(recordings: &[Recording], title: &str) -> Option<String> {
    let recording = recordings
        .iter()
        .rev()
        .find(|recording| recording.runs.iter().any(|run| run.idle_connections > 0))?;
    let runs: Vec<&Run> = recording.runs.iter().collect();
    let xs = distinct(&runs, |run| run.idle_connections);
    let depths = distinct(&runs, |run| run.depth);
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for (server, protocol) in servers(&runs) {
        for (i, depth) in depths.iter().enumerate() {
            let mine: Vec<&&Run> = runs
                .iter()
                .filter(|run| run.server == server && run.protocol == protocol && run.depth == *depth)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let (name, colour, dash) = series_style(&server, &protocol);
            let name = if depths.len() > 1 {
                format!("{name}, depth {depth}")
            } else {
                name
            };
            // A second depth of the same server: the same colour, dotted.
            let dash = if i > 0 { "2 3" } else { dash };
            let (ops, p99) = series_pair(&mine, |run| run.idle_connections, name, colour, dash);
            throughput.push(ops);
            latency.push(p99);
        }
    }
    let connections = runs.first().map_or(0, |run| run.connections);
    let subtitle = format!(
        "{}, {} busy connections beside the idle ones",
        recording.file.rsplit('/').next().unwrap_or(&recording.file),
        connections
    );
    Some(two_panels(
        title,
        &subtitle,
        "idle connections",
        &xs,
        throughput,
        latency,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(server: &str, protocol: &str, depth: u64, idle: u64, ops: f64) -> String {
        format!(
            r#"{{"server": "{server}", "protocol": "{protocol}", "client": "kv_bench", "depth": {depth},
               "connections": 50, "idle_connections": {idle}, "ops_per_s": {ops}, "p99_us": 1500.0,
               "new_field": true}}"#
        )
    }

    fn file(runs: &[String]) -> String {
        format!(
            r#"{{"schema": "socket-workbook/bench-results", "version": 1, "date": "2026-12-02T00:32:06+00:00", "runs": [{}]}}"#,
            runs.join(",")
        )
    }

    #[test]
    fn depth_plot_has_a_line_per_server_and_changes_with_the_figures() {
        let text = file(&[
            run("08_kv_server_events", "text", 1, 0, 67969.0),
            run("08_kv_server_events", "text", 16, 0, 706556.0),
            run("redis-server", "resp", 1, 0, 72519.0),
            run("redis-server", "resp", 16, 0, 446218.0),
        ]);
        let recording = parse("r.json", &text).unwrap();
        let plot = by_depth(std::slice::from_ref(&recording), "depth").unwrap();
        assert!(
            plot.contains("lesson 08 (event loop)") && plot.contains("Redis, RESP"),
            "{plot}"
        );
        assert!(plot.contains(">707k<"), "{plot}");
        assert!(
            by_idle_connections(&[recording], "idle").is_none(),
            "no idle runs, no plot"
        );
        let changed = parse("r.json", &text.replace("706556", "606556")).unwrap();
        assert_ne!(by_depth(&[changed], "depth").unwrap(), plot);
    }

    #[test]
    fn idle_plot_appears_when_a_recording_has_idle_connections() {
        let text = file(&[
            run("08_kv_server_events", "text", 1, 0, 60000.0),
            run("08_kv_server_events", "text", 1, 1000, 50000.0),
            run("07_kv_server_threads", "text", 1, 0, 40000.0),
            run("07_kv_server_threads", "text", 1, 1000, 20000.0),
        ]);
        let recording = parse("r.json", &text).unwrap();
        let plot = by_idle_connections(&[recording], "idle").unwrap();
        assert!(
            plot.contains("idle connections") && plot.contains(">1000<"),
            "{plot}"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(800_000.0, 4.0), 200_000.0);
        assert_eq!(tick_step(2.7, 4.0), 1.0);
        assert_eq!(format_value(706556.0), "707k");
        assert_eq!(format_value(2.5), "2.5");
    }
}
