//! Hand-written SVG plots of a report: speedup per strategy and workload as
//! grouped bars, or, for a sweep, speedup against the swept value as lines.

use std::fmt::Write as _;

use crate::report::{Report, Summary};

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 64.0;
const COLORS: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The longest legend entry that fits beside the plot.
const LEGEND_CHARS: usize = 30;

/// `s`, cut to `max` characters with an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// A "nice" upper bound and tick step for values up to `max`.
fn axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

struct Frame {
    out: String,
    y_max: f64,
}

impl Frame {
    fn new(title: &str, y_label: &str, y_top: f64) -> Self {
        let (y_max, step) = axis(y_top);
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            esc(title)
        );
        let mut f = Frame { out, y_max };
        let mut v = 0.0;
        while v <= y_max + 1e-9 {
            let y = f.y(v);
            let _ = writeln!(
                f.out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0
            );
            v += step;
        }
        // The baseline's level.
        let y1 = f.y(1.0);
        let _ = writeln!(
            f.out,
            r##"<line x1="{LEFT}" y1="{y1:.1}" x2="{:.1}" y2="{y1:.1}" stroke="#333" stroke-dasharray="5,4"/>"##,
            WIDTH - RIGHT,
        );
        let _ = writeln!(
            f.out,
            r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM
        );
        let _ = writeln!(
            f.out,
            r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (TOP + HEIGHT - BOTTOM) / 2.0,
            esc(y_label)
        );
        f
    }

    fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - (v / self.y_max).clamp(0.0, 1.0) * (HEIGHT - BOTTOM - TOP)
    }

    fn legend(&mut self, entries: &[(String, &str)]) {
        // The baseline's dashed line first.
        let (x, y) = (WIDTH - RIGHT + 14.0, TOP + 8.0);
        let _ = writeln!(
            self.out,
            r##"<line x1="{x}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="5,4"/><text x="{:.1}" y="{y:.1}">baseline (1.0)</text>"##,
            y - 4.0,
            x + 12.0,
            y - 4.0,
            x + 16.0
        );
        for (i, (label, c)) in entries.iter().enumerate() {
            let y = TOP + 8.0 + 18.0 * (i + 1) as f64;
            let _ = writeln!(
                self.out,
                r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{c}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                y - 10.0,
                x + 16.0,
                y,
                esc(&shorten(label, LEGEND_CHARS))
            );
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

fn speedup(s: &Summary) -> f64 {
    s.speedup_median.unwrap_or(0.0)
}

/// Grouped bars: one group per workload, one bar per non-baseline strategy
/// (median paired speedup), a dashed line at the baseline's 1.0.
pub fn bars(report: &Report) -> String {
    let strategies: Vec<&str> = report
        .strategies
        .iter()
        .map(|c| c.label.as_str())
        .filter(|l| *l != report.baseline)
        .collect();
    let mut workloads: Vec<&str> = Vec::new();
    for s in &report.summaries {
        if !workloads.contains(&s.workload.as_str()) {
            workloads.push(&s.workload);
        }
    }
    let top = report.summaries.iter().map(speedup).fold(1.2f64, f64::max) * 1.1;
    let mut f = Frame::new(
        "augur bench: speedup over baseline",
        "speedup (median, paired)",
        top,
    );
    let plot_w = WIDTH - RIGHT - LEFT;
    let group_w = plot_w / workloads.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / strategies.len().max(1) as f64;
    for (wi, w) in workloads.iter().enumerate() {
        let x0 = LEFT + wi as f64 * group_w + group_w * 0.1;
        for (si, st) in strategies.iter().enumerate() {
            let Some(s) = report
                .summaries
                .iter()
                .find(|s| s.strategy == *st && s.workload == *w)
            else {
                continue;
            };
            let v = speedup(s);
            let (y, base) = (f.y(v), f.y(0.0));
            let x = x0 + si as f64 * bar_w;
            let _ = writeln!(
                f.out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {v:.2}×</title></rect>"#,
                (bar_w - 2.0).max(1.0),
                (base - y).max(0.0),
                color(si),
                esc(st),
                esc(w)
            );
            // Runs whose greedy output differs from the baseline's are marked.
            let flag = if s.mismatches.unwrap_or(0) > 0 {
                " ✗"
            } else {
                ""
            };
            if bar_w >= 22.0 {
                let _ = writeln!(
                    f.out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{v:.2}{flag}</text>"#,
                    x + bar_w / 2.0 - 1.0,
                    y - 3.0
                );
            }
        }
        let _ = writeln!(
            f.out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + (wi as f64 + 0.5) * group_w,
            HEIGHT - BOTTOM + 18.0,
            esc(w)
        );
    }
    let entries: Vec<(String, &str)> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| ((*s).to_string(), color(i)))
        .collect();
    f.legend(&entries);
    f.finish()
}

/// Lines: speedup against the swept value, one line per strategy group and
/// workload; strategies the sweep did not touch are left out.
pub fn sweep_lines(report: &Report, key: &str) -> String {
    let swept: Vec<&Summary> = report
        .summaries
        .iter()
        .filter(|s| s.sweep_value.is_some())
        .collect();
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for s in &swept {
        let name = format!("{} · {}", s.group, s.workload);
        let point = (s.sweep_value.unwrap_or(0.0), speedup(s));
        match lines.iter_mut().find(|(n, _)| *n == name) {
            Some((_, pts)) => pts.push(point),
            None => lines.push((name, vec![point])),
        }
    }
    for (_, pts) in &mut lines {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .collect();
    let x_min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let x_max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else if x_min.is_finite() {
        (x_min - 1.0, x_min + 1.0)
    } else {
        (0.0, 1.0)
    };
    let top = swept.iter().map(|s| speedup(s)).fold(1.2f64, f64::max) * 1.1;
    let mut f = Frame::new(
        &format!("augur bench: speedup against {key}"),
        "speedup (median, paired)",
        top,
    );
    let plot_w = WIDTH - RIGHT - LEFT;
    let px = |x: f64| LEFT + 20.0 + (x - x_min) / (x_max - x_min) * (plot_w - 40.0);
    let mut ticks: Vec<f64> = xs.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for t in &ticks {
        let _ = writeln!(
            f.out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t}</text>"#,
            px(*t),
            HEIGHT - BOTTOM + 18.0
        );
    }
    let _ = writeln!(
        f.out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - BOTTOM + 42.0,
        esc(key)
    );
    for (i, (name, pts)) in lines.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), f.y(*y)))
            .collect();
        let _ = writeln!(
            f.out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            color(i),
            path.join(" ")
        );
        for (x, y) in pts {
            let _ = writeln!(
                f.out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {key}={x} {y:.2}×</title></circle>"#,
                px(*x),
                f.y(*y),
                color(i),
                esc(name)
            );
        }
    }
    let entries: Vec<(String, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), color(i)))
        .collect();
    f.legend(&entries);
    f.finish()
}

/// The report's plot: sweep lines when the report has a sweep, bars otherwise.
pub fn svg(report: &Report) -> String {
    match &report.sweep {
        Some(key) => sweep_lines(report, key),
        None => bars(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(1.3), (1.5, 0.5));
        assert_eq!(axis(4.0), (4.0, 1.0));
        let (max, step) = axis(2.2);
        assert!(max >= 2.2 && step > 0.0);
        assert!(((max / step).round() - max / step).abs() < 1e-9);
        let (max, _) = axis(f64::NAN);
        assert!(max >= 1.0);
    }

    #[test]
    fn long_labels_are_shortened() {
        assert_eq!(shorten("short", 8), "short");
        assert_eq!(shorten("speculative:draft-max=4", 8), "specula…");
        assert_eq!(shorten("speculative:draft-max=4", 8).chars().count(), 8);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
