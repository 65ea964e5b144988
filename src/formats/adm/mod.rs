//! ADM BWF metadata: reading and writing the Audio Definition Model (ITU-R BS.2076-2) `axml`
//! chunk and the `chna` track map of BW64 files (ITU-R BS.2088-1), with the BS.2094 common
//! definitions halo knows, and the conversion between ADM and a halo [`Scene`].
//!
//! This module never touches the file system: it gets chunk bytes and gives chunk bytes
//! (the `io` module reads and writes the BW64 container).
//!
//! # What is supported
//!
//! `audioProgramme` → `audioContent` → `audioObject` (nested, with `gain` and `mute`) →
//! `audioPackFormat` → `audioChannelFormat` of type **Objects** (time-varying
//! `audioBlockFormat`s: polar `azimuth/elevation/distance` or Cartesian `X/Y/Z`, `gain` in
//! linear or dB, `width/height/depth`, `jumpPosition` with `interpolationLength`) and
//! **DirectSpeakers** (beds: a built-in halo layout when the `speakerLabel`s make one,
//! otherwise a layout of the pack's own speakers, LFE found by label or `frequency lowPass`
//! ≤ 200 Hz), reached through `audioTrackUID` → `audioTrackFormat` → `audioStreamFormat`,
//! or directly from the `audioTrackUID` to the channel format (the BS.2076-2 shortcut), or
//! from the `chna` entries alone; BS.2094-1 common definitions need no copy in the file
//! (`common`). **HOA** channels (order, degree, normalization; own or common packs) become
//! an HOA bed decoded per output (BS.2127 §9, `spatial::hoa`); a **Matrix** channel that
//! names its output channel renders as that DirectSpeakers channel. Object blocks' BS.2127
//! controls are read block by block: extent, diffuse and divergence as keyframes,
//! channelLock, zoneExclusion, screenRef, screenEdgeLock and the divergence range as
//! control changes (`ObjectControls::changes`) where a block's differ from the block
//! before. Other Matrix and Binaural content is reported as warnings, never silently
//! dropped. Of each
//! group of complementary objects only one renders (the leader, or the one chosen). Timing
//! that DAWs round (overlaps and interpolation lengths up to [`TIMING_TOLERANCE_S`], gaps
//! under a sample, times off the sample grid) is fixed with one warning line per kind of
//! fix (`import::block_spans`).
//!
//! # Timing of block formats (BS.2127 §7.3 / the EBU ADM renderer)
//!
//! A block covers `[rtime, rtime + duration)` relative to its object's `start`. If it starts
//! exactly where the previous block ended, its parameters move from the previous block's
//! values to its own over the interpolation length — the whole block when `jumpPosition`
//! is 0, `interpolationLength` (default 0) when it is 1 — and then hold. A first block, or
//! one after a gap, jumps to its values at once. halo turns this into keyframes: a `Linear`
//! keyframe at `rtime` with the previous values and a keyframe at `rtime + length` with
//! the block's own (or a single keyframe when the length is 0); a jump gets a keyframe one
//! frame before it holding the value reached there, so that it is exact to the sample (the
//! engine ramps between gain points). Outside its blocks (before the first, after the last,
//! in gaps, outside the audioObject's `start`/`duration`) the object is silent: its gain
//! steps to [`SILENT_GAIN_DB`]. A zero-duration block only sets the values the next block
//! interpolates from. BS.2127 interpolates the
//! loudspeaker gains; halo interpolates the position and pans every 256 samples, which is
//! the same at the block ends and a close match in between.
//!
//! # Size
//!
//! halo's `size` (0 point … 1 whole room, see `panner`) is written as `width = height =
//! 360·size` degrees (`depth` 0) on polar objects and `width = height = depth = size` on
//! Cartesian ones (the Dolby Atmos ADM profile's convention); read back as
//! `max(width, height)/360` (polar) or `max(width, height, depth)` (Cartesian), clamped to
//! 0…1.
//!
//! # Exact round trips
//!
//! halo automation has shapes ADM lacks (smoothstep, a ramp starting right after a step).
//! [`from_scene`] writes standard blocks that any BS.2127 renderer follows (a smoothstep
//! becomes a straight line between the same keys; a ramp after a step starts one sample
//! late), and marks every block with a `halo:keys` attribute (namespace
//! [`HALO_NAMESPACE`]) naming the parameters that have a halo keyframe at the block's
//! `rtime` and their interpolation (`p=linear g=step s=smooth`). When every block of a
//! channel carries the mark, [`to_scene`] rebuilds the exact keyframes; other readers
//! ignore the attribute.

