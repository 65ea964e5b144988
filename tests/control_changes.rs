//! Per-block switched controls (`ObjectControls::changes`: channelLock, zoneExclusion,
//! screenRef, screenEdgeLock and the divergence range as ADM blocks change them), by
//! their properties (EAR's figures are in tests/bs2127_objects.rs): ADM blocks give one
//! change per new set, ramping where the block interpolates; changes that repeat
//! the set in force render bit-identically to the object without them; the render does
//! not depend on the block size; a session with changes survives export → import with
//! the same changes and a bit-identical render; bad changes in a session are refused
//! naming the file, the place and what is allowed.

mod common;
use common::{halo, scratch, wav_samples};
use halo::engine::{Engine, EngineConfig, ObjectConfig, OutputConfig};
use halo::formats::io::{WavSpec, WavWriter, WriteFormat};
use halo::formats::session::{self, SessionError};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::scene::mix::{
    ControlChange, ExclusionZone, ObjectControls, ReferenceScreen, Scene, ScreenEdge, Snap,
    SwitchedControls,
};
use halo::spatial::binaural::Distance;
use std::path::Path;

const RATE: u32 = 48000;
const FRAMES: usize = 48000;

fn key(frame: u64, az: f64, el: f64, interpolation: Interpolation) -> Keyframe<Position> {
    Keyframe {
        frame,
        value: Position::Polar {
            azimuth_deg: az,
            elevation_deg: el,
            distance: 1.0,
        },
        interpolation,
    }
}

/// A position lane as ADM import makes it: a block, a 0.1 s interpolation from 24000 to
/// 28800, and a jump at 36000 (keyed one frame before it).
fn adm_like_path() -> Automation<Position> {
    Automation::new(vec![
        key(0, 20.0, 5.0, Interpolation::Step),
        key(24000, 20.0, 5.0, Interpolation::Linear),
        key(28800, 60.0, 10.0, Interpolation::Step),
        key(35999, 60.0, 10.0, Interpolation::Step),
        key(36000, -40.0, 0.0, Interpolation::Step),
    ])
    .unwrap()
}

fn object(controls: ObjectControls) -> ObjectConfig {
    ObjectConfig {
        gain_db: Automation::constant(0.0),
        position: adm_like_path(),
        size: Automation::constant(0.0),
        mute: false,
        binaural_bypass: false,
        binaural_distance: Distance::Mid,
        controls,
    }
}

/// One object through the engine to 7.1.4 in blocks of `block` (latency removed).
fn render(obj: ObjectConfig, block: usize) -> Vec<Vec<f32>> {
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
    let total = FRAMES + latency;
    let mut out = vec![Vec::with_capacity(total); layout.num_channels()];
    let mut pos = 0;
    while pos < total {
        let n = block.min(total - pos);
        for (k, x) in e.object_input(0)[..n].iter_mut().enumerate() {
            let f = pos + k;
            *x = if f < FRAMES {
                0.5 + 0.25 * ((f as f64) * 0.01).sin() as f32
            } else {
                0.0
            };
        }
        e.process(n);
        for (o, ch) in out.iter_mut().zip(e.output(0)) {
            o.extend_from_slice(&ch[..n]);
        }
        pos += n;
    }
    out.into_iter().map(|c| c[latency..].to_vec()).collect()
}

/// Sets of switched controls that each change the gains of the path above.
fn sets() -> Vec<(&'static str, SwitchedControls)> {
    vec![
        ("none", SwitchedControls::default()),
        (
            "snap",
            SwitchedControls {
                snap: Some(Snap {
                    max_distance: Some(0.3),
                }),
                ..Default::default()
            },
        ),
        (
            "snap any",
            SwitchedControls {
                snap: Some(Snap { max_distance: None }),
                ..Default::default()
            },
        ),
        (
            "zones",
            SwitchedControls {
                zones: vec![
                    ExclusionZone::Speaker("M+030".into()),
                    ExclusionZone::Polar {
                        min_azimuth_deg: 100.0,
                        max_azimuth_deg: 150.0,
                        min_elevation_deg: -10.0,
                        max_elevation_deg: 10.0,
                    },
                ],
                ..Default::default()
            },
        ),
        (
            "screen",
            SwitchedControls {
                screen_ref: true,
                screen_edge_lock: vec![ScreenEdge::Top],
                ..Default::default()
            },
        ),
        (
            "edge",
            SwitchedControls {
                screen_edge_lock: vec![ScreenEdge::Right],
                divergence_range: Some(70.0),
                ..Default::default()
            },
        ),
    ]
}

