//! ADM Matrix packs whose tracks carry the matrix's inputs (ITU-R BS.2076-2 §5.3.3, BS.2127
//! §7.1): an M/S decode pack on M and S tracks, the same with other coefficients, M/S
//! encode then decode on L/R tracks, and a 2→2 identity direct matrix. The static gain
//! from each track to each output speaker, measured through the importer and the engine,
//! against EAR 2.1.0's renders of the same documents (`tests/data/adm/ear_matrix.json`,
//! made by `tools/reference/matrix.py` from `tests/data/adm/matrix/*.xml`), and the
//! properties: identity reproduces the input; M/S decode gives L = M + S, R = M − S.

mod common;
use common::builtin_of;

use halo::engine::{BedConfig, Engine, EngineConfig, OutputConfig};
use halo::formats::adm::*;
use halo::scene::layout::Layout;
use halo::scene::mix::Scene;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/adm/");

/// The document's scene, its tracks as the chna names them (as the reference script does:
/// one track per audioTrackUID, in document order).
fn scene_of(name: &str) -> (Scene, Vec<String>, usize) {
    let xml = std::fs::read_to_string(format!("{DIR}matrix/{name}")).unwrap();
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let entries: Vec<ChnaEntry> = doc
        .track_uids
        .iter()
        .enumerate()
        .map(|(i, u)| ChnaEntry {
            track_index: i as u16 + 1,
            uid: u.id.clone(),
            track_ref: u.track_format_ref.clone().unwrap(),
            pack_ref: u.pack_ref.clone().unwrap(),
        })
        .collect();
    let n = entries.len();
    let audio = AdmAudio {
        path: "master.wav".into(),
        channels: n,
        sample_rate: 48000,
        frames: 48000,
    };
    let (scene, warnings) =
        to_scene(&doc, &Chna { entries }, &audio).unwrap_or_else(|e| panic!("{name}: {e}"));
    (scene, warnings, n)
}

/// gains[track][output channel], measured with a unit signal on one track at a time.
fn track_gains(scene: &Scene, tracks: usize, output: &Layout) -> Vec<Vec<f64>> {
    assert!(scene.objects.is_empty());
    let beds = scene
        .beds
        .iter()
        .map(|b| BedConfig {
            name: b.name.clone(),
            layout: b.layout.clone(),
            gain_db: b.gain_db,
            mute: b.mute,
            binaural_distances: vec![],
            hoa: b.hoa.clone(),
            active_frames: b.active_frames,
            speaker_bounds: b.speaker_bounds.clone(),
            channel_gains: b.channel_gains.clone(),
        })
        .collect();
    let mut engine = Engine::new(EngineConfig {
        sample_rate: 48000,
        max_block_frames: 64,
        objects: vec![],
        beds,
        outputs: vec![OutputConfig::speakers(output.clone())],
    })
    .unwrap();
    let mut gains = Vec::new();
    for track in 0..tracks {
        for (b, bed) in scene.beds.iter().enumerate() {
            for (c, &file_ch) in bed.channels.as_ref().unwrap().iter().enumerate() {
                let v = if file_ch == track { 1.0 } else { 0.0 };
                engine.bed_input(b, c)[..64].fill(v);
            }
        }
        engine.process(64);
        gains.push(engine.output(0).iter().map(|o| f64::from(o[63])).collect());
    }
    gains
}

