//! Full-sphere VBAP panning for any speaker layout (after ITU-R BS.2127's point-source
//! panner: virtual speakers, triangulated convex hull, 0+2+0 via 0+5+0 fold-down), plus a
//! size (spread) control and the room-centric Cartesian mapping. Metadata → gains only.
//!
//! # Point sources
//!
//! The layout's non-LFE speakers (unit vectors) are completed with **virtual speakers**:
//!
//! * the nadir (el −90°) unless a real speaker is below −75°, the zenith (el +90°) unless
//!   one is above +75° (the zenith also removes the planar top quad of 5.1.4 / 7.1.4);
//! * ear-level speakers in azimuth gaps wider than 150° (a 3.0 LCR file), evenly spaced
//!   at most 90° apart, so that the hull encloses the listener;
//! * one speaker at the normalised centroid of every hull face that is a planar polygon
//!   with more than three vertices (7.1.4's back face Lrs–Rrs–Rtr–Ltr, 5.1.4's side and
//!   back trapezoids). Splitting such a face by a diagonal would break left/right
//!   symmetry; the centre speaker fans it symmetrically (the hull is then recomputed).
//!
//! The convex hull of all of them is triangulated; each triangle's inverse matrix is
//! precomputed. At run time the triangle whose barycentric weights are all non-negative
//! gives the VBAP gains. A virtual speaker's gain goes to its real hull neighbours,
//! `1/√n` each (to the nearest real speakers, by hull-graph distance, if it has no real
//! neighbour), and the gain vector is power-normalised (`Σg² = 1`). Every direction has
//! a non-zero gain vector and the gains are continuous over the whole sphere.
//!
//! # Stereo (2.0)
//!
//! A layout of exactly two mirrored ear-level speakers (2.0 at ±30°) is panned on an
//! internal 0+5+0 (L, R at the layout's angles, C at 0°, Ls/Rs at ±110°) and folded down:
//! `L = gL + √⅓·gC + √½·gLs`, `R = gR + √⅓·gC + √½·gRs`. The result is scaled so that
//!
//! `Σg² = 1 − ½·(gLs² + gRs²)` (the 0+5+0 gains being power-normalised),
//!
//! i.e. 0 dB for frontal sources falling to −3 dB for sources wholly in the surrounds.
//! Every term is continuous in direction, so the law is too. `in_real_triangle` is always
//! false for 2.0 (the fold-down does not preserve the velocity vector).
//!
//! # Size
//!
//! Point gains are precomputed on a mirror-symmetric quasi-uniform (Fibonacci) grid of
//! about 500 directions. For a size `s` in 0…1 the spread power of channel `c` is a
//! windowed mean of the grid's powers `g_k[c]²`, window `w = t²`,
//! `t = (cos γ − cos R)/(1 − cos R)` (γ = angle to the source, `R = 25° + 155°·s`),
//! blended towards the plain mean over the whole grid (direction-independent) by a
//! smoothstep over `s` = 0.5…1. It is mixed with the point-source power:
//! `P = (1 − a)·g_point² + a·P_spread`, `a = smoothstep(s/0.4)` (quadratic at 0, so a
//! silent speaker's gain grows linearly with size), and `g = √P`,
//! power-normalised. So size 0 is exactly the point source, size 1 the whole room, and
//! gains are continuous in size and direction. (For 2.0 the powers are not renormalised:
//! the spread follows the grid's mean of the fold-down law, between −3 and 0 dB.)
//!
//! # Real time
//!
//! The gain functions work in fixed stack buffers (layouts have at most
//! [`MAX_CHANNELS`] channels) and never allocate. Cost (criterion, shared 2-core box):
//! point source ≈ 0.25 µs on 7.1.4, size 0.3 ≈ 4 µs (one pass over the grid).
//!
//! # Positions
//!
//! Cartesian positions go through the layout's `RoomMap` (BS.2127-style: corners land on
//! speakers); near the room's centre the object becomes diffuse:
//! effective size = `max(size, 1 − extent/0.25)` (clamped to 0…1). Polar positions use
//! their direction (distance is ignored). Objects never feed the LFE.

use crate::scene::geometry::{Direction, Position, RoomMap, cross, dot, norm};
use crate::scene::layout::Layout;
use std::cell::Cell;
use thiserror::Error;

/// Largest number of channels (LFE included) a layout may have.
pub const MAX_CHANNELS: usize = 64;
/// Smallest angle allowed between two speakers, degrees.
pub const MIN_SEPARATION_DEG: f64 = 0.5;
/// Real speakers beyond this elevation (either sign) stand in for the zenith / nadir.
const POLE_ELEVATION_DEG: f64 = 75.0;
/// Azimuth gaps wider than this get virtual ear-level speakers.
const MAX_GAP_DEG: f64 = 150.0;
/// Spacing of the virtual ear-level speakers that fill a gap, at most.
const GAP_FILL_DEG: f64 = 90.0;
/// Tolerance for "on the face plane" in the hull (unit vectors).
const PLANE_EPS: f64 = 1e-9;
/// Rounds of "add a centre speaker to planar polygons and rebuild the hull".
const MAX_REFINE: usize = 16;
/// Half the number of Fibonacci points tried for the size grid (about half are kept,
/// then mirrored).
const GRID_POINTS: usize = 500;
/// Smallest window radius of the size control, degrees.
const SIZE_MIN_RADIUS_DEG: f64 = 25.0;
/// Size at which the spread is fully blended in.
const SIZE_BLEND: f64 = 0.4;
/// Extent (0 centre … 1 wall) below which Cartesian objects start to become diffuse.
const CENTRE_DIFFUSE_EXTENT: f64 = 0.25;
/// Stereo fold-down coefficients (ITU-R BS.775 / BS.2127): centre, surround.
const FOLD_CENTRE: f64 = 0.577_350_269_189_625_8; // √⅓
const FOLD_SURROUND: f64 = std::f64::consts::FRAC_1_SQRT_2;

