//! Writes a synthetic benchmark session: N objects, each circling the listener at its own
//! speed and height (a keyframe every second), all reading one shared mono source, rendered
//! to 7.1.4. Used for the README's end-to-end speed and memory figures:
//!
//! ```text
//! cargo run --release --example bench_session -- --objects 128 --seconds 60 --out /tmp/halo-bench
//! cargo run --release -- render /tmp/halo-bench/session.ron --out /tmp/halo-bench/out
//! ```
//!
//! `--keyframe-every S` spaces the keyframes (default 1 s), so that sessions of different
//! lengths can carry the same amount of automation data (the memory check); `--keyframe-ms M`
//! spaces them in milliseconds instead (100: the 0.1 s blocks of the ADM speed check,
//! `tools/bench/adm_vs_ear.sh`). `--all-outputs`
//! renders to 7.1.4, binaural and a stereo fold-down with master chains instead (the whole
//! render of the speed table).

use halo::formats::io::{WavSpec, WavWriter, WriteFormat};
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut objects = 128usize;
    let mut seconds = 60u64;
    let mut out = PathBuf::from("halo-bench");
    let mut every = 1u64;
    let mut every_ms: Option<u64> = None;
    let mut all_outputs = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--objects" => objects = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--out" => out = PathBuf::from(value()?),
            "--keyframe-every" => every = value()?.parse::<u64>()?.max(1),
            "--keyframe-ms" => every_ms = Some(value()?.parse::<u64>()?.max(1)),
            "--all-outputs" => all_outputs = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; use --objects N --seconds S --out DIR [--keyframe-every S | --keyframe-ms M] [--all-outputs]"
                )
                .into());
            }
        }
    }
    std::fs::create_dir_all(&out)?;
    let rate = 48000u32;

    // One shared source: decorrelated noise with a slow level wobble, streamed out in
    // chunks so that even an hour-long source needs no memory.
    let mut writer = WavWriter::create(
        &out.join("source.wav"),
        WavSpec {
            channels: 1,
            sample_rate: rate,
            format: WriteFormat::Pcm24,
            channel_mask: None,
        },
    )?;
    let mut state = 0x1234_5678_9ABC_DEF1u64;
    let mut chunk = vec![0.0f32; rate as usize];
    for s in 0..seconds {
        for (i, x) in chunk.iter_mut().enumerate() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            let t = s as f32 + i as f32 / rate as f32;
            *x = noise * 0.25 * (0.6 + 0.4 * (t * 0.7).sin());
        }
        writer.write(&chunk)?;
    }
    writer.finish()?.commit()?;

    let mut text = String::new();
    writeln!(
        text,
        "// {objects} moving objects sharing one source, {seconds} s, rendered to 7.1.4."
    )?;
    writeln!(
        text,
        "Session(\n    sample_rate: {rate},\n    duration: {seconds}.0,\n    objects: ["
    )?;
    for i in 0..objects {
        let period = 4.0 + (i % 7) as f64; // seconds per revolution
        let el = -10.0 + (i % 5) as f64 * 12.0;
        writeln!(
            text,
            "        (name: \"obj{i}\", source: \"source.wav\", gain: -18.0, position: ["
        )?;
        let step_ms = every_ms.unwrap_or(every * 1000);
        for t_ms in (0..=seconds * 1000).step_by(step_ms as usize) {
            // Keyframes farther apart than half a revolution would turn the short way
            // round; the object then moves more slowly but still all the time.
            let turns = if step_ms as f64 / 1000.0 >= period / 2.0 {
                0.37
            } else {
                1.0
            };
            let t = t_ms as f64 / 1000.0;
            let az = (i as f64 * 17.0 + turns * t / period * 360.0) % 360.0;
            let az = if az > 180.0 { az - 360.0 } else { az };
            writeln!(
                text,
                "            (time: {t:.3}, value: Polar(az: {az:.3}, el: {el:.1})),"
            )?;
        }
        writeln!(text, "        ]),")?;
    }
    let outputs = if all_outputs {
        "Speakers(layout: \"7.1.4\", chain: [Limiter()]), Binaural(chain: [Limiter()]), \
         Stereo(chain: [Eq(bands: [(kind: HighPass, freq_hz: 30)]), \
         Compressor(threshold_db: -20, ratio: 2), Limiter()])"
    } else {
        "Speakers(layout: \"7.1.4\")"
    };
    writeln!(text, "    ],\n    outputs: [{outputs}],\n)")?;
    std::fs::write(out.join("session.ron"), text)?;
    println!("wrote {}", out.join("session.ron").display());
    Ok(())
}
