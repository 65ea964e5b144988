//! The `halo` command: render, gains, layouts, demo.
//!
//! Exit codes: 0 ok, 2 bad input (the message names the file, the place, the value and
//! what is allowed), 1 internal error.

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use halo::geometry::{Direction, Position};
use halo::io::{self, WavSpec, WavWriter, WriteFormat};
use halo::layout::{Layout, LayoutError};
use halo::panner::Panner;
use halo::render::{self, RenderError, RenderOptions};
use halo::session::{self, SessionError};
use halo::{demo, engine};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "halo",
    version,
    about = "Object-based immersive renderer: speakers (VBAP), headphones, stereo fold-down"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, ValueEnum)]
enum Format {
    Pcm24,
    F32,
}

#[derive(Subcommand)]
enum Command {
    /// Render a session to speaker layouts: DIR/<layout>.wav and DIR/report.json.
    Render {
        /// The session file (.ron).
        session: PathBuf,
        /// A layout to render (name like 7.1.4, or a layout file .ron); repeatable.
        /// Default: the session's outputs.
        #[arg(long = "layout", value_name = "L")]
        layouts: Vec<String>,
        /// Output directory (created if missing).
        #[arg(long, default_value = "render")]
        out: PathBuf,
        /// Sample format of the WAV files.
        #[arg(long, value_enum, default_value = "pcm24")]
        format: Format,
        /// Frames per engine block (the output does not depend on it).
        #[arg(long, default_value_t = render::RENDER_BLOCK_FRAMES, hide = true)]
        block: usize,
    },
    /// Print the panning gains for positions as JSON.
    Gains {
        /// The layout (name or layout file).
        #[arg(long)]
        layout: String,
        /// Source size, 0 (point) … 1 (whole room).
        #[arg(long, default_value_t = 0.0)]
        size: f64,
        /// Positions are room coordinates x,y,z instead of az,el.
        #[arg(long)]
        cart: bool,
        /// Read positions from standard input, one a line.
        #[arg(long)]
        stdin: bool,
        /// Positions: az,el (degrees, azimuth positive to the left) or x,y,z with --cart.
        #[arg(allow_hyphen_values = true)]
        positions: Vec<String>,
    },
    /// List the built-in layouts with their channels and positions.
    Layouts {
        #[arg(long)]
        json: bool,
    },
    /// Synthesise a 20-second demo session into DIR and render it to every built-in layout.
    Demo {
        #[arg(long, default_value = "halo-demo")]
        out: PathBuf,
    },
}

/// An error with the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn bad_input(error: anyhow::Error) -> Failure {
    Failure { code: 2, error }
}

