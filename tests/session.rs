//! The session format: the showcase example parses, and every feature lands in the Scene
//! with the right values (frames, positions, interpolation, defaults).

use halo::dsp::{
    CompressorSettings, DitherSettings, EqBand, EqKind, EqSettings, GainSettings, LimiterSettings,
    ProcessorSettings, WidthSettings,
};
use halo::formats::session::*;
use halo::scene::automation::Interpolation;
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::scene::mix::*;
use std::path::{Path, PathBuf};

const STUDIO: &str = r#"(name: "studio", channels: [
    (label: "L", azimuth: 28, elevation: 0, distance: 2.1),
    (label: "R", azimuth: -31, elevation: 0, distance: 2.0),
    (label: "C", azimuth: 0, elevation: 0, distance: 2.05),
])"#;

fn showcase() -> (Scene, Vec<PathBuf>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/showcase.ron"
    ))
    .expect("showcase example");
    let mut asked = Vec::new();
    let mut read = |p: &Path| {
        asked.push(p.to_path_buf());
        if p == Path::new("proj/rooms/studio.ron") {
            Ok(STUDIO.to_string())
        } else {
            Err("no such file".to_string())
        }
    };
    let scene =
        parse(&text, Path::new("proj/showcase.ron"), &mut read).unwrap_or_else(|e| panic!("{e}"));
    (scene, asked)
}

fn cart(x: f64, y: f64, z: f64) -> Position {
    Position::Cartesian { x, y, z }
}

fn polar(azimuth_deg: f64, elevation_deg: f64, distance: f64) -> Position {
    Position::Polar {
        azimuth_deg,
        elevation_deg,
        distance,
    }
}

fn frames<T: halo::scene::automation::Interpolate>(
    a: &halo::scene::automation::Automation<T>,
) -> Vec<u64> {
    a.keyframes().iter().map(|k| k.frame).collect()
}

fn interps<T: halo::scene::automation::Interpolate>(
    a: &halo::scene::automation::Automation<T>,
) -> Vec<Interpolation> {
    a.keyframes().iter().map(|k| k.interpolation).collect()
}

#[test]
fn showcase_reads_only_its_layout_file_once() {
    let (scene, asked) = showcase();
    // The layout file is resolved against the session's folder.
    assert_eq!(asked, vec![PathBuf::from("proj/rooms/studio.ron")]);
    assert_eq!(scene.origin, PathBuf::from("proj/showcase.ron"));
    assert_eq!(scene.sample_rate, 48000);
    assert_eq!(scene.duration_frames, Some(20 * 48000));
    assert_eq!(scene.objects.len(), 5);
    assert_eq!(scene.beds.len(), 2);
    assert_eq!(scene.outputs.len(), 5);
}

#[test]
fn static_objects() {
    let (scene, _) = showcase();
    let vox = &scene.objects[0];
    assert_eq!(vox.name, "vox");
    assert_eq!(
        vox.source,
        SourceSpec {
            path: "proj/stems/vox.wav".into(),
            channel: None
        }
    );
    assert_eq!(vox.gain_db.keyframes().len(), 1);
    assert_eq!(vox.gain_db.value_at(123.0), -3.0);
    assert_eq!(vox.position.value_at(0.0), cart(0.0, 1.0, 0.0));
    assert_eq!(vox.size.value_at(0.0), 0.0, "size defaults to 0");
    assert!(!vox.mute);
    assert_eq!(vox.binaural, BinauralMode::Mid, "binaural defaults to Mid");
    assert!(vox.is_static());

    let gtr = &scene.objects[1];
    // 1-based in the file, 0-based inside.
    assert_eq!(
        gtr.source,
        SourceSpec {
            path: "proj/stems/gtr_stereo.wav".into(),
            channel: Some(1)
        }
    );
    assert!(gtr.mute);
    assert_eq!(
        gtr.position.value_at(0.0),
        polar(-30.0, 0.0, 1.0),
        "dist defaults to 1"
    );
    assert_eq!(gtr.size.value_at(0.0), 0.2);
    assert_eq!(gtr.gain_db.value_at(0.0), 0.0, "gain defaults to 0 dB");
    assert_eq!(gtr.binaural, BinauralMode::Off);
    assert!(gtr.is_static());
}

