//! The `halo` command: render, play, loudness, gains, layouts, demo.
//!
//! Exit codes, the same for every command: 0 ok; 2 bad input (the message names the file,
//! the place, the value and what is allowed); 3 a `--strict` delivery check failed; 4 the
//! environment failed (disk full, permission, device, write limit); 1 a bug in halo;
//! 129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM (temp files removed first). Errors are
//! one line on stderr that quotes at most 200 characters of any input; a closed stdout
//! ends the program quietly with the code it would have had.

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use halo::Position;
use halo::demo;
use halo::exchange::{self, ExchangeError};
use halo::io::{self, WavSpec, WavWriter, WriteFormat};
use halo::loudness;
use halo::render::{self, RenderError, RenderOptions};
use halo::session::{self, SessionError};
use halo::{Layout, LayoutError};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod report;

/// Most characters of an input a message quotes.
const MAX_QUOTE_CHARS: usize = 200;

/// `println!` for the command's results: a closed stdout (`halo layouts | head`) ends the
/// program quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, $($arg)*) {
            stdout_failed(e);
        }
    }};
}

/// The reader went away (broken pipe): nothing more can be said, so stop quietly with
/// success; any other stdout failure is the environment's (exit code 4).
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("halo: error: cannot write to standard output: {e}");
    std::process::exit(4);
}

/// `text` cut to [`MAX_QUOTE_CHARS`] characters (with a note of how much was cut).
fn quote(text: &str) -> String {
    let n = text.chars().count();
    if n <= MAX_QUOTE_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_QUOTE_CHARS).collect();
    format!("{head}… ({} more characters)", n - MAX_QUOTE_CHARS)
}

