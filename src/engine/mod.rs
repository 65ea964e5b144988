//! The block renderer: objects and beds → speaker buses (full-sphere VBAP, as in
//! ITU-R BS.2127's split between gain calculation and gain application), a binaural bus
//! (HRTF convolution) and stereo fold-downs (ITU-R BS.775 Lo/Ro, Pro Logic II Lt/Rt),
//! each output through its own master chain and delayed so that all outputs stay
//! sample-aligned; buffers preallocated in `new`, nothing allocated in `process`.
//!
//! # Timing
//!
//! Gains are computed at fixed points of the *absolute* timeline — every
//! [`GAIN_INTERVAL_FRAMES`] frames and at every automation keyframe — and ramped linearly
//! per sample in between, so a moving object never clicks and a step in automation is
//! smoothed over at most one interval. Because the ramp points do not depend on how the
//! caller cuts the audio into blocks, the output is identical for every block size.
//!
//! The gain points of the segments that start in one block (up to `BATCH_SEGMENTS`)
//! are computed together, object by object, before the first of them is mixed: the same
//! gain calculations, in the same order for each object, as one segment at a time.

use crate::dsp::{Chain, Delay, DspError, ProcessorSettings};
use crate::scene::automation::Automation;
use crate::scene::geometry::{Direction, Position, RoomMap};
use crate::scene::layout::Layout;
use crate::scene::mix::ObjectControls;
use crate::spatial::binaural::{
    BinauralConfig, BinauralError, BinauralRenderer, Distance, HrtfSet, RoomRole,
};
use crate::spatial::downmix::{DownmixError, FoldDown, FoldDownConfig};
use crate::spatial::hoa::{HoaError, HoaFormat};
use crate::spatial::objectbased::decorrelate::{self, Decorrelator};
use crate::spatial::objectbased::{GainCalc, GainHint, ObjectMetadata, ObjectValues, set_metadata};
use crate::spatial::panner::{Channels, PanHint, Panner, PannerError};
use std::sync::Arc;
use thiserror::Error;

/// Most channels an output may have (stack arrays of channel slices in `process`).
pub const MAX_OUTPUT_CHANNELS: usize = 64;

/// Gains are recomputed at least this often (frames) and ramped in between: 5.3 ms at
/// 48 kHz. Until 4 December it was 64 frames. A moving object's gains then follow its
/// path to within the ramp's chord error (`tests/engine.rs`,
/// `moving_gains_follow_the_per_sample_path`: |Δg| ≤ 4.2e-3 and 0.001 dB of power at
/// 90°/s, 2.2e-2 and 0.07 dB for a 720°/s fly-by, against the gains of every sample's
/// position), far finer than BS.2127's own interpolation, which ramps gains across a
/// whole metadata block. The gain calculation is most of the engine's time, so four times
/// fewer gain points make it about three times faster.
pub const GAIN_INTERVAL_FRAMES: u64 = 256;

/// Segments whose gain points are computed together, object by object (see
/// [`Bus::prepare`]): one object's automation, lookup state and panner region stay in
/// the cache and its branches predictable while its gain points follow one another.
const BATCH_SEGMENTS: usize = 24;

/// Gain points held per object for one batch: the first segment's start, then every
/// segment's end.
const BATCH_SLOTS: usize = BATCH_SEGMENTS + 1;

/// 0, 1, 2, … as `f32`: the ramp's sample offsets, so the mixing loop has no integer to
/// float conversion and vectorises.
const RAMP_STEPS: [f32; GAIN_INTERVAL_FRAMES as usize] = {
    let mut steps = [0.0f32; GAIN_INTERVAL_FRAMES as usize];
    let mut i = 0;
    while i < steps.len() {
        steps[i] = i as f32;
        i += 1;
    }
    steps
};

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot pan to layout '{layout}': {source}")]
    Panner {
        layout: String,
        #[source]
        source: PannerError,
    },
    #[error("cannot render objects to layout '{layout}': {source}")]
    GainCalc {
        layout: String,
        #[source]
        source: crate::spatial::objectbased::GainCalcError,
    },
    #[error("output {output}: master chain: {source}")]
    Chain {
        output: String,
        /// Boxed: a processor's error names its parameter, value and range in full.
        #[source]
        source: Box<DspError>,
    },
    #[error("output {output}: fold-down: {source}")]
    FoldDown {
        output: String,
        #[source]
        source: DownmixError,
    },
    #[error("bed '{bed}': HOA decoder: {source}")]
    Hoa {
        bed: String,
        #[source]
        source: HoaError,
    },
    #[error("binaural output: {0}")]
    Binaural(#[from] BinauralError),
    #[error("invalid engine configuration: {parameter} = {value} ({allowed})")]
    Config {
        parameter: &'static str,
        value: String,
        allowed: &'static str,
    },
}

/// One mono object as the engine sees it: automation in frames.
#[derive(Debug, Clone)]
pub struct ObjectConfig {
    pub gain_db: Automation<f64>,
    pub position: Automation<Position>,
    pub size: Automation<f64>,
    pub mute: bool,
    /// Binaural render mode Off: bypass the HRTF, pan to the ears as plain stereo.
    pub binaural_bypass: bool,
    /// Room distance of the binaural render (binaural modes Near, Mid, Far; `Anechoic`
    /// is the HRTF alone); unused when bypassed.
    pub binaural_distance: Distance,
    /// The rest of the BS.2127 metadata (speaker outputs; the binaural path pans by
    /// position and size only).
    pub controls: ObjectControls,
}

/// A channel bed: its layout and static gain.
#[derive(Debug, Clone)]
pub struct BedConfig {
    pub name: String,
    pub layout: Layout,
    pub gain_db: f64,
    pub mute: bool,
    /// Binaural render of each channel (layout order): `Some(distance)` through the HRTF
    /// at that room distance, `None` (binaural mode Off) panned to the ears as plain
    /// stereo. Channels beyond the list are `Some(Anechoic)`; LFE channels are not
    /// rendered binaurally.
    pub binaural_distances: Vec<Option<Distance>>,
    /// An HOA bed (BS.2127 §9): the channels are HOA components, decoded to each speaker
    /// output by the AllRAD decoder and to the headphones through [`HOA_BINAURAL_LAYOUT`].
    pub hoa: Option<HoaFormat>,
    /// The frames `[start, end)` the bed sounds in (BS.2127 object timing): its input is
    /// silenced outside them. `None`: the whole time.
    pub active_frames: Option<(u64, u64)>,
    /// The position bounds of each channel (ADM DirectSpeakers, BS.2127 §8), in layout
    /// order: a channel no output speaker has by name goes to the nearest speaker inside
    /// them, if one is uniquely nearest. Empty, or `None` for a channel: no bounds.
    pub speaker_bounds: Vec<Option<crate::spatial::direct_speakers::SpeakerBounds>>,
    /// A linear gain for each channel, in layout order (ADM Matrix coefficients, may be
    /// negative); missing channels have gain 1.
    pub channel_gains: Vec<f64>,
}

impl BedConfig {
    /// The static gain of channel `c` (its [`BedConfig::channel_gains`] entry, or 1).
    fn channel_gain(&self, c: usize) -> f64 {
        self.channel_gains.get(c).copied().unwrap_or(1.0)
    }
}

/// The virtual layout an HOA bed is decoded to for the binaural output (each of its
/// speakers is an HRTF source).
pub const HOA_BINAURAL_LAYOUT: &str = "9+10+3";

/// An output of the engine.
#[derive(Clone)]
pub enum OutputConfig {
    /// A speaker render to a layout, through its master chain.
    Speakers {
        layout: Layout,
        chain: Vec<ProcessorSettings>,
    },
    /// Headphones: objects and bed channels convolved with HRTFs; LFE mixed into both
    /// ears at `lfe_db` (None: left out).
    Binaural {
        hrtf: Arc<HrtfSet>,
        lfe_db: Option<f64>,
        chain: Vec<ProcessorSettings>,
    },
    /// The render to `from`, folded down to 2.0, through its own master chain.
    Stereo {
        from: Layout,
        fold: FoldDownConfig,
        chain: Vec<ProcessorSettings>,
    },
}

