//! Helpers shared by halo's integration tests: scratch directories, running the `halo`
//! binary, built-in layouts by ITU name, bed gains measured through the engine, test
//! signals and the click measure. Each test crate includes this with `mod common;` and
//! uses what it needs.
#![allow(dead_code)]

use std::f64::consts::TAU;

/// `frames` samples of a sine at `freq_hz` and peak amplitude `amp`, at `rate` Hz.
pub fn sine(freq_hz: f64, amp: f64, frames: usize, rate: u32) -> Vec<f32> {
    (0..frames)
        .map(|i| (amp * (TAU * freq_hz * i as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}

/// Energy above 4 kHz relative to the total, in dB, summed over channels: an 8th-order
/// Butterworth high-pass (four RBJ biquads) run over the signal, the first 50 ms skipped so
/// the filters' start-up transient does not count. A click (a step or a kink in a gain)
/// spreads energy over every frequency and shows here; a smooth ramp on a low sine does not.
pub fn high_band_ratio_db(channels: &[Vec<f32>], rate: u32) -> f64 {
    let rate = f64::from(rate);
    let skip = (0.05 * rate) as usize;
    let mut hp = 0.0f64;
    let mut total = 0.0f64;
    for ch in channels {
        let mut sig: Vec<f64> = ch.iter().map(|&x| x as f64).collect();
        for k in 0..4 {
            // Butterworth Q values for 8th order.
            let q = 1.0 / (2.0 * ((2 * k + 1) as f64 * std::f64::consts::PI / 16.0).sin());
            let w = TAU * 4000.0 / rate;
            let alpha = w.sin() / (2.0 * q);
            let a0 = 1.0 + alpha;
            let b0 = (1.0 + w.cos()) / 2.0 / a0;
            let b1 = -(1.0 + w.cos()) / a0;
            let a1 = -2.0 * w.cos() / a0;
            let a2 = (1.0 - alpha) / a0;
            let (mut z1, mut z2) = (0.0, 0.0);
            for x in sig.iter_mut() {
                let y = b0 * *x + z1;
                z1 = b1 * *x - a1 * y + z2;
                z2 = b0 * *x - a2 * y;
                *x = y;
            }
        }
        hp += sig[skip..].iter().map(|x| x * x).sum::<f64>();
        total += ch[skip..]
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>();
    }
    10.0 * (hp.max(1e-300) / total).log10()
}

/// A fresh, empty directory for one test: `<target tmp>/<test crate>/<name>`.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(env!("CARGO_CRATE_NAME"))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `halo` binary: (exit code, or −1 if killed by a signal; stdout; stderr).
pub fn halo(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The built-in layout of an ITU-R BS.2051 system name (`4+7+0`) or of a halo name.
pub fn builtin_of(itu: &str) -> halo::scene::layout::Layout {
    use halo::scene::layout::{ITU_SYSTEMS, Layout};
    let name = ITU_SYSTEMS.iter().find(|s| s.0 == itu).map_or(itu, |s| s.1);
    Layout::builtin(name).unwrap()
}

/// The gain from each channel of a bed (with optional DirectSpeakers bounds per channel)
/// to each output channel, `[bed channel][output channel]`, measured through the engine
/// with a unit signal on one channel at a time.
pub fn bed_gains(
    input: &halo::scene::layout::Layout,
    bounds: &[Option<halo::spatial::direct_speakers::SpeakerBounds>],
    output: &halo::scene::layout::Layout,
) -> Vec<Vec<f64>> {
    use halo::engine::{BedConfig, Engine, EngineConfig, OutputConfig};
    let n_in = input.num_channels();
    let mut engine = Engine::new(EngineConfig {
        sample_rate: 48000,
        max_block_frames: 64,
        objects: vec![],
        beds: vec![BedConfig {
            name: "bed".into(),
            layout: input.clone(),
            gain_db: 0.0,
            mute: false,
            binaural_distances: vec![],
            hoa: None,
            active_frames: None,
            speaker_bounds: bounds.to_vec(),
            channel_gains: vec![],
        }],
        outputs: vec![OutputConfig::speakers(output.clone())],
    })
    .unwrap();
    let mut gains = Vec::new();
    for c in 0..n_in {
        for ch in 0..n_in {
            let v = if ch == c { 1.0 } else { 0.0 };
            engine.bed_input(0, ch)[..64].fill(v);
        }
        engine.process(64);
        gains.push(engine.output(0).iter().map(|o| f64::from(o[63])).collect());
    }
    gains
}

/// Every sample of a WAV file, interleaved.
pub fn wav_samples(path: &std::path::Path) -> Vec<f32> {
    let mut r = halo::formats::io::WavReader::open(path).unwrap();
    let n = r.info().channels;
    let mut all = Vec::new();
    let mut buf = vec![0.0f32; n * 4096];
    loop {
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        all.extend_from_slice(&buf[..got * n]);
    }
    all
}

/// A one-track 32-bit float BW64 master at `path`: `samples` on track 1, an Objects
/// track (`AT_00031001_01` of `AP_00031001` in its `chna`) described by the `axml` `xml`.
pub fn one_object_master(path: &std::path::Path, xml: &str, samples: &[f32], rate: u32) {
    use halo::formats::adm::{Chna, ChnaEntry, write_chna};
    use halo::formats::io::{Chunk, WavSpec, WavWriter, WriteFormat};
    let chna = Chna {
        entries: vec![ChnaEntry {
            track_index: 1,
            uid: "ATU_00000001".into(),
            track_ref: "AT_00031001_01".into(),
            pack_ref: "AP_00031001".into(),
        }],
    };
    let spec = WavSpec {
        channels: 1,
        sample_rate: rate,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create_with_chunks(
        path,
        spec,
        vec![
            Chunk {
                id: *b"chna",
                data: write_chna(&chna),
            },
            Chunk {
                id: *b"axml",
                data: xml.as_bytes().to_vec(),
            },
        ],
    )
    .unwrap();
    w.write(samples).unwrap();
    w.finish().unwrap().commit().unwrap();
}

/// `halo render INPUT --layout LAYOUT --format f32 --out OUT` plus `extra`: the exit
/// code and standard error.
pub fn render_f32(
    input: &std::path::Path,
    layout: &str,
    out: &std::path::Path,
    extra: &[&str],
) -> (i32, String) {
    let mut args = vec![
        "render",
        input.to_str().unwrap(),
        "--layout",
        layout,
        "--format",
        "f32",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = halo(&args);
    (code, err)
}
