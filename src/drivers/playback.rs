//! Live monitoring (`halo play`): the offline [`Engine`] run on the audio thread, fed by a
//! source-reading thread through lock-free ring buffers (`rtrb`), with click-free monitor
//! switching between the binaural render, the stereo fold-down and a speaker layout, and
//! loudness matching and metering per ITU-R BS.1770-4 / EBU R128 (momentary, short-term,
//! integrated, true peak) done off the audio thread.
//!
//! # Threads
//!
//! * **Audio thread** — [`Player::process`]: takes control messages ([`Control`]), reads
//!   source blocks, runs the engine with only the monitored output enabled, writes the
//!   device buffer, and pushes [`Status`] and the heard samples out. Everything it needs
//!   is allocated in [`Player::new`]; it never allocates, locks, logs or touches files
//!   (`tests/playback_alloc.rs` checks the first with a counting allocator).
//! * **Reader thread** — [`SourceReader::run`]: streams the session's sources (resampled
//!   like the offline render) and pushes planar chunks tagged with a *generation*; a seek
//!   bumps the generation, so the audio thread drops chunks read before it.
//! * **Analysis thread** — [`LoudnessAnalysis`]: renders the session offline, faster than
//!   real time, through the same engine and meters every monitor's integrated loudness;
//!   its estimate (running, then final) sets the loudness-matching gains.
//! * **Control side** — [`Controller`]: sends controls, reads status, meters the heard
//!   signal with [`Meter`]. Only the terminal UI and the cpal glue (feature `playback`)
//!   sit on top of it.
//!
//! # Bit-exactness
//!
//! Playback from a start point runs the engine exactly as `render::render` does (same
//! engine configuration, same outputs, the engine's latency pre-rolled and dropped), and
//! with loudness matching off the monitored output is copied unscaled: the frames a device
//! receives equal the offline render's float file bit for bit (tests/playback.rs).
//! After a seek, a monitor switch or an underrun, processing state restarts, so the output
//! is the same music but no longer bit-identical to the file.
//!
//! # Device rate
//!
//! A device that does not take the session's rate (a 44.1 kHz laptop output, a 48 kHz
//! session) plays the session *retimed* to the device rate ([`Scene::retimed`]:
//! automation and duration in frames at the new rate), with [`PlayOptions::sample_rate`]:
//! sources are resampled on read and the HRTF set is loaded at that rate, as an offline
//! render of the retimed session does, so the device receives that render bit for bit
//! and nothing resamples on the audio thread. Positions, seeks, meters and the loudness
//! analysis all count frames at the device rate. [`plan_device`] chooses the rate.
//!
//! # Monitor switching
//!
//! The new monitor's output is enabled and *warmed up* for the engine latency plus
//! [`WARMUP_S`] (filling convolution history, limiter look-ahead and the alignment
//! delays) while the old one is still heard; then the two are crossfaded over [`CROSSFADE_MS`] with an
//! equal-power (sine/cosine) law, and the old output is disabled. Equal power because the
//! monitors are different renders of the same mix (HRTF-filtered against amplitude-panned
//! against matrixed): their phases differ across most of the spectrum, so they add in power
//! and an equal-gain fade would dip by up to 3 dB in the middle.

use crate::drivers::plan::{self, RenderError};
use crate::drivers::sources::Sources as SceneSources;
use crate::engine::{Engine, EngineConfig, EngineError, OutputConfig};
use crate::formats::io::WriteFormat;
use crate::measure::loudness::{LoudnessError, Meter};
use crate::scene::layout::Layout;
use crate::scene::mix::{FoldSpec, OutputSpec, Scene};
use rtrb::{Consumer, Producer, RingBuffer};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// Length of a monitor crossfade and of the play/pause/seek fades, ms.
pub const CROSSFADE_MS: f64 = 20.0;
/// Frames per source chunk and per engine call on the audio thread.
pub const CHUNK_FRAMES: usize = 256;
/// Default source read-ahead, seconds.
pub const DEFAULT_READ_AHEAD_S: f64 = 0.5;
/// Warm-up of a newly enabled monitor beyond the engine latency, seconds: covers the
/// HRIR length and most of a limiter's release memory.
pub const WARMUP_S: f64 = 0.04;
/// Loudness-matching gains are limited to ±this, dB.
const MAX_MATCH_DB: f64 = 20.0;

#[derive(Debug, Error)]
pub enum PlaybackError {
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("meter for {layout}: {source}")]
    Meter {
        layout: String,
        #[source]
        source: LoudnessError,
    },
    #[error("invalid playback setting: {parameter} = {value} (allowed: {allowed})")]
    Config {
        parameter: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "the {layout} monitor needs {needed} output channels but {device} has {available}; monitor binaural (b) or stereo (s) instead, or pick a device with --device"
    )]
    TooFewChannels {
        layout: String,
        needed: usize,
        device: String,
        available: usize,
    },
    #[error("nothing to play: {0}")]
    Nothing(String),
    #[error("audio device: {0}")]
    Device(String),
    /// The device failed during playback (exit code 1, not bad input).
    #[error("audio device: {0}")]
    DeviceLost(String),
}

impl PlaybackError {
    /// Whether the error is the user's input or setup (exit code 2) rather than halo's.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PlaybackError::Render(r) => r.is_bad_input(),
            PlaybackError::Engine(_)
            | PlaybackError::Meter { .. }
            | PlaybackError::DeviceLost(_) => false,
            _ => true,
        }
    }
}

/// What is being listened to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Monitor {
    /// Headphones: the binaural render.
    #[default]
    Binaural,
    /// The stereo fold-down.
    Stereo,
    /// Speaker feeds of the monitor layout.
    Speakers,
}

impl Monitor {
    /// Every monitor, in switching order.
    pub const ALL: [Monitor; 3] = [Monitor::Binaural, Monitor::Stereo, Monitor::Speakers];

    fn index(self) -> usize {
        match self {
            Monitor::Binaural => 0,
            Monitor::Stereo => 1,
            Monitor::Speakers => 2,
        }
    }
}

/// Control messages to the audio thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    Play,
    Pause,
    TogglePlay,
    Monitor(Monitor),
    /// Loudness matching on or off.
    Match(bool),
    /// Loudness-matching gains per monitor (in [`Monitor::ALL`] order), dB.
    MatchGains([f32; 3]),
    /// Go to a session frame (clamped to the session's length).
    Seek(u64),
}

/// What the audio thread reports after each callback.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Status {
    /// Session frame of the next frame to be heard.
    pub position_frames: u64,
    pub monitor: Monitor,
    /// A switch in progress (warming up or crossfading) to this monitor.
    pub switching_to: Option<Monitor>,
    pub playing: bool,
    pub ended: bool,
    /// Frames of audio delivered so far (silence included).
    pub delivered_frames: u64,
    /// Callbacks that found no source data while playing.
    pub underruns: u64,
    pub matching: bool,
    /// Bumped by every seek; meters reset when it changes.
    pub generation: u32,
}

/// Commands from the audio thread to the reader thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaderCommand {
    pub generation: u32,
    pub frame: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ChunkHeader {
    generation: u32,
    frames: u32,
}

/// The writing end of the source transport: planar chunks of all engine inputs (objects,
/// then each bed's channels in layout order), each tagged with a generation.
pub struct InputWriter {
    samples: Producer<f32>,
    headers: Producer<ChunkHeader>,
    n_inputs: usize,
    chunk_frames: usize,
}

impl InputWriter {
    /// Engine inputs per frame.
    pub fn num_inputs(&self) -> usize {
        self.n_inputs
    }

    pub fn chunk_frames(&self) -> usize {
        self.chunk_frames
    }

    /// Whether a whole chunk fits now.
    pub fn has_room(&self) -> bool {
        self.headers.slots() > 0 && self.samples.slots() >= self.n_inputs * self.chunk_frames
    }

    /// Pushes one chunk: `planar` holds `frames` frames of input 0, then input 1, …
    /// Returns false (and pushes nothing) when there is no room or the sizes are wrong.
    pub fn push(&mut self, generation: u32, planar: &[f32], frames: usize) -> bool {
        if frames == 0
            || frames > self.chunk_frames
            || planar.len() != frames * self.n_inputs
            || !self.has_room()
        {
            return false;
        }
        let Ok(mut chunk) = self.samples.write_chunk(planar.len()) else {
            return false;
        };
        let (a, b) = chunk.as_mut_slices();
        a.copy_from_slice(&planar[..a.len()]);
        b.copy_from_slice(&planar[a.len()..]);
        chunk.commit_all();
        // Samples first, header last: a visible header means its samples are there.
        self.headers
            .push(ChunkHeader {
                generation,
                frames: frames as u32,
            })
            .is_ok()
    }
}

