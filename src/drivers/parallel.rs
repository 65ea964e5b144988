//! Offline rendering on several cores: a session's outputs split into groups, each group an
//! [`Engine`] of its own on its own thread, every output bit-identical to a single engine's.
//!
//! # Why the split is exact
//!
//! The outputs of an [`Engine`] share nothing but their inputs: each speaker bus (and the
//! stereo fold-downs read from it) and the binaural path compute their own gains from the
//! objects' automation. The segment grid that gains are ramped on comes from the objects'
//! keyframes only, so it is the same in every group; each group's engine is then aligned to
//! the latency of the slowest output ([`Engine::delay_to_latency`]), as a single engine
//! aligns its outputs. Same arithmetic in the same order: the same bits.
//!
//! # Grouping and the pipeline
//!
//! The binaural path (≈ 2/3 of a full render's cost) gets a group of its own; each speaker
//! bus with the fold-downs that read it is another; with fewer threads than groups, the
//! speaker groups share threads. [`ParallelEngine::run`] is a pipeline, not a barrier: the
//! caller's thread fills input blocks (reading sources, analysing them) while each group's
//! thread renders, meters and writes its outputs at its own pace, a few blocks behind. A
//! group that is briefly descheduled (a busy machine) then delays nothing else until the
//! block pool runs dry.
//!
//! This is for offline rendering only. Live playback renders one output with a plain
//! [`Engine`] on the audio thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use crate::engine::{Engine, EngineConfig, EngineError, OutputConfig};
use crate::scene::layout::Layout;

/// Input blocks in flight per group: enough slack to ride out a descheduled thread.
const BLOCKS_PER_GROUP: usize = 3;

/// One block of engine inputs: every object's signal and every bed channel.
pub struct Inputs {
    /// Per object, `max_block_frames` long.
    pub objects: Vec<Vec<f32>>,
    /// Per bed, per channel (layout order), `max_block_frames` long.
    pub beds: Vec<Vec<Vec<f32>>>,
}

/// Where a rendered block sits: `start` is the engine input frame of its first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub frames: usize,
}

/// A filled input block shared by the groups; the last group to drop it sends it back to
/// the pool.
struct Pooled {
    inputs: Option<Inputs>,
    span: Span,
    home: mpsc::Sender<Inputs>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(inputs) = self.inputs.take() {
            // The pool is gone only when `run` has returned; the block is not needed then.
            let _ = self.home.send(inputs);
        }
    }
}

/// Several [`Engine`]s over the same objects and beds, one per group of outputs, each run
/// on a thread of its own by [`ParallelEngine::run`].
pub struct ParallelEngine {
    /// One engine per group of outputs (one per thread).
    groups: Vec<Engine>,
    /// Session output index → (group, index within the group's engine).
    map: Vec<(usize, usize)>,
    latency: usize,
    max_block_frames: usize,
    n_objects: usize,
    bed_channels: Vec<usize>,
    /// Also use a thread for the caller's side (false: everything on the caller's thread).
    threaded: bool,
}

/// Which bus an output is rendered from: outputs with the same key must share an engine.
#[derive(PartialEq)]
enum Key<'a> {
    Binaural,
    Bus(&'a Layout),
}

fn key(out: &OutputConfig) -> Key<'_> {
    match out {
        OutputConfig::Binaural { .. } => Key::Binaural,
        OutputConfig::Speakers { layout, .. } => Key::Bus(layout),
        OutputConfig::Stereo { from, .. } => Key::Bus(from),
    }
}

