//! Binaural rendering by measured HRTFs: AES69 SOFA `SimpleFreeFieldHRIR` sets, interpolation
//! between measured directions, and a multi-source uniformly partitioned FFT convolver with
//! click-free filter crossfades.
//!
//! # HRTF sets
//!
//! A set is read from SOFA bytes (AES69-2022, convention `SimpleFreeFieldHRIR`) with the
//! `sofar` crate, which also resamples it once, at load, to the session rate (and scales it
//! so the frontal pair has unit energy, libmysofa's normalisation). At load the set is then:
//!
//! * **trimmed**: the leading silence shared by *all* measurements (the KEMAR set has 1.4 m
//!   of air, ≈ 4 ms) is removed — relative delays between directions and ears (the ITDs)
//!   are kept — and so is the common tail below −80 dB of the set's peak;
//! * **triangulated**: the measured directions (SOFA: azimuth positive to the left, like
//!   [`Direction`]) are meshed by their convex hull. A direction is rendered with the
//!   barycentric (VBAP-like, normalised to sum 1) weights of the hull triangle it falls in,
//!   so the filter changes continuously as a source moves. Directions outside the set's
//!   elevation range are **clamped** to it first: the default KEMAR set has nothing below
//!   −40°, so a source at −60° sounds like one at −40° (the lowest ring).
//!
//! The interpolated pair is the weighted sum of the measured (trimmed) impulse responses;
//! [`HrtfSet::hrir`] returns exactly the pair the renderer uses. (Interpolation is linear in
//! time, without separate ITD alignment: adjacent KEMAR directions are ≤ 10° apart, so the
//! comb filtering of blending slightly offset onsets stays mild.)
//!
//! # Renderer
//!
//! [`BinauralRenderer`] runs a uniformly partitioned overlap-save convolution with
//! partitions of `B = partition_frames` frames (FFT size `2B`; when the HRIRs fit one
//! partition, as in [`BinauralConfig::offline`], the shortest fast size that holds the
//! partition and the filter, e.g. 1728 instead of 2048 points for the KEMAR set in
//! 1024-frame partitions: 16 % fewer bins, the same convolution to float rounding; the
//! room's early reflections then have `2B`-point spectra and an inverse FFT of their own):
//!
//! * at construction, the spectra of every measured HRIR partition are computed once, so an
//!   interpolated filter is a weighted sum of precomputed spectra (exact by linearity; no FFT
//!   of filters while rendering). A new filter is interpolated on the fly inside the
//!   multiply-accumulate pass and stored as it goes (each bin after the old filter's bin
//!   was read), so the crossfade of the next change reads its old filter instead of
//!   interpolating it again, and a source that stands still reuses it. The passes run in
//!   an AVX + FMA build when the CPU has both (fused multiply-adds: the same sums within
//!   float rounding, more than 100 dB below the signal), else in an AVX build (same
//!   arithmetic as the portable build, identical results), detected at run time;
//! * one forward FFT per audible source and partition (a complex FFT of `B` points of
//!   the samples taken in pairs, split into the real spectrum straight into the split
//!   layout, bit-identical to `realfft`'s); spectra are accumulated per ear across
//!   sources and inverse-transformed once per ear and partition;
//! * when a source's filter changes, the old and new filter outputs are crossfaded over one
//!   partition (`B` frames, a raised-cosine window) — independent of the caller's block
//!   size. All sources changing in a partition share one extra inverse FFT per ear: their
//!   `old − new` spectra are summed separately and that sum is faded out with one window;
//! * static sources cost no crossfade; a change smaller than `min_update_deg` is ignored
//!   (the filter follows once the accumulated move exceeds it); silent or inactive sources
//!   cost neither FFT nor multiplications once their history has drained.
//!
//! **Timing.** Input frame `n` reaches the output at frame `n + latency()` (`latency() = B`).
//! A parameter set with [`BinauralRenderer::set_direction`], [`BinauralRenderer::set_bypass`]
//! or [`BinauralRenderer::set_active`] after `n` input frames have been processed applies
//! from the first partition starting at or after input frame `n` (partitions start at
//! multiples of `B`); the latest value set before a partition starts wins. Output is
//! therefore identical whatever block sizes the caller uses, given the same calls at the
//! same input frame positions.

use std::f64::consts::PI;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::dsp::has_avx;
use crate::scene::geometry::{Direction, cross, dot, norm};

pub mod near_field;
pub mod room;

pub use room::Distance;
use room::{Room, Sends};

/// The default HRTF set: MIT KEMAR, normal pinna (Gardner & Martin 1994), see `hrtf/README.md`.
const DEFAULT_SOFA: &[u8] = include_bytes!("../../../hrtf/MIT_KEMAR_normal_pinna.sofa");
/// Name of the default set, used as its origin in errors.
pub const DEFAULT_SET_NAME: &str = "MIT_KEMAR_normal_pinna.sofa";

/// The leading silence removed at load ends where the first sample of any measurement
/// reaches this fraction of the set's peak (−60 dB) …
const ONSET_THRESHOLD: f32 = 1e-3;
/// … minus this many frames of margin.
const ONSET_MARGIN_FRAMES: usize = 2;
/// The tail removed at load starts after the last sample of any measurement above this
/// fraction of the set's peak (−80 dB).
const TAIL_THRESHOLD: f32 = 1e-4;
/// With one partition ([`fft_frames`]), the near-field bank's filters are kept up to the
/// last sample above this fraction of the set's peak (−120 dB): the shelves' decaying
/// tails below it change a `Near` source by less than float rounding does.
const NEAR_TAIL_THRESHOLD: f32 = 1e-6;
/// After [`BinauralRenderer::restart`], the input is faded in over this long (raised
/// cosine), so that the history the renderer lacks does not turn into an onset click.
pub const RESTART_FADE_S: f64 = 0.01;
/// Grid cell size (degrees) of the triangle lookup table.
const GRID_DEG: f64 = 4.0;
/// Barycentric tolerance when testing whether a direction lies in a triangle.
const INSIDE_EPS: f64 = 1e-9;
/// A direction whose barycentric weights are all at least this, but one within
/// [`INSIDE_EPS`] of 0, lies on an edge of the triangle away from its ends: in that
/// triangle and its neighbour across the edge only (the hinted lookup decides between the
/// two as the grid does).
const EDGE_MARGIN: f64 = 1e-6;
/// Triangles a hinted lookup visits (the hint and its neighbours across edges) before it
/// falls back to the grid.
const WALK_STEPS: usize = 4;

/// Errors of HRTF loading and renderer configuration.
#[derive(Debug, thiserror::Error)]
pub enum BinauralError {
    #[error(
        "{origin}: not a SOFA file ({reason}); expected an AES69 SOFA file (HDF5 with Conventions = \"SOFA\")"
    )]
    NotSofa { origin: String, reason: String },
    #[error(
        "{origin}: corrupt or truncated SOFA file ({reason}); expected a complete AES69 SOFA file"
    )]
    Corrupt { origin: String, reason: String },
    #[error(
        "{origin}: SOFA convention \"{found}\" is not supported; allowed: SimpleFreeFieldHRIR (data type FIR)"
    )]
    WrongConvention { origin: String, found: String },
    #[error(
        "{origin}: empty HRIR set ({measurements} measurements of {taps} taps{detail}); need at least 1 measurement with at least 1 non-zero tap"
    )]
    EmptySet {
        origin: String,
        measurements: usize,
        taps: usize,
        detail: String,
    },
    #[error(
        "{origin}: {receivers} receivers; a binaural HRIR set needs exactly 2 (left and right ear)"
    )]
    NotTwoReceivers { origin: String, receivers: usize },
    /// A value the file declares is outside what halo accepts (checked before anything
    /// is sized or resampled from it).
    #[error("{origin}: {what}; allowed: {allowed}")]
    OutOfBounds {
        origin: String,
        what: String,
        allowed: &'static str,
    },
    #[error("binaural config: {field} = {value} is not allowed; allowed: {allowed}")]
    BadConfig {
        field: &'static str,
        value: String,
        allowed: String,
    },
}

// ---------------------------------------------------------------------------------------
// HRTF set
// ---------------------------------------------------------------------------------------

/// A measured HRIR set, resampled once at load to the session rate and trimmed.
#[derive(Debug, Clone)]
pub struct HrtfSet {
    name: String,
    sample_rate: u32,
    taps: usize,
    /// Measured directions, as [`Direction`]s.
    directions: Vec<Direction>,
    /// Impulse responses: measurement-major, then ear (0 = left, 1 = right), then taps.
    irs: Vec<f32>,
    /// Frames of common leading silence removed at load.
    /// Read only by test support (`HrtfSet::trimmed_onset_frames`).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    trimmed_onset_frames: usize,
    /// Taps of the near-field bank's filters (see [`HrtfSet::near_field_taps`]).
    near_taps: usize,
    mesh: Mesh,
}

/// Interpolation weights of up to three measured directions (unused slots have weight 0).
pub type Weights = [(usize, f32); 3];

impl HrtfSet {
    /// Reads a SOFA `SimpleFreeFieldHRIR` set from memory, resampled to `sample_rate`.
    /// `origin` (a file name) is only used in error messages and as the set's name.
    pub fn from_sofa_bytes(
        bytes: &[u8],
        origin: &str,
        sample_rate: u32,
    ) -> Result<HrtfSet, BinauralError> {
        HrtfSet::load(bytes, origin, sample_rate, false)
    }

    /// [`HrtfSet::from_sofa_bytes`]; `trusted` (the embedded set) skips the checks of
    /// the stored set that an untrusted file gets before it is resampled.
    fn load(
        bytes: &[u8],
        origin: &str,
        sample_rate: u32,
        trusted: bool,
    ) -> Result<HrtfSet, BinauralError> {
        if !(8_000..=384_000).contains(&sample_rate) {
            return Err(BinauralError::BadConfig {
                field: "sample_rate",
                value: sample_rate.to_string(),
                allowed: "8000 … 384000 Hz".into(),
            });
        }
        if !has_hdf5_signature(bytes) {
            return Err(BinauralError::NotSofa {
                origin: origin.into(),
                reason: format!("no HDF5 signature in {} bytes", bytes.len()),
            });
        }
        if !trusted {
            check_stored(bytes, origin)?;
        }
        // sofar's HDF5 parser works on untrusted bytes; should it panic on a corrupt file,
        // the panic is caught here, at the load boundary, and reported as corruption.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            sofar::reader::OpenOptions::new()
                .sample_rate(sample_rate as f32)
                .normalized(true)
                .open_data(bytes)
        }));
        let sofa = match opened {
            Err(_) => {
                return Err(BinauralError::Corrupt {
                    origin: origin.into(),
                    reason: "the SOFA parser failed on its content".into(),
                });
            }
            Ok(Err(e)) => {
                let reason = e.to_string();
                return Err(if reason.contains("Conventions") {
                    BinauralError::NotSofa {
                        origin: origin.into(),
                        reason: "an HDF5 file without the attribute Conventions = \"SOFA\"".into(),
                    }
                } else {
                    BinauralError::Corrupt {
                        origin: origin.into(),
                        reason,
                    }
                });
            }
            Ok(Ok(s)) => s,
        };
        let h = sofa.hrtf();
        let convention = h.get_attribute("SOFAConventions").unwrap_or("(none)");
        let data_type = h.get_attribute("DataType").unwrap_or("FIR");
        check_layout(
            origin,
            convention,
            data_type,
            h.m() as usize,
            h.r() as usize,
            h.n() as usize,
            h.data_ir.values.len(),
            h.source_position.values.len(),
        )?;
        let m = h.m() as usize;
        let n = h.n() as usize;
        // Per-filter delays (Data.Delay, in samples, I×R or M×R), applied as whole samples.
        let delays = &h.data_delay.values;
        let delay_of = |meas: usize, ear: usize| -> usize {
            let d = if delays.len() >= m * 2 {
                delays[meas * 2 + ear]
            } else if delays.len() >= 2 {
                delays[ear]
            } else {
                0.0
            };
            if d.is_finite() && d > 0.0 {
                (d.round() as usize).min(4 * n)
            } else {
                0
            }
        };
        let mut max_delay = 0;
        for meas in 0..m {
            for ear in 0..2 {
                max_delay = max_delay.max(delay_of(meas, ear));
            }
        }
        let full = n + max_delay;
        let mut raw = vec![0.0f32; m * 2 * full];
        let mut directions = Vec::with_capacity(m);
        for meas in 0..m {
            let p = &h.source_position.values[meas * 3..meas * 3 + 3];
            // sofar gives Cartesian SOFA axes: x front, y left, z up.
            let v = [-(p[1] as f64), p[0] as f64, p[2] as f64];
            let length = norm(v);
            if length.is_nan() || length <= 0.0 {
                return Err(BinauralError::Corrupt {
                    origin: origin.into(),
                    reason: if length.is_nan() {
                        format!("measurement {meas} has a NaN source position")
                    } else {
                        format!("measurement {meas} has its source at the listener")
                    },
                });
            }
            directions.push(Direction::from_vector(v));
            for ear in 0..2 {
                let src = &h.data_ir.values[(meas * 2 + ear) * n..(meas * 2 + ear + 1) * n];
                let d = delay_of(meas, ear);
                let dst = &mut raw[(meas * 2 + ear) * full..(meas * 2 + ear + 1) * full];
                for (o, &s) in dst[d..d + n].iter_mut().zip(src) {
                    *o = if s.is_finite() { s } else { 0.0 };
                }
            }
        }
        let peak = raw.iter().fold(0.0f32, |a, &s| a.max(s.abs()));
        if peak <= 0.0 {
            return Err(BinauralError::EmptySet {
                origin: origin.into(),
                measurements: m,
                taps: n,
                detail: ", all silent".into(),
            });
        }
        let mut onset = full;
        let mut end = 0;
        for ir in raw.chunks_exact(full) {
            if let Some(i) = ir.iter().position(|s| s.abs() >= peak * ONSET_THRESHOLD) {
                onset = onset.min(i);
            }
            if let Some(i) = ir.iter().rposition(|s| s.abs() >= peak * TAIL_THRESHOLD) {
                end = end.max(i + 1);
            }
        }
        let cut = onset
            .min(end.saturating_sub(1))
            .saturating_sub(ONSET_MARGIN_FRAMES);
        let taps = end - cut;
        let mut irs = Vec::with_capacity(m * 2 * taps);
        for ir in raw.chunks_exact(full) {
            irs.extend_from_slice(&ir[cut..end]);
        }
        let near_taps = near_field_taps(&irs, &directions, taps, sample_rate, peak);
        let mesh = Mesh::new(&directions);
        Ok(HrtfSet {
            name: origin.to_string(),
            sample_rate,
            taps,
            directions,
            irs,
            trimmed_onset_frames: cut,
            near_taps,
            mesh,
        })
    }

    /// The embedded default set (MIT KEMAR, normal pinna), resampled to `sample_rate`.
    pub fn default_set(sample_rate: u32) -> Result<HrtfSet, BinauralError> {
        HrtfSet::load(DEFAULT_SOFA, DEFAULT_SET_NAME, sample_rate, true)
    }

    /// Length of every (trimmed) impulse response, in frames.
    pub fn len_taps(&self) -> usize {
        self.taps
    }

    /// Length of the near-field bank's filters (each measured response through its ear's
    /// near-field shelves, for `Near` sources), in frames: up to the last sample of any of
    /// them at or above [`NEAR_TAIL_THRESHOLD`] of the set's peak, at least
    /// [`HrtfSet::len_taps`] and at most twice that. The shelves' tails make it the longer
    /// (637 frames against 546 for KEMAR at 48 kHz).
    pub fn near_field_taps(&self) -> usize {
        self.near_taps
    }

    /// Number of measured directions.
    pub fn num_directions(&self) -> usize {
        self.directions.len()
    }

    /// The set's name (the origin given at load).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rate the set was resampled to.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Frames of leading silence common to all measurements removed at load.
    /// Test support (halo's binaural tests).
    #[cfg(feature = "internals")]
    pub fn trimmed_onset_frames(&self) -> usize {
        self.trimmed_onset_frames
    }

    /// The `i`-th measured direction (straight ahead if out of range).
    pub fn measured_direction(&self, i: usize) -> Direction {
        self.directions
            .get(i)
            .copied()
            .unwrap_or(Direction::new(0.0, 0.0))
    }

    /// The lowest and highest measured elevations, in degrees: directions outside are
    /// clamped to this range before interpolation.
    /// Test support (halo's binaural tests).
    #[cfg(feature = "internals")]
    pub fn elevation_range_deg(&self) -> (f64, f64) {
        (self.mesh.el_min_deg, self.mesh.el_max_deg)
    }

    /// The measured impulse response of measurement `i` and ear `ear` (0 left, 1 right),
    /// after trimming; empty if out of range.
    pub fn measured_hrir(&self, i: usize, ear: usize) -> &[f32] {
        if i >= self.directions.len() || ear > 1 {
            return &[];
        }
        let start = (i * 2 + ear) * self.taps;
        &self.irs[start..start + self.taps]
    }

    /// The measured directions and weights (summing to 1) interpolated for `dir`.
    pub fn weights(&self, dir: Direction) -> Weights {
        self.mesh.weights(dir)
    }

    /// Writes the interpolated pair the renderer uses for `dir` (up to `len_taps()` frames;
    /// any further frames are zeroed).
    pub fn hrir(&self, dir: Direction, left: &mut [f32], right: &mut [f32]) {
        let w = self.weights(dir);
        for (ear, out) in [left, right].into_iter().enumerate() {
            out.fill(0.0);
            for &(i, g) in &w {
                if g == 0.0 {
                    continue;
                }
                for (o, &h) in out.iter_mut().zip(self.measured_hrir(i, ear)) {
                    *o += g * h;
                }
            }
        }
    }
}

