//! Properties of the ITU-R BS.2127 gain calculation that hold on every layout: power
//! normalisation, left/right symmetry, continuity along paths where the standard is
//! continuous, the diffuse split, zone exclusion and divergence.

use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::spatial::objectbased::zones::Zone;
use halo::spatial::objectbased::{
    ChannelLock, Divergence, GainCalc, GainHint, ObjectMetadata, ObjectPosition,
};

const LAYOUTS: [&str; 7] = ["5.1", "7.1", "5.1.2", "5.1.4", "7.1.2", "7.1.4", "9.1.6"];

fn gains(calc: &GainCalc, meta: &ObjectMetadata) -> (Vec<f64>, Vec<f64>) {
    let n = calc.num_channels();
    let (mut d, mut f) = (vec![0.0; n], vec![0.0; n]);
    calc.gains(meta, &mut GainHint::default(), &mut d, &mut f);
    (d, f)
}

fn polar(az: f64, el: f64) -> ObjectMetadata {
    ObjectMetadata {
        position: ObjectPosition::Polar {
            azimuth_deg: az,
            elevation_deg: el,
            distance: 1.0,
        },
        ..ObjectMetadata::default()
    }
}

fn cartesian(x: f64, y: f64, z: f64) -> ObjectMetadata {
    ObjectMetadata {
        position: ObjectPosition::Cartesian { x, y, z },
        cartesian: true,
        ..ObjectMetadata::default()
    }
}

fn power(g: &[f64]) -> f64 {
    g.iter().map(|x| x * x).sum()
}

/// A deterministic pseudo-random sequence in 0…1.
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// Every metadata the tests draw: point and extended, polar and Cartesian.
fn random_metadata(seed: &mut u64) -> ObjectMetadata {
    let mut m = if lcg(seed) < 0.5 {
        let mut m = polar(360.0 * lcg(seed) - 180.0, 180.0 * lcg(seed) - 90.0);
        if lcg(seed) < 0.5 {
            m.width = 360.0 * lcg(seed);
            m.height = 180.0 * lcg(seed);
        }
        m
    } else {
        let mut m = cartesian(2.0 * lcg(seed) - 1.0, 2.0 * lcg(seed) - 1.0, lcg(seed));
        if lcg(seed) < 0.5 {
            m.width = lcg(seed);
            m.height = lcg(seed);
            m.depth = lcg(seed);
        }
        m
    };
    if lcg(seed) < 0.2 {
        m.divergence = Some(Divergence {
            value: lcg(seed),
            azimuth_range_deg: Some(90.0 * lcg(seed)),
            position_range: Some(lcg(seed)),
        });
    }
    m
}

#[test]
fn gains_are_power_normalised_and_never_feed_the_lfe() {
    let mut seed = 1;
    for name in LAYOUTS {
        let layout = Layout::builtin(name).unwrap();
        let calc = GainCalc::new(&layout).unwrap();
        for _ in 0..300 {
            let meta = random_metadata(&mut seed);
            let (g, _) = gains(&calc, &meta);
            assert!(
                (power(&g) - 1.0).abs() < 1e-9,
                "{name}: Σg² = {} for {meta:?}",
                power(&g)
            );
            for (c, ch) in layout.channels.iter().enumerate() {
                if ch.lfe {
                    assert_eq!(g[c], 0.0, "{name}: LFE fed");
                }
            }
        }
    }
}

/// The mirror image of every channel (by its BS.2051 name, M+030 ↔ M−030).
fn mirror(layout: &Layout) -> Vec<usize> {
    layout
        .channels
        .iter()
        .map(|c| {
            let m = if c.name.contains('+') {
                c.name.replace('+', "-")
            } else {
                c.name.replace('-', "+")
            };
            let m = if m.ends_with("000") || m.ends_with("180") || c.lfe {
                c.name.clone()
            } else {
                m
            };
            layout.channels.iter().position(|o| o.name == m).unwrap()
        })
        .collect()
}

#[test]
fn mirrored_sources_get_mirrored_gains() {
    let mut seed = 7;
    for name in LAYOUTS {
        let layout = Layout::builtin(name).unwrap();
        let calc = GainCalc::new(&layout).unwrap();
        let mir = mirror(&layout);
        for _ in 0..200 {
            let meta = random_metadata(&mut seed);
            let mut flipped = meta.clone();
            flipped.position = match meta.position {
                ObjectPosition::Polar {
                    azimuth_deg,
                    elevation_deg,
                    distance,
                } => ObjectPosition::Polar {
                    azimuth_deg: -azimuth_deg,
                    elevation_deg,
                    distance,
                },
                ObjectPosition::Cartesian { x, y, z } => ObjectPosition::Cartesian { x: -x, y, z },
            };
            let (a, _) = gains(&calc, &meta);
            let (b, _) = gains(&calc, &flipped);
            for c in 0..a.len() {
                assert!(
                    (a[c] - b[mir[c]]).abs() < 1e-6,
                    "{name}: channel {} {} vs mirrored {} for {meta:?}",
                    layout.channels[c].name,
                    a[c],
                    b[mir[c]]
                );
            }
        }
    }
}

