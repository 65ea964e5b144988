//! Acceptance tests for `halo::spatial::downmix`: coefficients per channel against the documented
//! chain, LFE handling, Lt/Rt phase behaviour (measured on the output), block-size
//! independence and no allocation in `process`.

use halo::scene::layout::Layout;
use halo::spatial::downmix::{FoldDown, FoldDownConfig, FoldKind, MINUS_3_DB};
use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::f64::consts::PI;

/// Counts allocations made on a thread while it is armed.
struct Counting;
thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
        let _ = ARMED.try_with(|a| {
            if a.get() {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

const FS: u32 = 48_000;

fn amp(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

fn layout(name: &str) -> Layout {
    Layout::builtin(name).unwrap()
}

/// Runs a constant 1.0 in channel `ch` alone through `fold` and returns each output's
/// value at the end (Lo/Ro is a static matrix, so that is the coefficient).
fn coefficient_of(fold: &mut FoldDown, channels: usize, ch: usize, outs: usize) -> Vec<f64> {
    let frames = 64;
    let ones = vec![1.0f32; frames];
    let zeros = vec![0.0f32; frames];
    let input: Vec<&[f32]> = (0..channels)
        .map(|i| if i == ch { &ones[..] } else { &zeros[..] })
        .collect();
    let mut out = vec![vec![0.0f32; frames]; outs];
    let mut refs: Vec<&mut [f32]> = out.iter_mut().map(|v| &mut v[..]).collect();
    fold.process(&input, &mut refs);
    out.iter().map(|o| o[frames - 1] as f64).collect()
}

fn near(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:.6}, want {want:.6}"
    );
}

/// Distinct trims so that a coefficient taken from the wrong stage shows.
fn odd_trims() -> FoldDownConfig {
    FoldDownConfig {
        kind: FoldKind::LoRo,
        center_db: -2.0,
        surround_db: -4.0,
        rear_db: -5.0,
        height_db: -7.0,
        lfe_db: None,
    }
}

#[test]
fn each_714_channel_reaches_lo_ro_with_its_chain_coefficient() {
    let from = layout("7.1.4");
    let cfg = odd_trims();
    let (c, s, r, h) = (amp(-2.0), amp(-4.0), amp(-5.0), amp(-7.0));
    let mut fold = FoldDown::new(&from, &layout("2.0"), &cfg, FS, 256).unwrap();
    // (label, Lo, Ro): heights → ear level (h), 7.1 → 5.1 (side and rear surrounds each
    // at r), 5.1 → 2.0 (c for C, s for Ls/Rs).
    let want = [
        ("L", 1.0, 0.0),
        ("R", 0.0, 1.0),
        ("C", c, c),
        ("LFE", 0.0, 0.0),
        ("Ls", r * s, 0.0),
        ("Rs", 0.0, r * s),
        ("Lrs", r * s, 0.0),
        ("Rrs", 0.0, r * s),
        ("Ltf", h, 0.0),
        ("Rtf", 0.0, h),
        ("Ltr", h * r * s, 0.0),
        ("Rtr", 0.0, h * r * s),
    ];
    for (label, lo, ro) in want {
        let i = from.channel_index(label).unwrap();
        let got = coefficient_of(&mut fold, 12, i, 2);
        near(got[0], lo, 1e-6, &format!("{label} → Lo"));
        near(got[1], ro, 1e-6, &format!("{label} → Ro"));
        near(
            fold.matrix()[0][i],
            lo,
            1e-12,
            &format!("{label} matrix Lo"),
        );
        near(
            fold.matrix()[1][i],
            ro,
            1e-12,
            &format!("{label} matrix Ro"),
        );
    }
    let names: Vec<&str> = fold.steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["heights → ear level", "7.1 → 5.1", "5.1 → 2.0 Lo/Ro"]
    );
    assert!(fold.quadrature_matrix().is_none());
    assert_eq!(fold.latency(), 0);
}

#[test]
fn five_one_to_stereo_is_bs775() {
    let from = layout("5.1");
    let mut fold =
        FoldDown::new(&from, &layout("2.0"), &FoldDownConfig::default(), FS, 64).unwrap();
    let k = std::f64::consts::FRAC_1_SQRT_2;
    assert!((amp(MINUS_3_DB) - k).abs() < 1e-15);
    let want = [
        (1.0, 0.0),
        (0.0, 1.0),
        (k, k),
        (0.0, 0.0),
        (k, 0.0),
        (0.0, k),
    ];
    for (i, (lo, ro)) in want.into_iter().enumerate() {
        let got = coefficient_of(&mut fold, 6, i, 2);
        near(
            got[0],
            lo,
            1e-6,
            &format!("{} → Lo", from.channels[i].label),
        );
        near(
            got[1],
            ro,
            1e-6,
            &format!("{} → Ro", from.channels[i].label),
        );
    }
    // 5.1 is already the ear-level 5.1: only the stereo step.
    assert_eq!(fold.steps().len(), 1);
}

#[test]
fn lfe_dropped_by_default_and_mixed_with_lfe_db() {
    for name in ["5.1", "7.1.4"] {
        let from = layout(name);
        let lfe = from.lfe_indices()[0];
        let mut fold =
            FoldDown::new(&from, &layout("2.0"), &FoldDownConfig::default(), FS, 64).unwrap();
        assert_eq!(
            coefficient_of(&mut fold, from.num_channels(), lfe, 2),
            [0.0, 0.0]
        );
        let cfg = FoldDownConfig {
            lfe_db: Some(-10.0),
            ..Default::default()
        };
        let mut fold = FoldDown::new(&from, &layout("2.0"), &cfg, FS, 64).unwrap();
        let got = coefficient_of(&mut fold, from.num_channels(), lfe, 2);
        near(got[0], amp(-10.0), 1e-6, "LFE → Lo");
        near(got[1], amp(-10.0), 1e-6, "LFE → Ro");
        // Into 5.1 the LFE stays the LFE.
        let mut fold = FoldDown::new(&from, &layout("5.1"), &cfg, FS, 64).unwrap();
        let got = coefficient_of(&mut fold, from.num_channels(), lfe, 6);
        assert_eq!(got, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    }
}

#[test]
fn other_layouts_fold_by_position() {
    let (s, r, h) = (amp(-4.0), amp(-5.0), amp(-7.0));
    // 9.1.6: wides into L/R at unity; top-middle (U+090) → side surround → Ls (r) → Lo (s).
    let from = layout("9.1.6");
    let mut fold = FoldDown::new(&from, &layout("2.0"), &odd_trims(), FS, 64).unwrap();
    let co = |fold: &mut FoldDown, l: &str| {
        let i = from.channel_index(l).unwrap();
        coefficient_of(fold, from.num_channels(), i, 2)
    };
    near(co(&mut fold, "Lw")[0], 1.0, 1e-6, "Lw → Lo");
    near(co(&mut fold, "Rw")[1], 1.0, 1e-6, "Rw → Ro");
    near(co(&mut fold, "Ltm")[0], h * r * s, 1e-6, "Ltm → Lo");
    near(co(&mut fold, "Rtr")[1], h * r * s, 1e-6, "Rtr → Ro");
    assert_eq!(co(&mut fold, "Rtm")[0], 0.0);
    // 5.1.4: one surround per side, so no rear trim: Ltr → Ls (h) → Lo (s).
    let from = layout("5.1.4");
    let mut fold = FoldDown::new(&from, &layout("2.0"), &odd_trims(), FS, 64).unwrap();
    let i = from.channel_index("Ltr").unwrap();
    near(
        coefficient_of(&mut fold, 10, i, 2)[0],
        h * s,
        1e-6,
        "5.1.4 Ltr → Lo",
    );
    // 7.1.4 → 5.1: a 6 × 12 matrix; Lrs → Ls at r, Rtf → R at h.
    let from = layout("7.1.4");
    let fold = FoldDown::new(&from, &layout("5.1"), &odd_trims(), FS, 64).unwrap();
    let m = fold.matrix();
    assert_eq!((m.len(), m[0].len()), (6, 12));
    near(m[4][6], r, 1e-12, "Lrs → Ls");
    near(m[1][9], h, 1e-12, "Rtf → R");
    near(m[2][2], 1.0, 1e-12, "C → C");
    assert_eq!(m[0][2], 0.0);
    // A user layout: a front speaker at 15° pans C ↔ L with the sine/cosine law.
    let user = Layout::parse(
        r#"(name: "odd", channels: [
            (label: "A", azimuth: 15, elevation: 0),
            (label: "B", azimuth: -40, elevation: 0),
            (label: "Z", azimuth: 180, elevation: 0),
            (label: "T", azimuth: 0, elevation: 60),
        ])"#,
        "odd.ron",
    )
    .unwrap();
    let fold = FoldDown::new(&user, &layout("5.1"), &FoldDownConfig::default(), FS, 64).unwrap();
    let m = fold.matrix();
    let k = std::f64::consts::FRAC_1_SQRT_2;
    near(m[2][0], (PI / 4.0).cos(), 1e-12, "A → C");
    near(m[0][0], (PI / 4.0).sin(), 1e-12, "A → L");
    near(m[1][1], 1.0, 1e-12, "B → R");
    near(m[4][2], k, 1e-12, "back centre → Ls");
    near(m[5][2], k, 1e-12, "back centre → Rs");
    // Top-centre, no ear-level C: half power to each front (A and B), then on to 5.1.
    near(m[2][3], k * k * (PI / 4.0).cos(), 1e-12, "T → C (via A)");
    near(m[1][3], k * k, 1e-12, "T → R (via B)");
}

