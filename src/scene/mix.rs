//! The mix as plain data: a [`Scene`] of objects, beds and outputs, every time in sample
//! frames. Sessions (RON) and ADM masters (ITU-R BS.2076) are both read into it; the
//! drivers render it. Object metadata follows the Dolby Atmos / ADM model: position, gain
//! and size per object, keyframed, plus a binaural render mode.

use crate::dsp::ProcessorSettings;
use crate::scene::automation::{Automation, Interpolate, Keyframe};
use crate::scene::geometry::Position;
use crate::scene::layout::Layout;
use serde::Deserialize;
use std::path::PathBuf;

/// Default sample rate, Hz.
pub const DEFAULT_SAMPLE_RATE: u32 = 48000;
/// Default immersive layout folded down by a `Stereo` output.
pub const DEFAULT_FOLD_FROM: &str = "7.1.4";

impl Interpolate for Position {
    #[inline]
    fn interpolate(a: Position, b: Position, t: f64) -> Position {
        a.lerp(b, t)
    }
}

/// A validated session, every time in sample frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Sample rate of every time in the scene, Hz.
    pub sample_rate: u32,
    /// `None`: as long as the longest source.
    pub duration_frames: Option<u64>,
    /// Mono objects, positioned and automated.
    pub objects: Vec<ObjectSpec>,
    /// Channel beds, each fixed to a speaker layout.
    pub beds: Vec<BedSpec>,
    /// What is rendered: speaker layouts, binaural, stereo fold-downs.
    pub outputs: Vec<OutputSpec>,
    /// The session file's path.
    pub origin: PathBuf,
}

impl Scene {
    /// The layouts of the `Speakers` outputs, in output order.
    pub fn speaker_layouts(&self) -> Vec<Layout> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                OutputSpec::Speakers { layout, .. } => Some(layout.clone()),
                _ => None,
            })
            .collect()
    }

    /// The programme's reference screen: the first object's that has one (`None`: the
    /// default screen).
    pub fn reference_screen(&self) -> Option<ReferenceScreen> {
        self.objects
            .iter()
            .find_map(|o| o.controls.reference_screen)
    }

    /// Gives the programme's reference screen to every object it changes (those with
    /// `screen_ref`); `None` leaves them on the default screen.
    pub fn set_reference_screen(&mut self, screen: Option<ReferenceScreen>) {
        for o in &mut self.objects {
            o.controls.reference_screen = if o.controls.uses_screen_ref() {
                screen
            } else {
                None
            };
        }
    }

    /// Mutes every object whose importance (`controls.importance`, ADM's 0…10) is below
    /// `min`, as BS.2127 renderers leave such objects out; returns how many.
    ///
    /// Objects with block importance (`controls.block_importance`) take the gain lane
    /// with their blocks below `min` at gain 0 (BS.2127 / EAR: the block's gain is set to
    /// 0 and interpolates like any block gain); those are not counted.
    pub fn mute_below_importance(&mut self, min: u8) -> usize {
        let mut n = 0;
        for o in &mut self.objects {
            if o.controls.importance < min && !o.mute {
                o.mute = true;
                n += 1;
            }
            if let Some(lane) = o
                .controls
                .block_importance
                .iter()
                .rev()
                .find(|l| l.from <= min)
            {
                o.gain_db = lane.gain_db.clone();
            }
        }
        n
    }

    /// The same scene at another sample rate: every time in it — automation keyframes
    /// and the duration — moved from the session rate to `rate` and rounded to the
    /// nearest frame (`round(frame × rate / sample_rate)`, halves up, exact integer
    /// arithmetic), and `sample_rate` set to `rate`. Values (positions, gains, sizes),
    /// sources, layouts and chains are unchanged: sources are resampled on read and
    /// chain times are in ms, so an engine built for the new rate plays the same mix.
    ///
    /// Keyframes closer together than one frame at the new rate would land on the same
    /// frame; each such one is moved to the frame after its predecessor, so they stay
    /// strictly increasing (an automation's invariant). A duration stays at least one
    /// frame. Retiming to the scene's own rate gives an equal scene.
    pub fn retimed(&self, rate: u32) -> Scene {
        let from = self.sample_rate;
        if rate == from {
            return self.clone();
        }
        let frame = |f: u64| retime_frame(f, from, rate);
        Scene {
            sample_rate: rate,
            duration_frames: self.duration_frames.map(|d| frame(d).max(1)),
            objects: self
                .objects
                .iter()
                .map(|o| ObjectSpec {
                    gain_db: retime_automation(&o.gain_db, frame),
                    position: retime_automation(&o.position, frame),
                    size: retime_automation(&o.size, frame),
                    controls: ObjectControls {
                        extent: o
                            .controls
                            .extent
                            .as_ref()
                            .map(|e| retime_automation(e, frame)),
                        diffuse: retime_automation(&o.controls.diffuse, frame),
                        divergence: retime_automation(&o.controls.divergence, frame),
                        changes: retime_changes(&o.controls.changes, frame),
                        block_importance: o
                            .controls
                            .block_importance
                            .iter()
                            .map(|l| ImportanceGain {
                                from: l.from,
                                gain_db: retime_automation(&l.gain_db, frame),
                            })
                            .collect(),
                        ..o.controls.clone()
                    },
                    ..o.clone()
                })
                .collect(),
            beds: self.beds.clone(),
            outputs: self.outputs.clone(),
            origin: self.origin.clone(),
        }
    }
}

