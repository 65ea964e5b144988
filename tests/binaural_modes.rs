//! The binaural distance modes (Near, Mid, Far; Off is the plain pan), measured from
//! rendered impulse responses: direct-to-reverberant ratios, the near-field interaural
//! level difference against the rigid-sphere model, the late reverb's interaural coherence
//! and reverberation time, continuity of moving sources, block-size independence.

use std::f64::consts::PI;
use std::sync::Arc;

use halo::engine::{Engine, EngineConfig, ObjectConfig, OutputConfig};
use halo::scene::automation::Automation;
use halo::scene::geometry::{Direction, Position};
use halo::spatial::binaural::room::{FAR_DRR_DB, MID_DRR_DB, NEAR_DRR_DB, NEAR_SHARE_DB, RT60_S};
use halo::spatial::binaural::{BinauralConfig, BinauralRenderer, Distance, HrtfSet};

const SR: u32 = 48_000;

fn kemar() -> Arc<HrtfSet> {
    static SET: std::sync::OnceLock<Arc<HrtfSet>> = std::sync::OnceLock::new();
    SET.get_or_init(|| Arc::new(HrtfSet::default_set(SR).unwrap()))
        .clone()
}

/// Renders `x` through one source in `distance` at `dir` in blocks of `block` frames;
/// returns both ears without the renderer's latency.
fn render_one(dir: Direction, distance: Distance, x: &[f32], block: usize) -> [Vec<f32>; 2] {
    let mut r = BinauralRenderer::new(kemar(), BinauralConfig::new(SR, 1)).unwrap();
    r.set_direction(0, dir);
    r.set_distance(0, distance);
    let lat = r.latency();
    let len = x.len() + lat;
    let (mut l, mut rr) = (vec![0.0f32; len], vec![0.0f32; len]);
    let mut pos = 0;
    while pos < len {
        let n = block.min(len - pos);
        let input: Vec<f32> = (pos..pos + n)
            .map(|i| x.get(i).copied().unwrap_or(0.0))
            .collect();
        r.process(&[input], &mut l[pos..pos + n], &mut rr[pos..pos + n]);
        pos += n;
    }
    [l[lat..].to_vec(), rr[lat..].to_vec()]
}

/// The impulse response (1.2 s) of a source at `dir` in `distance`.
fn ir(dir: Direction, distance: Distance) -> [Vec<f32>; 2] {
    let mut x = vec![0.0f32; (1.2 * SR as f64) as usize];
    x[0] = 1.0;
    render_one(dir, distance, &x, 1024)
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64) * (v as f64)).sum()
}

/// Direct-to-reverberant ratio (dB, both ears): the anechoic response is the direct sound,
/// the rest of the mode's response is what the room adds.
fn drr_db(distance: Distance, dir: Direction) -> f64 {
    let dry = ir(dir, Distance::Anechoic);
    let wet = ir(dir, distance);
    let direct = energy(&dry[0]) + energy(&dry[1]);
    let room: f64 = (0..2)
        .map(|e| {
            wet[e]
                .iter()
                .zip(&dry[e])
                .map(|(&w, &d)| ((w - d) as f64).powi(2))
                .sum::<f64>()
        })
        .sum();
    10.0 * (direct / room).log10()
}

#[test]
fn drr_of_mid_and_far_is_as_documented() {
    let ahead = Direction::new(0.0, 0.0);
    let mid = drr_db(Distance::Mid, ahead);
    let far = drr_db(Distance::Far, ahead);
    eprintln!("DRR ahead: Mid {mid:.2} dB, Far {far:.2} dB");
    assert!((mid - MID_DRR_DB).abs() <= 1.0, "Mid DRR {mid} dB");
    assert!((far - FAR_DRR_DB).abs() <= 1.0, "Far DRR {far} dB");
    // Near's direct path is not the anechoic one (near-field shelves); its room is Mid's
    // at the share: DRR = (E_near − E_room) / E_room with E_room = Mid's room × share².
    let dry = ir(ahead, Distance::Anechoic);
    let wet = ir(ahead, Distance::Mid);
    let near = ir(ahead, Distance::Near);
    let mid_room: f64 = (0..2)
        .map(|e| {
            wet[e]
                .iter()
                .zip(&dry[e])
                .map(|(&w, &d)| ((w - d) as f64).powi(2))
                .sum::<f64>()
        })
        .sum();
    let near_room = mid_room * 10f64.powf(NEAR_SHARE_DB / 10.0);
    let near_all = energy(&near[0]) + energy(&near[1]);
    let near_drr = 10.0 * ((near_all - near_room) / near_room).log10();
    eprintln!("DRR ahead: Near {near_drr:.2} dB");
    assert!(
        (near_drr - NEAR_DRR_DB).abs() <= 1.0,
        "Near DRR {near_drr} dB"
    );
}

