//! Fuzzes the WAV reader (RIFF/RF64/BW64 headers, chunks, samples) through a file, as the
//! commands open it: no input may panic or allocate beyond the documented bounds.
#![no_main]

use halo::formats::io::{SourceStream, WavReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("halo-fuzz-{}.wav", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut r) = WavReader::open(&path) {
        let mut buf = vec![0.0f32; 4096 * r.info().channels.min(64)];
        for _ in 0..16 {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = r.read_chunk(*b"axml", 1 << 20);
    }
    // Resampled to 48 kHz, as a source of a session.
    if let Ok(mut s) = SourceStream::open(&path, 48_000) {
        let mut buf = vec![0.0f32; 1024 * s.info().channels.min(64)];
        for _ in 0..4 {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});
