//! The QC page: `report.json` and `timeline.json` drawn as one self-contained HTML file
//! (inline SVG and CSS, no network, no fonts, a little optional script), in the order a
//! mixer asks: verdict, loudness over time (ITU-R BS.1770-4 / EBU R 128 momentary,
//! short-term, integrated, true peak), stereo image, where the objects go, speaker use,
//! translation per object, and where it all came from.
//!
//! The SVG is written here by hand rather than with a plotting crate (`plotters`' SVG
//! backend): the page needs only lines, rectangles, circles and text; every series path
//! must carry its numbers (`data-values`) and its axis mapping (`data-map`) so that tests
//! and the hover read-out can check what is drawn against the meter; and the output size
//! must be controlled point by point for two-hour sessions. A crate would add a
//! dependency, its own fonts and structure, and still need all of that on top.
//!
//! Colours: the Okabe & Ito (2008) colour-blind-safe palette for outputs and verdicts
//! (blue immersive, orange binaural, vermillion stereo); time along a path in a viridis
//! ramp (monotonic lightness, readable in greyscale). Nothing is told by colour alone:
//! outputs also differ by dash pattern, verdicts carry ✓/✗ and words, and levels are
//! printed beside the shapes. `@media print` keeps the colours and avoids page breaks
//! inside sections.

use crate::measure::timeline::{ObjectTimeline, OutputTimeline, Speaker, Timeline, polar_to_room};
use serde::Deserialize;
use std::fmt::Write;
use thiserror::Error;

/// File name of the page beside `report.json`.
pub const PAGE_FILE: &str = "report.html";