#[derive(Parser)]
#[command(
    name = "halo",
    version,
    about = "Object-based immersive renderer: speakers (ITU-R BS.2127 gains), headphones, stereo fold-down"
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
    /// Render a session or an ADM BWF master: DIR/<layout>.wav and DIR/report.json.
    Render {
        /// The session file (.ron), or an ADM BWF master (.wav) as DAWs export it; a master
        /// renders to 7.1.4, binaural and a stereo fold-down unless --layout is given.
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
        /// Also render DIR/binaural.wav (headphones) when the session has no binaural output.
        #[arg(long)]
        binaural: bool,
        /// An AES69 SOFA SimpleFreeFieldHRIR file to use instead of the built-in MIT KEMAR set.
        #[arg(long, value_name = "FILE.sofa")]
        hrtf: Option<PathBuf>,
        /// Exit with code 3 when an output misses its loudness target or a translation
        /// check fails (delivery QC).
        #[arg(long)]
        strict: bool,
        /// Flag objects whose level in the fold-down or on headphones changes by more than this (dB).
        #[arg(long, default_value_t = 3.0)]
        threshold: f64,
        /// Frames per engine block (the output does not depend on it).
        #[arg(long, default_value_t = render::RENDER_BLOCK_FRAMES, hide = true)]
        block: usize,
        /// Threads to render on (0: every core). The output does not depend on it: the
        /// binaural path and each speaker bus render side by side.
        #[arg(long, default_value_t = 0, value_name = "N")]
        threads: usize,
        /// Binaural outputs through long HRTF partitions: about 1.6x faster. Static sources
        /// sound the same; a moving source's filter follows every 21 ms instead of every
        /// 6.75 ms, so the file is no longer exactly what `halo play` plays.
        #[arg(long)]
        fast_binaural: bool,
        /// ADM masters: the audioProgramme to render, by ID (APR_1002) or name. Default: the first.
        #[arg(long, value_name = "ID")]
        programme: Option<String>,
        /// ADM masters: the complementary audioObject to render (by ID) instead of its
        /// group's default; repeatable, one per group.
        #[arg(long = "complementary", value_name = "ID")]
        complementary: Vec<String>,
        /// Leave out objects whose importance (ADM audioObject `importance`, a session
        /// object's `importance`; 0…10, 10 by default) is below this, and mute the ADM
        /// blocks whose `importance` is below it (their gain set to 0, as BS.2127 / EAR).
        #[arg(long, value_name = "0-10", value_parser = clap::value_parser!(u8).range(0..=10))]
        min_importance: Option<u8>,
    },
    /// Split an ADM BWF master into an editable session and mono stems (SESSION-stems/).
    Import {
        /// The ADM BWF master (BW64/RF64/WAV with chna and axml chunks).
        master: PathBuf,
        /// The session file to write (.ron); stems go beside it.
        #[arg(long, value_name = "SESSION.ron")]
        out: PathBuf,
        /// Sample format of the stems.
        #[arg(long, value_enum, default_value = "pcm24")]
        format: Format,
        /// The audioProgramme to import, by ID (APR_1002) or name. Default: the first.
        #[arg(long, value_name = "ID")]
        programme: Option<String>,
    },
    /// Write a session as an ADM BWF master (BS.2076 axml, BS.2088 chna) for delivery,
    /// with loudnessMetadata measured on its 7.1.4 render.
    Export {
        /// The session file (.ron) or an ADM BWF master.
        session: PathBuf,
        /// The master to write (.wav).
        #[arg(long, value_name = "FILE.wav")]
        out: PathBuf,
        /// Sample format of the tracks (delivery: 24-bit PCM).
        #[arg(long, value_enum, default_value = "pcm24")]
        format: Format,
        /// Leave loudnessMetadata out (skips the measuring render).
        #[arg(long)]
        no_loudness: bool,
        /// ADM form: 1 = the Dolby Atmos Master ADM profile (BS.2076-1, with a dbmd
        /// chunk; at most 118 objects), 2 = BS.2076-2 with sample-exact times.
        #[arg(long, value_name = "1|2", default_value = "1", value_parser = clap::value_parser!(u8).range(1..=2))]
        adm_version: u8,
        /// Write each bed's gain and mute into its tracks, for renderers that ignore
        /// audioObject gain (Dolby's tools, EAR 2.1). halo then reads the beds back at 0 dB.
        #[arg(long)]
        bake_bed_gains: bool,
    },
    /// Measure a WAV file's loudness (ITU-R BS.1770-4 / EBU R128).
    Loudness {
        file: PathBuf,
        /// The file's layout (default: from its channel mask, else its channel count).
        #[arg(long)]
        layout: Option<String>,
        #[arg(long)]
        json: bool,
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
        /// BS.2127 object controls, as a session object writes them:
        /// `(extent: (width: 60, height: 20), divergence: 0.5, divergence_range: 30,
        /// snap: Within(0.3), zones: [Speaker("M+030")], diffuse: 0.3, screen_ref: true)`.
        /// The output then has "diffuse" gains beside "gains" (the direct ones).
        #[arg(long)]
        controls: Option<String>,
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
    /// Play a session live and flip between monitors (needs the `playback` feature).
    /// Keys: space play/pause, b binaural, s stereo, l speakers, m loudness match,
    /// ←/→ seek 5 s, q quit.
    Play {
        /// The session file (.ron) or an ADM BWF master (.wav).
        session: PathBuf,
        /// What to hear first: binaural, stereo, or a speaker layout (name or .ron file).
        #[arg(long, default_value = "binaural")]
        monitor: String,
        /// Output device: a cpal id such as alsa:default, alsa:hw:0,0, alsa:null, or a
        /// device name. Default: the system's default output.
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// Start this many seconds into the session.
        #[arg(long, default_value_t = 0.0)]
        start: f64,
        /// Device buffer size in frames (default: the device's).
        #[arg(long, value_name = "FRAMES")]
        buffer: Option<u32>,
        /// ADM masters: the audioProgramme to render, by ID (APR_1002) or name. Default: the first.
        #[arg(long, value_name = "ID")]
        programme: Option<String>,
    },
    /// Rebuild the QC page (report.html) from a render's report.json and timeline.json.
    Report(report::ReportArgs),
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
    let ours = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<io::IoError>().is_some()
            || e.downcast_ref::<RenderError>().is_some()
            || e.downcast_ref::<ExchangeError>().is_some()
    };
    let environment = error.chain().any(|e| {
        e.downcast_ref::<io::IoError>()
            .is_some_and(|x| x.is_environment())
            || e.downcast_ref::<RenderError>()
                .is_some_and(|r| r.is_environment())
            || e.downcast_ref::<ExchangeError>()
                .is_some_and(|x| x.is_environment())
    }) || (!error.chain().any(ours)
        && error
            .chain()
            .any(|e| e.downcast_ref::<std::io::Error>().is_some()));
    if environment {
        return Failure { code: 4, error };
    }
    let bad = error.chain().any(|e| {
        e.downcast_ref::<SessionError>().is_some()
            || e.downcast_ref::<LayoutError>().is_some()
            || e.downcast_ref::<RenderError>()
                .is_some_and(|r| r.is_bad_input())
            || e.downcast_ref::<io::IoError>().is_some()
            || e.downcast_ref::<ExchangeError>()
                .is_some_and(|x| x.is_bad_input())
    });
    Failure {
        code: if bad { 2 } else { 1 },
        error,
    }
}

