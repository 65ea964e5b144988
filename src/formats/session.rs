//! The session file: a RON description of a mix (objects, beds, outputs with their master
//! chains and loudness targets), validated with clear errors and turned into a [`Scene`] of
//! plain data with every time in samples. Object metadata follows the Dolby Atmos / ADM
//! (ITU-R BS.2076) model: position, gain and size per object, keyframed, plus a binaural
//! render mode (off / near / mid / far).
//!
//! This module never touches the file system: [`parse`] gets the session text, the
//! session's path (for messages and to resolve relative paths), and a callback that reads
//! layout files.
//!
//! # The format
//!
//! ```ron
//! Session(
//!     sample_rate: 48000,       // optional, Hz, 8000…384000; default 48000
//!     duration: 20.0,           // optional, seconds; default: the longest source
//!     // optional: the programme's reference screen (ADM audioProgrammeReferenceScreen),
//!     // which `screen_ref` objects are scaled from; default BS.2076's screen, which is
//!     // Polar(aspect_ratio: 1.78, az: 0, el: 0, dist: 1, width: 58) (never written)
//!     reference_screen: Polar(aspect_ratio: 1.5, az: 10, el: 5, dist: 1, width: 40),
//!     // reference_screen: Cart(aspect_ratio: 1.78, x: 0, y: 1, z: 0, width: 1),
//!     objects: [
//!         (
//!             name: "vox",                  // non-empty, unique among objects and beds
//!             source: "stems/vox.wav",      // a mono file …
//!             // source: (file: "stems/gtr.wav", channel: 2),  // … or one channel (from 1)
//!             gain_db: -3.0,                // optional, dB ≤ +24 (alias `gain`); default 0
//!             mute: false,                  // optional; default false
//!             position: Cart(x: 0, y: 1, z: 0),        // room: x −1 left…+1 right,
//!                                                      // y −1 back…+1 front, z −1…+1 up
//!             // position: Polar(az: 30, el: 0, dist: 1), // degrees, az positive LEFT;
//!                                                         // el, dist optional (0, 1)
//!             size: 0.0,                    // optional, 0…1; default 0 (shorthand: Cart
//!                                           // width = height = depth = size; Polar
//!                                           // width = height = 360° × size)
//!             binaural: Mid,                // optional: Off | Near | Mid | Far; default Mid
//!             // ITU-R BS.2127 controls, all optional (defaults: a point source):
//!             extent: (width: 60, height: 20, depth: 0), // polar: degrees, depth 0…1;
//!                                           // Cart: 0…2 each; overrides size; keyframed
//!             diffuse: 0.0,                 // 0…1, keyframed (decorrelated share)
//!             divergence: 0.0,              // 0…1, keyframed (objectDivergence)
//!             divergence_range: 45,         // polar: degrees; Cart: 0…1 (positionRange)
//!             snap: Within(0.3),            // Any | Within(d): channelLock (maxDistance)
//!             zones: [Speaker("M+110"), Polar(min_az: 100, max_az: 150, min_el: -10,
//!                     max_el: 10), Cart(min_x: -1, max_x: -0.5, min_y: -1, max_y: 1)],
//!             screen_ref: false,            // screen-related scaling
//!             screen_edge_lock: [Left, Top],
//!             control_changes: [            // later sets of the five above (ADM blocks
//!                 (time: 2.0, ramp_from: 1.9, snap: Any, zones: [Speaker("M+030")]),
//!             ],                            // that change them; `halo import` writes it)
//!             importance: 10,               // 0…10 (`render --min-importance`)
//!             block_importance: [           // ADM block importance (`halo import` writes
//!                 (from: 4, gain_db: [ … ]),  // it): with --min-importance ≥ from this
//!             ],                            // gain lane (blocks below `from` at gain 0)
//!                                           // replaces gain_db; `from` 1…10, increasing
//!             interpolate_gains: false,     // keyframes blend gains (BS.2127), not positions
//!         ),
//!     ],
//!     beds: [ (name: "drums", source: "stems/drums.wav", layout: "5.1", gain_db: 0.0, mute: false,
//!              binaural: [Near, Near, Near, Off, Mid, Mid]) ],  // optional, per channel
//!     outputs: [
//!         Speakers(layout: "7.1.4", chain: [ … ], target: "atmos-music"),
//!         Binaural(hrtf: "my.sofa", lfe_db: -10, chain: [ … ], target: ( … )),
//!         Stereo(from: "7.1.4", fold: (matrix: LtRt, center_db: -3, surround_db: -3,
//!                rear_db: -3, height_db: -3, lfe_db: -10), chain: [ … ]),
//!     ],
//! )
//! ```
//!
//! * **Automation.** `gain_db`, `position` and `size` take either one value or a list of
//!   keyframes `[(time: 0.0, value: …, interp: Smooth), (time: 4.0, value: …)]`: `time` in
//!   seconds (≥ 0, strictly increasing after rounding to samples: `round(time × rate)`),
//!   `interp` how the value travels to the NEXT keyframe (`Step`, `Linear` — the default —
//!   or `Smooth`). All keyframes of a position use the same kind (`Cart` or `Polar`).
//! * **Reference screen.** `reference_screen` (Polar: `az` −180…180, `el` −90…90 (0),
//!   `dist` > 0 (1, no effect on the scaling), `width` degrees 0…180 exclusive; Cart: `x`,
//!   `y`, `z` (0) −1…1, `width` 0…2 (exclusive of 0); `aspect_ratio` > 0) is the
//!   programme's: it applies to every object with `screen_ref: true`. A screen reaching
//!   round behind the listener or past ±90° elevation is refused (BS.2127 cannot scale
//!   from it).
//! * **Control changes.** `divergence_range`, `snap`, `zones`, `screen_ref` and
//!   `screen_edge_lock` hold from the start; each `control_changes` entry is a whole new
//!   set of them (fields left out: none, empty, false) in force from `time` (seconds, above
//!   0 and above the previous entry's, at least one sample apart). With
//!   `interpolate_gains` the gains move linearly from the old set's at `ramp_from`
//!   (optional, default `time`: a jump; from the previous entry's time to this one's) to
//!   the new set's at `time`, as BS.2127 interpolates an ADM block's gains over its
//!   interpolation length; otherwise the set switches at `time`. `halo import` writes
//!   one entry per ADM block whose channelLock, zoneExclusion, screenRef, screenEdgeLock
//!   or objectDivergence range differs from the block before, `halo export` writes each
//!   block's own.
//! * **Block importance.** `block_importance` holds what `halo import` reads from ADM
//!   `audioBlockFormat` `importance`: for each importance level below 10 present in the
//!   blocks, the object's gain lane with every block of that importance or less at gain 0
//!   (−200 dB), built as for a master with gain 0 written in those blocks. `render
//!   --min-importance N` uses the entry with the largest `from` ≤ N instead of `gain_db`.
//! * **Layouts** (`layout`, `from`): a built-in name or alias (`"7.1.4"`, `"4+7+0"`,
//!   `"stereo"` …) or a layout file whose name ends in `.ron`.
//! * **Paths** (sources, `hrtf`, layout files) are relative to the session file's folder.
//! * **Outputs.** `Speakers(layout)` renders to a layout; `Binaural(hrtf, lfe_db)` to
//!   headphones (`hrtf` optional: the built-in set; `lfe_db` optional: LFE left out);
//!   `Stereo(from, fold)` folds an immersive render (`from`, default `"7.1.4"`, needs
//!   ear-level speakers on both sides) down to 2.0 (`fold`: `matrix` `LoRo` (default) or
//!   `LtRt`, trims in dB, −3 by default; `trim_mode` Automatic (the −3 dB defaults) or
//!   Manual, Manual when trims are given; `lfe_db` optional: LFE dropped). Each output has
//!   an optional `chain` and `target`. An empty `outputs` list is allowed (the command line
//!   may choose the outputs).
//! * **Chain** processors, in order: `Gain(gain_db)`, `Eq(bands: [(kind: Peak | LowShelf |
//!   HighShelf | HighPass | LowPass, freq_hz, gain_db: 0, q: 0.707)])`,
//!   `Compressor(threshold_db, ratio, knee_db: 6, attack_ms: 10, release_ms: 100,
//!   makeup_db: 0)`, `Limiter(ceiling_dbtp: -1, lookahead_ms: 1.5, release_ms: 50)`,
//!   `Width(width)` (0 mono … 1 unchanged … 4), `Dither(bits: 24)` (last in the chain).
//! * **Target**: a preset name (`"ebu-r128"`, checked by the loudness module) or
//!   `(integrated_lufs, tolerance_lu, max_integrated_lufs, true_peak_dbtp)`, all optional
//!   but at least one; the parentheses may be named `Custom(…)`.
//! * Optional values are written bare (`lfe_db: -10`, not `Some(-10)`). Unknown fields are
//!   errors, with the list of the allowed ones.
//!
//! # Errors
//!
//! Every [`SessionError`] names the session file; syntax errors give `line:column`, the
//! others the line of the offending item and its place (`objects[2] "vox": position
//! keyframe 3`: brackets are 0-based indices, keyframe numbers count from 1), the value, and
//! what is allowed. See `examples/showcase.ron` for a file that uses every feature.

use crate::dsp::{DspError, ProcessorSettings};
use crate::scene::automation::{Automation, Interpolate, Interpolation, Keyframe};
use crate::scene::geometry::Position;
use crate::scene::layout::{Layout, LayoutError, ron_options};
use crate::scene::mix::{
    BedSpec, BinauralMode, ControlChange, DEFAULT_FOLD_FROM, DEFAULT_SAMPLE_RATE, ExclusionZone,
    Extent, FoldMatrix, FoldSpec, ImportanceGain, ObjectControls, ObjectSpec, OutputSpec,
    ReferenceScreen, Scene, ScreenEdge, Snap, SourceSpec, SwitchedControls, TargetSpec, TrimMode,
};
use serde::Deserialize;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Longest time accepted in a session, seconds (one week: keeps frames far from overflow).
const MAX_TIME_S: f64 = 7.0 * 86400.0;

