//! Acceptance tests for `halo::measure::loudness`: EBU Tech 3341 / 3342 cases, generated here from
//! their parametric definitions (1 kHz sines at 48 kHz, levels in dBFS peak), and a 7.1.4
//! channel-by-channel weight check derived from BS.1770-4's own formula.

use halo::measure::loudness::{LoudnessError, LoudnessReport, Meter, Target, measure_interleaved};
use halo::scene::layout::Layout;
use std::f64::consts::PI;

const FS: u32 = 48_000;

fn db_to_amp(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// A 1 kHz sine whose peak level follows `segments` (dBFS, seconds), phase-continuous.
fn sine_segments(segments: &[(f64, f64)]) -> Vec<f32> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for &(db, secs) in segments {
        let a = db_to_amp(db);
        let frames = (secs * FS as f64).round() as usize;
        for _ in 0..frames {
            out.push((a * (2.0 * PI * 1000.0 * n as f64 / FS as f64).sin()) as f32);
            n += 1;
        }
    }
    out
}

fn stereo() -> Layout {
    Layout::builtin("2.0").unwrap()
}

/// Meters `signal` in every channel listed in `gains_db` (per-channel offsets, `None` =
/// silent) and returns the report.
fn meter_channels(layout: &Layout, chans: &[Option<&[f32]>]) -> LoudnessReport {
    let frames = chans.iter().flatten().map(|c| c.len()).max().unwrap();
    let silent = vec![0.0f32; frames];
    let planar: Vec<&[f32]> = chans.iter().map(|c| c.unwrap_or(&silent)).collect();
    let mut m = Meter::new(layout, FS).unwrap();
    m.process_planar(&planar).unwrap();
    m.report()
}

fn stereo_report(sig: &[f32]) -> LoudnessReport {
    meter_channels(&stereo(), &[Some(sig), Some(sig)])
}

fn near(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:.3}, want {want:.3} ± {tol}"
    );
}

#[test]
fn tech3341_case1_and_2_steady_sines() {
    for (db, want) in [(-23.0, -23.0), (-33.0, -33.0)] {
        let sig = sine_segments(&[(db, 20.0)]);
        let mut m = Meter::new(&stereo(), FS).unwrap();
        m.process_planar(&[&sig, &sig]).unwrap();
        near(m.momentary_lufs(), want, 0.1, "M");
        near(m.short_term_lufs(), want, 0.1, "S");
        let r = m.report();
        near(r.integrated_lufs, want, 0.1, "I");
        near(r.max_momentary_lufs, want, 0.1, "max M");
        near(r.max_short_term_lufs, want, 0.1, "max S");
        // A steady sine has no loudness range.
        assert!(r.range_lu < 0.5, "LRA {}", r.range_lu);
        near(r.sample_peak_dbfs, db, 0.01, "sample peak");
    }
}

#[test]
fn tech3341_case3_4_5_gating() {
    let cases: [&[(f64, f64)]; 3] = [
        &[(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)],
        &[
            (-72.0, 10.0),
            (-36.0, 10.0),
            (-23.0, 60.0),
            (-36.0, 10.0),
            (-72.0, 10.0),
        ],
        &[(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)],
    ];
    for (k, segs) in cases.iter().enumerate() {
        let r = stereo_report(&sine_segments(segs));
        near(r.integrated_lufs, -23.0, 0.1, &format!("case {}", k + 3));
    }
}

fn five_oh() -> Layout {
    Layout::parse(
        r#"(name: "5.0", channels: [
            (label: "L", azimuth: 30, elevation: 0),
            (label: "R", azimuth: -30, elevation: 0),
            (label: "C", azimuth: 0, elevation: 0),
            (label: "Ls", azimuth: 110, elevation: 0),
            (label: "Rs", azimuth: -110, elevation: 0),
        ])"#,
        "5.0 (test)",
    )
    .unwrap()
}

#[test]
fn tech3341_case6_surround_weights_50_and_51() {
    let lr = sine_segments(&[(-28.0, 20.0)]);
    let c = sine_segments(&[(-24.0, 20.0)]);
    let s = sine_segments(&[(-30.0, 20.0)]);
    let r = meter_channels(
        &five_oh(),
        &[Some(&lr), Some(&lr), Some(&c), Some(&s), Some(&s)],
    );
    near(r.integrated_lufs, -23.0, 0.1, "case 6 as 5.0");
    // 5.1 with a silent LFE reads the same.
    let r51 = meter_channels(
        &Layout::builtin("5.1").unwrap(),
        &[Some(&lr), Some(&lr), Some(&c), None, Some(&s), Some(&s)],
    );
    near(r51.integrated_lufs, -23.0, 0.1, "case 6 as 5.1");
    // An LFE that is not silent is still excluded.
    let r51 = meter_channels(
        &Layout::builtin("5.1").unwrap(),
        &[Some(&lr), Some(&lr), Some(&c), Some(&c), Some(&s), Some(&s)],
    );
    near(r51.integrated_lufs, -23.0, 0.1, "case 6 as 5.1, loud LFE");
    assert_eq!(r51.true_peak_per_channel_dbtp.len(), 6);
}