fn has_hdf5_signature(bytes: &[u8]) -> bool {
    const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";
    // The superblock may sit at 0, 512, 1024, 2048 … (HDF5 file format, §II.A).
    let mut off = 0usize;
    while off + SIG.len() <= bytes.len() {
        if &bytes[off..off + SIG.len()] == SIG {
            return true;
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    false
}

/// Checks the SOFA layout: convention, receivers, non-empty data, array sizes.
/// Lowest and highest sampling rate of a SOFA set (as for WAV sources).
pub const SOFA_RATE_RANGE_HZ: std::ops::RangeInclusive<f64> = 8_000.0..=768_000.0;
/// Longest impulse response, in taps at the set's own rate (a second at 48 kHz).
pub const MAX_IR_TAPS: usize = 48_000;
/// Most measurements in a set (dense public sets have a few thousand).
pub const MAX_MEASUREMENTS: usize = 100_000;

/// Checks a set as stored, before anything is resampled or sized from it: its rate, IR
/// length and count, and that its positions and IRs are finite (a NaN is named as such).
fn check_stored(bytes: &[u8], origin: &str) -> Result<(), BinauralError> {
    let bounds = |what: String, allowed: &'static str| BinauralError::OutOfBounds {
        origin: origin.into(),
        what,
        allowed,
    };
    let corrupt = |reason: String| BinauralError::Corrupt {
        origin: origin.into(),
        reason,
    };
    // A NaN target rate makes sofar's "rates differ" test false, so the set is read as
    // stored, without resampling (and without normalising).
    let opened = catch_unwind(AssertUnwindSafe(|| {
        sofar::reader::OpenOptions::new()
            .sample_rate(f32::NAN)
            .normalized(false)
            .open_data(bytes)
    }));
    let sofa = match opened {
        Ok(Ok(s)) => s,
        // The loading proper reports these with its own messages.
        _ => return Ok(()),
    };
    let h = sofa.hrtf();
    let rate = h.data_sampling_rate.values.first().copied();
    match rate {
        None => return Err(corrupt("Data.SamplingRate is missing".into())),
        Some(r) if r.is_nan() => return Err(corrupt("Data.SamplingRate is NaN".into())),
        Some(r) if !SOFA_RATE_RANGE_HZ.contains(&f64::from(r)) => {
            return Err(bounds(
                format!("Data.SamplingRate is {r} Hz"),
                "8000 to 768000 Hz",
            ));
        }
        _ => {}
    }
    let (m, n) = (h.m() as usize, h.n() as usize);
    if n > MAX_IR_TAPS {
        return Err(bounds(
            format!("impulse responses of {n} taps"),
            "at most 48000 taps",
        ));
    }
    if m > MAX_MEASUREMENTS {
        return Err(bounds(
            format!("{m} measurements"),
            "at most 100000 measurements",
        ));
    }
    if h.data_ir.values.is_empty() {
        return Err(corrupt("Data.IR is missing (no impulse responses)".into()));
    }
    if let Some(i) = h.data_ir.values.iter().position(|v| !v.is_finite()) {
        let v = h.data_ir.values[i];
        let r = h.r().max(1) as usize;
        return Err(corrupt(format!(
            "Data.IR holds {} at measurement {}, receiver {}, tap {}",
            if v.is_nan() {
                "NaN".to_string()
            } else {
                v.to_string()
            },
            i / (r * n.max(1)) + 1,
            i / n.max(1) % r + 1,
            i % n.max(1) + 1
        )));
    }
    if let Some(i) = h.source_position.values.iter().position(|v| v.is_nan()) {
        return Err(corrupt(format!(
            "SourcePosition of measurement {} is NaN",
            i / 3 + 1
        )));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_layout(
    origin: &str,
    convention: &str,
    data_type: &str,
    measurements: usize,
    receivers: usize,
    taps: usize,
    ir_values: usize,
    position_values: usize,
) -> Result<(), BinauralError> {
    if convention != "SimpleFreeFieldHRIR" || data_type != "FIR" {
        return Err(BinauralError::WrongConvention {
            origin: origin.into(),
            found: if convention == "SimpleFreeFieldHRIR" {
                format!("{convention} with DataType {data_type}")
            } else {
                convention.into()
            },
        });
    }
    if measurements == 0 || taps == 0 {
        return Err(BinauralError::EmptySet {
            origin: origin.into(),
            measurements,
            taps,
            detail: String::new(),
        });
    }
    if receivers != 2 {
        return Err(BinauralError::NotTwoReceivers {
            origin: origin.into(),
            receivers,
        });
    }
    let want = measurements * receivers * taps;
    if ir_values != want {
        return Err(BinauralError::Corrupt {
            origin: origin.into(),
            reason: format!(
                "Data.IR holds {ir_values} values, expected M×R×N = {measurements}×{receivers}×{taps} = {want}"
            ),
        });
    }
    if position_values < measurements * 3 {
        return Err(BinauralError::Corrupt {
            origin: origin.into(),
            reason: format!(
                "SourcePosition holds {position_values} values, expected M×3 = {}",
                measurements * 3
            ),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Triangulation of the measured directions
// ---------------------------------------------------------------------------------------

/// The convex hull of the measured directions, with a lookup grid from (azimuth,
/// elevation) cells to the triangles that may contain them.
#[derive(Debug, Clone)]
struct Mesh {
    /// Unit vectors of the measurements.
    points: Vec<[f64; 3]>,
    /// Hull triangles (measurement indices).
    faces: Vec<[usize; 3]>,
    /// Per triangle, the rows of the inverse of the matrix whose columns are its vertices.
    inverse: Vec<[[f64; 3]; 3]>,
    /// Per triangle, the triangle across the edge opposite each vertex (`u32::MAX`: none).
    neighbours: Vec<[u32; 3]>,
    /// Grid cells (azimuth-major): `cell_start[c]..cell_start[c + 1]` in `cell_faces`.
    cell_start: Vec<u32>,
    cell_faces: Vec<u32>,
    el_min_deg: f64,
    el_max_deg: f64,
}

impl Mesh {
    fn new(dirs: &[Direction]) -> Mesh {
        let points: Vec<[f64; 3]> = dirs.iter().map(|d| d.to_unit()).collect();
        let el_min_deg = dirs.iter().map(|d| d.elevation_deg).fold(90.0, f64::min);
        let el_max_deg = dirs.iter().map(|d| d.elevation_deg).fold(-90.0, f64::max);
        let faces = convex_hull(&points);
        let mut kept = Vec::with_capacity(faces.len());
        let mut inverse = Vec::with_capacity(faces.len());
        for f in faces {
            let [a, b, c] = [points[f[0]], points[f[1]], points[f[2]]];
            let det = dot(a, cross(b, c));
            if det.abs() < 1e-12 {
                continue;
            }
            let s = 1.0 / det;
            let r = |v: [f64; 3]| [v[0] * s, v[1] * s, v[2] * s];
            inverse.push([r(cross(b, c)), r(cross(c, a)), r(cross(a, b))]);
            kept.push(f);
        }
        let (cell_start, cell_faces) = build_grid(&points, &kept);
        let neighbours = face_neighbours(&kept);
        Mesh {
            points,
            faces: kept,
            inverse,
            neighbours,
            cell_start,
            cell_faces,
            el_min_deg,
            el_max_deg,
        }
    }

    fn weights(&self, dir: Direction) -> Weights {
        let mut no_hint = usize::MAX;
        self.weights_hinted(dir, None, &mut no_hint)
    }

    /// [`Mesh::weights`], trying the triangle `hint` first, then a short walk across the
    /// edges of the triangles nearby (a moving source has usually crossed into a
    /// neighbour), updating `hint`; `unit` is `dir.to_unit()` when the caller has it.
    /// Same weights: a direction strictly inside a triangle (by more than the tolerance)
    /// lies in no other, and ends the walk; one on an edge away from its ends (within the
    /// tolerance of it, [`EDGE_MARGIN`] from its ends) lies in the two triangles of the
    /// edge only, and ends it with the grid's choice between them.
    fn weights_hinted(&self, dir: Direction, unit: Option<[f64; 3]>, hint: &mut usize) -> Weights {
        let az = if dir.azimuth_deg.is_finite() {
            dir.azimuth_deg
        } else {
            0.0
        };
        let el = if dir.elevation_deg.is_finite() {
            dir.elevation_deg
        } else {
            0.0
        };
        let clamped = Direction::new(az, el.clamp(self.el_min_deg, self.el_max_deg));
        let d = match unit {
            Some(u) if clamped == dir => u,
            _ => clamped.to_unit(),
        };
        let dir = clamped;
        let mut at = *hint;
        for _ in 0..WALK_STEPS {
            let Some(inv) = self.inverse.get(at) else {
                break;
            };
            let w = [dot(inv[0], d), dot(inv[1], d), dot(inv[2], d)];
            let min = w[0].min(w[1]).min(w[2]);
            if min >= INSIDE_EPS {
                *hint = at;
                return self.normalised(at, w);
            }
            // Across the edge opposite the most negative weight.
            let k = if w[0] <= w[1] && w[0] <= w[2] {
                0
            } else if w[1] <= w[2] {
                1
            } else {
                2
            };
            let across = self.neighbours[at][k] as usize;
            if min >= -INSIDE_EPS && (0..3).all(|i| i == k || w[i] >= EDGE_MARGIN) {
                // On the edge opposite vertex `k`, away from its ends (a source on the
                // horizontal ring, e.g.): it lies in this triangle and the one across
                // the edge, in no other. The grid takes the one with the larger smallest
                // weight, the lower index on a tie (its candidates are in index order):
                // so does this, instead of walking to and fro across the edge.
                let Some(inv_across) = self.inverse.get(across) else {
                    break;
                };
                let wa = [
                    dot(inv_across[0], d),
                    dot(inv_across[1], d),
                    dot(inv_across[2], d),
                ];
                let min_a = wa[0].min(wa[1]).min(wa[2]);
                if min_a < -INSIDE_EPS || wa[0] + wa[1] + wa[2] <= 0.0 {
                    break;
                }
                let (f, w) = if min_a > min || (min_a == min && across < at) {
                    (across, wa)
                } else {
                    (at, w)
                };
                *hint = f;
                return self.normalised(f, w);
            }
            at = across;
        }
        let n_az = (360.0 / GRID_DEG) as usize;
        let n_el = (180.0 / GRID_DEG) as usize;
        let ia = (((dir.azimuth_deg + 180.0) / GRID_DEG) as usize).min(n_az - 1);
        let ie = (((dir.elevation_deg + 90.0) / GRID_DEG) as usize).min(n_el - 1);
        let cell = ia * n_el + ie;
        let cands =
            &self.cell_faces[self.cell_start[cell] as usize..self.cell_start[cell + 1] as usize];
        let found = self
            .best_face(d, cands.iter().map(|&f| f as usize))
            .or_else(|| self.best_face(d, 0..self.faces.len()));
        if let Some((f, w)) = found
            && w.iter().map(|x| x.max(0.0)).sum::<f64>() > 0.0
        {
            *hint = f;
            return self.normalised(f, w);
        }
        // No triangle contains the direction (degenerate set): the nearest measurement.
        let mut best = (0, f64::MIN);
        for (i, p) in self.points.iter().enumerate() {
            let c = dot(*p, d);
            if c > best.1 {
                best = (i, c);
            }
        }
        [(best.0, 1.0), (best.0, 0.0), (best.0, 0.0)]
    }

    /// Triangle `f`'s raw weights clamped at 0 and normalised to sum 1.
    fn normalised(&self, f: usize, w: [f64; 3]) -> Weights {
        let w = w.map(|x| x.max(0.0));
        let sum = w[0] + w[1] + w[2];
        let fc = self.faces[f];
        [
            (fc[0], (w[0] / sum) as f32),
            (fc[1], (w[1] / sum) as f32),
            (fc[2], (w[2] / sum) as f32),
        ]
    }

    /// The candidate triangle containing `d` most centrally, with its raw weights.
    fn best_face(
        &self,
        d: [f64; 3],
        cands: impl Iterator<Item = usize>,
    ) -> Option<(usize, [f64; 3])> {
        let mut best: Option<(usize, [f64; 3], f64)> = None;
        for f in cands {
            let inv = &self.inverse[f];
            let w = [dot(inv[0], d), dot(inv[1], d), dot(inv[2], d)];
            let min = w[0].min(w[1]).min(w[2]);
            if min >= -INSIDE_EPS && w[0] + w[1] + w[2] > 0.0 && best.is_none_or(|b| min > b.2) {
                best = Some((f, w, min));
            }
        }
        best.map(|(f, w, _)| (f, w))
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Incremental 3-D convex hull (outward-oriented triangles) of points on the unit sphere.
/// Hand-written: the allowed crates have no hull/triangulation. O(points × faces), run once
/// at load. Duplicate or (within 1e-9) coplanar-interior points are left out.
fn convex_hull(points: &[[f64; 3]]) -> Vec<[usize; 3]> {
    let n = points.len();
    if n < 4 {
        return Vec::new();
    }
    let p0 = 0;
    let p1 = (0..n)
        .max_by(|&a, &b| {
            norm(sub(points[a], points[p0])).total_cmp(&norm(sub(points[b], points[p0])))
        })
        .unwrap_or(0);
    let line = sub(points[p1], points[p0]);
    let dist_line = |i: usize| norm(cross(line, sub(points[i], points[p0])));
    let p2 = (0..n)
        .max_by(|&a, &b| dist_line(a).total_cmp(&dist_line(b)))
        .unwrap_or(0);
    let normal = cross(line, sub(points[p2], points[p0]));
    let dist_plane = |i: usize| dot(normal, sub(points[i], points[p0])).abs();
    let p3 = (0..n)
        .max_by(|&a, &b| dist_plane(a).total_cmp(&dist_plane(b)))
        .unwrap_or(0);
    if dist_line(p2) < 1e-9 || dist_plane(p3) < 1e-9 {
        return Vec::new();
    }
    let inside = {
        let s = [p0, p1, p2, p3].iter().fold([0.0; 3], |acc, &i| {
            [
                acc[0] + points[i][0],
                acc[1] + points[i][1],
                acc[2] + points[i][2],
            ]
        });
        [s[0] / 4.0, s[1] / 4.0, s[2] / 4.0]
    };
    struct Face {
        v: [usize; 3],
        n: [f64; 3],
        off: f64,
    }
    let make = |a: usize, b: usize, c: usize| -> Face {
        let mut v = [a, b, c];
        let mut nrm = cross(sub(points[b], points[a]), sub(points[c], points[a]));
        if dot(nrm, sub(inside, points[a])) > 0.0 {
            v = [a, c, b];
            nrm = [-nrm[0], -nrm[1], -nrm[2]];
        }
        let l = norm(nrm).max(1e-300);
        let nrm = [nrm[0] / l, nrm[1] / l, nrm[2] / l];
        Face {
            v,
            n: nrm,
            off: dot(nrm, points[v[0]]),
        }
    };
    let mut faces = vec![
        make(p0, p1, p2),
        make(p0, p1, p3),
        make(p0, p2, p3),
        make(p1, p2, p3),
    ];
    let mut edges = std::collections::HashSet::new();
    for (i, p) in points.iter().enumerate() {
        if [p0, p1, p2, p3].contains(&i) {
            continue;
        }
        let visible: Vec<bool> = faces.iter().map(|f| dot(f.n, *p) - f.off > 1e-9).collect();
        if !visible.iter().any(|&v| v) {
            continue;
        }
        edges.clear();
        for (f, _) in faces.iter().zip(&visible).filter(|(_, v)| **v) {
            for k in 0..3 {
                edges.insert((f.v[k], f.v[(k + 1) % 3]));
            }
        }
        let mut new_faces = Vec::new();
        for (f, _) in faces.iter().zip(&visible).filter(|(_, v)| **v) {
            for k in 0..3 {
                let (a, b) = (f.v[k], f.v[(k + 1) % 3]);
                if !edges.contains(&(b, a)) {
                    new_faces.push(make(a, b, i));
                }
            }
        }
        let mut keep = visible.iter();
        faces.retain(|_| !keep.next().copied().unwrap_or(false));
        faces.extend(new_faces);
    }
    faces.into_iter().map(|f| f.v).collect()
}

/// For each triangle, the triangle sharing the edge opposite each of its vertices
/// (`u32::MAX` where no other triangle has that edge).
fn face_neighbours(faces: &[[usize; 3]]) -> Vec<[u32; 3]> {
    let mut by_edge = std::collections::HashMap::with_capacity(3 * faces.len());
    for (f, v) in faces.iter().enumerate() {
        for k in 0..3 {
            by_edge.insert((v[(k + 1) % 3], v[(k + 2) % 3]), f as u32);
        }
    }
    faces
        .iter()
        .map(|v| {
            // The neighbour runs along the same edge in the opposite direction.
            [0, 1, 2].map(|k| {
                by_edge
                    .get(&(v[(k + 2) % 3], v[(k + 1) % 3]))
                    .copied()
                    .unwrap_or(u32::MAX)
            })
        })
        .collect()
}

/// For each (azimuth, elevation) grid cell, the triangles whose bounding cap meets the
/// cell's bounding cap.
fn build_grid(points: &[[f64; 3]], faces: &[[usize; 3]]) -> (Vec<u32>, Vec<u32>) {
    build_grid_with(points, faces, |_, _, (cos_r, sin_r), (cos_rc, sin_rc)| {
        cos_r * cos_rc - sin_r * sin_rc
    })
}

/// [`build_grid`] with `cos_sum(r, rc, (cos r, sin r), (cos rc, sin rc))` giving
/// `cos(r + rc)` for a face's cap radius `r` and a cell's radius with margin `rc`: there
/// are ≈ 4000 cells × 1000 faces, so `build_grid` takes the sum formula on precomputed
/// sines and cosines (a cosine per pair was a third of loading an HRTF set); the test
/// `grid_from_the_sum_formula_is_the_grid_from_cosines` checks it selects the same faces.
#[inline(always)]
fn build_grid_with(
    points: &[[f64; 3]],
    faces: &[[usize; 3]],
    cos_sum: impl Fn(f64, f64, (f64, f64), (f64, f64)) -> f64,
) -> (Vec<u32>, Vec<u32>) {
    let n_az = (360.0 / GRID_DEG) as usize;
    let n_el = (180.0 / GRID_DEG) as usize;
    let caps: Vec<([f64; 3], f64, (f64, f64))> = faces
        .iter()
        .map(|f| {
            let s = f.iter().fold([0.0; 3], |acc, &i| {
                [
                    acc[0] + points[i][0],
                    acc[1] + points[i][1],
                    acc[2] + points[i][2],
                ]
            });
            let l = norm(s).max(1e-300);
            let c = [s[0] / l, s[1] / l, s[2] / l];
            let r = f
                .iter()
                .map(|&i| dot(c, points[i]).clamp(-1.0, 1.0).acos())
                .fold(0.0, f64::max);
            (c, r, (r.cos(), r.sin()))
        })
        .collect();
    let margin = 1.0f64.to_radians();
    let mut cell_start = Vec::with_capacity(n_az * n_el + 1);
    let mut cell_faces = Vec::new();
    for ia in 0..n_az {
        for ie in 0..n_el {
            cell_start.push(cell_faces.len() as u32);
            let a0 = -180.0 + ia as f64 * GRID_DEG;
            let e0 = -90.0 + ie as f64 * GRID_DEG;
            let centre = Direction::new(a0 + GRID_DEG / 2.0, e0 + GRID_DEG / 2.0);
            let cu = centre.to_unit();
            let mut r_cell: f64 = 0.0;
            for (da, de) in [
                (0.0, 0.0),
                (1.0, 0.0),
                (0.0, 1.0),
                (1.0, 1.0),
                (0.5, 0.0),
                (0.5, 1.0),
                (0.0, 0.5),
                (1.0, 0.5),
            ] {
                let corner = Direction {
                    azimuth_deg: a0 + da * GRID_DEG,
                    elevation_deg: e0 + de * GRID_DEG,
                };
                r_cell = r_cell.max(dot(cu, corner.to_unit()).clamp(-1.0, 1.0).acos());
            }
            let rc = r_cell + margin;
            let rc_cs = (rc.cos(), rc.sin());
            for (f, &(c, r, r_cs)) in caps.iter().enumerate() {
                if r + rc >= PI || dot(c, cu) >= cos_sum(r, rc, r_cs, rc_cs) {
                    cell_faces.push(f as u32);
                }
            }
        }
    }
    cell_start.push(cell_faces.len() as u32);
    (cell_start, cell_faces)
}

// ---------------------------------------------------------------------------------------
// Renderer
// ---------------------------------------------------------------------------------------

/// Configuration of a [`BinauralRenderer`].
#[derive(Debug, Clone, PartialEq)]
pub struct BinauralConfig {
    /// Session rate; must equal the HRTF set's rate.
    pub sample_rate: u32,
    /// Number of sources (inputs) the renderer mixes.
    pub max_sources: usize,
    /// Partition length `B` (16 … 8192, even, no prime factor above 3, so that the `2B`-point
    /// FFTs stay fast): the latency, the granularity of parameter changes and the
    /// crossfade length, in frames.
    pub partition_frames: usize,
    /// Crossfade filter changes over one partition (on by default; off only to show why).
    pub crossfade: bool,
    /// Direction changes smaller than this (great-circle degrees, against the direction of
    /// the filter in use) keep the current filter.
    pub min_update_deg: f64,
}

impl BinauralConfig {
    /// Defaults: 256-frame partitions (5.3 ms at 48 kHz), crossfades on, 0.05° threshold.
    pub fn new(sample_rate: u32, max_sources: usize) -> Self {
        BinauralConfig {
            sample_rate,
            max_sources,
            partition_frames: 256,
            crossfade: true,
            min_update_deg: 0.05,
        }
    }

    /// This config for an offline render, where latency does not matter: partitions of
    /// [`offline_partition_frames`] frames for `hrtf` (the whole trimmed HRIR in one
    /// partition, 1024 frames for the default set at 48 kHz), so each input frame costs
    /// one partition's multiply-accumulate instead of one per HRIR partition, and every
    /// measured spectrum is read once per larger block. Same convolution as
    /// [`BinauralConfig::new`] for static sources (to float rounding); filters of moving
    /// sources are updated (and crossfaded) once per partition, i.e. every 21 ms instead
    /// of every 6.75 ms (the live partitions of [`BinauralConfig::live`]) at 48 kHz.
    /// Use as `BinauralConfig::new(rate, sources).offline(&hrtf)`.
    pub fn offline(self, hrtf: &HrtfSet) -> Self {
        BinauralConfig {
            partition_frames: offline_partition_frames(hrtf),
            ..self
        }
    }

    /// This config for live rendering and renders that sound as `halo play` does:
    /// partitions of [`live_partition_frames`] frames for `hrtf` (324 for the default set
    /// at 48 kHz: its filters in two partitions instead of three of 256 frames, for 1.4 ms
    /// more latency). Same convolution as [`BinauralConfig::new`] for static sources (to
    /// float rounding).
    /// Use as `BinauralConfig::new(rate, sources).live(&hrtf)`.
    pub fn live(self, hrtf: &HrtfSet) -> Self {
        BinauralConfig {
            partition_frames: live_partition_frames(hrtf),
            ..self
        }
    }
}

/// Longest partition [`live_partition_frames`] chooses: 8 ms at 48 kHz.
pub const LIVE_MAX_PARTITION_FRAMES: usize = 384;

/// The partition length of [`BinauralConfig::live`]: the fewest partitions of at most
/// [`LIVE_MAX_PARTITION_FRAMES`] frames that hold the set's filters (the near-field bank's
/// included, [`HrtfSet::near_field_taps`]), each as short as that allows but at least 256
/// frames (the default), rounded up to an even length with no prime factor above 3.
/// Every partition costs one multiply-accumulate per bin, source and ear, so fewer, longer
/// partitions cost less per frame (for KEMAR at 48 kHz: 637 taps, 2 × 324 frames
/// instead of 3 × 256).
pub fn live_partition_frames(hrtf: &HrtfSet) -> usize {
    let taps = hrtf.near_field_taps();
    let parts = taps.div_ceil(LIVE_MAX_PARTITION_FRAMES).max(1);
    (taps.div_ceil(parts).max(256)..)
        .find(|&b| b.is_multiple_of(2) && three_smooth(b))
        .unwrap_or(256)
}

/// The partition length of [`BinauralConfig::offline`]: the set's trimmed HRIR length
/// rounded up to a power of two, at least 256 (the live default) and at most 2048 frames
/// (the filter updates of a moving source stay ≤ 43 ms apart at 48 kHz; a longer set is
/// then convolved in several partitions).
pub fn offline_partition_frames(hrtf: &HrtfSet) -> usize {
    hrtf.len_taps().next_power_of_two().clamp(256, 2048)
}

/// Per-source parameters, as set by the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    dir: Direction,
    bypass: Option<[f32; 2]>,
    active: bool,
    distance: Distance,
}

struct Source {
    /// Parameters used by the last processed partition.
    applied: Params,
    /// Parameters most recently set.
    latest: Params,
    /// Pending changes: (first partition index they apply to, parameters).
    queue: [(u64, Params); 2],
    queued: usize,
    /// Time-domain input, two partitions: the one being filled (half
    /// [`BinauralRenderer::half`]) and the previous one (the other half).
    time: Vec<f32>,
    /// Frequency-domain delay line: `parts` slots of `bins` (split real / imaginary).
    fdl_re: Vec<f32>,
    fdl_im: Vec<f32>,
    head: usize,
    /// Consecutive all-zero delay-line slots (both halves of the FFT input silent;
    /// saturating): ≥ `parts` means an all-zero history.
    silent_run: usize,
    /// Interpolation weights of the filter in use.
    weights: Weights,
    /// The mesh triangle of the last lookup (tried first at the next).
    face: usize,
    /// The filter in use, stored (ear-major, then partition, then bin) once the source
    /// has stood still for a partition; while it moves, filters are interpolated on the
    /// fly from the measured spectra instead (less memory traffic than storing them).
    filt_re: Vec<f32>,
    filt_im: Vec<f32>,
    /// Whether `filt_*` holds the filter of `weights`.
    stored: bool,
    /// Direction (unit vector) the filter in use was built for.
    filter_dir: Option<[f64; 3]>,
    /// Whether the filter in use is from the near-field bank.
    filter_near: bool,
    /// Room sends in use, and the direction and distance they were computed for.
    sends: Sends,
    send_dir: Option<[f64; 3]>,
    send_distance: Distance,
}

/// Whose room a renderer's sources play in. A mix split over several renderers (the
/// engine's source chunks, [`crate::engine::binaural_chunk_sizes`]) keeps one room, as a
/// single renderer has: the room is linear, so one room fed every chunk's sends renders
/// what each chunk's own room would add up to, at the cost of one (a room costs about as
/// much as a dozen moving sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomRole {
    /// The renderer's own room (a single renderer).
    Own,
    /// No room here: each finished partition's sends are queued for the renderer that has
    /// it ([`BinauralRenderer::exported_room_sends`]).
    Export,
    /// The room of the whole mix: each partition's room is also fed the sends imported
    /// for it ([`BinauralRenderer::import_room_sends`]), oldest first.
    Import,
}

/// Finished partitions' room sends, `2 · room::N_INPUTS` inputs of `B` frames each, oldest
/// first (see [`RoomRole`]).
#[derive(Default)]
struct SendQueue {
    data: Vec<f32>,
    /// Frames per input (`B`).
    block: usize,
    /// Partitions held, and (importing) those already fed to the room.
    len: usize,
    read: usize,
}

impl SendQueue {
    fn new(partitions: usize, block: usize) -> SendQueue {
        SendQueue {
            data: vec![0.0; partitions * 2 * room::N_INPUTS * block],
            block,
            len: 0,
            read: 0,
        }
    }

    fn per_partition(&self) -> usize {
        2 * room::N_INPUTS * self.block
    }

    fn clear(&mut self) {
        self.len = 0;
        self.read = 0;
    }

    /// Appends the partition in `input` and clears `input`.
    fn push(&mut self, input: &mut [Vec<f32>]) {
        let per = self.per_partition();
        let at = self.len * per;
        debug_assert!(at + per <= self.data.len(), "room send queue full");
        if let Some(dst) = self.data.get_mut(at..at + per) {
            for (d, x) in dst.chunks_exact_mut(self.block).zip(input.iter_mut()) {
                d.copy_from_slice(x);
                x.fill(0.0);
            }
            self.len += 1;
        }
    }

    /// Adds the oldest partition not yet taken to `input`; none left: nothing.
    fn pop_into(&mut self, input: &mut [Vec<f32>]) {
        if self.read == self.len {
            return;
        }
        let per = self.per_partition();
        let src = &self.data[self.read * per..(self.read + 1) * per];
        for (x, s) in input.iter_mut().zip(src.chunks_exact(self.block)) {
            for (v, &a) in x.iter_mut().zip(s) {
                *v += a;
            }
        }
        self.read += 1;
        if self.read == self.len {
            self.clear();
        }
    }
}

/// Multi-source binaural renderer (see the module documentation).
pub struct BinauralRenderer {
    hrtf: Arc<HrtfSet>,
    config: BinauralConfig,
    block: usize,
    /// Length `N` of the sources' FFTs: `2B`, or with one partition the shortest fast
    /// length holding the partition and the filter ([`fft_frames`]).
    fft_len: usize,
    /// `N / 2 + 1`.
    bins: usize,
    parts: usize,
    cos_min_update: f64,
    /// Spectra of all measured HRIR partitions, scaled by 1/(2B): measurement, ear,
    /// partition, bin. Measurements `m … 2m` are the near-field bank (`Near` sources):
    /// measurement `i − m` through its per-ear near-field shelves.
    spec_re: Arc<[f32]>,
    spec_im: Arc<[f32]>,
    sources: Vec<Source>,
    /// Number of measured directions `m` (the near-field bank starts there).
    measurements: usize,
    /// The shared virtual room of the `Near`, `Mid` and `Far` distances.
    room: Room,
    /// The room's own buses, when the sources' FFTs are not `2B` long.
    room_bus: Option<RoomBus>,
    /// Whose room this renderer's sources play in ([`RoomRole`]), and the finished
    /// partitions' sends on their way out (`Export`) or in (`Import`).
    room_role: RoomRole,
    room_queue: SendQueue,
    /// The room's forward FFT (`2B` points).
    fft: Arc<dyn RealToComplex<f32>>,
    /// The sources' forward transform: `fft`'s arithmetic, written to split spectra.
    forward: Forward,
    ifft: Arc<dyn ComplexToReal<f32>>,
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    ifft_in: Vec<Complex<f32>>,
    ifft_out: Vec<f32>,
    ifft_scratch: Vec<Complex<f32>>,
    /// Bus spectra per ear: `a` (full weight) and `b` (faded out over the partition).
    a_re: [Vec<f32>; 2],
    a_im: [Vec<f32>; 2],
    b_re: [Vec<f32>; 2],
    b_im: [Vec<f32>; 2],
    /// Time-domain (bypass) contributions of the partition, per ear.
    td: [Vec<f32>; 2],
    /// Rendered partition being played out, per ear.
    out: [Vec<f32>; 2],
    /// Crossfade window (fade-in of the new state), `B` frames.
    fade_in: Vec<f32>,
    /// The input's fade-in after [`BinauralRenderer::restart`]: [`RESTART_FADE_S`].
    restart_fade: Vec<f32>,
    /// A restart's fade-in is under way (from partition 0 on).
    restarting: bool,
    /// The frame of partition 0 at which input started after the last reset: 0, or after
    /// [`BinauralRenderer::restart`] the position's place in its partition.
    start_fill: usize,
    fill: usize,
    /// Which half of every source's `time` buffer is being filled (the halves swap roles
    /// at each partition instead of the input being copied).
    half: usize,
    partition_index: u64,
    /// The CPU has AVX (detected at construction): the convolution kernels run in their
    /// AVX build, which computes exactly what the portable build does.
    avx: bool,
    /// The build the convolution kernels and the forward FFT's split run in (detected at
    /// construction, [`Kernels::detect`]).
    kernels: Kernels,
}

impl BinauralRenderer {
    /// Builds a renderer: validates the config, precomputes the spectra of every measured
    /// HRIR partition and allocates every buffer.
    pub fn new(hrtf: Arc<HrtfSet>, config: BinauralConfig) -> Result<Self, BinauralError> {
        let bad = |field: &'static str, value: String, allowed: String| BinauralError::BadConfig {
            field,
            value,
            allowed,
        };
        if config.sample_rate != hrtf.sample_rate() {
            return Err(bad(
                "sample_rate",
                config.sample_rate.to_string(),
                format!("the HRTF set's rate, {} Hz", hrtf.sample_rate()),
            ));
        }
        if !(1..=4096).contains(&config.max_sources) {
            return Err(bad(
                "max_sources",
                config.max_sources.to_string(),
                "1 … 4096".into(),
            ));
        }
        let b = config.partition_frames;
        if !b.is_multiple_of(2) || !three_smooth(b) || !(16..=8192).contains(&b) {
            return Err(bad(
                "partition_frames",
                b.to_string(),
                "16 … 8192, even and with no prime factor above 3 (256, 288, 324, 384, 512 …)"
                    .into(),
            ));
        }
        if !config.min_update_deg.is_finite() || !(0.0..=10.0).contains(&config.min_update_deg) {
            return Err(bad(
                "min_update_deg",
                config.min_update_deg.to_string(),
                "0 … 10 degrees".into(),
            ));
        }
        let parts = hrtf.len_taps().div_ceil(b).max(1);
        let m = hrtf.num_directions();
        let near_field = near_field::NearField::shared();
        let mut ir = vec![0.0f32; parts * b];
        // The near-field bank's filters: the measured ones through their ears' shelves.
        let near_ir = |ir: &mut [f32], meas: usize, ear: usize| {
            let shelves = near_field.ear_shelves(hrtf.measured_direction(meas).to_unit());
            let measured = hrtf.measured_hrir(meas, ear);
            ir.fill(0.0);
            ir[..measured.len()].copy_from_slice(measured);
            shelves[ear].apply(config.sample_rate, ir);
        };
        // One partition: the FFT only needs to hold the partition and the filter (the
        // near-field shelves' tails included down to `NEAR_TAIL_THRESHOLD`).
        let fft_len = if parts == 1 {
            fft_frames(b, hrtf.near_field_taps().min(b))
        } else {
            2 * b
        };
        let bins = fft_len / 2 + 1;
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(fft_len);
        let ifft = planner.plan_fft_inverse(fft_len);
        let mut fft_in = fft.make_input_vec();
        let mut fft_out = fft.make_output_vec();
        let mut fft_scratch = fft.make_scratch_vec();

        let per_meas = 2 * parts * bins;
        let mut spec_re = vec![0.0f32; 2 * m * per_meas];
        let mut spec_im = vec![0.0f32; 2 * m * per_meas];
        let scale = 1.0 / fft_len as f32;
        // Filter taps an overlap-save FFT of `fft_len` convolves without wrapping around
        // (with one partition; else `B + 1`, more than a partition holds).
        let filter_taps = fft_len - b + 1;
        for (bank, meas) in (0..2).flat_map(|bank| (0..m).map(move |i| (bank, i))) {
            for ear in 0..2 {
                if bank == 1 {
                    near_ir(&mut ir, meas, ear);
                    // (One partition: the shelves' tails beyond the threshold end here.)
                    if parts == 1 && filter_taps < b {
                        ir[filter_taps..].fill(0.0);
                    }
                } else {
                    let measured = hrtf.measured_hrir(meas, ear);
                    ir.fill(0.0);
                    ir[..measured.len()].copy_from_slice(measured);
                }
                for p in 0..parts {
                    fft_in.fill(0.0);
                    fft_in[..b].copy_from_slice(&ir[p * b..(p + 1) * b]);
                    let _ = fft.process_with_scratch(&mut fft_in, &mut fft_out, &mut fft_scratch);
                    let off = (bank * m + meas) * per_meas + (ear * parts + p) * bins;
                    for (k, c) in fft_out.iter().enumerate() {
                        spec_re[off + k] = c.re * scale;
                        spec_im[off + k] = c.im * scale;
                    }
                }
            }
        }
        Ok(BinauralRenderer::assemble(
            hrtf,
            config,
            spec_re.into(),
            spec_im.into(),
            ifft,
        ))
    }

    /// The renderer around precomputed HRTF spectra (`new` computes them; `with_sources`
    /// shares another renderer's): sources at their defaults, buffers, room and kernels.
    fn assemble(
        hrtf: Arc<HrtfSet>,
        config: BinauralConfig,
        spec_re: Arc<[f32]>,
        spec_im: Arc<[f32]>,
        ifft: Arc<dyn ComplexToReal<f32>>,
    ) -> BinauralRenderer {
        let b = config.partition_frames;
        let fft_len = ifft.len();
        let bins = fft_len / 2 + 1;
        let parts = hrtf.len_taps().div_ceil(b).max(1);
        let per_meas = 2 * parts * bins;
        // The room's convolutions run in `2B`-point FFTs, and add to the sources' buses
        // when those have the same length; else into buses of their own.
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(2 * b);
        let room = Room::new(&hrtf, b, &*fft);
        let room_bus = (fft_len != 2 * b).then(|| RoomBus::new(planner.plan_fft_inverse(2 * b)));
        let forward = Forward::new(fft_len / 2);
        let front = Params {
            dir: Direction::new(0.0, 0.0),
            bypass: None,
            active: true,
            distance: Distance::Anechoic,
        };
        let sources = (0..config.max_sources)
            .map(|_| Source {
                applied: front,
                latest: front,
                queue: [(0, front); 2],
                queued: 0,
                time: vec![0.0; 2 * b],
                fdl_re: vec![0.0; parts * bins],
                fdl_im: vec![0.0; parts * bins],
                head: 0,
                silent_run: parts,
                weights: [(0, 0.0); 3],
                face: 0,
                filt_re: vec![0.0; per_meas],
                filt_im: vec![0.0; per_meas],
                stored: false,
                filter_dir: None,
                filter_near: false,
                sends: Sends::ZERO,
                send_dir: None,
                send_distance: Distance::Anechoic,
            })
            .collect();
        let fade_in = (0..b)
            .map(|n| {
                let s = (0.5 * PI * (n as f64 + 0.5) / b as f64).sin();
                (s * s) as f32
            })
            .collect();
        let fade_frames =
            ((RESTART_FADE_S * f64::from(config.sample_rate)).round() as usize).max(1);
        let restart_fade = (0..fade_frames)
            .map(|n| {
                let s = (0.5 * PI * (n as f64 + 0.5) / fade_frames as f64).sin();
                (s * s) as f32
            })
            .collect();
        let zeros = || vec![0.0f32; bins];
        BinauralRenderer {
            cos_min_update: config.min_update_deg.to_radians().cos(),
            block: b,
            fft_len,
            bins,
            parts,
            spec_re,
            spec_im,
            sources,
            measurements: hrtf.num_directions(),
            room,
            room_bus,
            room_role: RoomRole::Own,
            room_queue: SendQueue::default(),
            ifft_in: ifft.make_input_vec(),
            ifft_out: ifft.make_output_vec(),
            ifft_scratch: ifft.make_scratch_vec(),
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            fft_scratch: fft.make_scratch_vec(),
            fft,
            forward,
            ifft,
            a_re: [zeros(), zeros()],
            a_im: [zeros(), zeros()],
            b_re: [zeros(), zeros()],
            b_im: [zeros(), zeros()],
            td: [vec![0.0; b], vec![0.0; b]],
            out: [vec![0.0; b], vec![0.0; b]],
            fade_in,
            restart_fade,
            restarting: false,
            start_fill: 0,
            fill: 0,
            half: 0,
            partition_index: 0,
            avx: has_avx(),
            kernels: Kernels::detect(),
            hrtf,
            config,
        }
    }

    /// Latency in frames: input frame `n` is heard at output frame `n + latency()`.
    pub fn latency(&self) -> usize {
        self.block
    }

    /// A new renderer like this one (same set, partitions and settings) for `max_sources`
    /// sources of its own, sharing this one's precomputed HRTF spectra instead of computing
    /// (and storing) them again: several renderers, each for a share of a session's sources,
    /// cost the spectra once. Its sources start at their defaults, with no audio history.
    pub fn with_sources(&self, max_sources: usize) -> Result<Self, BinauralError> {
        if !(1..=4096).contains(&max_sources) {
            return Err(BinauralError::BadConfig {
                field: "max_sources",
                value: max_sources.to_string(),
                allowed: "1 … 4096".into(),
            });
        }
        Ok(BinauralRenderer::assemble(
            Arc::clone(&self.hrtf),
            BinauralConfig {
                max_sources,
                ..self.config.clone()
            },
            Arc::clone(&self.spec_re),
            Arc::clone(&self.spec_im),
            Arc::clone(&self.ifft),
        ))
    }

    fn update(&mut self, source: usize, change: impl FnOnce(&mut Params)) {
        // The first partition starting at or after the input frames taken so far
        // (`partition_index · B + fill` of them), without a division; a partition that
        // has taken no input since a reset takes the change itself.
        let fresh = self.partition_index == 0 && self.fill == self.start_fill;
        let eff = self.partition_index + u64::from(self.fill > 0 && !fresh);
        let Some(s) = self.sources.get_mut(source) else {
            return;
        };
        change(&mut s.latest);
        let p = s.latest;
        if s.queued > 0 && s.queue[s.queued - 1].0 >= eff {
            s.queue[s.queued - 1] = (eff, p);
        } else if s.queued < 2 {
            s.queue[s.queued] = (eff, p);
            s.queued += 1;
        } else {
            s.queue[1] = (eff, p);
        }
    }

    /// Runs the convolution in its AVX + FMA build where the CPU would take the AVX-512
    /// one (the same output bits): for speed comparisons (`examples/binaural_speed.rs`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn without_avx512(&mut self) {
        if self.kernels == Kernels::Avx512 {
            self.kernels = Kernels::Fma;
        }
    }

    /// Sets a source's direction (cheap, no allocation); see the module documentation for
    /// when it takes effect. Out-of-range sources are ignored.
    pub fn set_direction(&mut self, source: usize, dir: Direction) {
        self.update(source, |p| p.dir = dir);
    }

    /// `Some([left, right])` renders the source without HRTFs ("binaural off"): plain ear
    /// gains, delayed by `latency()` like the HRTF path. `None` returns to HRTF rendering.
    /// Switching and gain changes are crossfaded over one partition.
    pub fn set_bypass(&mut self, source: usize, gains: Option<[f32; 2]>) {
        let gains = gains.map(|g| g.map(|x| if x.is_finite() { x } else { 0.0 }));
        self.update(source, |p| p.bypass = gains);
    }

    /// Sets a source's room distance (see [`room`]): `Anechoic` (the default) is the HRTF
    /// alone; `Near` adds the near-field correction and a small share of the room; `Mid`
    /// and `Far` send to the shared room. A change applies like a direction change (the
    /// filter and the sends are crossfaded over one partition). Bypassed sources have no
    /// room.
    pub fn set_distance(&mut self, source: usize, distance: Distance) {
        self.update(source, |p| p.distance = distance);
    }

    /// An inactive source's input is ignored (treated as silence): its convolution tail
    /// rings out, after which it costs nothing. Sources are active by default.
    pub fn set_active(&mut self, source: usize, active: bool) {
        self.update(source, |p| p.active = active);
    }

    /// Makes this renderer one of several sharing a room ([`RoomRole`]), for blocks of up
    /// to `max_block_frames` frames: sends queue up for at most the partitions such a block
    /// finishes. Allocates (call it at set-up); clears queued sends.
    pub fn set_room_role(&mut self, role: RoomRole, max_block_frames: usize) {
        self.room_role = role;
        self.room_queue = match role {
            RoomRole::Own => SendQueue::default(),
            _ => SendQueue::new(max_block_frames.div_ceil(self.block) + 1, self.block),
        };
    }

    /// (`Export`) The sends of the partitions finished since the last
    /// [`BinauralRenderer::clear_exported_room_sends`], oldest first, each
    /// `2 · room::N_INPUTS · B` samples long.
    pub fn exported_room_sends(&self) -> &[f32] {
        &self.room_queue.data[..self.room_queue.len * self.room_queue.per_partition()]
    }

    /// (`Export`) Forgets the exported sends (once handed on).
    pub fn clear_exported_room_sends(&mut self) {
        self.room_queue.clear();
    }

    /// The most samples of room sends that blocks of up to `max_block_frames` frames
    /// finish: `2 · room::N_INPUTS · B` per partition, for one more partition than such a
    /// block holds (it may start anywhere in a partition).
    pub fn room_sends_capacity(&self, max_block_frames: usize) -> usize {
        (max_block_frames.div_ceil(self.block) + 1) * 2 * room::N_INPUTS * self.block
    }

    /// (`Import`) Hands in another renderer's [`BinauralRenderer::exported_room_sends`] on
    /// the same partition grid, before this renderer processes those partitions (it takes
    /// one at each partition it finishes). `first`: the first renderer handing in sends for
    /// these partitions (appended); later ones are added to them, so renderers handing in
    /// in a fixed order give fixed bits. At most the partitions of one block of
    /// `max_block_frames` ([`BinauralRenderer::set_room_role`]) may wait; more are dropped
    /// (a caller's error: debug builds stop on it). Never allocates.
    pub fn import_room_sends(&mut self, sends: &[f32], first: bool) {
        let q = &mut self.room_queue;
        let per = q.per_partition();
        if per == 0 || sends.is_empty() {
            return;
        }
        let parts = sends.len() / per;
        if first {
            let at = q.len * per;
            let fits = at + parts * per <= q.data.len();
            debug_assert!(fits, "room send queue full");
            if fits {
                q.data[at..at + parts * per].copy_from_slice(&sends[..parts * per]);
                q.len += parts;
            }
        } else {
            let from = q.len.saturating_sub(parts).max(q.read) * per;
            debug_assert_eq!(from, (q.len - parts) * per, "sends for other partitions");
            for (d, &x) in q.data[from..q.len * per].iter_mut().zip(sends) {
                *d += x;
            }
        }
    }

    /// Clears all audio history (parameters are kept, pending changes applied).
    pub fn reset(&mut self) {
        for s in &mut self.sources {
            s.applied = s.latest;
            s.queued = 0;
            s.time.fill(0.0);
            s.fdl_re.fill(0.0);
            s.fdl_im.fill(0.0);
            s.silent_run = self.parts;
            s.filter_dir = None;
            s.stored = false;
        }
        self.room.reset();
        self.room_queue.clear();
        for ear in 0..2 {
            self.out[ear].fill(0.0);
        }
        self.fill = 0;
        self.half = 0;
        self.partition_index = 0;
        self.restarting = false;
        self.start_fill = 0;
    }

    /// [`BinauralRenderer::reset`] for a render that resumes in the middle of its input
    /// (a seek, a monitor switched back on) at frame `position_frames` of its timeline:
    /// - The input was not silent before this point, but the renderer has none of it, so
    ///   it fades the input in over [`RESTART_FADE_S`]. Started abruptly, the input's
    ///   first sample would be a step, and the room's reverberation would ring with that
    ///   click for as long as it decays (hundreds of milliseconds, longer than a monitor's
    ///   warm-up).
    /// - Partitions stay on the timeline's grid (multiples of `B` frames from frame 0):
    ///   the first one is rendered from `position_frames`' place in it on, so filter
    ///   changes fall on the same frames as in a render that never stopped, and once the
    ///   missing history has rung out the two agree again.
    ///
    /// Parameters set before the first input apply from it. The latency is unchanged.
    pub fn restart(&mut self, position_frames: u64) {
        self.reset();
        self.restarting = true;
        self.start_fill = (position_frames % self.block as u64) as usize;
        self.fill = self.start_fill;
    }

    /// Renders one block: `inputs[i]` is source `i`'s mono input (missing sources or
    /// samples are silence; extra inputs are ignored); `left`/`right` are overwritten with
    /// the binaural mix. Any block length; never allocates.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn process<S: AsRef<[f32]>>(&mut self, inputs: &[S], left: &mut [f32], right: &mut [f32]) {
        self.process_with(
            |i, pos, dst| match inputs.get(i).map(|x| x.as_ref()) {
                Some(x) if x.len() >= pos + dst.len() => {
                    dst.copy_from_slice(&x[pos..pos + dst.len()]);
                }
                Some(x) => {
                    for (k, d) in dst.iter_mut().enumerate() {
                        *d = x.get(pos + k).copied().unwrap_or(0.0);
                    }
                }
                None => dst.fill(0.0),
            },
            left,
            right,
        );
    }

    /// [`BinauralRenderer::process`] for a caller that computes its inputs (the engine: each
    /// object's signal at its level): `input(source, offset, dst)` writes every sample of
    /// source `source`'s input frames `offset .. offset + dst.len()` of this block into
    /// `dst`, the renderer's own input buffer, which saves copying them there. It is called
    /// for every source, in order, once per partition the block reaches into. Never
    /// allocates.
    pub fn process_with(
        &mut self,
        mut input: impl FnMut(usize, usize, &mut [f32]),
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let frames = left.len().min(right.len());
        let b = self.block;
        let mut pos = 0;
        while pos < frames {
            let chunk = (b - self.fill).min(frames - pos);
            let at = self.half * b + self.fill;
            for (i, s) in self.sources.iter_mut().enumerate() {
                input(i, pos, &mut s.time[at..at + chunk]);
            }
            left[pos..pos + chunk].copy_from_slice(&self.out[0][self.fill..self.fill + chunk]);
            right[pos..pos + chunk].copy_from_slice(&self.out[1][self.fill..self.fill + chunk]);
            self.fill += chunk;
            pos += chunk;
            if self.fill == b {
                self.process_partition();
                self.fill = 0;
            }
        }
        left[frames..].fill(0.0);
        right[frames..].fill(0.0);
    }

    fn process_partition(&mut self) {
        let (b, bins, parts) = (self.block, self.bins, self.parts);
        let j = self.partition_index;
        let crossfade = self.config.crossfade;
        for ear in 0..2 {
            self.a_re[ear].fill(0.0);
            self.a_im[ear].fill(0.0);
            self.td[ear].fill(0.0);
        }
        let mut any_b = false;
        for s in &mut self.sources {
            // Adopt the parameters due at this partition.
            let prev = s.applied;
            let mut taken = 0;
            while taken < s.queued && s.queue[taken].0 <= j {
                s.applied = s.queue[taken].1;
                taken += 1;
            }
            if taken > 0 {
                s.queue.copy_within(taken.., 0);
                s.queued -= taken;
            }
            let now = s.applied;

            // Input: one forward FFT unless the partition is silent.
            let hist_silent_before = s.silent_run >= parts;
            s.head = if s.head + 1 == parts { 0 } else { s.head + 1 };
            let slot = s.head * bins;
            let (first, second) = s.time.split_at_mut(b);
            let (prev_half, cur_half) = if self.half == 0 {
                (second, first)
            } else {
                (first, second)
            };
            // The previous partition's input (as convolved: zeroed while inactive).
            let previous_silent = prev_half.iter().all(|&x| x == 0.0);
            if !now.active {
                cur_half.fill(0.0);
            } else if self.restarting {
                // `cur_half[k]` is frame `j·B + k − start_fill` since the restart (the
                // frames before it are zeros).
                let r = self.start_fill;
                let from = j as usize * b;
                for (k, x) in cur_half.iter_mut().enumerate().skip(r.saturating_sub(from)) {
                    match self.restart_fade.get(from + k - r) {
                        Some(g) => *x *= g,
                        None => break,
                    }
                }
            }
            let silent = !now.active || cur_half.iter().all(|&x| x == 0.0);
            // The slot's spectrum is that of both halves (overlap-save): it is zero only
            // when the previous partition was silent too (else it carries the previous
            // input's convolution tail into this partition's output).
            if silent && previous_silent {
                if !hist_silent_before {
                    s.fdl_re[slot..slot + bins].fill(0.0);
                    s.fdl_im[slot..slot + bins].fill(0.0);
                }
                s.silent_run = (s.silent_run + 1).min(parts);
            } else {
                self.forward.process(
                    &prev_half[2 * b - self.fft_len..],
                    cur_half,
                    &mut s.fdl_re[slot..slot + bins],
                    &mut s.fdl_im[slot..slot + bins],
                    self.kernels,
                );
                s.silent_run = 0;
            }
            // Bypass (time domain), crossfaded between previous and current gains.
            let x = &*cur_half;
            let hrtf_was_audible =
                prev.bypass.is_none() && !hist_silent_before && s.filter_dir.is_some();
            if prev.bypass.is_some() || now.bypass.is_some() {
                let g1 = now.bypass.unwrap_or([0.0; 2]);
                // Fade from the previous gains, or from 0 while an audible HRTF path fades
                // out; without crossfades a change is a step at the partition boundary.
                let g0 = match prev.bypass {
                    Some(g) if crossfade => g,
                    None if crossfade && hrtf_was_audible => [0.0; 2],
                    _ => g1,
                };
                for ear in 0..2 {
                    let (g0, g1) = (g0[ear], g1[ear]);
                    if g0 == 0.0 && g1 == 0.0 {
                        continue;
                    }
                    add_ramped(&mut self.td[ear], x, g0, g1, &self.fade_in, self.avx);
                }
            }
            // Room sends (time domain): recomputed when the direction moved more than the
            // threshold or the distance changed, and ramped over the partition.
            // The sends follow the direction snapped to a grid (`room::send_cell`), so they
            // depend on where the source is, never on its history.
            let target = now.dir.to_unit();
            let cell = room::send_cell(target);
            let sends = if now.bypass.is_some() || now.distance == Distance::Anechoic {
                Sends::ZERO
            } else if s.send_distance == now.distance && s.send_dir == Some(cell) {
                s.sends
            } else {
                s.send_dir = Some(cell);
                self.room.sends(now.distance, cell)
            };
            s.send_distance = now.distance;
            if !silent && (sends.mask | s.sends.mask) != 0 {
                let mut mask = sends.mask | s.sends.mask;
                while mask != 0 {
                    let k = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let g1 = sends.gains[k];
                    // Ramped from the previous gains while the input was sounding; a
                    // source starting from silence starts at its gains.
                    let g0 = if crossfade && !previous_silent {
                        s.sends.gains[k]
                    } else {
                        g1
                    };
                    let dst = &mut self.room.input[k];
                    if g0 == g1 {
                        add_scaled(dst, x, g1, self.avx);
                    } else {
                        add_ramped(dst, x, g0, g1, &self.fade_in, self.avx);
                    }
                }
            }
            s.sends = sends;

            let history_silent = s.silent_run >= parts;
            let hrtf_before = prev.bypass.is_none() && crossfade;
            let hrtf_now = now.bypass.is_none();
            if history_silent || (!hrtf_before && !hrtf_now) {
                continue;
            }

            // Filter: a new one when the direction moved more than the threshold (or the
            // source moves between the far- and the near-field bank).
            let near = now.distance == Distance::Near;
            let stale = s
                .filter_dir
                .is_none_or(|f| dot(f, target) < self.cos_min_update)
                || s.filter_near != near;
            let old_audible = hrtf_before && hrtf_was_audible;
            // Where the new (in use from now) and old (fading out) filters come from.
            let (mut new, mut old, mut fade_in) = (NONE, NONE, false);
            let mut new_w = s.weights;
            if hrtf_now {
                if stale {
                    new_w = self
                        .hrtf
                        .mesh
                        .weights_hinted(now.dir, Some(target), &mut s.face);
                    if near {
                        for w in &mut new_w {
                            w.0 += self.measurements;
                        }
                    }
                    s.filter_dir = Some(target);
                    s.filter_near = near;
                    if old_audible && crossfade {
                        // A change. Within the old filter's mesh triangle, both filters
                        // are interpolated on the fly from the same three spectra (read
                        // once) and nothing is stored: a slow move costs less memory
                        // traffic than with the stored filter. Else the new filter is
                        // interpolated and stored in place of the old one (read first,
                        // bin by bin), so that the next partition's crossfade finds its
                        // old filter stored; the old one is the stored filter or
                        // interpolated from its weights.
                        if new_w.map(|w| w.0) == s.weights.map(|w| w.0) {
                            (new, old) = (COMPUTE, COMPUTE_SAME);
                        } else {
                            new = COMPUTE_STORE;
                            old = if s.stored { STORED } else { COMPUTE };
                        }
                        fade_in = true;
                    } else {
                        new = COMPUTE_STORE;
                        fade_in = !hrtf_before && crossfade;
                    }
                } else {
                    new = if s.stored { STORED } else { COMPUTE_STORE };
                    fade_in = !hrtf_before && crossfade;
                }
            } else if old_audible && crossfade {
                old = if s.stored { STORED } else { COMPUTE };
            }
            if new == NONE && old == NONE {
                continue;
            }
            any_b |= fade_in || old != NONE;
            let job = Job {
                mode: Mode { new, old, fade_in },
                fdl_re: &s.fdl_re,
                fdl_im: &s.fdl_im,
                head: s.head,
                silent_run: s.silent_run,
                parts,
                bins,
                spec_re: &self.spec_re,
                spec_im: &self.spec_im,
                new_w,
                old_w: s.weights,
                filt_re: &mut s.filt_re,
                filt_im: &mut s.filt_im,
                a_re: &mut self.a_re,
                a_im: &mut self.a_im,
                b_re: &mut self.b_re,
                b_im: &mut self.b_im,
            };
            convolve(job, self.kernels);
            match new {
                COMPUTE_STORE => s.stored = true,
                COMPUTE => s.stored = false,
                _ => {}
            }
            s.weights = new_w;
        }
        // The shared room: early reflections into `a` (or the room's own buses, then
        // into `td`), the late reverb into `td`. A room shared with other renderers is
        // fed their sends of this partition too, or is elsewhere: the sends go out.
        match self.room_role {
            RoomRole::Own => {}
            RoomRole::Export => {
                self.room_queue.push(&mut self.room.input);
                return self.finish_partition(b, any_b, j);
            }
            RoomRole::Import => self.room_queue.pop_into(&mut self.room.input),
        }
        let (er_re, er_im) = match &mut self.room_bus {
            None => (&mut self.a_re, &mut self.a_im),
            Some(bus) => (&mut bus.re, &mut bus.im),
        };
        self.room.process(
            &*self.fft,
            &mut self.fft_in,
            &mut self.fft_out,
            &mut self.fft_scratch,
            er_re,
            er_im,
            &mut self.td,
            self.avx,
        );
        if let Some(bus) = &mut self.room_bus
            && self.room.early_active()
        {
            bus.add_to(&mut self.td);
        }
        self.finish_partition(b, any_b, j);
    }

    /// The rest of [`BinauralRenderer::process_partition`] after the room: the inverse
    /// FFTs into the partition to play out, and the move to the next partition.
    fn finish_partition(&mut self, b: usize, any_b: bool, j: u64) {
        let tail = self.fft_len - b;
        // Inverse FFTs: `a` at full weight, `b` faded out over the partition.
        for ear in 0..2 {
            self.out[ear].copy_from_slice(&self.td[ear]);
            inverse_add(
                &*self.ifft,
                &self.a_re[ear],
                &self.a_im[ear],
                &mut self.ifft_in,
                &mut self.ifft_out,
                &mut self.ifft_scratch,
                &mut self.out[ear],
            );
        }
        if any_b {
            for ear in 0..2 {
                inverse(
                    &*self.ifft,
                    &self.b_re[ear],
                    &self.b_im[ear],
                    &mut self.ifft_in,
                    &mut self.ifft_out,
                    &mut self.ifft_scratch,
                );
                for ((o, &y), &w) in self.out[ear]
                    .iter_mut()
                    .zip(&self.ifft_out[tail..])
                    .zip(&self.fade_in)
                {
                    *o += (1.0 - w) * y;
                }
                self.b_re[ear].fill(0.0);
                self.b_im[ear].fill(0.0);
            }
        }
        self.half ^= 1;
        if self.restarting && (j as usize + 1) * b >= self.start_fill + self.restart_fade.len() {
            self.restarting = false;
        }
        self.partition_index += 1;
    }
}

/// [`HrtfSet::near_field_taps`] of the trimmed responses `irs` (measurement-major, then
/// ear, `taps` each) of a set whose peak is `peak`.
fn near_field_taps(
    irs: &[f32],
    directions: &[Direction],
    taps: usize,
    sample_rate: u32,
    peak: f32,
) -> usize {
    let near_field = near_field::NearField::shared();
    let mut ir = vec![0.0f32; 2 * taps];
    let mut longest = taps;
    for (meas, dir) in directions.iter().enumerate() {
        let shelves = near_field.ear_shelves(dir.to_unit());
        for (ear, shelf) in shelves.iter().enumerate() {
            let start = (meas * 2 + ear) * taps;
            ir.fill(0.0);
            ir[..taps].copy_from_slice(&irs[start..start + taps]);
            shelf.apply(sample_rate, &mut ir);
            if let Some(i) = ir
                .iter()
                .rposition(|v| v.abs() >= peak * NEAR_TAIL_THRESHOLD)
            {
                longest = longest.max(i + 1);
            }
        }
    }
    longest
}

/// Whether `n` has no prime factor above 3.
fn three_smooth(mut n: usize) -> bool {
    for f in [2, 3] {
        while n > 0 && n.is_multiple_of(f) {
            n /= f;
        }
    }
    n == 1
}

/// The length `N` of the sources' FFTs for one partition of `block` frames and filters of
/// `taps` taps (`taps ≤ block`): the shortest `N ≥ block + taps − 1` that is a multiple of 4
/// with `N / 2` a product of 2s and 3s, at most `2 · block`. Overlap-save needs no more.
/// `rustfft` transforms such lengths about as fast per point as powers of two (5s cost a
/// third more: 800 points 1.06 µs, 864 points 0.96 µs, 1024 points 1.15 µs on this
/// project's machine). For the KEMAR set in 1024-frame partitions (546 taps; 637 with
/// the near-field shelves' tails) that is 1728 points instead of 2048: 865 bins to
/// multiply instead of 1025.
fn fft_frames(block: usize, taps: usize) -> usize {
    let least = block + taps.clamp(1, block) - 1;
    (least.div_ceil(4)..)
        .map(|q| 4 * q)
        .find(|&n| n >= 2 * block || three_smooth(n / 2))
        .map_or(2 * block, |n| n.min(2 * block))
}

/// The room's early reflections when the sources' FFTs are not `2B` points long: summed
/// per ear in `2B`-point spectra of their own and inverse-transformed into the time-domain
/// buses.
struct RoomBus {
    ifft: Arc<dyn ComplexToReal<f32>>,
    re: [Vec<f32>; 2],
    im: [Vec<f32>; 2],
    ifft_in: Vec<Complex<f32>>,
    ifft_out: Vec<f32>,
    scratch: Vec<Complex<f32>>,
}

impl RoomBus {
    fn new(ifft: Arc<dyn ComplexToReal<f32>>) -> RoomBus {
        let bins = ifft.len() / 2 + 1;
        RoomBus {
            re: [vec![0.0; bins], vec![0.0; bins]],
            im: [vec![0.0; bins], vec![0.0; bins]],
            ifft_in: ifft.make_input_vec(),
            ifft_out: ifft.make_output_vec(),
            scratch: ifft.make_scratch_vec(),
            ifft,
        }
    }

    /// Adds the partition's early reflections to `td` (the last `B` samples of the
    /// inverse transform) and clears the spectra.
    fn add_to(&mut self, td: &mut [Vec<f32>; 2]) {
        for (ear, t) in td.iter_mut().enumerate() {
            inverse_add(
                &*self.ifft,
                &self.re[ear],
                &self.im[ear],
                &mut self.ifft_in,
                &mut self.ifft_out,
                &mut self.scratch,
                t,
            );
            self.re[ear].fill(0.0);
            self.im[ear].fill(0.0);
        }
    }
}

/// The forward real FFT of `N` samples (the previous partition's last `N − B`, then the
/// current `B`) into split spectra of `N / 2 + 1` bins: an `N / 2`-point complex FFT of
/// the samples taken in pairs, then the usual
/// split of that packed spectrum into the real signal's spectrum, with the operations of
/// `realfft`'s `RealToComplexEven` (same twiddles, same order, no fused multiply-add), so
/// the spectra are bit-identical to its output. Written here because `realfft`'s split runs
/// on interleaved complex values, one pair at a time, and then had to be copied out to the
/// split layout: it cost more than the complex FFT itself.
struct Forward {
    fft: Arc<dyn rustfft::Fft<f32>>,
    /// `e^{−2πik/2B} / 2` for `k = 1 … B/2 − 1` (index `k − 1`).
    twiddle_re: Vec<f32>,
    twiddle_im: Vec<f32>,
    /// The samples in pairs, and their (packed) spectrum.
    pairs: Vec<Complex<f32>>,
    packed: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl Forward {
    fn new(b: usize) -> Forward {
        let fft = rustfft::FftPlanner::<f32>::new().plan_fft_forward(b);
        let half_len = b / 2;
        let (twiddle_re, twiddle_im) = (1..half_len)
            .map(|k| {
                let angle = -2.0 * PI / (2 * b) as f64 * k as f64;
                (angle.cos() as f32 * 0.5, angle.sin() as f32 * 0.5)
            })
            .unzip();
        Forward {
            pairs: vec![Complex::new(0.0, 0.0); b],
            packed: vec![Complex::new(0.0, 0.0); b],
            scratch: vec![Complex::new(0.0, 0.0); fft.get_outofplace_scratch_len()],
            fft,
            twiddle_re,
            twiddle_im,
        }
    }

    /// The spectrum of `first` followed by `second` (`N` samples in all, both of even
    /// length) into `re`/`im`.
    fn process(
        &mut self,
        first: &[f32],
        second: &[f32],
        re: &mut [f32],
        im: &mut [f32],
        kernels: Kernels,
    ) {
        let (lo, hi) = self.pairs.split_at_mut(first.len() / 2);
        lo.copy_from_slice(as_pairs(first));
        hi.copy_from_slice(as_pairs(second));
        // Out of place, as `realfft` runs it (the same algorithm, the same results).
        self.fft.process_outofplace_with_scratch(
            &mut self.pairs,
            &mut self.packed,
            &mut self.scratch,
        );
        let (z, tw_re, tw_im) = (&self.packed, &self.twiddle_re, &self.twiddle_im);
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        match kernels {
            // SAFETY: `kernels` names a build only when the CPU reported its features
            // ([`Kernels::detect`]).
            Kernels::Avx512 => return unsafe { split_spectrum_avx512(z, tw_re, tw_im, re, im) },
            Kernels::Avx | Kernels::Fma => {
                return unsafe { split_spectrum_avx(z, tw_re, tw_im, re, im) };
            }
            Kernels::Portable => {}
        }
        let _ = kernels;
        split_spectrum(z, tw_re, tw_im, re, im);
    }
}

/// `x` read as complex values, its samples taken in pairs (`re`, `im`).
fn as_pairs(x: &[f32]) -> &[Complex<f32>] {
    const _: () = assert!(
        size_of::<Complex<f32>>() == 2 * size_of::<f32>()
            && align_of::<Complex<f32>>() == align_of::<f32>()
    );
    // SAFETY: `Complex<f32>` is `#[repr(C)] { re: f32, im: f32 }` (size and alignment
    // checked above): `x.len() / 2` of them fit in `x`'s memory, which stays borrowed.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len() / 2) }
}

/// Element-wise kernels of the sends, the bypass and the room, each with an AVX build of
/// the same arithmetic (plain multiplies and adds: identical results), chosen by `avx`
/// ([`has_avx`], detected at construction).
macro_rules! with_avx {
    ($(#[$doc:meta])* fn $name:ident / $avx:ident ($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty,)* avx: bool) {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            if avx {
                #[target_feature(enable = "avx")]
                #[allow(clippy::too_many_arguments)]
                fn $avx($($arg: $ty),*) $body
                // SAFETY: `avx` is only true when the CPU reported AVX.
                unsafe { $avx($($arg),*) };
                return;
            }
            let _ = avx;
            $body
        }
    };
}

with_avx! {
    /// `dst += g · x`: a send at a constant gain.
    fn add_scaled / add_scaled_avx(dst: &mut [f32], x: &[f32], g: f32) {
        for (d, &xv) in dst.iter_mut().zip(x) {
            *d += g * xv;
        }
    }
}

with_avx! {
    /// `dst += (g0 + (g1 − g0) · w) · x`: a gain ramped by the fade-in window `w`.
    fn add_ramped / add_ramped_avx(dst: &mut [f32], x: &[f32], g0: f32, g1: f32, w: &[f32]) {
        for ((d, &xv), &w) in dst.iter_mut().zip(x).zip(w) {
            *d += (g0 + (g1 - g0) * w) * xv;
        }
    }
}

with_avx! {
    /// `a += x · h` over split complex spectra (the room's early reflections).
    fn add_product / add_product_avx(
        ar: &mut [f32],
        ai: &mut [f32],
        xr: &[f32],
        xi: &[f32],
        hr: &[f32],
        hi: &[f32]
    ) {
        let n = ar.len();
        let (ai, xr, xi, hr, hi) = (&mut ai[..n], &xr[..n], &xi[..n], &hr[..n], &hi[..n]);
        for k in 0..n {
            ar[k] += xr[k] * hr[k] - xi[k] * hi[k];
            ai[k] += xr[k] * hi[k] + xi[k] * hr[k];
        }
    }
}

/// [`split_spectrum`] compiled for AVX-512F (element-wise arithmetic only: identical
/// results).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx,avx512f")]
fn split_spectrum_avx512(
    z: &[Complex<f32>],
    tw_re: &[f32],
    tw_im: &[f32],
    re: &mut [f32],
    im: &mut [f32],
) {
    split_spectrum(z, tw_re, tw_im, re, im);
}

/// [`split_spectrum`] compiled for AVX (element-wise arithmetic only: identical results).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx")]
fn split_spectrum_avx(
    z: &[Complex<f32>],
    tw_re: &[f32],
    tw_im: &[f32],
    re: &mut [f32],
    im: &mut [f32],
) {
    split_spectrum(z, tw_re, tw_im, re, im);
}

/// The real signal's spectrum (`B + 1` bins, split) from the packed `B`-point spectrum `z`
/// of its sample pairs; `realfft` `RealToComplexEven`'s arithmetic, operation for operation.
#[inline(always)]
fn split_spectrum(
    z: &[Complex<f32>],
    tw_re: &[f32],
    tw_im: &[f32],
    re: &mut [f32],
    im: &mut [f32],
) {
    let b = z.len();
    let h = b / 2;
    let (re, im) = (&mut re[..=b], &mut im[..=b]);
    re[0] = z[0].re + z[0].im;
    im[0] = 0.0;
    re[b] = z[0].re - z[0].im;
    im[b] = 0.0;
    re[h] = z[h].re;
    im[h] = -z[h].im;
    // Bins 1 … h−1 from `z[k]` and `z[b − k]`; bins b−1 … h+1 (written backwards).
    let (re_lo, re_hi) = re[1..b].split_at_mut(h - 1);
    let (im_lo, im_hi) = im[1..b].split_at_mut(h - 1);
    let (z_lo, z_hi) = z[1..b].split_at(h - 1);
    let (re_hi, im_hi, z_hi) = (&mut re_hi[1..], &mut im_hi[1..], &z_hi[1..]);
    let n = h - 1;
    let (tw_re, tw_im) = (&tw_re[..n], &tw_im[..n]);
    let (re_hi, im_hi, z_hi) = (&mut re_hi[..n], &mut im_hi[..n], &z_hi[..n]);
    // The upper half reversed and split first (in `re_hi`/`im_hi`, overwritten below), so
    // that the arithmetic runs forwards on split arrays (vectorised).
    for ((r, i), c) in re_hi
        .iter_mut()
        .zip(im_hi.iter_mut())
        .zip(z_hi.iter().rev())
    {
        *r = c.re;
        *i = c.im;
    }
    for k in 0..n {
        let a = z_lo[k];
        let (c_re, c_im) = (re_hi[k], im_hi[k]);
        let (t_re, t_im) = (tw_re[k], tw_im[k]);
        let (sum_re, sum_im) = (a.re + c_re, a.im + c_im);
        let (diff_re, diff_im) = (a.re - c_re, a.im - c_im);
        let half_sum_re = 0.5 * sum_re;
        let half_diff_im = 0.5 * diff_im;
        let out_re = sum_im * t_re + diff_re * t_im;
        let out_im = sum_im * t_im - diff_re * t_re;
        re_lo[k] = half_sum_re + out_re;
        im_lo[k] = half_diff_im + out_im;
        re_hi[k] = half_sum_re - out_re;
        im_hi[k] = out_im - half_diff_im;
    }
    re_hi.reverse();
    im_hi.reverse();
}

// Filter sources of a convolution step (const generic parameters of [`step`]).
/// No filter.
const NONE: u8 = 0;
/// The source's stored filter.
const STORED: u8 = 1;
/// Interpolated on the fly from three measured spectra, not stored (as the new filter:
/// the old one is then [`COMPUTE_SAME`], from the same spectra).
const COMPUTE: u8 = 2;
/// (New filter only) interpolated on the fly and stored (after the stored old filter's
/// bin is read).
const COMPUTE_STORE: u8 = 3;
/// (Old filter only) interpolated on the fly from the new filter's three spectra.
const COMPUTE_SAME: u8 = 4;

/// What one source contributes in a partition: `a += X·H_new`; while crossfading
/// `b += X·H_old − X·H_new` (old filter faded out, new faded in), or `b −= X·H_new` (fade
/// in from nothing) or `b += X·H_old` (fade out to nothing).
#[derive(Debug, Clone, Copy)]
struct Mode {
    new: u8,
    old: u8,
    fade_in: bool,
}

/// One source's convolution for a partition: its delay line, the filters and the buses.
struct Job<'a> {
    mode: Mode,
    fdl_re: &'a [f32],
    fdl_im: &'a [f32],
    head: usize,
    silent_run: usize,
    parts: usize,
    bins: usize,
    spec_re: &'a [f32],
    spec_im: &'a [f32],
    new_w: Weights,
    old_w: Weights,
    filt_re: &'a mut [f32],
    filt_im: &'a mut [f32],
    a_re: &'a mut [Vec<f32>; 2],
    a_im: &'a mut [Vec<f32>; 2],
    b_re: &'a mut [Vec<f32>; 2],
    b_im: &'a mut [Vec<f32>; 2],
}

/// The builds of the convolution kernels ([`convolve`]) and of the forward FFT's split
/// ([`split_spectrum`]): the same source compiled for what the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernels {
    /// Any CPU.
    Portable,
    /// AVX: the portable build's results, bit for bit.
    Avx,
    /// AVX and FMA: fused multiply-adds in the convolution (rounding differs from the
    /// portable build's, see [`convolve`]).
    Fma,
    /// AVX-512F, AVX and FMA: the FMA build's arithmetic on 16 lanes instead of 8. Every
    /// kernel is element-wise (no sums across lanes), so its results are the FMA build's,
    /// bit for bit (test `avx512_kernels_equal_fma_kernels`); it runs fewer instructions.
    Avx512,
}

impl Kernels {
    /// The fastest build the CPU runs.
    fn detect() -> Kernels {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx") && has!("fma") {
                return if has!("avx512f") {
                    Kernels::Avx512
                } else {
                    Kernels::Fma
                };
            }
            if has!("avx") {
                return Kernels::Avx;
            }
        }
        Kernels::Portable
    }
}

