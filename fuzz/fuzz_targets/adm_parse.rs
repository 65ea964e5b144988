//! Fuzzes the ADM parsers (ITU-R BS.2076 axml, BS.2088 chna) and the conversion to a halo
//! scene: no input may panic. The first byte chooses how the rest is split between the
//! axml and the chna.
#![no_main]

use halo::formats::adm::{AdmAudio, parse_axml, parse_chna, to_scene};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chna_len = (usize::from(split) * 4).min(rest.len());
    let (chna_bytes, xml) = rest.split_at(chna_len);
    let doc = parse_axml(xml);
    let chna = parse_chna(chna_bytes);
    if let (Ok(doc), Ok(chna)) = (doc, chna) {
        let audio = AdmAudio {
            path: "fuzz.wav".into(),
            channels: 16,
            sample_rate: 48000,
            frames: 480_000,
        };
        let _ = to_scene(&doc, &chna, &audio);
    }
});