#[test]
fn automated_object_frames_and_curves() {
    let (scene, _) = showcase();
    let fly = &scene.objects[2];
    assert!(!fly.is_static());
    assert_eq!(fly.binaural, BinauralMode::Near);
    assert_eq!(frames(&fly.position), vec![0, 192000, 288000, 384000]);
    assert_eq!(
        interps(&fly.position),
        vec![
            Interpolation::Smooth,
            Interpolation::Linear,
            Interpolation::Step,
            Interpolation::Linear
        ],
        "interp defaults to Linear"
    );
    // Halfway through the smooth segment: smoothstep(0.5) = 0.5.
    assert_eq!(fly.position.value_at(96000.0), cart(0.0, 0.0, 0.5));
    // A quarter of the way: smoothstep(0.25) = 0.15625 of the move (x from -1 to 1).
    let Position::Cartesian { x, .. } = fly.position.value_at(48000.0) else {
        panic!()
    };
    assert!((x - (-1.0 + 2.0 * 0.15625)).abs() < 1e-12, "{x}");
    // Linear segment 4 s → 6 s: z from 1 to 0.5.
    assert_eq!(fly.position.value_at(240000.0), cart(1.0, -1.0, 0.75));
    // Step segment 6 s → 8 s holds, then jumps at 8 s exactly.
    assert_eq!(fly.position.value_at(383999.0), cart(1.0, -1.0, 0.5));
    assert_eq!(fly.position.value_at(384000.0), cart(0.0, 0.0, 1.0));
    assert_eq!(fly.position.value_at(1e9), cart(0.0, 0.0, 1.0));

    // `gain:` (alias of gain_db) with integer times and values.
    assert_eq!(frames(&fly.gain_db), vec![0, 96000]);
    assert_eq!(
        interps(&fly.gain_db),
        vec![Interpolation::Linear, Interpolation::Step]
    );
    assert_eq!(fly.gain_db.value_at(48000.0), -3.0);
    assert_eq!(fly.size.value_at(96000.0), 0.25);

    // Polar keyframes travel the short way round: 170° → −170° passes 180°.
    let orbit = &scene.objects[3];
    assert_eq!(orbit.binaural, BinauralMode::Far);
    assert_eq!(frames(&orbit.position), vec![0, 144000]);
    let Position::Polar {
        azimuth_deg,
        elevation_deg,
        distance,
    } = orbit.position.value_at(72000.0)
    else {
        panic!()
    };
    assert!((azimuth_deg.abs() - 180.0).abs() < 1e-9, "{azimuth_deg}");
    assert!((elevation_deg - 20.0).abs() < 1e-12);
    assert!((distance - 0.75).abs() < 1e-12);
}

#[test]
fn beds() {
    let (scene, _) = showcase();
    let d = &scene.beds[0];
    assert_eq!(d.name, "drums");
    assert_eq!(d.source, PathBuf::from("proj/stems/drums_5.1.wav"));
    assert_eq!(d.layout, Layout::builtin("5.1").unwrap());
    assert_eq!((d.gain_db, d.mute), (0.0, false));
    let r = &scene.beds[1];
    assert_eq!(r.layout.name, "7.1.4", "alias 4+7+0");
    assert_eq!((r.gain_db, r.mute), (-6.0, true));
}

