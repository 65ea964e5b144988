//! ADM read rules, one test per rule: the timing fixes DAWs need (Pro Tools' 10 µs
//! rounding, a last block shorter than its interpolationLength, a first block without
//! rtime, gaps under a sample), the BS.2094-1 common definitions in both reference forms
//! and in chna-only files (channel labels against the standard's tables), and the
//! DirectSpeakers LFE detection paths of BS.2127 §8.

use halo::formats::adm::*;
use halo::scene::mix::{BedSpec, Scene};
use std::path::PathBuf;

const RATE: u32 = 48000;

fn audio(channels: usize) -> AdmAudio {
    AdmAudio {
        path: PathBuf::from("master.wav"),
        channels,
        sample_rate: RATE,
        frames: 480_000,
    }
}

fn entry(track: u16, uid: &str, track_ref: &str, pack: &str) -> ChnaEntry {
    ChnaEntry {
        track_index: track,
        uid: uid.into(),
        track_ref: track_ref.into(),
        pack_ref: pack.into(),
    }
}

/// A one-object document: `blocks` are the audioBlockFormat elements of an Objects
/// channel AC_00031001 carried by ATU_00000001 on track 1.
fn object_doc(blocks: &str) -> (Scene, Vec<String>) {
    let xml = format!(
        r#"<audioFormatExtended>
<audioProgramme audioProgrammeID="APR_1001" audioProgrammeName="p"><audioContentIDRef>ACO_1001</audioContentIDRef></audioProgramme>
<audioContent audioContentID="ACO_1001" audioContentName="c"><audioObjectIDRef>AO_1001</audioObjectIDRef></audioContent>
<audioObject audioObjectID="AO_1001" audioObjectName="o"><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
<audioPackFormat audioPackFormatID="AP_00031001" audioPackFormatName="o" typeDefinition="Objects"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_00031001" audioChannelFormatName="o" typeDefinition="Objects">{blocks}</audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef></audioTrackUID>
</audioFormatExtended>"#
    );
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let chna = Chna {
        entries: vec![entry(1, "ATU_00000001", "AC_00031001_00", "AP_00031001")],
    };
    to_scene(&doc, &chna, &audio(1)).unwrap_or_else(|e| panic!("{e}"))
}

