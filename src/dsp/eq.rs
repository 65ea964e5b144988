//! RBJ Audio-EQ-Cookbook biquad EQ.

use super::*;

// ---------------------------------------------------------------------------------------
// Eq

/// Filter shape of one EQ band (RBJ Audio-EQ-Cookbook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EqKind {
    /// Peaking EQ; `gain_db` at `freq_hz`, bandwidth set by `q`.
    Peak,
    /// Low shelf; `gain_db` below `freq_hz` (half of it at `freq_hz`), slope set by `q`.
    LowShelf,
    /// High shelf; `gain_db` above `freq_hz` (half of it at `freq_hz`), slope set by `q`.
    HighShelf,
    /// Second-order high-pass; `gain_db` must be 0.
    HighPass,
    /// Second-order low-pass; `gain_db` must be 0.
    LowPass,
}

/// Range of [`EqBand::gain_db`].
pub const EQ_GAIN_DB: Range = Range {
    name: "gain_db",
    lo: -30.0,
    hi: 30.0,
    unit: " dB",
};
/// Range of [`EqBand::q`].
pub const EQ_Q: Range = Range {
    name: "q",
    lo: 0.025,
    hi: 100.0,
    unit: "",
};
/// Default Q: 0.707 (≈ 1/√2, Butterworth; for shelves the steepest slope without
/// overshoot).
pub const DEFAULT_Q: f64 = 0.707;

fn default_q() -> f64 {
    DEFAULT_Q
}

/// One EQ band (`(kind: Peak, freq_hz: 1000, gain_db: -3, q: 1)`). For shelves `q` is the
/// cookbook's Q (alpha = sin(w0) / (2 Q)); the cookbook's shelf slope S relates by
/// 1/Q² = (A + 1/A)(1/S − 1) + 2, so Q = 1/√2 is S = 1, the steepest shelf without
/// overshoot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Band", deny_unknown_fields)]
pub struct EqBand {
    /// Filter shape.
    pub kind: EqKind,
    /// Centre / corner frequency, above 0 and below half the sample rate.
    pub freq_hz: f64,
    /// Gain of peak and shelf bands, [`EQ_GAIN_DB`]; 0 for pass filters; default 0.
    #[serde(default)]
    pub gain_db: f64,
    /// Quality factor, [`EQ_Q`]; default [`DEFAULT_Q`].
    #[serde(default = "default_q")]
    pub q: f64,
}

impl EqBand {
    /// Checks the band at `sample_rate`; `number` (from 1) is named in errors.
    pub fn validate(&self, sample_rate: u32, number: usize) -> Result<(), DspError> {
        const P: &str = "eq";
        let with_band = |e: DspError| match e {
            DspError::InvalidParameter {
                processor,
                parameter,
                value,
                unit,
                allowed,
                ..
            } => DspError::InvalidParameter {
                processor,
                parameter,
                value,
                unit,
                band: Some(number),
                allowed,
            },
            other => other,
        };
        let nyquist = f64::from(sample_rate) / 2.0;
        if !(self.freq_hz.is_finite() && self.freq_hz > 0.0 && self.freq_hz < nyquist) {
            return Err(DspError::InvalidParameter {
                processor: P,
                parameter: "freq_hz".into(),
                value: self.freq_hz,
                unit: " Hz",
                band: Some(number),
                allowed: format!(
                    "a frequency above 0 and below {nyquist} Hz (half the sample rate \
                     {sample_rate} Hz)"
                ),
            });
        }
        EQ_Q.check(P, self.q).map_err(with_band)?;
        EQ_GAIN_DB.check(P, self.gain_db).map_err(with_band)?;
        if matches!(self.kind, EqKind::HighPass | EqKind::LowPass) && self.gain_db != 0.0 {
            return Err(DspError::Rule {
                processor: P,
                band: Some(number),
                problem: format!(
                    "gain_db = {} dB has no effect on a {:?} band",
                    self.gain_db, self.kind
                ),
                allowed: "leave gain_db out (or 0) for HighPass and LowPass".into(),
            });
        }
        Ok(())
    }
}

/// Settings of [`Eq`] (`Eq(bands: [ … ])`): the bands, run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EqSettings {
    /// At least one band.
    pub bands: Vec<EqBand>,
}

impl EqSettings {
    /// Checks every band at `sample_rate`.
    pub fn validate(&self, sample_rate: u32) -> Result<(), DspError> {
        if self.bands.is_empty() {
            return Err(DspError::Rule {
                processor: "eq",
                band: None,
                problem: "the band list is empty".into(),
                allowed: "at least one band `(kind: Peak, freq_hz: 1000, gain_db: -3, q: 1)`"
                    .into(),
            });
        }
        validate_bands(&self.bands, sample_rate)
    }
}

fn validate_bands(bands: &[EqBand], sample_rate: u32) -> Result<(), DspError> {
    for (i, band) in bands.iter().enumerate() {
        band.validate(sample_rate, i + 1)?;
    }
    Ok(())
}

/// Normalised biquad coefficients (a0 = 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Biquad {
    /// Feed-forward coefficients.
    pub b0: f64,
    /// Feed-forward coefficients.
    pub b1: f64,
    /// Feed-forward coefficients.
    pub b2: f64,
    /// Feedback coefficients (sign as in H(z) = B(z) / (1 + a1 z⁻¹ + a2 z⁻²)).
    pub a1: f64,
    /// Feedback coefficients.
    pub a2: f64,
}