/// Everything the audio thread needs besides the engine.
pub struct PlayerConfig {
    /// The engine; `outputs[m]` is the output index of monitor `m` (in [`Monitor::ALL`]
    /// order). Its `max_block_frames` is the chunk size of the transport.
    pub engine: EngineConfig,
    pub outputs: [usize; 3],
    pub monitor: Monitor,
    /// Channels of the device buffer (interleaved); monitors go to the first channels in
    /// layout order, the rest are silent.
    pub device_channels: usize,
    /// Session length; playback ends there.
    pub total_frames: u64,
    pub start_frame: u64,
    /// Source read-ahead (ring capacity), frames.
    pub ring_frames: usize,
    pub crossfade_frames: usize,
    pub start_playing: bool,
}

/// The ends of the Player's channels that other threads hold.
pub struct PlayerChannels {
    pub input: InputWriter,
    pub reader_commands: Consumer<ReaderCommand>,
    pub control: Producer<Control>,
    pub status: Consumer<Status>,
    /// The heard signal, interleaved with the device's channel count.
    pub meter: Consumer<f32>,
}

/// A linear gain ramp advanced sample by sample.
#[derive(Debug, Clone, Copy)]
struct Ramp {
    value: f32,
    target: f32,
    step: f32,
    left: usize,
}

impl Ramp {
    fn at(value: f32) -> Ramp {
        Ramp {
            value,
            target: value,
            step: 0.0,
            left: 0,
        }
    }

    fn go(&mut self, target: f32, frames: usize) {
        if target == self.target && (self.left > 0 || self.value == target) {
            return;
        }
        self.target = target;
        if frames == 0 {
            self.value = target;
            self.left = 0;
        } else {
            self.step = (target - self.value) / frames as f32;
            self.left = frames;
        }
    }

    fn is_unity(&self) -> bool {
        self.value == 1.0 && self.left == 0
    }

    fn is_silent(&self) -> bool {
        self.value == 0.0 && self.left == 0
    }

    fn next(&mut self) -> f32 {
        if self.left > 0 {
            self.left -= 1;
            self.value = if self.left == 0 {
                self.target
            } else {
                self.value + self.step
            };
        }
        self.value
    }
}

