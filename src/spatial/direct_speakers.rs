//! DirectSpeakers channel mapping of ITU-R BS.2127 §8 (table of label mapping rules): a
//! channel of an ITU-R BS.2051 system fed to another system goes to the speakers (and
//! gains) of the first rule whose speakers all exist in the output. Pure metadata →
//! gains; the engine applies them as static bed gains.

use crate::scene::layout::Layout;
pub use crate::scene::mix::SpeakerBounds;

/// One mapping rule: the speaker `label` maps to `gains` (BS.2051 name, gain) when every
/// named speaker is in the output, the input system is in `inputs` (empty: any) and the
/// output system in `outputs` (empty: any).
struct Rule {
    label: &'static str,
    gains: &'static [(&'static str, f64)],
    inputs: &'static [&'static str],
    outputs: &'static [&'static str],
}

const H: f64 = std::f64::consts::FRAC_1_SQRT_2; // √(1/2)
const T1: f64 = 0.577_350_269_189_625_8; // √(1/3)
const T2: f64 = 0.816_496_580_927_726; // √(2/3)
const Q: f64 = 0.5; // √(1/4)
const ANY: &[&str] = &[];
const SYS_H: &[&str] = &["9+10+3"];
const SYS_HF: &[&str] = &["9+10+3", "3+7+0"];

const fn r(label: &'static str, gains: &'static [(&'static str, f64)]) -> Rule {
    Rule {
        label,
        gains,
        inputs: ANY,
        outputs: ANY,
    }
}

const fn r_in(
    label: &'static str,
    gains: &'static [(&'static str, f64)],
    inputs: &'static [&'static str],
) -> Rule {
    Rule {
        label,
        gains,
        inputs,
        outputs: ANY,
    }
}

