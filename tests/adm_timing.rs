//! ADM object timing as ITU-R BS.2127 (§7.3, EAR's `InterpretTimingMetadata`) renders it:
//! an object sounds only while one of its blocks is active — not before the first block,
//! after the last, in a gap, or outside the audioObject's `start`/`duration` — blocks are
//! offset by the object's start, and a zero-duration block sets the values the next block
//! interpolates from. Checked on the scene (gain and position keyframes, exact to the
//! sample) and through the engine (silence outside, full level inside, the same output for
//! every block size).

use halo::engine::{Engine, EngineConfig, ObjectConfig, OutputConfig};
use halo::formats::adm::*;
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::scene::mix::Scene;
use halo::spatial::binaural::Distance;
use std::path::PathBuf;

const RATE: u32 = 48000;

fn audio(frames: u64) -> AdmAudio {
    AdmAudio {
        path: PathBuf::from("master.wav"),
        channels: 1,
        sample_rate: RATE,
        frames,
    }
}

/// A one-object document with the audioObject attributes `object_attrs` and the blocks.
fn object_doc(object_attrs: &str, blocks: &str, frames: u64) -> (Scene, Vec<String>) {
    let xml = format!(
        r#"<audioFormatExtended>
<audioProgramme audioProgrammeID="APR_1001" audioProgrammeName="p"><audioContentIDRef>ACO_1001</audioContentIDRef></audioProgramme>
<audioContent audioContentID="ACO_1001" audioContentName="c"><audioObjectIDRef>AO_1001</audioObjectIDRef></audioContent>
<audioObject audioObjectID="AO_1001" audioObjectName="o"{object_attrs}><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
<audioPackFormat audioPackFormatID="AP_00031001" audioPackFormatName="o" typeDefinition="Objects"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_00031001" audioChannelFormatName="o" typeDefinition="Objects">{blocks}</audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef></audioTrackUID>
</audioFormatExtended>"#
    );
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let chna = Chna {
        entries: vec![ChnaEntry {
            track_index: 1,
            uid: "ATU_00000001".into(),
            track_ref: "AC_00031001_00".into(),
            pack_ref: "AP_00031001".into(),
        }],
    };
    to_scene(&doc, &chna, &audio(frames)).unwrap_or_else(|e| panic!("{e}"))
}

