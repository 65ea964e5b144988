//! Speakers as the ITU-R BS.2127 object renderer sees them: BS.2051 labels with their
//! nominal polar positions (from the label) and allocentric cube positions, and each
//! layout channel's real (measured) position.

use super::geom::{Vec3, cart};
use super::screen::point_polar_to_cart;
use crate::scene::layout::Layout;

/// One non-LFE loudspeaker of a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Speaker {
    /// BS.2051 label (`M+030`), or the layout's name for a speaker that has none.
    pub label: String,
    /// The layout channel it feeds.
    pub channel: usize,
    pub nominal_azimuth_deg: f64,
    pub nominal_elevation_deg: f64,
    pub real_azimuth_deg: f64,
    pub real_elevation_deg: f64,
    /// Position in the allocentric cube (BS.2127 §7.3.11 table).
    pub allocentric: Vec3,
}

impl Speaker {
    /// Unit vector of the nominal position.
    pub fn nominal(&self) -> Vec3 {
        cart(self.nominal_azimuth_deg, self.nominal_elevation_deg, 1.0)
    }

    /// Unit vector of the real position.
    pub fn real(&self) -> Vec3 {
        cart(self.real_azimuth_deg, self.real_elevation_deg, 1.0)
    }
}

/// Nominal (azimuth, elevation) of a BS.2051 label such as `M+030`, `U-135`, `T+000`,
/// `UH+180`, `B+045`: the layer letter gives the elevation, the number the azimuth.
pub fn nominal_of_label(label: &str) -> Option<(f64, f64)> {
    let (elevation, rest) = if let Some(r) = label.strip_prefix("UH") {
        (45.0, r)
    } else if let Some(r) = label.strip_prefix('M') {
        (0.0, r)
    } else if let Some(r) = label.strip_prefix('U') {
        (30.0, r)
    } else if let Some(r) = label.strip_prefix('T') {
        (90.0, r)
    } else if let Some(r) = label.strip_prefix('B') {
        (-30.0, r)
    } else {
        return None;
    };
    let (sign, digits) = match rest.as_bytes().first() {
        Some(b'+') => (1.0, &rest[1..]),
        Some(b'-') => (-1.0, &rest[1..]),
        _ => return None,
    };
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let az: f64 = digits.parse().ok()?;
    if az > 180.0 {
        return None;
    }
    Some((sign * az, elevation))
}

/// Allocentric position of a BS.2051 label (the same for every layout that has it).
pub fn allocentric_of_label(label: &str) -> Option<Vec3> {
    let p = match label {
        "M+000" => [0.0, 1.0, 0.0],
        "M+030" => [-1.0, 1.0, 0.0],
        "M-030" => [1.0, 1.0, 0.0],
        "M+060" => [-1.0, 0.414214, 0.0],
        "M-060" => [1.0, 0.414214, 0.0],
        "M+090" => [-1.0, 0.0, 0.0],
        "M-090" => [1.0, 0.0, 0.0],
        "M+110" | "M+135" => [-1.0, -1.0, 0.0],
        "M-110" | "M-135" => [1.0, -1.0, 0.0],
        "M+180" => [0.0, -1.0, 0.0],
        "U+000" => [0.0, 1.0, 1.0],
        "U+030" | "U+045" => [-1.0, 1.0, 1.0],
        "U-030" | "U-045" => [1.0, 1.0, 1.0],
        "U+090" => [-1.0, 0.0, 1.0],
        "U-090" => [1.0, 0.0, 1.0],
        "U+110" | "U+135" => [-1.0, -1.0, 1.0],
        "U-110" | "U-135" => [1.0, -1.0, 1.0],
        "U+180" | "UH+180" => [0.0, -1.0, 1.0],
        "T+000" => [0.0, 0.0, 1.0],
        "B+000" => [0.0, 1.0, -1.0],
        "B+045" => [-1.0, 1.0, -1.0],
        "B-045" => [1.0, 1.0, -1.0],
        _ => return None,
    };
    Some(p)
}

/// Allocentric position for a speaker without a BS.2051 label (halo's own rule; the
/// standard has none): the layer from the elevation (below −10° floor, above +10°
/// ceiling, above 75° the ceiling's centre), the horizontal position on the walls of
/// the cube (Chebyshev-normalised, so a speaker at 45° lands in a corner).
pub fn allocentric_fallback(azimuth_deg: f64, elevation_deg: f64) -> Vec3 {
    if elevation_deg > 75.0 {
        return [0.0, 0.0, 1.0];
    }
    let z = if elevation_deg > 10.0 {
        1.0
    } else if elevation_deg < -10.0 {
        -1.0
    } else {
        0.0
    };
    let h = cart(azimuth_deg, 0.0, 1.0);
    let m = h[0].abs().max(h[1].abs());
    let r = |v: f64| (v / m * 1e6).round() / 1e6;
    [r(h[0]), r(h[1]), z]
}

/// Allocentric position of a screen speaker (M+SC, M-SC) at its real azimuth, as BS.2127
/// places them (EAR's `allocentric.py`): the §10 polar → Cartesian conversion of the
/// mirrored left position, pinned to the front wall (|azimuth| ≤ 30°) or to the side wall.
fn screen_speaker_allocentric(azimuth_deg: f64) -> Vec3 {
    let mut p = point_polar_to_cart(azimuth_deg.abs(), 0.0, 1.0);
    if (p[1] - 1.0).abs() < 1e-10 {
        p[1] = 1.0;
    }
    if (p[0] + 1.0).abs() < 1e-10 {
        p[0] = -1.0;
    }
    [p[0] * azimuth_deg.signum(), p[1], p[2]]
}

/// The non-LFE speakers of a layout, in channel order.
pub fn speakers_of(layout: &Layout) -> Vec<Speaker> {
    layout
        .channels
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.lfe)
        .map(|(i, c)| {
            let nominal = nominal_of_label(&c.name);
            let (naz, nel) = nominal.unwrap_or((c.azimuth_deg, c.elevation_deg));
            Speaker {
                label: c.name.clone(),
                channel: i,
                nominal_azimuth_deg: naz,
                nominal_elevation_deg: nel,
                real_azimuth_deg: c.azimuth_deg,
                real_elevation_deg: c.elevation_deg,
                allocentric: if matches!(c.name.as_str(), "M+SC" | "M-SC") {
                    screen_speaker_allocentric(c.azimuth_deg)
                } else {
                    allocentric_of_label(&c.name).unwrap_or_else(|| allocentric_fallback(naz, nel))
                },
            }
        })
        .collect()
}
