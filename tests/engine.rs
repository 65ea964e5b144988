//! Engine acceptance tests: gains applied exactly, block-size independence, no clicks on
//! moving objects (with a measure shown to catch stepped gains), beds by label.

mod common;
use halo::dsp::LimiterSettings;
use halo::engine::{
    BedConfig, Engine, EngineConfig, GAIN_INTERVAL_FRAMES, ObjectConfig, OutputConfig,
};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::spatial::binaural::Distance;
use halo::spatial::panner::Panner;

const RATE: u32 = 48000;

fn polar(az: f64, el: f64) -> Position {
    Position::Polar {
        azimuth_deg: az,
        elevation_deg: el,
        distance: 1.0,
    }
}

fn object(_name: &str, position: Automation<Position>) -> ObjectConfig {
    ObjectConfig {
        gain_db: Automation::constant(0.0),
        position,
        size: Automation::constant(0.0),
        mute: false,
        binaural_bypass: false,
        binaural_distance: Distance::Anechoic,
        controls: Default::default(),
    }
}

/// Keyframes moving once around the listener at ear level in `seconds`.
fn circle(seconds: f64, elevation: f64) -> Automation<Position> {
    let keys = (0..=8)
        .map(|k| Keyframe {
            frame: (k as f64 / 8.0 * seconds * RATE as f64).round() as u64,
            value: polar(k as f64 * 45.0, elevation),
            interpolation: Interpolation::Linear,
        })
        .collect();
    Automation::new(keys).expect("valid keyframes")
}

/// Renders mono object inputs and bed inputs through an engine in blocks of `block`
/// frames; returns each output's planar channels.
fn render(
    objects: Vec<ObjectConfig>,
    object_signals: &[Vec<f32>],
    beds: Vec<BedConfig>,
    bed_signals: &[Vec<Vec<f32>>],
    layouts: &[&str],
    frames: usize,
    block: usize,
) -> Vec<Vec<Vec<f32>>> {
    let outputs: Vec<OutputConfig> = layouts
        .iter()
        .map(|l| OutputConfig::speakers(Layout::builtin(l).unwrap()))
        .collect();
    let mut engine = Engine::new(EngineConfig {
        sample_rate: RATE,
        max_block_frames: block,
        objects,
        beds,
        outputs,
    })
    .unwrap();
    let mut result: Vec<Vec<Vec<f32>>> = (0..layouts.len())
        .map(|o| vec![Vec::with_capacity(frames); engine.output_layout(o).num_channels()])
        .collect();
    let mut pos = 0;
    while pos < frames {
        let n = block.min(frames - pos);
        for (i, sig) in object_signals.iter().enumerate() {
            engine.object_input(i)[..n].copy_from_slice(&sig[pos..pos + n]);
        }
        for (b, chans) in bed_signals.iter().enumerate() {
            for (c, sig) in chans.iter().enumerate() {
                engine.bed_input(b, c)[..n].copy_from_slice(&sig[pos..pos + n]);
            }
        }
        engine.process(n);
        for (o, out) in result.iter_mut().enumerate() {
            for (c, ch) in out.iter_mut().enumerate() {
                ch.extend_from_slice(&engine.output(o)[c][..n]);
            }
        }
        pos += n;
    }
    result
}

#[test]
fn static_object_is_input_times_gains() {
    let pos = polar(20.0, 10.0);
    let input = common::sine(440.0, 0.5, 4800, RATE);
    let mut obj = object("o", Automation::constant(pos));
    obj.gain_db = Automation::constant(-6.0);
    let out = render(
        vec![obj],
        std::slice::from_ref(&input),
        vec![],
        &[],
        &["7.1.4"],
        4800,
        512,
    );
    let panner = Panner::new(&Layout::builtin("7.1.4").unwrap()).unwrap();
    let mut g = vec![0.0; 12];
    panner.position_gains(pos, 0.0, &mut g);
    let level = 10f64.powf(-6.0 / 20.0);
    assert!(
        g.iter().filter(|&&x| x > 0.0).count() >= 2,
        "panned between speakers"
    );
    for (c, ch) in out[0].iter().enumerate() {
        let gain = (g[c] * level) as f32;
        for (n, (&y, &x)) in ch.iter().zip(&input).enumerate() {
            assert!(
                (y - x * gain).abs() <= 1e-7,
                "channel {c} frame {n}: {y} vs {}",
                x * gain
            );
        }
    }
}

