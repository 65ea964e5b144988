//! Time series for the QC page: what the meters already running in a render saw, every
//! 100 ms (momentary and short-term loudness after ITU-R BS.1770-4 / EBU Tech 3341, true
//! peak), every correlation window, and every translation window per object, decimated
//! online so a long session stays small.
//!
//! Decimation keeps what a QC reader looks for: loudness and true peak keep the **maximum**
//! of each bucket, correlation its **minimum**, an object's level change its **largest
//! magnitude** (the worst moment survives), positions the **first** value. Values are
//! rounded to 0.01 (dB, LU, room units) when stored. A series of `n` base steps is split
//! into buckets of `ceil(n / max_points)` steps, so it never holds more than `max_points`.
//!
//! The series are written beside `report.json` as `timeline.json`, so that `halo report`
//! can rebuild the page without the audio.

use serde::{Deserialize, Serialize};

/// Most points an output's series (loudness, true peak, correlation) keeps.
pub const MAX_OUTPUT_POINTS: usize = 2000;
/// Most points an object's series (level changes, path) keeps.
pub const MAX_OBJECT_POINTS: usize = 600;
/// The loudness meter's polling period, seconds (one momentary / short-term value).
pub const LOUDNESS_STEP_S: f64 = 0.1;
/// File name of the time series beside `report.json`.
pub const TIMELINE_FILE: &str = "timeline.json";

/// How a bucket of base steps becomes one stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Max,
    Min,
    /// The value of largest magnitude (keeps its sign).
    Worst,
    /// The first value present.
    First,
}

/// Steps per bucket so that `steps` base steps give at most `max_points` points.
pub fn bucket_steps(steps: u64, max_points: usize) -> usize {
    (steps.div_ceil(max_points.max(1) as u64)).max(1) as usize
}

fn round2(v: f64) -> f32 {
    ((v * 100.0).round() / 100.0) as f32
}

/// An online decimating series. `None` (silence, an inaudible object) stays `None` unless
/// a bucket holds a value.
#[derive(Debug, Clone)]
pub struct Series {
    bucket: usize,
    reduce: Reduce,
    acc: Option<f64>,
    filled: usize,
    values: Vec<Option<f32>>,
}

impl Series {
    /// A series whose buckets hold `bucket` base steps.
    pub fn new(bucket: usize, reduce: Reduce) -> Self {
        Series {
            bucket: bucket.max(1),
            reduce,
            acc: None,
            filled: 0,
            values: Vec::new(),
        }
    }

    /// Base steps per stored point.
    pub fn bucket(&self) -> usize {
        self.bucket
    }

    /// Adds one base step; non-finite values count as `None`.
    pub fn push(&mut self, value: Option<f64>) {
        let v = value.filter(|v| v.is_finite());
        self.acc = match (self.acc, v) {
            (None, v) => v,
            (a, None) => a,
            (Some(a), Some(b)) => Some(match self.reduce {
                Reduce::Max => a.max(b),
                Reduce::Min => a.min(b),
                Reduce::Worst => {
                    if b.abs() > a.abs() {
                        b
                    } else {
                        a
                    }
                }
                Reduce::First => a,
            }),
        };
        self.filled += 1;
        if self.filled == self.bucket {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.values.push(self.acc.map(round2));
        self.acc = None;
        self.filled = 0;
    }

    /// The stored points (a partly filled last bucket included).
    pub fn finish(mut self) -> Vec<Option<f32>> {
        if self.filled > 0 {
            self.flush();
        }
        self.values
    }
}

/// What a loudness meter saw every 100 ms (see `Meter::keep_history`).
#[derive(Debug, Clone)]
pub struct LoudnessHistory {
    pub momentary: Series,
    pub short_term: Series,
    pub true_peak: Series,
}

impl LoudnessHistory {
    pub fn new(bucket: usize) -> Self {
        LoudnessHistory {
            momentary: Series::new(bucket, Reduce::Max),
            short_term: Series::new(bucket, Reduce::Max),
            true_peak: Series::new(bucket, Reduce::Max),
        }
    }
}

/// A speaker of a layout, for drawing it on the room plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    pub label: String,
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
    #[serde(default)]
    pub lfe: bool,
}

/// One output's series.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutputTimeline {
    /// The output's file name (as in `report.json`'s `outputs[].file`, without the folder).
    pub file: String,
    pub kind: String,
    pub layout: String,
    /// Seconds per point of the loudness and true-peak series.
    pub loudness_step_s: f64,
    /// Momentary loudness (400 ms), LUFS, the bucket's maximum; null when silent.
    pub momentary_lufs: Vec<Option<f32>>,
    /// Short-term loudness (3 s), LUFS, the bucket's maximum.
    pub short_term_lufs: Vec<Option<f32>>,
    /// Highest true peak of any channel in each bucket, dBTP.
    pub true_peak_dbtp: Vec<Option<f32>>,
    /// Seconds per point of the correlation series (two-channel outputs).
    #[serde(default)]
    pub correlation_step_s: f64,
    /// Correlation of the two channels per window, the bucket's minimum; null when silent.
    #[serde(default)]
    pub correlation: Vec<Option<f32>>,
    /// The layout's speakers (layout order) and each channel's RMS level over the whole
    /// output, dBFS.
    #[serde(default)]
    pub speakers: Vec<Speaker>,
    #[serde(default)]
    pub channel_rms_dbfs: Vec<Option<f32>>,
}

