//! The Dolby audio metadata chunk `dbmd` of BWF files (EBU Tech 3285 supplement 6): read
//! and write its Dolby Atmos segments — the writing tool, the 5.1 → 2.0 downmix, the warp
//! mode (the 5.1 and 5.1.x downmix), the trims of the nine fold-down layouts and the
//! binaural render mode of every track.
//!
//! # Layout
//!
//! A little-endian `u32` version (`0x01000006` in current masters; major version above 1
//! is not supported), then metadata segments: an id byte (0 ends the list), a `u16`
//! payload size, the payload and a checksum byte (the two's complement of the sum of the
//! size bytes and the payload). Segment 9 (Dolby Atmos, 248 bytes) and segment 10 (Dolby
//! Atmos supplemental: sync word `0xF8726FBD`, the object count, nine trim configurations,
//! per-object trim bypass and headphone bytes) are decoded field by field; every other
//! segment is kept as raw bytes. Bit fields are most significant bit first. The field
//! positions follow the public parsers of MediaInfo and fq, which the tests check against
//! (`tests/dbmd.rs`, MediaInfo's figures for the public sample files).
//!
//! The "objects" of segment 10 are the file's tracks in `chna` order (bed channels
//! included), so a bed's channels each have their own mode.

use thiserror::Error;

/// Errors reading a `dbmd` chunk: the byte offset in the chunk and what was expected.
#[derive(Debug, Error, PartialEq)]
pub enum DbmdError {
    #[error("dbmd chunk: {have} bytes; a chunk needs at least the 4-byte version")]
    TooShort { have: usize },
    #[error(
        "dbmd chunk: version {major}.{minor}.{patch}.{build} is not supported; allowed: major version 0 or 1"
    )]
    Version {
        major: u8,
        minor: u8,
        patch: u8,
        build: u8,
    },
    #[error(
        "dbmd chunk, byte {offset}: segment {id} needs {needed} bytes (header, payload and checksum), {have} remain"
    )]
    Truncated {
        offset: usize,
        id: u8,
        needed: usize,
        have: usize,
    },
    #[error(
        "dbmd chunk, byte {offset}: segment {id} checksum is 0x{found:02x}, its bytes sum to 0x{expected:02x}"
    )]
    Checksum {
        offset: usize,
        id: u8,
        found: u8,
        expected: u8,
    },
    #[error("dbmd chunk, byte {offset}: segment {id} is {size} bytes; allowed: {allowed}")]
    SegmentSize {
        offset: usize,
        id: u8,
        size: usize,
        allowed: &'static str,
    },
    #[error(
        "dbmd chunk, byte {offset}: Dolby Atmos supplemental sync word is 0x{found:08x}; expected 0xf8726fbd"
    )]
    Sync { offset: usize, found: u32 },
    #[error("dbmd chunk, byte {offset}: segment {id} appears twice; allowed once")]
    Duplicate { offset: usize, id: u8 },
    #[error("dbmd chunk: no end marker (segment id 0) after byte {offset}")]
    NoEnd { offset: usize },
}

/// Binaural render mode of one track (Dolby Atmos headphone metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinauralRenderMode {
    Off,
    Near,
    Far,
    Mid,
    /// Not indicated: renderers use Mid.
    NotIndicated,
    /// A code outside 0 … 4 (kept as found).
    Reserved(u8),
}

impl BinauralRenderMode {
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Off,
            1 => Self::Near,
            2 => Self::Far,
            3 => Self::Mid,
            4 => Self::NotIndicated,
            c => Self::Reserved(c),
        }
    }

    /// Code of the mode in the chunk (0..=7).
    pub fn code(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Near => 1,
            Self::Far => 2,
            Self::Mid => 3,
            Self::NotIndicated => 4,
            Self::Reserved(c) => c & 7,
        }
    }

    /// MediaInfo's name of the mode.
    /// Test support (halo's tests compare it with MediaInfo).
    #[cfg(feature = "internals")]
    pub fn name(self) -> String {
        match self {
            Self::Off => "Off".into(),
            Self::Near => "Near".into(),
            Self::Far => "Far".into(),
            Self::Mid => "Mid".into(),
            Self::NotIndicated => "Not Indicated (Mid)".into(),
            Self::Reserved(c) => c.to_string(),
        }
    }
}

