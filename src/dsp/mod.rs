//! Master-chain processors run on every output: gain, RBJ Audio-EQ-Cookbook biquad EQ, a
//! feed-forward soft-knee compressor (Giannoulis, Massberg & Reiss, JAES 2012), a look-ahead
//! true-peak limiter (ITU-R BS.1770-4 Annex 2 style 4× oversampled peak detection), mid/side
//! width, TPDF dither, a pure delay, and a [`Chain`] that runs them in order.
//!
//! All processors work in place on planar `f32` channels. Every buffer is allocated in `new`;
//! `process` never allocates, locks, logs or touches files, and its output does not depend on
//! how the signal is cut into blocks. A processor given more channels than it was built for
//! leaves the extra ones untouched; slices of unequal length are processed up to the shortest.

use std::f64::consts::PI;

/// Errors raised when a processor or a chain is built from invalid parameters.
#[derive(Debug, thiserror::Error)]
pub enum DspError {
    /// A numeric parameter is non-finite or out of its allowed range.
    #[error("{processor}: parameter `{parameter}` = {value} is invalid (allowed: {allowed})")]
    InvalidParameter {
        /// The processor being built (`"eq"`, `"compressor"`, …).
        processor: &'static str,
        /// The parameter's name as written in the config (`"ratio"`, `"bands[2].freq_hz"` …).
        parameter: String,
        /// The offending value.
        value: f64,
        /// What is allowed, in words.
        allowed: String,
    },
    /// The processor cannot run on this many channels.
    #[error("{processor}: {channels} channel(s) given (allowed: {allowed})")]
    ChannelCount {
        /// The processor being built.
        processor: &'static str,
        /// The channel count given.
        channels: usize,
        /// What is allowed.
        allowed: &'static str,
    },
}

/// An in-place block processor on planar channels.
pub trait Processor: Send {
    /// In-place on planar channels; every slice the same length (any length: processors that
    /// need scratch space cut longer blocks internally).
    fn process(&mut self, channels: &mut [&mut [f32]]);
    /// Restores the state right after `new`.
    fn reset(&mut self);
    /// Delay the processor adds, in frames.
    fn latency(&self) -> usize;
}

/// Filter shape of one EQ band (RBJ Audio-EQ-Cookbook).
#[derive(Debug, Clone, PartialEq)]
pub enum EqKind {
    /// Peaking EQ; `gain_db` at `freq_hz`, bandwidth set by `q`.
    Peak,
    /// Low shelf; `gain_db` below `freq_hz` (half of it at `freq_hz`), slope set by `q`.
    LowShelf,
    /// High shelf; `gain_db` above `freq_hz` (half of it at `freq_hz`), slope set by `q`.
    HighShelf,
    /// Second-order high-pass; `gain_db` is ignored (but must be finite).
    HighPass,
    /// Second-order low-pass; `gain_db` is ignored (but must be finite).
    LowPass,
}

/// One EQ band. For shelves `q` is the cookbook's Q (alpha = sin(w0) / (2 Q)); the
/// cookbook's shelf slope S relates by 1/Q² = (A + 1/A)(1/S − 1) + 2, so Q = 1/√2 is S = 1,
/// the steepest shelf without overshoot.
#[derive(Debug, Clone, PartialEq)]
pub struct EqBand {
    /// Filter shape.
    pub kind: EqKind,
    /// Centre / corner frequency, 0 < f < Nyquist.
    pub freq_hz: f64,
    /// Gain of peak and shelf bands.
    pub gain_db: f64,
    /// Quality factor, > 0.
    pub q: f64,
}

/// Configuration of one processor of a master chain.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorConfig {
    /// Static gain.
    Gain {
        /// Gain, −200 ..= +60 dB.
        gain_db: f64,
    },
    /// Cascade of RBJ biquads.
    Eq {
        /// The bands, run in order.
        bands: Vec<EqBand>,
    },
    /// Feed-forward, channel-linked, soft-knee compressor (peak detector).
    Compressor {
        /// Threshold, dBFS (sample peak).
        threshold_db: f64,
        /// Ratio ≥ 1.
        ratio: f64,
        /// Knee width ≥ 0 dB (0: hard knee).
        knee_db: f64,
        /// Attack time constant ≥ 0 ms.
        attack_ms: f64,
        /// Release time constant ≥ 0 ms.
        release_ms: f64,
        /// Make-up gain.
        makeup_db: f64,
    },
    /// Look-ahead true-peak limiter.
    Limiter {
        /// Ceiling ≤ 0 dBTP.
        ceiling_dbtp: f64,
        /// Look-ahead 1 ..= 500 ms; also the latency.
        lookahead_ms: f64,
        /// Release time constant ≥ 0 ms.
        release_ms: f64,
    },
    /// Stereo mid/side width: 0 mono, 1 unchanged, 2 double side (0 ..= 4).
    Width {
        /// Side gain.
        width: f64,
    },
    /// TPDF dither of ±1 LSB at `bits` (8 ..= 32), deterministic seed.
    Dither {
        /// Target word length.
        bits: u32,
    },
}