fn block(n: u32, rtime: Option<&str>, duration: &str, azimuth: f64, extra: &str) -> String {
    let rtime = rtime.map_or(String::new(), |r| format!(r#" rtime="{r}""#));
    format!(
        r#"<audioBlockFormat audioBlockFormatID="AB_00031001_{n:08x}"{rtime} duration="{duration}"><position coordinate="azimuth">{azimuth}</position><position coordinate="elevation">0</position>{extra}</audioBlockFormat>"#
    )
}

fn timing_lines(warnings: &[String]) -> Vec<&String> {
    warnings
        .iter()
        .filter(|w| w.starts_with("timing:"))
        .collect()
}

fn azimuth_at(scene: &Scene, frame: f64) -> f64 {
    match scene.objects[0].position.value_at(frame) {
        halo::scene::geometry::Position::Polar { azimuth_deg, .. } => azimuth_deg,
        p => panic!("{p:?}"),
    }
}

#[test]
fn pro_tools_overlaps_of_10_us_run_each_block_to_the_next_rtime() {
    // Pro Tools: 10.67 ms blocks whose rtime/duration are rounded to 10 µs, so each block
    // ends 10 µs after the next one starts.
    let mut blocks = String::new();
    for i in 0..20u32 {
        let rtime = format!("00:00:00.{:05}", (i as f64 * 1066.6667).round() as u64);
        blocks += &block(i + 1, Some(&rtime), "00:00:00.01067", i as f64, "");
    }
    let (scene, warnings) = object_doc(&blocks);
    let timing = timing_lines(&warnings);
    assert!(
        timing.iter().any(|w| w.contains("overlapping")),
        "{warnings:?}"
    );
    // One line per kind, never one per block.
    assert!(timing.len() <= 2, "{timing:?}");
    assert!(warnings.len() <= 3, "{warnings:?}");
    // Blocks are contiguous, so each one interpolates from the previous value over its
    // whole length (jumpPosition 0): halfway through block 10 (8° → 9°) it is at 8.5°.
    let mid = (9.5 * 0.0106667 * f64::from(RATE)).round();
    assert!(
        (azimuth_at(&scene, mid) - 8.5).abs() < 0.1,
        "{}",
        azimuth_at(&scene, mid)
    );
}

#[test]
fn an_overlap_beyond_rounding_is_still_refused() {
    let xml = format!(
        r#"<audioFormatExtended><audioChannelFormat audioChannelFormatID="AC_00031001" audioChannelFormatName="o" typeDefinition="Objects">{}{}</audioChannelFormat></audioFormatExtended>"#,
        block(1, Some("00:00:00.00000"), "00:00:01.00000", 0.0, ""),
        block(2, Some("00:00:00.50000"), "00:00:01.00000", 0.0, "")
    );
    let err = parse_axml(xml.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("before the previous block's end"), "{err}");
}

#[test]
fn interpolation_longer_than_a_short_last_block_is_clamped() {
    // Pro Tools ends each object in a 20 µs block with interpolationLength 5.208 ms.
    let jump = r#"<jumpPosition interpolationLength="0.005208">1</jumpPosition>"#;
    let blocks = block(1, Some("00:00:00.00000"), "00:00:00.50000", 0.0, jump)
        + &block(2, Some("00:00:00.50000"), "00:00:00.00002", 40.0, jump);
    let (scene, warnings) = object_doc(&blocks);
    let timing = timing_lines(&warnings);
    assert!(
        timing.iter().any(|w| w.contains("interpolationLength")),
        "{warnings:?}"
    );
    // The move to 40° ends with the block, one sample after it starts (20 µs ≈ 1 frame).
    let start = 0.5 * f64::from(RATE);
    assert!((azimuth_at(&scene, start + 1.0) - 40.0).abs() < 1e-9);
    assert_eq!(azimuth_at(&scene, start - 1.0), 0.0);
}

#[test]
fn a_first_block_without_rtime_starts_at_zero() {
    // A real EPS export: the first block has a duration but no rtime.
    let blocks = block(1, None, "00:00:01.00000", 10.0, "")
        + &block(2, Some("00:00:01.00000"), "00:00:01.00000", 30.0, "");
    let (scene, warnings) = object_doc(&blocks);
    assert!(
        timing_lines(&warnings)
            .iter()
            .any(|w| w.contains("no rtime")),
        "{warnings:?}"
    );
    assert_eq!(azimuth_at(&scene, 0.0), 10.0);
    // Block 2 follows on directly: it interpolates 10° → 30° over its second.
    assert!((azimuth_at(&scene, 1.5 * f64::from(RATE)) - 20.0).abs() < 1e-6);
}

#[test]
fn a_gap_under_a_sample_is_closed() {
    // 0.0000100 s = 0.48 samples at 48 kHz: block 1 runs on to block 2's rtime.
    let blocks = block(1, Some("00:00:00.00000"), "00:00:00.99999", 0.0, "")
        + &block(2, Some("00:00:01.00000"), "00:00:01.00000", 30.0, "");
    let (scene, warnings) = object_doc(&blocks);
    let timing = timing_lines(&warnings);
    assert!(
        timing.iter().any(|w| w.contains("less than a sample")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("gap between blocks")),
        "{warnings:?}"
    );
    assert!((azimuth_at(&scene, 1.5 * f64::from(RATE)) - 15.0).abs() < 1e-6);
}

#[test]
fn times_off_the_sample_grid_give_one_line_not_one_per_block() {
    let mut blocks = String::new();
    for i in 0..50u32 {
        // 1/3 ms steps: never on a 48 kHz sample. Six digits: a five-decimal time that is a
        // sample rounded to 10 µs (as Dolby tools and halo's profile write) is not a fix.
        let rtime = format!("00:00:00.{:05}0", i as u64 * 33 + 1);
        blocks += &block(i + 1, Some(&rtime), "00:00:00.00033", 0.0, "");
    }
    let (_, warnings) = object_doc(&blocks);
    let snapped: Vec<_> = warnings.iter().filter(|w| w.contains("snapped")).collect();
    assert_eq!(snapped.len(), 1, "{warnings:?}");
    assert!(snapped[0].contains("50 ×"), "{snapped:?}");
}

/// BS.2094-1 Table 4 packs with their channels' BS.2051 labels in the standard's order
/// (Table 5 gives each channel's label).
const PACKS: &[(&str, &[&str])] = &[
    ("AP_00010001", &["M+000"]),
    ("AP_00010002", &["M+030", "M-030"]),
    (
        "AP_0001000c",
        &["M+030", "M-030", "M+000", "M+110", "M-110"],
    ),
    (
        "AP_00010003",
        &["M+030", "M-030", "M+000", "LFE1", "M+110", "M-110"],
    ),
    (
        "AP_00010013",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+110", "M-110", "U+090", "U-090",
        ],
    ),
    (
        "AP_00010005",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+110", "M-110", "U+030", "U-030", "U+110", "U-110",
        ],
    ),
    (
        "AP_0001000f",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135", "M-135",
        ],
    ),
    (
        "AP_00010016",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135", "M-135", "U+090", "U-090",
        ],
    ),
    (
        "AP_00010017",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135", "M-135", "U+045",
            "U-045", "U+135", "U-135",
        ],
    ),
    (
        "AP_00010010",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+110", "M-110", "U+030", "U-030", "U+110",
            "U-110", "B+000",
        ],
    ),
    (
        "AP_00010007",
        &[
            "M+000", "M+030", "M-030", "U+045", "U-045", "M+090", "M-090", "M+135", "M-135",
            "UH+180", "LFEL", "LFER",
        ],
    ),
    (
        "AP_00010008",
        &[
            "M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135", "M-135", "U+045",
            "U-045", "U+135", "U-135", "M+SC", "M-SC",
        ],
    ),
    (
        "AP_00010009",
        &[
            "M+060", "M-060", "M+000", "LFEL", "M+135", "M-135", "M+030", "M-030", "M+180", "LFER",
            "M+090", "M-090", "U+045", "U-045", "U+000", "T+000", "U+135", "U-135", "U+090",
            "U-090", "U+180", "B+000", "B+045", "B-045",
        ],
    ),
];

