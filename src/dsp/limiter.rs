//! Look-ahead true-peak limiter.

use super::*;

// ---------------------------------------------------------------------------------------
// Limiter

/// Range of [`LimiterSettings::ceiling_dbtp`].
pub const CEILING_DBTP: Range = Range {
    name: "ceiling_dbtp",
    lo: -20.0,
    hi: 0.0,
    unit: " dBTP",
};
/// Range of [`LimiterSettings::lookahead_ms`] (it is also the limiter's latency).
pub const LOOKAHEAD_MS: Range = Range {
    name: "lookahead_ms",
    lo: 1.0,
    hi: 20.0,
    unit: " ms",
};
/// Default ceiling, dBTP.
pub const DEFAULT_CEILING_DBTP: f64 = -1.0;
/// Default look-ahead, ms.
pub const DEFAULT_LOOKAHEAD_MS: f64 = 1.5;
/// Default release time constant, ms.
pub const DEFAULT_LIMITER_RELEASE_MS: f64 = 50.0;

fn default_ceiling_dbtp() -> f64 {
    DEFAULT_CEILING_DBTP
}
fn default_lookahead_ms() -> f64 {
    DEFAULT_LOOKAHEAD_MS
}
fn default_release_ms() -> f64 {
    DEFAULT_LIMITER_RELEASE_MS
}

/// Settings of [`Limiter`] (`Limiter(ceiling_dbtp: -1)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterSettings {
    /// Ceiling, [`CEILING_DBTP`]; default [`DEFAULT_CEILING_DBTP`].
    #[serde(default = "default_ceiling_dbtp")]
    pub ceiling_dbtp: f64,
    /// Look-ahead, [`LOOKAHEAD_MS`]; default [`DEFAULT_LOOKAHEAD_MS`].
    #[serde(default = "default_lookahead_ms")]
    pub lookahead_ms: f64,
    /// Release time constant, [`RELEASE_MS`]; default [`DEFAULT_LIMITER_RELEASE_MS`].
    #[serde(default = "default_release_ms")]
    pub release_ms: f64,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        LimiterSettings {
            ceiling_dbtp: DEFAULT_CEILING_DBTP,
            lookahead_ms: DEFAULT_LOOKAHEAD_MS,
            release_ms: DEFAULT_LIMITER_RELEASE_MS,
        }
    }
}

impl LimiterSettings {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), DspError> {
        const P: &str = "limiter";
        CEILING_DBTP.check(P, self.ceiling_dbtp)?;
        LOOKAHEAD_MS.check(P, self.lookahead_ms)?;
        RELEASE_MS.check(P, self.release_ms)?;
        Ok(())
    }
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
    /// The CPU has AVX: the detector runs in its AVX build (the same arithmetic).
    avx: bool,
}