fn with_changes(
    first: &SwitchedControls,
    changes: Vec<ControlChange>,
    interp: bool,
) -> ObjectControls {
    let mut c = ObjectControls {
        divergence: Automation::constant(0.4),
        interpolate_gains: interp,
        ..ObjectControls::default()
    }
    .with_set(first);
    c.reference_screen = Some(ReferenceScreen::Polar {
        aspect_ratio: 1.25,
        azimuth_deg: 15.0,
        elevation_deg: 8.0,
        distance: 1.5,
        width_deg: 40.0,
    });
    c.changes = changes;
    c
}

/// Changes at the path's own keys (the ramp 24000 → 28800 and the jump at 36000).
fn at_the_keys(a: &SwitchedControls, b: &SwitchedControls) -> Vec<ControlChange> {
    vec![
        ControlChange {
            ramp_from: 24000,
            frame: 28800,
            set: a.clone(),
        },
        ControlChange {
            ramp_from: 36000,
            frame: 36000,
            set: b.clone(),
        },
    ]
}

#[test]
fn changes_repeating_the_set_in_force_render_bit_identically() {
    for (name, set) in sets() {
        for interp in [true, false] {
            let plain = render(object(with_changes(&set, Vec::new(), interp)), 512);
            let repeated = render(
                object(with_changes(&set, at_the_keys(&set, &set), interp)),
                512,
            );
            assert!(
                plain == repeated,
                "{name} (interpolate_gains {interp}): changes to the same set change the render"
            );
        }
    }
}

#[test]
fn changes_change_the_gains_and_not_with_the_block_size() {
    let all = sets();
    for w in all.windows(3) {
        let (first, a, b) = (&w[0].1, &w[1].1, &w[2].1);
        for interp in [true, false] {
            let c = with_changes(first, at_the_keys(a, b), interp);
            let reference = render(object(c.clone()), 4096);
            let plain = render(object(with_changes(first, Vec::new(), interp)), 4096);
            // The changes do something after 28800 (either set differs from the first).
            let late = |r: &[Vec<f32>]| -> Vec<f32> { r.iter().map(|c| c[40000]).collect() };
            assert!(
                late(&reference)
                    .iter()
                    .zip(late(&plain))
                    .any(|(x, y)| (x - y).abs() > 1e-3),
                "{} → {} → {}: the changes change nothing",
                w[0].0,
                w[1].0,
                w[2].0
            );
            // Before the first change's ramp the render is the first set's, sample for sample.
            for (x, y) in reference.iter().zip(&plain) {
                assert_eq!(x[..24000], y[..24000], "{}: before the ramp", w[0].0);
            }
            for block in [1000, 64, 37] {
                let r = render(object(c.clone()), block);
                assert!(
                    r == reference,
                    "{} → {} → {} (interpolate_gains {interp}): block {block} differs from 4096",
                    w[0].0,
                    w[1].0,
                    w[2].0
                );
            }
        }
    }
}

