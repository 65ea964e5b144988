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
            // Each sample trades places with the one `d` frames older in the ring, in runs
            // up to the ring's end.
            let (mut pos, mut done) = (self.pos, 0);
            while done < n {
                let run = (d - pos).min(n - done);
                ch[done..done + run].swap_with_slice(&mut ring[pos..pos + run]);
                done += run;
                pos = if pos + run == d { 0 } else { pos + run };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The output is the input `frames` later, exactly, whatever the block sizes (shorter
    /// and longer than the delay, across the ring's end), on every channel.
    #[test]
    fn output_is_the_input_delayed_at_any_block_size() {
        let len = 1000;
        let x: Vec<Vec<f32>> = (0..2)
            .map(|c| {
                (0..len)
                    .map(|i| (i * 7 + c * 13) as f32 % 17.0 - 8.0)
                    .collect()
            })
            .collect();
        for d in [1, 3, 64, 100, 999] {
            let mut delay = Delay::new(d, 2).unwrap();
            let mut y = x.clone();
            let (mut start, mut k) = (0, 0);
            while start < len {
                let n = [1, 7, 64, 250, 3][k % 5].min(len - start);
                let (a, b) = y.split_at_mut(1);
                delay.process(&mut [&mut a[0][start..start + n], &mut b[0][start..start + n]]);
                start += n;
                k += 1;
            }
            for (c, (y, x)) in y.iter().zip(&x).enumerate() {
                for (i, &v) in y.iter().enumerate() {
                    let want = if i >= d { x[i - d] } else { 0.0 };
                    assert_eq!(v, want, "delay {d}, channel {c}, frame {i}");
                }
            }
        }
    }
}
