//! Acceptance tests of the VBAP panner: energy, symmetry, speaker one-hot, continuity and
//! velocity vector over the whole sphere on every built-in layout and on user layouts;
//! the 2.0 fold-down law against an independent 0+5+0 fold-down; size; and the
//! room-centric Cartesian mapping landing on the expected speakers.

use halo::scene::geometry::{Direction, Position};
use halo::scene::layout::Layout;
use halo::spatial::panner::Panner;

const STEP_DEG: i32 = 2;
/// Largest change of any gain between grid neighbours 2° apart. Pure VBAP on 7.1.4 and
/// 9.1.6 needs 0.156: their real triangle L(30,0)–C(0,0)–Ltf(45,30) is a sliver (the
/// edge C–Ltf passes about 19° above L), and inside a real triangle the gains are pinned
/// by the velocity-vector test and Σg² = 1, so no panning law can be smoother there.
/// Every other built-in layout stays below 0.125.
const MAX_NEIGHBOUR_STEP: f64 = 0.16;

fn gains(p: &Panner, dir: Direction) -> Vec<f64> {
    let mut g = vec![f64::NAN; p.num_channels()];
    p.point_gains(dir, &mut g);
    g
}

fn sized(p: &Panner, dir: Direction, size: f64) -> Vec<f64> {
    let mut g = vec![f64::NAN; p.num_channels()];
    p.gains(dir, size, &mut g);
    g
}

fn at(p: &Panner, x: f64, y: f64, z: f64) -> Vec<f64> {
    let mut g = vec![f64::NAN; p.num_channels()];
    p.position_gains(Position::Cartesian { x, y, z }, 0.0, &mut g);
    g
}

fn power(g: &[f64]) -> f64 {
    g.iter().map(|x| x * x).sum()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The full-sphere test grid: azimuth every 2°, elevation −90…90 every 2°.
fn sphere_grid() -> impl Iterator<Item = (f64, f64)> {
    (-90..=90).step_by(STEP_DEG as usize).flat_map(|el| {
        (-180..180)
            .step_by(STEP_DEG as usize)
            .map(move |az| (az as f64, el as f64))
    })
}

/// For each channel, the channel at the mirrored azimuth (same elevation).
fn mirror_map(layout: &Layout) -> Vec<usize> {
    layout
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.lfe {
                return i;
            }
            let m = c.direction().mirrored();
            layout
                .channels
                .iter()
                .position(|o| !o.lfe && o.direction().angle_to_deg(m) < 1e-6)
                .unwrap_or_else(|| panic!("{}: {} has no mirror image", layout.name, c.label))
        })
        .collect()
}

/// Independent 2.0 reference: pan on a 0+5+0 layout file with the same panner, fold down
/// (C √⅓, surrounds √½) and apply the documented power law.
fn stereo_reference(five: &Panner, dir: Direction) -> [f64; 2] {
    let g = gains(five, dir);
    let (l, r, c, ls, rs) = (g[0], g[1], g[2], g[3], g[4]);
    let fl = l + c / 3f64.sqrt() + ls / 2f64.sqrt();
    let fr = r + c / 3f64.sqrt() + rs / 2f64.sqrt();
    let target = 1.0 - 0.5 * (ls * ls + rs * rs) / power(&g);
    let k = (target / (fl * fl + fr * fr)).sqrt();
    [fl * k, fr * k]
}

