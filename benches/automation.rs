//! Speed of automation lookup (called per block or per sample by the engine) and of
//! parsing a session file.

use criterion::{Criterion, criterion_group, criterion_main};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use std::hint::black_box;
use std::path::Path;

fn lookup(c: &mut Criterion) {
    let keys: Vec<Keyframe<f64>> = (0..1024u64)
        .map(|i| Keyframe {
            frame: i * 480,
            value: (i % 7) as f64,
            interpolation: [
                Interpolation::Linear,
                Interpolation::Smooth,
                Interpolation::Step,
            ][i as usize % 3],
        })
        .collect();
    let a = Automation::new(keys).expect("ordered keys");
    c.bench_function("automation value_at, 48000 frames over 1024 keys", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for f in 0..48000u32 {
                sum += a.value_at(black_box(f as f64 * 10.0));
            }
            sum
        })
    });
}

fn parse_showcase(c: &mut Criterion) {
    let text = include_str!("../examples/showcase.ron");
    let studio = "(name: \"studio\", channels: [(label: \"L\", azimuth: 30, elevation: 0), (label: \"R\", azimuth: -30, elevation: 0)])";
    c.bench_function("session parse showcase.ron", |b| {
        b.iter(|| {
            halo::formats::session::parse(black_box(text), Path::new("showcase.ron"), &mut |_| {
                Ok(studio.to_string())
            })
            .expect("showcase parses")
        })
    });
}

criterion_group!(benches, lookup, parse_showcase);
criterion_main!(benches);