/// Channel digits of a BS.2094-1 label (Table 5), for building references.
fn channel_of_label(label: &str) -> u8 {
    const T5: [&str; 40] = [
        "M+030",
        "M-030",
        "M+000",
        "LFE1",
        "M+110",
        "M-110",
        "M+022",
        "M-022",
        "M+180",
        "M+090",
        "M-090",
        "T+000",
        "U+030",
        "U+000",
        "U-030",
        "U+110",
        "U+180",
        "U-110",
        "U+090",
        "U-090",
        "B+000",
        "B+045",
        "B-045",
        "M+060",
        "M-060",
        "M+135_Diff",
        "M-135_Diff",
        "M+135",
        "M-135",
        "U+135",
        "U-135",
        "LFEL",
        "LFER",
        "U+045",
        "U-045",
        "M+SC",
        "M-SC",
        "M+045",
        "M-045",
        "UH+180",
    ];
    T5.iter().position(|l| *l == label).unwrap() as u8 + 1
}

/// For each file track (0-based), the bed channel's BS.2051 name and LFE flag.
fn bed_tracks(bed: &BedSpec, tracks: usize) -> Vec<(String, bool)> {
    let mut out = vec![(String::new(), false); tracks];
    let channels = bed.channels.clone().unwrap();
    for (c, &t) in bed.layout.channels.iter().zip(&channels) {
        out[t] = (c.name.clone(), c.lfe);
    }
    out
}

fn check_pack_scene(pack: &str, labels: &[&str], scene: &Scene) {
    assert_eq!(scene.beds.len(), 1, "{pack}");
    assert!(scene.objects.is_empty(), "{pack}");
    let got = bed_tracks(&scene.beds[0], labels.len());
    for (t, (want, (name, lfe))) in labels.iter().zip(&got).enumerate() {
        assert_eq!(name, want, "{pack} track {}", t + 1);
        assert_eq!(*lfe, want.starts_with("LFE"), "{pack} {want}");
    }
}

#[test]
fn every_common_pack_from_the_chna_alone() {
    // BS.2088: common definitions need no axml; the chna names track and pack formats.
    for (pack, labels) in PACKS {
        let entries = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                entry(
                    i as u16 + 1,
                    &format!("ATU_{:08}", i + 1),
                    &format!("AT_000100{:02x}_01", channel_of_label(l)),
                    pack,
                )
            })
            .collect();
        let chna = Chna { entries };
        let (scene, _) = to_scene(&AdmDocument::default(), &chna, &audio(labels.len()))
            .unwrap_or_else(|e| panic!("{pack}: {e}"));
        check_pack_scene(pack, labels, &scene);
    }
}