/// The text of the last panic, for the one-line report in [`main`].
static PANIC_TEXT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Signals end the run through one thread that removes this run's temp files and stems
/// folders, then exits with 128 + the signal's number. `signal-hook` (a small, widely
/// used crate by the Rust CLI working group's ecosystem) does the async-signal-safe part;
/// writing that by hand with `libc::sigaction` would mean unsafe code for no gain.
/// SIGXFSZ (a write limit, `ulimit -f`) gets a handler that does nothing, so that the
/// write fails with EFBIG and the render cleans up and reports it instead of dying.
fn install_signal_handlers() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
    let _ = signal_hook::flag::register(
        SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                io::remove_own_temps();
                std::process::exit(128 + sig);
            }
        });
    }
}

fn main() -> ExitCode {
    install_signal_handlers();
    // A panic is a bug: one line on stderr and exit code 1, never a backtrace dump.
    std::panic::set_hook(Box::new(|info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut t) = PANIC_TEXT.lock() {
            *t = Some(format!("{}{at}", quote(&text)));
        }
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => {
            let text = PANIC_TEXT
                .lock()
                .ok()
                .and_then(|t| t.clone())
                .unwrap_or_default();
            io::remove_own_temps();
            eprintln!(
                "halo: error: internal error (a bug in halo, please report it): {}",
                text.replace('\n', " ")
            );
            ExitCode::from(1)
        }
    }
}

fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help, --version: stdout, quietly cut short if it is closed.
                outln!("{}", e.render().to_string().trim_end());
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line, without its own "error: " prefix.
            let text = e.render().to_string();
            let first = if e.kind()
                == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                "no command given; allowed: render, import, export, loudness, gains, layouts, play, demo".to_string()
            } else {
                let head = text.split("Usage:").next().unwrap_or("");
                let head = head.trim().strip_prefix("error:").unwrap_or(head);
                head.split_whitespace().collect::<Vec<_>>().join(" ")
            };
            eprintln!("halo: error: {} (see halo --help)", quote(&first));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Render {
            session,
            layouts,
            out,
            format,
            binaural,
            hrtf,
            strict,
            threshold,
            block,
            threads,
            fast_binaural,
            programme,
            complementary,
            min_importance,
        } => cmd_render(
            &session,
            programme.as_deref(),
            &complementary,
            &layouts,
            &out,
            RenderFlags {
                format,
                binaural,
                hrtf,
                strict,
                threshold,
                block,
                threads,
                fast_binaural,
                min_importance,
            },
        ),
        Command::Import {
            master,
            out,
            format,
            programme,
        } => cmd_import(&master, programme.as_deref(), &out, format),
        Command::Export {
            session,
            out,
            format,
            no_loudness,
            adm_version,
            bake_bed_gains,
        } => cmd_export(
            &session,
            &out,
            format,
            !no_loudness,
            adm_version,
            bake_bed_gains,
        ),
        Command::Loudness { file, layout, json } => cmd_loudness(&file, layout.as_deref(), json),
        Command::Gains {
            layout,
            size,
            cart,
            controls,
            stdin,
            positions,
        } => cmd_gains(&layout, size, cart, controls.as_deref(), stdin, &positions),
        Command::Layouts { json } => cmd_layouts(json).map_err(classify),
        Command::Demo { out } => cmd_demo(&out),
        Command::Report(args) => report::run(args),
        Command::Play {
            session,
            monitor,
            device,
            start,
            buffer,
            programme,
        } => cmd_play(
            &session,
            programme.as_deref(),
            &monitor,
            device.as_deref(),
            start,
            buffer,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("halo: error: {}", describe(&f.error).replace('\n', " "));
            ExitCode::from(f.code)
        }
    }
}