/// Runs a job with the build of the kernels in `kernels`, chosen at construction by
/// [`Kernels::detect`] (or in tests, among those the CPU has).
///
/// The FMA build (and the AVX-512 build, which is the same arithmetic) rounds differently: each product is added without rounding it first, and
/// a crossfade accumulates `X·(H_old − H_new)` instead of `X·H_old − X·H_new` (one complex
/// product instead of two). Its output differs from the portable build's by float
/// rounding only (test `fma_kernels_match_portable_kernels`: at least 100 dB below the
/// signal; 128 moving sources: −123 dB RMS, at most 3.6e-6 at a 5.4 peak); a renderer always uses
/// the same build, so its output stays identical whatever the block sizes, and `halo
/// render` and `halo play` on one machine deliver the same frames.
fn convolve(job: Job<'_>, kernels: Kernels) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    match kernels {
        // SAFETY (each build): `kernels` names a build only when the CPU reported its
        // features ([`Kernels::detect`]).
        Kernels::Avx512 => return unsafe { convolve_avx512(job) },
        Kernels::Fma => return unsafe { convolve_fma(job) },
        Kernels::Avx => return unsafe { convolve_avx(job) },
        Kernels::Portable => {}
    }
    let _ = kernels;
    convolve_portable::<false>(job);
}

