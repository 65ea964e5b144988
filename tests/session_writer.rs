//! The session writer (`session::write`) gives text that `session::parse` reads back to an
//! equal Scene, and the bed channel map (`channels: [...]`) parses with clear errors.

use halo::formats::session::*;
use halo::scene::mix::*;
use std::path::Path;

fn no_files(_: &Path) -> Result<String, String> {
    Err("no layout files here".into())
}

fn round_trip(scene: &Scene) {
    let text = write(scene).unwrap_or_else(|e| panic!("{e}"));
    let back = parse(&text, &scene.origin, &mut no_files)
        .unwrap_or_else(|e| panic!("{e}\n--- written text ---\n{text}"));
    assert_eq!(&back, scene, "--- written text ---\n{text}");
}

#[test]
fn showcase_round_trips_except_its_layout_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/showcase.ron"
    ))
    .unwrap();
    let studio = r#"(name: "studio", channels: [
        (label: "L", azimuth: 28, elevation: 0), (label: "R", azimuth: -31, elevation: 0),
        (label: "C", azimuth: 0, elevation: 0)])"#;
    let mut scene = parse(&text, Path::new("proj/showcase.ron"), &mut |_| {
        Ok(studio.to_string())
    })
    .unwrap();
    // A layout read from a file has no built-in name: the writer says so.
    let e = write(&scene).unwrap_err().to_string();
    assert!(e.contains("outputs[1]") && e.contains("\"studio\""), "{e}");
    scene.outputs.remove(1);
    round_trip(&scene);
}

#[test]
fn demo_session_round_trips() {
    let text = halo::drivers::demo::session_text(48000, &["7.1.4", "5.1", "2.0"]);
    let scene = parse(&text, Path::new("/tmp/demo/session.ron"), &mut no_files).unwrap();
    round_trip(&scene);
    let text = halo::drivers::demo::session_text(44100, &["9.1.6"]);
    let scene = parse(&text, Path::new("rel/session.ron"), &mut no_files).unwrap();
    round_trip(&scene);
}

#[test]
fn awkward_values_round_trip() {
    // Odd frame times (not whole milliseconds), tiny numbers, a keyframe list of one key,
    // names that need escaping, channel maps.
    let text = r#"Session(sample_rate: 44100, duration: 3.3333333,
        objects: [(name: "a \"quoted\" \\ name", source: (file: "x/y z.wav", channel: 7),
            gain_db: [(time: 0.1234567, value: -0.000001, interp: Smooth), (time: 1, value: 3)],
            position: [(time: 0.5, value: Polar(az: 179.99, el: -12.5, dist: 0.3), interp: Step)],
            size: [(time: 0, value: 0.1), (time: 0.00002, value: 0.7, interp: Step)])],
        beds: [(name: "b", source: "big.wav", layout: "7.1.4", gain_db: -2.5, mute: true,
                channels: [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24])],
        outputs: [])"#;
    let scene = parse(text, Path::new("/abs/s.ron"), &mut no_files).unwrap();
    assert_eq!(scene.beds[0].channels, Some((12..24).collect()));
    round_trip(&scene);
}

#[test]
fn bed_channel_map_errors() {
    let bed = |channels: &str| {
        format!(
            r#"Session(beds: [(name: "b", source: "f.wav", layout: "5.1", channels: {channels})])"#
        )
    };
    let ok = parse(
        &bed("[6, 5, 4, 3, 2, 1]"),
        Path::new("s.ron"),
        &mut no_files,
    )
    .unwrap();
    assert_eq!(ok.beds[0].channels, Some(vec![5, 4, 3, 2, 1, 0]));
    let without = parse(
        r#"Session(beds: [(name: "b", source: "f.wav", layout: "5.1")])"#,
        Path::new("s.ron"),
        &mut no_files,
    )
    .unwrap();
    assert_eq!(without.beds[0].channels, None);
    for (channels, expect) in [
        (
            "[1, 2, 3]",
            "3 channels are listed for the 6 channels of layout \"5.1\"",
        ),
        ("[1, 2, 3, 4, 5, 0]", "channel 0 is not a channel number"),
        ("[1, 2, 3, 4, 5, 5]", "channel 5 is listed twice"),
        (
            "[1, 2, 3, 4, 5, 70000]",
            "channel 70000 is not a channel number",
        ),
    ] {
        let e = parse(&bed(channels), Path::new("s.ron"), &mut no_files)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("beds[0] \"b\": channels") && e.contains(expect),
            "{channels}: {e}"
        );
        assert!(e.contains("L R C LFE Ls Rs"), "{e}");
    }
}