// ---------------------------------------------------------------------------------------
// Errors.

/// Errors reading a session; each names the file, the line where known, and what is allowed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The text is not valid RON, or does not fit the schema (unknown field, unknown
    /// variant, wrong type …).
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        /// The session file.
        file: PathBuf,
        /// Line of the error, counted from 1.
        line: usize,
        /// Column of the error, counted from 1.
        column: usize,
        /// What the RON parser says.
        message: String,
    },
    /// The session file is empty.
    #[error(
        "{}: the file is empty; a session looks like `Session(objects: [(name: \"vox\", \
         source: \"vox.wav\", position: Cart(x: 0, y: 1, z: 0))], outputs: \
         [Speakers(layout: \"7.1.4\")])`",
        file.display()
    )]
    EmptyFile {
        /// The session file.
        file: PathBuf,
    },
    /// A value out of range or inconsistent with the rest of the session.
    #[error("{}: {place}: {problem}; allowed: {allowed}", Loc(file, *line))]
    Invalid {
        /// The session file.
        file: PathBuf,
        /// Line of the value, counted from 1, where known.
        line: Option<usize>,
        /// Where in the session (`objects[2].gain_db`, …).
        place: String,
        /// What is wrong.
        problem: String,
        /// What is allowed.
        allowed: String,
    },
    /// A layout file named by the session cannot be read.
    #[error("{}: {place}: cannot read layout file {}: {message}", Loc(file, *line), path.display())]
    LayoutRead {
        /// The session file.
        file: PathBuf,
        /// Line of the layout's name, counted from 1, where known.
        line: Option<usize>,
        /// Where in the session the layout is named.
        place: String,
        /// The layout file.
        path: PathBuf,
        /// The read error.
        message: String,
    },
    /// An unknown layout name or an invalid layout file.
    #[error("{}: {place}: {source}", Loc(file, *line))]
    Layout {
        /// The session file.
        file: PathBuf,
        /// Line of the layout's name, counted from 1, where known.
        line: Option<usize>,
        /// Where in the session the layout is named.
        place: String,
        /// What is wrong with the layout.
        source: Box<LayoutError>,
    },
}

impl SessionError {
    /// The session file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            SessionError::Syntax { file, .. }
            | SessionError::EmptyFile { file }
            | SessionError::Invalid { file, .. }
            | SessionError::LayoutRead { file, .. }
            | SessionError::Layout { file, .. } => file,
        }
    }

    /// The line (1-based) in the session file, where known.
    pub fn line(&self) -> Option<usize> {
        match self {
            SessionError::Syntax { line, .. } => Some(*line),
            SessionError::EmptyFile { .. } => None,
            SessionError::Invalid { line, .. }
            | SessionError::LayoutRead { line, .. }
            | SessionError::Layout { line, .. } => *line,
        }
    }
}

/// `file` or `file:line`.
struct Loc<'e>(&'e Path, Option<usize>);

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(line) => write!(f, "{}:{line}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

/// What went wrong with a value, and what is allowed: `(problem, allowed)`.
type Problem = (String, String);

/// Checks a number: finite and `ok`.
/// The text of one RON value, as the deserializer read it, for a second, typed reading
/// with the value's own position in messages.
///
/// Why not `ron::value::RawValue`: it parses every captured value a second time to validate
/// it, so captures nested in captures (session → object → automation list) parse a
/// million-keyframe list five times (issue 15: 1M keyframes took over 6 s of CPU). The
/// deserializer has already read the value when it hands over the text, so `Raw` keeps it
/// as it is. It asks ron for the text as `RawValue` does, through ron's raw-value newtype
/// name; `raw_matches_rons_raw_value` (below) fails if a ron upgrade changes that.
#[derive(Clone, Copy, Debug)]
struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    fn get_ron(self) -> &'a str {
        self.0
    }
}

/// ron's name for its raw-value newtype (`ron::value::raw::RAW_VALUE_TOKEN`, crate-private).
const RON_RAW_VALUE_TOKEN: &str = "$ron::private::RawValue";

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = &'de str;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a RON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<&'de str, E> {
                Ok(v)
            }
        }
        deserializer
            .deserialize_newtype_struct(RON_RAW_VALUE_TOKEN, Text)
            .map(Raw)
    }
}

fn check(v: f64, ok: bool, name: &str, unit: &str, allowed: &str) -> Result<f64, Problem> {
    if !v.is_finite() {
        Err((
            format!("{name} = {v} is not a finite number"),
            allowed.to_string(),
        ))
    } else if !ok {
        Err((
            format!("{name} = {v}{unit} is out of range"),
            allowed.to_string(),
        ))
    } else {
        Ok(v)
    }
}

fn check_in(v: f64, lo: f64, hi: f64, name: &str, unit: &str) -> Result<f64, Problem> {
    check(
        v,
        (lo..=hi).contains(&v),
        name,
        unit,
        &format!("{name} from {lo} to {hi}{unit}"),
    )
}

// ---------------------------------------------------------------------------------------
// The file schema. Parameters that take several shapes (a value or keyframes, a file name
// or a struct) are captured as raw RON text and parsed in a second step: serde's untagged
// enums only say "data did not match any variant", and RON's `deserialize_any` forgets
// enum variant names (`Cart`/`Polar`). Raw values also carry their place in the text, so
// every later error can name its line.

#[derive(Deserialize)]
#[serde(rename = "Session", deny_unknown_fields)]
struct SessionFile<'a> {
    #[serde(default, borrow)]
    sample_rate: Option<Raw<'a>>,
    #[serde(default, borrow)]
    duration: Option<Raw<'a>>,
    #[serde(default, borrow)]
    objects: Vec<Raw<'a>>,
    #[serde(default, borrow)]
    beds: Vec<Raw<'a>>,
    #[serde(default, borrow)]
    outputs: Vec<Raw<'a>>,
    #[serde(default, borrow)]
    reference_screen: Option<Raw<'a>>,
}

/// `reference_screen: Polar(aspect_ratio, az, el, dist, width)` or `Cart(aspect_ratio, x,
/// y, z, width)`: the programme's `audioProgrammeReferenceScreen`.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename = "ReferenceScreen", deny_unknown_fields)]
enum ScreenFile {
    Polar {
        aspect_ratio: f64,
        az: f64,
        #[serde(default)]
        el: f64,
        #[serde(default = "one")]
        dist: f64,
        width: f64,
    },
    Cart {
        aspect_ratio: f64,
        x: f64,
        y: f64,
        #[serde(default)]
        z: f64,
        width: f64,
    },
}

/// One entry of an object's `block_importance`.
#[derive(Deserialize)]
#[serde(rename = "BlockImportance", deny_unknown_fields)]
struct ImportanceFile<'a> {
    from: i64,
    #[serde(borrow)]
    gain_db: Raw<'a>,
}

/// One entry of an object's `control_changes`: a whole set of the switched controls
/// (each field optional: none, empty, false) in force from `time`.
#[derive(Deserialize)]
#[serde(rename = "ControlChange", deny_unknown_fields)]
struct ControlChangeFile {
    time: f64,
    #[serde(default)]
    ramp_from: Option<f64>,
    #[serde(default)]
    divergence_range: Option<f64>,
    #[serde(default)]
    snap: Option<SnapFile>,
    #[serde(default)]
    zones: Vec<ZoneFile>,
    #[serde(default)]
    screen_ref: bool,
    #[serde(default)]
    screen_edge_lock: Vec<ScreenEdge>,
}

#[derive(Deserialize)]
#[serde(rename = "Object", deny_unknown_fields)]
struct ObjectFile<'a> {
    name: String,
    #[serde(borrow)]
    source: Raw<'a>,
    #[serde(default, borrow, alias = "gain")]
    gain_db: Option<Raw<'a>>,
    #[serde(default)]
    mute: bool,
    #[serde(borrow)]
    position: Raw<'a>,
    #[serde(default, borrow)]
    size: Option<Raw<'a>>,
    #[serde(default)]
    binaural: BinauralMode,
    #[serde(default, borrow)]
    extent: Option<Raw<'a>>,
    #[serde(default, borrow)]
    diffuse: Option<Raw<'a>>,
    #[serde(default, borrow)]
    divergence: Option<Raw<'a>>,
    #[serde(default)]
    divergence_range: Option<f64>,
    #[serde(default)]
    snap: Option<SnapFile>,
    #[serde(default)]
    zones: Vec<ZoneFile>,
    #[serde(default)]
    screen_ref: bool,
    #[serde(default)]
    screen_edge_lock: Vec<ScreenEdge>,
    #[serde(default, borrow)]
    control_changes: Vec<Raw<'a>>,
    #[serde(default)]
    importance: Option<i64>,
    #[serde(default, borrow)]
    block_importance: Vec<Raw<'a>>,
    #[serde(default)]
    interpolate_gains: bool,
}

/// `extent: (width: …, height: …, depth: …)`, each optional (0).
#[derive(Deserialize, Clone, Copy)]
#[serde(rename = "Extent", deny_unknown_fields)]
struct ExtentFile {
    #[serde(default)]
    width: f64,
    #[serde(default)]
    height: f64,
    #[serde(default)]
    depth: f64,
}

/// `snap: Any` or `snap: Within(0.3)`.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename = "Snap")]
enum SnapFile {
    Any,
    Within(f64),
}

/// An excluded zone: `Speaker("M+030")`, `Polar(min_az, max_az, min_el, max_el)` or
/// `Cart(min_x, max_x, min_y, max_y, min_z, max_z)`.
#[derive(Deserialize, Clone)]
#[serde(rename = "Zone", deny_unknown_fields)]
enum ZoneFile {
    Speaker(String),
    Polar {
        min_az: f64,
        max_az: f64,
        #[serde(default)]
        min_el: f64,
        #[serde(default)]
        max_el: f64,
    },
    Cart {
        min_x: f64,
        max_x: f64,
        min_y: f64,
        max_y: f64,
        #[serde(default)]
        min_z: f64,
        #[serde(default)]
        max_z: f64,
    },
}

