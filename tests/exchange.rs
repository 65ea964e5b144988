//! ADM BWF masters through the `halo` command: a hand-written BS.2076 master renders as
//! its metadata says, export → import gives back the session and identical renders, the
//! exported file carries chna, axml and the measured loudness, and bad masters exit 2
//! leaving nothing behind.

mod common;
use common::{halo, scratch};
use halo::formats::adm::{Chna, ChnaEntry, write_chna};
use halo::formats::io::{Chunk, WavReader, WavSpec, WavWriter, WriteFormat};
use halo::formats::session;
use halo::scene::geometry::Position;
use halo::scene::mix::Scene;
use std::path::{Path, PathBuf};

const RATE: u32 = 48000;

/// Writes planar channels as an interleaved float WAV, with extra chunks before the data.
fn write_planar(path: &Path, channels: &[Vec<f32>], extra: Vec<Chunk>) {
    let frames = channels[0].len();
    let n = channels.len();
    let mut data = vec![0.0f32; frames * n];
    for (c, ch) in channels.iter().enumerate() {
        for (f, &x) in ch.iter().enumerate() {
            data[f * n + c] = x;
        }
    }
    let spec = WavSpec {
        channels: n,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create_with_chunks(path, spec, extra).unwrap();
    w.write(&data).unwrap();
    w.finish().unwrap().commit().unwrap();
}

/// All channels of a WAV file, planar.
fn read_planar(path: &Path) -> Vec<Vec<f32>> {
    let mut r = WavReader::open(path).unwrap();
    let n = r.info().channels;
    let mut v = vec![0.0f32; r.info().frames as usize * n];
    let got = r.read(&mut v).unwrap();
    (0..n)
        .map(|c| (0..got).map(|f| v[f * n + c]).collect())
        .collect()
}

fn entry(track: u16, uid: &str, track_ref: &str, pack: &str) -> ChnaEntry {
    ChnaEntry {
        track_index: track,
        uid: uid.into(),
        track_ref: track_ref.into(),
        pack_ref: pack.into(),
    }
}

/// The chna of `tests/data/adm/two_contents.xml`: guitar on track 1, the Cartesian fly on
/// track 2, the 5.1 bed (BS.2094 common definitions) on tracks 3…8.
fn two_contents_chna(last_track: u16) -> Vec<u8> {
    let mut entries = vec![
        entry(1, "ATU_00000007", "AT_00031001_01", "AP_00031001"),
        entry(2, "ATU_00000008", "AC_00031002_00", "AP_00031002"),
    ];
    for i in 1..=6u16 {
        let track = if i == 6 { last_track } else { 2 + i };
        entries.push(entry(
            track,
            &format!("ATU_0000000{i}"),
            &format!("AC_0001000{i}_00"),
            "AP_00010003",
        ));
    }
    write_chna(&Chna { entries })
}

fn two_contents_xml() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/adm/two_contents.xml"))
        .unwrap()
}

/// A master written by hand (not by halo): 10 s, guitar = 1 kHz on track 1, the bed's R
/// (track 4) = 500 Hz, everything else silent.
fn hand_written_master(path: &Path, xml: &[u8], chna: Vec<u8>) -> (Vec<f32>, Vec<f32>) {
    let frames = 10 * RATE as usize;
    let guitar = common::sine(1000.0, 0.5, frames, RATE);
    let bed_r = common::sine(500.0, 0.25, frames, RATE);
    let mut tracks = vec![vec![0.0f32; frames]; 8];
    tracks[0] = guitar.clone();
    tracks[3] = bed_r.clone();
    write_planar(
        path,
        &tracks,
        vec![
            Chunk {
                id: *b"chna",
                data: chna,
            },
            Chunk {
                id: *b"axml",
                data: xml.to_vec(),
            },
        ],
    );
    (guitar, bed_r)
}

