//! ITU-R BS.2127 §7.3.3–7.3.4 screen scaling (screenRef) and screen edge lock, and the
//! §10 polar ⇄ Cartesian point conversion they use for Cartesian objects; reference screens
//! in polar and Cartesian form (a programme's audioProgrammeReferenceScreen) as edges.

use super::geom::{
    Vec3, azimuth_deg, cart, elevation_deg, inside_angle_range, interp, local_coordinate_system,
    relative_angle,
};

/// A polar screen: aspect ratio, centre direction (distance 1) and width in azimuth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolarScreen {
    pub aspect_ratio: f64,
    pub centre_azimuth_deg: f64,
    pub centre_elevation_deg: f64,
    pub width_azimuth_deg: f64,
}

/// The default screen of ITU-R BS.2076 / BS.2127: 58° wide, 1.78:1, straight ahead.
pub const DEFAULT_SCREEN: PolarScreen = PolarScreen {
    aspect_ratio: 1.78,
    centre_azimuth_deg: 0.0,
    centre_elevation_deg: 0.0,
    width_azimuth_deg: 58.0,
};

/// A programme's reference screen (either form) as BS.2127 §7.3.3 uses it: its edges.
pub fn reference_edges(screen: &crate::scene::mix::ReferenceScreen) -> Edges {
    match split(screen) {
        Form::Polar(p) => Edges::of(&p),
        Form::Cartesian(c) => Edges::of_cartesian(&c),
    }
}

/// Why a reference screen cannot be used (values out of range, or a screen BS.2127
/// cannot scale from), as "what is wrong" and "what is allowed"; `None` when it can.
pub fn reference_problem(
    screen: &crate::scene::mix::ReferenceScreen,
) -> Option<(String, &'static str)> {
    use crate::scene::mix::ReferenceScreen as R;
    let bad = |what: &str, v: f64| format!("{what} {v} is out of range");
    let (ar, checks): (f64, Vec<(&str, f64, bool, &'static str)>) = match *screen {
        R::Polar {
            aspect_ratio,
            azimuth_deg,
            elevation_deg,
            distance,
            width_deg,
        } => (
            aspect_ratio,
            vec![
                (
                    "screenCentrePosition azimuth",
                    azimuth_deg,
                    (-180.0..=180.0).contains(&azimuth_deg),
                    "an azimuth from -180 to 180 degrees",
                ),
                (
                    "screenCentrePosition elevation",
                    elevation_deg,
                    (-90.0..=90.0).contains(&elevation_deg),
                    "an elevation from -90 to 90 degrees",
                ),
                (
                    "screenCentrePosition distance",
                    distance,
                    distance > 0.0 && distance.is_finite(),
                    "a distance above 0",
                ),
                (
                    "screenWidth azimuth",
                    width_deg,
                    width_deg > 0.0 && width_deg < 180.0,
                    "a width above 0 and below 180 degrees",
                ),
            ],
        ),
        R::Cartesian {
            aspect_ratio,
            x,
            y,
            z,
            width,
        } => (
            aspect_ratio,
            vec![
                (
                    "screenCentrePosition X",
                    x,
                    (-1.0..=1.0).contains(&x),
                    "X from -1 to 1",
                ),
                (
                    "screenCentrePosition Y",
                    y,
                    (-1.0..=1.0).contains(&y),
                    "Y from -1 to 1",
                ),
                (
                    "screenCentrePosition Z",
                    z,
                    (-1.0..=1.0).contains(&z),
                    "Z from -1 to 1",
                ),
                (
                    "screenWidth X",
                    width,
                    width > 0.0 && width <= 2.0,
                    "a width above 0 and at most 2",
                ),
            ],
        ),
    };
    if !(ar > 0.0 && ar.is_finite()) {
        return Some((bad("aspectRatio", ar), "an aspect ratio above 0"));
    }
    for (what, v, ok, allowed) in checks {
        if !ok {
            return Some((bad(what, v), allowed));
        }
    }
    let (edges, vertical) = match split(screen) {
        Form::Polar(p) => (Edges::of(&p), polar_vertical_azimuths(&p)),
        Form::Cartesian(c) => (Edges::of_cartesian(&c), cartesian_vertical_azimuths(&c)),
    };
    edges.problem(vertical).map(|p| {
        (
            p.to_string(),
            "a screen whose left edge is left of its right edge without passing ±180° \
             azimuth, and whose top and bottom stay within ±90° elevation",
        )
    })
}

enum Form {
    Polar(PolarScreen),
    Cartesian(CartesianScreen),
}

fn split(screen: &crate::scene::mix::ReferenceScreen) -> Form {
    use crate::scene::mix::ReferenceScreen as R;
    match *screen {
        R::Polar {
            aspect_ratio,
            azimuth_deg,
            elevation_deg,
            width_deg,
            ..
        } => Form::Polar(PolarScreen {
            aspect_ratio,
            centre_azimuth_deg: azimuth_deg,
            centre_elevation_deg: elevation_deg,
            width_azimuth_deg: width_deg,
        }),
        R::Cartesian {
            aspect_ratio,
            x,
            y,
            z,
            width,
        } => Form::Cartesian(CartesianScreen {
            aspect_ratio,
            centre_x: x,
            centre_y: y,
            centre_z: z,
            width_x: width,
        }),
    }
}

/// A screen edge to lock to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HorizontalEdge {
    Left,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerticalEdge {
    Top,
    Bottom,
}

/// The azimuths of a screen's left and right edges and elevations of its bottom and top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edges {
    pub left_azimuth_deg: f64,
    pub right_azimuth_deg: f64,
    pub bottom_elevation_deg: f64,
    pub top_elevation_deg: f64,
}

