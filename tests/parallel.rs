//! Offline rendering on several threads (`parallel`): every output equals a single
//! engine's bit for bit, whatever the thread count and block sizes; errors on either side
//! of the pipeline stop the run and come back, without hanging.

use halo::drivers::parallel::{Inputs, ParallelEngine};
use halo::dsp::LimiterSettings;
use halo::dsp::ProcessorSettings;
use halo::engine::{BedConfig, EngineConfig, ObjectConfig, OutputConfig};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::spatial::binaural::{Distance, HrtfSet};
use halo::spatial::downmix::FoldDownConfig;
use std::f64::consts::TAU;
use std::sync::Arc;

#[path = "common/drive.rs"]
mod drive;

use drive::{MAX_BLOCK, RATE};

const FRAMES: usize = 30000;

fn limiter() -> ProcessorSettings {
    ProcessorSettings::Limiter(LimiterSettings {
        ceiling_dbtp: -6.0,
        lookahead_ms: 1.5,
        release_ms: 50.0,
    })
}

/// 7.1.4 with a limiter, binaural with a limiter (longest latency), a stereo fold-down of
/// the 7.1.4 bus, and 5.1: three groups.
fn config() -> EngineConfig {
    let l714 = Layout::builtin("7.1.4").unwrap();
    let objects = (0..6)
        .map(|i| {
            let keys = (0..=6)
                .map(|k| Keyframe {
                    frame: k * 5000 + i * 300,
                    value: Position::Polar {
                        azimuth_deg: (k as f64 * 70.0 + i as f64 * 40.0) % 360.0 - 180.0,
                        elevation_deg: (i as f64 * 15.0) - 20.0,
                        distance: 1.0,
                    },
                    interpolation: Interpolation::Linear,
                })
                .collect();
            ObjectConfig {
                gain_db: Automation::constant(-3.0 * i as f64),
                position: Automation::new(keys).unwrap(),
                size: Automation::constant(if i == 2 { 0.3 } else { 0.0 }),
                mute: i == 4,
                binaural_bypass: i == 5,
                binaural_distance: [Distance::Near, Distance::Mid, Distance::Far][i as usize % 3],
                controls: Default::default(),
            }
        })
        .collect();
    EngineConfig {
        sample_rate: RATE,
        max_block_frames: MAX_BLOCK,
        objects,
        beds: vec![BedConfig {
            name: "bed".into(),
            layout: Layout::builtin("5.1").unwrap(),
            gain_db: -6.0,
            mute: false,
            binaural_distances: vec![Some(Distance::Mid); 6],
            hoa: None,
            active_frames: None,
            speaker_bounds: vec![],
            channel_gains: vec![],
        }],
        outputs: vec![
            OutputConfig::Speakers {
                layout: l714.clone(),
                chain: vec![limiter()],
            },
            OutputConfig::Binaural {
                hrtf: Arc::new(HrtfSet::default_set(RATE).unwrap()),
                lfe_db: Some(-10.0),
                chain: vec![limiter()],
            },
            OutputConfig::Stereo {
                from: l714,
                fold: FoldDownConfig::default(),
                chain: vec![],
            },
            OutputConfig::speakers(Layout::builtin("5.1").unwrap()),
        ],
    }
}

/// Object `i`: a sine at 220·(i+1) Hz; bed channel `c`: at 97·(c+1) Hz.
fn object_signal(i: usize, f: usize) -> f32 {
    (0.5 * (TAU * 220.0 * (i + 1) as f64 * f as f64 / RATE as f64).sin()) as f32
}

#[test]
fn every_output_equals_a_single_engine_bit_for_bit() {
    let (latency, reference) = drive::single(config(), false, FRAMES, object_signal);
    assert!(latency > 256, "binaural partition plus limiter look-ahead");
    let loud = reference
        .iter()
        .all(|o| o.iter().any(|c| c.iter().any(|x| x.abs() > 0.01)));
    assert!(loud, "every output carries signal");
    for threads in [1, 2, 3, 8] {
        let (lat, out, spans) = drive::parallel(config(), threads, false, FRAMES, object_signal);
        assert_eq!(lat, latency, "{threads} threads: latency");
        assert_eq!(spans.iter().map(|s| s.frames).sum::<usize>(), FRAMES);
        assert_eq!(
            spans[1].start, spans[0].frames as u64,
            "spans follow each other"
        );
        for (o, (a, b)) in reference.iter().zip(&out).enumerate() {
            assert_eq!(a.len(), b.len());
            for (c, (x, y)) in a.iter().zip(b).enumerate() {
                assert_eq!(x.len(), FRAMES);
                let same = x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "{threads} threads: output {o} channel {c} differs");
            }
        }
    }
}

#[test]
fn errors_on_either_side_stop_the_run() {
    for threads in [1, 2, 3] {
        // The sink of output 1 (binaural) fails at its third block.
        let mut engine = ParallelEngine::new(config(), threads).unwrap();
        let mut calls = vec![0usize; 4];
        let mut produced = 0;
        let result = engine.run(
            &mut calls,
            |_: &mut Inputs| {
                produced += 1;
                Ok(Some(256))
            },
            |o, _, n: &mut usize, _| {
                *n += 1;
                if o == 1 && *n == 3 {
                    Err(format!("disk full on output {o}"))
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(
            result,
            Err("disk full on output 1".to_string()),
            "{threads}"
        );
        assert_eq!(calls[1], 3, "{threads}: output 1 stopped at its error");
        assert!(
            produced < 100,
            "{threads}: the producer stopped ({produced} blocks)"
        );

        // The producer fails at its fifth block: no more blocks are rendered.
        let mut engine = ParallelEngine::new(config(), threads).unwrap();
        let mut calls = vec![0usize; 4];
        let mut produced = 0;
        let result = engine.run(
            &mut calls,
            |_: &mut Inputs| {
                produced += 1;
                if produced == 5 {
                    Err("source cut short".to_string())
                } else {
                    Ok(Some(100))
                }
            },
            |_, _, n: &mut usize, _| {
                *n += 1;
                Ok(())
            },
        );
        assert_eq!(result, Err("source cut short".to_string()));
        assert_eq!(
            calls,
            vec![4; 4],
            "{threads}: the four blocks before the error"
        );
    }
}
