//! A very small SVG writer: just what the diagrams and plots need, so that every figure in the
//! book shares one look and renders anywhere (a browser, an image viewer, a printout), with no
//! script and no web font.
//!
//! The figures are drawn in black on a transparent background, with a few colours for what must
//! stand out (a connection opening, an end of stream, a reset). The book shows them with
//! `<img class="diagram">`, and `book/diagrams.css` inverts them in its dark themes
//! (`filter: invert(1) hue-rotate(180deg)`: black becomes white, a colour keeps its hue).

use std::fmt::Write as _;

/// Monospace text: every label of bytes lines up, and its width is known without a font.
pub const FONT: &str = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
/// The font size of labels, in pixels.
pub const FONT_SIZE: f64 = 12.0;
/// The width of one character at [`FONT_SIZE`] (monospace fonts are about 0.6 em wide).
pub const CHAR_WIDTH: f64 = 7.3;

/// The ink of everything that is not a colour below.
pub const INK: &str = "#000000";
/// Secondary ink: lifelines, grid lines, notes.
pub const MUTED: &str = "#555555";
/// A connection opening (connect, SYN).
pub const BLUE: &str = "#1f5fbf";
/// An end of stream (FIN, close, shutdown).
pub const AMBER: &str = "#a15c00";
/// A reset (RST) or a refusal.
pub const RED: &str = "#c62828";
/// A fourth series colour for plots.
pub const GREEN: &str = "#2e7d32";

/// The width of `text` drawn at [`FONT_SIZE`], in pixels.
pub fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_WIDTH
}

/// `text` with the five XML special characters escaped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// How text is anchored at its x coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn name(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// An SVG document being written. Coordinates are rounded to one decimal, so that the output is
/// the same on every machine and a diff of a regenerated figure shows only real changes.
pub struct Svg {
    width: f64,
    height: f64,
    title: String,
    body: String,
    markers: Vec<&'static str>,
}

/// A number as written into the file.
fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

impl Svg {
    /// A figure of `width` × `height` pixels; `title` is what it shows, in one sentence (it
    /// becomes the `<title>` and the `aria-label`).
    pub fn new(width: f64, height: f64, title: &str) -> Svg {
        Svg {
            width,
            height,
            title: title.to_string(),
            body: String::new(),
            markers: Vec::new(),
        }
    }

