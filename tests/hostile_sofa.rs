//! Crafted SOFA (HRTF) sets through the binary (issue 15): a rate of 1 Hz or 1e12 Hz made
//! halo allocate without bound and abort, IRs that are all NaN gave a resampler panic, a
//! NaN position read as "at the listener". Each file is the embedded KEMAR set with one
//! thing broken, edited in place (tests/data/sofa/, made by tools/reference/crafted_sofa.py);
//! the set itself renders, so each refusal is the edit's doing. Every refusal: exit 2, one
//! line naming the file and what is wrong, no panic, nothing written.

mod common;
use common::scratch;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mono float WAV of a 0.2 s, 1 kHz sine at −20 dBFS, 48 kHz.
fn tone(path: &Path) {
    let frames = 9600u32;
    let mut data = Vec::with_capacity(frames as usize * 4);
    for i in 0..frames {
        let x = 0.1 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin();
        data.extend_from_slice(&x.to_le_bytes());
    }
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&48_000u32.to_le_bytes());
    b.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).unwrap();
}

fn render_with(sofa: &str) -> (i32, String, PathBuf) {
    let dir = scratch(sofa);
    tone(&dir.join("tone.wav"));
    let from = if sofa == "kemar.sofa" {
        "hrtf/MIT_KEMAR_normal_pinna.sofa".to_string()
    } else {
        format!("tests/data/sofa/{sofa}")
    };
    std::fs::copy(
        format!("{}/{from}", env!("CARGO_MANIFEST_DIR")),
        dir.join(sofa),
    )
    .unwrap();
    let session = format!(
        "Session(objects: [(name: \"a\", source: \"tone.wav\", position: Polar(az: 30, el: 0))], \
         outputs: [Binaural(hrtf: \"{sofa}\")])"
    );
    std::fs::write(dir.join("s.ron"), session).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(["render", "s.ron", "--out", "out"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr, dir)
}

#[test]
fn the_crafted_structure_loads_when_nothing_is_broken() {
    let (code, stderr, dir) = render_with("kemar.sofa");
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.join("out/binaural.wav").exists());
}

#[test]
fn broken_sets_are_refused_with_what_is_wrong() {
    let cases = [
        ("rate_1hz.sofa", "Data.SamplingRate is 1 Hz"),
        ("rate_1e12hz.sofa", "8000 to 768000 Hz"),
        ("ir_all_nan.sofa", "Data.IR holds NaN"),
        ("position_nan.sofa", "NaN"),
    ];
    for (sofa, expect) in cases {
        let (code, stderr, dir) = render_with(sofa);
        assert_eq!(code, 2, "{sofa}: {stderr}");
        assert!(stderr.contains(sofa), "{sofa}: names the file: {stderr}");
        assert!(stderr.contains(expect), "{sofa}: says {expect:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{sofa}: one line: {stderr}"
        );
        assert!(!stderr.contains("panick"), "{sofa}: {stderr}");
        assert!(!dir.join("out").exists(), "{sofa}: nothing written");
    }
}