/// The error and its causes on one line. Library errors already include their source's
/// text, so a cause whose text the line already holds is not repeated.
fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        // A library error quotes what it could not read; keep quotes of input short.
        let text = if text.chars().count() > 2 * MAX_QUOTE_CHARS {
            quote(&text)
        } else {
            text
        };
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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

fn load_session(path: &Path) -> Result<halo::Scene> {
    let text = io::read_text(path)?;
    let mut read_layout = |p: &Path| io::read_text(p).map_err(|e| e.to_string());
    Ok(session::parse(&text, path, &mut read_layout)?)
}

/// A session, or an ADM BWF master read as one (with what halo does not render of it);
/// `programme` chooses a master's audioProgramme and is an error for a session.
fn load_input(path: &Path, programme: Option<&str>) -> Result<(halo::Scene, Vec<String>), Failure> {
    if exchange::is_master_path(path) {
        let master = exchange::read_master(path, programme).map_err(|e| classify(e.into()))?;
        let notes = master
            .warnings
            .into_iter()
            .map(|w| format!("ADM: {w}"))
            .collect();
        Ok((master.scene, notes))
    } else if let Some(p) = programme {
        Err(bad_input(anyhow!(
            "--programme {p}: {} is a session, not an ADM master; allowed: --programme only with a .wav master",
            path.display()
        )))
    } else {
        Ok((load_session(path).map_err(classify)?, Vec::new()))
    }
}

fn write_format(format: Format) -> WriteFormat {
    match format {
        Format::Pcm24 => WriteFormat::Pcm24,
        Format::F32 => WriteFormat::F32,
    }
}

fn cmd_import(
    master: &Path,
    programme: Option<&str>,
    out: &Path,
    format: Format,
) -> Result<(), Failure> {
    if exchange::is_master_path(out) || out.extension().is_none_or(|e| e != "ron") {
        return Err(bad_input(anyhow!(
            "--out {}: allowed a session file name ending in .ron",
            out.display()
        )));
    }
    let report = exchange::import(master, programme, out, write_format(format))
        .with_context(|| format!("importing {}", master.display()))
        .map_err(classify)?;
    for w in &report.warnings {
        eprintln!("halo: warning: ADM: {w}");
    }
    outln!(
        "wrote {} and {} stem(s) beside it",
        report.session.display(),
        report.stems.len()
    );
    Ok(())
}

fn cmd_export(
    input: &Path,
    out: &Path,
    format: Format,
    loudness: bool,
    adm_version: u8,
    bake_bed_gains: bool,
) -> Result<(), Failure> {
    if !exchange::is_master_path(out) {
        return Err(bad_input(anyhow!(
            "--out {}: allowed a file name ending in .wav (or .bwf, .bw64, .rf64)",
            out.display()
        )));
    }
    let (scene, notes) = load_input(input, None)?;
    for w in &notes {
        eprintln!("halo: warning: {w}");
    }
    let options = exchange::ExportOptions {
        format: write_format(format),
        measure_loudness: loudness,
        profile: if adm_version == 2 {
            exchange::AdmProfile::Bs2076_2
        } else {
            exchange::AdmProfile::DolbyAtmosMaster
        },
        bake_bed_gains,
    };
    let report = exchange::export(&scene, out, &options)
        .with_context(|| format!("exporting {}", input.display()))
        .map_err(classify)?;
    for w in &report.warnings {
        eprintln!("halo: warning: {w}");
    }
    outln!(
        "wrote {}: {} tracks, {:.1} s",
        report.path.display(),
        report.tracks,
        report.frames as f64 / scene.sample_rate as f64
    );
    if let Some(l) = &report.loudness {
        outln!(
            "  loudnessMetadata (7.1.4 render): {} LUFS integrated, {} dBTP true peak, {} LU range",
            fmt_level(l.integrated_lufs),
            fmt_level(l.true_peak_dbtp),
            fmt_level(l.range_lu)
        );
    }
    Ok(())
}