/// Frames a newly enabled monitor is rendered unheard before the crossfade starts.
pub fn warmup_frames(latency: usize, sample_rate: u32) -> usize {
    latency + (WARMUP_S * sample_rate as f64).round() as usize
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Switch {
    Idle,
    Warming { to: Monitor, left: usize },
    Fading { to: Monitor, pos: usize },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    Pause,
    Seek(u64),
}

/// The audio-thread processor: `new` allocates and validates, `process` renders a device
/// buffer without allocating, locking, logging or touching files.
pub struct Player {
    engine: Engine,
    outputs: [usize; 3],
    channels: [usize; 3],
    device_channels: usize,
    current: Monitor,
    switch: Switch,
    queued: Option<Monitor>,
    warmup_frames: usize,
    crossfade_frames: usize,
    /// sin(π/2 · k / crossfade_frames), k = 0 … crossfade_frames.
    fade_table: Vec<f32>,
    samples: Consumer<f32>,
    headers: Consumer<ChunkHeader>,
    staged: Vec<f32>,
    staged_frames: usize,
    staged_pos: usize,
    n_objects: usize,
    bed_inputs: Vec<(usize, usize)>,
    generation: u32,
    reader_commands: Producer<ReaderCommand>,
    control: Consumer<Control>,
    status: Producer<Status>,
    meter: Producer<f32>,
    playing: bool,
    ended: bool,
    pending: Option<Pending>,
    fade: Ramp,
    /// Waiting for source data after a start, seek or underrun (not counted again).
    starting: bool,
    fade_in_on_start: bool,
    preroll_left: usize,
    position: u64,
    total_frames: u64,
    delivered: u64,
    underruns: u64,
    matching: bool,
    match_gains: [f32; 3],
    gains: [Ramp; 3],
    gain_old: Vec<f32>,
    gain_new: Vec<f32>,
}

fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

impl Player {
    pub fn new(config: PlayerConfig) -> Result<(Player, PlayerChannels), PlaybackError> {
        let block = config.engine.max_block_frames;
        let n_objects = config.engine.objects.len();
        let bed_inputs: Vec<(usize, usize)> = config
            .engine
            .beds
            .iter()
            .enumerate()
            .flat_map(|(b, bed)| (0..bed.layout.num_channels()).map(move |c| (b, c)))
            .collect();
        let n_inputs = n_objects + bed_inputs.len();
        let engine = Engine::new(config.engine)?;
        let mut channels = [0; 3];
        for (m, &o) in config.outputs.iter().enumerate() {
            if o >= engine.num_outputs() {
                return Err(PlaybackError::Config {
                    parameter: "monitor output",
                    value: o.to_string(),
                    allowed: format!("0…{}", engine.num_outputs().saturating_sub(1)),
                });
            }
            channels[m] = engine.output_layout(o).num_channels();
        }
        let dc = config.device_channels;
        if !(2..=crate::engine::MAX_OUTPUT_CHANNELS).contains(&dc) {
            return Err(PlaybackError::Config {
                parameter: "device channels",
                value: dc.to_string(),
                allowed: format!("2…{}", crate::engine::MAX_OUTPUT_CHANNELS),
            });
        }
        if config.monitor == Monitor::Speakers && channels[2] > dc {
            return Err(PlaybackError::TooFewChannels {
                layout: engine.output_layout(config.outputs[2]).name.clone(),
                needed: channels[2],
                device: "the device".into(),
                available: dc,
            });
        }
        if config.total_frames == 0 {
            return Err(PlaybackError::Nothing("the session is empty".into()));
        }
        let n_chunks = config.ring_frames.div_ceil(block).max(4);
        let (sp, sc) = RingBuffer::new((n_chunks * block * n_inputs).max(1));
        let (hp, hc) = RingBuffer::new(n_chunks);
        let (rp, rc) = RingBuffer::new(64);
        let (cp, cc) = RingBuffer::new(256);
        let (stp, stc) = RingBuffer::new(256);
        // The heard signal: a second of audio, plenty for a UI polling at 10 Hz.
        let (mp, mc) = RingBuffer::new(engine.sample_rate() as usize * dc);
        let xf = config.crossfade_frames.max(1);
        let fade_table = (0..=xf)
            .map(|k| (std::f64::consts::FRAC_PI_2 * k as f64 / xf as f64).sin() as f32)
            .collect();
        let mut engine = engine;
        for o in 0..engine.num_outputs() {
            engine.set_output_enabled(o, o == config.outputs[config.monitor.index()]);
        }
        let start = config.start_frame.min(config.total_frames);
        engine.seek(start);
        let latency = engine.latency();
        let rate = engine.sample_rate();
        let player = Player {
            warmup_frames: warmup_frames(latency, rate),
            crossfade_frames: xf,
            fade_table,
            outputs: config.outputs,
            channels,
            device_channels: dc,
            current: config.monitor,
            switch: Switch::Idle,
            queued: None,
            samples: sc,
            headers: hc,
            staged: vec![0.0; block * n_inputs],
            staged_frames: 0,
            staged_pos: 0,
            n_objects,
            bed_inputs,
            generation: 0,
            reader_commands: rp,
            control: cc,
            status: stp,
            meter: mp,
            playing: config.start_playing,
            ended: false,
            pending: None,
            fade: Ramp::at(if config.start_playing { 1.0 } else { 0.0 }),
            starting: true,
            fade_in_on_start: false,
            preroll_left: latency,
            position: start,
            total_frames: config.total_frames,
            delivered: 0,
            underruns: 0,
            matching: false,
            match_gains: [1.0; 3],
            gains: [Ramp::at(1.0); 3],
            gain_old: vec![0.0; block],
            gain_new: vec![0.0; block],
            engine,
        };
        let channels = PlayerChannels {
            input: InputWriter {
                samples: sp,
                headers: hp,
                n_inputs,
                chunk_frames: block,
            },
            reader_commands: rc,
            control: cp,
            status: stc,
            meter: mc,
        };
        Ok((player, channels))
    }

    pub fn device_channels(&self) -> usize {
        self.device_channels
    }

    pub fn sample_rate(&self) -> u32 {
        self.engine.sample_rate()
    }

    /// Frames of source data waiting in the ring (what the reader has read ahead).
    pub fn buffered_frames(&self) -> usize {
        let n_inputs = self.n_objects + self.bed_inputs.len();
        self.samples.slots() / n_inputs.max(1) + (self.staged_frames - self.staged_pos)
    }

    /// The status as it would be reported now.
    pub fn status(&self) -> Status {
        Status {
            position_frames: self.position,
            monitor: self.current,
            switching_to: match self.switch {
                Switch::Idle => None,
                Switch::Warming { to, .. } | Switch::Fading { to, .. } => Some(to),
            },
            playing: self.playing,
            ended: self.ended,
            delivered_frames: self.delivered,
            underruns: self.underruns,
            matching: self.matching,
            generation: self.generation,
        }
    }

    /// Engine latency (pre-rolled after every start and seek), frames.
    pub fn latency(&self) -> usize {
        self.engine.latency()
    }

    /// Applies a control message directly (the audio thread does this for every message
    /// in the control ring at the start of [`Player::process`]).
    pub fn apply(&mut self, control: Control) {
        let xf = self.crossfade_frames;
        match control {
            Control::TogglePlay => {
                let playing = self.playing && self.pending != Some(Pending::Pause);
                self.apply(if playing && !self.ended {
                    Control::Pause
                } else {
                    Control::Play
                });
            }
            Control::Play => {
                if self.ended {
                    self.do_seek(0);
                    self.playing = true;
                    self.fade = Ramp::at(0.0);
                    return;
                }
                if self.pending == Some(Pending::Pause) {
                    self.pending = None;
                }
                self.playing = true;
                self.fade.go(1.0, xf);
            }
            Control::Pause => {
                if self.playing && !self.fade.is_silent() && !self.ended && !self.starting {
                    if self.pending.is_none() {
                        self.pending = Some(Pending::Pause);
                    }
                    self.fade.go(0.0, xf);
                } else {
                    self.playing = false;
                    self.fade = Ramp::at(0.0);
                }
            }
            Control::Seek(frame) => {
                let frame = frame.min(self.total_frames);
                if self.playing && !self.fade.is_silent() && !self.ended && !self.starting {
                    self.pending = Some(Pending::Seek(frame));
                    self.fade.go(0.0, xf);
                } else {
                    self.do_seek(frame);
                }
            }
            Control::Monitor(m) => {
                if m == Monitor::Speakers && self.channels[2] > self.device_channels {
                    return;
                }
                match self.switch {
                    Switch::Warming { to, .. } | Switch::Fading { to, .. } => {
                        self.queued = (m != to).then_some(m);
                    }
                    Switch::Idle if m == self.current => {}
                    Switch::Idle => {
                        let o = self.outputs[m.index()];
                        self.engine.set_output_enabled(o, true);
                        if !self.playing || self.fade.is_silent() || self.starting {
                            self.finish_switch(m);
                        } else {
                            self.switch = Switch::Warming {
                                to: m,
                                left: self.warmup_frames,
                            };
                        }
                    }
                }
            }
            Control::Match(on) => {
                self.matching = on;
                for m in 0..3 {
                    let target = if on { self.match_gains[m] } else { 1.0 };
                    self.gains[m].go(target, xf);
                }
            }
            Control::MatchGains(db) => {
                for (m, &db) in db.iter().enumerate() {
                    let d = if db.is_finite() {
                        db.clamp(-MAX_MATCH_DB as f32, MAX_MATCH_DB as f32)
                    } else {
                        0.0
                    };
                    self.match_gains[m] = db_to_gain(d);
                    if self.matching {
                        self.gains[m].go(self.match_gains[m], xf);
                    }
                }
            }
        }
    }

    fn finish_switch(&mut self, to: Monitor) {
        let old = self.outputs[self.current.index()];
        let new = self.outputs[to.index()];
        if old != new {
            self.engine.set_output_enabled(old, false);
        }
        self.current = to;
        self.switch = Switch::Idle;
        if let Some(q) = self.queued.take() {
            self.apply(Control::Monitor(q));
        }
    }

    fn do_seek(&mut self, frame: u64) {
        if let Switch::Warming { to, .. } | Switch::Fading { to, .. } = self.switch {
            self.finish_switch(to);
        }
        self.pending = None;
        self.engine.seek(frame);
        self.generation = self.generation.wrapping_add(1);
        // The ring holds 64 commands; the reader drains it every millisecond.
        let _ = self.reader_commands.push(ReaderCommand {
            generation: self.generation,
            frame,
        });
        self.staged_frames = 0;
        self.staged_pos = 0;
        self.position = frame;
        self.ended = frame >= self.total_frames;
        self.starting = true;
        self.fade_in_on_start = true;
        self.preroll_left = self.engine.latency();
        self.fade = Ramp::at(0.0);
    }

    /// Makes sure staged input is available, dropping chunks of older generations.
    fn ensure_staged(&mut self) -> bool {
        if self.staged_pos < self.staged_frames {
            return true;
        }
        let n_inputs = self.n_objects + self.bed_inputs.len();
        loop {
            let Ok(header) = self.headers.peek().copied() else {
                return false;
            };
            let frames = header.frames as usize;
            let len = frames * n_inputs;
            let Ok(chunk) = self.samples.read_chunk(len) else {
                return false;
            };
            if header.generation == self.generation {
                let (a, b) = chunk.as_slices();
                self.staged[..a.len()].copy_from_slice(a);
                self.staged[a.len()..len].copy_from_slice(b);
                self.staged_frames = frames;
                self.staged_pos = 0;
            }
            chunk.commit_all();
            let _ = self.headers.pop();
            if header.generation == self.generation && frames > 0 {
                return true;
            }
        }
    }

    /// Copies `n` staged frames into the engine inputs and renders them.
    fn render(&mut self, n: usize) {
        let sf = self.staged_frames;
        let at = self.staged_pos;
        for i in 0..self.n_objects {
            let src = &self.staged[i * sf + at..i * sf + at + n];
            self.engine.object_input(i)[..n].copy_from_slice(src);
        }
        for (k, &(b, c)) in self.bed_inputs.iter().enumerate() {
            let i = self.n_objects + k;
            let src = &self.staged[i * sf + at..i * sf + at + n];
            self.engine.bed_input(b, c)[..n].copy_from_slice(src);
        }
        self.engine.process(n);
        self.staged_pos += n;
    }

    /// Renders one device buffer (interleaved, `device_channels` per frame).
    pub fn process(&mut self, out: &mut [f32]) {
        while let Ok(c) = self.control.pop() {
            self.apply(c);
        }
        let dc = self.device_channels;
        let frames = out.len() / dc;
        let block = self.engine.max_block_frames();
        let mut done = 0;
        while done < frames {
            if self.fade.is_silent()
                && let Some(p) = self.pending.take()
            {
                match p {
                    Pending::Pause => self.playing = false,
                    Pending::Seek(f) => self.do_seek(f),
                }
            }
            if !self.playing || self.ended {
                break;
            }
            if !self.ensure_staged() {
                if !self.starting {
                    self.underruns += 1;
                    self.starting = true;
                    self.fade_in_on_start = true;
                }
                break;
            }
            let avail = self.staged_frames - self.staged_pos;
            if self.preroll_left > 0 {
                let n = self.preroll_left.min(avail).min(block);
                self.render(n);
                self.preroll_left -= n;
                continue;
            }
            if self.starting {
                self.starting = false;
                if self.fade_in_on_start {
                    self.fade = Ramp::at(0.0);
                    self.fade.go(1.0, self.crossfade_frames);
                }
            }
            let mut n = (frames - done)
                .min(avail)
                .min(block)
                .min((self.total_frames - self.position) as usize);
            match self.switch {
                Switch::Warming { left, .. } => n = n.min(left),
                Switch::Fading { pos, .. } => n = n.min(self.crossfade_frames - pos),
                Switch::Idle => {}
            }
            if n > 0 {
                self.render(n);
                self.write(&mut out[done * dc..(done + n) * dc], n);
                let _ = self.push_meter(&out[done * dc..(done + n) * dc]);
                self.position += n as u64;
                done += n;
            }
            match self.switch {
                Switch::Warming { to, left } => {
                    self.switch = if left == n {
                        Switch::Fading { to, pos: 0 }
                    } else {
                        Switch::Warming { to, left: left - n }
                    };
                }
                Switch::Fading { to, pos } => {
                    if pos + n >= self.crossfade_frames {
                        self.finish_switch(to);
                    } else {
                        self.switch = Switch::Fading { to, pos: pos + n };
                    }
                }
                Switch::Idle => {}
            }
            if self.position >= self.total_frames {
                self.ended = true;
            }
        }
        out[done * dc..].fill(0.0);
        self.delivered += frames as u64;
        let _ = self.status.push(self.status());
    }

    fn push_meter(&mut self, heard: &[f32]) -> bool {
        let Ok(mut chunk) = self.meter.write_chunk(heard.len()) else {
            return false;
        };
        let (a, b) = chunk.as_mut_slices();
        a.copy_from_slice(&heard[..a.len()]);
        b.copy_from_slice(&heard[a.len()..]);
        chunk.commit_all();
        true
    }

    /// Writes `n` frames of the monitor(s) into `out` with the fade, matching and
    /// crossfade gains; unscaled copies when every gain is exactly 1.
    fn write(&mut self, out: &mut [f32], n: usize) {
        let dc = self.device_channels;
        let cur = self.current.index();
        let fading = match self.switch {
            Switch::Fading { to, pos } => Some((to.index(), pos)),
            _ => None,
        };
        let unity = self.fade.is_unity() && self.gains[cur].is_unity() && fading.is_none();
        if !unity {
            let xf = self.crossfade_frames;
            for k in 0..n {
                let t = self.fade.next();
                let (a, b) = match fading {
                    Some((to, pos)) => (
                        self.fade_table[xf - (pos + k)] * self.gains[cur].next(),
                        self.fade_table[pos + k] * self.gains[to].next(),
                    ),
                    None => (self.gains[cur].next(), 0.0),
                };
                self.gain_old[k] = t * a;
                self.gain_new[k] = t * b;
            }
        }
        // Matching ramps of monitors not heard jump to their targets.
        for (m, g) in self.gains.iter_mut().enumerate() {
            if m != cur && fading.is_none_or(|(to, _)| to != m) && g.left > 0 {
                *g = Ramp::at(g.target);
            }
        }
        out.fill(0.0);
        let o = self.outputs[cur];
        let chans = self.engine.output(o);
        for (c, ch) in chans.iter().enumerate().take(dc) {
            if unity {
                for (f, &x) in ch[..n].iter().enumerate() {
                    out[f * dc + c] = x;
                }
            } else {
                for (f, (&x, &g)) in ch[..n].iter().zip(&self.gain_old[..n]).enumerate() {
                    out[f * dc + c] = x * g;
                }
            }
        }
        if let Some((to, _)) = fading {
            let chans = self.engine.output(self.outputs[to]);
            for (c, ch) in chans.iter().enumerate().take(dc) {
                for (f, (&x, &g)) in ch[..n].iter().zip(&self.gain_new[..n]).enumerate() {
                    out[f * dc + c] += x * g;
                }
            }
        }
    }

    /// Back to frame 0, paused (processing state cleared, sources re-read from the start).
    pub fn reset(&mut self) {
        self.do_seek(0);
        self.playing = false;
    }
}

// ---------------------------------------------------------------------------------------
// Session → engine configuration for playback.

/// The engine configuration for monitoring a session: outputs [speaker layout, binaural,
/// stereo], each configured as `render::render` configures it for a float file (so the
/// same chains, HRTF set, fold-down), plus which output is which monitor.
pub struct PlaySetup {
    pub engine: EngineConfig,
    /// Output index per monitor, in [`Monitor::ALL`] order.
    pub outputs: [usize; 3],
    pub layout: Layout,
}

/// Builds the playback engine configuration. The speaker monitor is `layout`, else the
/// layout the session's stereo output folds from (its immersive reference), else its
/// speaker output with the most channels, else 7.1.4. Binaural and stereo come from the session's first such outputs (defaults:
/// the built-in HRTF set without LFE; a Lo/Ro fold-down of the speaker layout).
pub fn play_setup(
    scene: &Scene,
    layout: Option<Layout>,
    hrtf: Option<&Path>,
    block_frames: usize,
) -> Result<PlaySetup, PlaybackError> {
    let f32fmt = WriteFormat::F32;
    let biggest_speakers = scene
        .outputs
        .iter()
        .filter_map(|o| match o {
            OutputSpec::Speakers { layout, .. } => Some(layout.clone()),
            _ => None,
        })
        .reduce(|a, b| {
            if b.num_channels() > a.num_channels() {
                b
            } else {
                a
            }
        });
    let fold_from = scene.outputs.iter().find_map(|o| match o {
        OutputSpec::Stereo { from, .. } => Some(from.clone()),
        _ => None,
    });
    let layout = match layout.or(fold_from).or(biggest_speakers) {
        Some(l) => l,
        None => Layout::builtin("7.1.4").map_err(|e| PlaybackError::Config {
            parameter: "layout",
            value: "7.1.4".into(),
            allowed: e.to_string(),
        })?,
    };
    let speaker_chain = scene
        .outputs
        .iter()
        .find_map(|o| match o {
            OutputSpec::Speakers {
                layout: l, chain, ..
            } if l.name == layout.name => Some(plan::chain(chain, f32fmt)),
            _ => None,
        })
        .unwrap_or_default();
    let binaural = scene.outputs.iter().find_map(|o| match o {
        OutputSpec::Binaural {
            hrtf,
            lfe_db,
            chain,
            ..
        } => Some((hrtf.clone(), *lfe_db, plan::chain(chain, f32fmt))),
        _ => None,
    });
    let (hrtf_path, lfe_db, bin_chain) = binaural.unwrap_or((None, None, Vec::new()));
    let hrtf_path = hrtf.map(Path::to_path_buf).or(hrtf_path);
    let hrtf = plan::load_hrtf(hrtf_path.as_deref(), scene.sample_rate)?;
    let stereo = scene
        .outputs
        .iter()
        .find_map(|o| match o {
            OutputSpec::Stereo {
                from, fold, chain, ..
            } => Some(OutputConfig::Stereo {
                from: from.clone(),
                fold: plan::fold_config(fold),
                chain: plan::chain(chain, f32fmt),
            }),
            _ => None,
        })
        .unwrap_or_else(|| OutputConfig::Stereo {
            from: layout.clone(),
            fold: plan::fold_config(&FoldSpec::default()),
            chain: Vec::new(),
        });
    let engine = EngineConfig {
        sample_rate: scene.sample_rate,
        max_block_frames: block_frames,
        objects: plan::object_configs(scene),
        beds: scene.beds.iter().map(plan::bed_config).collect(),
        outputs: vec![
            OutputConfig::Speakers {
                layout: layout.clone(),
                chain: speaker_chain,
            },
            OutputConfig::Binaural {
                hrtf,
                lfe_db,
                chain: bin_chain,
            },
            stereo,
        ],
    };
    Ok(PlaySetup {
        engine,
        outputs: [1, 2, 0],
        layout,
    })
}

// ---------------------------------------------------------------------------------------
// Source reading.

/// The session's sources, read block by block into the planar engine-input layout
/// (objects, then each bed's channels in layout order), zero-padded past their ends.
/// The files are read by [`SceneSources`], exactly as an offline render reads them
/// (each distinct file once, however many objects use it: an ADM master's tracks).
pub struct Sources {
    inner: SceneSources,
    objects: usize,
    bed_channels: Vec<usize>,
    block: usize,
    total_frames: u64,
}

impl Sources {
    pub fn open(scene: &Scene, block: usize) -> Result<Sources, PlaybackError> {
        let inner = SceneSources::open(scene, scene.sample_rate, block)?;
        let total_frames = scene.duration_frames.unwrap_or_else(|| inner.frames());
        Ok(Sources {
            inner,
            objects: scene.objects.len(),
            bed_channels: scene.beds.iter().map(|b| b.layout.num_channels()).collect(),
            block,
            total_frames,
        })
    }

    /// The session's length (its duration, else the longest source).
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    pub fn num_inputs(&self) -> usize {
        self.objects + self.bed_channels.iter().sum::<usize>()
    }

    pub fn seek(&mut self, frame: u64) -> Result<(), PlaybackError> {
        Ok(self.inner.seek(frame)?)
    }

    /// Reads `frames` (≤ the block) frames into `planar` (`frames × num_inputs`).
    pub fn read(&mut self, planar: &mut [f32], frames: usize) -> Result<(), PlaybackError> {
        let frames = frames.min(self.block);
        self.inner.read_block(frames)?;
        let n_obj = self.objects;
        for i in 0..n_obj {
            self.inner
                .object(i, &mut planar[i * frames..(i + 1) * frames]);
        }
        let mut k = n_obj;
        for (b, &n) in self.bed_channels.iter().enumerate() {
            for ch in 0..n {
                self.inner.bed_channel(
                    b,
                    ch,
                    &mut planar[(k + ch) * frames..(k + ch + 1) * frames],
                );
            }
            k += n;
        }
        Ok(())
    }
}

/// The reader thread's state: sources, the transport's writing end and seek commands.
pub struct SourceReader {
    sources: Sources,
    writer: InputWriter,
    commands: Consumer<ReaderCommand>,
    generation: u32,
    planar: Vec<f32>,
}

impl SourceReader {
    /// Positions the sources at `start_frame` (generation 0, as the Player expects).
    pub fn new(
        mut sources: Sources,
        writer: InputWriter,
        commands: Consumer<ReaderCommand>,
        start_frame: u64,
    ) -> Result<SourceReader, PlaybackError> {
        sources.seek(start_frame)?;
        let planar = vec![0.0; writer.chunk_frames() * writer.num_inputs()];
        Ok(SourceReader {
            sources,
            writer,
            commands,
            generation: 0,
            planar,
        })
    }

    /// Reads ahead until `stop` is set; reports a read error once and then feeds silence.
    pub fn run(mut self, stop: Arc<AtomicBool>, errors: mpsc::Sender<String>) {
        let frames = self.writer.chunk_frames();
        let mut failed = false;
        while !stop.load(Ordering::Relaxed) {
            let mut seek = None;
            while let Ok(c) = self.commands.pop() {
                seek = Some(c);
            }
            if let Some(c) = seek {
                self.generation = c.generation;
                if let Err(e) = self.sources.seek(c.frame) {
                    let _ = errors.send(e.to_string());
                    failed = true;
                }
            }
            if !self.writer.has_room() {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            if failed {
                self.planar.fill(0.0);
            } else if let Err(e) = self.sources.read(&mut self.planar, frames) {
                let _ = errors.send(e.to_string());
                failed = true;
                self.planar.fill(0.0);
            }
            self.writer.push(self.generation, &self.planar, frames);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loudness matching: integrated loudness of every monitor, measured offline.

/// Integrated loudness per monitor ([`Monitor::ALL`] order), LUFS, and whether the whole
/// session has been measured (else a running estimate over what has been).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoudnessEstimate {
    pub integrated_lufs: [f64; 3],
    pub measured_frames: u64,
    pub done: bool,
}

impl LoudnessEstimate {
    /// Gains that bring each monitor to the speaker monitor's loudness, dB (0 where a
    /// loudness is not yet known).
    pub fn match_gains_db(&self) -> [f32; 3] {
        let reference = self.integrated_lufs[Monitor::Speakers.index()];
        let mut out = [0.0f32; 3];
        for (g, &l) in out.iter_mut().zip(&self.integrated_lufs) {
            if reference.is_finite() && l.is_finite() {
                *g = (reference - l).clamp(-MAX_MATCH_DB, MAX_MATCH_DB) as f32;
            }
        }
        out
    }
}

/// Renders the session offline (same engine configuration, own sources) and meters each
/// monitor output with [`Meter`], sending an estimate after every 2 s of session audio.
pub struct LoudnessAnalysis;

impl LoudnessAnalysis {
    pub fn run(
        scene: &Scene,
        setup: &PlaySetup,
        stop: &AtomicBool,
        report: &mut dyn FnMut(LoudnessEstimate),
    ) -> Result<LoudnessEstimate, PlaybackError> {
        let block = setup.engine.max_block_frames;
        let mut sources = Sources::open(scene, block)?;
        let total = sources.total_frames();
        let mut engine = Engine::new(setup.engine.clone())?;
        let mut meters = Vec::new();
        for &o in &setup.outputs {
            let layout = engine.output_layout(o).clone();
            meters.push(Meter::new(&layout, scene.sample_rate).map_err(|source| {
                PlaybackError::Meter {
                    layout: layout.name.clone(),
                    source,
                }
            })?);
        }
        let n_obj = scene.objects.len();
        let bed_inputs: Vec<(usize, usize)> = scene
            .beds
            .iter()
            .enumerate()
            .flat_map(|(b, bed)| (0..bed.layout.num_channels()).map(move |c| (b, c)))
            .collect();
        let mut planar = vec![0.0; block * sources.num_inputs()];
        let latency = engine.latency() as u64;
        let (mut fed, mut measured) = (0u64, 0u64);
        let every = 2 * scene.sample_rate as u64;
        let mut next_report = every;
        let estimate = |meters: &[Meter], measured, done| LoudnessEstimate {
            integrated_lufs: std::array::from_fn(|m| meters[m].report().integrated_lufs),
            measured_frames: measured,
            done,
        };
        while measured < total {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            sources.read(&mut planar, block)?;
            for i in 0..n_obj {
                engine
                    .object_input(i)
                    .copy_from_slice(&planar[i * block..(i + 1) * block]);
            }
            for (k, &(b, c)) in bed_inputs.iter().enumerate() {
                let i = n_obj + k;
                engine
                    .bed_input(b, c)
                    .copy_from_slice(&planar[i * block..(i + 1) * block]);
            }
            engine.process(block);
            let skip = latency.saturating_sub(fed).min(block as u64) as usize;
            fed += block as u64;
            let keep = ((block - skip) as u64).min(total - measured) as usize;
            if keep > 0 {
                for (meter, &o) in meters.iter_mut().zip(&setup.outputs) {
                    let chans: Vec<&[f32]> = engine
                        .output(o)
                        .iter()
                        .map(|c| &c[skip..skip + keep])
                        .collect();
                    meter
                        .process_planar(&chans)
                        .map_err(|source| PlaybackError::Meter {
                            layout: "monitor".into(),
                            source,
                        })?;
                }
                measured += keep as u64;
            }
            if measured >= next_report {
                next_report += every;
                report(estimate(&meters, measured, false));
            }
        }
        let last = estimate(&meters, measured, measured >= total);
        report(last);
        Ok(last)
    }
}

// ---------------------------------------------------------------------------------------
// The control side.

/// Loudness readings of the heard signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readings {
    pub momentary_lufs: f64,
    pub short_term_lufs: f64,
    /// Maximum true peak since the last monitor switch or seek, dBTP.
    pub true_peak_dbtp: f64,
}

/// Everything `halo play` needs: the Player (to move onto the audio thread) and the
/// controller (for the UI thread).
pub struct Prepared {
    pub player: Player,
    pub controller: Controller,
}

/// Options of `prepare`.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// The monitor heard first.
    pub monitor: Monitor,
    /// The speaker monitor's layout (default: see `play_setup`).
    pub layout: Option<Layout>,
    /// HRTF file (SOFA) for the binaural monitor; `None`: the session's or the built-in set.
    pub hrtf: Option<std::path::PathBuf>,
    /// Where playback starts, seconds from the session's start.
    pub start_s: f64,
    /// Channels of the audio device; monitors play on the first ones, the rest are silent.
    pub device_channels: usize,
    /// Source read-ahead, seconds.
    pub read_ahead_s: f64,
    /// Crossfade when switching monitors, ms (0 … 1000).
    pub crossfade_ms: f64,
    /// Measure every monitor's integrated loudness in the background for matching.
    pub analyse_loudness: bool,
    /// Play at this rate (the device's): the session retimed to it ([`Scene::retimed`]),
    /// its sources resampled and the HRTF set loaded at it, exactly as an offline render of
    /// the retimed session. `None`: the session's own rate.
    pub sample_rate: Option<u32>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            monitor: Monitor::Binaural,
            layout: None,
            hrtf: None,
            start_s: 0.0,
            device_channels: 2,
            read_ahead_s: DEFAULT_READ_AHEAD_S,
            crossfade_ms: CROSSFADE_MS,
            analyse_loudness: true,
            sample_rate: None,
        }
    }
}

