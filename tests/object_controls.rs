//! A session object's BS.2127 controls (`extent`, `diffuse`, `divergence`,
//! `divergence_range`, `snap`, `zones`, `screen_ref`, `screen_edge_lock`, `importance`,
//! `interpolate_gains`): parsed, checked with clear errors, written back, carried through
//! `halo export` / `halo import`, taken by `halo gains --controls` (whose gains are EAR's,
//! tests/data/bs2127_objects/gains_cli.json), and `--min-importance` on render.

mod common;
use common::{halo, scratch};

use halo::formats::session;
use halo::scene::automation::Automation;
use halo::scene::mix::{ExclusionZone, Extent, ObjectControls, Scene, ScreenEdge, Snap};
use std::path::Path;

const RATE: u32 = 48000;

fn parse(text: &str) -> Result<Scene, session::SessionError> {
    session::parse(text, Path::new("/tmp/mix.ron"), &mut |_| {
        Err("no layout files".into())
    })
}

const SESSION: &str = r#"Session(
    objects: [
        (
            name: "pad",
            source: "pad.wav",
            position: Polar(az: 30, el: 10),
            extent: (width: 60, height: 20, depth: 0.2),
            diffuse: 0.3,
            divergence: [(time: 0, value: 0.2), (time: 0.5, value: 0.8)],
            divergence_range: 40,
            snap: Within(0.25),
            zones: [Speaker("M+110"), Polar(min_az: 100, max_az: 150, min_el: -10, max_el: 10),
                    Cart(min_x: -1, max_x: -0.5, min_y: -1, max_y: 1, min_z: 0.5, max_z: 1)],
            screen_ref: true,
            screen_edge_lock: [Left, Top],
            importance: 4,
        ),
        (
            name: "fx",
            source: "fx.wav",
            position: Cart(x: 0.2, y: -0.4, z: 0.3),
            snap: Any,
            interpolate_gains: true,
        ),
    ],
    outputs: [],
)"#;

#[test]
fn session_controls_parse_and_round_trip() {
    let scene = parse(SESSION).unwrap();
    let c = &scene.objects[0].controls;
    assert_eq!(
        c.extent.as_ref().unwrap().first_value(),
        Extent {
            width: 60.0,
            height: 20.0,
            depth: 0.2
        }
    );
    assert_eq!(c.diffuse, Automation::constant(0.3));
    assert_eq!(c.divergence.keyframes()[1].frame, RATE as u64 / 2);
    assert_eq!(c.divergence_range, Some(40.0));
    assert_eq!(
        c.snap,
        Some(Snap {
            max_distance: Some(0.25)
        })
    );
    assert_eq!(c.zones[0], ExclusionZone::Speaker("M+110".into()));
    assert_eq!(c.zones.len(), 3);
    assert!(c.screen_ref);
    assert_eq!(c.screen_edge_lock, vec![ScreenEdge::Left, ScreenEdge::Top]);
    assert_eq!(c.importance, 4);
    assert!(!c.interpolate_gains);
    let f = &scene.objects[1].controls;
    assert_eq!(f.snap, Some(Snap { max_distance: None }));
    assert!(f.interpolate_gains);
    assert_eq!(f.extent, None);
    // Written and read back: the same controls.
    let text = session::write(&scene).unwrap();
    let back = parse(&text).unwrap();
    for (a, b) in scene.objects.iter().zip(&back.objects) {
        assert_eq!(a.controls, b.controls, "{text}");
    }
    // An object without controls writes none of the fields.
    let plain = parse(
        r#"Session(objects: [(name: "a", source: "a.wav", position: Polar(az: 0))], outputs: [])"#,
    )
    .unwrap();
    let text = session::write(&plain).unwrap();
    for field in ["extent", "diffuse", "snap", "zones", "screen", "importance"] {
        assert!(!text.contains(field), "{field} in {text}");
    }
    assert_eq!(plain.objects[0].controls, ObjectControls::default());
}

