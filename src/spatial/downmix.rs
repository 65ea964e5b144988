//! Fold-down matrices from any speaker layout to 5.1 and to 2.0, after practice (Dolby's
//! chain: heights → ear level → 5.1 → stereo) and ITU-R BS.775 (Lo/Ro), with a Pro Logic
//! II style Lt/Rt whose ±90° surround path is a pair of IIR all-pass phase-splitting
//! networks (no extra latency).
//!
//! The chain works from each channel's position (labels only name things), so built-in and
//! user layouts fold the same way:
//!
//! 1. **heights → ear level** (channels with |elevation| > 10°, up or down), each at
//!    `height_db`: top-front (|az| < 60°) → the ear-level front speaker on that side
//!    (nearest 30°), or C for a top-centre (|az| ≤ 10°); top-middle/side (60°…120°) → the
//!    surround on that side nearest 90°; top-rear (> 120°) → the rearmost surround on that
//!    side; a top-back-centre (|az| ≥ 170°) splits √½ to both rearmost surrounds; a zenith
//!    speaker (elevation ≥ 75°) splits √½ to the two fronts. Where the ring lacks the
//!    target, the next one forward is used (rear → side → front), and finally the nearest
//!    ear-level speaker.
//! 2. **ear level → 5.1**: front |az| ≤ 45°: L, C, R (between 0° and 30° panned C ↔ L/R with
//!    a sine/cosine law, 30°…45° all to L/R); wides (45°…75°, e.g. 9.1.6 Lw at 60°) → L/R at
//!    unity; surrounds (≥ 75°) → Ls/Rs, at unity when a side has one surround (5.x) and at
//!    `rear_db` each when it has several (7.x side + rear); a back-centre (≥ 175°) splits √½
//!    to both. LFE channels → LFE. Skipped when the ring already is 5.1.
//! 3. **5.1 → 2.0**: Lo = L + c·C + s·Ls (+ l·LFE), Ro = R + c·C + s·Rs (+ l·LFE); or
//!    Lt = L + c·C − j·(0.8717·Ls + 0.4899·Rs), Rt = R + c·C + j·(0.4899·Ls + 0.8717·Rs)
//!    (+ l·LFE): the Pro Logic II encoder's fixed surround coefficients (`surround_db` is
//!    for Lo/Ro only).
//!
//! "−3 dB" defaults are exactly √½ (−3.0103 dB), the coefficient BS.775 and Dolby give.

use crate::scene::layout::Layout;
use serde::Serialize;
use std::f64::consts::{FRAC_1_SQRT_2, PI};
use thiserror::Error;

/// 20·log10(√½): the "−3 dB" of BS.775 fold-down coefficients.
pub const MINUS_3_DB: f64 = -3.010_299_956_639_812;
/// Pro Logic II surround coefficients (−1.2 dB and −6.2 dB).
pub const PL2_SURROUND_MAJOR: f64 = 0.8717;
pub const PL2_SURROUND_MINOR: f64 = 0.4899;
/// Band over which the two all-pass networks keep 90° apart.
pub const PHASE_BAND_LOW_HZ: f64 = 20.0;
pub const PHASE_BAND_HIGH_HZ: f64 = 20_000.0;
/// First-order all-pass sections per network.
pub const PHASE_SECTIONS: usize = 8;