/// BS.2127 §8's rules for the left side and the median plane, in priority order; each
/// rule with a `+` azimuth also holds mirrored (`+` ↔ `−`), tried right after it.
const RULES: &[Rule] = &[
    r("M+000", &[("M+000", 1.0)]),
    r("M+000", &[("M+030", H), ("M-030", H)]),
    r("M+060", &[("M+060", 1.0)]),
    r("M+060", &[("M+030", T2), ("M+110", T1)]),
    r("M+060", &[("M+030", H), ("M+090", H)]),
    r("M+060", &[("M+030", 1.0)]),
    r("M+090", &[("M+090", 1.0)]),
    r_in("M+090", &[("M+030", T1), ("M+110", T2)], SYS_H),
    r("M+090", &[("M+030", H), ("M+110", H)]),
    r("M+090", &[("M+030", H)]),
    r("M+110", &[("M+110", 1.0)]),
    r("M+110", &[("M+135", 1.0)]),
    r("M+110", &[("M+030", H)]),
    r("M+135", &[("M+135", 1.0)]),
    r("M+135", &[("M+110", 1.0)]),
    r("M+135", &[("M+030", H)]),
    r("M+180", &[("M+180", 1.0)]),
    r("M+180", &[("M+135", H), ("M-135", H)]),
    r("M+180", &[("M+110", H), ("M-110", H)]),
    r("M+180", &[("M+030", Q), ("M-030", Q)]),
    r("U+000", &[("U+000", 1.0)]),
    r("U+000", &[("U+030", H), ("U-030", H)]),
    r("U+000", &[("U+045", H), ("U-045", H)]),
    r("U+000", &[("M+000", 1.0)]),
    r("U+000", &[("M+030", H), ("M-030", H)]),
    r("U+030", &[("U+030", 1.0)]),
    r("U+030", &[("U+045", 1.0)]),
    r("U+030", &[("M+030", 1.0)]),
    r("U+045", &[("U+045", 1.0)]),
    r("U+045", &[("U+030", 1.0)]),
    r("U+045", &[("M+030", 1.0)]),
    r("U+090", &[("U+090", 1.0)]),
    r_in("U+090", &[("U+045", T2), ("UH+180", T1)], SYS_H),
    r("U+090", &[("U+030", H), ("U+110", H)]),
    r("U+090", &[("U+045", H), ("U+135", H)]),
    r("U+090", &[("M+090", 1.0)]),
    r("U+090", &[("U+030", H), ("M+110", H)]),
    r("U+090", &[("M+030", H), ("M+110", H)]),
    r("U+090", &[("M+030", H)]),
    r("U+110", &[("U+110", 1.0)]),
    r("U+110", &[("U+135", 1.0)]),
    r("U+110", &[("U+045", H), ("UH+180", H)]),
    r("U+110", &[("M+110", 1.0)]),
    r("U+110", &[("M+135", 1.0)]),
    r("U+110", &[("M+030", H)]),
    r("U+135", &[("U+135", 1.0)]),
    r("U+135", &[("U+110", 1.0)]),
    r_in("U+135", &[("U+045", T1), ("UH+180", T2)], SYS_H),
    r("U+135", &[("U+045", H), ("UH+180", H)]),
    r("U+135", &[("M+135", 1.0)]),
    r("U+135", &[("M+110", 1.0)]),
    r("U+135", &[("M+030", H)]),
    r("U+180", &[("U+180", 1.0)]),
    r("U+180", &[("UH+180", 1.0)]),
    r("U+180", &[("U+135", H), ("U-135", H)]),
    r("U+180", &[("U+110", H), ("U-110", H)]),
    r("U+180", &[("M+135", H), ("M-135", H)]),
    r("U+180", &[("M+110", H), ("M-110", H)]),
    r("U+180", &[("M+030", Q), ("M-030", Q)]),
    r("UH+180", &[("UH+180", 1.0)]),
    r("UH+180", &[("U+180", 1.0)]),
    r("UH+180", &[("U+135", H), ("U-135", H)]),
    r("UH+180", &[("U+110", H), ("U-110", H)]),
    r("UH+180", &[("M+135", H), ("M-135", H)]),
    r("UH+180", &[("M+110", H), ("M-110", H)]),
    r("UH+180", &[("M+030", Q), ("M-030", Q)]),
    r("T+000", &[("T+000", 1.0)]),
    r(
        "T+000",
        &[("U+045", Q), ("U-045", Q), ("U+135", Q), ("U-135", Q)],
    ),
    r(
        "T+000",
        &[("U+030", Q), ("U-030", Q), ("U+110", Q), ("U-110", Q)],
    ),
    r("T+000", &[("U+045", T1), ("U-045", T1), ("UH+180", T1)]),
    r(
        "T+000",
        &[("U+045", Q), ("U-045", Q), ("M+135", Q), ("M-135", Q)],
    ),
    r(
        "T+000",
        &[("U+030", Q), ("U-030", Q), ("M+110", Q), ("M-110", Q)],
    ),
    r(
        "T+000",
        &[("M+030", Q), ("M-030", Q), ("M+135", Q), ("M-135", Q)],
    ),
    r(
        "T+000",
        &[("M+030", Q), ("M-030", Q), ("M+110", Q), ("M-110", Q)],
    ),
    r("T+000", &[("M+030", Q), ("M-030", Q)]),
    r("B+000", &[("B+000", 1.0)]),
    r("B+000", &[("M+000", 1.0)]),
    r("B+000", &[("M+030", H), ("M-030", H)]),
    r("B+045", &[("B+045", 1.0)]),
    r("B+045", &[("M+030", 1.0)]),
    Rule {
        label: "LFE1",
        gains: &[("LFE1", 1.0)],
        inputs: SYS_HF,
        outputs: SYS_HF,
    },
    Rule {
        label: "LFE2",
        gains: &[("LFE2", 1.0)],
        inputs: SYS_HF,
        outputs: SYS_HF,
    },
    r_in("LFE1", &[("LFE1", H)], SYS_HF),
    r_in("LFE2", &[("LFE1", H)], SYS_HF),
    r("LFE1", &[("LFE1", 1.0)]),
];

/// A BS.2051 name mirrored left ↔ right (`M+030` ↔ `M-030`; 0° and 180° stay).
fn mirrored(name: &str) -> String {
    if name.ends_with("000") || name.ends_with("180") {
        name.to_string()
    } else if name.contains('+') {
        name.replace('+', "-")
    } else {
        name.replace('-', "+")
    }
}

/// The ITU-R BS.2051 system name of a built-in layout (`"5.1"` → `"0+5+0"`).
pub fn itu_system(layout: &Layout) -> Option<&'static str> {
    crate::scene::layout::ITU_SYSTEMS
        .iter()
        .find(|(itu, builtin)| layout.name == *builtin || layout.name == *itu)
        .map(|(itu, _)| *itu)
}

