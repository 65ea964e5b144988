//! Master-chain processors run on every output: gain, RBJ Audio-EQ-Cookbook biquad EQ, a
//! feed-forward soft-knee compressor (Giannoulis, Massberg & Reiss, JAES 2012), a look-ahead
//! true-peak limiter (ITU-R BS.1770-4 Annex 2 style 4× oversampled peak detection), mid/side
//! width, TPDF dither, a pure delay, and a [`Chain`] that runs them in order.
//!
//! All processors work in place on planar `f32` channels. Every buffer is allocated in `new`;
//! `process` never allocates, locks, logs or touches files, and its output does not depend on
//! how the signal is cut into blocks. A processor given more channels than it was built for
//! leaves the extra ones untouched; slices of unequal length are processed up to the shortest.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Errors raised when a processor or a chain is built from invalid settings.
#[derive(Debug, thiserror::Error)]
pub enum DspError {
    /// A numeric parameter is non-finite or out of its allowed range.
    #[error("{processor}: {}", problem_and_allowed(parameter, *value, unit, *band, allowed))]
    InvalidParameter {
        /// The processor being built (`"eq"`, `"compressor"`, …).
        processor: &'static str,
        /// The parameter's name as written in a session (`"ratio"`, `"freq_hz"` …).
        parameter: String,
        /// The offending value.
        value: f64,
        /// Its unit as printed after the value (`" dB"`, `" ms"`, `""`).
        unit: &'static str,
        /// The EQ band it belongs to, counted from 1.
        band: Option<usize>,
        /// What is allowed, in words.
        allowed: String,
    },
    /// A rule between parameters or processors is broken (an empty band list, dither not
    /// last in the chain, a gain on a high-pass band).
    #[error("{processor}: {problem} (allowed: {allowed})")]
    Rule {
        /// The processor concerned.
        processor: &'static str,
        /// The EQ band concerned, counted from 1.
        band: Option<usize>,
        /// What is wrong.
        problem: String,
        /// What is allowed.
        allowed: String,
    },
    /// The processor cannot run on this many channels.
    #[error("{processor}: {channels} channel(s) given (allowed: {allowed})")]
    ChannelCount {
        /// The processor being built.
        processor: &'static str,
        /// The channel count given.
        channels: usize,
        /// What is allowed.
        allowed: &'static str,
    },
}

fn problem_and_allowed(
    parameter: &str,
    value: f64,
    unit: &str,
    band: Option<usize>,
    allowed: &str,
) -> String {
    let band = band.map(|b| format!("band {b}: ")).unwrap_or_default();
    format!(
        "{band}{} (allowed: {allowed})",
        value_problem(parameter, value, unit)
    )
}

fn value_problem(parameter: &str, value: f64, unit: &str) -> String {
    if value.is_finite() {
        format!("{parameter} = {value}{unit} is out of range")
    } else {
        format!("{parameter} = {value} is not a finite number")
    }
}

impl DspError {
    /// What is wrong, without the processor's name or the allowed values
    /// (`"ratio = 0.5 is out of range"`), for messages that give the place themselves.
    pub fn problem(&self) -> String {
        match self {
            DspError::InvalidParameter {
                parameter,
                value,
                unit,
                ..
            } => value_problem(parameter, *value, unit),
            DspError::Rule { problem, .. } => problem.clone(),
            DspError::ChannelCount { channels, .. } => format!("{channels} channel(s) given"),
        }
    }

    /// What is allowed, in words.
    pub fn allowed(&self) -> String {
        match self {
            DspError::InvalidParameter { allowed, .. } | DspError::Rule { allowed, .. } => {
                allowed.clone()
            }
            DspError::ChannelCount { allowed, .. } => (*allowed).to_string(),
        }
    }

    /// The EQ band concerned (counted from 1), if any.
    pub fn band(&self) -> Option<usize> {
        match self {
            DspError::InvalidParameter { band, .. } | DspError::Rule { band, .. } => *band,
            DspError::ChannelCount { .. } => None,
        }
    }
}

