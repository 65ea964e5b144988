//! Export → EAR: halo's exported masters (the Dolby Atmos Master ADM profile) of the demo,
//! `examples/showcase.ron` and a 124-track session of 118 moving objects render in the EBU
//! ADM Renderer (EAR 2.1.0, `ear-render -s 4+7+0`) within 1 dB per channel of halo's own
//! 7.1.4 render of the session without its master chain.
//!
//! EAR's figures (RMS level per channel, whole file and per 2 s window) are test data in
//! `tests/data/ear_export/figures.json`, made by `tools/reference/ear_export.py`, which
//! writes the same sessions and masters through `write_ear_fixtures` below (run with
//! `--ignored` and `HALO_EAR_FIXTURES=DIR`), renders the masters with EAR and measures them.
//! This test makes the sessions again, renders them with halo and compares.
//!
//! EAR 2.1 ignores `audioObject` gain and mute (it would play a bed at 0 dB), as Dolby's
//! tools do, so the masters are exported with `bake_bed_gains` (`--bake-bed-gains`): the
//! beds' gains and mutes are in their tracks. Objects need nothing: their gain and mute are
//! in the linear block gains of the profile, which EAR reads.

mod common;
use common::scratch;
use halo::drivers::demo;
use halo::exchange::{self, AdmProfile, ExportOptions, MAX_PROFILE_OBJECTS};
use halo::formats::io::{WavReader, WavSpec, WavWriter, WriteFormat};
use halo::formats::session;
use halo::render::{RenderOptions, render};
use halo::scene::layout::Layout;
use halo::scene::mix::{OutputSpec, Scene};
use std::path::{Path, PathBuf};

const RATE: u32 = 48000;
/// The 2 s analysis windows of the figures.
const WINDOW_S: f64 = 2.0;
/// Levels below this are silence (dBFS): both renders must be below it together.
const FLOOR_DB: f64 = -70.0;
/// Windows are compared where EAR's level is above this (dBFS).
const WINDOW_FLOOR_DB: f64 = -50.0;

/// Writes interleaved samples as a float WAV (no channel mask: layout order).
fn write_wav(path: &Path, channels: usize, samples: &[f32]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = WavSpec {
        channels,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create(path, spec).unwrap();
    w.write(samples).unwrap();
    w.finish().unwrap().commit().unwrap();
}

/// One channel of the demo's stems (interleaved), as mono.
fn demo_channel(stems: &[demo::Stem], file: &str, channel: usize) -> Vec<f32> {
    let s = stems.iter().find(|s| s.file == file).unwrap();
    s.samples
        .iter()
        .skip(channel)
        .step_by(s.channels)
        .copied()
        .collect()
}

fn interleave(channels: &[Vec<f32>]) -> Vec<f32> {
    let n = channels.len();
    let frames = channels.iter().map(Vec::len).min().unwrap_or(0);
    let mut out = vec![0.0f32; frames * n];
    for (c, ch) in channels.iter().enumerate() {
        for f in 0..frames {
            out[f * n + c] = ch[f];
        }
    }
    out
}

/// The demo session and its stems.
fn write_demo(dir: &Path) -> PathBuf {
    for s in demo::stems(RATE) {
        write_wav(&dir.join("stems").join(s.file), s.channels, &s.samples);
    }
    let path = dir.join("session.ron");
    std::fs::write(&path, demo::session_text(RATE, &["7.1.4"])).unwrap();
    path
}

/// `examples/showcase.ron` with stems made of the demo's: the showcase's files, channel
/// counts and layout file, its binaural HRTF left out (the 7.1.4 render does not use it).
fn write_showcase(dir: &Path) -> PathBuf {
    let stems = demo::stems(RATE);
    let pad = demo_channel(&stems, "pad.wav", 0);
    let melody = demo_channel(&stems, "melody.wav", 0);
    let voice = demo_channel(&stems, "voice.wav", 0);
    let drums: Vec<Vec<f32>> = (0..6)
        .map(|c| demo_channel(&stems, "drums_bass_5.1.wav", c))
        .collect();
    let s = dir.join("stems");
    write_wav(&s.join("vox.wav"), 1, &voice);
    write_wav(
        &s.join("gtr_stereo.wav"),
        2,
        &interleave(&[melody.clone(), pad.clone()]),
    );
    write_wav(&s.join("fx.wav"), 1, &melody);
    write_wav(&s.join("synth.wav"), 1, &pad);
    write_wav(&s.join("drums_5.1.wav"), 6, &interleave(&drums));
    let room: Vec<Vec<f32>> = (0..12)
        .map(|c| match c % 3 {
            0 => pad.iter().map(|x| x * 0.5).collect(),
            1 => melody.iter().map(|x| x * 0.5).collect(),
            _ => voice.iter().map(|x| x * 0.5).collect(),
        })
        .collect();
    write_wav(&s.join("room_7.1.4.wav"), 12, &interleave(&room));
    std::fs::create_dir_all(dir.join("rooms")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/layouts/7.1.4.ron"),
        dir.join("rooms/studio.ron"),
    )
    .unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/showcase.ron"
    ))
    .unwrap()
    .replace("hrtf: \"hrtf/my.sofa\",", "");
    let path = dir.join("showcase.ron");
    std::fs::write(&path, text).unwrap();
    path
}