/// The 5.1 and 5.1.x downmix ("warp mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarpMode {
    /// Direct render (`normal`).
    DirectRender,
    /// Direct render with room balance (`warping`).
    DirectRenderRoomBalance,
    /// Through 7.1, surrounds by the Pro Logic IIx matrix.
    ProLogicIIx,
    /// Through 7.1, side and rear surrounds summed (standard Lo/Ro).
    LoRo,
    NotIndicated,
    Reserved(u8),
}

impl WarpMode {
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Self::DirectRender,
            1 => Self::DirectRenderRoomBalance,
            2 => Self::ProLogicIIx,
            3 => Self::LoRo,
            4 => Self::NotIndicated,
            c => Self::Reserved(c),
        }
    }

    /// Code of the mode in the chunk (0..=7).
    pub fn code(self) -> u8 {
        match self {
            Self::DirectRender => 0,
            Self::DirectRenderRoomBalance => 1,
            Self::ProLogicIIx => 2,
            Self::LoRo => 3,
            Self::NotIndicated => 4,
            Self::Reserved(c) => c & 7,
        }
    }

    /// MediaInfo's name (None for not indicated, which it does not print).
    pub fn name(self) -> Option<String> {
        match self {
            Self::DirectRender => Some("Direct Render".into()),
            Self::DirectRenderRoomBalance => Some("Direct Render with room balance".into()),
            Self::ProLogicIIx => Some("Dolby Pro Logic IIx".into()),
            Self::LoRo => Some("Standard (Lo/Ro)".into()),
            Self::NotIndicated => None,
            Self::Reserved(c) => Some(c.to_string()),
        }
    }
}

/// The 5.1 → 2.0 downmix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StereoDownmix {
    NotIndicated,
    LoRo,
    LtRtProLogic,
    LtRtProLogicII,
    DirectStereoRender,
    Reserved(u8),
}

impl StereoDownmix {
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Self::NotIndicated,
            1 => Self::LoRo,
            2 => Self::LtRtProLogic,
            3 => Self::LtRtProLogicII,
            4 => Self::DirectStereoRender,
            c => Self::Reserved(c),
        }
    }

    /// Code of the downmix in the chunk (0..=7).
    pub fn code(self) -> u8 {
        match self {
            Self::NotIndicated => 0,
            Self::LoRo => 1,
            Self::LtRtProLogic => 2,
            Self::LtRtProLogicII => 3,
            Self::DirectStereoRender => 4,
            Self::Reserved(c) => c & 7,
        }
    }
}

/// The trim configurations' layouts, in segment order.
pub const TRIM_LAYOUTS: [&str; 9] = [
    "2.0", "5.1", "7.1", "2.1.2", "5.1.2", "7.1.2", "2.1.4", "5.1.4", "7.1.4",
];

/// Trims of one fold-down layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trim {
    /// Automatic trims (the renderer's own); the figures below are then unused.
    pub automatic: bool,
    pub center_db: f32,
    pub surround_db: f32,
    pub height_db: f32,
    /// Front/back balance of the overhead/floor and listener planes, −1 … 1.
    pub balance_overhead_floor: f32,
    pub balance_listener: f32,
}

impl Trim {
    pub const AUTOMATIC: Trim = Trim {
        automatic: true,
        center_db: 0.0,
        surround_db: 0.0,
        height_db: 0.0,
        balance_overhead_floor: 0.0,
        balance_listener: 0.0,
    };
}

