//! TPDF dither.

use super::*;

// ---------------------------------------------------------------------------------------
// Dither

/// xorshift64* generator. Hand-written rather than a crate: `rand` is not a dependency,
/// the generator is six lines, and a fixed algorithm here keeps renders bit-reproducible
/// whatever a crate's future versions do with their streams.
#[derive(Debug, Clone)]
pub struct XorShift64Star {
    state: u64,
}

impl XorShift64Star {
    /// Seeded through splitmix64 (so that nearby seeds give unrelated streams; never 0).
    pub fn new(seed: u64) -> XorShift64Star {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift64Star {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Seed of the dither generators (channel `c` uses `DITHER_SEED + c`).
pub const DITHER_SEED: u64 = 0x4841_4C4F_4449_5448; // "HALODITH"

/// Range of [`DitherSettings::bits`].
pub const DITHER_BITS: Range = Range {
    name: "bits",
    lo: 8.0,
    hi: 32.0,
    unit: "",
};
/// Default word length of `Dither()`.
pub const DEFAULT_DITHER_BITS: u32 = 24;

fn default_dither_bits() -> u32 {
    DEFAULT_DITHER_BITS
}

/// Settings of [`Dither`] (`Dither(bits: 16)`); it must be the last processor of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DitherSettings {
    /// Target word length, [`DITHER_BITS`]; default [`DEFAULT_DITHER_BITS`].
    #[serde(default = "default_dither_bits")]
    pub bits: u32,
}

impl Default for DitherSettings {
    fn default() -> Self {
        DitherSettings {
            bits: DEFAULT_DITHER_BITS,
        }
    }
}

impl DitherSettings {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), DspError> {
        DITHER_BITS
            .check("dither", f64::from(self.bits))
            .map(|_| ())
    }
}

/// TPDF dither: adds `(u1 − u2)·LSB` (triangular, ±1 LSB peak, variance LSB²/6) where
/// LSB = 2^−(bits−1) of full scale. It only adds the noise; the output stage must then
/// round (not truncate) to `bits` — [`quantize`] does that. One deterministic generator
/// per channel, so the result does not depend on block size.
#[derive(Debug, Clone)]
pub struct Dither {
    lsb: f64,
    rngs: Vec<XorShift64Star>,
}

impl Dither {
    /// Validates the settings.
    pub fn new(settings: &DitherSettings, channels: usize) -> Result<Dither, DspError> {
        settings.validate()?;
        let bits = settings.bits;
        check_channels("dither", channels)?;
        let mut d = Dither {
            lsb: lsb(bits),
            rngs: Vec::with_capacity(channels),
        };
        d.rngs
            .extend((0..channels as u64).map(|c| XorShift64Star::new(DITHER_SEED + c)));
        Ok(d)
    }

    /// One LSB at the configured word length (full scale ±1). Test support (the
    /// `internals` feature).
    #[cfg(feature = "internals")]
    pub fn lsb(&self) -> f64 {
        self.lsb
    }
}

/// One LSB of a `bits`-bit word, full scale ±1.
pub fn lsb(bits: u32) -> f64 {
    0.5f64.powi(bits as i32 - 1)
}

/// Rounds `x` to the nearest multiple of one LSB at `bits` and clamps to the word's range.
/// Test support (the `internals` feature).
#[cfg(feature = "internals")]
pub fn quantize(x: f32, bits: u32) -> f32 {
    let step = lsb(bits);
    let q = (f64::from(x) / step).round() * step;
    q.clamp(-1.0, 1.0 - step) as f32
}

impl Processor for Dither {
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = frame_count(channels);
        for (ch, rng) in channels.iter_mut().zip(self.rngs.iter_mut()) {
            for x in ch[..n].iter_mut() {
                let d = (rng.next_f64() - rng.next_f64()) * self.lsb;
                *x = (f64::from(*x) + d) as f32;
            }
        }
    }
    fn reset(&mut self) {
        for (c, rng) in self.rngs.iter_mut().enumerate() {
            *rng = XorShift64Star::new(DITHER_SEED + c as u64);
        }
    }
    fn latency(&self) -> usize {
        0
    }
}