use crate::scene::automation::{Automation, Interpolation, Keyframe};
use crate::scene::geometry::{Position, wrap_deg};
use crate::scene::layout::Layout;
use crate::scene::mix::{BedSpec, BinauralMode, ObjectSpec, Scene, SourceSpec};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::path::PathBuf;
use thiserror::Error;

/// Largest `axml` chunk accepted, bytes. Real masters with 128 objects and long automation
/// stay in the tens of megabytes.
pub const MAX_AXML_BYTES: usize = 256 << 20;
/// Largest number of XML elements in an `axml` chunk.
pub const MAX_ELEMENTS: usize = 8_000_000;
/// Deepest element nesting accepted (ADM documents nest about 8 deep).
pub const MAX_DEPTH: usize = 32;
/// Most `audioBlockFormat`s in one `audioChannelFormat`.
pub const MAX_BLOCKS_PER_CHANNEL: usize = 1_000_000;
/// Most `audioObject`s followed through `audioObjectIDRef` from one content (nesting depth).
pub const MAX_OBJECT_NESTING: usize = 16;
/// Largest `chna` chunk: 65535 entries of 40 bytes and the 4-byte header.
pub const MAX_CHNA_BYTES: usize = 4 + 40 * 65535;
/// Largest timing inconsistency halo fixes rather than refuses, seconds: Pro Tools rounds
/// rtime and duration to 10 µs (blocks overlap by that much) and ends objects in a block
/// shorter than its 5.2 ms `interpolationLength`.
pub const TIMING_TOLERANCE_S: f64 = 0.01;
/// Namespace of the `halo:keys` attribute.
pub const HALO_NAMESPACE: &str = "urn:halo:adm:1";
/// Lowest gain halo writes for a linear ADM gain of 0, dB.
pub const SILENT_GAIN_DB: f64 = -200.0;

// ---------------------------------------------------------------------------------------
// Errors.

#[derive(Debug, Error, Clone, PartialEq)]
pub enum AdmError {
    /// The XML is not well-formed.
    #[error("axml: malformed XML at byte {offset}: {message}")]
    Xml { offset: u64, message: String },
    /// A DOCTYPE, an entity declaration or reference: never expanded.
    #[error("axml: {what} at byte {offset} is not allowed; allowed: {allowed}")]
    Forbidden {
        offset: u64,
        what: String,
        allowed: String,
    },
    /// Past one of the documented limits.
    #[error("{what} is {value}, more than the limit of {max}")]
    TooLarge { what: String, value: u64, max: u64 },
    /// A value or structure that breaks BS.2076 (or halo's support of it).
    #[error("{element}: {problem}; allowed: {allowed}")]
    Invalid {
        element: String,
        problem: String,
        allowed: String,
    },
    /// An ID reference to an element that is not in the document.
    #[error("{element}: refers to {reference}, which is not defined{where_}")]
    UnknownRef {
        element: String,
        reference: String,
        where_: String,
    },
    /// A `chna` chunk that is cut short or inconsistent.
    #[error("chna: {problem}; allowed: {allowed}")]
    Chna { problem: String, allowed: String },
    /// Nothing in the file that halo can render.
    #[error("ADM: {0}")]
    Nothing(String),
    /// The programme asked for is not in the file.
    #[error("no audioProgramme with the ID or name '{asked}'; allowed: {available}")]
    UnknownProgramme { asked: String, available: String },
}

pub(super) fn invalid(
    element: impl fmt::Display,
    problem: impl Into<String>,
    allowed: &str,
) -> AdmError {
    AdmError::Invalid {
        element: element.to_string(),
        problem: problem.into(),
        allowed: allowed.to_string(),
    }
}

mod chna;
mod common;
mod export;
mod import;
mod model;
mod read;
mod time;
mod write;

pub use chna::*;
use common::*;
pub use export::*;
pub use import::*;
pub use model::*;
pub use read::*;
pub use time::*;
pub use write::*;
