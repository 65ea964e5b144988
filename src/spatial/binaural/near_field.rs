//! Near-field correction of far-field HRTFs by the rigid-sphere head model (Duda & Martens
//! 1998), as a first-order shelving filter per ear chosen per direction (the filter
//! structure of Spagnol, Tavazzi & Avanzini 2018): the rising interaural level difference
//! of a source close to the head (Brungart & Rabinowitz 1999).
//!
//! # Model
//!
//! Duda & Martens (JASA 104(5), 1998) give the pressure on a rigid sphere of radius `a`
//! from a point source at distance `r`, relative to the free-field pressure at the
//! sphere's centre, as a series of Legendre polynomials and spherical Hankel functions:
//!
//! `H(r, θ, f) = −(ρ/μ) e^(−iμρ) Σ_m (2m+1) P_m(cos θ) h_m(μρ) / h'_m(μ)`,
//! `μ = 2π f a / c`, `ρ = r / a`,
//!
//! with `θ` the angle between the source and the ear (ears at ±90° azimuth). The near-field
//! correction of one ear is the ratio `|H(r_near, θ, f)| / |H(r_far, θ, f)|` (the measured
//! HRTFs are far-field: KEMAR at 1.4 m), normalised so that a source straight ahead keeps
//! its low-frequency level. It is fitted per incidence angle by a first-order shelf: its
//! gain at [`LOW_HZ`] below, at [`HIGH_HZ`] above, and its transition where the model's
//! ratio is halfway (in dB) between the two. At 90° and `r_near` = 0.25 m the model's
//! interaural level difference in 200–500 Hz grows by 8.9 dB (from 0.8 dB to 9.8 dB;
//! `tools/reference/sphere_ild.py` computes the figure independently with SciPy).

use std::f64::consts::PI;

/// Head radius of the model, metres (Duda & Martens' average head).
pub const HEAD_RADIUS_M: f64 = 0.0875;
/// Speed of sound, metres per second.
pub const SPEED_OF_SOUND_MPS: f64 = 343.0;
/// Source distance of the `Near` mode, metres.
pub const NEAR_DISTANCE_M: f64 = 0.25;
/// The far-field reference distance (the measured set's far field), metres.
const FAR_DISTANCE_M: f64 = 100.0;
/// Frequency at which the shelf's low gain is read from the model.
pub const LOW_HZ: f64 = 50.0;
/// Frequency at which the shelf's high gain is read from the model.
pub const HIGH_HZ: f64 = 8000.0;
/// Incidence-angle grid of the fitted filters, degrees.
const GRID_STEP_DEG: f64 = 2.0;

