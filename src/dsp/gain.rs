//! Static gain.

use super::*;

// ---------------------------------------------------------------------------------------
// Gain

/// Range of [`GainSettings::gain_db`].
pub const GAIN_DB: Range = Range {
    name: "gain_db",
    lo: -120.0,
    hi: 24.0,
    unit: " dB",
};

/// Settings of [`Gain`] (`Gain(gain_db: -3)` in a session chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GainSettings {
    /// Gain, [`GAIN_DB`].
    pub gain_db: f64,
}

impl GainSettings {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), DspError> {
        GAIN_DB.check("gain", self.gain_db).map(|_| ())
    }
}

/// Static gain: a linear multiply.
#[derive(Debug, Clone)]
pub struct Gain {
    gain: f32,
}

impl Gain {
    /// Validates the settings.
    pub fn new(settings: &GainSettings) -> Result<Gain, DspError> {
        settings.validate()?;
        Ok(Gain {
            gain: db_to_lin(settings.gain_db) as f32,
        })
    }

    /// The linear factor applied. Test support (the `internals` feature).
    #[cfg(feature = "internals")]
    pub fn linear(&self) -> f32 {
        self.gain
    }
}

impl Processor for Gain {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        for ch in channels.iter_mut() {
            for x in ch[..n].iter_mut() {
                *x *= self.gain;
            }
        }
    }
    fn reset(&mut self) {}
    fn latency(&self) -> usize {
        0
    }
}