/// Splits output indices into at most `threads` groups, never none (no outputs: one empty
/// group): the binaural outputs alone when there is another thread for the rest, speaker
/// buses round-robin over the other threads.
fn plan_groups(outputs: &[OutputConfig], threads: usize) -> Vec<Vec<usize>> {
    let mut keys: Vec<Key> = Vec::new();
    let mut by_key: Vec<Vec<usize>> = Vec::new();
    for (o, out) in outputs.iter().enumerate() {
        let k = key(out);
        match keys.iter().position(|x| *x == k) {
            Some(i) => by_key[i].push(o),
            None => {
                keys.push(k);
                by_key.push(vec![o]);
            }
        }
    }
    let threads = threads.clamp(1, by_key.len().max(1));
    if threads == 1 {
        return vec![(0..outputs.len()).collect()];
    }
    let mut groups = vec![Vec::new(); threads];
    let binaural = keys.iter().position(|k| *k == Key::Binaural);
    let (first, rest) = match binaural {
        Some(_) => (1, threads - 1),
        None => (0, threads),
    };
    let mut next = 0;
    for (i, outs) in by_key.into_iter().enumerate() {
        if Some(i) == binaural {
            groups[0].extend(outs);
        } else {
            groups[first + next % rest].extend(outs);
            next += 1;
        }
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups.retain(|g| !g.is_empty());
    groups
}

impl ParallelEngine {
    /// Builds one engine per group of outputs, on at most `threads` threads (`0`: as many
    /// as the machine has). With one thread, or one group of outputs, everything runs on
    /// the caller's thread.
    pub fn new(config: EngineConfig, threads: usize) -> Result<ParallelEngine, EngineError> {
        ParallelEngine::build(config, threads, false)
    }

    /// [`ParallelEngine::new`] with [`Engine::new_offline`]'s engines (long binaural
    /// partitions: an offline render, where latency does not matter).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn new_offline(
        config: EngineConfig,
        threads: usize,
    ) -> Result<ParallelEngine, EngineError> {
        ParallelEngine::build(config, threads, true)
    }

    fn build(
        config: EngineConfig,
        threads: usize,
        offline: bool,
    ) -> Result<ParallelEngine, EngineError> {
        let threads = if threads == 0 {
            thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let plan = plan_groups(&config.outputs, threads);
        let n_objects = config.objects.len();
        let bed_channels = config
            .beds
            .iter()
            .map(|b| b.layout.num_channels())
            .collect();
        let mut map = vec![(0, 0); config.outputs.len()];
        let mut groups = Vec::with_capacity(plan.len());
        for (g, outputs) in plan.into_iter().enumerate() {
            let group_config = EngineConfig {
                outputs: outputs.iter().map(|&o| config.outputs[o].clone()).collect(),
                ..config.clone()
            };
            let engine = if offline {
                Engine::new_offline(group_config)?
            } else {
                Engine::new(group_config)?
            };
            for (local, &o) in outputs.iter().enumerate() {
                map[o] = (g, local);
            }
            groups.push(engine);
        }
        let latency = groups.iter().map(|g| g.latency()).max().unwrap_or(0);
        for g in &mut groups {
            g.delay_to_latency(latency)?;
        }
        // One group: rendering beside the reading thread gains nothing (measured: it costs
        // the copies and the hand-over, ≈ 7 % on a 128-object 7.1.4 render).
        let threaded = groups.len() > 1;
        Ok(ParallelEngine {
            groups,
            map,
            latency,
            max_block_frames: config.max_block_frames,
            n_objects,
            bed_channels,
            threaded,
        })
    }

    /// Frames of delay between the inputs and every output (all outputs are aligned).
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Moves every group's timeline to `frame` (see [`Engine::seek`]). Bench support (the
    /// `internals` feature).
    #[cfg(feature = "internals")]
    pub fn seek(&mut self, frame: u64) {
        for g in &mut self.groups {
            g.seek(frame);
        }
    }

    fn new_inputs(&self) -> Inputs {
        Inputs {
            objects: vec![vec![0.0; self.max_block_frames]; self.n_objects],
            beds: self
                .bed_channels
                .iter()
                .map(|&n| vec![vec![0.0; self.max_block_frames]; n])
                .collect(),
        }
    }

    /// Renders until `produce` says the input has ended.
    ///
    /// `produce` runs on the caller's thread: it fills a block of inputs and returns how many
    /// frames it holds (≤ `max_block_frames`; `None`: no more input). For every rendered
    /// block, on the thread of the group that rendered output `o`, `sink(o, output, &mut
    /// states[o], span)` is called with the output's channels (layout order, `span.frames`
    /// long). `states` has one entry per output. The first error from either side stops
    /// the run and is returned (the caller's own first).
    pub fn run<S, E, P, F>(&mut self, states: &mut [S], mut produce: P, sink: F) -> Result<(), E>
    where
        S: Send,
        E: Send,
        P: FnMut(&mut Inputs) -> Result<Option<usize>, E>,
        F: Fn(usize, &[Vec<f32>], &mut S, Span) -> Result<(), E> + Sync,
    {
        assert_eq!(states.len(), self.map.len(), "one state per output");
        let start = self.groups[0].position_frames();
        if !self.threaded {
            let mut inputs = self.new_inputs();
            let mut span = Span { start, frames: 0 };
            while let Some(frames) = produce(&mut inputs)? {
                span.frames = frames.min(self.max_block_frames);
                let engine = &mut self.groups[0];
                // The objects' block changes hands instead of being copied (`produce` fills
                // every object's frames each time, as with the pool of the threaded path).
                engine.swap_object_inputs(&mut inputs.objects);
                load_beds(engine, &inputs, span.frames);
                engine.process(span.frames);
                for (o, state) in states.iter_mut().enumerate() {
                    sink(o, engine.output(self.map[o].1), state, span)?;
                }
                span.start += span.frames as u64;
            }
            return Ok(());
        }
        // Each group's outputs and their states.
        let mut shares: Vec<Vec<(usize, usize, &mut S)>> =
            self.groups.iter().map(|_| Vec::new()).collect();
        for (o, state) in states.iter_mut().enumerate() {
            let (g, local) = self.map[o];
            shares[g].push((o, local, state));
        }
        let (pool_tx, pool_rx) = mpsc::channel();
        for _ in 0..BLOCKS_PER_GROUP * self.groups.len() + 1 {
            // Cannot fail: the receiver is alive.
            let _ = pool_tx.send(self.new_inputs());
        }
        let abort = AtomicBool::new(false);
        let (sink, abort) = (&sink, &abort);
        let max_frames = self.max_block_frames;
        thread::scope(|scope| {
            let mut senders = Vec::with_capacity(self.groups.len());
            let mut workers = Vec::with_capacity(self.groups.len());
            for (engine, share) in self.groups.iter_mut().zip(shares) {
                let (tx, rx) = mpsc::sync_channel::<Arc<Pooled>>(BLOCKS_PER_GROUP);
                senders.push(tx);
                workers.push(scope.spawn(move || group_worker(engine, share, rx, sink, abort)));
            }
            let mut result = Ok(());
            let mut span = Span { start, frames: 0 };
            while !abort.load(Ordering::Relaxed) {
                // Blocks always come back: workers drop every block they receive.
                let Ok(mut inputs) = pool_rx.recv() else {
                    break;
                };
                match produce(&mut inputs) {
                    Ok(Some(frames)) => span.frames = frames.min(max_frames),
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                let block = Arc::new(Pooled {
                    inputs: Some(inputs),
                    span,
                    home: pool_tx.clone(),
                });
                for tx in &senders {
                    // A worker hangs up only when it has ended (it panicked): stop feeding.
                    if tx.send(Arc::clone(&block)).is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                }
                span.start += span.frames as u64;
            }
            drop(senders);
            for w in workers {
                // A panic in a worker is a bug in the engine: carry it to the caller.
                let r = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }
}

/// Copies a block of inputs into an engine.
fn load(engine: &mut Engine, inputs: &Inputs, frames: usize) {
    for (i, x) in inputs.objects.iter().enumerate() {
        engine.object_input(i)[..frames].copy_from_slice(&x[..frames]);
    }
    load_beds(engine, inputs, frames);
}

/// Copies a block's bed channels into an engine.
fn load_beds(engine: &mut Engine, inputs: &Inputs, frames: usize) {
    for (b, bed) in inputs.beds.iter().enumerate() {
        for (ch, x) in bed.iter().enumerate() {
            engine.bed_input(b, ch)[..frames].copy_from_slice(&x[..frames]);
        }
    }
}

/// One group's thread: render each block, hand the outputs to the sink. After an error it
/// only drains its queue (so blocks return to the pool) until the caller hangs up.
fn group_worker<S, E, F>(
    engine: &mut Engine,
    mut share: Vec<(usize, usize, &mut S)>,
    blocks: mpsc::Receiver<Arc<Pooled>>,
    sink: &F,
    abort: &AtomicBool,
) -> Result<(), E>
where
    F: Fn(usize, &[Vec<f32>], &mut S, Span) -> Result<(), E>,
{
    let mut result = Ok(());
    for block in blocks {
        if result.is_err() {
            continue;
        }
        let span = block.span;
        if let Some(inputs) = block.inputs.as_ref() {
            load(engine, inputs, span.frames);
        }
        drop(block);
        engine.process(span.frames);
        for (o, local, state) in share.iter_mut() {
            if let Err(e) = sink(*o, engine.output(*local), state, span) {
                result = Err(e);
                abort.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::binaural::HrtfSet;
    use std::sync::Arc;

    fn speakers(name: &str) -> OutputConfig {
        OutputConfig::speakers(Layout::builtin(name).expect("built-in"))
    }

    fn stereo(from: &str) -> OutputConfig {
        OutputConfig::Stereo {
            from: Layout::builtin(from).expect("built-in"),
            fold: Default::default(),
            chain: Vec::new(),
        }
    }

    #[test]
    fn binaural_alone_and_folds_stay_with_their_bus() {
        let hrtf = Arc::new(HrtfSet::default_set(48000).expect("KEMAR"));
        let bin = OutputConfig::Binaural {
            hrtf,
            lfe_db: None,
            chain: Vec::new(),
        };
        let outs = vec![
            speakers("7.1.4"),
            bin.clone(),
            stereo("7.1.4"),
            speakers("5.1"),
        ];
        assert_eq!(plan_groups(&outs, 1), vec![vec![0, 1, 2, 3]]);
        assert_eq!(plan_groups(&outs, 2), vec![vec![1], vec![0, 2, 3]]);
        assert_eq!(plan_groups(&outs, 3), vec![vec![1], vec![0, 2], vec![3]]);
        assert_eq!(plan_groups(&outs, 8), vec![vec![1], vec![0, 2], vec![3]]);
        let no_bin = vec![speakers("7.1.4"), stereo("7.1.4"), speakers("5.1")];
        assert_eq!(plan_groups(&no_bin, 2), vec![vec![0, 1], vec![2]]);
        assert_eq!(plan_groups(&[bin], 4), vec![vec![0]]);
        assert_eq!(plan_groups(&[], 4), vec![Vec::<usize>::new()]);
    }
}
