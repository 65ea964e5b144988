//! ITU-R BS.2127 §7.3.8 polar extent: a source `width` × `height` degrees wide is the
//! normalised sum of point-source gains over an even grid of directions on the sphere,
//! weighted by a stadium-shaped window (1 inside, fading to 0 over 10°); `depth` renders
//! the extent at two distances; distance scales the extent (§7.3.8.2.1).

use super::geom::{
    Vec3, azimuth_deg, cart, dot, elevation_deg, interp, local_coordinate_system, safe_normalise,
};
use super::point_source::{PointSourcePanner, RegionHint};

/// Rows of the spreading grid (5° apart).
const GRID_ROWS: usize = 37;
/// Width of the weight's fade from 1 to 0, degrees.
const FADE_DEG: f64 = 10.0;

/// The point-source gains of the spreading grid, precomputed per layout.
#[derive(Debug, Clone)]
pub struct PolarExtent {
    psp: PointSourcePanner,
    grid: Vec<Vec3>,
    /// The grid's rows (one elevation each), in grid order.
    rows: Vec<GridRow>,
    /// `grid.len() × n` point-source gains.
    grid_gains: Vec<f64>,
    n: usize,
}

/// One row of the spreading grid: `count` points from `start`, evenly in azimuth from 0°.
#[derive(Debug, Clone, Copy)]
struct GridRow {
    start: usize,
    count: usize,
    elevation_deg: f64,
    sin_el: f64,
    cos_el: f64,
}

impl PolarExtent {
    pub fn new(psp: PointSourcePanner) -> PolarExtent {
        let (grid, rows) = spreading_grid(GRID_ROWS);
        let n = psp.num_outputs();
        let mut grid_gains = vec![0.0; grid.len() * n];
        let mut hint = RegionHint::default();
        for (k, &p) in grid.iter().enumerate() {
            psp.handle(p, &mut hint, &mut grid_gains[k * n..(k + 1) * n]);
        }
        PolarExtent {
            psp,
            grid,
            rows,
            grid_gains,
            n,
        }
    }

    /// The grid points that may lie within `cap_cos` of `centre` (a unit vector), in
    /// grid order: per row, the azimuths within reach by the spherical law of cosines
    /// (with a margin of one grid step), so the caller's exact test sees every point it
    /// would see in a full scan, in the same order.
    fn visit_cap(&self, centre: Vec3, cap_cos: f64, mut visit: impl FnMut(usize)) {
        if cap_cos <= -1.0 {
            (0..self.grid.len()).for_each(visit);
            return;
        }
        let radius_deg = cap_cos.min(1.0).acos().to_degrees() + 1e-6;
        let sin_c = centre[2].clamp(-1.0, 1.0);
        let cos_c = centre[0].hypot(centre[1]);
        let el_c = sin_c.asin().to_degrees();
        let az_c = azimuth_deg(centre);
        for row in &self.rows {
            if (row.elevation_deg - el_c).abs() > radius_deg {
                continue;
            }
            let all = row.start..row.start + row.count;
            let step = 360.0 / row.count as f64;
            let denom = row.cos_el * cos_c;
            let half_deg = if denom < 1e-9 {
                360.0
            } else {
                let m = (cap_cos - row.sin_el * sin_c) / denom;
                if m <= -1.0 {
                    360.0
                } else {
                    m.min(1.0).acos().to_degrees() + step + 1e-6
                }
            };
            let k_lo = ((az_c - half_deg) / step).ceil() as i64;
            let k_hi = ((az_c + half_deg) / step).floor() as i64;
            let count = row.count as i64;
            if half_deg >= 180.0 || k_hi - k_lo + 1 >= count {
                all.for_each(&mut visit);
                continue;
            }
            if k_hi < k_lo {
                continue;
            }
            let (lo, hi) = (
                k_lo.rem_euclid(count) as usize,
                k_hi.rem_euclid(count) as usize,
            );
            if lo <= hi {
                (row.start + lo..=row.start + hi).for_each(&mut visit);
            } else {
                (row.start..=row.start + hi).for_each(&mut visit);
                (row.start + lo..all.end).for_each(&mut visit);
            }
        }
    }

