//! ITU-R BS.2127 §6 point-source panner: the layout (nominal positions) completed with
//! extra speakers in layer gaps and virtual speakers at the poles, its convex hull split
//! into triangles (VBAP), quadrilaterals (bilinear panning) and virtual n-gons around
//! the poles, built on the real speaker positions; 0+2+0 is panned on 0+5+0 and
//! downmixed. Metadata → gains only; everything geometric is precomputed.

use super::geom::{Vec3, cross, dot, inverse3, ngon_vertex_order, norm, row_times, scale, sub};
use super::layouts::Speaker;
use crate::spatial::panner::Channels;

/// Hull facets lie on a plane within this distance (unit vectors).
const PLANE_EPS: f64 = 1e-6;
/// A barycentric weight at least this (negative) value counts as inside a triangle.
const TRIPLET_EPS: f64 = -1e-11;
/// Tolerance for a quad's axis parameter being in 0…1 (and real).
const QUAD_EPS: f64 = 1e-10;

/// Why the panner cannot be built for a layout.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointSourceError {
    #[error("no loudspeakers to pan to")]
    NoSpeakers,
    #[error("the loudspeakers do not surround the listener (their hull is flat)")]
    Flat,
    #[error("loudspeakers {first} and {second} are at the same place")]
    Coincident { first: String, second: String },
}

#[derive(Debug, Clone)]
struct Triplet {
    /// Internal speaker indices.
    ch: [usize; 3],
    /// Inverse of the matrix whose rows are the three (real) positions.
    inv: [Vec3; 3],
}

impl Triplet {
    fn new(ch: [usize; 3], pos: [Vec3; 3]) -> Option<Triplet> {
        inverse3(pos).map(|inv| Triplet { ch, inv })
    }

    /// Normalised, non-negative gains if `p` lies in the triangle's cone.
    #[inline]
    fn handle(&self, p: Vec3) -> Option<Vec3> {
        let g = row_times(p, &self.inv);
        if g[0] >= TRIPLET_EPS && g[1] >= TRIPLET_EPS && g[2] >= TRIPLET_EPS {
            let k = 1.0 / norm(g);
            Some(g.map(|x| (x * k).clamp(0.0, 1.0)))
        } else {
            None
        }
    }
}

/// Real speakers around a virtual centre speaker whose gain goes to all of them
/// equally (`1/√n` each), then renormalised.
#[derive(Debug, Clone)]
struct VirtualNgon {
    ch: Vec<usize>,
    /// Triangle `k`: corners `ch[k]`, `ch[(k + 1) % n]` and the centre.
    tris: Vec<Triplet>,
    centre_gain: f64,
}

#[derive(Debug, Clone)]
struct Quad {
    /// Internal speaker indices, in order around the quad.
    ch: [usize; 4],
    pos: [Vec3; 4],
    axis_x: [Vec3; 3],
    axis_y: [Vec3; 3],
}

impl Quad {
    fn axis(p: [Vec3; 4]) -> [Vec3; 3] {
        let [a, b, c, d] = p;
        let ba = sub(b, a);
        let cd = sub(c, d);
        let mid = cross(a, cd);
        let mid2 = cross(ba, d);
        [
            cross(ba, cd),
            [mid[0] + mid2[0], mid[1] + mid2[1], mid[2] + mid2[2]],
            cross(a, d),
        ]
    }

    /// The root in 0…1 of `A t² + B t + C = 0` for the axis polynomial at `p`.
    fn solve(poly: &[Vec3; 3], p: Vec3) -> Option<f64> {
        let (a, b, c) = (dot(poly[0], p), dot(poly[1], p), dot(poly[2], p));
        let accept = |t: f64| (-QUAD_EPS < t && t < 1.0 + QUAD_EPS).then(|| t.clamp(0.0, 1.0));
        if a == 0.0 {
            if b == 0.0 {
                return None;
            }
            return accept(-c / b);
        }
        let disc = b * b - 4.0 * a * c;
        if disc < 0.0 {
            if (-disc).sqrt() / (2.0 * a.abs()) < QUAD_EPS {
                return accept(-b / (2.0 * a));
            }
            return None;
        }
        let s = disc.sqrt();
        let q = -0.5 * (b + b.signum() * s);
        let (r1, r2) = if q == 0.0 { (0.0, 0.0) } else { (q / a, c / q) };
        accept(r1).or_else(|| accept(r2))
    }

