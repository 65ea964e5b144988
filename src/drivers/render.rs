//! Offline rendering: streams a session's sources (resampled to the session rate), runs
//! the engine block by block, writes every output as WAVE_FORMAT_EXTENSIBLE atomically
//! (all outputs or none), and reports what it did.
//!
//! This module sits between `session` (what to render), `io` (files) and `engine` (how to
//! render), so that the engine never sees a file and the session never sees audio.

use crate::drivers::parallel::{Inputs, ParallelEngine, Span};
pub use crate::drivers::plan::RenderError;
use crate::drivers::plan::{bed_config, chain, fold_config, load_hrtf, object_configs};
pub use crate::drivers::sources::SourceReport;
use crate::drivers::sources::Sources;
use crate::dsp::ProcessorSettings;
use crate::engine::{self, EngineConfig, EngineError, OutputConfig};
use crate::formats::io::{self, PendingFile, WavSpec, WavWriter, WriteFormat};
use crate::measure::loudness::{LoudnessReport, Meter, Target};
use crate::measure::timeline::{self, Timeline};
use crate::measure::translation::{
    self, BedTracker, BedTranslation, ObjectTracker, ObjectTranslation, ObjectWindow, StereoImage,
    StereoMeter,
};
use crate::scene::geometry::{Direction, Position};
use crate::scene::layout::Layout;
use crate::scene::mix::{BinauralMode, OutputSpec, Scene, TargetSpec};
use crate::spatial::binaural::HrtfSet;
use crate::spatial::downmix::{FoldDown, FoldKind, FoldStep};
use crate::spatial::panner::Panner;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Frames per engine call in offline renders.
pub const RENDER_BLOCK_FRAMES: usize = 1024;

/// What to render and where.
pub struct RenderOptions<'a> {
    /// Folder the output files are written to.
    pub out_dir: PathBuf,
    /// Speaker layouts to render instead of the session's speaker outputs.
    pub layouts: Option<Vec<Layout>>,
    /// Also render a binaural output (if the session has none), with this HRTF file
    /// (None: the session's or the built-in set).
    pub binaural: bool,
    /// HRTF file (SOFA) for binaural outputs; `None`: the session's or the built-in set.
    pub hrtf: Option<PathBuf>,
    /// Threshold for flagging objects in the translation report, dB.
    pub threshold_db: f64,
    /// Sample format of the written files.
    pub format: WriteFormat,
    /// Frames per engine call (default [`RENDER_BLOCK_FRAMES`]).
    pub block_frames: usize,
    /// Called after each block with (frames done, frames total).
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// False: render, meter and analyse, but write no file (the report names the files
    /// a render would have written). `halo export` measures loudness this way.
    pub write_files: bool,
    /// Threads to render on (0: every core). The outputs are identical whatever the count
    /// (see `drivers::parallel`).
    pub threads: usize,
    /// Binaural outputs through long HRTF partitions (`ParallelEngine::new_offline`):
    /// ≈ 1.6× faster; static sources render the same convolution (within float
    /// rounding), moving sources' filters follow every partition (21 ms at 48 kHz)
    /// instead of every 6.75 ms, so the output is no longer the frames `halo play` plays.
    pub fast_binaural: bool,
}

impl RenderOptions<'_> {
    /// Defaults for rendering into `out_dir`: the session's outputs, 24-bit PCM, every core.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        RenderOptions {
            out_dir: out_dir.into(),
            layouts: None,
            binaural: false,
            hrtf: None,
            threshold_db: translation::DEFAULT_THRESHOLD_DB,
            format: WriteFormat::Pcm24,
            block_frames: RENDER_BLOCK_FRAMES,
            progress: None,
            write_files: true,
            threads: 0,
            fast_binaural: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub kind: String,
    pub file: PathBuf,
    pub layout: String,
    pub channels: Vec<String>,
    pub frames: u64,
    pub format: String,
    /// Sample peak per channel in dBFS (layout order; −∞ written as null).
    pub peak_dbfs: Vec<Option<f64>>,
    /// Samples over full scale before conversion (none: `samples_over` 0).
    pub clipping: ClipReport,
    pub warnings: Vec<String>,
    pub realtime_factor: f64,
    /// Frames of latency of the whole render (compensated: files start at time 0).
    pub latency_frames: usize,
    pub loudness: LoudnessReport,
    pub target: Option<TargetReport>,
    /// Stereo and binaural outputs: correlation over time and mono loss.
    pub image: Option<StereoImage>,
    /// Stereo outputs: each fold-down step's coefficients.
    pub fold_steps: Vec<FoldStep>,
}

/// Samples of one output over full scale (|x| > 1) before conversion: clipped in an
/// integer file, "overs" in a float file (which keeps them, but a player clips them).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClipReport {
    /// Samples over full scale, all channels.
    pub samples_over: u64,
    /// Time of the first one, s.
    pub first_over_s: Option<f64>,
    /// Largest |sample|, dBFS (over 0 when anything clipped).
    pub peak_dbfs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target: Target,
    pub pass: bool,
    pub misses: Vec<String>,
}

/// How the fold-down and the headphone version differ from the immersive render.
#[derive(Debug, Clone, Serialize)]
pub struct TranslationReport {
    /// The immersive output everything is compared with.
    pub reference: String,
    pub threshold_db: f64,
    /// Integrated loudness of stereo / binaural minus the immersive output, LU.
    pub stereo_loudness_delta_lu: Option<f64>,
    pub binaural_loudness_delta_lu: Option<f64>,
    /// True peak of the stereo output (after its chain) and whether it is over −1 dBTP
    /// or its target's ceiling.
    pub stereo_true_peak_dbtp: Option<f64>,
    pub stereo_over: bool,
    /// Share of the immersive render's energy in its heights and rears (0 … 1).
    pub height_share: f64,
    pub rear_share: f64,
    /// How much of the heights' and rears' energy the stereo fold-down keeps, dB.
    pub height_in_stereo_db: Option<f64>,
    pub rear_in_stereo_db: Option<f64>,
    pub objects: Vec<ObjectTranslation>,
    pub beds: Vec<BedTranslation>,
    /// Everything `--strict` fails on.
    pub failures: Vec<String>,
}

