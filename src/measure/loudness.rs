//! Loudness metering of any speaker layout after ITU-R BS.1770-4 / EBU R128 (momentary,
//! short-term, integrated, loudness range after EBU Tech 3342, sample and true peak), with
//! an explicit per-channel weight map, and delivery targets to check a report against.
//!
//! The numbers are the `ebur128` crate's (a port of libebur128), which the tests compare
//! against, computed in fewer passes. The K-weighting is the crate's filter, four channels
//! side by side (`k_weighting`: same operations, same bits); each channel's squares are
//! summed as they are filtered, so each 100 ms block's power is the crate's
//! `loudness_window(100)` without storing 3 s of filtered audio. Every channel carries the
//! BS.1770-4 weight of its position (see [`Meter::channel_weights`]; the crate's default
//! map ignores channels from the 7th on). Momentary and short-term loudness and the gating
//! of integrated loudness and loudness range are made from the 100 ms powers ([`Gating`]),
//! with the crate's gates and percentiles, because the crate sums every block's samples
//! anew.
//!
//! True peak is the crate's own oversampling filter computed here ([`TruePeakScan`]), with
//! the same coefficients and the same arithmetic in the same order, so the same numbers,
//! but oversampling only where it can change a result: a stretch of one channel whose
//! inter-sample values provably cannot exceed that channel's highest true peak so far
//! (and, for the QC page's series, the highest of the current 100 ms) is not oversampled.
//! The bound is the filter's largest absolute phase sum times the largest input sample
//! the phase reads, with a margin above float rounding. (The crate flushes subnormal
//! numbers to zero while it filters; this does not: levels below −758 dBFS may differ.)
//!
//! JSON: `-∞` (silence: no gated block, no peak) has no JSON number; `serde_json` writes
//! non-finite floats as `null`, so a silent programme's `integrated_lufs` reads `null`.

use crate::dsp::has_avx;
use crate::measure::k_weighting::KWeighting;
use crate::measure::timeline::LoudnessHistory;
use crate::scene::layout::Layout;
use serde::Serialize;
use thiserror::Error;

/// Channel weight of ear-level side/surround channels (BS.1770-4 Table 3: +1.5 dB).
pub const SURROUND_WEIGHT: f64 = 1.41;
/// Channels within this many degrees of the horizontal plane count as ear level.
pub const EAR_LEVEL_DEG: f64 = 10.0;
/// The most channels the meter accepts (the `ebur128` crate's limit, kept).
pub const MAX_CHANNELS: usize = 64;
/// Tolerance used by [`Target::check`] when a target gives a level but no tolerance.
pub const DEFAULT_TOLERANCE_LU: f64 = 0.1;

/// Errors building or feeding a loudness meter.
#[derive(Debug, Error)]
pub enum LoudnessError {
    /// The layout has no channels or more than the meter takes.
    #[error("layout '{layout}' has {channels} channels; the meter takes 1 to {max}")]
    ChannelCount {
        /// The layout's name.
        layout: String,
        /// Its channel count.
        channels: usize,
        /// The most channels the meter takes (`MAX_CHANNELS`, 64).
        max: usize,
    },
    /// The sample rate is outside what the meter supports.
    #[error("sample rate {sample_rate_hz} Hz is not allowed; use {min_hz} to {max_hz} Hz")]
    SampleRate {
        /// The rate given, Hz.
        sample_rate_hz: u32,
        /// Lowest rate allowed, Hz.
        min_hz: u32,
        /// Highest rate allowed, Hz.
        max_hz: u32,
    },
    /// A planar block has not one slice per layout channel.
    #[error("got {got} planar channels; the layout has {expected}")]
    PlanarChannels {
        /// Slices given.
        got: usize,
        /// The layout's channel count.
        expected: usize,
    },
    /// The slices of a planar block differ in length.
    #[error("planar channel {channel} has {frames} frames; channel 0 has {expected}")]
    PlanarFrames {
        /// The channel that differs, counted from 0.
        channel: usize,
        /// Its length, frames.
        frames: usize,
        /// Channel 0's length, frames.
        expected: usize,
    },
    /// An interleaved block is not a whole number of frames.
    #[error("{samples} interleaved samples is not a whole number of {channels}-channel frames")]
    InterleavedLength {
        /// Samples given.
        samples: usize,
        /// The layout's channel count.
        channels: usize,
    },
    /// A loudness target preset name is not known.
    #[error("unknown loudness target '{name}'; allowed: {allowed}")]
    UnknownTarget {
        /// The name given.
        name: String,
        /// The preset names allowed.
        allowed: String,
    },
}

/// What a meter read over the whole programme. Levels in LUFS / LU / dBTP / dBFS;
/// `-inf` where nothing was measured (serialised by `serde_json` as `null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoudnessReport {
    /// Programme loudness (BS.1770-4 gated), LUFS.
    pub integrated_lufs: f64,
    /// Loudness range (EBU Tech 3342), LU.
    pub range_lu: f64,
    /// Highest true peak over all channels (BS.1770-4 Annex 2, 4× oversampled), dBTP.
    pub true_peak_dbtp: f64,
    /// Highest sample peak over all channels, dBFS.
    pub sample_peak_dbfs: f64,
    /// Highest momentary loudness (400 ms window), LUFS.
    pub max_momentary_lufs: f64,
    /// Highest short-term loudness (3 s window), LUFS.
    pub max_short_term_lufs: f64,
    /// True peak of each channel in layout order, dBTP.
    pub true_peak_per_channel_dbtp: Vec<f64>,
}

/// A BS.1770 / R128 meter for one layout (all modes: M, S, I, LRA, sample and true peak).
/// Short-term loudness spans 30 blocks of 100 ms.
const SUB_BLOCKS_SHORT_TERM: usize = 30;

/// Taps of the true-peak interpolation filter (all phases together), as in `ebur128`.
const TP_TAPS: usize = 48;
/// Frames scanned at a time (a stack buffer; also the granularity of skipping).
const TP_TILE_FRAMES: usize = 256;
/// Relative margin on the skip bound: far above the rounding of a 24-term f32 sum.
const TP_BOUND_MARGIN: f64 = 1e-4;