const GAIN_RANGE_DB: (f64, f64) = (-100.0, 12.0);
const MAX_BLOCK_FRAMES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum FoldKind {
    LoRo,
    LtRt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FoldDownConfig {
    pub kind: FoldKind,
    pub center_db: f64,
    pub surround_db: f64,
    pub rear_db: f64,
    pub height_db: f64,
    /// `None`: the LFE is dropped; `Some(db)`: mixed into both outputs at this gain.
    pub lfe_db: Option<f64>,
}

impl Default for FoldDownConfig {
    fn default() -> Self {
        FoldDownConfig {
            kind: FoldKind::LoRo,
            center_db: MINUS_3_DB,
            surround_db: MINUS_3_DB,
            rear_db: MINUS_3_DB,
            height_db: MINUS_3_DB,
            lfe_db: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum DownmixError {
    #[error("cannot fold to layout '{layout}' (channels {labels}); allowed targets: {allowed}")]
    UnsupportedTarget {
        layout: String,
        labels: String,
        allowed: &'static str,
    },
    #[error(
        "{field} = {value_db} dB is not allowed; use a finite gain from {min_db} to {max_db} dB"
    )]
    Gain {
        field: &'static str,
        value_db: f64,
        min_db: f64,
        max_db: f64,
    },
    #[error("sample rate {sample_rate_hz} Hz is not allowed; use {min_hz} to {max_hz} Hz")]
    SampleRate {
        sample_rate_hz: u32,
        min_hz: u32,
        max_hz: u32,
    },
    #[error("max_block_frames {max_block_frames} is not allowed; use 1 to {max}")]
    BlockSize { max_block_frames: usize, max: usize },
    #[error("layout '{layout}' has no ear-level channel (|elevation| ≤ 10°) to fold heights into")]
    NoEarLevel { layout: String },
    #[error("{kind:?} folds to 2.0 only; the target '{target}' is 5.1 (use LoRo)")]
    KindNeedsStereo { kind: FoldKind, target: String },
}

/// One stage of the chain, with its coefficients (rows = `to`, columns = `from`).
#[derive(Debug, Clone, Serialize)]
pub struct FoldStep {
    pub name: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub matrix: Vec<Vec<f64>>,
    /// Lt/Rt: the coefficients that go through the +90° (j) path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quadrature: Option<Vec<Vec<f64>>>,
}

/// A cascade of first-order all-pass sections H(z) = (c + z⁻¹)/(1 + c·z⁻¹).
#[derive(Debug, Clone)]
struct AllPassChain {
    coefs: Vec<f64>,
}

impl AllPassChain {
    /// Runs `buf` through the chain in place; `state` holds (x[n−1], y[n−1]) per section.
    fn run(&self, buf: &mut [f64], state: &mut [[f64; 2]]) {
        for (&c, st) in self.coefs.iter().zip(state.iter_mut()) {
            let [mut x1, mut y1] = *st;
            for v in buf.iter_mut() {
                let x = *v;
                let y = c * (x - y1) + x1;
                x1 = x;
                y1 = y;
                *v = y;
            }
            *st = [x1, y1];
        }
    }
}

/// Designs the phase-splitting pair: network B lags network A by 90° (±0.8° at 48 kHz)
/// from 20 Hz to 20 kHz (or 0.45·fs).
///
/// Method: an analog first-order all-pass (p − s)/(p + s) has phase −2·atan(ω/p). Two
/// cascades with interleaved real poles (B's below A's) have a phase difference that
/// ripples around 90°. The 2·N pole frequencies start log-spaced over the band (prewarped
/// for the bilinear transform, 1.5 nepers beyond each edge) and are refined by coordinate
/// descent on the Lᵖ norm of the phase error over a log grid, p = 4, 8, 16 (tending to the
/// equiripple minimax). The bilinear transform then gives c = (p − K)/(p + K), K = 2·fs;
/// it warps frequency identically for both networks, so the difference is kept. No crate
/// designs such networks (fixed published coefficient tables exist only for one band and
/// rate), hence this small optimiser.
fn design_phase_pair(sample_rate: u32) -> (AllPassChain, AllPassChain) {
    let fs = sample_rate as f64;
    let k = 2.0 * fs;
    let prewarp = |f: f64| k * (PI * f / fs).tan();
    let lo = prewarp(PHASE_BAND_LOW_HZ);
    let hi = prewarp(PHASE_BAND_HIGH_HZ.min(0.45 * fs));
    let points = 150;
    let grid: Vec<f64> = (0..=points)
        .map(|i| lo * (hi / lo).powf(i as f64 / points as f64))
        .collect();
    let m = 2 * PHASE_SECTIONS;
    let (x0, x1) = (lo.ln() - 1.5, hi.ln() + 1.5);
    let step = (x1 - x0) / (m as f64 - 1.0);
    // Log pole frequencies; even indices belong to B (lower), odd to A.
    let mut x: Vec<f64> = (0..m).map(|i| x0 + step * i as f64).collect();
    // Each pole's phase term on the grid (B's count +, A's −); the difference is their sum.
    // A trial move of one pole recomputes only that pole's row.
    let term = |i: usize, lp: f64| -> Vec<f64> {
        let p = lp.exp();
        let sign = if i.is_multiple_of(2) { 2.0 } else { -2.0 };
        grid.iter().map(|&w| sign * (w / p).atan()).collect()
    };
    let mut terms: Vec<Vec<f64>> = x.iter().enumerate().map(|(i, &lp)| term(i, lp)).collect();
    let mut diff: Vec<f64> = (0..grid.len())
        .map(|g| terms.iter().map(|t| t[g]).sum())
        .collect();
    let cost = |d: &[f64], p: i32| -> f64 {
        d.iter()
            .map(|&v| ((v - PI / 2.0).abs() * 100.0).powi(p))
            .sum()
    };
    let mut trial = vec![0.0; grid.len()];
    for p in [4, 8, 16] {
        let mut e = cost(&diff, p);
        let mut h = 0.1;
        while h > 1e-3 {
            let mut improved = false;
            for i in 0..m {
                for s in [h, -h] {
                    let t = term(i, x[i] + s);
                    for ((tr, &d), (&old, &new)) in
                        trial.iter_mut().zip(&diff).zip(terms[i].iter().zip(&t))
                    {
                        *tr = d - old + new;
                    }
                    let e2 = cost(&trial, p);
                    if e2 < e {
                        e = e2;
                        x[i] += s;
                        terms[i] = t;
                        diff.copy_from_slice(&trial);
                        improved = true;
                        break;
                    }
                }
            }
            if !improved {
                h *= 0.5;
            }
        }
    }
    let digital = |lp: f64| {
        let p = lp.exp();
        (p - k) / (p + k)
    };
    let a = x.iter().skip(1).step_by(2).map(|&lp| digital(lp)).collect();
    let b = x.iter().step_by(2).map(|&lp| digital(lp)).collect();
    (AllPassChain { coefs: a }, AllPassChain { coefs: b })
}

/// Lt/Rt processing state: network A on the direct sum, B on the quadrature sum, per output.
struct Quadrature {
    matrix: Vec<Vec<f64>>,
    net_a: AllPassChain,
    net_b: AllPassChain,
    state_a: Vec<Vec<[f64; 2]>>,
    state_b: Vec<Vec<[f64; 2]>>,
}

pub struct FoldDown {
    steps: Vec<FoldStep>,
    matrix: Vec<Vec<f64>>,
    quad: Option<Quadrature>,
    from_channels: usize,
    direct: Vec<f64>,
    quad_buf: Vec<f64>,
    max_block_frames: usize,
}

fn db(field: &'static str, value_db: f64) -> Result<f64, DownmixError> {
    if value_db.is_finite() && (GAIN_RANGE_DB.0..=GAIN_RANGE_DB.1).contains(&value_db) {
        Ok(10f64.powf(value_db / 20.0))
    } else {
        Err(DownmixError::Gain {
            field,
            value_db,
            min_db: GAIN_RANGE_DB.0,
            max_db: GAIN_RANGE_DB.1,
        })
    }
}

fn matmul(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let inner = b.len();
    let cols = b.first().map_or(0, |r| r.len());
    a.iter()
        .map(|row| {
            (0..cols)
                .map(|j| (0..inner).map(|k| row[k] * b[k][j]).sum())
                .collect()
        })
        .collect()
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

/// An ear-level channel of the ring: index in the ring and signed azimuth (left > 0).
#[derive(Clone, Copy)]
struct Ear {
    index: usize,
    az: f64,
}

/// Where a height channel goes in the ear-level ring: (ring index, gain) pairs.
fn height_targets(az: f64, el: f64, ring: &[Ear]) -> Vec<(usize, f64)> {
    let side_of = |a: f64| if a >= 0.0 { 1.0 } else { -1.0 };
    // Candidates on one side (`s` = ±1) with s·az in [lo, hi], best by `key`.
    let pick = |s: f64, lo: f64, hi: f64, key: &dyn Fn(f64) -> f64| -> Option<usize> {
        ring.iter()
            .filter(|e| {
                let a = s * e.az;
                a > 0.0 && (lo..=hi).contains(&a)
            })
            .min_by(|x, y| key(s * x.az).total_cmp(&key(s * y.az)))
            .map(|e| e.index)
    };
    let nearest = |a: f64| -> usize {
        ring.iter()
            .min_by(|x, y| {
                let d = |e: &Ear| crate::scene::geometry::wrap_deg(e.az - a).abs();
                d(x).total_cmp(&d(y))
            })
            .map_or(0, |e| e.index)
    };
    let front =
        |s: f64| pick(s, 10.0, 45.0, &|a| (a - 30.0).abs()).unwrap_or_else(|| nearest(30.0 * s));
    let side = |s: f64| pick(s, 75.0, 180.0, &|a| (a - 90.0).abs()).unwrap_or_else(|| front(s));
    let rear = |s: f64| pick(s, 75.0, 180.0, &|a| -a).unwrap_or_else(|| side(s));
    let centre = ring
        .iter()
        .filter(|e| e.az.abs() <= 10.0)
        .min_by(|x, y| x.az.abs().total_cmp(&y.az.abs()))
        .map(|e| e.index);
    let split = |l: usize, r: usize| vec![(l, FRAC_1_SQRT_2), (r, FRAC_1_SQRT_2)];
    let a = crate::scene::geometry::wrap_deg(az);
    let s = side_of(a);
    if el >= 75.0 {
        split(front(1.0), front(-1.0))
    } else if a.abs() <= 10.0 {
        match centre {
            Some(c) => vec![(c, 1.0)],
            None => split(front(1.0), front(-1.0)),
        }
    } else if a.abs() >= 170.0 {
        split(rear(1.0), rear(-1.0))
    } else if a.abs() < 60.0 {
        vec![(front(s), 1.0)]
    } else if a.abs() <= 120.0 {
        vec![(side(s), 1.0)]
    } else {
        vec![(rear(s), 1.0)]
    }
}

/// Row indices of L, R, C, LFE, Ls, Rs on the 5.1 bus.
struct Five {
    l: usize,
    r: usize,
    c: usize,
    lfe: usize,
    ls: usize,
    rs: usize,
}

impl FoldDown {
    pub fn new(
        from: &Layout,
        to: &Layout,
        config: &FoldDownConfig,
        sample_rate: u32,
        max_block_frames: usize,
    ) -> Result<FoldDown, DownmixError> {
        if !(8_000..=768_000).contains(&sample_rate) {
            return Err(DownmixError::SampleRate {
                sample_rate_hz: sample_rate,
                min_hz: 8_000,
                max_hz: 768_000,
            });
        }
        if max_block_frames == 0 || max_block_frames > MAX_BLOCK_FRAMES {
            return Err(DownmixError::BlockSize {
                max_block_frames,
                max: MAX_BLOCK_FRAMES,
            });
        }
        let c = db("center_db", config.center_db)?;
        let s = db("surround_db", config.surround_db)?;
        let r = db("rear_db", config.rear_db)?;
        let h = db("height_db", config.height_db)?;
        let lfe = match config.lfe_db {
            None => 0.0,
            Some(v) => db("lfe_db", v)?,
        };

        // The target, by labels.
        let mains: Vec<&str> = to
            .channels
            .iter()
            .filter(|c| !c.lfe)
            .map(|c| c.label.as_str())
            .collect();
        let has = |set: &[&str]| mains.len() == set.len() && set.iter().all(|l| mains.contains(l));
        let to_lfe = to.lfe_indices();
        let stereo = has(&["L", "R"]) && to_lfe.is_empty();
        let five_one = has(&["L", "R", "C", "Ls", "Rs"]) && to_lfe.len() == 1;
        if !stereo && !five_one {
            return Err(DownmixError::UnsupportedTarget {
                layout: to.name.clone(),
                labels: to.labels().join(" "),
                allowed: "2.0 (L R) or 5.1 (L R C LFE Ls Rs, any order)",
            });
        }
        if five_one && config.kind == FoldKind::LtRt {
            return Err(DownmixError::KindNeedsStereo {
                kind: config.kind,
                target: to.name.clone(),
            });
        }
        let labels = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // 5.1 bus order: the target's own order for a 5.1 target.
        let five_labels: Vec<String> = if five_one {
            to.labels().iter().map(|s| s.to_string()).collect()
        } else {
            labels(&["L", "R", "C", "LFE", "Ls", "Rs"])
        };
        let idx = |l: &str| five_labels.iter().position(|x| x == l).unwrap_or(0);
        let five = Five {
            l: idx("L"),
            r: idx("R"),
            c: idx("C"),
            lfe: if five_one { to_lfe[0] } else { idx("LFE") },
            ls: idx("Ls"),
            rs: idx("Rs"),
        };

        let mut steps = Vec::new();
        let from_labels: Vec<String> = from.labels().iter().map(|s| s.to_string()).collect();

        // 1. heights → ear level.
        let ring_idx: Vec<usize> = (0..from.num_channels())
            .filter(|&i| from.channels[i].lfe || from.channels[i].elevation_deg.abs() <= 10.0)
            .collect();
        let ear: Vec<Ear> = ring_idx
            .iter()
            .enumerate()
            .filter(|&(_, &i)| !from.channels[i].lfe)
            .map(|(k, &i)| Ear {
                index: k,
                az: crate::scene::geometry::wrap_deg(from.channels[i].azimuth_deg),
            })
            .collect();
        if ear.is_empty() {
            return Err(DownmixError::NoEarLevel {
                layout: from.name.clone(),
            });
        }
        let ring_labels: Vec<String> = ring_idx.iter().map(|&i| from_labels[i].clone()).collect();
        let mut total = identity(from.num_channels());
        if ring_idx.len() < from.num_channels() {
            let mut m = vec![vec![0.0; from.num_channels()]; ring_idx.len()];
            for (j, ch) in from.channels.iter().enumerate() {
                match ring_idx.iter().position(|&i| i == j) {
                    Some(k) => m[k][j] = 1.0,
                    None => {
                        for (k, g) in height_targets(ch.azimuth_deg, ch.elevation_deg, &ear) {
                            m[k][j] += h * g;
                        }
                    }
                }
            }
            steps.push(FoldStep {
                name: "heights → ear level".into(),
                from: from_labels.clone(),
                to: ring_labels.clone(),
                matrix: m.clone(),
                quadrature: None,
            });
            total = m;
        }

        // 2. ear level → 5.1.
        let mut m2 = vec![vec![0.0; ring_idx.len()]; 6];
        let on_side = |e: &Ear, s: f64| e.az.abs() >= 175.0 || (s * e.az >= 75.0);
        let count = |s: f64| ear.iter().filter(|e| on_side(e, s)).count();
        let surround_gain = |s: f64| if count(s) > 1 { r } else { 1.0 };
        for (k, &i) in ring_idx.iter().enumerate() {
            let ch = &from.channels[i];
            if ch.lfe {
                m2[five.lfe][k] = 1.0;
                continue;
            }
            let a = crate::scene::geometry::wrap_deg(ch.azimuth_deg);
            let (front, surround) = if a >= 0.0 {
                (five.l, five.ls)
            } else {
                (five.r, five.rs)
            };
            let s = if a >= 0.0 { 1.0 } else { -1.0 };
            if a == 0.0 {
                m2[five.c][k] = 1.0;
            } else if a.abs() < 30.0 {
                let theta = a.abs() / 30.0 * PI / 2.0;
                m2[five.c][k] = theta.cos();
                m2[front][k] = theta.sin();
            } else if a.abs() < 75.0 {
                m2[front][k] = 1.0;
            } else if a.abs() >= 175.0 {
                m2[five.ls][k] = FRAC_1_SQRT_2 * surround_gain(1.0);
                m2[five.rs][k] = FRAC_1_SQRT_2 * surround_gain(-1.0);
            } else {
                m2[surround][k] = surround_gain(s);
            }
        }
        let is_identity = ring_labels == five_labels && m2 == identity(6);
        if !is_identity {
            let mains = ear.len();
            let lfes = ring_idx.len() - mains;
            steps.push(FoldStep {
                name: format!("{mains}.{lfes} → 5.1"),
                from: ring_labels.clone(),
                to: five_labels.clone(),
                matrix: m2.clone(),
                quadrature: None,
            });
            total = matmul(&m2, &total);
        }

        // 3. 5.1 → 2.0.
        let mut quad = None;
        if stereo {
            let mut m3 = vec![vec![0.0; 6]; 2];
            for (row, (front, surround)) in [(five.l, five.ls), (five.r, five.rs)]
                .into_iter()
                .enumerate()
            {
                m3[row][front] = 1.0;
                m3[row][five.c] = c;
                m3[row][five.lfe] = lfe;
                if config.kind == FoldKind::LoRo {
                    m3[row][surround] = s;
                }
            }
            let (name, out) = match config.kind {
                FoldKind::LoRo => ("5.1 → 2.0 Lo/Ro", ["Lo", "Ro"]),
                FoldKind::LtRt => ("5.1 → 2.0 Lt/Rt", ["Lt", "Rt"]),
            };
            let q3 = (config.kind == FoldKind::LtRt).then(|| {
                let mut q = vec![vec![0.0; 6]; 2];
                q[0][five.ls] = -PL2_SURROUND_MAJOR;
                q[0][five.rs] = -PL2_SURROUND_MINOR;
                q[1][five.ls] = PL2_SURROUND_MINOR;
                q[1][five.rs] = PL2_SURROUND_MAJOR;
                q
            });
            // Output rows in the target's order (L first unless the file says otherwise).
            let order: Vec<usize> = to
                .labels()
                .iter()
                .map(|l| if *l == "L" { 0 } else { 1 })
                .collect();
            let reorder = |m: &[Vec<f64>]| order.iter().map(|&o| m[o].clone()).collect::<Vec<_>>();
            let m3 = reorder(&m3);
            let q3 = q3.map(|q| reorder(&q));
            steps.push(FoldStep {
                name: name.into(),
                from: five_labels.clone(),
                to: order.iter().map(|&o| out[o].to_string()).collect(),
                matrix: m3.clone(),
                quadrature: q3.clone(),
            });
            if let Some(q3) = q3 {
                let (net_a, net_b) = design_phase_pair(sample_rate);
                let n = net_a.coefs.len();
                quad = Some(Quadrature {
                    matrix: matmul(&q3, &total),
                    state_a: vec![vec![[0.0; 2]; n]; 2],
                    state_b: vec![vec![[0.0; 2]; n]; 2],
                    net_a,
                    net_b,
                });
            }
            total = matmul(&m3, &total);
        }
        Ok(FoldDown {
            steps,
            matrix: total,
            quad,
            from_channels: from.num_channels(),
            direct: vec![0.0; max_block_frames],
            quad_buf: vec![0.0; max_block_frames],
            max_block_frames,
        })
    }

    /// Each stage's coefficients, in order, for the report.
    pub fn steps(&self) -> &[FoldStep] {
        &self.steps
    }

    /// The overall (to × from) matrix of the in-phase part (Lo/Ro: the whole fold-down).
    pub fn matrix(&self) -> &[Vec<f64>] {
        &self.matrix
    }

    /// Lt/Rt: the (to × from) coefficients of the +90° (j) path, signed.
    pub fn quadrature_matrix(&self) -> Option<&[Vec<f64>]> {
        self.quad.as_ref().map(|q| q.matrix.as_slice())
    }

    /// Folds one block. Input: one slice per `from` channel; output: one per `to` channel.
    /// Missing input channels count as silent; extra ones are ignored; the block length is
    /// the shortest slice given. Blocks longer than `max_block_frames` are processed in
    /// pieces. Never allocates.
    pub fn process(&mut self, input: &[&[f32]], output: &mut [&mut [f32]]) {
        let inputs = input.len().min(self.from_channels);
        let frames = input[..inputs]
            .iter()
            .map(|c| c.len())
            .chain(output.iter().map(|c| c.len()))
            .min()
            .unwrap_or(0);
        let mut start = 0;
        while start < frames {
            let n = (frames - start).min(self.max_block_frames);
            for (o, out) in output.iter_mut().enumerate().take(self.matrix.len()) {
                let direct = &mut self.direct[..n];
                mix(direct, &self.matrix[o], &input[..inputs], start);
                let out = &mut out[start..start + n];
                match &mut self.quad {
                    None => {
                        for (y, &d) in out.iter_mut().zip(direct.iter()) {
                            *y = d as f32;
                        }
                    }
                    Some(q) => {
                        let qb = &mut self.quad_buf[..n];
                        mix(qb, &q.matrix[o], &input[..inputs], start);
                        q.net_a.run(direct, &mut q.state_a[o]);
                        q.net_b.run(qb, &mut q.state_b[o]);
                        // B lags A by 90°: B = −j·A, so the +90° path j·A(x) is −B(x).
                        for ((y, &d), &b) in out.iter_mut().zip(direct.iter()).zip(qb.iter()) {
                            *y = (d - b) as f32;
                        }
                    }
                }
            }
            start += n;
        }
    }

    /// No look-ahead: the all-pass networks add phase, not delay.
    pub fn latency(&self) -> usize {
        0
    }

    pub fn reset(&mut self) {
        if let Some(q) = &mut self.quad {
            for s in q.state_a.iter_mut().chain(q.state_b.iter_mut()) {
                s.fill([0.0; 2]);
            }
        }
    }
}

/// buf = Σ_i row[i]·input[i][start..start + buf.len()].
fn mix(buf: &mut [f64], row: &[f64], input: &[&[f32]], start: usize) {
    buf.fill(0.0);
    let n = buf.len();
    for (&g, x) in row.iter().zip(input) {
        if g != 0.0 {
            for (b, &v) in buf.iter_mut().zip(&x[start..start + n]) {
                *b += g * v as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Phase of a digital first-order all-pass cascade at f, from its transfer function.
    fn phase(chain: &AllPassChain, f: f64, fs: f64) -> f64 {
        let w = 2.0 * PI * f / fs;
        chain
            .coefs
            .iter()
            .map(|&c| {
                // H = (c + e^{-jw}) / (1 + c e^{-jw})
                let num = (c + w.cos(), -w.sin());
                let den = (1.0 + c * w.cos(), -c * w.sin());
                num.1.atan2(num.0) - den.1.atan2(den.0)
            })
            .sum()
    }

    #[test]
    fn phase_pair_is_90_degrees_over_the_band() {
        for fs in [44_100u32, 48_000, 96_000] {
            let (a, b) = design_phase_pair(fs);
            let hi = PHASE_BAND_HIGH_HZ.min(0.45 * fs as f64);
            let mut worst: f64 = 0.0;
            for i in 0..=500 {
                let f = PHASE_BAND_LOW_HZ * (hi / PHASE_BAND_LOW_HZ).powf(i as f64 / 500.0);
                let d = (phase(&a, f, fs as f64) - phase(&b, f, fs as f64)).to_degrees();
                let d = (d + 540.0).rem_euclid(360.0) - 180.0;
                worst = worst.max((d - 90.0).abs());
            }
            assert!(worst < 1.5, "fs {fs}: worst phase error {worst:.2}°");
            assert!(a.coefs.iter().chain(&b.coefs).all(|c| c.abs() < 1.0));
        }
    }

    #[test]
    fn config_errors() {
        let l = Layout::builtin("7.1.4").unwrap();
        let st = Layout::builtin("2.0").unwrap();
        let cfg = FoldDownConfig {
            height_db: f64::NAN,
            ..Default::default()
        };
        let e = FoldDown::new(&l, &st, &cfg, 48_000, 512).err().unwrap();
        assert!(
            matches!(
                e,
                DownmixError::Gain {
                    field: "height_db",
                    ..
                }
            ),
            "{e}"
        );
        let e = FoldDown::new(
            &l,
            &Layout::builtin("7.1").unwrap(),
            &FoldDownConfig::default(),
            48_000,
            512,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("allowed targets"), "{e}");
        let lt = FoldDownConfig {
            kind: FoldKind::LtRt,
            ..Default::default()
        };
        assert!(matches!(
            FoldDown::new(&l, &Layout::builtin("5.1").unwrap(), &lt, 48_000, 512),
            Err(DownmixError::KindNeedsStereo { .. })
        ));
        assert!(matches!(
            FoldDown::new(&l, &st, &lt, 48_000, 0),
            Err(DownmixError::BlockSize { .. })
        ));
    }
}
