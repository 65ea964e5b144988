//! The ADM data model halo reads and writes (ITU-R BS.2076-2 elements and the BS.2088 `chna`
//! track map), as plain Rust data.

use super::*;

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
    /// Complementary object groups (BS.2076-2 `audioComplementaryObjectIDRef`): the leader
    /// (the default, rendered unless another is chosen) and the alternatives to it.
    pub complementary: Vec<(String, Vec<String>)>,
    /// The BS.2076 version written in `audioFormatExtended` (1 or 2; 0 means 2).
    pub version: u8,
    /// Written by halo (the document declares halo's namespace): its DirectSpeakers packs
    /// are halo's built-in layouts, whatever their IDs.
    pub halo_written: bool,
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
    /// `audioProgrammeReferenceScreen` (`None`: not given, BS.2076's default screen).
    pub reference_screen: Option<crate::scene::mix::ReferenceScreen>,
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
    /// `importance` (0…10; `None`: not given, the highest).
    pub importance: Option<u8>,
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
    pub(super) fn from_label(s: &str) -> Option<TypeDefinition> {
        match s.trim() {
            "0001" | "DirectSpeakers" => Some(TypeDefinition::DirectSpeakers),
            "0002" | "Matrix" => Some(TypeDefinition::Matrix),
            "0003" | "Objects" => Some(TypeDefinition::Objects),
            "0004" | "HOA" => Some(TypeDefinition::Hoa),
            "0005" | "Binaural" => Some(TypeDefinition::Binaural),
            _ => None,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            TypeDefinition::DirectSpeakers => "0001",
            TypeDefinition::Matrix => "0002",
            TypeDefinition::Objects => "0003",
            TypeDefinition::Hoa => "0004",
            TypeDefinition::Binaural => "0005",
        }
    }

    pub(super) fn name(self) -> &'static str {
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
    /// Matrix (BS.2076-2 §5.3.3): the pack a decode or direct matrix renders to
    /// (`outputPackFormatIDRef`).
    pub matrix_output_pack: Option<String>,
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

/// One `coefficient` of a Matrix block (BS.2076-2 §5.4.3.3): the input channel it takes,
/// its linear gain (default 1), and the parts halo does not apply (`phase` in degrees,
/// `delay` in ms, or a `gainVar`/`phaseVar`/`delayVar` parameter).
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixCoefficient {
    pub input_ref: String,
    pub gain: f64,
    pub phase_deg: Option<f64>,
    pub delay_ms: Option<f64>,
    pub variable: bool,
}

/// A coordinate's `bound="min"` and `bound="max"` values (DirectSpeakers).
pub type PolarBound = (Option<f64>, Option<f64>);

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
    /// halo's exact gain in dB (`halo:gainDb`) beside a linear `gain` that has the
    /// object's mute folded in (the Dolby Atmos Master profile form).
    pub halo_gain_db: Option<f64>,
    /// DirectSpeakers: the azimuth and elevation ranges (min, max, degrees) in which the
    /// speaker may be found (`position bound="min"/"max"`), written by the profile.
    pub azimuth_range_deg: Option<(f64, f64)>,
    pub elevation_range_deg: Option<(f64, f64)>,
    /// Objects: the BS.2127 metadata beyond position, gain and extent.
    pub controls: BlockControls,
    /// HOA (BS.2076 §5.4.3.4): the component's `order`, `degree` and `normalization`.
    pub hoa_order: Option<u32>,
    pub hoa_degree: Option<i32>,
    pub hoa_normalization: Option<String>,
    /// Matrix (BS.2076 §5.4.3.3): the channel a decode or direct matrix channel feeds
    /// (`outputChannelFormatIDRef`).
    pub matrix_output_ref: Option<String>,
    /// Matrix: the `coefficient`s of the block's `matrix` element.
    pub matrix: Vec<MatrixCoefficient>,
    /// DirectSpeakers (BS.2076-2 §5.4.3.1): the `bound="min"` and `bound="max"` values of
    /// azimuth, elevation and distance, in that order.
    pub polar_bounds: [PolarBound; 3],
}

/// The BS.2076 object metadata of an Objects block that BS.2127's gain calculation reads
/// beyond position, gain and width/height/depth.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockControls {
    /// `diffuse`, 0…1.
    pub diffuse: f64,
    /// `channelLock`: `Some(maxDistance)` when set.
    pub channel_lock: Option<Option<f64>>,
    /// `objectDivergence` value, 0…1.
    pub divergence: f64,
    /// `objectDivergence azimuthRange` (polar) or `positionRange` (Cartesian).
    pub divergence_range: Option<f64>,
    /// `zoneExclusion` zones.
    pub zones: Vec<crate::scene::mix::ExclusionZone>,
    /// `screenRef`.
    pub screen_ref: bool,
    /// `screenEdgeLock` of the position coordinates.
    pub screen_edge_lock: Vec<crate::scene::mix::ScreenEdge>,
    /// `importance`, 0…10 (`None`: not given, the highest).
    pub importance: Option<u8>,
}

impl Default for BlockControls {
    fn default() -> Self {
        BlockControls {
            diffuse: 0.0,
            channel_lock: None,
            divergence: 0.0,
            divergence_range: None,
            zones: Vec::new(),
            screen_ref: false,
            screen_edge_lock: Vec::new(),
            importance: None,
        }
    }
}

impl BlockFormat {
    pub(super) fn new(id: String) -> BlockFormat {
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
            halo_gain_db: None,
            azimuth_range_deg: None,
            elevation_range_deg: None,
            controls: BlockControls::default(),
            hoa_order: None,
            hoa_degree: None,
            hoa_normalization: None,
            matrix_output_ref: None,
            matrix: Vec::new(),
            polar_bounds: [(None, None); 3],
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