/// The Dolby Atmos segment (id 9).
#[derive(Debug, Clone, PartialEq)]
pub struct AtmosSegment {
    /// The writing tool and its version (major, minor, micro).
    pub tool: String,
    pub tool_version: [u8; 3],
    /// Frame rate code (0: none, 1: 23.976, 2: 24, 3: 25, 4: 29.97 DF, 5: 29.97, 6: 30).
    pub frame_rate_code: u8,
    pub stereo_downmix: StereoDownmix,
    /// The 90° phase shift of the surrounds in the 5.1 → 2.0 downmix (None: a code
    /// above 1, not indicated).
    pub phase_shift_90: Option<bool>,
    pub warp_mode: WarpMode,
    pub bed_distribution: u8,
    /// The whole payload as read (the writer starts from it to keep unknown bytes).
    raw: Vec<u8>,
}

/// The Dolby Atmos supplemental segment (id 10).
#[derive(Debug, Clone, PartialEq)]
pub struct SupplementalSegment {
    pub trims: [Trim; 9],
    /// Per track: trim bypass code (0: trims applied, 1: ignored, 2: not indicated).
    pub trim_bypass: Vec<u8>,
    /// Per track: head-tracking mode code and binaural render mode.
    pub head_track_mode: Vec<u8>,
    pub binaural: Vec<BinauralRenderMode>,
}

/// A decoded `dbmd` chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Dbmd {
    pub version: u32,
    pub atmos: Option<AtmosSegment>,
    pub supplemental: Option<SupplementalSegment>,
    /// Other segments, (id, payload), in chunk order.
    pub other: Vec<(u8, Vec<u8>)>,
}

const ATMOS_ID: u8 = 9;
const SUPPLEMENTAL_ID: u8 = 10;
/// Size of the Atmos segment written, in bytes.
const ATMOS_SIZE: usize = 248;
const SYNC: u32 = 0xF872_6FBD;
/// The largest `dbmd` chunk halo reads (real chunks are a few hundred bytes).
pub const MAX_DBMD_BYTES: u64 = 1 << 20;
/// The version halo writes.
pub const VERSION: u32 = 0x0100_0006;

fn checksum(size: u16, payload: &[u8]) -> u8 {
    let sum = payload
        .iter()
        .fold((size & 0xff) as u8 + (size >> 8) as u8, |a, &b| {
            a.wrapping_add(b)
        });
    sum.wrapping_neg()
}

impl Dbmd {
    /// Parses a `dbmd` chunk's payload.
    pub fn parse(bytes: &[u8]) -> Result<Dbmd, DbmdError> {
        if bytes.len() < 4 {
            return Err(DbmdError::TooShort { have: bytes.len() });
        }
        let version = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if version >> 24 > 1 {
            let [build, patch, minor, major] = version.to_le_bytes();
            return Err(DbmdError::Version {
                major,
                minor,
                patch,
                build,
            });
        }
        let mut out = Dbmd {
            version,
            atmos: None,
            supplemental: None,
            other: Vec::new(),
        };
        let mut pos = 4;
        loop {
            let Some(&id) = bytes.get(pos) else {
                return Err(DbmdError::NoEnd { offset: pos });
            };
            if id == 0 {
                return Ok(out);
            }
            let have = bytes.len() - pos;
            if have < 4 {
                return Err(DbmdError::Truncated {
                    offset: pos,
                    id,
                    needed: 4,
                    have,
                });
            }
            let size = u16::from_le_bytes([bytes[pos + 1], bytes[pos + 2]]);
            let needed = 4 + size as usize;
            if have < needed {
                return Err(DbmdError::Truncated {
                    offset: pos,
                    id,
                    needed,
                    have,
                });
            }
            let payload = &bytes[pos + 3..pos + 3 + size as usize];
            let found = bytes[pos + 3 + size as usize];
            let expected = checksum(size, payload);
            if found != expected {
                return Err(DbmdError::Checksum {
                    offset: pos,
                    id,
                    found,
                    expected,
                });
            }
            match id {
                ATMOS_ID => {
                    if out.atmos.is_some() {
                        return Err(DbmdError::Duplicate { offset: pos, id });
                    }
                    out.atmos = Some(parse_atmos(payload, pos)?);
                }
                SUPPLEMENTAL_ID => {
                    if out.supplemental.is_some() {
                        return Err(DbmdError::Duplicate { offset: pos, id });
                    }
                    out.supplemental = Some(parse_supplemental(payload, pos)?);
                }
                _ => out.other.push((id, payload.to_vec())),
            }
            pos += needed;
        }
    }