    /// Gains (`n` outputs) of a source at `position` (distance = its length) with the
    /// block's width, height (degrees) and depth.
    pub fn gains(
        &self,
        position: Vec3,
        width_deg: f64,
        height_deg: f64,
        depth: f64,
        hint: &mut RegionHint,
        out: &mut [f64],
    ) {
        let n = self.n;
        let distance = super::geom::norm(position);
        if depth != 0.0 {
            let mut a = [0.0; super::MAX_SPEAKERS];
            let mut b = [0.0; super::MAX_SPEAKERS];
            let d1 = (distance + depth / 2.0).max(0.0);
            let d2 = (distance - depth / 2.0).max(0.0);
            self.spread(
                position,
                extent_mod(width_deg, d1),
                extent_mod(height_deg, d1),
                hint,
                &mut a[..n],
            );
            self.spread(
                position,
                extent_mod(width_deg, d2),
                extent_mod(height_deg, d2),
                hint,
                &mut b[..n],
            );
            for c in 0..n {
                out[c] = (0.5 * (a[c] * a[c] + b[c] * b[c])).sqrt();
            }
        } else {
            self.spread(
                position,
                extent_mod(width_deg, distance),
                extent_mod(height_deg, distance),
                hint,
                &mut out[..n],
            );
        }
    }

    /// Point and spread gains mixed by size (the spread fully in from 10°).
    fn spread(
        &self,
        position: Vec3,
        width_deg: f64,
        height_deg: f64,
        hint: &mut RegionHint,
        out: &mut [f64],
    ) {
        let n = self.n;
        let amount_spread = interp(width_deg.max(height_deg), &[0.0, FADE_DEG], &[0.0, 1.0]);
        let amount_point = 1.0 - amount_spread;
        let mut power = [0.0; super::MAX_SPEAKERS];
        if amount_point > 1e-10 {
            let mut g = [0.0; super::MAX_SPEAKERS];
            self.psp.handle(position, hint, &mut g[..n]);
            for c in 0..n {
                power[c] += amount_point * g[c] * g[c];
            }
        }
        if amount_spread > 1e-10 {
            let w = width_deg.max(FADE_DEG / 2.0);
            let h = height_deg.max(FADE_DEG / 2.0);
            let weight = Weight::new(position, w, h);
            let mut total = [0.0; super::MAX_SPEAKERS];
            // Grid points outside the weight's cap have weight 0: skipped with one dot
            // product instead of the weight's trigonometry (same sum, exactly).
            // Only the rows and azimuths within reach of the cap are visited (the same
            // points in the same order as a full scan).
            let centre = safe_normalise(position);
            self.visit_cap(centre, weight.cap_cos, |k| {
                let p = self.grid[k];
                if dot(p, centre) < weight.cap_cos {
                    return;
                }
                let wk = weight.at(p);
                if wk == 0.0 {
                    return;
                }
                for (t, g) in total[..n]
                    .iter_mut()
                    .zip(&self.grid_gains[k * n..(k + 1) * n])
                {
                    *t += wk * g;
                }
            });
            let len = total[..n].iter().map(|x| x * x).sum::<f64>().sqrt();
            for c in 0..n {
                let g = total[c] / len;
                power[c] += amount_spread * g * g;
            }
        }
        for c in 0..n {
            out[c] = power[c].sqrt();
        }
    }
}

/// The extent seen from `distance` (BS.2127 §7.3.8.2.1): 360° at the centre, the
/// authored extent at distance 1, smaller beyond.
pub fn extent_mod(extent_deg: f64, distance: f64) -> f64 {
    let size = interp(extent_deg, &[0.0, 360.0], &[0.2, 1.0]);
    let extent_1 = 4.0 * size.atan2(1.0).to_degrees();
    interp(
        4.0 * size.atan2(distance).to_degrees(),
        &[0.0, extent_1, 360.0],
        &[0.0, extent_deg, 360.0],
    )
}

