//! Feed-forward soft-knee compressor.

use super::*;

// ---------------------------------------------------------------------------------------
// Compressor

/// Range of [`CompressorSettings::threshold_db`].
pub const THRESHOLD_DB: Range = Range {
    name: "threshold_db",
    lo: -80.0,
    hi: 0.0,
    unit: " dB",
};
/// Range of [`CompressorSettings::ratio`].
pub const RATIO: Range = Range {
    name: "ratio",
    lo: 1.0,
    hi: 100.0,
    unit: "",
};
/// Range of [`CompressorSettings::knee_db`].
pub const KNEE_DB: Range = Range {
    name: "knee_db",
    lo: 0.0,
    hi: 24.0,
    unit: " dB",
};
/// Range of [`CompressorSettings::attack_ms`].
pub const ATTACK_MS: Range = Range {
    name: "attack_ms",
    lo: 0.0,
    hi: 1000.0,
    unit: " ms",
};
/// Range of the compressor's and the limiter's `release_ms`.
pub const RELEASE_MS: Range = Range {
    name: "release_ms",
    lo: 1.0,
    hi: 10_000.0,
    unit: " ms",
};
/// Range of [`CompressorSettings::makeup_db`].
pub const MAKEUP_DB: Range = Range {
    name: "makeup_db",
    lo: -24.0,
    hi: 24.0,
    unit: " dB",
};
/// Default knee width, dB.
pub const DEFAULT_KNEE_DB: f64 = 6.0;
/// Default attack time constant, ms.
pub const DEFAULT_ATTACK_MS: f64 = 10.0;
/// Default release time constant, ms.
pub const DEFAULT_COMPRESSOR_RELEASE_MS: f64 = 100.0;

fn default_knee_db() -> f64 {
    DEFAULT_KNEE_DB
}
fn default_attack_ms() -> f64 {
    DEFAULT_ATTACK_MS
}
fn default_release_ms() -> f64 {
    DEFAULT_COMPRESSOR_RELEASE_MS
}

/// Settings of [`Compressor`] (`Compressor(threshold_db: -20, ratio: 3)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressorSettings {
    /// Threshold, dBFS sample peak, [`THRESHOLD_DB`].
    pub threshold_db: f64,
    /// Ratio, [`RATIO`] (1: no compression).
    pub ratio: f64,
    /// Knee width, [`KNEE_DB`] (0: hard knee); default [`DEFAULT_KNEE_DB`].
    #[serde(default = "default_knee_db")]
    pub knee_db: f64,
    /// Attack time constant, [`ATTACK_MS`] (0: instant); default [`DEFAULT_ATTACK_MS`].
    #[serde(default = "default_attack_ms")]
    pub attack_ms: f64,
    /// Release time constant, [`RELEASE_MS`]; default [`DEFAULT_COMPRESSOR_RELEASE_MS`].
    #[serde(default = "default_release_ms")]
    pub release_ms: f64,
    /// Make-up gain, [`MAKEUP_DB`]; default 0.
    #[serde(default)]
    pub makeup_db: f64,
}

impl CompressorSettings {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), DspError> {
        const P: &str = "compressor";
        THRESHOLD_DB.check(P, self.threshold_db)?;
        RATIO.check(P, self.ratio)?;
        KNEE_DB.check(P, self.knee_db)?;
        ATTACK_MS.check(P, self.attack_ms)?;
        RELEASE_MS.check(P, self.release_ms)?;
        MAKEUP_DB.check(P, self.makeup_db)?;
        Ok(())
    }
}

/// Level floor of the detector (−240 dBFS) so that silence has a finite level.
const LEVEL_FLOOR: f64 = 1e-12;

/// Soft-knee gain computer (Giannoulis et al. 2012, eq. 4).
#[derive(Debug, Clone)]
struct KneeCurve {
    threshold_db: f64,
    /// 1/ratio − 1 (≤ 0).
    slope: f64,
    knee_db: f64,
}

