//! halo — an object-based immersive mixer and renderer.
//!
//! Sessions (RON) and ADM BWF masters (ITU-R BS.2076) place mono objects and channel beds
//! around the listener; halo renders them to speaker layouts with ITU-R BS.2127 gains,
//! binaurally by HRTF convolution, and to a stereo fold-down with its own master chain,
//! and meters every output (ITU-R BS.1770-4) so that translation problems show up before
//! delivery.
//!
//! # The map, in reading (data-flow) order
//!
//! | layer | job | may use |
//! | --- | --- | --- |
//! | `dsp` | master-chain processors, one file and one settings type each | — |
//! | `scene` | what a mix is, as plain data: geometry, automation, layouts, the [`Scene`] | `dsp` (chain settings) |
//! | `spatial` | gains and filters: object panner, binaural (HRTF), fold-downs | `dsp`, `scene` |
//! | `engine` | block rendering: buses, gain ramps, binaural path, latency alignment | `dsp`, `scene`, `spatial` |
//! | `measure` | loudness and true peak (BS.1770-4), translation analysis, the QC page and its time series | `dsp`, `scene`, `spatial` |
//! | `formats` | bytes and text ⇄ scene: session (RON), ADM (axml, chna), WAV/BW64/RF64 | `dsp`, `scene`, `spatial` |
//! | `drivers` | whole jobs: plan (scene → engine config), sources, render (on threads), ADM import/export, playback, demo | everything above |
//! | `src/bin/halo` | the command line (clap, anyhow, indicatif, crossterm only there) | the facade |
//!
//! **The layer rule**: a module imports only from its own layer and the layers its row
//! may use. `tests/architecture.rs`
//! reads `src/` and fails on any other `crate::` import, and when `playback` imports
//! `render`. Only `formats::io` touches the file system; only `drivers::playback` touches
//! the audio device.
//!
//! # The facade
//!
//! What a program embedding halo uses: the [`Scene`] and its parts, [`session`] parsing
//! and writing, [`render`], ADM [`exchange`], [`playback`], [`loudness`], [`gains`],
//! [`io`] and the [`demo`] material. The layers themselves are crate-private; halo's own
//! tests, benches and fuzz targets reach them through the `internals` cargo feature.

#![warn(missing_docs)]

// The layer modules are internal: public with the `internals` feature (halo's tests,
// benches and fuzz targets), crate-private otherwise, so that the compiler reports dead
// code and rustdoc shows only the facade. Each is declared twice, not through a macro:
// rustfmt does not follow modules declared inside a macro call, and `cargo fmt` would
// skip every layer.
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod drivers;
#[cfg(not(feature = "internals"))]
pub(crate) mod drivers;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod dsp;
#[cfg(not(feature = "internals"))]
pub(crate) mod dsp;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod engine;
#[cfg(not(feature = "internals"))]
pub(crate) mod engine;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod formats;
#[cfg(not(feature = "internals"))]
pub(crate) mod formats;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod measure;
#[cfg(not(feature = "internals"))]
pub(crate) mod measure;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod scene;
#[cfg(not(feature = "internals"))]
pub(crate) mod scene;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod spatial;
#[cfg(not(feature = "internals"))]
pub(crate) mod spatial;

pub use scene::mix::Scene;

// ---------------------------------------------------------------------------------------
// The facade.

pub use scene::geometry::{Direction, Position};
pub use scene::layout::{Layout, LayoutError};
pub use scene::mix::{
    BedSpec, BinauralMode, FoldMatrix, FoldSpec, ObjectSpec, OutputSpec, SourceSpec, TargetSpec,
    TrimMode,
};
pub use scene::mix::{
    ControlChange, ExclusionZone, Extent, ImportanceGain, ObjectControls, ReferenceScreen,
    ScreenEdge, Snap, SwitchedControls,
};

/// Reading and writing halo's session format (RON).
pub mod session {
    pub use crate::formats::session::{SessionError, parse, write};
}

/// Offline rendering of a scene to every output, with meters and the report.
pub mod render {
    pub use crate::drivers::render::{
        RENDER_BLOCK_FRAMES, RenderError, RenderOptions, RenderReport, clip_line, pending_report,
        render, render_uncommitted, write_report,
    };
}

/// ADM BWF masters: read one as a scene, import it as a session, export a session.
pub mod exchange {
    pub use crate::drivers::exchange::{
        ExchangeError, ExportOptions, ExportReport, ImportReport, Master, export, import,
        is_master_path, read_master, read_master_choosing,
    };
    pub use crate::formats::adm::{AdmProfile, MAX_PROFILE_OBJECTS};
}

/// WAV/BW64 files and atomic writes: the only place halo touches the file system.
pub mod io {
    pub use crate::formats::io::{
        IoError, WavReader, WavSpec, WavWriter, WriteFormat, commit_all, create_dir_all,
        forget_dir, note_dir, read_text, remove_empty_dir, remove_own_temps, write_atomic,
    };
}

/// Loudness and true peak of a signal (ITU-R BS.1770-4, EBU R 128).
pub mod loudness {
    pub use crate::measure::loudness::{LoudnessError, LoudnessReport, Meter};
}

/// The QC page (`report.html`) and the time series it draws (`timeline.json`).
pub mod report {
    pub use crate::measure::page::{
        PAGE_FILE, PageError, ReportView, SECTIONS, build, parse_report, parse_timeline,
    };
    pub use crate::measure::timeline::{TIMELINE_FILE, Timeline};
}

/// ITU-R BS.2127 gains of an object on a layout (what `halo gains` prints).
pub mod gains {
    pub use crate::spatial::objectbased::{GainCalc, GainCalcError};
}

/// The demo's built-in material: stems synthesised on the spot and their session.
pub mod demo {
    pub use crate::drivers::demo::{Stem, session_text, stems};
}

/// Live monitoring (`halo play`).
pub mod playback {
    #[cfg(feature = "playback")]
    pub use crate::drivers::playback::play_in_terminal;
    pub use crate::drivers::playback::{Monitor, PlayOptions};
}