struct RenderFlags {
    format: Format,
    binaural: bool,
    hrtf: Option<PathBuf>,
    strict: bool,
    threshold: f64,
    block: usize,
    threads: usize,
    fast_binaural: bool,
    min_importance: Option<u8>,
}

fn cmd_render(
    session: &Path,
    programme: Option<&str>,
    complementary: &[String],
    layouts: &[String],
    out: &Path,
    flags: RenderFlags,
) -> Result<(), Failure> {
    let block = flags.block;
    if !(flags.threshold.is_finite() && flags.threshold > 0.0) {
        return Err(bad_input(anyhow!(
            "--threshold {}: allowed a positive number of dB",
            flags.threshold
        )));
    }
    let (mut scene, notes) = if complementary.is_empty() {
        load_input(session, programme)?
    } else if exchange::is_master_path(session) {
        let master = exchange::read_master_choosing(session, programme, complementary)
            .map_err(|e| classify(e.into()))?;
        let notes = master
            .warnings
            .iter()
            .map(|w| format!("ADM: {w}"))
            .collect();
        (master.scene, notes)
    } else {
        return Err(bad_input(anyhow!(
            "--complementary: {} is a session, not an ADM master; allowed: --complementary only with a .wav master",
            session.display()
        )));
    };
    let mut notes = notes;
    if let Some(min) = flags.min_importance {
        let n = scene.mute_below_importance(min);
        notes.push(format!(
            "--min-importance {min}: {n} object(s) of lower importance left out"
        ));
    }
    if !layouts.is_empty() && exchange::is_master_path(session) {
        // A master's default outputs (7.1.4, binaural, stereo) are halo's choice, not the
        // user's: with --layout it renders only what was asked (--binaural for headphones).
        scene
            .outputs
            .retain(|o| matches!(o, halo::OutputSpec::Speakers { .. }));
    }
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
    if out.exists() && !out.is_dir() {
        return Err(bad_input(anyhow!(
            "--out {}: exists and is not a directory; allowed: a directory (created if missing)",
            out.display()
        )));
    }
    let created = io::create_dir_all(out).map_err(|e| classify(e.into()))?;
    if created {
        io::note_dir(out);
    }
    let report = render_scene(&scene, layouts, out, &flags, notes);
    if created && report.is_err() {
        io::remove_empty_dir(out);
    }
    io::forget_dir(out);
    let report = report?;
    print_summary(&report);
    if flags.strict {
        let failures = report.strict_failures();
        if !failures.is_empty() {
            for f in &failures {
                eprintln!("halo: strict: {f}");
            }
            return Err(Failure {
                code: 3,
                error: anyhow!("{} delivery check(s) failed (--strict)", failures.len()),
            });
        }
    }
    Ok(())
}

fn render_scene(
    scene: &halo::Scene,
    layouts: Option<Vec<Layout>>,
    out: &Path,
    flags: &RenderFlags,
    notes: Vec<String>,
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
    options.block_frames = flags.block;
    options.threads = flags.threads;
    options.fast_binaural = flags.fast_binaural;
    options.binaural = flags.binaural;
    options.hrtf = flags.hrtf.clone();
    options.threshold_db = flags.threshold;
    options.format = write_format(flags.format);
    options.progress = Some(&mut progress);
    let (mut report, mut pending) = render::render_uncommitted(scene, &mut options)
        .with_context(|| format!("rendering {}", scene.origin.display()))
        .map_err(classify)?;
    report.warnings.splice(0..0, notes);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // The outputs and their report appear together, or nothing changes.
    pending.push(render::pending_report(&report, out).map_err(|e| classify(e.into()))?);
    io::commit_all(pending)
        .with_context(|| format!("writing the outputs in {}", out.display()))
        .map_err(classify)?;
    // The QC page and its series, rebuilt from the committed report.
    report::write_page(&report, out)?;
    Ok(report)
}

fn fmt_db(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:+.1}"),
        Some(_) => "-inf".into(),
        None => "—".into(),
    }
}

fn fmt_level(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "-inf".into()
    }
}

