//! The `dbmd` chunk reader against MediaInfo (its output for the public samples is
//! committed in tests/data/dbmd/, made by tools/reference/dbmd_mediainfo.sh), hostile
//! chunks, and the writer's round trip.

use halo::formats::dbmd::{
    AtmosSegment, BinauralRenderMode, Dbmd, DbmdError, StereoDownmix, SupplementalSegment,
    TRIM_LAYOUTS, Trim, VERSION, WarpMode,
};

/// The public corpus (`../shared`; a worktree one level deeper also looks in `../../shared`).
fn corpus_file(name: &str) -> Option<std::path::PathBuf> {
    [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/adm-corpus/public/"),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/adm-corpus/public/"
        ),
    ]
    .iter()
    .map(|dir| std::path::Path::new(dir).join(name))
    .find(|p| p.exists())
}

/// The payload of the first `dbmd` chunk of a RIFF/BW64 file.
fn dbmd_chunk(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = bytes.get(pos + 8..pos + 8 + size)?;
        if id == b"dbmd" {
            return Some(body);
        }
        pos += 8 + size + (size & 1);
    }
    None
}

/// `key : value` lines of a MediaInfo text report, in order (key trimmed, with its
/// indentation level).
fn mediainfo_lines(text: &str) -> Vec<(usize, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            let indent = k.len() - k.trim_start().len();
            Some((indent, k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// MediaInfo's figures for one file, and halo's parse of the same file.
fn check_file(wav: &str) {
    let Some(path) = corpus_file(wav) else {
        eprintln!("skipped: ../shared/adm-corpus/public/{wav} is absent");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let chunk = dbmd_chunk(&bytes).expect("the sample has a dbmd chunk");
    let dbmd = Dbmd::parse(chunk).unwrap();
    let report = std::fs::read_to_string(format!(
        "{}/tests/data/dbmd/{}.mediainfo.txt",
        env!("CARGO_MANIFEST_DIR"),
        wav.trim_end_matches(".wav")
    ))
    .unwrap();
    let lines = mediainfo_lines(&report);
    let get = |key: &str| {
        lines
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.clone())
    };
    let atmos = dbmd.atmos.as_ref().expect("Dolby Atmos segment");
    assert_eq!(get("Dolby Atmos metadata").as_deref(), Some("Yes"));
    // Writing tool and version.
    let v = atmos.tool_version;
    assert_eq!(
        get("Writing application").unwrap(),
        format!("{}, Version {}.{}.{}", atmos.tool, v[0], v[1], v[2])
    );
    // 5.1 and 5.1.x downmix (warp mode) and 5.1 → 2.0 downmix.
    assert_eq!(get("5.1 and 5.1.x downmix"), atmos.warp_mode.name());
    let stereo = {
        let mut s = match atmos.stereo_downmix {
            StereoDownmix::LoRo => "Lo/Ro".to_string(),
            StereoDownmix::LtRtProLogic => "Lt/Rt (Dolby Pro Logic)".into(),
            StereoDownmix::LtRtProLogicII => "Lt/Rt (Dolby Pro Logic II)".into(),
            StereoDownmix::DirectStereoRender => "Direct stereo render".into(),
            _ => String::new(),
        };
        if let Some(p) = atmos.phase_shift_90 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(if p { "w/ Phase 90" } else { "w/o Phase 90" });
        }
        (!s.is_empty()).then_some(s)
    };
    assert_eq!(get("5.1 to 2.0 downmix"), stereo);
    // Trims: mode per layout (and the figures of manual ones).
    let sup = dbmd.supplemental.as_ref().expect("supplemental segment");
    for (layout, trim) in TRIM_LAYOUTS.iter().zip(&sup.trims) {
        let mode = get(&format!("Trim mode for {layout}")).unwrap();
        assert_eq!(
            mode,
            if trim.automatic {
                "Automatic"
            } else {
                "Manual"
            },
            "{layout}"
        );
    }
    // Binaural render modes, track by track …
    let mut tracks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].1.starts_with("Track UID #") && lines[i].0 == 0 {
            let mode = lines[i + 1..]
                .iter()
                .take_while(|l| l.0 > 0)
                .find(|l| l.1 == "Binaural render mode")
                .map(|l| l.2.clone());
            tracks.push(mode.unwrap());
        }
        i += 1;
    }
    assert_eq!(tracks.len(), sup.binaural.len(), "track count");
    for (t, (mi, ours)) in tracks.iter().zip(&sup.binaural).enumerate() {
        assert_eq!(mi, &ours.name(), "track {}", t + 1);
    }
    // … and object by object (MediaInfo lists an object's tracks, 0-based, on the first
    // "Track UID #s" line, and joins differing modes with " + ").
    let mut objects = 0;
    i = 0;
    while i < lines.len() {
        if lines[i].1.starts_with("Object #") && lines[i].0 == 0 {
            let body: Vec<_> = lines[i + 1..].iter().take_while(|l| l.0 > 0).collect();
            let positions: Vec<usize> = body
                .iter()
                .find(|l| l.1 == "Track UID #s")
                .unwrap()
                .2
                .split(" + ")
                .map(|s| s.parse().unwrap())
                .collect();
            let mi = &body
                .iter()
                .find(|l| l.1 == "Binaural render mode")
                .unwrap()
                .2;
            let modes: Vec<String> = positions.iter().map(|&p| sup.binaural[p].name()).collect();
            let ours = if modes.iter().all(|m| m == &modes[0]) {
                modes[0].clone()
            } else {
                modes.join(" + ")
            };
            assert_eq!(&ours, mi, "object {}", lines[i].2);
            objects += 1;
        }
        i += 1;
    }
    assert!(objects > 0);
    eprintln!(
        "{wav}: {} ({:?}, {:?}), {} tracks, {objects} objects agree with MediaInfo",
        atmos.tool,
        atmos.warp_mode,
        atmos.stereo_downmix,
        tracks.len()
    );
}