#[test]
fn outputs_chains_and_targets() {
    let (scene, _) = showcase();
    let OutputSpec::Speakers {
        layout,
        chain,
        target,
    } = &scene.outputs[0]
    else {
        panic!()
    };
    assert_eq!(layout.name, "7.1.4");
    assert_eq!(target, &Some(TargetSpec::Preset("atmos-music".into())));
    let band = |kind, freq_hz, gain_db, q| EqBand {
        kind,
        freq_hz,
        gain_db,
        q,
    };
    assert_eq!(
        chain,
        &vec![
            ProcessorSettings::Eq(EqSettings {
                bands: vec![
                    band(EqKind::HighPass, 30.0, 0.0, 0.707),
                    band(EqKind::LowShelf, 120.0, 1.5, 0.707),
                    band(EqKind::Peak, 3000.0, -2.0, 1.4),
                    band(EqKind::HighShelf, 10000.0, 1.0, 0.707),
                    band(EqKind::LowPass, 20000.0, 0.0, 0.5),
                ]
            }),
            ProcessorSettings::Compressor(CompressorSettings {
                threshold_db: -18.0,
                ratio: 2.0,
                knee_db: 6.0,
                attack_ms: 10.0,
                release_ms: 100.0,
                makeup_db: 0.0
            }),
            ProcessorSettings::Gain(GainSettings { gain_db: 1.0 }),
            ProcessorSettings::Limiter(LimiterSettings {
                ceiling_dbtp: -1.0,
                lookahead_ms: 1.5,
                release_ms: 50.0
            }),
        ]
    );

    let OutputSpec::Speakers {
        layout,
        chain,
        target,
    } = &scene.outputs[1]
    else {
        panic!()
    };
    assert_eq!(layout.name, "studio");
    assert_eq!(layout.channels[0].distance_m, Some(2.1));
    assert!(chain.is_empty() && target.is_none());

    let OutputSpec::Binaural {
        hrtf,
        lfe_db,
        chain,
        target,
    } = &scene.outputs[2]
    else {
        panic!()
    };
    assert_eq!(hrtf.as_deref(), Some(Path::new("proj/hrtf/my.sofa")));
    assert_eq!(*lfe_db, Some(-10.0));
    assert_eq!(
        chain,
        &vec![
            ProcessorSettings::Compressor(CompressorSettings {
                threshold_db: -20.0,
                ratio: 1.5,
                knee_db: 10.0,
                attack_ms: 30.0,
                release_ms: 250.0,
                makeup_db: 1.0
            }),
            ProcessorSettings::Limiter(LimiterSettings {
                ceiling_dbtp: -1.5,
                lookahead_ms: 5.0,
                release_ms: 80.0
            }),
            ProcessorSettings::Dither(DitherSettings { bits: 16 }),
        ]
    );
    assert_eq!(
        target,
        &Some(TargetSpec::Custom {
            integrated_lufs: Some(-16.0),
            tolerance_lu: Some(1.0),
            max_integrated_lufs: None,
            true_peak_dbtp: Some(-1.0)
        })
    );

    let OutputSpec::Stereo {
        from,
        fold,
        chain,
        target,
    } = &scene.outputs[3]
    else {
        panic!()
    };
    assert_eq!(from.name, "7.1.4");
    assert_eq!(
        fold,
        &FoldSpec {
            trim_mode: halo::scene::mix::TrimMode::Manual,
            matrix: FoldMatrix::LtRt,
            center_db: -3.0,
            surround_db: -4.5,
            rear_db: -6.0,
            height_db: -6.0,
            lfe_db: Some(-10.0)
        }
    );
    assert_eq!(
        chain,
        &vec![
            ProcessorSettings::Width(WidthSettings { width: 0.9 }),
            ProcessorSettings::Limiter(LimiterSettings {
                ceiling_dbtp: -1.0,
                lookahead_ms: 1.5,
                release_ms: 50.0
            }),
            ProcessorSettings::Dither(DitherSettings { bits: 24 }),
        ]
    );
    assert_eq!(
        target,
        &Some(TargetSpec::Custom {
            integrated_lufs: None,
            tolerance_lu: None,
            max_integrated_lufs: Some(-14.0),
            true_peak_dbtp: Some(-1.0)
        })
    );

    // `Stereo()`: every default.
    assert_eq!(
        scene.outputs[4],
        OutputSpec::Stereo {
            from: Layout::builtin("7.1.4").unwrap(),
            fold: FoldSpec::default(),
            chain: vec![],
            target: None
        }
    );
    assert_eq!(FoldSpec::default().matrix, FoldMatrix::LoRo);
    assert_eq!(FoldSpec::default().lfe_db, None);

    let names: Vec<String> = scene
        .speaker_layouts()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["7.1.4", "studio"]);
}