#[derive(Debug, Error)]
pub enum PannerError {
    #[error(
        "layout '{layout}': no speaker to pan to (all {channels} channels are LFE); a layout needs at least one non-LFE channel"
    )]
    NoSpeakers { layout: String, channels: usize },
    #[error("layout '{layout}': {channels} channels; the panner supports at most {max}")]
    TooManyChannels {
        layout: String,
        channels: usize,
        max: usize,
    },
    #[error(
        "layout '{layout}': channel {label} has azimuth {azimuth_deg}, elevation {elevation_deg}; angles must be finite degrees"
    )]
    NonFinite {
        layout: String,
        label: String,
        azimuth_deg: f64,
        elevation_deg: f64,
    },
    #[error(
        "layout '{layout}': speakers {first} and {second} are {angle_deg:.3}° apart; speakers must be at least {min_deg}° apart"
    )]
    Coincident {
        layout: String,
        first: String,
        second: String,
        angle_deg: f64,
        min_deg: f64,
    },
    #[error("layout '{layout}': degenerate speaker geometry: {reason}")]
    Degenerate { layout: String, reason: String },
}

/// Why a virtual speaker was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtualKind {
    /// Straight up (no real speaker above 75°).
    Zenith,
    /// Straight down (no real speaker below −75°).
    Nadir,
    /// Ear-level speaker filling an azimuth gap wider than 150°.
    GapFill,
    /// Centre of a planar hull face with more than three speakers.
    FaceCentre,
    /// A speaker of the internal 0+5+0 that 2.0 is folded down from (C, Ls, Rs).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    StereoPhantom,
}

/// A virtual speaker and where its signal goes: `(layout channel, amplitude)` pairs
/// (before the final power normalisation).
/// Test support (the panner's tests inspect the virtual speakers).
#[cfg(feature = "internals")]
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualSpeaker {
    pub direction: Direction,
    pub kind: VirtualKind,
    pub feeds: Vec<(usize, f64)>,
}

/// One triangle of the hull: its vertices and the inverse of `[a b c]` (rows).
#[derive(Debug, Clone, Copy)]
struct Tri {
    inv: [[f64; 3]; 3],
    v: [usize; 3],
    /// Read only by test support (`Panner::in_real_triangle`).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    real: bool,
}

#[derive(Debug, Clone)]
struct Vertex {
    u: [f64; 3],
    /// Output channel of the core for a real speaker.
    real: Option<usize>,
    /// Read only by test support (`Panner::virtual_speakers`).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    kind: Option<VirtualKind>,
}

/// VBAP over a triangulated hull, feeding `n_out` core channels.
#[derive(Debug, Clone)]
struct Core {
    /// Read only by test support (`Panner::virtual_speakers`, `Panner::triangles`).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    verts: Vec<Vertex>,
    tris: Vec<Tri>,
    /// Feeds of vertex `v`: `mix[mix_start[v]..mix_start[v + 1]]`.
    mix_start: Vec<usize>,
    mix: Vec<(usize, f64)>,
    /// The triangle the last lookup found: a moving source usually stays in it, so it is
    /// tried first (a cache only; it never changes which gains a direction gets beyond
    /// rounding on a shared edge).
    last: Cell<usize>,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Core channels are the layout's channels.
    Direct,
    /// Core channels are an internal L R C Ls Rs, folded into layout channels `l`, `r`.
    Stereo { l: usize, r: usize },
}

/// One object's lookup record for [`Panner::position_gains_with_hint`] (a cache only: it
/// never changes the gains beyond rounding).
#[derive(Debug, Clone, Copy)]
pub struct PanHint {
    triangle: usize,
    el_deg: f64,
    sin_el: f64,
    cos_el: f64,
}

impl Default for PanHint {
    fn default() -> Self {
        PanHint {
            triangle: 0,
            el_deg: f64::NAN, // matches no elevation: the first lookup computes it
            sin_el: 0.0,
            cos_el: 1.0,
        }
    }
}

/// A gain vector (one entry per layout channel) that knows which of its channels may be
/// non-zero: every channel outside [`SparseGains::mask`] is exactly zero. Filled by
/// [`Panner::position_gains_sparse`]; a point source has only the few channels of the
/// speakers around its hull triangle in the mask.
/// Test and bench support (halo's tests check it against the dense gains).
#[cfg(feature = "internals")]
#[derive(Debug, Clone)]
pub struct SparseGains {
    gains: [f64; MAX_CHANNELS],
    mask: u64,
}

#[cfg(feature = "internals")]
impl Default for SparseGains {
    fn default() -> Self {
        SparseGains {
            gains: [0.0; MAX_CHANNELS],
            mask: 0,
        }
    }
}

#[cfg(feature = "internals")]
impl SparseGains {
    /// The channels that may be non-zero: bit `c` for channel `c`.
    pub fn mask(&self) -> u64 {
        self.mask
    }

    /// Gain of channel `c` (zero outside the mask and past the layout's channels).
    pub fn get(&self, c: usize) -> f64 {
        self.gains.get(c).copied().unwrap_or(0.0)
    }

    /// `(channel, gain)` for every channel in the mask, in channel order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        Channels(self.mask).map(|c| (c, self.gains[c]))
    }

    /// All zero again, touching only the channels in the mask.
    fn clear(&mut self) {
        for c in Channels(self.mask) {
            self.gains[c] = 0.0;
        }
        self.mask = 0;
    }
}

/// The set bits of a channel mask, lowest first.
#[derive(Debug, Clone, Copy)]
pub struct Channels(pub u64);

impl Iterator for Channels {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let c = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(c)
    }
}

