//! Directions and positions: polar ⇄ unit vectors, and the room-centric Cartesian mapping
//! (after ITU-R BS.2127 §10, anchored on each layout's own speakers).
//!
//! Conventions (ITU-R BS.2051 / BS.2127): azimuth in degrees, positive to the **left**,
//! 0 straight ahead; elevation in degrees, positive up. Unit vectors use the room axes:
//! `x` to the right, `y` to the front, `z` up.
//!
//! # The room mapping
//!
//! Objects placed in room coordinates (`x` −1 left … +1 right, `y` −1 back … +1 front,
//! `z` 0 ear level … +1 ceiling) are turned into directions so that the room's landmarks
//! land on the layout's speakers whatever the layout:
//!
//! * the horizontal position is projected onto the walls (Chebyshev radius
//!   `r = max(|x|, |y|)`) and walked along them: front wall midpoint → 0°, front corner →
//!   the layout's front speaker (M±030), side wall midpoint → its side speaker (M±090
//!   where there is one, else halfway), back corner → its rearmost ear-level speaker
//!   (M±110 in 5.x, M±135 in 7.x), back wall midpoint → 180°; piecewise linear in between;
//! * elevation follows `θ = atan2(|z|, r)`: `θ = 45°` (a ceiling edge) → the layout's
//!   upper-layer elevation, `θ = 90°` → the zenith, piecewise linear in between;
//! * in the upper layer the corner anchors move to the top speakers' azimuths (U±045,
//!   U±135 in 7.1.4), blended with elevation, so ceiling corners land on the top speakers.
//!
//! This keeps BS.2127's property (corners on speakers, continuous everywhere) with a
//! simpler, documented formula. The mapping also returns how far the point is from the
//! room's centre (`0` centre … `1` on a wall, floor or ceiling), which the panner turns
//! into spread: an object in the middle of the room plays from everywhere.

/// A direction on the sphere, in degrees (azimuth positive to the left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Direction {
    /// Degrees, positive to the left (counter-clockwise seen from above), 0 = front.
    pub azimuth_deg: f64,
    /// Degrees, positive up, −90 … +90.
    pub elevation_deg: f64,
}

impl Direction {
    /// A direction with the azimuth wrapped to (−180, 180] and elevation clamped to ±90°.
    pub fn new(azimuth_deg: f64, elevation_deg: f64) -> Self {
        Direction {
            azimuth_deg: wrap_deg(azimuth_deg),
            elevation_deg: elevation_deg.clamp(-90.0, 90.0),
        }
    }

    /// Unit vector in room axes (x right, y front, z up).
    pub fn to_unit(self) -> [f64; 3] {
        let az = self.azimuth_deg.to_radians();
        let el = self.elevation_deg.to_radians();
        [-az.sin() * el.cos(), az.cos() * el.cos(), el.sin()]
    }

    /// Direction of a (not necessarily unit) vector in room axes. The zero vector is
    /// straight ahead.
    pub fn from_vector(v: [f64; 3]) -> Self {
        let [x, y, z] = v;
        let r_xy = x.hypot(y);
        if r_xy == 0.0 && z == 0.0 {
            return Direction::new(0.0, 0.0);
        }
        let azimuth = if r_xy < 1e-12 {
            0.0
        } else {
            (-x).atan2(y).to_degrees()
        };
        Direction::new(azimuth, z.atan2(r_xy).to_degrees())
    }

    /// Great-circle angle to another direction, in degrees.
    pub fn angle_to_deg(self, other: Direction) -> f64 {
        let a = self.to_unit();
        let b = other.to_unit();
        dot(a, b).clamp(-1.0, 1.0).acos().to_degrees()
    }

    /// The left/right mirror image (azimuth negated).
    pub fn mirrored(self) -> Self {
        Direction::new(-self.azimuth_deg, self.elevation_deg)
    }
}

/// Wraps an angle in degrees to (−180, 180].
#[inline]
pub fn wrap_deg(a: f64) -> f64 {
    if a > -180.0 && a <= 180.0 {
        return a; // already wrapped (and finite): skip the costly remainder
    }
    // One turn out (interpolated azimuths authored in 0…360): `a % 360` is `a` or, from
    // 360 on, `a − 360` (exact, as the remainder is), so the result is the same (below
    // −360 the remainder's zero is −0, so that side is left to it).
    if a > 180.0 && a < 720.0 {
        return if a < 360.0 {
            a - 360.0
        } else {
            wrap_deg(a - 360.0)
        };
    }
    if a <= -180.0 && a > -360.0 {
        return a + 360.0;
    }
    if !a.is_finite() {
        return 0.0;
    }
    let mut w = a % 360.0;
    if w > 180.0 {
        w -= 360.0;
    } else if w <= -180.0 {
        w += 360.0;
    }
    w
}

pub fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

