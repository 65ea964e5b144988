//! The scenes of the engine benchmarks, shared with `examples/whole_render.rs` (which counts
//! their instructions, `tools/bench/whole_render_instructions.sh`): moving polar and
//! Cartesian objects, and the whole render of issue 4. Each user takes what it needs.
#![allow(dead_code)]

use halo::drivers::parallel::{Inputs, ParallelEngine};
use halo::engine::{EngineConfig, ObjectConfig, OutputConfig};
use halo::measure::loudness::Meter;
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::spatial::binaural::Distance;

pub const RATE: u32 = 48000;
pub const BLOCK: usize = 1024;

/// Object `i` circles at its own speed and height, so every object moves all the time.
pub fn moving_objects(n: usize, seconds: f64) -> Vec<ObjectConfig> {
    moving_scene(n, seconds, |i, deg| Position::Polar {
        azimuth_deg: deg % 360.0,
        elevation_deg: -10.0 + (i % 5) as f64 * 12.0,
        distance: 1.0,
    })
}

/// Object `i` moves through the room (Cartesian, inside the cube, on and above the ear
/// plane), so every object moves all the time through the allocentric panner.
pub fn moving_cartesian_objects(n: usize, seconds: f64) -> Vec<ObjectConfig> {
    moving_scene(n, seconds, |i, deg| {
        let a = deg.to_radians();
        Position::Cartesian {
            x: 0.9 * a.sin(),
            y: 0.8 * (1.3 * a).cos(),
            z: (i % 5) as f64 * 0.25,
        }
    })
}

/// `n` objects at −12 dB and `Mid` distance whose positions are keyframed eight times per
/// period (1.5 to 4.5 s, by object) for `seconds`: object `i`'s `k`-th keyframe is at
/// `position(i, k · 45° + i · 17°)`, linearly interpolated.
fn moving_scene(
    n: usize,
    seconds: f64,
    position: impl Fn(usize, f64) -> Position,
) -> Vec<ObjectConfig> {
    (0..n)
        .map(|i| {
            let period = 1.5 + (i % 7) as f64 * 0.5;
            let steps = (seconds / period * 8.0).ceil() as usize + 1;
            let keys = (0..=steps)
                .map(|k| Keyframe {
                    frame: (k as f64 * period / 8.0 * RATE as f64) as u64,
                    value: position(i, k as f64 * 45.0 + i as f64 * 17.0),
                    interpolation: Interpolation::Linear,
                })
                .collect();
            ObjectConfig {
                gain_db: Automation::constant(-12.0),
                position: Automation::new(keys).expect("ordered keyframes"),
                size: Automation::constant(0.0),
                mute: false,
                binaural_bypass: false,
                binaural_distance: Distance::Mid,
                controls: Default::default(),
            }
        })
        .collect()
}

/// The whole render of issue 4: 128 moving objects → 7.1.4 (limiter) + binaural (limiter)
/// and stereo fold-down (EQ, compressor, limiter).
pub fn whole_render_config(n: usize) -> EngineConfig {
    use halo::dsp::{
        CompressorSettings, EqBand, EqKind, EqSettings, LimiterSettings, ProcessorSettings,
    };
    use halo::spatial::binaural::HrtfSet;
    use halo::spatial::downmix::FoldDownConfig;
    let limiter = ProcessorSettings::Limiter(LimiterSettings {
        ceiling_dbtp: -1.0,
        lookahead_ms: 1.5,
        release_ms: 50.0,
    });
    let layout = Layout::builtin("7.1.4").expect("built-in");
    let hrtf = std::sync::Arc::new(HrtfSet::default_set(RATE).expect("KEMAR"));
    EngineConfig {
        sample_rate: RATE,
        max_block_frames: BLOCK,
        objects: moving_objects(n, 60.0),
        beds: vec![],
        outputs: vec![
            OutputConfig::Speakers {
                layout: layout.clone(),
                chain: vec![limiter.clone()],
            },
            OutputConfig::Binaural {
                hrtf,
                lfe_db: None,
                chain: vec![limiter.clone()],
            },
            OutputConfig::Stereo {
                from: layout.clone(),
                fold: FoldDownConfig::default(),
                chain: vec![
                    ProcessorSettings::Eq(EqSettings {
                        bands: vec![EqBand {
                            kind: EqKind::HighPass,
                            freq_hz: 30.0,
                            gain_db: 0.0,
                            q: 0.707,
                        }],
                    }),
                    ProcessorSettings::Compressor(CompressorSettings {
                        threshold_db: -20.0,
                        ratio: 2.0,
                        knee_db: 6.0,
                        attack_ms: 10.0,
                        release_ms: 100.0,
                        makeup_db: 0.0,
                    }),
                    limiter,
                ],
            },
        ],
    }
}

/// Object `i`'s test signal: a sawtooth-like ramp, different per object.
pub fn signal(i: usize, k: usize) -> f32 {
    ((k * 31 + i * 7) % 200) as f32 / 200.0 - 0.5
}

/// One second of [`whole_render_config`] on `engine`, as `halo render` runs it: each
/// object's input is its `block` (the same every block), each output metered by its
/// `meters` entry on the thread that rendered it.
pub fn render_second_parallel(
    engine: &mut ParallelEngine,
    meters: &mut [Meter],
    block: &[Vec<f32>],
) {
    let mut left = (RATE as usize).div_ceil(BLOCK);
    engine.seek(0);
    engine
        .run(
            meters,
            |inputs: &mut Inputs| {
                if left == 0 {
                    return Ok(None);
                }
                left -= 1;
                for (x, y) in inputs.objects.iter_mut().zip(block) {
                    x.copy_from_slice(y);
                }
                Ok(Some(BLOCK))
            },
            |_, out, meter: &mut Meter, span| {
                let chans: Vec<&[f32]> = out.iter().map(|c| &c[..span.frames]).collect();
                meter.process_planar(&chans)
            },
        )
        .expect("metering");
}
