//! Mid/side width.

use super::*;

// ---------------------------------------------------------------------------------------
// Width

/// Range of [`WidthSettings::width`].
pub const WIDTH: Range = Range {
    name: "width",
    lo: 0.0,
    hi: 4.0,
    unit: "",
};

/// Settings of [`Width`] (`Width(width: 0.8)`): 0 mono, 1 unchanged, 2 twice the side
/// signal, up to 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidthSettings {
    /// Side gain, [`WIDTH`].
    pub width: f64,
}

impl WidthSettings {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), DspError> {
        WIDTH.check("width", self.width).map(|_| ())
    }
}

/// Stereo mid/side width: M = (L+R)/2, S = (L−R)/2, S' = width·S; computed as
/// L' = a·L + b·R, R' = b·L + a·R with a = (1+w)/2, b = (1−w)/2 (width 1 is exactly the
/// identity).
#[derive(Debug, Clone)]
pub struct Width {
    width: f64,
    a: f32,
    b: f32,
}

impl Width {
    /// Validates the settings; `channels` must be 2.
    pub fn new(settings: &WidthSettings, channels: usize) -> Result<Width, DspError> {
        settings.validate()?;
        let width = settings.width;
        if channels != 2 {
            return Err(DspError::ChannelCount {
                processor: "width",
                channels,
                allowed: "exactly 2 (stereo)",
            });
        }
        Ok(Width {
            width,
            a: ((1.0 + width) / 2.0) as f32,
            b: ((1.0 - width) / 2.0) as f32,
        })
    }
}

impl Processor for Width {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        if self.width == 1.0 {
            return;
        }
        let n = frame_count(channels);
        if let [left, right, ..] = channels {
            for (l, r) in left[..n].iter_mut().zip(right[..n].iter_mut()) {
                let (x, y) = (*l, *r);
                *l = self.a * x + self.b * y;
                *r = self.b * x + self.a * y;
            }
        }
    }
    fn reset(&mut self) {}
    fn latency(&self) -> usize {
        0
    }
}