/// Lowest and highest rates `halo play` runs a device at (those a session may have).
pub const MIN_PLAY_RATE: u32 = 8_000;
pub const MAX_PLAY_RATE: u32 = 384_000;

/// Whether the session can be played retimed to `rate`: the rate is one a session may
/// have, and every EQ band of the session's chains lies below its Nyquist frequency (a
/// band the session rate allows may not fit a lower device rate).
fn check_play_rate(scene: &Scene, rate: u32) -> Result<(), PlaybackError> {
    if !(MIN_PLAY_RATE..=MAX_PLAY_RATE).contains(&rate) {
        return Err(PlaybackError::Config {
            parameter: "playback sample rate",
            value: format!("{rate} Hz"),
            allowed: format!("{MIN_PLAY_RATE}…{MAX_PLAY_RATE} Hz"),
        });
    }
    let nyquist = rate as f64 / 2.0;
    let high = scene
        .outputs
        .iter()
        .flat_map(|o| o.chain())
        .filter_map(|p| match p {
            crate::dsp::ProcessorSettings::Eq(eq) => Some(&eq.bands),
            _ => None,
        })
        .flatten()
        .map(|b| b.freq_hz)
        .find(|&f| f >= nyquist);
    match high {
        Some(f) => Err(PlaybackError::Config {
            parameter: "playback sample rate",
            value: format!(
                "{rate} Hz (the device's), for a {} Hz session with an EQ band at {f} Hz",
                scene.sample_rate
            ),
            allowed: format!(
                "a rate above {} Hz: pick a device that runs at {} Hz with --device",
                2.0 * f,
                scene.sample_rate
            ),
        }),
        None => Ok(()),
    }
}