#[test]
fn matrix_documents_render_as_ear_renders_them() {
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}ear_matrix.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for case in data["cases"].as_array().unwrap() {
        let name = case["document"].as_str().unwrap();
        let layout = case["layout"].as_str().unwrap();
        let output = builtin_of(layout);
        let (scene, warnings, n) = scene_of(name);
        assert!(
            warnings.iter().all(|w| !w.contains("not rendered")),
            "{name}: {warnings:?}"
        );
        let measured = track_gains(&scene, n, &output);
        for (t, want) in case["gains"].as_array().unwrap().iter().enumerate() {
            for (o, ch) in output.channels.iter().enumerate() {
                let e = want[&ch.name].as_f64().unwrap_or(0.0);
                let h = measured[t][o];
                assert!(
                    (e - h).abs() < 1e-3,
                    "{name} → {layout}: track {} on {}: halo {h:.4}, EAR {e:.4}",
                    t + 1,
                    ch.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 100, "{checked}");
}

#[test]
fn identity_reproduces_the_input_and_ms_decode_gives_sum_and_difference() {
    let stereo = builtin_of("0+2+0");
    let l = stereo
        .channels
        .iter()
        .position(|c| c.name == "M+030")
        .unwrap();
    let r = stereo
        .channels
        .iter()
        .position(|c| c.name == "M-030")
        .unwrap();
    for doc in ["direct_identity.xml", "ms_encode_decode.xml"] {
        let (scene, _, n) = scene_of(doc);
        let g = track_gains(&scene, n, &stereo);
        // Track 1 is L, track 2 is R: each reaches its own speaker alone, at unit gain.
        assert!(
            (g[0][l] - 1.0).abs() < 1e-6 && g[0][r].abs() < 1e-6,
            "{doc}: {g:?}"
        );
        assert!(
            (g[1][r] - 1.0).abs() < 1e-6 && g[1][l].abs() < 1e-6,
            "{doc}: {g:?}"
        );
    }
    let (scene, _, n) = scene_of("ms_decode.xml");
    let g = track_gains(&scene, n, &stereo);
    // L = M + S, R = M − S.
    let (m, s) = (0, 1);
    assert!(
        (g[m][l] - 1.0).abs() < 1e-6 && (g[s][l] - 1.0).abs() < 1e-6,
        "{g:?}"
    );
    assert!(
        (g[m][r] - 1.0).abs() < 1e-6 && (g[s][r] + 1.0).abs() < 1e-6,
        "{g:?}"
    );
}

#[test]
fn a_matrix_with_phase_is_refused_with_a_warning() {
    let xml = std::fs::read_to_string(format!("{DIR}matrix/ms_decode.xml"))
        .unwrap()
        .replacen(
            r#"<coefficient gain="1.0">AC_00021002</coefficient>"#,
            r#"<coefficient gain="1.0" phase="90">AC_00021002</coefficient>"#,
            1,
        );
    assert!(xml.contains("phase=\"90\""));
    let doc = parse_axml(xml.as_bytes()).unwrap();
    let entries = doc
        .track_uids
        .iter()
        .enumerate()
        .map(|(i, u)| ChnaEntry {
            track_index: i as u16 + 1,
            uid: u.id.clone(),
            track_ref: u.track_format_ref.clone().unwrap(),
            pack_ref: u.pack_ref.clone().unwrap(),
        })
        .collect();
    let audio = AdmAudio {
        path: "master.wav".into(),
        channels: 2,
        sample_rate: 48000,
        frames: 48000,
    };
    // Nothing else to render: the import fails, naming the matrix and the phase.
    let e = to_scene(&doc, &Chna { entries }, &audio)
        .unwrap_err()
        .to_string();
    assert!(e.contains("AP_00021002") && e.contains("phase"), "{e}");
}

#[test]
fn a_loop_of_matrix_channels_is_refused_not_followed_forever() {
    // The encode channel M takes the decode channel L, which takes M.
    let xml = std::fs::read_to_string(format!("{DIR}matrix/ms_decode.xml"))
        .unwrap()
        .replacen(
            r#"<coefficient gain="0.5">AC_00010001</coefficient>"#,
            r#"<coefficient gain="0.5">AC_00021003</coefficient>"#,
            1,
        );
    assert!(xml.contains(r#"<coefficient gain="0.5">AC_00021003</coefficient>"#));
    let doc = parse_axml(xml.as_bytes()).unwrap();
    let entries = doc
        .track_uids
        .iter()
        .enumerate()
        .map(|(i, u)| ChnaEntry {
            track_index: i as u16 + 1,
            uid: u.id.clone(),
            track_ref: u.track_format_ref.clone().unwrap(),
            pack_ref: u.pack_ref.clone().unwrap(),
        })
        .collect();
    let audio = AdmAudio {
        path: "master.wav".into(),
        channels: 2,
        sample_rate: 48000,
        frames: 48000,
    };
    let e = to_scene(&doc, &Chna { entries }, &audio)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("AP_00021002") && e.contains("more coefficients than halo follows"),
        "{e}"
    );
}

#[test]
fn import_bakes_the_coefficients_into_the_bed_stems() {
    use halo::formats::io::{Chunk, WavReader, WavSpec, WavWriter, WriteFormat};
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adm_matrix_import");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let xml = std::fs::read(format!("{DIR}matrix/ms_decode.xml")).unwrap();
    let doc = parse_axml(&xml).unwrap();
    let entries = doc
        .track_uids
        .iter()
        .enumerate()
        .map(|(i, u)| ChnaEntry {
            track_index: i as u16 + 1,
            uid: u.id.clone(),
            track_ref: u.track_format_ref.clone().unwrap(),
            pack_ref: u.pack_ref.clone().unwrap(),
        })
        .collect();
    let master = dir.join("master.wav");
    let spec = WavSpec {
        channels: 2,
        sample_rate: 48000,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let chunks = vec![
        Chunk {
            id: *b"chna",
            data: write_chna(&Chna { entries }),
        },
        Chunk {
            id: *b"axml",
            data: xml,
        },
    ];
    let mut w = WavWriter::create_with_chunks(&master, spec, chunks).unwrap();
    // M = 0.25, S = 0.125.
    w.write(&[0.25f32, 0.125].repeat(4800)).unwrap();
    w.finish().unwrap().commit().unwrap();
    let report =
        halo::drivers::exchange::import(&master, None, &dir.join("session.halo"), WriteFormat::F32)
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.stems.len(), 2, "{:?}", report.stems);
    // The stems (2.0, L then R) add up to L = M + S, R = M − S.
    let mut sum = [0.0f64; 2];
    for stem in &report.stems {
        let mut r = WavReader::open(stem).unwrap();
        assert_eq!(r.info().channels, 2);
        let mut buf = vec![0.0f32; 2 * 100];
        assert_eq!(r.read(&mut buf).unwrap(), 100);
        sum[0] += f64::from(buf[100]);
        sum[1] += f64::from(buf[101]);
    }
    assert!(
        (sum[0] - 0.375).abs() < 1e-6 && (sum[1] - 0.125).abs() < 1e-6,
        "{sum:?}"
    );
}