/// What a render did: timing, sources, each output's loudness, the translation analysis.
#[derive(Debug, Clone, Serialize)]
pub struct RenderReport {
    /// The session file rendered.
    pub session: PathBuf,
    /// Sample rate of the outputs, Hz.
    pub sample_rate: u32,
    /// Length rendered, frames.
    pub frames: u64,
    /// Length rendered, seconds.
    pub duration_s: f64,
    /// Wall-clock time the render took, seconds.
    pub render_s: f64,
    /// `duration_s / render_s`: how many times faster than real time.
    pub realtime_factor: f64,
    /// Each object's and bed's source file.
    pub sources: Vec<SourceReport>,
    /// Each output: its file and its loudness (BS.1770-4).
    pub outputs: Vec<OutputReport>,
    /// Fold-down and binaural versions against the immersive mix; `None`: no analysis ran.
    pub translation: Option<TranslationReport>,
    /// Problems that did not stop the render.
    pub warnings: Vec<String>,
    /// The time series for the QC page (written as `timeline.json`, not in the report).
    #[serde(skip)]
    pub timeline: Timeline,
}

impl RenderReport {
    /// Every target miss and translation failure, for `--strict`.
    pub fn strict_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.outputs {
            if let Some(line) = clip_line(o) {
                out.push(format!("{}: {line}", o.file.display()));
            }
            if let Some(t) = &o.target {
                for m in &t.misses {
                    out.push(format!(
                        "{}: {} target: {m}",
                        o.file.display(),
                        t.target.name
                    ));
                }
            }
        }
        if let Some(t) = &self.translation {
            out.extend(t.failures.iter().cloned());
        }
        out
    }
}

/// One line on an output's samples over full scale ("clipped" in integer files, "overs"
/// in float files), or `None` when there are none.
pub fn clip_line(o: &OutputReport) -> Option<String> {
    let c = &o.clipping;
    if c.samples_over == 0 {
        return None;
    }
    let what = if o.format == "f32" {
        "over full scale (overs; a player will clip them)"
    } else {
        "over full scale, clipped in the file"
    };
    Some(format!(
        "{} sample(s) {what}, first at {:.3} s, peak {:+.2} dBFS",
        c.samples_over,
        c.first_over_s.unwrap_or(0.0),
        c.peak_dbfs.unwrap_or(0.0)
    ))
}

/// A fold-down's in-phase matrix and, for Lt/Rt, its quadrature (90°) matrix.
type FoldMatrices = (Vec<Vec<f64>>, Option<Vec<Vec<f64>>>);

/// A binaural output as the session gives it: HRTF file, LFE level, chain, target.
type BinauralPlan = (
    Option<PathBuf>,
    Option<f64>,
    Vec<ProcessorSettings>,
    Option<TargetSpec>,
);

/// One output a render writes.
struct Planned {
    kind: &'static str,
    file_name: String,
    layout: Layout,
    config: OutputConfig,
    target: Option<Target>,
    fold_steps: Vec<FoldStep>,
    /// Stereo outputs: the fold-down's in-phase and quadrature matrices and its source.
    fold: Option<(Layout, FoldMatrices)>,
    notes: Vec<String>,
}

/// A file name for a layout's render: its name with anything but `[A-Za-z0-9.+_-]` as `_`.
pub fn output_file_name(layout: &Layout) -> String {
    let clean: String = layout
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{clean}.wav")
}

fn target(spec: &Option<TargetSpec>, output: &str) -> Result<Option<Target>, RenderError> {
    match spec {
        None => Ok(None),
        Some(TargetSpec::Preset(name)) => {
            Target::preset(name)
                .map(Some)
                .map_err(|source| RenderError::Target {
                    output: output.to_string(),
                    source,
                })
        }
        Some(TargetSpec::Custom {
            integrated_lufs,
            tolerance_lu,
            max_integrated_lufs,
            true_peak_dbtp,
        }) => Ok(Some(Target {
            name: "custom".into(),
            integrated_lufs: *integrated_lufs,
            tolerance_lu: *tolerance_lu,
            max_integrated_lufs: *max_integrated_lufs,
            max_true_peak_dbtp: *true_peak_dbtp,
        })),
    }
}