/// A Cartesian screen (BS.2076-2 `audioProgrammeReferenceScreen` in Cartesian form): a
/// rectangle in the plane y = `centre_y`, facing the listener, `width_x` wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CartesianScreen {
    pub aspect_ratio: f64,
    pub centre_x: f64,
    pub centre_y: f64,
    pub centre_z: f64,
    pub width_x: f64,
}

impl Edges {
    /// The edges of a Cartesian screen: the azimuths of its left and right edge centres
    /// and the elevations of its bottom and top edge centres, from the room's centre
    /// (the Cartesian coordinates taken as a direction, as BS.2127 §7.3.3 does).
    pub fn of_cartesian(screen: &CartesianScreen) -> Edges {
        let centre = [screen.centre_x, screen.centre_y, screen.centre_z];
        let half_width = screen.width_x / 2.0;
        let half_height = half_width / screen.aspect_ratio;
        let at = |dx: f64, dz: f64| [centre[0] + dx, centre[1], centre[2] + dz];
        Edges {
            left_azimuth_deg: azimuth_deg(at(-half_width, 0.0)),
            right_azimuth_deg: azimuth_deg(at(half_width, 0.0)),
            bottom_elevation_deg: elevation_deg(at(0.0, -half_height)),
            top_elevation_deg: elevation_deg(at(0.0, half_height)),
        }
    }

    /// Why these edges cannot be a reference screen (BS.2127 §7.3.3 / EAR need its right
    /// edge to the right of its left edge without passing ±180° azimuth, and its top and
    /// bottom edge centres at one azimuth, i.e. not past ±90° elevation), or `None`.
    pub fn problem(&self, vertical_azimuths: (f64, f64)) -> Option<&'static str> {
        if !(self.left_azimuth_deg.is_finite()
            && self.right_azimuth_deg.is_finite()
            && self.bottom_elevation_deg.is_finite()
            && self.top_elevation_deg.is_finite())
        {
            return Some("the screen's edges are not finite directions");
        }
        if self.right_azimuth_deg > self.left_azimuth_deg {
            return Some(
                "the screen reaches round behind the listener (its right edge is left of its \
                 left edge, past ±180° azimuth)",
            );
        }
        if vertical_azimuths.0 - vertical_azimuths.1 > 1e-3 {
            return Some(
                "the screen reaches over the top or under the bottom (past ±90° elevation)",
            );
        }
        None
    }
}