fn classify(error: anyhow::Error) -> Failure {
    let bad = error.chain().any(|e| {
        e.downcast_ref::<SessionError>().is_some()
            || e.downcast_ref::<LayoutError>().is_some()
            || e.downcast_ref::<RenderError>()
                .is_some_and(|r| r.is_bad_input())
            || e.downcast_ref::<io::IoError>().is_some()
    });
    Failure {
        code: if bad { 2 } else { 1 },
        error,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Render {
            session,
            layouts,
            out,
            format,
            block,
        } => cmd_render(&session, &layouts, &out, format, block),
        Command::Gains {
            layout,
            size,
            cart,
            stdin,
            positions,
        } => cmd_gains(&layout, size, cart, stdin, &positions),
        Command::Layouts { json } => cmd_layouts(json).map_err(classify),
        Command::Demo { out } => cmd_demo(&out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("halo: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

/// A layout by built-in name or alias, or from a layout file (`.ron`).
fn resolve_layout(name: &str) -> Result<Layout> {
    if name.ends_with(".ron") {
        let path = Path::new(name);
        let text = io::read_text(path)?;
        Ok(Layout::parse(&text, name)?)
    } else {
        Ok(Layout::builtin(name)?)
    }
}

fn load_session(path: &Path) -> Result<session::Scene> {
    let text = io::read_text(path)?;
    let mut read_layout = |p: &Path| io::read_text(p).map_err(|e| e.to_string());
    Ok(session::parse(&text, path, &mut read_layout)?)
}

fn cmd_render(
    session: &Path,
    layouts: &[String],
    out: &Path,
    format: Format,
    block: usize,
) -> Result<(), Failure> {
    let scene = load_session(session).map_err(classify)?;
    let layouts = if layouts.is_empty() {
        None
    } else {
        Some(
            layouts
                .iter()
                .map(|l| resolve_layout(l))
                .collect::<Result<Vec<_>>>()
                .map_err(bad_input)?,
        )
    };
    if block == 0 || block > 65536 {
        return Err(bad_input(anyhow!(
            "--block {block}: allowed 1…65536 frames"
        )));
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))
        .map_err(bad_input)?;
    let report = render_scene(&scene, layouts, out, format, block)?;
    print_summary(&report);
    Ok(())
}

fn render_scene(
    scene: &session::Scene,
    layouts: Option<Vec<Layout>>,
    out: &Path,
    format: Format,
    block: usize,
) -> Result<render::RenderReport, Failure> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_position(done * 1000 / total.max(1));
        }
    };
    let mut options = RenderOptions::new(out);
    options.layouts = layouts;
    options.block_frames = block;
    options.format = match format {
        Format::Pcm24 => WriteFormat::Pcm24,
        Format::F32 => WriteFormat::F32,
    };
    options.progress = Some(&mut progress);
    let report = render::render(scene, &mut options)
        .with_context(|| format!("rendering {}", scene.origin.display()))
        .map_err(classify)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    render::write_report(&report, out).map_err(|e| classify(e.into()))?;
    Ok(report)
}

fn print_summary(report: &render::RenderReport) {
    for w in &report.warnings {
        eprintln!("halo: warning: {w}");
    }
    println!(
        "rendered {:.1} s in {:.2} s ({:.0}× real time)",
        report.duration_s, report.render_s, report.realtime_factor
    );
    for o in &report.outputs {
        let peak = o
            .peak_dbfs
            .iter()
            .flatten()
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        println!(
            "  {:<28} {:>2} ch  peak {:>6.1} dBFS",
            o.file.display(),
            o.channels.len(),
            peak
        );
        for w in &o.warnings {
            println!("    warning: {w}");
        }
    }
}

fn parse_position(text: &str, cart: bool) -> Result<Position> {
    let nums: Vec<f64> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>()
                .map_err(|_| anyhow!("'{s}' in position '{text}' is not a number"))
        })
        .collect::<Result<_>>()?;
    if nums.iter().any(|v| !v.is_finite()) {
        return Err(anyhow!("position '{text}' has a value that is not finite"));
    }
    match (cart, nums.as_slice()) {
        (false, [az, el]) => Ok(Position::Polar {
            azimuth_deg: *az,
            elevation_deg: *el,
            distance: 1.0,
        }),
        (true, [x, y, z]) => Ok(Position::Cartesian {
            x: *x,
            y: *y,
            z: *z,
        }),
        (false, _) => Err(anyhow!(
            "position '{text}': expected az,el (degrees; with --cart: x,y,z)"
        )),
        (true, _) => Err(anyhow!("position '{text}': expected x,y,z with --cart")),
    }
}

fn cmd_gains(
    layout: &str,
    size: f64,
    cart: bool,
    stdin: bool,
    positions: &[String],
) -> Result<(), Failure> {
    let layout = resolve_layout(layout).map_err(bad_input)?;
    if !(0.0..=1.0).contains(&size) {
        return Err(bad_input(anyhow!(
            "--size {size}: allowed 0 (point) … 1 (whole room)"
        )));
    }
    let panner = Panner::new(&layout).map_err(|e| bad_input(e.into()))?;
    let mut lines: Vec<String> = positions.to_vec();
    if stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading standard input").map_err(classify)?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
    }
    if lines.is_empty() {
        return Err(bad_input(anyhow!(
            "no positions given (POS arguments or --stdin)"
        )));
    }
    let mut rows = Vec::with_capacity(lines.len());
    let mut gains = vec![0.0; panner.num_channels()];
    for (i, line) in lines.iter().enumerate() {
        let pos = parse_position(line, cart)
            .with_context(|| format!("position {}", i + 1))
            .map_err(bad_input)?;
        match pos {
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                ..
            } => panner.gains(Direction::new(azimuth_deg, elevation_deg), size, &mut gains),
            p => panner.position_gains(p, size, &mut gains),
        }
        rows.push(gains.clone());
    }
    let json = serde_json::json!({
        "layout": layout.name,
        "channels": layout.labels(),
        "gains": rows,
    });
    println!("{json}");
    Ok(())
}