    /// The chunk's payload bytes (version, segments, end marker).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.version.to_le_bytes().to_vec();
        let mut push = |id: u8, payload: &[u8]| {
            let size = payload.len().min(u16::MAX as usize) as u16;
            let payload = &payload[..size as usize];
            out.push(id);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(payload);
            out.push(checksum(size, payload));
        };
        for (id, payload) in &self.other {
            push(*id, payload);
        }
        if let Some(a) = &self.atmos {
            push(ATMOS_ID, &write_atmos(a));
        }
        if let Some(s) = &self.supplemental {
            push(SUPPLEMENTAL_ID, &write_supplemental(s));
        }
        out.push(0);
        out
    }
}

impl AtmosSegment {
    /// A segment written by `tool` (version `tool_version`) with the given downmixes.
    pub fn new(
        tool: &str,
        tool_version: [u8; 3],
        stereo_downmix: StereoDownmix,
        warp_mode: WarpMode,
    ) -> AtmosSegment {
        AtmosSegment {
            tool: tool.chars().take(63).collect(),
            tool_version,
            frame_rate_code: 0,
            stereo_downmix,
            phase_shift_90: Some(false),
            warp_mode,
            bed_distribution: 0,
            raw: vec![0; ATMOS_SIZE],
        }
    }
}

fn parse_atmos(p: &[u8], offset: usize) -> Result<AtmosSegment, DbmdError> {
    if p.len() < 168 {
        return Err(DbmdError::SegmentSize {
            offset,
            id: ATMOS_ID,
            size: p.len(),
            allowed: "at least 168 bytes (248 in current masters)",
        });
    }
    let tool_bytes = &p[32..96];
    let end = tool_bytes.iter().position(|&b| b == 0).unwrap_or(64);
    let tool = String::from_utf8_lossy(&tool_bytes[..end]).into_owned();
    let phase = p[139] & 3;
    Ok(AtmosSegment {
        tool,
        tool_version: [p[96], p[97], p[98]],
        frame_rate_code: p[111] & 0x0f,
        stereo_downmix: StereoDownmix::from_code((p[139] >> 4) & 7),
        phase_shift_90: (phase < 2).then_some(phase == 1),
        warp_mode: WarpMode::from_code(p[152] & 7),
        bed_distribution: p[152] >> 6,
        raw: p.to_vec(),
    })
}

/// Atmos segment payload (raw bytes with the known fields written over).
fn write_atmos(a: &AtmosSegment) -> Vec<u8> {
    let mut p = a.raw.clone();
    if p.len() < ATMOS_SIZE {
        p.resize(ATMOS_SIZE, 0);
    }
    let preamble = b"Created using Dolby equipment";
    if p[..32].iter().all(|&b| b == 0) {
        p[..preamble.len()].copy_from_slice(preamble);
    }
    p[32..96].fill(0);
    let tool = a.tool.as_bytes();
    let n = tool.len().min(63);
    p[32..32 + n].copy_from_slice(&tool[..n]);
    p[96..99].copy_from_slice(&a.tool_version);
    p[111] = (p[111] & 0xf0) | (a.frame_rate_code & 0x0f);
    let phase = match a.phase_shift_90 {
        Some(true) => 1,
        Some(false) => 0,
        None => 3,
    };
    p[139] = (p[139] & 0x8c) | (a.stereo_downmix.code() << 4) | phase;
    p[152] = (a.bed_distribution & 3) << 6 | (p[152] & 0x38) | a.warp_mode.code();
    p
}