    fn handle(&self, p: Vec3) -> Option<[f64; 4]> {
        let x = Self::solve(&self.axis_x, p)?;
        let y = Self::solve(&self.axis_y, p)?;
        let g = [(1.0 - x) * (1.0 - y), x * (1.0 - y), x * y, (1.0 - x) * y];
        let mut v = [0.0; 3];
        for (gk, pos) in g.iter().zip(&self.pos) {
            v = [v[0] + gk * pos[0], v[1] + gk * pos[1], v[2] + gk * pos[2]];
        }
        if dot(v, p) <= 0.0 {
            return None;
        }
        let k = 1.0 / g.iter().map(|x| x * x).sum::<f64>().sqrt();
        Some(g.map(|x| x * k))
    }
}

#[derive(Debug, Clone)]
enum Region {
    Triplet(Triplet),
    Quad(Quad),
    Ngon(VirtualNgon),
}

impl Region {
    /// Whether two corners feed the same output.
    fn shares_outputs(&self) -> bool {
        let ch: &[usize] = match self {
            Region::Triplet(t) => &t.ch,
            Region::Quad(q) => &q.ch,
            Region::Ngon(ng) => &ng.ch,
        };
        ch.iter().enumerate().any(|(i, c)| ch[i + 1..].contains(c))
    }

    /// The outputs its corners feed (bit `o` for output `o`).
    fn mask(&self) -> u64 {
        let ch: &[usize] = match self {
            Region::Triplet(t) => &t.ch,
            Region::Quad(q) => &q.ch,
            Region::Ngon(ng) => &ng.ch,
        };
        ch.iter().fold(0, |m, &c| m | 1 << c)
    }
}

/// The §6 point-source panner for one layout. Gains are indexed by the layout's
/// non-LFE speakers (in channel order).
#[derive(Debug, Clone)]
pub struct PointSourcePanner {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Full(Full),
    /// 0+2+0: the 0+5+0 panner, downmixed (outputs of M+030 and M−030, of `width`).
    Stereo {
        five: Box<Full>,
        left: usize,
        right: usize,
        width: usize,
    },
    /// One loudspeaker (a 1.0 layout, outside BS.2051): every direction feeds it at unity
    /// gain, which is what any power-preserving panner must do with one speaker.
    Mono {
        channel: usize,
        width: usize,
    },
}

/// The regions of a layout, with every corner's output index resolved at build time (an
/// extra speaker copied into a layer gap feeds the real speaker it copies), so a lookup
/// touches only the outputs of the region it lands in.
#[derive(Debug, Clone)]
struct Full {
    regions: Vec<Region>,
    /// Per region: two of its corners feed one output (an extra speaker and the real
    /// one it copies), so its gains need normalising again once added. Otherwise the
    /// region's own gains are already of unit power.
    shared: Vec<bool>,
    /// Per region: the outputs its corners feed (bit `o` for output `o` < 64).
    masks: Vec<u64>,
    /// Number of outputs written (the real speakers, or the channels of a remapped
    /// panner).
    n: usize,
}

/// A hint for repeated lookups of a moving source: the region it was last found in.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegionHint(pub usize);

impl PointSourcePanner {
    /// Builds the panner for a layout's non-LFE speakers.
    pub fn new(speakers: &[Speaker]) -> Result<PointSourcePanner, PointSourceError> {
        if speakers.is_empty() {
            return Err(PointSourceError::NoSpeakers);
        }
        if speakers.len() == 1 {
            return Ok(PointSourcePanner {
                kind: Kind::Mono {
                    channel: 0,
                    width: 1,
                },
            });
        }
        let labels: Vec<&str> = speakers.iter().map(|s| s.label.as_str()).collect();
        if labels.len() == 2 && labels.contains(&"M+030") && labels.contains(&"M-030") {
            let left = labels.iter().position(|l| *l == "M+030").unwrap_or(0);
            let right = 1 - left;
            let five: Vec<Speaker> = [
                ("M+030", 30.0),
                ("M-030", -30.0),
                ("M+000", 0.0),
                ("M+110", 110.0),
                ("M-110", -110.0),
            ]
            .iter()
            .enumerate()
            .map(|(i, (l, az))| Speaker {
                label: l.to_string(),
                channel: i,
                nominal_azimuth_deg: *az,
                nominal_elevation_deg: 0.0,
                real_azimuth_deg: *az,
                real_elevation_deg: 0.0,
                allocentric: [0.0; 3],
            })
            .collect();
            return Ok(PointSourcePanner {
                kind: Kind::Stereo {
                    five: Box::new(Full::new(&five)?),
                    left,
                    right,
                    width: 2,
                },
            });
        }
        Ok(PointSourcePanner {
            kind: Kind::Full(Full::new(speakers)?),
        })
    }

