//! Objects as ITU-R BS.2127 renders them, end to end (ADM → Scene → engine → file): one
//! ADM document per object feature (`tests/data/bs2127_objects/*.xml`: extent, Cartesian
//! points and extent, divergence, channelLock, zoneExclusion, screenRef, screenEdgeLock,
//! block gain, jumpPosition with interpolationLength, diffuse) rendered by halo to 7.1.4
//! and compared with EAR 2.1.0's render to 4+7+0 (`ear.json`, made by
//! `tools/reference/bs2127_objects.py`): the output samples of a constant input, i.e. the
//! gains, at fixed frames inside blocks and through the interpolation (BS.2127 interpolates
//! gains, not positions), and for the diffuse case the channel energies of noise.
//!
//! The programme-level cases (`ear_programme.json`, same script): a programme with its own
//! reference screen (audioProgrammeReferenceScreen, polar and Cartesian) and block
//! importance under EAR's importance filter. The per-block cases (`ear_perblock.json`):
//! blocks that change channelLock, zoneExclusion, screenRef, screenEdgeLock and the
//! divergence range.
//!
//! Then properties of the rendered gains: power, left/right symmetry and continuity.

mod common;
use halo::drivers::exchange;
use halo::drivers::render::{self, RenderOptions};
use halo::formats::io::{WavReader, WriteFormat};
use halo::scene::layout::Layout;
use halo::scene::mix::{OutputSpec, Scene};
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bs2127_objects");
const FRAMES: usize = 48000;
const RATE: u32 = 48000;
/// |Δg| allowed on every sampled gain.
const GAIN_TOLERANCE: f64 = 1e-4;
/// Per-channel energy tolerance of the diffuse case, dB.
const DIFFUSE_TOLERANCE_DB: f64 = 0.5;

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DATA}/ear.json")).unwrap()).unwrap()
}

/// The test noise of tests/adm_corpus.rs (track 0), uniform in [-0.25, 0.25).
fn noise(frames: usize) -> Vec<f32> {
    (0..frames as u32)
        .map(|i| {
            let mut z = i.wrapping_mul(0x9E37_79B1);
            z ^= z >> 16;
            z = z.wrapping_mul(0x7FEB_352D);
            z ^= z >> 15;
            z = z.wrapping_mul(0x846C_A68B);
            z ^= z >> 16;
            ((f64::from(z) / 4_294_967_296.0 - 0.5) * 0.5) as f32
        })
        .collect()
}

/// A one-track BW64 with the case's axml, written to `dir`.
fn master(xml: &str, samples: &[f32], dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("in.wav");
    common::one_object_master(&path, xml, samples, RATE);
    path
}

/// halo's 7.1.4 render of a scene: the channels by BS.2051 name, each all its samples.
fn render_scene(mut scene: Scene, dir: &Path) -> Vec<(String, Vec<f32>)> {
    let layout = Layout::builtin("7.1.4").unwrap();
    scene.outputs = vec![OutputSpec::Speakers {
        layout: layout.clone(),
        chain: Vec::new(),
        target: None,
    }];
    let mut opts = RenderOptions::new(dir);
    opts.format = WriteFormat::F32;
    opts.threads = 1;
    let report = render::render(&scene, &mut opts).unwrap();
    let mut r = WavReader::open(&report.outputs[0].file).unwrap();
    let n = r.info().channels;
    let mut all = Vec::new();
    let mut buf = vec![0.0f32; n * 4096];
    loop {
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        all.extend_from_slice(&buf[..got * n]);
    }
    layout
        .wav_order()
        .into_iter()
        .enumerate()
        .map(|(k, i)| {
            (
                layout.channels[i].name.clone(),
                all.iter().skip(k).step_by(n).copied().collect(),
            )
        })
        .collect()
}

fn render_case(case: &str, samples: &[f32]) -> Vec<(String, Vec<f32>)> {
    let xml = std::fs::read_to_string(format!("{DATA}/{case}.xml")).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("bs2127_objects")
        .join(case);
    let _ = std::fs::remove_dir_all(&dir);
    let path = master(&xml, samples, &dir);
    let m = exchange::read_master(&path, None).unwrap();
    assert!(
        m.warnings.is_empty(),
        "{case}: warnings {:?} (every feature is rendered)",
        m.warnings
    );
    // The feature documents give every block the same controls: no control changes, so
    // the render is that of the first block's controls, as before per-block controls.
    if !case.starts_with("perblock") {
        assert!(
            m.scene
                .objects
                .iter()
                .all(|o| o.controls.changes.is_empty()),
            "{case}: control changes"
        );
    }
    render_scene(m.scene, &dir)
}

