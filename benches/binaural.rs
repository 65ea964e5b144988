//! Moving-source binaural rendering speed: halo's renderer against one `sofar` renderer per
//! source (with its crossfades), 48 kHz, directions updated every 64 frames. `halo` is the
//! live configuration (`BinauralConfig::live`: 324-frame partitions for this set, as
//! `halo play` and `halo render` use), `halo offline` the one of `halo render
//! --fast-binaural` (`BinauralConfig::offline`: one 1024-frame partition for this set).
//! The sources turn at 0.5 … 4 turns per second (up to 1440° a second, so that every
//! filter update moves); the group "at mixing speeds" turns them 20 times slower.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use halo::scene::geometry::Direction;
use halo::spatial::binaural::{
    BinauralConfig, BinauralRenderer, Distance, HrtfSet, live_partition_frames,
};
use sofar::reader::{Filter, OpenOptions};
use sofar::render::{FilterTransition, Renderer, RendererPlan};

const SR: u32 = 48_000;
const FRAMES: usize = 12_032; // 0.25 s per iteration (188 updates)
const UPDATE: usize = 64;
const KEMAR: &[u8] = include_bytes!("../hrtf/MIT_KEMAR_normal_pinna.sofa");

/// Source `i` circles at its own speed: 0.5 … 4 turns per second, `slower` times slower.
fn direction(i: usize, frame: usize, slower: f64) -> Direction {
    let turns_per_s = (0.5 + 3.5 * (i as f64 * 0.618).fract()) / slower;
    let az = 360.0 * turns_per_s * frame as f64 / SR as f64 + i as f64 * 17.0;
    Direction::new(az, -20.0 + (i % 7) as f64 * 10.0)
}

fn inputs(n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| {
            (0..FRAMES)
                .map(|t| ((t * (i + 3)) as f32 * 0.013).sin() * 0.1)
                .collect()
        })
        .collect()
}

struct Halo {
    r: BinauralRenderer,
    clock: usize,
    /// [`direction`]'s slow-down (1: the bench's speeds).
    slower: f64,
}

impl Halo {
    /// A renderer of `cfg` whose sources turn `slower` times slower than the bench's.
    fn new(set: &Arc<HrtfSet>, cfg: BinauralConfig, slower: f64) -> Halo {
        Halo {
            r: BinauralRenderer::new(set.clone(), cfg).unwrap(),
            clock: 0,
            slower,
        }
    }

    /// `n` sources in the live or the offline configuration.
    fn with(set: &Arc<HrtfSet>, n: usize, offline: bool, slower: f64) -> Halo {
        let cfg = BinauralConfig::new(SR, n);
        let cfg = if offline {
            cfg.offline(set)
        } else {
            cfg.live(set)
        };
        Halo::new(set, cfg, slower)
    }

    fn run(&mut self, ins: &[Vec<f32>], l: &mut [f32], r: &mut [f32]) {
        let mut refs: Vec<&[f32]> = Vec::with_capacity(ins.len());
        for pos in (0..FRAMES).step_by(UPDATE) {
            for i in 0..ins.len() {
                self.r
                    .set_direction(i, direction(i, self.clock + pos, self.slower));
            }
            refs.clear();
            refs.extend(ins.iter().map(|x| &x[pos..pos + UPDATE]));
            self.r
                .process(&refs, &mut l[pos..pos + UPDATE], &mut r[pos..pos + UPDATE]);
        }
        self.clock += FRAMES;
    }
}

struct Sofar {
    sofa: sofar::reader::Sofar,
    renderers: Vec<Renderer>,
    filter: Filter,
    radius_m: f32,
    clock: usize,
}

impl Sofar {
    fn new(n: usize) -> Self {
        let sofa = OpenOptions::new()
            .sample_rate(SR as f32)
            .open_data(KEMAR)
            .unwrap();
        let plan = RendererPlan::builder(sofa.filter_len())
            .with_sample_rate(SR as f32)
            .with_partition_len(UPDATE)
            .build()
            .unwrap();
        let renderers = (0..n)
            .map(|_| {
                Renderer::builder(&plan)
                    .with_filter_transition(FilterTransition::crossfade(UPDATE))
                    .build()
                    .unwrap()
            })
            .collect();
        let p = &sofa.hrtf().source_position.values;
        let radius_m = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        Sofar {
            filter: Filter::new(sofa.filter_len()),
            sofa,
            renderers,
            radius_m,
            clock: 0,
        }
    }

    fn run(&mut self, ins: &[Vec<f32>], l: &mut [f32], r: &mut [f32]) {
        l.fill(0.0);
        r.fill(0.0);
        for pos in (0..FRAMES).step_by(UPDATE) {
            for (i, rend) in self.renderers.iter_mut().enumerate() {
                let [x, y, z] = direction(i, self.clock + pos, 1.0).to_unit();
                // SOFA axes: x front, y left, z up; at the measurement radius.
                let s = self.radius_m;
                self.sofa
                    .filter(y as f32 * s, -x as f32 * s, z as f32 * s, &mut self.filter);
                rend.set_filter(&self.filter).unwrap();
                rend.process_block_add(
                    &ins[i][pos..pos + UPDATE],
                    &mut l[pos..pos + UPDATE],
                    &mut r[pos..pos + UPDATE],
                )
                .unwrap();
            }
        }
        self.clock += FRAMES;
    }
}

