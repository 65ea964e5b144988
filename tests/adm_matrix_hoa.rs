//! ADM Matrix and HOA content read as ITU-R BS.2127 reads it: a track carrying a decode
//! matrix channel renders as the DirectSpeakers channel the matrix names (EAR's
//! "pre-applied" use; `ear_matrix.xml` in `adm_corpus.rs` compares the render with EAR),
//! and HOA channels — the file's own (order, degree, normalization) or the BS.2094 common
//! definitions `AC_0004ggcc` — become one HOA bed in ACN order with their normalisation.

use halo::formats::adm::*;
use halo::spatial::hoa::HoaNormalization;
use std::path::PathBuf;

fn audio(channels: usize) -> AdmAudio {
    AdmAudio {
        path: PathBuf::from("master.wav"),
        channels,
        sample_rate: 48000,
        frames: 48000,
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

#[test]
fn a_decode_matrix_track_renders_as_its_output_speaker() {
    let xml = r#"<audioFormatExtended>
<audioObject audioObjectID="AO_1001" audioObjectName="LoRo"><audioPackFormatIDRef>AP_00021102</audioPackFormatIDRef><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef><audioTrackUIDRef>ATU_00000002</audioTrackUIDRef></audioObject>
<audioPackFormat audioPackFormatID="AP_00021102" audioPackFormatName="dec" typeDefinition="Matrix"><outputPackFormatIDRef>AP_00010002</outputPackFormatIDRef><audioChannelFormatIDRef>AC_00021103</audioChannelFormatIDRef><audioChannelFormatIDRef>AC_00021104</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_00021103" audioChannelFormatName="dL" typeDefinition="Matrix"><audioBlockFormat audioBlockFormatID="AB_00021103_00000001"><outputChannelFormatIDRef>AC_00010001</outputChannelFormatIDRef><matrix><coefficient gain="1.0">AC_00021003</coefficient></matrix></audioBlockFormat></audioChannelFormat>
<audioChannelFormat audioChannelFormatID="AC_00021104" audioChannelFormatName="dR" typeDefinition="Matrix"><audioBlockFormat audioBlockFormatID="AB_00021104_00000001"><outputChannelFormatIDRef>AC_00010002</outputChannelFormatIDRef><matrix><coefficient gain="1.0">AC_00021004</coefficient></matrix></audioBlockFormat></audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00021103</audioChannelFormatIDRef></audioTrackUID>
<audioTrackUID UID="ATU_00000002"><audioChannelFormatIDRef>AC_00021104</audioChannelFormatIDRef></audioTrackUID>
</audioFormatExtended>"#;
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let chna = Chna {
        entries: vec![
            entry(1, "ATU_00000001", "AC_00021103_00", "AP_00021102"),
            entry(2, "ATU_00000002", "AC_00021104_00", "AP_00021102"),
        ],
    };
    let (scene, _) = to_scene(&doc, &chna, &audio(2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scene.beds.len(), 1);
    let bed = &scene.beds[0];
    let names: Vec<&str> = bed
        .layout
        .channels
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["M+030", "M-030"]);
    assert_eq!(bed.channels, Some(vec![0, 1]));
}

#[test]
fn common_definition_hoa_tracks_make_an_acn_hoa_bed() {
    // chna only: first-order SN3D (AC_000400cc) and N3D (AC_000401cc) common channels.
    for (group, norm) in [
        ("00", HoaNormalization::SN3D),
        ("01", HoaNormalization::N3D),
    ] {
        let pack = if group == "00" {
            "AP_00040001"
        } else {
            "AP_00040011"
        };
        let chna = Chna {
            entries: (1..=4u16)
                .map(|i| {
                    entry(
                        i,
                        &format!("ATU_0000000{i}"),
                        &format!("AT_0004{group}{i:02x}_01"),
                        pack,
                    )
                })
                .collect(),
        };
        let (scene, _) =
            to_scene(&AdmDocument::default(), &chna, &audio(4)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scene.beds.len(), 1);
        let hoa = scene.beds[0].hoa.as_ref().expect("an HOA bed");
        assert_eq!(hoa.normalization, norm);
        assert_eq!(hoa.channels, [(0, 0), (1, -1), (1, 0), (1, 1)]);
        assert_eq!(scene.beds[0].channels, Some(vec![0, 1, 2, 3]));
    }
}

#[test]
fn own_hoa_channels_keep_their_order_degree_and_normalisation() {
    let block = |n: u32, o: u32, d: i32| {
        format!(
            r#"<audioChannelFormat audioChannelFormatID="AC_0004100{n}" audioChannelFormatName="c{n}" typeDefinition="HOA"><audioBlockFormat audioBlockFormatID="AB_0004100{n}_00000001"><order>{o}</order><degree>{d}</degree><normalization>FuMa</normalization></audioBlockFormat></audioChannelFormat>"#
        )
    };
    let xml = format!(
        r#"<audioFormatExtended>
<audioObject audioObjectID="AO_1001" audioObjectName="amb"><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef><audioTrackUIDRef>ATU_00000002</audioTrackUIDRef></audioObject>
{}{}
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00041001</audioChannelFormatIDRef></audioTrackUID>
<audioTrackUID UID="ATU_00000002"><audioChannelFormatIDRef>AC_00041002</audioChannelFormatIDRef></audioTrackUID>
</audioFormatExtended>"#,
        block(1, 0, 0),
        block(2, 1, 1)
    );
    let doc = parse_axml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let chna = Chna {
        entries: vec![
            entry(1, "ATU_00000001", "AC_00041001_00", ""),
            entry(2, "ATU_00000002", "AC_00041002_00", ""),
        ],
    };
    let (scene, _) = to_scene(&doc, &chna, &audio(2)).unwrap_or_else(|e| panic!("{e}"));
    let hoa = scene.beds[0].hoa.as_ref().expect("an HOA bed");
    assert_eq!(hoa.normalization, HoaNormalization::FuMa);
    assert_eq!(hoa.channels, [(0, 0), (1, 1)]);
}

#[test]
fn an_hoa_order_past_the_decoder_is_refused_clearly() {
    let xml = r#"<audioFormatExtended>
<audioObject audioObjectID="AO_1001" audioObjectName="amb"><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
<audioChannelFormat audioChannelFormatID="AC_00041001" audioChannelFormatName="c" typeDefinition="HOA"><audioBlockFormat audioBlockFormatID="AB_00041001_00000001"><order>4</order><degree>0</degree><normalization>FuMa</normalization></audioBlockFormat></audioChannelFormat>
<audioTrackUID UID="ATU_00000001"><audioChannelFormatIDRef>AC_00041001</audioChannelFormatIDRef></audioTrackUID>
</audioFormatExtended>"#;
    let doc = parse_axml(xml.as_bytes()).unwrap();
    let chna = Chna {
        entries: vec![entry(1, "ATU_00000001", "AC_00041001_00", "")],
    };
    let e = to_scene(&doc, &chna, &audio(1)).unwrap_err().to_string();
    assert!(e.contains("AO_1001") && e.contains("FuMa"), "{e}");
}
