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
