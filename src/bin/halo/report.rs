//! `halo report`: the QC page. `halo render` (and `halo demo`) write `report.html` beside
//! `report.json`; `halo report DIR` rebuilds it from a finished render's `report.json` and
//! `timeline.json`, without the audio.

use super::{Failure, bad_input, classify};
use anyhow::{Context, Result, anyhow};
use clap::Args;
use halo::io;
use halo::render::RenderReport;
use halo::report::{self as page, PAGE_FILE, TIMELINE_FILE};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ReportArgs {
    /// A render folder (with report.json and timeline.json), or its report.json.
    input: PathBuf,
    /// The page to write. Default: report.html beside report.json.
    #[arg(long, value_name = "FILE.html")]
    out: Option<PathBuf>,
}

/// `halo report DIR [--out FILE.html]`.
pub fn run(args: ReportArgs) -> Result<(), Failure> {
    let report = if args.input.is_dir() {
        args.input.join("report.json")
    } else {
        args.input.clone()
    };
    let dir = report.parent().unwrap_or(Path::new("."));
    let timeline = dir.join(TIMELINE_FILE);
    let out = args.out.unwrap_or_else(|| dir.join(PAGE_FILE));
    let html = page_from_files(&report, &timeline)?;
    io::write_atomic(&out, html.as_bytes()).map_err(|e| classify(e.into()))?;
    println!("QC page: {} ({} KB)", out.display(), html.len() / 1024);
    Ok(())
}

/// The page of `report.json` and `timeline.json`.
fn page_from_files(report: &Path, timeline: &Path) -> Result<String, Failure> {
    let read = |path: &Path, what: &str| -> Result<String> {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "{}: cannot read the {what} (give a folder `halo render` wrote, or its report.json)",
                path.display()
            )
        })
    };
    let report_text = read(report, "render report").map_err(bad_input)?;
    let timeline_text = read(
        timeline,
        "time series that `halo render` writes beside report.json",
    )
    .map_err(bad_input)?;
    let report = page::parse_report(&report_text, &report.display().to_string())
        .map_err(|e| bad_input(anyhow!(e)))?;
    let timeline = page::parse_timeline(&timeline_text, &timeline.display().to_string())
        .map_err(|e| bad_input(anyhow!(e)))?;
    Ok(page::build(&report, &timeline))
}

/// After a render: `timeline.json` and `report.html` beside the `report.json` just written
/// (the page is built from the files, so `halo report` rebuilds the same page).
pub fn write_page(report: &RenderReport, dir: &Path) -> Result<PathBuf, Failure> {
    let timeline = dir.join(TIMELINE_FILE);
    io::write_atomic(&timeline, report.timeline.to_json().as_bytes())
        .map_err(|e| classify(e.into()))?;
    let html = page_from_files(&dir.join("report.json"), &timeline)?;
    let out = dir.join(PAGE_FILE);
    io::write_atomic(&out, html.as_bytes()).map_err(|e| classify(e.into()))?;
    Ok(out)
}

/// The summary's last line: where the page is.
pub fn print_pointer(report: &RenderReport) {
    if let Some(dir) = report.outputs.first().and_then(|o| o.file.parent()) {
        println!("QC page: open {}", dir.join(PAGE_FILE).display());
    }
}