#[test]
fn minimal_session_defaults_and_rounding() {
    let text = "(sample_rate: 44100, beds: [(name: \"b\", source: \"/abs/b.wav\", layout: \"stereo\")],\n\
                objects: [(name: \"o\", source: \"o.wav\", position: Polar(az: 30),\n\
                size: [(time: 0.00001, value: 0), (time: 0.5000113, value: 1)])])";
    let scene = parse(text, Path::new("s.ron"), &mut |_| Err("unused".into())).unwrap();
    assert_eq!(scene.sample_rate, 44100);
    assert_eq!(scene.duration_frames, None, "default: the longest source");
    assert!(scene.outputs.is_empty());
    // Absolute paths stay; relative ones resolve against the (empty) parent folder.
    assert_eq!(scene.beds[0].source, PathBuf::from("/abs/b.wav"));
    assert_eq!(scene.objects[0].source.path, PathBuf::from("o.wav"));
    assert_eq!(
        scene.objects[0].position.value_at(0.0),
        polar(30.0, 0.0, 1.0)
    );
    // round(t × rate): 0.441 → 0, 22050.498 → 22050.
    assert_eq!(frames(&scene.objects[0].size), vec![0, 22050]);
    assert_eq!(scene.objects[0].gain_db.value_at(0.0), 0.0);
}

#[test]
fn comments_before_items_do_not_shift_lines() {
    let text = "Session(\n  objects: [\n    // the lead vocal\n    /* dry */\n    (name: \"v\", source: \"v.wav\", position: Cart(x: 0, y: 1), size: 2),\n  ],\n)";
    let e = parse(text, Path::new("s.ron"), &mut |_| Err("unused".into())).unwrap_err();
    assert_eq!(e.line(), Some(5), "{e}");
}

#[test]
fn a_layout_file_used_twice_is_read_once() {
    let text = "Session(beds: [(name: \"b\", source: \"b.wav\", layout: \"room.ron\")],\n\
                outputs: [Speakers(layout: \"room.ron\"), Stereo(from: \"room.ron\")])";
    let mut reads = 0;
    let scene = parse(text, Path::new("a/s.ron"), &mut |p: &Path| {
        reads += 1;
        assert_eq!(p, Path::new("a/room.ron"));
        Ok(STUDIO.to_string())
    })
    .unwrap();
    assert_eq!(reads, 1);
    assert_eq!(scene.beds[0].layout.name, "studio");
    assert_eq!(scene.speaker_layouts()[0].name, "studio");
}

/// A session with automation at awkward times (not whole frames at either rate), at
/// `rate`; the times in seconds are returned with it.
fn timed_session(rate: u32) -> (Scene, Vec<f64>) {
    let times = [0.0, 0.25, 1.234_567, 2.000_01, 7.777_777, 12.5];
    let keys = |f: &dyn Fn(usize) -> String| {
        times
            .iter()
            .enumerate()
            .map(|(k, t)| format!("(time: {t}, value: {}, interp: Smooth),", f(k)))
            .collect::<String>()
    };
    let gain = keys(&|k| format!("-{}.5", k));
    let size = keys(&|k| format!("0.{k}"));
    let pos = keys(&|k| format!("Polar(az: {}, el: 10)", 20 * k));
    let text = format!(
        r#"Session(sample_rate: {rate}, duration: 13.333333,
    objects: [(name: "a", source: "a.wav", gain_db: [{gain}], size: [{size}], position: [{pos}]),
              (name: "b", source: "b.wav", position: Cart(x: 0.5, y: 1, z: 0))],
    beds: [(name: "bed", source: "bed.wav", layout: "5.1", gain_db: -2)],
    outputs: [Speakers(layout: "7.1.4", chain: [Eq(bands: [(kind: HighShelf, freq_hz: 3000, gain_db: 2)]),
              Limiter(ceiling_dbtp: -1)]), Binaural()])"#
    );
    let mut read = |_: &Path| Err("no layout files".to_string());
    let scene = parse(&text, Path::new("t/timed.ron"), &mut read).unwrap_or_else(|e| panic!("{e}"));
    (scene, times.to_vec())
}

