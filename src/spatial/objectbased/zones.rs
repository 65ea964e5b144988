//! ITU-R BS.2127 §7.3.12 zone exclusion: which speakers a polar or Cartesian zone
//! covers, and the downmix that moves an excluded speaker's power to its nearest
//! allowed neighbours (same layer first, then up before down, same front/back side,
//! then distance).

use super::geom::{Vec3, inside_angle_range, norm, sub};
use super::layouts::Speaker;

/// A zone of excluded speakers, as ADM's `zoneExclusion` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// Nominal positions inside the box (allocentric coordinates of BS.2051 nominal
    /// unit vectors, as the standard tests them).
    Cartesian {
        min_x: f64,
        max_x: f64,
        min_y: f64,
        max_y: f64,
        min_z: f64,
        max_z: f64,
    },
    /// Nominal directions inside the azimuth range (from `min` anticlockwise to `max`)
    /// and elevation range.
    Polar {
        min_elevation_deg: f64,
        max_elevation_deg: f64,
        min_azimuth_deg: f64,
        max_azimuth_deg: f64,
    },
}

/// The precomputed priority groups of every speaker.
#[derive(Debug, Clone)]
pub struct ZoneExclusion {
    nominal: Vec<Vec3>,
    az: Vec<f64>,
    el: Vec<f64>,
    /// For speaker `i`: groups of speakers in priority order.
    groups: Vec<Vec<Vec<usize>>>,
}

impl ZoneExclusion {
    pub fn new(speakers: &[Speaker]) -> ZoneExclusion {
        let eps = 1e-6;
        let sign = |x: f64| -> i32 {
            if x > eps {
                1
            } else if x < -eps {
                -1
            } else {
                0
            }
        };
        let layer = |el: f64| {
            if el < -10.0 {
                0
            } else if el < 10.0 {
                1
            } else if el < 75.0 {
                2
            } else {
                3
            }
        };
        const LAYER_PRIO: [[u8; 4]; 4] = [[0, 1, 2, 3], [3, 0, 1, 2], [3, 2, 0, 1], [3, 2, 1, 0]];
        let nominal: Vec<Vec3> = speakers.iter().map(|s| s.nominal()).collect();
        let mut groups = Vec::new();
        for (i, a) in speakers.iter().enumerate() {
            let mut keyed: Vec<([f64; 4], Vec<usize>)> = Vec::new();
            for (j, b) in speakers.iter().enumerate() {
                let key = [
                    LAYER_PRIO[layer(a.nominal_elevation_deg)][layer(b.nominal_elevation_deg)]
                        as f64,
                    (sign(nominal[i][1]) - sign(nominal[j][1])).abs() as f64,
                    norm(sub(nominal[i], nominal[j])),
                    (nominal[i][1] - nominal[j][1]).abs(),
                ];
                match keyed
                    .iter_mut()
                    .find(|(k, _)| k.iter().zip(&key).all(|(x, y)| (x - y).abs() < eps))
                {
                    Some((_, v)) => v.push(j),
                    None => keyed.push((key, vec![j])),
                }
            }
            keyed.sort_by(|a, b| {
                a.0.iter()
                    .zip(&b.0)
                    .map(|(x, y)| x.total_cmp(y))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            groups.push(keyed.into_iter().map(|(_, v)| v).collect());
        }
        ZoneExclusion {
            az: speakers.iter().map(|s| s.nominal_azimuth_deg).collect(),
            el: speakers.iter().map(|s| s.nominal_elevation_deg).collect(),
            nominal,
            groups,
        }
    }

    /// Marks the speakers inside any of `zones` in `excluded`.
    pub fn excluded(&self, zones: &[Zone], excluded: &mut [bool]) {
        let eps = 1e-6;
        for (i, ex) in excluded.iter_mut().enumerate().take(self.nominal.len()) {
            let p = self.nominal[i];
            for z in zones {
                let inside = match *z {
                    Zone::Cartesian {
                        min_x,
                        max_x,
                        min_y,
                        max_y,
                        min_z,
                        max_z,
                    } => {
                        p[0] - eps < max_x
                            && p[1] - eps < max_y
                            && p[2] - eps < max_z
                            && p[0] + eps > min_x
                            && p[1] + eps > min_y
                            && p[2] + eps > min_z
                    }
                    Zone::Polar {
                        min_elevation_deg,
                        max_elevation_deg,
                        min_azimuth_deg,
                        max_azimuth_deg,
                    } => {
                        self.el[i] - eps < max_elevation_deg
                            && self.el[i] + eps > min_elevation_deg
                            && (self.el[i].abs() > 90.0 - eps
                                || inside_angle_range(
                                    self.az[i],
                                    min_azimuth_deg,
                                    max_azimuth_deg,
                                    eps,
                                ))
                    }
                };
                if inside {
                    *ex = true;
                }
            }
        }
    }

    /// Gains with the power of excluded speakers moved to their nearest allowed group:
    /// `g'_j = √(Σ_i g_i² D_ij)`. Nothing changes if none or all are excluded.
    pub fn apply(&self, excluded: &[bool], gains: &mut [f64]) {
        let n = self.nominal.len();
        if excluded[..n].iter().all(|&e| e) || excluded[..n].iter().all(|&e| !e) {
            return;
        }
        let mut power = [0.0; super::MAX_SPEAKERS];
        for (i, g) in gains[..n].iter().enumerate() {
            let p = g * g;
            if p == 0.0 {
                continue;
            }
            for group in &self.groups[i] {
                let allowed = group.iter().filter(|&&j| !excluded[j]).count();
                if allowed > 0 {
                    let share = p / allowed as f64;
                    for &j in group.iter().filter(|&&j| !excluded[j]) {
                        power[j] += share;
                    }
                    break;
                }
            }
        }
        for j in 0..n {
            gains[j] = power[j].sqrt();
        }
    }
}