fn parse(text: &str, path: &Path) -> Result<Scene, SessionError> {
    session::parse(text, path, &mut |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
}

fn write_mono(path: &Path, frames: usize) {
    let spec = WavSpec {
        channels: 1,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create(path, spec).unwrap();
    let x: Vec<f32> = (0..frames)
        .map(|f| (0.3 * (f as f64 * 0.013).sin()) as f32)
        .collect();
    w.write(&x).unwrap();
    w.finish().unwrap().commit().unwrap();
}

#[test]
fn session_changes_survive_export_and_import_with_a_bit_identical_render() {
    let dir = scratch("round_trip");
    write_mono(&dir.join("a.wav"), 3 * RATE as usize);
    let text = r#"Session(
    sample_rate: 48000,
    reference_screen: Polar(aspect_ratio: 1.25, az: 15, el: 8, dist: 1.5, width: 40),
    objects: [
        (
            name: "o",
            source: "a.wav",
            position: [
                (time: 0.0, value: Polar(az: 20, el: 5)),
                (time: 1.0, value: Polar(az: 60, el: 10), interp: Step),
                (time: 2.0, value: Polar(az: -30, el: 0)),
            ],
            snap: Within(0.3),
            control_changes: [
                (time: 0.5, zones: [Polar(min_az: 25, max_az: 35)], divergence_range: 30),
                (time: 1.0, ramp_from: 0.9, screen_ref: true, screen_edge_lock: [Top]),
                (time: 1.5, ramp_from: 1.25, snap: Any, zones: [Polar(min_az: 100, max_az: 150, min_el: -10, max_el: 10)]),
                (time: 2.5),
            ],
            divergence: 0.3,
        ),
    ],
    outputs: [Speakers(layout: "7.1.4")],
)
"#;
    let original = dir.join("mix.ron");
    std::fs::write(&original, text).unwrap();
    let a = parse(text, &original).unwrap_or_else(|e| panic!("{e}"));
    let ch = &a.objects[0].controls.changes;
    assert_eq!(
        ch.iter()
            .map(|c| (c.ramp_from, c.frame))
            .collect::<Vec<_>>(),
        [
            (24000, 24000),
            (43200, 48000),
            (60000, 72000),
            (120000, 120000)
        ]
    );
    assert_eq!(ch[3].set, SwitchedControls::default());

    let master = dir.join("master.wav");
    let (code, _, err) = halo(&[
        "export",
        original.to_str().unwrap(),
        "--out",
        master.to_str().unwrap(),
        "--format",
        "f32",
    ]);
    assert_eq!(code, 0, "{err}");
    let back = dir.join("back").join("mix.ron");
    std::fs::create_dir_all(back.parent().unwrap()).unwrap();
    let (code, _, err) = halo(&[
        "import",
        master.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
        "--format",
        "f32",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("first block"), "{err}");
    let back_text = std::fs::read_to_string(&back).unwrap();
    assert!(back_text.contains("control_changes"), "{back_text}");
    let b = parse(&back_text, &back).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.objects[0].controls.first_set(),
        b.objects[0].controls.first_set()
    );
    assert_eq!(a.objects[0].controls.changes, b.objects[0].controls.changes);

    let mut renders = Vec::new();
    for (name, input) in [
        ("session", &original),
        ("master", &master),
        ("imported", &back),
    ] {
        let out = dir.join(format!("render-{name}"));
        let (code, err) = common::render_f32(input, "7.1.4", &out, &[]);
        assert_eq!(code, 0, "{name}: {err}");
        renders.push((name, wav_samples(&out.join("7.1.4.wav"))));
    }
    assert!(renders[0].1.iter().any(|x| x.abs() > 0.05));
    for (name, r) in &renders[1..] {
        assert!(
            r == &renders[0].1,
            "{name} renders differently from the session"
        );
    }
}

#[test]
fn bad_control_changes_are_refused_naming_file_place_and_what_is_allowed() {
    let path = Path::new("/nowhere/bad.ron");
    let session = |changes: &str| {
        format!(
            "Session(objects: [(name: \"o\", source: \"a.wav\", position: Polar(az: 0),\n\
             control_changes: [\n{changes}\n])])"
        )
    };
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "(time: 2.0, snap: Any),\n(time: 1.0)",
            "objects[0] \"o\": control_changes[1]: time",
            &["not after control_changes[0]'s", "changes in time order"],
        ),
        (
            "(time: NaN)",
            "objects[0] \"o\": control_changes[0]: time",
            &["not a finite number", "a time in seconds"],
        ),
        (
            "(time: 0.0, screen_ref: true)",
            "objects[0] \"o\": control_changes[0]: time",
            &["not after the start", "above the previous change's"],
        ),
        (
            "(time: 1.0, ramp_from: 1.5)",
            "objects[0] \"o\": control_changes[0]: ramp_from",
            &["out of range", "to this one's (1 s)"],
        ),
        (
            "(time: 1.0),\n(time: 2.0, ramp_from: 0.5)",
            "objects[0] \"o\": control_changes[1]: ramp_from",
            &["out of range", "from the previous change's time (1 s)"],
        ),
        (
            "(time: 1.0, snap: Within(NaN))",
            "objects[0] \"o\": control_changes[0]: snap",
            &["not a finite number", "Within(d)"],
        ),
        (
            "(time: 1.0, divergence_range: 400)",
            "objects[0] \"o\": control_changes[0]: divergence_range",
            &["out of range", "0 to 180"],
        ),
    ];
    for (changes, want_place, words) in cases {
        let text = session(changes);
        match parse(&text, path) {
            Err(e @ SessionError::Invalid { .. }) => {
                let SessionError::Invalid {
                    ref place, line, ..
                } = e
                else {
                    unreachable!()
                };
                let msg = e.to_string();
                assert_eq!(place, want_place, "{msg}");
                assert!(line.is_some(), "{msg}");
                assert!(msg.contains("bad.ron"), "{msg}");
                for w in words {
                    assert!(msg.contains(w), "{changes}: {msg:?} lacks {w:?}");
                }
            }
            other => panic!("{changes}: {other:?}"),
        }
    }
    // An unknown field names the allowed ones.
    let text = session("(time: 1.0, snapp: Any)");
    let msg = parse(&text, path).unwrap_err().to_string();
    assert!(msg.contains("bad.ron") && msg.contains("snapp"), "{msg}");
}