/// Errors of the QC page: a report or timeline that cannot be parsed.
#[derive(Debug, Error)]
pub enum PageError {
    #[error(
        "{origin}: not a halo report (line {line}, column {column}): {message}; expected the report.json that `halo render` writes"
    )]
    /// `report.json` is not a halo report.
    Report {
        /// Where the text came from (a path).
        origin: String,
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// What the JSON parser says.
        message: String,
    },
    #[error(
        "{origin}: not a halo timeline (line {line}, column {column}): {message}; expected the timeline.json that `halo render` writes beside report.json"
    )]
    /// `timeline.json` is not a halo timeline.
    Timeline {
        /// Where the text came from (a path).
        origin: String,
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// What the JSON parser says.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------
// What the page reads from report.json: only the fields it draws, every level optional
// (`-inf` is written as null), unknown fields ignored, so that the report can grow.

/// The parts of `report.json` the page draws.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportView {
    /// Path of the session file that was rendered.
    pub session: String,
    /// Sample rate, in Hz.
    pub sample_rate: u32,
    /// Length of the render, in frames.
    pub frames: u64,
    /// Length of the render, in seconds.
    pub duration_s: f64,
    /// Wall-clock time the render took, in seconds.
    pub render_s: f64,
    /// Audio seconds rendered per wall-clock second.
    pub realtime_factor: f64,
    /// Per-source meters.
    pub sources: Vec<SourceView>,
    /// Per-output meters.
    pub outputs: Vec<OutputView>,
    /// Translation report, when one was made.
    pub translation: Option<TranslationView>,
    /// Warnings of the render, one per line.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SourceView {
    pub name: String,
    pub file: String,
    pub sample_rate: u32,
    pub resampled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OutputView {
    pub kind: String,
    pub file: String,
    pub layout: String,
    pub channels: Vec<String>,
    pub format: String,
    pub peak_dbfs: Vec<Option<f64>>,
    pub warnings: Vec<String>,
    pub loudness: LoudnessView,
    pub target: Option<TargetReportView>,
    pub image: Option<ImageView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoudnessView {
    pub integrated_lufs: Option<f64>,
    pub range_lu: Option<f64>,
    pub true_peak_dbtp: Option<f64>,
    pub sample_peak_dbfs: Option<f64>,
    pub max_momentary_lufs: Option<f64>,
    pub max_short_term_lufs: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetView {
    pub name: String,
    pub integrated_lufs: Option<f64>,
    pub tolerance_lu: Option<f64>,
    pub max_integrated_lufs: Option<f64>,
    pub max_true_peak_dbtp: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetReportView {
    pub target: TargetView,
    pub pass: bool,
    pub misses: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageView {
    pub min_correlation: Option<f64>,
    pub share_negative: f64,
    pub mono_loss_db: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RangeView {
    pub start_s: f64,
    pub end_s: f64,
    pub worst_delta_db: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ObjectView {
    pub name: String,
    pub immersive_db: Option<f64>,
    pub stereo_delta_db: Option<f64>,
    pub binaural_delta_db: Option<f64>,
    pub stereo_ranges: Vec<RangeView>,
    pub binaural_ranges: Vec<RangeView>,
    pub mono_db: Option<f64>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BedView {
    pub name: String,
    pub immersive_db: Option<f64>,
    pub stereo_delta_db: Option<f64>,
    pub mono_db: Option<f64>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TranslationView {
    pub reference: String,
    pub threshold_db: f64,
    pub stereo_loudness_delta_lu: Option<f64>,
    pub binaural_loudness_delta_lu: Option<f64>,
    pub stereo_true_peak_dbtp: Option<f64>,
    pub stereo_over: bool,
    pub height_share: f64,
    pub rear_share: f64,
    pub height_in_stereo_db: Option<f64>,
    pub rear_in_stereo_db: Option<f64>,
    pub objects: Vec<ObjectView>,
    pub beds: Vec<BedView>,
    pub failures: Vec<String>,
}

/// Reads `report.json`'s text (`origin` names it in errors).
pub fn parse_report(text: &str, origin: &str) -> Result<ReportView, PageError> {
    serde_json::from_str(text).map_err(|e| PageError::Report {
        origin: origin.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Reads `timeline.json`'s text (`origin` names it in errors).
pub fn parse_timeline(text: &str, origin: &str) -> Result<Timeline, PageError> {
    serde_json::from_str(text).map_err(|e| PageError::Timeline {
        origin: origin.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

// ---------------------------------------------------------------------------------------
// Palette and small formatting helpers.

/// Okabe & Ito (2008).
pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const VERMILLION: &str = "#D55E00";
pub const GREEN: &str = "#009E73";
pub const PURPLE: &str = "#CC79A7";
pub const SKY: &str = "#56B4E9";
pub const BLACK: &str = "#000000";
pub const GREY: &str = "#888888";
/// Viridis, the dark 90 % (the yellow end is unreadable on white paper).
const TIME_RAMP: [&str; 6] = [
    "#440154", "#414487", "#2A788E", "#22A884", "#7AD151", "#BDDF26",
];

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `v` with `d` decimals, without a `-0`.
fn num(v: f64, d: usize) -> String {
    let s = format!("{v:.d$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

fn level(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{} {unit}", num(x, 1)),
        _ => format!("−∞ {unit}"),
    }
}

fn signed(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x.is_finite() => {
            format!("{}{} {unit}", if x > 0.0 { "+" } else { "" }, num(x, 1))
        }
        Some(_) => format!("−∞ {unit}"),
        None => "—".into(),
    }
}

/// `h:mm:ss` or `m:ss`.
fn clock(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The colour and dash pattern of an output: by kind, the immersive reference first.
fn output_style(
    kind: &str,
    layout: &str,
    reference: &str,
    other: usize,
) -> (&'static str, &'static str) {
    match kind {
        "binaural" => (ORANGE, "7 3"),
        "stereo" => (VERMILLION, "2 2"),
        _ if layout == reference => (BLUE, ""),
        _ => {
            const OTHERS: [&str; 5] = [GREEN, PURPLE, SKY, BLACK, GREY];
            (OTHERS[other % OTHERS.len()], "5 2 1 2")
        }
    }
}

// ---------------------------------------------------------------------------------------
// A plot frame: data coordinates to pixels.

struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn time(w: f64, h: f64, duration_s: f64, y0: f64, y1: f64) -> Frame {
        Frame {
            w,
            h,
            left: 52.0,
            right: 12.0,
            top: 10.0,
            bottom: 24.0,
            x0: 0.0,
            x1: duration_s.max(0.1),
            y0,
            y1,
        }
    }
    fn bx(&self) -> f64 {
        (self.w - self.left - self.right) / (self.x1 - self.x0)
    }
    fn by(&self) -> f64 {
        -(self.h - self.top - self.bottom) / (self.y1 - self.y0)
    }
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x0) * self.bx()
    }
    fn py(&self, y: f64) -> f64 {
        self.h - self.bottom + (y - self.y0) * self.by()
    }
    /// `ax bx ay by` with px = ax + bx·x and py = ay + by·y (for tests and the hover).
    fn map_attr(&self) -> String {
        format!(
            "{} {} {} {}",
            self.left - self.x0 * self.bx(),
            self.bx(),
            self.h - self.bottom - self.y0 * self.by(),
            self.by()
        )
    }
    fn open(&self, out: &mut String, class: &str, label: &str) {
        let _ = write!(
            out,
            r#"<svg class="plot {class}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}" data-map="{map}" data-range="{y0} {y1}">"#,
            w = self.w,
            h = self.h,
            label = esc(label),
            map = self.map_attr(),
            y0 = self.y0,
            y1 = self.y1,
        );
    }
    /// Time grid and labels along the bottom, value grid and labels on the left.
    fn axes(&self, out: &mut String, y_ticks: &[f64], y_unit: &str) {
        let (l, r) = (self.left, self.w - self.right);
        let (t, b) = (self.top, self.h - self.bottom);
        let _ = write!(out, r#"<g class="axes">"#);
        for &v in y_ticks {
            let y = self.py(v);
            let _ = write!(
                out,
                r#"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}"/><text x="{x:.1}" y="{ty:.1}" text-anchor="end">{v}{y_unit}</text>"#,
                x = l - 4.0,
                ty = y + 3.5,
                v = num(v, if v.fract() == 0.0 { 0 } else { 1 }),
            );
        }
        let step = time_step(self.x1 - self.x0);
        let mut tick = (self.x0 / step).ceil() * step;
        while tick <= self.x1 + 1e-9 {
            let x = self.px(tick);
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{b}"/><text x="{x:.1}" y="{ty}" text-anchor="middle">{c}</text>"#,
                ty = b + 15.0,
                c = clock(tick)
            );
            tick += step;
        }
        let _ = write!(
            out,
            r#"<rect class="box" x="{l}" y="{t}" width="{w}" height="{h}"/></g>"#,
            w = r - l,
            h = b - t
        );
    }
    /// A series as a path (gaps where a value is missing, values clamped to the frame),
    /// carrying its numbers.
    #[allow(clippy::too_many_arguments)]
    fn series(
        &self,
        out: &mut String,
        class: &str,
        name: &str,
        step_s: f64,
        values: &[Option<f32>],
        stroke: &str,
        dash: &str,
        width: f64,
    ) {
        let mut d = String::with_capacity(values.len() * 14);
        let mut pen = false;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let x = self.px((i as f64 + 0.5) * step_s);
                    let y = self.py((*v as f64).clamp(self.y0, self.y1));
                    let _ = write!(d, "{}{x:.2},{y:.2}", if pen { 'L' } else { 'M' });
                    pen = true;
                }
                None => pen = false,
            }
        }
        let mut data = String::with_capacity(values.len() * 7);
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                data.push(' ');
            }
            match v {
                Some(v) => {
                    let _ = write!(data, "{}", num(*v as f64, 2));
                }
                None => data.push('n'),
            }
        }
        let _ = write!(
            out,
            r#"<path class="data {class}" data-name="{name}" data-step="{step_s}" data-values="{data}" d="{d}" stroke="{stroke}" stroke-width="{width}" stroke-dasharray="{dash}" fill="none"/>"#,
            name = esc(name)
        );
    }
    fn hline(&self, out: &mut String, class: &str, y: f64, stroke: &str, dash: &str, label: &str) {
        if !(self.y0..=self.y1).contains(&y) {
            return;
        }
        let py = self.py(y);
        let _ = write!(
            out,
            r#"<line class="{class}" x1="{l}" x2="{r}" y1="{py:.2}" y2="{py:.2}" stroke="{stroke}" stroke-dasharray="{dash}" data-value="{y}"/>"#,
            l = self.left,
            r = self.w - self.right,
        );
        if !label.is_empty() {
            let _ = write!(
                out,
                r#"<text class="note" x="{x}" y="{ty:.1}" text-anchor="end" fill="{stroke}">{label}</text>"#,
                x = self.w - self.right - 4.0,
                ty = py - 3.0,
                label = esc(label)
            );
        }
    }
}

/// A tick step giving at most about 10 ticks over `span_s` seconds.
fn time_step(span_s: f64) -> f64 {
    const STEPS: [f64; 16] = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        7200.0, 14400.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_s / s <= 10.0)
        .unwrap_or(28800.0)
}

fn ticks(y0: f64, y1: f64, step: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut t = (y0 / step).ceil() * step;
    while t <= y1 + 1e-9 {
        v.push(t);
        t += step;
    }
    v
}

// ---------------------------------------------------------------------------------------
// The page.

const CSS: &str = r#"
:root{--ink:#1a1a1a;--muted:#555;--rule:#ccc;--ok:#009E73;--bad:#D55E00}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);background:#fff;margin:0 auto;max-width:1000px;padding:16px 20px 40px}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid var(--ink);padding-bottom:2px}
h3{font-size:15px;margin:14px 0 4px}
p.sub{color:var(--muted);margin:0 0 8px}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--rule);padding:3px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;white-space:nowrap}td:first-child,td:last-child{white-space:nowrap}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
.headline{font-size:17px;padding:8px 12px;border-left:6px solid;margin:8px 0}
.headline.ok{border-color:var(--ok);background:#e8f6f1}.headline.bad{border-color:var(--bad);background:#fbece3}
ul.flags{margin:4px 0 4px 18px;padding:0}
svg.plot{display:block;margin:4px 0;max-width:100%;height:auto;font-size:11px}
svg .axes line{stroke:#e3e3e3;stroke-width:1}svg .axes text,svg text{fill:#444}
svg .box{fill:none;stroke:#999}
svg .note{font-size:11px;font-weight:600}
svg text.name{font-size:11px;font-weight:600;fill:#111;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .room{fill:#fafafa;stroke:#777}svg .spk{fill:#fff;stroke:#222}svg .spk.top{stroke-dasharray:2 1.5}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:2px 0 6px;color:var(--muted)}
.legend span{white-space:nowrap}.sw{display:inline-block;width:26px;height:0;border-top:3px solid;vertical-align:middle;margin-right:5px}
.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.obj{border-top:1px solid var(--rule);padding-top:6px;margin-top:6px}
.obj h3{margin:0}.obj .nums{color:var(--muted)}
.readout{position:fixed;right:10px;bottom:10px;background:#fff;border:1px solid #999;padding:4px 8px;font:12px monospace;display:none;white-space:pre}
footer{margin-top:30px;color:var(--muted);font-size:12px}
@media print{body{max-width:none;padding:0}section{break-inside:avoid-page}h2{break-after:avoid}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}.readout{display:none!important}}
"#;

/// Reports script errors into the page (`data-error` on `<html>`), first thing.
const HEAD_SCRIPT: &str = r#"window.addEventListener('error',function(e){document.documentElement.setAttribute('data-error',String(e.message||e))});"#;

/// Optional: a read-out of the values under the pointer on the time plots (each plot's
/// numbers are read on its first hover, not at load); marks the page
/// ready (`data-ready`) and how long it took to load (`data-load-ms`).
const BODY_SCRIPT: &str = r#"(function(){try{
var ro=document.getElementById('readout');
function fmt(t){t=Math.max(0,Math.round(t));var h=Math.floor(t/3600),m=Math.floor(t/60)%60,s=t%60;return (h?h+':'+(m<10?'0':''):'')+m+':'+(s<10?'0':'')+s;}
document.querySelectorAll('svg.plot.time').forEach(function(svg){
var m=null,paths=null;
svg.addEventListener('mousemove',function(ev){if(!paths){m=svg.getAttribute('data-map').split(' ').map(Number);
paths=[].slice.call(svg.querySelectorAll('path[data-values]')).map(function(p){return {n:p.getAttribute('data-name')+' '+(p.getAttribute('class')||'').replace('data ',''),s:Number(p.getAttribute('data-step')),v:p.getAttribute('data-values').split(' ')};});}
var r=svg.getBoundingClientRect();var vb=svg.viewBox.baseVal;var x=(ev.clientX-r.left)*vb.width/r.width;var t=(x-m[0])/m[1];
var lines=[fmt(t)];paths.forEach(function(p){var i=Math.floor(t/p.s);if(i>=0&&i<p.v.length&&p.v[i]!=='n'){lines.push(p.n+': '+p.v[i]);}});ro.textContent=lines.join('\n');ro.style.display='block';});
svg.addEventListener('mouseleave',function(){ro.style.display='none';});});
document.documentElement.setAttribute('data-dom-ms',String(Math.round(performance.now())));
document.documentElement.setAttribute('data-ready','1');
window.addEventListener('load',function(){document.documentElement.setAttribute('data-load-ms',String(Math.round(performance.now())));});
}catch(e){document.documentElement.setAttribute('data-error',String(e));}})();"#;

/// The sections, in order: (id, title).
pub const SECTIONS: [(&str, &str); 7] = [
    ("verdict", "Verdict"),
    ("loudness", "Loudness over time"),
    ("image", "Stereo image over time"),
    ("objects", "Where the objects go"),
    ("speakers", "Speaker use"),
    ("translation", "Translation timeline"),
    ("provenance", "Warnings, source and settings"),
];

struct Ctx<'a> {
    report: &'a ReportView,
    timeline: &'a Timeline,
    duration_s: f64,
    reference: String,
}

impl Ctx<'_> {
    /// The timeline of output `i` of the report (matched by file name).
    fn series(&self, o: &OutputView) -> Option<&OutputTimeline> {
        let name = file_name(&o.file);
        self.timeline.outputs.iter().find(|t| t.file == name)
    }
    fn style(&self, o: &OutputView) -> (&'static str, &'static str) {
        let other = self
            .report
            .outputs
            .iter()
            .filter(|x| x.kind == "speakers" && x.layout != self.reference)
            .position(|x| x.file == o.file)
            .unwrap_or(0);
        output_style(&o.kind, &o.layout, &self.reference, other)
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The whole page.
pub fn build(report: &ReportView, timeline: &Timeline) -> String {
    let reference = report
        .translation
        .as_ref()
        .map(|t| t.reference.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| timeline.reference_layout.clone());
    let ctx = Ctx {
        report,
        timeline,
        duration_s: report.duration_s.max(0.1),
        reference,
    };
    let mut out = String::with_capacity(256 * 1024);
    let title = format!("halo QC — {}", file_name(&report.session));
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t}</title><style>{CSS}</style><script>{HEAD_SCRIPT}</script></head><body><h1>{t}</h1><p class="sub">{session} · {dur} · {rate} Hz · rendered by halo {v}</p>"#,
        t = esc(&title),
        session = esc(&report.session),
        dur = clock(report.duration_s),
        rate = report.sample_rate,
        v = esc(&timeline.halo_version),
    );
    verdict(&mut out, &ctx);
    loudness(&mut out, &ctx);
    image(&mut out, &ctx);
    objects(&mut out, &ctx);
    speakers(&mut out, &ctx);
    translation(&mut out, &ctx);
    provenance(&mut out, &ctx);
    let _ = write!(
        out,
        r#"<div id="readout" class="readout"></div><script>{BODY_SCRIPT}</script></body></html>"#
    );
    out
}

fn section(out: &mut String, n: usize) {
    let (id, title) = SECTIONS[n];
    let _ = write!(out, r#"<section id="{id}"><h2>{}. {title}</h2>"#, n + 1);
}

fn verdict(out: &mut String, c: &Ctx) {
    section(out, 0);
    let r = c.report;
    let mut problems: Vec<String> = Vec::new();
    for o in &r.outputs {
        if let Some(t) = &o.target
            && !t.pass
        {
            problems.push(format!("{} misses {}", file_name(&o.file), t.target.name));
        }
        if clips(o) {
            problems.push(format!("{} clips", file_name(&o.file)));
        }
    }
    let failures = r.translation.as_ref().map_or(&[][..], |t| &t.failures[..]);
    if !failures.is_empty() {
        problems.push(format!("{} translation problem(s)", failures.len()));
    }
    if problems.is_empty() {
        let _ = write!(
            out,
            r#"<p class="headline ok">✓ Pass: every output meets its target, nothing clips, no translation problem.</p>"#
        );
    } else {
        let _ = write!(
            out,
            r#"<p class="headline bad">✗ {}: {}.</p>"#,
            if problems.len() == 1 {
                "1 problem".to_string()
            } else {
                format!("{} problems", problems.len())
            },
            esc(&problems.join("; "))
        );
    }
    let _ = write!(
        out,
        "<table><thead><tr><th>output</th><th>layout</th><th>integrated</th><th>true peak</th><th>range</th><th>target</th><th>result</th><th>clipping</th></tr></thead><tbody>"
    );
    for o in &r.outputs {
        let (colour, _) = c.style(o);
        let target = o
            .target
            .as_ref()
            .map_or("—".to_string(), |t| target_text(&t.target));
        let result = match &o.target {
            None => "—".to_string(),
            Some(t) if t.pass => r#"<span class="ok">✓ pass</span>"#.to_string(),
            Some(t) => format!(
                r#"<span class="bad">✗ miss</span><br><small>{}</small>"#,
                esc(&t.misses.join("; "))
            ),
        };
        let clip = if clips(o) {
            format!(
                r#"<span class="bad">✗ sample peak {}</span>"#,
                level(o.loudness.sample_peak_dbfs, "dBFS")
            )
        } else {
            format!(
                r#"<span class="ok">✓</span> peak {}"#,
                level(o.loudness.sample_peak_dbfs, "dBFS")
            )
        };
        let _ = write!(
            out,
            r#"<tr data-output="{f}"><td><span class="sw" style="border-color:{colour}"></span>{f}</td><td>{l}</td><td class="n" data-integrated="{i}">{il}</td><td class="n" data-true-peak="{tp}">{tpl}</td><td class="n">{lra}</td><td>{target}</td><td>{result}</td><td>{clip}</td></tr>"#,
            f = esc(file_name(&o.file)),
            l = esc(&o.layout),
            i = o.loudness.integrated_lufs.map_or("n".into(), |v| num(v, 2)),
            il = level(o.loudness.integrated_lufs, "LUFS"),
            tp = o.loudness.true_peak_dbtp.map_or("n".into(), |v| num(v, 2)),
            tpl = level(o.loudness.true_peak_dbtp, "dBTP"),
            lra = level(o.loudness.range_lu, "LU"),
            target = esc(&target),
        );
    }
    let _ = write!(out, "</tbody></table>");
    if let Some(t) = &r.translation {
        let _ = write!(
            out,
            "<h3>Translation against {}</h3><p>stereo {} · binaural {} (integrated, against the immersive render); heights {:.0} % of the mix ({} in stereo), rears {:.0} % ({} in stereo).</p>",
            esc(&t.reference),
            signed(t.stereo_loudness_delta_lu, "LU"),
            signed(t.binaural_loudness_delta_lu, "LU"),
            t.height_share * 100.0,
            signed(t.height_in_stereo_db, "dB"),
            t.rear_share * 100.0,
            signed(t.rear_in_stereo_db, "dB"),
        );
        if t.failures.is_empty() {
            let _ = write!(
                out,
                r#"<p class="ok">✓ no object or bed changes by more than ±{} dB.</p>"#,
                num(t.threshold_db, 1)
            );
        } else {
            let _ = write!(out, r#"<ul class="flags bad">"#);
            for f in &t.failures {
                let _ = write!(out, "<li>✗ {}</li>", esc(f));
            }
            let _ = write!(out, "</ul>");
        }
    }
    out.push_str("</section>");
}

/// Whether an output's samples reach full scale (clip in integer PCM).
fn clips(o: &OutputView) -> bool {
    o.loudness.sample_peak_dbfs.is_some_and(|p| p >= 0.0)
        || o.peak_dbfs.iter().flatten().any(|&p| p >= 0.0)
}

fn target_text(t: &TargetView) -> String {
    let mut parts = Vec::new();
    if let Some(l) = t.integrated_lufs {
        parts.push(format!(
            "{} ± {} LUFS",
            num(l, 1),
            num(t.tolerance_lu.unwrap_or(0.1), 1)
        ));
    }
    if let Some(m) = t.max_integrated_lufs {
        parts.push(format!("≤ {} LUFS", num(m, 1)));
    }
    if let Some(tp) = t.max_true_peak_dbtp {
        parts.push(format!("≤ {} dBTP", num(tp, 1)));
    }
    format!("{} ({})", t.name, parts.join(", "))
}

fn legend(out: &mut String, items: &[(String, &str, &str)]) {
    out.push_str(r#"<div class="legend">"#);
    for (name, colour, dash) in items {
        let style = if dash.is_empty() { "solid" } else { "dashed" };
        let _ = write!(
            out,
            r#"<span><span class="sw" style="border-color:{colour};border-top-style:{style}"></span>{}</span>"#,
            esc(name)
        );
    }
    out.push_str("</div>");
}

fn loudness(out: &mut String, c: &Ctx) {
    section(out, 1);
    let main: Vec<&OutputView> = c
        .report
        .outputs
        .iter()
        .filter(|o| o.kind != "speakers" || o.layout == c.reference)
        .collect();
    let others: Vec<&OutputView> = c
        .report
        .outputs
        .iter()
        .filter(|o| o.kind == "speakers" && o.layout != c.reference)
        .collect();
    let _ = write!(
        out,
        r#"<p class="sub">Momentary (400 ms, thin) and short-term (3 s, thick) loudness every {} s; the integrated level as a dashed line; the target's window shaded. Long sessions keep the highest value of each step.</p>"#,
        num(
            c.timeline
                .outputs
                .first()
                .map_or(0.1, |t| t.loudness_step_s),
            1
        )
    );
    loudness_plot(out, c, &main, true);
    let mut items = Vec::new();
    for o in &main {
        let (colour, dash) = c.style(o);
        let name = format!(
            "{} ({}): integrated {}",
            file_name(&o.file),
            o.kind,
            level(o.loudness.integrated_lufs, "LUFS")
        );
        items.push((name, colour, dash));
    }
    legend(out, &items);

    // True peak.
    let _ = write!(
        out,
        r#"<h3>True peak, highest per step</h3><p class="sub">The highest true peak of any channel in each step, with each target's ceiling (−1 dBTP where an output has none).</p>"#
    );
    let mut top: f64 = 0.0;
    let mut bottom: f64 = -20.0;
    for o in &main {
        if let Some(tp) = o.loudness.true_peak_dbtp {
            top = top.max(tp + 1.0);
            bottom = bottom.min(tp - 20.0);
        }
    }
    let frame = Frame::time(
        960.0,
        180.0,
        c.duration_s,
        (bottom / 5.0).floor() * 5.0,
        (top / 3.0).ceil() * 3.0,
    );
    frame.open(out, "time true-peak", "true peak over time");
    frame.axes(
        out,
        &ticks(
            frame.y0,
            frame.y1,
            if frame.y1 - frame.y0 > 30.0 {
                10.0
            } else {
                5.0
            },
        ),
        "",
    );
    let mut ceilings: Vec<f64> = Vec::new();
    for o in &main {
        let ceiling = o
            .target
            .as_ref()
            .and_then(|t| t.target.max_true_peak_dbtp)
            .unwrap_or(-1.0);
        if !ceilings.contains(&ceiling) {
            ceilings.push(ceiling);
            frame.hline(
                out,
                "ceiling",
                ceiling,
                VERMILLION,
                "6 3",
                &format!("ceiling {} dBTP", num(ceiling, 1)),
            );
        }
    }
    for o in &main {
        if let Some(s) = c.series(o) {
            let (colour, dash) = c.style(o);
            frame.series(
                out,
                "true-peak",
                file_name(&o.file),
                s.loudness_step_s,
                &s.true_peak_dbtp,
                colour,
                dash,
                1.2,
            );
        }
    }
    out.push_str("</svg>");

    if !others.is_empty() {
        let _ = write!(
            out,
            r#"<h3>The other speaker layouts</h3><p class="sub">Short-term loudness of each further speaker render.</p>"#
        );
        loudness_plot(out, c, &others, false);
        let items: Vec<_> = others
            .iter()
            .map(|o| {
                let (colour, dash) = c.style(o);
                let name = format!(
                    "{}: {}",
                    file_name(&o.file),
                    level(o.loudness.integrated_lufs, "LUFS")
                );
                (name, colour, dash)
            })
            .collect();
        legend(out, &items);
    }
    out.push_str("</section>");
}

fn loudness_plot(out: &mut String, c: &Ctx, outputs: &[&OutputView], momentary: bool) {
    let mut top = f64::NEG_INFINITY;
    let mut low = f64::INFINITY;
    for o in outputs {
        if let Some(m) = o.loudness.max_momentary_lufs.filter(|v| v.is_finite()) {
            top = top.max(m);
        }
        if let Some(i) = o.loudness.integrated_lufs.filter(|v| v.is_finite()) {
            low = low.min(i);
        }
        if let Some(t) = &o.target {
            for v in [t.target.integrated_lufs, t.target.max_integrated_lufs]
                .into_iter()
                .flatten()
            {
                top = top.max(v + t.target.tolerance_lu.unwrap_or(0.0));
                low = low.min(v);
            }
        }
    }
    if !top.is_finite() {
        top = -10.0;
    }
    if !low.is_finite() {
        low = top - 20.0;
    }
    let y1 = ((top + 2.0) / 5.0).ceil() * 5.0;
    let y0 = (((low - 25.0) / 5.0).floor() * 5.0).clamp(y1 - 70.0, y1 - 30.0);
    let frame = Frame::time(960.0, 300.0, c.duration_s, y0, y1);
    frame.open(
        out,
        if momentary {
            "time loudness"
        } else {
            "time loudness other"
        },
        "loudness over time",
    );
    frame.axes(out, &ticks(y0, y1, 5.0), "");
    // Target windows.
    let mut drawn: Vec<String> = Vec::new();
    for o in outputs {
        let Some(t) = &o.target else { continue };
        if drawn.contains(&t.target.name) {
            continue;
        }
        drawn.push(t.target.name.clone());
        let (colour, _) = c.style(o);
        if let Some(l) = t.target.integrated_lufs {
            let tol = t.target.tolerance_lu.unwrap_or(0.1);
            let (ya, yb) = (frame.py((l + tol).min(y1)), frame.py((l - tol).max(y0)));
            let _ = write!(
                out,
                r#"<rect class="target" x="{x}" y="{ya:.2}" width="{w}" height="{h:.2}" fill="{colour}" fill-opacity="0.12" data-low="{lo}" data-high="{hi}"/><text class="note" x="{tx}" y="{ty:.1}" fill="{colour}">{name} {l} ± {tol} LUFS</text>"#,
                x = frame.left,
                w = frame.w - frame.left - frame.right,
                h = (yb - ya).max(0.5),
                lo = l - tol,
                hi = l + tol,
                tx = frame.left + 4.0,
                ty = ya - 3.0,
                name = esc(&t.target.name),
                l = num(l, 1),
                tol = num(tol, 1),
            );
        }
        if let Some(m) = t.target.max_integrated_lufs {
            frame.hline(
                out,
                "target-max",
                m,
                colour,
                "1 3",
                &format!("{} ≤ {} LUFS", t.target.name, num(m, 1)),
            );
        }
    }
    for o in outputs {
        let Some(s) = c.series(o) else { continue };
        let (colour, dash) = c.style(o);
        let name = file_name(&o.file);
        if momentary {
            frame.series(
                out,
                "momentary",
                name,
                s.loudness_step_s,
                &s.momentary_lufs,
                colour,
                dash,
                0.7,
            );
        }
        frame.series(
            out,
            "short-term",
            name,
            s.loudness_step_s,
            &s.short_term_lufs,
            colour,
            dash,
            2.0,
        );
        if let Some(i) = o.loudness.integrated_lufs.filter(|v| v.is_finite()) {
            frame.hline(out, "integrated", i, colour, "8 4", "");
        }
    }
    out.push_str("</svg>");
}

fn image(out: &mut String, c: &Ctx) {
    section(out, 2);
    let twos: Vec<&OutputView> = c
        .report
        .outputs
        .iter()
        .filter(|o| o.image.is_some())
        .collect();
    if twos.is_empty() {
        out.push_str("<p>No two-channel output (binaural or stereo) in this render.</p></section>");
        return;
    }
    let _ = write!(
        out,
        r#"<p class="sub">Correlation of left and right over 400 ms windows (+1 mono, 0 unrelated, −1 opposite); time below zero shaded: that part cancels when the two channels are summed to mono. Long sessions keep the lowest value of each step.</p>"#
    );
    for (k, o) in twos.iter().enumerate() {
        let img = o.image.clone().unwrap_or_default();
        let (colour, dash) = c.style(o);
        let _ = write!(
            out,
            "<h3>{} ({})</h3><p>lowest {} · {:.0} % of the time below 0 · mono fold {} (L+R against L and R; 0 dB identical channels, −3 dB unrelated)</p>",
            esc(file_name(&o.file)),
            esc(&o.kind),
            img.min_correlation.map_or("—".into(), |v| num(v, 2)),
            img.share_negative * 100.0,
            signed(img.mono_loss_db, "dB"),
        );
        let frame = Frame::time(960.0, 160.0, c.duration_s, -1.0, 1.0);
        frame.open(out, "time correlation", "correlation over time");
        frame.axes(out, &[-1.0, -0.5, 0.0, 0.5, 1.0], "");
        let Some(s) = c.series(o) else {
            out.push_str("</svg>");
            continue;
        };
        // Shade below zero: the area between the curve and 0, clipped to the lower half.
        let zero = frame.py(0.0);
        let clip = format!("neg{k}");
        let _ = write!(
            out,
            r#"<clipPath id="{clip}"><rect x="{l}" y="{zero:.2}" width="{w}" height="{h:.2}"/></clipPath>"#,
            l = frame.left,
            w = frame.w - frame.left - frame.right,
            h = frame.h - frame.bottom - zero
        );
        let mut area = String::new();
        let mut open: Option<f64> = None;
        let step = s.correlation_step_s.max(1e-6);
        for (i, v) in s.correlation.iter().enumerate() {
            let x = frame.px((i as f64 + 0.5) * step);
            match v {
                Some(v) => {
                    if open.is_none() {
                        let _ = write!(area, "M{x:.2},{zero:.2}");
                    }
                    let _ = write!(area, "L{x:.2},{:.2}", frame.py(*v as f64));
                    open = Some(x);
                }
                None => {
                    if let Some(x0) = open.take() {
                        let _ = write!(area, "L{x0:.2},{zero:.2}Z");
                    }
                }
            }
        }
        if let Some(x0) = open {
            let _ = write!(area, "L{x0:.2},{zero:.2}Z");
        }
        let _ = write!(
            out,
            r#"<path class="below-zero" d="{area}" fill="{VERMILLION}" fill-opacity="0.35" clip-path="url(#{clip})"/>"#
        );
        frame.hline(out, "zero", 0.0, BLACK, "", "");
        frame.series(
            out,
            "correlation",
            file_name(&o.file),
            step,
            &s.correlation,
            colour,
            dash,
            1.8,
        );
        out.push_str("</svg>");
    }
    out.push_str("</section>");
}

/// Room-plan views: top (x right, y front up) and side (y front to the right, z up).
struct Room {
    cx: f64,
    cy: f64,
    scale: f64,
    side: bool,
}

impl Room {
    fn at(&self, p: [f64; 3]) -> (f64, f64) {
        if self.side {
            (self.cx + p[1] * self.scale, self.cy - p[2] * self.scale)
        } else {
            (self.cx + p[0] * self.scale, self.cy - p[1] * self.scale)
        }
    }
    fn outline(&self, out: &mut String) {
        let s = self.scale;
        if self.side {
            let _ = write!(
                out,
                r##"<rect class="room" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#bbb" stroke-dasharray="3 3"/><text x="{:.1}" y="{:.1}">back</text><text x="{:.1}" y="{:.1}" text-anchor="end">front</text><text x="{:.1}" y="{:.1}" text-anchor="middle">ceiling</text><text x="{:.1}" y="{:.1}" text-anchor="middle">ear level</text>"##,
                self.cx - s,
                self.cy - s,
                2.0 * s,
                1.3 * s,
                self.cx - s,
                self.cx + s,
                self.cy,
                self.cy,
                self.cx - s + 3.0,
                self.cy + 0.3 * s + 14.0,
                self.cx + s - 3.0,
                self.cy + 0.3 * s + 14.0,
                self.cx,
                self.cy - s - 4.0,
                self.cx,
                self.cy - 4.0,
            );
        } else {
            let _ = write!(
                out,
                r##"<rect class="room" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">front</text><text x="{:.1}" y="{:.1}" text-anchor="middle">back</text><circle cx="{:.1}" cy="{:.1}" r="4" fill="none" stroke="#777"/>"##,
                self.cx - s,
                self.cy - s,
                2.0 * s,
                2.0 * s,
                self.cx,
                self.cy - s - 4.0,
                self.cx,
                self.cy + s + 13.0,
                self.cx,
                self.cy,
            );
        }
    }
    fn speakers(&self, out: &mut String, speakers: &[Speaker]) {
        // Speakers drawn at the same spot (a side view's left/right pairs) share a label.
        let mut spots: Vec<((i64, i64), bool, Vec<&str>)> = Vec::new();
        for sp in speakers.iter().filter(|s| !s.lfe) {
            let (x, y) = self.at(polar_to_room(sp.azimuth_deg, sp.elevation_deg, 1.0));
            let key = ((x * 2.0).round() as i64, (y * 2.0).round() as i64);
            match spots.iter_mut().find(|s| s.0 == key) {
                Some(s) => s.2.push(&sp.label),
                None => spots.push((key, sp.elevation_deg > 10.0, vec![&sp.label])),
            }
        }
        for ((kx, ky), top, labels) in spots {
            let (x, y) = (kx as f64 / 2.0, ky as f64 / 2.0);
            let labels = esc(&labels.join("/"));
            let _ = write!(
                out,
                r#"<rect class="spk{top}" x="{:.1}" y="{:.1}" width="9" height="9"><title>{labels}</title></rect><text x="{x:.1}" y="{:.1}" font-size="9" text-anchor="middle">{labels}</text>"#,
                x - 4.5,
                y - 4.5,
                y + if self.side { -7.0 } else { 15.0 },
                top = if top { " top" } else { "" },
            );
        }
    }
}

fn object_point(o: &ObjectTimeline, k: usize) -> [f64; 3] {
    let at = |v: &[f32]| v.get(k).or(v.last()).copied().unwrap_or(0.0) as f64;
    [at(&o.x), at(&o.y), at(&o.z)]
}

fn objects(out: &mut String, c: &Ctx) {
    section(out, 3);
    let objs = &c.timeline.objects;
    let _ = write!(
        out,
        r#"<p class="sub">Each object's path over the {} speakers (squares; dashed: upper layer), coloured by time from dark (start) to light (end); objects that never move are dots; the faint disc is the object's size. Polar positions are drawn on the room by a schematic projection.</p>"#,
        esc(&c.timeline.reference_layout)
    );
    if objs.is_empty() {
        out.push_str("<p>No objects in this session.</p></section>");
        return;
    }
    out.push_str(r#"<div class="row">"#);
    for side in [false, true] {
        let (w, h) = if side { (460.0, 320.0) } else { (460.0, 460.0) };
        let room = Room {
            cx: w / 2.0,
            cy: if side { 215.0 } else { h / 2.0 },
            scale: 190.0,
            side,
        };
        let _ = write!(
            out,
            r#"<svg class="plot room {v}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">"#,
            v = if side { "side" } else { "top" },
            label = if side {
                "side view (y–z) of the room with the object paths"
            } else {
                "top view (x–y) of the room with the object paths"
            }
        );
        room.outline(out);
        room.speakers(out, &c.timeline.reference_speakers);
        for o in objs.iter().filter(|o| !o.muted) {
            let n = o.x.len().max(o.y.len()).max(o.z.len());
            let size = o.size.iter().copied().fold(0.0f32, f32::max) as f64;
            let mid = object_point(o, n / 2);
            let (mx, my) = room.at(mid);
            if size > 0.0 {
                let _ = write!(
                    out,
                    r##"<circle class="size" cx="{mx:.1}" cy="{my:.1}" r="{:.1}" fill="#777" fill-opacity="0.12"/>"##,
                    size * room.scale
                );
            }
            if n <= 1 {
                let _ = write!(
                    out,
                    r##"<circle class="data static" data-name="{}" cx="{mx:.1}" cy="{my:.1}" r="5" fill="{}" stroke="#fff"/>"##,
                    esc(&o.name),
                    TIME_RAMP[0]
                );
            } else {
                // The path in time chunks, each a polyline of its colour.
                let chunks = TIME_RAMP.len();
                for (k, colour) in TIME_RAMP.iter().enumerate() {
                    let a = k * (n - 1) / chunks;
                    let b = ((k + 1) * (n - 1) / chunks).max(a + 1).min(n - 1);
                    let mut pts = String::new();
                    for i in a..=b {
                        let (x, y) = room.at(object_point(o, i));
                        let _ = write!(pts, "{x:.1},{y:.1} ");
                    }
                    let _ = write!(
                        out,
                        r#"<polyline class="data path" data-name="{}" points="{}" fill="none" stroke="{colour}" stroke-width="2.2" stroke-linejoin="round"/>"#,
                        esc(&o.name),
                        pts.trim_end()
                    );
                }
                let (sx, sy) = room.at(object_point(o, 0));
                let _ = write!(
                    out,
                    r#"<circle cx="{sx:.1}" cy="{sy:.1}" r="3" fill="{}"/>"#,
                    TIME_RAMP[0]
                );
            }
            let (lx, ly) = room.at(object_point(o, 0));
            let _ = write!(
                out,
                r#"<text class="name" x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 6.0,
                ly - 6.0,
                esc(&o.name)
            );
        }
        out.push_str("</svg>");
    }
    out.push_str("</div>");
    // The time ramp.
    let _ = write!(out, r#"<div class="legend"><span>time:</span><span>0:00 "#);
    for colour in TIME_RAMP {
        let _ = write!(
            out,
            r#"<span class="sw" style="border-color:{colour};width:20px;margin:0"></span>"#
        );
    }
    let _ = write!(out, " {}</span></div></section>", clock(c.duration_s));
}

fn speakers(out: &mut String, c: &Ctx) {
    section(out, 4);
    let _ = write!(
        out,
        r#"<p class="sub">Each speaker render's level per channel over the whole session (RMS, dBFS) on the room plan: disc area follows the channel's power; dashed: upper layer.</p><div class="row">"#
    );
    let mut any = false;
    for o in c.report.outputs.iter().filter(|o| o.kind == "speakers") {
        let Some(s) = c.series(o) else { continue };
        any = true;
        let (w, h) = (300.0, 330.0);
        let room = Room {
            cx: w / 2.0,
            cy: 160.0,
            scale: 125.0,
            side: false,
        };
        let _ = write!(
            out,
            r#"<div><h3>{}</h3><svg class="plot speakers" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="speaker levels of {}">"#,
            esc(&o.layout),
            esc(&o.layout)
        );
        room.outline(out);
        let max_db = s
            .channel_rms_dbfs
            .iter()
            .flatten()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max) as f64;
        let mut lfe_text = Vec::new();
        for (sp, db) in s.speakers.iter().zip(&s.channel_rms_dbfs) {
            if sp.lfe {
                lfe_text.push(format!(
                    "{} {}",
                    sp.label,
                    level(db.map(|v| v as f64), "dB")
                ));
                continue;
            }
            let p = polar_to_room(sp.azimuth_deg, sp.elevation_deg, 1.0);
            let (x, y) = room.at(p);
            let rel = db.map_or(0.0, |d| 10f64.powf((d as f64 - max_db) / 10.0));
            let r = 3.0 + 22.0 * rel.sqrt();
            let dash = if sp.elevation_deg > 10.0 { "3 2" } else { "" };
            let _ = write!(
                out,
                r#"<circle class="data level" data-label="{l}" data-db="{d}" cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="{BLUE}" fill-opacity="0.35" stroke="{BLUE}" stroke-dasharray="{dash}"/><text x="{x:.1}" y="{ty:.1}" font-size="10" text-anchor="middle">{l} {v}</text>"#,
                l = esc(&sp.label),
                d = db.map_or("n".into(), |v| num(v as f64, 2)),
                ty = y + 3.5,
                v = db.map_or("−∞".into(), |v| num(v as f64, 1)),
            );
        }
        if !lfe_text.is_empty() {
            let _ = write!(
                out,
                r#"<text x="8" y="{}" font-size="10">{}</text>"#,
                h - 8.0,
                esc(&lfe_text.join(" · "))
            );
        }
        out.push_str("</svg></div>");
    }
    out.push_str("</div>");
    if !any {
        out.push_str("<p>No speaker render in this session.</p>");
    }
    out.push_str("</section>");
}

fn translation(out: &mut String, c: &Ctx) {
    section(out, 5);
    let Some(t) = &c.report.translation else {
        out.push_str("<p>No stereo or binaural output: nothing to compare with the immersive render.</p></section>");
        return;
    };
    let _ = write!(
        out,
        r#"<p class="sub">Per object, its level in the stereo fold-down (vermillion) and on headphones (orange, dashed) against the {} render, every {} s; flagged ranges (beyond ±{} dB) shaded, the worst moment marked ▼. Gaps: the object is inaudible.</p>"#,
        esc(&t.reference),
        num(c.timeline.objects.first().map_or(0.1, |o| o.step_s), 1),
        num(t.threshold_db, 1)
    );
    // Height and rear share and what survives in stereo.
    let _ = write!(
        out,
        r#"<svg class="plot shares" viewBox="0 0 960 70" width="960" height="70" role="img" aria-label="height and rear share">"#
    );
    for (row, (name, share, kept)) in [
        ("heights", t.height_share, t.height_in_stereo_db),
        ("rears", t.rear_share, t.rear_in_stereo_db),
    ]
    .into_iter()
    .enumerate()
    {
        let y = 8.0 + row as f64 * 30.0;
        let w = 400.0 * share.clamp(0.0, 1.0);
        let kept_w = kept
            .filter(|k| k.is_finite())
            .map_or(0.0, |k| w * 10f64.powf(k / 10.0));
        let _ = write!(
            out,
            r##"<text x="0" y="{ty}">{name}</text><rect x="70" y="{y}" width="400" height="18" fill="none" stroke="#bbb"/><rect class="data share" x="70" y="{y}" width="{w:.1}" height="18" fill="{BLUE}" fill-opacity="0.35"/><rect x="70" y="{y2}" width="{kept_w:.1}" height="8" fill="{VERMILLION}"/><text x="480" y="{ty}">{pct:.0} % of the immersive mix · {k} in stereo</text>"##,
            ty = y + 13.0,
            y2 = y + 5.0,
            pct = share * 100.0,
            k = signed(kept, "dB"),
        );
    }
    out.push_str("</svg>");
    let _ = write!(
        out,
        r#"<div class="legend"><span><span class="sw" style="border-color:{BLUE}"></span>share of the mix's energy</span><span><span class="sw" style="border-color:{VERMILLION}"></span>what the fold-down keeps of it</span></div>"#
    );
    for (i, o) in t.objects.iter().enumerate() {
        let series = c
            .timeline
            .objects
            .get(i)
            .filter(|s| s.name == o.name)
            .or_else(|| c.timeline.objects.iter().find(|s| s.name == o.name));
        let _ = write!(
            out,
            r#"<div class="obj" data-object="{n}"><h3>{n}</h3><p class="nums">immersive {} · stereo {} · binaural {} · mono sum {}</p>"#,
            level(o.immersive_db, "dBFS"),
            signed(o.stereo_delta_db, "dB"),
            signed(o.binaural_delta_db, "dB"),
            signed(o.mono_db, "dB"),
            n = esc(&o.name),
        );
        if !o.flags.is_empty() {
            let _ = write!(out, r#"<ul class="flags bad">"#);
            for f in &o.flags {
                let _ = write!(out, "<li>✗ {}</li>", esc(f));
            }
            out.push_str("</ul>");
        }
        let Some(s) = series else {
            out.push_str("</div>");
            continue;
        };
        let worst = [&s.stereo_delta_db, &s.binaural_delta_db]
            .iter()
            .flat_map(|v| v.iter().flatten())
            .fold(0.0f32, |a, &b| a.max(b.abs())) as f64;
        let span = (worst + 3.0).clamp(t.threshold_db + 3.0, 40.0);
        let frame = Frame::time(
            960.0,
            130.0,
            c.duration_s,
            -((span / 3.0).ceil() * 3.0),
            6.0f64.max(t.threshold_db + 3.0),
        );
        frame.open(out, "time object", &format!("translation of {}", o.name));
        frame.axes(
            out,
            &ticks(frame.y0, frame.y1, if span > 20.0 { 10.0 } else { 3.0 }),
            "",
        );
        for (ranges, colour) in [(&o.stereo_ranges, VERMILLION), (&o.binaural_ranges, ORANGE)] {
            for r in ranges.iter() {
                let (x0, x1) = (frame.px(r.start_s), frame.px(r.end_s));
                let _ = write!(
                    out,
                    r#"<rect class="flagged" x="{x0:.2}" y="{}" width="{:.2}" height="{}" fill="{colour}" fill-opacity="0.15" data-start="{}" data-end="{}"/>"#,
                    frame.top,
                    (x1 - x0).max(1.0),
                    frame.h - frame.top - frame.bottom,
                    r.start_s,
                    r.end_s
                );
            }
        }
        frame.hline(out, "zero", 0.0, BLACK, "", "");
        frame.hline(out, "threshold", -t.threshold_db, GREY, "3 3", "");
        frame.hline(out, "threshold", t.threshold_db, GREY, "3 3", "");
        frame.series(
            out,
            "stereo",
            &o.name,
            s.step_s,
            &s.stereo_delta_db,
            VERMILLION,
            "",
            1.5,
        );
        frame.series(
            out,
            "binaural",
            &o.name,
            s.step_s,
            &s.binaural_delta_db,
            ORANGE,
            "6 3",
            1.5,
        );
        // The worst moment inside a flagged range.
        let flagged = |t_s: f64| {
            o.stereo_ranges
                .iter()
                .chain(&o.binaural_ranges)
                .any(|r| t_s >= r.start_s - s.step_s && t_s <= r.end_s + s.step_s)
        };
        let mut worst_at: Option<(f64, f64)> = None;
        for v in [&s.stereo_delta_db, &s.binaural_delta_db] {
            for (k, d) in v.iter().enumerate() {
                let (Some(d), ts) = (d, (k as f64 + 0.5) * s.step_s) else {
                    continue;
                };
                let d = *d as f64;
                if flagged(ts) && worst_at.is_none_or(|(_, w)| d.abs() > w.abs()) {
                    worst_at = Some((ts, d));
                }
            }
        }
        if let Some((ts, d)) = worst_at {
            let (x, y) = (frame.px(ts), frame.py(d.clamp(frame.y0, frame.y1)));
            let _ = write!(
                out,
                r#"<path class="worst" d="M{:.1},{:.1}L{:.1},{:.1}L{x:.1},{y:.1}Z" fill="{BLACK}" data-time="{ts}" data-db="{d}"/><text class="note" x="{:.1}" y="{:.1}">worst {} at {}</text>"#,
                x - 5.0,
                y - 10.0,
                x + 5.0,
                y - 10.0,
                x + 7.0,
                y - 10.0,
                signed(Some(d), "dB"),
                clock(ts),
            );
        }
        out.push_str("</svg></div>");
    }
    if !t.beds.is_empty() {
        let _ = write!(
            out,
            "<h3>Beds</h3><table><thead><tr><th>bed</th><th>immersive</th><th>stereo</th><th>mono sum</th><th>flags</th></tr></thead><tbody>"
        );
        for b in &t.beds {
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td></tr>"#,
                esc(&b.name),
                level(b.immersive_db, "dBFS"),
                signed(b.stereo_delta_db, "dB"),
                signed(b.mono_db, "dB"),
                if b.flags.is_empty() {
                    r#"<span class="ok">✓</span>"#.to_string()
                } else {
                    format!(r#"<span class="bad">✗ {}</span>"#, esc(&b.flags.join("; ")))
                }
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
}

fn provenance(out: &mut String, c: &Ctx) {
    section(out, 6);
    let r = c.report;
    let mut warnings: Vec<String> = r.warnings.clone();
    for o in &r.outputs {
        for w in &o.warnings {
            warnings.push(format!("{}: {w}", file_name(&o.file)));
        }
    }
    if warnings.is_empty() {
        out.push_str("<p>No warnings.</p>");
    } else {
        out.push_str("<h3>Warnings and notes</h3><ul>");
        for w in &warnings {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "<h3>Source</h3><table><tbody><tr><th>session</th><td>{}</td></tr><tr><th>duration</th><td>{} ({} frames at {} Hz)</td></tr><tr><th>rendered in</th><td>{} s ({}× real time)</td></tr><tr><th>halo</th><td>{}</td></tr>",
        esc(&r.session),
        clock(r.duration_s),
        r.frames,
        r.sample_rate,
        num(r.render_s, 2),
        num(r.realtime_factor, 0),
        esc(&c.timeline.halo_version),
    );
    for (k, v) in &c.timeline.settings {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</tbody></table>");
    if !r.sources.is_empty() {
        out.push_str("<h3>Sources</h3><table><thead><tr><th>object or bed</th><th>file</th><th>rate</th></tr></thead><tbody>");
        for s in &r.sources {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{} Hz{}</td></tr>",
                esc(&s.name),
                esc(&s.file),
                s.sample_rate,
                if s.resampled { " (resampled)" } else { "" }
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h3>Outputs</h3><table><thead><tr><th>file</th><th>layout</th><th>channels</th><th>format</th></tr></thead><tbody>");
    for o in &r.outputs {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.file),
            esc(&o.layout),
            esc(&o.channels.join(" ")),
            esc(&o.format)
        );
    }
    let _ = write!(
        out,
        "</tbody></table><footer>Page built by halo {} from report.json and timeline.json (rebuild: <code>halo report DIR</code>). Colours: Okabe–Ito palette; time: viridis.</footer></section>",
        env!("CARGO_PKG_VERSION")
    );
}

/// A synthetic session's report and timeline of any length, for the page's benchmark and
/// its size test: `objects` objects circling the room, a 7.1.4 render, binaural and a
/// stereo fold-down, every series filled through [`crate::measure::timeline::Series`] as
/// a render fills it.
/// Test and bench support (the page's size test and benchmark).
#[cfg(feature = "internals")]
pub fn synthetic(duration_s: f64, objects: usize) -> (ReportView, Timeline) {
    use crate::measure::timeline::{self as tl, Reduce, Series};
    let polls = (duration_s / tl::LOUDNESS_STEP_S) as u64;
    let lb = tl::bucket_steps(polls, tl::MAX_OUTPUT_POINTS);
    let windows_c = (duration_s / 0.4) as u64;
    let cb = tl::bucket_steps(windows_c, tl::MAX_OUTPUT_POINTS);
    let ob = tl::bucket_steps(polls, tl::MAX_OBJECT_POINTS);
    let wobble = |k: u64, f: f64| (k as f64 * f).sin();
    let layout_714: Vec<(&str, f64, f64, bool)> = vec![
        ("L", 30.0, 0.0, false),
        ("R", -30.0, 0.0, false),
        ("C", 0.0, 0.0, false),
        ("LFE", 0.0, -30.0, true),
        ("Ls", 90.0, 0.0, false),
        ("Rs", -90.0, 0.0, false),
        ("Lrs", 135.0, 0.0, false),
        ("Rrs", -135.0, 0.0, false),
        ("Ltf", 45.0, 30.0, false),
        ("Rtf", -45.0, 30.0, false),
        ("Ltr", 135.0, 30.0, false),
        ("Rtr", -135.0, 30.0, false),
    ];
    let spk = |l: &[(&str, f64, f64, bool)]| {
        l.iter()
            .map(|&(label, az, el, lfe)| Speaker {
                label: label.into(),
                azimuth_deg: az,
                elevation_deg: el,
                lfe,
            })
            .collect::<Vec<_>>()
    };
    let two = [("L", 30.0, 0.0, false), ("R", -30.0, 0.0, false)];
    let mut outputs = Vec::new();
    let mut tls = Vec::new();
    for (n, (kind, file, layout, offset)) in [
        ("speakers", "7.1.4.wav", "7.1.4", 0.0),
        ("binaural", "binaural.wav", "2.0", -2.0),
        ("stereo", "stereo.wav", "2.0", 4.0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = Series::new(lb, Reduce::Max);
        let mut st = Series::new(lb, Reduce::Max);
        let mut tp = Series::new(lb, Reduce::Max);
        for k in 0..polls {
            let base =
                -20.0 + offset + 6.0 * wobble(k, 0.0011) + 3.0 * wobble(k, 0.07 + n as f64 * 0.01);
            m.push(Some(base + 2.0 * wobble(k, 0.9)));
            st.push(Some(base));
            tp.push(Some(base + 14.0 + wobble(k, 1.3)));
        }
        let mut corr = Series::new(cb, Reduce::Min);
        for k in 0..windows_c {
            corr.push(Some(0.5 + 0.6 * wobble(k, 0.013)));
        }
        let speakers = if layout == "7.1.4" {
            spk(&layout_714)
        } else {
            spk(&two)
        };
        tls.push(OutputTimeline {
            file: file.into(),
            kind: kind.into(),
            layout: layout.into(),
            loudness_step_s: tl::LOUDNESS_STEP_S * lb as f64,
            momentary_lufs: m.finish(),
            short_term_lufs: st.finish(),
            true_peak_dbtp: tp.finish(),
            correlation_step_s: if kind == "speakers" {
                0.0
            } else {
                0.4 * cb as f64
            },
            correlation: if kind == "speakers" {
                Vec::new()
            } else {
                corr.finish()
            },
            channel_rms_dbfs: speakers
                .iter()
                .enumerate()
                .map(|(i, _)| Some(-30.0 - i as f32))
                .collect(),
            speakers,
        });
        outputs.push(OutputView {
            kind: kind.into(),
            file: format!("render/{file}"),
            layout: layout.into(),
            channels: Vec::new(),
            format: "pcm24".into(),
            peak_dbfs: Vec::new(),
            warnings: Vec::new(),
            loudness: LoudnessView {
                integrated_lufs: Some(-20.0 + offset),
                range_lu: Some(8.0),
                true_peak_dbtp: Some(-1.2),
                sample_peak_dbfs: Some(-1.5),
                max_momentary_lufs: Some(-9.0 + offset),
                max_short_term_lufs: Some(-11.0 + offset),
            },
            target: Some(TargetReportView {
                target: TargetView {
                    name: "ebu-r128".into(),
                    integrated_lufs: Some(-23.0),
                    tolerance_lu: Some(0.5),
                    max_integrated_lufs: None,
                    max_true_peak_dbtp: Some(-1.0),
                },
                pass: false,
                misses: vec!["ebu-r128: integrated outside".into()],
            }),
            image: (kind != "speakers").then(|| ImageView {
                min_correlation: Some(-0.1),
                share_negative: 0.05,
                mono_loss_db: Some(-2.0),
            }),
        });
    }
    let mut objs = Vec::new();
    let mut views = Vec::new();
    for i in 0..objects {
        let name = format!("object {}", i + 1);
        let mut lvl = Series::new(ob, Reduce::Max);
        let mut sd = Series::new(ob, Reduce::Worst);
        let mut bd = Series::new(ob, Reduce::Worst);
        let mut pos = [
            Series::new(ob, Reduce::First),
            Series::new(ob, Reduce::First),
            Series::new(ob, Reduce::First),
        ];
        let moving = i % 4 != 0;
        for k in 0..polls {
            let audible = !(k / 600 + i as u64).is_multiple_of(5);
            lvl.push(audible.then(|| -30.0 + 5.0 * wobble(k, 0.01)));
            sd.push(audible.then(|| -2.0 + 3.0 * wobble(k, 0.003 + i as f64 * 1e-4)));
            bd.push(audible.then(|| 1.0 * wobble(k, 0.002)));
            let a = if moving {
                k as f64 * 0.0005 * (1.0 + i as f64 * 0.1)
            } else {
                i as f64
            };
            pos[0].push(Some(a.cos()));
            pos[1].push(Some(a.sin()));
            pos[2].push(Some(0.5 + 0.5 * (a * 0.3).sin()));
        }
        let [x, y, z] = pos.map(|p| {
            p.finish()
                .into_iter()
                .map(|v| v.unwrap_or(0.0))
                .collect::<Vec<f32>>()
        });
        let keep = |v: Vec<f32>| if moving { v } else { tl::squeeze(v) };
        objs.push(ObjectTimeline {
            name: name.clone(),
            muted: false,
            step_s: tl::LOUDNESS_STEP_S * ob as f64,
            x: keep(x),
            y: keep(y),
            z: keep(z),
            size: vec![0.1],
            level_db: lvl.finish(),
            stereo_delta_db: sd.finish(),
            binaural_delta_db: bd.finish(),
        });
        views.push(ObjectView {
            name,
            immersive_db: Some(-30.0),
            stereo_delta_db: Some(-2.0),
            binaural_delta_db: Some(0.0),
            stereo_ranges: (0..(duration_s / 900.0) as usize)
                .map(|r| RangeView {
                    start_s: r as f64 * 900.0 + 100.0,
                    end_s: r as f64 * 900.0 + 160.0,
                    worst_delta_db: -5.0,
                })
                .collect(),
            binaural_ranges: Vec::new(),
            mono_db: Some(2.5),
            flags: vec!["loses 5.0 dB in the stereo fold-down".into()],
        });
    }
    let report = ReportView {
        session: "synthetic/session.ron".into(),
        sample_rate: 48000,
        frames: (duration_s * 48000.0) as u64,
        duration_s,
        render_s: duration_s / 50.0,
        realtime_factor: 50.0,
        sources: Vec::new(),
        outputs,
        translation: Some(TranslationView {
            reference: "7.1.4".into(),
            threshold_db: 3.0,
            stereo_loudness_delta_lu: Some(4.0),
            binaural_loudness_delta_lu: Some(-2.0),
            stereo_true_peak_dbtp: Some(-1.2),
            stereo_over: false,
            height_share: 0.3,
            rear_share: 0.2,
            height_in_stereo_db: Some(-4.0),
            rear_in_stereo_db: Some(-3.0),
            objects: views,
            beds: Vec::new(),
            failures: vec!["object 'object 1': loses 5.0 dB".into()],
        }),
        warnings: vec!["synthetic data".into()],
    };
    let timeline = Timeline {
        halo_version: env!("CARGO_PKG_VERSION").into(),
        settings: vec![("threshold".into(), "3.0 dB".into())],
        reference_layout: "7.1.4".into(),
        reference_speakers: spk(&layout_714),
        outputs: tls,
        objects: objs,
    };
    (report, timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_numbers() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(num(-0.001, 1), "0.0");
        assert_eq!(num(-1.25, 1), "-1.2");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(65.4), "1:05");
        assert_eq!(time_step(20.0), 2.0);
        assert_eq!(time_step(7200.0), 900.0);
    }

    #[test]
    fn a_frame_maps_both_ways() {
        let f = Frame::time(960.0, 300.0, 20.0, -60.0, -10.0);
        let m: Vec<f64> = f
            .map_attr()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        for (x, y) in [(0.0, -60.0), (20.0, -10.0), (7.3, -23.4)] {
            assert!((m[0] + m[1] * x - f.px(x)).abs() < 1e-9);
            assert!((m[2] + m[3] * y - f.py(y)).abs() < 1e-9);
        }
        assert!(
            (f.px(0.0) - f.left).abs() < 1e-9 && (f.py(-60.0) - (300.0 - f.bottom)).abs() < 1e-9
        );
    }

    #[test]
    fn an_empty_render_still_gives_a_whole_page() {
        let html = build(&ReportView::default(), &Timeline::default());
        for (id, _) in SECTIONS {
            assert!(html.contains(&format!(r#"<section id="{id}">"#)), "{id}");
        }
        assert!(html.ends_with("</html>") && !html.contains("NaN") && !html.contains("inf"));
        let e = parse_report("{\"outputs\": 3}", "r/report.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("r/report.json") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn the_page_has_every_section_and_no_url() {
        let (report, timeline) = synthetic(60.0, 3);
        let html = build(&report, &timeline);
        let mut at = 0;
        for (id, _) in SECTIONS {
            let p = html[at..]
                .find(&format!(r#"<section id="{id}">"#))
                .expect(id);
            at += p;
        }
        assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("//www"));
        assert!(html.contains("ebu-r128") && html.contains("object 3"));
    }
}
