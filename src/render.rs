//! Offline rendering: streams a session's sources (resampled to the session rate), runs
//! the engine block by block, writes every output as WAVE_FORMAT_EXTENSIBLE atomically
//! (all outputs or none), and reports what it did.
//!
//! This module sits between `session` (what to render), `io` (files) and `engine` (how to
//! render), so that the engine never sees a file and the session never sees audio.

use crate::engine::{
    self, BedConfig, Engine, EngineConfig, EngineError, ObjectConfig, OutputConfig,
};
use crate::io::{self, IoError, PendingFile, SourceStream, WavSpec, WavWriter, WriteFormat};
use crate::layout::Layout;
use crate::session::{OutputSpec, Scene};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

/// Frames per engine call in offline renders.
pub const RENDER_BLOCK_FRAMES: usize = 1024;

#[derive(Debug, Error)]
pub enum RenderError {
    #[error("object '{object}': {source}")]
    ObjectSource {
        object: String,
        #[source]
        source: IoError,
    },
    #[error(
        "object '{object}': source {path} has {channels} channels; an object is mono: give `source: (file: \"…\", channel: N)` with N in 1…{channels}"
    )]
    NotMono {
        object: String,
        path: PathBuf,
        channels: usize,
    },
    #[error(
        "object '{object}': source {path} has {channels} channels, so channel {channel} does not exist (allowed: 1…{channels})"
    )]
    NoSuchChannel {
        object: String,
        path: PathBuf,
        channels: usize,
        channel: usize,
    },
    #[error("bed '{bed}': {source}")]
    BedSource {
        bed: String,
        #[source]
        source: IoError,
    },
    #[error(
        "bed '{bed}': source {path} has {channels} channels but its layout {layout} has {expected} ({labels})"
    )]
    BedChannels {
        bed: String,
        path: PathBuf,
        channels: usize,
        layout: String,
        expected: usize,
        labels: String,
    },
    #[error("output {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: IoError,
    },
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("nothing to render: {0}")]
    Nothing(String),
}

impl RenderError {
    /// Whether the error is the user's input (exit code 2) rather than halo's (1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            RenderError::Engine(EngineError::Config { .. }) => false,
            RenderError::Output { source, .. } => !matches!(source, IoError::Write { .. }),
            _ => true,
        }
    }
}

/// What to render and where.
pub struct RenderOptions<'a> {
    pub out_dir: PathBuf,
    /// Speaker layouts to render instead of the session's speaker outputs.
    pub layouts: Option<Vec<Layout>>,
    pub format: WriteFormat,
    pub block_frames: usize,
    /// Called after each block with (frames done, frames total).
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
}

impl RenderOptions<'_> {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        RenderOptions {
            out_dir: out_dir.into(),
            layouts: None,
            format: WriteFormat::Pcm24,
            block_frames: RENDER_BLOCK_FRAMES,
            progress: None,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct RenderReport {
    pub session: PathBuf,
    pub sample_rate: u32,
    pub frames: u64,
    pub duration_s: f64,
    pub render_s: f64,
    pub realtime_factor: f64,
    pub sources: Vec<SourceReport>,
    pub outputs: Vec<OutputReport>,
    pub warnings: Vec<String>,
}

/// One opened source: a stream and which of its channels feed which engine inputs.
struct Source {
    stream: SourceStream,
    channels: usize,
    scratch: Vec<f32>,
    finished: bool,
}

