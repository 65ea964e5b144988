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
//! **DirectSpeakers** (beds, matched by `speakerLabel` to a built-in halo layout), reached
//! through `audioTrackUID` → `audioTrackFormat` → `audioStreamFormat`, or directly from the
//! `audioTrackUID` to the channel format (the BS.2076-2 shortcut), or from the `chna`
//! entries alone. HOA, Matrix and Binaural content, screen-related metadata, zone exclusion,
//! divergence, channel lock and complementary objects are reported as warnings, never
//! silently dropped.
//!
//! # Timing of block formats (BS.2127 §7.3 / the EBU ADM renderer)
//!
//! A block covers `[rtime, rtime + duration)` relative to its object's `start`. If it starts
//! exactly where the previous block ended, its parameters move from the previous block's
//! values to its own over the interpolation length — the whole block when `jumpPosition`
//! is 0, `interpolationLength` (default 0) when it is 1 — and then hold. A first block, or
//! one after a gap, jumps to its values at once. halo turns this into keyframes: a `Linear`
//! keyframe at `rtime` with the previous values and a keyframe at `rtime + length` with
//! the block's own (or a single keyframe when the length is 0). BS.2127 interpolates the
//! loudspeaker gains; halo interpolates the position and pans every 64 samples, which is
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

fn invalid(element: impl fmt::Display, problem: impl Into<String>, allowed: &str) -> AdmError {
    AdmError::Invalid {
        element: element.to_string(),
        problem: problem.into(),
        allowed: allowed.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Time.

/// An ADM time: whole seconds plus the fraction `num/den` (`den` is `10^digits` for the
/// decimal form `hh:mm:ss.fffff`, the sample rate for the BS.2076-2 form
/// `hh:mm:ss.nnnnnSddddd`).
#[derive(Debug, Clone, Copy)]
pub struct AdmTime {
    pub seconds: u64,
    pub num: u64,
    pub den: u64,
}

impl AdmTime {
    pub const ZERO: AdmTime = AdmTime {
        seconds: 0,
        num: 0,
        den: 100_000,
    };

    /// A time of `frames` samples at `rate`: the decimal form when it is exact in five
    /// digits, the sample form otherwise.
    pub fn from_frames(frames: u64, rate: u32) -> AdmTime {
        let rate = u64::from(rate.max(1));
        let seconds = frames / rate;
        let rem = frames % rate;
        if (rem * 100_000).is_multiple_of(rate) {
            AdmTime {
                seconds,
                num: rem * 100_000 / rate,
                den: 100_000,
            }
        } else {
            AdmTime {
                seconds,
                num: rem,
                den: rate,
            }
        }
    }

    /// Parses `hh:mm:ss.fffff` (any number of fraction digits up to 18) or
    /// `hh:mm:ss.nnnnnSddddd` (`n` samples at `d` Hz, `n < d`).
    pub fn parse(s: &str) -> Option<AdmTime> {
        let s = s.trim();
        let mut parts = s.splitn(3, ':');
        let (h, m, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) || m.len() != 2 {
            return None;
        }
        let (sec, frac) = rest.split_once('.')?;
        if !digits(sec) || sec.len() != 2 {
            return None;
        }
        let (h, m, sec): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
        if h > 1_000_000 || m >= 60 || sec >= 60 {
            return None;
        }
        let seconds = h * 3600 + m * 60 + sec;
        if let Some((n, d)) = frac.split_once('S') {
            if !digits(n) || !digits(d) || d.len() > 9 {
                return None;
            }
            let (num, den): (u64, u64) = (n.parse().ok()?, d.parse().ok()?);
            if den == 0 || num >= den {
                return None;
            }
            Some(AdmTime { seconds, num, den })
        } else {
            if !digits(frac) {
                return None;
            }
            Some(AdmTime {
                seconds,
                num: frac.parse().ok()?,
                den: 10u64.pow(frac.len() as u32),
            })
        }
    }

    /// The time in sample frames at `rate`, rounded to the nearest frame (exact when the
    /// time falls on a sample).
    pub fn to_frames(self, rate: u32) -> u64 {
        let total = u128::from(self.seconds) * u128::from(self.den) + u128::from(self.num);
        let f = (total * 2 * u128::from(rate) + u128::from(self.den)) / (2 * u128::from(self.den));
        u64::try_from(f).unwrap_or(u64::MAX)
    }

    /// Whether the time falls exactly on a sample at `rate`.
    pub fn is_on_sample(self, rate: u32) -> bool {
        (u128::from(self.num) * u128::from(rate)) % u128::from(self.den) == 0
    }

    pub fn seconds_f64(self) -> f64 {
        self.seconds as f64 + self.num as f64 / self.den as f64
    }

    fn add(self, other: AdmTime) -> AdmTime {
        // Common denominator (both at most 10^18; the lcm may overflow: fall back to
        // nanoseconds, which is exact for every decimal time of up to 9 digits).
        let l = lcm(self.den, other.den);
        let (den, a, b) = match l {
            Some(l) if l <= 1_000_000_000_000_000_000 => (
                l,
                u128::from(self.num) * u128::from(l / self.den),
                u128::from(other.num) * u128::from(l / other.den),
            ),
            _ => {
                let ns = |t: AdmTime| u128::from(t.num) * 1_000_000_000 / u128::from(t.den);
                (1_000_000_000, ns(self), ns(other))
            }
        };
        let sum = a + b;
        let carry = (sum / u128::from(den)) as u64;
        AdmTime {
            seconds: self
                .seconds
                .saturating_add(other.seconds)
                .saturating_add(carry),
            num: (sum % u128::from(den)) as u64,
            den,
        }
    }

    fn cmp_time(self, other: AdmTime) -> std::cmp::Ordering {
        let a = (u128::from(self.seconds) * u128::from(self.den) + u128::from(self.num))
            * u128::from(other.den);
        let b = (u128::from(other.seconds) * u128::from(other.den) + u128::from(other.num))
            * u128::from(self.den);
        a.cmp(&b)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: u64, b: u64) -> Option<u64> {
    (a / gcd(a, b).max(1)).checked_mul(b)
}

impl PartialEq for AdmTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_time(*other) == std::cmp::Ordering::Equal
    }
}

impl fmt::Display for AdmTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (
            self.seconds / 3600,
            self.seconds / 60 % 60,
            self.seconds % 60,
        );
        let mut p = 1u64;
        let mut digits = 0usize;
        while p < self.den && digits < 19 {
            p = p.saturating_mul(10);
            digits += 1;
        }
        if p == self.den {
            write!(f, "{h:02}:{m:02}:{s:02}.{:0digits$}", self.num)
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}.{:05}S{}", self.num, self.den)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The data model.

/// The ADM metadata halo understands, as parsed from (or written to) an `axml` chunk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdmDocument {
    pub programmes: Vec<Programme>,
    pub contents: Vec<Content>,
    pub objects: Vec<AudioObject>,
    pub pack_formats: Vec<PackFormat>,
    pub channel_formats: Vec<ChannelFormat>,
    pub stream_formats: Vec<StreamFormat>,
    pub track_formats: Vec<TrackFormat>,
    pub track_uids: Vec<TrackUid>,
    /// Parts of the document that halo does not support (each named once).
    pub warnings: Vec<String>,
}

/// Loudness of a programme or content (`loudnessMetadata`, EBU Tech 3364 / BS.2076).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AdmLoudness {
    pub integrated_lufs: Option<f64>,
    pub max_true_peak_dbtp: Option<f64>,
    pub loudness_range_lu: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Programme {
    pub id: String,
    pub name: String,
    pub start: Option<AdmTime>,
    pub end: Option<AdmTime>,
    pub content_refs: Vec<String>,
    pub loudness: Option<AdmLoudness>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub id: String,
    pub name: String,
    pub object_refs: Vec<String>,
    pub loudness: Option<AdmLoudness>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioObject {
    pub id: String,
    pub name: String,
    pub start: Option<AdmTime>,
    pub duration: Option<AdmTime>,
    pub pack_refs: Vec<String>,
    pub object_refs: Vec<String>,
    pub track_uid_refs: Vec<String>,
    /// Linear gain (BS.2076-2 `gain`, default 1).
    pub gain: f64,
    /// The gain as written in dB (`gainUnit="dB"`), kept exact.
    pub gain_db: Option<f64>,
    pub mute: bool,
    /// halo's binaural render mode (`halo:binaural`), when written by halo.
    pub halo_binaural: Option<BinauralMode>,
}

/// `typeDefinition` / `typeLabel` of pack and channel formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeDefinition {
    DirectSpeakers,
    Matrix,
    Objects,
    Hoa,
    Binaural,
}

impl TypeDefinition {
    fn from_label(s: &str) -> Option<TypeDefinition> {
        match s.trim() {
            "0001" | "DirectSpeakers" => Some(TypeDefinition::DirectSpeakers),
            "0002" | "Matrix" => Some(TypeDefinition::Matrix),
            "0003" | "Objects" => Some(TypeDefinition::Objects),
            "0004" | "HOA" => Some(TypeDefinition::Hoa),
            "0005" | "Binaural" => Some(TypeDefinition::Binaural),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            TypeDefinition::DirectSpeakers => "0001",
            TypeDefinition::Matrix => "0002",
            TypeDefinition::Objects => "0003",
            TypeDefinition::Hoa => "0004",
            TypeDefinition::Binaural => "0005",
        }
    }

