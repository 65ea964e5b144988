//! Offline rendering: streams a session's sources (resampled to the session rate), runs
//! the engine block by block, writes every output as WAVE_FORMAT_EXTENSIBLE atomically
//! (all outputs or none), and reports what it did.
//!
//! This module sits between `session` (what to render), `io` (files) and `engine` (how to
//! render), so that the engine never sees a file and the session never sees audio.

use crate::drivers::parallel::{Inputs, ParallelEngine, Span};
use crate::dsp::ProcessorSettings;
use crate::engine::{self, BedConfig, EngineConfig, EngineError, ObjectConfig, OutputConfig};
use crate::formats::io::{
    self, IoError, PendingFile, SourceStream, WavSpec, WavWriter, WriteFormat,
};
use crate::measure::loudness::{LoudnessError, LoudnessReport, Meter, Target};
use crate::measure::translation::{
    self, BedTracker, BedTranslation, ObjectTracker, ObjectTranslation, ObjectWindow, StereoImage,
    StereoMeter,
};
use crate::scene::geometry::{Direction, Position};
use crate::scene::layout::Layout;
use crate::scene::mix::{BinauralMode, FoldMatrix, FoldSpec, OutputSpec, Scene, TargetSpec};
use crate::spatial::binaural::{BinauralError, HrtfSet};
use crate::spatial::downmix::{FoldDown, FoldDownConfig, FoldKind, FoldStep};
use crate::spatial::panner::Panner;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;

/// Frames per engine call in offline renders.
pub const RENDER_BLOCK_FRAMES: usize = 1024;

/// Errors of an offline render; each names the object, bed, output or file concerned.
#[derive(Debug, Error)]
pub enum RenderError {
    /// An object's source file cannot be read.
    #[error("object '{object}': {source}")]
    ObjectSource {
        /// The object's name.
        object: String,
        /// The read error.
        #[source]
        source: IoError,
    },
    /// An object's source has several channels and no channel was chosen.
    #[error(
        "object '{object}': source {path} has {channels} channels; an object is mono: give `source: (file: \"…\", channel: N)` with N in 1…{channels}"
    )]
    NotMono {
        /// The object's name.
        object: String,
        /// The source file.
        path: PathBuf,
        /// Its channel count.
        channels: usize,
    },
    /// An object's source channel is beyond the file's channels.
    #[error(
        "object '{object}': source {path} has {channels} channels, so channel {channel} does not exist (allowed: 1…{channels})"
    )]
    NoSuchChannel {
        /// The object's name.
        object: String,
        /// The source file.
        path: PathBuf,
        /// Its channel count.
        channels: usize,
        /// The channel asked for, counted from 1.
        channel: usize,
    },
    /// A bed's channel map names a channel beyond the file's channels.
    #[error(
        "bed '{bed}': source {path} has {channels} channels, so channel {channel} does not exist (allowed: 1…{channels})"
    )]
    BedNoSuchChannel {
        /// The bed's name.
        bed: String,
        /// The source file.
        path: PathBuf,
        /// Its channel count.
        channels: usize,
        /// The channel asked for, counted from 1.
        channel: usize,
    },
    /// A bed's source file cannot be read.
    #[error("bed '{bed}': {source}")]
    BedSource {
        /// The bed's name.
        bed: String,
        /// The read error.
        #[source]
        source: IoError,
    },
    /// A bed's file has not as many channels as its layout (and no channel map).
    #[error(
        "bed '{bed}': source {path} has {channels} channels but its layout {layout} has {expected} ({labels})"
    )]
    BedChannels {
        /// The bed's name.
        bed: String,
        /// The source file.
        path: PathBuf,
        /// Its channel count.
        channels: usize,
        /// The bed's layout name.
        layout: String,
        /// The layout's channel count.
        expected: usize,
        /// The layout's channel labels, comma-separated.
        labels: String,
    },
    /// An output file cannot be written.
    #[error("output {path}: {source}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// The write error.
        #[source]
        source: IoError,
    },
    /// The engine refused the configuration.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The HRTF set is invalid.
    #[error("HRTF set {origin}: {source}")]
    Hrtf {
        /// Where the set came from (a file path or the built-in set's name).
        origin: String,
        /// What is wrong with it.
        #[source]
        source: BinauralError,
    },
    /// The HRTF file cannot be read.
    #[error("HRTF set: {0}")]
    HrtfFile(#[source] IoError),
    /// An output's loudness target is invalid (an unknown preset).
    #[error("output {output}: target: {source}")]
    Target {
        /// The output's name.
        output: String,
        /// What is wrong with the target.
        #[source]
        source: LoudnessError,
    },
    /// An output's loudness meter cannot be built or run.
    #[error("output {output}: {source}")]
    Meter {
        /// The output's name.
        output: String,
        /// The meter's error.
        #[source]
        source: LoudnessError,
    },
    /// Nothing can be rendered (the reason).
    #[error("nothing to render: {0}")]
    Nothing(String),
}