/// Power spectrum average over `[lo, hi)` Hz of `x` (zero-padded to 2^16).
fn band_power(x: &[f32], lo: f64, hi: f64) -> f64 {
    let n = 1 << 16;
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut buf = vec![0.0f64; n];
    for (b, &v) in buf.iter_mut().zip(x) {
        *b = v as f64;
    }
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).unwrap();
    let bin = |f: f64| (f * n as f64 / SR as f64).round() as usize;
    let s = &spec[bin(lo)..bin(hi)];
    s.iter().map(|c| c.norm_sqr()).sum::<f64>() / s.len() as f64
}

/// Interaural level difference (dB) in 200–500 Hz of the direct sound: the first
/// 3 ms of the response (the earliest reflection arrives 3.9 ms after it).
fn direct_lf_ild_db(distance: Distance) -> f64 {
    let h = ir(Direction::new(90.0, 0.0), distance);
    let onset = h[0].iter().position(|v| v.abs() > 1e-3).unwrap();
    let end = onset + (0.003 * SR as f64) as usize;
    let w = |x: &[f32]| -> Vec<f32> { x[..end].to_vec() };
    10.0 * (band_power(&w(&h[0]), 200.0, 500.0) / band_power(&w(&h[1]), 200.0, 500.0)).log10()
}

#[test]
fn near_field_ild_grows_by_the_sphere_model_figure() {
    // Rigid sphere (Duda & Martens 1998), a = 8.75 cm, source at 90°: the 200–500 Hz
    // ILD is 9.75 dB at 0.25 m and 0.81 dB far away (tools/reference/sphere_ild.py).
    const MODEL_DIFFERENCE_DB: f64 = 8.94;
    let near = direct_lf_ild_db(Distance::Near);
    let mid = direct_lf_ild_db(Distance::Mid);
    eprintln!("LF ILD at 90°: Near {near:.2} dB, Mid {mid:.2} dB");
    assert!(
        ((near - mid) - MODEL_DIFFERENCE_DB).abs() <= 1.0,
        "Near − Mid = {} dB",
        near - mid
    );
}

/// Magnitude-squared coherence of the two ears over `[lo, hi)` Hz of `x[start..]`.
fn coherence(l: &[f32], r: &[f32], lo: f64, hi: f64) -> f64 {
    let n = l.len().next_power_of_two();
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let spec = |x: &[f32]| {
        let mut buf = vec![0.0f64; n];
        for (b, &v) in buf.iter_mut().zip(x) {
            *b = v as f64;
        }
        let mut s = fft.make_output_vec();
        fft.process(&mut buf, &mut s).unwrap();
        s
    };
    let (sl, sr) = (spec(l), spec(r));
    let bin = |f: f64| (f * n as f64 / SR as f64).round() as usize;
    let (mut cross, mut pl, mut pr) = (realfft::num_complex::Complex::new(0.0, 0.0), 0.0, 0.0);
    for k in bin(lo)..bin(hi) {
        cross += sl[k] * sr[k].conj();
        pl += sl[k].norm_sqr();
        pr += sr[k].norm_sqr();
    }
    cross.norm() / (pl * pr).sqrt()
}

#[test]
fn late_tail_is_diffuse_above_1_khz() {
    for distance in [Distance::Mid, Distance::Far] {
        let h = ir(Direction::new(30.0, 0.0), distance);
        // The late tail: from 60 ms (after every early reflection) to 400 ms.
        let (a, b) = ((0.06 * SR as f64) as usize, (0.4 * SR as f64) as usize);
        let (l, r) = (&h[0][a..b], &h[1][a..b]);
        let low = coherence(l, r, 40.0, 200.0);
        eprintln!("{distance:?}: coherence 40–200 Hz {low:.2}");
        assert!(
            low > 0.7,
            "{distance:?}: low frequencies stay coherent: {low}"
        );
        for (lo, hi) in [
            (1000.0, 2000.0),
            (2000.0, 4000.0),
            (4000.0, 8000.0),
            (8000.0, 16000.0),
        ] {
            let c = coherence(l, r, lo, hi);
            eprintln!("{distance:?}: coherence {lo}–{hi} Hz {c:.3}");
            assert!(c < 0.3, "{distance:?}: {lo}–{hi} Hz coherence {c}");
        }
    }
}