/// One output format a device offers: channels, a rate range, and whether the samples
/// are 32-bit float (the only format `halo play` writes). cpal's supported-config ranges
/// without cpal, so that the rate choice is testable without the `playback` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFormat {
    pub channels: usize,
    pub min_rate: u32,
    pub max_rate: u32,
    pub float32: bool,
}

impl DeviceFormat {
    fn takes(&self, rate: u32, channels: usize) -> bool {
        self.float32 && self.channels >= channels && (self.min_rate..=self.max_rate).contains(&rate)
    }
}

/// The rate `halo play` runs a device at, given its float formats and `channels` needed:
/// the session's rate if the device takes it; else the device's default rate, if it takes
/// that and it lies in [`MIN_PLAY_RATE`]…[`MAX_PLAY_RATE`]; else the highest rate it takes
/// in that range. `None`: no float format with that many channels in that range.
pub fn choose_device_rate(
    session_rate: u32,
    formats: &[DeviceFormat],
    default_rate: Option<u32>,
    channels: usize,
) -> Option<u32> {
    let takes = |rate: u32| formats.iter().any(|f| f.takes(rate, channels));
    if takes(session_rate) {
        return Some(session_rate);
    }
    if let Some(d) = default_rate
        && (MIN_PLAY_RATE..=MAX_PLAY_RATE).contains(&d)
        && takes(d)
    {
        return Some(d);
    }
    formats
        .iter()
        .filter(|f| {
            f.float32
                && f.channels >= channels
                && f.min_rate <= MAX_PLAY_RATE
                && f.max_rate >= MIN_PLAY_RATE
                && f.min_rate <= f.max_rate
        })
        .map(|f| f.max_rate.min(MAX_PLAY_RATE))
        .max()
}

