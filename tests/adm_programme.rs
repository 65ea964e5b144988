//! Programme-level ADM metadata through the `halo` command: the programme's reference screen
//! (audioProgrammeReferenceScreen) and block importance (`--min-importance`).
//!
//! - A programme giving BS.2076's default screen explicitly renders bit for bit as one that
//!   gives none (ADM and session); a screen of its own changes the render.
//! - `--programme` chooses whose screen applies.
//! - Export → import keeps the screen exactly (polar and Cartesian), and the session, the
//!   master and the imported session render the same audio.
//! - Bad screens (negative width, aspect ratio ≤ 0, NaN, mixed forms, a screen reaching
//!   behind the listener) are refused naming the element and what is allowed.
//! - Block importance, against its definition: blocks below the threshold render bit for
//!   bit as the same document with gain 0 written in those blocks; with nothing below the
//!   threshold (or without `--min-importance`) as the document without importance; and
//!   the muting survives import → session → render.
//!
//! The figures against EAR are in `tests/bs2127_objects.rs` (`ear_programme.json`).

mod common;
use common::{halo, one_object_master, scratch, wav_samples};
use halo::formats::io::{WavReader, WavSpec, WavWriter, WriteFormat};
use halo::formats::session;
use halo::scene::mix::{ReferenceScreen, Scene};
use std::path::Path;

const RATE: u32 = 48000;
const FRAMES: usize = 48000;
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bs2127_objects");

/// A one-track BW64 master with `xml` as its axml: a 440 Hz sine of 0.3 (every sample
/// different, so gain ramps show in the output).
fn master(path: &Path, xml: &str) {
    one_object_master(path, xml, &common::sine(440.0, 0.3, FRAMES, RATE), RATE);
}

/// `halo render INPUT --layout 7.1.4 --format f32` (plus `extra`) into `out`: the samples.
fn render(input: &Path, out: &Path, extra: &[&str]) -> Vec<f32> {
    let (code, err) = common::render_f32(input, "7.1.4", out, extra);
    assert_eq!(code, 0, "{}: {err}", input.display());
    wav_samples(&out.join("7.1.4.wav"))
}

/// Renders each document (name, axml) as a master in `dir`; the renders in order.
fn render_documents(dir: &Path, docs: &[(&str, String, &[&str])]) -> Vec<Vec<f32>> {
    docs.iter()
        .map(|(name, xml, extra)| {
            let path = dir.join(format!("{name}.wav"));
            master(&path, xml);
            render(&path, &dir.join(format!("render-{name}")), extra)
        })
        .collect()
}

fn data(file: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{file}.xml")).unwrap()
}

/// The document with `screen` inside its audioProgramme.
fn with_screen(xml: &str, screen: &str) -> String {
    xml.replacen(
        "</audioProgramme>",
        &format!("{screen}</audioProgramme>"),
        1,
    )
}

const DEFAULT_SCREEN: &str = r#"<audioProgrammeReferenceScreen aspectRatio="1.78"><screenCentrePosition azimuth="0" elevation="0" distance="1"/><screenWidth azimuth="58"/></audioProgrammeReferenceScreen>"#;
const OWN_SCREEN: &str = r#"<audioProgrammeReferenceScreen aspectRatio="1.25"><screenCentrePosition azimuth="15" elevation="8" distance="1.5"/><screenWidth azimuth="40"/></audioProgrammeReferenceScreen>"#;