#[test]
fn hand_written_master_renders_object_at_30_degrees_into_l_and_the_bed_by_label() {
    let dir = scratch("hand_written");
    let master = dir.join("master.wav");
    let (guitar, bed_r) = hand_written_master(&master, &two_contents_xml(), two_contents_chna(8));
    let out = dir.join("out");
    let (code, _, err) = halo(&[
        "render",
        master.to_str().unwrap(),
        "--layout",
        "5.1",
        "--format",
        "f32",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = read_planar(&out.join("5.1.wav"));
    assert_eq!(r.len(), 6);
    assert_eq!(r[0].len(), guitar.len(), "programme end = 10 s");
    // L: the guitar alone, at unity (azimuth 30° is the M+030 speaker).
    let err_l = r[0]
        .iter()
        .zip(&guitar)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(err_l < 1e-6, "L differs from the guitar by {err_l}");
    // R: the bed's R track at the bed object's −3 dB.
    let g = 10f32.powf(-3.0 / 20.0);
    let err_r = r[1]
        .iter()
        .zip(&bed_r)
        .map(|(a, b)| (a - g * b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        err_r < 1e-6,
        "R differs from the bed's R × −3 dB by {err_r}"
    );
    for (c, ch) in r.iter().enumerate().skip(2) {
        let peak = ch.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak < 1e-7, "channel {c} should be silent, peak {peak}");
    }
    // The zone exclusion the fly's last block adds is rendered from that block on (a
    // control change), so nothing about it is reported.
    let report = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(!report.contains("zoneExclusion"), "{report}");
}

/// A session with polar and Cartesian automation of every interpolation kind, gain and
/// size automation, a static object and a 5.1 bed; stems are written beside it.
fn write_session(dir: &Path) -> PathBuf {
    let frames = 6 * RATE as usize;
    write_planar(
        &dir.join("a.wav"),
        &[common::sine(440.0, 0.3, frames, RATE)],
        Vec::new(),
    );
    write_planar(
        &dir.join("b.wav"),
        &[common::sine(1250.0, 0.2, frames, RATE)],
        Vec::new(),
    );
    write_planar(
        &dir.join("pair.wav"),
        &[
            common::sine(300.0, 0.2, frames, RATE),
            common::sine(700.0, 0.2, frames, RATE),
        ],
        Vec::new(),
    );
    let bed: Vec<Vec<f32>> = (0..6)
        .map(|c| common::sine(100.0 * (c + 1) as f64, 0.05, frames, RATE))
        .collect();
    write_planar(&dir.join("bed.wav"), &bed, Vec::new());
    let text = r#"Session(
    sample_rate: 48000,
    objects: [
        (name: "still", source: "a.wav", position: Polar(az: 30, el: 0), gain_db: -1.5),
        (
            name: "fly",
            source: "b.wav",
            position: [
                (time: 0.0, value: Cart(x: -1, y: 1, z: 0), interp: Smooth),
                (time: 2.0, value: Cart(x: 1, y: -1, z: 1)),
                (time: 3.5, value: Cart(x: 1, y: -1, z: 0.5), interp: Step),
                (time: 4.25, value: Cart(x: 0.25, y: 0, z: 1)),
            ],
            gain: [(time: 0, value: -6), (time: 2, value: 0, interp: Step)],
            size: [(time: 0, value: 0), (time: 4, value: 0.5)],
            binaural: Near,
        ),
        (
            name: "orbit",
            source: (file: "pair.wav", channel: 2),
            position: [
                (time: 0.0, value: Polar(az: 170, el: 10, dist: 1)),
                (time: 3.0, value: Polar(az: -170, el: 30, dist: 0.5)),
            ],
        ),
    ],
    beds: [(name: "bed", source: "bed.wav", layout: "5.1", gain_db: -3)],
    outputs: [Speakers(layout: "7.1.4")],
)
"#;
    let path = dir.join("mix.ron");
    std::fs::write(&path, text).unwrap();
    path
}

fn load(path: &Path) -> Scene {
    let text = std::fs::read_to_string(path).unwrap();
    session::parse(&text, path, &mut |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Same kind of position, each coordinate within 1e-6.
fn close(a: Position, b: Position) -> bool {
    let (u, v) = match (a, b) {
        (
            Position::Cartesian { x, y, z },
            Position::Cartesian {
                x: x2,
                y: y2,
                z: z2,
            },
        ) => ([x, y, z], [x2, y2, z2]),
        (
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                distance,
            },
            Position::Polar {
                azimuth_deg: a2,
                elevation_deg: e2,
                distance: d2,
            },
        ) => ([azimuth_deg, elevation_deg, distance], [a2, e2, d2]),
        _ => return false,
    };
    u.iter().zip(&v).all(|(p, q)| (p - q).abs() < 1e-6)
}

#[test]
fn export_then_import_gives_back_the_session_and_identical_renders() {
    let dir = scratch("round_trip");
    let original = write_session(&dir);
    let master = dir.join("master.wav");
    let (code, out, err) = halo(&[
        "export",
        original.to_str().unwrap(),
        "--out",
        master.to_str().unwrap(),
        "--format",
        "f32",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("loudnessMetadata"), "{out}");
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

    // The same session: names, gains, every keyframe (frames exact, values within 1e-6).
    let a = load(&original);
    let b = load(&back);
    assert_eq!(a.sample_rate, b.sample_rate);
    assert_eq!(a.objects.len(), b.objects.len());
    for (x, y) in a.objects.iter().zip(&b.objects) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.binaural, y.binaural, "{}", x.name);
        assert_eq!(x.mute, y.mute, "{}", x.name);
        let (kx, ky) = (x.position.keyframes(), y.position.keyframes());
        assert_eq!(kx.len(), ky.len(), "{}: position keys", x.name);
        for (p, q) in kx.iter().zip(ky) {
            assert_eq!(p.frame, q.frame, "{}", x.name);
            assert_eq!(p.interpolation, q.interpolation, "{}", x.name);
            assert!(close(p.value, q.value), "{}: {:?} vs {:?}", x.name, p, q);
        }
        for (auto_x, auto_y, what) in [(&x.gain_db, &y.gain_db, "gain"), (&x.size, &y.size, "size")]
        {
            let (kx, ky) = (auto_x.keyframes(), auto_y.keyframes());
            assert_eq!(kx.len(), ky.len(), "{}: {what} keys", x.name);
            for (p, q) in kx.iter().zip(ky) {
                assert_eq!((p.frame, p.interpolation), (q.frame, q.interpolation));
                assert!((p.value - q.value).abs() < 1e-6, "{}: {what}", x.name);
            }
        }
    }
    assert_eq!(a.beds.len(), b.beds.len());
    assert_eq!(a.beds[0].layout, b.beds[0].layout);
    assert!((a.beds[0].gain_db - b.beds[0].gain_db).abs() < 1e-9);

    // The session, the master and the imported session render the same audio.
    let mut renders = Vec::new();
    for (name, input) in [
        ("session", &original),
        ("master", &master),
        ("imported", &back),
    ] {
        let out = dir.join(format!("render-{name}"));
        let (code, err) = common::render_f32(input, "7.1.4", &out, &[]);
        assert_eq!(code, 0, "{name}: {err}");
        renders.push((name, read_planar(&out.join("7.1.4.wav")), out));
    }
    assert_eq!(renders[0].1[0].len(), 6 * RATE as usize);
    assert!(renders[0].1.iter().flatten().any(|x| x.abs() > 0.05));
    for (name, r, _) in &renders[1..] {
        assert!(
            r == &renders[0].1,
            "{name} renders differently from the session"
        );
    }

    // loudnessMetadata holds halo's meter reading of that 7.1.4 render.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(renders[0].2.join("report.json")).unwrap()).unwrap();
    let integrated = report["outputs"][0]["loudness"]["integrated_lufs"]
        .as_f64()
        .unwrap();
    let mut reader = WavReader::open(&master).unwrap();
    let axml = String::from_utf8(reader.read_chunk(*b"axml", 1 << 24).unwrap().unwrap()).unwrap();
    let value: f64 = axml
        .split("<integratedLoudness>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("integratedLoudness in axml")
        .trim()
        .parse()
        .unwrap();
    assert!(
        (value - integrated).abs() < 0.05,
        "axml says {value} LUFS, the 7.1.4 render measures {integrated}"
    );
    assert!(axml.contains("<maxTruePeak>"), "{axml}");
    assert!(axml.contains("<loudnessRange>"), "{axml}");
}

#[test]
fn exported_master_is_24_bit_bw64_with_chna_and_axml_before_the_audio() {
    let dir = scratch("export_format");
    let original = write_session(&dir);
    let master = dir.join("delivery.wav");
    let (code, _, err) = halo(&[
        "export",
        original.to_str().unwrap(),
        "--out",
        master.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = WavReader::open(&master).unwrap();
    assert_eq!(r.info().sample_rate, 48000);
    assert_eq!(r.info().format, halo::formats::io::SampleFormat::Pcm24);
    // 6 bed channels, then 3 objects.
    assert_eq!(r.info().channels, 9);
    let ids: Vec<[u8; 4]> = r.chunks().iter().map(|c| c.id).collect();
    let at = |id: &[u8; 4]| ids.iter().position(|x| x == id).unwrap_or(usize::MAX);
    assert!(at(b"chna") < at(b"data"), "{ids:?}");
    assert!(at(b"axml") < at(b"data"), "{ids:?}");
    // The chna maps all 9 tracks.
    let mut r = r;
    let chna =
        halo::formats::adm::parse_chna(&r.read_chunk(*b"chna", 1 << 20).unwrap().unwrap()).unwrap();
    let mut tracks: Vec<u16> = chna.entries.iter().map(|e| e.track_index).collect();
    tracks.sort();
    assert_eq!(tracks, (1..=9).collect::<Vec<u16>>());
}

/// Files in a directory tree (names relative to it).
fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push(format!("{}/", e.file_name().to_string_lossy()));
                out.extend(files_in(&p));
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[test]
fn bad_masters_exit_2_naming_the_problem_and_leave_nothing() {
    let dir = scratch("bad");
    let xml = two_contents_xml();
    // Not an ADM master: a plain WAV.
    write_planar(&dir.join("plain.wav"), &[vec![0.0; 480]], Vec::new());
    // Malformed XML: cut in the middle of an element.
    hand_written_master(
        &dir.join("broken_xml.wav"),
        &xml[..xml.len() / 2],
        two_contents_chna(8),
    );
    // A chna naming track 9 of an 8-track file.
    hand_written_master(&dir.join("chna_track.wav"), &xml, two_contents_chna(9));
    // A file cut short: a valid master missing the second half of its audio.
    hand_written_master(&dir.join("whole.wav"), &xml, two_contents_chna(8));
    let whole = std::fs::read(dir.join("whole.wav")).unwrap();
    std::fs::write(dir.join("cut.wav"), &whole[..whole.len() / 2]).unwrap();
    // Block formats out of order.
    let swapped = String::from_utf8(xml.clone()).unwrap().replace(
        "rtime=\"00:00:01.00000\" duration=\"00:00:02.00000\"",
        "rtime=\"00:00:05.00000\" duration=\"00:00:02.00000\"",
    );
    hand_written_master(
        &dir.join("order.wav"),
        swapped.as_bytes(),
        two_contents_chna(8),
    );

    let cases: [(&str, &[&str]); 5] = [
        ("plain.wav", &["plain.wav", "no `axml` chunk"]),
        ("broken_xml.wav", &["broken_xml.wav", "axml"]),
        (
            "chna_track.wav",
            &["chna_track.wav", "track 9", "8 channels"],
        ),
        ("cut.wav", &["cut.wav", "truncated"]),
        ("order.wav", &["order.wav", "AB_00031002_00000003"]),
    ];
    for (file, expect) in cases {
        let input = dir.join(file);
        for (cmd, out) in [
            ("render", "out"),
            ("import", "imported.ron"),
            ("export", "again.wav"),
        ] {
            let target = dir.join("results").join(out);
            std::fs::create_dir_all(dir.join("results")).unwrap();
            let (code, _, err) = halo(&[
                cmd,
                input.to_str().unwrap(),
                "--out",
                target.to_str().unwrap(),
            ]);
            assert_eq!(code, 2, "{cmd} {file}: exit code, stderr: {err}");
            for e in expect {
                assert!(err.contains(e), "{cmd} {file}: {e:?} not in {err}");
            }
            assert!(!err.contains("panicked"), "{err}");
            let left: Vec<String> = files_in(&dir.join("results"))
                .into_iter()
                .filter(|f| f != "out/")
                .collect();
            assert!(left.is_empty(), "{cmd} {file}: left {left:?}");
        }
    }
}

#[test]
fn programme_is_chosen_by_id_or_name_and_an_unknown_one_is_refused() {
    let dir = scratch("programmes");
    let master = dir.join("master.wav");
    // A second programme with the bed content only, and its own loudness.
    let xml = String::from_utf8(two_contents_xml()).unwrap().replacen(
        "   <audioContent ",
        "   <audioProgramme audioProgrammeID=\"APR_1002\" audioProgrammeName=\"Bed only\">\n    <audioContentIDRef>ACO_1001</audioContentIDRef>\n   </audioProgramme>\n   <audioContent ",
        1,
    );
    assert!(xml.contains("APR_1002"));
    let (guitar, bed_r) = hand_written_master(&master, xml.as_bytes(), two_contents_chna(8));
    let render = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let (code, err) = common::render_f32(&master, "5.1", &out, extra);
        (code, err, out)
    };
    let peak = |x: &[f32]| x.iter().fold(0.0f32, |m, v| m.max(v.abs()));

    // Default: the first programme (guitar in L, a warning names the other).
    let (code, err, out) = render("first", &[]);
    assert_eq!(code, 0, "{err}");
    let r = read_planar(&out.join("5.1.wav"));
    assert!((peak(&r[0]) - peak(&guitar)).abs() < 1e-6);
    assert!(
        err.contains("APR_1002"),
        "the other programme is named: {err}"
    );

    // By ID and by name: the bed alone (L silent, R the bed's R at −3 dB).
    for (name, wanted) in [("by_id", "APR_1002"), ("by_name", "Bed only")] {
        let (code, err, out) = render(name, &["--programme", wanted]);
        assert_eq!(code, 0, "{wanted}: {err}");
        let r = read_planar(&out.join("5.1.wav"));
        assert!(peak(&r[0]) < 1e-7, "{wanted}: no guitar in L");
        let g = 10f32.powf(-3.0 / 20.0);
        assert!(
            (peak(&r[1]) - g * peak(&bed_r)).abs() < 1e-6,
            "{wanted}: bed R"
        );
    }

    // Unknown programme: exit 2, the choices listed, nothing written.
    let (code, err, out) = render("unknown", &["--programme", "APR_9999"]);
    assert_eq!(code, 2, "{err}");
    for want in [
        "APR_9999",
        "APR_1001",
        "\"Mix\"",
        "APR_1002",
        "\"Bed only\"",
    ] {
        assert!(err.contains(want), "message names {want}: {err}");
    }
    assert!(!out.join("5.1.wav").exists() && !out.join("report.json").exists());

    // A session has no programmes: the flag is refused.
    let session = dir.join("s.ron");
    std::fs::write(&session, "Session(objects: [], outputs: [])").unwrap();
    let (code, _, err) = halo(&[
        "render",
        session.to_str().unwrap(),
        "--programme",
        "APR_1001",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--programme") && err.contains("not an ADM master"),
        "{err}"
    );

    // Import takes the same choice: the bed only.
    let imported = dir.join("bed.ron");
    let (code, _, err) = halo(&[
        "import",
        master.to_str().unwrap(),
        "--programme",
        "APR_1002",
        "--out",
        imported.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let scene = load(&imported);
    assert_eq!((scene.objects.len(), scene.beds.len()), (0, 1));
}