/// `round(frame × to / from)` with halves rounded up, in integers (no float error at any
/// session length).
fn retime_frame(frame: u64, from: u32, to: u32) -> u64 {
    let from = u128::from(from.max(1));
    let scaled = u128::from(frame) * u128::from(to);
    ((2 * scaled + from) / (2 * from)).min(u128::from(u64::MAX)) as u64
}

/// An automation with every keyframe frame mapped by `frame`, kept strictly increasing.
fn retime_automation<T: Interpolate>(
    a: &Automation<T>,
    frame: impl Fn(u64) -> u64,
) -> Automation<T> {
    let mut previous: Option<u64> = None;
    let keys: Vec<Keyframe<T>> = a
        .keyframes()
        .iter()
        .map(|k| {
            let mut f = frame(k.frame);
            if let Some(p) = previous
                && f <= p
            {
                f = p + 1;
            }
            previous = Some(f);
            Keyframe {
                frame: f,
                value: k.value,
                interpolation: k.interpolation,
            }
        })
        .collect();
    // Non-empty (as `a` is) and strictly increasing by construction.
    Automation::new(keys).expect("retimed keyframes are strictly increasing")
}

/// [`retime_automation`] for a switched-controls lane: frames stay strictly increasing
/// and above 0, each `ramp_from` between the previous change's frame and its own.
fn retime_changes(changes: &[ControlChange], frame: impl Fn(u64) -> u64) -> Vec<ControlChange> {
    let mut previous = 0u64;
    changes
        .iter()
        .map(|c| {
            let f = frame(c.frame).max(previous + 1);
            let ramp_from = frame(c.ramp_from).clamp(previous, f);
            previous = f;
            ControlChange {
                ramp_from,
                frame: f,
                set: c.set.clone(),
            }
        })
        .collect()
}

/// One mono object (an ADM `audioObject` of type Objects), with its keyframed metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    /// The object's name, unique in the scene.
    pub name: String,
    /// Where its mono signal comes from.
    pub source: SourceSpec,
    /// Gain in dB, keyframed.
    pub gain_db: Automation<f64>,
    /// Whether the object is left out of every output.
    pub mute: bool,
    /// Position in the room, keyframed.
    pub position: Automation<Position>,
    /// 0 = a point … 1 = everywhere.
    pub size: Automation<f64>,
    /// Binaural render mode on headphone outputs.
    pub binaural: BinauralMode,
    /// The rest of the ITU-R BS.2127 object metadata (extent, diffuse, divergence, snap,
    /// zones, screen, importance, gain interpolation).
    pub controls: ObjectControls,
}

impl ObjectSpec {
    /// Whether gain, position and size never change.
    pub fn is_static(&self) -> bool {
        self.gain_db.is_constant()
            && self.position.is_constant()
            && self.size.is_constant()
            && self.controls.is_static()
    }
}