fn channel<'a>(out: &'a [(String, Vec<f32>)], name: &str) -> &'a [f32] {
    &out.iter().find(|c| c.0 == name).unwrap().1
}

#[test]
fn object_features_give_ears_gains() {
    let r = reference();
    let labels: Vec<String> = r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let level = r["level"].as_f64().unwrap();
    let frames: Vec<usize> = r["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (case, fig) in r["cases"].as_object().unwrap() {
        let Some(gains) = fig.get("gains") else {
            continue;
        };
        let out = render_case(case, &vec![level as f32; FRAMES]);
        for (s, row) in frames.iter().zip(gains.as_array().unwrap()) {
            for (label, want) in labels.iter().zip(row.as_array().unwrap()) {
                let want = want.as_f64().unwrap();
                let got = f64::from(channel(&out, label)[*s]) / level;
                checked += 1;
                if (got - want).abs() > GAIN_TOLERANCE {
                    failures.push(format!("{case} frame {s} {label}: {got:.6}, EAR {want:.6}"));
                }
            }
        }
    }
    println!("{checked} gains checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The programme-level cases (`ear_programme.json`): a programme with its own reference
/// screen (polar and Cartesian, with polar and Cartesian screenRef objects, and
/// screenEdgeLock), and block importance at thresholds 3, 5 and 8 (EAR's
/// `filter_by_importance`; halo's `--min-importance`).
#[test]
fn programme_screen_and_block_importance_give_ears_gains() {
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DATA}/ear_programme.json")).unwrap(),
    )
    .unwrap();
    let labels: Vec<&str> = r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let level = r["level"].as_f64().unwrap();
    let frames: Vec<usize> = r["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (case, fig) in r["cases"].as_object().unwrap() {
        let file = fig.get("file").and_then(|f| f.as_str()).unwrap_or(case);
        let xml = std::fs::read_to_string(format!("{DATA}/{file}.xml")).unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("bs2127_objects")
            .join(case.replace('@', "_at_"));
        let _ = std::fs::remove_dir_all(&dir);
        let path = master(&xml, &vec![level as f32; FRAMES], &dir);
        let mut m = exchange::read_master(&path, None).unwrap();
        assert!(m.warnings.is_empty(), "{case}: warnings {:?}", m.warnings);
        if let Some(t) = fig.get("min_importance") {
            m.scene.mute_below_importance(t.as_u64().unwrap() as u8);
        }
        let out = render_scene(m.scene, &dir);
        for (s, row) in frames.iter().zip(fig["gains"].as_array().unwrap()) {
            for (label, want) in labels.iter().zip(row.as_array().unwrap()) {
                let want = want.as_f64().unwrap();
                let got = f64::from(channel(&out, label)[*s]) / level;
                checked += 1;
                if (got - want).abs() > GAIN_TOLERANCE {
                    failures.push(format!("{case} frame {s} {label}: {got:.6}, EAR {want:.6}"));
                }
            }
        }
    }
    println!("{checked} gains checked");
    assert!(checked >= 8 * 12 * 8, "{checked} gains checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The per-block cases (`ear_perblock.json`): blocks that change channelLock (on, off,
/// maxDistance; polar and Cartesian), zoneExclusion (added with a jump, swapped, removed),
/// screenRef (off and on, under a programme reference screen), screenEdgeLock and the
/// divergence range, with interpolationLength 0.1 s, 0 and the whole block; EAR renders
/// each block with its own values and interpolates the gains, sampled before, at,
/// through and after the change.
#[test]
fn per_block_controls_give_ears_gains() {
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DATA}/ear_perblock.json")).unwrap(),
    )
    .unwrap();
    let labels: Vec<&str> = r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let level = r["level"].as_f64().unwrap();
    let frames: Vec<usize> = r["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut changed = 0;
    let mut worst = 0.0f64;
    for (case, fig) in r["cases"].as_object().unwrap() {
        let out = render_case(case, &vec![level as f32; FRAMES]);
        let rows = fig["gains"].as_array().unwrap();
        // Every case changes the gains between its blocks.
        let first = rows[0].as_array().unwrap();
        let last = rows[rows.len() - 1].as_array().unwrap();
        if first
            .iter()
            .zip(last)
            .any(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() > 0.1)
        {
            changed += 1;
        }
        for (s, row) in frames.iter().zip(rows) {
            for (label, want) in labels.iter().zip(row.as_array().unwrap()) {
                let want = want.as_f64().unwrap();
                let got = f64::from(channel(&out, label)[*s]) / level;
                checked += 1;
                worst = worst.max((got - want).abs());
                if (got - want).abs() > GAIN_TOLERANCE {
                    failures.push(format!("{case} frame {s} {label}: {got:.6}, EAR {want:.6}"));
                }
            }
        }
    }
    println!("{checked} gains checked, largest |Δg| {worst:.2e}");
    assert_eq!(changed, 11, "cases whose gains change between blocks");
    assert_eq!(checked, 11 * 10 * 12, "{checked} gains checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn diffuse_energies_match_ear() {
    let r = reference();
    let labels = r["labels"].as_array().unwrap();
    let want = r["cases"]["diffuse"]["energy_db"].as_array().unwrap();
    let out = render_case("diffuse", &noise(FRAMES));
    let total: f64 = want
        .iter()
        .map(|v| 10f64.powf(v.as_f64().unwrap() / 10.0))
        .sum();
    for (label, want) in labels.iter().zip(want) {
        let (label, want) = (label.as_str().unwrap(), want.as_f64().unwrap());
        let e: f64 = channel(&out, label)
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum();
        let got = 10.0 * e.max(1e-30).log10();
        // Channels 40 dB under the total are only checked to stay that quiet.
        if want.max(got) < 10.0 * total.log10() - 40.0 {
            continue;
        }
        assert!(
            (got - want).abs() < DIFFUSE_TOLERANCE_DB,
            "{label}: {got:.2} dB, EAR {want:.2} dB"
        );
    }
}

// ---- Properties of the rendered gains (the engine, 7.1.4) ----

use halo::engine::{Engine, EngineConfig, ObjectConfig, OutputConfig};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::mix::{ExclusionZone, Extent, ObjectControls, ScreenEdge, Snap};
use halo::spatial::binaural::Distance;

fn object(position: Automation<Position>, controls: ObjectControls) -> ObjectConfig {
    ObjectConfig {
        gain_db: Automation::constant(0.0),
        position,
        size: Automation::constant(0.0),
        mute: false,
        binaural_bypass: false,
        binaural_distance: Distance::Mid,
        controls,
    }
}

/// One object through the engine to 7.1.4 in blocks of `block`; the channels in layout
/// order (latency removed).
fn engine_render(obj: ObjectConfig, input: &[f32], block: usize) -> Vec<Vec<f32>> {
    let layout = Layout::builtin("7.1.4").unwrap();
    let mut e = Engine::new(EngineConfig {
        sample_rate: RATE,
        max_block_frames: block,
        objects: vec![obj],
        beds: Vec::new(),
        outputs: vec![OutputConfig::speakers(layout.clone())],
    })
    .unwrap();
    let latency = e.latency();
    let total = input.len() + latency;
    let mut out = vec![Vec::with_capacity(total); layout.num_channels()];
    let mut pos = 0;
    while pos < total {
        let n = block.min(total - pos);
        for (k, x) in e.object_input(0)[..n].iter_mut().enumerate() {
            *x = input.get(pos + k).copied().unwrap_or(0.0);
        }
        e.process(n);
        for (o, ch) in out.iter_mut().zip(e.output(0)) {
            o.extend_from_slice(&ch[..n]);
        }
        pos += n;
    }
    out.into_iter().map(|c| c[latency..].to_vec()).collect()
}

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// The controls the properties are tried with (no diffuse: see `diffuse_keeps_energy`).
fn control_sets() -> Vec<(&'static str, ObjectControls)> {
    let ext = |w, h, d| {
        Some(Automation::constant(Extent {
            width: w,
            height: h,
            depth: d,
        }))
    };
    let base = ObjectControls::default();
    vec![
        (
            "extent",
            ObjectControls {
                extent: ext(70.0, 30.0, 0.3),
                ..base.clone()
            },
        ),
        (
            "cartesian extent",
            ObjectControls {
                extent: ext(0.6, 0.4, 0.8),
                ..base.clone()
            },
        ),
        (
            "divergence",
            ObjectControls {
                divergence: Automation::constant(0.6),
                divergence_range: Some(40.0),
                ..base.clone()
            },
        ),
        (
            "snap",
            ObjectControls {
                snap: Some(Snap {
                    max_distance: Some(0.5),
                }),
                ..base.clone()
            },
        ),
        (
            "zones",
            ObjectControls {
                zones: vec![
                    ExclusionZone::Speaker("M+030".into()),
                    ExclusionZone::Polar {
                        min_azimuth_deg: 130.0,
                        max_azimuth_deg: 140.0,
                        min_elevation_deg: -5.0,
                        max_elevation_deg: 5.0,
                    },
                    ExclusionZone::Cartesian {
                        min_x: 0.5,
                        max_x: 1.0,
                        min_y: 0.5,
                        max_y: 1.0,
                        min_z: 0.5,
                        max_z: 1.0,
                    },
                ],
                ..base.clone()
            },
        ),
        (
            "screen",
            ObjectControls {
                screen_ref: true,
                screen_edge_lock: vec![ScreenEdge::Top],
                ..base
            },
        ),
    ]
}

/// The control set mirrored left/right (zones and edge locks).
fn mirrored(c: &ObjectControls) -> ObjectControls {
    let zones = c
        .zones
        .iter()
        .map(|z| match z {
            ExclusionZone::Speaker(n) => ExclusionZone::Speaker(mirror_name(n)),
            ExclusionZone::Polar {
                min_azimuth_deg,
                max_azimuth_deg,
                min_elevation_deg,
                max_elevation_deg,
            } => ExclusionZone::Polar {
                min_azimuth_deg: -max_azimuth_deg,
                max_azimuth_deg: -min_azimuth_deg,
                min_elevation_deg: *min_elevation_deg,
                max_elevation_deg: *max_elevation_deg,
            },
            ExclusionZone::Cartesian {
                min_x,
                max_x,
                min_y,
                max_y,
                min_z,
                max_z,
            } => ExclusionZone::Cartesian {
                min_x: -max_x,
                max_x: -min_x,
                min_y: *min_y,
                max_y: *max_y,
                min_z: *min_z,
                max_z: *max_z,
            },
        })
        .collect();
    let screen_edge_lock = c
        .screen_edge_lock
        .iter()
        .map(|e| match e {
            ScreenEdge::Left => ScreenEdge::Right,
            ScreenEdge::Right => ScreenEdge::Left,
            other => *other,
        })
        .collect();
    ObjectControls {
        zones,
        screen_edge_lock,
        ..c.clone()
    }
}

/// M+030 ↔ M-030; M+000, M+180 and the LFE stay.
fn mirror_name(n: &str) -> String {
    if n.ends_with("000") || n.ends_with("180") {
        return n.to_string();
    }
    n.chars()
        .map(|c| match c {
            '+' => '-',
            '-' => '+',
            c => c,
        })
        .collect()
}

fn random_position(seed: &mut u64) -> Position {
    if lcg(seed) < 0.5 {
        Position::Polar {
            azimuth_deg: 360.0 * lcg(seed) - 180.0,
            elevation_deg: 120.0 * lcg(seed) - 30.0,
            distance: 1.0,
        }
    } else {
        Position::Cartesian {
            x: 2.0 * lcg(seed) - 1.0,
            y: 2.0 * lcg(seed) - 1.0,
            z: lcg(seed),
        }
    }
}

fn mirror_position(p: Position) -> Position {
    match p {
        Position::Polar {
            azimuth_deg,
            elevation_deg,
            distance,
        } => Position::Polar {
            azimuth_deg: -azimuth_deg,
            elevation_deg,
            distance,
        },
        Position::Cartesian { x, y, z } => Position::Cartesian { x: -x, y, z },
    }
}

#[test]
fn rendered_gains_keep_power_and_mirror() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let names: Vec<String> = layout.channels.iter().map(|c| c.name.clone()).collect();
    let mirror_of: Vec<usize> = names
        .iter()
        .map(|n| names.iter().position(|m| *m == mirror_name(n)).unwrap())
        .collect();
    let dc = vec![1.0f32; 256];
    let mut seed = 7;
    for (what, controls) in control_sets() {
        for _ in 0..12 {
            let p = random_position(&mut seed);
            let out = engine_render(object(Automation::constant(p), controls.clone()), &dc, 256);
            let g: Vec<f64> = out.iter().map(|c| f64::from(c[100])).collect();
            let power: f64 = g.iter().map(|x| x * x).sum();
            assert!((power - 1.0).abs() < 1e-5, "{what} at {p:?}: power {power}");
            let m = engine_render(
                object(
                    Automation::constant(mirror_position(p)),
                    mirrored(&controls),
                ),
                &dc,
                256,
            );
            for (c, &mc) in mirror_of.iter().enumerate() {
                let (a, b) = (g[c], f64::from(m[mc][100]));
                assert!(
                    (a - b).abs() < 1e-5,
                    "{what} at {p:?}: {} {a}, mirrored {} {b}",
                    names[c],
                    names[mc]
                );
            }
        }
    }
}

#[test]
fn diffuse_keeps_energy_and_block_size() {
    let frames = 24000;
    let x = noise(frames);
    let controls = ObjectControls {
        diffuse: Automation::new(vec![
            Keyframe {
                frame: 0,
                value: 0.0,
                interpolation: Interpolation::Linear,
            },
            Keyframe {
                frame: 12000,
                value: 1.0,
                interpolation: Interpolation::Step,
            },
        ])
        .unwrap(),
        extent: Some(Automation::constant(Extent {
            width: 40.0,
            height: 0.0,
            depth: 0.0,
        })),
        ..ObjectControls::default()
    };
    let pos = Automation::constant(Position::Polar {
        azimuth_deg: 20.0,
        elevation_deg: 10.0,
        distance: 1.0,
    });
    let out = engine_render(object(pos.clone(), controls.clone()), &x, 512);
    // All diffuse (after 12000): the decorrelation filters are all-pass and the channels'
    // signals uncorrelated, so the power is the input's (within the noise of 12000 frames).
    let ein: f64 = x[12512..].iter().map(|&v| f64::from(v).powi(2)).sum();
    let eout: f64 = out
        .iter()
        .map(|c| {
            c[12512..]
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
        })
        .sum();
    let db = 10.0 * (eout / ein).log10();
    assert!(db.abs() < 0.3, "diffuse power {db:.3} dB off the input's");
    // Bit-identical for other block sizes.
    for block in [64, 77, 1000] {
        let other = engine_render(object(pos.clone(), controls.clone()), &x, block);
        assert_eq!(other, out, "block {block}");
    }
}

#[test]
fn gain_interpolation_is_continuous() {
    // A Cartesian extended object jumping across the room, with BS.2127 gain
    // interpolation over 0.05 s: every channel moves by at most its total change spread
    // over the interpolation (plus rounding), and never through the front.
    let key = |frame, x: f64, interpolation| Keyframe {
        frame,
        value: Position::Cartesian { x, y: 0.2, z: 0.3 },
        interpolation,
    };
    let position = Automation::new(vec![
        key(0, 0.9, Interpolation::Step),
        key(12000, 0.9, Interpolation::Linear),
        key(14400, -0.9, Interpolation::Step),
    ])
    .unwrap();
    let controls = ObjectControls {
        extent: Some(Automation::constant(Extent {
            width: 0.3,
            height: 0.3,
            depth: 0.3,
        })),
        interpolate_gains: true,
        ..ObjectControls::default()
    };
    let out = engine_render(object(position, controls), &vec![1.0; 20000], 300);
    for ch in &out {
        let (a, b) = (ch[11000], ch[15000]);
        let bound = (b - a).abs() / 2400.0 + 1e-6;
        for w in ch.windows(2) {
            assert!((w[1] - w[0]).abs() <= bound, "{} > {bound}", w[1] - w[0]);
        }
        // Linear in gains: the midpoint is the mean of the ends.
        assert!((ch[13200] - (a + b) / 2.0).abs() < 1e-5);
    }
}