/// The azimuths of a polar screen's bottom and top edge centres (equal unless the
/// screen reaches past ±90° elevation), for [`Edges::problem`].
pub fn polar_vertical_azimuths(screen: &PolarScreen) -> (f64, f64) {
    let centre = cart(screen.centre_azimuth_deg, screen.centre_elevation_deg, 1.0);
    let height = (screen.width_azimuth_deg / 2.0).to_radians().tan() / screen.aspect_ratio;
    let axes = local_coordinate_system(screen.centre_azimuth_deg, screen.centre_elevation_deg);
    let z = axes[2].map(|v| v * height);
    let m = |k: f64| {
        [
            centre[0] + k * z[0],
            centre[1] + k * z[1],
            centre[2] + k * z[2],
        ]
    };
    (azimuth_deg(m(-1.0)), azimuth_deg(m(1.0)))
}

/// The azimuths of a Cartesian screen's bottom and top edge centres, for
/// [`Edges::problem`].
pub fn cartesian_vertical_azimuths(screen: &CartesianScreen) -> (f64, f64) {
    let half_height = screen.width_x / 2.0 / screen.aspect_ratio;
    let (x, y, z) = (screen.centre_x, screen.centre_y, screen.centre_z);
    (
        azimuth_deg([x, y, z - half_height]),
        azimuth_deg([x, y, z + half_height]),
    )
}

impl Edges {
    pub fn of(screen: &PolarScreen) -> Edges {
        let centre = cart(screen.centre_azimuth_deg, screen.centre_elevation_deg, 1.0);
        let width = (screen.width_azimuth_deg / 2.0).to_radians().tan();
        let height = width / screen.aspect_ratio;
        let axes = local_coordinate_system(screen.centre_azimuth_deg, screen.centre_elevation_deg);
        let x = axes[0].map(|v| v * width);
        let z = axes[2].map(|v| v * height);
        let m = |a: Vec3, b: Vec3, k: f64| [a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2]];
        Edges {
            left_azimuth_deg: azimuth_deg(m(centre, x, -1.0)),
            right_azimuth_deg: azimuth_deg(m(centre, x, 1.0)),
            bottom_elevation_deg: elevation_deg(m(centre, z, -1.0)),
            top_elevation_deg: elevation_deg(m(centre, z, 1.0)),
        }
    }
}

/// Screen scaling of an (azimuth, elevation) from the reference to the reproduction
/// screen, piecewise linear through the edges.
pub fn scale_az_el(reference: &Edges, reproduction: &Edges, az: f64, el: f64) -> (f64, f64) {
    (
        interp(
            az,
            &[
                -180.0,
                reference.right_azimuth_deg,
                reference.left_azimuth_deg,
                180.0,
            ],
            &[
                -180.0,
                reproduction.right_azimuth_deg,
                reproduction.left_azimuth_deg,
                180.0,
            ],
        ),
        interp(
            el,
            &[
                -90.0,
                reference.bottom_elevation_deg,
                reference.top_elevation_deg,
                90.0,
            ],
            &[
                -90.0,
                reproduction.bottom_elevation_deg,
                reproduction.top_elevation_deg,
                90.0,
            ],
        ),
    )
}

/// For layouts with U±045, moves an azimuth so that vertical allocentric panning stays
/// vertical (§7.3.3).
pub fn compensate_position(az: f64, el: f64, has_u045: bool) -> (f64, f64) {
    if has_u045 {
        let right = interp(el, &[0.0, 30.0, 90.0], &[30.0, 30.0 * (30.0 / 45.0), 30.0]);
        (
            interp(
                az,
                &[-180.0, -30.0, 30.0, 180.0],
                &[-180.0, -right, right, 180.0],
            ),
            el,
        )
    } else {
        (az, el)
    }
}

const MAPPING: [(f64, Vec3); 5] = [
    (0.0, [0.0, 1.0, 0.0]),
    (-30.0, [1.0, 1.0, 0.0]),
    (-110.0, [1.0, -1.0, 0.0]),
    (110.0, [-1.0, -1.0, 0.0]),
    (30.0, [-1.0, 1.0, 0.0]),
];
const EL_TOP: f64 = 30.0;
const EL_TOP_TILDE: f64 = 45.0;