#[test]
fn retimed_scene_lands_keyframes_at_the_new_rate() {
    let (scene, times) = timed_session(48000);
    for rate in [44100u32, 8000, 96000, 384000, 22050] {
        let r = scene.retimed(rate);
        assert_eq!(r.sample_rate, rate);
        let a = &r.objects[0];
        // The session's frames are already rounded (±0.5 frame at 48 kHz); retiming
        // scales that by the rate ratio and rounds once more: ±1 frame at or below the
        // session rate, ±(ratio/2 + 1/2) above it.
        let tol = (0.5 * (rate as f64 / 48000.0).max(1.0) + 0.5).floor();
        for lane in [frames(&a.gain_db), frames(&a.size), frames(&a.position)] {
            assert_eq!(lane.len(), times.len());
            for (&f, &t) in lane.iter().zip(&times) {
                let want = (t * rate as f64).round();
                assert!(
                    (f as f64 - want).abs() <= tol,
                    "{rate} Hz: keyframe at {t} s on frame {f}, expected {want} ±{tol}"
                );
            }
        }
        // Durations scale (13.333333 s).
        let d = r.duration_frames.unwrap() as f64;
        assert!(
            (d - (13.333333 * rate as f64).round()).abs() <= tol,
            "{rate} Hz: duration {d}"
        );
        // Values, interpolation, sources, beds and outputs are untouched.
        for (x, y) in a
            .gain_db
            .keyframes()
            .iter()
            .zip(scene.objects[0].gain_db.keyframes())
        {
            assert_eq!((x.value, x.interpolation), (y.value, y.interpolation));
        }
        for (x, y) in a
            .position
            .keyframes()
            .iter()
            .zip(scene.objects[0].position.keyframes())
        {
            assert_eq!((x.value, x.interpolation), (y.value, y.interpolation));
        }
        assert_eq!(r.objects[1], scene.objects[1]);
        assert_eq!(r.beds, scene.beds);
        assert_eq!(r.outputs, scene.outputs);
        assert_eq!(r.origin, scene.origin);
        // The same session written at that rate has its keyframes within a frame.
        let (native, _) = timed_session(rate);
        for (x, y) in frames(&a.position)
            .iter()
            .zip(frames(&native.objects[0].position))
        {
            assert!(
                x.abs_diff(y) as f64 <= tol,
                "{rate} Hz: retimed {x}, native {y}"
            );
        }
    }
    // Exact values where the arithmetic is exact: 0.25 s and 12.5 s at 44.1 kHz.
    let r = scene.retimed(44100);
    assert_eq!(frames(&r.objects[0].gain_db)[1], 11025);
    assert_eq!(frames(&r.objects[0].gain_db)[5], 551250);
    // 1.234567 s = frame 59259 at 48 kHz (59259.216 rounded) → 59259 × 0.91875 =
    // 54444.206 → 54444.
    assert_eq!(frames(&scene.objects[0].gain_db)[2], 59259);
    assert_eq!(frames(&r.objects[0].gain_db)[2], 54444);
    // 7.777777 s = frame 373333 at 48 kHz → 342999.69 → 343000 (rounded, not truncated).
    assert_eq!(frames(&scene.objects[0].gain_db)[4], 373333);
    assert_eq!(frames(&r.objects[0].gain_db)[4], 343000);
    assert_eq!(r.duration_frames, Some(588000));
}

#[test]
fn retiming_to_the_same_rate_is_the_identity_and_up_then_down_returns() {
    let (scene, _) = timed_session(48000);
    assert_eq!(scene.retimed(48000), scene);
    // Upsampling never merges frames, so going back down restores every frame exactly.
    let (low, _) = timed_session(44100);
    assert_eq!(low.retimed(48000).retimed(44100), low);
    assert_eq!(low.retimed(192000).retimed(44100), low);
    // A frame exactly half-way rounds up: 1 frame at 48 kHz is 0.5 frames at 24 kHz.
    let text = r#"Session(sample_rate: 48000, duration: 0.0000625,
        objects: [(name: "a", source: "a.wav", position: Cart(x: 0, y: 1, z: 0), gain_db: [(time: 0, value: 0), (time: 0.0000625, value: -6)])])"#;
    let mut read = |_: &Path| Err("no layout files".to_string());
    let s = parse(text, Path::new("t/h.ron"), &mut read).unwrap();
    assert_eq!(frames(&s.objects[0].gain_db), vec![0, 3]);
    assert_eq!(frames(&s.retimed(24000).objects[0].gain_db), vec![0, 2]);
    assert_eq!(s.retimed(24000).duration_frames, Some(2));
    // 3 frames at 48 kHz are 1 frame at 16 kHz.
    assert_eq!(s.retimed(16000).duration_frames, Some(1));
}