/// A block at `azimuth`; rtime/duration in frames at 48 kHz (`None`: left out).
fn block(n: u32, timing: Option<(u64, u64)>, azimuth: f64) -> String {
    let t = |f: u64| format!("00:00:00.{:05}S48000", f);
    let timing = timing.map_or(String::new(), |(r, d)| {
        format!(r#" rtime="{}" duration="{}""#, t(r), t(d))
    });
    format!(
        r#"<audioBlockFormat audioBlockFormatID="AB_00031001_{n:08x}"{timing}><position coordinate="azimuth">{azimuth}</position><position coordinate="elevation">0</position></audioBlockFormat>"#
    )
}

fn silent(db: f64) -> bool {
    db <= SILENT_GAIN_DB
}

/// Which frames the object sounds at (gain above silence), frame by frame.
fn sounding(scene: &Scene, frames: u64) -> Vec<bool> {
    (0..frames)
        .map(|f| !silent(scene.objects[0].gain_db.value_at(f as f64)))
        .collect()
}

fn azimuth_at(scene: &Scene, frame: u64) -> f64 {
    match scene.objects[0].position.value_at(frame as f64) {
        Position::Polar { azimuth_deg, .. } => azimuth_deg,
        p => panic!("{p:?}"),
    }
}

#[test]
fn audio_before_the_first_block_and_after_the_last_is_silent() {
    // EAR's silent_before_after: one block [12, 24).
    let (scene, warnings) = object_doc("", &block(1, Some((12, 12)), 0.0), 48);
    let on = sounding(&scene, 48);
    assert!(on[12..24].iter().all(|&s| s), "{on:?}");
    assert!(on[..12].iter().chain(&on[24..]).all(|&s| !s), "{on:?}");
    assert!(
        !warnings.iter().any(|w| w.contains("gap")),
        "gaps are BS.2127's rule now, not a fix: {warnings:?}"
    );
}

#[test]
fn blocks_are_offset_by_the_object_start_and_end_with_its_duration() {
    // EAR's object_delay: the object starts at 12; blocks [0,12) and [12,24) of it.
    let blocks = block(1, Some((0, 12)), 30.0) + &block(2, Some((12, 12)), -30.0);
    let (scene, _) = object_doc(
        r#" start="00:00:00.00012S48000" duration="00:00:00.00024S48000""#,
        &blocks,
        48,
    );
    let on = sounding(&scene, 48);
    assert!(on[12..36].iter().all(|&s| s), "{on:?}");
    assert!(on[..12].iter().chain(&on[36..]).all(|&s| !s), "{on:?}");
    // Block 1 holds 30° from frame 12; block 2 interpolates from 24 on.
    assert_eq!(azimuth_at(&scene, 12), 30.0);
    assert_eq!(azimuth_at(&scene, 24), 30.0);
    assert!(azimuth_at(&scene, 30) < 30.0 && azimuth_at(&scene, 30) > -30.0);
}

#[test]
fn a_block_without_timing_lasts_the_object() {
    // EAR's timing_on_object: start 12, duration 12, one block without rtime.
    let (scene, _) = object_doc(
        r#" start="00:00:00.00012S48000" duration="00:00:00.00012S48000""#,
        &block(1, None, 0.0),
        48,
    );
    let on = sounding(&scene, 48);
    assert_eq!(on.iter().filter(|&&s| s).count(), 12);
    assert!(on[12..24].iter().all(|&s| s), "{on:?}");
}

#[test]
fn a_gap_between_blocks_is_silent_and_the_next_block_jumps() {
    let blocks = block(1, Some((0, 100)), 30.0) + &block(2, Some((200, 100)), -30.0);
    let (scene, _) = object_doc("", &blocks, 400);
    let on = sounding(&scene, 400);
    assert!(on[..100].iter().all(|&s| s));
    assert!(on[100..200].iter().all(|&s| !s));
    assert!(on[200..300].iter().all(|&s| s));
    assert!(on[300..].iter().all(|&s| !s));
    // After a gap, no interpolation: block 2 is at −30° from its first frame.
    assert_eq!(azimuth_at(&scene, 200), -30.0);
}

#[test]
fn zero_duration_blocks_set_the_value_the_next_block_moves_from() {
    // EAR's zero_size: 30° (zero) → [12,24) to 0°, then −30° (zero) → [24,36) to −110°.
    let blocks = block(1, Some((12, 0)), 30.0)
        + &block(2, Some((12, 12)), 0.0)
        + &block(3, Some((24, 0)), -30.0)
        + &block(4, Some((24, 12)), -110.0);
    let (scene, _) = object_doc("", &blocks, 48);
    let on = sounding(&scene, 48);
    assert!(on[12..36].iter().all(|&s| s), "{on:?}");
    assert!(on[..12].iter().chain(&on[36..]).all(|&s| !s), "{on:?}");
    // Block 2 starts from the zero block's 30°, block 4 from −30°.
    assert_eq!(azimuth_at(&scene, 12), 30.0);
    assert_eq!(azimuth_at(&scene, 24), -30.0);
    // Frame 23 is still on block 2's ramp (11/12 of the way from 30° to 0°).
    assert!((azimuth_at(&scene, 23) - 2.5).abs() < 1e-9);
}

#[test]
fn a_jump_is_exact_to_the_sample() {
    // jumpPosition 1 without interpolationLength: 30° up to frame 99, −30° from 100.
    let jump = r#"<jumpPosition>1</jumpPosition>"#;
    let b2 = block(2, Some((100, 100)), -30.0).replace("<position", &format!("{jump}<position"));
    let (scene, _) = object_doc("", &(block(1, Some((0, 100)), 30.0) + &b2), 200);
    assert_eq!(azimuth_at(&scene, 99), 30.0);
    assert_eq!(azimuth_at(&scene, 100), -30.0);
}

/// The scene's object rendered to 5.0 with `block` frames per call; the output channels.
fn render(scene: &Scene, input: &[f32], block: usize) -> Vec<Vec<f32>> {
    let o = &scene.objects[0];
    let mut engine = Engine::new(EngineConfig {
        sample_rate: RATE,
        max_block_frames: block,
        objects: vec![ObjectConfig {
            gain_db: o.gain_db.clone(),
            position: o.position.clone(),
            size: o.size.clone(),
            mute: false,
            binaural_bypass: false,
            binaural_distance: Distance::Anechoic,
            controls: Default::default(),
        }],
        beds: vec![],
        outputs: vec![OutputConfig::speakers(Layout::builtin("5.0").unwrap())],
    })
    .unwrap();
    let n_out = engine.output_layout(0).num_channels();
    let mut out = vec![Vec::new(); n_out];
    let mut pos = 0;
    while pos < input.len() {
        let n = block.min(input.len() - pos);
        engine.object_input(0)[..n].copy_from_slice(&input[pos..pos + n]);
        engine.process(n);
        for (c, ch) in engine.output(0).iter().enumerate() {
            out[c].extend_from_slice(&ch[..n]);
        }
        pos += n;
    }
    out
}

#[test]
fn the_engine_silences_outside_the_blocks_exactly_for_every_block_size() {
    // Blocks [100, 300) and [400, 1000) of a 1200-frame object with a jump at 600.
    let jump = r#"<jumpPosition>1</jumpPosition>"#;
    let blocks = block(1, Some((100, 200)), 30.0)
        + &block(2, Some((400, 200)), 0.0)
        + &block(3, Some((600, 400)), -30.0).replace("<position", &format!("{jump}<position"));
    let (scene, _) = object_doc("", &blocks, 1200);
    let input = vec![0.5f32; 1200];
    let reference = render(&scene, &input, 1200);
    let energy_at = |out: &[Vec<f32>], f: usize| out.iter().map(|c| c[f] * c[f]).sum::<f32>();
    for f in 0..1200 {
        let inside = (100..300).contains(&f) || (400..1000).contains(&f);
        let e = energy_at(&reference, f);
        if inside {
            // A point source on a speaker: all of the signal on it (power-preserving).
            assert!((e - 0.25).abs() < 1e-4, "frame {f}: energy {e}");
        } else {
            assert!(e < 1e-12, "frame {f}: energy {e}, silent in BS.2127");
        }
    }
    // The jump at 600 is exact: C (0°) up to frame 599, R (−30°) from frame 600 on.
    let layout = Layout::builtin("5.0").unwrap();
    let (c, r) = (
        layout.channel_index("C").unwrap(),
        layout.channel_index("R").unwrap(),
    );
    assert!((reference[c][599] - 0.5).abs() < 1e-6);
    assert!((reference[r][600] - 0.5).abs() < 1e-6);
    for block in [1, 7, 64, 100, 513] {
        let out = render(&scene, &input, block);
        assert_eq!(out, reference, "block size {block}");
    }
}

#[test]
fn a_bed_with_a_time_window_is_silent_outside_it_for_every_block_size() {
    // An HOA bed of an audioObject with start 100 and duration 500 frames (BS.2127: the
    // object sounds only within them): its input is silenced outside [100, 600).
    use halo::engine::BedConfig;
    use halo::spatial::hoa::{HoaFormat, HoaNormalization};
    let layout = Layout::builtin("5.0").unwrap();
    let bed_layout = Layout {
        name: "HOA".into(),
        aliases: vec![],
        channels: vec![layout.channels[0].clone()],
    };
    let render = |block: usize| {
        let mut engine = Engine::new(EngineConfig {
            sample_rate: RATE,
            max_block_frames: block,
            objects: vec![],
            beds: vec![BedConfig {
                name: "amb".into(),
                layout: bed_layout.clone(),
                gain_db: 0.0,
                mute: false,
                binaural_distances: vec![],
                hoa: Some(HoaFormat {
                    channels: vec![(0, 0)],
                    normalization: HoaNormalization::SN3D,
                }),
                active_frames: Some((100, 600)),
            }],
            outputs: vec![OutputConfig::speakers(layout.clone())],
        })
        .unwrap();
        let mut energy = vec![0.0f32; 800];
        let mut pos = 0;
        while pos < 800 {
            let n = block.min(800 - pos);
            engine.bed_input(0, 0)[..n].fill(1.0);
            engine.process(n);
            for ch in engine.output(0) {
                for (e, &x) in energy[pos..pos + n].iter_mut().zip(&ch[..n]) {
                    *e += x * x;
                }
            }
            pos += n;
        }
        energy
    };
    let reference = render(800);
    for (f, &e) in reference.iter().enumerate() {
        if (100..600).contains(&f) {
            // The W channel of a plane wave at unit power (the decoder's normalisation).
            assert!(e > 0.1, "frame {f}: {e}");
        } else {
            assert_eq!(e, 0.0, "frame {f}");
        }
    }
    for block in [1, 7, 64, 333] {
        assert_eq!(render(block), reference, "block size {block}");
    }
}

#[test]
fn hoa_of_a_timed_object_gets_the_object_window() {
    let xml = r#"<audioFormatExtended>
<audioObject audioObjectID="AO_1001" audioObjectName="amb" start="00:00:00.00012S48000" duration="00:00:00.00024S48000"><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
<audioChannelFormat audioChannelFormatID="AC_00041001" audioChannelFormatName="W" typeDefinition="HOA"><audioBlockFormat audioBlockFormatID="AB_00041001_00000001"><order>0</order><degree>0</degree><normalization>N3D</normalization></audioBlockFormat></audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00041001</audioChannelFormatIDRef></audioTrackUID>
</audioFormatExtended>"#;
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let chna = Chna {
        entries: vec![ChnaEntry {
            track_index: 1,
            uid: "ATU_00000001".into(),
            track_ref: "AC_00041001_00".into(),
            pack_ref: String::new(),
        }],
    };
    let (scene, _) = to_scene(&doc, &chna, &audio(48)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scene.beds[0].active_frames, Some((12, 36)));
}
