//! The error catalogue: each bad session gives a message that names the session file, the
//! line (and column for syntax errors) or the place, the offending value and what is allowed.

use halo::formats::session::{SessionError, parse};
use std::path::Path;

const HEIGHTS: &str = r#"(name: "heights", channels: [
    (label: "Ltf", azimuth: 45, elevation: 45),
    (label: "Rtf", azimuth: -45, elevation: 45),
])"#;

fn read_layout(p: &Path) -> Result<String, String> {
    match p.to_str() {
        Some("mix/heights.ron") => Ok(HEIGHTS.to_string()),
        Some("mix/broken.ron") => {
            Ok("(name: \"b\",\n channels: [(label: \"L\", azimuth: 30 elevation: 0)])".to_string())
        }
        _ => Err("No such file or directory (os error 2)".to_string()),
    }
}

fn err(text: &str) -> SessionError {
    match parse(text, Path::new("mix/song.ron"), &mut read_layout) {
        Ok(scene) => panic!("expected an error, got {scene:?}"),
        Err(e) => e,
    }
}

/// The message, checked to name the session file.
fn msg(text: &str) -> String {
    let e = err(text);
    assert_eq!(e.file(), Path::new("mix/song.ron"));
    let m = e.to_string();
    assert!(m.starts_with("mix/song.ron"), "{m}");
    println!("{m}");
    m
}

fn has(m: &str, parts: &[&str]) {
    for p in parts {
        assert!(m.contains(p), "message lacks {p:?}:\n{m}");
    }
}

/// A one-object session with `field` spliced into the object (on line 4).
fn object_with(field: &str) -> String {
    format!(
        "Session(\n    objects: [\n        (name: \"vox\", source: \"vox.wav\",\n         {field}),\n    ],\n)\n"
    )
}

/// A valid object (line 3) and an output spliced in on line 5.
fn output(out: &str) -> String {
    format!(
        "Session(\n    objects: [\n        (name: \"vox\", source: \"vox.wav\", position: Cart(x: 0, y: 1, z: 0)),\n    ],\n    outputs: [ {out} ],\n)\n"
    )
}