#[test]
fn bad_controls_are_named() {
    let cases = [
        ("diffuse: 1.5", "diffuse", "from 0 to 1"),
        ("extent: (width: 400)", "width", "0 to 360"),
        ("snap: Within(3)", "snap", "Within(d)"),
        (
            "zones: [Polar(min_az: 0, max_az: 10, min_el: 20, max_el: 10)]",
            "zones[0]",
            "min_el ≤ max_el",
        ),
        (
            "zones: [Cart(min_x: 0.5, max_x: 0.2, min_y: 0, max_y: 1)]",
            "zones[0]",
            "min ≤ max",
        ),
        ("importance: 11", "importance", "0 (least) to 10"),
        ("divergence_range: 200", "divergence_range", "0 to 180"),
        ("screen_edge_lock: [Middle]", "Middle", "Left"),
    ];
    for (field, place, allowed) in cases {
        let text = format!(
            "Session(objects: [(name: \"a\", source: \"a.wav\", position: Polar(az: 0), \
             {field})], outputs: [])"
        );
        let e = parse(&text).expect_err(field).to_string();
        assert!(e.contains("mix.ron"), "{field}: {e}");
        assert!(e.contains(place), "{field}: {e}");
        assert!(e.contains(allowed), "{field}: {e}");
    }
}

