//! A scene as the engine takes it: output chains, fold-down settings, HRTF sets, object
//! and bed configs, and the error of setting up a render. Shared by offline rendering,
//! export and playback, so that they configure the engine the same way.

use crate::dsp::ProcessorSettings;
use crate::engine::{BedConfig, EngineError, ObjectConfig};
use crate::formats::io::{self, IoError, WriteFormat};
use crate::measure::loudness::LoudnessError;
use crate::scene::mix::{BinauralMode, FoldMatrix, FoldSpec, Scene};
use crate::spatial::binaural::{BinauralError, Distance, HrtfSet};
use crate::spatial::downmix::{FoldDownConfig, FoldKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

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
            _ => !self.is_environment(),
        }
    }

    /// Whether the machine failed (disk full, permission, device: exit code 4).
    pub fn is_environment(&self) -> bool {
        match self {
            RenderError::ObjectSource { source, .. }
            | RenderError::BedSource { source, .. }
            | RenderError::Output { source, .. }
            | RenderError::HrtfFile(source) => source.is_environment(),
            _ => false,
        }
    }
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

pub(crate) fn bed_config(b: &crate::scene::mix::BedSpec) -> BedConfig {
    BedConfig {
        name: b.name.clone(),
        layout: b.layout.clone(),
        gain_db: b.gain_db,
        mute: b.mute,
        hoa: b.hoa.clone(),
        active_frames: b.active_frames,
        binaural_distances: match &b.binaural {
            Some(modes) => modes
                .iter()
                .map(|&m| (m != BinauralMode::Off).then(|| binaural_distance(m)))
                .collect(),
            None => vec![Some(Distance::Mid); b.layout.num_channels()],
        },
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
            binaural_distance: binaural_distance(o.binaural),
            controls: o.controls.clone(),
        })
        .collect()
}

/// The binaural renderer's room distance of a binaural render mode (Off is a bypass).
pub(crate) fn binaural_distance(mode: BinauralMode) -> Distance {
    match mode {
        BinauralMode::Off => Distance::Anechoic,
        BinauralMode::Near => Distance::Near,
        BinauralMode::Mid => Distance::Mid,
        BinauralMode::Far => Distance::Far,
    }
}