/// The closed range of one parameter, with its unit: the single source of the limits
/// that sessions, the engine and the README state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The parameter's name in a session.
    pub name: &'static str,
    /// Lowest value allowed.
    pub lo: f64,
    /// Highest value allowed.
    pub hi: f64,
    /// Unit as printed after a value (`" dB"`).
    pub unit: &'static str,
}

impl Range {
    /// `value` when it is finite and within the range, else an error naming `processor`.
    pub fn check(&self, processor: &'static str, value: f64) -> Result<f64, DspError> {
        if value.is_finite() && (self.lo..=self.hi).contains(&value) {
            Ok(value)
        } else {
            Err(DspError::InvalidParameter {
                processor,
                parameter: self.name.to_string(),
                value,
                unit: self.unit,
                band: None,
                allowed: self.allowed(),
            })
        }
    }

    /// The range in words: `"ratio from 1 to 100"`.
    pub fn allowed(&self) -> String {
        format!("{} from {} to {}{}", self.name, self.lo, self.hi, self.unit)
    }
}

/// An in-place block processor on planar channels.
pub trait Processor: Send {
    /// In-place on planar channels; every slice the same length (any length: processors that
    /// need scratch space cut longer blocks internally).
    fn process(&mut self, channels: &mut [&mut [f32]]);
    /// Restores the state right after `new`.
    fn reset(&mut self);
    /// Delay the processor adds, in frames.
    fn latency(&self) -> usize;
}

// ---------------------------------------------------------------------------------------
// validation helpers

fn invalid(processor: &'static str, parameter: &str, value: f64, allowed: &str) -> DspError {
    DspError::InvalidParameter {
        processor,
        parameter: parameter.to_string(),
        value,
        unit: "",
        band: None,
        allowed: allowed.to_string(),
    }
}

fn check_sample_rate(processor: &'static str, sample_rate: u32) -> Result<f64, DspError> {
    if sample_rate == 0 {
        return Err(invalid(
            processor,
            "sample_rate",
            0.0,
            "a positive sample rate in Hz",
        ));
    }
    Ok(f64::from(sample_rate))
}

fn check_channels(processor: &'static str, channels: usize) -> Result<(), DspError> {
    if channels == 0 {
        return Err(DspError::ChannelCount {
            processor,
            channels,
            allowed: "at least 1",
        });
    }
    Ok(())
}

/// Frames to process: the shortest slice (the contract says all are equal).
fn frame_count(channels: &[&mut [f32]]) -> usize {
    channels.iter().map(|c| c.len()).min().unwrap_or(0)
}

/// Whether the CPU has AVX (detected at run time): kernels with an AVX build of the same
/// arithmetic use it (the limiter's detector, loudness, binaural, mixing, PCM decoding).
pub(crate) fn has_avx() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("avx")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        false
    }
}

fn db_to_lin(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Per-sample time-constant coefficient: exp(−1 / (τ fs)); 0 for τ = 0 (instant).
fn time_coef(time_ms: f64, sample_rate: f64) -> f64 {
    let samples = time_ms * 1e-3 * sample_rate;
    if samples > 0.0 {
        (-1.0 / samples).exp()
    } else {
        0.0
    }
}

/// Values below this are flushed to zero at block ends (avoids denormal slow-down in
/// decaying filter states; far below anything audible in f32).
pub(crate) const DENORMAL_FLUSH: f64 = 1e-30;

mod chain;
mod compressor;
mod delay;
mod dither;
mod eq;
mod gain;
mod limiter;
mod true_peak;
mod width;
pub use chain::*;
pub use compressor::*;
pub use delay::*;
pub use dither::*;
pub use eq::*;
pub use gain::*;
pub use limiter::*;
// The true-peak kernel for the limiter; `TruePeakDetector` too with the `internals`
// feature (test support).
#[cfg(feature = "internals")]
pub use true_peak::*;
#[cfg(not(feature = "internals"))]
use true_peak::*;
pub use width::*;