fn print_summary(report: &render::RenderReport) {
    for w in &report.warnings {
        eprintln!("halo: warning: {w}");
    }
    outln!(
        "rendered {:.1} s in {:.2} s ({:.0}× real time)",
        report.duration_s,
        report.render_s,
        report.realtime_factor
    );
    outln!(
        "  {:<30} {:>3}  {:>8} {:>6} {:>8} {:>7}  target",
        "output",
        "ch",
        "LUFS",
        "LRA",
        "dBTP",
        "peak"
    );
    for o in &report.outputs {
        let peak = o
            .peak_dbfs
            .iter()
            .flatten()
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let target = match &o.target {
            None => String::new(),
            Some(t) if t.pass => format!("{} ok", t.target.name),
            Some(t) => format!("{} MISSED: {}", t.target.name, t.misses.join("; ")),
        };
        outln!(
            "  {:<30} {:>3}  {:>8} {:>6.1} {:>8} {:>7}  {target}",
            o.file.display().to_string(),
            o.channels.len(),
            fmt_level(o.loudness.integrated_lufs),
            o.loudness.range_lu,
            fmt_level(o.loudness.true_peak_dbtp),
            fmt_level(peak),
        );
        if let Some(img) = &o.image {
            outln!(
                "      correlation min {}, {:.0}% of the time below 0; mono loss {} dB",
                img.min_correlation
                    .map_or("—".into(), |c| format!("{c:+.2}")),
                img.share_negative * 100.0,
                fmt_db(img.mono_loss_db)
            );
        }
        if let Some(line) = render::clip_line(o) {
            outln!("      CLIPPING: {line}");
        }
        for w in &o.warnings {
            outln!("      note: {w}");
        }
    }
    if let Some(t) = &report.translation {
        outln!("translation against {}:", t.reference);
        outln!(
            "  loudness: stereo {} LU, binaural {} LU; heights {:.0}% of the mix ({} dB in stereo), rears {:.0}% ({} dB in stereo)",
            fmt_db(t.stereo_loudness_delta_lu),
            fmt_db(t.binaural_loudness_delta_lu),
            t.height_share * 100.0,
            fmt_db(t.height_in_stereo_db),
            t.rear_share * 100.0,
            fmt_db(t.rear_in_stereo_db),
        );
        outln!(
            "  {:<20} {:>9} {:>9} {:>9}  flags",
            "object",
            "immersive",
            "stereo",
            "binaural"
        );
        for o in &t.objects {
            outln!(
                "  {:<20} {:>9} {:>9} {:>9}  {}",
                o.name,
                fmt_db(o.immersive_db),
                fmt_db(o.stereo_delta_db),
                fmt_db(o.binaural_delta_db),
                o.flags.join("; ")
            );
        }
        for b in &t.beds {
            outln!(
                "  bed {:<16} {:>9} {:>9} {:>9}  {}",
                b.name,
                fmt_db(b.immersive_db),
                fmt_db(b.stereo_delta_db),
                "",
                b.flags.join("; ")
            );
        }
        if t.failures.is_empty() {
            outln!("  no translation problems above ±{:.1} dB", t.threshold_db);
        }
    }
    report::print_pointer(report);
}

