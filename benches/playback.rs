//! Cost of one audio callback of `halo play`: 256 frames, 128 moving objects, binaural
//! monitor (the engine with only its binaural output enabled, the transport's input
//! copy, the unscaled copy to a 2-channel device buffer). Goal: under 25 % of the
//! buffer's duration (256 / 48000 s = 5.33 ms) on one core; the share is printed.

use criterion::{Criterion, criterion_group, criterion_main};
use halo::drivers::playback::{Monitor, Player, PlayerConfig};
use halo::engine::{EngineConfig, OutputConfig};
use halo::scene::layout::Layout;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "common/scenes.rs"]
mod scenes;
use scenes::{RATE, moving_objects};
const FRAMES: usize = 256;
const OBJECTS: usize = 128;

fn bench_callback(c: &mut Criterion) {
    let hrtf = halo::drivers::plan::load_hrtf(None, RATE).expect("built-in HRTF set");
    let layout = Layout::builtin("7.1.4").expect("built-in");
    let seconds = 600.0;
    let (mut player, mut channels) = Player::new(PlayerConfig {
        engine: EngineConfig {
            sample_rate: RATE,
            max_block_frames: FRAMES,
            objects: moving_objects(OBJECTS, seconds),
            beds: vec![],
            outputs: vec![
                OutputConfig::speakers(layout.clone()),
                OutputConfig::Binaural {
                    hrtf,
                    lfe_db: None,
                    chain: vec![],
                },
                OutputConfig::Stereo {
                    from: layout,
                    fold: Default::default(),
                    chain: vec![],
                },
            ],
        },
        outputs: [1, 2, 0],
        monitor: Monitor::Binaural,
        device_channels: 2,
        total_frames: (seconds * RATE as f64) as u64,
        start_frame: 0,
        ring_frames: 4 * FRAMES,
        crossfade_frames: 960,
        start_playing: true,
    })
    .expect("player");
    let input: Vec<f32> = (0..FRAMES * OBJECTS)
        .map(|k| ((k * 31 + (k / FRAMES) * 7) % 200) as f32 / 200.0 - 0.5)
        .collect();
    let mut out = vec![0.0f32; FRAMES * 2];
    // Pre-roll the engine latency so every timed callback renders 256 audible frames.
    let feed = |channels: &mut halo::drivers::playback::PlayerChannels| {
        while channels.input.has_room() {
            channels.input.push(0, &input, FRAMES);
        }
    };
    feed(&mut channels);
    player.process(&mut out);
    let mut timed = |iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            feed(&mut channels);
            let t = Instant::now();
            player.process(black_box(&mut out));
            total += t.elapsed();
        }
        total
    };
    // The share of the buffer's duration, measured once outside criterion for the log.
    let n = 2000;
    let per = timed(n).as_secs_f64() / n as f64;
    let budget = FRAMES as f64 / RATE as f64;
    eprintln!(
        "one {FRAMES}-frame callback, {OBJECTS} moving objects, binaural monitor: {:.3} ms = {:.1} % of the buffer's {:.2} ms (goal < 25 %)",
        per * 1e3,
        per / budget * 100.0,
        budget * 1e3
    );
    let mut group = c.benchmark_group("playback_callback");
    group.sample_size(20);
    group.bench_function("256_frames_128_moving_objects_binaural", |b| {
        b.iter_custom(&mut timed)
    });
    group.finish();
}

criterion_group!(benches, bench_callback);
criterion_main!(benches);