/// A few sines from 100 Hz to 10 kHz (a band-limited test signal), deterministic phases.
fn multisine(frames: usize) -> Vec<f32> {
    let freqs = [100.0, 230.0, 510.0, 1000.0, 2300.0, 4700.0, 10_000.0];
    (0..frames)
        .map(|n| {
            let t = n as f64 / FS as f64;
            let v: f64 = freqs
                .iter()
                .enumerate()
                .map(|(k, f)| (2.0 * PI * f * t + k as f64 * 1.3).sin())
                .sum();
            (0.1 * v) as f32
        })
        .collect()
}

fn run(fold: &mut FoldDown, input: &[&[f32]], frames: usize) -> [Vec<f32>; 2] {
    let mut a = vec![0.0f32; frames];
    let mut b = vec![0.0f32; frames];
    fold.process(input, &mut [&mut a[..], &mut b[..]]);
    [a, b]
}

fn rms(x: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for v in x {
        s += v * v;
        n += 1;
    }
    (s / n as f64).sqrt()
}

fn lt_rt() -> FoldDownConfig {
    FoldDownConfig {
        kind: FoldKind::LtRt,
        ..Default::default()
    }
}

#[test]
fn lt_rt_surround_in_anti_phase_centre_in_phase() {
    let from = layout("5.1");
    let mut fold = FoldDown::new(&from, &layout("2.0"), &lt_rt(), FS, 4800).unwrap();
    let frames = FS as usize;
    let sig = multisine(frames);
    let zero = vec![0.0f32; frames];
    let skip = FS as usize / 5;
    // Ls = Rs = the same signal.
    let [lt, rt] = run(&mut fold, &[&zero, &zero, &zero, &zero, &sig, &sig], frames);
    let sum = rms((skip..frames).map(|n| lt[n] as f64 + rt[n] as f64));
    let diff = rms((skip..frames).map(|n| lt[n] as f64 - rt[n] as f64));
    assert!(diff > 0.1, "surround vanished: {diff}");
    assert!(
        20.0 * (sum / diff).log10() <= -20.0,
        "Lt+Rt {sum:.3e} vs Lt−Rt {diff:.3e}"
    );
    // Surround energy is kept (all-pass): |Lt| = |Rt| = (0.8717 + 0.4899)·|S|.
    let s_rms = rms((skip..frames).map(|n| sig[n] as f64));
    let lt_rms = rms((skip..frames).map(|n| lt[n] as f64));
    near(
        lt_rms / s_rms,
        0.8717 + 0.4899,
        0.02,
        "surround level in Lt",
    );

    fold.reset();
    let [lt, rt] = run(
        &mut fold,
        &[&zero, &zero, &sig, &zero, &zero, &zero],
        frames,
    );
    let sum = rms((skip..frames).map(|n| lt[n] as f64 + rt[n] as f64));
    let diff = rms((skip..frames).map(|n| lt[n] as f64 - rt[n] as f64));
    assert!(
        diff <= 1e-6 * sum,
        "centre not in phase: {diff:.3e} vs {sum:.3e}"
    );
    let lt_rms = rms((skip..frames).map(|n| lt[n] as f64));
    near(
        lt_rms / s_rms,
        std::f64::consts::FRAC_1_SQRT_2,
        0.02,
        "centre level in Lt",
    );
}

