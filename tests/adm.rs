//! ADM (ITU-R BS.2076-2 / BS.2088): hand-written documents convert to the expected halo
//! scene (values checked against the BS.2127 timing rules and the panner), halo sessions
//! round-trip through axml + chna exactly, and a corpus of malformed input gives clear
//! errors naming the element and value.

use halo::formats::adm::*;
use halo::formats::session;
use halo::scene::automation::{Automation, Interpolate, Interpolation};
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::scene::mix::Scene;
use halo::spatial::panner::Panner;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/adm")
        .join(name)
}

fn audio(channels: usize) -> AdmAudio {
    AdmAudio {
        path: PathBuf::from("master.wav"),
        channels,
        sample_rate: 48000,
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

/// The chna of `two_contents.xml`: guitar on track 1, fly on track 2, the 5.1 bed on 3…8.
fn two_contents_chna() -> Chna {
    let mut entries = vec![
        entry(1, "ATU_00000007", "AT_00031001_01", "AP_00031001"),
        entry(2, "ATU_00000008", "AC_00031002_00", "AP_00031002"),
    ];
    for i in 1..=6u16 {
        entries.push(entry(
            2 + i,
            &format!("ATU_0000000{i}"),
            &format!("AC_0001000{i}_00"),
            "AP_00010003",
        ));
    }
    Chna { entries }
}

fn two_contents() -> (Scene, Vec<String>, AdmDocument) {
    let xml = std::fs::read(data("two_contents.xml")).unwrap();
    let doc = parse_axml(&xml).unwrap_or_else(|e| panic!("{e}"));
    // The chna goes through its binary form.
    let chna = parse_chna(&write_chna(&two_contents_chna())).unwrap();
    let (scene, warnings) = to_scene(&doc, &chna, &audio(8)).unwrap_or_else(|e| panic!("{e}"));
    (scene, warnings, doc)
}

fn cart(x: f64, y: f64, z: f64) -> Position {
    Position::Cartesian { x, y, z }
}

#[test]
fn programme_with_two_contents_gives_the_bed_and_both_objects() {
    let (scene, warnings, doc) = two_contents();
    assert_eq!(scene.sample_rate, 48000);
    assert_eq!(scene.duration_frames, Some(480_000), "programme end 10 s");
    let names: Vec<&str> = scene.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["Guitar", "Fly & by"]);
    assert_eq!(scene.beds.len(), 1);
    let bed = &scene.beds[0];
    assert_eq!(bed.name, "Bed 5.1");
    assert_eq!(bed.layout, Layout::builtin("5.1").unwrap());
    assert_eq!(bed.channels, Some(vec![2, 3, 4, 5, 6, 7]));
    assert!((bed.gain_db + 3.0).abs() < 1e-12);
    assert_eq!(bed.source, PathBuf::from("master.wav"));
    // Sources are channels of the ADM file itself.
    assert_eq!(scene.objects[0].source.channel, Some(0));
    assert_eq!(scene.objects[1].source.channel, Some(1));
    let l = doc.programmes[0].loudness.unwrap();
    assert_eq!(
        (l.integrated_lufs, l.max_true_peak_dbtp),
        (Some(-18.5), Some(-1.2))
    );
    // The zone that the fly's last block adds (a jump at 4 s) is a control change of its
    // own, not a warning.
    assert!(
        !warnings.iter().any(|w| w.contains("zoneExclusion")),
        "{warnings:?}"
    );
    let fly = &scene.objects[1].controls;
    assert!(fly.zones.is_empty());
    assert_eq!(fly.changes.len(), 1);
    assert_eq!(
        (fly.changes[0].ramp_from, fly.changes[0].frame),
        (192_000, 192_000)
    );
    assert_eq!(
        fly.changes[0].set.zones,
        [halo::scene::mix::ExclusionZone::Cartesian {
            min_x: -1.0,
            max_x: 1.0,
            min_y: -1.0,
            max_y: -0.5,
            min_z: 0.0,
            max_z: 1.0
        }]
    );
}

#[test]
fn static_object_at_azimuth_30_renders_into_l_alone() {
    let (scene, _, _) = two_contents();
    let gtr = &scene.objects[0];
    assert!(gtr.is_static());
    assert_eq!(
        gtr.position.first_value(),
        Position::Polar {
            azimuth_deg: 30.0,
            elevation_deg: 0.0,
            distance: 1.0
        }
    );
    assert_eq!(gtr.size.first_value(), 0.0);
    let layout = Layout::builtin("5.1").unwrap();
    let panner = Panner::new(&layout).unwrap();
    let mut g = vec![0.0; layout.num_channels()];
    panner.position_gains(gtr.position.first_value(), gtr.size.first_value(), &mut g);
    let l = layout.channel_index("L").unwrap();
    for (c, &v) in g.iter().enumerate() {
        let want = if c == l { 1.0 } else { 0.0 };
        assert!((v - want).abs() < 1e-9, "channel {c}: {v} (gains {g:?})");
    }
}

#[test]
fn cartesian_blocks_follow_the_bs2127_timing_rules() {
    let (scene, _, _) = two_contents();
    let fly = &scene.objects[1];
    let keys: Vec<(u64, Position, Interpolation)> = fly
        .position
        .keyframes()
        .iter()
        .map(|k| (k.frame, k.value, k.interpolation))
        .collect();
    use Interpolation::*;
    assert_eq!(
        keys,
        vec![
            // Block 1: the first block jumps to its position.
            (0, cart(-1.0, 1.0, 0.0), Step),
            // Block 2 (jumpPosition 0): from block 1's position over its whole 2 s.
            (48_000, cart(-1.0, 1.0, 0.0), Linear),
            // Block 3 (jumpPosition 1, interpolationLength 0.25 s): 12000 frames.
            (144_000, cart(1.0, 1.0, 0.5), Linear),
            (156_000, cart(1.0, -1.0, 0.5), Step),
            // Block 4 (jumpPosition 1, no length, sample-form rtime): a jump, exact to the
            // sample (held up to the frame before, as the engine ramps between gain points).
            (191_999, cart(1.0, -1.0, 0.5), Step),
            (192_000, cart(0.0, -1.0, 0.0), Step),
        ]
    );
    // Mid-way through block 2 the object is half-way, and holds after block 3's ramp.
    assert_eq!(fly.position.value_at(96_000.0), cart(0.0, 1.0, 0.25));
    assert_eq!(fly.position.value_at(170_000.0), cart(1.0, -1.0, 0.5));
    // Gain: object gain 0.5 (−6.02 dB) on top of the blocks' 0 then −6 dB.
    let g0 = 20.0 * 0.5f64.log10();
    assert!((fly.gain_db.value_at(0.0) - g0).abs() < 1e-12);
    assert!((fly.gain_db.value_at(96_000.0) - (g0 - 3.0)).abs() < 1e-12);
    assert!((fly.gain_db.value_at(300_000.0) - (g0 - 6.0)).abs() < 1e-12);
    // Size: max(width, height, depth) of a Cartesian block, constant.
    assert!(fly.size.is_constant());
    assert_eq!(fly.size.first_value(), 0.2);
}

#[test]
fn admtime_forms_convert_exactly() {
    let t = AdmTime::parse("00:01:02.50000").unwrap();
    assert_eq!(t.to_frames(48000), 62 * 48000 + 24000);
    let s = AdmTime::parse("01:00:00.01234S48000").unwrap();
    assert_eq!(s.to_frames(48000), 3600 * 48000 + 1234);
    assert!(s.is_on_sample(48000) && !s.is_on_sample(44100));
    // Writing gives the decimal form when exact, the sample form otherwise.
    assert_eq!(
        AdmTime::from_frames(72_000, 48000).to_string(),
        "00:00:01.50000"
    );
    assert_eq!(
        AdmTime::from_frames(48_001, 48000).to_string(),
        "00:00:01.00001S48000"
    );
    for bad in [
        "1.5",
        "00:00:1.5",
        "00:60:00.0",
        "00:00:00.5S4",
        "00:00:00.00000S0",
        "aa:00:00.0",
    ] {
        assert!(AdmTime::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn chna_binary_layout_follows_bs2088() {
    let chna = Chna {
        entries: vec![entry(1, "ATU_00000001", "AT_00031001_01", "AP_00031001")],
    };
    let bytes = write_chna(&chna);
    // numTracks 1, numUIDs 1, trackIndex 1, UID, trackRef, packRef, one pad byte: 44 bytes.
    let mut want = vec![1u8, 0, 1, 0, 1, 0];
    want.extend_from_slice(b"ATU_00000001AT_00031001_01AP_00031001");
    want.push(0);
    assert_eq!(bytes, want);
    assert_eq!(parse_chna(&bytes).unwrap(), chna);
}

// ---------------------------------------------------------------------------------------
// Round trips.

fn showcase() -> Scene {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/showcase.ron"
    ))
    .unwrap();
    session::parse(&text, Path::new("proj/showcase.ron"), &mut |_| {
        Ok(
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/layouts/7.1.4.ron"))
                .unwrap(),
        )
    })
    .unwrap()
}

fn demo() -> Scene {
    let text = halo::drivers::demo::session_text(48000, &["7.1.4"]);
    session::parse(&text, Path::new("demo/session.ron"), &mut |_| {
        Err("none".into())
    })
    .unwrap()
}

fn same_automation<T: Interpolate + std::fmt::Debug>(
    a: &Automation<T>,
    b: &Automation<T>,
    close: impl Fn(&T, &T) -> bool,
    what: &str,
) {
    let (ka, kb) = (a.keyframes(), b.keyframes());
    assert_eq!(ka.len(), kb.len(), "{what}: {ka:?} vs {kb:?}");
    for (i, (x, y)) in ka.iter().zip(kb).enumerate() {
        assert_eq!(x.frame, y.frame, "{what} key {i}: frames");
        assert!(
            close(&x.value, &y.value),
            "{what} key {i}: {:?} vs {:?}",
            x.value,
            y.value
        );
        // The last key's interpolation has no effect.
        if i + 1 < ka.len() {
            assert_eq!(
                x.interpolation, y.interpolation,
                "{what} key {i}: interpolation"
            );
        }
    }
}

fn close_pos(a: &Position, b: &Position) -> bool {
    match (*a, *b) {
        (
            Position::Cartesian { x, y, z },
            Position::Cartesian {
                x: x2,
                y: y2,
                z: z2,
            },
        ) => (x - x2).abs() <= 1e-6 && (y - y2).abs() <= 1e-6 && (z - z2).abs() <= 1e-6,
        (
            Position::Polar {
                azimuth_deg: a1,
                elevation_deg: e1,
                distance: d1,
            },
            Position::Polar {
                azimuth_deg: a2,
                elevation_deg: e2,
                distance: d2,
            },
        ) => {
            let da = (a1 - a2).rem_euclid(360.0);
            da.min(360.0 - da) <= 1e-6 && (e1 - e2).abs() <= 1e-6 && (d1 - d2).abs() <= 1e-6
        }
        _ => false,
    }
}

fn round_trip(scene: &Scene, label: &str) {
    let frames = scene.duration_frames.unwrap_or(48000 * 30);
    let plan = TrackPlan::beds_then_objects(scene, frames);
    let loud = AdmLoudness {
        integrated_lufs: Some(-18.25),
        max_true_peak_dbtp: Some(-1.5),
        loudness_range_lu: Some(7.0),
    };
    let doc = from_scene(scene, &plan, Some(loud)).unwrap_or_else(|e| panic!("{label}: {e}"));
    let xml = write_axml(&doc);
    let chna_bytes = write_chna(&chna_of(&doc, &plan));
    let back = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{label}: {e}\n{xml}"));
    assert_eq!(back.programmes, doc.programmes, "{label}");
    assert_eq!(back.contents, doc.contents, "{label}");
    assert_eq!(back.objects, doc.objects, "{label}");
    assert_eq!(back.pack_formats, doc.pack_formats, "{label}");
    for (a, b) in back.channel_formats.iter().zip(&doc.channel_formats) {
        assert_eq!(a, b, "{label}");
    }
    assert_eq!(back, doc, "{label}: parse(write(doc)) == doc");
    let chna = parse_chna(&chna_bytes).unwrap();
    let audio = AdmAudio {
        path: "m.wav".into(),
        channels: plan.channels,
        sample_rate: scene.sample_rate,
        frames,
    };
    let (s2, warnings) = to_scene(&back, &chna, &audio).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(warnings.is_empty(), "{label}: {warnings:?}");
    assert_eq!(s2.sample_rate, scene.sample_rate);
    assert_eq!(back.programmes[0].loudness, Some(loud));
    assert_eq!(s2.objects.len(), scene.objects.len(), "{label}");
    for ((a, b), &ch) in scene.objects.iter().zip(&s2.objects).zip(&plan.objects) {
        let what = format!("{label}: object {:?}", a.name);
        assert_eq!(a.name, b.name);
        assert_eq!(b.source.channel, Some(ch), "{what}");
        assert_eq!((a.mute, a.binaural), (b.mute, b.binaural), "{what}");
        same_automation(
            &a.position,
            &b.position,
            close_pos,
            &format!("{what} position"),
        );
        same_automation(
            &a.gain_db,
            &b.gain_db,
            |x, y| (x - y).abs() <= 1e-9,
            &format!("{what} gain"),
        );
        match (&a.controls.extent, &b.controls.extent) {
            // An explicit extent is what the speakers render, and it comes back as it
            // was; the imported `size` (only the headphone path's VBAP panner reads it
            // then) is derived from the extent's width, as for any ADM master.
            (Some(ea), Some(eb)) => same_automation(
                ea,
                eb,
                |x, y| {
                    (x.width - y.width).abs() <= 1e-9
                        && (x.height - y.height).abs() <= 1e-9
                        && (x.depth - y.depth).abs() <= 1e-9
                },
                &format!("{what} extent"),
            ),
            _ => same_automation(
                &a.size,
                &b.size,
                |x, y| (x - y).abs() <= 1e-9,
                &format!("{what} size"),
            ),
        }
    }
    assert_eq!(s2.beds.len(), scene.beds.len(), "{label}");
    for ((a, b), chans) in scene.beds.iter().zip(&s2.beds).zip(&plan.beds) {
        assert_eq!(
            (&a.name, &a.layout, a.gain_db, a.mute),
            (&b.name, &b.layout, b.gain_db, b.mute)
        );
        assert_eq!(
            b.channels.as_ref(),
            Some(chans),
            "{label}: bed {:?}",
            a.name
        );
    }
}

#[test]
fn example_sessions_round_trip_through_adm() {
    round_trip(&showcase(), "showcase");
    round_trip(&demo(), "demo");
}

#[test]
fn halo_written_blocks_read_by_the_standard_rules_follow_the_same_curves() {
    // Drop the halo:keys marks: a plain BS.2127 reading of halo's blocks must give the same
    // position at every block boundary and (for linear and step automation) everywhere,
    // apart from the one-sample lead before a ramp that follows a step.
    let scene = showcase();
    let plan = TrackPlan::beds_then_objects(&scene, 48000 * 20);
    let mut doc = from_scene(&scene, &plan, None).unwrap();
    for cf in &mut doc.channel_formats {
        for b in &mut cf.blocks {
            b.halo_keys = None;
        }
    }
    let chna = chna_of(&doc, &plan);
    let audio = AdmAudio {
        path: "m.wav".into(),
        channels: plan.channels,
        sample_rate: 48000,
        frames: 48000 * 20,
    };
    let (s2, _) = to_scene(
        &parse_axml(write_axml(&doc).as_bytes()).unwrap(),
        &chna,
        &audio,
    )
    .unwrap();
    let orbit = scene
        .objects
        .iter()
        .position(|o| o.name == "orbit")
        .unwrap();
    let (a, b) = (&scene.objects[orbit], &s2.objects[orbit]);
    for f in (0..48000 * 5).step_by(997) {
        let (pa, pb) = (a.position.value_at(f as f64), b.position.value_at(f as f64));
        // The ramp starts one sample late: allow one sample's worth of movement.
        let tol = 2.0 * 20.0 / (3.0 * 48000.0);
        if let (
            Position::Polar {
                azimuth_deg: x,
                elevation_deg: e,
                ..
            },
            Position::Polar {
                azimuth_deg: y,
                elevation_deg: e2,
                ..
            },
        ) = (pa, pb)
        {
            let d = (x - y).rem_euclid(360.0);
            assert!(
                d.min(360.0 - d) <= tol && (e - e2).abs() <= tol,
                "frame {f}: {pa:?} vs {pb:?}"
            );
        } else {
            panic!("kinds differ");
        }
    }
    // The smooth segment of "fly" becomes straight in a plain reading: same ends.
    let fly = scene.objects.iter().position(|o| o.name == "fly").unwrap();
    for f in [0u64, 4 * 48000, 6 * 48000, 8 * 48000, 10 * 48000] {
        assert!(
            close_pos(
                &scene.objects[fly].position.value_at(f as f64),
                &s2.objects[fly].position.value_at(f as f64)
            ),
            "fly at {f}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Malformed input.

enum Kind {
    Axml,
    Chna,
    /// A chna used with two_contents.xml and an 8-channel file.
    Scene,
}

const MALFORMED: &[(&str, Kind, &[&str])] = &[
    ("unclosed.xml", Kind::Axml, &["ends inside <audioObject>"]),
    (
        "mismatched_tags.xml",
        Kind::Axml,
        &["malformed XML", "gain"],
    ),
    (
        "doctype_entity.xml",
        Kind::Axml,
        &["DOCTYPE", "not allowed"],
    ),
    (
        "entity_reference.xml",
        Kind::Axml,
        &["entity reference &xxe;"],
    ),
    (
        "blocks_out_of_order.xml",
        Kind::Axml,
        &[
            "audioBlockFormat AB_00031001_00000002: rtime 00:00:01.00000 is before the previous block's rtime 00:00:02.00000",
        ],
    ),
    (
        "blocks_overlap.xml",
        Kind::Axml,
        &[
            "audioBlockFormat AB_00031001_00000002: rtime 00:00:01.00000 is before the previous block's end 00:00:02.00000",
        ],
    ),
    (
        "unknown_reference.xml",
        Kind::Axml,
        &["audioObject AO_1001: refers to AP_00039999"],
    ),
    (
        "bad_time.xml",
        Kind::Axml,
        &[
            "AB_00031001_00000001",
            "rtime \"1.5\" is not a time",
            "hh:mm:ss",
        ],
    ),
    (
        "bad_sample_time.xml",
        Kind::Axml,
        &["rtime \"00:00:00.00000S0\" is not a time"],
    ),
    (
        "nan_azimuth.xml",
        Kind::Axml,
        &[
            "AB_00031001_00000001",
            "position azimuth NaN is not a finite number",
        ],
    ),
    (
        "inf_x.xml",
        Kind::Axml,
        &["position X inf is not a finite number"],
    ),
    (
        "azimuth_out_of_range.xml",
        Kind::Axml,
        &["position azimuth 200 is out of range", "from -180 to 180"],
    ),
    (
        "interpolation_too_long.xml",
        Kind::Axml,
        &[
            "interpolationLength",
            "longer than the block's duration 00:00:01.00000",
        ],
    ),
    (
        "bad_gain_unit.xml",
        Kind::Axml,
        &["gainUnit \"bel\"", "linear or dB"],
    ),
    (
        "no_audio_format_extended.xml",
        Kind::Axml,
        &["no audioFormatExtended"],
    ),
    (
        "duplicate_id.xml",
        Kind::Axml,
        &["ACO_1001 is already used"],
    ),
    (
        "too_deep.xml",
        Kind::Axml,
        &["nesting depth", "limit of 32"],
    ),
    ("not_utf8.xml", Kind::Axml, &["not UTF-8"]),
    (
        "chna_cut_short.bin",
        Kind::Chna,
        &["numUIDs = 2 needs 84 bytes, but the chunk has 44"],
    ),
    (
        "chna_bad_uid.bin",
        Kind::Chna,
        &["UID \"XYZ_00000001\" is not an audioTrackUID"],
    ),
    (
        "chna_track_beyond_channels.bin",
        Kind::Scene,
        &["ATU_00000007 is on track 9, but the file has 8 channels"],
    ),
];

#[test]
fn malformed_corpus_gives_clear_errors() {
    let dir = data("malformed");
    let mut listed: Vec<&str> = MALFORMED.iter().map(|m| m.0).collect();
    listed.sort_unstable();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort_unstable();
    assert_eq!(listed, on_disk, "every corpus file has an expected error");
    let good_doc = parse_axml(&std::fs::read(data("two_contents.xml")).unwrap()).unwrap();
    for (file, kind, expect) in MALFORMED {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let err = match kind {
            Kind::Axml => parse_axml(&bytes).err(),
            Kind::Chna => parse_chna(&bytes).err(),
            Kind::Scene => to_scene(&good_doc, &parse_chna(&bytes).unwrap(), &audio(8)).err(),
        };
        let msg = err
            .unwrap_or_else(|| panic!("{file}: accepted"))
            .to_string();
        for e in *expect {
            assert!(msg.contains(e), "{file}: {msg:?} lacks {e:?}");
        }
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b' '; MAX_AXML_BYTES + 1];
    let e = parse_axml(&big).unwrap_err().to_string();
    assert!(
        e.contains("more than the limit") && e.contains(&MAX_AXML_BYTES.to_string()),
        "{e}"
    );
    let e = parse_chna(&vec![0u8; MAX_CHNA_BYTES + 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("chna chunk's size"), "{e}");
}

#[test]
fn an_object_whose_track_is_not_in_the_chna_is_an_error() {
    let doc = parse_axml(&std::fs::read(data("two_contents.xml")).unwrap()).unwrap();
    let mut chna = two_contents_chna();
    chna.entries.retain(|e| e.uid != "ATU_00000008");
    let e = to_scene(&doc, &chna, &audio(8)).unwrap_err().to_string();
    assert!(
        e.contains("audioObject AO_1003") && e.contains("ATU_00000008") && e.contains("chna"),
        "{e}"
    );
}

#[test]
fn unsupported_content_is_warned_not_dropped_silently() {
    let xml = r#"<audioFormatExtended>
      <audioObject audioObjectID="AO_1001" audioObjectName="amb"><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
      <audioObject audioObjectID="AO_1002" audioObjectName="obj"><audioTrackUIDRef>ATU_00000002</audioTrackUIDRef></audioObject>
      <audioChannelFormat audioChannelFormatID="AC_00041001" audioChannelFormatName="W" typeDefinition="HOA">
        <audioBlockFormat audioBlockFormatID="AB_00041001_00000001"><order>0</order><degree>0</degree></audioBlockFormat>
      </audioChannelFormat>
      <audioChannelFormat audioChannelFormatID="AC_00031001" audioChannelFormatName="o" typeLabel="0003">
        <audioBlockFormat audioBlockFormatID="AB_00031001_00000001"><position coordinate="azimuth">-30</position><position coordinate="elevation">0</position><screenRef>1</screenRef><objectDivergence>0.5</objectDivergence><headLocked>1</headLocked></audioBlockFormat>
      </audioChannelFormat>
      <audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00041001</audioChannelFormatIDRef></audioTrackUID>
      <audioTrackUID UID="ATU_00000002"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef></audioTrackUID>
    </audioFormatExtended>"#;
    let doc = parse_axml(xml.as_bytes()).unwrap();
    let chna = Chna {
        entries: vec![
            entry(1, "ATU_00000001", "AC_00041001_00", ""),
            entry(2, "ATU_00000002", "AC_00031001_00", ""),
        ],
    };
    let (scene, w) = to_scene(&doc, &chna, &audio(2)).unwrap();
    assert_eq!(scene.objects.len(), 1);
    // HOA is rendered (BS.2127 §9): a bed carrying the HOA signal (SN3D by default).
    assert_eq!(scene.beds.len(), 1);
    assert!(scene.beds[0].hoa.is_some(), "{:?}", scene.beds[0]);
    let all = w.join("\n");
    assert!(all.contains("headLocked"), "headLocked missing in {all}");
    // screenRef and objectDivergence are rendered (BS.2127), not warned about.
    assert!(
        !all.contains("screenRef") && !all.contains("objectDivergence"),
        "{all}"
    );
    assert!(scene.objects[0].controls.screen_ref);
    assert_eq!(scene.objects[0].controls.divergence.first_value(), 0.5);
}
