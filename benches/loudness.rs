//! Metering speed: 7.1.4 (12 channels) at 48 kHz with every mode (M, S, I, LRA, sample and
//! true peak), reported as throughput in frames; × real time = frames/s ÷ 48 000.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use halo::measure::loudness::Meter;
use halo::scene::layout::Layout;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let layout = Layout::builtin("7.1.4").unwrap();
    let fs = 48_000u32;
    let frames = fs as usize; // one second per iteration
    let channels: Vec<Vec<f32>> = (0..12)
        .map(|ch| {
            (0..frames)
                .map(|n| 0.3 * ((n * (ch + 3)) as f32 * 0.013).sin())
                .collect()
        })
        .collect();
    let planar: Vec<&[f32]> = channels.iter().map(|v| &v[..]).collect();
    let interleaved: Vec<f32> = (0..frames)
        .flat_map(|n| channels.iter().map(move |c| c[n]))
        .collect();
    let mut g = c.benchmark_group("loudness 7.1.4 48 kHz all modes (1 s of audio)");
    g.throughput(Throughput::Elements(frames as u64));
    let mut meter = Meter::new(&layout, fs).unwrap();
    g.bench_function("planar, 480-frame blocks", |b| {
        b.iter(|| {
            for start in (0..frames).step_by(480) {
                let mut block: [&[f32]; 12] = [&[]; 12];
                for (b, c) in block.iter_mut().zip(&planar) {
                    *b = &c[start..start + 480];
                }
                meter.process_planar(black_box(&block)).unwrap();
            }
            black_box(meter.short_term_lufs())
        })
    });
    let mut meter = Meter::new(&layout, fs).unwrap();
    g.bench_function("interleaved, one call", |b| {
        b.iter(|| {
            meter.process_interleaved(black_box(&interleaved)).unwrap();
            black_box(meter.momentary_lufs())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