#[test]
fn output_does_not_depend_on_block_size() {
    let frames = 48000;
    let mut moving = object("circle", circle(0.7, 20.0));
    moving.size = Automation::new(vec![
        Keyframe {
            frame: 0,
            value: 0.0,
            interpolation: Interpolation::Smooth,
        },
        Keyframe {
            frame: 30001,
            value: 0.6,
            interpolation: Interpolation::Linear,
        },
    ])
    .unwrap();
    moving.gain_db = Automation::new(vec![
        Keyframe {
            frame: 0,
            value: -3.0,
            interpolation: Interpolation::Step,
        },
        Keyframe {
            frame: 12345,
            value: 0.0,
            interpolation: Interpolation::Linear,
        },
        Keyframe {
            frame: 40000,
            value: -12.0,
            interpolation: Interpolation::Linear,
        },
    ])
    .unwrap();
    let cart = Automation::new(vec![
        Keyframe {
            frame: 100,
            value: Position::Cartesian {
                x: -1.0,
                y: 1.0,
                z: 0.0,
            },
            interpolation: Interpolation::Smooth,
        },
        Keyframe {
            frame: 47000,
            value: Position::Cartesian {
                x: 1.0,
                y: -1.0,
                z: 1.0,
            },
            interpolation: Interpolation::Linear,
        },
    ])
    .unwrap();
    let objects = || {
        vec![
            moving.clone(),
            object("fly", cart.clone()),
            object("still", Automation::constant(polar(-70.0, 0.0))),
        ]
    };
    let signals = vec![
        common::sine(500.0, 0.5, frames, RATE),
        common::sine(1234.0, 0.3, frames, RATE),
        common::sine(80.0, 0.2, frames, RATE),
    ];
    let bed = || {
        vec![BedConfig {
            name: "bed".into(),
            layout: Layout::builtin("5.1").unwrap(),
            gain_db: -2.0,
            mute: false,
            binaural_distances: vec![],
            hoa: None,
            active_frames: None,
            speaker_bounds: vec![],
            channel_gains: vec![],
        }]
    };
    let bed_signals = vec![
        (0..6)
            .map(|c| common::sine(100.0 + 50.0 * c as f64, 0.1, frames, RATE))
            .collect::<Vec<_>>(),
    ];
    let a = render(
        objects(),
        &signals,
        bed(),
        &bed_signals,
        &["7.1.4", "2.0"],
        frames,
        64,
    );
    for block in [1000, 37, 4096] {
        let b = render(
            objects(),
            &signals,
            bed(),
            &bed_signals,
            &["7.1.4", "2.0"],
            frames,
            block,
        );
        for (o, (ao, bo)) in a.iter().zip(&b).enumerate() {
            for (c, (ac, bc)) in ao.iter().zip(bo).enumerate() {
                let worst = ac
                    .iter()
                    .zip(bc)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst <= 1e-6,
                    "block {block}, output {o}, channel {c}: differs by {worst}"
                );
            }
        }
    }
}

#[test]
fn moving_object_does_not_click() {
    let frames = 2 * RATE as usize;
    let input = common::sine(500.0, 0.5, frames, RATE);

    // The measure reads far below the threshold on a static sine…
    let still = render(
        vec![object("s", Automation::constant(polar(10.0, 0.0)))],
        std::slice::from_ref(&input),
        vec![],
        &[],
        &["7.1.4"],
        frames,
        256,
    );
    let static_db = common::high_band_ratio_db(&still[0], RATE);
    assert!(
        static_db < -100.0,
        "static sine reads {static_db:.1} dB above 4 kHz"
    );

    // …the engine's moving render (once around in 2 s) stays 80 dB down…
    let moving = render(
        vec![object("m", circle(2.0, 0.0))],
        std::slice::from_ref(&input),
        vec![],
        &[],
        &["7.1.4"],
        frames,
        256,
    );
    let moving_db = common::high_band_ratio_db(&moving[0], RATE);
    assert!(
        moving_db < -80.0,
        "moving sine reads {moving_db:.1} dB above 4 kHz"
    );

    // …and the same measure catches gains stepped once per block without a ramp.
    let layout = Layout::builtin("7.1.4").unwrap();
    let panner = Panner::new(&layout).unwrap();
    let path = circle(2.0, 0.0);
    let mut stepped = vec![vec![0.0f32; frames]; 12];
    let mut g = vec![0.0; 12];
    for start in (0..frames).step_by(GAIN_INTERVAL_FRAMES as usize) {
        panner.position_gains(path.value_at(start as f64), 0.0, &mut g);
        for n in start..(start + GAIN_INTERVAL_FRAMES as usize).min(frames) {
            for c in 0..12 {
                stepped[c][n] = input[n] * g[c] as f32;
            }
        }
    }
    let stepped_db = common::high_band_ratio_db(&stepped, RATE);
    eprintln!(
        "above 4 kHz: static {static_db:.1} dB, moving {moving_db:.1} dB, stepped {stepped_db:.1} dB"
    );
    assert!(
        stepped_db > -80.0,
        "stepped gains read only {stepped_db:.1} dB: the measure cannot fail"
    );
}

