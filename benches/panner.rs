//! Gain computation speed (called every 256 samples per object by the engine): the ITU-R
//! BS.2127 gain calculation per layout (a cold lookup, a hinted moving source, a
//! Cartesian point, a polar extent, building it), and the older VBAP panner (still used
//! by the binaural bus) on 7.1.4 and 9.1.6.

use criterion::{Criterion, criterion_group, criterion_main};
use halo::scene::geometry::{Direction, Position};
use halo::scene::layout::Layout;
use halo::spatial::panner::Panner;
use std::hint::black_box;

/// A fixed set of directions spread over the sphere (so every triangle gets visited).
fn directions() -> Vec<Direction> {
    (0..64)
        .map(|i| {
            let t = i as f64 / 64.0;
            Direction::new(t * 360.0 * 7.0, -80.0 + 170.0 * ((t * 13.0) % 1.0))
        })
        .collect()
}

fn positions() -> Vec<Position> {
    (0..64)
        .map(|i| {
            let t = i as f64 / 64.0;
            Position::Cartesian {
                x: (t * 17.0).sin(),
                y: (t * 11.0).cos(),
                z: (t * 5.0) % 1.0,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dirs = directions();
    let pos = positions();
    for name in ["7.1.4", "9.1.6"] {
        let layout = Layout::builtin(name).expect("built-in layout");
        let panner = Panner::new(&layout).expect("panner");
        let mut out = vec![0.0; panner.num_channels()];
        let mut i = 0;
        c.bench_function(&format!("point_gains {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % dirs.len();
                panner.point_gains(black_box(dirs[i]), &mut out);
                black_box(&out);
            })
        });
        c.bench_function(&format!("gains size 0.3 {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % dirs.len();
                panner.gains(black_box(dirs[i]), black_box(0.3), &mut out);
                black_box(&out);
            })
        });
        c.bench_function(&format!("position_gains cartesian {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % pos.len();
                panner.position_gains(black_box(pos[i]), black_box(0.0), &mut out);
                black_box(&out);
            })
        });
        // The engine's path: one object moving slowly at a constant height, keeping its
        // own PanHint (triangle and elevation cached).
        let mut hint = halo::spatial::panner::PanHint::default();
        let mut k = 0u64;
        c.bench_function(&format!("position_gains_with_hint moving {name}"), |b| {
            b.iter(|| {
                k += 1;
                let pos = Position::Polar {
                    azimuth_deg: (k % 36_000) as f64 * 0.01,
                    elevation_deg: 10.0,
                    distance: 1.0,
                };
                panner.position_gains_with_hint(black_box(pos), 0.0, &mut hint, &mut out);
                black_box(&out);
            })
        });
        c.bench_function(&format!("Panner::new {name}"), |b| {
            b.iter(|| black_box(Panner::new(black_box(&layout)).expect("panner")))
        });
    }
}

/// The BS.2127 gain calculation, per layout.
fn bench_bs2127(c: &mut Criterion) {
    use halo::spatial::objectbased::{GainCalc, GainHint, ObjectMetadata, ObjectPosition};
    let dirs = directions();
    for name in ["2.0", "5.1", "5.1.4", "7.1.4", "9.1.6"] {
        let layout = Layout::builtin(name).expect("built-in layout");
        let calc = GainCalc::new(&layout).expect("gain calc");
        let n = calc.num_channels();
        let (mut d, mut f) = (vec![0.0; n], vec![0.0; n]);
        let polar = |dir: Direction| ObjectMetadata {
            position: ObjectPosition::Polar {
                azimuth_deg: dir.azimuth_deg,
                elevation_deg: dir.elevation_deg,
                distance: 1.0,
            },
            ..ObjectMetadata::default()
        };
        let metas: Vec<ObjectMetadata> = dirs.iter().map(|&dir| polar(dir)).collect();
        let mut i = 0;
        c.bench_function(&format!("bs2127 cold point {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % metas.len();
                calc.gains(
                    black_box(&metas[i]),
                    &mut GainHint::default(),
                    &mut d,
                    &mut f,
                );
                black_box(&d);
            })
        });
        let mut hint = GainHint::default();
        let mut k = 0u64;
        c.bench_function(&format!("bs2127 hinted moving point {name}"), |b| {
            b.iter(|| {
                k += 1;
                let m = polar(Direction::new((k % 36_000) as f64 * 0.01, 10.0));
                calc.gains(black_box(&m), &mut hint, &mut d, &mut f);
                black_box(&d);
            })
        });
        let carts: Vec<ObjectMetadata> = positions()
            .iter()
            .map(|p| {
                let mut m = halo::spatial::objectbased::halo_metadata(*p, 0.0);
                m.width = 0.0;
                m
            })
            .collect();
        c.bench_function(&format!("bs2127 cartesian point {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % carts.len();
                calc.gains(
                    black_box(&carts[i]),
                    &mut GainHint::default(),
                    &mut d,
                    &mut f,
                );
                black_box(&d);
            })
        });
        let mut wide = polar(Direction::new(40.0, 10.0));
        wide.width = 60.0;
        wide.height = 30.0;
        c.bench_function(&format!("bs2127 polar extent 60x30 {name}"), |b| {
            b.iter(|| {
                calc.gains(black_box(&wide), &mut GainHint::default(), &mut d, &mut f);
                black_box(&d);
            })
        });
        c.bench_function(&format!("GainCalc::new {name}"), |b| {
            b.iter(|| black_box(GainCalc::new(black_box(&layout)).expect("gain calc")))
        });
    }
}