    /// Number of outputs (the layout's non-LFE speakers, or the `width` of
    /// [`PointSourcePanner::with_outputs`]).
    pub fn num_outputs(&self) -> usize {
        match &self.kind {
            Kind::Full(f) => f.n,
            Kind::Stereo { width, .. } | Kind::Mono { width, .. } => *width,
        }
    }

    /// The same panner writing speaker `s`'s gain to output `outputs[s]` of `width`
    /// (the others 0): a layout's channels, LFE included, written directly.
    pub fn with_outputs(&self, outputs: &[usize], width: usize) -> PointSourcePanner {
        let kind = match &self.kind {
            Kind::Full(f) => Kind::Full(f.remapped(outputs, width)),
            Kind::Stereo {
                five, left, right, ..
            } => Kind::Stereo {
                five: five.clone(),
                left: outputs[*left],
                right: outputs[*right],
                width,
            },
            Kind::Mono { channel, .. } => Kind::Mono {
                channel: outputs[*channel],
                width,
            },
        };
        PointSourcePanner { kind }
    }

    /// Gains for a source in direction `p` (any length but zero) into `out[..n]`.
    /// Returns false (and zeros) if no region takes the direction.
    pub fn handle(&self, p: Vec3, hint: &mut RegionHint, out: &mut [f64]) -> bool {
        out[..self.num_outputs()].fill(0.0);
        self.handle_into_zeroed(p, hint, out) != 0
    }

    /// [`PointSourcePanner::handle`] into `out[..n]` that is all zero on entry: writes
    /// only the outputs of the region that takes `p` and returns their mask (bit `o` for
    /// output `o`; outputs are below 64), 0 if no region takes it. The same gains.
    #[inline]
    pub fn handle_into_zeroed(&self, p: Vec3, hint: &mut RegionHint, out: &mut [f64]) -> u64 {
        match &self.kind {
            Kind::Full(f) => f.handle_into_zeroed(p, hint, out),
            Kind::Mono { channel, .. } => {
                out[*channel] = 1.0;
                1 << *channel
            }
            Kind::Stereo {
                five, left, right, ..
            } => {
                let mut g = [0.0; 5];
                if five.handle_into_zeroed(p, hint, &mut g) == 0 {
                    return 0;
                }
                let c = 3f64.sqrt() / 3.0;
                let s = std::f64::consts::FRAC_1_SQRT_2;
                let l = g[0] + c * g[2] + s * g[3];
                let r = g[1] + c * g[2] + s * g[4];
                let n = l.hypot(r);
                let front = g[0].max(g[1]).max(g[2]);
                let back = g[3].max(g[4]);
                let k = 0.5f64.powf(0.5 * back / (front + back)) / n;
                out[*left] = l * k;
                out[*right] = r * k;
                (1 << *left) | (1 << *right)
            }
        }
    }
}