/// A session with a 5.1 bed and `objects` moving objects (every second one Cartesian,
/// the others polar, some with size), on the demo's stems.
fn many_text(objects: usize) -> String {
    let sources = ["stems/pad.wav", "stems/melody.wav", "stems/voice.wav"];
    let mut text = String::from(
        "Session(\n    sample_rate: 48000,\n    duration: 8.0,\n    beds: [(name: \"bed\", \
         source: \"stems/drums_bass_5.1.wav\", layout: \"5.1\")],\n    objects: [\n",
    );
    for i in 0..objects {
        let t = i as f64 / objects as f64;
        let position = if i % 2 == 0 {
            let x0 = (2.0 * t - 1.0).clamp(-1.0, 1.0);
            format!(
                "[(time: 0, value: Cart(x: {x0:.3}, y: 1, z: 0)), \
                 (time: 4, value: Cart(x: {:.3}, y: -1, z: {:.3})), \
                 (time: 8, value: Cart(x: {x0:.3}, y: 0.5, z: 1))]",
                -x0, t
            )
        } else {
            let az = -180.0 + 360.0 * t;
            format!(
                "[(time: 0, value: Polar(az: {az:.1}, el: 0)), \
                 (time: 8, value: Polar(az: {:.1}, el: {:.1}))]",
                az + 90.0,
                30.0 * t
            )
        };
        let size = if i % 5 == 0 { ", size: 0.2" } else { "" };
        text.push_str(&format!(
            "        (name: \"obj{i:03}\", source: \"{}\", gain_db: -20, position: {position}{size}),\n",
            sources[i % 3]
        ));
    }
    text.push_str("    ],\n    outputs: [Speakers(layout: \"7.1.4\")],\n)\n");
    text
}

fn write_many(dir: &Path, objects: usize) -> PathBuf {
    for s in demo::stems(RATE) {
        write_wav(&dir.join("stems").join(s.file), s.channels, &s.samples);
    }
    let path = dir.join("many.ron");
    std::fs::write(&path, many_text(objects)).unwrap();
    path
}

