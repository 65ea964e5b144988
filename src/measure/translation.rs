//! The translation report: what the stereo fold-down and the headphone version change
//! against the immersive mix — per object (from its panning gains and the fold-down
//! matrix, without rendering objects one by one), per bed (its own fold-down, for
//! cancellation in the mono sum), and per output (height and rear energy, stereo
//! correlation over time, mono loss).
//!
//! Everything here is analysis on blocks of samples and gain vectors; nothing is
//! rendered and no file is touched.

use crate::measure::timeline::{Reduce, Series};
use serde::Serialize;

/// Analysis window for per-object levels, seconds.
pub const WINDOW_S: f64 = 0.1;
/// Window for the stereo correlation meter, seconds.
pub const CORRELATION_WINDOW_S: f64 = 0.4;
/// Default threshold for flagging an object's change between outputs, dB.
pub const DEFAULT_THRESHOLD_DB: f64 = 3.0;
/// Windows where an object is quieter than this (dBFS, mean square) are not judged.
pub const AUDIBLE_DBFS: f64 = -70.0;

fn db(power: f64) -> f64 {
    if power > 0.0 {
        10.0 * power.log10()
    } else {
        f64::NEG_INFINITY
    }
}

/// A stretch of time where an object's level in an output differs from the immersive mix.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Range {
    pub start_s: f64,
    pub end_s: f64,
    /// The largest change inside the range (output − immersive), dB.
    pub worst_delta_db: f64,
}

/// One object's levels: energy-weighted over the windows where it is audible.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectTranslation {
    pub name: String,
    /// Mean level in the immersive render, dBFS (mean square of the object's feeds).
    pub immersive_db: Option<f64>,
    pub stereo_db: Option<f64>,
    pub binaural_db: Option<f64>,
    pub stereo_delta_db: Option<f64>,
    pub binaural_delta_db: Option<f64>,
    /// Where the stereo level differs by more than the threshold.
    pub stereo_ranges: Vec<Range>,
    pub binaural_ranges: Vec<Range>,
    /// Mono (Lo+Ro) sum relative to the stereo power, dB: about +3 for a centred
    /// object, −∞ for one that cancels.
    pub mono_db: Option<f64>,
    pub flags: Vec<String>,
}

/// Accumulates one object's levels window by window.
#[derive(Debug, Clone)]
pub struct ObjectTracker {
    name: String,
    immersive: f64,
    stereo: f64,
    binaural: f64,
    mono: f64,
    stereo_ranges: Vec<Range>,
    binaural_ranges: Vec<Range>,
    has_stereo: bool,
    has_binaural: bool,
    /// Per-window series for the QC page (off unless [`ObjectTracker::keep_history`]).
    history: Option<ObjectHistory>,
}

/// An object's level and level changes window by window (see [`crate::measure::timeline`]).
#[derive(Debug, Clone)]
pub struct ObjectHistory {
    /// Level in the immersive render, dBFS.
    pub level_db: Series,
    /// Stereo and binaural level minus immersive, dB.
    pub stereo_delta_db: Series,
    pub binaural_delta_db: Series,
}

/// One window's worth of an object: its source power and what each output does with it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectWindow {
    pub start_s: f64,
    pub end_s: f64,
    /// Mean square of the object's signal after its gain.
    pub power: f64,
    /// Σ g² over the immersive layout's channels.
    pub immersive_gain: f64,
    /// |Lo|² + |Ro|² (complex for Lt/Rt), when there is a stereo output.
    pub stereo_gain: Option<f64>,
    /// |Lo + Ro|², with the stereo gain.
    pub mono_gain: Option<f64>,
    /// Ear energy relative to a frontal source, when there is a binaural output.
    pub binaural_gain: Option<f64>,
}

fn extend(ranges: &mut Vec<Range>, start_s: f64, end_s: f64, delta_db: f64) {
    if let Some(last) = ranges.last_mut()
        && (last.end_s - start_s).abs() < 1e-9
        && last.worst_delta_db.signum() == delta_db.signum()
    {
        last.end_s = end_s;
        if delta_db.abs() > last.worst_delta_db.abs() {
            last.worst_delta_db = delta_db;
        }
        return;
    }
    ranges.push(Range {
        start_s,
        end_s,
        worst_delta_db: delta_db,
    });
}

impl ObjectTracker {
    pub fn new(name: &str, has_stereo: bool, has_binaural: bool) -> Self {
        ObjectTracker {
            name: name.to_string(),
            immersive: 0.0,
            stereo: 0.0,
            binaural: 0.0,
            mono: 0.0,
            stereo_ranges: Vec::new(),
            binaural_ranges: Vec::new(),
            has_stereo,
            has_binaural,
            history: None,
        }
    }