fn times_real_time(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    (reps * FRAMES) as f64 / SR as f64 / t.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let set = Arc::new(HrtfSet::default_set(SR).unwrap());
    let mut group = c.benchmark_group("binaural moving sources");
    group.throughput(Throughput::Elements(FRAMES as u64));
    let mut l = vec![0.0f32; FRAMES];
    let mut r = vec![0.0f32; FRAMES];
    for n in [16usize, 64, 128] {
        let ins = inputs(n);
        let mut halo = Halo::with(&set, n, false, 1.0);
        let mut offline = Halo::with(&set, n, true, 1.0);
        let mut sofar = Sofar::new(n);
        group.bench_with_input(BenchmarkId::new("halo", n), &n, |b, _| {
            b.iter(|| halo.run(black_box(&ins), &mut l, &mut r))
        });
        group.bench_with_input(BenchmarkId::new("halo offline", n), &n, |b, _| {
            b.iter(|| offline.run(black_box(&ins), &mut l, &mut r))
        });
        group.bench_with_input(BenchmarkId::new("sofar per source", n), &n, |b, _| {
            b.iter(|| sofar.run(black_box(&ins), &mut l, &mut r))
        });
        let x_halo = times_real_time(|| halo.run(&ins, &mut l, &mut r), 8);
        // The live-playback budget: one live partition's cost against its duration.
        let live = live_partition_frames(&set);
        let part_us = live as f64 / SR as f64 / x_halo * 1e6;
        println!(
            "{n:4} moving sources, {live}-frame partitions: {part_us:6.0} us per partition ({:.1}% of {:.2} ms)",
            100.0 / x_halo,
            live as f64 / SR as f64 * 1e3
        );
        for b in [128usize, 256, 512, 1024] {
            let mut cfg = BinauralConfig::new(SR, n);
            cfg.partition_frames = b;
            let mut other = Halo::new(&set, cfg, 1.0);
            let x = times_real_time(|| other.run(&ins, &mut l, &mut r), 8);
            println!("{n:4} moving sources, {b}-frame partitions: halo {x:8.1}x real time");
        }
        let x_offline = times_real_time(|| offline.run(&ins, &mut l, &mut r), 8);
        println!("{n:4} moving sources, offline config: halo {x_offline:8.1}x real time");
        let x_sofar = times_real_time(|| sofar.run(&ins, &mut l, &mut r), 2);
        println!(
            "{n:4} moving sources: halo {x_halo:8.1}x real time, sofar {x_sofar:7.1}x, ratio {:.1}",
            x_halo / x_sofar
        );
    }
    group.finish();
}

/// 128 moving sources in each distance mode: the room (Near, Mid, Far) is one shared bus,
/// so it should cost little more than the anechoic render (the figure before the modes);
/// then the offline configuration, anechoic and `Mid`.
fn bench_modes(c: &mut Criterion) {
    let set = Arc::new(HrtfSet::default_set(SR).unwrap());
    let mut group = c.benchmark_group("binaural 128 moving sources by mode");
    group.throughput(Throughput::Elements(FRAMES as u64));
    let mut l = vec![0.0f32; FRAMES];
    let mut r = vec![0.0f32; FRAMES];
    let n = 128;
    let ins = inputs(n);
    let mut figures = Vec::new();
    for (name, distance, offline) in [
        ("anechoic", Distance::Anechoic, false),
        ("near", Distance::Near, false),
        ("mid", Distance::Mid, false),
        ("far", Distance::Far, false),
        ("anechoic offline", Distance::Anechoic, true),
        ("mid offline", Distance::Mid, true),
    ] {
        let mut halo = Halo::with(&set, n, offline, 1.0);
        for i in 0..n {
            halo.r.set_distance(i, distance);
        }
        group.bench_function(name, |b| {
            b.iter(|| halo.run(black_box(&ins), &mut l, &mut r))
        });
        figures.push((name, times_real_time(|| halo.run(&ins, &mut l, &mut r), 8)));
    }
    let base = figures[0].1;
    for (name, x) in &figures {
        println!(
            "128 moving sources, {name:16}: {x:6.1}x real time, {:+5.1}% time against anechoic",
            (base / x - 1.0) * 100.0
        );
    }
    group.finish();
}

/// 128 sources at a mix's speeds: 20 times slower than [`bench`]'s (9 … 72 degrees a
/// second), so that most filter changes stay within one triangle of the HRTF mesh, live
/// and offline.
fn bench_mixing_speeds(c: &mut Criterion) {
    let set = Arc::new(HrtfSet::default_set(SR).unwrap());
    let mut group = c.benchmark_group("binaural 128 sources at mixing speeds");
    group.throughput(Throughput::Elements(FRAMES as u64));
    let mut l = vec![0.0f32; FRAMES];
    let mut r = vec![0.0f32; FRAMES];
    let n = 128;
    let ins = inputs(n);
    for (name, offline) in [("live", false), ("offline", true)] {
        let mut halo = Halo::with(&set, n, offline, 20.0);
        group.bench_function(name, |b| {
            b.iter(|| halo.run(black_box(&ins), &mut l, &mut r))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(300));
    targets = bench, bench_modes, bench_mixing_speeds
}
criterion_main!(benches);
