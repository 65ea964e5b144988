//! The offline binaural configuration (`BinauralConfig::offline`, used by `halo render`):
//! one partition as long as the HRIRs. Static sources give the same convolution as the
//! live 256-frame partitions (to float rounding) and as a direct convolution; output does
//! not depend on the caller's block sizes; moving sources stay click-free.

use std::sync::{Arc, OnceLock};

use halo::scene::geometry::Direction;
use halo::spatial::binaural::{
    BinauralConfig, BinauralRenderer, Distance, HrtfSet, offline_partition_frames,
};

const SR: u32 = 48_000;

fn kemar() -> Arc<HrtfSet> {
    static SET: OnceLock<Arc<HrtfSet>> = OnceLock::new();
    SET.get_or_init(|| Arc::new(HrtfSet::default_set(SR).expect("default set loads")))
        .clone()
}

/// Deterministic white-ish noise in −1 … 1 (xorshift).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// Renders `inputs` with blocks cycling through `sizes`, calling `control` at every
/// multiple of `period` frames; returns both ears.
fn render(
    r: &mut BinauralRenderer,
    inputs: &[Vec<f32>],
    len: usize,
    period: usize,
    sizes: &[usize],
    control: impl Fn(&mut BinauralRenderer, usize),
) -> [Vec<f32>; 2] {
    let mut l = vec![0.0; len];
    let mut rr = vec![0.0; len];
    let (mut pos, mut k) = (0, 0);
    while pos < len {
        if pos % period == 0 {
            control(r, pos);
        }
        let n = sizes[k % sizes.len()]
            .min(period - pos % period)
            .min(len - pos);
        k += 1;
        let ins: Vec<&[f32]> = inputs
            .iter()
            .map(|x| &x[pos.min(x.len())..(pos + n).min(x.len())])
            .collect();
        r.process(&ins, &mut l[pos..pos + n], &mut rr[pos..pos + n]);
        pos += n;
    }
    [l, rr]
}

fn offline(sources: usize) -> BinauralConfig {
    BinauralConfig::new(SR, sources).offline(&kemar())
}

#[test]
fn offline_partition_holds_the_whole_hrir() {
    let set = kemar();
    // 546 taps at 48 kHz: one 1024-frame partition (three of 256 live).
    assert!((513..=1024).contains(&set.len_taps()), "{}", set.len_taps());
    assert_eq!(offline_partition_frames(&set), 1024);
    let cfg = offline(3);
    assert_eq!(cfg.partition_frames, 1024);
    assert_eq!(cfg.sample_rate, SR);
    assert_eq!(cfg.max_sources, 3);
    assert_eq!(
        BinauralConfig::new(SR, 3),
        BinauralConfig {
            partition_frames: 256,
            ..cfg.clone()
        }
    );
    let r = BinauralRenderer::new(set, cfg).unwrap();
    assert_eq!(r.latency(), 1024);
}

