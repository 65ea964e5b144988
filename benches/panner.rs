//! Gain computation speed of the VBAP panner (called every 64 samples per object by the
//! engine): point sources on 7.1.4 and 9.1.6, size 0.3, Cartesian positions, and the
//! engine's hinted path for a moving object.

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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