/// A document whose object refers to a common pack, its UIDs in the BS.2076-1 form
/// (→ AT_000100xx_01) or the BS.2076-2 form (→ AC_000100xx).
fn common_pack_doc(pack: &str, labels: &[&str], direct: bool) -> (AdmDocument, Chna) {
    let mut xml = String::from(
        r#"<audioFormatExtended><audioObject audioObjectID="AO_1001" audioObjectName="bed">"#,
    );
    xml += &format!("<audioPackFormatIDRef>{pack}</audioPackFormatIDRef>");
    for i in 0..labels.len() {
        xml += &format!("<audioTrackUIDRef>ATU_{:08}</audioTrackUIDRef>", i + 1);
    }
    xml += "</audioObject>";
    let mut entries = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let c = channel_of_label(l);
        let reference = if direct {
            format!("<audioChannelFormatIDRef>AC_000100{c:02x}</audioChannelFormatIDRef>")
        } else {
            format!("<audioTrackFormatIDRef>AT_000100{c:02x}_01</audioTrackFormatIDRef>")
        };
        xml += &format!(
            r#"<audioTrackUID UID="ATU_{:08}">{reference}<audioPackFormatIDRef>{pack}</audioPackFormatIDRef></audioTrackUID>"#,
            i + 1
        );
        entries.push(entry(
            i as u16 + 1,
            &format!("ATU_{:08}", i + 1),
            &if direct {
                format!("AC_000100{c:02x}_00")
            } else {
                format!("AT_000100{c:02x}_01")
            },
            pack,
        ));
    }
    xml += "</audioFormatExtended>";
    (
        parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{pack}: {e}")),
        Chna { entries },
    )
}

#[test]
fn every_common_pack_in_both_reference_forms() {
    for direct in [false, true] {
        for (pack, labels) in PACKS {
            let (doc, chna) = common_pack_doc(pack, labels, direct);
            let (scene, _) = to_scene(&doc, &chna, &audio(labels.len()))
                .unwrap_or_else(|e| panic!("{pack} (direct {direct}): {e}"));
            check_pack_scene(pack, labels, &scene);
        }
    }
}