impl Biquad {
    /// Coefficients of an RBJ cookbook band (parameters assumed validated).
    pub fn rbj(band: &EqBand, sample_rate: f64) -> Biquad {
        let w0 = 2.0 * PI * band.freq_hz / sample_rate;
        let (sin_w, cos_w) = w0.sin_cos();
        let alpha = sin_w / (2.0 * band.q);
        let a = 10f64.powf(band.gain_db / 40.0);
        let (b0, b1, b2, a0, a1, a2) = match band.kind {
            EqKind::LowPass => {
                let b = (1.0 - cos_w) / 2.0;
                (b, 1.0 - cos_w, b, 1.0 + alpha, -2.0 * cos_w, 1.0 - alpha)
            }
            EqKind::HighPass => {
                let b = (1.0 + cos_w) / 2.0;
                (b, -(1.0 + cos_w), b, 1.0 + alpha, -2.0 * cos_w, 1.0 - alpha)
            }
            EqKind::Peak => (
                1.0 + alpha * a,
                -2.0 * cos_w,
                1.0 - alpha * a,
                1.0 + alpha / a,
                -2.0 * cos_w,
                1.0 - alpha / a,
            ),
            EqKind::LowShelf => {
                let k = 2.0 * a.sqrt() * alpha;
                (
                    a * ((a + 1.0) - (a - 1.0) * cos_w + k),
                    2.0 * a * ((a - 1.0) - (a + 1.0) * cos_w),
                    a * ((a + 1.0) - (a - 1.0) * cos_w - k),
                    (a + 1.0) + (a - 1.0) * cos_w + k,
                    -2.0 * ((a - 1.0) + (a + 1.0) * cos_w),
                    (a + 1.0) + (a - 1.0) * cos_w - k,
                )
            }
            EqKind::HighShelf => {
                let k = 2.0 * a.sqrt() * alpha;
                (
                    a * ((a + 1.0) + (a - 1.0) * cos_w + k),
                    -2.0 * a * ((a - 1.0) + (a + 1.0) * cos_w),
                    a * ((a + 1.0) + (a - 1.0) * cos_w - k),
                    (a + 1.0) - (a - 1.0) * cos_w + k,
                    2.0 * ((a - 1.0) - (a + 1.0) * cos_w),
                    (a + 1.0) - (a - 1.0) * cos_w - k,
                )
            }
        };
        Biquad {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: a1 / a0,
            a2: a2 / a0,
        }
    }

    /// |H(e^{jω})|² at normalised angular frequency ω (rad/sample). Test support (the
    /// `internals` feature).
    #[cfg(feature = "internals")]
    pub fn magnitude_sq(&self, omega: f64) -> f64 {
        let (s1, c1) = omega.sin_cos();
        let (s2, c2) = (2.0 * omega).sin_cos();
        let nr = self.b0 + self.b1 * c1 + self.b2 * c2;
        let ni = -(self.b1 * s1 + self.b2 * s2);
        let dr = 1.0 + self.a1 * c1 + self.a2 * c2;
        let di = -(self.a1 * s1 + self.a2 * s2);
        (nr * nr + ni * ni) / (dr * dr + di * di)
    }
}

/// A cascade of RBJ biquads per channel: transposed direct form II, f64 state.
#[derive(Debug, Clone)]
pub struct Eq {
    /// Hz; read only by [`Eq::magnitude_db`] (test support).
    #[cfg(feature = "internals")]
    sample_rate: f64,
    channels: usize,
    coefs: Vec<Biquad>,
    /// `[s1, s2]` per (channel, band), index `channel * bands + band`.
    state: Vec<[f64; 2]>,
}

impl Eq {
    /// Validates every band ([`EqBand::validate`]); an empty list is the identity.
    pub fn new(bands: &[EqBand], sample_rate: u32, channels: usize) -> Result<Eq, DspError> {
        let fs = check_sample_rate("eq", sample_rate)?;
        check_channels("eq", channels)?;
        validate_bands(bands, sample_rate)?;
        let mut coefs = Vec::with_capacity(bands.len());
        for band in bands {
            coefs.push(Biquad::rbj(band, fs));
        }
        Ok(Eq {
            #[cfg(feature = "internals")]
            sample_rate: fs,
            channels,
            state: vec![[0.0; 2]; coefs.len() * channels],
            coefs,
        })
    }

    /// The cascade's analytic magnitude response at `freq_hz`, in dB (RBJ transfer
    /// functions evaluated at z = e^{jω}). Test support (the `internals` feature).
    #[cfg(feature = "internals")]
    pub fn magnitude_db(&self, freq_hz: f64) -> f64 {
        let omega = 2.0 * PI * freq_hz / self.sample_rate;
        self.coefs
            .iter()
            .map(|c| 10.0 * c.magnitude_sq(omega).log10())
            .sum()
    }
}

impl Processor for Eq {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        let bands = self.coefs.len();
        if bands == 0 {
            return;
        }
        for (ch, states) in channels
            .iter_mut()
            .zip(self.state.chunks_exact_mut(bands))
            .take(self.channels)
        {
            for x in ch[..n].iter_mut() {
                let mut v = f64::from(*x);
                for (c, s) in self.coefs.iter().zip(states.iter_mut()) {
                    let y = c.b0 * v + s[0];
                    s[0] = c.b1 * v - c.a1 * y + s[1];
                    s[1] = c.b2 * v - c.a2 * y;
                    v = y;
                }
                *x = v as f32;
            }
            for s in states.iter_mut() {
                for v in s.iter_mut() {
                    if v.abs() < DENORMAL_FLUSH {
                        *v = 0.0;
                    }
                }
            }
        }
    }
    fn reset(&mut self) {
        self.state.fill([0.0; 2]);
    }
    fn latency(&self) -> usize {
        0
    }
}