#[test]
fn matching_bed_passes_bit_exactly() {
    let frames = 9000;
    let layout = Layout::builtin("7.1.4").unwrap();
    let signals: Vec<Vec<f32>> = (0..12)
        .map(|c| common::sine(60.0 * (c + 1) as f64, 0.7, frames, RATE))
        .collect();
    let bed = BedConfig {
        name: "bed".into(),
        layout,
        gain_db: 0.0,
        mute: false,
        binaural_distances: vec![],
        hoa: None,
        active_frames: None,
        speaker_bounds: vec![],
        channel_gains: vec![],
    };
    let out = render(
        vec![],
        &[],
        vec![bed],
        std::slice::from_ref(&signals),
        &["7.1.4"],
        frames,
        333,
    );
    assert_eq!(out[0], signals);
}

#[test]
fn bed_51_lands_in_714_as_bs2127_maps_it() {
    let frames = 2000;
    let five_one = Layout::builtin("5.1").unwrap();
    let seven = Layout::builtin("7.1.4").unwrap();
    for (c, ch) in five_one.channels.iter().enumerate() {
        let mut signals = vec![vec![0.0f32; frames]; 6];
        signals[c] = common::sine(250.0, 0.5, frames, RATE);
        let bed = BedConfig {
            name: "bed".into(),
            layout: five_one.clone(),
            gain_db: 0.0,
            mute: false,
            binaural_distances: vec![],
            hoa: None,
            active_frames: None,
            speaker_bounds: vec![],
            channel_gains: vec![],
        };
        let out = render(
            vec![],
            &[],
            vec![bed],
            std::slice::from_ref(&signals),
            &["7.1.4"],
            frames,
            512,
        );
        // BS.2127 §8: same BS.2051 name, and the rule M±110 → M±135 (5.1's "Ls" is
        // M+110, 7.1.4's "Ls" is the side M+090).
        let want = match ch.name.as_str() {
            "M+110" => "M+135",
            "M-110" => "M-135",
            n => n,
        };
        let target = seven.channels.iter().position(|c| c.name == want).unwrap();
        for (o, och) in out[0].iter().enumerate() {
            if o == target {
                assert_eq!(
                    och, &signals[c],
                    "5.1 {} → 7.1.4 {}",
                    ch.label, seven.channels[o].label
                );
            } else {
                assert!(
                    och.iter().all(|&x| x == 0.0),
                    "5.1 {} leaked into {}",
                    ch.label,
                    seven.channels[o].label
                );
            }
        }
    }
}

#[test]
fn bed_channels_missing_from_the_output_are_panned() {
    // A 7.1.4 bed into 5.1: heights are panned at their nominal directions (power kept),
    // LFE goes to LFE, Lrs lands between Ls and… wherever VBAP puts 135°.
    let frames = 1000;
    let seven = Layout::builtin("7.1.4").unwrap();
    let five = Layout::builtin("5.1").unwrap();
    let ltf = seven.channel_index("Ltf").unwrap();
    let mut signals = vec![vec![0.0f32; frames]; 12];
    signals[ltf] = vec![0.5; frames];
    signals[3] = vec![0.25; frames];
    let bed = BedConfig {
        name: "bed".into(),
        layout: seven.clone(),
        gain_db: 0.0,
        mute: false,
        binaural_distances: vec![],
        hoa: None,
        active_frames: None,
        speaker_bounds: vec![],
        channel_gains: vec![],
    };
    let out = render(vec![], &[], vec![bed], &[signals], &["5.1"], frames, 512);
    let power: f64 = out[0]
        .iter()
        .enumerate()
        .filter(|(c, _)| !five.channels[*c].lfe)
        .map(|(_, ch)| (ch[10] as f64).powi(2))
        .sum();
    assert!(
        (power - 0.25).abs() < 1e-6,
        "Ltf power through 5.1: {power}"
    );
    assert!(
        out[0][five.channel_index("L").unwrap()][10] > 0.2,
        "Ltf mostly in L"
    );
    assert_eq!(out[0][3][10], 0.25, "LFE to LFE");
}