fn parse_supplemental(p: &[u8], offset: usize) -> Result<SupplementalSegment, DbmdError> {
    let short = |allowed| DbmdError::SegmentSize {
        offset,
        id: SUPPLEMENTAL_ID,
        size: p.len(),
        allowed,
    };
    if p.len() < 7 {
        return Err(short(
            "at least 7 bytes (sync word, object count, reserved)",
        ));
    }
    let sync = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    if sync != SYNC {
        return Err(DbmdError::Sync {
            offset: offset + 3,
            found: sync,
        });
    }
    let count = u16::from_le_bytes([p[4], p[5]]) as usize;
    if p.len() < 7 + 9 * 15 + 2 * count {
        return Err(short(
            "7 + 9 × 15 + 2 × object count bytes (trims, trim bypass and headphone bytes)",
        ));
    }
    let mut trims = [Trim::AUTOMATIC; 9];
    let mut pos = 7;
    for t in &mut trims {
        let automatic = p[pos] & 1 == 1;
        let f = |at: usize| f32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
        let balance = |b: u8| {
            let v = (b & 0x7f) as f32 / 127.0;
            if b & 0x80 != 0 { -v } else { v }
        };
        *t = if automatic {
            Trim::AUTOMATIC
        } else {
            Trim {
                automatic,
                center_db: f(pos + 1),
                surround_db: f(pos + 5),
                height_db: f(pos + 9),
                balance_overhead_floor: balance(p[pos + 13]),
                balance_listener: balance(p[pos + 14]),
            }
        };
        pos += 15;
    }
    let trim_bypass = p[pos..pos + count].iter().map(|b| b & 3).collect();
    pos += count;
    let head = &p[pos..pos + count];
    Ok(SupplementalSegment {
        trims,
        trim_bypass,
        head_track_mode: head.iter().map(|b| b >> 6).collect(),
        binaural: head
            .iter()
            .map(|b| BinauralRenderMode::from_code(b & 7))
            .collect(),
    })
}

/// Supplemental segment payload.
fn write_supplemental(s: &SupplementalSegment) -> Vec<u8> {
    let count = s.binaural.len().min(u16::MAX as usize);
    let mut p = SYNC.to_le_bytes().to_vec();
    p.extend_from_slice(&(count as u16).to_le_bytes());
    p.push(0);
    for t in &s.trims {
        p.push(t.automatic as u8);
        if t.automatic {
            p.extend_from_slice(&[0; 14]);
        } else {
            for v in [t.center_db, t.surround_db, t.height_db] {
                let v = if v.is_finite() { v } else { 0.0 };
                p.extend_from_slice(&v.to_le_bytes());
            }
            for b in [t.balance_overhead_floor, t.balance_listener] {
                let b = if b.is_finite() {
                    b.clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let amount = (b.abs() * 127.0).round() as u8;
                p.push(if b < 0.0 { 0x80 | amount } else { amount });
            }
        }
    }
    for i in 0..count {
        p.push(s.trim_bypass.get(i).copied().unwrap_or(0) & 3);
    }
    for i in 0..count {
        let head = s.head_track_mode.get(i).copied().unwrap_or(0) & 3;
        p.push(head << 6 | s.binaural[i].code());
    }
    p
}

/// A track's binaural render mode for the scene's binaural mode.
pub fn render_mode(mode: crate::scene::mix::BinauralMode) -> BinauralRenderMode {
    use crate::scene::mix::BinauralMode;
    match mode {
        BinauralMode::Off => BinauralRenderMode::Off,
        BinauralMode::Near => BinauralRenderMode::Near,
        BinauralMode::Mid => BinauralRenderMode::Mid,
        BinauralMode::Far => BinauralRenderMode::Far,
    }
}

/// The binaural mode of every track of a master whose tracks are `tracks` (each a bed
/// channel `(bed, layout channel)` or an object), from the scene.
pub fn track_modes(
    scene: &crate::scene::mix::Scene,
    tracks: &[Track],
) -> Vec<crate::scene::mix::BinauralMode> {
    use crate::scene::mix::BinauralMode;
    tracks
        .iter()
        .map(|t| match *t {
            Track::Object(i) => scene
                .objects
                .get(i)
                .map_or(BinauralMode::Mid, |o| o.binaural),
            Track::BedChannel(b, c) => scene
                .beds
                .get(b)
                .and_then(|bed| bed.binaural.as_ref())
                .and_then(|m| m.get(c).copied())
                .unwrap_or(BinauralMode::Mid),
            Track::Silent => BinauralMode::Mid,
        })
        .collect()
}

/// What feeds a track of a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Object(usize),
    /// Bed index and layout channel.
    BedChannel(usize, usize),
    Silent,
}