    /// A straight line. `dash` is an SVG dash array (`"4 3"`) or empty.
    #[allow(clippy::too_many_arguments)]
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str, width: f64, dash: &str) {
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"{}\"{dash}/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2),
            num(width)
        );
    }

    /// A line from (x1, y1) to (x2, y2) with an arrowhead at (x2, y2), filled or open, in any
    /// direction.
    #[allow(clippy::too_many_arguments)]
    pub fn arrow(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str, dash: &str, open_head: bool) {
        let length = ((x2 - x1).powi(2) + (y2 - y1).powi(2))
            .sqrt()
            .max(f64::MIN_POSITIVE);
        // A unit vector along the arrow, and one across it.
        let (ux, uy) = ((x2 - x1) / length, (y2 - y1) / length);
        let (px, py) = (-uy, ux);
        let (bx, by) = (x2 - ux * 9.0, y2 - uy * 9.0);
        let (shaft_x, shaft_y) = if open_head { (x2, y2) } else { (bx, by) };
        self.line(x1, y1, shaft_x, shaft_y, colour, 1.4, dash);
        let points = format!(
            "{},{} {},{} {},{}",
            num(bx + px * 4.5),
            num(by + py * 4.5),
            num(x2),
            num(y2),
            num(bx - px * 4.5),
            num(by - py * 4.5)
        );
        if open_head {
            let _ = writeln!(
                self.body,
                "<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.4\"/>"
            );
        } else {
            let _ = writeln!(self.body, "<polygon points=\"{points}\" fill=\"{colour}\"/>");
        }
    }

    /// A rectangle; `fill` may be `"none"`.
    #[allow(clippy::too_many_arguments)]
    pub fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, stroke: &str, fill: &str, dash: &str) {
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.2\"{dash}/>",
            num(x),
            num(y),
            num(width),
            num(height)
        );
    }

    /// A filled rectangle with no outline (bars, shaded areas); `opacity` from 0 to 1.
    pub fn fill_rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str, opacity: f64) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" fill-opacity=\"{}\"/>",
            num(x),
            num(y),
            num(width),
            num(height),
            num(opacity)
        );
    }

    /// A circle (plot points, state markers).
    pub fn circle(&mut self, x: f64, y: f64, radius: f64, stroke: &str, fill: &str) {
        let _ = writeln!(
            self.body,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.4\"/>",
            num(x),
            num(y),
            num(radius)
        );
    }

    /// A polyline through `points` (plot series, curved state transitions).
    pub fn polyline(&mut self, points: &[(f64, f64)], colour: &str, width: f64, dash: &str) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
            .collect();
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            self.body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{}\"{dash}/>",
            points.join(" "),
            num(width)
        );
    }

    /// A red ✕ centred at (x, y): where a reset arrives.
    pub fn cross(&mut self, x: f64, y: f64, colour: &str) {
        self.line(x - 5.0, y - 5.0, x + 5.0, y + 5.0, colour, 2.0, "");
        self.line(x - 5.0, y + 5.0, x + 5.0, y - 5.0, colour, 2.0, "");
    }

    /// One line of text at [`FONT_SIZE`] (or `size`), baseline at `y`.
    #[allow(clippy::too_many_arguments)]
    pub fn text_sized(
        &mut self,
        x: f64,
        y: f64,
        text: &str,
        anchor: Anchor,
        colour: &str,
        size: f64,
        bold: bool,
    ) {
        let weight = if bold { " font-weight=\"bold\"" } else { "" };
        let size = if size == FONT_SIZE {
            String::new()
        } else {
            format!(" font-size=\"{}\"", num(size))
        };
        let anchor = if anchor == Anchor::Start {
            String::new()
        } else {
            format!(" text-anchor=\"{}\"", anchor.name())
        };
        let _ = writeln!(
            self.body,
            "<text x=\"{}\" y=\"{}\"{anchor}{size}{weight} fill=\"{colour}\">{}</text>",
            num(x),
            num(y),
            xml_escape(text)
        );
    }

    /// One line of text at [`FONT_SIZE`], baseline at `y`.
    pub fn text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, colour: &str) {
        self.text_sized(x, y, text, anchor, colour, FONT_SIZE, false);
    }

    /// Marks that the figure uses a named feature, for tests (`"reset"`, `"datagram"`, ...).
    pub fn mark(&mut self, name: &'static str) {
        if !self.markers.contains(&name) {
            self.markers.push(name);
        }
    }

    /// Appends what `other` drew (its size and title are ignored).
    pub fn absorb(&mut self, other: Svg) {
        self.body.push_str(&other.body);
        for marker in other.markers {
            self.mark(marker);
        }
    }

    /// The finished document. It has no blank line and ends with a newline.
    pub fn finish(self) -> String {
        let title = xml_escape(&self.title);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{title}\" font-family=\"{font}\" font-size=\"{size}\">",
            w = num(self.width),
            h = num(self.height),
            font = xml_escape(FONT),
            size = num(FONT_SIZE),
        );
        let _ = writeln!(out, "<title>{title}</title>");
        if !self.markers.is_empty() {
            let _ = writeln!(out, "<desc>shows: {}</desc>", self.markers.join(", "));
        }
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_numbers_are_stable() {
        let mut svg = Svg::new(100.0, 50.25, "a <b> & \"c\"");
        svg.text(1.04, 2.0, "x < y", Anchor::Start, INK);
        let out = svg.finish();
        assert!(
            out.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"),
            "{out}"
        );
        assert!(out.contains("height=\"50.3\""), "{out}");
        assert!(
            out.contains("<text x=\"1\" y=\"2\" fill=\"#000000\">x &lt; y</text>"),
            "{out}"
        );
        assert!(
            !out.contains("\n\n"),
            "a blank line would end an HTML block in Markdown"
        );
    }
}