/// `name` (`X.wav`), or `X-2.wav`, `X-3.wav` … when an earlier output has it: two
/// outputs of one kind are both rendered, never one dropped.
fn distinct_name(planned: &[Planned], name: &str) -> String {
    let taken = |n: &str| planned.iter().any(|p| p.file_name == n);
    if !taken(name) {
        return name.to_string();
    }
    let stem = name.strip_suffix(".wav").unwrap_or(name);
    (2..)
        .map(|k| format!("{stem}-{k}.wav"))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

fn plan_outputs(scene: &Scene, options: &RenderOptions) -> Result<Vec<Planned>, RenderError> {
    let rate = scene.sample_rate;
    let stereo =
        Layout::builtin("2.0").map_err(|_| RenderError::Nothing("no 2.0 layout".into()))?;
    let mut planned = Vec::new();
    // Speakers: the override list, else the session's (with their chains and targets).
    let speakers: Vec<(Layout, Vec<ProcessorSettings>, Option<TargetSpec>)> = match &options.layouts
    {
        Some(list) => list
            .iter()
            .map(|l| {
                let from_session = scene.outputs.iter().find_map(|o| match o {
                    OutputSpec::Speakers {
                        layout,
                        chain,
                        target,
                    } if layout.name == l.name => Some((chain.clone(), target.clone())),
                    _ => None,
                });
                let (chain, target) = from_session.unwrap_or_default();
                (l.clone(), chain, target)
            })
            .collect(),
        None => scene
            .outputs
            .iter()
            .filter_map(|o| match o {
                OutputSpec::Speakers {
                    layout,
                    chain,
                    target,
                } => Some((layout.clone(), chain.clone(), target.clone())),
                _ => None,
            })
            .collect(),
    };
    for (layout, specs, tspec) in speakers {
        let file_name = distinct_name(&planned, &output_file_name(&layout));
        planned.push(Planned {
            kind: "speakers",
            target: target(&tspec, &file_name)?,
            config: OutputConfig::Speakers {
                layout: layout.clone(),
                chain: chain(&specs, options.format),
            },
            file_name,
            layout,
            fold_steps: Vec::new(),
            fold: None,
            notes: Vec::new(),
        });
    }
    // Binaural: the session's, or one added by --binaural.
    let mut binaural: Vec<BinauralPlan> = scene
        .outputs
        .iter()
        .filter_map(|o| match o {
            OutputSpec::Binaural {
                hrtf,
                lfe_db,
                chain,
                target,
            } => Some((hrtf.clone(), *lfe_db, chain.clone(), target.clone())),
            _ => None,
        })
        .collect();
    if binaural.is_empty() && options.binaural {
        binaural.push((None, None, Vec::new(), None));
    }
    for (hrtf_path, lfe_db, specs, tspec) in binaural {
        let path = options.hrtf.clone().or(hrtf_path);
        let hrtf = load_hrtf(path.as_deref(), rate)?;
        let mut notes = vec![format!(
            "HRTF set: {} ({} directions, {} taps at {} Hz)",
            hrtf.name(),
            hrtf.num_directions(),
            hrtf.len_taps(),
            rate
        )];
        notes.push(match lfe_db {
            None => "LFE left out of the binaural render (set lfe_db on the Binaural output to include it)".into(),
            Some(db) => format!("LFE mixed into both ears at {db:+.1} dB"),
        });
        let file_name = distinct_name(&planned, "binaural.wav");
        planned.push(Planned {
            kind: "binaural",
            target: target(&tspec, &file_name)?,
            file_name,
            layout: stereo.clone(),
            config: OutputConfig::Binaural {
                hrtf,
                lfe_db,
                chain: chain(&specs, options.format),
            },
            fold_steps: Vec::new(),
            fold: None,
            notes,
        });
    }
    // Stereo fold-downs.
    for o in &scene.outputs {
        let OutputSpec::Stereo {
            from,
            fold,
            chain: specs,
            target: tspec,
        } = o
        else {
            continue;
        };
        let file_name = distinct_name(&planned, "stereo.wav");
        let cfg = fold_config(fold);
        let fd =
            FoldDown::new(from, &stereo, &cfg, rate, options.block_frames).map_err(|source| {
                RenderError::Engine(EngineError::FoldDown {
                    output: file_name.clone(),
                    source,
                })
            })?;
        planned.push(Planned {
            kind: "stereo",
            target: target(tspec, &file_name)?,
            layout: stereo.clone(),
            config: OutputConfig::Stereo {
                from: from.clone(),
                fold: cfg.clone(),
                chain: chain(specs, options.format),
            },
            fold_steps: fd.steps().to_vec(),
            fold: Some((
                from.clone(),
                (
                    fd.matrix().to_vec(),
                    fd.quadrature_matrix().map(|q| q.to_vec()),
                ),
            )),
            notes: vec![format!(
                "{} fold-down of the {} render",
                match cfg.kind {
                    FoldKind::LoRo => "Lo/Ro",
                    FoldKind::LtRt => "Lt/Rt",
                },
                from.name
            )],
            file_name,
        });
    }
    Ok(planned)
}

/// Per-object analysis for the translation report: the reference layout's panner, the
/// fold-down matrices and the HRTF set, evaluated once per window.
struct Analysis {
    panner: Panner,
    fold: Option<FoldMatrices>,
    hrtf: Option<Arc<HrtfSet>>,
    stereo_panner: Panner,
    frontal_energy: f64,
    window_frames: u64,
    trackers: Vec<ObjectTracker>,
    /// Per object: sum of squares in the current window.
    power: Vec<f64>,
    filled: u64,
    windows: usize,
    gains: Vec<f64>,
    hl: Vec<f32>,
    hr: Vec<f32>,
}

impl Analysis {
    fn hrtf_energy(&mut self, dir: Direction) -> f64 {
        let Some(h) = &self.hrtf else { return 1.0 };
        h.hrir(dir, &mut self.hl, &mut self.hr);
        self.hl
            .iter()
            .chain(&self.hr)
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            / 2.0
    }

    fn close_window(
        &mut self,
        scene: &Scene,
        end_frame: u64,
        threshold_db: f64,
        bin_room: &crate::scene::geometry::RoomMap,
    ) {
        let rate = scene.sample_rate as f64;
        let start = end_frame - self.filled;
        let mid = (start + end_frame) as f64 / 2.0;
        for (i, obj) in scene.objects.iter().enumerate() {
            let power = self.power[i] / self.filled.max(1) as f64;
            self.power[i] = 0.0;
            if obj.mute {
                continue;
            }
            let pos = obj.position.value_at(mid);
            let size = obj.size.value_at(mid).clamp(0.0, 1.0);
            let level = 10f64.powf(obj.gain_db.value_at(mid) / 10.0);
            self.panner.position_gains(pos, size, &mut self.gains);
            let immersive_gain: f64 = self.gains.iter().map(|g| g * g).sum();
            let (stereo_gain, mono_gain) = match &self.fold {
                Some((m, q)) => {
                    let (s, mono) = translation::fold_gains(&self.gains, m, q.as_deref());
                    (Some(s), Some(mono))
                }
                None => (None, None),
            };
            let binaural_gain = if self.hrtf.is_some() {
                if obj.binaural == BinauralMode::Off {
                    let mut g2 = [0.0; 2];
                    self.stereo_panner.position_gains(pos, size, &mut g2);
                    Some(g2[0] * g2[0] + g2[1] * g2[1])
                } else {
                    let dir = match pos {
                        Position::Cartesian { x, y, z } => {
                            bin_room.cartesian_to_direction(x, y, z).direction
                        }
                        Position::Polar {
                            azimuth_deg,
                            elevation_deg,
                            ..
                        } => Direction::new(azimuth_deg, elevation_deg),
                    };
                    Some(self.hrtf_energy(dir) / self.frontal_energy)
                }
            } else {
                None
            };
            self.trackers[i].add(
                &ObjectWindow {
                    start_s: start as f64 / rate,
                    end_s: end_frame as f64 / rate,
                    power: power * level,
                    immersive_gain,
                    stereo_gain,
                    mono_gain,
                    binaural_gain,
                },
                threshold_db,
            );
        }
        self.windows += 1;
        self.filled = 0;
    }
}

/// Renders a scene to `options.out_dir`.
/// One output's destination: its meter, the numbers the report needs, and its file.
struct Sink {
    meter: Meter,
    /// Stereo image over time (binaural and stereo outputs).
    image: Option<StereoMeter>,
    /// Per channel (layout order): sum of squares and peak.
    energy: Vec<f64>,
    peaks: Vec<f32>,
    /// Frames taken so far, and the samples over full scale among them.
    taken_frames: u64,
    samples_over: u64,
    first_over_frame: Option<u64>,
    /// One block in file order.
    interleaved: Vec<f32>,
    /// File channel → layout channel.
    order: Vec<usize>,
    file_name: String,
    path: PathBuf,
    writer: Option<WavWriter>,
}

impl Sink {
    /// Meters, measures and writes `range` of a rendered block (channels in layout order).
    fn take(&mut self, out: &[Vec<f32>], range: std::ops::Range<usize>) -> Result<(), RenderError> {
        let keep = range.len();
        if keep == 0 {
            return Ok(());
        }
        let nch = out.len();
        let planar: Vec<&[f32]> = out.iter().map(|c| &c[range.clone()]).collect();
        self.meter
            .process_planar(&planar)
            .map_err(|source| RenderError::Meter {
                output: self.file_name.clone(),
                source,
            })?;
        if let Some(img) = self.image.as_mut() {
            img.add(planar[0], planar[1]);
        }
        for (e, ch) in self.energy.iter_mut().zip(&planar) {
            *e += ch.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>();
        }
        let buf = &mut self.interleaved;
        for (k, &c) in self.order.iter().enumerate() {
            let peak = &mut self.peaks[c];
            // Eight running maxima (a maximum is exact, so the order does not matter),
            // then the channel into its slot of the interleaved frames.
            let mut top = [0.0f32; 8];
            let mut eights = planar[c].chunks_exact(8);
            for x in &mut eights {
                for (t, v) in top.iter_mut().zip(x) {
                    *t = t.max(v.abs());
                }
            }
            for v in eights.remainder() {
                top[0] = top[0].max(v.abs());
            }
            *peak = top.iter().fold(*peak, |m, &t| m.max(t));
            for (slot, &x) in buf[k..keep * nch].iter_mut().step_by(nch).zip(planar[c]) {
                *slot = x;
            }
            if *peak > 1.0 {
                let over = planar[c].iter().filter(|x| x.abs() > 1.0).count() as u64;
                if over > 0 {
                    self.samples_over += over;
                    let first = planar[c].iter().position(|x| x.abs() > 1.0).unwrap_or(0);
                    let at = self.taken_frames + first as u64;
                    self.first_over_frame =
                        Some(self.first_over_frame.map_or(at, |f: u64| f.min(at)));
                }
            }
        }
        self.taken_frames += keep as u64;
        if let Some(writer) = self.writer.as_mut() {
            writer
                .write(&buf[..keep * nch])
                .map_err(|source| RenderError::Output {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Renders `scene` to every output (on threads), meters each, and analyses translation.
pub fn render(scene: &Scene, options: &mut RenderOptions) -> Result<RenderReport, RenderError> {
    let (report, pending) = render_uncommitted(scene, options)?;
    io::commit_all(pending).map_err(|source| RenderError::Output {
        path: options.out_dir.clone(),
        source,
    })?;
    Ok(report)
}

/// Every file a render reads: the session (or master), its sources and HRTF sets.
pub fn input_paths(scene: &Scene, options: &RenderOptions) -> Vec<PathBuf> {
    let mut inputs = vec![scene.origin.clone()];
    inputs.extend(scene.objects.iter().map(|o| o.source.path.clone()));
    inputs.extend(scene.beds.iter().map(|b| b.source.clone()));
    inputs.extend(options.hrtf.clone());
    for o in &scene.outputs {
        if let OutputSpec::Binaural {
            hrtf: Some(path), ..
        } = o
        {
            inputs.push(path.clone());
        }
    }
    inputs
}

/// [`render`] without the last step: the files are complete under temp names, to be
/// moved into place with [`io::commit_all`] together with the caller's own (the report).
pub fn render_uncommitted(
    scene: &Scene,
    options: &mut RenderOptions,
) -> Result<(RenderReport, Vec<PendingFile>), RenderError> {
    let started = Instant::now();
    let rate = scene.sample_rate;
    let planned = plan_outputs(scene, options)?;
    if planned.is_empty() {
        return Err(RenderError::Nothing(
            "the session has no outputs and no --layout or --binaural was given".into(),
        ));
    }

    // Open every source first: bad input fails before any output file exists.
    let mut sources = Sources::open(scene, rate, options.block_frames)?;
    let source_reports = sources.reports.clone();
    let total_frames = scene.duration_frames.unwrap_or_else(|| sources.frames());
    if total_frames == 0 {
        return Err(RenderError::Nothing(
            "the session is empty: no source has any audio and no duration is given".into(),
        ));
    }

    // By default the binaural path uses `halo play`'s live partitions (324 frames for the
    // default set), so that a render is exactly what the monitor played
    // (tests/playback.rs).
    let build = if options.fast_binaural {
        ParallelEngine::new_offline
    } else {
        ParallelEngine::new
    };
    let mut engine = build(
        EngineConfig {
            sample_rate: rate,
            max_block_frames: options.block_frames,
            objects: object_configs(scene),
            beds: scene.beds.iter().map(bed_config).collect(),
            outputs: planned.iter().map(|p| p.config.clone()).collect(),
        },
        options.threads,
    )?;
    let mut warnings: Vec<String> = Vec::new();
    for s in &source_reports {
        if s.resampled {
            warnings.push(format!(
                "'{}': {} is at {} Hz; resampled to {} Hz",
                s.name,
                s.file.display(),
                s.sample_rate,
                rate
            ));
        }
    }

    // Translation analysis.
    let reference = planned
        .iter()
        .find_map(|p| p.fold.as_ref().map(|f| f.0.clone()))
        .or_else(|| {
            planned
                .iter()
                .find(|p| p.kind == "speakers")
                .map(|p| p.layout.clone())
        })
        .unwrap_or_else(|| Layout::builtin("7.1.4").expect("built-in 7.1.4"));
    let has_stereo = planned.iter().any(|p| p.kind == "stereo");
    let bin_hrtf = planned.iter().find_map(|p| match &p.config {
        OutputConfig::Binaural { hrtf, .. } => Some(hrtf.clone()),
        _ => None,
    });
    let translate = has_stereo || bin_hrtf.is_some();
    let bin_room = Layout::builtin("7.1.4")
        .map(|l| l.room_map())
        .unwrap_or_default();
    // Series for the QC page, decimated to a bounded number of points.
    let window_frames = ((translation::WINDOW_S * rate as f64) as u64).max(1);
    let object_bucket = timeline::bucket_steps(
        total_frames.div_ceil(window_frames),
        timeline::MAX_OBJECT_POINTS,
    );
    let loudness_bucket = timeline::bucket_steps(
        total_frames / (rate as u64).div_ceil(10),
        timeline::MAX_OUTPUT_POINTS,
    );
    let correlation_frames = ((translation::CORRELATION_WINDOW_S * rate as f64) as u64).max(1);
    let correlation_bucket = timeline::bucket_steps(
        total_frames.div_ceil(correlation_frames),
        timeline::MAX_OUTPUT_POINTS,
    );
    let mut analysis = if translate {
        let panner = Panner::new(&reference).map_err(|source| {
            RenderError::Engine(EngineError::Panner {
                layout: reference.name.clone(),
                source,
            })
        })?;
        let stereo_panner =
            Panner::new(&Layout::builtin("2.0").expect("built-in 2.0")).map_err(|source| {
                RenderError::Engine(EngineError::Panner {
                    layout: "2.0".into(),
                    source,
                })
            })?;
        let taps = bin_hrtf.as_ref().map_or(0, |h| h.len_taps());
        let mut a = Analysis {
            gains: vec![0.0; panner.num_channels()],
            panner,
            fold: planned
                .iter()
                .find_map(|p| p.fold.as_ref().map(|f| f.1.clone())),
            hrtf: bin_hrtf.clone(),
            stereo_panner,
            frontal_energy: 1.0,
            window_frames: ((translation::WINDOW_S * rate as f64) as u64).max(1),
            trackers: scene
                .objects
                .iter()
                .map(|o| {
                    let mut t = ObjectTracker::new(&o.name, has_stereo, bin_hrtf.is_some());
                    t.keep_history(object_bucket);
                    t
                })
                .collect(),
            power: vec![0.0; scene.objects.len()],
            filled: 0,
            windows: 0,
            hl: vec![0.0; taps],
            hr: vec![0.0; taps],
        };
        a.frontal_energy = a.hrtf_energy(Direction::new(0.0, 0.0)).max(1e-30);
        Some(a)
    } else {
        None
    };
    let stereo_fold_cfg = planned.iter().find_map(|p| match &p.config {
        OutputConfig::Stereo { fold, .. } => Some(fold.clone()),
        _ => None,
    });
    let mut bed_trackers = Vec::new();
    if let Some(cfg) = &stereo_fold_cfg {
        let two = Layout::builtin("2.0").expect("built-in 2.0");
        for bed in &scene.beds {
            let matrix = if bed.layout.same_channels(&two) {
                vec![vec![1.0, 0.0], vec![0.0, 1.0]]
            } else {
                match FoldDown::new(&bed.layout, &two, cfg, rate, options.block_frames) {
                    Ok(f) => f.matrix().to_vec(),
                    Err(e) => {
                        warnings.push(format!("bed '{}': no fold-down analysis: {e}", bed.name));
                        continue;
                    }
                }
            };
            let counted = bed.layout.channels.iter().map(|c| !c.lfe).collect();
            bed_trackers.push((
                bed_trackers.len(),
                BedTracker::new(&bed.name, matrix, counted),
            ));
        }
    }

    // Outputs: never one of the inputs; temp files until everything succeeded.
    if options.write_files {
        let mut outs: Vec<PathBuf> = planned
            .iter()
            .map(|p| options.out_dir.join(&p.file_name))
            .collect();
        outs.push(options.out_dir.join(REPORT_FILE));
        io::check_outputs(&input_paths(scene, options), &outs).map_err(|source| {
            RenderError::Output {
                path: options.out_dir.clone(),
                source,
            }
        })?;
        // Temp files of earlier runs that were killed (best effort).
        let _ = io::remove_stale_temp(&options.out_dir);
    }
    let block = options.block_frames;
    let mut sinks = Vec::with_capacity(planned.len());
    let mut out_warnings = Vec::with_capacity(planned.len());
    for p in &planned {
        let path = options.out_dir.join(&p.file_name);
        let spec = WavSpec {
            channels: p.layout.num_channels(),
            sample_rate: rate,
            format: options.format,
            channel_mask: p.layout.wav_channel_mask(),
        };
        let writer = if options.write_files {
            Some(
                WavWriter::create(&path, spec).map_err(|source| RenderError::Output {
                    path: path.clone(),
                    source,
                })?,
            )
        } else {
            None
        };
        let mut meter = Meter::new(&p.layout, rate).map_err(|source| RenderError::Meter {
            output: p.file_name.clone(),
            source,
        })?;
        meter.keep_history(loudness_bucket);
        let nch = p.layout.num_channels();
        sinks.push(Sink {
            meter,
            image: (p.kind != "speakers").then(|| {
                let mut m = StereoMeter::new(rate);
                m.keep_history(correlation_bucket);
                m
            }),
            energy: vec![0.0; nch],
            peaks: vec![0.0; nch],
            taken_frames: 0,
            samples_over: 0,
            first_over_frame: None,
            interleaved: vec![0.0; block * nch],
            order: p.layout.wav_order(),
            file_name: p.file_name.clone(),
            path,
            writer,
        });
        let mut w: Vec<String> = if p.kind == "speakers" {
            scene
                .beds
                .iter()
                .flat_map(|b| engine::bed_warnings(&bed_config(b), &p.layout))
                .collect()
        } else {
            Vec::new()
        };
        if p.layout.wav_channel_mask().is_none() {
            w.push(format!(
                "layout {} has channels without a WAVE_FORMAT_EXTENSIBLE position: channel mask 0, channels in layout order",
                p.layout.name
            ));
        }
        w.extend(p.notes.iter().cloned());
        out_warnings.push(w);
    }

    let latency = engine.latency() as u64;
    // Input frames to feed: the whole session, then the engine's latency to flush it.
    let to_feed = total_frames + latency;
    let mut fed: u64 = 0;
    let n_objects = scene.objects.len();
    // The caller's thread reads the sources and analyses them; the engines render, meter and
    // write on their own threads (see `parallel`).
    let produce = |inputs: &mut Inputs| -> Result<Option<usize>, RenderError> {
        if fed >= to_feed {
            return Ok(None);
        }
        let frames = block;
        sources.read_into(frames, &mut inputs.objects[..n_objects], &mut inputs.beds)?;
        // Translation analysis on the inputs (only up to the session's end).
        let live = (total_frames.saturating_sub(fed)).min(frames as u64) as usize;
        if let Some(a) = analysis.as_mut() {
            let mut f = 0;
            while f < live {
                let take = ((a.window_frames - a.filled) as usize).min(live - f);
                for (power, x) in a.power.iter_mut().zip(&inputs.objects) {
                    *power += x[f..f + take]
                        .iter()
                        .map(|&v| (v as f64) * (v as f64))
                        .sum::<f64>();
                }
                a.filled += take as u64;
                f += take;
                if a.filled == a.window_frames {
                    a.close_window(scene, fed + f as u64, options.threshold_db, &bin_room);
                }
            }
        }
        for (b, tracker) in bed_trackers.iter_mut() {
            let chans: Vec<&[f32]> = inputs.beds[*b].iter().map(|c| &c[..live]).collect();
            let bed = &scene.beds[*b];
            let gain = if bed.mute {
                0.0
            } else {
                10f64.powf(bed.gain_db / 20.0)
            };
            tracker.add(&chans, gain);
        }
        fed += frames as u64;
        if let Some(progress) = options.progress.as_mut() {
            progress(fed.saturating_sub(latency).min(total_frames), total_frames);
        }
        Ok(Some(frames))
    };
    // Skip the first `latency` frames so outputs line up with the inputs; stop at the end.
    let sink = |_: usize, out: &[Vec<f32>], sink: &mut Sink, span: Span| {
        let skip = latency.saturating_sub(span.start).min(span.frames as u64);
        let out_start = (span.start + skip).saturating_sub(latency);
        let keep = (span.frames as u64 - skip).min(total_frames.saturating_sub(out_start));
        sink.take(out, skip as usize..(skip + keep) as usize)
    };
    engine.run(&mut sinks, produce, sink)?;
    if let Some(a) = analysis.as_mut()
        && a.filled > 0
    {
        a.close_window(scene, total_frames, options.threshold_db, &bin_room);
    }

    // Everything rendered: finish all files, then move them into place together.
    let object_histories: Vec<_> = analysis
        .as_mut()
        .map(|a| a.trackers.iter_mut().map(|t| t.take_history()).collect())
        .unwrap_or_default();
    let mut pending: Vec<(PathBuf, Option<PendingFile>)> = Vec::with_capacity(sinks.len());
    let mut meters = Vec::with_capacity(sinks.len());
    let mut images = Vec::with_capacity(sinks.len());
    let mut energy = Vec::with_capacity(sinks.len());
    let mut peaks = Vec::with_capacity(sinks.len());
    let mut clips = Vec::with_capacity(sinks.len());
    for sink in sinks {
        meters.push(sink.meter);
        images.push(sink.image);
        energy.push(sink.energy);
        let top = sink.peaks.iter().fold(0.0f32, |a, &b| a.max(b));
        clips.push(ClipReport {
            samples_over: sink.samples_over,
            first_over_s: sink.first_over_frame.map(|f| f as f64 / rate as f64),
            peak_dbfs: (top > 0.0).then(|| 20.0 * f64::from(top).log10()),
        });
        peaks.push(sink.peaks);
        let path = sink.path;
        let file = match sink.writer {
            Some(w) => Some(w.finish().map_err(|source| RenderError::Output {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        pending.push((path, file));
    }
    let files: Vec<PathBuf> = pending.iter().map(|(path, _)| path.clone()).collect();
    let pending: Vec<PendingFile> = pending.into_iter().filter_map(|(_, p)| p).collect();

    let render_s = started.elapsed().as_secs_f64();
    let duration_s = total_frames as f64 / rate as f64;
    let realtime_factor = duration_s / render_s.max(1e-9);
    let mut outputs = Vec::with_capacity(planned.len());
    let mut output_series = Vec::with_capacity(planned.len());
    for ((((((p, file), peak), warnings), meter), image), clipping) in planned
        .iter()
        .zip(files)
        .zip(peaks)
        .zip(out_warnings)
        .zip(meters.iter_mut())
        .zip(images)
        .zip(clips)
    {
        let (image, correlation) = match image.map(|m| m.finish_with_history()) {
            Some((image, c)) => (Some(image), c.unwrap_or_default()),
            None => (None, Vec::new()),
        };
        output_series.push((meter.take_history(), correlation));
        let loudness = meter.report();
        let target = p.target.as_ref().map(|t| {
            let misses = t.check(&loudness);
            TargetReport {
                target: t.clone(),
                pass: misses.is_empty(),
                misses,
            }
        });
        outputs.push(OutputReport {
            kind: p.kind.into(),
            file,
            layout: p.layout.name.clone(),
            channels: p.layout.labels().iter().map(|s| s.to_string()).collect(),
            frames: total_frames,
            format: match options.format {
                WriteFormat::Pcm24 => "pcm24".into(),
                WriteFormat::F32 => "f32".into(),
                WriteFormat::Pcm16 => "pcm16".into(),
            },
            peak_dbfs: peak
                .iter()
                .map(|&p| (p > 0.0).then(|| 20.0 * (p as f64).log10()))
                .collect(),
            clipping,
            warnings,
            realtime_factor,
            latency_frames: latency as usize,
            loudness,
            target,
            image,
            fold_steps: p.fold_steps.clone(),
        });
    }
    let translation = analysis.map(|a| {
        let windows = a.windows;
        translation_report(
            &reference,
            &outputs,
            &energy,
            &planned,
            a.trackers.into_iter().map(|t| t.finish(windows)).collect(),
            bed_trackers
                .into_iter()
                .map(|(_, t)| t.finish(total_frames, options.threshold_db))
                .collect(),
            options.threshold_db,
        )
    });
    let timeline = page_timeline(
        scene,
        options,
        &reference,
        &planned,
        &energy,
        output_series,
        object_histories,
        [loudness_bucket, correlation_bucket, object_bucket],
        total_frames,
    );
    let report = RenderReport {
        timeline,
        session: scene.origin.clone(),
        sample_rate: rate,
        frames: total_frames,
        duration_s,
        render_s,
        realtime_factor,
        sources: source_reports,
        outputs,
        translation,
        warnings,
    };
    Ok((report, pending))
}

#[allow(clippy::too_many_arguments)]
fn translation_report(
    reference: &Layout,
    outputs: &[OutputReport],
    energy: &[Vec<f64>],
    planned: &[Planned],
    objects: Vec<ObjectTranslation>,
    beds: Vec<BedTranslation>,
    threshold_db: f64,
) -> TranslationReport {
    let find = |kind: &str| outputs.iter().position(|o| o.kind == kind);
    let immersive = outputs
        .iter()
        .position(|o| o.kind == "speakers" && o.layout == reference.name);
    let stereo = find("stereo");
    let binaural = find("binaural");
    let integrated = |i: Option<usize>| {
        i.map(|i| outputs[i].loudness.integrated_lufs)
            .filter(|v| v.is_finite())
    };
    let delta = |i: Option<usize>| match (integrated(i), integrated(immersive)) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let stereo_tp = stereo.map(|i| outputs[i].loudness.true_peak_dbtp);
    let ceiling = stereo
        .and_then(|i| outputs[i].target.as_ref())
        .and_then(|t| t.target.max_true_peak_dbtp)
        .unwrap_or(-1.0);
    let stereo_over = stereo_tp.is_some_and(|tp| tp > ceiling);
    let matrix = planned
        .iter()
        .find_map(|p| p.fold.as_ref().map(|f| f.1.0.clone()));
    // Heights (elevation > 10°) and rears (ear level, |azimuth| ≥ 100°) of the immersive
    // render: their share of its energy, and how much of it the fold-down keeps (its
    // coefficients squared, channels counted as uncorrelated).
    let (mut height_share, mut rear_share) = (0.0, 0.0);
    let (mut height_in_stereo_db, mut rear_in_stereo_db) = (None, None);
    if let Some(i) = immersive {
        let e = &energy[i];
        let total: f64 = reference
            .channels
            .iter()
            .zip(e)
            .filter(|(c, _)| !c.lfe)
            .map(|(_, e)| e)
            .sum();
        let mut groups = [(0.0f64, 0.0f64); 2];
        for (c, (ch, &en)) in reference.channels.iter().zip(e).enumerate() {
            if ch.lfe {
                continue;
            }
            let g = if ch.elevation_deg > 10.0 {
                0
            } else if ch.azimuth_deg.abs() >= 100.0 {
                1
            } else {
                continue;
            };
            let kept = matrix
                .as_ref()
                .map_or(0.0, |m| m[0][c] * m[0][c] + m[1][c] * m[1][c]);
            groups[g].0 += en;
            groups[g].1 += en * kept;
        }
        if total > 0.0 {
            height_share = groups[0].0 / total;
            rear_share = groups[1].0 / total;
        }
        let kept_db = |(e, k): (f64, f64)| {
            (e > 0.0 && matrix.is_some()).then(|| 10.0 * (k / e).max(1e-20).log10())
        };
        height_in_stereo_db = kept_db(groups[0]);
        rear_in_stereo_db = kept_db(groups[1]);
    }
    let mut failures = Vec::new();
    if stereo_over {
        failures.push(format!(
            "stereo fold-down true peak {:.1} dBTP is over {ceiling:.1} dBTP",
            stereo_tp.unwrap_or(0.0)
        ));
    }
    for o in &objects {
        for f in &o.flags {
            failures.push(format!("object '{}': {f}", o.name));
        }
    }
    for b in &beds {
        for f in &b.flags {
            failures.push(format!("bed '{}': {f}", b.name));
        }
    }
    TranslationReport {
        reference: reference.name.clone(),
        threshold_db,
        stereo_loudness_delta_lu: delta(stereo),
        binaural_loudness_delta_lu: delta(binaural),
        stereo_true_peak_dbtp: stereo_tp,
        stereo_over,
        height_share,
        rear_share,
        height_in_stereo_db,
        rear_in_stereo_db,
        objects,
        beds,
        failures,
    }
}

/// Writes the report as pretty JSON beside the outputs (atomically).
pub fn write_report(report: &RenderReport, dir: &Path) -> Result<PathBuf, RenderError> {
    let pending = pending_report(report, dir)?;
    let path = pending.path().to_path_buf();
    io::commit_all(vec![pending]).map_err(|source| RenderError::Output {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The name of the report written beside the outputs.
pub const REPORT_FILE: &str = "report.json";

/// The report as pretty JSON under a temp name in `dir`, to commit with the outputs.
pub fn pending_report(report: &RenderReport, dir: &Path) -> Result<PendingFile, RenderError> {
    let path = dir.join(REPORT_FILE);
    let text =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    io::pending_bytes(&path, text.as_bytes()).map_err(|source| RenderError::Output {
        path: path.clone(),
        source,
    })
}

/// The QC page's series (see [`crate::measure::timeline`]): each output's loudness, true
/// peak and correlation as its meters kept them, each channel's level, and each object's
/// path (from its automation) and level changes (from its translation tracker).
#[allow(clippy::too_many_arguments)]
fn page_timeline(
    scene: &Scene,
    options: &RenderOptions,
    reference: &Layout,
    planned: &[Planned],
    energy: &[Vec<f64>],
    series: Vec<(
        Option<crate::measure::timeline::LoudnessHistory>,
        Vec<Option<f32>>,
    )>,
    objects: Vec<Option<translation::ObjectHistory>>,
    [loudness_bucket, correlation_bucket, object_bucket]: [usize; 3],
    total_frames: u64,
) -> Timeline {
    let rate = scene.sample_rate as f64;
    let speakers = |l: &Layout| {
        l.channels
            .iter()
            .map(|c| timeline::Speaker {
                label: c.label.clone(),
                azimuth_deg: c.azimuth_deg,
                elevation_deg: c.elevation_deg,
                lfe: c.lfe,
            })
            .collect::<Vec<_>>()
    };
    let frames = total_frames.max(1) as f64;
    let outputs = planned
        .iter()
        .zip(energy)
        .zip(series)
        .map(|((p, e), (h, correlation))| {
            let (momentary, short_term, true_peak) = h.map_or_else(Default::default, |h| {
                (
                    h.momentary.finish(),
                    h.short_term.finish(),
                    h.true_peak.finish(),
                )
            });
            timeline::OutputTimeline {
                file: p.file_name.clone(),
                kind: p.kind.into(),
                layout: p.layout.name.clone(),
                loudness_step_s: timeline::LOUDNESS_STEP_S * loudness_bucket as f64,
                momentary_lufs: momentary,
                short_term_lufs: short_term,
                true_peak_dbtp: true_peak,
                correlation_step_s: translation::CORRELATION_WINDOW_S * correlation_bucket as f64,
                correlation,
                speakers: speakers(&p.layout),
                channel_rms_dbfs: e
                    .iter()
                    .map(|&e| (e > 0.0).then(|| timeline::round_coord(10.0 * (e / frames).log10())))
                    .collect(),
            }
        })
        .collect();
    let step_frames = translation::WINDOW_S * rate * object_bucket as f64;
    let points = (total_frames as f64 / step_frames).ceil().max(1.0) as usize;
    let mut histories = objects.into_iter();
    let objects = scene
        .objects
        .iter()
        .map(|o| {
            let mut xyz = [Vec::new(), Vec::new(), Vec::new()];
            let mut size = Vec::with_capacity(points);
            for k in 0..points {
                let frame = k as f64 * step_frames;
                let p = match o.position.value_at(frame) {
                    Position::Cartesian { x, y, z } => [x, y, z],
                    Position::Polar {
                        azimuth_deg,
                        elevation_deg,
                        distance,
                    } => timeline::polar_to_room(azimuth_deg, elevation_deg, distance),
                };
                for (c, v) in xyz.iter_mut().zip(p) {
                    c.push(timeline::round_coord(v));
                }
                size.push(timeline::round_coord(o.size.value_at(frame)));
            }
            let [x, y, z] = xyz;
            let h = histories.next().flatten();
            let (level_db, stereo_delta_db, binaural_delta_db) =
                h.map_or_else(Default::default, |h| {
                    (
                        h.level_db.finish(),
                        h.stereo_delta_db.finish(),
                        h.binaural_delta_db.finish(),
                    )
                });
            let moves = !(o.position.is_constant() && o.size.is_constant());
            let keep = |v: Vec<f32>| if moves { v } else { timeline::squeeze(v) };
            timeline::ObjectTimeline {
                name: o.name.clone(),
                muted: o.mute,
                step_s: step_frames / rate,
                x: keep(x),
                y: keep(y),
                z: keep(z),
                size: keep(size),
                level_db,
                stereo_delta_db,
                binaural_delta_db,
            }
        })
        .collect();
    let mut settings = vec![
        (
            "sample rate".to_string(),
            format!("{} Hz", scene.sample_rate),
        ),
        (
            "format".to_string(),
            match options.format {
                WriteFormat::Pcm24 => "24-bit PCM".into(),
                WriteFormat::F32 => "32-bit float".into(),
                WriteFormat::Pcm16 => "16-bit PCM".into(),
            },
        ),
        (
            "translation threshold".to_string(),
            format!("{:.1} dB", options.threshold_db),
        ),
        (
            "block".to_string(),
            format!("{} frames", options.block_frames),
        ),
        (
            "threads".to_string(),
            if options.threads == 0 {
                "every core".into()
            } else {
                options.threads.to_string()
            },
        ),
    ];
    if let Some(h) = &options.hrtf {
        settings.push(("HRTF".to_string(), h.display().to_string()));
    }
    Timeline {
        halo_version: env!("CARGO_PKG_VERSION").to_string(),
        settings,
        reference_layout: reference.name.clone(),
        reference_speakers: speakers(reference),
        outputs,
        objects,
    }
}
