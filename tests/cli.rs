//! The `halo` command end to end: the bad-input catalogue (exit code 2, a message that
//! names the place, no output left behind), channel masks in rendered files, `--strict`
//! (exit code 3), the translation report's flags, and binaural output.

mod common;
use common::{halo, scratch};

use halo::formats::io::{WavSpec, WavWriter, WriteFormat};
use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

const RATE: u32 = 48000;

/// Writes a WAV of `channels` channels whose channel `c` is a sine at 200·(c+1) Hz.
fn write_wav(path: &Path, channels: usize, seconds: f64, amp: f64) {
    let frames = (seconds * RATE as f64) as usize;
    let mut data = vec![0.0f32; frames * channels];
    for f in 0..frames {
        for c in 0..channels {
            data[f * channels + c] =
                (amp * (TAU * 200.0 * (c + 1) as f64 * f as f64 / RATE as f64).sin()) as f32;
        }
    }
    write_samples(path, channels, None, &data);
}

/// Writes interleaved float samples as a WAV file.
fn write_samples(path: &Path, channels: usize, channel_mask: Option<u32>, data: &[f32]) {
    let mut w = WavWriter::create(
        path,
        WavSpec {
            channels,
            sample_rate: RATE,
            format: WriteFormat::F32,
            channel_mask,
        },
    )
    .unwrap();
    w.write(data).unwrap();
    w.finish().unwrap().commit().unwrap();
}

