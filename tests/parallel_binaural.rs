//! The binaural path split into source chunks (`engine::binaural_chunk_sizes`), rendered on
//! several threads by `ParallelEngine`: every output is bit-identical whatever the thread
//! count (the chunks' partial mixes are summed in chunk order); a one-chunk session is
//! bit-identical to a single HRTF renderer over all sources (the engine before the split);
//! a several-chunk one differs from it by float rounding only (≤ −100 dB RMS); errors on
//! either side of a split binaural path stop the run without hanging.

use halo::drivers::parallel::{Inputs, ParallelEngine};
use halo::dsp::{LimiterSettings, ProcessorSettings};
use halo::engine::{
    BedConfig, EngineConfig, GAIN_INTERVAL_FRAMES, ObjectConfig, OutputConfig, binaural_chunk_sizes,
};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::{Direction, Position};
use halo::scene::layout::Layout;
use halo::spatial::binaural::{BinauralConfig, BinauralRenderer, Distance, HrtfSet};
use halo::spatial::downmix::FoldDownConfig;
use std::f64::consts::TAU;
use std::sync::Arc;

#[path = "common/drive.rs"]
mod drive;

use drive::{MAX_BLOCK, RATE};

const FRAMES: usize = 24000;

fn hrtf() -> Arc<HrtfSet> {
    Arc::new(HrtfSet::default_set(RATE).unwrap())
}

fn limiter() -> ProcessorSettings {
    ProcessorSettings::Limiter(LimiterSettings {
        ceiling_dbtp: -6.0,
        lookahead_ms: 1.5,
        release_ms: 50.0,
    })
}

/// `n` polar objects, each circling (`moving`) or standing still at its own direction, at
/// its own constant gain, at every room distance.
fn objects(n: usize, moving: bool) -> Vec<ObjectConfig> {
    (0..n)
        .map(|i| {
            let el = (i % 5) as f64 * 12.0 - 20.0;
            let keys = (0..=8u64)
                .map(|k| Keyframe {
                    frame: k * 3000 + (i as u64 % 7) * 100,
                    value: Position::Polar {
                        azimuth_deg: (i as f64 * 37.0 + if moving { k as f64 * 40.0 } else { 0.0 })
                            % 360.0
                            - 180.0,
                        elevation_deg: el,
                        distance: 1.0,
                    },
                    interpolation: Interpolation::Linear,
                })
                .collect();
            ObjectConfig {
                gain_db: Automation::constant(-12.0 - (i % 4) as f64),
                position: Automation::new(keys).unwrap(),
                size: Automation::constant(0.0),
                mute: false,
                binaural_bypass: false,
                binaural_distance: [Distance::Mid, Distance::Near, Distance::Far, Distance::Mid]
                    [i % 4],
                controls: Default::default(),
            }
        })
        .collect()
}

fn bed() -> BedConfig {
    BedConfig {
        name: "bed".into(),
        layout: Layout::builtin("5.1").unwrap(),
        gain_db: -6.0,
        mute: false,
        binaural_distances: vec![Some(Distance::Mid); 6],
        hoa: None,
        active_frames: None,
        speaker_bounds: vec![],
        channel_gains: vec![],
    }
}

/// 7.1.4 and binaural with limiters, a stereo fold-down of the 7.1.4 bus; a 5.1 bed with LFE.
/// Object 3 is bypassed (binaural mode Off).
fn session(n: usize) -> EngineConfig {
    let l714 = Layout::builtin("7.1.4").unwrap();
    let mut objects = objects(n, true);
    objects[3].binaural_bypass = true;
    EngineConfig {
        sample_rate: RATE,
        max_block_frames: MAX_BLOCK,
        objects,
        beds: vec![bed()],
        outputs: vec![
            OutputConfig::Speakers {
                layout: l714.clone(),
                chain: vec![limiter()],
            },
            OutputConfig::Binaural {
                hrtf: hrtf(),
                lfe_db: Some(-10.0),
                chain: vec![limiter()],
            },
            OutputConfig::Stereo {
                from: l714,
                fold: FoldDownConfig::default(),
                chain: vec![],
            },
        ],
    }
}