impl Source {
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

/// The speaker layouts a render writes: the override, else the session's speaker outputs.
pub fn output_layouts(scene: &Scene, override_layouts: Option<&[Layout]>) -> Vec<Layout> {
    let mut layouts: Vec<Layout> = match override_layouts {
        Some(l) => l.to_vec(),
        None => scene
            .outputs
            .iter()
            .filter_map(|o| match o {
                OutputSpec::Speakers { layout, .. } => Some(layout.clone()),
                _ => None,
            })
            .collect(),
    };
    let mut seen: Vec<String> = Vec::new();
    layouts.retain(|l| {
        let fresh = !seen.contains(&l.name);
        seen.push(l.name.clone());
        fresh
    });
    layouts
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

/// Renders a scene to `options.out_dir`.
pub fn render(scene: &Scene, options: &mut RenderOptions) -> Result<RenderReport, RenderError> {
    let started = Instant::now();
    let rate = scene.sample_rate;
    let layouts = output_layouts(scene, options.layouts.as_deref());
    if layouts.is_empty() {
        return Err(RenderError::Nothing(
            "the session has no speaker outputs and no --layout was given".into(),
        ));
    }

    // Open every source first: bad input fails before any output file exists.
    let mut source_reports = Vec::new();
    let mut object_sources = Vec::with_capacity(scene.objects.len());
    let mut object_channel = Vec::with_capacity(scene.objects.len());
    for obj in &scene.objects {
        let stream = SourceStream::open(&obj.source.path, rate).map_err(|source| {
            RenderError::ObjectSource {
                object: obj.name.clone(),
                source,
            }
        })?;
        let channels = stream.info().channels;
        let channel = match obj.source.channel {
            None if channels == 1 => 0,
            None => {
                return Err(RenderError::NotMono {
                    object: obj.name.clone(),
                    path: obj.source.path.clone(),
                    channels,
                });
            }
            Some(c) if c >= channels => {
                return Err(RenderError::NoSuchChannel {
                    object: obj.name.clone(),
                    path: obj.source.path.clone(),
                    channels,
                    channel: c + 1,
                });
            }
            Some(c) => c,
        };
        source_reports.push(SourceReport {
            name: obj.name.clone(),
            file: obj.source.path.clone(),
            sample_rate: stream.info().sample_rate,
            resampled: stream.resampled(),
        });
        object_channel.push(channel);
        object_sources.push(Source {
            channels,
            scratch: vec![0.0; options.block_frames * channels],
            stream,
            finished: false,
        });
    }
    let mut bed_sources = Vec::with_capacity(scene.beds.len());
    let mut bed_orders = Vec::with_capacity(scene.beds.len());
    for bed in &scene.beds {
        let stream =
            SourceStream::open(&bed.source, rate).map_err(|source| RenderError::BedSource {
                bed: bed.name.clone(),
                source,
            })?;
        let channels = stream.info().channels;
        if channels != bed.layout.num_channels() {
            return Err(RenderError::BedChannels {
                bed: bed.name.clone(),
                path: bed.source.clone(),
                channels,
                layout: bed.layout.name.clone(),
                expected: bed.layout.num_channels(),
                labels: bed.layout.labels().join(" "),
            });
        }
        // A file whose mask matches the layout is in mask (WAV) order; otherwise the
        // file is taken to be in the layout's own order.
        let order = match (stream.info().channel_mask, bed.layout.wav_channel_mask()) {
            (Some(m), Some(l)) if m == l => bed.layout.wav_order(),
            _ => (0..channels).collect(),
        };
        source_reports.push(SourceReport {
            name: bed.name.clone(),
            file: bed.source.clone(),
            sample_rate: stream.info().sample_rate,
            resampled: stream.resampled(),
        });
        bed_orders.push(order);
        bed_sources.push(Source {
            channels,
            scratch: vec![0.0; options.block_frames * channels],
            stream,
            finished: false,
        });
    }
    let total_frames = scene.duration_frames.unwrap_or_else(|| {
        object_sources
            .iter()
            .chain(&bed_sources)
            .map(|s| s.stream.frames())
            .max()
            .unwrap_or(0)
    });
    if total_frames == 0 {
        return Err(RenderError::Nothing(
            "the session is empty: no source has any audio and no duration is given".into(),
        ));
    }

    let mut engine = Engine::new(engine_config(scene, &layouts, options.block_frames))?;
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

    // Outputs: temp files until everything succeeded.
    let mut writers = Vec::with_capacity(layouts.len());
    let mut out_warnings = Vec::with_capacity(layouts.len());
    for layout in &layouts {
        let path = options.out_dir.join(output_file_name(layout));
        let spec = WavSpec {
            channels: layout.num_channels(),
            sample_rate: rate,
            format: options.format,
            channel_mask: layout.wav_channel_mask(),
        };
        let writer = WavWriter::create(&path, spec).map_err(|source| RenderError::Output {
            path: path.clone(),
            source,
        })?;
        writers.push((path, writer));
        let mut w: Vec<String> = scene
            .beds
            .iter()
            .flat_map(|b| engine::bed_warnings(&bed_config(b), layout))
            .collect();
        if layout.wav_channel_mask().is_none() {
            w.push(format!(
                "layout {} has channels without a WAVE_FORMAT_EXTENSIBLE position: channel mask 0, channels in layout order",
                layout.name
            ));
        }
        out_warnings.push(w);
    }

    let latency = engine.latency() as u64;
    let block = options.block_frames;
    let mut peaks: Vec<Vec<f32>> = layouts
        .iter()
        .map(|l| vec![0.0; l.num_channels()])
        .collect();
    let mut interleaved: Vec<Vec<f32>> = layouts
        .iter()
        .map(|l| vec![0.0; block * l.num_channels()])
        .collect();
    let orders: Vec<Vec<usize>> = layouts.iter().map(|l| l.wav_order()).collect();
    let mut rendered: u64 = 0; // frames pushed through the engine
    let mut written: u64 = 0;
    while written < total_frames {
        let frames = block;
        for (i, src) in object_sources.iter_mut().enumerate() {
            src.fill(frames)
                .map_err(|source| RenderError::ObjectSource {
                    object: scene.objects[i].name.clone(),
                    source,
                })?;
            let ch = object_channel[i];
            let n = src.channels;
            let input = engine.object_input(i);
            for (f, x) in input[..frames].iter_mut().enumerate() {
                *x = src.scratch[f * n + ch];
            }
        }
        for (b, src) in bed_sources.iter_mut().enumerate() {
            src.fill(frames).map_err(|source| RenderError::BedSource {
                bed: scene.beds[b].name.clone(),
                source,
            })?;
            let n = src.channels;
            for (file_ch, &layout_ch) in bed_orders[b].iter().enumerate() {
                let input = engine.bed_input(b, layout_ch);
                for (f, x) in input[..frames].iter_mut().enumerate() {
                    *x = src.scratch[f * n + file_ch];
                }
            }
        }
        engine.process(frames);
        // Skip the first `latency` frames so outputs line up with the inputs.
        let skip = latency.saturating_sub(rendered).min(frames as u64) as usize;
        rendered += frames as u64;
        let keep = ((frames - skip) as u64).min(total_frames - written) as usize;
        if keep > 0 {
            for (o, (path, writer)) in writers.iter_mut().enumerate() {
                let out = engine.output(o);
                let nch = out.len();
                let buf = &mut interleaved[o];
                for (k, &c) in orders[o].iter().enumerate() {
                    let peak = &mut peaks[o][c];
                    for (f, &x) in out[c][skip..skip + keep].iter().enumerate() {
                        buf[f * nch + k] = x;
                        *peak = peak.max(x.abs());
                    }
                }
                writer
                    .write(&buf[..keep * nch])
                    .map_err(|source| RenderError::Output {
                        path: path.clone(),
                        source,
                    })?;
            }
            written += keep as u64;
        }
        if let Some(progress) = options.progress.as_mut() {
            progress(written, total_frames);
        }
    }

    // Everything rendered: finish all files, then move them into place together.
    let mut pending: Vec<PendingFile> = Vec::with_capacity(writers.len());
    for (path, writer) in writers {
        pending.push(writer.finish().map_err(|source| RenderError::Output {
            path: path.clone(),
            source,
        })?);
    }
    let mut files = Vec::with_capacity(pending.len());
    for p in pending {
        let path = p.path().to_path_buf();
        files.push(
            p.commit()
                .map_err(|source| RenderError::Output { path, source })?,
        );
    }

    let render_s = started.elapsed().as_secs_f64();
    let duration_s = total_frames as f64 / rate as f64;
    let realtime_factor = duration_s / render_s.max(1e-9);
    let outputs = layouts
        .iter()
        .zip(files)
        .zip(peaks)
        .zip(out_warnings)
        .map(|(((layout, file), peak), warnings)| OutputReport {
            kind: "speakers".into(),
            file,
            layout: layout.name.clone(),
            channels: layout.labels().iter().map(|s| s.to_string()).collect(),
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
        })
        .collect();
    Ok(RenderReport {
        session: scene.origin.clone(),
        sample_rate: rate,
        frames: total_frames,
        duration_s,
        render_s,
        realtime_factor,
        sources: source_reports,
        outputs,
        warnings,
    })
}

fn bed_config(b: &crate::session::BedSpec) -> BedConfig {
    BedConfig {
        name: b.name.clone(),
        layout: b.layout.clone(),
        gain_db: b.gain_db,
        mute: b.mute,
    }
}

/// The engine configuration for a scene and a set of speaker layouts.
pub fn engine_config(scene: &Scene, layouts: &[Layout], block_frames: usize) -> EngineConfig {
    EngineConfig {
        sample_rate: scene.sample_rate,
        max_block_frames: block_frames,
        objects: scene
            .objects
            .iter()
            .map(|o| ObjectConfig {
                name: o.name.clone(),
                gain_db: o.gain_db.clone(),
                position: o.position.clone(),
                size: o.size.clone(),
                mute: o.mute,
            })
            .collect(),
        beds: scene.beds.iter().map(bed_config).collect(),
        outputs: layouts
            .iter()
            .map(|l| OutputConfig::Speakers { layout: l.clone() })
            .collect(),
    }
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
