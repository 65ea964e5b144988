//! Pure delay.

use super::*;

// ---------------------------------------------------------------------------------------
// Delay

/// Pure delay of N frames on every channel (aligns outputs with different latencies).
#[derive(Debug, Clone)]
pub struct Delay {
    frames: usize,
    /// Per channel ring of `frames` samples.
    buffer: Vec<f32>,
    pos: usize,
    channels: usize,
}

impl Delay {
    /// Delay by `frames` (0 ..= 10 000 000) on `channels` channels.
    pub fn new(frames: usize, channels: usize) -> Result<Delay, DspError> {
        check_channels("delay", channels)?;
        if frames > 10_000_000 {
            return Err(invalid("delay", "frames", frames as f64, "0 ..= 10000000"));
        }
        Ok(Delay {
            frames,
            buffer: vec![0.0; frames * channels],
            pos: 0,
            channels,
        })
    }
}

impl Processor for Delay {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        if self.frames == 0 {
            return;
        }
        let n = frame_count(channels);
        let d = self.frames;
        for (ch, ring) in channels
            .iter_mut()
            .zip(self.buffer.chunks_exact_mut(d))
            .take(self.channels)
        {
            let mut pos = self.pos;
            for x in ch[..n].iter_mut() {
                std::mem::swap(x, &mut ring[pos]);
                pos += 1;
                if pos == d {
                    pos = 0;
                }
            }
        }
        self.pos = (self.pos + n) % d;
    }
    fn reset(&mut self) {
        self.buffer.fill(0.0);
        self.pos = 0;
    }
    fn latency(&self) -> usize {
        self.frames
    }
}