impl Full {
    fn new(speakers: &[Speaker]) -> Result<Full, PointSourceError> {
        let n = speakers.len();
        // Nominal and real positions of the real speakers, then the extra ones.
        let mut nominal: Vec<Vec3> = speakers.iter().map(|s| s.nominal()).collect();
        let mut real: Vec<Vec3> = speakers.iter().map(|s| s.real()).collect();
        let mut extra = Vec::new();
        let mid: Vec<usize> = (0..n)
            .filter(|&i| (-10.0..=10.0).contains(&speakers[i].nominal_elevation_deg))
            .collect();
        for (layer_el, lo, hi) in [(-30.0, -70.0, -10.0), (30.0, 10.0, 70.0)] {
            let layer: Vec<usize> = (0..n)
                .filter(|&i| (lo..=hi).contains(&speakers[i].nominal_elevation_deg))
                .collect();
            let (az_limit, real_el) = if layer.is_empty() {
                (0.0, layer_el)
            } else {
                let range = layer
                    .iter()
                    .map(|&i| speakers[i].nominal_azimuth_deg.abs())
                    .fold(0.0, f64::max);
                let mean = layer
                    .iter()
                    .map(|&i| speakers[i].real_elevation_deg)
                    .sum::<f64>()
                    / layer.len() as f64;
                (range + 40.0, mean)
            };
            for &m in &mid {
                let s = &speakers[m];
                if s.nominal_azimuth_deg.abs() >= az_limit - 1e-5 {
                    nominal.push(super::geom::cart(s.nominal_azimuth_deg, layer_el, 1.0));
                    real.push(super::geom::cart(s.real_azimuth_deg, real_el, 1.0));
                    extra.push(m);
                }
            }
        }
        let n_spk = nominal.len();
        // Virtual speakers at the poles (no zenith where a speaker may be overhead).
        let overhead = speakers.iter().any(|s| {
            s.label == "T+000"
                || s.label == "UH+180"
                || (super::layouts::nominal_of_label(&s.label).is_none()
                    && s.nominal_elevation_deg > 75.0)
        });
        let below = speakers.iter().any(|s| {
            super::layouts::nominal_of_label(&s.label).is_none() && s.nominal_elevation_deg < -75.0
        });
        let mut virtual_verts = Vec::new();
        if !below {
            virtual_verts.push(nominal.len());
            nominal.push([0.0, 0.0, -1.0]);
            real.push([0.0, 0.0, -1.0]);
        }
        if !overhead {
            virtual_verts.push(nominal.len());
            nominal.push([0.0, 0.0, 1.0]);
            real.push([0.0, 0.0, 1.0]);
        }
        for i in 0..nominal.len() {
            for j in i + 1..nominal.len() {
                if norm(sub(nominal[i], nominal[j])) < 1e-6 {
                    let name = |k: usize| {
                        if k < n {
                            speakers[k].label.clone()
                        } else if k < n_spk {
                            format!("{} (copied to layer)", speakers[extra[k - n]].label)
                        } else {
                            "a pole".to_string()
                        }
                    };
                    return Err(PointSourceError::Coincident {
                        first: name(i),
                        second: name(j),
                    });
                }
            }
        }
        let facets = hull_facets(&nominal);
        if facets.is_empty() {
            return Err(PointSourceError::Flat);
        }
        let mut regions = Vec::new();
        for &v in &virtual_verts {
            let mut around: Vec<usize> = Vec::new();
            for f in facets.iter().filter(|f| f.contains(&v)) {
                for &k in f {
                    if k != v && !around.contains(&k) {
                        around.push(k);
                    }
                }
            }
            around.sort_unstable();
            if around.len() >= 2 {
                regions.push(Region::Ngon(ngon(&around, &real, real[v])?));
            }
        }
        for f in &facets {
            if f.iter().any(|k| virtual_verts.contains(k)) {
                continue;
            }
            match f.len() {
                3 => {
                    let t = Triplet::new([f[0], f[1], f[2]], [real[f[0]], real[f[1]], real[f[2]]])
                        .ok_or(PointSourceError::Flat)?;
                    regions.push(Region::Triplet(t));
                }
                4 => {
                    let pos: Vec<Vec3> = f.iter().map(|&k| real[k]).collect();
                    let order = ngon_vertex_order(&pos);
                    let ch = [f[order[0]], f[order[1]], f[order[2]], f[order[3]]];
                    let p = ch.map(|k| real[k]);
                    regions.push(Region::Quad(Quad {
                        ch,
                        pos: p,
                        axis_x: Quad::axis(p),
                        axis_y: Quad::axis([p[1], p[2], p[3], p[0]]),
                    }));
                }
                _ => {
                    // More than four speakers on one plane (custom rooms only; the
                    // standard's layouts have none): a virtual speaker at their centre.
                    let mut c = [0.0; 3];
                    for &k in f {
                        c = super::geom::add(c, real[k]);
                    }
                    let c = scale(c, 1.0 / norm(c));
                    regions.push(Region::Ngon(ngon(f, &real, c)?));
                }
            }
        }
        // Every corner's output: an extra speaker (internal index `n + k`) feeds the
        // real speaker `extra[k]` it copies.
        let output = |k: usize| if k < n { k } else { extra[k - n] };
        for r in &mut regions {
            match r {
                Region::Triplet(t) => t.ch = t.ch.map(output),
                Region::Quad(q) => q.ch = q.ch.map(output),
                Region::Ngon(ng) => ng.ch.iter_mut().for_each(|c| *c = output(*c)),
            }
        }
        let shared = regions.iter().map(Region::shares_outputs).collect();
        let masks = regions.iter().map(Region::mask).collect();
        Ok(Full {
            regions,
            shared,
            masks,
            n,
        })
    }

    /// The same regions writing output `o` to `outputs[o]` of `width`.
    fn remapped(&self, outputs: &[usize], width: usize) -> Full {
        let mut regions = self.regions.clone();
        for r in &mut regions {
            match r {
                Region::Triplet(t) => t.ch = t.ch.map(|c| outputs[c]),
                Region::Quad(q) => q.ch = q.ch.map(|c| outputs[c]),
                Region::Ngon(ng) => ng.ch.iter_mut().for_each(|c| *c = outputs[*c]),
            }
        }
        let masks = regions.iter().map(Region::mask).collect();
        Full {
            regions,
            shared: self.shared.clone(),
            masks,
            n: width,
        }
    }

