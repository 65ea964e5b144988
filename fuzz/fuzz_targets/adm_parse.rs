//! Fuzzes the ADM parsers (ITU-R BS.2076 axml, BS.2088 chna) and the conversion to a halo
//! scene: no input may panic. The first byte chooses how the rest is split between the
//! axml and the chna; the chna is also converted alone (a chna-only file of BS.2094 common
//! definitions), and the sample rate varies so the timing fixes (snapping, overlaps, gaps
//! under a sample) meet rates the times do not divide. The conversion covers the BS.2127
//! timing (silence outside blocks and objects, zero-duration blocks), HOA channels
//! (order/degree/normalization, common `AC_0004ggcc` IDs), Matrix output channels and the
//! DirectSpeakers pack rules.
#![no_main]

use halo::formats::adm::{AdmAudio, AdmDocument, parse_axml, parse_chna, to_scene};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chna_len = (usize::from(split) * 4).min(rest.len());
    let (chna_bytes, xml) = rest.split_at(chna_len);
    let doc = parse_axml(xml);
    let chna = parse_chna(chna_bytes);
    let audio = AdmAudio {
        path: "fuzz.wav".into(),
        channels: 16,
        sample_rate: [48000, 44100, 96000, 7][usize::from(split) % 4],
        frames: 480_000,
    };
    if let Ok(chna) = &chna {
        let _ = to_scene(&AdmDocument::default(), chna, &audio);
    }
    if let (Ok(doc), Ok(chna)) = (doc, chna) {
        let _ = to_scene(&doc, &chna, &audio);
    }
});
