//! Shared by the playback tests: a small generated session with moving objects and a 5.1
//! bed (WAV stems in a temp dir), its offline float render, and a driver that runs a
//! `Player` to the end.
#![allow(dead_code)]

use halo::drivers::playback::{Monitor, PlayOptions, Player};
use halo::drivers::render::{self, RenderOptions};
use halo::formats::io::{WavReader, WavSpec, WavWriter, WriteFormat};
use halo::formats::session;
use halo::scene::layout::Layout;
use halo::scene::mix::Scene;
use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

pub const RATE: u32 = 48000;

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}-{name}", env!("CARGO_CRATE_NAME")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_wav(path: &Path, channels: usize, samples: &[f32]) {
    let spec = WavSpec {
        channels,
        sample_rate: RATE,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create(path, spec).unwrap();
    w.write(samples).unwrap();
    w.finish().unwrap().commit().unwrap();
}

/// Deterministic noise in −1 … 1.
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

pub fn sine(freq: f64, frames: usize, amp: f64) -> Vec<f32> {
    (0..frames)
        .map(|i| (amp * (TAU * freq * i as f64 / RATE as f64).sin()) as f32)
        .collect()
}

/// A `seconds`-long session: `n_objects` objects circling (sine + noise), a 5.1 bed, and
/// the three outputs (7.1.4 with a limiter, binaural with LFE and a limiter, a Lo/Ro
/// fold-down with EQ, compressor and limiter).
pub fn moving_session(dir: &Path, seconds: f64, n_objects: usize) -> Scene {
    let frames = (seconds * RATE as f64) as usize;
    let mut objects = String::new();
    for i in 0..n_objects {
        let tone = sine(220.0 * (i + 1) as f64, frames, 0.3);
        let hiss = noise(i as u64 + 1, frames);
        let sig: Vec<f32> = tone.iter().zip(&hiss).map(|(a, b)| a + 0.05 * b).collect();
        write_wav(&dir.join(format!("obj{i}.wav")), 1, &sig);
        let mut keys = String::new();
        for k in 0..=8 {
            let az = (k as f64 * 45.0 + i as f64 * 37.0) % 360.0 - 180.0;
            let el = (i % 3) as f64 * 20.0;
            keys.push_str(&format!(
                "(time: {:.4}, value: Polar(az: {az}, el: {el})),",
                seconds * k as f64 / 8.0
            ));
        }
        objects.push_str(&format!(
            "(name: \"o{i}\", source: \"obj{i}.wav\", gain: -6.0, position: [{keys}]),\n"
        ));
    }
    let bed: Vec<f32> = {
        let n = noise(99, frames * 6);
        n.iter().map(|x| x * 0.05).collect()
    };
    write_wav(&dir.join("bed.wav"), 6, &bed);
    let text = format!(
        r#"Session(
    sample_rate: {RATE},
    duration: {seconds},
    beds: [(name: "bed", source: "bed.wav", layout: "5.1", gain: -3.0)],
    objects: [{objects}],
    outputs: [
        Speakers(layout: "7.1.4", chain: [Limiter(ceiling_dbtp: -1)]),
        Binaural(lfe_db: -6, chain: [Limiter(ceiling_dbtp: -1)]),
        Stereo(from: "7.1.4", fold: (matrix: LoRo), chain: [
            Eq(bands: [(kind: HighPass, freq_hz: 30)]),
            Compressor(threshold_db: -20, ratio: 2, attack_ms: 20, release_ms: 200),
            Limiter(ceiling_dbtp: -1),
        ]),
    ],
)"#
    );
    let path = dir.join("session.ron");
    std::fs::write(&path, &text).unwrap();
    let mut read_layout = |p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
    session::parse(&text, &path, &mut read_layout).unwrap()
}

/// The offline float render of the session into `dir/render`, read back per output in
/// layout channel order: [7.1.4, binaural, stereo].
pub fn offline(scene: &Scene, dir: &Path) -> Vec<Vec<Vec<f32>>> {
    let out = dir.join("render");
    std::fs::create_dir_all(&out).unwrap();
    let mut options = RenderOptions::new(&out);
    options.format = WriteFormat::F32;
    render::render(scene, &mut options).unwrap();
    let mut result = Vec::new();
    for (file, layout) in [
        ("7.1.4.wav", "7.1.4"),
        ("binaural.wav", "2.0"),
        ("stereo.wav", "2.0"),
    ] {
        let layout = Layout::builtin(layout).unwrap();
        let mut r = WavReader::open(&out.join(file)).unwrap();
        let n = r.info().channels;
        let frames = r.info().frames as usize;
        let mut buf = vec![0.0f32; frames * n];
        let mut got = 0;
        while got < frames {
            let k = r.read(&mut buf[got * n..]).unwrap();
            assert!(k > 0);
            got += k;
        }
        let order = layout.wav_order();
        let mut planar = vec![vec![0.0f32; frames]; n];
        for (k, &c) in order.iter().enumerate() {
            for f in 0..frames {
                planar[c][f] = buf[f * n + k];
            }
        }
        result.push(planar);
    }
    result
}

/// Which offline output a monitor plays.
pub fn offline_index(m: Monitor) -> usize {
    match m {
        Monitor::Speakers => 0,
        Monitor::Binaural => 1,
        Monitor::Stereo => 2,
    }
}

pub fn options(monitor: Monitor, seconds: f64, device_channels: usize) -> PlayOptions {
    PlayOptions {
        monitor,
        device_channels,
        read_ahead_s: seconds + 1.0,
        analyse_loudness: false,
        ..PlayOptions::default()
    }
}

/// Waits until the reader has read `frames` ahead (or 30 s passed).
pub fn wait_buffered(player: &Player, frames: usize) {
    let t = std::time::Instant::now();
    while player.buffered_frames() < frames && t.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Compares delivered interleaved frames with an offline output, bit for bit; returns
/// the number of frames compared.
pub fn assert_bit_exact(delivered: &[f32], dc: usize, expected: &[Vec<f32>], what: &str) -> usize {
    let frames = expected[0].len();
    assert!(
        delivered.len() >= frames * dc,
        "{what}: only {} frames delivered, {frames} expected",
        delivered.len() / dc
    );
    for f in 0..frames {
        for c in 0..dc {
            let want = expected.get(c).map_or(0.0, |ch| ch[f]);
            let got = delivered[f * dc + c];
            assert!(
                got.to_bits() == want.to_bits(),
                "{what}: frame {f} channel {c}: delivered {got:e}, offline {want:e}"
            );
        }
    }
    frames
}