/// The binaural output alone, no chain, no bed.
fn binaural_only(objects: Vec<ObjectConfig>) -> EngineConfig {
    EngineConfig {
        sample_rate: RATE,
        max_block_frames: MAX_BLOCK,
        objects,
        beds: vec![],
        outputs: vec![OutputConfig::Binaural {
            hrtf: hrtf(),
            lfe_db: None,
            chain: vec![],
        }],
    }
}

/// Object `i`: a sine at 110·(i+1) Hz (folded below 20 kHz); bed channel `c`: 97·(c+1) Hz.
fn object_signal(i: usize, f: usize) -> f32 {
    let hz = (110.0 * (i + 1) as f64) % 19000.0 + 50.0;
    (0.5 * (TAU * hz * f as f64 / RATE as f64).sin()) as f32
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[test]
fn chunks_follow_the_object_count_only() {
    assert_eq!(binaural_chunk_sizes(0), vec![0]);
    assert_eq!(binaural_chunk_sizes(16), vec![16]);
    assert_eq!(binaural_chunk_sizes(17), vec![13, 4]);
    assert_eq!(binaural_chunk_sizes(128), vec![96, 32]);
    assert_eq!(binaural_chunk_sizes(4096).len(), 2);
}

/// 40 and 64 objects (2 chunks), moving, every room distance, a bypassed one,
/// a 5.1 bed with LFE: every output of a `ParallelEngine` on 1, 2, 3 and 8 threads equals
/// a single engine's bit for bit, for live and offline partitions.
#[test]
fn split_binaural_path_is_bit_identical_at_every_thread_count() {
    for (n, offline) in [(40, false), (64, true)] {
        assert_eq!(binaural_chunk_sizes(n).len(), 2);
        let reference = single(session(n), offline);
        let binaural_rms = rms(&reference[1][0]);
        assert!(
            binaural_rms > 1e-3,
            "{n}: binaural output sounds ({binaural_rms})"
        );
        for threads in [1, 2, 3, 8] {
            let out = parallel(session(n), threads, offline);
            for (o, (a, b)) in out.iter().zip(&reference).enumerate() {
                for (c, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        same_bits(x, y),
                        "{n} objects, {threads} threads: output {o} channel {c} differs"
                    );
                }
            }
        }
    }
}

/// Per output, per channel: the whole render on one engine (`Engine::process`).
fn single(config: EngineConfig, offline: bool) -> drive::Outputs {
    drive::single(config, offline, FRAMES, object_signal).1
}

/// The same through a `ParallelEngine` on `threads` threads.
fn parallel(config: EngineConfig, threads: usize, offline: bool) -> drive::Outputs {
    drive::parallel(config, threads, offline, FRAMES, object_signal).1
}