/// An object's extent as ITU-R BS.2127 takes it: polar objects width and height in
/// degrees and depth as a distance range (0…1); Cartesian objects the size along x
/// (width), z (height) and y (depth), each 0…2 (the room is 2 wide).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extent {
    /// Polar: degrees (0…360); Cartesian: size along x (0…2).
    pub width: f64,
    /// Polar: degrees (0…360); Cartesian: size along z (0…2).
    pub height: f64,
    /// Polar: distance range (0…1); Cartesian: size along y (0…2).
    pub depth: f64,
}

impl Interpolate for Extent {
    fn interpolate(a: Extent, b: Extent, t: f64) -> Extent {
        let l = |x: f64, y: f64| x + (y - x) * t;
        Extent {
            width: l(a.width, b.width),
            height: l(a.height, b.height),
            depth: l(a.depth, b.depth),
        }
    }
}

/// A zone whose speakers an object must not use (ADM `zoneExclusion`, BS.2127 §7.3.12).
#[derive(Debug, Clone, PartialEq)]
pub enum ExclusionZone {
    /// Speakers whose allocentric position is inside the box (−1…1 on each axis).
    Cartesian {
        /// Left edge (x, −1 left … 1 right).
        min_x: f64,
        /// Right edge.
        max_x: f64,
        /// Back edge (y, −1 back … 1 front).
        min_y: f64,
        /// Front edge.
        max_y: f64,
        /// Bottom edge (z, −1 … 1 up).
        min_z: f64,
        /// Top edge.
        max_z: f64,
    },
    /// Speakers whose nominal direction is inside the range (azimuth from `min`
    /// anticlockwise to `max`, degrees).
    Polar {
        /// Where the range starts (degrees, positive left).
        min_azimuth_deg: f64,
        /// Where the range ends, anticlockwise from `min_azimuth_deg`.
        max_azimuth_deg: f64,
        /// Lowest elevation, degrees.
        min_elevation_deg: f64,
        /// Highest elevation, degrees.
        max_elevation_deg: f64,
    },
    /// One speaker by its BS.2051 name (`M+110`) or short name (`Ls`): halo's shorthand
    /// for a polar zone around that speaker's nominal direction. Names not in the
    /// rendered layout exclude nothing.
    Speaker(String),
}

/// Screen edge an object is locked to (ADM `screenEdgeLock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ScreenEdge {
    /// The screen's left edge (azimuth or X).
    Left,
    /// The right edge (azimuth or X).
    Right,
    /// The top edge (elevation or Z).
    Top,
    /// The bottom edge (elevation or Z).
    Bottom,
}

/// `channelLock` (halo: `snap`): the object plays from the nearest speaker, if one is
/// within `max_distance` (`None`: any distance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// Largest distance to the speaker (Cartesian units, the room is 2 wide).
    pub max_distance: Option<f64>,
}

/// The programme's reference screen (ADM `audioProgrammeReferenceScreen`, BS.2076-2): the
/// screen the mix was made for, which `screen_ref` objects are scaled from (to the
/// reproduction screen, BS.2127's default screen in halo).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReferenceScreen {
    /// Polar form: the centre's direction (degrees, azimuth positive left) and distance,
    /// and the width as an angle (degrees).
    Polar {
        /// Width / height, above 0.
        aspect_ratio: f64,
        /// `screenCentrePosition` azimuth, −180…180°.
        azimuth_deg: f64,
        /// `screenCentrePosition` elevation, −90…90°.
        elevation_deg: f64,
        /// `screenCentrePosition` distance, above 0 (it does not change the scaling).
        distance: f64,
        /// `screenWidth` azimuth: the angle the screen spans, above 0 and below 180°.
        width_deg: f64,
    },
    /// Cartesian form: the centre in room coordinates and the width along x.
    Cartesian {
        /// Width / height, above 0.
        aspect_ratio: f64,
        /// `screenCentrePosition` X, −1…1.
        x: f64,
        /// `screenCentrePosition` Y, −1…1.
        y: f64,
        /// `screenCentrePosition` Z, −1…1.
        z: f64,
        /// `screenWidth` X, above 0 and at most 2.
        width: f64,
    },
}