/// Full-sphere VBAP panner for one layout. Build once per layout with [`Panner::new`];
/// the gain functions never allocate.
#[derive(Debug, Clone)]
pub struct Panner {
    n: usize,
    core: Core,
    mode: Mode,
    room: RoomMap,
    /// Real (non-LFE) layout channels, for the never-silent fallback.
    real_channels: Vec<usize>,
    grid: Vec<[f64; 3]>,
    /// `grid.len() × n` point-source powers (`g²`), row per grid direction.
    grid_power: Vec<f64>,
    /// Mean of `grid_power` over the grid: the whole-room power.
    uniform_power: Vec<f64>,
}

struct Speaker {
    out: usize,
    dir: Direction,
}

impl Panner {
    /// Builds the panner for a layout: virtual speakers, hull, inverse matrices and the
    /// size grid.
    pub fn new(layout: &Layout) -> Result<Panner, PannerError> {
        let name = layout.name.clone();
        let n = layout.num_channels();
        if n > MAX_CHANNELS {
            return Err(PannerError::TooManyChannels {
                layout: name,
                channels: n,
                max: MAX_CHANNELS,
            });
        }
        let mut speakers = Vec::new();
        for (i, c) in layout.channels.iter().enumerate() {
            if c.lfe {
                continue;
            }
            if !c.azimuth_deg.is_finite() || !c.elevation_deg.is_finite() {
                return Err(PannerError::NonFinite {
                    layout: name,
                    label: c.label.clone(),
                    azimuth_deg: c.azimuth_deg,
                    elevation_deg: c.elevation_deg,
                });
            }
            speakers.push(Speaker {
                out: i,
                dir: c.direction(),
            });
        }
        if speakers.is_empty() {
            return Err(PannerError::NoSpeakers {
                layout: name,
                channels: n,
            });
        }
        for (i, a) in speakers.iter().enumerate() {
            for b in &speakers[i + 1..] {
                let angle = a.dir.angle_to_deg(b.dir);
                if angle.is_nan() || angle < MIN_SEPARATION_DEG {
                    return Err(PannerError::Coincident {
                        layout: name,
                        first: layout.channels[a.out].label.clone(),
                        second: layout.channels[b.out].label.clone(),
                        angle_deg: angle,
                        min_deg: MIN_SEPARATION_DEG,
                    });
                }
            }
        }
        let real_channels: Vec<usize> = speakers.iter().map(|s| s.out).collect();

        let (core, mode) = if let Some((l, r)) = stereo_pair(&speakers) {
            let internal = [
                Speaker {
                    out: 0,
                    dir: speakers[l].dir,
                },
                Speaker {
                    out: 1,
                    dir: speakers[r].dir,
                },
                Speaker {
                    out: 2,
                    dir: Direction::new(0.0, 0.0),
                },
                Speaker {
                    out: 3,
                    dir: Direction::new(110.0, 0.0),
                },
                Speaker {
                    out: 4,
                    dir: Direction::new(-110.0, 0.0),
                },
            ];
            (
                Core::build(&name, &internal, 5)?,
                Mode::Stereo {
                    l: speakers[l].out,
                    r: speakers[r].out,
                },
            )
        } else {
            (Core::build(&name, &speakers, n)?, Mode::Direct)
        };

        let mut panner = Panner {
            n,
            core,
            mode,
            room: layout.room_map(),
            real_channels,
            grid: mirrored_fibonacci(GRID_POINTS),
            grid_power: Vec::new(),
            uniform_power: vec![0.0; n],
        };
        let mut grid_power = vec![0.0; panner.grid.len() * n];
        let mut buf = [0.0; MAX_CHANNELS];
        for (k, &u) in panner.grid.iter().enumerate() {
            panner.point_unit(u, &mut buf);
            for ch in 0..n {
                let p = buf[ch] * buf[ch];
                grid_power[k * n + ch] = p;
                panner.uniform_power[ch] += p;
            }
        }
        let count = panner.grid.len() as f64;
        for p in &mut panner.uniform_power {
            *p /= count;
        }
        panner.grid_power = grid_power;
        Ok(panner)
    }

    /// Number of output channels (the layout's, LFE included; LFE gains are always 0).
    pub fn num_channels(&self) -> usize {
        self.n
    }

    /// Gains of a point source in direction `dir`.
    pub fn point_gains(&self, dir: Direction, out: &mut [f64]) {
        let mut buf = [0.0; MAX_CHANNELS];
        self.point_unit(unit_of(dir), &mut buf);
        self.write_out(&buf, out);
    }

    /// Gains of a source of size `size` (0 point … 1 whole room) in direction `dir`.
    /// Test and bench support (halo renders through the position functions).
    #[cfg(feature = "internals")]
    pub fn gains(&self, dir: Direction, size: f64, out: &mut [f64]) {
        self.gains_hinted(dir, size, &self.core.last, out);
    }

    fn gains_hinted(&self, dir: Direction, size: f64, hint: &Cell<usize>, out: &mut [f64]) {
        self.gains_unit(unit_of(dir), size, hint, out);
    }