    fn name(self) -> &'static str {
        match self {
            TypeDefinition::DirectSpeakers => "DirectSpeakers",
            TypeDefinition::Matrix => "Matrix",
            TypeDefinition::Objects => "Objects",
            TypeDefinition::Hoa => "HOA",
            TypeDefinition::Binaural => "Binaural",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PackFormat {
    pub id: String,
    pub name: String,
    pub type_def: TypeDefinition,
    pub channel_refs: Vec<String>,
    pub pack_refs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelFormat {
    pub id: String,
    pub name: String,
    pub type_def: TypeDefinition,
    pub blocks: Vec<BlockFormat>,
    /// `frequency typeDefinition="lowPass"`, Hz (marks an LFE channel).
    pub low_pass_hz: Option<f64>,
}

/// An object or speaker position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BlockPosition {
    /// Degrees, azimuth positive to the left; distance normalised (1 = the speakers).
    Polar {
        azimuth: f64,
        elevation: f64,
        distance: f64,
    },
    /// X right, Y front, Z up, each −1…1.
    Cartesian { x: f64, y: f64, z: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlockFormat {
    pub id: String,
    pub rtime: Option<AdmTime>,
    pub duration: Option<AdmTime>,
    pub position: Option<BlockPosition>,
    /// Linear gain (dB values are converted on reading).
    pub gain: f64,
    /// Written in dB (`gainUnit="dB"`), so that writing gives back the same text.
    pub gain_db: Option<f64>,
    pub width: f64,
    pub height: f64,
    pub depth: f64,
    pub jump_position: bool,
    pub interpolation_length: Option<AdmTime>,
    /// DirectSpeakers: the speaker labels (the first names the speaker).
    pub speaker_labels: Vec<String>,
    /// `headphoneVirtualise bypass="1"`.
    pub headphone_bypass: bool,
    /// `headphoneVirtualise DRR="…"` (dB): the binaural mode with the nearest DRR.
    pub headphone_drr_db: Option<f64>,
    /// The `halo:keys` mark (see the module documentation).
    pub halo_keys: Option<String>,
}

impl BlockFormat {
    fn new(id: String) -> BlockFormat {
        BlockFormat {
            id,
            rtime: None,
            duration: None,
            position: None,
            gain: 1.0,
            gain_db: None,
            width: 0.0,
            height: 0.0,
            depth: 0.0,
            jump_position: false,
            interpolation_length: None,
            speaker_labels: Vec::new(),
            headphone_bypass: false,
            headphone_drr_db: None,
            halo_keys: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamFormat {
    pub id: String,
    pub channel_ref: Option<String>,
    pub pack_ref: Option<String>,
    pub track_refs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackFormat {
    pub id: String,
    pub stream_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackUid {
    pub id: String,
    pub track_format_ref: Option<String>,
    pub channel_format_ref: Option<String>,
    pub pack_ref: Option<String>,
}

/// The `chna` chunk: which file track carries which audioTrackUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chna {
    pub entries: Vec<ChnaEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChnaEntry {
    /// 1-based track (channel) of the file.
    pub track_index: u16,
    /// `ATU_xxxxxxxx`.
    pub uid: String,
    /// `AT_xxxxxxxx_xx`, or `AC_xxxxxxxx_00` (BS.2076-2: the channel format itself).
    pub track_ref: String,
    /// `AP_xxxxxxxx`.
    pub pack_ref: String,
}

/// The audio of the ADM file, for [`to_scene`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdmAudio {
    pub path: PathBuf,
    pub channels: usize,
    pub sample_rate: u32,
    pub frames: u64,
}

// ---------------------------------------------------------------------------------------
// XML reading: a small element tree per top-level ADM element.

#[derive(Debug, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    fn texts(&self, name: &str) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.text.trim().to_string())
            .collect()
    }
}

fn local(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => name.to_string(),
    }
}

fn start_el(e: &BytesStart, offset: u64) -> Result<El, AdmError> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| AdmError::Xml {
            offset,
            message: err.to_string(),
        })?;
        let key: String = a.key.as_ref().to_string();
        let value = a
            .normalized_value(quick_xml::XmlVersion::default())
            .map_err(|err| AdmError::Forbidden {
                offset,
                what: format!("attribute {key}: {err}"),
                allowed: "only the predefined entities (&amp; &lt; &gt; &quot; &apos;) and \
                      character references"
                    .into(),
            })?;
        // Attributes are referred to by their local name, except halo's own.
        let key = if key.starts_with("halo:") || key.starts_with("xmlns") {
            key
        } else {
            local(&key)
        };
        attrs.push((key, value.into_owned()));
    }
    Ok(El {
        name: local(e.name().as_ref()),
        attrs,
        ..El::default()
    })
}

/// Parses an `axml` chunk (with or without the `ebuCoreMain` wrapper). DOCTYPEs and
/// entity references other than the predefined ones are refused; sizes are bounded by
/// [`MAX_AXML_BYTES`], [`MAX_ELEMENTS`], [`MAX_DEPTH`], [`MAX_BLOCKS_PER_CHANNEL`].
pub fn parse_axml(xml: &[u8]) -> Result<AdmDocument, AdmError> {
    if xml.len() > MAX_AXML_BYTES {
        return Err(AdmError::TooLarge {
            what: "the axml chunk's size in bytes".into(),
            value: xml.len() as u64,
            max: MAX_AXML_BYTES as u64,
        });
    }
    // The chunk may be padded with NUL bytes to an even or fixed size.
    let end = xml.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&xml[..end]).map_err(|e| AdmError::Xml {
        offset: e.valid_up_to() as u64,
        message: "the text is not UTF-8".into(),
    })?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut doc = AdmDocument::default();
    let mut stack: Vec<El> = Vec::new();
    let mut afe_depth: Option<usize> = None;
    let mut found_afe = false;
    let mut elements = 0usize;
    let mut ignored: Vec<String> = Vec::new();
    loop {
        let offset = reader.buffer_position();
        let event = reader.read_event().map_err(|e| AdmError::Xml {
            offset: reader.error_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(e) => {
                elements += 1;
                check_counts(elements, stack.len() + 1)?;
                let el = start_el(&e, offset)?;
                if el.name == "audioFormatExtended" && afe_depth.is_none() {
                    afe_depth = Some(stack.len());
                    found_afe = true;
                }
                stack.push(el);
            }
            Event::Empty(e) => {
                elements += 1;
                check_counts(elements, stack.len() + 1)?;
                let el = start_el(&e, offset)?;
                if el.name == "audioFormatExtended" && afe_depth.is_none() {
                    found_afe = true;
                    continue;
                }
                close(el, &mut stack, &mut afe_depth, &mut doc, &mut ignored)?;
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(AdmError::Xml {
                        offset,
                        message: "a closing tag without an opening tag".into(),
                    });
                };
                close(el, &mut stack, &mut afe_depth, &mut doc, &mut ignored)?;
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let ch = match &*r.xml10_content() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => r.resolve_char_ref().ok().flatten(),
                };
                match ch {
                    Some(c) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push(c);
                        }
                    }
                    None => {
                        return Err(AdmError::Forbidden {
                            offset,
                            what: format!("the entity reference &{};", &*r.xml10_content()),
                            allowed: "only the predefined entities (&amp; &lt; &gt; &quot; \
                                      &apos;) and character references; entities are never \
                                      expanded"
                                .into(),
                        });
                    }
                }
            }
            Event::DocType(_) => {
                return Err(AdmError::Forbidden {
                    offset,
                    what: "a DOCTYPE declaration".into(),
                    allowed: "no DOCTYPE: halo never loads DTDs or external entities".into(),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(AdmError::Xml {
            offset: text.len() as u64,
            message: format!("the document ends inside <{}> (cut short?)", open.name),
        });
    }
    if !found_afe {
        return Err(invalid(
            "axml",
            "there is no audioFormatExtended element",
            "an ADM document: <ebuCoreMain>…<audioFormatExtended>…</audioFormatExtended>… or \
             a bare <audioFormatExtended>",
        ));
    }
    for name in ignored {
        doc.warnings.push(format!(
            "{name} elements are not supported and were ignored"
        ));
    }
    check_references(&doc)?;
    Ok(doc)
}

fn check_counts(elements: usize, depth: usize) -> Result<(), AdmError> {
    if elements > MAX_ELEMENTS {
        return Err(AdmError::TooLarge {
            what: "the number of XML elements".into(),
            value: elements as u64,
            max: MAX_ELEMENTS as u64,
        });
    }
    if depth > MAX_DEPTH {
        return Err(AdmError::TooLarge {
            what: "the XML nesting depth".into(),
            value: depth as u64,
            max: MAX_DEPTH as u64,
        });
    }
    Ok(())
}

/// An element is complete: a top-level ADM element is converted, one inside it attached
/// to its parent, one outside `audioFormatExtended` dropped.
fn close(
    el: El,
    stack: &mut [El],
    afe_depth: &mut Option<usize>,
    doc: &mut AdmDocument,
    ignored: &mut Vec<String>,
) -> Result<(), AdmError> {
    let depth = stack.len();
    match *afe_depth {
        Some(d) if depth == d => {
            // audioFormatExtended itself closes.
            *afe_depth = None;
        }
        Some(d) if depth == d + 1 => add_top_level(el, doc, ignored)?,
        Some(_) => {
            if let Some(parent) = stack.last_mut() {
                parent.children.push(el);
            }
        }
        None => {}
    }
    Ok(())
}

fn add_top_level(el: El, doc: &mut AdmDocument, ignored: &mut Vec<String>) -> Result<(), AdmError> {
    match el.name.as_str() {
        "audioProgramme" => {
            let id = required_id(&el, "audioProgrammeID")?;
            let p = Programme {
                name: el
                    .attr("audioProgrammeName")
                    .unwrap_or_default()
                    .to_string(),
                start: opt_time(&el, "start", &id)?,
                end: opt_time(&el, "end", &id)?,
                content_refs: el.texts("audioContentIDRef"),
                loudness: loudness(&el, &id)?,
                id,
            };
            doc.programmes.push(p);
        }
        "audioContent" => {
            let id = required_id(&el, "audioContentID")?;
            doc.contents.push(Content {
                name: el.attr("audioContentName").unwrap_or_default().to_string(),
                object_refs: el.texts("audioObjectIDRef"),
                loudness: loudness(&el, &id)?,
                id,
            });
        }
        "audioObject" => {
            let id = required_id(&el, "audioObjectID")?;
            let element = format!("audioObject {id}");
            let (gain, gain_db) = match el.child("gain") {
                Some(g) => parse_gain(g, &element)?,
                None => (1.0, None),
            };
            let mute = match el.child("mute") {
                Some(m) => parse_flag(&m.text, &format!("{element}: mute"))?,
                None => false,
            };
            for unsupported in ["audioComplementaryObjectIDRef", "audioObjectInteraction"] {
                if el.child(unsupported).is_some() {
                    doc.warnings.push(format!(
                        "{element}: {unsupported} is not supported (ignored: every object is \
                         rendered, without interaction limits)"
                    ));
                }
            }
            let halo_binaural = match el.attr("halo:binaural") {
                None => None,
                Some("off") => Some(BinauralMode::Off),
                Some("near") => Some(BinauralMode::Near),
                Some("mid") => Some(BinauralMode::Mid),
                Some("far") => Some(BinauralMode::Far),
                Some(v) => {
                    return Err(invalid(
                        &element,
                        format!("halo:binaural = {v:?} is not a binaural mode"),
                        "off, near, mid, far",
                    ));
                }
            };
            doc.objects.push(AudioObject {
                name: el.attr("audioObjectName").unwrap_or_default().to_string(),
                start: opt_time(&el, "start", &element)?,
                duration: opt_time(&el, "duration", &element)?,
                pack_refs: el.texts("audioPackFormatIDRef"),
                object_refs: el.texts("audioObjectIDRef"),
                track_uid_refs: el.texts("audioTrackUIDRef"),
                gain,
                gain_db,
                mute,
                halo_binaural,
                id,
            });
        }
        "audioPackFormat" => {
            let id = required_id(&el, "audioPackFormatID")?;
            let type_def = type_of(&el, &id)?;
            doc.pack_formats.push(PackFormat {
                name: el
                    .attr("audioPackFormatName")
                    .unwrap_or_default()
                    .to_string(),
                type_def,
                channel_refs: el.texts("audioChannelFormatIDRef"),
                pack_refs: el.texts("audioPackFormatIDRef"),
                id,
            });
        }
        "audioChannelFormat" => {
            let cf = channel_format(&el, &mut doc.warnings)?;
            doc.channel_formats.push(cf);
        }
        "audioStreamFormat" => {
            let id = required_id(&el, "audioStreamFormatID")?;
            doc.stream_formats.push(StreamFormat {
                channel_ref: el.texts("audioChannelFormatIDRef").into_iter().next(),
                pack_ref: el.texts("audioPackFormatIDRef").into_iter().next(),
                track_refs: el.texts("audioTrackFormatIDRef"),
                id,
            });
        }
        "audioTrackFormat" => {
            let id = required_id(&el, "audioTrackFormatID")?;
            doc.track_formats.push(TrackFormat {
                stream_ref: el.texts("audioStreamFormatIDRef").into_iter().next(),
                id,
            });
        }
        "audioTrackUID" => {
            let id = required_id(&el, "UID")?;
            doc.track_uids.push(TrackUid {
                track_format_ref: el.texts("audioTrackFormatIDRef").into_iter().next(),
                channel_format_ref: el.texts("audioChannelFormatIDRef").into_iter().next(),
                pack_ref: el.texts("audioPackFormatIDRef").into_iter().next(),
                id,
            });
        }
        other => {
            if !ignored.iter().any(|n| n == other) {
                ignored.push(other.to_string());
            }
        }
    }
    Ok(())
}

fn required_id(el: &El, attr: &str) -> Result<String, AdmError> {
    match el.attr(attr) {
        Some(id) if !id.trim().is_empty() && id.len() <= 64 => Ok(id.trim().to_string()),
        Some(id) => Err(invalid(
            &el.name,
            format!("{attr} = {id:?} is not an ID"),
            "a non-empty ID of at most 64 characters, e.g. AO_1001",
        )),
        None => Err(invalid(
            &el.name,
            format!("the {attr} attribute is missing"),
            &format!("every {} has an {attr}", el.name),
        )),
    }
}

fn parse_time(s: &str, element: &str, what: &str) -> Result<AdmTime, AdmError> {
    AdmTime::parse(s).ok_or_else(|| {
        invalid(
            element,
            format!("{what} {s:?} is not a time"),
            "hh:mm:ss.fffff (e.g. 00:00:01.50000) or hh:mm:ss.nnnnnSrrrrr (n samples at \
             r Hz, BS.2076-2)",
        )
    })
}

fn opt_time(el: &El, attr: &str, element: &str) -> Result<Option<AdmTime>, AdmError> {
    el.attr(attr)
        .map(|s| parse_time(s, element, attr))
        .transpose()
}

fn parse_number(s: &str, element: &str, what: &str, lo: f64, hi: f64) -> Result<f64, AdmError> {
    let allowed = format!("a number from {lo} to {hi}");
    let v: f64 = s.trim().parse().map_err(|_| {
        invalid(
            element,
            format!("{what} {:?} is not a number", s.trim()),
            &allowed,
        )
    })?;
    if !v.is_finite() {
        return Err(invalid(
            element,
            format!("{what} {} is not a finite number", s.trim()),
            &allowed,
        ));
    }
    if !(lo..=hi).contains(&v) {
        return Err(invalid(
            element,
            format!("{what} {v} is out of range"),
            &allowed,
        ));
    }
    Ok(v)
}

fn parse_flag(s: &str, element: &str) -> Result<bool, AdmError> {
    match s.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(invalid(
            element,
            format!("{other:?} is not a flag"),
            "0 or 1",
        )),
    }
}

/// A `gain` element: (linear gain, the dB value when written in dB).
fn parse_gain(g: &El, element: &str) -> Result<(f64, Option<f64>), AdmError> {
    match g.attr("gainUnit").unwrap_or("linear") {
        "linear" => Ok((parse_number(&g.text, element, "gain", 0.0, 15.85)?, None)),
        "dB" => {
            let db = parse_number(&g.text, element, "gain (dB)", -1e9, 24.0)?;
            Ok((10f64.powf(db / 20.0), Some(db)))
        }
        other => Err(invalid(
            element,
            format!("gainUnit {other:?} is not a gain unit"),
            "linear or dB",
        )),
    }
}

fn loudness(el: &El, element: &str) -> Result<Option<AdmLoudness>, AdmError> {
    let Some(l) = el.child("loudnessMetadata") else {
        return Ok(None);
    };
    let field = |name: &str, lo: f64, hi: f64| -> Result<Option<f64>, AdmError> {
        l.child(name)
            .map(|c| {
                parse_number(
                    &c.text,
                    &format!("{element}: loudnessMetadata"),
                    name,
                    lo,
                    hi,
                )
            })
            .transpose()
    };
    Ok(Some(AdmLoudness {
        integrated_lufs: field("integratedLoudness", -200.0, 30.0)?,
        max_true_peak_dbtp: field("maxTruePeak", -200.0, 30.0)?,
        loudness_range_lu: field("loudnessRange", 0.0, 200.0)?,
    }))
}

fn type_of(el: &El, id: &str) -> Result<TypeDefinition, AdmError> {
    let label = el.attr("typeDefinition").or(el.attr("typeLabel"));
    // IDs carry the type too: AP_yyyyxxxx, AC_yyyyxxxx.
    let from_id = id.get(3..7).and_then(TypeDefinition::from_label);
    match label {
        Some(l) => TypeDefinition::from_label(l).ok_or_else(|| {
            invalid(
                format!("{} {id}", el.name),
                format!("typeDefinition {l:?} is not an ADM type"),
                "DirectSpeakers (0001), Matrix (0002), Objects (0003), HOA (0004), Binaural (0005)",
            )
        }),
        None => from_id.ok_or_else(|| {
            invalid(
                format!("{} {id}", el.name),
                "neither typeDefinition nor typeLabel is given".to_string(),
                "typeDefinition=\"Objects\" or typeLabel=\"0003\" (and the other types)",
            )
        }),
    }
}

fn channel_format(el: &El, warnings: &mut Vec<String>) -> Result<ChannelFormat, AdmError> {
    let id = required_id(el, "audioChannelFormatID")?;
    let type_def = type_of(el, &id)?;
    let element = format!("audioChannelFormat {id}");
    let n_blocks = el
        .children
        .iter()
        .filter(|c| c.name == "audioBlockFormat")
        .count();
    if n_blocks > MAX_BLOCKS_PER_CHANNEL {
        return Err(AdmError::TooLarge {
            what: format!("the number of audioBlockFormats in {element}"),
            value: n_blocks as u64,
            max: MAX_BLOCKS_PER_CHANNEL as u64,
        });
    }
    let mut low_pass_hz = None;
    for f in el.children.iter().filter(|c| c.name == "frequency") {
        if f.attr("typeDefinition") == Some("lowPass") {
            low_pass_hz = Some(parse_number(&f.text, &element, "frequency", 0.0, 1e6)?);
        }
    }
    let mut blocks: Vec<BlockFormat> = Vec::with_capacity(n_blocks);
    let mut warned: Vec<&str> = Vec::new();
    for b in el.children.iter().filter(|c| c.name == "audioBlockFormat") {
        let block = block_format(b, type_def, &element, &mut warned)?;
        // Order: each block starts at or after the previous block's end.
        if let Some(prev) = blocks.last() {
            let bel = format!("audioBlockFormat {}", block.id);
            let (Some(prt), Some(rt)) = (prev.rtime, block.rtime) else {
                return Err(invalid(
                    bel,
                    "a channel with several blocks needs rtime and duration on every block",
                    "rtime=\"hh:mm:ss.fffff\" duration=\"hh:mm:ss.fffff\" on each block",
                ));
            };
            let Some(pd) = prev.duration else {
                return Err(invalid(
                    format!("audioBlockFormat {}", prev.id),
                    "a block followed by another has no duration",
                    "a duration on every block but the last",
                ));
            };
            let prev_end = prt.add(pd);
            if rt.cmp_time(prev_end) == std::cmp::Ordering::Less {
                let problem = if rt.cmp_time(prt) == std::cmp::Ordering::Less {
                    format!(
                        "rtime {rt} is before the previous block's rtime {prt} (blocks out of order)"
                    )
                } else {
                    format!(
                        "rtime {rt} is before the previous block's end {prev_end} (blocks overlap)"
                    )
                };
                return Err(invalid(
                    bel,
                    problem,
                    "blocks in time order, each starting at or after the previous block's end \
                     (rtime + duration)",
                ));
            }
        }
        blocks.push(block);
    }
    for w in warned {
        warnings.push(format!("{element}: {w}"));
    }
    if type_def != TypeDefinition::Objects && type_def != TypeDefinition::DirectSpeakers {
        warnings.push(format!(
            "{element} ({:?}): {} channels are not supported",
            el.attr("audioChannelFormatName").unwrap_or_default(),
            type_def.name()
        ));
    }
    Ok(ChannelFormat {
        name: el
            .attr("audioChannelFormatName")
            .unwrap_or_default()
            .to_string(),
        type_def,
        blocks,
        low_pass_hz,
        id,
    })
}

const UNSUPPORTED_BLOCK_PARTS: [(&str, &str); 8] = [
    (
        "screenRef",
        "screenRef (screen-related scaling) is not supported",
    ),
    ("zoneExclusion", "zoneExclusion is not supported"),
    ("objectDivergence", "objectDivergence is not supported"),
    ("channelLock", "channelLock is not supported"),
    (
        "diffuse",
        "diffuse is not supported (rendered as direct sound)",
    ),
    ("screenEdgeLock", "screenEdgeLock is not supported"),
    ("importance", "importance is ignored"),
    ("headLocked", "headLocked is not supported"),
];

fn block_format(
    b: &El,
    type_def: TypeDefinition,
    channel: &str,
    warned: &mut Vec<&'static str>,
) -> Result<BlockFormat, AdmError> {
    let id = match b.attr("audioBlockFormatID") {
        Some(id) if !id.trim().is_empty() && id.len() <= 64 => id.trim().to_string(),
        _ => {
            return Err(invalid(
                format!("{channel}: audioBlockFormat"),
                "the audioBlockFormatID attribute is missing or empty",
                "audioBlockFormatID=\"AB_00031001_00000001\"",
            ));
        }
    };
    let element = format!("audioBlockFormat {id}");
    let mut block = BlockFormat::new(id);
    block.rtime = opt_time(b, "rtime", &element)?;
    block.duration = opt_time(b, "duration", &element)?;
    block.halo_keys = b.attr("halo:keys").map(str::to_string);
    if type_def != TypeDefinition::Objects && type_def != TypeDefinition::DirectSpeakers {
        return Ok(block);
    }
    let cartesian = match b.child("cartesian") {
        Some(c) => parse_flag(&c.text, &format!("{element}: cartesian"))?,
        None => false,
    };
    let (mut az, mut el_, mut dist, mut x, mut y, mut z) = (None, None, None, None, None, None);
    for p in b.children.iter().filter(|c| c.name == "position") {
        if p.attr("bound").is_some() {
            continue; // DirectSpeakers min/max bounds: not used.
        }
        if p.attr("screenEdgeLock").is_some() && !warned.contains(&UNSUPPORTED_BLOCK_PARTS[5].1) {
            warned.push(UNSUPPORTED_BLOCK_PARTS[5].1);
        }
        let coord = p.attr("coordinate").unwrap_or_default();
        let v = |lo, hi| parse_number(&p.text, &element, &format!("position {coord}"), lo, hi);
        match coord {
            "azimuth" => az = Some(v(-180.0, 180.0)?),
            "elevation" => el_ = Some(v(-90.0, 90.0)?),
            "distance" => dist = Some(v(0.0, 100.0)?),
            "X" => x = Some(v(-1.0, 1.0)?),
            "Y" => y = Some(v(-1.0, 1.0)?),
            "Z" => z = Some(v(-1.0, 1.0)?),
            other => {
                return Err(invalid(
                    &element,
                    format!("position coordinate {other:?} is unknown"),
                    "azimuth, elevation, distance (polar) or X, Y, Z (cartesian)",
                ));
            }
        }
    }
    block.position = if cartesian || (az.is_none() && x.is_some()) {
        if az.is_some() || el_.is_some() {
            return Err(invalid(
                &element,
                "a Cartesian block has a polar coordinate",
                "X, Y, Z with cartesian 1; azimuth, elevation, distance with cartesian 0",
            ));
        }
        match (x, y) {
            (Some(x), Some(y)) => Some(BlockPosition::Cartesian {
                x,
                y,
                z: z.unwrap_or(0.0),
            }),
            _ if type_def == TypeDefinition::DirectSpeakers => None,
            _ => {
                return Err(invalid(
                    &element,
                    "a Cartesian position needs X and Y",
                    "<position coordinate=\"X\">…</position> and Y (Z optional, default 0)",
                ));
            }
        }
    } else {
        if x.is_some() || y.is_some() || z.is_some() {
            return Err(invalid(
                &element,
                "a polar block (cartesian 0) has an X, Y or Z coordinate",
                "azimuth, elevation, distance with cartesian 0; X, Y, Z with cartesian 1",
            ));
        }
        match (az, el_) {
            (Some(a), e) => Some(BlockPosition::Polar {
                azimuth: a,
                elevation: e.unwrap_or(0.0),
                distance: dist.unwrap_or(1.0),
            }),
            (None, _) if type_def == TypeDefinition::DirectSpeakers => None,
            (None, _) => {
                return Err(invalid(
                    &element,
                    "the block has no position",
                    "<position coordinate=\"azimuth\">…</position> (and elevation, distance) \
                     or X, Y, Z with <cartesian>1</cartesian>",
                ));
            }
        }
    };
    if let Some(g) = b.child("gain") {
        let (lin, db) = parse_gain(g, &element)?;
        block.gain = lin;
        block.gain_db = db;
    }
    let (wmax, dmax) = if cartesian { (2.0, 2.0) } else { (360.0, 1.0) };
    if let Some(w) = b.child("width") {
        block.width = parse_number(&w.text, &element, "width", 0.0, wmax)?;
    }
    if let Some(h) = b.child("height") {
        block.height = parse_number(&h.text, &element, "height", 0.0, wmax)?;
    }
    if let Some(d) = b.child("depth") {
        block.depth = parse_number(&d.text, &element, "depth", 0.0, dmax)?;
    }
    if let Some(j) = b.child("jumpPosition") {
        block.jump_position = parse_flag(&j.text, &format!("{element}: jumpPosition"))?;
        if let Some(l) = j.attr("interpolationLength") {
            let l = l.trim();
            // BS.2076-2 gives the length in seconds as a decimal number; a time string is
            // accepted too.
            let t = if l.contains(':') {
                parse_time(l, &element, "interpolationLength")?
            } else {
                let secs = parse_number(l, &element, "interpolationLength", 0.0, 604_800.0)?;
                AdmTime {
                    seconds: secs.trunc() as u64,
                    num: (secs.fract() * 1e9).round().min(999_999_999.0) as u64,
                    den: 1_000_000_000,
                }
            };
            block.interpolation_length = Some(t);
        }
    }
    if let (Some(l), Some(d)) = (block.interpolation_length, block.duration)
        && block.jump_position
        && l.cmp_time(d) == std::cmp::Ordering::Greater
    {
        return Err(invalid(
            &element,
            format!("interpolationLength {l} is longer than the block's duration {d}"),
            "an interpolation length of at most the block's duration",
        ));
    }
    block.speaker_labels = b.texts("speakerLabel");
    if let Some(h) = b.child("headphoneVirtualise") {
        block.headphone_bypass = matches!(h.attr("bypass"), Some("1") | Some("true"));
        block.headphone_drr_db = h
            .attr("DRR")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite());
    }
    for (name, message) in UNSUPPORTED_BLOCK_PARTS {
        if b.child(name).is_some() && !warned.contains(&message) {
            warned.push(message);
        }
    }
    Ok(block)
}

