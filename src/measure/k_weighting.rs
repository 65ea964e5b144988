//! BS.1770-4 K-weighting (the pre-filter's high shelf and the RLB high-pass, as one
//! fourth-order filter in f64) and each channel's sum of squared output, the mean square
//! of BS.1770-4 §2.4 before its division by the block length.
//!
//! # Why not the `ebur128` crate's filter
//!
//! The crate filters one channel at a time. Each output sample waits for the previous one
//! (a chain of four dependent multiply-subtracts), so a channel costs the chain's latency
//! per sample, ≈ 20 cycles: 5 % of a whole render, 8 % of its busier thread. Here four
//! channels run side by side, each lane in the crate's arithmetic in the crate's order
//! (same coefficients, same `f64` operations, the same flush of subnormal results to zero
//! while filtering), so the four chains overlap and every filtered sample, and every
//! sum of squares, is the crate's to the bit (tests below and in `loudness`).

/// Channels filtered side by side.
const LANES: usize = 4;
/// Frames filtered before their squares are summed (a stack tile of `LANES` × this).
const TILE_FRAMES: usize = 256;

/// The K-weighting filter's coefficients at `sample_rate_hz`: numerator `b` and
/// denominator `a` (`a[0]` = 1) of the high shelf (+4 dB above ≈ 1.7 kHz) cascaded with
/// the RLB high-pass (≈ 38 Hz), each bilinear-transformed with its corner prewarped. The
/// analogue constants are libebur128's fit of BS.1770-4's 48 kHz tables, which any rate
/// reproduces; the arithmetic is the `ebur128` crate's, so the same bits.
#[allow(non_snake_case)]
fn coefficients(sample_rate_hz: f64) -> ([f64; 5], [f64; 5]) {
    let (shelf_hz, shelf_db, shelf_q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
    let (rlb_hz, rlb_q) = (38.13547087602444, 0.5003270373238773);

    let K = (std::f64::consts::PI * shelf_hz / sample_rate_hz).tan();
    let Vh = 10f64.powf(shelf_db / 20.0);
    let Vb = Vh.powf(0.4996667741545416);
    let norm = 1.0 + K / shelf_q + K * K;
    let shelf_b = [
        (Vh + Vb * K / shelf_q + K * K) / norm,
        2.0 * (K * K - Vh) / norm,
        (Vh - Vb * K / shelf_q + K * K) / norm,
    ];
    let shelf_a = [
        1.0,
        2.0 * (K * K - 1.0) / norm,
        (1.0 - K / shelf_q + K * K) / norm,
    ];

    let K = (std::f64::consts::PI * rlb_hz / sample_rate_hz).tan();
    let rlb_b = [1.0, -2.0, 1.0];
    let rlb_a = [
        1.0,
        2.0 * (K * K - 1.0) / (1.0 + K / rlb_q + K * K),
        (1.0 - K / rlb_q + K * K) / (1.0 + K / rlb_q + K * K),
    ];

    // The product of the two second-order polynomials, term by term from the lowest
    // power of z⁻¹, each coefficient summed in the same order for both.
    let product = |p: [f64; 3], r: [f64; 3]| {
        [
            p[0] * r[0],
            p[0] * r[1] + p[1] * r[0],
            p[0] * r[2] + p[1] * r[1] + p[2] * r[0],
            p[1] * r[2] + p[2] * r[1],
            p[2] * r[2],
        ]
    };
    (product(shelf_b, rlb_b), product(shelf_a, rlb_a))
}

/// Four channels' filter state: `w[k][lane]` is the filter's internal signal `k + 1`
/// samples ago (direct form II), `sum[lane]` the squares summed since the last
/// [`KWeighting::take_sum`].
#[derive(Debug, Clone, Copy, Default)]
struct Lanes {
    w: [[f64; LANES]; 4],
    sum: [f64; LANES],
}

/// The K-weighting of every channel of a layout and its running sums of squares.
#[derive(Debug, Clone)]
pub(crate) struct KWeighting {
    b: [f64; 5],
    a: [f64; 5],
    channels: usize,
    /// Whether the CPU has AVX (the filter's AVX build: the same operations per lane).
    avx: bool,
    /// Channel `c` is lane `c % LANES` of group `c / LANES`.
    groups: Vec<Lanes>,
}

impl KWeighting {
    pub(crate) fn new(sample_rate_hz: u32, channels: usize) -> KWeighting {
        let (b, a) = coefficients(f64::from(sample_rate_hz));
        KWeighting {
            b,
            a,
            channels,
            avx: crate::dsp::has_avx(),
            groups: vec![Lanes::default(); channels.div_ceil(LANES)],
        }
    }

    /// Filters the next `frames` samples of every channel and adds their squares to the
    /// channels' sums. `fill(c, start, dst)` copies channel `c`'s samples `start..` into
    /// `dst` (at most [`TILE_FRAMES`] of them).
    #[inline]
    pub(crate) fn process(&mut self, frames: usize, fill: impl Fn(usize, usize, &mut [f32])) {
        let mut x = [[0.0f32; TILE_FRAMES]; LANES];
        let mut y = [[0.0f64; LANES]; TILE_FRAMES];
        for g in 0..self.groups.len() {
            let lanes = (self.channels - g * LANES).min(LANES);
            let mut start = 0;
            while start < frames {
                let n = TILE_FRAMES.min(frames - start);
                for (l, x) in x[..lanes].iter_mut().enumerate() {
                    fill(g * LANES + l, start, &mut x[..n]);
                }
                let state = &mut self.groups[g];
                {
                    let _ftz = FlushToZero::new();
                    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
                    if self.avx {
                        // SAFETY: `avx` is only true when the CPU reported AVX.
                        unsafe { filter_tile_avx(&self.b, &self.a, &mut state.w, &x, &mut y, n) };
                    } else {
                        filter_tile(&self.b, &self.a, &mut state.w, &x, &mut y, n);
                    }
                    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
                    filter_tile(&self.b, &self.a, &mut state.w, &x, &mut y, n);
                }
                // The squares are summed outside the flush-to-zero mode, as the crate
                // sums them (a subnormal square counts); the lanes' sums side by side.
                let mut sum = state.sum;
                for y in &y[..n] {
                    for (sum, &v) in sum.iter_mut().zip(y) {
                        *sum += v * v;
                    }
                }
                state.sum = sum;
                start += n;
            }
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        for g in &mut self.groups {
            // Without a flush-to-zero mode, subnormal state is cleared after each call,
            // as the crate does there.
            for v in g.w.iter_mut().flatten() {
                if v.abs() < f64::MIN_POSITIVE {
                    *v = 0.0;
                }
            }
        }
    }

    /// Channel `c`'s sum of squares since the last call, which starts the next sums at 0.
    pub(crate) fn take_sum(&mut self, c: usize) -> f64 {
        std::mem::take(&mut self.groups[c / LANES].sum[c % LANES])
    }

    /// As after `new`.
    pub(crate) fn reset(&mut self) {
        self.groups.fill(Lanes::default());
    }
}

/// `n` frames of four lanes through the filter: per lane and frame the crate's
/// `w = x − a₁w₁ − a₂w₂ − a₃w₃ − a₄w₄`, `y = b₀w + b₁w₁ + b₂w₂ + b₃w₃ + b₄w₄`, left to
/// right. The lanes are independent, so their four dependency chains overlap (and the
/// compiler may put them in one register: lane-wise, the same operations). Not inlined,
/// so that none of its arithmetic can be moved out of the flush-to-zero mode around it.
#[inline(never)]
fn filter_tile(
    b: &[f64; 5],
    a: &[f64; 5],
    w: &mut [[f64; LANES]; 4],
    x: &[[f32; TILE_FRAMES]; LANES],
    y: &mut [[f64; LANES]; TILE_FRAMES],
    n: usize,
) {
    filter_lanes(b, a, w, x, y, n);
}

/// [`filter_tile`] compiled for AVX: the four lanes in one register, the same operations.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx")]
#[inline(never)]
fn filter_tile_avx(
    b: &[f64; 5],
    a: &[f64; 5],
    w: &mut [[f64; LANES]; 4],
    x: &[[f32; TILE_FRAMES]; LANES],
    y: &mut [[f64; LANES]; TILE_FRAMES],
    n: usize,
) {
    filter_lanes(b, a, w, x, y, n);
}

#[inline(always)]
fn filter_lanes(
    b: &[f64; 5],
    a: &[f64; 5],
    w: &mut [[f64; LANES]; 4],
    x: &[[f32; TILE_FRAMES]; LANES],
    y: &mut [[f64; LANES]; TILE_FRAMES],
    n: usize,
) {
    let [mut w1, mut w2, mut w3, mut w4] = *w;
    for i in 0..n.min(TILE_FRAMES) {
        let mut out = [0.0f64; LANES];
        for l in 0..LANES {
            let w0 = f64::from(x[l][i]) - a[1] * w1[l] - a[2] * w2[l] - a[3] * w3[l] - a[4] * w4[l];
            out[l] = b[0] * w0 + b[1] * w1[l] + b[2] * w2[l] + b[3] * w3[l] + b[4] * w4[l];
            w4[l] = w3[l];
            w3[l] = w2[l];
            w2[l] = w1[l];
            w1[l] = w0;
        }
        y[i] = out;
    }
    *w = [w1, w2, w3, w4];
}

/// The CPU's flush-to-zero mode while it lives (subnormal results of f64 arithmetic
/// become 0, as in the crate's filter, which also keeps silence after sound from
/// running on the slow subnormal path); the mode before is restored on drop. Set through
/// the SSE control register (MXCSR), by inline assembly as the standard library advises.
struct FlushToZero {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    saved: u32,
}

/// MXCSR's flush-to-zero bit.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
const MXCSR_FLUSH_TO_ZERO: u32 = 0x8000;

impl FlushToZero {
    #[inline(always)]
    fn new() -> FlushToZero {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            let mut saved = 0u32;
            let on;
            // SAFETY: stores MXCSR to a local and loads it back with the flush-to-zero bit
            // set; that bit changes only the results of this thread's floating-point
            // arithmetic, and the drop restores the register.
            unsafe {
                std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack, preserves_flags));
                on = saved | MXCSR_FLUSH_TO_ZERO;
                std::arch::asm!("ldmxcsr [{}]", in(reg) &on, options(nostack, preserves_flags, readonly));
            }
            FlushToZero { saved }
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        FlushToZero {}
    }
}

