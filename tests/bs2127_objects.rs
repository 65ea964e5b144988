//! Objects as ITU-R BS.2127 renders them, end to end (ADM → Scene → engine → file): one
//! ADM document per object feature (`tests/data/bs2127_objects/*.xml`: extent, Cartesian
//! points and extent, divergence, channelLock, zoneExclusion, screenRef, screenEdgeLock,
//! block gain, jumpPosition with interpolationLength, diffuse) rendered by halo to 7.1.4
//! and compared with EAR 2.1.0's render to 4+7+0 (`ear.json`, made by
//! `tools/reference/bs2127_objects.py`): the output samples of a constant input, i.e. the
//! gains, at fixed frames inside blocks and through the interpolation (BS.2127 interpolates
//! gains, not positions), and for the diffuse case the channel energies of noise.
//!
//! Then properties of the rendered gains: power, left/right symmetry and continuity.

use halo::drivers::exchange;
use halo::drivers::render::{self, RenderOptions};
use halo::formats::adm::{Chna, ChnaEntry, write_chna};
use halo::formats::io::{Chunk, WavReader, WavSpec, WavWriter, WriteFormat};
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
    let chna = Chna {
        entries: vec![ChnaEntry {
            track_index: 1,
            uid: "ATU_00000001".into(),
            track_ref: "AT_00031001_01".into(),
            pack_ref: "AP_00031001".into(),
        }],
    };
    let spec = WavSpec {
        channels: 1,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create_with_chunks(
        &path,
        spec,
        vec![
            Chunk {
                id: *b"chna",
                data: write_chna(&chna),
            },
            Chunk {
                id: *b"axml",
                data: xml.as_bytes().to_vec(),
            },
        ],
    )
    .unwrap();
    w.write(samples).unwrap();
    w.finish().unwrap().commit().unwrap();
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
