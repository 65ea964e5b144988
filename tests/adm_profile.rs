//! The Dolby Atmos Master ADM profile that `halo export` writes by default: the form of its
//! `axml` (BS.2076-1 five-decimal times, block ends meeting the next rtime, linear gains,
//! Cartesian objects where the session has them, `headphoneVirtualise` on every object
//! block, the profile's IDs and programme name, beds first), its `dbmd` chunk (binaural
//! render mode per track, trims, downmix modes), exact re-import, `--adm-version 2`, and
//! what MediaInfo reports about it.
//!
//! MediaInfo's output for the export of the session below is test data
//! (`tests/data/mediainfo/profile_export.txt`, made by `tools/reference/mediainfo_export.sh`
//! through `write_mediainfo_fixture`); where `mediainfo` is installed the test also runs it
//! on a fresh export.

mod common;
use common::scratch;

use halo::drivers::demo;
use halo::exchange::{self, AdmProfile, ExportOptions};
use halo::formats::adm::{AdmTime, parse_chna};
use halo::formats::dbmd::{BinauralRenderMode, Dbmd, StereoDownmix, WarpMode};
use halo::formats::io::{WavReader, WavSpec, WavWriter, WriteFormat};
use halo::formats::session;
use halo::scene::mix::{BinauralMode, FoldMatrix, OutputSpec, Scene, TrimMode};
use std::path::{Path, PathBuf};
use std::process::Command;

const RATE: u32 = 48000;

/// One object per binaural mode (the Far one muted), a 5.1 bed, a polar object, automation
/// with a smoothstep, an Lt/Rt fold-down with a manual centre trim.
const SESSION: &str = r#"Session(
    sample_rate: 48000,
    duration: 2.0,
    beds: [(name: "bed", source: "stems/drums_bass_5.1.wav", layout: "5.1", gain_db: -2,
            binaural: [Near, Near, Near, Off, Far, Far])],
    objects: [
        (name: "off", source: "stems/pad.wav", position: Cart(x: -1, y: 1, z: 0), binaural: Off),
        (
            name: "near",
            source: "stems/melody.wav",
            position: [
                (time: 0.0, value: Cart(x: 1, y: 1, z: 0), interp: Smooth),
                (time: 1.0, value: Cart(x: -1, y: -1, z: 1)),
            ],
            gain: [(time: 0, value: -6), (time: 1.5, value: 0)],
            binaural: Near,
        ),
        (name: "mid", source: "stems/voice.wav", position: Polar(az: 110, el: 0), binaural: Mid),
        (name: "far", source: "stems/pad.wav", position: Cart(x: 0, y: -1, z: 1), binaural: Far,
         mute: true, gain_db: -1.5),
    ],
    outputs: [Speakers(layout: "7.1.4"), Stereo(fold: (matrix: LtRt, center_db: -4.5))],
)
"#;

/// The session's modes per track: the six bed channels, then the objects.
const TRACK_MODES: [BinauralRenderMode; 10] = [
    BinauralRenderMode::Near,
    BinauralRenderMode::Near,
    BinauralRenderMode::Near,
    BinauralRenderMode::Off,
    BinauralRenderMode::Far,
    BinauralRenderMode::Far,
    BinauralRenderMode::Off,
    BinauralRenderMode::Near,
    BinauralRenderMode::Mid,
    BinauralRenderMode::Far,
];