impl ReferenceScreen {
    /// BS.2076's default screen (58° wide, 1.78:1, straight ahead at distance 1), the one
    /// used where a programme gives none.
    pub const DEFAULT: ReferenceScreen = ReferenceScreen::Polar {
        aspect_ratio: 1.78,
        azimuth_deg: 0.0,
        elevation_deg: 0.0,
        distance: 1.0,
        width_deg: 58.0,
    };
}

/// Mutes blocks by their ADM `importance` (BS.2127 / EAR: a block whose importance is
/// below the threshold has its gain set to 0): `gain_db` is the object's gain lane with
/// every block of importance below `from` at gain 0, used instead of the object's own
/// when `--min-importance` is at least `from` (the entry with the largest such `from`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportanceGain {
    /// The smallest `--min-importance` (1…10) this lane applies from.
    pub from: u8,
    /// The gain lane, dB, keyframed like `ObjectSpec::gain_db`.
    pub gain_db: Automation<f64>,
}

/// The controls BS.2127 reads from each block and never interpolates: `channelLock`,
/// `zoneExclusion`, `screenRef`, `screenEdgeLock` and the `objectDivergence` range. A
/// change of them moves the *gains* (of an object with `interpolate_gains`) from those
/// computed with the old set to those computed with the new one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SwitchedControls {
    /// Polar: `azimuthRange` (degrees, default 45); Cartesian: `positionRange` (default 0).
    pub divergence_range: Option<f64>,
    /// `channelLock`.
    pub snap: Option<Snap>,
    /// `zoneExclusion`.
    pub zones: Vec<ExclusionZone>,
    /// `screenRef`.
    pub screen_ref: bool,
    /// `screenEdgeLock`, horizontal and vertical.
    pub screen_edge_lock: Vec<ScreenEdge>,
}

/// One step of an object's [`SwitchedControls`] lane: the set `set` is in force from
/// `frame` on (until the next change). With `interpolate_gains` (ADM objects) the gains
/// move linearly from those of the set before at `ramp_from` to those of `set` at
/// `frame`, as BS.2127 interpolates a block's gains over its interpolation length
/// (`ramp_from == frame`: a jump). Without `interpolate_gains` the set switches at
/// `frame` (the engine's ramp to the next gain point smooths it).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlChange {
    /// Where the gains start moving towards this set's (≤ `frame`, ≥ the previous
    /// change's `frame`).
    pub ramp_from: u64,
    /// The first frame this set is in force at.
    pub frame: u64,
    /// The controls in force from `frame`.
    pub set: SwitchedControls,
}

/// The ITU-R BS.2127 object metadata beyond position, gain and size; the default is a
/// plain point source.
///
/// The per-block controls that do not interpolate ([`SwitchedControls`]) are a step lane:
/// the plain fields (`divergence_range`, `snap`, `zones`, `screen_ref`,
/// `screen_edge_lock`) hold from the start, and `changes` (empty for almost every object:
/// nothing to look up, nothing stored) switch to other sets at later frames, as an ADM
/// object's blocks may (BS.2127 renders each block with its own values).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectControls {
    /// Width, height, depth, keyframed; `None`: from `size` (Cartesian: width = height
    /// = depth = size; polar: width = height = 360° × size).
    pub extent: Option<Automation<Extent>>,
    /// 0 (direct) … 1 (all diffuse), keyframed.
    pub diffuse: Automation<f64>,
    /// `objectDivergence` value 0…1, keyframed.
    pub divergence: Automation<f64>,
    /// Polar: `azimuthRange` (degrees, default 45); Cartesian: `positionRange` (default 0).
    pub divergence_range: Option<f64>,
    /// `channelLock`.
    pub snap: Option<Snap>,
    /// `zoneExclusion`.
    pub zones: Vec<ExclusionZone>,
    /// `screenRef`: scaled from the reference screen to the reproduction screen (BS.2127's
    /// default screen in halo).
    pub screen_ref: bool,
    /// The programme's reference screen (`None`: the default screen); set on the
    /// `screen_ref` objects, the only ones it changes.
    pub reference_screen: Option<ReferenceScreen>,
    /// `screenEdgeLock`, horizontal and vertical.
    pub screen_edge_lock: Vec<ScreenEdge>,
    /// Later sets of the fields above, `frame` strictly increasing and above 0 (empty:
    /// they never change).
    pub changes: Vec<ControlChange>,
    /// `importance` 0…10 (10 = most important); `--min-importance` leaves out less.
    pub importance: u8,
    /// Block importance (ADM `audioBlockFormat` `importance`): the gain lanes with the
    /// less important blocks muted, `from` strictly increasing (empty: every block at
    /// the object's importance).
    pub block_importance: Vec<ImportanceGain>,
    /// BS.2127 interpolation: gains (not positions) move linearly between keyframes.
    /// ADM masters from other tools; halo sessions interpolate positions.
    pub interpolate_gains: bool,
}