/// Evenly spread directions: `rows` elevations from −90° to 90°, each with points in
/// proportion to its circumference.
fn spreading_grid(rows: usize) -> (Vec<Vec3>, Vec<GridRow>) {
    let mut out = Vec::new();
    let mut table = Vec::with_capacity(rows);
    for r in 0..rows {
        let el = -90.0 + 180.0 * r as f64 / (rows - 1) as f64;
        let radius = el.to_radians().cos();
        let mut count = (radius * 2.0 * (rows - 1) as f64).round() as usize;
        if count == 0 {
            count = 1;
        }
        let (sin_el, cos_el) = el.to_radians().sin_cos();
        table.push(GridRow {
            start: out.len(),
            count,
            elevation_deg: el,
            sin_el,
            cos_el: cos_el.max(0.0),
        });
        for k in 0..count {
            out.push(cart(360.0 * k as f64 / count as f64, el, 1.0));
        }
    }
    (out, table)
}

/// The weight's fade over `FADE_DEG` beyond the extent's edge: `interp(distance, [0,
/// fade], [1, 0])` with the same operations (`1 + (d − 0)·(0 − 1)/(fade − 0)`), inlined.
#[inline(always)]
fn fade_weight(distance: f64) -> f64 {
    let fade = FADE_DEG.to_radians();
    if distance <= 0.0 {
        1.0
    } else if distance >= fade {
        0.0
    } else {
        1.0 + -distance / fade
    }
}

/// See [`Weight`]'s certain bounds.
const MARGIN: f64 = 1e-12;

/// The §7.3.8.2.3 weighting function: a `width` × `height` rectangle around the source
/// with maximally rounded ends, in the source's own coordinates.
struct Weight {
    /// Cosine of the angle from the source beyond which the weight is 0 (with a margin).
    cap_cos: f64,
    basis: [Vec3; 3],
    circle_radius: f64,
    /// Half the spine's length (only the definition in the tests reads it).
    #[cfg(test)]
    circle_pos: f64,
    /// `cos(circle_pos)`, or −2 when `circle_pos` ≥ π (every azimuth is on the spine).
    cos_circle_pos: f64,
    circles: [Vec3; 2],
    /// Where the weight is certainly 1 or certainly 0 without its arc sine or arc cosine:
    /// |c2| at most `spine_in` (inside), at least `spine_out` (beyond the fade); a
    /// circle's dot product at least `circle_in`, at most `circle_out`. Each is 1e-12
    /// inside its exact bound, which moves the angle by more than 1e-12 rad, far more
    /// than the rounding of the exact path, so the weight is the exact path's to the bit.
    spine_in: f64,
    spine_out: f64,
    circle_in: f64,
    circle_out: f64,
}