fn cmd_loudness(file: &Path, layout: Option<&str>, json: bool) -> Result<(), Failure> {
    let mut reader = io::WavReader::open(file).map_err(|e| classify(e.into()))?;
    let info = reader.info().clone();
    let layout = match layout {
        Some(l) => resolve_layout(l).map_err(bad_input)?,
        None => info
            .channel_mask
            .and_then(|m| Layout::from_wav_mask(m, info.channels))
            .or_else(|| {
                Layout::builtins()
                    .into_iter()
                    .find(|l| l.num_channels() == info.channels)
            })
            .ok_or_else(|| {
                bad_input(anyhow!(
                    "{}: cannot tell the layout of {} channels; give --layout",
                    file.display(),
                    info.channels
                ))
            })?,
    };
    if layout.num_channels() != info.channels {
        return Err(bad_input(anyhow!(
            "{}: {} channels, but layout {} has {}",
            file.display(),
            info.channels,
            layout.name,
            layout.num_channels()
        )));
    }
    let mut meter =
        loudness::Meter::new(&layout, info.sample_rate).map_err(|e| bad_input(e.into()))?;
    // The file is in WAV (mask) order when its mask matches the layout's.
    let order = match (info.channel_mask, layout.wav_channel_mask()) {
        (Some(m), Some(l)) if m == l => layout.wav_order(),
        _ => (0..info.channels).collect(),
    };
    let n = info.channels;
    let mut buf = vec![0.0f32; 4800 * n];
    let mut planar = vec![vec![0.0f32; 4800]; n];
    loop {
        let frames = reader.read(&mut buf).map_err(|e| classify(e.into()))?;
        if frames == 0 {
            break;
        }
        for (k, &c) in order.iter().enumerate() {
            for f in 0..frames {
                planar[c][f] = buf[f * n + k];
            }
        }
        let chans: Vec<&[f32]> = planar.iter().map(|c| &c[..frames]).collect();
        meter
            .process_planar(&chans)
            .map_err(|e| classify(e.into()))?;
    }
    let r = meter.report();
    if json {
        let v = serde_json::json!({"file": file, "layout": layout.name, "loudness": r});
        outln!("{v}");
    } else {
        outln!(
            "{} ({}, {} Hz)",
            file.display(),
            layout.name,
            info.sample_rate
        );
        outln!("  integrated      {} LUFS", fmt_level(r.integrated_lufs));
        outln!("  loudness range  {:.1} LU", r.range_lu);
        outln!("  true peak       {} dBTP", fmt_level(r.true_peak_dbtp));
        outln!("  sample peak     {} dBFS", fmt_level(r.sample_peak_dbfs));
        outln!("  max momentary   {} LUFS", fmt_level(r.max_momentary_lufs));
        outln!(
            "  max short-term  {} LUFS",
            fmt_level(r.max_short_term_lufs)
        );
    }
    Ok(())
}

fn parse_position(text: &str, cart: bool) -> Result<Position> {
    let nums: Vec<f64> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>().map_err(|_| {
                anyhow!(
                    "'{}' in position '{}' is not a number",
                    quote(s),
                    quote(text)
                )
            })
        })
        .collect::<Result<_>>()?;
    if nums.iter().any(|v| !v.is_finite()) {
        return Err(anyhow!(
            "position '{}' has a value that is not finite",
            quote(text)
        ));
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
            "position '{}': expected az,el (degrees; with --cart: x,y,z)",
            quote(text)
        )),
        (true, _) => Err(anyhow!(
            "position '{}': expected x,y,z with --cart",
            quote(text)
        )),
    }
}

fn cmd_gains(
    layout: &str,
    size: f64,
    cart: bool,
    controls: Option<&str>,
    stdin: bool,
    positions: &[String],
) -> Result<(), Failure> {
    let controls = match controls {
        None => None,
        Some(text) => Some(parse_controls(text).map_err(bad_input)?),
    };
    let layout = resolve_layout(layout).map_err(bad_input)?;
    if !(0.0..=1.0).contains(&size) {
        return Err(bad_input(anyhow!(
            "--size {size}: allowed 0 (point) … 1 (whole room)"
        )));
    }
    let calc = halo::gains::GainCalc::new(&layout).map_err(|e| bad_input(e.into()))?;
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
    let mut diffuse_rows = Vec::with_capacity(lines.len());
    let mut gains = vec![0.0; calc.num_channels()];
    let mut diffuse = vec![0.0; calc.num_channels()];
    for (i, line) in lines.iter().enumerate() {
        let pos = parse_position(line, cart)
            .with_context(|| format!("position {}", i + 1))
            .map_err(bad_input)?;
        // ITU-R BS.2127 gains (a polar distance below 1 widens the extent, as in the
        // standard).
        match &controls {
            Some(c) => {
                calc.object_gains(&layout, pos, size, c, &mut gains, &mut diffuse);
                diffuse_rows.push(diffuse.clone());
            }
            None => calc.position_gains(pos, size, &mut gains),
        }
        rows.push(gains.clone());
    }
    let mut json = serde_json::json!({
        "layout": layout.name,
        "channels": layout.labels(),
        "gains": rows,
    });
    if controls.is_some() {
        json["diffuse"] = serde_json::json!(diffuse_rows);
    }
    outln!("{json}");
    Ok(())
}