fn load(path: &Path) -> Scene {
    let text = std::fs::read_to_string(path).unwrap();
    session::parse(&text, path, &mut |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sessions compared: (name, session file).
fn fixtures(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("demo", write_demo(&dir.join("demo"))),
        ("showcase", write_showcase(&dir.join("showcase"))),
        ("many", write_many(&dir.join("many"), MAX_PROFILE_OBJECTS)),
    ]
}

/// Per channel (BS.2051 names of 7.1.4): RMS level of the whole file and of each window.
type Figures = Vec<(String, f64, Vec<f64>)>;

fn level_db(x: &[f32]) -> f64 {
    let e: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    10.0 * (e / x.len().max(1) as f64).max(1e-20).log10()
}

/// halo's 7.1.4 render of the session, no master chain, measured.
fn halo_figures(session: &Path, out: &Path) -> Figures {
    let mut scene = load(session);
    let layout = Layout::builtin("7.1.4").unwrap();
    scene.outputs = vec![OutputSpec::Speakers {
        layout: layout.clone(),
        chain: Vec::new(),
        target: None,
    }];
    std::fs::create_dir_all(out).unwrap();
    let mut opts = RenderOptions::new(out);
    opts.format = WriteFormat::F32;
    render(&scene, &mut opts).unwrap_or_else(|e| panic!("{e}"));
    let mut r = WavReader::open(&out.join("7.1.4.wav")).unwrap();
    let n = r.info().channels;
    let mut v = vec![0.0f32; r.info().frames as usize * n];
    let got = r.read(&mut v).unwrap();
    // File channel → layout channel (the file is in WAV order when the layout has a mask).
    let order: Vec<usize> = if layout.wav_channel_mask().is_some() {
        layout.wav_order()
    } else {
        (0..n).collect()
    };
    let window = (WINDOW_S * f64::from(RATE)) as usize;
    let mut figures: Figures = layout
        .channels
        .iter()
        .map(|c| (c.name.clone(), 0.0, Vec::new()))
        .collect();
    for (file_ch, &layout_ch) in order.iter().enumerate() {
        let ch: Vec<f32> = (0..got).map(|f| v[f * n + file_ch]).collect();
        figures[layout_ch].1 = level_db(&ch);
        figures[layout_ch].2 = ch.chunks(window).map(level_db).collect();
    }
    figures
}

/// EAR's figures of one session from the committed test data.
fn ear_figures(all: &serde_json::Value, name: &str) -> Figures {
    let s = &all["sessions"][name]["ear"];
    s.as_array()
        .unwrap_or_else(|| panic!("figures.json has no EAR figures for {name}"))
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap().to_string(),
                c["rms_db"].as_f64().unwrap(),
                c["windows_db"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn exported_masters_render_in_ear_within_1_db_per_channel_of_halo() {
    let data: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/ear_export/figures.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let dir = scratch("compare");
    let mut worst = Vec::new();
    for (name, session) in fixtures(&dir) {
        let halo = halo_figures(&session, &dir.join(format!("render-{name}")));
        let ear = ear_figures(&data, name);
        assert_eq!(halo.len(), ear.len(), "{name}: channel count");
        let mut worst_db: f64 = 0.0;
        let mut worst_window_db: f64 = 0.0;
        for ((hn, h, hw), (en, e, ew)) in halo.iter().zip(&ear) {
            assert_eq!(hn, en, "{name}: channel order");
            if *e < FLOOR_DB {
                assert!(
                    *h < FLOOR_DB,
                    "{name} {hn}: EAR is silent ({e:.1} dB), halo plays {h:.1} dB"
                );
                continue;
            }
            assert!(
                (h - e).abs() <= 1.0,
                "{name} {hn}: halo {h:.2} dB, EAR {e:.2} dB"
            );
            worst_db = worst_db.max((h - e).abs());
            assert_eq!(hw.len(), ew.len(), "{name} {hn}: windows");
            for (k, (a, b)) in hw.iter().zip(ew).enumerate() {
                if *b > WINDOW_FLOOR_DB {
                    assert!(
                        (a - b).abs() <= 1.0,
                        "{name} {hn} window {k}: halo {a:.2} dB, EAR {b:.2} dB"
                    );
                    worst_window_db = worst_window_db.max((a - b).abs());
                }
            }
        }
        worst.push(format!(
            "{name}: worst channel {worst_db:.2} dB, worst 2 s window {worst_window_db:.2} dB"
        ));
    }
    println!("{}", worst.join("\n"));
}

#[test]
fn the_profile_refuses_more_than_118_objects_naming_the_count() {
    let dir = scratch("too_many");
    let session = write_many(&dir, 128);
    let scene = load(&session);
    let out = dir.join("master.wav");
    let options = ExportOptions {
        measure_loudness: false,
        ..ExportOptions::default()
    };
    let err = exchange::export(&scene, &out, &options).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("128 objects"), "{text}");
    assert!(text.contains("118"), "{text}");
    assert!(!out.exists(), "nothing is written");
    // BS.2076-2 has no such limit.
    let options = ExportOptions {
        measure_loudness: false,
        profile: AdmProfile::Bs2076_2,
        ..ExportOptions::default()
    };
    let report = exchange::export(&scene, &out, &options).unwrap();
    assert_eq!(report.tracks, 6 + 128);
}

/// Writes the sessions and their exported masters into `$HALO_EAR_FIXTURES` for
/// `tools/reference/ear_export.py`, with halo's own figures (`halo.json`).
#[test]
#[ignore]
fn write_ear_fixtures() {
    let Some(dir) = std::env::var_os("HALO_EAR_FIXTURES").map(PathBuf::from) else {
        println!("HALO_EAR_FIXTURES not set: nothing written");
        return;
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut halo_json = serde_json::Map::new();
    for (name, session) in fixtures(&dir) {
        let scene = load(&session);
        let master = dir.join(format!("{name}-master.wav"));
        let options = ExportOptions {
            bake_bed_gains: true,
            ..ExportOptions::default()
        };
        let report = exchange::export(&scene, &master, &options).unwrap_or_else(|e| panic!("{e}"));
        for w in &report.warnings {
            println!("{name}: {w}");
        }
        let figures = halo_figures(&session, &dir.join(format!("render-{name}")));
        halo_json.insert(
            name.to_string(),
            serde_json::Value::Array(
                figures
                    .into_iter()
                    .map(|(c, db, w)| serde_json::json!({"channel": c, "rms_db": db, "windows_db": w}))
                    .collect(),
            ),
        );
    }
    std::fs::write(
        dir.join("halo.json"),
        serde_json::to_string_pretty(&serde_json::Value::Object(halo_json)).unwrap(),
    )
    .unwrap();
}