fn map_az_to_linear(left_az: f64, right_az: f64, az: f64) -> f64 {
    let mid = (left_az + right_az) / 2.0;
    let range = right_az - mid;
    let gain_r = 0.5 + 0.5 * (az - mid).to_radians().tan() / range.to_radians().tan();
    gain_r.atan2(1.0 - gain_r) * (2.0 / std::f64::consts::PI)
}

fn map_linear_to_az(left_az: f64, right_az: f64, x: f64) -> f64 {
    let mid = (left_az + right_az) / 2.0;
    let range = right_az - mid;
    let (gl, gr) = (
        (x * std::f64::consts::FRAC_PI_2).cos(),
        (x * std::f64::consts::FRAC_PI_2).sin(),
    );
    let gain_r = gr / (gl + gr);
    mid + (2.0 * (gain_r - 0.5) * range.to_radians().tan())
        .atan()
        .to_degrees()
}

/// BS.2127 §10 polar → Cartesian point conversion.
pub fn point_polar_to_cart(az: f64, el: f64, d: f64) -> Vec3 {
    let (z, r_xy) = if el.abs() > EL_TOP {
        let t = (el.abs() - EL_TOP) / (90.0 - EL_TOP);
        let el_tilde = EL_TOP_TILDE + (90.0 - EL_TOP_TILDE) * t;
        (d * el.signum(), d * (90.0 - el_tilde).to_radians().tan())
    } else {
        let el_tilde = EL_TOP_TILDE * el / EL_TOP;
        (el_tilde.to_radians().tan() * d, d)
    };
    let m = MAPPING.len();
    let i = (0..m)
        .find(|&i| inside_angle_range(az, MAPPING[(i + 1) % m].0, MAPPING[i].0, 0.0))
        .unwrap_or(0);
    let ((left_az, left_pos), (right_az, right_pos)) = (MAPPING[i], MAPPING[(i + 1) % m]);
    let rel_az = relative_angle(right_az, az);
    let rel_left = relative_angle(right_az, left_az);
    let p = map_az_to_linear(rel_left, right_az, rel_az);
    [
        r_xy * (left_pos[0] + (right_pos[0] - left_pos[0]) * p),
        r_xy * (left_pos[1] + (right_pos[1] - left_pos[1]) * p),
        z,
    ]
}

/// BS.2127 §10 Cartesian → polar point conversion: (azimuth, elevation, distance).
pub fn point_cart_to_polar(x: f64, y: f64, z: f64) -> (f64, f64, f64) {
    let eps = 1e-10;
    if x.abs() < eps && y.abs() < eps {
        if z.abs() < eps {
            return (0.0, 0.0, 0.0);
        }
        return (0.0, z.signum() * 90.0, z.abs());
    }
    let az_xy = azimuth_deg([x, y, 0.0]);
    let m = MAPPING.len();
    let i = (0..m)
        .find(|&i| {
            let (left, right) = (MAPPING[i].1, MAPPING[(i + 1) % m].1);
            inside_angle_range(az_xy, azimuth_deg(right), azimuth_deg(left), 0.0)
        })
        .unwrap_or(0);
    let ((left_az, lp), (right_az, rp)) = (MAPPING[i], MAPPING[(i + 1) % m]);
    // [x y] = [gl gr] · [[lp.x lp.y], [rp.x rp.y]]
    let det = lp[0] * rp[1] - lp[1] * rp[0];
    let gl = (x * rp[1] - y * rp[0]) / det;
    let gr = (y * lp[0] - x * lp[1]) / det;
    let r_xy = gl + gr;
    let rel_left = relative_angle(right_az, left_az);
    let az = relative_angle(-180.0, map_linear_to_az(rel_left, right_az, gr / r_xy));
    let el_tilde = (z / r_xy).atan().to_degrees();
    if el_tilde.abs() > EL_TOP_TILDE {
        let abs_el =
            EL_TOP + (90.0 - EL_TOP) * (el_tilde.abs() - EL_TOP_TILDE) / (90.0 - EL_TOP_TILDE);
        (az, el_tilde.signum() * abs_el, z.abs())
    } else {
        (az, EL_TOP * el_tilde / EL_TOP_TILDE, r_xy)
    }
}