#[test]
fn retiming_keeps_keyframes_strictly_increasing_and_durations_positive() {
    // Keyframes one frame apart at 96 kHz all round to frame 0 or 1 at 8 kHz.
    let keys: String = (0..6)
        .map(|k| format!("(time: {}, value: -{k}),", k as f64 / 96000.0))
        .collect();
    let text = format!(
        r#"Session(sample_rate: 96000, duration: 0.00001,
        objects: [(name: "a", source: "a.wav", position: Cart(x: 0, y: 1, z: 0), gain_db: [{keys}])])"#
    );
    let mut read = |_: &Path| Err("no layout files".to_string());
    let s = parse(&text, Path::new("t/d.ron"), &mut read).unwrap();
    assert_eq!(frames(&s.objects[0].gain_db), vec![0, 1, 2, 3, 4, 5]);
    let r = s.retimed(8000);
    // round(k / 12) = 0,0,0,0,0,0 → each pushed one past its predecessor.
    assert_eq!(frames(&r.objects[0].gain_db), vec![0, 1, 2, 3, 4, 5]);
    let values: Vec<f64> = r.objects[0]
        .gain_db
        .keyframes()
        .iter()
        .map(|k| k.value)
        .collect();
    assert_eq!(values, vec![0.0, -1.0, -2.0, -3.0, -4.0, -5.0]);
    // 1 frame at 96 kHz is 1/12 frame at 8 kHz: still one frame.
    assert_eq!(s.duration_frames, Some(1));
    assert_eq!(r.duration_frames, Some(1));
    // A session without a duration keeps none.
    let text =
        r#"Session(objects: [(name: "a", source: "a.wav", position: Cart(x: 0, y: 1, z: 0))])"#;
    let s = parse(text, Path::new("t/n.ron"), &mut read).unwrap();
    assert_eq!(s.retimed(44100).duration_frames, None);
    // Long sessions: a week at 384 kHz, exact in integers.
    let mut long = s.clone();
    long.sample_rate = 384000;
    long.duration_frames = Some(7 * 86400 * 384000);
    assert_eq!(long.retimed(44100).duration_frames, Some(7 * 86400 * 44100));
}

#[test]
fn showcase_bs2127_controls() {
    use halo::scene::mix::{ExclusionZone, ReferenceScreen, Snap};
    let (scene, _) = showcase();
    assert_eq!(
        scene.reference_screen(),
        Some(ReferenceScreen::Polar {
            aspect_ratio: 1.5,
            azimuth_deg: 0.0,
            elevation_deg: 5.0,
            distance: 1.0,
            width_deg: 45.0,
        })
    );
    assert!(scene.objects[0].controls.screen_ref);
    let pad = &scene.objects[4];
    assert_eq!(pad.name, "pad");
    let c = &pad.controls;
    let extent = c.extent.as_ref().expect("extent").value_at(0.0);
    assert_eq!(
        (extent.width, extent.height, extent.depth),
        (40.0, 15.0, 0.0)
    );
    assert_eq!(c.diffuse.value_at(0.0), 0.2);
    assert_eq!(c.divergence.value_at(0.0), 0.3);
    assert_eq!(c.divergence_range, Some(30.0));
    assert_eq!(c.zones, vec![ExclusionZone::Speaker("M+110".into())]);
    assert_eq!(c.importance, 8);
    assert!(c.interpolate_gains);
    assert_eq!(c.changes.len(), 1);
    let change = &c.changes[0];
    assert_eq!((change.ramp_from, change.frame), (456_000, 480_000));
    assert_eq!(
        change.set.snap,
        Some(Snap {
            max_distance: Some(0.5)
        })
    );
    assert!(change.set.zones.is_empty());
    assert_eq!(change.set.divergence_range, Some(30.0));
}