/// Magnitude of the sphere's response (Duda & Martens' `H`, see the module documentation).
pub fn sphere_gain(r_m: f64, theta_rad: f64, f_hz: f64) -> f64 {
    let mu = 2.0 * PI * f_hz * HEAD_RADIUS_M / SPEED_OF_SOUND_MPS;
    let rho = r_m / HEAD_RADIUS_M;
    let x = mu * rho;
    let cos_t = theta_rad.cos();
    // Spherical Hankel functions h_m = j_m + i y_m by upward recurrence (stable: the
    // y_m part dominates for m > x), at μρ (h) and μ (for the derivative).
    let h0 = |z: f64| (z.sin() / z, -z.cos() / z);
    let h1 = |z: f64| {
        (
            z.sin() / (z * z) - z.cos() / z,
            -z.cos() / (z * z) - z.sin() / z,
        )
    };
    let (mut ha_prev, mut ha) = (h0(x), h1(x));
    let (mut hb_prev, mut hb) = (h0(mu), h1(mu));
    let (mut p_prev, mut p) = (1.0, cos_t);
    let (mut sum_re, mut sum_im) = (0.0, 0.0);
    let terms = 80usize;
    for m in 0..terms {
        let (hm_a, pm) = if m == 0 { (ha_prev, p_prev) } else { (ha, p) };
        // h'_m(μ): −h_1 for m = 0, else h_{m−1} − (m+1)/μ h_m.
        let d = if m == 0 {
            (-hb.0, -hb.1)
        } else {
            let k = (m as f64 + 1.0) / mu;
            (hb_prev.0 - k * hb.0, hb_prev.1 - k * hb.1)
        };
        // (2m+1) P_m h_m(μρ) / h'_m(μ)
        let den = d.0 * d.0 + d.1 * d.1;
        if !den.is_finite() || den == 0.0 {
            break;
        }
        let q_re = (hm_a.0 * d.0 + hm_a.1 * d.1) / den;
        let q_im = (hm_a.1 * d.0 - hm_a.0 * d.1) / den;
        let c = (2 * m + 1) as f64 * pm;
        sum_re += c * q_re;
        sum_im += c * q_im;
        if m >= 1 {
            let mf = m as f64;
            let next = |prev: (f64, f64), cur: (f64, f64), z: f64| {
                let k = (2.0 * mf + 1.0) / z;
                (k * cur.0 - prev.0, k * cur.1 - prev.1)
            };
            let na = next(ha_prev, ha, x);
            let nb = next(hb_prev, hb, mu);
            ha_prev = ha;
            ha = na;
            hb_prev = hb;
            hb = nb;
            let np = ((2.0 * mf + 1.0) * cos_t * p - mf * p_prev) / (mf + 1.0);
            p_prev = p;
            p = np;
            if m as f64 > x + 10.0 && (q_re.hypot(q_im) * c.abs()) < 1e-12 * sum_re.hypot(sum_im) {
                break;
            }
        }
    }
    rho / mu * sum_re.hypot(sum_im)
}

/// Near-field to far-field magnitude ratio of one ear at incidence `theta_rad`.
pub fn near_field_ratio(theta_rad: f64, f_hz: f64) -> f64 {
    sphere_gain(NEAR_DISTANCE_M, theta_rad, f_hz) / sphere_gain(FAR_DISTANCE_M, theta_rad, f_hz)
}

/// A first-order shelf: gain `low` at DC, `high` at Nyquist, the dB midpoint at `mid_hz`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shelf {
    pub low: f64,
    pub high: f64,
    pub mid_hz: f64,
}

impl Shelf {
    /// Biquad-free first-order coefficients `(b0, b1, a1)` at `sample_rate` (bilinear
    /// transform, prewarped at the midpoint): `y = b0 x + b1 x₋₁ − a1 y₋₁`.
    pub fn coefficients(&self, sample_rate: u32) -> (f64, f64, f64) {
        // Analog H(s) = (high·s + low·ωc) / (s + ωc) reaches √(low·high) at
        // ω = ωc·√(low/high).
        let fs = sample_rate as f64;
        let mid = self.mid_hz.min(0.45 * fs);
        let w_mid = 2.0 * fs * (PI * mid / fs).tan();
        let wc = w_mid * (self.high / self.low).sqrt();
        let k = 2.0 * fs;
        let a0 = k + wc;
        let b0 = (self.high * k + self.low * wc) / a0;
        let b1 = (self.low * wc - self.high * k) / a0;
        let a1 = (wc - k) / a0;
        (b0, b1, a1)
    }

    /// Filters `x` in place (zero initial state).
    pub fn apply(&self, sample_rate: u32, x: &mut [f32]) {
        let (b0, b1, a1) = self.coefficients(sample_rate);
        let (mut x1, mut y1) = (0.0f64, 0.0f64);
        for v in x.iter_mut() {
            let xin = *v as f64;
            let y = b0 * xin + b1 * x1 - a1 * y1;
            x1 = xin;
            y1 = y;
            *v = y as f32;
        }
    }
}

/// The shelves fitted to the model on a grid of incidence angles (0° … 180°).
#[derive(Debug, Clone)]
pub struct NearField {
    shelves: Vec<Shelf>,
}