/// Reverberation time from the Schroeder integral of `x` (energy of both ears): the
/// −5 … −25 dB decay by least squares, extrapolated to 60 dB (T20).
fn t20_s(l: &[f32], r: &[f32]) -> f64 {
    let e: Vec<f64> = l
        .iter()
        .zip(r)
        .map(|(&a, &b)| (a as f64).powi(2) + (b as f64).powi(2))
        .collect();
    let mut edc = vec![0.0f64; e.len()];
    let mut acc = 0.0;
    for i in (0..e.len()).rev() {
        acc += e[i];
        edc[i] = acc;
    }
    let total = edc[0];
    let db: Vec<f64> = edc.iter().map(|v| 10.0 * (v / total).log10()).collect();
    let pts: Vec<(f64, f64)> = db
        .iter()
        .enumerate()
        .filter(|(_, d)| **d <= -5.0 && **d >= -25.0)
        .map(|(i, d)| (i as f64 / SR as f64, *d))
        .collect();
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
        / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    -60.0 / slope
}

#[test]
fn reverb_time_is_as_documented() {
    for distance in [Distance::Mid, Distance::Far] {
        let dir = Direction::new(-45.0, 10.0);
        let dry = ir(dir, Distance::Anechoic);
        let wet = ir(dir, distance);
        let room: Vec<Vec<f32>> = (0..2)
            .map(|e| wet[e].iter().zip(&dry[e]).map(|(w, d)| w - d).collect())
            .collect();
        let t = t20_s(&room[0], &room[1]);
        eprintln!("{distance:?}: T20 {t:.3} s (documented {RT60_S} s)");
        assert!((t / RT60_S - 1.0).abs() <= 0.1, "{distance:?}: T20 {t} s");
    }
}

/// Energy above 6 kHz relative to the whole (dB), Blackman-Harris window, of
/// `x[start .. start + len]`.
fn hf_ratio_db(x: &[f32], start: usize, len: usize) -> f64 {
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(len);
    let mut buf: Vec<f64> = (0..len)
        .map(|n| {
            let t = 2.0 * PI * n as f64 / (len - 1) as f64;
            let w =
                0.35875 - 0.48829 * t.cos() + 0.14128 * (2.0 * t).cos() - 0.01168 * (3.0 * t).cos();
            x[start + n] as f64 * w
        })
        .collect();
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).unwrap();
    let cut = (6000.0 * len as f64 / SR as f64) as usize;
    let total: f64 = spec.iter().map(|c| c.norm_sqr()).sum();
    let high: f64 = spec[cut..].iter().map(|c| c.norm_sqr()).sum();
    10.0 * (high / total).log10()
}

/// A 500 Hz sine circling the head in 0.5 s (directions every 64 frames) in `distance`;
/// the worse ear's energy above 6 kHz relative to the whole, in dB.
fn circling_sine_hf_db(distance: Distance) -> f64 {
    let analysed = 1 << 15;
    let margin = (0.4 * SR as f64) as usize; // the room's onset is past
    let len = analysed + 2 * margin;
    let mut r = BinauralRenderer::new(kemar(), BinauralConfig::new(SR, 1)).unwrap();
    r.set_distance(0, distance);
    let (mut l, mut rr) = (vec![0.0f32; len], vec![0.0f32; len]);
    for pos in (0..len).step_by(64) {
        r.set_direction(
            0,
            Direction::new(pos as f64 * 360.0 / (0.5 * SR as f64), 0.0),
        );
        let x: Vec<f32> = (pos..pos + 64)
            .map(|n| (0.5 * (2.0 * PI * 500.0 * n as f64 / SR as f64).sin()) as f32)
            .collect();
        r.process(&[x], &mut l[pos..pos + 64], &mut rr[pos..pos + 64]);
    }
    hf_ratio_db(&l, margin, analysed).max(hf_ratio_db(&rr, margin, analysed))
}

#[test]
fn moving_sources_do_not_click_in_any_mode() {
    for distance in [Distance::Near, Distance::Mid, Distance::Far] {
        let db = circling_sine_hf_db(distance);
        eprintln!("{distance:?}: HF/sine of a 0.5 s circle {db:.1} dB");
        assert!(db < -60.0, "{distance:?}: {db} dB");
    }
}

#[test]
fn output_does_not_depend_on_block_sizes_in_any_mode() {
    let len = 20_000;
    let x: Vec<Vec<f32>> = (0..3)
        .map(|s| {
            (0..len)
                .map(|n| (((n * (s + 7)) % 101) as f32 / 101.0 - 0.5) * 0.3)
                .collect()
        })
        .collect();
    let run = |blocks: &[usize]| {
        let mut r = BinauralRenderer::new(kemar(), BinauralConfig::new(SR, 3)).unwrap();
        let modes = [Distance::Near, Distance::Mid, Distance::Far];
        let (mut l, mut rr) = (vec![0.0f32; len], vec![0.0f32; len]);
        let (mut pos, mut k) = (0, 0);
        while pos < len {
            // Parameters are set every 64 frames, at the same frames in every run; the
            // blocks are cut at those frames too.
            let n = blocks[k % blocks.len()].min(len - pos).min(64 - pos % 64);
            k += 1;
            if pos % 64 == 0 {
                for s in 0..3 {
                    r.set_direction(s, Direction::new(pos as f64 * 0.02 * (s + 1) as f64, 5.0));
                    // Modes change along the way (as from automation or a session edit).
                    r.set_distance(s, modes[(s + pos / 7000) % 3]);
                }
            }
            let ins: Vec<&[f32]> = x.iter().map(|v| &v[pos..pos + n]).collect();
            r.process(&ins, &mut l[pos..pos + n], &mut rr[pos..pos + n]);
            pos += n;
        }
        (l, rr)
    };
    let a = run(&[64]);
    let b = run(&[1, 500, 37, 4096, 64, 255]);
    assert!(a.0.iter().any(|v| v.abs() > 1e-3));
    assert!(a == b, "block sizes change the output");
}