impl ProcessorConfig {
    /// Builds the processor this config describes.
    pub fn build(
        &self,
        sample_rate: u32,
        channels: usize,
        max_block_frames: usize,
    ) -> Result<Box<dyn Processor>, DspError> {
        Ok(match self {
            ProcessorConfig::Gain { gain_db } => Box::new(Gain::new(*gain_db)?),
            ProcessorConfig::Eq { bands } => Box::new(Eq::new(bands, sample_rate, channels)?),
            ProcessorConfig::Compressor {
                threshold_db,
                ratio,
                knee_db,
                attack_ms,
                release_ms,
                makeup_db,
            } => Box::new(Compressor::new(
                &CompressorParams {
                    threshold_db: *threshold_db,
                    ratio: *ratio,
                    knee_db: *knee_db,
                    attack_ms: *attack_ms,
                    release_ms: *release_ms,
                    makeup_db: *makeup_db,
                },
                sample_rate,
                max_block_frames,
            )?),
            ProcessorConfig::Limiter {
                ceiling_dbtp,
                lookahead_ms,
                release_ms,
            } => Box::new(Limiter::new(
                &LimiterParams {
                    ceiling_dbtp: *ceiling_dbtp,
                    lookahead_ms: *lookahead_ms,
                    release_ms: *release_ms,
                },
                sample_rate,
                channels,
            )?),
            ProcessorConfig::Width { width } => Box::new(Width::new(*width, channels)?),
            ProcessorConfig::Dither { bits } => Box::new(Dither::new(*bits, channels)?),
        })
    }
}

// ---------------------------------------------------------------------------------------
// validation helpers

fn invalid(processor: &'static str, parameter: &str, value: f64, allowed: &str) -> DspError {
    DspError::InvalidParameter {
        processor,
        parameter: parameter.to_string(),
        value,
        allowed: allowed.to_string(),
    }
}

/// Checks `lo <= value <= hi` (and finiteness).
fn check_range(
    processor: &'static str,
    parameter: &str,
    value: f64,
    lo: f64,
    hi: f64,
) -> Result<f64, DspError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(value)
    } else {
        Err(invalid(
            processor,
            parameter,
            value,
            &format!("finite, {lo} ..= {hi}"),
        ))
    }
}

fn check_sample_rate(processor: &'static str, sample_rate: u32) -> Result<f64, DspError> {
    if sample_rate == 0 {
        return Err(invalid(
            processor,
            "sample_rate",
            0.0,
            "a positive sample rate in Hz",
        ));
    }
    Ok(f64::from(sample_rate))
}

fn check_channels(processor: &'static str, channels: usize) -> Result<(), DspError> {
    if channels == 0 {
        return Err(DspError::ChannelCount {
            processor,
            channels,
            allowed: "at least 1",
        });
    }
    Ok(())
}

/// Frames to process: the shortest slice (the contract says all are equal).
fn frame_count(channels: &[&mut [f32]]) -> usize {
    channels.iter().map(|c| c.len()).min().unwrap_or(0)
}