#[derive(Deserialize)]
#[serde(rename = "Source", deny_unknown_fields)]
struct SourceFile {
    file: String,
    #[serde(default)]
    channel: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename = "Keyframe", deny_unknown_fields)]
struct KeyFile<V> {
    time: f64,
    value: V,
    #[serde(default)]
    interp: Interpolation,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename = "Position", deny_unknown_fields)]
enum PositionFile {
    Cart {
        x: f64,
        y: f64,
        #[serde(default)]
        z: f64,
    },
    Polar {
        az: f64,
        #[serde(default)]
        el: f64,
        #[serde(default = "one")]
        dist: f64,
    },
}

#[derive(Deserialize)]
#[serde(rename = "Bed", deny_unknown_fields)]
struct BedFile {
    name: String,
    source: String,
    layout: String,
    #[serde(default, alias = "gain")]
    gain_db: f64,
    #[serde(default)]
    mute: bool,
    #[serde(default)]
    channels: Option<Vec<i64>>,
    #[serde(default)]
    binaural: Option<Vec<BinauralMode>>,
}

#[derive(Deserialize)]
#[serde(rename = "Output", deny_unknown_fields)]
enum OutputFile<'a> {
    Speakers {
        layout: String,
        #[serde(default, borrow)]
        chain: Vec<Raw<'a>>,
        #[serde(default, borrow)]
        target: Option<Raw<'a>>,
    },
    Binaural {
        #[serde(default)]
        hrtf: Option<String>,
        #[serde(default)]
        lfe_db: Option<f64>,
        #[serde(default, borrow)]
        chain: Vec<Raw<'a>>,
        #[serde(default, borrow)]
        target: Option<Raw<'a>>,
    },
    Stereo {
        #[serde(default = "default_from")]
        from: String,
        #[serde(default)]
        fold: FoldFile,
        #[serde(default, borrow)]
        chain: Vec<Raw<'a>>,
        #[serde(default, borrow)]
        target: Option<Raw<'a>>,
    },
}

#[derive(Deserialize)]
#[serde(rename = "Fold", deny_unknown_fields)]
struct FoldFile {
    #[serde(default)]
    trim_mode: Option<TrimMode>,
    #[serde(default)]
    matrix: FoldMatrix,
    #[serde(default = "minus3")]
    center_db: f64,
    #[serde(default = "minus3")]
    surround_db: f64,
    #[serde(default = "minus3")]
    rear_db: f64,
    #[serde(default = "minus3")]
    height_db: f64,
    #[serde(default)]
    lfe_db: Option<f64>,
}

impl Default for FoldFile {
    fn default() -> Self {
        let d = FoldSpec::default();
        FoldFile {
            trim_mode: None,
            matrix: d.matrix,
            center_db: d.center_db,
            surround_db: d.surround_db,
            rear_db: d.rear_db,
            height_db: d.height_db,
            lfe_db: d.lfe_db,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename = "Custom", deny_unknown_fields)]
struct TargetFile {
    #[serde(default)]
    integrated_lufs: Option<f64>,
    #[serde(default)]
    tolerance_lu: Option<f64>,
    #[serde(default)]
    max_integrated_lufs: Option<f64>,
    #[serde(default)]
    true_peak_dbtp: Option<f64>,
}

fn one() -> f64 {
    1.0
}
fn minus3() -> f64 {
    -3.0
}
fn default_from() -> String {
    DEFAULT_FOLD_FROM.to_string()
}

// ---------------------------------------------------------------------------------------
// Parsing.

/// Skips whitespace and comments (`//…`, nested `/* … */`) at the start of `s`.
fn skip_trivia(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("//") {
            s = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        } else if s.starts_with("/*") {
            let mut depth = 0usize;
            let mut i = 0;
            let bytes = s.as_bytes();
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            // An unclosed comment runs to the end (ron reports it).
            s = s.get(i..).unwrap_or("");
        } else {
            return s;
        }
    }
}

/// Whether `text`, blanks and comments only, ends inside a `/* … */` comment.
fn unclosed_block_comment(text: &str) -> bool {
    let b = text.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        if depth == 0 && b[i..].starts_with(b"//") {
            i = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
        } else if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if depth > 0 && b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    depth > 0
}

/// Whether a raw value is written as a string literal.
fn is_string_literal(s: &str) -> bool {
    s.starts_with('"') || s.starts_with("r\"") || s.starts_with("r#")
}

struct Ctx<'a, 'r> {
    text: &'a str,
    file: PathBuf,
    dir: PathBuf,
    sample_rate: u32,
    read_layout: &'r mut dyn FnMut(&Path) -> Result<String, String>,
    layout_files: Vec<(PathBuf, Layout)>,
    /// The built-in layouts, parsed on first use (`Layout::builtin` parses them all on
    /// every call).
    builtins: Option<Vec<Layout>>,
    /// Byte offset of the start of every line, so positions are a binary search, not a
    /// scan of the text (sessions with thousands of keyframes stay linear to parse).
    line_starts: Vec<usize>,
}