/// An object position as authored: room-centric Cartesian or polar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Position {
    /// Room coordinates: `x` −1 left … +1 right, `y` −1 back … +1 front, `z` 0 ear
    /// level … +1 ceiling (negative below the listener).
    Cartesian {
        /// −1 left … +1 right.
        x: f64,
        /// −1 back … +1 front.
        y: f64,
        /// 0 ear level … +1 ceiling (negative below the listener).
        z: f64,
    },
    /// Azimuth (positive left) and elevation in degrees; distance (1 = the speakers).
    Polar {
        /// Degrees, positive to the left, 0 = front.
        azimuth_deg: f64,
        /// Degrees, positive up, −90 … +90.
        elevation_deg: f64,
        /// Distance from the listener; 1 = the speaker sphere.
        distance: f64,
    },
}

impl Position {
    /// Interpolates between two positions of the same kind (`t` in 0…1). Cartesian
    /// positions move in a straight line through the room; polar ones along the shorter
    /// way round in azimuth. Mixed kinds switch at `t = 1`.
    #[inline]
    pub fn lerp(self, other: Position, t: f64) -> Position {
        let mix = |a: f64, b: f64| a + (b - a) * t;
        match (self, other) {
            (
                Position::Cartesian { x, y, z },
                Position::Cartesian {
                    x: x2,
                    y: y2,
                    z: z2,
                },
            ) => Position::Cartesian {
                x: mix(x, x2),
                y: mix(y, y2),
                z: mix(z, z2),
            },
            (
                Position::Polar {
                    azimuth_deg: a1,
                    elevation_deg: e1,
                    distance: d1,
                },
                Position::Polar {
                    azimuth_deg: a2,
                    elevation_deg: e2,
                    distance: d2,
                },
            ) => {
                let delta = wrap_deg(a2 - a1);
                Position::Polar {
                    azimuth_deg: wrap_deg(a1 + delta * t),
                    elevation_deg: mix(e1, e2),
                    distance: mix(d1, d2),
                }
            }
            (a, b) => {
                if t < 1.0 {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// Whether every coordinate is a finite number.
    pub fn is_finite(self) -> bool {
        match self {
            Position::Cartesian { x, y, z } => x.is_finite() && y.is_finite() && z.is_finite(),
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                distance,
            } => azimuth_deg.is_finite() && elevation_deg.is_finite() && distance.is_finite(),
        }
    }
}

/// The azimuth anchors of one side (left or right) of the room mapping, all in degrees
/// as positive numbers (mirrored for the right side).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideAnchors {
    /// Front corner at ear level (M±030).
    pub front_deg: f64,
    /// Side-wall midpoint at ear level (M±090, or halfway when the layout has none).
    pub side_deg: f64,
    /// Back corner at ear level (M±110 / M±135).
    pub back_deg: f64,
    /// Front corner of the ceiling (U±030 / U±045).
    pub top_front_deg: f64,
    /// Back corner of the ceiling (U±110 / U±135).
    pub top_back_deg: f64,
}

impl Default for SideAnchors {
    fn default() -> Self {
        SideAnchors {
            front_deg: 30.0,
            side_deg: 70.0,
            back_deg: 110.0,
            top_front_deg: 30.0,
            top_back_deg: 110.0,
        }
    }
}

/// The room mapping for one layout (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomMap {
    pub left: SideAnchors,
    pub right: SideAnchors,
    /// Elevation of the ceiling edges (the upper layer), degrees, > 0.
    pub top_elevation_deg: f64,
    /// Elevation of the floor edges (the lower layer), degrees, < 0.
    pub bottom_elevation_deg: f64,
}

impl Default for RoomMap {
    fn default() -> Self {
        RoomMap {
            left: SideAnchors::default(),
            right: SideAnchors::default(),
            top_elevation_deg: 30.0,
            bottom_elevation_deg: -30.0,
        }
    }
}

/// A room position as a direction, and how far it is from the room's centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomDirection {
    pub direction: Direction,
    /// Chebyshev distance from the centre: 0 at the centre, 1 on the room's surface.
    pub extent: f64,
}