/// Every ID reference inside the document points at a defined element (or a BS.2094
/// common definition halo knows). References to common definitions that are not in the
/// document are checked where they are used.
fn check_references(doc: &AdmDocument) -> Result<(), AdmError> {
    let mut ids: HashMap<&str, &str> = HashMap::new();
    let all = doc
        .programmes
        .iter()
        .map(|p| (p.id.as_str(), "audioProgramme"))
        .chain(doc.contents.iter().map(|c| (c.id.as_str(), "audioContent")))
        .chain(doc.objects.iter().map(|o| (o.id.as_str(), "audioObject")))
        .chain(
            doc.pack_formats
                .iter()
                .map(|p| (p.id.as_str(), "audioPackFormat")),
        )
        .chain(
            doc.channel_formats
                .iter()
                .map(|c| (c.id.as_str(), "audioChannelFormat")),
        )
        .chain(
            doc.stream_formats
                .iter()
                .map(|s| (s.id.as_str(), "audioStreamFormat")),
        )
        .chain(
            doc.track_formats
                .iter()
                .map(|t| (t.id.as_str(), "audioTrackFormat")),
        )
        .chain(
            doc.track_uids
                .iter()
                .map(|u| (u.id.as_str(), "audioTrackUID")),
        );
    for (id, kind) in all {
        if let Some(other) = ids.insert(id, kind) {
            return Err(invalid(
                format!("{kind} {id}"),
                format!("the ID {id} is already used by an {other}"),
                "unique IDs",
            ));
        }
    }
    let check = |element: String, r: &str| -> Result<(), AdmError> {
        if ids.contains_key(r) || common_channel(r).is_some() || common_pack(r).is_some() {
            Ok(())
        } else {
            Err(AdmError::UnknownRef {
                element,
                reference: r.to_string(),
                where_: " in the axml chunk (nor among the BS.2094 common definitions halo knows)"
                    .into(),
            })
        }
    };
    for p in &doc.programmes {
        for r in &p.content_refs {
            check(format!("audioProgramme {}", p.id), r)?;
        }
    }
    for c in &doc.contents {
        for r in &c.object_refs {
            check(format!("audioContent {}", c.id), r)?;
        }
    }
    for o in &doc.objects {
        for r in o
            .pack_refs
            .iter()
            .chain(&o.object_refs)
            .chain(&o.track_uid_refs)
        {
            check(format!("audioObject {}", o.id), r)?;
        }
    }
    for p in &doc.pack_formats {
        for r in p.channel_refs.iter().chain(&p.pack_refs) {
            check(format!("audioPackFormat {}", p.id), r)?;
        }
    }
    for s in &doc.stream_formats {
        for r in s.channel_ref.iter().chain(&s.pack_ref).chain(&s.track_refs) {
            check(format!("audioStreamFormat {}", s.id), r)?;
        }
    }
    for t in &doc.track_formats {
        if let Some(r) = &t.stream_ref {
            check(format!("audioTrackFormat {}", t.id), r)?;
        }
    }
    for u in &doc.track_uids {
        for r in u
            .track_format_ref
            .iter()
            .chain(&u.channel_format_ref)
            .chain(&u.pack_ref)
        {
            check(format!("audioTrackUID {}", u.id), r)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// BS.2094 common definitions halo knows without an axml copy (the 5.1 family).

/// Speaker label (BS.2051 name) of a common-definition DirectSpeakers channel format.
fn common_channel(id: &str) -> Option<&'static str> {
    Some(match id {
        "AC_00010001" => "M+030",
        "AC_00010002" => "M-030",
        "AC_00010003" => "M+000",
        "AC_00010004" => "LFE1",
        "AC_00010005" => "M+110",
        "AC_00010006" => "M-110",
        _ => return None,
    })
}

/// Channel formats of a common-definition pack.
fn common_pack(id: &str) -> Option<&'static [&'static str]> {
    Some(match id {
        "AP_00010001" => &["AC_00010003"],
        "AP_00010002" => &["AC_00010001", "AC_00010002"],
        "AP_0001000a" => &["AC_00010001", "AC_00010002", "AC_00010003"],
        "AP_0001000c" => &[
            "AC_00010001",
            "AC_00010002",
            "AC_00010003",
            "AC_00010005",
            "AC_00010006",
        ],
        "AP_00010003" => &[
            "AC_00010001",
            "AC_00010002",
            "AC_00010003",
            "AC_00010004",
            "AC_00010005",
            "AC_00010006",
        ],
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// chna.

/// Parses a `chna` chunk's body (BS.2088: `numTracks` u16, `numUIDs` u16, then per entry
/// `trackIndex` u16, `UID` 12 bytes, `trackRef` 14 bytes, `packRef` 11 bytes, 1 pad byte;
/// little-endian). Entries with track index 0 are unused slots and skipped.
pub fn parse_chna(bytes: &[u8]) -> Result<Chna, AdmError> {
    const ALLOWED: &str = "a chna chunk: numTracks (u16), numUIDs (u16), then numUIDs entries \
                           of 40 bytes (trackIndex u16, UID 12, trackRef 14, packRef 11, pad 1)";
    if bytes.len() > MAX_CHNA_BYTES {
        return Err(AdmError::TooLarge {
            what: "the chna chunk's size in bytes".into(),
            value: bytes.len() as u64,
            max: MAX_CHNA_BYTES as u64,
        });
    }
    if bytes.len() < 4 {
        return Err(AdmError::Chna {
            problem: format!(
                "the chunk has {} bytes, less than its 4-byte header",
                bytes.len()
            ),
            allowed: ALLOWED.into(),
        });
    }
    let num_tracks = u16::from_le_bytes([bytes[0], bytes[1]]);
    let num_uids = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
    let needed = 4 + 40 * num_uids;
    if bytes.len() < needed {
        return Err(AdmError::Chna {
            problem: format!(
                "numUIDs = {num_uids} needs {needed} bytes, but the chunk has {} (cut short?)",
                bytes.len()
            ),
            allowed: ALLOWED.into(),
        });
    }
    let text = |b: &[u8], what: &str, index: usize| -> Result<String, AdmError> {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let s = std::str::from_utf8(&b[..end]).ok().filter(|s| s.is_ascii());
        s.map(|s| s.trim().to_string())
            .ok_or_else(|| AdmError::Chna {
                problem: format!("entry {index}: the {what} is not ASCII text ({b:02x?})"),
                allowed: ALLOWED.into(),
            })
    };
    let mut entries = Vec::with_capacity(num_uids);
    let mut tracks: Vec<u16> = Vec::new();
    for i in 0..num_uids {
        let e = &bytes[4 + 40 * i..4 + 40 * (i + 1)];
        let track_index = u16::from_le_bytes([e[0], e[1]]);
        if track_index == 0 {
            continue;
        }
        let uid = text(&e[2..14], "UID", i + 1)?;
        if !uid.starts_with("ATU_") {
            return Err(AdmError::Chna {
                problem: format!("entry {}: UID {uid:?} is not an audioTrackUID", i + 1),
                allowed: "UIDs of the form ATU_xxxxxxxx".into(),
            });
        }
        if !tracks.contains(&track_index) {
            tracks.push(track_index);
        }
        entries.push(ChnaEntry {
            track_index,
            uid,
            track_ref: text(&e[14..28], "trackRef", i + 1)?,
            pack_ref: text(&e[28..39], "packRef", i + 1)?,
        });
    }
    if usize::from(num_tracks) < tracks.len() {
        return Err(AdmError::Chna {
            problem: format!(
                "numTracks = {num_tracks}, but the entries name {} different tracks",
                tracks.len()
            ),
            allowed: "numTracks = the number of distinct track indices".into(),
        });
    }
    Ok(Chna { entries })
}

/// Writes a `chna` chunk's body (see [`parse_chna`]).
pub fn write_chna(chna: &Chna) -> Vec<u8> {
    let mut tracks: Vec<u16> = chna.entries.iter().map(|e| e.track_index).collect();
    tracks.sort_unstable();
    tracks.dedup();
    let n = chna.entries.len().min(65535);
    let mut out = Vec::with_capacity(4 + 40 * n);
    out.extend_from_slice(&(tracks.len() as u16).to_le_bytes());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    let field = |out: &mut Vec<u8>, s: &str, len: usize| {
        let b = s.as_bytes();
        for i in 0..len {
            out.push(b.get(i).copied().unwrap_or(0));
        }
    };
    for e in &chna.entries[..n] {
        out.extend_from_slice(&e.track_index.to_le_bytes());
        field(&mut out, &e.uid, 12);
        field(&mut out, &e.track_ref, 14);
        field(&mut out, &e.pack_ref, 11);
        out.push(0);
    }
    out
}

// ---------------------------------------------------------------------------------------
// ADM → halo.

struct Finder<'d> {
    doc: &'d AdmDocument,
}

impl<'d> Finder<'d> {
    fn object(&self, id: &str) -> Option<&'d AudioObject> {
        self.doc.objects.iter().find(|o| o.id == id)
    }
    fn channel(&self, id: &str) -> Option<&'d ChannelFormat> {
        self.doc.channel_formats.iter().find(|c| c.id == id)
    }
    fn uid(&self, id: &str) -> Option<&'d TrackUid> {
        self.doc.track_uids.iter().find(|u| u.id == id)
    }

    /// The channel format a track UID (with its chna entry) refers to.
    fn channel_of(&self, uid: &str, entry: Option<&ChnaEntry>) -> Result<String, AdmError> {
        let element = format!("audioTrackUID {uid}");
        let via_track = |track: &str| -> Result<String, AdmError> {
            if track.starts_with("AC_") {
                return Ok(track.get(..11).unwrap_or(track).to_string());
            }
            let tf = self
                .doc
                .track_formats
                .iter()
                .find(|t| t.id == track)
                .ok_or_else(|| AdmError::UnknownRef {
                    element: element.clone(),
                    reference: track.to_string(),
                    where_: " in the axml chunk".into(),
                })?;
            let sf_id = tf.stream_ref.as_deref().unwrap_or_default();
            let sf = self
                .doc
                .stream_formats
                .iter()
                .find(|s| s.id == sf_id)
                .ok_or_else(|| AdmError::UnknownRef {
                    element: format!("audioTrackFormat {}", tf.id),
                    reference: sf_id.to_string(),
                    where_: " in the axml chunk".into(),
                })?;
            sf.channel_ref.clone().ok_or_else(|| {
                invalid(
                    format!("audioStreamFormat {}", sf.id),
                    "it names no audioChannelFormat",
                    "an audioChannelFormatIDRef (PCM streams)",
                )
            })
        };
        if let Some(u) = self.uid(uid) {
            if let Some(c) = &u.channel_format_ref {
                return Ok(c.clone());
            }
            if let Some(t) = &u.track_format_ref {
                return via_track(t);
            }
        }
        match entry {
            Some(e) => via_track(&e.track_ref),
            None => Err(invalid(
                element,
                "it names neither a track format nor a channel format",
                "audioTrackFormatIDRef or audioChannelFormatIDRef in the audioTrackUID, or a \
                 chna entry",
            )),
        }
    }
}