/// Files left in a directory (recursively none expected: renders write flat).
fn leftovers(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A directory with mono.wav (1 s), stereo.wav, bed51.wav (6 ch) and bed20.wav.
fn material(name: &str) -> PathBuf {
    let dir = scratch(name);
    write_wav(&dir.join("mono.wav"), 1, 1.0, 0.25);
    write_wav(&dir.join("stereo.wav"), 2, 1.0, 0.25);
    write_wav(&dir.join("bed51.wav"), 6, 1.0, 0.1);
    dir
}

const GOOD_OBJECT: &str = r#"(name: "vox", source: "mono.wav", position: Cart(x: 0, y: 1, z: 0))"#;

fn session(objects: &str, beds: &str, outputs: &str) -> String {
    format!(
        "Session(\n    objects: [\n        {objects}\n    ],\n    beds: [{beds}],\n    outputs: [{outputs}],\n)\n"
    )
}

struct Case {
    name: &'static str,
    session: String,
    extra_args: Vec<String>,
    /// Fragments the error message must contain.
    expect: Vec<&'static str>,
}

#[test]
fn bad_input_catalogue() {
    let dir = material("bad");
    std::fs::write(
        dir.join("garbage.wav"),
        b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk",
    )
    .unwrap();
    // A WAV whose header promises more audio than the file holds.
    let full = std::fs::read(dir.join("mono.wav")).unwrap();
    std::fs::write(dir.join("truncated.wav"), &full[..full.len() / 2]).unwrap();
    std::fs::write(dir.join("not.sofa"), b"this is not an HDF5 file at all").unwrap();
    std::fs::write(dir.join("a_file"), b"x").unwrap();
    // The real KEMAR set relabelled as another SOFA convention (same length).
    let mut sofa = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/hrtf/MIT_KEMAR_normal_pinna.sofa"
    ))
    .unwrap();
    let needle = b"SimpleFreeFieldHRIR";
    let mut patched = 0;
    let mut i = 0;
    while i + needle.len() <= sofa.len() {
        if &sofa[i..i + needle.len()] == needle {
            sofa[i + needle.len() - 1] = b'F';
            patched += 1;
        }
        i += 1;
    }
    assert!(patched > 0);
    std::fs::write(dir.join("other.sofa"), &sofa).unwrap();
    let speakers = r#"Speakers(layout: "5.1")"#;
    let s = |o: &str, b: &str, out: &str| session(o, b, out);
    let cases = vec![
        Case {
            name: "syntax error",
            session: "Session(\n  objects: [ (name: \"x\" \n".into(),
            extra_args: vec![],
            expect: vec!["session.ron:"],
        },
        Case {
            name: "unknown layout",
            session: s(GOOD_OBJECT, "", r#"Speakers(layout: "11.1")"#),
            extra_args: vec![],
            expect: vec!["11.1", "7.1.4"],
        },
        Case {
            name: "missing source",
            session: s(
                r#"(name: "vox", source: "nowhere.wav", position: Cart(x: 0, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["vox", "nowhere.wav"],
        },
        Case {
            name: "stereo source without channel",
            session: s(
                r#"(name: "gtr", source: "stereo.wav", position: Cart(x: 0, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["gtr", "2 channels", "channel"],
        },
        Case {
            name: "channel out of range",
            session: s(
                r#"(name: "gtr", source: (file: "stereo.wav", channel: 3), position: Cart(x: 0, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["gtr", "channel 3", "1…2"],
        },
        Case {
            name: "keyframes out of order",
            session: s(
                r#"(name: "fly", source: "mono.wav", position: [(time: 2.0, value: Cart(x: 0, y: 1, z: 0)), (time: 1.0, value: Cart(x: 1, y: 1, z: 0))])"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["fly", "keyframe"],
        },
        Case {
            name: "NaN position",
            session: s(
                r#"(name: "nan", source: "mono.wav", position: Cart(x: NaN, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["nan", "NaN"],
        },
        Case {
            name: "negative time",
            session: s(
                r#"(name: "neg", source: "mono.wav", position: [(time: -1.0, value: Cart(x: 0, y: 1, z: 0))])"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["neg", "-1"],
        },
        Case {
            name: "empty session",
            session: "Session(objects: [], beds: [], outputs: [Speakers(layout: \"5.1\")])".into(),
            extra_args: vec![],
            expect: vec!["session.ron"],
        },
        Case {
            name: "corrupt WAV header",
            session: s(
                r#"(name: "bad", source: "garbage.wav", position: Cart(x: 0, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["bad", "garbage.wav"],
        },
        Case {
            name: "truncated WAV",
            session: s(
                r#"(name: "cut", source: "truncated.wav", position: Cart(x: 0, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["cut", "truncated.wav"],
        },
        Case {
            name: "bed channel-count mismatch",
            session: s(
                "",
                r#"(name: "drums", source: "stereo.wav", layout: "5.1")"#,
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["drums", "2 channels", "6"],
        },
        Case {
            name: "unwritable output dir",
            session: s(GOOD_OBJECT, "", speakers),
            extra_args: vec![
                "--out".into(),
                dir.join("a_file").join("out").display().to_string(),
            ],
            expect: vec!["a_file"],
        },
        Case {
            name: "unknown --layout",
            session: s(GOOD_OBJECT, "", speakers),
            extra_args: vec!["--layout".into(), "22.2x".into()],
            expect: vec!["22.2x"],
        },
        Case {
            name: "missing HRTF file",
            session: s(GOOD_OBJECT, "", r#"Binaural(hrtf: "missing.sofa")"#),
            extra_args: vec![],
            expect: vec!["missing.sofa"],
        },
        Case {
            name: "non-SOFA HRTF file",
            session: s(GOOD_OBJECT, "", r#"Binaural(hrtf: "not.sofa")"#),
            extra_args: vec![],
            expect: vec!["not.sofa"],
        },
        Case {
            name: "unknown target",
            session: s(
                GOOD_OBJECT,
                "",
                r#"Speakers(layout: "5.1", target: "tidal-hifi")"#,
            ),
            extra_args: vec![],
            expect: vec!["tidal-hifi", "atmos-music"],
        },
        Case {
            name: "bad compressor ratio",
            session: s(
                GOOD_OBJECT,
                "",
                r#"Speakers(layout: "5.1", chain: [Compressor(threshold_db: -10, ratio: 0.5)])"#,
            ),
            extra_args: vec![],
            expect: vec!["ratio", "0.5"],
        },
        Case {
            name: "unknown field",
            session: s(
                r#"(name: "vox", source: "mono.wav", positon: Cart(x: 0, y: 1, z: 0))"#,
                "",
                speakers,
            ),
            extra_args: vec![],
            expect: vec!["positon"],
        },
    ];
    assert!(cases.len() >= 15);
    for case in cases {
        let session_path = dir.join("session.ron");
        std::fs::write(&session_path, &case.session).unwrap();
        let out = dir.join(format!("out-{}", case.name.replace(' ', "_")));
        let mut args = vec!["render".to_string(), session_path.display().to_string()];
        if !case.extra_args.iter().any(|a| a == "--out") {
            args.push("--out".into());
            args.push(out.display().to_string());
        }
        args.extend(case.extra_args.iter().cloned());
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (code, _, err) = halo(&argv);
        assert_eq!(code, 2, "{}: exit code {code}, stderr: {err}", case.name);
        for e in &case.expect {
            assert!(err.contains(e), "{}: message lacks '{e}': {err}", case.name);
        }
        assert!(!err.contains("panicked"), "{}: {err}", case.name);
        assert!(
            leftovers(&out).is_empty(),
            "{}: left {:?} in {}",
            case.name,
            leftovers(&out),
            out.display()
        );
    }
    // The session file itself missing, and bad `gains` arguments.
    let (code, _, err) = halo(&["render", dir.join("absent.ron").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("absent.ron"), "{err}");
    let (code, _, err) = halo(&["gains", "--layout", "5.1", "--size", "2", "30,0"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = halo(&["gains", "--layout", "5.1", "thirty,0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("thirty"), "{err}");
}

#[test]
fn rendered_files_carry_the_channel_mask() {
    let dir = material("masks");
    std::fs::write(
        dir.join("session.ron"),
        session(
            GOOD_OBJECT,
            "",
            r#"Speakers(layout: "5.1"), Speakers(layout: "5.1.4"), Speakers(layout: "7.1.4")"#,
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let (code, _, err) = halo(&[
        "render",
        dir.join("session.ron").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for (file, channels, mask) in [
        ("5.1.wav", 6u16, 0x60Fu32),
        ("5.1.4.wav", 10, 0x2D60F),
        ("7.1.4.wav", 12, 0x2D63F),
    ] {
        let bytes = std::fs::read(out.join(file)).unwrap();
        let fmt = bytes
            .windows(4)
            .position(|w| w == b"fmt ")
            .expect("fmt chunk");
        let tag = u16::from_le_bytes([bytes[fmt + 8], bytes[fmt + 9]]);
        assert_eq!(tag, 0xFFFE, "{file}: WAVE_FORMAT_EXTENSIBLE");
        assert_eq!(
            u16::from_le_bytes([bytes[fmt + 10], bytes[fmt + 11]]),
            channels,
            "{file}"
        );
        let m = u32::from_le_bytes(bytes[fmt + 28..fmt + 32].try_into().unwrap());
        assert_eq!(m, mask, "{file}: channel mask");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["outputs"].as_array().unwrap().len(), 3);
    assert_eq!(
        report["outputs"][2]["channels"].as_array().unwrap().len(),
        12
    );
    assert_eq!(report["outputs"][2]["frames"], 48000);
}

#[test]
fn strict_fails_on_a_missed_target_and_passes_a_met_one() {
    let dir = scratch("strict");
    write_wav(&dir.join("loud.wav"), 1, 4.0, 0.9);
    write_wav(&dir.join("quiet.wav"), 1, 4.0, 0.03);
    for (source, expected) in [("loud.wav", 3), ("quiet.wav", 0)] {
        std::fs::write(
            dir.join("session.ron"),
            session(
                &format!(r#"(name: "vox", source: "{source}", position: Cart(x: 0, y: 1, z: 0))"#),
                "",
                r#"Speakers(layout: "7.1.4", target: "atmos-music")"#,
            ),
        )
        .unwrap();
        let out = dir.join(format!("out-{source}"));
        let (code, stdout, err) = halo(&[
            "render",
            dir.join("session.ron").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--strict",
        ]);
        assert_eq!(code, expected, "{source}: {stdout}{err}");
        if expected == 3 {
            assert!(err.contains("atmos-music"), "{err}");
            // The files are still written: --strict is QC, not a render failure.
            assert!(out.join("7.1.4.wav").exists());
        }
    }
}

#[test]
fn translation_report_flags_rear_heights_and_cancelling_beds() {
    let dir = scratch("translation");
    write_wav(&dir.join("vocal.wav"), 1, 3.0, 0.2);
    write_wav(&dir.join("fx.wav"), 1, 3.0, 0.2);
    // A 2.0 bed with the same signal in L and R, opposite polarity.
    let frames = 3 * RATE as usize;
    let mut bed = vec![0.0f32; frames * 2];
    for f in 0..frames {
        let x = (0.1 * (TAU * 330.0 * f as f64 / RATE as f64).sin()) as f32;
        bed[2 * f] = x;
        bed[2 * f + 1] = -x;
    }
    write_samples(&dir.join("phasey.wav"), 2, Some(0x3), &bed);
    std::fs::write(
        dir.join("session.ron"),
        session(
            r#"(name: "vocal", source: "vocal.wav", position: Cart(x: 0, y: 1, z: 0)),
        (name: "rear-height", source: "fx.wav", position: Cart(x: -1, y: -1, z: 1))"#,
            r#"(name: "phasey", source: "phasey.wav", layout: "2.0")"#,
            r#"Speakers(layout: "7.1.4"), Stereo(from: "7.1.4")"#,
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let (code, stdout, err) = halo(&[
        "render",
        dir.join("session.ron").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--binaural",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("rear-height"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let t = &report["translation"];
    let object = |name: &str| {
        t["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()
            .clone()
    };
    let rear = object("rear-height");
    let flags = rear["flags"].as_array().unwrap();
    assert!(
        flags
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("loses")),
        "{rear}"
    );
    // Ltr folds to Lo at height·rear·surround = (√½)³: −9 dB.
    let delta = rear["stereo_delta_db"].as_f64().unwrap();
    assert!((delta + 9.03).abs() < 0.1, "rear height delta {delta}");
    let vocal = object("vocal");
    assert!(vocal["flags"].as_array().unwrap().is_empty(), "{vocal}");
    assert!(
        vocal["stereo_delta_db"].as_f64().unwrap().abs() < 0.05,
        "{vocal}"
    );
    let bed = &t["beds"][0];
    assert!(
        bed["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("cancels")),
        "{bed}"
    );
    // The stereo output's image is measured: the anti-phase bed costs level in mono.
    let stereo = report["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "stereo")
        .unwrap();
    assert!(
        stereo["image"]["mono_loss_db"].as_f64().unwrap() < -0.5,
        "{stereo}"
    );
    // Binaural output written, stereo-shaped, and in the report.
    assert!(out.join("binaural.wav").exists());
    assert!(
        report["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "binaural")
    );
    assert!(t["failures"].as_array().unwrap().len() >= 2);
}

#[test]
fn gains_and_layouts_commands() {
    let (code, stdout, err) = halo(&["gains", "--layout", "7.1.4", "30,0", "0,90"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["channels"].as_array().unwrap().len(), 12);
    assert_eq!(v["gains"][0][0].as_f64().unwrap(), 1.0, "M+030 is L alone");
    assert_eq!(
        v["gains"][0][3].as_f64().unwrap(),
        0.0,
        "LFE column present, 0"
    );
    let (code, stdout, _) = halo(&["layouts", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // The original eight, the seven without LFE and BS.2051 systems E, F, G and H.
    assert_eq!(v.as_array().unwrap().len(), 19);
}

#[test]
fn loudness_command_reads_tech_3341_case_1() {
    // EBU Tech 3341 case 1 (shortened to 5 s): a 1 kHz sine at −23 dBFS in both channels
    // of a stereo file reads −23.0 LUFS; the layout comes from the file's channel mask.
    let dir = scratch("loudness");
    let frames = 5 * RATE as usize;
    let amp = 10f64.powf(-23.0 / 20.0);
    let mut data = vec![0.0f32; frames * 2];
    for f in 0..frames {
        let x = (amp * (TAU * 1000.0 * f as f64 / RATE as f64).sin()) as f32;
        data[2 * f] = x;
        data[2 * f + 1] = x;
    }
    let path = dir.join("case1.wav");
    write_samples(&path, 2, Some(0x3), &data);
    let (code, stdout, err) = halo(&["loudness", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["layout"], "2.0");
    let i = v["loudness"]["integrated_lufs"].as_f64().unwrap();
    assert!((i + 23.0).abs() <= 0.1, "integrated {i}");
    // A file that is not a WAV is bad input.
    std::fs::write(dir.join("x.wav"), b"nope").unwrap();
    let (code, _, err) = halo(&["loudness", dir.join("x.wav").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}

/// Reads a float WAV written by `halo render --format f32` (data after a 4-byte-aligned header).
fn read_f32(path: &Path) -> Vec<f32> {
    let mut r = halo::formats::io::WavReader::open(path).unwrap();
    let mut v = vec![0.0f32; r.info().frames as usize * r.info().channels];
    let n = r.read(&mut v).unwrap();
    v.truncate(n * r.info().channels);
    v
}

#[test]
fn objects_sharing_one_file_render_as_if_each_had_its_own() {
    // Two objects on channels 1 and 2 of one stereo file (as in an ADM master, where every
    // object is a track of the same file) against the same two channels as mono files.
    let dir = material("shared_file");
    let stereo = read_f32(&dir.join("stereo.wav"));
    let left: Vec<f32> = stereo.iter().step_by(2).copied().collect();
    let right: Vec<f32> = stereo.iter().skip(1).step_by(2).copied().collect();
    write_samples(&dir.join("left.wav"), 1, None, &left);
    write_samples(&dir.join("right.wav"), 1, None, &right);
    let outputs = r#"Speakers(layout: "5.1")"#;
    let shared = session(
        r#"(name: "a", source: (file: "stereo.wav", channel: 1), position: Polar(az: 20, el: 0, dist: 1)),
        (name: "b", source: (file: "stereo.wav", channel: 2), position: [(time: 0.0, value: Cart(x: 0.3, y: -0.5, z: 0)), (time: 1.0, value: Cart(x: -0.3, y: 0.5, z: 0))])"#,
        "",
        outputs,
    );
    let separate = shared
        .replace(r#"(file: "stereo.wav", channel: 1)"#, r#""left.wav""#)
        .replace(r#"(file: "stereo.wav", channel: 2)"#, r#""right.wav""#);
    assert_ne!(shared, separate);
    let mut renders = Vec::new();
    for (name, text) in [("shared", &shared), ("separate", &separate)] {
        std::fs::write(dir.join(format!("{name}.ron")), text).unwrap();
        let out = dir.join(name);
        let (code, _, err) = halo(&[
            "render",
            dir.join(format!("{name}.ron")).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "f32",
        ]);
        assert_eq!(code, 0, "{name}: {err}");
        renders.push(read_f32(&out.join("5.1.wav")));
    }
    assert_eq!(renders[0].len(), 48000 * 6);
    assert!(renders[0].iter().any(|&x| x.abs() > 0.05));
    assert_eq!(renders[0], renders[1], "bit-identical");
}

#[test]
fn threads_do_not_change_a_single_bit() {
    // `--threads 1` renders everything on one engine; `--threads 3` runs the binaural
    // path, the 7.1.4 bus (with its fold-down) and the 5.1 bus on threads of their own.
    let dir = material("threads");
    let text = session(
        r#"(name: "a", source: "mono.wav", position: [(time: 0.0, value: Polar(az: -60, el: 10, dist: 1)), (time: 0.9, value: Polar(az: 150, el: 40, dist: 1))]),
        (name: "b", source: "mono.wav", position: Cart(x: 0.5, y: -0.5, z: 0.5), gain_db: -6)"#,
        r#"(name: "bed", source: "bed51.wav", layout: "5.1")"#,
        r#"Speakers(layout: "7.1.4", chain: [Limiter()]), Speakers(layout: "5.1"), Binaural(chain: [Limiter()]), Stereo(chain: [Compressor(threshold_db: -30, ratio: 3)])"#,
    );
    std::fs::write(dir.join("s.ron"), text).unwrap();
    let mut renders = Vec::new();
    for threads in ["1", "3"] {
        let out = dir.join(format!("t{threads}"));
        let (code, _, err) = halo(&[
            "render",
            dir.join("s.ron").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--threads",
            threads,
        ]);
        assert_eq!(code, 0, "--threads {threads}: {err}");
        let files: Vec<Vec<u8>> = ["7.1.4.wav", "5.1.wav", "binaural.wav", "stereo.wav"]
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect();
        renders.push(files);
    }
    assert!(renders[0].iter().all(|f| f.len() > 48000 * 2 * 3));
    assert!(
        renders[0] == renders[1],
        "files differ between 1 and 3 threads"
    );
}