    /// Keeps the per-window level and level changes, `bucket` windows to a stored point.
    pub fn keep_history(&mut self, bucket: usize) {
        self.history = Some(ObjectHistory {
            level_db: Series::new(bucket, Reduce::Max),
            stereo_delta_db: Series::new(bucket, Reduce::Worst),
            binaural_delta_db: Series::new(bucket, Reduce::Worst),
        });
    }

    /// The series kept since [`ObjectTracker::keep_history`].
    pub fn take_history(&mut self) -> Option<ObjectHistory> {
        self.history.take()
    }

    pub fn add(&mut self, w: &ObjectWindow, threshold_db: f64) {
        let immersive = w.power * w.immersive_gain;
        let audible = db(immersive) >= AUDIBLE_DBFS;
        if let Some(h) = self.history.as_mut() {
            let delta = |g: Option<f64>| {
                g.filter(|_| audible)
                    .map(|g| (db(g) - db(w.immersive_gain)).max(-200.0))
            };
            h.level_db.push(audible.then(|| db(immersive)));
            h.stereo_delta_db.push(delta(w.stereo_gain));
            h.binaural_delta_db.push(delta(w.binaural_gain));
        }
        if !audible {
            return;
        }
        self.immersive += immersive;
        if let Some(s) = w.stereo_gain {
            self.stereo += w.power * s;
            self.mono += w.power * w.mono_gain.unwrap_or(0.0);
            let delta = db(s) - db(w.immersive_gain);
            if delta.abs() > threshold_db {
                extend(
                    &mut self.stereo_ranges,
                    w.start_s,
                    w.end_s,
                    delta.max(-200.0),
                );
            }
        }
        if let Some(b) = w.binaural_gain {
            self.binaural += w.power * b;
            let delta = db(b) - db(w.immersive_gain);
            if delta.abs() > threshold_db {
                extend(
                    &mut self.binaural_ranges,
                    w.start_s,
                    w.end_s,
                    delta.max(-200.0),
                );
            }
        }
    }