/// One halo source found in the ADM: a channel of the file with its channel format.
struct Track<'d> {
    file_channel: usize,
    channel_id: String,
    channel: Option<&'d ChannelFormat>,
    pack_id: Option<String>,
}

/// Converts an ADM document and its `chna` to a halo scene whose object and bed sources are
/// channels (0-based) of the ADM file itself. Returns the scene and the warnings (parts of
/// the ADM halo does not render, or renders differently).
pub fn to_scene(
    doc: &AdmDocument,
    chna: &Chna,
    audio: &AdmAudio,
) -> Result<(Scene, Vec<String>), AdmError> {
    to_scene_of(doc, chna, audio, None)
}

/// The programme to render: the one whose `audioProgrammeID` or `audioProgrammeName` is
/// `wanted`, or the first (`None`; also `None` when the file has no programme at all).
pub fn select_programme<'a>(
    doc: &'a AdmDocument,
    wanted: Option<&str>,
) -> Result<Option<&'a Programme>, AdmError> {
    let Some(wanted) = wanted else {
        return Ok(doc.programmes.first());
    };
    doc.programmes
        .iter()
        .find(|p| p.id == wanted)
        .or_else(|| doc.programmes.iter().find(|p| p.name == wanted))
        .map(Some)
        .ok_or_else(|| AdmError::UnknownProgramme {
            asked: wanted.to_string(),
            available: if doc.programmes.is_empty() {
                "none: the file has no audioProgramme".into()
            } else {
                doc.programmes
                    .iter()
                    .map(|p| format!("{} {:?}", p.id, p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// [`to_scene`] of one programme (see [`select_programme`]).
pub fn to_scene_of(
    doc: &AdmDocument,
    chna: &Chna,
    audio: &AdmAudio,
    programme: Option<&str>,
) -> Result<(Scene, Vec<String>), AdmError> {
    let chosen = select_programme(doc, programme)?;
    let mut warnings = doc.warnings.clone();
    let f = Finder { doc };
    if audio.sample_rate == 0 {
        return Err(invalid(
            "audio",
            "the sample rate is 0 Hz",
            "a sample rate above 0",
        ));
    }
    for e in &chna.entries {
        if usize::from(e.track_index) > audio.channels {
            return Err(AdmError::Chna {
                problem: format!(
                    "{} is on track {}, but the file has {} channels",
                    e.uid, e.track_index, audio.channels
                ),
                allowed: format!("track indices from 1 to {}", audio.channels),
            });
        }
    }
    let track_of = |uid: &str| chna.entries.iter().find(|e| e.uid == uid);

    // Which objects to render: the chosen programme's, or all contents', or every
    // top-level object.
    let mut roots: Vec<&str> = Vec::new();
    let mut duration_frames = None;
    if let Some(p) = chosen {
        if doc.programmes.len() > 1 {
            warnings.push(format!(
                "{} audioProgrammes: rendering {} {:?}; not rendered: {} (choose one by its ID or name)",
                doc.programmes.len(),
                p.id,
                p.name,
                doc.programmes
                    .iter()
                    .filter(|q| q.id != p.id)
                    .map(|q| format!("{} {:?}", q.id, q.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let (Some(s), Some(e)) = (p.start, p.end) {
            let (s, e) = (
                s.to_frames(audio.sample_rate),
                e.to_frames(audio.sample_rate),
            );
            if e > s {
                duration_frames = Some(e - s);
            }
        }
        for c in &p.content_refs {
            if let Some(content) = doc.contents.iter().find(|x| &x.id == c) {
                roots.extend(content.object_refs.iter().map(String::as_str));
            }
        }
    } else if !doc.contents.is_empty() {
        for content in &doc.contents {
            roots.extend(content.object_refs.iter().map(String::as_str));
        }
    } else {
        roots = doc
            .objects
            .iter()
            .filter(|o| !doc.objects.iter().any(|p| p.object_refs.contains(&o.id)))
            .map(|o| o.id.as_str())
            .collect();
    }

    // Leaf objects with their accumulated gain and mute.
    struct Leaf<'d> {
        object: &'d AudioObject,
        gain: f64,
        mute: bool,
    }
    let mut leaves: Vec<Leaf> = Vec::new();
    fn walk<'d>(
        f: &Finder<'d>,
        id: &str,
        gain: f64,
        mute: bool,
        depth: usize,
        path: &mut Vec<String>,
        leaves: &mut Vec<Leaf<'d>>,
    ) -> Result<(), AdmError> {
        if depth > MAX_OBJECT_NESTING || path.iter().any(|p| p == id) {
            return Err(invalid(
                format!("audioObject {id}"),
                format!(
                    "the audioObjectIDRef chain {} loops or nests too deep",
                    path.join(" → ")
                ),
                &format!("nested objects without loops, at most {MAX_OBJECT_NESTING} deep"),
            ));
        }
        let Some(o) = f.object(id) else {
            return Err(AdmError::UnknownRef {
                element: path
                    .last()
                    .map_or("audioContent".into(), |p| format!("audioObject {p}")),
                reference: id.to_string(),
                where_: " in the axml chunk".into(),
            });
        };
        let own_db = o.gain_db.unwrap_or_else(|| lin_to_db(o.gain));
        let (g, m) = (gain + own_db, mute || o.mute);
        if !o.track_uid_refs.is_empty() {
            leaves.push(Leaf {
                object: o,
                gain: g,
                mute: m,
            });
        }
        path.push(id.to_string());
        for child in &o.object_refs {
            walk(f, child, g, m, depth + 1, path, leaves)?;
        }
        path.pop();
        Ok(())
    }
    let mut seen: Vec<&str> = Vec::new();
    for r in roots {
        if seen.contains(&r) {
            continue;
        }
        seen.push(r);
        walk(&f, r, 0.0, false, 0, &mut Vec::new(), &mut leaves)?;
    }

    let mut objects: Vec<ObjectSpec> = Vec::new();
    let mut beds: Vec<BedSpec> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut unique = |base: &str, id: &str| {
        let base = if base.trim().is_empty() { id } else { base };
        let mut name = base.to_string();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base} ({k})");
            k += 1;
        }
        names.push(name.clone());
        name
    };

    /// (object ID, name, tracks, gain dB, mute, the object).
    type Group<'d> = (
        String,
        String,
        Vec<Track<'d>>,
        f64,
        bool,
        Option<&'d AudioObject>,
    );
    let mut groups: Vec<Group> = Vec::new();
    if leaves.is_empty() && doc.objects.is_empty() {
        // No objects: the chna alone says which pack and channel each track carries.
        for e in &chna.entries {
            let channel_id = f.channel_of(&e.uid, Some(e))?;
            let track = Track {
                file_channel: usize::from(e.track_index) - 1,
                channel: f.channel(&channel_id),
                channel_id,
                pack_id: Some(e.pack_ref.clone()).filter(|p| !p.is_empty()),
            };
            let key = track.pack_id.clone().unwrap_or_default();
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => g.2.push(track),
                None => groups.push((key.clone(), key, vec![track], 0.0, false, None)),
            }
        }
    }
    for leaf in &leaves {
        let o = leaf.object;
        let mut tracks = Vec::new();
        for uid in &o.track_uid_refs {
            let entry = track_of(uid).ok_or_else(|| AdmError::UnknownRef {
                element: format!("audioObject {}", o.id),
                reference: uid.clone(),
                where_: " in the chna chunk (the track that carries it is unknown)".into(),
            })?;
            let channel_id = f.channel_of(uid, Some(entry))?;
            let pack_id = f
                .uid(uid)
                .and_then(|u| u.pack_ref.clone())
                .or_else(|| Some(entry.pack_ref.clone()).filter(|p| !p.is_empty()))
                .or_else(|| o.pack_refs.first().cloned());
            tracks.push(Track {
                file_channel: usize::from(entry.track_index) - 1,
                channel: f.channel(&channel_id),
                channel_id,
                pack_id,
            });
        }
        groups.push((
            o.id.clone(),
            o.name.clone(),
            tracks,
            leaf.gain,
            leaf.mute,
            Some(o),
        ));
    }

    let rate = audio.sample_rate;
    for (id, name, tracks, gain, mute, object) in groups {
        let start = object
            .and_then(|o| o.start)
            .map_or(0, |t| t.to_frames(rate));
        let gain_db = gain;
        let (speakers, others): (Vec<&Track>, Vec<&Track>) = tracks.iter().partition(|t| {
            t.channel.map_or_else(
                || common_channel(&t.channel_id).is_some(),
                |c| c.type_def == TypeDefinition::DirectSpeakers,
            )
        });
        for t in others {
            let Some(cf) = t.channel else {
                return Err(AdmError::UnknownRef {
                    element: format!("audioObject {id}"),
                    reference: t.channel_id.clone(),
                    where_: " in the axml chunk".into(),
                });
            };
            if cf.type_def != TypeDefinition::Objects {
                warnings.push(format!(
                    "audioObject {id} {name:?}: track {} ({} {}) is {} content, not rendered",
                    t.file_channel + 1,
                    cf.id,
                    cf.name,
                    cf.type_def.name()
                ));
                continue;
            }
            let base = if tracks.len() > 1 {
                format!(
                    "{name} {}",
                    if cf.name.is_empty() { &cf.id } else { &cf.name }
                )
            } else {
                name.clone()
            };
            let obj =
                object_from_channel(cf, start, gain_db, audio, t.file_channel, &mut warnings)?;
            let binaural = object.and_then(|o| o.halo_binaural).unwrap_or(
                if cf.blocks.iter().any(|b| b.headphone_bypass) {
                    BinauralMode::Off
                } else if let Some(drr) = cf.blocks.iter().find_map(|b| b.headphone_drr_db) {
                    match crate::spatial::binaural::Distance::nearest_to_drr(drr) {
                        crate::spatial::binaural::Distance::Near => BinauralMode::Near,
                        crate::spatial::binaural::Distance::Far => BinauralMode::Far,
                        _ => BinauralMode::Mid,
                    }
                } else {
                    BinauralMode::Mid
                },
            );
            objects.push(ObjectSpec {
                name: unique(&base, &id),
                binaural,
                mute,
                ..obj
            });
        }
        if !speakers.is_empty() {
            let element = format!("audioObject {id} {name:?}");
            let mut labels = Vec::new();
            for t in &speakers {
                labels.push(speaker_label(t, &element)?);
            }
            match match_layout(&labels) {
                Some((layout, order)) => {
                    let channels = order.iter().map(|&i| speakers[i].file_channel).collect();
                    beds.push(BedSpec {
                        binaural: None,
                        name: unique(&name, &id),
                        source: audio.path.clone(),
                        layout,
                        gain_db,
                        mute,
                        channels: Some(channels),
                    });
                }
                None => {
                    warnings.push(format!(
                        "{element}: no built-in layout has exactly the speakers {}; each \
                         channel is rendered as a point object at its speaker's position{}",
                        labels.join(" "),
                        if labels.iter().any(|l| l.starts_with("LFE")) {
                            " (the LFE channel is dropped: objects never feed the LFE)"
                        } else {
                            ""
                        }
                    ));
                    for (t, label) in speakers.iter().zip(&labels) {
                        if label.starts_with("LFE") {
                            continue;
                        }
                        let position = speaker_position(t, label);
                        objects.push(ObjectSpec {
                            name: unique(&format!("{name} {label}"), &id),
                            source: SourceSpec {
                                path: audio.path.clone(),
                                channel: Some(t.file_channel),
                            },
                            gain_db: Automation::constant(gain_db),
                            mute,
                            position: Automation::constant(position),
                            size: Automation::constant(0.0),
                            binaural: BinauralMode::Mid,
                        });
                    }
                }
            }
        }
    }
    if objects.is_empty() && beds.is_empty() {
        return Err(AdmError::Nothing(format!(
            "no Objects or DirectSpeakers channel to render (found {} objects, {} channel \
             formats, {} chna entries){}",
            doc.objects.len(),
            doc.channel_formats.len(),
            chna.entries.len(),
            if warnings.is_empty() {
                String::new()
            } else {
                format!("; {}", warnings.join("; "))
            }
        )));
    }
    Ok((
        Scene {
            sample_rate: rate,
            duration_frames,
            objects,
            beds,
            outputs: Vec::new(),
            origin: audio.path.clone(),
        },
        warnings,
    ))
}

fn lin_to_db(g: f64) -> f64 {
    if g <= 0.0 {
        SILENT_GAIN_DB
    } else {
        (20.0 * g.log10()).max(SILENT_GAIN_DB)
    }
}

fn block_gain_db(b: &BlockFormat) -> f64 {
    b.gain_db.unwrap_or_else(|| lin_to_db(b.gain))
}

fn block_size(b: &BlockFormat) -> f64 {
    let s = match b.position {
        Some(BlockPosition::Cartesian { .. }) => b.width.max(b.height).max(b.depth),
        _ => b.width.max(b.height) / 360.0,
    };
    s.clamp(0.0, 1.0)
}

fn block_position(b: &BlockFormat) -> Option<Position> {
    b.position.map(|p| match p {
        BlockPosition::Polar {
            azimuth,
            elevation,
            distance,
        } => Position::Polar {
            azimuth_deg: azimuth,
            elevation_deg: elevation,
            distance,
        },
        BlockPosition::Cartesian { x, y, z } => Position::Cartesian { x, y, z },
    })
}

/// The three parameters of a block, as halo values.
#[derive(Clone, Copy)]
struct Values {
    position: Position,
    gain_db: f64,
    size: f64,
}

fn object_from_channel(
    cf: &ChannelFormat,
    start: u64,
    object_gain_db: f64,
    audio: &AdmAudio,
    file_channel: usize,
    warnings: &mut Vec<String>,
) -> Result<ObjectSpec, AdmError> {
    let rate = audio.sample_rate;
    let element = format!("audioChannelFormat {}", cf.id);
    if cf.blocks.is_empty() {
        return Err(invalid(
            &element,
            "the Objects channel has no audioBlockFormat",
            "at least one audioBlockFormat with a position",
        ));
    }
    let mut cartesian = None;
    let mut values = Vec::with_capacity(cf.blocks.len());
    for b in &cf.blocks {
        let Some(p) = block_position(b) else {
            return Err(invalid(
                format!("audioBlockFormat {}", b.id),
                "the block has no position",
                "a position on every Objects block",
            ));
        };
        let is_cart = matches!(p, Position::Cartesian { .. });
        if *cartesian.get_or_insert(is_cart) != is_cart {
            return Err(invalid(
                format!("audioBlockFormat {}", b.id),
                "the block's coordinates (polar or Cartesian) differ from the first block's",
                "the same kind of coordinates in every block of a channel",
            ));
        }
        for t in [b.rtime, b.duration, b.interpolation_length]
            .into_iter()
            .flatten()
        {
            if !t.is_on_sample(rate) {
                warnings.push(format!(
                    "audioBlockFormat {}: time {t} is not on a sample at {rate} Hz (rounded to \
                     the nearest sample)",
                    b.id
                ));
                break;
            }
        }
        values.push(Values {
            position: p,
            gain_db: block_gain_db(b) + object_gain_db,
            size: block_size(b),
        });
    }

    // Block timing in frames: (start, end, interpolation end) and whether the block
    // interpolates from the previous one.
    let mut spans = Vec::with_capacity(cf.blocks.len());
    let mut prev_end: Option<u64> = None;
    let mut gap_warned = false;
    for b in &cf.blocks {
        let s = start + b.rtime.map_or(0, |t| t.to_frames(rate));
        let e = b
            .duration
            .map(|d| start + b.rtime.unwrap_or(AdmTime::ZERO).add(d).to_frames(rate));
        let len = if b.jump_position {
            b.interpolation_length.map_or(0, |l| l.to_frames(rate))
        } else {
            e.map_or(0, |e| e.saturating_sub(s))
        };
        let contiguous = prev_end == Some(s);
        if let Some(pe) = prev_end
            && pe < s
            && !gap_warned
        {
            gap_warned = true;
            warnings.push(format!(
                "{element}: blocks leave gaps (e.g. before audioBlockFormat {}); BS.2127 \
                 silences the object there, halo holds its last position and gain",
                b.id
            ));
        }
        spans.push((
            s,
            contiguous && len > 0,
            s + if contiguous { len } else { 0 },
        ));
        prev_end = e;
    }

    let marked = cf.blocks.iter().all(|b| b.halo_keys.is_some());
    let (pos, gain, size) = if marked {
        marked_keys(cf, &values, &spans)?
    } else {
        (
            standard_keys(&values, &spans, |v| v.position),
            standard_keys(&values, &spans, |v| v.gain_db),
            standard_keys(&values, &spans, |v| v.size),
        )
    };
    fn build<T: crate::scene::automation::Interpolate>(
        keys: Vec<Keyframe<T>>,
        element: &str,
        what: &str,
    ) -> Result<Automation<T>, AdmError> {
        Automation::new(keys)
            .map_err(|e| invalid(element, format!("{what}: {e}"), "blocks in time order"))
    }
    Ok(ObjectSpec {
        name: String::new(),
        source: SourceSpec {
            path: audio.path.clone(),
            channel: Some(file_channel),
        },
        gain_db: simplify(build(gain, &element, "gain")?),
        mute: false,
        position: simplify(build(pos, &element, "position")?),
        size: simplify(build(size, &element, "size")?),
        binaural: BinauralMode::Mid,
    })
}

/// An automation whose values never change becomes a constant.
fn simplify<T: crate::scene::automation::Interpolate>(a: Automation<T>) -> Automation<T> {
    if a.is_constant() && a.keyframes().len() > 1 {
        Automation::constant(a.first_value())
    } else {
        a
    }
}

/// Keyframes under the BS.2127 timing rules (see the module documentation).
fn standard_keys<T: Copy + PartialEq>(
    values: &[Values],
    spans: &[(u64, bool, u64)],
    get: impl Fn(&Values) -> T,
) -> Vec<Keyframe<T>> {
    let mut keys: Vec<Keyframe<T>> = Vec::new();
    let push =
        |keys: &mut Vec<Keyframe<T>>, frame: u64, value: T, interpolation| match keys.last_mut() {
            Some(k) if k.frame == frame => {
                k.value = value;
                k.interpolation = interpolation;
            }
            Some(k) if k.frame > frame => {}
            _ => keys.push(Keyframe {
                frame,
                value,
                interpolation,
            }),
        };
    for (i, (v, &(s, interpolates, target))) in values.iter().zip(spans).enumerate() {
        let to = get(v);
        if interpolates && i > 0 {
            let from = get(&values[i - 1]);
            match keys.last_mut() {
                Some(k) if k.frame == s && k.value == from => {
                    k.interpolation = Interpolation::Linear;
                }
                _ => push(&mut keys, s, from, Interpolation::Linear),
            }
            push(&mut keys, target, to, Interpolation::Step);
        } else {
            push(&mut keys, s, to, Interpolation::Step);
        }
    }
    keys
}

type KeySets = (
    Vec<Keyframe<Position>>,
    Vec<Keyframe<f64>>,
    Vec<Keyframe<f64>>,
);

/// Keyframes from halo's `halo:keys` marks: a keyframe at every marked block's start with
/// the value the block starts from.
fn marked_keys(
    cf: &ChannelFormat,
    values: &[Values],
    spans: &[(u64, bool, u64)],
) -> Result<KeySets, AdmError> {
    let (mut pos, mut gain, mut size) = (Vec::new(), Vec::new(), Vec::new());
    for (i, b) in cf.blocks.iter().enumerate() {
        let marks = b.halo_keys.as_deref().unwrap_or_default();
        let (frame, interpolates, _) = spans[i];
        let at = if interpolates && i > 0 {
            values[i - 1]
        } else {
            values[i]
        };
        for mark in marks.split_whitespace() {
            let bad = || {
                invalid(
                    format!("audioBlockFormat {}", b.id),
                    format!("halo:keys item {mark:?} is not understood"),
                    "items p=…, g=…, s=… with step, linear or smooth",
                )
            };
            let (param, interp) = mark.split_once('=').ok_or_else(bad)?;
            let interpolation = match interp {
                "step" => Interpolation::Step,
                "linear" => Interpolation::Linear,
                "smooth" => Interpolation::Smooth,
                _ => return Err(bad()),
            };
            match param {
                "p" => pos.push(Keyframe {
                    frame,
                    value: at.position,
                    interpolation,
                }),
                "g" => gain.push(Keyframe {
                    frame,
                    value: at.gain_db,
                    interpolation,
                }),
                "s" => size.push(Keyframe {
                    frame,
                    value: at.size,
                    interpolation,
                }),
                _ => return Err(bad()),
            }
        }
    }
    if pos.is_empty() || gain.is_empty() || size.is_empty() {
        return Err(invalid(
            format!("audioChannelFormat {}", cf.id),
            "the halo:keys marks give no keyframe for one of position, gain, size",
            "p=, g= and s= each on at least one block",
        ));
    }
    Ok((pos, gain, size))
}

/// The speaker label of a DirectSpeakers track, normalised: the BS.2051 name when the
/// label is a URN, the short name otherwise.
fn speaker_label(t: &Track, element: &str) -> Result<String, AdmError> {
    let raw = match t.channel {
        Some(cf) => cf
            .blocks
            .first()
            .and_then(|b| b.speaker_labels.first().cloned())
            .or_else(|| {
                cf.low_pass_hz
                    .filter(|&hz| hz <= 200.0)
                    .map(|_| "LFE1".to_string())
            }),
        None => common_channel(&t.channel_id).map(str::to_string),
    };
    let Some(raw) = raw else {
        return Err(invalid(
            element,
            format!(
                "DirectSpeakers channel {} has no speakerLabel",
                t.channel_id
            ),
            "a <speakerLabel> in the first block (M+030, urn:itu:bs:2051:0:speaker:M+030, L …)",
        ));
    };
    let mut l = raw.trim();
    if let Some(i) = l.rfind(":speaker:") {
        l = &l[i + 9..];
    }
    let l = l.strip_prefix("RC_").unwrap_or(l);
    Ok(l.to_string())
}

/// Short names used by DAWs for the BS.2051 speakers (beside halo's own labels).
fn short_name_alias(label: &str) -> Option<&'static str> {
    Some(match label {
        "Lss" => "M+090",
        "Rss" => "M-090",
        "Lsr" | "Lrs" | "Lb" => "M+135",
        "Rsr" | "Rrs" | "Rb" => "M-135",
        "LFE" | "LFE1" => "LFE1",
        "Vhl" | "Ltfh" => "U+045",
        "Vhr" | "Rtfh" => "U-045",
        _ => return None,
    })
}

/// The built-in layout whose speakers are exactly the given labels, and for each layout
/// channel the index of the label that feeds it.
fn match_layout(labels: &[String]) -> Option<(Layout, Vec<usize>)> {
    for layout in Layout::builtins() {
        if layout.num_channels() != labels.len() {
            continue;
        }
        let mut order = vec![usize::MAX; labels.len()];
        let mut ok = true;
        for (i, l) in labels.iter().enumerate() {
            let alias = short_name_alias(l);
            let hit = layout
                .channels
                .iter()
                .position(|c| c.name == *l || c.label == *l || alias.is_some_and(|a| c.name == a));
            match hit {
                Some(c) if order[c] == usize::MAX => order[c] = i,
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Some((layout, order));
        }
    }
    None
}

/// A DirectSpeakers channel's position: its block's, or its BS.2051 name's
/// (`M+030` = elevation 0, azimuth +30; `U` 30°, `T` 90°, `B` −30°).
fn speaker_position(t: &Track, label: &str) -> Position {
    if let Some(p) = t
        .channel
        .and_then(|c| c.blocks.first())
        .and_then(block_position)
    {
        return p;
    }
    let el = match label.chars().next() {
        Some('U') => 30.0,
        Some('T') => 90.0,
        Some('B') => -30.0,
        _ => 0.0,
    };
    let az = label
        .get(1..)
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(0.0);
    Position::Polar {
        azimuth_deg: az,
        elevation_deg: el,
        distance: 1.0,
    }
}

// ---------------------------------------------------------------------------------------
// halo → ADM.

/// Which file channel (0-based) carries each object and each bed channel.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackPlan {
    /// One per scene object, in order.
    pub objects: Vec<usize>,
    /// One list per scene bed (one channel per layout channel, in layout order).
    pub beds: Vec<Vec<usize>>,
    /// The file's channel count.
    pub channels: usize,
    /// The file's length in frames (the last block ends there).
    pub frames: u64,
}

impl TrackPlan {
    /// Beds first (each in its layout's order), then one channel per object: the usual
    /// order of Atmos masters.
    pub fn beds_then_objects(scene: &Scene, frames: u64) -> TrackPlan {
        let mut next = 0;
        let beds = scene
            .beds
            .iter()
            .map(|b| {
                let v: Vec<usize> = (next..next + b.layout.num_channels()).collect();
                next += v.len();
                v
            })
            .collect();
        let objects = (0..scene.objects.len()).map(|i| next + i).collect();
        TrackPlan {
            objects,
            beds,
            channels: next + scene.objects.len(),
            frames,
        }
    }
}

fn check_plan(scene: &Scene, plan: &TrackPlan) -> Result<(), AdmError> {
    let bad = |problem: String| {
        invalid(
            "track plan",
            problem,
            "one file channel per object and per bed channel, each below the channel count and used once",
        )
    };
    if plan.objects.len() != scene.objects.len() || plan.beds.len() != scene.beds.len() {
        return Err(bad(format!(
            "{} object and {} bed entries for {} objects and {} beds",
            plan.objects.len(),
            plan.beds.len(),
            scene.objects.len(),
            scene.beds.len()
        )));
    }
    let mut used = vec![false; plan.channels];
    for (b, chans) in scene.beds.iter().zip(&plan.beds) {
        if chans.len() != b.layout.num_channels() {
            return Err(bad(format!(
                "bed {:?} has {} channels in the plan, its layout {} has {}",
                b.name,
                chans.len(),
                b.layout.name,
                b.layout.num_channels()
            )));
        }
    }
    for &c in plan.objects.iter().chain(plan.beds.iter().flatten()) {
        match used.get_mut(c) {
            Some(u) if !*u => *u = true,
            Some(_) => return Err(bad(format!("channel {c} is used twice"))),
            None => return Err(bad(format!("channel {c} is not below {}", plan.channels))),
        }
    }
    if plan.channels > 65535 {
        return Err(bad(format!("{} channels", plan.channels)));
    }
    Ok(())
}

/// Builds the ADM document of a halo scene: one programme and content, every object as an
/// Objects channel with its automation as block formats (see the module documentation),
/// every bed as a DirectSpeakers pack with BS.2051 speaker labels. `loudness` goes on the
/// programme. The matching `chna` is [`chna_of`].
pub fn from_scene(
    scene: &Scene,
    plan: &TrackPlan,
    loudness: Option<AdmLoudness>,
) -> Result<AdmDocument, AdmError> {
    check_plan(scene, plan)?;
    let rate = scene.sample_rate;
    let mut doc = AdmDocument::default();
    let mut object_ids = Vec::new();
    let total_end = scene
        .duration_frames
        .unwrap_or(plan.frames)
        .max(plan.frames);
    // Custom definitions number from 0x1001 (BS.2076: 0x0001…0x0FFF are common definitions).
    let mut pack_n = 0x1000u32;
    let mut channel_n = 0x1000u32;

    for bed in &scene.beds {
        pack_n += 1;
        let pack = format!("AP_0001{pack_n:04x}");
        let mut channel_refs = Vec::new();
        let mut uids = Vec::new();
        for ch in &bed.layout.channels {
            channel_n += 1;
            let cid = format!("AC_0001{channel_n:04x}");
            let mut block = BlockFormat::new(format!("AB_0001{channel_n:04x}_00000001"));
            block.position = Some(BlockPosition::Polar {
                azimuth: ch.azimuth_deg,
                elevation: ch.elevation_deg,
                distance: 1.0,
            });
            block.speaker_labels = vec![if ch.name.is_empty() {
                ch.label.clone()
            } else {
                ch.name.clone()
            }];
            doc.channel_formats.push(ChannelFormat {
                id: cid.clone(),
                name: ch.label.clone(),
                type_def: TypeDefinition::DirectSpeakers,
                blocks: vec![block],
                low_pass_hz: ch.lfe.then_some(120.0),
            });
            uids.push(add_track(&mut doc, &cid, &pack));
            channel_refs.push(cid);
        }
        doc.pack_formats.push(PackFormat {
            id: pack.clone(),
            name: format!("{} {}", bed.name, bed.layout.name),
            type_def: TypeDefinition::DirectSpeakers,
            channel_refs,
            pack_refs: Vec::new(),
        });
        let oid = format!("AO_{:04x}", 0x1001 + object_ids.len());
        doc.objects.push(AudioObject {
            id: oid.clone(),
            name: bed.name.clone(),
            start: None,
            duration: None,
            pack_refs: vec![pack],
            object_refs: Vec::new(),
            track_uid_refs: uids,
            gain: 10f64.powf(bed.gain_db / 20.0),
            gain_db: (bed.gain_db != 0.0).then_some(bed.gain_db),
            mute: bed.mute,
            halo_binaural: None,
        });
        object_ids.push(oid);
    }

    for obj in &scene.objects {
        pack_n += 1;
        channel_n += 1;
        let pack = format!("AP_0003{pack_n:04x}");
        let cid = format!("AC_0003{channel_n:04x}");
        let blocks = object_blocks(obj, &cid[3..], total_end, rate)?;
        doc.channel_formats.push(ChannelFormat {
            id: cid.clone(),
            name: obj.name.clone(),
            type_def: TypeDefinition::Objects,
            blocks,
            low_pass_hz: None,
        });
        doc.pack_formats.push(PackFormat {
            id: pack.clone(),
            name: obj.name.clone(),
            type_def: TypeDefinition::Objects,
            channel_refs: vec![cid.clone()],
            pack_refs: Vec::new(),
        });
        let uid = add_track(&mut doc, &cid, &pack);
        let oid = format!("AO_{:04x}", 0x1001 + object_ids.len());
        doc.objects.push(AudioObject {
            id: oid.clone(),
            name: obj.name.clone(),
            start: None,
            duration: None,
            pack_refs: vec![pack],
            object_refs: Vec::new(),
            track_uid_refs: vec![uid],
            gain: 1.0,
            gain_db: None,
            mute: obj.mute,
            halo_binaural: Some(obj.binaural),
        });
        object_ids.push(oid);
    }
    if object_ids.len() > 0xefff {
        return Err(AdmError::TooLarge {
            what: "the number of objects and beds".into(),
            value: object_ids.len() as u64,
            max: 0xefff,
        });
    }
    doc.contents.push(Content {
        id: "ACO_1001".into(),
        name: "halo mix".into(),
        object_refs: object_ids,
        loudness: None,
    });
    doc.programmes.push(Programme {
        id: "APR_1001".into(),
        name: "halo".into(),
        start: Some(AdmTime::from_frames(0, rate)),
        end: Some(AdmTime::from_frames(total_end, rate)),
        content_refs: vec!["ACO_1001".into()],
        loudness,
    });
    Ok(doc)
}

/// Adds the stream format, track format and track UID of a channel; returns the UID.
fn add_track(doc: &mut AdmDocument, channel_id: &str, pack: &str) -> String {
    let suffix = &channel_id[3..];
    let sf = format!("AS_{suffix}");
    let tf = format!("AT_{suffix}_01");
    let uid = format!("ATU_{:08x}", doc.track_uids.len() + 1);
    doc.stream_formats.push(StreamFormat {
        id: sf.clone(),
        channel_ref: Some(channel_id.to_string()),
        pack_ref: None,
        track_refs: vec![tf.clone()],
    });
    doc.track_formats.push(TrackFormat {
        id: tf.clone(),
        stream_ref: Some(sf),
    });
    doc.track_uids.push(TrackUid {
        id: uid.clone(),
        track_format_ref: Some(tf),
        channel_format_ref: None,
        pack_ref: Some(pack.to_string()),
    });
    uid
}

/// The `chna` of a document made by [`from_scene`] with the same plan (its track UIDs are
/// numbered in the plan's order: bed channels, then objects).
pub fn chna_of(doc: &AdmDocument, plan: &TrackPlan) -> Chna {
    let chans = plan
        .beds
        .iter()
        .flatten()
        .copied()
        .chain(plan.objects.iter().copied());
    let mut entries: Vec<ChnaEntry> = chans
        .zip(&doc.track_uids)
        .map(|(ch, u)| ChnaEntry {
            track_index: (ch + 1).min(65535) as u16,
            uid: u.id.clone(),
            track_ref: u.track_format_ref.clone().unwrap_or_default(),
            pack_ref: u.pack_ref.clone().unwrap_or_default(),
        })
        .collect();
    entries.sort_by_key(|e| e.track_index);
    Chna { entries }
}

/// How a parameter moves over a frame range: the interpolation of its keyframe at or
/// before `frame` (before the first keyframe it holds).
fn segment_kind<T: crate::scene::automation::Interpolate>(
    a: &Automation<T>,
    frame: u64,
) -> Interpolation {
    let keys = a.keyframes();
    let i = keys.partition_point(|k| k.frame <= frame);
    if i == 0 || i == keys.len() {
        Interpolation::Step
    } else {
        keys[i - 1].interpolation
    }
}

/// A parameter's exact value at a frame: the keyframe's own value on a keyframe.
fn value_at<T: crate::scene::automation::Interpolate>(a: &Automation<T>, frame: u64) -> T {
    let keys = a.keyframes();
    match keys.binary_search_by_key(&frame, |k| k.frame) {
        Ok(i) => keys[i].value,
        Err(_) => a.value_at(frame as f64),
    }
}

fn keyed<T: crate::scene::automation::Interpolate>(
    a: &Automation<T>,
    frame: u64,
) -> Option<Interpolation> {
    let keys = a.keyframes();
    keys.binary_search_by_key(&frame, |k| k.frame)
        .ok()
        .map(|i| keys[i].interpolation)
}

fn interp_name(i: Interpolation) -> &'static str {
    match i {
        Interpolation::Step => "step",
        Interpolation::Linear => "linear",
        Interpolation::Smooth => "smooth",
    }
}

fn object_blocks(
    obj: &ObjectSpec,
    id_suffix: &str,
    total_end: u64,
    rate: u32,
) -> Result<Vec<BlockFormat>, AdmError> {
    let mut grid: Vec<u64> = obj
        .position
        .keyframes()
        .iter()
        .map(|k| k.frame)
        .chain(obj.gain_db.keyframes().iter().map(|k| k.frame))
        .chain(obj.size.keyframes().iter().map(|k| k.frame))
        .chain(std::iter::once(0))
        .collect();
    grid.sort_unstable();
    grid.dedup();
    let end = total_end.max(grid.last().copied().unwrap_or(0) + 1);
    let cartesian = matches!(obj.position.first_value(), Position::Cartesian { .. });
    let vals = |f: u64| {
        (
            value_at(&obj.position, f),
            value_at(&obj.gain_db, f),
            value_at(&obj.size, f),
        )
    };
    let mut blocks: Vec<BlockFormat> = Vec::new();
    let mut prev_targets: Option<(Position, f64, f64)> = None;
    let mut n = 0u32;
    let make = |n: &mut u32, s: u64, e: u64, t: (Position, f64, f64), ramp: bool, marks: String| {
        *n += 1;
        let mut b = BlockFormat::new(format!("AB_{id_suffix}_{:08x}", *n));
        b.rtime = Some(AdmTime::from_frames(s, rate));
        b.duration = Some(AdmTime::from_frames(e - s, rate));
        b.position = Some(match t.0 {
            Position::Cartesian { x, y, z } => BlockPosition::Cartesian { x, y, z },
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                distance,
            } => BlockPosition::Polar {
                azimuth: if (-180.0..=180.0).contains(&azimuth_deg) {
                    azimuth_deg
                } else {
                    wrap_deg(azimuth_deg)
                },
                elevation: elevation_deg,
                distance,
            },
        });
        b.gain = 10f64.powf(t.1 / 20.0);
        b.gain_db = Some(t.1);
        if cartesian {
            (b.width, b.height, b.depth) = (t.2, t.2, t.2);
        } else {
            (b.width, b.height) = (t.2 * 360.0, t.2 * 360.0);
        }
        b.jump_position = !ramp;
        b.headphone_bypass = obj.binaural == BinauralMode::Off;
        b.halo_keys = Some(marks);
        b
    };
    for (gi, &f) in grid.iter().enumerate() {
        let next = grid.get(gi + 1).copied().unwrap_or(end);
        let kinds = [
            segment_kind(&obj.position, f),
            segment_kind(&obj.gain_db, f),
            segment_kind(&obj.size, f),
        ];
        let ramps = kinds.map(|k| k != Interpolation::Step);
        let mut marks = Vec::new();
        for (tag, k) in [
            ("p", keyed(&obj.position, f)),
            ("g", keyed(&obj.gain_db, f)),
            ("s", keyed(&obj.size, f)),
        ] {
            if let Some(k) = k {
                marks.push(format!("{tag}={}", interp_name(k)));
            }
        }
        let marks = marks.join(" ");
        let at_f = vals(f);
        if ramps.iter().any(|&r| r) {
            let at_next = vals(next);
            let target = (
                if ramps[0] { at_next.0 } else { at_f.0 },
                if ramps[1] { at_next.1 } else { at_f.1 },
                if ramps[2] { at_next.2 } else { at_f.2 },
            );
            let mut s = f;
            let mut ramp_marks = marks;
            if prev_targets != Some(at_f) {
                // A one-sample lead block jumps to the values at `f`; the ramp follows.
                blocks.push(make(&mut n, f, f + 1, at_f, false, ramp_marks));
                ramp_marks = String::new();
                s = f + 1;
            }
            if next > s {
                blocks.push(make(&mut n, s, next, target, true, ramp_marks));
                prev_targets = Some(target);
            } else {
                prev_targets = Some(at_f);
            }
        } else {
            blocks.push(make(&mut n, f, next, at_f, false, marks));
            prev_targets = Some(at_f);
        }
    }
    if blocks.len() > MAX_BLOCKS_PER_CHANNEL {
        return Err(AdmError::TooLarge {
            what: format!("the number of block formats for object {:?}", obj.name),
            value: blocks.len() as u64,
            max: MAX_BLOCKS_PER_CHANNEL as u64,
        });
    }
    Ok(blocks)
}

// ---------------------------------------------------------------------------------------
// XML writing.

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Writes the document as a BS.2076-2 `axml` chunk (UTF-8 XML in the EBU Core wrapper).
pub fn write_axml(doc: &AdmDocument) -> String {
    let mut x = String::with_capacity(4096 + doc.channel_formats.len() * 512);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<ebuCoreMain xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns=\"urn:ebu:metadata-schema:ebuCore_2016\" xmlns:halo=\"{HALO_NAMESPACE}\" \
         schema=\"EBU_CORE_20161222.xsd\" version=\"1.7\">"
    );
    x.push_str(
        "  <coreMetadata>\n    <format>\n      <audioFormatExtended version=\"ITU-R_BS.2076-2\">\n",
    );
    let ind = "        ";
    for p in &doc.programmes {
        let _ = write!(
            x,
            "{ind}<audioProgramme audioProgrammeID=\"{}\" audioProgrammeName=\"{}\"",
            esc(&p.id),
            esc(&p.name)
        );
        if let Some(s) = p.start {
            let _ = write!(x, " start=\"{s}\"");
        }
        if let Some(e) = p.end {
            let _ = write!(x, " end=\"{e}\"");
        }
        x.push_str(">\n");
        for c in &p.content_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioContentIDRef>{}</audioContentIDRef>",
                esc(c)
            );
        }
        write_loudness(&mut x, p.loudness.as_ref(), ind);
        let _ = writeln!(x, "{ind}</audioProgramme>");
    }
    for c in &doc.contents {
        let _ = writeln!(
            x,
            "{ind}<audioContent audioContentID=\"{}\" audioContentName=\"{}\">",
            esc(&c.id),
            esc(&c.name)
        );
        for o in &c.object_refs {
            let _ = writeln!(x, "{ind}  <audioObjectIDRef>{}</audioObjectIDRef>", esc(o));
        }
        write_loudness(&mut x, c.loudness.as_ref(), ind);
        let _ = writeln!(x, "{ind}</audioContent>");
    }
    for o in &doc.objects {
        let _ = write!(
            x,
            "{ind}<audioObject audioObjectID=\"{}\" audioObjectName=\"{}\"",
            esc(&o.id),
            esc(&o.name)
        );
        if let Some(s) = o.start {
            let _ = write!(x, " start=\"{s}\"");
        }
        if let Some(d) = o.duration {
            let _ = write!(x, " duration=\"{d}\"");
        }
        if let Some(b) = o.halo_binaural {
            let m = match b {
                BinauralMode::Off => "off",
                BinauralMode::Near => "near",
                BinauralMode::Mid => "mid",
                BinauralMode::Far => "far",
            };
            let _ = write!(x, " halo:binaural=\"{m}\"");
        }
        x.push_str(">\n");
        for r in &o.pack_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(r)
            );
        }
        for r in &o.object_refs {
            let _ = writeln!(x, "{ind}  <audioObjectIDRef>{}</audioObjectIDRef>", esc(r));
        }
        match o.gain_db {
            Some(db) if db != 0.0 => {
                let _ = writeln!(x, "{ind}  <gain gainUnit=\"dB\">{db:?}</gain>");
            }
            Some(_) => {}
            None if o.gain != 1.0 => {
                let _ = writeln!(x, "{ind}  <gain>{:?}</gain>", o.gain);
            }
            None => {}
        }
        if o.mute {
            let _ = writeln!(x, "{ind}  <mute>1</mute>");
        }
        for r in &o.track_uid_refs {
            let _ = writeln!(x, "{ind}  <audioTrackUIDRef>{}</audioTrackUIDRef>", esc(r));
        }
        let _ = writeln!(x, "{ind}</audioObject>");
    }
    for p in &doc.pack_formats {
        let _ = writeln!(
            x,
            "{ind}<audioPackFormat audioPackFormatID=\"{}\" audioPackFormatName=\"{}\" \
             typeLabel=\"{}\" typeDefinition=\"{}\">",
            esc(&p.id),
            esc(&p.name),
            p.type_def.label(),
            p.type_def.name()
        );
        for c in &p.channel_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioChannelFormatIDRef>{}</audioChannelFormatIDRef>",
                esc(c)
            );
        }
        for c in &p.pack_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(c)
            );
        }
        let _ = writeln!(x, "{ind}</audioPackFormat>");
    }
    for c in &doc.channel_formats {
        let _ = writeln!(
            x,
            "{ind}<audioChannelFormat audioChannelFormatID=\"{}\" audioChannelFormatName=\"{}\" \
             typeLabel=\"{}\" typeDefinition=\"{}\">",
            esc(&c.id),
            esc(&c.name),
            c.type_def.label(),
            c.type_def.name()
        );
        if let Some(hz) = c.low_pass_hz {
            let _ = writeln!(
                x,
                "{ind}  <frequency typeDefinition=\"lowPass\">{hz:?}</frequency>"
            );
        }
        for b in &c.blocks {
            write_block(&mut x, b, c.type_def, ind);
        }
        let _ = writeln!(x, "{ind}</audioChannelFormat>");
    }
    for s in &doc.stream_formats {
        let _ = writeln!(
            x,
            "{ind}<audioStreamFormat audioStreamFormatID=\"{}\" audioStreamFormatName=\"PCM_{}\" \
             formatLabel=\"0001\" formatDefinition=\"PCM\">",
            esc(&s.id),
            esc(&s.id)
        );
        if let Some(c) = &s.channel_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioChannelFormatIDRef>{}</audioChannelFormatIDRef>",
                esc(c)
            );
        }
        if let Some(p) = &s.pack_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(p)
            );
        }
        for t in &s.track_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioTrackFormatIDRef>{}</audioTrackFormatIDRef>",
                esc(t)
            );
        }
        let _ = writeln!(x, "{ind}</audioStreamFormat>");
    }
    for t in &doc.track_formats {
        let _ = writeln!(
            x,
            "{ind}<audioTrackFormat audioTrackFormatID=\"{}\" audioTrackFormatName=\"PCM_{}\" \
             formatLabel=\"0001\" formatDefinition=\"PCM\">",
            esc(&t.id),
            esc(&t.id)
        );
        if let Some(s) = &t.stream_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioStreamFormatIDRef>{}</audioStreamFormatIDRef>",
                esc(s)
            );
        }
        let _ = writeln!(x, "{ind}</audioTrackFormat>");
    }
    for u in &doc.track_uids {
        let _ = writeln!(x, "{ind}<audioTrackUID UID=\"{}\">", esc(&u.id));
        if let Some(t) = &u.track_format_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioTrackFormatIDRef>{}</audioTrackFormatIDRef>",
                esc(t)
            );
        }
        if let Some(c) = &u.channel_format_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioChannelFormatIDRef>{}</audioChannelFormatIDRef>",
                esc(c)
            );
        }
        if let Some(p) = &u.pack_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(p)
            );
        }
        let _ = writeln!(x, "{ind}</audioTrackUID>");
    }
    x.push_str("      </audioFormatExtended>\n    </format>\n  </coreMetadata>\n</ebuCoreMain>\n");
    x
}