impl Default for ObjectControls {
    fn default() -> Self {
        ObjectControls {
            extent: None,
            diffuse: Automation::constant(0.0),
            divergence: Automation::constant(0.0),
            divergence_range: None,
            snap: None,
            zones: Vec::new(),
            screen_ref: false,
            reference_screen: None,
            screen_edge_lock: Vec::new(),
            changes: Vec::new(),
            importance: 10,
            block_importance: Vec::new(),
            interpolate_gains: false,
        }
    }
}

impl ObjectControls {
    /// Whether no keyframed control changes.
    pub fn is_static(&self) -> bool {
        self.extent.as_ref().is_none_or(Automation::is_constant)
            && self.diffuse.is_constant()
            && self.divergence.is_constant()
            && self.changes.is_empty()
    }

    /// The switched controls in force from the start (the plain fields).
    pub fn first_set(&self) -> SwitchedControls {
        SwitchedControls {
            divergence_range: self.divergence_range,
            snap: self.snap,
            zones: self.zones.clone(),
            screen_ref: self.screen_ref,
            screen_edge_lock: self.screen_edge_lock.clone(),
        }
    }

    /// These controls with `set` as the plain fields and no changes.
    pub fn with_set(&self, set: &SwitchedControls) -> ObjectControls {
        ObjectControls {
            divergence_range: set.divergence_range,
            snap: set.snap,
            zones: set.zones.clone(),
            screen_ref: set.screen_ref,
            screen_edge_lock: set.screen_edge_lock.clone(),
            changes: Vec::new(),
            ..self.clone()
        }
    }

    /// Which set is in force at `frame`: 0 the plain fields, `k` `changes[k − 1]`.
    pub fn set_index_at(&self, frame: u64) -> usize {
        self.changes.partition_point(|c| c.frame <= frame)
    }

    /// Whether the gains ramp towards a change's set at `frame` (it lies in some change's
    /// `[ramp_from, frame)`; only the first change after `frame` can hold it).
    pub fn ramping_at(&self, frame: u64) -> bool {
        let k = self.set_index_at(frame);
        self.changes.get(k).is_some_and(|c| c.ramp_from <= frame)
    }

    /// Whether any of the sets has `screen_ref`.
    pub fn uses_screen_ref(&self) -> bool {
        self.screen_ref || self.changes.iter().any(|c| c.set.screen_ref)
    }

    /// Whether the object has any diffuse part.
    pub fn has_diffuse(&self) -> bool {
        self.diffuse.keyframes().iter().any(|k| k.value > 0.0)
    }

    /// The keyframe frames of the keyframed controls (with repeats; callers sort and
    /// deduplicate).
    pub fn keyframe_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.extent
            .iter()
            .flat_map(|e| e.keyframes().iter().map(|k| k.frame))
            .chain(self.diffuse.keyframes().iter().map(|k| k.frame))
            .chain(self.divergence.keyframes().iter().map(|k| k.frame))
            .chain(self.changes.iter().flat_map(|c| {
                // A jump also keys the frame before it (the old set's gains there), so
                // it is exact to the sample, as a jump of an ADM position is.
                let before = if c.ramp_from == c.frame {
                    c.frame.saturating_sub(1)
                } else {
                    c.ramp_from
                };
                [before, c.ramp_from, c.frame]
            }))
    }
}

/// A channel of an audio file that feeds an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// Resolved against the session file's folder.
    pub path: PathBuf,
    /// 0-based channel inside the file (1-based in the session file); `None`: the file
    /// must be mono.
    pub channel: Option<usize>,
}