impl Weight {
    fn new(position: Vec3, width_deg: f64, height_deg: f64) -> Weight {
        let mut width = width_deg.to_radians() / 2.0;
        let mut height = height_deg.to_radians() / 2.0;
        let p = safe_normalise(position);
        let (mut az, el) = (azimuth_deg(p), elevation_deg(p));
        if el.abs() > 90.0 - 1e-5 {
            az = 0.0;
        }
        let basis0 = local_coordinate_system(az, el);
        let circle_radius = width.min(height);
        let basis = if height > width {
            std::mem::swap(&mut width, &mut height);
            [basis0[2], basis0[1], basis0[0]]
        } else {
            basis0
        };
        use std::f64::consts::PI;
        let width_full = PI + height;
        let width_mod = interp(width, &[0.0, PI / 2.0, PI], &[0.0, PI / 2.0, width_full]);
        let width = interp(
            height,
            &[0.0, PI / 4.0, PI / 2.0, PI],
            &[width_mod, width_mod, width, width],
        );
        let circle_pos = width - circle_radius;
        // Every point of weight > 0 is within `width` (the spine's half-length plus the
        // circles' radius) plus the fade of the source, by the triangle inequality.
        let fade = FADE_DEG.to_radians();
        let reach = width + fade + 1e-6;
        let cap_cos = if reach >= PI {
            -2.0
        } else {
            reach.cos() - 1e-9
        };
        let on_basis = |a: f64| {
            let (s, c) = a.sin_cos();
            [
                s * basis[0][0] + c * basis[1][0],
                s * basis[0][1] + c * basis[1][1],
                s * basis[0][2] + c * basis[1][2],
            ]
        };
        Weight {
            cap_cos,
            basis,
            circle_radius,
            #[cfg(test)]
            circle_pos,
            cos_circle_pos: if circle_pos >= PI {
                -2.0
            } else {
                circle_pos.cos()
            },
            circles: [on_basis(-circle_pos), on_basis(circle_pos)],
            spine_in: if circle_radius < PI / 2.0 {
                circle_radius.sin() - MARGIN
            } else {
                2.0
            },
            spine_out: if circle_radius + fade < PI / 2.0 {
                (circle_radius + fade).sin() + MARGIN
            } else {
                2.0
            },
            circle_in: if circle_radius < PI {
                circle_radius.cos() + MARGIN
            } else {
                -2.0
            },
            circle_out: if circle_radius + fade < PI {
                (circle_radius + fade).cos() - MARGIN
            } else {
                -2.0
            },
        }
    }

    /// The weight at grid point `p`. The standard's azimuth test `|atan2(c0, c1)| ≤
    /// circle_pos` is made as `c1 ≥ cos(circle_pos) · √(c0² + c1²)` (cosine falls on
    /// 0…π), and the nearer circle's distance as the arc cosine of the larger dot product
    /// (arc cosine falls): one square root instead of an arc tangent and an arc cosine,
    /// which were half of a polar extent's time. Points where rounding decides the test
    /// differently lie where both sides give the same distance (the spine's end, where
    /// the circle begins), so the weights agree to rounding (unit test: within 1e-12 of
    /// the trigonometric form).
    #[inline]
    fn at(&self, p: Vec3) -> f64 {
        let c0 = dot(p, self.basis[0]).clamp(-1.0, 1.0);
        let c1 = dot(p, self.basis[1]).clamp(-1.0, 1.0);
        let c2 = dot(p, self.basis[2]).clamp(-1.0, 1.0);
        let on_spine = c1 >= self.cos_circle_pos * (c0 * c0 + c1 * c1).sqrt();
        let distance = if on_spine {
            let a = c2.abs();
            if a <= self.spine_in {
                return 1.0;
            }
            if a >= self.spine_out {
                return 0.0;
            }
            c2.asin().abs() - self.circle_radius
        } else {
            let d0 = dot(p, self.circles[0]).clamp(-1.0, 1.0);
            let d1 = dot(p, self.circles[1]).clamp(-1.0, 1.0);
            let m = d0.max(d1);
            if m >= self.circle_in {
                return 1.0;
            }
            if m <= self.circle_out {
                return 0.0;
            }
            m.acos() - self.circle_radius
        };
        fade_weight(distance)
    }