/// The session and the demo's stems in `dir`.
fn write_session(dir: &Path) -> PathBuf {
    for s in demo::stems(RATE) {
        let path = dir.join("stems").join(s.file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = WavSpec {
            channels: s.channels,
            sample_rate: RATE,
            format: WriteFormat::F32,
            channel_mask: None,
        };
        let mut w = WavWriter::create(&path, spec).unwrap();
        w.write(&s.samples).unwrap();
        w.finish().unwrap().commit().unwrap();
    }
    let path = dir.join("modes.ron");
    std::fs::write(&path, SESSION).unwrap();
    path
}

fn load(path: &Path) -> Scene {
    let text = std::fs::read_to_string(path).unwrap();
    session::parse(&text, path, &mut |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn export(scene: &Scene, out: &Path, profile: AdmProfile) -> Vec<String> {
    let options = ExportOptions {
        measure_loudness: false,
        profile,
        ..ExportOptions::default()
    };
    exchange::export(scene, out, &options)
        .unwrap_or_else(|e| panic!("{e}"))
        .warnings
}

fn chunk(path: &Path, id: &[u8; 4]) -> Option<Vec<u8>> {
    WavReader::open(path)
        .unwrap()
        .read_chunk(*id, 1 << 26)
        .unwrap()
}

/// Values of `attr="…"` in `xml`, in order.
fn attrs<'a>(xml: &'a str, attr: &str) -> Vec<&'a str> {
    let key = format!(" {attr}=\"");
    xml.split(&key)
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect()
}

#[test]
fn the_profile_form_of_the_axml_and_its_dbmd() {
    let dir = scratch("form");
    let scene = load(&write_session(&dir));
    let master = dir.join("master.wav");
    let warnings = export(&scene, &master, AdmProfile::DolbyAtmosMaster);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("\"mid\"") && w.contains("polar")),
        "{warnings:?}"
    );
    let xml = String::from_utf8(chunk(&master, b"axml").unwrap()).unwrap();

    // BS.2076-1, every time hh:mm:ss.fffff.
    assert!(xml.contains("audioFormatExtended version=\"ITU-R_BS.2076-1\""));
    for attr in ["rtime", "duration", "start", "end"] {
        for t in attrs(&xml, attr) {
            let ok = t.len() == 14
                && t.as_bytes()[8] == b'.'
                && t[9..].bytes().all(|b| b.is_ascii_digit());
            assert!(ok, "{attr}=\"{t}\" is not hh:mm:ss.fffff");
        }
    }
    // Within each channel, a block ends where the next begins.
    for channel in xml.split("<audioChannelFormat ").skip(1) {
        let channel = channel.split("</audioChannelFormat>").next().unwrap();
        let ticks = |t: &str| {
            let t = AdmTime::parse(t).unwrap();
            t.seconds * 100_000 + t.num * 100_000 / t.den
        };
        let r: Vec<u64> = attrs(channel, "rtime").into_iter().map(ticks).collect();
        let d: Vec<u64> = attrs(channel, "duration").into_iter().map(ticks).collect();
        for i in 1..r.len() {
            assert_eq!(r[i - 1] + d[i - 1], r[i], "block {i} of {channel:.80}");
        }
    }
    // Linear gains (the muted object's are 0 with its dB value kept for halo); no dB unit.
    assert!(!xml.contains("gainUnit"), "linear gains only");
    let far = xml
        .split("audioChannelFormatName=\"far\"")
        .nth(1)
        .unwrap()
        .split("</audioChannelFormat>")
        .next()
        .unwrap();
    assert!(far.contains("<gain>0.0</gain>"), "{far}");
    assert!(far.contains("halo:gainDb=\"-1.5\""), "{far}");
    // Cartesian objects in Cartesian coordinates, the polar one polar.
    let block_of = |name: &str| {
        xml.split(&format!("audioChannelFormatName=\"{name}\""))
            .nth(1)
            .unwrap()
            .split("</audioBlockFormat>")
            .next()
            .unwrap()
            .to_string()
    };
    for name in ["off", "near", "far"] {
        assert!(
            block_of(name).contains("<cartesian>1</cartesian>"),
            "{name}"
        );
    }
    assert!(block_of("mid").contains("coordinate=\"azimuth\""));
    // headphoneVirtualise on every object block: bypass for Off, the mode's DRR otherwise.
    let object_blocks: usize = ["off", "near", "mid", "far"]
        .iter()
        .map(|n| {
            xml.split(&format!("audioChannelFormatName=\"{n}\""))
                .nth(1)
                .unwrap()
                .split("</audioChannelFormat>")
                .next()
                .unwrap()
                .matches("<audioBlockFormat ")
                .count()
        })
        .sum();
    assert_eq!(xml.matches("<headphoneVirtualise").count(), object_blocks);
    assert!(block_of("off").contains("<headphoneVirtualise bypass=\"1\"/>"));
    assert!(block_of("near").contains("bypass=\"0\" DRR=\"16.0\""));
    assert!(block_of("mid").contains("bypass=\"0\" DRR=\"6.0\""));
    assert!(block_of("far").contains("bypass=\"0\" DRR=\"0.0\""));
    // The profile's IDs and names, one programme, the bed first.
    assert_eq!(attrs(&xml, "audioProgrammeID"), ["APR_1001"]);
    assert_eq!(attrs(&xml, "audioProgrammeName"), ["Atmos_Master"]);
    assert_eq!(attrs(&xml, "audioContentID"), ["ACO_1001"]);
    let uids = attrs(&xml, "UID");
    assert_eq!(uids.len(), 10);
    assert!(uids.iter().all(|u| u.starts_with("ATU_")));
    let chna = parse_chna(&chunk(&master, b"chna").unwrap()).unwrap();
    let first = chna.entries.iter().find(|e| e.track_index == 1).unwrap();
    assert!(first.pack_ref.starts_with("AP_0001"), "{first:?}");
    // The 5.1 bed refers to BS.2094's common 5.1 pack and channels (BS.2127 §8 maps them),
    // which the axml does not redefine.
    let mut bed: Vec<_> = chna.entries.iter().filter(|e| e.track_index <= 6).collect();
    bed.sort_by_key(|e| e.track_index);
    let refs: Vec<&str> = bed.iter().map(|e| e.track_ref.as_str()).collect();
    assert_eq!(
        refs,
        [
            "AT_00010001_01",
            "AT_00010002_01",
            "AT_00010003_01",
            "AT_00010004_01",
            "AT_00010005_01",
            "AT_00010006_01"
        ]
    );
    assert!(bed.iter().all(|e| e.pack_ref == "AP_00010003"), "{bed:?}");
    assert!(!xml.contains("audioPackFormatID=\"AP_00010003\""));
    assert!(!xml.contains("audioChannelFormatID=\"AC_00010001\""));
    assert!(xml.contains("<audioPackFormatIDRef>AP_00010003</audioPackFormatIDRef>"));

    // dbmd: written by halo, the modes per track, Lt/Rt, the manual 2.0 centre trim.
    let dbmd = Dbmd::parse(&chunk(&master, b"dbmd").unwrap()).unwrap();
    let atmos = dbmd.atmos.as_ref().unwrap();
    assert_eq!(atmos.tool, "halo");
    assert_eq!(atmos.stereo_downmix, StereoDownmix::LtRtProLogic);
    assert_eq!(atmos.warp_mode, WarpMode::DirectRender);
    let sup = dbmd.supplemental.as_ref().unwrap();
    assert_eq!(sup.binaural, TRACK_MODES);
    assert!(!sup.trims[0].automatic);
    assert_eq!(sup.trims[0].center_db, -4.5);
    assert!(sup.trims[1..].iter().all(|t| t.automatic));

    // Re-import: the same modes, mutes, gains and keyframes; no timing fixes needed.
    let back = exchange::read_master(&master, None).unwrap();
    assert!(
        back.warnings.iter().all(|w| !w.contains("timing")),
        "{:?}",
        back.warnings
    );
    for (a, b) in scene.objects.iter().zip(&back.scene.objects) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.binaural, b.binaural, "{}", a.name);
        assert_eq!(a.mute, b.mute, "{}", a.name);
        assert_eq!(a.gain_db.keyframes(), b.gain_db.keyframes(), "{}", a.name);
        assert_eq!(a.position.keyframes(), b.position.keyframes(), "{}", a.name);
    }
    assert_eq!(back.scene.beds[0].gain_db, -2.0);
    // From the dbmd: the bed channels' modes, the manual 2.0 trims and the Lt/Rt downmix.
    assert_eq!(back.scene.beds[0].binaural, scene.beds[0].binaural);
    let fold = back
        .scene
        .outputs
        .iter()
        .find_map(|o| match o {
            OutputSpec::Stereo { fold, .. } => Some(fold.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(fold.trim_mode, TrimMode::Manual);
    assert_eq!(fold.center_db, -4.5);
    assert_eq!(fold.matrix, FoldMatrix::LtRt);
}

#[test]
fn trim_mode_is_manual_when_trims_are_given_and_round_trips() {
    let parse = |fold: &str| {
        let text = format!(
            "Session(objects: [(name: \"a\", source: \"a.wav\", position: Cart(x: 0, y: 1))], \
             outputs: [Stereo(fold: ({fold}))])"
        );
        session::parse(&text, Path::new("t.ron"), &mut |_| Err("none".into()))
    };
    let fold_of = |scene: &Scene| match &scene.outputs[0] {
        OutputSpec::Stereo { fold, .. } => fold.clone(),
        _ => panic!(),
    };
    assert_eq!(fold_of(&parse("").unwrap()).trim_mode, TrimMode::Automatic);
    assert_eq!(
        fold_of(&parse("center_db: -4.5").unwrap()).trim_mode,
        TrimMode::Manual
    );
    let manual = parse("trim_mode: Manual").unwrap();
    assert_eq!(fold_of(&manual).trim_mode, TrimMode::Manual);
    let text = session::write(&manual).unwrap();
    let again = session::parse(&text, Path::new("t.ron"), &mut |_| Err("none".into())).unwrap();
    assert_eq!(fold_of(&again), fold_of(&manual), "{text}");
    let err = parse("trim_mode: Automatic, height_db: -6")
        .unwrap_err()
        .to_string();
    assert!(err.contains("trim_mode") && err.contains("Manual"), "{err}");
}

#[test]
fn adm_version_2_keeps_the_bs2076_2_form_without_dbmd() {
    let dir = scratch("v2");
    let scene = load(&write_session(&dir));
    let master = dir.join("master.wav");
    export(&scene, &master, AdmProfile::Bs2076_2);
    let xml = String::from_utf8(chunk(&master, b"axml").unwrap()).unwrap();
    assert!(xml.contains("audioFormatExtended version=\"ITU-R_BS.2076-2\""));
    assert!(xml.contains("gainUnit=\"dB\""));
    assert!(
        xml.contains("S48000"),
        "sample-exact times where 5 decimals are not"
    );
    assert!(chunk(&master, b"dbmd").is_none());
    let back = exchange::read_master(&master, None).unwrap().scene;
    let modes: Vec<BinauralMode> = back.objects.iter().map(|o| o.binaural).collect();
    assert_eq!(
        modes,
        [
            BinauralMode::Off,
            BinauralMode::Near,
            BinauralMode::Mid,
            BinauralMode::Far
        ]
    );
}

#[test]
fn the_profile_refuses_rates_whose_samples_five_decimals_cannot_place() {
    let dir = scratch("rate");
    write_session(&dir);
    let mut scene = load(&dir.join("modes.ron"));
    scene.sample_rate = 192_000;
    let out = dir.join("hi.wav");
    let options = ExportOptions {
        measure_loudness: false,
        ..ExportOptions::default()
    };
    let err = exchange::export(&scene, &out, &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("192000 Hz") && err.contains("--adm-version 2"),
        "{err}"
    );
    assert!(!out.exists());
}

/// MediaInfo's per-object binaural render modes (`Object #n : name` then ` Binaural render
/// mode : X`), and whether it saw Dolby Atmos metadata and the profile.
fn mediainfo_modes(text: &str) -> (bool, bool, Vec<(String, String)>) {
    let value = |l: &str| l.split_once(':').map(|(_, v)| v.trim().to_string());
    let atmos = text
        .lines()
        .any(|l| l.starts_with("Dolby Atmos metadata") && value(l).as_deref() == Some("Yes"));
    let profile = text.lines().any(|l| {
        l.starts_with("ADM profile") && value(l).as_deref() == Some("Dolby Atmos Master, Version 1")
    });
    let mut objects: Vec<(String, String)> = Vec::new();
    let mut current: Option<String> = None;
    for l in text.lines() {
        if l.starts_with("Object #") {
            current = value(l);
        } else if l.starts_with(" Binaural render mode")
            && let Some(name) = current.take()
        {
            objects.push((name, value(l).unwrap_or_default()));
        } else if !l.starts_with(' ') {
            current = None;
        }
    }
    (atmos, profile, objects)
}

fn check_mediainfo(text: &str, scene: &Scene, what: &str) {
    let (atmos, profile, objects) = mediainfo_modes(text);
    assert!(atmos, "{what}: no Dolby Atmos metadata\n{text}");
    assert!(
        profile,
        "{what}: not the Dolby Atmos Master profile\n{text}"
    );
    for o in &scene.objects {
        let want = match o.binaural {
            BinauralMode::Off => "Off",
            BinauralMode::Near => "Near",
            BinauralMode::Mid => "Mid",
            BinauralMode::Far => "Far",
        };
        let got = objects.iter().find(|(n, _)| n == &o.name);
        assert_eq!(
            got.map(|(_, m)| m.as_str()),
            Some(want),
            "{what}: object {}",
            o.name
        );
    }
}

#[test]
fn mediainfo_reports_dolby_atmos_metadata_and_each_objects_binaural_mode() {
    let dir = scratch("mediainfo");
    let scene = load(&write_session(&dir));
    let master = dir.join("master.wav");
    export(&scene, &master, AdmProfile::DolbyAtmosMaster);

    // The committed MediaInfo reading of this export, and halo's own reader agreeing with
    // it on a fresh export.
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mediainfo/profile_export.txt"
    ))
    .unwrap();
    check_mediainfo(&committed, &scene, "committed MediaInfo output");
    let track_modes: Vec<String> = committed
        .lines()
        .filter(|l| l.starts_with("TrackUID") || l.starts_with(" Binaural render mode"))
        .map(|l| l.split_once(':').unwrap().1.trim().to_string())
        .collect();
    let sup = Dbmd::parse(&chunk(&master, b"dbmd").unwrap())
        .unwrap()
        .supplemental
        .unwrap();
    let ours: Vec<String> = sup.binaural.iter().map(|m| m.name()).collect();
    assert!(
        track_modes.ends_with(&ours),
        "MediaInfo's track modes {track_modes:?} end with halo's {ours:?}"
    );

    // MediaInfo itself, where installed.
    match Command::new("mediainfo").arg(&master).output() {
        Ok(out) if out.status.success() => {
            check_mediainfo(&String::from_utf8_lossy(&out.stdout), &scene, "mediainfo");
        }
        _ => println!("mediainfo is not installed: checked its committed output only"),
    }
}