/// Static sources (some between measurements, one clamped below the lowest ring) in every
/// distance mode: the offline render is the live render's convolution, shifted by the
/// larger latency. The two differ only by float rounding (FFT sizes and summation order
/// differ): within 1e-6 of the peak, where the output peaks near 1.
#[test]
fn static_sources_render_the_live_convolution() {
    let set = kemar();
    let dirs = [
        Direction::new(0.0, 0.0),
        Direction::new(33.3, 12.7),
        Direction::new(-123.4, -25.0),
        Direction::new(70.0, -75.0),
    ];
    let len = 12_000;
    let inputs: Vec<Vec<f32>> = (0..dirs.len())
        .map(|i| noise(len - 3000, i as u64 + 1))
        .collect();
    for distance in [
        Distance::Anechoic,
        Distance::Near,
        Distance::Mid,
        Distance::Far,
    ] {
        let setup = |r: &mut BinauralRenderer, pos: usize| {
            if pos == 0 {
                for (i, &d) in dirs.iter().enumerate() {
                    r.set_direction(i, d);
                    r.set_distance(i, distance);
                }
            }
        };
        let mut live = BinauralRenderer::new(set.clone(), BinauralConfig::new(SR, 4)).unwrap();
        let mut off = BinauralRenderer::new(set.clone(), offline(4)).unwrap();
        let a = render(&mut live, &inputs, len, len, &[480], setup);
        let b = render(&mut off, &inputs, len, len, &[480], setup);
        let (la, lb) = (live.latency(), off.latency());
        let n = len - lb;
        let mut err = 0.0f32;
        let mut peak = 0.0f32;
        for ear in 0..2 {
            for k in 0..n {
                err = err.max((a[ear][k + la] - b[ear][k + lb]).abs());
                peak = peak.max(a[ear][k + la].abs());
            }
        }
        assert!(peak > 0.3, "{distance:?}: peak {peak}");
        assert!(
            err <= 1e-6 * peak.max(1.0),
            "{distance:?}: max difference {err} (peak {peak})"
        );
    }
}

/// Live and offline renders against an independent reference: the direct (time-domain,
/// f64) convolution with the interpolated pair `HrtfSet::hrir` returns. The input stops
/// (exact zeros) mid-partition and its convolution tail must ring out in full: a silent
/// partition's FFT window still holds the previous partition's input (overlap-save).
#[test]
fn static_source_equals_direct_convolution_through_its_tail() {
    let set = kemar();
    let dir = Direction::new(-57.0, 21.0);
    let len = 6000;
    let x = noise(3000, 9);
    let mut h = [vec![0.0; set.len_taps()], vec![0.0; set.len_taps()]];
    let [hl, hr] = &mut h;
    set.hrir(dir, hl, hr);
    for (cfg, blocks) in [
        (BinauralConfig::new(SR, 1), &[333usize, 64][..]),
        (offline(1), &[333, 1024, 7][..]),
    ] {
        let mut r = BinauralRenderer::new(set.clone(), cfg).unwrap();
        let out = render(
            &mut r,
            std::slice::from_ref(&x),
            len,
            len,
            blocks,
            |r, pos| {
                if pos == 0 {
                    r.set_direction(0, dir)
                }
            },
        );
        let lat = r.latency();
        for ear in 0..2 {
            let mut err = 0.0f64;
            let mut peak = 0.0f64;
            let mut tail_err = 0.0f64;
            for n in 0..len - lat {
                let want: f64 = h[ear]
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k <= n && n - k < x.len())
                    .map(|(k, &hk)| hk as f64 * x[n - k] as f64)
                    .sum();
                let e = (out[ear][n + lat] as f64 - want).abs();
                err = err.max(e);
                if n >= x.len() {
                    tail_err = tail_err.max(e);
                }
                peak = peak.max(want.abs());
            }
            assert!(
                peak > 0.1 && err <= 1e-5 * peak,
                "latency {lat}, ear {ear}: {err} of {peak} (in the tail: {tail_err})"
            );
        }
    }
}

/// Moving sources in every mode, a bypass toggle and a source switched off and on: the
/// same calls at the same frames give bit-identical output whatever the block sizes.
#[test]
fn offline_output_does_not_depend_on_block_sizes() {
    let set = kemar();
    let len = 14_000;
    let inputs: Vec<Vec<f32>> = (0..4).map(|i| noise(len, 20 + i)).collect();
    let control = |r: &mut BinauralRenderer, pos: usize| {
        let t = pos as f64;
        r.set_direction(0, Direction::new(t * 0.05, 10.0));
        r.set_direction(1, Direction::new(90.0 - t * 0.3, -20.0));
        r.set_direction(2, Direction::new(-45.0 + t * 0.01, 30.0));
        r.set_direction(3, Direction::new(t * 0.2, 0.0));
        r.set_distance(1, Distance::Mid);
        r.set_distance(2, Distance::Near);
        r.set_distance(3, Distance::Far);
        match pos {
            3200 => r.set_bypass(2, Some([0.7, 0.3])),
            6400 => r.set_bypass(2, None),
            4480 => r.set_active(1, false),
            9600 => r.set_active(1, true),
            _ => {}
        }
    };
    let mut whole = BinauralRenderer::new(set.clone(), offline(4)).unwrap();
    let reference = render(&mut whole, &inputs, len, 64, &[64], control);
    let mut odd = BinauralRenderer::new(set.clone(), offline(4)).unwrap();
    let irregular = render(&mut odd, &inputs, len, 64, &[1, 7, 63, 13, 3, 50], control);
    assert!(reference[0].iter().any(|v| v.abs() > 0.1));
    assert!(reference == irregular, "block sizes changed the output");
}