#[test]
fn tech3341_case9_short_term_constant() {
    let mut segs = Vec::new();
    while segs.len() < 14 {
        segs.push((-20.0, 1.34));
        segs.push((-30.0, 1.66));
    }
    let sig = sine_segments(&segs);
    let sig = &sig[..20 * FS as usize];
    let mut m = Meter::new(&stereo(), FS).unwrap();
    let step = FS as usize / 10;
    for (k, chunk) in sig.chunks(step).enumerate() {
        m.process_planar(&[chunk, chunk]).unwrap();
        if (k + 1) * step >= 3 * FS as usize {
            near(
                m.short_term_lufs(),
                -23.0,
                0.1,
                &format!("S at {:.1} s", (k + 1) as f64 * 0.1),
            );
        }
    }
    near(m.report().max_short_term_lufs, -23.0, 0.1, "max S");
}

#[test]
fn tech3341_case12_momentary_constant() {
    let mut segs = Vec::new();
    while segs.len() < 50 {
        segs.push((-20.0, 0.18));
        segs.push((-30.0, 0.22));
    }
    let sig = sine_segments(&segs);
    let mut m = Meter::new(&stereo(), FS).unwrap();
    let step = FS as usize / 50; // poll every 20 ms, finer than the meter's 100 ms
    for (k, chunk) in sig.chunks(step).enumerate() {
        m.process_planar(&[chunk, chunk]).unwrap();
        if (k + 1) * step >= 2 * FS as usize / 5 {
            near(
                m.momentary_lufs(),
                -23.0,
                0.1,
                &format!("M at {:.2} s", (k + 1) as f64 * 0.02),
            );
        }
    }
    near(m.report().max_momentary_lufs, -23.0, 0.1, "max M");
}

/// Tech 3341 cases 15–19: sines at fs/4, fs/6, fs/8 with given phase and amplitude.
#[test]
fn tech3341_true_peak_cases_15_to_19() {
    let cases = [
        (15, 4.0, 0.0f64, 0.5, -6.0),
        (16, 4.0, 45.0, 0.5, -6.0),
        (17, 6.0, 60.0, 0.5, -6.0),
        (18, 8.0, 67.5, 0.5, -6.0),
        (19, 4.0, 45.0, 1.41, 3.0),
    ];
    for (case, div, phase_deg, amp, want) in cases {
        // The cases define steady sines: a 20 ms raised-cosine fade-in keeps the onset
        // step (whose band-limited reconstruction really overshoots) out of the reading.
        let fade = FS as usize / 50;
        let sig: Vec<f32> = (0..FS as usize)
            .map(|n| {
                let env = if n < fade {
                    0.5 - 0.5 * (PI * n as f64 / fade as f64).cos()
                } else {
                    1.0
                };
                let phase = phase_deg.to_radians();
                (env * amp * (2.0 * PI * n as f64 / div + phase).sin()) as f32
            })
            .collect();
        let r = stereo_report(&sig);
        let tp = r.true_peak_dbtp;
        assert!(
            (want - 0.4..=want + 0.2).contains(&tp),
            "case {case}: true peak {tp:.3} dBTP, want {want} (-0.4/+0.2)"
        );
        assert_eq!(r.true_peak_per_channel_dbtp.len(), 2);
        // Independent check of the sample peak: the largest generated sample.
        let sp = sig.iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64));
        near(r.sample_peak_dbfs, 20.0 * sp.log10(), 1e-6, "sample peak");
    }
}

#[test]
fn tech3342_loudness_range_cases_1_to_4() {
    let cases: [(&[(f64, f64)], f64); 4] = [
        (&[(-20.0, 20.0), (-30.0, 20.0)], 10.0),
        (&[(-20.0, 20.0), (-15.0, 20.0)], 5.0),
        (&[(-40.0, 20.0), (-20.0, 20.0)], 20.0),
        (
            &[
                (-50.0, 20.0),
                (-35.0, 20.0),
                (-20.0, 20.0),
                (-35.0, 20.0),
                (-50.0, 20.0),
            ],
            15.0,
        ),
    ];
    for (k, (segs, want)) in cases.iter().enumerate() {
        let r = stereo_report(&sine_segments(segs));
        near(r.range_lu, *want, 1.0, &format!("Tech 3342 case {}", k + 1));
    }
}

