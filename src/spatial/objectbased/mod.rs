//! The ITU-R BS.2127 object renderer's gain calculation (§7.3): object metadata (ADM
//! `audioBlockFormat` of type Objects) → one direct and one diffuse gain per layout
//! channel. Screen scaling and edge lock, channel lock, divergence, polar extent or the
//! allocentric (Cartesian) panner and extent, zone exclusion, gain and the diffuse split,
//! in the standard's order. Everything that depends only on the layout is precomputed
//! in [`GainCalc::new`], and what depends only on an object's static controls (the
//! reduced allocentric panners of its excluded zones) in
//! [`GainCalc::metadata_template`]; with such metadata [`GainCalc::gains`] does not
//! allocate (`tests/engine_alloc.rs`).

pub mod allocentric;
pub mod decorrelate;
pub mod extent;
pub mod geom;
pub mod layouts;
pub mod point_source;
pub mod screen;
pub mod zones;

use allocentric::{AlloExtent, AlloHint, AllocentricPanner, allocentric_excluded};
use extent::PolarExtent;
use geom::{Vec3, azimuth_deg, cart, elevation_deg, local_coordinate_system, norm, sub};
use layouts::{Speaker, speakers_of};
use point_source::{PointSourceError, PointSourcePanner, RegionHint};
use screen::{Edges, HorizontalEdge, VerticalEdge};
use thiserror::Error;
use zones::{Zone, ZoneExclusion};

use crate::scene::layout::Layout;

/// Largest number of channels (LFE included) a layout may have.
pub const MAX_SPEAKERS: usize = 64;

/// Errors of the gain calculator: a layout it cannot pan on.
#[derive(Debug, Error)]
pub enum GainCalcError {
    #[error("layout '{layout}': {source}")]
    /// The point-source panner cannot be built on the layout.
    PointSource {
        /// Name of the layout.
        layout: String,
        /// Why the point-source panner failed.
        #[source]
        source: PointSourceError,
    },
    #[error("layout '{layout}': {speakers} channels; at most {max} are supported")]
    /// The layout has more channels than `MAX_SPEAKERS` (64).
    TooManySpeakers {
        /// Name of the layout.
        layout: String,
        /// Channels of the layout (LFE included).
        speakers: usize,
        /// Most channels supported.
        max: usize,
    },
}

/// An object's position as authored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObjectPosition {
    Polar {
        azimuth_deg: f64,
        elevation_deg: f64,
        distance: f64,
    },
    Cartesian {
        x: f64,
        y: f64,
        z: f64,
    },
}

/// `channelLock`: snap to the nearest speaker, if one is within `max_distance` (`None`:
/// any distance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelLock {
    pub max_distance: Option<f64>,
}

/// `objectDivergence`: the object split into three (left, centre, right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// 0 (none) … 1 (all in the outer two).
    pub value: f64,
    /// Polar objects: half the angle between the outer two, degrees (default 45).
    pub azimuth_range_deg: Option<f64>,
    /// Cartesian objects: the x offset of the outer two (default 0).
    pub position_range: Option<f64>,
}

/// One block of object metadata, as BS.2127's gain calculation reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectMetadata {
    pub position: ObjectPosition,
    /// The block's `cartesian` flag: which panner (allocentric or polar) is used.
    pub cartesian: bool,
    /// Polar: degrees; Cartesian: 0…2 (the size along x).
    pub width: f64,
    /// Polar: degrees; Cartesian: 0…2 (the size along z).
    pub height: f64,
    /// Polar: 0…1 distance; Cartesian: 0…2 (the size along y).
    pub depth: f64,
    /// Linear gain.
    pub gain: f64,
    /// 0 (direct) … 1 (all diffuse).
    pub diffuse: f64,
    pub channel_lock: Option<ChannelLock>,
    pub divergence: Option<Divergence>,
    pub screen_ref: bool,
    pub screen_edge_lock_horizontal: Option<HorizontalEdge>,
    pub screen_edge_lock_vertical: Option<VerticalEdge>,
    pub zone_exclusion: Vec<Zone>,
    /// The edges of the programme's reference screen (`None`: the default screen), see
    /// [`screen::reference_edges`].
    pub reference_screen: Option<Edges>,
    /// The allocentric panners of the speakers `zone_exclusion` leaves to a Cartesian
    /// object, built by [`GainCalc::metadata_template`] so that the gain calculation does
    /// not allocate (`None`: built when needed).
    pub reduced_allocentric: Option<std::sync::Arc<ReducedAllocentric>>,
}

