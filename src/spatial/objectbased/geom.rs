//! Small geometry helpers shared by the ITU-R BS.2127 object renderer: polar ⇄ Cartesian
//! in the standard's axes, piecewise-linear interpolation, angle ranges, 3×3 inverses.

/// A point or direction in room axes: `x` right, `y` front, `z` up.
pub type Vec3 = [f64; 3];

/// Cartesian point of a polar position (azimuth positive to the left, degrees).
pub fn cart(azimuth_deg: f64, elevation_deg: f64, distance: f64) -> Vec3 {
    let (az, el) = (azimuth_deg.to_radians(), elevation_deg.to_radians());
    [
        -az.sin() * el.cos() * distance,
        az.cos() * el.cos() * distance,
        el.sin() * distance,
    ]
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