    /// [`Panner::gains`] of the unit vector `u` of a direction.
    fn gains_unit(&self, u: [f64; 3], size: f64, hint: &Cell<usize>, out: &mut [f64]) {
        let s = if size.is_finite() {
            size.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let n = self.n;
        if s <= 0.0 && out.len() == n {
            // Straight into `out`: only the few channels around the triangle are written.
            out.fill(0.0);
            self.point_sparse(u, hint, out);
            return;
        }
        let mut point = [0.0; MAX_CHANNELS];
        self.point_unit_hinted(u, hint, &mut point);
        if s <= 0.0 {
            self.write_out(&point, out);
            return;
        }
        let a = smoothstep(s / SIZE_BLEND);
        let b = smoothstep((s - 0.5) / 0.5);
        let mut spread = [0.0; MAX_CHANNELS];
        if b < 1.0 {
            let radius = (SIZE_MIN_RADIUS_DEG + (180.0 - SIZE_MIN_RADIUS_DEG) * s).to_radians();
            let c = radius.cos();
            let inv = 1.0 / (1.0 - c);
            let mut wsum = 0.0;
            for (k, &g) in self.grid.iter().enumerate() {
                let d = dot(g, u);
                if d <= c {
                    continue;
                }
                let t = (d - c) * inv;
                let w = t * t;
                wsum += w;
                let row = &self.grid_power[k * n..(k + 1) * n];
                for (acc, &p) in spread[..n].iter_mut().zip(row) {
                    *acc += w * p;
                }
            }
            if wsum > 0.0 {
                let k = (1.0 - b) / wsum;
                for acc in &mut spread[..n] {
                    *acc *= k;
                }
            } else {
                for ch in 0..n {
                    spread[ch] = (1.0 - b) * point[ch] * point[ch];
                }
            }
        }
        let mut total = 0.0;
        for ch in 0..n {
            let spread_power = spread[ch] + b * self.uniform_power[ch];
            let p = (1.0 - a) * point[ch] * point[ch] + a * spread_power;
            point[ch] = p.max(0.0).sqrt();
            total += p;
        }
        if matches!(self.mode, Mode::Direct) && total > 0.0 {
            let k = 1.0 / total.sqrt();
            for g in &mut point[..n] {
                *g *= k;
            }
        }
        self.write_out(&point, out);
    }

    /// Gains of an object at an authored position (Cartesian through the layout's room
    /// mapping, diffuse near the room's centre; polar by direction) with size `size`.
    pub fn position_gains(&self, pos: Position, size: f64, out: &mut [f64]) {
        self.position_gains_hinted(pos, size, &self.core.last, out);
    }

    /// [`Panner::position_gains`] for one of many moving objects: `hint` is the object's
    /// own record (start with `PanHint::default()`) of the hull triangle it was last found
    /// in, tried first, and of its last elevation's sine and cosine. The gains are the same as `position_gains`' (the hint only saves the
    /// triangle search; on a shared edge either triangle gives the same gains within
    /// rounding).
    pub fn position_gains_with_hint(
        &self,
        pos: Position,
        size: f64,
        hint: &mut PanHint,
        out: &mut [f64],
    ) {
        let (u, size) = self.hinted_unit(pos, size, hint);
        self.gains_unit(u, size, Cell::from_mut(&mut hint.triangle), out);
    }

    /// [`Panner::position_gains_with_hint`] into a [`SparseGains`]: the same gains, but
    /// only the channels a point source feeds (the speakers around its hull triangle) are
    /// written and listed, so a caller touches a handful of channels instead of all.
    /// Test support (see [`SparseGains`]).
    #[cfg(feature = "internals")]
    pub fn position_gains_sparse(
        &self,
        pos: Position,
        size: f64,
        hint: &mut PanHint,
        out: &mut SparseGains,
    ) {
        let (u, size) = self.hinted_unit(pos, size, hint);
        out.clear();
        let n = self.n;
        let hint = Cell::from_mut(&mut hint.triangle);
        let point = !size.is_finite() || size <= 0.0;
        if point {
            out.mask = self.point_sparse(u, hint, &mut out.gains[..n]);
        } else {
            self.gains_unit(u, size, hint, &mut out.gains[..n]);
            out.mask = u64::MAX >> (64 - n);
        }
    }

    /// The unit vector and effective size of an authored position (see
    /// [`Panner::position_gains`]), keeping the elevation's sine and cosine in `hint`
    /// while the elevation does not change.
    #[inline(always)]
    fn hinted_unit(&self, pos: Position, size: f64, hint: &mut PanHint) -> ([f64; 3], f64) {
        let (dir, size) = match pos {
            Position::Cartesian { x, y, z } => {
                let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
                let rd = self
                    .room
                    .cartesian_to_direction(finite(x), finite(y), finite(z));
                let near = (1.0 - rd.extent / CENTRE_DIFFUSE_EXTENT).clamp(0.0, 1.0);
                let s = if size.is_finite() { size } else { 0.0 };
                (rd.direction, s.max(near))
            }
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                ..
            } => (Direction::new(azimuth_deg, elevation_deg), size),
        };
        // `unit_of`, with the elevation's sine and cosine kept while it does not change.
        let u = if dir.azimuth_deg.is_finite() && dir.elevation_deg.is_finite() {
            let d = Direction::new(dir.azimuth_deg, dir.elevation_deg);
            if d.elevation_deg != hint.el_deg {
                let el = d.elevation_deg.to_radians();
                (hint.sin_el, hint.cos_el) = (el.sin(), el.cos());
                hint.el_deg = d.elevation_deg;
            }
            let az = d.azimuth_deg.to_radians();
            [-az.sin() * hint.cos_el, az.cos() * hint.cos_el, hint.sin_el]
        } else {
            [0.0, 1.0, 0.0]
        };
        (u, size)
    }