/// The allocentric point and extent panners of a layout without the speakers zone
/// exclusion removes (§7.3.12), for one set of removed speakers.
#[derive(Debug)]
pub struct ReducedAllocentric {
    /// Bit `s` for each removed speaker.
    excluded: u64,
    /// The speakers kept, in layout order (the reduced panners' outputs).
    kept: Vec<usize>,
    point: AllocentricPanner,
    extent: AlloExtent,
}

impl ReducedAllocentric {
    fn new(positions: &[Vec3], excluded: &[bool]) -> ReducedAllocentric {
        let kept: Vec<usize> = (0..excluded.len()).filter(|&s| !excluded[s]).collect();
        let pos: Vec<Vec3> = kept.iter().map(|&s| positions[s]).collect();
        ReducedAllocentric {
            excluded: excluded_mask(excluded),
            point: AllocentricPanner::new(&pos),
            extent: AlloExtent::new(&pos),
            kept,
        }
    }

    /// The gains of the kept speakers into `out` (every speaker; the removed ones 0).
    fn gains(&self, p: Vec3, meta: &ObjectMetadata, point: bool, out: &mut [f64]) {
        let mut g = [0.0; MAX_SPEAKERS];
        let g = &mut g[..self.kept.len()];
        if point {
            self.point.handle(p, g);
        } else {
            self.extent.gains(p, meta.width, meta.height, meta.depth, g);
        }
        out.fill(0.0);
        for (&s, &x) in self.kept.iter().zip(g.iter()) {
            out[s] = x;
        }
    }
}

/// Two sets of removed speakers of one layout give the same panners.
impl PartialEq for ReducedAllocentric {
    fn eq(&self, other: &Self) -> bool {
        self.excluded == other.excluded && self.kept == other.kept
    }
}

/// Bit `s` set for each `true` (at most [`MAX_SPEAKERS`] = 64 speakers).
fn excluded_mask(excluded: &[bool]) -> u64 {
    excluded
        .iter()
        .enumerate()
        .fold(0, |m, (s, &e)| m | (u64::from(e) << s))
}

impl Default for ObjectMetadata {
    fn default() -> Self {
        ObjectMetadata {
            position: ObjectPosition::Polar {
                azimuth_deg: 0.0,
                elevation_deg: 0.0,
                distance: 1.0,
            },
            cartesian: false,
            width: 0.0,
            height: 0.0,
            depth: 0.0,
            gain: 1.0,
            diffuse: 0.0,
            channel_lock: None,
            divergence: None,
            screen_ref: false,
            screen_edge_lock_horizontal: None,
            screen_edge_lock_vertical: None,
            zone_exclusion: Vec::new(),
            reference_screen: None,
            reduced_allocentric: None,
        }
    }
}

/// Per-object lookup state kept between calls (a cache only: it never changes gains):
/// the point-source region last found, the sine and cosine of the last polar
/// elevation (objects often move at a constant height), and the allocentric panner's
/// last pans per axis.
#[derive(Debug, Clone, Copy)]
pub struct GainHint {
    region: RegionHint,
    allo: AlloHint,
    elevation_deg: f64,
    sin_el: f64,
    cos_el: f64,
}

impl Default for GainHint {
    fn default() -> Self {
        GainHint {
            region: RegionHint::default(),
            allo: AlloHint::default(),
            elevation_deg: f64::NAN, // matches no elevation: the first call computes it
            sin_el: 0.0,
            cos_el: 1.0,
        }
    }
}

