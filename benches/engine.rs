//! Engine throughput: N moving polar point objects, and 128 moving Cartesian ones,
//! rendered to 7.1.4, one second of audio per iteration (48 kHz, 1024-frame blocks).
//! Real-time factor = 1 s / time per iteration.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use halo::engine::{Engine, EngineConfig, ObjectConfig, OutputConfig};
use halo::scene::automation::Automation;
use halo::scene::layout::Layout;
use std::hint::black_box;

#[path = "common/scenes.rs"]
mod scenes;
use scenes::{
    BLOCK, RATE, moving_cartesian_objects, moving_objects, render_second_parallel, signal,
    whole_render_config,
};

fn bench_engine_cartesian(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_moving_cartesian_objects_to_7.1.4");
    group.sample_size(10);
    let n = 128;
    let mut engine = Engine::new(EngineConfig {
        sample_rate: RATE,
        max_block_frames: BLOCK,
        objects: moving_cartesian_objects(n, 60.0),
        beds: vec![],
        outputs: vec![OutputConfig::speakers(
            Layout::builtin("7.1.4").expect("built-in"),
        )],
    })
    .expect("engine");
    for i in 0..n {
        for (k, x) in engine.object_input(i).iter_mut().enumerate() {
            *x = signal(i, k);
        }
    }
    group.throughput(Throughput::Elements(RATE as u64));
    group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
        b.iter(|| {
            engine.seek(0);
            for _ in 0..(RATE as usize).div_ceil(BLOCK) {
                engine.process(BLOCK);
            }
            black_box(engine.output(0)[0][0])
        })
    });
    group.finish();
}

fn bench_engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_moving_objects_to_7.1.4");
    group.sample_size(10);
    for n in [16usize, 64, 128] {
        let mut engine = Engine::new(EngineConfig {
            sample_rate: RATE,
            max_block_frames: BLOCK,
            objects: moving_objects(n, 60.0),
            beds: vec![],
            outputs: vec![OutputConfig::speakers(
                Layout::builtin("7.1.4").expect("built-in"),
            )],
        })
        .expect("engine");
        for i in 0..n {
            for (k, x) in engine.object_input(i).iter_mut().enumerate() {
                *x = signal(i, k);
            }
        }
        group.throughput(Throughput::Elements(RATE as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                engine.seek(0);
                for _ in 0..(RATE as usize).div_ceil(BLOCK) {
                    engine.process(BLOCK);
                }
                black_box(engine.output(0)[0][0])
            })
        });
    }
    group.finish();
}

/// [`whole_render_config`] on one engine, every output metered (BS.1770-4, all modes) on the
/// same thread. One second of audio per iteration.
fn bench_whole_render(c: &mut Criterion) {
    use halo::measure::loudness::Meter;
    let layout = Layout::builtin("7.1.4").expect("built-in");
    let stereo = Layout::builtin("2.0").expect("built-in");
    let mut group = c.benchmark_group("whole_render_7.1.4+binaural+stereo");
    group.sample_size(10);
    let n = 128;
    let mut engine = Engine::new(whole_render_config(n)).expect("engine");
    for i in 0..n {
        for (k, x) in engine.object_input(i).iter_mut().enumerate() {
            *x = signal(i, k);
        }
    }
    let mut meters = [
        Meter::new(&layout, RATE).expect("meter"),
        Meter::new(&stereo, RATE).expect("meter"),
        Meter::new(&stereo, RATE).expect("meter"),
    ];
    group.throughput(Throughput::Elements(RATE as u64));
    group.bench_function(BenchmarkId::new("one thread", n), |b| {
        b.iter(|| {
            engine.seek(0);
            for _ in 0..(RATE as usize).div_ceil(BLOCK) {
                engine.process(BLOCK);
                for (o, meter) in meters.iter_mut().enumerate() {
                    let chans: Vec<&[f32]> = engine.output(o).iter().map(|c| &c[..BLOCK]).collect();
                    meter.process_planar(&chans).expect("metering");
                }
            }
            black_box(engine.output(0)[0][0])
        })
    });
    group.finish();
}

