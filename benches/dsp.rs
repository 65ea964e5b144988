//! Master-chain speed: a 12-channel (7.1.4) chain of 3-band EQ + compressor + true-peak
//! limiter at 48 kHz, and the limiter alone on stereo. Throughput is in frames/s:
//! divide by 48 000 for "× real time".

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use halo::dsp::{
    Chain, CompressorSettings, EqBand, EqKind, EqSettings, Limiter, LimiterSettings, Processor,
    ProcessorSettings,
};
use std::f32::consts::TAU;
use std::f64::consts::FRAC_1_SQRT_2;
use std::hint::black_box;

const FS: u32 = 48_000;
const BLOCK: usize = 512;
const SECONDS: usize = 1;

fn signal(channels: usize) -> Vec<Vec<f32>> {
    (0..channels)
        .map(|c| {
            (0..FS as usize * SECONDS)
                .map(|i| {
                    let t = i as f32 / FS as f32;
                    2.0 * (TAU * (220.0 + 37.0 * c as f32) * t).sin()
                        + 0.5 * (TAU * 7_000.0 * t).sin()
                })
                .collect()
        })
        .collect()
}

fn run(p: &mut dyn Processor, buf: &mut [Vec<f32>]) {
    let n = buf[0].len();
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let mut views: Vec<&mut [f32]> = buf.iter_mut().map(|c| &mut c[start..end]).collect();
        p.process(&mut views);
        start = end;
    }
}

fn bench(c: &mut Criterion) {
    let band = |kind, freq_hz, gain_db, q| EqBand {
        kind,
        freq_hz,
        gain_db,
        q,
    };
    let configs = vec![
        ProcessorSettings::Eq(EqSettings {
            bands: vec![
                band(EqKind::HighPass, 30.0, 0.0, FRAC_1_SQRT_2),
                band(EqKind::Peak, 2500.0, -2.0, 1.2),
                band(EqKind::HighShelf, 10_000.0, 1.5, FRAC_1_SQRT_2),
            ],
        }),
        ProcessorSettings::Compressor(CompressorSettings {
            threshold_db: -18.0,
            ratio: 3.0,
            knee_db: 6.0,
            attack_ms: 5.0,
            release_ms: 100.0,
            makeup_db: 2.0,
        }),
        ProcessorSettings::Limiter(LimiterSettings {
            ceiling_dbtp: -1.0,
            lookahead_ms: 1.5,
            release_ms: 50.0,
        }),
    ];
    let frames = (FS as usize * SECONDS) as u64;
    let mut group = c.benchmark_group("dsp");
    group.throughput(Throughput::Elements(frames));

    let src12 = signal(12);
    let mut chain = Chain::new(&configs, FS, 12, BLOCK).expect("chain");
    let mut buf12 = src12.clone();
    group.bench_function("chain_12ch_eq3_comp_limiter_1s", |b| {
        b.iter(|| {
            buf12.clone_from(&src12);
            run(&mut chain, &mut buf12);
            black_box(&buf12);
        })
    });

    let src2 = signal(2);
    let params = LimiterSettings {
        ceiling_dbtp: -1.0,
        lookahead_ms: 1.5,
        release_ms: 50.0,
    };
    let mut lim = Limiter::new(&params, FS, 2).expect("limiter");
    let mut buf2 = src2.clone();
    group.bench_function("limiter_stereo_1s", |b| {
        b.iter(|| {
            buf2.clone_from(&src2);
            run(&mut lim, &mut buf2);
            black_box(&buf2);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