fn db_to_lin(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Per-sample time-constant coefficient: exp(−1 / (τ fs)); 0 for τ = 0 (instant).
fn time_coef(time_ms: f64, sample_rate: f64) -> f64 {
    let samples = time_ms * 1e-3 * sample_rate;
    if samples > 0.0 {
        (-1.0 / samples).exp()
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------------------
// Gain

/// Static gain: a linear multiply.
#[derive(Debug, Clone)]
pub struct Gain {
    gain: f32,
}

impl Gain {
    /// `gain_db` in −200 ..= +60 dB.
    pub fn new(gain_db: f64) -> Result<Gain, DspError> {
        let gain_db = check_range("gain", "gain_db", gain_db, -200.0, 60.0)?;
        Ok(Gain {
            gain: db_to_lin(gain_db) as f32,
        })
    }

    /// The linear factor applied.
    pub fn linear(&self) -> f32 {
        self.gain
    }
}

impl Processor for Gain {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        for ch in channels.iter_mut() {
            for x in ch[..n].iter_mut() {
                *x *= self.gain;
            }
        }
    }
    fn reset(&mut self) {}
    fn latency(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------------------
// Eq

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

    /// |H(e^{jω})|² at normalised angular frequency ω (rad/sample).
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

/// Values below this are flushed to zero at block ends (avoids denormal slow-down in
/// decaying filter states; far below anything audible in f32).
const DENORMAL_FLUSH: f64 = 1e-30;

/// A cascade of RBJ biquads per channel: transposed direct form II, f64 state.
#[derive(Debug, Clone)]
pub struct Eq {
    sample_rate: f64,
    channels: usize,
    coefs: Vec<Biquad>,
    /// `[s1, s2]` per (channel, band), index `channel * bands + band`.
    state: Vec<[f64; 2]>,
}

impl Eq {
    /// Validates every band (finite values, q > 0, 0 < freq < Nyquist, |gain| ≤ 48 dB).
    pub fn new(bands: &[EqBand], sample_rate: u32, channels: usize) -> Result<Eq, DspError> {
        let fs = check_sample_rate("eq", sample_rate)?;
        check_channels("eq", channels)?;
        let nyquist = fs / 2.0;
        let mut coefs = Vec::with_capacity(bands.len());
        for (i, band) in bands.iter().enumerate() {
            if !(band.freq_hz.is_finite() && band.freq_hz > 0.0 && band.freq_hz < nyquist) {
                return Err(invalid(
                    "eq",
                    &format!("bands[{i}].freq_hz"),
                    band.freq_hz,
                    &format!("0 < f < {nyquist} Hz (Nyquist)"),
                ));
            }
            if !(band.q.is_finite() && band.q > 0.0) {
                return Err(invalid(
                    "eq",
                    &format!("bands[{i}].q"),
                    band.q,
                    "finite, > 0",
                ));
            }
            check_range(
                "eq",
                &format!("bands[{i}].gain_db"),
                band.gain_db,
                -48.0,
                48.0,
            )?;
            coefs.push(Biquad::rbj(band, fs));
        }
        Ok(Eq {
            sample_rate: fs,
            channels,
            state: vec![[0.0; 2]; coefs.len() * channels],
            coefs,
        })
    }

    /// The cascade's analytic magnitude response at `freq_hz`, in dB (RBJ transfer
    /// functions evaluated at z = e^{jω}).
    pub fn magnitude_db(&self, freq_hz: f64) -> f64 {
        let omega = 2.0 * PI * freq_hz / self.sample_rate;
        self.coefs
            .iter()
            .map(|c| 10.0 * c.magnitude_sq(omega).log10())
            .sum()
    }

    /// The normalised coefficients, one per band.
    pub fn coefficients(&self) -> &[Biquad] {
        &self.coefs
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

// ---------------------------------------------------------------------------------------
// Compressor

/// Parameters of [`Compressor`] (same meaning as in [`ProcessorConfig::Compressor`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CompressorParams {
    /// Threshold, −120 ..= 0 dBFS (sample peak).
    pub threshold_db: f64,
    /// Ratio, 1 ..= 1000.
    pub ratio: f64,
    /// Knee width, 0 ..= 48 dB.
    pub knee_db: f64,
    /// Attack time constant, 0 ..= 1000 ms.
    pub attack_ms: f64,
    /// Release time constant, 0 ..= 10000 ms.
    pub release_ms: f64,
    /// Make-up gain, −48 ..= +48 dB.
    pub makeup_db: f64,
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
        params: &CompressorParams,
        sample_rate: u32,
        max_block_frames: usize,
    ) -> Result<Compressor, DspError> {
        const P: &str = "compressor";
        let fs = check_sample_rate(P, sample_rate)?;
        let threshold_db = check_range(P, "threshold_db", params.threshold_db, -120.0, 0.0)?;
        let ratio = check_range(P, "ratio", params.ratio, 1.0, 1000.0)?;
        let knee_db = check_range(P, "knee_db", params.knee_db, 0.0, 48.0)?;
        let attack_ms = check_range(P, "attack_ms", params.attack_ms, 0.0, 1000.0)?;
        let release_ms = check_range(P, "release_ms", params.release_ms, 0.0, 10_000.0)?;
        let makeup_db = check_range(P, "makeup_db", params.makeup_db, -48.0, 48.0)?;
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
    /// the knee (Giannoulis et al. 2012, eq. 4).
    pub fn static_curve_db(&self, input_db: f64) -> f64 {
        input_db - self.curve.reduction_db(input_db) + self.makeup_db
    }

    /// Current smoothed gain reduction in dB (≥ 0, make-up not included).
    pub fn gain_reduction_db(&self) -> f64 {
        self.y_db
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

// ---------------------------------------------------------------------------------------
// True-peak detection (ITU-R BS.1770-4 Annex 2 style)

/// Taps per polyphase branch of the 4× interpolator (48 taps in all, as in BS.1770-4).
const TP_TAPS: usize = 12;
/// Oversampling factor.
const TP_FACTOR: usize = 4;

/// Polyphase interpolator laid out tap-major with 4 lanes (the 3 in-between points and a
/// zero pad), so the three dot products run as one 4-wide multiply-add per tap.
type Kernel = [[f32; TP_FACTOR]; TP_TAPS];

/// Polyphase branches for the three in-between points (phase 0 is the sample itself).
/// Kernel: sinc(τ)·Hann(τ / 6 samples), a 48-tap 4× interpolator (BS.1770-4 size). This is
/// the same textbook design the `ebur128` crate's meter uses, so the limiter's detector and
/// that meter agree; it reads sines near fs/8 up to ~0.65 dB high (conservative for a
/// limiter). Row `idx` holds the weights of sample `k − 5 + idx`; lane `p` (0..3) gives the
/// value at `k + (p+1)/4`. Hand-written: no crate offers a streaming per-sample 4×
/// true-peak interpolator usable inside a limiter's look-ahead loop.
fn true_peak_kernel() -> Kernel {
    let half = (TP_TAPS / 2) as f64;
    let mut kernel = [[0f32; TP_FACTOR]; TP_TAPS];
    for (idx, tap) in kernel.iter_mut().enumerate() {
        let j = idx as f64 - (half - 1.0); // sample offset −5 ..= +6
        for (p, c) in tap.iter_mut().take(TP_FACTOR - 1).enumerate() {
            let frac = (p + 1) as f64 / TP_FACTOR as f64;
            let tau = frac - j;
            let window = 0.5 + 0.5 * (PI * tau / half).cos();
            let sinc = (PI * tau).sin() / (PI * tau);
            *c = (sinc * window) as f32;
        }
    }
    kernel
}

/// Largest |value| among the in-between points of a 12-sample window.
#[inline]
fn interp_peak(window: &[f32], kernel: &Kernel) -> f32 {
    let mut acc = [0f32; TP_FACTOR];
    for (tap, x) in kernel.iter().zip(window) {
        for (a, c) in acc.iter_mut().zip(tap) {
            *a += c * x;
        }
    }
    acc.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// Measures the true peak of planar audio by 4× oversampling (BS.1770-4 Annex 2 style:
/// a 48-tap windowed-sinc polyphase interpolator). The in-between points after the last
/// 6 samples are evaluated once more samples arrive (as in meters that stream).
#[derive(Debug, Clone)]
pub struct TruePeakDetector {
    kernel: Kernel,
    /// Per channel: last `TP_TAPS` samples, doubled ring (2 × TP_TAPS).
    history: Vec<f32>,
    pos: usize,
    peaks: Vec<f32>,
}

impl TruePeakDetector {
    /// A detector for `channels` channels.
    pub fn new(channels: usize) -> Result<TruePeakDetector, DspError> {
        check_channels("true_peak", channels)?;
        Ok(TruePeakDetector {
            kernel: true_peak_kernel(),
            history: vec![0.0; 2 * TP_TAPS * channels],
            pos: 0,
            peaks: vec![0.0; channels],
        })
    }

    /// Feeds a block of planar audio.
    pub fn process(&mut self, channels: &[&[f32]]) {
        let n = channels.iter().map(|c| c.len()).min().unwrap_or(0);
        for i in 0..n {
            for ((ch, hist), peak) in channels
                .iter()
                .zip(self.history.chunks_exact_mut(2 * TP_TAPS))
                .zip(self.peaks.iter_mut())
            {
                let x = ch[i];
                hist[self.pos] = x;
                hist[self.pos + TP_TAPS] = x;
                let window = &hist[self.pos + 1..self.pos + 1 + TP_TAPS];
                let p = interp_peak(window, &self.kernel).max(x.abs());
                *peak = peak.max(p);
            }
            self.pos = (self.pos + 1) % TP_TAPS;
        }
    }

    /// Largest true peak seen on `channel` (linear), 0 if out of range.
    pub fn peak(&self, channel: usize) -> f64 {
        self.peaks.get(channel).copied().map_or(0.0, f64::from)
    }

    /// Largest true peak over all channels, in dBTP.
    pub fn peak_dbtp(&self) -> f64 {
        let p = self.peaks.iter().copied().fold(0f32, f32::max);
        20.0 * f64::from(p).log10()
    }

    /// Forgets all history and peaks.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.peaks.fill(0.0);
        self.pos = 0;
    }
}

// ---------------------------------------------------------------------------------------
// Limiter

/// Parameters of [`Limiter`] (same meaning as in [`ProcessorConfig::Limiter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterParams {
    /// Ceiling, −60 ..= 0 dBTP.
    pub ceiling_dbtp: f64,
    /// Look-ahead, 1 ..= 500 ms.
    pub lookahead_ms: f64,
    /// Release time constant, 0 ..= 10000 ms.
    pub release_ms: f64,
}

/// Internal safety margin below the ceiling (covers f32 rounding, gain modulation and
/// the small differences between interpolators of different meters).
pub const LIMITER_MARGIN_DB: f64 = 0.05;

/// Frames the detector needs after a sample before its in-between points are known.
const TP_DETECT_DELAY: usize = TP_TAPS / 2;
/// Frames on each side of a peak that are held at the peak's gain, so that the whole
/// interpolator support around the peak sees one flat gain.
const TP_GUARD: usize = TP_TAPS / 2;

/// Look-ahead true-peak limiter, linked over all channels.
///
/// Per frame: the input's true peak (max of |sample| and the three 4×-oversampled points
/// after it, over all channels) gives the required gain `ceiling / peak` (≤ 1); an
/// instant-attack exponential release follows; a sliding-window minimum (monotonic deque,
/// O(1) amortised) holds it over `W + 2·6` frames; two cascaded moving averages of total
/// support `W` ramp the gain down so that it has reached the held minimum when the peak
/// (and the 6 frames either side of it) leaves the delay line. The audio is delayed by the
/// look-ahead `L = 6 (detector) + (W − 1) + 6 (guard)` frames, so `latency()` is the
/// look-ahead in frames (at least 12).
#[derive(Debug, Clone)]
pub struct Limiter {
    channels: usize,
    ceiling: f64,
    kernel: Kernel,
    latency: usize,
    /// Ring length M = latency + 1 (≥ TP_TAPS); each channel stores 2M (mirrored writes).
    ring: usize,
    history: Vec<f32>,
    pos: usize,
    alpha_release: f64,
    released: f64,
    /// Sliding minimum: ring deque of (frame index, gain), capacity `hold + 1`.
    hold: u64,
    deque: Vec<(u64, f64)>,
    dq_head: usize,
    dq_len: usize,
    frame: u64,
    box1: MovingAverage,
    box2: MovingAverage,
}

/// Running mean over a fixed window, re-summed exactly once per wrap (no drift).
#[derive(Debug, Clone)]
struct MovingAverage {
    values: Vec<f64>,
    idx: usize,
    sum: f64,
}

impl MovingAverage {
    fn new(len: usize, init: f64) -> MovingAverage {
        MovingAverage {
            values: vec![init; len],
            idx: 0,
            sum: init * len as f64,
        }
    }
    fn reset(&mut self, init: f64) {
        self.values.fill(init);
        self.idx = 0;
        self.sum = init * self.values.len() as f64;
    }
    #[inline]
    fn push(&mut self, v: f64) -> f64 {
        self.sum += v - self.values[self.idx];
        self.values[self.idx] = v;
        self.idx += 1;
        if self.idx == self.values.len() {
            self.idx = 0;
            self.sum = self.values.iter().sum();
        }
        self.sum / self.values.len() as f64
    }
}

impl Limiter {
    /// Validates the parameters and precomputes the interpolator and all buffers.
    pub fn new(
        params: &LimiterParams,
        sample_rate: u32,
        channels: usize,
    ) -> Result<Limiter, DspError> {
        const P: &str = "limiter";
        let fs = check_sample_rate(P, sample_rate)?;
        check_channels(P, channels)?;
        let ceiling_dbtp = check_range(P, "ceiling_dbtp", params.ceiling_dbtp, -60.0, 0.0)?;
        let lookahead_ms = check_range(P, "lookahead_ms", params.lookahead_ms, 1.0, 500.0)?;
        let release_ms = check_range(P, "release_ms", params.release_ms, 0.0, 10_000.0)?;
        let min_latency = TP_DETECT_DELAY + TP_GUARD;
        let latency = ((lookahead_ms * 1e-3 * fs).round() as usize).max(min_latency);
        let window = latency + 1 - min_latency; // W ≥ 1
        let w1 = window.div_ceil(2);
        let w2 = window + 1 - w1;
        let hold = window + 2 * TP_GUARD;
        let ring = latency + 1;
        Ok(Limiter {
            channels,
            ceiling: db_to_lin(ceiling_dbtp - LIMITER_MARGIN_DB),
            kernel: true_peak_kernel(),
            latency,
            ring,
            history: vec![0.0; 2 * ring * channels],
            pos: 0,
            alpha_release: time_coef(release_ms, fs),
            released: 1.0,
            hold: hold as u64,
            deque: vec![(0, 1.0); hold + 1],
            dq_head: 0,
            dq_len: 0,
            frame: 0,
            box1: MovingAverage::new(w1, 1.0),
            box2: MovingAverage::new(w2, 1.0),
        })
    }

    /// Pushes `gain` for frame `self.frame` and returns the minimum over the hold window.
    #[inline]
    fn sliding_min(&mut self, gain: f64) -> f64 {
        let cap = self.deque.len();
        let wrap = |i: usize| if i >= cap { i - cap } else { i };
        while self.dq_len > 0 {
            let back = wrap(self.dq_head + self.dq_len - 1);
            if self.deque[back].1 >= gain {
                self.dq_len -= 1;
            } else {
                break;
            }
        }
        let slot = wrap(self.dq_head + self.dq_len);
        self.deque[slot] = (self.frame, gain);
        self.dq_len += 1;
        while self.deque[self.dq_head].0 + self.hold <= self.frame {
            self.dq_head = wrap(self.dq_head + 1);
            self.dq_len -= 1;
        }
        self.deque[self.dq_head].1
    }
}

impl Processor for Limiter {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        let nch = self.channels.min(channels.len());
        let m = self.ring;
        for i in 0..n {
            // 1. write the new frame, detect the true peak of frame i − 6
            let mut peak = 0f32;
            for (ch, hist) in channels
                .iter()
                .zip(self.history.chunks_exact_mut(2 * m))
                .take(nch)
            {
                let x = ch[i];
                hist[self.pos] = x;
                hist[self.pos + m] = x;
                let recent = &hist[self.pos + 1 + m - TP_TAPS..self.pos + 1 + m];
                let p = interp_peak(recent, &self.kernel).max(recent[TP_TAPS / 2 - 1].abs());
                peak = peak.max(p);
            }
            // 2. required gain, release, hold, smoothing
            let peak = f64::from(peak);
            let required = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };
            self.released = if required < self.released {
                required
            } else {
                required + (self.released - required) * self.alpha_release
            };
            let held = self.sliding_min(self.released);
            let gain = self.box2.push(self.box1.push(held));
            self.frame += 1;
            // 3. output the delayed frame
            let g = gain as f32;
            for (ch, hist) in channels
                .iter_mut()
                .zip(self.history.chunks_exact(2 * m))
                .take(nch)
            {
                ch[i] = hist[self.pos + 1] * g;
            }
            self.pos += 1;
            if self.pos == m {
                self.pos = 0;
            }
        }
    }
    fn reset(&mut self) {
        self.history.fill(0.0);
        self.pos = 0;
        self.released = 1.0;
        self.dq_head = 0;
        self.dq_len = 0;
        self.frame = 0;
        self.box1.reset(1.0);
        self.box2.reset(1.0);
    }
    fn latency(&self) -> usize {
        self.latency
    }
}

// ---------------------------------------------------------------------------------------
// Width

/// Stereo mid/side width: M = (L+R)/2, S = (L−R)/2, S' = width·S; computed as
/// L' = a·L + b·R, R' = b·L + a·R with a = (1+w)/2, b = (1−w)/2 (width 1 is exactly the
/// identity).
#[derive(Debug, Clone)]
pub struct Width {
    width: f64,
    a: f32,
    b: f32,
}

impl Width {
    /// `width` in 0 ..= 4; `channels` must be 2.
    pub fn new(width: f64, channels: usize) -> Result<Width, DspError> {
        let width = check_range("width", "width", width, 0.0, 4.0)?;
        if channels != 2 {
            return Err(DspError::ChannelCount {
                processor: "width",
                channels,
                allowed: "exactly 2 (stereo)",
            });
        }
        Ok(Width {
            width,
            a: ((1.0 + width) / 2.0) as f32,
            b: ((1.0 - width) / 2.0) as f32,
        })
    }
}

impl Processor for Width {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        if self.width == 1.0 {
            return;
        }
        let n = frame_count(channels);
        if let [left, right, ..] = channels {
            for (l, r) in left[..n].iter_mut().zip(right[..n].iter_mut()) {
                let (x, y) = (*l, *r);
                *l = self.a * x + self.b * y;
                *r = self.b * x + self.a * y;
            }
        }
    }
    fn reset(&mut self) {}
    fn latency(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------------------
// Dither

/// xorshift64* generator. Hand-written rather than a crate: `rand` is not a dependency,
/// the generator is six lines, and a fixed algorithm here keeps renders bit-reproducible
/// whatever a crate's future versions do with their streams.
#[derive(Debug, Clone)]
pub struct XorShift64Star {
    state: u64,
}

impl XorShift64Star {
    /// Seeded through splitmix64 (so that nearby seeds give unrelated streams; never 0).
    pub fn new(seed: u64) -> XorShift64Star {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift64Star {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Seed of the dither generators (channel `c` uses `DITHER_SEED + c`).
pub const DITHER_SEED: u64 = 0x4841_4C4F_4449_5448; // "HALODITH"

/// TPDF dither: adds `(u1 − u2)·LSB` (triangular, ±1 LSB peak, variance LSB²/6) where
/// LSB = 2^−(bits−1) of full scale. It only adds the noise; the output stage must then
/// round (not truncate) to `bits` — [`quantize`] does that. One deterministic generator
/// per channel, so the result does not depend on block size.
#[derive(Debug, Clone)]
pub struct Dither {
    lsb: f64,
    rngs: Vec<XorShift64Star>,
}

impl Dither {
    /// `bits` in 8 ..= 32.
    pub fn new(bits: u32, channels: usize) -> Result<Dither, DspError> {
        if !(8..=32).contains(&bits) {
            return Err(invalid("dither", "bits", f64::from(bits), "8 ..= 32"));
        }
        check_channels("dither", channels)?;
        let mut d = Dither {
            lsb: lsb(bits),
            rngs: Vec::with_capacity(channels),
        };
        d.rngs
            .extend((0..channels as u64).map(|c| XorShift64Star::new(DITHER_SEED + c)));
        Ok(d)
    }

    /// One LSB at the configured word length (full scale ±1).
    pub fn lsb(&self) -> f64 {
        self.lsb
    }
}

/// One LSB of a `bits`-bit word, full scale ±1.
pub fn lsb(bits: u32) -> f64 {
    0.5f64.powi(bits as i32 - 1)
}

/// Rounds `x` to the nearest multiple of one LSB at `bits` and clamps to the word's range.
pub fn quantize(x: f32, bits: u32) -> f32 {
    let step = lsb(bits);
    let q = (f64::from(x) / step).round() * step;
    q.clamp(-1.0, 1.0 - step) as f32
}

impl Processor for Dither {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        for (ch, rng) in channels.iter_mut().zip(self.rngs.iter_mut()) {
            for x in ch[..n].iter_mut() {
                let d = (rng.next_f64() - rng.next_f64()) * self.lsb;
                *x = (f64::from(*x) + d) as f32;
            }
        }
    }
    fn reset(&mut self) {
        for (c, rng) in self.rngs.iter_mut().enumerate() {
            *rng = XorShift64Star::new(DITHER_SEED + c as u64);
        }
    }
    fn latency(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------------------
// Delay

/// Pure delay of N frames on every channel (aligns outputs with different latencies).
#[derive(Debug, Clone)]
pub struct Delay {
    frames: usize,
    /// Per channel ring of `frames` samples.
    buffer: Vec<f32>,
    pos: usize,
    channels: usize,
}

/// Alias: the delay line is the `Delay` processor.
pub type DelayLine = Delay;

impl Delay {
    /// Delay by `frames` (0 ..= 10 000 000) on `channels` channels.
    pub fn new(frames: usize, channels: usize) -> Result<Delay, DspError> {
        check_channels("delay", channels)?;
        if frames > 10_000_000 {
            return Err(invalid("delay", "frames", frames as f64, "0 ..= 10000000"));
        }
        Ok(Delay {
            frames,
            buffer: vec![0.0; frames * channels],
            pos: 0,
            channels,
        })
    }
}

impl Processor for Delay {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        if self.frames == 0 {
            return;
        }
        let n = frame_count(channels);
        let d = self.frames;
        for (ch, ring) in channels
            .iter_mut()
            .zip(self.buffer.chunks_exact_mut(d))
            .take(self.channels)
        {
            let mut pos = self.pos;
            for x in ch[..n].iter_mut() {
                std::mem::swap(x, &mut ring[pos]);
                pos += 1;
                if pos == d {
                    pos = 0;
                }
            }
        }
        self.pos = (self.pos + n) % d;
    }
    fn reset(&mut self) {
        self.buffer.fill(0.0);
        self.pos = 0;
    }
    fn latency(&self) -> usize {
        self.frames
    }
}

// ---------------------------------------------------------------------------------------
// Chain

/// An ordered list of processors (config order), run one after the other on each block.
pub struct Chain {
    processors: Vec<Box<dyn Processor>>,
    channels: usize,
}

impl Chain {
    /// Builds every processor; the first invalid config's error is returned.
    pub fn new(
        configs: &[ProcessorConfig],
        sample_rate: u32,
        channels: usize,
        max_block_frames: usize,
    ) -> Result<Chain, DspError> {
        check_sample_rate("chain", sample_rate)?;
        check_channels("chain", channels)?;
        if max_block_frames == 0 {
            return Err(invalid("chain", "max_block_frames", 0.0, "≥ 1"));
        }
        let processors = configs
            .iter()
            .map(|c| c.build(sample_rate, channels, max_block_frames))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chain {
            processors,
            channels,
        })
    }

    /// Appends a processor (e.g. a [`Delay`] to align this output with another).
    pub fn push(&mut self, processor: Box<dyn Processor>) {
        self.processors.push(processor);
    }

    /// Runs every processor in order, in place.
    pub fn process(&mut self, channels: &mut [&mut [f32]]) {
        for p in self.processors.iter_mut() {
            p.process(channels);
        }
    }

    /// Sum of the processors' latencies, in frames.
    pub fn latency(&self) -> usize {
        self.processors.iter().map(|p| p.latency()).sum()
    }

    /// Resets every processor.
    pub fn reset(&mut self) {
        for p in self.processors.iter_mut() {
            p.reset();
        }
    }

    /// True when the chain has no processor (processing is the identity).
    pub fn is_empty(&self) -> bool {
        self.processors.is_empty()
    }

    /// Number of processors.
    pub fn len(&self) -> usize {
        self.processors.len()
    }

    /// Channel count the chain was built for.
    pub fn channels(&self) -> usize {
        self.channels
    }
}

impl Processor for Chain {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        Chain::process(self, channels);
    }
    fn reset(&mut self) {
        Chain::reset(self);
    }
    fn latency(&self) -> usize {
        Chain::latency(self)
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("processors", &self.processors.len())
            .field("channels", &self.channels)
            .field("latency", &self.latency())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_minimum_matches_naive_window_minimum() {
        let mut lim = Limiter::new(
            &LimiterParams {
                ceiling_dbtp: -1.0,
                lookahead_ms: 1.0,
                release_ms: 10.0,
            },
            48_000,
            1,
        )
        .unwrap();
        let hold = lim.hold as usize;
        let mut rng = XorShift64Star::new(7);
        let values: Vec<f64> = (0..5000).map(|_| rng.next_f64()).collect();
        for (i, v) in values.iter().enumerate() {
            let got = lim.sliding_min(*v);
            lim.frame += 1;
            let lo = (i + 1).saturating_sub(hold);
            let want = values[lo..=i].iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(got, want, "frame {i}");
        }
    }

    #[test]
    fn moving_average_is_exact_and_does_not_drift() {
        let mut ma = MovingAverage::new(37, 1.0);
        let mut rng = XorShift64Star::new(3);
        let mut hist = vec![1.0; 37];
        for i in 0..100_000 {
            let v = rng.next_f64();
            hist[i % 37] = v;
            let got = ma.push(v);
            let want = hist.iter().sum::<f64>() / 37.0;
            assert!((got - want).abs() < 1e-12);
        }
        // a constant 1 averages to exactly 1 (quiet signals pass bit-exactly)
        let mut ones = MovingAverage::new(25, 1.0);
        for _ in 0..1000 {
            assert_eq!(ones.push(1.0), 1.0);
        }
    }

    #[test]
    fn true_peak_kernel_interpolates_low_frequencies_exactly() {
        // each branch passes DC with unit gain (to 0.2 %) and reproduces a slow sine
        let k = true_peak_kernel();
        for p in 0..TP_FACTOR - 1 {
            let dc: f32 = k.iter().map(|tap| tap[p]).sum();
            assert!((dc - 1.0).abs() < 2e-3, "{dc}");
        }
        let w = 2.0 * PI * 500.0 / 48_000.0;
        let window: Vec<f32> = (0..TP_TAPS).map(|i| (w * i as f64).sin() as f32).collect();
        for p in 0..TP_FACTOR - 1 {
            let t = (TP_TAPS / 2 - 1) as f64 + (p + 1) as f64 / 4.0;
            let v: f32 = k.iter().zip(&window).map(|(tap, x)| tap[p] * x).sum();
            assert!((f64::from(v) - (w * t).sin()).abs() < 2e-3);
        }
    }

    #[test]
    fn xorshift_is_reproducible_and_uniform() {
        let mut a = XorShift64Star::new(1);
        let mut b = XorShift64Star::new(1);
        let mut c = XorShift64Star::new(2);
        let mut sum = 0.0;
        let n = 100_000;
        for _ in 0..n {
            let x = a.next_f64();
            assert_eq!(x, b.next_f64());
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.005);
        assert_ne!(a.next_u64(), c.next_u64());
    }

    #[test]
    fn eq_impulse_response_matches_direct_form_reference() {
        // naive direct form I in f64 as an independent implementation
        let band = EqBand {
            kind: EqKind::Peak,
            freq_hz: 2000.0,
            gain_db: 5.0,
            q: 0.9,
        };
        let mut eq = Eq::new(std::slice::from_ref(&band), 48_000, 1).unwrap();
        let c = Biquad::rbj(&band, 48_000.0);
        let mut x = vec![0f32; 256];
        x[0] = 1.0;
        let mut y = x.clone();
        eq.process(&mut [&mut y]);
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        for (xi, yi) in x.iter().zip(&y) {
            let xv = f64::from(*xi);
            let r = c.b0 * xv + c.b1 * x1 + c.b2 * x2 - c.a1 * y1 - c.a2 * y2;
            (x2, x1, y2, y1) = (x1, xv, y1, r);
            assert!((f64::from(*yi) - r).abs() < 1e-6);
        }
    }

    #[test]
    fn delay_line_delays_by_n() {
        let mut d = Delay::new(5, 1).unwrap();
        let mut x: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        d.process(&mut [&mut x[..7]]);
        d.process(&mut [&mut x[7..]]);
        assert_eq!(x, [0., 0., 0., 0., 0., 1., 2., 3., 4., 5., 6., 7.]);
    }
}
