//! DirectSpeakers beds of the ITU-R BS.2051 systems rendered to other systems: each
//! channel's gains as BS.2127 §8's label mapping rules give them, against EAR 2.1.0's
//! DirectSpeakers panner (`tests/data/adm/ear_direct_speakers.json`, made by
//! `tools/reference/direct_speakers.py`), e.g. 5.1's M±110 on M±135 of 7.1.4, 22.2's two
//! LFEs at −3 dB into one, 7.1.4's heights folded onto 5.1. Also: an own (non-ITU) pack
//! with the same labels is not mapped by the rules.

mod common;
use common::{bed_gains, builtin_of};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/adm/ear_direct_speakers.json"
);

#[test]
fn itu_beds_map_as_ear_maps_them() {
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DATA).unwrap()).unwrap();
    let mut checked = 0;
    for case in data["cases"].as_array().unwrap() {
        let (inp, out) = (
            case["input"].as_str().unwrap(),
            case["output"].as_str().unwrap(),
        );
        let (input, output) = (builtin_of(inp), builtin_of(out));
        let measured = bed_gains(&input, &[], &output);
        for (c, ch) in input.channels.iter().enumerate() {
            let want = &case["gains"][&ch.name];
            for (o, och) in output.channels.iter().enumerate() {
                let e = want[&och.name].as_f64().unwrap_or(0.0);
                let h = measured[c][o];
                assert!(
                    (e - h).abs() < 1e-4,
                    "{inp} → {out}: {} on {}: halo {h:.4}, EAR {e:.4}",
                    ch.name,
                    och.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn the_5_1_surrounds_go_to_the_7_1_4_rear_surrounds() {
    // The headline rule: M±110 → M±135 (not panned between M±090 and M±135).
    let g = bed_gains(&builtin_of("0+5+0"), &[], &builtin_of("4+7+0"));
    let input = builtin_of("0+5+0");
    let output = builtin_of("4+7+0");
    let ls = input
        .channels
        .iter()
        .position(|c| c.name == "M+110")
        .unwrap();
    let lrs = output
        .channels
        .iter()
        .position(|c| c.name == "M+135")
        .unwrap();
    assert!((g[ls][lrs] - 1.0).abs() < 1e-6);
    assert!((g[ls].iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-6);
}

#[test]
fn an_own_pack_is_panned_at_its_positions_not_mapped() {
    // The same 5.1 speakers under a non-ITU name: M+110 is panned at 110° (between
    // M+090 and M+135), as BS.2127 does for packs that are not common definitions.
    let mut own = builtin_of("0+5+0");
    own.name = "ADM AP_00011001".into();
    own.aliases.clear();
    let output = builtin_of("4+7+0");
    let g = bed_gains(&own, &[], &output);
    let ls = own.channels.iter().position(|c| c.name == "M+110").unwrap();
    let (m90, m135) = (
        output
            .channels
            .iter()
            .position(|c| c.name == "M+090")
            .unwrap(),
        output
            .channels
            .iter()
            .position(|c| c.name == "M+135")
            .unwrap(),
    );
    assert!(g[ls][m90] > 0.3 && g[ls][m135] > 0.3, "{:?}", g[ls]);
    assert!((g[ls].iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-4);
}