/// The FMA kernels compiled for AVX-512F (16 lanes).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx,fma,avx512f")]
fn convolve_avx512(job: Job<'_>) {
    convolve_portable::<true>(job);
}

/// The kernels compiled for AVX and FMA, with fused multiply-adds.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx,fma")]
fn convolve_fma(job: Job<'_>) {
    convolve_portable::<true>(job);
}

/// The kernels compiled for AVX: element-wise float arithmetic only (no fused
/// multiply-add, no reordered sums), so the results equal the portable build's exactly.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx")]
fn convolve_avx(job: Job<'_>) {
    convolve_portable::<false>(job);
}

/// `Σ_p X[j − p] · H[p]` for both ears, with the filters and buses given by `job.mode`;
/// `FUSED`: with fused multiply-adds (only in a build for a CPU that has them).
#[inline(always)]
fn convolve_portable<const FUSED: bool>(job: Job<'_>) {
    let Job {
        mode,
        fdl_re,
        fdl_im,
        head,
        silent_run,
        parts,
        bins,
        spec_re,
        spec_im,
        new_w,
        old_w,
        filt_re,
        filt_im,
        a_re,
        a_im,
        b_re,
        b_im,
    } = job;
    let per_meas = 2 * parts * bins;
    // A measurement with weight 0 (a direction on a triangle's edge, e.g. on the KEMAR
    // horizontal ring) is read at the address of one with weight > 0: `0 · S` is 0 either
    // way, and the kernel then reads two measurements' spectra from memory, not three.
    let alias = |w: Weights| {
        let lead = w.iter().find(|x| x.1 != 0.0).map_or(w[0].0, |x| x.0);
        w.map(|(i, g)| (if g == 0.0 { lead } else { i }, g))
    };
    let (new_w, old_w) = (alias(new_w), alias(old_w));
    for ear in 0..2 {
        for p in 0..parts {
            let h = (ear * parts + p) * bins;
            let range = h..h + bins;
            let spectra = |w: Weights| Spectra {
                re: w.map(|(i, _)| &spec_re[i * per_meas + h..i * per_meas + h + bins]),
                im: w.map(|(i, _)| &spec_im[i * per_meas + h..i * per_meas + h + bins]),
                g: w.map(|(_, g)| g),
            };
            let (fr, fi) = (&mut filt_re[range.clone()], &mut filt_im[range]);
            if silent_run > p {
                // Slots j … j−p are silent only if the run covers them: the known-zero
                // slot contributes nothing, but a filter to be stored still is.
                if mode.new == COMPUTE_STORE {
                    let sp = spectra(new_w);
                    weighted_sum3::<FUSED>(fr, sp.re, sp.g);
                    weighted_sum3::<FUSED>(fi, sp.im, sp.g);
                }
                continue;
            }
            // Slot `head − p` of the ring (p < parts), without a division.
            let slot = if head >= p {
                head - p
            } else {
                head + parts - p
            } * bins;
            let x = (&fdl_re[slot..slot + bins], &fdl_im[slot..slot + bins]);
            let (nw, ow) = (spectra(new_w), spectra(old_w));
            let (ar, ai) = (&mut a_re[ear][..], &mut a_im[ear][..]);
            let (br, bi) = (&mut b_re[ear][..], &mut b_im[ear][..]);
            macro_rules! dispatch {
                ($(($n:ident, $o:ident, $f:literal)),*) => {
                    match (mode.new, mode.old, mode.fade_in) {
                        $(($n, $o, $f) => {
                            step::<$n, $o, $f, FUSED>(x, &nw, &ow, fr, fi, ar, ai, br, bi)
                        })*
                        _ => {}
                    }
                };
            }
            dispatch!(
                (STORED, NONE, false),
                (STORED, NONE, true),
                (COMPUTE_STORE, NONE, false),
                (COMPUTE_STORE, NONE, true),
                (COMPUTE_STORE, STORED, true),
                (COMPUTE_STORE, COMPUTE, true),
                (COMPUTE, COMPUTE_SAME, true),
                (NONE, STORED, false),
                (NONE, COMPUTE, false)
            );
        }
    }
}