impl Drop for FlushToZero {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        // SAFETY: restores the register read in `new`.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack, preserves_flags, readonly));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coefficients are the crate's to the bit: its meter's debug output prints them
    /// (`f64`'s shortest form that reads back to the same bits).
    #[test]
    fn coefficients_are_the_crates() {
        for rate in [8_000u32, 44_100, 48_000, 96_000, 192_000, 768_000] {
            let meter = ebur128::EbuR128::new(1, rate, ebur128::Mode::M).expect("crate meter");
            let debug = format!("{meter:?}");
            let (b, a) = coefficients(f64::from(rate));
            assert!(
                debug.contains(&format!("b: {b:?}")),
                "{rate} Hz: b {b:?} in {debug}"
            );
            assert!(
                debug.contains(&format!("a: {a:?}")),
                "{rate} Hz: a {a:?} in {debug}"
            );
        }
    }

    /// One channel at a time, one sample at a time: the filter as written in BS.1770-4's
    /// direct form, the reference for the lanes.
    fn reference(rate: u32, x: &[f32]) -> Vec<f64> {
        let (b, a) = coefficients(f64::from(rate));
        let mut w = [0.0f64; 5];
        let _ftz = FlushToZero::new();
        let y: Vec<f64> = x
            .iter()
            .map(|&v| {
                w[0] = f64::from(v) - a[1] * w[1] - a[2] * w[2] - a[3] * w[3] - a[4] * w[4];
                let y = b[0] * w[0] + b[1] * w[1] + b[2] * w[2] + b[3] * w[3] + b[4] * w[4];
                w.copy_within(0..4, 1);
                y
            })
            .collect();
        y
    }