impl OutputConfig {
    /// Speaker feeds for `layout` with an empty chain. Test and bench support (the
    /// `internals` feature).
    #[cfg(feature = "internals")]
    pub fn speakers(layout: Layout) -> OutputConfig {
        OutputConfig::Speakers {
            layout,
            chain: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub struct EngineConfig {
    pub sample_rate: u32,
    /// The most frames one `process` call renders.
    pub max_block_frames: usize,
    pub objects: Vec<ObjectConfig>,
    pub beds: Vec<BedConfig>,
    pub outputs: Vec<OutputConfig>,
}

/// How one bed reaches one speaker bus: a static (output × bed channel) matrix, stored
/// as its non-zero entries.
#[derive(Debug, Clone)]
struct BedRoute {
    /// (bed channel, bus channel, gain)
    taps: Vec<(usize, usize, f32)>,
}

/// Per-object gain state on one bus: the gains at both ends of the current ramp segment,
/// and the segment's ramp compacted to the channels it feeds.
#[derive(Debug, Clone)]
struct Ramp {
    /// Gains at two gain points (one layout's channels each): `gains[end]` at the current
    /// segment's end, the other at its start. A segment that continues the previous one
    /// starts from its end gains, so only its own end is computed (into the other half).
    gains: [Vec<f32>; 2],
    /// Channels whose gain is non-zero in `gains[k]` (bit `c`); all others are exactly 0,
    /// so a point source's gains are written and cleared a few channels at a time.
    nonzero: [u64; 2],
    end: usize,
    /// The ramp, for each channel whose gain is non-zero at either end of the segment:
    /// `(channel, start gain, per-frame slope)`, the first `n_active` entries.
    channel: Vec<usize>,
    start: Vec<f32>,
    slope: Vec<f32>,
    n_active: usize,
    /// Every slope is 0 (the gains do not move in this segment).
    fixed: bool,
}

/// One speaker bus: a layout, its gain calculation and the buffers it renders into.
struct Bus {
    layout: Layout,
    /// Object gains: the ITU-R BS.2127 gain calculation for this layout.
    gain_calc: GainCalc,
    /// Scratch for one object's direct gains (one layout's channels); all zero between
    /// gain calculations, so a point source's few channels are written and cleared.
    direct: Vec<f64>,
    buffers: Vec<Vec<f32>>,
    ramps: Vec<Ramp>,
    beds: Vec<BedRoute>,
    /// Linear level of each object whose gain is not automated.
    levels: Vec<Option<f64>>,
    /// Size (clamped to 0…1) of each object whose size is not automated.
    sizes: Vec<Option<f64>>,
    /// Per object: its BS.2127 metadata with the static controls filled in, when it has
    /// any beyond position and size (`None`: the point-source fast path).
    templates: Vec<Option<ObjectMetadata>>,
    /// Per object: the metadata of each later set of its switched controls
    /// (`controls.changes`, zones resolved against the layout), in order; empty for the
    /// objects whose controls never change.
    switched: Vec<Vec<ObjectMetadata>>,
    /// Scratch for one object's diffuse gains.
    diffuse: Vec<f64>,
    /// Gains per object per gain point: the layout's channels, then (when any object is
    /// diffuse) as many diffuse-bus channels.
    width: usize,
    /// The diffuse bus's decorrelation filters and the direct sound's matching delay.
    decorrelator: Option<(Decorrelator, crate::dsp::Delay)>,
    /// Per object that interpolates gains (BS.2127): its gain breakpoints (frame, whether
    /// gains move linearly to the next one) and the gains at the current segment's ends.
    interp: Vec<Option<GainInterp>>,
    /// Scratch: one gain point's gains (`width` channels).
    raw: Vec<f32>,
    /// Whether an enabled output reads this bus (see [`Engine::set_output_enabled`]).
    needed: bool,
    /// Skipped while not needed: the next segment recomputes every ramp from scratch.
    stale: bool,
    /// Per object: automation cursors and the gain calculation's lookup state.
    cursors: Vec<Cursors>,
    /// The CPU has AVX: mix with the AVX build of the mixing loops.
    avx: bool,
    /// The current batch's gain points (see [`Bus::prepare`]): per object, `BATCH_SLOTS`
    /// slots of `width` gains, and the mask of each slot's non-zero channels.
    batch_gains: Vec<f32>,
    batch_mask: Vec<u64>,
    /// Per slot: the channels last written (all others hold 0), cleared before the next.
    batch_written: Vec<u64>,
    /// Per object: its gain points are in the batch (moving, not muted, no BS.2127 gain
    /// interpolation); the others are computed segment by segment.
    batch_object: Vec<bool>,
    /// Number of segments in the current batch (its last end gains are in this slot).
    batch_len: usize,
    /// The engine's batch number these slots belong to.
    batch_id: u64,
}

/// One object's lookup caches (automation segments, hull triangle); they only speed up
/// lookups and never change a value.
#[derive(Debug, Clone, Copy, Default)]
struct Cursors {
    gain: usize,
    position: usize,
    size: usize,
    extent: usize,
    diffuse: usize,
    divergence: usize,
    pan: PanHint,
    /// The BS.2127 gain calculation's lookup state (region last found in).
    bs2127: GainHint,
}

/// BS.2127 gain interpolation of one object: gains move linearly between breakpoints
/// (instead of positions), and are computed only at the breakpoints.
#[derive(Debug, Clone)]
struct GainInterp {
    /// (frame, whether the gains ramp linearly from here to the next breakpoint).
    breaks: Vec<(u64, bool)>,
    /// The segment (start, end) whose end gains `from`, `to` hold.
    segment: Option<(u64, u64)>,
    /// The index in `breaks` of that segment's end.
    end_index: usize,
    from: Vec<f32>,
    to: Vec<f32>,
}

impl GainInterp {
    fn new(obj: &ObjectConfig, width: usize) -> GainInterp {
        use crate::scene::automation::{Automation, Interpolate, Interpolation};
        fn frames<T: Interpolate>(a: &Automation<T>, out: &mut Vec<u64>) {
            out.extend(a.keyframes().iter().map(|k| k.frame));
        }
        fn moving<T: Interpolate>(a: &Automation<T>, at: u64) -> bool {
            let keys = a.keyframes();
            let after = keys.partition_point(|k| k.frame <= at);
            after > 0 && after < keys.len() && keys[after - 1].interpolation != Interpolation::Step
        }
        let c = &obj.controls;
        let mut f = Vec::new();
        frames(&obj.position, &mut f);
        frames(&obj.gain_db, &mut f);
        frames(&obj.size, &mut f);
        f.extend(c.keyframe_frames());
        f.sort_unstable();
        f.dedup();
        let breaks = f
            .iter()
            .map(|&at| {
                let lin = moving(&obj.position, at)
                    || moving(&obj.gain_db, at)
                    || moving(&obj.size, at)
                    || c.extent.as_ref().is_some_and(|e| moving(e, at))
                    || moving(&c.diffuse, at)
                    || moving(&c.divergence, at)
                    || c.ramping_at(at);
                (at, lin)
            })
            .collect();
        GainInterp {
            breaks,
            segment: None,
            end_index: 0,
            from: vec![0.0; width],
            to: vec![0.0; width],
        }
    }

    /// The linear segment containing `frame`, if it is in one, and the index of its end
    /// breakpoint. The segment whose gains are held is tried first, then the one after
    /// it: gain points walk through the segments in order, and a search over every
    /// breakpoint (cache misses on a 128-object master) was half of this path's time.
    fn segment_at(&self, frame: u64) -> Option<(u64, u64, usize)> {
        if let Some((a, b)) = self.segment {
            if a <= frame && frame < b {
                return Some((a, b, self.end_index));
            }
            let k = self.end_index + 1;
            if frame >= b && k < self.breaks.len() && frame < self.breaks[k].0 {
                return self.breaks[k - 1].1.then_some((b, self.breaks[k].0, k));
            }
        }
        let k = self.breaks.partition_point(|b| b.0 <= frame);
        if k == 0 || k >= self.breaks.len() || !self.breaks[k - 1].1 {
            return None;
        }
        Some((self.breaks[k - 1].0, self.breaks[k].0, k))
    }
}

/// The renderer. Fill the inputs, call [`Engine::process`], read the outputs.
pub struct Engine {
    sample_rate: u32,
    max_block_frames: usize,
    objects: Vec<ObjectConfig>,
    /// Whether each object's gain, position and size never change.
    object_static: Vec<bool>,
    object_inputs: Vec<Vec<f32>>,
    bed_inputs: Vec<Vec<Vec<f32>>>,
    /// Per bed: the frames it sounds in (see [`BedConfig::active_frames`]).
    bed_windows: Vec<Option<(u64, u64)>>,
    buses: Vec<Bus>,
    binaural: Option<BinauralPath>,
    outputs: Vec<Output>,
    latency: usize,
    /// All keyframe frames of all objects, sorted, deduplicated.
    keyframes: Vec<u64>,
    /// Absolute frame of the next sample to render.
    position: u64,
    /// The current ramp segment [segment_start, segment_end).
    segment_start: u64,
    segment_end: u64,
    segment_valid: bool,
    /// The current batch: the ends of up to `BATCH_SEGMENTS` segments, all starting in
    /// the block being rendered; `batch_next` indexes the current segment.
    batch_ends: [u64; BATCH_SEGMENTS],
    batch_len: usize,
    batch_next: usize,
    /// Counts batches (a bus's slots are valid when their `batch_id` equals it).
    batch_id: u64,
}

/// Where an output's signal comes from.
enum Source {
    Bus(usize),
    Fold(usize, Box<FoldDown>),
    Binaural,
}

/// One output: its source, its own buffers, its master chain (with the alignment delay
/// at the end) and, for user layouts with distances, per-speaker delay and gain.
struct Output {
    source: Source,
    layout: Layout,
    buffers: Vec<Vec<f32>>,
    chain: Chain,
    /// Per-channel (delay line, gain) aligning a user layout's speakers at the listener.
    alignment: Vec<(Delay, f32)>,
    /// Disabled outputs are not rendered (see [`Engine::set_output_enabled`]).
    enabled: bool,
}

/// (HOA channel, gain) taps feeding one virtual speaker of an HOA bed.
type HoaTaps = Vec<(usize, f32)>;

/// The binaural bus: one HRTF renderer fed by every object and every non-LFE bed channel.
struct BinauralPath {
    renderer: ChunkedRenderer,
    /// Room positions → directions (the 7.1.4 room: the Atmos reference layout).
    room: RoomMap,
    /// Plain stereo panning for objects in binaural mode Off.
    stereo: Panner,
    /// Per object: level at the segment start and its per-frame slope.
    level_start: Vec<f32>,
    level_slope: Vec<f32>,
    /// Per object: level at the current segment's end.
    level_end: Vec<f32>,
    /// Per object: its level when it never changes (mute, or constant gain automation),
    /// computed once instead of a `powf` at every segment.
    constant_levels: Vec<Option<f32>>,
    /// (bed, channel, renderer source, gain) for the non-LFE bed channels.
    bed_sources: Vec<(usize, usize, usize, f32)>,
    /// HOA beds decoded to virtual speakers: (bed, renderer source, (channel, gain) taps).
    hoa_sources: Vec<(usize, usize, HoaTaps)>,
    /// (bed, LFE channel, gain) mixed into both ears, delayed by the renderer's latency.
    lfe_taps: Vec<(usize, usize, f32)>,
    lfe: Vec<f32>,
    lfe_delay: Delay,
    gains2: Vec<f64>,
    /// Whether the binaural output is enabled; skipped otherwise.
    needed: bool,
    /// Skipped while not needed: the next segment recomputes every level and direction.
    stale: bool,
    /// Per object: automation cursors and the stereo panner's triangle hint.
    cursors: Vec<Cursors>,
}

/// Sessions with more objects than this render the binaural path in two source chunks.
pub const MIN_BINAURAL_SPLIT_OBJECTS: usize = 16;

/// The objects in each source chunk of the binaural path of a session with `n_objects`
/// objects: up to [`MIN_BINAURAL_SPLIT_OBJECTS`] one chunk, else two, the first with
/// `⌈3·n_objects / 4⌉` objects, the second with the rest (and every bed and HOA source: the
/// last chunk holds them). Each chunk has its own HRTF renderer (sharing the precomputed
/// spectra); the mix keeps one virtual room, in chunk 0's renderer, which the other chunks'
/// room sends reach before it renders each partition ([`RoomRole`]; for two chunks the
/// sends are summed in chunk order); the chunks' partial ear mixes are summed in chunk
/// order. At most two chunks: a chunk's fixed costs (its buses' inverse FFTs) are those
/// of a few sources. The split
/// depends on the session only, never on threads, so a render's bits do not depend on how
/// many threads render the chunks (see [`crate::drivers::parallel`]). 3 : 1 is the split
/// that balances two cores for a render to binaural and one speaker bus (the bus and its
/// meters cost about half the binaural path).
pub fn binaural_chunk_sizes(n_objects: usize) -> Vec<usize> {
    if n_objects <= MIN_BINAURAL_SPLIT_OBJECTS {
        vec![n_objects]
    } else {
        let first = (3 * n_objects).div_ceil(4);
        vec![first, n_objects - first]
    }
}

/// The binaural path's HRTF rendering split into source chunks (see
/// [`binaural_chunk_sizes`]): the [`BinauralRenderer`] calls, with session source indices.
struct ChunkedRenderer {
    chunks: Vec<BinauralChunk>,
    latency: usize,
}

/// One source chunk: sources `first..end`, rendered here (`renderer`) or by another engine.
struct BinauralChunk {
    renderer: Option<BinauralRenderer>,
    first: usize,
    end: usize,
    /// The chunk's partial ear mix of the current block (L, R), `max_block_frames` long.
    ears: [Vec<f32>; 2],
}

impl BinauralChunk {
    /// Renders `run` frames of this chunk's sources (if it renders them here) into its
    /// partial mix at `at`; returns its renderer.
    fn render(
        &mut self,
        at: usize,
        run: usize,
        input: &mut impl FnMut(usize, usize, &mut [f32]),
    ) -> Option<&mut BinauralRenderer> {
        let r = self.renderer.as_mut()?;
        let [l, rt] = &mut self.ears;
        let first = self.first;
        r.process_with(
            |s, offset, dst| input(first + s, offset, dst),
            &mut l[at..at + run],
            &mut rt[at..at + run],
        );
        Some(r)
    }
}

impl ChunkedRenderer {
    /// `config.max_sources` is ignored: each chunk's renderer gets its own share of the
    /// `n_sources` sources. Chunks not in `owned` (`None`: all owned) get no renderer.
    fn new(
        hrtf: Arc<HrtfSet>,
        config: BinauralConfig,
        n_objects: usize,
        n_sources: usize,
        owned: Option<&[bool]>,
        block: usize,
    ) -> Result<ChunkedRenderer, EngineError> {
        let sizes = binaural_chunk_sizes(n_objects);
        let k = sizes.len();
        let mut chunks: Vec<BinauralChunk> = Vec::with_capacity(k);
        let mut first = 0;
        for (c, size) in sizes.into_iter().enumerate() {
            let end = if c + 1 == k {
                n_sources
            } else {
                (first + size).min(n_sources)
            };
            let n = (end - first).max(1);
            let renderer = if owned.is_none_or(|o| o.get(c).copied().unwrap_or(false)) {
                // The first renderer computes the HRTF spectra; the others share them.
                Some(match chunks.iter().find_map(|c| c.renderer.as_ref()) {
                    Some(t) => t.with_sources(n)?,
                    None => BinauralRenderer::new(
                        hrtf.clone(),
                        BinauralConfig {
                            max_sources: n,
                            ..config.clone()
                        },
                    )?,
                })
            } else {
                None
            };
            let mut renderer = renderer;
            if let Some(r) = renderer.as_mut().filter(|_| k > 1) {
                // One room for the whole mix, in chunk 0's renderer (the binaural output's
                // engine always renders chunk 0, see `crate::drivers::parallel`).
                let role = if c == 0 {
                    RoomRole::Import
                } else {
                    RoomRole::Export
                };
                r.set_room_role(role, block);
            }
            chunks.push(BinauralChunk {
                renderer,
                first,
                end,
                ears: [vec![0.0; block], vec![0.0; block]],
            });
            first = end;
        }
        let latency = chunks
            .iter()
            .find_map(|c| c.renderer.as_ref())
            .map_or(config.partition_frames, |r| r.latency());
        Ok(ChunkedRenderer { chunks, latency })
    }

    fn chunk_of(&self, source: usize) -> usize {
        self.chunks
            .iter()
            .position(|c| source < c.end)
            .unwrap_or(self.chunks.len() - 1)
    }

    /// Whether `source` is rendered by this engine.
    fn owns(&self, source: usize) -> bool {
        self.chunks[self.chunk_of(source)].renderer.is_some()
    }

    fn with(&mut self, source: usize, f: impl FnOnce(&mut BinauralRenderer, usize)) {
        let c = self.chunk_of(source);
        let chunk = &mut self.chunks[c];
        if let Some(r) = &mut chunk.renderer {
            f(r, source - chunk.first);
        }
    }

    fn set_direction(&mut self, source: usize, dir: Direction) {
        self.with(source, |r, s| r.set_direction(s, dir));
    }

    fn set_bypass(&mut self, source: usize, gains: Option<[f32; 2]>) {
        self.with(source, |r, s| r.set_bypass(s, gains));
    }

    fn set_distance(&mut self, source: usize, distance: Distance) {
        self.with(source, |r, s| r.set_distance(s, distance));
    }

    fn set_active(&mut self, source: usize, active: bool) {
        self.with(source, |r, s| r.set_active(s, active));
    }

    fn latency(&self) -> usize {
        self.latency
    }

    fn reset(&mut self) {
        for r in self.chunks.iter_mut().filter_map(|c| c.renderer.as_mut()) {
            r.reset();
        }
    }

    /// [`BinauralRenderer::restart`] at `position_frames` for every owned chunk.
    fn restart(&mut self, position_frames: u64) {
        for r in self.chunks.iter_mut().filter_map(|c| c.renderer.as_mut()) {
            r.restart(position_frames);
        }
    }

    /// Renders `run` frames of every owned chunk into its partial mix at `at`; `input` writes
    /// the sources' inputs in place (session source index, frame offset within the run,
    /// destination), as [`BinauralRenderer::process_with`] asks for them.
    /// Chunk 0, which has the mix's room, renders last: the others' room sends of the
    /// partitions they finish are handed to it first (when it renders here too).
    fn process(&mut self, at: usize, run: usize, mut input: impl FnMut(usize, usize, &mut [f32])) {
        let Some((owner, others)) = self.chunks.split_first_mut() else {
            return;
        };
        for (i, chunk) in others.iter_mut().enumerate() {
            if let Some(r) = chunk.render(at, run, &mut input)
                && let Some(o) = &mut owner.renderer
            {
                o.import_room_sends(r.exported_room_sends(), i == 0);
                r.clear_exported_room_sends();
            }
        }
        owner.render(at, run, &mut input);
    }

    /// Writes the sum of the chunks' partial mixes, in chunk order, to `ears` (L, R).
    fn sum_into(&self, ears: &mut [Vec<f32>], frames: usize) {
        for (e, ear) in ears.iter_mut().take(2).enumerate() {
            let out = &mut ear[..frames];
            out.copy_from_slice(&self.chunks[0].ears[e][..frames]);
            for chunk in &self.chunks[1..] {
                for (o, &x) in out.iter_mut().zip(&chunk.ears[e][..frames]) {
                    *o += x;
                }
            }
        }
    }
}

/// A fixed array of empty channel slices, filled with the real ones without allocating.
fn slices(bufs: &[Vec<f32>], frames: usize) -> [&[f32]; MAX_OUTPUT_CHANNELS] {
    let mut out: [&[f32]; MAX_OUTPUT_CHANNELS] = [&[]; MAX_OUTPUT_CHANNELS];
    for (slot, b) in out.iter_mut().zip(bufs) {
        *slot = &b[..frames];
    }
    out
}

fn slices_mut(bufs: &mut [Vec<f32>], frames: usize) -> [&mut [f32]; MAX_OUTPUT_CHANNELS] {
    let mut out: [&mut [f32]; MAX_OUTPUT_CHANNELS] = std::array::from_fn(|_| &mut [][..]);
    for (slot, b) in out.iter_mut().zip(bufs.iter_mut()) {
        *slot = &mut b[..frames];
    }
    out
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::build(config, false, None)
    }

    /// [`Engine::new`] for an offline render, where latency does not matter: the binaural
    /// path uses [`BinauralConfig::offline`]'s long partitions (about 2.5× faster for many
    /// moving objects; static sources render the same convolution to float rounding, moving
    /// ones update their filters once per partition). The engine's latency is larger.
    pub fn new_offline(config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::build(config, true, None)
    }

    /// [`Engine::new`] (`offline`: [`Engine::new_offline`]) whose binaural path renders only
    /// the source chunks `owned[c]` (see [`binaural_chunk_sizes`]); the others' partial
    /// mixes are left to another engine and handed in with [`Engine::binaural_chunk_mut`]
    /// before [`Engine::process_outputs`]. For [`crate::drivers::parallel`].
    pub(crate) fn new_chunked(
        config: EngineConfig,
        offline: bool,
        owned: &[bool],
    ) -> Result<Engine, EngineError> {
        Engine::build(config, offline, Some(owned))
    }

    fn build(
        config: EngineConfig,
        offline: bool,
        owned: Option<&[bool]>,
    ) -> Result<Engine, EngineError> {
        if config.max_block_frames == 0 || config.max_block_frames > 1 << 16 {
            return Err(EngineError::Config {
                parameter: "max_block_frames",
                value: config.max_block_frames.to_string(),
                allowed: "1 to 65536",
            });
        }
        if !(8000..=384_000).contains(&config.sample_rate) {
            return Err(EngineError::Config {
                parameter: "sample_rate",
                value: config.sample_rate.to_string(),
                allowed: "8000 to 384000 Hz",
            });
        }
        let rate = config.sample_rate;
        let block = config.max_block_frames;
        let stereo_layout = Layout::builtin("2.0").map_err(|_| EngineError::Config {
            parameter: "layout",
            value: "2.0".into(),
            allowed: "the built-in 2.0 layout",
        })?;
        let mut buses: Vec<Bus> = Vec::new();
        let bus_for = |layout: &Layout, buses: &mut Vec<Bus>| -> Result<usize, EngineError> {
            match buses.iter().position(|b| b.layout == *layout) {
                Some(i) => Ok(i),
                None => {
                    buses.push(Bus::new(layout, &config.objects, &config.beds, block)?);
                    Ok(buses.len() - 1)
                }
            }
        };
        let mut binaural = None;
        let mut outputs = Vec::new();
        for out in &config.outputs {
            let (source, layout, chain_cfg) = match out {
                OutputConfig::Speakers { layout, chain } => (
                    Source::Bus(bus_for(layout, &mut buses)?),
                    layout.clone(),
                    chain,
                ),
                OutputConfig::Stereo { from, fold, chain } => {
                    let bus = bus_for(from, &mut buses)?;
                    let fold = FoldDown::new(from, &stereo_layout, fold, rate, block).map_err(
                        |source| EngineError::FoldDown {
                            output: format!("stereo from {}", from.name),
                            source,
                        },
                    )?;
                    (
                        Source::Fold(bus, Box::new(fold)),
                        stereo_layout.clone(),
                        chain,
                    )
                }
                OutputConfig::Binaural {
                    hrtf,
                    lfe_db,
                    chain,
                } => {
                    if binaural.is_none() {
                        binaural = Some(BinauralPath::new(
                            hrtf.clone(),
                            *lfe_db,
                            &config,
                            &stereo_layout,
                            offline,
                            owned,
                        )?);
                    }
                    (Source::Binaural, stereo_layout.clone(), chain)
                }
            };
            let name = match &source {
                Source::Binaural => "binaural".to_string(),
                Source::Fold(..) => "stereo".to_string(),
                Source::Bus(_) => layout.name.clone(),
            };
            let chain =
                Chain::new(chain_cfg, rate, layout.num_channels(), block).map_err(|source| {
                    EngineError::Chain {
                        output: name,
                        source: Box::new(source),
                    }
                })?;
            let alignment = if matches!(source, Source::Bus(_)) {
                layout
                    .alignment(rate)
                    .iter()
                    .filter(|_| layout.channels.iter().any(|c| c.distance_m.is_some()))
                    .map(|a| Ok((Delay::new(a.delay_frames, 1)?, a.gain as f32)))
                    .collect::<Result<Vec<_>, DspError>>()
                    .map_err(|source| EngineError::Chain {
                        output: layout.name.clone(),
                        source: Box::new(source),
                    })?
            } else {
                Vec::new()
            };
            outputs.push(Output {
                source,
                buffers: vec![vec![0.0; block]; layout.num_channels()],
                layout,
                chain,
                alignment,
                enabled: true,
            });
        }
        // Latency compensation: every output is delayed to the slowest one.
        let path_latency = |o: &Output, bin: &Option<BinauralPath>| {
            o.chain.latency()
                + match o.source {
                    Source::Binaural => bin.as_ref().map_or(0, |b| b.renderer.latency()),
                    Source::Fold(b, ref f) => f.latency() + buses[b].latency(),
                    Source::Bus(b) => buses[b].latency(),
                }
        };
        let latency = outputs
            .iter()
            .map(|o| path_latency(o, &binaural))
            .max()
            .unwrap_or(0);
        for o in &mut outputs {
            let extra = latency - path_latency(o, &binaural);
            o.delay_by(extra)?;
        }
        let mut keyframes: Vec<u64> = config
            .objects
            .iter()
            .flat_map(|o| {
                o.position
                    .keyframes()
                    .iter()
                    .map(|k| k.frame)
                    .chain(o.gain_db.keyframes().iter().map(|k| k.frame))
                    .chain(o.size.keyframes().iter().map(|k| k.frame))
                    .chain(o.controls.keyframe_frames())
            })
            .collect();
        keyframes.sort_unstable();
        keyframes.dedup();
        let object_static = config
            .objects
            .iter()
            .map(|o| {
                o.position.is_constant()
                    && o.gain_db.is_constant()
                    && o.size.is_constant()
                    && o.controls.is_static()
            })
            .collect();
        Ok(Engine {
            sample_rate: rate,
            max_block_frames: block,
            object_static,
            object_inputs: vec![vec![0.0; block]; config.objects.len()],
            bed_inputs: config
                .beds
                .iter()
                .map(|b| vec![vec![0.0; block]; b.layout.num_channels()])
                .collect(),
            bed_windows: config.beds.iter().map(|b| b.active_frames).collect(),
            objects: config.objects,
            buses,
            binaural,
            outputs,
            latency,
            keyframes,
            position: 0,
            segment_start: 0,
            segment_end: 0,
            segment_valid: false,
            batch_ends: [0; BATCH_SEGMENTS],
            batch_len: 0,
            batch_next: 0,
            batch_id: 0,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn max_block_frames(&self) -> usize {
        self.max_block_frames
    }

    /// Number of objects. Test support (the `internals` feature).
    #[cfg(feature = "internals")]
    pub fn num_objects(&self) -> usize {
        self.objects.len()
    }

    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The input buffer of object `i` (`max_block_frames` long); fill the first `frames`.
    pub fn object_input(&mut self, i: usize) -> &mut [f32] {
        &mut self.object_inputs[i]
    }

    /// Exchanges the object input buffers with `buffers` when they match in number and
    /// length (one per object, `max_block_frames` long): hands a filled block to the engine
    /// without copying it (offline rendering on one thread). Otherwise copies `buffers` in.
    pub fn swap_object_inputs(&mut self, buffers: &mut Vec<Vec<f32>>) {
        let fits = buffers.len() == self.object_inputs.len()
            && buffers
                .iter()
                .zip(&self.object_inputs)
                .all(|(a, b)| a.len() == b.len());
        if fits {
            std::mem::swap(&mut self.object_inputs, buffers);
        } else {
            for (dst, src) in self.object_inputs.iter_mut().zip(buffers.iter()) {
                let n = dst.len().min(src.len());
                dst[..n].copy_from_slice(&src[..n]);
            }
        }
    }

    /// The input buffer of channel `ch` of bed `b`, in the bed layout's channel order.
    pub fn bed_input(&mut self, b: usize, ch: usize) -> &mut [f32] {
        &mut self.bed_inputs[b][ch]
    }

    /// Output `o`'s planar channels (layout order; binaural and stereo are L, R); the
    /// first `frames` of the last `process` call are valid.
    pub fn output(&self, o: usize) -> &[Vec<f32>] {
        &self.outputs[o].buffers
    }

    /// The layout of output `o` (2.0 for binaural and stereo outputs).
    pub fn output_layout(&self, o: usize) -> &Layout {
        &self.outputs[o].layout
    }

    /// Turns the rendering of output `o` on or off (all are on after `new`). A disabled
    /// output costs nothing: its master chain, fold-down or HRTF convolution, and any
    /// speaker bus only it reads, are skipped, and its buffers keep stale samples. When
    /// turned back on, its processing state is cleared (as by [`Engine::seek`]; a binaural
    /// output's renderer restarts on the timeline's partition grid and fades its input in,
    /// see [`BinauralRenderer::restart`]) and its gains are recomputed at the next gain
    /// point, so it needs a short warm-up (its latency plus the HRIR length) before it
    /// matches a render that never stopped, up to the limiter's release memory and the
    /// binaural room's reverberation of what it did not render.
    /// Live monitoring uses this to render only the monitor being listened to.
    pub fn set_output_enabled(&mut self, o: usize, enabled: bool) {
        let Some(out) = self.outputs.get_mut(o) else {
            return;
        };
        if out.enabled == enabled {
            return;
        }
        out.enabled = enabled;
        if enabled {
            out.chain.reset();
            if let Source::Fold(_, f) = &mut out.source {
                f.reset();
            }
            for (d, _) in &mut out.alignment {
                crate::dsp::Processor::reset(d);
            }
            if matches!(out.source, Source::Binaural)
                && let Some(b) = &mut self.binaural
            {
                b.renderer.restart(self.position);
                crate::dsp::Processor::reset(&mut b.lfe_delay);
            }
        }
        self.update_needed();
    }

    /// Recomputes which buses and whether the binaural path are read by an enabled output.
    fn update_needed(&mut self) {
        for (i, bus) in self.buses.iter_mut().enumerate() {
            let needed = self.outputs.iter().any(|o| {
                o.enabled && matches!(o.source, Source::Bus(b) | Source::Fold(b, _) if b == i)
            });
            if needed && !bus.needed {
                bus.stale = true;
            }
            bus.needed = needed;
        }
        if let Some(bin) = &mut self.binaural {
            let needed = self
                .outputs
                .iter()
                .any(|o| o.enabled && matches!(o.source, Source::Binaural));
            if needed && !bin.needed {
                bin.stale = true;
            }
            bin.needed = needed;
        }
        // A path switched back on starts a segment where the render stands (gains,
        // directions and levels from the automation there), not at the next gain point:
        // until then it would render with what it held when it was switched off.
        let stale =
            self.buses.iter().any(|b| b.stale) || self.binaural.as_ref().is_some_and(|b| b.stale);
        if stale {
            self.segment_valid = false;
        }
    }

    /// Absolute frame of the next sample to render.
    pub fn position_frames(&self) -> u64 {
        self.position
    }

    /// Moves the timeline to `frame` (automation is re-evaluated there; filter, delay and
    /// dynamics state is cleared).
    pub fn seek(&mut self, frame: u64) {
        self.position = frame;
        self.segment_valid = false;
        for o in &mut self.outputs {
            o.chain.reset();
            if let Source::Fold(_, f) = &mut o.source {
                f.reset();
            }
            for (d, _) in &mut o.alignment {
                crate::dsp::Processor::reset(d);
            }
        }
        if let Some(b) = &mut self.binaural {
            // Before frame 0 the input is silent, so a render from the start is complete;
            // anywhere else the renderer lacks the input's past and fades it in.
            if frame == 0 {
                b.renderer.reset();
            } else {
                b.renderer.restart(frame);
            }
            crate::dsp::Processor::reset(&mut b.lfe_delay);
        }
        for bus in &mut self.buses {
            bus.reset_diffuse();
        }
    }

    /// Frames of delay between the inputs and every output (all outputs are aligned).
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Delays every output further so that the engine's latency becomes `frames`: engines
    /// that render different outputs of one session (see [`crate::drivers::parallel`]) are aligned to
    /// the slowest of them. Setup work (it allocates); `frames` below the current latency
    /// is an error.
    pub fn delay_to_latency(&mut self, frames: usize) -> Result<(), EngineError> {
        if frames < self.latency {
            return Err(EngineError::Config {
                parameter: "latency",
                value: frames.to_string(),
                allowed: "at least the engine's own latency",
            });
        }
        for o in &mut self.outputs {
            o.delay_by(frames - self.latency)?;
        }
        self.latency = frames;
        Ok(())
    }

    /// Renders `frames` frames (≤ `max_block_frames`) from the inputs into the outputs.
    pub fn process(&mut self, frames: usize) {
        self.process_sources(frames);
        self.process_outputs(frames);
    }

    /// [`Engine::process`] for an engine that only renders binaural source chunks for
    /// another (see [`Engine::new_chunked`]): the chunks' partial mixes, no outputs.
    pub(crate) fn process_chunks(&mut self, frames: usize) {
        self.process_sources(frames);
        self.position += frames.min(self.max_block_frames) as u64;
    }

    /// Binaural source chunk `c`'s partial ear mix (L, R) of the last block
    /// (`max_block_frames` long); `None` without a binaural path or such a chunk.
    pub(crate) fn binaural_chunk(&self, c: usize) -> Option<&[Vec<f32>; 2]> {
        let chunks = &self.binaural.as_ref()?.renderer.chunks;
        chunks.get(c).map(|ch| &ch.ears)
    }

    /// [`Engine::binaural_chunk`] to fill: another engine's rendering of a chunk this one
    /// does not render, handed in before [`Engine::process_outputs`].
    pub(crate) fn binaural_chunk_mut(&mut self, c: usize) -> Option<&mut [Vec<f32>; 2]> {
        let chunks = &mut self.binaural.as_mut()?.renderer.chunks;
        chunks.get_mut(c).map(|ch| &mut ch.ears)
    }

    /// The room sends that binaural chunk `c`, rendered here for another engine, queued
    /// since [`Engine::clear_binaural_chunk_sends`] (chunk 0's renderer has the mix's
    /// room: see [`RoomRole`]); `None` if this engine does not render chunk `c`.
    pub(crate) fn binaural_chunk_sends(&self, c: usize) -> Option<&[f32]> {
        let chunks = &self.binaural.as_ref()?.renderer.chunks;
        Some(chunks.get(c)?.renderer.as_ref()?.exported_room_sends())
    }

    /// Forgets chunk `c`'s queued room sends once handed on.
    pub(crate) fn clear_binaural_chunk_sends(&mut self, c: usize) {
        let chunks = self.binaural.as_mut().map(|b| &mut b.renderer.chunks);
        if let Some(r) = chunks.and_then(|ch| ch.get_mut(c)?.renderer.as_mut()) {
            r.clear_exported_room_sends();
        }
    }

    /// Hands another engine's room sends of a chunk (in chunk order; `first`: the first
    /// chunk handing in for this block) to chunk 0's renderer, before
    /// [`Engine::process_sources`] renders the block.
    pub(crate) fn import_binaural_sends(&mut self, sends: &[f32], first: bool) {
        let chunks = self.binaural.as_mut().map(|b| &mut b.renderer.chunks);
        if let Some(r) = chunks.and_then(|ch| ch.first_mut()?.renderer.as_mut()) {
            r.import_room_sends(sends, first);
        }
    }

    /// The most room-send samples one chunk queues in a block (for the buffers carrying
    /// them between engines).
    pub(crate) fn binaural_sends_capacity(&self) -> usize {
        let chunks = self.binaural.as_ref().map(|b| &b.renderer.chunks);
        chunks
            .and_then(|ch| ch.iter().find_map(|c| c.renderer.as_ref()))
            .map_or(0, |r| r.room_sends_capacity(self.max_block_frames))
    }

    /// The first half of [`Engine::process`]: the speaker buses and the binaural path's
    /// source chunks (their partial mixes), not yet the outputs.
    pub(crate) fn process_sources(&mut self, frames: usize) {
        let frames = frames.min(self.max_block_frames);
        // Beds with a time window: silent outside it (exact to the sample).
        for (window, inputs) in self.bed_windows.iter().zip(&mut self.bed_inputs) {
            if let &Some((start, end)) = window {
                let from = start.saturating_sub(self.position).min(frames as u64) as usize;
                let to = end.saturating_sub(self.position).min(frames as u64) as usize;
                for ch in inputs.iter_mut() {
                    ch[..from].fill(0.0);
                    ch[to.max(from)..frames].fill(0.0);
                }
            }
        }
        for bus in self.buses.iter_mut().filter(|b| b.needed) {
            for ch in &mut bus.buffers {
                ch[..frames].fill(0.0);
            }
        }
        let mut done = 0usize;
        while done < frames {
            let now = self.position + done as u64;
            if !self.segment_valid || now >= self.segment_end {
                self.start_segment(now, self.position + frames as u64);
            }
            let run = ((self.segment_end - now) as usize).min(frames - done);
            let offset = (now - self.segment_start) as usize;
            for bus in self.buses.iter_mut().filter(|b| b.needed) {
                bus.mix_objects(&self.object_inputs, done, run, offset);
            }
            if let Some(bin) = self.binaural.as_mut().filter(|b| b.needed) {
                bin.run(
                    &self.objects,
                    &self.object_inputs,
                    &self.bed_inputs,
                    done,
                    run,
                    offset,
                );
            }
            done += run;
        }
        for bus in self.buses.iter_mut().filter(|b| b.needed) {
            bus.mix_beds(&self.bed_inputs, frames);
            bus.mix_diffuse(frames);
        }
    }

    /// The second half of [`Engine::process`]: every output from its bus or from the sum of
    /// the binaural chunks, through its chain; then the timeline moves on.
    pub(crate) fn process_outputs(&mut self, frames: usize) {
        let frames = frames.min(self.max_block_frames);
        for o in self.outputs.iter_mut().filter(|o| o.enabled) {
            match &mut o.source {
                Source::Bus(b) => {
                    for (dst, src) in o.buffers.iter_mut().zip(&self.buses[*b].buffers) {
                        dst[..frames].copy_from_slice(&src[..frames]);
                    }
                }
                Source::Fold(b, fold) => {
                    let input = slices(&self.buses[*b].buffers, frames);
                    let n_in = self.buses[*b].buffers.len();
                    let mut output = slices_mut(&mut o.buffers, frames);
                    fold.process(&input[..n_in], &mut output[..2]);
                }
                Source::Binaural => {
                    if let Some(bin) = &mut self.binaural {
                        bin.renderer.sum_into(&mut o.buffers, frames);
                        bin.mix_lfe(&self.bed_inputs, frames, &mut o.buffers);
                    }
                }
            }
            let n = o.buffers.len();
            let mut chans = slices_mut(&mut o.buffers, frames);
            o.chain.process(&mut chans[..n]);
            for ((delay, gain), ch) in o.alignment.iter_mut().zip(chans.iter_mut()) {
                crate::dsp::Processor::process(delay, std::slice::from_mut(ch));
                for x in ch.iter_mut() {
                    *x *= *gain;
                }
            }
        }
        self.position += frames as u64;
    }

    /// The ramp segment `(start, end)` that contains `now`: its end is the next gain
    /// point (interval grid or keyframe), its start the latest one ≤ `now`.
    fn segment_bounds(&self, now: u64) -> (u64, u64) {
        let grid_end = (now / GAIN_INTERVAL_FRAMES + 1) * GAIN_INTERVAL_FRAMES;
        let grid_start = grid_end - GAIN_INTERVAL_FRAMES;
        // The segment starts at the latest gain point ≤ now, so that a seek or block
        // boundary inside a segment reproduces the same ramp.
        let k = self.keyframes.partition_point(|&f| f <= now);
        let key_before = if k > 0 {
            Some(self.keyframes[k - 1])
        } else {
            None
        };
        let key_after = self.keyframes.get(k).copied();
        let start = key_before.map_or(grid_start, |f| f.max(grid_start));
        let end = key_after.map_or(grid_end, |f| f.min(grid_end));
        (start, end)
    }

    /// Begins the ramp segment that contains `now` (in the block that ends before
    /// `block_end`); gains at both ends come from the automation. The gain points of
    /// the segments that follow in the block are computed with the first (a batch).
    fn start_segment(&mut self, now: u64, block_end: u64) {
        let (start, end) = self.segment_bounds(now);
        let continuing_all = self.segment_valid && start == self.segment_end;
        if !continuing_all || self.batch_next >= self.batch_len {
            // A new batch: this segment and those starting after it in this block (each
            // begins at the previous one's end), as the loop in `process` will meet them.
            self.batch_ends[0] = end;
            let mut n = 1;
            let mut at = end;
            while n < BATCH_SEGMENTS && at < block_end {
                let (_, e) = self.segment_bounds(at);
                self.batch_ends[n] = e;
                n += 1;
                at = e;
            }
            self.batch_len = n;
            self.batch_next = 0;
            self.batch_id += 1;
            for bus in self.buses.iter_mut().filter(|b| b.needed) {
                let continuing = continuing_all && !bus.stale;
                bus.prepare(
                    &self.objects,
                    &self.object_static,
                    (!continuing).then_some(start),
                    &self.batch_ends[..n],
                    self.batch_id,
                );
            }
        }
        let slot = self.batch_next;
        self.batch_next += 1;
        for bus in self.buses.iter_mut().filter(|b| b.needed) {
            let continuing = continuing_all && !bus.stale;
            bus.stale = false;
            // The batch holds this segment's gains (slots `slot`, `slot + 1`) for the
            // moving objects; every bus is prepared at the first segment of each block.
            let in_batch = bus.batch_id == self.batch_id;
            for (i, obj) in self.objects.iter().enumerate() {
                if obj.mute {
                    bus.ramps[i].n_active = 0;
                    continue;
                }
                if self.object_static[i] && continuing {
                    // Static objects keep their gains; only the segment origin moves.
                    continue;
                }
                let g_start = if continuing {
                    None // the previous segment's end gains are this one's start
                } else {
                    Some(start)
                };
                if in_batch && bus.batch_object[i] {
                    bus.ramp_from_batch(i, slot, end - start);
                } else {
                    bus.compute_ramp(i, obj, g_start, end, start);
                }
            }
        }
        if let Some(bin) = self.binaural.as_mut().filter(|b| b.needed) {
            let continuing = continuing_all && !bin.stale;
            bin.stale = false;
            bin.start_segment(&self.objects, &self.object_static, continuing, start, end);
        }
        self.segment_start = start;
        self.segment_end = end;
        self.segment_valid = true;
    }
}

impl Output {
    /// Appends a delay of `frames` (none for 0) to the master chain: latency alignment.
    fn delay_by(&mut self, frames: usize) -> Result<(), EngineError> {
        if frames > 0 {
            let delay = Delay::new(frames, self.layout.num_channels()).map_err(|source| {
                EngineError::Chain {
                    output: self.layout.name.clone(),
                    source: Box::new(source),
                }
            })?;
            self.chain.push(Box::new(delay));
        }
        Ok(())
    }
}

impl BinauralPath {
    fn new(
        hrtf: Arc<HrtfSet>,
        lfe_db: Option<f64>,
        config: &EngineConfig,
        stereo_layout: &Layout,
        offline: bool,
        owned: Option<&[bool]>,
    ) -> Result<BinauralPath, EngineError> {
        let mut bed_sources = Vec::new();
        let mut lfe_taps = Vec::new();
        let n_obj = config.objects.len();
        let mut hoa_beds = Vec::new();
        for (b, bed) in config.beds.iter().enumerate() {
            let level = if bed.mute {
                0.0
            } else {
                10f64.powf(bed.gain_db / 20.0) as f32
            };
            if let Some(hoa) = &bed.hoa {
                hoa_beds.push((b, hoa, level));
                continue;
            }
            for (c, ch) in bed.layout.channels.iter().enumerate() {
                let level = level * bed.channel_gain(c) as f32;
                if ch.lfe {
                    if let Some(db) = lfe_db {
                        lfe_taps.push((b, c, level * 10f64.powf(db / 20.0) as f32));
                    }
                } else {
                    bed_sources.push((b, c, n_obj + bed_sources.len(), level));
                }
            }
        }
        // HOA beds: decoded (BS.2127 §9) to a virtual layout, each speaker an HRTF source.
        let mut hoa_sources = Vec::new();
        let mut hoa_directions = Vec::new();
        if !hoa_beds.is_empty() {
            let virtual_layout =
                Layout::builtin(HOA_BINAURAL_LAYOUT).map_err(|_| EngineError::Config {
                    parameter: "HOA_BINAURAL_LAYOUT",
                    value: HOA_BINAURAL_LAYOUT.into(),
                    allowed: "a built-in layout",
                })?;
            let gain_calc =
                GainCalc::new(&virtual_layout).map_err(|source| EngineError::GainCalc {
                    layout: virtual_layout.name.clone(),
                    source,
                })?;
            for (b, hoa, level) in hoa_beds {
                let d = hoa_decoder(&config.beds[b].name, hoa, &virtual_layout, &gain_calc)?;
                for (s, row) in d.iter().enumerate() {
                    let ch = &virtual_layout.channels[s];
                    if ch.lfe {
                        continue;
                    }
                    let taps = row
                        .iter()
                        .enumerate()
                        .filter(|(_, g)| **g != 0.0)
                        .map(|(c, &g)| (c, g as f32 * level))
                        .collect();
                    let src = n_obj + bed_sources.len() + hoa_sources.len();
                    hoa_sources.push((b, src, taps));
                    hoa_directions.push(ch.direction());
                }
            }
        }
        // Renderer sources: the objects, then the bed channels, then the HOA beds' virtual
        // speakers, each in order (`run` finds a source's kind from its index).
        debug_assert!(
            bed_sources
                .iter()
                .enumerate()
                .all(|(k, s)| s.2 == n_obj + k)
        );
        debug_assert!(
            (hoa_sources.iter().enumerate()).all(|(k, s)| s.1 == n_obj + bed_sources.len() + k)
        );
        let n_sources = (n_obj + bed_sources.len() + hoa_sources.len()).max(1);
        let binaural_config = BinauralConfig::new(config.sample_rate, n_sources);
        let binaural_config = if offline {
            binaural_config.offline(&hrtf)
        } else {
            binaural_config.live(&hrtf)
        };
        let mut renderer = ChunkedRenderer::new(
            hrtf,
            binaural_config,
            n_obj,
            n_sources,
            owned,
            config.max_block_frames,
        )?;
        let stereo = Panner::new(stereo_layout).map_err(|source| EngineError::Panner {
            layout: stereo_layout.name.clone(),
            source,
        })?;
        let mut gains2 = vec![0.0; 2];
        for &(b, c, src, _) in &bed_sources {
            let dir = config.beds[b].layout.channels[c].direction();
            renderer.set_direction(src, dir);
            match config.beds[b].binaural_distances.get(c).copied() {
                Some(None) => {
                    stereo.point_gains(dir, &mut gains2);
                    renderer.set_bypass(src, Some([gains2[0] as f32, gains2[1] as f32]));
                }
                distance => renderer.set_distance(src, distance.flatten().unwrap_or_default()),
            }
        }
        for (&(b, src, _), &dir) in hoa_sources.iter().zip(&hoa_directions) {
            renderer.set_direction(src, dir);
            let distance = config.beds[b]
                .binaural_distances
                .first()
                .copied()
                .flatten()
                .unwrap_or_default();
            renderer.set_distance(src, distance);
        }
        for (i, obj) in config.objects.iter().enumerate() {
            renderer.set_distance(i, obj.binaural_distance);
        }
        let latency = renderer.latency();
        let room = Layout::builtin("7.1.4")
            .map(|l| l.room_map())
            .unwrap_or_default();
        Ok(BinauralPath {
            renderer,
            room,
            stereo,
            level_start: vec![0.0; n_obj],
            level_slope: vec![0.0; n_obj],
            level_end: vec![0.0; n_obj],
            constant_levels: config
                .objects
                .iter()
                .map(|o| (o.mute || o.gain_db.is_constant()).then(|| Self::level_at(o, 0, &mut 0)))
                .collect(),
            bed_sources,
            hoa_sources,
            lfe_taps,
            lfe: vec![0.0; config.max_block_frames],
            lfe_delay: Delay::new(latency, 1).map_err(|source| EngineError::Chain {
                output: "binaural".into(),
                source: Box::new(source),
            })?,
            gains2,
            needed: true,
            stale: false,
            cursors: vec![Cursors::default(); n_obj],
        })
    }

    fn direction(&self, pos: Position) -> Direction {
        match pos {
            Position::Cartesian { x, y, z } => self.room.cartesian_to_direction(x, y, z).direction,
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                ..
            } => Direction::new(azimuth_deg, elevation_deg),
        }
    }

    fn level_at(obj: &ObjectConfig, frame: u64, cursor: &mut usize) -> f32 {
        if obj.mute {
            0.0
        } else {
            10f64.powf(obj.gain_db.value_at_cursor(frame as f64, cursor) / 20.0) as f32
        }
    }

    /// Sets directions (at the segment start) and level ramps for the segment.
    fn start_segment(
        &mut self,
        objects: &[ObjectConfig],
        object_static: &[bool],
        continuing: bool,
        start: u64,
        end: u64,
    ) {
        let len = (end - start) as f32;
        for (i, obj) in objects.iter().enumerate() {
            if (continuing && object_static[i]) || !self.renderer.owns(i) {
                continue;
            }
            let cur = &mut self.cursors[i];
            let (l0, l1) = match self.constant_levels[i] {
                Some(level) => (level, level),
                None => (
                    if continuing {
                        self.level_end[i]
                    } else {
                        Self::level_at(obj, start, &mut cur.gain)
                    },
                    Self::level_at(obj, end, &mut cur.gain),
                ),
            };
            self.level_start[i] = l0;
            self.level_end[i] = l1;
            self.level_slope[i] = (l1 - l0) / len;
            self.renderer.set_active(i, !obj.mute);
            let pos = obj
                .position
                .value_at_cursor(start as f64, &mut cur.position);
            if obj.binaural_bypass {
                self.stereo.position_gains_with_hint(
                    pos,
                    obj.size
                        .value_at_cursor(start as f64, &mut cur.size)
                        .clamp(0.0, 1.0),
                    &mut cur.pan,
                    &mut self.gains2,
                );
                self.renderer
                    .set_bypass(i, Some([self.gains2[0] as f32, self.gains2[1] as f32]));
            } else {
                let dir = self.direction(pos);
                self.renderer.set_direction(i, dir);
            }
        }
    }

    /// Renders `run` frames (within one segment) starting at buffer offset `at`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        objects: &[ObjectConfig],
        object_inputs: &[Vec<f32>],
        bed_inputs: &[Vec<Vec<f32>>],
        at: usize,
        run: usize,
        offset: usize,
    ) {
        let steps = &RAMP_STEPS[offset..offset + run];
        let n_obj = objects.len();
        let n_beds = self.bed_sources.len();
        let (level_start, level_slope) = (&self.level_start, &self.level_slope);
        let (bed_sources, hoa_sources) = (&self.bed_sources, &self.hoa_sources);
        // Each source's input is written straight into the renderer's buffer: objects at
        // their level ramp, bed channels at their level, HOA beds decoded to their virtual
        // speakers; anything else (the placeholder source of an empty session) is silence.
        self.renderer.process(at, run, |source, k0, dst| {
            let (from, n) = (at + k0, dst.len());
            if source < n_obj {
                let (l0, slope) = (level_start[source], level_slope[source]);
                let x = &object_inputs[source][from..from + n];
                for ((d, &x), &k) in dst.iter_mut().zip(x).zip(&steps[k0..k0 + n]) {
                    *d = x * (l0 + slope * k);
                }
            } else if let Some(&(b, c, _, level)) = bed_sources.get(source - n_obj) {
                for (d, &x) in dst.iter_mut().zip(&bed_inputs[b][c][from..from + n]) {
                    *d = x * level;
                }
            } else if let Some((b, _, taps)) = hoa_sources.get(source - n_obj - n_beds) {
                dst.fill(0.0);
                for &(c, g) in taps {
                    for (d, &x) in dst.iter_mut().zip(&bed_inputs[*b][c][from..from + n]) {
                        *d += x * g;
                    }
                }
            } else {
                dst.fill(0.0);
            }
        });
    }

    /// Adds the bed LFE (at the session's level, delayed like the HRTF path) to both ears.
    fn mix_lfe(&mut self, bed_inputs: &[Vec<Vec<f32>>], frames: usize, ears: &mut [Vec<f32>]) {
        if self.lfe_taps.is_empty() {
            return;
        }
        let lfe = &mut self.lfe[..frames];
        lfe.fill(0.0);
        for &(b, c, g) in &self.lfe_taps {
            for (d, &x) in lfe.iter_mut().zip(&bed_inputs[b][c][..frames]) {
                *d += x * g;
            }
        }
        crate::dsp::Processor::process(&mut self.lfe_delay, std::slice::from_mut(&mut &mut *lfe));
        for ear in ears.iter_mut() {
            for (o, &x) in ear[..frames].iter_mut().zip(lfe.iter()) {
                *o += x;
            }
        }
    }
}

impl Bus {
    fn new(
        layout: &Layout,
        objects: &[ObjectConfig],
        beds: &[BedConfig],
        block: usize,
    ) -> Result<Bus, EngineError> {
        let n_obj = objects.len();
        let gain_calc = GainCalc::new(layout).map_err(|source| EngineError::GainCalc {
            layout: layout.name.clone(),
            source,
        })?;
        let nch = layout.num_channels();
        let any_diffuse = objects.iter().any(|o| o.controls.has_diffuse());
        let width = if any_diffuse { 2 * nch } else { nch };
        if width > 64 {
            return Err(EngineError::Config {
                parameter: "layout",
                value: format!("{} ({nch} channels) with diffuse objects", layout.name),
                allowed: "at most 32 channels when an object has a diffuse part",
            });
        }
        let decorrelator = if any_diffuse {
            let names: Vec<String> = layout.channels.iter().map(|c| c.name.clone()).collect();
            let filters = decorrelate::layout_filters(&names);
            let delay =
                crate::dsp::Delay::new(decorrelate::LATENCY_FRAMES, nch).map_err(|source| {
                    EngineError::Chain {
                        output: layout.name.clone(),
                        source: Box::new(source),
                    }
                })?;
            Some((Decorrelator::new(&filters), delay))
        } else {
            None
        };
        let ramp = Ramp {
            gains: [vec![0.0; width], vec![0.0; width]],
            nonzero: [0; 2],
            end: 0,
            channel: vec![0; width],
            start: vec![0.0; width],
            slope: vec![0.0; width],
            n_active: 0,
            fixed: true,
        };
        let routes = beds
            .iter()
            .map(|bed| bed_route(bed, layout, &gain_calc))
            .collect::<Result<_, _>>()?;
        let templates = objects
            .iter()
            .map(|o| {
                (o.controls != ObjectControls::default())
                    .then(|| gain_calc.metadata_template(layout, &o.controls))
            })
            .collect();
        let switched = objects
            .iter()
            .map(|o| {
                o.controls
                    .changes
                    .iter()
                    .map(|ch| gain_calc.metadata_template(layout, &o.controls.with_set(&ch.set)))
                    .collect()
            })
            .collect();
        Ok(Bus {
            layout: layout.clone(),
            buffers: vec![vec![0.0; block]; width],
            templates,
            switched,
            diffuse: vec![0.0; nch],
            width,
            decorrelator,
            interp: objects
                .iter()
                .map(|o| {
                    o.controls
                        .interpolate_gains
                        .then(|| GainInterp::new(o, width))
                })
                .collect(),
            raw: vec![0.0; width],
            ramps: vec![ramp; n_obj],
            beds: routes,
            gain_calc,
            direct: vec![0.0; nch],
            levels: objects
                .iter()
                .map(|o| {
                    o.gain_db
                        .is_constant()
                        .then(|| 10f64.powf(o.gain_db.value_at(0.0) / 20.0))
                })
                .collect(),
            sizes: objects
                .iter()
                .map(|o| {
                    o.size
                        .is_constant()
                        .then(|| o.size.value_at(0.0).clamp(0.0, 1.0))
                })
                .collect(),
            cursors: vec![Cursors::default(); n_obj],
            avx: crate::dsp::has_avx(),
            needed: true,
            stale: false,
            batch_gains: vec![0.0; n_obj * BATCH_SLOTS * width],
            batch_mask: vec![0; n_obj * BATCH_SLOTS],
            batch_written: vec![0; n_obj * BATCH_SLOTS],
            batch_object: vec![false; n_obj],
            batch_len: 0,
            batch_id: 0,
        })
    }

    /// Frames the bus's output lags its input (the decorrelation filters' delay when an
    /// object is diffuse, 0 otherwise).
    fn latency(&self) -> usize {
        if self.decorrelator.is_some() {
            decorrelate::LATENCY_FRAMES
        } else {
            0
        }
    }

    /// Clears the decorrelation filters' and the direct delay's state (seek).
    fn reset_diffuse(&mut self) {
        if let Some((d, delay)) = &mut self.decorrelator {
            d.reset();
            crate::dsp::Processor::reset(delay);
        }
    }

    /// Diffuse objects: the direct channels delayed to line up with the decorrelated
    /// diffuse bus, which is added to them.
    fn mix_diffuse(&mut self, frames: usize) {
        let Some((decorrelator, delay)) = &mut self.decorrelator else {
            return;
        };
        let nch = self.layout.num_channels();
        let (direct, diffuse) = self.buffers.split_at_mut(nch);
        let mut d = slices_mut(direct, frames);
        crate::dsp::Processor::process(delay, &mut d[..nch]);
        let mut f = slices_mut(diffuse, frames);
        decorrelator.process(&mut f[..nch]);
        for (o, x) in d[..nch].iter_mut().zip(&f[..nch]) {
            for (a, &b) in o.iter_mut().zip(x.iter()) {
                *a += b;
            }
        }
    }

    /// Computes a batch's gain points object by object, for each object that moves (not
    /// muted, not static, without BS.2127 gain interpolation): slot 0 holds the first
    /// segment's start gains — computed at `start` when given (the segment does not
    /// continue the previous one), else the previous batch's last end gains — and slot
    /// `k + 1` the gains at `ends[k]`. The gain calculations are the same calls, in the
    /// same order per object, as segment by segment, so the lookup state (cursors, hinted
    /// region) and the gains are the same; only the order across objects differs, and
    /// objects share no state.
    fn prepare(
        &mut self,
        objects: &[ObjectConfig],
        object_static: &[bool],
        start: Option<u64>,
        ends: &[u64],
        batch_id: u64,
    ) {
        let w = self.width;
        // Taken out of `self` while `raw_gains_into` writes into it (no allocation).
        let mut table = std::mem::take(&mut self.batch_gains);
        for (i, obj) in objects.iter().enumerate() {
            let batched = !obj.mute && !object_static[i] && self.interp[i].is_none();
            self.batch_object[i] = batched;
            if !batched {
                continue;
            }
            let first = i * BATCH_SLOTS;
            if start.is_none() {
                // The previous batch's last end gains are this one's first start gains.
                let last = first + self.batch_len;
                for c in Channels(self.batch_written[first]) {
                    table[first * w + c] = 0.0;
                }
                for c in Channels(self.batch_written[last]) {
                    table[first * w + c] = table[last * w + c];
                }
                self.batch_written[first] = self.batch_written[last];
                self.batch_mask[first] = self.batch_mask[last];
            }
            let frames = start.into_iter().chain(ends.iter().copied());
            let skip = usize::from(start.is_none());
            for (slot, frame) in (first + skip..).zip(frames) {
                let gains = &mut table[slot * w..(slot + 1) * w];
                for c in Channels(self.batch_written[slot]) {
                    gains[c] = 0.0;
                }
                let (written, nonzero) = self.raw_gains_sparse(i, obj, frame, gains);
                self.batch_written[slot] = written;
                self.batch_mask[slot] = nonzero;
            }
        }
        self.batch_gains = table;
        self.batch_len = ends.len();
        self.batch_id = batch_id;
    }

    /// Sets object `i`'s ramp for the batch's segment `k` (of `frames` frames): from the
    /// gains in slot `k` to those in slot `k + 1`.
    fn ramp_from_batch(&mut self, i: usize, k: usize, frames: u64) {
        let w = self.width;
        let k = i * BATCH_SLOTS + k;
        let (g0, g1) = (
            &self.batch_gains[k * w..(k + 1) * w],
            &self.batch_gains[(k + 1) * w..(k + 2) * w],
        );
        let active = self.batch_mask[k] | self.batch_mask[k + 1];
        let ramp = &mut self.ramps[i];
        (ramp.n_active, ramp.fixed) = set_ramp(
            &mut ramp.channel,
            &mut ramp.start,
            &mut ramp.slope,
            g0,
            g1,
            active,
            frames,
        );
    }

    /// Object `i`'s gains at `frame` into `ramps[i].gains[half]`, with the mask of its
    /// non-zero channels. Objects that interpolate gains (BS.2127) get the linear blend of
    /// the gains at the ends of their breakpoint segment; others the gains of their
    /// metadata at `frame`.
    fn gains_at(&mut self, i: usize, obj: &ObjectConfig, frame: u64, half: usize) {
        let w = self.width;
        let (segment, held) = match self.interp[i].as_ref() {
            Some(g) => (g.segment_at(frame), g.segment),
            None => (None, None),
        };
        if let Some((a, b, end_index)) = segment {
            if held != Some((a, b)) {
                // Moving on to the next segment, its start gains are the held end gains
                // (the same metadata at the same frame); otherwise computed.
                let follows = held.is_some_and(|(_, end)| end == a);
                if let Some(g) = self.interp[i].as_mut().filter(|_| follows) {
                    std::mem::swap(&mut g.from, &mut g.to);
                } else {
                    self.raw_gains(i, obj, a);
                    if let Some(g) = self.interp[i].as_mut() {
                        g.from.copy_from_slice(&self.raw);
                    }
                }
                self.raw_gains(i, obj, b);
                if let Some(g) = self.interp[i].as_mut() {
                    g.to.copy_from_slice(&self.raw);
                    g.segment = Some((a, b));
                    g.end_index = end_index;
                }
            }
        } else {
            self.raw_gains(i, obj, frame);
        }
        let ramp = &mut self.ramps[i];
        let gains = &mut ramp.gains[half][..w];
        ramp.nonzero[half] = match (segment, self.interp[i].as_ref()) {
            (Some((a, b, _)), Some(g)) => {
                let t = ((frame - a) as f64 / (b - a) as f64) as f32;
                blend(gains, &g.from[..w], &g.to[..w], t)
            }
            _ => {
                gains.copy_from_slice(&self.raw[..w]);
                nonzero_mask(gains)
            }
        };
    }

    /// Object `i`'s gains of its metadata at `frame` (BS.2127 gains × level) into `raw`:
    /// the layout's channels, then the diffuse bus's.
    fn raw_gains(&mut self, i: usize, obj: &ObjectConfig, frame: u64) {
        // Taken out of `self` while written (no allocation).
        let mut raw = std::mem::take(&mut self.raw);
        self.raw_gains_into(i, obj, frame, &mut raw);
        self.raw = raw;
    }

    /// [`Bus::raw_gains`] into `out` (`width` gains).
    fn raw_gains_into(&mut self, i: usize, obj: &ObjectConfig, frame: u64, out: &mut [f32]) {
        out[..self.width].fill(0.0);
        self.raw_gains_sparse(i, obj, frame, out);
    }

    /// [`Bus::raw_gains`] into `out` whose channels are all 0 on entry: writes only the
    /// channels the gain calculation wrote (a point source's few speakers) and returns
    /// them, with the mask of those that are non-zero. The same gains as writing every
    /// channel (the others are 0 × level = 0).
    fn raw_gains_sparse(
        &mut self,
        i: usize,
        obj: &ObjectConfig,
        frame: u64,
        out: &mut [f32],
    ) -> (u64, u64) {
        let t = frame as f64;
        let cur = &mut self.cursors[i];
        let level = match self.levels[i] {
            Some(level) => level,
            None => 10f64.powf(obj.gain_db.value_at_cursor(t, &mut cur.gain) / 20.0),
        };
        let size = match self.sizes[i] {
            Some(size) => size,
            None => obj.size.value_at_cursor(t, &mut cur.size).clamp(0.0, 1.0),
        };
        let position = obj.position.value_at_cursor(t, &mut cur.position);
        let nch = self.layout.num_channels();
        let w = self.width;
        let every = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let written = if let Some(first) = self.templates[i].as_mut() {
            let c = &obj.controls;
            // The switched controls in force at this gain point (a binary search over the
            // changes, none for most objects).
            let (meta, divergence_range) = match c.set_index_at(frame) {
                0 => (first, c.divergence_range),
                k => (
                    &mut self.switched[i][k - 1],
                    c.changes[k - 1].set.divergence_range,
                ),
            };
            set_metadata(
                meta,
                &ObjectValues {
                    position,
                    size,
                    extent: c
                        .extent
                        .as_ref()
                        .map(|e| e.value_at_cursor(t, &mut cur.extent)),
                    diffuse: c.diffuse.value_at_cursor(t, &mut cur.diffuse),
                    divergence: c.divergence.value_at_cursor(t, &mut cur.divergence),
                    divergence_range,
                },
            );
            self.gain_calc
                .gains(meta, &mut cur.bs2127, &mut self.direct, &mut self.diffuse);
            every(w)
        } else {
            // BS.2127 gains at this gain point (the ramps between gain points interpolate
            // gains, as BS.2127 does between blocks).
            let m = self.gain_calc.position_gains_into_zeroed(
                position,
                size,
                &mut cur.bs2127,
                &mut self.direct,
            );
            if level.is_finite() {
                let mut nonzero = 0u64;
                for c in Channels(m) {
                    let g = (self.direct[c] * level) as f32;
                    self.direct[c] = 0.0;
                    out[c] = g;
                    if g != 0.0 {
                        nonzero |= 1 << c;
                    }
                }
                return (m, nonzero);
            }
            // 0 × a non-finite level is not 0: every channel, as computed.
            self.diffuse.fill(0.0);
            every(w)
        };
        for (slot, &g) in out[..nch].iter_mut().zip(&self.direct) {
            *slot = (g * level) as f32;
        }
        if w > nch {
            for (slot, &g) in out[nch..w].iter_mut().zip(&self.diffuse) {
                *slot = (g * level) as f32;
            }
        }
        self.direct.fill(0.0);
        (written, nonzero_mask(&out[..w]))
    }

    /// Sets object `i`'s ramp for the segment [start, end): from the gains at `start`
    /// (or, when `at_start` is None, the previous segment's end gains) to those at `end`.
    fn compute_ramp(
        &mut self,
        i: usize,
        obj: &ObjectConfig,
        at_start: Option<u64>,
        end: u64,
        start: u64,
    ) {
        let s = self.ramps[i].end;
        if let Some(f) = at_start {
            self.gains_at(i, obj, f, s);
        }
        let e = 1 - s;
        self.gains_at(i, obj, end, e);
        let ramp = &mut self.ramps[i];
        ramp.end = e;
        let active = ramp.nonzero[s] | ramp.nonzero[e];
        let Ramp {
            gains,
            channel,
            start: starts,
            slope,
            n_active,
            fixed,
            ..
        } = ramp;
        (*n_active, *fixed) = set_ramp(
            channel,
            starts,
            slope,
            &gains[s],
            &gains[e],
            active,
            end - start,
        );
    }

    /// Adds every object into the bus for `run` frames starting at buffer offset `at`;
    /// `offset` is the first frame's distance from the segment start.
    fn mix_objects(&mut self, inputs: &[Vec<f32>], at: usize, run: usize, offset: usize) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if self.avx {
            // SAFETY: `avx` is only true when the CPU reported AVX (in `Bus::new`).
            unsafe { self.mix_objects_avx(inputs, at, run, offset) };
            return;
        }
        self.mix_objects_portable(inputs, at, run, offset);
    }

    /// The mixing loops compiled for AVX: element-wise arithmetic in the same order (no
    /// fused multiply-add), so the result equals the portable build's exactly.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx")]
    fn mix_objects_avx(&mut self, inputs: &[Vec<f32>], at: usize, run: usize, offset: usize) {
        self.mix_objects_portable(inputs, at, run, offset);
    }

    #[inline(always)]
    fn mix_objects_portable(&mut self, inputs: &[Vec<f32>], at: usize, run: usize, offset: usize) {
        const FULL: usize = GAIN_INTERVAL_FRAMES as usize;
        if run == FULL {
            // A whole segment (so `offset` is 0): the loops get a constant trip count.
            self.mix_run(inputs, at, FULL, 0);
        } else {
            self.mix_run(inputs, at, run, offset);
        }
    }

    /// The mixing loops. Moving objects are mixed four, three or two channels at a time
    /// (one pass over the input feeds them all); every channel gets `x · (g0 + slope · k)`
    /// element by element as before, so the output does not depend on the grouping. An object whose gains do
    /// not move gets `x · g0` (what the ramp gives for slope 0 and a gain that is > 0).
    #[inline(always)]
    fn mix_run(&mut self, inputs: &[Vec<f32>], at: usize, run: usize, offset: usize) {
        let steps = &RAMP_STEPS[offset..offset + run];
        for (i, (ramp, input)) in self.ramps.iter().zip(inputs).enumerate() {
            if let Some(ahead) = inputs.get(i + PREFETCH_OBJECTS_AHEAD) {
                prefetch(&ahead[at..at + run]);
            }
            let x = &input[at..at + run];
            let n = ramp.n_active;
            let (channel, start, slope) = (&ramp.channel[..n], &ramp.start[..n], &ramp.slope[..n]);
            if ramp.fixed {
                for (&c, &g0) in channel.iter().zip(start) {
                    let out = &mut self.buffers[c][at..at + run];
                    for (o, &s) in out.iter_mut().zip(x) {
                        *o += s * g0;
                    }
                }
                continue;
            }
            let mut k = 0;
            while k + 3 < n {
                // Four channels per pass over the input (listed in increasing order).
                let (c0, c1, c2, c3) = (channel[k], channel[k + 1], channel[k + 2], channel[k + 3]);
                let (low, high) = self.buffers.split_at_mut(c1);
                let (mid, high) = high.split_at_mut(c2 - c1);
                let (mid2, high) = high.split_at_mut(c3 - c2);
                let out0 = &mut low[c0][at..at + run];
                let out1 = &mut mid[0][at..at + run];
                let out2 = &mut mid2[0][at..at + run];
                let out3 = &mut high[0][at..at + run];
                let (g0, d0, g1, d1) = (start[k], slope[k], start[k + 1], slope[k + 1]);
                let (g2, d2, g3, d3) = (start[k + 2], slope[k + 2], start[k + 3], slope[k + 3]);
                for (((((o0, o1), o2), o3), &s), &t) in out0
                    .iter_mut()
                    .zip(out1.iter_mut())
                    .zip(out2.iter_mut())
                    .zip(out3.iter_mut())
                    .zip(x)
                    .zip(steps)
                {
                    *o0 += s * (g0 + d0 * t);
                    *o1 += s * (g1 + d1 * t);
                    *o2 += s * (g2 + d2 * t);
                    *o3 += s * (g3 + d3 * t);
                }
                k += 4;
            }
            if n - k == 3 {
                let (c0, c1, c2) = (channel[k], channel[k + 1], channel[k + 2]);
                let (low, high) = self.buffers.split_at_mut(c1);
                let (mid, high) = high.split_at_mut(c2 - c1);
                let out0 = &mut low[c0][at..at + run];
                let out1 = &mut mid[0][at..at + run];
                let out2 = &mut high[0][at..at + run];
                let (g0, d0, g1, d1) = (start[k], slope[k], start[k + 1], slope[k + 1]);
                let (g2, d2) = (start[k + 2], slope[k + 2]);
                for ((((o0, o1), o2), &s), &t) in out0
                    .iter_mut()
                    .zip(out1.iter_mut())
                    .zip(out2.iter_mut())
                    .zip(x)
                    .zip(steps)
                {
                    *o0 += s * (g0 + d0 * t);
                    *o1 += s * (g1 + d1 * t);
                    *o2 += s * (g2 + d2 * t);
                }
                continue;
            }
            if k + 1 < n {
                // Channels are listed in increasing order: c0 < c1.
                let (c0, c1) = (channel[k], channel[k + 1]);
                let (low, high) = self.buffers.split_at_mut(c1);
                let out0 = &mut low[c0][at..at + run];
                let out1 = &mut high[0][at..at + run];
                let (g0, d0, g1, d1) = (start[k], slope[k], start[k + 1], slope[k + 1]);
                for (((o0, o1), &s), &t) in out0.iter_mut().zip(out1.iter_mut()).zip(x).zip(steps) {
                    *o0 += s * (g0 + d0 * t);
                    *o1 += s * (g1 + d1 * t);
                }
                k += 2;
            }
            if k < n {
                let out = &mut self.buffers[channel[k]][at..at + run];
                let (g0, d0) = (start[k], slope[k]);
                for ((o, &s), &t) in out.iter_mut().zip(x).zip(steps) {
                    *o += s * (g0 + d0 * t);
                }
            }
        }
    }

    fn mix_beds(&mut self, inputs: &[Vec<Vec<f32>>], frames: usize) {
        for (route, bed) in self.beds.iter().zip(inputs) {
            for &(src, dst, g) in &route.taps {
                let out = &mut self.buffers[dst][..frames];
                for (o, &s) in out.iter_mut().zip(&bed[src][..frames]) {
                    *o += s * g;
                }
            }
        }
    }
}

/// Writes the ramp from gains `g0` to `g1` over `frames` frames for the channels in
/// `active` (those non-zero at either end): `(channel, start gain, per-frame slope)`
/// each; returns how many, and whether every slope is 0.
#[inline]
fn set_ramp(
    channel: &mut [usize],
    start: &mut [f32],
    slope: &mut [f32],
    g0: &[f32],
    g1: &[f32],
    active: u64,
    frames: u64,
) -> (usize, bool) {
    let len = frames as f32;
    // Over a power-of-two length, × (1/len) is exact: it equals ÷ len bit for bit.
    let inv = frames.is_power_of_two().then(|| 1.0 / len);
    let mut n = 0;
    let mut fixed = true;
    for c in Channels(active) {
        let d = g1[c] - g0[c];
        let s = match inv {
            Some(inv) => d * inv,
            None => d / len,
        };
        channel[n] = c;
        start[n] = g0[c];
        slope[n] = s;
        fixed &= s == 0.0;
        n += 1;
    }
    (n, fixed)
}

/// The mixing loop asks for the input of the object this many places ahead, so that it
/// is in the L1 cache by the time it is mixed (each object's input is a separate buffer;
/// the hardware prefetchers do not follow the jump from one to the next).
const PREFETCH_OBJECTS_AHEAD: usize = 2;

/// `out[c] = x[c] + (y[c] − x[c]) · t` for every channel (a BS.2127 gain blend), and the
/// mask of the channels where the result is not 0. Four channels at a time in SSE2 (part
/// of every x86-64 CPU): the same single-precision operations lane by lane as the
/// scalar loop, so the same gains; the scalar loop compiled to about 12 instructions per
/// channel, and the engine blends every interpolating object's gains at every gain point.
#[inline]
fn blend(out: &mut [f32], x: &[f32], y: &[f32], t: f32) -> u64 {
    let n = out.len().min(x.len()).min(y.len()).min(64);
    let mut mask = 0u64;
    let mut c = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; every load and store is of four lanes inside
        // the first `n` elements of its slice (`c + 4 <= n`).
        unsafe {
            let tv = _mm_set1_ps(t);
            let zero = _mm_setzero_ps();
            while c + 4 <= n {
                let a = _mm_loadu_ps(x.as_ptr().add(c));
                let b = _mm_loadu_ps(y.as_ptr().add(c));
                let g = _mm_add_ps(a, _mm_mul_ps(_mm_sub_ps(b, a), tv));
                _mm_storeu_ps(out.as_mut_ptr().add(c), g);
                mask |= (_mm_movemask_ps(_mm_cmpneq_ps(g, zero)) as u64) << c;
                c += 4;
            }
        }
    }
    while c < n {
        let g = x[c] + (y[c] - x[c]) * t;
        out[c] = g;
        mask |= u64::from(g != 0.0) << c;
        c += 1;
    }
    mask
}

/// The mask of the channels (at most 64) whose gain is not 0; NaN counts as not 0.
#[inline]
fn nonzero_mask(gains: &[f32]) -> u64 {
    let n = gains.len().min(64);
    let mut mask = 0u64;
    let mut c = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; each load is of four lanes inside `gains[..n]`.
        unsafe {
            let zero = _mm_setzero_ps();
            while c + 4 <= n {
                let g = _mm_loadu_ps(gains.as_ptr().add(c));
                mask |= (_mm_movemask_ps(_mm_cmpneq_ps(g, zero)) as u64) << c;
                c += 4;
            }
        }
    }
    while c < n {
        mask |= u64::from(gains[c] != 0.0) << c;
        c += 1;
    }
    mask
}