/// The `dbmd` chunk halo writes with a master (the inverse of [`apply_to_scene`]): written
/// by "halo"; the binaural render mode of every track (`modes`, in file order); the 2.0
/// trims from the first stereo output's fold-down (its trim mode and figures; the dbmd has
/// one surround trim, the fold's `surround_db`), automatic trims for the other layouts; the 5.1 → 2.0
/// downmix from its matrix (Lo/Ro or Lt/Rt; not indicated without a stereo output); the 5.1
/// and 5.1.x downmix "Direct Render", which is how halo renders every layout.
pub fn for_master(
    scene: &crate::scene::mix::Scene,
    modes: &[crate::scene::mix::BinauralMode],
) -> Dbmd {
    use crate::scene::mix::{FoldMatrix, OutputSpec, TrimMode};
    let fold = scene.outputs.iter().find_map(|o| match o {
        OutputSpec::Stereo { fold, .. } => Some(fold.clone()),
        _ => None,
    });
    let stereo_downmix = match fold.as_ref().map(|f| f.matrix) {
        Some(FoldMatrix::LoRo) => StereoDownmix::LoRo,
        Some(FoldMatrix::LtRt) => StereoDownmix::LtRtProLogic,
        None => StereoDownmix::NotIndicated,
    };
    let mut trims = [Trim::AUTOMATIC; 9];
    if let Some(f) = &fold
        && f.trim_mode == TrimMode::Manual
    {
        trims[0] = Trim {
            automatic: false,
            center_db: f.center_db as f32,
            surround_db: f.surround_db as f32,
            height_db: f.height_db as f32,
            balance_overhead_floor: 0.0,
            balance_listener: 0.0,
        };
    }
    let version: Vec<u8> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let tool_version = [
        version.first().copied().unwrap_or(0),
        version.get(1).copied().unwrap_or(0),
        version.get(2).copied().unwrap_or(0),
    ];
    Dbmd {
        version: VERSION,
        atmos: Some(AtmosSegment::new(
            "halo",
            tool_version,
            stereo_downmix,
            WarpMode::DirectRender,
        )),
        supplemental: Some(SupplementalSegment {
            trims,
            trim_bypass: vec![0; modes.len()],
            head_track_mode: vec![0; modes.len()],
            binaural: modes.iter().map(|&m| render_mode(m)).collect(),
        }),
        other: Vec::new(),
    }
}

/// The scene's binaural mode for a track's binaural render mode (not indicated: Mid).
pub fn scene_mode(mode: BinauralRenderMode) -> crate::scene::mix::BinauralMode {
    use crate::scene::mix::BinauralMode;
    match mode {
        BinauralRenderMode::Off => BinauralMode::Off,
        BinauralRenderMode::Near => BinauralMode::Near,
        BinauralRenderMode::Far => BinauralMode::Far,
        BinauralRenderMode::Mid | BinauralRenderMode::NotIndicated => BinauralMode::Mid,
        BinauralRenderMode::Reserved(_) => BinauralMode::Mid,
    }
}