    /// Any number of channels (whole and partial groups of lanes), fed in uneven blocks,
    /// in the AVX and the portable build: every channel's sum of squares equals the
    /// one-channel reference's to the bit, sound and then a long silence (the filter's
    /// state runs down into the subnormal range, which flush-to-zero cuts off).
    #[test]
    fn lanes_equal_the_one_channel_reference() {
        let rate = 48_000;
        let frames = 5 * rate as usize;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for channels in [1usize, 3, 4, 5, 9] {
            let signal: Vec<Vec<f32>> = (0..channels)
                .map(|c| {
                    (0..frames)
                        .map(|i| {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                            // 0.7 s of sound, then silence.
                            if i < rate as usize * 7 / 10 {
                                noise * (1.0 + c as f32) / 4.0
                            } else {
                                0.0
                            }
                        })
                        .collect()
                })
                .collect();
            let ys: Vec<Vec<f64>> = signal.iter().map(|x| reference(rate, x)).collect();
            for avx in [false, crate::dsp::has_avx()] {
                let mut k = KWeighting::new(rate, channels);
                k.avx = avx;
                let (mut start, mut since, mut block) = (0, 0, 0);
                while start < frames {
                    let n = [4800, 37, 1000, 1, 300][block % 5].min(frames - start);
                    k.process(n, |c, from, dst| {
                        dst.copy_from_slice(&signal[c][start + from..start + from + dst.len()]);
                    });
                    start += n;
                    block += 1;
                    // Sums taken after every other block (each restarts from 0) and at
                    // the end.
                    if block % 2 == 0 || start == frames {
                        for (c, y) in ys.iter().enumerate() {
                            let want = y[since..start].iter().fold(0.0, |s, v| s + v * v);
                            let got = k.take_sum(c);
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{channels} ch, channel {c}, frames {since}..{start}, avx {avx}"
                            );
                        }
                        since = start;
                    }
                }
            }
        }
    }
}