/// One Objects channel with these blocks (`(rtime, duration, inner XML)`, seconds), as
/// a scene.
fn adm_scene(blocks: &[(&str, &str, &str)]) -> Scene {
    use halo::formats::adm::{AdmAudio, Chna, ChnaEntry, parse_axml, to_scene};
    let bfs: Vec<String> = blocks
        .iter()
        .enumerate()
        .map(|(i, (rtime, duration, inner))| {
            format!(
                "<audioBlockFormat audioBlockFormatID=\"AB_00031001_{:08}\" rtime=\"{rtime}\" \
                 duration=\"{duration}\"><position coordinate=\"azimuth\">20</position>\
                 <position coordinate=\"elevation\">5</position>{inner}</audioBlockFormat>",
                i + 1
            )
        })
        .collect();
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ebuCoreMain xmlns="urn:ebu:metadata-schema:ebuCore_2017"><coreMetadata><format><audioFormatExtended>
<audioProgramme audioProgrammeID="APR_1001" audioProgrammeName="p"><audioContentIDRef>ACO_1001</audioContentIDRef></audioProgramme>
<audioContent audioContentID="ACO_1001" audioContentName="c"><audioObjectIDRef>AO_1001</audioObjectIDRef></audioContent>
<audioObject audioObjectID="AO_1001" audioObjectName="o"><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
<audioPackFormat audioPackFormatID="AP_00031001" audioPackFormatName="p" typeLabel="0003" typeDefinition="Objects"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_00031001" audioChannelFormatName="c" typeLabel="0003" typeDefinition="Objects">
{}
</audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef></audioTrackUID>
</audioFormatExtended></format></coreMetadata></ebuCoreMain>
"#,
        bfs.join("\n")
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
    let audio = AdmAudio {
        path: "master.wav".into(),
        channels: 1,
        sample_rate: RATE,
        frames: 4 * RATE as u64,
    };
    let (scene, warnings) = to_scene(&doc, &chna, &audio).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    scene
}

#[test]
fn adm_blocks_give_one_change_per_new_set_where_its_interpolation_says() {
    const LOCK: &str = "<channelLock>1</channelLock>";
    const ZONE: &str = "<zoneExclusion><zone minElevation=\"-5\" maxElevation=\"5\" \
                        minAzimuth=\"25\" maxAzimuth=\"35\">M+030</zone></zoneExclusion>";
    let scene = adm_scene(&[
        // A zero-length first block: its lock is replaced at once by the next block's set.
        ("00:00:00.00000", "00:00:00.00000", LOCK),
        (
            "00:00:00.00000",
            "00:00:00.50000",
            "<jumpPosition>1</jumpPosition>",
        ),
        // A zone over a 0.1 s interpolation, kept by the next block (no change).
        (
            "00:00:00.50000",
            "00:00:00.50000",
            &format!("{ZONE}<jumpPosition interpolationLength=\"0.1\">1</jumpPosition>"),
        ),
        ("00:00:01.00000", "00:00:00.50000", ZONE),
        // screenRef over the whole block (jumpPosition 0).
        (
            "00:00:01.50000",
            "00:00:00.50000",
            "<screenRef>1</screenRef>",
        ),
        // After a gap: a jump at its start, back to nothing.
        ("00:00:02.50000", "00:00:00.50000", ""),
    ]);
    let c = &scene.objects[0].controls;
    assert_eq!(c.first_set(), SwitchedControls::default());
    let got: Vec<(u64, u64)> = c.changes.iter().map(|c| (c.ramp_from, c.frame)).collect();
    assert_eq!(
        got,
        [(24000, 28800), (72000, 96000), (120000, 120000)],
        "{:?}",
        c.changes
    );
    assert_eq!(c.changes[0].set.zones.len(), 1);
    assert!(c.changes[1].set.screen_ref && c.changes[1].set.zones.is_empty());
    assert_eq!(c.changes[2].set, SwitchedControls::default());
    assert!(c.interpolate_gains);
}