impl RoomMap {
    /// Maps a room position to a direction (see the module documentation). Coordinates
    /// outside −1…1 are clamped to the room.
    pub fn cartesian_to_direction(&self, x: f64, y: f64, z: f64) -> RoomDirection {
        let x = x.clamp(-1.0, 1.0);
        let y = y.clamp(-1.0, 1.0);
        let z = z.clamp(-1.0, 1.0);
        let r_xy = x.abs().max(y.abs());
        let extent = r_xy.max(z.abs());

        // Elevation: θ = 45° is a ceiling (floor) edge, 90° straight up (down).
        let theta = z.abs().atan2(r_xy).to_degrees();
        let layer = if z >= 0.0 {
            self.top_elevation_deg
        } else {
            -self.bottom_elevation_deg
        };
        let el_abs = if theta <= 45.0 {
            theta * layer / 45.0
        } else {
            layer + (theta - 45.0) * (90.0 - layer) / 45.0
        };
        let elevation = if z >= 0.0 { el_abs } else { -el_abs };

        // Azimuth: walk the walls of the side the point is on.
        if r_xy < 1e-12 {
            return RoomDirection {
                direction: Direction::new(0.0, elevation),
                extent,
            };
        }
        let (ux, uy) = (x / r_xy, y / r_xy);
        let left = ux <= 0.0;
        let side = if left { &self.left } else { &self.right };
        // Upper-layer anchors blend in with elevation (only above ear level).
        let w = if z > 0.0 {
            (elevation / self.top_elevation_deg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
        let front = lerp(side.front_deg, side.top_front_deg, w);
        let back = lerp(side.back_deg, side.top_back_deg, w);
        let side_mid = lerp(
            side.side_deg,
            0.5 * (side.top_front_deg + side.top_back_deg),
            w,
        );
        let ax = ux.abs();
        let az = if uy >= 1.0 - 1e-12 && ax <= 1.0 {
            // Front wall: centre → front corner.
            lerp(0.0, front, ax)
        } else if uy <= -1.0 + 1e-12 {
            // Back wall: back corner → centre.
            lerp(back, 180.0, 1.0 - ax)
        } else if uy >= 0.0 {
            // Side wall, front half.
            lerp(front, side_mid, 1.0 - uy)
        } else {
            lerp(side_mid, back, -uy)
        };
        let azimuth = if left { az } else { -az };
        RoomDirection {
            direction: Direction::new(azimuth, elevation),
            extent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_vectors_follow_bs2051() {
        let l = Direction::new(90.0, 0.0).to_unit();
        assert!((l[0] + 1.0).abs() < 1e-12, "azimuth +90 is to the left");
        let f = Direction::new(0.0, 0.0).to_unit();
        assert!((f[1] - 1.0).abs() < 1e-12);
        let up = Direction::new(0.0, 90.0).to_unit();
        assert!((up[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn vector_round_trip() {
        for az in (-179..=180).step_by(7) {
            for el in (-85..=85).step_by(5) {
                let d = Direction::new(az as f64, el as f64);
                let back = Direction::from_vector(d.to_unit());
                assert!(d.angle_to_deg(back) < 1e-5, "{d:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn wrap() {
        assert_eq!(wrap_deg(190.0), -170.0);
        assert_eq!(wrap_deg(-180.0), 180.0);
        assert_eq!(wrap_deg(540.0), 180.0);
    }

    /// The shortcut for angles one turn out gives exactly what the remainder gives.
    #[test]
    fn wrap_one_turn_out_equals_the_remainder() {
        let remainder = |a: f64| {
            let mut w = a % 360.0;
            if w > 180.0 {
                w -= 360.0;
            } else if w <= -180.0 {
                w += 360.0;
            }
            w
        };
        let mut angles = vec![-720.0, -540.0, -360.0, -180.0, 180.0, 360.0, 540.0, 720.0];
        for k in -800_000..=800_000 {
            angles.push(k as f64 * 9.000_000_1e-4);
        }
        for e in [
            -720.0f64, -540.0, -360.0, -180.0, 180.0, 360.0, 540.0, 720.0,
        ] {
            angles.extend([e.next_down(), e.next_up()]);
        }
        for a in angles {
            let (got, want) = (wrap_deg(a), remainder(a));
            assert!(got.to_bits() == want.to_bits(), "{a}: {got} != {want}");
        }
    }

    #[test]
    fn default_room_corners() {
        let m = RoomMap::default();
        let d = m.cartesian_to_direction(-1.0, 1.0, 0.0).direction;
        assert!((d.azimuth_deg - 30.0).abs() < 1e-9 && d.elevation_deg.abs() < 1e-9);
        let d = m.cartesian_to_direction(1.0, -1.0, 0.0).direction;
        assert!((d.azimuth_deg + 110.0).abs() < 1e-9);
        let d = m.cartesian_to_direction(0.0, 0.0, 1.0).direction;
        assert!((d.elevation_deg - 90.0).abs() < 1e-9);
        let d = m.cartesian_to_direction(-1.0, 1.0, 1.0).direction;
        assert!((d.elevation_deg - 30.0).abs() < 1e-9);
    }

    #[test]
    fn mapping_is_continuous() {
        let m = RoomMap::default();
        let steps = 200;
        for zi in 0..=10 {
            let z = zi as f64 / 10.0;
            let mut prev: Option<Direction> = None;
            for i in 0..=steps {
                // Walk around the room's perimeter square.
                let t = i as f64 / steps as f64 * 8.0;
                let (x, y) = match t as usize {
                    0 | 1 => (-t / 2.0 * 1.0 + 0.0, 1.0),
                    2 | 3 => (-1.0, 1.0 - (t - 2.0)),
                    4 | 5 => (-1.0 + (t - 4.0), -1.0),
                    _ => (1.0, -1.0 + (t - 6.0).min(2.0)),
                };
                let d = m.cartesian_to_direction(x.clamp(-1.0, 1.0), y, z).direction;
                if let Some(p) = prev {
                    assert!(p.angle_to_deg(d) < 6.0, "jump at {x},{y},{z}: {p:?} {d:?}");
                }
                prev = Some(d);
            }
        }
    }
}