/// Three measured spectra (one ear and partition) and their interpolation weights.
struct Spectra<'a> {
    re: [&'a [f32]; 3],
    im: [&'a [f32]; 3],
    g: [f32; 3],
}

/// One ear and partition of a source, over all bins in one pass: the filters (stored, or
/// interpolated exactly as [`weighted_sum3`] does), complex products with the input
/// spectrum `x`, accumulated into the buses `a` and `b` as [`Mode`] describes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<const NEW: u8, const OLD: u8, const FADE_IN: bool, const FUSED: bool>(
    x: (&[f32], &[f32]),
    new: &Spectra<'_>,
    old: &Spectra<'_>,
    fr: &mut [f32],
    fi: &mut [f32],
    ar: &mut [f32],
    ai: &mut [f32],
    br: &mut [f32],
    bi: &mut [f32],
) {
    let n = ar.len();
    let (xr, xi) = (&x.0[..n], &x.1[..n]);
    let (fr, fi, ai, br, bi) = (
        &mut fr[..n],
        &mut fi[..n],
        &mut ai[..n],
        &mut br[..n],
        &mut bi[..n],
    );
    let [nr0, nr1, nr2] = new.re.map(|s| &s[..n]);
    let [ni0, ni1, ni2] = new.im.map(|s| &s[..n]);
    let [or0, or1, or2] = old.re.map(|s| &s[..n]);
    let [oi0, oi1, oi2] = old.im.map(|s| &s[..n]);
    let [g0, g1, g2] = new.g;
    let [h0, h1, h2] = old.g;
    for k in 0..n {
        let (x_r, x_i) = (xr[k], xi[k]);
        // The stored old filter's bin, read before the new filter may overwrite it.
        let (s_r, s_i) = if OLD == STORED {
            (fr[k], fi[k])
        } else {
            (0.0, 0.0)
        };
        if FUSED {
            // The same sums with fused multiply-adds; the crossfade bus takes
            // `X·(H_old − H_new)`, one complex product.
            let (h_r, h_i) = if NEW == NONE {
                (0.0, 0.0)
            } else if NEW == STORED {
                (fr[k], fi[k])
            } else {
                let r = g2.mul_add(nr2[k], g1.mul_add(nr1[k], g0 * nr0[k]));
                let i = g2.mul_add(ni2[k], g1.mul_add(ni1[k], g0 * ni0[k]));
                if NEW == COMPUTE_STORE {
                    fr[k] = r;
                    fi[k] = i;
                }
                (r, i)
            };
            if NEW != NONE {
                ar[k] = (-x_i).mul_add(h_i, x_r.mul_add(h_r, ar[k]));
                ai[k] = x_i.mul_add(h_r, x_r.mul_add(h_i, ai[k]));
            }
            if OLD != NONE {
                let (o_r, o_i) = if OLD == STORED {
                    (s_r, s_i)
                } else if OLD == COMPUTE_SAME {
                    (
                        h2.mul_add(nr2[k], h1.mul_add(nr1[k], h0 * nr0[k])),
                        h2.mul_add(ni2[k], h1.mul_add(ni1[k], h0 * ni0[k])),
                    )
                } else {
                    (
                        h2.mul_add(or2[k], h1.mul_add(or1[k], h0 * or0[k])),
                        h2.mul_add(oi2[k], h1.mul_add(oi1[k], h0 * oi0[k])),
                    )
                };
                let (d_r, d_i) = (o_r - h_r, o_i - h_i);
                br[k] = (-x_i).mul_add(d_i, x_r.mul_add(d_r, br[k]));
                bi[k] = x_i.mul_add(d_r, x_r.mul_add(d_i, bi[k]));
            } else if FADE_IN {
                br[k] = x_i.mul_add(h_i, (-x_r).mul_add(h_r, br[k]));
                bi[k] = (-x_i).mul_add(h_r, (-x_r).mul_add(h_i, bi[k]));
            }
            continue;
        }
        let (y_r, y_i) = if NEW == NONE {
            (0.0, 0.0)
        } else {
            let (h_r, h_i) = if NEW == STORED {
                (fr[k], fi[k])
            } else {
                let r = g0 * nr0[k] + g1 * nr1[k] + g2 * nr2[k];
                let i = g0 * ni0[k] + g1 * ni1[k] + g2 * ni2[k];
                if NEW == COMPUTE_STORE {
                    fr[k] = r;
                    fi[k] = i;
                }
                (r, i)
            };
            let y = (x_r * h_r - x_i * h_i, x_r * h_i + x_i * h_r);
            ar[k] += y.0;
            ai[k] += y.1;
            y
        };
        if OLD != NONE {
            let (o_r, o_i) = if OLD == STORED {
                (s_r, s_i)
            } else if OLD == COMPUTE_SAME {
                (
                    h0 * nr0[k] + h1 * nr1[k] + h2 * nr2[k],
                    h0 * ni0[k] + h1 * ni1[k] + h2 * ni2[k],
                )
            } else {
                (
                    h0 * or0[k] + h1 * or1[k] + h2 * or2[k],
                    h0 * oi0[k] + h1 * oi1[k] + h2 * oi2[k],
                )
            };
            br[k] += (x_r * o_r - x_i * o_i) - y_r;
            bi[k] += (x_r * o_i + x_i * o_r) - y_i;
        } else if FADE_IN {
            br[k] -= y_r;
            bi[k] -= y_i;
        }
    }
}