/// Writes the session, its stems and its export into `$HALO_MEDIAINFO_FIXTURE` for
/// `tools/reference/mediainfo_export.sh`.
#[test]
#[ignore]
fn write_mediainfo_fixture() {
    let Some(dir) = std::env::var_os("HALO_MEDIAINFO_FIXTURE").map(PathBuf::from) else {
        println!("HALO_MEDIAINFO_FIXTURE not set: nothing written");
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let scene = load(&write_session(&dir));
    export(
        &scene,
        &dir.join("master.wav"),
        AdmProfile::DolbyAtmosMaster,
    );
}

/// A bed without a BS.2094 common-definition pack (9.1.6) keeps its own pack, each channel
/// bounded to the speakers of its label; a 7.1.4 bed refers to the common `AP_00010017`.
/// Both re-import as the session's layouts.
#[test]
fn beds_without_a_common_pack_keep_their_own_with_bounds() {
    let dir = scratch("own_packs");
    std::fs::create_dir_all(dir.join("stems")).unwrap();
    for (file, channels) in [("a.wav", 12usize), ("b.wav", 16)] {
        let spec = WavSpec {
            channels,
            sample_rate: RATE,
            format: WriteFormat::F32,
            channel_mask: None,
        };
        let mut w = WavWriter::create(&dir.join("stems").join(file), spec).unwrap();
        let samples: Vec<f32> = (0..4800 * channels)
            .map(|i| ((i * 7919) % 1000) as f32 / 4000.0 - 0.125)
            .collect();
        w.write(&samples).unwrap();
        w.finish().unwrap().commit().unwrap();
    }
    let path = dir.join("beds.ron");
    std::fs::write(
        &path,
        r#"Session(
    sample_rate: 48000,
    duration: 0.1,
    beds: [(name: "a", source: "stems/a.wav", layout: "7.1.4"),
           (name: "b", source: "stems/b.wav", layout: "9.1.6")],
    objects: [],
    outputs: [Speakers(layout: "7.1.4")],
)
"#,
    )
    .unwrap();
    let scene = load(&path);
    let master = dir.join("master.wav");
    export(&scene, &master, AdmProfile::DolbyAtmosMaster);
    let xml = String::from_utf8(chunk(&master, b"axml").unwrap()).unwrap();
    let chna = parse_chna(&chunk(&master, b"chna").unwrap()).unwrap();
    let packs: Vec<&str> = chna.entries.iter().map(|e| e.pack_ref.as_str()).collect();
    assert!(packs[..12].iter().all(|p| *p == "AP_00010017"), "{packs:?}");
    assert!(
        packs[12..].iter().all(|p| p.starts_with("AP_00011")),
        "{packs:?}"
    );
    // Only 9.1.6's channels are defined in the axml, its side surrounds bounded.
    assert_eq!(xml.matches("<audioChannelFormat ").count(), 16);
    assert!(xml.contains("bound=\"min\""), "bounds on the own pack");
    let back = exchange::read_master(&master, None).unwrap();
    let layouts: Vec<&str> = back
        .scene
        .beds
        .iter()
        .map(|b| b.layout.name.as_str())
        .collect();
    assert_eq!(layouts, ["7.1.4", "9.1.6"]);
}