#[test]
fn dolby_conversion_tool_sample_reads_as_mediainfo_reads_it() {
    check_file("dolby_sample_adm_file_6.wav");
}

#[test]
fn pro_tools_sample_reads_as_mediainfo_reads_it() {
    check_file("wavinfo_Test_ADM_ProTools.wav");
}

fn sample_chunk() -> Dbmd {
    Dbmd {
        version: VERSION,
        atmos: Some(AtmosSegment::new(
            "halo",
            [0, 1, 0],
            StereoDownmix::LtRtProLogicII,
            WarpMode::ProLogicIIx,
        )),
        supplemental: Some(SupplementalSegment {
            trims: [Trim::AUTOMATIC; 9],
            trim_bypass: vec![0; 3],
            head_track_mode: vec![0; 3],
            binaural: vec![
                BinauralRenderMode::Near,
                BinauralRenderMode::Mid,
                BinauralRenderMode::Far,
            ],
        }),
        other: vec![(7, vec![1, 2, 3])],
    }
}

#[test]
fn chunks_round_trip() {
    let d = sample_chunk();
    let bytes = d.to_bytes();
    let back = Dbmd::parse(&bytes).unwrap();
    assert_eq!(back.supplemental, d.supplemental);
    assert_eq!(back.other, d.other);
    assert_eq!(back.to_bytes(), bytes);
}

#[test]
fn malformed_chunks_give_their_own_errors() {
    let good = sample_chunk().to_bytes();
    assert_eq!(
        Dbmd::parse(&good[..2]),
        Err(DbmdError::TooShort { have: 2 })
    );
    let mut v = good.clone();
    v[3] = 2;
    assert!(matches!(
        Dbmd::parse(&v),
        Err(DbmdError::Version { major: 2, .. })
    ));
    // Cut inside the first segment.
    assert!(matches!(
        Dbmd::parse(&good[..6]),
        Err(DbmdError::Truncated {
            offset: 4,
            id: 7,
            ..
        })
    ));
    // No end marker.
    assert!(matches!(
        Dbmd::parse(&good[..good.len() - 1]),
        Err(DbmdError::NoEnd { .. })
    ));
    // A flipped payload byte breaks the checksum.
    let mut c = good.clone();
    c[8] ^= 0x40;
    assert!(matches!(
        Dbmd::parse(&c),
        Err(DbmdError::Checksum {
            offset: 4,
            id: 7,
            ..
        })
    ));
    // A segment 9 too short to hold its fields (checksum made right).
    let mut s = VERSION.to_le_bytes().to_vec();
    let payload = [0u8; 10];
    s.extend_from_slice(&[9, 10, 0]);
    s.extend_from_slice(&payload);
    s.push(10u8.wrapping_neg());
    s.push(0);
    assert!(matches!(
        Dbmd::parse(&s),
        Err(DbmdError::SegmentSize {
            id: 9,
            size: 10,
            ..
        })
    ));
    // A supplemental segment with a wrong sync word.
    let mut s = VERSION.to_le_bytes().to_vec();
    let payload = [1u8, 2, 3, 4, 0, 0, 0];
    let sum = payload.iter().fold(7u8, |a, &b| a.wrapping_add(b));
    s.extend_from_slice(&[10, 7, 0]);
    s.extend_from_slice(&payload);
    s.push(sum.wrapping_neg());
    s.push(0);
    assert!(matches!(Dbmd::parse(&s), Err(DbmdError::Sync { .. })));
    // Errors name the place.
    let msg = Dbmd::parse(&c).unwrap_err().to_string();
    assert!(msg.contains("byte 4") && msg.contains("segment 7"), "{msg}");
}

