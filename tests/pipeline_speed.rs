//! The render pipeline's fast paths (issue 17) give the same numbers as the plain ones:
//! 24-bit PCM decoding four samples at a time, against the values written byte by byte.

mod common;

use halo::formats::io::WavReader;

/// A plain PCM WAV file of `channels` channels with the given 24-bit sample codes.
fn pcm24_wav(channels: u16, codes: &[i32]) -> Vec<u8> {
    let data_len = (codes.len() * 3) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(4 + 8 + 16 + 8 + data_len + data_len % 2).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&48000u32.to_le_bytes());
    b.extend_from_slice(&(48000 * 3 * u32::from(channels)).to_le_bytes());
    b.extend_from_slice(&(3 * channels).to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for &c in codes {
        let u = c as u32;
        b.extend_from_slice(&[u as u8, (u >> 8) as u8, (u >> 16) as u8]);
    }
    if data_len % 2 == 1 {
        b.push(0);
    }
    b
}

#[test]
fn pcm24_decodes_every_code_exactly() {
    // Extremes, signs, every byte pattern position; 3 channels × 1001 frames so that reads
    // of whole blocks and of the odd samples left over both occur.
    let special = [
        -8_388_608,
        8_388_607,
        -1,
        0,
        1,
        0x12_3456,
        -0x12_3456,
        0x7F_0080,
        -0x80_0001 + 1,
        0x00_8000,
        -0x00_8000,
        0x00_0080,
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let codes: Vec<i32> = (0..3 * 1001)
        .map(|i| {
            if i < special.len() {
                special[i]
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as i32) - (1 << 23)
            }
        })
        .collect();
    let dir = common::scratch("pcm24");
    let path = dir.join("codes.wav");
    std::fs::write(&path, pcm24_wav(3, &codes)).expect("write");
    let mut reader = WavReader::open(&path).expect("open");
    assert_eq!(reader.info().frames, 1001);
    // Reads of 7 frames (21 samples: five groups of four and one left over), then the rest.
    let mut got = Vec::new();
    let mut buf = vec![0.0f32; 21];
    for _ in 0..10 {
        let n = reader.read(&mut buf).expect("read");
        got.extend_from_slice(&buf[..n * 3]);
    }
    let mut rest = vec![0.0f32; 3 * 2000];
    let n = reader.read(&mut rest).expect("read");
    got.extend_from_slice(&rest[..n * 3]);
    assert_eq!(got.len(), codes.len());
    for (i, (&g, &c)) in got.iter().zip(&codes).enumerate() {
        // Every 24-bit code is exact in f32: code / 2^23.
        let want = c as f32 / 8_388_608.0;
        assert_eq!(g.to_bits(), want.to_bits(), "sample {i}: code {c}");
    }
}
