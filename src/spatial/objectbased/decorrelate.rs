//! The ITU-R BS.2127 §7.4 decorrelation filters for the diffuse part of objects: one
//! 512-tap random-phase all-pass FIR per layout channel (seeded by the channel's rank in
//! the sorted BS.2051 names, phases from MT19937), and a uniformly partitioned FFT
//! convolver that applies them to a diffuse bus without allocating.

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Length of each decorrelation filter (BS.2127's default).
pub const FILTER_TAPS: usize = 512;
/// The filters' nominal delay: the direct sound is delayed this much to line up with it.
pub const FILTER_DELAY_FRAMES: usize = (FILTER_TAPS - 1) / 2;
/// Convolution block (frames): the convolver's own latency.
pub const BLOCK_FRAMES: usize = 256;
/// Total latency of the diffuse path, and so the delay the direct path gets.
pub const LATENCY_FRAMES: usize = FILTER_DELAY_FRAMES + BLOCK_FRAMES;

const PARTITIONS: usize = FILTER_TAPS / BLOCK_FRAMES;
const FFT_LEN: usize = 2 * BLOCK_FRAMES;
const BINS: usize = FFT_LEN / 2 + 1;

/// The 32-bit Mersenne Twister (MT19937), as seeded by `init_genrand`.
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }
}

/// The decorrelation filter with seed `id`: unit magnitude at every frequency, phase 0
/// at DC and Nyquist and uniformly random (2π × MT19937 / 2³²) in between, back to the
/// time domain by an inverse real DFT.
pub fn filter(id: u32) -> Vec<f64> {
    let n = FILTER_TAPS;
    let mut rng = Mt19937::new(id);
    let phases: Vec<f64> = (0..n / 2 - 1)
        .map(|_| 2.0 * std::f64::consts::PI * f64::from(rng.next_u32()) / 4_294_967_296.0)
        .collect();
    (0..n)
        .map(|t| {
            let nyquist = if t % 2 == 0 { 1.0 } else { -1.0 };
            let sum: f64 = phases
                .iter()
                .enumerate()
                .map(|(k, &ph)| {
                    let w = 2.0 * std::f64::consts::PI * ((k + 1) * t % n) as f64 / n as f64;
                    (ph + w).cos()
                })
                .sum();
            (1.0 + nyquist + 2.0 * sum) / n as f64
        })
        .collect()
}

/// The filters of a layout's channels: channel `c` (named `names[c]`) gets the seed of
/// its rank among the sorted names.
pub fn layout_filters(names: &[String]) -> Vec<Vec<f64>> {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    names
        .iter()
        .map(|n| filter(sorted.iter().position(|s| *s == n).unwrap_or(0) as u32))
        .collect()
}

/// One channel's convolver state.
struct ChannelState {
    /// Filter partitions' spectra (scaled by 1/FFT_LEN).
    spectra: Vec<Vec<Complex<f32>>>,
    /// The last two input blocks (time domain), oldest first.
    window: Vec<f32>,
    /// Spectra of the last PARTITIONS input windows, newest at `head`.
    history: Vec<Vec<Complex<f32>>>,
    head: usize,
    /// The output block being read out.
    out: Vec<f32>,
}

