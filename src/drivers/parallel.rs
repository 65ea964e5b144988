//! Offline rendering on several cores: a session's outputs split into groups, each group an
//! [`Engine`] of its own on its own thread, and the binaural path's source chunks spread
//! over the threads; every output bit-identical to a single engine's.
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
//! The binaural path is itself rendered in source chunks
//! ([`crate::engine::binaural_chunk_sizes`]: fixed by the object count, never by the
//! threads; more than 16 objects: two, ¾ and ¼ of the objects), each with its own HRTF
//! renderer, and every engine sums the chunks' partial ear mixes in chunk order before the
//! LFE, the chain and the alignment delay. The mix's one virtual room is in chunk 0's
//! renderer: the other chunk hands it its room sends of each partition, which it adds to
//! its own before rendering that partition. A chunk renders the same bits on whichever
//! engine and thread it runs, and chunk 0's room gets the same sends in the same order, so
//! moving chunks to other threads changes nothing either.
//!
//! # Grouping and the pipeline
//!
//! The binaural output (≈ 2/3 of a full render's cost) gets a group of its own; each
//! speaker bus with the fold-downs that read it is another; with fewer threads than groups,
//! the speaker groups share threads. With idle threads left, chunk-only groups are added
//! (a binaural-only render uses two cores too). The binaural chunks then go, in order, to
//! the least loaded group (a chunk weighs twice its objects, a speaker bus the number of
//! objects: half the binaural path): on two cores with 128 objects, the 96-object chunk
//! stays with the binaural output and the 32-object one goes beside the 7.1.4 bus. A group
//! rendering chunks for the binaural group does so first in each block, in an engine of
//! its own (`Engine::new_chunked`), and sends their partial mixes over (buffers from a
//! small pool that comes back, with the chunks' room sends); the binaural group takes the
//! others' partial mixes and room sends, then renders its own chunks
//! (`Engine::process_sources`, chunk 0's room taking the sends), sums and finishes
//! (`Engine::process_outputs`).
//!
//! [`ParallelEngine::run`] is a pipeline, not a barrier: the caller's thread fills input
//! blocks (reading sources, analysing them) while each group's thread renders, meters and
//! writes its outputs at its own pace, a few blocks behind. A group that is briefly
//! descheduled (a busy machine) then delays nothing else until the block pool runs dry.
//!
//! This is for offline rendering only. Live playback renders one output with a plain
//! [`Engine`] on the audio thread (which sums the same chunks itself).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use crate::engine::{Engine, EngineConfig, EngineError, OutputConfig, binaural_chunk_sizes};
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

/// One thread's work: the engine of a group of outputs and/or binaural source chunks
/// rendered for the binaural group's engine.
struct Group {
    /// The engine of the group's outputs (`None`: the group only renders chunks).
    engine: Option<Engine>,
    /// Binaural source chunks (and the engine rendering them) for the binaural group.
    part: Option<(Engine, Vec<usize>)>,
    /// The binaural group: the chunks it receives from each other group, by group.
    foreign: Vec<(usize, Vec<usize>)>,
}

/// What a group's binaural chunk hands the binaural group for a block: its partial ear
/// mix (L, R) and the room sends of the partitions it finished (the mix's one room is in
/// the binaural group's chunk 0).
struct Partial {
    ears: [Vec<f32>; 2],
    sends: Vec<f32>,
}

/// A group's binaural chunks' [`Partial`]s, in its chunks' order.
type Partials = Vec<Partial>;

