//! True-peak detection.

use super::*;

// ---------------------------------------------------------------------------------------
// True-peak detection (ITU-R BS.1770-4 Annex 2 style)

/// Taps per polyphase branch of the 4× interpolator (48 taps in all, as in BS.1770-4).
pub(super) const TP_TAPS: usize = 12;
/// Oversampling factor.
pub(super) const TP_FACTOR: usize = 4;

/// Polyphase interpolator laid out tap-major with 4 lanes (the 3 in-between points and a
/// zero pad), so the three dot products run as one 4-wide multiply-add per tap.
pub(super) type Kernel = [[f32; TP_FACTOR]; TP_TAPS];

/// Polyphase branches for the three in-between points (phase 0 is the sample itself).
/// Kernel: sinc(τ)·Hann(τ / 6 samples), a 48-tap 4× interpolator (BS.1770-4 size). This is
/// the same textbook design the `ebur128` crate's meter uses, so the limiter's detector and
/// that meter agree; it reads sines near fs/8 up to ~0.65 dB high (conservative for a
/// limiter). Row `idx` holds the weights of sample `k − 5 + idx`; lane `p` (0..3) gives the
/// value at `k + (p+1)/4`. Hand-written: no crate offers a streaming per-sample 4×
/// true-peak interpolator usable inside a limiter's look-ahead loop.
pub(super) fn true_peak_kernel() -> Kernel {
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
pub(super) fn interp_peak(window: &[f32], kernel: &Kernel) -> f32 {
    let mut acc = [0f32; TP_FACTOR];
    for (tap, x) in kernel.iter().zip(window) {
        for (a, c) in acc.iter_mut().zip(tap) {
            *a += c * x;
        }
    }
    acc.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// The limiter's detector over a stretch: for every 12-sample window of `line` (window
/// `f` is `line[f .. f + 12]`, so `peaks` has `line.len() − 11` values), raises
/// `peaks[f]` to the larger of [`interp_peak`] of the window and the |sample| 6 before its
/// end. `avx`: eight windows at a time in AVX registers ([`raise_peaks_avx`]), the same
/// values.
pub(super) fn raise_peaks(line: &[f32], kernel: &Kernel, peaks: &mut [f32], avx: bool) {
    assert_eq!(line.len() + 1, peaks.len() + TP_TAPS, "one window per peak");
    let mut whole = 0;
    #[cfg(target_arch = "x86_64")]
    if avx {
        // SAFETY: callers pass `avx` only when the CPU reported AVX.
        whole = unsafe { raise_peaks_avx(line, kernel, peaks) };
    }
    let _ = avx;
    for (f, o) in peaks.iter_mut().enumerate().skip(whole) {
        let window = &line[f..f + TP_TAPS];
        *o = o.max(interp_peak(window, kernel).max(window[TP_TAPS / 2 - 1].abs()));
    }
}

/// [`raise_peaks`] for the first multiple of eight windows, eight at a time: each tap's
/// eight samples are loaded once and multiplied into every phase's sum, tap by tap from
/// the oldest sample, one multiply and one add each (as [`interp_peak`]: the same f32
/// operations in the same order, so the same values; the zero pad lane, which cannot
/// raise a maximum, is skipped). Eight independent sums per phase instead of one chain of
/// 12 dependent adds per window. Returns how many windows it did.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn raise_peaks_avx(line: &[f32], kernel: &Kernel, peaks: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    const LANES: usize = 8;
    const PHASES: usize = TP_FACTOR - 1;
    let whole = peaks.len() / LANES * LANES;
    // Window f + j, tap t reads sample f + j + t: at most `whole + TP_TAPS − 2`, inside.
    assert!(whole == 0 || whole + TP_TAPS - 1 <= line.len());
    let mut taps = [[_mm256_setzero_ps(); PHASES]; TP_TAPS];
    for (row, tap) in taps.iter_mut().zip(kernel) {
        for (c, &k) in row.iter_mut().zip(tap) {
            *c = _mm256_set1_ps(k);
        }
    }
    let sign = _mm256_set1_ps(-0.0);
    let base = line.as_ptr();
    for f in (0..whole).step_by(LANES) {
        let mut acc = [_mm256_setzero_ps(); PHASES];
        for (t, row) in taps.iter().enumerate() {
            // SAFETY: eight samples from f + t end at most at `whole + TP_TAPS − 2`.
            let x = unsafe { _mm256_loadu_ps(base.add(f + t)) };
            for (a, &c) in acc.iter_mut().zip(row) {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(c, x));
            }
        }
        // SAFETY: as above (the middle sample of each window).
        let mid = unsafe { _mm256_loadu_ps(base.add(f + TP_TAPS / 2 - 1)) };
        let mut p = _mm256_setzero_ps();
        for a in acc {
            // `max(p, |a|)`: when |a| is NaN, p is kept, as `f32::max` keeps the number.
            p = _mm256_max_ps(_mm256_andnot_ps(sign, a), p);
        }
        p = _mm256_max_ps(_mm256_andnot_ps(sign, mid), p);
        // SAFETY: `peaks[f..f + 8]` is inside (f + 8 ≤ whole).
        let out = unsafe { peaks.as_mut_ptr().add(f) };
        let old = unsafe { _mm256_loadu_ps(out) };
        unsafe { _mm256_storeu_ps(out, _mm256_max_ps(p, old)) };
    }
    whole
}

/// Measures the true peak of planar audio by 4× oversampling (BS.1770-4 Annex 2 style:
/// a 48-tap windowed-sinc polyphase interpolator). The in-between points after the last
/// 6 samples are evaluated once more samples arrive (as in meters that stream).
/// Test support (the `internals` feature): the limiter runs the same kernel inline.
#[cfg(feature = "internals")]
#[derive(Debug, Clone)]
pub struct TruePeakDetector {
    kernel: Kernel,
    /// Per channel: last `TP_TAPS` samples, doubled ring (2 × TP_TAPS).
    history: Vec<f32>,
    pos: usize,
    peaks: Vec<f32>,
}

#[cfg(feature = "internals")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{XorShift64Star, has_avx};

    /// `raise_peaks` (both builds) against its definition, window by window: every stretch
    /// length up to 41 windows, peaks already above and below, ±full scale, silence,
    /// infinities and NaN.
    #[test]
    fn raise_peaks_equals_interp_peak_per_window() {
        let kernel = true_peak_kernel();
        let mut rng = XorShift64Star::new(7);
        for windows in 0..=41 {
            for case in 0..6 {
                let mut line: Vec<f32> = (0..windows + TP_TAPS - 1)
                    .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
                    .collect();
                let n = line.len();
                match case {
                    1 => line.iter_mut().step_by(3).for_each(|x| *x = x.signum()),
                    2 => line.fill(0.0),
                    3 => line[n / 2] = f32::INFINITY,
                    4 => line[n / 3] = f32::NAN,
                    _ => {}
                }
                let before: Vec<f32> = (0..windows)
                    .map(|_| {
                        if case == 5 {
                            3.0
                        } else {
                            (rng.next_f64() * 0.5) as f32
                        }
                    })
                    .collect();
                let want: Vec<f32> = before
                    .iter()
                    .enumerate()
                    .map(|(f, &b)| {
                        let w = &line[f..f + TP_TAPS];
                        b.max(interp_peak(w, &kernel).max(w[TP_TAPS / 2 - 1].abs()))
                    })
                    .collect();
                for avx in [false, has_avx()] {
                    let mut got = before.clone();
                    raise_peaks(&line, &kernel, &mut got, avx);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(
                        same,
                        "{windows} windows, case {case}, avx {avx}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }
}