    pub fn finish(self, windows: usize) -> ObjectTranslation {
        let n = windows.max(1) as f64;
        let level = |p: f64| (p > 0.0).then(|| db(p / n));
        let immersive_db = level(self.immersive);
        let stereo_db = if self.has_stereo {
            level(self.stereo)
        } else {
            None
        };
        let binaural_db = if self.has_binaural {
            level(self.binaural)
        } else {
            None
        };
        let delta = |x: Option<f64>| match (x, immersive_db) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let stereo_delta_db = delta(stereo_db);
        let binaural_delta_db = delta(binaural_db);
        let mono_db = (self.has_stereo && self.stereo > 0.0).then(|| db(self.mono / self.stereo));
        let mut flags = Vec::new();
        if !self.stereo_ranges.is_empty() {
            let worst = self
                .stereo_ranges
                .iter()
                .map(|r| r.worst_delta_db)
                .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            flags.push(format!(
                "{} {:.1} dB in the stereo fold-down ({} time range{})",
                if worst < 0.0 { "loses" } else { "gains" },
                worst.abs(),
                self.stereo_ranges.len(),
                if self.stereo_ranges.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        if let Some(m) = mono_db
            && m < -6.0
        {
            flags.push(format!(
                "cancels in the mono sum (L+R {m:.1} dB against L/R)"
            ));
        }
        if !self.binaural_ranges.is_empty() {
            flags.push(format!(
                "changes by more than the threshold on headphones ({} time range{})",
                self.binaural_ranges.len(),
                if self.binaural_ranges.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        ObjectTranslation {
            name: self.name,
            immersive_db,
            stereo_db,
            binaural_db,
            stereo_delta_db,
            binaural_delta_db,
            stereo_ranges: self.stereo_ranges,
            binaural_ranges: self.binaural_ranges,
            mono_db,
            flags,
        }
    }
}

/// Per-object stereo gains from its immersive gains and the fold-down: in-phase matrix
/// `m` (2 × N) and, for Lt/Rt, the quadrature matrix `q` (the part shifted by 90°).
/// Returns (|Lo|² + |Ro|², |Lo + Ro|²).
pub fn fold_gains(gains: &[f64], m: &[Vec<f64>], q: Option<&[Vec<f64>]>) -> (f64, f64) {
    let mut re = [0.0f64; 2];
    let mut im = [0.0f64; 2];
    for o in 0..2 {
        re[o] = m[o].iter().zip(gains).map(|(a, g)| a * g).sum();
        if let Some(q) = q {
            im[o] = q[o].iter().zip(gains).map(|(a, g)| a * g).sum();
        }
    }
    let stereo = re[0] * re[0] + im[0] * im[0] + re[1] * re[1] + im[1] * im[1];
    let mono = (re[0] + re[1]).powi(2) + (im[0] + im[1]).powi(2);
    (stereo, mono)
}

/// A bed's own fold-down, measured on its signal: does it lose level or cancel in mono?
#[derive(Debug, Clone, Serialize)]
pub struct BedTranslation {
    pub name: String,
    pub immersive_db: Option<f64>,
    pub stereo_db: Option<f64>,
    pub stereo_delta_db: Option<f64>,
    /// (Lo+Ro)² against Lo² + Ro², dB: 0 for uncorrelated, +3 identical, −∞ opposite.
    pub mono_db: Option<f64>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct BedTracker {
    name: String,
    /// In-phase fold matrix of the bed's layout to 2.0 (2 × channels).
    matrix: Vec<Vec<f64>>,
    /// Non-LFE channels.
    counted: Vec<bool>,
    immersive: f64,
    stereo: f64,
    mono: f64,
}

impl BedTracker {
    pub fn new(name: &str, matrix: Vec<Vec<f64>>, counted: Vec<bool>) -> Self {
        BedTracker {
            name: name.to_string(),
            matrix,
            counted,
            immersive: 0.0,
            stereo: 0.0,
            mono: 0.0,
        }
    }

    /// Adds a block of the bed (planar, after its gain).
    pub fn add(&mut self, channels: &[&[f32]], gain: f64) {
        let frames = channels.first().map_or(0, |c| c.len());
        for f in 0..frames {
            let mut lo = 0.0;
            let mut ro = 0.0;
            for (c, ch) in channels.iter().enumerate() {
                let x = ch[f] as f64 * gain;
                if self.counted[c] {
                    self.immersive += x * x;
                }
                lo += self.matrix[0][c] * x;
                ro += self.matrix[1][c] * x;
            }
            self.stereo += lo * lo + ro * ro;
            self.mono += (lo + ro) * (lo + ro);
        }
    }

    pub fn finish(self, frames: u64, threshold_db: f64) -> BedTranslation {
        let n = frames.max(1) as f64;
        let level = |p: f64| (p > 0.0).then(|| db(p / n));
        let immersive_db = level(self.immersive);
        let stereo_db = level(self.stereo);
        let stereo_delta_db = match (stereo_db, immersive_db) {
            (Some(s), Some(i)) => Some(s - i),
            _ => None,
        };
        let mono_db = (self.stereo > 0.0).then(|| db(self.mono / self.stereo));
        let mut flags = Vec::new();
        if let Some(d) = stereo_delta_db
            && d < -threshold_db
        {
            flags.push(format!("loses {:.1} dB in the stereo fold-down", -d));
        }
        if let Some(m) = mono_db
            && m < -6.0
        {
            flags.push(format!(
                "cancels: its stereo fold-down sums to {} in mono (L+R against L/R)",
                if m.is_finite() {
                    format!("{m:.1} dB")
                } else {
                    "silence".into()
                }
            ));
        }
        BedTranslation {
            name: self.name,
            immersive_db,
            stereo_db,
            stereo_delta_db,
            mono_db,
            flags,
        }
    }
}

/// Stereo image statistics of a two-channel output.
#[derive(Debug, Clone, Serialize)]
pub struct StereoImage {
    /// Lowest windowed correlation (−1 … 1); None when the output is silent.
    pub min_correlation: Option<f64>,
    /// Share of (non-silent) time with negative correlation, 0 … 1.
    pub share_negative: f64,
    /// Mono sum (L+R)/2 against the mean of L and R, dB: 0 for identical channels,
    /// −3 for uncorrelated, −∞ for opposite.
    pub mono_loss_db: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct StereoMeter {
    window: usize,
    fill: usize,
    lr: f64,
    ll: f64,
    rr: f64,
    min: Option<f64>,
    windows: usize,
    negative: usize,
    sum_lr: f64,
    sum_ll: f64,
    sum_rr: f64,
    /// Correlation per window for the QC page (off unless [`StereoMeter::keep_history`]).
    history: Option<Series>,
}

impl StereoMeter {
    /// Keeps the correlation of every window (`None` when silent), `bucket` windows to a
    /// stored point, the lowest of them.
    pub fn keep_history(&mut self, bucket: usize) {
        self.history = Some(Series::new(bucket, Reduce::Min));
    }

    /// Like [`StereoMeter::finish`], with the correlation series if one was kept.
    pub fn finish_with_history(mut self) -> (StereoImage, Option<Vec<Option<f32>>>) {
        if self.fill > 0 {
            self.close_window();
        }
        let history = self.history.take().map(Series::finish);
        (self.finish(), history)
    }

    pub fn new(sample_rate: u32) -> Self {
        StereoMeter {
            window: ((CORRELATION_WINDOW_S * sample_rate as f64) as usize).max(1),
            fill: 0,
            lr: 0.0,
            ll: 0.0,
            rr: 0.0,
            min: None,
            windows: 0,
            negative: 0,
            sum_lr: 0.0,
            sum_ll: 0.0,
            sum_rr: 0.0,
            history: None,
        }
    }

    pub fn add(&mut self, left: &[f32], right: &[f32]) {
        for (&l, &r) in left.iter().zip(right) {
            let (l, r) = (l as f64, r as f64);
            self.lr += l * r;
            self.ll += l * l;
            self.rr += r * r;
            self.fill += 1;
            if self.fill == self.window {
                self.close_window();
            }
        }
    }

    fn close_window(&mut self) {
        let denom = (self.ll * self.rr).sqrt();
        // Windows below −70 dBFS in both channels are silence, not an image.
        let floor = self.window as f64 * 1e-7;
        let heard = denom > 0.0 && (self.ll > floor || self.rr > floor);
        if let Some(h) = self.history.as_mut() {
            h.push(heard.then(|| self.lr / denom));
        }
        if heard {
            let c = self.lr / denom;
            self.min = Some(self.min.map_or(c, |m: f64| m.min(c)));
            self.windows += 1;
            if c < 0.0 {
                self.negative += 1;
            }
        }
        self.sum_lr += self.lr;
        self.sum_ll += self.ll;
        self.sum_rr += self.rr;
        self.lr = 0.0;
        self.ll = 0.0;
        self.rr = 0.0;
        self.fill = 0;
    }

    pub fn finish(mut self) -> StereoImage {
        if self.fill > 0 {
            self.close_window();
        }
        let mean = (self.sum_ll + self.sum_rr) / 2.0;
        let mono = (self.sum_ll + self.sum_rr + 2.0 * self.sum_lr) / 4.0;
        StereoImage {
            min_correlation: self.min,
            share_negative: if self.windows == 0 {
                0.0
            } else {
                self.negative as f64 / self.windows as f64
            },
            mono_loss_db: (mean > 0.0).then(|| db(mono / mean)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_of_known_signals() {
        let s: Vec<f32> = (0..48000).map(|i| (i as f32 * 0.05).sin()).collect();
        let neg: Vec<f32> = s.iter().map(|x| -x).collect();
        let mut m = StereoMeter::new(48000);
        m.add(&s, &s);
        let same = m.finish();
        assert!((same.min_correlation.unwrap() - 1.0).abs() < 1e-9);
        assert!(same.mono_loss_db.unwrap().abs() < 1e-9);
        let mut m = StereoMeter::new(48000);
        m.add(&s, &neg);
        let opp = m.finish();
        assert!((opp.min_correlation.unwrap() + 1.0).abs() < 1e-9);
        assert_eq!(opp.share_negative, 1.0);
        assert_eq!(opp.mono_loss_db, Some(f64::NEG_INFINITY));
    }

    #[test]
    fn fold_gains_of_a_centre_and_a_quadrature_pair() {
        let m = vec![vec![0.0, 0.5f64.sqrt()], vec![0.0, 0.5f64.sqrt()]];
        let (stereo, mono) = fold_gains(&[0.0, 1.0], &m, None);
        assert!((stereo - 1.0).abs() < 1e-12 && (mono - 2.0).abs() < 1e-12);
        // A signal arriving at +j in one output and −j in the other cancels in mono.
        let zero = vec![vec![0.0], vec![0.0]];
        let q = vec![vec![-1.0], vec![1.0]];
        let (stereo, mono) = fold_gains(&[1.0], &zero, Some(&q));
        assert!((stereo - 2.0).abs() < 1e-12 && mono.abs() < 1e-12);
    }

    #[test]
    fn ranges_merge_and_keep_the_worst() {
        let mut t = ObjectTracker::new("o", true, false);
        for k in 0..5 {
            t.add(
                &ObjectWindow {
                    start_s: k as f64 * 0.1,
                    end_s: (k + 1) as f64 * 0.1,
                    power: 0.01,
                    immersive_gain: 1.0,
                    stereo_gain: Some(if k == 2 { 0.05 } else { 0.1 }),
                    mono_gain: Some(0.2),
                    binaural_gain: None,
                },
                3.0,
            );
        }
        let r = t.finish(5);
        assert_eq!(r.stereo_ranges.len(), 1);
        assert!((r.stereo_ranges[0].end_s - 0.5).abs() < 1e-9);
        assert!((r.stereo_ranges[0].worst_delta_db + 13.01).abs() < 0.01);
        assert!(r.flags[0].starts_with("loses"));
    }
}