fn all_outputs() -> Vec<OutputConfig> {
    use halo::dsp::ProcessorSettings;
    use halo::spatial::binaural::HrtfSet;
    use halo::spatial::downmix::FoldDownConfig;
    let hrtf = std::sync::Arc::new(HrtfSet::default_set(RATE).unwrap());
    vec![
        OutputConfig::speakers(Layout::builtin("7.1.4").unwrap()),
        OutputConfig::Binaural {
            hrtf,
            lfe_db: Some(-6.0),
            chain: vec![],
        },
        OutputConfig::Stereo {
            from: Layout::builtin("7.1.4").unwrap(),
            fold: FoldDownConfig::default(),
            chain: vec![ProcessorSettings::Limiter(LimiterSettings {
                ceiling_dbtp: -1.0,
                lookahead_ms: 1.5,
                release_ms: 50.0,
            })],
        },
    ]
}

fn render_all(
    block: usize,
    frames: usize,
    objects: Vec<ObjectConfig>,
    signals: &[Vec<f32>],
) -> (usize, Vec<Vec<Vec<f32>>>) {
    let mut engine = Engine::new(EngineConfig {
        sample_rate: RATE,
        max_block_frames: block,
        objects,
        beds: vec![],
        outputs: all_outputs(),
    })
    .unwrap();
    let mut result: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|o| vec![Vec::new(); engine.output_layout(o).num_channels()])
        .collect();
    let mut pos = 0;
    while pos < frames {
        let n = block.min(frames - pos);
        for (i, sig) in signals.iter().enumerate() {
            engine.object_input(i)[..n].copy_from_slice(&sig[pos..pos + n]);
        }
        engine.process(n);
        for (o, out) in result.iter_mut().enumerate() {
            for (c, ch) in out.iter_mut().enumerate() {
                ch.extend_from_slice(&engine.output(o)[c][..n]);
            }
        }
        pos += n;
    }
    (engine.latency(), result)
}

#[test]
fn binaural_and_stereo_outputs_do_not_depend_on_block_size() {
    let frames = 24000;
    let objects = || {
        let mut off = object("off", Automation::constant(polar(60.0, 0.0)));
        off.binaural_bypass = true;
        vec![object("circle", circle(0.5, 10.0)), off]
    };
    let signals = vec![
        common::sine(500.0, 0.5, frames, RATE),
        common::sine(700.0, 0.3, frames, RATE),
    ];
    let (_, a) = render_all(64, frames, objects(), &signals);
    for block in [1000, 37] {
        let (_, b) = render_all(block, frames, objects(), &signals);
        for (o, (ao, bo)) in a.iter().zip(&b).enumerate() {
            for (ac, bc) in ao.iter().zip(bo) {
                let worst = ac
                    .iter()
                    .zip(bc)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst <= 1e-5,
                    "block {block}, output {o}: differs by {worst}"
                );
            }
        }
    }
}

#[test]
fn outputs_are_sample_aligned() {
    // An impulse at the front: the speaker render (no chain), the stereo fold-down
    // (through a look-ahead limiter) and the binaural render (HRTF partition latency)
    // all put it at the same frame, the engine's common latency.
    let frames = 4096;
    let mut click = vec![0.0f32; frames];
    click[100] = 0.5;
    let (latency, out) = render_all(
        256,
        frames,
        vec![object("click", Automation::constant(polar(0.0, 0.0)))],
        &[click],
    );
    assert!(latency > 0);
    let first = |ch: &[f32]| ch.iter().position(|&x| x.abs() > 1e-4).unwrap();
    let speakers = first(&out[0][2]); // C
    let stereo = first(&out[2][0]);
    assert_eq!(
        speakers,
        100 + latency,
        "speaker output delayed to the common latency"
    );
    assert_eq!(
        stereo, speakers,
        "stereo fold-down aligned with the speakers"
    );
    // The KEMAR frontal HRIR's onset follows within a millisecond of the speaker impulse.
    let ear = first(&out[1][0]);
    assert!(
        ear >= speakers && ear < speakers + 48,
        "binaural onset at {ear}, speakers at {speakers}"
    );
}