/// The gains (output channel index, gain) of BS.2127 §8's first rule that applies to the
/// channel `label` (BS.2051 name) of the system `input` rendered to `output`, or `None`
/// when no rule applies (the channel is then routed by its label or position).
pub fn rule_gains(input: &str, label: &str, output: &Layout) -> Option<Vec<(usize, f64)>> {
    let output_system = itu_system(output);
    let index = |name: &str| output.channels.iter().position(|c| c.name == name);
    for rule in RULES {
        if !rule.inputs.is_empty() && !rule.inputs.contains(&input) {
            continue;
        }
        if !rule.outputs.is_empty() && !output_system.is_some_and(|o| rule.outputs.contains(&o)) {
            continue;
        }
        // The rule as written, then mirrored (when that differs).
        for mirror in [false, true] {
            let name = |n: &str| if mirror { mirrored(n) } else { n.to_string() };
            if mirror {
                let same_label = mirrored(rule.label) == rule.label;
                let mut a: Vec<String> = rule.gains.iter().map(|g| g.0.to_string()).collect();
                let mut b: Vec<String> = rule.gains.iter().map(|g| mirrored(g.0)).collect();
                a.sort();
                b.sort();
                if same_label && a == b {
                    continue;
                }
            }
            if name(rule.label) != label {
                continue;
            }
            let gains: Option<Vec<(usize, f64)>> = rule
                .gains
                .iter()
                .map(|&(n, g)| index(&name(n)).map(|i| (i, g)))
                .collect();
            if gains.is_some() {
                return gains;
            }
        }
    }
    None
}

/// The tolerance of BS.2127 §8's bound and closest-speaker tests (degrees, or distance).
const BOUNDS_TOLERANCE: f64 = 1e-5;

/// Whether the azimuth `x` lies in the range from `start` to `end` taken in increasing
/// angle (a range of a full turn holds any angle; a range of a single angle holds that
/// angle), within `tol` degrees.
fn in_azimuth_range(x: f64, start: f64, end: f64, tol: f64) -> bool {
    let mut end = end;
    while end - 360.0 > start {
        end -= 360.0;
    }
    while end < start {
        end += 360.0;
    }
    let lo = start - tol;
    let mut x = x;
    while x - 360.0 >= lo {
        x -= 360.0;
    }
    while x < lo {
        x += 360.0;
    }
    x <= end + tol
}

fn unit_vector(azimuth_deg: f64, elevation_deg: f64, distance: f64) -> [f64; 3] {
    let (az, el) = (azimuth_deg.to_radians(), elevation_deg.to_radians());
    [
        -az.sin() * el.cos() * distance,
        az.cos() * el.cos() * distance,
        el.sin() * distance,
    ]
}

/// The non-LFE speaker of `output` that BS.2127 §8 sends the channel to when no
/// speaker has its label: of the speakers inside the bounds (a speaker at a pole is
/// inside any azimuth range; output speakers at distance 1), the one nearest the
/// channel's position, if exactly one is nearest (within the tolerance); `None` when
/// no speaker is inside or two tie (the channel is then panned at its position).
pub fn closest_speaker(bounds: &SpeakerBounds, output: &Layout) -> Option<usize> {
    let tol = BOUNDS_TOLERANCE;
    let (az, el, dist) = (
        bounds.azimuth_range_deg,
        bounds.elevation_range_deg,
        bounds.distance_range,
    );
    let target = unit_vector(bounds.azimuth_deg, bounds.elevation_deg, bounds.distance);
    let inside: Vec<(usize, f64)> = output
        .channels
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.lfe)
        .filter(|(_, c)| {
            (in_azimuth_range(c.azimuth_deg, az.0, az.1, tol)
                || c.elevation_deg.abs() >= 90.0 - tol)
                && c.elevation_deg > el.0 - tol
                && c.elevation_deg < el.1 + tol
                && 1.0 > dist.0 - tol
                && 1.0 < dist.1 + tol
        })
        .map(|(i, c)| {
            let p = unit_vector(c.azimuth_deg, c.elevation_deg, 1.0);
            let d = (0..3).map(|k| (p[k] - target[k]).powi(2)).sum::<f64>();
            (i, d.sqrt())
        })
        .collect();
    let &(best, best_d) = inside.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let ties = inside
        .iter()
        .filter(|(_, d)| (d - best_d).abs() < tol)
        .count();
    (ties == 1).then_some(best)
}
