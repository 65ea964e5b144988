//! ITU-R BS.2127 gain calculation against the reference renderer (EAR 2.1.0): EAR's own
//! 1,072 gain-calculation test vectors (4+5+0) and polar / Cartesian point sources on
//! seven BS.2051 layouts, all at |Δg| ≤ 1e-4. Data made by
//! tools/reference/bs2127_vectors.py.

use halo::scene::layout::{Channel, Layout};
use halo::spatial::objectbased::screen::{Edges, HorizontalEdge, PolarScreen, VerticalEdge};
use halo::spatial::objectbased::zones::Zone;
use halo::spatial::objectbased::{
    ChannelLock, Divergence, GainCalc, GainHint, ObjectMetadata, ObjectPosition,
};
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/bs2127/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("valid JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn opt(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

/// A halo layout from the JSON's `[name, azimuth, elevation, is_lfe]` channels.
fn layout(v: &Value) -> Layout {
    let channels = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Channel {
            label: c[0].as_str().unwrap().to_string(),
            name: c[0].as_str().unwrap().to_string(),
            azimuth_deg: f(&c[1]),
            elevation_deg: f(&c[2]),
            lfe: c[3].as_bool().unwrap(),
            distance_m: None,
            wav_bit: None,
        })
        .collect();
    Layout {
        name: v["name"].as_str().unwrap().to_string(),
        aliases: Vec::new(),
        channels,
    }
}

fn position(v: &Value) -> ObjectPosition {
    if let Some(p) = v.get("polar") {
        let p = floats(p);
        ObjectPosition::Polar {
            azimuth_deg: p[0],
            elevation_deg: p[1],
            distance: p.get(2).copied().unwrap_or(1.0),
        }
    } else {
        let p = floats(&v["cart"]);
        ObjectPosition::Cartesian {
            x: p[0],
            y: p[1],
            z: p[2],
        }
    }
}

fn metadata(v: &Value) -> ObjectMetadata {
    let whd = floats(&v["whd"]);
    let zones = v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| {
            if let Some(c) = z.get("cart") {
                let c = floats(c);
                Zone::Cartesian {
                    min_x: c[0],
                    max_x: c[1],
                    min_y: c[2],
                    max_y: c[3],
                    min_z: c[4],
                    max_z: c[5],
                }
            } else {
                let p = floats(&z["polar"]);
                Zone::Polar {
                    min_elevation_deg: p[0],
                    max_elevation_deg: p[1],
                    min_azimuth_deg: p[2],
                    max_azimuth_deg: p[3],
                }
            }
        })
        .collect();
    ObjectMetadata {
        position: position(v),
        cartesian: v["cartesian"].as_bool().unwrap(),
        width: whd[0],
        height: whd[1],
        depth: whd[2],
        gain: f(&v["gain"]),
        diffuse: f(&v["diffuse"]),
        channel_lock: v["locked"].as_bool().unwrap().then(|| ChannelLock {
            max_distance: opt(&v["lock"]),
        }),
        divergence: v.get("divergence").map(|d| Divergence {
            value: f(&d[0]),
            azimuth_range_deg: opt(&d[1]),
            position_range: opt(&d[2]),
        }),
        screen_ref: v["screen_ref"].as_bool().unwrap(),
        // EAR reads `horizontal` as left/right and `vertical` as top/bottom; other
        // values (the test generator swaps them) lock nothing.
        screen_edge_lock_horizontal: match v["edge_h"].as_str() {
            Some("left") => Some(HorizontalEdge::Left),
            Some("right") => Some(HorizontalEdge::Right),
            _ => None,
        },
        screen_edge_lock_vertical: match v["edge_v"].as_str() {
            Some("top") => Some(VerticalEdge::Top),
            Some("bottom") => Some(VerticalEdge::Bottom),
            _ => None,
        },
        zone_exclusion: zones,
        reduced_allocentric: None,
        reference_screen: v.get("ref_screen").map(|s| {
            let s = floats(s);
            Edges::of(&PolarScreen {
                aspect_ratio: s[0],
                centre_azimuth_deg: s[1],
                centre_elevation_deg: s[2],
                width_azimuth_deg: s[3],
            })
        }),
    }
}

fn worst(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn ear_gain_calc_vectors_match() {
    let data = load("gain_calc_pvs.json");
    let calc = GainCalc::new(&layout(&data["layout"])).unwrap();
    let n = calc.num_channels();
    let vectors = data["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 1072);
    let mut failures = Vec::new();
    let mut max_err: f64 = 0.0;
    for (i, v) in vectors.iter().enumerate() {
        let mut meta = metadata(v);
        let (mut direct, mut diffuse) = (vec![0.0; n], vec![0.0; n]);
        calc.gains(&meta, &mut GainHint::default(), &mut direct, &mut diffuse);
        // Prepared ahead (the engine's way: zone exclusion's reduced panners built
        // before rendering), the same gains to the bit.
        calc.prepare(&mut meta);
        let (mut d2, mut f2) = (vec![0.0; n], vec![0.0; n]);
        calc.gains(&meta, &mut GainHint::default(), &mut d2, &mut f2);
        assert!(
            direct
                .iter()
                .chain(&diffuse)
                .map(|x| x.to_bits())
                .eq(d2.iter().chain(&f2).map(|x| x.to_bits())),
            "#{i}: prepared metadata gives other gains"
        );
        let e = worst(&direct, &floats(&v["direct"]))
            .max(worst(&diffuse, &floats(&v["diffuse_gains"])));
        max_err = max_err.max(e);
        if e > TOLERANCE {
            failures.push(format!("#{i} err {e:.2e}: {v}\n  halo {direct:?}"));
        }
    }
    println!("worst |Δg| {max_err:.2e}");
    assert!(
        failures.is_empty(),
        "{} of {} vectors off by more than {TOLERANCE}:\n{}",
        failures.len(),
        vectors.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}

#[test]
fn ear_point_sources_match_on_seven_layouts() {
    let data = load("point_sources.json");
    let mut failures = Vec::new();
    for l in data["layouts"].as_array().unwrap() {
        let calc = GainCalc::new(&layout(l)).unwrap();
        let n = calc.num_channels();
        for v in l["vectors"].as_array().unwrap() {
            let meta = ObjectMetadata {
                position: position(v),
                cartesian: v.get("cart").is_some(),
                ..ObjectMetadata::default()
            };
            let (mut direct, mut diffuse) = (vec![0.0; n], vec![0.0; n]);
            calc.gains(&meta, &mut GainHint::default(), &mut direct, &mut diffuse);
            let e = worst(&direct, &floats(&v["gains"]));
            if e > TOLERANCE {
                failures.push(format!("{} err {e:.2e}: {v}\n  halo {direct:?}", l["name"]));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} point sources off:\n{}",
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}
