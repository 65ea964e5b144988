//! Higher-order Ambisonics decoding as ITU-R BS.2127 §9 (scene-based renderer): real
//! spherical harmonics in ACN order with N3D, SN3D or FuMa normalisation, and the AllRAD
//! decoder matrix to any loudspeaker layout (a dense, even set of virtual speakers
//! sampling the sphere, each panned to the real speakers by the BS.2127 point-source
//! panner, normalised to unit mean power over the sphere). Pure metadata → matrix: the
//! engine applies the matrix as static gains.

use thiserror::Error;

pub use crate::scene::mix::{HoaFormat, HoaNormalization};

#[derive(Debug, Error, PartialEq)]
pub enum HoaError {
    #[error("HOA channel {channel}: order {order}, degree {degree} ({allowed})")]
    Component {
        channel: usize,
        order: u32,
        degree: i32,
        allowed: &'static str,
    },
}

/// The highest order halo decodes.
pub const MAX_ORDER: u32 = 10;

/// Virtual speakers of the AllRAD design (BS.2127 uses a 5200-point design).
const VIRTUAL_POINTS: usize = 5200;

/// The Ambisonics Channel Number of order `n`, degree `m`.
pub fn acn(n: u32, m: i32) -> usize {
    (i64::from(n) * i64::from(n) + i64::from(n) + i64::from(m)) as usize
}

/// The order and degree of an Ambisonics Channel Number.
pub fn from_acn(acn: usize) -> (u32, i32) {
    let n = (acn as f64).sqrt().floor() as usize;
    let n = if (n + 1) * (n + 1) <= acn { n + 1 } else { n };
    (n as u32, acn as i32 - (n * n + n) as i32)
}

fn factorial(k: u32) -> f64 {
    (1..=k).map(f64::from).product()
}

/// The normalisation factor of order `n`, degree `|m|`.
fn norm(normalization: HoaNormalization, n: u32, abs_m: u32) -> f64 {
    let sn3d = (factorial(n - abs_m) / factorial(n + abs_m)).sqrt();
    match normalization {
        HoaNormalization::N3D => (2.0 * f64::from(n) + 1.0).sqrt() * sn3d,
        HoaNormalization::SN3D => sn3d,
        HoaNormalization::FuMa => {
            let k = match (n, abs_m) {
                (0, 0) => std::f64::consts::FRAC_1_SQRT_2,
                (2, 1) | (2, 2) => 2.0 / 3f64.sqrt(),
                (3, 1) => (45.0f64 / 32.0).sqrt(),
                (3, 2) => 3.0 / 5f64.sqrt(),
                (3, 3) => (8.0f64 / 5.0).sqrt(),
                _ => 1.0,
            };
            sn3d * k
        }
    }
}

/// The associated Legendre function `P_n^m(x)` without the Condon–Shortley phase.
fn legendre(n: u32, m: u32, x: f64) -> f64 {
    // P_m^m = (2m − 1)!! (1 − x²)^(m/2), then upwards in n.
    let s = (1.0 - x * x).max(0.0).sqrt();
    let mut pmm = 1.0;
    for i in 0..m {
        pmm *= f64::from(2 * i + 1) * s;
    }
    if n == m {
        return pmm;
    }
    let mut p_prev = pmm;
    let mut p = x * f64::from(2 * m + 1) * pmm;
    for l in (m + 2)..=n {
        let next =
            (x * f64::from(2 * l - 1) * p - f64::from(l + m - 1) * p_prev) / f64::from(l - m);
        p_prev = p;
        p = next;
    }
    p
}

/// The real spherical harmonic `Y_n^m` at a direction (degrees; azimuth positive to the
/// left, elevation up), with the given normalisation.
pub fn sph_harm(n: u32, m: i32, azimuth_deg: f64, elevation_deg: f64, nm: HoaNormalization) -> f64 {
    let (az, el) = (azimuth_deg.to_radians(), elevation_deg.to_radians());
    let abs_m = m.unsigned_abs();
    let scale = match m.cmp(&0) {
        std::cmp::Ordering::Greater => std::f64::consts::SQRT_2 * (f64::from(m) * az).cos(),
        std::cmp::Ordering::Less => -std::f64::consts::SQRT_2 * (f64::from(m) * az).sin(),
        std::cmp::Ordering::Equal => 1.0,
    };
    norm(nm, n, abs_m) * legendre(n, abs_m, el.sin()) * scale
}

/// The format is decodable: degrees within their orders, orders up to [`MAX_ORDER`] (3
/// for FuMa).
pub fn check(format: &HoaFormat) -> Result<(), HoaError> {
    let max = if format.normalization == HoaNormalization::FuMa {
        3
    } else {
        MAX_ORDER
    };
    for (channel, &(order, degree)) in format.channels.iter().enumerate() {
        if order > max || degree.unsigned_abs() > order {
            return Err(HoaError::Component {
                channel,
                order,
                degree,
                allowed: if format.normalization == HoaNormalization::FuMa {
                    "FuMa: orders 0…3, |degree| ≤ order"
                } else {
                    "orders 0…10, |degree| ≤ order"
                },
            });
        }
    }
    Ok(())
}