    /// The weight as §7.3.8.2.3 writes it (arc tangent and two arc cosines), the
    /// reference for [`Weight::at`].
    #[cfg(test)]
    fn at_by_definition(&self, p: Vec3) -> f64 {
        let c0 = dot(p, self.basis[0]).clamp(-1.0, 1.0);
        let c1 = dot(p, self.basis[1]).clamp(-1.0, 1.0);
        let c2 = dot(p, self.basis[2]).clamp(-1.0, 1.0);
        let az = c0.atan2(c1);
        let distance = if az.abs() <= self.circle_pos {
            c2.asin().abs() - self.circle_radius
        } else {
            let d0 = dot(p, self.circles[0]).clamp(-1.0, 1.0).acos();
            let d1 = dot(p, self.circles[1]).clamp(-1.0, 1.0).acos();
            d0.min(d1) - self.circle_radius
        };
        interp(distance, &[0.0, FADE_DEG.to_radians()], &[1.0, 0.0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::layout::Layout;

    /// The weight without arc tangent equals the standard's form within 1e-12 for
    /// sources all over the sphere, extents from a point to all round (wider than high
    /// and higher than wide), at every grid point and at points near the spine's ends.
    #[test]
    fn weight_equals_its_definition() {
        let (grid, _) = spreading_grid(GRID_ROWS);
        let mut worst: f64 = 0.0;
        let mut differ = 0usize;
        let sources = [
            (0.0, 0.0),
            (30.0, 0.0),
            (-110.0, 15.0),
            (170.0, -40.0),
            (45.0, 89.99),
            (0.0, 90.0),
            (-60.0, -90.0),
            (123.4, 56.7),
        ];
        let extents = [
            (5.0, 5.0),
            (30.0, 10.0),
            (10.0, 30.0),
            (90.0, 45.0),
            (200.0, 20.0),
            (360.0, 360.0),
            (359.0, 10.0),
        ];
        for &(az, el) in &sources {
            for &(w, h) in &extents {
                let weight = Weight::new(cart(az, el, 1.0), w, h);
                // The grid, and points just either side of each circle's centre.
                let near_ends = weight.circles.iter().flat_map(|&c| {
                    (-20..=20).map(move |k| {
                        let t = k as f64 * 1e-3;
                        safe_normalise([c[0] + t * c[2], c[1] - t * c[0], c[2] + t * c[1]])
                    })
                });
                for p in grid.iter().copied().chain(near_ends) {
                    let (a, b) = (weight.at(p), weight.at_by_definition(p));
                    worst = worst.max((a - b).abs());
                    differ += usize::from(a != b);
                }
            }
        }
        assert!(
            worst <= 1e-12,
            "worst difference {worst:e} ({differ} points differ)"
        );
    }

    /// The cap search visits every grid point a full scan would accept (dot product with
    /// the centre at least `cap_cos`), in the same order, for centres all over the sphere
    /// (poles included) and caps from 1° to beyond a hemisphere.
    #[test]
    fn cap_search_finds_the_full_scans_points_in_order() {
        let layout = Layout::builtin("7.1.4").unwrap();
        let speakers = super::super::layouts::speakers_of(&layout);
        let extent = PolarExtent::new(PointSourcePanner::new(&speakers).unwrap());
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut centres: Vec<Vec3> = vec![[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]];
        for _ in 0..400 {
            centres.push(cart(360.0 * rnd() - 180.0, 180.0 * rnd() - 90.0, 1.0));
        }
        for grid_el in [-85.0, 0.0, 5.0, 45.0, 85.0] {
            centres.push(cart(0.0, grid_el, 1.0));
            centres.push(cart(180.0, grid_el, 1.0));
        }
        for (i, &centre) in centres.iter().enumerate() {
            for reach_deg in [1.0, 5.0, 12.5, 25.0, 47.0, 90.0, 135.0, 179.0] {
                let cap_cos = f64::to_radians(reach_deg).cos() - 1e-9;
                let full: Vec<usize> = (0..extent.grid.len())
                    .filter(|&k| dot(extent.grid[k], centre) >= cap_cos)
                    .collect();
                let mut found = Vec::new();
                extent.visit_cap(centre, cap_cos, |k| {
                    if dot(extent.grid[k], centre) >= cap_cos {
                        found.push(k);
                    }
                });
                assert_eq!(found, full, "centre {i} {centre:?}, reach {reach_deg}°");
            }
        }
    }
}