impl NearField {
    /// Fits the shelves (a few thousand series evaluations; done once per HRTF set).
    pub fn new() -> NearField {
        // A source straight ahead (90° from both ears) keeps its low-frequency level.
        let front = near_field_ratio(PI / 2.0, LOW_HZ);
        let n = (180.0 / GRID_STEP_DEG) as usize + 1;
        let shelves = (0..n)
            .map(|i| {
                let theta = (i as f64 * GRID_STEP_DEG).to_radians();
                let low = near_field_ratio(theta, LOW_HZ) / front;
                let high = near_field_ratio(theta, HIGH_HZ) / front;
                let target_db = 10.0 * (low * high).log10();
                // Midpoint: the first frequency (log grid) where the model's ratio
                // crosses halfway between its low and high gains.
                let mut mid_hz = 1000.0;
                let mut prev: Option<(f64, f64)> = None;
                for k in 0..=60 {
                    let f = LOW_HZ * (HIGH_HZ / LOW_HZ).powf(k as f64 / 60.0);
                    let db = 20.0 * (near_field_ratio(theta, f) / front).log10() - target_db;
                    if let Some((f0, d0)) = prev
                        && d0.signum() != db.signum()
                    {
                        let t = d0 / (d0 - db);
                        mid_hz = f0 * (f / f0).powf(t);
                        break;
                    }
                    prev = Some((f, db));
                }
                Shelf { low, high, mid_hz }
            })
            .collect();
        NearField { shelves }
    }

    /// The fitted shelves, computed once per process.
    pub fn shared() -> &'static NearField {
        static SHARED: std::sync::OnceLock<NearField> = std::sync::OnceLock::new();
        SHARED.get_or_init(NearField::new)
    }

    /// The shelf of an ear at incidence `theta_deg` (nearest grid angle).
    pub fn shelf(&self, theta_deg: f64) -> Shelf {
        let i = (theta_deg.clamp(0.0, 180.0) / GRID_STEP_DEG).round() as usize;
        self.shelves[i.min(self.shelves.len() - 1)]
    }

    /// The shelves of the left and right ear for a source at unit vector `u` (halo's axes:
    /// x right, y front, z up; the left ear is at −x).
    pub fn ear_shelves(&self, u: [f64; 3]) -> [Shelf; 2] {
        let left = (-u[0]).clamp(-1.0, 1.0).acos().to_degrees();
        let right = u[0].clamp(-1.0, 1.0).acos().to_degrees();
        [self.shelf(left), self.shelf(right)]
    }
}

impl Default for NearField {
    fn default() -> Self {
        NearField::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sphere_ild_matches_scipy_reference() {
        // tools/reference/sphere_ild.py: ILD at 90° of the sphere, near (0.25 m) and far.
        let ild = |r: f64, f: f64| 20.0 * (sphere_gain(r, 0.0, f) / sphere_gain(r, PI, f)).log10();
        for (f, near, far) in [
            (50.0, 9.42, 0.02),
            (500.0, 10.21, 1.82),
            (1000.0, 10.95, 2.87),
            (4000.0, 13.23, 4.71),
        ] {
            assert!(
                (ild(0.25, f) - near).abs() < 0.02,
                "{f} Hz near {}",
                ild(0.25, f)
            );
            assert!(
                (ild(100.0, f) - far).abs() < 0.02,
                "{f} Hz far {}",
                ild(100.0, f)
            );
        }
    }

    #[test]
    fn shelf_meets_its_gains() {
        let s = Shelf {
            low: 2.0,
            high: 0.5,
            mid_hz: 1000.0,
        };
        let (b0, b1, a1) = s.coefficients(48_000);
        assert!(((b0 + b1) / (1.0 + a1) - 2.0).abs() < 1e-9);
        assert!(((b0 - b1) / (1.0 - a1) - 0.5).abs() < 1e-9);
    }
}