/// `--controls`: the fields of a session object's BS.2127 controls, checked by the
/// session parser (as the controls of a one-object session).
fn parse_controls(text: &str) -> Result<halo::ObjectControls> {
    let inner = text.trim();
    let inner = inner
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(inner);
    let session = format!(
        "Session(objects: [(name: \"gains\", source: \"gains.wav\", \
         position: Polar(az: 0), {inner})], outputs: [])"
    );
    let scene = halo::session::parse(&session, std::path::Path::new("--controls"), &mut |_| {
        Err("no layout files here".into())
    })
    .with_context(|| format!("--controls {text:?}"))?;
    Ok(scene.objects[0].controls.clone())
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
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for l in &layouts {
        outln!(
            "{} ({}): {} channels",
            l.name,
            l.aliases.join(", "),
            l.num_channels()
        );
        for (i, c) in l.channels.iter().enumerate() {
            let pos = if c.lfe {
                "LFE".to_string()
            } else {
                format!("az {:>6.1}°  el {:>5.1}°", c.azimuth_deg, c.elevation_deg)
            };
            outln!("  {:>2} {:<4} {:<6} {pos}", i + 1, c.label, c.name);
        }
    }
    Ok(())
}

/// The layouts `halo demo` renders.
const DEMO_LAYOUTS: [&str; 8] = [
    "2.0", "5.1", "7.1", "5.1.2", "5.1.4", "7.1.2", "7.1.4", "9.1.6",
];

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
    // The original eight built-ins (not the layouts without LFE or the larger ITU
    // systems added later): the demo and its renders stay as they were.
    let names = DEMO_LAYOUTS.to_vec();
    let session_path = out.join("session.ron");
    io::write_atomic(&session_path, demo::session_text(rate, &names).as_bytes())
        .map_err(|e| classify(e.into()))?;
    eprintln!(
        "halo demo: rendering {} to {}",
        session_path.display(),
        names.join(", ")
    );
    let scene = load_session(&session_path).map_err(classify)?;
    let flags = RenderFlags {
        format: Format::Pcm24,
        binaural: false,
        hrtf: None,
        strict: false,
        threshold: 3.0,
        block: render::RENDER_BLOCK_FRAMES,
        threads: 0,
        fast_binaural: false,
        min_importance: None,
    };
    let report = render_scene(&scene, None, out, &flags, Vec::new())?;
    print_summary(&report);
    outln!(
        "session: {}  (edit it and run `halo render {} --out {}`)",
        session_path.display(),
        session_path.display(),
        out.display()
    );
    Ok(())
}

#[cfg(feature = "playback")]
fn cmd_play(
    session: &Path,
    programme: Option<&str>,
    monitor: &str,
    device: Option<&str>,
    start: f64,
    buffer: Option<u32>,
) -> Result<(), Failure> {
    use halo::playback::{self, Monitor, PlayOptions};
    let (monitor, layout) = match monitor {
        "binaural" => (Monitor::Binaural, None),
        "stereo" => (Monitor::Stereo, None),
        other => (
            Monitor::Speakers,
            Some(
                resolve_layout(other)
                    .with_context(|| {
                        format!("--monitor {other}: allowed binaural, stereo or a layout")
                    })
                    .map_err(bad_input)?,
            ),
        ),
    };
    let (scene, notes) = load_input(session, programme)?;
    for n in &notes {
        eprintln!("halo: warning: {n}");
    }
    let options = PlayOptions {
        monitor,
        layout,
        start_s: start,
        ..PlayOptions::default()
    };
    playback::play_in_terminal(&scene, options, device, buffer).map_err(|e| {
        let code = if e.is_bad_input() { 2 } else { 1 };
        Failure {
            code,
            error: e.into(),
        }
    })
}

#[cfg(not(feature = "playback"))]
fn cmd_play(
    _session: &Path,
    _programme: Option<&str>,
    _monitor: &str,
    _device: Option<&str>,
    _start: f64,
    _buffer: Option<u32>,
) -> Result<(), Failure> {
    Err(bad_input(anyhow!(
        "halo was built without the `playback` feature; rebuild with `cargo run --release --features playback -- play …` (on Linux first install libasound2-dev and pkg-config)"
    )))
}