/// `dst = Σ g[i] · src[i]` in one pass (the interpolated filter spectrum), rounded as
/// [`step`] rounds it.
#[inline(always)]
fn weighted_sum3<const FUSED: bool>(dst: &mut [f32], src: [&[f32]; 3], g: [f32; 3]) {
    let n = dst.len();
    let (a, b, c) = (&src[0][..n], &src[1][..n], &src[2][..n]);
    for k in 0..n {
        dst[k] = if FUSED {
            g[2].mul_add(c[k], g[1].mul_add(b[k], g[0] * a[k]))
        } else {
            g[0] * a[k] + g[1] * b[k] + g[2] * c[k]
        };
    }
}

fn inverse(
    ifft: &dyn ComplexToReal<f32>,
    re: &[f32],
    im: &[f32],
    buf: &mut [Complex<f32>],
    out: &mut [f32],
    scratch: &mut [Complex<f32>],
) {
    for ((c, &r), &i) in buf.iter_mut().zip(re).zip(im) {
        *c = Complex::new(r, i);
    }
    if let Some(c) = buf.first_mut() {
        c.im = 0.0;
    }
    if let Some(c) = buf.last_mut() {
        c.im = 0.0;
    }
    let _ = ifft.process_with_scratch(buf, out, scratch);
}