#[test]
fn many_binaural_sources() {
    // More sources than any fixed per-output channel array: 100 objects on headphones.
    // Binaural rendering is linear, so the 100-object render must equal the 99-object
    // render plus the last object alone: a renderer that dropped or truncated sources past
    // some count would miss the last one's contribution.
    let frames = 4096;
    let objects = |range: std::ops::Range<usize>| -> Vec<ObjectConfig> {
        range
            .map(|i| object("o", Automation::constant(polar(i as f64 * 3.6, 0.0))))
            .collect()
    };
    let signals: Vec<Vec<f32>> = (0..100)
        .map(|i| common::sine(100.0 + i as f64 * 10.0, 0.01, frames, RATE))
        .collect();
    let (_, all) = render_all(1024, frames, objects(0..100), &signals);
    let (_, first) = render_all(1024, frames, objects(0..99), &signals[..99]);
    let (_, last) = render_all(1024, frames, objects(99..100), &signals[99..]);
    let energy = |x: &[f32]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    for ear in 0..2 {
        let whole = &all[1][ear];
        let last_energy = energy(&last[1][ear]);
        assert!(
            last_energy > 1e-4 * energy(whole),
            "ear {ear}: the 100th object is audible on its own"
        );
        let residual: Vec<f32> = whole
            .iter()
            .zip(&first[1][ear])
            .zip(&last[1][ear])
            .map(|((w, a), b)| w - (a + b))
            .collect();
        let error_db = 10.0 * (energy(&residual) / last_energy).log10();
        assert!(
            error_db < -80.0,
            "ear {ear}: 100 objects differ from 99 + the 100th by {error_db:.1} dB of the \
             100th object's energy"
        );
    }
}

/// The engine pans at gain points ([`GAIN_INTERVAL_FRAMES`] apart) and ramps linearly in
/// between. Against the naive reference — the BS.2127 gains of the object's position at
/// every sample — the difference is the ramp's chord error: it grows with the object's
/// speed and is largest where the path crosses from one speaker triangle into the next
/// (the gains bend there). A constant input makes each output sample the gain itself.
#[test]
#[allow(clippy::needless_range_loop)] // frames × channels, indexed as the outputs are laid out
fn moving_gains_follow_the_per_sample_path() {
    use halo::spatial::objectbased::GainCalc;
    let layout = Layout::builtin("7.1.4").unwrap();
    let calc = GainCalc::new(&layout).unwrap();
    // (seconds per turn, elevation, largest |Δg| allowed, largest power error in dB).
    // Measured at 256-frame gain points (4 December): 4.22e-3 and 0.0011 dB at 90°/s
    // (the speakers at ear level bend the gains), 6.0e-5 and 0.0005 dB at 180°/s at 30°
    // elevation, 2.24e-2 and 0.067 dB for a fly-by at 720°/s. At 64 frames the same
    // paths gave 7.5e-6, 3.8e-6 and 6.3e-3: within a triangle the error grows with the
    // square of the interval, across an edge with the interval.
    let cases = [
        (4.0, 0.0, 5e-3, 0.005),
        (2.0, 30.0, 1e-4, 0.002),
        (0.5, 0.0, 3e-2, 0.1),
    ];
    for (turn_s, el, max_dg, max_db) in cases {
        let frames = (turn_s * RATE as f64) as usize;
        let path = circle(turn_s, el);
        let out = render(
            vec![object("m", path.clone())],
            &[vec![1.0f32; frames]],
            vec![],
            &[],
            &["7.1.4"],
            frames,
            480,
        );
        let mut g = vec![0.0; 12];
        let (mut worst_dg, mut worst_db) = (0.0f64, 0.0f64);
        for f in 0..frames {
            calc.position_gains(path.value_at(f as f64), 0.0, &mut g);
            let mut power = 0.0f64;
            for c in 0..12 {
                let got = out[0][c][f] as f64;
                worst_dg = worst_dg.max((got - g[c]).abs());
                power += got * got;
            }
            let reference: f64 = g.iter().map(|x| x * x).sum();
            worst_db = worst_db.max((10.0 * (power / reference).log10()).abs());
        }
        eprintln!(
            "{:.0}°/s at {el}° elevation: |Δg| ≤ {worst_dg:.2e}, power within {worst_db:.4} dB",
            360.0 / turn_s
        );
        assert!(
            worst_dg <= max_dg && worst_db <= max_db,
            "{turn_s} s a turn: |Δg| {worst_dg:.2e} (≤ {max_dg:.0e}), power {worst_db:.4} dB (≤ {max_db} dB)"
        );
        // The test can fail: gains held for a whole interval (steps instead of ramps)
        // miss the path by far more.
        if turn_s == 0.5 {
            let mut held = 0.0f64;
            let mut h = vec![0.0; 12];
            for f in 0..frames {
                if f % GAIN_INTERVAL_FRAMES as usize == 0 {
                    calc.position_gains(path.value_at(f as f64), 0.0, &mut h);
                }
                calc.position_gains(path.value_at(f as f64), 0.0, &mut g);
                for c in 0..12 {
                    held = held.max((h[c] - g[c]).abs());
                }
            }
            assert!(held > 3.0 * max_dg, "held gains miss by only {held:.2e}");
        }
    }
}