impl KneeCurve {
    /// Gain reduction (dB, ≥ 0) for input level `x_db`: 0 below the knee,
    /// (1 − 1/R)(x − T + W/2)² / (2W) inside it, (1 − 1/R)(x − T) above it.
    #[inline]
    fn reduction_db(&self, x_db: f64) -> f64 {
        let over = x_db - self.threshold_db;
        if 2.0 * over < -self.knee_db {
            0.0
        } else if 2.0 * over.abs() <= self.knee_db && self.knee_db > 0.0 {
            let d = over + self.knee_db / 2.0;
            -self.slope * d * d / (2.0 * self.knee_db)
        } else {
            -self.slope * over
        }
    }
}

/// Feed-forward compressor after Giannoulis, Massberg & Reiss (2012): the detector level is
/// the **sample peak** `max over channels |x|` (channel-linked), converted to dB, run through
/// the soft-knee gain computer; the gain reduction (dB) is smoothed by the "smooth decoupled"
/// peak detector (instant-attack release stage, then an attack one-pole), then make-up gain.
/// For a steady sine the gain therefore settles on `static_curve_db(peak level)`.
#[derive(Debug, Clone)]
pub struct Compressor {
    curve: KneeCurve,
    makeup_db: f64,
    alpha_attack: f64,
    alpha_release: f64,
    /// Release stage of the decoupled detector (gain reduction, dB ≥ 0).
    y1_db: f64,
    /// Smoothed gain reduction (dB ≥ 0).
    y_db: f64,
    scratch: Vec<f32>,
}

impl Compressor {
    /// Validates the parameters; `max_block_frames` sizes the scratch buffer (longer blocks
    /// are processed in pieces).
    pub fn new(
        params: &CompressorSettings,
        sample_rate: u32,
        max_block_frames: usize,
    ) -> Result<Compressor, DspError> {
        const P: &str = "compressor";
        let fs = check_sample_rate(P, sample_rate)?;
        params.validate()?;
        let CompressorSettings {
            threshold_db,
            ratio,
            knee_db,
            attack_ms,
            release_ms,
            makeup_db,
        } = *params;
        Ok(Compressor {
            curve: KneeCurve {
                threshold_db,
                slope: 1.0 / ratio - 1.0,
                knee_db,
            },
            makeup_db,
            alpha_attack: time_coef(attack_ms, fs),
            alpha_release: time_coef(release_ms, fs),
            y1_db: 0.0,
            y_db: 0.0,
            scratch: vec![0.0; max_block_frames.max(1)],
        })
    }

    /// Output level (dB, make-up included) for a steady input level `input_db` (detector
    /// level, i.e. sample peak): 1:1 below the knee, slope 1/ratio above, quadratic inside
    /// the knee (Giannoulis et al. 2012, eq. 4). Test support (the `internals` feature).
    #[cfg(feature = "internals")]
    pub fn static_curve_db(&self, input_db: f64) -> f64 {
        input_db - self.curve.reduction_db(input_db) + self.makeup_db
    }
}

impl Processor for Compressor {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        let step = self.scratch.len();
        let mut start = 0;
        while start < n {
            let end = (start + step).min(n);
            let level = &mut self.scratch[..end - start];
            level.fill(0.0);
            for ch in channels.iter() {
                for (l, x) in level.iter_mut().zip(&ch[start..end]) {
                    *l = l.max(x.abs());
                }
            }
            for l in level.iter_mut() {
                let x_db = 20.0 * f64::from(*l).max(LEVEL_FLOOR).log10();
                let x_c = self.curve.reduction_db(x_db);
                let released = self.alpha_release * self.y1_db + (1.0 - self.alpha_release) * x_c;
                self.y1_db = x_c.max(released);
                self.y_db = self.alpha_attack * self.y_db + (1.0 - self.alpha_attack) * self.y1_db;
                *l = db_to_lin(self.makeup_db - self.y_db) as f32;
            }
            for ch in channels.iter_mut() {
                for (x, g) in ch[start..end].iter_mut().zip(level.iter()) {
                    *x *= *g;
                }
            }
            start = end;
        }
        if self.y_db < DENORMAL_FLUSH {
            self.y_db = 0.0;
        }
        if self.y1_db < DENORMAL_FLUSH {
            self.y1_db = 0.0;
        }
    }
    fn reset(&mut self) {
        self.y1_db = 0.0;
        self.y_db = 0.0;
    }
    fn latency(&self) -> usize {
        0
    }
}