impl<'a> Ctx<'a, '_> {
    /// Line and column (1-based, in characters) of the start of `s`, a slice of the text.
    fn position(&self, s: &str) -> (usize, usize) {
        let offset = self.offset(s);
        let line = self.line_at(offset);
        let line_start = self.line_starts[line.max(1) - 1];
        let column = 1 + self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count());
        (line, column)
    }

    /// Byte offset of `s`, a slice of the text.
    fn offset(&self, s: &str) -> usize {
        let offset = (s.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        offset.min(self.text.len())
    }

    /// The 1-based line holding byte `offset` (a binary search).
    fn line_at(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// The line where a raw value's first token is. Only the line: counting the column
    /// scans the line, which for a machine-written session with every keyframe on one
    /// line made parsing quadratic.
    fn line_of(&self, raw: Raw<'_>) -> Option<usize> {
        Some(self.line_at(self.offset(skip_trivia(raw.get_ron()))))
    }

    fn syntax(
        &self,
        base: (usize, usize),
        e: ron::error::SpannedError,
        hint: Option<&str>,
    ) -> SessionError {
        let p = e.span.start;
        let line = base.0 + p.line.saturating_sub(1);
        let column = if p.line <= 1 {
            base.1 + p.col.saturating_sub(1)
        } else {
            p.col
        };
        let mut message = match e.code {
            // ron's text advises its own API; the user needs the limit.
            ron::Error::ExceededRecursionLimit => {
                "values nested too deeply (more than ron's limit of 128 levels); a session \
                 nests a few levels"
                    .to_string()
            }
            code => code.to_string(),
        };
        if let Some(h) = hint {
            message.push_str(" (this value should be ");
            message.push_str(h);
            message.push(')');
        }
        SessionError::Syntax {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }

    /// Deserializes a raw value, with error positions in the whole file.
    fn de<T: Deserialize<'a>>(&self, raw: Raw<'a>, hint: Option<&str>) -> Result<T, SessionError> {
        let s = raw.get_ron();
        ron_options()
            .from_str(s)
            .map_err(|e| self.syntax(self.position(s), e, hint))
    }

    fn invalid(
        &self,
        line: Option<usize>,
        place: &str,
        (problem, allowed): Problem,
    ) -> SessionError {
        SessionError::Invalid {
            file: self.file.clone(),
            line,
            place: place.to_string(),
            problem,
            allowed,
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn seconds_to_frames(&self, t: f64) -> u64 {
        (t * self.sample_rate as f64).round() as u64
    }

    /// A built-in layout by name, or a layout file (`….ron`) read through the callback.
    fn layout(
        &mut self,
        name: &str,
        line: Option<usize>,
        place: &str,
    ) -> Result<Layout, SessionError> {
        let name = name.trim();
        if !name.ends_with(".ron") {
            let builtins = self.builtins.get_or_insert_with(Layout::builtins);
            if let Some(l) = builtins
                .iter()
                .find(|l| l.name == name || l.aliases.iter().any(|a| a == name))
            {
                return Ok(l.clone());
            }
            // Not found: `Layout::builtin` gives the error with the list of names.
            return Layout::builtin(name).map_err(|source| SessionError::Layout {
                file: self.file.clone(),
                line,
                place: place.to_string(),
                source: Box::new(source),
            });
        }
        let path = self.resolve(name);
        if let Some((_, l)) = self.layout_files.iter().find(|(p, _)| *p == path) {
            return Ok(l.clone());
        }
        let text = (self.read_layout)(&path).map_err(|message| SessionError::LayoutRead {
            file: self.file.clone(),
            line,
            place: place.to_string(),
            path: path.clone(),
            message,
        })?;
        let layout = Layout::parse(&text, &path.display().to_string()).map_err(|source| {
            SessionError::Layout {
                file: self.file.clone(),
                line,
                place: place.to_string(),
                source: Box::new(source),
            }
        })?;
        self.layout_files.push((path, layout.clone()));
        Ok(layout)
    }

    /// A parameter written as one value or as a keyframe list.
    fn automation<V, T>(
        &self,
        raw: Raw<'a>,
        place: &str,
        hint: &str,
        convert: &dyn Fn(V) -> Result<T, Problem>,
        same_kind: &dyn Fn(&V, &V) -> bool,
    ) -> Result<Automation<T>, SessionError>
    where
        V: Deserialize<'a> + Copy,
        T: Interpolate,
    {
        let line = self.line_of(raw);
        if !skip_trivia(raw.get_ron()).starts_with('[') {
            let v: V = self.de(raw, Some(hint))?;
            let value = convert(v).map_err(|p| self.invalid(line, place, p))?;
            return Ok(Automation::constant(value));
        }
        // Fast path, one pass over the list: a machine-written session may carry a million
        // keyframes. Any problem sends the list through the slow path, which reads it key by
        // key to name the keyframe and its line in the message.
        if let Ok(keys) = ron_options().from_str::<Vec<KeyFile<V>>>(raw.get_ron())
            && !keys.is_empty()
            && let Ok(automation) = self.keyframes(keys, place, line, &|_| None, convert, same_kind)
        {
            return Ok(automation);
        }
        let raws: Vec<Raw<'a>> = self.de(raw, Some(hint))?;
        if raws.is_empty() {
            return Err(self.invalid(
                line,
                place,
                (
                    "the keyframe list is empty".into(),
                    format!("one value, or at least one keyframe: {hint}"),
                ),
            ));
        }
        let keys = raws
            .iter()
            .map(|&kraw| self.de::<KeyFile<V>>(kraw, None))
            .collect::<Result<Vec<_>, _>>()?;
        let automation = self.keyframes(
            keys,
            place,
            line,
            &|k| self.line_of(raws[k]),
            convert,
            same_kind,
        )?;
        Ok(automation)
    }

    /// Checks keyframes (times in range and strictly increasing, one kind of value) and
    /// converts them; `line_of_key(k)` gives keyframe k's line for messages, where known.
    fn keyframes<V, T>(
        &self,
        keys: Vec<KeyFile<V>>,
        place: &str,
        list_line: Option<usize>,
        line_of_key: &dyn Fn(usize) -> Option<usize>,
        convert: &dyn Fn(V) -> Result<T, Problem>,
        same_kind: &dyn Fn(&V, &V) -> bool,
    ) -> Result<Automation<T>, SessionError>
    where
        V: Copy,
        T: Interpolate,
    {
        let mut out: Vec<Keyframe<T>> = Vec::with_capacity(keys.len());
        let mut previous: Option<(f64, u64, V)> = None;
        let time_allowed = format!("a time in seconds from 0 to {MAX_TIME_S}");
        for (k, key) in keys.into_iter().enumerate() {
            let invalid = |p: Problem| {
                self.invalid(line_of_key(k), &format!("{place} keyframe {}", k + 1), p)
            };
            let time = check(
                key.time,
                (0.0..=MAX_TIME_S).contains(&key.time),
                "time",
                " s",
                &time_allowed,
            )
            .map_err(invalid)?;
            let frame = self.seconds_to_frames(time);
            if let Some((prev_time, prev_frame, prev_value)) = &previous {
                if frame <= *prev_frame {
                    return Err(invalid((
                        format!(
                            "time = {time} s (frame {frame}) is not after keyframe {}'s \
                             time {prev_time} s (frame {prev_frame})",
                            k
                        ),
                        "keyframe times in strictly increasing order, at least one sample apart"
                            .into(),
                    )));
                }
                if !same_kind(prev_value, &key.value) {
                    return Err(invalid((
                        format!("the value's kind differs from keyframe {k}'s"),
                        "the same kind of value in every keyframe (all Cart or all Polar)".into(),
                    )));
                }
            }
            previous = Some((time, frame, key.value));
            let value = convert(key.value).map_err(invalid)?;
            out.push(Keyframe {
                frame,
                value,
                interpolation: key.interp,
            });
        }
        Automation::new(out)
            .map_err(|e| self.invalid(list_line, place, (e.to_string(), String::new())))
    }
}

/// A bed's channel map: one file channel (from 1) per layout channel, each used once.
fn bed_channels(list: &[i64], layout: &Layout) -> Result<Vec<usize>, Problem> {
    let allowed = format!(
        "one file channel (counted from 1, up to 65535) per channel of layout {:?} ({}), each \
         used once; leave `channels` out when the file has exactly the layout's channels in order",
        layout.name,
        layout.labels().join(" ")
    );
    if list.len() != layout.num_channels() {
        return Err((
            format!(
                "{} channels are listed for the {} channels of layout {:?}",
                list.len(),
                layout.num_channels(),
                layout.name
            ),
            allowed,
        ));
    }
    let mut out: Vec<usize> = Vec::with_capacity(list.len());
    for &c in list {
        if !(1..=65535).contains(&c) {
            return Err((format!("channel {c} is not a channel number"), allowed));
        }
        let c = c as usize - 1;
        if out.contains(&c) {
            return Err((format!("channel {} is listed twice", c + 1), allowed));
        }
        out.push(c);
    }
    Ok(out)
}

fn convert_gain(v: f64) -> Result<f64, Problem> {
    check(
        v,
        v <= 24.0,
        "gain_db",
        " dB",
        "a gain in dB of at most +24",
    )
}

fn convert_size(v: f64) -> Result<f64, Problem> {
    check_in(v, 0.0, 1.0, "size", "")
}

fn convert_unit(name: &'static str) -> impl Fn(f64) -> Result<f64, Problem> {
    move |v| check_in(v, 0.0, 1.0, name, "")
}

fn convert_extent(e: ExtentFile) -> Result<Extent, Problem> {
    let allowed = "width and height from 0 to 360 (degrees, polar objects) or 0 to 2 \
        (Cartesian objects); depth from 0 to 2";
    check(
        e.width,
        (0.0..=360.0).contains(&e.width),
        "width",
        "",
        allowed,
    )?;
    check(
        e.height,
        (0.0..=360.0).contains(&e.height),
        "height",
        "",
        allowed,
    )?;
    check(
        e.depth,
        (0.0..=2.0).contains(&e.depth),
        "depth",
        "",
        allowed,
    )?;
    Ok(Extent {
        width: e.width,
        height: e.height,
        depth: e.depth,
    })
}

/// The object's BS.2127 controls, checked; `cartesian`: its position is `Cart`.
fn convert_zone(z: ZoneFile) -> Result<ExclusionZone, Problem> {
    let unit = "Cart zones: min_x…max_z from -1 to 1, each min ≤ max";
    Ok(match z {
        ZoneFile::Speaker(name) => {
            if name.trim().is_empty() {
                return Err((
                    "an empty speaker name".into(),
                    "a BS.2051 name (`M+030`) or a short name (`Ls`)".into(),
                ));
            }
            ExclusionZone::Speaker(name)
        }
        ZoneFile::Polar {
            min_az,
            max_az,
            min_el,
            max_el,
        } => {
            let allowed = "Polar zones: min_az, max_az from -180 to 180 (from min_az \
                anticlockwise to max_az), min_el ≤ max_el from -90 to 90";
            for (n, v) in [("min_az", min_az), ("max_az", max_az)] {
                check(v, (-180.0..=180.0).contains(&v), n, "°", allowed)?;
            }
            for (n, v) in [("min_el", min_el), ("max_el", max_el)] {
                check(v, (-90.0..=90.0).contains(&v), n, "°", allowed)?;
            }
            check(max_el, min_el <= max_el, "max_el", "°", allowed)?;
            ExclusionZone::Polar {
                min_azimuth_deg: min_az,
                max_azimuth_deg: max_az,
                min_elevation_deg: min_el,
                max_elevation_deg: max_el,
            }
        }
        ZoneFile::Cart {
            min_x,
            max_x,
            min_y,
            max_y,
            min_z,
            max_z,
        } => {
            for (n, v) in [
                ("min_x", min_x),
                ("max_x", max_x),
                ("min_y", min_y),
                ("max_y", max_y),
                ("min_z", min_z),
                ("max_z", max_z),
            ] {
                check(v, (-1.0..=1.0).contains(&v), n, "", unit)?;
            }
            for (n, lo, hi) in [
                ("max_x", min_x, max_x),
                ("max_y", min_y, max_y),
                ("max_z", min_z, max_z),
            ] {
                check(hi, lo <= hi, n, "", unit)?;
            }
            ExclusionZone::Cartesian {
                min_x,
                max_x,
                min_y,
                max_y,
                min_z,
                max_z,
            }
        }
    })
}

fn convert_position(p: PositionFile) -> Result<Position, Problem> {
    match p {
        PositionFile::Cart { x, y, z } => {
            let allowed = "Cart: x, y, z from -1 to 1 (x right, y front, z up)";
            for (name, v) in [("x", x), ("y", y), ("z", z)] {
                check(v, (-1.0..=1.0).contains(&v), name, "", allowed)?;
            }
            Ok(Position::Cartesian { x, y, z })
        }
        PositionFile::Polar { az, el, dist } => {
            check(
                az,
                (-360.0..=360.0).contains(&az),
                "az",
                "°",
                "Polar: az from -360 to 360 degrees (positive left)",
            )?;
            check(
                el,
                (-90.0..=90.0).contains(&el),
                "el",
                "°",
                "Polar: el from -90 to 90 degrees",
            )?;
            check(
                dist,
                (0.0..=100.0).contains(&dist),
                "dist",
                "",
                "Polar: dist from 0 to 100 (1 = the speakers)",
            )?;
            Ok(Position::Polar {
                azimuth_deg: az,
                elevation_deg: el,
                distance: dist,
            })
        }
    }
}

const GAIN_HINT: &str = "a gain in dB (`gain_db: -3.0`) or keyframes \
    `[(time: 0.0, value: -6.0), (time: 2.0, value: 0.0, interp: Smooth)]`";
const EXTENT_HINT: &str = "`(width: 60, height: 20, depth: 0)` (polar: degrees; Cartesian: \
    0…2) or keyframes `[(time: 0.0, value: (width: 0.4, height: 0.4, depth: 0.4)), …]`";
const UNIT_HINT: &str = "a value from 0 to 1 (`diffuse: 0.3`) or keyframes \
    `[(time: 0.0, value: 0.0), (time: 4.0, value: 0.5)]`";
const SIZE_HINT: &str = "a size from 0 to 1 (`size: 0.2`) or keyframes \
    `[(time: 0.0, value: 0.0), (time: 4.0, value: 0.5)]`";
const POSITION_HINT: &str = "`Cart(x: …, y: …, z: …)`, `Polar(az: …, el: …, dist: …)` or \
    keyframes `[(time: 0.0, value: Cart(x: -1, y: 1, z: 0)), (time: 4.0, value: …)]`";
const SOURCE_HINT: &str = "a file name (`source: \"stems/vox.wav\"`) or \
    `(file: \"stems/gtr.wav\", channel: 2)` with channels counted from 1";
const TARGET_HINT: &str = "a preset name (`target: \"ebu-r128\"`) or `(integrated_lufs: -23, \
    tolerance_lu: 1, max_integrated_lufs: -18, true_peak_dbtp: -1)`";

/// Parses and validates a session. `origin` is the session file's path: it names the file
/// in errors, and relative paths resolve against its folder. `read_layout` reads a layout
/// file (`….ron`) given its resolved path.
pub fn parse(
    text: &str,
    origin: &Path,
    read_layout: &mut dyn FnMut(&Path) -> Result<String, String>,
) -> Result<Scene, SessionError> {
    let file = origin.to_path_buf();
    // Only blanks and comments is an empty file; an unclosed `/*` is ron's syntax error.
    if skip_trivia(text).is_empty() && !unclosed_block_comment(text) {
        return Err(SessionError::EmptyFile { file });
    }
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut ctx = Ctx {
        line_starts,
        text,
        file,
        dir: origin.parent().map(Path::to_path_buf).unwrap_or_default(),
        sample_rate: DEFAULT_SAMPLE_RATE,
        read_layout,
        layout_files: Vec::new(),
        builtins: None,
    };
    let top: SessionFile = ron_options()
        .from_str(text)
        .map_err(|e| ctx.syntax((1, 1), e, None))?;

    if let Some(raw) = top.sample_rate {
        // Read as a number so that `44100.5` gets a clear message, not a parse error.
        let rate: f64 = ctx.de(raw, Some("a sample rate in Hz, e.g. `sample_rate: 48000`"))?;
        let allowed = "a whole number of Hz from 8000 to 384000 (e.g. 44100, 48000, 96000)";
        check(
            rate,
            (8000.0..=384_000.0).contains(&rate) && rate.fract() == 0.0,
            "sample_rate",
            " Hz",
            allowed,
        )
        .map_err(|p| ctx.invalid(ctx.line_of(raw), "sample_rate", p))?;
        ctx.sample_rate = rate as u32;
    }
    let duration_frames = match top.duration {
        None => None,
        Some(raw) => {
            let d: f64 = ctx.de(raw, Some("a duration in seconds, e.g. `duration: 20.0`"))?;
            let d = check(
                d,
                d > 0.0 && d <= MAX_TIME_S,
                "duration",
                " s",
                &format!("a duration in seconds, more than 0 and at most {MAX_TIME_S}"),
            )
            .map_err(|p| ctx.invalid(ctx.line_of(raw), "duration", p))?;
            Some(ctx.seconds_to_frames(d).max(1))
        }
    };
    if top.objects.is_empty() && top.beds.is_empty() {
        return Err(ctx.invalid(
            None,
            "session",
            (
                "the session has no objects and no beds".into(),
                "at least one object (`objects: [(name: …, source: …, position: …)]`) or bed \
                 (`beds: [(name: …, source: …, layout: …)]`)"
                    .into(),
            ),
        ));
    }

    // Names are unique across objects and beds: reports and solo/mute use them.
    let mut names: Vec<(String, String)> = Vec::new();
    let mut check_name = |ctx: &Ctx, name: &str, place: String, line| {
        if name.trim().is_empty() {
            return Err(ctx.invalid(
                line,
                &place,
                (
                    format!("the name {name:?} is empty"),
                    "a non-empty name, unique among objects and beds".into(),
                ),
            ));
        }
        if let Some((_, other)) = names.iter().find(|(n, _)| n == name) {
            return Err(ctx.invalid(
                line,
                &format!("{place} {name:?}"),
                (
                    format!("the name {name:?} is already used by {other}"),
                    "a non-empty name, unique among objects and beds".into(),
                ),
            ));
        }
        names.push((name.to_string(), place));
        Ok(())
    };

    let mut objects = Vec::with_capacity(top.objects.len());
    for (i, &raw) in top.objects.iter().enumerate() {
        let line = ctx.line_of(raw);
        let o: ObjectFile = ctx.de(raw, None)?;
        check_name(&ctx, &o.name, format!("objects[{i}]"), line)?;
        let place = format!("objects[{i}] {:?}", o.name);
        let source = parse_source(&ctx, o.source, &format!("{place}: source"))?;
        let gain_db = match o.gain_db {
            None => Automation::constant(0.0),
            Some(r) => ctx.automation(
                r,
                &format!("{place}: gain_db"),
                GAIN_HINT,
                &convert_gain,
                &|_, _| true,
            )?,
        };
        let position = ctx.automation(
            o.position,
            &format!("{place}: position"),
            POSITION_HINT,
            &convert_position,
            &|a, b| std::mem::discriminant(a) == std::mem::discriminant(b),
        )?;
        let size = match o.size {
            None => Automation::constant(0.0),
            Some(r) => ctx.automation(
                r,
                &format!("{place}: size"),
                SIZE_HINT,
                &convert_size,
                &|_, _| true,
            )?,
        };
        let unit = |raw: Option<Raw<'_>>, name: &'static str| match raw {
            None => Ok(Automation::constant(0.0)),
            Some(r) => ctx.automation(
                r,
                &format!("{place}: {name}"),
                UNIT_HINT,
                &convert_unit(name),
                &|_, _| true,
            ),
        };
        let extent = match o.extent {
            None => None,
            Some(r) => Some(ctx.automation(
                r,
                &format!("{place}: extent"),
                EXTENT_HINT,
                &convert_extent,
                &|_, _| true,
            )?),
        };
        let (snap, zones) =
            switched_controls(&ctx, line, &place, o.snap, o.zones, o.divergence_range)?;
        let mut changes: Vec<ControlChange> = Vec::with_capacity(o.control_changes.len());
        for (k, &raw) in o.control_changes.iter().enumerate() {
            let entry_place = format!("{place}: control_changes[{k}]");
            let entry_line = ctx.line_of(raw);
            let e: ControlChangeFile = ctx.de(raw, Some(CONTROL_CHANGE_HINT))?;
            let (previous_time, previous_frame) = changes.last().map_or((0.0, 0), |c| {
                (c.frame as f64 / ctx.sample_rate as f64, c.frame)
            });
            let time_allowed = format!(
                "a time in seconds above the previous change's ({previous_time} s; 0 for the \
                 first) and at most {MAX_TIME_S}, at least one sample later: changes in \
                 time order"
            );
            let time = check(
                e.time,
                (0.0..=MAX_TIME_S).contains(&e.time),
                "time",
                " s",
                &time_allowed,
            )
            .map_err(|p| ctx.invalid(entry_line, &format!("{entry_place}: time"), p))?;
            let frame = ctx.seconds_to_frames(time);
            if frame <= previous_frame {
                return Err(ctx.invalid(
                    entry_line,
                    &format!("{entry_place}: time"),
                    (
                        format!(
                            "time = {time} s (frame {frame}) is not after {}",
                            if changes.is_empty() {
                                "the start (frame 0: the object's own fields hold there)"
                                    .to_string()
                            } else {
                                format!("control_changes[{}]'s (frame {previous_frame})", k - 1)
                            }
                        ),
                        time_allowed,
                    ),
                ));
            }
            let ramp_from = match e.ramp_from {
                None => frame,
                Some(r) => {
                    let allowed = format!(
                        "a time in seconds from the previous change's time ({previous_time} s) \
                         to this one's ({time} s): where the gains start moving to this set's"
                    );
                    let r = check(
                        r,
                        r >= previous_time - 0.5 / ctx.sample_rate as f64
                            && r <= time + 0.5 / ctx.sample_rate as f64,
                        "ramp_from",
                        " s",
                        &allowed,
                    )
                    .map_err(|p| {
                        ctx.invalid(entry_line, &format!("{entry_place}: ramp_from"), p)
                    })?;
                    ctx.seconds_to_frames(r).clamp(previous_frame, frame)
                }
            };
            let (snap, zones) = switched_controls(
                &ctx,
                entry_line,
                &entry_place,
                e.snap,
                e.zones,
                e.divergence_range,
            )?;
            changes.push(ControlChange {
                ramp_from,
                frame,
                set: SwitchedControls {
                    divergence_range: e.divergence_range,
                    snap,
                    zones,
                    screen_ref: e.screen_ref,
                    screen_edge_lock: e.screen_edge_lock,
                },
            });
        }
        let importance = match o.importance {
            None => 10,
            Some(v) if (0..=10).contains(&v) => v as u8,
            Some(v) => {
                return Err(ctx.invalid(
                    line,
                    &format!("{place}: importance"),
                    (
                        format!("importance {v} is out of range"),
                        "an importance from 0 (least) to 10 (most, the default)".into(),
                    ),
                ));
            }
        };
        let mut block_importance: Vec<ImportanceGain> =
            Vec::with_capacity(o.block_importance.len());
        for (k, &raw) in o.block_importance.iter().enumerate() {
            let entry_place = format!("{place}: block_importance[{k}]");
            let e: ImportanceFile = ctx.de(raw, Some(BLOCK_IMPORTANCE_HINT))?;
            let previous = block_importance.last().map_or(0, |l| i64::from(l.from));
            if !(1..=10).contains(&e.from) || e.from <= previous {
                return Err(ctx.invalid(
                    ctx.line_of(raw),
                    &format!("{entry_place}: from"),
                    (
                        format!(
                            "from {} is out of range or not after the entry before",
                            e.from
                        ),
                        "a --min-importance from 1 to 10, increasing from entry to entry".into(),
                    ),
                ));
            }
            let gain_db = ctx.automation(
                e.gain_db,
                &format!("{entry_place}: gain_db"),
                GAIN_HINT,
                &convert_gain,
                &|_, _| true,
            )?;
            block_importance.push(ImportanceGain {
                from: e.from as u8,
                gain_db,
            });
        }
        let controls = ObjectControls {
            block_importance,
            reference_screen: None,
            extent,
            diffuse: unit(o.diffuse, "diffuse")?,
            divergence: unit(o.divergence, "divergence")?,
            divergence_range: o.divergence_range,
            snap,
            zones,
            screen_ref: o.screen_ref,
            screen_edge_lock: o.screen_edge_lock,
            changes,
            importance,
            interpolate_gains: o.interpolate_gains,
        };
        objects.push(ObjectSpec {
            name: o.name,
            source,
            gain_db,
            mute: o.mute,
            position,
            size,
            binaural: o.binaural,
            controls,
        });
    }

    let mut beds = Vec::with_capacity(top.beds.len());
    for (i, &raw) in top.beds.iter().enumerate() {
        let line = ctx.line_of(raw);
        let b: BedFile = ctx.de(raw, None)?;
        check_name(&ctx, &b.name, format!("beds[{i}]"), line)?;
        let place = format!("beds[{i}] {:?}", b.name);
        if b.source.trim().is_empty() {
            return Err(ctx.invalid(
                line,
                &format!("{place}: source"),
                ("the file name is empty".into(), "a WAV file name".into()),
            ));
        }
        let gain_db = convert_gain(b.gain_db).map_err(|p| ctx.invalid(line, &place, p))?;
        let layout = ctx.layout(&b.layout, line, &format!("{place}: layout"))?;
        let channels = match b.channels {
            None => None,
            Some(list) => Some(
                bed_channels(&list, &layout)
                    .map_err(|p| ctx.invalid(line, &format!("{place}: channels"), p))?,
            ),
        };
        if let Some(modes) = &b.binaural
            && modes.len() != layout.num_channels()
        {
            return Err(ctx.invalid(
                line,
                &format!("{place}: binaural"),
                (
                    format!("{} modes", modes.len()),
                    format!(
                        "one mode (Off | Near | Mid | Far) per channel of {}: {}",
                        layout.name,
                        layout.num_channels()
                    ),
                ),
            ));
        }
        beds.push(BedSpec {
            binaural: b.binaural,
            name: b.name,
            source: ctx.resolve(&b.source),
            layout,
            gain_db,
            mute: b.mute,
            channels,
            hoa: None,
            active_frames: None,
            speaker_bounds: Vec::new(),
            channel_gains: Vec::new(),
        });
    }

    let mut outputs = Vec::with_capacity(top.outputs.len());
    for (i, &raw) in top.outputs.iter().enumerate() {
        outputs.push(parse_output(&mut ctx, raw, i)?);
    }

    let reference_screen = match top.reference_screen {
        None => None,
        Some(raw) => {
            let f: ScreenFile = ctx.de(raw, Some(SCREEN_HINT))?;
            let screen = match f {
                ScreenFile::Polar {
                    aspect_ratio,
                    az,
                    el,
                    dist,
                    width,
                } => ReferenceScreen::Polar {
                    aspect_ratio,
                    azimuth_deg: az,
                    elevation_deg: el,
                    distance: dist,
                    width_deg: width,
                },
                ScreenFile::Cart {
                    aspect_ratio,
                    x,
                    y,
                    z,
                    width,
                } => ReferenceScreen::Cartesian {
                    aspect_ratio,
                    x,
                    y,
                    z,
                    width,
                },
            };
            if let Some((problem, allowed)) =
                crate::spatial::objectbased::screen::reference_problem(&screen)
            {
                return Err(ctx.invalid(
                    ctx.line_of(raw),
                    "reference_screen",
                    (problem, allowed.into()),
                ));
            }
            Some(screen)
        }
    };
    let mut scene = Scene {
        sample_rate: ctx.sample_rate,
        duration_frames,
        objects,
        beds,
        outputs,
        origin: ctx.file,
    };
    scene.set_reference_screen(reference_screen);
    Ok(scene)
}

const SCREEN_HINT: &str = "`reference_screen: Polar(aspect_ratio: 1.78, az: 0, el: 0, dist: 1, \
     width: 58)` or `Cart(aspect_ratio: 1.78, x: 0, y: 1, z: 0, width: 1)`";
const BLOCK_IMPORTANCE_HINT: &str = "`(from: 4, gain_db: [(time: 0, value: 0), …])`";
const CONTROL_CHANGE_HINT: &str = "`(time: 2.0, ramp_from: 1.9, snap: Any, zones: [Speaker(\"M+030\")], \
     screen_ref: true, screen_edge_lock: [Left], divergence_range: 45)`, each field but `time` \
     optional";

/// Checks and converts one set's `snap`, `zones` and `divergence_range` (the object's
/// own or a `control_changes` entry's); errors name `place`.
fn switched_controls(
    ctx: &Ctx<'_, '_>,
    line: Option<usize>,
    place: &str,
    snap: Option<SnapFile>,
    zones: Vec<ZoneFile>,
    divergence_range: Option<f64>,
) -> Result<(Option<Snap>, Vec<ExclusionZone>), SessionError> {
    let snap = match snap {
        None => None,
        Some(SnapFile::Any) => Some(Snap { max_distance: None }),
        Some(SnapFile::Within(d)) => {
            check(
                d,
                (0.0..=2.0).contains(&d),
                "snap",
                "",
                "`snap: Any` or `snap: Within(d)` with d from 0 to 2 (the room is 2 wide)",
            )
            .map_err(|p| ctx.invalid(line, &format!("{place}: snap"), p))?;
            Some(Snap {
                max_distance: Some(d),
            })
        }
    };
    let zones = zones
        .into_iter()
        .enumerate()
        .map(|(k, z)| {
            convert_zone(z).map_err(|p| ctx.invalid(line, &format!("{place}: zones[{k}]"), p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(r) = divergence_range {
        check(
            r,
            (0.0..=180.0).contains(&r),
            "divergence_range",
            "",
            "polar objects: degrees from 0 to 180; Cartesian: 0 to 1",
        )
        .map_err(|p| ctx.invalid(line, &format!("{place}: divergence_range"), p))?;
    }
    Ok((snap, zones))
}

fn parse_source<'a>(
    ctx: &Ctx<'a, '_>,
    raw: Raw<'a>,
    place: &str,
) -> Result<SourceSpec, SessionError> {
    let line = ctx.line_of(raw);
    let s = skip_trivia(raw.get_ron());
    let (file, channel) = if is_string_literal(s) {
        (ctx.de::<String>(raw, Some(SOURCE_HINT))?, None)
    } else if s.starts_with('(') || s.starts_with("Source") {
        let f: SourceFile = ctx.de(raw, Some(SOURCE_HINT))?;
        (f.file, f.channel)
    } else {
        return Err(ctx.invalid(
            line,
            place,
            (
                format!("`{}` is not a source", s.trim_end()),
                SOURCE_HINT.into(),
            ),
        ));
    };
    if file.trim().is_empty() {
        return Err(ctx.invalid(
            line,
            place,
            ("the file name is empty".into(), SOURCE_HINT.into()),
        ));
    }
    let channel = match channel {
        None => None,
        Some(c) if (1..=65535).contains(&c) => Some(c as usize - 1),
        Some(c) => {
            return Err(ctx.invalid(
                line,
                &format!("{place} channel"),
                (
                    format!("channel = {c} is not a channel number"),
                    "channels are counted from 1 (the first channel is 1, not 0) up to 65535; \
                     leave `channel` out for a mono file"
                        .into(),
                ),
            ));
        }
    };
    Ok(SourceSpec {
        path: ctx.resolve(&file),
        channel,
    })
}

fn parse_output<'a>(
    ctx: &mut Ctx<'a, '_>,
    raw: Raw<'a>,
    i: usize,
) -> Result<OutputSpec, SessionError> {
    let line = ctx.line_of(raw);
    let o: OutputFile = ctx.de(raw, None)?;
    let lfe_range = |v: f64, name: &str| check_in(v, -60.0, 12.0, name, " dB");
    Ok(match o {
        OutputFile::Speakers {
            layout,
            chain,
            target,
        } => {
            let place = format!("outputs[{i}] Speakers {layout:?}");
            let layout = ctx.layout(&layout, line, &format!("{place}: layout"))?;
            OutputSpec::Speakers {
                layout,
                chain: parse_chain(ctx, &chain, &place)?,
                target: parse_target(ctx, target, &place)?,
            }
        }
        OutputFile::Binaural {
            hrtf,
            lfe_db,
            chain,
            target,
        } => {
            let place = format!("outputs[{i}] Binaural");
            if let Some(h) = &hrtf
                && h.trim().is_empty()
            {
                return Err(ctx.invalid(
                    line,
                    &format!("{place}: hrtf"),
                    (
                        "the file name is empty".into(),
                        "a SOFA file name, or leave `hrtf` out for the built-in set".into(),
                    ),
                ));
            }
            if let Some(v) = lfe_db {
                lfe_range(v, "lfe_db").map_err(|p| ctx.invalid(line, &place, p))?;
            }
            OutputSpec::Binaural {
                hrtf: hrtf.map(|h| ctx.resolve(&h)),
                lfe_db,
                chain: parse_chain(ctx, &chain, &place)?,
                target: parse_target(ctx, target, &place)?,
            }
        }
        OutputFile::Stereo {
            from,
            fold,
            chain,
            target,
        } => {
            let place = format!("outputs[{i}] Stereo");
            let layout = ctx.layout(&from, line, &format!("{place}: from"))?;
            let ear = |sign: f64| {
                layout.channels.iter().any(|c| {
                    !c.lfe
                        && c.elevation_deg.abs() <= 10.0
                        && c.azimuth_deg * sign > 0.0
                        && c.azimuth_deg * sign < 180.0
                })
            };
            if !(ear(1.0) && ear(-1.0)) {
                return Err(ctx.invalid(
                    line,
                    &format!("{place}: from"),
                    (
                        format!(
                            "layout {:?} has no ear-level speakers on both sides to fold down \
                             from (its speakers: {})",
                            layout.name,
                            layout
                                .channels
                                .iter()
                                .map(|c| format!(
                                    "{} @{}°/{}°",
                                    c.label, c.azimuth_deg, c.elevation_deg
                                ))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "a layout with ear-level speakers (elevation within ±10°) left and \
                         right, e.g. 5.1, 7.1.4"
                            .into(),
                    ),
                ));
            }
            let fold_place = format!("{place}: fold");
            let trim = |v: f64, name: &str| {
                check_in(v, -60.0, 6.0, name, " dB").map_err(|p| ctx.invalid(line, &fold_place, p))
            };
            let defaults = FoldSpec::default();
            let trims_given = [
                fold.center_db,
                fold.surround_db,
                fold.rear_db,
                fold.height_db,
            ] != [
                defaults.center_db,
                defaults.surround_db,
                defaults.rear_db,
                defaults.height_db,
            ];
            let trim_mode = match fold.trim_mode {
                Some(TrimMode::Automatic) if trims_given => {
                    return Err(ctx.invalid(
                        line,
                        &fold_place,
                        (
                            "trim_mode Automatic with trims other than −3 dB".into(),
                            "trim_mode: Manual with the trims, or Automatic without them".into(),
                        ),
                    ));
                }
                Some(m) => m,
                None if trims_given => TrimMode::Manual,
                None => TrimMode::Automatic,
            };
            let fold = FoldSpec {
                trim_mode,
                matrix: fold.matrix,
                center_db: trim(fold.center_db, "center_db")?,
                surround_db: trim(fold.surround_db, "surround_db")?,
                rear_db: trim(fold.rear_db, "rear_db")?,
                height_db: trim(fold.height_db, "height_db")?,
                lfe_db: match fold.lfe_db {
                    None => None,
                    Some(v) => Some(
                        lfe_range(v, "lfe_db").map_err(|p| ctx.invalid(line, &fold_place, p))?,
                    ),
                },
            };
            OutputSpec::Stereo {
                from: layout,
                fold,
                chain: parse_chain(ctx, &chain, &place)?,
                target: parse_target(ctx, target, &place)?,
            }
        }
    })
}

fn parse_chain<'a>(
    ctx: &Ctx<'a, '_>,
    chain: &[Raw<'a>],
    output: &str,
) -> Result<Vec<ProcessorSettings>, SessionError> {
    let mut out = Vec::with_capacity(chain.len());
    let mut lines = Vec::with_capacity(chain.len());
    for &raw in chain {
        lines.push(ctx.line_of(raw));
        out.push(ctx.de::<ProcessorSettings>(raw, None)?);
    }
    // The processors' own validation: one set of ranges for sessions and the engine.
    ProcessorSettings::validate_chain(&out, ctx.sample_rate).map_err(|(j, e)| {
        let band = e.band().map(|b| format!(" band {b}")).unwrap_or_default();
        let place = format!("{output}: chain[{j}] {}{band}", out[j].name());
        ctx.invalid(lines[j], &place, dsp_problem(&e))
    })?;
    Ok(out)
}

/// A processor's validation error as a session problem (what is wrong, what is allowed).
fn dsp_problem(e: &DspError) -> Problem {
    (e.problem(), e.allowed())
}

fn parse_target<'a>(
    ctx: &Ctx<'a, '_>,
    raw: Option<Raw<'a>>,
    output: &str,
) -> Result<Option<TargetSpec>, SessionError> {
    let Some(raw) = raw else { return Ok(None) };
    let line = ctx.line_of(raw);
    let place = format!("{output}: target");
    let s = skip_trivia(raw.get_ron());
    if is_string_literal(s) {
        let name: String = ctx.de(raw, Some(TARGET_HINT))?;
        if name.trim().is_empty() {
            return Err(ctx.invalid(
                line,
                &place,
                ("the preset name is empty".into(), TARGET_HINT.into()),
            ));
        }
        return Ok(Some(TargetSpec::Preset(name)));
    }
    if !(s.starts_with('(') || s.starts_with("Custom")) {
        return Err(ctx.invalid(
            line,
            &place,
            (
                format!("`{}` is not a target", s.trim_end()),
                TARGET_HINT.into(),
            ),
        ));
    }
    let t: TargetFile = ctx.de(raw, Some(TARGET_HINT))?;
    let err = |p: Problem| ctx.invalid(line, &place, p);
    let opt = |v: Option<f64>,
               lo: f64,
               hi: f64,
               name: &str,
               unit: &str|
     -> Result<Option<f64>, SessionError> {
        v.map(|v| check_in(v, lo, hi, name, unit).map_err(err))
            .transpose()
    };
    let spec = TargetSpec::Custom {
        integrated_lufs: opt(t.integrated_lufs, -70.0, 0.0, "integrated_lufs", " LUFS")?,
        tolerance_lu: match t.tolerance_lu {
            None => None,
            Some(v) => Some(
                check(
                    v,
                    v > 0.0 && v <= 10.0,
                    "tolerance_lu",
                    " LU",
                    "tolerance_lu above 0, at most 10 LU",
                )
                .map_err(err)?,
            ),
        },
        max_integrated_lufs: opt(
            t.max_integrated_lufs,
            -70.0,
            0.0,
            "max_integrated_lufs",
            " LUFS",
        )?,
        true_peak_dbtp: opt(t.true_peak_dbtp, -30.0, 0.0, "true_peak_dbtp", " dBTP")?,
    };
    if spec
        == (TargetSpec::Custom {
            integrated_lufs: None,
            tolerance_lu: None,
            max_integrated_lufs: None,
            true_peak_dbtp: None,
        })
    {
        return Err(err(("the target sets nothing".into(), TARGET_HINT.into())));
    }
    Ok(Some(spec))
}

// ---------------------------------------------------------------------------------------
// Writing.

/// Writes a scene as session text that [`parse`] (with the same `origin`) reads back to an
/// equal [`Scene`]. Paths inside the session file's folder are written relative to it.
/// Layouts are written by name, so every layout must be a built-in one (an error names the
/// first that is not).
pub fn write(scene: &Scene) -> Result<String, SessionError> {
    let dir = scene
        .origin
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = |p: &Path| -> String {
        let rel = if dir.as_os_str().is_empty() {
            p
        } else {
            p.strip_prefix(&dir).unwrap_or(p)
        };
        format!("{:?}", rel.to_string_lossy())
    };
    let layout = |l: &Layout, place: &str| -> Result<String, SessionError> {
        match Layout::builtin(&l.name) {
            Ok(b) if b == *l => Ok(format!("{:?}", l.name)),
            _ => Err(SessionError::Invalid {
                file: scene.origin.clone(),
                line: None,
                place: place.to_string(),
                problem: format!("layout {:?} is not a built-in layout", l.name),
                allowed: format!("built-in layouts ({})", Layout::builtin_names().join(", ")),
            }),
        }
    };
    let rate = f64::from(scene.sample_rate);
    let secs = |frame: u64| num(frame as f64 / rate);
    let mut s = String::new();
    s.push_str("// halo session (written by halo).\nSession(\n");
    let _ = writeln!(s, "    sample_rate: {},", scene.sample_rate);
    if let Some(d) = scene.duration_frames {
        let _ = writeln!(s, "    duration: {},", secs(d));
    }
    // The default screen stays implicit.
    match scene
        .reference_screen()
        .filter(|r| *r != ReferenceScreen::DEFAULT)
    {
        Some(ReferenceScreen::Polar {
            aspect_ratio,
            azimuth_deg,
            elevation_deg,
            distance,
            width_deg,
        }) => {
            let _ = writeln!(
                s,
                "    reference_screen: Polar(aspect_ratio: {}, az: {}, el: {}, dist: {}, width: {}),",
                num(aspect_ratio),
                num(azimuth_deg),
                num(elevation_deg),
                num(distance),
                num(width_deg)
            );
        }
        Some(ReferenceScreen::Cartesian {
            aspect_ratio,
            x,
            y,
            z,
            width,
        }) => {
            let _ = writeln!(
                s,
                "    reference_screen: Cart(aspect_ratio: {}, x: {}, y: {}, z: {}, width: {}),",
                num(aspect_ratio),
                num(x),
                num(y),
                num(z),
                num(width)
            );
        }
        None => {}
    }
    s.push_str("    objects: [\n");
    for o in &scene.objects {
        let _ = writeln!(s, "        (\n            name: {:?},", o.name);
        match o.source.channel {
            None => {
                let _ = writeln!(s, "            source: {},", path(&o.source.path));
            }
            Some(c) => {
                let _ = writeln!(
                    s,
                    "            source: (file: {}, channel: {}),",
                    path(&o.source.path),
                    c + 1
                );
            }
        }
        let _ = writeln!(
            s,
            "            gain_db: {},",
            write_automation(&o.gain_db, &secs, &|v| num(*v))
        );
        if o.mute {
            s.push_str("            mute: true,\n");
        }
        let _ = writeln!(
            s,
            "            position: {},",
            write_automation(&o.position, &secs, &write_position)
        );
        let _ = writeln!(
            s,
            "            size: {},",
            write_automation(&o.size, &secs, &|v| num(*v))
        );
        write_controls(&mut s, &o.controls, &secs);
        let _ = writeln!(s, "            binaural: {:?},\n        ),", o.binaural);
    }
    s.push_str("    ],\n    beds: [\n");
    for (i, b) in scene.beds.iter().enumerate() {
        let _ = write!(
            s,
            "        (name: {:?}, source: {}, layout: {}, gain_db: {}, mute: {}",
            b.name,
            path(&b.source),
            layout(&b.layout, &format!("beds[{i}] {:?}: layout", b.name))?,
            num(b.gain_db),
            b.mute
        );
        if let Some(ch) = &b.channels {
            let list: Vec<String> = ch.iter().map(|c| (c + 1).to_string()).collect();
            let _ = write!(s, ", channels: [{}]", list.join(", "));
        }
        if let Some(modes) = &b.binaural {
            let list: Vec<String> = modes.iter().map(|m| format!("{m:?}")).collect();
            let _ = write!(s, ", binaural: [{}]", list.join(", "));
        }
        s.push_str("),\n");
    }
    s.push_str("    ],\n    outputs: [\n");
    for (i, o) in scene.outputs.iter().enumerate() {
        let place = format!("outputs[{i}]");
        let common = |chain: &[ProcessorSettings], target: &Option<TargetSpec>| {
            let mut t = format!(
                "chain: [{}]",
                chain
                    .iter()
                    .map(write_processor)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(target) = target {
                let _ = write!(t, ", target: {}", write_target(target));
            }
            t
        };
        match o {
            OutputSpec::Speakers {
                layout: l,
                chain,
                target,
            } => {
                let _ = writeln!(
                    s,
                    "        Speakers(layout: {}, {}),",
                    layout(l, &format!("{place}: layout"))?,
                    common(chain, target)
                );
            }
            OutputSpec::Binaural {
                hrtf,
                lfe_db,
                chain,
                target,
            } => {
                s.push_str("        Binaural(");
                if let Some(h) = hrtf {
                    let _ = write!(s, "hrtf: {}, ", path(h));
                }
                if let Some(l) = lfe_db {
                    let _ = write!(s, "lfe_db: {}, ", num(*l));
                }
                let _ = writeln!(s, "{}),", common(chain, target));
            }
            OutputSpec::Stereo {
                from,
                fold,
                chain,
                target,
            } => {
                let _ = write!(
                    s,
                    "        Stereo(from: {}, fold: (matrix: {:?}, center_db: {}, surround_db: {}, \
                     rear_db: {}, height_db: {}",
                    layout(from, &format!("{place}: from"))?,
                    fold.matrix,
                    num(fold.center_db),
                    num(fold.surround_db),
                    num(fold.rear_db),
                    num(fold.height_db)
                );
                if let Some(l) = fold.lfe_db {
                    let _ = write!(s, ", lfe_db: {}", num(l));
                }
                if fold.trim_mode == TrimMode::Manual {
                    let _ = write!(s, ", trim_mode: Manual");
                }
                let _ = writeln!(s, "), {}),", common(chain, target));
            }
        }
    }
    s.push_str("    ],\n)\n");
    Ok(s)
}

/// A number as RON reads it back exactly (Rust's shortest round-trip form).
fn num(v: f64) -> String {
    let t = format!("{v:?}");
    // `1e-7` is fine for RON; `inf`/`NaN` never reach here (validated scenes).
    t
}

fn write_position(p: &Position) -> String {
    match *p {
        Position::Cartesian { x, y, z } => {
            format!("Cart(x: {}, y: {}, z: {})", num(x), num(y), num(z))
        }
        Position::Polar {
            azimuth_deg,
            elevation_deg,
            distance,
        } => format!(
            "Polar(az: {}, el: {}, dist: {})",
            num(azimuth_deg),
            num(elevation_deg),
            num(distance)
        ),
    }
}

/// The object's BS.2127 controls that differ from the defaults, one field a line.
fn write_controls(s: &mut String, c: &ObjectControls, secs: &dyn Fn(u64) -> String) {
    let d = ObjectControls::default();
    if let Some(e) = &c.extent {
        let _ = writeln!(
            s,
            "            extent: {},",
            write_automation(e, secs, &|e: &Extent| format!(
                "(width: {}, height: {}, depth: {})",
                num(e.width),
                num(e.height),
                num(e.depth)
            ))
        );
    }
    for (name, a, default) in [
        ("diffuse", &c.diffuse, &d.diffuse),
        ("divergence", &c.divergence, &d.divergence),
    ] {
        if a != default {
            let _ = writeln!(
                s,
                "            {name}: {},",
                write_automation(a, secs, &|v| num(*v))
            );
        }
    }
    for item in switched_items(&c.first_set()) {
        let _ = writeln!(s, "            {item},");
    }
    if !c.changes.is_empty() {
        s.push_str("            control_changes: [\n");
        for ch in &c.changes {
            let mut items = vec![format!("time: {}", secs(ch.frame))];
            if ch.ramp_from != ch.frame {
                items.push(format!("ramp_from: {}", secs(ch.ramp_from)));
            }
            items.extend(switched_items(&ch.set));
            let _ = writeln!(s, "                ({}),", items.join(", "));
        }
        s.push_str("            ],\n");
    }
    if c.importance != d.importance {
        let _ = writeln!(s, "            importance: {},", c.importance);
    }
    if !c.block_importance.is_empty() {
        s.push_str("            block_importance: [\n");
        for l in &c.block_importance {
            let _ = writeln!(
                s,
                "                (from: {}, gain_db: {}),",
                l.from,
                write_automation(&l.gain_db, secs, &|v| num(*v))
            );
        }
        s.push_str("            ],\n");
    }
    if c.interpolate_gains {
        s.push_str("            interpolate_gains: true,\n");
    }
}

/// One set of switched controls as RON fields (`name: value`), those that differ from
/// the defaults, in the order the object's own are written.
fn switched_items(set: &SwitchedControls) -> Vec<String> {
    let mut items = Vec::new();
    if let Some(r) = set.divergence_range {
        items.push(format!("divergence_range: {}", num(r)));
    }
    match set.snap {
        None => {}
        Some(Snap { max_distance: None }) => items.push("snap: Any".into()),
        Some(Snap {
            max_distance: Some(m),
        }) => items.push(format!("snap: Within({})", num(m))),
    }
    if !set.zones.is_empty() {
        let zones: Vec<String> = set
            .zones
            .iter()
            .map(|z| match z {
                ExclusionZone::Speaker(n) => format!("Speaker({n:?})"),
                ExclusionZone::Polar {
                    min_azimuth_deg,
                    max_azimuth_deg,
                    min_elevation_deg,
                    max_elevation_deg,
                } => format!(
                    "Polar(min_az: {}, max_az: {}, min_el: {}, max_el: {})",
                    num(*min_azimuth_deg),
                    num(*max_azimuth_deg),
                    num(*min_elevation_deg),
                    num(*max_elevation_deg)
                ),
                ExclusionZone::Cartesian {
                    min_x,
                    max_x,
                    min_y,
                    max_y,
                    min_z,
                    max_z,
                } => format!(
                    "Cart(min_x: {}, max_x: {}, min_y: {}, max_y: {}, min_z: {}, max_z: {})",
                    num(*min_x),
                    num(*max_x),
                    num(*min_y),
                    num(*max_y),
                    num(*min_z),
                    num(*max_z)
                ),
            })
            .collect();
        items.push(format!("zones: [{}]", zones.join(", ")));
    }
    if set.screen_ref {
        items.push("screen_ref: true".into());
    }
    if !set.screen_edge_lock.is_empty() {
        let edges: Vec<String> = set
            .screen_edge_lock
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        items.push(format!("screen_edge_lock: [{}]", edges.join(", ")));
    }
    items
}

fn write_automation<T: Interpolate>(
    a: &Automation<T>,
    secs: &dyn Fn(u64) -> String,
    value: &dyn Fn(&T) -> String,
) -> String {
    let keys = a.keyframes();
    if keys.len() == 1 && keys[0].frame == 0 && keys[0].interpolation == Interpolation::Step {
        return value(&keys[0].value);
    }
    let items: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "(time: {}, value: {}, interp: {:?})",
                secs(k.frame),
                value(&k.value),
                k.interpolation
            )
        })
        .collect();
    format!(
        "[\n                {},\n            ]",
        items.join(",\n                ")
    )
}

fn write_processor(p: &ProcessorSettings) -> String {
    // The processor's own serde form, one line, newtypes unwrapped as sessions write them.
    ron_options()
        .to_string(p)
        .unwrap_or_else(|e| unreachable!("processor settings always serialise: {e}"))
}

fn write_target(t: &TargetSpec) -> String {
    match t {
        TargetSpec::Preset(name) => format!("{name:?}"),
        TargetSpec::Custom {
            integrated_lufs,
            tolerance_lu,
            max_integrated_lufs,
            true_peak_dbtp,
        } => {
            let fields: Vec<String> = [
                ("integrated_lufs", integrated_lufs),
                ("tolerance_lu", tolerance_lu),
                ("max_integrated_lufs", max_integrated_lufs),
                ("true_peak_dbtp", true_peak_dbtp),
            ]
            .iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n}: {}", num(v))))
            .collect();
            format!("Custom({})", fields.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Raw` hands over the same text as ron's own `RawValue` (so a ron upgrade that
    /// renames the raw-value token fails here, not in every session), and a value that is
    /// not RON is still refused.
    #[test]
    fn raw_matches_rons_raw_value() {
        #[derive(Deserialize)]
        struct Ours<'a> {
            #[serde(borrow)]
            a: Raw<'a>,
            #[serde(borrow)]
            b: Vec<Raw<'a>>,
        }
        #[derive(Deserialize)]
        struct Rons<'a> {
            #[serde(borrow)]
            a: &'a ron::value::RawValue,
            #[serde(borrow)]
            b: Vec<&'a ron::value::RawValue>,
        }
        let text = "(a: Polar(az: 30, /* c */ el: 0) , b: [ 1.5, (time: 0, value: -3), \"x\" ])";
        let ours: Ours = ron_options().from_str(text).expect("ours");
        let rons: Rons = ron_options().from_str(text).expect("ron's");
        assert_eq!(ours.a.get_ron(), rons.a.get_ron());
        assert_eq!(ours.a.get_ron(), "Polar(az: 30, /* c */ el: 0)");
        let ours_b: Vec<&str> = ours.b.iter().map(|r| r.get_ron()).collect();
        let rons_b: Vec<&str> = rons.b.iter().map(|r| r.get_ron()).collect();
        assert_eq!(ours_b, rons_b);
        assert_eq!(ours_b, ["1.5", "(time: 0, value: -3)", "\"x\""]);
        assert!(
            ron_options()
                .from_str::<Ours>("(a: Polar(az: , b: [])")
                .is_err()
        );
    }
}