/// |H(e^jω)|² of the BS.1770-4 K-weighting at `f` Hz, from the standard's published
/// 48 kHz biquad coefficients (Table 1 and 2), independent of the meter crate.
fn k_weight_power(f: f64) -> f64 {
    let w = 2.0 * PI * f / 48_000.0;
    let biquad = |b: [f64; 3], a: [f64; 3]| {
        let (re_n, im_n) = (
            b[0] + b[1] * w.cos() + b[2] * (2.0 * w).cos(),
            -b[1] * w.sin() - b[2] * (2.0 * w).sin(),
        );
        let (re_d, im_d) = (
            a[0] + a[1] * w.cos() + a[2] * (2.0 * w).cos(),
            -a[1] * w.sin() - a[2] * (2.0 * w).sin(),
        );
        (re_n * re_n + im_n * im_n) / (re_d * re_d + im_d * im_d)
    };
    biquad(
        [1.53512485958697, -2.69169618940638, 1.19839281085285],
        [1.0, -1.69065929318241, 0.73248077421585],
    ) * biquad([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])
}

/// Each 7.1.4 channel alone with a −23 dBFS 1 kHz sine. BS.1770-4:
/// L = −0.691 + 10·log10(Σ G_i·z_i), z_i the mean square of the K-weighted channel.
/// A sine of peak A has mean square A²/2, and the K filter multiplies it by |H(1 kHz)|²
/// (+0.69 dB — the reason the −0.691 offset exists). So one channel of weight G reads
/// −0.691 + 10·log10(G·|H|²·A²/2) ≈ −26.01 LUFS for G = 1 (−23 − 3.01: half the power of
/// Tech 3341 case 1, which has the sine in two channels) and ≈ −24.52 for G = 1.41.
#[test]
fn each_714_channel_alone_reads_its_weight() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let sig = sine_segments(&[(-23.0, 5.0)]);
    let a = db_to_amp(-23.0);
    let h2 = k_weight_power(1000.0);
    near(10.0 * h2.log10(), 0.691, 0.01, "K-filter gain at 1 kHz");
    let weights = Meter::channel_weights(&layout);
    for (i, ch) in layout.channels.iter().enumerate() {
        let mut chans: Vec<Option<&[f32]>> = vec![None; layout.num_channels()];
        chans[i] = Some(&sig);
        let r = meter_channels(&layout, &chans);
        if ch.lfe {
            assert!(
                r.integrated_lufs < -70.0,
                "LFE alone reads {} LUFS",
                r.integrated_lufs
            );
            continue;
        }
        let g = if ["Ls", "Rs"].contains(&ch.label.as_str()) {
            1.41
        } else {
            1.0
        };
        assert_eq!(weights[i], g, "{}", ch.label);
        let want = -0.691 + 10.0 * (g * h2 * a * a / 2.0).log10();
        near(r.integrated_lufs, want, 0.05, &ch.label);
        near(r.true_peak_per_channel_dbtp[i], -23.0, 0.2, &ch.label);
    }
}

#[test]
fn interleaved_equals_planar_and_reset_forgets() {
    let l = sine_segments(&[(-20.0, 2.0), (-30.0, 3.0)]);
    let r = sine_segments(&[(-25.0, 5.0)]);
    let planar = meter_channels(&stereo(), &[Some(&l), Some(&r)]);
    let inter: Vec<f32> = l.iter().zip(&r).flat_map(|(&a, &b)| [a, b]).collect();
    let rep = measure_interleaved(&stereo(), FS, &inter).unwrap();
    assert_eq!(planar, rep);
    // Odd block sizes give the same result as one call.
    let mut m = Meter::new(&stereo(), FS).unwrap();
    for chunk in inter.chunks(2 * 1237) {
        m.process_interleaved(chunk).unwrap();
    }
    assert_eq!(m.report(), rep);
    m.reset();
    let empty = m.report();
    assert_eq!(empty.integrated_lufs, f64::NEG_INFINITY);
    assert_eq!(empty.max_momentary_lufs, f64::NEG_INFINITY);
    assert_eq!(empty.true_peak_dbtp, f64::NEG_INFINITY);
    assert!(Target::preset("ebu-r128").unwrap().check(&empty).len() == 1);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut m = Meter::new(&stereo(), FS).unwrap();
    let x = [0.0f32; 10];
    let y = [0.0f32; 9];
    assert!(matches!(
        m.process_planar(&[&x]),
        Err(LoudnessError::PlanarChannels {
            got: 1,
            expected: 2
        })
    ));
    assert!(matches!(
        m.process_planar(&[&x, &y]),
        Err(LoudnessError::PlanarFrames { channel: 1, .. })
    ));
    assert!(matches!(
        m.process_interleaved(&y),
        Err(LoudnessError::InterleavedLength {
            samples: 9,
            channels: 2
        })
    ));
    assert!(matches!(
        Meter::new(&stereo(), 0),
        Err(LoudnessError::SampleRate { .. })
    ));
}
