//! DirectSpeakers position bounds (ITU-R BS.2127 §8): a channel of an own pack whose label
//! the output layout lacks goes to the speaker inside its azimuth/elevation/distance
//! bounds nearest its position when exactly one is nearest, and is panned at its position
//! otherwise (no speaker inside, or a tie). Checked against EAR 2.1.0's DirectSpeakers
//! panner (`tests/data/adm/ear_direct_speakers_bounds.json`, made by
//! `tools/reference/direct_speakers_bounds.py`): wrapped azimuth ranges, ranges behind the
//! listener, a speaker at the pole, distance bounds, ties; and bounds read from an ADM
//! document through the importer.

mod common;
use common::{bed_gains, builtin_of};

use halo::scene::layout::{Channel, Layout};
use halo::spatial::direct_speakers::SpeakerBounds;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/adm/ear_direct_speakers_bounds.json"
);

/// (value, min, max) of a coordinate from the data file; a missing bound is the value.
fn range(v: &serde_json::Value) -> (f64, (f64, f64)) {
    let value = v[0].as_f64().unwrap();
    let lo = v[1].as_f64().unwrap_or(value);
    let hi = v[2].as_f64().unwrap_or(value);
    (value, (lo, hi))
}

#[test]
fn bounded_channels_go_where_ear_sends_them() {
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DATA).unwrap()).unwrap();
    let mut channels = Vec::new();
    let mut bounds = Vec::new();
    for c in data["channels"].as_array().unwrap() {
        let label = c["label"].as_str().unwrap().to_string();
        let (az, az_r) = range(&c["azimuth"]);
        let (el, el_r) = range(&c["elevation"]);
        let (dist, dist_r) = range(&c["distance"]);
        channels.push(Channel {
            label: label.clone(),
            name: label,
            azimuth_deg: az,
            elevation_deg: el,
            lfe: false,
            distance_m: None,
            wav_bit: None,
        });
        bounds.push(Some(SpeakerBounds {
            azimuth_deg: az,
            elevation_deg: el,
            distance: dist,
            azimuth_range_deg: az_r,
            elevation_range_deg: el_r,
            distance_range: dist_r,
        }));
    }
    let input = Layout {
        name: "ADM AP_00011001".into(),
        aliases: vec![],
        channels,
    };
    let mut checked = 0;
    for case in data["cases"].as_array().unwrap() {
        let out = case["output"].as_str().unwrap();
        let output = builtin_of(out);
        let measured = bed_gains(&input, &bounds, &output);
        for (c, ch) in input.channels.iter().enumerate() {
            let want = &case["gains"][&ch.name];
            for (o, och) in output.channels.iter().enumerate() {
                let e = want[&och.name].as_f64().unwrap_or(0.0);
                let h = measured[c][o];
                assert!(
                    (e - h).abs() < 1e-4,
                    "→ {out}: {} on {}: halo {h:.4}, EAR {e:.4}",
                    ch.name,
                    och.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 400, "{checked}");
}

/// A two-channel own DirectSpeakers pack: `X1` at 100° with azimuth bounds 80…120° and
/// elevation bounds −10…10°, `M+030` at 30° without bounds.
fn bounded_doc() -> halo::scene::mix::Scene {
    use halo::formats::adm::*;
    let xml = r#"<audioFormatExtended>
<audioObject audioObjectID="AO_1001" audioObjectName="bed"><audioPackFormatIDRef>AP_00011001</audioPackFormatIDRef><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef><audioTrackUIDRef>ATU_00000002</audioTrackUIDRef></audioObject>
<audioPackFormat audioPackFormatID="AP_00011001" audioPackFormatName="bed" typeDefinition="DirectSpeakers"><audioChannelFormatIDRef>AC_00011001</audioChannelFormatIDRef><audioChannelFormatIDRef>AC_00011002</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_00011001" audioChannelFormatName="a" typeDefinition="DirectSpeakers"><audioBlockFormat audioBlockFormatID="AB_00011001_00000001"><speakerLabel>X1</speakerLabel><position coordinate="azimuth">100</position><position coordinate="azimuth" bound="min">80</position><position coordinate="azimuth" bound="max">120</position><position coordinate="elevation">0</position><position coordinate="elevation" bound="min">-10</position><position coordinate="elevation" bound="max">10</position></audioBlockFormat></audioChannelFormat>
<audioChannelFormat audioChannelFormatID="AC_00011002" audioChannelFormatName="b" typeDefinition="DirectSpeakers"><audioBlockFormat audioBlockFormatID="AB_00011002_00000001"><speakerLabel>M+030</speakerLabel><position coordinate="azimuth">30</position><position coordinate="elevation">0</position></audioBlockFormat></audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00011001</audioChannelFormatIDRef><audioPackFormatIDRef>AP_00011001</audioPackFormatIDRef></audioTrackUID>
<audioTrackUID UID="ATU_00000002"><audioChannelFormatIDRef>AC_00011002</audioChannelFormatIDRef><audioPackFormatIDRef>AP_00011001</audioPackFormatIDRef></audioTrackUID>
</audioFormatExtended>"#;
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let entry = |i: u16| ChnaEntry {
        track_index: i,
        uid: format!("ATU_{i:08}"),
        track_ref: format!("AC_0001100{i}_00"),
        pack_ref: "AP_00011001".into(),
    };
    let chna = Chna {
        entries: vec![entry(1), entry(2)],
    };
    let audio = AdmAudio {
        path: "master.wav".into(),
        channels: 2,
        sample_rate: 48000,
        frames: 48000,
    };
    to_scene(&doc, &chna, &audio)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

#[test]
fn bounds_are_read_from_the_document_and_route_the_bed() {
    let scene = bounded_doc();
    assert_eq!(scene.beds.len(), 1);
    let bed = &scene.beds[0];
    let x1 = bed
        .layout
        .channels
        .iter()
        .position(|c| c.name == "X1")
        .unwrap();
    let m030 = bed
        .layout
        .channels
        .iter()
        .position(|c| c.name == "M+030")
        .unwrap();
    assert_eq!(
        bed.speaker_bounds[x1],
        Some(SpeakerBounds {
            azimuth_deg: 100.0,
            elevation_deg: 0.0,
            distance: 1.0,
            azimuth_range_deg: (80.0, 120.0),
            elevation_range_deg: (-10.0, 10.0),
            distance_range: (1.0, 1.0),
        })
    );
    assert_eq!(bed.speaker_bounds[m030], None);
    // Through the engine: X1 wholly on 5.1's M+110 (inside 80…120°), on 7.1.4's M+090.
    let gain_on = |out: &str, speaker: &str| {
        let output = builtin_of(out);
        let g = bed_gains(&bed.layout, &bed.speaker_bounds, &output);
        let o = output
            .channels
            .iter()
            .position(|c| c.name == speaker)
            .unwrap();
        let energy: f64 = g[x1].iter().map(|x| x * x).sum();
        (g[x1][o], energy)
    };
    let (g, energy) = gain_on("0+5+0", "M+110");
    assert!(
        (g - 1.0).abs() < 1e-6 && (energy - 1.0).abs() < 1e-6,
        "{g} {energy}"
    );
    let (g, energy) = gain_on("4+7+0", "M+090");
    assert!(
        (g - 1.0).abs() < 1e-6 && (energy - 1.0).abs() < 1e-6,
        "{g} {energy}"
    );
}

#[test]
fn an_unknown_bound_is_refused_with_its_place() {
    let xml = r#"<audioFormatExtended><audioChannelFormat audioChannelFormatID="AC_00011001" audioChannelFormatName="a" typeDefinition="DirectSpeakers"><audioBlockFormat audioBlockFormatID="AB_00011001_00000001"><speakerLabel>X1</speakerLabel><position coordinate="azimuth">100</position><position coordinate="azimuth" bound="middle">80</position></audioBlockFormat></audioChannelFormat></audioFormatExtended>"#;
    let e = halo::formats::adm::parse_axml(xml.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("AB_00011001_00000001") && e.contains("middle"),
        "{e}"
    );
}