fn write_loudness(x: &mut String, l: Option<&AdmLoudness>, ind: &str) {
    let Some(l) = l else { return };
    let _ = writeln!(
        x,
        "{ind}  <loudnessMetadata loudnessMethod=\"ITU-R BS.1770\">"
    );
    if let Some(v) = l.integrated_lufs {
        let _ = writeln!(x, "{ind}    <integratedLoudness>{v:?}</integratedLoudness>");
    }
    if let Some(v) = l.loudness_range_lu {
        let _ = writeln!(x, "{ind}    <loudnessRange>{v:?}</loudnessRange>");
    }
    if let Some(v) = l.max_true_peak_dbtp {
        let _ = writeln!(x, "{ind}    <maxTruePeak>{v:?}</maxTruePeak>");
    }
    let _ = writeln!(x, "{ind}  </loudnessMetadata>");
}

fn write_block(x: &mut String, b: &BlockFormat, t: TypeDefinition, ind: &str) {
    let _ = write!(
        x,
        "{ind}  <audioBlockFormat audioBlockFormatID=\"{}\"",
        esc(&b.id)
    );
    if let Some(r) = b.rtime {
        let _ = write!(x, " rtime=\"{r}\"");
    }
    if let Some(d) = b.duration {
        let _ = write!(x, " duration=\"{d}\"");
    }
    if let Some(k) = &b.halo_keys {
        let _ = write!(x, " halo:keys=\"{}\"", esc(k));
    }
    x.push_str(">\n");
    let i2 = format!("{ind}    ");
    for l in &b.speaker_labels {
        let _ = writeln!(x, "{i2}<speakerLabel>{}</speakerLabel>", esc(l));
    }
    match b.position {
        Some(BlockPosition::Polar {
            azimuth,
            elevation,
            distance,
        }) => {
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"azimuth\">{azimuth:?}</position>"
            );
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"elevation\">{elevation:?}</position>"
            );
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"distance\">{distance:?}</position>"
            );
        }
        Some(BlockPosition::Cartesian { x: px, y, z }) => {
            let _ = writeln!(x, "{i2}<cartesian>1</cartesian>");
            let _ = writeln!(x, "{i2}<position coordinate=\"X\">{px:?}</position>");
            let _ = writeln!(x, "{i2}<position coordinate=\"Y\">{y:?}</position>");
            let _ = writeln!(x, "{i2}<position coordinate=\"Z\">{z:?}</position>");
        }
        None => {}
    }
    if t == TypeDefinition::Objects {
        match b.gain_db {
            Some(db) => {
                let _ = writeln!(x, "{i2}<gain gainUnit=\"dB\">{db:?}</gain>");
            }
            None => {
                let _ = writeln!(x, "{i2}<gain>{:?}</gain>", b.gain);
            }
        }
        let _ = writeln!(x, "{i2}<width>{:?}</width>", b.width);
        let _ = writeln!(x, "{i2}<height>{:?}</height>", b.height);
        let _ = writeln!(x, "{i2}<depth>{:?}</depth>", b.depth);
        if b.jump_position {
            match b.interpolation_length {
                Some(l) => {
                    let _ = writeln!(
                        x,
                        "{i2}<jumpPosition interpolationLength=\"{:?}\">1</jumpPosition>",
                        l.seconds_f64()
                    );
                }
                None => {
                    let _ = writeln!(x, "{i2}<jumpPosition>1</jumpPosition>");
                }
            }
        } else {
            let _ = writeln!(x, "{i2}<jumpPosition>0</jumpPosition>");
        }
        if b.headphone_bypass {
            let _ = writeln!(x, "{i2}<headphoneVirtualise bypass=\"1\"/>");
        }
    }
    let _ = writeln!(x, "{ind}  </audioBlockFormat>");
}