/// [`inverse`], then adds the transform's last `dst.len()` samples (overlap-save: the
/// partition's output) to `dst`.
fn inverse_add(
    ifft: &dyn ComplexToReal<f32>,
    re: &[f32],
    im: &[f32],
    buf: &mut [Complex<f32>],
    out: &mut [f32],
    scratch: &mut [Complex<f32>],
    dst: &mut [f32],
) {
    inverse(ifft, re, im, buf, out, scratch);
    let tail = out.len() - dst.len();
    for (o, &y) in dst.iter_mut().zip(&out[tail..]) {
        *o += y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-partition FFT length is the least length that holds the partition and the
    /// filter (overlap-save) among multiples of 4 whose half has no prime factor above 3,
    /// found here by brute force, or `2B`; the default set at 48 kHz in 1024-frame
    /// partitions (546 taps, 637 with the near-field shelves' tails) takes 1728 points, and
    /// the 256-frame renderer (three partitions) keeps `2B`.
    #[test]
    fn one_partition_ffts_are_the_shortest_fast_length() {
        let three_smooth = |mut n: usize| {
            while n.is_multiple_of(2) {
                n /= 2;
            }
            while n.is_multiple_of(3) {
                n /= 3;
            }
            n == 1
        };
        for block in [16usize, 64, 256, 1024, 2048, 8192] {
            for taps in (1..=block).step_by((block / 61).max(1)).chain([block]) {
                let want = (block + taps - 1..2 * block)
                    .find(|&n| n.is_multiple_of(4) && three_smooth(n / 2))
                    .unwrap_or(2 * block);
                assert_eq!(fft_frames(block, taps), want, "{block} frames, {taps} taps");
            }
        }
        let set = Arc::new(HrtfSet::default_set(48_000).expect("default set"));
        let offline = BinauralConfig::new(48_000, 2).offline(&set);
        let r = BinauralRenderer::new(Arc::clone(&set), offline).expect("offline renderer");
        assert_eq!((r.fft_len, r.bins, r.parts), (1728, 865, 1));
        assert!(r.room_bus.is_some());
        let shared = r.with_sources(5).expect("shared spectra");
        assert_eq!((shared.fft_len, shared.bins), (1728, 865));
        let plain = BinauralConfig::new(48_000, 2);
        let r256 = BinauralRenderer::new(Arc::clone(&set), plain.clone()).expect("256");
        assert_eq!((r256.fft_len, r256.bins, r256.parts), (512, 257, 3));
        assert!(r256.room_bus.is_none());
        let live = BinauralRenderer::new(Arc::clone(&set), plain.live(&set)).expect("live");
        assert_eq!(
            (live.block, live.fft_len, live.bins, live.parts),
            (324, 648, 325, 2)
        );
        assert!(live.room_bus.is_none());
    }

    /// The live partition is, among even lengths of 256 … 384 frames with no prime factor
    /// above 3 (found by brute force), the shortest that needs no more partitions than the
    /// longest does, at the rates a session is rendered at; for KEMAR at 48 kHz the
    /// near-field bank's 637 taps (546 measured) make it 324.
    #[test]
    fn live_partitions_are_the_fewest_and_shortest() {
        for rate in [44_100, 48_000, 88_200, 96_000] {
            let set = HrtfSet::default_set(rate).expect("default set");
            let taps = set.near_field_taps();
            assert!(taps >= set.len_taps() && taps <= 2 * set.len_taps());
            let valid: Vec<usize> = (256..=LIVE_MAX_PARTITION_FRAMES)
                .filter(|&b| {
                    b % 2 == 0 && {
                        let mut n = b;
                        while n % 2 == 0 {
                            n /= 2;
                        }
                        while n % 3 == 0 {
                            n /= 3;
                        }
                        n == 1
                    }
                })
                .collect();
            let fewest = valid.iter().map(|&b| taps.div_ceil(b)).min().unwrap();
            let want = *valid.iter().find(|&&b| taps.div_ceil(b) == fewest).unwrap();
            assert_eq!(live_partition_frames(&set), want, "{rate} Hz, {taps} taps");
            if rate == 48_000 {
                assert_eq!((set.len_taps(), taps, want), (546, 637, 324));
            }
        }
    }

    /// The lookup grid of the default set made with the sum formula lists the same faces
    /// in every cell as made with a cosine per cell and face, and so does a mesh of
    /// points spread irregularly over the sphere.
    #[test]
    fn grid_from_the_sum_formula_is_the_grid_from_cosines() {
        let set = HrtfSet::default_set(48_000).expect("default set");
        let mesh = &set.mesh;
        let direct = build_grid_with(&mesh.points, &mesh.faces, |r, rc, _, _| (r + rc).cos());
        assert_eq!((mesh.cell_start.clone(), mesh.cell_faces.clone()), direct);
        let dirs: Vec<Direction> = (0..300)
            .map(|i| {
                let i = i as f64;
                Direction::new((i * 137.508) % 360.0 - 180.0, (i * 0.6).sin() * 89.0)
            })
            .collect();
        let mesh = Mesh::new(&dirs);
        let direct = build_grid_with(&mesh.points, &mesh.faces, |r, rc, _, _| (r + rc).cos());
        assert_eq!((mesh.cell_start.clone(), mesh.cell_faces.clone()), direct);
        assert!(mesh.faces.len() > 500, "{} faces", mesh.faces.len());
    }

    #[test]
    fn layout_checks_name_each_problem() {
        let ok = check_layout("f.sofa", "SimpleFreeFieldHRIR", "FIR", 10, 2, 64, 1280, 30);
        assert!(ok.is_ok());
        let e = check_layout("f.sofa", "GeneralFIR", "FIR", 10, 2, 64, 1280, 30);
        assert!(
            matches!(e, Err(BinauralError::WrongConvention { ref found, .. }) if found == "GeneralFIR")
        );
        let e = check_layout("f.sofa", "SimpleFreeFieldHRIR", "TF", 10, 2, 64, 1280, 30);
        assert!(matches!(e, Err(BinauralError::WrongConvention { .. })));
        let e = check_layout("f.sofa", "SimpleFreeFieldHRIR", "FIR", 0, 2, 64, 0, 0);
        assert!(matches!(
            e,
            Err(BinauralError::EmptySet {
                measurements: 0,
                ..
            })
        ));
        let e = check_layout("f.sofa", "SimpleFreeFieldHRIR", "FIR", 10, 2, 0, 0, 30);
        assert!(matches!(e, Err(BinauralError::EmptySet { taps: 0, .. })));
        let e = check_layout("f.sofa", "SimpleFreeFieldHRIR", "FIR", 10, 1, 64, 640, 30);
        assert!(matches!(
            e,
            Err(BinauralError::NotTwoReceivers { receivers: 1, .. })
        ));
        let e = check_layout("f.sofa", "SimpleFreeFieldHRIR", "FIR", 10, 2, 64, 1000, 30);
        assert!(matches!(e, Err(BinauralError::Corrupt { .. })));
        let msg = check_layout("x.sofa", "GeneralFIR", "FIR", 1, 2, 1, 2, 3)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("x.sofa") && msg.contains("SimpleFreeFieldHRIR"),
            "{msg}"
        );
    }

    #[test]
    fn hull_of_octahedron_has_eight_faces_and_exact_weights() {
        let dirs = [
            Direction::new(0.0, 0.0),
            Direction::new(90.0, 0.0),
            Direction::new(180.0, 0.0),
            Direction::new(-90.0, 0.0),
            Direction::new(0.0, 90.0),
            Direction::new(0.0, -90.0),
        ];
        let mesh = Mesh::new(&dirs);
        assert_eq!(mesh.faces.len(), 8);
        // A measured direction gets weight 1 on itself.
        let w = mesh.weights(Direction::new(90.0, 0.0));
        let on_self: f32 = w.iter().filter(|x| x.0 == 1).map(|x| x.1).sum();
        assert!((on_self - 1.0).abs() < 1e-6, "{w:?}");
        // Halfway between front and left: equal weights on both, nothing on others.
        let w = mesh.weights(Direction::new(45.0, 0.0));
        let get = |i: usize| w.iter().filter(|x| x.0 == i).map(|x| x.1).sum::<f32>();
        assert!(
            (get(0) - 0.5).abs() < 1e-6 && (get(1) - 0.5).abs() < 1e-6,
            "{w:?}"
        );
        // Centre of a face: a third each.
        let w = mesh.weights(Direction::from_vector([-1.0, 1.0, 1.0]));
        for i in [0, 1, 4] {
            assert!((get_w(&w, i) - 1.0 / 3.0).abs() < 1e-6, "{w:?}");
        }
    }

    fn get_w(w: &Weights, i: usize) -> f32 {
        w.iter().filter(|x| x.0 == i).map(|x| x.1).sum()
    }

    /// Renders moving, static, bypassed, switched and intermittently silent sources with
    /// irregular blocks, on the given kernel build.
    fn render_mixed(kernels: Kernels) -> Vec<f32> {
        let set = Arc::new(HrtfSet::default_set(48_000).unwrap());
        let n = 6;
        let mut r = BinauralRenderer::new(set, BinauralConfig::new(48_000, n)).unwrap();
        r.avx = kernels != Kernels::Portable;
        r.kernels = kernels;
        // The room's sends and early reflections run through the element-wise kernels too.
        r.set_distance(1, Distance::Mid);
        r.set_distance(2, Distance::Far);
        r.set_distance(5, Distance::Near);
        let len = 12_000;
        let mut out = Vec::new();
        let (mut l, mut rr) = (vec![0.0f32; 100], vec![0.0f32; 100]);
        let (mut pos, mut k) = (0, 0);
        while pos < len {
            let m = [37usize, 64, 100, 1][k % 4].min(len - pos);
            k += 1;
            for i in 0..n {
                if i != 0 {
                    let az = 40.0 * i as f64 + pos as f64 * 0.002 * i as f64;
                    r.set_direction(i, Direction::new(az, -20.0 + 8.0 * i as f64));
                }
            }
            r.set_bypass(3, ((pos / 2000) % 2 == 1).then_some([0.4, 0.6]));
            r.set_active(4, (pos / 3000) % 2 == 0);
            let ins: Vec<Vec<f32>> = (0..n)
                .map(|i| {
                    (pos..pos + m)
                        .map(|t| {
                            if i == 5 && (t / 1500) % 2 == 1 {
                                0.0
                            } else {
                                ((t * (i + 3)) as f32 * 0.013).sin() * 0.1
                            }
                        })
                        .collect()
                })
                .collect();
            r.process(&ins, &mut l[..m], &mut rr[..m]);
            out.extend_from_slice(&l[..m]);
            out.extend_from_slice(&rr[..m]);
            pos += m;
        }
        out
    }

    #[test]
    fn avx_kernels_equal_portable_kernels() {
        let portable = render_mixed(Kernels::Portable);
        assert!(portable.iter().any(|&v| v.abs() > 1e-3));
        if has_avx() {
            let fast = render_mixed(Kernels::Avx);
            // Element-wise arithmetic in the same order: bit-identical, not merely close.
            assert!(portable == fast, "AVX and portable kernels differ");
        }
    }

    #[test]
    fn fma_kernels_match_portable_kernels() {
        if !matches!(Kernels::detect(), Kernels::Fma | Kernels::Avx512) {
            println!("skipped: the CPU has no AVX + FMA");
            return;
        }
        let portable = render_mixed(Kernels::Portable);
        let fused = render_mixed(Kernels::Fma);
        assert_ne!(portable, fused, "the FMA build did not run");
        // Rounding only: the difference at least 100 dB below the signal (RMS), and no
        // sample off by more than 1e-5 of the peak.
        let sq = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>();
        let signal = sq(&mut portable.iter().map(|&x| f64::from(x)));
        let diff = sq(&mut portable.iter().zip(&fused).map(|(&a, &b)| f64::from(a - b)));
        let ratio_db = 10.0 * (diff / signal).log10();
        let peak = portable.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let worst = portable
            .iter()
            .zip(&fused)
            .fold(0.0f32, |m, (&a, &b)| m.max((a - b).abs()));
        println!("FMA against portable: {ratio_db:.1} dB RMS, worst {worst:e} (peak {peak})");
        assert!(ratio_db < -100.0, "{ratio_db} dB");
        assert!(worst <= 1e-5 * peak, "{worst} of {peak}");
    }

    #[test]
    fn avx512_kernels_equal_fma_kernels() {
        if Kernels::detect() != Kernels::Avx512 {
            println!("skipped: the CPU has no AVX-512F");
            return;
        }
        let fused = render_mixed(Kernels::Fma);
        let wide = render_mixed(Kernels::Avx512);
        assert!(fused.iter().any(|&v| v.abs() > 1e-3));
        // Element-wise arithmetic, 16 lanes instead of 8: bit-identical.
        assert!(fused == wide, "AVX-512 and FMA kernels differ");
    }

    #[test]
    fn hinted_weights_equal_grid_weights() {
        let set = HrtfSet::default_set(48_000).unwrap();
        let mesh = &set.mesh;
        let mut hint = 0;
        for k in 0..5000 {
            // A slowly moving direction (hint mostly right), with jumps and odd hints.
            let d = if k % 50 == 0 {
                hint = [usize::MAX, 7, 100_000][k % 3];
                Direction::new(k as f64 * 71.3, -80.0 + (k as f64 * 3.1) % 170.0)
            } else {
                Direction::new(k as f64 * 0.7, -50.0 + (k as f64 * 0.03) % 140.0)
            };
            let want = mesh.weights(d);
            assert_eq!(mesh.weights_hinted(d, Some(d.to_unit()), &mut hint), want);
            assert_eq!(mesh.weights_hinted(d, None, &mut hint), want);
        }
    }

    #[test]
    fn hinted_weights_on_edges_equal_grid_weights() {
        let set = HrtfSet::default_set(48_000).unwrap();
        let mesh = &set.mesh;
        let mut on_edge = 0;
        // Points along every edge of the mesh (the horizontal ring's are on KEMAR's
        // measurement ring), hinted from either triangle of the edge and from far away.
        for (f, face) in mesh.faces.iter().enumerate() {
            for e in 0..3 {
                let (a, b) = (mesh.points[face[e]], mesh.points[face[(e + 1) % 3]]);
                for t in [1e-9, 1e-7, 1e-3, 0.1, 0.25, 0.5, 0.7, 0.999, 1.0 - 1e-7] {
                    let v = [0, 1, 2].map(|i| a[i] * (1.0 - t) + b[i] * t);
                    let d = Direction::from_vector(v);
                    let u = d.to_unit();
                    let want = mesh.weights(d);
                    let across = mesh.neighbours[f][(e + 2) % 3] as usize;
                    for start in [f, across, (f + 500) % mesh.faces.len()] {
                        let mut hint = start;
                        assert_eq!(
                            mesh.weights_hinted(d, Some(u), &mut hint),
                            want,
                            "{d:?} from {start}"
                        );
                    }
                    on_edge += usize::from(want.iter().any(|w| w.1 == 0.0));
                }
            }
        }
        // The horizontal ring: every azimuth step of a source at elevation 0.
        for k in 0..3600 {
            let d = Direction::new(k as f64 * 0.1 - 180.0, 0.0);
            let want = mesh.weights(d);
            let mut hint = 0;
            for _ in 0..2 {
                assert_eq!(mesh.weights_hinted(d, None, &mut hint), want, "{d:?}");
            }
            on_edge += usize::from(want.iter().any(|w| w.1 == 0.0));
        }
        assert!(on_edge > 5000, "{on_edge} points on edges");
    }

    #[test]
    fn grid_lookup_agrees_with_brute_force() {
        let set = HrtfSet::default_set(48_000).unwrap();
        let mesh = &set.mesh;
        for k in 0..2000 {
            let az = -180.0 + (k as f64 * 37.77) % 360.0;
            let el = -40.0 + (k as f64 * 13.13) % 130.0;
            let d = Direction::new(az, el);
            let u = d.to_unit();
            let fast = mesh.weights(d);
            let (f, _) = mesh
                .best_face(u, 0..mesh.faces.len())
                .expect("inside the hull");
            for &(i, g) in &fast {
                if g > 1e-6 {
                    assert!(
                        mesh.faces[f].contains(&i),
                        "{d:?}: {fast:?} vs face {:?}",
                        mesh.faces[f]
                    );
                }
            }
        }
    }
}