/// Amplitude and phase (radians) of `x` at `f` over whole periods (1 s windows).
fn tone(x: &[f32], f: f64) -> (f64, f64) {
    let (mut re, mut im) = (0.0, 0.0);
    for (n, &v) in x.iter().enumerate() {
        let w = 2.0 * PI * f * n as f64 / FS as f64;
        re += v as f64 * w.cos();
        im -= v as f64 * w.sin();
    }
    let k = 2.0 / x.len() as f64;
    ((re * re + im * im).sqrt() * k, im.atan2(re))
}

#[test]
fn lt_rt_quadrature_path_is_90_degrees_from_100_hz_to_10_khz() {
    let from = layout("5.1");
    let frames = FS as usize * 3 / 2;
    let zero = vec![0.0f32; frames];
    for f in [100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0] {
        let sig: Vec<f32> = (0..frames)
            .map(|n| (0.5 * (2.0 * PI * f * n as f64 / FS as f64).sin()) as f32)
            .collect();
        let mut fold = FoldDown::new(&from, &layout("2.0"), &lt_rt(), FS, 1024).unwrap();
        let [lt_c, _] = run(
            &mut fold,
            &[&zero, &zero, &sig, &zero, &zero, &zero],
            frames,
        );
        fold.reset();
        let [lt_s, rt_s] = run(
            &mut fold,
            &[&zero, &zero, &zero, &zero, &sig, &zero],
            frames,
        );
        let win = FS as usize / 2..frames;
        let (ac, pc) = tone(&lt_c[win.clone()], f);
        let (as_, ps) = tone(&lt_s[win.clone()], f);
        let (ar, pr) = tone(&rt_s[win], f);
        let wrap = |d: f64| (d.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        // Lt gets −j·0.8717·Ls: 90° behind the direct path; Rt gets +j·0.4899·Ls.
        let d_lt = wrap(ps - pc);
        let d_rt = wrap(pr - pc);
        assert!(
            (d_lt + 90.0).abs() <= 5.0,
            "{f} Hz: Ls in Lt at {d_lt:.2}° from C"
        );
        assert!(
            (d_rt - 90.0).abs() <= 5.0,
            "{f} Hz: Ls in Rt at {d_rt:.2}° from C"
        );
        near(
            as_ / ac,
            0.8717 / std::f64::consts::FRAC_1_SQRT_2,
            0.01,
            "Ls/C level in Lt",
        );
        near(
            ar / ac,
            0.4899 / std::f64::consts::FRAC_1_SQRT_2,
            0.01,
            "Ls/C level in Rt",
        );
    }
}

fn noise(frames: usize, seed: u64) -> Vec<f32> {
    let mut x = seed;
    (0..frames)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f64 / (1u64 << 24) as f64 - 0.5) as f32
        })
        .collect()
}