/// Binaural render mode of an object, as in Dolby Atmos: `Off` bypasses the HRTF (plain
/// stereo panning); `Near`, `Mid`, `Far` choose the virtual room distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum BinauralMode {
    /// No HRTF: plain stereo panning.
    Off,
    /// Near virtual room distance.
    Near,
    /// Mid virtual room distance (the default).
    #[default]
    Mid,
    /// Far virtual room distance.
    Far,
}

/// The normalisation of HOA channels (BS.2076 `normalization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoaNormalization {
    N3D,
    SN3D,
    /// Furse–Malham (defined up to order 3).
    FuMa,
}

impl HoaNormalization {
    /// From the ADM text (`N3D`, `SN3D`, `FuMa`; case-insensitive).
    pub fn parse(s: &str) -> Option<HoaNormalization> {
        match s.trim().to_ascii_uppercase().as_str() {
            "N3D" => Some(HoaNormalization::N3D),
            "SN3D" => Some(HoaNormalization::SN3D),
            "FUMA" => Some(HoaNormalization::FuMa),
            _ => None,
        }
    }
}

/// An HOA signal's channels: (order n, degree m) of each, in the file's channel order.
#[derive(Debug, Clone, PartialEq)]
pub struct HoaFormat {
    pub channels: Vec<(u32, i32)>,
    pub normalization: HoaNormalization,
}

/// A channel bed: a multichannel file played on a fixed speaker layout (ADM DirectSpeakers).
#[derive(Debug, Clone, PartialEq)]
pub struct BedSpec {
    /// The bed's name, unique in the scene.
    pub name: String,
    /// Resolved against the session file's folder.
    pub source: PathBuf,
    /// The layout whose speakers the bed's channels feed (ITU-R BS.2051).
    pub layout: Layout,
    /// Gain in dB, constant.
    pub gain_db: f64,
    /// Whether the bed is left out of every output.
    pub mute: bool,
    /// The file's channels (0-based) that feed the layout's channels, one per layout
    /// channel in layout order (`channels: [1, 2, …]` in the session file, counted from 1).
    /// `None`: the file has exactly the layout's channels, in order (as before). Beds of
    /// ADM files are a few channels of one big file.
    pub channels: Option<Vec<usize>>,
    /// Binaural render mode of each channel, in layout order (`None`: Mid for all; the
    /// LFE is never rendered binaurally).
    pub binaural: Option<Vec<BinauralMode>>,
    /// An HOA signal (ADM HOA, BS.2127 §9) instead of speaker feeds: its channels' orders,
    /// degrees and normalisation; the layout then only counts the channels. Decoded to
    /// each output by the BS.2127 AllRAD decoder.
    pub hoa: Option<HoaFormat>,
    /// The frames `[start, end)` the bed sounds in (ADM audioObject start and duration,
    /// BS.2127); `None`: the whole time.
    pub active_frames: Option<(u64, u64)>,
    /// The position bounds of each channel, in layout order (ADM DirectSpeakers, BS.2127
    /// §8): a channel whose name no output speaker has goes to the nearest speaker inside
    /// them. Empty, or `None` for a channel: no bounds.
    pub speaker_bounds: Vec<Option<SpeakerBounds>>,
    /// A linear gain for each channel, in layout order (an ADM Matrix pack's coefficients,
    /// which may be negative); missing channels have gain 1.
    pub channel_gains: Vec<f64>,
}

/// A DirectSpeakers channel's position with its `bound="min"`/`bound="max"` ranges (ITU-R
/// BS.2076-2 §5.4.3.1; a coordinate without bounds has the range of its value alone).
/// Azimuth positive to the left, degrees; distance normalised (1 = the speakers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerBounds {
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
    pub distance: f64,
    pub azimuth_range_deg: (f64, f64),
    pub elevation_range_deg: (f64, f64),
    pub distance_range: (f64, f64),
}