/// Several [`Engine`]s over the same objects and beds, one per group of outputs, each run
/// on a thread of its own by [`ParallelEngine::run`].
pub struct ParallelEngine {
    /// One group per thread.
    groups: Vec<Group>,
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

/// Spreads the binaural path's source chunks (`sizes`: objects in each) over the threads,
/// `groups` being [`plan_groups`]'s (group 0 the binaural one, when there are several
/// threads): adds chunk-only groups while there are idle threads (at most one per chunk
/// beyond the first), then gives each chunk, in order, to the least loaded group (the
/// first on a tie). Load: a chunk twice its objects, a speaker bus with its fold-downs the
/// number of objects (a bus costs about half the binaural path). Returns each group's
/// chunks (group 0's include chunk 0); all in group 0 when there is one group or no
/// binaural output.
fn plan_chunks(
    outputs: &[OutputConfig],
    groups: &mut Vec<Vec<usize>>,
    threads: usize,
    sizes: &[usize],
) -> Vec<Vec<usize>> {
    let chunks = sizes.len();
    let binaural = groups
        .first()
        .is_some_and(|g| g.iter().any(|&o| key(&outputs[o]) == Key::Binaural));
    if !(binaural && chunks > 1 && threads > 1) {
        let mut plan = vec![Vec::new(); groups.len()];
        plan[0] = (0..chunks).collect();
        return plan;
    }
    let extra = threads
        .saturating_sub(groups.len())
        .min(chunks.saturating_sub(1));
    groups.extend((0..extra).map(|_| Vec::new()));
    let mut load: Vec<usize> = groups
        .iter()
        .map(|g| {
            let mut buses: Vec<Key> = Vec::new();
            for &o in g {
                let k = key(&outputs[o]);
                if k != Key::Binaural && !buses.contains(&k) {
                    buses.push(k);
                }
            }
            buses.len() * sizes.iter().sum::<usize>()
        })
        .collect();
    let mut plan = vec![Vec::new(); groups.len()];
    for (c, size) in sizes.iter().enumerate() {
        let g = (0..load.len()).min_by_key(|&g| load[g]).unwrap_or(0);
        plan[g].push(c);
        load[g] += 2 * size;
    }
    // Chunk-only groups that got nothing are dropped.
    let mut g = groups.len();
    while g > 1 {
        g -= 1;
        if groups[g].is_empty() && plan[g].is_empty() {
            groups.remove(g);
            plan.remove(g);
        }
    }
    plan
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
        let mut plan = plan_groups(&config.outputs, threads);
        let sizes = binaural_chunk_sizes(config.objects.len());
        let chunks = sizes.len();
        let chunk_plan = plan_chunks(&config.outputs, &mut plan, threads, &sizes);
        // Split: the binaural group's engine sums chunks rendered on other threads.
        let split = chunk_plan.iter().skip(1).any(|c| !c.is_empty());
        let n_objects = config.objects.len();
        let bed_channels = config
            .beds
            .iter()
            .map(|b| b.layout.num_channels())
            .collect();
        let new_engine = |config: EngineConfig| {
            if offline {
                Engine::new_offline(config)
            } else {
                Engine::new(config)
            }
        };
        let mask = |owned: &[usize]| (0..chunks).map(|c| owned.contains(&c)).collect::<Vec<_>>();
        let mut map = vec![(0, 0); config.outputs.len()];
        let mut groups = Vec::with_capacity(plan.len());
        for (g, (outputs, own)) in plan.into_iter().zip(&chunk_plan).enumerate() {
            let group_config = EngineConfig {
                outputs: outputs.iter().map(|&o| config.outputs[o].clone()).collect(),
                ..config.clone()
            };
            let mut group = Group {
                engine: None,
                part: None,
                foreign: Vec::new(),
            };
            if !split || g > 0 {
                if !outputs.is_empty() || g == 0 {
                    group.engine = Some(new_engine(group_config)?);
                }
                if g > 0 && !own.is_empty() {
                    let binaural = config
                        .outputs
                        .iter()
                        .find(|o| matches!(o, OutputConfig::Binaural { .. }))
                        .cloned();
                    let part_config = EngineConfig {
                        outputs: binaural.into_iter().collect(),
                        ..config.clone()
                    };
                    let engine = Engine::new_chunked(part_config, offline, &mask(own))?;
                    group.part = Some((engine, own.clone()));
                }
            } else {
                group.engine = Some(Engine::new_chunked(group_config, offline, &mask(own))?);
                group.foreign = chunk_plan
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, c)| !c.is_empty())
                    .map(|(h, c)| (h, c.clone()))
                    .collect();
            }
            for (local, &o) in outputs.iter().enumerate() {
                map[o] = (g, local);
            }
            groups.push(group);
        }
        let latency = groups
            .iter()
            .filter_map(|g| g.engine.as_ref())
            .map(|e| e.latency())
            .max()
            .unwrap_or(0);
        for e in groups.iter_mut().filter_map(|g| g.engine.as_mut()) {
            e.delay_to_latency(latency)?;
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
            if let Some(e) = &mut g.engine {
                e.seek(frame);
            }
            if let Some((e, _)) = &mut g.part {
                e.seek(frame);
            }
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
        let Some(start) = self
            .groups
            .iter()
            .find_map(|g| g.engine.as_ref())
            .map(|e| e.position_frames())
        else {
            return Ok(());
        };
        if !self.threaded {
            let mut inputs = self.new_inputs();
            let mut span = Span { start, frames: 0 };
            while let Some(frames) = produce(&mut inputs)? {
                span.frames = frames.min(self.max_block_frames);
                let Some(engine) = self.groups[0].engine.as_mut() else {
                    return Ok(());
                };
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
        // Binaural chunks rendered on other threads travel to the binaural group's thread
        // in a pool of partial-mix buffers per group, which it sends back once summed.
        let mut part_links: Vec<Option<PartLink>> = Vec::new();
        let mut head_links: Vec<HeadLink> = Vec::new();
        for group in &self.groups {
            part_links.push(group.part.as_ref().map(|(_, chunks)| {
                let (to, from) = mpsc::channel();
                let (back, free) = mpsc::channel();
                let sends = group
                    .part
                    .as_ref()
                    .map_or(0, |(e, _)| e.binaural_sends_capacity());
                for _ in 0..BLOCKS_PER_GROUP + 1 {
                    let partials = (0..chunks.len())
                        .map(|_| Partial {
                            ears: [
                                vec![0.0; self.max_block_frames],
                                vec![0.0; self.max_block_frames],
                            ],
                            sends: Vec::with_capacity(sends),
                        })
                        .collect();
                    let _ = back.send(partials);
                }
                head_links.push((chunks.clone(), from, back));
                (to, free)
            }));
        }
        let abort = AtomicBool::new(false);
        let (sink, abort) = (&sink, &abort);
        let max_frames = self.max_block_frames;
        thread::scope(|scope| {
            let mut senders = Vec::with_capacity(self.groups.len());
            let mut workers = Vec::with_capacity(self.groups.len());
            for ((group, share), part_link) in self.groups.iter_mut().zip(shares).zip(part_links) {
                let (tx, rx) = mpsc::sync_channel::<Arc<Pooled>>(BLOCKS_PER_GROUP);
                senders.push(tx);
                let links = if group.foreign.is_empty() {
                    Vec::new()
                } else {
                    std::mem::take(&mut head_links)
                };
                let worker = Worker {
                    group,
                    share,
                    part_link,
                    head_links: links,
                };
                workers.push(scope.spawn(move || group_worker(worker, rx, sink, abort)));
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

/// A helper group's end of its link to the binaural group: partial mixes to send, and the
/// buffers coming back.
type PartLink = (mpsc::Sender<Partials>, mpsc::Receiver<Partials>);
/// The binaural group's end of one link: the chunks, partial mixes in, buffers back.
type HeadLink = (Vec<usize>, mpsc::Receiver<Partials>, mpsc::Sender<Partials>);

/// What one group's thread works with.
struct Worker<'a, S> {
    group: &'a mut Group,
    share: Vec<(usize, usize, &'a mut S)>,
    /// The group renders binaural chunks for the binaural group: its link there.
    part_link: Option<PartLink>,
    /// The binaural group: its links from the groups rendering its other chunks.
    head_links: Vec<HeadLink>,
}

/// One group's thread: render each block (first the binaural chunks the binaural group
/// waits for), hand the outputs to the sink. After an error it only drains its queue (so
/// blocks return to the pool) until the caller hangs up, and hangs up its chunk links (so
/// the thread at the other end stops waiting).
fn group_worker<S, E, F>(
    mut w: Worker<'_, S>,
    blocks: mpsc::Receiver<Arc<Pooled>>,
    sink: &F,
    abort: &AtomicBool,
) -> Result<(), E>
where
    F: Fn(usize, &[Vec<f32>], &mut S, Span) -> Result<(), E>,
{
    let mut result = Ok(());
    // Stopped by an error here or a chunk thread's end.
    let mut stopped = false;
    for block in blocks {
        if stopped {
            continue;
        }
        let span = block.span;
        if let (Some((engine, chunks)), Some((to, free))) = (&mut w.group.part, &w.part_link) {
            if let Some(inputs) = block.inputs.as_ref() {
                load(engine, inputs, span.frames);
            }
            engine.process_chunks(span.frames);
            let sent = free.recv().is_ok_and(|mut partials: Partials| {
                for (&c, part) in chunks.iter().zip(&mut partials) {
                    if let Some(src) = engine.binaural_chunk(c) {
                        for (d, x) in part.ears.iter_mut().zip(src) {
                            d[..span.frames].copy_from_slice(&x[..span.frames]);
                        }
                    }
                    part.sends.clear();
                    if let Some(sends) = engine.binaural_chunk_sends(c) {
                        part.sends.extend_from_slice(sends);
                    }
                    engine.clear_binaural_chunk_sends(c);
                }
                to.send(partials).is_ok()
            });
            if !sent {
                // The binaural group has ended (an error): nothing more to send.
                w.part_link = None;
            }
        }
        let Some(engine) = w.group.engine.as_mut() else {
            continue;
        };
        if let Some(inputs) = block.inputs.as_ref() {
            load(engine, inputs, span.frames);
        }
        drop(block);
        if w.group.foreign.is_empty() {
            engine.process(span.frames);
        } else {
            // The other chunks first: their room sends feed chunk 0's room as it renders.
            let mut first = true;
            for (chunks, from, back) in &w.head_links {
                let Ok(partials) = from.recv() else {
                    // A chunk thread has ended (its error is returned from it): stop.
                    stopped = true;
                    break;
                };
                for (&c, part) in chunks.iter().zip(&partials) {
                    if let Some(dst) = engine.binaural_chunk_mut(c) {
                        for (d, x) in dst.iter_mut().zip(&part.ears) {
                            d[..span.frames].copy_from_slice(&x[..span.frames]);
                        }
                    }
                    engine.import_binaural_sends(&part.sends, first);
                    first = false;
                }
                let _ = back.send(partials);
            }
            if stopped {
                abort.store(true, Ordering::Relaxed);
                w.head_links.clear();
                continue;
            }
            engine.process_sources(span.frames);
            engine.process_outputs(span.frames);
        }
        for (o, local, state) in w.share.iter_mut() {
            if let Err(e) = sink(*o, engine.output(*local), state, span) {
                result = Err(e);
                abort.store(true, Ordering::Relaxed);
                break;
            }
        }
        if result.is_err() {
            stopped = true;
            w.head_links.clear();
            w.part_link = None;
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

    #[test]
    fn chunks_go_to_the_least_loaded_thread() {
        let hrtf = Arc::new(HrtfSet::default_set(48000).expect("KEMAR"));
        let bin = OutputConfig::Binaural {
            hrtf,
            lfe_db: None,
            chain: Vec::new(),
        };
        let outs = vec![speakers("7.1.4"), bin.clone(), stereo("7.1.4")];
        let plan = |outs: &[OutputConfig], threads: usize, sizes: &[usize]| {
            let mut groups = plan_groups(outs, threads);
            let chunks = plan_chunks(outs, &mut groups, threads, sizes);
            (groups, chunks)
        };
        // Two cores, 128 objects: the big chunk with the binaural output, the small one
        // beside the 7.1.4 bus (loads 192 and 128 + 64).
        assert_eq!(
            plan(&outs, 2, &[96, 32]),
            (vec![vec![1], vec![0, 2]], vec![vec![0], vec![1]])
        );
        // One thread, or one chunk: no split.
        assert_eq!(
            plan(&outs, 1, &[96, 32]),
            (vec![vec![0, 1, 2]], vec![vec![0, 1]])
        );
        assert_eq!(
            plan(&outs, 2, &[16]),
            (vec![vec![1], vec![0, 2]], vec![vec![0], vec![]])
        );
        // Four threads: one chunk-only group (one per chunk beyond the first).
        assert_eq!(
            plan(&outs, 4, &[96, 32]),
            (
                vec![vec![1], vec![0, 2], vec![]],
                vec![vec![0], vec![], vec![1]]
            )
        );
        // Binaural only, two threads.
        assert_eq!(
            plan(std::slice::from_ref(&bin), 2, &[96, 32]),
            (vec![vec![0], vec![]], vec![vec![0], vec![1]])
        );
        // No binaural output: nothing to split.
        let no_bin = vec![speakers("7.1.4"), speakers("5.1")];
        assert_eq!(plan(&no_bin, 2, &[96, 32]).1, vec![vec![0, 1], vec![]]);
    }
}