/// Hints the CPU to bring `x` into the L1 cache (no effect on any value).
#[inline(always)]
fn prefetch(x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for line in x.chunks(16) {
            // SAFETY: a prefetch of an address inside a live slice; SSE is part of x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// How a bed reaches a bus: same channels pass through; otherwise by label; a channel the
/// bus lacks is panned as a virtual source at its nominal direction; LFE to LFE.
fn bed_route(
    bed: &BedConfig,
    layout: &Layout,
    gain_calc: &GainCalc,
) -> Result<BedRoute, EngineError> {
    let level = if bed.mute {
        0.0
    } else {
        10f64.powf(bed.gain_db / 20.0)
    };
    let mut taps = Vec::new();
    if level == 0.0 {
        return Ok(BedRoute { taps });
    }
    if let Some(hoa) = &bed.hoa {
        let d = hoa_decoder(&bed.name, hoa, layout, gain_calc)?;
        for (dst, row) in d.iter().enumerate() {
            for (src, &g) in row.iter().enumerate() {
                if g != 0.0 {
                    taps.push((src, dst, (g * level) as f32));
                }
            }
        }
        return Ok(BedRoute { taps });
    }
    let out_lfe = layout.lfe_indices();
    let mut gains = vec![0.0; layout.num_channels()];
    // A bed on an ITU-R BS.2051 system: BS.2127 §8's mapping rules first.
    let system = crate::spatial::direct_speakers::itu_system(&bed.layout);
    for (src, ch) in bed.layout.channels.iter().enumerate() {
        let level = level * bed.channel_gain(src);
        if let Some(rule) =
            system.and_then(|s| crate::spatial::direct_speakers::rule_gains(s, &ch.name, layout))
        {
            taps.extend(
                rule.into_iter()
                    .map(|(dst, g)| (src, dst, (g * level) as f32)),
            );
            continue;
        }
        if ch.lfe {
            // Dropped (with a warning from `bed_warnings`) where the output has no LFE.
            if let Some(&dst) = out_lfe.first() {
                taps.push((src, dst, level as f32));
            }
            continue;
        }
        if let Some(dst) = same_speaker(layout, ch)
            .filter(|&d| !layout.channels[d].lfe)
            .or_else(|| bounded_speaker(bed, src, layout))
        {
            taps.push((src, dst, level as f32));
            continue;
        }
        let d = ch.direction();
        let at = Position::Polar {
            azimuth_deg: d.azimuth_deg,
            elevation_deg: d.elevation_deg,
            distance: 1.0,
        };
        gain_calc.position_gains(at, 0.0, &mut gains);
        for (dst, &g) in gains.iter().enumerate() {
            if g != 0.0 {
                taps.push((src, dst, (g * level) as f32));
            }
        }
    }
    Ok(BedRoute { taps })
}

/// The BS.2127 §9 decoder of an HOA bed to `layout` (rows per speaker; LFE rows zero),
/// with the point-source panner of `gain_calc`.
fn hoa_decoder(
    bed: &str,
    hoa: &HoaFormat,
    layout: &Layout,
    gain_calc: &GainCalc,
) -> Result<Vec<Vec<f64>>, EngineError> {
    crate::spatial::hoa::decode_matrix(hoa, layout.num_channels(), |az, el, g| {
        let at = Position::Polar {
            azimuth_deg: az,
            elevation_deg: el,
            distance: 1.0,
        };
        gain_calc.position_gains(at, 0.0, g);
    })
    .map_err(|source| EngineError::Hoa {
        bed: bed.into(),
        source,
    })
}

/// The output speaker a bed channel feeds directly: the one with its ITU-R BS.2051 name
/// (BS.2127 §8: "Ls" is M+110 in 5.1 but M+090 in 7.1.4), or, for a channel without a
/// BS.2051 name, the one with its label.
fn same_speaker(layout: &Layout, ch: &crate::scene::layout::Channel) -> Option<usize> {
    let bs2051 = ch.name.contains('+') || ch.name.contains('-') || ch.name.starts_with("LFE");
    match layout.channels.iter().position(|c| c.name == ch.name) {
        Some(d) => Some(d),
        None if !bs2051 => layout.channel_index(&ch.label),
        None => None,
    }
}

/// The output speaker a bed channel with position bounds goes to (BS.2127 §8).
fn bounded_speaker(bed: &BedConfig, src: usize, layout: &Layout) -> Option<usize> {
    let bounds = bed.speaker_bounds.get(src)?.as_ref()?;
    crate::spatial::direct_speakers::closest_speaker(bounds, layout)
}

/// Warnings about how a bed maps onto a layout (channels panned, LFE dropped).
pub fn bed_warnings(bed: &BedConfig, layout: &Layout) -> Vec<String> {
    let mut warnings = Vec::new();
    if bed.hoa.is_some() {
        return warnings;
    }
    let has_lfe = !layout.lfe_indices().is_empty();
    let system = crate::spatial::direct_speakers::itu_system(&bed.layout);
    for (i, ch) in bed.layout.channels.iter().enumerate() {
        if system
            .and_then(|s| crate::spatial::direct_speakers::rule_gains(s, &ch.name, layout))
            .is_some()
        {
            continue;
        }
        if ch.lfe {
            if !has_lfe {
                warnings.push(format!(
                    "bed '{}': channel {} (LFE) dropped: layout {} has no LFE",
                    bed.name, ch.label, layout.name
                ));
            }
        } else if same_speaker(layout, ch).is_none() && bounded_speaker(bed, i, layout).is_none() {
            warnings.push(format!(
                "bed '{}': channel {} is not in layout {}; panned at its nominal direction ({}°, {}°)",
                bed.name, ch.label, layout.name, ch.azimuth_deg, ch.elevation_deg
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::automation::{Interpolation, Keyframe};

    /// The SSE2 blend and mask give the scalar definitions' bits, at every length up to
    /// 64 channels and beyond, with zeros, signed zeros, NaN, infinities and a blend that
    /// cancels to 0.
    #[test]
    fn blend_and_mask_equal_their_definitions() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let special = [0.0, -0.0, f32::NAN, f32::INFINITY, 1.0, -1.0, 0.25];
        for n in 0..=70usize {
            for round in 0..20 {
                let mut value = || match next() % 4 {
                    0 => special[(next() % special.len() as u64) as usize],
                    _ => (next() % 2001) as f32 / 1000.0 - 1.0,
                };
                let x: Vec<f32> = (0..n).map(|_| value()).collect();
                let mut y: Vec<f32> = (0..n).map(|_| value()).collect();
                if round == 0 {
                    y.clone_from(&x); // x + 0 · t: the gains themselves
                }
                let t = [0.0, 1.0, 0.5, 0.3][round % 4];
                let mut out = vec![7.0; n];
                let mask = blend(&mut out, &x, &y, t);
                let m = n.min(64);
                let mut want_mask = 0u64;
                for c in 0..m {
                    let want = x[c] + (y[c] - x[c]) * t;
                    assert_eq!(out[c].to_bits(), want.to_bits(), "n {n} channel {c}");
                    want_mask |= u64::from(want != 0.0) << c;
                }
                assert_eq!(mask, want_mask, "n {n}");
                assert_eq!(nonzero_mask(&out[..m]), want_mask, "n {n}");
                assert_eq!(nonzero_mask(&x), {
                    let mut k = 0u64;
                    for (c, &g) in x.iter().take(64).enumerate() {
                        k |= u64::from(g != 0.0) << c;
                    }
                    k
                });
            }
        }
    }

    fn render(avx: bool) -> Vec<f32> {
        let objects = (0..6)
            .map(|i| ObjectConfig {
                gain_db: Automation::constant(-6.0),
                position: Automation::new(vec![
                    Keyframe {
                        frame: 0,
                        value: Position::Polar {
                            azimuth_deg: 60.0 * i as f64,
                            elevation_deg: 0.0,
                            distance: 1.0,
                        },
                        interpolation: Interpolation::Linear,
                    },
                    Keyframe {
                        frame: 5000,
                        value: Position::Cartesian {
                            x: 0.5,
                            y: -0.5,
                            z: 0.3 * i as f64,
                        },
                        interpolation: Interpolation::Linear,
                    },
                ])
                .expect("ordered keys"),
                size: Automation::constant(0.1 * i as f64),
                mute: false,
                binaural_bypass: false,
                binaural_distance: Distance::Mid,
                controls: Default::default(),
            })
            .collect();
        let mut engine = Engine::new(EngineConfig {
            sample_rate: 48_000,
            max_block_frames: 512,
            objects,
            beds: vec![],
            outputs: vec![OutputConfig::speakers(
                Layout::builtin("7.1.4").expect("built-in"),
            )],
        })
        .expect("engine");
        for bus in &mut engine.buses {
            bus.avx = avx;
        }
        let mut out = Vec::new();
        for block in 0..20 {
            let len = [512, 100, 7, 333][block % 4];
            for i in 0..6 {
                for (k, x) in engine.object_input(i)[..len].iter_mut().enumerate() {
                    *x = ((k * (i + 2) + block * 13) % 97) as f32 / 97.0 - 0.5;
                }
            }
            engine.process(len);
            for ch in engine.output(0) {
                out.extend_from_slice(&ch[..len]);
            }
        }
        out
    }

    #[test]
    fn avx_mixing_equals_portable_mixing() {
        let portable = render(false);
        assert!(portable.iter().any(|&v| v.abs() > 1e-2));
        if crate::dsp::has_avx() {
            // Element-wise arithmetic in the same order: bit-identical.
            assert!(render(true) == portable, "AVX and portable mixing differ");
        }
    }
}