#[test]
fn block_size_independent_and_lo_ro_equals_the_matrix() {
    let from = layout("7.1.4");
    let frames = 5000;
    let sig: Vec<Vec<f32>> = (0..12).map(|i| noise(frames, i as u64 + 1)).collect();
    let input: Vec<&[f32]> = sig.iter().map(|v| &v[..]).collect();
    for cfg in [FoldDownConfig::default(), lt_rt()] {
        let mut whole = FoldDown::new(&from, &layout("2.0"), &cfg, FS, frames).unwrap();
        let reference = run(&mut whole, &input, frames);
        for block in [1usize, 7, 64, 480, 1024] {
            // max_block_frames smaller than a call is processed in pieces too.
            let mut fold = FoldDown::new(&from, &layout("2.0"), &cfg, FS, 300).unwrap();
            let mut out = [vec![0.0f32; frames], vec![0.0f32; frames]];
            let mut start = 0;
            while start < frames {
                let end = (start + block).min(frames);
                let ins: Vec<&[f32]> = input.iter().map(|c| &c[start..end]).collect();
                let [a, b] = &mut out;
                fold.process(&ins, &mut [&mut a[start..end], &mut b[start..end]]);
                start = end;
            }
            assert_eq!(out, reference, "{:?} block {block}", cfg.kind);
        }
        if cfg.kind == FoldKind::LoRo {
            let m = whole.matrix();
            for (o, out) in reference.iter().enumerate() {
                for n in (0..frames).step_by(97) {
                    let want: f64 = (0..12).map(|i| m[o][i] * sig[i][n] as f64).sum();
                    near(out[n] as f64, want, 1e-6, "Lo/Ro = matrix · input");
                }
            }
        } else {
            assert!(whole.quadrature_matrix().is_some());
        }
    }
}

#[test]
fn process_never_allocates() {
    let from = layout("9.1.6");
    let frames = 512;
    let sig: Vec<Vec<f32>> = (0..16).map(|i| noise(frames, i as u64 + 7)).collect();
    let input: Vec<&[f32]> = sig.iter().map(|v| &v[..]).collect();
    for cfg in [FoldDownConfig::default(), lt_rt()] {
        let mut fold = FoldDown::new(&from, &layout("2.0"), &cfg, FS, 256).unwrap();
        let mut a = vec![0.0f32; frames];
        let mut b = vec![0.0f32; frames];
        COUNT.with(|c| c.set(0));
        ARMED.with(|x| x.set(true));
        for _ in 0..4 {
            fold.process(&input, &mut [&mut a[..], &mut b[..]]);
        }
        fold.reset();
        ARMED.with(|x| x.set(false));
        assert_eq!(COUNT.with(|c| c.get()), 0, "{:?} allocated", cfg.kind);
        assert!(a.iter().any(|&v| v != 0.0));
    }
}