    fn position_gains_hinted(&self, pos: Position, size: f64, hint: &Cell<usize>, out: &mut [f64]) {
        match pos {
            Position::Cartesian { x, y, z } => {
                let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
                let rd = self
                    .room
                    .cartesian_to_direction(finite(x), finite(y), finite(z));
                let near = (1.0 - rd.extent / CENTRE_DIFFUSE_EXTENT).clamp(0.0, 1.0);
                let s = if size.is_finite() { size } else { 0.0 };
                self.gains_hinted(rd.direction, s.max(near), hint, out);
            }
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                ..
            } => self.gains_hinted(Direction::new(azimuth_deg, elevation_deg), size, hint, out),
        }
    }

    /// Whether `dir` lies in a hull triangle of three real speakers (where the velocity
    /// vector of the gains points exactly at the source). Always false for 2.0.
    /// Test support (halo's panner tests).
    #[cfg(feature = "internals")]
    pub fn in_real_triangle(&self, dir: Direction) -> bool {
        match self.mode {
            Mode::Stereo { .. } => false,
            Mode::Direct => {
                let (t, _) = self.core.locate(unit_of(dir), &self.core.last);
                self.core.tris[t].real
            }
        }
    }

    /// The virtual speakers, with where their signal goes (layout channels).
    /// Test support (the panner's unit tests).
    #[cfg(feature = "internals")]
    pub fn virtual_speakers(&self) -> Vec<VirtualSpeaker> {
        let mut list = Vec::new();
        for (v, vert) in self.core.verts.iter().enumerate() {
            let mut feeds: Vec<(usize, f64)> = Vec::new();
            let mut add = |ch: usize, g: f64| {
                if let Some(f) = feeds.iter_mut().find(|f| f.0 == ch) {
                    f.1 += g;
                } else {
                    feeds.push((ch, g));
                }
            };
            let core_feeds = &self.core.mix[self.core.mix_start[v]..self.core.mix_start[v + 1]];
            let kind = match (self.mode, vert.kind) {
                (Mode::Direct, None) => continue,
                (Mode::Direct, Some(kind)) => {
                    for &(ch, g) in core_feeds {
                        add(ch, g);
                    }
                    kind
                }
                (Mode::Stereo { l, r }, kind) => {
                    for &(ch, g) in core_feeds {
                        match ch {
                            0 => add(l, g),
                            1 => add(r, g),
                            2 => {
                                add(l, g * FOLD_CENTRE);
                                add(r, g * FOLD_CENTRE);
                            }
                            3 => add(l, g * FOLD_SURROUND),
                            _ => add(r, g * FOLD_SURROUND),
                        }
                    }
                    match (kind, vert.real) {
                        (Some(k), _) => k,
                        (None, Some(ch)) if ch >= 2 => VirtualKind::StereoPhantom,
                        _ => continue,
                    }
                }
            };
            list.push(VirtualSpeaker {
                direction: Direction::from_vector(vert.u),
                kind,
                feeds,
            });
        }
        list
    }

    /// The hull's triangles (directions of their corners), for inspection. For 2.0 these
    /// are the internal 0+5+0's.
    /// Test support (the panner's unit tests).
    #[cfg(feature = "internals")]
    pub fn triangles(&self) -> Vec<[Direction; 3]> {
        self.core
            .tris
            .iter()
            .map(|t| t.v.map(|v| Direction::from_vector(self.core.verts[v].u)))
            .collect()
    }

    /// Point gains for a unit vector into `buf[..n]` (all other entries untouched).
    fn point_unit(&self, u: [f64; 3], buf: &mut [f64; MAX_CHANNELS]) {
        self.point_unit_hinted(u, &self.core.last, buf);
    }

    /// [`Panner::point_unit`], trying the triangle `hint` first (and updating it).
    fn point_unit_hinted(&self, u: [f64; 3], hint: &Cell<usize>, buf: &mut [f64; MAX_CHANNELS]) {
        let n = self.n;
        buf[..n].fill(0.0);
        self.point_sparse(u, hint, &mut buf[..n]);
    }

    /// Point gains for a unit vector into `buf` (the layout's `n` channels, all zero on
    /// entry), trying the triangle `hint` first (and updating it). Returns the channels
    /// written (bit `c` for channel `c`); every other entry stays zero.
    #[inline(always)]
    fn point_sparse(&self, u: [f64; 3], hint: &Cell<usize>, buf: &mut [f64]) -> u64 {
        match self.mode {
            Mode::Direct => {
                let (total, touched) = self.core.accumulate(u, hint, buf);
                if total > 0.0 {
                    let k = 1.0 / total.sqrt();
                    for ch in Channels(touched) {
                        buf[ch] *= k;
                    }
                    touched
                } else {
                    touched | self.fallback(buf)
                }
            }
            Mode::Stereo { l, r } => {
                let mut five = [0.0; 5];
                let (total, _) = self.core.accumulate(u, hint, &mut five);
                if total <= 0.0 {
                    return self.fallback(buf);
                }
                let k = 1.0 / total.sqrt();
                let [gl, gr, gc, gls, grs] = five.map(|g| g * k);
                let left = gl + FOLD_CENTRE * gc + FOLD_SURROUND * gls;
                let right = gr + FOLD_CENTRE * gc + FOLD_SURROUND * grs;
                let target = 1.0 - 0.5 * (gls * gls + grs * grs);
                let power = left * left + right * right;
                if power > 0.0 {
                    let k = (target / power).sqrt();
                    buf[l] = left * k;
                    buf[r] = right * k;
                    (1 << l) | (1 << r)
                } else {
                    self.fallback(buf)
                }
            }
        }
    }

    /// Equal power on every real speaker (never reached for a valid hull; keeps every
    /// direction audible whatever happens). Returns the channels written.
    fn fallback(&self, buf: &mut [f64]) -> u64 {
        let g = 1.0 / (self.real_channels.len() as f64).sqrt();
        let mut mask = 0;
        for &ch in &self.real_channels {
            buf[ch] = g;
            mask |= 1 << ch;
        }
        mask
    }

    fn write_out(&self, buf: &[f64; MAX_CHANNELS], out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.n, "gain buffer length != num_channels");
        let m = out.len().min(self.n);
        out[..m].copy_from_slice(&buf[..m]);
        out[m..].fill(0.0);
    }
}