impl RenderError {
    /// Whether the error is the user's input (exit code 2) rather than halo's (1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            RenderError::Engine(EngineError::Config { .. }) => false,
            RenderError::Meter { .. } => false,
            RenderError::Output { source, .. } => !matches!(source, IoError::Write { .. }),
            _ => true,
        }
    }
}

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
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub file: PathBuf,
    pub sample_rate: u32,
    pub resampled: bool,
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
}

impl RenderReport {
    /// Every target miss and translation failure, for `--strict`.
    pub fn strict_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.outputs {
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

/// Who first named a source file: read errors are reported against it.
enum Owner {
    Object(String),
    Bed(String),
}

/// One opened source file. A file several objects or beds read from (the tracks of an
/// ADM master, a multichannel stem) is opened, read and resampled once per block.
struct Source {
    stream: SourceStream,
    channels: usize,
    scratch: Vec<f32>,
    finished: bool,
    owner: Owner,
}

impl Source {
    fn error(&self, source: IoError) -> RenderError {
        match &self.owner {
            Owner::Object(object) => RenderError::ObjectSource {
                object: object.clone(),
                source,
            },
            Owner::Bed(bed) => RenderError::BedSource {
                bed: bed.clone(),
                source,
            },
        }
    }

    /// Reads up to `frames` frames into the scratch buffer, zero-padding past the end.
    fn fill(&mut self, frames: usize) -> Result<(), IoError> {
        let want = frames * self.channels;
        let mut got = 0;
        while !self.finished && got < want {
            let n = self.stream.read(&mut self.scratch[got..want])?;
            if n == 0 {
                self.finished = true;
            }
            got += n * self.channels;
        }
        self.scratch[got..want].fill(0.0);
        Ok(())
    }
}

/// Every source a scene reads, each distinct file opened once; objects and beds read
/// their channels from the block last read. Shared by offline rendering and export.
pub struct Sources {
    files: Vec<Source>,
    /// (file, channel) of every object.
    objects: Vec<(usize, usize)>,
    /// (file, [(file channel, layout channel)]) of every bed.
    beds: Vec<(usize, Vec<(usize, usize)>)>,
    /// One per object, then one per bed.
    pub reports: Vec<SourceReport>,
}

impl Sources {
    /// Opens the sources of `scene`, resampled to `rate`, for blocks of up to
    /// `block_frames`; checks channel numbers and bed channel counts.
    pub fn open(scene: &Scene, rate: u32, block_frames: usize) -> Result<Sources, RenderError> {
        let mut source_reports = Vec::new();
        let mut files: Vec<Source> = Vec::new();
        let mut open = |path: &Path, owner: Owner| -> Result<usize, RenderError> {
            if let Some(i) = files.iter().position(|f| f.stream.path() == path) {
                return Ok(i);
            }
            let stream = SourceStream::open(path, rate).map_err(|source| match &owner {
                Owner::Object(object) => RenderError::ObjectSource {
                    object: object.clone(),
                    source,
                },
                Owner::Bed(bed) => RenderError::BedSource {
                    bed: bed.clone(),
                    source,
                },
            })?;
            let channels = stream.info().channels;
            files.push(Source {
                channels,
                scratch: vec![0.0; block_frames * channels],
                stream,
                finished: false,
                owner,
            });
            Ok(files.len() - 1)
        };
        // (file, channel) of every object.
        let mut object_src: Vec<(usize, usize)> = Vec::with_capacity(scene.objects.len());
        for obj in &scene.objects {
            let file = open(&obj.source.path, Owner::Object(obj.name.clone()))?;
            object_src.push((file, 0));
        }
        // (file, [(file channel, layout channel)]) of every bed.
        let mut bed_src: Vec<(usize, Vec<(usize, usize)>)> = Vec::with_capacity(scene.beds.len());
        for bed in &scene.beds {
            let file = open(&bed.source, Owner::Bed(bed.name.clone()))?;
            bed_src.push((file, Vec::new()));
        }
        for (obj, (file, channel)) in scene.objects.iter().zip(object_src.iter_mut()) {
            let src = &files[*file];
            let channels = src.channels;
            let name = &obj.name;
            *channel = match obj.source.channel {
                None if channels == 1 => 0,
                None => {
                    return Err(RenderError::NotMono {
                        object: name.clone(),
                        path: obj.source.path.clone(),
                        channels,
                    });
                }
                Some(c) if c >= channels => {
                    return Err(RenderError::NoSuchChannel {
                        object: name.clone(),
                        path: obj.source.path.clone(),
                        channels,
                        channel: c + 1,
                    });
                }
                Some(c) => c,
            };
            source_reports.push(SourceReport {
                name: name.clone(),
                file: obj.source.path.clone(),
                sample_rate: src.stream.info().sample_rate,
                resampled: src.stream.resampled(),
            });
        }
        for (bed, (file, map)) in scene.beds.iter().zip(bed_src.iter_mut()) {
            let name = &bed.name;
            let src = &files[*file];
            let channels = src.channels;
            if let Some(list) = &bed.channels {
                // An explicit map (an ADM master's bed tracks): file channel per layout channel.
                if let Some(&c) = list.iter().find(|&&c| c >= channels) {
                    return Err(RenderError::BedNoSuchChannel {
                        bed: name.clone(),
                        path: bed.source.clone(),
                        channels,
                        channel: c + 1,
                    });
                }
                *map = list
                    .iter()
                    .enumerate()
                    .map(|(layout_ch, &file_ch)| (file_ch, layout_ch))
                    .collect();
            } else {
                if channels != bed.layout.num_channels() {
                    return Err(RenderError::BedChannels {
                        bed: name.clone(),
                        path: bed.source.clone(),
                        channels,
                        layout: bed.layout.name.clone(),
                        expected: bed.layout.num_channels(),
                        labels: bed.layout.labels().join(" "),
                    });
                }
                // A file whose mask matches the layout is in mask (WAV) order; otherwise the
                // file is taken to be in the layout's own order.
                let order = match (
                    src.stream.info().channel_mask,
                    bed.layout.wav_channel_mask(),
                ) {
                    (Some(m), Some(l)) if m == l => bed.layout.wav_order(),
                    _ => (0..channels).collect(),
                };
                *map = order.into_iter().enumerate().collect();
            }
            source_reports.push(SourceReport {
                name: name.clone(),
                file: bed.source.clone(),
                sample_rate: src.stream.info().sample_rate,
                resampled: src.stream.resampled(),
            });
        }
        Ok(Sources {
            files,
            objects: object_src,
            beds: bed_src,
            reports: source_reports,
        })
    }

    /// Frames of the longest source (at the render rate).
    pub fn frames(&self) -> u64 {
        self.files
            .iter()
            .map(|s| s.stream.frames())
            .max()
            .unwrap_or(0)
    }

    /// Moves every file to `frame` (at the render rate), for live playback's seeks.
    pub fn seek(&mut self, frame: u64) -> Result<(), RenderError> {
        for src in self.files.iter_mut() {
            let to = frame.min(src.stream.frames());
            if let Err(e) = src.stream.seek(to) {
                return Err(src.error(e));
            }
            src.finished = false;
        }
        Ok(())
    }

    /// Reads the next `frames` frames of every file (silence past a file's end).
    pub fn read_block(&mut self, frames: usize) -> Result<(), RenderError> {
        for src in self.files.iter_mut() {
            if let Err(e) = src.fill(frames) {
                return Err(src.error(e));
            }
        }
        Ok(())
    }

    /// Object `i`'s samples of the block last read, into `out` (`out.len()` frames).
    pub fn object(&self, i: usize, out: &mut [f32]) {
        let (file, ch) = self.objects[i];
        let src = &self.files[file];
        for (f, x) in out.iter_mut().enumerate() {
            *x = src.scratch[f * src.channels + ch];
        }
    }

    /// Channel `layout_ch` (layout order) of bed `b`, of the block last read, into `out`.
    pub fn bed_channel(&self, b: usize, layout_ch: usize, out: &mut [f32]) {
        let (file, map) = &self.beds[b];
        let src = &self.files[*file];
        match map.iter().find(|&&(_, l)| l == layout_ch) {
            Some(&(file_ch, _)) => {
                for (f, x) in out.iter_mut().enumerate() {
                    *x = src.scratch[f * src.channels + file_ch];
                }
            }
            None => out.fill(0.0),
        }
    }
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

/// The master chain of an output; dither only where the file is integer PCM.
pub(crate) fn chain(specs: &[ProcessorSettings], format: WriteFormat) -> Vec<ProcessorSettings> {
    specs
        .iter()
        .filter(|s| !(matches!(s, ProcessorSettings::Dither(_)) && format == WriteFormat::F32))
        .cloned()
        .collect()
}

pub fn fold_config(spec: &FoldSpec) -> FoldDownConfig {
    FoldDownConfig {
        kind: match spec.matrix {
            FoldMatrix::LoRo => FoldKind::LoRo,
            FoldMatrix::LtRt => FoldKind::LtRt,
        },
        center_db: spec.center_db,
        surround_db: spec.surround_db,
        rear_db: spec.rear_db,
        height_db: spec.height_db,
        lfe_db: spec.lfe_db,
    }
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

/// Loads an HRTF set: a SOFA file, or the built-in MIT KEMAR set.
pub fn load_hrtf(path: Option<&Path>, sample_rate: u32) -> Result<Arc<HrtfSet>, RenderError> {
    let set = match path {
        Some(p) => {
            let bytes = io::read_bytes(p).map_err(RenderError::HrtfFile)?;
            HrtfSet::from_sofa_bytes(&bytes, &p.display().to_string(), sample_rate).map_err(
                |source| RenderError::Hrtf {
                    origin: p.display().to_string(),
                    source,
                },
            )?
        }
        None => HrtfSet::default_set(sample_rate).map_err(|source| RenderError::Hrtf {
            origin: "built-in MIT KEMAR".into(),
            source,
        })?,
    };
    Ok(Arc::new(set))
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
        let file_name = output_file_name(&layout);
        if planned.iter().any(|p: &Planned| p.file_name == file_name) {
            continue;
        }
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
        .take(1)
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
        planned.push(Planned {
            kind: "binaural",
            file_name: "binaural.wav".into(),
            layout: stereo.clone(),
            target: target(&tspec, "binaural.wav")?,
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
    let mut n_stereo = 0;
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
        n_stereo += 1;
        let file_name = if n_stereo == 1 {
            "stereo.wav".to_string()
        } else {
            format!("stereo-{n_stereo}.wav")
        };
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
            for (f, &x) in planar[c].iter().enumerate() {
                buf[f * nch + k] = x;
                *peak = peak.max(x.abs());
            }
        }
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

    let mut engine = ParallelEngine::new(
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
                .map(|o| ObjectTracker::new(&o.name, has_stereo, bin_hrtf.is_some()))
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

    // Outputs: temp files until everything succeeded.
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
        let meter = Meter::new(&p.layout, rate).map_err(|source| RenderError::Meter {
            output: p.file_name.clone(),
            source,
        })?;
        let nch = p.layout.num_channels();
        sinks.push(Sink {
            meter,
            image: (p.kind != "speakers").then(|| StereoMeter::new(rate)),
            energy: vec![0.0; nch],
            peaks: vec![0.0; nch],
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
        sources.read_block(frames)?;
        for (i, x) in inputs.objects.iter_mut().enumerate().take(n_objects) {
            sources.object(i, &mut x[..frames]);
        }
        for (b, bed) in inputs.beds.iter_mut().enumerate() {
            for (layout_ch, x) in bed.iter_mut().enumerate() {
                sources.bed_channel(b, layout_ch, &mut x[..frames]);
            }
        }
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
    let mut pending: Vec<(PathBuf, Option<PendingFile>)> = Vec::with_capacity(sinks.len());
    let mut meters = Vec::with_capacity(sinks.len());
    let mut images = Vec::with_capacity(sinks.len());
    let mut energy = Vec::with_capacity(sinks.len());
    let mut peaks = Vec::with_capacity(sinks.len());
    for sink in sinks {
        meters.push(sink.meter);
        images.push(sink.image);
        energy.push(sink.energy);
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
    let mut files = Vec::with_capacity(pending.len());
    for (path, p) in pending {
        files.push(match p {
            Some(p) => p
                .commit()
                .map_err(|source| RenderError::Output { path, source })?,
            None => path,
        });
    }

    let render_s = started.elapsed().as_secs_f64();
    let duration_s = total_frames as f64 / rate as f64;
    let realtime_factor = duration_s / render_s.max(1e-9);
    let mut outputs = Vec::with_capacity(planned.len());
    for (((((p, file), peak), warnings), meter), image) in planned
        .iter()
        .zip(files)
        .zip(peaks)
        .zip(out_warnings)
        .zip(&meters)
        .zip(images)
    {
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
            warnings,
            realtime_factor,
            latency_frames: latency as usize,
            loudness,
            target,
            image: image.map(|m| m.finish()),
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
    Ok(RenderReport {
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
    })
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

pub(crate) fn bed_config(b: &crate::scene::mix::BedSpec) -> BedConfig {
    BedConfig {
        name: b.name.clone(),
        layout: b.layout.clone(),
        gain_db: b.gain_db,
        mute: b.mute,
    }
}

pub(crate) fn object_configs(scene: &Scene) -> Vec<ObjectConfig> {
    scene
        .objects
        .iter()
        .map(|o| ObjectConfig {
            gain_db: o.gain_db.clone(),
            position: o.position.clone(),
            size: o.size.clone(),
            mute: o.mute,
            binaural_bypass: o.binaural == BinauralMode::Off,
        })
        .collect()
}

/// Writes the report as pretty JSON beside the outputs (atomically).
pub fn write_report(report: &RenderReport, dir: &Path) -> Result<PathBuf, RenderError> {
    let path = dir.join("report.json");
    let text =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    io::write_atomic(&path, text.as_bytes()).map_err(|source| RenderError::Output {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