/// Energy above `cut_hz` relative to the total, in dB, of a Blackman-Harris-windowed
/// spectrum of `x[start .. start + len]`.
fn hf_ratio_db(x: &[f32], start: usize, len: usize, cut_hz: f64) -> f64 {
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(len);
    let mut buf: Vec<f64> = (0..len)
        .map(|n| {
            let t = 2.0 * std::f64::consts::PI * n as f64 / (len - 1) as f64;
            let w =
                0.35875 - 0.48829 * t.cos() + 0.14128 * (2.0 * t).cos() - 0.01168 * (3.0 * t).cos();
            x[start + n] as f64 * w
        })
        .collect();
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).unwrap();
    let cut = (cut_hz * len as f64 / SR as f64) as usize;
    let total: f64 = spec.iter().map(|c| c.norm_sqr()).sum();
    let high: f64 = spec[cut..].iter().map(|c| c.norm_sqr()).sum();
    10.0 * (high / total).log10()
}

/// A 500 Hz sine circling the head once in `period_s` (directions set every 64 frames,
/// filters following once per 1024-frame partition): the worse ear's energy above 6 kHz
/// relative to the sine, in dB.
fn circling_sine_hf_db(period_s: f64, crossfade: bool) -> f64 {
    let analysed = 1 << 15;
    let margin = 4096;
    let len = analysed + 2 * margin;
    let x: Vec<f32> = (0..len)
        .map(|n| (0.5 * (2.0 * std::f64::consts::PI * 500.0 * n as f64 / SR as f64).sin()) as f32)
        .collect();
    let mut cfg = offline(1);
    cfg.crossfade = crossfade;
    let mut r = BinauralRenderer::new(kemar(), cfg).unwrap();
    let deg_per_frame = 360.0 / (period_s * SR as f64);
    let out = render(&mut r, &[x], len, 64, &[64], |r, pos| {
        r.set_direction(0, Direction::new(pos as f64 * deg_per_frame, 0.0))
    });
    hf_ratio_db(&out[0], margin, analysed, 6000.0)
        .max(hf_ratio_db(&out[1], margin, analysed, 6000.0))
}

/// The live renderer's click criterion (tests/binaural.rs) holds for the long partitions:
/// a fast-moving source's filter steps (≈ 15° per partition for a 0.5 s circle) are
/// crossfaded over 1024 frames, and would be audible without the crossfade.
#[test]
fn moving_sine_offline_has_no_clicks() {
    let fast = circling_sine_hf_db(0.5, true);
    let slow = circling_sine_hf_db(4.0, true);
    let fast_no_xfade = circling_sine_hf_db(0.5, false);
    eprintln!(
        "HF/sine, offline partitions: 4 s circle {slow:.1} dB, 0.5 s circle {fast:.1} dB, \
         without crossfade {fast_no_xfade:.1} dB"
    );
    assert!(slow < -60.0, "4 s circle: {slow} dB");
    assert!(fast < -60.0, "0.5 s circle: {fast} dB");
    assert!(fast_no_xfade > fast + 15.0, "{fast_no_xfade} dB");
}