impl Core {
    fn build(layout: &str, speakers: &[Speaker], n_out: usize) -> Result<Core, PannerError> {
        let degenerate = |reason: String| PannerError::Degenerate {
            layout: layout.to_string(),
            reason,
        };
        let mut verts: Vec<Vertex> = speakers
            .iter()
            .map(|s| Vertex {
                u: s.dir.to_unit(),
                real: Some(s.out),
                kind: None,
            })
            .collect();
        let add_virtual = |verts: &mut Vec<Vertex>, dir: Direction, kind| {
            verts.push(Vertex {
                u: dir.to_unit(),
                real: None,
                kind: Some(kind),
            })
        };
        if !speakers
            .iter()
            .any(|s| s.dir.elevation_deg > POLE_ELEVATION_DEG)
        {
            add_virtual(&mut verts, Direction::new(0.0, 90.0), VirtualKind::Zenith);
        }
        if !speakers
            .iter()
            .any(|s| s.dir.elevation_deg < -POLE_ELEVATION_DEG)
        {
            add_virtual(&mut verts, Direction::new(0.0, -90.0), VirtualKind::Nadir);
        }
        // Azimuth gaps, among speakers away from the poles.
        let mut az: Vec<f64> = speakers
            .iter()
            .filter(|s| s.dir.elevation_deg.abs() < POLE_ELEVATION_DEG)
            .map(|s| s.dir.azimuth_deg)
            .collect();
        az.sort_by(f64::total_cmp);
        if az.is_empty() {
            for a in [0.0, 90.0, 180.0, -90.0] {
                add_virtual(&mut verts, Direction::new(a, 0.0), VirtualKind::GapFill);
            }
        } else {
            for i in 0..az.len() {
                let a = az[i];
                let next = if i + 1 < az.len() {
                    az[i + 1]
                } else {
                    az[0] + 360.0
                };
                let gap = next - a;
                if gap > MAX_GAP_DEG {
                    let m = (gap / GAP_FILL_DEG).ceil() as usize;
                    for k in 1..m {
                        let dir = Direction::new(a + gap * k as f64 / m as f64, 0.0);
                        add_virtual(&mut verts, dir, VirtualKind::GapFill);
                    }
                }
            }
        }

        // Hull; planar polygons get a centre speaker and the hull is rebuilt.
        let mut faces = None;
        for _ in 0..MAX_REFINE {
            let pts: Vec<[f64; 3]> = verts.iter().map(|v| v.u).collect();
            let hull = hull_faces(&pts).map_err(degenerate)?;
            let polygons: Vec<&Vec<usize>> = hull.iter().filter(|f| f.len() > 3).collect();
            if polygons.is_empty() {
                faces = Some(hull);
                break;
            }
            let centres: Vec<[f64; 3]> = polygons
                .iter()
                .map(|f| {
                    let mut c = [0.0; 3];
                    for &i in f.iter() {
                        for (ck, pk) in c.iter_mut().zip(pts[i]) {
                            *ck += pk;
                        }
                    }
                    c
                })
                .collect();
            for c in centres {
                let len = norm(c);
                if len < 1e-9 {
                    return Err(degenerate(
                        "a planar face of the speaker hull passes through the listener".into(),
                    ));
                }
                verts.push(Vertex {
                    u: c.map(|x| x / len),
                    real: None,
                    kind: Some(VirtualKind::FaceCentre),
                });
            }
        }
        let faces = faces.ok_or_else(|| {
            degenerate(format!(
                "planar hull faces remain after {MAX_REFINE} rounds of centre speakers"
            ))
        })?;

        let mut tris = Vec::with_capacity(faces.len());
        let mut solid_angle = 0.0;
        for f in &faces {
            let [a, b, c] = [verts[f[0]].u, verts[f[1]].u, verts[f[2]].u];
            let bc = cross(b, c);
            let det = dot(a, bc);
            if det.abs() < 1e-12 {
                return Err(degenerate(
                    "a hull triangle passes through the listener (speakers do not surround the listening position)".into(),
                ));
            }
            let rows = [bc, cross(c, a), cross(a, b)].map(|r| r.map(|x| x / det));
            solid_angle += 2.0 * det.abs().atan2(1.0 + dot(a, b) + dot(b, c) + dot(c, a));
            tris.push(Tri {
                inv: rows,
                v: [f[0], f[1], f[2]],
                real: f.iter().all(|&i| verts[i].real.is_some()),
            });
        }
        let sphere = 4.0 * std::f64::consts::PI;
        if (solid_angle - sphere).abs() > 1e-6 * sphere {
            return Err(degenerate(format!(
                "the speaker hull covers {:.4} sr of the sphere's {:.4} sr",
                solid_angle, sphere
            )));
        }

        // Hull-graph neighbours, then each vertex's feeds.
        let nv = verts.len();
        let mut adjacent = vec![Vec::<usize>::new(); nv];
        for t in &tris {
            for i in 0..3 {
                for j in 0..3 {
                    let (a, b) = (t.v[i], t.v[j]);
                    if a != b && !adjacent[a].contains(&b) {
                        adjacent[a].push(b);
                    }
                }
            }
        }
        let mut mix_start = Vec::with_capacity(nv + 1);
        let mut mix = Vec::new();
        for v in 0..nv {
            mix_start.push(mix.len());
            if let Some(ch) = verts[v].real {
                mix.push((ch, 1.0));
                continue;
            }
            // Breadth-first over the hull graph to the nearest real speakers.
            let mut seen = vec![false; nv];
            seen[v] = true;
            let mut level = vec![v];
            let mut reals: Vec<usize> = Vec::new();
            while reals.is_empty() && !level.is_empty() {
                let mut next = Vec::new();
                for &a in &level {
                    for &b in &adjacent[a] {
                        if !seen[b] {
                            seen[b] = true;
                            next.push(b);
                        }
                    }
                }
                reals = next
                    .iter()
                    .filter_map(|&b| verts[b].real)
                    .collect::<Vec<_>>();
                level = next;
            }
            if reals.is_empty() {
                return Err(degenerate(
                    "a virtual speaker has no path to a real speaker".into(),
                ));
            }
            reals.sort_unstable();
            reals.dedup();
            let g = 1.0 / (reals.len() as f64).sqrt();
            mix.extend(reals.into_iter().map(|ch| (ch, g)));
        }
        mix_start.push(mix.len());
        debug_assert!(mix.iter().all(|&(ch, _)| ch < n_out));
        Ok(Core {
            verts,
            tris,
            mix_start,
            mix,
            last: Cell::new(0),
        })
    }

