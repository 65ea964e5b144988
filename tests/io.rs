//! Integration tests of `halo::formats::io`: WAV round trips, hand-built files of every supported
//! encoding, RF64, malformed files, atomic writes and the streaming resampler.

use halo::formats::io::{
    Chunk, IoError, SampleFormat, SourceStream, WavReader, WavSpec, WavWriter, WriteFormat,
    header_bytes, read_text, remove_stale_temp, write_atomic,
};
use std::f64::consts::PI;
use std::fs;
use std::path::{Path, PathBuf};

/// A fresh empty directory for one test.
fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("io-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// Deterministic test signal in about [-1, 1].
fn signal(n: usize) -> Vec<f32> {
    let mut x = 0x1234_5678u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f64 / u32::MAX as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

// ---------------------------------------------------------------- byte builder

fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    if body.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// A plain 16-byte fmt body (PCM or IEEE float).
fn fmt_plain(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut v = Vec::new();
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * align as u32).to_le_bytes());
    v.extend_from_slice(&align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v
}

fn fmt_extensible(sub: u16, channels: u16, rate: u32, bits: u16, mask: u32) -> Vec<u8> {
    let mut v = fmt_plain(0xFFFE, channels, rate, bits);
    v.extend_from_slice(&22u16.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(&mask.to_le_bytes());
    v.extend_from_slice(&sub.to_le_bytes());
    v.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    v
}

fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(&body);
    v
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn read_all(path: &Path) -> (halo::formats::io::WavInfo, Vec<f32>) {
    let mut r = WavReader::open(path).unwrap();
    let info = r.info().clone();
    let mut out = vec![0f32; info.frames as usize * info.channels];
    let n = r.read(&mut out).unwrap();
    assert_eq!(n as u64, info.frames);
    let mut extra = [0f32; 16];
    assert_eq!(
        r.read(&mut extra).unwrap(),
        0,
        "read after the end returns 0"
    );
    (info, out)
}

// ---------------------------------------------------------------- round trips

fn round_trip(dir: &Path, format: WriteFormat, channels: usize, mask: Option<u32>) {
    let frames = 10_001; // odd: exercises the pad byte for 24-bit mono
    let mut x = signal(frames * channels);
    // Include full scale and beyond to check clamping.
    x[0] = 1.0;
    x[1] = -1.0;
    x[2] = 1.7;
    x[3] = -3.0;
    let path = dir.join(format!("rt-{format:?}-{channels}.wav"));
    let spec = WavSpec {
        channels,
        sample_rate: 48_000,
        format,
        channel_mask: mask,
    };
    let mut w = WavWriter::create(&path, spec).unwrap();
    // Several writes of different sizes.
    let mut at = 0;
    for (k, size) in [1usize, 7, 1000, 3, 50_000].iter().cycle().enumerate() {
        if at >= frames || k > 1000 {
            break;
        }
        let n = (*size).min(frames - at);
        w.write(&x[at * channels..(at + n) * channels]).unwrap();
        at += n;
    }
    assert_eq!(w.frames_written(), frames as u64);
    let final_path = w.finish().unwrap().commit().unwrap();
    assert_eq!(final_path, path);

    let (info, y) = read_all(&path);
    assert_eq!(info.channels, channels);
    assert_eq!(info.sample_rate, 48_000);
    assert_eq!(info.frames, frames as u64);
    assert_eq!(info.channel_mask, Some(mask.unwrap_or(0)));
    match format {
        WriteFormat::F32 => {
            assert_eq!(info.format, SampleFormat::F32);
            for (a, b) in x.iter().zip(&y) {
                assert_eq!(a.to_bits(), b.to_bits());
            }
        }
        WriteFormat::Pcm24 | WriteFormat::Pcm16 => {
            let (lsb, fmt) = if format == WriteFormat::Pcm24 {
                (1.0 / 8_388_608.0, SampleFormat::Pcm24)
            } else {
                (1.0 / 32_768.0, SampleFormat::Pcm16)
            };
            assert_eq!(info.format, fmt);
            for (i, (a, b)) in x.iter().zip(&y).enumerate() {
                let clamped = a.clamp(-1.0, 1.0 - lsb);
                assert!(
                    (clamped - b).abs() <= lsb * 0.5 + 1e-12,
                    "sample {i}: wrote {a}, read {b}"
                );
            }
        }
    }
    // File size: header (104) + data + pad.
    let data = frames * channels * format_bytes(format);
    assert_eq!(
        fs::metadata(&path).unwrap().len() as usize,
        104 + data + data % 2
    );
}

fn format_bytes(f: WriteFormat) -> usize {
    match f {
        WriteFormat::Pcm16 => 2,
        WriteFormat::Pcm24 => 3,
        WriteFormat::F32 => 4,
    }
}

#[test]
fn round_trip_pcm24_f32_pcm16_all_channel_counts() {
    let dir = test_dir("roundtrip");
    for format in [WriteFormat::Pcm24, WriteFormat::F32, WriteFormat::Pcm16] {
        round_trip(&dir, format, 1, Some(0x4));
        round_trip(&dir, format, 2, Some(0x3));
        round_trip(&dir, format, 6, Some(0x60F));
        round_trip(&dir, format, 12, Some(0x2D63F));
        round_trip(&dir, format, 12, None);
    }
    // Only committed files remain, no temp files.
    assert!(dir_entries(&dir).iter().all(|n| !n.starts_with('.')));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pcm_writer_clamps_rounds_and_writes_nan_as_zero() {
    let dir = test_dir("clamp");
    let path = dir.join("c.wav");
    let spec = WavSpec {
        channels: 1,
        sample_rate: 48_000,
        format: WriteFormat::Pcm24,
        channel_mask: None,
    };
    let mut w = WavWriter::create(&path, spec).unwrap();
    let lsb = 1.0 / 8_388_608.0;
    w.write(&[
        2.0,
        -2.0,
        f32::NAN,
        f32::INFINITY,
        0.6 * lsb,
        -0.6 * lsb,
        0.4 * lsb,
    ])
    .unwrap();
    w.finish().unwrap().commit().unwrap();
    let bytes = fs::read(&path).unwrap();
    let data = &bytes[104..104 + 21];
    let s = |k: usize| i32::from_le_bytes([0, data[3 * k], data[3 * k + 1], data[3 * k + 2]]) >> 8;
    assert_eq!(
        (0..7).map(s).collect::<Vec<_>>(),
        vec![8_388_607, -8_388_608, 0, 8_388_607, 1, -1, 0]
    );
    assert_eq!(bytes.len(), 104 + 22, "odd data length is padded");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn channel_masks_at_their_header_offsets() {
    let dir = test_dir("masks");
    for (channels, mask) in [(6usize, 0x60Fu32), (10, 0x2D60F), (12, 0x2D63F)] {
        let path = dir.join(format!("m{channels}.wav"));
        let spec = WavSpec {
            channels,
            sample_rate: 48_000,
            format: WriteFormat::Pcm24,
            channel_mask: Some(mask),
        };
        let mut w = WavWriter::create(&path, spec).unwrap();
        w.write(&vec![0.25; channels * 10]).unwrap();
        w.finish().unwrap().commit().unwrap();
        let b = fs::read(&path).unwrap();
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(&b[8..12], b"WAVE");
        assert_eq!(&b[12..16], b"JUNK");
        assert_eq!(&b[48..52], b"fmt ");
        assert_eq!(u32_at(&b, 52), 40);
        assert_eq!(u16::from_le_bytes([b[56], b[57]]), 0xFFFE);
        assert_eq!(u16::from_le_bytes([b[58], b[59]]) as usize, channels);
        assert_eq!(u32_at(&b, 60), 48_000);
        assert_eq!(u32_at(&b, 64), 48_000 * 3 * channels as u32);
        assert_eq!(u16::from_le_bytes([b[68], b[69]]) as usize, 3 * channels);
        assert_eq!(u16::from_le_bytes([b[70], b[71]]), 24);
        assert_eq!(u16::from_le_bytes([b[72], b[73]]), 22); // cbSize
        assert_eq!(u16::from_le_bytes([b[74], b[75]]), 24); // valid bits
        assert_eq!(u32_at(&b, 76), mask); // dwChannelMask
        assert_eq!(
            &b[80..96],
            &[
                0x01, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71
            ]
        );
        assert_eq!(&b[96..100], b"data");
        assert_eq!(u32_at(&b, 100) as usize, channels * 30);
        assert_eq!(
            WavReader::open(&path).unwrap().info().channel_mask,
            Some(mask)
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- reading every encoding

#[test]
fn reads_hand_built_files_of_every_encoding() {
    let dir = test_dir("encodings");
    // Expected values are chosen on each format's grid so the comparison is exact.
    let p16: Vec<i16> = vec![0, 1, -1, 32_767, -32_768, 12_345, -54, 7];
    let d16: Vec<u8> = p16.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f = write_file(
        &dir,
        "p16.wav",
        &riff(&[
            chunk(b"fmt ", &fmt_plain(1, 2, 44_100, 16)),
            chunk(b"data", &d16),
        ]),
    );
    let (info, y) = read_all(&f);
    assert_eq!(
        (
            info.channels,
            info.sample_rate,
            info.frames,
            info.format,
            info.channel_mask
        ),
        (2, 44_100, 4, SampleFormat::Pcm16, None)
    );
    let want: Vec<f32> = p16.iter().map(|&v| v as f32 / 32_768.0).collect();
    assert_eq!(y, want);

    let p32: Vec<i32> = vec![0, i32::MAX, i32::MIN, 1 << 20, -(1 << 30), 99 << 8];
    let d32: Vec<u8> = p32.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f = write_file(
        &dir,
        "p32.wav",
        &riff(&[
            chunk(b"fmt ", &fmt_extensible(1, 3, 96_000, 32, 0x7)),
            chunk(b"data", &d32),
        ]),
    );
    let (info, y) = read_all(&f);
    assert_eq!(
        (info.channels, info.frames, info.format, info.channel_mask),
        (3, 2, SampleFormat::Pcm32, Some(7))
    );
    for (v, r) in p32.iter().zip(&y) {
        assert!((f64::from(*v) / 2_147_483_648.0 - f64::from(*r)).abs() < 1e-7);
    }

    let d8: Vec<u8> = vec![128, 255, 0, 64, 192];
    let f = write_file(
        &dir,
        "p8.wav",
        &riff(&[
            chunk(b"fmt ", &fmt_plain(1, 1, 8_000, 8)),
            chunk(b"data", &d8),
        ]),
    );
    let (info, y) = read_all(&f);
    assert_eq!((info.frames, info.format), (5, SampleFormat::Pcm8));
    assert_eq!(y, vec![0.0, 127.0 / 128.0, -1.0, -0.5, 0.5]);

    let f64s: Vec<f64> = vec![0.5, -0.25, 1.0 / 3.0, -1.0];
    let d64: Vec<u8> = f64s.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f = write_file(
        &dir,
        "f64.wav",
        &riff(&[
            chunk(b"fmt ", &fmt_plain(3, 1, 48_000, 64)),
            chunk(b"data", &d64),
        ]),
    );
    let (info, y) = read_all(&f);
    assert_eq!((info.frames, info.format), (4, SampleFormat::F64));
    assert_eq!(y, f64s.iter().map(|&v| v as f32).collect::<Vec<_>>());

    let f32s: Vec<f32> = vec![0.5, -0.125, 1.5, -2.0];
    let df: Vec<u8> = f32s.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f = write_file(
        &dir,
        "f32.wav",
        &riff(&[
            chunk(b"fmt ", &fmt_plain(3, 2, 48_000, 32)),
            chunk(b"data", &df),
        ]),
    );
    let (info, y) = read_all(&f);
    assert_eq!((info.frames, info.format), (2, SampleFormat::F32));
    assert_eq!(y, f32s);

    // 24-bit plain PCM with odd-sized unknown chunks (padding), LIST before fmt and a
    // trailing chunk after data; the fmt chunk after data is found too.
    let p24: Vec<i32> = vec![0, 8_388_607, -8_388_608, 1, -1];
    let d24: Vec<u8> = p24
        .iter()
        .flat_map(|v| v.to_le_bytes()[..3].to_vec())
        .collect();
    let f = write_file(
        &dir,
        "p24.wav",
        &riff(&[
            chunk(b"LIST", b"abc"),
            chunk(b"bext", &[7u8; 5]),
            chunk(b"data", &d24),
            chunk(b"fmt ", &fmt_plain(1, 1, 48_000, 24)),
            chunk(b"cue ", &[1]),
        ]),
    );
    let (info, y) = read_all(&f);
    assert_eq!((info.frames, info.format), (5, SampleFormat::Pcm24));
    assert_eq!(
        y,
        p24.iter()
            .map(|&v| v as f32 / 8_388_608.0)
            .collect::<Vec<_>>()
    );
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- RF64

#[test]
fn header_switches_to_rf64_past_4_gib() {
    let spec = WavSpec {
        channels: 12,
        sample_rate: 48_000,
        format: WriteFormat::Pcm24,
        channel_mask: Some(0x2D63F),
    };
    let data: u64 = 5 * 1024 * 1024 * 1024 + 36 * 10; // whole frames (block align 36)
    let h = header_bytes(&spec, data);
    assert_eq!(h.len(), 104);
    assert_eq!(&h[0..4], b"RF64");
    assert_eq!(u32_at(&h, 4), 0xFFFF_FFFF);
    assert_eq!(&h[8..12], b"WAVE");
    assert_eq!(&h[12..16], b"ds64");
    assert_eq!(u32_at(&h, 16), 28);
    assert_eq!(u64_at(&h, 20), data + 104 - 8, "ds64 riff size");
    assert_eq!(u64_at(&h, 28), data, "ds64 data size");
    assert_eq!(u64_at(&h, 36), data / 36, "ds64 sample count (frames)");
    assert_eq!(u32_at(&h, 44), 0, "no ds64 table");
    assert_eq!(&h[48..52], b"fmt ");
    assert_eq!(u32_at(&h, 76), 0x2D63F);
    assert_eq!(&h[96..100], b"data");
    assert_eq!(u32_at(&h, 100), 0xFFFF_FFFF);

    // The exact boundary: RIFF size u32::MAX still fits; one frame more does not.
    let spec1 = WavSpec {
        channels: 1,
        sample_rate: 48_000,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let fits = u64::from(u32::MAX) - 96 - 3; // even, riff size = u32::MAX - 3
    let h = header_bytes(&spec1, fits);
    assert_eq!(&h[0..4], b"RIFF");
    assert_eq!(&h[12..16], b"JUNK");
    assert_eq!(u64::from(u32_at(&h, 4)), fits + 96);
    assert_eq!(u64::from(u32_at(&h, 100)), fits);
    let h = header_bytes(&spec1, fits + 4);
    assert_eq!(&h[0..4], b"RF64");
    assert_eq!(u64_at(&h, 28), fits + 4);
    // Same length either way: ds64 replaces JUNK in place.
    assert_eq!(h.len(), 104);
}

fn rf64_file(id: &[u8; 4], samples: &[i16], with_table: bool) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    let fmt = chunk(b"fmt ", &fmt_extensible(1, 2, 48_000, 16, 0x3));
    let mut big_chunk = b"bigc".to_vec();
    big_chunk.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    big_chunk.extend_from_slice(&[9u8; 6]);
    let mut ds64 = Vec::new();
    let total = 4
        + (8 + 28 + if with_table { 12 } else { 0 })
        + fmt.len()
        + 8
        + data.len()
        + if with_table { big_chunk.len() } else { 0 };
    ds64.extend_from_slice(&(total as u64).to_le_bytes());
    ds64.extend_from_slice(&(data.len() as u64).to_le_bytes());
    ds64.extend_from_slice(&((samples.len() / 2) as u64).to_le_bytes());
    if with_table {
        ds64.extend_from_slice(&1u32.to_le_bytes());
        ds64.extend_from_slice(b"bigc");
        ds64.extend_from_slice(&6u64.to_le_bytes());
    } else {
        ds64.extend_from_slice(&0u32.to_le_bytes());
    }
    let mut v = id.to_vec();
    v.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(&chunk(b"ds64", &ds64));
    v.extend_from_slice(&fmt);
    if with_table {
        v.extend_from_slice(&big_chunk);
    }
    v.extend_from_slice(b"data");
    v.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    v.extend_from_slice(&data);
    v
}

#[test]
fn reads_hand_built_rf64_and_bw64() {
    let dir = test_dir("rf64");
    let samples: Vec<i16> = vec![100, -200, 300, -400, 16_384, -16_384];
    for (id, table) in [(b"RF64", false), (b"BW64", false), (b"RF64", true)] {
        let f = write_file(&dir, "r.wav", &rf64_file(id, &samples, table));
        let (info, y) = read_all(&f);
        assert_eq!(
            (info.channels, info.frames, info.format, info.channel_mask),
            (2, 3, SampleFormat::Pcm16, Some(3))
        );
        assert_eq!(
            y,
            samples
                .iter()
                .map(|&v| v as f32 / 32_768.0)
                .collect::<Vec<_>>()
        );
    }
    // RF64 without ds64: the data size cannot be known.
    let mut bad = rf64_file(b"RF64", &samples, false);
    bad[12..16].copy_from_slice(b"JUNK");
    let f = write_file(&dir, "bad.wav", &bad);
    assert!(matches!(WavReader::open(&f), Err(IoError::Corrupt { .. })));
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- streaming

#[test]
fn odd_chunk_reads_and_seek_match_one_big_read() {
    let dir = test_dir("stream");
    let path = dir.join("s.wav");
    let channels = 3;
    let frames = 200_003; // > the reader's 256 KiB buffer
    let x = signal(frames * channels);
    let mut w = WavWriter::create(
        &path,
        WavSpec {
            channels,
            sample_rate: 48_000,
            format: WriteFormat::Pcm24,
            channel_mask: None,
        },
    )
    .unwrap();
    w.write(&x).unwrap();
    w.finish().unwrap().commit().unwrap();
    let (_, all) = read_all(&path);

    let mut r = WavReader::open(&path).unwrap();
    let mut got = Vec::new();
    let sizes = [7usize, 1, 13, 4096, 333, 100_000];
    let mut buf = vec![0f32; 100_000 * channels + 2]; // not a whole number of frames
    let mut k = 0;
    loop {
        let want = sizes[k % sizes.len()];
        k += 1;
        let len = (want * channels + 2).min(buf.len());
        let n = r.read(&mut buf[..len]).unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= want);
        got.extend_from_slice(&buf[..n * channels]);
    }
    assert_eq!(got, all);

    for frame in [0u64, 1, 87_381, 199_999, 150_000, 5] {
        r.seek(frame).unwrap();
        assert_eq!(r.position(), frame);
        let mut b = vec![0f32; 10 * channels];
        let n = r.read(&mut b).unwrap();
        assert_eq!(n, 10.min(frames - frame as usize));
        let at = frame as usize * channels;
        assert_eq!(&b[..n * channels], &all[at..at + n * channels]);
    }
    r.seek(frames as u64).unwrap();
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert!(matches!(
        r.seek(frames as u64 + 1),
        Err(IoError::SeekOutOfRange { frame, frames: f, .. }) if frame == 200_004 && f == 200_003
    ));
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- bad files

fn open_err(path: &Path) -> IoError {
    let e = WavReader::open(path).expect_err("must fail");
    assert!(
        e.to_string().contains(&path.display().to_string()),
        "error names the path: {e}"
    );
    e
}

#[test]
fn malformed_files_give_their_own_errors() {
    let dir = test_dir("bad");
    let fmt = chunk(b"fmt ", &fmt_plain(1, 1, 48_000, 16));
    let data = chunk(b"data", &[0u8; 8]);

    let missing = dir.join("missing.wav");
    assert!(matches!(open_err(&missing), IoError::NotFound { path } if path == missing));

    let f = write_file(&dir, "empty.wav", b"");
    assert!(matches!(open_err(&f), IoError::NotWav { reason, .. } if reason.contains("empty")));

    let f = write_file(&dir, "short.wav", b"RIFF");
    assert!(matches!(open_err(&f), IoError::NotWav { .. }));

    let f = write_file(&dir, "ogg.wav", b"OggS\0\0\0\0\0\0\0\0\0\0\0\0");
    assert!(matches!(open_err(&f), IoError::NotWav { reason, .. } if reason.contains("OggS")));

    let mut avi = riff(&[fmt.clone(), data.clone()]);
    avi[8..12].copy_from_slice(b"AVI ");
    let f = write_file(&dir, "avi.wav", &avi);
    assert!(matches!(open_err(&f), IoError::NotWav { reason, .. } if reason.contains("AVI")));

    let f = write_file(&dir, "nofmt.wav", &riff(std::slice::from_ref(&data)));
    assert!(matches!(open_err(&f), IoError::NotWav { reason, .. } if reason.contains("fmt")));

    let f = write_file(&dir, "nodata.wav", &riff(std::slice::from_ref(&fmt)));
    assert!(matches!(open_err(&f), IoError::NotWav { reason, .. } if reason.contains("data")));

    let f = write_file(
        &dir,
        "adpcm.wav",
        &riff(&[chunk(b"fmt ", &fmt_plain(2, 1, 48_000, 4)), data.clone()]),
    );
    assert!(matches!(open_err(&f), IoError::Unsupported { what, .. } if what.contains("0x0002")));

    let f = write_file(
        &dir,
        "ext-ambi.wav",
        &riff(&[
            chunk(b"fmt ", &{
                let mut e = fmt_extensible(1, 1, 48_000, 16, 0);
                e[30] = 0x21; // a GUID that is not KSDATAFORMAT_SUBTYPE_PCM
                e
            }),
            data.clone(),
        ]),
    );
    assert!(matches!(open_err(&f), IoError::Unsupported { .. }));

    let f = write_file(
        &dir,
        "pcm12.wav",
        &riff(&[chunk(b"fmt ", &fmt_plain(1, 1, 48_000, 12)), data.clone()]),
    );
    assert!(matches!(open_err(&f), IoError::Unsupported { .. }));

    let mut zero = fmt_plain(1, 1, 48_000, 16);
    zero[2] = 0; // 0 channels
    let f = write_file(
        &dir,
        "zero.wav",
        &riff(&[chunk(b"fmt ", &zero), data.clone()]),
    );
    assert!(
        matches!(open_err(&f), IoError::Corrupt { reason, .. } if reason.contains("0 channels"))
    );

    let mut absurd = fmt_plain(1, 2, 48_000, 16);
    absurd[12..14].copy_from_slice(&60_000u16.to_le_bytes());
    let f = write_file(
        &dir,
        "align.wav",
        &riff(&[chunk(b"fmt ", &absurd), data.clone()]),
    );
    assert!(
        matches!(open_err(&f), IoError::Corrupt { reason, .. } if reason.contains("block align"))
    );

    let mut rate0 = fmt_plain(1, 2, 48_000, 16);
    rate0[4..8].copy_from_slice(&0u32.to_le_bytes());
    let f = write_file(
        &dir,
        "rate0.wav",
        &riff(&[chunk(b"fmt ", &rate0), data.clone()]),
    );
    assert!(matches!(open_err(&f), IoError::Corrupt { .. }));

    let f = write_file(
        &dir,
        "shortfmt.wav",
        &riff(&[chunk(b"fmt ", &[1, 0, 1, 0]), data]),
    );
    assert!(matches!(open_err(&f), IoError::Corrupt { .. }));

    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_file_reads_to_truncated_error() {
    let dir = test_dir("trunc");
    let path = dir.join("t.wav");
    let mut w = WavWriter::create(
        &path,
        WavSpec {
            channels: 2,
            sample_rate: 48_000,
            format: WriteFormat::Pcm24,
            channel_mask: None,
        },
    )
    .unwrap();
    w.write(&signal(2 * 100_000)).unwrap();
    w.finish().unwrap().commit().unwrap();
    let bytes = fs::read(&path).unwrap();
    // Cut in the middle of frame 70 000 (6 bytes per frame).
    let cut = 104 + 70_000 * 6 + 4;
    fs::write(&path, &bytes[..cut]).unwrap();
    let mut r = WavReader::open(&path).unwrap();
    assert_eq!(r.info().frames, 100_000);
    let mut buf = vec![0f32; 2 * 1000];
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("reached the end without an error"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    match err {
        IoError::Truncated {
            path: p,
            expected_frames,
            got_frames,
        } => {
            assert_eq!(p, path);
            assert_eq!(expected_frames, 100_000);
            assert_eq!(got_frames, 70_000);
        }
        e => panic!("wrong error {e}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Every prefix of a valid file, and single-byte corruptions of its header, either open
/// and read or give an error: never a panic.
#[test]
fn prefixes_and_corruptions_never_panic() {
    let dir = test_dir("fuzz");
    let samples: Vec<i16> = (0..40).map(|k| k * 100).collect();
    let files = [
        riff(&[
            chunk(b"LIST", b"x"),
            chunk(b"fmt ", &fmt_extensible(1, 2, 48_000, 16, 3)),
            chunk(
                b"data",
                &samples
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
        ]),
        rf64_file(b"RF64", &samples, true),
    ];
    let path = dir.join("f.wav");
    let try_read = |bytes: &[u8]| {
        fs::write(&path, bytes).unwrap();
        if let Ok(mut r) = WavReader::open(&path) {
            let mut buf = vec![0f32; 64 * r.info().channels.min(64)];
            for _ in 0..100 {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    };
    for file in &files {
        for len in 0..file.len() {
            try_read(&file[..len]);
        }
        for pos in 0..file.len().min(120) {
            for val in [0u8, 1, 0x7F, 0xFF] {
                let mut b = file.clone();
                b[pos] = val;
                try_read(&b);
            }
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- atomicity

fn spec2() -> WavSpec {
    WavSpec {
        channels: 2,
        sample_rate: 48_000,
        format: WriteFormat::F32,
        channel_mask: Some(3),
    }
}

#[test]
fn dropped_writer_or_pending_file_leaves_nothing() {
    let dir = test_dir("atomic");
    let path = dir.join("out.wav");
    {
        let mut w = WavWriter::create(&path, spec2()).unwrap();
        w.write(&vec![0.5; 2 * 300_000]).unwrap(); // past the write buffer: bytes on disk
        assert_eq!(dir_entries(&dir).len(), 1, "temp file exists while writing");
        assert!(
            dir_entries(&dir)[0].starts_with(".out.wav"),
            "hidden temp name"
        );
    }
    assert!(dir_entries(&dir).is_empty());

    {
        let mut w = WavWriter::create(&path, spec2()).unwrap();
        w.write(&[0.1, 0.2]).unwrap();
        let pending = w.finish().unwrap();
        assert_eq!(pending.path(), path);
        assert!(!path.exists(), "not visible before commit");
    }
    assert!(dir_entries(&dir).is_empty());

    // Two outputs: finish both, commit both.
    let p2 = dir.join("b.wav");
    let mut a = WavWriter::create(&path, spec2()).unwrap();
    let mut b = WavWriter::create(&p2, spec2()).unwrap();
    a.write(&[0.1, 0.2]).unwrap();
    b.write(&[0.3, 0.4]).unwrap();
    let (pa, pb) = (a.finish().unwrap(), b.finish().unwrap());
    pa.commit().unwrap();
    pb.commit().unwrap();
    assert_eq!(
        dir_entries(&dir),
        vec!["b.wav".to_string(), "out.wav".to_string()]
    );

    // Overwriting an existing file replaces it whole.
    let mut w = WavWriter::create(&path, spec2()).unwrap();
    w.write(&[0.7, 0.8, 0.9, 1.0]).unwrap();
    w.finish().unwrap().commit().unwrap();
    assert_eq!(read_all(&path).1, vec![0.7, 0.8, 0.9, 1.0]);
    assert_eq!(dir_entries(&dir).len(), 2);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn create_in_unwritable_directory_names_the_directory() {
    let dir = test_dir("notwritable");
    let file = write_file(&dir, "plain-file", b"x");
    let target = file.join("out.wav");
    match WavWriter::create(&target, spec2()) {
        Err(IoError::NotWritable { path, .. }) => assert_eq!(path, file),
        other => panic!("expected NotWritable, got {other:?}"),
    }
    let missing = dir.join("no-such-dir");
    match WavWriter::create(&missing.join("x.wav"), spec2()) {
        Err(e @ IoError::NotWritable { .. }) => {
            assert!(e.to_string().contains("no-such-dir"), "{e}")
        }
        other => panic!("expected NotWritable, got {other:?}"),
    }
    match write_atomic(&file.join("r.json"), b"{}") {
        Err(IoError::NotWritable { path, .. }) => assert_eq!(path, file),
        other => panic!("expected NotWritable, got {other:?}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_specs_and_buffers_are_errors() {
    let dir = test_dir("spec");
    let p = dir.join("x.wav");
    let mut s = spec2();
    s.channels = 0;
    assert!(matches!(
        WavWriter::create(&p, s),
        Err(IoError::InvalidSpec { .. })
    ));
    let mut s = spec2();
    s.sample_rate = 0;
    assert!(matches!(
        WavWriter::create(&p, s),
        Err(IoError::InvalidSpec { .. })
    ));
    let mut s = spec2();
    s.channel_mask = Some(0x7); // three speakers for two channels
    assert!(matches!(
        WavWriter::create(&p, s),
        Err(IoError::InvalidSpec { .. })
    ));
    let mut w = WavWriter::create(&p, spec2()).unwrap();
    assert!(matches!(
        w.write(&[0.0; 3]),
        Err(IoError::BufferShape {
            len: 3,
            channels: 2,
            ..
        })
    ));
    drop(w);
    assert!(dir_entries(&dir).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extra_chunks_are_written_before_data_and_skipped_by_the_reader() {
    let dir = test_dir("chunks");
    let p = dir.join("adm.wav");
    let mut w = WavWriter::create_with_chunks(
        &p,
        spec2(),
        vec![
            Chunk {
                id: *b"chna",
                data: vec![1, 2, 3],
            },
            Chunk {
                id: *b"axml",
                data: b"<x/>".to_vec(),
            },
        ],
    )
    .unwrap();
    w.write(&[0.25, -0.25]).unwrap();
    w.finish().unwrap().commit().unwrap();
    let b = fs::read(&p).unwrap();
    assert_eq!(&b[96..100], b"chna");
    assert_eq!(u32_at(&b, 100), 3);
    assert_eq!(&b[108..112], b"axml"); // 3 bytes + pad
    assert_eq!(&b[120..124], b"data");
    assert_eq!(u32_at(&b, 4) as usize, b.len() - 8);
    assert_eq!(read_all(&p).1, vec![0.25, -0.25]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chunks_before_and_after_data_are_listed_and_read_without_moving_the_audio() {
    let dir = test_dir("chunk_read");
    // 3 frames of mono 16-bit, a `chna` before the data and an odd-sized `axml` after it.
    let samples: Vec<u8> = [1000i16, -2000, 3000]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let bytes = riff(&[
        chunk(b"fmt ", &fmt_plain(1, 1, 48_000, 16)),
        chunk(b"chna", &[7, 0, 9]),
        chunk(b"data", &samples),
        chunk(b"axml", b"<adm/>x"),
    ]);
    let p = write_file(&dir, "after.wav", &bytes);
    let mut r = WavReader::open(&p).unwrap();
    let ids: Vec<[u8; 4]> = r.chunks().iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![*b"fmt ", *b"chna", *b"data", *b"axml"]);
    let mut first = [0.0f32; 1];
    assert_eq!(r.read(&mut first).unwrap(), 1);
    assert_eq!(r.read_chunk(*b"axml", 1024).unwrap().unwrap(), b"<adm/>x");
    assert_eq!(
        r.read_chunk(*b"chna", 1024).unwrap().unwrap(),
        vec![7, 0, 9]
    );
    assert_eq!(r.read_chunk(*b"bext", 1024).unwrap(), None);
    // Reading a chunk did not move the audio: the next two frames follow the first.
    let mut rest = [0.0f32; 2];
    assert_eq!(r.read(&mut rest).unwrap(), 2);
    assert_eq!(first[0], 1000.0 / 32768.0);
    assert_eq!(rest, [-2000.0 / 32768.0, 3000.0 / 32768.0]);
    // Larger than allowed: an error naming the chunk and both sizes.
    let e = r.read_chunk(*b"axml", 4).unwrap_err().to_string();
    assert!(e.contains("\"axml\" chunk is 7 bytes, at most 4"), "{e}");

    // The file ends inside the `axml` chunk: it is listed, but reading it is an error.
    let cut = &bytes[..bytes.len() - 5];
    let p = write_file(&dir, "cut.wav", cut);
    let mut r = WavReader::open(&p).unwrap();
    let e = r.read_chunk(*b"axml", 1024).unwrap_err().to_string();
    assert!(
        e.contains("\"axml\" chunk declares 7 bytes but the file ends after 3"),
        "{e}"
    );
    assert!(e.contains("cut.wav"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn text_files_round_trip_atomically() {
    let dir = test_dir("text");
    let p = dir.join("report.json");
    write_atomic(&p, "{\"a\": 1}".as_bytes()).unwrap();
    write_atomic(&p, "{\"a\": 2}".as_bytes()).unwrap();
    assert_eq!(read_text(&p).unwrap(), "{\"a\": 2}");
    assert_eq!(dir_entries(&dir), vec!["report.json".to_string()]);
    assert!(matches!(
        read_text(&dir.join("nope")),
        Err(IoError::NotFound { .. })
    ));
    fs::write(dir.join("bin"), [0xFF, 0xFE, 0x00]).unwrap();
    assert!(matches!(
        read_text(&dir.join("bin")),
        Err(IoError::Unreadable { .. })
    ));
    // A temp file of a dead process (pid far above pid_max) is cleaned up; ours is kept.
    fs::write(dir.join(".x.wav.halo-tmp.4999999.0"), b"").unwrap();
    let w = WavWriter::create(&dir.join("y.wav"), spec2()).unwrap();
    assert_eq!(remove_stale_temp(&dir).unwrap(), 1);
    assert_eq!(dir_entries(&dir).len(), 3); // report.json, bin, our temp
    drop(w);
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- resampling

fn write_sine(path: &Path, rate: u32, freq: f64, frames: usize, channels: usize) {
    let mut w = WavWriter::create(
        path,
        WavSpec {
            channels,
            sample_rate: rate,
            format: WriteFormat::F32,
            channel_mask: None,
        },
    )
    .unwrap();
    let mut x = Vec::with_capacity(frames * channels);
    for n in 0..frames {
        let v = (0.5 * (2.0 * PI * freq * n as f64 / rate as f64).sin()) as f32;
        for c in 0..channels {
            x.push(if c == 0 { v } else { -v });
        }
    }
    w.write(&x).unwrap();
    w.finish().unwrap().commit().unwrap();
}

fn read_stream(s: &mut SourceStream, chunk: usize) -> Vec<f32> {
    let ch = s.info().channels;
    let mut out = Vec::new();
    let mut buf = vec![0f32; chunk * ch];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n * ch]);
    }
    out
}

#[test]
fn resampled_sine_is_the_analytic_sine_at_the_new_rate() {
    let dir = test_dir("resample");
    let path = dir.join("sine.wav");
    let frames = 44_100 + 77; // about one second, not a whole number of chunks
    write_sine(&path, 44_100, 1000.0, frames, 2);
    let mut s = SourceStream::open(&path, 48_000).unwrap();
    assert!(s.resampled());
    let expected = (frames as u64 * 48_000).div_ceil(44_100);
    assert_eq!(s.frames(), expected);
    let out = read_stream(&mut s, 999);
    assert_eq!(out.len() as u64, expected * 2);
    let edge = 48 * 20; // skip 20 ms at both ends (filter transients)
    let mut max_err = 0f64;
    for n in edge..(expected as usize - edge) {
        let want = 0.5 * (2.0 * PI * 1000.0 * n as f64 / 48_000.0).sin();
        max_err = max_err.max((f64::from(out[2 * n]) - want).abs());
        max_err = max_err.max((f64::from(out[2 * n + 1]) + want).abs());
    }
    assert!(max_err / 0.5 < 1e-3, "relative error {}", max_err / 0.5);

    // Downsampling: count and phase too.
    let mut s = SourceStream::open(&path, 32_000).unwrap();
    let expected = (frames as u64 * 32_000).div_ceil(44_100);
    assert_eq!(s.frames(), expected);
    let out = read_stream(&mut s, 4096);
    assert_eq!(out.len() as u64, expected * 2);
    let edge = 32 * 20;
    let mut max_err = 0f64;
    for n in edge..(expected as usize - edge) {
        let want = 0.5 * (2.0 * PI * 1000.0 * n as f64 / 32_000.0).sin();
        max_err = max_err.max((f64::from(out[2 * n]) - want).abs());
    }
    assert!(max_err / 0.5 < 1e-3, "relative error {}", max_err / 0.5);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_rate_stream_is_bit_identical_passthrough() {
    let dir = test_dir("passthrough");
    let path = dir.join("p.wav");
    let x = signal(3 * 5001);
    let mut w = WavWriter::create(
        &path,
        WavSpec {
            channels: 3,
            sample_rate: 48_000,
            format: WriteFormat::F32,
            channel_mask: None,
        },
    )
    .unwrap();
    w.write(&x).unwrap();
    w.finish().unwrap().commit().unwrap();
    let mut s = SourceStream::open(&path, 48_000).unwrap();
    assert!(!s.resampled());
    assert_eq!(s.frames(), 5001);
    let y = read_stream(&mut s, 77);
    assert_eq!(
        x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn short_source_gives_exact_length_after_resampling() {
    let dir = test_dir("short");
    for frames in [0usize, 1, 5, 146, 1177] {
        let path = dir.join(format!("s{frames}.wav"));
        write_sine(&path, 44_100, 440.0, frames, 1);
        let mut s = SourceStream::open(&path, 48_000).unwrap();
        let expected = (frames as u64 * 48_000).div_ceil(44_100);
        assert_eq!(s.frames(), expected);
        assert_eq!(read_stream(&mut s, 10).len() as u64, expected);
    }
    fs::remove_dir_all(&dir).unwrap();
}