/// One object's path and translation series.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectTimeline {
    pub name: String,
    #[serde(default)]
    pub muted: bool,
    /// Seconds per point of every series below.
    pub step_s: f64,
    /// Room position (x −1 left … +1 right, y −1 back … +1 front, z 0 ear level … 1
    /// ceiling; polar positions mapped onto the room) and size, one point per step; one
    /// point only when the object never moves.
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub z: Vec<f32>,
    pub size: Vec<f32>,
    /// Level in the immersive render, dBFS (the bucket's maximum; null when inaudible).
    #[serde(default)]
    pub level_db: Vec<Option<f32>>,
    /// Level change in the stereo fold-down and on headphones against the immersive
    /// render, dB (the bucket's change of largest magnitude; null when inaudible).
    #[serde(default)]
    pub stereo_delta_db: Vec<Option<f32>>,
    #[serde(default)]
    pub binaural_delta_db: Vec<Option<f32>>,
}

/// Everything the page needs beyond `report.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// The halo version that rendered.
    pub halo_version: String,
    /// Render settings as (name, value), in the order to show them.
    #[serde(default)]
    pub settings: Vec<(String, String)>,
    /// The layout the translation report compares against, with its speakers.
    #[serde(default)]
    pub reference_layout: String,
    /// Speakers of the reference layout.
    #[serde(default)]
    pub reference_speakers: Vec<Speaker>,
    /// Series of each output.
    pub outputs: Vec<OutputTimeline>,
    /// Series of each object.
    pub objects: Vec<ObjectTimeline>,
}

impl Timeline {
    /// Compact JSON (one line: the series are long).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Stores a whole series of positions: one point when it never changes.
pub fn squeeze(values: Vec<f32>) -> Vec<f32> {
    match values.first() {
        Some(&first) if values.iter().all(|&v| v == first) => vec![first],
        _ => values,
    }
}

/// Where a direction sits on the page's room plan (room coordinates, as a Cartesian
/// object's). A schematic projection for drawing, not the renderer's mapping: ear-level
/// directions land on the walls (the horizontal direction pushed out to the square),
/// upper ones move inwards and up with elevation (45° and above: on the ceiling),
/// lower ones outwards and down; `distance` scales the whole point.
pub fn polar_to_room(azimuth_deg: f64, elevation_deg: f64, distance: f64) -> [f64; 3] {
    let az = azimuth_deg.to_radians();
    let (hx, hy) = (-az.sin(), az.cos());
    let r = hx.abs().max(hy.abs()).max(1e-12);
    let el = elevation_deg.clamp(-90.0, 90.0);
    let inset = 1.0 - (el.abs() / 90.0).powf(1.5) * 0.999;
    let z = (el / 45.0).clamp(-1.0, 1.0);
    let d = distance.clamp(0.0, 1.0);
    [hx / r * inset * d, hy / r * inset * d, z * d]
}

/// Rounds a position coordinate for storage.
pub fn round_coord(v: f64) -> f32 {
    round2(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_the_points() {
        assert_eq!(bucket_steps(200, 2000), 1);
        assert_eq!(bucket_steps(2000, 2000), 1);
        assert_eq!(bucket_steps(2001, 2000), 2);
        assert_eq!(bucket_steps(72_000, 2000), 36);
        assert_eq!(bucket_steps(0, 2000), 1);
    }

    #[test]
    fn reductions_keep_what_qc_looks_for() {
        let input = [
            Some(-30.0),
            None,
            Some(-20.0),
            Some(f64::NEG_INFINITY),
            None,
            None,
            Some(5.0),
        ];
        let run = |reduce| {
            let mut s = Series::new(3, reduce);
            for v in input {
                s.push(v);
            }
            s.finish()
        };
        assert_eq!(run(Reduce::Max), [Some(-20.0), None, Some(5.0)]);
        assert_eq!(run(Reduce::Min), [Some(-30.0), None, Some(5.0)]);
        assert_eq!(run(Reduce::Worst), [Some(-30.0), None, Some(5.0)]);
        assert_eq!(run(Reduce::First), [Some(-30.0), None, Some(5.0)]);
        let mut s = Series::new(1, Reduce::Max);
        s.push(Some(-23.456));
        assert_eq!(s.finish(), [Some(-23.46)]);
        assert_eq!(squeeze(vec![0.5, 0.5]), [0.5]);
        assert_eq!(squeeze(vec![0.5, 0.25]), [0.5, 0.25]);
    }

    #[test]
    fn room_plan_projection() {
        let near = |a: [f64; 3], b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
        // Front centre, left side (azimuth positive left), front-left corner, back.
        assert!(near(polar_to_room(0.0, 0.0, 1.0), [0.0, 1.0, 0.0]));
        assert!(near(polar_to_room(90.0, 0.0, 1.0), [-1.0, 0.0, 0.0]));
        assert!(near(polar_to_room(45.0, 0.0, 1.0), [-1.0, 1.0, 0.0]));
        assert!(near(polar_to_room(180.0, 0.0, 1.0), [0.0, -1.0, 0.0]));
        // Left/right mirror, the zenith at the centre of the ceiling.
        let (l, r) = (
            polar_to_room(30.0, 30.0, 1.0),
            polar_to_room(-30.0, 30.0, 1.0),
        );
        assert!(near(l, [-r[0], r[1], r[2]]) && l[2] > 0.6 && l[1] < 1.0);
        let top = polar_to_room(0.0, 90.0, 1.0);
        assert!(top[0].abs() < 0.01 && top[1].abs() < 0.01 && (top[2] - 1.0).abs() < 1e-9);
    }
}