/// One rendered output, with its master chain and loudness target.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputSpec {
    /// Loudspeaker feeds for a layout (ITU-R BS.2051), panned by BS.2127.
    Speakers {
        /// The speaker layout rendered to.
        layout: Layout,
        /// Master chain, run in order on every channel.
        chain: Vec<ProcessorSettings>,
        /// Loudness target the output is checked against; `None`: none.
        target: Option<TargetSpec>,
    },
    /// Two-channel headphone render by HRTF convolution.
    Binaural {
        /// `None`: the built-in HRTF set.
        hrtf: Option<PathBuf>,
        /// `None`: the LFE is left out.
        lfe_db: Option<f64>,
        /// Master chain, run in order on both channels.
        chain: Vec<ProcessorSettings>,
        /// Loudness target the output is checked against; `None`: none.
        target: Option<TargetSpec>,
    },
    /// Two-channel fold-down (ITU-R BS.775) of an immersive render.
    Stereo {
        /// The immersive layout that is folded down.
        from: Layout,
        /// Fold-down matrix and coefficients.
        fold: FoldSpec,
        /// Master chain, run in order on both channels.
        chain: Vec<ProcessorSettings>,
        /// Loudness target the output is checked against; `None`: none.
        target: Option<TargetSpec>,
    },
}

impl OutputSpec {
    /// The output's master chain settings, in processing order.
    pub fn chain(&self) -> &[ProcessorSettings] {
        match self {
            OutputSpec::Speakers { chain, .. }
            | OutputSpec::Binaural { chain, .. }
            | OutputSpec::Stereo { chain, .. } => chain,
        }
    }

    /// The output's loudness target, if any.
    pub fn target(&self) -> Option<&TargetSpec> {
        match self {
            OutputSpec::Speakers { target, .. }
            | OutputSpec::Binaural { target, .. }
            | OutputSpec::Stereo { target, .. } => target.as_ref(),
        }
    }
}

/// A loudness delivery target: a named preset or explicit limits.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// A named delivery target; the loudness module owns (and checks) the list.
    Preset(String),
    /// Explicit limits; each `None` is not checked.
    Custom {
        /// Programme loudness aimed at, LUFS (BS.1770-4 integrated).
        integrated_lufs: Option<f64>,
        /// Allowed distance from `integrated_lufs`, LU.
        tolerance_lu: Option<f64>,
        /// Upper limit for the integrated loudness, LUFS.
        max_integrated_lufs: Option<f64>,
        /// Upper limit for the true peak, dBTP.
        true_peak_dbtp: Option<f64>,
    },
}

/// Stereo fold-down matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum FoldMatrix {
    /// Left-only/right-only (ITU-R BS.775).
    #[default]
    LoRo,
    /// Left-total/right-total (matrix-surround compatible).
    LtRt,
}

/// Whether a fold-down's trims are the renderer's own or set by the mixer (Dolby's trim
/// mode, carried in the `dbmd` chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TrimMode {
    /// halo's own figures (−3 dB each), which stand for the renderer's automatic trims.
    #[default]
    Automatic,
    /// The mixer's figures.
    Manual,
}

/// How an immersive layout is folded down to two channels (ITU-R BS.775 coefficients).
#[derive(Debug, Clone, PartialEq)]
pub struct FoldSpec {
    /// Automatic (the default figures) or manual trims.
    pub trim_mode: TrimMode,
    /// Lo/Ro or Lt/Rt.
    pub matrix: FoldMatrix,
    /// Gain of C (M+000) into both stereo channels, dB.
    pub center_db: f64,
    /// Gain of the 5.1 surrounds (Ls/Rs) into their stereo side (Lo/Ro only), dB.
    pub surround_db: f64,
    /// Gain of each surround into Ls/Rs when a side has several (7.x side + rear), dB.
    pub rear_db: f64,
    /// Gain of each height channel into the ear-level speaker it folds into, dB.
    pub height_db: f64,
    /// `None`: the LFE is dropped.
    pub lfe_db: Option<f64>,
}

impl Default for FoldSpec {
    fn default() -> Self {
        FoldSpec {
            trim_mode: TrimMode::Automatic,
            matrix: FoldMatrix::LoRo,
            center_db: -3.0,
            surround_db: -3.0,
            rear_db: -3.0,
            height_db: -3.0,
            lfe_db: None,
        }
    }
}