    /// The triangle containing `u` and its barycentric (VBAP) weights.
    #[inline(always)]
    fn locate(&self, u: [f64; 3], last: &Cell<usize>) -> (usize, [f64; 3]) {
        let hint = last.get();
        if let Some(tri) = self.tris.get(hint) {
            let w = [dot(tri.inv[0], u), dot(tri.inv[1], u), dot(tri.inv[2], u)];
            if w[0].min(w[1]).min(w[2]) >= 1e-9 {
                return (hint, w);
            }
        }
        let mut best = (0, [0.0; 3]);
        let mut best_min = f64::NEG_INFINITY;
        for (t, tri) in self.tris.iter().enumerate() {
            let w = [dot(tri.inv[0], u), dot(tri.inv[1], u), dot(tri.inv[2], u)];
            let m = w[0].min(w[1]).min(w[2]);
            if m >= -1e-12 {
                last.set(t);
                return (t, w);
            }
            if m > best_min {
                best_min = m;
                best = (t, w);
            }
        }
        best
    }

    /// Adds the unnormalised gains of direction `u` into `buf` (core channels; the
    /// entries it adds to must be zero on entry) and returns their power and the channels
    /// it added to (bit `c` for channel `c`). The power is summed in channel order, as a
    /// sum over every channel would be (the others are zero).
    #[inline(always)]
    fn accumulate(&self, u: [f64; 3], last: &Cell<usize>, buf: &mut [f64]) -> (f64, u64) {
        let (t, w) = self.locate(u, last);
        let tri = &self.tris[t];
        let mut touched = 0u64;
        for (&wk, &v) in w.iter().zip(&tri.v) {
            let wk = wk.max(0.0);
            if wk == 0.0 {
                continue;
            }
            for &(ch, c) in &self.mix[self.mix_start[v]..self.mix_start[v + 1]] {
                buf[ch] += wk * c;
                touched |= 1 << ch;
            }
        }
        let mut total = 0.0;
        for ch in Channels(touched) {
            total += buf[ch] * buf[ch];
        }
        (total, touched)
    }
}