/// The most channels the device takes as 32-bit float at `rate` (0: none).
pub fn max_channels_at(formats: &[DeviceFormat], rate: u32) -> usize {
    formats
        .iter()
        .filter(|f| f.takes(rate, 0))
        .map(|f| f.channels)
        .max()
        .unwrap_or(0)
}

/// The error for a device without a usable float format at `what`.
fn no_rate(formats: &[DeviceFormat], label: &str, what: &str) -> PlaybackError {
    let rates: Vec<String> = formats
        .iter()
        .filter(|f| f.float32)
        .map(|f| format!("{} ch at {}–{} Hz", f.channels, f.min_rate, f.max_rate))
        .collect();
    PlaybackError::Config {
        parameter: "sample rate",
        value: format!("{what} on {label}"),
        allowed: if rates.is_empty() {
            "the device offers no 32-bit float output; try --device alsa:plug or the default device"
                .into()
        } else {
            format!(
                "{} (use a device that resamples, such as alsa:default)",
                rates.join(", ")
            )
        },
    }
}

/// How `halo play` opens a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePlan {
    /// The stream's rate (see [`choose_device_rate`]); the session is retimed to it when
    /// it is not the session's.
    pub rate: u32,
    /// The stream's channels: the speaker layout's if the device takes them, else 2.
    pub channels: usize,
    /// The most channels the device takes at `rate`.
    pub max_channels: usize,
}

/// Plans the stream for a session at `session_rate` whose speaker monitor is `layout`,
/// starting on `monitor`, on a device (`label`) offering `formats` with `default_rate`.
/// The rate must take the channels the starting monitor needs (the layout's for the
/// speaker monitor, else 2). Errors: no float format in 8–384 kHz, or too few channels.
pub fn plan_device(
    session_rate: u32,
    formats: &[DeviceFormat],
    default_rate: Option<u32>,
    monitor: Monitor,
    layout: &Layout,
    label: &str,
) -> Result<DevicePlan, PlaybackError> {
    let needed = layout.num_channels();
    let need = if monitor == Monitor::Speakers {
        needed.max(2)
    } else {
        2
    };
    let Some(rate) = choose_device_rate(session_rate, formats, default_rate, need) else {
        let most = formats
            .iter()
            .filter(|f| f.float32 && f.min_rate <= MAX_PLAY_RATE && f.max_rate >= MIN_PLAY_RATE)
            .map(|f| f.channels)
            .max();
        return Err(match most {
            None => no_rate(
                formats,
                label,
                &format!(
                    "{session_rate} Hz (the session's) or any rate of {MIN_PLAY_RATE}…{MAX_PLAY_RATE} Hz"
                ),
            ),
            Some(available) => PlaybackError::TooFewChannels {
                layout: if monitor == Monitor::Speakers {
                    layout.name.clone()
                } else {
                    "binaural/stereo".into()
                },
                needed: need,
                device: label.to_string(),
                available,
            },
        });
    };
    let max_channels = max_channels_at(formats, rate);
    Ok(DevicePlan {
        rate,
        channels: if max_channels >= needed {
            needed.max(2)
        } else {
            2
        },
        max_channels,
    })
}