    /// The hinted region first, then the others in order; only the region that takes
    /// `p` writes (its corners added into the zeroed outputs, normalised again where two
    /// corners fed one output). Returns the region's outputs, 0 if none takes `p`.
    fn handle_into_zeroed(&self, p: Vec3, hint: &mut RegionHint, out: &mut [f64]) -> u64 {
        let count = self.regions.len();
        let mut r = if hint.0 < count { hint.0 } else { 0 };
        for _ in 0..count {
            if self.region_gains(r, p, out) {
                hint.0 = r;
                let mask = self.masks[r];
                if self.shared[r] {
                    // The other outputs are 0: the sums over the region's outputs are
                    // those over all outputs.
                    let mut total = 0.0;
                    for c in Channels(mask) {
                        total += out[c] * out[c];
                    }
                    let k = if total > 0.0 { 1.0 / total.sqrt() } else { 0.0 };
                    for c in Channels(mask) {
                        out[c] *= k;
                    }
                }
                return mask;
            }
            r += 1;
            if r == count {
                r = 0;
            }
        }
        0
    }

    /// Gains of region `r` added into the zeroed `out` (several corners may feed one
    /// output), if it takes `p`; `out` is untouched otherwise.
    #[inline]
    fn region_gains(&self, r: usize, p: Vec3, out: &mut [f64]) -> bool {
        match &self.regions[r] {
            Region::Triplet(t) => match t.handle(p) {
                Some(v) => {
                    for i in 0..3 {
                        out[t.ch[i]] += v[i];
                    }
                    true
                }
                None => false,
            },
            Region::Quad(q) => match q.handle(p) {
                Some(v) => {
                    for i in 0..4 {
                        out[q.ch[i]] += v[i];
                    }
                    true
                }
                None => false,
            },
            Region::Ngon(ng) => {
                let m = ng.ch.len();
                for (k, t) in ng.tris.iter().enumerate() {
                    if let Some(v) = t.handle(p) {
                        let (a, b) = (k, (k + 1) % m);
                        let corner = |i: usize| {
                            let mut x = v[2] * ng.centre_gain;
                            if i == a {
                                x += v[0];
                            }
                            if i == b {
                                x += v[1];
                            }
                            x
                        };
                        let mut total = 0.0;
                        for i in 0..m {
                            let x = corner(i);
                            total += x * x;
                        }
                        let s = 1.0 / total.sqrt();
                        for i in 0..m {
                            out[ng.ch[i]] += corner(i) * s;
                        }
                        return true;
                    }
                }
                false
            }
        }
    }
}

fn ngon(around: &[usize], real: &[Vec3], centre: Vec3) -> Result<VirtualNgon, PointSourceError> {
    let pos: Vec<Vec3> = around.iter().map(|&k| real[k]).collect();
    let order = ngon_vertex_order(&pos);
    let ch: Vec<usize> = order.iter().map(|&o| around[o]).collect();
    let m = ch.len();
    let mut tris = Vec::with_capacity(m);
    for k in 0..m {
        let (a, b) = (ch[k], ch[(k + 1) % m]);
        tris.push(
            Triplet::new([0, 1, 2], [real[a], real[b], centre]).ok_or(PointSourceError::Flat)?,
        );
    }
    Ok(VirtualNgon {
        ch,
        tris,
        centre_gain: 1.0 / (m as f64).sqrt(),
    })
}

/// Facets of the convex hull of `points` (coplanar triangles merged), each as the sorted
/// indices of its corners. Brute force over triples: layouts have few speakers.
fn hull_facets(points: &[Vec3]) -> Vec<Vec<usize>> {
    let m = points.len();
    let mut facets: Vec<Vec<usize>> = Vec::new();
    for i in 0..m {
        for j in i + 1..m {
            for k in j + 1..m {
                let nrm = cross(sub(points[j], points[i]), sub(points[k], points[i]));
                let len = norm(nrm);
                if len < 1e-9 {
                    continue;
                }
                let nrm = scale(nrm, 1.0 / len);
                let d = dot(nrm, points[i]);
                let (mut above, mut under) = (false, false);
                let mut on = Vec::new();
                for (q, &p) in points.iter().enumerate() {
                    let s = dot(nrm, p) - d;
                    if s > PLANE_EPS {
                        above = true;
                    } else if s < -PLANE_EPS {
                        under = true;
                    } else {
                        on.push(q);
                    }
                    if above && under {
                        break;
                    }
                }
                if above && under {
                    continue;
                }
                if !facets.contains(&on) {
                    facets.push(on);
                }
            }
        }
    }
    facets
}
