//! The whole-render bench scene (128 moving objects → 7.1.4 + binaural + stereo, chains,
//! every output metered) for `SECONDS` seconds of audio, on one `Engine` (`1`) or on
//! `ParallelEngine` with two threads (`2`), as `benches/engine.rs` runs it. Prints an FNV-1a
//! hash of every output sample (the same hash means the same output bits) and the time per
//! second of audio. `tools/bench/whole_render_instructions.sh` counts its instructions.
//!
//! `cargo run --release --example whole_render -- THREADS SECONDS`

#[path = "../benches/common/scenes.rs"]
mod scenes;

use halo::drivers::parallel::ParallelEngine;
use halo::engine::Engine;
use halo::measure::loudness::Meter;
use halo::scene::layout::Layout;
use scenes::{BLOCK, RATE, signal, whole_render_config};

/// FNV-1a over the bits of samples.
fn hash(h: &mut u64, samples: &[f32]) {
    for v in samples {
        *h = (*h ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3);
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: whole_render THREADS(1|2) SECONDS"))
        .collect();
    let (threads, seconds) = match args[..] {
        [t @ (1 | 2), s] => (t, s),
        _ => panic!("usage: whole_render THREADS(1|2) SECONDS"),
    };
    let n = 128;
    let layout = Layout::builtin("7.1.4").expect("built-in");
    let stereo = Layout::builtin("2.0").expect("built-in");
    let mut meters = [
        Meter::new(&layout, RATE).expect("meter"),
        Meter::new(&stereo, RATE).expect("meter"),
        Meter::new(&stereo, RATE).expect("meter"),
    ];
    let blocks = (RATE as usize).div_ceil(BLOCK);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let start = std::time::Instant::now();
    if threads == 1 {
        let mut engine = Engine::new(whole_render_config(n)).expect("engine");
        for i in 0..n {
            for (k, x) in engine.object_input(i).iter_mut().enumerate() {
                *x = signal(i, k);
            }
        }
        for _ in 0..seconds {
            engine.seek(0);
            for _ in 0..blocks {
                engine.process(BLOCK);
                for (o, meter) in meters.iter_mut().enumerate() {
                    let chans: Vec<&[f32]> = engine.output(o).iter().map(|c| &c[..BLOCK]).collect();
                    meter.process_planar(&chans).expect("metering");
                    chans.iter().for_each(|c| hash(&mut h, c));
                }
            }
        }
    } else {
        let mut engine = ParallelEngine::new(whole_render_config(n), 2).expect("engine");
        let block: Vec<Vec<f32>> = (0..n)
            .map(|i| (0..BLOCK).map(|k| signal(i, k)).collect())
            .collect();
        for _ in 0..seconds {
            scenes::render_second_parallel(&mut engine, &mut meters, &block);
        }
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / seconds as f64;
    if threads == 1 {
        println!("output hash {h:016x}, {ms:.1} ms per second of audio");
    } else {
        println!("{ms:.1} ms per second of audio");
    }
}