/// Frames whose detector peaks are computed together, in stack buffers (any block size
/// is taken in chunks of this many).
const PEAK_CHUNK: usize = 64;

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
        params: &LimiterSettings,
        sample_rate: u32,
        channels: usize,
    ) -> Result<Limiter, DspError> {
        const P: &str = "limiter";
        let fs = check_sample_rate(P, sample_rate)?;
        check_channels(P, channels)?;
        params.validate()?;
        let LimiterSettings {
            ceiling_dbtp,
            lookahead_ms,
            release_ms,
        } = *params;
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
            avx: has_avx(),
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
        let mut start = 0;
        while start < n {
            let len = PEAK_CHUNK.min(n - start);
            // 1. the detector: the true peak of frames i − 6 for the chunk's frames i, the
            //    largest over the channels (from each channel's last 11 samples and the
            //    chunk's, before any is replaced by output)
            let mut peaks = [0f32; PEAK_CHUNK];
            let mut line = [0f32; TP_TAPS - 1 + PEAK_CHUNK];
            for (ch, hist) in channels
                .iter()
                .zip(self.history.chunks_exact(2 * m))
                .take(nch)
            {
                line[..TP_TAPS - 1]
                    .copy_from_slice(&hist[self.pos + m + 1 - TP_TAPS..self.pos + m]);
                line[TP_TAPS - 1..TP_TAPS - 1 + len].copy_from_slice(&ch[start..start + len]);
                raise_peaks(
                    &line[..TP_TAPS - 1 + len],
                    &self.kernel,
                    &mut peaks[..len],
                    self.avx,
                );
            }
            // 2. required gain, release, hold, smoothing, frame by frame
            let mut gains = [0f32; PEAK_CHUNK];
            for (g, &peak) in gains.iter_mut().zip(&peaks[..len]) {
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
                *g = self.box2.push(self.box1.push(held)) as f32;
                self.frame += 1;
            }
            // 3. channel by channel: each frame into the delay line, the delayed frame out
            //    at its gain. Frame by frame, frame `k` writes ring slot `pos + k` and then
            //    reads slot `pos + k + 1`, written `m − 1` frames before; so in runs of at
            //    most `m − 1` frames no read sees the same run's writes, and a run reads all
            //    its delayed frames first (one slice: the mirror makes it contiguous) and
            //    then writes its frames, in two slices at most. The same values.
            for (ch, hist) in channels
                .iter_mut()
                .zip(self.history.chunks_exact_mut(2 * m))
                .take(nch)
            {
                let mut pos = self.pos;
                for (ys, gs) in ch[start..start + len]
                    .chunks_mut(m - 1)
                    .zip(gains[..len].chunks(m - 1))
                {
                    let run = ys.len();
                    let mut xs = [0f32; PEAK_CHUNK];
                    xs[..run].copy_from_slice(ys);
                    for ((y, &h), &g) in ys.iter_mut().zip(&hist[pos + 1..pos + 1 + run]).zip(gs) {
                        *y = h * g;
                    }
                    let first = run.min(m - pos);
                    hist[pos..pos + first].copy_from_slice(&xs[..first]);
                    hist[pos + m..pos + m + first].copy_from_slice(&xs[..first]);
                    let rest = &xs[first..run];
                    hist[..rest.len()].copy_from_slice(rest);
                    hist[m..m + rest.len()].copy_from_slice(rest);
                    pos += run;
                    if pos >= m {
                        pos -= m;
                    }
                }
            }
            self.pos = (self.pos + len) % m;
            start += len;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{Delay, TP_TAPS, XorShift64Star, true_peak_kernel};

    #[test]
    fn sliding_minimum_matches_naive_window_minimum() {
        let mut lim = Limiter::new(
            &LimiterSettings {
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

    /// The limiter as first written: one frame at a time, the detector one window at a
    /// time ([`interp_peak`]), every channel per frame. The reference for `process`.
    fn process_frame_by_frame(lim: &mut Limiter, channels: &mut [Vec<f32>]) {
        let m = lim.ring;
        for i in 0..channels[0].len() {
            let mut peak = 0f32;
            for (ch, hist) in channels.iter().zip(lim.history.chunks_exact_mut(2 * m)) {
                let x = ch[i];
                hist[lim.pos] = x;
                hist[lim.pos + m] = x;
                let recent = &hist[lim.pos + 1 + m - TP_TAPS..lim.pos + 1 + m];
                let p = interp_peak(recent, &lim.kernel).max(recent[TP_TAPS / 2 - 1].abs());
                peak = peak.max(p);
            }
            let peak = f64::from(peak);
            let required = if peak > lim.ceiling {
                lim.ceiling / peak
            } else {
                1.0
            };
            lim.released = if required < lim.released {
                required
            } else {
                required + (lim.released - required) * lim.alpha_release
            };
            let held = lim.sliding_min(lim.released);
            let g = lim.box2.push(lim.box1.push(held)) as f32;
            lim.frame += 1;
            for (ch, hist) in channels.iter_mut().zip(lim.history.chunks_exact(2 * m)) {
                ch[i] = hist[lim.pos + 1] * g;
            }
            lim.pos = (lim.pos + 1) % m;
        }
    }

    /// Bit for bit, at any block size, with delay lines shorter than a detector chunk
    /// (12 frames at 8 kHz), just longer (72 at 48 kHz) and much longer (20 ms at 96 kHz).
    #[test]
    fn chunked_process_equals_frame_by_frame_reference() {
        for (rate, lookahead_ms) in [(48_000, 1.5), (8_000, 1.0), (11_025, 6.0), (96_000, 20.0)] {
            chunked_process_equals_frame_by_frame_at(rate, lookahead_ms);
        }
    }

    fn chunked_process_equals_frame_by_frame_at(rate: u32, lookahead_ms: f64) {
        let settings = LimiterSettings {
            ceiling_dbtp: -1.0,
            lookahead_ms,
            release_ms: 30.0,
        };
        let mut rng = XorShift64Star::new(11);
        // Three channels of loud, bursty noise: the limiter works on most frames.
        let input: Vec<Vec<f32>> = (0..3)
            .map(|c| {
                (0..9000)
                    .map(|i| {
                        let burst = if (i / 700 + c) % 3 == 0 { 4.0 } else { 0.3 };
                        ((rng.next_f64() * 2.0 - 1.0) * burst) as f32
                    })
                    .collect()
            })
            .collect();
        let mut want = input.clone();
        let mut reference = Limiter::new(&settings, rate, 3).unwrap();
        process_frame_by_frame(&mut reference, &mut want);
        assert!(want[0].iter().any(|&y| y != 0.0));
        for block in [1, 7, 12, 13, 64, 65, 1000, 9000] {
            let mut lim = Limiter::new(&settings, rate, 3).unwrap();
            let mut got = input.clone();
            let mut start = 0;
            while start < 9000 {
                let end = (start + block).min(9000);
                let mut refs: Vec<&mut [f32]> =
                    got.iter_mut().map(|c| &mut c[start..end]).collect();
                lim.process(&mut refs);
                start = end;
            }
            for (c, (g, w)) in got.iter().zip(&want).enumerate() {
                let first = g
                    .iter()
                    .zip(w)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(
                    first, None,
                    "{rate} Hz, {lookahead_ms} ms, block {block}, channel {c}: first differing frame"
                );
            }
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