/// One object at 60° left rendered binaurally by the engine in each mode.
fn engine_render(bypass: bool, distance: Distance) -> Vec<f32> {
    let object = ObjectConfig {
        gain_db: Automation::constant(0.0),
        position: Automation::constant(Position::Polar {
            azimuth_deg: 60.0,
            elevation_deg: 0.0,
            distance: 1.0,
        }),
        size: Automation::constant(0.0),
        mute: false,
        binaural_bypass: bypass,
        binaural_distance: distance,
        controls: Default::default(),
    };
    let mut engine = Engine::new(EngineConfig {
        sample_rate: SR,
        max_block_frames: 512,
        objects: vec![object],
        beds: vec![],
        outputs: vec![OutputConfig::Binaural {
            hrtf: kemar(),
            lfe_db: None,
            chain: vec![],
        }],
    })
    .unwrap();
    let mut out = Vec::new();
    for block in 0..40 {
        for (k, x) in engine.object_input(0).iter_mut().enumerate() {
            *x = if block == 0 && k == 0 { 1.0 } else { 0.0 };
        }
        engine.process(512);
        out.extend_from_slice(&engine.output(0)[0][..512]);
        out.extend_from_slice(&engine.output(0)[1][..512]);
    }
    out
}

#[test]
fn the_four_modes_render_four_different_results() {
    let renders = [
        engine_render(true, Distance::Mid),
        engine_render(false, Distance::Near),
        engine_render(false, Distance::Mid),
        engine_render(false, Distance::Far),
    ];
    for i in 0..4 {
        for j in i + 1..4 {
            let diff: f64 = renders[i]
                .iter()
                .zip(&renders[j])
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let e: f64 = renders[i].iter().map(|&a| (a as f64).powi(2)).sum();
            let rel = 10.0 * (diff / e).log10();
            eprintln!("modes {i} and {j}: difference {rel:.1} dB");
            assert!(rel > -20.0, "modes {i} and {j} differ by only {rel} dB");
        }
    }
}

#[test]
fn headphone_virtualise_drr_maps_to_the_nearest_mode() {
    use halo::spatial::binaural::room::NEAR_DRR_DB;
    assert_eq!(Distance::nearest_to_drr(MID_DRR_DB), Distance::Mid);
    assert_eq!(Distance::nearest_to_drr(FAR_DRR_DB - 5.0), Distance::Far);
    assert_eq!(Distance::nearest_to_drr(NEAR_DRR_DB + 20.0), Distance::Near);
    assert_eq!(
        Distance::nearest_to_drr((MID_DRR_DB + FAR_DRR_DB) / 2.0 - 0.1),
        Distance::Far
    );
    assert_eq!(Distance::nearest_to_drr(f64::NAN), Distance::Mid);
}

#[test]
fn bed_channel_modes_in_the_session() {
    use halo::formats::session;
    use halo::scene::mix::BinauralMode;
    let text = |modes: &str| {
        format!(
            "(sample_rate: 48000, duration: 1.0, objects: [], beds: [(name: \"b\", \
             source: \"b.wav\", layout: \"5.1\", binaural: [{modes}])], outputs: [])"
        )
    };
    let path = std::path::Path::new("s.ron");
    let scene = session::parse(&text("Near, Near, Near, Off, Far, Far"), path, &mut |_| {
        Err("no layouts".into())
    })
    .unwrap();
    let modes = scene.beds[0].binaural.clone().unwrap();
    assert_eq!(modes[0], BinauralMode::Near);
    assert_eq!(modes[3], BinauralMode::Off);
    assert_eq!(modes[5], BinauralMode::Far);
    // Written and read back.
    let written = session::write(&scene).unwrap();
    let again = session::parse(&written, path, &mut |_| Err("no layouts".into())).unwrap();
    assert_eq!(again.beds[0].binaural, scene.beds[0].binaural);
    // One mode per channel.
    let err = session::parse(&text("Near, Mid"), path, &mut |_| Err("no layouts".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("binaural") && err.contains("6"), "{err}");
}