/// True peak after BS.1770-4 Annex 2 as the `ebur128` crate computes it: 4× oversampling
/// below 96 kHz, 2× below 192 kHz, none above; a Hann-windowed sinc of 48 taps split in
/// polyphase, each output phase summed from tap 0 (newest input) on, in f32. Skips the
/// stretches whose outputs cannot exceed a floor the caller gives (see the module notes).
struct TruePeakScan {
    /// Oversampling factor (1: none) and taps per phase.
    factor: usize,
    taps: usize,
    /// `coeffs[k * factor + o]`: tap `k` of output phase `o`.
    coeffs: Vec<f32>,
    /// Largest sum of absolute coefficients over the phases, with the margin.
    gain_bound: f64,
    /// Per channel: the last `taps - 1` inputs, oldest first.
    history: Vec<[f32; TP_TAPS]>,
    /// Per channel: the highest true peak so far (linear).
    peak: Vec<f64>,
    /// Whether the CPU has AVX (see [`scan_phases_avx`]).
    avx: bool,
}

impl TruePeakScan {
    fn new(sample_rate: u32, channels: usize) -> TruePeakScan {
        let factor = if sample_rate < 96_000 {
            4
        } else if sample_rate < 192_000 {
            2
        } else {
            1
        };
        let mut coeffs = vec![0.0f32; TP_TAPS];
        if factor > 1 {
            let window = TP_TAPS as f64;
            for (j, c) in coeffs.iter_mut().enumerate() {
                let j = j as f64;
                let w = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j / window).cos());
                let m = j - window / 2.0;
                let x = m * std::f64::consts::PI / factor as f64;
                *c = if m.abs() > 0.000001 {
                    w * x.sin() / x
                } else {
                    w
                } as f32;
            }
        }
        let taps = TP_TAPS / factor;
        let gain_bound = (0..factor)
            .map(|o| {
                (0..taps)
                    .map(|k| f64::from(coeffs[k * factor + o]).abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
            * (1.0 + TP_BOUND_MARGIN);
        TruePeakScan {
            factor,
            taps,
            coeffs,
            gain_bound,
            history: vec![[0.0; TP_TAPS]; channels],
            peak: vec![0.0; channels],
            avx: has_avx(),
        }
    }

    fn reset(&mut self) {
        for h in &mut self.history {
            *h = [0.0; TP_TAPS];
        }
        self.peak.fill(0.0);
    }

    /// Feeds `x` (one channel's next samples, at most [`TP_TILE_FRAMES`]); returns the
    /// highest oversampled value of the stretch, or `None` when it provably does not exceed
    /// `floor` (it was not computed). Raises the channel's peak.
    fn scan(&mut self, c: usize, x: &[f32], floor: f64) -> Option<f64> {
        debug_assert!(x.len() <= TP_TILE_FRAMES);
        if self.factor == 1 {
            return None;
        }
        let keep = self.taps - 1;
        let mut line = [0.0f32; TP_TAPS + TP_TILE_FRAMES];
        line[..keep].copy_from_slice(&self.history[c][..keep]);
        line[keep..keep + x.len()].copy_from_slice(x);
        let line = &line[..keep + x.len()];
        self.history[c][..keep].copy_from_slice(&line[x.len()..]);
        let top = abs_max(line);
        if self.gain_bound * f64::from(top) <= floor.min(self.peak[c]) {
            return None;
        }
        let best = f64::from(match (self.factor, self.avx) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx` is only true when the CPU reported AVX.
            (4, true) => unsafe { scan_phases_avx::<4, 12>(&self.coeffs, line) },
            #[cfg(target_arch = "x86_64")]
            (_, true) => unsafe { scan_phases_avx::<2, 24>(&self.coeffs, line) },
            (4, _) => scan_phases::<4, 12>(&self.coeffs, line),
            _ => scan_phases::<2, 24>(&self.coeffs, line),
        });
        if best > self.peak[c] {
            self.peak[c] = best;
        }
        Some(best)
    }
}

/// The highest absolute output of every phase over `line` (taps − 1 past inputs, then the
/// new ones): for each new input, each phase sums `coeff × input` from the newest input
/// back, starting from 0 (the crate's order, so the same f32 results).
fn scan_phases<const F: usize, const T: usize>(coeffs: &[f32], line: &[f32]) -> f32 {
    let mut filter = [[0.0f32; F]; T];
    for (k, row) in filter.iter_mut().enumerate() {
        row.copy_from_slice(&coeffs[k * F..(k + 1) * F]);
    }
    let mut best = [0.0f32; F];
    for w in line.windows(T) {
        let mut acc = [0.0f32; F];
        for (row, &x) in filter.iter().zip(w.iter().rev()) {
            for (a, &f) in acc.iter_mut().zip(row) {
                *a += x * f;
            }
        }
        for (b, a) in best.iter_mut().zip(acc) {
            *b = b.max(a.abs());
        }
    }
    best.into_iter().fold(0.0, f32::max)
}

/// [`scan_phases`] eight outputs at a time, in AVX registers: each tap's eight inputs
/// are loaded once and multiplied into every phase's accumulator, tap by tap from the
/// newest input, from 0, one multiply and one add each (no fused multiply-add): the same
/// f32 operations in the same order, so the same values. The remaining outputs go
/// through [`scan_phases`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn scan_phases_avx<const F: usize, const T: usize>(coeffs: &[f32], line: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    const LANES: usize = 8;
    let outputs = (line.len() + 1).saturating_sub(T);
    let whole = outputs / LANES * LANES;
    let mut taps = [[_mm256_setzero_ps(); F]; T];
    for (k, row) in taps.iter_mut().enumerate() {
        for (o, c) in row.iter_mut().enumerate() {
            *c = _mm256_set1_ps(coeffs[k * F + o]);
        }
    }
    let sign = _mm256_set1_ps(-0.0);
    let mut best = [_mm256_setzero_ps(); F];
    // Output n + j, tap k reads input n + j + T − 1 − k: at most `whole + T − 2`, inside.
    assert!(whole == 0 || whole + T - 1 <= line.len());
    let base = line.as_ptr();
    for n in (0..whole).step_by(LANES) {
        let mut acc = [_mm256_setzero_ps(); F];
        for (k, row) in taps.iter().enumerate() {
            // SAFETY: eight inputs from n + T − 1 − k end at most at `whole + T − 2`.
            let x = unsafe { _mm256_loadu_ps(base.add(n + T - 1 - k)) };
            for (a, &c) in acc.iter_mut().zip(row) {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(x, c));
            }
        }
        for (b, a) in best.iter_mut().zip(acc) {
            *b = _mm256_max_ps(*b, _mm256_andnot_ps(sign, a));
        }
    }
    let mut lanes = [0.0f32; LANES];
    let mut top = scan_phases::<F, T>(coeffs, &line[whole..]);
    for b in best {
        // SAFETY: `lanes` holds eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), b) };
        top = lanes.iter().fold(top, |m, &v| m.max(v));
    }
    top
}

/// Power of the absolute gate, −70 LUFS (BS.1770-4 §2.8): blocks below it are dropped.
const ABSOLUTE_GATE_POWER: f64 = 1.172_465_304_582_298e-7; // 10^((−70 + 0.691) / 10)
/// The relative gates: −10 LU (integrated) and −20 LU (loudness range), as power ratios.
const RELATIVE_GATE_INTEGRATED: f64 = 0.1;
const RELATIVE_GATE_RANGE: f64 = 0.01;

fn power_to_lufs(power: f64) -> f64 {
    10.0 * power.log10() - 0.691
}

/// The gating blocks of BS.1770-4 §2.8 (integrated loudness: 400 ms blocks every 100 ms)
/// and EBU Tech 3342 (loudness range: 3 s blocks every second, the hop of libebur128),
/// made from the meter's 100 ms powers: a 400 ms block is the mean of four, a 3 s block
/// of thirty. The `ebur128` crate sums each block's samples anew (seven passes over every
/// sample, a tenth of an ADM render's time); these are made in one. Gates, thresholds
/// and percentiles follow the crate's exact (non-histogram) mode, so the results are the
/// crate's up to float rounding (the tests compare them).
#[derive(Debug, Clone, Default)]
struct Gating {
    /// 100 ms polls so far.
    polls: u64,
    /// Powers of the 400 ms blocks above the absolute gate.
    blocks: Vec<f64>,
    /// Powers of the 3 s blocks above the absolute gate.
    short_blocks: Vec<f64>,
}

impl Gating {
    /// At each 100 ms poll: the mean power of the last 400 ms and of the last 3 s.
    fn add(&mut self, power_400ms: f64, power_3s: f64) {
        self.polls += 1;
        if self.polls >= 4 && power_400ms >= ABSOLUTE_GATE_POWER {
            self.blocks.push(power_400ms);
        }
        if self.polls >= 30
            && (self.polls - 30).is_multiple_of(10)
            && power_3s >= ABSOLUTE_GATE_POWER
        {
            self.short_blocks.push(power_3s);
        }
    }

    /// Integrated loudness: the mean power of the blocks above the relative gate (10 LU
    /// below the mean of the blocks above the absolute gate); −∞ with no such block.
    fn integrated_lufs(&self) -> f64 {
        if self.blocks.is_empty() {
            return f64::NEG_INFINITY;
        }
        let gate =
            self.blocks.iter().sum::<f64>() / self.blocks.len() as f64 * RELATIVE_GATE_INTEGRATED;
        let (n, sum) = self
            .blocks
            .iter()
            .filter(|&&p| p >= gate)
            .fold((0u64, 0.0), |(n, sum), &p| (n + 1, sum + p));
        if n == 0 {
            return f64::NEG_INFINITY;
        }
        power_to_lufs(sum / n as f64)
    }

    /// Loudness range: between the 10th and the 95th percentile of the 3 s blocks above
    /// the relative gate (20 LU below their mean), the crate's rounding of the ranks; 0
    /// with no block.
    fn range_lu(&self) -> f64 {
        if self.short_blocks.is_empty() {
            return 0.0;
        }
        let mut sorted = self.short_blocks.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let gate = sorted.iter().sum::<f64>() / sorted.len() as f64 * RELATIVE_GATE_RANGE;
        let below = sorted.partition_point(|&p| p < gate);
        let Some(last) = (sorted.len() - below).checked_sub(1) else {
            return 0.0;
        };
        let rank = |q: f64| below + (last as f64 * q + 0.5) as usize;
        power_to_lufs(sorted[rank(0.95)]) - power_to_lufs(sorted[rank(0.1)])
    }
}

/// A BS.1770-4 / EBU R 128 meter for one layout: momentary, short-term, integrated,
/// loudness range, sample and true peak, with BS.1770 channel weights from the layout's
/// channel positions.
pub struct Meter {
    /// The K-weighting filter and each channel's sum of squares in the current 100 ms.
    k_weighting: KWeighting,
    /// BS.1770-4 weight per channel ([`Meter::channel_weights`]; 0: not measured).
    weights: Vec<f64>,
    /// Highest sample magnitude per channel (linear).
    sample_peak: Vec<f64>,
    /// Momentary and short-term loudness at the last 100 ms boundary, LUFS.
    momentary_lufs: f64,
    short_term_lufs: f64,
    channels: usize,
    /// Frames in 100 ms (the polling period for max momentary / short-term).
    frames_100ms: usize,
    /// Frames fed since the last 100 ms poll.
    since_poll_frames: usize,
    /// Weighted mean-square power of the last 30 blocks of 100 ms (a ring).
    sub_blocks: [f64; SUB_BLOCKS_SHORT_TERM],
    sub_block_next: usize,
    max_momentary_lufs: f64,
    max_short_term_lufs: f64,
    /// The 100 ms series for the QC page (off unless [`Meter::keep_history`]).
    history: Option<LoudnessHistory>,
    /// Highest true peak (linear, any channel) since the last 100 ms poll.
    block_true_peak: f64,
    /// The gating blocks of integrated loudness and loudness range.
    gating: Gating,
    /// True peak (the crate's filter, oversampled only where it can matter).
    true_peak: TruePeakScan,
}

/// The largest magnitude in `x` (0 when empty; NaN is passed over, as `f32::max` does),
/// eight running maxima at a time: the same value as a fold from the first sample, since
/// the maximum does not depend on the order.
fn abs_max(x: &[f32]) -> f32 {
    let mut top = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (t, v) in top.iter_mut().zip(c) {
            *t = t.max(v.abs());
        }
    }
    rest.iter().chain(&top).fold(0.0f32, |m, v| m.max(v.abs()))
}

fn amplitude_db(x: f64) -> f64 {
    if x > 0.0 {
        20.0 * x.log10()
    } else {
        f64::NEG_INFINITY
    }
}

/// The meter-crate channel that gives weight `w` (the crate uses the variant only for its
/// weight: LeftSurround/RightSurround/M±060/M±090 → 1.41, Unused → 0, the rest → 1.0).
#[cfg(test)]
fn meter_channel(weight: f64, azimuth_deg: f64) -> ebur128::Channel {
    use ebur128::Channel as MeterChannel;
    if weight == 0.0 {
        MeterChannel::Unused
    } else if weight > 1.0 {
        if azimuth_deg >= 0.0 {
            MeterChannel::Mp090
        } else {
            MeterChannel::Mm090
        }
    } else if azimuth_deg > 0.0 {
        MeterChannel::Left
    } else if azimuth_deg < 0.0 {
        MeterChannel::Right
    } else {
        MeterChannel::Center
    }
}

impl Meter {
    /// A meter for `layout` at `sample_rate` Hz; errors on no channels, more than 64, or
    /// an unsupported rate.
    pub fn new(layout: &Layout, sample_rate: u32) -> Result<Meter, LoudnessError> {
        let channels = layout.num_channels();
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(LoudnessError::ChannelCount {
                layout: layout.name.clone(),
                channels,
                max: MAX_CHANNELS,
            });
        }
        if !(8_000..=768_000).contains(&sample_rate) {
            return Err(LoudnessError::SampleRate {
                sample_rate_hz: sample_rate,
                min_hz: 8_000,
                max_hz: 768_000,
            });
        }
        Ok(Meter {
            k_weighting: KWeighting::new(sample_rate, channels),
            weights: Meter::channel_weights(layout),
            sample_peak: vec![0.0; channels],
            momentary_lufs: f64::NEG_INFINITY,
            short_term_lufs: f64::NEG_INFINITY,
            channels,
            frames_100ms: (sample_rate as usize).div_ceil(10),
            since_poll_frames: 0,
            sub_blocks: [0.0; SUB_BLOCKS_SHORT_TERM],
            sub_block_next: 0,
            max_momentary_lufs: f64::NEG_INFINITY,
            max_short_term_lufs: f64::NEG_INFINITY,
            history: None,
            block_true_peak: 0.0,
            gating: Gating::default(),
            true_peak: TruePeakScan::new(sample_rate, channels),
        })
    }

    /// Keeps the momentary and short-term loudness and the true peak of every 100 ms
    /// (see `measure::timeline`), `bucket` polls to a stored point. Off by default:
    /// the series grow with the programme (live metering never calls this).
    pub fn keep_history(&mut self, bucket: usize) {
        self.history = Some(LoudnessHistory::new(bucket));
    }

    /// The series kept since [`Meter::keep_history`].
    pub fn take_history(&mut self) -> Option<LoudnessHistory> {
        self.history.take()
    }

    /// With each call into the meter crate: the true peak of the frames just added, channel
    /// `c`'s samples `start..` copied into a tile by `fill(c, start, tile)`, `frames` of them. The 100 ms value is the
    /// highest of the sample and true peaks (as the crate's `prev_true_peak`).
    fn note_true_peak(&mut self, frames: usize, fill: impl Fn(usize, usize, &mut [f32])) {
        let keep_block = self.history.is_some();
        let mut tile = [0.0f32; TP_TILE_FRAMES];
        for c in 0..self.channels {
            let mut start = 0;
            while start < frames {
                let n = TP_TILE_FRAMES.min(frames - start);
                fill(c, start, &mut tile[..n]);
                let floor = if keep_block {
                    let sample_peak = abs_max(&tile[..n]);
                    self.block_true_peak = self.block_true_peak.max(f64::from(sample_peak));
                    self.block_true_peak
                } else {
                    f64::INFINITY
                };
                if let Some(tp) = self.true_peak.scan(c, &tile[..n], floor)
                    && keep_block
                {
                    self.block_true_peak = self.block_true_peak.max(tp);
                }
                start += n;
            }
        }
    }

    /// BS.1770-4 weights by position: 0 for LFE; 1.41 for ear-level channels
    /// (|elevation| ≤ 10°) with |azimuth| in 60°…120°; 1.0 for everything else (front,
    /// ±135°, ±150°, back and every upper or lower channel).
    pub fn channel_weights(layout: &Layout) -> Vec<f64> {
        layout
            .channels
            .iter()
            .map(|c| {
                let az = crate::scene::geometry::wrap_deg(c.azimuth_deg).abs();
                if c.lfe {
                    0.0
                } else if c.elevation_deg.abs() <= EAR_LEVEL_DEG && (60.0..=120.0).contains(&az) {
                    SURROUND_WEIGHT
                } else {
                    1.0
                }
            })
            .collect()
    }

    /// Number of channels the meter takes.
    pub fn num_channels(&self) -> usize {
        self.channels
    }

    /// At each 100 ms boundary: the last 100 ms's weighted power goes into a ring of 30,
    /// from which momentary (4 blocks = 400 ms) and short-term (30 blocks = 3 s) follow.
    /// Asking the crate for short-term loudness every 100 ms would sum 3 s of audio each
    /// time (30 passes over the signal); this is one pass, with the same result up to
    /// rounding.
    fn poll(&mut self) {
        // The crate's `loudness_window(100)`: the channels' sums of squares in channel
        // order, each times its weight (1.41 for the surround ones), over the block's
        // frames. A power that is not a finite positive number (silence; NaN or infinity
        // in the signal) counts as silence, as the crate's loudness of it does.
        let mut sum = 0.0;
        for (c, &w) in self.weights.iter().enumerate() {
            let channel_sum = self.k_weighting.take_sum(c);
            if w == 1.0 {
                sum += channel_sum;
            } else if w != 0.0 {
                sum += channel_sum * w;
            }
        }
        let power = sum / self.frames_100ms as f64;
        let block = if power > 0.0 && power.is_finite() {
            power
        } else {
            0.0
        };
        self.sub_blocks[self.sub_block_next] = block;
        self.sub_block_next = (self.sub_block_next + 1) % SUB_BLOCKS_SHORT_TERM;
        let mean = |n: usize| {
            (1..=n)
                .map(|k| {
                    self.sub_blocks
                        [(self.sub_block_next + SUB_BLOCKS_SHORT_TERM - k) % SUB_BLOCKS_SHORT_TERM]
                })
                .sum::<f64>()
                / n as f64
        };
        let lufs = |p: f64| {
            if p > 0.0 {
                -0.691 + 10.0 * p.log10()
            } else {
                f64::NEG_INFINITY
            }
        };
        let momentary_power = mean(4);
        let short_term_power = mean(SUB_BLOCKS_SHORT_TERM);
        self.gating.add(momentary_power, short_term_power);
        let momentary = lufs(momentary_power);
        let short_term = lufs(short_term_power);
        self.momentary_lufs = momentary;
        self.short_term_lufs = short_term;
        self.max_momentary_lufs = self.max_momentary_lufs.max(momentary);
        self.max_short_term_lufs = self.max_short_term_lufs.max(short_term);
        if let Some(h) = self.history.as_mut() {
            h.momentary.push(Some(momentary));
            h.short_term.push(Some(short_term));
            h.true_peak.push(Some(amplitude_db(self.block_true_peak)));
            self.block_true_peak = 0.0;
        }
    }

    /// Feeds planar audio (one slice per layout channel, equal lengths).
    pub fn process_planar(&mut self, channels: &[&[f32]]) -> Result<(), LoudnessError> {
        if channels.len() != self.channels {
            return Err(LoudnessError::PlanarChannels {
                got: channels.len(),
                expected: self.channels,
            });
        }
        let frames = channels[0].len();
        if let Some((channel, c)) = channels.iter().enumerate().find(|(_, c)| c.len() != frames) {
            return Err(LoudnessError::PlanarFrames {
                channel,
                frames: c.len(),
                expected: frames,
            });
        }
        let mut chunk: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
        let mut start = 0;
        while start < frames {
            let n = (self.frames_100ms - self.since_poll_frames).min(frames - start);
            for (dst, src) in chunk.iter_mut().zip(channels) {
                *dst = &src[start..start + n];
            }
            let chunk = &chunk[..self.channels];
            let fill = |c: usize, from: usize, dst: &mut [f32]| {
                dst.copy_from_slice(&chunk[c][from..from + dst.len()]);
            };
            self.k_weighting.process(n, fill);
            for (peak, x) in self.sample_peak.iter_mut().zip(chunk) {
                *peak = peak.max(f64::from(abs_max(x)));
            }
            self.note_true_peak(n, fill);
            self.advance(n);
            start += n;
        }
        Ok(())
    }

    /// Feeds interleaved audio (frames of `num_channels()` samples).
    pub fn process_interleaved(&mut self, samples: &[f32]) -> Result<(), LoudnessError> {
        if !samples.len().is_multiple_of(self.channels) {
            return Err(LoudnessError::InterleavedLength {
                samples: samples.len(),
                channels: self.channels,
            });
        }
        let mut rest = samples;
        while !rest.is_empty() {
            let n = (self.frames_100ms - self.since_poll_frames).min(rest.len() / self.channels);
            let (now, later) = rest.split_at(n * self.channels);
            let channels = self.channels;
            let fill = |c: usize, from: usize, dst: &mut [f32]| {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = now[(from + i) * channels + c];
                }
            };
            self.k_weighting.process(n, fill);
            for (c, peak) in self.sample_peak.iter_mut().enumerate() {
                let top = (0..n).fold(0.0f32, |m, i| m.max(now[i * channels + c].abs()));
                *peak = peak.max(f64::from(top));
            }
            self.note_true_peak(n, fill);
            self.advance(n);
            rest = later;
        }
        Ok(())
    }

    fn advance(&mut self, frames: usize) {
        self.since_poll_frames += frames;
        if self.since_poll_frames >= self.frames_100ms {
            self.since_poll_frames = 0;
            self.poll();
        }
    }

    /// Momentary loudness (the 400 ms up to the last 100 ms boundary), LUFS; `-inf` when
    /// silent.
    pub fn momentary_lufs(&self) -> f64 {
        self.momentary_lufs
    }

    /// Short-term loudness (the 3 s up to the last 100 ms boundary), LUFS; `-inf` when
    /// silent.
    pub fn short_term_lufs(&self) -> f64 {
        self.short_term_lufs
    }

    /// Everything measured since `new` or the last `reset`.
    pub fn report(&self) -> LoudnessReport {
        // As the crate's `true_peak`: the higher of the sample and the true peak.
        let per_channel: Vec<f64> = (0..self.channels)
            .map(|c| amplitude_db(self.sample_peak[c].max(self.true_peak.peak[c])))
            .collect();
        let sample_peak = self.sample_peak.iter().copied().fold(0.0f64, f64::max);
        LoudnessReport {
            integrated_lufs: self.gating.integrated_lufs(),
            range_lu: self.gating.range_lu(),
            true_peak_dbtp: per_channel
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max),
            sample_peak_dbfs: amplitude_db(sample_peak),
            max_momentary_lufs: self.max_momentary_lufs,
            max_short_term_lufs: self.max_short_term_lufs,
            true_peak_per_channel_dbtp: per_channel,
        }
    }

    /// Forgets everything measured: the meter is as after `new`.
    pub fn reset(&mut self) {
        self.k_weighting.reset();
        self.sample_peak.fill(0.0);
        self.momentary_lufs = f64::NEG_INFINITY;
        self.short_term_lufs = f64::NEG_INFINITY;
        self.true_peak.reset();
        self.since_poll_frames = 0;
        self.sub_blocks = [0.0; SUB_BLOCKS_SHORT_TERM];
        self.sub_block_next = 0;
        self.max_momentary_lufs = f64::NEG_INFINITY;
        self.max_short_term_lufs = f64::NEG_INFINITY;
        self.block_true_peak = 0.0;
        self.gating = Gating::default();
        if let Some(h) = self.history.as_mut() {
            *h = LoudnessHistory::new(h.momentary.bucket());
        }
    }
}

/// Measures a whole interleaved programme. Test support (the `internals` feature).
#[cfg(feature = "internals")]
pub fn measure_interleaved(
    layout: &Layout,
    sample_rate: u32,
    samples: &[f32],
) -> Result<LoudnessReport, LoudnessError> {
    let mut meter = Meter::new(layout, sample_rate)?;
    meter.process_interleaved(samples)?;
    Ok(meter.report())
}

/// A delivery target. `integrated_lufs ± tolerance_lu` is a window the programme must land
/// in (tolerance `None` = ±[`DEFAULT_TOLERANCE_LU`]); `max_integrated_lufs` is a ceiling
/// only; `max_true_peak_dbtp` is a true-peak ceiling.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    pub integrated_lufs: Option<f64>,
    pub tolerance_lu: Option<f64>,
    pub max_integrated_lufs: Option<f64>,
    pub max_true_peak_dbtp: Option<f64>,
}

fn fmt_level(x: f64) -> String {
    if x == f64::NEG_INFINITY {
        "-inf".to_string()
    } else {
        format!("{x:.1}")
    }
}

impl Target {
    fn new(
        name: &str,
        level: Option<f64>,
        tol: Option<f64>,
        max_i: Option<f64>,
        tp: f64,
    ) -> Target {
        Target {
            name: name.to_string(),
            integrated_lufs: level,
            tolerance_lu: tol,
            max_integrated_lufs: max_i,
            max_true_peak_dbtp: Some(tp),
        }
    }

    /// The built-in targets (standards.md, "Delivery targets"):
    /// - `atmos-music`: integrated ≤ −18 LKFS, true peak ≤ −1 dBTP (Apple / UMG Atmos).
    /// - `spotify`, `youtube`: −14 LUFS ± 1 LU, −1 dBTP. The services normalise rather than
    ///   reject, so the ±1 LU window is our choice: a master within 1 LU of the reference is
    ///   barely turned up or down (and not limited by the player's gain).
    /// - `apple-music`: −16 LUFS ± 1 LU, −1 dBTP (same reasoning).
    /// - `ebu-r128`: −23 LUFS ± 0.5 LU, −1 dBTP (R128 for live; ±0.5 for file delivery).
    /// - `atsc-a85`: −24 LKFS ± 2 LU, −2 dBTP.
    pub fn presets() -> Vec<Target> {
        vec![
            Target::new("atmos-music", None, None, Some(-18.0), -1.0),
            Target::new("spotify", Some(-14.0), Some(1.0), None, -1.0),
            Target::new("apple-music", Some(-16.0), Some(1.0), None, -1.0),
            Target::new("youtube", Some(-14.0), Some(1.0), None, -1.0),
            Target::new("ebu-r128", Some(-23.0), Some(0.5), None, -1.0),
            Target::new("atsc-a85", Some(-24.0), Some(2.0), None, -2.0),
        ]
    }

    pub fn preset(name: &str) -> Result<Target, LoudnessError> {
        let presets = Target::presets();
        let allowed: Vec<String> = presets.iter().map(|t| t.name.clone()).collect();
        presets
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| LoudnessError::UnknownTarget {
                name: name.to_string(),
                allowed: allowed.join(", "),
            })
    }

    /// Human-readable misses; empty when the report meets the target.
    pub fn check(&self, r: &LoudnessReport) -> Vec<String> {
        let mut misses = Vec::new();
        let i = r.integrated_lufs;
        if let Some(level) = self.integrated_lufs {
            let tol = self.tolerance_lu.unwrap_or(DEFAULT_TOLERANCE_LU).abs();
            if !((level - tol)..=(level + tol)).contains(&i) {
                let off = if i.is_finite() {
                    format!(" ({:+.1} LU)", i - level)
                } else {
                    String::new()
                };
                misses.push(format!(
                    "{}: integrated {} LUFS is outside {level:.1} ± {tol:.1} LU{off}",
                    self.name,
                    fmt_level(i)
                ));
            }
        }
        if let Some(max) = self.max_integrated_lufs
            && (i > max || i.is_nan())
        {
            misses.push(format!(
                "{}: integrated {} LUFS is above the {max:.1} LUFS ceiling ({:+.1} LU)",
                self.name,
                fmt_level(i),
                i - max
            ));
        }
        if let Some(max) = self.max_true_peak_dbtp
            && (r.true_peak_dbtp > max || r.true_peak_dbtp.is_nan())
        {
            misses.push(format!(
                "{}: true peak {} dBTP is above the {max:.1} dBTP ceiling ({:+.1} dB)",
                self.name,
                fmt_level(r.true_peak_dbtp),
                r.true_peak_dbtp - max
            ));
        }
        misses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{Channel as MeterChannel, EbuR128, Mode};

    /// The `ebur128` crate's meter in `mode`, every channel weighted as [`Meter`] weights it.
    fn crate_meter(layout: &Layout, rate: u32, mode: Mode) -> EbuR128 {
        let nch = layout.num_channels() as u32;
        let mut meter = EbuR128::new(nch, rate, mode).expect("crate meter");
        for (i, (c, w)) in layout
            .channels
            .iter()
            .zip(Meter::channel_weights(layout))
            .enumerate()
        {
            meter
                .set_channel(i as u32, meter_channel(w, c.azimuth_deg))
                .expect("channel");
        }
        meter
    }

    /// Test signals for the true-peak check: a quarter-rate sine at 45° phase (inter-sample
    /// peaks 3 dB over the samples), noise whose level steps down and back up (so that
    /// stretches are skipped and later ones are not), silence, a late loud burst.
    fn true_peak_signal(channels: usize, frames: usize, rate: u32) -> Vec<Vec<f32>> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..channels)
            .map(|c| {
                (0..frames)
                    .map(|i| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let noise = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                        let t = i as f64 / f64::from(rate);
                        let level = match (t * 10.0) as usize % 7 {
                            0 | 1 => 0.5,
                            2 => 0.05,
                            3 => 0.0,
                            4 => 0.01,
                            _ => 0.3 + 0.1 * c as f32,
                        };
                        let sine = (std::f64::consts::FRAC_PI_2 * i as f64
                            + std::f64::consts::FRAC_PI_4)
                            .sin() as f32;
                        let burst = if i > frames * 9 / 10 && c % 3 == 1 {
                            0.9 * sine
                        } else {
                            0.0
                        };
                        level * if c % 2 == 0 { noise } else { sine * 0.7 } + burst
                    })
                    .collect()
            })
            .collect()
    }

    /// The eight-wide phase scan equals the one-by-one scan to the bit, for both
    /// oversampling factors and every length around whole groups of eight.
    #[test]
    fn eight_wide_true_peak_scan_equals_the_scalar_scan() {
        if !has_avx() {
            println!("skipped: this CPU has no AVX");
            return;
        }
        let signal = &true_peak_signal(1, 300, 48_000)[0];
        for rate in [48_000, 96_000] {
            let scan = TruePeakScan::new(rate, 1);
            for len in [0, 1, 11, 12, 19, 20, 21, 35, 36, 60, 83, 300] {
                let line = &signal[300 - len..];
                let (one, eight) = if scan.factor == 4 {
                    (scan_phases::<4, 12>(&scan.coeffs, line), unsafe {
                        scan_phases_avx::<4, 12>(&scan.coeffs, line)
                    })
                } else {
                    (scan_phases::<2, 24>(&scan.coeffs, line), unsafe {
                        scan_phases_avx::<2, 24>(&scan.coeffs, line)
                    })
                };
                assert_eq!(one.to_bits(), eight.to_bits(), "{rate} Hz, {len} inputs");
            }
        }
    }

    /// The true peaks (per channel and each 100 ms's highest) equal the `ebur128` crate's
    /// own to the bit, at 4× (44.1 and 48 kHz), 2× (96 kHz) and no oversampling (192 kHz),
    /// for 1, 2, 5 and 12 channels, fed planar in uneven blocks and interleaved.
    #[test]
    fn true_peak_is_the_crates_to_the_bit() {
        for &rate in &[44_100u32, 48_000, 96_000, 192_000] {
            for &layout in &["1.0", "2.0", "5.0", "7.1.4"] {
                let layout = Layout::builtin(layout).expect("built-in");
                let nch = layout.num_channels();
                let frames = rate as usize * 3 + 777;
                let sig = true_peak_signal(nch, frames, rate);
                // The reference: the crate's own true peak, polled as the meter polls.
                let mut crate_meter =
                    EbuR128::new(nch as u32, rate, Mode::SAMPLE_PEAK | Mode::TRUE_PEAK)
                        .expect("crate meter");
                let step = (rate as usize).div_ceil(10);
                let mut want_series =
                    crate::measure::timeline::Series::new(1, crate::measure::timeline::Reduce::Max);
                let mut start = 0;
                while start < frames {
                    let n = step.min(frames - start);
                    let planar: Vec<&[f32]> = sig.iter().map(|c| &c[start..start + n]).collect();
                    crate_meter.add_frames_planar_f32(&planar).expect("add");
                    if n == step {
                        let tp = (0..nch as u32)
                            .map(|c| crate_meter.prev_true_peak(c).expect("tp"))
                            .fold(0.0f64, f64::max);
                        want_series.push(Some(amplitude_db(tp)));
                    }
                    start += n;
                }
                let want: Vec<f64> = (0..nch as u32)
                    .map(|c| amplitude_db(crate_meter.true_peak(c).expect("tp")))
                    .collect();

                let mut meter = Meter::new(&layout, rate).expect("meter");
                meter.keep_history(1);
                let mut start = 0;
                let mut k = 0;
                while start < frames {
                    let n = [1000, 37, 4096, 1][k % 4].min(frames - start);
                    let planar: Vec<&[f32]> = sig.iter().map(|c| &c[start..start + n]).collect();
                    meter.process_planar(&planar).expect("feed");
                    start += n;
                    k += 1;
                }
                let got = meter.report().true_peak_per_channel_dbtp;
                for (c, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.to_bits(), w.to_bits(), "{rate} Hz, {nch} ch, channel {c}");
                }
                let series = meter.take_history().expect("history").true_peak.finish();
                // (The page's series is rounded: equal to its last digit.)
                let want_series = want_series.finish();
                assert_eq!(series, want_series, "{rate} Hz, {nch} ch: 100 ms series");

                let mut interleaved = vec![0.0f32; frames * nch];
                for (c, ch) in sig.iter().enumerate() {
                    for (f, &x) in ch.iter().enumerate() {
                        interleaved[f * nch + c] = x;
                    }
                }
                let mut meter = Meter::new(&layout, rate).expect("meter");
                for chunk in interleaved.chunks(nch * 999) {
                    meter.process_interleaved(chunk).expect("feed");
                }
                let got = meter.report().true_peak_per_channel_dbtp;
                for (c, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "interleaved {rate} Hz, channel {c}"
                    );
                }
            }
        }
    }

    /// Every 100 ms block's power is the crate's `loudness_window(100)` to the bit, and the
    /// sample peaks are its own: 44.1, 48 and 96 kHz, 1.0 to 9.1.6 (weights 0, 1 and
    /// 1.41), fed in uneven blocks planar and interleaved, with 4 s of silence after the
    /// sound (the filter runs into the subnormal range, where the crate flushes to zero).
    /// Momentary and short-term loudness at each boundary are the crate's within 1e-9 LU
    /// above −3000 LUFS (the crate sums up to 144 000 squares in one running sum; here
    /// the means of 4 and 30 block powers).
    #[test]
    fn blocks_and_sample_peaks_are_the_crates_to_the_bit() {
        for &rate in &[44_100u32, 48_000, 96_000] {
            for &name in &["1.0", "2.0", "5.1", "7.1.4", "9.1.6"] {
                let layout = Layout::builtin(name).expect("built-in");
                let nch = layout.num_channels();
                let sound = rate as usize * 4;
                let frames = sound + rate as usize * 4;
                let mut sig = true_peak_signal(nch, frames, rate);
                for ch in &mut sig {
                    ch[sound..].fill(0.0);
                }
                let mut reference =
                    crate_meter(&layout, rate, Mode::M | Mode::S | Mode::SAMPLE_PEAK);
                let mut planar_meter = Meter::new(&layout, rate).expect("meter");
                let mut interleaved_meter = Meter::new(&layout, rate).expect("meter");
                let step = (rate as usize).div_ceil(10);
                let (mut start, mut k, mut blocks) = (0, 0, 0);
                while start < frames {
                    // Uneven blocks that stop at each 100 ms boundary, where both are read.
                    let to_boundary = step - start % step;
                    let n = [1000, 37, 4096, 1][k % 4]
                        .min(to_boundary)
                        .min(frames - start);
                    let planar: Vec<&[f32]> = sig.iter().map(|c| &c[start..start + n]).collect();
                    let interleaved: Vec<f32> = (start..start + n)
                        .flat_map(|f| sig.iter().map(move |c| c[f]))
                        .collect();
                    planar_meter.process_planar(&planar).expect("feed");
                    interleaved_meter
                        .process_interleaved(&interleaved)
                        .expect("feed");
                    reference.add_frames_planar_f32(&planar).expect("feed");
                    start += n;
                    k += 1;
                    if start % step != 0 {
                        continue;
                    }
                    blocks += 1;
                    let want = reference.loudness_window(100).expect("window");
                    for (what, meter) in [
                        ("planar", &planar_meter),
                        ("interleaved", &interleaved_meter),
                    ] {
                        let last = meter.sub_blocks[(meter.sub_block_next + SUB_BLOCKS_SHORT_TERM
                            - 1)
                            % SUB_BLOCKS_SHORT_TERM];
                        let got = if last > 0.0 {
                            power_to_lufs(last)
                        } else {
                            f64::NEG_INFINITY
                        };
                        let at = format!("{rate} Hz, {name}, {what}, block {blocks}");
                        assert_eq!(got.to_bits(), want.to_bits(), "{at}: {got} vs {want}");
                        let m = reference.loudness_momentary().expect("momentary");
                        let s = reference.loudness_shortterm().expect("short-term");
                        for (got, want) in
                            [(meter.momentary_lufs(), m), (meter.short_term_lufs(), s)]
                        {
                            // Below ≈ −3000 LUFS the powers are subnormal numbers with
                            // few bits, which a mean of blocks rounds differently.
                            assert!(
                                got == want
                                    || (got - want).abs() < 1e-9
                                    || (got < -3000.0 && want < -3000.0),
                                "{at}: {got} vs {want}"
                            );
                        }
                    }
                    if blocks == 35 {
                        assert!(want > -40.0, "{rate} Hz, {name}: the sound is metered");
                    }
                    if start == frames {
                        // The silence ran the filter into the subnormal range: the crate's
                        // last blocks are the finite powers of subnormal squares, or −∞.
                        assert!(want < -3000.0, "{rate} Hz, {name}: {want}");
                    }
                }
                for meter in [&planar_meter, &interleaved_meter] {
                    for c in 0..nch {
                        let want = reference.sample_peak(c as u32).expect("peak");
                        assert_eq!(meter.sample_peak[c].to_bits(), want.to_bits(), "{name} {c}");
                    }
                }
            }
        }
    }

    /// Integrated loudness and loudness range from the 100 ms powers equal the `ebur128`
    /// crate's own gating (its exact mode, fed the same audio) within 1e-9 LU: a 70 s
    /// programme whose level steps over 40 dB (both gates at work), at 44.1 and 48 kHz on
    /// 2.0, 5.1 (weights 0 and 1.41) and 7.1.4, fed in uneven blocks; silence, a programme
    /// shorter than one block and one below the absolute gate give −∞ and 0 as the crate.
    #[test]
    fn gating_is_the_crates() {
        for &rate in &[44_100u32, 48_000] {
            for &(name, seconds, scale) in &[
                ("2.0", 70.0, 1.0f32),
                ("5.1", 70.0, 1.0),
                ("7.1.4", 41.3, 1.0),
                ("2.0", 5.0, 0.0),
                ("2.0", 0.35, 1.0),
                ("2.0", 12.0, 1e-5),
            ] {
                let layout = Layout::builtin(name).expect("built-in");
                let nch = layout.num_channels();
                let frames = (f64::from(rate) * seconds) as usize;
                let mut sig = true_peak_signal(nch, frames, rate);
                for (c, ch) in sig.iter_mut().enumerate() {
                    for (f, x) in ch.iter_mut().enumerate() {
                        // Levels from −40 to 0 dB in 2.3 s steps, per channel offset.
                        let step = (f as f64 / f64::from(rate) / 2.3) as usize + c;
                        *x *= scale * 10f32.powf(-(((step * 7) % 41) as f32) / 20.0);
                    }
                }
                let mut reference = crate_meter(&layout, rate, Mode::I | Mode::LRA);
                let mut meter = Meter::new(&layout, rate).expect("meter");
                let mut start = 0;
                let mut k = 0;
                while start < frames {
                    let n = [1000, 37, 4096, 4410][k % 4].min(frames - start);
                    let planar: Vec<&[f32]> = sig.iter().map(|c| &c[start..start + n]).collect();
                    meter.process_planar(&planar).expect("feed");
                    reference.add_frames_planar_f32(&planar).expect("feed");
                    start += n;
                    k += 1;
                }
                let got = meter.report();
                let want_i = reference.loudness_global().expect("integrated");
                let want_lra = reference.loudness_range().expect("range");
                let what = format!("{rate} Hz, {name}, {seconds} s ×{scale}");
                if want_i.is_finite() {
                    assert!(
                        (got.integrated_lufs - want_i).abs() < 1e-9,
                        "{what}: I {} vs {want_i}",
                        got.integrated_lufs
                    );
                } else {
                    assert_eq!(got.integrated_lufs, want_i, "{what}: I");
                }
                assert!(
                    (got.range_lu - want_lra).abs() < 1e-9,
                    "{what}: LRA {} vs {want_lra}",
                    got.range_lu
                );
                if seconds > 60.0 {
                    assert!(
                        want_lra > 5.0 && want_i > -40.0,
                        "{what}: the signal exercises the gates ({want_i}, {want_lra})"
                    );
                }
            }
        }
    }

    #[test]
    fn weights_714_and_916() {
        let w = Meter::channel_weights(&Layout::builtin("7.1.4").unwrap());
        // L R C LFE Ls Rs Lrs Rrs Ltf Rtf Ltr Rtr
        assert_eq!(
            w,
            [1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        );
        let w = Meter::channel_weights(&Layout::builtin("9.1.6").unwrap());
        // L R C LFE Ls Rs Lrs Rrs Lw Rw Ltf Rtf Ltm Rtm Ltr Rtr
        assert_eq!(
            w,
            [
                1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.0, 1.0, 1.41, 1.41, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0
            ]
        );
        let w = Meter::channel_weights(&Layout::builtin("5.1").unwrap());
        assert_eq!(w, [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]);
    }

    #[test]
    fn meter_channels_carry_the_weights() {
        assert_eq!(meter_channel(0.0, 45.0), MeterChannel::Unused);
        assert_eq!(meter_channel(1.41, 110.0), MeterChannel::Mp090);
        assert_eq!(meter_channel(1.41, -60.0), MeterChannel::Mm090);
        assert_eq!(meter_channel(1.0, 135.0), MeterChannel::Left);
        assert_eq!(meter_channel(1.0, -135.0), MeterChannel::Right);
        assert_eq!(meter_channel(1.0, 0.0), MeterChannel::Center);
    }

    #[test]
    fn targets() {
        let e = Target::preset("tidal").unwrap_err().to_string();
        assert!(
            e.contains("tidal") && e.contains("spotify") && e.contains("atsc-a85"),
            "{e}"
        );
        let mut r = LoudnessReport {
            integrated_lufs: -14.4,
            range_lu: 5.0,
            true_peak_dbtp: -1.2,
            sample_peak_dbfs: -1.5,
            max_momentary_lufs: -8.0,
            max_short_term_lufs: -10.0,
            true_peak_per_channel_dbtp: vec![-1.2, -1.3],
        };
        assert!(Target::preset("spotify").unwrap().check(&r).is_empty());
        assert_eq!(Target::preset("apple-music").unwrap().check(&r).len(), 1);
        let atmos = Target::preset("atmos-music").unwrap();
        assert_eq!(atmos.check(&r).len(), 1);
        r.integrated_lufs = -18.5;
        assert!(atmos.check(&r).is_empty());
        r.true_peak_dbtp = -0.5;
        let m = atmos.check(&r);
        assert!(m.len() == 1 && m[0].contains("true peak -0.5"), "{m:?}");
        r.integrated_lufs = f64::NEG_INFINITY;
        let m = Target::preset("ebu-r128").unwrap().check(&r);
        assert!(m[0].contains("-inf"), "{m:?}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"integrated_lufs\":null"), "{json}");
    }
}