fn cmd_layouts(json: bool) -> Result<()> {
    let layouts = Layout::builtins();
    if json {
        let list: Vec<_> = layouts
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "aliases": l.aliases,
                    "channel_mask": l.wav_channel_mask(),
                    "channels": l.channels.iter().map(|c| serde_json::json!({
                        "label": c.label,
                        "name": c.name,
                        "azimuth": c.azimuth_deg,
                        "elevation": c.elevation_deg,
                        "lfe": c.lfe,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for l in &layouts {
        writeln!(
            out,
            "{} ({}): {} channels",
            l.name,
            l.aliases.join(", "),
            l.num_channels()
        )?;
        for (i, c) in l.channels.iter().enumerate() {
            let pos = if c.lfe {
                "LFE".to_string()
            } else {
                format!("az {:>6.1}°  el {:>5.1}°", c.azimuth_deg, c.elevation_deg)
            };
            writeln!(out, "  {:>2} {:<4} {:<6} {pos}", i + 1, c.label, c.name)?;
        }
    }
    Ok(())
}

fn cmd_demo(out: &Path) -> Result<(), Failure> {
    let rate = 48000;
    let stems_dir = out.join("stems");
    std::fs::create_dir_all(&stems_dir)
        .with_context(|| format!("cannot create {}", stems_dir.display()))
        .map_err(bad_input)?;
    eprintln!("halo demo: synthesising stems into {}", stems_dir.display());
    for stem in demo::stems(rate) {
        let path = stems_dir.join(stem.file);
        let spec = WavSpec {
            channels: stem.channels,
            sample_rate: rate,
            format: WriteFormat::Pcm24,
            channel_mask: if stem.channels == 6 {
                Layout::builtin("5.1")
                    .ok()
                    .and_then(|l| l.wav_channel_mask())
            } else {
                None
            },
        };
        let write = || -> Result<()> {
            let mut w = WavWriter::create(&path, spec)?;
            if stem.channels == 6 {
                // The bed is generated in layout order; the file is in WAV (mask) order.
                let order = Layout::builtin("5.1")?.wav_order();
                let mut buf = vec![0.0f32; stem.samples.len()];
                for (f, frame) in stem.samples.chunks_exact(6).enumerate() {
                    for (k, &c) in order.iter().enumerate() {
                        buf[f * 6 + k] = frame[c];
                    }
                }
                w.write(&buf)?;
            } else {
                w.write(&stem.samples)?;
            }
            w.finish()?.commit()?;
            Ok(())
        };
        write().map_err(classify)?;
    }
    let names = Layout::builtin_names();
    let session_path = out.join("session.ron");
    io::write_atomic(&session_path, demo::session_text(rate, &names).as_bytes())
        .map_err(|e| classify(e.into()))?;
    eprintln!(
        "halo demo: rendering {} to {}",
        session_path.display(),
        names.join(", ")
    );
    let scene = load_session(&session_path).map_err(classify)?;
    let report = render_scene(
        &scene,
        None,
        out,
        Format::Pcm24,
        render::RENDER_BLOCK_FRAMES,
    )?;
    print_summary(&report);
    println!(
        "session: {}  (edit it and run `halo render {} --out {}`)",
        session_path.display(),
        session_path.display(),
        out.display()
    );
    let _ = engine::GAIN_INTERVAL_FRAMES;
    Ok(())
}
