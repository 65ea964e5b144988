//! The block renderer: objects and beds → speaker buses (full-sphere VBAP, as in
//! ITU-R BS.2127's split between gain calculation and gain application), each output
//! through its own master chain; buffers preallocated in `new`, nothing allocated in
//! `process`.
//!
//! # Timing
//!
//! Gains are computed at fixed points of the *absolute* timeline — every
//! [`GAIN_INTERVAL_FRAMES`] frames and at every automation keyframe — and ramped linearly
//! per sample in between, so a moving object never clicks and a step in automation is
//! smoothed over at most one interval. Because the ramp points do not depend on how the
//! caller cuts the audio into blocks, the output is identical for every block size.

use crate::automation::Automation;
use crate::geometry::Position;
use crate::layout::Layout;
use crate::panner::{Panner, PannerError};
use thiserror::Error;

/// Gains are recomputed at least this often (frames) and ramped in between.
pub const GAIN_INTERVAL_FRAMES: u64 = 64;

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
    pub name: String,
    pub gain_db: Automation<f64>,
    pub position: Automation<Position>,
    pub size: Automation<f64>,
    pub mute: bool,
}

/// A channel bed: its layout and static gain.
#[derive(Debug, Clone)]
pub struct BedConfig {
    pub name: String,
    pub layout: Layout,
    pub gain_db: f64,
    pub mute: bool,
}

/// An output of the engine.
#[derive(Debug, Clone)]
pub enum OutputConfig {
    /// A speaker render to a layout.
    Speakers { layout: Layout },
}

#[derive(Debug, Clone)]
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

/// Per-object gain state on one bus: the current ramp segment's start gains and slopes.
#[derive(Debug, Clone)]
struct Ramp {
    start: Vec<f32>,
    slope: Vec<f32>,
    /// Channels whose gain is non-zero somewhere in the segment.
    active: Vec<usize>,
    n_active: usize,
    /// Whether start == end for every channel (no ramp needed).
    flat: bool,
}

/// One speaker bus: a layout, its panner and the buffers it renders into.
struct Bus {
    layout: Layout,
    panner: Panner,
    buffers: Vec<Vec<f32>>,
    ramps: Vec<Ramp>,
    beds: Vec<BedRoute>,
    /// Scratch for gain computation (one layout's channels).
    scratch: Vec<f64>,
    /// Gains at the end of the current segment, per object (flat, objects × channels).
    end_gains: Vec<f32>,
    /// Linear level of each object whose gain is not automated.
    levels: Vec<Option<f64>>,
}