/// The engine's call (`GainCalc::position_gains_hinted`, once per object and 64-frame
/// segment) on the layouts of issue 13: a cold call (a fresh hint, directions spread over
/// the sphere) and a hinted one (a source moving 0.01° a call at 10° elevation, keeping
/// its hint), polar and Cartesian (Cartesian points need no hint: both paths are listed
/// for the record).
fn bench_engine_call(c: &mut Criterion) {
    use halo::spatial::objectbased::{GainCalc, GainHint};
    let dirs = directions();
    let pos = positions();
    // A slow path through the room, 0.01° of its parameter a call.
    let path: Vec<Position> = (0..36_000)
        .map(|k| {
            let a = (k as f64 * 0.01).to_radians();
            Position::Cartesian {
                x: 0.9 * a.sin(),
                y: 0.8 * (1.3 * a).cos(),
                z: 0.4,
            }
        })
        .collect();
    for name in [
        "0+2+0", "0+5+0", "2+5+0", "4+5+0", "4+7+0", "9+10+3", "0+7+0",
    ] {
        let layout = Layout::builtin(name).expect("built-in layout");
        let calc = GainCalc::new(&layout).expect("gain calc");
        let mut out = vec![0.0; calc.num_channels()];
        let mut i = 0;
        c.bench_function(&format!("bs2127 engine call polar cold {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % dirs.len();
                let p = Position::Polar {
                    azimuth_deg: dirs[i].azimuth_deg,
                    elevation_deg: dirs[i].elevation_deg,
                    distance: 1.0,
                };
                calc.position_gains_hinted(black_box(p), 0.0, &mut GainHint::default(), &mut out);
                black_box(&out);
            })
        });
        let mut hint = GainHint::default();
        let mut k = 0u64;
        c.bench_function(&format!("bs2127 engine call polar hinted {name}"), |b| {
            b.iter(|| {
                k += 1;
                let p = Position::Polar {
                    azimuth_deg: (k % 36_000) as f64 * 0.01 - 180.0,
                    elevation_deg: 10.0,
                    distance: 1.0,
                };
                calc.position_gains_hinted(black_box(p), 0.0, &mut hint, &mut out);
                black_box(&out);
            })
        });
        c.bench_function(&format!("bs2127 engine call cartesian cold {name}"), |b| {
            b.iter(|| {
                i = (i + 1) % pos.len();
                calc.position_gains_hinted(
                    black_box(pos[i]),
                    0.0,
                    &mut GainHint::default(),
                    &mut out,
                );
                black_box(&out);
            })
        });
        let mut hint = GainHint::default();
        c.bench_function(
            &format!("bs2127 engine call cartesian hinted {name}"),
            |b| {
                b.iter(|| {
                    k += 1;
                    let p = path[(k % 36_000) as usize];
                    calc.position_gains_hinted(black_box(p), 0.0, &mut hint, &mut out);
                    black_box(&out);
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench, bench_bs2127, bench_engine_call
}
criterion_main!(benches);