/// A DirectSpeakers pack of its own with one channel per (label, lowPass Hz).
fn own_speakers(channels: &[(Option<&str>, Option<f64>, f64)]) -> (Scene, Vec<String>) {
    let mut xml = String::from(
        r#"<audioFormatExtended><audioObject audioObjectID="AO_1001" audioObjectName="bed"><audioPackFormatIDRef>AP_00011001</audioPackFormatIDRef>"#,
    );
    for i in 0..channels.len() {
        xml += &format!("<audioTrackUIDRef>ATU_{:08}</audioTrackUIDRef>", i + 1);
    }
    xml += r#"</audioObject><audioPackFormat audioPackFormatID="AP_00011001" audioPackFormatName="bed" typeDefinition="DirectSpeakers">"#;
    for i in 0..channels.len() {
        xml += &format!(
            "<audioChannelFormatIDRef>AC_0001{:04x}</audioChannelFormatIDRef>",
            0x1001 + i
        );
    }
    xml += "</audioPackFormat>";
    let mut entries = Vec::new();
    for (i, (label, low_pass, azimuth)) in channels.iter().enumerate() {
        let id = format!("{:04x}", 0x1001 + i);
        xml += &format!(
            r#"<audioChannelFormat audioChannelFormatID="AC_0001{id}" audioChannelFormatName="c{i}" typeDefinition="DirectSpeakers">"#
        );
        if let Some(hz) = low_pass {
            xml += &format!(r#"<frequency typeDefinition="lowPass">{hz}</frequency>"#);
        }
        xml += &format!(r#"<audioBlockFormat audioBlockFormatID="AB_0001{id}_00000001">"#);
        if let Some(l) = label {
            xml += &format!("<speakerLabel>{l}</speakerLabel>");
        }
        xml += &format!(
            r#"<position coordinate="azimuth">{azimuth}</position><position coordinate="elevation">0</position></audioBlockFormat></audioChannelFormat>"#
        );
        xml += &format!(
            r#"<audioTrackUID UID="ATU_{:08}"><audioChannelFormatIDRef>AC_0001{id}</audioChannelFormatIDRef><audioPackFormatIDRef>AP_00011001</audioPackFormatIDRef></audioTrackUID>"#,
            i + 1
        );
        entries.push(entry(
            i as u16 + 1,
            &format!("ATU_{:08}", i + 1),
            &format!("AC_0001{id}_00"),
            "AP_00011001",
        ));
    }
    xml += "</audioFormatExtended>";
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    to_scene(&doc, &Chna { entries }, &audio(channels.len())).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn lfe_is_found_by_every_label_and_by_low_pass() {
    for label in [
        "LFE", "LFE1", "LFE2", "LFEL", "LFER", "LFE+045", "LFE-045", "RC_LFE",
    ] {
        let (scene, _) = own_speakers(&[
            (Some("M+030"), None, 30.0),
            (Some("M-030"), None, -30.0),
            (Some("M+000"), None, 0.0),
            (Some(label), None, 0.0),
            (Some("M+200"), None, 160.0),
        ]);
        assert!(
            scene.objects.is_empty(),
            "{label}: no channel becomes an object"
        );
        let tracks = bed_tracks(&scene.beds[0], 5);
        assert!(tracks[3].1, "{label} is an LFE: {tracks:?}");
        assert!(!tracks[0].1 && !tracks[4].1, "{label}: {tracks:?}");
    }
    // An LFE known only by its frequency lowPass (≤ 200 Hz), labelled "Sub".
    let (scene, _) = own_speakers(&[(Some("M+030"), None, 30.0), (Some("Sub"), Some(120.0), 0.0)]);
    let tracks = bed_tracks(&scene.beds[0], 2);
    assert!(tracks[1].1, "{tracks:?}");
    // A lowPass above 200 Hz is not an LFE.
    let (scene, _) = own_speakers(&[(Some("M+030"), None, 30.0), (Some("Sub"), Some(250.0), 0.0)]);
    assert!(!bed_tracks(&scene.beds[0], 2)[1].1);
}

#[test]
fn dolby_rc_labels_make_the_7_1_2_bed() {
    let labels = [
        "RC_L", "RC_R", "RC_C", "RC_LFE", "RC_Lss", "RC_Rss", "RC_Lrs", "RC_Rrs", "RC_Lts",
        "RC_Rts",
    ];
    let channels: Vec<_> = labels.iter().map(|l| (Some(*l), None, 0.0)).collect();
    let (scene, _) = own_speakers(&channels);
    assert_eq!(scene.beds.len(), 1);
    // 7.1.2's speakers, under the pack's name: an own pack is not an ITU common
    // definition, so BS.2127 §8's mapping rules do not apply to it.
    let builtin = halo::scene::layout::Layout::builtin("7.1.2").unwrap();
    assert_eq!(scene.beds[0].layout.channels, builtin.channels);
    assert_eq!(scene.beds[0].layout.name, "ADM AP_00011001");
    let names: Vec<String> = bed_tracks(&scene.beds[0], 10)
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(
        names,
        [
            "M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135", "M-135", "U+090", "U-090"
        ]
    );
}

/// A chna-only 5.1 master (BS.2088: common definitions need no axml): one second of a
/// 1 kHz tone on each track at its own level, track 4 (LFE) at -6 dBFS.
fn chna_only_master(dir: &std::path::Path) -> PathBuf {
    use halo::formats::io::{Chunk, WavSpec, WavWriter, WriteFormat};
    let path = dir.join("master.wav");
    let entries = (1..=6u16)
        .map(|i| {
            entry(
                i,
                &format!("ATU_{i:08}"),
                &format!("AT_0001000{i}_01"),
                "AP_00010003",
            )
        })
        .collect();
    let spec = WavSpec {
        channels: 6,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create_with_chunks(
        &path,
        spec,
        vec![Chunk {
            id: *b"chna",
            data: write_chna(&Chna { entries }),
        }],
    )
    .unwrap();
    let frames = RATE as usize;
    let mut samples = vec![0.0f32; frames * 6];
    for f in 0..frames {
        let s = (std::f64::consts::TAU * 1000.0 * f as f64 / f64::from(RATE)).sin();
        samples[f * 6 + 3] = (0.5 * s) as f32;
    }
    w.write(&samples).unwrap();
    w.finish().unwrap().commit().unwrap();
    path
}

#[test]
fn a_master_rendered_with_layout_writes_only_that_layout() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adm_rules_layout");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let master = chna_only_master(&dir);
    let out = dir.join("render");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args([
            "render",
            master.to_str().unwrap(),
            "--layout",
            "7.1.4",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut wavs: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wav"))
        .collect();
    wavs.sort();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    // The chna-only bed's LFE reaches the 7.1.4 LFE (channel 4) and nothing else.
    let mut r = halo::formats::io::WavReader::open(&out.join(&wavs[0])).unwrap();
    let n = r.info().channels;
    assert_eq!(n, 12);
    let mut buf = vec![0.0f32; n * RATE as usize];
    let got = r.read(&mut buf).unwrap();
    let mut energy = vec![0.0f64; n];
    for frame in buf[..got * n].chunks(n) {
        for (e, &v) in energy.iter_mut().zip(frame) {
            *e += f64::from(v) * f64::from(v);
        }
    }
    // A 0.5-amplitude sine over (most of) a second: 0.125 · 48000 = 6000.
    assert!((energy[3] / 6000.0 - 1.0).abs() < 0.05, "{energy:?}");
    let others: f64 = energy
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, e)| e)
        .sum();
    assert!(others < 1e-9, "{energy:?}");
}

#[test]
fn a_channel_without_a_label_is_placed_by_its_position() {
    let (scene, _) = own_speakers(&[(Some("M+030"), None, 30.0), (None, None, -60.0)]);
    assert_eq!(scene.beds.len(), 1);
    let ch = &scene.beds[0].layout.channels;
    let unlabelled = ch.iter().find(|c| c.name == "AC_00011002").unwrap();
    assert_eq!(unlabelled.azimuth_deg, -60.0);
    assert!(!unlabelled.lfe);
}

/// Two complementary objects (a dialogue in two languages): AO_1001 leads, AO_1002 is its
/// alternative; each on its own track.
fn complementary_doc() -> (AdmDocument, Chna) {
    let mut xml = String::from("<audioFormatExtended>");
    for (i, az) in [(1u32, 30.0), (2, -30.0)] {
        let comp = if i == 1 {
            "<audioComplementaryObjectIDRef>AO_1002</audioComplementaryObjectIDRef>"
        } else {
            ""
        };
        xml += &format!(
            r#"<audioObject audioObjectID="AO_100{i}" audioObjectName="lang{i}"><audioPackFormatIDRef>AP_0003100{i}</audioPackFormatIDRef><audioTrackUIDRef>ATU_0000000{i}</audioTrackUIDRef>{comp}</audioObject>
<audioPackFormat audioPackFormatID="AP_0003100{i}" audioPackFormatName="o" typeDefinition="Objects"><audioChannelFormatIDRef>AC_0003100{i}</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_0003100{i}" audioChannelFormatName="o" typeDefinition="Objects"><audioBlockFormat audioBlockFormatID="AB_0003100{i}_00000001"><position coordinate="azimuth">{az}</position><position coordinate="elevation">0</position></audioBlockFormat></audioChannelFormat>
<audioTrackUID UID="ATU_0000000{i}"><audioChannelFormatIDRef>AC_0003100{i}</audioChannelFormatIDRef></audioTrackUID>"#
        );
    }
    xml += "</audioFormatExtended>";
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let chna = Chna {
        entries: vec![
            entry(1, "ATU_00000001", "AC_00031001_00", "AP_00031001"),
            entry(2, "ATU_00000002", "AC_00031002_00", "AP_00031002"),
        ],
    };
    (doc, chna)
}

#[test]
fn only_the_chosen_complementary_object_renders() {
    let (doc, chna) = complementary_doc();
    // Default: the leader.
    let (scene, warnings) = to_scene(&doc, &chna, &audio(2)).unwrap();
    let names: Vec<&str> = scene.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["lang1"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("rendering AO_1001 only")),
        "{warnings:?}"
    );
    // --complementary AO_1002.
    let (scene, _) =
        to_scene_choosing(&doc, &chna, &audio(2), None, &["AO_1002".to_string()]).unwrap();
    let names: Vec<&str> = scene.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["lang2"]);
    assert_eq!(scene.objects[0].source.channel, Some(1));
    // An object in no group is a clear error.
    let err = to_scene_choosing(&doc, &chna, &audio(2), None, &["AO_1003".to_string()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AO_1003") && err.contains("AO_1001 AO_1002"),
        "{err}"
    );
}