/// A mono float WAV of `frames` frames of 0.1.
fn write_mono(path: &Path, frames: usize) {
    use halo::formats::io::{WavSpec, WavWriter, WriteFormat};
    let spec = WavSpec {
        channels: 1,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create(path, spec).unwrap();
    w.write(&vec![0.1f32; frames]).unwrap();
    w.finish().unwrap().commit().unwrap();
}

#[test]
fn controls_survive_export_and_import() {
    let dir = scratch("exchange");
    for f in ["pad.wav", "fx.wav"] {
        write_mono(&dir.join(f), RATE as usize);
    }
    let original = dir.join("mix.ron");
    // Constant divergence (keyframed values are written per block: see the README).
    let text = SESSION.replace("[(time: 0, value: 0.2), (time: 0.5, value: 0.8)]", "0.5");
    std::fs::write(&original, &text).unwrap();
    let master = dir.join("master.wav");
    let (code, _, err) = halo(&[
        "export",
        original.to_str().unwrap(),
        "--out",
        master.to_str().unwrap(),
        "--no-loudness",
    ]);
    assert_eq!(code, 0, "{err}");
    let back = dir.join("back").join("mix.ron");
    std::fs::create_dir_all(back.parent().unwrap()).unwrap();
    let (code, _, err) = halo(&[
        "import",
        master.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let a = session::parse(&text, &original, &mut |_| Err("none".into())).unwrap();
    let b = session::parse(&std::fs::read_to_string(&back).unwrap(), &back, &mut |_| {
        Err("none".into())
    })
    .unwrap();
    for (x, y) in a.objects.iter().zip(&b.objects) {
        let (cx, cy) = (&x.controls, &y.controls);
        assert_eq!(cx.extent, cy.extent, "{}", x.name);
        assert_eq!(cx.diffuse, cy.diffuse, "{}", x.name);
        assert_eq!(cx.divergence, cy.divergence, "{}", x.name);
        assert_eq!(cx.divergence_range, cy.divergence_range, "{}", x.name);
        assert_eq!(cx.snap, cy.snap, "{}", x.name);
        assert_eq!(cx.screen_ref, cy.screen_ref, "{}", x.name);
        assert_eq!(cx.screen_edge_lock, cy.screen_edge_lock, "{}", x.name);
        assert_eq!(cx.importance, cy.importance, "{}", x.name);
        // A speaker zone comes back as the polar zone (±0.5°) that stands for it in ADM.
        assert_eq!(cx.zones.len(), cy.zones.len(), "{}", x.name);
        for (zx, zy) in cx.zones.iter().zip(&cy.zones) {
            match (zx, zy) {
                (
                    ExclusionZone::Speaker(name),
                    ExclusionZone::Polar {
                        min_azimuth_deg,
                        max_azimuth_deg,
                        ..
                    },
                ) => {
                    assert_eq!(name, "M+110");
                    assert_eq!((*min_azimuth_deg, *max_azimuth_deg), (109.5, 110.5));
                }
                _ => assert_eq!(zx, zy),
            }
        }
    }
}

#[test]
fn gains_cli_takes_controls_and_gives_ears_gains() {
    // EAR 2.1.0's gains for these metadata on 4+7+0 (tools/reference/bs2127_objects.py).
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/bs2127_objects/gains_cli.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for case in want.as_array().unwrap() {
        let mut args = vec![
            "gains",
            "--layout",
            "7.1.4",
            "--controls",
            case["controls"].as_str().unwrap(),
        ];
        if case["cart"].as_bool().unwrap() {
            args.push("--cart");
        }
        args.push(case["position"].as_str().unwrap());
        let (code, out, err) = halo(&args);
        assert_eq!(code, 0, "{err}");
        let got: serde_json::Value = serde_json::from_str(&out).unwrap();
        let channels: Vec<&str> = got["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for (what, key) in [("direct", "gains"), ("diffuse", "diffuse")] {
            let g = &got[key][0];
            for (name, w) in case[what].as_object().unwrap() {
                let c = halo_index(&channels, name);
                let (h, w) = (g[c].as_f64().unwrap(), w.as_f64().unwrap());
                assert!(
                    (h - w).abs() < 1e-4,
                    "{} {what} {name}: {h}, EAR {w}",
                    case["controls"]
                );
            }
        }
    }
    // Bad controls: exit 2 and a message naming the option.
    let (code, _, err) = halo(&[
        "gains",
        "--layout",
        "7.1.4",
        "--controls",
        "(diffuse: 2)",
        "0,0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--controls"), "{err}");
}

/// The index in `halo gains`' channel list of a BS.2051 name (the list is of short labels).
fn halo_index(channels: &[&str], bs2051: &str) -> usize {
    let layout = halo::scene::layout::Layout::builtin("7.1.4").unwrap();
    let label = &layout
        .channels
        .iter()
        .find(|c| c.name == bs2051)
        .unwrap()
        .label;
    channels.iter().position(|c| c == label).unwrap()
}

#[test]
fn min_importance_leaves_out_less_important_objects() {
    let dir = scratch("importance");
    for f in ["a.wav", "b.wav"] {
        write_mono(&dir.join(f), 4800);
    }
    let session = dir.join("mix.ron");
    std::fs::write(
        &session,
        r#"Session(
    objects: [
        (name: "a", source: "a.wav", position: Polar(az: 30), importance: 3),
        (name: "b", source: "b.wav", position: Polar(az: -30)),
    ],
    outputs: [Speakers(layout: "5.1")],
)"#,
    )
    .unwrap();
    let energy = |min: Option<&str>| {
        let out = dir.join(format!("out{}", min.unwrap_or("none")));
        let mut args = vec![
            "render",
            session.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "f32",
        ];
        if let Some(m) = min {
            args.extend(["--min-importance", m]);
        }
        let (code, _, err) = halo(&args);
        assert_eq!(code, 0, "{err}");
        let file = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "wav"))
            .unwrap();
        let mut r = halo::formats::io::WavReader::open(&file).unwrap();
        let n = r.info().channels;
        let mut buf = vec![0.0f32; n * 4800];
        let got = r.read(&mut buf).unwrap();
        // Channel energies in file order (5.1: L R C LFE Ls Rs).
        (0..n)
            .map(|c| {
                (0..got)
                    .map(|f| f64::from(buf[f * n + c]).powi(2))
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
    };
    let all = energy(None);
    assert!(all[0] > 1.0 && all[1] > 1.0, "{all:?}");
    // Importance 3 < 4: "a" (on L) is left out, "b" (on R) stays.
    let some = energy(Some("4"));
    assert_eq!(some[0], 0.0, "{some:?}");
    assert!((some[1] - all[1]).abs() < 1e-9);
    // Importance 3 ≥ 3: both play.
    assert_eq!(energy(Some("3")), all);
    let (code, _, err) = halo(&[
        "render",
        session.to_str().unwrap(),
        "--min-importance",
        "11",
    ]);
    assert_eq!(code, 2, "{err}");
}
