//! WAV I/O throughput: 12-channel 24-bit writing and reading (frames/s; divide by 48 000
//! for × real time), plus the 44.1 → 48 kHz resampling stream.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use halo::formats::io::{SourceStream, WavReader, WavSpec, WavWriter, WriteFormat};
use std::hint::black_box;
use std::path::PathBuf;

const CHANNELS: usize = 12;
const BLOCK_FRAMES: usize = 1024;
/// Ten seconds at 48 kHz.
const FRAMES: usize = 480_000;

fn bench_dir() -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("io-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

fn block() -> Vec<f32> {
    (0..BLOCK_FRAMES * CHANNELS)
        .map(|i| ((i as f32) * 0.013).sin() * 0.8)
        .collect()
}

fn write_file(path: &std::path::Path, format: WriteFormat, rate: u32, channels: usize) {
    let spec = WavSpec {
        channels,
        sample_rate: rate,
        format,
        channel_mask: None,
    };
    let mut w = WavWriter::create(path, spec).expect("create");
    let b = block();
    let per = BLOCK_FRAMES * channels;
    for _ in 0..FRAMES / BLOCK_FRAMES {
        w.write(&b[..per]).expect("write");
    }
    w.finish().expect("finish").commit().expect("commit");
}

fn benches(c: &mut Criterion) {
    let dir = bench_dir();
    let path = dir.join("bench.wav");
    let frames = (FRAMES / BLOCK_FRAMES * BLOCK_FRAMES) as u64;

    let mut g = c.benchmark_group("io");
    g.throughput(Throughput::Elements(frames));
    g.sample_size(10);
    for (name, format) in [
        ("write_12ch_pcm24", WriteFormat::Pcm24),
        ("write_12ch_f32", WriteFormat::F32),
    ] {
        g.bench_function(name, |bch| {
            bch.iter(|| write_file(&path, format, 48_000, CHANNELS))
        });
    }

    write_file(&path, WriteFormat::Pcm24, 48_000, CHANNELS);
    g.bench_function("read_12ch_pcm24", |bch| {
        let mut buf = vec![0f32; BLOCK_FRAMES * CHANNELS];
        bch.iter(|| {
            let mut r = WavReader::open(&path).expect("open");
            while r.read(&mut buf).expect("read") > 0 {}
            black_box(&buf);
        })
    });

    let src = dir.join("src441.wav");
    write_file(&src, WriteFormat::F32, 44_100, 2);
    g.throughput(Throughput::Elements(frames * 48_000 / 44_100));
    g.bench_function("resample_stereo_44k1_to_48k", |bch| {
        let mut buf = vec![0f32; BLOCK_FRAMES * 2];
        bch.iter(|| {
            let mut s = SourceStream::open(&src, 48_000).expect("open");
            while s.read(&mut buf).expect("read") > 0 {}
            black_box(&buf);
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(io, benches);
criterion_main!(io);
