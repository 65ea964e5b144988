//! Small geometry helpers shared by the ITU-R BS.2127 object renderer: polar ⇄ Cartesian
//! in the standard's axes, piecewise-linear interpolation, angle ranges, 3×3 inverses.

/// A point or direction in room axes: `x` right, `y` front, `z` up.
pub type Vec3 = [f64; 3];

/// Cartesian point of a polar position (azimuth positive to the left, degrees).
#[inline]
pub fn cart(azimuth_deg: f64, elevation_deg: f64, distance: f64) -> Vec3 {
    let (sin_el, cos_el) = sin_cos_deg(elevation_deg);
    cart_with_elevation(azimuth_deg, sin_el, cos_el, distance)
}

/// [`cart`] with the elevation's sine and cosine given (kept by callers whose elevation
/// does not change between calls); the same result.
#[inline]
pub fn cart_with_elevation(azimuth_deg: f64, sin_el: f64, cos_el: f64, distance: f64) -> Vec3 {
    let (sin_az, cos_az) = sin_cos_deg(azimuth_deg);
    [
        -sin_az * cos_el * distance,
        cos_az * cos_el * distance,
        sin_el * distance,
    ]
}

/// Sine and cosine of an angle in degrees, to within about one unit in the last place,
/// without libm: the angle is reduced by whole quarter turns (exactly: `a − 90q` loses
/// nothing when `q` is the nearest integer to `a / 90`), the rest (±45°) evaluated by
/// the Taylor series to the 17th/18th power (truncation below 10⁻¹⁸). Exact at
/// multiples of 90° (sin 90° = 1, cos 90° = 0), odd/even in `a` exactly. Non-finite
/// angles give NaN. About a third of libm's `sin_cos` on the engine's path.
#[inline]
pub fn sin_cos_deg(a: f64) -> (f64, f64) {
    if !a.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    // Nearest whole number of quarter turns (half away from zero; `as` saturates).
    let t = a * (1.0 / 90.0);
    let qi = (t + 0.5f64.copysign(t)) as i64;
    let q = qi as f64;
    let r = a - 90.0 * q;
    let (s, c) = sin_cos_reduced_deg(r);
    // Quadrant q mod 4 (two's complement: −1 → 3).
    match qi & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// The series of [`sin_cos_deg`] for an angle already reduced to ±45° (degrees).
#[inline(always)]
pub fn sin_cos_reduced_deg(r: f64) -> (f64, f64) {
    let x = r * (std::f64::consts::PI / 180.0);
    let x2 = x * x;
    // 1/n! for the series (rounded once each, at compile time).
    const S: [f64; 8] = [
        -1.0 / 6.0,
        1.0 / 120.0,
        -1.0 / 5040.0,
        1.0 / 362_880.0,
        -1.0 / 39_916_800.0,
        1.0 / 6_227_020_800.0,
        -1.0 / 1_307_674_368_000.0,
        1.0 / 355_687_428_096_000.0,
    ];
    const C: [f64; 9] = [
        -1.0 / 2.0,
        1.0 / 24.0,
        -1.0 / 720.0,
        1.0 / 40_320.0,
        -1.0 / 3_628_800.0,
        1.0 / 479_001_600.0,
        -1.0 / 87_178_291_200.0,
        1.0 / 20_922_789_888_000.0,
        -1.0 / 6_402_373_705_728_000.0,
    ];
    // Estrin's scheme (pairs, then pairs of pairs): a short dependency chain.
    let x4 = x2 * x2;
    let x8 = x4 * x4;
    let ps = (S[0] + S[1] * x2)
        + x4 * (S[2] + S[3] * x2)
        + x8 * ((S[4] + S[5] * x2) + x4 * (S[6] + S[7] * x2));
    let pc = (C[0] + C[1] * x2)
        + x4 * (C[2] + C[3] * x2)
        + x8 * ((C[4] + C[5] * x2) + x4 * (C[6] + C[7] * x2) + x8 * C[8]);
    let s = x + x * x2 * ps;
    let c = 1.0 + x2 * pc;
    (s, c)
}

/// Azimuth of a point in degrees (0 for points on the z axis).
pub fn azimuth_deg(p: Vec3) -> f64 {
    (-p[0]).atan2(p[1]).to_degrees()
}

/// Elevation of a point in degrees.
pub fn elevation_deg(p: Vec3) -> f64 {
    p[2].atan2(p[0].hypot(p[1])).to_degrees()
}

pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn scale(a: Vec3, k: f64) -> Vec3 {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// `p / |p|`, or straight ahead for (near) zero vectors.
pub fn safe_normalise(p: Vec3) -> Vec3 {
    let n = norm(p);
    if n < 1e-10 {
        [0.0, 1.0, 0.0]
    } else {
        scale(p, 1.0 / n)
    }
}

/// Rows: the x (right), y (front) and z (up) axes rotated so that y points at
/// `(azimuth, elevation)`.
pub fn local_coordinate_system(azimuth_deg: f64, elevation_deg: f64) -> [Vec3; 3] {
    [
        cart(azimuth_deg - 90.0, 0.0, 1.0),
        cart(azimuth_deg, elevation_deg, 1.0),
        cart(azimuth_deg, elevation_deg + 90.0, 1.0),
    ]
}

/// Piecewise-linear interpolation through `(xp, fp)` (`xp` non-decreasing), clamped to
/// the end values outside.
pub fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let last = xp.len() - 1;
    if x <= xp[0] {
        return fp[0];
    }
    if x >= xp[last] {
        return fp[last];
    }
    let mut i = 0;
    while i + 1 < last && xp[i + 1] <= x {
        i += 1;
    }
    let (x0, x1) = (xp[i], xp[i + 1]);
    if x1 == x0 {
        return fp[i + 1];
    }
    fp[i] + (x - x0) * (fp[i + 1] - fp[i]) / (x1 - x0)
}

/// Whether angle `x` lies in the range from `start` (anticlockwise, increasing) to
/// `end` (degrees, within `tol`); `(-180, 180)` is every angle, `(a, a)` one angle.
pub fn inside_angle_range(x: f64, start: f64, end: f64, tol: f64) -> bool {
    let mut end = end;
    while end - 360.0 > start {
        end -= 360.0;
    }
    while end < start {
        end += 360.0;
    }
    let start_tol = start - tol;
    let mut x = x;
    while x - 360.0 >= start_tol {
        x -= 360.0;
    }
    while x < start_tol {
        x += 360.0;
    }
    x <= end + tol
}

/// `y` moved by whole turns to the first angle not below `x` (degrees).
pub fn relative_angle(x: f64, y: f64) -> f64 {
    let mut y = y;
    while y - 360.0 >= x {
        y -= 360.0;
    }
    while y < x {
        y += 360.0;
    }
    y
}

/// Inverse of the matrix whose rows are `m`; `None` if (nearly) singular.
pub fn inverse3(m: [Vec3; 3]) -> Option<[Vec3; 3]> {
    let [a, b, c] = m;
    let det = dot(a, cross(b, c));
    if det.abs() < 1e-12 {
        return None;
    }
    let k = 1.0 / det;
    // Columns of the inverse are the cross products of the rows.
    let c0 = scale(cross(b, c), k);
    let c1 = scale(cross(c, a), k);
    let c2 = scale(cross(a, b), k);
    Some([
        [c0[0], c1[0], c2[0]],
        [c0[1], c1[1], c2[1]],
        [c0[2], c1[2], c2[2]],
    ])
}

/// Row vector times matrix: `v · m`.
pub fn row_times(v: Vec3, m: &[Vec3; 3]) -> Vec3 {
    [
        v[0] * m[0][0] + v[1] * m[1][0] + v[2] * m[2][0],
        v[0] * m[0][1] + v[1] * m[1][1] + v[2] * m[2][1],
        v[0] * m[0][2] + v[1] * m[1][2] + v[2] * m[2][2],
    ]
}

/// The order of the corners of a convex, nearly planar polygon around its centre (as
/// indices into `vertices`).
pub fn ngon_vertex_order(vertices: &[Vec3]) -> Vec<usize> {
    let n = vertices.len() as f64;
    let mut centre = [0.0; 3];
    for v in vertices {
        centre = add(centre, *v);
    }
    centre = scale(centre, 1.0 / n);
    let a = sub(vertices[0], centre);
    let mut b = sub(vertices[1], centre);
    for v in &vertices[1..] {
        let r = sub(*v, centre);
        if dot(r, a).abs() < dot(b, a).abs() {
            b = r;
        }
    }
    let angles: Vec<f64> = vertices
        .iter()
        .map(|v| {
            let r = sub(*v, centre);
            dot(r, a).atan2(dot(r, b))
        })
        .collect();
    let mut order: Vec<usize> = (0..vertices.len()).collect();
    order.sort_by(|&i, &j| angles[i].total_cmp(&angles[j]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sin_cos_deg` against libm over many turns: within 2 units in the last place of
    /// 1 (the reference is reduced to ±180° first, exactly, so that libm's result
    /// carries only the rounding of a small angle's degree → radian conversion).
    #[test]
    fn sin_cos_deg_matches_libm() {
        let mut worst: f64 = 0.0;
        for k in -200_000..=200_000 {
            let a = k as f64 * 0.0123 + 0.000_37 * (k % 7) as f64;
            let (s, c) = sin_cos_deg(a);
            let mut reduced = a % 360.0;
            if reduced > 180.0 {
                reduced -= 360.0;
            } else if reduced < -180.0 {
                reduced += 360.0;
            }
            let r = reduced.to_radians();
            worst = worst.max((s - r.sin()).abs()).max((c - r.cos()).abs());
        }
        assert!(worst < 4.5e-16, "worst {worst:e}");
    }

    /// Exact at multiples of 90°, odd and even in the angle, on the unit circle.
    #[test]
    fn sin_cos_deg_exact_points_and_symmetry() {
        assert_eq!(sin_cos_deg(0.0), (0.0, 1.0));
        assert_eq!(sin_cos_deg(90.0), (1.0, 0.0));
        assert_eq!(sin_cos_deg(-90.0), (-1.0, 0.0));
        assert_eq!(sin_cos_deg(180.0).1, -1.0);
        assert_eq!(sin_cos_deg(270.0).0, -1.0);
        assert!((sin_cos_deg(30.0).0 - 0.5).abs() <= f64::EPSILON / 2.0);
        for k in 0..10_000 {
            let a = k as f64 * 0.0731;
            let (s, c) = sin_cos_deg(a);
            let (s2, c2) = sin_cos_deg(-a);
            assert_eq!((s2, c2), (-s, c), "{a}");
            assert!((s * s + c * c - 1.0).abs() < 4e-16, "{a}");
        }
        assert!(sin_cos_deg(f64::NAN).0.is_nan());
        assert!(sin_cos_deg(f64::INFINITY).1.is_nan());
    }
}