#[test]
fn every_prefix_and_corruption_is_an_error_or_a_chunk_never_a_panic() {
    let good = sample_chunk().to_bytes();
    for n in 0..good.len() {
        let _ = Dbmd::parse(&good[..n]);
    }
    let mut x = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut b = good.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % b.len();
            b[at] = (x >> 8) as u8;
        }
        let _ = Dbmd::parse(&b);
    }
}

#[test]
fn a_masters_modes_reach_its_objects_and_bed_channels() {
    use halo::scene::mix::BinauralMode;
    if let Some(path) = corpus_file("dolby_sample_adm_file_6.wav") {
        let master = halo::drivers::exchange::read_master(&path, None).unwrap();
        let modes: Vec<BinauralMode> = master.scene.objects.iter().map(|o| o.binaural).collect();
        // MediaInfo: Atmos_Obj_1 Off, Atmos_Obj_2 Far.
        assert_eq!(modes, [BinauralMode::Off, BinauralMode::Far]);
        let w = master.warnings.join("\n");
        assert!(
            w.contains("not applied") && w.contains("Direct Render with room balance"),
            "{w}"
        );
    } else {
        eprintln!("skipped: the Dolby sample is absent");
    }
    // The Pro Tools sample's ADM does not read in halo (its block times overlap after
    // rounding), so its dbmd is applied to the same structure from a session: a 7.1.2
    // bed on tracks 1–10 and four objects on tracks 11–14.
    if let Some(path) = corpus_file("wavinfo_Test_ADM_ProTools.wav") {
        let bytes = std::fs::read(&path).unwrap();
        let chunk = Dbmd::parse(dbmd_chunk(&bytes).unwrap()).unwrap();
        let objects: Vec<String> = (11..=14)
            .map(|c| format!("(name: \"o{c}\", source: (file: \"m.wav\", channel: {c}), position: Cart(x: 0, y: 1, z: 0))"))
            .collect();
        let text = format!(
            "(sample_rate: 48000, duration: 1.0, objects: [{}], beds: [(name: \"bed\", \
             source: \"m.wav\", layout: \"7.1.2\", channels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])], \
             outputs: [Stereo(from: \"7.1.4\", fold: (matrix: LtRt))])",
            objects.join(", ")
        );
        let mut scene =
            halo::formats::session::parse(&text, std::path::Path::new("s.ron"), &mut |_| {
                Err("no layouts".into())
            })
            .unwrap();
        let warnings = halo::formats::dbmd::apply_to_scene(&chunk, &mut scene);
        let modes = scene.beds[0]
            .binaural
            .as_ref()
            .expect("bed modes from dbmd");
        // MediaInfo: the 4th channel (LFE) Off, the others not indicated (Mid).
        assert_eq!(modes[3], BinauralMode::Off);
        assert!(
            modes
                .iter()
                .enumerate()
                .all(|(i, m)| i == 3 || *m == BinauralMode::Mid)
        );
        assert!(
            scene
                .objects
                .iter()
                .all(|o| o.binaural == BinauralMode::Mid)
        );
        // The Lo/Ro 5.1 → 2.0 downmix reaches the stereo fold-down.
        assert!(scene.outputs.iter().any(|o| matches!(
            o,
            halo::scene::mix::OutputSpec::Stereo { fold, .. }
                if fold.matrix == halo::scene::mix::FoldMatrix::LoRo
        )));
        assert!(
            warnings.iter().any(|w| w.contains("Standard (Lo/Ro)")),
            "{warnings:?}"
        );
    } else {
        eprintln!("skipped: the Pro Tools sample is absent");
    }
}