/// Opens the session's sources, builds the Player and starts the reader (and, if asked,
/// the loudness analysis) threads. With [`PlayOptions::sample_rate`] set to another rate,
/// everything runs on the session retimed to it.
pub fn prepare(scene: &Scene, options: &PlayOptions) -> Result<Prepared, PlaybackError> {
    if !(options.start_s.is_finite() && options.start_s >= 0.0) {
        return Err(PlaybackError::Config {
            parameter: "--start",
            value: options.start_s.to_string(),
            allowed: "a time ≥ 0 in seconds".into(),
        });
    }
    if !(options.crossfade_ms.is_finite() && (0.0..=1000.0).contains(&options.crossfade_ms)) {
        return Err(PlaybackError::Config {
            parameter: "crossfade",
            value: options.crossfade_ms.to_string(),
            allowed: "0…1000 ms".into(),
        });
    }
    let retimed;
    let scene = match options.sample_rate {
        Some(rate) if rate != scene.sample_rate => {
            check_play_rate(scene, rate)?;
            retimed = scene.retimed(rate);
            &retimed
        }
        _ => scene,
    };
    let setup = play_setup(
        scene,
        options.layout.clone(),
        options.hrtf.as_deref(),
        CHUNK_FRAMES,
    )?;
    let sources = Sources::open(scene, CHUNK_FRAMES)?;
    let total = sources.total_frames();
    if total == 0 {
        return Err(PlaybackError::Nothing(
            "the session is empty: no source has any audio and no duration is given".into(),
        ));
    }
    let rate = scene.sample_rate as f64;
    let start_frame = ((options.start_s * rate).round() as u64).min(total);
    let layout = setup.layout.clone();
    let (player, channels) = Player::new(PlayerConfig {
        engine: setup.engine.clone(),
        outputs: setup.outputs,
        monitor: options.monitor,
        device_channels: options.device_channels,
        total_frames: total,
        start_frame,
        ring_frames: (options.read_ahead_s.max(0.0) * rate) as usize,
        crossfade_frames: ((options.crossfade_ms / 1000.0 * rate).round() as usize).max(1),
        start_playing: true,
    })?;
    let reader = SourceReader::new(
        sources,
        channels.input,
        channels.reader_commands,
        start_frame,
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let (err_tx, err_rx) = mpsc::channel();
    let mut threads = Vec::new();
    {
        let stop = stop.clone();
        let err_tx = err_tx.clone();
        threads.push(
            std::thread::Builder::new()
                .name("halo-reader".into())
                .spawn(move || reader.run(stop, err_tx))
                .map_err(|e| PlaybackError::Device(format!("cannot start reader thread: {e}")))?,
        );
    }
    let (est_tx, est_rx) = mpsc::channel();
    if options.analyse_loudness {
        let stop = stop.clone();
        let scene = scene.clone();
        let setup = PlaySetup {
            engine: setup.engine.clone(),
            outputs: setup.outputs,
            layout: setup.layout.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name("halo-loudness".into())
                .spawn(move || {
                    let mut send = |e: LoudnessEstimate| {
                        let _ = est_tx.send(e);
                    };
                    if let Err(e) = LoudnessAnalysis::run(&scene, &setup, &stop, &mut send) {
                        let _ = err_tx.send(format!("loudness analysis: {e}"));
                    }
                })
                .map_err(|e| PlaybackError::Device(format!("cannot start analysis thread: {e}")))?,
        );
    }
    let two = Layout::builtin("2.0").map_err(|e| PlaybackError::Config {
        parameter: "layout",
        value: "2.0".into(),
        allowed: e.to_string(),
    })?;
    let meter_for = |l: &Layout| {
        Meter::new(l, scene.sample_rate).map_err(|source| PlaybackError::Meter {
            layout: l.name.clone(),
            source,
        })
    };
    let dc = options.device_channels;
    let controller = Controller {
        control: channels.control,
        status: channels.status,
        meter_in: channels.meter,
        last: player.status(),
        stereo_meter: meter_for(&two)?,
        speaker_meter: if layout.num_channels() <= dc {
            Some(meter_for(&layout)?)
        } else {
            None
        },
        layout,
        device_channels: dc,
        planar: vec![vec![0.0; 4800]; dc],
        interleaved: vec![0.0; 4800 * dc],
        errors: err_rx,
        estimates: est_rx,
        estimate: None,
        stop,
        threads,
        sample_rate: scene.sample_rate,
        total_frames: total,
        metered_monitor: options.monitor,
        metered_generation: 0,
    };
    Ok(Prepared { player, controller })
}

/// The UI side of playback: controls in, status and meters out.
pub struct Controller {
    control: Producer<Control>,
    status: Consumer<Status>,
    meter_in: Consumer<f32>,
    last: Status,
    stereo_meter: Meter,
    speaker_meter: Option<Meter>,
    layout: Layout,
    device_channels: usize,
    planar: Vec<Vec<f32>>,
    interleaved: Vec<f32>,
    errors: mpsc::Receiver<String>,
    estimates: mpsc::Receiver<LoudnessEstimate>,
    estimate: Option<LoudnessEstimate>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    sample_rate: u32,
    total_frames: u64,
    metered_monitor: Monitor,
    metered_generation: u32,
}

impl Controller {
    /// Sends a control message; false if the ring is full (the audio thread is stuck).
    pub fn send(&mut self, c: Control) -> bool {
        self.control.push(c).is_ok()
    }

    /// Whether the speaker monitor fits the device.
    pub fn speakers_available(&self) -> bool {
        self.speaker_meter.is_some()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn device_channels(&self) -> usize {
        self.device_channels
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// The loudness estimate so far.
    pub fn estimate(&self) -> Option<LoudnessEstimate> {
        self.estimate
    }

    /// Drains status, meter samples, loudness estimates (forwarding matching gains to the
    /// audio thread) and errors; returns the latest status and any error messages.
    pub fn poll(&mut self) -> (Status, Vec<String>) {
        while let Ok(s) = self.status.pop() {
            self.last = s;
        }
        let mut latest = None;
        while let Ok(e) = self.estimates.try_recv() {
            latest = Some(e);
        }
        if let Some(e) = latest {
            self.estimate = Some(e);
            let _ = self.control.push(Control::MatchGains(e.match_gains_db()));
        }
        if self.last.monitor != self.metered_monitor
            || self.last.generation != self.metered_generation
        {
            self.metered_monitor = self.last.monitor;
            self.metered_generation = self.last.generation;
            self.stereo_meter.reset();
            if let Some(m) = &mut self.speaker_meter {
                m.reset();
            }
        }
        let dc = self.device_channels;
        let k = match self.metered_monitor {
            Monitor::Speakers => self.layout.num_channels(),
            _ => 2,
        };
        loop {
            let avail = self.meter_in.slots() / dc;
            let frames = avail.min(self.interleaved.len() / dc);
            if frames == 0 {
                break;
            }
            let Ok(chunk) = self.meter_in.read_chunk(frames * dc) else {
                break;
            };
            let (a, b) = chunk.as_slices();
            self.interleaved[..a.len()].copy_from_slice(a);
            self.interleaved[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
            for (c, ch) in self.planar.iter_mut().enumerate().take(k) {
                for (f, x) in ch[..frames].iter_mut().enumerate() {
                    *x = self.interleaved[f * dc + c];
                }
            }
            let chans: Vec<&[f32]> = self.planar[..k].iter().map(|c| &c[..frames]).collect();
            let meter = match self.metered_monitor {
                Monitor::Speakers => self.speaker_meter.as_mut(),
                _ => Some(&mut self.stereo_meter),
            };
            if let Some(m) = meter {
                let _ = m.process_planar(&chans);
            }
        }
        let errors = self.errors.try_iter().collect();
        (self.last, errors)
    }

    /// Momentary, short-term and true peak of what is heard.
    pub fn readings(&self) -> Readings {
        let m = match self.metered_monitor {
            Monitor::Speakers => self.speaker_meter.as_ref().unwrap_or(&self.stereo_meter),
            _ => &self.stereo_meter,
        };
        Readings {
            momentary_lufs: m.momentary_lufs(),
            short_term_lufs: m.short_term_lufs(),
            true_peak_dbtp: m.report().true_peak_dbtp,
        }
    }

    /// Stops and joins the reader and analysis threads.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------
// The sound device (cpal) and the terminal, behind the `playback` feature.

/// Output through cpal (the only module that touches it). 32-bit float streams only: every
/// desktop backend (ALSA `plug`/`default`, PulseAudio, PipeWire, CoreAudio, WASAPI)
/// offers f32, and converting in the callback would be one more thing to get wrong.
#[cfg(feature = "playback")]
pub mod device {
    use super::{DeviceFormat, PlaybackError, Player};
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use std::sync::mpsc;

    /// A callback that sees every delivered buffer (tests record with it).
    pub type Tap = Box<dyn FnMut(&[f32]) + Send>;

    /// The output device named `name` — a cpal device id (`alsa:null`, `alsa:hw:0,0`) or
    /// a device's displayed name — or the default output device.
    pub fn open(name: Option<&str>) -> Result<(cpal::Device, String), PlaybackError> {
        let host = cpal::default_host();
        let device = match name {
            None => host.default_output_device().ok_or_else(|| {
                PlaybackError::Device(
                    "no default output device (is a sound card or sound server present? give --device alsa:null to test without one)".into(),
                )
            })?,
            Some(name) => {
                let by_id = name
                    .parse::<cpal::DeviceId>()
                    .ok()
                    .and_then(|id| host.device_by_id(&id));
                match by_id {
                    Some(d) => d,
                    None => {
                        let devices: Vec<cpal::Device> = host
                            .output_devices()
                            .map_err(|e| PlaybackError::Device(format!("cannot list devices: {e}")))?
                            .collect();
                        let names: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
                        devices
                            .into_iter()
                            .find(|d| d.to_string() == name)
                            .ok_or_else(|| PlaybackError::Config {
                                parameter: "--device",
                                value: name.to_string(),
                                allowed: format!(
                                    "a device id such as alsa:null or alsa:default, or one of: {}",
                                    names.join(", ")
                                ),
                            })?
                    }
                }
            }
        };
        let label = device.to_string();
        Ok((device, label))
    }

    /// The output formats the device offers, and its default rate (if it reports one).
    pub fn formats(
        device: &cpal::Device,
        label: &str,
    ) -> Result<(Vec<DeviceFormat>, Option<u32>), PlaybackError> {
        let formats = device
            .supported_output_configs()
            .map_err(|e| PlaybackError::Device(format!("{label}: cannot query formats: {e}")))?
            .map(|c| DeviceFormat {
                channels: c.channels() as usize,
                min_rate: c.min_sample_rate(),
                max_rate: c.max_sample_rate(),
                float32: c.sample_format() == cpal::SampleFormat::F32,
            })
            .collect();
        let default_rate = device.default_output_config().ok().map(|c| c.sample_rate());
        Ok((formats, default_rate))
    }

    /// The most channels the device takes as f32 at `rate`.
    pub fn max_channels(
        device: &cpal::Device,
        label: &str,
        rate: u32,
    ) -> Result<usize, PlaybackError> {
        let (formats, _) = formats(device, label)?;
        match super::max_channels_at(&formats, rate) {
            0 => Err(super::no_rate(&formats, label, &format!("{rate} Hz"))),
            n => Ok(n),
        }
    }

    /// What the device reported: fatal errors end playback; xruns (the device ran dry)
    /// and route or scheduling notes do not.
    #[derive(Debug, Clone)]
    pub enum DeviceEvent {
        Fatal(String),
        Xrun,
        Note(String),
    }

    /// A running output stream; what the device reports arrives on `events`.
    pub struct Output {
        _stream: cpal::Stream,
        pub events: mpsc::Receiver<DeviceEvent>,
    }

    /// Builds and starts a stream that runs `player` in its callback.
    pub fn start(
        device: &cpal::Device,
        label: &str,
        mut player: Player,
        buffer_frames: Option<u32>,
        mut tap: Option<Tap>,
    ) -> Result<Output, PlaybackError> {
        let config = cpal::StreamConfig {
            channels: player.device_channels() as u16,
            sample_rate: player.sample_rate(),
            buffer_size: match buffer_frames {
                Some(n) => cpal::BufferSize::Fixed(n),
                None => cpal::BufferSize::Default,
            },
        };
        let (tx, rx) = mpsc::channel();
        let stream = device
            .build_output_stream(
                config,
                move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    player.process(data);
                    if let Some(t) = tap.as_mut() {
                        t(data);
                    }
                },
                move |e: cpal::Error| {
                    let event = match e.kind() {
                        cpal::ErrorKind::Xrun => DeviceEvent::Xrun,
                        cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {
                            DeviceEvent::Note(e.to_string())
                        }
                        _ => DeviceEvent::Fatal(e.to_string()),
                    };
                    let _ = tx.send(event);
                },
                None,
            )
            .map_err(|e| {
                PlaybackError::Device(format!(
                    "{label}: cannot open {} channels at {} Hz{}: {e}",
                    config.channels,
                    config.sample_rate,
                    buffer_frames.map_or(String::new(), |n| format!(", {n}-frame buffer"))
                ))
            })?;
        stream
            .play()
            .map_err(|e| PlaybackError::Device(format!("{label}: cannot start: {e}")))?;
        Ok(Output {
            _stream: stream,
            events: rx,
        })
    }
}

/// `halo play`: opens the device, starts playback and runs the terminal UI until `q`
/// (or, without a terminal, until the end). Returns an error for device trouble.
#[cfg(feature = "playback")]
pub fn play_in_terminal(
    scene: &Scene,
    mut options: PlayOptions,
    device_name: Option<&str>,
    buffer_frames: Option<u32>,
) -> Result<(), PlaybackError> {
    use crossterm::{cursor, event, queue, style, terminal};
    use std::io::{IsTerminal, Write};

    if let Some(n) = buffer_frames
        && !(16..=16384).contains(&n)
    {
        return Err(PlaybackError::Config {
            parameter: "--buffer",
            value: n.to_string(),
            allowed: "16…16384 frames".into(),
        });
    }
    let (dev, label) = device::open(device_name)?;
    let setup_layout =
        play_setup(scene, options.layout.clone(), options.hrtf.as_deref(), 1)?.layout;
    let (formats, default_rate) = device::formats(&dev, &label)?;
    let plan = plan_device(
        scene.sample_rate,
        &formats,
        default_rate,
        options.monitor,
        &setup_layout,
        &label,
    )?;
    let max_ch = plan.max_channels;
    options.device_channels = plan.channels;
    if plan.rate != scene.sample_rate {
        eprintln!(
            "halo play: {label} runs at {} Hz; playing the {} Hz session resampled to it (offline renders stay at {} Hz)",
            plan.rate, scene.sample_rate, scene.sample_rate
        );
        options.sample_rate = Some(plan.rate);
    }
    let Prepared {
        player,
        mut controller,
    } = prepare(scene, &options)?;
    let rate = controller.sample_rate() as f64;
    // Let the reader get ahead before the device starts pulling.
    let t = std::time::Instant::now();
    let want = (rate * options.read_ahead_s / 2.0) as usize;
    while player.buffered_frames() < want && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = device::start(&dev, &label, player, buffer_frames, None)?;

    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    struct RawGuard(bool);
    impl Drop for RawGuard {
        fn drop(&mut self) {
            if self.0 {
                let _ = terminal::disable_raw_mode();
                let mut out = std::io::stdout();
                let _ = queue!(out, cursor::Show, style::Print("\r\n"));
                let _ = out.flush();
            }
        }
    }
    let raw = interactive && terminal::enable_raw_mode().is_ok();
    let _guard = RawGuard(raw);
    let mut out = std::io::stdout();
    let total_s = controller.total_frames() as f64 / rate;
    println!(
        "halo play: {} on {label} ({} ch, {} Hz); speaker monitor {} ({}){}",
        scene.origin.display(),
        options.device_channels,
        controller.sample_rate(),
        controller.layout().name,
        if controller.speakers_available() {
            "available"
        } else {
            "unavailable: too few device channels"
        },
        if raw {
            "\r\nkeys: space play/pause  b binaural  s stereo  l speakers  m loudness match  ←/→ seek 5 s  q quit\r"
        } else {
            ""
        }
    );
    let mut note: Option<(String, std::time::Instant)> = None;
    let mut last_delivered = u64::MAX;
    let mut xruns = 0u64;
    let mut last_progress = std::time::Instant::now();
    let fmt = |x: f64| {
        if x.is_finite() {
            format!("{x:6.1}")
        } else {
            "  -inf".into()
        }
    };
    let result = loop {
        let (status, errors) = controller.poll();
        if let Some(e) = errors.into_iter().next() {
            break Err(PlaybackError::Device(format!("source reading: {e}")));
        }
        let mut fatal = None;
        while let Ok(e) = output.events.try_recv() {
            match e {
                device::DeviceEvent::Xrun => xruns += 1,
                device::DeviceEvent::Note(n) => note = Some((n, std::time::Instant::now())),
                device::DeviceEvent::Fatal(f) => fatal = Some(f),
            }
        }
        if let Some(e) = fatal {
            break Err(PlaybackError::DeviceLost(format!(
                "{label}: {e} (device lost or stream failed); playback stopped"
            )));
        }
        if !raw && status.ended {
            break Ok(());
        }
        // A device that stops asking for audio without reporting an error (unplugged on
        // some backends) must not leave `halo play` hanging.
        if status.delivered_frames != last_delivered {
            last_delivered = status.delivered_frames;
            last_progress = std::time::Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(3) {
            break Err(PlaybackError::DeviceLost(format!(
                "{label} stopped requesting audio for 3 s (device lost?); playback stopped"
            )));
        }
        let r = controller.readings();
        let pos = status.position_frames as f64 / rate;
        let monitor = match status.monitor {
            Monitor::Binaural => "binaural".to_string(),
            Monitor::Stereo => "stereo".to_string(),
            Monitor::Speakers => controller.layout().name.clone(),
        };
        let matching = match (status.matching, controller.estimate()) {
            (false, _) => "off".to_string(),
            (true, Some(e)) if e.done => "on".to_string(),
            (true, Some(e)) => format!(
                "on (estimate, {:.0} s measured)",
                e.measured_frames as f64 / rate
            ),
            (true, None) => "on (measuring…)".to_string(),
        };
        let state = if status.ended {
            "ended"
        } else if status.playing {
            "playing"
        } else {
            "paused"
        };
        let mut line = format!(
            "{:>7.1}/{:.1} s {state:<7} {monitor:<9} M {} S {} LUFS  TP {} dBTP  match {matching}  underruns {} xruns {xruns}",
            pos,
            total_s,
            fmt(r.momentary_lufs),
            fmt(r.short_term_lufs),
            fmt(r.true_peak_dbtp),
            status.underruns
        );
        if let Some((text, at)) = &note {
            if at.elapsed() < Duration::from_secs(4) {
                line.push_str("  | ");
                line.push_str(text);
            } else {
                note = None;
            }
        }
        // Never wider than the terminal: a wrapped line could not be redrawn in place.
        let width = terminal::size().map_or(100, |(w, _)| w as usize).max(20);
        if line.chars().count() >= width {
            line = line.chars().take(width - 1).collect();
        }
        if raw {
            let _ = queue!(
                out,
                cursor::MoveToColumn(0),
                terminal::Clear(terminal::ClearType::CurrentLine),
                style::Print(&line)
            );
            let _ = out.flush();
        }
        let has_event = raw && event::poll(Duration::from_millis(100)).unwrap_or(false);
        if !raw {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if !has_event {
            continue;
        }
        let Ok(event::Event::Key(key)) = event::read() else {
            continue;
        };
        if key.kind == event::KeyEventKind::Release {
            continue;
        }
        use event::KeyCode;
        let seek = |delta_s: f64| {
            let frame = (pos + delta_s).max(0.0) * rate;
            Control::Seek(frame as u64)
        };
        let control = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => break Ok(()),
            KeyCode::Char('c') if key.modifiers.contains(event::KeyModifiers::CONTROL) => {
                break Ok(());
            }
            KeyCode::Char(' ') => Some(Control::TogglePlay),
            KeyCode::Char('b') => Some(Control::Monitor(Monitor::Binaural)),
            KeyCode::Char('s') => Some(Control::Monitor(Monitor::Stereo)),
            KeyCode::Char('l') if controller.speakers_available() => {
                Some(Control::Monitor(Monitor::Speakers))
            }
            KeyCode::Char('l') => {
                note = Some((
                    format!(
                        "the {} monitor needs {} channels; this device has {}: use b or s",
                        controller.layout().name,
                        controller.layout().num_channels(),
                        max_ch
                    ),
                    std::time::Instant::now(),
                ));
                None
            }
            KeyCode::Char('m') => Some(Control::Match(!status.matching)),
            KeyCode::Left => Some(seek(-5.0)),
            KeyCode::Right => Some(seek(5.0)),
            _ => None,
        };
        if let Some(c) = control {
            controller.send(c);
        }
    };
    drop(output);
    controller.shutdown();
    if !raw && result.is_ok() {
        let (status, _) = controller.poll();
        println!(
            "played to {:.1} s on the {:?} monitor; {} underruns, {xruns} device xruns",
            status.position_frames as f64 / rate,
            status.monitor,
            status.underruns
        );
    }
    result
}
