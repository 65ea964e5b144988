//! One engine and a `ParallelEngine` driven the same way, for tests that compare them:
//! irregular blocks, every object and bed channel fed its own test signal, every output
//! collected whole.

use halo::drivers::parallel::{Inputs, ParallelEngine, Span};
use halo::engine::{Engine, EngineConfig, OutputConfig};
use std::f64::consts::TAU;

/// The sample rate of the signals.
pub const RATE: u32 = 48000;
/// The largest block [`block_sizes`] gives (the engines' `max_block_frames`).
pub const MAX_BLOCK: usize = 1024;

/// Object `i`'s input at frame `f`.
pub type ObjectSignal = fn(usize, usize) -> f32;

/// Bed channel `c`'s input at frame `f`: a sine per channel.
pub fn bed_signal(c: usize, f: usize) -> f32 {
    (0.3 * (TAU * 97.0 * (c + 1) as f64 * f as f64 / RATE as f64).sin()) as f32
}

/// Irregular block sizes, all ≤ [`MAX_BLOCK`].
pub fn block_sizes() -> impl Iterator<Item = usize> {
    [1024, 37, 500, 1024, 1, 999].into_iter().cycle()
}

/// Every output, channel by channel, `frames` long.
pub type Outputs = Vec<Vec<Vec<f32>>>;

/// The reference: one `Engine` (or its offline form) over `frames` frames; its latency
/// and outputs.
pub fn single(
    config: EngineConfig,
    offline: bool,
    frames: usize,
    object: ObjectSignal,
) -> (usize, Outputs) {
    let n_out = config.outputs.len();
    let bed_channels: Vec<usize> = config
        .beds
        .iter()
        .map(|b| b.layout.num_channels())
        .collect();
    let mut engine = if offline {
        Engine::new_offline(config).unwrap()
    } else {
        Engine::new(config).unwrap()
    };
    let mut out: Outputs = (0..n_out)
        .map(|o| vec![Vec::new(); engine.output(o).len()])
        .collect();
    let (mut pos, mut sizes) = (0, block_sizes());
    while pos < frames {
        let n = sizes.next().unwrap().min(frames - pos);
        for i in 0..engine.num_objects() {
            for (k, x) in engine.object_input(i)[..n].iter_mut().enumerate() {
                *x = object(i, pos + k);
            }
        }
        for (b, &channels) in bed_channels.iter().enumerate() {
            for c in 0..channels {
                for (k, x) in engine.bed_input(b, c)[..n].iter_mut().enumerate() {
                    *x = bed_signal(c, pos + k);
                }
            }
        }
        engine.process(n);
        for (o, chans) in out.iter_mut().enumerate() {
            for (c, ch) in chans.iter_mut().enumerate() {
                ch.extend_from_slice(&engine.output(o)[c][..n]);
            }
        }
        pos += n;
    }
    (engine.latency(), out)
}

/// The same through a `ParallelEngine` (or its offline form) on `threads` threads; its
/// latency, outputs and the spans every output saw (checked to be the same for all).
pub fn parallel(
    config: EngineConfig,
    threads: usize,
    offline: bool,
    frames: usize,
    object: ObjectSignal,
) -> (usize, Outputs, Vec<Span>) {
    let channels: Vec<usize> = config
        .outputs
        .iter()
        .map(|o| match o {
            OutputConfig::Speakers { layout, .. } => layout.num_channels(),
            _ => 2,
        })
        .collect();
    let mut engine = if offline {
        ParallelEngine::new_offline(config, threads).unwrap()
    } else {
        ParallelEngine::new(config, threads).unwrap()
    };
    let mut states: Vec<(Vec<Vec<f32>>, Vec<Span>)> = channels
        .iter()
        .map(|&c| (vec![Vec::new(); c], Vec::new()))
        .collect();
    let (mut pos, mut sizes) = (0, block_sizes());
    let produce = |inputs: &mut Inputs| -> Result<Option<usize>, String> {
        if pos >= frames {
            return Ok(None);
        }
        let n = sizes.next().unwrap().min(frames - pos);
        for (i, x) in inputs.objects.iter_mut().enumerate() {
            for (k, x) in x[..n].iter_mut().enumerate() {
                *x = object(i, pos + k);
            }
        }
        for bed in &mut inputs.beds {
            for (c, x) in bed.iter_mut().enumerate() {
                for (k, x) in x[..n].iter_mut().enumerate() {
                    *x = bed_signal(c, pos + k);
                }
            }
        }
        pos += n;
        Ok(Some(n))
    };
    engine
        .run(
            &mut states,
            produce,
            |_, out, (chans, spans): &mut (Vec<Vec<f32>>, Vec<Span>), span| {
                for (ch, x) in chans.iter_mut().zip(out) {
                    ch.extend_from_slice(&x[..span.frames]);
                }
                spans.push(span);
                Ok(())
            },
        )
        .unwrap();
    let spans = states[0].1.clone();
    for (_, s) in &states {
        assert_eq!(*s, spans, "every output sees every block in order");
    }
    (
        engine.latency(),
        states.into_iter().map(|(c, _)| c).collect(),
        spans,
    )
}
