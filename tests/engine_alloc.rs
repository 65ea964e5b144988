//! `Engine::process` allocates nothing, for objects that use every BS.2127 control:
//! polar and Cartesian, moving, with zone exclusion (which gives a Cartesian object its
//! own reduced allocentric panner), channel lock, divergence, extent, diffuse, screenRef
//! and screen edge lock, rendered to 7.1.4. A counting global allocator counts the
//! allocations made on this thread while `process` runs; a deliberate allocation inside
//! the window shows that the counter works.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::counted;
use halo::engine::{Engine, EngineConfig, ObjectConfig, OutputConfig};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::scene::mix::{ExclusionZone, Extent, ObjectControls, ScreenEdge, Snap};
use halo::spatial::binaural::Distance;

const RATE: u32 = 48000;
const BLOCK: usize = 512;

/// A path of `n` keyframes a tenth of a second apart.
fn path(n: usize, at: impl Fn(usize) -> Position) -> Automation<Position> {
    Automation::new(
        (0..n)
            .map(|k| Keyframe {
                frame: (k * RATE as usize / 10) as u64,
                value: at(k),
                interpolation: Interpolation::Linear,
            })
            .collect(),
    )
    .expect("ordered keyframes")
}

fn object(position: Automation<Position>, controls: ObjectControls) -> ObjectConfig {
    ObjectConfig {
        gain_db: Automation::constant(-6.0),
        position,
        size: Automation::constant(0.0),
        mute: false,
        binaural_bypass: false,
        binaural_distance: Distance::Mid,
        controls,
    }
}

/// Every control at once, and each control alone, on moving polar and Cartesian objects.
fn objects() -> Vec<ObjectConfig> {
    let zones = vec![
        ExclusionZone::Speaker("M+110".into()),
        ExclusionZone::Cartesian {
            min_x: -1.0,
            max_x: 1.0,
            min_y: -1.0,
            max_y: -0.5,
            min_z: 0.5,
            max_z: 1.0,
        },
    ];
    let everything = ObjectControls {
        extent: Some(Automation::constant(Extent {
            width: 0.3,
            height: 0.2,
            depth: 0.1,
        })),
        diffuse: Automation::constant(0.3),
        divergence: Automation::constant(0.4),
        snap: Some(Snap {
            max_distance: Some(0.4),
        }),
        zones: zones.clone(),
        screen_ref: true,
        screen_edge_lock: vec![ScreenEdge::Left],
        ..ObjectControls::default()
    };
    let alone = [
        ObjectControls {
            zones,
            ..ObjectControls::default()
        },
        ObjectControls {
            snap: Some(Snap { max_distance: None }),
            ..ObjectControls::default()
        },
        ObjectControls {
            divergence: Automation::constant(0.5),
            ..ObjectControls::default()
        },
        ObjectControls {
            diffuse: Automation::constant(0.5),
            ..ObjectControls::default()
        },
        everything,
    ];
    let mut out = Vec::new();
    for (i, c) in alone.iter().enumerate() {
        let cartesian = path(30, |k| {
            let a = (k as f64 * 25.0 + i as f64 * 40.0).to_radians();
            Position::Cartesian {
                x: 0.9 * a.sin(),
                y: 0.8 * a.cos(),
                z: 0.2 * (k % 5) as f64,
            }
        });
        let polar = path(30, |k| Position::Polar {
            azimuth_deg: (k as f64 * 23.0 + i as f64 * 50.0) % 360.0 - 180.0,
            elevation_deg: (k % 4) as f64 * 12.0,
            distance: 1.0,
        });
        let mut gains = c.clone();
        gains.interpolate_gains = i % 2 == 0;
        out.push(object(cartesian, gains.clone()));
        // A polar extent is in degrees: 30° × 10° where the Cartesian one is 0.3 × 0.2.
        if gains.extent.is_some() {
            gains.extent = Some(Automation::constant(Extent {
                width: 30.0,
                height: 10.0,
                depth: 0.0,
            }));
        }
        out.push(object(polar, gains));
    }
    out
}

#[test]
fn the_counter_sees_an_allocation() {
    let n = counted(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1, "the counting allocator saw {n} allocations");
}

#[test]
fn engine_process_never_allocates_with_every_bs2127_control() {
    let objects = objects();
    let n = objects.len();
    let mut engine = Engine::new(EngineConfig {
        sample_rate: RATE,
        max_block_frames: BLOCK,
        objects,
        beds: vec![],
        outputs: vec![OutputConfig::speakers(
            Layout::builtin("7.1.4").expect("built-in layout"),
        )],
    })
    .expect("engine");
    for i in 0..n {
        for (k, x) in engine.object_input(i).iter_mut().enumerate() {
            *x = ((k * 7 + i * 13) % 100) as f32 / 100.0 - 0.5;
        }
    }
    // Three seconds, through every keyframe; then a seek back and the first second again.
    let mut allocations = 0;
    for _ in 0..3 * RATE as usize / BLOCK {
        allocations += counted(|| engine.process(BLOCK));
    }
    engine.seek(0);
    for _ in 0..RATE as usize / BLOCK {
        allocations += counted(|| engine.process(BLOCK));
    }
    assert_eq!(
        allocations, 0,
        "Engine::process allocated {allocations} times"
    );
    // The render is not silent: the objects were rendered.
    let energy: f64 = engine
        .output(0)
        .iter()
        .flat_map(|ch| ch[..BLOCK].iter())
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    assert!(energy > 1.0, "output energy {energy}");
}