#[test]
fn explicit_default_screen_renders_bit_identically_to_none() {
    let dir = scratch("default_screen");
    let plain = data("screen_ref");
    let renders = render_documents(
        &dir,
        &[
            ("none", plain.clone(), &[]),
            ("default", with_screen(&plain, DEFAULT_SCREEN), &[]),
            ("own", with_screen(&plain, OWN_SCREEN), &[]),
        ],
    );
    assert!(renders[0].iter().any(|x| x.abs() > 0.05));
    assert!(
        renders[1] == renders[0],
        "the explicit default screen changed the render"
    );
    let diff = renders[2]
        .iter()
        .zip(&renders[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff > 0.05,
        "a screen of its own changed the render by only {diff}"
    );

    // Sessions: `reference_screen` at the default is the same as none.
    let stem = dir.join("a.wav");
    write_stem(&stem);
    let session = |screen: &str| {
        format!(
            "Session({screen} objects: [(name: \"s\", source: \"a.wav\", position: [(time: 0, \
             value: Polar(az: 20, el: 10)), (time: 0.5, value: Polar(az: -25, el: -5))], \
             screen_ref: true), (name: \"t\", source: \"a.wav\", position: Cart(x: 0.3, y: 0.8, \
             z: 0.2), screen_ref: true)])"
        )
    };
    let mut out = Vec::new();
    for (name, screen) in [
        ("none", ""),
        (
            "default",
            "reference_screen: Polar(aspect_ratio: 1.78, az: 0, el: 0, dist: 1, width: 58),",
        ),
        (
            "own",
            "reference_screen: Cart(aspect_ratio: 2.2, x: -0.2, y: 1, z: 0.15, width: 1.2),",
        ),
    ] {
        let path = dir.join(format!("{name}.ron"));
        std::fs::write(&path, session(screen)).unwrap();
        out.push(render(&path, &dir.join(format!("session-{name}")), &[]));
    }
    assert!(
        out[1] == out[0],
        "the session's explicit default screen changed the render"
    );
    assert!(
        out[2] != out[0],
        "the session's own screen did not change the render"
    );
}

#[test]
fn the_chosen_programme_gives_its_screen() {
    let dir = scratch("chosen_programme");
    let plain = data("screen_ref");
    let second = format!(
        "<audioProgramme audioProgrammeID=\"APR_1002\" audioProgrammeName=\"cinema\">\
         <audioContentIDRef>ACO_1001</audioContentIDRef>{OWN_SCREEN}</audioProgramme>"
    );
    let two = plain.replacen("<audioContent ", &format!("{second}\n<audioContent "), 1);
    assert!(two.contains("APR_1002"));
    let renders = render_documents(
        &dir,
        &[
            ("first", two.clone(), &[]),
            ("chosen", two, &["--programme", "APR_1002"]),
            ("none", plain.clone(), &[]),
            ("own", with_screen(&plain, OWN_SCREEN), &[]),
        ],
    );
    assert!(
        renders[0] == renders[2],
        "the first programme has no screen of its own"
    );
    assert!(
        renders[1] == renders[3],
        "--programme APR_1002 did not take its screen"
    );
    assert!(renders[1] != renders[0]);
}

fn write_stem(path: &Path) {
    let spec = WavSpec {
        channels: 1,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create_with_chunks(path, spec, Vec::new()).unwrap();
    w.write(&common::sine(440.0, 0.3, FRAMES, RATE)).unwrap();
    w.finish().unwrap().commit().unwrap();
}

fn load(path: &Path) -> Scene {
    let text = std::fs::read_to_string(path).unwrap();
    session::parse(&text, path, &mut |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn export_then_import_keeps_the_reference_screen() {
    for (case, screen, want) in [
        (
            "polar",
            "Polar(aspect_ratio: 1.3333333333333333, az: -12.5, el: 4.25, dist: 2, width: 47.1)",
            Some(ReferenceScreen::Polar {
                aspect_ratio: 1.333_333_333_333_333_3,
                azimuth_deg: -12.5,
                elevation_deg: 4.25,
                distance: 2.0,
                width_deg: 47.1,
            }),
        ),
        (
            "cartesian",
            "Cart(aspect_ratio: 2.2, x: -0.2, y: 1, z: 0.15, width: 1.2)",
            Some(ReferenceScreen::Cartesian {
                aspect_ratio: 2.2,
                x: -0.2,
                y: 1.0,
                z: 0.15,
                width: 1.2,
            }),
        ),
        (
            "default",
            "Polar(aspect_ratio: 1.78, az: 0, width: 58)",
            None, // the default screen stays implicit
        ),
    ] {
        let dir = scratch(&format!("round_trip_{case}"));
        write_stem(&dir.join("a.wav"));
        let original = dir.join("mix.ron");
        std::fs::write(
            &original,
            format!(
                "Session(reference_screen: {screen}, objects: [(name: \"s\", source: \"a.wav\", \
                 position: [(time: 0, value: Polar(az: 20, el: 10)), (time: 0.5, value: \
                 Polar(az: -25, el: -5))], screen_ref: true, screen_edge_lock: [Top]), (name: \
                 \"c\", source: \"a.wav\", position: Cart(x: 0.3, y: 0.8, z: 0.2), screen_ref: \
                 true), (name: \"plain\", source: \"a.wav\", position: Polar(az: 100))])"
            ),
        )
        .unwrap();
        let exported = dir.join("master.wav");
        let (code, _, err) = halo(&[
            "export",
            original.to_str().unwrap(),
            "--out",
            exported.to_str().unwrap(),
            "--format",
            "f32",
        ]);
        assert_eq!(code, 0, "{case}: {err}");
        let mut reader = WavReader::open(&exported).unwrap();
        let axml =
            String::from_utf8(reader.read_chunk(*b"axml", 1 << 24).unwrap().unwrap()).unwrap();
        assert_eq!(
            axml.contains("<audioProgrammeReferenceScreen"),
            want.is_some(),
            "{case}: {axml}"
        );
        let back = dir.join("back").join("mix.ron");
        std::fs::create_dir_all(back.parent().unwrap()).unwrap();
        let (code, _, err) = halo(&[
            "import",
            exported.to_str().unwrap(),
            "--out",
            back.to_str().unwrap(),
            "--format",
            "f32",
        ]);
        assert_eq!(code, 0, "{case}: {err}");
        let (a, b) = (load(&original), load(&back));
        // Exactly the same numbers, on the screenRef objects only.
        let expect = want.or(Some(ReferenceScreen::DEFAULT));
        assert_eq!(a.reference_screen(), expect, "{case}");
        assert_eq!(b.reference_screen(), want, "{case}");
        for o in &b.objects {
            assert_eq!(
                o.controls.reference_screen.is_some(),
                o.controls.screen_ref && want.is_some(),
                "{case}: {}",
                o.name
            );
        }
        let renders: Vec<Vec<f32>> = [
            ("session", &original),
            ("master", &exported),
            ("imported", &back),
        ]
        .iter()
        .map(|(name, p)| render(p, &dir.join(format!("render-{name}")), &[]))
        .collect();
        assert!(renders[0].iter().any(|x| x.abs() > 0.05));
        assert!(
            renders[1] == renders[0],
            "{case}: the master renders differently"
        );
        assert!(
            renders[2] == renders[0],
            "{case}: the imported session renders differently"
        );
    }
}

#[test]
fn bad_screens_are_refused_naming_the_element() {
    let dir = scratch("bad_screens");
    let plain = data("screen_ref");
    let screen = |ar: &str, centre: &str, width: &str| {
        format!(
            "<audioProgrammeReferenceScreen aspectRatio=\"{ar}\"><screenCentrePosition \
             {centre}/><screenWidth {width}/></audioProgrammeReferenceScreen>"
        )
    };
    let polar = r#"azimuth="0" elevation="0" distance="1""#;
    for (case, s, says) in [
        (
            "negative_width",
            screen("1.78", polar, r#"azimuth="-30""#),
            "screenWidth azimuth -30 is out of range",
        ),
        (
            "zero_aspect",
            screen("0", polar, r#"azimuth="58""#),
            "aspectRatio 0 is out of range",
        ),
        (
            "negative_aspect",
            screen("-1.5", polar, r#"azimuth="58""#),
            "aspectRatio -1.5 is out of range",
        ),
        (
            "nan_width",
            screen("1.78", polar, r#"azimuth="NaN""#),
            "is not a finite number",
        ),
        (
            "nan_aspect",
            screen("NaN", polar, r#"azimuth="58""#),
            "aspectRatio NaN is not a finite number",
        ),
        (
            "cartesian_negative_width",
            screen("1.78", r#"X="0" Y="1" Z="0""#, r#"X="-1""#),
            "screenWidth X -1 is out of range",
        ),
        (
            "mixed_forms",
            screen("1.78", polar, r#"X="1""#),
            "not both polar or both Cartesian",
        ),
        (
            "behind",
            screen("1.78", r#"azimuth="170" elevation="0""#, r#"azimuth="58""#),
            "round behind the listener",
        ),
        (
            "missing_width",
            DEFAULT_SCREEN.replace(r#"<screenWidth azimuth="58"/>"#, ""),
            "the screenWidth is missing",
        ),
    ] {
        let path = dir.join(format!("{case}.wav"));
        master(&path, &with_screen(&plain, &s));
        let out = dir.join(format!("out-{case}"));
        let (code, _, err) = halo(&[
            "render",
            path.to_str().unwrap(),
            "--layout",
            "7.1.4",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{case}: {err}");
        assert!(
            err.contains("audioProgramme APR_1001: audioProgrammeReferenceScreen")
                && err.contains(says),
            "{case}: {err}"
        );
        assert!(!out.join("7.1.4.wav").exists(), "{case}");
    }

    // Sessions: the same checks, naming `reference_screen` and its line.
    for (screen, says) in [
        (
            "Polar(aspect_ratio: 1.78, az: 0, width: -58)",
            "screenWidth azimuth -58 is out of range",
        ),
        (
            "Polar(aspect_ratio: 0, az: 0, width: 58)",
            "aspectRatio 0 is out of range",
        ),
        (
            "Cart(aspect_ratio: NaN, x: 0, y: 1, width: 1)",
            "aspectRatio NaN is out of range",
        ),
        (
            "Polar(aspect_ratio: 1.78, az: 0, width: NaN)",
            "screenWidth azimuth NaN is out of range",
        ),
        (
            "Polar(aspect_ratio: 1.78, az: 170, width: 58)",
            "round behind the listener",
        ),
    ] {
        let text = format!(
            "Session(\n    reference_screen: {screen},\n    objects: [(name: \"s\", source: \
             \"a.wav\", position: Polar(az: 0), screen_ref: true)],\n)"
        );
        let err = session::parse(&text, Path::new("/x/mix.ron"), &mut |_| Err("no".into()))
            .expect_err(screen)
            .to_string();
        assert!(
            err.contains("mix.ron:2") && err.contains("reference_screen") && err.contains(says),
            "{screen}: {err}"
        );
    }
}

/// The block-importance document with its `<importance>` elements left out and gain 0
/// written in the blocks whose importance is below `min`.
fn muted_by_hand(xml: &str, min: u8) -> String {
    let mut out = String::new();
    for line in xml.lines() {
        let mut l = line.to_string();
        if let Some(at) = l.find("<importance>") {
            let end = l.find("</importance>").unwrap() + "</importance>".len();
            let importance: u8 = l[at + "<importance>".len()..end - "</importance>".len()]
                .parse()
                .unwrap();
            l.replace_range(at..end, "");
            if importance < min {
                l = match l.find("<gain>") {
                    Some(g) => {
                        let ge = l.find("</gain>").unwrap() + "</gain>".len();
                        let mut m = l.clone();
                        m.replace_range(g..ge, "<gain>0</gain>");
                        m
                    }
                    None => l.replacen(
                        "</audioBlockFormat>",
                        "<gain>0</gain></audioBlockFormat>",
                        1,
                    ),
                };
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn block_importance_mutes_blocks_as_gain_zero_does() {
    let dir = scratch("block_importance");
    let xml = data("block_importance");
    assert!(
        xml.contains("<importance>7</importance>") && xml.contains("<importance>3</importance>")
    );
    let path = dir.join("master.wav");
    master(&path, &xml);
    let mut by_threshold = Vec::new();
    for min in [
        None,
        Some(0u8),
        Some(3),
        Some(4),
        Some(5),
        Some(7),
        Some(8),
        Some(10),
    ] {
        let arg = min.map(|m| m.to_string());
        let extra: Vec<&str> = match &arg {
            Some(a) => vec!["--min-importance", a.as_str()],
            None => Vec::new(),
        };
        let tag = arg.clone().unwrap_or_else(|| "none".into());
        let got = render(&path, &dir.join(format!("render-{tag}")), &extra);
        // The definition: the same document with gain 0 in the blocks below the threshold.
        let hand = dir.join(format!("hand-{tag}.wav"));
        master(&hand, &muted_by_hand(&xml, min.unwrap_or(0)));
        let want = render(&hand, &dir.join(format!("render-hand-{tag}")), &[]);
        assert!(
            got == want,
            "--min-importance {tag}: not the render of gain 0 in those blocks"
        );
        by_threshold.push((tag, got));
    }
    let get = |t: &str| &by_threshold.iter().find(|(k, _)| k == t).unwrap().1;
    let peak = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    // Nothing below 3: as without the option; 5 mutes block 2 only; 8 mutes both.
    assert!(get("3") == get("none") && get("0") == get("none"));
    assert!(get("4") == get("5") && get("5") == get("7"));
    assert!(get("8") == get("10"));
    assert!(peak(get("none")) > 0.1);
    assert!(get("5") != get("none"));
    // Gain 0 is halo's silence, −200 dB (SILENT_GAIN_DB): 0.3 × 10⁻¹⁰ at most.
    const SILENT: f32 = 1e-10;
    assert!(
        peak(get("8")) <= SILENT,
        "every block muted: {}",
        peak(get("8"))
    );
    // With block 2 muted, the first half second is unchanged and the last 0.4 s silent.
    let n = get("5").len() / FRAMES;
    let (a, b) = (get("5"), get("none"));
    assert!(a[..n * 24000] == b[..n * 24000], "block 1 changed");
    assert!(
        peak(&a[n * 28800..]) <= SILENT,
        "block 2 not silent after its interpolation"
    );
    assert!(
        peak(&a[n * 24000..n * 28800]) > 0.01,
        "block 2's gain did not ramp down"
    );
}

#[test]
fn block_importance_survives_import_to_a_session() {
    let dir = scratch("block_importance_session");
    let path = dir.join("master.wav");
    master(&path, &data("block_importance"));
    let back = dir.join("back").join("mix.ron");
    std::fs::create_dir_all(back.parent().unwrap()).unwrap();
    let (code, _, err) = halo(&[
        "import",
        path.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
        "--format",
        "f32",
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&back).unwrap();
    assert!(text.contains("block_importance: ["), "{text}");
    let scene = load(&back);
    let from: Vec<u8> = scene.objects[0]
        .controls
        .block_importance
        .iter()
        .map(|l| l.from)
        .collect();
    assert_eq!(from, [4, 8], "one lane per importance level (3 and 7)");
    for min in ["3", "5", "8"] {
        let a = render(
            &path,
            &dir.join(format!("master-{min}")),
            &["--min-importance", min],
        );
        let b = render(
            &back,
            &dir.join(format!("session-{min}")),
            &["--min-importance", min],
        );
        assert!(
            a == b,
            "--min-importance {min}: the imported session renders differently"
        );
    }
    // A session's lanes are checked: `from` from 1 to 10, increasing.
    let bad = text.replacen("(from: 8,", "(from: 2,", 1);
    let err = session::parse(&bad, &back, &mut |_| Err("no".into()))
        .expect_err("from going down")
        .to_string();
    assert!(
        err.contains("block_importance[1]: from") && err.contains("increasing"),
        "{err}"
    );
}