/// Applies a master's `dbmd` to the scene read from its ADM: the binaural render mode of
/// each track to the object or bed channel it feeds (tracks are the file's channels, in
/// order), the 2.0 trims (when manual) and the 5.1 → 2.0 downmix to the stereo
/// fold-downs. Returns one warning naming what is not applied (none if all is).
pub fn apply_to_scene(dbmd: &Dbmd, scene: &mut crate::scene::mix::Scene) -> Vec<String> {
    use crate::scene::mix::{BinauralMode, FoldMatrix, OutputSpec, TrimMode};
    let mut not_applied = Vec::new();
    if let Some(sup) = &dbmd.supplemental {
        let mode_of = |channel: usize| sup.binaural.get(channel).map(|&m| scene_mode(m));
        for o in &mut scene.objects {
            if let Some(m) = o.source.channel.and_then(mode_of) {
                o.binaural = m;
            }
        }
        for b in &mut scene.beds {
            let n = b.layout.num_channels();
            let channels: Vec<usize> = match &b.channels {
                Some(c) => c.clone(),
                None => (0..n).collect(),
            };
            let modes: Vec<BinauralMode> = channels
                .iter()
                .map(|&c| mode_of(c).unwrap_or(BinauralMode::Mid))
                .collect();
            if modes.len() == n && channels.iter().any(|&c| mode_of(c).is_some()) {
                b.binaural = Some(modes);
            }
        }
        let stereo = sup.trims[0];
        for o in &mut scene.outputs {
            if let OutputSpec::Stereo { fold, .. } = o {
                if stereo.automatic {
                    fold.trim_mode = TrimMode::Automatic;
                } else {
                    fold.trim_mode = TrimMode::Manual;
                    fold.center_db = stereo.center_db as f64;
                    fold.surround_db = stereo.surround_db as f64;
                    fold.rear_db = stereo.surround_db as f64;
                    fold.height_db = stereo.height_db as f64;
                }
            }
        }
        let manual: Vec<&str> = TRIM_LAYOUTS
            .iter()
            .zip(&sup.trims)
            .skip(1)
            .filter(|(_, t)| !t.automatic)
            .map(|(l, _)| *l)
            .collect();
        if !manual.is_empty() {
            not_applied.push(format!(
                "the manual trims of {} (halo folds down only to 2.0)",
                manual.join(", ")
            ));
        }
        if stereo.automatic {
            // halo's fold-down coefficients stand for the automatic trims.
        } else if stereo.balance_overhead_floor != 0.0 || stereo.balance_listener != 0.0 {
            not_applied.push("the 2.0 front/back balance".into());
        }
    }
    if let Some(atmos) = &dbmd.atmos {
        let matrix = match atmos.stereo_downmix {
            StereoDownmix::LoRo => Some(FoldMatrix::LoRo),
            StereoDownmix::LtRtProLogic | StereoDownmix::LtRtProLogicII => Some(FoldMatrix::LtRt),
            StereoDownmix::DirectStereoRender => {
                not_applied.push("the direct stereo render (halo folds 7.1.4 down)".into());
                None
            }
            _ => None,
        };
        if let Some(matrix) = matrix {
            for o in &mut scene.outputs {
                if let OutputSpec::Stereo { fold, .. } = o {
                    fold.matrix = matrix;
                }
            }
        }
        if let Some(name) = atmos
            .warp_mode
            .name()
            .filter(|_| atmos.warp_mode != WarpMode::DirectRender)
        {
            not_applied.push(format!(
                "the 5.1 and 5.1.x downmix (warp mode) {name} (halo renders every layout \
                 directly from the objects)"
            ));
        }
    }
    if not_applied.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "dbmd (Dolby metadata): not applied: {}",
            not_applied.join("; ")
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_chunks_read_back() {
        let d = Dbmd {
            version: VERSION,
            atmos: Some(AtmosSegment::new(
                "halo",
                [0, 1, 0],
                StereoDownmix::LoRo,
                WarpMode::LoRo,
            )),
            supplemental: Some(SupplementalSegment {
                trims: [Trim {
                    automatic: false,
                    center_db: -3.0,
                    surround_db: -1.5,
                    height_db: 0.0,
                    balance_overhead_floor: 0.0,
                    balance_listener: -1.0,
                }; 9],
                trim_bypass: vec![0, 1],
                head_track_mode: vec![0, 0],
                binaural: vec![BinauralRenderMode::Near, BinauralRenderMode::Off],
            }),
            other: vec![],
        };
        let back = Dbmd::parse(&d.to_bytes()).unwrap();
        let a = back.atmos.as_ref().unwrap();
        assert_eq!(a.tool, "halo");
        assert_eq!(a.warp_mode, WarpMode::LoRo);
        assert_eq!(a.stereo_downmix, StereoDownmix::LoRo);
        assert_eq!(back.supplemental, d.supplemental);
    }
}
