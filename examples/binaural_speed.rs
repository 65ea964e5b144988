//! The binaural bench's 128 moving sources (`benches/binaural.rs`) in the live (`live`) or
//! offline (`offline`) configuration, for `SECONDS` seconds of audio, the sources turning
//! `SLOWER` times slower than the bench's 0.5 … 4 turns per second (1 if not given). Prints
//! an FNV-1a hash of the output bits (the same hash means the same output) and the time per
//! 0.25 s of audio (the criterion bench's unit), min and median over the 0.25 s runs.
//!
//! With `-ab` after the mode (`live-ab`, `offline-ab`), two renderers take turns, 0.25 s
//! each: the CPU's fastest kernels (A) and, where that is AVX-512, the AVX + FMA build (B).
//! Taking turns within one process cancels most of a shared host's drift; the median of
//! the A / B time ratios is printed.
//!
//! `cargo run --release --example binaural_speed -- live|offline[-ab] SECONDS [SLOWER]`

use std::sync::Arc;
use std::time::Instant;

use halo::scene::geometry::Direction;
use halo::spatial::binaural::{BinauralConfig, BinauralRenderer, HrtfSet};

const SR: u32 = 48_000;
const FRAMES: usize = 12_032;
const UPDATE: usize = 64;
const N: usize = 128;

fn direction(i: usize, frame: usize, slower: f64) -> Direction {
    let turns_per_s = (0.5 + 3.5 * (i as f64 * 0.618).fract()) / slower;
    let az = 360.0 * turns_per_s * frame as f64 / SR as f64 + i as f64 * 17.0;
    Direction::new(az, -20.0 + (i % 7) as f64 * 10.0)
}

/// One renderer and its place on the timeline.
struct Run {
    r: BinauralRenderer,
    clock: usize,
    hash: u64,
    ms: Vec<f64>,
}

impl Run {
    /// Renders the next 0.25 s, timed.
    fn step(&mut self, ins: &[Vec<f32>], slower: f64, l: &mut [f32], r: &mut [f32]) {
        let t = Instant::now();
        let mut refs: [&[f32]; N] = [&[]; N];
        for pos in (0..FRAMES).step_by(UPDATE) {
            for i in 0..N {
                self.r
                    .set_direction(i, direction(i, self.clock + pos, slower));
                refs[i] = &ins[i][pos..pos + UPDATE];
            }
            self.r
                .process(&refs, &mut l[pos..pos + UPDATE], &mut r[pos..pos + UPDATE]);
        }
        self.ms.push(t.elapsed().as_secs_f64() * 1e3);
        self.clock += FRAMES;
        for v in l.iter().chain(r.iter()) {
            self.hash = (self.hash ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    x[x.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: binaural_speed live|offline[-ab] SECONDS [SLOWER]";
    let (mode, seconds, slower) = match &args[..] {
        [m, s] => (m.as_str(), s.parse::<usize>().expect(usage), 1.0),
        [m, s, f] => (
            m.as_str(),
            s.parse::<usize>().expect(usage),
            f.parse::<f64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let (config, ab) = match mode.strip_suffix("-ab") {
        Some(c) => (c, true),
        None => (mode, false),
    };
    let set = Arc::new(HrtfSet::default_set(SR).expect("the built-in set"));
    let cfg = BinauralConfig::new(SR, N);
    let cfg = match config {
        "live" => cfg.live(&set),
        "offline" => cfg.offline(&set),
        _ => panic!("{usage}"),
    };
    let new_run = || Run {
        r: BinauralRenderer::new(set.clone(), cfg.clone()).expect("renderer"),
        clock: 0,
        hash: 0xcbf2_9ce4_8422_2325,
        ms: Vec::new(),
    };
    let mut runs = vec![new_run()];
    if ab {
        let mut b = new_run();
        b.r.without_avx512();
        runs.push(b);
    }
    let ins: Vec<Vec<f32>> = (0..N)
        .map(|i| {
            (0..FRAMES)
                .map(|t| ((t * (i + 3)) as f32 * 0.013).sin() * 0.1)
                .collect()
        })
        .collect();
    let (mut l, mut r) = (vec![0.0f32; FRAMES], vec![0.0f32; FRAMES]);
    for _ in 0..seconds * 4 {
        for run in &mut runs {
            run.step(&ins, slower, &mut l, &mut r);
        }
    }
    for (run, name) in runs.iter().zip(["A", "B"]) {
        let min = run.ms.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{config} {name}: hash {:016x}, ms per 0.25 s: min {min:.2} median {:.2}",
            run.hash,
            median(run.ms.clone())
        );
    }
    if ab {
        let ratios = runs[0].ms.iter().zip(&runs[1].ms).map(|(a, b)| a / b);
        println!(
            "A / B, median of the 0.25 s ratios: {:.3}",
            median(ratios.collect())
        );
    }
}