/// The same render as `halo render` runs it: [`ParallelEngine`] on every core (the binaural
/// path on one thread, the 7.1.4 bus and its fold-down on another), each output metered on
/// the thread that rendered it, the caller's thread filling the inputs. One second of audio
/// per iteration.
fn bench_whole_render_parallel(c: &mut Criterion) {
    use halo::drivers::parallel::ParallelEngine;
    use halo::measure::loudness::Meter;
    let layout = Layout::builtin("7.1.4").expect("built-in");
    let stereo = Layout::builtin("2.0").expect("built-in");
    let mut group = c.benchmark_group("whole_render_7.1.4+binaural+stereo");
    group.sample_size(10);
    let n = 128;
    let mut engine = ParallelEngine::new(whole_render_config(n), 0).expect("engine");
    let block: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..BLOCK).map(|k| signal(i, k)).collect())
        .collect();
    let mut meters = [
        Meter::new(&layout, RATE).expect("meter"),
        Meter::new(&stereo, RATE).expect("meter"),
        Meter::new(&stereo, RATE).expect("meter"),
    ];
    group.throughput(Throughput::Elements(RATE as u64));
    group.bench_function(BenchmarkId::new("all cores", n), |b| {
        b.iter(|| render_second_parallel(&mut engine, &mut meters, &block))
    });
    group.finish();
}

/// 128 moving objects with BS.2127 controls → 7.1.4: Cartesian ones with an extent and
/// ADM-style gain interpolation (gains at the keyframes, blended in between), and polar
/// ones with divergence, an extent and a diffuse part (the decorrelation filters run).
fn bench_engine_controls(c: &mut Criterion) {
    use halo::scene::mix::{Extent, ObjectControls};
    let mut group = c.benchmark_group("engine_bs2127_controls_to_7.1.4");
    group.sample_size(10);
    let n = 128;
    let cartesian: Vec<ObjectConfig> = moving_cartesian_objects(n, 60.0)
        .into_iter()
        .map(|mut o| {
            o.controls = ObjectControls {
                extent: Some(Automation::constant(Extent {
                    width: 0.3,
                    height: 0.2,
                    depth: 0.3,
                })),
                interpolate_gains: true,
                ..ObjectControls::default()
            };
            o
        })
        .collect();
    let polar: Vec<ObjectConfig> = moving_objects(n, 60.0)
        .into_iter()
        .map(|mut o| {
            o.controls = ObjectControls {
                extent: Some(Automation::constant(Extent {
                    width: 30.0,
                    height: 10.0,
                    depth: 0.0,
                })),
                divergence: Automation::constant(0.4),
                diffuse: Automation::constant(0.3),
                ..ObjectControls::default()
            };
            o
        })
        .collect();
    for (name, objects) in [
        ("cartesian extent, gain interpolation", cartesian),
        ("polar extent, divergence, diffuse", polar),
    ] {
        let mut engine = Engine::new(EngineConfig {
            sample_rate: RATE,
            max_block_frames: BLOCK,
            objects,
            beds: vec![],
            outputs: vec![OutputConfig::speakers(
                Layout::builtin("7.1.4").expect("built-in"),
            )],
        })
        .expect("engine");
        for i in 0..n {
            for (k, x) in engine.object_input(i).iter_mut().enumerate() {
                *x = signal(i, k);
            }
        }
        group.throughput(Throughput::Elements(RATE as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                engine.seek(0);
                for _ in 0..(RATE as usize).div_ceil(BLOCK) {
                    engine.process(BLOCK);
                }
                black_box(engine.output(0)[0][0])
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_engine,
    bench_engine_cartesian,
    bench_engine_controls,
    bench_whole_render,
    bench_whole_render_parallel
);
criterion_main!(benches);