/// The gain calculator for one layout.
#[derive(Debug, Clone)]
pub struct GainCalc {
    n_channels: usize,
    speakers: Vec<Speaker>,
    /// The point-source panner (inside) and the polar extent's spreading grid.
    extent: PolarExtent,
    zones: ZoneExclusion,
    allo_positions: Vec<Vec3>,
    allo: AllocentricPanner,
    /// The point-source and allocentric panners writing the layout's channels directly
    /// (LFE 0): the engine's point-source path.
    psp_channels: PointSourcePanner,
    allo_channels: AllocentricPanner,
    allo_extent: AlloExtent,
    /// Real unit vectors of the speakers (polar channel lock).
    real: Vec<Vec3>,
    /// Channel-lock tie-break priority of each speaker (lower wins).
    priority: Vec<usize>,
    reproduction_screen: Edges,
    has_u045: bool,
}

impl GainCalc {
    /// Builds the BS.2127 gain calculator for a layout (point-source triangulation, screen, zones).
    pub fn new(layout: &Layout) -> Result<GainCalc, GainCalcError> {
        let speakers = speakers_of(layout);
        if layout.channels.len() > MAX_SPEAKERS {
            return Err(GainCalcError::TooManySpeakers {
                layout: layout.name.clone(),
                speakers: layout.channels.len(),
                max: MAX_SPEAKERS,
            });
        }
        let psp =
            PointSourcePanner::new(&speakers).map_err(|source| GainCalcError::PointSource {
                layout: layout.name.clone(),
                source,
            })?;
        let outputs: Vec<usize> = speakers.iter().map(|s| s.channel).collect();
        let width = layout.channels.len();
        let psp_channels = psp.with_outputs(&outputs, width);
        let extent = PolarExtent::new(psp);
        let allo_positions: Vec<Vec3> = speakers.iter().map(|s| s.allocentric).collect();
        let allo = AllocentricPanner::new(&allo_positions);
        let allo_channels = allo.with_outputs(&outputs, width);
        let mut order: Vec<usize> = (0..speakers.len()).collect();
        let key = |s: &Speaker| {
            [
                s.real_elevation_deg.abs(),
                s.real_elevation_deg,
                s.real_azimuth_deg.abs(),
                s.real_azimuth_deg,
            ]
        };
        order.sort_by(|&a, &b| {
            let (ka, kb) = (key(&speakers[a]), key(&speakers[b]));
            ka.iter()
                .zip(&kb)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut priority = vec![0; speakers.len()];
        for (rank, &i) in order.iter().enumerate() {
            priority[i] = rank;
        }
        Ok(GainCalc {
            n_channels: layout.channels.len(),
            extent,
            zones: ZoneExclusion::new(&speakers),
            allo,
            psp_channels,
            allo_channels,
            allo_extent: AlloExtent::new(&allo_positions),
            real: speakers.iter().map(|s| s.real()).collect(),
            has_u045: speakers.iter().any(|s| s.label == "U+045"),
            allo_positions,
            priority,
            reproduction_screen: Edges::of(&screen::DEFAULT_SCREEN),
            speakers,
        })
    }

    /// Number of layout channels (LFE included; LFE gains are always 0).
    pub fn num_channels(&self) -> usize {
        self.n_channels
    }

    /// The non-LFE speakers, in channel order.
    pub fn speakers(&self) -> &[Speaker] {
        &self.speakers
    }

    /// Direct and diffuse gains (one per layout channel) of one block of metadata.
    pub fn gains(
        &self,
        meta: &ObjectMetadata,
        hint: &mut GainHint,
        direct: &mut [f64],
        diffuse: &mut [f64],
    ) {
        let n = self.speakers.len();
        let mut g = [0.0; MAX_SPEAKERS];
        self.speaker_gains(meta, hint, &mut g[..n]);
        direct[..self.n_channels].fill(0.0);
        diffuse[..self.n_channels].fill(0.0);
        let d = meta.diffuse.clamp(0.0, 1.0);
        let (kd, kf) = ((1.0 - d).sqrt() * meta.gain, d.sqrt() * meta.gain);
        for (s, spk) in self.speakers.iter().enumerate() {
            let v = if g[s].is_finite() { g[s] } else { 0.0 };
            direct[spk.channel] = v * kd;
            diffuse[spk.channel] = v * kf;
        }
    }

    /// Power-normalised gains per non-LFE speaker, before `gain` and `diffuse`.
    fn speaker_gains(&self, meta: &ObjectMetadata, hint: &mut GainHint, out: &mut [f64]) {
        let n = self.speakers.len();
        let mut position = match meta.position {
            ObjectPosition::Polar {
                azimuth_deg,
                elevation_deg,
                distance,
            } => cart(azimuth_deg, elevation_deg, distance),
            ObjectPosition::Cartesian { x, y, z } => {
                [x.clamp(-1.0, 1.0), y.clamp(-1.0, 1.0), z.clamp(-1.0, 1.0)]
            }
        };
        let cartesian = meta.cartesian;
        // Screen scaling (§7.3.3).
        if meta.screen_ref {
            let reference = meta
                .reference_screen
                .unwrap_or_else(|| Edges::of(&screen::DEFAULT_SCREEN));
            let rep = &self.reproduction_screen;
            if cartesian {
                let (az, el, d) =
                    screen::point_cart_to_polar(position[0], position[1], position[2]);
                let (az, el) = screen::scale_az_el(&reference, rep, az, el);
                let (az, el) = screen::compensate_position(az, el, self.has_u045);
                position = screen::point_polar_to_cart(az, el, d);
            } else {
                let (az, el, d) = (
                    azimuth_deg(position),
                    elevation_deg(position),
                    norm(position),
                );
                let (az, el) = screen::scale_az_el(&reference, rep, az, el);
                position = cart(az, el, d);
            }
        }
        // Screen edge lock (§7.3.4).
        if meta.screen_edge_lock_horizontal.is_some() || meta.screen_edge_lock_vertical.is_some() {
            let rep = &self.reproduction_screen;
            let lock = |az: f64, el: f64| {
                let az = match meta.screen_edge_lock_horizontal {
                    Some(HorizontalEdge::Left) => rep.left_azimuth_deg,
                    Some(HorizontalEdge::Right) => rep.right_azimuth_deg,
                    None => az,
                };
                let el = match meta.screen_edge_lock_vertical {
                    Some(VerticalEdge::Top) => rep.top_elevation_deg,
                    Some(VerticalEdge::Bottom) => rep.bottom_elevation_deg,
                    None => el,
                };
                (az, el)
            };
            if cartesian {
                let (az, el, d) =
                    screen::point_cart_to_polar(position[0], position[1], position[2]);
                let (az, el) = lock(az, el);
                let (az, el) = screen::compensate_position(az, el, self.has_u045);
                position = screen::point_polar_to_cart(az, el, d);
            } else {
                let (az, el, d) = (
                    azimuth_deg(position),
                    elevation_deg(position),
                    norm(position),
                );
                let (az, el) = lock(az, el);
                position = cart(az, el, d);
            }
        }

        let mut excluded = [false; MAX_SPEAKERS];
        self.zones
            .excluded(&meta.zone_exclusion, &mut excluded[..n]);
        if cartesian {
            allocentric_excluded(&self.allo_positions, &mut excluded[..n]);
            if let Some(lock) = meta.channel_lock {
                position = self.lock(
                    position,
                    lock,
                    &self.allo_positions,
                    &excluded[..n],
                    [1.0 / 16.0, 4.0, 32.0],
                );
            }
        } else if let Some(lock) = meta.channel_lock {
            position = self.lock(
                position,
                lock,
                &self.real,
                &[false; MAX_SPEAKERS][..n],
                [1.0; 3],
            );
        }

        // Divergence (§7.3.7): up to three positions with power weights.
        let mut positions = [position; 3];
        let mut weights = [1.0, 0.0, 0.0];
        let mut count = 1;
        if let Some(div) = meta.divergence
            && div.value != 0.0
        {
            let v = div.value;
            let (gl, gc) = (v / (v + 1.0), (1.0 - v) / (v + 1.0));
            weights = [gl, gc, gl];
            count = 3;
            if cartesian {
                let r = div.position_range.unwrap_or(0.0);
                let c = |p: Vec3| p.map(|x| x.clamp(-1.0, 1.0));
                positions = [
                    c([position[0] + r, position[1], position[2]]),
                    c(position),
                    c([position[0] - r, position[1], position[2]]),
                ];
            } else {
                let range = div.azimuth_range_deg.unwrap_or(45.0);
                let d = norm(position);
                let m = local_coordinate_system(azimuth_deg(position), elevation_deg(position));
                let rot = |p: Vec3| {
                    [
                        p[0] * m[0][0] + p[1] * m[1][0] + p[2] * m[2][0],
                        p[0] * m[0][1] + p[1] * m[1][1] + p[2] * m[2][1],
                        p[0] * m[0][2] + p[1] * m[1][2] + p[2] * m[2][2],
                    ]
                };
                positions = [
                    rot(cart(range, 0.0, d)),
                    position,
                    rot(cart(-range, 0.0, d)),
                ];
            }
        }

        let mut power = [0.0; MAX_SPEAKERS];
        let mut one = [0.0; MAX_SPEAKERS];
        for k in 0..count {
            let p = positions[k];
            if cartesian {
                self.allocentric_gains(p, meta, &excluded[..n], &mut one[..n]);
            } else {
                self.extent.gains(
                    p,
                    meta.width,
                    meta.height,
                    meta.depth,
                    &mut hint.region,
                    &mut one[..n],
                );
            }
            for s in 0..n {
                power[s] += weights[k] * one[s] * one[s];
            }
        }
        for s in 0..n {
            out[s] = power[s].sqrt();
        }
        if !cartesian {
            self.zones.apply(&excluded[..n], out);
        }
    }

    fn allocentric_gains(
        &self,
        p: Vec3,
        meta: &ObjectMetadata,
        excluded: &[bool],
        out: &mut [f64],
    ) {
        let n = self.speakers.len();
        let point = meta.width == 0.0 && meta.height == 0.0 && meta.depth == 0.0;
        if !excluded.iter().any(|&e| e) {
            if point {
                self.allo.handle(p, out);
            } else {
                self.allo_extent
                    .gains(p, meta.width, meta.height, meta.depth, out);
            }
            return;
        }
        // A reduced speaker set (zone exclusion): the template's panners (built with the
        // metadata, so nothing is allocated here), or built now for metadata made
        // without a template.
        match meta.reduced_allocentric.as_deref() {
            Some(r) if r.excluded == excluded_mask(&excluded[..n]) => {
                r.gains(p, meta, point, &mut out[..n]);
            }
            _ => ReducedAllocentric::new(&self.allo_positions, &excluded[..n]).gains(
                p,
                meta,
                point,
                &mut out[..n],
            ),
        }
    }

    /// Channel lock (§7.3.6): the position of the nearest allowed speaker within the
    /// lock's distance (weighted per axis), ties to the highest-priority speaker.
    fn lock(
        &self,
        position: Vec3,
        lock: ChannelLock,
        positions: &[Vec3],
        excluded: &[bool],
        w: [f64; 3],
    ) -> Vec3 {
        let tol = 1e-5;
        let candidates = (0..positions.len()).filter(|&s| {
            !excluded[s]
                && lock
                    .max_distance
                    .is_none_or(|m| norm(sub(position, positions[s])) < m + tol)
        });
        let wdist = |s: usize| {
            let d = sub(position, positions[s]);
            (w[0] * d[0] * d[0] + w[1] * d[1] * d[1] + w[2] * d[2] * d[2]).sqrt()
        };
        let min = candidates.clone().map(wdist).fold(f64::INFINITY, f64::min);
        if !min.is_finite() {
            return position;
        }
        candidates
            .filter(|&s| wdist(s) < min + tol)
            .min_by_key(|&s| self.priority[s])
            .map_or(position, |s| positions[s])
    }
}

/// The BS.2127 metadata of a halo object: a Cartesian position is an allocentric
/// (`cartesian="1"`) object with `width = height = depth = size` (the Dolby Atmos rule);
/// a polar one a polar object with `width = height = 360° × size`. Size is clamped to
/// 0…1; non-finite coordinates count as 0.
pub fn halo_metadata(position: crate::scene::geometry::Position, size: f64) -> ObjectMetadata {
    use crate::scene::geometry::Position;
    let s = if size.is_finite() {
        size.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
    match position {
        Position::Cartesian { x, y, z } => ObjectMetadata {
            position: ObjectPosition::Cartesian {
                x: fin(x),
                y: fin(y),
                z: fin(z),
            },
            cartesian: true,
            width: s,
            height: s,
            depth: s,
            ..ObjectMetadata::default()
        },
        Position::Polar {
            azimuth_deg,
            elevation_deg,
            distance,
        } => ObjectMetadata {
            position: ObjectPosition::Polar {
                azimuth_deg: fin(azimuth_deg),
                elevation_deg: fin(elevation_deg),
                distance: if distance.is_finite() { distance } else { 1.0 },
            },
            width: 360.0 * s,
            height: 360.0 * s,
            ..ObjectMetadata::default()
        },
    }
}

impl GainCalc {
    /// Direct gains (one per layout channel) of a halo object position and size (see
    /// `halo_metadata`).
    pub fn position_gains(
        &self,
        position: crate::scene::geometry::Position,
        size: f64,
        out: &mut [f64],
    ) {
        self.position_gains_hinted(position, size, &mut GainHint::default(), out);
    }

    /// [`GainCalc::position_gains`] for one of many moving objects, keeping its lookup
    /// state in `hint` (the region it was last found in is tried first; the gains are
    /// the same whichever region takes a direction on a shared edge, within rounding).
    /// Point sources skip straight to the point-source or allocentric panner.
    pub fn position_gains_hinted(
        &self,
        position: crate::scene::geometry::Position,
        size: f64,
        hint: &mut GainHint,
        out: &mut [f64],
    ) {
        out[..self.n_channels].fill(0.0);
        self.position_gains_into_zeroed(position, size, hint, out);
    }

    /// [`GainCalc::position_gains_hinted`] into `out[..n]` (one per layout channel) that
    /// is all zero on entry: point sources write only the channels of the speakers
    /// around them. Returns the channels written (bit `c` for channel `c`; every channel
    /// when the general calculation ran); the others stay 0. The same gains.
    pub fn position_gains_into_zeroed(
        &self,
        position: crate::scene::geometry::Position,
        size: f64,
        hint: &mut GainHint,
        out: &mut [f64],
    ) -> u64 {
        use crate::scene::geometry::Position;
        let point = !(size.is_finite() && size > 0.0);
        if point {
            // The panners write the layout's channels directly (LFE 0).
            match position {
                Position::Cartesian { x, y, z }
                    if x.is_finite() && y.is_finite() && z.is_finite() =>
                {
                    let c = |v: f64| v.clamp(-1.0, 1.0);
                    return self.allo_channels.handle_into_zeroed(
                        [c(x), c(y), c(z)],
                        &mut hint.allo,
                        out,
                    );
                }
                Position::Polar {
                    azimuth_deg,
                    elevation_deg,
                    distance,
                } if azimuth_deg.is_finite() && elevation_deg.is_finite() && distance == 1.0 => {
                    if elevation_deg != hint.elevation_deg {
                        (hint.sin_el, hint.cos_el) = geom::sin_cos_deg(elevation_deg);
                        hint.elevation_deg = elevation_deg;
                    }
                    let p = geom::cart_with_elevation(azimuth_deg, hint.sin_el, hint.cos_el, 1.0);
                    return self
                        .psp_channels
                        .handle_into_zeroed(p, &mut hint.region, out);
                }
                _ => {}
            }
        }
        self.general(position, size, hint, out);
        let n = self.n_channels;
        if n >= 64 { u64::MAX } else { (1 << n) - 1 }
    }

    fn general(
        &self,
        position: crate::scene::geometry::Position,
        size: f64,
        hint: &mut GainHint,
        out: &mut [f64],
    ) {
        let mut diffuse = [0.0; MAX_SPEAKERS];
        let n = self.n_channels;
        let meta = halo_metadata(position, size);
        self.gains(&meta, hint, out, &mut diffuse[..n]);
    }
}

impl GainCalc {
    /// The metadata of a halo object on this layout, with everything that does not
    /// change over time filled in from `controls` (zones resolved against the layout's
    /// speakers); `set_metadata` fills the keyframed values per gain point.
    pub fn metadata_template(
        &self,
        layout: &Layout,
        controls: &crate::scene::mix::ObjectControls,
    ) -> ObjectMetadata {
        use crate::scene::mix::{ExclusionZone, ScreenEdge};
        let zone_exclusion: Vec<Zone> = controls
            .zones
            .iter()
            .filter_map(|z| match z {
                ExclusionZone::Cartesian {
                    min_x,
                    max_x,
                    min_y,
                    max_y,
                    min_z,
                    max_z,
                } => Some(Zone::Cartesian {
                    min_x: *min_x,
                    max_x: *max_x,
                    min_y: *min_y,
                    max_y: *max_y,
                    min_z: *min_z,
                    max_z: *max_z,
                }),
                ExclusionZone::Polar {
                    min_azimuth_deg,
                    max_azimuth_deg,
                    min_elevation_deg,
                    max_elevation_deg,
                } => Some(Zone::Polar {
                    min_elevation_deg: *min_elevation_deg,
                    max_elevation_deg: *max_elevation_deg,
                    min_azimuth_deg: *min_azimuth_deg,
                    max_azimuth_deg: *max_azimuth_deg,
                }),
                ExclusionZone::Speaker(name) => {
                    let s = self.speakers.iter().find(|s| {
                        layout.channels.get(s.channel).is_some_and(|c| {
                            c.name.eq_ignore_ascii_case(name) || c.label.eq_ignore_ascii_case(name)
                        })
                    })?;
                    Some(Zone::Polar {
                        min_elevation_deg: s.nominal_elevation_deg,
                        max_elevation_deg: s.nominal_elevation_deg,
                        min_azimuth_deg: s.nominal_azimuth_deg,
                        max_azimuth_deg: s.nominal_azimuth_deg,
                    })
                }
            })
            .collect();
        let edge = |e: ScreenEdge| controls.screen_edge_lock.contains(&e);
        ObjectMetadata {
            channel_lock: controls.snap.map(|s| ChannelLock {
                max_distance: s.max_distance,
            }),
            screen_ref: controls.screen_ref,
            screen_edge_lock_horizontal: if edge(ScreenEdge::Left) {
                Some(HorizontalEdge::Left)
            } else if edge(ScreenEdge::Right) {
                Some(HorizontalEdge::Right)
            } else {
                None
            },
            screen_edge_lock_vertical: if edge(ScreenEdge::Top) {
                Some(VerticalEdge::Top)
            } else if edge(ScreenEdge::Bottom) {
                Some(VerticalEdge::Bottom)
            } else {
                None
            },
            reduced_allocentric: self.reduced_allocentric(&zone_exclusion),
            zone_exclusion,
            reference_screen: controls
                .reference_screen
                .map(|s| screen::reference_edges(&s)),
            ..ObjectMetadata::default()
        }
    }

    /// Builds what `meta`'s zone exclusion needs ahead of [`GainCalc::gains`] (the
    /// reduced allocentric panners of a Cartesian object), so that the gain calculation
    /// does not allocate; the gains are the same with or without it.
    pub fn prepare(&self, meta: &mut ObjectMetadata) {
        meta.reduced_allocentric = self.reduced_allocentric(&meta.zone_exclusion);
    }

    /// The reduced allocentric panners a Cartesian object with these zones uses (`None`
    /// when the zones remove no speaker).
    fn reduced_allocentric(&self, zones: &[Zone]) -> Option<std::sync::Arc<ReducedAllocentric>> {
        let n = self.speakers.len();
        let mut excluded = [false; MAX_SPEAKERS];
        self.zones.excluded(zones, &mut excluded[..n]);
        allocentric_excluded(&self.allo_positions, &mut excluded[..n]);
        excluded[..n].iter().any(|&e| e).then(|| {
            std::sync::Arc::new(ReducedAllocentric::new(
                &self.allo_positions,
                &excluded[..n],
            ))
        })
    }
}

/// The keyframed values of a halo object at one gain point, as BS.2127 metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectValues {
    pub position: crate::scene::geometry::Position,
    /// 0…1: the shorthand used when `extent` is `None`.
    pub size: f64,
    pub extent: Option<crate::scene::mix::Extent>,
    pub diffuse: f64,
    pub divergence: f64,
    /// Polar `azimuthRange` or Cartesian `positionRange`.
    pub divergence_range: Option<f64>,
}

/// Fills `meta` (made by [`GainCalc::metadata_template`]) with an object's values at one
/// gain point: the position and its kind, the extent (from `size` by the rule of
/// [`halo_metadata`] when there is no explicit extent), diffuse and divergence.
/// Non-finite values count as 0 (a position as the front).
pub fn set_metadata(meta: &mut ObjectMetadata, v: &ObjectValues) {
    let base = halo_metadata(v.position, v.size);
    meta.position = base.position;
    meta.cartesian = base.cartesian;
    let fin = |x: f64, hi: f64| if x.is_finite() { x.clamp(0.0, hi) } else { 0.0 };
    match v.extent {
        Some(e) if meta.cartesian => {
            meta.width = fin(e.width, 2.0);
            meta.height = fin(e.height, 2.0);
            meta.depth = fin(e.depth, 2.0);
        }
        Some(e) => {
            meta.width = fin(e.width, 360.0);
            meta.height = fin(e.height, 360.0);
            meta.depth = fin(e.depth, 1.0);
        }
        None => {
            meta.width = base.width;
            meta.height = base.height;
            meta.depth = base.depth;
        }
    }
    meta.diffuse = fin(v.diffuse, 1.0);
    let d = fin(v.divergence, 1.0);
    meta.divergence = (d > 0.0).then(|| Divergence {
        value: d,
        azimuth_range_deg: if meta.cartesian {
            None
        } else {
            v.divergence_range.filter(|r| r.is_finite())
        },
        position_range: if meta.cartesian {
            v.divergence_range.filter(|r| r.is_finite())
        } else {
            None
        },
    });
}

impl GainCalc {
    /// Direct and diffuse gains (one per layout channel) of a halo object with its BS.2127
    /// controls, their keyframed values taken at time 0 (`halo gains`).
    pub fn object_gains(
        &self,
        layout: &Layout,
        position: crate::scene::geometry::Position,
        size: f64,
        controls: &crate::scene::mix::ObjectControls,
        direct: &mut [f64],
        diffuse: &mut [f64],
    ) {
        let mut meta = self.metadata_template(layout, controls);
        set_metadata(
            &mut meta,
            &ObjectValues {
                position,
                size,
                extent: controls.extent.as_ref().map(|e| e.first_value()),
                diffuse: controls.diffuse.first_value(),
                divergence: controls.divergence.first_value(),
                divergence_range: controls.divergence_range,
            },
        );
        self.gains(&meta, &mut GainHint::default(), direct, diffuse);
    }
}