/// `count` directions spread evenly over the sphere (a Fibonacci lattice): (azimuth,
/// elevation) in degrees.
pub fn sphere_points(count: usize) -> Vec<(f64, f64)> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    (0..count)
        .map(|i| {
            let z = 1.0 - (2.0 * i as f64 + 1.0) / count as f64;
            let az = (golden * i as f64).rem_euclid(std::f64::consts::TAU);
            (
                crate::scene::geometry::wrap_deg(az.to_degrees()),
                z.asin().to_degrees(),
            )
        })
        .collect()
}

/// The BS.2127 §9 AllRAD decoder for `format` to `speakers` outputs: `pan(azimuth,
/// elevation, gains)` gives the point-source panner's gains of a direction (zero on LFE
/// channels). Returns the matrix as rows per speaker (`[speaker][hoa channel]`),
/// normalised so that a plane wave's power, averaged over the sphere, is 1.
pub fn decode_matrix(
    format: &HoaFormat,
    speakers: usize,
    mut pan: impl FnMut(f64, f64, &mut [f64]),
) -> Result<Vec<Vec<f64>>, HoaError> {
    check(format)?;
    let points = sphere_points(VIRTUAL_POINTS);
    let nc = format.channels.len();
    let mut d = vec![vec![0.0; nc]; speakers];
    let mut g = vec![0.0; speakers];
    let mut y = vec![0.0; nc];
    // D = G_virt · Y_virt(N3D)ᵀ, then each column converted to the file's normalisation.
    for &(az, el) in &points {
        pan(az, el, &mut g);
        for (c, &(n, m)) in format.channels.iter().enumerate() {
            y[c] = sph_harm(n, m, az, el, HoaNormalization::N3D);
        }
        for (row, &gs) in d.iter_mut().zip(&g) {
            if gs != 0.0 {
                for (v, &yc) in row.iter_mut().zip(&y) {
                    *v += gs * yc;
                }
            }
        }
    }
    for (c, &(n, m)) in format.channels.iter().enumerate() {
        let k = norm(HoaNormalization::N3D, n, m.unsigned_abs())
            / norm(format.normalization, n, m.unsigned_abs());
        for row in d.iter_mut() {
            row[c] *= k;
        }
    }
    // Unit mean power of a plane wave (encoded in the file's normalisation) over the sphere.
    let mut power = 0.0;
    for &(az, el) in &points {
        for (c, &(n, m)) in format.channels.iter().enumerate() {
            y[c] = sph_harm(n, m, az, el, format.normalization);
        }
        for row in &d {
            let s: f64 = row.iter().zip(&y).map(|(a, b)| a * b).sum();
            power += s * s;
        }
    }
    let mean = power / points.len() as f64;
    if mean > 0.0 {
        let k = 1.0 / mean.sqrt();
        for v in d.iter_mut().flatten() {
            *v *= k;
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acn_round_trips() {
        for a in 0..64 {
            let (n, m) = from_acn(a);
            assert_eq!(acn(n, m), a);
            assert!(m.unsigned_abs() <= n);
        }
        assert_eq!(from_acn(3), (1, 1));
    }

    #[test]
    fn first_order_sn3d_is_ambix() {
        // AmbiX: W = 1, Y = sin(az)cos(el), Z = sin(el), X = cos(az)cos(el).
        let (az, el) = (30.0f64, 20.0f64);
        let s = HoaNormalization::SN3D;
        let (a, e) = (az.to_radians(), el.to_radians());
        assert!((sph_harm(0, 0, az, el, s) - 1.0).abs() < 1e-12);
        assert!((sph_harm(1, -1, az, el, s) - a.sin() * e.cos()).abs() < 1e-12);
        assert!((sph_harm(1, 0, az, el, s) - e.sin()).abs() < 1e-12);
        assert!((sph_harm(1, 1, az, el, s) - a.cos() * e.cos()).abs() < 1e-12);
    }

    #[test]
    fn n3d_harmonics_are_orthonormal_over_the_sphere() {
        // (1/4π)∫ Y_a Y_b = δ_ab for N3D, sampled on the even point set.
        let pts = sphere_points(VIRTUAL_POINTS);
        for a in 0..16 {
            for b in 0..16 {
                let (na, ma) = from_acn(a);
                let (nb, mb) = from_acn(b);
                let mean: f64 = pts
                    .iter()
                    .map(|&(az, el)| {
                        sph_harm(na, ma, az, el, HoaNormalization::N3D)
                            * sph_harm(nb, mb, az, el, HoaNormalization::N3D)
                    })
                    .sum::<f64>()
                    / pts.len() as f64;
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((mean - want).abs() < 2e-3, "ACN {a}·{b}: {mean}");
            }
        }
    }
}
