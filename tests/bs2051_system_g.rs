//! ITU-R BS.2051 System G (4+9+0, "13.1"): the built-in layout has the standard's channels
//! in its order at EAR's nominal positions, and the BS.2127 point-source panner on it gives
//! the reference renderer's gains (EAR 2.1.0) for 150 polar and 150 Cartesian sources at
//! |Δg| ≤ 1e-4, screen speakers M±SC included. Data made by
//! tools/reference/bs2127_vectors.py (`point_sources_4+9+0.json`).

use halo::scene::layout::Layout;
use halo::spatial::objectbased::{GainCalc, GainHint, ObjectMetadata, ObjectPosition};
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

fn data() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bs2127/point_sources_4+9+0.json"
    );
    let text = std::fs::read_to_string(path).expect("reference data");
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn builtin_layout_is_the_standards() {
    let data = data();
    let ear = &data["layouts"][0];
    assert_eq!(ear["name"], "4+9+0");
    for name in ["4+9+0", "13.1"] {
        let layout = Layout::builtin(name).expect("built in");
        let ear_channels = ear["channels"].as_array().unwrap();
        assert_eq!(layout.num_channels(), ear_channels.len());
        for (c, e) in layout.channels.iter().zip(ear_channels) {
            assert_eq!(c.label, e[0].as_str().unwrap());
            assert_eq!(c.lfe, e[3].as_bool().unwrap(), "{}", c.label);
            if !c.lfe {
                assert_eq!(c.azimuth_deg, e[1].as_f64().unwrap(), "{}", c.label);
                assert_eq!(c.elevation_deg, e[2].as_f64().unwrap(), "{}", c.label);
            }
        }
    }
}

#[test]
fn point_sources_match_ear_on_the_builtin_layout() {
    let data = data();
    let calc = GainCalc::new(&Layout::builtin("4+9+0").unwrap()).unwrap();
    let n = calc.num_channels();
    let vectors = data["layouts"][0]["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 300);
    let mut screen_fed = 0;
    for v in vectors {
        let (position, cartesian) = if let Some(p) = v.get("polar") {
            let p = floats(p);
            let position = ObjectPosition::Polar {
                azimuth_deg: p[0],
                elevation_deg: p[1],
                distance: 1.0,
            };
            (position, false)
        } else {
            let p = floats(&v["cart"]);
            (
                ObjectPosition::Cartesian {
                    x: p[0],
                    y: p[1],
                    z: p[2],
                },
                true,
            )
        };
        let meta = ObjectMetadata {
            position,
            cartesian,
            ..ObjectMetadata::default()
        };
        let (mut direct, mut diffuse) = (vec![0.0; n], vec![0.0; n]);
        calc.gains(&meta, &mut GainHint::default(), &mut direct, &mut diffuse);
        let expected = floats(&v["gains"]);
        let err = direct
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err <= TOLERANCE, "{v}: halo {direct:?}, error {err:.2e}");
        if expected[12] > 0.1 || expected[13] > 0.1 {
            screen_fed += 1;
        }
    }
    // The data reaches the screen speakers, so the comparison covers them.
    assert!(screen_fed >= 5, "only {screen_fed} sources feed M±SC");
}