#[test]
fn gains_are_continuous_along_paths() {
    for name in LAYOUTS {
        let calc = GainCalc::new(&Layout::builtin(name).unwrap()).unwrap();
        // Polar: full turns at several elevations, 0.05° apart.
        for el in [-60.0, -30.0, -10.0, 0.0, 15.0, 30.0, 50.0, 80.0] {
            let mut prev: Option<Vec<f64>> = None;
            for k in 0..=7200 {
                let (g, _) = gains(&calc, &polar(-180.0 + k as f64 * 0.05, el));
                if let Some(p) = &prev {
                    let step = p
                        .iter()
                        .zip(&g)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f64::max);
                    assert!(step < 0.02, "{name}: polar step {step} at el {el}, k {k}");
                }
                prev = Some(g);
            }
        }
        // Cartesian: lines through the room, 0.001 apart.
        for (z, y) in [(0.0, 0.3), (0.5, -0.7), (1.0, 0.0), (0.25, 0.95)] {
            let mut prev: Option<Vec<f64>> = None;
            for k in 0..=2000 {
                let (g, _) = gains(&calc, &cartesian(-1.0 + k as f64 * 0.001, y, z));
                if let Some(p) = &prev {
                    let step = p
                        .iter()
                        .zip(&g)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f64::max);
                    assert!(step < 0.02, "{name}: Cartesian step {step} at y {y} z {z}");
                }
                prev = Some(g);
            }
        }
        // Extent grows continuously from a point.
        let mut prev: Option<Vec<f64>> = None;
        for k in 0..=360 {
            let mut m = polar(70.0, 10.0);
            m.width = k as f64;
            m.height = k as f64 / 2.0;
            let (g, _) = gains(&calc, &m);
            if let Some(p) = &prev {
                let step = p
                    .iter()
                    .zip(&g)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(step < 0.03, "{name}: extent step {step} at width {k}");
            }
            prev = Some(g);
        }
    }
}

#[test]
fn diffuse_splits_power_between_the_two_paths() {
    let calc = GainCalc::new(&Layout::builtin("7.1.4").unwrap()).unwrap();
    for diffuse in [0.0, 0.25, 0.5, 1.0] {
        let mut m = polar(40.0, 20.0);
        m.diffuse = diffuse;
        m.gain = 0.5;
        let (d, f) = gains(&calc, &m);
        assert!((power(&d) - 0.25 * (1.0 - diffuse)).abs() < 1e-12);
        assert!((power(&f) - 0.25 * diffuse).abs() < 1e-12);
    }
}

#[test]
fn zone_exclusion_silences_the_zone_and_keeps_the_power() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let calc = GainCalc::new(&layout).unwrap();
    let upper = Zone::Polar {
        min_elevation_deg: 10.0,
        max_elevation_deg: 90.0,
        min_azimuth_deg: -180.0,
        max_azimuth_deg: 180.0,
    };
    let mut seed = 3;
    for _ in 0..100 {
        let mut m = polar(360.0 * lcg(&mut seed) - 180.0, 90.0 * lcg(&mut seed));
        m.zone_exclusion = vec![upper];
        let (g, _) = gains(&calc, &m);
        assert!((power(&g) - 1.0).abs() < 1e-9);
        for (c, ch) in layout.channels.iter().enumerate() {
            if ch.elevation_deg > 10.0 {
                assert_eq!(g[c], 0.0, "{} fed inside the excluded zone", ch.name);
            }
        }
    }
}

#[test]
fn channel_lock_snaps_to_the_nearest_speaker_within_reach() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let calc = GainCalc::new(&layout).unwrap();
    let c = layout
        .channels
        .iter()
        .position(|c| c.name == "M+030")
        .unwrap();
    let mut m = polar(22.0, 5.0);
    m.channel_lock = Some(ChannelLock {
        max_distance: Some(0.3),
    });
    let (g, _) = gains(&calc, &m);
    assert!((g[c] - 1.0).abs() < 1e-12, "snapped to M+030: {g:?}");
    // Out of reach: not snapped.
    m.channel_lock = Some(ChannelLock {
        max_distance: Some(0.05),
    });
    let (g, _) = gains(&calc, &m);
    assert!(g[c] < 0.99);
}

#[test]
fn session_positions_use_the_standard_panners() {
    let layout = Layout::builtin("5.1.4").unwrap();
    let calc = GainCalc::new(&layout).unwrap();
    let n = calc.num_channels();
    let mut g = vec![0.0; n];
    // The Dolby sample's ceiling edge (X=1, Y=−0.23, Z=1) stays in the top layer.
    calc.position_gains(
        Position::Cartesian {
            x: 1.0,
            y: -0.23,
            z: 1.0,
        },
        0.0,
        &mut g,
    );
    for (c, ch) in layout.channels.iter().enumerate() {
        if ch.elevation_deg < 10.0 {
            assert_eq!(g[c], 0.0, "{} fed by a ceiling object", ch.name);
        }
    }
    assert!((power(&g) - 1.0).abs() < 1e-12);
}

#[test]
fn the_engines_hinted_fast_path_equals_the_full_calculation() {
    use halo::spatial::objectbased::halo_metadata;
    let mut seed = 11;
    for name in LAYOUTS {
        let calc = GainCalc::new(&Layout::builtin(name).unwrap()).unwrap();
        let n = calc.num_channels();
        let mut hint = GainHint::default();
        let mut fast = vec![0.0; n];
        for k in 0..500 {
            let pos = if k % 2 == 0 {
                Position::Polar {
                    azimuth_deg: 360.0 * lcg(&mut seed) - 180.0,
                    elevation_deg: 180.0 * lcg(&mut seed) - 90.0,
                    distance: 1.0,
                }
            } else {
                Position::Cartesian {
                    x: 2.0 * lcg(&mut seed) - 1.0,
                    y: 2.0 * lcg(&mut seed) - 1.0,
                    z: lcg(&mut seed),
                }
            };
            calc.position_gains_hinted(pos, 0.0, &mut hint, &mut fast);
            let (full, _) = gains(&calc, &halo_metadata(pos, 0.0));
            for c in 0..n {
                assert!((fast[c] - full[c]).abs() < 1e-12, "{name} {pos:?}");
            }
        }
    }
}