/// What the engine computed before the split, written out: ONE renderer over all objects,
/// each object's input scaled by its level, its direction set at every gain point (the
/// 64-frame grid and the keyframes), as `Engine` does for constant-gain polar objects.
fn one_renderer(objects: &[ObjectConfig], offline: bool) -> [Vec<f32>; 2] {
    let hrtf = hrtf();
    let config = BinauralConfig::new(RATE, objects.len());
    let config = if offline {
        config.offline(&hrtf)
    } else {
        config.live(&hrtf)
    };
    let mut r = BinauralRenderer::new(hrtf, config).unwrap();
    let mut points: Vec<u64> = (0..FRAMES as u64)
        .step_by(GAIN_INTERVAL_FRAMES as usize)
        .collect();
    for o in objects {
        points.extend(o.position.keyframes().iter().map(|k| k.frame));
    }
    points.push(FRAMES as u64);
    points.sort_unstable();
    points.dedup();
    points.retain(|&f| f <= FRAMES as u64);
    for (i, o) in objects.iter().enumerate() {
        r.set_distance(i, o.binaural_distance);
    }
    let levels: Vec<f32> = objects
        .iter()
        .map(|o| 10f64.powf(o.gain_db.value_at(0.0) / 20.0) as f32)
        .collect();
    let (mut left, mut right) = (vec![0.0; FRAMES], vec![0.0; FRAMES]);
    let mut inputs = vec![vec![0.0f32; GAIN_INTERVAL_FRAMES as usize]; objects.len()];
    for w in points.windows(2) {
        let (start, end) = (w[0] as usize, w[1] as usize);
        for (i, o) in objects.iter().enumerate() {
            if let Position::Polar {
                azimuth_deg,
                elevation_deg,
                ..
            } = o.position.value_at(start as f64)
            {
                r.set_direction(i, Direction::new(azimuth_deg, elevation_deg));
            }
            for (k, x) in inputs[i][..end - start].iter_mut().enumerate() {
                *x = object_signal(i, start + k) * levels[i];
            }
        }
        let ins: Vec<&[f32]> = inputs.iter().map(|x| &x[..end - start]).collect();
        r.process(&ins, &mut left[start..end], &mut right[start..end]);
    }
    [left, right]
}

/// One chunk (16 objects): the engine's binaural output is the single renderer's bit for
/// bit. Several chunks (64 objects, moving, in the room): the chunks' rooms and inverse
/// FFTs sum in another order than one renderer's spectra, so the output differs by float
/// rounding only: the difference is ≤ −100 dB RMS of the output (measured −128 dB live, −130 dB offline).
#[test]
fn chunked_output_is_the_single_renderer_to_float_rounding() {
    for offline in [false, true] {
        let objs = objects(16, true);
        let reference = one_renderer(&objs, offline);
        let out = single(binaural_only(objs), offline);
        for ear in 0..2 {
            assert!(
                same_bits(&out[0][ear], &reference[ear]),
                "one chunk, ear {ear}, offline {offline}: not bit-identical"
            );
        }
        let objs = objects(64, true);
        let reference = one_renderer(&objs, offline);
        let out = parallel(binaural_only(objs), 2, offline);
        for ear in 0..2 {
            let signal = rms(&reference[ear]);
            let diff: Vec<f32> = out[0][ear]
                .iter()
                .zip(&reference[ear])
                .map(|(a, b)| a - b)
                .collect();
            let db = 20.0 * (rms(&diff) / signal).log10();
            println!("64 objects, 2 chunks, offline {offline}, ear {ear}: difference {db:.1} dB");
            assert!(signal > 1e-3, "the render sounds");
            assert!(db <= -100.0, "ear {ear}, offline {offline}: {db:.1} dB");
        }
    }
}

/// An error from the binaural output's sink or from the speaker outputs' (on the thread
/// that also renders binaural chunks) stops a split run and comes back; nothing hangs.
#[test]
fn errors_stop_a_split_run() {
    for failing in [0usize, 1, 2] {
        for threads in [2, 3] {
            let mut engine = ParallelEngine::new(session(40), threads).unwrap();
            let mut states = vec![0usize; 3];
            let mut produced = 0;
            let result = engine.run(
                &mut states,
                |inputs: &mut Inputs| -> Result<Option<usize>, String> {
                    produced += 1;
                    for x in inputs.objects.iter_mut() {
                        x.fill(0.1);
                    }
                    Ok((produced < 200).then_some(512))
                },
                |o, _, calls: &mut usize, _| {
                    *calls += 1;
                    if o == failing && *calls == 3 {
                        Err(format!("output {o} failed"))
                    } else {
                        Ok(())
                    }
                },
            );
            assert_eq!(
                result,
                Err(format!("output {failing} failed")),
                "{threads} threads"
            );
            assert!(produced < 200, "{threads} threads: the producer stopped");
        }
    }
}