/// The renderer. Fill the inputs, call [`Engine::process`], read the outputs.
pub struct Engine {
    sample_rate: u32,
    max_block_frames: usize,
    objects: Vec<ObjectConfig>,
    /// Whether each object's gain, position and size never change.
    object_static: Vec<bool>,
    beds: Vec<BedConfig>,
    object_inputs: Vec<Vec<f32>>,
    bed_inputs: Vec<Vec<Vec<f32>>>,
    buses: Vec<Bus>,
    /// Output index → bus index.
    outputs: Vec<usize>,
    /// All keyframe frames of all objects, sorted, deduplicated.
    keyframes: Vec<u64>,
    /// Absolute frame of the next sample to render.
    position: u64,
    /// The current ramp segment [segment_start, segment_end).
    segment_start: u64,
    segment_end: u64,
    segment_valid: bool,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        if config.max_block_frames == 0 || config.max_block_frames > 1 << 20 {
            return Err(EngineError::Config {
                parameter: "max_block_frames",
                value: config.max_block_frames.to_string(),
                allowed: "1 to 1048576",
            });
        }
        if config.sample_rate == 0 {
            return Err(EngineError::Config {
                parameter: "sample_rate",
                value: "0".into(),
                allowed: "a positive rate in Hz",
            });
        }
        let n_obj = config.objects.len();
        let block = config.max_block_frames;
        let mut buses: Vec<Bus> = Vec::new();
        let mut outputs = Vec::new();
        for out in &config.outputs {
            let OutputConfig::Speakers { layout } = out;
            let index = match buses.iter().position(|b| b.layout.same_channels(layout)) {
                Some(i) => i,
                None => {
                    buses.push(Bus::new(layout, &config.objects, &config.beds, block)?);
                    buses.len() - 1
                }
            };
            outputs.push(index);
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
            })
            .collect();
        keyframes.sort_unstable();
        keyframes.dedup();
        let object_static = config
            .objects
            .iter()
            .map(|o| o.position.is_constant() && o.gain_db.is_constant() && o.size.is_constant())
            .collect();
        Ok(Engine {
            sample_rate: config.sample_rate,
            max_block_frames: block,
            object_static,
            object_inputs: vec![vec![0.0; block]; n_obj],
            bed_inputs: config
                .beds
                .iter()
                .map(|b| vec![vec![0.0; block]; b.layout.num_channels()])
                .collect(),
            objects: config.objects,
            beds: config.beds,
            buses,
            outputs,
            keyframes,
            position: 0,
            segment_start: 0,
            segment_end: 0,
            segment_valid: false,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn max_block_frames(&self) -> usize {
        self.max_block_frames
    }

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

    /// The input buffer of channel `ch` of bed `b`, in the bed layout's channel order.
    pub fn bed_input(&mut self, b: usize, ch: usize) -> &mut [f32] {
        &mut self.bed_inputs[b][ch]
    }

    /// Output `o`'s planar channels (layout order); the first `frames` of the last
    /// `process` call are valid.
    pub fn output(&self, o: usize) -> &[Vec<f32>] {
        &self.buses[self.outputs[o]].buffers
    }

    pub fn output_layout(&self, o: usize) -> &Layout {
        &self.buses[self.outputs[o]].layout
    }

    /// Absolute frame of the next sample to render.
    pub fn position_frames(&self) -> u64 {
        self.position
    }

    /// Moves the timeline to `frame` (automation is re-evaluated there).
    pub fn seek(&mut self, frame: u64) {
        self.position = frame;
        self.segment_valid = false;
    }

    /// Back to frame 0 with all state cleared.
    pub fn reset(&mut self) {
        self.seek(0);
    }

    /// Frames of delay between the inputs and the outputs.
    pub fn latency(&self) -> usize {
        0
    }

    /// Renders `frames` frames (≤ `max_block_frames`) from the inputs into the outputs.
    pub fn process(&mut self, frames: usize) {
        let frames = frames.min(self.max_block_frames);
        for bus in &mut self.buses {
            for ch in &mut bus.buffers {
                ch[..frames].fill(0.0);
            }
        }
        let mut done = 0usize;
        while done < frames {
            let now = self.position + done as u64;
            if !self.segment_valid || now >= self.segment_end {
                self.start_segment(now);
            }
            let run = ((self.segment_end - now) as usize).min(frames - done);
            let offset = (now - self.segment_start) as usize;
            for bus in &mut self.buses {
                bus.mix_objects(&self.object_inputs, done, run, offset);
            }
            done += run;
        }
        for bus in &mut self.buses {
            bus.mix_beds(&self.bed_inputs, frames);
        }
        self.position += frames as u64;
    }

    /// Begins the ramp segment that contains `now`: its end is the next gain point
    /// (interval grid or keyframe); gains at both ends come from the automation.
    fn start_segment(&mut self, now: u64) {
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
        let continuing = self.segment_valid && start == self.segment_end;
        for bus in &mut self.buses {
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
                bus.compute_ramp(i, obj, g_start, end, start);
            }
        }
        self.segment_start = start;
        self.segment_end = end;
        self.segment_valid = true;
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
        let panner = Panner::new(layout).map_err(|source| EngineError::Panner {
            layout: layout.name.clone(),
            source,
        })?;
        let nch = layout.num_channels();
        let ramp = Ramp {
            start: vec![0.0; nch],
            slope: vec![0.0; nch],
            active: vec![0; nch],
            n_active: 0,
            flat: true,
        };
        let routes = beds
            .iter()
            .map(|bed| bed_route(bed, layout, &panner))
            .collect();
        Ok(Bus {
            layout: layout.clone(),
            buffers: vec![vec![0.0; block]; nch],
            ramps: vec![ramp; n_obj],
            beds: routes,
            scratch: vec![0.0; nch],
            end_gains: vec![0.0; n_obj * nch],
            levels: objects
                .iter()
                .map(|o| {
                    o.gain_db
                        .is_constant()
                        .then(|| 10f64.powf(o.gain_db.value_at(0.0) / 20.0))
                })
                .collect(),
            panner,
        })
    }

    /// Object `i`'s gains at `frame` (panning × level) into `end_gains`.
    fn gains_at(&mut self, i: usize, obj: &ObjectConfig, frame: u64) {
        let t = frame as f64;
        let level = match self.levels[i] {
            Some(level) => level,
            None => 10f64.powf(obj.gain_db.value_at(t) / 20.0),
        };
        self.panner.position_gains(
            obj.position.value_at(t),
            obj.size.value_at(t).clamp(0.0, 1.0),
            &mut self.scratch,
        );
        let nch = self.scratch.len();
        for (dst, g) in self.end_gains[i * nch..(i + 1) * nch]
            .iter_mut()
            .zip(&self.scratch)
        {
            *dst = (g * level) as f32;
        }
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
        let nch = self.scratch.len();
        if let Some(s) = at_start {
            self.gains_at(i, obj, s);
            let (ramp, g) = (&mut self.ramps[i], &self.end_gains[i * nch..(i + 1) * nch]);
            ramp.start.copy_from_slice(g);
        } else {
            let (ramp, g) = (&mut self.ramps[i], &self.end_gains[i * nch..(i + 1) * nch]);
            ramp.start.copy_from_slice(g);
        }
        self.gains_at(i, obj, end);
        let len = (end - start) as f32;
        let ramp = &mut self.ramps[i];
        let g_end = &self.end_gains[i * nch..(i + 1) * nch];
        ramp.n_active = 0;
        ramp.flat = true;
        for c in 0..nch {
            let slope = (g_end[c] - ramp.start[c]) / len;
            ramp.slope[c] = slope;
            if slope != 0.0 {
                ramp.flat = false;
            }
            if ramp.start[c] != 0.0 || g_end[c] != 0.0 {
                ramp.active[ramp.n_active] = c;
                ramp.n_active += 1;
            }
        }
    }

    /// Adds every object into the bus for `run` frames starting at buffer offset `at`;
    /// `offset` is the first frame's distance from the segment start.
    fn mix_objects(&mut self, inputs: &[Vec<f32>], at: usize, run: usize, offset: usize) {
        let steps = &RAMP_STEPS[offset..offset + run];
        for (ramp, input) in self.ramps.iter().zip(inputs) {
            let x = &input[at..at + run];
            for &c in &ramp.active[..ramp.n_active] {
                let out = &mut self.buffers[c][at..at + run];
                let g0 = ramp.start[c];
                let slope = ramp.slope[c];
                if slope == 0.0 {
                    for (o, &s) in out.iter_mut().zip(x) {
                        *o += s * g0;
                    }
                } else {
                    for ((o, &s), &k) in out.iter_mut().zip(x).zip(steps) {
                        *o += s * (g0 + slope * k);
                    }
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

/// How a bed reaches a bus: same channels pass through; otherwise by label; a channel the
/// bus lacks is panned as a virtual source at its nominal direction; LFE to LFE.
fn bed_route(bed: &BedConfig, layout: &Layout, panner: &Panner) -> BedRoute {
    let level = if bed.mute {
        0.0
    } else {
        10f64.powf(bed.gain_db / 20.0)
    };
    let mut taps = Vec::new();
    if level == 0.0 {
        return BedRoute { taps };
    }
    let out_lfe = layout.lfe_indices();
    let mut gains = vec![0.0; layout.num_channels()];
    for (src, ch) in bed.layout.channels.iter().enumerate() {
        if ch.lfe {
            // Dropped (with a warning from `bed_warnings`) where the output has no LFE.
            if let Some(&dst) = out_lfe.first() {
                taps.push((src, dst, level as f32));
            }
            continue;
        }
        if let Some(dst) = layout
            .channel_index(&ch.label)
            .filter(|&d| !layout.channels[d].lfe)
        {
            taps.push((src, dst, level as f32));
            continue;
        }
        panner.point_gains(ch.direction(), &mut gains);
        for (dst, &g) in gains.iter().enumerate() {
            if g != 0.0 {
                taps.push((src, dst, (g * level) as f32));
            }
        }
    }
    BedRoute { taps }
}

/// Warnings about how a bed maps onto a layout (channels panned, LFE dropped).
pub fn bed_warnings(bed: &BedConfig, layout: &Layout) -> Vec<String> {
    let mut warnings = Vec::new();
    let has_lfe = !layout.lfe_indices().is_empty();
    for ch in &bed.layout.channels {
        if ch.lfe {
            if !has_lfe {
                warnings.push(format!(
                    "bed '{}': channel {} (LFE) dropped: layout {} has no LFE",
                    bed.name, ch.label, layout.name
                ));
            }
        } else if layout.channel_index(&ch.label).is_none() {
            warnings.push(format!(
                "bed '{}': channel {} is not in layout {}; panned at its nominal direction ({}°, {}°)",
                bed.name, ch.label, layout.name, ch.azimuth_deg, ch.elevation_deg
            ));
        }
    }
    warnings
}