fn five_zero() -> Panner {
    let l = Layout::parse(
        "(name: \"5.0 reference\", channels: [
            (label: \"L\", azimuth: 30, elevation: 0),
            (label: \"R\", azimuth: -30, elevation: 0),
            (label: \"C\", azimuth: 0, elevation: 0),
            (label: \"Ls\", azimuth: 110, elevation: 0),
            (label: \"Rs\", azimuth: -110, elevation: 0),
        ])",
        "five.ron",
    )
    .unwrap();
    Panner::new(&l).unwrap()
}

/// Every invariant of point-source panning over the full-sphere grid.
fn check_point_invariants(layout: &Layout, symmetric: bool) {
    let p = Panner::new(layout).unwrap_or_else(|e| panic!("{e}"));
    let name = &layout.name;
    assert_eq!(p.num_channels(), layout.num_channels());
    let stereo = name == "2.0";
    let five = five_zero();
    let mirror = if symmetric {
        Some(mirror_map(layout))
    } else {
        None
    };
    let units: Vec<[f64; 3]> = layout
        .channels
        .iter()
        .map(|c| c.direction().to_unit())
        .collect();
    let mut real_triangle_points = 0;
    let mut max_step: f64 = 0.0;
    for (az, el) in sphere_grid() {
        let dir = Direction::new(az, el);
        let g = gains(&p, dir);
        for (ch, &x) in g.iter().enumerate() {
            assert!(x >= 0.0, "{name} {az},{el}: gain {ch} = {x}");
            if layout.channels[ch].lfe {
                assert_eq!(x, 0.0, "{name}: LFE fed at {az},{el}");
            }
        }
        if stereo {
            let reference = stereo_reference(&five, dir);
            assert!(
                max_diff(&g, &reference) < 1e-9,
                "{name} {az},{el}: {g:?} vs fold-down {reference:?}"
            );
            let p5 = gains(&five, dir);
            let law = 1.0 - 0.5 * (p5[3] * p5[3] + p5[4] * p5[4]);
            assert!((power(&g) - law).abs() < 1e-9, "{name} {az},{el}");
            assert!((0.5 - 1e-9..=1.0 + 1e-9).contains(&power(&g)));
        } else {
            assert!(
                (power(&g) - 1.0).abs() < 1e-6,
                "{name} {az},{el}: Σg² = {}",
                power(&g)
            );
        }
        if let Some(m) = &mirror {
            let gm = gains(&p, dir.mirrored());
            for ch in 0..g.len() {
                assert!(
                    (g[ch] - gm[m[ch]]).abs() < 1e-9,
                    "{name} {az},{el}: channel {} {} vs mirrored {}",
                    layout.channels[ch].label,
                    g[ch],
                    gm[m[ch]]
                );
            }
        }
        // Continuity: neighbours 2° away in azimuth and in elevation.
        let next_az = gains(&p, Direction::new(az + STEP_DEG as f64, el));
        max_step = max_step.max(max_diff(&g, &next_az));
        if el < 90.0 {
            let next_el = gains(&p, Direction::new(az, el + STEP_DEG as f64));
            max_step = max_step.max(max_diff(&g, &next_el));
        }
        // Velocity vector inside real triangles.
        if p.in_real_triangle(dir) {
            real_triangle_points += 1;
            let mut v = [0.0; 3];
            for (ch, u) in units.iter().enumerate() {
                for k in 0..3 {
                    v[k] += g[ch] * u[k];
                }
            }
            let angle = Direction::from_vector(v).angle_to_deg(dir);
            assert!(
                angle < 0.5,
                "{name} {az},{el}: velocity vector {angle}° off"
            );
            let active = g.iter().filter(|&&x| x > 1e-12).count();
            assert!(
                active <= 3,
                "{name} {az},{el}: {active} speakers in a real triangle"
            );
        }
    }
    assert!(
        max_step <= MAX_NEIGHBOUR_STEP,
        "{name}: gains jump by {max_step} between 2° neighbours"
    );
    // Speakers are one-hot.
    for (ch, c) in layout.channels.iter().enumerate() {
        if c.lfe {
            continue;
        }
        let g = gains(&p, c.direction());
        for (o, &x) in g.iter().enumerate() {
            let want = if o == ch { 1.0 } else { 0.0 };
            assert!(
                (x - want).abs() < 1e-9,
                "{name}: at speaker {} channel {} = {x}",
                c.label,
                layout.channels[o].label
            );
        }
    }
    if !stereo && layout.channels.iter().filter(|c| !c.lfe).count() > 3 {
        assert!(
            real_triangle_points > 0 || is_horizontal(layout),
            "{name}: no real triangle"
        );
    }
}

fn is_horizontal(layout: &Layout) -> bool {
    layout
        .channels
        .iter()
        .all(|c| c.lfe || c.elevation_deg == 0.0)
}

/// The layouts this full-sphere VBAP panner was made for (the eight original built-ins).
/// BS.2051 systems E–H (4+9+0, 9+10+3 …) put screen speakers between the front ones,
/// where plain VBAP over the convex hull is not continuous; objects are panned there by
/// the BS.2127 point-source panner, with its own tests (tests/bs2127_*.rs).
fn vbap_layouts() -> Vec<Layout> {
    Layout::builtins()
        .into_iter()
        .filter(|l| {
            [
                "2.0", "5.1", "7.1", "5.1.2", "5.1.4", "7.1.2", "7.1.4", "9.1.6",
            ]
            .contains(&l.name.as_str())
        })
        .collect()
}

#[test]
fn every_builtin_layout_passes_the_point_source_invariants() {
    for layout in vbap_layouts() {
        check_point_invariants(&layout, true);
    }
}

#[test]
fn velocity_vector_is_checked_where_there_are_real_triangles() {
    // 7.1.4 has real triangles (e.g. L–C–Ltf); 5.1 (horizontal) has none.
    let p = Panner::new(&Layout::builtin("7.1.4").unwrap()).unwrap();
    assert!(p.in_real_triangle(Direction::new(20.0, 10.0)));
    assert!(
        !p.in_real_triangle(Direction::new(0.0, 90.0)),
        "zenith is virtual"
    );
    assert!(
        !p.in_real_triangle(Direction::new(180.0, 10.0)),
        "back face centre is virtual"
    );
    let p = Panner::new(&Layout::builtin("5.1").unwrap()).unwrap();
    assert!(!p.in_real_triangle(Direction::new(20.0, 10.0)));
    let p = Panner::new(&Layout::builtin("2.0").unwrap()).unwrap();
    assert!(!p.in_real_triangle(Direction::new(0.0, 0.0)));
}

#[test]
fn stereo_law_front_and_back() {
    let p = Panner::new(&Layout::builtin("2.0").unwrap()).unwrap();
    let front = gains(&p, Direction::new(0.0, 0.0));
    assert!((front[0] - front[1]).abs() < 1e-12);
    assert!((power(&front) - 1.0).abs() < 1e-12, "0 dB in front");
    let back = gains(&p, Direction::new(180.0, 0.0));
    assert!((power(&back) - 0.5).abs() < 1e-12, "−3 dB behind");
    let left_surround = gains(&p, Direction::new(110.0, 0.0));
    assert!((left_surround[0] - 0.5f64.sqrt()).abs() < 1e-12);
    assert!(left_surround[1].abs() < 1e-12);
    // Between L and C: panned on 0+5+0, folded.
    let g = gains(&p, Direction::new(15.0, 0.0));
    assert!(g[0] > g[1] && g[1] > 0.0);
}

#[test]
fn user_layout_with_measured_angles() {
    let text = "(
        name: \"my room\",
        channels: [
            (label: \"L\", azimuth: 28.5, elevation: 1.5, distance: 2.4),
            (label: \"R\", azimuth: -32.0, elevation: 0.0, distance: 2.5),
            (label: \"C\", azimuth: 1.0, elevation: -2.0, distance: 2.6),
            (label: \"LFE\", azimuth: 20.0, elevation: -20.0, lfe: true, distance: 2.0),
            (label: \"Ls\", azimuth: 98.0, elevation: 4.0, distance: 1.8),
            (label: \"Rs\", azimuth: -104.0, elevation: 2.0, distance: 1.9),
            (label: \"Lb\", azimuth: 141.0, elevation: 0.0, distance: 2.2),
            (label: \"Rb\", azimuth: -150.0, elevation: 6.0, distance: 2.1),
            (label: \"Ltf\", azimuth: 41.0, elevation: 38.0, distance: 2.0),
            (label: \"Rtf\", azimuth: -50.0, elevation: 35.0, distance: 2.0),
            (label: \"Ltr\", azimuth: 128.0, elevation: 42.0, distance: 2.0),
            (label: \"Rtr\", azimuth: -137.0, elevation: 33.0, distance: 2.0),
        ],
    )";
    let layout = Layout::parse(text, "my-room.ron").unwrap();
    check_point_invariants(&layout, false);
}

#[test]
fn lcr_layout_that_does_not_surround_the_listener() {
    let layout = Layout::parse(
        "(name: \"3.0\", channels: [
            (label: \"L\", azimuth: 30, elevation: 0),
            (label: \"R\", azimuth: -30, elevation: 0),
            (label: \"C\", azimuth: 0, elevation: 0),
        ])",
        "lcr.ron",
    )
    .unwrap();
    check_point_invariants(&layout, true);
    // Behind the listener the sound still plays, from L and R equally.
    let p = Panner::new(&layout).unwrap();
    let g = gains(&p, Direction::new(180.0, 0.0));
    assert!((g[0] - g[1]).abs() < 1e-12 && g[0] > 0.3, "{g:?}");
}

#[test]
fn asymmetric_front_only_layout() {
    // Three front speakers and one top speaker, unevenly placed.
    let layout = Layout::parse(
        "(name: \"desk\", channels: [
            (label: \"A\", azimuth: 40, elevation: 5),
            (label: \"B\", azimuth: -25, elevation: 0),
            (label: \"C\", azimuth: 5, elevation: -10),
            (label: \"T\", azimuth: 10, elevation: 50),
        ])",
        "desk.ron",
    )
    .unwrap();
    check_point_invariants(&layout, false);
}

// ---- size ----

fn test_directions() -> Vec<Direction> {
    let mut d = Vec::new();
    for el in (-90..=90).step_by(30) {
        for az in (-180..180).step_by(30) {
            d.push(Direction::new(az as f64 + 7.0, el as f64));
        }
    }
    d
}

#[test]
fn size_zero_is_the_point_source() {
    for layout in vbap_layouts() {
        let p = Panner::new(&layout).unwrap();
        for (az, el) in sphere_grid().step_by(7) {
            let dir = Direction::new(az, el);
            assert_eq!(sized(&p, dir, 0.0), gains(&p, dir), "{}", layout.name);
        }
    }
}

#[test]
fn size_is_continuous_energy_preserving_and_symmetric() {
    for layout in vbap_layouts() {
        let p = Panner::new(&layout).unwrap();
        let mirror = mirror_map(&layout);
        let stereo = layout.name == "2.0";
        for dir in test_directions() {
            let mut prev = gains(&p, dir);
            for i in 1..=100 {
                let s = i as f64 / 100.0;
                let g = sized(&p, dir, s);
                let step = max_diff(&g, &prev);
                assert!(
                    step <= 0.05,
                    "{} {dir:?} size {s}: step {step}",
                    layout.name
                );
                assert!(g.iter().all(|&x| x >= 0.0));
                for (ch, c) in layout.channels.iter().enumerate() {
                    if c.lfe {
                        assert_eq!(g[ch], 0.0);
                    }
                }
                if stereo {
                    assert!((0.5 - 1e-9..=1.0 + 1e-9).contains(&power(&g)));
                } else {
                    assert!((power(&g) - 1.0).abs() < 1e-9, "{} size {s}", layout.name);
                }
                if i % 10 == 0 {
                    let gm = sized(&p, dir.mirrored(), s);
                    for ch in 0..g.len() {
                        assert!(
                            (g[ch] - gm[mirror[ch]]).abs() < 1e-9,
                            "{} mirror",
                            layout.name
                        );
                    }
                }
                prev = g;
            }
        }
    }
}

#[test]
fn size_is_continuous_in_direction() {
    for layout in vbap_layouts() {
        let p = Panner::new(&layout).unwrap();
        for size in [0.05, 0.3, 0.7] {
            let mut worst: f64 = 0.0;
            for (az, el) in sphere_grid().step_by(3) {
                let g = sized(&p, Direction::new(az, el), size);
                let ga = sized(&p, Direction::new(az + 2.0, el), size);
                let ge = sized(&p, Direction::new(az, (el + 2.0).min(90.0)), size);
                worst = worst.max(max_diff(&g, &ga)).max(max_diff(&g, &ge));
            }
            assert!(
                worst <= MAX_NEIGHBOUR_STEP,
                "{} size {size}: {worst}",
                layout.name
            );
        }
    }
}

#[test]
fn size_spreads_and_size_one_is_the_whole_room() {
    for name in ["5.1", "7.1.4", "9.1.6"] {
        let layout = Layout::builtin(name).unwrap();
        let p = Panner::new(&layout).unwrap();
        let active = |g: &[f64]| g.iter().filter(|&&x| x > 0.05).count();
        let front = Direction::new(0.0, 0.0);
        assert_eq!(active(&sized(&p, front, 0.0)), 1);
        assert!(
            active(&sized(&p, front, 0.3)) > 1,
            "{name}: size 0.3 spreads"
        );
        // The centre speaker gives way steadily as the size grows.
        let c = layout.channel_index("C").unwrap();
        let mut prev = 1.0;
        for i in 1..=20 {
            let g = sized(&p, front, i as f64 / 20.0);
            assert!(
                g[c] < prev,
                "{name}: C gain {} at size {}",
                g[c],
                i as f64 / 20.0
            );
            prev = g[c];
        }
        let speakers = layout.channels.iter().filter(|c| !c.lfe).count();
        let whole = sized(&p, front, 1.0);
        assert_eq!(active(&whole), speakers, "{name}: size 1 plays everywhere");
        for dir in test_directions() {
            let g = sized(&p, dir, 1.0);
            let back = Direction::from_vector(dir.to_unit().map(|x| -x));
            let gb = sized(&p, back, 1.0);
            assert!(max_diff(&g, &gb) < 1e-9, "{name}: size 1 at {dir:?}");
            assert!(max_diff(&g, &whole) < 1e-9);
            // Nearly direction-independent already at 0.95.
            let near = sized(&p, dir, 0.95);
            let near_back = sized(&p, back, 0.95);
            assert!(
                max_diff(&near, &near_back) < 0.05,
                "{name}: size 0.95 at {dir:?}"
            );
        }
    }
}

#[test]
fn non_finite_input_is_harmless() {
    let p = Panner::new(&Layout::builtin("7.1.4").unwrap()).unwrap();
    let mut g = vec![0.0; p.num_channels()];
    for dir in [
        Direction {
            azimuth_deg: f64::NAN,
            elevation_deg: 0.0,
        },
        Direction {
            azimuth_deg: 0.0,
            elevation_deg: f64::INFINITY,
        },
        Direction {
            azimuth_deg: 1e300,
            elevation_deg: -1e300,
        },
    ] {
        for size in [0.0, 0.5, f64::NAN, -3.0, 7.0] {
            p.gains(dir, size, &mut g);
            assert!((power(&g) - 1.0).abs() < 1e-9, "{dir:?} {size}: {g:?}");
        }
    }
    p.position_gains(
        Position::Cartesian {
            x: f64::NAN,
            y: 1.0,
            z: f64::NEG_INFINITY,
        },
        0.0,
        &mut g,
    );
    assert!((power(&g) - 1.0).abs() < 1e-9);
}

// ---- Cartesian mapping ----

fn assert_one_hot(layout: &Layout, g: &[f64], label: &str, what: &str) {
    let want = layout.channel_index(label).unwrap();
    for (ch, &x) in g.iter().enumerate() {
        let expected = if ch == want { 1.0 } else { 0.0 };
        assert!(
            (x - expected).abs() < 1e-9,
            "{} {what}: expected {label} alone, channel {} = {x}",
            layout.name,
            layout.channels[ch].label
        );
    }
}

#[test]
fn room_corners_land_on_speakers_714() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let p = Panner::new(&layout).unwrap();
    let cases = [
        ((-1.0, 1.0, 0.0), "L"),
        ((1.0, 1.0, 0.0), "R"),
        ((0.0, 1.0, 0.0), "C"),
        ((-1.0, 0.0, 0.0), "Ls"),
        ((1.0, 0.0, 0.0), "Rs"),
        ((-1.0, -1.0, 0.0), "Lrs"),
        ((1.0, -1.0, 0.0), "Rrs"),
        ((-1.0, 1.0, 1.0), "Ltf"),
        ((1.0, 1.0, 1.0), "Rtf"),
        ((-1.0, -1.0, 1.0), "Ltr"),
        ((1.0, -1.0, 1.0), "Rtr"),
    ];
    for ((x, y, z), label) in cases {
        assert_one_hot(&layout, &at(&p, x, y, z), label, &format!("({x},{y},{z})"));
    }
    // Back wall midpoint: Lrs and Rrs equally, nothing else.
    let g = at(&p, 0.0, -1.0, 0.0);
    let (lrs, rrs) = (
        layout.channel_index("Lrs").unwrap(),
        layout.channel_index("Rrs").unwrap(),
    );
    assert!(
        (g[lrs] - g[rrs]).abs() < 1e-9 && (g[lrs] - 0.5f64.sqrt()).abs() < 1e-9,
        "{g:?}"
    );
    assert!((power(&g) - g[lrs] * g[lrs] - g[rrs] * g[rrs]).abs() < 1e-9);
    // Ceiling centre: only the four top speakers, equally.
    check_zenith(
        &layout,
        &at(&p, 0.0, 0.0, 1.0),
        &["Ltf", "Rtf", "Ltr", "Rtr"],
    );
    check_centre_is_diffuse(&layout, &p);
}

#[test]
fn room_corners_land_on_speakers_514() {
    let layout = Layout::builtin("5.1.4").unwrap();
    let p = Panner::new(&layout).unwrap();
    let cases = [
        ((-1.0, 1.0, 0.0), "L"),
        ((1.0, 1.0, 0.0), "R"),
        ((0.0, 1.0, 0.0), "C"),
        ((-1.0, -1.0, 0.0), "Ls"),
        ((1.0, -1.0, 0.0), "Rs"),
        ((-1.0, 1.0, 1.0), "Ltf"),
        ((1.0, 1.0, 1.0), "Rtf"),
        ((-1.0, -1.0, 1.0), "Ltr"),
        ((1.0, -1.0, 1.0), "Rtr"),
    ];
    for ((x, y, z), label) in cases {
        assert_one_hot(&layout, &at(&p, x, y, z), label, &format!("({x},{y},{z})"));
    }
    check_zenith(
        &layout,
        &at(&p, 0.0, 0.0, 1.0),
        &["Ltf", "Rtf", "Ltr", "Rtr"],
    );
    check_centre_is_diffuse(&layout, &p);
    // Side wall midpoint (no side speaker in 5.x): between L and Ls only.
    let g = at(&p, -1.0, 0.0, 0.0);
    let (l, ls) = (
        layout.channel_index("L").unwrap(),
        layout.channel_index("Ls").unwrap(),
    );
    assert!((g[l] * g[l] + g[ls] * g[ls] - 1.0).abs() < 1e-9, "{g:?}");
}

fn check_zenith(layout: &Layout, g: &[f64], tops: &[&str]) {
    let want = 1.0 / (tops.len() as f64).sqrt();
    for (ch, c) in layout.channels.iter().enumerate() {
        let expected = if tops.contains(&c.label.as_str()) {
            want
        } else {
            0.0
        };
        assert!(
            (g[ch] - expected).abs() < 1e-9,
            "{} zenith: {} = {}",
            layout.name,
            c.label,
            g[ch]
        );
    }
}

fn check_centre_is_diffuse(layout: &Layout, p: &Panner) {
    let g = at(p, 0.0, 0.0, 0.0);
    for (ch, c) in layout.channels.iter().enumerate() {
        if c.lfe {
            assert_eq!(g[ch], 0.0);
        } else {
            assert!(
                g[ch] > 0.05,
                "{}: centre, {} = {}",
                layout.name,
                c.label,
                g[ch]
            );
        }
    }
    assert!((power(&g) - 1.0).abs() < 1e-9);
}

#[test]
fn cartesian_paths_through_the_room_are_continuous() {
    for name in ["5.1", "5.1.4", "7.1.4", "9.1.6", "2.0"] {
        let layout = Layout::builtin(name).unwrap();
        let p = Panner::new(&layout).unwrap();
        let paths = [
            ((-1.0, 0.0, 0.0), (1.0, 0.0, 0.0)),
            ((0.0, -1.0, 0.0), (0.0, 1.0, 0.0)),
            ((-1.0, -1.0, 0.0), (1.0, 1.0, 1.0)),
            ((0.3, 1.0, 0.0), (0.3, 1.0, 1.0)),
            ((-1.0, 0.7, 0.5), (1.0, -0.4, 0.5)),
            ((0.0, 0.0, -1.0), (0.0, 0.0, 1.0)),
        ];
        for ((x0, y0, z0), (x1, y1, z1)) in paths {
            let mut prev = at(&p, x0, y0, z0);
            for i in 1..=200 {
                let t = i as f64 / 200.0;
                let g = at(
                    &p,
                    x0 + (x1 - x0) * t,
                    y0 + (y1 - y0) * t,
                    z0 + (z1 - z0) * t,
                );
                let step = max_diff(&g, &prev);
                assert!(
                    step < 0.1,
                    "{name}: step {step} at t={t} on ({x0},{y0},{z0})→({x1},{y1},{z1})"
                );
                prev = g;
            }
        }
    }
}

#[test]
fn polar_positions_use_the_direction() {
    let p = Panner::new(&Layout::builtin("7.1.4").unwrap()).unwrap();
    let mut g = vec![0.0; p.num_channels()];
    p.position_gains(
        Position::Polar {
            azimuth_deg: 45.0,
            elevation_deg: 30.0,
            distance: 1.0,
        },
        0.0,
        &mut g,
    );
    assert_eq!(g, gains(&p, Direction::new(45.0, 30.0)));
    assert!((g[8] - 1.0).abs() < 1e-12, "Ltf");
}

/// The per-object record only saves the triangle search and the elevation's sine and
/// cosine: gains with it (a moving source keeping its own record, and stale or fresh
/// records) equal `position_gains`' within rounding, on every layout kind (direct and the
/// 2.0 fold).
#[test]
fn hinted_gains_equal_plain_gains() {
    for name in ["7.1.4", "9.1.6", "5.1", "2.0"] {
        let p = Panner::new(&Layout::builtin(name).expect("built-in")).expect("panner");
        let n = p.num_channels();
        let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
        let mut hint = halo::spatial::panner::PanHint::default();
        let mut other = halo::spatial::panner::PanHint::default();
        p.position_gains_with_hint(
            Position::Polar {
                azimuth_deg: 170.0,
                elevation_deg: -70.0,
                distance: 1.0,
            },
            0.0,
            &mut other,
            &mut want,
        );
        for k in 0..3000 {
            let pos = if k % 2 == 0 {
                Position::Polar {
                    azimuth_deg: k as f64 * 0.37,
                    elevation_deg: -60.0 + (k as f64 * 0.05) % 150.0,
                    distance: 1.0,
                }
            } else {
                Position::Cartesian {
                    x: (k as f64 * 0.011).sin(),
                    y: (k as f64 * 0.007).cos(),
                    z: (k as f64 * 0.003) % 1.0,
                }
            };
            let size = if k % 5 == 0 { 0.3 } else { 0.0 };
            p.position_gains(pos, size, &mut want);
            // Stale records: every 97th lookup uses the other object's record (another
            // triangle, another elevation), every 89th a fresh one.
            if k % 89 == 0 {
                hint = halo::spatial::panner::PanHint::default();
            }
            if k % 97 == 0 {
                std::mem::swap(&mut hint, &mut other);
                p.position_gains_with_hint(pos, size, &mut hint, &mut got);
                std::mem::swap(&mut hint, &mut other);
            } else {
                p.position_gains_with_hint(pos, size, &mut hint, &mut got);
            }
            assert!(max_diff(&got, &want) < 1e-12, "{name} {pos:?}");
        }
    }
}

/// `position_gains_sparse` gives exactly `position_gains_with_hint`'s gains (same record,
/// same lookups), every channel outside its mask is zero, and a moving point source on
/// 7.1.4 feeds only the few speakers around its triangle.
#[test]
fn sparse_gains_equal_dense_hinted_gains() {
    for name in ["7.1.4", "9.1.6", "5.1", "2.0"] {
        let p = Panner::new(&Layout::builtin(name).expect("built-in")).expect("panner");
        let n = p.num_channels();
        let mut dense = vec![0.0; n];
        let mut sparse = halo::spatial::panner::SparseGains::default();
        let mut hint_dense = halo::spatial::panner::PanHint::default();
        let mut hint_sparse = halo::spatial::panner::PanHint::default();
        let mut widest = 0;
        for k in 0..4000 {
            let pos = match k % 4 {
                0 | 1 => Position::Polar {
                    azimuth_deg: k as f64 * 0.37 - 300.0,
                    elevation_deg: -95.0 + (k as f64 * 0.07) % 190.0,
                    distance: 1.0,
                },
                2 => Position::Cartesian {
                    x: (k as f64 * 0.011).sin(),
                    y: (k as f64 * 0.007).cos(),
                    z: (k as f64 * 0.003) % 1.0,
                },
                _ => Position::Cartesian {
                    // Near the centre: diffuse (the dense size path).
                    x: 0.1 * (k as f64 * 0.013).sin(),
                    y: 0.1 * (k as f64 * 0.017).cos(),
                    z: 0.05,
                },
            };
            let size = match k % 7 {
                0 => 0.3,
                1 => f64::NAN,
                _ => 0.0,
            };
            p.position_gains_with_hint(pos, size, &mut hint_dense, &mut dense);
            p.position_gains_sparse(pos, size, &mut hint_sparse, &mut sparse);
            let mask = sparse.mask();
            for (c, &want) in dense.iter().enumerate() {
                assert!(
                    sparse.get(c).to_bits() == want.to_bits(),
                    "{name} {pos:?} size {size}: channel {c}: {} != {want}",
                    sparse.get(c)
                );
                if mask & (1 << c) == 0 {
                    assert_eq!(want, 0.0, "{name} {pos:?}: channel {c} outside the mask");
                }
            }
            assert!(sparse.iter().all(|(c, g)| g == dense[c]));
            if matches!(pos, Position::Polar { .. }) && size == 0.0 {
                widest = widest.max(mask.count_ones());
            }
        }
        if name == "7.1.4" {
            // At most a triangle's speakers, a virtual speaker's feeds among them.
            assert!(widest <= 8, "a point source fed {widest} channels");
        }
    }
}