/// Convolves each channel of a diffuse bus with its decorrelation filter; the output is
/// the filtered input `LATENCY_FRAMES − FILTER_DELAY_FRAMES` frames late.
pub struct Decorrelator {
    channels: Vec<ChannelState>,
    pos: usize,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    time: Vec<f32>,
    freq: Vec<Complex<f32>>,
    acc: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl std::fmt::Debug for Decorrelator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decorrelator")
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl Decorrelator {
    /// A convolver for these filters (one per channel).
    pub fn new(filters: &[Vec<f64>]) -> Decorrelator {
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(FFT_LEN);
        let inverse = planner.plan_fft_inverse(FFT_LEN);
        let scratch_len = forward
            .get_scratch_len()
            .max(inverse.get_scratch_len())
            .max(1);
        let mut scratch = vec![Complex::default(); scratch_len];
        let channels = filters
            .iter()
            .map(|h| {
                let spectra = (0..PARTITIONS)
                    .map(|p| {
                        let mut time = vec![0.0f32; FFT_LEN];
                        for (k, t) in time.iter_mut().take(BLOCK_FRAMES).enumerate() {
                            let v = h.get(p * BLOCK_FRAMES + k).copied().unwrap_or(0.0);
                            *t = (v / FFT_LEN as f64) as f32;
                        }
                        let mut spec = vec![Complex::default(); BINS];
                        // Lengths match the plan: cannot fail.
                        let _ = forward.process_with_scratch(&mut time, &mut spec, &mut scratch);
                        spec
                    })
                    .collect();
                ChannelState {
                    spectra,
                    window: vec![0.0; FFT_LEN],
                    history: vec![vec![Complex::default(); BINS]; PARTITIONS],
                    head: 0,
                    out: vec![0.0; BLOCK_FRAMES],
                }
            })
            .collect();
        Decorrelator {
            channels,
            pos: 0,
            forward,
            inverse,
            time: vec![0.0; FFT_LEN],
            freq: vec![Complex::default(); BINS],
            acc: vec![Complex::default(); BINS],
            scratch,
        }
    }

    /// Clears the filters' state (silence in, silence out).
    pub fn reset(&mut self) {
        for ch in &mut self.channels {
            ch.window.fill(0.0);
            ch.out.fill(0.0);
            for h in &mut ch.history {
                h.fill(Complex::default());
            }
        }
        self.pos = 0;
    }

    /// Replaces each channel's samples (`io[c]`, all of the same length) by its
    /// convolution with channel `c`'s filter, `BLOCK_FRAMES` late.
    pub fn process(&mut self, io: &mut [&mut [f32]]) {
        let frames = io.first().map_or(0, |c| c.len());
        let mut done = 0;
        while done < frames {
            let run = (BLOCK_FRAMES - self.pos).min(frames - done);
            for (ch, x) in self.channels.iter_mut().zip(io.iter_mut()) {
                let slot = &mut ch.window[BLOCK_FRAMES + self.pos..BLOCK_FRAMES + self.pos + run];
                slot.copy_from_slice(&x[done..done + run]);
                x[done..done + run].copy_from_slice(&ch.out[self.pos..self.pos + run]);
            }
            self.pos += run;
            done += run;
            if self.pos == BLOCK_FRAMES {
                self.pos = 0;
                self.block();
            }
        }
    }

    fn block(&mut self) {
        for ch in &mut self.channels {
            self.time.copy_from_slice(&ch.window);
            ch.window.copy_within(BLOCK_FRAMES.., 0);
            ch.head = (ch.head + 1) % PARTITIONS;
            let _ = self.forward.process_with_scratch(
                &mut self.time,
                &mut ch.history[ch.head],
                &mut self.scratch,
            );
            self.acc.fill(Complex::default());
            for p in 0..PARTITIONS {
                let x = &ch.history[(ch.head + PARTITIONS - p) % PARTITIONS];
                for ((a, &xv), &hv) in self.acc.iter_mut().zip(x).zip(&ch.spectra[p]) {
                    *a += xv * hv;
                }
            }
            self.freq.copy_from_slice(&self.acc);
            // The DC and Nyquist bins of a real signal's spectrum are real.
            self.freq[0].im = 0.0;
            self.freq[BINS - 1].im = 0.0;
            let _ = self.inverse.process_with_scratch(
                &mut self.freq,
                &mut self.time,
                &mut self.scratch,
            );
            ch.out.copy_from_slice(&self.time[BLOCK_FRAMES..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // init_genrand(5489): the first outputs of the reference implementation.
        let mut r = Mt19937::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        assert_eq!(r.next_u32(), 581_869_302);
        assert_eq!(r.next_u32(), 3_890_346_734);
    }

    #[test]
    fn filters_match_ear() {
        // EAR 2.1.0 `design_decorrelator_basic(id)`, taps 0, 1, 2, 255, 511.
        let ear = [
            (
                0,
                [
                    -0.069648564156,
                    0.009239802554,
                    -0.044409070199,
                    -0.030853132706,
                    -0.000689984357,
                ],
            ),
            (
                5,
                [
                    0.072006408995,
                    0.017561482477,
                    -0.003808922083,
                    0.031986393225,
                    0.007064073698,
                ],
            ),
        ];
        for (id, taps) in ear {
            let h = filter(id);
            for (&t, want) in [0usize, 1, 2, 255, 511].iter().zip(taps) {
                assert!((h[t] - want).abs() < 1e-9, "filter {id} tap {t}: {}", h[t]);
            }
        }
    }

    #[test]
    fn filters_are_all_pass() {
        let h = filter(3);
        let energy: f64 = h.iter().map(|v| v * v).sum();
        assert!((energy - 1.0).abs() < 1e-9, "{energy}");
    }

    #[test]
    fn convolver_equals_direct_convolution() {
        let filters = vec![filter(0), filter(1)];
        let mut d = Decorrelator::new(&filters);
        let n = 2000;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let mut a = x.clone();
        let mut b: Vec<f32> = x.iter().map(|v| -v).collect();
        // Odd block sizes: the result must not depend on them.
        let mut done = 0;
        for step in [1usize, 63, 300, 17, 1000, 619] {
            let (ea, eb) = (done + step, done + step);
            let (sa, sb) = (&mut a[done..ea], &mut b[done..eb]);
            d.process(&mut [sa, sb]);
            done += step;
        }
        for (c, (out, sign)) in [(&a, 1.0f64), (&b, -1.0)].into_iter().enumerate() {
            for t in [BLOCK_FRAMES, 300, 777, 1999] {
                let m = t - BLOCK_FRAMES;
                let want: f64 = (0..=m.min(FILTER_TAPS - 1))
                    .map(|k| filters[c][k] * sign * f64::from(x[m - k]))
                    .sum();
                assert!((f64::from(out[t]) - want).abs() < 1e-4, "{c} {t}");
            }
        }
    }
}