#[test]
fn syntax_error_gives_line_and_column() {
    let m = msg("Session(\n    sample_rate: 48000\n    objects: [],\n)");
    has(&m, &["mix/song.ron:3:5:", "comma"]);
    let e = err("Session(\n    sample_rate: 48000\n    objects: [],\n)");
    assert!(
        matches!(
            e,
            SessionError::Syntax {
                line: 3,
                column: 5,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.line(), Some(3));
}

#[test]
fn syntax_error_inside_a_nested_value_is_placed_in_the_whole_file() {
    // The error is inside the position (parsed in a second step): its place is absolute.
    let m = msg(&object_with("position: Cart(x: 0, y: 1, z: 0,, )"));
    has(&m, &["mix/song.ron:4:"]);
    let e = err(&object_with("position: Cart(x: 0, y: 1, z: 0,, )"));
    let SessionError::Syntax { line, column, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(line, 4);
    assert!(
        column > 30,
        "column {column} is relative to the value, not the line"
    );
}

#[test]
fn empty_file() {
    for text in ["", "  \n\n", "// nothing yet\n/* still nothing */\n"] {
        let e = err(text);
        assert!(matches!(e, SessionError::EmptyFile { .. }), "{e:?}");
        has(&e.to_string(), &["mix/song.ron", "empty", "Session("]);
    }
}

#[test]
fn empty_session() {
    let m = msg("Session(outputs: [Speakers(layout: \"2.0\")])");
    has(
        &m,
        &["no objects and no beds", "allowed: at least one object"],
    );
    let m = msg("Session(objects: [], beds: [])");
    has(&m, &["no objects and no beds"]);
}

#[test]
fn unknown_layout_lists_the_allowed_names() {
    let text =
        "Session(\n  beds: [\n    (name: \"drums\", source: \"d.wav\", layout: \"13.2\"),\n  ],\n)";
    let m = msg(text);
    has(
        &m,
        &[
            "mix/song.ron:3:",
            "beds[0] \"drums\": layout",
            "'13.2'",
            "2.0",
            "5.1",
            "7.1.4",
            "9.1.6",
            ".ron",
        ],
    );
    let m = msg(&output("Speakers(layout: \"22.2\")"));
    has(
        &m,
        &[
            "mix/song.ron:5:",
            "outputs[0] Speakers \"22.2\": layout",
            "'22.2'",
            "7.1.4",
        ],
    );
}

#[test]
fn empty_and_duplicate_names() {
    let m = msg("Session(objects: [(name: \" \", source: \"a.wav\", position: Cart(x: 0, y: 1))])");
    has(
        &m,
        &[
            "mix/song.ron:1:",
            "objects[0]",
            "name \" \" is empty",
            "allowed: a non-empty name, unique",
        ],
    );
    let text = "Session(\n objects: [\n  (name: \"vox\", source: \"a.wav\", position: Cart(x: 0, y: 1)),\n  (name: \"vox\", source: \"b.wav\", position: Cart(x: 0, y: 1)),\n ],\n)";
    let m = msg(text);
    has(
        &m,
        &[
            "mix/song.ron:4:",
            "objects[1] \"vox\"",
            "already used by objects[0]",
        ],
    );
    // Unique across objects and beds.
    let text = "Session(\n objects: [(name: \"vox\", source: \"a.wav\", position: Cart(x: 0, y: 1))],\n beds: [(name: \"vox\", source: \"b.wav\", layout: \"5.1\")],\n)";
    has(
        &msg(text),
        &[
            "mix/song.ron:3:",
            "beds[0] \"vox\"",
            "already used by objects[0]",
        ],
    );
}

#[test]
fn keyframes_out_of_order() {
    let m = msg(&object_with(
        "position: Cart(x: 0, y: 1),\n gain_db: [(time: 0, value: 0), (time: 2, value: -3), (time: 1, value: -6)]",
    ));
    has(
        &m,
        &[
            "mix/song.ron:5:",
            "objects[0] \"vox\": gain_db keyframe 3",
            "time = 1 s (frame 48000) is not after keyframe 2's time 2 s (frame 96000)",
            "strictly increasing",
        ],
    );
    // Distinct in seconds, equal once rounded to samples.
    let m = msg(&object_with(
        "position: Cart(x: 0, y: 1),\n size: [(time: 1, value: 0), (time: 1.000001, value: 1)]",
    ));
    has(
        &m,
        &[
            "size keyframe 2",
            "frame 48000",
            "at least one sample apart",
        ],
    );
}

#[test]
fn keyframe_line_is_the_keyframes_own() {
    let m = msg(&object_with(
        "position: [\n  (time: 0, value: Cart(x: 0, y: 1)),\n  (time: 1, value: Cart(x: 0, y: 1)),\n  (time: 2, value: Cart(x: 5, y: 1)),\n ]",
    ));
    has(
        &m,
        &[
            "mix/song.ron:7:",
            "objects[0] \"vox\": position keyframe 3",
            "x = 5 is out of range",
            "from -1 to 1",
        ],
    );
}

#[test]
fn negative_time() {
    let m = msg(&object_with(
        "position: [(time: -0.5, value: Cart(x: 0, y: 1))]",
    ));
    has(
        &m,
        &[
            "mix/song.ron:4:",
            "position keyframe 1",
            "time = -0.5 s is out of range",
            "a time in seconds from 0",
        ],
    );
}

#[test]
fn nan_and_inf_in_positions() {
    let m = msg(&object_with("position: Cart(x: NaN, y: 1, z: 0)"));
    has(
        &m,
        &[
            "mix/song.ron:4:",
            "objects[0] \"vox\": position",
            "x = NaN is not a finite number",
            "allowed: Cart: x, y, z from -1 to 1",
        ],
    );
    let m = msg(&object_with("position: Polar(az: inf, el: 0)"));
    has(
        &m,
        &["az = inf is not a finite number", "az from -360 to 360"],
    );
    let m = msg(&object_with(
        "position: [(time: 0, value: Polar(az: 0, el: -inf))]",
    ));
    has(
        &m,
        &[
            "position keyframe 1",
            "el = -inf is not a finite number",
            "el from -90 to 90",
        ],
    );
    let m = msg(&object_with("position: Cart(x: 0, y: 1), gain_db: NaN"));
    has(&m, &["gain_db = NaN is not a finite number", "at most +24"]);
}

#[test]
fn size_out_of_range() {
    let m = msg(&object_with("position: Cart(x: 0, y: 1), size: 1.5"));
    has(
        &m,
        &[
            "mix/song.ron:4:",
            "objects[0] \"vox\": size",
            "size = 1.5 is out of range",
            "size from 0 to 1",
        ],
    );
    let m = msg(&object_with(
        "position: Cart(x: 0, y: 1), size: [(time: 0, value: 0), (time: 1, value: -0.1)]",
    ));
    has(&m, &["size keyframe 2", "size = -0.1 is out of range"]);
}

#[test]
fn channel_zero_or_negative() {
    let text = "Session(objects: [(name: \"g\", source: (file: \"g.wav\", channel: 0), position: Cart(x: 0, y: 1))])";
    has(
        &msg(text),
        &[
            "objects[0] \"g\": source channel",
            "channel = 0 is not a channel number",
            "counted from 1 (the first channel is 1, not 0)",
        ],
    );
    let text = "Session(objects: [(name: \"g\", source: (file: \"g.wav\", channel: -1), position: Cart(x: 0, y: 1))])";
    has(&msg(text), &["channel = -1"]);
    let text = "Session(objects: [(name: \"g\", source: 3, position: Cart(x: 0, y: 1))])";
    has(
        &msg(text),
        &["source", "`3` is not a source", "channels counted from 1"],
    );
}

#[test]
fn unknown_field_lists_the_allowed_ones() {
    let m = msg(&object_with("position: Cart(x: 0, y: 1), gian: -3"));
    has(
        &m,
        &[
            "mix/song.ron:4:",
            "`gian`",
            "`name`",
            "`source`",
            "`gain_db`",
            "`position`",
            "`size`",
            "`binaural`",
        ],
    );
    let m = msg("Session(\n  sample_rte: 44100,\n  objects: [],\n)");
    has(
        &m,
        &[
            "mix/song.ron:2:",
            "`sample_rte`",
            "`sample_rate`",
            "`duration`",
            "`objects`",
            "`beds`",
            "`outputs`",
        ],
    );
    let m = msg(&output("Stereo(fold: (matrix: LtRt, centre_db: -3))"));
    has(
        &m,
        &[
            "mix/song.ron:5:",
            "`centre_db`",
            "`center_db`",
            "`height_db`",
        ],
    );
    let m = msg(&output(
        "Speakers(layout: \"2.0\", chain: [Limiter(ceiling: -1)])",
    ));
    has(&m, &["`ceiling`", "`ceiling_dbtp`", "`lookahead_ms`"]);
}

#[test]
fn unknown_output_kind() {
    let m = msg(&output("Headphones(hrtf: \"x.sofa\")"));
    has(
        &m,
        &[
            "mix/song.ron:5:",
            "`Headphones`",
            "`Speakers`",
            "`Binaural`",
            "`Stereo`",
        ],
    );
}

#[test]
fn unknown_processor_and_eq_kind() {
    let m = msg(&output(
        "Speakers(layout: \"2.0\", chain: [Reverb(mix: 0.3)])",
    ));
    has(&m, &["`Reverb`", "`Compressor`", "`Limiter`", "`Dither`"]);
    let m = msg(&output(
        "Speakers(layout: \"2.0\", chain: [Eq(bands: [(kind: Notch, freq_hz: 50)])])",
    ));
    has(&m, &["`Notch`", "`Peak`", "`HighShelf`"]);
}

#[test]
fn stereo_from_a_layout_without_ear_level_speakers() {
    let m = msg(&output("Stereo(from: \"heights.ron\")"));
    has(
        &m,
        &[
            "mix/song.ron:5:",
            "outputs[0] Stereo: from",
            "layout \"heights\" has no ear-level speakers",
            "Ltf @45°/45°",
            "elevation within ±10°",
        ],
    );
}

#[test]
fn bad_chain_parameters() {
    let m = msg(&output(
        "Speakers(layout: \"2.0\", chain: [Gain(gain_db: 0), Compressor(threshold_db: -20, ratio: 0.5)])",
    ));
    has(
        &m,
        &[
            "mix/song.ron:5:",
            "outputs[0] Speakers \"2.0\": chain[1] Compressor",
            "ratio = 0.5 is out of range",
            "ratio from 1",
        ],
    );
    let m = msg(&output("Binaural(chain: [Limiter(lookahead_ms: 0.1)])"));
    has(
        &m,
        &[
            "outputs[0] Binaural: chain[0] Limiter",
            "lookahead_ms = 0.1 ms is out of range",
            "lookahead_ms from 1 to 20 ms",
        ],
    );
    let m = msg(&output(
        "Stereo(chain: [Eq(bands: [(kind: Peak, freq_hz: 1000, gain_db: 2), (kind: HighShelf, freq_hz: 30000, gain_db: 2)])])",
    ));
    has(
        &m,
        &[
            "chain[0] Eq band 2",
            "freq_hz = 30000 Hz is out of range",
            "below 24000 Hz (half the sample rate 48000 Hz)",
        ],
    );
    let m = msg(&output(
        "Stereo(chain: [Eq(bands: [(kind: Peak, freq_hz: 1000, q: 0)])])",
    ));
    has(&m, &["q = 0 is out of range", "q from 0.025 to 100"]);
    let m = msg(&output("Stereo(chain: [Width(width: 5)])"));
    has(&m, &["width = 5 is out of range", "width from 0 to 4"]);
    let m = msg(&output("Stereo(chain: [Limiter(ceiling_dbtp: 0.5)])"));
    has(
        &m,
        &[
            "ceiling_dbtp = 0.5 dBTP is out of range",
            "from -20 to 0 dBTP",
        ],
    );
    let m = msg(&output("Stereo(chain: [Dither(bits: 4)])"));
    has(&m, &["bits = 4 is out of range", "bits from 8 to 32"]);
    let m = msg(&output("Stereo(chain: [Dither(), Limiter()])"));
    has(&m, &["chain[0] Dither", "not the last processor"]);
    let m = msg(&output(
        "Stereo(chain: [Eq(bands: [(kind: HighPass, freq_hz: 80, gain_db: 3)])])",
    ));
    has(&m, &["gain_db = 3 dB has no effect on a HighPass band"]);
}

#[test]
fn bad_sample_rate() {
    let m = msg(
        "Session(\n  sample_rate: 1000,\n  objects: [(name: \"a\", source: \"a.wav\", position: Cart(x: 0, y: 1))],\n)",
    );
    has(
        &m,
        &[
            "mix/song.ron:2:",
            "sample_rate",
            "sample_rate = 1000 Hz is out of range",
            "from 8000 to 384000 (e.g. 44100",
        ],
    );
    let m = msg("Session(\n  sample_rate: 44100.5,\n  objects: [],\n)");
    has(
        &m,
        &[
            "mix/song.ron:2:",
            "sample_rate = 44100.5 Hz is out of range",
            "a whole number of Hz",
        ],
    );
    // Nyquist follows the session's rate.
    let text = "Session(sample_rate: 32000, objects: [(name: \"a\", source: \"a.wav\", position: Cart(x: 0, y: 1))],\n outputs: [Stereo(chain: [Eq(bands: [(kind: LowPass, freq_hz: 18000)])])])";
    has(
        &msg(text),
        &["below 16000 Hz (half the sample rate 32000 Hz)"],
    );
}

#[test]
fn unknown_interpolation() {
    let m = msg(&object_with(
        "position: [(time: 0, value: Cart(x: 0, y: 1), interp: Bezier)]",
    ));
    has(
        &m,
        &[
            "mix/song.ron:4:",
            "`Bezier`",
            "`Step`",
            "`Linear`",
            "`Smooth`",
        ],
    );
}

#[test]
fn value_shape_errors_say_what_is_expected() {
    let m = msg(&object_with("position: (x: 0, y: 1, z: 0)"));
    has(
        &m,
        &["mix/song.ron:4:", "Cart(x: …, y: …, z: …)", "Polar(az: …"],
    );
    let m = msg(&object_with(
        "position: Cart(x: 0, y: 1), gain_db: \"loud\"",
    ));
    has(&m, &["a gain in dB"]);
    let m = msg(&object_with(
        "position: [(time: 0, value: Cart(x: 0, y: 1)), (time: 1, value: Polar(az: 0))]",
    ));
    has(&m, &["position keyframe 2", "all Cart or all Polar"]);
    let m = msg(&object_with("position: []"));
    has(&m, &["position", "the keyframe list is empty"]);
    let m = msg(&output(
        "Speakers(layout: \"2.0\", target: (tolerance_lu: 0))",
    ));
    has(
        &m,
        &[
            "outputs[0] Speakers \"2.0\": target",
            "tolerance_lu = 0 LU is out of range",
        ],
    );
    let m = msg(&output("Speakers(layout: \"2.0\", target: ())"));
    has(&m, &["the target sets nothing"]);
    let m = msg(&output("Speakers(layout: \"2.0\", target: -23)"));
    has(&m, &["`-23` is not a target", "a preset name"]);
}

#[test]
fn layout_file_that_fails_to_read_or_parse() {
    let e = err(&output("Speakers(layout: \"rooms/missing.ron\")"));
    assert!(matches!(e, SessionError::LayoutRead { .. }), "{e:?}");
    has(
        &e.to_string(),
        &[
            "mix/song.ron:5:",
            "outputs[0] Speakers \"rooms/missing.ron\": layout",
            "mix/rooms/missing.ron",
            "No such file",
        ],
    );
    let e = err(&output("Speakers(layout: \"broken.ron\")"));
    assert!(matches!(e, SessionError::Layout { .. }), "{e:?}");
    // The session's place, then the layout file's own line:column.
    has(
        &e.to_string(),
        &["mix/song.ron:5:", "layout", "mix/broken.ron:2:", "comma"],
    );
}

#[test]
fn no_panic_on_any_prefix_or_mangled_showcase() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/showcase.ron"
    ))
    .expect("showcase example");
    let last = text.rfind(')').expect("closing parenthesis");
    let mut read = |_: &Path| Ok(HEIGHTS.replace("45)", "0)"));
    // Every 3rd cut and every 13th dropped character keep the test quick (each parse also
    // parses the built-in layouts).
    for (n, (i, _)) in text.char_indices().enumerate().filter(|(n, _)| n % 3 == 0) {
        let cut = &text[..i];
        let r = parse(cut, Path::new("mix/song.ron"), &mut read);
        if i <= last {
            let e = r.expect_err("a truncated session is an error");
            assert_eq!(e.file(), Path::new("mix/song.ron"));
        }
        if n % 13 != 0 {
            continue;
        }
        // Drop one character instead: may or may not be valid, must not panic.
        let mut dropped = text.clone();
        dropped.remove(i);
        let _ = parse(&dropped, Path::new("mix/song.ron"), &mut read);
    }
}