/// Faces of the convex hull of points on the unit sphere, each as its vertex indices in
/// ascending order (three for a triangle, more for a planar polygon).
///
/// Hand-written, no crate: no hull crate is among the project's dependencies, and this
/// brute force ("a plane through three points is a face if no point lies outside it") is
/// a few lines, exact about planar polygons (which incremental or qhull-style
/// triangulations would split by an arbitrary diagonal, breaking symmetry) and cheap for
/// the at most ~100 points of a layout: O(n⁴), run once in `Panner::new`.
fn hull_faces(pts: &[[f64; 3]]) -> Result<Vec<Vec<usize>>, String> {
    let n = pts.len();
    if n < 4 {
        return Err(format!("{n} directions cannot enclose the listener"));
    }
    let mut faces = Vec::new();
    let mut on = Vec::with_capacity(n);
    for i in 0..n {
        for j in i + 1..n {
            let e1 = sub(pts[j], pts[i]);
            for k in j + 1..n {
                let mut normal = cross(e1, sub(pts[k], pts[i]));
                let len = norm(normal);
                if len < 1e-12 {
                    continue;
                }
                normal = normal.map(|x| x / len);
                let mut d = dot(normal, pts[i]);
                if d < 0.0 {
                    normal = normal.map(|x| -x);
                    d = -d;
                }
                on.clear();
                let mut above = false;
                let mut below = false;
                for (m, &p) in pts.iter().enumerate() {
                    let s = dot(normal, p) - d;
                    if s > PLANE_EPS {
                        above = true;
                    } else if s < -PLANE_EPS {
                        below = true;
                    } else {
                        on.push(m);
                    }
                    if above && below {
                        break;
                    }
                }
                if above && below {
                    continue;
                }
                if above || d < 1e-9 {
                    // Every point on the origin's side: the plane through three speakers
                    // does not separate them from the listener.
                    return Err(
                        "the speakers and virtual speakers do not surround the listening position"
                            .into(),
                    );
                }
                if on.len() == 3 || (on[0] == i && on[1] == j && on[2] == k) {
                    faces.push(on.clone());
                }
            }
        }
    }
    Ok(faces)
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn smoothstep(x: f64) -> f64 {
    let t = x.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Unit vector of a direction; non-finite angles count as straight ahead.
fn unit_of(dir: Direction) -> [f64; 3] {
    if dir.azimuth_deg.is_finite() && dir.elevation_deg.is_finite() {
        Direction::new(dir.azimuth_deg, dir.elevation_deg).to_unit()
    } else {
        [0.0, 1.0, 0.0]
    }
}

/// A quasi-uniform grid that is exactly left/right symmetric: the Fibonacci lattice of
/// `count` points, right half kept and mirrored.
fn mirrored_fibonacci(count: usize) -> Vec<[f64; 3]> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let mut grid = Vec::with_capacity(count + 2);
    for i in 0..count {
        let z = 1.0 - (2 * i + 1) as f64 / count as f64;
        let r = (1.0 - z * z).max(0.0).sqrt();
        let phi = golden * i as f64;
        let (x, y) = (r * phi.cos(), r * phi.sin());
        if x > 1e-9 {
            grid.push([x, y, z]);
            grid.push([-x, y, z]);
        }
    }
    grid
}

/// The index pair (left, right) of a two-speaker mirrored ear-level layout (2.0).
fn stereo_pair(speakers: &[Speaker]) -> Option<(usize, usize)> {
    if speakers.len() != 2 {
        return None;
    }
    let (a, b) = (speakers[0].dir, speakers[1].dir);
    let (l, r) = if a.azimuth_deg > b.azimuth_deg {
        (0, 1)
    } else {
        (1, 0)
    };
    let (dl, dr) = (speakers[l].dir, speakers[r].dir);
    let mirrored = (dl.azimuth_deg + dr.azimuth_deg).abs() <= 1.0
        && (dl.elevation_deg - dr.elevation_deg).abs() <= 1.0;
    let frontal = (10.0..=80.0).contains(&dl.azimuth_deg);
    let ear_level = dl.elevation_deg.abs() <= 20.0 && dr.elevation_deg.abs() <= 20.0;
    (mirrored && frontal && ear_level).then_some((l, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(name: &str) -> Panner {
        Panner::new(&Layout::builtin(name).unwrap()).unwrap()
    }

    #[test]
    fn hull_of_octahedron_has_eight_triangles() {
        let pts = [
            [1.0, 0.0, 0.0],
            [-1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, -1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, -1.0],
        ];
        let faces = hull_faces(&pts).unwrap();
        assert_eq!(faces.len(), 8);
        assert!(faces.iter().all(|f| f.len() == 3));
    }

    #[test]
    fn hull_keeps_planar_quads_whole() {
        // A cube: six square faces.
        let s = 1.0 / 3f64.sqrt();
        let mut pts = Vec::new();
        for x in [-s, s] {
            for y in [-s, s] {
                for z in [-s, s] {
                    pts.push([x, y, z]);
                }
            }
        }
        let faces = hull_faces(&pts).unwrap();
        assert_eq!(faces.len(), 6);
        assert!(faces.iter().all(|f| f.len() == 4));
    }

    #[test]
    fn hull_rejects_a_hemisphere() {
        let pts = [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.6, 0.8],
        ];
        assert!(hull_faces(&pts).is_err());
    }

    #[test]
    fn virtual_speakers_of_714() {
        let p = builtin("7.1.4");
        let v = p.virtual_speakers();
        let kinds: Vec<VirtualKind> = v.iter().map(|s| s.kind).collect();
        assert!(kinds.contains(&VirtualKind::Zenith));
        assert!(kinds.contains(&VirtualKind::Nadir));
        // The back face Lrs–Rrs–Rtr–Ltr gets a centre speaker straight behind.
        let back: Vec<&VirtualSpeaker> = v
            .iter()
            .filter(|s| s.kind == VirtualKind::FaceCentre)
            .collect();
        assert!(
            back.iter()
                .any(|s| (s.direction.azimuth_deg.abs() - 180.0).abs() < 1e-6
                    && s.direction.elevation_deg > 0.0
                    && s.feeds.len() == 4),
            "{back:?}"
        );
        // The zenith feeds the four top speakers at 1/2 each.
        let z = v.iter().find(|s| s.kind == VirtualKind::Zenith).unwrap();
        let mut chans: Vec<usize> = z.feeds.iter().map(|f| f.0).collect();
        chans.sort_unstable();
        assert_eq!(chans, vec![8, 9, 10, 11]);
        assert!(z.feeds.iter().all(|f| (f.1 - 0.5).abs() < 1e-12));
    }

    #[test]
    fn triangulation_is_mirror_symmetric() {
        for layout in Layout::builtins() {
            let p = Panner::new(&layout).unwrap();
            let tris = p.triangles();
            for t in &tris {
                let m = t.map(|d| d.mirrored());
                let found = tris.iter().any(|o| {
                    m.iter()
                        .all(|d| o.iter().any(|e| d.angle_to_deg(*e) < 1e-6))
                });
                assert!(found, "{}: mirror of {t:?} missing", layout.name);
            }
        }
    }

    #[test]
    fn three_point_zero_gets_gap_fill() {
        let l = Layout::parse(
            "(name: \"lcr\", channels: [
                (label: \"L\", azimuth: 30, elevation: 0),
                (label: \"R\", azimuth: -30, elevation: 0),
                (label: \"C\", azimuth: 0, elevation: 0),
            ])",
            "lcr.ron",
        )
        .unwrap();
        let p = Panner::new(&l).unwrap();
        let gaps = p
            .virtual_speakers()
            .iter()
            .filter(|s| s.kind == VirtualKind::GapFill)
            .count();
        assert_eq!(gaps, 3);
    }

    #[test]
    fn coincident_speakers_are_an_error() {
        let l = Layout::parse(
            "(name: \"twin\", channels: [
                (label: \"A\", azimuth: 30, elevation: 0),
                (label: \"B\", azimuth: 30.1, elevation: 0),
                (label: \"C\", azimuth: -90, elevation: 0),
            ])",
            "twin.ron",
        )
        .unwrap();
        let e = Panner::new(&l).unwrap_err().to_string();
        assert!(
            e.contains("twin") && e.contains("A") && e.contains("B"),
            "{e}"
        );
    }

    #[test]
    fn only_lfe_is_an_error() {
        let mut l = Layout::builtin("5.1").unwrap();
        l.channels.retain(|c| c.lfe);
        let e = Panner::new(&l).unwrap_err();
        assert!(matches!(e, PannerError::NoSpeakers { .. }), "{e}");
    }

    #[test]
    fn wrong_buffer_length_does_not_panic_in_release() {
        if cfg!(debug_assertions) {
            return;
        }
        let p = builtin("5.1");
        let mut short = [9.0; 3];
        p.point_gains(Direction::new(0.0, 0.0), &mut short);
        assert_eq!(short, [0.0, 0.0, 1.0]);
    }
}
